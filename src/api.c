/* Public entry points for the QEMU configuration (include/sandvm/sandvm.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu/qemu_argv.h"
#include "qemu/qemu_config.h"
#include "util/cleanup.h"
#include "util/json.h"

#define SV_MAX_CONFIG_BYTES (16u << 20)

int sv_qemu_config_parse(const char *json, size_t len, sv_qemu_config **out, sv_error **err)
{
    if (!json || !out)
        return sv_error_set(err, EINVAL, "sv_qemu_config_parse: NULL argument");
    if (len > SV_MAX_CONFIG_BYTES)
        return sv_error_set(err, EFBIG, "configuration larger than 16 MiB");
    _cleanup_json_ json_object *obj = NULL;
    int r = sv_json_parse(json, len, &obj, err);
    if (r < 0)
        return r;
    return sv_qemu_config_from_json(obj, out, err);
}

int sv_qemu_config_load(const char *path, sv_qemu_config **out, sv_error **err)
{
    if (!path || !out)
        return sv_error_set(err, EINVAL, "sv_qemu_config_load: NULL argument");
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return sv_error_errno(err, errno, "opening %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return sv_error_errno(err, errno, "reading %s", path);
    if (!S_ISREG(st.st_mode))
        return sv_error_set(err, EINVAL, "%s: not a regular file", path);
    if ((size_t)st.st_size > SV_MAX_CONFIG_BYTES)
        return sv_error_set(err, EFBIG, "%s: configuration larger than 16 MiB", path);
    _cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return sv_error_set(err, ENOMEM, "out of memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sv_error_errno(err, errno, "reading %s", path);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    int r = sv_qemu_config_parse(buf, got, out, err);
    if (r < 0)
        sv_error_prefix(err, "%s", path);
    return r;
}

int sv_qemu_config_argv(const sv_qemu_config *cfg, char ***argv_out, size_t *argc_out, sv_error **err)
{
    _cleanup_argv_ sv_argv *a = NULL;
    int r = sv_qemu_build_argv(cfg, &a, err);
    if (r < 0)
        return r;
    *argv_out = TAKE_PTR(a->v);
    if (argc_out)
        *argc_out = a->n;
    a->n = 0;
    return 0;
}

int sv_qemu_config_argv_text(const sv_qemu_config *cfg, char **text_out, sv_error **err)
{
    _cleanup_argv_ sv_argv *a = NULL;
    int r = sv_qemu_build_argv(cfg, &a, err);
    if (r < 0)
        return r;
    char *t = sv_argv_to_text(a);
    if (!t)
        return sv_error_set(err, ENOMEM, "out of memory");
    *text_out = t;
    return 0;
}

void sv_strv_free(char **strv)
{
    for (size_t i = 0; strv && strv[i]; i++)
        free(strv[i]);
    free(strv);
}
