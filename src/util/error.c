#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static sv_error oom_error = {ENOMEM, (char *)"out of memory"};

int sv_error_code(const sv_error *err)
{
    return err ? err->code : 0;
}

const char *sv_error_message(const sv_error *err)
{
    return err ? err->msg : "";
}

void sv_error_free(sv_error *err)
{
    if (!err || err == &oom_error)
        return;
    free(err->msg);
    free(err);
}

int sv_error_setv(sv_error **err, int code, const char *fmt, va_list ap)
{
    if (code <= 0)
        code = EINVAL;
    if (!err || *err)
        return -code;
    sv_error *e = calloc(1, sizeof(*e));
    if (!e || vasprintf(&e->msg, fmt, ap) < 0) {
        free(e);
        *err = &oom_error;
        return -code;
    }
    e->code = code;
    *err = e;
    return -code;
}

int sv_error_set(sv_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = sv_error_setv(err, code, fmt, ap);
    va_end(ap);
    return r;
}

int sv_error_errno(sv_error **err, int code, const char *fmt, ...)
{
    char *what = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&what, fmt, ap);
    va_end(ap);
    int r = sv_error_set(err, code, "%s: %s", n < 0 ? "?" : what, strerror(code));
    free(what);
    return r;
}

int sv_error_prefix(sv_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -EINVAL;
    if (*err == &oom_error)
        return -ENOMEM;
    char *ctx = NULL, *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&ctx, fmt, ap);
    va_end(ap);
    if (n >= 0 && asprintf(&msg, "%s: %s", ctx, (*err)->msg) >= 0) {
        free((*err)->msg);
        (*err)->msg = msg;
    }
    free(ctx);
    return -(*err)->code;
}
