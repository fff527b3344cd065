/*
 * The exec channel's host side. The protocol (frames, HELLO/nonce, EXEC
 * layout, errors) is specified in guest/README.md, "The exec channel"; the
 * guest side is guest/agent/sandvm-agent.c, a standalone file built for every
 * guest arch, so the constants below are repeated there.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/sock.h"
#include "util/strbuf.h"

#define PROTO_VERSION 1u
#define HDR_LEN 12
#define FRAME_MAX (1024u * 1024u) /* the largest payload of any frame */
#define DATA_MAX (64u * 1024u)    /* the largest STDIN/STDOUT/STDERR payload */
#define NONCE_LEN 16
#define HELLO_LEN (4 + NONCE_LEN + 4)
#define DEFAULT_TIMEOUT_MS 120000

static const uint8_t magic[4] = {'S', 'V', 'A', 'G'};

enum {
    T_HELLO = 0x01,
    T_EXEC = 0x02,
    T_STDIN = 0x03,
    T_STDIN_EOF = 0x04,
    T_KILL = 0x05,
    T_HELLO_ACK = 0x81,
    T_STDOUT = 0x82,
    T_STDERR = 0x83,
    T_EXIT = 0x84,
    T_ERROR = 0x85,
};

/* ERROR stages */
enum { E_EXEC = 1, E_CWD = 2, E_REQUEST = 3, E_AGENT = 4 };

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* CRC-32 (IEEE) of the HELLO/HELLO_ACK payload's version and nonce: a HELLO is
 * what the agent scans for in unsynchronised bytes, so a torn one followed by
 * another must not pass for one. */
static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c >> 1 ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* Fletcher-16 of the type, flags and length bytes. */
static uint16_t hdr_check(const uint8_t *h)
{
    unsigned a = 0, b = 0;
    for (int i = 4; i < 10; i++) {
        a = (a + h[i]) % 255;
        b = (b + a) % 255;
    }
    return (uint16_t)(b << 8 | a);
}

static void put_hdr(uint8_t *h, uint8_t type, uint32_t len)
{
    memcpy(h, magic, 4);
    h[4] = type;
    h[5] = 0;
    put32(h + 6, len);
    uint16_t c = hdr_check(h);
    h[10] = (uint8_t)(c >> 8);
    h[11] = (uint8_t)c;
}

static bool hdr_valid(const uint8_t *h)
{
    return memcmp(h, magic, 4) == 0 && h[5] == 0 &&
           (uint16_t)(h[10] << 8 | h[11]) == hdr_check(h) && get32(h + 6) <= DATA_MAX;
}

/* `s` in double quotes with C escapes for quotes, backslashes and control
 * bytes (other bytes as they are), cut after 200 bytes: for error messages. */
static void quote(sv_strbuf *sb, const char *s)
{
    sv_strbuf_append_c(sb, '"');
    size_t i;
    for (i = 0; s[i] && i < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            sv_strbuf_appendf(sb, "\\%c", c);
        else if (c == '\n')
            sv_strbuf_append(sb, "\\n");
        else if (c == '\t')
            sv_strbuf_append(sb, "\\t");
        else if (c < 0x20 || c == 0x7f)
            sv_strbuf_appendf(sb, "\\x%02x", c);
        else
            sv_strbuf_append_c(sb, (char)c);
    }
    sv_strbuf_append_c(sb, '"');
    if (s[i])
        sv_strbuf_append(sb, "...");
}

static char *quoted(const char *s)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    quote(&sb, s);
    return sv_strbuf_steal(&sb);
}

/* ---- the EXEC frame -------------------------------------------------------- */

static void put_str(uint8_t *buf, size_t *off, const char *s, size_t n)
{
    put32(buf + *off, (uint32_t)n);
    memcpy(buf + *off + 4, s, n);
    *off += 4 + n;
}

/* Validates opts and encodes the EXEC frame into a new buffer of at least
 * HDR_LEN + DATA_MAX bytes (reused for the stdin frames). */
static int encode_exec(const sv_exec_opts *o, uint8_t **buf_out, size_t *len_out, sv_error **err)
{
    if (!o || !o->argv || !o->argv[0])
        return sv_error_set(err, EINVAL, "no command to run");
    uint64_t total = 8;
    size_t argc = 0, envc = 0;
    const char *cwd = o->cwd ? o->cwd : "";
    total += 4 + strlen(cwd);
    for (; o->argv[argc]; argc++)
        total += 4 + strlen(o->argv[argc]);
    for (; o->env && o->env[envc]; envc++) {
        const char *e = o->env[envc];
        const char *eq = strchr(e, '=');
        if (!eq || eq == e) {
            _cleanup_free_ char *q = quoted(e);
            return sv_error_set(err, EINVAL, "environment entry %s is not NAME=value", q ? q : "?");
        }
        total += 4 + strlen(e);
    }
    if (total > FRAME_MAX)
        return sv_error_set(err, E2BIG,
                            "the command's arguments, environment and directory take %llu "
                            "bytes encoded; the exec channel carries at most %u",
                            (unsigned long long)total, FRAME_MAX);
    /* (room for a STDIN_EOF frame behind it) */
    size_t cap = HDR_LEN + (size_t)total + HDR_LEN;
    if (cap < HDR_LEN + DATA_MAX)
        cap = HDR_LEN + DATA_MAX;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return sv_error_set(err, ENOMEM, "out of memory");
    put_hdr(buf, T_EXEC, (uint32_t)total);
    size_t off = HDR_LEN;
    put32(buf + off, (uint32_t)argc);
    put32(buf + off + 4, (uint32_t)envc);
    off += 8;
    put_str(buf, &off, cwd, strlen(cwd));
    for (size_t i = 0; i < argc; i++)
        put_str(buf, &off, o->argv[i], strlen(o->argv[i]));
    for (size_t i = 0; i < envc; i++)
        put_str(buf, &off, o->env[i], strlen(o->env[i]));
    *buf_out = buf;
    *len_out = off;
    return 0;
}

/* ---- the connection -------------------------------------------------------- */

#define RX_CAP (2 * (HDR_LEN + DATA_MAX))

typedef struct conn {
    int fd;
    const sv_exec_opts *o;
    uint8_t *rx;
    size_t rx_start, rx_end;
    uint8_t *tx; /* the frame being sent */
    size_t tx_len, tx_off;
    bool stdin_open;
    bool peer_gone; /* sending failed with EPIPE */
} conn;

static int closed_error(sv_error **err)
{
    return sv_error_set(err, ECONNRESET, "the exec channel closed before the command finished");
}

static int cancelled_error(sv_error **err)
{
    return sv_error_set(err, ECANCELED, "the command was cancelled");
}

/* Receives what is there. Returns 1 with bytes added, 0 when nothing was
 * ready, or a negative errno (the channel closed). */
static int conn_recv(conn *c, sv_error **err)
{
    if (c->rx_start > 0) {
        memmove(c->rx, c->rx + c->rx_start, c->rx_end - c->rx_start);
        c->rx_end -= c->rx_start;
        c->rx_start = 0;
    }
    if (c->rx_end == RX_CAP) /* cannot happen: frames are at most half of it */
        return sv_error_set(err, EPROTO, "the guest agent sent a malformed frame");
    for (;;) {
        ssize_t n = recv(c->fd, c->rx + c->rx_end, RX_CAP - c->rx_end, MSG_DONTWAIT);
        if (n > 0) {
            c->rx_end += (size_t)n;
            return 1;
        }
        if (n == 0)
            return closed_error(err);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno == ECONNRESET || errno == EPIPE)
            return closed_error(err);
        return sv_error_errno(err, errno, "reading from the exec channel");
    }
}

/* Sends what the socket takes of the pending frame. When the peer is gone
 * the frame is dropped (and nothing more is sent): what it sent before going
 * is still read, and the end of the stream reported then. */
static int conn_send(conn *c, sv_error **err)
{
    if (c->peer_gone) {
        c->tx_off = c->tx_len = 0;
        return 0;
    }
    while (c->tx_off < c->tx_len) {
        ssize_t n =
            send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            c->tx_off += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno == EPIPE || errno == ECONNRESET) {
            c->peer_gone = true;
            c->tx_off = c->tx_len = 0;
            return 0;
        }
        return sv_error_errno(err, errno, "writing to the exec channel");
    }
    c->tx_off = c->tx_len = 0;
    return 0;
}

static void fmt_seconds(char *buf, size_t n, int ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, n, "%d s", ms / 1000);
    else
        snprintf(buf, n, "%.1f s", ms / 1000.0);
}

/* Waits for the echo of `nonce`, sending the pending HELLO on the way. */
static int greet_wait(conn *c, const char *nonce, int64_t deadline, int timeout_ms, sv_error **err)
{
    for (;;) {
        /* the echo: magic, a valid ACK header, our nonce */
        for (;;) {
            uint8_t *p = c->rx + c->rx_start;
            size_t avail = c->rx_end - c->rx_start;
            uint8_t *m = memmem(p, avail, magic, 4);
            if (!m) {
                c->rx_start += avail > 3 ? avail - 3 : 0;
                break;
            }
            c->rx_start = (size_t)(m - c->rx);
            if (c->rx_end - c->rx_start < HDR_LEN + HELLO_LEN)
                break;
            if (hdr_valid(m) && m[4] == T_HELLO_ACK && get32(m + 6) == HELLO_LEN &&
                !memcmp(m + HDR_LEN + 4, nonce, NONCE_LEN)) {
                uint32_t v = get32(m + HDR_LEN);
                if (v != PROTO_VERSION)
                    return sv_error_set(err, EPROTO,
                                        "the guest agent speaks protocol version %u, not %u", v,
                                        PROTO_VERSION);
                c->rx_start += HDR_LEN + HELLO_LEN;
                return 0;
            }
            c->rx_start++;
        }
        if (c->rx_start > RX_CAP / 2) {
            memmove(c->rx, c->rx + c->rx_start, c->rx_end - c->rx_start);
            c->rx_end -= c->rx_start;
            c->rx_start = 0;
        }

        struct pollfd pf[2] = {
            {.fd = c->fd, .events = (short)(POLLIN | (c->tx_len ? POLLOUT : 0))},
            {.fd = c->o->cancel_fd, .events = POLLIN},
        };
        int r = sv_poll_deadline(pf, 2, deadline, err);
        if (r < 0)
            return r;
        if (r == 0) {
            char t[32];
            fmt_seconds(t, sizeof(t), timeout_ms);
            return sv_error_set(err, ETIMEDOUT,
                                "the guest agent did not answer within %s (is the VM booted "
                                "from the default guest?)",
                                t);
        }
        if (pf[1].revents)
            return cancelled_error(err);
        if (pf[0].revents & POLLOUT && (r = conn_send(c, err)) < 0)
            return r;
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR) && (r = conn_recv(c, err)) < 0)
            return r;
    }
}

/* Sends HELLO and waits for its echo: everything before it (stale output
 * of an earlier connection, garbage) is skipped. */
static int greet(conn *c, int64_t deadline, int timeout_ms, sv_error **err)
{
    char nonce[NONCE_LEN + 1]; /* (sv_random_hex() adds a NUL) */
    sv_random_hex(nonce, NONCE_LEN / 2);
    uint8_t hello[HDR_LEN + HELLO_LEN];
    put_hdr(hello, T_HELLO, HELLO_LEN);
    put32(hello + HDR_LEN, PROTO_VERSION);
    memcpy(hello + HDR_LEN + 4, nonce, NONCE_LEN);
    put32(hello + HDR_LEN + 4 + NONCE_LEN, crc32(hello + HDR_LEN, 4 + NONCE_LEN));
    uint8_t *saved = c->tx;
    c->tx = hello;
    c->tx_len = sizeof(hello);
    c->tx_off = 0;
    int r = greet_wait(c, nonce, deadline, timeout_ms, err);
    c->tx = saved;
    c->tx_len = c->tx_off = 0;
    return r;
}

static int write_out(int fd, const uint8_t *p, size_t len, const char *what, sv_error **err)
{
    if (fd < 0)
        return 0;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, -1) < 0 && errno != EINTR)
                return sv_error_errno(err, errno, "writing the command's %s", what);
            continue;
        }
        return sv_error_errno(err, n < 0 ? errno : EIO, "writing the command's %s", what);
    }
    return 0;
}

static int error_frame(const sv_exec_opts *o, const uint8_t *p, uint32_t len, sv_error **err)
{
    if (len < 8)
        return sv_error_set(err, EPROTO, "the guest agent sent a malformed error");
    uint32_t e = get32(p), stage = get32(p + 4);
    int code = e > 0 && e < 4096 ? (int)e : EIO;
    char msg[256];
    size_t n = len - 8 < sizeof(msg) - 1 ? len - 8 : sizeof(msg) - 1;
    memcpy(msg, p + 8, n);
    msg[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)msg[i] < 0x20)
            msg[i] = '?';
    _cleanup_free_ char *q = NULL;
    switch (stage) {
    case E_EXEC:
        q = quoted(o->argv[0]);
        if (code == ENOENT)
            return sv_error_set(err, ENOENT, "command not found in the guest: %s", q ? q : "?");
        return sv_error_errno(err, code, "cannot run %s in the guest", q ? q : "?");
    case E_CWD:
        q = quoted(o->cwd && o->cwd[0] ? o->cwd : "/");
        return sv_error_errno(err, code, "cannot change to directory %s in the guest", q ? q : "?");
    case E_REQUEST:
        return sv_error_set(err, code, "the guest agent rejected the request: %s", msg);
    default:
        return sv_error_errno(err, code, "the guest agent could not start the command (%s)", msg);
    }
}

/* Handles the complete frames in rx. Returns 1 once the command finished
 * (*exit_status set), 0 to go on, or a negative errno. */
static int dispatch(conn *c, int *exit_status, sv_error **err)
{
    for (;;) {
        uint8_t *h = c->rx + c->rx_start;
        size_t avail = c->rx_end - c->rx_start;
        if (avail < HDR_LEN)
            return 0;
        if (!hdr_valid(h))
            return sv_error_set(err, EPROTO, "the guest agent sent a malformed frame");
        uint32_t len = get32(h + 6);
        if (avail < HDR_LEN + (size_t)len)
            return 0;
        const uint8_t *p = h + HDR_LEN;
        c->rx_start += HDR_LEN + len;
        int r;
        switch (h[4]) {
        case T_STDOUT:
            if ((r = write_out(c->o->stdout_fd, p, len, "stdout", err)) < 0)
                return r;
            break;
        case T_STDERR:
            if ((r = write_out(c->o->stderr_fd, p, len, "stderr", err)) < 0)
                return r;
            break;
        case T_EXIT:
            if (len != 4 || get32(p) > 255 + 128)
                return sv_error_set(err, EPROTO, "the guest agent sent a malformed exit status");
            *exit_status = (int)get32(p);
            return 1;
        case T_ERROR:
            return error_frame(c->o, p, len, err);
        default:
            break; /* a second HELLO_ACK; types of later versions */
        }
    }
}

/* Queues the next stdin frame (data, or STDIN_EOF at its end). */
static int read_stdin(conn *c, sv_error **err)
{
    ssize_t n = read(c->o->stdin_fd, c->tx + HDR_LEN, DATA_MAX);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n < 0)
        return sv_error_errno(err, errno, "reading the command's stdin");
    if (n == 0) {
        put_hdr(c->tx, T_STDIN_EOF, 0);
        c->tx_len = HDR_LEN;
        c->stdin_open = false;
    } else {
        put_hdr(c->tx, T_STDIN, (uint32_t)n);
        c->tx_len = HDR_LEN + (size_t)n;
    }
    c->tx_off = 0;
    return conn_send(c, err);
}

static int run(int fd, const sv_exec_opts *o, int64_t deadline, int timeout_ms, int *exit_status,
               sv_error **err)
{
    _cleanup_free_ uint8_t *exec_frame = NULL;
    size_t exec_len = 0;
    int r = encode_exec(o, &exec_frame, &exec_len, err);
    if (r < 0)
        return r;
    _cleanup_free_ uint8_t *rx = malloc(RX_CAP);
    if (!rx)
        return sv_error_set(err, ENOMEM, "out of memory");
    conn c = {.fd = fd, .o = o, .rx = rx, .tx = exec_frame, .stdin_open = o->stdin_fd >= 0};
    if ((r = greet(&c, deadline, timeout_ms, err)) < 0)
        return r;

    /* the command: no time limit from here on */
    c.tx_len = exec_len;
    c.tx_off = 0;
    if (!c.stdin_open) {
        /* no stdin: its end right behind the request (the buffer has room) */
        put_hdr(exec_frame + exec_len, T_STDIN_EOF, 0);
        c.tx_len += HDR_LEN;
    }
    if ((r = conn_send(&c, err)) < 0)
        return r;
    for (;;) {
        if ((r = dispatch(&c, exit_status, err)) != 0)
            return r < 0 ? r : 0;
        struct pollfd pf[3] = {
            {.fd = fd, .events = (short)(POLLIN | (c.tx_len ? POLLOUT : 0))},
            {.fd = c.stdin_open && !c.tx_len ? o->stdin_fd : -1, .events = POLLIN},
            {.fd = o->cancel_fd, .events = POLLIN},
        };
        if ((r = sv_poll_deadline(pf, 3, SV_NO_DEADLINE, err)) < 0)
            return r;
        if (pf[2].revents) {
            /* the agent kills the command on KILL, or when the connection
             * closes (sv_agent_exec()); best effort, never blocking */
            if (!c.tx_len) {
                uint8_t kill[HDR_LEN];
                put_hdr(kill, T_KILL, 0);
                (void)!send(fd, kill, sizeof(kill), MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            return cancelled_error(err);
        }
        if (pf[0].revents & POLLOUT && (r = conn_send(&c, err)) < 0)
            return r;
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR) && (r = conn_recv(&c, err)) < 0)
            return r;
        if (pf[1].revents && (r = read_stdin(&c, err)) < 0)
            return r;
    }
}

int sv_agent_exec_fd(int fd, const sv_exec_opts *opts, int *exit_status, sv_error **err)
{
    if (!opts)
        return sv_error_set(err, EINVAL, "no command to run");
    int timeout = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    return run(fd, opts, sv_deadline_ms(timeout), timeout, exit_status, err);
}

int sv_agent_exec(const char *socket_path, const sv_exec_opts *opts, int *exit_status,
                  sv_error **err)
{
    if (!opts)
        return sv_error_set(err, EINVAL, "no command to run");
    int timeout = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    int64_t deadline = sv_deadline_ms(timeout);
    _cleanup_close_ int fd = sv_unix_connect(socket_path, deadline, err);
    if (fd < 0)
        return sv_error_prefix(err, "connecting to the exec channel");
    return run(fd, opts, deadline, timeout, exit_status, err);
}
