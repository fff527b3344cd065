/*
 * The QMP client's writing side: commands built by the real command
 * functions (typed calls, property lists, the raw execute and the raw text
 * passthrough) from hostile strings: quotes, backslashes, control
 * characters, U+2028/U+2029, invalid UTF-8.
 *
 * Input: [op] [flags] then up to MAX_STR strings separated by NUL bytes.
 *
 * What the peer (the other end of a socketpair, with the reply already
 * waiting) receives must be either nothing, with the call failing EINVAL, or
 * exactly one line: one JSON object, strictly valid UTF-8, then "\n", whose
 * "execute" and "arguments" parse back to exactly the values given (the
 * expected arguments are built here apart from the library) and whose "id"
 * is 1. A string that is not valid UTF-8 must be refused, never sent; a call
 * whose strings are all valid must succeed unless its inputs break a
 * documented rule (a property given twice, a dotted key both value and
 * parent, text that is not a command).
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
#include "util/qopts.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STR 9
/* 1 would send only valid command names (sv_qmp_execute() refuses names
 * that are not 1-128 of [A-Za-z0-9_.-] since the fix for
 * tests/fuzz/crashes/qmp_writer-command-name-invalid-utf8). */
#define SKIP_INVALID_COMMAND_NAMES 0

enum {
    OP_DEVICE_DEL,
    OP_BLOCKDEV_DEL,
    OP_NETDEV_DEL,
    OP_CHARDEV_REMOVE,
    OP_OBJECT_DEL,
    OP_CLOSEFD,
    OP_MIGRATE,
    OP_MIGRATE_INCOMING,
    OP_GETFD,
    OP_CHARDEV_UNIX,
    OP_QOM_GET,
    OP_QOM_SET,
    OP_DUMP,
    OP_DEVICE_ADD,
    OP_BLOCKDEV_ADD,
    OP_NETDEV_ADD,
    OP_OBJECT_ADD,
    OP_EXECUTE,
    OP_EXECUTE_TEXT,
    OP__MAX
};

typedef struct input {
    unsigned op, flags;
    char *s[MAX_STR]; /* NULL past the last string given */
    size_t n;
} input;

typedef struct expect {
    const char *cmd;       /* the "execute" expected */
    json_object *args;     /* the "arguments" expected (NULL: none) */
    bool bad_utf8;         /* a string that would go out is not valid UTF-8 (or holds a NUL) */
    bool may_refuse;       /* a documented EINVAL other than UTF-8 can apply */
    bool must_refuse;      /* a documented EINVAL applies */
    bool fd;               /* an fd goes along */
    json_object *text_cmd; /* OP_EXECUTE_TEXT: the text parsed here (cmd points into it) */
} expect;

static json_object *jstr(const char *s)
{
    json_object *o = json_object_new_string(s);
    FUZZ_CHECK(o, "out of memory");
    return o;
}

static void note(expect *e, const char *s)
{
    if (s && !fuzz_utf8_valid(s, strlen(s)))
        e->bad_utf8 = true;
}

static void put_str(expect *e, json_object *o, const char *key, const char *v)
{
    note(e, v);
    json_object_object_add(o, key, jstr(v));
}

/* Every key and string inside `v` is valid UTF-8 without NUL bytes: what
 * the client must insist on before sending. */
static bool strings_ok(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_string: {
        const char *str = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        return !memchr(str, '\0', len) && fuzz_utf8_valid(str, len);
    }
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            if (!fuzz_utf8_valid(key, strlen(key)) || !strings_ok(val))
                return false;
        }
        return true;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!strings_ok(json_object_array_get_idx(v, i)))
                return false;
        return true;
    default:
        return true;
    }
}

/* ---- Property lists and what they must become. */

static void add_prop(sv_qopts *o, const input *in, size_t k, const char *key, const char *val,
                     json_object **v)
{
    switch ((in->flags >> (k % 8)) & 3) {
    case 0:
    case 1:
        sv_qopts_str(o, key, val);
        *v = jstr(val);
        break;
    case 2:
        sv_qopts_int(o, key, (int64_t)strlen(val) - 3);
        *v = json_object_new_int64((int64_t)strlen(val) - 3);
        break;
    default:
        sv_qopts_bool(o, key, strlen(val) % 2);
        *v = json_object_new_boolean(strlen(val) % 2);
        break;
    }
}

/* Puts `v` at the dotted `key` of `o` as blockdev-add documents it; false
 * when the list breaks a rule (empty part, a key both value and parent, a
 * key given twice). */
static bool put_dotted(json_object *o, const char *key, json_object *v)
{
    const char *p = key;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0) {
            json_object_put(v);
            return false;
        }
        char *part = strndup(p, n);
        FUZZ_CHECK(part, "out of memory");
        json_object *cur = NULL;
        bool has = json_object_object_get_ex(o, part, &cur);
        if (!dot) {
            if (!has)
                json_object_object_add(o, part, v);
            else
                json_object_put(v);
            free(part);
            return !has;
        }
        if (has && !json_object_is_type(cur, json_type_object)) {
            free(part);
            json_object_put(v);
            return false;
        }
        if (!has) {
            cur = json_object_new_object();
            json_object_object_add(o, part, cur);
        }
        free(part);
        o = cur;
        p = dot + 1;
    }
}

static sv_qopts *build_qopts(const input *in, expect *e, const char *head_key, bool nest)
{
    sv_qopts *o = sv_qopts_new(head_key, in->s[0]);
    FUZZ_CHECK(o, "out of memory");
    e->args = json_object_new_object();
    put_str(e, e->args, head_key, in->s[0]);
    for (size_t k = 1; k + 1 < in->n; k += 2) {
        const char *key = in->s[k], *val = in->s[k + 1];
        json_object *v = NULL;
        add_prop(o, in, k / 2, key, val, &v);
        note(e, key);
        if (json_object_is_type(v, json_type_string))
            note(e, val);
        bool ok;
        if (nest) {
            ok = put_dotted(e->args, key, v);
        } else {
            ok = !json_object_object_get_ex(e->args, key, NULL);
            if (ok)
                json_object_object_add(e->args, key, v);
            else
                json_object_put(v);
        }
        if (!ok)
            e->must_refuse = true;
    }
    return o;
}

/* ---- Running one command. */

static int run(sv_qmp *q, const input *in, expect *e, sv_error **err)
{
    const char *const *s = (const char *const *)in->s;
    const int64_t dl = SV_QMP_DEADLINE_DEFAULT;
    static const struct {
        const char *cmd, *key;
        int (*fn)(sv_qmp *, const char *, int64_t, sv_error **);
    } one[] = {
        [OP_DEVICE_DEL] = {"device_del", "id", sv_qmp_device_del},
        [OP_BLOCKDEV_DEL] = {"blockdev-del", "node-name", sv_qmp_blockdev_del},
        [OP_NETDEV_DEL] = {"netdev_del", "id", sv_qmp_netdev_del},
        [OP_CHARDEV_REMOVE] = {"chardev-remove", "id", sv_qmp_chardev_remove},
        [OP_OBJECT_DEL] = {"object-del", "id", sv_qmp_object_del},
        [OP_CLOSEFD] = {"closefd", "fdname", sv_qmp_closefd},
        [OP_MIGRATE] = {"migrate", "uri", sv_qmp_migrate},
        [OP_MIGRATE_INCOMING] = {"migrate-incoming", "uri", sv_qmp_migrate_incoming},
    };
    int r;
    switch (in->op) {
    case OP_DEVICE_DEL:
    case OP_BLOCKDEV_DEL:
    case OP_NETDEV_DEL:
    case OP_CHARDEV_REMOVE:
    case OP_OBJECT_DEL:
    case OP_CLOSEFD:
    case OP_MIGRATE:
    case OP_MIGRATE_INCOMING:
        if (!s[0])
            return -ENODATA;
        e->cmd = one[in->op].cmd;
        e->args = json_object_new_object();
        put_str(e, e->args, one[in->op].key, s[0]);
        return one[in->op].fn(q, s[0], dl, err);
    case OP_GETFD: {
        if (!s[0])
            return -ENODATA;
        e->cmd = "getfd";
        e->fd = true;
        e->args = json_object_new_object();
        put_str(e, e->args, "fdname", s[0]);
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        FUZZ_CHECK(fd >= 0, "/dev/null");
        r = sv_qmp_getfd(q, s[0], fd, dl, err);
        close(fd);
        return r;
    }
    case OP_CHARDEV_UNIX: {
        if (in->n < 2)
            return -ENODATA;
        bool server = in->flags & 1, wait = in->flags & 2;
        e->cmd = "chardev-add";
        e->args = json_object_new_object();
        put_str(e, e->args, "id", s[0]);
        json_object *backend = json_object_new_object(), *data = json_object_new_object(),
                    *addr = json_object_new_object(), *addr_data = json_object_new_object();
        json_object_object_add(e->args, "backend", backend);
        json_object_object_add(backend, "type", jstr("socket"));
        json_object_object_add(backend, "data", data);
        json_object_object_add(data, "addr", addr);
        json_object_object_add(addr, "type", jstr("unix"));
        json_object_object_add(addr, "data", addr_data);
        put_str(e, addr_data, "path", s[1]);
        json_object_object_add(data, "server", json_object_new_boolean(server));
        if (server)
            json_object_object_add(data, "wait", json_object_new_boolean(wait));
        return sv_qmp_chardev_add_unix_socket(q, s[0], s[1], server, wait, dl, err);
    }
    case OP_QOM_GET: {
        if (in->n < 2)
            return -ENODATA;
        e->cmd = "qom-get";
        e->args = json_object_new_object();
        put_str(e, e->args, "path", s[0]);
        put_str(e, e->args, "property", s[1]);
        json_object *v = NULL;
        r = sv_qmp_qom_get(q, s[0], s[1], dl, &v, err);
        if (r == 0)
            FUZZ_CHECK(json_object_is_type(v, json_type_object) &&
                           json_object_object_length(v) == 0,
                       "qom-get: the reply's value was not handed back");
        json_object_put(v);
        return r;
    }
    case OP_QOM_SET: {
        if (in->n < 3)
            return -ENODATA;
        e->cmd = "qom-set";
        e->args = json_object_new_object();
        put_str(e, e->args, "path", s[0]);
        put_str(e, e->args, "property", s[1]);
        put_str(e, e->args, "value", s[2]);
        json_object *v = jstr(s[2]);
        r = sv_qmp_qom_set(q, s[0], s[1], v, dl, err);
        json_object_put(v);
        return r;
    }
    case OP_DUMP: {
        if (!s[0])
            return -ENODATA;
        bool paging = in->flags & 1;
        const char *format = in->flags & 2 ? s[1] : NULL;
        e->cmd = "dump-guest-memory";
        e->args = json_object_new_object();
        put_str(e, e->args, "protocol", s[0]);
        json_object_object_add(e->args, "paging", json_object_new_boolean(paging));
        if (format)
            put_str(e, e->args, "format", format);
        return sv_qmp_dump_guest_memory(q, s[0], paging, format, dl, err);
    }
    case OP_DEVICE_ADD:
    case OP_BLOCKDEV_ADD:
    case OP_NETDEV_ADD:
    case OP_OBJECT_ADD: {
        if (!s[0])
            return -ENODATA;
        static const struct {
            const char *cmd, *head_key;
            bool nest;
            int (*fn)(sv_qmp *, const sv_qopts *, int64_t, sv_error **);
        } lists[] = {
            {"device_add", "driver", false, sv_qmp_device_add},
            {"blockdev-add", "driver", true, sv_qmp_blockdev_add},
            {"netdev_add", "type", false, sv_qmp_netdev_add},
            {"object-add", "qom-type", false, sv_qmp_object_add},
        };
        unsigned i = in->op - OP_DEVICE_ADD;
        e->cmd = lists[i].cmd;
        sv_qopts *o = build_qopts(in, e, lists[i].head_key, lists[i].nest);
        r = lists[i].fn(q, o, dl, err);
        sv_qopts_free(o);
        return r;
    }
    case OP_EXECUTE: {
        /* {s1: s2, s3: [s4, {s5: s6}], s7: s8}, as far as strings are given;
         * the command name s0 goes out too */
        if (!s[0])
            return -ENODATA;
        /* The client used to send any command name, even invalid UTF-8
         * (tests/fuzz/crashes/README.md); it now refuses non-identifiers. */
        if (SKIP_INVALID_COMMAND_NAMES && !fuzz_utf8_valid(s[0], strlen(s[0])))
            return -ENODATA;
        e->cmd = s[0];
        note(e, s[0]);
        {
            /* a name that is not a QMP identifier is a documented EINVAL */
            size_t nl = strlen(s[0]);
            bool ident = nl > 0 && nl <= 128;
            for (size_t k = 0; ident && k < nl; k++) {
                unsigned char ch = (unsigned char)s[0][k];
                ident = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
            }
            if (!ident)
                e->must_refuse = true;
        }
        json_object *args = json_object_new_object();
        e->args = json_object_new_object();
        for (int pass = 0; pass < 2; pass++) {
            json_object *a = pass ? e->args : args;
            if (in->n >= 3)
                json_object_object_add(a, s[1], jstr(s[2]));
            if (in->n >= 5) {
                json_object *arr = json_object_new_array();
                json_object_array_add(arr, jstr(s[4]));
                if (in->n >= 7) {
                    json_object *inner = json_object_new_object();
                    json_object_object_add(inner, s[5], jstr(s[6]));
                    json_object_array_add(arr, inner);
                }
                json_object_object_add(a, s[3], arr);
            }
            if (in->n >= 9)
                json_object_object_add(a, s[7], jstr(s[8]));
        }
        json_object *ret = NULL;
        r = sv_qmp_execute(q, s[0], args, dl, &ret, err);
        json_object_put(args);
        json_object_put(ret);
        return r;
    }
    case OP_EXECUTE_TEXT: {
        if (!s[0])
            return -ENODATA;
        /* what the text says, parsed strictly: it must go out exactly so */
        e->may_refuse = true;
        note(e, s[0]);
        json_tokener *tok = json_tokener_new_ex(1024);
        FUZZ_CHECK(tok, "out of memory");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        e->text_cmd = json_tokener_parse_ex(tok, s[0], (int)strlen(s[0]));
        bool whole = e->text_cmd && json_tokener_get_parse_end(tok) == strlen(s[0]);
        json_tokener_free(tok);
        json_object *v;
        if (whole && json_object_is_type(e->text_cmd, json_type_object) &&
            json_object_object_get_ex(e->text_cmd, "execute", &v) &&
            json_object_is_type(v, json_type_string)) {
            e->cmd = json_object_get_string(v);
            if (json_object_object_get_ex(e->text_cmd, "arguments", &v))
                e->args = json_object_get(v);
        }
        char *ret = NULL;
        r = sv_qmp_execute_text(q, s[0], dl, &ret, err);
        if (r == 0) {
            FUZZ_CHECK(e->cmd, "execute_text accepted what is not one command: %s", s[0]);
            FUZZ_CHECK(ret && !strcmp(ret, "{}"), "execute_text returned %s", ret ? ret : "NULL");
        }
        free(ret);
        return r;
    }
    }
    return -ENODATA;
}

/* ---- What the peer got. */

static void check_sent(int peer, const expect *e, int r)
{
    char buf[65536];
    sv_strbuf got = SV_STRBUF_INIT;
    int fds = 0;
    for (;;) {
        union {
            char b[CMSG_SPACE(sizeof(int) * 4)];
            struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
        ssize_t n = recvmsg(peer, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n <= 0)
            break;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                close(fd);
                fds++;
            }
        }
        sv_strbuf_append_n(&got, buf, (size_t)n);
    }
    FUZZ_CHECK(!got.oom, "out of memory");
    if (r < 0) {
        FUZZ_CHECK(got.len == 0 && fds == 0, "a refused command sent %zu bytes: %.*s", got.len,
                   (int)got.len, got.s);
        sv_strbuf_free(&got);
        return;
    }
    FUZZ_CHECK(fds == (e->fd ? 1 : 0), "%d fds passed", fds);
    FUZZ_CHECK(got.len > 0 && got.s[got.len - 1] == '\n', "the command does not end in a newline");
    size_t l = got.len - 1;
    FUZZ_CHECK(!memchr(got.s, '\n', l), "a newline inside the command: %.*s", (int)l, got.s);
    FUZZ_CHECK(fuzz_utf8_valid(got.s, l), "the command is not valid UTF-8: %.*s", (int)l, got.s);
    for (size_t i = 0; i < l; i++)
        FUZZ_CHECK((unsigned char)got.s[i] >= 0x20, "a raw control byte 0x%02x in the command",
                   (unsigned char)got.s[i]);

    /* dotted blockdev-add keys nest as deep as they are long: no depth cap
     * here (QEMU's is 1024), each level takes at least 5 bytes ({"":) */
    json_tokener *tok = json_tokener_new_ex((int)(l / 5 + 2));
    FUZZ_CHECK(tok, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, got.s, (int)l);
    FUZZ_CHECK(o && json_tokener_get_parse_end(tok) == l,
               "the command is not exactly one JSON value: %.*s", (int)l, got.s);
    json_tokener_free(tok);
    FUZZ_CHECK(json_object_is_type(o, json_type_object), "the command is not an object");

    json_object *ex = NULL, *id = NULL, *args = NULL;
    FUZZ_CHECK(json_object_object_get_ex(o, "execute", &ex) &&
                   json_object_is_type(ex, json_type_string),
               "no execute");
    if (e->cmd)
        FUZZ_CHECK(!strcmp(json_object_get_string(ex), e->cmd) &&
                       (size_t)json_object_get_string_len(ex) == strlen(e->cmd),
                   "execute %s, expected %s", json_object_get_string(ex), e->cmd);
    FUZZ_CHECK(json_object_object_get_ex(o, "id", &id) && json_object_is_type(id, json_type_int) &&
                   json_object_get_int64(id) == 1,
               "the id is not 1");
    bool has_args = json_object_object_get_ex(o, "arguments", &args);
    FUZZ_CHECK(has_args == (e->args != NULL), "arguments sent: %d, expected: %d", has_args,
               e->args != NULL);
    if (e->text_cmd) {
        /* the raw text goes out as written, plus the id */
        json_object_object_del(o, "id");
        FUZZ_CHECK(json_object_equal(o, e->text_cmd), "the command differs from its text: %s",
                   json_object_to_json_string(o));
    } else {
        FUZZ_CHECK(json_object_object_length(o) == 2 + (has_args ? 1 : 0),
                   "the command has members other than execute, arguments and id");
    }
    if (has_args)
        FUZZ_CHECK(json_object_equal(args, e->args), "arguments differ: sent %s, expected %s",
                   json_object_to_json_string(args), json_object_to_json_string(e->args));
    json_object_put(o);
    sv_strbuf_free(&got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    input in = {.op = data[0] % OP__MAX, .flags = data[1]};
    const char *p = (const char *)data + 2, *end = (const char *)data + size;
    while (in.n < MAX_STR && p <= end) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        size_t l = nul ? (size_t)(nul - p) : (size_t)(end - p);
        in.s[in.n] = strndup(p, l);
        FUZZ_CHECK(in.s[in.n], "out of memory");
        in.n++;
        if (!nul)
            break;
        p = nul + 1;
    }

    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    /* the reply is already there: a command that goes out succeeds */
    static const char reply[] = "{\"return\": {}, \"id\": 1}\n";
    FUZZ_CHECK(send(sv[1], reply, strlen(reply), MSG_NOSIGNAL) == (ssize_t)strlen(reply), "send");
    sv_qmp *q = sv_qmp_new(sv[0]);
    FUZZ_CHECK(q, "sv_qmp_new");
    sv_qmp_set_default_timeout(q, 3000);

    expect e = {0};
    sv_error *err = NULL;
    int r = run(q, &in, &e, &err);
    /* what would go out, keys included, after duplicates replaced earlier ones */
    if (e.args && !strings_ok(e.args))
        e.bad_utf8 = true;
    if (r != -ENODATA) {
        FUZZ_CHECK(r != -ETIMEDOUT, "the client waited: %s", sv_error_message(err));
        if (r < 0) {
            FUZZ_CHECK(r == -EINVAL, "op %u: error %d: %s", in.op, r, sv_error_message(err));
            FUZZ_CHECK(e.bad_utf8 || e.may_refuse || e.must_refuse, "op %u refused valid input: %s",
                       in.op, sv_error_message(err));
            fuzz_check_error(r, TAKE_PTR(err), "command");
        } else {
            FUZZ_CHECK(!e.bad_utf8, "op %u sent a string that is not valid UTF-8", in.op);
            FUZZ_CHECK(!e.must_refuse, "op %u accepted a property list it must refuse", in.op);
            FUZZ_CHECK(!err, "success with an error");
        }
        check_sent(sv[1], &e, r);
    }
    sv_error_free(err);
    json_object_put(e.args);
    json_object_put(e.text_cmd);
    sv_qmp_free(q);
    close(sv[1]);
    for (size_t i = 0; i < in.n; i++)
        free(in.s[i]);
    return 0;
}
