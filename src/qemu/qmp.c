#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "qemu/qmp.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/sock.h"
#include "util/strbuf.h"

struct sv_qmp {
    int fd;
    int watch_fd;
    char *buf; /* received bytes not yet returned as lines */
    size_t len, cap;
    size_t scanned;  /* buf[0..scanned) holds no newline */
    size_t consumed; /* length of the line handed out last, dropped on the next read */
    bool eof;
    bool broken; /* framing lost: every later call fails */
    int64_t next_id;
    json_object *greeting;
    sv_qmp_event_fn on_event;
    void *opaque;
};

/* ---- Classification: the one function that decides what a line is. */

static const char *string_member(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

sv_qmp_kind sv_qmp_classify(const char *line, size_t len, sv_qmp_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
    if (len > 0 && line[len - 1] == '\r')
        len--;
    json_object *o = NULL;
    if (sv_json_parse(line, len, &o, NULL) < 0 || !json_object_is_type(o, json_type_object)) {
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
    } else {
        json_object_put(o);
        return msg->kind = SV_QMP_GARBAGE;
    }
    msg->obj = o;
    return msg->kind;
}

void sv_qmp_msg_clear(sv_qmp_msg *msg)
{
    json_object_put(msg->obj);
    memset(msg, 0, sizeof(*msg));
}

/* ---- Client. */

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
    return q;
}

void sv_qmp_free(sv_qmp *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    free(q->buf);
    json_object_put(q->greeting);
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

json_object *sv_qmp_greeting(const sv_qmp *q)
{
    return q->greeting;
}

/* Hands a local error to the caller's (or drops it when the caller has one). */
static void move_error(sv_error **err, sv_error *e)
{
    if (err && !*err)
        *err = e;
    else
        sv_error_free(e);
}

static int broken(sv_qmp *q, sv_error **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int broken(sv_qmp *q, sv_error **err, const char *fmt, ...)
{
    q->broken = true;
    va_list ap;
    va_start(ap, fmt);
    int r = sv_error_setv(err, EPROTO, fmt, ap);
    va_end(ap);
    return r;
}

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
        if (nl) {
            *line = q->buf;
            *len = (size_t)(nl - q->buf);
            q->consumed = *len + 1;
            return 0;
        }
        q->scanned = q->len;
        if (q->len > SV_QMP_MAX_MESSAGE)
            return broken(q, err, "QMP message longer than %d bytes", SV_QMP_MAX_MESSAGE);
        if (q->eof)
            return sv_error_set(err, ECONNRESET,
                                q->len ? "QMP connection closed in the middle of a message"
                                       : "QMP connection closed");
        if (q->cap - q->len < 4096 && q->cap < SV_QMP_MAX_MESSAGE + 1) {
            size_t cap = q->cap ? q->cap * 2 : 65536;
            if (cap > SV_QMP_MAX_MESSAGE + 1)
                cap = SV_QMP_MAX_MESSAGE + 1;
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
    int r = read_line(q, deadline, &line, &len, err);
    if (r < 0)
        return r;
    sv_qmp_classify(line, len, msg);
    return 0;
}

/* Reads the next message that is not garbage; garbage breaks the connection. */
static int read_valid(sv_qmp *q, int64_t deadline, sv_qmp_msg *msg, sv_error **err)
{
    const char *line;
    size_t len;
    int r = read_line(q, deadline, &line, &len, err);
    if (r < 0)
        return r;
    if (sv_qmp_classify(line, len, msg) == SV_QMP_GARBAGE) {
        _cleanup_free_ char *bad = excerpt(line, len);
        return broken(q, err, "QMP sent an invalid message: %s", bad ? bad : "?");
    }
    return 0;
}

int sv_qmp_handshake(sv_qmp *q, int64_t deadline, sv_error **err)
{
    if (!q->greeting) {
        sv_qmp_msg m;
        sv_error *e = NULL;
        int r = read_valid(q, deadline, &m, &e);
        if (r == -ETIMEDOUT) {
            sv_error_free(e);
            return sv_error_set(err, ETIMEDOUT, "timed out waiting for the QMP greeting");
        }
        if (r < 0) {
            r = sv_error_prefix(&e, "waiting for the QMP greeting");
            move_error(err, e);
            return r;
        }
        if (m.kind != SV_QMP_GREETING) {
            sv_qmp_msg_clear(&m);
            return broken(q, err, "QMP sent a message before its greeting");
        }
        json_object *v = NULL;
        json_object_object_get_ex(m.obj, "QMP", &v);
        q->greeting = json_object_get(v);
        sv_qmp_msg_clear(&m);
    }
    return sv_qmp_execute(q, "qmp_capabilities", NULL, deadline, NULL, err);
}

static bool id_matches(json_object *id, int64_t want)
{
    return id && json_object_is_type(id, json_type_int) && json_object_get_int64(id) == want;
}

/* Sends `cmd` (an object with "execute"), to which it adds an "id", and waits
 * for the reply with that id. */
static int transact(sv_qmp *q, json_object *cmd, const char *name, int64_t deadline,
                    json_object **ret, sv_error **err)
{
    if (q->broken)
        return sv_error_set(
            err, EPROTO, "qmp %s: QMP connection unusable after an earlier protocol error", name);
    int64_t id = q->next_id++;
    if (json_object_object_add(cmd, "id", json_object_new_int64(id)) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    const char *text = sv_json_to_string(cmd);
    _cleanup_free_ char *line = NULL;
    if (!text || asprintf(&line, "%s\n", text) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");

    sv_error *e = NULL;
    int r = sv_sock_send_all(q->fd, line, strlen(line), deadline, &e);
    if (r < 0) {
        /* part of the line may be out: the next command would be garbage */
        q->broken = true;
        if (r == -EPIPE || r == -ECONNRESET) {
            sv_error_free(e);
            return sv_error_set(err, ECONNRESET, "qmp %s: QMP connection closed", name);
        }
    }
    while (r == 0) {
        sv_qmp_msg m;
        r = read_valid(q, deadline, &m, &e);
        if (r < 0)
            break;
        if (m.kind == SV_QMP_EVENT) {
            if (q->on_event)
                q->on_event(&m, q->opaque);
        } else if (m.kind == SV_QMP_GREETING) {
            r = broken(q, &e, "QMP sent a second greeting");
        } else if (id_matches(m.id, id) || (!m.id && m.error_class)) {
            /* An error without id answers a line QEMU could not even parse:
             * only ever ours, since we send one command at a time. */
            if (m.error_class) {
                r = sv_error_set(err, EIO, "qmp %s: %s: %s", name, m.error_class, m.error_desc);
            } else if (ret) {
                *ret = json_object_get(m.ret);
            }
            sv_qmp_msg_clear(&m);
            return r;
        }
        /* else a reply to an earlier command that timed out: skip it */
        sv_qmp_msg_clear(&m);
    }
    if (r == -ETIMEDOUT) {
        sv_error_free(e);
        return sv_error_set(err, ETIMEDOUT, "qmp %s: timed out waiting for the reply", name);
    }
    r = sv_error_prefix(&e, "qmp %s", name);
    move_error(err, e);
    return r;
}

int sv_qmp_execute(sv_qmp *q, const char *command, json_object *arguments, int64_t deadline,
                   json_object **ret, sv_error **err)
{
    _cleanup_json_ json_object *cmd = json_object_new_object();
    if (!cmd || json_object_object_add(cmd, "execute", json_object_new_string(command)) < 0 ||
        (arguments && json_object_object_add(cmd, "arguments", json_object_get(arguments)) < 0))
        return sv_error_set(err, ENOMEM, "out of memory");
    return transact(q, cmd, command, deadline, ret, err);
}

int sv_qmp_parse_command(const char *command_json, json_object **out, sv_error **err)
{
    _cleanup_json_ json_object *cmd = NULL;
    int r = sv_json_parse(command_json, strlen(command_json), &cmd, err);
    if (r < 0)
        return r;
    if (!json_object_is_type(cmd, json_type_object))
        return sv_error_set(err, EINVAL, "expected a JSON object");
    if (!string_member(cmd, "execute"))
        return sv_error_set(err, EINVAL, "\"execute\": expected a string");
    if (json_object_object_get_ex(cmd, "id", NULL))
        return sv_error_set(err, EINVAL, "\"id\": must not be given (sandvm adds its own)");
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
    r = transact(q, cmd, name, deadline, &ret, err);
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
