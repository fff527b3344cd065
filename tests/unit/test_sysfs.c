/*
 * Host path resolution (src/devices/sysfs.c) and VFIO group enumeration
 * (src/devices/vfio.c) against fake sysfs trees generated here, laid out as
 * the kernel lays out the real one (relative symlinks from /sys/dev,
 * /sys/block, /sys/bus/pci/devices and the IOMMU groups into /sys/devices).
 * Every tree also has an "outside" directory next to it, the target of the
 * symlink-escape tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/device.h"
#include "devices/sysfs.h"
#include "devices/vfio.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/sock.h"

/* ---- fixture: <dir>/root is the sysfs root, <dir>/outside is not ---- */

typedef struct fx {
    char *dir;
    char *root;
    char *outside;
    sv_sysfs *sysfs;
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

static char *cat(const char *a, const char *b)
{
    char *s = NULL;
    assert_true(asprintf(&s, "%s/%s", a, b) > 0);
    return s;
}

static void mkdir_p(const char *path)
{
    char *p = strdup(path);
    assert_non_null(p);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                fail_msg("mkdir %s: %s", p, strerror(errno));
            *s = '/';
        }
    }
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", p, strerror(errno));
    free(p);
}

static void parent_dir(const char *path)
{
    char *p = strdup(path);
    assert_non_null(p);
    *strrchr(p, '/') = '\0';
    mkdir_p(p);
    free(p);
}

/* Writes `len` bytes at <root>/<rel> (directories created). */
static void put_n(const fx *f, const char *rel, const void *data, size_t len)
{
    char *path = cat(f->root, rel);
    parent_dir(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    free(path);
}

static void put(const fx *f, const char *rel, const char *text)
{
    put_n(f, rel, text, strlen(text));
}

static void putf(const fx *f, const char *rel, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void putf(const fx *f, const char *rel, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    put(f, rel, s);
    free(s);
}

/* A symlink <root>/<rel> -> target. */
static void link_to(const fx *f, const char *rel, const char *target)
{
    char *path = cat(f->root, rel);
    parent_dir(path);
    unlink(path);
    if (symlink(target, path) < 0)
        fail_msg("symlink %s: %s", path, strerror(errno));
    free(path);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    sv_error *err = NULL;
    if (sv_private_dir_new(&f->dir, &err) < 0)
        fail_msg("%s", sv_error_message(err));
    f->root = cat(f->dir, "root");
    f->outside = cat(f->dir, "outside");
    char *sys = cat(f->root, "sys");
    mkdir_p(sys);
    mkdir_p(f->outside);
    free(sys);
    if (sv_sysfs_open(f->root, &f->sysfs, &err) < 0)
        fail_msg("%s", sv_error_message(err));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    sv_sysfs_free(f->sysfs);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    free(f->dir);
    free(f->root);
    free(f->outside);
    free(f);
    return 0;
}

/* "<root>/sys/<rel>" as messages show it. */
static char *shown(const fx *f, const char *rel)
{
    char *s = NULL;
    assert_true(asprintf(&s, "%s/sys/%s", f->root, rel) > 0);
    return s;
}

static void assert_err(sv_error **err, int r, int code, const char *needle)
{
    assert_int_equal(r, -code);
    assert_non_null(*err);
    assert_int_equal(sv_error_code(*err), code);
    if (needle && !strstr(sv_error_message(*err), needle))
        fail_msg("error \"%s\" lacks \"%s\"", sv_error_message(*err), needle);
    sv_error_free(*err);
    *err = NULL;
}

/* A block (or char) device as the kernel shows it: its directory under
 * devices/virtual/<class>/, the dev/<kind>/M:m link, and for block devices
 * the block/<name> link. */
static void add_dev(const fx *f, const char *kind, unsigned major, unsigned minor, const char *name,
                    const char *uevent)
{
    char rel[256], target[256];
    snprintf(rel, sizeof(rel), "sys/devices/virtual/%s/%s/uevent", kind, name);
    put(f, rel, uevent);
    snprintf(rel, sizeof(rel), "sys/dev/%s/%u:%u", kind, major, minor);
    snprintf(target, sizeof(target), "../../devices/virtual/%s/%s", kind, name);
    link_to(f, rel, target);
    if (strcmp(kind, "block") == 0) {
        snprintf(rel, sizeof(rel), "sys/block/%s", name);
        snprintf(target, sizeof(target), "../devices/virtual/block/%s", name);
        link_to(f, rel, target);
    }
}

static void add_loop(const fx *f, unsigned minor, const char *backing, size_t len)
{
    char name[32], uevent[128], rel[128];
    snprintf(name, sizeof(name), "loop%u", minor);
    snprintf(uevent, sizeof(uevent), "MAJOR=7\nMINOR=%u\nDEVNAME=loop%u\nDEVTYPE=disk\n", minor,
             minor);
    add_dev(f, "block", 7, minor, name, uevent);
    if (backing) {
        snprintf(rel, sizeof(rel), "sys/devices/virtual/block/%s/loop/backing_file", name);
        put_n(f, rel, backing, len);
    }
}

/* ---- the uevent parser ---- */

static void test_uevent_parse_basic(void **state)
{
    (void)state;
    const char text[] = "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\nDISKSEQ=9\n"
                        "EMPTY=\nWITH_EQ=a=b=c\nlast_no_newline=x y";
    sv_uevent ev;
    sv_error *err = NULL;
    assert_int_equal(sv_uevent_parse(text, strlen(text), &ev, &err), 0);
    assert_null(err);
    assert_int_equal(ev.n, 8);
    assert_string_equal(sv_uevent_get(&ev, "DEVNAME"), "sda");
    assert_string_equal(sv_uevent_get(&ev, "EMPTY"), "");
    assert_string_equal(sv_uevent_get(&ev, "WITH_EQ"), "a=b=c");
    assert_string_equal(sv_uevent_get(&ev, "last_no_newline"), "x y");
    assert_string_equal(ev.vars[0].key, "MAJOR");
    assert_null(sv_uevent_get(&ev, "DEVNAM"));
    sv_uevent_clear(&ev);
    assert_int_equal(ev.n, 0);
    /* not NUL-terminated: only len bytes count */
    const char part[] = "DEVNAME=sdb\nJUNK";
    assert_int_equal(sv_uevent_parse(part, 11, &ev, &err), 0);
    assert_int_equal(ev.n, 1);
    assert_string_equal(sv_uevent_get(&ev, "DEVNAME"), "sdb");
    sv_uevent_clear(&ev);
}

static void test_uevent_parse_empty(void **state)
{
    (void)state;
    sv_uevent ev;
    sv_error *err = NULL;
    assert_int_equal(sv_uevent_parse("", 0, &ev, &err), 0);
    assert_int_equal(ev.n, 0);
    assert_int_equal(sv_uevent_parse(NULL, 0, &ev, &err), 0);
    assert_int_equal(ev.n, 0);
    assert_int_equal(sv_uevent_parse("\n\nA=1\n\n", 7, &ev, &err), 0);
    assert_int_equal(ev.n, 1);
    assert_string_equal(sv_uevent_get(&ev, "A"), "1");
    sv_uevent_clear(&ev);
}

static void test_uevent_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t len;
        const char *msg;
    } cases[] = {
        {"A=1\nnoequals\n", 13, "uevent line 2: no '='"},
        {"=x\n", 3, "uevent line 1: empty key"},
        {"A=1\nB-C=2\n", 10, "uevent line 2: bad character in key"},
        {"A B=1\n", 6, "uevent line 1: bad character in key"},
        {"DEVNAME=a\nX=1\nDEVNAME=b\n", 24, "uevent line 3: key DEVNAME given twice"},
        {"A=1\nB=x\0y\n", 10, "uevent line 2: NUL byte"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sv_uevent ev = {(sv_uevent_var *)1, 99};
        sv_error *err = NULL;
        int r = sv_uevent_parse(cases[i].text, cases[i].len, &ev, &err);
        assert_int_equal(ev.n, 0);
        assert_null(ev.vars);
        assert_err(&err, r, EINVAL, cases[i].msg);
    }
    char *big = malloc(SV_UEVENT_MAX + 1);
    assert_non_null(big);
    memset(big, 'A', SV_UEVENT_MAX + 1);
    big[1] = '=';
    sv_uevent ev;
    sv_error *err = NULL;
    assert_err(&err, sv_uevent_parse(big, SV_UEVENT_MAX + 1, &ev, &err), EFBIG, "more than 4096");
    /* exactly the limit is fine */
    assert_int_equal(sv_uevent_parse(big, SV_UEVENT_MAX, &ev, &err), 0);
    assert_int_equal(ev.n, 1);
    sv_uevent_clear(&ev);
    free(big);
}

static void test_devname_valid(void **state)
{
    (void)state;
    static const char *const good[] = {"sda",     "loop3",           "net/tun",
                                       "vfio/12", "bus/usb/001/002", "bsg/0:0:0:0",
                                       "dm-0",    "nvme0n1p1",       "a.b_c+d@e"};
    static const char *const bad[] = {"",       "/sda", "sda/",  "a//b", "..",   "../etc/passwd",
                                      "a/../b", ".",    "a/./b", "a b",  "a\nb", "a,b",
                                      "a=b",    "a\\b", "é",     "a\"b"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!sv_devname_valid(good[i]))
            fail_msg("%s should be valid", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sv_devname_valid(bad[i]))
            fail_msg("%s should be invalid", bad[i]);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(sv_devname_valid(longname));
    longname[255] = '\0';
    assert_true(sv_devname_valid(longname));
}

/* ---- major:minor -> /dev/<DEVNAME> ---- */

static void test_devnode_block_and_char(void **state)
{
    fx *f = *state;
    add_dev(f, "block", 8, 16, "sdb", "MAJOR=8\nMINOR=16\nDEVNAME=sdb\nDEVTYPE=disk\n");
    add_dev(f, "misc", 10, 200, "tun", "MAJOR=10\nMINOR=200\nDEVNAME=net/tun\n");
    /* char devices link from dev/char */
    link_to(f, "sys/dev/char/10:200", "../../devices/virtual/misc/tun");
    sv_error *err = NULL;
    char *path = NULL;
    assert_int_equal(sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 16, &path, &err), 0);
    assert_string_equal(path, "/dev/sdb");
    free(path);
    assert_int_equal(sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_CHAR, 10, 200, &path, &err), 0);
    assert_string_equal(path, "/dev/net/tun");
    free(path);
    /* the block namespace does not see the char device */
    int r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 10, 200, &path, &err);
    assert_null(path);
    assert_err(&err, r, ENOENT, "block device 10:200: ");
}

static void test_devnode_no_devname(void **state)
{
    fx *f = *state;
    add_dev(f, "block", 7, 3, "loop3", "MAJOR=7\nMINOR=3\nDEVTYPE=disk\n");
    sv_error *err = NULL;
    char *path = NULL;
    int r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 7, 3, &path, &err);
    assert_int_equal(r, -ENOENT);
    char *where = shown(f, "dev/block/7:3/uevent");
    char *want = NULL;
    assert_true(asprintf(&want, "block device 7:3: no DEVNAME in %s", where) > 0);
    assert_string_equal(sv_error_message(err), want);
    free(where);
    free(want);
    sv_error_free(err);
}

static void test_devnode_missing_device(void **state)
{
    fx *f = *state;
    sv_error *err = NULL;
    char *path = NULL;
    int r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_CHAR, 1, 3, &path, &err);
    char *where = shown(f, "dev/char/1:3/uevent");
    char *want = NULL;
    assert_true(asprintf(&want, "char device 1:3: %s does not exist", where) > 0);
    assert_err(&err, r, ENOENT, want);
    free(where);
    free(want);
    /* out of Linux's ranges: refused before any lookup */
    r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 4096, 0, &path, &err);
    assert_err(&err, r, EINVAL, "block device 4096:0: major or minor number out of range");
    r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 1u << 20, &path, &err);
    assert_err(&err, r, EINVAL, "out of range");
}

static void test_devnode_oversize_uevent(void **state)
{
    fx *f = *state;
    char *big = malloc(SV_SYSFS_READ_MAX + 100);
    assert_non_null(big);
    memset(big, 'X', SV_SYSFS_READ_MAX + 99);
    memcpy(big, "DEVNAME=sdc\nPAD=", 16);
    big[SV_SYSFS_READ_MAX + 99] = '\0';
    add_dev(f, "block", 8, 32, "sdc", big);
    free(big);
    sv_error *err = NULL;
    char *path = NULL;
    int r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 32, &path, &err);
    assert_null(path);
    assert_err(&err, r, EFBIG, "is larger than 4096 bytes");
}

static void test_devnode_unsafe_devname(void **state)
{
    fx *f = *state;
    add_dev(f, "block", 8, 0, "sda", "DEVNAME=../etc/shadow\n");
    add_dev(f, "block", 8, 1, "sda1", "DEVNAME=sda1,readonly=on\n");
    add_dev(f, "block", 8, 2, "sda2", "DEVNAME=\n");
    sv_error *err = NULL;
    char *path = NULL;
    int r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 0, &path, &err);
    assert_err(&err, r, EINVAL, "block device 8:0: unsafe DEVNAME \"../etc/shadow\"");
    r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 1, &path, &err);
    assert_err(&err, r, EINVAL, "unsafe DEVNAME \"sda1,readonly=on\"");
    r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 2, &path, &err);
    assert_err(&err, r, ENOENT, "no DEVNAME");
    assert_null(path);
}

static void test_devnode_wrong_device(void **state)
{
    fx *f = *state;
    /* 8:48 links to a directory whose uevent is another device's */
    add_dev(f, "block", 8, 48, "sdd", "MAJOR=8\nMINOR=64\nDEVNAME=sde\n");
    sv_error *err = NULL;
    char *path = NULL;
    int r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 48, &path, &err);
    assert_err(&err, r, EINVAL, "is for device \"8\":\"64\"");
    /* a malformed uevent is reported with its path */
    add_dev(f, "block", 8, 80, "sdf", "DEVNAME=sdf\ngarbage\n");
    r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 80, &path, &err);
    assert_err(&err, r, EINVAL, "block device 8:80: ");
}

/* ---- symlinks stay inside the root ---- */

static void test_symlink_escape(void **state)
{
    fx *f = *state;
    /* outside/evil/uevent exists, so only the containment can refuse it */
    char *evil = cat(f->outside, "evil");
    mkdir_p(evil);
    char *ev_file = cat(evil, "uevent");
    FILE *fp = fopen(ev_file, "w");
    assert_non_null(fp);
    fputs("DEVNAME=sda\n", fp);
    fclose(fp);
    /* from <root>/sys/dev/block: ../../../../outside/evil climbs out of <dir> */
    link_to(f, "sys/dev/block/8:0", "../../../../outside/evil");
    link_to(f, "sys/dev/block/8:1", evil); /* absolute */
    link_to(f, "sys/dev/block/8:2", "../../../sys/../../outside/evil");
    sv_error *err = NULL;
    char *path = NULL;
    int r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 0, &path, &err);
    assert_err(&err, r, EXDEV, "leads outside the sysfs root");
    r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 1, &path, &err);
    assert_err(&err, r, EXDEV, "absolute symlink");
    r = sv_sysfs_devnode_path(f->sysfs, SV_DEVNODE_BLOCK, 8, 2, &path, &err);
    assert_err(&err, r, EXDEV, "outside");
    assert_null(path);
    /* the caller's own path may not climb either */
    sv_sysfs_walk w;
    r = sv_sysfs_resolve(f->sysfs, "dev/../../outside", &w, &err);
    assert_err(&err, r, EINVAL, "not a plain path");
    r = sv_sysfs_resolve(f->sysfs, "/dev", &w, &err);
    assert_err(&err, r, EINVAL, "not relative");
    free(evil);
    free(ev_file);
}

static void test_symlink_loop_and_inside(void **state)
{
    fx *f = *state;
    link_to(f, "sys/a", "b");
    link_to(f, "sys/b", "a");
    sv_error *err = NULL;
    sv_sysfs_walk w;
    int r = sv_sysfs_resolve(f->sysfs, "a/x", &w, &err);
    assert_err(&err, r, ELOOP, "too many levels");
    /* climbing inside the root is fine, and canon shows where it ended */
    put(f, "sys/devices/x/y/attr", "1\n");
    link_to(f, "sys/class/c/link", "../../devices/x/./y");
    assert_int_equal(sv_sysfs_resolve(f->sysfs, "class/c/link/attr", &w, &err), 0);
    assert_string_equal(w.canon, "devices/x/y/attr");
    assert_string_equal(w.name, "attr");
    sv_sysfs_walk_clear(&w);
    /* a file in the middle of a path */
    r = sv_sysfs_resolve(f->sysfs, "devices/x/y/attr/z", &w, &err);
    assert_err(&err, r, ENOTDIR, NULL);
}

static void test_read_bounded_and_fifo(void **state)
{
    fx *f = *state;
    char buf[100];
    memset(buf, 'a', sizeof(buf));
    put_n(f, "sys/big", buf, sizeof(buf));
    sv_error *err = NULL;
    char *data = NULL;
    size_t len = 0;
    int r = sv_sysfs_read(f->sysfs, "big", 99, &data, &len, NULL, &err);
    assert_null(data);
    assert_err(&err, r, EFBIG, "is larger than 99 bytes");
    assert_int_equal(sv_sysfs_read(f->sysfs, "big", 100, &data, &len, NULL, &err), 0);
    assert_int_equal(len, 100);
    free(data);
    char *fifo = cat(f->root, "sys/fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    free(fifo);
    r = sv_sysfs_read(f->sysfs, "fifo", 10, &data, &len, NULL, &err);
    assert_err(&err, r, EINVAL, "is not a regular file");
    /* one-line attributes lose exactly the kernel's newline */
    put(f, "sys/two", "a\nb\n");
    r = sv_sysfs_read_line(f->sysfs, "two", &data, &err);
    assert_err(&err, r, EINVAL, "more than one line");
}

static void test_sysfs_open_errors(void **state)
{
    fx *f = *state;
    sv_sysfs *s = NULL;
    sv_error *err = NULL;
    int r = sv_sysfs_open("relative/root", &s, &err);
    assert_null(s);
    assert_err(&err, r, EINVAL, "not an absolute path");
    r = sv_sysfs_open(f->outside, &s, &err); /* no sys/ in it */
    assert_err(&err, r, ENOENT, "/outside/sys");
    /* trailing slashes do not double up in paths */
    char *slashed = NULL;
    assert_true(asprintf(&slashed, "%s//", f->root) > 0);
    assert_int_equal(sv_sysfs_open(slashed, &s, &err), 0);
    assert_string_equal(sv_sysfs_root(s), f->root);
    char *p = sv_sysfs_path(s, "dev/block");
    char *want = shown(f, "dev/block");
    assert_string_equal(p, want);
    free(p);
    free(want);
    free(slashed);
    sv_sysfs_free(s);
    /* the default root is the real one */
    assert_int_equal(sv_sysfs_open(NULL, &s, &err), 0);
    p = sv_sysfs_path(s, "dev/block/7:3/uevent");
    assert_string_equal(p, "/sys/dev/block/7:3/uevent");
    free(p);
    sv_sysfs_free(s);
}

/* ---- loop devices ---- */

static void test_loop_backing_plain(void **state)
{
    fx *f = *state;
    static const char b[] = "/var/lib/images/disk one,readonly=on.img\n";
    add_loop(f, 3, b, strlen(b));
    sv_loop_backing lb;
    sv_error *err = NULL;
    assert_int_equal(sv_sysfs_loop_backing(f->sysfs, 7, 3, &lb, &err), 0);
    assert_string_equal(lb.path, "/var/lib/images/disk one,readonly=on.img");
    assert_string_equal(lb.devnode, "/dev/loop3");
    assert_false(lb.deleted);
    sv_loop_backing_clear(&lb);
    assert_null(lb.path);
}

static void test_loop_backing_newline(void **state)
{
    fx *f = *state;
    /* the file is really named "a\nb": the kernel shows it raw, then '\n' */
    static const char b[] = "/img/a\nb\n";
    add_loop(f, 4, b, strlen(b));
    sv_loop_backing lb;
    sv_error *err = NULL;
    int r = sv_sysfs_loop_backing(f->sysfs, 7, 4, &lb, &err);
    assert_null(lb.path);
    assert_err(&err, r, EINVAL,
               "loop device 7:4: its backing file name contains a newline; "
               "use the loop device /dev/loop4 itself");
    /* without the kernel's newline the content is not what the kernel writes */
    add_loop(f, 5, "/img/x", 6);
    r = sv_sysfs_loop_backing(f->sysfs, 7, 5, &lb, &err);
    assert_err(&err, r, EINVAL, "does not end in a newline");
    add_loop(f, 6, "img/rel\n", 8);
    r = sv_sysfs_loop_backing(f->sysfs, 7, 6, &lb, &err);
    assert_err(&err, r, EINVAL, "backing file \"img/rel\" is not an absolute path");
    add_loop(f, 8, "\n", 1);
    r = sv_sysfs_loop_backing(f->sysfs, 7, 8, &lb, &err);
    assert_err(&err, r, EINVAL, "is not an absolute path");
    add_loop(f, 9, "/img/\0x\n", 8);
    r = sv_sysfs_loop_backing(f->sysfs, 7, 9, &lb, &err);
    assert_err(&err, r, EINVAL, "NUL byte");
}

static void test_loop_backing_deleted(void **state)
{
    fx *f = *state;
    /* unlinked: the name carries the kernel's marker and no such file exists */
    char *gone = NULL;
    assert_true(asprintf(&gone, "%s/img.raw (deleted)\n", f->outside) > 0);
    add_loop(f, 10, gone, strlen(gone));
    sv_loop_backing lb;
    sv_error *err = NULL;
    assert_int_equal(sv_sysfs_loop_backing(f->sysfs, 7, 10, &lb, &err), 0);
    assert_true(lb.deleted);
    char *want = cat(f->outside, "img.raw");
    assert_string_equal(lb.path, want);
    assert_string_equal(lb.devnode, "/dev/loop10");
    sv_loop_backing_clear(&lb);
    free(want);
    /* a live file really named "... (deleted)" is not deleted */
    char *real = cat(f->outside, "b.raw (deleted)");
    FILE *fp = fopen(real, "w");
    assert_non_null(fp);
    fclose(fp);
    char *shown_name = NULL;
    assert_true(asprintf(&shown_name, "%s\n", real) > 0);
    add_loop(f, 11, shown_name, strlen(shown_name));
    assert_int_equal(sv_sysfs_loop_backing(f->sysfs, 7, 11, &lb, &err), 0);
    assert_false(lb.deleted);
    assert_string_equal(lb.path, real);
    sv_loop_backing_clear(&lb);
    free(gone);
    free(real);
    free(shown_name);
}

static void test_loop_unbound_and_not_loop(void **state)
{
    fx *f = *state;
    add_loop(f, 12, NULL, 0);
    add_dev(f, "block", 8, 0, "sda", "DEVNAME=sda\n");
    sv_loop_backing lb;
    sv_error *err = NULL;
    int r = sv_sysfs_loop_backing(f->sysfs, 7, 12, &lb, &err);
    assert_err(&err, r, ENXIO, "loop device 7:12 (/dev/loop12) has no backing file");
    r = sv_sysfs_loop_backing(f->sysfs, 8, 0, &lb, &err);
    assert_err(&err, r, EINVAL, "block device 8:0 is not a loop device (major 7)");
    /* major 7 whose DEVNAME is not loopN */
    add_dev(f, "block", 7, 13, "odd", "DEVNAME=../loop13\n");
    r = sv_sysfs_loop_backing(f->sysfs, 7, 13, &lb, &err);
    assert_err(&err, r, EINVAL, "unsafe DEVNAME");
    add_dev(f, "block", 7, 14, "odd2", "DEVNAME=sdz\n");
    r = sv_sysfs_loop_backing(f->sysfs, 7, 14, &lb, &err);
    assert_err(&err, r, EINVAL, "DEVNAME sdz is not loop<N>");
    assert_null(lb.path);
}

/* ---- vhost-user store ---- */

static int make_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return r;
}

/* <store>/block/devices/<name> as block device major:minor; false without
 * the privilege to create device nodes. */
static bool make_node(const char *store, const char *name, unsigned major, unsigned minor)
{
    char *dir = cat(store, "block/devices");
    mkdir_p(dir);
    char *p = cat(dir, name);
    int r = mknod(p, S_IFBLK | 0600, makedev(major, minor));
    free(dir);
    free(p);
    return r == 0;
}

static void test_vhost_user_store(void **state)
{
    fx *f = *state;
    char *store = cat(f->dir, "store");
    char *socks = cat(store, "block/sockets");
    mkdir_p(socks);
    if (!make_node(store, "vhost-blk0", SV_VHOST_USER_BLK_MAJOR, 0)) {
        free(store);
        free(socks);
        skip(); /* creating block device nodes needs CAP_MKNOD */
    }
    assert_true(make_node(store, "vhost-blk1", SV_VHOST_USER_BLK_MAJOR, 1));
    assert_true(make_node(store, "scsi0", SV_VHOST_USER_SCSI_MAJOR, 0));
    char *s0 = cat(socks, "vhost-blk0");
    assert_int_equal(make_socket(s0), 0);
    sv_error *err = NULL;
    char *path = NULL;
    assert_int_equal(sv_vhost_user_store_socket(store, SV_VHOST_USER_BLK_MAJOR, 0, &path, &err), 0);
    assert_string_equal(path, s0);
    free(path);
    /* node without a socket */
    int r = sv_vhost_user_store_socket(store, SV_VHOST_USER_BLK_MAJOR, 1, &path, &err);
    assert_err(&err, r, ENOENT, "block/sockets/vhost-blk1");
    /* a regular file where the socket should be */
    char *s2 = cat(socks, "scsi0");
    FILE *fp = fopen(s2, "w");
    assert_non_null(fp);
    fclose(fp);
    r = sv_vhost_user_store_socket(store, SV_VHOST_USER_SCSI_MAJOR, 0, &path, &err);
    assert_err(&err, r, EINVAL, "is not a socket");
    /* no node with that number */
    r = sv_vhost_user_store_socket(store, SV_VHOST_USER_BLK_MAJOR, 7, &path, &err);
    assert_err(&err, r, ENOENT, "vhost-user device 241:7: no block device node 241:7");
    /* two nodes with one number: ambiguous, both named */
    assert_true(make_node(store, "again", SV_VHOST_USER_BLK_MAJOR, 0));
    r = sv_vhost_user_store_socket(store, SV_VHOST_USER_BLK_MAJOR, 0, &path, &err);
    assert_err(&err, r, EEXIST, "both \"again\" and \"vhost-blk0\"");
    r = sv_vhost_user_store_socket("rel/store", SV_VHOST_USER_BLK_MAJOR, 0, &path, &err);
    assert_err(&err, r, EINVAL, "not absolute");
    assert_null(path);
    free(s0);
    free(s2);
    free(store);
    free(socks);
}

static void test_dev_host_path(void **state)
{
    fx *f = *state;
    add_dev(f, "block", 8, 16, "sdb", "DEVNAME=sdb\n");
    add_dev(f, "mem", 1, 3, "null", "DEVNAME=null\n");
    link_to(f, "sys/dev/char/1:3", "../../devices/virtual/mem/null");
    sv_error *err = NULL;
    char *path = NULL;
    sv_dev_info by_path = {.host_path = "/srv/disk.img", .major = -1, .type = 'b'};
    assert_int_equal(sv_dev_host_path(f->sysfs, &by_path, NULL, &path, &err), 0);
    assert_string_equal(path, "/srv/disk.img");
    free(path);
    sv_dev_info blk = {.major = 8, .minor = 16, .type = 'b'};
    assert_int_equal(sv_dev_host_path(f->sysfs, &blk, NULL, &path, &err), 0);
    assert_string_equal(path, "/dev/sdb");
    free(path);
    sv_dev_info chr = {.major = 1, .minor = 3, .type = 'u'};
    assert_int_equal(sv_dev_host_path(f->sysfs, &chr, NULL, &path, &err), 0);
    assert_string_equal(path, "/dev/null");
    free(path);
    sv_dev_info fifo = {.major = 0, .minor = 0, .type = 'p'};
    int r = sv_dev_host_path(f->sysfs, &fifo, NULL, &path, &err);
    assert_err(&err, r, EINVAL, "type 'p' has no host device node");
    sv_dev_info none = {.container_path = "/dev/xvda", .major = -1, .type = 'b'};
    r = sv_dev_host_path(f->sysfs, &none, NULL, &path, &err);
    assert_err(&err, r, EINVAL, "device /dev/xvda: no host path");
    /* major 241 goes to the store only when one is configured */
    sv_dev_info vu = {.major = SV_VHOST_USER_BLK_MAJOR, .minor = 0, .type = 'b'};
    r = sv_dev_host_path(f->sysfs, &vu, NULL, &path, &err);
    assert_err(&err, r, ENOENT, "block device 241:0");
    char *store = cat(f->dir, "store");
    r = sv_dev_host_path(f->sysfs, &vu, store, &path, &err);
    assert_err(&err, r, ENOENT, "vhost-user device 241:0: opening store");
    free(store);
    assert_null(path);
}

/* ---- VFIO ---- */

/* Config space: `pcie` puts a PCI Express capability after a power
 * management one; otherwise PM then MSI. Conventional devices get 256
 * bytes, PCIe ones 4096, as sysfs shows them. */
static void make_config(uint8_t *cfg, size_t len, uint16_t vendor, bool pcie, uint8_t header)
{
    memset(cfg, 0, len);
    cfg[0] = vendor & 0xff;
    cfg[1] = vendor >> 8;
    cfg[0x06] = 0x10; /* capability list */
    cfg[0x0e] = header;
    cfg[0x34] = 0x40;
    cfg[0x40] = 0x01; /* PM */
    cfg[0x41] = 0x60;
    cfg[0x60] = pcie ? 0x10 : 0x05;
    cfg[0x61] = 0x00;
}

typedef struct pci_dev {
    const char *bdf;
    const char *vendor, *device, *class_code;
    bool pcie;
    const char *numa; /* NULL: no numa_node file */
} pci_dev;

static void add_pci(const fx *f, const char *group, const pci_dev *d)
{
    char rel[256], target[256];
    char base[128];
    snprintf(base, sizeof(base), "sys/devices/pci0000:00/%s", d->bdf);
    snprintf(rel, sizeof(rel), "%s/vendor", base);
    putf(f, rel, "%s\n", d->vendor);
    snprintf(rel, sizeof(rel), "%s/device", base);
    putf(f, rel, "%s\n", d->device);
    snprintf(rel, sizeof(rel), "%s/class", base);
    putf(f, rel, "%s\n", d->class_code);
    if (d->numa) {
        snprintf(rel, sizeof(rel), "%s/numa_node", base);
        putf(f, rel, "%s\n", d->numa);
    }
    size_t len = d->pcie ? 4096 : 256;
    uint8_t *cfg = malloc(len);
    assert_non_null(cfg);
    make_config(cfg, len, (uint16_t)strtoul(d->vendor, NULL, 16), d->pcie,
                strcmp(d->class_code, "0x060400") == 0 ? 1 : 0);
    snprintf(rel, sizeof(rel), "%s/config", base);
    put_n(f, rel, cfg, len);
    free(cfg);
    snprintf(rel, sizeof(rel), "%s/iommu_group", base);
    snprintf(target, sizeof(target), "../../../kernel/iommu_groups/%s", group);
    link_to(f, rel, target);
    snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s", d->bdf);
    snprintf(target, sizeof(target), "../../../devices/pci0000:00/%s", d->bdf);
    link_to(f, rel, target);
    snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%s/devices/%s", group, d->bdf);
    snprintf(target, sizeof(target), "../../../../devices/pci0000:00/%s", d->bdf);
    link_to(f, rel, target);
}

/* An mdev under `parent_dir` (relative to sys/devices). */
static void add_mdev(const fx *f, const char *group, const char *parent_dir, const char *uuid)
{
    char rel[256], target[256], up[64] = "";
    /* from sys/devices/<parent_dir>/<uuid>: one ".." per component + devices */
    int depth = 3; /* <uuid> -> parent components -> devices -> sys */
    for (const char *p = parent_dir; *p; p++)
        depth += *p == '/';
    for (int i = 0; i < depth; i++)
        strcat(up, "../");
    snprintf(rel, sizeof(rel), "sys/devices/%s/%s/iommu_group", parent_dir, uuid);
    snprintf(target, sizeof(target), "%skernel/iommu_groups/%s", up, group);
    link_to(f, rel, target);
    snprintf(rel, sizeof(rel), "sys/bus/mdev/devices/%s", uuid);
    snprintf(target, sizeof(target), "../../../devices/%s/%s", parent_dir, uuid);
    link_to(f, rel, target);
    snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%s/devices/%s", group, uuid);
    snprintf(target, sizeof(target), "../../../../devices/%s/%s", parent_dir, uuid);
    link_to(f, rel, target);
}

static const pci_dev gpu = {"0000:01:00.0", "0x10de", "0x1db6", "0x030200", true, "0"};
static const pci_dev gpu_audio = {"0000:01:00.1", "0x10de", "0x10f2", "0x040300", false, NULL};
static const pci_dev bridge = {"0000:00:1c.0", "0x8086", "0xa110", "0x060400", true, "-1"};

static void test_vfio_group_skips_bridge(void **state)
{
    fx *f = *state;
    add_pci(f, "12", &gpu_audio);
    add_pci(f, "12", &bridge);
    add_pci(f, "12", &gpu);
    sv_vfio_group g;
    sv_error *err = NULL;
    assert_int_equal(sv_vfio_group_enumerate(f->sysfs, "12", &g, &err), 0);
    assert_null(err);
    assert_string_equal(g.group, "12");
    assert_string_equal(g.devfs, "/dev/vfio/12");
    assert_int_equal(g.n, 2); /* all of the group but the bridge, not only the first */
    assert_int_equal(g.n_skipped, 1);
    const sv_dev_vfio *a = &g.devs[0], *b = &g.devs[1];
    assert_string_equal(a->bdf, "0000:01:00.0");
    assert_int_equal(a->type, SV_DEV_VFIO_PCI);
    assert_int_equal(a->vendor, 0x10de);
    assert_int_equal(a->device, 0x1db6);
    assert_int_equal(a->class_code, 0x030200);
    assert_int_equal(a->numa_node, 0);
    assert_true(a->pcie);
    assert_null(a->sysfsdev);
    assert_string_equal(a->devfs, "/dev/vfio/12");
    assert_string_equal(a->group, "12");
    assert_string_equal(b->bdf, "0000:01:00.1");
    assert_int_equal(b->device, 0x10f2);
    assert_int_equal(b->numa_node, -1);
    assert_false(b->pcie);
    sv_vfio_group_clear(&g);
    assert_int_equal(g.n, 0);
}

static void test_vfio_only_bridges(void **state)
{
    fx *f = *state;
    add_pci(f, "3", &bridge);
    sv_vfio_group g;
    sv_error *err = NULL;
    int r = sv_vfio_group_enumerate(f->sysfs, "3", &g, &err);
    assert_err(&err, r, ENOENT, "IOMMU group 3 has no device to pass through (1 bridges skipped)");
    r = sv_vfio_group_enumerate(f->sysfs, "4", &g, &err);
    assert_err(&err, r, ENOENT, "IOMMU group 4: ");
    r = sv_vfio_group_enumerate(f->sysfs, "../3", &g, &err);
    assert_err(&err, r, EINVAL, "IOMMU group \"../3\": not a group number");
    r = sv_vfio_group_enumerate(f->sysfs, "03", &g, &err);
    assert_err(&err, r, EINVAL, "not a group number");
}

static void test_vfio_enumerate_by_devfs_and_bdf(void **state)
{
    fx *f = *state;
    add_pci(f, "7", &gpu);
    add_pci(f, "7", &gpu_audio);
    sv_vfio_group g;
    sv_error *err = NULL;
    assert_int_equal(sv_vfio_enumerate(f->sysfs, "/dev/vfio/7", &g, &err), 0);
    assert_int_equal(g.n, 2);
    sv_vfio_group_clear(&g);
    /* a BDF finds its whole group: short and uppercase forms too */
    assert_int_equal(sv_vfio_enumerate(f->sysfs, "01:00.1", &g, &err), 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.group, "7");
    sv_vfio_group_clear(&g);
    char *grp = NULL;
    assert_int_equal(sv_vfio_group_of_bdf(f->sysfs, "0000:01:00.0", &grp, &err), 0);
    assert_string_equal(grp, "7");
    free(grp);
    int r = sv_vfio_group_of_bdf(f->sysfs, "0000:02:00.0", &grp, &err);
    assert_err(&err, r, ENOENT, "PCI device 0000:02:00.0: ");
    r = sv_vfio_enumerate(f->sysfs, "01:00", &g, &err);
    assert_err(&err, r, EINVAL, "PCI address \"01:00\": not dddd:bb:dd.f");
    r = sv_vfio_enumerate(f->sysfs, "/dev/vfio/vfio", &g, &err);
    assert_err(&err, r, EINVAL, "the VFIO container");
    r = sv_vfio_enumerate(f->sysfs, "/dev/vfio/devices/vfio0", &g, &err);
    assert_err(&err, r, EINVAL, "IOMMUFD");
    r = sv_vfio_enumerate(f->sysfs, "/dev/vfio/7/../8", &g, &err);
    assert_err(&err, r, EINVAL, "not /dev/vfio/<IOMMU group number>");
    r = sv_vfio_enumerate(f->sysfs, "/dev/sda", &g, &err);
    assert_err(&err, r, EINVAL, "not under /dev/vfio/");
}

static void test_vfio_mdev(void **state)
{
    fx *f = *state;
    static const pci_dev parent = {"0000:00:02.0", "0x8086", "0x3e92", "0x030000", false, NULL};
    const char *uuid = "4b20d080-1b54-4048-85b3-a6a62d165c01";
    /* the parent's own group is another one; the mdev has its own */
    add_pci(f, "0", &parent);
    add_mdev(f, "15", "pci0000:00/0000:00:02.0", uuid);
    sv_vfio_group g;
    sv_error *err = NULL;
    assert_int_equal(sv_vfio_enumerate(f->sysfs, "/dev/vfio/15", &g, &err), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.devs[0].type, SV_DEV_VFIO_PCI_MDEV);
    assert_string_equal(g.devs[0].bdf, "0000:00:02.0");
    char *want = shown(f, "bus/mdev/devices/4b20d080-1b54-4048-85b3-a6a62d165c01");
    assert_string_equal(g.devs[0].sysfsdev, want);
    assert_int_equal(g.devs[0].vendor, 0x8086);
    assert_int_equal(g.devs[0].class_code, 0x030000);
    assert_false(g.devs[0].pcie);
    free(want);
    sv_vfio_group_clear(&g);
}

static void test_vfio_ap_mdev(void **state)
{
    fx *f = *state;
    const char *uuid = "669d9b23-fe1b-4ecb-be08-a2fabca99b71";
    add_mdev(f, "0", "vfio_ap/matrix", uuid);
    sv_vfio_group g;
    sv_error *err = NULL;
    assert_int_equal(sv_vfio_group_enumerate(f->sysfs, "0", &g, &err), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.devs[0].type, SV_DEV_VFIO_AP_MDEV);
    assert_string_equal(g.devs[0].bdf, "");
    assert_non_null(strstr(g.devs[0].sysfsdev, "/sys/bus/mdev/devices/669d9b23-"));
    sv_vfio_group_clear(&g);
    /* an mdev whose bus link and group entry disagree */
    const char *u2 = "11111111-2222-3333-4444-555555555555";
    add_mdev(f, "9", "vfio_ap/matrix", u2);
    char rel[128];
    snprintf(rel, sizeof(rel), "sys/bus/mdev/devices/%s", u2);
    put(f, "sys/devices/vfio_ap/other/x", "");
    link_to(f, rel, "../../../devices/vfio_ap/other");
    int r = sv_vfio_group_enumerate(f->sysfs, "9", &g, &err);
    assert_err(&err, r, EINVAL, "are different devices");
}

static void test_vfio_group_link_escape(void **state)
{
    fx *f = *state;
    add_pci(f, "20", &gpu);
    /* the device's iommu_group climbs out of the root to a lookalike group */
    char *og = cat(f->outside, "kernel/iommu_groups/20");
    mkdir_p(og);
    free(og);
    link_to(f, "sys/devices/pci0000:00/0000:01:00.0/iommu_group",
            "../../../../../outside/kernel/iommu_groups/20");
    sv_vfio_group g;
    sv_error *err = NULL;
    int r = sv_vfio_group_enumerate(f->sysfs, "20", &g, &err);
    assert_err(&err, r, EXDEV, "IOMMU group 20: ");
    char *grp = NULL;
    r = sv_vfio_group_of_bdf(f->sysfs, "0000:01:00.0", &grp, &err);
    assert_err(&err, r, EXDEV, "leads outside the sysfs root");
    assert_null(grp);
}

static void test_vfio_group_link_mismatch(void **state)
{
    fx *f = *state;
    add_pci(f, "21", &gpu);
    char *other = cat(f->root, "sys/kernel/iommu_groups/22");
    mkdir_p(other);
    free(other);
    link_to(f, "sys/devices/pci0000:00/0000:01:00.0/iommu_group",
            "../../../kernel/iommu_groups/22");
    sv_vfio_group g;
    sv_error *err = NULL;
    int r = sv_vfio_group_enumerate(f->sysfs, "21", &g, &err);
    assert_err(&err, r, EINVAL, "not to IOMMU group 21");
    /* a link to something that is not a group at all */
    link_to(f, "sys/devices/pci0000:00/0000:01:00.0/iommu_group", "../../../kernel");
    char *grp = NULL;
    r = sv_vfio_group_of_bdf(f->sysfs, "0000:01:00.0", &grp, &err);
    assert_err(&err, r, EINVAL, "not to an IOMMU group");
}

static void test_vfio_malformed_entries(void **state)
{
    fx *f = *state;
    static const char *const names[] = {"0000:00:1.0",  "0000:00:20.0", "0000:00:01.8",
                                        "0000:0g:00.0", "junk",         "0000:00:01.0\n"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char rel[128];
        snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%zu/devices/%s", 30 + i, names[i]);
        put(f, rel, "");
        char grp[16];
        snprintf(grp, sizeof(grp), "%zu", 30 + i);
        sv_vfio_group g;
        sv_error *err = NULL;
        int r = sv_vfio_group_enumerate(f->sysfs, grp, &g, &err);
        assert_err(&err, r, EINVAL, "neither a PCI address nor a UUID");
    }
    /* bad attribute values */
    pci_dev d = gpu;
    d.vendor = "10de";
    add_pci(f, "40", &d);
    sv_vfio_group g;
    sv_error *err = NULL;
    int r = sv_vfio_group_enumerate(f->sysfs, "40", &g, &err);
    assert_err(&err, r, EINVAL, "\"10de\" is not a hex number of at most 4 digits");
    d.vendor = "0x10de";
    d.class_code = "0x1030200";
    add_pci(f, "40", &d);
    r = sv_vfio_group_enumerate(f->sysfs, "40", &g, &err);
    assert_err(&err, r, EINVAL, "at most 6 digits");
    d.class_code = "0x030200";
    d.numa = "zero";
    add_pci(f, "40", &d);
    r = sv_vfio_group_enumerate(f->sysfs, "40", &g, &err);
    assert_err(&err, r, EINVAL, "is not a NUMA node");
}

static void test_bdf_parse(void **state)
{
    (void)state;
    sv_bdf b;
    char s[SV_BDF_LEN];
    assert_int_equal(sv_bdf_parse("0000:3b:1f.7", true, &b), 0);
    assert_int_equal(b.bus, 0x3b);
    assert_int_equal(b.dev, 0x1f);
    assert_int_equal(b.fn, 7);
    assert_int_equal(sv_bdf_parse("3B:00.1", false, &b), 0);
    sv_bdf_format(&b, s);
    assert_string_equal(s, "0000:3b:00.1");
    assert_int_equal(sv_bdf_parse("ABCD:00:00.0", false, &b), 0);
    assert_int_equal(b.domain, 0xabcd);
    static const char *const strict_bad[] = {"3b:00.1",
                                             "0000:3B:00.1",
                                             "0000:3b:20.0",
                                             "0000:3b:00.8",
                                             "0000:3b:00",
                                             "00000:3b:00.0",
                                             "0000-3b:00.0",
                                             "0000:3b:00.0 ",
                                             "",
                                             "x"};
    for (size_t i = 0; i < sizeof(strict_bad) / sizeof(strict_bad[0]); i++)
        if (sv_bdf_valid(strict_bad[i]))
            fail_msg("%s should be refused", strict_bad[i]);
    assert_int_equal(sv_bdf_parse(NULL, false, &b), -EINVAL);
    assert_int_equal(sv_bdf_parse("3b:00.", false, &b), -EINVAL);
    assert_true(sv_uuid_valid("4B20D080-1b54-4048-85b3-a6a62d165c01"));
    assert_false(sv_uuid_valid("4b20d080-1b54-4048-85b3-a6a62d165c0"));
    assert_false(sv_uuid_valid("4b20d080x1b54-4048-85b3-a6a62d165c01"));
    assert_false(sv_uuid_valid("4b20d080-1b54-4048-85b3-a6a62d165c0g"));
}

static void test_pci_config_walk(void **state)
{
    (void)state;
    uint8_t cfg[4096];
    make_config(cfg, sizeof(cfg), 0x1234, true, 0);
    assert_int_equal(sv_pci_config_has_pcie(cfg, sizeof(cfg)), 1);
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 1);
    /* what an unprivileged read gets: the header only */
    assert_int_equal(sv_pci_config_has_pcie(cfg, 64), -ENODATA);
    assert_int_equal(sv_pci_config_has_pcie(cfg, 63), -ENODATA);
    assert_int_equal(sv_pci_config_has_pcie(NULL, 0), -ENODATA);
    make_config(cfg, sizeof(cfg), 0x1234, false, 0);
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 0);
    /* no capability list bit */
    make_config(cfg, sizeof(cfg), 0x1234, true, 0);
    cfg[0x06] = 0;
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 0);
    /* a list that loops on itself ends after Linux's 48 steps */
    make_config(cfg, sizeof(cfg), 0x1234, false, 0);
    cfg[0x61] = 0x60;
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 0);
    /* a pointer into the header ends the walk */
    cfg[0x61] = 0x20;
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 0);
    /* pointers' low two bits are ignored */
    make_config(cfg, sizeof(cfg), 0x1234, true, 0);
    cfg[0x34] = 0x43;
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 1);
    /* CardBus bridges keep the pointer at 0x14; unknown header types have none */
    make_config(cfg, sizeof(cfg), 0x1234, true, 2);
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 0);
    cfg[0x14] = 0x40;
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 1);
    make_config(cfg, sizeof(cfg), 0x1234, true, 3);
    assert_int_equal(sv_pci_config_has_pcie(cfg, 256), 0);
    /* a list leading past what was read */
    make_config(cfg, sizeof(cfg), 0x1234, false, 0);
    cfg[0x61] = 0xfc;
    assert_int_equal(sv_pci_config_has_pcie(cfg, 200), -ENODATA);
}

static void test_vfio_pcie_fallback_on_short_config(void **state)
{
    fx *f = *state;
    /* a config file whose capability list leads past its end: its size
     * decides, as in Kata's only test (more than 256 bytes: extended config
     * space, PCIe); these short files are conventional */
    add_pci(f, "50", &gpu);
    uint8_t cfg[4096];
    make_config(cfg, sizeof(cfg), 0x10de, false, 0);
    cfg[0x61] = 0xf0;
    put_n(f, "sys/devices/pci0000:00/0000:01:00.0/config", cfg, 200);
    sv_vfio_group g;
    sv_error *err = NULL;
    assert_int_equal(sv_vfio_group_enumerate(f->sysfs, "50", &g, &err), 0);
    assert_false(g.devs[0].pcie);
    sv_vfio_group_clear(&g);
    put_n(f, "sys/devices/pci0000:00/0000:01:00.0/config", cfg, 64);
    assert_int_equal(sv_vfio_group_enumerate(f->sysfs, "50", &g, &err), 0);
    assert_false(g.devs[0].pcie);
    sv_vfio_group_clear(&g);
    /* missing config: an error, not a guess */
    char *p = cat(f->root, "sys/devices/pci0000:00/0000:01:00.0/config");
    unlink(p);
    free(p);
    int r = sv_vfio_group_enumerate(f->sysfs, "50", &g, &err);
    assert_err(&err, r, ENOENT, "config does not exist");
}

/* ---- device descriptions ---- */

static void test_device_names(void **state)
{
    (void)state;
    assert_string_equal(sv_dev_kind_name(SV_DEV_VHOST_USER), "vhost-user");
    assert_string_equal(sv_dev_block_driver_name(SV_DEV_BLOCK_VIRTIO_SCSI), "virtio-scsi");
    assert_string_equal(sv_dev_block_driver_name(SV_DEV_BLOCK_VIRTIO_BLK_CCW), "virtio-blk-ccw");
    assert_string_equal(sv_dev_net_kind_name(SV_DEV_NET_MACVTAP), "macvtap");
    assert_string_equal(sv_dev_vfio_type_name(SV_DEV_VFIO_AP_MDEV), "ap-mdev");
    assert_string_equal(sv_dev_shared_kind_name(SV_DEV_SHARED_9P), "virtio-9p");
    assert_string_equal(sv_dev_console_kind_name(SV_DEV_CONSOLE_SERIAL), "serial");
    assert_null(sv_dev_kind_name(SV__DEV_MAX));
    assert_null(sv_dev_kind_name(-1));
    assert_null(sv_dev_vhost_user_type_name(SV__DEV_VHOST_USER_MAX));
    for (int i = 0; i < SV__DEV_BLOCK_MAX; i++)
        assert_int_equal(sv_dev_block_driver_from_name(sv_dev_block_driver_name(i)), i);
    for (int i = 0; i < SV__DEV_VHOST_USER_MAX; i++)
        assert_int_equal(sv_dev_vhost_user_type_from_name(sv_dev_vhost_user_type_name(i)), i);
    assert_int_equal(sv_dev_block_driver_from_name("virtio-blk-pci"), -1);
    assert_int_equal(sv_dev_block_driver_from_name(NULL), -1);
}

static void test_device_clear(void **state)
{
    (void)state;
    /* LeakSanitizer proves every owned pointer is freed */
    sv_device d = {.kind = SV_DEV_NET};
    d.u.net.id = strdup("net0");
    d.u.net.name = strdup("tap0");
    d.u.net.mac = strdup("02:00:00:00:00:01");
    d.u.net.fds = calloc(2, sizeof(int));
    d.u.net.n_fds = 2;
    d.u.net.guest.pci_path = strdup("02/01");
    sv_device_clear(&d);
    assert_null(d.u.net.id);
    assert_int_equal(d.u.net.n_fds, 0);
    sv_device v = {.kind = SV_DEV_VFIO};
    v.u.vfio.sysfsdev = strdup("/sys/bus/mdev/devices/x");
    v.u.vfio.port_bus = strdup("rp0");
    v.u.vfio.guest.bus = strdup("rp0");
    sv_device_clear(&v);
    sv_device b = {.kind = SV_DEV_BLOCK};
    b.u.block.path = strdup("/dev/sdb");
    b.u.block.guest.scsi_addr = strdup("0:1");
    sv_device_clear(&b);
    sv_device_clear(&b); /* twice is fine */
    sv_device_clear(NULL);
    sv_device u = {.kind = SV_DEV_VHOST_USER};
    u.u.vhost_user.socket_path = strdup("/run/vu.sock");
    u.u.vhost_user.tag = strdup("tag");
    sv_device_clear(&u);
    sv_dev_info info = {.host_path = strdup("/dev/sda"), .container_path = strdup("/dev/xvda")};
    sv_dev_info_clear(&info);
    assert_null(info.host_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uevent_parse_basic),
        cmocka_unit_test(test_uevent_parse_empty),
        cmocka_unit_test(test_uevent_parse_errors),
        cmocka_unit_test(test_devname_valid),
        cmocka_unit_test_setup_teardown(test_devnode_block_and_char, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devnode_no_devname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devnode_missing_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devnode_oversize_uevent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devnode_unsafe_devname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devnode_wrong_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_loop_and_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_bounded_and_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sysfs_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_backing_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_backing_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_backing_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_unbound_and_not_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vhost_user_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dev_host_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_group_skips_bridge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_only_bridges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_enumerate_by_devfs_and_bdf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_mdev, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_ap_mdev, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_group_link_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_group_link_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_malformed_entries, setup, teardown),
        cmocka_unit_test(test_bdf_parse),
        cmocka_unit_test(test_pci_config_walk),
        cmocka_unit_test_setup_teardown(test_vfio_pcie_fallback_on_short_config, setup, teardown),
        cmocka_unit_test(test_device_names),
        cmocka_unit_test(test_device_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
