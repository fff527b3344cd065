/*
 * The exec channel: the host client (src/agent.c) against the real guest
 * agent (guest/agent/sandvm-agent.c, built natively and run as
 * `sandvm-agent --fd 3` on one end of a socketpair), plus scripted peers for
 * what the agent will not do on demand (stale frames before the echo, no
 * answer, a dropped connection). The agent path is argv[1].
 *
 * The protocol helpers below are written from guest/README.md, "The exec
 * channel", so the tests also hold both sides to the documented format.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "util/cleanup.h"
#include "util/proc.h"
#include "util/sock.h"

static const char *agent_path;

/* ---- the protocol, from the README ---------------------------------------- */

enum {
    T_HELLO = 0x01,
    T_EXEC = 0x02,
    T_STDIN = 0x03,
    T_STDIN_EOF = 0x04,
    T_HELLO_ACK = 0x81,
    T_STDOUT = 0x82,
    T_STDERR = 0x83,
    T_EXIT = 0x84,
    T_ERROR = 0x85,
};
#define HDR 12

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

static void hdr(uint8_t *h, uint8_t type, uint32_t len)
{
    memcpy(h, "SVAG", 4);
    h[4] = type;
    h[5] = 0;
    put32(h + 6, len);
    unsigned a = 0, b = 0;
    for (int i = 4; i < 10; i++) {
        a = (a + h[i]) % 255;
        b = (b + a) % 255;
    }
    h[10] = (uint8_t)b;
    h[11] = (uint8_t)a;
}

/* CRC-32 (IEEE), as the HELLO carries it */
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

static void write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void send_frame(int fd, uint8_t type, const void *payload, uint32_t len)
{
    uint8_t h[HDR];
    hdr(h, type, len);
    write_all(fd, h, HDR);
    if (len)
        write_all(fd, payload, len);
}

static void send_hello(int fd, const char nonce[16])
{
    uint8_t p[24];
    put32(p, 1);
    memcpy(p + 4, nonce, 16);
    put32(p + 20, crc32(p, 20));
    send_frame(fd, T_HELLO, p, 24);
}

/* EXEC of a NULL-terminated argv, cwd "" (the default), no env. */
static void send_exec(int fd, const char *const *argv)
{
    uint8_t buf[4096];
    size_t off = 8;
    uint32_t argc = 0;
    put32(buf + off, 0);
    off += 4;
    for (; argv[argc]; argc++) {
        size_t n = strlen(argv[argc]);
        put32(buf + off, (uint32_t)n);
        memcpy(buf + off + 4, argv[argc], n);
        off += 4 + n;
    }
    put32(buf, argc);
    put32(buf + 4, 0);
    send_frame(fd, T_EXEC, buf, (uint32_t)off);
}

static void read_exact(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    int64_t deadline = sv_deadline_ms(20000);
    while (len > 0) {
        ssize_t n = sv_sock_recv(fd, p, len, deadline, NULL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads one frame (the stream must be in sync); returns its type. */
static uint8_t read_frame(int fd, uint8_t *payload, size_t cap, uint32_t *len)
{
    uint8_t h[HDR];
    read_exact(fd, h, HDR);
    assert_memory_equal(h, "SVAG", 4);
    *len = get32(h + 6);
    assert_true(*len <= cap);
    read_exact(fd, payload, *len);
    return h[4];
}

/* ---- the agent ------------------------------------------------------------ */

typedef struct agent {
    sv_proc *proc;
    int fd; /* our end */
} agent;

static void agent_start(agent *a)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char *argv[] = {(char *)agent_path, (char *)"--fd", (char *)"3", NULL};
    sv_spawn_opts so = {.fds = &sv[1], .nfds = 1};
    sv_error *e = NULL;
    int r = sv_proc_spawn(argv, &so, &a->proc, &e);
    if (r < 0)
        fail_msg("spawning the agent: %s", sv_error_message(e));
    close(sv[1]);
    a->fd = sv[0];
}

/* Closes our end: the agent (socket mode) must then exit 0 by itself, its
 * stderr empty (ASan/UBSan reports go there). */
static void agent_stop(agent *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    int st = -1;
    sv_error *e = NULL;
    if (sv_proc_wait(a->proc, sv_deadline_ms(20000), &st, &e) < 0)
        fail_msg("the agent did not exit: %s", sv_error_message(e));
    const char *err = sv_proc_stderr(a->proc);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || err[0])
        fail_msg("the agent ended with status %#x, stderr: %s", st, err);
    sv_proc_free(a->proc);
    a->proc = NULL;
}

static int memfd(void)
{
    int fd = memfd_create("out", MFD_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* The bytes written to memfd `fd` (NUL-terminated too; *len without it). */
static char *slurp(int fd, size_t *len)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    buf[st.st_size] = '\0';
    if (len)
        *len = (size_t)st.st_size;
    return buf;
}

typedef struct result {
    int r, status;
    char *out, *err;
    size_t out_len, err_len;
    sv_error *e;
} result;

static void result_clear(result *res)
{
    free(res->out);
    free(res->err);
    sv_error_free(res->e);
    memset(res, 0, sizeof(*res));
}

/* Runs argv through a fresh agent with stdout/stderr captured. `o` (may be
 * NULL) supplies env, cwd, stdin_fd, cancel_fd. */
static void run_on(int fd, const char *const *argv, const sv_exec_opts *o, result *res)
{
    int out = memfd(), err = memfd();
    sv_exec_opts opts = {.stdin_fd = -1, .cancel_fd = -1, .timeout_ms = 20000};
    if (o)
        opts = *o;
    opts.argv = argv;
    opts.stdout_fd = out;
    opts.stderr_fd = err;
    memset(res, 0, sizeof(*res));
    res->status = -1;
    res->r = sv_agent_exec_fd(fd, &opts, &res->status, &res->e);
    res->out = slurp(out, &res->out_len);
    res->err = slurp(err, &res->err_len);
    close(out);
    close(err);
}

static void run(const char *const *argv, const sv_exec_opts *o, result *res)
{
    agent a;
    agent_start(&a);
    run_on(a.fd, argv, o, res);
    agent_stop(&a);
}

static void expect_ok(const result *res, int status)
{
    if (res->r != 0)
        fail_msg("exec failed: %s", sv_error_message(res->e));
    assert_int_equal(res->status, status);
}

static char *tmpdir(void)
{
    char *d = NULL;
    assert_int_equal(sv_private_dir_new(&d, NULL), 0);
    return d;
}

/* Waits (up to 20 s) until no process `pid` exists. */
static bool gone(pid_t pid)
{
    for (int i = 0; i < 2000; i++) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* ---- exit statuses ------------------------------------------------------------ */

static void test_exit_zero(void **state)
{
    result res;
    run((const char *[]){"true", NULL}, NULL, &res);
    expect_ok(&res, 0);
    assert_int_equal(res.out_len + res.err_len, 0);
    result_clear(&res);
}

static void test_exit_statuses(void **state)
{
    result res;
    run((const char *[]){"sh", "-c", "exit 7", NULL}, NULL, &res);
    expect_ok(&res, 7);
    result_clear(&res);
    run((const char *[]){"sh", "-c", "exit 255", NULL}, NULL, &res);
    expect_ok(&res, 255);
    result_clear(&res);
}

static void test_killed_by_signal(void **state)
{
    result res;
    run((const char *[]){"sh", "-c", "kill -9 $$", NULL}, NULL, &res);
    expect_ok(&res, 128 + 9);
    result_clear(&res);
    run((const char *[]){"sh", "-c", "kill -TERM $$", NULL}, NULL, &res);
    expect_ok(&res, 128 + 15);
    result_clear(&res);
}

/* ---- arguments, environment, directory ---------------------------------------- */

static void test_hostile_args(void **state)
{
    const char *args[] = {"a b", "c'd", "e\"f", "g\nh", "",   "é😀",       "$(id)",   "`id`",
                          "\\",  "-n",  "--",   " ",    "\t", "\xff\xfe", ";|&<>*?", NULL};
    const char *argv[32] = {"printf", "%s\\0"};
    size_t n = 2;
    size_t want_len = 0;
    char want[256];
    for (size_t i = 0; args[i]; i++) {
        argv[n++] = args[i];
        size_t l = strlen(args[i]);
        memcpy(want + want_len, args[i], l + 1);
        want_len += l + 1;
    }
    argv[n] = NULL;
    result res;
    run(argv, NULL, &res);
    expect_ok(&res, 0);
    assert_int_equal(res.out_len, want_len);
    assert_memory_equal(res.out, want, want_len);
    result_clear(&res);
}

static void test_big_argument(void **state)
{
    size_t n = 100 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n - 1] = '\n';
    big[n] = '\0';
    result res;
    run((const char *[]){"printf", "%s", big, NULL}, NULL, &res);
    expect_ok(&res, 0);
    assert_int_equal(res.out_len, n);
    assert_memory_equal(res.out, big, n);
    result_clear(&res);
    free(big);
}

static void test_too_big(void **state)
{
    size_t n = 100 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    const char *argv[16] = {"true"};
    for (int i = 1; i < 12; i++)
        argv[i] = big;
    /* refused before anything is sent: no agent needed */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sv_exec_opts o = {
        .argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .cancel_fd = -1};
    int st = -1;
    _cleanup_error_ sv_error *e = NULL;
    assert_int_equal(sv_agent_exec_fd(sv[0], &o, &st, &e), -E2BIG);
    assert_non_null(strstr(sv_error_message(e), "at most"));
    char c;
    assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
    close(sv[0]);
    close(sv[1]);
    free(big);
}

static void test_env(void **state)
{
    const char *env[] = {"FOO=a b\nc", "HOME=/nonexistent-home", "EMPTY=", NULL};
    sv_exec_opts o = {.env = env, .stdin_fd = -1, .cancel_fd = -1, .timeout_ms = 20000};
    result res;
    run((const char *[]){"sh", "-c",
                         "printf '%s|%s|%s|%s|%s' \"$FOO\" \"$HOME\" \"$PATH\" \"$TERM\" "
                         "\"${EMPTY-unset}\"",
                         NULL},
        &o, &res);
    expect_ok(&res, 0);
    assert_string_equal(res.out, "a b\nc|/nonexistent-home|/usr/sbin:/usr/bin:/sbin:/bin|linux|");
    result_clear(&res);
}

static void test_env_entry_rejected(void **state)
{
    const char *env[] = {"NOEQUALS", NULL};
    sv_exec_opts o = {.env = env, .stdin_fd = -1, .cancel_fd = -1, .timeout_ms = 20000};
    result res;
    run((const char *[]){"true", NULL}, &o, &res);
    assert_int_equal(res.r, -EINVAL);
    assert_non_null(strstr(sv_error_message(res.e), "\"NOEQUALS\" is not NAME=value"));
    result_clear(&res);
}

static void test_cwd(void **state)
{
    _cleanup_free_ char *d = tmpdir();
    sv_exec_opts o = {.cwd = d, .stdin_fd = -1, .cancel_fd = -1, .timeout_ms = 20000};
    result res;
    run((const char *[]){"pwd", NULL}, &o, &res);
    expect_ok(&res, 0);
    char want[4200];
    snprintf(want, sizeof(want), "%s\n", d);
    assert_string_equal(res.out, want);
    result_clear(&res);
    run((const char *[]){"pwd", NULL}, NULL, &res);
    expect_ok(&res, 0);
    assert_string_equal(res.out, "/\n");
    result_clear(&res);
    sv_private_dir_remove(d);
}

/* ---- exec failures ------------------------------------------------------------ */

static void test_not_found(void **state)
{
    result res;
    run((const char *[]){"nosuchcmd-sandvm", "x", NULL}, NULL, &res);
    assert_int_equal(res.r, -ENOENT);
    assert_int_equal(sv_error_code(res.e), ENOENT);
    assert_string_equal(sv_error_message(res.e),
                        "command not found in the guest: \"nosuchcmd-sandvm\"");
    result_clear(&res);
    /* a hostile name is quoted, not interpreted */
    run((const char *[]){"no such\n\"cmd\"", NULL}, NULL, &res);
    assert_int_equal(res.r, -ENOENT);
    assert_string_equal(sv_error_message(res.e),
                        "command not found in the guest: \"no such\\n\\\"cmd\\\"\"");
    result_clear(&res);
}

static void test_not_executable(void **state)
{
    _cleanup_free_ char *d = tmpdir();
    char path[4200];
    snprintf(path, sizeof(path), "%s/script", d);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    result res;
    run((const char *[]){path, NULL}, NULL, &res);
    assert_int_equal(res.r, -EACCES);
    assert_non_null(strstr(sv_error_message(res.e), "cannot run \""));
    assert_non_null(strstr(sv_error_message(res.e), "in the guest: Permission denied"));
    result_clear(&res);
    sv_private_dir_remove(d);
}

static void test_bad_cwd(void **state)
{
    sv_exec_opts o = {
        .cwd = "/nonexistent/dir", .stdin_fd = -1, .cancel_fd = -1, .timeout_ms = 20000};
    result res;
    run((const char *[]){"true", NULL}, &o, &res);
    assert_int_equal(res.r, -ENOENT);
    assert_string_equal(sv_error_message(res.e),
                        "cannot change to directory \"/nonexistent/dir\" in the guest: No such "
                        "file or directory");
    result_clear(&res);
}

/* ---- streams ------------------------------------------------------------------- */

static void test_stdout_stderr_separated(void **state)
{
    result res;
    run((const char *[]){"sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2", NULL},
        NULL, &res);
    expect_ok(&res, 0);
    assert_string_equal(res.out, "out1\nout2\n");
    assert_string_equal(res.err, "err1\nerr2\n");
    result_clear(&res);
}

static void test_dropped_stream(void **state)
{
    agent a;
    agent_start(&a);
    int err = memfd();
    sv_exec_opts o = {.argv = (const char *[]){"sh", "-c", "echo out; echo err >&2", NULL},
                      .stdin_fd = -1,
                      .stdout_fd = -1,
                      .stderr_fd = err,
                      .cancel_fd = -1,
                      .timeout_ms = 20000};
    int st = -1;
    _cleanup_error_ sv_error *e = NULL;
    assert_int_equal(sv_agent_exec_fd(a.fd, &o, &st, &e), 0);
    assert_int_equal(st, 0);
    _cleanup_free_ char *got = slurp(err, NULL);
    assert_string_equal(got, "err\n");
    close(err);
    agent_stop(&a);
}

static void test_binary_output(void **state)
{
    result res;
    run((const char *[]){"printf", "\\000\\001\\377a\\000\\n", NULL}, NULL, &res);
    expect_ok(&res, 0);
    assert_int_equal(res.out_len, 6);
    assert_memory_equal(res.out, "\0\1\377a\0\n", 6);
    result_clear(&res);
}

/* A file of `n` pseudo-random bytes (NULs included) in `dir`. */
static char *random_file(const char *dir, size_t n, char **data_out)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/data", dir) > 0);
    char *data = malloc(n);
    assert_non_null(data);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (char)(x >> 16);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
    *data_out = data;
    return path;
}

static void test_megabyte_output(void **state)
{
    _cleanup_free_ char *d = tmpdir();
    _cleanup_free_ char *data = NULL;
    size_t n = 1024 * 1024 + 7;
    _cleanup_free_ char *path = random_file(d, n, &data);
    result res;
    run((const char *[]){"cat", path, NULL}, NULL, &res);
    expect_ok(&res, 0);
    assert_int_equal(res.out_len, n);
    assert_memory_equal(res.out, data, n);
    result_clear(&res);
    sv_private_dir_remove(d);
}

static void test_stdin_relayed(void **state)
{
    _cleanup_free_ char *d = tmpdir();
    _cleanup_free_ char *data = NULL;
    size_t n = 300 * 1024 + 3;
    _cleanup_free_ char *path = random_file(d, n, &data);
    int in = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    sv_exec_opts o = {.stdin_fd = in, .cancel_fd = -1, .timeout_ms = 20000};
    result res;
    run((const char *[]){"cat", NULL}, &o, &res);
    expect_ok(&res, 0);
    assert_int_equal(res.out_len, n);
    assert_memory_equal(res.out, data, n);
    result_clear(&res);
    close(in);
    sv_private_dir_remove(d);
}

static void test_stdin_eof(void **state)
{
    /* no stdin: the command reads end-of-file at once */
    result res;
    run((const char *[]){"wc", "-c", NULL}, NULL, &res);
    expect_ok(&res, 0);
    assert_int_equal(atoi(res.out), 0);
    result_clear(&res);
    /* stdin from a pipe, closed by the writer: EOF relayed */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    close(p[1]);
    sv_exec_opts o = {.stdin_fd = p[0], .cancel_fd = -1, .timeout_ms = 20000};
    run((const char *[]){"wc", "-c", NULL}, &o, &res);
    expect_ok(&res, 0);
    assert_int_equal(atoi(res.out), 3);
    result_clear(&res);
    close(p[0]);
}

static void test_command_ignores_stdin(void **state)
{
    /* stdin keeps coming after the command exited without reading it */
    int in = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    sv_exec_opts o = {.stdin_fd = in, .cancel_fd = -1, .timeout_ms = 20000};
    result res;
    run((const char *[]){"sh", "-c", "exec 0<&-; echo done", NULL}, &o, &res);
    expect_ok(&res, 0);
    assert_string_equal(res.out, "done\n");
    result_clear(&res);
    close(in);
}

static void test_output_of_background_process(void **state)
{
    /* the exit status comes after all output, also a background child's */
    result res;
    run((const char *[]){"sh", "-c", "(sleep 0.3; echo late) & echo early; exit 4", NULL}, NULL,
        &res);
    expect_ok(&res, 4);
    assert_string_equal(res.out, "early\nlate\n");
    result_clear(&res);
}

/* ---- connections ------------------------------------------------------------------ */

static void test_sequential_execs(void **state)
{
    agent a;
    agent_start(&a);
    for (int i = 0; i < 5; i++) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "echo %d; exit %d", i, i);
        result res;
        run_on(a.fd, (const char *[]){"sh", "-c", cmd, NULL}, NULL, &res);
        expect_ok(&res, i);
        char want[16];
        snprintf(want, sizeof(want), "%d\n", i);
        assert_string_equal(res.out, want);
        result_clear(&res);
    }
    agent_stop(&a);
}

static void test_garbage_before_hello(void **state)
{
    agent a;
    agent_start(&a);
    /* noise, a lone magic, a valid header of a frame that never completes (a
     * client that died mid-frame), and half a HELLO */
    uint8_t junk[200];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37);
    write_all(a.fd, junk, sizeof(junk));
    write_all(a.fd, "SVAGSVAG", 8);
    uint8_t h[HDR];
    hdr(h, T_STDIN, 60000);
    write_all(a.fd, h, HDR);
    write_all(a.fd, "partial", 7);
    hdr(h, T_HELLO, 24);
    write_all(a.fd, h, HDR);
    write_all(a.fd, "\0\0\0\1abc", 7);
    result res;
    run_on(a.fd, (const char *[]){"echo", "fine", NULL}, NULL, &res);
    expect_ok(&res, 0);
    assert_string_equal(res.out, "fine\n");
    result_clear(&res);
    agent_stop(&a);
}

/* A scripted agent: answers the HELLO with stale frames, a foreign echo, then
 * the real echo, "fresh" on stdout and exit 5. */
static void test_stale_frames_before_echo(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        uint8_t hello[HDR + 24];
        read_exact(sv[1], hello, sizeof(hello));
        send_frame(sv[1], T_STDOUT, "stale", 5);
        write_all(sv[1], "xxSVAGyy", 8);
        uint8_t ack[24];
        memcpy(ack, hello + HDR, 24);
        ack[10] ^= 1; /* not our nonce */
        put32(ack + 20, crc32(ack, 20));
        send_frame(sv[1], T_HELLO_ACK, ack, 24);
        send_frame(sv[1], T_EXIT, "\0\0\0\3", 4);
        send_frame(sv[1], T_HELLO_ACK, hello + HDR, 24);
        send_frame(sv[1], T_STDOUT, "fresh", 5);
        send_frame(sv[1], T_EXIT, "\0\0\0\5", 4);
        char c;
        while (read(sv[1], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(sv[1]);
    result res;
    run_on(sv[0], (const char *[]){"whatever", NULL}, NULL, &res);
    expect_ok(&res, 5);
    assert_string_equal(res.out, "fresh");
    result_clear(&res);
    close(sv[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

static void test_hello_timeout(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    sv_exec_opts o = {.stdin_fd = -1, .cancel_fd = -1, .timeout_ms = 300};
    result res;
    run_on(sv[0], (const char *[]){"true", NULL}, &o, &res);
    assert_int_equal(res.r, -ETIMEDOUT);
    assert_string_equal(sv_error_message(res.e),
                        "the guest agent did not answer within 0.3 s (is the VM booted from the "
                        "default guest?)");
    result_clear(&res);
    close(sv[0]);
    close(sv[1]);
}

static void test_closed_before_answer(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    close(sv[1]);
    result res;
    run_on(sv[0], (const char *[]){"true", NULL}, NULL, &res);
    assert_int_equal(res.r, -ECONNRESET);
    assert_string_equal(sv_error_message(res.e),
                        "the exec channel closed before the command finished");
    result_clear(&res);
    close(sv[0]);
}

static void test_closed_mid_command(void **state)
{
    /* the peer answers, takes the request, then goes away */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        uint8_t hello[HDR + 24];
        read_exact(sv[1], hello, sizeof(hello));
        send_frame(sv[1], T_HELLO_ACK, hello + HDR, 24);
        send_frame(sv[1], T_STDOUT, "part", 4);
        _exit(0);
    }
    close(sv[1]);
    result res;
    run_on(sv[0], (const char *[]){"sleep", "1000", NULL}, NULL, &res);
    assert_int_equal(res.r, -ECONNRESET);
    assert_string_equal(res.out, "part");
    result_clear(&res);
    close(sv[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

/* The client goes away mid-command: the agent kills the command's process
 * group (the command and its child here). */
static void test_disconnect_kills_command(void **state)
{
    agent a;
    agent_start(&a);
    send_hello(a.fd, "0123456789abcdef");
    uint8_t buf[256];
    uint32_t len;
    assert_int_equal(read_frame(a.fd, buf, sizeof(buf), &len), T_HELLO_ACK);
    send_exec(a.fd, (const char *[]){"sh", "-c", "sleep 1000 & echo $$ $!; wait", NULL});
    assert_int_equal(read_frame(a.fd, buf, sizeof(buf) - 1, &len), T_STDOUT);
    buf[len] = '\0';
    int sh = 0, child = 0;
    assert_int_equal(sscanf((char *)buf, "%d %d", &sh, &child), 2);
    assert_int_equal(kill(sh, 0), 0);
    assert_int_equal(kill(child, 0), 0);
    agent_stop(&a); /* closes the connection; the agent must exit cleanly */
    assert_true(gone(sh));
    assert_true(gone(child));
}

static void test_new_hello_aborts_running_command(void **state)
{
    /* A client died in the middle of a STDIN frame and a new one said HELLO,
     * with no disconnect seen in between: the agent drops the partial frame
     * and the old command, and answers the new client. */
    agent a;
    agent_start(&a);
    send_hello(a.fd, "first-client-000");
    uint8_t buf[256];
    uint32_t len;
    assert_int_equal(read_frame(a.fd, buf, sizeof(buf), &len), T_HELLO_ACK);
    send_exec(a.fd, (const char *[]){"sh", "-c", "echo $$; exec cat", NULL});
    assert_int_equal(read_frame(a.fd, buf, sizeof(buf) - 1, &len), T_STDOUT);
    buf[len] = '\0';
    int pid = atoi((char *)buf);
    assert_true(pid > 0);
    uint8_t h[HDR];
    hdr(h, T_STDIN, 60000);
    write_all(a.fd, h, HDR);
    write_all(a.fd, "cut short", 9);
    send_hello(a.fd, "second-client-00");
    assert_int_equal(read_frame(a.fd, buf, sizeof(buf), &len), T_HELLO_ACK);
    assert_int_equal(len, 24);
    assert_memory_equal(buf + 4, "second-client-00", 16);
    assert_int_equal(get32(buf + 20), crc32(buf, 20));
    assert_true(gone(pid));
    /* and the channel works */
    send_exec(a.fd, (const char *[]){"echo", "again", NULL});
    send_frame(a.fd, T_STDIN_EOF, NULL, 0);
    assert_int_equal(read_frame(a.fd, buf, sizeof(buf), &len), T_STDOUT);
    assert_int_equal(len, 6);
    assert_memory_equal(buf, "again\n", 6);
    assert_int_equal(read_frame(a.fd, buf, sizeof(buf), &len), T_EXIT);
    assert_int_equal(get32(buf), 0);
    agent_stop(&a);
}

typedef struct canceller {
    const char *pidfile;
    int fd;
} canceller;

/* Cancels once the command has written its pid file. */
static void *cancel_thread(void *arg)
{
    canceller *c = arg;
    for (int i = 0; i < 2000; i++) {
        struct stat st;
        if (stat(c->pidfile, &st) == 0 && st.st_size > 0)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (write(c->fd, "x", 1) != 1)
        abort();
    return NULL;
}

static void test_cancel(void **state)
{
    _cleanup_free_ char *d = tmpdir();
    char pidfile[4200], cmd[4 * 4200];
    snprintf(pidfile, sizeof(pidfile), "%s/pid", d);
    snprintf(cmd, sizeof(cmd), "echo $$ > '%s.tmp' && mv '%s.tmp' '%s'; exec sleep 1000", pidfile,
             pidfile, pidfile);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    canceller c = {pidfile, p[1]};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_thread, &c), 0);
    agent a;
    agent_start(&a);
    sv_exec_opts o = {.stdin_fd = -1, .cancel_fd = p[0], .timeout_ms = 20000};
    result res;
    run_on(a.fd, (const char *[]){"sh", "-c", cmd, NULL}, &o, &res);
    pthread_join(t, NULL);
    assert_int_equal(res.r, -ECANCELED);
    assert_int_equal(sv_error_code(res.e), ECANCELED);
    result_clear(&res);
    /* the KILL frame ends the command while the connection stays open */
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    int pid = 0;
    assert_int_equal(fscanf(f, "%d", &pid), 1);
    fclose(f);
    assert_true(gone(pid));
    agent_stop(&a);
    close(p[0]);
    close(p[1]);
    sv_private_dir_remove(d);
}

static void test_exec_by_socket_path(void **state)
{
    _cleanup_free_ char *d = tmpdir();
    char path[4200];
    snprintf(path, sizeof(path), "%s/agent.sock", d);
    int l = sv_unix_listen(path, NULL);
    assert_true(l >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int c = accept(l, NULL, NULL);
        if (c < 0 || dup2(c, 3) != 3)
            _exit(120);
        execl(agent_path, agent_path, "--fd", "3", (char *)NULL);
        _exit(121);
    }
    close(l);
    int out = memfd();
    sv_exec_opts o = {.argv = (const char *[]){"echo", "via", "path", NULL},
                      .stdin_fd = -1,
                      .stdout_fd = out,
                      .stderr_fd = -1,
                      .cancel_fd = -1,
                      .timeout_ms = 20000};
    int st = -1;
    _cleanup_error_ sv_error *e = NULL;
    if (sv_agent_exec(path, &o, &st, &e) < 0)
        fail_msg("%s", sv_error_message(e));
    assert_int_equal(st, 0);
    _cleanup_free_ char *got = slurp(out, NULL);
    assert_string_equal(got, "via path\n");
    close(out);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

    /* nobody listening any more */
    sv_error_free(e);
    e = NULL;
    unlink(path);
    assert_int_equal(sv_agent_exec(path, &o, &st, &e), -ENOENT);
    assert_non_null(strstr(sv_error_message(e), "connecting to the exec channel"));
    sv_private_dir_remove(d);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-OF-SANDVM-AGENT\n", argv[0]);
        return 2;
    }
    agent_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test(f)
    const struct CMUnitTest tests[] = {
        T(test_exit_zero),
        T(test_exit_statuses),
        T(test_killed_by_signal),
        T(test_hostile_args),
        T(test_big_argument),
        T(test_too_big),
        T(test_env),
        T(test_env_entry_rejected),
        T(test_cwd),
        T(test_not_found),
        T(test_not_executable),
        T(test_bad_cwd),
        T(test_stdout_stderr_separated),
        T(test_dropped_stream),
        T(test_binary_output),
        T(test_megabyte_output),
        T(test_stdin_relayed),
        T(test_stdin_eof),
        T(test_command_ignores_stdin),
        T(test_output_of_background_process),
        T(test_sequential_execs),
        T(test_garbage_before_hello),
        T(test_stale_frames_before_echo),
        T(test_hello_timeout),
        T(test_closed_before_answer),
        T(test_closed_mid_command),
        T(test_disconnect_kills_command),
        T(test_new_hello_aborts_running_command),
        T(test_cancel),
        T(test_exec_by_socket_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
