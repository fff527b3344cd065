/*
 * The QMP client and its typed calls against the scripted fake QMP server
 * (tests/lib/fake_qmp.h): every failure a real QEMU will not produce on
 * demand, and the exact arguments each typed call sends.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_qmp.h"
#include "qemu/qmp.h"
#include "qemu/qmp_cmds.h"
#include "util/cleanup.h"
#include "util/qopts.h"
#include "util/sock.h"

#define DL sv_deadline_ms(5000)

typedef struct conn {
    fake_qmp *f;
    sv_qmp *q;
} conn;

static conn conn_start(const fq_step *script, size_t n)
{
    int fd = -1;
    conn c = {fake_qmp_start(script, n, &fd), NULL};
    assert_non_null(c.f);
    c.q = sv_qmp_new(fd);
    assert_non_null(c.q);
    return c;
}
#define START(script) conn_start(script, SV_ARRAY_SIZE(script))

/* Closes the client, lets the fake finish and checks its expectations; the
 * fake stays for inspection until conn_free(). */
static void conn_end(conn *c)
{
    sv_qmp_free(c->q);
    c->q = NULL;
    const char *why = fake_qmp_finish(c->f);
    if (why)
        fail_msg("%s", why);
}

static void conn_free(conn *c)
{
    conn_end(c);
    fake_qmp_free(c->f);
    c->f = NULL;
}

static void handshake(conn *c)
{
    _cleanup_error_ sv_error *err = NULL;
    if (sv_qmp_handshake(c->q, DL, &err) < 0)
        fail_msg("handshake: %s", sv_error_message(err));
}

/* Asserts a call failed with `code` and exactly `msg`. */
#define assert_fails(call, code, msg)                                                              \
    do {                                                                                           \
        _cleanup_error_ sv_error *e_ = NULL;                                                       \
        sv_error **err_ = &e_;                                                                     \
        (void)err_;                                                                                \
        int r_ = (call);                                                                           \
        if (r_ != -(code))                                                                         \
            fail_msg("%s: returned %d (%s), expected %d", #call, r_, sv_error_message(e_),         \
                     -(code));                                                                     \
        assert_string_equal(sv_error_message(e_), (msg));                                          \
    } while (0)

#define assert_ok(call)                                                                            \
    do {                                                                                           \
        _cleanup_error_ sv_error *e_ = NULL;                                                       \
        sv_error **err_ = &e_;                                                                     \
        (void)err_;                                                                                \
        if ((call) < 0)                                                                            \
            fail_msg("%s: %s", #call, sv_error_message(e_));                                       \
    } while (0)

/* Inside assert_ok/assert_fails, `err_` is the error out-parameter. */
#define ERR err_

/* ---- Greeting, version, capabilities. */

static void test_handshake_version_and_ids(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_NOARGS("stop"), FQ_OK(),
                                FQ_EXPECT_NOARGS("cont"), FQ_OK()};
    conn c = START(s);
    assert_null(sv_qmp_qemu_version(c.q));
    handshake(&c);
    const sv_qmp_version *v = sv_qmp_qemu_version(c.q);
    assert_non_null(v);
    assert_int_equal(v->major, 7);
    assert_int_equal(v->minor, 2);
    assert_int_equal(v->micro, 0);
    assert_string_equal(v->package, "fake");
    assert_ok(sv_qmp_stop(c.q, DL, ERR));
    assert_ok(sv_qmp_cont(c.q, DL, ERR));
    assert_null(sv_qmp_error_class(c.q));
    conn_end(&c);
    /* every command carries its own id */
    assert_int_equal(fake_qmp_commands(c.f), 3);
    int64_t last = 0;
    for (size_t i = 0; i < 3; i++) {
        json_object *id;
        assert_true(json_object_object_get_ex(fake_qmp_command(c.f, i), "id", &id));
        assert_true(json_object_get_int64(id) > last);
        last = json_object_get_int64(id);
    }
    conn_free(&c);
}

static void test_greeting_never_sent(void **state)
{
    static const fq_step s[] = {FQ_HOLD_OPEN()};
    conn c = START(s);
    int64_t start = sv_now_ms();
    assert_fails(sv_qmp_handshake(c.q, sv_deadline_ms(200), ERR), ETIMEDOUT,
                 "timed out waiting for the QMP greeting");
    int64_t took = sv_now_ms() - start;
    assert_true(took >= 190 && took < 2000);
    conn_free(&c);
}

static void test_closed_before_greeting(void **state)
{
    static const fq_step s[] = {FQ_CLOSE_NOW()};
    conn c = START(s);
    assert_fails(sv_qmp_handshake(c.q, DL, ERR), ECONNRESET,
                 "waiting for the QMP greeting: QMP connection closed");
    conn_free(&c);
}

static void test_version_too_old(void **state)
{
    /* nothing may be sent to a QEMU that is too old: the fake fails on any command */
    static const fq_step s[] = {FQ_GREET_VERSION(60200)};
    conn c = START(s);
    assert_fails(sv_qmp_handshake(c.q, DL, ERR), ENOTSUP,
                 "QEMU 6.2.0 is too old: sandvm needs QEMU 7.0 or later");
    assert_int_equal(sv_qmp_qemu_version(c.q)->major, 6);
    assert_fails(sv_qmp_stop(c.q, DL, ERR), EPROTO,
                 "qmp stop: QMP connection unusable after an earlier protocol error");
    conn_free(&c);
}

static void test_version_7_0_accepted(void **state)
{
    static const fq_step s[] = {FQ_GREET_VERSION(70000), FQ_EXPECT_NOARGS("qmp_capabilities"),
                                FQ_OK()};
    conn c = START(s);
    handshake(&c);
    assert_int_equal(sv_qmp_qemu_version(c.q)->minor, 0);
    conn_free(&c);
}

static void test_greeting_without_version(void **state)
{
    static const fq_step s[] = {FQ_LINE("{\"QMP\": {\"capabilities\": []}}")};
    conn c = START(s);
    assert_fails(sv_qmp_handshake(c.q, DL, ERR), EPROTO,
                 "the QMP greeting has no valid version (QMP.version.qemu.major/minor/micro)");
    conn_free(&c);
}

static void test_greeting_in_pieces(void **state)
{
    /* a line split across writes, and two messages in one write */
    static const char part1[] = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 1, ";
    static const char part2[] =
        "\"minor\": 1, \"major\": 8}}, \"capabilities\": []}}\n{\"event\": "
        "\"RESUME\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n";
    static const fq_step s[] = {FQ_BYTES(part1, sizeof(part1) - 1), FQ_SLEEP_MS(50),
                                FQ_BYTES(part2, sizeof(part2) - 1),
                                FQ_EXPECT_NOARGS("qmp_capabilities"), FQ_OK()};
    conn c = START(s);
    handshake(&c);
    assert_int_equal(sv_qmp_qemu_version(c.q)->major, 8);
    assert_int_equal(sv_qmp_event_count(c.q), 1);
    _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
    assert_int_equal(sv_qmp_pop_event(c.q, &ev), 1);
    assert_int_equal(ev.event_id, SV_QMP_EV_RESUME);
    assert_int_equal(ev.timestamp_us, 1000002);
    conn_free(&c);
}

static void test_events_before_greeting_kept(void **state)
{
    /* Kata runtime#1474: VSERPORT_CHANGE before the greeting */
    static const fq_step s[] = {FQ_EV("VSERPORT_CHANGE", "{\"id\": \"ch0\", \"open\": true}"),
                                FQ_HANDSHAKE()};
    conn c = START(s);
    handshake(&c);
    _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
    assert_ok(sv_qmp_wait_event(c.q, "VSERPORT_CHANGE", "id", "ch0", DL, &ev, ERR));
    assert_int_equal(ev.event_id, SV_QMP_EV_VSERPORT_CHANGE);
    assert_int_equal(sv_qmp_event_count(c.q), 0);
    conn_free(&c);
}

static void test_capabilities_refused(void **state)
{
    static const fq_step s[] = {
        FQ_GREET(), FQ_EXPECT_NOARGS("qmp_capabilities"),
        FQ_ERR("CommandNotFound", "Capabilities negotiation is already complete")};
    conn c = START(s);
    assert_fails(sv_qmp_handshake(c.q, DL, ERR), EIO,
                 "qmp qmp_capabilities: CommandNotFound: Capabilities negotiation is already "
                 "complete");
    conn_free(&c);
}

static void test_reply_before_greeting(void **state)
{
    static const fq_step s[] = {FQ_LINE("{\"return\": {}}")};
    conn c = START(s);
    assert_fails(sv_qmp_handshake(c.q, DL, ERR), EPROTO, "QMP sent a message before its greeting");
    conn_free(&c);
}

/* ---- Replies. */

static void test_error_reply_mapped(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_ARGS("device_del", "{\"id\": \"disk9\"}"),
                                FQ_ERR("DeviceNotFound", "Device 'disk9' not found")};
    conn c = START(s);
    handshake(&c);
    assert_fails(sv_qmp_device_del(c.q, "disk9", DL, ERR), EIO,
                 "qmp device_del: DeviceNotFound: Device 'disk9' not found");
    assert_string_equal(sv_qmp_error_class(c.q), "DeviceNotFound");
    conn_free(&c);
}

static void test_error_reply_without_id(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(), FQ_EXPECT_CMD("stop"),
        FQ_LINE("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}")};
    conn c = START(s);
    handshake(&c);
    assert_fails(sv_qmp_stop(c.q, DL, ERR), EIO, "qmp stop: GenericError: JSON parse error");
    assert_string_equal(sv_qmp_error_class(c.q), "GenericError");
    conn_free(&c);
}

static void test_reply_without_id_skipped(void **state)
{
    /* a success reply without id cannot be ours: skipped; alone it times out */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_CMD("query-status"),
        FQ_LINE("{\"return\": {\"status\": \"running\", \"running\": true}}"),
        FQ_LINE("{\"return\": {\"status\": \"paused\", \"running\": false}, \"id\": %ID%}"),
        FQ_EXPECT_CMD("cont"),
        FQ_LINE("{\"return\": {}}"),
    };
    conn c = START(s);
    handshake(&c);
    sv_qmp_status st;
    assert_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_int_equal(st.state, SV_QMP_RUN_PAUSED);
    assert_false(st.running);
    assert_fails(sv_qmp_cont(c.q, sv_deadline_ms(200), ERR), ETIMEDOUT,
                 "qmp cont: timed out waiting for the reply");
    conn_free(&c);
}

static void test_id_mismatch_skipped(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_CMD("qom-get"),
        FQ_LINE("{\"return\": \"wrong\", \"id\": 999}"),
        FQ_LINE("{\"return\": \"wrong too\", \"id\": \"%ID%\"}"),
        FQ_LINE("{\"return\": \"right\", \"id\": %ID%}"),
    };
    conn c = START(s);
    handshake(&c);
    _cleanup_json_ json_object *v = NULL;
    assert_ok(sv_qmp_qom_get(c.q, "/machine", "type", DL, &v, ERR));
    assert_string_equal(json_object_get_string(v), "right");
    conn_free(&c);
}

static void test_slow_reply_then_next_command(void **state)
{
    /* the late reply to the first command must not answer the second */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_CMD("query-status"),
        FQ_SLEEP_MS(400),
        FQ_LINE("{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": %ID%}"),
        FQ_EV("STOP", NULL),
        FQ_EXPECT_CMD("query-status"),
        FQ_RET("{\"status\": \"paused\", \"running\": false}"),
    };
    conn c = START(s);
    handshake(&c);
    sv_qmp_status st;
    int64_t start = sv_now_ms();
    assert_fails(sv_qmp_query_status(c.q, sv_deadline_ms(100), &st, ERR), ETIMEDOUT,
                 "qmp query-status: timed out waiting for the reply");
    assert_true(sv_now_ms() - start < 1000);
    assert_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_int_equal(st.state, SV_QMP_RUN_PAUSED);
    /* the event that came in between is kept */
    assert_int_equal(sv_qmp_event_count(c.q), 1);
    conn_free(&c);
}

static void test_default_deadline(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("stop"), FQ_HOLD_OPEN()};
    conn c = START(s);
    handshake(&c);
    sv_qmp_set_default_timeout(c.q, 150);
    int64_t start = sv_now_ms();
    assert_fails(sv_qmp_stop(c.q, SV_QMP_DEADLINE_DEFAULT, ERR), ETIMEDOUT,
                 "qmp stop: timed out waiting for the reply");
    int64_t took = sv_now_ms() - start;
    assert_true(took >= 140 && took < 2000);
    conn_free(&c);
}

static void test_closed_mid_command(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("query-status"), FQ_CLOSE_NOW()};
    conn c = START(s);
    handshake(&c);
    sv_qmp_status st;
    assert_fails(sv_qmp_query_status(c.q, DL, &st, ERR), ECONNRESET,
                 "qmp query-status: QMP connection closed");
    /* and at once again: never a hang on a dead connection */
    int64_t start = sv_now_ms();
    assert_fails(sv_qmp_stop(c.q, DL, ERR), ECONNRESET, "qmp stop: QMP connection closed");
    assert_true(sv_now_ms() - start < 1000);
    conn_free(&c);
}

static void test_closed_mid_message(void **state)
{
    static const char partial[] = "{\"return\": {\"sta";
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("query-status"),
                                FQ_BYTES(partial, sizeof(partial) - 1), FQ_CLOSE_NOW()};
    conn c = START(s);
    handshake(&c);
    sv_qmp_status st;
    assert_fails(sv_qmp_query_status(c.q, DL, &st, ERR), ECONNRESET,
                 "qmp query-status: QMP connection closed in the middle of a message");
    conn_free(&c);
}

static void test_oversized_reply(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("query-pci"), FQ_BIG_REPLY(5000),
                                FQ_HOLD_OPEN()};
    conn c = START(s);
    handshake(&c);
    sv_qmp_set_max_message(c.q, 4096);
    assert_int_equal(sv_qmp_max_message(c.q), 4096);
    sv_qmp_pci_device *devs = NULL;
    size_t n = 0;
    assert_fails(sv_qmp_query_pci(c.q, DL, &devs, &n, ERR), EPROTO,
                 "qmp query-pci: QMP message longer than 4096 bytes");
    assert_null(devs);
    /* the reply it hid cannot be told from another: unusable */
    assert_fails(sv_qmp_stop(c.q, DL, ERR), EPROTO,
                 "qmp stop: QMP connection unusable after an earlier protocol error");
    conn_free(&c);
}

static void test_reply_at_cap_accepted(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("qom-get"), FQ_BIG_REPLY(4096)};
    conn c = START(s);
    handshake(&c);
    sv_qmp_set_max_message(c.q, 4096);
    _cleanup_json_ json_object *v = NULL;
    assert_ok(sv_qmp_qom_get(c.q, "/", "big", DL, &v, ERR));
    assert_true(json_object_get_string_len(v) > 4000);
    conn_free(&c);
}

static void test_invalid_json(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("stop"),
                                FQ_LINE("{\"return\": {}, \"id\": %ID%"), FQ_HOLD_OPEN()};
    conn c = START(s);
    handshake(&c);
    assert_fails(sv_qmp_stop(c.q, DL, ERR), EPROTO,
                 "qmp stop: QMP sent an invalid message: {\"return\": {}, \"id\": 2");
    assert_fails(sv_qmp_cont(c.q, DL, ERR), EPROTO,
                 "qmp cont: QMP connection unusable after an earlier protocol error");
    conn_free(&c);
}

static void test_invalid_utf8_in_reply(void **state)
{
    static const char bad[] = "{\"return\": \"\xff\xfe\", \"id\": 2}\n";
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("qom-get"),
                                FQ_BYTES(bad, sizeof(bad) - 1), FQ_HOLD_OPEN()};
    conn c = START(s);
    handshake(&c);
    json_object *v = NULL;
    assert_fails(sv_qmp_qom_get(c.q, "/", "x", DL, &v, ERR), EPROTO,
                 "qmp qom-get: QMP sent an invalid message: {\"return\": \"??\", \"id\": 2}");
    assert_null(v);
    conn_free(&c);
}

static void test_second_greeting(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("stop"), FQ_GREET(), FQ_HOLD_OPEN()};
    conn c = START(s);
    handshake(&c);
    assert_fails(sv_qmp_stop(c.q, DL, ERR), EPROTO, "qmp stop: QMP sent a second greeting");
    conn_free(&c);
}

static void test_non_ascii_reply(void **state)
{
    /* QEMU escapes non-ASCII: \u escapes, emoji as a surrogate pair; a lone
     * surrogate becomes U+FFFD */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("qom-get", "{\"path\": \"/machine\", \"property\": \"append\"}"),
        FQ_LINE(
            "{\"return\": \"caf\\u00e9 \\u2028 \\uD83D\\uDE00 \\uD83D \\\"q\\\\\", \"id\": %ID%}"),
    };
    conn c = START(s);
    handshake(&c);
    _cleanup_json_ json_object *v = NULL;
    assert_ok(sv_qmp_qom_get(c.q, "/machine", "append", DL, &v, ERR));
    static const char want[] = "caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80 \xef\xbf\xbd \"q\\";
    assert_int_equal(json_object_get_string_len(v), sizeof(want) - 1);
    assert_memory_equal(json_object_get_string(v), want, sizeof(want) - 1);
    conn_free(&c);
}

static void test_nul_in_reply_string(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-cpus-fast"),
        FQ_RET("[{\"cpu-index\": 0, \"qom-path\": \"/machine/a\\u0000b\", \"thread-id\": 7, "
               "\"target\": \"x86_64\"}]"),
    };
    conn c = START(s);
    handshake(&c);
    sv_qmp_cpu_info *cpus = NULL;
    size_t n = 0;
    assert_fails(sv_qmp_query_cpus_fast(c.q, DL, &cpus, &n, ERR), EPROTO,
                 "qmp query-cpus-fast: reply: [0].qom-path: string holds a NUL byte");
    assert_null(cpus);
    conn_free(&c);
}

static void test_malformed_typed_reply(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\": \"running\", \"running\": \"yes\"}"),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET("{\"not\": \"an array\"}"),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\": \"some-future-state\", \"running\": false}"),
    };
    conn c = START(s);
    handshake(&c);
    sv_qmp_status st;
    assert_fails(sv_qmp_query_status(c.q, DL, &st, ERR), EPROTO,
                 "qmp query-status: reply: running: expected a boolean");
    sv_qmp_hotpluggable_cpu *cpus = NULL;
    size_t n = 0;
    assert_fails(sv_qmp_query_hotpluggable_cpus(c.q, DL, &cpus, &n, ERR), EPROTO,
                 "qmp query-hotpluggable-cpus: reply: expected an array");
    /* a state this build does not know is not an error */
    assert_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_int_equal(st.state, SV_QMP_RUN_UNKNOWN);
    assert_string_equal(sv_qmp_run_state_name(st.state), "unknown");
    conn_free(&c);
}

/* ---- Events. */

typedef struct seen {
    int n;
    char names[4][32];
} seen;

static void on_event(const sv_qmp_msg *ev, void *opaque)
{
    seen *s = opaque;
    if (s->n < 4)
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", ev->event);
    s->n++;
}

static void test_interleaved_events(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("stop"),
        FQ_EV("STOP", NULL),
        FQ_EV("BALLOON_CHANGE", "{\"actual\": 1073741824}"),
        FQ_OK(),
        FQ_EXPECT_NOARGS("cont"),
        FQ_EV("RESUME", NULL),
        FQ_OK(),
    };
    conn c = START(s);
    seen sn = {0};
    sv_qmp_set_event_handler(c.q, on_event, &sn);
    handshake(&c);
    assert_ok(sv_qmp_stop(c.q, DL, ERR));
    assert_ok(sv_qmp_cont(c.q, DL, ERR));
    assert_int_equal(sn.n, 3);
    assert_string_equal(sn.names[1], "BALLOON_CHANGE");
    /* queued in order, with data and timestamps (microseconds, not nanoseconds) */
    assert_int_equal(sv_qmp_event_count(c.q), 3);
    _cleanup_qmp_msg_ sv_qmp_msg a = {0}, b = {0}, d = {0};
    assert_int_equal(sv_qmp_pop_event(c.q, &a), 1);
    assert_int_equal(sv_qmp_pop_event(c.q, &b), 1);
    assert_int_equal(sv_qmp_pop_event(c.q, &d), 1);
    assert_int_equal(sv_qmp_pop_event(c.q, &d), 0);
    assert_int_equal(a.event_id, SV_QMP_EV_STOP);
    assert_null(a.data);
    assert_int_equal(a.timestamp_us, INT64_C(1700000000) * 1000000 + 0);
    assert_int_equal(b.event_id, SV_QMP_EV_BALLOON_CHANGE);
    json_object *actual;
    assert_true(json_object_object_get_ex(b.data, "actual", &actual));
    assert_int_equal(json_object_get_int64(actual), 1073741824);
    assert_int_equal(b.timestamp_us, INT64_C(1700000000) * 1000000 + 1);
    assert_int_equal(d.event_id, SV_QMP_EV_RESUME);
    conn_free(&c);
}

static void test_unknown_event(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(), FQ_EV("X_FUTURE_EVENT", "{\"what\": 1}"),
        FQ_EV("SHUTDOWN", "{\"guest\": true, \"reason\": \"guest-shutdown\"}")};
    conn c = START(s);
    handshake(&c);
    _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
    assert_ok(sv_qmp_wait_event(c.q, "SHUTDOWN", NULL, NULL, DL, &ev, ERR));
    assert_int_equal(ev.event_id, SV_QMP_EV_SHUTDOWN);
    /* the unknown one came first and stays queued */
    _cleanup_qmp_msg_ sv_qmp_msg u = {0};
    assert_int_equal(sv_qmp_pop_event(c.q, &u), 1);
    assert_int_equal(u.event_id, SV_QMP_EV_UNKNOWN);
    assert_string_equal(u.event, "X_FUTURE_EVENT");
    assert_string_equal(sv_qmp_event_name(SV_QMP_EV_DEVICE_DELETED), "DEVICE_DELETED");
    assert_int_equal(sv_qmp_event_lookup("X_FUTURE_EVENT"), SV_QMP_EV_UNKNOWN);
    conn_free(&c);
}

static void test_event_flood_drops_oldest(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_NOARGS("query-status"),
                                FQ_FLOOD_EVENTS("FLOOD", 1000),
                                FQ_RET("{\"status\": \"running\", \"running\": true}")};
    conn c = START(s);
    handshake(&c);
    sv_qmp_set_event_queue_max(c.q, 16);
    sv_qmp_status st;
    assert_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_int_equal(st.state, SV_QMP_RUN_RUNNING);
    assert_int_equal(sv_qmp_event_count(c.q), 16);
    assert_int_equal(sv_qmp_events_dropped(c.q), 984);
    /* the newest are kept, in order */
    for (int64_t want = 984; want < 1000; want++) {
        _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
        assert_int_equal(sv_qmp_pop_event(c.q, &ev), 1);
        json_object *seq;
        assert_true(json_object_object_get_ex(ev.data, "seq", &seq));
        assert_int_equal(json_object_get_int64(seq), want);
    }
    conn_free(&c);
}

static void test_queue_shrink(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_FLOOD_EVENTS("FLOOD", 40), FQ_EV("LAST", NULL)};
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_wait_event(c.q, "LAST", NULL, NULL, DL, NULL, ERR));
    assert_int_equal(sv_qmp_event_count(c.q), 40);
    sv_qmp_set_event_queue_max(c.q, 5);
    assert_int_equal(sv_qmp_event_count(c.q), 5);
    assert_int_equal(sv_qmp_events_dropped(c.q), 35);
    _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
    assert_int_equal(sv_qmp_pop_event(c.q, &ev), 1);
    json_object *seq;
    assert_true(json_object_object_get_ex(ev.data, "seq", &seq));
    assert_int_equal(json_object_get_int64(seq), 35);
    conn_free(&c);
}

static void test_wait_event_times_out_then_usable(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EV("STOP", NULL), FQ_EXPECT_NOARGS("cont"),
                                FQ_OK()};
    conn c = START(s);
    handshake(&c);
    assert_fails(sv_qmp_wait_event(c.q, "SHUTDOWN", NULL, NULL, sv_deadline_ms(150), NULL, ERR),
                 ETIMEDOUT, "timed out waiting for event SHUTDOWN");
    assert_int_equal(sv_qmp_event_count(c.q), 1);
    assert_ok(sv_qmp_cont(c.q, DL, ERR));
    conn_free(&c);
}

static void test_wait_event_skips_late_reply(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_CMD("system_powerdown"),
        FQ_SLEEP_MS(300),
        FQ_OK(),
        FQ_EV("POWERDOWN", NULL),
        FQ_EV("SHUTDOWN", "{\"guest\": true, \"reason\": \"guest-shutdown\"}"),
    };
    conn c = START(s);
    handshake(&c);
    assert_fails(sv_qmp_system_powerdown(c.q, sv_deadline_ms(100), ERR), ETIMEDOUT,
                 "qmp system_powerdown: timed out waiting for the reply");
    _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
    assert_ok(sv_qmp_wait_event(c.q, "SHUTDOWN", "reason", "guest-shutdown", DL, &ev, ERR));
    assert_int_equal(ev.event_id, SV_QMP_EV_SHUTDOWN);
    assert_int_equal(sv_qmp_event_count(c.q), 1); /* POWERDOWN */
    conn_free(&c);
}

static void test_shutdown_before_quit_reply(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("quit"),
        FQ_EV("SHUTDOWN", "{\"guest\": false, \"reason\": \"host-qmp-quit\"}"),
        FQ_OK(),
        FQ_CLOSE_NOW(),
    };
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_quit(c.q, DL, ERR));
    assert_ok(sv_qmp_wait_closed(c.q, DL, ERR));
    _cleanup_qmp_msg_ sv_qmp_msg ev = {0};
    assert_ok(sv_qmp_wait_event(c.q, "SHUTDOWN", "reason", "host-qmp-quit", DL, &ev, ERR));
    conn_free(&c);
}

static void test_eof_after_quit(void **state)
{
    /* QEMU may exit before its reply reaches us */
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_NOARGS("quit"), FQ_CLOSE_NOW()};
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_quit(c.q, DL, ERR));
    assert_ok(sv_qmp_wait_closed(c.q, DL, ERR));
    conn_free(&c);
}

static void test_wait_closed_times_out(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_NOARGS("quit"), FQ_OK(), FQ_HOLD_OPEN()};
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_quit(c.q, DL, ERR));
    assert_fails(sv_qmp_wait_closed(c.q, sv_deadline_ms(100), ERR), ETIMEDOUT,
                 "timed out waiting for QMP to close");
    conn_free(&c);
}

static void test_powerdown_then_close(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_NOARGS("system_powerdown"),
                                FQ_CLOSE_NOW()};
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_system_powerdown(c.q, DL, ERR));
    conn_free(&c);
}

static void test_device_deleted_before_reply(void **state)
{
    /* what QEMU does for a device on a bus it unplugs at once (virtserialport) */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("device_del", "{\"id\": \"port0\"}"),
        FQ_EV("DEVICE_DELETED", "{\"device\": \"port0\", \"path\": \"/machine/peripheral/port0\"}"),
        FQ_OK(),
    };
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_device_del_wait(c.q, "port0", DL, ERR));
    assert_int_equal(sv_qmp_event_count(c.q), 0);
    conn_free(&c);
}

static void test_device_deleted_after_reply(void **state)
{
    /* the virtio backend child's event (path only) and another device's do not count */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("device_del", "{\"id\": \"disk0\"}"),
        FQ_OK(),
        FQ_SLEEP_MS(50),
        FQ_EV("DEVICE_DELETED", "{\"path\": \"/machine/peripheral/disk0/virtio-backend\"}"),
        FQ_EV("DEVICE_DELETED", "{\"device\": \"disk1\", \"path\": \"/machine/peripheral/disk1\"}"),
        FQ_EV("DEVICE_DELETED", "{\"device\": \"disk0\", \"path\": \"/machine/peripheral/disk0\"}"),
    };
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_device_del_wait(c.q, "disk0", DL, ERR));
    assert_int_equal(sv_qmp_event_count(c.q), 2);
    conn_free(&c);
}

static void test_device_del_pending(void **state)
{
    /* no guest, no DEVICE_DELETED: a pending outcome, and the client stays usable */
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_ARGS("device_del", "{\"id\": \"rng0\"}"),
                                FQ_OK(), FQ_EXPECT_NOARGS("query-status"),
                                FQ_RET("{\"status\": \"prelaunch\", \"running\": false}")};
    conn c = START(s);
    handshake(&c);
    assert_fails(sv_qmp_device_del_wait(c.q, "rng0", sv_deadline_ms(200), ERR), ETIMEDOUT,
                 "qmp device_del rng0: DEVICE_DELETED did not arrive: the unplug is still pending");
    sv_qmp_status st;
    assert_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_int_equal(st.state, SV_QMP_RUN_PRELAUNCH);
    conn_free(&c);
}

static void test_watch_fd_during_quit(void **state)
{
    /* the peer's process exits while something else keeps its socket open */
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_NOARGS("quit"), FQ_HOLD_OPEN()};
    conn c = START(s);
    int p[2];
    assert_int_equal(pipe(p), 0);
    sv_qmp_set_watch_fd(c.q, p[0]);
    handshake(&c);
    close(p[1]);
    assert_ok(sv_qmp_quit(c.q, DL, ERR));
    close(p[0]);
    conn_free(&c);
}

/* ---- fd passing. */

static void test_getfd_passes_the_file(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(), FQ_EXPECT_WITH_FD("getfd", "{\"fdname\": \"fd-net0\"}"),
        FQ_OK(),        FQ_EXPECT_ARGS("closefd", "{\"fdname\": \"fd-net0\"}"),
        FQ_OK(),
    };
    conn c = START(s);
    handshake(&c);
    int fd = memfd_create("sandvm-getfd-test", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "tap", 3), 3);
    assert_ok(sv_qmp_getfd(c.q, "fd-net0", fd, DL, ERR));
    assert_ok(sv_qmp_closefd(c.q, "fd-net0", DL, ERR));
    assert_fails(sv_qmp_getfd(c.q, "fd-x", -1, DL, ERR), EBADF, "qmp getfd: no fd to pass");
    conn_end(&c);
    int got = fake_qmp_command_fd(c.f, 1);
    assert_true(got >= 0);
    assert_int_not_equal(got, fd);
    struct stat a, b;
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(fstat(got, &b), 0);
    assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
    char buf[4] = {0};
    assert_int_equal(pread(got, buf, 3, 0), 3);
    assert_string_equal(buf, "tap");
    assert_int_equal(fake_qmp_command_fd(c.f, 2), -1);
    close(fd);
    conn_free(&c);
}

/* ---- Arguments: exact round trip or refusal. */

/* quotes, backslash, control characters, U+2028, an emoji, a comma option */
static const char hostile[] = "a\"b\\c\x01\n\t\x7f \xe2\x80\xa8 \xf0\x9f\x98\x80 ,readonly=on";

static const char *arg_string(json_object *cmd, const char *path0, const char *path1, size_t *len)
{
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(cmd, "arguments", &v));
    assert_true(json_object_object_get_ex(v, path0, &v));
    if (path1)
        assert_true(json_object_object_get_ex(v, path1, &v));
    assert_true(json_object_is_type(v, json_type_string));
    *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static void test_hostile_strings_round_trip(void **state)
{
    static const fq_step s[] = {FQ_HANDSHAKE(), FQ_EXPECT_CMD("device_del"), FQ_OK(),
                                FQ_EXPECT_CMD("qom-set"), FQ_OK()};
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_device_del(c.q, hostile, DL, ERR));
    _cleanup_json_ json_object *value = json_object_new_string(hostile);
    assert_ok(sv_qmp_qom_set(c.q, hostile, "append", value, DL, ERR));
    conn_end(&c);
    size_t len;
    const char *got = arg_string(fake_qmp_command(c.f, 1), "id", NULL, &len);
    assert_int_equal(len, sizeof(hostile) - 1);
    assert_memory_equal(got, hostile, len);
    got = arg_string(fake_qmp_command(c.f, 2), "value", NULL, &len);
    assert_int_equal(len, sizeof(hostile) - 1);
    assert_memory_equal(got, hostile, len);
    conn_free(&c);
}

static void test_invalid_utf8_refused(void **state)
{
    /* nothing is sent: the fake fails on any command after the handshake */
    static const fq_step s[] = {FQ_HANDSHAKE()};
    conn c = START(s);
    handshake(&c);
    assert_fails(sv_qmp_device_del(c.q, "disk\xff", DL, ERR), EINVAL,
                 "qmp device_del: argument id: invalid UTF-8 at byte 4");
    assert_fails(sv_qmp_chardev_add_unix_socket(c.q, "ch0", "/run/\xc3(x", true, false, DL, ERR),
                 EINVAL,
                 "qmp chardev-add: argument backend.data.addr.data.path: invalid UTF-8 at byte 5");
    /* overlong and surrogate encodings are not UTF-8 either */
    assert_fails(sv_qmp_migrate(c.q, "exec:\xc0\xaf", DL, ERR), EINVAL,
                 "qmp migrate: argument uri: invalid UTF-8 at byte 5");
    assert_fails(sv_qmp_migrate(c.q, "exec:\xed\xa0\x80", DL, ERR), EINVAL,
                 "qmp migrate: argument uri: invalid UTF-8 at byte 5");
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new(NULL, NULL);
    sv_qopts_str(o, "driver", "raw");
    sv_qopts_str(o, "node-name", "d0");
    sv_qopts_str(o, "file.driver", "file");
    sv_qopts_str(o, "file.filename", "/x/\x80.img");
    assert_fails(sv_qmp_blockdev_add(c.q, o, DL, ERR), EINVAL,
                 "qmp blockdev-add: argument file.filename: invalid UTF-8 at byte 3");
    /* a NUL byte inside a string would cut it short in QEMU */
    _cleanup_json_ json_object *args = json_object_new_object();
    json_object_object_add(args, "id", json_object_new_string_len("a\0b", 3));
    assert_fails(sv_qmp_execute(c.q, "device_del", args, DL, NULL, ERR), EINVAL,
                 "qmp device_del: argument id: NUL byte at byte 1");
    /* a bad key is named with its bytes escaped */
    _cleanup_json_ json_object *args2 = json_object_new_object();
    json_object_object_add(args2, "k\xfe", json_object_new_int(1));
    assert_fails(sv_qmp_execute(c.q, "x", args2, DL, NULL, ERR), EINVAL,
                 "qmp x: argument k\\xfe: key: invalid UTF-8 at byte 1");
    conn_free(&c);
}

static void test_raw_passthrough(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("qom-get", "{\"path\": \"/\", \"property\": \"\xf0\x9f\x98\x80\"}"),
        FQ_RET("{\"a\": [1, true, null]}"),
    };
    conn c = START(s);
    handshake(&c);
    char *ret = NULL;
    /* a lone surrogate would silently become U+FFFD: refused */
    assert_fails(sv_qmp_execute_text(c.q,
                                     "{\"execute\": \"qom-get\", \"arguments\": {\"path\": "
                                     "\"/\", \"property\": \"\\uD83D\"}}",
                                     DL, &ret, ERR),
                 EINVAL, "invalid JSON at byte 63: lone surrogate \\uD83D");
    assert_fails(
        sv_qmp_execute_text(c.q, "{\"execute\": \"x\", \"arguments\": [1]}", DL, &ret, ERR), EINVAL,
        "\"arguments\": expected an object");
    assert_null(ret);
    /* an escaped pair is fine, and arrives as the character */
    assert_ok(sv_qmp_execute_text(c.q,
                                  "{\"execute\": \"qom-get\", \"arguments\": {\"path\": \"/\", "
                                  "\"property\": \"\\uD83D\\uDE00\"}}",
                                  DL, &ret, ERR));
    assert_string_equal(ret, "{\"a\":[1,true,null]}");
    free(ret);
    conn_free(&c);
}

/* ---- Typed calls: the exact arguments. */

static void test_device_add_from_qopts(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\": \"virtio-blk-pci\", \"id\": \"disk0\", \"drive\": \"drv0\", "
                       "\"bus\": \"rp0\", \"num-queues\": 4, \"share-rw\": true, "
                       "\"disable-modern\": false}"),
        FQ_OK(),
    };
    conn c = START(s);
    handshake(&c);
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("driver", "virtio-blk-pci");
    sv_qopts_str(o, "id", "disk0");
    sv_qopts_str(o, "drive", "drv0");
    sv_qopts_str(o, "bus", "rp0");
    sv_qopts_int(o, "num-queues", 4);
    sv_qopts_bool(o, "share-rw", true);
    sv_qopts_bool(o, "disable-modern", false);
    assert_ok(sv_qmp_device_add(c.q, o, DL, ERR));
    /* a list that is not a device's, or names a key twice, is refused unsent */
    _cleanup_qopts_ sv_qopts *bad = sv_qopts_new("qom-type", "memory-backend-ram");
    assert_fails(sv_qmp_device_add(c.q, bad, DL, ERR), EINVAL,
                 "qmp device_add: the property list must start with driver=");
    _cleanup_qopts_ sv_qopts *twice = sv_qopts_new("driver", "virtio-rng-pci");
    sv_qopts_str(twice, "id", "a");
    sv_qopts_str(twice, "id", "b");
    assert_fails(sv_qmp_device_add(c.q, twice, DL, ERR), EINVAL,
                 "qmp device_add: property \"id\" given twice");
    conn_free(&c);
}

static void test_blockdev_from_qopts(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("blockdev-add",
                       "{\"driver\": \"raw\", \"node-name\": \"drv0\", \"read-only\": true, "
                       "\"file\": {\"driver\": \"file\", \"filename\": \"/img/a,b.raw\", "
                       "\"aio\": \"native\", \"cache\": {\"direct\": true}}}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("blockdev-add", "{\"driver\": \"qcow2\", \"node-name\": \"n1\", "
                                       "\"file\": \"drv0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("blockdev-del", "{\"node-name\": \"drv0\"}"),
        FQ_OK(),
    };
    conn c = START(s);
    handshake(&c);
    /* the shape of dev_block.c's -blockdev list */
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new(NULL, NULL);
    sv_qopts_str(o, "driver", "raw");
    sv_qopts_str(o, "node-name", "drv0");
    sv_qopts_str(o, "file.driver", "file");
    sv_qopts_str(o, "file.filename", "/img/a,b.raw");
    sv_qopts_str(o, "file.aio", "native");
    sv_qopts_bool(o, "file.cache.direct", true);
    sv_qopts_bool(o, "read-only", true);
    assert_ok(sv_qmp_blockdev_add(c.q, o, DL, ERR));
    _cleanup_json_ json_object *j =
        json_tokener_parse("{\"driver\": \"qcow2\", \"node-name\": \"n1\", \"file\": \"drv0\"}");
    assert_ok(sv_qmp_blockdev_add_json(c.q, j, DL, ERR));
    _cleanup_qopts_ sv_qopts *clash = sv_qopts_new("driver", "raw");
    sv_qopts_str(clash, "file", "x");
    sv_qopts_str(clash, "file.driver", "file");
    assert_fails(sv_qmp_blockdev_add(c.q, clash, DL, ERR), EINVAL,
                 "qmp blockdev-add: property \"file.driver\": \"file\" is also given a value");
    _cleanup_qopts_ sv_qopts *nodriver = sv_qopts_new(NULL, NULL);
    sv_qopts_str(nodriver, "node-name", "x");
    assert_fails(sv_qmp_blockdev_add(c.q, nodriver, DL, ERR), EINVAL,
                 "qmp blockdev-add: the property list has no driver");
    assert_ok(sv_qmp_blockdev_del(c.q, "drv0", DL, ERR));
    assert_fails(sv_qmp_blockdev_del(c.q, NULL, DL, ERR), EINVAL,
                 "qmp blockdev-del: node-name is required");
    conn_free(&c);
}

static void test_backends(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("netdev_add", "{\"type\": \"tap\", \"id\": \"net0\", \"fds\": "
                                     "\"fd-net0-0:fd-net0-1\", \"vhost\": true, \"queues\": 2}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("netdev_del", "{\"id\": \"net0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("object-add", "{\"qom-type\": \"memory-backend-file\", \"id\": \"mem0\", "
                                     "\"mem-path\": \"/dev/shm/m\", \"size\": 134217728, "
                                     "\"share\": true}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("object-del", "{\"id\": \"mem0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("chardev-add",
                       "{\"id\": \"char0\", \"backend\": {\"type\": \"socket\", \"data\": "
                       "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"/run/c.sock\"}}, "
                       "\"server\": true, \"wait\": false}}}"),
        FQ_OK(),
        /* QEMU 7.2 refuses "wait" for a client socket: not sent */
        FQ_EXPECT_ARGS("chardev-add",
                       "{\"id\": \"char1\", \"backend\": {\"type\": \"socket\", \"data\": "
                       "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"/run/v.sock\"}}, "
                       "\"server\": false}}}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("chardev-add", "{\"id\": \"char2\", \"backend\": {\"type\": \"null\", "
                                      "\"data\": {}}}"),
        FQ_RET("{}"),
        FQ_EXPECT_ARGS("chardev-remove", "{\"id\": \"char0\"}"),
        FQ_OK(),
    };
    conn c = START(s);
    handshake(&c);
    _cleanup_qopts_ sv_qopts *net = sv_qopts_new("type", "tap");
    sv_qopts_str(net, "id", "net0");
    sv_qopts_str(net, "fds", "fd-net0-0:fd-net0-1");
    sv_qopts_bool(net, "vhost", true);
    sv_qopts_int(net, "queues", 2);
    assert_ok(sv_qmp_netdev_add(c.q, net, DL, ERR));
    assert_ok(sv_qmp_netdev_del(c.q, "net0", DL, ERR));
    _cleanup_qopts_ sv_qopts *mem = sv_qopts_new("qom-type", "memory-backend-file");
    sv_qopts_str(mem, "id", "mem0");
    sv_qopts_str(mem, "mem-path", "/dev/shm/m");
    sv_qopts_int(mem, "size", 134217728);
    sv_qopts_bool(mem, "share", true);
    assert_ok(sv_qmp_object_add(c.q, mem, DL, ERR));
    assert_ok(sv_qmp_object_del(c.q, "mem0", DL, ERR));
    assert_ok(sv_qmp_chardev_add_unix_socket(c.q, "char0", "/run/c.sock", true, false, DL, ERR));
    assert_ok(sv_qmp_chardev_add_unix_socket(c.q, "char1", "/run/v.sock", false, true, DL, ERR));
    _cleanup_json_ json_object *null_backend =
        json_tokener_parse("{\"type\": \"null\", \"data\": {}}");
    assert_ok(sv_qmp_chardev_add(c.q, "char2", null_backend, DL, ERR));
    assert_ok(sv_qmp_chardev_remove(c.q, "char0", DL, ERR));
    conn_free(&c);
}

static void test_queries(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET("[{\"props\": {\"core-id\": 1, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 0},"
               " \"vcpus-count\": 1, \"type\": \"qemu64-x86_64-cpu\"}, {\"props\": {\"core-id\": 0,"
               " \"socket-id\": 0}, \"vcpus-count\": 1, \"qom-path\": "
               "\"/machine/unattached/device[0]\", \"type\": \"qemu64-x86_64-cpu\"}]"),
        FQ_EXPECT_NOARGS("query-cpus-fast"),
        FQ_RET("[{\"thread-id\": 27314, \"props\": {\"core-id\": 0, \"thread-id\": 0, "
               "\"node-id\": 0, \"socket-id\": 0}, \"qom-path\": \"/machine/unattached/device[0]\","
               " \"cpu-index\": 0, \"target\": \"x86_64\"}, {\"thread-id\": 27315, \"qom-path\": "
               "\"/machine/peripheral/cpu1\", \"cpu-index\": 1, \"target\": \"x86_64\"}]"),
        FQ_EXPECT_NOARGS("query-memory-devices"),
        FQ_RET("[{\"type\": \"dimm\", \"data\": {\"slot\": 0, \"node\": 0, \"addr\": 4294967296,"
               " \"memdev\": \"/objects/mem0\", \"id\": \"dimm0\", \"hotpluggable\": true, "
               "\"hotplugged\": true, \"size\": 134217728}}, {\"type\": \"virtio-mem\", \"data\": "
               "{\"memaddr\": 5368709120, \"node\": 0, \"requested-size\": 0, \"size\": 0, "
               "\"max-size\": 1073741824, \"block-size\": 2097152, \"memdev\": \"/objects/vm0\","
               " \"id\": \"vmem0\"}}]"),
        FQ_EXPECT_NOARGS("query-pci"),
        FQ_RET("[{\"bus\": 0, \"devices\": [{\"bus\": 0, \"slot\": 0, \"function\": 0, "
               "\"class_info\": {\"class\": 1536, \"desc\": \"Host bridge\"}, \"id\": {\"device\":"
               " 10688, \"vendor\": 32902}, \"qdev_id\": \"\", \"regions\": []}, {\"bus\": 0, "
               "\"slot\": 2, \"function\": 0, \"class_info\": {\"class\": 1540}, \"id\": "
               "{\"device\": 12, \"vendor\": 6966}, \"qdev_id\": \"rp0\", \"pci_bridge\": "
               "{\"bus\": {\"number\": 1, \"secondary\": 1, \"subordinate\": 1}, \"devices\": "
               "[{\"bus\": 1, \"slot\": 0, \"function\": 0, \"class_info\": {\"class\": 255}, "
               "\"id\": {\"device\": 4165, \"vendor\": 6900}, \"qdev_id\": \"rng0\"}]}}, {\"bus\":"
               " 0, \"slot\": 3, \"function\": 0, \"class_info\": {\"class\": 1540}, \"id\": "
               "{\"device\": 12, \"vendor\": 6966}, \"qdev_id\": \"rp1\", \"pci_bridge\": "
               "{\"bus\": {\"number\": 2, \"secondary\": 2, \"subordinate\": 2}}}]}]"),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\": \"inmigrate\", \"singlestep\": false, \"running\": false}"),
    };
    conn c = START(s);
    handshake(&c);

    sv_qmp_hotpluggable_cpu *hc = NULL;
    size_t n = 0;
    assert_ok(sv_qmp_query_hotpluggable_cpus(c.q, DL, &hc, &n, ERR));
    assert_int_equal(n, 2);
    assert_string_equal(hc[0].type, "qemu64-x86_64-cpu");
    assert_null(hc[0].qom_path); /* a free slot */
    assert_int_equal(hc[0].props.core_id, 1);
    assert_int_equal(hc[0].props.die_id, -1);
    assert_string_equal(hc[1].qom_path, "/machine/unattached/device[0]");
    assert_int_equal(hc[1].props.thread_id, -1);
    sv_qmp_hotpluggable_cpus_free(hc, n);

    sv_qmp_cpu_info *ci = NULL;
    assert_ok(sv_qmp_query_cpus_fast(c.q, DL, &ci, &n, ERR));
    assert_int_equal(n, 2);
    assert_int_equal(ci[0].thread_id, 27314);
    assert_int_equal(ci[1].thread_id, 27315);
    assert_int_equal(ci[1].cpu_index, 1);
    assert_int_equal(ci[1].props.core_id, -1);
    assert_string_equal(ci[0].target, "x86_64");
    sv_qmp_cpu_infos_free(ci, n);

    sv_qmp_memory_device *md = NULL;
    assert_ok(sv_qmp_query_memory_devices(c.q, DL, &md, &n, ERR));
    assert_int_equal(n, 2);
    assert_string_equal(md[0].type, "dimm");
    assert_string_equal(md[0].id, "dimm0");
    assert_int_equal(md[0].addr, INT64_C(4294967296));
    assert_int_equal(md[0].slot, 0);
    assert_true(md[0].hotplugged);
    assert_int_equal(md[0].requested_size, -1);
    assert_string_equal(md[1].type, "virtio-mem");
    assert_int_equal(md[1].addr, INT64_C(5368709120));
    assert_int_equal(md[1].slot, -1);
    assert_int_equal(md[1].requested_size, 0);
    assert_string_equal(md[1].memdev, "/objects/vm0");
    sv_qmp_memory_devices_free(md, n);

    sv_qmp_pci_device *pd = NULL;
    assert_ok(sv_qmp_query_pci(c.q, DL, &pd, &n, ERR));
    assert_int_equal(n, 4);
    assert_null(pd[0].qdev_id);
    assert_int_equal(pd[0].class_code, 1536);
    assert_int_equal(pd[0].vendor_id, 32902);
    assert_string_equal(pd[1].qdev_id, "rp0");
    assert_int_equal(pd[1].secondary_bus, 1);
    assert_string_equal(pd[2].qdev_id, "rng0");
    assert_int_equal(pd[2].bus, 1);
    assert_int_equal(pd[2].secondary_bus, -1);
    assert_string_equal(pd[3].qdev_id, "rp1");
    assert_int_equal(pd[3].secondary_bus, 2);
    sv_qmp_pci_devices_free(pd, n);

    sv_qmp_status st;
    assert_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_int_equal(st.state, SV_QMP_RUN_INMIGRATE);
    assert_string_equal(sv_qmp_run_state_name(st.state), "inmigrate");
    conn_free(&c);
}

static void test_misc_commands(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("balloon", "{\"value\": 1073741824}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("dump-guest-memory", "{\"protocol\": \"file:/var/crash/vmcore\", "
                                            "\"paging\": false, \"format\": \"elf\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("dump-guest-memory", "{\"protocol\": \"fd:dump\", \"paging\": true}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("qom-set", "{\"path\": \"vmem0\", \"property\": \"requested-size\", "
                                  "\"value\": 1073741824}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("qom-get", "{\"path\": \"/\", \"property\": \"type\"}"),
        FQ_RET("\"container\""),
        FQ_EXPECT_NOARGS("system_powerdown"),
        FQ_OK(),
    };
    conn c = START(s);
    handshake(&c);
    assert_ok(sv_qmp_balloon(c.q, UINT64_C(1073741824), DL, ERR));
    assert_fails(sv_qmp_balloon(c.q, UINT64_MAX, DL, ERR), EINVAL,
                 "qmp balloon: value 18446744073709551615 is out of range");
    assert_ok(sv_qmp_dump_guest_memory(c.q, "file:/var/crash/vmcore", false, "elf", DL, ERR));
    assert_ok(sv_qmp_dump_guest_memory(c.q, "fd:dump", true, NULL, DL, ERR));
    _cleanup_json_ json_object *size = json_object_new_int64(1073741824);
    assert_ok(sv_qmp_qom_set(c.q, "vmem0", "requested-size", size, DL, ERR));
    _cleanup_json_ json_object *v = NULL;
    assert_ok(sv_qmp_qom_get(c.q, "/", "type", DL, &v, ERR));
    assert_string_equal(json_object_get_string(v), "container");
    assert_ok(sv_qmp_system_powerdown(c.q, DL, ERR));
    conn_free(&c);
}

static void test_migration(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-migrate"),
        FQ_RET("{}"),
        FQ_EXPECT_ARGS("migrate-set-capabilities",
                       "{\"capabilities\": [{\"capability\": \"x-ignore-shared\", \"state\": "
                       "true}, {\"capability\": \"auto-converge\", \"state\": false}]}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("migrate-set-parameters", "{\"max-bandwidth\": 1099511627776}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("migrate", "{\"uri\": \"exec:cat > /run/sandvm/t/state\"}"),
        FQ_OK(),
        FQ_EXPECT_NOARGS("query-migrate"),
        FQ_RET("{\"status\": \"completed\", \"total-time\": 120, \"ram\": {\"transferred\": 1000,"
               " \"remaining\": 0, \"total\": 134217728}}"),
        FQ_EXPECT_NOARGS("query-migrate"),
        FQ_RET("{\"status\": \"failed\", \"error-desc\": \"Unable to write\"}"),
        FQ_EXPECT_ARGS("migrate-incoming", "{\"uri\": \"exec:cat /run/sandvm/t/state\"}"),
        FQ_OK(),
    };
    conn c = START(s);
    handshake(&c);
    sv_qmp_migration_info mi;
    assert_ok(sv_qmp_query_migrate(c.q, DL, &mi, ERR));
    assert_int_equal(mi.status, SV_QMP_MIG_NONE);
    assert_int_equal(mi.total_time_ms, -1);
    sv_qmp_migration_info_clear(&mi);
    static const sv_qmp_migrate_cap caps[] = {{"x-ignore-shared", true}, {"auto-converge", false}};
    assert_ok(sv_qmp_migrate_set_capabilities(c.q, caps, 2, DL, ERR));
    _cleanup_json_ json_object *params = json_object_new_object();
    json_object_object_add(params, "max-bandwidth", json_object_new_int64(INT64_C(1) << 40));
    assert_ok(sv_qmp_migrate_set_parameters(c.q, params, DL, ERR));
    assert_ok(sv_qmp_migrate(c.q, "exec:cat > /run/sandvm/t/state", DL, ERR));
    assert_ok(sv_qmp_query_migrate(c.q, DL, &mi, ERR));
    assert_int_equal(mi.status, SV_QMP_MIG_COMPLETED);
    assert_int_equal(mi.total_time_ms, 120);
    assert_int_equal(mi.ram_total, 134217728);
    assert_int_equal(mi.ram_remaining, 0);
    assert_non_null(mi.raw);
    assert_null(mi.error_desc);
    sv_qmp_migration_info_clear(&mi);
    assert_ok(sv_qmp_query_migrate(c.q, DL, &mi, ERR));
    assert_int_equal(mi.status, SV_QMP_MIG_FAILED);
    assert_string_equal(mi.error_desc, "Unable to write");
    assert_string_equal(sv_qmp_migration_status_name(mi.status), "failed");
    sv_qmp_migration_info_clear(&mi);
    assert_ok(sv_qmp_migrate_incoming(c.q, "exec:cat /run/sandvm/t/state", DL, ERR));
    conn_free(&c);
}

static void test_schema_reply_over_default_cap(void **state)
{
    /* query-qmp-schema lifts the cap for its own reply only */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-qmp-schema"),
        FQ_BIG_REPLY(3 * 1024 * 1024),
        FQ_EXPECT_NOARGS("query-qmp-schema"),
        FQ_RET("[{\"name\": \"stop\", \"meta-type\": \"command\", \"arg-type\": \"0\", "
               "\"ret-type\": \"0\"}, {\"name\": \"0\", \"meta-type\": \"object\", \"members\": "
               "[]}]"),
    };
    conn c = START(s);
    handshake(&c);
    json_object *schema = NULL;
    /* the big one is a string, not an array: read whole, then refused by type */
    assert_fails(sv_qmp_query_qmp_schema(c.q, DL, &schema, ERR), EPROTO,
                 "qmp query-qmp-schema: reply: expected an array");
    assert_null(schema);
    assert_int_equal(sv_qmp_max_message(c.q), SV_QMP_MAX_MESSAGE);
    assert_ok(sv_qmp_query_qmp_schema(c.q, DL, &schema, ERR));
    _cleanup_qmp_schema_ sv_qmp_schema *sch = NULL;
    assert_ok(sv_qmp_schema_new(schema, &sch, ERR));
    json_object_put(schema);
    assert_true(sv_qmp_schema_has_command(sch, "stop"));
    assert_false(sv_qmp_schema_has_command(sch, "0"));
    assert_ok(sv_qmp_schema_check(sch, "stop", NULL, ERR));
    conn_free(&c);
}

static const char mini_schema[] =
    "[{\"name\":\"device_del\",\"meta-type\":\"command\",\"arg-type\":\"A1\",\"ret-type\":\"0\"},"
    "{\"name\":\"A1\",\"meta-type\":\"object\",\"members\":[{\"name\":\"id\",\"type\":\"str\"}]},"
    "{\"name\":\"str\",\"meta-type\":\"builtin\",\"json-type\":\"string\"},"
    "{\"name\":\"int\",\"meta-type\":\"builtin\",\"json-type\":\"int\"},"
    "{\"name\":\"bool\",\"meta-type\":\"builtin\",\"json-type\":\"boolean\"},"
    "{\"name\":\"any\",\"meta-type\":\"builtin\",\"json-type\":\"value\"},"
    "{\"name\":\"0\",\"meta-type\":\"object\",\"members\":[]},"
    "{\"name\":\"stop\",\"meta-type\":\"command\",\"arg-type\":\"0\",\"ret-type\":\"0\"},"
    "{\"name\":\"old-cmd\",\"meta-type\":\"command\",\"arg-type\":\"0\",\"ret-type\":\"0\","
    "\"features\":[\"deprecated\"]},"
    "{\"name\":\"netdev_add\",\"meta-type\":\"command\",\"arg-type\":\"N\",\"ret-type\":\"0\"},"
    "{\"name\":\"N\",\"meta-type\":\"object\",\"members\":[{\"name\":\"id\",\"type\":\"str\"},"
    "{\"name\":\"type\",\"type\":\"NT\"}],\"tag\":\"type\",\"variants\":[{\"case\":\"tap\","
    "\"type\":\"NTAP\"},{\"case\":\"none\",\"type\":\"0\"}]},"
    "{\"name\":\"NT\",\"meta-type\":\"enum\",\"members\":[{\"name\":\"tap\"},{\"name\":\"none\"},"
    "{\"name\":\"old\",\"features\":[\"deprecated\"]}],\"values\":[\"tap\",\"none\",\"old\"]},"
    "{\"name\":\"NTAP\",\"meta-type\":\"object\",\"members\":[{\"name\":\"fds\",\"type\":\"str\","
    "\"default\":null},{\"name\":\"queues\",\"type\":\"int\",\"default\":null},{\"name\":"
    "\"vhost\",\"type\":\"bool\",\"default\":null},{\"name\":\"script\",\"type\":\"str\","
    "\"default\":null,\"features\":[\"deprecated\"]}]},"
    "{\"name\":\"device_add\",\"meta-type\":\"command\",\"arg-type\":\"D\",\"ret-type\":\"0\"},"
    "{\"name\":\"D\",\"meta-type\":\"object\",\"members\":[{\"name\":\"driver\",\"type\":\"str\"},"
    "{\"name\":\"bus\",\"type\":\"str\",\"default\":null},{\"name\":\"id\",\"type\":\"str\","
    "\"default\":null}]},"
    "{\"name\":\"migrate-set-capabilities\",\"meta-type\":\"command\",\"arg-type\":\"M\","
    "\"ret-type\":\"0\"},"
    "{\"name\":\"M\",\"meta-type\":\"object\",\"members\":[{\"name\":\"capabilities\",\"type\":"
    "\"[MC]\"}]},"
    "{\"name\":\"[MC]\",\"meta-type\":\"array\",\"element-type\":\"MC\"},"
    "{\"name\":\"MC\",\"meta-type\":\"object\",\"members\":[{\"name\":\"capability\",\"type\":"
    "\"CAP\"},{\"name\":\"state\",\"type\":\"bool\"}]},"
    "{\"name\":\"CAP\",\"meta-type\":\"enum\",\"values\":[\"x-ignore-shared\",\"auto-converge\"]},"
    "{\"name\":\"qom-set\",\"meta-type\":\"command\",\"arg-type\":\"Q\",\"ret-type\":\"0\"},"
    "{\"name\":\"Q\",\"meta-type\":\"object\",\"members\":[{\"name\":\"path\",\"type\":\"str\"},"
    "{\"name\":\"property\",\"type\":\"str\"},{\"name\":\"value\",\"type\":\"any\"}]},"
    "{\"name\":\"blockdev-add\",\"meta-type\":\"command\",\"arg-type\":\"B\",\"ret-type\":\"0\"},"
    "{\"name\":\"B\",\"meta-type\":\"object\",\"members\":[{\"name\":\"node-name\",\"type\":"
    "\"str\",\"default\":null},{\"name\":\"driver\",\"type\":\"BD\"}],\"tag\":\"driver\","
    "\"variants\":[{\"case\":\"raw\",\"type\":\"BR\"}]},"
    "{\"name\":\"BD\",\"meta-type\":\"enum\",\"values\":[\"raw\",\"file\"]},"
    "{\"name\":\"BR\",\"meta-type\":\"object\",\"members\":[{\"name\":\"file\",\"type\":\"REF\"}]},"
    "{\"name\":\"REF\",\"meta-type\":\"alternate\",\"members\":[{\"type\":\"B\"},{\"type\":"
    "\"str\"}]}]";

static void schema_expect(const sv_qmp_schema *s, const char *cmd, const char *args,
                          const char *msg)
{
    _cleanup_json_ json_object *a = args ? json_tokener_parse(args) : NULL;
    assert_true(!args || a);
    _cleanup_error_ sv_error *err = NULL;
    int r = sv_qmp_schema_check(s, cmd, a, &err);
    if (!msg) {
        if (r < 0)
            fail_msg("%s %s: %s", cmd, args ? args : "", sv_error_message(err));
        return;
    }
    if (r != -EINVAL)
        fail_msg("%s %s: accepted, expected \"%s\"", cmd, args ? args : "", msg);
    assert_string_equal(sv_error_message(err), msg);
}

static void test_schema_check(void **state)
{
    _cleanup_json_ json_object *j = json_tokener_parse(mini_schema);
    assert_non_null(j);
    _cleanup_qmp_schema_ sv_qmp_schema *s = NULL;
    assert_ok(sv_qmp_schema_new(j, &s, ERR));
    schema_expect(s, "stop", NULL, NULL);
    schema_expect(s, "stop", "{\"x\": 1}", "stop: argument x: not in QEMU's schema");
    schema_expect(s, "nope", NULL, "nope: not a command in QEMU's schema");
    schema_expect(s, "old-cmd", NULL, "old-cmd: deprecated");
    schema_expect(s, "device_del", "{}",
                  "device_del: argument (top): missing required member \"id\"");
    schema_expect(s, "device_del", "{\"id\": 5}",
                  "device_del: argument id: expected JSON type string, not int");
    schema_expect(s, "netdev_add",
                  "{\"type\": \"tap\", \"id\": \"n0\", \"fds\": \"a:b\", \"queues\": 2, "
                  "\"vhost\": true}",
                  NULL);
    schema_expect(s, "netdev_add", "{\"type\": \"tap\", \"id\": \"n0\", \"queues\": \"2\"}",
                  "netdev_add: argument queues: expected JSON type int, not string");
    schema_expect(s, "netdev_add", "{\"type\": \"none\", \"id\": \"n\", \"fds\": \"x\"}",
                  "netdev_add: argument fds: not in QEMU's schema");
    schema_expect(s, "netdev_add", "{\"type\": \"old\", \"id\": \"n\"}",
                  "netdev_add: argument type: \"old\" is deprecated");
    schema_expect(s, "netdev_add", "{\"type\": \"tap\", \"id\": \"n\", \"script\": \"no\"}",
                  "netdev_add: argument script: deprecated");
    schema_expect(s, "netdev_add", "{\"type\": \"bogus\", \"id\": \"n\"}",
                  "netdev_add: argument type: \"bogus\" is not a value QEMU knows");
    schema_expect(s, "device_add",
                  "{\"driver\": \"virtio-rng-pci\", \"id\": \"r\", "
                  "\"max-bytes\": 1024}",
                  NULL);
    schema_expect(s, "device_add", "{\"id\": \"r\"}",
                  "device_add: argument (top): missing required member \"driver\"");
    schema_expect(s, "device_add", "{\"driver\": 1}",
                  "device_add: argument driver: expected JSON type string, not int");
    schema_expect(s, "migrate-set-capabilities",
                  "{\"capabilities\": [{\"capability\": \"x-ignore-shared\", \"state\": true}]}",
                  NULL);
    schema_expect(s, "migrate-set-capabilities",
                  "{\"capabilities\": [{\"capability\": \"auto-converge\", \"state\": true}, "
                  "{\"capability\": \"bypass-shared-memory\", \"state\": true}]}",
                  "migrate-set-capabilities: argument capabilities[1].capability: "
                  "\"bypass-shared-memory\" is not a value QEMU knows");
    schema_expect(s, "qom-set", "{\"path\": \"/\", \"property\": \"p\", \"value\": [1, {}]}", NULL);
    schema_expect(s, "blockdev-add",
                  "{\"driver\": \"raw\", \"node-name\": \"d0\", \"file\": {\"driver\": \"file\"}}",
                  NULL);
    schema_expect(s, "blockdev-add", "{\"driver\": \"raw\", \"file\": \"node1\"}", NULL);
    schema_expect(s, "blockdev-add", "{\"driver\": \"raw\", \"file\": 5}",
                  "blockdev-add: argument file: matches none of the alternatives of REF");
    schema_expect(s, "blockdev-add", "{\"driver\": \"raw\", \"file\": {\"driver\": \"raw\"}}",
                  "blockdev-add: argument file: matches none of the alternatives of REF");
    _cleanup_json_ json_object *bad = json_tokener_parse("[{\"name\": 1}]");
    sv_qmp_schema *s2 = NULL;
    assert_fails(sv_qmp_schema_new(bad, &s2, ERR), EPROTO,
                 "QMP schema: [0]: expected name and meta-type");
}

/* ---- A socket path, as the lifecycle uses. */

static void test_socket_path(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\": \"running\", \"running\": true}"),
        FQ_EXPECT_NOARGS("quit"),
        FQ_EV("SHUTDOWN", "{\"guest\": false, \"reason\": \"host-qmp-quit\"}"),
        FQ_OK(),
        FQ_CLOSE_NOW()};
    _cleanup_private_dir_ char *dir = NULL;
    assert_int_equal(sv_private_dir_new(&dir, NULL), 0);
    _cleanup_free_ char *path = NULL;
    assert_true(asprintf(&path, "%s/qmp.sock", dir) > 0);
    fake_qmp *f = fake_qmp_start_path(s, SV_ARRAY_SIZE(s), path);
    assert_non_null(f);
    int fd = sv_unix_connect(path, DL, NULL);
    assert_true(fd >= 0);
    conn c = {f, sv_qmp_new(fd)};
    handshake(&c);
    sv_qmp_status st;
    assert_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_true(st.running);
    assert_ok(sv_qmp_quit(c.q, DL, ERR));
    assert_ok(sv_qmp_wait_closed(c.q, DL, ERR));
    conn_free(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_version_and_ids),
        cmocka_unit_test(test_greeting_never_sent),
        cmocka_unit_test(test_closed_before_greeting),
        cmocka_unit_test(test_version_too_old),
        cmocka_unit_test(test_version_7_0_accepted),
        cmocka_unit_test(test_greeting_without_version),
        cmocka_unit_test(test_greeting_in_pieces),
        cmocka_unit_test(test_events_before_greeting_kept),
        cmocka_unit_test(test_capabilities_refused),
        cmocka_unit_test(test_reply_before_greeting),
        cmocka_unit_test(test_error_reply_mapped),
        cmocka_unit_test(test_error_reply_without_id),
        cmocka_unit_test(test_reply_without_id_skipped),
        cmocka_unit_test(test_id_mismatch_skipped),
        cmocka_unit_test(test_slow_reply_then_next_command),
        cmocka_unit_test(test_default_deadline),
        cmocka_unit_test(test_closed_mid_command),
        cmocka_unit_test(test_closed_mid_message),
        cmocka_unit_test(test_oversized_reply),
        cmocka_unit_test(test_reply_at_cap_accepted),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_invalid_utf8_in_reply),
        cmocka_unit_test(test_second_greeting),
        cmocka_unit_test(test_non_ascii_reply),
        cmocka_unit_test(test_nul_in_reply_string),
        cmocka_unit_test(test_malformed_typed_reply),
        cmocka_unit_test(test_interleaved_events),
        cmocka_unit_test(test_unknown_event),
        cmocka_unit_test(test_event_flood_drops_oldest),
        cmocka_unit_test(test_queue_shrink),
        cmocka_unit_test(test_wait_event_times_out_then_usable),
        cmocka_unit_test(test_wait_event_skips_late_reply),
        cmocka_unit_test(test_shutdown_before_quit_reply),
        cmocka_unit_test(test_eof_after_quit),
        cmocka_unit_test(test_wait_closed_times_out),
        cmocka_unit_test(test_powerdown_then_close),
        cmocka_unit_test(test_device_deleted_before_reply),
        cmocka_unit_test(test_device_deleted_after_reply),
        cmocka_unit_test(test_device_del_pending),
        cmocka_unit_test(test_watch_fd_during_quit),
        cmocka_unit_test(test_getfd_passes_the_file),
        cmocka_unit_test(test_hostile_strings_round_trip),
        cmocka_unit_test(test_invalid_utf8_refused),
        cmocka_unit_test(test_raw_passthrough),
        cmocka_unit_test(test_device_add_from_qopts),
        cmocka_unit_test(test_blockdev_from_qopts),
        cmocka_unit_test(test_backends),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_misc_commands),
        cmocka_unit_test(test_migration),
        cmocka_unit_test(test_schema_reply_over_default_cap),
        cmocka_unit_test(test_schema_check),
        cmocka_unit_test(test_socket_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
