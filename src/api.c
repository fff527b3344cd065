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


int sv_qemu_config_parse(const char *json, size_t len, sv_qemu_config **out, sv_error **err)
{
    if (!json || !out)
        return sv_error_set(err, EINVAL, "sv_qemu_config_parse: NULL argument");
    _cleanup_json_ json_object *obj = NULL;
    int r = sv_json_parse_config(json, len, &obj, err);
    return r < 0 ? r : sv_qemu_config_from_json(obj, out, err);
}

int sv_qemu_config_load(const char *path, sv_qemu_config **out, sv_error **err)
{
    if (!path || !out)
        return sv_error_set(err, EINVAL, "sv_qemu_config_load: NULL argument");
    _cleanup_json_ json_object *obj = NULL;
    int r = sv_json_load_file(path, &obj, err);
    if (r >= 0 && (r = sv_qemu_config_from_json(obj, out, err)) < 0)
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
