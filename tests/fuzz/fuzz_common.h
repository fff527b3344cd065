/*
 * What the fuzz targets share: a failed invariant aborts (libFuzzer then
 * saves the input as a crash), an independent strict UTF-8 check, and the
 * check that an argv's shell-quoted text form gives back exactly that argv.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Aborts with the condition, a message and the location when `cond` is false. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
    } while (0)

/* RFC 3629 UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF), written apart from the library's own check on purpose. */
bool fuzz_utf8_valid(const char *s, size_t len);

/* A failed call must say so: r < 0, an error object whose code is -r and
 * whose message is not empty. Frees the error. */
void fuzz_check_error(int r, sv_error *err, const char *what);

/* Splits `text` as a POSIX shell would (single quotes, backslash-newline
 * continuations) and aborts unless the words are exactly argv[0..argc), the
 * text ends with a newline, and every unquoted character is one a shell
 * takes literally. */
void fuzz_check_argv_text(char *const *argv, size_t argc, const char *text);
