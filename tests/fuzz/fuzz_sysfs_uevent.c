/*
 * The sysfs uevent parser on arbitrary bytes, against a model of its
 * documented format written here: lines "KEY=VALUE" split at '\n', empty
 * lines ignored, KEY of [A-Za-z0-9_]+, VALUE any bytes but NUL; refused:
 * more than SV_UEVENT_MAX bytes (EFBIG), a NUL byte, a line without '=', a
 * bad or repeated key (EINVAL). Accepted input must give exactly the model's
 * pairs in order, each found by sv_uevent_get(). Each value also goes
 * through sv_devname_valid() (against its own model) and sv_quote() (only
 * printable ASCII, and it unquotes back to the value).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/sysfs.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* sv_devname_valid() as documented: 1..255 bytes of [A-Za-z0-9._+:@-] in
 * '/'-separated components, none empty, "." or "..". */
static bool devname_model(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 255)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            size_t n = i - start;
            if (n == 0 || (n == 1 && s[start] == '.') ||
                (n == 2 && s[start] == '.' && s[start + 1] == '.'))
                return false;
            start = i + 1;
        } else if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+:@-",
                           s[i])) {
            return false;
        }
    }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void check_quote(const char *value)
{
    char *q = sv_quote(value);
    FUZZ_CHECK(q, "sv_quote: out of memory");
    size_t len = strlen(q), vlen = strlen(value), j = 0;
    FUZZ_CHECK(len >= 2 && q[0] == '"' && q[len - 1] == '"', "sv_quote: not in quotes: %s", q);
    for (size_t i = 1; i + 1 < len; i++) {
        unsigned char c = (unsigned char)q[i];
        FUZZ_CHECK(c >= 0x20 && c < 0x7f && c != '"', "sv_quote: byte 0x%02x left as is", c);
        char want;
        if (c != '\\') {
            want = (char)c;
        } else {
            FUZZ_CHECK(i + 2 < len, "sv_quote: escape at the end: %s", q);
            char e = q[++i];
            if (e == 'n' || e == '"' || e == '\\') {
                want = e == 'n' ? '\n' : e;
            } else {
                FUZZ_CHECK(e == 'x' && i + 3 < len, "sv_quote: unknown escape \\%c", e);
                int hi = hexval(q[i + 1]), lo = hexval(q[i + 2]);
                FUZZ_CHECK(hi >= 0 && lo >= 0, "sv_quote: bad \\x escape in %s", q);
                want = (char)(hi * 16 + lo);
                i += 2;
            }
        }
        FUZZ_CHECK(j < vlen && value[j] == want, "sv_quote: %s does not unquote to the value", q);
        j++;
    }
    FUZZ_CHECK(j == vlen, "sv_quote: %s is shorter than the value", q);
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    sv_uevent ev = {NULL, 0};
    sv_error *err = NULL;
    int r = sv_uevent_parse(text, size, &ev, &err);

    /* the model, walking the same bytes */
    int want = 0;
    size_t npairs = 0;
    struct {
        const char *p;
        size_t len;
    } *keys = calloc(size / 2 + 1, sizeof(*keys));
    FUZZ_CHECK(keys, "out of memory");
    if (size > SV_UEVENT_MAX)
        want = -EFBIG;
    for (size_t pos = 0; !want && pos < size;) {
        const char *l = text + pos, *nl = memchr(l, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - l) : size - pos;
        pos += n + 1;
        if (n == 0)
            continue;
        const char *eq = memchr(l, '=', n);
        size_t klen = eq ? (size_t)(eq - l) : 0;
        bool ok = !memchr(l, '\0', n) && eq && klen > 0;
        for (size_t i = 0; ok && i < klen; i++)
            ok = key_char(l[i]);
        for (size_t i = 0; ok && i < npairs; i++)
            ok = !(keys[i].len == klen && !memcmp(keys[i].p, l, klen));
        if (!ok) {
            want = -EINVAL;
            break;
        }
        if (r == 0) {
            FUZZ_CHECK(npairs < ev.n, "pair %zu (line at byte %zu) missing", npairs,
                       (size_t)(l - text));
            const sv_uevent_var *v = &ev.vars[npairs];
            size_t vlen = n - klen - 1;
            FUZZ_CHECK(strlen(v->key) == klen && !memcmp(v->key, l, klen), "pair %zu: key %s",
                       npairs, v->key);
            FUZZ_CHECK(strlen(v->value) == vlen && !memcmp(v->value, eq + 1, vlen),
                       "pair %zu: value of %s differs", npairs, v->key);
        }
        keys[npairs].p = l;
        keys[npairs].len = klen;
        npairs++;
    }
    free(keys);

    FUZZ_CHECK(r == want, "sv_uevent_parse returned %d, the model %d (%s)", r, want,
               err ? sv_error_message(err) : "no error");
    if (r < 0) {
        FUZZ_CHECK(ev.vars == NULL && ev.n == 0, "a refused uevent left pairs");
        fuzz_check_error(r, err, "sv_uevent_parse");
        return 0;
    }
    FUZZ_CHECK(ev.n == npairs && !err, "%zu pairs parsed, the model has %zu", ev.n, npairs);
    for (size_t i = 0; i < ev.n; i++) {
        FUZZ_CHECK(sv_uevent_get(&ev, ev.vars[i].key) == ev.vars[i].value, "get %s",
                   ev.vars[i].key);
        FUZZ_CHECK(sv_devname_valid(ev.vars[i].value) == devname_model(ev.vars[i].value),
                   "sv_devname_valid(%s) disagrees with its documentation", ev.vars[i].value);
        check_quote(ev.vars[i].value);
    }
    FUZZ_CHECK(!sv_uevent_get(&ev, "") && !sv_uevent_get(&ev, NULL), "get of no key");
    sv_uevent_clear(&ev);
    FUZZ_CHECK(ev.vars == NULL && ev.n == 0, "sv_uevent_clear left pairs");
    return 0;
}
