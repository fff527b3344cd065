/*
 * A QMP client. QMP is line-framed JSON: each message is one line. Every line
 * goes through sv_qmp_classify(), the one place that decides what a message is.
 * Every command carries an "id" and every wait has a deadline; a reply whose id
 * is not the awaited one (left over from a command that timed out) is skipped,
 * events are handed to the event handler (or dropped) while a reply is awaited.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "util/error.h"

/* The longest message accepted, newline excluded. */
#define SV_QMP_MAX_MESSAGE (1024 * 1024)

typedef enum {
    SV_QMP_GARBAGE,  /* not a JSON object, or not one of the forms below */
    SV_QMP_GREETING, /* {"QMP": {...}} */
    SV_QMP_REPLY,    /* {"return": any} or {"error": {"class": s, "desc": s}}, optional "id" */
    SV_QMP_EVENT,    /* {"event": s, ...} */
} sv_qmp_kind;

typedef struct sv_qmp_msg {
    sv_qmp_kind kind;
    json_object *obj;        /* the message; owned, NULL for garbage */
    json_object *id;         /* reply: its "id", NULL when absent (borrowed from obj) */
    json_object *ret;        /* reply: "return", NULL for an error reply (borrowed) */
    const char *error_class; /* error reply: class and desc (borrowed), else NULL */
    const char *error_desc;
    const char *event; /* event: its name (borrowed) */
} sv_qmp_msg;

/* Classifies one line (`len` bytes, without its newline; a trailing "\r" is
 * allowed). Fills *msg (free with sv_qmp_msg_clear()) and returns msg->kind. */
sv_qmp_kind sv_qmp_classify(const char *line, size_t len, sv_qmp_msg *msg);
void sv_qmp_msg_clear(sv_qmp_msg *msg);

typedef struct sv_qmp sv_qmp;
typedef void (*sv_qmp_event_fn)(const sv_qmp_msg *event, void *opaque);

/* A client on the connected stream socket `fd`, which it takes over (closing
 * it in sv_qmp_free(), and at once when allocation fails: NULL). */
sv_qmp *sv_qmp_new(int fd);
void sv_qmp_free(sv_qmp *q);

/* While a read waits and nothing can be read, a readable `fd` (e.g. the pidfd
 * of the QMP server's process) ends the wait with ECHILD "QMP peer exited".
 * -1 (the default) watches nothing. The fd stays owned by the caller. */
void sv_qmp_set_watch_fd(sv_qmp *q, int fd);
/* Events that arrive while a reply is awaited are passed to `fn`. */
void sv_qmp_set_event_handler(sv_qmp *q, sv_qmp_event_fn fn, void *opaque);

/* Reads the greeting and negotiates capabilities (qmp_capabilities). */
int sv_qmp_handshake(sv_qmp *q, int64_t deadline, sv_error **err);
/* The greeting's "QMP" object after sv_qmp_handshake() (borrowed), or NULL. */
json_object *sv_qmp_greeting(const sv_qmp *q);

/* Runs `command` with `arguments` (an object or NULL; borrowed) and waits
 * for its reply until `deadline`. On success *ret (if ret is not NULL)
 * receives a new reference to the "return" value (NULL for JSON null). Errors:
 *   EIO        "qmp CMD: CLASS: DESC" (QEMU refused the command),
 *   ETIMEDOUT  "qmp CMD: timed out waiting for the reply",
 *   ECONNRESET "qmp CMD: QMP connection closed",
 *   EPROTO     the peer sent something that is not QMP, or a line over
 *              SV_QMP_MAX_MESSAGE (the connection is then unusable),
 *   ECHILD     the watched fd became readable.
 * After a timeout the connection stays usable (a late reply is skipped by its
 * id), except when the command itself could not be sent whole. */
int sv_qmp_execute(sv_qmp *q, const char *command, json_object *arguments, int64_t deadline,
                   json_object **ret, sv_error **err);
/* Parses and checks a command given as JSON text: an object with a string
 * "execute" and no "id". On success *out (if not NULL) receives it. EINVAL
 * otherwise, with a message that leaves naming the command to the caller. */
int sv_qmp_parse_command(const char *command_json, json_object **out, sv_error **err);
/* As sv_qmp_execute() for a command given as JSON text: an object with
 * "execute" and optionally "arguments", without "id" (see
 * sv_qmp_parse_command()). On
 * success *ret_json (if not NULL) receives the "return" value as newly
 * allocated compact JSON text. */
int sv_qmp_execute_text(sv_qmp *q, const char *command_json, int64_t deadline, char **ret_json,
                        sv_error **err);

/* Reads the next message, whatever it is (garbage included, as a message of
 * kind SV_QMP_GARBAGE). Errors as for sv_qmp_execute(), without a command. */
int sv_qmp_read_msg(sv_qmp *q, int64_t deadline, sv_qmp_msg *msg, sv_error **err);

static inline void sv_qmp_freep(sv_qmp **q)
{
    sv_qmp_free(*q);
}
#define _cleanup_qmp_ __attribute__((cleanup(sv_qmp_freep)))
