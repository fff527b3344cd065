/*
 * A command line under construction. Never build one by concatenating strings:
 * each word is added whole. The object remembers its first error (allocation
 * failure, or one set by a builder) so builders check once at the end. Words
 * added together by add_pair() print on one line in sv_argv_to_text().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"
#include "util/qopts.h"

typedef struct sv_argv {
    char **v;        /* NULL-terminated */
    bool *joined;    /* joined[i]: word i continues the line of word i-1 */
    size_t n, cap;
    int *fds;        /* caller fds to hand to the child, child sees fds[i] as 3+i */
    size_t nfds;
    sv_error *err;
} sv_argv;

sv_argv *sv_argv_new(void);
void sv_argv_free(sv_argv *a);
void sv_argv_add(sv_argv *a, const char *word);
void sv_argv_add_pair(sv_argv *a, const char *opt, const char *value);
void sv_argv_add_fmt(sv_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sv_argv_add_pair_fmt(sv_argv *a, const char *opt, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* `-opt <rendered qopts>`; frees nothing. */
void sv_argv_add_qopts(sv_argv *a, const char *opt, const sv_qopts *o);
/* Records that host fd `fd` goes to the child; returns the child's number for
 * it (3, 4, ...; the same number when the fd was passed before), or -1 after
 * an error. */
int sv_argv_pass_fd(sv_argv *a, int fd);
/* Records the first error; later ones are ignored. */
void sv_argv_fail(sv_argv *a, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Moves the remembered error (if any) into *err; returns its -code or 0. */
int sv_argv_take_error(sv_argv *a, sv_error **err);
/* One option per line, shell-quoted, lines joined by " \\\n", final "\n". */
char *sv_argv_to_text(const sv_argv *a);
/* Appends `word` to sb, quoted for a POSIX shell when it needs quoting. */
void sv_shell_quote(sv_strbuf *sb, const char *word);

static inline void sv_argv_freep(sv_argv **a)
{
    sv_argv_free(*a);
}
#define _cleanup_argv_ __attribute__((cleanup(sv_argv_freep)))
