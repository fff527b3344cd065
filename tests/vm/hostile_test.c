/*
 * Hostile file names and strings against the real QEMU. Every string field of
 * a config that reaches QEMU is given each name of tests/vm/hostile_names.c
 * (about 300, generated: `,` `,,` `=` `,readonly=on` `,file=/etc/passwd`,
 * spaces, quotes, `\`, `$(id)`, `;`, protocol prefixes such as `nbd:` and
 * `json:{...}`, `?` `*` `#`, leading `-`, é ß 日本, bidirectional marks,
 * U+2028/U+2029, combining characters, emoji, names filling NAME_MAX).
 * QEMU is started with sv_qemu_check() and asked, over QMP, what it actually
 * got: query-block for images (file name and read-only flag, for -drive and
 * -blockdev, read-write and read-only), query-chardev for sockets, qom-get for
 * the kernel, initrd, firmware and device and object properties, query-name
 * for -name, and inotify on the directories for the files QEMU opens or
 * creates (kernel, initrd, disks, the -D log file, pid file, ...). A field
 * passes only when QEMU holds exactly the original bytes and no option
 * changed (a file named "x,readonly=on" must not be read-only).
 *
 * Where a name cannot be valid for a field, sandvm must say so before anything
 * runs: a control character in a path, a socket path past 107 bytes, a mount
 * tag past 31 bytes. Those pairs, and every path field given each invalid
 * name (control characters, invalid UTF-8), go through the real CLI
 * (`sandvm qemu-argv --check`) with a spy in place of QEMU: the CLI must exit
 * 1 with an error naming the config key (or, for invalid UTF-8, the byte
 * offset in the file) and the spy must never have run.
 *
 * Output: one PASS/FAIL line per (field, name), then "N passed, N failed".
 * Set SV_HOSTILE_KEEP=1 to keep the temporary directory, SV_HOSTILE_FILTER to
 * a substring of name labels to run only those, SV_SANDVM to the CLI binary
 * (default: ../sandvm next to this program).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "hostile_names.h"
#include "sandvm/sandvm.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strbuf.h"

/* sizeof(sockaddr_un.sun_path) - 1 */
#define SOCKET_PATH_MAX 107
/* QEMU's 9p mount tag limit */
#define MOUNT_TAG_MAX 31

/* ---- the fields -------------------------------------------------------- */

typedef enum {
    /* x86_64 config */
    F_NAME,
    F_BLK_FILE,
    F_BLKDEV_FILE,
    F_BLK_RO_FILE,
    F_BLKDEV_RO_FILE,
    F_BLK_SERIAL,
    F_FS_PATH,
    F_FS_TAG,
    F_CHR_SOCKET,
    F_CHR_FILE,
    F_PORT_NAME,
    F_GLOBAL,
    F_PIDFILE,
    F_LOGFILE,
    F_FWCFG_FILE,
    F_RNG_FILE,
    F_MEMDEV_PATH,
    F_RAM_PATH,
    F_LOADER_FILE,
    F_PFLASH,
    F_QMP_SOCKET,
    F_EXEC_WORD,
    /* aarch64 config (a kernel image QEMU does not parse: zeros) */
    F_KERNEL,
    F_INITRD,
    F_APPEND,
    F_BIOS,
    F__MAX
} field;

typedef enum { ARCH_X86, ARCH_ARM } arch;

typedef enum { MK_NONE, MK_FILE, MK_DIR } mk_kind;

typedef struct fdesc {
    const char *name; /* the config key, as a user would write it */
    arch arch;
    const char *prefix; /* a path: file name = prefix + value (NULL: a text field) */
    mk_kind mk;         /* what the test creates beforehand */
    off_t size;
    uint32_t events;   /* inotify events QEMU must cause on the name (0: none checked) */
    const char *jpath; /* the key's JSON path in a config made for this field alone */
    bool socket;       /* a unix socket path: at most SOCKET_PATH_MAX bytes */
} fdesc;

static const fdesc fields[F__MAX] = {
    [F_NAME] = {"name", ARCH_X86, NULL, MK_NONE, 0, 0, "name", false},
    [F_BLK_FILE] = {"devices[].file (-drive)", ARCH_X86, "img-", MK_FILE, 1 << 20, IN_OPEN,
                    "devices[0].file", false},
    [F_BLKDEV_FILE] = {"devices[].file (-blockdev)", ARCH_X86, "img-", MK_FILE, 1 << 20, IN_OPEN,
                       "devices[0].file", false},
    [F_BLK_RO_FILE] = {"devices[].file (read_only)", ARCH_X86, "ro-", MK_FILE, 1 << 20, IN_OPEN,
                       "devices[0].file", false},
    [F_BLKDEV_RO_FILE] = {"devices[].file (-blockdev read_only)", ARCH_X86, "rob-", MK_FILE,
                          1 << 20, IN_OPEN, "devices[0].file", false},
    [F_BLK_SERIAL] = {"devices[].serial", ARCH_X86, NULL, MK_NONE, 0, 0, "devices[0].serial",
                      false},
    [F_FS_PATH] = {"devices[].path (9p)", ARCH_X86, "dir-", MK_DIR, 0, IN_OPEN, "devices[0].path",
                   false},
    [F_FS_TAG] = {"devices[].mount_tag", ARCH_X86, NULL, MK_NONE, 0, 0, "devices[0].mount_tag",
                  false},
    [F_CHR_SOCKET] = {"devices[].path (socket)", ARCH_X86, "sock-", MK_NONE, 0, IN_CREATE,
                      "devices[1].path", true},
    [F_CHR_FILE] = {"devices[].path (file)", ARCH_X86, "out-", MK_NONE, 0, IN_CREATE,
                    "devices[0].path", false},
    [F_PORT_NAME] = {"devices[].name (virtserialport)", ARCH_X86, NULL, MK_NONE, 0, 0,
                     "devices[1].name", false},
    [F_GLOBAL] = {"global_param value", ARCH_X86, NULL, MK_NONE, 0, 0, "global_param", false},
    [F_PIDFILE] = {"pid_file", ARCH_X86, "pid-", MK_NONE, 0, IN_CREATE, "pid_file", false},
    [F_LOGFILE] = {"log_file", ARCH_X86, "log-", MK_NONE, 0, IN_CREATE, "log_file", false},
    [F_FWCFG_FILE] = {"fw_cfg[].file", ARCH_X86, "fw-", MK_FILE, 4096, IN_OPEN, "fw_cfg[0].file",
                      false},
    [F_RNG_FILE] = {"devices[].filename (rng)", ARCH_X86, "rng-", MK_FILE, 4096, IN_OPEN,
                    "devices[0].filename", false},
    [F_MEMDEV_PATH] = {"devices[].mem_path", ARCH_X86, "mem-", MK_DIR, 0, 0, "devices[0].mem_path",
                       false},
    [F_RAM_PATH] = {"memory.path", ARCH_X86, "ram-", MK_DIR, 0, 0, "memory.path", false},
    [F_LOADER_FILE] = {"devices[].file (loader)", ARCH_X86, "blob-", MK_FILE, 4096, IN_OPEN,
                       "devices[0].file", false},
    [F_PFLASH] = {"pflash[]", ARCH_X86, "flash-", MK_FILE, 65536, IN_OPEN, "pflash[0]", false},
    [F_QMP_SOCKET] = {"qmp_sockets[].name", ARCH_X86, "qmp-", MK_NONE, 0, IN_CREATE,
                      "qmp_sockets[0].name", true},
    [F_EXEC_WORD] = {"incoming.exec[]", ARCH_X86, NULL, MK_NONE, 0, 0, "incoming.exec[4]", false},
    [F_KERNEL] = {"kernel.path", ARCH_ARM, "vmlinuz-", MK_FILE, 65536, IN_OPEN, "kernel.path",
                  false},
    [F_INITRD] = {"kernel.initrd_path", ARCH_ARM, "initrd-", MK_FILE, 4096, IN_OPEN,
                  "kernel.initrd_path", false},
    [F_APPEND] = {"kernel.params", ARCH_ARM, NULL, MK_NONE, 0, 0, "kernel.params", false},
    [F_BIOS] = {"bios", ARCH_ARM, "bios-", MK_FILE, 65536, IN_OPEN, "bios", false},
};

_Static_assert(sizeof("vmlinuz-") - 1 == HOSTILE_LONG_PREFIX_MAX, "longest prefix");

typedef uint64_t fmask;
#define BIT(f) ((fmask)1 << (f))

/* ---- small helpers ----------------------------------------------------- */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    return s;
}

/* Shows a value on one line: control bytes (C0, DEL, C1) and bytes that are
 * not UTF-8 escaped as \xNN, other UTF-8 kept. */
static char *show(const char *s)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append_c(&sb, '"');
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (c >= 0x80 &&
            (sv_utf8_bad_offset(p + i, len - i) == 0 || (c == 0xc2 && p[i + 1] < 0xa0)))
            n = 0; /* not UTF-8, or a C1 control: escape the byte */
        if (n > 1) {
            sv_strbuf_append_n(&sb, s + i, n);
            i += n;
            continue;
        }
        if (c == '\n')
            sv_strbuf_append(&sb, "\\n");
        else if (c == '\t')
            sv_strbuf_append(&sb, "\\t");
        else if (c == '"' || c == '\\')
            sv_strbuf_appendf(&sb, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            sv_strbuf_appendf(&sb, "\\x%02x", c);
        else
            sv_strbuf_append_c(&sb, (char)c);
        i++;
    }
    sv_strbuf_append_c(&sb, '"');
    char *r = sv_strbuf_steal(&sb);
    if (!r)
        abort();
    return r;
}

static bool in_path(const char *bin)
{
    const char *path = getenv("PATH");
    _cleanup_free_ char *copy = strdup(path && *path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        _cleanup_free_ char *f = xasprintf("%s/%s", d, bin);
        if (access(f, X_OK) == 0)
            return true;
    }
    return false;
}

static int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                    continue;
                _cleanup_free_ char *c = xasprintf("%s/%s", path, de->d_name);
                rm_rf(c);
            }
            closedir(d);
        }
        return rmdir(path) < 0 ? -errno : 0;
    }
    return unlink(path) < 0 ? -errno : 0;
}

static int make_file(const char *path, off_t size)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, size) < 0)
        return -errno;
    return 0;
}

static int mkdir_p(const char *path)
{
    _cleanup_free_ char *p = strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* ---- one run: a config for a set of fields, one value ------------------ */

typedef struct run {
    const hname *val;
    const char *base;    /* this value's directory */
    char *top[F__MAX];   /* per field: its own fresh directory */
    char *dir[F__MAX];   /* per field: the directory holding its file (watched) */
    char *file[F__MAX];  /* per field: the file name (basename) */
    char *path[F__MAX];  /* per field: dir/file, the hostile path */
    char *plain[F__MAX]; /* per field: a harmless path, when another field needs this one */
    char *fail[F__MAX];  /* per field: why it failed (NULL: passed) */
    bool seen[F__MAX];   /* inotify saw the expected name */
    char *stray[F__MAX]; /* inotify saw another name in the directory */
} run;

static void run_reset_results(run *r, fmask m)
{
    for (int f = 0; f < F__MAX; f++) {
        if (!(m & BIT(f)))
            continue;
        free(r->fail[f]);
        r->fail[f] = NULL;
        free(r->stray[f]);
        r->stray[f] = NULL;
        r->seen[f] = false;
    }
}

static void run_free(run *r)
{
    for (int f = 0; f < F__MAX; f++) {
        free(r->top[f]);
        free(r->dir[f]);
        free(r->file[f]);
        free(r->path[f]);
        free(r->plain[f]);
        free(r->fail[f]);
        free(r->stray[f]);
    }
}

/* Records why a field failed; several reasons are joined with "; ". */
static void fail_field(run *r, field f, char *why)
{
    if (r->fail[f]) {
        char *both = xasprintf("%s; %s", r->fail[f], why);
        free(r->fail[f]);
        free(why);
        r->fail[f] = both;
        return;
    }
    r->fail[f] = why;
}

static void fail_mask(run *r, fmask m, const char *why)
{
    for (int f = 0; f < F__MAX; f++)
        if (m & BIT(f))
            fail_field(r, (field)f, xasprintf("%s", why));
}

/* The paths of every field for this value. A value holding '/' puts the
 * file in subdirectories of the field's directory. The exec word's file is
 * where the script writes the word it got (not a sandvm path). */
static void compute_paths(run *r)
{
    for (int f = 0; f < F__MAX; f++) {
        r->top[f] = xasprintf("%s/f%02d", r->base, f);
        if (f == F_EXEC_WORD)
            r->path[f] = xasprintf("%s/exec-out", r->top[f]);
        else if (fields[f].prefix)
            r->path[f] = xasprintf("%s/%s%s", r->top[f], fields[f].prefix, r->val->v);
        else
            continue;
        char *slash = strrchr(r->path[f], '/');
        r->dir[f] = strndup(r->path[f], (size_t)(slash - r->path[f]));
        r->file[f] = strdup(slash + 1);
        if (fields[f].prefix)
            r->plain[f] = xasprintf("%s/plain/%splain", r->base, fields[f].prefix);
    }
}

/* Creates the field's directory (fresh, so only QEMU's doing shows up in it)
 * and the file QEMU is to open. */
static int prepare_field(run *r, field f)
{
    const fdesc *d = &fields[f];
    if (!r->path[f])
        return 0;
    rm_rf(r->top[f]);
    int e = mkdir_p(r->dir[f]);
    if (e < 0)
        return e;
    if (!d->prefix)
        return 0;
    /* A decoy where a misparsed value would point: "img-x,readonly=on" read
     * as file=img-x plus readonly=on would open the decoy "img-x" read-only,
     * and the test would see it. */
    const char *comma = strchr(r->val->v, ',');
    const char *slash = strchr(r->val->v, '/');
    if (comma && (!slash || comma < slash) && d->mk != MK_NONE) {
        _cleanup_free_ char *decoy =
            xasprintf("%s/%s%.*s", r->top[f], d->prefix, (int)(comma - r->val->v), r->val->v);
        int de =
            d->mk == MK_FILE ? make_file(decoy, d->size) : (mkdir(decoy, 0755) < 0 ? -errno : 0);
        if (de < 0 && de != -EEXIST)
            return de;
    }
    if (d->mk == MK_FILE)
        return make_file(r->path[f], d->size);
    if (d->mk == MK_DIR)
        return mkdir(r->path[f], 0755) < 0 ? -errno : 0;
    return 0;
}

/* The harmless file of a field another field needs (a disk for a serial, a
 * kernel for an initrd). */
static int prepare_plain(run *r, field f)
{
    const fdesc *d = &fields[f];
    _cleanup_free_ char *dir =
        strndup(r->plain[f], (size_t)(strrchr(r->plain[f], '/') - r->plain[f]));
    int e = mkdir_p(dir);
    if (e < 0)
        return e;
    if (d->mk == MK_FILE)
        return make_file(r->plain[f], d->size);
    if (d->mk == MK_DIR)
        return mkdir(r->plain[f], 0755) < 0 && errno != EEXIST ? -errno : 0;
    return 0;
}

/* The path a config for `m` uses for field `f`: the hostile one when `f` is
 * under test, else the harmless one. */
static const char *fpath(const run *r, fmask m, field f)
{
    return (m & BIT(f)) ? r->path[f] : r->plain[f];
}

static json_object *jstr(const char *s)
{
    return json_object_new_string(s);
}

static void jadd(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, v);
}

static json_object *jdev(const char *type, const char *id)
{
    json_object *d = json_object_new_object();
    jadd(d, "type", jstr(type));
    if (id)
        jadd(d, "id", jstr(id));
    return d;
}

/* The config, as JSON text built with json-c so every value is escaped right.
 * `binary`: the QEMU to name in it (NULL: the one in PATH). */
static char *build_config(run *r, arch a, fmask m, const char *binary)
{
    const char *v = r->val->v;
    _cleanup_json_ json_object *c = json_object_new_object();
    json_object *knobs = json_object_new_object();
    jadd(knobs, "no_defaults", json_object_new_boolean(true));
    jadd(knobs, "no_user_config", json_object_new_boolean(true));
    json_object *machine = json_object_new_object();
    jadd(machine, "acceleration", jstr("tcg"));
    json_object *devs = json_object_new_array();

    if (a == ARCH_ARM) {
        jadd(c, "path", jstr(binary ? binary : "qemu-system-aarch64"));
        jadd(machine, "type", jstr("virt"));
        jadd(c, "cpu_model", jstr("cortex-a57"));
        if (m & (BIT(F_KERNEL) | BIT(F_INITRD) | BIT(F_APPEND))) {
            json_object *k = json_object_new_object();
            /* -initrd and -append need -kernel: a plain one unless under test */
            jadd(k, "path", jstr(fpath(r, m, F_KERNEL)));
            if (m & BIT(F_INITRD))
                jadd(k, "initrd_path", jstr(r->path[F_INITRD]));
            if (m & BIT(F_APPEND))
                jadd(k, "params", jstr(v));
            jadd(c, "kernel", k);
        }
        if (m & BIT(F_BIOS))
            jadd(c, "bios", jstr(r->path[F_BIOS]));
    } else {
        jadd(c, "path", jstr(binary ? binary : "qemu-system-x86_64"));
        jadd(machine, "type", jstr("q35"));
        if (m & BIT(F_NAME))
            jadd(c, "name", jstr(v));
        if (m & (BIT(F_BLK_FILE) | BIT(F_BLK_SERIAL))) {
            json_object *d = jdev("block", "blk0");
            jadd(d, "file", jstr(fpath(r, m, F_BLK_FILE)));
            jadd(d, "format", jstr("raw"));
            if (m & BIT(F_BLK_SERIAL))
                jadd(d, "serial", jstr(v));
            json_object_array_add(devs, d);
        }
        if (m & BIT(F_BLKDEV_FILE)) {
            json_object *d = jdev("block", "blk1");
            jadd(d, "file", jstr(r->path[F_BLKDEV_FILE]));
            jadd(d, "blockdev", json_object_new_boolean(true));
            json_object_array_add(devs, d);
        }
        if (m & BIT(F_BLK_RO_FILE)) {
            json_object *d = jdev("block", "blk2");
            jadd(d, "file", jstr(r->path[F_BLK_RO_FILE]));
            jadd(d, "read_only", json_object_new_boolean(true));
            json_object_array_add(devs, d);
        }
        if (m & BIT(F_BLKDEV_RO_FILE)) {
            json_object *d = jdev("block", "blk3");
            jadd(d, "file", jstr(r->path[F_BLKDEV_RO_FILE]));
            jadd(d, "blockdev", json_object_new_boolean(true));
            jadd(d, "read_only", json_object_new_boolean(true));
            json_object_array_add(devs, d);
        }
        if (m & (BIT(F_FS_PATH) | BIT(F_FS_TAG))) {
            json_object *d = jdev("fs", "fs0");
            jadd(d, "path", jstr(fpath(r, m, F_FS_PATH)));
            _cleanup_free_ char *tag = xasprintf("t%s", v);
            jadd(d, "mount_tag", jstr(m & BIT(F_FS_TAG) ? tag : "share"));
            jadd(d, "security_model", jstr("mapped-xattr"));
            json_object_array_add(devs, d);
        }
        if (m & (BIT(F_CHR_SOCKET) | BIT(F_PORT_NAME) | BIT(F_GLOBAL)))
            json_object_array_add(devs, jdev("serial", "vser0"));
        if (m & (BIT(F_CHR_SOCKET) | BIT(F_PORT_NAME))) {
            json_object *d = jdev("char", "chr0");
            jadd(d, "backend", jstr(m & BIT(F_CHR_SOCKET) ? "socket" : "null"));
            if (m & BIT(F_CHR_SOCKET))
                jadd(d, "path", jstr(r->path[F_CHR_SOCKET]));
            jadd(d, "driver", jstr("virtserialport"));
            jadd(d, "device_id", jstr("port0"));
            if (m & BIT(F_PORT_NAME))
                jadd(d, "name", jstr(v));
            json_object_array_add(devs, d);
        }
        if (m & BIT(F_CHR_FILE)) {
            json_object *d = jdev("char", "chr1");
            jadd(d, "backend", jstr("file"));
            jadd(d, "path", jstr(r->path[F_CHR_FILE]));
            jadd(d, "driver", jstr("none"));
            json_object_array_add(devs, d);
        }
        if (m & BIT(F_GLOBAL)) {
            /* a port without a name of its own takes the -global default */
            json_object *d = jdev("char", "chr2");
            jadd(d, "backend", jstr("null"));
            jadd(d, "driver", jstr("virtserialport"));
            jadd(d, "device_id", jstr("port1"));
            json_object_array_add(devs, d);
            _cleanup_free_ char *g = xasprintf("virtserialport.name=g%s", v);
            jadd(c, "global_param", jstr(g));
        }
        if (m & BIT(F_PIDFILE))
            jadd(c, "pid_file", jstr(r->path[F_PIDFILE]));
        if (m & BIT(F_LOGFILE))
            jadd(c, "log_file", jstr(r->path[F_LOGFILE]));
        if (m & BIT(F_FWCFG_FILE)) {
            json_object *fw = json_object_new_array();
            json_object *e = json_object_new_object();
            jadd(e, "name", jstr("opt/org.sandvm/hostile"));
            jadd(e, "file", jstr(r->path[F_FWCFG_FILE]));
            json_object_array_add(fw, e);
            jadd(c, "fw_cfg", fw);
        }
        if (m & BIT(F_RNG_FILE)) {
            json_object *d = jdev("rng", "rng0");
            jadd(d, "filename", jstr(r->path[F_RNG_FILE]));
            json_object_array_add(devs, d);
        }
        if (m & BIT(F_MEMDEV_PATH)) {
            json_object *d = jdev("memory_backend", "mb0");
            jadd(d, "backend", jstr("file"));
            jadd(d, "size", jstr("4M"));
            jadd(d, "mem_path", jstr(r->path[F_MEMDEV_PATH]));
            json_object_array_add(devs, d);
        }
        if (m & BIT(F_RAM_PATH)) {
            json_object *mem = json_object_new_object();
            jadd(mem, "size", jstr("64M"));
            jadd(mem, "path", jstr(r->path[F_RAM_PATH]));
            jadd(c, "memory", mem);
            jadd(knobs, "file_backed_mem", json_object_new_boolean(true));
        }
        if (m & BIT(F_LOADER_FILE)) {
            json_object *d = jdev("loader", "ld0");
            jadd(d, "file", jstr(r->path[F_LOADER_FILE]));
            jadd(d, "addr", json_object_new_int64(0x100000));
            jadd(d, "force_raw", json_object_new_boolean(true));
            json_object_array_add(devs, d);
        }
        if (m & BIT(F_PFLASH)) {
            json_object *pf = json_object_new_array();
            json_object_array_add(pf, jstr(r->path[F_PFLASH]));
            jadd(c, "pflash", pf);
        }
        if (m & BIT(F_QMP_SOCKET)) {
            json_object *q = json_object_new_array();
            json_object *s = json_object_new_object();
            jadd(s, "type", jstr("unix"));
            jadd(s, "name", jstr(r->path[F_QMP_SOCKET]));
            jadd(s, "server", json_object_new_boolean(true));
            jadd(s, "no_wait", json_object_new_boolean(true));
            json_object_array_add(q, s);
            jadd(c, "qmp_sockets", q);
        }
        if (m & BIT(F_EXEC_WORD)) {
            /* QEMU runs the words with /bin/sh -c; the script writes the
             * word it received ($1) to the file named by $2, then waits so
             * that QEMU does not see the migration stream end. */
            json_object *in = json_object_new_object();
            jadd(in, "migration_type", jstr("exec"));
            json_object *w = json_object_new_array();
            json_object_array_add(w, jstr("/bin/sh"));
            json_object_array_add(w, jstr("-c"));
            json_object_array_add(
                w, jstr("exec 2>/dev/null </dev/null; printf %s \"$1\" > \"$2.tmp\" && "
                        "mv \"$2.tmp\" \"$2\"; exec sleep 3"));
            json_object_array_add(w, jstr("sh"));
            json_object_array_add(w, jstr(v));
            json_object_array_add(w, jstr(r->path[F_EXEC_WORD]));
            jadd(in, "exec", w);
            jadd(c, "incoming", in);
        }
    }
    jadd(c, "machine", machine);
    jadd(c, "knobs", knobs);
    if (json_object_array_length(devs))
        jadd(c, "devices", devs);
    else
        json_object_put(devs);
    return strdup(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN));
}

/* ---- QMP command lists and their replies ------------------------------- */

typedef struct cmds {
    char *text[32];
    size_t n;
} cmds;

static size_t cmd_add(cmds *c, const char *execute, const char *path, const char *prop)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    jadd(o, "execute", jstr(execute));
    if (path) {
        json_object *args = json_object_new_object();
        jadd(args, "path", jstr(path));
        if (prop)
            jadd(args, "property", jstr(prop));
        jadd(o, "arguments", args);
    }
    c->text[c->n] = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    return c->n++;
}

static void cmds_free(cmds *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->text[i]);
    c->n = 0;
}

/* Runs QEMU for `cfg` with the commands; on success replies[i] are parsed. */
static int check_with(sv_qemu_config *cfg, cmds *c, json_object **replies, char **why)
{
    const char *q[33];
    char *raw[32] = {0};
    for (size_t i = 0; i < c->n; i++)
        q[i] = c->text[i];
    q[c->n] = NULL;
    sv_qemu_check_opts o = {.timeout_ms = 30000, .qmp = q, .replies = raw};
    sv_error *err = NULL;
    int rc = sv_qemu_check(cfg, &o, &err);
    if (rc < 0) {
        _cleanup_free_ char *m = show(sv_error_message(err));
        *why = xasprintf("QEMU check failed: %s", m);
        sv_error_free(err);
        return rc;
    }
    for (size_t i = 0; i < c->n; i++) {
        replies[i] = raw[i] ? json_tokener_parse(raw[i]) : NULL;
        free(raw[i]);
    }
    return 0;
}

static const char *jget_str(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static json_object *jget(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* query-block entry by drive id (device) or by node name. */
static json_object *find_block(json_object *qb, const char *device, const char *node)
{
    for (size_t i = 0;
         qb && json_object_is_type(qb, json_type_array) && i < json_object_array_length(qb); i++) {
        json_object *e = json_object_array_get_idx(qb, i);
        const char *dev = jget_str(e, "device");
        const char *nn = jget_str(jget(e, "inserted"), "node-name");
        if ((device && dev && !strcmp(dev, device)) || (node && nn && !strcmp(nn, node)))
            return e;
    }
    return NULL;
}

static json_object *find_chardev(json_object *qc, const char *label)
{
    for (size_t i = 0;
         qc && json_object_is_type(qc, json_type_array) && i < json_object_array_length(qc); i++) {
        json_object *e = json_object_array_get_idx(qc, i);
        const char *l = jget_str(e, "label");
        if (l && !strcmp(l, label))
            return e;
    }
    return NULL;
}

/* Compares what QEMU reported with the original bytes. */
static void expect_exact(run *r, field f, const char *what, const char *got, const char *want)
{
    if (got && strcmp(got, want) == 0)
        return;
    _cleanup_free_ char *g = got ? show(got) : strdup("(nothing)");
    _cleanup_free_ char *w = show(want);
    fail_field(r, f, xasprintf("%s: QEMU has %s, expected %s", what, g, w));
}

/* `s` as QMP can show it: QEMU's JSON writer puts U+FFFD in place of the
 * Unicode noncharacters (U+FDD0-U+FDEF and U+xFFFE/U+xFFFF of every plane).
 * QEMU still holds and opens the exact bytes (the inotify checks see that);
 * only its QMP replies cannot carry them. */
static char *qmp_view(const char *s)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, "");
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i];) {
        size_t n = p[i] < 0x80 ? 1 : p[i] < 0xe0 ? 2 : p[i] < 0xf0 ? 3 : 4;
        uint32_t cp = n == 1 ? p[i] : n == 2 ? p[i] & 0x1fu : n == 3 ? p[i] & 0x0fu : p[i] & 0x07u;
        for (size_t k = 1; k < n && p[i + k]; k++)
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
            sv_strbuf_append(&sb, "\xef\xbf\xbd");
        else
            sv_strbuf_append_n(&sb, s + i, n);
        i += n;
    }
    char *r = sv_strbuf_steal(&sb);
    if (!r)
        abort();
    return r;
}

/* Compares what QEMU reported over QMP with the original bytes. */
static void expect_str(run *r, field f, const char *what, const char *got, const char *want)
{
    _cleanup_free_ char *view = qmp_view(want);
    expect_exact(r, f, what, got, view);
}

static void expect_block(run *r, field f, json_object *qb, const char *device, const char *node,
                         bool ro)
{
    json_object *e = find_block(qb, device, node);
    if (!e) {
        fail_field(r, f, xasprintf("query-block: no entry for %s", device ? device : node));
        return;
    }
    json_object *ins = jget(e, "inserted");
    expect_str(r, f, "query-block inserted.file", jget_str(ins, "file"), r->path[f]);
    json_object *rov = jget(ins, "ro");
    if (!rov || !json_object_is_type(rov, json_type_boolean) || json_object_get_boolean(rov) != ro)
        fail_field(r, f,
                   xasprintf("query-block: ro is %s, expected %s",
                             rov ? json_object_to_json_string(rov) : "missing",
                             ro ? "true" : "false"));
}

static void expect_reply_str(run *r, field f, const char *what, json_object *reply,
                             const char *want)
{
    const char *got = reply && json_object_is_type(reply, json_type_string)
                          ? json_object_get_string(reply)
                          : NULL;
    expect_str(r, f, what, got, want);
}

/* inotify: watch each field's directory for what QEMU does in it (and the
 * field's top directory, where the decoys are, when the name holds a '/'). */
typedef struct watch {
    int fd;
    int wd[F__MAX];
    int wd_top[F__MAX];
} watch;

static int watch_start(watch *w, run *r, fmask m)
{
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0)
        return -errno;
    for (int f = 0; f < F__MAX; f++) {
        w->wd[f] = w->wd_top[f] = -1;
        if (!(m & BIT(f)) || !fields[f].events || !r->dir[f])
            continue;
        w->wd[f] = inotify_add_watch(w->fd, r->dir[f], IN_OPEN | IN_CREATE | IN_MOVED_TO);
        if (w->wd[f] >= 0 && strcmp(r->dir[f], r->top[f]) != 0)
            w->wd_top[f] = inotify_add_watch(w->fd, r->top[f], IN_OPEN | IN_CREATE | IN_MOVED_TO);
        if (w->wd[f] < 0 || (strcmp(r->dir[f], r->top[f]) != 0 && w->wd_top[f] < 0)) {
            int e = errno;
            close(w->fd);
            return -e;
        }
    }
    return 0;
}

static void watch_collect(watch *w, run *r)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (!ev->len)
                continue;
            for (int f = 0; f < F__MAX; f++) {
                if (w->wd[f] == ev->wd && !strcmp(ev->name, r->file[f])) {
                    if (ev->mask & fields[f].events)
                        r->seen[f] = true;
                } else if ((w->wd[f] == ev->wd || w->wd_top[f] == ev->wd) && !r->stray[f]) {
                    r->stray[f] = strdup(ev->name);
                }
            }
        }
    }
    close(w->fd);
}

/* Reads the file the exec'd script writes; it may come after QEMU quit. */
static char *wait_exec_output(const char *path)
{
    for (int i = 0; i < 100; i++) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            sv_strbuf sb = SV_STRBUF_INIT;
            sv_strbuf_append(&sb, "");
            char b[4096];
            ssize_t n;
            while ((n = read(fd, b, sizeof(b))) > 0)
                sv_strbuf_append_n(&sb, b, (size_t)n);
            return sv_strbuf_steal(&sb);
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* QOM paths found by a discovery run, per set of fields. */
typedef struct discovered {
    fmask m;
    char *blk0_qdev;
    char *p9_path;
} discovered;

static discovered discoveries[256];
static size_t n_discoveries;

static void discoveries_free(void)
{
    for (size_t i = 0; i < n_discoveries; i++) {
        free(discoveries[i].blk0_qdev);
        free(discoveries[i].p9_path);
    }
    n_discoveries = 0;
}

/* The QOM paths of the serial's drive and the 9p device for configs with the
 * fields `m`, from a run of `cfg` the first time. NULL (fields failed) when
 * QEMU could not be asked. */
static const discovered *discover(run *r, sv_qemu_config *cfg, fmask m)
{
    for (size_t i = 0; i < n_discoveries; i++)
        if (discoveries[i].m == m)
            return &discoveries[i];
    cmds c = {0};
    size_t i_qb = cmd_add(&c, "query-block", NULL, NULL);
    size_t i_anon = cmd_add(&c, "qom-list", "/machine/peripheral-anon", NULL);
    json_object *rep[32] = {0};
    char *why = NULL;
    if (check_with(cfg, &c, rep, &why) < 0) {
        fail_mask(r, m, why);
        free(why);
        cmds_free(&c);
        return NULL;
    }
    discovered d = {m, NULL, NULL};
    const char *q = jget_str(find_block(rep[i_qb], "blk0", NULL), "qdev");
    if (q)
        d.blk0_qdev = strdup(q);
    for (size_t i = 0; rep[i_anon] && i < json_object_array_length(rep[i_anon]); i++) {
        json_object *e = json_object_array_get_idx(rep[i_anon], i);
        const char *t = jget_str(e, "type"), *n = jget_str(e, "name");
        if (t && n && !strncmp(t, "child<virtio-9p-", 16)) {
            free(d.p9_path);
            d.p9_path = xasprintf("/machine/peripheral-anon/%s", n);
        }
    }
    for (size_t i = 0; i < c.n; i++)
        json_object_put(rep[i]);
    cmds_free(&c);
    if (n_discoveries == SV_ARRAY_SIZE(discoveries))
        abort();
    discoveries[n_discoveries] = d;
    return &discoveries[n_discoveries++];
}

/* Runs one config holding the fields in `m` and records each field's result. */
static void run_mask(run *r, arch a, fmask m)
{
    run_reset_results(r, m);
    for (int f = 0; f < F__MAX; f++) {
        if (!(m & BIT(f)))
            continue;
        int e = prepare_field(r, (field)f);
        if (e < 0) {
            fail_field(r, (field)f, xasprintf("creating %s: %s", r->path[f], strerror(-e)));
            return;
        }
    }
    /* Fields that ride on another field's file: a serial needs its disk, a
     * mount tag its directory, -initrd/-append a kernel; a harmless one
     * unless that field is under test too. */
    static const struct {
        field f, needs;
    } deps[] = {{F_BLK_SERIAL, F_BLK_FILE},
                {F_FS_TAG, F_FS_PATH},
                {F_INITRD, F_KERNEL},
                {F_APPEND, F_KERNEL}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(deps); i++) {
        if ((m & BIT(deps[i].f)) && !(m & BIT(deps[i].needs))) {
            int e = prepare_plain(r, deps[i].needs);
            if (e < 0) {
                fail_field(r, deps[i].f,
                           xasprintf("creating %s: %s", r->plain[deps[i].needs], strerror(-e)));
                return;
            }
        }
    }

    _cleanup_free_ char *text = build_config(r, a, m, NULL);
    sv_qemu_config *cfg = NULL;
    sv_error *err = NULL;
    if (sv_qemu_config_parse(text, strlen(text), &cfg, &err) < 0) {
        _cleanup_free_ char *msg = show(sv_error_message(err));
        _cleanup_free_ char *why = xasprintf("sandvm rejected the config: %s", msg);
        fail_mask(r, m, why);
        sv_error_free(err);
        return;
    }

    /* Discovery: devices without an id of their own are found through the
     * drive (query-block "qdev") or their type (qom-list). Their QOM paths
     * depend only on which devices the config has, so one discovery serves
     * every name with the same fields; the main run checks the drive's qdev
     * again, and a stale 9p path would make qom-get fail. */
    const char *blk0_qdev = NULL, *p9_path = NULL;
    if (m & (BIT(F_BLK_SERIAL) | BIT(F_FS_TAG))) {
        const discovered *known = discover(r, cfg, m);
        if (!known) {
            sv_qemu_config_free(cfg);
            return;
        }
        blk0_qdev = known->blk0_qdev;
        p9_path = known->p9_path;
        if ((m & BIT(F_BLK_SERIAL)) && !blk0_qdev)
            fail_field(r, F_BLK_SERIAL, strdup("query-block: no qdev for drive blk0"));
        if ((m & BIT(F_FS_TAG)) && !p9_path)
            fail_field(r, F_FS_TAG, strdup("qom-list: no virtio-9p device"));
    }

    cmds c = {0};
    ssize_t i_name = -1, i_qb = -1, i_serial = -1, i_tag = -1, i_chr = -1, i_port0 = -1,
            i_port1 = -1, i_rng = -1, i_memdev = -1, i_ram = -1, i_loader = -1, i_kernel = -1,
            i_initrd = -1, i_append = -1, i_bios = -1;
    if (m & BIT(F_NAME))
        i_name = (ssize_t)cmd_add(&c, "query-name", NULL, NULL);
    if (m & (BIT(F_BLK_FILE) | BIT(F_BLKDEV_FILE) | BIT(F_BLK_RO_FILE) | BIT(F_BLKDEV_RO_FILE) |
             BIT(F_PFLASH) | BIT(F_BLK_SERIAL)))
        i_qb = (ssize_t)cmd_add(&c, "query-block", NULL, NULL);
    if ((m & BIT(F_BLK_SERIAL)) && blk0_qdev)
        i_serial = (ssize_t)cmd_add(&c, "qom-get", blk0_qdev, "serial");
    if ((m & BIT(F_FS_TAG)) && p9_path)
        i_tag = (ssize_t)cmd_add(&c, "qom-get", p9_path, "mount_tag");
    if (m & (BIT(F_CHR_SOCKET) | BIT(F_CHR_FILE) | BIT(F_QMP_SOCKET)))
        i_chr = (ssize_t)cmd_add(&c, "query-chardev", NULL, NULL);
    if (m & BIT(F_PORT_NAME))
        i_port0 = (ssize_t)cmd_add(&c, "qom-get", "/machine/peripheral/port0", "name");
    if (m & BIT(F_GLOBAL))
        i_port1 = (ssize_t)cmd_add(&c, "qom-get", "/machine/peripheral/port1", "name");
    if (m & BIT(F_RNG_FILE))
        i_rng = (ssize_t)cmd_add(&c, "qom-get", "/objects/rng0", "filename");
    if (m & BIT(F_MEMDEV_PATH))
        i_memdev = (ssize_t)cmd_add(&c, "qom-get", "/objects/mb0", "mem-path");
    if (m & BIT(F_RAM_PATH))
        i_ram = (ssize_t)cmd_add(&c, "qom-get", "/objects/sv-ram", "mem-path");
    if (m & BIT(F_LOADER_FILE))
        i_loader = (ssize_t)cmd_add(&c, "qom-get", "/machine/peripheral/ld0", "file");
    if (m & BIT(F_KERNEL))
        i_kernel = (ssize_t)cmd_add(&c, "qom-get", "/machine", "kernel");
    if (m & BIT(F_INITRD))
        i_initrd = (ssize_t)cmd_add(&c, "qom-get", "/machine", "initrd");
    if (m & BIT(F_APPEND))
        i_append = (ssize_t)cmd_add(&c, "qom-get", "/machine", "append");
    if (m & BIT(F_BIOS))
        i_bios = (ssize_t)cmd_add(&c, "qom-get", "/machine", "firmware");
    if (!c.n)
        cmd_add(&c, "query-status", NULL, NULL);

    /* the discovery run left files behind: start from fresh directories */
    for (int f = 0; f < F__MAX; f++)
        if ((m & BIT(f)) && fields[f].mk == MK_NONE && r->path[f])
            prepare_field(r, (field)f);

    watch w;
    int we = watch_start(&w, r, m);
    if (we < 0) {
        _cleanup_free_ char *why = xasprintf("inotify: %s", strerror(-we));
        fail_mask(r, m, why);
        cmds_free(&c);
        sv_qemu_config_free(cfg);
        return;
    }
    json_object *rep[32] = {0};
    char *why = NULL;
    int rc = check_with(cfg, &c, rep, &why);
    watch_collect(&w, r);
    sv_qemu_config_free(cfg);
    if (rc < 0) {
        fail_mask(r, m, why);
        free(why);
        cmds_free(&c);
        return;
    }
#define REP(i) ((i) >= 0 ? rep[(i)] : NULL)
    const char *v = r->val->v;
    if (m & BIT(F_NAME))
        expect_str(r, F_NAME, "query-name", jget_str(REP(i_name), "name"), v);
    if (m & BIT(F_BLK_FILE))
        expect_block(r, F_BLK_FILE, REP(i_qb), "blk0", NULL, false);
    if (m & BIT(F_BLKDEV_FILE))
        expect_block(r, F_BLKDEV_FILE, REP(i_qb), NULL, "blk1", false);
    if (m & BIT(F_BLK_RO_FILE))
        expect_block(r, F_BLK_RO_FILE, REP(i_qb), "blk2", NULL, true);
    if (m & BIT(F_BLKDEV_RO_FILE))
        expect_block(r, F_BLKDEV_RO_FILE, REP(i_qb), NULL, "blk3", true);
    if (m & BIT(F_PFLASH))
        expect_block(r, F_PFLASH, REP(i_qb), "pflash0", NULL, false);
    if ((m & BIT(F_BLK_SERIAL)) && i_serial >= 0) {
        expect_exact(r, F_BLK_SERIAL, "query-block blk0 qdev (as discovered)",
                     jget_str(find_block(REP(i_qb), "blk0", NULL), "qdev"), blk0_qdev);
        expect_reply_str(r, F_BLK_SERIAL, "qom-get serial", REP(i_serial), v);
    }
    if ((m & BIT(F_FS_TAG)) && i_tag >= 0) {
        _cleanup_free_ char *tag = xasprintf("t%s", v);
        expect_reply_str(r, F_FS_TAG, "qom-get mount_tag", REP(i_tag), tag);
    }
    if (m & BIT(F_CHR_SOCKET)) {
        _cleanup_free_ char *want =
            xasprintf("disconnected:unix:%s,server=on", r->path[F_CHR_SOCKET]);
        expect_str(r, F_CHR_SOCKET, "query-chardev chr0 filename",
                   jget_str(find_chardev(REP(i_chr), "chr0"), "filename"), want);
    }
    if ((m & BIT(F_CHR_FILE)) && !find_chardev(REP(i_chr), "chr1"))
        fail_field(r, F_CHR_FILE, strdup("query-chardev: no chardev chr1"));
    if (m & BIT(F_QMP_SOCKET)) {
        _cleanup_free_ char *want =
            xasprintf("disconnected:unix:%s,server=on", r->path[F_QMP_SOCKET]);
        expect_str(r, F_QMP_SOCKET, "query-chardev qmp0 filename",
                   jget_str(find_chardev(REP(i_chr), "qmp0"), "filename"), want);
    }
    if (m & BIT(F_PORT_NAME))
        expect_reply_str(r, F_PORT_NAME, "qom-get port0 name", REP(i_port0), v);
    if (m & BIT(F_GLOBAL)) {
        _cleanup_free_ char *want = xasprintf("g%s", v);
        expect_reply_str(r, F_GLOBAL, "qom-get port1 name", REP(i_port1), want);
    }
    if (m & BIT(F_RNG_FILE))
        expect_reply_str(r, F_RNG_FILE, "qom-get rng0 filename", REP(i_rng), r->path[F_RNG_FILE]);
    if (m & BIT(F_MEMDEV_PATH))
        expect_reply_str(r, F_MEMDEV_PATH, "qom-get mb0 mem-path", REP(i_memdev),
                         r->path[F_MEMDEV_PATH]);
    if (m & BIT(F_RAM_PATH))
        expect_reply_str(r, F_RAM_PATH, "qom-get sv-ram mem-path", REP(i_ram), r->path[F_RAM_PATH]);
    if (m & BIT(F_LOADER_FILE))
        expect_reply_str(r, F_LOADER_FILE, "qom-get ld0 file", REP(i_loader),
                         r->path[F_LOADER_FILE]);
    if (m & BIT(F_KERNEL))
        expect_reply_str(r, F_KERNEL, "qom-get /machine kernel", REP(i_kernel), r->path[F_KERNEL]);
    if (m & BIT(F_INITRD))
        expect_reply_str(r, F_INITRD, "qom-get /machine initrd", REP(i_initrd), r->path[F_INITRD]);
    if (m & BIT(F_APPEND))
        expect_reply_str(r, F_APPEND, "qom-get /machine append", REP(i_append), v);
    if (m & BIT(F_BIOS))
        expect_reply_str(r, F_BIOS, "qom-get /machine firmware", REP(i_bios), r->path[F_BIOS]);
    if (m & BIT(F_EXEC_WORD)) {
        _cleanup_free_ char *got = wait_exec_output(r->path[F_EXEC_WORD]);
        expect_exact(r, F_EXEC_WORD, "the word the shell received", got, v);
    }
#undef REP
    /* files: QEMU opened or created exactly the name, and nothing else there */
    for (int f = 0; f < F__MAX; f++) {
        if (!(m & BIT(f)) || !fields[f].events)
            continue;
        if (r->stray[f]) {
            _cleanup_free_ char *s = show(r->stray[f]);
            _cleanup_free_ char *e = show(r->file[f]);
            fail_field(r, (field)f, xasprintf("QEMU touched %s next to %s", s, e));
        } else if (!r->seen[f]) {
            _cleanup_free_ char *e = show(r->file[f]);
            fail_field(r, (field)f,
                       xasprintf("QEMU never %s %s",
                                 fields[f].events == IN_OPEN ? "opened" : "created", e));
        }
    }
    for (size_t i = 0; i < c.n; i++)
        json_object_put(rep[i]);
    cmds_free(&c);
}

/* ---- rejections: what must never reach QEMU --------------------------- */

/* Bytes sandvm must refuse in a path (C0, DEL, C1 controls): the offset of
 * the first, or -1. Written apart from the library's check on purpose. */
static ssize_t control_offset(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i]; i++)
        if (p[i] < 0x20 || p[i] == 0x7f || (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))
            return (ssize_t)i;
    return -1;
}

/* Whether `s` holds a byte sequence that is not UTF-8: any byte >= 0x80 of
 * the invalid names is (the valid names hold only well-formed UTF-8, and
 * hostile_names_invalid() marks its UTF-8 ones by label). */
static bool invalid_utf8_label(const hname *n)
{
    return n && strncmp(n->label, "utf8-", 5) == 0;
}

/* The error fragment sandvm must give when field `f` holds this run's value,
 * or NULL when QEMU must get the value unchanged. */
static char *expected_rejection(const run *r, field f)
{
    if (invalid_utf8_label(r->val))
        return strdup("invalid UTF-8");
    if (fields[f].prefix) {
        ssize_t off = control_offset(r->path[f]);
        if (off >= 0)
            return xasprintf("has a control character at byte %zd", off);
        if (fields[f].socket && strlen(r->path[f]) > SOCKET_PATH_MAX)
            return xasprintf("is longer than %d bytes", SOCKET_PATH_MAX);
        /* QEMU's -D is a template: "%d" would become its pid */
        if (f == F_LOGFILE && strchr(r->path[f], '%'))
            return strdup("must not contain '%'");
    }
    if (f == F_FS_TAG && 1 + strlen(r->val->v) > MOUNT_TAG_MAX)
        return xasprintf("is %zu bytes long; QEMU takes at most %d", 1 + strlen(r->val->v),
                         MOUNT_TAG_MAX);
    return NULL;
}

/* The CLI and the spies that stand in for QEMU: each creates `marker` when
 * run, so a rejection check can tell that nothing was started. */
typedef struct cli {
    const char *sandvm;
    char *spy[2];
    char *marker;
} cli;

static int cli_setup(cli *c, const char *tmp)
{
    _cleanup_free_ char *dir = xasprintf("%s/spy", tmp);
    if (mkdir(dir, 0755) < 0)
        return -errno;
    c->marker = xasprintf("%s/spawned", dir);
    static const char *const bins[2] = {"qemu-system-x86_64", "qemu-system-aarch64"};
    for (int a = 0; a < 2; a++) {
        c->spy[a] = xasprintf("%s/%s", dir, bins[a]);
        FILE *f = fopen(c->spy[a], "we");
        if (!f)
            return -errno;
        fprintf(f, "#!/bin/sh\n: >> '%s'\nexit 1\n", c->marker);
        if (fclose(f) != 0 || chmod(c->spy[a], 0755) < 0)
            return -errno;
    }
    return 0;
}

static void cli_free(cli *c)
{
    free(c->spy[0]);
    free(c->spy[1]);
    free(c->marker);
}

static char *read_all(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, "");
    char b[4096];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, b, sizeof(b))) > 0)
        sv_strbuf_append_n(&sb, b, (size_t)n);
    char *s = sv_strbuf_steal(&sb);
    if (!s)
        abort();
    return s;
}

/* Runs `sandvm qemu-argv --check FILE`; *out and *errtext get what it printed.
 * Returns its exit status, or -1 when it did not exit normally. */
static int cli_run(const cli *c, const char *file, const char *base, char **out, char **errtext)
{
    _cleanup_free_ char *o = xasprintf("%s/cli.out", base), *e = xasprintf("%s/cli.err", base);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        int fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = open("/dev/null", O_RDONLY);
        if (fo < 0 || fe < 0 || fi < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execl(c->sandvm, c->sandvm, "qemu-argv", "--check", "--timeout", "5", file, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *out = read_all(o);
    *errtext = read_all(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The config for field `f` alone, naming the spy as QEMU, through the CLI:
 * it must exit 1 before starting anything, with `want` in an error that
 * names the file and the key. NULL when so, else why not. */
static char *check_rejected(const cli *c, run *r, field f, const char *want)
{
    _cleanup_free_ char *text = build_config(r, fields[f].arch, BIT(f), c->spy[fields[f].arch]);
    _cleanup_free_ char *file = xasprintf("%s/reject.json", r->base);
    FILE *fp = fopen(file, "we");
    if (!fp || fwrite(text, 1, strlen(text), fp) != strlen(text) || fclose(fp) != 0)
        return xasprintf("writing %s: %s", file, strerror(errno));
    unlink(c->marker);
    _cleanup_free_ char *out = NULL, *err = NULL;
    int rc = cli_run(c, file, r->base, &out, &err);
    bool spawned = access(c->marker, F_OK) == 0;

    /* Invalid UTF-8 is refused as the file is read, before any key is
     * known: the error gives the offset of the first bad byte instead. */
    _cleanup_free_ char *head = NULL;
    if (invalid_utf8_label(r->val)) {
        size_t off = 0;
        while (text[off] && (unsigned char)text[off] < 0x80)
            off++;
        head = xasprintf("sandvm: %s: invalid JSON at byte %zu: %s", file, off, want);
    } else {
        head = xasprintf("sandvm: %s: %s: %s", file, fields[f].jpath, want);
    }
    sv_strbuf why = SV_STRBUF_INIT;
    if (rc != 1)
        sv_strbuf_appendf(&why, "%sexit status %d, expected 1", why.len ? "; " : "", rc);
    if (spawned)
        sv_strbuf_appendf(&why, "%sQEMU (the spy) was started", why.len ? "; " : "");
    if (*out)
        sv_strbuf_appendf(&why, "%sprinted an argv", why.len ? "; " : "");
    if (strncmp(err, head, strlen(head)) != 0 || !strchr(err, '\n') ||
        strchr(err, '\n')[1] != '\0') {
        _cleanup_free_ char *g = show(err), *w = show(head);
        sv_strbuf_appendf(&why, "%serror %s, expected one line starting %s", why.len ? "; " : "", g,
                          w);
    }
    if (!why.len) {
        sv_strbuf_free(&why);
        return NULL;
    }
    return sv_strbuf_steal(&why);
}

/* ---- main -------------------------------------------------------------- */

/* The CLI: $SV_SANDVM, else ../sandvm next to this program. */
static char *find_sandvm(void)
{
    const char *env = getenv("SV_SANDVM");
    if (env && *env)
        return strdup(env);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    return xasprintf("%s/../sandvm", self);
}

static bool filtered_out(const hname *n)
{
    const char *flt = getenv("SV_HOSTILE_FILTER");
    return flt && *flt && !strstr(n->label, flt);
}

static void report(size_t *npass, size_t *nfail, const char *what, const char *label,
                   const char *why)
{
    if (why) {
        printf("FAIL %s %s: %s\n", what, label, why);
        (*nfail)++;
    } else {
        printf("PASS %s %s\n", what, label);
        (*npass)++;
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool have[2] = {in_path("qemu-system-x86_64"), in_path("qemu-system-aarch64")};
    const char *bins[2] = {"qemu-system-x86_64", "qemu-system-aarch64"};
    char tmpl[] = "/tmp/sandvm-hostile.XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 2;
    }
    size_t npass = 0, nfail = 0, nskip = 0, nqemu = 0, nreject = 0;

    _cleanup_free_ char *sandvm = find_sandvm();
    cli c = {.sandvm = sandvm};
    if (!sandvm || access(sandvm, X_OK) < 0 || cli_setup(&c, tmpl) < 0) {
        free(c.marker);
        c.marker = NULL;
        printf("FAIL setup: the CLI (%s) or its spy QEMU is unusable; set SV_SANDVM\n",
               sandvm ? sandvm : "?");
        nfail++;
    } else {
        /* The spy must be seen when the CLI does start it: a valid config. */
        hname plain = {(char *)"spy", (char *)"plain"};
        run r;
        memset(&r, 0, sizeof(r));
        r.val = &plain;
        _cleanup_free_ char *base = xasprintf("%s/spycheck", tmpl);
        r.base = base;
        mkdir_p(base);
        compute_paths(&r);
        _cleanup_free_ char *text = build_config(&r, ARCH_X86, BIT(F_LOGFILE), c.spy[ARCH_X86]);
        _cleanup_free_ char *file = xasprintf("%s/valid.json", base);
        FILE *fp = fopen(file, "we");
        if (fp) {
            fputs(text, fp);
            fclose(fp);
        }
        unlink(c.marker);
        _cleanup_free_ char *out = NULL, *err = NULL;
        int rc = cli_run(&c, file, base, &out, &err);
        _cleanup_free_ char *why =
            rc == 1 && access(c.marker, F_OK) == 0
                ? NULL
                : xasprintf("a valid config did not start the spy (exit %d): %s", rc, err);
        report(&npass, &nfail, "spy QEMU", "started for a valid config", why);
        run_free(&r);
    }

    size_t nvalid = 0, ninvalid = 0;
    hname *valid = hostile_names_valid(&nvalid);
    hname *invalid = hostile_names_invalid(&ninvalid);
    size_t total = nvalid + ninvalid;
    for (size_t vi = 0; vi < total; vi++) {
        const hname *val = vi < nvalid ? &valid[vi] : &invalid[vi - nvalid];
        if (filtered_out(val))
            continue;
        run r;
        memset(&r, 0, sizeof(r));
        r.val = val;
        _cleanup_free_ char *base = xasprintf("%s/v%03zu", tmpl, vi);
        r.base = base;
        mkdir_p(base);
        compute_paths(&r);

        /* which fields QEMU must get the name in, which sandvm must refuse */
        char *want[F__MAX] = {0};
        fmask qemu_m[2] = {0, 0};
        for (int f = 0; f < F__MAX; f++) {
            want[f] = expected_rejection(&r, (field)f);
            /* an invalid name is only a test of the paths (and of every
             * string, for invalid UTF-8): never given to QEMU */
            if (!want[f] && vi < nvalid)
                qemu_m[fields[f].arch] |= BIT(f);
        }
        for (int ai = 0; ai < 2; ai++) {
            fmask m = qemu_m[ai];
            if (!m)
                continue;
            if (!have[ai]) {
                for (int f = 0; f < F__MAX; f++) {
                    if (!(m & BIT(f)))
                        continue;
                    printf("SKIP %s %s: %s not installed\n", fields[f].name, val->label, bins[ai]);
                    nskip++;
                }
                continue;
            }
            /* all the fields in one QEMU; on any failure, each field alone so
             * the failure is pinned on the field that caused it */
            run_mask(&r, (arch)ai, m);
            bool any = false;
            for (int f = 0; f < F__MAX; f++)
                any |= (m & BIT(f)) && r.fail[f];
            if (any)
                for (int f = 0; f < F__MAX; f++)
                    if (m & BIT(f))
                        run_mask(&r, (arch)ai, BIT(f));
            for (int f = 0; f < F__MAX; f++) {
                if (!(m & BIT(f)))
                    continue;
                report(&npass, &nfail, fields[f].name, val->label, r.fail[f]);
                nqemu++;
            }
        }
        for (int f = 0; f < F__MAX; f++) {
            _cleanup_free_ char *w = want[f];
            if (!w || !c.marker) /* no CLI: the setup failure is reported */
                continue;
            _cleanup_free_ char *why = check_rejected(&c, &r, (field)f, w);
            _cleanup_free_ char *what = xasprintf("%s (rejected)", fields[f].name);
            report(&npass, &nfail, what, val->label, why);
            nreject++;
        }
        run_free(&r);
    }

    const char *keep = getenv("SV_HOSTILE_KEEP");
    if (keep && *keep && strcmp(keep, "0") != 0)
        printf("(kept %s)\n", tmpl);
    else
        rm_rf(tmpl);
    if (nskip)
        printf(
            "WARNING: %zu field checks were skipped (QEMU binary missing); not counted as passed\n",
            nskip);
    printf("hostile: %zu valid + %zu invalid names, %d fields: %zu read back from QEMU, %zu "
           "rejected before QEMU\n",
           nvalid, ninvalid, (int)F__MAX, nqemu, nreject);
    discoveries_free();
    hostile_names_free(valid, nvalid);
    hostile_names_free(invalid, ninvalid);
    cli_free(&c);
    printf("%zu passed, %zu failed\n", npass, nfail);
    if (!npass && !nfail)
        return 77;
    return nfail ? 1 : 0;
}
