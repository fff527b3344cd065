/* A growable string. Allocation failure is sticky: later appends are no-ops and
 * sv_strbuf_steal() returns NULL, so callers check once at the end. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct sv_strbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sv_strbuf;

#define SV_STRBUF_INIT {NULL, 0, 0, false}

void sv_strbuf_append(sv_strbuf *sb, const char *s);
void sv_strbuf_append_n(sv_strbuf *sb, const char *s, size_t n);
void sv_strbuf_append_c(sv_strbuf *sb, char c);
void sv_strbuf_appendf(sv_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the string (never NULL unless out of memory; "" for an empty buffer)
 * and resets the buffer. */
char *sv_strbuf_steal(sv_strbuf *sb);
void sv_strbuf_free(sv_strbuf *sb);

static inline void sv_strbuf_freep(sv_strbuf *sb)
{
    sv_strbuf_free(sb);
}
#define _cleanup_strbuf_ __attribute__((cleanup(sv_strbuf_freep)))
