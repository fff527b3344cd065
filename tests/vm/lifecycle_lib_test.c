/*
 * lifecycle_lib_test: the VM lifecycle through libsandvm only (include/
 * sandvm/vm.h), with the real QEMU of each arch and the default guest
 * (guest/build-guest ARCH) under TCG: create, start, exec, pause, resume,
 * vCPU threads, stop; a start QEMU refuses; a QEMU killed with SIGKILL;
 * save and restore (plain and with template memory); virtio-fs with a
 * hostile shared directory name.
 *
 * Usage: build/tests/lifecycle_lib_test [ARCH...]   (default: all four)
 * Prints PASS/FAIL/SKIP lines, TIME lines with the figures, and last
 * "N passed, N failed". Exit status 0 only when nothing failed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandvm/vm.h"

#ifndef SV_SOURCE_ROOT
#define SV_SOURCE_ROOT "."
#endif

/* the exec timeout covers the boot: s390x and ppc64le boot slowly under TCG */
#define EXEC_TIMEOUT_MS 300000

static int passed, failed;
static char *work, *root;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    failed++;
}

/* PASS or FAIL by `ok`; returns ok. */
static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (ok)
        passed++;
    else
        failed++;
    return ok;
}

static const char *emsg(sv_error *e)
{
    return e ? sv_error_message(e) : "(no error)";
}

/* `s` for a PASS/FAIL line: newlines shown as \n (a few at a time). */
static const char *oneline(const char *s)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    size_t n = 0;
    for (; s && *s && n + 3 < sizeof(bufs[0]); s++) {
        if (*s == '\n') {
            b[n++] = '\\';
            b[n++] = 'n';
        } else {
            b[n++] = *s;
        }
    }
    b[n] = '\0';
    return b;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, f);
    if (vasprintf(&s, f, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

/* A live (not zombie) process `pid`. */
static bool proc_alive(int64_t pid)
{
    if (pid <= 0)
        return false;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The process's command line, NUL bytes as spaces. */
static char *cmdline(int64_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 65536);
    if (!f || !buf) {
        if (f)
            fclose(f);
        return buf;
    }
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    for (size_t i = 0; i + 1 < n; i++)
        if (!buf[i])
            buf[i] = ' ';
    return buf;
}

/* ---- the guest -------------------------------------------------------------------- */

typedef struct guest {
    char *kernel, *initrd;
} guest;

static bool build_guest(const char *arch, guest *g)
{
    char *cmd = fmt("'%s/guest/build-guest' %s 2>%s/build-%s.err", SV_SOURCE_ROOT, arch, work,
                    arch);
    FILE *p = popen(cmd, "r");
    free(cmd);
    char line[4096] = "";
    if (!p || !fgets(line, sizeof(line), p)) {
        if (p)
            pclose(p);
        fail("%s build-guest: no manifest (see %s/build-%s.err)", arch, work, arch);
        return false;
    }
    int rc = pclose(p);
    line[strcspn(line, "\n")] = '\0';
    char *slash = strrchr(line, '/');
    if (rc != 0 || !slash) {
        fail("%s build-guest: exit status %d", arch, rc);
        return false;
    }
    *slash = '\0';
    g->kernel = fmt("%s/kernel", line);
    g->initrd = fmt("%s/initramfs.cpio.gz", line);
    return true;
}

static char *config_json(const char *arch, const guest *g, const char *extra)
{
    return fmt("{\"arch\":\"%s\",\"kernel\":\"%s\",\"initrd\":\"%s\",\"vcpus\":2,\"memory\":512%s%s}",
               arch, g->kernel, g->initrd, extra ? "," : "", extra ? extra : "");
}

static sv_vm *create_vm(const char *id, const char *config, bool template_memory, sv_error **err)
{
    sv_vm_create_opts o = {.root = root, .config_json = config, .config_len = strlen(config),
                           .template_memory = template_memory};
    sv_vm *vm = NULL;
    return sv_vm_create(id, &o, &vm, err) < 0 ? NULL : vm;
}

static sv_vm_info *status(sv_vm *vm, sv_error **err)
{
    sv_vm_info *info = NULL;
    return sv_vm_status(vm, &info, err) < 0 ? NULL : info;
}

/* Runs argv in the VM; *out receives its stdout (and stderr). */
static int exec_capture(sv_vm *vm, const char *const *argv, char **out, int *status_out,
                        sv_error **err)
{
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    sv_exec_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = p[1], .stderr_fd = p[1],
                      .timeout_ms = EXEC_TIMEOUT_MS, .cancel_fd = -1};
    int r = sv_vm_exec(vm, &o, status_out, err);
    close(p[1]);
    char *buf = calloc(1, 65536);
    size_t n = 0;
    ssize_t k;
    while (buf && n < 65535 && (k = read(p[0], buf + n, 65535 - n)) > 0)
        n += (size_t)k;
    close(p[0]);
    *out = buf;
    return r;
}

/* Reads the console for `ms` (or until `until` shows up), after writing
 * `send` (may be NULL). */
static char *console_read(sv_vm *vm, int ms, const char *send, const char *until)
{
    sv_error *err = NULL;
    int fd = -1;
    char *buf = calloc(1, 1 << 20);
    if (sv_vm_console_connect(vm, &fd, &err) < 0) {
        snprintf(buf, 1 << 20, "<console: %s>", emsg(err));
        sv_error_free(err);
        return buf;
    }
    if (send && write(fd, send, strlen(send)) < 0) {
        close(fd);
        snprintf(buf, 1 << 20, "<console: write failed>");
        return buf;
    }
    size_t n = 0;
    int64_t end = now_ms() + ms;
    while (now_ms() < end && n < (1 << 20) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)(end - now_ms())) <= 0)
            break;
        ssize_t k = read(fd, buf + n, (1 << 20) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        buf[n] = '\0';
        if (until && strstr(buf, until))
            break;
    }
    close(fd);
    return buf;
}

static bool vm_dir_gone(const char *id)
{
    char *d = fmt("%s/%s", root, id);
    bool gone = !exists(d);
    free(d);
    return gone;
}

/* ---- the lifecycle -------------------------------------------------------------------- */

static void lifecycle(const char *arch, const guest *g)
{
    sv_error *err = NULL;
    char *id = fmt("lc-%s", arch);
    char *cfg = config_json(arch, g, NULL);
    sv_vm *vm = create_vm(id, cfg, false, &err);
    free(cfg);
    if (!check(vm != NULL, "%s create: %s", arch, vm ? "created" : emsg(err))) {
        sv_error_free(err);
        free(id);
        return;
    }
    int64_t t0 = now_ms();
    int r = sv_vm_start(vm, NULL, &err);
    int64_t t_start = now_ms() - t0;
    if (!check(r == 0, "%s start: %s", arch, r == 0 ? "QMP answered" : emsg(err))) {
        sv_error_free(err);
        sv_vm_delete(vm, true, NULL);
        sv_vm_close(vm);
        free(id);
        return;
    }
    printf("TIME %s start (spawn -> QMP ready, from sv_vm_start): %lld ms\n", arch,
           (long long)t_start);

    sv_vm_info *info = status(vm, &err);
    int64_t vmm = info ? info->vmm_pid : 0;
    check(info && info->state == SV_VM_RUNNING && vmm > 0 && proc_alive(vmm),
          "%s status after start: %s, qemu pid %lld", arch,
          info ? sv_vm_run_state_name(info->state) : emsg(err), (long long)vmm);
    sv_vm_info_free(info);

    /* the sockets' backlogs, which QEMU lowered to 1 when it took them */
    char *ss = fmt("ss -xlH 2>/dev/null | grep -F '%s/%s/'", root, id);
    FILE *p = popen(ss, "r");
    char line[1024];
    int backlog_ok = 0, nsock = 0;
    while (p && fgets(line, sizeof(line), p)) {
        char state[32], path[512];
        unsigned long rq, sq;
        if (sscanf(line, "%*s %31s %lu %lu %511s", state, &rq, &sq, path) != 4)
            continue;
        nsock++;
        bool exec = strstr(path, "/exec.sock") != NULL;
        if ((exec && sq == 64) || (!exec && sq == 16))
            backlog_ok++;
    }
    if (p)
        pclose(p);
    free(ss);
    check(nsock == 3 && backlog_ok == 3,
          "%s listening sockets: qmp.sock and console.sock backlog 16, exec.sock 64 (%d of %d)",
          arch, backlog_ok, nsock);

    /* exec waits for the guest's agent: the guest has booted after it */
    const char *uname_argv[] = {"uname", "-m", NULL};
    char *out = NULL;
    int st = -1;
    t0 = now_ms();
    r = exec_capture(vm, uname_argv, &out, &st, &err);
    int64_t t_exec = now_ms() - t0;
    char *want = fmt("%s\n", arch);
    check(r == 0 && st == 0 && out && strcmp(out, want) == 0,
          "%s exec uname -m -> %s (status %d, %lld ms from start, boot included)", arch,
          r == 0 ? oneline(out) : emsg(err), st, (long long)t_exec);
    free(want);
    free(out);
    sv_error_free(err);
    err = NULL;

    /* pause: QEMU's own view says paused */
    r = sv_vm_pause(vm, &err);
    info = r == 0 ? status(vm, &err) : NULL;
    char *reply = NULL;
    if (info)
        sv_vm_qmp(vm, "{\"execute\":\"query-status\"}", &reply, &err);
    check(info && info->state == SV_VM_PAUSED && reply && strstr(reply, "\"running\":false"),
          "%s pause -> status %s, query-status %s", arch,
          info ? sv_vm_run_state_name(info->state) : emsg(err), reply ? reply : "-");
    sv_vm_info_free(info);
    free(reply);
    reply = NULL;
    const char *true_argv[] = {"true", NULL};
    sv_exec_opts eo = {.argv = true_argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
                       .cancel_fd = -1};
    sv_error *perr = NULL;
    r = sv_vm_exec(vm, &eo, &st, &perr);
    check(r == -EINVAL && strstr(emsg(perr), "is paused"), "%s exec while paused -> %s", arch,
          emsg(perr));
    sv_error_free(perr);

    r = sv_vm_resume(vm, &err);
    info = r == 0 ? status(vm, &err) : NULL;
    if (info)
        sv_vm_qmp(vm, "{\"execute\":\"query-status\"}", &reply, &err);
    check(info && info->state == SV_VM_RUNNING && reply && strstr(reply, "\"running\":true"),
          "%s resume -> status %s, query-status %s", arch,
          info ? sv_vm_run_state_name(info->state) : emsg(err), reply ? reply : "-");
    sv_vm_info_free(info);
    free(reply);

    /* vCPU threads: one per vCPU, each a thread of the QEMU process */
    int64_t *tids = NULL;
    size_t n = 0;
    r = sv_vm_vcpu_threads(vm, &tids, &n, &err);
    bool threads_ok = r == 0 && n == 2;
    for (size_t i = 0; threads_ok && i < n; i++) {
        char *task = fmt("/proc/%lld/task/%lld", (long long)vmm, (long long)tids[i]);
        threads_ok = tids[i] != vmm && exists(task);
        free(task);
    }
    check(threads_ok, "%s vcpu threads: %zu (%lld, %lld), threads of qemu %lld", arch, n,
          n > 0 ? (long long)tids[0] : 0LL, n > 1 ? (long long)tids[1] : 0LL, (long long)vmm);
    free(tids);
    int64_t *pids = NULL;
    r = sv_vm_pids(vm, &pids, &n, &err);
    check(r == 0 && n == 1 && pids[0] == vmm, "%s pids: qemu only", arch);
    free(pids);
    sv_error_free(err);
    err = NULL;

    /* stop: the guest's agent powers off on system_powerdown */
    t0 = now_ms();
    r = sv_vm_stop(vm, NULL, &err);
    int64_t t_stop = now_ms() - t0;
    check(r == 0 && !proc_alive(vmm) && vm_dir_gone(id),
          "%s stop: %s; qemu gone, directory gone (%lld ms)", arch, r == 0 ? "ok" : emsg(err),
          (long long)t_stop);
    printf("TIME %s stop (running guest, powerdown answered by the agent): %lld ms\n", arch,
           (long long)t_stop);
    sv_error_free(err);
    sv_vm_close(vm);
    free(id);
}

/* QEMU refuses the command line: ECHILD with its message, created again. */
static void start_refused(const char *arch, const guest *g)
{
    sv_error *err = NULL;
    char *id = fmt("bad-%s", arch);
    char *cfg = config_json(arch, g, "\"machine_accelerators\":[\"sv-bogus=on\"]");
    sv_vm *vm = create_vm(id, cfg, false, &err);
    free(cfg);
    if (!check(vm != NULL, "%s create (bad machine option): %s", arch,
               vm ? "created" : emsg(err))) {
        sv_error_free(err);
        free(id);
        return;
    }
    int r = sv_vm_start(vm, NULL, &err);
    check(r == -ECHILD && strstr(emsg(err), "qemu exited") && strstr(emsg(err), "sv-bogus"),
          "%s start refused by qemu -> ECHILD: %s", arch, emsg(err));
    sv_error_free(err);
    err = NULL;
    sv_vm_info *info = status(vm, &err);
    char *sock = fmt("%s/%s/qmp.sock", root, id);
    char *log = fmt("%s/%s/qemu.log", root, id);
    check(info && info->state == SV_VM_CREATED && info->vmm_pid == 0 && !exists(sock) &&
              !exists(log),
          "%s after the failed start: %s, no sockets, no log", arch,
          info ? sv_vm_run_state_name(info->state) : emsg(err));
    free(sock);
    free(log);
    sv_vm_info_free(info);
    r = sv_vm_delete(vm, false, &err);
    check(r == 0 && vm_dir_gone(id), "%s delete after the failed start", arch);
    sv_error_free(err);
    sv_vm_close(vm);
    free(id);
}

/* The kernel disappears between create and start. */
static void start_missing_kernel(const char *arch, const guest *g)
{
    sv_error *err = NULL;
    char *kernel = fmt("%s/kernel-%s", work, arch);
    char *cmd = fmt("cp '%s' '%s'", g->kernel, kernel);
    if (system(cmd) != 0) {
        fail("%s copying the kernel", arch);
        free(cmd);
        free(kernel);
        return;
    }
    free(cmd);
    guest g2 = {kernel, g->initrd};
    char *cfg = config_json(arch, &g2, NULL);
    sv_vm *vm = create_vm("nokernel", cfg, false, &err);
    free(cfg);
    unlink(kernel);
    if (!check(vm != NULL, "%s create (kernel removed later): %s", arch,
               vm ? "created" : emsg(err))) {
        sv_error_free(err);
        free(kernel);
        return;
    }
    int r = sv_vm_start(vm, NULL, &err);
    check(r == -ECHILD && strstr(emsg(err), kernel), "%s start without its kernel -> ECHILD: %s",
          arch, emsg(err));
    sv_error_free(err);
    err = NULL;
    sv_vm_info *info = status(vm, &err);
    check(info && info->state == SV_VM_CREATED, "%s state after: %s", arch,
          info ? sv_vm_run_state_name(info->state) : emsg(err));
    sv_vm_info_free(info);
    sv_vm_delete(vm, false, NULL);
    sv_vm_close(vm);
    free(kernel);
}

/* QEMU killed with SIGKILL: stopped + crashed; delete cleans up. */
static void crash(const char *arch, const guest *g)
{
    sv_error *err = NULL;
    char *cfg = config_json(arch, g, NULL);
    sv_vm *vm = create_vm("crash", cfg, false, &err);
    free(cfg);
    if (!vm || sv_vm_start(vm, NULL, &err) < 0) {
        fail("%s crash: create/start: %s", arch, emsg(err));
        sv_error_free(err);
        if (vm)
            sv_vm_delete(vm, true, NULL);
        sv_vm_close(vm);
        return;
    }
    int64_t *pids = NULL;
    size_t n = 0;
    sv_vm_pids(vm, &pids, &n, NULL);
    int64_t vmm = n ? pids[0] : 0;
    free(pids);
    kill((pid_t)vmm, SIGKILL);
    for (int i = 0; i < 500 && proc_alive(vmm); i++)
        sleep_ms(10);
    sv_vm_info *info = status(vm, &err);
    check(info && info->state == SV_VM_STOPPED && info->crashed && info->vmm_pid == 0,
          "%s qemu killed -> status %s%s", arch,
          info ? sv_vm_run_state_name(info->state) : emsg(err),
          info && info->crashed ? " (crashed)" : "");
    sv_vm_info_free(info);
    sv_error_free(err);
    err = NULL;
    char *sock = fmt("%s/crash/qmp.sock", root);
    bool leftover = exists(sock); /* QEMU had no chance to remove it */
    free(sock);
    int r = sv_vm_delete(vm, false, &err);
    check(r == 0 && vm_dir_gone("crash") && leftover, "%s delete of the crashed vm: %s", arch,
          r == 0 ? "directory and its leftover sockets gone" : emsg(err));
    sv_error_free(err);
    sv_vm_close(vm);
}

/* A QEMU that is stopped (SIGSTOP) never greets: stop fails with ETIMEDOUT
 * naming the VM and the command, within the VMM timeout (+1 s), and leaves
 * the lock free; stop with force kills it. */
static void stuck(const char *arch, const guest *g)
{
    sv_error *err = NULL;
    char *cfg = config_json(arch, g, NULL);
    sv_vm *vm = create_vm("stuck", cfg, false, &err);
    free(cfg);
    if (!vm || sv_vm_start(vm, NULL, &err) < 0) {
        fail("%s stuck: create/start: %s", arch, emsg(err));
        sv_error_free(err);
        if (vm)
            sv_vm_delete(vm, true, NULL);
        sv_vm_close(vm);
        return;
    }
    int64_t *pids = NULL;
    size_t n = 0;
    sv_vm_pids(vm, &pids, &n, NULL);
    int64_t vmm = n ? pids[0] : 0;
    free(pids);
    kill((pid_t)vmm, SIGSTOP);
    sv_vm_set_vmm_timeout(vm, 1000);
    int64_t t0 = now_ms();
    int r = sv_vm_stop(vm, NULL, &err);
    int64_t t = now_ms() - t0;
    check(r == -ETIMEDOUT && strstr(emsg(err), "vm stuck") && strstr(emsg(err), "query-status") &&
              t < 1000 + 1000,
          "%s stop of a SIGSTOPped qemu -> ETIMEDOUT in %lld ms: %s", arch, (long long)t,
          emsg(err));
    sv_error_free(err);
    err = NULL;
    /* nothing was changed, and the lock is free */
    sv_vm_set_lock_timeout(vm, 0);
    sv_vm_info *info = NULL;
    r = sv_vm_status(vm, &info, &err);
    check(r == -ETIMEDOUT && proc_alive(vmm),
          "%s status of the stuck vm: not busy, its qemu untouched: %s", arch, emsg(err));
    sv_vm_info_free(info);
    sv_error_free(err);
    err = NULL;
    sv_vm_stop_opts force = {.force = true};
    r = sv_vm_stop(vm, &force, &err);
    check(r == 0 && !proc_alive(vmm) && vm_dir_gone("stuck"), "%s stop --force of the stuck vm: %s",
          arch, r == 0 ? "killed, directory gone" : emsg(err));
    sv_error_free(err);
    sv_vm_close(vm);
}

typedef struct stopper {
    const char *id;
    int delay_ms;
    int r;
} stopper;

static void *stop_later(void *arg)
{
    stopper *s = arg;
    sleep_ms(s->delay_ms);
    sv_vm *vm = NULL;
    s->r = sv_vm_open(root, s->id, &vm, NULL);
    if (s->r == 0)
        s->r = sv_vm_stop(vm, NULL, NULL);
    sv_vm_close(vm);
    return NULL;
}

/* A VM stopped (by another handle) while a command runs in it: ECHILD. */
static void stop_during_exec(const char *arch, const guest *g)
{
    sv_error *err = NULL;
    char *cfg = config_json(arch, g, NULL);
    sv_vm *vm = create_vm("busyexec", cfg, false, &err);
    free(cfg);
    const char *true_argv[] = {"true", NULL};
    char *out = NULL;
    int st = -1;
    if (!vm || sv_vm_start(vm, NULL, &err) < 0 ||
        exec_capture(vm, true_argv, &out, &st, &err) < 0) {
        fail("%s stop during exec: create/start/exec: %s", arch, emsg(err));
        sv_error_free(err);
        free(out);
        if (vm)
            sv_vm_delete(vm, true, NULL);
        sv_vm_close(vm);
        return;
    }
    free(out);
    out = NULL;
    stopper s = {.id = "busyexec", .delay_ms = 1500};
    pthread_t th;
    pthread_create(&th, NULL, stop_later, &s);
    const char *argv[] = {"sleep", "60", NULL};
    int64_t t0 = now_ms();
    int r = exec_capture(vm, argv, &out, &st, &err);
    int64_t t = now_ms() - t0;
    pthread_join(th, NULL);
    check(r == -ECHILD && s.r == 0 && t < 60000 && vm_dir_gone("busyexec"),
          "%s a vm stopped during an exec -> ECHILD after %lld ms: %s", arch, (long long)t,
          emsg(err));
    free(out);
    sv_error_free(err);
    sv_vm_close(vm);
}

/* ---- save and restore --------------------------------------------------------------------- */

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static int64_t file_blocks(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
}

/* A clone from `dir`: starts without booting and has the template's marker. */
static void clone_check(const char *arch, const char *dir, const char *cid, const char *token,
                        sv_vm **vm_out)
{
    sv_error *err = NULL;
    sv_vm_create_opts o = {.root = root, .from = dir};
    sv_vm *vm = NULL;
    if (sv_vm_create(cid, &o, &vm, &err) < 0) {
        fail("%s %s: create --from: %s", arch, cid, emsg(err));
        sv_error_free(err);
        return;
    }
    int64_t t0 = now_ms();
    int r = sv_vm_start(vm, NULL, &err);
    int64_t t = now_ms() - t0;
    /* at once, before a booting guest could print anything: the guest's
     * console shell answers, and nothing of a boot shows */
    char *con = r == 0 ? console_read(vm, 10000, "echo sv-$((6*7))\n", "sv-42") : NULL;
    check(r == 0, "%s %s: start restores (%lld ms): %s", arch, cid, (long long)t,
          r == 0 ? "ok" : emsg(err));
    printf("TIME %s restore (sv_vm_start of a vm created from the save, until running): %lld ms\n",
           arch, (long long)t);
    sv_error_free(err);
    err = NULL;
    if (r < 0) {
        free(con);
        sv_vm_delete(vm, true, NULL);
        sv_vm_close(vm);
        return;
    }
    sv_vm_info *info = status(vm, &err);
    check(info && info->state == SV_VM_RUNNING, "%s %s: running (query-status)", arch, cid);
    sv_vm_info_free(info);
    check(con && strstr(con, "sv-42") && !strstr(con, "SANDVM-STAGE") &&
              !strstr(con, "Linux version"),
          "%s %s: the console shell answers at once, no boot messages (%zu bytes read)", arch,
          cid, con ? strlen(con) : 0);
    free(con);
    const char *argv[] = {"cat", "/tmp/sv-marker", NULL};
    char *out = NULL;
    int st = -1;
    r = exec_capture(vm, argv, &out, &st, &err);
    char *want = fmt("%s\n", token);
    check(r == 0 && st == 0 && out && strcmp(out, want) == 0,
          "%s %s: exec sees the template's /tmp/sv-marker: %s", arch, cid,
          r == 0 ? oneline(out) : emsg(err));
    free(want);
    free(out);
    sv_error_free(err);
    *vm_out = vm;
}

static void stop_gone(const char *arch, sv_vm *vm, const char *what)
{
    sv_error *err = NULL;
    char *id = strdup(sv_vm_id(vm));
    int64_t *pids = NULL;
    size_t n = 0;
    sv_vm_pids(vm, &pids, &n, NULL);
    int r = sv_vm_stop(vm, NULL, &err);
    bool alive = false;
    for (size_t i = 0; i < n; i++)
        alive |= proc_alive(pids[i]);
    check(r == 0 && !alive && vm_dir_gone(id), "%s %s stopped: %s, no process, no directory",
          arch, what, r == 0 ? "ok" : emsg(err));
    free(pids);
    free(id);
    sv_error_free(err);
    sv_vm_close(vm);
}

/* Boots a template, marks it, saves it, stops it, and restores `clones`
 * VMs from the save. */
static void save_restore(const char *arch, const guest *g, bool template_memory, int clones)
{
    const char *mode = template_memory ? "template memory" : "plain";
    sv_error *err = NULL;
    char *tid = fmt("tpl-%s", template_memory ? "mem" : "plain");
    char *cfg = config_json(arch, g, NULL);
    sv_vm *vm = create_vm(tid, cfg, template_memory, &err);
    free(cfg);
    if (!vm || sv_vm_start(vm, NULL, &err) < 0) {
        fail("%s save (%s): create/start: %s", arch, mode, emsg(err));
        sv_error_free(err);
        if (vm)
            sv_vm_delete(vm, true, NULL);
        sv_vm_close(vm);
        free(tid);
        return;
    }
    char token[32];
    snprintf(token, sizeof(token), "marker-%ld-%d", (long)getpid(), template_memory);
    char *script = fmt("echo %s >/tmp/sv-marker", token);
    const char *argv[] = {"sh", "-c", script, NULL};
    char *out = NULL;
    int st = -1;
    int r = exec_capture(vm, argv, &out, &st, &err);
    check(r == 0 && st == 0, "%s save (%s): template booted and marked: %s", arch, mode,
          r == 0 ? "ok" : emsg(err));
    free(out);
    free(script);
    sv_error_free(err);
    err = NULL;

    char *dir = fmt("%s/saved-%s", work, template_memory ? "mem" : "plain");
    int64_t t0 = now_ms();
    r = sv_vm_save(vm, dir, &err);
    int64_t t = now_ms() - t0;
    char *state = fmt("%s/state", dir);
    char *memory = fmt("%s/memory", dir);
    check(r == 0 && file_size(state) > 0 && (exists(memory) == template_memory),
          "%s save (%s): %s", arch, mode, r == 0 ? "state written" : emsg(err));
    printf("TIME %s save (%s, 512 MiB guest): %lld ms; state file %lld bytes", arch, mode,
           (long long)t, (long long)file_size(state));
    if (template_memory)
        printf("; memory file %lld bytes, %lld allocated", (long long)file_size(memory),
               (long long)file_blocks(memory));
    printf("\n");
    sv_error_free(err);
    err = NULL;
    sv_vm_info *info = status(vm, &err);
    check(info && info->state == SV_VM_PAUSED, "%s save (%s): the template is left paused", arch,
          mode);
    sv_vm_info_free(info);
    free(state);
    free(memory);
    /* paused: no powerdown, straight to quit */
    stop_gone(arch, vm, "template");
    if (r == 0)
        for (int i = 0; i < clones; i++) {
            char *cid = fmt("clone%d-%s", i, template_memory ? "mem" : "plain");
            sv_vm *c = NULL;
            clone_check(arch, dir, cid, token, &c);
            if (c) {
                /* the second clone runs beside the first: at most 2 VMs */
                if (i + 1 < clones) {
                    char *cid2 = fmt("clone%d-%s", i + 1, template_memory ? "mem" : "plain");
                    sv_vm *c2 = NULL;
                    clone_check(arch, dir, cid2, token, &c2);
                    if (c2)
                        stop_gone(arch, c2, cid2);
                    free(cid2);
                    i++;
                }
                stop_gone(arch, c, cid);
            }
            free(cid);
        }
    char *rm = fmt("rm -rf '%s'", dir);
    if (system(rm) != 0)
        fail("removing %s", dir);
    free(rm);
    free(dir);
    free(tid);
}

/* ---- virtio-fs ---------------------------------------------------------------------------- */

static void virtiofs(const char *arch, const guest *g)
{
    sv_error *err = NULL;
    /* a name that would split into two virtiofsd options unescaped */
    char *share = fmt("%s/sh,allow_root\\dir", work);
    char *file = fmt("%s/hello", share);
    FILE *f = NULL;
    if (mkdir(share, 0755) < 0 || !(f = fopen(file, "w"))) {
        fail("%s virtio-fs: making %s", arch, share);
        free(share);
        free(file);
        return;
    }
    fputs("via virtiofs\n", f);
    fclose(f);
    char *extra = fmt("\"shared_fs\":\"virtio-fs\",\"shared_dir\":\"%s\"", share);
    /* JSON: the backslash of the name escaped */
    char *json_extra = calloc(1, strlen(extra) * 2 + 1);
    for (size_t i = 0, j = 0; extra[i]; i++) {
        if (extra[i] == '\\')
            json_extra[j++] = '\\';
        json_extra[j++] = extra[i];
    }
    char *cfg = config_json(arch, g, json_extra);
    free(extra);
    free(json_extra);
    sv_vm *vm = create_vm("vfs", cfg, false, &err);
    free(cfg);
    int r = vm ? sv_vm_start(vm, NULL, &err) : -1;
    if (!check(r == 0, "%s virtio-fs start: %s", arch, r == 0 ? "ok" : emsg(err))) {
        sv_error_free(err);
        if (vm)
            sv_vm_delete(vm, true, NULL);
        sv_vm_close(vm);
        free(share);
        free(file);
        return;
    }
    int64_t *pids = NULL;
    size_t n = 0;
    sv_vm_pids(vm, &pids, &n, &err);
    char *vcmd = n == 2 ? cmdline(pids[1]) : NULL;
    check(n == 2 && proc_alive(pids[0]) && proc_alive(pids[1]) && vcmd &&
              strstr(vcmd, "virtiofsd") && strstr(vcmd, "source="),
          "%s virtio-fs: qemu and virtiofsd run (%s)", arch, vcmd ? vcmd : "-");
    free(vcmd);
    const char *argv[] = {"sh", "-c",
                          "mkdir -p /mnt/v && mount -t virtiofs sandvm /mnt/v && cat /mnt/v/hello",
                          NULL};
    char *out = NULL;
    int st = -1;
    r = exec_capture(vm, argv, &out, &st, &err);
    check(r == 0 && st == 0 && out && strcmp(out, "via virtiofs\n") == 0,
          "%s virtio-fs: the guest reads the shared file: %s", arch,
          r == 0 ? oneline(out) : emsg(err));
    free(out);
    sv_error_free(err);
    err = NULL;
    r = sv_vm_stop(vm, NULL, &err);
    bool alive = false;
    for (size_t i = 0; i < n; i++)
        alive |= proc_alive(pids[i]);
    check(r == 0 && !alive && vm_dir_gone("vfs"),
          "%s virtio-fs stop: %s; neither qemu nor virtiofsd is left", arch,
          r == 0 ? "ok" : emsg(err));
    free(pids);
    sv_error_free(err);
    sv_vm_close(vm);
    unlink(file);
    rmdir(share);
    free(file);
    free(share);
}

/* Stop of a running guest that ignores system_powerdown (no ACPI): the
 * grace period runs out, then quit. */
static void stop_without_powerdown(const char *arch, const guest *g)
{
    sv_error *err = NULL;
    char *cfg = config_json(arch, g, "\"kernel_params\":\"acpi=off\"");
    sv_vm *vm = create_vm("noacpi", cfg, false, &err);
    free(cfg);
    const char *argv[] = {"true", NULL};
    char *out = NULL;
    int st = -1;
    if (!vm || sv_vm_start(vm, NULL, &err) < 0 || exec_capture(vm, argv, &out, &st, &err) < 0) {
        fail("%s stop without powerdown: create/start/exec: %s", arch, emsg(err));
        sv_error_free(err);
        free(out);
        if (vm)
            sv_vm_delete(vm, true, NULL);
        sv_vm_close(vm);
        return;
    }
    free(out);
    int64_t t0 = now_ms();
    int r = sv_vm_stop(vm, NULL, &err);
    int64_t t = now_ms() - t0;
    check(r == 0 && vm_dir_gone("noacpi") && t >= 10000,
          "%s stop of a guest that ignores the powerdown: after the 10 s grace (%lld ms)", arch,
          (long long)t);
    printf("TIME %s stop (running guest, no powerdown handling: default 10 s grace, then quit): "
           "%lld ms\n",
           arch, (long long)t);
    sv_error_free(err);
    sv_vm_close(vm);
}

/* ---- main ---------------------------------------------------------------------------------- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

static const char *qemu_binary(const char *arch)
{
    return !strcmp(arch, "x86_64")    ? "qemu-system-x86_64"
           : !strcmp(arch, "aarch64") ? "qemu-system-aarch64"
           : !strcmp(arch, "ppc64le") ? "qemu-system-ppc64"
                                      : "qemu-system-s390x";
}

static bool in_path(const char *prog)
{
    char *cmd = fmt("command -v %s >/dev/null 2>&1", prog);
    int rc = system(cmd);
    free(cmd);
    return rc == 0;
}

static void run_arch(const char *arch)
{
    if (!in_path(qemu_binary(arch))) {
        printf("SKIP %s: %s not found - NOT TESTED\n", arch, qemu_binary(arch));
        return;
    }
    guest g = {0};
    if (!build_guest(arch, &g))
        return;
    lifecycle(arch, &g);
    start_refused(arch, &g);
    if (!strcmp(arch, "x86_64")) {
        start_missing_kernel(arch, &g);
        crash(arch, &g);
        stuck(arch, &g);
        stop_during_exec(arch, &g);
        save_restore(arch, &g, false, 2);
        save_restore(arch, &g, true, 1);
        virtiofs(arch, &g);
        stop_without_powerdown(arch, &g);
    }
    free(g.kernel);
    free(g.initrd);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    char tmpl[] = "/tmp/sandvm-lifecycle.XXXXXX";
    work = mkdtemp(tmpl);
    if (!work) {
        perror("mkdtemp");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    root = fmt("%s/root", work);
    int fds_before = count_fds();
    static const char *const all[] = {"x86_64", "aarch64", "ppc64le", "s390x"};
    if (argc > 1)
        for (int i = 1; i < argc; i++)
            run_arch(argv[i]);
    else
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            run_arch(all[i]);
    /* nothing may be left under the root */
    DIR *d = opendir(root);
    int left = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            left++, printf("left behind: %s/%s\n", root, e->d_name);
    if (d)
        closedir(d);
    check(left == 0, "no vm directory left under the state root");
    int fds_after = count_fds();
    check(fds_after == fds_before, "no fd leaked in this process (%d open before, %d after)",
          fds_before, fds_after);
    char *rm = fmt("rm -rf '%s'", work);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", work);
    free(rm);
    free(root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
