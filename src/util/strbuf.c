#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

static bool grow(sv_strbuf *sb, size_t extra)
{
    if (sb->oom)
        return false;
    if (extra > ((size_t)-1) / 2 - sb->len) {
        sb->oom = true;
        return false;
    }
    if (sb->len + extra + 1 <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            sb->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *s = realloc(sb->s, cap);
    if (!s) {
        sb->oom = true;
        return false;
    }
    sb->s = s;
    sb->cap = cap;
    return true;
}

void sv_strbuf_append_n(sv_strbuf *sb, const char *s, size_t n)
{
    if (!grow(sb, n))
        return;
    memcpy(sb->s + sb->len, s, n);
    sb->len += n;
    sb->s[sb->len] = '\0';
}

void sv_strbuf_append(sv_strbuf *sb, const char *s)
{
    sv_strbuf_append_n(sb, s, strlen(s));
}

void sv_strbuf_append_c(sv_strbuf *sb, char c)
{
    sv_strbuf_append_n(sb, &c, 1);
}

void sv_strbuf_appendf(sv_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->oom = true;
        return;
    }
    if (!grow(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->s + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

char *sv_strbuf_steal(sv_strbuf *sb)
{
    if (sb->oom) {
        sv_strbuf_free(sb);
        return NULL;
    }
    char *s = sb->s ? sb->s : strdup("");
    sb->s = NULL;
    sb->len = sb->cap = 0;
    return s;
}

void sv_strbuf_free(sv_strbuf *sb)
{
    free(sb->s);
    sb->s = NULL;
    sb->len = sb->cap = 0;
    sb->oom = false;
}
