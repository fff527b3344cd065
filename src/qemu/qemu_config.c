#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "qemu/qemu_config.h"
#include "qemu/qemu_devices.h"
#include "util/cleanup.h"
#include "util/json.h"

const char *const sv_arch_names[] = {"default", "x86_64", "aarch64", "ppc64", "s390x", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_arch_names) == SV__ARCH_MAX + 1, "arch names");
const char *const sv_qtransport_names[] = {"default", "pci", "ccw", "mmio", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_qtransport_names) == SV__QT_MAX + 1, "transport names");

void sv_qemu_config_init(sv_qemu_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->uid = -1;
    cfg->gid = -1;
}

static int host_arch(void)
{
    struct utsname u;
    if (uname(&u) < 0)
        return SV_ARCH_X86_64;
    if (strcmp(u.machine, "aarch64") == 0)
        return SV_ARCH_AARCH64;
    if (strncmp(u.machine, "ppc64", 5) == 0)
        return SV_ARCH_PPC64;
    if (strcmp(u.machine, "s390x") == 0)
        return SV_ARCH_S390X;
    return SV_ARCH_X86_64;
}

int sv_qemu_config_arch(const sv_qemu_config *cfg)
{
    if (cfg->arch != SV_ARCH_DEFAULT)
        return cfg->arch;
    if (cfg->path) {
        const char *base = strrchr(cfg->path, '/');
        base = base ? base + 1 : cfg->path;
        if (strncmp(base, "qemu-system-", 12) == 0) {
            for (int i = 1; i < SV__ARCH_MAX; i++)
                if (strcmp(base + 12, sv_arch_names[i]) == 0)
                    return i;
        }
    }
    return host_arch();
}

const char *sv_qemu_config_binary(const sv_qemu_config *cfg)
{
    static const char *const bins[SV__ARCH_MAX] = {
        [SV_ARCH_X86_64] = "qemu-system-x86_64", [SV_ARCH_AARCH64] = "qemu-system-aarch64",
        [SV_ARCH_PPC64] = "qemu-system-ppc64", [SV_ARCH_S390X] = "qemu-system-s390x"};
    if (cfg->path)
        return cfg->path;
    return bins[sv_qemu_config_arch(cfg)];
}

bool sv_qemu_config_is_microvm(const sv_qemu_config *cfg)
{
    return cfg->machine.type && strcmp(cfg->machine.type, "microvm") == 0;
}

bool sv_qemu_config_machine_opt_is(const sv_qemu_config *cfg, const char *key, const char *value)
{
    const char *s = cfg->machine.options;
    size_t kl = strlen(key), vl = strlen(value);
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n == kl + 1 + vl && strncmp(s, key, kl) == 0 && s[kl] == '=' &&
            strncmp(s + kl + 1, value, vl) == 0)
            return true;
        s = end ? end + 1 : NULL;
    }
    return false;
}

int sv_qemu_config_transport(const sv_qemu_config *cfg, int requested)
{
    if (requested != SV_QT_DEFAULT)
        return requested;
    if (sv_qemu_config_arch(cfg) == SV_ARCH_S390X)
        return SV_QT_CCW;
    if (sv_qemu_config_is_microvm(cfg))
        return SV_QT_MMIO;
    return SV_QT_PCI;
}

/* ---- top-level validation ---- */

static bool chars_in(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!(isascii((unsigned char)*s) && (isalnum((unsigned char)*s) || strchr(extra, *s))))
            return false;
    return true;
}

static int check_word(const char *path, const char *field, const char *v, const char *extra,
                      const char *what, sv_error **err)
{
    if (!v)
        return 0;
    if (!*v || !chars_in(v, extra)) {
        _cleanup_json_ json_object *q = json_object_new_string(v);
        return sv_field_error(err, path, field,
                              "invalid %s %s (allowed: letters, digits and any of \"%s\")", what,
                              q ? sv_json_to_string(q) : "", extra);
    }
    return 0;
}

/* "key=value,key=value" with plain words only: these lists are options by design. */
static int check_option_list(const char *path, const char *field, const char *v, sv_error **err)
{
    if (!v)
        return 0;
    _cleanup_free_ char *copy = strdup(v);
    if (!copy)
        return sv_error_set(err, ENOMEM, "out of memory");
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1])
            return sv_field_error(err, path, field, "\"%s\" is not key=value", tok);
        *eq = '\0';
        bool ok = chars_in(tok, "-_.") && chars_in(eq + 1, "-_.:");
        *eq = '=';
        if (!ok)
            return sv_field_error(err, path, field,
                                  "\"%s\" has characters other than letters, digits, '-', '_', '.', ':'",
                                  tok);
    }
    if (n == 0 || v[0] == ',' || v[strlen(v) - 1] == ',' || strstr(v, ",,"))
        return sv_field_error(err, path, field, "empty option in \"%s\"", v);
    return 0;
}

static int check_uuid(const char *v, sv_error **err)
{
    static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    bool ok = strlen(v) == sizeof(pat) - 1;
    for (size_t i = 0; ok && pat[i]; i++)
        ok = pat[i] == '-' ? v[i] == '-' : isxdigit((unsigned char)v[i]) != 0;
    return ok ? 0 : sv_field_error(err, "", "uuid", "invalid UUID (expected 8-4-4-4-12 hex digits)");
}

static int check_sandbox(const char *v, sv_error **err)
{
    static const struct {
        const char *key, *values[4];
    } keys[] = {{"obsolete", {"allow", "deny"}},
                {"elevateprivileges", {"allow", "deny", "children"}},
                {"spawn", {"allow", "deny"}},
                {"resourcecontrol", {"allow", "deny"}}};
    _cleanup_free_ char *copy = strdup(v);
    if (!copy)
        return sv_error_set(err, ENOMEM, "out of memory");
    char *save = NULL;
    char *tok = strtok_r(copy, ",", &save);
    if (!tok || (strcmp(tok, "on") && strcmp(tok, "off")))
        return sv_field_error(err, "", "seccomp_sandbox", "must start with \"on\" or \"off\"");
    while ((tok = strtok_r(NULL, ",", &save))) {
        char *eq = strchr(tok, '=');
        bool ok = false;
        for (size_t i = 0; eq && i < SV_ARRAY_SIZE(keys) && !ok; i++) {
            if ((size_t)(eq - tok) != strlen(keys[i].key) || strncmp(tok, keys[i].key, eq - tok))
                continue;
            for (size_t j = 0; j < 4 && keys[i].values[j] && !ok; j++)
                ok = strcmp(eq + 1, keys[i].values[j]) == 0;
        }
        if (!ok)
            return sv_field_error(err, "", "seccomp_sandbox",
                                  "unknown setting \"%s\" (allowed: obsolete=allow|deny, "
                                  "elevateprivileges=allow|deny|children, spawn=allow|deny, "
                                  "resourcecontrol=allow|deny)",
                                  tok);
    }
    if (strstr(v, ",,") || v[strlen(v) - 1] == ',')
        return sv_field_error(err, "", "seccomp_sandbox", "empty setting");
    return 0;
}

static int check_rtc_base(const char *v, sv_error **err)
{
    if (!strcmp(v, "utc") || !strcmp(v, "localtime"))
        return 0;
    /* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS */
    static const char d[] = "dddd-dd-dd", dt[] = "dddd-dd-ddTdd:dd:dd";
    const char *pat = strlen(v) == sizeof(d) - 1 ? d : strlen(v) == sizeof(dt) - 1 ? dt : NULL;
    bool ok = pat != NULL;
    for (size_t i = 0; ok && pat[i]; i++)
        ok = pat[i] == 'd' ? isdigit((unsigned char)v[i]) != 0 : v[i] == pat[i];
    return ok ? 0
              : sv_field_error(err, "rtc", "base",
                               "expected utc, localtime, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS");
}

static int check_global(const char *v, sv_error **err)
{
    const char *dot = strchr(v, '.'), *eq = strchr(v, '=');
    bool ok = dot && eq && dot > v && eq > dot + 1;
    if (ok) {
        _cleanup_free_ char *drv = strndup(v, dot - v), *prop = strndup(dot + 1, eq - dot - 1);
        ok = drv && prop && strlen(drv) < 64 && strlen(prop) < 64 && chars_in(drv, "-_") &&
             chars_in(prop, "-_.");
    }
    return ok ? 0
              : sv_field_error(err, "", "global_param",
                               "expected driver.property=value (driver and property made of "
                               "letters, digits, '-' and '_')");
}

static int check_binary(const char *v, sv_error **err)
{
    if (!v)
        return 0;
    if (v[0] == '/')
        return 0;
    if (strncmp(v, "qemu-system-", 12) == 0 && chars_in(v + 12, "_-"))
        return 0;
    return sv_field_error(err, "", "path",
                          "must be an absolute path or a qemu-system-<arch> name found in PATH");
}

static int validate_incoming(const sv_qincoming *in, sv_error **err)
{
    switch (in->migration_type) {
    case SV_QMIG_NONE:
        if (in->fd || in->exec || in->host || in->port)
            return sv_field_error(err, "incoming", "migration_type", "is required with fd, exec, host or port");
        return 0;
    case SV_QMIG_FD:
        if (!in->fd)
            return sv_field_error(err, "incoming", "fd", "is required for migration_type fd");
        break;
    case SV_QMIG_EXEC:
        if (!in->exec || !in->exec[0] || !in->exec[0][0])
            return sv_field_error(err, "incoming", "exec", "needs the command's words for migration_type exec");
        break;
    case SV_QMIG_TCP:
        if (!in->host || !*in->host)
            return sv_field_error(err, "incoming", "host", "is required for migration_type tcp");
        if (!chars_in(in->host, "-.:[]"))
            return sv_field_error(err, "incoming", "host", "invalid host name or address");
        if (!in->port)
            return sv_field_error(err, "incoming", "port", "is required for migration_type tcp");
        break;
    default:
        break;
    }
    if (in->migration_type != SV_QMIG_FD && in->fd)
        return sv_field_error(err, "incoming", "fd", "only applies to migration_type fd");
    if (in->migration_type != SV_QMIG_EXEC && in->exec)
        return sv_field_error(err, "incoming", "exec", "only applies to migration_type exec");
    if (in->migration_type != SV_QMIG_TCP && (in->host || in->port))
        return sv_field_error(err, "incoming", in->host ? "host" : "port",
                              "only applies to migration_type tcp");
    return 0;
}

int sv_qemu_config_validate(const sv_qemu_config *cfg, sv_error **err)
{
    int r;
    if ((r = check_binary(cfg->path, err)) < 0)
        return r;
    if (cfg->uuid && (r = check_uuid(cfg->uuid, err)) < 0)
        return r;
    if ((r = check_word("", "cpu_model", cfg->cpu_model, "-_.", "CPU model", err)) < 0)
        return r;
    for (size_t i = 0; cfg->cpu_features && cfg->cpu_features[i]; i++) {
        const char *f = cfg->cpu_features[i];
        if (*f == '+' || *f == '-')
            f++;
        _cleanup_free_ char *p = sv_json_path_index("cpu_features", i);
        if (!*f || !chars_in(f, "-_.=") || strchr(f, '=') == f)
            return sv_field_error(err, "", p ? p : "cpu_features",
                                  "invalid CPU feature (expected [+|-]name or name=value)");
    }
    if (cfg->cpu_features && cfg->cpu_features[0] && !cfg->cpu_model)
        return sv_field_error(err, "", "cpu_features", "needs cpu_model");
    if (cfg->seccomp_sandbox && (r = check_sandbox(cfg->seccomp_sandbox, err)) < 0)
        return r;
    if ((r = check_word("machine", "type", cfg->machine.type, "-_.", "machine type", err)) < 0)
        return r;
    if (cfg->machine.acceleration) {
        _cleanup_free_ char *copy = strdup(cfg->machine.acceleration);
        char *save = NULL;
        int n = 0;
        for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save), n++)
            if (strcmp(t, "kvm") && strcmp(t, "tcg") && strcmp(t, "xen") && strcmp(t, "qtest"))
                return sv_field_error(err, "machine", "acceleration",
                                      "unknown accelerator \"%s\" (allowed: kvm, tcg, xen, qtest, "
                                      "joined by ':')", t);
        if (n == 0 || strstr(cfg->machine.acceleration, "::"))
            return sv_field_error(err, "machine", "acceleration", "is empty");
    }
    if ((r = check_option_list("machine", "options", cfg->machine.options, err)) < 0)
        return r;
    if (cfg->machine.options && (cfg->memory.size) &&
        (cfg->knobs.huge_pages || cfg->knobs.file_backed_mem || cfg->knobs.mem_shared ||
         cfg->knobs.mem_prealloc) && strstr(cfg->machine.options, "memory-backend="))
        return sv_field_error(err, "machine", "options",
                              "memory-backend is set by the memory knobs already");
    for (size_t i = 0; i < cfg->n_qmp_sockets; i++) {
        const sv_qqmp_socket *q = &cfg->qmp_sockets[i];
        _cleanup_free_ char *p = sv_json_path_index("qmp_sockets", i);
        if (!q->name == !q->fd)
            return sv_field_error(err, p, "name", "exactly one of name and fd is required");
        if (q->name && (r = sv_check_abs_path(p, "name", q->name, true, err)) < 0)
            return r;
        if (q->no_wait && !q->server)
            return sv_field_error(err, p, "no_wait", "only applies with server");
    }
    if (cfg->memory.size || cfg->memory.max_mem || cfg->memory.slots || cfg->memory.path) {
        if (!cfg->memory.size)
            return sv_field_error(err, "memory", "size", "is required");
        if ((r = sv_check_size("memory", "size", cfg->memory.size, err)) < 0)
            return r;
        if (cfg->memory.max_mem && (r = sv_check_size("memory", "max_mem", cfg->memory.max_mem, err)) < 0)
            return r;
        if ((r = sv_check_abs_path("memory", "path", cfg->memory.path, false, err)) < 0)
            return r;
        if (cfg->memory.slots && !cfg->memory.max_mem)
            return sv_field_error(err, "memory", "slots", "needs max_mem");
    }
    if ((cfg->knobs.huge_pages || cfg->knobs.file_backed_mem || cfg->knobs.mem_shared ||
         cfg->knobs.mem_prealloc) && !cfg->memory.size)
        return sv_field_error(err, "knobs", cfg->knobs.huge_pages ? "huge_pages" :
                              cfg->knobs.file_backed_mem ? "file_backed_mem" :
                              cfg->knobs.mem_shared ? "mem_shared" : "mem_prealloc",
                              "needs memory.size");
    if (cfg->knobs.file_backed_mem && !cfg->knobs.huge_pages && !cfg->memory.path)
        return sv_field_error(err, "knobs", "file_backed_mem", "needs memory.path");
    if (cfg->smp.max_cpus && cfg->smp.max_cpus < cfg->smp.cpus)
        return sv_field_error(err, "smp", "max_cpus", "%lld is less than cpus (%lld)",
                              (long long)cfg->smp.max_cpus, (long long)cfg->smp.cpus);
    if (!cfg->smp.cpus && (cfg->smp.cores || cfg->smp.threads || cfg->smp.sockets || cfg->smp.dies ||
                           cfg->smp.max_cpus))
        return sv_field_error(err, "smp", "cpus", "is required with the other smp keys");
    if (cfg->kernel.initrd_path || cfg->kernel.params || cfg->kernel.path) {
        if ((r = sv_check_abs_path("kernel", "path", cfg->kernel.path, true, err)) < 0 ||
            (r = sv_check_abs_path("kernel", "initrd_path", cfg->kernel.initrd_path, false, err)) < 0)
            return r;
    }
    if (cfg->rtc.base || cfg->rtc.clock || cfg->rtc.drift_fix) {
        if (!cfg->rtc.base)
            return sv_field_error(err, "rtc", "base", "is required");
        if ((r = check_rtc_base(cfg->rtc.base, err)) < 0)
            return r;
    }
    if (cfg->vga) {
        static const char *const vgas[] = {"none", "std", "cirrus", "vmware", "qxl", "virtio", "ramfb", "bochs"};
        bool ok = false;
        for (size_t i = 0; i < SV_ARRAY_SIZE(vgas) && !ok; i++)
            ok = strcmp(cfg->vga, vgas[i]) == 0;
        if (!ok)
            return sv_field_error(err, "", "vga",
                                  "unknown VGA type (allowed: none, std, cirrus, vmware, qxl, virtio, ramfb, bochs)");
    }
    if (cfg->global_param && (r = check_global(cfg->global_param, err)) < 0)
        return r;
    if (cfg->bios && cfg->bios[0] != '/' && (strchr(cfg->bios, '/') || !*cfg->bios))
        return sv_field_error(err, "", "bios",
                              "must be an absolute path or a file name from QEMU's firmware directory");
    for (size_t i = 0; cfg->pflash && cfg->pflash[i]; i++) {
        _cleanup_free_ char *p = sv_json_path_index("pflash", i);
        if ((r = sv_check_abs_path("", p ? p : "pflash", cfg->pflash[i], true, err)) < 0)
            return r;
    }
    if ((r = validate_incoming(&cfg->incoming, err)) < 0)
        return r;
    for (size_t i = 0; i < cfg->n_fw_cfg; i++) {
        const sv_qfw_cfg *f = &cfg->fw_cfg[i];
        _cleanup_free_ char *p = sv_json_path_index("fw_cfg", i);
        if ((r = sv_check_required(p, "name", f->name, err)) < 0)
            return r;
        if (strlen(f->name) > 55)
            return sv_field_error(err, p, "name", "is longer than QEMU's 55 bytes");
        if (!f->file == !f->str)
            return sv_field_error(err, p, "file", "exactly one of file and str is required");
        if (f->file && (r = sv_check_abs_path(p, "file", f->file, true, err)) < 0)
            return r;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->fw_cfg[j].name, f->name) == 0)
                return sv_field_error(err, p, "name", "duplicates fw_cfg[%zu]", j);
    }
    for (size_t i = 0; i < cfg->n_io_threads; i++) {
        _cleanup_free_ char *p = sv_json_path_index("io_threads", i);
        if ((r = sv_check_id(p, "id", cfg->io_threads[i].id, true, err)) < 0)
            return r;
    }
    if ((r = sv_check_abs_path("", "pid_file", cfg->pid_file, false, err)) < 0 ||
        (r = sv_check_abs_path("", "log_file", cfg->log_file, false, err)) < 0)
        return r;
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *d = &cfg->devices[i];
        _cleanup_free_ char *p = sv_json_path_index("devices", i);
        if ((r = sv_qdev_table[d->type]->validate(d, cfg, p ? p : "devices", err)) < 0)
            return r;
    }
    return 0;
}
