/*
 * sandvm-agent: the exec channel's guest side (guest/README.md, "The exec
 * channel"). In the default guest it is PID 1: guest/init execs it when the
 * VM has a virtio-serial port named agent.channel.0. It then
 *   - serves that port: one command per connection, run with its stdin,
 *     stdout and stderr on pipes, relayed as frames (protocol in the README);
 *   - reaps every process (orphans are re-parented to PID 1);
 *   - keeps a shell on /dev/console (respawned when it exits);
 *   - powers the VM off on SIGUSR1/SIGUSR2/SIGTERM/SIGINT (busybox poweroff,
 *     the kernel's orderly_poweroff, ctrl-alt-del) and on a KEY_POWER press
 *     on /dev/input/event* (ACPI power button, gpio-keys);
 *   - brings hot-plugged vCPUs and memory blocks online (the kernel's
 *     uevents; there is no udev), memory as ZONE_MOVABLE so that it can be
 *     unplugged again.
 *
 *   sandvm-agent --port /dev/vportNpM   serve a virtio-serial port
 *   sandvm-agent --fd N                 serve the connected socket N; exit at
 *                                       its end (tests)
 *
 * Only PID 1 starts the console shell, watches input devices and powers off;
 * otherwise the power-off signals just end the agent.
 *
 * One poll loop, no threads, no timers on the data path: every fd is
 * non-blocking, signals arrive through a signalfd (SIGCHLD for reaping, SIGIO
 * for the port's connection changes). A disconnected virtio port reports
 * POLLHUP (and read() == 0) until the host connects again, so while it is
 * disconnected the port is left out of the poll set and the agent sleeps until
 * the SIGIO that the driver sends when the host (re)connects.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- protocol (guest/README.md; src/agent.c is the host side) ---------------- */

#define PROTO_VERSION 1u
#define HDR_LEN 12
#define FRAME_MAX (1024u * 1024u) /* the largest payload of any frame */
#define DATA_MAX (64u * 1024u)    /* the largest STDIN/STDOUT/STDERR payload */
#define NONCE_LEN 16
#define HELLO_LEN (4 + NONCE_LEN + 4) /* version, nonce, CRC-32 of both */
static const uint8_t MAGIC[4] = {'S', 'V', 'A', 'G'};

enum {
    /* host -> agent */
    T_HELLO = 0x01,     /* u32 version, nonce[16], u32 crc32(version, nonce) */
    T_EXEC = 0x02,      /* u32 argc, u32 envc, str cwd, str argv[argc], str env[envc] */
    T_STDIN = 0x03,     /* data for the command's stdin */
    T_STDIN_EOF = 0x04, /* close the command's stdin */
    T_KILL = 0x05,      /* SIGKILL the command's process group */
    /* agent -> host */
    T_HELLO_ACK = 0x81, /* u32 version, the nonce of the HELLO answered, u32 crc32 */
    T_STDOUT = 0x82,
    T_STDERR = 0x83,
    T_EXIT = 0x84,  /* u32 status: 0-255, 128+N when killed by signal N */
    T_ERROR = 0x85, /* u32 errno, u32 stage (E_*), then a message (no NUL) */
};

enum { E_EXEC = 1, E_CWD = 2, E_REQUEST = 3, E_AGENT = 4 };

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* CRC-32 (IEEE) of the HELLO/HELLO_ACK payload's version and nonce: a HELLO is
 * what the agent scans for in unsynchronised bytes, so a torn one followed by
 * another must not pass for one. */
static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c >> 1 ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* Fletcher-16 of the type, flags and length bytes. */
static uint16_t hdr_check(const uint8_t *h)
{
    unsigned a = 0, b = 0;
    for (int i = 4; i < 10; i++) {
        a = (a + h[i]) % 255;
        b = (b + a) % 255;
    }
    return (uint16_t)(b << 8 | a);
}

static void put_hdr(uint8_t *h, uint8_t type, uint32_t len)
{
    memcpy(h, MAGIC, 4);
    h[4] = type;
    h[5] = 0;
    put32(h + 6, len);
    uint16_t c = hdr_check(h);
    h[10] = (uint8_t)(c >> 8);
    h[11] = (uint8_t)c;
}

/* The largest payload a host->agent frame of `type` may carry; unknown types
 * up to FRAME_MAX (skipped whole). */
static uint32_t type_max(uint8_t type)
{
    switch (type) {
    case T_HELLO:
        return HELLO_LEN;
    case T_STDIN:
        return DATA_MAX;
    case T_STDIN_EOF:
    case T_KILL:
        return 0;
    default:
        return FRAME_MAX;
    }
}

/* 1: `h` (HDR_LEN bytes) is a valid header; 0: not. */
static bool hdr_valid(const uint8_t *h)
{
    if (memcmp(h, MAGIC, 4) != 0 || h[5] != 0)
        return false;
    if ((uint16_t)(h[10] << 8 | h[11]) != hdr_check(h))
        return false;
    uint32_t len = get32(h + 6);
    if (len > type_max(h[4]))
        return false;
    return h[4] != T_HELLO || len == HELLO_LEN;
}

/* A complete HELLO frame at `h` (HDR_LEN + HELLO_LEN bytes). */
static bool hello_valid(const uint8_t *h)
{
    return hdr_valid(h) && h[4] == T_HELLO &&
           get32(h + HDR_LEN + 4 + NONCE_LEN) == crc32(h + HDR_LEN, 4 + NONCE_LEN);
}

/* ---- state ----------------------------------------------------------------- */

typedef struct tx {
    uint8_t *buf;
    size_t len, off;
} tx;

enum { IDLE, GREETED, RUNNING };

static struct {
    bool pid1;
    bool socket_mode; /* --fd: a connected socket; its end ends the agent */
    int port;
    bool port_wait; /* disconnected: leave the port out of poll until SIGIO */
    int64_t port_wait_since;
    bool host_gone;     /* the port reported the host end disconnected ... */
    int64_t gone_since; /* ... since then, while a command runs */
    int sigfd;
    int uevent; /* NETLINK_KOBJECT_UEVENT, -1: none */
    int input[8];
    int n_input;

    int state;
    uint8_t *rx; /* HDR_LEN + FRAME_MAX */
    size_t rx_start, rx_end;
    size_t rescue_pos; /* where to go on looking for a HELLO inside an incomplete frame */

    /* the running command */
    pid_t child;     /* 0: none */
    bool child_done; /* reaped */
    int child_status;
    int in_fd, out_fd, err_fd; /* our ends of its pipes, -1 once closed */
    size_t stdin_off;          /* bytes of the STDIN frame at rx_start already written */

    /* frames to the host, in order; each stream has its own buffer */
    tx out, err, ctl;
    tx *txq[3];
    int ntx;

    pid_t shell;
    int64_t shell_started, shell_due; /* due: respawn time, 0: none pending */
} A;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = sizeof(buf) - 2;
    buf[n++] = '\n';
    const char pre[] = "sandvm-agent: ";
    if (write(2, pre, sizeof(pre) - 1) < 0 || write(2, buf, (size_t)n) < 0)
        return;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- power off -------------------------------------------------------------- */

static _Noreturn void power_off(const char *why)
{
    if (!A.pid1) {
        if (A.child > 0 && !A.child_done)
            kill(-A.child, SIGKILL);
        exit(0);
    }
    say("powering off (%s)", why);
    kill(-1, SIGKILL);
    sync();
    reboot(RB_POWER_OFF);
    /* QEMU runs the default guest with -no-reboot: a restart ends it too */
    reboot(RB_AUTOBOOT);
    for (;;)
        pause();
}

/* ---- frames to the host ------------------------------------------------------ */

static bool tx_busy(const tx *t)
{
    for (int i = 0; i < A.ntx; i++)
        if (A.txq[i] == t)
            return true;
    return false;
}

static void tx_push(tx *t)
{
    t->off = 0;
    A.txq[A.ntx++] = t;
}

static void tx_drop_all(void)
{
    A.ntx = 0;
}

#define CTL_MAX 1024

/* A control frame (HELLO_ACK, EXIT, ERROR) into the ctl buffer, after the
 * ones still queued there. */
static void send_ctl(uint8_t type, const uint8_t *payload, uint32_t len)
{
    bool queued = tx_busy(&A.ctl);
    if (!queued)
        A.ctl.len = A.ctl.off = 0;
    if (A.ctl.len + HDR_LEN + len > CTL_MAX)
        return; /* cannot happen: at most an ACK, an ERROR and an EXIT */
    put_hdr(A.ctl.buf + A.ctl.len, type, len);
    memcpy(A.ctl.buf + A.ctl.len + HDR_LEN, payload, len);
    A.ctl.len += HDR_LEN + len;
    if (!queued)
        A.txq[A.ntx++] = &A.ctl;
}

static void send_error(int errnum, uint32_t stage, const char *msg)
{
    uint8_t p[8 + 200];
    size_t n = strlen(msg);
    if (n > sizeof(p) - 8)
        n = sizeof(p) - 8;
    put32(p, (uint32_t)errnum);
    put32(p + 4, stage);
    memcpy(p + 8, msg, n);
    send_ctl(T_ERROR, p, (uint32_t)(8 + n));
}

/* ---- the command -------------------------------------------------------------- */

/* Kills the command's process group and forgets it: its late exit is reaped
 * and ignored, its output dropped. */
static void abort_exec(void)
{
    if (A.child > 0 && !A.child_done)
        kill(-A.child, SIGKILL);
    A.child = 0;
    A.child_done = false;
    close_fd(&A.in_fd);
    close_fd(&A.out_fd);
    close_fd(&A.err_fd);
    tx_drop_all();
    A.state = IDLE;
}

/* Parses an EXEC payload into one allocation: the argv and envp arrays, then
 * the strings. envp = the defaults (PATH HOME TERM) not overridden by name,
 * then the requested entries. NULL on a malformed request (errno EINVAL). */
typedef struct request {
    char **argv, **envp;
    char *cwd;
} request;

static bool env_named(char *const *env, uint32_t n, const char *entry)
{
    size_t nl = strcspn(entry, "=");
    for (uint32_t i = 0; i < n; i++)
        if (!strncmp(env[i], entry, nl) && env[i][nl] == '=')
            return true;
    return false;
}

static void *parse_exec(const uint8_t *p, uint32_t len, request *rq)
{
    static const char *const defaults[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                                           "TERM=linux"};
    const size_t nd = sizeof(defaults) / sizeof(defaults[0]);
    if (len < 12)
        return NULL;
    uint32_t argc = get32(p), envc = get32(p + 4);
    /* every string takes at least its 4-byte length */
    if (argc == 0 || argc > len / 4 || envc > len / 4 || (uint64_t)(argc + envc + 1) * 4 + 8 > len)
        return NULL;
    size_t ptrs = ((size_t)argc + 1 + (size_t)envc + nd + 1) * sizeof(char *);
    char *mem = malloc(ptrs + len + argc + envc + 1);
    if (!mem)
        return NULL;
    char **argv = (char **)mem, **envp = argv + argc + 1;
    char *s = mem + ptrs;
    size_t off = 8;
    char *cwd = NULL;
    uint32_t total = 1 + argc + envc;
    for (uint32_t i = 0; i < total; i++) {
        if (len - off < 4)
            goto bad;
        uint32_t n = get32(p + off);
        off += 4;
        if (n > len - off || memchr(p + off, 0, n))
            goto bad;
        memcpy(s, p + off, n);
        s[n] = '\0';
        off += n;
        if (i == 0)
            cwd = s;
        else if (i <= argc)
            argv[i - 1] = s;
        else
            envp[nd + (i - 1 - argc)] = s;
        if (i > argc && !strchr(s, '='))
            goto bad;
        s += n + 1;
    }
    if (off != len)
        goto bad;
    argv[argc] = NULL;
    /* the defaults first, each unless a requested entry sets the same name;
     * then the requested entries (moved down over the unused slots) */
    char **req = envp + nd;
    size_t k = 0;
    for (size_t i = 0; i < nd; i++)
        if (!env_named(req, envc, defaults[i]))
            envp[k++] = (char *)defaults[i];
    memmove(envp + k, req, envc * sizeof(char *));
    envp[k + envc] = NULL;
    rq->argv = argv;
    rq->envp = envp;
    rq->cwd = cwd[0] ? cwd : (char *)"/";
    return mem;
bad:
    free(mem);
    return NULL;
}

static void child_exec(const request *rq, int in_r, int out_w, int err_w, int errpipe)
{
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0) {
        uint32_t e[2] = {(uint32_t)errno, E_AGENT};
        (void)!write(errpipe, e, sizeof(e));
        _exit(127);
    }
    if (chdir(rq->cwd) < 0) {
        uint32_t e[2] = {(uint32_t)errno, E_CWD};
        (void)!write(errpipe, e, sizeof(e));
        _exit(127);
    }
    environ = rq->envp;
    execvp(rq->argv[0], rq->argv);
    uint32_t e[2] = {(uint32_t)errno, E_EXEC};
    (void)!write(errpipe, e, sizeof(e));
    _exit(127);
}

/* Starts the command of an EXEC payload. On failure sends ERROR and goes back
 * to IDLE. */
static void start_exec(const uint8_t *p, uint32_t len)
{
    request rq;
    void *mem = parse_exec(p, len, &rq);
    if (!mem) {
        send_error(EINVAL, E_REQUEST, "malformed exec request");
        A.state = IDLE;
        return;
    }
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, ep[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
        pipe2(ep, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&in[i]);
            close_fd(&out[i]);
            close_fd(&err[i]);
            close_fd(&ep[i]);
        }
        free(mem);
        send_error(e, E_AGENT, "pipe");
        A.state = IDLE;
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        child_exec(&rq, in[0], out[1], err[1], ep[1]);
    int fork_errno = errno;
    free(mem);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    close(ep[1]);
    uint32_t e[2];
    ssize_t n = -1;
    if (pid > 0) {
        /* EOF at the exec (close-on-exec), or the child's errno */
        do
            n = read(ep[0], e, sizeof(e));
        while (n < 0 && errno == EINTR);
    }
    close(ep[0]);
    if (pid < 0 || n == (ssize_t)sizeof(e)) {
        /* the failed child exits at once; the reaper collects it */
        close(in[1]);
        close(out[0]);
        close(err[0]);
        if (pid < 0)
            send_error(fork_errno, E_AGENT, "fork");
        else
            send_error((int)e[0], e[1], "");
        A.state = IDLE;
        return;
    }
    A.child = pid;
    A.child_done = false;
    A.in_fd = in[1];
    A.out_fd = out[0];
    A.err_fd = err[0];
    A.stdin_off = 0;
    set_nonblock(A.in_fd);
    set_nonblock(A.out_fd);
    set_nonblock(A.err_fd);
    A.state = RUNNING;
}

/* The exit status goes last: after the command was reaped and both of its
 * output pipes reached end of file (ssh's rule: a background process that
 * keeps them open keeps the exec going). */
static void maybe_finish(void)
{
    if (A.state != RUNNING || !A.child_done || A.out_fd >= 0 || A.err_fd >= 0 || tx_busy(&A.out) ||
        tx_busy(&A.err) || tx_busy(&A.ctl))
        return;
    uint8_t p[4];
    int st = A.child_status;
    put32(p, (uint32_t)(WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st)));
    close_fd(&A.in_fd);
    A.child = 0;
    A.child_done = false;
    send_ctl(T_EXIT, p, 4);
    A.state = IDLE;
}

/* Reads one chunk of a stream into its frame buffer. */
static void read_stream(int *fd, tx *t, uint8_t type)
{
    ssize_t n = read(*fd, t->buf + HDR_LEN, DATA_MAX);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    put_hdr(t->buf, type, (uint32_t)n);
    t->len = HDR_LEN + (size_t)n;
    tx_push(t);
}

/* ---- frames from the host ------------------------------------------------------ */

static void ack_hello(const uint8_t *payload)
{
    uint8_t p[HELLO_LEN];
    put32(p, PROTO_VERSION);
    memcpy(p + 4, payload + 4, NONCE_LEN);
    put32(p + 4 + NONCE_LEN, crc32(p, 4 + NONCE_LEN));
    send_ctl(T_HELLO_ACK, p, HELLO_LEN);
    A.state = GREETED;
}

static void rx_consume(size_t n)
{
    A.rx_start += n;
    if (A.rx_start == A.rx_end)
        A.rx_start = A.rx_end = 0;
}

/* A new client's HELLO. Whatever ran is abandoned: its client is gone. */
static void on_hello(const uint8_t *frame)
{
    if (A.state == RUNNING)
        abort_exec();
    tx_drop_all();
    ack_hello(frame + HDR_LEN);
    rx_consume(HDR_LEN + HELLO_LEN);
    A.rescue_pos = 0;
}

/* IDLE: looks for a complete, valid HELLO anywhere in the buffered bytes;
 * everything before one is dropped. Returns true when it took one. */
static bool scan_hello(void)
{
    for (;;) {
        uint8_t *p = A.rx + A.rx_start;
        size_t avail = A.rx_end - A.rx_start;
        uint8_t *m = memmem(p, avail, MAGIC, 4);
        if (!m) {
            /* keep a tail that may be the start of the magic */
            size_t keep = avail < 3 ? avail : 3;
            rx_consume(avail - keep);
            return false;
        }
        rx_consume((size_t)(m - p));
        avail = A.rx_end - A.rx_start;
        if (avail < HDR_LEN + HELLO_LEN)
            return false;
        if (hello_valid(m)) {
            on_hello(m);
            return true;
        }
        rx_consume(1);
    }
}

/* GREETED or RUNNING, a frame incomplete: a complete HELLO inside the bytes after its
 * header means its sender died mid-frame and a new client spoke (without the
 * agent seeing the disconnect in between). */
static bool rescue_hello(void)
{
    size_t from = A.rx_start + HDR_LEN;
    if (A.rescue_pos > from)
        from = A.rescue_pos;
    while (from + HDR_LEN + HELLO_LEN <= A.rx_end) {
        uint8_t *m = memmem(A.rx + from, A.rx_end - from, MAGIC, 4);
        if (!m || (size_t)(m - A.rx) + HDR_LEN + HELLO_LEN > A.rx_end) {
            A.rescue_pos = m ? (size_t)(m - A.rx) : A.rx_end - 3;
            return false;
        }
        if (hello_valid(m)) {
            A.rx_start = (size_t)(m - A.rx);
            on_hello(m);
            return true;
        }
        from = (size_t)(m - A.rx) + 1;
    }
    A.rescue_pos = from;
    return false;
}

/* Writes the pending STDIN frame to the command. Returns true once it is all
 * written (or dropped: the command closed its stdin). */
static bool write_stdin(const uint8_t *frame, uint32_t len)
{
    while (A.stdin_off < len) {
        if (A.in_fd < 0)
            break;
        ssize_t n = write(A.in_fd, frame + HDR_LEN + A.stdin_off, len - A.stdin_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return false;
        if (n < 0) { /* EPIPE: nobody reads it any more */
            close_fd(&A.in_fd);
            break;
        }
        A.stdin_off += (size_t)n;
    }
    A.stdin_off = 0;
    return true;
}

/* True while a complete STDIN frame at rx_start waits for the pipe. */
static bool stdin_blocked(void)
{
    if (A.state != RUNNING || A.in_fd < 0 || A.rx_end - A.rx_start < HDR_LEN)
        return false;
    const uint8_t *h = A.rx + A.rx_start;
    return h[4] == T_STDIN && hdr_valid(h) && A.rx_end - A.rx_start >= HDR_LEN + get32(h + 6);
}

/* Handles every complete frame in rx (stops at a STDIN frame the command's
 * pipe cannot take yet). */
static void process_rx(void)
{
    for (;;) {
        if (A.state == IDLE) {
            if (!scan_hello())
                return;
            continue;
        }
        uint8_t *h = A.rx + A.rx_start;
        size_t avail = A.rx_end - A.rx_start;
        if (avail == 0)
            return;
        /* resynchronise: a frame starts with the magic */
        size_t cmp = avail < 4 ? avail : 4;
        if (memcmp(h, MAGIC, cmp) != 0) {
            uint8_t *m = memmem(h + 1, avail - 1, MAGIC, 4);
            rx_consume(m ? (size_t)(m - h) : avail - (avail < 3 ? avail : 3));
            if (!m && avail <= 3)
                return;
            continue;
        }
        if (avail < HDR_LEN)
            return;
        if (!hdr_valid(h)) {
            rx_consume(1);
            continue;
        }
        uint8_t type = h[4];
        uint32_t len = get32(h + 6);
        if (avail < HDR_LEN + (size_t)len) {
            if (rescue_hello())
                continue;
            return;
        }
        A.rescue_pos = 0;
        if (type == T_HELLO) {
            if (hello_valid(h))
                on_hello(h);
            else
                rx_consume(1);
            continue;
        }
        if (A.state == GREETED && type == T_EXEC) {
            rx_consume(HDR_LEN + len);
            /* (parse from the buffer before anything can overwrite it) */
            start_exec(h + HDR_LEN, len);
            continue;
        }
        if (A.state == RUNNING) {
            switch (type) {
            case T_STDIN:
                if (!write_stdin(h, len))
                    return; /* resumed when the pipe is writable */
                break;
            case T_STDIN_EOF:
                close_fd(&A.in_fd);
                break;
            case T_KILL:
                if (A.child > 0 && !A.child_done)
                    kill(-A.child, SIGKILL);
                break;
            default:
                break;
            }
        }
        rx_consume(HDR_LEN + len);
    }
}

/* The end of the socket (--fd): whatever ran is killed, the agent ends. */
static void socket_closed(void)
{
    abort_exec();
    A.rx_start = A.rx_end = 0;
    close_fd(&A.port);
}

/*
 * The virtio port reported its host end disconnected (POLLHUP, read() == 0).
 * That alone does not say that the running command's client is gone: the
 * driver applies the host's connection changes (control messages) from a
 * workqueue, while data is delivered at once, so a new client's HELLO and
 * EXEC can arrive before the disconnect of the client before it is applied
 * (and its connect after it). So:
 *   - a HELLO always means a new client, the old one gone (QEMU's chardev
 *     serves one client at a time): the command is killed at once;
 *   - a port that stays disconnected for DISCONNECT_GRACE_MS while a command
 *     runs means its client is gone: the command is killed then, and an ERROR
 *     is queued in case that client was in fact still there (it would
 *     otherwise wait forever for an exit status);
 *   - nothing received is dropped: the scanning for HELLO copes with what a
 *     dead client left behind.
 */
#define DISCONNECT_GRACE_MS 2000

static void host_gone(void)
{
    if (!A.host_gone) {
        A.host_gone = true;
        A.gone_since = now_ms();
    }
}

static void host_here(void)
{
    A.host_gone = false;
}

static void port_eof(void)
{
    if (A.socket_mode) {
        socket_closed();
        return;
    }
    host_gone();
    /* nothing more to read until the host connects: wait for its SIGIO */
    A.port_wait = true;
    A.port_wait_since = now_ms();
}

static void check_grace(int64_t now)
{
    if (A.state == RUNNING && A.host_gone && now - A.gone_since >= DISCONNECT_GRACE_MS) {
        abort_exec();
        send_error(ECONNABORTED, E_AGENT, "the exec channel was disconnected");
    }
}

static void read_port(void)
{
    for (;;) {
        if (A.rx_start > 0 && A.rx_end == HDR_LEN + FRAME_MAX) {
            memmove(A.rx, A.rx + A.rx_start, A.rx_end - A.rx_start);
            A.rx_end -= A.rx_start;
            if (A.rescue_pos)
                A.rescue_pos = A.rescue_pos > A.rx_start ? A.rescue_pos - A.rx_start : 0;
            A.rx_start = 0;
        }
        size_t room = HDR_LEN + FRAME_MAX - A.rx_end;
        if (room == 0)
            return; /* a full frame waits for the command's stdin */
        ssize_t n = read(A.port, A.rx + A.rx_end, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            /* (a disconnected port reads 0, never EAGAIN) */
            host_here();
            return;
        }
        if (n == 0) {
            port_eof();
            return;
        }
        if (n < 0) {
            if (errno != ECONNRESET)
                say("reading the exec channel: %s", strerror(errno));
            if (A.socket_mode)
                socket_closed();
            else
                port_eof();
            return;
        }
        A.rx_end += (size_t)n;
        process_rx();
        /* a STDIN frame waiting for the pipe: read no further */
        if (stdin_blocked() || A.port < 0 || A.port_wait)
            return;
    }
}

static void flush_tx(void)
{
    while (A.ntx > 0 && A.port >= 0 && !A.port_wait) {
        tx *t = A.txq[0];
        ssize_t n = write(A.port, t->buf + t->off, t->len - t->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            if (A.socket_mode)
                socket_closed();
            else
                port_eof();
            return;
        }
        t->off += (size_t)n;
        if (t->off == t->len) {
            memmove(A.txq, A.txq + 1, (size_t)(A.ntx - 1) * sizeof(A.txq[0]));
            A.ntx--;
        }
    }
}

/* ---- processes ------------------------------------------------------------------ */

static void spawn_shell(void)
{
    A.shell_due = 0;
    A.shell_started = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        A.shell_due = A.shell_started + 1000;
        return;
    }
    if (pid > 0) {
        A.shell = pid;
        return;
    }
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int fd = open("/dev/console", O_RDWR);
    if (fd < 0)
        _exit(127);
    ioctl(fd, TIOCSCTTY, 0);
    /* init turned "\n" -> "\r\n" off for jobs; a terminal wants it */
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        t.c_oflag |= OPOST | ONLCR;
        tcsetattr(fd, TCSANOW, &t);
    }
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
    if (chdir("/root") < 0 && chdir("/") < 0)
        _exit(127);
    char *const argv[] = {"sh", NULL};
    char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux", NULL};
    execve("/bin/sh", argv, envp);
    _exit(127);
}

static void reap(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid == A.child && A.child > 0) {
            A.child_done = true;
            A.child_status = st;
        } else if (pid == A.shell && A.shell > 0) {
            A.shell = 0;
            /* a shell that dies at once is not restarted in a tight loop */
            int64_t t = now_ms();
            A.shell_due = t - A.shell_started < 1000 ? A.shell_started + 1000 : t;
        }
    }
}

static void on_signals(void)
{
    struct signalfd_siginfo si;
    bool chld = false;
    while (read(A.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            chld = true;
            break;
        case SIGIO:
            /* the port's host end connected, or data arrived: look again */
            A.port_wait = false;
            break;
        case SIGUSR1:
        case SIGUSR2:
        case SIGTERM:
        case SIGINT:
            power_off(strsignal((int)si.ssi_signo));
        default:
            break;
        }
    }
    if (chld)
        reap();
}

static void on_input(int fd)
{
    struct input_event ev[16];
    ssize_t n;
    while ((n = read(fd, ev, sizeof(ev))) > 0) {
        for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++)
            if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1)
                power_off("power button");
    }
}

/* ---- hot-plugged vCPUs and memory ------------------------------------------------ */

/*
 * A vCPU or memory block the host hot-plugs (sandvm resize) arrives offline
 * on x86_64 (ACPI) and s390x; ppc64le pseries brings its own online in the
 * kernel. Without udev, the agent does what udev's rules would: on the
 * kernel's "add" uevent of /devices/system/cpu/cpuN it writes 1 to its
 * `online`, of /devices/system/memory/memoryN "online_movable" (else
 * "online") to its `state`. ZONE_MOVABLE holds no kernel allocations, so the
 * block can be offlined again when the host unplugs it.
 */

#define CPU_DIR "/sys/devices/system/cpu"
#define MEMORY_DIR "/sys/devices/system/memory"

/* Whether `name` is `prefix` followed by digits only (a sysfs entry name:
 * nothing of it can leave the directory). */
static bool numbered(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix), n;
    if (strncmp(name, prefix, pl) != 0)
        return false;
    n = strspn(name + pl, "0123456789");
    return n > 0 && n < 12 && name[pl + n] == '\0';
}

/* The first line of the sysfs file `path` into buf; false when unreadable. */
static bool read_attr(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return true;
}

static int write_attr(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, value, strlen(value));
    int e = n < 0 ? -errno : 0;
    close(fd);
    return e;
}

static void online_cpu(const char *name)
{
    char path[128], v[16];
    if (!numbered(name, "cpu"))
        return;
    snprintf(path, sizeof(path), CPU_DIR "/%s/online", name);
    /* (cpu0 often has no `online`: it cannot go offline) */
    if (!read_attr(path, v, sizeof(v)) || strcmp(v, "0") != 0)
        return;
    int e = write_attr(path, "1");
    if (e < 0)
        say("%s: cannot bring it online: %s", name, strerror(-e));
}

static void online_memory(const char *name)
{
    char path[128], v[32];
    if (!numbered(name, "memory"))
        return;
    snprintf(path, sizeof(path), MEMORY_DIR "/%s/state", name);
    if (!read_attr(path, v, sizeof(v)) || strcmp(v, "offline") != 0)
        return;
    int e = write_attr(path, "online_movable");
    if (e < 0)
        e = write_attr(path, "online");
    if (e < 0)
        say("%s: cannot bring it online: %s", name, strerror(-e));
}

/* Everything that is offline now (at start, and after lost uevents). */
static void online_all(void)
{
    static const struct {
        const char *dir, *prefix;
        void (*online)(const char *name);
    } kinds[] = {{CPU_DIR, "cpu", online_cpu}, {MEMORY_DIR, "memory", online_memory}};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        DIR *d = opendir(kinds[k].dir);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d)))
            if (numbered(e->d_name, kinds[k].prefix))
                kinds[k].online(e->d_name);
        closedir(d);
    }
}

static void open_uevents(void)
{
    A.uevent = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      NETLINK_KOBJECT_UEVENT);
    if (A.uevent < 0)
        return;
    /* a burst of a big DIMM's blocks must not overflow it */
    int size = 1 << 20;
    if (setsockopt(A.uevent, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(A.uevent, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1}; /* the kernel's group */
    if (bind(A.uevent, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        say("uevents: %s", strerror(errno));
        close_fd(&A.uevent);
    }
}

/* One uevent, "ACTION@DEVPATH\0KEY=value\0...": acts on the "add" of a
 * vCPU or a memory block. */
static void on_uevent_msg(const char *msg, size_t len)
{
    const char *action = NULL, *devpath = NULL, *subsystem = NULL;
    for (size_t off = strnlen(msg, len) + 1; off < len;) {
        const char *kv = msg + off;
        size_t n = strnlen(kv, len - off);
        if (off + n >= len)
            break; /* not NUL-terminated: ignore the rest */
        if (!strncmp(kv, "ACTION=", 7))
            action = kv + 7;
        else if (!strncmp(kv, "DEVPATH=", 8))
            devpath = kv + 8;
        else if (!strncmp(kv, "SUBSYSTEM=", 10))
            subsystem = kv + 10;
        off += n + 1;
    }
    if (!action || !devpath || !subsystem || strcmp(action, "add") != 0)
        return;
    if (!strcmp(subsystem, "cpu") && !strncmp(devpath, "/devices/system/cpu/", 20))
        online_cpu(devpath + 20);
    else if (!strcmp(subsystem, "memory") && !strncmp(devpath, "/devices/system/memory/", 23))
        online_memory(devpath + 23);
}

static void on_uevents(void)
{
    static char buf[8192];
    for (;;) {
        struct sockaddr_nl sa;
        struct iovec iov = {buf, sizeof(buf) - 1};
        struct msghdr mh = {.msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov,
                            .msg_iovlen = 1};
        ssize_t n = recvmsg(A.uevent, &mh, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ENOBUFS) {
            online_all(); /* some were lost: look at everything */
            continue;
        }
        if (n <= 0)
            return;
        /* the kernel's own messages only (pid 0), never another process's */
        if (mh.msg_namelen != sizeof(sa) || sa.nl_pid != 0 || (mh.msg_flags & MSG_TRUNC))
            continue;
        buf[n] = '\0';
        on_uevent_msg(buf, (size_t)n);
    }
}

static void open_inputs(void)
{
    DIR *d = opendir("/dev/input");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && A.n_input < (int)(sizeof(A.input) / sizeof(A.input[0]))) {
        if (strncmp(e->d_name, "event", 5) != 0)
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
            A.input[A.n_input++] = fd;
    }
    closedir(d);
}

/* ---- main loop ------------------------------------------------------------------- */

/* While the port is disconnected, how long to wait for SIGIO before looking
 * again anyway (a lost signal must not lose the channel for good). */
#define PORT_RECHECK_MS 5000

static void loop(void)
{
    enum { P_SIG, P_PORT, P_IN, P_OUT, P_ERR, P_UEVENT, P_INPUT };
    struct pollfd pf[P_INPUT + 8];
    for (;;) {
        if (A.socket_mode && A.port < 0)
            return;
        int64_t now = now_ms();
        if (A.pid1 && A.shell == 0 && A.shell_due && now >= A.shell_due)
            spawn_shell();
        if (A.port_wait && now - A.port_wait_since >= PORT_RECHECK_MS)
            A.port_wait = false;
        check_grace(now);
        maybe_finish();
        flush_tx();

        for (size_t i = 0; i < sizeof(pf) / sizeof(pf[0]); i++)
            pf[i] = (struct pollfd){.fd = -1};
        pf[P_SIG] = (struct pollfd){.fd = A.sigfd, .events = POLLIN};
        if (A.port >= 0 && !A.port_wait) {
            short ev = 0;
            if (!stdin_blocked())
                ev |= POLLIN;
            if (A.ntx > 0)
                ev |= POLLOUT;
            pf[P_PORT] = (struct pollfd){.fd = A.port, .events = ev};
        }
        if (A.state == RUNNING) {
            if (stdin_blocked())
                pf[P_IN] = (struct pollfd){.fd = A.in_fd, .events = POLLOUT};
            if (A.out_fd >= 0 && !tx_busy(&A.out))
                pf[P_OUT] = (struct pollfd){.fd = A.out_fd, .events = POLLIN};
            if (A.err_fd >= 0 && !tx_busy(&A.err))
                pf[P_ERR] = (struct pollfd){.fd = A.err_fd, .events = POLLIN};
        }
        for (int i = 0; i < A.n_input; i++)
            pf[P_INPUT + i] = (struct pollfd){.fd = A.input[i], .events = POLLIN};
        if (A.uevent >= 0)
            pf[P_UEVENT] = (struct pollfd){.fd = A.uevent, .events = POLLIN};

        int timeout = -1;
        if (A.port_wait)
            timeout = (int)(A.port_wait_since + PORT_RECHECK_MS - now);
        if (A.pid1 && A.shell == 0 && A.shell_due) {
            int t = (int)(A.shell_due - now);
            if (timeout < 0 || t < timeout)
                timeout = t;
        }
        if (A.state == RUNNING && A.host_gone) {
            int t = (int)(A.gone_since + DISCONNECT_GRACE_MS - now);
            if (timeout < 0 || t < timeout)
                timeout = t;
        }
        if (timeout < -1)
            timeout = 0;
        int r = poll(pf, (nfds_t)(P_INPUT + A.n_input), timeout);
        if (r < 0 && errno != EINTR) {
            say("poll: %s", strerror(errno));
            return;
        }
        if (r <= 0)
            continue;

        if (pf[P_SIG].revents)
            on_signals();
        if (pf[P_UEVENT].fd >= 0 && pf[P_UEVENT].revents)
            on_uevents();
        for (int i = 0; i < A.n_input; i++)
            if (pf[P_INPUT + i].revents)
                on_input(A.input[i]);
        if (pf[P_PORT].fd >= 0 && pf[P_PORT].revents) {
            short rev = pf[P_PORT].revents;
            if (rev & (POLLHUP | POLLERR)) {
                if (A.socket_mode && !(rev & POLLIN)) {
                    socket_closed();
                    continue;
                }
                if (!A.socket_mode)
                    host_gone();
            } else {
                host_here();
            }
            /* a disconnected virtio port still hands out what arrived */
            if (rev & (POLLIN | POLLHUP | POLLERR))
                read_port();
            if (rev & POLLOUT)
                flush_tx();
        }
        /* (the port's frames may have ended this command and started another) */
        if (pf[P_IN].fd >= 0 && pf[P_IN].revents && stdin_blocked()) {
            const uint8_t *h = A.rx + A.rx_start;
            if (write_stdin(h, get32(h + 6))) {
                rx_consume(HDR_LEN + get32(h + 6));
                process_rx();
            }
        }
        if (A.state == RUNNING && pf[P_OUT].fd >= 0 && pf[P_OUT].fd == A.out_fd &&
            pf[P_OUT].revents && !tx_busy(&A.out))
            read_stream(&A.out_fd, &A.out, T_STDOUT);
        if (A.state == RUNNING && pf[P_ERR].fd >= 0 && pf[P_ERR].fd == A.err_fd &&
            pf[P_ERR].revents && !tx_busy(&A.err))
            read_stream(&A.err_fd, &A.err, T_STDERR);
    }
}

static int usage(void)
{
    say("usage: sandvm-agent --port DEVICE | --fd N");
    return 2;
}

int main(int argc, char **argv)
{
    A.port = A.sigfd = A.in_fd = A.out_fd = A.err_fd = A.uevent = -1;
    A.pid1 = getpid() == 1;
    if (argc != 3)
        return usage();
    if (!strcmp(argv[1], "--fd")) {
        char *end;
        long fd = strtol(argv[2], &end, 10);
        if (*end || fd < 0 || fd > 65535)
            return usage();
        A.port = (int)fd;
        A.socket_mode = true;
        if (set_nonblock(A.port) < 0 || fcntl(A.port, F_SETFD, FD_CLOEXEC) < 0) {
            say("fd %ld: %s", fd, strerror(errno));
            return 1;
        }
    } else if (!strcmp(argv[1], "--port")) {
        A.port = open(argv[2], O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (A.port < 0) {
            say("%s: %s", argv[2], strerror(errno));
            if (A.pid1)
                power_off("no exec channel");
            return 1;
        }
        /* SIGIO when the host end connects or disconnects, or data arrives */
        if (fcntl(A.port, F_SETOWN, getpid()) < 0 ||
            fcntl(A.port, F_SETFL, O_RDWR | O_NONBLOCK | O_ASYNC) < 0)
            say("%s: cannot get SIGIO: %s", argv[2], strerror(errno));
    } else {
        return usage();
    }

    sigset_t set;
    sigemptyset(&set);
    const int sigs[] = {SIGCHLD, SIGIO, SIGUSR1, SIGUSR2, SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    A.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (A.sigfd < 0) {
        say("signalfd: %s", strerror(errno));
        if (A.pid1)
            power_off("no signalfd");
        return 1;
    }

    static uint8_t outbuf[HDR_LEN + DATA_MAX], errbuf[HDR_LEN + DATA_MAX], ctlbuf[CTL_MAX];
    A.out.buf = outbuf;
    A.err.buf = errbuf;
    A.ctl.buf = ctlbuf;
    A.rx = malloc(HDR_LEN + FRAME_MAX);
    if (!A.rx) {
        say("out of memory");
        if (A.pid1)
            power_off("out of memory");
        return 1;
    }

    if (A.pid1) {
        /* ctrl-alt-del (s390x signal-quiesce) becomes SIGINT, a clean power-off */
        reboot(RB_DISABLE_CAD);
        open_inputs();
        /* listen first, then look: nothing added in between is missed */
        open_uevents();
        online_all();
        spawn_shell();
    }
    loop();
    abort_exec();
    /* commands killed above are reaped before leaving (tests look for them) */
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    free(A.rx);
    for (int i = 0; i < A.n_input; i++)
        close(A.input[i]);
    close_fd(&A.uevent);
    close(A.sigfd);
    if (A.pid1)
        power_off("agent stopped");
    return 0;
}
