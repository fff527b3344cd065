/*
 * sandvm-logger: the console logger of one VM (src/logger.h). It owns the
 * QEMU end of the guest console, keeps what the guest prints in a capped log
 * (console.log + console.log.1, util/caplog.h) and re-serves the console on
 * the VM's console socket to one client at a time (the others wait in the
 * backlog), both ways. It exits when QEMU's end closes (QEMU exited); its own
 * death only disconnects QEMU's console, which QEMU survives.
 *
 * Usage: sandvm-logger --vm-dir DIR --size BYTES
 *   fd 3: a connected stream socket, QEMU's console chardev at the other end
 *   fd 4: the listening console socket (DIR/console.sock)
 *   fd 5: DIR, opened; the log is written there, never through a path
 * DIR only marks the process as this VM's (sandvm finds it by its pid file
 * and this argument). Small on purpose: no allocation after start, static
 * buffers, a single poll loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/caplog.h"

#define QEMU_FD 3
#define LISTEN_FD 4
#define DIR_FD 5
#define BUF 65536
#define BACKLOG 16
#define COALESCE_BELOW 512

static const struct timespec coalesce = {0, 2 * 1000 * 1000};

/* guest output not yet written to the client; client input not yet written to QEMU */
static char out_buf[BUF], in_buf[BUF], rd[BUF];
static size_t out_len, in_len;

static int usage(void)
{
    fputs("usage: sandvm-logger --vm-dir DIR --size BYTES (fds 3, 4, 5 prepared by sandvm)\n",
          stderr);
    return 2;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Writes what it can of buf[0..*len) to fd, keeping the rest; -1 when fd is broken. */
static int flush(int fd, char *buf, size_t *len)
{
    while (*len > 0) {
        ssize_t n = write(fd, buf, *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        memmove(buf, buf + n, *len - (size_t)n);
        *len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t size = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--vm-dir") == 0) {
            dir = argv[i + 1];
        } else if (strcmp(argv[i], "--size") == 0) {
            char *end = NULL;
            size = strtoull(argv[i + 1], &end, 10);
            if (!end || *end)
                return usage();
        } else {
            return usage();
        }
    }
    if (!dir || argc % 2 == 0 || size < 2 ||
        fcntl(QEMU_FD, F_GETFD) < 0 || fcntl(LISTEN_FD, F_GETFD) < 0 || fcntl(DIR_FD, F_GETFD) < 0)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    set_nonblock(QEMU_FD);
    set_nonblock(LISTEN_FD);
    /* QEMU never had this socket, but keep the backlog sandvm promises */
    listen(LISTEN_FD, BACKLOG);

    sv_caplog log;
    sv_caplog_open(&log, DIR_FD, "console.log", "console.log.1", size);
    int client = -1;
    for (;;) {
        struct pollfd p[3] = {
            /* with a client, read the guest only as far as the client keeps up */
            {.fd = QEMU_FD, .events = (client < 0 || out_len < BUF ? POLLIN : 0) |
                                      (in_len ? POLLOUT : 0)},
            {.fd = client < 0 ? LISTEN_FD : -1, .events = POLLIN},
            {.fd = client, .events = (in_len < BUF ? POLLIN : 0) | (out_len ? POLLOUT : 0)},
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t want = client < 0 ? BUF : BUF - out_len;
            ssize_t n = want ? read(QEMU_FD, rd, want) : 0;
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                break; /* QEMU is gone */
            if (n > 0) {
                sv_caplog_write(&log, rd, (size_t)n);
                if (client >= 0) {
                    memcpy(out_buf + out_len, rd, (size_t)n);
                    out_len += (size_t)n;
                }
            }
            /* a UART hands over its output a byte or a few at a time: let
             * some gather instead of waking per byte (a flood then costs a
             * few hundred wake-ups a second, a keystroke's echo 2 ms) */
            if (n > 0 && n < COALESCE_BELOW)
                nanosleep(&coalesce, NULL);
        }
        if (p[0].revents & POLLOUT && flush(QEMU_FD, in_buf, &in_len) < 0)
            break;
        if (p[1].revents & POLLIN) {
            client = accept4(LISTEN_FD, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            out_len = in_len = 0;
        }
        if (client >= 0 && p[2].revents) {
            bool gone = false;
            if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = read(client, in_buf + in_len, BUF - in_len);
                if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
                    gone = true;
                else if (n > 0)
                    in_len += (size_t)n;
            }
            if (!gone && (p[2].revents & POLLOUT) && flush(client, out_buf, &out_len) < 0)
                gone = true;
            if (gone) {
                close(client);
                client = -1;
                out_len = in_len = 0;
            }
        }
        if (in_len && flush(QEMU_FD, in_buf, &in_len) < 0)
            break;
    }
    sv_caplog_close(&log);
    if (client >= 0)
        close(client);
    return 0;
}
