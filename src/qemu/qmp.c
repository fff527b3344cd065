#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qemu/qmp.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/sock.h"
#include "util/strbuf.h"

/* The smallest size cap: a greeting or a short reply must always fit. */
#define MIN_MAX_MESSAGE 4096
/* JSON nesting the client's parser takes: sv_json_parse()'s */
#define PARSE_DEPTH 64

struct sv_qmp {
    int fd;
    int watch_fd;
    char *buf; /* received bytes not yet returned as lines */
    size_t len, cap;
    size_t scanned;  /* buf[0..scanned) holds no newline */
    size_t consumed; /* length of the line handed out last, dropped on the next read */
    size_t max_message;
    int default_timeout_ms;
    bool eof;
    bool broken; /* framing lost or peer refused: every later call fails */
    int64_t next_id;
    char *error_class; /* of the last error reply to a command */
    json_object *greeting;
    bool have_version;
    sv_qmp_version version;
    sv_qmp_event_fn on_event;
    void *opaque;
    sv_qmp_trace_fn trace;
    void *trace_opaque;
    json_tokener *tok; /* parses every received line (made on first use) */
    sv_strbuf out;     /* the command line being sent */
    bool sending_raw; /* the command in flight came from sv_qmp_execute_text() */
    /* the event queue: a ring of ev_cap slots, ev_count used from ev_head */
    sv_qmp_msg *ev;
    size_t ev_cap, ev_head, ev_count, ev_max;
    uint64_t ev_dropped;
};

/* ---- The event table. */

static const char *const event_names[] = {
    [SV_QMP_EV_UNKNOWN] = "",
    [SV_QMP_EV_SHUTDOWN] = "SHUTDOWN",
    [SV_QMP_EV_POWERDOWN] = "POWERDOWN",
    [SV_QMP_EV_RESET] = "RESET",
    [SV_QMP_EV_STOP] = "STOP",
    [SV_QMP_EV_RESUME] = "RESUME",
    [SV_QMP_EV_SUSPEND] = "SUSPEND",
    [SV_QMP_EV_WAKEUP] = "WAKEUP",
    [SV_QMP_EV_GUEST_PANICKED] = "GUEST_PANICKED",
    [SV_QMP_EV_DEVICE_DELETED] = "DEVICE_DELETED",
    [SV_QMP_EV_DEVICE_UNPLUG_GUEST_ERROR] = "DEVICE_UNPLUG_GUEST_ERROR",
    [SV_QMP_EV_ACPI_DEVICE_OST] = "ACPI_DEVICE_OST",
    [SV_QMP_EV_BALLOON_CHANGE] = "BALLOON_CHANGE",
    [SV_QMP_EV_MEMORY_DEVICE_SIZE_CHANGE] = "MEMORY_DEVICE_SIZE_CHANGE",
    [SV_QMP_EV_MIGRATION] = "MIGRATION",
    [SV_QMP_EV_MIGRATION_PASS] = "MIGRATION_PASS",
    [SV_QMP_EV_VSERPORT_CHANGE] = "VSERPORT_CHANGE",
    [SV_QMP_EV_NIC_RX_FILTER_CHANGED] = "NIC_RX_FILTER_CHANGED",
    [SV_QMP_EV_BLOCK_IO_ERROR] = "BLOCK_IO_ERROR",
    [SV_QMP_EV_JOB_STATUS_CHANGE] = "JOB_STATUS_CHANGE",
    [SV_QMP_EV_WATCHDOG] = "WATCHDOG",
};
_Static_assert(SV_ARRAY_SIZE(event_names) == SV__QMP_EV_MAX, "event names");

const char *sv_qmp_event_name(sv_qmp_event_id id)
{
    return (unsigned)id < SV__QMP_EV_MAX && event_names[id] ? event_names[id] : "";
}

sv_qmp_event_id sv_qmp_event_lookup(const char *name)
{
    for (int i = 1; name && i < SV__QMP_EV_MAX; i++)
        if (!strcmp(event_names[i], name))
            return (sv_qmp_event_id)i;
    return SV_QMP_EV_UNKNOWN;
}

/* ---- Classification: the one function that decides what a line is. */

static const char *string_member(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int64_t event_timestamp(json_object *o)
{
    json_object *ts, *s, *us;
    if (!json_object_object_get_ex(o, "timestamp", &ts) ||
        !json_object_object_get_ex(ts, "seconds", &s) ||
        !json_object_object_get_ex(ts, "microseconds", &us) ||
        !json_object_is_type(s, json_type_int) || !json_object_is_type(us, json_type_int))
        return -1;
    int64_t sec = json_object_get_int64(s), usec = json_object_get_int64(us);
    if (sec < 0 || usec < 0 || usec >= 1000000 || sec > INT64_MAX / 1000000 - 1)
        return -1;
    return sec * 1000000 + usec;
}

/* sv_json_parse() with a tokener kept across lines (one client parses a
 * line per reply: a new tokener each time is two allocations and a 2 KiB
 * clear). The same checks, in the same order: NULL on anything it refuses. */
static json_object *parse_line(json_tokener *tok, const char *line, size_t len)
{
    /* A tokener kept across lines parsed differently from sv_json_parse()
     * (the qmp_framer fuzz target found a line read as another object), so
     * every line goes through sv_json_parse() and its caps. */
    (void)tok;
    json_object *o = NULL;
    return sv_json_parse(line, len, &o, NULL) < 0 ? NULL : o;
}

static sv_qmp_kind classify(json_tokener *tok, const char *line, size_t len, sv_qmp_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
    msg->timestamp_us = -1;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    json_object *o = parse_line(tok, line, len);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return msg->kind = SV_QMP_GARBAGE;
    }
    json_object *v = NULL, *id = NULL, *ret = NULL, *error = NULL;
    json_object_object_get_ex(o, "id", &id);
    bool has_ret = json_object_object_get_ex(o, "return", &ret);
    bool has_error = json_object_object_get_ex(o, "error", &error);

    if (json_object_object_get_ex(o, "QMP", &v) && json_object_is_type(v, json_type_object) &&
        !has_ret && !has_error) {
        msg->kind = SV_QMP_GREETING;
    } else if (has_ret && !has_error) {
        msg->kind = SV_QMP_REPLY;
        msg->id = id;
        msg->ret = ret;
    } else if (has_error && !has_ret && json_object_is_type(error, json_type_object) &&
               string_member(error, "class") && string_member(error, "desc")) {
        msg->kind = SV_QMP_REPLY;
        msg->id = id;
        msg->error_class = string_member(error, "class");
        msg->error_desc = string_member(error, "desc");
    } else if (!has_ret && !has_error && string_member(o, "event")) {
        msg->kind = SV_QMP_EVENT;
        msg->event = string_member(o, "event");
        msg->event_id = sv_qmp_event_lookup(msg->event);
        if (json_object_object_get_ex(o, "data", &v))
            msg->data = v;
        msg->timestamp_us = event_timestamp(o);
    } else {
        json_object_put(o);
        return msg->kind = SV_QMP_GARBAGE;
    }
    msg->obj = o;
    return msg->kind;
}

sv_qmp_kind sv_qmp_classify(const char *line, size_t len, sv_qmp_msg *msg)
{
    return classify(NULL, line, len, msg);
}

void sv_qmp_msg_clear(sv_qmp_msg *msg)
{
    json_object_put(msg->obj);
    memset(msg, 0, sizeof(*msg));
    msg->timestamp_us = -1;
}

void sv_qmp_msg_move(sv_qmp_msg *dst, sv_qmp_msg *src)
{
    *dst = *src;
    memset(src, 0, sizeof(*src));
    src->timestamp_us = -1;
}

/* ---- Client setup. */

sv_qmp *sv_qmp_new(int fd)
{
    sv_qmp *q = calloc(1, sizeof(*q));
    if (!q) {
        close(fd);
        return NULL;
    }
    q->fd = fd;
    q->watch_fd = -1;
    q->next_id = 1;
    q->max_message = SV_QMP_MAX_MESSAGE;
    q->default_timeout_ms = SV_QMP_DEFAULT_TIMEOUT_MS;
    q->ev_max = SV_QMP_EVENT_QUEUE_MAX;
    return q;
}

static sv_qmp_msg *ev_at(const sv_qmp *q, size_t i)
{
    return &q->ev[(q->ev_head + i) % q->ev_cap];
}

void sv_qmp_free(sv_qmp *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    free(q->buf);
    if (q->tok)
        json_tokener_free(q->tok);
    sv_strbuf_free(&q->out);
    free(q->error_class);
    json_object_put(q->greeting);
    for (size_t i = 0; i < q->ev_count; i++)
        sv_qmp_msg_clear(ev_at(q, i));
    free(q->ev);
    free(q);
}

void sv_qmp_set_watch_fd(sv_qmp *q, int fd)
{
    q->watch_fd = fd;
}

void sv_qmp_set_event_handler(sv_qmp *q, sv_qmp_event_fn fn, void *opaque)
{
    q->on_event = fn;
    q->opaque = opaque;
}

void sv_qmp_set_trace(sv_qmp *q, sv_qmp_trace_fn fn, void *opaque)
{
    q->trace = fn;
    q->trace_opaque = opaque;
}

void sv_qmp_set_default_timeout(sv_qmp *q, int ms)
{
    q->default_timeout_ms = ms > 0 ? ms : SV_QMP_DEFAULT_TIMEOUT_MS;
}

void sv_qmp_set_max_message(sv_qmp *q, size_t bytes)
{
    q->max_message = bytes < MIN_MAX_MESSAGE ? MIN_MAX_MESSAGE : bytes;
}

size_t sv_qmp_max_message(const sv_qmp *q)
{
    return q->max_message;
}

json_object *sv_qmp_greeting(const sv_qmp *q)
{
    return q->greeting;
}

const char *sv_qmp_error_class(const sv_qmp *q)
{
    return q->error_class;
}

const sv_qmp_version *sv_qmp_qemu_version(const sv_qmp *q)
{
    return q->have_version ? &q->version : NULL;
}

int64_t sv_qmp_deadline(const sv_qmp *q, int64_t deadline)
{
    return deadline == SV_QMP_DEADLINE_DEFAULT ? sv_deadline_ms(q->default_timeout_ms) : deadline;
}

static int64_t resolve(const sv_qmp *q, int64_t deadline)
{
    return sv_qmp_deadline(q, deadline);
}

/* Hands a local error to the caller's (or drops it when the caller has one). */
static void move_error(sv_error **err, sv_error *e)
{
    if (err && !*err)
        *err = e;
    else
        sv_error_free(e);
}

static int broken(sv_qmp *q, sv_error **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int broken(sv_qmp *q, sv_error **err, int code, const char *fmt, ...)
{
    q->broken = true;
    va_list ap;
    va_start(ap, fmt);
    int r = sv_error_setv(err, code, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- The event queue. */

/* Re-lays the ring out in `cap` slots (cap >= ev_count). */
static int ev_relayout(sv_qmp *q, size_t cap)
{
    sv_qmp_msg *n = calloc(cap, sizeof(*n));
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < q->ev_count; i++)
        n[i] = *ev_at(q, i);
    free(q->ev);
    q->ev = n;
    q->ev_cap = cap;
    q->ev_head = 0;
    return 0;
}

static void ev_drop_oldest(sv_qmp *q)
{
    sv_qmp_msg_clear(ev_at(q, 0));
    q->ev_head = (q->ev_head + 1) % q->ev_cap;
    q->ev_count--;
    q->ev_dropped++;
}

/* Removes entry i, moving it into *out (or clearing it when out is NULL). */
static void ev_take(sv_qmp *q, size_t i, sv_qmp_msg *out)
{
    if (out)
        sv_qmp_msg_move(out, ev_at(q, i));
    else
        sv_qmp_msg_clear(ev_at(q, i));
    for (size_t k = i; k + 1 < q->ev_count; k++)
        *ev_at(q, k) = *ev_at(q, k + 1);
    q->ev_count--;
    if (q->ev_count == 0)
        q->ev_head = 0;
}

/* Queues an event (taking it over), dropping the oldest when full. */
static void ev_push(sv_qmp *q, sv_qmp_msg *m)
{
    if (q->ev_count == q->ev_max)
        ev_drop_oldest(q);
    if (q->ev_count == q->ev_cap) {
        size_t cap = q->ev_cap ? q->ev_cap * 2 : 16;
        if (cap > q->ev_max)
            cap = q->ev_max;
        if (cap <= q->ev_count || ev_relayout(q, cap) < 0) {
            /* no room and no memory: the event is lost, but counted */
            sv_qmp_msg_clear(m);
            q->ev_dropped++;
            return;
        }
    }
    sv_qmp_msg_move(ev_at(q, q->ev_count), m);
    q->ev_count++;
}

size_t sv_qmp_event_count(const sv_qmp *q)
{
    return q->ev_count;
}

uint64_t sv_qmp_events_dropped(const sv_qmp *q)
{
    return q->ev_dropped;
}

void sv_qmp_set_event_queue_max(sv_qmp *q, size_t n)
{
    if (n < 1)
        n = 1;
    while (q->ev_count > n)
        ev_drop_oldest(q);
    q->ev_max = n;
    if (q->ev_cap > n)
        ev_relayout(q, n); /* on failure the ring keeps its larger size */
}

int sv_qmp_pop_event(sv_qmp *q, sv_qmp_msg *out)
{
    if (q->ev_count == 0)
        return 0;
    ev_take(q, 0, out);
    return 1;
}

/* ---- Reading. */

/* Waits until the socket can be read. */
static int wait_readable(sv_qmp *q, int64_t deadline, sv_error **err)
{
    struct pollfd p[2] = {{.fd = q->fd, .events = POLLIN}, {.fd = q->watch_fd, .events = POLLIN}};
    int r = sv_poll_deadline(p, q->watch_fd >= 0 ? 2 : 1, deadline, err);
    if (r < 0)
        return r;
    if (p[0].revents)
        return 0;
    if (r > 0)
        return sv_error_set(err, ECHILD, "QMP peer exited");
    return sv_error_set(err, ETIMEDOUT, "timed out");
}

/* Returns in *line and *len the next line (newline excluded) inside q->buf, valid
 * until the next call. */
static int read_line(sv_qmp *q, int64_t deadline, const char **line, size_t *len, sv_error **err)
{
    if (q->broken)
        return sv_error_set(err, EPROTO, "QMP connection unusable after an earlier protocol error");
    if (q->consumed) {
        memmove(q->buf, q->buf + q->consumed, q->len - q->consumed);
        q->len -= q->consumed;
        q->consumed = 0;
        q->scanned = 0;
    }
    for (;;) {
        char *nl =
            q->len > q->scanned ? memchr(q->buf + q->scanned, '\n', q->len - q->scanned) : NULL;
        if (nl && (size_t)(nl - q->buf) <= q->max_message) {
            *line = q->buf;
            *len = (size_t)(nl - q->buf);
            q->consumed = *len + 1;
            return 0;
        }
        q->scanned = q->len;
        if (nl || q->len > q->max_message)
            return broken(q, err, EPROTO, "QMP message longer than %zu bytes", q->max_message);
        if (q->eof)
            return sv_error_set(err, ECONNRESET,
                                q->len ? "QMP connection closed in the middle of a message"
                                       : "QMP connection closed");
        /* room for a full message, its newline and one byte more to see it is too long */
        size_t want = q->max_message + 2;
        if (q->cap - q->len < 4096 && q->cap < want) {
            size_t cap = q->cap ? q->cap * 2 : 65536;
            if (cap > want)
                cap = want;
            char *b = realloc(q->buf, cap);
            if (!b)
                return sv_error_set(err, ENOMEM, "out of memory");
            q->buf = b;
            q->cap = cap;
        }
        int r = wait_readable(q, deadline, err);
        if (r < 0)
            return r;
        ssize_t n = recv(q->fd, q->buf + q->len, q->cap - q->len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n < 0 && errno == ECONNRESET)
            n = 0;
        if (n < 0)
            return sv_error_errno(err, errno, "reading from QMP");
        if (n == 0)
            q->eof = true;
        q->len += (size_t)n;
    }
}

/* The client's tokener, sv_json_parse()'s settings; NULL (the per-line
 * parser then) when there is no memory for it. */
static json_tokener *client_tokener(sv_qmp *q)
{
    if (!q->tok && (q->tok = json_tokener_new_ex(PARSE_DEPTH)))
        json_tokener_set_flags(q->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return q->tok;
}

/* A short printable excerpt of a bad line, for error messages. */
static char *excerpt(const char *line, size_t len)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    size_t n = len > 80 ? 80 : len;
    for (size_t i = 0; i < n; i++)
        sv_strbuf_append_c(&sb, line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?');
    if (n < len)
        sv_strbuf_append(&sb, "...");
    return sv_strbuf_steal(&sb);
}

int sv_qmp_read_msg(sv_qmp *q, int64_t deadline, sv_qmp_msg *msg, sv_error **err)
{
    const char *line;
    size_t len;
    int r = read_line(q, resolve(q, deadline), &line, &len, err);
    if (r < 0)
        return r;
    if (classify(client_tokener(q), line, len, msg) != SV_QMP_GARBAGE && q->trace)
        q->trace(NULL, msg, q->trace_opaque);
    return 0;
}

/* Reads the next message that is not garbage (garbage breaks the
 * connection). An event is handed to the handler and queued: *msg then has
 * kind SV_QMP_EVENT and no object, and the event is the queue's newest
 * entry (the queue drops its oldest first, so the newest always stays). */
static int next_message(sv_qmp *q, int64_t deadline, sv_qmp_msg *msg, sv_error **err)
{
    const char *line;
    size_t len;
    int r = read_line(q, deadline, &line, &len, err);
    if (r < 0)
        return r;
    if (classify(client_tokener(q), line, len, msg) == SV_QMP_GARBAGE) {
        _cleanup_free_ char *bad = excerpt(line, len);
        return broken(q, err, EPROTO, "QMP sent an invalid message: %s", bad ? bad : "?");
    }
    if (q->trace)
        q->trace(NULL, msg, q->trace_opaque);
    if (msg->kind == SV_QMP_EVENT) {
        if (q->on_event)
            q->on_event(msg, q->opaque);
        ev_push(q, msg);
        msg->kind = SV_QMP_EVENT;
    }
    return 0;
}

/* ---- Handshake. */

static bool int_member(json_object *o, const char *key, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    int64_t n = json_object_get_int64(v);
    if (n < 0 || n > INT32_MAX)
        return false;
    *out = (int)n;
    return true;
}

/* Takes the version out of the greeting's "QMP" object. */
static int parse_version(sv_qmp *q, json_object *qmp, sv_error **err)
{
    json_object *version = NULL, *qemu = NULL;
    sv_qmp_version v = {0};
    if (!json_object_object_get_ex(qmp, "version", &version) ||
        !json_object_object_get_ex(version, "qemu", &qemu) ||
        !json_object_is_type(qemu, json_type_object) || !int_member(qemu, "major", &v.major) ||
        !int_member(qemu, "minor", &v.minor) || !int_member(qemu, "micro", &v.micro))
        return broken(q, err, EPROTO,
                      "the QMP greeting has no valid version (QMP.version.qemu.major/minor/micro)");
    const char *package = string_member(version, "package");
    v.package = package ? package : "";
    q->version = v;
    q->have_version = true;
    if (v.major < SV_QMP_MIN_QEMU_MAJOR ||
        (v.major == SV_QMP_MIN_QEMU_MAJOR && v.minor < SV_QMP_MIN_QEMU_MINOR))
        return broken(q, err, ENOTSUP, "QEMU %d.%d.%d is too old: sandvm needs QEMU %d.%d or later",
                      v.major, v.minor, v.micro, SV_QMP_MIN_QEMU_MAJOR, SV_QMP_MIN_QEMU_MINOR);
    return 0;
}

static int read_greeting(sv_qmp *q, int64_t deadline, sv_error **err)
{
    for (;;) {
        _cleanup_qmp_msg_ sv_qmp_msg m = {0};
        sv_error *e = NULL;
        int r = next_message(q, deadline, &m, &e);
        if (r == -ETIMEDOUT) {
            sv_error_free(e);
            return sv_error_set(err, ETIMEDOUT, "timed out waiting for the QMP greeting");
        }
        if (r < 0) {
            r = sv_error_prefix(&e, "waiting for the QMP greeting");
            move_error(err, e);
            return r;
        }
        if (m.kind == SV_QMP_EVENT)
            continue;
        if (m.kind != SV_QMP_GREETING)
            return broken(q, err, EPROTO, "QMP sent a message before its greeting");
        json_object *v = NULL;
        json_object_object_get_ex(m.obj, "QMP", &v);
        q->greeting = json_object_get(v);
        return parse_version(q, q->greeting, err);
    }
}

int sv_qmp_handshake(sv_qmp *q, int64_t deadline, sv_error **err)
{
    deadline = resolve(q, deadline);
    if (!q->greeting) {
        int r = read_greeting(q, deadline, err);
        if (r < 0)
            return r;
    }
    return sv_qmp_execute(q, "qmp_capabilities", NULL, deadline, NULL, err);
}

/* ---- Arguments: every string valid UTF-8 without NUL. */


/* What is wrong with a string as QMP text, or NULL. */
static const char *string_problem(const char *s, size_t len, size_t *at)
{
    const char *nul = memchr(s, '\0', len);
    size_t bad = sv_utf8_bad_offset((const unsigned char *)s, nul ? (size_t)(nul - s) : len);
    if (bad < (nul ? (size_t)(nul - s) : len)) {
        *at = bad;
        return "invalid UTF-8";
    }
    if (nul) {
        *at = (size_t)(nul - s);
        return "NUL byte";
    }
    return NULL;
}

/* Appends a key to an argument path, printable whatever it holds. */
static void path_key(sv_strbuf *sb, const char *key)
{
    if (sb->len)
        sv_strbuf_append_c(sb, '.');
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f)
            sv_strbuf_append_c(sb, (char)*p);
        else
            sv_strbuf_appendf(sb, "\\x%02x", *p);
    }
}

static int check_strings(json_object *v, sv_strbuf *path, sv_error **err)
{
    size_t at = 0;
    const char *why;
    size_t mark = path->len;
    switch (json_object_get_type(v)) {
    case json_type_string:
        why = string_problem(json_object_get_string(v), (size_t)json_object_get_string_len(v), &at);
        if (why)
            return sv_error_set(err, EINVAL, "argument %s: %s at byte %zu",
                                path->len ? path->s : "(top)", why, at);
        return 0;
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            path_key(path, key);
            if (path->oom)
                return sv_error_set(err, ENOMEM, "out of memory");
            why = string_problem(key, strlen(key), &at);
            if (why)
                return sv_error_set(err, EINVAL, "argument %s: key: %s at byte %zu", path->s, why,
                                    at);
            int r = check_strings(val, path, err);
            if (r < 0)
                return r;
            path->len = mark;
            if (path->s)
                path->s[mark] = '\0';
        }
        return 0;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            sv_strbuf_appendf(path, "[%zu]", i);
            if (path->oom)
                return sv_error_set(err, ENOMEM, "out of memory");
            int r = check_strings(json_object_array_get_idx(v, i), path, err);
            if (r < 0)
                return r;
            path->len = mark;
            if (path->s)
                path->s[mark] = '\0';
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- Commands. */

static bool id_matches(json_object *id, int64_t want)
{
    return id && json_object_is_type(id, json_type_int) && json_object_get_int64(id) == want;
}

/* Sends `len` bytes with `fd` attached to the first of them. */
static int send_with_fd(int sock, const char *buf, size_t len, int fd, int64_t deadline,
                        sv_error **err)
{
    for (;;) {
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof(u));
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        ssize_t n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            return (size_t)n == len
                       ? 0
                       : sv_sock_send_all(sock, buf + n, len - (size_t)n, deadline, err);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return sv_error_errno(err, errno, "sending");
        struct pollfd pf = {.fd = sock, .events = POLLOUT};
        int r = sv_poll_deadline(&pf, 1, deadline, err);
        if (r < 0)
            return r;
        if (r == 0)
            return sv_error_set(err, ETIMEDOUT, "timed out sending");
    }
}

/* The binary of the process behind the watched pidfd (fdinfo's "Pid:"), or
 * NULL. */
static char *watched_exe(const sv_qmp *q)
{
    char path[64], line[128];
    if (q->watch_fd < 0)
        return NULL;
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", q->watch_fd);
    FILE *f = fopen(path, "re");
    long pid = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Pid: %ld", &pid) == 1)
            break;
    if (f)
        fclose(f);
    char exe[4096];
    snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
    ssize_t n = pid > 0 ? readlink(path, exe, sizeof(exe) - 1) : -1;
    return n > 0 ? strndup(exe, (size_t)n) : NULL;
}

/* SANDVM_QMP_TRACE=/abs/file, a debugging aid: every command sent is
 * appended to the file as one line {"exe": the binary of the watched process
 * (the QEMU) or null, "raw": whether a caller gave it as text, "cmd": the
 * command}, so that a test run can be checked against the schema of each
 * QEMU it talked to (tests/vm/qmp_trace_check.c). Failures are ignored. */
static void trace_to_env(const sv_qmp *q, json_object *cmd)
{
    const char *file = getenv("SANDVM_QMP_TRACE");
    if (!file || file[0] != '/')
        return;
    _cleanup_free_ char *exe = watched_exe(q);
    _cleanup_json_ json_object *o = json_object_new_object();
    if (!o || json_object_object_add(o, "exe", exe ? json_object_new_string(exe) : NULL) < 0 ||
        json_object_object_add(o, "raw", json_object_new_boolean(q->sending_raw)) < 0 ||
        json_object_object_add(o, "cmd", json_object_get(cmd)) < 0)
        return;
    const char *text = sv_json_to_string(o);
    _cleanup_free_ char *line = NULL;
    if (!text || asprintf(&line, "%s\n", text) < 0)
        return;
    _cleanup_close_ int fd =
        open(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        (void)!write(fd, line, strlen(line)); /* one write: lines of concurrent writers stay whole */
}

/* Sends `cmd` (an object with "execute"), to which it adds an "id", and waits
 * for the reply with that id. */
static int transact(sv_qmp *q, json_object *cmd, const char *name, int fd, int64_t deadline,
                    json_object **ret, sv_error **err)
{
    deadline = resolve(q, deadline);
    free(q->error_class);
    q->error_class = NULL;
    if (q->broken)
        return sv_error_set(
            err, EPROTO, "qmp %s: QMP connection unusable after an earlier protocol error", name);
    json_object *args = NULL;
    if (json_object_object_get_ex(cmd, "arguments", &args)) {
        sv_strbuf path = SV_STRBUF_INIT;
        sv_error *e = NULL;
        int r = check_strings(args, &path, &e);
        sv_strbuf_free(&path);
        if (r < 0) {
            r = sv_error_prefix(&e, "qmp %s", name);
            move_error(err, e);
            return r;
        }
    }
    int64_t id = q->next_id++;
    if (json_object_object_add(cmd, "id", json_object_new_int64(id)) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    const char *text = sv_json_to_string(cmd);
    q->out.len = 0;
    if (text) {
        sv_strbuf_append(&q->out, text);
        sv_strbuf_append_c(&q->out, '\n');
    }
    if (!text || q->out.oom) {
        sv_strbuf_free(&q->out);
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    if (q->trace)
        q->trace(cmd, NULL, q->trace_opaque);
    trace_to_env(q, cmd);

    sv_error *e = NULL;
    int r = fd >= 0 ? send_with_fd(q->fd, q->out.s, q->out.len, fd, deadline, &e)
                    : sv_sock_send_all(q->fd, q->out.s, q->out.len, deadline, &e);
    if (r < 0) {
        /* part of the line may be out: the next command would be garbage */
        q->broken = true;
        if (r == -EPIPE || r == -ECONNRESET) {
            sv_error_free(e);
            return sv_error_set(err, ECONNRESET, "qmp %s: QMP connection closed", name);
        }
    }
    while (r == 0) {
        _cleanup_qmp_msg_ sv_qmp_msg m = {0};
        r = next_message(q, deadline, &m, &e);
        if (r < 0)
            break;
        if (m.kind == SV_QMP_GREETING) {
            r = broken(q, &e, EPROTO, "QMP sent a second greeting");
        } else if (m.kind == SV_QMP_REPLY && (id_matches(m.id, id) || (!m.id && m.error_class))) {
            /* An error without id answers a line QEMU could not even parse:
             * only ever ours, since we send one command at a time. */
            if (m.error_class) {
                q->error_class = strdup(m.error_class);
                return sv_error_set(err, EIO, "qmp %s: %s: %s", name, m.error_class, m.error_desc);
            }
            if (ret)
                *ret = json_object_get(m.ret);
            return 0;
        }
        /* else an event (queued) or a reply to an earlier command that timed
         * out, or one without id: skip it */
    }
    if (r == -ETIMEDOUT) {
        sv_error_free(e);
        return sv_error_set(err, ETIMEDOUT, "qmp %s: timed out waiting for the reply", name);
    }
    r = sv_error_prefix(&e, "qmp %s", name);
    move_error(err, e);
    return r;
}

int sv_qmp_execute_fd(sv_qmp *q, const char *command, json_object *arguments, int fd,
                      int64_t deadline, json_object **ret, sv_error **err)
{
    /* QMP command names are ASCII identifiers ("query-status", "x-foo",
     * "__com.redhat_x"); anything else is refused before it is sent. */
    size_t clen = command ? strlen(command) : 0;
    bool name_ok = clen > 0 && clen <= 128;
    for (size_t i = 0; name_ok && i < clen; i++) {
        unsigned char ch = (unsigned char)command[i];
        name_ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '-' || ch == '_' || ch == '.';
    }
    if (!name_ok) {
        sv_strbuf shown = SV_STRBUF_INIT;
        path_key(&shown, command ? command : "");
        int r = sv_error_set(err, EINVAL, "invalid QMP command name \"%s\": expected 1-128 of [A-Za-z0-9_.-]",
                             shown.s ? shown.s : "");
        sv_strbuf_free(&shown);
        return r;
    }
    if (arguments && !json_object_is_type(arguments, json_type_object))
        return sv_error_set(err, EINVAL, "qmp %s: arguments must be an object", command);
    _cleanup_json_ json_object *cmd = json_object_new_object();
    if (!cmd || json_object_object_add(cmd, "execute", json_object_new_string(command)) < 0 ||
        (arguments && json_object_object_add(cmd, "arguments", json_object_get(arguments)) < 0))
        return sv_error_set(err, ENOMEM, "out of memory");
    return transact(q, cmd, command, fd, deadline, ret, err);
}

int sv_qmp_execute(sv_qmp *q, const char *command, json_object *arguments, int64_t deadline,
                   json_object **ret, sv_error **err)
{
    return sv_qmp_execute_fd(q, command, arguments, -1, deadline, ret, err);
}

static int hex4(const char *s, size_t left, unsigned *out)
{
    if (left < 4)
        return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* json-c turns an escaped lone surrogate into U+FFFD: refuse it rather than
 * send something other than what was written. */
static int check_surrogates(const char *s, size_t len, sv_error **err)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = s[i] == '"';
            continue;
        }
        if (s[i] == '"') {
            in_string = false;
            continue;
        }
        if (s[i] != '\\' || i + 1 >= len)
            continue;
        unsigned u, lo;
        if (s[i + 1] != 'u' || !hex4(s + i + 2, len - i - 2, &u)) {
            i++; /* an escaped character, e.g. \" */
            continue;
        }
        size_t at = i;
        i += 5;
        if (u >= 0xdc00 && u <= 0xdfff)
            return sv_error_set(err, EINVAL, "invalid JSON at byte %zu: lone surrogate \\u%04X", at,
                                u);
        if (u < 0xd800 || u > 0xdbff)
            continue;
        if (i + 2 < len && s[i + 1] == '\\' && s[i + 2] == 'u' &&
            hex4(s + i + 3, len - i - 3, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
            i += 6;
            continue;
        }
        return sv_error_set(err, EINVAL, "invalid JSON at byte %zu: lone surrogate \\u%04X", at, u);
    }
    return 0;
}

int sv_qmp_parse_command(const char *command_json, json_object **out, sv_error **err)
{
    _cleanup_json_ json_object *cmd = NULL;
    size_t len = strlen(command_json);
    int r = sv_json_parse(command_json, len, &cmd, err);
    if (r < 0)
        return r;
    r = check_surrogates(command_json, len, err);
    if (r < 0)
        return r;
    if (!json_object_is_type(cmd, json_type_object))
        return sv_error_set(err, EINVAL, "expected a JSON object");
    if (!string_member(cmd, "execute"))
        return sv_error_set(err, EINVAL, "\"execute\": expected a string");
    if (json_object_object_get_ex(cmd, "id", NULL))
        return sv_error_set(err, EINVAL, "\"id\": must not be given (sandvm adds its own)");
    json_object *args;
    if (json_object_object_get_ex(cmd, "arguments", &args) &&
        !json_object_is_type(args, json_type_object))
        return sv_error_set(err, EINVAL, "\"arguments\": expected an object");
    if (out)
        *out = TAKE_PTR(cmd);
    return 0;
}

int sv_qmp_execute_text(sv_qmp *q, const char *command_json, int64_t deadline, char **ret_json,
                        sv_error **err)
{
    _cleanup_json_ json_object *cmd = NULL;
    int r = sv_qmp_parse_command(command_json, &cmd, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *name = strdup(string_member(cmd, "execute"));
    if (!name)
        return sv_error_set(err, ENOMEM, "out of memory");
    _cleanup_json_ json_object *ret = NULL;
    q->sending_raw = true;
    r = transact(q, cmd, name, -1, deadline, &ret, err);
    q->sending_raw = false;
    if (r < 0)
        return r;
    if (ret_json) {
        const char *text = sv_json_to_string(ret);
        *ret_json = strdup(text ? text : "null");
        if (!*ret_json)
            return sv_error_set(err, ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- Waiting for events and for the end. */

static bool event_matches(const sv_qmp_msg *m, const char *name, const char *key, const char *value)
{
    if (name && strcmp(m->event, name) != 0)
        return false;
    if (!key)
        return true;
    const char *v = m->data ? string_member(m->data, key) : NULL;
    return v && value && !strcmp(v, value);
}

int sv_qmp_wait_event(sv_qmp *q, const char *name, const char *data_key, const char *data_value,
                      int64_t deadline, sv_qmp_msg *out, sv_error **err)
{
    deadline = resolve(q, deadline);
    for (size_t i = 0; i < q->ev_count; i++) {
        if (event_matches(ev_at(q, i), name, data_key, data_value)) {
            ev_take(q, i, out);
            return 0;
        }
    }
    for (;;) {
        _cleanup_qmp_msg_ sv_qmp_msg m = {0};
        sv_error *e = NULL;
        int r = next_message(q, deadline, &m, &e);
        if (r == 0 && m.kind == SV_QMP_GREETING)
            r = broken(q, &e, EPROTO, "QMP sent a second greeting");
        if (r == -ETIMEDOUT) {
            sv_error_free(e);
            return sv_error_set(err, ETIMEDOUT, "timed out waiting for event %s",
                                name ? name : "(any)");
        }
        if (r < 0) {
            r = sv_error_prefix(&e, "waiting for event %s", name ? name : "(any)");
            move_error(err, e);
            return r;
        }
        if (m.kind == SV_QMP_EVENT && q->ev_count > 0 &&
            event_matches(ev_at(q, q->ev_count - 1), name, data_key, data_value)) {
            ev_take(q, q->ev_count - 1, out);
            return 0;
        }
    }
}

int sv_qmp_wait_closed(sv_qmp *q, int64_t deadline, sv_error **err)
{
    deadline = resolve(q, deadline);
    for (;;) {
        _cleanup_qmp_msg_ sv_qmp_msg m = {0};
        sv_error *e = NULL;
        int r = next_message(q, deadline, &m, &e);
        if (r == 0)
            continue;
        if (r == -ECONNRESET || r == -ECHILD) {
            sv_error_free(e);
            return 0;
        }
        if (r == -ETIMEDOUT) {
            sv_error_free(e);
            return sv_error_set(err, ETIMEDOUT, "timed out waiting for QMP to close");
        }
        r = sv_error_prefix(&e, "waiting for QMP to close");
        move_error(err, e);
        return r;
    }
}
