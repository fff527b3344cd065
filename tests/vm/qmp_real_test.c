/*
 * The typed QMP calls against the real QEMU (qemu-system-x86_64, q35, TCG,
 * started paused by sandvm's own spawn code with the QMP socket passed in):
 * every read-only query, hotplug and unplug of the device kinds whose unplug
 * QEMU completes without a guest (virtserialport, scsi-hd) and of one it does
 * not (virtio-rng-pci behind a PCIe root port: device_del is accepted, no
 * DEVICE_DELETED), getfd with a socket QEMU then uses, object-add/del, qom
 * round trip of hostile bytes, dump-guest-memory, a migration to a file and
 * back into a second QEMU started with -incoming defer, and quit.
 *
 * Every command the client sent is then checked against QEMU's own
 * query-qmp-schema (command and argument names, JSON types, enum values,
 * nothing deprecated), and every device_add property against
 * device-list-properties of its driver.
 *
 * Output: one PASS/FAIL line per check, then "N passed, N failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qemu/qmp.h"
#include "qemu/qmp_cmds.h"
#include "util/cleanup.h"
#include "util/proc.h"
#include "util/qopts.h"
#include "util/sock.h"
#include "util/strbuf.h"

#define QEMU "qemu-system-x86_64"
#define STEP_MS 15000

static size_t npass, nfail;
static json_object *sent; /* every command sent to any QEMU, for the schema check */
static char *dir;

static void pass(const char *what)
{
    printf("PASS %s\n", what);
    npass++;
}

static bool failed(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool failed(const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", what);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    nfail++;
    return false;
}

/* A call's outcome as a check: `r` < 0 fails with the error's message. */
static bool check(const char *what, int r, sv_error **err)
{
    if (r < 0) {
        failed(what, "%s", sv_error_message(*err));
        sv_error_free(*err);
        *err = NULL;
        return false;
    }
    pass(what);
    return true;
}

static bool expect(const char *what, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool expect(const char *what, bool ok, const char *fmt, ...)
{
    if (ok) {
        pass(what);
        return true;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", what);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    nfail++;
    return false;
}

static void trace(json_object *cmd, const sv_qmp_msg *msg, void *opaque)
{
    json_object *copy = NULL;
    if (cmd && json_object_deep_copy(cmd, &copy, NULL) == 0)
        json_object_array_add(sent, copy);
}

/* ---- QEMU, paused, with QMP on a passed socket. */

typedef struct vm {
    sv_proc *p;
    sv_qmp *q;
} vm;

static void vm_free(vm *v)
{
    sv_qmp_free(v->q);
    sv_proc_free(v->p);
    memset(v, 0, sizeof(*v));
}

/* Starts QEMU with the base options plus `extra` (NULL-terminated) and
 * negotiates QMP. */
static bool vm_start(vm *v, const char *name, const char *const *extra, sv_error **err)
{
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/%s.qmp", dir, name) < 0)
        return false;
    _cleanup_close_ int l = sv_unix_listen(path, err);
    if (l < 0)
        return false;
    int c = sv_unix_connect(path, sv_deadline_ms(STEP_MS), err);
    unlink(path);
    if (c < 0)
        return false;
    const char *base[] = {QEMU,
                          "-machine",
                          "q35,accel=tcg",
                          "-nodefaults",
                          "-no-user-config",
                          "-display",
                          "none",
                          "-S",
                          "-chardev",
                          "socket,id=qmp,fd=3,server=on,wait=off",
                          "-mon",
                          "chardev=qmp,mode=control"};
    size_t nb = SV_ARRAY_SIZE(base), ne = 0;
    while (extra && extra[ne])
        ne++;
    _cleanup_free_ char **argv = calloc(nb + ne + 1, sizeof(char *));
    if (!argv)
        return false;
    for (size_t i = 0; i < nb; i++)
        argv[i] = (char *)base[i];
    for (size_t i = 0; i < ne; i++)
        argv[nb + i] = (char *)extra[i];
    int fds[] = {l};
    sv_spawn_opts so = {.program = NULL, .fds = fds, .nfds = 1};
    if (sv_proc_spawn(argv, &so, &v->p, err) < 0) {
        close(c);
        return false;
    }
    close(TAKE_FD(l));
    v->q = sv_qmp_new(c);
    if (!v->q)
        return false;
    sv_qmp_set_watch_fd(v->q, sv_proc_pidfd(v->p));
    sv_qmp_set_trace(v->q, trace, NULL);
    if (sv_qmp_handshake(v->q, sv_deadline_ms(STEP_MS), err) < 0) {
        sv_error_prefix(err, "%s (stderr: %s)", name, sv_proc_stderr(v->p));
        return false;
    }
    return true;
}

/* Quits and checks QEMU exits with status 0. */
static void vm_quit(vm *v, const char *name)
{
    sv_error *err = NULL;
    char what[96];
    snprintf(what, sizeof(what), "%s: quit", name);
    if (!check(what, sv_qmp_quit(v->q, SV_QMP_DEADLINE_DEFAULT, &err), &err))
        return;
    snprintf(what, sizeof(what), "%s: QMP closes after quit", name);
    check(what, sv_qmp_wait_closed(v->q, SV_QMP_DEADLINE_DEFAULT, &err), &err);
    int status = -1;
    int r = sv_proc_wait(v->p, sv_deadline_ms(STEP_MS), &status, NULL);
    snprintf(what, sizeof(what), "%s: exits with status 0", name);
    expect(what, r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait %d, status %d", r,
           status);
}

/* ---- The main VM: queries and hotplug. */

static const sv_qmp_pci_device *find_pci(const sv_qmp_pci_device *d, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (d[i].qdev_id && !strcmp(d[i].qdev_id, id))
            return &d[i];
    return NULL;
}

static void queries(vm *v)
{
    sv_error *err = NULL;
    const sv_qmp_version *ver = sv_qmp_qemu_version(v->q);
    expect("greeting version is 7.x or later", ver && ver->major >= 7, "%d.%d.%d",
           ver ? ver->major : -1, ver ? ver->minor : -1, ver ? ver->micro : -1);

    sv_qmp_status st;
    if (check("query-status", sv_qmp_query_status(v->q, 0, &st, &err), &err))
        expect("query-status: prelaunch", st.state == SV_QMP_RUN_PRELAUNCH && !st.running, "%s",
               sv_qmp_run_state_name(st.state));

    sv_qmp_cpu_info *ci = NULL;
    size_t n = 0;
    if (check("query-cpus-fast", sv_qmp_query_cpus_fast(v->q, 0, &ci, &n, &err), &err)) {
        char task[64] = "";
        if (n == 1)
            snprintf(task, sizeof(task), "/proc/%d/task/%lld", (int)sv_proc_pid(v->p),
                     (long long)ci[0].thread_id);
        struct stat sb;
        expect("query-cpus-fast: one vCPU, a thread of QEMU", n == 1 && stat(task, &sb) == 0,
               "%zu cpus, %s", n, task);
        sv_qmp_cpu_infos_free(ci, n);
    }

    sv_qmp_hotpluggable_cpu *hc = NULL;
    if (check("query-hotpluggable-cpus", sv_qmp_query_hotpluggable_cpus(v->q, 0, &hc, &n, &err),
              &err)) {
        size_t free_slots = 0;
        for (size_t i = 0; i < n; i++)
            free_slots += !hc[i].qom_path;
        expect("query-hotpluggable-cpus: 2 slots, 1 free", n == 2 && free_slots == 1,
               "%zu slots, %zu free", n, free_slots);
        sv_qmp_hotpluggable_cpus_free(hc, n);
    }

    sv_qmp_pci_device *pd = NULL;
    if (check("query-pci", sv_qmp_query_pci(v->q, 0, &pd, &n, &err), &err)) {
        const sv_qmp_pci_device *rp = find_pci(pd, n, "rp0");
        /* secondary bus numbers are the firmware's to assign: 0 before it ran */
        expect("query-pci: rp0 is a bridge, vser0 and scsi0 present",
               rp && rp->secondary_bus >= 0 && find_pci(pd, n, "vser0") && find_pci(pd, n, "scsi0"),
               "rp0 %s", rp ? "without pci_bridge" : "missing");
        sv_qmp_pci_devices_free(pd, n);
    }

    sv_qmp_migration_info mi;
    if (check("query-migrate", sv_qmp_query_migrate(v->q, 0, &mi, &err), &err)) {
        expect("query-migrate: none yet", mi.status == SV_QMP_MIG_NONE, "%s",
               sv_qmp_migration_status_name(mi.status));
        sv_qmp_migration_info_clear(&mi);
    }

    _cleanup_json_ json_object *type = NULL;
    if (check("qom-get /machine type", sv_qmp_qom_get(v->q, "/machine", "type", 0, &type, &err),
              &err))
        expect("qom-get: a q35 machine",
               json_object_is_type(type, json_type_string) &&
                   strstr(json_object_get_string(type), "q35"),
               "%s", json_object_to_json_string(type));

    /* bytes that must come back exactly: QEMU escapes non-ASCII as \u, emoji
     * as a surrogate pair */
    static const char hostile[] =
        "a\"b\\c\x01\n\t \xe2\x80\xa8 \xf0\x9f\x98\x80 \xc3\xa9 ,readonly=on";
    _cleanup_json_ json_object *hv = json_object_new_string(hostile);
    _cleanup_json_ json_object *back = NULL;
    if (check("qom-set /machine append (hostile bytes)",
              sv_qmp_qom_set(v->q, "/machine", "append", hv, 0, &err), &err) &&
        check("qom-get /machine append", sv_qmp_qom_get(v->q, "/machine", "append", 0, &back, &err),
              &err))
        expect("qom round trip is byte-exact",
               json_object_is_type(back, json_type_string) &&
                   (size_t)json_object_get_string_len(back) == sizeof(hostile) - 1 &&
                   !memcmp(json_object_get_string(back), hostile, sizeof(hostile) - 1),
               "got %s", json_object_to_json_string(back));
}

static void memory_and_objects(vm *v)
{
    sv_error *err = NULL;
    _cleanup_qopts_ sv_qopts *mem = sv_qopts_new("qom-type", "memory-backend-ram");
    sv_qopts_str(mem, "id", "mem1");
    sv_qopts_int(mem, "size", 128 << 20);
    _cleanup_qopts_ sv_qopts *dimm = sv_qopts_new("driver", "pc-dimm");
    sv_qopts_str(dimm, "id", "dimm1");
    sv_qopts_str(dimm, "memdev", "mem1");
    if (check("object-add memory-backend-ram", sv_qmp_object_add(v->q, mem, 0, &err), &err) &&
        check("device_add pc-dimm", sv_qmp_device_add(v->q, dimm, 0, &err), &err)) {
        sv_qmp_memory_device *md = NULL;
        size_t n = 0;
        if (check("query-memory-devices", sv_qmp_query_memory_devices(v->q, 0, &md, &n, &err),
                  &err)) {
            expect("query-memory-devices: dimm1, 128 MiB",
                   n == 1 && !strcmp(md[0].type, "dimm") && md[0].id &&
                       !strcmp(md[0].id, "dimm1") && md[0].size == (128 << 20),
                   "%zu devices", n);
            sv_qmp_memory_devices_free(md, n);
        }
    }
    _cleanup_qopts_ sv_qopts *io = sv_qopts_new("qom-type", "iothread");
    sv_qopts_str(io, "id", "io0");
    sv_qopts_int(io, "poll-max-ns", 0);
    if (check("object-add iothread", sv_qmp_object_add(v->q, io, 0, &err), &err))
        check("object-del iothread", sv_qmp_object_del(v->q, "io0", 0, &err), &err);
    check("balloon", sv_qmp_balloon(v->q, 64 << 20, 0, &err), &err);
}

static void hotplug(vm *v)
{
    sv_error *err = NULL;
    /* a PCIe device: QEMU accepts device_del, but only a guest completes it */
    _cleanup_qopts_ sv_qopts *rng = sv_qopts_new("driver", "virtio-rng-pci");
    sv_qopts_str(rng, "id", "rng0");
    sv_qopts_str(rng, "bus", "rp0");
    sv_qopts_int(rng, "max-bytes", 1024);
    sv_qopts_int(rng, "period", 1000);
    sv_qopts_bool(rng, "disable-modern", false);
    if (check("device_add virtio-rng-pci (typed int/bool props)",
              sv_qmp_device_add(v->q, rng, 0, &err), &err)) {
        /* behind a root port the firmware has not numbered yet, query-pci
         * lists nothing: read the typed properties back instead */
        _cleanup_json_ json_object *mb = NULL, *dm = NULL;
        if (check("qom-get rng0 max-bytes",
                  sv_qmp_qom_get(v->q, "/machine/peripheral/rng0", "max-bytes", 0, &mb, &err),
                  &err) &&
            check("qom-get rng0 disable-modern",
                  sv_qmp_qom_get(v->q, "/machine/peripheral/rng0", "disable-modern", 0, &dm, &err),
                  &err))
            expect("rng0 has max-bytes 1024 and disable-modern false",
                   json_object_is_type(mb, json_type_int) && json_object_get_int64(mb) == 1024 &&
                       json_object_is_type(dm, json_type_boolean) && !json_object_get_boolean(dm),
                   "%s %s", json_object_to_json_string(mb), json_object_to_json_string(dm));
        if (check("device_del virtio-rng-pci (accepted)", sv_qmp_device_del(v->q, "rng0", 0, &err),
                  &err)) {
            int r = sv_qmp_wait_event(v->q, "DEVICE_DELETED", "device", "rng0", sv_deadline_ms(500),
                                      NULL, &err);
            printf("note: DEVICE_DELETED for rng0 without a guest: %s\n",
                   r == 0 ? "arrived" : sv_error_message(err));
            sv_error_free(err);
            err = NULL;
        }
    }

    /* virtio-serial unplugs at once: DEVICE_DELETED (before the reply) */
    _cleanup_free_ char *sock = NULL;
    if (asprintf(&sock, "%s/port0.sock", dir) < 0)
        return;
    _cleanup_qopts_ sv_qopts *port = sv_qopts_new("driver", "virtserialport");
    sv_qopts_str(port, "id", "port0");
    sv_qopts_str(port, "bus", "vser0.0");
    sv_qopts_str(port, "chardev", "ch0");
    sv_qopts_str(port, "name", "org.sandvm.test.0");
    if (check("chardev-add unix socket server",
              sv_qmp_chardev_add_unix_socket(v->q, "ch0", sock, true, false, 0, &err), &err) &&
        check("device_add virtserialport", sv_qmp_device_add(v->q, port, 0, &err), &err) &&
        check("device_del virtserialport + DEVICE_DELETED",
              sv_qmp_device_del_wait(v->q, "port0", 0, &err), &err))
        check("chardev-remove", sv_qmp_chardev_remove(v->q, "ch0", 0, &err), &err);
    _cleanup_free_ char *csock = NULL;
    if (asprintf(&csock, "%s/client.sock", dir) >= 0) {
        _cleanup_close_ int l = sv_unix_listen(csock, NULL);
        if (check("chardev-add unix socket client",
                  sv_qmp_chardev_add_unix_socket(v->q, "ch1", csock, false, false, 0, &err), &err))
            check("chardev-remove client", sv_qmp_chardev_remove(v->q, "ch1", 0, &err), &err);
    }

    /* a block node behind scsi-hd: scsi unplugs at once, then the node goes */
    _cleanup_free_ char *img = NULL;
    if (asprintf(&img, "%s/disk,readonly=off.img", dir) < 0)
        return;
    int fd = open(img, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 1 << 20) < 0) {
        failed("disk image", "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    _cleanup_qopts_ sv_qopts *node = sv_qopts_new(NULL, NULL);
    sv_qopts_str(node, "driver", "raw");
    sv_qopts_str(node, "node-name", "drv0");
    sv_qopts_str(node, "file.driver", "file");
    sv_qopts_str(node, "file.filename", img);
    sv_qopts_bool(node, "read-only", true);
    _cleanup_qopts_ sv_qopts *disk = sv_qopts_new("driver", "scsi-hd");
    sv_qopts_str(disk, "id", "disk0");
    sv_qopts_str(disk, "bus", "scsi0.0");
    sv_qopts_str(disk, "drive", "drv0");
    sv_qopts_int(disk, "scsi-id", 1);
    sv_qopts_bool(disk, "share-rw", true);
    if (check("blockdev-add (nested from -blockdev qopts)",
              sv_qmp_blockdev_add(v->q, node, 0, &err), &err) &&
        check("device_add scsi-hd", sv_qmp_device_add(v->q, disk, 0, &err), &err) &&
        check("device_del scsi-hd + DEVICE_DELETED", sv_qmp_device_del_wait(v->q, "disk0", 0, &err),
              &err))
        check("blockdev-del", sv_qmp_blockdev_del(v->q, "drv0", 0, &err), &err);

    /* getfd: a socket QEMU then uses as a netdev backend */
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return;
    _cleanup_qopts_ sv_qopts *net = sv_qopts_new("type", "socket");
    sv_qopts_str(net, "id", "net0");
    sv_qopts_str(net, "fd", "sock0");
    if (check("getfd (SCM_RIGHTS)", sv_qmp_getfd(v->q, "sock0", sp[0], 0, &err), &err) &&
        check("netdev_add socket on the passed fd", sv_qmp_netdev_add(v->q, net, 0, &err), &err))
        check("netdev_del", sv_qmp_netdev_del(v->q, "net0", 0, &err), &err);
    if (check("getfd spare", sv_qmp_getfd(v->q, "spare", sp[1], 0, &err), &err))
        check("closefd spare", sv_qmp_closefd(v->q, "spare", 0, &err), &err);
    close(sp[0]);
    close(sp[1]);
    _cleanup_qopts_ sv_qopts *user = sv_qopts_new("type", "user");
    sv_qopts_str(user, "id", "net1");
    if (check("netdev_add user", sv_qmp_netdev_add(v->q, user, 0, &err), &err))
        check("netdev_del user", sv_qmp_netdev_del(v->q, "net1", 0, &err), &err);

    /* refused by QEMU: EIO with its class and description */
    int r = sv_qmp_device_del(v->q, "no-such-device", 0, &err);
    expect("device_del of an unknown id: EIO DeviceNotFound",
           r == -EIO && strstr(sv_error_message(err), "DeviceNotFound"), "%d %s", r,
           sv_error_message(err));
    sv_error_free(err);
}

static void run_control(vm *v)
{
    sv_error *err = NULL;
    sv_qmp_status st;
    if (check("cont", sv_qmp_cont(v->q, 0, &err), &err) &&
        check("query-status after cont", sv_qmp_query_status(v->q, 0, &st, &err), &err))
        expect("running after cont", st.state == SV_QMP_RUN_RUNNING, "%s",
               sv_qmp_run_state_name(st.state));
    if (check("stop", sv_qmp_stop(v->q, 0, &err), &err) &&
        check("query-status after stop", sv_qmp_query_status(v->q, 0, &st, &err), &err))
        expect("paused after stop", st.state == SV_QMP_RUN_PAUSED, "%s",
               sv_qmp_run_state_name(st.state));
    check("STOP event queued",
          sv_qmp_wait_event(v->q, "STOP", NULL, NULL, sv_deadline_ms(2000), NULL, &err), &err);
    check("system_powerdown", sv_qmp_system_powerdown(v->q, 0, &err), &err);
}

/* ---- Save and restore through a file, and a memory dump. */

static bool wait_migration(vm *v, const char *name)
{
    sv_error *err = NULL;
    int64_t deadline = sv_deadline_ms(30000);
    for (;;) {
        sv_qmp_migration_info mi;
        char what[96];
        snprintf(what, sizeof(what), "%s: query-migrate", name);
        if (sv_qmp_query_migrate(v->q, 0, &mi, &err) < 0)
            return check(what, -1, &err);
        sv_qmp_migration_status s = mi.status;
        _cleanup_free_ char *desc = mi.error_desc ? strdup(mi.error_desc) : NULL;
        sv_qmp_migration_info_clear(&mi);
        snprintf(what, sizeof(what), "%s: migration completed", name);
        if (s == SV_QMP_MIG_COMPLETED)
            return expect(what, true, " ");
        if (s == SV_QMP_MIG_FAILED || s == SV_QMP_MIG_CANCELLED || sv_now_ms() > deadline)
            return expect(what, false, "%s %s", sv_qmp_migration_status_name(s), desc ? desc : "");
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void save_restore(void)
{
    sv_error *err = NULL;
    _cleanup_free_ char *state = NULL, *core = NULL, *out_uri = NULL, *in_uri = NULL,
                        *dump_proto = NULL;
    if (asprintf(&state, "%s/state", dir) < 0 || asprintf(&core, "%s/core", dir) < 0 ||
        asprintf(&out_uri, "exec:cat > %s", state) < 0 ||
        asprintf(&in_uri, "exec:cat %s", state) < 0 || asprintf(&dump_proto, "file:%s", core) < 0)
        return;
    static const char *const small[] = {"-m", "64M", NULL};
    static const char *const incoming[] = {"-m", "64M", "-incoming", "defer", NULL};

    vm src = {0};
    if (!vm_start(&src, "source", small, &err)) {
        check("source: start", -1, &err);
        vm_free(&src);
        return;
    }
    if (check(
            "dump-guest-memory",
            sv_qmp_dump_guest_memory(src.q, dump_proto, false, "elf", sv_deadline_ms(60000), &err),
            &err)) {
        struct stat sb;
        expect("dump-guest-memory wrote the guest's RAM",
               stat(core, &sb) == 0 && sb.st_size >= (64 << 20), "size %lld",
               (long long)sb.st_size);
        unlink(core);
    }
    /* what Kata sets for VM templating (x-ignore-shared, once bypass-shared-memory) */
    static const sv_qmp_migrate_cap caps[] = {{"x-ignore-shared", true}};
    _cleanup_json_ json_object *params = json_object_new_object();
    json_object_object_add(params, "max-bandwidth", json_object_new_int64(INT64_C(1) << 34));
    if (check("migrate-set-capabilities", sv_qmp_migrate_set_capabilities(src.q, caps, 1, 0, &err),
              &err) &&
        check("migrate-set-parameters", sv_qmp_migrate_set_parameters(src.q, params, 0, &err),
              &err) &&
        check("migrate to a file", sv_qmp_migrate(src.q, out_uri, 0, &err), &err) &&
        wait_migration(&src, "source")) {
        sv_qmp_status st;
        if (check("source: query-status", sv_qmp_query_status(src.q, 0, &st, &err), &err))
            expect("source: postmigrate", st.state == SV_QMP_RUN_POSTMIGRATE, "%s",
                   sv_qmp_run_state_name(st.state));
    }
    vm_quit(&src, "source");
    vm_free(&src);

    vm dst = {0};
    if (!vm_start(&dst, "target", incoming, &err)) {
        check("target: start", -1, &err);
        vm_free(&dst);
        return;
    }
    sv_qmp_status st;
    if (check("target: query-status", sv_qmp_query_status(dst.q, 0, &st, &err), &err))
        expect("target: inmigrate", st.state == SV_QMP_RUN_INMIGRATE, "%s",
               sv_qmp_run_state_name(st.state));
    if (check("target: migrate-set-capabilities",
              sv_qmp_migrate_set_capabilities(dst.q, caps, 1, 0, &err), &err) &&
        check("migrate-incoming from the file", sv_qmp_migrate_incoming(dst.q, in_uri, 0, &err),
              &err) &&
        wait_migration(&dst, "target") &&
        check("target: query-status after restore", sv_qmp_query_status(dst.q, 0, &st, &err), &err))
        /* QEMU restores the source's state: it never ran, so prelaunch */
        expect("target: restored, not running",
               !st.running && (st.state == SV_QMP_RUN_PRELAUNCH || st.state == SV_QMP_RUN_PAUSED),
               "%s", sv_qmp_run_state_name(st.state));
    vm_quit(&dst, "target");
    vm_free(&dst);
    unlink(state);
}

/* ---- Everything sent, against QEMU's own schema. */

static bool has_prop(json_object *props, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(props); i++) {
        json_object *n;
        if (json_object_object_get_ex(json_object_array_get_idx(props, i), "name", &n) &&
            !strcmp(json_object_get_string(n), name))
            return true;
    }
    return false;
}

static void schema_check(void)
{
    sv_error *err = NULL;
    vm v = {0};
    static const char *const none[] = {NULL};
    if (!vm_start(&v, "schema", none, &err)) {
        check("schema: start", -1, &err);
        vm_free(&v);
        return;
    }
    /* the commands sent from now on are the schema queries themselves */
    json_object *commands = sent;
    sent = json_object_new_array();
    _cleanup_json_ json_object *schema = NULL;
    _cleanup_qmp_schema_ sv_qmp_schema *s = NULL;
    if (!check("query-qmp-schema", sv_qmp_query_qmp_schema(v.q, 0, &schema, &err), &err) ||
        !check("schema index", sv_qmp_schema_new(schema, &s, &err), &err)) {
        json_object_put(commands);
        vm_quit(&v, "schema");
        vm_free(&v);
        return;
    }
    size_t n = json_object_array_length(commands), bad = 0;
    json_object *names = json_object_new_object();
    for (size_t i = 0; i < n; i++) {
        json_object *cmd = json_object_array_get_idx(commands, i), *exec, *args = NULL;
        json_object_object_get_ex(cmd, "execute", &exec);
        json_object_object_get_ex(cmd, "arguments", &args);
        const char *name = json_object_get_string(exec);
        json_object_object_add(names, name, NULL);
        if (sv_qmp_schema_check(s, name, args, &err) < 0) {
            failed("schema", "%s", sv_error_message(err));
            sv_error_free(err);
            err = NULL;
            bad++;
            continue;
        }
        if (strcmp(name, "device_add") != 0)
            continue;
        /* device_add's properties: against the driver's own list */
        json_object *drv;
        json_object_object_get_ex(args, "driver", &drv);
        _cleanup_json_ json_object *q = json_object_new_object(), *props = NULL;
        json_object_object_add(q, "typename", json_object_get(drv));
        if (sv_qmp_execute(v.q, "device-list-properties", q, 0, &props, &err) < 0) {
            failed("device-list-properties", "%s", sv_error_message(err));
            sv_error_free(err);
            err = NULL;
            bad++;
            continue;
        }
        json_object_object_foreach(args, key, val)
        {
            (void)val;
            if (strcmp(key, "driver") && strcmp(key, "id") && strcmp(key, "bus") &&
                !has_prop(props, key)) {
                failed("device_add property", "%s has no property %s", json_object_get_string(drv),
                       key);
                bad++;
            }
        }
    }
    _cleanup_free_ char *list = NULL;
    {
        sv_strbuf sb = SV_STRBUF_INIT;
        json_object_object_foreach(names, key, val)
        {
            (void)val;
            sv_strbuf_appendf(&sb, "%s%s", sb.len ? " " : "", key);
        }
        list = sv_strbuf_steal(&sb);
    }
    char what[160];
    snprintf(what, sizeof(what), "all %zu commands sent (%d kinds) match QEMU's schema", n,
             json_object_object_length(names));
    expect(what, bad == 0 && n > 40, "%zu mismatches", bad);
    printf("note: commands checked: %s\n", list ? list : "?");
    json_object_put(names);
    json_object_put(commands);
    vm_quit(&v, "schema");
    vm_free(&v);
}

int main(void)
{
    sent = json_object_new_array();
    sv_error *err = NULL;
    if (sv_private_dir_new(&dir, &err) < 0) {
        fprintf(stderr, "%s\n", sv_error_message(err));
        return 1;
    }
    static const char *const main_vm[] = {
        "-m",      "128M,slots=2,maxmem=1G",          "-smp",    "1,maxcpus=2",
        "-device", "pcie-root-port,id=rp0,chassis=1", "-device", "pcie-root-port,id=rp1,chassis=2",
        "-device", "virtio-serial-pci,id=vser0",      "-device", "virtio-scsi-pci,id=scsi0",
        "-device", "virtio-balloon-pci,id=balloon0",  NULL};
    vm v = {0};
    if (vm_start(&v, "main", main_vm, &err)) {
        pass("main: start paused, QMP handshake");
        queries(&v);
        memory_and_objects(&v);
        hotplug(&v);
        run_control(&v);
        vm_quit(&v, "main");
        _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
        check("main: SHUTDOWN queued before quit's reply",
              sv_qmp_wait_event(v.q, "SHUTDOWN", "reason", "host-qmp-quit", sv_deadline_ms(100),
                                &ev, &err),
              &err);
    } else {
        check("main: start paused, QMP handshake", -1, &err);
    }
    vm_free(&v);
    save_restore();
    schema_check();
    json_object_put(sent);
    sv_private_dir_remove(dir);
    free(dir);
    printf("%zu passed, %zu failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
