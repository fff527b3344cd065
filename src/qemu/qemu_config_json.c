/* The JSON form of the QEMU configuration (docs/qemu-config.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qemu_config.h"
#include "qemu/qemu_devices.h"
#include "util/cleanup.h"
#include "util/json.h"

#define U32_MAX_ 4294967295LL

static const char *const qmp_types[] = {"unix", NULL};
static const char *const rtc_clocks[] = {"", "host", "rt", "vm", NULL};
static const char *const rtc_drift[] = {"", "slew", "none", NULL};
static const char *const mig_types[] = {"", "fd", "exec", "defer", "tcp", NULL};
_Static_assert(SV_ARRAY_SIZE(mig_types) == SV__QMIG_MAX + 1, "migration type names");

static const sv_jfield machine_fields[] = {
    SV_JSTR(sv_qmachine, type, "type"),
    SV_JSTR(sv_qmachine, acceleration, "acceleration"),
    SV_JSTR(sv_qmachine, options, "options"),
    SV_JEND};
static const sv_jschema machine_schema = {sizeof(sv_qmachine), machine_fields};

static const sv_jfield qmp_fields[] = {
    SV_JENUM(sv_qqmp_socket, type, "type", qmp_types),
    SV_JSTR(sv_qqmp_socket, name, "name"),
    SV_JBOOL(sv_qqmp_socket, server, "server"),
    SV_JBOOL(sv_qqmp_socket, no_wait, "no_wait"),
    SV_JINT(sv_qqmp_socket, fd, "fd", 3, 65535),
    SV_JEND};
static const sv_jschema qmp_schema = {sizeof(sv_qqmp_socket), qmp_fields};

static const sv_jfield memory_fields[] = {
    SV_JSTR(sv_qmemory, size, "size"),
    SV_JINT(sv_qmemory, slots, "slots", 0, 256),
    SV_JSTR(sv_qmemory, max_mem, "max_mem"),
    SV_JSTR(sv_qmemory, path, "path"),
    SV_JEND};
static const sv_jschema memory_schema = {sizeof(sv_qmemory), memory_fields};

static const sv_jfield smp_fields[] = {
    SV_JINT(sv_qsmp, cpus, "cpus", 1, 4096),
    SV_JINT(sv_qsmp, cores, "cores", 1, 4096),
    SV_JINT(sv_qsmp, threads, "threads", 1, 4096),
    SV_JINT(sv_qsmp, sockets, "sockets", 1, 4096),
    SV_JINT(sv_qsmp, dies, "dies", 1, 4096),
    SV_JINT(sv_qsmp, max_cpus, "max_cpus", 1, 4096),
    SV_JEND};
static const sv_jschema smp_schema = {sizeof(sv_qsmp), smp_fields};

static const sv_jfield kernel_fields[] = {
    SV_JSTR(sv_qkernel, path, "path"),
    SV_JSTR(sv_qkernel, initrd_path, "initrd_path"),
    SV_JSTR(sv_qkernel, params, "params"),
    SV_JEND};
static const sv_jschema kernel_schema = {sizeof(sv_qkernel), kernel_fields};

static const sv_jfield rtc_fields[] = {
    SV_JSTR(sv_qrtc, base, "base"),
    SV_JENUM(sv_qrtc, clock, "clock", rtc_clocks),
    SV_JENUM(sv_qrtc, drift_fix, "drift_fix", rtc_drift),
    SV_JEND};
static const sv_jschema rtc_schema = {sizeof(sv_qrtc), rtc_fields};

static const sv_jfield knobs_fields[] = {
    SV_JBOOL(sv_qknobs, no_user_config, "no_user_config"),
    SV_JBOOL(sv_qknobs, no_defaults, "no_defaults"),
    SV_JBOOL(sv_qknobs, no_graphic, "no_graphic"),
    SV_JBOOL(sv_qknobs, no_reboot, "no_reboot"),
    SV_JBOOL(sv_qknobs, no_shutdown, "no_shutdown"),
    SV_JBOOL(sv_qknobs, daemonize, "daemonize"),
    SV_JBOOL(sv_qknobs, huge_pages, "huge_pages"),
    SV_JBOOL(sv_qknobs, mem_prealloc, "mem_prealloc"),
    SV_JBOOL(sv_qknobs, file_backed_mem, "file_backed_mem"),
    SV_JBOOL(sv_qknobs, mem_shared, "mem_shared"),
    SV_JBOOL(sv_qknobs, mlock, "mlock"),
    SV_JBOOL(sv_qknobs, stopped, "stopped"),
    SV_JBOOL(sv_qknobs, iommu_platform, "iommu_platform"),
    SV_JBOOL(sv_qknobs, no_serial, "no_serial"),
    SV_JBOOL(sv_qknobs, no_parallel, "no_parallel"),
    SV_JEND};
static const sv_jschema knobs_schema = {sizeof(sv_qknobs), knobs_fields};

static const sv_jfield incoming_fields[] = {
    SV_JENUM(sv_qincoming, migration_type, "migration_type", mig_types),
    SV_JINT(sv_qincoming, fd, "fd", 3, 65535),
    SV_JSTRV(sv_qincoming, exec, "exec"),
    SV_JSTR(sv_qincoming, host, "host"),
    SV_JINT(sv_qincoming, port, "port", 1, 65535),
    SV_JEND};
static const sv_jschema incoming_schema = {sizeof(sv_qincoming), incoming_fields};

static const sv_jfield fwcfg_fields[] = {
    SV_JSTR(sv_qfw_cfg, name, "name"),
    SV_JSTR(sv_qfw_cfg, file, "file"),
    SV_JSTR(sv_qfw_cfg, str, "str"),
    SV_JEND};
static const sv_jschema fwcfg_schema = {sizeof(sv_qfw_cfg), fwcfg_fields};

static const sv_jfield iothread_fields[] = {SV_JSTR(sv_qiothread, id, "id"), SV_JEND};
static const sv_jschema iothread_schema = {sizeof(sv_qiothread), iothread_fields};

/* devices: an array of objects whose "type" picks the schema of the union. */
typedef struct {
    sv_qdev *v;
    size_t n;
} devlist;

static int decode_device(json_object *obj, sv_qdev *dev, const char *path, sv_error **err)
{
    if (json_object_get_type(obj) != json_type_object)
        return sv_error_set(err, EINVAL, "%s: expected an object, got %s", path,
                            sv_json_type_name(json_object_get_type(obj)));
    json_object *t = NULL;
    if (!json_object_object_get_ex(obj, "type", &t))
        return sv_error_set(err, EINVAL, "%s.type: is required", path);
    if (json_object_get_type(t) != json_type_string)
        return sv_error_set(err, EINVAL, "%s.type: expected a string, got %s", path,
                            sv_json_type_name(json_object_get_type(t)));
    const sv_qdev_ops *ops = sv_qdev_ops_by_name(json_object_get_string(t));
    if (!ops) {
        sv_strbuf sb = SV_STRBUF_INIT;
        for (size_t i = 0; i < SV__QDEV_MAX; i++)
            sv_strbuf_appendf(&sb, "%s%s", i ? ", " : "", sv_qdev_table[i]->name);
        _cleanup_free_ char *names = sv_strbuf_steal(&sb);
        _cleanup_json_ json_object *q = json_object_new_string(json_object_get_string(t));
        return sv_error_set(err, EINVAL, "%s.type: %s is not a device type (allowed: %s)", path,
                            q ? sv_json_to_string(q) : "?", names ? names : "?");
    }
    for (size_t i = 0; i < SV__QDEV_MAX; i++)
        if (sv_qdev_table[i] == ops)
            dev->type = (int)i;
    /* Decode everything but "type" with the kind's schema. */
    _cleanup_json_ json_object *rest = json_object_new_object();
    if (!rest)
        return sv_error_set(err, ENOMEM, "out of memory");
    json_object_object_foreach(obj, k, v)
    {
        if (strcmp(k, "type") != 0)
            json_object_object_add(rest, k, json_object_get(v));
    }
    return sv_json_decode(ops->schema, rest, &dev->u, path, err);
}

static int devices_decode(json_object *v, void *field, const char *path, sv_error **err)
{
    devlist *l = field;
    if (json_object_get_type(v) != json_type_array)
        return sv_error_set(err, EINVAL, "%s: expected an array, got %s", path,
                            sv_json_type_name(json_object_get_type(v)));
    size_t n = json_object_array_length(v);
    l->v = calloc(n ? n : 1, sizeof(sv_qdev));
    if (!l->v)
        return sv_error_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *p = sv_json_path_index(path, i);
        l->n = i + 1;
        l->v[i].type = -1;
        int r = decode_device(json_object_array_get_idx(v, i), &l->v[i], p ? p : path, err);
        if (r < 0)
            return r;
    }
    return 0;
}

static void devices_free(void *field)
{
    devlist *l = field;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].type >= 0 && l->v[i].type < SV__QDEV_MAX)
            sv_json_free(sv_qdev_table[l->v[i].type]->schema, &l->v[i].u);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static const sv_jcustom devices_custom = {devices_decode, devices_free};
_Static_assert(offsetof(sv_qemu_config, n_devices) == offsetof(sv_qemu_config, devices) + sizeof(void *),
               "devices/n_devices are laid out as a devlist");

static const sv_jfield config_fields[] = {
    SV_JSTR(sv_qemu_config, path, "path"),
    SV_JENUM(sv_qemu_config, arch, "arch", sv_arch_names),
    SV_JINT(sv_qemu_config, uid, "uid", 0, U32_MAX_ - 1),
    SV_JINT(sv_qemu_config, gid, "gid", 0, U32_MAX_ - 1),
    SV_JINTV(sv_qemu_config, groups, n_groups, "groups", 0, U32_MAX_ - 1),
    SV_JSTR(sv_qemu_config, name, "name"),
    SV_JSTR(sv_qemu_config, uuid, "uuid"),
    SV_JSTR(sv_qemu_config, cpu_model, "cpu_model"),
    SV_JSTRV(sv_qemu_config, cpu_features, "cpu_features"),
    SV_JSTR(sv_qemu_config, seccomp_sandbox, "seccomp_sandbox"),
    SV_JOBJ(sv_qemu_config, machine, "machine", &machine_schema),
    SV_JARR(sv_qemu_config, qmp_sockets, n_qmp_sockets, "qmp_sockets", &qmp_schema),
    SV_JCUSTOM(sv_qemu_config, devices, "devices", &devices_custom),
    SV_JOBJ(sv_qemu_config, rtc, "rtc", &rtc_schema),
    SV_JSTR(sv_qemu_config, vga, "vga"),
    SV_JOBJ(sv_qemu_config, kernel, "kernel", &kernel_schema),
    SV_JOBJ(sv_qemu_config, memory, "memory", &memory_schema),
    SV_JOBJ(sv_qemu_config, smp, "smp", &smp_schema),
    SV_JSTR(sv_qemu_config, global_param, "global_param"),
    SV_JOBJ(sv_qemu_config, knobs, "knobs", &knobs_schema),
    SV_JSTR(sv_qemu_config, bios, "bios"),
    SV_JSTRV(sv_qemu_config, pflash, "pflash"),
    SV_JOBJ(sv_qemu_config, incoming, "incoming", &incoming_schema),
    SV_JARR(sv_qemu_config, fw_cfg, n_fw_cfg, "fw_cfg", &fwcfg_schema),
    SV_JARR(sv_qemu_config, io_threads, n_io_threads, "io_threads", &iothread_schema),
    SV_JSTR(sv_qemu_config, pid_file, "pid_file"),
    SV_JSTR(sv_qemu_config, log_file, "log_file"),
    SV_JEND};
static const sv_jschema config_schema = {sizeof(sv_qemu_config), config_fields};

const sv_jschema *sv_qemu_config_schema(void)
{
    return &config_schema;
}

void sv_qemu_config_free(sv_qemu_config *cfg)
{
    if (!cfg)
        return;
    sv_json_free(&config_schema, cfg);
    free(cfg);
}

int sv_qemu_config_from_json(json_object *obj, sv_qemu_config **out, sv_error **err)
{
    sv_qemu_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return sv_error_set(err, ENOMEM, "out of memory");
    sv_qemu_config_init(cfg);
    int r = sv_json_decode(&config_schema, obj, cfg, "", err);
    if (r >= 0)
        r = sv_qemu_config_validate(cfg, err);
    if (r < 0) {
        sv_qemu_config_free(cfg);
        return r;
    }
    *out = cfg;
    return 0;
}
