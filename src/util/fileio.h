/*
 * Files inside a directory we opened, never through a path: every call takes
 * a directory fd and a plain entry name (no '/', not "." or ".."), and opens
 * with O_NOFOLLOW | O_CLOEXEC, so a symlink planted at the name can neither
 * redirect a write nor a read. State that must survive a crash is written with
 * sv_write_file_atomic(): a reader sees either the old or the new content,
 * never a torn file, even after a power cut.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

/* Temporary files and directories sandvm creates in its own directories start
 * with this prefix, so cleanup can recognise a crash's leftovers by name. */
#define SV_TMP_PREFIX ".sv-tmp."

/* True when `name` names an entry directly inside a directory: not empty, not
 * "." or "..", no '/'. */
bool sv_plain_name(const char *name);

/* "<path of dirfd>/<name>" for messages (the directory's path as the kernel
 * reports it for the fd); `name` may be NULL for the directory itself. Never
 * fails: falls back to "<name>" or "?". Newly allocated; free() it. NULL only
 * on out-of-memory. */
char *sv_fd_path(int dirfd, const char *name);

/* Replaces the file `name` in the directory `dirfd` with `len` bytes of `data`
 * and permission bits `mode`, crash-safely: the data goes to a temporary file
 * in the same directory (O_TMPFILE when the filesystem has it, linked under a
 * random SV_TMP_PREFIX name; else a random name created O_EXCL | O_NOFOLLOW),
 * which is written in full, fsync()ed, renamed over `name` and followed by an
 * fsync() of the directory. A symlink at `name` is replaced, not followed.
 * `dirfd` must be a directory opened for reading (not O_PATH: it is fsync()ed).
 *
 * Returns 0, or a negative errno with *err naming the file and the step that
 * failed: "writing /run/sandvm/vm1/state.json: fsync of the temporary file:
 * No space left on device". On failure before the rename, `name` keeps its old
 * content (or stays absent) and the temporary file is removed. A failed final
 * directory fsync is reported too, although the new content is then already in
 * place (only its durability across a power cut is in doubt). */
int sv_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         sv_error **err);

/* Reads the regular file `name` in `dirfd` (never through a symlink; a FIFO or
 * device is refused without blocking on it). On success *data_out is a newly
 * allocated NUL-terminated buffer of *len_out bytes (len_out may be NULL).
 * Errors name the file: ENOENT, ELOOP "... is a symlink; refusing to follow
 * it", EINVAL "... is not a regular file", EFBIG past `max` bytes. */
int sv_read_file_at(int dirfd, const char *name, size_t max, char **data_out, size_t *len_out,
                    sv_error **err);

/* Random lowercase hex (2 * nbytes characters) for unique names; never fails. */
void sv_random_hex(char *out, size_t nbytes);

/* Test-only fault injection and determinism; all zero in production. */
typedef struct sv_fileio_test_hooks {
    /* Make this step of sv_write_file_atomic() fail with EIO: "create",
     * "write", "chmod", "fsync", "link", "rename" or "fsync-dir". */
    const char *fail_step;
    /* Skip O_TMPFILE and use the named-temporary-file path. */
    bool no_tmpfile;
    /* Random parts for temporary names, used in order before real random
     * ones (NULL-terminated); lets a test plant a symlink at the name. */
    const char *const *tmp_randoms;
    size_t tmp_randoms_used;
} sv_fileio_test_hooks;

extern sv_fileio_test_hooks sv_fileio_hooks;
