#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "util/strbuf.h"

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: invariant failed: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

bool fuzz_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* past U+10FFFF */
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return false;
        i += n + 1;
    }
    return true;
}

void fuzz_check_error(int r, sv_error *err, const char *what)
{
    FUZZ_CHECK(r < 0, "%s: %d", what, r);
    FUZZ_CHECK(err != NULL, "%s failed (%d) without an error object", what, r);
    FUZZ_CHECK(sv_error_code(err) == -r, "%s: returned %d, error code %d (%s)", what, r,
               sv_error_code(err), sv_error_message(err));
    const char *msg = sv_error_message(err);
    FUZZ_CHECK(msg && *msg, "%s: empty error message", what);
    sv_error_free(err);
}

/* Characters a POSIX shell takes literally outside quotes in any position. */
static bool shell_literal(char c)
{
    return c && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-",
                       c) != NULL;
}

void fuzz_check_argv_text(char *const *argv, size_t argc, const char *text)
{
    size_t len = strlen(text), i = 0, nwords = 0;
    FUZZ_CHECK(len > 0 && text[len - 1] == '\n', "argv text does not end with a newline");
    sv_strbuf word = SV_STRBUF_INIT;
    bool in_word = false;
    for (;;) {
        char c = i < len ? text[i] : '\0';
        if (c == '\0' || c == ' ' || c == '\n') {
            if (in_word) {
                FUZZ_CHECK(!word.oom, "out of memory");
                const char *w = word.s ? word.s : "";
                FUZZ_CHECK(nwords < argc, "argv text has more words than the argv (%zu): extra %s",
                           argc, w);
                FUZZ_CHECK(strcmp(w, argv[nwords]) == 0,
                           "argv text word %zu differs: text <%s>, argv <%s>", nwords, w,
                           argv[nwords]);
                nwords++;
                word.len = 0;
                if (word.s)
                    word.s[0] = '\0';
                in_word = false;
            }
            if (c == '\0')
                break;
            i++;
        } else if (c == '\'') {
            in_word = true;
            const char *end = memchr(text + i + 1, '\'', len - i - 1);
            FUZZ_CHECK(end != NULL, "unterminated single quote at byte %zu", i);
            sv_strbuf_append_n(&word, text + i + 1, (size_t)(end - (text + i + 1)));
            i = (size_t)(end - text) + 1;
        } else if (c == '\\') {
            FUZZ_CHECK(i + 1 < len, "backslash at the end of the argv text");
            if (text[i + 1] == '\n') {
                /* a continuation must follow a separator, or it would join two words */
                FUZZ_CHECK(!in_word, "line continuation inside a word at byte %zu", i);
            } else {
                in_word = true;
                sv_strbuf_append_c(&word, text[i + 1]);
            }
            i += 2;
        } else {
            FUZZ_CHECK(shell_literal(c), "unquoted shell-special byte 0x%02x at byte %zu",
                       (unsigned char)c, i);
            in_word = true;
            sv_strbuf_append_c(&word, c);
            i++;
        }
    }
    sv_strbuf_free(&word);
    FUZZ_CHECK(nwords == argc, "argv text has %zu words, the argv %zu", nwords, argc);
}
