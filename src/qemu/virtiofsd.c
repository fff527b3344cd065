#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/virtiofsd.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

char *sv_virtiofsd_escape(const char *s)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    for (const char *p = s; *p; p++) {
        if (*p == ',' || *p == '\\')
            sv_strbuf_append_c(&sb, '\\');
        sv_strbuf_append_c(&sb, *p);
    }
    return sv_strbuf_steal(&sb);
}

char *sv_virtiofsd_source_arg(const sv_vm_config *vm)
{
    _cleanup_free_ char *dir = sv_virtiofsd_escape(vm->shared_dir ? vm->shared_dir : "");
    char *s = NULL;
    return dir && asprintf(&s, "source=%s", dir) >= 0 ? s : NULL;
}

/* virtio_fs_cache as this virtiofsd spells it, or NULL when it has no such mode. */
static const char *cache_mode(int cache)
{
    switch ((sv_vm_fs_cache)cache) {
    case SV_VM_FS_CACHE_NEVER:
        return "none";
    case SV_VM_FS_CACHE_AUTO:
        return "auto";
    case SV_VM_FS_CACHE_ALWAYS:
        return "always";
    case SV_VM_FS_CACHE_METADATA:
    case SV_VM_FS_CACHE__MAX:
        break;
    }
    return NULL;
}

int sv_virtiofsd_argv(const sv_vm_config *vm, int fd, sv_argv **out, sv_error **err)
{
    if (vm->shared_fs != SV_VM_SHARED_FS_VIRTIO_FS || !vm->shared_dir)
        return sv_error_set(err, EINVAL, "shared_fs: virtiofsd serves only shared_fs virtio-fs");
    const char *cache = cache_mode(vm->virtio_fs_cache);
    if (!cache)
        return sv_error_set(err, EINVAL,
                            "virtio_fs_cache: \"%s\" is not a cache mode of QEMU 7.2's virtiofsd "
                            "(it has never, auto and always)",
                            (unsigned)vm->virtio_fs_cache < SV_VM_FS_CACHE__MAX
                                ? sv_vm_fs_cache_names[vm->virtio_fs_cache]
                                : "?");
    _cleanup_argv_ sv_argv *a = sv_argv_new();
    _cleanup_free_ char *source = sv_virtiofsd_source_arg(vm);
    if (!a || !source)
        return sv_error_set(err, ENOMEM, "out of memory");
    sv_argv_add(a, sv_vm_virtiofsd(vm));
    sv_argv_add(a, "-f");
    sv_argv_add_fmt(a, "--fd=%d", fd);
    sv_argv_add_pair(a, "-o", source);
    sv_argv_add_pair_fmt(a, "-o", "cache=%s", cache);
    for (size_t i = 0; vm->virtio_fs_extra_args && vm->virtio_fs_extra_args[i]; i++)
        sv_argv_add(a, vm->virtio_fs_extra_args[i]);
    int r = sv_argv_take_error(a, err);
    if (r < 0)
        return r;
    *out = TAKE_PTR(a);
    return 0;
}

int sv_virtiofsd_start(const sv_vm_config *vm, int listen_fd, int log_fd, int pid_fd,
                       const sv_confine *cf, sv_detached *out, sv_error **err)
{
    _cleanup_argv_ sv_argv *a = NULL;
    /* the listening socket is the daemon's fd 3 */
    int r = sv_virtiofsd_argv(vm, 3, &a, err);
    if (r < 0)
        return r;
    sv_detached_opts o = {
        .fds = &listen_fd, .nfds = 1, .stderr_fd = log_fd, .pid_fd = pid_fd, .confine = cf};
    r = sv_proc_spawn_detached(a->v, &o, out, err);
    if (r < 0)
        return sv_error_prefix(err, "starting virtiofsd");
    return 0;
}
