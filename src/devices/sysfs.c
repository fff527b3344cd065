#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "devices/sysfs.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strbuf.h"

/* The kernel's own limits for path walks (MAXSYMLINKS) and a depth no sysfs
 * path comes near (the deepest PCI device paths are ~15). */
#define WALK_MAX_LINKS 40
#define WALK_MAX_DEPTH 64
#define DEVNAME_MAX 255

struct sv_sysfs {
    char *root;
    int sys_fd; /* O_PATH directory fd of <root>/sys */
};

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

/* ---- messages ---- */

char *sv_quote(const char *s)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append_c(&sb, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '\n')
            sv_strbuf_append(&sb, "\\n");
        else if (*p == '"' || *p == '\\')
            sv_strbuf_appendf(&sb, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            sv_strbuf_appendf(&sb, "\\x%02x", *p);
        else
            sv_strbuf_append_c(&sb, (char)*p);
    }
    sv_strbuf_append_c(&sb, '"');
    return sv_strbuf_steal(&sb);
}

/* ---- uevent ---- */

void sv_uevent_clear(sv_uevent *ev)
{
    if (!ev)
        return;
    for (size_t i = 0; i < ev->n; i++) {
        free(ev->vars[i].key);
        free(ev->vars[i].value);
    }
    free(ev->vars);
    ev->vars = NULL;
    ev->n = 0;
}

static void uevent_clearp(sv_uevent *ev)
{
    sv_uevent_clear(ev);
}

const char *sv_uevent_get(const sv_uevent *ev, const char *key)
{
    for (size_t i = 0; ev && key && i < ev->n; i++)
        if (strcmp(ev->vars[i].key, key) == 0)
            return ev->vars[i].value;
    return NULL;
}

static bool key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

int sv_uevent_parse(const char *text, size_t len, sv_uevent *out, sv_error **err)
{
    out->vars = NULL;
    out->n = 0;
    if (len > SV_UEVENT_MAX)
        return sv_error_set(err, EFBIG, "uevent is %zu bytes, more than %d", len, SV_UEVENT_MAX);
    if (len && !text)
        return sv_error_set(err, EINVAL, "uevent: no text");
    _cleanup_(uevent_clearp) sv_uevent ev = {NULL, 0};
    size_t cap = 0, line = 0;
    for (size_t pos = 0; pos < len;) {
        line++;
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        pos += n + 1;
        if (n == 0)
            continue;
        if (memchr(l, '\0', n))
            return sv_error_set(err, EINVAL, "uevent line %zu: NUL byte", line);
        const char *eq = memchr(l, '=', n);
        if (!eq)
            return sv_error_set(err, EINVAL, "uevent line %zu: no '='", line);
        size_t klen = (size_t)(eq - l);
        if (klen == 0)
            return sv_error_set(err, EINVAL, "uevent line %zu: empty key", line);
        for (size_t i = 0; i < klen; i++)
            if (!key_char(l[i]))
                return sv_error_set(err, EINVAL, "uevent line %zu: bad character in key", line);
        for (size_t i = 0; i < ev.n; i++)
            if (strlen(ev.vars[i].key) == klen && memcmp(ev.vars[i].key, l, klen) == 0)
                return sv_error_set(err, EINVAL, "uevent line %zu: key %s given twice", line,
                                    ev.vars[i].key);
        if (ev.n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            sv_uevent_var *v = realloc(ev.vars, ncap * sizeof(*v));
            if (!v)
                return oom(err);
            ev.vars = v;
            cap = ncap;
        }
        sv_uevent_var *v = &ev.vars[ev.n];
        v->key = strndup(l, klen);
        v->value = strndup(eq + 1, n - klen - 1);
        if (!v->key || !v->value) {
            free(v->key);
            free(v->value);
            return oom(err);
        }
        ev.n++;
    }
    *out = ev;
    ev.vars = NULL;
    ev.n = 0;
    return 0;
}

static bool devname_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("._+:@-", c) != NULL;
}

bool sv_devname_valid(const char *name)
{
    if (!name)
        return false;
    size_t len = strlen(name);
    if (len == 0 || len > DEVNAME_MAX)
        return false;
    const char *comp = name;
    for (const char *p = name;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t clen = (size_t)(p - comp);
            if (clen == 0 || (clen == 1 && comp[0] == '.') ||
                (clen == 2 && comp[0] == '.' && comp[1] == '.'))
                return false;
            if (*p == '\0')
                return true;
            comp = p + 1;
        } else if (!devname_char(*p)) {
            return false;
        }
    }
}

/* ---- the sysfs tree ---- */

int sv_sysfs_open(const char *root, sv_sysfs **out, sv_error **err)
{
    *out = NULL;
    if (!root || !*root)
        root = "/";
    if (root[0] != '/')
        return sv_error_set(err, EINVAL, "sysfs root %s is not an absolute path", root);
    _cleanup_free_ sv_sysfs *s = calloc(1, sizeof(*s));
    if (!s || !(s->root = strdup(root)))
        return oom(err);
    size_t n = strlen(s->root);
    while (n > 1 && s->root[n - 1] == '/')
        s->root[--n] = '\0';
    _cleanup_free_ char *sys = sv_sysfs_path(s, "");
    if (!sys) {
        free(s->root);
        return oom(err);
    }
    s->sys_fd = open(sys, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s->sys_fd < 0) {
        int e = errno;
        free(s->root);
        return sv_error_errno(err, e, "opening sysfs at %s", sys);
    }
    *out = TAKE_PTR(s);
    return 0;
}

void sv_sysfs_free(sv_sysfs *s)
{
    if (!s)
        return;
    if (s->sys_fd >= 0)
        close(s->sys_fd);
    free(s->root);
    free(s);
}

const char *sv_sysfs_root(const sv_sysfs *s)
{
    return s->root;
}

char *sv_sysfs_path(const sv_sysfs *s, const char *rel)
{
    char *out = NULL;
    const char *sep = rel && *rel ? "/" : "";
    if (asprintf(&out, "%s/sys%s%s", strcmp(s->root, "/") == 0 ? "" : s->root, sep,
                 rel ? rel : "") < 0)
        return NULL;
    return out;
}

void sv_sysfs_walk_clear(sv_sysfs_walk *w)
{
    if (!w)
        return;
    if (w->dirfd >= 0)
        close(w->dirfd);
    free(w->name);
    free(w->canon);
    w->dirfd = -1;
    w->name = w->canon = NULL;
}

/* The directories walked so far: fds[0] is the sysfs root (not owned). */
typedef struct walk_stack {
    int fds[WALK_MAX_DEPTH + 1];
    size_t canon_len[WALK_MAX_DEPTH + 1];
    size_t depth;
    sv_strbuf canon;
} walk_stack;

static void walk_stack_clear(walk_stack *st)
{
    for (size_t i = 1; i <= st->depth; i++)
        close(st->fds[i]);
    st->depth = 0;
    sv_strbuf_free(&st->canon);
}

static int walk_error(const sv_sysfs *s, const char *rel, sv_error **err, int code,
                      const char *what)
{
    _cleanup_free_ char *path = sv_sysfs_path(s, rel);
    if (code == ENOENT && !what)
        return sv_error_set(err, ENOENT, "%s does not exist", path ? path : rel);
    if (!what)
        return sv_error_errno(err, code, "%s", path ? path : rel);
    return sv_error_set(err, code, "%s: %s", path ? path : rel, what);
}

/* Splits the first component off *rest (skipping leading '/'); returns its
 * length, 0 at the end. */
static size_t next_component(const char **rest, const char **comp)
{
    const char *p = *rest;
    while (*p == '/')
        p++;
    const char *e = p;
    while (*e && *e != '/')
        e++;
    *comp = p;
    *rest = e;
    return (size_t)(e - p);
}

static bool at_end(const char *rest)
{
    while (*rest == '/')
        rest++;
    return *rest == '\0';
}

int sv_sysfs_resolve(const sv_sysfs *s, const char *rel, sv_sysfs_walk *out, sv_error **err)
{
    out->dirfd = -1;
    out->name = out->canon = NULL;
    if (!rel || !*rel || rel[0] == '/')
        return sv_error_set(err, EINVAL, "sysfs path \"%s\" is not relative to /sys",
                            rel ? rel : "");
    /* only symlink targets may climb: the caller's own components are names */
    {
        const char *rest = rel, *comp;
        size_t n;
        while ((n = next_component(&rest, &comp)) > 0)
            if ((n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
                return walk_error(s, rel, err, EINVAL, "not a plain path");
    }
    _cleanup_free_ char *todo = strdup(rel);
    if (!todo)
        return oom(err);
    walk_stack st = {.depth = 0, .canon = SV_STRBUF_INIT};
    st.fds[0] = s->sys_fd;
    st.canon_len[0] = 0;
    int links = 0, r = 0;
    const char *rest = todo;
    for (;;) {
        const char *c;
        size_t n = next_component(&rest, &c);
        if (n == 0) {
            /* defensive: every path ends in a named component or is caught above */
            r = walk_error(s, rel, err, EINVAL, "resolves to no name");
            break;
        }
        char comp[NAME_MAX + 1];
        if (n > NAME_MAX) {
            r = walk_error(s, rel, err, ENAMETOOLONG, NULL);
            break;
        }
        memcpy(comp, c, n);
        comp[n] = '\0';
        bool last = at_end(rest);
        if (strcmp(comp, ".") == 0) {
            if (last) {
                r = walk_error(s, rel, err, EINVAL, "resolves to a directory above a name");
                break;
            }
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            if (st.depth == 0) {
                r = walk_error(s, rel, err, EXDEV, "a symlink leads outside the sysfs root");
                break;
            }
            close(st.fds[st.depth]);
            st.depth--;
            st.canon.len = st.canon_len[st.depth];
            if (st.canon.s)
                st.canon.s[st.canon.len] = '\0';
            if (last) {
                r = walk_error(s, rel, err, EINVAL, "resolves to a directory above a name");
                break;
            }
            continue;
        }
        _cleanup_close_ int fd = openat(st.fds[st.depth], comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) < 0) {
            r = walk_error(s, rel, err, errno, NULL);
            break;
        }
        if (S_ISLNK(sb.st_mode)) {
            if (++links > WALK_MAX_LINKS) {
                r = walk_error(s, rel, err, ELOOP, "too many levels of symbolic links");
                break;
            }
            char target[PATH_MAX];
            ssize_t tl = readlinkat(fd, "", target, sizeof(target) - 1);
            if (tl <= 0) {
                r = walk_error(s, rel, err, tl < 0 ? errno : EINVAL, "reading a symlink");
                break;
            }
            target[tl] = '\0';
            if (target[0] == '/') {
                r = walk_error(s, rel, err, EXDEV,
                               "an absolute symlink leads outside the sysfs root");
                break;
            }
            char *nt = NULL;
            if (asprintf(&nt, "%s%s", target, rest) < 0) {
                r = oom(err);
                break;
            }
            free(todo);
            todo = nt;
            rest = todo;
            continue;
        }
        if (last) {
            out->dirfd = fcntl(st.fds[st.depth], F_DUPFD_CLOEXEC, 3);
            if (out->dirfd < 0) {
                r = walk_error(s, rel, err, errno, NULL);
                break;
            }
            if (st.canon.len)
                sv_strbuf_append_c(&st.canon, '/');
            sv_strbuf_append(&st.canon, comp);
            out->name = strdup(comp);
            out->canon = sv_strbuf_steal(&st.canon);
            if (!out->name || !out->canon) {
                sv_sysfs_walk_clear(out);
                r = oom(err);
            }
            break;
        }
        if (!S_ISDIR(sb.st_mode)) {
            r = walk_error(s, rel, err, ENOTDIR, NULL);
            break;
        }
        if (st.depth == WALK_MAX_DEPTH) {
            r = walk_error(s, rel, err, ENAMETOOLONG, "too deep");
            break;
        }
        st.fds[++st.depth] = TAKE_FD(fd);
        if (st.canon.len)
            sv_strbuf_append_c(&st.canon, '/');
        sv_strbuf_append(&st.canon, comp);
        st.canon_len[st.depth] = st.canon.len;
        if (st.canon.oom) {
            r = oom(err);
            break;
        }
    }
    walk_stack_clear(&st);
    return r;
}

static int read_at(int dirfd, const char *name, size_t max, const char *display, char **data_out,
                   size_t *len_out, size_t *size_out, sv_error **err)
{
    /* O_NONBLOCK: a FIFO planted in a fake tree must not hang the open */
    _cleanup_close_ int fd =
        openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return sv_error_errno(err, errno, "opening %s", display);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return sv_error_errno(err, errno, "reading %s", display);
    if (!S_ISREG(st.st_mode))
        return sv_error_set(err, EINVAL, "%s is not a regular file", display);
    _cleanup_free_ char *buf = malloc(max + 2);
    if (!buf)
        return oom(err);
    size_t got = 0;
    while (got <= max) {
        ssize_t n = read(fd, buf + got, max + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sv_error_errno(err, errno, "reading %s", display);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > max)
        return sv_error_set(err, EFBIG, "%s is larger than %zu bytes", display, max);
    buf[got] = '\0';
    if (len_out)
        *len_out = got;
    if (size_out)
        *size_out = st.st_size > 0 ? (size_t)st.st_size : 0;
    *data_out = TAKE_PTR(buf);
    return 0;
}

int sv_sysfs_read(const sv_sysfs *s, const char *rel, size_t max, char **data_out, size_t *len_out,
                  size_t *size_out, sv_error **err)
{
    *data_out = NULL;
    sv_sysfs_walk w;
    int r = sv_sysfs_resolve(s, rel, &w, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *display = sv_sysfs_path(s, rel);
    if (!display)
        r = oom(err);
    else
        r = read_at(w.dirfd, w.name, max, display, data_out, len_out, size_out, err);
    sv_sysfs_walk_clear(&w);
    return r;
}

int sv_sysfs_read_line(const sv_sysfs *s, const char *rel, char **value_out, sv_error **err)
{
    *value_out = NULL;
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    int r = sv_sysfs_read(s, rel, SV_SYSFS_READ_MAX, &data, &len, NULL, err);
    if (r < 0)
        return r;
    if (len > 0 && data[len - 1] == '\n')
        data[--len] = '\0';
    if (memchr(data, '\n', len) || strlen(data) != len) {
        _cleanup_free_ char *display = sv_sysfs_path(s, rel);
        return sv_error_set(err, EINVAL, "%s holds more than one line", display ? display : rel);
    }
    *value_out = TAKE_PTR(data);
    return 0;
}

int sv_sysfs_open_dir(const sv_sysfs *s, const char *rel, int *fd_out, sv_error **err)
{
    *fd_out = -1;
    sv_sysfs_walk w;
    int r = sv_sysfs_resolve(s, rel, &w, err);
    if (r < 0)
        return r;
    int fd = openat(w.dirfd, w.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        r = walk_error(s, rel, err, errno, NULL);
    } else {
        *fd_out = fd;
    }
    sv_sysfs_walk_clear(&w);
    return r;
}

/* ---- device nodes ---- */

static const char *kind_word(int kind)
{
    return kind == SV_DEVNODE_BLOCK ? "block" : "char";
}

/* The DEVNAME of major:minor, checked; errors prefixed "<kind> device M:m: ". */
static int read_devname(const sv_sysfs *s, int kind, unsigned major, unsigned minor,
                        char **devname_out, sv_error **err)
{
    *devname_out = NULL;
    if (kind != SV_DEVNODE_BLOCK && kind != SV_DEVNODE_CHAR)
        return sv_error_set(err, EINVAL, "device %u:%u: unknown device kind %d", major, minor,
                            kind);
    const char *kw = kind_word(kind);
    if (major > SV_DEV_MAJOR_MAX || minor > SV_DEV_MINOR_MAX)
        return sv_error_set(err, EINVAL, "%s device %u:%u: major or minor number out of range", kw,
                            major, minor);
    _cleanup_free_ char *rel = NULL;
    if (asprintf(&rel, "dev/%s/%u:%u/uevent", kw, major, minor) < 0)
        return oom(err);
    _cleanup_free_ char *display = sv_sysfs_path(s, rel);
    if (!display)
        return oom(err);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = sv_sysfs_read(s, rel, SV_UEVENT_MAX, &text, &len, NULL, err);
    if (r < 0) {
        sv_error_prefix(err, "%s device %u:%u", kw, major, minor);
        return r;
    }
    _cleanup_(uevent_clearp) sv_uevent ev = {NULL, 0};
    if ((r = sv_uevent_parse(text, len, &ev, err)) < 0) {
        sv_error_prefix(err, "%s device %u:%u: %s", kw, major, minor, display);
        return r;
    }
    /* a tree whose link points at another device's directory is caught here */
    const char *maj = sv_uevent_get(&ev, "MAJOR"), *min = sv_uevent_get(&ev, "MINOR");
    char want_maj[16], want_min[16];
    snprintf(want_maj, sizeof(want_maj), "%u", major);
    snprintf(want_min, sizeof(want_min), "%u", minor);
    if ((maj && strcmp(maj, want_maj) != 0) || (min && strcmp(min, want_min) != 0)) {
        _cleanup_free_ char *q1 = sv_quote(maj ? maj : want_maj),
                            *q2 = sv_quote(min ? min : want_min);
        return sv_error_set(err, EINVAL, "%s device %u:%u: %s is for device %s:%s", kw, major,
                            minor, display, q1 ? q1 : "?", q2 ? q2 : "?");
    }
    const char *devname = sv_uevent_get(&ev, "DEVNAME");
    if (!devname || !*devname)
        return sv_error_set(err, ENOENT, "%s device %u:%u: no DEVNAME in %s", kw, major, minor,
                            display);
    if (!sv_devname_valid(devname)) {
        _cleanup_free_ char *q = sv_quote(devname);
        return sv_error_set(err, EINVAL, "%s device %u:%u: unsafe DEVNAME %s in %s", kw, major,
                            minor, q ? q : "?", display);
    }
    if (!(*devname_out = strdup(devname)))
        return oom(err);
    return 0;
}

int sv_sysfs_devnode_path(const sv_sysfs *s, int kind, unsigned major, unsigned minor,
                          char **path_out, sv_error **err)
{
    *path_out = NULL;
    _cleanup_free_ char *devname = NULL;
    int r = read_devname(s, kind, major, minor, &devname, err);
    if (r < 0)
        return r;
    if (asprintf(path_out, "/dev/%s", devname) < 0) {
        *path_out = NULL;
        return oom(err);
    }
    return 0;
}

void sv_loop_backing_clear(sv_loop_backing *b)
{
    if (!b)
        return;
    free(b->devnode);
    free(b->path);
    memset(b, 0, sizeof(*b));
}

static bool loop_name(const char *name)
{
    if (strncmp(name, "loop", 4) != 0 || !name[4])
        return false;
    for (const char *p = name + 4; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

#define DELETED_SUFFIX " (deleted)"

int sv_sysfs_loop_backing(const sv_sysfs *s, unsigned major, unsigned minor, sv_loop_backing *out,
                          sv_error **err)
{
    memset(out, 0, sizeof(*out));
    if (major != SV_LOOP_MAJOR)
        return sv_error_set(err, EINVAL, "block device %u:%u is not a loop device (major %d)",
                            major, minor, SV_LOOP_MAJOR);
    _cleanup_free_ char *devname = NULL;
    int r = read_devname(s, SV_DEVNODE_BLOCK, major, minor, &devname, err);
    if (r < 0)
        return r;
    if (!loop_name(devname))
        return sv_error_set(err, EINVAL, "block device %u:%u: DEVNAME %s is not loop<N>", major,
                            minor, devname);
    _cleanup_free_ char *dir = NULL, *rel = NULL;
    if (asprintf(&dir, "block/%s", devname) < 0 || asprintf(&rel, "%s/loop/backing_file", dir) < 0)
        return oom(err);
    sv_sysfs_walk w;
    if ((r = sv_sysfs_resolve(s, dir, &w, err)) < 0) {
        sv_error_prefix(err, "loop device %u:%u (/dev/%s)", major, minor, devname);
        return r;
    }
    sv_sysfs_walk_clear(&w);
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    r = sv_sysfs_read(s, rel, SV_SYSFS_READ_MAX, &data, &len, NULL, err);
    if (r == -ENOENT) {
        if (err) {
            sv_error_free(*err);
            *err = NULL;
        }
        return sv_error_set(err, ENXIO, "loop device %u:%u (/dev/%s) has no backing file", major,
                            minor, devname);
    }
    if (r < 0) {
        sv_error_prefix(err, "loop device %u:%u (/dev/%s)", major, minor, devname);
        return r;
    }
    _cleanup_free_ char *display = sv_sysfs_path(s, rel);
    if (!display)
        return oom(err);
    if (len == 0 || data[len - 1] != '\n')
        return sv_error_set(
            err, EINVAL, "loop device %u:%u (/dev/%s): %s does not end in a newline (truncated?)",
            major, minor, devname, display);
    data[--len] = '\0';
    if (strlen(data) != len)
        return sv_error_set(err, EINVAL, "loop device %u:%u (/dev/%s): %s holds a NUL byte", major,
                            minor, devname, display);
    if (memchr(data, '\n', len))
        return sv_error_set(err, EINVAL,
                            "loop device %u:%u: its backing file name contains a newline; "
                            "use the loop device /dev/%s itself",
                            major, minor, devname);
    if (data[0] != '/') {
        _cleanup_free_ char *q = sv_quote(data);
        return sv_error_set(err, EINVAL,
                            "loop device %u:%u (/dev/%s): backing file %s is not an absolute path",
                            major, minor, devname, q ? q : "?");
    }
    size_t sl = strlen(DELETED_SUFFIX);
    struct stat st;
    /* d_path() marks an unlinked file with this suffix; a file really named
     * so still exists under that name */
    if (len > sl && strcmp(data + len - sl, DELETED_SUFFIX) == 0 && lstat(data, &st) < 0) {
        data[len - sl] = '\0';
        out->deleted = true;
    }
    if (asprintf(&out->devnode, "/dev/%s", devname) < 0) {
        out->devnode = NULL;
        return oom(err);
    }
    out->path = TAKE_PTR(data);
    return 0;
}

/* ---- vhost-user store ---- */

static bool safe_name(const char *name)
{
    if (!sv_plain_name(name))
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sv_vhost_user_store_socket(const char *store, unsigned maj, unsigned min, char **socket_out,
                               sv_error **err)
{
    *socket_out = NULL;
    if (!store || store[0] != '/')
        return sv_error_set(err, EINVAL, "vhost-user device %u:%u: store path %s is not absolute",
                            maj, min, store ? store : "(none)");
    _cleanup_close_ int sfd = open(store, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0)
        return sv_error_errno(err, errno, "vhost-user device %u:%u: opening store %s", maj, min,
                              store);
    _cleanup_close_ int bfd = openat(sfd, "block", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int dfd =
        bfd < 0 ? -1 : openat(bfd, "devices", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return sv_error_errno(err, errno, "vhost-user device %u:%u: opening %s/block/devices", maj,
                              min, store);
    DIR *d = fdopendir(dfd);
    if (!d)
        return sv_error_errno(err, errno, "vhost-user device %u:%u: reading %s/block/devices", maj,
                              min, store);
    dfd = -1; /* the DIR owns it now */
    /* sorted, so an ambiguity is reported the same way every time */
    char **names = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISBLK(st.st_mode) ||
            major(st.st_rdev) != maj || minor(st.st_rdev) != min)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (!nn) {
                r = oom(err);
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) {
            r = oom(err);
            break;
        }
        n++;
    }
    closedir(d);
    if (r == 0 && n > 1) {
        qsort(names, n, sizeof(*names), compare_names);
        _cleanup_free_ char *q1 = sv_quote(names[0]), *q2 = sv_quote(names[1]);
        r = sv_error_set(err, EEXIST,
                         "vhost-user device %u:%u: both %s and %s in %s/block/devices have it", maj,
                         min, q1 ? q1 : "?", q2 ? q2 : "?", store);
    } else if (r == 0 && n == 0) {
        r = sv_error_set(err, ENOENT,
                         "vhost-user device %u:%u: no block device node %u:%u in %s/block/devices",
                         maj, min, maj, min, store);
    } else if (r == 0 && !safe_name(names[0])) {
        _cleanup_free_ char *q = sv_quote(names[0]);
        r = sv_error_set(err, EINVAL,
                         "vhost-user device %u:%u: unsafe node name %s in %s/block/devices", maj,
                         min, q ? q : "?", store);
    }
    _cleanup_free_ char *name = r == 0 ? TAKE_PTR(names[0]) : NULL;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (r < 0)
        return r;
    _cleanup_close_ int kfd = openat(bfd, "sockets", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (kfd < 0 || fstatat(kfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return sv_error_errno(err, errno, "vhost-user device %u:%u: %s/block/sockets/%s", maj, min,
                              store, name);
    if (!S_ISSOCK(st.st_mode))
        return sv_error_set(err, EINVAL,
                            "vhost-user device %u:%u: %s/block/sockets/%s is not a socket", maj,
                            min, store, name);
    const char *sep = store[strlen(store) - 1] == '/' ? "" : "/";
    if (asprintf(socket_out, "%s%sblock/sockets/%s", store, sep, name) < 0) {
        *socket_out = NULL;
        return oom(err);
    }
    return 0;
}

int sv_dev_host_path(const sv_sysfs *s, const sv_dev_info *info, const char *vhost_user_store,
                     char **path_out, sv_error **err)
{
    *path_out = NULL;
    if (info->major < 0) {
        if (!info->host_path || !*info->host_path)
            return sv_error_set(err, EINVAL, "device %s: no host path and no major:minor",
                                info->container_path ? info->container_path : "(unnamed)");
        if (!(*path_out = strdup(info->host_path)))
            return oom(err);
        return 0;
    }
    if (info->major > SV_DEV_MAJOR_MAX || info->minor < 0 || info->minor > SV_DEV_MINOR_MAX)
        return sv_error_set(err, EINVAL, "device %lld:%lld: major or minor number out of range",
                            (long long)info->major, (long long)info->minor);
    unsigned major = (unsigned)info->major, minor = (unsigned)info->minor;
    switch (info->type) {
    case 'b':
        if (vhost_user_store &&
            (major == SV_VHOST_USER_BLK_MAJOR || major == SV_VHOST_USER_SCSI_MAJOR))
            return sv_vhost_user_store_socket(vhost_user_store, major, minor, path_out, err);
        return sv_sysfs_devnode_path(s, SV_DEVNODE_BLOCK, major, minor, path_out, err);
    case 'c':
    case 'u':
        return sv_sysfs_devnode_path(s, SV_DEVNODE_CHAR, major, minor, path_out, err);
    default:
        return sv_error_set(err, EINVAL, "device %u:%u: type '%c' has no host device node", major,
                            minor, info->type > 0x20 && info->type < 0x7f ? info->type : '?');
    }
}
