/*
 * Advisory exclusive locks on a file inside a directory we opened, so that
 * concurrent sandvm processes working on one VM serialize. The lock is a
 * flock() on an open file description: it is released when the returned fd is
 * closed, and by the kernel when the process dies (even by SIGKILL), so a
 * crashed sandvm never leaves a VM locked. The fd is close-on-exec; a child
 * forked while it is held shares the lock until it execs or exits.
 */
#pragma once

#include "util/error.h"

/* Create the lock file (mode 0600) when it is missing. Only for a directory
 * nobody else can reach yet: a waiter that re-creates the lock file of a
 * directory being deleted would hold a lock on nothing and keep the
 * directory from being removed. */
#define SV_LOCK_CREATE 1u

/* Opens the lock file `name` in `dirfd` (never through a symlink; created when
 * `flags` has SV_LOCK_CREATE) and takes an exclusive lock on it,
 * retrying until `timeout_ms` has passed (0: try once; negative: no limit).
 * `what` names the locked thing in messages ("vm web1").
 *
 * Returns the fd holding the lock (release it with sv_lock_release() or
 * close()), or a negative errno with *err set:
 *   ETIMEDOUT  "<what> is busy (locked by another sandvm)"
 *   ELOOP      the lock file is a symlink (its target is left untouched)
 *   EINVAL     the lock file is not a regular file
 *   ENOENT     no lock file (without SV_LOCK_CREATE), or it was unlinked
 *              while we waited: whoever held the lock deleted the thing it
 *              protected ("<what> was removed while waiting for its lock")
 *   other      the errno of opening the file or of flock().
 * A lock file unlinked (and perhaps replaced) while we waited is detected:
 * the lock is only returned once it is held on the file currently at `name`. */
int sv_lock_acquire(int dirfd, const char *name, const char *what, unsigned flags, int timeout_ms,
                    sv_error **err);

/* As sv_lock_acquire(), and while waiting, a readable `cancel_fd` (>= 0)
 * ends the wait: ECANCELED "<what>: cancelled while waiting for its lock". */
int sv_lock_acquire_cancel(int dirfd, const char *name, const char *what, unsigned flags,
                           int timeout_ms, int cancel_fd, sv_error **err);

/* Releases the lock held by *fd and sets it to -1; a negative *fd is a no-op. */
void sv_lock_release(int *fd);
