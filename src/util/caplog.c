#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "util/caplog.h"

static int create_current(sv_caplog *l)
{
    for (int tries = 0; tries < 2; tries++) {
        l->fd = openat(l->dirfd, l->name,
                       O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (l->fd >= 0) {
            l->size = 0;
            return 0;
        }
        if (errno != EEXIST)
            break;
        /* something appeared under the name since: remove the link, once */
        if (unlinkat(l->dirfd, l->name, 0) < 0 && errno != ENOENT)
            break;
    }
    return l->error = errno ? errno : EIO;
}

int sv_caplog_open(sv_caplog *l, int dirfd, const char *name, const char *old_name,
                   uint64_t max_total)
{
    *l = (sv_caplog){.dirfd = dirfd, .name = name, .old_name = old_name, .fd = -1};
    l->half = max_total / 2;
    if (l->half == 0)
        return -(l->error = EINVAL);
    unlinkat(dirfd, old_name, 0);
    unlinkat(dirfd, name, 0);
    int e = create_current(l);
    return e ? -e : 0;
}

static void fail(sv_caplog *l, int e)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    l->error = e ? e : EIO;
}

/* The current file becomes old_name (replacing it, as a link) and a new
 * current file starts. */
static int rotate(sv_caplog *l)
{
    close(l->fd);
    l->fd = -1;
    if (renameat(l->dirfd, l->name, l->dirfd, l->old_name) < 0) {
        /* e.g. a directory planted as old_name: drop ours instead */
        int e = errno;
        if (unlinkat(l->dirfd, l->name, 0) < 0 && errno != ENOENT) {
            fail(l, e);
            return -1;
        }
    }
    l->rotations++;
    if (create_current(l)) {
        fail(l, l->error);
        return -1;
    }
    return 0;
}

void sv_caplog_write(sv_caplog *l, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0 && l->fd >= 0) {
        if (l->size >= l->half && rotate(l) < 0)
            return;
        uint64_t room = l->half - l->size;
        size_t chunk = n < room ? n : (size_t)room;
        ssize_t w = write(l->fd, p, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail(l, w < 0 ? errno : EIO);
            return;
        }
        l->size += (uint64_t)w;
        l->written += (uint64_t)w;
        p += w;
        n -= (size_t)w;
    }
}

int sv_caplog_failed(const sv_caplog *l)
{
    return l->error;
}

void sv_caplog_close(sv_caplog *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}
