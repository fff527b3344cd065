/*
 * Host path resolution through sysfs (Kata's config.GetHostPath and friends).
 *
 * The sysfs root is injectable: an sv_sysfs reads "<root>/sys/..." (root "/"
 * in production, a generated fake tree in tests). Every path inside it is
 * walked one component at a time from a directory fd, never handed to the
 * kernel whole: symlinks are followed only while they stay inside
 * <root>/sys (the kernel's layout uses relative links such as
 * dev/block/7:3 -> ../../devices/virtual/block/loop3); an absolute link or
 * one whose ".." climbs above <root>/sys is an error (EXDEV). Every file read
 * is bounded (SV_SYSFS_READ_MAX; a sysfs attribute is at most one page), and
 * every name read from sysfs that is used as a path component is checked to
 * be a plain name first.
 *
 * Error messages name the device and the path as the kernel shows it
 * ("<root>/sys/dev/block/7:3/uevent", i.e. "/sys/dev/block/7:3/uevent" for
 * root "/"): "block device 7:3: no DEVNAME in /sys/dev/block/7:3/uevent".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "devices/device.h"
#include "util/cleanup.h"
#include "util/error.h"

/* A sysfs attribute (uevent, backing_file, vendor, ...) is at most a page. */
#define SV_SYSFS_READ_MAX 4096
/* sv_uevent_parse() refuses longer input. */
#define SV_UEVENT_MAX SV_SYSFS_READ_MAX
/* Largest major and minor numbers Linux has (12 and 20 bits). */
#define SV_DEV_MAJOR_MAX 4095u
#define SV_DEV_MINOR_MAX 1048575u

/* ---- the uevent format (pure; a fuzz target calls sv_uevent_parse) ---- */

typedef struct sv_uevent_var {
    char *key, *value;
} sv_uevent_var;

typedef struct sv_uevent {
    sv_uevent_var *vars;
    size_t n;
} sv_uevent;

/* Parses the text of a sysfs uevent file: lines "KEY=VALUE" separated by
 * '\n' (the last newline optional, empty lines ignored). KEY is one or more
 * of [A-Za-z0-9_]; VALUE is the rest of the line, possibly empty, any bytes
 * but NUL and '\n'. `text` need not be NUL-terminated; `len` bytes are read.
 * On success *out holds copies of every pair in file order (clear it with
 * sv_uevent_clear); on failure *out is left empty and *err says which line is
 * wrong, without quoting its bytes: EFBIG past SV_UEVENT_MAX bytes, EINVAL
 * for a NUL byte, a line without '=', a bad key or a key given twice. */
int sv_uevent_parse(const char *text, size_t len, sv_uevent *out, sv_error **err);
/* The value of `key`, or NULL. */
const char *sv_uevent_get(const sv_uevent *ev, const char *key);
void sv_uevent_clear(sv_uevent *ev);

/* True when `name` is a DEVNAME sandvm will turn into "/dev/<name>": 1..255
 * bytes of [A-Za-z0-9._+:@-] in '/'-separated components, none empty, "." or
 * "..", no leading or trailing '/'. */
bool sv_devname_valid(const char *name);

/* `s` in double quotes, C-escaped (\n, \", \\, \xNN for other bytes outside
 * printable ASCII), for quoting untrusted names in messages. NULL on OOM. */
char *sv_quote(const char *s);

/* ---- a sysfs tree ---- */

typedef struct sv_sysfs sv_sysfs;

/* Opens the sysfs under `root` ("<root>/sys"); root NULL or "" means "/".
 * `root` must be absolute. Errors: ENOENT/ENOTDIR naming "<root>/sys". */
int sv_sysfs_open(const char *root, sv_sysfs **out, sv_error **err);
void sv_sysfs_free(sv_sysfs *s);
SV_DEFINE_CLEANUP(sv_sysfs, sv_sysfs_free)
#define _cleanup_sysfs_ _cleanup_(sv_sysfs_freep)
/* The root as given, without trailing '/' ("/" stays "/"). */
const char *sv_sysfs_root(const sv_sysfs *s);
/* "<root>/sys/<rel>" for messages and for paths handed to a hypervisor
 * (rel relative to /sys, no leading '/'); NULL only on OOM. */
char *sv_sysfs_path(const sv_sysfs *s, const char *rel);

/* Where a walk ended: the directory holding the last component (owned fd),
 * the last component's name, and the canonical path relative to /sys of the
 * whole thing with every symlink resolved ("devices/virtual/block/loop3"). */
typedef struct sv_sysfs_walk {
    int dirfd;
    char *name;
    char *canon;
} sv_sysfs_walk;
void sv_sysfs_walk_clear(sv_sysfs_walk *w);

/* Walks `rel` (relative to /sys, '/'-separated; components must be plain
 * names) following every symlink, the last one included, inside /sys. The
 * last component must exist. Errors: ENOENT "<path> does not exist", EXDEV
 * "<path>: symlink ... leads outside <root>/sys", ELOOP, ENOTDIR. */
int sv_sysfs_resolve(const sv_sysfs *s, const char *rel, sv_sysfs_walk *out, sv_error **err);
/* Reads the file at `rel` (symlinks resolved as above), at most `max` bytes:
 * EFBIG "<path> is larger than <max> bytes"; EINVAL when not a regular file.
 * *data_out is NUL-terminated (free it); len_out and size_out (the file's
 * st_size, which for sysfs may exceed what a read returns) may be NULL. */
int sv_sysfs_read(const sv_sysfs *s, const char *rel, size_t max, char **data_out, size_t *len_out,
                  size_t *size_out, sv_error **err);
/* Reads a one-line attribute: its text without the one trailing newline the
 * kernel adds. EINVAL when the value holds another newline or a NUL. */
int sv_sysfs_read_line(const sv_sysfs *s, const char *rel, char **value_out, sv_error **err);
/* Opens the directory at `rel` for reading (symlinks resolved as above). */
int sv_sysfs_open_dir(const sv_sysfs *s, const char *rel, int *fd_out, sv_error **err);

/* ---- host paths of devices ---- */

typedef enum {
    SV_DEVNODE_BLOCK,
    SV_DEVNODE_CHAR,
} sv_devnode_kind;

/* major:minor -> "/dev/<DEVNAME>" through /sys/dev/{block,char}/M:m/uevent.
 * Errors name the device: ENOENT "block device 7:3: /sys/dev/block/7:3/uevent
 * does not exist", ENOENT "block device 7:3: no DEVNAME in
 * /sys/dev/block/7:3/uevent", EINVAL for an unsafe DEVNAME or a major/minor
 * out of range, and the uevent parser's errors. */
int sv_sysfs_devnode_path(const sv_sysfs *s, int kind, unsigned major, unsigned minor,
                          char **path_out, sv_error **err);

/* The file behind a loop device. */
typedef struct sv_loop_backing {
    char *devnode; /* "/dev/loop3" */
    char *path;    /* the backing file, absolute */
    /* The backing file was unlinked: the kernel showed "<path> (deleted)"
     * and no file named "<path> (deleted)" exists. `path` is then the name
     * it had, which may meanwhile name another file or none: open the loop
     * device (devnode) instead. */
    bool deleted;
} sv_loop_backing;
void sv_loop_backing_clear(sv_loop_backing *b);

/* Reads /sys/block/loopN/loop/backing_file of block device major:minor (the
 * loop device's name from its DEVNAME). The kernel writes the path and one
 * '\n'; that newline is dropped. A path holding another newline is refused
 * (EINVAL "... contains a newline"): it is exact, but no consumer of host
 * paths downstream should have to carry one; the loop device itself (its
 * devnode, named in the message) still works. Errors: EINVAL when major is
 * not SV_LOOP_MAJOR; ENXIO "loop device 7:3 (/dev/loop3) has no backing
 * file" for an unbound loop device; EINVAL for an empty or relative path. */
int sv_sysfs_loop_backing(const sv_sysfs *s, unsigned major, unsigned minor, sv_loop_backing *out,
                          sv_error **err);

/* Kata's vhost-user store: a vhost-user-blk (major 241) or -scsi (242)
 * device exists as a block device node <store>/block/devices/<name>; its
 * socket is <store>/block/sockets/<name>. Finds the node whose rdev is
 * major:minor (symlinks and non-block entries are skipped, where Kata
 * followed them) and returns the socket path, which must exist and be a
 * socket (Kata only checked that it exists). Errors: ENOENT naming the store
 * directory and the device; EEXIST when two nodes share major:minor
 * (ambiguous, where Kata took the first); EINVAL for a name with control
 * characters. */
int sv_vhost_user_store_socket(const char *store, unsigned major, unsigned minor, char **socket_out,
                               sv_error **err);

/* Kata's GetHostPath: the host path for a device given by `info`:
 * - major < 0: info->host_path as given (must be set);
 * - `vhost_user_store` non-NULL, type 'b' and major 241/242: the store's socket;
 * - type 'b': /dev/<DEVNAME> from /sys/dev/block; 'c' or 'u': from /sys/dev/char;
 * - anything else ('p'): EINVAL, the device has no host node.
 * Where Kata returned the container path unchanged for a missing uevent
 * file, this fails with ENOENT. */
int sv_dev_host_path(const sv_sysfs *s, const sv_dev_info *info, const char *vhost_user_store,
                     char **path_out, sv_error **err);
