#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/lock.h"
#include "util/sock.h"

/* Longest sleep between two attempts: a lock released by a short command is
 * picked up within this many milliseconds. */
#define LOCK_POLL_MAX_MS 50

static int open_lock(int dirfd, const char *name, const char *what, unsigned flags, sv_error **err)
{
    int oflags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    if (flags & SV_LOCK_CREATE)
        oflags |= O_CREAT;
    _cleanup_close_ int fd = openat(dirfd, name, oflags, 0600);
    if (fd < 0) {
        int e = errno;
        _cleanup_free_ char *path = sv_fd_path(dirfd, name);
        if (e == ELOOP)
            return sv_error_set(err, ELOOP, "%s: lock file %s is a symlink; refusing to follow it",
                                what, path ? path : name);
        return sv_error_errno(err, e, "%s: opening lock file %s", what, path ? path : name);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        _cleanup_free_ char *path = sv_fd_path(dirfd, name);
        return sv_error_errno(err, e, "%s: lock file %s", what, path ? path : name);
    }
    if (!S_ISREG(st.st_mode)) {
        _cleanup_free_ char *path = sv_fd_path(dirfd, name);
        return sv_error_set(err, EINVAL, "%s: lock file %s is not a regular file", what,
                            path ? path : name);
    }
    return TAKE_FD(fd);
}

/* True when `fd` is still the file linked at `name`. */
static bool still_linked(int fd, int dirfd, const char *name)
{
    struct stat held, cur;
    if (fstat(fd, &held) < 0 || held.st_nlink == 0)
        return false;
    if (fstatat(dirfd, name, &cur, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
    return held.st_dev == cur.st_dev && held.st_ino == cur.st_ino;
}

/* Sleeps `ms`; true when `cancel_fd` (>= 0) became readable meanwhile. */
static bool sleep_ms(int ms, int cancel_fd)
{
    if (cancel_fd >= 0) {
        struct pollfd p = {.fd = cancel_fd, .events = POLLIN};
        return poll(&p, 1, ms) > 0; /* EINTR just means one shorter wait */
    }
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return false;
}

int sv_lock_acquire(int dirfd, const char *name, const char *what, unsigned flags, int timeout_ms,
                    sv_error **err)
{
    return sv_lock_acquire_cancel(dirfd, name, what, flags, timeout_ms, -1, err);
}

int sv_lock_acquire_cancel(int dirfd, const char *name, const char *what, unsigned flags,
                           int timeout_ms, int cancel_fd, sv_error **err)
{
    if (!sv_plain_name(name))
        return sv_error_set(err, EINVAL, "%s: lock file \"%s\" is not a plain file name", what,
                            name ? name : "");
    int64_t deadline = timeout_ms < 0 ? SV_NO_DEADLINE : sv_deadline_ms(timeout_ms);
    int delay = 1, replaced = 0;
    _cleanup_close_ int fd = -1;
    for (;;) {
        if (fd < 0) {
            fd = open_lock(dirfd, name, what, flags, err);
            if (fd < 0)
                return fd;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (still_linked(fd, dirfd, name))
                return TAKE_FD(fd);
            /* The previous holder removed the file (deleting what it
             * protected) or replaced it: our lock guards nothing. Look again;
             * without SV_LOCK_CREATE a removed file ends the wait. */
            close(TAKE_FD(fd));
            struct stat st;
            if (!(flags & SV_LOCK_CREATE) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
                errno == ENOENT)
                return sv_error_set(err, ENOENT, "%s was removed while waiting for its lock", what);
            if (++replaced <= 3 || sv_remaining_ms(deadline) != 0)
                continue;
            return sv_error_set(err, ETIMEDOUT, "%s is busy (its lock file keeps being replaced)",
                                what);
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            _cleanup_free_ char *path = sv_fd_path(dirfd, name);
            return sv_error_errno(err, e, "%s: locking %s", what, path ? path : name);
        }
        int left = sv_remaining_ms(deadline);
        if (left == 0)
            return sv_error_set(err, ETIMEDOUT, "%s is busy (locked by another sandvm)", what);
        if (sleep_ms(left < 0 || left > delay ? delay : left, cancel_fd))
            return sv_error_set(err, ECANCELED, "%s: cancelled while waiting for its lock", what);
        if (delay < LOCK_POLL_MAX_MS)
            delay = delay * 2 > LOCK_POLL_MAX_MS ? LOCK_POLL_MAX_MS : delay * 2;
    }
}

void sv_lock_release(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}
