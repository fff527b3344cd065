/*
 * The QEMU backend of the VM lifecycle (hypervisor.h).
 *
 * A VM's QEMU runs detached from every sandvm process (util/proc.h), with
 * its sockets bound by sandvm in the VM's directory and passed in as fds:
 * qmp.sock (the monitor), console.sock (the console chardev) and exec.sock
 * (the agent's virtio-serial port); virtiofsd, when the config shares a
 * directory with virtio-fs, serves virtiofsd.sock the same way. QEMU writes
 * qemu.pid (-pidfile) and its stderr to qemu.log.
 *
 * A recorded pid is trusted only for the process it names: alive, started at
 * the recorded time, and carrying this VM's mark on its command line (QEMU:
 * "-pidfile <dir>/qemu.pid"; virtiofsd: "-o source=<escaped shared_dir>").
 * Anything else is "gone": it is never signalled, and the VM reads as crashed.
 * Waiting for a process to end polls its pidfd (a zombie counts as ended):
 * QEMU is not our child, so its reaping is init's business.
 *
 * Every QMP exchange happens under the VM's lock on a fresh connection, with
 * a deadline, and watches QEMU's pidfd, so a QEMU that dies mid-call ends the
 * call at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hypervisor.h"
#include "logger.h"
#include "qemu/arch/arch.h"
#include "qemu/hotplug.h"
#include "qemu/qemu_argv.h"
#include "qemu/qemu_config.h"
#include "qemu/qmp.h"
#include "qemu/qmp_cmds.h"
#include "qemu/resize.h"
#include "qemu/virtiofsd.h"
#include "util/argv.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/proc.h"
#include "util/sock.h"
#include "util/strbuf.h"

/* How long start() waits for QMP (and a restore) when the caller says 0. */
#define START_TIMEOUT_MS 30000
/* How long the guest gets to power off when the caller says 0. */
#define STOP_GRACE_MS 10000
/* How long a process gets to go away after SIGKILL (or QEMU after quit). */
#define EXIT_TIMEOUT_MS 10000
/* How long a QEMU that closed QMP gets to exit before a failed start blames QMP. */
#define EXIT_GRACE_MS 2000
/* How long a migration to a saved directory may take. */
#define SAVE_TIMEOUT_MS (10 * 60 * 1000)
/* Backlogs of the sockets sandvm binds. QEMU 7.2 resets a chardev's listening
 * fd to a backlog of 1 when it takes it; start() sets these again once QEMU
 * is up, so that waiting clients queue instead of being refused. */
#define QMP_BACKLOG 16
#define CONSOLE_BACKLOG 16
#define EXEC_BACKLOG 64
/* The send buffer of QEMU's end of the console when a logger reads it. */
#define CONSOLE_SNDBUF (8 << 20)
/* How much of qemu.log an error quotes. */
#define LOG_TAIL_MAX 4096
/* getfd names. */
#define FD_INCOMING "sv-incoming"
#define FD_SAVE "sv-save"

SV_DEFINE_CLEANUP(sv_qemu_config, sv_qemu_config_free)

/* ---- paths ------------------------------------------------------------------ */

/* The VM's directory as QEMU was (or will be) told: the recorded one, else
 * the current spelling. */
static const char *vm_dir_path(const sv_hv_vm *vm)
{
    return vm->st->paths.dir ? vm->st->paths.dir : sv_state_dir_path(vm->dir);
}

static char *vm_file(const sv_hv_vm *vm, const char *name)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", vm_dir_path(vm), name) < 0 ? NULL : s;
}

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

/* Sets the recorded paths of the VM's files. */
static int set_paths(sv_hv_vm *vm, sv_error **err)
{
    sv_vm_paths *p = &vm->st->paths;
    char *dir = strdup(sv_state_dir_path(vm->dir));
    if (!dir)
        return oom(err);
    free(p->dir);
    p->dir = dir;
    struct {
        char **field;
        const char *name;
    } files[] = {{&p->qmp_socket, SV_STATE_QMP_SOCKET},
                 {&p->console_socket, SV_STATE_CONSOLE_SOCKET},
                 {&p->exec_socket, SV_STATE_EXEC_SOCKET},
                 {&p->qemu_log, SV_STATE_QEMU_LOG},
                 {&p->virtiofsd_socket, SV_STATE_VIRTIOFSD_SOCKET}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(files); i++) {
        free(*files[i].field);
        *files[i].field = NULL;
        if (files[i].field == &p->virtiofsd_socket &&
            vm->config->shared_fs != SV_VM_SHARED_FS_VIRTIO_FS)
            continue;
        if (!(*files[i].field = vm_file(vm, files[i].name)))
            return oom(err);
    }
    return 0;
}

/* ---- processes ------------------------------------------------------------- */

/* 1 when `pid` (started at `start_time`; < 0: any time) is this VM's QEMU. */
static int is_our_qemu(const sv_hv_vm *vm, int64_t pid, int64_t start_time, int64_t *start_out)
{
    if (pid <= 0 || pid > INT32_MAX)
        return 0;
    _cleanup_free_ char *pidfile = vm_file(vm, SV_STATE_QEMU_PIDFILE);
    if (!pidfile)
        return 0;
    return sv_pid_has_args((pid_t)pid, start_time, "-pidfile", pidfile, start_out, NULL) == 1;
}

/* 1 when `pid` is this VM's virtiofsd. */
static int is_our_virtiofsd(const sv_hv_vm *vm, int64_t pid, int64_t start_time,
                            int64_t *start_out)
{
    if (pid <= 0 || pid > INT32_MAX || vm->config->shared_fs != SV_VM_SHARED_FS_VIRTIO_FS)
        return 0;
    _cleanup_free_ char *source = sv_virtiofsd_source_arg(vm->config);
    if (!source)
        return 0;
    return sv_pid_has_args((pid_t)pid, start_time, "-o", source, start_out, NULL) == 1;
}

/* A pidfd for the recorded process `p` when is_ours says it is ours, else -1. */
static int open_ours(const sv_hv_vm *vm, const sv_proc_ident *p,
                     int (*is_ours)(const sv_hv_vm *, int64_t, int64_t, int64_t *))
{
    if (!is_ours(vm, p->pid, p->start_time, NULL))
        return -1;
    /* sv_pid_open re-checks the start time after opening: the fd cannot
     * name a process that took the pid over meanwhile */
    int fd = sv_pid_open((pid_t)p->pid, p->start_time, NULL);
    return fd < 0 ? -1 : fd;
}

/* The process a pid file names, when it is ours: 1 with *out filled. */
static int pidfile_ours(const sv_hv_vm *vm, const char *name,
                        int (*is_ours)(const sv_hv_vm *, int64_t, int64_t, int64_t *),
                        sv_proc_ident *out)
{
    _cleanup_free_ char *text = NULL;
    if (sv_read_file_at(sv_state_dir_fd(vm->dir), name, 64, &text, NULL, NULL) < 0)
        return 0;
    char *end = NULL;
    errno = 0;
    long long pid = strtoll(text, &end, 10);
    if (errno || end == text || (*end && *end != '\n') || pid <= 0 || pid > INT32_MAX)
        return 0;
    int64_t start;
    if (!is_ours(vm, pid, -1, &start))
        return 0;
    out->pid = pid;
    out->start_time = start;
    return 1;
}

/* Waits until the process of `pidfd` has ended, up to `deadline`. */
static bool wait_gone(int pidfd, int64_t deadline)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    return sv_poll_deadline(&p, 1, deadline, NULL) > 0;
}

static bool exited(int pidfd)
{
    return pidfd >= 0 && wait_gone(pidfd, sv_now_ms());
}

/* SIGKILLs the process of `pidfd` and waits for it to end. */
static void kill_wait(int pidfd)
{
    if (pidfd < 0)
        return;
    sv_pidfd_kill(pidfd);
    wait_gone(pidfd, sv_deadline_ms(EXIT_TIMEOUT_MS));
}

/* Ends the process a record or a pid file names, if it is ours. */
static void end_process(sv_hv_vm *vm, sv_proc_ident *rec, const char *pidfile,
                        int (*is_ours)(const sv_hv_vm *, int64_t, int64_t, int64_t *))
{
    _cleanup_close_ int fd = open_ours(vm, rec, is_ours);
    kill_wait(fd);
    sv_proc_ident found = {0};
    if (pidfile_ours(vm, pidfile, is_ours, &found) &&
        (found.pid != rec->pid || found.start_time != rec->start_time)) {
        _cleanup_close_ int fd2 = open_ours(vm, &found, is_ours);
        kill_wait(fd2);
    }
    *rec = (sv_proc_ident){0};
}

/* 1 when `pid` is this VM's console logger (src/logger.h). */
static int is_our_logger(const sv_hv_vm *vm, int64_t pid, int64_t start_time, int64_t *start_out)
{
    if (pid <= 0 || pid > INT32_MAX)
        return 0;
    return sv_pid_has_args((pid_t)pid, start_time, SV_LOGGER_MARK, vm_dir_path(vm), start_out,
                           NULL) == 1;
}

/* Ends the console logger its pid file names, if it is this VM's. It ends
 * by itself once QEMU has: it gets a moment to write the last of the
 * console before it is killed. */
static void end_logger(sv_hv_vm *vm)
{
    sv_proc_ident found = {0};
    if (!pidfile_ours(vm, SV_STATE_LOGGER_PIDFILE, is_our_logger, &found))
        return;
    _cleanup_close_ int fd = open_ours(vm, &found, is_our_logger);
    if (fd >= 0 && !wait_gone(fd, sv_deadline_ms(EXIT_GRACE_MS / 2)))
        kill_wait(fd);
}

static const char *const runtime_files[] = {
    SV_STATE_QMP_SOCKET,     SV_STATE_CONSOLE_SOCKET,   SV_STATE_EXEC_SOCKET,
    SV_STATE_QEMU_LOG,       SV_STATE_QEMU_PIDFILE,     SV_STATE_VIRTIOFSD_SOCKET,
    SV_STATE_VIRTIOFSD_LOG,  SV_STATE_VIRTIOFSD_PIDFILE, SV_STATE_MEMORY_FILE,
    SV_STATE_LOGGER_PIDFILE, SV_STATE_CONSOLE_LOG,      SV_STATE_CONSOLE_LOG_OLD,
};

static void qemu_cleanup(sv_hv_vm *vm)
{
    /* QEMU first: virtiofsd must outlive its client */
    end_process(vm, &vm->st->qemu, SV_STATE_QEMU_PIDFILE, is_our_qemu);
    end_process(vm, &vm->st->virtiofsd, SV_STATE_VIRTIOFSD_PIDFILE, is_our_virtiofsd);
    end_logger(vm);
    for (size_t i = 0; i < SV_ARRAY_SIZE(runtime_files); i++)
        unlinkat(sv_state_dir_fd(vm->dir), runtime_files[i], 0);
}

/* ---- observing ----------------------------------------------------------------- */

static bool running_state(sv_vm_run_state s)
{
    return s == SV_VM_RUNNING || s == SV_VM_PAUSED;
}

/* From records alone. */
static void observe_procs(const sv_hv_vm *vm, sv_hv_observed *out)
{
    const sv_vm_state *st = vm->st;
    *out = (sv_hv_observed){.state = st->state};
    bool qemu = is_our_qemu(vm, st->qemu.pid, st->qemu.start_time, NULL);
    bool vfsd = is_our_virtiofsd(vm, st->virtiofsd.pid, st->virtiofsd.start_time, NULL);
    if (qemu)
        out->vmm_pid = st->qemu.pid;
    if (vfsd)
        out->virtiofsd_pid = st->virtiofsd.pid;
    if (!running_state(st->state))
        return;
    /* a VM whose virtiofsd died has lost its shared directory: crashed too */
    bool vfsd_needed = vm->config->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS;
    if (!qemu || (vfsd_needed && !vfsd)) {
        out->state = SV_VM_STOPPED;
        out->crashed = true;
    }
}

/* ---- QMP ------------------------------------------------------------------------ */

static char *log_tail(sv_hv_vm *vm, const char *name);

/* When QEMU (`pidfd`) exited during the QMP command `what`, which failed
 * with `r`: replaces *err with ECHILD "vm X: qemu exited during qmp WHAT:
 * <the end of its log>" and returns -ECHILD. A closed connection gets QEMU
 * a moment to finish exiting first. Else returns `r`, *err untouched. */
static int qemu_died(sv_hv_vm *vm, int pidfd, const char *what, int r, sv_error **err)
{
    bool closing = r == -ECONNRESET || r == -ECHILD || r == -EPIPE || r == -ECONNREFUSED;
    if (r >= 0 || pidfd < 0 ||
        !wait_gone(pidfd, closing ? sv_deadline_ms(EXIT_GRACE_MS) : sv_now_ms()))
        return r;
    _cleanup_free_ char *tail = log_tail(vm, SV_STATE_QEMU_LOG);
    sv_error *e = NULL;
    r = sv_error_set(&e, ECHILD, "vm %s: qemu exited during qmp %s%s%s", vm->id, what,
                     tail && *tail ? ": " : " (nothing in " SV_STATE_QEMU_LOG ")",
                     tail && *tail ? tail : "");
    if (err) {
        sv_error_free(*err);
        *err = e;
    } else {
        sv_error_free(e);
    }
    return r;
}

/* The state letter of /proc/PID/stat ('R', 'S', 'T' stopped, ...), or 0. */
static char proc_state(int64_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    _cleanup_close_ int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
    if (n <= 0)
        return 0;
    text[n] = '\0';
    const char *paren = strrchr(text, ')');
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* Whether QEMU's monitor at `path` serves another client while ours waits:
 * an accepted connection on that address (state 03 in /proc/net/unix) and
 * one still waiting in its backlog (state 02: ours, on which no greeting
 * came). QEMU serves one monitor client at a time; an accepted connection
 * alone is ours, taken by a QEMU that then said nothing. */
static bool monitor_held(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return false;
    bool accepted = false, waiting = false;
    char *line = NULL;
    size_t cap = 0, plen = strlen(path);
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        unsigned long flags = 0;
        unsigned st = 0, type = 0;
        char *p = strchr(line, ':');
        if (!p || (size_t)n < plen + 1 || strcmp(line + n - plen, path) != 0 ||
            line[n - plen - 1] != ' ' ||
            sscanf(p + 1, " %*x %*x %lx %x %x", &flags, &type, &st) != 3)
            continue;
        if (flags & 0x10000 /* __SO_ACCEPTCON: the listening socket */)
            continue;
        accepted |= st == 3;
        waiting |= st == 2;
    }
    free(line);
    fclose(f);
    return accepted && waiting;
}

/* Why a QMP session could not be opened, where that can be told: QEMU
 * exited (ECHILD with the end of its log), QEMU is stopped (SIGSTOP, a
 * debugger: the greeting never comes), or another client holds the monitor
 * (EBUSY). Else the error as it is, with the VM and the command. */
static int qmp_open_failed(sv_hv_vm *vm, int pidfd, const char *path, const char *what, int r,
                           sv_error **err)
{
    if (qemu_died(vm, pidfd, what, r, err) == -ECHILD)
        return -ECHILD;
    if (r != -ETIMEDOUT)
        return sv_error_prefix(err, "vm %s: qmp %s", vm->id, what);
    char state = proc_state(vm->st->qemu.pid);
    sv_error *e = NULL;
    if (state == 'T' || state == 't')
        r = sv_error_set(&e, ETIMEDOUT,
                         "vm %s: qmp %s: timed out waiting for the QMP greeting: qemu (pid %lld) "
                         "is stopped (SIGSTOP or a debugger); stop --force kills it",
                         vm->id, what, (long long)vm->st->qemu.pid);
    else if (monitor_held(path))
        r = sv_error_set(&e, EBUSY,
                         "vm %s: qmp %s: the QMP monitor is busy: another client is connected to "
                         "%s (QEMU serves one at a time)",
                         vm->id, what, path);
    else
        return sv_error_prefix(err, "vm %s: qmp %s", vm->id, what);
    if (err) {
        sv_error_free(*err);
        *err = e;
    } else {
        sv_error_free(e);
    }
    return r;
}

/* A QMP session with this VM's QEMU (`pidfd` watched) ready for commands,
 * all under `deadline`. `what` (the command the caller is about to send)
 * names the step in errors: "vm X: qmp query-status: timed out waiting for
 * the QMP greeting". */
static int qmp_open(sv_hv_vm *vm, int pidfd, int64_t deadline, const char *what, sv_qmp **out,
                    sv_error **err)
{
    _cleanup_free_ char *path = vm_file(vm, SV_STATE_QMP_SOCKET);
    if (!path)
        return oom(err);
    int fd = sv_unix_connect(path, deadline, err);
    if (fd < 0)
        return qmp_open_failed(vm, pidfd, path, what, fd, err);
    _cleanup_qmp_ sv_qmp *q = sv_qmp_new(fd);
    if (!q)
        return oom(err);
    sv_qmp_set_watch_fd(q, pidfd);
    sv_qmp_set_default_timeout(q, vm->timeout_ms > 0 ? vm->timeout_ms : SV_QMP_DEFAULT_TIMEOUT_MS);
    int r = sv_qmp_handshake(q, deadline, err);
    if (r < 0)
        return qmp_open_failed(vm, pidfd, path, what, r, err);
    *out = TAKE_PTR(q);
    return 0;
}

/* The running QEMU of a running or paused VM: its pidfd, or EINVAL "vm X
 * is not running" (ECHILD when it died). */
static int live_qemu(sv_hv_vm *vm, sv_error **err)
{
    if (!running_state(vm->st->state))
        return sv_error_set(err, EINVAL, "vm %s is not running (it is %s)", vm->id,
                            sv_vm_run_state_name(vm->st->state));
    int fd = open_ours(vm, &vm->st->qemu, is_our_qemu);
    if (fd < 0)
        return sv_error_set(err, ECHILD, "vm %s: its qemu is gone (the vm crashed)", vm->id);
    return fd;
}

static int64_t call_deadline(const sv_hv_vm *vm)
{
    return sv_deadline_ms(vm->timeout_ms > 0 ? vm->timeout_ms : SV_QMP_DEFAULT_TIMEOUT_MS);
}

static int query_running(sv_hv_vm *vm, sv_qmp *q, int64_t deadline, bool *running,
                         sv_error **err)
{
    sv_qmp_status s;
    int r = sv_qmp_query_status(q, deadline, &s, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    *running = s.running;
    return 0;
}

/* Waits for the migration started on `q` to end: completed, or EIO with
 * QEMU's reason. Needs the "events" capability. */
static int wait_migration(sv_hv_vm *vm, sv_qmp *q, int64_t deadline, const char *what,
                          sv_error **err)
{
    for (;;) {
        _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
        int r = sv_qmp_wait_event(q, "MIGRATION", NULL, NULL, deadline, &ev, err);
        if (r < 0)
            return sv_error_prefix(err, "vm %s: %s", vm->id, what);
        json_object *st = NULL;
        const char *status = ev.data && json_object_object_get_ex(ev.data, "status", &st)
                                 ? json_object_get_string(st)
                                 : NULL;
        if (!status)
            continue;
        if (strcmp(status, "completed") == 0)
            return 0;
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            sv_qmp_migration_info info = {0};
            sv_error *e = NULL;
            const char *why = NULL;
            if (sv_qmp_query_migrate(q, sv_deadline_ms(1000), &info, &e) == 0)
                why = info.error_desc;
            sv_error_free(e);
            r = sv_error_set(err, EIO, "vm %s: %s %s%s%s", vm->id, what, status, why ? ": " : "",
                             why ? why : "");
            sv_qmp_migration_info_clear(&info);
            return r;
        }
    }
}

/* ---- validate ------------------------------------------------------------------ */

static int check_file(const char *key, const char *path, bool dir, sv_error **err)
{
    struct stat st;
    if (!path)
        return 0;
    if (stat(path, &st) < 0)
        return sv_error_errno(err, errno, "%s: %s", key, path);
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return sv_error_set(err, EINVAL, "%s: %s is not a %s", key, path,
                            dir ? "directory" : "regular file");
    return 0;
}

static int qemu_validate(const sv_vm_config *config, const sv_hv_check *check, const char **arch,
                         sv_error **err)
{
    sv_host_facts host = {0};
    int r = sv_host_facts_probe(&host, NULL, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *mem = NULL;
    if (check->from && asprintf(&mem, "%s/%s", check->from, SV_SAVE_MEMORY) < 0)
        mem = NULL;
    bool virtiofs = config->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS;
    /* (checked with the rest: they count towards the command line's length) */
    _cleanup_free_ char *guest_params = sv_resize_guest_params(config);
    if (!guest_params) {
        sv_host_facts_free(&host);
        return oom(err);
    }
    sv_vm_launch l = {
        .extra_kernel_params = guest_params,
        .console_fd = 3,
        .console_listening = true,
        .qmp_fd = 4,
        .agent_fd = 5,
        .vsock_fd = -1,
        .virtiofs_socket = virtiofs ? "/sandvm/virtiofsd.sock" : NULL,
        .memory_file = check->template_memory ? "/sandvm/memory"
                       : check->from_template_memory ? mem
                                                     : NULL,
        .memory_file_shared = check->template_memory,
        .pid_file = "/sandvm/qemu.pid",
        .incoming_defer = check->from != NULL,
    };
    _cleanup_(sv_qemu_config_freep) sv_qemu_config *cfg = NULL;
    r = sv_qemu_arch_build(config, &host, &l, &cfg, err);
    int guest = sv_qemu_arch_guest(config, &host);
    sv_host_facts_free(&host);
    if (r < 0)
        return r;
    if (check->template_memory && virtiofs)
        return sv_error_set(err, EINVAL,
                            "template_memory: cannot be combined with shared_fs virtio-fs (a VM "
                            "restored from the template maps its memory privately, which "
                            "virtiofsd cannot share; and QEMU cannot save virtio-fs devices)");
    _cleanup_free_ char *qemu = NULL;
    if ((r = sv_proc_which(sv_qemu_config_binary(cfg), &qemu, err)) < 0)
        return sv_error_prefix(err, "%s", config->path ? "path" : "the QEMU binary");
    if ((r = check_file("kernel", config->kernel, false, err)) < 0 ||
        (r = check_file("initrd", config->initrd, false, err)) < 0 ||
        (r = check_file("image", config->image, false, err)) < 0)
        return r;
    if (virtiofs) {
        _cleanup_argv_ sv_argv *a = NULL;
        _cleanup_free_ char *daemon = NULL;
        if ((r = sv_virtiofsd_argv(config, 3, &a, err)) < 0 ||
            (r = check_file("shared_dir", config->shared_dir, true, err)) < 0)
            return r;
        if ((r = sv_proc_which(sv_vm_virtiofsd(config), &daemon, err)) < 0)
            return sv_error_prefix(err, "virtio_fs_daemon");
    }
    *arch = sv_vm_arch_name(guest);
    return 0;
}

/* ---- least privilege ------------------------------------------------------------ */

/* Who the VM's QEMU and virtiofsd run as (run_as_user): `set` when sandvm
 * runs as root and the config names a user. */
typedef struct run_as {
    bool set;
    uid_t uid;
    gid_t gid;
} run_as;

static int get_run_as(const sv_hv_vm *vm, run_as *ra, sv_error **err)
{
    *ra = (run_as){0};
    int r = sv_vm_run_as(vm->config, &ra->uid, &ra->gid, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    if (r == 0)
        return 0;
    if (geteuid() != 0) {
        if (ra->uid == geteuid() && ra->gid == getegid())
            return 0; /* already that user */
        return sv_error_set(err, EPERM,
                            "vm %s: run_as_user: running its processes as uid %u needs sandvm to "
                            "run as root",
                            vm->id, (unsigned)ra->uid);
    }
    ra->set = true;
    return 0;
}

/* QEMU: the user's ids and no capability at all (bounding set included), or
 * root still when no user is configured; never new privileges. Its seccomp
 * filter (-sandbox, the arch layer) comes on top. */
static sv_confine qemu_confine(const run_as *ra)
{
    return (sv_confine){.no_new_privs = true,
                        .drop_caps = ra->set,
                        .set_ids = ra->set,
                        .uid = ra->uid,
                        .gid = ra->gid};
}

/* virtiofsd: as QEMU, but inside a user namespace of its own in which the
 * user is root: QEMU 7.2's virtiofsd builds its sandbox (mount, pid and net
 * namespaces, pivot_root into the shared directory, seccomp) and drops to
 * the capabilities it serves files with, all of which it may do there and
 * nowhere else; on the host it has the user's access, no more. */
static sv_confine virtiofsd_confine(const run_as *ra)
{
    sv_confine c = qemu_confine(ra);
    c.userns = ra->set;
    return c;
}

/* The console logger: it renames its log files in the VM's directory, which
 * stays root's, so it keeps uid 0, without any capability (no permission
 * override, no ownership change, nothing else root-only), never new
 * privileges. */
static sv_confine logger_confine(void)
{
    return (sv_confine){.no_new_privs = true, .drop_caps = geteuid() == 0};
}

/* Hands the entry `name` of the VM directory (just created by us; never
 * through a symlink) to the run-as user, mode `mode`. */
static int give_to_user(sv_hv_vm *vm, const run_as *ra, const char *name, mode_t mode,
                        sv_error **err)
{
    int dfd = sv_state_dir_fd(vm->dir);
    if (ra->set && (fchownat(dfd, name, ra->uid, ra->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    fchmodat(dfd, name, mode, AT_SYMLINK_NOFOLLOW) < 0))
        return sv_error_errno(err, errno, "vm %s: giving %s/%s to uid %u", vm->id,
                              vm_dir_path(vm), name, (unsigned)ra->uid);
    return 0;
}

/* Prepares the VM directory for a QEMU that runs as the run-as user: the
 * directory stays root's (its state, lock and logs are not QEMU's to
 * change) with the user's group allowed in (0710); the sockets and the pid
 * file QEMU writes are the user's (0700, 0600); the state root gets search
 * permission for others when it is sandvm's own 0700 one (0711: still
 * unlistable). Then checks, as the user, that QEMU can reach every file it
 * opens by name, so that a miss is reported naming the key, not as QEMU's
 * "Permission denied". */
static int prepare_for_user(sv_hv_vm *vm, const run_as *ra, sv_error **err)
{
    if (!ra->set)
        return 0;
    int dfd = sv_state_dir_fd(vm->dir);
    if (fchown(dfd, (uid_t)-1, ra->gid) < 0 || fchmod(dfd, 0710) < 0)
        return sv_error_errno(err, errno, "vm %s: %s", vm->id, vm_dir_path(vm));
    _cleanup_close_ int parent = openat(dfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (parent >= 0 && fstat(parent, &st) == 0 && st.st_uid == geteuid() &&
        (st.st_mode & 07777) == 0700)
        (void)fchmod(parent, 0711);
    static const char *const sockets[] = {SV_STATE_QMP_SOCKET, SV_STATE_CONSOLE_SOCKET,
                                          SV_STATE_EXEC_SOCKET};
    int r;
    for (size_t i = 0; i < SV_ARRAY_SIZE(sockets); i++)
        if ((r = give_to_user(vm, ra, sockets[i], 0700, err)) < 0)
            return r;
    _cleanup_close_ int pid = openat(dfd, SV_STATE_QEMU_PIDFILE,
                                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (pid < 0 || fchown(pid, ra->uid, ra->gid) < 0)
        return sv_error_errno(err, errno, "vm %s: creating %s/%s", vm->id, vm_dir_path(vm),
                              SV_STATE_QEMU_PIDFILE);
    const sv_vm_config *c = vm->config;
    _cleanup_free_ char *pidfile = vm_file(vm, SV_STATE_QEMU_PIDFILE);
    if (!pidfile)
        return oom(err);
    struct {
        const char *key, *path;
        int mode;
    } need[] = {{"the vm directory", pidfile, W_OK},
                {"kernel", c->kernel, R_OK},
                {"initrd", c->initrd, R_OK},
                {"image", c->image, R_OK},
                {"firmware", c->firmware, R_OK},
                {"shared_dir", c->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS ? c->shared_dir : NULL,
                 R_OK | X_OK}};
    const char *paths[SV_ARRAY_SIZE(need)];
    int modes[SV_ARRAY_SIZE(need)];
    const char *keys[SV_ARRAY_SIZE(need)];
    size_t n = 0, bad = 0;
    for (size_t i = 0; i < SV_ARRAY_SIZE(need); i++)
        if (need[i].path) {
            keys[n] = need[i].key;
            paths[n] = need[i].path;
            modes[n++] = need[i].mode;
        }
    sv_error *e = NULL;
    r = sv_proc_access_as(ra->uid, ra->gid, paths, modes, n, &bad, &e);
    if (r < 0) {
        r = sv_error_set(err, -r, "vm %s: run_as_user (uid %u gid %u) cannot use %s: %s", vm->id,
                         (unsigned)ra->uid, (unsigned)ra->gid, bad < n ? keys[bad] : "its files",
                         sv_error_message(e));
        sv_error_free(e);
        return r;
    }
    return 0;
}

/* ---- start --------------------------------------------------------------------- */

/* The last lines of the log `name` (at most LOG_TAIL_MAX bytes, control
 * bytes as '?'), or "" -- NULL only on out-of-memory. */
static char *log_tail(sv_hv_vm *vm, const char *name)
{
    _cleanup_close_ int fd =
        openat(sv_state_dir_fd(vm->dir), name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    char buf[LOG_TAIL_MAX + 1];
    ssize_t n = 0;
    if (fd >= 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        off_t from = end > LOG_TAIL_MAX ? end - LOG_TAIL_MAX : 0;
        n = end > 0 ? pread(fd, buf, (size_t)(end - from), from) : 0;
        if (n < 0)
            n = 0;
        if (from > 0) { /* drop the partial first line */
            char *nl = memchr(buf, '\n', (size_t)n);
            if (nl) {
                n -= nl + 1 - buf;
                memmove(buf, nl + 1, (size_t)n);
            }
        }
    }
    while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
        n--;
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            buf[i] = '?';
    }
    buf[n] = '\0';
    return strdup(buf);
}

/* The error for a process of the VM that exited during a call: what it
 * wrote to its log says why. */
static int proc_exited(sv_hv_vm *vm, const char *what, const char *log, sv_error **err)
{
    _cleanup_free_ char *tail = log_tail(vm, log);
    return sv_error_set(err, ECHILD, "vm %s: %s exited%s%s%s", vm->id, what,
                        tail && *tail ? ": " : " (nothing in ", tail && *tail ? tail : log,
                        tail && *tail ? "" : ")");
}

/* Opens `name` in the VM directory for QEMU or virtiofsd to write: a fresh
 * file, never through a symlink. */
static int open_log(sv_hv_vm *vm, const char *name, sv_error **err)
{
    int fd = openat(sv_state_dir_fd(vm->dir), name,
                    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sv_error_errno(err, errno, "vm %s: creating %s/%s", vm->id,
                              sv_state_dir_path(vm->dir), name);
    return fd;
}

static int listen_in_dir(sv_hv_vm *vm, const char *name, sv_error **err)
{
    _cleanup_free_ char *path = vm_file(vm, name);
    if (!path)
        return oom(err);
    int fd = sv_unix_listen(path, err);
    if (fd < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    return fd;
}

/* Everything a start holds until QEMU is up. */
typedef struct start_ctx {
    sv_hv_vm *vm;
    const sv_vm_start_opts *opts;
    int64_t deadline;
    int qmp_listen, qmp_client, console_listen, exec_listen;
    int qemu_pidfd, virtiofsd_pidfd;
    int from_fd, state_fd; /* restore: the saved directory and its state */
    char *from_memory;
    run_as ra;
    int console_qemu; /* with a console logger: QEMU's end of the console; else -1 */
    int logger_pidfd;
} start_ctx;

static void start_ctx_clear(start_ctx *s)
{
    int *fds[] = {&s->qmp_listen,  &s->qmp_client,      &s->console_listen, &s->exec_listen,
                  &s->qemu_pidfd,  &s->virtiofsd_pidfd, &s->from_fd,        &s->state_fd,
                  &s->console_qemu, &s->logger_pidfd};
    for (size_t i = 0; i < SV_ARRAY_SIZE(fds); i++)
        sv_closep(fds[i]);
    free(s->from_memory);
}

static int start_virtiofsd(start_ctx *s, sv_error **err)
{
    sv_hv_vm *vm = s->vm;
    _cleanup_close_ int listen_fd = listen_in_dir(vm, SV_STATE_VIRTIOFSD_SOCKET, err);
    if (listen_fd < 0)
        return listen_fd;
    int r = give_to_user(vm, &s->ra, SV_STATE_VIRTIOFSD_SOCKET, 0700, err);
    if (r < 0)
        return r;
    _cleanup_close_ int log = open_log(vm, SV_STATE_VIRTIOFSD_LOG, err);
    if (log < 0)
        return log;
    _cleanup_close_ int pidfile = open_log(vm, SV_STATE_VIRTIOFSD_PIDFILE, err);
    if (pidfile < 0)
        return pidfile;
    sv_detached d;
    sv_confine cf = virtiofsd_confine(&s->ra);
    r = sv_virtiofsd_start(vm->config, listen_fd, log, pidfile, &cf, &d, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    s->virtiofsd_pidfd = d.pidfd;
    vm->st->virtiofsd = (sv_proc_ident){d.pid, d.start_time};
    return sv_vm_state_save(vm->dir, vm->st, err);
}

/* With console_log_size: QEMU's console becomes one end of a socket pair
 * whose other end, with the listening console socket, goes to the console
 * logger (src/logger.h), started here; it ends when QEMU does. */
static int start_logger(start_ctx *s, sv_error **err)
{
    sv_hv_vm *vm = s->vm;
    if (vm->config->console_log_size <= 0)
        return 0;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return sv_error_errno(err, errno, "vm %s: creating the console socket pair", vm->id);
    s->console_qemu = sp[0];
    _cleanup_close_ int logger_end = sp[1];
    /* A UART writes a byte at a time, and each write costs a socket buffer
     * of its own: a roomy buffer lets the logger take the bytes in batches
     * instead of throttling the guest to its wake-up rate. Best effort
     * (SO_SNDBUFFORCE needs CAP_NET_ADMIN; SO_SNDBUF is capped by
     * net.core.wmem_max). */
    int big = CONSOLE_SNDBUF;
    if (setsockopt(sp[0], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0)
        (void)setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    _cleanup_close_ int pidfile = open_log(vm, SV_STATE_LOGGER_PIDFILE, err);
    if (pidfile < 0)
        return pidfile;
    sv_confine cf = logger_confine();
    sv_detached d;
    int r = sv_logger_start(vm_dir_path(vm), sv_state_dir_fd(vm->dir), logger_end,
                            s->console_listen, pidfile,
                            (uint64_t)vm->config->console_log_size << 20, &cf, &d, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    s->logger_pidfd = d.pidfd;
    return 0;
}

/* Opens what a restore reads: the saved directory's state (and memory). */
static int open_saved(start_ctx *s, sv_error **err)
{
    sv_hv_vm *vm = s->vm;
    const char *from = vm->st->from;
    s->from_fd = open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->from_fd < 0)
        return sv_error_errno(err, errno, "vm %s: opening the saved vm %s", vm->id, from);
    s->state_fd = openat(s->from_fd, SV_SAVE_STATE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (s->state_fd < 0)
        return sv_error_errno(err, errno, "vm %s: opening %s/%s", vm->id, from, SV_SAVE_STATE);
    if (vm->st->template_memory) {
        struct stat st;
        if (fstatat(s->from_fd, SV_SAVE_MEMORY, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return sv_error_errno(err, errno, "vm %s: %s/%s", vm->id, from, SV_SAVE_MEMORY);
        if (!S_ISREG(st.st_mode))
            return sv_error_set(err, EINVAL, "vm %s: %s/%s is not a regular file", vm->id, from,
                                SV_SAVE_MEMORY);
        if (asprintf(&s->from_memory, "%s/%s", from, SV_SAVE_MEMORY) < 0) {
            s->from_memory = NULL;
            return oom(err);
        }
    }
    return 0;
}

/* The template's own RAM: an empty file QEMU sizes (share=on writes reach it). */
static int create_memory_file(sv_hv_vm *vm, sv_error **err)
{
    int fd = openat(sv_state_dir_fd(vm->dir), SV_STATE_MEMORY_FILE,
                    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sv_error_errno(err, errno, "vm %s: creating %s/%s", vm->id,
                              sv_state_dir_path(vm->dir), SV_STATE_MEMORY_FILE);
    close(fd);
    return 0;
}

static int spawn_qemu(start_ctx *s, sv_error **err)
{
    sv_hv_vm *vm = s->vm;
    sv_vm_state *st = vm->st;
    sv_host_facts host = {0};
    int r = sv_host_facts_probe(&host, NULL, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *pidfile = vm_file(vm, SV_STATE_QEMU_PIDFILE);
    _cleanup_free_ char *memory = vm_file(vm, SV_STATE_MEMORY_FILE);
    if (!pidfile || !memory) {
        sv_host_facts_free(&host);
        return oom(err);
    }
    bool own_memory = st->template_memory && !st->from;
    _cleanup_free_ char *guest_params = sv_resize_guest_params(vm->config);
    if (!guest_params) {
        sv_host_facts_free(&host);
        return oom(err);
    }
    sv_vm_launch l = {
        .extra_kernel_params = guest_params,
        .console_fd = s->console_qemu >= 0 ? s->console_qemu : s->console_listen,
        .console_listening = s->console_qemu < 0,
        .qmp_fd = s->qmp_listen,
        .agent_fd = s->exec_listen,
        .vsock_fd = -1,
        .virtiofs_socket = st->paths.virtiofsd_socket,
        .memory_file = own_memory ? memory : s->from_memory,
        .memory_file_shared = own_memory,
        .pid_file = pidfile,
        .incoming_defer = st->from != NULL,
        .paused = s->opts->paused || st->from,
    };
    _cleanup_(sv_qemu_config_freep) sv_qemu_config *cfg = NULL;
    r = sv_qemu_arch_build(vm->config, &host, &l, &cfg, err);
    sv_host_facts_free(&host);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    _cleanup_argv_ sv_argv *a = NULL;
    if ((r = sv_qemu_build_argv(cfg, &a, err)) < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    _cleanup_close_ int log = open_log(vm, SV_STATE_QEMU_LOG, err);
    if (log < 0)
        return log;
    if (own_memory && ((r = create_memory_file(vm, err)) < 0 ||
                       (r = give_to_user(vm, &s->ra, SV_STATE_MEMORY_FILE, 0600, err)) < 0))
        return r;
    sv_confine cf = qemu_confine(&s->ra);
    sv_detached_opts o = {.program = sv_qemu_config_binary(cfg),
                          .fds = a->fds,
                          .nfds = a->nfds,
                          .stderr_fd = log,
                          .pid_fd = -1,
                          .confine = &cf};
    sv_detached d;
    if ((r = sv_proc_spawn_detached(a->v, &o, &d, err)) < 0)
        return sv_error_prefix(err, "vm %s: starting %s", vm->id, sv_qemu_config_binary(cfg));
    s->qemu_pidfd = d.pidfd;
    st->qemu = (sv_proc_ident){d.pid, d.start_time};
    st->state = s->opts->paused ? SV_VM_PAUSED : SV_VM_RUNNING;
    /* from here on any sandvm finds this QEMU through the record */
    return sv_vm_state_save(vm->dir, st, err);
}

static int restore(start_ctx *s, sv_qmp *q, sv_error **err)
{
    sv_hv_vm *vm = s->vm;
    sv_qmp_migrate_cap caps[] = {{"events", true}, {"x-ignore-shared", vm->st->template_memory}};
    int r;
    if ((r = sv_qmp_migrate_set_capabilities(q, caps, SV_ARRAY_SIZE(caps), s->deadline, err)) < 0 ||
        (r = sv_qmp_getfd(q, FD_INCOMING, s->state_fd, s->deadline, err)) < 0 ||
        (r = sv_qmp_migrate_incoming(q, "fd:" FD_INCOMING, s->deadline, err)) < 0)
        return sv_error_prefix(err, "vm %s: restoring from %s", vm->id, vm->st->from);
    if ((r = wait_migration(vm, q, s->deadline, "restoring", err)) < 0)
        return r;
    if (!s->opts->paused && (r = sv_qmp_cont(q, s->deadline, err)) < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    return 0;
}

/* Sets a listening socket's backlog again (QEMU lowered it to 1). */
static void relisten(int fd, int backlog)
{
    if (fd >= 0)
        (void)listen(fd, backlog);
}

static int start_steps(start_ctx *s, sv_error **err)
{
    sv_hv_vm *vm = s->vm;
    int r;
    if ((r = set_paths(vm, err)) < 0 || (r = sv_vm_state_save(vm->dir, vm->st, err)) < 0)
        return r;
    /* execs wait on this lock; it never goes away while the VM exists */
    int lockfd = openat(sv_state_dir_fd(vm->dir), SV_STATE_EXEC_LOCK_FILE,
                        O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lockfd < 0)
        return sv_error_errno(err, errno, "vm %s: creating %s/%s", vm->id,
                              sv_state_dir_path(vm->dir), SV_STATE_EXEC_LOCK_FILE);
    close(lockfd);
    if (vm->st->from && (r = open_saved(s, err)) < 0)
        return r;
    if ((r = s->qmp_listen = listen_in_dir(vm, SV_STATE_QMP_SOCKET, err)) < 0 ||
        (r = s->console_listen = listen_in_dir(vm, SV_STATE_CONSOLE_SOCKET, err)) < 0 ||
        (r = s->exec_listen = listen_in_dir(vm, SV_STATE_EXEC_SOCKET, err)) < 0)
        return r;
    if ((r = get_run_as(vm, &s->ra, err)) < 0 || (r = prepare_for_user(vm, &s->ra, err)) < 0 ||
        (r = start_logger(s, err)) < 0)
        return r;
    _cleanup_free_ char *qmp_path = vm_file(vm, SV_STATE_QMP_SOCKET);
    if (!qmp_path)
        return oom(err);
    /* connecting succeeds at once: the backlog holds us until QEMU accepts */
    if ((s->qmp_client = sv_unix_connect(qmp_path, s->deadline, err)) < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    if (vm->config->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS && (r = start_virtiofsd(s, err)) < 0)
        return r;
    if ((r = spawn_qemu(s, err)) < 0)
        return r;

    _cleanup_qmp_ sv_qmp *q = sv_qmp_new(TAKE_FD(s->qmp_client));
    if (!q)
        return oom(err);
    sv_qmp_set_watch_fd(q, s->qemu_pidfd);
    sv_qmp_set_default_timeout(q, vm->timeout_ms > 0 ? vm->timeout_ms : SV_QMP_DEFAULT_TIMEOUT_MS);
    /* ready: the first reply after qmp_capabilities */
    bool running = false;
    if ((r = sv_qmp_handshake(q, s->deadline, err)) < 0 ||
        (r = query_running(vm, q, s->deadline, &running, err)) < 0)
        return sv_error_prefix(err, "vm %s: waiting for qemu", vm->id);
    relisten(s->qmp_listen, QMP_BACKLOG);
    relisten(s->console_listen, CONSOLE_BACKLOG);
    relisten(s->exec_listen, EXEC_BACKLOG);
    if (vm->st->from && (r = restore(s, q, err)) < 0)
        return r;
    return 0;
}

static int qemu_start(sv_hv_vm *vm, const sv_vm_start_opts *opts, sv_error **err)
{
    static const sv_vm_start_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if (opts->timeout_ms < 0)
        return sv_error_set(err, EINVAL, "timeout_ms: must not be negative");
    /* whatever a crashed VM or an interrupted start left */
    qemu_cleanup(vm);
    /* a QEMU that starts afresh has nothing a resize added */
    sv_vm_resized_clear(&vm->st->resized);
    /* ... nor anything hot-plugged */
    sv_vm_state_clear_devices(vm->st);
    start_ctx s = {.vm = vm,
                   .opts = opts,
                   .deadline = sv_deadline_ms(opts->timeout_ms ? opts->timeout_ms : START_TIMEOUT_MS),
                   .qmp_listen = -1,
                   .qmp_client = -1,
                   .console_listen = -1,
                   .exec_listen = -1,
                   .qemu_pidfd = -1,
                   .virtiofsd_pidfd = -1,
                   .from_fd = -1,
                   .state_fd = -1,
                   .console_qemu = -1,
                   .logger_pidfd = -1};
    sv_error *e = NULL;
    int r = start_steps(&s, &e);
    if (r < 0) {
        /* a closed QMP connection means QEMU is on its way out: give it the
         * time to finish, so that its exit (and its message) is reported */
        int code = sv_error_code(e);
        bool closing = code == ECONNRESET || code == ECHILD || code == EPIPE;
        bool died = s.qemu_pidfd >= 0 &&
                    wait_gone(s.qemu_pidfd, closing ? sv_deadline_ms(EXIT_GRACE_MS) : sv_now_ms());
        /* a virtiofsd that died first is why QEMU could not connect to it */
        bool vfsd_died = exited(s.virtiofsd_pidfd);
        /* nothing may stay running: QEMU first, then virtiofsd */
        kill_wait(s.qemu_pidfd);
        kill_wait(s.virtiofsd_pidfd);
        if (vfsd_died || died) {
            sv_error_free(e);
            e = NULL;
            r = vfsd_died ? proc_exited(vm, "virtiofsd", SV_STATE_VIRTIOFSD_LOG, &e)
                          : proc_exited(vm, "qemu", SV_STATE_QEMU_LOG, &e);
        }
        qemu_cleanup(vm);
        vm->st->state = SV_VM_CREATED;
        vm->st->qemu = vm->st->virtiofsd = (sv_proc_ident){0};
        sv_vm_state_save(vm->dir, vm->st, NULL);
        if (err && !*err)
            *err = e;
        else
            sv_error_free(e);
    }
    start_ctx_clear(&s);
    return r;
}

/* ---- stop ----------------------------------------------------------------------- */

/* Powers the guest off (unless paused or skipped), then quit; returns once
 * QEMU has exited. ETIMEDOUT when QMP does not answer (a stopped QEMU): then
 * nothing was done. */
static int stop_qemu(sv_hv_vm *vm, int pidfd, const sv_vm_stop_opts *opts, sv_error **err)
{
    int64_t deadline = call_deadline(vm);
    _cleanup_qmp_ sv_qmp *q = NULL;
    bool running = false;
    sv_error *e = NULL;
    int r = qmp_open(vm, pidfd, deadline, "query-status", &q, &e);
    if (r == 0)
        r = query_running(vm, q, deadline, &running, &e);
    if (r < 0) {
        if (exited(pidfd)) { /* it died meanwhile: nothing left to stop */
            sv_error_free(e);
            return 0;
        }
        if (err && !*err)
            *err = e;
        else
            sv_error_free(e);
        return r;
    }
    int grace = opts->grace_ms ? opts->grace_ms : STOP_GRACE_MS;
    if (running && grace > 0) {
        if (sv_qmp_system_powerdown(q, deadline, &e) == 0) {
            /* QEMU exits when the guest powers off (no -no-shutdown): QMP closes */
            if (sv_qmp_wait_closed(q, sv_deadline_ms(grace), NULL) == 0 &&
                wait_gone(pidfd, sv_deadline_ms(EXIT_TIMEOUT_MS)))
                return 0;
        }
        sv_error_free(e);
        e = NULL;
    }
    if (!exited(pidfd)) {
        /* the reply, or the connection closing first, both mean "exiting" */
        sv_qmp_quit(q, call_deadline(vm), NULL);
        if (wait_gone(pidfd, sv_deadline_ms(EXIT_TIMEOUT_MS)))
            return 0;
        kill_wait(pidfd);
    }
    return 0;
}

static int qemu_stop(sv_hv_vm *vm, const sv_vm_stop_opts *opts, sv_error **err)
{
    static const sv_vm_stop_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    _cleanup_close_ int pidfd = open_ours(vm, &vm->st->qemu, is_our_qemu);
    if (pidfd >= 0) {
        if (opts->force) {
            kill_wait(pidfd);
        } else {
            int r = stop_qemu(vm, pidfd, opts, err);
            if (r < 0)
                return r;
        }
    }
    qemu_cleanup(vm);
    vm->st->state = SV_VM_STOPPED;
    sv_vm_state_clear_devices(vm->st); /* they went with the QEMU that had them */
    return 0;
}

/* ---- pause, resume ----------------------------------------------------------------- */

static int pause_resume(sv_hv_vm *vm, bool pause, sv_error **err)
{
    _cleanup_close_ int pidfd = live_qemu(vm, err);
    if (pidfd < 0)
        return pidfd;
    int64_t deadline = call_deadline(vm);
    _cleanup_qmp_ sv_qmp *q = NULL;
    bool running = false;
    int r = qmp_open(vm, pidfd, deadline, "query-status", &q, err);
    if (r < 0)
        return r;
    if ((r = query_running(vm, q, deadline, &running, err)) < 0)
        return qemu_died(vm, pidfd, "query-status", r, err);
    const char *what = pause ? "stop" : "cont";
    if (pause && running)
        r = sv_qmp_stop(q, deadline, err);
    else if (!pause && !running)
        r = sv_qmp_cont(q, deadline, err);
    if (r < 0 && qemu_died(vm, pidfd, what, r, err) == -ECHILD)
        return -ECHILD;
    if (r < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    vm->st->state = pause ? SV_VM_PAUSED : SV_VM_RUNNING;
    return 0;
}

static int qemu_pause(sv_hv_vm *vm, sv_error **err)
{
    return pause_resume(vm, true, err);
}

static int qemu_resume(sv_hv_vm *vm, sv_error **err)
{
    return pause_resume(vm, false, err);
}

/* ---- save ------------------------------------------------------------------------ */

/* Copies the regular file `src` to `dst` keeping its holes (SEEK_DATA /
 * SEEK_HOLE), the data by copy_file_range (read/write where that fails). */
static int copy_sparse(int src, int dst, const char *what, sv_error **err)
{
    struct stat st;
    if (fstat(src, &st) < 0)
        return sv_error_errno(err, errno, "%s", what);
    off_t size = st.st_size, pos = 0;
    _cleanup_free_ char *buf = NULL; /* only where copy_file_range cannot copy */
    const size_t bufsize = 1 << 16;
    while (pos < size) {
        off_t data = lseek(src, pos, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* only a hole is left */
        if (data < 0)
            data = pos; /* no SEEK_DATA: copy everything */
        off_t hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0)
            hole = size;
        while (data < hole) {
            size_t want = (size_t)(hole - data > (1 << 30) ? (1 << 30) : hole - data);
            off_t in = data, out = data;
            ssize_t n = copy_file_range(src, &in, dst, &out, want, 0);
            if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                          errno == EOPNOTSUPP)) {
                if (!buf && !(buf = malloc(bufsize)))
                    return oom(err);
                n = pread(src, buf, want < bufsize ? want : bufsize, data);
                if (n > 0 && pwrite(dst, buf, (size_t)n, data) != n)
                    n = -1;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return sv_error_errno(err, errno, "%s", what);
            if (n == 0)
                return sv_error_set(err, EIO, "%s: the file shrank while being copied", what);
            data += n;
        }
        pos = hole;
    }
    if (ftruncate(dst, size) < 0 || fsync(dst) < 0)
        return sv_error_errno(err, errno, "%s", what);
    return 0;
}

static int save_steps(sv_hv_vm *vm, int pidfd, int dirfd, const char *dir, sv_error **err)
{
    int64_t deadline = call_deadline(vm);
    _cleanup_qmp_ sv_qmp *q = NULL;
    bool running = false;
    int r = qmp_open(vm, pidfd, deadline, "query-status", &q, err);
    if (r < 0 || (r = query_running(vm, q, deadline, &running, err)) < 0)
        return r;
    if (running && (r = sv_qmp_stop(q, deadline, err)) < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    vm->st->state = SV_VM_PAUSED;
    if ((r = sv_vm_state_save(vm->dir, vm->st, err)) < 0)
        return r;
    /* Kata sets x-ignore-shared only for a template's own shared RAM: it is
     * the memory file, copied beside the state instead of streamed */
    bool own_memory = vm->st->template_memory && !vm->st->from;
    sv_qmp_migrate_cap caps[] = {{"events", true}, {"x-ignore-shared", own_memory}};
    _cleanup_close_ int fd = openat(dirfd, SV_SAVE_STATE,
                                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sv_error_errno(err, errno, "vm %s: creating %s/%s", vm->id, dir, SV_SAVE_STATE);
    if ((r = sv_qmp_migrate_set_capabilities(q, caps, SV_ARRAY_SIZE(caps), deadline, err)) < 0 ||
        (r = sv_qmp_getfd(q, FD_SAVE, fd, deadline, err)) < 0 ||
        (r = sv_qmp_migrate(q, "fd:" FD_SAVE, deadline, err)) < 0)
        return sv_error_prefix(err, "vm %s: saving to %s", vm->id, dir);
    r = wait_migration(vm, q, sv_deadline_ms(SAVE_TIMEOUT_MS), "saving", err);
    if (r < 0) {
        sv_qmp_execute(q, "migrate_cancel", NULL, call_deadline(vm), NULL, NULL);
        return r;
    }
    if (fsync(fd) < 0)
        return sv_error_errno(err, errno, "vm %s: writing %s/%s", vm->id, dir, SV_SAVE_STATE);
    if (own_memory) {
        _cleanup_close_ int src = openat(sv_state_dir_fd(vm->dir), SV_STATE_MEMORY_FILE,
                                         O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int dst = openat(dirfd, SV_SAVE_MEMORY,
                                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (src < 0 || dst < 0)
            return sv_error_errno(err, errno, "vm %s: copying its memory to %s/%s", vm->id, dir,
                                  SV_SAVE_MEMORY);
        _cleanup_free_ char *what = NULL;
        if (asprintf(&what, "vm %s: copying its memory to %s/%s", vm->id, dir, SV_SAVE_MEMORY) < 0)
            return oom(err);
        if ((r = copy_sparse(src, dst, what, err)) < 0)
            return r;
    }
    return 0;
}

static int qemu_save(sv_hv_vm *vm, int dirfd, const char *dir, sv_error **err)
{
    _cleanup_close_ int pidfd = live_qemu(vm, err);
    if (pidfd < 0)
        return pidfd;
    int r = save_steps(vm, pidfd, dirfd, dir, err);
    if (r < 0) {
        unlinkat(dirfd, SV_SAVE_STATE, 0);
        unlinkat(dirfd, SV_SAVE_MEMORY, 0);
        return qemu_died(vm, pidfd, "migrate", r, err);
    }
    return r;
}

/* ---- observe, threads, pids, raw QMP, console, exec ----------------------------------- */

static int qemu_observe(sv_hv_vm *vm, bool ask_vmm, sv_hv_observed *out, sv_error **err)
{
    observe_procs(vm, out);
    if (!ask_vmm || !running_state(out->state))
        return 0;
    _cleanup_close_ int pidfd = open_ours(vm, &vm->st->qemu, is_our_qemu);
    if (pidfd < 0) {
        out->state = SV_VM_STOPPED;
        out->crashed = true;
        out->vmm_pid = 0;
        return 0;
    }
    int64_t deadline = call_deadline(vm);
    _cleanup_qmp_ sv_qmp *q = NULL;
    bool running = false;
    sv_error *e = NULL;
    int r = qmp_open(vm, pidfd, deadline, "query-status", &q, &e);
    if (r == 0)
        r = query_running(vm, q, deadline, &running, &e);
    if (r < 0) {
        if (exited(pidfd)) {
            sv_error_free(e);
            out->state = SV_VM_STOPPED;
            out->crashed = true;
            out->vmm_pid = 0;
            return 0;
        }
        if (err && !*err)
            *err = e;
        else
            sv_error_free(e);
        return r;
    }
    out->state = running ? SV_VM_RUNNING : SV_VM_PAUSED;
    return 0;
}

static int qemu_vcpu_threads(sv_hv_vm *vm, int64_t **tids, size_t *n_out, sv_error **err)
{
    _cleanup_close_ int pidfd = live_qemu(vm, err);
    if (pidfd < 0)
        return pidfd;
    int64_t deadline = call_deadline(vm);
    _cleanup_qmp_ sv_qmp *q = NULL;
    int r = qmp_open(vm, pidfd, deadline, "query-cpus-fast", &q, err);
    if (r < 0)
        return r;
    sv_qmp_cpu_info *cpus = NULL;
    size_t n = 0;
    if ((r = sv_qmp_query_cpus_fast(q, deadline, &cpus, &n, err)) < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    int64_t *v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        sv_qmp_cpu_infos_free(cpus, n);
        return oom(err);
    }
    /* in vCPU order, whatever order QEMU lists them in */
    for (size_t i = 0; i < n; i++) {
        size_t at = (size_t)cpus[i].cpu_index;
        if (cpus[i].cpu_index < 0 || at >= n || v[at]) {
            free(v);
            sv_qmp_cpu_infos_free(cpus, n);
            return sv_error_set(err, EPROTO, "vm %s: qmp query-cpus-fast: unexpected cpu-index %lld",
                                vm->id, (long long)cpus[i].cpu_index);
        }
        v[at] = cpus[i].thread_id;
    }
    sv_qmp_cpu_infos_free(cpus, n);
    *tids = v;
    *n_out = n;
    return 0;
}

static int qemu_pids(sv_hv_vm *vm, int64_t **pids, size_t *n_out, sv_error **err)
{
    sv_hv_observed o;
    observe_procs(vm, &o);
    int64_t *v = calloc(2, sizeof(*v));
    if (!v)
        return oom(err);
    size_t n = 0;
    if (o.vmm_pid)
        v[n++] = o.vmm_pid;
    if (o.virtiofsd_pid)
        v[n++] = o.virtiofsd_pid;
    *pids = v;
    *n_out = n;
    return 0;
}

static int qemu_control(sv_hv_vm *vm, const char *request, char **reply, sv_error **err)
{
    _cleanup_json_ json_object *cmd = NULL;
    int r = sv_qmp_parse_command(request, &cmd, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s: qmp command", vm->id);
    json_object *ex = NULL;
    json_object_object_get_ex(cmd, "execute", &ex);
    const char *name = json_object_get_string(ex);
    _cleanup_close_ int pidfd = live_qemu(vm, err);
    if (pidfd < 0)
        return pidfd;
    int64_t deadline = call_deadline(vm);
    _cleanup_qmp_ sv_qmp *q = NULL;
    if ((r = qmp_open(vm, pidfd, deadline, name, &q, err)) < 0)
        return r;
    if ((r = sv_qmp_execute_text(q, request, deadline, reply, err)) < 0 &&
        qemu_died(vm, pidfd, name, r, err) == -ECHILD)
        return -ECHILD;
    if (r < 0)
        return sv_error_prefix(err, "vm %s", vm->id);
    return 0;
}

static int qemu_console_connect(sv_hv_vm *vm, int *fd_out, sv_error **err)
{
    _cleanup_close_ int pidfd = live_qemu(vm, err);
    if (pidfd < 0)
        return pidfd;
    _cleanup_free_ char *path = vm_file(vm, SV_STATE_CONSOLE_SOCKET);
    if (!path)
        return oom(err);
    int fd = sv_unix_connect(path, call_deadline(vm), err);
    if (fd == -ECONNREFUSED && vm->config->console_log_size > 0) {
        /* the logger serves the console (start_logger()); nobody else will */
        if (err) {
            sv_error_free(*err);
            *err = NULL;
        }
        return sv_error_set(err, ECONNREFUSED,
                            "vm %s: console: its console logger is gone (the VM runs on; its "
                            "console comes back when the VM is started again)",
                            vm->id);
    }
    if (fd < 0)
        return sv_error_prefix(err, "vm %s: console", vm->id);
    *fd_out = fd;
    return 0;
}

static char *qemu_exec_channel(sv_hv_vm *vm)
{
    return vm_file(vm, SV_STATE_EXEC_SOCKET);
}

/* ---- resize (src/qemu/resize.c) ---------------------------------------------------- */

/* The limits of this VM's resizes: its config, on its recorded arch. */
static void resize_limits(const sv_hv_vm *vm, sv_resize_limits *l)
{
    int arch = vm->config->arch;
    for (int i = SV_VM_ARCH_HOST + 1; vm->st->arch && sv_vm_arch_names[i]; i++)
        if (strcmp(sv_vm_arch_names[i], vm->st->arch) == 0)
            arch = i;
    sv_resize_limits_init(vm->config, arch, vm->id, l);
}

/* One resize: QMP opened on the VM's QEMU, the call, st->resized kept. */
static int qemu_resize(sv_hv_vm *vm, bool memory, int64_t value, int timeout_ms, int64_t *before,
                       int64_t *after, sv_error **err)
{
    _cleanup_close_ int pidfd = live_qemu(vm, err);
    if (pidfd < 0)
        return pidfd;
    sv_resize_limits l;
    resize_limits(vm, &l);
    _cleanup_qmp_ sv_qmp *q = NULL;
    int r = qmp_open(vm, pidfd, call_deadline(vm),
                     memory ? "query-memory-devices" : "query-hotpluggable-cpus", &q, err);
    if (r < 0)
        return r;
    int64_t unplug = sv_deadline_ms(timeout_ms);
    r = memory ? sv_resize_memory(q, &l, value, unplug, &vm->st->resized, before, after, err)
               : sv_resize_vcpus(q, &l, value, unplug, &vm->st->resized, before, after, err);
    if (r < 0 && exited(pidfd))
        return sv_error_prefix(err, "vm %s: qemu exited", vm->id);
    return r;
}

static int qemu_resize_memory(sv_hv_vm *vm, int64_t mib, int timeout_ms, int64_t *before,
                              int64_t *after, sv_error **err)
{
    return qemu_resize(vm, true, mib, timeout_ms, before, after, err);
}

static int qemu_resize_vcpus(sv_hv_vm *vm, int64_t vcpus, int timeout_ms, int64_t *before,
                             int64_t *after, sv_error **err)
{
    return qemu_resize(vm, false, vcpus, timeout_ms, before, after, err);
}

static int qemu_get_size(sv_hv_vm *vm, sv_vm_size *out, sv_error **err)
{
    _cleanup_close_ int pidfd = live_qemu(vm, err);
    if (pidfd < 0)
        return pidfd;
    sv_resize_limits l;
    resize_limits(vm, &l);
    _cleanup_qmp_ sv_qmp *q = NULL;
    int r = qmp_open(vm, pidfd, call_deadline(vm), "query-memory-devices", &q, err);
    if (r < 0)
        return r;
    sv_resize_size sz;
    if ((r = sv_resize_query(q, &l, &vm->st->resized, &sz, err)) < 0)
        return r;
    *out = (sv_vm_size){.memory_mib = sz.memory,
                        .max_memory_mib = l.no_memory ? sz.memory : l.max_memory,
                        .vcpus = sz.vcpus,
                        .max_vcpus = l.no_vcpus ? sz.vcpus : l.max_vcpus};
    return 0;
}

/* ---- hot-plugged devices (src/qemu/hotplug.c) -------------------------------------- */

/* The QEMU configuration the VM's QEMU runs with, as far as buses and
 * addresses go: spawn_qemu()'s build, with placeholder fds and paths (fd
 * numbers and file names move no device). */
static int started_config(sv_hv_vm *vm, sv_qemu_config **out, sv_error **err)
{
    sv_host_facts host = {0};
    int r = sv_host_facts_probe(&host, NULL, err);
    if (r < 0)
        return r;
    const sv_vm_state *st = vm->st;
    bool own_memory = st->template_memory && !st->from;
    bool from_memory = st->template_memory && st->from;
    sv_vm_launch l = {
        .console_fd = 3,
        .console_listening = true,
        .qmp_fd = 4,
        .agent_fd = 5,
        .vsock_fd = -1,
        .virtiofs_socket = st->paths.virtiofsd_socket,
        .memory_file = own_memory || from_memory ? "/sandvm/" SV_STATE_MEMORY_FILE : NULL,
        .memory_file_shared = own_memory,
        .pid_file = "/sandvm/" SV_STATE_QEMU_PIDFILE,
        .incoming_defer = st->from != NULL,
    };
    r = sv_qemu_arch_build(vm->config, &host, &l, out, err);
    sv_host_facts_free(&host);
    return r < 0 ? sv_error_prefix(err, "vm %s: its QEMU configuration", vm->id) : 0;
}

static int hotplug_save(void *opaque, sv_error **err)
{
    sv_hv_vm *vm = opaque;
    return sv_vm_state_save(vm->dir, vm->st, err);
}

/* The neutral block driver of block_device_driver (virtio-blk is the ccw
 * one on s390x, which the QEMU config's transport decides anyway). */
static int dev_block_driver(const sv_vm_config *config)
{
    int d = sv_dev_block_driver_from_name(sv_vm_block_driver_names[config->block_device_driver]);
    return d < 0 ? SV_DEV_BLOCK_VIRTIO_BLK : d;
}

/* One hotplug call's hold on the VM: its QEMU, its config, a QMP session. */
typedef struct hotplug_session {
    int pidfd;
    sv_qemu_config *cfg;
    sv_qmp *q;
    sv_hotplug h;
} hotplug_session;

static void hotplug_session_end(hotplug_session *s)
{
    sv_qmp_free(s->q);
    sv_qemu_config_free(s->cfg);
    sv_closep(&s->pidfd);
    memset(s, 0, sizeof(*s));
    s->pidfd = -1;
}

static int hotplug_session_begin(sv_hv_vm *vm, const char *what, hotplug_session *s,
                                 sv_error **err)
{
    *s = (hotplug_session){.pidfd = -1};
    int r = s->pidfd = live_qemu(vm, err);
    if (r < 0 || (r = started_config(vm, &s->cfg, err)) < 0 ||
        (r = qmp_open(vm, s->pidfd, call_deadline(vm), what, &s->q, err)) < 0)
        return r;
    s->h = (sv_hotplug){.vm_id = vm->id,
                        .cfg = s->cfg,
                        .st = vm->st,
                        .q = s->q,
                        .block_driver = dev_block_driver(vm->config),
                        .vhost_net = !vm->config->disable_vhost_net,
                        .vfio_root_ports = vm->config->hotplug_vfio_on_root_bus,
                        .save = hotplug_save,
                        .save_opaque = vm};
    return 0;
}

/* A failed call on a QEMU that died meanwhile says so. */
static int hotplug_result(hotplug_session *s, sv_hv_vm *vm, int r, sv_error **err)
{
    if (r < 0 && exited(s->pidfd))
        return sv_error_prefix(err, "vm %s: qemu exited", vm->id);
    return r;
}

static int qemu_hotplug_add(sv_hv_vm *vm, const sv_vm_device *dev, size_t *index, sv_error **err)
{
    _cleanup_(hotplug_session_end) hotplug_session s = {.pidfd = -1};
    int r = hotplug_session_begin(vm, "device_add", &s, err);
    if (r == 0)
        r = sv_hotplug_add(&s.h, dev, index, err);
    return hotplug_result(&s, vm, r, err);
}

static int qemu_hotplug_remove(sv_hv_vm *vm, const char *id, int timeout_ms, sv_error **err)
{
    _cleanup_(hotplug_session_end) hotplug_session s = {.pidfd = -1};
    int r = hotplug_session_begin(vm, "device_del", &s, err);
    if (r == 0)
        r = sv_hotplug_unplug(&s.h, id, timeout_ms, err);
    return hotplug_result(&s, vm, r, err);
}

static int qemu_devices(sv_hv_vm *vm, sv_error **err)
{
    bool settled = true;
    for (size_t i = 0; i < vm->st->n_devices; i++)
        settled &= vm->st->devices[i].state == SV_VM_DEV_ATTACHED;
    if (settled)
        return 0; /* nothing to ask QEMU */
    _cleanup_(hotplug_session_end) hotplug_session s = {.pidfd = -1};
    int r = hotplug_session_begin(vm, "qom-list", &s, err);
    if (r == 0)
        r = sv_hotplug_settle(&s.h, err);
    return hotplug_result(&s, vm, r, err);
}

const sv_hypervisor_ops sv_hypervisor_qemu = {
    .name = "qemu",
    .validate = qemu_validate,
    .start = qemu_start,
    .stop = qemu_stop,
    .pause = qemu_pause,
    .resume = qemu_resume,
    .save = qemu_save,
    .observe = qemu_observe,
    .vcpu_threads = qemu_vcpu_threads,
    .pids = qemu_pids,
    .control = qemu_control,
    .console_connect = qemu_console_connect,
    .exec_channel = qemu_exec_channel,
    .cleanup = qemu_cleanup,
    .hotplug_add = qemu_hotplug_add,
    .hotplug_remove = qemu_hotplug_remove,
    .devices = qemu_devices,
    .resize_memory = qemu_resize_memory,
    .resize_vcpus = qemu_resize_vcpus,
    .get_size = qemu_get_size,
};
