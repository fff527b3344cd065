/*
 * Unix sockets and fd I/O under deadlines. Nothing here blocks past its
 * deadline: every wait is a poll() bounded by an absolute CLOCK_MONOTONIC time
 * in milliseconds (sv_deadline_ms()), so a caller that chains several steps
 * under one deadline gets one overall bound, not one per step.
 */
#pragma once

#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include "util/error.h"

/* No deadline: waits forever. Only for callers that have another bound. */
#define SV_NO_DEADLINE INT64_C(-1)

/* CLOCK_MONOTONIC now, in milliseconds. */
int64_t sv_now_ms(void);
/* The deadline `timeout_ms` from now (a negative timeout means SV_NO_DEADLINE). */
int64_t sv_deadline_ms(int timeout_ms);
/* Milliseconds left until `deadline` as a poll() timeout: 0 once it passed,
 * -1 for SV_NO_DEADLINE. */
int sv_remaining_ms(int64_t deadline);

/* poll()s `fds` (EINTR is retried with the remaining time) until one is ready
 * or `deadline` passes. Returns the number of ready fds, 0 on timeout, or a
 * negative errno with *err set. */
int sv_poll_deadline(struct pollfd *fds, size_t n, int64_t deadline, sv_error **err);

/* Creates a fresh directory only the caller can enter (mode 0700) under
 * $TMPDIR (when set to an absolute path) or /tmp, named sandvm-XXXXXX.
 * *dir_out receives the newly allocated path. */
int sv_private_dir_new(char **dir_out, sv_error **err);
/* Removes the entries directly inside `dir` (not recursing), then `dir`
 * itself; errors are ignored. NULL is accepted. */
void sv_private_dir_remove(const char *dir);
/* Removes and frees the directory (for _cleanup_private_dir_). */
static inline void sv_private_dir_removep(char **dir)
{
    sv_private_dir_remove(*dir);
    free(*dir);
}
#define _cleanup_private_dir_ __attribute__((cleanup(sv_private_dir_removep)))

/* Binds a SOCK_STREAM AF_UNIX socket to `path` (which must not exist) and
 * listens on it. Returns the listening fd (close-on-exec) or a negative errno:
 * ENAMETOOLONG when `path` does not fit in sun_path. */
int sv_unix_listen(const char *path, sv_error **err);
/* Connects to the AF_UNIX socket at `path` before `deadline`. The returned fd
 * is close-on-exec and blocking; use the helpers below, which never block.
 * Connecting to a socket that listens but has not accepted yet succeeds at
 * once while its backlog has room. */
int sv_unix_connect(const char *path, int64_t deadline, sv_error **err);

/* Receives up to `len` bytes from socket `fd`. Returns the byte count, 0 at
 * end of stream, or a negative errno with *err set (ETIMEDOUT past deadline). */
ssize_t sv_sock_recv(int fd, void *buf, size_t len, int64_t deadline, sv_error **err);
/* Sends all `len` bytes to socket `fd`, never raising SIGPIPE (a closed peer
 * is EPIPE). Returns 0 or a negative errno with *err set. */
int sv_sock_send_all(int fd, const void *buf, size_t len, int64_t deadline, sv_error **err);
