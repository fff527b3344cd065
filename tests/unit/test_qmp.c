/*
 * The QMP client against a scripted peer: a forked process on the other end of
 * a socketpair that sends and answers exactly what a test says, including the
 * failures a real QEMU will not produce on demand.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "qemu/qmp.h"
#include "util/cleanup.h"
#include "util/sock.h"
#include "util/strbuf.h"

/* ---- The scripted peer. */

typedef enum {
    P_SEND,  /* write `text` and a newline */
    P_RAW,   /* write `text` as is */
    P_BIG,   /* reply with the remembered id and a string of 'x': `n` bytes, newline excluded */
    P_RECV,  /* read one line: the command; remember its "id" */
    P_REPLY, /* write `text` with "%s" replaced by the remembered id, and a newline */
    P_CLOSE, /* close the connection at once */
    P_END,   /* keep the connection open until the client closes it */
} peer_op;

typedef struct step {
    peer_op op;
    const char *text;
    size_t n;
} step;

/* clang-format off */
#define GREETING                                                                                   \
    {P_SEND, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, "   \
             "\"capabilities\": [\"oob\"]}}", 0}
#define CAPS {P_RECV, NULL, 0}, {P_REPLY, "{\"return\": {}, \"id\": %s}", 0}
/* clang-format on */

static void write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n <= 0)
            _exit(3);
        s += n;
        len -= (size_t)n;
    }
}

static char *read_command_line(int fd)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    char c;
    for (;;) {
        ssize_t n = read(fd, &c, 1);
        if (n <= 0)
            _exit(4);
        if (c == '\n')
            return sv_strbuf_steal(&sb);
        sv_strbuf_append_c(&sb, c);
    }
}

static _Noreturn void peer_run(int fd, const step *script)
{
    char id[64] = "null";
    for (const step *s = script;; s++) {
        switch (s->op) {
        case P_SEND:
            write_all(fd, s->text, strlen(s->text));
            write_all(fd, "\n", 1);
            break;
        case P_RAW:
            write_all(fd, s->text, strlen(s->text));
            break;
        case P_BIG: {
            char *line = malloc(s->n + 1), head_text[128];
            snprintf(head_text, sizeof(head_text), "{\"id\":%s,\"return\":\"", id);
            size_t head = strlen(head_text), tail = strlen("\"}");
            memcpy(line, head_text, head);
            memset(line + head, 'x', s->n - head - tail);
            memcpy(line + s->n - tail, "\"}", tail);
            line[s->n] = '\n';
            write_all(fd, line, s->n + 1);
            free(line);
            break;
        }
        case P_RECV: {
            char *cmd = read_command_line(fd);
            json_object *o = json_tokener_parse(cmd), *v;
            if (o && json_object_object_get_ex(o, "id", &v))
                snprintf(id, sizeof(id), "%s", json_object_to_json_string(v));
            json_object_put(o);
            free(cmd);
            break;
        }
        case P_REPLY: {
            const char *mark = strstr(s->text, "%s");
            write_all(fd, s->text, (size_t)(mark - s->text));
            write_all(fd, id, strlen(id));
            write_all(fd, mark + 2, strlen(mark + 2));
            write_all(fd, "\n", 1);
            break;
        }
        case P_CLOSE:
            _exit(0);
        case P_END: {
            char buf[256];
            while (read(fd, buf, sizeof(buf)) > 0)
                ;
            _exit(0);
        }
        }
    }
}

typedef struct peer {
    pid_t pid;
    sv_qmp *q;
} peer;

static peer peer_start(const step *script)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        peer_run(sv[1], script);
    }
    close(sv[1]);
    peer p = {pid, sv_qmp_new(sv[0])};
    assert_non_null(p.q);
    return p;
}

static void peer_stop(peer *p)
{
    sv_qmp_free(p->q);
    int st;
    assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
    assert_true(WIFEXITED(st));
}

#define DEADLINE_MS 5000

/* ---- Classification. */

static void test_classify(void **state)
{
    sv_qmp_msg m;
    assert_int_equal(sv_qmp_classify("{\"QMP\": {\"version\": {}}}", 24, &m), SV_QMP_GREETING);
    sv_qmp_msg_clear(&m);

    const char *ret = "{\"return\": {\"status\": \"prelaunch\"}, \"id\": 7}\r";
    assert_int_equal(sv_qmp_classify(ret, strlen(ret), &m), SV_QMP_REPLY);
    assert_int_equal(json_object_get_int(m.id), 7);
    assert_non_null(m.ret);
    assert_null(m.error_class);
    sv_qmp_msg_clear(&m);

    const char *null_ret = "{\"return\": null}";
    assert_int_equal(sv_qmp_classify(null_ret, strlen(null_ret), &m), SV_QMP_REPLY);
    assert_null(m.id);
    sv_qmp_msg_clear(&m);

    const char *error =
        "{\"id\": \"a\", \"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}";
    assert_int_equal(sv_qmp_classify(error, strlen(error), &m), SV_QMP_REPLY);
    assert_string_equal(m.error_class, "GenericError");
    assert_string_equal(m.error_desc, "no");
    assert_string_equal(json_object_get_string(m.id), "a");
    assert_null(m.ret);
    sv_qmp_msg_clear(&m);

    const char *event =
        "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}";
    assert_int_equal(sv_qmp_classify(event, strlen(event), &m), SV_QMP_EVENT);
    assert_string_equal(m.event, "STOP");
    sv_qmp_msg_clear(&m);

    static const char *const garbage[] = {
        "",
        "\r",
        "not json",
        "null",
        "[1, 2]",
        "\"QMP\"",
        "{}",
        "{\"QMP\": 1}",
        "{\"event\": 5}",
        "{\"error\": \"string\"}",
        "{\"error\": {\"class\": \"GenericError\"}}",
        "{\"return\": {}, \"error\": {\"class\": \"a\", \"desc\": \"b\"}}",
        "{\"return\": {}} {\"return\": {}}",
        "{\"return\": {}",
        "{\"return\": \"\xff\"}",
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(garbage); i++) {
        if (sv_qmp_classify(garbage[i], strlen(garbage[i]), &m) != SV_QMP_GARBAGE)
            fail_msg("not garbage: %s", garbage[i]);
        assert_null(m.obj);
        sv_qmp_msg_clear(&m);
    }

    /* the length is what counts, not a NUL */
    assert_int_equal(sv_qmp_classify("{\"return\": 1}trailing", 13, &m), SV_QMP_REPLY);
    sv_qmp_msg_clear(&m);
}

/* ---- The client. */

static void test_handshake_and_execute(void **state)
{
    static const step script[] = {
        GREETING,
        CAPS,
        {P_RECV, NULL, 0},
        {P_REPLY, "{\"return\": {\"status\": \"prelaunch\", \"running\": false}, \"id\": %s}", 0},
        {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    json_object *g = sv_qmp_greeting(p.q), *v;
    assert_non_null(g);
    assert_true(json_object_object_get_ex(g, "version", &v));

    char *ret = NULL;
    assert_int_equal(sv_qmp_execute_text(p.q, "{\"execute\": \"query-status\"}",
                                         sv_deadline_ms(DEADLINE_MS), &ret, &err),
                     0);
    assert_string_equal(ret, "{\"status\":\"prelaunch\",\"running\":false}");
    free(ret);
    peer_stop(&p);
}

static void test_no_greeting_times_out(void **state)
{
    static const step script[] = {{P_END, NULL, 0}};
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    int64_t start = sv_now_ms();
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(200), &err), -ETIMEDOUT);
    int64_t took = sv_now_ms() - start;
    assert_true(took >= 190 && took < 2000);
    assert_int_equal(sv_error_code(err), ETIMEDOUT);
    assert_string_equal(sv_error_message(err), "timed out waiting for the QMP greeting");
    peer_stop(&p);
}

static void test_message_before_greeting(void **state)
{
    static const step script[] = {{P_SEND, "{\"return\": {}}", 0}, {P_END, NULL, 0}};
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), -EPROTO);
    assert_string_equal(sv_error_message(err), "QMP sent a message before its greeting");
    peer_stop(&p);
}

static void test_error_reply_mapped(void **state)
{
    static const step script[] = {
        GREETING,
        CAPS,
        {P_RECV, NULL, 0},
        {P_REPLY,
         "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'disk9' not found\"}, "
         "\"id\": %s}",
         0},
        {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    json_object *args = json_object_new_object();
    json_object_object_add(args, "id", json_object_new_string("disk9"));
    json_object *ret = NULL;
    assert_int_equal(
        sv_qmp_execute(p.q, "device_del", args, sv_deadline_ms(DEADLINE_MS), &ret, &err), -EIO);
    json_object_put(args);
    assert_null(ret);
    assert_int_equal(sv_error_code(err), EIO);
    assert_string_equal(sv_error_message(err),
                        "qmp device_del: DeviceNotFound: Device 'disk9' not found");
    peer_stop(&p);
}

static void test_error_reply_without_id(void **state)
{
    /* QEMU's answer to a line it cannot parse has no id */
    static const step script[] = {
        GREETING,
        CAPS,
        {P_RECV, NULL, 0},
        {P_SEND,
         "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '}'\"}}",
         0},
        {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    assert_int_equal(sv_qmp_execute(p.q, "stop", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
                     -EIO);
    assert_string_equal(sv_error_message(err),
                        "qmp stop: GenericError: JSON parse error, stray '}'");
    peer_stop(&p);
}

typedef struct events_seen {
    int n;
    char names[4][32];
} events_seen;

static void on_event(const sv_qmp_msg *ev, void *opaque)
{
    events_seen *s = opaque;
    if (s->n < 4)
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", ev->event);
    s->n++;
}

static void test_event_before_reply_skipped(void **state)
{
    static const step script[] = {
        GREETING,
        CAPS,
        {P_RECV, NULL, 0},
        {P_SEND,
         "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 0}, \"event\": \"SHUTDOWN\", "
         "\"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}",
         0},
        {P_SEND, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 5}, \"event\": \"STOP\"}", 0},
        {P_REPLY, "{\"return\": {}, \"id\": %s}", 0},
        {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    events_seen seen = {0};
    sv_qmp_set_event_handler(p.q, on_event, &seen);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    json_object *ret = NULL;
    assert_int_equal(sv_qmp_execute(p.q, "quit", NULL, sv_deadline_ms(DEADLINE_MS), &ret, &err), 0);
    assert_true(json_object_is_type(ret, json_type_object));
    json_object_put(ret);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.names[0], "SHUTDOWN");
    assert_string_equal(seen.names[1], "STOP");
    peer_stop(&p);
}

static void test_reply_id_mismatch_skipped(void **state)
{
    /* a late reply to an earlier command must not be taken for this one's */
    static const step script[] = {
        GREETING,
        CAPS,
        {P_RECV, NULL, 0},
        {P_SEND, "{\"return\": {\"status\": \"running\"}, \"id\": 999}", 0},
        {P_SEND, "{\"return\": {\"status\": \"running\"}, \"id\": \"2\"}", 0},
        {P_SEND, "{\"return\": {\"status\": \"running\"}}", 0},
        {P_REPLY, "{\"return\": {\"status\": \"prelaunch\"}, \"id\": %s}", 0},
        {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    char *ret = NULL;
    assert_int_equal(sv_qmp_execute_text(p.q, "{\"execute\":\"query-status\"}",
                                         sv_deadline_ms(DEADLINE_MS), &ret, &err),
                     0);
    assert_string_equal(ret, "{\"status\":\"prelaunch\"}");
    free(ret);
    peer_stop(&p);
}

static void test_only_mismatched_reply_times_out(void **state)
{
    static const step script[] = {
        GREETING,         CAPS, {P_RECV, NULL, 0}, {P_SEND, "{\"return\": {}, \"id\": 999}", 0},
        {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    assert_int_equal(sv_qmp_execute(p.q, "cont", NULL, sv_deadline_ms(200), NULL, &err),
                     -ETIMEDOUT);
    assert_string_equal(sv_error_message(err), "qmp cont: timed out waiting for the reply");
    peer_stop(&p);
}

static void test_line_at_limit_accepted(void **state)
{
    static const step script[] = {
        GREETING, CAPS, {P_RECV, NULL, 0}, {P_BIG, NULL, SV_QMP_MAX_MESSAGE}, {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    json_object *ret = NULL;
    assert_int_equal(
        sv_qmp_execute(p.q, "query-qmp-schema", NULL, sv_deadline_ms(DEADLINE_MS), &ret, &err), 0);
    assert_true(json_object_is_type(ret, json_type_string));
    assert_true(json_object_get_string_len(ret) > SV_QMP_MAX_MESSAGE - 64);
    json_object_put(ret);
    peer_stop(&p);
}

static void test_oversized_line(void **state)
{
    static const step script[] = {
        GREETING, CAPS, {P_RECV, NULL, 0}, {P_BIG, NULL, SV_QMP_MAX_MESSAGE + 1}, {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    assert_int_equal(
        sv_qmp_execute(p.q, "query-qmp-schema", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
        -EPROTO);
    assert_string_equal(sv_error_message(err),
                        "qmp query-qmp-schema: QMP message longer than 1048576 bytes");
    sv_error_free(TAKE_PTR(err));
    /* framing is lost: the connection stays unusable */
    assert_int_equal(
        sv_qmp_execute(p.q, "query-status", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
        -EPROTO);
    peer_stop(&p);
}

static void test_garbage_line(void **state)
{
    static const step script[] = {
        GREETING, CAPS, {P_RECV, NULL, 0}, {P_SEND, "Segmentation fault\x01", 0}, {P_END, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    assert_int_equal(
        sv_qmp_execute(p.q, "query-status", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
        -EPROTO);
    assert_string_equal(sv_error_message(err),
                        "qmp query-status: QMP sent an invalid message: Segmentation fault?");
    peer_stop(&p);
}

static void test_second_greeting(void **state)
{
    static const step script[] = {GREETING, CAPS, {P_RECV, NULL, 0}, GREETING, {P_END, NULL, 0}};
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    assert_int_equal(sv_qmp_execute(p.q, "stop", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
                     -EPROTO);
    assert_string_equal(sv_error_message(err), "qmp stop: QMP sent a second greeting");
    peer_stop(&p);
}

static void test_eof_mid_command(void **state)
{
    static const step script[] = {GREETING, CAPS, {P_RECV, NULL, 0}, {P_CLOSE, NULL, 0}};
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    assert_int_equal(
        sv_qmp_execute(p.q, "query-status", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
        -ECONNRESET);
    assert_string_equal(sv_error_message(err), "qmp query-status: QMP connection closed");
    peer_stop(&p);
}

static void test_peer_gone_before_send(void **state)
{
    /* whether the send or the read sees it first, the message is the same */
    static const step script[] = {GREETING, CAPS, {P_CLOSE, NULL, 0}};
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    assert_int_equal(sv_qmp_execute(p.q, "cont", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
                     -ECONNRESET);
    assert_string_equal(sv_error_message(err), "qmp cont: QMP connection closed");
    peer_stop(&p);
}

static void test_eof_mid_message(void **state)
{
    static const step script[] = {
        GREETING, CAPS, {P_RECV, NULL, 0}, {P_RAW, "{\"return\": {\"sta", 0}, {P_CLOSE, NULL, 0},
    };
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    assert_int_equal(
        sv_qmp_execute(p.q, "query-status", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
        -ECONNRESET);
    assert_string_equal(sv_error_message(err),
                        "qmp query-status: QMP connection closed in the middle of a message");
    peer_stop(&p);
}

static void test_eof_before_greeting(void **state)
{
    static const step script[] = {{P_CLOSE, NULL, 0}};
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), -ECONNRESET);
    assert_string_equal(sv_error_message(err),
                        "waiting for the QMP greeting: QMP connection closed");
    peer_stop(&p);
}

static void test_watch_fd_ends_wait(void **state)
{
    /* the watched fd (QEMU's pidfd in real use) turning readable means the
     * server died while something else still holds its socket open */
    static const step script[] = {GREETING, CAPS, {P_RECV, NULL, 0}, {P_END, NULL, 0}};
    peer p = peer_start(script);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    sv_qmp_set_watch_fd(p.q, pipefd[0]);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);
    close(pipefd[1]);
    int64_t start = sv_now_ms();
    assert_int_equal(sv_qmp_execute(p.q, "stop", NULL, sv_deadline_ms(DEADLINE_MS), NULL, &err),
                     -ECHILD);
    assert_true(sv_now_ms() - start < 1000);
    assert_string_equal(sv_error_message(err), "qmp stop: QMP peer exited");
    close(pipefd[0]);
    peer_stop(&p);
}

static void test_execute_text_rejects(void **state)
{
    static const step script[] = {GREETING, CAPS, {P_END, NULL, 0}};
    peer p = peer_start(script);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_qmp_handshake(p.q, sv_deadline_ms(DEADLINE_MS), &err), 0);

    static const struct {
        const char *cmd, *msg;
    } bad[] = {
        {"{\"execute\": \"stop\", \"id\": 1}", "\"id\": must not be given (sandvm adds its own)"},
        {"[\"stop\"]", "expected a JSON object"},
        {"{\"execute\": 1}", "\"execute\": expected a string"},
        {"{\"execute\": \"stop\"", "invalid JSON: unexpected end of input"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
        char *ret = NULL;
        assert_int_equal(
            sv_qmp_execute_text(p.q, bad[i].cmd, sv_deadline_ms(DEADLINE_MS), &ret, &err), -EINVAL);
        assert_null(ret);
        assert_string_equal(sv_error_message(err), bad[i].msg);
        sv_error_free(TAKE_PTR(err));
    }
    peer_stop(&p);
}

int main(void)
{
    /* a peer that exits early must not kill the test with SIGPIPE; the client
     * itself never raises it (MSG_NOSIGNAL), the peer's writes might */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_handshake_and_execute),
        cmocka_unit_test(test_no_greeting_times_out),
        cmocka_unit_test(test_message_before_greeting),
        cmocka_unit_test(test_error_reply_mapped),
        cmocka_unit_test(test_error_reply_without_id),
        cmocka_unit_test(test_event_before_reply_skipped),
        cmocka_unit_test(test_reply_id_mismatch_skipped),
        cmocka_unit_test(test_only_mismatched_reply_times_out),
        cmocka_unit_test(test_line_at_limit_accepted),
        cmocka_unit_test(test_oversized_line),
        cmocka_unit_test(test_garbage_line),
        cmocka_unit_test(test_second_greeting),
        cmocka_unit_test(test_eof_mid_command),
        cmocka_unit_test(test_peer_gone_before_send),
        cmocka_unit_test(test_eof_mid_message),
        cmocka_unit_test(test_eof_before_greeting),
        cmocka_unit_test(test_watch_fd_ends_wait),
        cmocka_unit_test(test_execute_text_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
