/*
 * Hostile strings against the real QEMU: every string field of a config that
 * reaches QEMU is given values made of the characters QEMU's option parser,
 * the shell and JSON care about (`,` `,readonly=on` `=` space `'` `"` `\`
 * newline, é 😀 日本 ...). QEMU is started with sv_qemu_check() and asked, over
 * QMP, what it actually got: query-block for images, query-chardev for
 * sockets, qom-get for device and object properties, query-name for -name,
 * and inotify on the directories for the files QEMU opens or creates. A field
 * passes only when QEMU holds exactly the original bytes and no option changed
 * (a file named "x,readonly=on" must not be read-only).
 *
 * Output: one PASS/FAIL line per (field, value), then "N passed, N failed".
 * Set SV_HOSTILE_KEEP=1 to keep the temporary directory.
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
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "sandvm/sandvm.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

/* ---- the hostile values ------------------------------------------------ */

typedef struct hval {
    const char *label;
    const char *v; /* non-empty, no '/', at most 30 bytes (mount tags) */
} hval;

static const hval values[] = {
    {"comma", ","},
    {"readonly-suffix", ",readonly=on"},
    {"double-comma", "a,,b,"},
    {"equals", "="},
    {"key-value", "k=v,x=y"},
    {"space", "a b"},
    {"single-quote", "it's"},
    {"double-quote", "\"q\""},
    {"backslash", "a\\b\\"},
    {"newline", "a\nb"},
    {"tab", "a\tb"},
    {"e-acute", "\xc3\xa9"},
    {"emoji", "\xf0\x9f\x98\x80"},
    {"cjk", "\xe6\x97\xa5\xe6\x9c\xac"},
    {"shell", "$(id)`id`;|&*?<>"},
    {"security-model", ",security_model=none"},
    {"json-protocol", "json:{\"driver\":\"null-co\"}"},
    {"mixed", "x,id=evil, \xc3\xa9'\"\\\n\xf0\x9f\x98\x80=\xe6\x97\xa5\xe6\x9c\xac"},
};

/* ---- the fields -------------------------------------------------------- */

typedef enum {
    /* x86_64 config */
    F_NAME,
    F_BLK_FILE,
    F_BLKDEV_FILE,
    F_BLK_RO_FILE,
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
    const char *prefix; /* file name = prefix + value (NULL: no file) */
    mk_kind mk;         /* what the test creates beforehand */
    off_t size;
    uint32_t events; /* inotify events QEMU must cause on the name (0: none checked) */
} fdesc;

static const fdesc fields[F__MAX] = {
    [F_NAME] = {"name", ARCH_X86, NULL, MK_NONE, 0, 0},
    [F_BLK_FILE] = {"devices[].file (-drive)", ARCH_X86, "img-", MK_FILE, 1 << 20, IN_OPEN},
    [F_BLKDEV_FILE] = {"devices[].file (-blockdev)", ARCH_X86, "img-", MK_FILE, 1 << 20, IN_OPEN},
    [F_BLK_RO_FILE] = {"devices[].file (read_only)", ARCH_X86, "ro-", MK_FILE, 1 << 20, IN_OPEN},
    [F_BLK_SERIAL] = {"devices[].serial", ARCH_X86, NULL, MK_NONE, 0, 0},
    [F_FS_PATH] = {"devices[].path (9p)", ARCH_X86, "dir-", MK_DIR, 0, IN_OPEN},
    [F_FS_TAG] = {"devices[].mount_tag", ARCH_X86, NULL, MK_NONE, 0, 0},
    [F_CHR_SOCKET] = {"devices[].path (socket)", ARCH_X86, "sock-", MK_NONE, 0, IN_CREATE},
    [F_CHR_FILE] = {"devices[].path (file)", ARCH_X86, "out-", MK_NONE, 0, IN_CREATE},
    [F_PORT_NAME] = {"devices[].name (virtserialport)", ARCH_X86, NULL, MK_NONE, 0, 0},
    [F_GLOBAL] = {"global_param value", ARCH_X86, NULL, MK_NONE, 0, 0},
    [F_PIDFILE] = {"pid_file", ARCH_X86, "pid-", MK_NONE, 0, IN_CREATE},
    [F_LOGFILE] = {"log_file", ARCH_X86, "log-", MK_NONE, 0, IN_CREATE},
    [F_FWCFG_FILE] = {"fw_cfg[].file", ARCH_X86, "fw-", MK_FILE, 4096, IN_OPEN},
    [F_RNG_FILE] = {"devices[].filename (rng)", ARCH_X86, "rng-", MK_FILE, 4096, IN_OPEN},
    [F_MEMDEV_PATH] = {"devices[].mem_path", ARCH_X86, "mem-", MK_DIR, 0, 0},
    [F_RAM_PATH] = {"memory.path", ARCH_X86, "ram-", MK_DIR, 0, 0},
    [F_LOADER_FILE] = {"devices[].file (loader)", ARCH_X86, "blob-", MK_FILE, 4096, IN_OPEN},
    [F_PFLASH] = {"pflash[]", ARCH_X86, "flash-", MK_FILE, 65536, IN_OPEN},
    [F_QMP_SOCKET] = {"qmp_sockets[].name", ARCH_X86, "qmp-", MK_NONE, 0, IN_CREATE},
    [F_EXEC_WORD] = {"incoming.exec[]", ARCH_X86, "exec-", MK_NONE, 0, 0},
    [F_KERNEL] = {"kernel.path", ARCH_ARM, "vmlinuz-", MK_FILE, 65536, IN_OPEN},
    [F_INITRD] = {"kernel.initrd_path", ARCH_ARM, "initrd-", MK_FILE, 4096, IN_OPEN},
    [F_APPEND] = {"kernel.params", ARCH_ARM, NULL, MK_NONE, 0, 0},
    [F_BIOS] = {"bios", ARCH_ARM, "bios-", MK_FILE, 65536, IN_OPEN},
};

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

/* Shows a value on one line: control bytes escaped, UTF-8 kept. */
static char *show(const char *s)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append_c(&sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            sv_strbuf_append(&sb, "\\n");
        else if (*p == '\t')
            sv_strbuf_append(&sb, "\\t");
        else if (*p == '"' || *p == '\\')
            sv_strbuf_appendf(&sb, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            sv_strbuf_appendf(&sb, "\\x%02x", *p);
        else
            sv_strbuf_append_c(&sb, (char)*p);
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
    const hval *val;
    size_t vi;
    const char *base;    /* this value's directory */
    char *dir[F__MAX];   /* per field: the directory of its file (watched) */
    char *file[F__MAX];  /* per field: the file name (basename) */
    char *path[F__MAX];  /* per field: dir/file */
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

/* Creates the field's directory (fresh, so only QEMU's doing shows up in it)
 * and the file QEMU is to open. */
static int prepare_field(run *r, field f)
{
    const fdesc *d = &fields[f];
    if (!d->prefix)
        return 0;
    if (!r->dir[f]) {
        r->dir[f] = xasprintf("%s/f%02d", r->base, (int)f);
        r->file[f] = xasprintf("%s%s", d->prefix, r->val->v);
        r->path[f] = xasprintf("%s/%s", r->dir[f], r->file[f]);
    }
    rm_rf(r->dir[f]);
    int e = mkdir_p(r->dir[f]);
    if (e < 0)
        return e;
    /* A decoy where a misparsed value would point: "img-x,readonly=on" read
     * as file=img-x plus readonly=on would open the decoy "img-x" read-only,
     * and the test would see it. */
    const char *comma = strchr(r->val->v, ',');
    if (comma && d->mk != MK_NONE) {
        _cleanup_free_ char *decoy =
            xasprintf("%s/%s%.*s", r->dir[f], d->prefix, (int)(comma - r->val->v), r->val->v);
        int de =
            d->mk == MK_FILE ? make_file(decoy, d->size) : (mkdir(decoy, 0755) < 0 ? -errno : 0);
        if (de < 0)
            return de;
    }
    if (d->mk == MK_FILE)
        return make_file(r->path[f], d->size);
    if (d->mk == MK_DIR)
        return mkdir(r->path[f], 0755) < 0 ? -errno : 0;
    return 0;
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

/* The config, as JSON text built with json-c so every value is escaped right. */
static char *build_config(run *r, arch a, fmask m)
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
        jadd(c, "path", jstr("qemu-system-aarch64"));
        jadd(machine, "type", jstr("virt"));
        jadd(c, "cpu_model", jstr("cortex-a57"));
        if (m & (BIT(F_KERNEL) | BIT(F_INITRD) | BIT(F_APPEND))) {
            json_object *k = json_object_new_object();
            /* -initrd and -append need -kernel: a fixed one unless under test */
            jadd(k, "path", jstr(r->path[F_KERNEL]));
            if (m & BIT(F_INITRD))
                jadd(k, "initrd_path", jstr(r->path[F_INITRD]));
            if (m & BIT(F_APPEND))
                jadd(k, "params", jstr(v));
            jadd(c, "kernel", k);
        }
        if (m & BIT(F_BIOS))
            jadd(c, "bios", jstr(r->path[F_BIOS]));
    } else {
        jadd(c, "path", jstr("qemu-system-x86_64"));
        jadd(machine, "type", jstr("q35"));
        if (m & BIT(F_NAME))
            jadd(c, "name", jstr(v));
        if (m & (BIT(F_BLK_FILE) | BIT(F_BLK_SERIAL))) {
            json_object *d = jdev("block", "blk0");
            jadd(d, "file", jstr(r->path[F_BLK_FILE]));
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
        if (m & (BIT(F_FS_PATH) | BIT(F_FS_TAG))) {
            json_object *d = jdev("fs", "fs0");
            jadd(d, "path", jstr(r->path[F_FS_PATH]));
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
static void expect_str(run *r, field f, const char *what, const char *got, const char *want)
{
    if (got && strcmp(got, want) == 0)
        return;
    _cleanup_free_ char *g = got ? show(got) : strdup("(nothing)");
    _cleanup_free_ char *w = show(want);
    fail_field(r, f, xasprintf("%s: QEMU has %s, expected %s", what, g, w));
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

/* inotify: watch each field's directory for what QEMU does in it. */
typedef struct watch {
    int fd;
    int wd[F__MAX];
} watch;

static int watch_start(watch *w, run *r, fmask m)
{
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0)
        return -errno;
    for (int f = 0; f < F__MAX; f++) {
        w->wd[f] = -1;
        if (!(m & BIT(f)) || !fields[f].events || !r->dir[f])
            continue;
        w->wd[f] = inotify_add_watch(w->fd, r->dir[f], IN_OPEN | IN_CREATE | IN_MOVED_TO);
        if (w->wd[f] < 0)
            return -errno;
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
                if (w->wd[f] != ev->wd)
                    continue;
                if (!strcmp(ev->name, r->file[f])) {
                    if (ev->mask & fields[f].events)
                        r->seen[f] = true;
                } else if (!r->stray[f]) {
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
     * mount tag its directory, -initrd/-append a kernel. */
    static const struct {
        field f, needs;
    } deps[] = {{F_BLK_SERIAL, F_BLK_FILE},
                {F_FS_TAG, F_FS_PATH},
                {F_INITRD, F_KERNEL},
                {F_APPEND, F_KERNEL}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(deps); i++) {
        if ((m & BIT(deps[i].f)) && !(m & BIT(deps[i].needs))) {
            int e = prepare_field(r, deps[i].needs);
            if (e < 0) {
                fail_field(r, deps[i].f,
                           xasprintf("creating %s: %s", r->path[deps[i].needs], strerror(-e)));
                return;
            }
        }
    }

    _cleanup_free_ char *text = build_config(r, a, m);
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
     * drive (query-block "qdev") or their type (qom-list). */
    _cleanup_free_ char *blk0_qdev = NULL, *p9_path = NULL;
    if (m & (BIT(F_BLK_SERIAL) | BIT(F_FS_TAG))) {
        cmds c = {0};
        size_t i_qb = cmd_add(&c, "query-block", NULL, NULL);
        size_t i_anon = cmd_add(&c, "qom-list", "/machine/peripheral-anon", NULL);
        json_object *rep[32] = {0};
        char *why = NULL;
        if (check_with(cfg, &c, rep, &why) < 0) {
            fail_mask(r, m, why);
            free(why);
            cmds_free(&c);
            sv_qemu_config_free(cfg);
            return;
        }
        const char *q = jget_str(find_block(rep[i_qb], "blk0", NULL), "qdev");
        if (q)
            blk0_qdev = strdup(q);
        for (size_t i = 0; rep[i_anon] && i < json_object_array_length(rep[i_anon]); i++) {
            json_object *e = json_object_array_get_idx(rep[i_anon], i);
            const char *t = jget_str(e, "type"), *n = jget_str(e, "name");
            if (t && n && !strncmp(t, "child<virtio-9p-", 16))
                p9_path = xasprintf("/machine/peripheral-anon/%s", n);
        }
        for (size_t i = 0; i < c.n; i++)
            json_object_put(rep[i]);
        cmds_free(&c);
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
    if (m & (BIT(F_BLK_FILE) | BIT(F_BLKDEV_FILE) | BIT(F_BLK_RO_FILE) | BIT(F_PFLASH)))
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
        if ((m & BIT(f)) && fields[f].mk == MK_NONE && fields[f].prefix)
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
    if (m & BIT(F_PFLASH))
        expect_block(r, F_PFLASH, REP(i_qb), "pflash0", NULL, false);
    if ((m & BIT(F_BLK_SERIAL)) && i_serial >= 0)
        expect_reply_str(r, F_BLK_SERIAL, "qom-get serial", REP(i_serial), v);
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
        expect_str(r, F_EXEC_WORD, "the word the shell received", got, v);
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

/* ---- rejections: values that must never reach QEMU --------------------- */

typedef struct rejection {
    const char *name;
    const char *json;   /* "@V@" stands for the value, JSON-quoted */
    const char *prefix; /* the error must start with this */
} rejection;

static const rejection rejections[] = {
    {"devices[].id (block)",
     "{\"path\":\"qemu-system-x86_64\",\"devices\":[{\"type\":\"block\",\"id\":@V@,"
     "\"file\":\"/tmp/sandvm-golden/disk.img\"}]}",
     "devices[0].id: "},
    {"devices[].id (char)",
     "{\"path\":\"qemu-system-x86_64\",\"devices\":[{\"type\":\"char\",\"id\":@V@,"
     "\"backend\":\"null\",\"driver\":\"none\"}]}",
     "devices[0].id: "},
    {"devices[].file (relative)",
     "{\"path\":\"qemu-system-x86_64\",\"devices\":[{\"type\":\"block\",\"id\":\"b0\","
     "\"file\":@V@}]}",
     "devices[0].file: "},
};

static char *check_rejected(const rejection *rj, const char *v)
{
    _cleanup_json_ json_object *q = jstr(v);
    const char *at = strstr(rj->json, "@V@");
    _cleanup_free_ char *text =
        xasprintf("%.*s%s%s", (int)(at - rj->json), rj->json,
                  json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN), at + 3);
    sv_qemu_config *cfg = NULL;
    sv_error *err = NULL;
    int rc = sv_qemu_config_parse(text, strlen(text), &cfg, &err);
    if (rc == 0) {
        sv_qemu_config_free(cfg);
        return strdup("accepted; must be rejected before QEMU sees it");
    }
    char *why = NULL;
    if (strncmp(sv_error_message(err), rj->prefix, strlen(rj->prefix)) != 0) {
        _cleanup_free_ char *m = show(sv_error_message(err));
        why = xasprintf("rejected, but the error does not name %.*s: %s",
                        (int)strlen(rj->prefix) - 2, rj->prefix, m);
    }
    sv_error_free(err);
    return why;
}

/* ---- main -------------------------------------------------------------- */

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
    size_t npass = 0, nfail = 0, nskip = 0;

    for (size_t vi = 0; vi < SV_ARRAY_SIZE(values); vi++) {
        run r;
        memset(&r, 0, sizeof(r));
        r.val = &values[vi];
        r.vi = vi;
        _cleanup_free_ char *base = xasprintf("%s/v%02zu", tmpl, vi);
        r.base = base;
        mkdir_p(base);
        for (int ai = 0; ai < 2; ai++) {
            fmask m = 0;
            for (int f = 0; f < F__MAX; f++)
                if ((int)fields[f].arch == ai)
                    m |= BIT(f);
            if (!have[ai]) {
                for (int f = 0; f < F__MAX; f++) {
                    if (!(m & BIT(f)))
                        continue;
                    printf("SKIP %s %s: %s not installed\n", fields[f].name, r.val->label,
                           bins[ai]);
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
        }
        for (int f = 0; f < F__MAX; f++) {
            if (!have[fields[f].arch])
                continue;
            if (r.fail[f]) {
                printf("FAIL %s %s: %s\n", fields[f].name, r.val->label, r.fail[f]);
                nfail++;
            } else {
                printf("PASS %s %s\n", fields[f].name, r.val->label);
                npass++;
            }
        }
        for (size_t j = 0; j < SV_ARRAY_SIZE(rejections); j++) {
            _cleanup_free_ char *why = check_rejected(&rejections[j], r.val->v);
            if (why) {
                printf("FAIL %s %s: %s\n", rejections[j].name, r.val->label, why);
                nfail++;
            } else {
                printf("PASS %s %s (rejected)\n", rejections[j].name, r.val->label);
                npass++;
            }
        }
        for (int f = 0; f < F__MAX; f++) {
            free(r.dir[f]);
            free(r.file[f]);
            free(r.path[f]);
            free(r.fail[f]);
            free(r.stray[f]);
        }
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
    printf("hostile: %zu values x %d fields + %zu rejection checks\n", SV_ARRAY_SIZE(values),
           (int)F__MAX, SV_ARRAY_SIZE(rejections));
    printf("%zu passed, %zu failed\n", npass, nfail);
    if (!npass && !nfail)
        return 77;
    return nfail ? 1 : 0;
}
