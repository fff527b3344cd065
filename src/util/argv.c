#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/argv.h"

sv_argv *sv_argv_new(void)
{
    sv_argv *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->v = calloc(1, sizeof(char *));
    if (!a->v) {
        free(a);
        return NULL;
    }
    return a;
}

void sv_argv_free(sv_argv *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    free(a->joined);
    free(a->fds);
    sv_error_free(a->err);
    free(a);
}

void sv_argv_fail(sv_argv *a, int code, const char *fmt, ...)
{
    if (a->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    sv_error_setv(&a->err, code, fmt, ap);
    va_end(ap);
}

static void push_owned(sv_argv *a, char *word, bool joined)
{
    if (a->err) {
        free(word);
        return;
    }
    if (!word) {
        sv_argv_fail(a, ENOMEM, "out of memory building the command line");
        return;
    }
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof(*v));
        if (v)
            a->v = v;
        bool *j = v ? realloc(a->joined, cap * sizeof(*j)) : NULL;
        if (!v || !j) {
            free(word);
            sv_argv_fail(a, ENOMEM, "out of memory building the command line");
            return;
        }
        a->joined = j;
        a->cap = cap;
    }
    a->joined[a->n] = joined;
    a->v[a->n++] = word;
    a->v[a->n] = NULL;
}

void sv_argv_add(sv_argv *a, const char *word)
{
    push_owned(a, strdup(word), false);
}

void sv_argv_add_pair(sv_argv *a, const char *opt, const char *value)
{
    push_owned(a, strdup(opt), false);
    push_owned(a, value ? strdup(value) : NULL, true);
}

void sv_argv_add_fmt(sv_argv *a, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    push_owned(a, s, false);
}

void sv_argv_add_pair_fmt(sv_argv *a, const char *opt, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    push_owned(a, strdup(opt), false);
    push_owned(a, s, true);
}

void sv_argv_add_qopts(sv_argv *a, const char *opt, const sv_qopts *o)
{
    push_owned(a, strdup(opt), false);
    push_owned(a, sv_qopts_to_string(o), true);
}

int sv_argv_pass_fd(sv_argv *a, int fd)
{
    if (a->err)
        return -1;
    if (fd < 0) {
        sv_argv_fail(a, EBADF, "invalid file descriptor %d", fd);
        return -1;
    }
    for (size_t i = 0; i < a->nfds; i++)
        if (a->fds[i] == fd)
            return 3 + (int)i;
    int *f = realloc(a->fds, (a->nfds + 1) * sizeof(*f));
    if (!f) {
        sv_argv_fail(a, ENOMEM, "out of memory building the command line");
        return -1;
    }
    a->fds = f;
    a->fds[a->nfds] = fd;
    return 3 + (int)a->nfds++;
}

int sv_argv_take_error(sv_argv *a, sv_error **err)
{
    if (!a->err)
        return 0;
    int code = a->err->code;
    if (err && !*err)
        *err = a->err;
    else
        sv_error_free(a->err);
    a->err = NULL;
    return -code;
}

void sv_shell_quote(sv_strbuf *sb, const char *word)
{
    bool plain = *word != '\0';
    for (const char *p = word; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-",
                       *p) != NULL;
    if (plain) {
        sv_strbuf_append(sb, word);
        return;
    }
    sv_strbuf_append_c(sb, '\'');
    for (const char *p = word; *p; p++) {
        if (*p == '\'')
            sv_strbuf_append(sb, "'\\''");
        else
            sv_strbuf_append_c(sb, *p);
    }
    sv_strbuf_append_c(sb, '\'');
}

char *sv_argv_to_text(const sv_argv *a)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    for (size_t i = 0; i < a->n; i++) {
        if (i > 0)
            sv_strbuf_append(&sb, a->joined[i] ? " " : " \\\n");
        sv_shell_quote(&sb, a->v[i]);
    }
    sv_strbuf_append_c(&sb, '\n');
    return sv_strbuf_steal(&sb);
}
