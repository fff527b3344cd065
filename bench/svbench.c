/*
 * svbench: the measuring helper of bench/run. Plain C with no sandvm code in
 * it, so that its QMP client is "the plain C client" the issue compares
 * sandvm's against. Every figure is CLOCK_MONOTONIC nanoseconds printed on
 * stdout as one line of "key=value" words; errors go to stderr, exit 1.
 *
 *   svbench time -- CMD [ARG...]
 *       Runs CMD (stdin /dev/null, stdout and stderr to our stderr), waits for it.
 *       Prints: ns=<fork..exit> status=<exit status or 128+signal>
 *   svbench qemu-start SOCK -- QEMU [ARG...]
 *       Binds a QMP listening socket at SOCK and starts QEMU detached (own
 *       session) with that socket as fd 3 (-chardev socket,fd=3 + -mon), then
 *       connects, reads the greeting, negotiates and waits for the first
 *       query-status reply. QEMU keeps running. Prints: ns=<fork..reply> pid=<pid>
 *   svbench qmp-rtt SOCK N
 *       One connection; N query-status calls. Prints: ns=<t1> <t2> ... (per call)
 *   svbench qmp-lines SOCK N LINE...
 *       One connection; N rounds, each sending every LINE (a command, sent
 *       as given plus a newline) once and waiting for its reply. Prints one
 *       line per LINE: ns=<t1> <t2> ... (what the command line's length
 *       costs: QEMU 7.2 reads QMP one byte per main-loop iteration)
 *   svbench qmp-quit SOCK PID
 *       Connects, sends quit, waits until process PID is gone (pidfd).
 *       Prints: ns=<connect..gone>
 *   svbench wait-gone PID TIMEOUT_MS
 *       Waits until PID is gone. Prints: ns=<wait>; exit 1 on timeout.
 *   svbench cmd SOCK JSON...
 *       Sends each JSON command on one connection, prints each reply line.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QMP_TIMEOUT_MS 30000

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("svbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int pidfd_open_(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static struct sockaddr_un unix_addr(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path))
        die("socket path too long: %s", path);
    strcpy(a.sun_path, path);
    return a;
}

static int unix_connect(const char *path)
{
    struct sockaddr_un a = unix_addr(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connecting to %s: %s", path, strerror(errno));
    return fd;
}

/* A line reader over a socket, each read bounded by QMP_TIMEOUT_MS. */
typedef struct {
    int fd;
    char buf[1 << 16];
    size_t len;
} conn;

/* Returns the next line (NUL-terminated, without '\n'), valid until the next call. */
static char *read_line(conn *c)
{
    static char line[1 << 16];
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            memcpy(line, c->buf, n);
            line[n] = '\0';
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return line;
        }
        if (c->len == sizeof(c->buf))
            die("QMP line too long");
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, QMP_TIMEOUT_MS);
        if (r == 0)
            die("timed out waiting for QMP");
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %s", strerror(errno));
        }
        ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (got == 0)
            return NULL;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            die("reading QMP: %s", strerror(errno));
        }
        c->len += (size_t)got;
    }
}

static void send_str(conn *c, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t w = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("writing QMP: %s", strerror(errno));
        }
        off += (size_t)w;
    }
}

/* The reply to the command just sent, skipping events; an error reply is fatal. */
static char *read_reply(conn *c, const char *what)
{
    for (;;) {
        char *l = read_line(c);
        if (!l)
            die("%s: QMP connection closed", what);
        if (strstr(l, "\"event\":"))
            continue;
        if (strstr(l, "\"return\""))
            return l;
        die("%s: %s", what, l);
    }
}

static void handshake(conn *c)
{
    char *g = read_line(c);
    if (!g || !strstr(g, "\"QMP\""))
        die("no QMP greeting");
    send_str(c, "{\"execute\":\"qmp_capabilities\"}\n");
    read_reply(c, "qmp_capabilities");
}

static void wait_gone(pid_t pid, int timeout_ms)
{
    int pfd = pidfd_open_(pid);
    if (pfd < 0) {
        if (errno == ESRCH)
            return;
        die("pidfd_open %d: %s", (int)pid, strerror(errno));
    }
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r > 0)
            break;
        if (r == 0)
            die("process %d still there after %d ms", (int)pid, timeout_ms);
        if (errno != EINTR)
            die("poll: %s", strerror(errno));
    }
    close(pfd);
}

static int cmd_time(char **argv)
{
    int64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        /* stdout goes to stderr: a daemon the command leaves behind must not hold
         * the pipe our caller reads our one line from */
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(2, 1);
        execvp(argv[0], argv);
        fprintf(stderr, "svbench: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    int64_t t1 = now_ns();
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("ns=%lld status=%d\n", (long long)(t1 - t0), code);
    return 0;
}

static int cmd_qemu_start(const char *sock, char **qargv, int qargc)
{
    struct sockaddr_un a = unix_addr(sock);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0); /* inherited by QEMU: no CLOEXEC */
    if (lfd < 0)
        die("socket: %s", strerror(errno));
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("binding %s: %s", sock, strerror(errno));
    if (listen(lfd, 16) < 0)
        die("listen: %s", strerror(errno));

    char **args = calloc((size_t)qargc + 5, sizeof(*args));
    if (!args)
        die("out of memory");
    for (int i = 0; i < qargc; i++)
        args[i] = qargv[i];
    args[qargc] = "-chardev";
    args[qargc + 1] = "socket,id=svbench-qmp,fd=3,server=on,wait=off";
    args[qargc + 2] = "-mon";
    args[qargc + 3] = "chardev=svbench-qmp,mode=control";

    int64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        setsid();
        if (lfd != 3) {
            if (dup2(lfd, 3) < 0)
                _exit(127);
            close(lfd);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0 && null != 0) {
            dup2(null, 0);
            close(null);
        }
        dup2(2, 1); /* QEMU outlives us: keep it off our stdout */
        execvp(args[0], args);
        fprintf(stderr, "svbench: exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    close(lfd);
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        die("out of memory");
    c->fd = unix_connect(sock);
    handshake(c);
    send_str(c, "{\"execute\":\"query-status\"}\n");
    read_reply(c, "query-status");
    int64_t t1 = now_ns();
    close(c->fd);
    free(c);
    free(args);
    printf("ns=%lld pid=%d\n", (long long)(t1 - t0), (int)pid);
    return 0;
}

static int cmd_qmp_rtt(const char *sock, long n)
{
    conn *c = calloc(1, sizeof(*c));
    int64_t *t = calloc((size_t)n, sizeof(*t));
    if (!c || !t)
        die("out of memory");
    c->fd = unix_connect(sock);
    handshake(c);
    for (long i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        send_str(c, "{\"execute\":\"query-status\"}\n");
        read_reply(c, "query-status");
        t[i] = now_ns() - t0;
    }
    close(c->fd);
    fputs("ns=", stdout);
    for (long i = 0; i < n; i++)
        printf(i ? " %lld" : "%lld", (long long)t[i]);
    putchar('\n');
    free(t);
    free(c);
    return 0;
}

static int cmd_qmp_lines(const char *sock, long n, char **lines, int nl)
{
    conn *c = calloc(1, sizeof(*c));
    int64_t *t = calloc((size_t)n * (size_t)nl, sizeof(*t));
    if (!c || !t)
        die("out of memory");
    char **withnl = calloc((size_t)nl, sizeof(*withnl));
    if (!withnl)
        die("out of memory");
    for (int k = 0; k < nl; k++)
        if (asprintf(&withnl[k], "%s\n", lines[k]) < 0)
            die("out of memory");
    c->fd = unix_connect(sock);
    handshake(c);
    for (long i = 0; i < n; i++)
        for (int k = 0; k < nl; k++) {
            int64_t t0 = now_ns();
            send_str(c, withnl[k]);
            read_reply(c, lines[k]);
            t[(size_t)k * (size_t)n + (size_t)i] = now_ns() - t0;
        }
    close(c->fd);
    for (int k = 0; k < nl; k++) {
        fputs("ns=", stdout);
        for (long i = 0; i < n; i++)
            printf(i ? " %lld" : "%lld", (long long)t[(size_t)k * (size_t)n + (size_t)i]);
        putchar('\n');
        free(withnl[k]);
    }
    free(withnl);
    free(t);
    free(c);
    return 0;
}

static int cmd_qmp_quit(const char *sock, pid_t pid)
{
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        die("out of memory");
    int64_t t0 = now_ns();
    c->fd = unix_connect(sock);
    handshake(c);
    send_str(c, "{\"execute\":\"quit\"}\n");
    /* The reply (or EOF) may or may not come before the exit. */
    wait_gone(pid, QMP_TIMEOUT_MS);
    int64_t t1 = now_ns();
    close(c->fd);
    free(c);
    printf("ns=%lld\n", (long long)(t1 - t0));
    return 0;
}

static int cmd_cmd(const char *sock, char **cmds, int n)
{
    conn *c = calloc(1, sizeof(*c));
    if (!c)
        die("out of memory");
    c->fd = unix_connect(sock);
    handshake(c);
    for (int i = 0; i < n; i++) {
        send_str(c, cmds[i]);
        send_str(c, "\n");
        puts(read_reply(c, cmds[i]));
    }
    close(c->fd);
    free(c);
    return 0;
}

static long parse_long(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 0)
        die("bad %s: %s", what, s);
    return v;
}

static void usage(void)
{
    fputs("usage: svbench time -- CMD... | qemu-start SOCK -- QEMU ARGS... | qmp-rtt SOCK N |\n"
          "       qmp-lines SOCK N LINE... | qmp-quit SOCK PID | wait-gone PID TIMEOUT_MS | cmd SOCK JSON...\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        usage();
    const char *m = argv[1];
    if (!strcmp(m, "time") && argc >= 4 && !strcmp(argv[2], "--"))
        return cmd_time(argv + 3);
    if (!strcmp(m, "qemu-start") && argc >= 5 && !strcmp(argv[3], "--"))
        return cmd_qemu_start(argv[2], argv + 4, argc - 4);
    if (!strcmp(m, "qmp-rtt") && argc == 4)
        return cmd_qmp_rtt(argv[2], parse_long(argv[3], "count"));
    if (!strcmp(m, "qmp-lines") && argc >= 5)
        return cmd_qmp_lines(argv[2], parse_long(argv[3], "count"), argv + 4, argc - 4);
    if (!strcmp(m, "qmp-quit") && argc == 4)
        return cmd_qmp_quit(argv[2], (pid_t)parse_long(argv[3], "pid"));
    if (!strcmp(m, "wait-gone") && argc == 4) {
        int64_t t0 = now_ns();
        wait_gone((pid_t)parse_long(argv[2], "pid"), (int)parse_long(argv[3], "timeout"));
        printf("ns=%lld\n", (long long)(now_ns() - t0));
        return 0;
    }
    if (!strcmp(m, "cmd") && argc >= 4)
        return cmd_cmd(argv[2], argv + 3, argc - 3);
    usage();
}
