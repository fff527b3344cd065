#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fileio.h"

sv_fileio_test_hooks sv_fileio_hooks;

/* Attempts at a fresh temporary name before giving up: only a directory full
 * of planted names (or a broken random source) gets that far. */
#define TMP_NAME_TRIES 16

bool sv_plain_name(const char *name)
{
    return name && *name && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && !strchr(name, '/');
}

char *sv_fd_path(int dirfd, const char *name)
{
    char *out = NULL;
    if (dirfd == AT_FDCWD)
        return strdup(name ? name : ".");
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return strdup(name ? name : "?");
    target[n] = '\0';
    if (!name)
        return strdup(target);
    if (asprintf(&out, "%s%s%s", target, strcmp(target, "/") ? "/" : "", name) < 0)
        return NULL;
    return out;
}

void sv_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    static uint64_t counter;
    unsigned char buf[32];
    if (nbytes > sizeof(buf))
        nbytes = sizeof(buf);
    if (getrandom(buf, nbytes, GRND_NONBLOCK) != (ssize_t)nbytes) {
        /* No entropy yet (early boot): uniqueness, not secrecy, is what the
         * names need, and O_EXCL catches a collision anyway. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                     ((uint64_t)getpid() << 16) ^ ++counter;
        for (size_t i = 0; i < nbytes; i++) {
            x += UINT64_C(0x9e3779b97f4a7c15); /* splitmix64 */
            uint64_t z = x;
            z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
            buf[i] = (unsigned char)(z ^ (z >> 31));
        }
    }
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[buf[i] >> 4];
        out[2 * i + 1] = hex[buf[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

static bool injected(const char *step)
{
    if (sv_fileio_hooks.fail_step && strcmp(sv_fileio_hooks.fail_step, step) == 0) {
        errno = EIO;
        return true;
    }
    return false;
}

static void tmp_name(char *buf, size_t size, const char *name)
{
    char rnd[13];
    const char *const *t = sv_fileio_hooks.tmp_randoms;
    if (t && t[sv_fileio_hooks.tmp_randoms_used])
        snprintf(rnd, sizeof(rnd), "%s", t[sv_fileio_hooks.tmp_randoms_used++]);
    else
        sv_random_hex(rnd, 6);
    /* bounded so that prefix + name + random part stays within NAME_MAX */
    snprintf(buf, size, SV_TMP_PREFIX "%.200s.%s", name, rnd);
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int step_error(sv_error **err, int code, int dirfd, const char *name, const char *step)
{
    _cleanup_free_ char *path = sv_fd_path(dirfd, name);
    return sv_error_errno(err, code, "writing %s: %s", path ? path : name, step);
}

/* Content, mode and durability of the still-unnamed (or temp-named) file. */
static int fill(int fd, int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                sv_error **err)
{
    int r = injected("write") ? -errno : write_all(fd, data, len);
    if (r < 0)
        return step_error(err, -r, dirfd, name, "writing the temporary file");
    /* O_TMPFILE and O_CREAT both apply the umask; the caller's mode is exact */
    if (injected("chmod") || fchmod(fd, mode & 07777) < 0)
        return step_error(err, errno, dirfd, name, "setting the temporary file's mode");
    if (injected("fsync") || fsync(fd) < 0)
        return step_error(err, errno, dirfd, name, "fsync of the temporary file");
    return 0;
}

/* Gives the O_TMPFILE file `fd` a fresh temporary name in `dirfd`. linkat()
 * never follows or replaces an existing name: a planted entry gives EEXIST and
 * another name is tried. Returns 0, -EXDEV when this process may not link an
 * O_TMPFILE (no CAP_DAC_READ_SEARCH and no /proc), or another -errno. */
static int link_tmpfile(int fd, int dirfd, const char *name, char *tmp, size_t tmpsize)
{
    if (injected("link"))
        return -errno;
    for (int i = 0; i < TMP_NAME_TRIES; i++) {
        tmp_name(tmp, tmpsize, name);
        if (linkat(fd, "", dirfd, tmp, AT_EMPTY_PATH) == 0)
            return 0;
        if (errno == ENOENT || errno == EPERM) {
            char proc[64];
            snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
            if (linkat(AT_FDCWD, proc, dirfd, tmp, AT_SYMLINK_FOLLOW) == 0)
                return 0;
            if (errno == ENOENT || errno == EPERM)
                return -EXDEV;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* Returns 1 when the O_TMPFILE path is unavailable here (the caller then
 * retries with a named temporary file), 0 on success, or a negative errno. */
static int write_via_tmpfile(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                             sv_error **err)
{
    _cleanup_close_ int fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode & 0777);
    if (fd < 0) {
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
            return 1;
        return step_error(err, errno, dirfd, name, "creating a temporary file");
    }
    int r = fill(fd, dirfd, name, data, len, mode, err);
    if (r < 0)
        return r; /* the unnamed file vanishes with its fd */
    char tmp[NAME_MAX + 1];
    r = link_tmpfile(fd, dirfd, name, tmp, sizeof(tmp));
    if (r == -EXDEV)
        return 1;
    if (r < 0)
        return step_error(err, -r, dirfd, name, "linking the temporary file");
    if (injected("rename") || renameat(dirfd, tmp, dirfd, name) < 0) {
        int e = errno;
        unlinkat(dirfd, tmp, 0);
        return step_error(err, e, dirfd, name, "renaming the temporary file over it");
    }
    return 0;
}

static int write_via_named(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                           sv_error **err)
{
    char tmp[NAME_MAX + 1];
    _cleanup_close_ int fd = -1;
    for (int i = 0; i < TMP_NAME_TRIES && fd < 0; i++) {
        tmp_name(tmp, sizeof(tmp), name);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
        if (fd < 0 && errno != EEXIST)
            return step_error(err, errno, dirfd, name, "creating a temporary file");
    }
    if (fd < 0)
        return step_error(err, EEXIST, dirfd, name, "creating a temporary file");
    int r = fill(fd, dirfd, name, data, len, mode, err);
    if (r >= 0 && (injected("rename") || renameat(dirfd, tmp, dirfd, name) < 0))
        r = step_error(err, errno, dirfd, name, "renaming the temporary file over it");
    if (r < 0)
        unlinkat(dirfd, tmp, 0);
    return r;
}

int sv_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         sv_error **err)
{
    if (!sv_plain_name(name))
        return sv_error_set(err, EINVAL, "writing \"%s\": not a plain file name", name ? name : "");
    if (injected("create"))
        return step_error(err, errno, dirfd, name, "creating a temporary file");
    int r = 1;
    if (!sv_fileio_hooks.no_tmpfile)
        r = write_via_tmpfile(dirfd, name, data, len, mode, err);
    if (r > 0)
        r = write_via_named(dirfd, name, data, len, mode, err);
    if (r < 0)
        return r;
    /* the rename itself is durable only once the directory is */
    if (injected("fsync-dir") || fsync(dirfd) < 0)
        return step_error(err, errno, dirfd, name, "fsync of the directory");
    return 0;
}

int sv_read_file_at(int dirfd, const char *name, size_t max, char **data_out, size_t *len_out,
                    sv_error **err)
{
    if (!sv_plain_name(name))
        return sv_error_set(err, EINVAL, "reading \"%s\": not a plain file name", name ? name : "");
    /* O_NONBLOCK: a FIFO planted at the name must not hang the open */
    _cleanup_close_ int fd =
        openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        _cleanup_free_ char *path = sv_fd_path(dirfd, name);
        if (e == ELOOP)
            return sv_error_set(err, ELOOP, "%s is a symlink; refusing to follow it",
                                path ? path : name);
        return sv_error_errno(err, e, "opening %s", path ? path : name);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        _cleanup_free_ char *path = sv_fd_path(dirfd, name);
        return sv_error_errno(err, e, "reading %s", path ? path : name);
    }
    if (!S_ISREG(st.st_mode)) {
        _cleanup_free_ char *path = sv_fd_path(dirfd, name);
        return sv_error_set(err, EINVAL, "%s is not a regular file", path ? path : name);
    }
    size_t cap = (size_t)st.st_size < max ? (size_t)st.st_size : max;
    _cleanup_free_ char *buf = malloc(cap + 2);
    if (!buf)
        return sv_error_set(err, ENOMEM, "out of memory");
    size_t got = 0;
    /* read one byte past the cap: a file that grew since fstat is caught too */
    for (;;) {
        if (got == cap + 1)
            break;
        ssize_t n = read(fd, buf + got, cap + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            _cleanup_free_ char *path = sv_fd_path(dirfd, name);
            return sv_error_errno(err, e, "reading %s", path ? path : name);
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == cap + 1 && cap < max) {
            /* grew since fstat, still under the cap: make room and go on */
            size_t ncap = cap * 2 + 4096 < max ? cap * 2 + 4096 : max;
            char *nb = realloc(buf, ncap + 2);
            if (!nb)
                return sv_error_set(err, ENOMEM, "out of memory");
            buf = nb;
            cap = ncap;
        }
    }
    if (got > max) {
        _cleanup_free_ char *path = sv_fd_path(dirfd, name);
        return sv_error_set(err, EFBIG, "%s is larger than %zu bytes", path ? path : name, max);
    }
    buf[got] = '\0';
    if (len_out)
        *len_out = got;
    *data_out = TAKE_PTR(buf);
    return 0;
}
