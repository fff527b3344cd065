#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logger.h"
#include "util/cleanup.h"

#ifndef SV_LIBEXECDIR
#define SV_LIBEXECDIR "/usr/local/libexec"
#endif

static bool executable(const char *path)
{
    return access(path, X_OK) == 0;
}

int sv_logger_path(char **out, sv_error **err)
{
    const char *env = getenv("SANDVM_LOGGER");
    if (env && *env) {
        if (env[0] != '/')
            return sv_error_set(err, EINVAL, "SANDVM_LOGGER: must be an absolute path");
        if (!executable(env))
            return sv_error_errno(err, errno, "SANDVM_LOGGER: %s", env);
        *out = strdup(env);
        return *out ? 0 : sv_error_set(err, ENOMEM, "out of memory");
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    _cleanup_free_ char *next = NULL;
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash && asprintf(&next, "%.*s/%s", (int)(slash - self), self, SV_LOGGER_NAME) < 0)
            next = NULL;
        if (next && executable(next)) {
            *out = TAKE_PTR(next);
            return 0;
        }
    }
    _cleanup_free_ char *installed = NULL;
    if (asprintf(&installed, "%s/%s", SV_LIBEXECDIR, SV_LOGGER_NAME) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    if (executable(installed)) {
        *out = TAKE_PTR(installed);
        return 0;
    }
    return sv_error_set(err, ENOENT,
                        "console_log_size: the console logger %s was not found (looked in "
                        "$SANDVM_LOGGER, %s and %s)",
                        SV_LOGGER_NAME, next ? next : "the program's directory", installed);
}

int sv_logger_start(const char *vm_dir, int dirfd, int qemu_fd, int listen_fd, int pid_fd,
                    uint64_t bytes, const sv_confine *cf, sv_detached *out, sv_error **err)
{
    _cleanup_free_ char *path = NULL;
    int r = sv_logger_path(&path, err);
    if (r < 0)
        return r;
    char size[32];
    snprintf(size, sizeof(size), "%" PRIu64, bytes);
    char *argv[] = {(char *)SV_LOGGER_NAME, (char *)SV_LOGGER_MARK, (char *)vm_dir, (char *)"--size", size,
                    NULL};
    int fds[] = {qemu_fd, listen_fd, dirfd};
    sv_detached_opts o = {.program = path,
                          .fds = fds,
                          .nfds = 3,
                          .stderr_fd = -1,
                          .pid_fd = pid_fd,
                          .confine = cf};
    r = sv_proc_spawn_detached(argv, &o, out, err);
    if (r < 0)
        return sv_error_prefix(err, "starting the console logger");
    return 0;
}
