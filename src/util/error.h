/* The one error object: a code and a message, with context added on the way up. */
#pragma once

#include <stdarg.h>
#include "sandvm/sandvm.h"

struct sv_error {
    int code;  /* positive errno value */
    char *msg;
};

/* Fills *err (when err != NULL and *err == NULL) and returns -code. */
int sv_error_set(sv_error **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int sv_error_setv(sv_error **err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* As sv_error_set, appending ": strerror(code)". */
int sv_error_errno(sv_error **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes "<context>: " to an existing error; returns -code (or -EINVAL if none). */
int sv_error_prefix(sv_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void sv_errorp(sv_error **e)
{
    sv_error_free(*e);
}
#define _cleanup_error_ __attribute__((cleanup(sv_errorp)))
