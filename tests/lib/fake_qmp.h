/*
 * A scripted fake QMP server for tests: it plays a script of steps (send a
 * greeting, expect a command, reply, emit events, sleep, send garbage, close)
 * against the client on the other end of a unix socket, from its own thread,
 * and records every command it received (and every fd passed with one) for
 * the test to inspect afterwards. It produces on demand what a real QEMU will
 * not: silence, garbage, oversized lines, late replies, floods, early closes.
 *
 * Expectations are checked in the fake's thread and reported by
 * fake_qmp_finish() as one message (the fake never calls cmocka, which is not
 * thread-safe). Every read of the fake has a bound (FAKE_QMP_IO_TIMEOUT_MS),
 * so a test that goes wrong fails instead of hanging.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#define FAKE_QMP_IO_TIMEOUT_MS 10000

typedef enum {
    FQ_GREETING,  /* the greeting of QEMU n / 10000 . n / 100 % 100 . n % 100, caps ["oob"] */
    FQ_SEND,      /* write `text` + "\n"; every "%ID%" becomes the last command's id */
    FQ_RAW,       /* write `n` bytes of `text` as they are (no newline, no substitution) */
    FQ_EXPECT,    /* read one command: "execute" must be `text`; `json`: NULL = any
                   * arguments, "" = no "arguments", else "arguments" must equal it */
    FQ_EXPECT_FD, /* as FQ_EXPECT, and an fd must come with the command */
    FQ_RETURN,    /* {"return": json (NULL: {}), "id": <id>} */
    FQ_ERROR,     /* {"error": {"class": text, "desc": json (a plain string)}, "id": <id>} */
    FQ_EVENT,     /* {"event": text, "data": json (NULL: none), "timestamp": ...} */
    FQ_FLOOD,     /* `n` events named `text`, data {"seq": i} */
    FQ_BIG,       /* {"id": <id>, "return": "xxx..."}: a line of exactly `n` bytes */
    FQ_SLEEP,     /* sleep `n` ms */
    FQ_CLOSE,     /* close the connection, ending the script */
    FQ_HOLD,      /* keep the connection open, reading and ignoring, until the client closes */
} fq_op;

typedef struct fq_step {
    fq_op op;
    const char *text;
    const char *json;
    size_t n;
} fq_step;

/* clang-format off */
#define FQ_GREET()                  {FQ_GREETING, NULL, NULL, 70200}
#define FQ_GREET_VERSION(v)         {FQ_GREETING, NULL, NULL, (v)}
#define FQ_EXPECT_CMD(cmd)          {FQ_EXPECT, (cmd), NULL, 0}
#define FQ_EXPECT_ARGS(cmd, args)   {FQ_EXPECT, (cmd), (args), 0}
#define FQ_EXPECT_NOARGS(cmd)       {FQ_EXPECT, (cmd), "", 0}
#define FQ_EXPECT_WITH_FD(cmd, args) {FQ_EXPECT_FD, (cmd), (args), 0}
#define FQ_OK()                     {FQ_RETURN, NULL, NULL, 0}
#define FQ_RET(json)                {FQ_RETURN, NULL, (json), 0}
#define FQ_ERR(cls, desc)           {FQ_ERROR, (cls), (desc), 0}
#define FQ_EV(name, data)           {FQ_EVENT, (name), (data), 0}
#define FQ_LINE(text)               {FQ_SEND, (text), NULL, 0}
#define FQ_BYTES(text, len)         {FQ_RAW, (text), NULL, (len)}
#define FQ_FLOOD_EVENTS(name, n)    {FQ_FLOOD, (name), NULL, (n)}
#define FQ_BIG_REPLY(n)             {FQ_BIG, NULL, NULL, (n)}
#define FQ_SLEEP_MS(ms)             {FQ_SLEEP, NULL, NULL, (ms)}
#define FQ_CLOSE_NOW()              {FQ_CLOSE, NULL, NULL, 0}
#define FQ_HOLD_OPEN()              {FQ_HOLD, NULL, NULL, 0}
/* greeting + qmp_capabilities */
#define FQ_HANDSHAKE()              FQ_GREET(), FQ_EXPECT_NOARGS("qmp_capabilities"), FQ_OK()
/* clang-format on */

typedef struct fake_qmp fake_qmp;

/* Starts the fake on one end of a new socketpair; *client_fd receives the
 * other end (close-on-exec), for sv_qmp_new(). The script (and the strings
 * it points to) must outlive the fake. After the last step the fake waits
 * for the client to close, and any command that still comes is a failure. */
fake_qmp *fake_qmp_start(const fq_step *script, size_t n, int *client_fd);
/* Starts the fake listening at the unix socket `path` (which must not
 * exist); it accepts one connection, then plays the script. The socket file
 * is removed by fake_qmp_free(). */
fake_qmp *fake_qmp_start_path(const fq_step *script, size_t n, const char *path);

/* Waits for the fake's thread to end (the client must close its end unless
 * the script closes first) and returns NULL when every expectation held,
 * else what went wrong first (owned by the fake). */
const char *fake_qmp_finish(fake_qmp *f);

/* After fake_qmp_finish(): the commands received, in order (borrowed). */
size_t fake_qmp_commands(const fake_qmp *f);
json_object *fake_qmp_command(const fake_qmp *f, size_t i);
/* After fake_qmp_finish(): the fd received with command i, or -1 (owned by
 * the fake, closed by fake_qmp_free()). */
int fake_qmp_command_fd(const fake_qmp *f, size_t i);
/* After fake_qmp_finish(): the step at which the client went away while the
 * fake was writing, or -1. */
long fake_qmp_client_gone_at(const fake_qmp *f);

/* Finishes the fake if needed and frees it; NULL is accepted. */
void fake_qmp_free(fake_qmp *f);
