/*
 * The VM lifecycle (include/sandvm/vm.h) without QEMU: create, open, list,
 * status, delete and save on a temporary state root, with QEMU played by
 * this test binary itself (re-executed as "--fake-vmm", so that its command
 * line carries the marks the library looks for) and its monitor by the
 * scripted fake QMP server (tests/lib/fake_qmp.h). Also the detached spawn
 * (util/proc.h) and virtiofsd's option escaping.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/vm_config.h"
#include "fake_qmp.h"
#include "hypervisor.h"
#include "qemu/virtiofsd.h"
#include "sandvm/vm.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/lock.h"
#include "util/proc.h"
#include "util/sock.h"

static const char *self_exe;

/* ---- fixture -------------------------------------------------------------------- */

typedef struct fx {
    char *work;     /* private temp dir */
    char *root;     /* work/root: the state root */
    char *kernel;   /* work/kernel: an empty "kernel" */
    char *config;   /* a config that builds on any host (QEMU = /bin/true) */
    pid_t fakes[4]; /* fake VMM processes to reap */
    size_t n_fakes;
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
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(sv_private_dir_new(&f->work, NULL), 0);
    assert_true(asprintf(&f->root, "%s/root", f->work) > 0);
    assert_true(asprintf(&f->kernel, "%s/kernel", f->work) > 0);
    int fd = open(f->kernel, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_true(asprintf(&f->config,
                         "{\"arch\":\"x86_64\",\"path\":\"/bin/true\",\"accel\":\"tcg\","
                         "\"kernel\":\"%s\",\"memory\":128}",
                         f->kernel) > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    for (size_t i = 0; i < f->n_fakes; i++) {
        kill(f->fakes[i], SIGKILL);
        waitpid(f->fakes[i], NULL, 0);
    }
    rm_rf(f->work);
    free(f->work);
    free(f->root);
    free(f->kernel);
    free(f->config);
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

static void expect_error(int r, sv_error **err, int code, const char *needle)
{
    if (r != -code || !*err || !strstr(sv_error_message(*err), needle))
        fail_msg("got %d \"%s\", want %d with \"%s\"", r, *err ? sv_error_message(*err) : "", -code,
                 needle);
    sv_error_free(*err);
    *err = NULL;
}

static void ok(int r, sv_error **err)
{
    if (r < 0)
        fail_msg("%s", *err ? sv_error_message(*err) : "failed without a message");
}

static sv_vm *create(fx *f, const char *id)
{
    sv_vm_create_opts o = {.root = f->root, .config_json = f->config,
                           .config_len = strlen(f->config)};
    sv_vm *vm = NULL;
    sv_error *err = NULL;
    ok(sv_vm_create(id, &o, &vm, &err), &err);
    return vm;
}

static char *vm_path(fx *f, const char *id, const char *name)
{
    char *s = NULL;
    assert_true(asprintf(&s, "%s/%s%s%s", f->root, id, name ? "/" : "", name ? name : "") > 0);
    return s;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A fake VMM: this binary re-executed with `arg` `value` on its command
 * line ("-pidfile" <dir>/qemu.pid makes it pass for the VM's QEMU). */
static pid_t fake_vmm(fx *f, const char *arg, const char *value)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(self_exe, self_exe, "--fake-vmm", arg, value, (char *)NULL);
        _exit(127);
    }
    f->fakes[f->n_fakes++] = pid;
    /* wait until it runs the new image (its command line is set at exec) */
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    for (int i = 0; i < 2000; i++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        if (fd >= 0)
            close(fd);
        if (n > 0 && memmem(buf, (size_t)n, "--fake-vmm", 10))
            return pid;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("fake vmm did not start");
    return -1;
}

/* Whether our child `pid` is still running (not reaped, not dead). */
static bool child_running(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

/* Rewrites the VM's state: `state`, QEMU = `pid` (0: none), paths recorded. */
static void set_state(fx *f, const char *id, sv_vm_run_state state, pid_t qemu, pid_t virtiofsd)
{
    sv_error *err = NULL;
    _cleanup_state_root_ sv_state_root *root = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    ok(sv_state_root_open(f->root, &root, &err), &err);
    ok(sv_state_dir_open(root, id, &d, &err), &err);
    ok(sv_state_dir_lock(d, 1000, &err), &err);
    _cleanup_vm_state_ sv_vm_state *st = NULL;
    ok(sv_vm_state_load(d, &st, &err), &err);
    st->state = state;
    st->qemu = (sv_proc_ident){0};
    st->virtiofsd = (sv_proc_ident){0};
    if (qemu) {
        st->qemu.pid = qemu;
        ok(sv_pid_start_time(qemu, &st->qemu.start_time, &err), &err);
    }
    if (virtiofsd) {
        st->virtiofsd.pid = virtiofsd;
        ok(sv_pid_start_time(virtiofsd, &st->virtiofsd.start_time, &err), &err);
    }
    free(st->paths.dir);
    st->paths.dir = strdup(sv_state_dir_path(d));
    ok(sv_vm_state_save(d, st, &err), &err);
}

static sv_vm_info *status(sv_vm *vm)
{
    sv_vm_info *info = NULL;
    sv_error *err = NULL;
    ok(sv_vm_status(vm, &info, &err), &err);
    return info;
}

/* The fake VMM of VM `id`: a process whose command line names its pid file. */
static pid_t fake_qemu(fx *f, const char *id)
{
    _cleanup_free_ char *pidfile = vm_path(f, id, "qemu.pid");
    return fake_vmm(f, "-pidfile", pidfile);
}

/* ---- create, open, list, delete ---------------------------------------------------------- */

static void test_create_open_list_delete(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = create(f, "web1");
    assert_string_equal(sv_vm_id(vm), "web1");

    /* the record: created, with the config, the backend and the arch */
    sv_vm_info *info = status(vm);
    assert_int_equal(info->state, SV_VM_CREATED);
    assert_false(info->crashed);
    assert_string_equal(info->arch, "x86_64");
    assert_string_equal(info->hypervisor, "qemu");
    assert_int_equal(info->vmm_pid, 0);
    assert_null(info->from);
    _cleanup_free_ char *dir = vm_path(f, "web1", NULL);
    assert_string_equal(info->dir, dir);
    assert_true(info->created > 0);
    sv_vm_info_free(info);
    _cleanup_free_ char *lock = vm_path(f, "web1", "exec.lock");
    assert_true(exists(lock));

    /* the same id again */
    sv_vm_create_opts o = {.root = f->root, .config_json = f->config,
                           .config_len = strlen(f->config)};
    sv_vm *dup = NULL;
    expect_error(sv_vm_create("web1", &o, &dup, &err), &err, EEXIST, "vm web1 already exists");
    assert_null(dup);

    sv_vm *vm2 = create(f, "db");
    sv_vm_info *list = NULL;
    size_t n = 0;
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "db"); /* sorted */
    assert_string_equal(list[1].id, "web1");
    assert_int_equal(list[1].state, SV_VM_CREATED);
    assert_null(list[1].error);
    sv_vm_info_list_free(list, n);

    /* open by id; a missing one */
    sv_vm *again = NULL;
    ok(sv_vm_open(f->root, "web1", &again, &err), &err);
    assert_string_equal(sv_vm_id(again), "web1");
    sv_vm *none = NULL;
    expect_error(sv_vm_open(f->root, "nope", &none, &err), &err, ENOENT, "vm nope does not exist");

    /* calls that need a running VM */
    expect_error(sv_vm_pause(vm, &err), &err, EINVAL, "vm web1 is not running (it is created)");
    int64_t *tids = NULL;
    size_t nt = 0;
    expect_error(sv_vm_vcpu_threads(vm, &tids, &nt, &err), &err, EINVAL, "is not running");
    sv_vm_stop_opts so = {0};
    expect_error(sv_vm_stop(vm, &so, &err), &err, EALREADY, "vm web1 is not running");
    const char *argv[] = {"true", NULL};
    sv_exec_opts eo = {.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
                       .cancel_fd = -1};
    int es;
    expect_error(sv_vm_exec(vm, &eo, &es, &err), &err, EINVAL, "vm web1 is not running");

    /* delete: the directory goes, the other handle then finds nothing */
    ok(sv_vm_delete(vm, false, &err), &err);
    assert_false(exists(dir));
    expect_error(sv_vm_delete(again, false, &err), &err, ENOENT, "web1");
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(n, 1);
    sv_vm_info_list_free(list, n);
    sv_vm_close(again);
    sv_vm_close(vm);
    sv_vm_close(vm2);
}

static void test_create_rejects(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = NULL;
    sv_vm_create_opts o = {.root = f->root, .config_json = f->config,
                           .config_len = strlen(f->config)};
    /* ids */
    expect_error(sv_vm_create("../x", &o, &vm, &err), &err, EINVAL, "must not start with '.'");
    expect_error(sv_vm_create("a/b", &o, &vm, &err), &err, EINVAL, "'/' is not allowed");
    expect_error(sv_vm_create("", &o, &vm, &err), &err, EINVAL, "it is empty");
    /* roots */
    sv_vm_create_opts rel = o;
    rel.root = "relative/root";
    expect_error(sv_vm_create("a", &rel, &vm, &err), &err, EINVAL, "not an absolute path");
    _cleanup_free_ char *link = NULL;
    assert_true(asprintf(&link, "%s/link", f->work) > 0);
    assert_int_equal(symlink(f->work, link), 0);
    sv_vm_create_opts viasym = o;
    viasym.root = link;
    expect_error(sv_vm_create("a", &viasym, &vm, &err), &err, ELOOP, "symlink");
    /* configs */
    const char *bad = "{\"arch\":\"x86_64\",\"path\":\"/bin/true\",\"bogus\":1}";
    sv_vm_create_opts b = {.root = f->root, .config_json = bad, .config_len = strlen(bad)};
    expect_error(sv_vm_create("a", &b, &vm, &err), &err, EINVAL, "bogus");
    const char *nokernel = "{\"arch\":\"x86_64\",\"path\":\"/bin/true\",\"kernel\":\"/nonexistent/"
                           "vmlinuz\"}";
    b.config_json = nokernel;
    b.config_len = strlen(nokernel);
    expect_error(sv_vm_create("a", &b, &vm, &err), &err, ENOENT, "kernel: /nonexistent/vmlinuz");
    _cleanup_free_ char *noqemu = NULL;
    assert_true(asprintf(&noqemu, "{\"arch\":\"x86_64\",\"path\":\"/nonexistent/qemu\","
                                  "\"kernel\":\"%s\"}",
                         f->kernel) > 0);
    b.config_json = noqemu;
    b.config_len = strlen(noqemu);
    expect_error(sv_vm_create("a", &b, &vm, &err), &err, ENOENT, "path");
    /* template memory and virtio-fs exclude each other */
    _cleanup_free_ char *vfs = NULL;
    assert_true(asprintf(&vfs, "{\"arch\":\"x86_64\",\"path\":\"/bin/true\",\"kernel\":\"%s\","
                               "\"shared_fs\":\"virtio-fs\",\"shared_dir\":\"%s\","
                               "\"virtio_fs_daemon\":\"/bin/true\"}",
                         f->kernel, f->work) > 0);
    sv_vm_create_opts t = {.root = f->root, .config_json = vfs, .config_len = strlen(vfs),
                           .template_memory = true};
    expect_error(sv_vm_create("a", &t, &vm, &err), &err, EINVAL, "template_memory");
    /* virtiofsd's cache modes */
    _cleanup_free_ char *meta = NULL;
    assert_true(asprintf(&meta, "{\"arch\":\"x86_64\",\"path\":\"/bin/true\",\"kernel\":\"%s\","
                                "\"shared_fs\":\"virtio-fs\",\"shared_dir\":\"%s\","
                                "\"virtio_fs_daemon\":\"/bin/true\",\"virtio_fs_cache\":"
                                "\"metadata\"}",
                         f->kernel, f->work) > 0);
    b.config_json = meta;
    b.config_len = strlen(meta);
    expect_error(sv_vm_create("a", &b, &vm, &err), &err, EINVAL, "virtio_fs_cache: \"metadata\"");
    /* from: not a saved vm */
    sv_vm_create_opts fr = {.root = f->root, .from = f->work};
    expect_error(sv_vm_create("a", &fr, &vm, &err), &err, ENOENT, "from: not a saved vm");
    fr.config_json = f->config;
    fr.config_len = strlen(f->config);
    expect_error(sv_vm_create("a", &fr, &vm, &err), &err, EINVAL, "exclude each other");
    /* nothing was left behind */
    _cleanup_free_ char *a = vm_path(f, "a", NULL);
    assert_false(exists(a));
    assert_null(vm);
}

/* ---- locks --------------------------------------------------------------------------- */

static void test_busy_lock(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = create(f, "busy");
    /* another holder of the VM's lock */
    _cleanup_state_root_ sv_state_root *root = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    ok(sv_state_root_open(f->root, &root, &err), &err);
    ok(sv_state_dir_open(root, "busy", &d, &err), &err);
    ok(sv_state_dir_lock(d, 0, &err), &err);

    sv_vm_set_lock_timeout(vm, 50);
    sv_vm_info *info = NULL;
    expect_error(sv_vm_status(vm, &info, &err), &err, EBUSY,
                 "vm busy is busy (locked by another sandvm)");
    expect_error(sv_vm_start(vm, NULL, &err), &err, EBUSY, "is busy");
    expect_error(sv_vm_delete(vm, true, &err), &err, EBUSY, "is busy");
    /* list takes no lock */
    sv_vm_info *list = NULL;
    size_t n = 0;
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].state, SV_VM_CREATED);
    sv_vm_info_list_free(list, n);

    sv_state_dir_unlock(d);
    info = status(vm);
    assert_int_equal(info->state, SV_VM_CREATED);
    sv_vm_info_free(info);
    sv_vm_close(vm);
}

/* ---- dead and foreign pids ---------------------------------------------------------------- */

static void test_dead_vmm_is_crashed(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = create(f, "dead");
    /* a QEMU that has died: its pid names no process any more */
    pid_t pid = fake_qemu(f, "dead");
    set_state(f, "dead", SV_VM_RUNNING, pid, 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    f->n_fakes--;
    _cleanup_free_ char *log = vm_path(f, "dead", "qemu.log");
    int fd = open(log, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);

    sv_vm_info *info = status(vm);
    assert_int_equal(info->state, SV_VM_STOPPED);
    assert_true(info->crashed);
    assert_int_equal(info->vmm_pid, 0);
    sv_vm_info_free(info);
    sv_vm_info *list = NULL;
    size_t n = 0;
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(list[0].state, SV_VM_STOPPED);
    assert_true(list[0].crashed);
    sv_vm_info_list_free(list, n);
    expect_error(sv_vm_pause(vm, &err), &err, EINVAL, "vm dead is not running (it is crashed)");

    /* delete needs no force for a dead VM, and cleans everything */
    ok(sv_vm_delete(vm, false, &err), &err);
    _cleanup_free_ char *dir = vm_path(f, "dead", NULL);
    assert_false(exists(dir));
    sv_vm_close(vm);
}

static void test_foreign_pid_never_signalled(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = create(f, "foreign");
    /* a live process that is not this VM's QEMU (right pid and start time,
     * but not its command line) */
    pid_t other = fake_vmm(f, "-pidfile", "/elsewhere/qemu.pid");
    set_state(f, "foreign", SV_VM_RUNNING, other, 0);
    /* ... also named by the VM's pid file */
    _cleanup_free_ char *pidfile = vm_path(f, "foreign", "qemu.pid");
    FILE *fp = fopen(pidfile, "w");
    assert_non_null(fp);
    fprintf(fp, "%d\n", (int)other);
    fclose(fp);

    sv_vm_info *info = status(vm);
    assert_int_equal(info->state, SV_VM_STOPPED);
    assert_true(info->crashed);
    assert_int_equal(info->vmm_pid, 0);
    sv_vm_info_free(info);
    int64_t *pids = NULL;
    size_t n = 9;
    ok(sv_vm_pids(vm, &pids, &n, &err), &err);
    assert_int_equal(n, 0);
    free(pids);

    sv_vm_stop_opts so = {.force = true, .keep = true};
    ok(sv_vm_stop(vm, &so, &err), &err);
    assert_true(child_running(other));
    info = status(vm);
    assert_int_equal(info->state, SV_VM_STOPPED);
    assert_false(info->crashed);
    sv_vm_info_free(info);
    assert_false(exists(pidfile));
    ok(sv_vm_delete(vm, true, &err), &err);
    assert_true(child_running(other));
    sv_vm_close(vm);
}

/* A process whose command line names the VM's pid file is its QEMU: it is
 * reported running, and ended by delete --force; found through the pid file
 * alone when the record lost it (a start killed between spawn and record). */
static void test_pidfile_verification(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = create(f, "ours");
    pid_t qemu = fake_qemu(f, "ours");
    set_state(f, "ours", SV_VM_RUNNING, qemu, 0);

    sv_vm_info *list = NULL;
    size_t n = 0;
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(list[0].state, SV_VM_RUNNING);
    assert_false(list[0].crashed);
    assert_int_equal(list[0].vmm_pid, qemu);
    sv_vm_info_list_free(list, n);
    int64_t *pids = NULL;
    ok(sv_vm_pids(vm, &pids, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_int_equal(pids[0], qemu);
    free(pids);

    expect_error(sv_vm_delete(vm, false, &err), &err, EINVAL, "vm ours is running; stop it first");
    assert_true(child_running(qemu));
    ok(sv_vm_delete(vm, true, &err), &err);
    int st;
    assert_int_equal(waitpid(qemu, &st, 0), qemu);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    f->n_fakes--;
    sv_vm_close(vm);

    /* the record lost the pid: only the pid file names it */
    vm = create(f, "lost");
    qemu = fake_qemu(f, "lost");
    _cleanup_free_ char *pidfile = vm_path(f, "lost", "qemu.pid");
    FILE *fp = fopen(pidfile, "w");
    assert_non_null(fp);
    fprintf(fp, "%d\n", (int)qemu);
    fclose(fp);
    ok(sv_vm_delete(vm, false, &err), &err);
    assert_int_equal(waitpid(qemu, &st, 0), qemu);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    f->n_fakes--;
    sv_vm_close(vm);
}

/* A VM whose virtiofsd died has lost its shared directory: crashed. */
static void test_dead_virtiofsd_is_crashed(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    _cleanup_free_ char *cfg = NULL;
    assert_true(asprintf(&cfg, "{\"arch\":\"x86_64\",\"path\":\"/bin/true\",\"kernel\":\"%s\","
                               "\"shared_fs\":\"virtio-fs\",\"shared_dir\":\"%s\","
                               "\"virtio_fs_daemon\":\"/bin/true\"}",
                         f->kernel, f->work) > 0);
    sv_vm_create_opts o = {.root = f->root, .config_json = cfg, .config_len = strlen(cfg)};
    sv_vm *vm = NULL;
    ok(sv_vm_create("vfs", &o, &vm, &err), &err);
    pid_t qemu = fake_qemu(f, "vfs");
    sv_vm_config *config = NULL;
    ok(sv_vm_config_parse(cfg, strlen(cfg), &config, &err), &err);
    _cleanup_free_ char *source = sv_virtiofsd_source_arg(config);
    sv_vm_config_free(config);
    pid_t vfsd = fake_vmm(f, "-o", source);
    set_state(f, "vfs", SV_VM_RUNNING, qemu, vfsd);

    sv_vm_info *list = NULL;
    size_t n = 0;
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(list[0].state, SV_VM_RUNNING);
    assert_int_equal(list[0].virtiofsd_pid, vfsd);
    sv_vm_info_list_free(list, n);
    int64_t *pids = NULL;
    ok(sv_vm_pids(vm, &pids, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(pids[0], qemu); /* the VMM first */
    assert_int_equal(pids[1], vfsd);
    free(pids);

    kill(vfsd, SIGKILL);
    waitpid(vfsd, NULL, 0);
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(list[0].state, SV_VM_STOPPED);
    assert_true(list[0].crashed);
    assert_int_equal(list[0].vmm_pid, qemu);
    sv_vm_info_list_free(list, n);
    /* stop ends the QEMU that is left */
    sv_vm_stop_opts kill9 = {.force = true};
    ok(sv_vm_stop(vm, &kill9, &err), &err);
    int st;
    assert_int_equal(waitpid(qemu, &st, 0), qemu);
    assert_true(WIFSIGNALED(st));
    f->n_fakes = 0;
    _cleanup_free_ char *dir = vm_path(f, "vfs", NULL);
    assert_false(exists(dir));
    sv_vm_close(vm);
}

/* ---- QMP against the fake server ----------------------------------------------------------- */

/* A monitor that never greets: status fails with ETIMEDOUT naming the VM
 * and the command within the VMM timeout (+1 s), and leaves the lock free. */
static void test_monitor_never_greets(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = create(f, "mute");
    pid_t qemu = fake_qemu(f, "mute");
    set_state(f, "mute", SV_VM_RUNNING, qemu, 0);
    _cleanup_free_ char *sock = vm_path(f, "mute", "qmp.sock");
    static const fq_step silent[] = {FQ_HOLD_OPEN()};
    fake_qmp *fq = fake_qmp_start_path(silent, SV_ARRAY_SIZE(silent), sock);
    assert_non_null(fq);

    sv_vm_set_vmm_timeout(vm, 300);
    sv_vm_info *info = NULL;
    int64_t t0 = sv_now_ms();
    expect_error(sv_vm_status(vm, &info, &err), &err, ETIMEDOUT,
                 "vm mute: qmp query-status: timed out waiting for the QMP greeting");
    assert_true(sv_now_ms() - t0 < 300 + 1000);
    assert_null(info);
    assert_null(fake_qmp_finish(fq));
    fake_qmp_free(fq);

    /* stop too: ETIMEDOUT, nothing changed (a plain stop never kills) */
    fq = fake_qmp_start_path(silent, SV_ARRAY_SIZE(silent), sock);
    assert_non_null(fq);
    t0 = sv_now_ms();
    expect_error(sv_vm_stop(vm, NULL, &err), &err, ETIMEDOUT,
                 "vm mute: qmp query-status: timed out waiting for the QMP greeting");
    assert_true(sv_now_ms() - t0 < 300 + 1000);
    assert_null(fake_qmp_finish(fq));
    fake_qmp_free(fq);
    sv_vm_info *list = NULL;
    size_t n = 0;
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(list[0].state, SV_VM_RUNNING);
    sv_vm_info_list_free(list, n);

    /* the lock is free again: taking it does not wait */
    _cleanup_state_root_ sv_state_root *root = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    ok(sv_state_root_open(f->root, &root, &err), &err);
    ok(sv_state_dir_open(root, "mute", &d, &err), &err);
    ok(sv_state_dir_lock(d, 0, &err), &err);
    sv_state_dir_unlock(d);
    /* and the QEMU was not touched */
    assert_true(child_running(qemu));
    ok(sv_vm_delete(vm, true, &err), &err);
    f->n_fakes = 0;
    waitpid(qemu, NULL, 0);
    sv_vm_close(vm);
}

static void test_pause_exec_paused(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = create(f, "pz");
    pid_t qemu = fake_qemu(f, "pz");
    set_state(f, "pz", SV_VM_RUNNING, qemu, 0);
    _cleanup_free_ char *sock = vm_path(f, "pz", "qmp.sock");
    static const fq_step pause[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\":\"running\",\"singlestep\":false,\"running\":true}"),
        FQ_EXPECT_NOARGS("stop"),
        FQ_OK(),
    };
    fake_qmp *fq = fake_qmp_start_path(pause, SV_ARRAY_SIZE(pause), sock);
    assert_non_null(fq);
    ok(sv_vm_pause(vm, &err), &err);
    assert_null(fake_qmp_finish(fq));
    fake_qmp_free(fq);

    /* recorded paused: exec refuses without asking QEMU */
    sv_vm_info *list = NULL;
    size_t n = 0;
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(list[0].state, SV_VM_PAUSED);
    sv_vm_info_list_free(list, n);
    const char *argv[] = {"true", NULL};
    sv_exec_opts eo = {.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1,
                       .cancel_fd = -1};
    int es;
    expect_error(sv_vm_exec(vm, &eo, &es, &err), &err, EINVAL, "vm pz is paused; resume it first");
    /* a raw QMP command that QEMU refuses */
    static const fq_step raw[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("bogus"),
        FQ_ERR("CommandNotFound", "The command bogus has not been found"),
    };
    fq = fake_qmp_start_path(raw, SV_ARRAY_SIZE(raw), sock);
    assert_non_null(fq);
    char *reply = NULL;
    expect_error(sv_vm_qmp(vm, "{\"execute\":\"bogus\"}", &reply, &err), &err, EIO,
                 "CommandNotFound");
    assert_null(reply);
    assert_null(fake_qmp_finish(fq));
    fake_qmp_free(fq);
    expect_error(sv_vm_qmp(vm, "{\"execute\":\"x\",\"id\":1}", &reply, &err), &err, EINVAL, "id");

    ok(sv_vm_delete(vm, true, &err), &err);
    f->n_fakes = 0;
    waitpid(qemu, NULL, 0);
    sv_vm_close(vm);
}

/* ---- save --------------------------------------------------------------------------------- */

static void test_save_dir_validation(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    sv_vm *vm = create(f, "sv");
    _cleanup_free_ char *newdir = NULL, *existing = NULL, *link = NULL, *target = NULL,
                        *noparent = NULL;
    assert_true(asprintf(&newdir, "%s/saved", f->work) > 0);
    assert_true(asprintf(&existing, "%s/existing", f->work) > 0);
    assert_true(asprintf(&link, "%s/link", f->work) > 0);
    assert_true(asprintf(&target, "%s/target", f->work) > 0);
    assert_true(asprintf(&noparent, "%s/no/such", f->work) > 0);

    /* a VM that is not running cannot be saved: nothing is created */
    expect_error(sv_vm_save(vm, newdir, &err), &err, EINVAL, "vm sv is not running");
    assert_false(exists(newdir));

    pid_t qemu = fake_qemu(f, "sv");
    set_state(f, "sv", SV_VM_RUNNING, qemu, 0);
    assert_int_equal(mkdir(existing, 0700), 0);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, link), 0);
    expect_error(sv_vm_save(vm, "", &err), &err, EINVAL, "no directory given");
    expect_error(sv_vm_save(vm, existing, &err), &err, EEXIST, "already exists");
    expect_error(sv_vm_save(vm, link, &err), &err, EEXIST, "already exists");
    expect_error(sv_vm_save(vm, noparent, &err), &err, ENOENT, "creating");
    DIR *d = opendir(target); /* the symlink's target stays empty */
    assert_non_null(d);
    int entries = 0;
    while (readdir(d))
        entries++;
    closedir(d);
    assert_int_equal(entries, 2);

    /* a save that fails in QEMU leaves no directory behind */
    _cleanup_free_ char *sock = vm_path(f, "sv", "qmp.sock");
    static const fq_step refuse[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\":\"running\",\"singlestep\":false,\"running\":true}"),
        FQ_EXPECT_NOARGS("stop"),
        FQ_OK(),
        FQ_EXPECT_CMD("migrate-set-capabilities"),
        FQ_OK(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"sv-save\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("migrate", "{\"uri\":\"fd:sv-save\"}"),
        FQ_ERR("GenericError", "a device blocks migration"),
    };
    fake_qmp *fq = fake_qmp_start_path(refuse, SV_ARRAY_SIZE(refuse), sock);
    assert_non_null(fq);
    expect_error(sv_vm_save(vm, newdir, &err), &err, EIO, "a device blocks migration");
    assert_null(fake_qmp_finish(fq));
    fake_qmp_free(fq);
    assert_false(exists(newdir));

    /* a save that completes: config + state, the VM left paused */
    static const fq_step save[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\":\"paused\",\"singlestep\":false,\"running\":false}"),
        FQ_EXPECT_ARGS("migrate-set-capabilities",
                       "{\"capabilities\":[{\"capability\":\"events\",\"state\":true},"
                       "{\"capability\":\"x-ignore-shared\",\"state\":false}]}"),
        FQ_OK(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"sv-save\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("migrate", "{\"uri\":\"fd:sv-save\"}"),
        FQ_OK(),
        FQ_EV("MIGRATION", "{\"status\":\"setup\"}"),
        FQ_EV("MIGRATION", "{\"status\":\"active\"}"),
        FQ_EV("MIGRATION", "{\"status\":\"completed\"}"),
    };
    fq = fake_qmp_start_path(save, SV_ARRAY_SIZE(save), sock);
    assert_non_null(fq);
    ok(sv_vm_save(vm, newdir, &err), &err);
    assert_null(fake_qmp_finish(fq));
    fake_qmp_free(fq);
    struct stat st;
    assert_int_equal(stat(newdir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    _cleanup_free_ char *cfg = NULL, *statefile = NULL;
    assert_true(asprintf(&cfg, "%s/config.json", newdir) > 0);
    assert_true(asprintf(&statefile, "%s/state", newdir) > 0);
    assert_int_equal(stat(statefile, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    sv_vm_info *list = NULL;
    size_t n = 0;
    ok(sv_vm_list(f->root, &list, &n, &err), &err);
    assert_int_equal(list[0].state, SV_VM_PAUSED);
    sv_vm_info_list_free(list, n);

    /* a VM created from it takes its config and remembers where it came from */
    sv_vm_create_opts fo = {.root = f->root, .from = newdir};
    sv_vm *clone = NULL;
    ok(sv_vm_create("clone", &fo, &clone, &err), &err);
    sv_vm_info *info = status(clone);
    assert_string_equal(info->from, newdir);
    assert_false(info->template_memory);
    assert_string_equal(info->arch, "x86_64");
    sv_vm_info_free(info);
    ok(sv_vm_delete(clone, false, &err), &err);
    sv_vm_close(clone);

    ok(sv_vm_delete(vm, true, &err), &err);
    f->n_fakes = 0;
    waitpid(qemu, NULL, 0);
    sv_vm_close(vm);
}

/* ---- the detached spawn ------------------------------------------------------------------ */

static void test_spawn_detached(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    _cleanup_free_ char *pidpath = NULL;
    assert_true(asprintf(&pidpath, "%s/daemon.pid", f->work) > 0);
    int pidfd_file = open(pidpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(pidfd_file >= 0);
    char *argv[] = {"sleep", "1000", NULL};
    sv_detached_opts o = {.stderr_fd = -1, .pid_fd = pidfd_file};
    sv_detached d;
    ok(sv_proc_spawn_detached(argv, &o, &d, &err), &err);
    close(pidfd_file);
    /* not our child, in a session of its own, named by its start time */
    assert_int_equal(waitpid(d.pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(getsid(d.pid), d.pid);
    int64_t start;
    ok(sv_pid_start_time(d.pid, &start, &err), &err);
    assert_int_equal(start, d.start_time);
    FILE *fp = fopen(pidpath, "r");
    assert_non_null(fp);
    int written = 0;
    assert_int_equal(fscanf(fp, "%d", &written), 1);
    fclose(fp);
    assert_int_equal(written, d.pid);
    /* it has nothing open but stdin/stdout/stderr */
    char fddir[64];
    snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)d.pid);
    DIR *dir = opendir(fddir);
    assert_non_null(dir);
    int nfd = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.')
            nfd++;
    closedir(dir);
    assert_int_equal(nfd, 3);
    /* the pidfd ends when it does */
    struct pollfd p = {d.pidfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 0);
    sv_pidfd_kill(d.pidfd);
    assert_int_equal(poll(&p, 1, 5000), 1);
    close(d.pidfd);

    char *missing[] = {"/nonexistent/daemon", NULL};
    sv_detached_opts none = {.stderr_fd = -1, .pid_fd = -1};
    expect_error(sv_proc_spawn_detached(missing, &none, &d, &err), &err, ENOENT,
                 "/nonexistent/daemon");
    char *notexec[] = {f->kernel, NULL}; /* not executable: execve fails in the daemon */
    expect_error(sv_proc_spawn_detached(notexec, &none, &d, &err), &err, EACCES, "executing");
}

/* Waiting for a lock ends when the cancel fd becomes readable. */
static void test_lock_wait_cancel(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    int dfd = open(f->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    int held = sv_lock_acquire(dfd, "l", "thing", SV_LOCK_CREATE, 0, &err);
    assert_true(held >= 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    /* not cancelled: a bounded wait times out */
    expect_error(sv_lock_acquire_cancel(dfd, "l", "thing", 0, 50, p[0], &err), &err, ETIMEDOUT,
                 "thing is busy");
    /* cancelled: an unbounded wait ends */
    assert_int_equal(write(p[1], "x", 1), 1);
    expect_error(sv_lock_acquire_cancel(dfd, "l", "thing", 0, -1, p[0], &err), &err, ECANCELED,
                 "thing: cancelled while waiting for its lock");
    sv_lock_release(&held);
    int got = sv_lock_acquire_cancel(dfd, "l", "thing", 0, -1, p[0], &err);
    assert_true(got >= 0);
    sv_lock_release(&got);
    close(p[0]);
    close(p[1]);
    close(dfd);
}

/* ---- virtiofsd ------------------------------------------------------------------------- */

/* libfuse's option-group parsing (fuse_opt.c, process_real_option_group(),
 * as in QEMU 7.2's virtiofsd): split at ',', '\' escapes the next byte,
 * "\NNN" is an octal byte. Returns the options, NUL-separated. */
static size_t fuse_split(const char *group, char *out)
{
    size_t n = 0, count = 0;
    const char *s = group;
    for (;;) {
        if (*s == '\0' || *s == ',') {
            out[n++] = '\0';
            count++;
            if (!*s)
                return count;
            s++;
            continue;
        }
        if (s[0] == '\\' && s[1]) {
            s++;
            if (s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
                s[2] <= '7') {
                out[n++] = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
                s += 3;
                continue;
            }
        }
        out[n++] = *s++;
    }
}

static void test_virtiofsd_escaping(void **state)
{
    (void)state;
    static const char *const dirs[] = {
        "/srv/plain",
        "/srv/a,allow_root",
        "/srv/a\\,b",
        "/srv/back\\slash\\",
        "/srv/\\123octal",
        "/srv/x,source=/,cache=always",
        "/srv/sp ace=eq\"uote'\n",
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(dirs); i++) {
        sv_vm_config vm;
        sv_vm_config_init_defaults(&vm, SV_VM_ARCH_X86_64);
        vm.shared_fs = SV_VM_SHARED_FS_VIRTIO_FS;
        vm.shared_dir = dirs[i];
        sv_argv *a = NULL;
        sv_error *err = NULL;
        ok(sv_virtiofsd_argv(&vm, 3, &a, &err), &err);
        /* argv: daemon -f --fd=3 -o source=... -o cache=auto */
        assert_int_equal(a->n, 7);
        assert_string_equal(a->v[0], SV_VM_DEFAULT_VIRTIOFSD);
        assert_string_equal(a->v[2], "--fd=3");
        assert_string_equal(a->v[3], "-o");
        assert_string_equal(a->v[5], "-o");
        assert_string_equal(a->v[6], "cache=auto");
        /* virtiofsd reads back one option: source=<exactly the directory> */
        char out[512];
        size_t count = fuse_split(a->v[4], out);
        if (count != 1)
            fail_msg("%s: split into %zu options", dirs[i], count);
        assert_true(strncmp(out, "source=", 7) == 0);
        assert_string_equal(out + 7, dirs[i]);
        sv_argv_free(a);
    }
    _cleanup_free_ char *e = sv_virtiofsd_escape("a,b\\c");
    assert_string_equal(e, "a\\,b\\\\c");

    sv_vm_config vm;
    sv_vm_config_init_defaults(&vm, SV_VM_ARCH_X86_64);
    vm.shared_fs = SV_VM_SHARED_FS_VIRTIO_FS;
    vm.shared_dir = "/srv";
    const char *extra[] = {"--thread-pool-size=1", NULL};
    vm.virtio_fs_extra_args = extra;
    vm.virtio_fs_cache = SV_VM_FS_CACHE_NEVER;
    sv_argv *a = NULL;
    sv_error *err = NULL;
    ok(sv_virtiofsd_argv(&vm, 3, &a, &err), &err);
    assert_string_equal(a->v[6], "cache=none");
    assert_string_equal(a->v[7], "--thread-pool-size=1");
    sv_argv_free(a);
    vm.virtio_fs_cache = SV_VM_FS_CACHE_METADATA;
    expect_error(sv_virtiofsd_argv(&vm, 3, &a, &err), &err, EINVAL, "virtio_fs_cache");
}

/* The fake VMM: waits to be killed. */
static _Noreturn void fake_vmm_main(void)
{
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--fake-vmm") == 0)
        fake_vmm_main();
    self_exe = "/proc/self/exe";
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        self_exe = exe;
    }
    signal(SIGPIPE, SIG_IGN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_create_open_list_delete),
        T(test_create_rejects),
        T(test_busy_lock),
        T(test_dead_vmm_is_crashed),
        T(test_foreign_pid_never_signalled),
        T(test_pidfile_verification),
        T(test_dead_virtiofsd_is_crashed),
        T(test_monitor_never_greets),
        T(test_pause_exec_paused),
        T(test_save_dir_validation),
        T(test_spawn_detached),
        T(test_lock_wait_cancel),
        T(test_virtiofsd_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
