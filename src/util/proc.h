/*
 * Child processes: spawn with an exact set of fds, wait under a deadline,
 * kill and reap. The child gets stdin and stdout on /dev/null, stderr in a
 * buffer the parent reads (the first SV_PROC_STDERR_MAX bytes are kept; later
 * writes fail with EPERM, so a chatty child can neither block on a full pipe
 * nor grow our memory), the caller's fds as 3, 4, ... and nothing else. It runs
 * in its own process group with the default signal dispositions and an empty
 * signal mask, and is killed by the kernel (PR_SET_PDEATHSIG) if the spawning
 * thread dies first. Waiting goes through a pidfd, so it never races with pid
 * reuse and never needs SIGCHLD.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

#define SV_PROC_STDERR_MAX (64 * 1024)

typedef struct sv_proc sv_proc;

typedef struct sv_spawn_opts {
    const char *program; /* what to run; NULL: argv[0] */
    const int *fds;      /* caller fds; the child sees fds[i] as 3 + i */
    size_t nfds;
} sv_spawn_opts;

/* Starts the program (a path, or a bare name looked up in $PATH) with `argv`
 * (NULL-terminated) and the current environment. `opts` may be NULL. Returns 0
 * and *out, or a negative errno: ENOENT "NAME: not found in PATH", EBADF for a
 * fd in opts that is not open, or the errno of execve() ("executing PATH: ...")
 * reported back from the child. */
int sv_proc_spawn(char *const *argv, const sv_spawn_opts *opts, sv_proc **out, sv_error **err);

pid_t sv_proc_pid(const sv_proc *p);
/* A pidfd for poll(): readable once the child exited; -1 on kernels without
 * pidfd_open (then only sv_proc_wait() can tell). Owned by `p`. */
int sv_proc_pidfd(const sv_proc *p);

/* Waits until the child exits or `deadline` (sv_deadline_ms()) passes. On exit
 * returns 0, reaps the child and stores its wait status in *status (may be
 * NULL). Returns -ETIMEDOUT (with *err set) when it is still running; a child
 * already reaped returns its status again. */
int sv_proc_wait(sv_proc *p, int64_t deadline, int *status, sv_error **err);
/* True once sv_proc_wait() has reaped the child. */
bool sv_proc_reaped(const sv_proc *p);
/* SIGKILLs the child's process group and reaps the child; no-op once reaped. */
void sv_proc_kill(sv_proc *p);

/* The child's stderr so far: NUL-terminated, at most SV_PROC_STDERR_MAX bytes,
 * trailing whitespace removed. Owned by `p`, valid until the next call or
 * sv_proc_free(). Never NULL (""). */
const char *sv_proc_stderr(sv_proc *p);

/* "exited with status N" or "killed by signal N (SIGNAME)"; newly allocated,
 * NULL on out-of-memory. */
char *sv_wait_status_string(int status);

/* ---- Detached processes: daemons that outlive the caller. */

/* What a detached process may do, applied in the child just before exec, in
 * this order: the capability bounding set and the ambient set emptied
 * (drop_caps; needs root), supplementary groups dropped and the real,
 * effective and saved ids set to uid/gid (set_ids; needs root), a new user
 * namespace in which uid/gid appear as 0 (userns, only with set_ids: for a
 * daemon that needs root's powers inside its own sandbox, e.g. virtiofsd,
 * and gets none on the host), the inheritable, permitted and effective sets
 * emptied (drop_caps), and PR_SET_NO_NEW_PRIVS (no_new_privs: no setuid bit
 * or file capability of anything it executes ever gains it anything). A step
 * that fails fails the spawn with its errno ("executing PATH: ..."). */
typedef struct sv_confine {
    bool no_new_privs;
    bool drop_caps;
    bool set_ids;
    uid_t uid;
    gid_t gid;
    bool userns;
} sv_confine;

typedef struct sv_detached_opts {
    const char *program; /* what to run; NULL: argv[0] */
    const int *fds;      /* caller fds; the process sees fds[i] as 3 + i */
    size_t nfds;
    int stderr_fd;       /* its stderr (e.g. a log file); -1: /dev/null */
    int pid_fd;          /* >= 0: a file the pid is written to ("PID\n") as soon as the
                            process exists, before this call even learns it; -1: none */
    const sv_confine *confine; /* NULL: it runs with the caller's ids and capabilities */
} sv_detached_opts;

typedef struct sv_detached {
    pid_t pid;
    int64_t start_time; /* field 22 of /proc/PID/stat: with the pid, names the process */
    int pidfd;          /* close-on-exec; readable once it exited. The caller closes it. */
} sv_detached;

/* Starts the program detached from the caller, as a daemon: a grandchild
 * (double fork) reparented to init (or the nearest subreaper) at once, so no
 * caller ever has to reap it, in a session of its own (setsid: no signal for
 * the caller's terminal or process group reaches it), with stdin and stdout
 * on /dev/null, stderr on opts->stderr_fd, the caller's fds as 3, 4, ...,
 * nothing else open, the default signal dispositions, an empty signal mask,
 * umask 077 and "/" as its working directory. Unlike sv_proc_spawn() it is
 * not killed when the caller dies.
 *
 * The pidfd is opened by the intermediate process while the daemon is still
 * its child (so it cannot name a reused pid) and handed over with the pid and
 * start time. Returns 0 once the program was executed (it may already have
 * exited: poll the pidfd), or a negative errno: ENOENT "NAME: not found in
 * PATH", EBADF for a fd in opts that is not open, ENOSYS without pidfd_open
 * (Linux < 5.3), or the errno of execve() ("executing PATH: ..."). */
int sv_proc_spawn_detached(char *const *argv, const sv_detached_opts *opts, sv_detached *out,
                           sv_error **err);

/* Checks, as uid/gid would (no supplementary groups), that each paths[i]
 * allows access(modes[i]) (R_OK, W_OK, X_OK): in a forked child that takes
 * those ids, so permissions, ACLs and every directory on the way count. 0
 * when all do; else the access() errno of the first that does not (*bad: its
 * index), e.g. -EACCES, with *err saying "PATH: Permission denied". Needs
 * root to switch ids. */
int sv_proc_access_as(uid_t uid, gid_t gid, const char *const *paths, const int *modes, size_t n,
                      size_t *bad, sv_error **err);

/* SIGKILLs the process of `pidfd`; no-op for -1 or a process that is gone. */
void sv_pidfd_kill(int pidfd);

/* Where sv_proc_spawn() would find `name`: itself when it holds a '/' (and
 * is an executable regular file), else the first such file in $PATH.
 * *path_out is newly allocated. ENOENT "NAME: not found in PATH" /
 * "PATH: not an executable file". */
int sv_proc_which(const char *name, char **path_out, sv_error **err);

/* Kills and reaps the child if it still runs, then frees; NULL is accepted. */
void sv_proc_free(sv_proc *p);

static inline void sv_proc_freep(sv_proc **p)
{
    sv_proc_free(*p);
}
#define _cleanup_proc_ __attribute__((cleanup(sv_proc_freep)))
