/*
 * State on disk: crash-safe writes, the per-VM lock between processes, the
 * state root and VM directories, pid-reuse detection, listing. Every attack
 * test plants a symlink pointing at a file or directory outside the state
 * tree and checks that its target is byte-for-byte untouched afterwards.
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
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "state.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/lock.h"
#include "util/sock.h"

/* ---- fixture: a private work dir and an "outside" dir for symlink targets ---- */

typedef struct fx {
    char *work; /* private dir; the state root goes in work/root */
    int wfd;
    char *outside; /* targets of planted symlinks: must stay untouched */
    int ofd;
    char *root; /* work/root (not created) */
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

static void rm_rf(const char *path)
{
    /* FTW_PHYS: a symlink is removed as a link, never followed */
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static char *make_tmpdir(void)
{
    sv_error *err = NULL;
    char *dir = NULL;
    if (sv_private_dir_new(&dir, &err) < 0)
        fail_msg("%s", sv_error_message(err));
    return dir;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->work = make_tmpdir();
    f->outside = make_tmpdir();
    f->wfd = open(f->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    f->ofd = open(f->outside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(f->wfd >= 0 && f->ofd >= 0);
    assert_true(asprintf(&f->root, "%s/root", f->work) > 0);
    memset(&sv_fileio_hooks, 0, sizeof(sv_fileio_hooks));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    memset(&sv_fileio_hooks, 0, sizeof(sv_fileio_hooks));
    close(f->wfd);
    close(f->ofd);
    rm_rf(f->work);
    rm_rf(f->outside);
    free(f->work);
    free(f->outside);
    free(f->root);
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static void put(int dirfd, const char *name, const char *content)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

/* Content of `name` (following nothing), or NULL when absent. */
static char *get(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    ssize_t n = read(fd, buf, (1 << 16) - 1);
    close(fd);
    assert_true(n >= 0);
    return buf;
}

static void assert_content(int dirfd, const char *name, const char *want)
{
    _cleanup_free_ char *got = get(dirfd, name);
    if (!got)
        fail_msg("%s: missing", name);
    assert_string_equal(got, want);
}

static bool is_symlink(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

static bool exists(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Number of entries in a directory, "." and ".." not counted. */
static int count_entries(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    DIR *d = fdopendir(fd);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void plant_symlink(const char *target, int dirfd, const char *name)
{
    unlinkat(dirfd, name, 0);
    assert_int_equal(symlinkat(target, dirfd, name), 0);
}

static char *outside_path(fx *f, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", f->outside, name) > 0);
    return p;
}

/* Checks a failed call's result and message, then frees the error (the
 * error object keeps the first error set, so each check starts afresh). */
static void expect_error(int r, sv_error **err, int code, const char *needle)
{
    if (r != -code || !*err || !strstr(sv_error_message(*err), needle))
        fail_msg("expected -%d (%s) with \"%s\", got %d: %s", code, strerror(code), needle, r,
                 *err ? sv_error_message(*err) : "(no error)");
    sv_error_free(*err);
    *err = NULL;
}

static sv_state_root *open_root(fx *f)
{
    _cleanup_error_ sv_error *err = NULL;
    sv_state_root *root = NULL;
    if (sv_state_root_open(f->root, &root, &err) < 0)
        fail_msg("%s", sv_error_message(err));
    return root;
}

static sv_state_dir *create_vm(sv_state_root *root, const char *id)
{
    _cleanup_error_ sv_error *err = NULL;
    sv_vm_state st = {.id = (char *)id, .state = SV_VM_CREATED, .created = 1};
    sv_state_dir *d = NULL;
    if (sv_state_dir_create(root, &st, &d, &err) < 0)
        fail_msg("%s", sv_error_message(err));
    return d;
}

static int open_in(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(p);
    return fd;
}

/* Waits for a forked child; returns its exit status, or 100 + signal. */
static int child_status(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* ---- fileio: atomic write ------------------------------------------------------ */

static void atomic_write_replaces(fx *f, bool no_tmpfile)
{
    _cleanup_error_ sv_error *err = NULL;
    sv_fileio_hooks.no_tmpfile = no_tmpfile;
    assert_int_equal(sv_write_file_atomic(f->wfd, "state.json", "old", 3, 0600, &err), 0);
    assert_content(f->wfd, "state.json", "old");
    const char *text = "new content, longer than the old";
    assert_int_equal(sv_write_file_atomic(f->wfd, "state.json", text, strlen(text), 0640, &err), 0);
    assert_null(err);
    assert_content(f->wfd, "state.json", text);
    struct stat st;
    assert_int_equal(fstatat(f->wfd, "state.json", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640); /* exact, whatever the umask */
    assert_int_equal(count_entries(f->wfd), 1); /* no temporary left behind */
    /* empty content is content too */
    assert_int_equal(sv_write_file_atomic(f->wfd, "state.json", "", 0, 0600, &err), 0);
    assert_content(f->wfd, "state.json", "");
}

static void test_atomic_write_replaces_tmpfile(void **state)
{
    atomic_write_replaces(*state, false);
}

static void test_atomic_write_replaces_named(void **state)
{
    atomic_write_replaces(*state, true);
}

/* A failure at any step before the rename leaves the old content and no
 * temporary file; the error names the file and the step. */
static void test_atomic_write_failure_keeps_old(void **state)
{
    fx *f = *state;
    static const struct {
        const char *step, *phrase;
    } steps[] = {
        {"create", "creating a temporary file"},
        {"write", "writing the temporary file"},
        {"chmod", "setting the temporary file's mode"},
        {"fsync", "fsync of the temporary file"},
        {"link", "linking the temporary file"},
        {"rename", "renaming the temporary file over it"},
    };
    for (int mode = 0; mode < 2; mode++) {
        for (size_t i = 0; i < SV_ARRAY_SIZE(steps); i++) {
            if (mode == 1 && strcmp(steps[i].step, "link") == 0)
                continue; /* the named path has no link step */
            memset(&sv_fileio_hooks, 0, sizeof(sv_fileio_hooks));
            sv_fileio_hooks.no_tmpfile = mode == 1;
            _cleanup_error_ sv_error *err = NULL;
            assert_int_equal(sv_write_file_atomic(f->wfd, "state.json", "old", 3, 0600, &err), 0);
            sv_fileio_hooks.fail_step = steps[i].step;
            int r = sv_write_file_atomic(f->wfd, "state.json", "new", 3, 0600, &err);
            _cleanup_free_ char *want = NULL;
            assert_true(asprintf(&want, "writing %s/state.json: %s: ", f->work, steps[i].phrase) >
                        0);
            expect_error(r, &err, EIO, want);
            sv_fileio_hooks.fail_step = NULL;
            assert_content(f->wfd, "state.json", "old");
            assert_int_equal(count_entries(f->wfd), 1);
        }
    }
    /* after the rename only durability is in doubt: reported, content new */
    _cleanup_error_ sv_error *err = NULL;
    sv_fileio_hooks.fail_step = "fsync-dir";
    expect_error(sv_write_file_atomic(f->wfd, "state.json", "new", 3, 0600, &err), &err, EIO,
                 "fsync of the directory");
    assert_content(f->wfd, "state.json", "new");
}

/* A real write failure (file size limit) in a child process: old content kept. */
static void test_atomic_write_real_failure(void **state)
{
    fx *f = *state;
    put(f->wfd, "state.json", "old");
    for (int mode = 0; mode < 2; mode++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(20); /* never outlive a failed test */
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {16, 16};
            setrlimit(RLIMIT_FSIZE, &rl);
            sv_fileio_hooks.no_tmpfile = mode == 1;
            static char big[1 << 16];
            memset(big, 'x', sizeof(big));
            sv_error *err = NULL;
            int r = sv_write_file_atomic(f->wfd, "state.json", big, sizeof(big), 0600, &err);
            _exit(r == -EFBIG && strstr(sv_error_message(err), "writing the temporary file") ? 0
                                                                                             : 1);
        }
        assert_int_equal(child_status(pid), 0);
        assert_content(f->wfd, "state.json", "old");
        assert_int_equal(count_entries(f->wfd), 1);
    }
}

/* A symlink at the file's name is replaced by the new file, never written through. */
static void test_atomic_write_symlink_at_name(void **state)
{
    fx *f = *state;
    put(f->ofd, "secret", "do not touch");
    _cleanup_free_ char *target = outside_path(f, "secret");
    for (int mode = 0; mode < 2; mode++) {
        sv_fileio_hooks.no_tmpfile = mode == 1;
        plant_symlink(target, f->wfd, "state.json");
        _cleanup_error_ sv_error *err = NULL;
        assert_int_equal(sv_write_file_atomic(f->wfd, "state.json", "mine", 4, 0600, &err), 0);
        assert_false(is_symlink(f->wfd, "state.json"));
        assert_content(f->wfd, "state.json", "mine");
        assert_content(f->ofd, "secret", "do not touch");
        /* a dangling symlink does not make the write create its target */
        plant_symlink("/nonexistent-sandvm-target", f->wfd, "state.json");
        _cleanup_free_ char *dangling = outside_path(f, "created-by-write");
        plant_symlink(dangling, f->wfd, "state.json");
        assert_int_equal(sv_write_file_atomic(f->wfd, "state.json", "mine", 4, 0600, &err), 0);
        assert_false(exists(f->ofd, "created-by-write"));
    }
}

/* A symlink planted at the temporary name is never followed: another name is used. */
static void test_atomic_write_symlink_at_tmp_name(void **state)
{
    fx *f = *state;
    put(f->ofd, "secret", "do not touch");
    _cleanup_free_ char *target = outside_path(f, "secret");
    _cleanup_free_ char *absent = outside_path(f, "absent");
    static const char *const randoms[] = {"aaaaaa", "bbbbbb", "cccccc", NULL};
    for (int mode = 0; mode < 2; mode++) {
        memset(&sv_fileio_hooks, 0, sizeof(sv_fileio_hooks));
        sv_fileio_hooks.no_tmpfile = mode == 1;
        sv_fileio_hooks.tmp_randoms = randoms;
        plant_symlink(target, f->wfd, SV_TMP_PREFIX "state.json.aaaaaa");
        plant_symlink(absent, f->wfd, SV_TMP_PREFIX "state.json.bbbbbb");
        _cleanup_error_ sv_error *err = NULL;
        assert_int_equal(sv_write_file_atomic(f->wfd, "state.json", "mine", 4, 0600, &err), 0);
        assert_int_equal(sv_fileio_hooks.tmp_randoms_used, 3);
        assert_content(f->wfd, "state.json", "mine");
        assert_content(f->ofd, "secret", "do not touch");
        assert_false(exists(f->ofd, "absent"));
        /* the planted links are left as they were: not ours to remove here */
        assert_true(is_symlink(f->wfd, SV_TMP_PREFIX "state.json.aaaaaa"));
        assert_true(is_symlink(f->wfd, SV_TMP_PREFIX "state.json.bbbbbb"));
        assert_false(exists(f->wfd, SV_TMP_PREFIX "state.json.cccccc"));
    }
}

static void test_file_names_stay_in_dir(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {"", ".", "..", "a/b", "../x", "/etc/passwd"};
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
        _cleanup_error_ sv_error *err = NULL;
        expect_error(sv_write_file_atomic(f->wfd, bad[i], "x", 1, 0600, &err), &err, EINVAL,
                     "not a plain file name");
        sv_error_free(err);
        err = NULL;
        char *data = NULL;
        expect_error(sv_read_file_at(f->wfd, bad[i], 10, &data, NULL, &err), &err, EINVAL,
                     "not a plain file name");
    }
    assert_int_equal(count_entries(f->wfd), 0);
}

static void test_read_file(void **state)
{
    fx *f = *state;
    put(f->wfd, "small", "hello");
    _cleanup_error_ sv_error *err = NULL;
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    assert_int_equal(sv_read_file_at(f->wfd, "small", 5, &data, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");

    char *none = NULL;
    expect_error(sv_read_file_at(f->wfd, "small", 4, &none, &len, &err), &err, EFBIG,
                 "small is larger than 4 bytes");
    expect_error(sv_read_file_at(f->wfd, "missing", 4, &none, &len, &err), &err, ENOENT,
                 "/missing");

    put(f->ofd, "secret", "outside");
    _cleanup_free_ char *target = outside_path(f, "secret");
    plant_symlink(target, f->wfd, "link");
    expect_error(sv_read_file_at(f->wfd, "link", 100, &none, &len, &err), &err, ELOOP,
                 "link is a symlink; refusing to follow it");

    /* a FIFO is refused at once instead of blocking the reader */
    assert_int_equal(mkfifoat(f->wfd, "fifo", 0600), 0);
    int64_t t0 = sv_now_ms();
    expect_error(sv_read_file_at(f->wfd, "fifo", 100, &none, &len, &err), &err, EINVAL,
                 "fifo is not a regular file");
    assert_true(sv_now_ms() - t0 < 1000);
    assert_null(none);
}

/* ---- lock ---------------------------------------------------------------------- */

/* Child: takes the lock, tells the parent through `ready`, waits for a byte
 * (or EOF) on `go`, then exits (releasing it). */
static pid_t lock_holder(int dirfd, int *ready_out, int *go_out)
{
    int ready[2], go[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* never outlive a failed test */
        close(ready[0]);
        close(go[1]);
        int fd = sv_lock_acquire(dirfd, "lock", "vm x", SV_LOCK_CREATE, 1000, NULL);
        char c = fd >= 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(3);
        if (read(go[0], &c, 1) < 0)
            _exit(4);
        _exit(fd >= 0 ? 0 : 2);
    }
    close(ready[1]);
    close(go[0]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    *ready_out = ready[0];
    *go_out = go[1];
    return pid;
}

/* Two processes: the second gets the busy error within its deadline, then the
 * lock once the first has released it. */
static void test_lock_contention(void **state)
{
    fx *f = *state;
    int ready, go;
    pid_t holder = lock_holder(f->wfd, &ready, &go);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* never outlive a failed test */
        sv_error *err = NULL;
        int64_t t0 = sv_now_ms();
        int r = sv_lock_acquire(f->wfd, "lock", "vm x", 0, 300, &err);
        int64_t took = sv_now_ms() - t0;
        if (r != -ETIMEDOUT)
            _exit(1);
        if (strcmp(sv_error_message(err), "vm x is busy (locked by another sandvm)") != 0)
            _exit(2);
        _exit(took >= 290 && took < 1500 ? 0 : 3);
    }
    assert_int_equal(child_status(pid), 0);

    /* try-once form: busy at once */
    _cleanup_error_ sv_error *err = NULL;
    int64_t t0 = sv_now_ms();
    expect_error(sv_lock_acquire(f->wfd, "lock", "vm x", 0, 0, &err), &err, ETIMEDOUT, "is busy");
    assert_true(sv_now_ms() - t0 < 200);

    /* a waiter gets it soon after the holder lets go */
    assert_int_equal(write(go, "x", 1), 1);
    t0 = sv_now_ms();
    int fd = sv_lock_acquire(f->wfd, "lock", "vm x", 0, 5000, &err);
    assert_true(fd >= 0);
    assert_true(sv_now_ms() - t0 < 2000);
    assert_int_equal(child_status(holder), 0);
    sv_lock_release(&fd);
    assert_int_equal(fd, -1);
    close(ready);
    close(go);
}

/* SIGKILL of the holder releases the lock: a crashed sandvm never wedges a VM. */
static void test_lock_released_on_death(void **state)
{
    fx *f = *state;
    int ready, go;
    pid_t holder = lock_holder(f->wfd, &ready, &go);
    _cleanup_error_ sv_error *err = NULL;
    expect_error(sv_lock_acquire(f->wfd, "lock", "vm x", 0, 0, &err), &err, ETIMEDOUT, "busy");
    kill(holder, SIGKILL);
    assert_int_equal(child_status(holder), 100 + SIGKILL);
    int fd = sv_lock_acquire(f->wfd, "lock", "vm x", 0, 0, &err);
    assert_true(fd >= 0);
    close(fd);
    close(ready);
    close(go);
}

static void test_lock_symlink_not_followed(void **state)
{
    fx *f = *state;
    put(f->ofd, "target", "outside");
    _cleanup_free_ char *target = outside_path(f, "target");
    plant_symlink(target, f->wfd, "lock");
    for (unsigned flags = 0; flags <= SV_LOCK_CREATE; flags++) {
        _cleanup_error_ sv_error *err = NULL;
        expect_error(sv_lock_acquire(f->wfd, "lock", "vm x", flags, 0, &err), &err, ELOOP,
                     "is a symlink; refusing to follow it");
    }
    /* the target was neither changed nor locked */
    assert_content(f->ofd, "target", "outside");
    int tfd = openat(f->ofd, "target", O_RDONLY | O_CLOEXEC);
    assert_true(tfd >= 0);
    assert_int_equal(flock(tfd, LOCK_EX | LOCK_NB), 0);
    close(tfd);
    /* a dangling link does not create its target */
    _cleanup_free_ char *absent = outside_path(f, "absent");
    plant_symlink(absent, f->wfd, "lock");
    _cleanup_error_ sv_error *err = NULL;
    expect_error(sv_lock_acquire(f->wfd, "lock", "vm x", SV_LOCK_CREATE, 0, &err), &err, ELOOP,
                 "symlink");
    assert_false(exists(f->ofd, "absent"));
}

static void test_lock_missing_without_create(void **state)
{
    fx *f = *state;
    _cleanup_error_ sv_error *err = NULL;
    expect_error(sv_lock_acquire(f->wfd, "lock", "vm x", 0, 100, &err), &err, ENOENT,
                 "opening lock file");
    assert_false(exists(f->wfd, "lock"));
    assert_int_equal(mkdirat(f->wfd, "dirlock", 0700), 0);
    expect_error(sv_lock_acquire(f->wfd, "dirlock", "vm x", 0, 0, &err), &err, EINVAL,
                 "is not a regular file");
}

/* ---- ids ------------------------------------------------------------------------- */

static void test_id_validation(void **state)
{
    fx *f = *state;
    char long_id[SV_VM_ID_MAX + 2];
    memset(long_id, 'a', SV_VM_ID_MAX + 1);
    long_id[SV_VM_ID_MAX + 1] = '\0';
    static const struct {
        const char *id, *msg;
    } bad[] = {
        {"../x", "invalid vm id \"../x\": it must not start with '.'"},
        {"a/b",
         "invalid vm id \"a/b\": '/' is not allowed (only letters, digits, '-', '_' and '.')"},
        {".hidden", "invalid vm id \".hidden\": it must not start with '.'"},
        {".", "invalid vm id \".\": it must not start with '.'"},
        {"..", "invalid vm id \"..\": it must not start with '.'"},
        {"", "invalid vm id \"\": it is empty"},
        {"caf\xc3\xa9", "invalid vm id \"caf\\xc3\\xa9\": byte \\xc3 is not allowed"},
        {"a b", "invalid vm id \"a b\": byte \\x20 is not allowed"},
        {"a\nb", "invalid vm id \"a\\x0ab\": byte \\x0a is not allowed"},
        {"x,y", "invalid vm id \"x,y\": ',' is not allowed"},
        {"\"q\"", "invalid vm id \"\\\"q\\\"\": '\"' is not allowed"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
        _cleanup_error_ sv_error *err = NULL;
        assert_int_equal(sv_vm_id_check(bad[i].id, &err), -EINVAL);
        if (!strstr(sv_error_message(err), bad[i].msg))
            fail_msg("id %zu: got \"%s\", want \"%s\"", i, sv_error_message(err), bad[i].msg);
    }
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_vm_id_check(long_id, &err), -EINVAL);
    _cleanup_free_ char *want = NULL;
    assert_true(asprintf(&want, "invalid vm id \"%s\": it is longer than 64 characters", long_id) >
                0);
    assert_string_equal(sv_error_message(err), want);
    sv_error_free(err);
    err = NULL;

    long_id[SV_VM_ID_MAX] = '\0';
    static const char *const good[] = {"a", "vm1", "Web-1_x.y", "1", "a..b", "x."};
    for (size_t i = 0; i < SV_ARRAY_SIZE(good); i++)
        assert_int_equal(sv_vm_id_check(good[i], NULL), 0);
    assert_int_equal(sv_vm_id_check(long_id, NULL), 0);

    /* every entry point refuses them before touching the filesystem */
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    assert_int_equal(mkdirat(f->wfd, "x", 0700), 0); /* what "../x" would reach */
    sv_vm_state st = {.id = (char *)"../x"};
    sv_state_dir *d = NULL;
    expect_error(sv_state_dir_create(root, &st, &d, &err), &err, EINVAL, "\"../x\"");
    expect_error(sv_state_dir_open(root, "../x", &d, &err), &err, EINVAL, "\"../x\"");
    assert_null(d);
    assert_int_equal(count_entries(f->wfd), 2); /* root and x, nothing else */
}

/* ---- the root ------------------------------------------------------------------------ */

static void test_root_open(void **state)
{
    fx *f = *state;
    /* created 0700 when missing, whatever the umask */
    mode_t old = umask(0);
    sv_state_root *root = open_root(f);
    umask(old);
    struct stat st;
    assert_int_equal(stat(f->root, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_string_equal(sv_state_root_path(root), f->root);
    sv_state_root_free(root);
    /* opened again as it is; trailing slashes dropped */
    _cleanup_free_ char *slashed = NULL;
    assert_true(asprintf(&slashed, "%s//", f->root) > 0);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_state_root_open(slashed, &root, &err), 0);
    assert_string_equal(sv_state_root_path(root), f->root);
    sv_state_root_free(root);

    expect_error(sv_state_root_open("relative/root", &root, &err), &err, EINVAL,
                 "not an absolute path");

    /* a symlink (also with a trailing slash, which would make the kernel follow it) */
    assert_int_equal(mkdirat(f->ofd, "victim", 0700), 0);
    _cleanup_free_ char *victim = outside_path(f, "victim");
    plant_symlink(victim, f->wfd, "linkroot");
    _cleanup_free_ char *linkroot = NULL, *linkroot_slash = NULL;
    assert_true(asprintf(&linkroot, "%s/linkroot", f->work) > 0);
    assert_true(asprintf(&linkroot_slash, "%s/linkroot/", f->work) > 0);
    expect_error(sv_state_root_open(linkroot, &root, &err), &err, ELOOP, "is a symlink");
    expect_error(sv_state_root_open(linkroot_slash, &root, &err), &err, ELOOP, "is a symlink");
    int vfd = open_in(f->outside, "victim");
    assert_int_equal(count_entries(vfd), 0);
    close(vfd);

    /* a file, a shared directory, another user's directory */
    put(f->wfd, "file", "x");
    _cleanup_free_ char *file = NULL, *shared = NULL, *foreign = NULL;
    assert_true(asprintf(&file, "%s/file", f->work) > 0);
    expect_error(sv_state_root_open(file, &root, &err), &err, ENOTDIR, "is not a directory");
    assert_true(asprintf(&shared, "%s/shared", f->work) > 0);
    assert_int_equal(mkdir(shared, 0700), 0);
    assert_int_equal(chmod(shared, 01777), 0);
    expect_error(sv_state_root_open(shared, &root, &err), &err, EPERM,
                 "is writable by other users (mode 1777)");
    if (geteuid() == 0) {
        assert_true(asprintf(&foreign, "%s/foreign", f->work) > 0);
        assert_int_equal(mkdir(foreign, 0700), 0);
        assert_int_equal(chown(foreign, 12345, 12345), 0);
        expect_error(sv_state_root_open(foreign, &root, &err), &err, EPERM,
                     "is owned by uid 12345, not by us (uid 0)");
    }
    /* a missing parent is not created */
    _cleanup_free_ char *deep = NULL;
    assert_true(asprintf(&deep, "%s/no/such/root", f->work) > 0);
    expect_error(sv_state_root_open(deep, &root, &err), &err, ENOENT, "creating state root");
}

/* ---- VM directories ----------------------------------------------------------------- */

static void test_dir_create_open_remove(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    sv_state_dir *d = create_vm(root, "vm1");
    assert_true(sv_state_dir_locked(d));
    assert_string_equal(sv_state_dir_id(d), "vm1");
    _cleanup_free_ char *want_path = NULL;
    assert_true(asprintf(&want_path, "%s/vm1", f->root) > 0);
    assert_string_equal(sv_state_dir_path(d), want_path);
    _cleanup_free_ char *qmp = sv_state_dir_file(d, SV_STATE_QMP_SOCKET);
    _cleanup_free_ char *want_qmp = NULL;
    assert_true(asprintf(&want_qmp, "%s/vm1/qmp.sock", f->root) > 0);
    assert_string_equal(qmp, want_qmp);

    /* the directory appeared fully formed: 0700, lock and state.json, nothing else */
    int rfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(rfd >= 0);
    assert_int_equal(count_entries(rfd), 1);
    struct stat st;
    assert_int_equal(fstatat(rfd, "vm1", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(count_entries(sv_state_dir_fd(d)), 2);
    assert_int_equal(fstatat(sv_state_dir_fd(d), "state.json", &st, 0), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* a second create fails, the first VM untouched */
    _cleanup_error_ sv_error *err = NULL;
    sv_vm_state st2 = {.id = (char *)"vm1", .state = SV_VM_RUNNING};
    sv_state_dir *d2 = NULL;
    expect_error(sv_state_dir_create(root, &st2, &d2, &err), &err, EEXIST, "vm vm1 already exists");

    /* another handle opens it, reads it, and finds it busy */
    assert_int_equal(sv_state_dir_open(root, "vm1", &d2, &err), 0);
    assert_false(sv_state_dir_locked(d2));
    _cleanup_vm_state_ sv_vm_state *loaded = NULL;
    assert_int_equal(sv_vm_state_load(d2, &loaded, &err), 0);
    assert_int_equal(loaded->state, SV_VM_CREATED);
    expect_error(sv_state_dir_lock(d2, 50, &err), &err, ETIMEDOUT,
                 "vm vm1 is busy (locked by another sandvm)");
    expect_error(sv_state_dir_remove(d2, &err), &err, EINVAL, "not holding its lock");
    expect_error(sv_vm_state_save(d2, loaded, &err), &err, EINVAL, "without holding its lock");

    /* remove: gone at once; the waiting handle then learns it was removed */
    assert_int_equal(sv_state_dir_remove(d, &err), 0);
    assert_int_equal(count_entries(rfd), 0);
    sv_state_dir_free(d);
    expect_error(sv_state_dir_lock(d2, 1000, &err), &err, ENOENT, "vm vm1");
    sv_state_dir_free(d2);
    expect_error(sv_state_dir_open(root, "vm1", &d2, &err), &err, ENOENT, "vm vm1 does not exist");
    close(rfd);

    /* the id can be used again */
    d = create_vm(root, "vm1");
    sv_state_dir_free(d);
}

/* A process waiting for the lock while the holder removes the VM (and a new
 * VM with the same id is created) gets ENOENT, never a lock on the old one. */
static void test_lock_waiter_sees_removal(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    sv_state_dir *d = create_vm(root, "vm1");
    int ready[2];
    assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* never outlive a failed test */
        close(ready[0]);
        /* a forked child shares its parent's lock until it closes the copy */
        sv_state_dir_free(d);
        sv_state_root *r2 = NULL;
        sv_state_dir *w = NULL;
        sv_error *err = NULL;
        if (sv_state_root_open(f->root, &r2, &err) < 0 ||
            sv_state_dir_open(r2, "vm1", &w, &err) < 0)
            _exit(1);
        if (write(ready[1], "r", 1) != 1)
            _exit(2);
        int64_t t0 = sv_now_ms();
        int r = sv_state_dir_lock(w, 5000, &err);
        if (r != -ENOENT) {
            fprintf(stderr, "waiter: %d %s\n", r, sv_error_message(err));
            _exit(3);
        }
        if (!strstr(sv_error_message(err), "vm vm1 was removed while waiting for its lock"))
            _exit(4);
        _exit(sv_now_ms() - t0 < 4000 ? 0 : 5);
    }
    close(ready[1]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    usleep(100 * 1000); /* let it wait on the lock */
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_state_dir_remove(d, &err), 0);
    sv_state_dir *fresh = create_vm(root, "vm1");
    sv_state_dir_free(d); /* releases the old lock: the waiter wakes */
    assert_int_equal(child_status(pid), 0);
    sv_state_dir_free(fresh);
}

/* remove deletes what sandvm creates, as links: planted symlinks go, their
 * targets stay. */
static void test_remove_planted_symlinks(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    sv_state_dir *d = create_vm(root, "vm1");
    int dfd = sv_state_dir_fd(d);
    put(f->ofd, "secret", "do not touch");
    assert_int_equal(mkdirat(f->ofd, "tree", 0700), 0);
    int tfd = open_in(f->outside, "tree");
    put(tfd, "inner", "keep me");
    _cleanup_free_ char *secret = outside_path(f, "secret");
    _cleanup_free_ char *tree = outside_path(f, "tree");
    plant_symlink(secret, dfd, "state.json");
    plant_symlink(tree, dfd, "qmp.sock");
    plant_symlink(tree, dfd, "console.sock");
    plant_symlink(secret, dfd, "qemu.log");
    plant_symlink(secret, dfd, "virtiofsd-0.sock");
    plant_symlink(secret, dfd, SV_TMP_PREFIX "state.json.abcdef");

    /* loading through the planted state.json is refused */
    _cleanup_error_ sv_error *err = NULL;
    sv_vm_state *st = NULL;
    expect_error(sv_vm_state_load(d, &st, &err), &err, ELOOP, "is a symlink");

    assert_int_equal(sv_state_dir_remove(d, &err), 0);
    sv_state_dir_free(d);
    int rfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_int_equal(count_entries(rfd), 0);
    close(rfd);
    assert_content(f->ofd, "secret", "do not touch");
    assert_content(tfd, "inner", "keep me");
    assert_int_equal(count_entries(tfd), 1);
    close(tfd);
}

/* An entry sandvm did not create stops the removal before anything is deleted. */
static void test_remove_refuses_foreign_entries(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    sv_state_dir *d = create_vm(root, "vm1");
    int dfd = sv_state_dir_fd(d);
    put(dfd, "notes.txt", "user data");
    assert_int_equal(mkdirat(dfd, "qmp.sock", 0700), 0); /* an own name, but a directory */
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_state_dir_remove(d, &err), -ENOTEMPTY);
    assert_non_null(strstr(sv_error_message(err), "holds 2 entries sandvm did not create"));
    assert_non_null(strstr(sv_error_message(err), "\"notes.txt\""));
    assert_non_null(strstr(sv_error_message(err), "\"qmp.sock\""));
    sv_error_free(err);
    err = NULL;
    /* nothing removed, still in place and locked */
    assert_true(exists(dfd, "state.json"));
    assert_true(exists(dfd, "lock"));
    assert_true(sv_state_dir_locked(d));
    sv_state_dir *again = NULL;
    assert_int_equal(sv_state_dir_open(root, "vm1", &again, &err), 0);
    sv_state_dir_free(again);
    /* once the user removes them, remove works */
    unlinkat(dfd, "notes.txt", 0);
    unlinkat(dfd, "qmp.sock", AT_REMOVEDIR);
    assert_int_equal(sv_state_dir_remove(d, &err), 0);
    sv_state_dir_free(d);
}

/* A symlink at <root>/<id> is never followed: not opened, not listed, not
 * replaced by create; its target untouched. */
static void test_dir_symlink_not_followed(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    assert_int_equal(mkdirat(f->ofd, "fake", 0700), 0);
    int ffd = open_in(f->outside, "fake");
    put(ffd, "state.json", "{\"version\":1,\"id\":\"vm1\",\"state\":\"running\"}");
    put(ffd, "lock", "");
    _cleanup_free_ char *fake = outside_path(f, "fake");
    int rfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    plant_symlink(fake, rfd, "vm1");

    _cleanup_error_ sv_error *err = NULL;
    sv_state_dir *d = NULL;
    expect_error(sv_state_dir_open(root, "vm1", &d, &err), &err, ELOOP,
                 "is a symlink; refusing to follow it");
    sv_vm_state st = {.id = (char *)"vm1"};
    expect_error(sv_state_dir_create(root, &st, &d, &err), &err, EEXIST, "vm vm1 already exists");
    sv_state_entry *list = NULL;
    size_t n = 99;
    assert_int_equal(sv_state_list(root, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    sv_state_entries_free(list, n);

    assert_true(is_symlink(rfd, "vm1"));
    assert_int_equal(count_entries(ffd), 2);
    assert_content(ffd, "state.json", "{\"version\":1,\"id\":\"vm1\",\"state\":\"running\"}");
    close(ffd);
    close(rfd);
}

/* Leftovers of a crashed create or remove are swept once old and unlocked. */
static void test_sweep_leftovers(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    int rfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    static const char *const names[] = {SV_TMP_PREFIX "old.111111", SV_TMP_PREFIX "young.222222",
                                        SV_TMP_PREFIX "busy.333333",
                                        SV_TMP_PREFIX "foreign.444444"};
    for (size_t i = 0; i < SV_ARRAY_SIZE(names); i++) {
        assert_int_equal(mkdirat(rfd, names[i], 0700), 0);
        int fd = openat(rfd, names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        put(fd, "lock", "");
        put(fd, "state.json", "{}");
        if (i == 3)
            put(fd, "user-file", "keep");
        close(fd);
    }
    int bfd = openat(rfd, names[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int held = sv_lock_acquire(bfd, "lock", "busy", 0, 0, NULL);
    assert_true(held >= 0);
    struct timespec old[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(names); i++)
        if (i != 1)
            assert_int_equal(utimensat(rfd, names[i], old, AT_SYMLINK_NOFOLLOW), 0);

    sv_state_dir *d = create_vm(root, "vm1");
    assert_false(exists(rfd, names[0]));
    assert_true(exists(rfd, names[1])); /* may be mid-create right now */
    assert_true(exists(rfd, names[2])); /* locked: someone is working in it */
    assert_true(exists(rfd, names[3])); /* holds a foreign file */
    int ffd = openat(rfd, names[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_content(ffd, "user-file", "keep");
    assert_content(ffd, "state.json", "{}"); /* not half-emptied either */
    close(ffd);
    sv_lock_release(&held);
    close(bfd);
    sv_state_dir_free(d);
    close(rfd);
}

/* ---- the state record ---------------------------------------------------------------- */

static void test_state_roundtrip(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    sv_state_dir *d = create_vm(root, "web1");
    _cleanup_error_ sv_error *err = NULL;
    json_object *cfg = NULL;
    const char *cfg_text =
        "{\"arch\":\"x86_64\",\"memory\":\"512M\",\"shares\":[\"/a,b\",\"\\u00e9\"]}";
    assert_int_equal(sv_json_parse(cfg_text, strlen(cfg_text), &cfg, &err), 0);
    sv_vm_state st = {
        .id = NULL, /* the directory's */
        .state = SV_VM_PAUSED,
        .arch = (char *)"x86_64",
        .created = 1700000000,
        .qemu = {1234, 987654321},
        .virtiofsd = {1235, 987654400},
        .paths = {.dir = (char *)"/run/sandvm/web1",
                  .qmp_socket = (char *)"/run/sandvm/web1/qmp.sock",
                  .console_socket = (char *)"/run/sandvm/web1/console.sock",
                  .qemu_log = (char *)"/run/sandvm/web1/qemu.log"},
        .config = cfg,
    };
    assert_int_equal(sv_vm_state_save(d, &st, &err), 0);
    json_object_put(cfg);

    _cleanup_vm_state_ sv_vm_state *got = NULL;
    assert_int_equal(sv_vm_state_load(d, &got, &err), 0);
    assert_int_equal(got->version, SV_VM_STATE_VERSION);
    assert_string_equal(got->id, "web1");
    assert_int_equal(got->state, SV_VM_PAUSED);
    assert_string_equal(got->arch, "x86_64");
    assert_int_equal(got->created, 1700000000);
    assert_int_equal(got->qemu.pid, 1234);
    assert_int_equal(got->qemu.start_time, 987654321);
    assert_int_equal(got->virtiofsd.pid, 1235);
    assert_int_equal(got->virtiofsd.start_time, 987654400);
    assert_string_equal(got->paths.qmp_socket, "/run/sandvm/web1/qmp.sock");
    assert_string_equal(got->paths.console_socket, "/run/sandvm/web1/console.sock");
    assert_null(got->paths.exec_socket);
    assert_null(got->paths.virtiofsd_socket);
    assert_non_null(got->config);
    assert_string_equal(
        sv_json_to_string(got->config),
        "{\"arch\":\"x86_64\",\"memory\":\"512M\",\"shares\":[\"/a,b\",\"\xc3\xa9\"]}");
    assert_string_equal(sv_vm_run_state_name(got->state), "paused");

    /* saving the loaded record again changes nothing */
    _cleanup_free_ char *before = get(sv_state_dir_fd(d), "state.json");
    assert_int_equal(sv_vm_state_save(d, got, &err), 0);
    _cleanup_free_ char *after = get(sv_state_dir_fd(d), "state.json");
    assert_string_equal(before, after);

    /* a record for another VM is refused */
    sv_vm_state other = {.id = (char *)"web2"};
    expect_error(sv_vm_state_save(d, &other, &err), &err, EINVAL, "saving the state of another vm");
    sv_state_dir_free(d);
}

static void test_state_parse_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"", "unexpected end of input"},
        {"{\"version\":1,\"id\":\"vm1\",\"state\":\"runn", "unexpected end of input"},
        {"[]", "expected an object"},
        {"{\"id\":\"vm1\",\"state\":\"running\"}", "version: expected an integer"},
        {"{\"version\":2,\"id\":\"vm1\",\"state\":\"running\",\"future\":1}",
         "version: 2 is newer"},
        {"{\"version\":1,\"state\":\"running\"}", "id: is required"},
        {"{\"version\":1,\"id\":\"vm1\"}", "state: is required"},
        {"{\"version\":1,\"id\":\"vm1\",\"state\":\"exploded\"}",
         "state: \"exploded\" is not one of"},
        {"{\"version\":1,\"id\":\"vm1\",\"state\":\"running\",\"extra\":1}",
         "unknown key \"extra\""},
        {"{\"version\":1,\"id\":\"../etc\",\"state\":\"running\"}", "id: invalid vm id \"../etc\""},
        {"{\"version\":1,\"id\":\"vm2\",\"state\":\"running\"}", "id: names vm \"vm2\""},
        {"{\"version\":1,\"id\":\"vm1\",\"state\":\"running\",\"qemu\":{\"pid\":-5,\"start_time\":"
         "1}}",
         "qemu.pid: -5 is out of range"},
        {"{\"version\":1,\"id\":\"vm1\",\"state\":\"running\",\"config\":\"x\"}",
         "config: expected an object"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
        _cleanup_error_ sv_error *err = NULL;
        sv_vm_state *st = NULL;
        int r = sv_vm_state_parse(bad[i].text, strlen(bad[i].text), "vm1", &st, &err);
        if (r != -EINVAL || !strstr(sv_error_message(err), bad[i].msg))
            fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, r, err ? sv_error_message(err) : "",
                     bad[i].msg);
        assert_null(st);
    }
}

/* Concurrent read-modify-write cycles from several processes, with readers
 * that take no lock: no update is lost and no reader sees a torn file. */
static void test_concurrent_updates(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    sv_state_dir *d = create_vm(root, "vm1");
    sv_state_dir_free(d);
    enum { WRITERS = 6, ROUNDS = 40, READERS = 2 };
    pid_t pids[WRITERS + READERS];
    for (int i = 0; i < WRITERS + READERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] > 0)
            continue;
        alarm(60);
        sv_state_root *r = NULL;
        sv_state_dir *w = NULL;
        sv_error *err = NULL;
        if (sv_state_root_open(f->root, &r, &err) < 0 || sv_state_dir_open(r, "vm1", &w, &err) < 0)
            _exit(1);
        bool writer = i < WRITERS;
        for (int k = 0; k < (writer ? ROUNDS : ROUNDS * 3); k++) {
            sv_vm_state *st = NULL;
            if (writer && sv_state_dir_lock(w, 20000, &err) < 0)
                _exit(2);
            if (sv_vm_state_load(w, &st, &err) < 0)
                _exit(3);
            st->created++;
            if (writer && sv_vm_state_save(w, st, &err) < 0)
                _exit(4);
            sv_vm_state_free(st);
            sv_state_dir_unlock(w);
        }
        sv_state_dir_free(w);
        sv_state_root_free(r);
        _exit(0);
    }
    for (int i = 0; i < WRITERS + READERS; i++)
        assert_int_equal(child_status(pids[i]), 0);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_state_dir_open(root, "vm1", &d, &err), 0);
    _cleanup_vm_state_ sv_vm_state *st = NULL;
    assert_int_equal(sv_vm_state_load(d, &st, &err), 0);
    assert_int_equal(st->created, 1 + WRITERS * ROUNDS);
    assert_int_equal(count_entries(sv_state_dir_fd(d)), 2); /* no temporaries left */
    sv_state_dir_free(d);
}

/* ---- listing ------------------------------------------------------------------------ */

static void test_list_reports_corrupt(void **state)
{
    fx *f = *state;
    _cleanup_state_root_ sv_state_root *root = open_root(f);
    sv_state_dir *a = create_vm(root, "a");
    sv_state_dir *b = create_vm(root, "b");
    sv_state_dir *c = create_vm(root, "c");
    sv_state_dir *dd = create_vm(root, "d");
    put(sv_state_dir_fd(b), "state.json", "{\"version\":1,\"id\":\"b\",\"sta");
    unlinkat(sv_state_dir_fd(c), "state.json", 0);
    put(sv_state_dir_fd(dd), "state.json", "{\"version\":1,\"id\":\"a\",\"state\":\"running\"}");
    /* junk that is not a VM */
    int rfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    put(rfd, "file", "x");
    plant_symlink(f->outside, rfd, "link");
    assert_int_equal(mkdirat(rfd, ".hidden", 0700), 0);
    assert_int_equal(mkdirat(rfd, "bad name", 0700), 0);
    assert_int_equal(mkdirat(rfd, SV_TMP_PREFIX "e.123456", 0700), 0);

    _cleanup_error_ sv_error *err = NULL;
    sv_state_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(sv_state_list(root, &list, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].id, "a");
    assert_non_null(list[0].state);
    assert_null(list[0].error);
    assert_string_equal(list[1].id, "b");
    assert_null(list[1].state);
    assert_non_null(strstr(list[1].error, "vm b: "));
    assert_non_null(strstr(list[1].error, "/b/state.json: invalid JSON"));
    assert_string_equal(list[2].id, "c");
    assert_null(list[2].state);
    assert_non_null(strstr(list[2].error, "state.json: No such file or directory"));
    assert_string_equal(list[3].id, "d");
    assert_null(list[3].state);
    assert_non_null(strstr(list[3].error, "names vm \"a\""));
    sv_state_entries_free(list, n);

    /* a broken VM can still be removed */
    _cleanup_error_ sv_error *err2 = NULL;
    assert_int_equal(sv_state_dir_remove(b, &err2), 0);
    assert_int_equal(sv_state_dir_remove(c, &err2), 0);
    sv_state_dir_free(a);
    sv_state_dir_free(b);
    sv_state_dir_free(c);
    sv_state_dir_free(dd);
    close(rfd);
}

/* ---- processes ------------------------------------------------------------------------ */

static void test_pid_alive(void **state)
{
    (void)state;
    _cleanup_error_ sv_error *err = NULL;
    int64_t self = 0, parent = 0;
    assert_int_equal(sv_pid_start_time(getpid(), &self, &err), 0);
    assert_true(self > 0);
    assert_int_equal(sv_pid_alive(getpid(), self, &err), 1);
    assert_int_equal(sv_pid_alive(getpid(), self + 1, &err), 0);
    assert_int_equal(sv_pid_alive(0, 0, &err), 0);
    assert_int_equal(sv_pid_alive(-1, 0, &err), 0);

    /* a live unrelated process recorded with the wrong start time: gone */
    assert_int_equal(sv_pid_start_time(getppid(), &parent, &err), 0);
    assert_int_equal(sv_pid_alive(getppid(), parent, &err), 1);
    assert_int_equal(sv_pid_alive(getppid(), parent + 7, &err), 0);

    /* a child that exits: gone as a zombie, gone once reaped */
    int go[2];
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* never outlive a failed test */
        char c;
        close(go[1]);
        _exit(read(go[0], &c, 1) == 1 ? 0 : 1);
    }
    close(go[0]);
    int64_t child = 0;
    assert_int_equal(sv_pid_start_time(pid, &child, &err), 0);
    assert_int_equal(sv_pid_alive(pid, child, &err), 1);
    assert_int_equal(write(go[1], "x", 1), 1);
    close(go[1]);
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0); /* exited, not reaped */
    assert_int_equal(sv_pid_alive(pid, child, &err), 0);
    assert_int_equal(child_status(pid), 0);
    assert_int_equal(sv_pid_alive(pid, child, &err), 0);
    expect_error(sv_pid_start_time(pid, &child, &err), &err, ESRCH, "no process");
}

/* Signals go only to the process that was recorded, never to a pid's new owner. */
static void test_pid_signal_checks_identity(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* never outlive a failed test */
        for (;;)
            pause();
    }
    _cleanup_error_ sv_error *err = NULL;
    int64_t start = 0;
    assert_int_equal(sv_pid_start_time(pid, &start, &err), 0);
    expect_error(sv_pid_signal(pid, start + 1, SIGKILL, &err), &err, ESRCH,
                 "is gone (it exited, or its pid now belongs to another process)");
    usleep(50 * 1000);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* untouched */
    expect_error(sv_pid_open(pid, start + 1, &err), &err, ESRCH, "is gone");

    int pidfd = sv_pid_open(pid, start, &err);
    assert_true(pidfd >= 0);
    assert_int_equal(sv_pid_signal(pid, start, SIGKILL, &err), 0);
    struct pollfd p = {pidfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5000), 1); /* readable once it exited */
    close(pidfd);
    assert_int_equal(child_status(pid), 100 + SIGKILL);
    expect_error(sv_pid_signal(pid, start, SIGKILL, &err), &err, ESRCH, "is gone");
}

static void test_observed_state(void **state)
{
    (void)state;
    sv_vm_state st = {.state = SV_VM_RUNNING};
    assert_int_equal(sv_pid_start_time(getpid(), &st.qemu.start_time, NULL), 0);
    st.qemu.pid = getpid();
    assert_int_equal(sv_vm_state_observed(&st), SV_VM_RUNNING);
    st.state = SV_VM_PAUSED;
    assert_int_equal(sv_vm_state_observed(&st), SV_VM_PAUSED);
    st.qemu.start_time++; /* the pid now belongs to someone else */
    assert_int_equal(sv_vm_state_observed(&st), SV_VM_STOPPED);
    st.qemu.pid = 0;
    assert_int_equal(sv_vm_state_observed(&st), SV_VM_STOPPED);
    st.state = SV_VM_CREATED;
    assert_int_equal(sv_vm_state_observed(&st), SV_VM_CREATED);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_atomic_write_replaces_tmpfile),
        T(test_atomic_write_replaces_named),
        T(test_atomic_write_failure_keeps_old),
        T(test_atomic_write_real_failure),
        T(test_atomic_write_symlink_at_name),
        T(test_atomic_write_symlink_at_tmp_name),
        T(test_file_names_stay_in_dir),
        T(test_read_file),
        T(test_lock_contention),
        T(test_lock_released_on_death),
        T(test_lock_symlink_not_followed),
        T(test_lock_missing_without_create),
        T(test_id_validation),
        T(test_root_open),
        T(test_dir_create_open_remove),
        T(test_lock_waiter_sees_removal),
        T(test_remove_planted_symlinks),
        T(test_remove_refuses_foreign_entries),
        T(test_dir_symlink_not_followed),
        T(test_sweep_leftovers),
        T(test_state_roundtrip),
        T(test_state_parse_rejects),
        T(test_concurrent_updates),
        T(test_list_reports_corrupt),
        T(test_pid_alive),
        T(test_pid_signal_checks_identity),
        T(test_observed_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
