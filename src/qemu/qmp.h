/*
 * A QMP client. QMP is line-framed JSON: each message is one line. Every line
 * goes through sv_qmp_classify(), the one place that decides what a message is
 * (greeting, reply, event or garbage).
 *
 * Rules the client keeps, whatever the peer does:
 * - Every command carries an "id" and every wait has a deadline (absolute
 *   CLOCK_MONOTONIC milliseconds, see util/sock.h; SV_QMP_DEADLINE_DEFAULT
 *   means "the client's default timeout from now", 10 s unless changed).
 *   A QEMU that never greets (a stopped process) or never answers is a
 *   timeout, never a hang; a dropped socket is ECONNRESET.
 * - A reply whose id is not the awaited one (left over from a command that
 *   timed out) is skipped, so the connection stays usable after a timeout.
 * - Events are never taken for replies and never lost silently: every event
 *   read, whenever it arrives (before the greeting, while a command is in
 *   flight, while waiting for another event), is passed to the event handler
 *   and appended to a bounded queue. When the queue is full the OLDEST queued
 *   event is dropped and counted (sv_qmp_events_dropped()): a command never
 *   fails because nobody consumed events, and the newest events, which tell
 *   the current state of the VM, are the ones kept.
 * - A message longer than the size cap (SV_QMP_MAX_MESSAGE unless changed)
 *   or a line that is not QMP makes the connection unusable (EPROTO): the
 *   reply it hid cannot be told from another.
 * - Arguments are built with json-c only; every string in them (keys too)
 *   must be valid UTF-8 without NUL bytes, else the command is refused before
 *   anything is sent (EINVAL naming the argument). Everything else (quotes,
 *   backslashes, control characters, U+2028, non-ASCII) round-trips exactly.
 *
 * A client is not thread-safe: one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "util/error.h"

/* The longest message accepted by default, newline excluded (QEMU 7.2's
 * query-qmp-schema reply, the longest in practice, is about 200 KiB). */
#define SV_QMP_MAX_MESSAGE (1024 * 1024)
/* The default of the timeout that SV_QMP_DEADLINE_DEFAULT stands for. */
#define SV_QMP_DEFAULT_TIMEOUT_MS 10000
/* A deadline meaning "the client's default timeout from now". (0 as an
 * absolute CLOCK_MONOTONIC time is always in the past, so it cannot be
 * meant literally.) */
#define SV_QMP_DEADLINE_DEFAULT INT64_C(0)
/* The default bound of the event queue. */
#define SV_QMP_EVENT_QUEUE_MAX 256
/* The oldest QEMU the client talks to. */
#define SV_QMP_MIN_QEMU_MAJOR 7
#define SV_QMP_MIN_QEMU_MINOR 0

typedef enum {
    SV_QMP_GARBAGE,  /* not a JSON object, or not one of the forms below */
    SV_QMP_GREETING, /* {"QMP": {...}} */
    SV_QMP_REPLY,    /* {"return": any} or {"error": {"class": s, "desc": s}}, optional "id" */
    SV_QMP_EVENT,    /* {"event": s, ...} */
} sv_qmp_kind;

/* The events sandvm acts on, by name; every other name is SV_QMP_EV_UNKNOWN
 * (still queued and handed to the handler like the others). */
typedef enum {
    SV_QMP_EV_UNKNOWN,
    SV_QMP_EV_SHUTDOWN,
    SV_QMP_EV_POWERDOWN,
    SV_QMP_EV_RESET,
    SV_QMP_EV_STOP,
    SV_QMP_EV_RESUME,
    SV_QMP_EV_SUSPEND,
    SV_QMP_EV_WAKEUP,
    SV_QMP_EV_GUEST_PANICKED,
    SV_QMP_EV_DEVICE_DELETED,
    SV_QMP_EV_DEVICE_UNPLUG_GUEST_ERROR,
    SV_QMP_EV_ACPI_DEVICE_OST,
    SV_QMP_EV_BALLOON_CHANGE,
    SV_QMP_EV_MEMORY_DEVICE_SIZE_CHANGE,
    SV_QMP_EV_MIGRATION,
    SV_QMP_EV_MIGRATION_PASS,
    SV_QMP_EV_VSERPORT_CHANGE,
    SV_QMP_EV_NIC_RX_FILTER_CHANGED,
    SV_QMP_EV_BLOCK_IO_ERROR,
    SV_QMP_EV_JOB_STATUS_CHANGE,
    SV_QMP_EV_WATCHDOG,
    SV__QMP_EV_MAX
} sv_qmp_event_id;

/* The event's QMP name ("SHUTDOWN"); "" for SV_QMP_EV_UNKNOWN. */
const char *sv_qmp_event_name(sv_qmp_event_id id);
/* The id of an event name; SV_QMP_EV_UNKNOWN for names not in the table. */
sv_qmp_event_id sv_qmp_event_lookup(const char *name);

typedef struct sv_qmp_msg {
    sv_qmp_kind kind;
    json_object *obj;        /* the message; owned, NULL for garbage */
    json_object *id;         /* reply: its "id", NULL when absent (borrowed from obj) */
    json_object *ret;        /* reply: "return", NULL for an error reply (borrowed) */
    const char *error_class; /* error reply: class and desc (borrowed), else NULL */
    const char *error_desc;
    const char *event;        /* event: its name (borrowed) */
    sv_qmp_event_id event_id; /* event: the name looked up in the event table */
    json_object *data;        /* event: its "data", NULL when absent (borrowed) */
    /* event: "timestamp" in microseconds since the epoch, -1 when absent or
     * not a pair of non-negative integers */
    int64_t timestamp_us;
} sv_qmp_msg;

/* Classifies one line (`len` bytes, without its newline; a trailing "\r" is
 * allowed). Fills *msg (free with sv_qmp_msg_clear()) and returns msg->kind. */
sv_qmp_kind sv_qmp_classify(const char *line, size_t len, sv_qmp_msg *msg);
void sv_qmp_msg_clear(sv_qmp_msg *msg);
/* Moves *src into *dst (which must be clear) and clears *src. */
void sv_qmp_msg_move(sv_qmp_msg *dst, sv_qmp_msg *src);

typedef struct sv_qmp sv_qmp;
typedef void (*sv_qmp_event_fn)(const sv_qmp_msg *event, void *opaque);
/* Sees every command line as sent (`cmd`, borrowed: "execute", "arguments"
 * and "id") and every valid message as received (`msg`); the other one is
 * NULL. For logs and for tests that check what was sent. */
typedef void (*sv_qmp_trace_fn)(json_object *cmd, const sv_qmp_msg *msg, void *opaque);

/* A client on the connected stream socket `fd`, which it takes over (closing
 * it in sv_qmp_free(), and at once when allocation fails: NULL). */
sv_qmp *sv_qmp_new(int fd);
/* Closes the connection and frees the client and its queued events; NULL is
 * accepted. */
void sv_qmp_free(sv_qmp *q);

/* While a read waits and nothing can be read, a readable `fd` (e.g. the pidfd
 * of the QMP server's process) ends the wait with ECHILD "QMP peer exited".
 * -1 (the default) watches nothing. The fd stays owned by the caller. */
void sv_qmp_set_watch_fd(sv_qmp *q, int fd);
/* Every event is passed to `fn` as it is read (before it is queued). `fn`
 * must not call back into the client. */
void sv_qmp_set_event_handler(sv_qmp *q, sv_qmp_event_fn fn, void *opaque);
void sv_qmp_set_trace(sv_qmp *q, sv_qmp_trace_fn fn, void *opaque);
/* The timeout SV_QMP_DEADLINE_DEFAULT stands for; ms > 0. */
void sv_qmp_set_default_timeout(sv_qmp *q, int ms);
/* `deadline` as an absolute time: SV_QMP_DEADLINE_DEFAULT becomes the
 * default timeout from now, any other value is returned as is. For callers
 * that chain several steps under one bound. */
int64_t sv_qmp_deadline(const sv_qmp *q, int64_t deadline);
/* The message size cap, at least 4096 (smaller values are raised to it). A
 * cap below the length of a message already buffered takes effect on the
 * next message. */
void sv_qmp_set_max_message(sv_qmp *q, size_t bytes);
size_t sv_qmp_max_message(const sv_qmp *q);

/* Reads the greeting (events before it are queued, as QEMU may emit some,
 * e.g. VSERPORT_CHANGE), checks QEMU's version and negotiates capabilities
 * (qmp_capabilities, no optional capability enabled). Errors:
 *   ETIMEDOUT  "timed out waiting for the QMP greeting" (e.g. a stopped QEMU),
 *   ECONNRESET "waiting for the QMP greeting: QMP connection closed",
 *   EPROTO     a reply or garbage before the greeting, or a greeting without
 *              a valid QMP.version.qemu {major, minor, micro},
 *   ENOTSUP    "QEMU 6.2.0 is too old: sandvm needs QEMU 7.0 or later",
 *   and those of sv_qmp_execute() for qmp_capabilities.
 * After EPROTO or ENOTSUP the client refuses every later command. */
int sv_qmp_handshake(sv_qmp *q, int64_t deadline, sv_error **err);
/* The greeting's "QMP" object after sv_qmp_handshake() (borrowed), or NULL. */
json_object *sv_qmp_greeting(const sv_qmp *q);

typedef struct sv_qmp_version {
    int major, minor, micro;
    const char *package; /* "Debian 1:7.2+dfsg-7", "" when absent; owned by the client */
} sv_qmp_version;
/* QEMU's version from the greeting, or NULL before a greeting was read. */
const sv_qmp_version *sv_qmp_qemu_version(const sv_qmp *q);

/* Runs `command` with `arguments` (an object or NULL; borrowed) and waits
 * for its reply until `deadline`. On success *ret (if ret is not NULL)
 * receives a new reference to the "return" value (NULL for JSON null). Errors:
 *   EINVAL     an argument string is not valid UTF-8 or holds a NUL byte:
 *              "qmp CMD: argument backend.data.addr.data.path: invalid UTF-8
 *              at byte 3" (nothing was sent),
 *   EIO        "qmp CMD: CLASS: DESC" (QEMU refused the command),
 *   ETIMEDOUT  "qmp CMD: timed out waiting for the reply",
 *   ECONNRESET "qmp CMD: QMP connection closed",
 *   EPROTO     the peer sent something that is not QMP, or a line over the
 *              size cap (the connection is then unusable),
 *   ECHILD     the watched fd became readable.
 * After a timeout the connection stays usable (a late reply is skipped by its
 * id), except when the command itself could not be sent whole. Events read
 * meanwhile are queued. */
int sv_qmp_execute(sv_qmp *q, const char *command, json_object *arguments, int64_t deadline,
                   json_object **ret, sv_error **err);
/* The error class of the last command QEMU refused ("GenericError",
 * "CommandNotFound", "DeviceNotFound", "KVMMissingCap"...), for callers that
 * act on it; NULL when the last command did not end in an error reply.
 * Owned by the client, valid until the next command. */
const char *sv_qmp_error_class(const sv_qmp *q);
/* As sv_qmp_execute(), sending `fd` (still owned by the caller) as
 * SCM_RIGHTS ancillary data on the same sendmsg() as the command's first
 * byte: what getfd and add-fd expect. fd < 0 sends none. */
int sv_qmp_execute_fd(sv_qmp *q, const char *command, json_object *arguments, int fd,
                      int64_t deadline, json_object **ret, sv_error **err);
/* Parses and checks a command given as JSON text: an object with a string
 * "execute", no "id", and no "\uD800"-style escape of a lone surrogate (which
 * would not round-trip). On success *out (if not NULL) receives it. EINVAL
 * otherwise, with a message that leaves naming the command to the caller. */
int sv_qmp_parse_command(const char *command_json, json_object **out, sv_error **err);
/* The raw passthrough: as sv_qmp_execute() for a command given as JSON text,
 * an object with "execute" and optionally "arguments", without "id" (see
 * sv_qmp_parse_command()). On success *ret_json (if not NULL) receives the
 * "return" value as newly allocated compact JSON text. */
int sv_qmp_execute_text(sv_qmp *q, const char *command_json, int64_t deadline, char **ret_json,
                        sv_error **err);

/* Reads the next message off the socket, whatever it is (garbage included,
 * as a message of kind SV_QMP_GARBAGE), bypassing the event queue and the
 * handler. Errors as for sv_qmp_execute(), without a command. */
int sv_qmp_read_msg(sv_qmp *q, int64_t deadline, sv_qmp_msg *msg, sv_error **err);

/* ---- Events. */

/* Events queued and not yet taken. */
size_t sv_qmp_event_count(const sv_qmp *q);
/* Events dropped because the queue was full, since the client was created. */
uint64_t sv_qmp_events_dropped(const sv_qmp *q);
/* The queue's bound (at least 1). Shrinking it drops the oldest events. */
void sv_qmp_set_event_queue_max(sv_qmp *q, size_t n);
/* Takes the oldest queued event into *out (free with sv_qmp_msg_clear()),
 * without reading the socket. Returns 1, or 0 when the queue is empty. */
int sv_qmp_pop_event(sv_qmp *q, sv_qmp_msg *out);
/* Waits for an event named `name` (NULL: any) whose data member `data_key`
 * is the string `data_value` (data_key NULL: any data). The queue is searched
 * first, oldest first, so an event that arrived before the wait (e.g.
 * DEVICE_DELETED before device_del's reply) is found; then messages are read
 * until one matches, queueing other events and skipping stale replies. The
 * matching event is removed from the queue and moved into *out (may be NULL).
 * Errors: ETIMEDOUT "timed out waiting for event NAME", and the connection
 * errors of sv_qmp_execute(). */
int sv_qmp_wait_event(sv_qmp *q, const char *name, const char *data_key, const char *data_value,
                      int64_t deadline, sv_qmp_msg *out, sv_error **err);
/* Reads until the peer closes the connection (queueing events, skipping
 * replies): 0 at end of stream, or when the watched fd fires (the peer
 * exited). ETIMEDOUT "timed out waiting for QMP to close" when it stays
 * open. */
int sv_qmp_wait_closed(sv_qmp *q, int64_t deadline, sv_error **err);

static inline void sv_qmp_freep(sv_qmp **q)
{
    sv_qmp_free(*q);
}
#define _cleanup_qmp_ __attribute__((cleanup(sv_qmp_freep)))

static inline void sv_qmp_msg_clearp(sv_qmp_msg *m)
{
    sv_qmp_msg_clear(m);
}
#define _cleanup_qmp_msg_ __attribute__((cleanup(sv_qmp_msg_clearp)))
