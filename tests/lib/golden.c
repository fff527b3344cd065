/*
 * The golden test runner shared by the suites that turn a JSON case into a
 * QEMU command line (tests/golden, tests/golden-vm); see golden.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "golden.h"
#include "qemu/qemu_config.h"
#include "sandvm/sandvm.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/strbuf.h"

#define CHECK_WATCHDOG_SEC 120

typedef enum { R_PENDING, R_PASS, R_FAIL, R_SKIP } result;

typedef struct gcase {
    char *name;
    bool has_json, has_argv, has_err;
    char *json;
    size_t json_len;
    const char *skip_reason; /* listed in qemu-skip.txt */
    bool selected;           /* matches SV_GOLDEN_FILTER */
    bool is_err;             /* final kind: .err (else .argv) */
    sv_qemu_config *cfg;     /* kept for the QEMU check */
    bool needs_qemu;
    result res;
    char *why;
    bool qemu_ok;
    bool qemu_skipped;
} gcase;

typedef struct worker {
    pid_t pid;
    int fd;
    size_t idx;
    sv_strbuf out;
    time_t started;
} worker;

static bool regenerate;
static const sv_golden_ops *gops;

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r) {
        perror("strdup");
        exit(2);
    }
    return r;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        perror("vasprintf");
        exit(2);
    }
    return s;
}

/* One line for the report: newlines and control bytes shown escaped. */
static char *one_line(const char *s, size_t max)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, "");
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if (n == max) {
            sv_strbuf_append(&sb, "...");
            break;
        }
        if (*p == '\n')
            sv_strbuf_append(&sb, "\\n");
        else if (*p == '\t')
            sv_strbuf_append(&sb, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            sv_strbuf_appendf(&sb, "\\x%02x", *p);
        else
            sv_strbuf_append_c(&sb, (char)*p);
    }
    char *r = sv_strbuf_steal(&sb);
    if (!r)
        exit(2);
    return r;
}

static int read_file(const char *path, char **out, size_t *len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, "");
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            sv_strbuf_free(&sb);
            return -e;
        }
        if (n == 0)
            break;
        sv_strbuf_append_n(&sb, buf, (size_t)n);
    }
    *len = sb.len;
    *out = sv_strbuf_steal(&sb);
    return *out ? 0 : -ENOMEM;
}

/* Writes `data` to `path` atomically, unless it already holds exactly that. */
static int write_file(const char *path, const char *data)
{
    _cleanup_free_ char *old = NULL;
    size_t oldlen = 0;
    if (read_file(path, &old, &oldlen) == 0 && oldlen == strlen(data) &&
        memcmp(old, data, oldlen) == 0)
        return 0;
    _cleanup_free_ char *tmp = xasprintf("%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -errno;
    bool ok = fputs(data, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) < 0) {
        int e = errno ? errno : EIO;
        unlink(tmp);
        return -e;
    }
    return 1;
}

static bool has_suffix(const char *s, const char *suffix, size_t *stem)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    if (ls <= lx || strcmp(s + ls - lx, suffix) != 0)
        return false;
    *stem = ls - lx;
    return true;
}

static gcase *find_case(gcase *cases, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cases[i].name, name) == 0)
            return &cases[i];
    return NULL;
}

static int case_cmp(const void *a, const void *b)
{
    return strcmp(((const gcase *)a)->name, ((const gcase *)b)->name);
}

static void fail_case(gcase *c, char *why)
{
    if (c->res == R_FAIL) {
        free(why);
        return;
    }
    c->res = R_FAIL;
    free(c->why);
    c->why = why;
}

static bool binary_installed(const char *bin)
{
    if (strchr(bin, '/'))
        return access(bin, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    _cleanup_free_ char *copy = xstrdup(path);
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        _cleanup_free_ char *full = xasprintf("%s/%s", *dir ? dir : ".", bin);
        if (access(full, X_OK) == 0)
            return true;
    }
    return false;
}

/* "line N: expected <...>, got <...>" for the first differing line. */
static char *describe_diff(const char *want, const char *got)
{
    size_t line = 1;
    const char *w = want, *g = got;
    for (;;) {
        const char *we = strchr(w, '\n'), *ge = strchr(g, '\n');
        size_t wl = we ? (size_t)(we - w) : strlen(w);
        size_t gl = ge ? (size_t)(ge - g) : strlen(g);
        if (wl != gl || memcmp(w, g, wl) != 0 || !we != !ge) {
            _cleanup_free_ char *ws = strndup(w, wl), *gs = strndup(g, gl);
            _cleanup_free_ char *w1 = one_line(ws ? ws : "", 300),
                                *g1 = one_line(gs ? gs : "", 300);
            if (!*w && !we)
                return xasprintf("argv differs at line %zu: expected end of text, got «%s»", line,
                                 g1);
            if (!*g && !ge)
                return xasprintf("argv differs at line %zu: expected «%s», got end of text", line,
                                 w1);
            return xasprintf("argv differs at line %zu: expected «%s», got «%s»", line, w1, g1);
        }
        if (!we)
            return xstrdup("argv differs");
        w = we + 1;
        g = ge + 1;
        line++;
    }
}

static void print_case(const gcase *c)
{
    switch (c->res) {
    case R_PASS:
        printf("PASS %s\n", c->name);
        break;
    case R_FAIL:
        printf("FAIL %s: %s\n", c->name, c->why ? c->why : "?");
        break;
    case R_SKIP:
        printf("SKIP %s: %s\n", c->name, c->why ? c->why : "?");
        fprintf(stderr, "WARNING: golden case %s was NOT started by QEMU: %s\n", c->name,
                c->why ? c->why : "?");
        break;
    case R_PENDING:
        break;
    }
    fflush(stdout);
}

/* Parses, builds and compares (or rewrites) the expectation of one case. */
static void run_text(gcase *c, const char *dir)
{
    _cleanup_free_ char *argv_path = xasprintf("%s/%s.argv", dir, c->name);
    _cleanup_free_ char *err_path = xasprintf("%s/%s.err", dir, c->name);
    _cleanup_error_ sv_error *err = NULL;
    _cleanup_free_ char *text = NULL;
    sv_qemu_config *cfg = NULL;
    int r = gops->build(c->json, c->json_len, &text, &cfg, &err);
    bool ok = r == 0;
    const char *msg = ok ? NULL : sv_error_message(err);

    if (!c->has_argv && !c->has_err) {
        if (!regenerate) {
            fail_case(c, xstrdup("no .argv or .err file (run with SV_TEST_REGENERATE=1, then "
                                 "review the new file)"));
            sv_qemu_config_free(cfg);
            return;
        }
        c->has_argv = ok;
        c->has_err = !ok;
    }
    c->is_err = c->has_err;

    if (c->has_err) {
        sv_qemu_config_free(cfg);
        if (ok) {
            fail_case(c, xstrdup("expected an error (.err), but the config was accepted"));
            return;
        }
        if (regenerate) {
            _cleanup_free_ char *content = xasprintf("%s\n", msg);
            int wr = write_file(err_path, content);
            if (wr < 0)
                fail_case(c, xasprintf("writing %s: %s", err_path, strerror(-wr)));
            else
                c->res = R_PASS;
            return;
        }
        _cleanup_free_ char *want = NULL;
        size_t wlen = 0;
        int rr = read_file(err_path, &want, &wlen);
        if (rr < 0) {
            fail_case(c, xasprintf("reading %s: %s", err_path, strerror(-rr)));
            return;
        }
        if (wlen > 0 && want[wlen - 1] == '\n')
            want[--wlen] = '\0';
        if (strcmp(want, msg) != 0) {
            _cleanup_free_ char *w1 = one_line(want, 500), *g1 = one_line(msg, 500);
            fail_case(c, xasprintf("error differs: expected «%s», got «%s»", w1, g1));
            return;
        }
        c->res = R_PASS;
        return;
    }

    /* an .argv case */
    if (!ok) {
        _cleanup_free_ char *g1 = one_line(msg, 1000);
        fail_case(c, xasprintf("unexpected error: %s", g1));
        sv_qemu_config_free(cfg);
        return;
    }
    if (regenerate) {
        int wr = write_file(argv_path, text);
        if (wr < 0) {
            fail_case(c, xasprintf("writing %s: %s", argv_path, strerror(-wr)));
            sv_qemu_config_free(cfg);
            return;
        }
    } else {
        _cleanup_free_ char *want = NULL;
        size_t wlen = 0;
        int rr = read_file(argv_path, &want, &wlen);
        if (rr < 0) {
            fail_case(c, xasprintf("reading %s: %s", argv_path, strerror(-rr)));
            sv_qemu_config_free(cfg);
            return;
        }
        if (wlen != strlen(text) || memcmp(want, text, wlen) != 0) {
            fail_case(c, describe_diff(want, text));
            sv_qemu_config_free(cfg);
            return;
        }
    }
    c->cfg = cfg;
    c->res = R_PASS;
}

/* In a child: starts QEMU for one case and writes the error (if any) to fd. */
static void __attribute__((noreturn)) check_child(const gcase *c, int fd)
{
    setpgid(0, 0);
    _cleanup_free_ char *prefix = xasprintf("%s/", gops->fixture_dir);
    if (c->json_len && memmem(c->json, c->json_len, prefix, strlen(prefix))) {
        /* QEMU locks images: cases sharing the fixtures (also from another
         * runner, e.g. an ASan build) take turns. */
        _cleanup_free_ char *lock = xasprintf("%s/.lock", gops->fixture_dir);
        int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (lfd >= 0)
            while (flock(lfd, LOCK_EX) < 0 && errno == EINTR)
                ;
    }
    sv_error *err = NULL;
    int r = sv_qemu_check(c->cfg, NULL, &err);
    if (r < 0) {
        const char *m = sv_error_message(err);
        if (!*m)
            m = "sv_qemu_check failed without a message";
        size_t len = strlen(m);
        while (len > 0) {
            ssize_t n = write(fd, m, len);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            m += n;
            len -= (size_t)n;
        }
    }
    _exit(r < 0 ? 1 : 0);
}

static void finish_check(gcase *c, int status, const char *out)
{
    sv_qemu_config_free(c->cfg);
    c->cfg = NULL;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        c->qemu_ok = true;
        return;
    }
    _cleanup_free_ char *m = one_line(out && *out ? out : "no message", 2000);
    if (WIFSIGNALED(status))
        fail_case(c, xasprintf("QEMU check killed by signal %d: %s", WTERMSIG(status), m));
    else
        fail_case(c, xasprintf("QEMU refused it: %s", m));
}

/* Runs the QEMU checks with up to `jobs` children, printing results in case
 * order as soon as every earlier case is final. */
static void run_checks(gcase *cases, size_t n, int jobs)
{
    worker *w = calloc((size_t)jobs, sizeof(*w));
    if (!w)
        exit(2);
    for (int j = 0; j < jobs; j++)
        w[j].pid = -1;
    size_t next = 0, printed = 0;
    int running = 0;
    for (;;) {
        /* print what is final, in order */
        while (printed < n) {
            gcase *c = &cases[printed];
            if (!c->selected) {
                printed++;
                continue;
            }
            if (c->res == R_PENDING || (c->needs_qemu && !c->qemu_ok && c->res != R_FAIL))
                break;
            print_case(c);
            printed++;
        }
        /* start checks while there are free workers */
        while (running < jobs && next < n) {
            gcase *c = &cases[next++];
            if (!c->selected || !c->needs_qemu)
                continue;
            int p[2];
            if (pipe2(p, O_CLOEXEC) < 0) {
                fail_case(c, xasprintf("pipe: %s", strerror(errno)));
                continue;
            }
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid < 0) {
                fail_case(c, xasprintf("fork: %s", strerror(errno)));
                close(p[0]);
                close(p[1]);
                continue;
            }
            if (pid == 0) {
                close(p[0]);
                check_child(c, p[1]);
            }
            close(p[1]);
            setpgid(pid, pid);
            int j = 0;
            while (w[j].pid != -1)
                j++;
            w[j].pid = pid;
            w[j].fd = p[0];
            w[j].idx = (size_t)(c - cases);
            w[j].started = time(NULL);
            sv_strbuf_free(&w[j].out);
            sv_strbuf_append(&w[j].out, "");
            running++;
        }
        if (running == 0) {
            if (next >= n)
                break;
            continue;
        }
        struct pollfd pfd[64];
        int map[64], np = 0;
        for (int j = 0; j < jobs && np < 64; j++) {
            if (w[j].pid == -1)
                continue;
            pfd[np].fd = w[j].fd;
            pfd[np].events = POLLIN;
            map[np++] = j;
        }
        int pr = poll(pfd, (nfds_t)np, 1000);
        if (pr < 0 && errno != EINTR) {
            perror("poll");
            exit(2);
        }
        for (int k = 0; k < np; k++) {
            worker *wk = &w[map[k]];
            bool done = false;
            if (pr > 0 && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) {
                char buf[4096];
                ssize_t rd = read(wk->fd, buf, sizeof(buf));
                if (rd > 0)
                    sv_strbuf_append_n(&wk->out, buf, (size_t)rd);
                else if (rd == 0 || errno != EINTR)
                    done = true;
            }
            if (!done && time(NULL) - wk->started > CHECK_WATCHDOG_SEC) {
                kill(-wk->pid, SIGKILL);
                kill(wk->pid, SIGKILL);
                sv_strbuf_appendf(&wk->out, "no result after %d s (watchdog)", CHECK_WATCHDOG_SEC);
                done = true;
            }
            if (!done)
                continue;
            int status = 0;
            while (waitpid(wk->pid, &status, 0) < 0 && errno == EINTR)
                ;
            close(wk->fd);
            finish_check(&cases[wk->idx], status, wk->out.s);
            sv_strbuf_free(&wk->out);
            wk->pid = -1;
            running--;
        }
    }
    for (; printed < n; printed++)
        if (cases[printed].selected)
            print_case(&cases[printed]);
    free(w);
}

/* qemu-skip.txt: "<case>: <reason>" per line; '#' comments and blank lines. */
static int read_skip_file(const char *path, gcase *cases, size_t n, char ***lines_out,
                          size_t *nfail)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = read_file(path, &text, &len);
    *lines_out = NULL;
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        printf("FAIL qemu-skip.txt: reading %s: %s\n", path, strerror(-r));
        (*nfail)++;
        return 0;
    }
    /* keep the line storage alive: cases point at the reasons */
    size_t nl = 0;
    for (size_t i = 0; i < len; i++)
        nl += text[i] == '\n';
    char **lines = calloc(nl + 2, sizeof(char *));
    if (!lines)
        exit(2);
    size_t li = 0, lineno = 0;
    char *p = text;
    while (p && *p) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        lineno++;
        char *line = p;
        p = eol ? eol + 1 : NULL;
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == ' ' || line[l - 1] == '\t' || line[l - 1] == '\r'))
            line[--l] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon) {
            _cleanup_free_ char *l1 = one_line(line, 200);
            printf("FAIL qemu-skip.txt:%zu: expected \"<case>: <reason>\", got «%s»\n", lineno, l1);
            (*nfail)++;
            continue;
        }
        *colon = '\0';
        char *name = line, *reason = colon + 1;
        size_t nlen = strlen(name);
        while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            name[--nlen] = '\0';
        while (*reason == ' ' || *reason == '\t')
            reason++;
        gcase *c = find_case(cases, n, name);
        if (!c || !c->has_json) {
            printf("FAIL qemu-skip.txt:%zu: no case named \"%s\"\n", lineno, name);
            (*nfail)++;
            continue;
        }
        if (c->has_err) {
            printf("FAIL qemu-skip.txt:%zu: %s is an .err case; only .argv cases are started "
                   "by QEMU\n",
                   lineno, name);
            (*nfail)++;
            continue;
        }
        if (!*reason) {
            printf("FAIL qemu-skip.txt:%zu: %s: a reason is required\n", lineno, name);
            (*nfail)++;
            continue;
        }
        if (c->skip_reason) {
            printf("FAIL qemu-skip.txt:%zu: %s is listed twice\n", lineno, name);
            (*nfail)++;
            continue;
        }
        lines[li] = xstrdup(reason);
        c->skip_reason = lines[li++];
    }
    *lines_out = lines;
    return 0;
}

int sv_golden_main(int argc, char **argv, const sv_golden_ops *ops)
{
    gops = ops;
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CASES_DIR [SKIP_FILE]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = argv[1];
    _cleanup_free_ char *skip_path =
        argc == 3 ? xstrdup(argv[2]) : xasprintf("%s/../qemu-skip.txt", dir);
    const char *env = getenv("SV_TEST_REGENERATE");
    regenerate = env && *env && strcmp(env, "0") != 0;
    const char *filter = getenv("SV_GOLDEN_FILTER");
    if (filter && !*filter)
        filter = NULL;
    env = getenv("SV_GOLDEN_NO_QEMU");
    bool no_qemu = env && *env && strcmp(env, "0") != 0;
    int jobs = 2;
    env = getenv("SV_GOLDEN_JOBS");
    if (env && *env) {
        jobs = atoi(env);
        if (jobs < 1 || jobs > 64) {
            fprintf(stderr, "SV_GOLDEN_JOBS: expected 1 to 64, got '%s'\n", env);
            return 2;
        }
    }
    /* A QEMU killed by the watchdog or a closed pipe must not kill the runner. */
    signal(SIGPIPE, SIG_IGN);

    /* ---- collect the files ---- */
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: opening %s: %s\n", ops->name, dir, strerror(errno));
        return 2;
    }
    gcase *cases = NULL;
    size_t n = 0, cap = 0, nfail = 0, npass = 0, nskip = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *f = de->d_name;
        if (f[0] == '.')
            continue;
        size_t stem = 0;
        int kind = has_suffix(f, ".json", &stem)   ? 0
                   : has_suffix(f, ".argv", &stem) ? 1
                   : has_suffix(f, ".err", &stem)  ? 2
                                                   : -1;
        if (kind < 0) {
            printf("FAIL %s: unexpected file in the cases directory (want .json, .argv or .err)\n",
                   f);
            nfail++;
            continue;
        }
        _cleanup_free_ char *name = strndup(f, stem);
        if (!name)
            return 2;
        gcase *c = find_case(cases, n, name);
        if (!c) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                cases = realloc(cases, cap * sizeof(*cases));
                if (!cases)
                    return 2;
            }
            c = &cases[n++];
            memset(c, 0, sizeof(*c));
            c->name = TAKE_PTR(name);
        }
        if (kind == 0)
            c->has_json = true;
        else if (kind == 1)
            c->has_argv = true;
        else
            c->has_err = true;
    }
    closedir(d);
    if (n)
        qsort(cases, n, sizeof(*cases), case_cmp);

    /* ---- structural checks over every file, whatever the filter ---- */
    for (size_t i = 0; i < n; i++) {
        gcase *c = &cases[i];
        c->selected = !filter || strstr(c->name, filter);
        if (!c->has_json) {
            fail_case(c, xasprintf("%s.%s has no %s.json (unused data file)", c->name,
                                   c->has_argv ? "argv" : "err", c->name));
            continue;
        }
        if (c->has_argv && c->has_err)
            fail_case(c, xasprintf("has both %s.argv and %s.err; keep one", c->name, c->name));
        _cleanup_free_ char *jp = xasprintf("%s/%s.json", dir, c->name);
        int r = read_file(jp, &c->json, &c->json_len);
        if (r < 0)
            fail_case(c, xasprintf("reading %s: %s", jp, strerror(-r)));
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (cases[i].json && cases[j].json && cases[i].json_len == cases[j].json_len &&
                memcmp(cases[i].json, cases[j].json, cases[i].json_len) == 0) {
                fail_case(&cases[i],
                          xasprintf("same JSON as case %s (duplicate case)", cases[j].name));
                break;
            }
        }
    }
    char **skip_lines = NULL;
    read_skip_file(skip_path, cases, n, &skip_lines, &nfail);
    for (size_t i = 0; i < n; i++) {
        /* structural failures are reported whatever the filter */
        if (cases[i].res == R_FAIL)
            cases[i].selected = true;
    }

    int fr = ops->fixtures();
    if (fr < 0) {
        fprintf(stderr, "%s: creating the fixtures under %s: %s\n", ops->name, ops->fixture_dir,
                strerror(-fr));
        return 2;
    }

    /* ---- the text phase: parse, build, compare (or rewrite) ---- */
    size_t nargv = 0, nerr = 0, nsel = 0;
    for (size_t i = 0; i < n; i++) {
        gcase *c = &cases[i];
        if (!c->selected)
            continue;
        if (c->res != R_FAIL)
            run_text(c, dir);
        if (!c->has_json)
            continue;
        nsel++;
        if (c->has_err && !c->has_argv)
            nerr++;
        else if (c->has_argv && !c->has_err)
            nargv++;
        if (c->res != R_PASS || c->is_err)
            continue;
        if (c->skip_reason) {
            c->qemu_skipped = true; /* argv text checked; QEMU not started on purpose */
            sv_qemu_config_free(c->cfg);
            c->cfg = NULL;
            continue;
        }
        const char *bin = sv_qemu_config_binary(c->cfg);
        if (no_qemu || !bin || !binary_installed(bin)) {
            c->res = R_SKIP;
            c->qemu_skipped = true;
            free(c->why);
            c->why = no_qemu ? xstrdup("QEMU checks disabled (SV_GOLDEN_NO_QEMU)")
                             : xasprintf("%s not installed", bin ? bin : "(no binary)");
            sv_qemu_config_free(c->cfg);
            c->cfg = NULL;
            continue;
        }
        c->needs_qemu = true;
    }

    /* ---- the QEMU phase ---- */
    run_checks(cases, n, jobs);

    size_t nqemu = 0;
    for (size_t i = 0; i < n; i++) {
        gcase *c = &cases[i];
        if (!c->selected)
            continue;
        if (c->qemu_ok)
            nqemu++;
        if (c->qemu_skipped)
            nskip++;
        if (c->res == R_PASS)
            npass++;
        else if (c->res == R_FAIL)
            nfail++;
    }
    size_t nmissing = 0;
    for (size_t i = 0; i < n; i++)
        nmissing += cases[i].selected && cases[i].res == R_SKIP;
    printf("%s: %zu cases (%zu argv, %zu err), %zu qemu-accepted, %zu qemu-skipped\n", ops->name,
           nsel, nargv, nerr, nqemu, nskip);
    for (size_t g = 0; ops->groups && ops->groups[g]; g++) {
        size_t ga = 0, ge = 0, gq = 0;
        for (size_t i = 0; i < n; i++) {
            gcase *c = &cases[i];
            if (!c->selected || !c->has_json ||
                strncmp(c->name, ops->groups[g], strlen(ops->groups[g])) != 0)
                continue;
            if (c->has_err && !c->has_argv)
                ge++;
            else if (c->has_argv && !c->has_err)
                ga++;
            gq += c->qemu_ok;
        }
        printf("  %s*: %zu cases (%zu argv, %zu err), %zu qemu-accepted\n", ops->groups[g],
               ga + ge, ga, ge, gq);
    }
    if (nmissing)
        printf("WARNING: %zu case(s) were NOT started by QEMU (binary missing or checks "
               "disabled); they are not counted as passed\n",
               nmissing);
    if (filter)
        printf("(filter \"%s\": %zu of %zu cases)\n", filter, nsel, n);
    if (regenerate)
        printf("(SV_TEST_REGENERATE: expectations rewritten; review them with git diff)\n");
    printf("%zu passed, %zu failed\n", npass, nfail);

    for (size_t i = 0; i < n; i++) {
        free(cases[i].name);
        free(cases[i].json);
        free(cases[i].why);
        sv_qemu_config_free(cases[i].cfg);
    }
    free(cases);
    for (size_t i = 0; skip_lines && skip_lines[i]; i++)
        free(skip_lines[i]);
    free(skip_lines);
    return nfail ? 1 : 0;
}
