/*
 * The C side of tests/vm/reliability_test.sh: processes and clients the
 * shell cannot be, and the lifecycle loop through libsandvm in one process.
 *
 *   victim FILE [ARG...]       a process that records every signal it gets
 *                              (one "N" line per signal in FILE) and lives
 *                              until SIGKILL; ARGs only shape its cmdline
 *   plant STATE.json KEY PID START [STATE]
 *                              sets record KEY ("qemu" or "virtiofsd") of a
 *                              state.json to PID/START and its state to
 *                              STATE (default running), atomically
 *   fakeqemu ARGS...           (or run as a link named fake-qemu)
 *                              a QEMU stand-in (config "path"): writes its
 *                              -pidfile, serves QMP on the -mon chardev's fd;
 *                              $SV_FAKE_QEMU_CTL names a file whose content
 *                              picks the behaviour for each new connection:
 *                              "hang" accepts and never greets, "mute"
 *                              greets and never answers, else it answers
 *                              qmp_capabilities, query-status, stop, cont,
 *                              quit and system_powerdown like QEMU
 *   holdqmp SOCKET SECONDS     connects to a QMP socket, completes the
 *                              handshake and holds the monitor
 *   rawqmp SOCKET JSON         one raw command behind sandvm's back; prints
 *                              the reply
 *   statewatch ROOT STOPFILE   reads every ROOT/X/state.json without locks
 *                              as fast as it can until STOPFILE exists;
 *                              prints "reads N corrupt M"
 *   lifecycles ROOT CONFIG N [DISK]
 *                              N x (create, start --paused, query-status
 *                              over QMP, status, hot-plug DISK as a block
 *                              device and unplug it, stop, delete) through
 *                              libsandvm in this one process, checking after
 *                              each that its fds, children and the root are
 *                              as before
 *   fdcheck PID EXPECT...      checks /proc/PID/fd: fds 0..k-1 must match
 *                              EXPECT[i] ("null", "socket", "file:NAME"
 *                              (basename), "any"); no other fd may be one
 *                              of the files named by $SV_FORBIDDEN_FDS
 *                              (':'-separated paths) or a pipe/file the
 *                              test left open as a canary
 *
 * Exit status 0 on success; failures print one line "helper: ..." on
 * stderr and exit 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "sandvm/vm.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/sock.h"

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("helper: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- victim ---------------------------------------------------------------------- */

static int victim_log = -1;

static void on_any_signal(int sig)
{
    char buf[8];
    int n = snprintf(buf, sizeof(buf), "%d\n", sig);
    (void)!write(victim_log, buf, (size_t)n);
}

static int cmd_victim(int argc, char **argv)
{
    if (argc < 1)
        die("victim FILE [ARG...]");
    victim_log = open(argv[0], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (victim_log < 0)
        die("victim: %s: %s", argv[0], strerror(errno));
    struct sigaction sa = {.sa_handler = on_any_signal};
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL);
    printf("%d\n", (int)getpid());
    fflush(stdout);
    for (;;)
        pause();
}

/* ---- plant --------------------------------------------------------------------------- */

static int cmd_plant(int argc, char **argv)
{
    if (argc < 4)
        die("plant STATE.json KEY PID START [STATE]");
    json_object *o = json_object_from_file(argv[0]);
    if (!o)
        die("plant: %s: cannot parse", argv[0]);
    json_object *rec = json_object_new_object();
    json_object_object_add(rec, "pid", json_object_new_int64(strtoll(argv[2], NULL, 10)));
    json_object_object_add(rec, "start_time", json_object_new_int64(strtoll(argv[3], NULL, 10)));
    json_object_object_add(o, argv[1], rec);
    json_object_object_add(o, "state", json_object_new_string(argc > 4 ? argv[4] : "running"));
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.plant", argv[0]);
    if (json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PRETTY) < 0 || rename(tmp, argv[0]) < 0)
        die("plant: writing %s: %s", argv[0], strerror(errno));
    json_object_put(o);
    return 0;
}

/* ---- fake QEMU ------------------------------------------------------------------------ */

static void write_line(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static const char *fake_mode(void)
{
    static char buf[32];
    const char *ctl = getenv("SV_FAKE_QEMU_CTL");
    buf[0] = '\0';
    FILE *f = ctl ? fopen(ctl, "re") : NULL;
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* Serves one monitor connection; returns true when QEMU should exit. */
static bool fake_serve(int c, bool *running)
{
    const char *mode = fake_mode();
    char buf[65536];
    size_t len = 0;
    if (strcmp(mode, "hang") != 0)
        write_line(c, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": "
                      "7}, \"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n");
    bool mute = strcmp(mode, "hang") == 0 || strcmp(mode, "mute") == 0;
    for (;;) {
        ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = '\0';
            json_object *cmd = mute ? NULL : json_tokener_parse(buf);
            memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
            len = strlen(buf);
            if (!cmd)
                continue;
            json_object *ex = NULL, *id = NULL;
            json_object_object_get_ex(cmd, "execute", &ex);
            json_object_object_get_ex(cmd, "id", &id);
            const char *name = ex ? json_object_get_string(ex) : "";
            const char *ids = id ? json_object_to_json_string(id) : "null";
            char reply[512];
            bool quit = false;
            if (!strcmp(name, "query-status")) {
                snprintf(reply, sizeof(reply),
                         "{\"return\": {\"status\": \"%s\", \"singlestep\": false, \"running\": "
                         "%s}, \"id\": %s}\r\n",
                         *running ? "running" : "paused", *running ? "true" : "false", ids);
            } else if (!strcmp(name, "qmp_capabilities") || !strcmp(name, "stop") ||
                       !strcmp(name, "cont") || !strcmp(name, "quit") ||
                       !strcmp(name, "system_powerdown")) {
                if (!strcmp(name, "stop"))
                    *running = false;
                if (!strcmp(name, "cont"))
                    *running = true;
                quit = !strcmp(name, "quit") || !strcmp(name, "system_powerdown");
                snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %s}\r\n", ids);
            } else {
                snprintf(reply, sizeof(reply),
                         "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"fake\"}, "
                         "\"id\": %s}\r\n",
                         ids);
            }
            json_object_put(cmd);
            write_line(c, reply);
            if (quit)
                return true;
        }
        if (len >= sizeof(buf) - 1)
            len = 0;
    }
}

static int cmd_fakeqemu(int argc, char **argv)
{
    const char *mon = NULL, *pidfile = NULL;
    bool running = true;
    for (int i = 0; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "-mon") && !strncmp(argv[i + 1], "chardev=", 8))
            mon = argv[i + 1] + 8;
        if (!strcmp(argv[i], "-pidfile"))
            pidfile = argv[i + 1];
    }
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-S"))
            running = false;
    int qmp_fd = -1;
    size_t ml = mon ? strcspn(mon, ",") : 0;
    for (int i = 0; mon && i + 1 < argc; i++) {
        if (strcmp(argv[i], "-chardev") != 0)
            continue;
        const char *v = argv[i + 1], *id = strstr(v, "id="), *fd = strstr(v, "fd=");
        if (id && fd && !strncmp(id + 3, mon, ml) && (id[3 + ml] == ',' || !id[3 + ml]))
            qmp_fd = atoi(fd + 3);
    }
    if (qmp_fd < 0 || !pidfile)
        die("fakeqemu: no -mon chardev with an fd, or no -pidfile");
    FILE *p = fopen(pidfile, "we");
    if (!p)
        die("fakeqemu: %s: %s", pidfile, strerror(errno));
    fprintf(p, "%d\n", (int)getpid());
    fclose(p);
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int c = accept(qmp_fd, NULL, NULL);
        if (c < 0 && errno == EINTR)
            continue;
        if (c < 0)
            die("fakeqemu: accept: %s", strerror(errno));
        bool quit = fake_serve(c, &running);
        close(c);
        if (quit) {
            unlink(pidfile);
            return 0;
        }
    }
}

/* ---- QMP clients --------------------------------------------------------------------------- */

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        die("%s: path too long", path);
    strcpy(sa.sun_path, path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connecting to %s: %s", path, strerror(errno));
    return fd;
}

/* Reads one line (with a 10 s bound) into buf. */
static void read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            die("no answer within 10 s");
        ssize_t n = read(fd, buf + len, 1);
        if (n <= 0)
            die("connection closed");
        if (buf[len] == '\n') {
            buf[len] = '\0';
            return;
        }
        if (++len >= cap - 1)
            die("line too long");
    }
}

static int qmp_client(const char *path)
{
    int fd = connect_unix(path);
    char line[8192];
    read_line(fd, line, sizeof(line));
    if (!strstr(line, "\"QMP\""))
        die("not a greeting: %s", line);
    write_line(fd, "{\"execute\": \"qmp_capabilities\"}\n");
    read_line(fd, line, sizeof(line));
    return fd;
}

static int cmd_holdqmp(int argc, char **argv)
{
    if (argc < 2)
        die("holdqmp SOCKET SECONDS");
    int fd = qmp_client(argv[0]);
    printf("held\n");
    fflush(stdout);
    sleep((unsigned)atoi(argv[1]));
    close(fd);
    return 0;
}

static int cmd_rawqmp(int argc, char **argv)
{
    if (argc < 2)
        die("rawqmp SOCKET JSON");
    int fd = qmp_client(argv[0]);
    write_line(fd, argv[1]);
    write_line(fd, "\n");
    char line[65536];
    do
        read_line(fd, line, sizeof(line));
    while (strstr(line, "\"event\""));
    printf("%s\n", line);
    close(fd);
    return strstr(line, "\"return\"") ? 0 : 1;
}

/* ---- statewatch ---------------------------------------------------------------------------- */

static int cmd_statewatch(int argc, char **argv)
{
    if (argc < 2)
        die("statewatch ROOT STOPFILE");
    double end = now_s() + 3600;
    long reads = 0, corrupt = 0;
    while (now_s() < end && access(argv[1], F_OK) < 0) {
        DIR *d = opendir(argv[0]);
        if (!d)
            die("%s: %s", argv[0], strerror(errno));
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", argv[0], e->d_name);
            _cleanup_close_ int vfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            _cleanup_free_ char *text = NULL;
            size_t len = 0;
            if (vfd < 0 || sv_read_file_at(vfd, SV_STATE_FILE, SV_STATE_MAX_BYTES, &text, &len,
                                           NULL) < 0)
                continue; /* a VM being removed */
            sv_vm_state *st = NULL;
            sv_error *err = NULL;
            reads++;
            if (sv_vm_state_parse(text, len, e->d_name, &st, &err) < 0) {
                corrupt++;
                fprintf(stderr, "helper: corrupt %s: %s\n", path, sv_error_message(err));
            }
            sv_error_free(err);
            sv_vm_state_free(st);
        }
        closedir(d);
    }
    printf("reads %ld corrupt %ld\n", reads, corrupt);
    return corrupt ? 1 : 0;
}

/* ---- lifecycles in one process ------------------------------------------------------------- */

/* "fd -> target" lines of /proc/self/fd, sorted (the directory's own fd excluded). */
static char *fd_listing(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        die("/proc/self/fd: %s", strerror(errno));
    char *lines[1024];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 1024) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        char path[PATH_MAX], target[PATH_MAX] = "";
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        target[len > 0 ? len : 0] = '\0';
        if (asprintf(&lines[n], "%s %s", e->d_name, target) < 0)
            die("oom");
        n++;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *t = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(lines[i]) + 1;
    char *s = calloc(1, total);
    for (size_t i = 0; i < n; i++) {
        strcat(s, lines[i]);
        strcat(s, "\n");
        free(lines[i]);
    }
    return s;
}

/* Children of this process (any state), and how many of them are zombies. */
static void children(int *all, int *zombies)
{
    *all = *zombies = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t self = getpid();
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[PATH_MAX], buf[1024];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        char state = 0;
        int ppid = 0;
        if (!p || sscanf(p + 2, "%c %d", &state, &ppid) != 2 || ppid != self)
            continue;
        (*all)++;
        if (state == 'Z')
            (*zombies)++;
    }
    if (d)
        closedir(d);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static int cmd_lifecycles(int argc, char **argv)
{
    if (argc < 3)
        die("lifecycles ROOT CONFIG N");
    const char *root = argv[0];
    _cleanup_free_ char *config = NULL;
    size_t config_len = 0;
    FILE *cf = fopen(argv[1], "re");
    config = cf ? calloc(1, 1 << 20) : NULL;
    config_len = config ? fread(config, 1, (1 << 20) - 1, cf) : 0;
    if (cf)
        fclose(cf);
    if (!config_len)
        die("%s: cannot read", argv[1]);
    long n = atol(argv[2]);
    const char *disk = argc > 3 ? argv[3] : NULL;
    /* one warm-up lifecycle first: the library's lazily opened things (none
     * expected, but this is what the baseline must not hide) are then open */
    char *baseline = NULL;
    int base_children = 0, zombies = 0;
    long bad_fds = 0, bad_children = 0, bad_root = 0, failures = 0;
    double t0 = now_s(), slowest = 0;
    for (long i = -1; i < n; i++) {
        double ti = now_s();
        char id[32];
        snprintf(id, sizeof(id), "hyg-%ld", i < 0 ? 0 : i);
        sv_vm_create_opts co = {.root = root, .config_json = config, .config_len = config_len};
        sv_vm_start_opts so = {.paused = true};
        sv_vm *vm = NULL;
        sv_error *err = NULL;
        char *reply = NULL;
        sv_vm_info *info = NULL;
        int r = sv_vm_create(id, &co, &vm, &err);
        if (r == 0)
            r = sv_vm_start(vm, &so, &err);
        if (r == 0)
            r = sv_vm_qmp(vm, "{\"execute\":\"query-status\"}", &reply, &err);
        if (r == 0 && (!reply || !strstr(reply, "\"running\":false")))
            r = sv_error_set(&err, EPROTO, "query-status said %s", reply ? reply : "nothing");
        if (r == 0)
            r = sv_vm_status(vm, &info, &err);
        if (r == 0 && info->state != SV_VM_PAUSED)
            r = sv_error_set(&err, EPROTO, "status says %s", sv_vm_run_state_name(info->state));
        if (r == 0 && disk) {
            sv_vm_device dev = {.kind = SV_VM_DEVICE_BLOCK, .path = disk};
            sv_vm_device_info *di = NULL;
            r = sv_vm_hotplug(vm, &dev, &di, &err);
            if (r == 0)
                r = sv_vm_unplug(vm, di->id, 10000, &err);
            sv_vm_device_info_free(di);
        }
        sv_vm_stop_opts stop = {.grace_ms = -1};
        if (r == 0)
            r = sv_vm_stop(vm, &stop, &err);
        if (r < 0) {
            failures++;
            fprintf(stderr, "helper: lifecycle %ld: %s\n", i, sv_error_message(err));
            if (vm)
                sv_vm_delete(vm, true, NULL);
        }
        sv_error_free(err);
        sv_vm_info_free(info);
        free(reply);
        sv_vm_close(vm);
        double dt = now_s() - ti;
        if (dt > slowest)
            slowest = dt;
        int kids = 0;
        children(&kids, &zombies);
        char *fds = fd_listing();
        if (i < 0) {
            baseline = fds;
            base_children = kids;
            continue;
        }
        if (strcmp(fds, baseline) != 0) {
            if (bad_fds++ < 3)
                fprintf(stderr, "helper: lifecycle %ld: fds differ from the baseline:\n%s---\n%s",
                        i, baseline, fds);
        }
        free(fds);
        if (kids != base_children || zombies) {
            if (bad_children++ < 3)
                fprintf(stderr, "helper: lifecycle %ld: %d children (%d zombies), baseline %d\n",
                        i, kids, zombies, base_children);
        }
        if (count_entries(root) != 0) {
            if (bad_root++ < 3)
                fprintf(stderr, "helper: lifecycle %ld: the root is not empty\n", i);
        }
    }
    double total = now_s() - t0;
    int nfd = 0;
    for (const char *p = baseline; p && *p; p++)
        nfd += *p == '\n';
    printf("lifecycles %ld failures %ld fd-deviations %ld child-deviations %ld root-leftovers %ld "
           "fds %d seconds %.1f per-lifecycle-ms %.0f slowest-ms %.0f\n",
           n, failures, bad_fds, bad_children, bad_root, nfd, total,
           n > 0 ? total * 1000.0 / (double)(n + 1) : 0.0, slowest * 1000.0);
    free(baseline);
    return failures || bad_fds || bad_children || bad_root ? 1 : 0;
}

/* ---- fdcheck ---------------------------------------------------------------------------- */

static int cmd_fdcheck(int argc, char **argv)
{
    if (argc < 1)
        die("fdcheck PID EXPECT...");
    const char *pid = argv[0];
    const char *forbidden = getenv("SV_FORBIDDEN_FDS");
    char dirpath[64];
    snprintf(dirpath, sizeof(dirpath), "/proc/%s/fd", pid);
    DIR *d = opendir(dirpath);
    if (!d)
        die("%s: %s", dirpath, strerror(errno));
    int bad = 0, count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        char path[PATH_MAX], target[PATH_MAX] = "";
        snprintf(path, sizeof(path), "%s/%s", dirpath, e->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        target[len > 0 ? len : 0] = '\0';
        count++;
        if (fd + 1 < argc) {
            const char *want = argv[fd + 1];
            const char *base = strrchr(target, '/');
            bool ok = !strcmp(want, "any") ||
                      (!strcmp(want, "null") && !strcmp(target, "/dev/null")) ||
                      (!strcmp(want, "socket") && !strncmp(target, "socket:", 7)) ||
                      (!strncmp(want, "file:", 5) && base && !strcmp(base + 1, want + 5));
            if (!ok) {
                printf("fd %d is %s, expected %s\n", fd, target, want);
                bad++;
            }
            continue;
        }
        if (!strncmp(target, "pipe:", 5)) {
            printf("fd %d is %s: a pipe nobody should have passed\n", fd, target);
            bad++;
        }
        for (const char *f = forbidden; f && *f;) {
            size_t fl = strcspn(f, ":");
            if (fl && strlen(target) == fl && !strncmp(target, f, fl)) {
                printf("fd %d is %s: forbidden\n", fd, target);
                bad++;
            }
            f += fl + (f[fl] == ':');
        }
    }
    closedir(d);
    printf("%d fds checked, %d unexpected\n", count, bad);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    /* linked or copied as "fake-qemu", it is the QEMU of a VM config's "path" */
    const char *self = strrchr(argv[0], '/');
    if (!strcmp(self ? self + 1 : argv[0], "fake-qemu"))
        return cmd_fakeqemu(argc - 1, argv + 1);
    if (argc < 2)
        die("usage: reliability_helper COMMAND ARGS...");
    const char *c = argv[1];
    argc -= 2;
    argv += 2;
    if (!strcmp(c, "victim"))
        return cmd_victim(argc, argv);
    if (!strcmp(c, "plant"))
        return cmd_plant(argc, argv);
    if (!strcmp(c, "fakeqemu"))
        return cmd_fakeqemu(argc, argv);
    if (!strcmp(c, "holdqmp"))
        return cmd_holdqmp(argc, argv);
    if (!strcmp(c, "rawqmp"))
        return cmd_rawqmp(argc, argv);
    if (!strcmp(c, "statewatch"))
        return cmd_statewatch(argc, argv);
    if (!strcmp(c, "lifecycles"))
        return cmd_lifecycles(argc, argv);
    if (!strcmp(c, "fdcheck"))
        return cmd_fdcheck(argc, argv);
    die("unknown command %s", c);
}
