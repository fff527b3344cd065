/* Scope-bound cleanup and explicit ownership hand-off (systemd's pattern). */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <json-c/json.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void sv_freep(void *p)
{
    free(*(void **)p);
}

static inline void sv_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}

static inline void sv_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

static inline void sv_json_putp(json_object **o)
{
    if (*o)
        json_object_put(*o);
}

#define _cleanup_free_ _cleanup_(sv_freep)
#define _cleanup_close_ _cleanup_(sv_closep)
#define _cleanup_fclose_ _cleanup_(sv_fclosep)
#define _cleanup_json_ _cleanup_(sv_json_putp)

/* Declares `static inline void NAMEp(TYPE **p)` calling FUNC(*p). FUNC accepts NULL. */
#define SV_DEFINE_CLEANUP(type, func)                                                              \
    static inline void func##p(type **p)                                                           \
    {                                                                                              \
        func(*p);                                                                                  \
    }

#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _tp = (p);                                                                   \
        (p) = NULL;                                                                                \
        _tp;                                                                                       \
    })

#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _tf = (fd);                                                                            \
        (fd) = -1;                                                                                 \
        _tf;                                                                                       \
    })

#define SV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
