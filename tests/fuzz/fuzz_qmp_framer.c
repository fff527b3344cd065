/*
 * The QMP client's reading side on arbitrary bytes from the peer, through a
 * real socketpair, single-threaded and deterministic.
 *
 * Input: [flags] [seed] then, in client mode, [nops] [op]*nops; the rest is
 * what the peer sends.
 *   flags bit 0: 0 = framing mode, 1 = client mode
 *   flags bit 1: message size cap 4096 (else the default, 1 MiB)
 *   flags bits 2-4: chunk sizes (framing mode), see chunk_len()
 *   flags bit 5: client mode: end with the peer's fds still open, the wait
 *                ended by the watched fd (ECHILD), instead of end of stream
 *   flags bits 6-7: event queue bound: default, 1, 2, 4
 *
 * Framing mode: the stream goes in chunks whose sizes come from `seed`, and
 * after each chunk sv_qmp_read_msg() is called until it needs more (an
 * always-readable watched fd turns "would wait" into ECHILD, so nothing ever
 * sleeps). Whatever the chunking, the messages must be exactly those of the
 * stream cut at its newlines, each classified as sv_qmp_classify() classifies
 * that line alone, then the end: EPROTO at the first line over the cap
 * (counting an unterminated tail), else ECONNRESET. After EPROTO the client
 * stays unusable.
 *
 * Client mode: the whole stream is buffered, then the handshake and the ops
 * (raw and typed commands, event waits, the schema) run against it. No
 * crash, no wait (a timeout is a hang), only the documented error codes;
 * every event the handler sees is the next event line of the stream; events
 * seen = events taken + queued + dropped; every line the client sends is one
 * JSON object with "execute" and a growing integer "id"; after a protocol
 * error the client sends nothing more.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "qemu/qmp.h"
#include "qemu/qmp_cmds.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longer than any wait can last here: reaching it means the client blocked. */
#define FUZZ_TIMEOUT_MS 3000

typedef struct line {
    const char *p;
    size_t len;
} line;

/* The stream cut at its newlines: lines[0..n) complete ones no longer than
 * `cap`, and the error that follows them (EPROTO or ECONNRESET). With cap 0,
 * every complete line and no error. */
typedef struct model {
    line *lines;
    size_t n;
    int end;
} model;

static void model_build(model *m, const char *s, size_t len, size_t cap)
{
    memset(m, 0, sizeof(*m));
    m->lines = calloc(len + 1, sizeof(*m->lines));
    FUZZ_CHECK(m->lines, "out of memory");
    size_t pos = 0;
    m->end = ECONNRESET;
    for (;;) {
        const char *nl = memchr(s + pos, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - (s + pos)) : len - pos;
        if (cap && l > cap) {
            m->end = EPROTO;
            return;
        }
        if (!nl)
            return;
        m->lines[m->n++] = (line){s + pos, l};
        pos += l + 1;
    }
}

/* ---- A tiny deterministic generator for chunk sizes. */

static uint32_t rng_next(uint32_t *st)
{
    *st = *st * 1103515245u + 12345u;
    return *st >> 8;
}

static size_t chunk_len(unsigned cls, uint32_t *st, const char *s, size_t left)
{
    size_t n;
    switch (cls) {
    case 0:
        n = 1;
        break;
    case 1:
        n = 1 + rng_next(st) % 3;
        break;
    case 2:
        n = 1 + rng_next(st) % 16;
        break;
    case 3:
        n = 1 + rng_next(st) % 256;
        break;
    case 4:
        n = 1 + rng_next(st) % 4097;
        break;
    case 5: { /* up to and including the next newline, then the rest of it */
        const char *nl = memchr(s, '\n', left);
        n = nl ? (size_t)(nl - s) + 1 : left;
        break;
    }
    case 6: { /* cut just before each newline */
        const char *nl = left > 1 ? memchr(s + 1, '\n', left - 1) : NULL;
        n = nl ? (size_t)(nl - s) : left;
        break;
    }
    default:
        n = left;
        break;
    }
    return n < left ? n : left;
}

/* ---- The peer's end. */

typedef struct peer {
    int fd;         /* the peer's end of the socketpair */
    int watch[2];   /* a pipe holding one byte: always readable */
    sv_strbuf sent; /* bytes the client sent, not yet checked */
    int64_t last_id;
    size_t commands;
} peer;

static void peer_send(peer *p, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(p->fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        FUZZ_CHECK(n > 0, "the socket buffer is full (input too long for one chunk?)");
        s += n;
        len -= (size_t)n;
    }
}

/* Reads what the client sent and checks every complete line. Returns the
 * number of bytes read. */
static size_t peer_drain(peer *p)
{
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        sv_strbuf_append_n(&p->sent, buf, (size_t)n);
        got += (size_t)n;
    }
    FUZZ_CHECK(!p->sent.oom, "out of memory");
    char *nl;
    while (p->sent.len && (nl = memchr(p->sent.s, '\n', p->sent.len))) {
        size_t l = (size_t)(nl - p->sent.s);
        FUZZ_CHECK(fuzz_utf8_valid(p->sent.s, l), "the client sent invalid UTF-8");
        json_tokener *tok = json_tokener_new();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object *o = json_tokener_parse_ex(tok, p->sent.s, (int)l);
        FUZZ_CHECK(o && json_tokener_get_parse_end(tok) == l,
                   "the client sent a line that is not one JSON value: %.*s", (int)l, p->sent.s);
        json_tokener_free(tok);
        json_object *ex, *id;
        FUZZ_CHECK(json_object_is_type(o, json_type_object) &&
                       json_object_object_get_ex(o, "execute", &ex) &&
                       json_object_is_type(ex, json_type_string) &&
                       json_object_object_get_ex(o, "id", &id) &&
                       json_object_is_type(id, json_type_int),
                   "the client sent a command without execute and id: %.*s", (int)l, p->sent.s);
        FUZZ_CHECK(json_object_get_int64(id) > p->last_id, "command ids do not grow");
        p->last_id = json_object_get_int64(id);
        p->commands++;
        json_object_put(o);
        memmove(p->sent.s, nl + 1, p->sent.len - l - 1);
        p->sent.len -= l + 1;
    }
    return got;
}

static void check_msg(const sv_qmp_msg *m)
{
    switch (m->kind) {
    case SV_QMP_GARBAGE:
        FUZZ_CHECK(m->obj == NULL, "garbage with an object");
        break;
    case SV_QMP_GREETING: {
        json_object *v;
        FUZZ_CHECK(json_object_object_get_ex(m->obj, "QMP", &v) &&
                       json_object_is_type(v, json_type_object),
                   "a greeting without a QMP object");
        break;
    }
    case SV_QMP_REPLY:
        FUZZ_CHECK(m->obj, "a reply without an object");
        FUZZ_CHECK((m->error_class == NULL) == json_object_object_get_ex(m->obj, "return", NULL),
                   "a reply is neither a return nor an error");
        FUZZ_CHECK((m->error_class == NULL) == (m->error_desc == NULL),
                   "an error class without a desc");
        break;
    case SV_QMP_EVENT:
        FUZZ_CHECK(m->obj && m->event, "an event without a name");
        FUZZ_CHECK(m->event_id == sv_qmp_event_lookup(m->event), "event id");
        FUZZ_CHECK(m->timestamp_us >= -1, "timestamp");
        break;
    default:
        FUZZ_CHECK(0, "kind %d", (int)m->kind);
    }
}

/* The next line of the model, classified alone, must be `got`. */
static void check_same(const model *md, size_t i, const sv_qmp_msg *got)
{
    FUZZ_CHECK(i < md->n, "message %zu read past the %zu lines of the stream", i, md->n);
    sv_qmp_msg want = {0};
    sv_qmp_classify(md->lines[i].p, md->lines[i].len, &want);
    FUZZ_CHECK(want.kind == got->kind, "line %zu: kind %d read, %d alone", i, (int)got->kind,
               (int)want.kind);
    FUZZ_CHECK(json_object_equal(want.obj, got->obj), "line %zu: another object was read", i);
    sv_qmp_msg_clear(&want);
}

/* ---- Framing mode. */

static void run_framing(sv_qmp *q, peer *p, const uint8_t *flags, const char *s, size_t len,
                        size_t cap)
{
    model md;
    model_build(&md, s, len, cap);
    uint32_t st = flags[1];
    unsigned cls = (flags[0] >> 2) & 7;
    size_t pos = 0, idx = 0;
    int end = 0;
    bool closed = false;
    while (!end) {
        if (pos < len) {
            size_t n = chunk_len(cls, &st, s + pos, len - pos);
            peer_send(p, s + pos, n);
            pos += n;
        } else if (!closed) {
            FUZZ_CHECK(shutdown(p->fd, SHUT_WR) == 0, "shutdown");
            closed = true;
        }
        for (;;) {
            sv_qmp_msg m = {0};
            sv_error *err = NULL;
            int r = sv_qmp_read_msg(q, SV_QMP_DEADLINE_DEFAULT, &m, &err);
            if (r == 0) {
                FUZZ_CHECK(!err, "success with an error");
                check_msg(&m);
                check_same(&md, idx++, &m);
                sv_qmp_msg_clear(&m);
                continue;
            }
            FUZZ_CHECK(r != -ETIMEDOUT, "the client waited: %s", sv_error_message(err));
            if (r == -ECHILD) {
                FUZZ_CHECK(!closed, "ECHILD after the end of the stream");
                sv_error_free(err);
                break;
            }
            end = r;
            FUZZ_CHECK(r == -EPROTO || (r == -ECONNRESET && closed),
                       "read_msg: unexpected error %d: %s", r, sv_error_message(err));
            fuzz_check_error(r, err, "sv_qmp_read_msg");
            break;
        }
    }
    FUZZ_CHECK(idx == md.n, "%zu messages read, the stream has %zu lines before its end", idx,
               md.n);
    FUZZ_CHECK(-end == md.end, "the stream ended with %d, expected %d", -end, md.end);
    /* the end is final */
    sv_qmp_msg m = {0};
    sv_error *err = NULL;
    int r = sv_qmp_read_msg(q, SV_QMP_DEADLINE_DEFAULT, &m, &err);
    FUZZ_CHECK(r == end, "read after the end: %d, first %d", r, end);
    fuzz_check_error(r, err, "sv_qmp_read_msg after the end");
    free(md.lines);
}

/* ---- Client mode. */

typedef struct events_seen {
    const model *md;
    size_t next_line; /* where to look for the next event line */
    size_t seen;
} events_seen;

static void on_event(const sv_qmp_msg *ev, void *opaque)
{
    events_seen *es = opaque;
    check_msg(ev);
    FUZZ_CHECK(ev->kind == SV_QMP_EVENT, "the handler got kind %d", (int)ev->kind);
    for (; es->next_line < es->md->n; es->next_line++) {
        const line *l = &es->md->lines[es->next_line];
        sv_qmp_msg m = {0};
        if (sv_qmp_classify(l->p, l->len, &m) == SV_QMP_EVENT) {
            FUZZ_CHECK(json_object_equal(m.obj, ev->obj), "event %zu is not line %zu", es->seen,
                       es->next_line);
            sv_qmp_msg_clear(&m);
            es->next_line++;
            es->seen++;
            return;
        }
        sv_qmp_msg_clear(&m);
    }
    FUZZ_CHECK(0, "an event that is not in the stream");
}

enum {
    OP_EXECUTE,
    OP_WAIT_ANY,
    OP_WAIT_DELETED,
    OP_POP,
    OP_QUERY_STATUS,
    OP_QUERY_PCI,
    OP_QUERY_HOTPLUGGABLE_CPUS,
    OP_QUERY_MEMORY_DEVICES,
    OP_QUERY_CPUS_FAST,
    OP_QUERY_MIGRATE,
    OP_EXECUTE_TEXT,
    OP_DEVICE_DEL_WAIT,
    OP_QUIT,
    OP_QOM_GET,
    OP_SCHEMA,
    OP_WAIT_CLOSED,
    OP__MAX
};

/* Runs one op; *taken counts the events it took off the queue. Raw ops
 * report a protocol error through *raw (their EPROTO means "unusable"). */
static int run_op(sv_qmp *q, unsigned op, size_t *taken, bool *raw, sv_error **err)
{
    int r;
    *raw = false;
    switch (op) {
    case OP_EXECUTE: {
        json_object *ret = NULL;
        *raw = true;
        r = sv_qmp_execute(q, "query-status", NULL, SV_QMP_DEADLINE_DEFAULT, &ret, err);
        json_object_put(ret);
        return r;
    }
    case OP_WAIT_ANY:
    case OP_WAIT_DELETED: {
        sv_qmp_msg m = {0};
        *raw = true;
        r = op == OP_WAIT_ANY
                ? sv_qmp_wait_event(q, NULL, NULL, NULL, SV_QMP_DEADLINE_DEFAULT, &m, err)
                : sv_qmp_wait_event(q, "DEVICE_DELETED", "device", "dev0", SV_QMP_DEADLINE_DEFAULT,
                                    &m, err);
        if (r == 0) {
            check_msg(&m);
            FUZZ_CHECK(m.kind == SV_QMP_EVENT, "wait_event returned kind %d", (int)m.kind);
            (*taken)++;
        }
        sv_qmp_msg_clear(&m);
        return r;
    }
    case OP_POP: {
        sv_qmp_msg m = {0};
        if (sv_qmp_pop_event(q, &m)) {
            check_msg(&m);
            (*taken)++;
        }
        sv_qmp_msg_clear(&m);
        return 0;
    }
    case OP_QUERY_STATUS: {
        sv_qmp_status s;
        r = sv_qmp_query_status(q, SV_QMP_DEADLINE_DEFAULT, &s, err);
        if (r == 0)
            FUZZ_CHECK((unsigned)s.state < SV__QMP_RUN_MAX, "run state %d", (int)s.state);
        return r;
    }
    case OP_QUERY_PCI: {
        sv_qmp_pci_device *d = NULL;
        size_t n = 0;
        r = sv_qmp_query_pci(q, SV_QMP_DEADLINE_DEFAULT, &d, &n, err);
        FUZZ_CHECK(r == 0 || (!d && !n), "query-pci failed and returned devices");
        sv_qmp_pci_devices_free(d, n);
        return r;
    }
    case OP_QUERY_HOTPLUGGABLE_CPUS: {
        sv_qmp_hotpluggable_cpu *c = NULL;
        size_t n = 0;
        r = sv_qmp_query_hotpluggable_cpus(q, SV_QMP_DEADLINE_DEFAULT, &c, &n, err);
        for (size_t i = 0; r == 0 && i < n; i++)
            FUZZ_CHECK(c[i].type, "a hotpluggable CPU without a type");
        sv_qmp_hotpluggable_cpus_free(c, n);
        return r;
    }
    case OP_QUERY_MEMORY_DEVICES: {
        sv_qmp_memory_device *d = NULL;
        size_t n = 0;
        r = sv_qmp_query_memory_devices(q, SV_QMP_DEADLINE_DEFAULT, &d, &n, err);
        sv_qmp_memory_devices_free(d, n);
        return r;
    }
    case OP_QUERY_CPUS_FAST: {
        sv_qmp_cpu_info *c = NULL;
        size_t n = 0;
        r = sv_qmp_query_cpus_fast(q, SV_QMP_DEADLINE_DEFAULT, &c, &n, err);
        sv_qmp_cpu_infos_free(c, n);
        return r;
    }
    case OP_QUERY_MIGRATE: {
        sv_qmp_migration_info mi = {0};
        r = sv_qmp_query_migrate(q, SV_QMP_DEADLINE_DEFAULT, &mi, err);
        if (r == 0)
            FUZZ_CHECK((unsigned)mi.status < SV__QMP_MIG_MAX && mi.raw, "migration info");
        sv_qmp_migration_info_clear(&mi);
        return r;
    }
    case OP_EXECUTE_TEXT: {
        char *ret = NULL;
        *raw = true;
        r = sv_qmp_execute_text(q, "{\"execute\":\"query-version\"}", SV_QMP_DEADLINE_DEFAULT, &ret,
                                err);
        if (r == 0) {
            FUZZ_CHECK(ret, "execute_text: no return text");
            json_object *o = json_tokener_parse(ret);
            FUZZ_CHECK(o || !strcmp(ret, "null"), "execute_text returned bad JSON: %s", ret);
            json_object_put(o);
        }
        free(ret);
        return r;
    }
    case OP_DEVICE_DEL_WAIT:
        r = sv_qmp_device_del_wait(q, "dev0", SV_QMP_DEADLINE_DEFAULT, err);
        if (r == 0)
            (*taken)++;
        return r;
    case OP_QUIT:
        return sv_qmp_quit(q, SV_QMP_DEADLINE_DEFAULT, err);
    case OP_QOM_GET: {
        json_object *v = NULL;
        r = sv_qmp_qom_get(q, "/machine", "type", SV_QMP_DEADLINE_DEFAULT, &v, err);
        json_object_put(v);
        return r;
    }
    case OP_SCHEMA: {
        json_object *schema = NULL;
        r = sv_qmp_query_qmp_schema(q, SV_QMP_DEADLINE_DEFAULT, &schema, err);
        if (r < 0)
            return r;
        sv_qmp_schema *s = NULL;
        sv_error *e = NULL;
        int c = sv_qmp_schema_new(schema, &s, &e);
        if (c == 0) {
            json_object *args = json_tokener_parse(
                "{\"driver\":\"virtio-blk-pci\",\"id\":\"d0\",\"drive\":\"n0\",\"bus\":\"pci.0\"}");
            sv_qmp_schema_has_command(s, "device_add");
            c = sv_qmp_schema_check(s, "device_add", args, &e);
            if (c < 0)
                fuzz_check_error(c, TAKE_PTR(e), "sv_qmp_schema_check");
            c = sv_qmp_schema_check(s, "blockdev-add", json_object_object_get(args, "nonexistent"),
                                    &e);
            if (c < 0)
                fuzz_check_error(c, TAKE_PTR(e), "sv_qmp_schema_check");
            json_object_put(args);
            sv_qmp_schema_free(s);
        } else {
            fuzz_check_error(c, TAKE_PTR(e), "sv_qmp_schema_new");
        }
        json_object_put(schema);
        return 0;
    }
    case OP_WAIT_CLOSED:
        *raw = true;
        return sv_qmp_wait_closed(q, SV_QMP_DEADLINE_DEFAULT, err);
    }
    return 0;
}

static void run_client(sv_qmp *q, peer *p, const uint8_t *flags, const uint8_t *ops, size_t nops,
                       const char *s, size_t len)
{
    bool keep_open = flags[0] & 0x20;
    model md;
    model_build(&md, s, len, 0);
    events_seen es = {.md = &md};
    sv_qmp_set_event_handler(q, on_event, &es);
    peer_send(p, s, len);
    if (!keep_open)
        FUZZ_CHECK(shutdown(p->fd, SHUT_WR) == 0, "shutdown");

    sv_error *err = NULL;
    int r = sv_qmp_handshake(q, SV_QMP_DEADLINE_DEFAULT, &err);
    bool raw = true;
    size_t taken = 0, idle = 0;
    for (size_t i = 0; i < 1024; i++) {
        size_t sent = peer_drain(p);
        FUZZ_CHECK(es.seen == taken + sv_qmp_event_count(q) + sv_qmp_events_dropped(q),
                   "events: %zu seen, %zu taken, %zu queued, %llu dropped", es.seen, taken,
                   sv_qmp_event_count(q), (unsigned long long)sv_qmp_events_dropped(q));
        if (r < 0) {
            FUZZ_CHECK(r != -ETIMEDOUT, "the client waited: %s", sv_error_message(err));
            FUZZ_CHECK(r == -EPROTO || r == -ECONNRESET || r == -ECHILD || r == -ENOTSUP ||
                           r == -EIO,
                       "unexpected error %d: %s", r, sv_error_message(err));
            FUZZ_CHECK(r != -ECHILD || keep_open, "ECHILD with the watched fd idle");
            FUZZ_CHECK(r != -ECONNRESET || !keep_open, "ECONNRESET with the peer open");
            fuzz_check_error(r, TAKE_PTR(err), "client op");
            if (r == -ECONNRESET || r == -ECHILD)
                break;
            if (raw && (r == -EPROTO || r == -ENOTSUP)) {
                /* unusable: a command is refused and nothing is sent */
                r = sv_qmp_execute(q, "query-status", NULL, SV_QMP_DEADLINE_DEFAULT, NULL, &err);
                FUZZ_CHECK(r == -EPROTO, "a command after a protocol error gave %d", r);
                fuzz_check_error(r, TAKE_PTR(err), "command after a protocol error");
                FUZZ_CHECK(peer_drain(p) == 0, "the client sent a command after a protocol error");
                break;
            }
            /* failing without sending: the connection is unusable, every op the same */
            idle = sent == 0 ? idle + 1 : 0;
            if (idle > nops)
                break;
        }
        FUZZ_CHECK(!err, "success with an error");
        if (nops == 0)
            break;
        r = run_op(q, ops[i % nops] % OP__MAX, &taken, &raw, &err);
    }
    sv_error_free(err); /* the last op's, when the loop ran out */
    peer_drain(p);
    free(md.lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t *flags = data;
    bool client = flags[0] & 1;
    size_t cap = flags[0] & 2 ? 4096 : SV_QMP_MAX_MESSAGE;
    static const size_t queue_max[] = {SV_QMP_EVENT_QUEUE_MAX, 1, 2, 4};
    const uint8_t *ops = NULL;
    size_t nops = 0, off = 2;
    if (client) {
        if (size < 3)
            return 0;
        nops = data[2] % 33;
        ops = data + 3;
        off = 3 + nops;
        if (off > size)
            return 0;
    }

    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    peer p = {.fd = sv[1], .sent = SV_STRBUF_INIT};
    FUZZ_CHECK(pipe2(p.watch, O_CLOEXEC) == 0 && write(p.watch[1], "x", 1) == 1, "pipe");
    sv_qmp *q = sv_qmp_new(sv[0]);
    FUZZ_CHECK(q, "sv_qmp_new");
    sv_qmp_set_watch_fd(q, p.watch[0]);
    sv_qmp_set_default_timeout(q, FUZZ_TIMEOUT_MS);
    sv_qmp_set_max_message(q, cap);
    FUZZ_CHECK(sv_qmp_max_message(q) == cap, "max message");
    sv_qmp_set_event_queue_max(q, queue_max[flags[0] >> 6]);

    if (client)
        run_client(q, &p, flags, ops, nops, (const char *)data + off, size - off);
    else
        run_framing(q, &p, flags, (const char *)data + off, size - off, cap);

    sv_qmp_free(q);
    close(p.fd);
    close(p.watch[0]);
    close(p.watch[1]);
    sv_strbuf_free(&p.sent);
    return 0;
}
