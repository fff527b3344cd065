/*
 * Issue 7's fast part, without QEMU: the capped console log (util/caplog.h)
 * against floods and planted links, the console logger process
 * (sandvm-logger, given as argv[1]) relaying both ways and keeping its cap,
 * the confinement of detached processes (ids, capabilities, no_new_privs, a
 * user namespace; as root only), the access check as another user, which
 * fds a detached process inherits, the run_as_user / run_as_group /
 * console_log_size keys, and the SANDVM_QMP_TRACE hook.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/vm_config.h"
#include "qemu/qmp.h"
#include "util/caplog.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/proc.h"
#include "util/sock.h"

static const char *logger_exe;

typedef struct fx {
    char *work;
    int dirfd;
} fx;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(sv_private_dir_new(&f->work, NULL), 0);
    f->dirfd = open(f->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->dirfd >= 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    close(f->dirfd);
    nftw(f->work, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    free(f->work);
    free(f);
    return 0;
}

static char *path_in(fx *f, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", f->work, name) > 0);
    return p;
}

static off_t size_at(fx *f, const char *name)
{
    struct stat st;
    return fstatat(f->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_size : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "we");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    fclose(fp);
    if (len)
        *len = n;
    return buf;
}

/* ---- the capped log ----------------------------------------------------------------- */

/* 8 MiB in odd chunks through a 64 KiB cap: never more than the cap on disk,
 * and the two files hold exactly the last bytes written, in order. */
static void test_caplog_cap(void **state)
{
    fx *f = *state;
    sv_caplog l;
    assert_int_equal(sv_caplog_open(&l, f->dirfd, "c.log", "c.log.1", 65536), 0);
    static char chunk[70001];
    uint64_t total = 0;
    unsigned seed = 1;
    while (total < (8u << 20)) {
        size_t n = 1 + (size_t)(rand_r(&seed) % (sizeof(chunk) - 1));
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)('a' + (total + i) % 26);
        sv_caplog_write(&l, chunk, n);
        total += n;
        off_t cur = size_at(f, "c.log"), old = size_at(f, "c.log.1");
        assert_true(cur >= 0 && cur <= 32768);
        assert_true(old <= 32768);
        assert_true(cur + (old > 0 ? old : 0) <= 65536);
    }
    assert_int_equal(sv_caplog_failed(&l), 0);
    assert_true(l.rotations > 200);
    assert_true(l.written == total);
    sv_caplog_close(&l);
    /* old + current = the stream's tail */
    _cleanup_free_ char *p1 = path_in(f, "c.log.1"), *p0 = path_in(f, "c.log");
    size_t n1 = 0, n0 = 0;
    _cleanup_free_ char *a = read_all(p1, &n1), *b = read_all(p0, &n0);
    assert_true(a && b && n1 == 32768);
    uint64_t start = total - n0 - n1;
    for (size_t i = 0; i < n1; i++)
        assert_int_equal(a[i], (char)('a' + (start + i) % 26));
    for (size_t i = 0; i < n0; i++)
        assert_int_equal(b[i], (char)('a' + (start + n1 + i) % 26));
}

/* Symlinks and hard links planted under both names, before the log starts
 * and between rotations: their targets are never written. */
static void test_caplog_planted_links(void **state)
{
    fx *f = *state;
    _cleanup_free_ char *outside = path_in(f, "outside");
    _cleanup_free_ char *target = path_in(f, "outside/target");
    _cleanup_free_ char *hard = path_in(f, "outside/hard");
    assert_int_equal(mkdir(outside, 0700), 0);
    write_file(target, "untouched\n");
    write_file(hard, "untouched too\n");
    _cleanup_close_ int logdir_fd = -1;
    _cleanup_free_ char *logdir = path_in(f, "vm");
    assert_int_equal(mkdir(logdir, 0700), 0);
    logdir_fd = open(logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_int_equal(symlinkat(target, logdir_fd, "c.log"), 0);
    assert_int_equal(linkat(AT_FDCWD, hard, logdir_fd, "c.log.1", 0), 0);
    sv_caplog l;
    assert_int_equal(sv_caplog_open(&l, logdir_fd, "c.log", "c.log.1", 8192), 0);
    char buf[1000];
    memset(buf, 'x', sizeof(buf));
    for (int i = 0; i < 100; i++) {
        if (i % 10 == 5) { /* plant again while the log runs */
            unlinkat(logdir_fd, "c.log.1", 0);
            assert_int_equal(symlinkat(target, logdir_fd, "c.log.1"), 0);
        }
        if (i % 10 == 7)
            linkat(AT_FDCWD, hard, logdir_fd, "c.log.1", 0); /* EEXIST is fine */
        sv_caplog_write(&l, buf, sizeof(buf));
    }
    sv_caplog_close(&l);
    _cleanup_free_ char *t = read_all(target, NULL), *h = read_all(hard, NULL);
    assert_string_equal(t, "untouched\n");
    assert_string_equal(h, "untouched too\n");
    struct stat st;
    assert_int_equal(fstatat(logdir_fd, "c.log", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size <= 4096);
}

/* A directory planted as the old name: rotation cannot rename onto it, the
 * log goes on within its cap. */
static void test_caplog_planted_dir(void **state)
{
    fx *f = *state;
    assert_int_equal(mkdirat(f->dirfd, "d.log.1", 0700), 0);
    sv_caplog l;
    assert_int_equal(sv_caplog_open(&l, f->dirfd, "d.log", "d.log.1", 4096), 0);
    /* the open removed what it could: a non-empty dir stays */
    char buf[3000];
    memset(buf, 'y', sizeof(buf));
    for (int i = 0; i < 20; i++)
        sv_caplog_write(&l, buf, sizeof(buf));
    assert_true(size_at(f, "d.log") <= 2048);
    sv_caplog_close(&l);
}

/* ---- the logger process ---------------------------------------------------------------- */

static long vm_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "re");
    long kib = -1;
    while (fp && fgets(line, sizeof(line), fp))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (fp)
        fclose(fp);
    return kib;
}

static ssize_t read_some(int fd, char *buf, size_t cap, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return -1;
    return read(fd, buf, cap);
}

static void test_logger_process(void **state)
{
    fx *f = *state;
    if (!logger_exe)
        skip();
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    _cleanup_free_ char *sock = path_in(f, "console.sock");
    sv_error *err = NULL;
    _cleanup_close_ int lfd = sv_unix_listen(sock, &err);
    assert_true(lfd >= 0);
    _cleanup_close_ int pidfile = openat(f->dirfd, "logger.pid", O_WRONLY | O_CREAT | O_CLOEXEC,
                                         0600);
    char *argv[] = {"sandvm-logger", "--vm-dir", f->work, "--size", "131072", NULL};
    int fds[] = {sp[1], lfd, f->dirfd};
    sv_confine cf = {.no_new_privs = true, .drop_caps = geteuid() == 0};
    sv_detached_opts o = {.program = logger_exe, .fds = fds, .nfds = 3, .stderr_fd = -1,
                          .pid_fd = pidfile, .confine = &cf};
    sv_detached d;
    if (sv_proc_spawn_detached(argv, &o, &d, &err) < 0)
        fail_msg("%s", sv_error_message(err));
    close(sp[1]);
    int qemu = sp[0];
    /* a flood with nobody connected: logged, capped */
    static char blob[65536];
    memset(blob, 'g', sizeof(blob));
    for (int i = 0; i < 64; i++) /* 4 MiB */
        assert_int_equal(sv_sock_send_all(qemu, blob, sizeof(blob), sv_deadline_ms(10000), NULL),
                         0);
    /* a client: both directions */
    int c = sv_unix_connect(sock, sv_deadline_ms(5000), &err);
    assert_true(c >= 0);
    usleep(100000); /* let the logger accept before the guest speaks */
    assert_int_equal(sv_sock_send_all(qemu, "hello-client", 12, sv_deadline_ms(5000), NULL), 0);
    /* the client may get the end of the flood first (whatever the logger had
     * not read yet when it connected), then the greeting */
    static char seen[1 << 20];
    size_t got = 0;
    while (got < 12 || memcmp(seen + got - 12, "hello-client", 12) != 0) {
        ssize_t n = read_some(c, seen + got, sizeof(seen) - got, 5000);
        assert_true(n > 0);
        got += (size_t)n;
    }
    char buf[256] = "";
    assert_int_equal(sv_sock_send_all(c, "to-guest", 8, sv_deadline_ms(5000), NULL), 0);
    got = 0;
    while (got < 8) {
        ssize_t n = read_some(qemu, buf + got, sizeof(buf) - 1 - got, 5000);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_memory_equal(buf, "to-guest", 8);
    long rss = vm_rss_kib(d.pid);
    print_message("sandvm-logger RSS after 4 MiB and a client: %ld KiB\n", rss);
#if !defined(__SANITIZE_ADDRESS__)
    /* the sanitizers' runtime alone is far bigger */
    assert_true(rss > 0 && rss < 2048);
#endif
    off_t cur = size_at(f, "console.log"), old = size_at(f, "console.log.1");
    assert_true(cur >= 0 && cur <= 65536 && old <= 65536 && old > 0);
    /* QEMU's end closes: the logger exits by itself */
    close(c);
    close(qemu);
    struct pollfd p = {.fd = d.pidfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    close(d.pidfd);
    sv_error_free(err);
}

/* ---- confinement ------------------------------------------------------------------------ */

/* Spawns `sh -c SCRIPT` detached with `cf`, waits for it. */
static void run_confined(const char *script, const sv_confine *cf, int extra_fd)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    sv_detached_opts o = {.fds = &extra_fd, .nfds = extra_fd >= 0 ? 1 : 0, .stderr_fd = -1,
                          .pid_fd = -1, .confine = cf};
    sv_detached d;
    sv_error *err = NULL;
    if (sv_proc_spawn_detached(argv, &o, &d, &err) < 0)
        fail_msg("%s", sv_error_message(err));
    struct pollfd p = {.fd = d.pidfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    close(d.pidfd);
}

static char *status_field(const char *status, const char *key)
{
    const char *p = strstr(status, key);
    if (!p)
        return strdup("");
    p += strlen(key);
    while (*p == ' ' || *p == '\t')
        p++;
    return strndup(p, strcspn(p, "\n"));
}

static void test_confine_ids_caps(void **state)
{
    fx *f = *state;
    if (geteuid() != 0)
        skip();
    _cleanup_free_ char *out = path_in(f, "status");
    assert_int_equal(chmod(f->work, 0777), 0);
    _cleanup_free_ char *script = NULL;
    assert_true(asprintf(&script, "cat /proc/self/status > %s", out) > 0);
    sv_confine cf = {.no_new_privs = true, .drop_caps = true, .set_ids = true, .uid = 65534,
                     .gid = 65534};
    run_confined(script, &cf, -1);
    _cleanup_free_ char *st = read_all(out, NULL);
    assert_non_null(st);
    const char *want[][2] = {{"Uid:", "65534\t65534\t65534\t65534"},
                             {"Gid:", "65534\t65534\t65534\t65534"},
                             {"Groups:", ""},
                             {"CapInh:", "0000000000000000"},
                             {"CapPrm:", "0000000000000000"},
                             {"CapEff:", "0000000000000000"},
                             {"CapBnd:", "0000000000000000"},
                             {"CapAmb:", "0000000000000000"},
                             {"NoNewPrivs:", "1"}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        _cleanup_free_ char *v = status_field(st, want[i][0]);
        if (strcmp(v, want[i][1]) != 0)
            fail_msg("%s is \"%s\", want \"%s\"", want[i][0], v, want[i][1]);
    }
    /* root, no capabilities: the logger's confinement */
    unlink(out);
    sv_confine nocaps = {.no_new_privs = true, .drop_caps = true};
    run_confined(script, &nocaps, -1);
    free(st);
    st = read_all(out, NULL);
    _cleanup_free_ char *uid = status_field(st, "Uid:"), *eff = status_field(st, "CapEff:"),
                        *bnd = status_field(st, "CapBnd:");
    assert_string_equal(uid, "0\t0\t0\t0");
    assert_string_equal(eff, "0000000000000000");
    assert_string_equal(bnd, "0000000000000000");
}

static void test_confine_userns(void **state)
{
    fx *f = *state;
    if (geteuid() != 0)
        skip();
    assert_int_equal(chmod(f->work, 0777), 0);
    _cleanup_free_ char *out = path_in(f, "maps");
    _cleanup_free_ char *script = NULL;
    assert_true(asprintf(&script, "{ cat /proc/self/uid_map; id -u; } > %s", out) > 0);
    sv_confine cf = {.no_new_privs = true, .drop_caps = true, .set_ids = true, .uid = 65534,
                     .gid = 65534, .userns = true};
    run_confined(script, &cf, -1);
    _cleanup_free_ char *text = read_all(out, NULL);
    assert_non_null(text);
    /* inside: root, mapped to 65534 outside, one id */
    unsigned a = 9, b = 0, n = 0, inside = 9;
    assert_int_equal(sscanf(text, " %u %u %u %u", &a, &b, &n, &inside), 4);
    assert_int_equal(a, 0);
    assert_int_equal(b, 65534);
    assert_int_equal(n, 1);
    assert_int_equal(inside, 0);
    /* the file it wrote belongs to 65534 on the host */
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_uid, 65534);
}

static void test_access_as(void **state)
{
    fx *f = *state;
    if (geteuid() != 0)
        skip();
    _cleanup_free_ char *open_file = path_in(f, "readable"), *closed = path_in(f, "secret");
    write_file(open_file, "x");
    write_file(closed, "x");
    assert_int_equal(chmod(open_file, 0644), 0);
    assert_int_equal(chmod(closed, 0600), 0);
    assert_int_equal(chmod(f->work, 0711), 0);
    const char *paths[] = {open_file, closed};
    int modes[] = {R_OK, R_OK};
    size_t bad = 99;
    sv_error *err = NULL;
    assert_int_equal(sv_proc_access_as(65534, 65534, paths, modes, 1, &bad, &err), 0);
    assert_int_equal(sv_proc_access_as(65534, 65534, paths, modes, 2, &bad, &err), -EACCES);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(sv_error_message(err), "secret"));
    sv_error_free(err);
    /* a directory on the way that the user cannot search */
    err = NULL;
    assert_int_equal(chmod(f->work, 0700), 0);
    assert_int_equal(sv_proc_access_as(65534, 65534, paths, modes, 1, &bad, &err), -EACCES);
    assert_int_equal(bad, 0);
    sv_error_free(err);
}

/* A detached process gets fds 0-2 and the ones passed, nothing else: not a
 * fd the caller left without close-on-exec. */
static void test_detached_fds(void **state)
{
    fx *f = *state;
    _cleanup_free_ char *out = path_in(f, "fds");
    _cleanup_free_ char *canary = path_in(f, "canary");
    int leak = open(canary, O_WRONLY | O_CREAT, 0600); /* no O_CLOEXEC on purpose */
    assert_true(leak >= 0);
    int p[2];
    assert_int_equal(pipe(p), 0); /* nor these */
    _cleanup_free_ char *script = NULL;
    assert_true(asprintf(&script, "ls /proc/self/fd > %s", out) > 0);
    sv_confine cf = {.no_new_privs = true};
    run_confined(script, &cf, p[0]);
    _cleanup_free_ char *text = read_all(out, NULL);
    close(leak);
    close(p[0]);
    close(p[1]);
    assert_non_null(text);
    /* 0 1 2, the passed one as 3, and ls's own directory fd */
    int seen[64] = {0}, n = 0;
    for (char *t = strtok(text, "\n"); t; t = strtok(NULL, "\n")) {
        int fd = atoi(t);
        if (fd < 64)
            seen[fd] = 1;
        n++;
    }
    assert_true(seen[0] && seen[1] && seen[2] && seen[3]);
    assert_true(n <= 5);
}

/* ---- config keys ----------------------------------------------------------------------------- */

static int parse(const char *extra, sv_vm_config **out, sv_error **err)
{
    _cleanup_free_ char *json = NULL;
    assert_true(asprintf(&json, "{\"kernel\": \"/k\"%s%s}", *extra ? ", " : "", extra) > 0);
    return sv_vm_config_parse(json, strlen(json), out, err);
}

static void expect_key_error(const char *extra, const char *needle)
{
    sv_vm_config *c = NULL;
    sv_error *err = NULL;
    int r = parse(extra, &c, &err);
    uid_t u;
    gid_t g;
    if (r == 0) {
        r = sv_vm_run_as(c, &u, &g, &err);
        sv_vm_config_free(c);
    }
    if (r != -EINVAL || !strstr(sv_error_message(err), needle))
        fail_msg("%s: got %d \"%s\", want EINVAL with \"%s\"", extra, r,
                 err ? sv_error_message(err) : "", needle);
    sv_error_free(err);
}

static void test_config_keys(void **state)
{
    (void)state;
    sv_vm_config *c = NULL;
    sv_error *err = NULL;
    uid_t u = 0;
    gid_t g = 0;
    assert_int_equal(parse("", &c, &err), 0);
    assert_int_equal(sv_vm_run_as(c, &u, &g, &err), 0);
    assert_int_equal(c->console_log_size, 0);
    sv_vm_config_free(c);
    assert_int_equal(parse("\"run_as_user\": \"nobody\", \"console_log_size\": 4", &c, &err), 0);
    assert_int_equal(sv_vm_run_as(c, &u, &g, &err), 1);
    assert_int_equal(u, 65534);
    assert_true(g != 0);
    assert_int_equal(c->console_log_size, 4);
    sv_vm_config_free(c);
    assert_int_equal(parse("\"run_as_user\": \"4242\", \"run_as_group\": \"4343\"", &c, &err), 0);
    assert_int_equal(sv_vm_run_as(c, &u, &g, &err), 1);
    assert_int_equal(u, 4242);
    assert_int_equal(g, 4343);
    sv_vm_config_free(c);
    expect_key_error("\"run_as_user\": \"root\"", "run_as_user: \"root\" is root");
    expect_key_error("\"run_as_user\": \"0\", \"run_as_group\": \"5\"", "run_as_user");
    expect_key_error("\"run_as_user\": \"nobody\", \"run_as_group\": \"0\"", "run_as_group");
    expect_key_error("\"run_as_user\": \"no-such-user-sv\"", "run_as_user: no user");
    expect_key_error("\"run_as_user\": \"4242\"", "run_as_group: is required");
    expect_key_error("\"run_as_group\": \"nogroup\"", "run_as_group: needs run_as_user");
    expect_key_error("\"run_as_user\": \"a,b\"", "run_as_user: expected a user or group name");
    expect_key_error("\"run_as_user\": \"-x\"", "run_as_user: expected");
    expect_key_error("\"console_log_size\": 1025", "console_log_size: 1025 is out of range");
    expect_key_error("\"console_log_size\": -1", "console_log_size");
}

/* ---- SANDVM_QMP_TRACE ---------------------------------------------------------------------- */

/* A peer for the QMP client: greets, answers two commands, closes. */
static void qmp_peer(int fd)
{
    const char *greet = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
                        "\"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\n";
    (void)!write(fd, greet, strlen(greet));
    char buf[4096];
    int answered = 0;
    size_t len = 0;
    while (answered < 2) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            const char *id = strstr(buf, "\"id\":");
            char reply[128];
            snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %ld}\n",
                     id ? strtol(id + 5, NULL, 10) : 0L);
            (void)!write(fd, reply, strlen(reply));
            answered++;
            memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
            len = strlen(buf);
        }
    }
    close(fd);
    _exit(0);
}

static void test_qmp_trace(void **state)
{
    fx *f = *state;
    _cleanup_free_ char *trace = path_in(f, "trace");
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(sp[0]);
        qmp_peer(sp[1]);
    }
    close(sp[1]);
    setenv("SANDVM_QMP_TRACE", trace, 1);
    sv_qmp *q = sv_qmp_new(sp[0]);
    sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(q, sv_deadline_ms(5000), &err), 0);
    assert_int_equal(sv_qmp_execute_text(q, "{\"execute\": \"query-status\", \"arguments\": "
                                            "{\"a\": \"x\\u2028\\\"y\"}}",
                                         sv_deadline_ms(5000), NULL, &err),
                     0);
    unsetenv("SANDVM_QMP_TRACE");
    sv_qmp_free(q);
    waitpid(pid, NULL, 0);
    FILE *fp = fopen(trace, "re");
    assert_non_null(fp);
    char line[4096];
    json_object *o[2] = {NULL, NULL};
    int n = 0;
    while (n < 3 && fgets(line, sizeof(line), fp)) {
        if (n < 2)
            o[n] = json_tokener_parse(line);
        n++;
    }
    fclose(fp);
    assert_int_equal(n, 2);
    json_object *cmd = NULL, *ex = NULL, *raw = NULL, *args = NULL, *a = NULL;
    assert_true(json_object_object_get_ex(o[0], "cmd", &cmd) &&
                json_object_object_get_ex(cmd, "execute", &ex));
    assert_string_equal(json_object_get_string(ex), "qmp_capabilities");
    assert_true(json_object_object_get_ex(o[0], "raw", &raw) && !json_object_get_boolean(raw));
    assert_true(json_object_object_get_ex(o[1], "raw", &raw) && json_object_get_boolean(raw));
    assert_true(json_object_object_get_ex(o[1], "cmd", &cmd) &&
                json_object_object_get_ex(cmd, "arguments", &args) &&
                json_object_object_get_ex(args, "a", &a));
    assert_string_equal(json_object_get_string(a), "x\xe2\x80\xa8\"y");
    json_object_put(o[0]);
    json_object_put(o[1]);
}

int main(int argc, char **argv)
{
    /* absolute: a detached process starts in "/" */
    logger_exe = argc > 1 ? realpath(argv[1], NULL) : NULL;
    signal(SIGPIPE, SIG_IGN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_caplog_cap),       T(test_caplog_planted_links), T(test_caplog_planted_dir),
        T(test_logger_process),   T(test_confine_ids_caps),     T(test_confine_userns),
        T(test_access_as),        T(test_detached_fds),         T(test_config_keys),
        T(test_qmp_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
