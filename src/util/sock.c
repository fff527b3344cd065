#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/sock.h"

int64_t sv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sv_deadline_ms(int timeout_ms)
{
    return timeout_ms < 0 ? SV_NO_DEADLINE : sv_now_ms() + timeout_ms;
}

int sv_remaining_ms(int64_t deadline)
{
    if (deadline == SV_NO_DEADLINE)
        return -1;
    int64_t left = deadline - sv_now_ms();
    if (left <= 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

int sv_poll_deadline(struct pollfd *fds, size_t n, int64_t deadline, sv_error **err)
{
    for (;;) {
        int r = poll(fds, n, sv_remaining_ms(deadline));
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return sv_error_errno(err, errno, "poll");
    }
}

int sv_private_dir_new(char **dir_out, sv_error **err)
{
    const char *base = getenv("TMPDIR");
    if (!base || base[0] != '/')
        base = "/tmp";
    _cleanup_free_ char *dir = NULL;
    if (asprintf(&dir, "%s/sandvm-XXXXXX", base) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    /* mkdtemp creates the directory with mode 0700 */
    if (!mkdtemp(dir))
        return sv_error_errno(err, errno, "creating a private directory in %s", base);
    *dir_out = TAKE_PTR(dir);
    return 0;
}

void sv_private_dir_remove(const char *dir)
{
    if (!dir)
        return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno == EISDIR)
                unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int fill_addr(struct sockaddr_un *sa, const char *path, sv_error **err)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len == 0)
        return sv_error_set(err, EINVAL, "empty socket path");
    if (len >= sizeof(sa->sun_path))
        return sv_error_set(err, ENAMETOOLONG, "%s: socket path longer than %zu bytes", path,
                            sizeof(sa->sun_path) - 1);
    memcpy(sa->sun_path, path, len);
    return 0;
}

int sv_unix_listen(const char *path, sv_error **err)
{
    struct sockaddr_un sa;
    int r = fill_addr(&sa, path, err);
    if (r < 0)
        return r;
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sv_error_errno(err, errno, "creating a unix socket");
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return sv_error_errno(err, errno, "binding %s", path);
    if (listen(fd, 16) < 0)
        return sv_error_errno(err, errno, "listening on %s", path);
    return TAKE_FD(fd);
}

int sv_unix_connect(const char *path, int64_t deadline, sv_error **err)
{
    struct sockaddr_un sa;
    int r = fill_addr(&sa, path, err);
    if (r < 0)
        return r;
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return sv_error_errno(err, errno, "creating a unix socket");
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        if (errno == EINTR)
            continue;
        /* a unix socket whose backlog is full answers EAGAIN, not EINPROGRESS:
         * retry until the listener accepts or the deadline passes */
        if (errno != EAGAIN)
            return sv_error_errno(err, errno, "connecting to %s", path);
        int left = sv_remaining_ms(deadline);
        if (left == 0)
            return sv_error_set(err, ETIMEDOUT, "connecting to %s: timed out", path);
        struct timespec ts = {0, 10 * 1000000L};
        if (left > 0 && left < 10)
            ts.tv_nsec = left * 1000000L;
        nanosleep(&ts, NULL);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        return sv_error_errno(err, errno, "connecting to %s", path);
    return TAKE_FD(fd);
}

ssize_t sv_sock_recv(int fd, void *buf, size_t len, int64_t deadline, sv_error **err)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return sv_error_errno(err, errno, "receiving");
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = sv_poll_deadline(&p, 1, deadline, err);
        if (r < 0)
            return r;
        if (r == 0)
            return sv_error_set(err, ETIMEDOUT, "timed out receiving");
    }
}

int sv_sock_send_all(int fd, const void *buf, size_t len, int64_t deadline, sv_error **err)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return sv_error_errno(err, errno, "sending");
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int r = sv_poll_deadline(&pf, 1, deadline, err);
        if (r < 0)
            return r;
        if (r == 0)
            return sv_error_set(err, ETIMEDOUT, "timed out sending");
    }
    return 0;
}
