/* The VM configuration: defaults, the JSON form and the checks that need
 * neither the hypervisor layer nor the host (include/sandvm/vm_config.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/vm_config.h"
#include "util/error.h"
#include "util/strbuf.h"


const char *const sv_vm_arch_names[] = {"host", "x86_64", "aarch64", "ppc64le", "s390x", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_vm_arch_names) == SV_VM_ARCH__MAX + 1, "arch names");
const char *const sv_vm_block_driver_names[] = {"virtio-scsi", "virtio-blk", "nvdimm",
                                                "virtio-mmio", "virtio-blk-ccw", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_vm_block_driver_names) == SV_VM_BLOCK__MAX + 1, "block drivers");
const char *const sv_vm_shared_fs_names[] = {"none", "virtio-9p", "virtio-fs", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_vm_shared_fs_names) == SV_VM_SHARED_FS__MAX + 1, "shared fs");
const char *const sv_vm_fs_cache_names[] = {"never", "metadata", "auto", "always", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_vm_fs_cache_names) == SV_VM_FS_CACHE__MAX + 1, "fs cache");
const char *const sv_vm_accel_names[] = {"auto", "kvm", "tcg", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_vm_accel_names) == SV_VM_ACCEL__MAX + 1, "accel names");
const char *const sv_vm_console_names[] = {"serial", "virtio", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_vm_console_names) == SV_VM_CONSOLE__MAX + 1, "console names");

/* The JSON keys are the C field names. */
static const sv_jfield vm_fields[] = {
    SV_JENUM(sv_vm_config, arch, "arch", sv_vm_arch_names),
    SV_JSTR(sv_vm_config, path, "path"),
    SV_JSTR(sv_vm_config, kernel, "kernel"),
    SV_JSTR(sv_vm_config, initrd, "initrd"),
    SV_JSTR(sv_vm_config, image, "image"),
    SV_JSTR(sv_vm_config, kernel_params, "kernel_params"),
    SV_JSTR(sv_vm_config, firmware, "firmware"),
    SV_JSTRV(sv_vm_config, pflash, "pflash"),
    SV_JSTR(sv_vm_config, machine_type, "machine_type"),
    SV_JSTRV(sv_vm_config, machine_accelerators, "machine_accelerators"),
    SV_JSTRV(sv_vm_config, cpu_features, "cpu_features"),
    SV_JINT(sv_vm_config, vcpus, "vcpus", 1, SV_VM_MAX_VCPUS),
    SV_JINT(sv_vm_config, max_vcpus, "max_vcpus", 0, SV_VM_MAX_VCPUS),
    SV_JINT(sv_vm_config, memory, "memory", SV_VM_MIN_MEMORY, SV_VM_MAX_MEMORY),
    SV_JINT(sv_vm_config, max_memory, "max_memory", 0, SV_VM_MAX_MEMORY),
    SV_JINT(sv_vm_config, memory_slots, "memory_slots", 0, SV_VM_MAX_MEMORY_SLOTS),
    SV_JINT(sv_vm_config, memory_offset, "memory_offset", 0, SV_VM_MAX_MEMORY),
    SV_JINT(sv_vm_config, default_bridges, "default_bridges", 0, SV_VM_MAX_BRIDGES),
    SV_JENUM(sv_vm_config, block_device_driver, "block_device_driver", sv_vm_block_driver_names),
    SV_JENUM(sv_vm_config, shared_fs, "shared_fs", sv_vm_shared_fs_names),
    SV_JSTR(sv_vm_config, shared_dir, "shared_dir"),
    SV_JSTR(sv_vm_config, virtio_fs_daemon, "virtio_fs_daemon"),
    SV_JENUM(sv_vm_config, virtio_fs_cache, "virtio_fs_cache", sv_vm_fs_cache_names),
    SV_JSTRV(sv_vm_config, virtio_fs_extra_args, "virtio_fs_extra_args"),
    SV_JBOOL(sv_vm_config, enable_iothreads, "enable_iothreads"),
    SV_JBOOL(sv_vm_config, enable_mem_prealloc, "enable_mem_prealloc"),
    SV_JBOOL(sv_vm_config, enable_hugepages, "enable_hugepages"),
    SV_JBOOL(sv_vm_config, enable_vhost_user_store, "enable_vhost_user_store"),
    SV_JSTR(sv_vm_config, file_mem_backend, "file_mem_backend"),
    SV_JBOOL(sv_vm_config, disable_nesting_checks, "disable_nesting_checks"),
    SV_JBOOL(sv_vm_config, disable_vhost_net, "disable_vhost_net"),
    SV_JBOOL(sv_vm_config, enable_debug, "enable_debug"),
    SV_JBOOL(sv_vm_config, disable_image_nvdimm, "disable_image_nvdimm"),
    SV_JBOOL(sv_vm_config, enable_iommu, "enable_iommu"),
    SV_JBOOL(sv_vm_config, confidential_guest, "confidential_guest"),
    SV_JBOOL(sv_vm_config, sev_snp_guest, "sev_snp_guest"),
    SV_JBOOL(sv_vm_config, hotplug_vfio_on_root_bus, "hotplug_vfio_on_root_bus"),
    SV_JINT(sv_vm_config, pcie_root_port, "pcie_root_port", 0, SV_VM_MAX_PCIE_ROOT_PORTS),
    SV_JSTR(sv_vm_config, entropy_source, "entropy_source"),
    SV_JSTR(sv_vm_config, guest_memory_dump_path, "guest_memory_dump_path"),
    SV_JENUM(sv_vm_config, accel, "accel", sv_vm_accel_names),
    SV_JENUM(sv_vm_config, console, "console", sv_vm_console_names),
    SV_JSTR(sv_vm_config, run_as_user, "run_as_user"),
    SV_JSTR(sv_vm_config, run_as_group, "run_as_group"),
    SV_JINT(sv_vm_config, console_log_size, "console_log_size", 0, SV_VM_MAX_CONSOLE_LOG),
    SV_JEND,
};
static const sv_jschema vm_schema = {sizeof(sv_vm_config), vm_fields};

const sv_jschema *sv_vm_config_schema(void)
{
    return &vm_schema;
}

const char *sv_vm_arch_name(int arch)
{
    return arch >= 0 && arch < SV_VM_ARCH__MAX ? sv_vm_arch_names[arch] : NULL;
}

void sv_vm_config_init_defaults(sv_vm_config *vm, int arch)
{
    memset(vm, 0, sizeof(*vm));
    vm->arch = arch;
    vm->vcpus = 1;
    /* Kata's 2048 MiB is sized for containers with a systemd rootfs; a
     * sandbox's busybox guest needs far less, and under TCG the kernel's
     * per-page initialisation makes boot time grow with RAM. */
    vm->memory = SV_VM_DEFAULT_MEMORY;
    vm->memory_slots = SV_VM_DEFAULT_MEMORY_SLOTS;
    vm->default_bridges = 1;
    /* Kata's virtio-scsi adds a SCSI controller to every VM; virtio-blk
     * needs no controller, so a VM without disks gets no block device. */
    vm->block_device_driver = SV_VM_BLOCK_VIRTIO_BLK;
    vm->shared_fs = SV_VM_SHARED_FS_NONE;
    vm->virtio_fs_cache = SV_VM_FS_CACHE_AUTO;
    /* A writable pmem rootfs let guests modify the shared image
     * (GHSA-wwj6-vghv-5p64): the image goes in as read-only virtio-blk. */
    vm->disable_image_nvdimm = true;
    vm->accel = SV_VM_ACCEL_AUTO;
    vm->console = SV_VM_CONSOLE_SERIAL;
}

size_t sv_strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

const char *sv_vm_entropy_source(const sv_vm_config *vm)
{
    return vm->entropy_source ? vm->entropy_source : SV_VM_DEFAULT_ENTROPY;
}

const char *sv_vm_virtiofsd(const sv_vm_config *vm)
{
    return vm->virtio_fs_daemon ? vm->virtio_fs_daemon : SV_VM_DEFAULT_VIRTIOFSD;
}

int64_t sv_vm_bridges(const sv_vm_config *vm)
{
    return vm->default_bridges > 0 ? vm->default_bridges : 1;
}

int64_t sv_vm_max_vcpus(const sv_vm_config *vm)
{
    return vm->max_vcpus > 0 ? vm->max_vcpus : vm->vcpus;
}

/* ---- checks ---- */

static int key_error(sv_error **err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int key_error(sv_error **err, const char *key, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    int r = sv_error_set(err, EINVAL, "%s: %s", key, n < 0 ? "invalid" : msg);
    free(msg);
    return r;
}

static int check_path(const char *key, const char *value, bool required, sv_error **err)
{
    if (!value || !*value)
        return required ? key_error(err, key, "is required (an absolute path)") : 0;
    if (value[0] != '/')
        return key_error(err, key, "must be an absolute path");
    if (strlen(value) >= 4096)
        return key_error(err, key, "path too long (4095 bytes at most)");
    size_t off = 0;
    const char *bad = sv_text_problem(value, &off);
    if (bad)
        return key_error(err, key,
                         "has %s at byte %zu (paths must be UTF-8 without control characters)",
                         bad, off);
    return 0;
}

static bool word_chars(const char *s, const char *extra)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(isascii((unsigned char)*s) && (isalnum((unsigned char)*s) || strchr(extra, *s))))
            return false;
    return true;
}

/* machine_accelerators[i]: key=value, plain words (they are QEMU options by design). */
static int check_machine_options(const char *const *v, sv_error **err)
{
    for (size_t i = 0; v && v[i]; i++) {
        _cleanup_free_ char *key = sv_json_path_index("machine_accelerators", i);
        const char *eq = strchr(v[i], '=');
        _cleanup_free_ char *name = eq ? strndup(v[i], (size_t)(eq - v[i])) : NULL;
        if (!eq || !name || !word_chars(name, "-_.") || !word_chars(eq + 1, "-_.:"))
            return key_error(err, key ? key : "machine_accelerators",
                             "expected key=value (letters, digits, '-', '_', '.'; the value also "
                             "':'), e.g. \"cap-cfpc=broken\"");
    }
    return 0;
}

static int check_cpu_features(const char *const *v, sv_error **err)
{
    for (size_t i = 0; v && v[i]; i++) {
        _cleanup_free_ char *key = sv_json_path_index("cpu_features", i);
        const char *f = v[i];
        if (*f == '+' || *f == '-')
            f++;
        const char *eq = strchr(f, '=');
        bool ok = word_chars(f, "-_.=") && eq != f && (!eq || (eq[1] && !strchr(eq + 1, '=')));
        if (!ok)
            return key_error(err, key ? key : "cpu_features",
                             "expected [+|-]name or name=value (letters, digits, '-', '_', '.'), "
                             "e.g. \"pmu=off\"");
    }
    return 0;
}

static int check_extra_args(const char *const *v, sv_error **err)
{
    for (size_t i = 0; v && v[i]; i++) {
        _cleanup_free_ char *key = sv_json_path_index("virtio_fs_extra_args", i);
        if (v[i][0] != '-' || !v[i][1])
            return key_error(err, key ? key : "virtio_fs_extra_args",
                             "expected an option starting with '-' (e.g. "
                             "\"--thread-pool-size=1\"): a bare word would be taken as an "
                             "operand by virtiofsd");
    }
    return 0;
}

static int check_enum(const char *key, int v, int max, const char *const *names, sv_error **err)
{
    if (v >= 0 && v < max)
        return 0;
    sv_strbuf sb = SV_STRBUF_INIT;
    for (int i = 0; names[i]; i++)
        sv_strbuf_appendf(&sb, "%s%s", i ? ", " : "", names[i]);
    _cleanup_free_ char *allowed = sv_strbuf_steal(&sb);
    return key_error(err, key, "%d is not one of: %s", v, allowed ? allowed : "?");
}

static int check_range(const char *key, int64_t v, int64_t lo, int64_t hi, sv_error **err)
{
    if (v >= lo && v <= hi)
        return 0;
    return key_error(err, key, "%lld is out of range [%lld, %lld]", (long long)v, (long long)lo,
                     (long long)hi);
}

static int check_ranges(const sv_vm_config *vm, sv_error **err)
{
    int r;
    if ((r = check_enum("arch", vm->arch, SV_VM_ARCH__MAX, sv_vm_arch_names, err)) < 0 ||
        (r = check_enum("block_device_driver", vm->block_device_driver, SV_VM_BLOCK__MAX,
                        sv_vm_block_driver_names, err)) < 0 ||
        (r = check_enum("shared_fs", vm->shared_fs, SV_VM_SHARED_FS__MAX, sv_vm_shared_fs_names,
                        err)) < 0 ||
        (r = check_enum("virtio_fs_cache", vm->virtio_fs_cache, SV_VM_FS_CACHE__MAX,
                        sv_vm_fs_cache_names, err)) < 0 ||
        (r = check_enum("accel", vm->accel, SV_VM_ACCEL__MAX, sv_vm_accel_names, err)) < 0 ||
        (r = check_enum("console", vm->console, SV_VM_CONSOLE__MAX, sv_vm_console_names, err)) < 0)
        return r;
    if ((r = check_range("vcpus", vm->vcpus, 1, SV_VM_MAX_VCPUS, err)) < 0 ||
        (r = check_range("max_vcpus", vm->max_vcpus, 0, SV_VM_MAX_VCPUS, err)) < 0 ||
        (r = check_range("memory", vm->memory, SV_VM_MIN_MEMORY, SV_VM_MAX_MEMORY, err)) < 0 ||
        (r = check_range("max_memory", vm->max_memory, 0, SV_VM_MAX_MEMORY, err)) < 0 ||
        (r = check_range("memory_slots", vm->memory_slots, 0, SV_VM_MAX_MEMORY_SLOTS, err)) < 0 ||
        (r = check_range("memory_offset", vm->memory_offset, 0, SV_VM_MAX_MEMORY, err)) < 0 ||
        (r = check_range("default_bridges", vm->default_bridges, 0, SV_VM_MAX_BRIDGES, err)) < 0 ||
        (r = check_range("pcie_root_port", vm->pcie_root_port, 0, SV_VM_MAX_PCIE_ROOT_PORTS,
                         err)) < 0 ||
        (r = check_range("console_log_size", vm->console_log_size, 0, SV_VM_MAX_CONSOLE_LOG,
                         err)) < 0)
        return r;
    return 0;
}

/* A user or group name as POSIX portable names go (letters, digits, '.', '_',
 * '-', not starting with '-'; at most 32 bytes), or a decimal id. */
static int check_account(const char *key, const char *v, sv_error **err)
{
    if (!v)
        return 0;
    size_t n = strlen(v);
    if (n == 0 || n > 32 || v[0] == '-' || !word_chars(v, "._-"))
        return key_error(err, key,
                         "expected a user or group name (letters, digits, '.', '_', '-') or a "
                         "numeric id");
    return 0;
}

/* A decimal id below 2^32 - 1 (-1 is "no change" to the kernel), or -1. */
static int64_t numeric_id(const char *v)
{
    if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 10)
        return -1;
    long long n = strtoll(v, NULL, 10);
    return n < 4294967295LL ? n : -1;
}

int sv_vm_run_as(const sv_vm_config *vm, uid_t *uid, gid_t *gid, sv_error **err)
{
    if (!vm->run_as_user)
        return 0;
    int r;
    if ((r = check_account("run_as_user", vm->run_as_user, err)) < 0 ||
        (r = check_account("run_as_group", vm->run_as_group, err)) < 0)
        return r;
    char buf[4096];
    struct passwd pw, *pwp = NULL;
    int64_t id = numeric_id(vm->run_as_user);
    if (id >= 0)
        getpwuid_r((uid_t)id, &pw, buf, sizeof(buf), &pwp);
    else
        getpwnam_r(vm->run_as_user, &pw, buf, sizeof(buf), &pwp);
    if (id < 0 && !pwp)
        return key_error(err, "run_as_user", "no user \"%s\" on this host", vm->run_as_user);
    uid_t u = id >= 0 ? (uid_t)id : pwp->pw_uid;
    int64_t g = -1;
    if (vm->run_as_group) {
        g = numeric_id(vm->run_as_group);
        if (g < 0) {
            struct group gr, *grp = NULL;
            getgrnam_r(vm->run_as_group, &gr, buf, sizeof(buf), &grp);
            if (!grp)
                return key_error(err, "run_as_group", "no group \"%s\" on this host",
                                 vm->run_as_group);
            g = grp->gr_gid;
        }
    } else if (pwp) {
        g = pwp->pw_gid;
    } else {
        return key_error(err, "run_as_group",
                         "is required: uid %lld has no entry in the user database to take a "
                         "primary group from",
                         (long long)u);
    }
    if (u == 0)
        return key_error(err, "run_as_user",
                         "\"%s\" is root: name an unprivileged user (or leave it unset)",
                         vm->run_as_user);
    if (g == 0)
        return key_error(err, "run_as_group",
                         "group 0 (root) defeats the point: name an unprivileged group");
    *uid = u;
    *gid = (gid_t)g;
    return 1;
}

static int check_paths(const sv_vm_config *vm, sv_error **err)
{
    int r;
    if (vm->path && *vm->path && vm->path[0] != '/' &&
        !(strncmp(vm->path, "qemu-system-", 12) == 0 && word_chars(vm->path + 12, "_-")))
        return key_error(err, "path",
                         "must be an absolute path or a qemu-system-<arch> name found in PATH");
    if (vm->path && !*vm->path)
        return key_error(err, "path", "is empty");
    if ((r = check_path("kernel", vm->kernel, true, err)) < 0 ||
        (r = check_path("initrd", vm->initrd, false, err)) < 0 ||
        (r = check_path("image", vm->image, false, err)) < 0 ||
        (r = check_path("firmware", vm->firmware, false, err)) < 0 ||
        (r = check_path("shared_dir", vm->shared_dir, false, err)) < 0 ||
        (r = check_path("virtio_fs_daemon", vm->virtio_fs_daemon, false, err)) < 0 ||
        (r = check_path("file_mem_backend", vm->file_mem_backend, false, err)) < 0 ||
        (r = check_path("guest_memory_dump_path", vm->guest_memory_dump_path, false, err)) < 0)
        return r;
    if (vm->entropy_source && *vm->entropy_source &&
        (r = check_path("entropy_source", vm->entropy_source, false, err)) < 0)
        return r;
    for (size_t i = 0; vm->pflash && vm->pflash[i]; i++) {
        _cleanup_free_ char *key = sv_json_path_index("pflash", i);
        if ((r = check_path(key ? key : "pflash", vm->pflash[i], true, err)) < 0)
            return r;
    }
    if (vm->machine_type && !word_chars(vm->machine_type, "-_."))
        return key_error(err, "machine_type",
                         "invalid machine type (letters, digits, '-', '_' and '.')");
    return 0;
}

static int check_memory(const sv_vm_config *vm, sv_error **err)
{
    if (vm->max_memory && vm->max_memory <= vm->memory)
        return key_error(err, "max_memory",
                         "%lld MiB leaves no room for memory hotplug: it must be more than memory "
                         "(%lld MiB), or 0 for none",
                         (long long)vm->max_memory, (long long)vm->memory);
    if (vm->max_memory && vm->memory_slots == 0)
        return key_error(err, "memory_slots", "must be at least 1 for memory hotplug (max_memory)");
    if (vm->enable_hugepages && vm->file_mem_backend)
        return key_error(err, "file_mem_backend",
                         "cannot be combined with enable_hugepages (which backs memory with "
                         "/dev/hugepages)");
    return 0;
}

static int check_sharing(const sv_vm_config *vm, sv_error **err)
{
    int r;
    if (vm->shared_fs == SV_VM_SHARED_FS_NONE) {
        if (vm->shared_dir)
            return key_error(err, "shared_dir", "needs shared_fs virtio-9p or virtio-fs");
    } else if (!vm->shared_dir) {
        return key_error(err, "shared_dir", "is required with shared_fs %s",
                         sv_vm_shared_fs_names[vm->shared_fs]);
    }
    if (vm->shared_fs != SV_VM_SHARED_FS_VIRTIO_FS) {
        if (vm->virtio_fs_daemon)
            return key_error(err, "virtio_fs_daemon", "only applies to shared_fs virtio-fs");
        if (vm->virtio_fs_extra_args)
            return key_error(err, "virtio_fs_extra_args", "only applies to shared_fs virtio-fs");
    }
    if ((r = check_extra_args(vm->virtio_fs_extra_args, err)) < 0)
        return r;
    return 0;
}

static int check_accounts(const sv_vm_config *vm, sv_error **err)
{
    int r;
    if ((r = check_account("run_as_user", vm->run_as_user, err)) < 0 ||
        (r = check_account("run_as_group", vm->run_as_group, err)) < 0)
        return r;
    if (vm->run_as_group && !vm->run_as_user)
        return key_error(err, "run_as_group", "needs run_as_user");
    return 0;
}

static int check_boot(const sv_vm_config *vm, sv_error **err)
{
    if (vm->image && vm->initrd)
        return key_error(err, "image",
                         "cannot be combined with initrd: the guest boots from one of them");
    return 0;
}

static int check_confidential(const sv_vm_config *vm, sv_error **err)
{
    if (!vm->confidential_guest) {
        if (vm->sev_snp_guest)
            return key_error(err, "sev_snp_guest", "only applies with confidential_guest");
        return 0;
    }
    if (vm->accel == SV_VM_ACCEL_TCG)
        return key_error(err, "accel",
                         "tcg cannot run a confidential guest: the protection (TDX, SEV, Secure "
                         "Execution, PEF) is the host CPU's; use kvm or auto");
    if (vm->image && !vm->disable_image_nvdimm)
        return key_error(err, "disable_image_nvdimm",
                         "must be true for a confidential guest: an nvdimm image is host memory "
                         "the guest cannot protect");
    if (vm->block_device_driver == SV_VM_BLOCK_VIRTIO_MMIO ||
        vm->block_device_driver == SV_VM_BLOCK_NVDIMM)
        return key_error(err, "block_device_driver",
                         "%s cannot be used by a confidential guest (allowed: virtio-scsi, "
                         "virtio-blk, virtio-blk-ccw)",
                         sv_vm_block_driver_names[vm->block_device_driver]);
    if (vm->max_memory)
        return key_error(err, "max_memory",
                         "a confidential guest cannot hot-plug memory: leave max_memory 0");
    if (vm->max_vcpus && vm->max_vcpus != vm->vcpus)
        return key_error(err, "max_vcpus",
                         "a confidential guest cannot hot-plug vCPUs: leave max_vcpus 0");
    if (vm->enable_iommu)
        return key_error(err, "enable_iommu", "cannot be used by a confidential guest");
    return 0;
}

int sv_vm_config_validate(const sv_vm_config *vm, sv_error **err)
{
    if (!vm)
        return sv_error_set(err, EINVAL, "sv_vm_config_validate: NULL config");
    int r;
    if ((r = check_ranges(vm, err)) < 0 || (r = check_paths(vm, err)) < 0 ||
        (r = check_machine_options(vm->machine_accelerators, err)) < 0 ||
        (r = check_cpu_features(vm->cpu_features, err)) < 0 || (r = check_boot(vm, err)) < 0 ||
        (r = check_memory(vm, err)) < 0 || (r = check_sharing(vm, err)) < 0 ||
        (r = check_confidential(vm, err)) < 0 || (r = check_accounts(vm, err)) < 0)
        return r;
    if (vm->max_vcpus && vm->max_vcpus < vm->vcpus)
        return key_error(err, "max_vcpus", "%lld is less than vcpus (%lld)",
                         (long long)vm->max_vcpus, (long long)vm->vcpus);
    if (vm->hotplug_vfio_on_root_bus && vm->pcie_root_port == 0)
        return key_error(err, "pcie_root_port",
                         "must be at least 1 with hotplug_vfio_on_root_bus: the root bus itself "
                         "is not hot-pluggable, devices go on root ports");
    return 0;
}

/* ---- JSON ---- */

void sv_vm_config_free(sv_vm_config *vm)
{
    if (!vm)
        return;
    sv_json_free(&vm_schema, vm);
    free(vm);
}

int sv_vm_config_from_json(json_object *obj, sv_vm_config **out, sv_error **err)
{
    if (json_object_get_type(obj) != json_type_object)
        return sv_error_set(err, EINVAL, "(top level): expected an object, got %s",
                            sv_json_type_name(json_object_get_type(obj)));
    /* The arch picks the defaults the other keys start from; a bad value is
     * reported by the decoder below. */
    int arch = SV_VM_ARCH_HOST;
    json_object *a = NULL;
    if (json_object_object_get_ex(obj, "arch", &a) && json_object_get_type(a) == json_type_string)
        for (int i = 0; sv_vm_arch_names[i]; i++)
            if (strcmp(sv_vm_arch_names[i], json_object_get_string(a)) == 0)
                arch = i;
    sv_vm_config *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return sv_error_set(err, ENOMEM, "out of memory");
    sv_vm_config_init_defaults(vm, arch);
    int r = sv_json_decode(&vm_schema, obj, vm, "", err);
    if (r >= 0)
        r = sv_vm_config_validate(vm, err);
    if (r < 0) {
        sv_vm_config_free(vm);
        return r;
    }
    *out = vm;
    return 0;
}

int sv_vm_config_parse(const char *json, size_t len, sv_vm_config **out, sv_error **err)
{
    if (!json || !out)
        return sv_error_set(err, EINVAL, "sv_vm_config_parse: NULL argument");
    _cleanup_json_ json_object *obj = NULL;
    int r = sv_json_parse_config(json, len, &obj, err);
    return r < 0 ? r : sv_vm_config_from_json(obj, out, err);
}

int sv_vm_config_load(const char *path, sv_vm_config **out, sv_error **err)
{
    if (!path || !out)
        return sv_error_set(err, EINVAL, "sv_vm_config_load: NULL argument");
    _cleanup_json_ json_object *obj = NULL;
    int r = sv_json_load_file(path, &obj, err);
    if (r >= 0 && (r = sv_vm_config_from_json(obj, out, err)) < 0)
        sv_error_prefix(err, "%s", path);
    return r;
}
