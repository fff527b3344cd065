/*
 * sv_vm_run(): boot a VM, stream its console, run one job in it and return the
 * job's exit status. The job travels as a cpio archive appended to the
 * initramfs (guest/README.md): one file per argument, so arguments are data on
 * both sides and never re-parsed by a shell. The guest's init reports progress
 * and the exit status on the console as lines carrying a per-run random nonce,
 * which the job's own output cannot forge.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/vm_config.h"
#include "qemu/arch/arch.h"
#include "qemu/qemu_argv.h"
#include "util/cleanup.h"
#include "util/cpio.h"
#include "util/proc.h"
#include "util/sock.h"
#include "util/strbuf.h"

#define MARK_STAGE "SANDVM-STAGE-"
#define MARK_EXIT "SANDVM-EXIT-"
#define MARK_FAIL "SANDVM-FAIL-"
#define LINE_MAX_KEEP 4096
#define BOOT_LOG_MAX (64 * 1024)

SV_DEFINE_CLEANUP(sv_qemu_config, sv_qemu_config_free)

typedef struct run_state {
    const sv_run_opts *opts;
    char nonce[33];
    char stage[32];      /* last stage the guest reported */
    bool exited;
    int status;
    sv_strbuf line;      /* the current console line, until it proves not to be a marker */
    bool passthrough;    /* the current line is plain output: write as it comes */
    sv_error *err;
    bool stage_seen;     /* the guest's init reported in */
    bool pending_nl;     /* a newline held back: it may start a marker */
    char *failure;       /* "stage:reason" when the guest's init gave up */
    sv_strbuf boot_log;  /* console output before that, for error reports */
} run_state;

static void say(const sv_run_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const sv_run_opts *o, const char *fmt, ...)
{
    if (!o->log)
        return;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n >= 0)
        o->log(o->log_ctx, msg);
    free(msg);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Console output: firmware and kernel messages before the guest's init are
 * kept (for the error report, or streamed with a log callback) and the job's
 * output is streamed; what follows the exit marker (the kernel powering off)
 * is dropped. */
static void out(run_state *s, const char *buf, size_t len)
{
    if (!len || s->exited)
        return;
    if (!s->stage_seen) {
        if (s->boot_log.len + len <= BOOT_LOG_MAX)
            sv_strbuf_append_n(&s->boot_log, buf, len);
        if (!s->opts->log)
            return;
    }
    if (s->opts->console_fd >= 0)
        (void)write_all(s->opts->console_fd, buf, len); /* a closed stdout must not stop the VM */
}

/* If `line` is "<mark><nonce>:" + value, returns the value (and its length). */
static const char *marker_value(const run_state *s, const char *mark, const char *line, size_t len,
                                size_t *vlen)
{
    size_t ml = strlen(mark), nl = strlen(s->nonce);
    if (len <= ml + nl || strncmp(line, mark, ml) || strncmp(line + ml, s->nonce, nl) ||
        line[ml + nl] != ':')
        return NULL;
    const char *v = line + ml + nl + 1;
    *vlen = len - (size_t)(v - line);
    while (*vlen && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
        (*vlen)--;
    return v;
}

/* A complete line that began with "SANDVM-": true when it is a marker of this
 * run (and acts on it), false when it is ordinary output. */
static bool marker_line(run_state *s, const char *line, size_t len)
{
    size_t vlen = 0;
    const char *v;
    if ((v = marker_value(s, MARK_EXIT, line, len, &vlen))) {
        char buf[16] = {0};
        memcpy(buf, v, vlen < sizeof(buf) - 1 ? vlen : sizeof(buf) - 1);
        char *end = NULL;
        long st = strtol(buf, &end, 10);
        if (end != buf && *end == '\0' && st >= 0 && st <= 255) {
            s->exited = true;
            s->status = (int)st;
        }
        return true;
    }
    if ((v = marker_value(s, MARK_STAGE, line, len, &vlen))) {
        size_t n = vlen < sizeof(s->stage) - 1 ? vlen : sizeof(s->stage) - 1;
        memcpy(s->stage, v, n);
        s->stage[n] = '\0';
        s->stage_seen = true;
        say(s->opts, "guest stage: %s", s->stage);
        return true;
    }
    if ((v = marker_value(s, MARK_FAIL, line, len, &vlen))) {
        free(s->failure);
        s->failure = strndup(v, vlen);
        return true;
    }
    return false;
}

/* Emits what was held back: the newline before a line that turned out not
 * to be a marker, and the line so far. */
static void release(run_state *s)
{
    if (s->pending_nl)
        out(s, "\n", 1);
    s->pending_nl = false;
    if (s->line.len)
        out(s, s->line.s, s->line.len);
    sv_strbuf_free(&s->line);
}

/* Console bytes. The guest's init writes each marker as "\n<marker>\n", so a
 * newline is held until the next line proves not to be a marker, and a line
 * that starts like a marker is held until its end; everything else passes
 * through as it arrives. */
static void console_bytes(run_state *s, const char *buf, size_t len)
{
    static const char prefix[] = "SANDVM-";
    const size_t pl = sizeof(prefix) - 1;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (s->passthrough) {
            size_t j = i;
            while (j < len && buf[j] != '\n')
                j++;
            out(s, buf + i, j - i);
            if (j < len) { /* the newline: held */
                s->passthrough = false;
                s->pending_nl = true;
            }
            i = j;
            continue;
        }
        if (c == '\n') {
            if (s->line.len && marker_line(s, s->line.s, s->line.len)) {
                s->pending_nl = false; /* it was the marker's own */
                sv_strbuf_free(&s->line);
                continue;
            }
            release(s);
            s->pending_nl = true;
            continue;
        }
        sv_strbuf_append_c(&s->line, c);
        size_t n = s->line.len;
        bool could_be_marker = !strncmp(s->line.s, prefix, n < pl ? n : pl);
        if (!could_be_marker || n > LINE_MAX_KEEP) {
            release(s);
            s->passthrough = true;
        }
    }
}

static int make_job_initrd(const char *dir, const char *base_initrd, const char *const *argv,
                           const char *nonce, char **path_out, sv_error **err)
{
    sv_strbuf job = SV_STRBUF_INIT;
    sv_cpio_dir(&job, "sandvm");
    sv_cpio_file(&job, "sandvm/nonce", nonce, strlen(nonce));
    if (argv && argv[0]) {
        sv_cpio_dir(&job, "sandvm/argv");
        for (size_t i = 0; argv[i]; i++) {
            char name[64];
            snprintf(name, sizeof(name), "sandvm/argv/%zu", i);
            sv_cpio_file(&job, name, argv[i], strlen(argv[i]));
        }
    }
    sv_cpio_end(&job);
    if (job.oom) {
        sv_strbuf_free(&job);
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/initrd", dir) < 0) {
        sv_strbuf_free(&job);
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    _cleanup_close_ int in = open(base_initrd, O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int outfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int r = 0;
    if (in < 0)
        r = sv_error_errno(err, errno, "opening initrd %s", base_initrd);
    else if (outfd < 0)
        r = sv_error_errno(err, errno, "creating %s", path);
    char buf[1 << 16];
    while (r == 0) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = sv_error_errno(err, errno, "reading initrd %s", base_initrd);
            break;
        }
        if (n == 0)
            break;
        if (write_all(outfd, buf, (size_t)n) < 0)
            r = sv_error_errno(err, errno, "writing %s", path);
    }
    /* the kernel reads archives from 4-byte aligned offsets */
    off_t end = r == 0 ? lseek(outfd, 0, SEEK_END) : 0;
    static const char zeros[4] = {0};
    if (r == 0 && end % 4 && write_all(outfd, zeros, (size_t)(4 - end % 4)) < 0)
        r = sv_error_errno(err, errno, "writing %s", path);
    if (r == 0 && write_all(outfd, job.s, job.len) < 0)
        r = sv_error_errno(err, errno, "writing %s", path);
    sv_strbuf_free(&job);
    if (r < 0)
        return r;
    *path_out = TAKE_PTR(path);
    return 0;
}

/* The last lines of the boot log, as "\nguest console (last lines):\n...", or "". */
static const char *boot_log_tail(run_state *s)
{
    static const char head[] = "\nguest console before init (last lines):\n";
    if (s->stage_seen || !s->boot_log.len)
        return "";
    const char *b = s->boot_log.s;
    size_t n = s->boot_log.len, lines = 0, i = n;
    while (i > 0 && lines < 20)
        if (b[--i] == '\n')
            lines++;
    sv_strbuf t = SV_STRBUF_INIT;
    sv_strbuf_append(&t, head);
    /* the firmware's terminal escapes must not reach the user's terminal */
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == '\n' || ch == '\t' || ch >= 0x20) {
            if (ch != 0x7f)
                sv_strbuf_append_c(&t, (char)ch);
        } else if (ch != '\r') {
            sv_strbuf_append_c(&t, '?');
        }
    }
    sv_strbuf_free(&s->boot_log);
    s->boot_log = t;
    return s->boot_log.s ? s->boot_log.s : "";
}

/* Streams the console until the job's exit marker, QEMU's exit, the boot
 * deadline or a cancel; returns 0 with s->exited set, or an error. */
static int supervise(run_state *s, sv_proc *qemu, int con)
{
    const sv_run_opts *opts = s->opts;
    int boot_timeout = opts->boot_timeout_ms > 0 ? opts->boot_timeout_ms : 120000;
    int64_t boot_deadline = sv_deadline_ms(boot_timeout);
    int64_t exit_deadline = SV_NO_DEADLINE;
    sv_error *ignored = NULL;
    char buf[65536];
    for (;;) {
        bool running_job = !strcmp(s->stage, "command");
        if (s->exited && exit_deadline == SV_NO_DEADLINE)
            exit_deadline = sv_deadline_ms(5000); /* init powers off right after the marker */
        int64_t deadline = s->exited ? exit_deadline : running_job ? SV_NO_DEADLINE : boot_deadline;
        struct pollfd p[3] = {{con, POLLIN, 0}, {sv_proc_pidfd(qemu), POLLIN, 0},
                              {opts->cancel_fd, POLLIN, 0}};
        int n = poll(p, opts->cancel_fd >= 0 ? 3 : 2, sv_remaining_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sv_error_errno(&s->err, errno, "poll");
        if (n == 0) {
            if (s->exited)
                return 0; /* the status is known; a slow QEMU is killed by the caller */
            return sv_error_set(&s->err, ETIMEDOUT,
                                "the guest did not start the command within %d s (last stage "
                                "reached: %s)%s%s%s",
                                boot_timeout / 1000, s->stage, *sv_proc_stderr(qemu) ? "; qemu: " : "",
                                sv_proc_stderr(qemu), boot_log_tail(s));
        }
        if (opts->cancel_fd >= 0 && p[2].revents)
            return sv_error_set(&s->err, ECANCELED, "interrupted; the VM was stopped");
        if (con >= 0 && (p[0].revents & (POLLIN | POLLHUP))) {
            ssize_t got = read(con, buf, sizeof(buf));
            if (got < 0 && errno == EINTR)
                continue;
            if (got > 0) {
                console_bytes(s, buf, (size_t)got);
                continue;
            }
            con = -1; /* end of the console stream: QEMU is going away */
        }
        if (p[1].revents || con < 0) {
            int st = 0;
            if (sv_proc_wait(qemu, sv_deadline_ms(2000), &st, &ignored) < 0) {
                sv_error_free(ignored);
                return sv_error_set(&s->err, ETIMEDOUT, "qemu closed the console but did not exit");
            }
            release(s);
            if (s->exited)
                return 0;
            if (s->failure)
                return sv_error_set(&s->err, EIO, "the guest's init failed: %s", s->failure);
            _cleanup_free_ char *how = sv_wait_status_string(st);
            return sv_error_set(&s->err, ECHILD,
                                "qemu %s before the command finished (last stage reached: %s)%s%s%s",
                                how ? how : "exited", s->stage, *sv_proc_stderr(qemu) ? ": " : "",
                                sv_proc_stderr(qemu), boot_log_tail(s));
        }
    }
}

static int run_with_host(run_state *s, const sv_vm_config *vm, const sv_host_facts *host)
{
    const sv_run_opts *opts = s->opts;
    _cleanup_private_dir_ char *dir = NULL;
    int r = sv_private_dir_new(&dir, &s->err);
    if (r < 0)
        return r;
    _cleanup_free_ char *initrd = NULL;
    if (vm->initrd &&
        (r = make_job_initrd(dir, vm->initrd, opts->argv, s->nonce, &initrd, &s->err)) < 0)
        return r;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return sv_error_errno(&s->err, errno, "creating the console socket");
    _cleanup_close_ int con = sp[0];
    _cleanup_close_ int con_child = sp[1];

    /* A job's VM is never hot-plugged: the arch may pick a machine without
     * PCI (x86_64 microvm), which under TCG needs the host's TSC rate. */
    sv_vm_launch launch = {.console_fd = con_child, .qmp_fd = -1, .initrd_override = initrd,
                           .no_hotplug = true};
    if (sv_qemu_arch_guest(vm, host) == SV_VM_ARCH_X86_64 && !vm->machine_type &&
        strcmp(sv_qemu_arch_accel(vm, host), "tcg") == 0)
        launch.tsc_khz = sv_host_tsc_khz();
    _cleanup_(sv_qemu_config_freep) sv_qemu_config *qcfg = NULL;
    if ((r = sv_qemu_arch_build(vm, host, &launch, &qcfg, &s->err)) < 0)
        return r;
    _cleanup_argv_ sv_argv *a = NULL;
    if ((r = sv_qemu_build_argv(qcfg, &a, &s->err)) < 0)
        return r;
    if (opts->log) {
        _cleanup_free_ char *text = sv_argv_to_text(a);
        if (text)
            say(opts, "QEMU command line:\n%s", text);
    }
    sv_spawn_opts so = {.program = sv_qemu_config_binary(qcfg), .fds = a->fds, .nfds = a->nfds};
    _cleanup_proc_ sv_proc *qemu = NULL;
    if ((r = sv_proc_spawn(a->v, &so, &qemu, &s->err)) < 0)
        return sv_error_prefix(&s->err, "starting %s", sv_qemu_config_binary(qcfg));
    sv_closep(&con_child); /* QEMU has its copy: its exit then ends the stream */
    con_child = -1;
    r = supervise(s, qemu, con);
    sv_proc_kill(qemu);
    return r;
}

int sv_vm_run(const sv_vm_config *vm, const sv_run_opts *opts, int *exit_status, sv_error **err)
{
    run_state s = {.opts = opts, .stage = "qemu"};
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return sv_error_errno(err, errno, "getrandom");
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(s.nonce + 2 * i, 3, "%02x", rnd[i]);

    sv_host_facts host = {0};
    int r = sv_host_facts_probe(&host, NULL, err);
    if (r < 0)
        return r;
    say(opts, "accelerator: %s%s", sv_qemu_arch_accel(vm, &host),
        host.kvm_is_pvm ? " (this host's KVM is PVM, which cannot boot ordinary guest kernels)" : "");
    r = run_with_host(&s, vm, &host);
    sv_host_facts_free(&host);
    sv_strbuf_free(&s.line);
    sv_strbuf_free(&s.boot_log);
    free(s.failure);
    if (r < 0) {
        if (err && !*err)
            *err = TAKE_PTR(s.err);
        sv_error_free(s.err);
        return r;
    }
    if (exit_status)
        *exit_status = s.status;
    return 0;
}
