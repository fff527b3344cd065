#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/proc.h"
#include "util/sock.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

struct sv_proc {
    pid_t pid;
    int pidfd; /* -1 without pidfd_open */
    int errfd; /* the child's stderr: a sealed fixed-size memfd */
    bool reaped;
    int status;
    char *err_text;
};

pid_t sv_proc_pid(const sv_proc *p)
{
    return p->pid;
}

int sv_proc_pidfd(const sv_proc *p)
{
    return p->pidfd;
}

bool sv_proc_reaped(const sv_proc *p)
{
    return p->reaped;
}

/* An absolute path for `name`: itself when it holds a '/', else the first
 * executable regular file in $PATH. Relative and empty $PATH entries are
 * skipped: they would make the binary depend on the working directory. */
static int resolve_binary(const char *name, char **out, sv_error **err)
{
    if (strchr(name, '/')) {
        *out = strdup(name);
        return *out ? 0 : sv_error_set(err, ENOMEM, "out of memory");
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const char *p = path; *p;) {
        const char *end = strchrnul(p, ':');
        if (p[0] == '/') {
            _cleanup_free_ char *cand = NULL;
            if (asprintf(&cand, "%.*s/%s", (int)(end - p), p, name) < 0)
                return sv_error_set(err, ENOMEM, "out of memory");
            struct stat st;
            if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
                *out = TAKE_PTR(cand);
                return 0;
            }
        }
        p = *end ? end + 1 : end;
    }
    return sv_error_set(err, ENOENT, "%s: not found in PATH", name);
}

/* A fixed-size memfd: writes past SV_PROC_STDERR_MAX fail instead of growing
 * it, and unlike a pipe it never fills up and blocks the child. */
static int stderr_buffer(sv_error **err)
{
    _cleanup_close_ int fd = memfd_create("sandvm-stderr", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return sv_error_errno(err, errno, "creating the stderr buffer");
    if (ftruncate(fd, SV_PROC_STDERR_MAX) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
        return sv_error_errno(err, errno, "sealing the stderr buffer");
    return TAKE_FD(fd);
}

/* ---- In the child, between fork() and execve(): async-signal-safe calls only. */

static _Noreturn void child_fail(int errpipe, int e)
{
    if (errpipe >= 0) {
        ssize_t n;
        do
            n = write(errpipe, &e, sizeof(e));
        while (n < 0 && errno == EINTR);
    }
    _exit(127);
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Marks every fd >= lo close-on-exec, so only 0..lo-1 survive execve(). */
static void cloexec_from(int lo)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    int d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        char buf[4096] __attribute__((aligned(8)));
        long n;
        while ((n = syscall(SYS_getdents64, d, buf, sizeof(buf))) > 0) {
            for (long off = 0; off < n;) {
                struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + off);
                off += e->d_reclen;
                int fd = 0;
                const char *c = e->d_name;
                if (*c < '0' || *c > '9')
                    continue;
                for (; *c >= '0' && *c <= '9'; c++)
                    fd = fd * 10 + (*c - '0');
                if (fd >= lo && fd != d)
                    fcntl(fd, F_SETFD, FD_CLOEXEC);
            }
        }
        close(d);
        return;
    }
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (int fd = lo; fd < max; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Writes the NUL-terminated `text` to the file `path` in one write
 * (async-signal-safe): the id maps of a new user namespace. 0 or an errno. */
static int write_proc(const char *path, const char *text)
{
    size_t n = strlen(text);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    ssize_t w;
    do
        w = write(fd, text, n);
    while (w < 0 && errno == EINTR);
    int e = w == (ssize_t)n ? 0 : w < 0 ? errno : EIO;
    close(fd);
    return e;
}

/* "0 ID 1\n" into buf (at least 32 bytes), async-signal-safe. */
static const char *one_id_map(char *buf, unsigned id)
{
    char digits[16];
    int nd = 0, n = 0;
    do
        digits[nd++] = (char)('0' + id % 10);
    while ((id /= 10) && nd < 15);
    buf[n++] = '0';
    buf[n++] = ' ';
    while (nd)
        buf[n++] = digits[--nd];
    memcpy(buf + n, " 1\n", 4);
    return buf;
}

/* Applies `cf` (see sv_confine) to the calling process, async-signal-safe.
 * 0 or an errno. */
static int confine_self(const sv_confine *cf)
{
    if (cf->drop_caps) {
        /* the bounding set first: emptying it needs CAP_SETPCAP, gone after setuid */
        for (int cap = 0; cap < 64; cap++)
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                if (errno == EINVAL)
                    break; /* past the kernel's last capability */
                return errno;
            }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
            return errno;
    }
    if (cf->set_ids) {
        /* raw syscalls: in a forked child the libc wrappers' all-threads
         * broadcast has nothing to do, and only this thread exists */
        if (syscall(SYS_setgroups, 0, NULL) < 0 ||
            syscall(SYS_setresgid, cf->gid, cf->gid, cf->gid) < 0 ||
            syscall(SYS_setresuid, cf->uid, cf->uid, cf->uid) < 0)
            return errno;
        if (cf->userns) {
            int e;
            /* the id change made us non-dumpable, which gives our /proc
             * files to root: our own id maps could not be written */
            if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || unshare(CLONE_NEWUSER) < 0)
                return errno;
            char map[32];
            if ((e = write_proc("/proc/self/setgroups", "deny")) ||
                (e = write_proc("/proc/self/uid_map", one_id_map(map, (unsigned)cf->uid))) ||
                (e = write_proc("/proc/self/gid_map", one_id_map(map, (unsigned)cf->gid))))
                return e;
        }
    }
    if (cf->drop_caps && !cf->userns) {
        struct {
            uint32_t version;
            int pid;
        } hdr = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
        struct {
            uint32_t effective, permitted, inheritable;
        } data[2] = {{0, 0, 0}, {0, 0, 0}};
        if (syscall(SYS_capset, &hdr, data) < 0)
            return errno;
    }
    if (cf->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return errno;
    return 0;
}

/* src[i] becomes fd i in the child (src[0..2] are stdin/stdout/stderr).
 * parent > 0: a supervised child (own process group, killed with the
 * spawning thread); parent 0: a daemon (own session, "/" and umask 077),
 * confined by `cf` (may be NULL) just before exec. */
static _Noreturn void child_exec(const char *path, char *const *argv, int *src, int nsrc,
                                 int errpipe, pid_t parent, const sv_confine *cf)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL); /* fails harmlessly for SIGKILL, SIGSTOP, libc's own */

    if (parent > 0) {
        if (setpgid(0, 0) < 0)
            child_fail(errpipe, errno);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
            child_fail(errpipe, errno);
        if (getppid() != parent) /* the parent died before PDEATHSIG was armed */
            _exit(127);
    } else {
        if (setsid() < 0 || chdir("/") < 0)
            child_fail(errpipe, errno);
        umask(077);
    }

    /* Move every fd that sits inside the target range 0..nsrc-1 above it first,
     * so that placing one fd never overwrites another one still to be placed. */
    if (errpipe < nsrc) {
        errpipe = fcntl(errpipe, F_DUPFD_CLOEXEC, nsrc);
        if (errpipe < 0)
            _exit(127);
    }
    for (int i = 0; i < nsrc; i++) {
        if (src[i] < nsrc) {
            src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, nsrc);
            if (src[i] < 0)
                child_fail(errpipe, errno);
        }
    }
    /* dup2() clears close-on-exec on the new fd: exactly the passed ones */
    for (int i = 0; i < nsrc; i++)
        if (dup2(src[i], i) < 0)
            child_fail(errpipe, errno);
    cloexec_from(nsrc);
    if (cf) {
        int e = confine_self(cf);
        if (e)
            child_fail(errpipe, e);
    }

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(path, argv, environ);
    child_fail(errpipe, errno);
}

/* ---- Parent side. */

int sv_proc_spawn(char *const *argv, const sv_spawn_opts *opts, sv_proc **out, sv_error **err)
{
    if (!argv || !argv[0])
        return sv_error_set(err, EINVAL, "empty command");
    const char *program = opts && opts->program ? opts->program : argv[0];
    if (!program[0])
        return sv_error_set(err, EINVAL, "empty program name");
    size_t nfds = opts ? opts->nfds : 0;
    if (nfds > 4096)
        return sv_error_set(err, EINVAL, "too many fds to pass (%zu)", nfds);
    for (size_t i = 0; i < nfds; i++)
        if (opts->fds[i] < 0 || fcntl(opts->fds[i], F_GETFD) < 0)
            return sv_error_set(err, EBADF, "fd %d to pass to %s is not open", opts->fds[i],
                                program);
    _cleanup_free_ char *path = NULL;
    int r = resolve_binary(program, &path, err);
    if (r < 0)
        return r;
    _cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return sv_error_errno(err, errno, "opening /dev/null");
    _cleanup_close_ int errfd = stderr_buffer(err);
    if (errfd < 0)
        return errfd;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return sv_error_errno(err, errno, "creating a pipe");
    _cleanup_close_ int pipe_r = pipefd[0];
    _cleanup_close_ int pipe_w = pipefd[1];

    int nsrc = 3 + (int)nfds;
    _cleanup_free_ int *src = malloc(nsrc * sizeof(*src));
    _cleanup_free_ sv_proc *p = calloc(1, sizeof(*p));
    if (!src || !p)
        return sv_error_set(err, ENOMEM, "out of memory");
    src[0] = null;
    src[1] = null;
    src[2] = errfd;
    for (size_t i = 0; i < nfds; i++)
        src[3 + i] = opts->fds[i];

    /* Signals stay blocked across fork() so that no handler of the caller runs
     * in the child before the child has reset the dispositions. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(path, argv, src, nsrc, pipe_w, parent, NULL);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return sv_error_errno(err, fork_errno, "starting %s: fork", program);

    close(TAKE_FD(pipe_w));
    setpgid(pid, pid); /* also from this side, so the group exists before we return */
    int child_errno = 0;
    ssize_t n;
    do
        n = read(pipe_r, &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(child_errno)) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return sv_error_errno(err, child_errno, "executing %s", path);
    }

    p->pid = pid;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by definition */
    p->errfd = TAKE_FD(errfd);
    *out = TAKE_PTR(p);
    return 0;
}

int sv_proc_wait(sv_proc *p, int64_t deadline, int *status, sv_error **err)
{
    while (!p->reaped) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->reaped = true;
            p->status = st;
            break;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            /* reaped by someone else (SIGCHLD ignored): never signal that pid again */
            int e = errno;
            p->reaped = true;
            p->status = W_EXITCODE(255, 0);
            return sv_error_errno(err, e, "waiting for process %d", (int)p->pid);
        }
        int left = sv_remaining_ms(deadline);
        if (left == 0)
            return sv_error_set(err, ETIMEDOUT, "process %d is still running", (int)p->pid);
        if (p->pidfd >= 0) {
            struct pollfd pf = {.fd = p->pidfd, .events = POLLIN};
            int pr = sv_poll_deadline(&pf, 1, deadline, err);
            if (pr < 0)
                return pr;
        } else {
            struct timespec ts = {0, 10 * 1000000L};
            if (left > 0 && left < 10)
                ts.tv_nsec = left * 1000000L;
            nanosleep(&ts, NULL);
        }
    }
    if (status)
        *status = p->status;
    return 0;
}

void sv_proc_kill(sv_proc *p)
{
    if (!p || p->reaped)
        return;
    if (p->pidfd < 0 || syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0) < 0)
        kill(p->pid, SIGKILL);
    /* the rest of its group: the group id cannot be reused while its leader is unreaped */
    kill(-p->pid, SIGKILL);
    int st;
    pid_t r;
    do
        r = waitpid(p->pid, &st, 0);
    while (r < 0 && errno == EINTR);
    p->reaped = true;
    p->status = r == p->pid ? st : W_EXITCODE(255, 0);
}

const char *sv_proc_stderr(sv_proc *p)
{
    free(p->err_text);
    p->err_text = NULL;
    /* the child advances the offset of the file description we share with it */
    off_t end = lseek(p->errfd, 0, SEEK_CUR);
    if (end < 0)
        end = 0;
    if (end > SV_PROC_STDERR_MAX)
        end = SV_PROC_STDERR_MAX;
    char *s = malloc((size_t)end + 1);
    if (!s)
        return "";
    ssize_t n = end > 0 ? pread(p->errfd, s, (size_t)end, 0) : 0;
    if (n < 0)
        n = 0;
    while (n > 0 && strchr(" \t\r\n", s[n - 1]))
        n--;
    s[n] = '\0';
    p->err_text = s;
    return s;
}

char *sv_wait_status_string(int status)
{
    char *s = NULL;
    int r;
    if (WIFEXITED(status)) {
        r = asprintf(&s, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *name = sigabbrev_np(WTERMSIG(status));
        r = asprintf(&s, "killed by signal %d (SIG%s)", WTERMSIG(status), name ? name : "?");
    } else {
        r = asprintf(&s, "stopped with wait status 0x%x", (unsigned)status);
    }
    return r < 0 ? NULL : s;
}

void sv_proc_free(sv_proc *p)
{
    if (!p)
        return;
    sv_proc_kill(p);
    if (p->pidfd >= 0)
        close(p->pidfd);
    if (p->errfd >= 0)
        close(p->errfd);
    free(p->err_text);
    free(p);
}

/* ---- Detached processes. */

/* What the intermediate process reports: the daemon's pid and start time
 * (with its pidfd as SCM_RIGHTS), or why there is none. */
typedef struct detach_msg {
    int32_t pid;
    int32_t err;
    int64_t start_time;
} detach_msg;

/* The start time (field 22) of /proc/PID/stat, async-signal-safe; -1 when
 * it cannot be read. */
static int64_t start_time_of(pid_t pid)
{
    char path[32] = "/proc/";
    char digits[16];
    int nd = 0;
    for (unsigned v = (unsigned)pid; v || !nd; v /= 10)
        digits[nd++] = (char)('0' + v % 10);
    size_t pl = 6;
    while (nd)
        path[pl++] = digits[--nd];
    memcpy(path + pl, "/stat", 6);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[1024];
    ssize_t n;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* the command name (field 2) may hold spaces and ')': skip to the last ')' */
    char *p = NULL;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == ')')
            p = buf + i;
    if (!p)
        return -1;
    p += 2; /* field 3 */
    for (int field = 3; field < 22; field++) {
        while (*p && *p != ' ')
            p++;
        if (!*p)
            return -1;
        p++;
    }
    int64_t v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return v;
}

/* In the intermediate process (async-signal-safe calls only): starts the
 * daemon, reports it on `sock` and exits, handing the daemon to init. */
/* Writes "PID\n" to `fd` (async-signal-safe). */
static void write_pid(int fd, pid_t pid)
{
    char buf[16];
    int n = (int)sizeof(buf);
    buf[--n] = '\n';
    unsigned v = (unsigned)pid;
    do
        buf[--n] = (char)('0' + v % 10);
    while ((v /= 10) && n > 0);
    ssize_t w;
    do
        w = write(fd, buf + n, sizeof(buf) - (size_t)n);
    while (w < 0 && errno == EINTR);
}

static _Noreturn void detach_middle(const char *path, char *const *argv, int *src, int nsrc,
                                    int errpipe, int sock, int pid_fd, const sv_confine *cf)
{
    detach_msg m = {0};
    int pidfd = -1;
    pid_t pid = fork();
    if (pid == 0)
        child_exec(path, argv, src, nsrc, errpipe, 0, cf);
    if (pid < 0) {
        m.err = errno;
    } else {
        if (pid_fd >= 0)
            write_pid(pid_fd, pid);
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        m.pid = pid;
        m.start_time = start_time_of(pid);
        if (pidfd < 0 || m.start_time < 0) {
            m.err = pidfd < 0 ? errno : EPROTO;
            kill(pid, SIGKILL); /* unsupervisable: never leave it running */
        }
    }
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (!m.err) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    _exit(n == (ssize_t)sizeof(m) ? 0 : 1);
}

int sv_proc_spawn_detached(char *const *argv, const sv_detached_opts *opts, sv_detached *out,
                           sv_error **err)
{
    if (!argv || !argv[0])
        return sv_error_set(err, EINVAL, "empty command");
    const char *program = opts && opts->program ? opts->program : argv[0];
    if (!program[0])
        return sv_error_set(err, EINVAL, "empty program name");
    size_t nfds = opts ? opts->nfds : 0;
    if (nfds > 4096)
        return sv_error_set(err, EINVAL, "too many fds to pass (%zu)", nfds);
    for (size_t i = 0; i < nfds; i++)
        if (opts->fds[i] < 0 || fcntl(opts->fds[i], F_GETFD) < 0)
            return sv_error_set(err, EBADF, "fd %d to pass to %s is not open", opts->fds[i],
                                program);
    int stderr_fd = opts ? opts->stderr_fd : -1;
    if (stderr_fd >= 0 && fcntl(stderr_fd, F_GETFD) < 0)
        return sv_error_set(err, EBADF, "stderr fd %d for %s is not open", stderr_fd, program);
    if (opts && opts->pid_fd >= 0 && fcntl(opts->pid_fd, F_GETFD) < 0)
        return sv_error_set(err, EBADF, "pid fd %d for %s is not open", opts->pid_fd, program);
    const sv_confine *cf = opts ? opts->confine : NULL;
    if (cf && cf->userns && !cf->set_ids)
        return sv_error_set(err, EINVAL, "starting %s: a user namespace needs set_ids", program);
    if (cf && cf->set_ids && (cf->uid == (uid_t)-1 || cf->gid == (gid_t)-1))
        return sv_error_set(err, EINVAL, "starting %s: invalid uid/gid -1", program);
    _cleanup_free_ char *path = NULL;
    int r = resolve_binary(program, &path, err);
    if (r < 0)
        return r;
    _cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return sv_error_errno(err, errno, "opening /dev/null");
    int pipefd[2], sp[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return sv_error_errno(err, errno, "creating a pipe");
    _cleanup_close_ int pipe_r = pipefd[0];
    _cleanup_close_ int pipe_w = pipefd[1];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return sv_error_errno(err, errno, "creating a socket pair");
    _cleanup_close_ int sock_r = sp[0];
    _cleanup_close_ int sock_w = sp[1];

    int nsrc = 3 + (int)nfds;
    _cleanup_free_ int *src = malloc(nsrc * sizeof(*src));
    if (!src)
        return sv_error_set(err, ENOMEM, "out of memory");
    src[0] = null;
    src[1] = null;
    src[2] = stderr_fd >= 0 ? stderr_fd : null;
    for (size_t i = 0; i < nfds; i++)
        src[3 + i] = opts->fds[i];

    /* Signals stay blocked across both forks: the intermediate process lives
     * with them blocked (a ^C meant for the caller cannot stop it halfway),
     * the daemon resets them before exec. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t mid = fork();
    if (mid == 0) {
        close(sock_r);
        detach_middle(path, argv, src, nsrc, pipe_w, sock_w, opts ? opts->pid_fd : -1,
                      opts ? opts->confine : NULL);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (mid < 0)
        return sv_error_errno(err, fork_errno, "starting %s: fork", program);
    close(TAKE_FD(pipe_w));
    close(TAKE_FD(sock_w));

    detach_msg m = {0};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    do
        n = recvmsg(sock_r, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    int recv_errno = errno;
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
        ;
    _cleanup_close_ int pidfd = -1;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)) && pidfd < 0)
            memcpy(&pidfd, CMSG_DATA(c), sizeof(int));
    if (n != (ssize_t)sizeof(m))
        return sv_error_errno(err, n < 0 ? recv_errno : EPROTO, "starting %s", program);
    if (m.err == ENOSYS)
        return sv_error_set(err, ENOSYS, "starting %s: this kernel has no pidfd_open (Linux 5.3 "
                                         "or later is needed to supervise a detached process)",
                            program);
    if (m.err || pidfd < 0)
        return sv_error_errno(err, m.err ? m.err : EPROTO, "starting %s", program);

    /* The daemon's copy of the pipe closes when it execs: EOF. Before that,
     * a failed exec writes its errno. */
    int child_errno = 0;
    do
        n = read(pipe_r, &child_errno, sizeof(child_errno));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(child_errno))
        return sv_error_errno(err, child_errno, "executing %s", path);
    out->pid = m.pid;
    out->start_time = m.start_time;
    out->pidfd = TAKE_FD(pidfd);
    return 0;
}

int sv_proc_access_as(uid_t uid, gid_t gid, const char *const *paths, const int *modes, size_t n,
                      size_t *bad, sv_error **err)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return sv_error_errno(err, errno, "creating a pipe");
    _cleanup_close_ int pipe_r = pipefd[0];
    _cleanup_close_ int pipe_w = pipefd[1];
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        int32_t msg[2] = {-1, 0};
        if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
            syscall(SYS_setresuid, uid, uid, uid) < 0) {
            msg[1] = errno;
        } else {
            for (size_t i = 0; i < n; i++)
                if (access(paths[i], modes[i]) < 0) {
                    msg[0] = (int32_t)i;
                    msg[1] = errno;
                    break;
                }
        }
        ssize_t w;
        do
            w = write(pipe_w, msg, sizeof(msg));
        while (w < 0 && errno == EINTR);
        _exit(0);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return sv_error_errno(err, fork_errno, "fork");
    close(TAKE_FD(pipe_w));
    int32_t msg[2] = {-1, EIO};
    ssize_t got;
    do
        got = read(pipe_r, msg, sizeof(msg));
    while (got < 0 && errno == EINTR);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof(msg))
        return sv_error_set(err, EIO, "checking access as uid %u: the checker died",
                            (unsigned)uid);
    if (msg[1] == 0)
        return 0;
    if (msg[0] < 0)
        return sv_error_errno(err, msg[1], "switching to uid %u gid %u", (unsigned)uid,
                              (unsigned)gid);
    if (bad)
        *bad = (size_t)msg[0];
    return sv_error_errno(err, msg[1], "%s", paths[msg[0]]);
}

void sv_pidfd_kill(int pidfd)
{
    if (pidfd >= 0)
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

int sv_proc_which(const char *name, char **path_out, sv_error **err)
{
    if (!name || !name[0])
        return sv_error_set(err, EINVAL, "empty program name");
    _cleanup_free_ char *path = NULL;
    int r = resolve_binary(name, &path, err);
    if (r < 0)
        return r;
    struct stat st;
    if (stat(path, &st) < 0)
        return sv_error_errno(err, errno, "%s", path);
    if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
        return sv_error_set(err, EACCES, "%s: not an executable file", path);
    *path_out = TAKE_PTR(path);
    return 0;
}
