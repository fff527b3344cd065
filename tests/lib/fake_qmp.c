#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fake_qmp.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/sock.h"
#include "util/strbuf.h"

#define MAX_FDS_PER_MSG 8

struct fake_qmp {
    const fq_step *script;
    size_t n;
    int fd;
    int listen_fd;
    char *path;
    pthread_t thread;
    bool started, joined;
    char *failure;
    json_object **cmds;
    int *cmd_fds;
    size_t ncmds, cmds_cap;
    char id[64]; /* the last command's id as JSON text */
    long gone_at;
    char *buf;
    size_t len, buf_cap;
    int pending_fd; /* received, not yet matched with a command */
    unsigned long seq;
};

static void fail(fake_qmp *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(fake_qmp *f, const char *fmt, ...)
{
    if (f->failure)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&f->failure, fmt, ap) < 0)
        f->failure = NULL;
    va_end(ap);
    if (!f->failure)
        f->failure = strdup("fake QMP: failure (out of memory formatting it)");
}

/* ---- I/O. */

/* Writes all of buf; false when the client went away. */
static bool write_all(fake_qmp *f, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(f->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static bool write_line(fake_qmp *f, const char *text)
{
    return write_all(f, text, strlen(text)) && write_all(f, "\n", 1);
}

/* Reads more bytes (and fds) into the buffer: 1, 0 at EOF, -1 on timeout or
 * error (recorded). */
static int fill(fake_qmp *f)
{
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, FAKE_QMP_IO_TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    if (r == 0) {
        fail(f, "fake QMP: nothing from the client for %d ms", FAKE_QMP_IO_TIMEOUT_MS);
        return -1;
    }
    if (f->buf_cap - f->len < 4096) {
        size_t cap = f->buf_cap ? f->buf_cap * 2 : 16384;
        char *b = realloc(f->buf, cap);
        if (!b) {
            fail(f, "fake QMP: out of memory");
            return -1;
        }
        f->buf = b;
        f->buf_cap = cap;
    }
    union {
        char b[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MSG)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = f->buf + f->len, .iov_len = f->buf_cap - f->len};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
    ssize_t n;
    do
        n = recvmsg(f->fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ECONNRESET)
        n = 0;
    if (n < 0) {
        fail(f, "fake QMP: recvmsg: %s", strerror(errno));
        return -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (f->pending_fd < 0) {
                f->pending_fd = fd;
            } else {
                close(fd);
                fail(f, "fake QMP: more than one fd with one command");
            }
        }
    }
    if (mh.msg_flags & MSG_CTRUNC)
        fail(f, "fake QMP: ancillary data truncated");
    f->len += (size_t)n;
    return n > 0 ? 1 : 0;
}

/* The next line (newly allocated, newline removed): 1, 0 at EOF, -1. */
static int read_line(fake_qmp *f, char **line)
{
    for (;;) {
        char *nl = f->len ? memchr(f->buf, '\n', f->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - f->buf);
            *line = strndup(f->buf, n);
            memmove(f->buf, nl + 1, f->len - n - 1);
            f->len -= n + 1;
            if (!*line) {
                fail(f, "fake QMP: out of memory");
                return -1;
            }
            return 1;
        }
        int r = fill(f);
        if (r <= 0) {
            if (r == 0 && f->len)
                fail(f, "fake QMP: the client closed in the middle of a command");
            return r;
        }
    }
}

/* ---- Steps. */

static json_object *parse_or_fail(fake_qmp *f, size_t step, const char *json)
{
    json_object *o = NULL;
    if (sv_json_parse(json, strlen(json), &o, NULL) < 0) {
        fail(f, "fake QMP: step %zu: bad JSON in the script: %s", step, json);
        return NULL;
    }
    return o;
}

static json_object *id_value(fake_qmp *f)
{
    return json_tokener_parse(f->id); /* "null" before any command */
}

static bool send_object(fake_qmp *f, json_object *o)
{
    const char *text = sv_json_to_string(o);
    return text && write_line(f, text);
}

static char *substitute_id(const char *text, const char *id)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    for (const char *p = text; *p;) {
        const char *m = strstr(p, "%ID%");
        if (!m) {
            sv_strbuf_append(&sb, p);
            break;
        }
        sv_strbuf_append_n(&sb, p, (size_t)(m - p));
        sv_strbuf_append(&sb, id);
        p = m + 4;
    }
    return sv_strbuf_steal(&sb);
}

static bool record_command(fake_qmp *f, json_object *cmd, int fd)
{
    if (f->ncmds == f->cmds_cap) {
        size_t cap = f->cmds_cap ? f->cmds_cap * 2 : 16;
        json_object **c = realloc(f->cmds, cap * sizeof(*c));
        if (!c)
            return false;
        f->cmds = c;
        int *fds = realloc(f->cmd_fds, cap * sizeof(*fds));
        if (!fds)
            return false;
        f->cmd_fds = fds;
        f->cmds_cap = cap;
    }
    f->cmds[f->ncmds] = cmd;
    f->cmd_fds[f->ncmds] = fd;
    f->ncmds++;
    return true;
}

/* Reads and checks one command. false ends the script. */
static bool expect(fake_qmp *f, size_t i, const fq_step *s)
{
    _cleanup_free_ char *line = NULL;
    int r = read_line(f, &line);
    if (r == 0)
        fail(f, "fake QMP: step %zu: expected %s, the client closed the connection", i, s->text);
    if (r <= 0)
        return false;
    int fd = f->pending_fd;
    f->pending_fd = -1;
    json_object *cmd = NULL;
    if (sv_json_parse(line, strlen(line), &cmd, NULL) < 0 ||
        !json_object_is_type(cmd, json_type_object)) {
        json_object_put(cmd);
        if (fd >= 0)
            close(fd);
        fail(f, "fake QMP: step %zu: the client sent invalid JSON: %s", i, line);
        return false;
    }
    if (!record_command(f, cmd, fd)) {
        json_object_put(cmd);
        if (fd >= 0)
            close(fd);
        fail(f, "fake QMP: out of memory");
        return false;
    }
    json_object *exec = NULL, *id = NULL, *args = NULL;
    json_object_object_get_ex(cmd, "execute", &exec);
    json_object_object_get_ex(cmd, "id", &id);
    bool has_args = json_object_object_get_ex(cmd, "arguments", &args);
    if (!json_object_is_type(exec, json_type_string) ||
        strcmp(json_object_get_string(exec), s->text) != 0) {
        fail(f, "fake QMP: step %zu: expected %s, got %s", i, s->text, line);
        return false;
    }
    if (!json_object_is_type(id, json_type_int)) {
        fail(f, "fake QMP: step %zu: %s without an integer id: %s", i, s->text, line);
        return false;
    }
    snprintf(f->id, sizeof(f->id), "%s", json_object_to_json_string(id));
    if (s->json && !*s->json && has_args) {
        fail(f, "fake QMP: step %zu: %s: expected no arguments, got %s", i, s->text, line);
        return false;
    }
    if (s->json && *s->json) {
        _cleanup_json_ json_object *want = parse_or_fail(f, i, s->json);
        if (!want)
            return false;
        if (!has_args || !json_object_equal(want, args)) {
            fail(f, "fake QMP: step %zu: %s: expected arguments %s, got %s", i, s->text, s->json,
                 line);
            return false;
        }
    }
    if (s->op == FQ_EXPECT_FD && fd < 0) {
        fail(f, "fake QMP: step %zu: %s came without an fd", i, s->text);
        return false;
    }
    if (s->op == FQ_EXPECT && fd >= 0) {
        fail(f, "fake QMP: step %zu: %s came with an unexpected fd", i, s->text);
        return false;
    }
    return true;
}

static bool send_reply(fake_qmp *f, size_t i, const fq_step *s)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    if (s->op == FQ_RETURN) {
        json_object *v = s->json ? parse_or_fail(f, i, s->json) : json_object_new_object();
        if (s->json && !v && strcmp(s->json, "null") != 0)
            return false;
        json_object_object_add(o, "return", v);
    } else {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "class", json_object_new_string(s->text));
        json_object_object_add(e, "desc", json_object_new_string(s->json ? s->json : ""));
        json_object_object_add(o, "error", e);
    }
    json_object_object_add(o, "id", id_value(f));
    return send_object(f, o);
}

static bool send_event(fake_qmp *f, size_t i, const char *name, json_object *data)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    json_object *ts = json_object_new_object();
    json_object_object_add(ts, "seconds", json_object_new_int64(1700000000));
    json_object_object_add(ts, "microseconds",
                           json_object_new_int64((int64_t)(f->seq++ % 1000000)));
    json_object_object_add(o, "timestamp", ts);
    json_object_object_add(o, "event", json_object_new_string(name));
    if (data)
        json_object_object_add(o, "data", data);
    return send_object(f, o);
}

static bool send_big(fake_qmp *f, size_t n)
{
    char head[96];
    snprintf(head, sizeof(head), "{\"id\":%s,\"return\":\"", f->id);
    size_t h = strlen(head), tail = 2;
    if (n < h + tail)
        n = h + tail;
    char *line = malloc(n + 1);
    if (!line)
        return false;
    memcpy(line, head, h);
    memset(line + h, 'x', n - h - tail);
    memcpy(line + n - tail, "\"}", tail);
    line[n] = '\n';
    bool ok = write_all(f, line, n + 1);
    free(line);
    return ok;
}

/* Reads until EOF; `strict`: any command is a failure. */
static void drain(fake_qmp *f, bool strict)
{
    for (;;) {
        _cleanup_free_ char *line = NULL;
        int r = read_line(f, &line);
        if (r <= 0)
            return;
        if (strict)
            fail(f, "fake QMP: unexpected command after the script: %s", line);
    }
}

static void sleep_ms(size_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Plays one step: false ends the script. */
static bool play(fake_qmp *f, size_t i)
{
    const fq_step *s = &f->script[i];
    bool ok = true;
    switch (s->op) {
    case FQ_GREETING: {
        char g[256];
        snprintf(g, sizeof(g),
                 "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": %zu, \"minor\": %zu, \"major\": "
                 "%zu}, \"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}",
                 s->n % 100, s->n / 100 % 100, s->n / 10000);
        ok = write_line(f, g);
        break;
    }
    case FQ_SEND: {
        _cleanup_free_ char *text = substitute_id(s->text, f->id);
        ok = text && write_line(f, text);
        break;
    }
    case FQ_RAW:
        ok = write_all(f, s->text, s->n);
        break;
    case FQ_EXPECT:
    case FQ_EXPECT_FD:
        return expect(f, i, s);
    case FQ_RETURN:
    case FQ_ERROR:
        ok = send_reply(f, i, s);
        break;
    case FQ_EVENT: {
        json_object *data = NULL;
        if (s->json && !(data = parse_or_fail(f, i, s->json)))
            return false;
        ok = send_event(f, i, s->text, data);
        break;
    }
    case FQ_FLOOD:
        for (size_t k = 0; k < s->n && ok; k++) {
            json_object *data = json_object_new_object();
            json_object_object_add(data, "seq", json_object_new_int64((int64_t)k));
            ok = send_event(f, i, s->text, data);
        }
        break;
    case FQ_BIG:
        ok = send_big(f, s->n);
        break;
    case FQ_SLEEP:
        sleep_ms(s->n);
        break;
    case FQ_CLOSE:
        close(TAKE_FD(f->fd));
        return false;
    case FQ_HOLD:
        drain(f, false);
        return false;
    }
    if (!ok && f->gone_at < 0)
        f->gone_at = (long)i;
    return ok;
}

static void *run(void *arg)
{
    fake_qmp *f = arg;
    if (f->listen_fd >= 0) {
        struct pollfd p = {.fd = f->listen_fd, .events = POLLIN};
        if (poll(&p, 1, FAKE_QMP_IO_TIMEOUT_MS) <= 0) {
            fail(f, "fake QMP: no client connected to %s", f->path);
            return NULL;
        }
        f->fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (f->fd < 0) {
            fail(f, "fake QMP: accept: %s", strerror(errno));
            return NULL;
        }
    }
    size_t i = 0;
    for (; i < f->n; i++)
        if (!play(f, i))
            break;
    if (i == f->n)
        drain(f, true);
    if (f->fd >= 0)
        close(TAKE_FD(f->fd));
    return NULL;
}

/* ---- Public. */

static fake_qmp *fake_new(const fq_step *script, size_t n)
{
    fake_qmp *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->script = script;
    f->n = n;
    f->fd = -1;
    f->listen_fd = -1;
    f->pending_fd = -1;
    f->gone_at = -1;
    snprintf(f->id, sizeof(f->id), "null");
    return f;
}

static fake_qmp *fake_run(fake_qmp *f)
{
    if (pthread_create(&f->thread, NULL, run, f) != 0) {
        fake_qmp_free(f);
        return NULL;
    }
    f->started = true;
    return f;
}

fake_qmp *fake_qmp_start(const fq_step *script, size_t n, int *client_fd)
{
    fake_qmp *f = fake_new(script, n);
    int sv[2];
    if (!f || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        free(f);
        return NULL;
    }
    f->fd = sv[1];
    f = fake_run(f);
    if (!f) {
        close(sv[0]);
        return NULL;
    }
    *client_fd = sv[0];
    return f;
}

fake_qmp *fake_qmp_start_path(const fq_step *script, size_t n, const char *path)
{
    fake_qmp *f = fake_new(script, n);
    if (!f)
        return NULL;
    f->path = strdup(path);
    f->listen_fd = f->path ? sv_unix_listen(path, NULL) : -1;
    if (f->listen_fd < 0) {
        fake_qmp_free(f);
        return NULL;
    }
    return fake_run(f);
}

const char *fake_qmp_finish(fake_qmp *f)
{
    if (f->started && !f->joined) {
        pthread_join(f->thread, NULL);
        f->joined = true;
    }
    return f->failure;
}

size_t fake_qmp_commands(const fake_qmp *f)
{
    return f->ncmds;
}

json_object *fake_qmp_command(const fake_qmp *f, size_t i)
{
    return i < f->ncmds ? f->cmds[i] : NULL;
}

int fake_qmp_command_fd(const fake_qmp *f, size_t i)
{
    return i < f->ncmds ? f->cmd_fds[i] : -1;
}

long fake_qmp_client_gone_at(const fake_qmp *f)
{
    return f->gone_at;
}

void fake_qmp_free(fake_qmp *f)
{
    if (!f)
        return;
    fake_qmp_finish(f);
    for (size_t i = 0; i < f->ncmds; i++) {
        json_object_put(f->cmds[i]);
        if (f->cmd_fds[i] >= 0)
            close(f->cmd_fds[i]);
    }
    free(f->cmds);
    free(f->cmd_fds);
    if (f->pending_fd >= 0)
        close(f->pending_fd);
    if (f->fd >= 0)
        close(f->fd);
    if (f->listen_fd >= 0)
        close(f->listen_fd);
    if (f->path)
        unlink(f->path);
    free(f->path);
    free(f->buf);
    free(f->failure);
    free(f);
}
