/*
 * The architecture layer's shared base (Kata's qemuArchBase) and the build
 * that drives the per-arch ops: VM config + host facts -> typed QEMU config.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/arch/arch.h"
#include "qemu/qemu_devices.h"
#include "util/cleanup.h"
#include "util/error.h"

/* Kata: 30 devices per PCI bridge (slots 1..30), first bridge at slot 2. */
#define BRIDGE_FIRST_SLOT 2
/* Kata's CCWBridgeMaxCapacity: the one CCW bridge of s390x (css 0xfe)
 * hands out devnos 0x0000..0xfffe. */
#define CCW_BRIDGE_CAPACITY 0xffff
/* Kata's reserve in the memory-device region for an nvdimm image (MiB). */
#define NVDIMM_IMAGE_RESERVE 1024
/* Kata's virtio_fs_queue_size. */
#define VIRTIOFS_QUEUE_SIZE 1024

static const sv_vm_launch no_launch = {.console_fd = -1, .qmp_fd = -1, .vsock_fd = -1};

const sv_qemu_arch_ops *sv_qemu_arch_ops_get(int arch)
{
    switch (arch) {
    case SV_VM_ARCH_X86_64:
        return &sv_qemu_arch_amd64;
    case SV_VM_ARCH_AARCH64:
        return &sv_qemu_arch_arm64;
    case SV_VM_ARCH_PPC64LE:
        return &sv_qemu_arch_ppc64le;
    case SV_VM_ARCH_S390X:
        return &sv_qemu_arch_s390x;
    default:
        return NULL;
    }
}

int sv_qemu_arch_guest(const sv_vm_config *vm, const sv_host_facts *host)
{
    return vm->arch != SV_VM_ARCH_HOST ? vm->arch : host->arch;
}

static bool kvm_can_boot(const sv_vm_config *vm, const sv_host_facts *host)
{
    return host->kvm_usable && !host->kvm_is_pvm && sv_qemu_arch_guest(vm, host) == host->arch;
}

const char *sv_qemu_arch_accel(const sv_vm_config *vm, const sv_host_facts *host)
{
    switch (vm->accel) {
    case SV_VM_ACCEL_KVM:
        return "kvm";
    case SV_VM_ACCEL_TCG:
        return "tcg";
    default:
        return kvm_can_boot(vm, host) ? "kvm" : "tcg";
    }
}

/* ---- helpers ---- */

int sv_arch_key_error(sv_error **err, const char *key, const char *fmt, ...)
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

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

char *sv_arch_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Copies s into *dst; false on OOM (a NULL s copies as NULL). */
static bool dup_into(char **dst, const char *s)
{
    *dst = sv_arch_strdup(s);
    return *dst || !s;
}

static char *fmt_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_str(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

sv_qdev *sv_arch_add_device(sv_arch_ctx *c, int type)
{
    sv_qemu_config *cfg = c->cfg;
    sv_qdev *v = realloc(cfg->devices, (cfg->n_devices + 1) * sizeof(sv_qdev));
    if (!v)
        return NULL;
    cfg->devices = v;
    sv_qdev *d = &v[cfg->n_devices++];
    memset(d, 0, sizeof(*d));
    d->type = type;
    return d;
}

int sv_arch_virtio(sv_arch_ctx *c, sv_qvirtio *v, sv_error **err)
{
    switch (sv_qemu_config_transport(c->cfg, v->transport)) {
    case SV_QT_CCW:
        if (c->ccw_next >= CCW_BRIDGE_CAPACITY)
            return sv_error_set(err, EINVAL,
                                "the CCW bridge is full: s390x takes at most %d devices",
                                CCW_BRIDGE_CAPACITY);
        if (!(v->dev_no = fmt_str("fe.0.%04x", c->ccw_next++)))
            return oom(err);
        return 0;
    case SV_QT_PCI:
        v->disable_modern = c->nested;
        return 0;
    default:
        return 0;
    }
}

bool sv_arch_machine_is(const sv_arch_ctx *c, const char *base)
{
    static const struct {
        const char *base, *versioned;
    } families[] = {{"q35", "pc-q35-"},          {"pc", "pc-i440fx-"},
                    {"virt", "virt-"},           {"pseries", "pseries-"},
                    {"s390-ccw-virtio", "s390-ccw-virtio-"}, {"microvm", NULL}};
    if (strcmp(c->machine, base) == 0)
        return true;
    for (size_t i = 0; i < SV_ARRAY_SIZE(families); i++)
        if (strcmp(families[i].base, base) == 0 && families[i].versioned &&
            strncmp(c->machine, families[i].versioned, strlen(families[i].versioned)) == 0 &&
            c->machine[strlen(families[i].versioned)])
            return true;
    return false;
}

const char *sv_arch_user_machine_opt(const sv_arch_ctx *c, const char *key)
{
    size_t kl = strlen(key);
    const char *found = NULL;
    for (size_t i = 0; c->vm->machine_accelerators && c->vm->machine_accelerators[i]; i++) {
        const char *o = c->vm->machine_accelerators[i];
        if (strncmp(o, key, kl) == 0 && o[kl] == '=')
            found = o + kl + 1; /* the last one wins, as in QEMU */
    }
    return found;
}

void sv_arch_machine_opt(sv_arch_ctx *c, const char *key, const char *value)
{
    if (sv_arch_user_machine_opt(c, key))
        return;
    sv_strbuf_appendf(&c->machine_opts, "%s%s=%s", c->machine_opts.len ? "," : "", key, value);
}

static bool machine_listed(const sv_arch_ctx *c)
{
    for (size_t i = 0; c->ops->machines[i]; i++)
        if (sv_arch_machine_is(c, c->ops->machines[i]))
            return true;
    return false;
}

static bool machine_has_pcie(const sv_arch_ctx *c)
{
    return sv_arch_machine_is(c, "q35") || sv_arch_machine_is(c, "virt");
}

static bool machine_has_mmio(const sv_arch_ctx *c)
{
    return sv_arch_machine_is(c, "microvm") || sv_arch_machine_is(c, "virt");
}

/* The memory-device region is needed: memory hotplug, nvdimm block devices
 * (memory_offset) or an nvdimm image. */
static bool needs_hotplug_region(const sv_arch_ctx *c, const char **key)
{
    const sv_vm_config *vm = c->vm;
    *key = vm->max_memory ? "max_memory" : vm->memory_offset ? "memory_offset"
           : c->nvdimm_image ? "disable_image_nvdimm" : NULL;
    return *key != NULL;
}

/* ---- base methods ---- */

int sv_arch_base_validate(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    const char *arch = sv_vm_arch_name(c->ops->arch);
    if (!machine_listed(c)) {
        sv_strbuf sb = SV_STRBUF_INIT;
        for (size_t i = 0; c->ops->machines[i]; i++)
            sv_strbuf_appendf(&sb, "%s%s", i ? ", " : "", c->ops->machines[i]);
        _cleanup_free_ char *list = sv_strbuf_steal(&sb);
        return sv_arch_key_error(err, "machine_type",
                                 "\"%s\" is not a machine type sandvm supports on %s (allowed: "
                                 "%s, or a versioned form of one)",
                                 c->machine, arch, list ? list : "?");
    }
    int64_t max = c->ops->max_vcpus(c);
    const char *why = c->ops->arch == SV_VM_ARCH_AARCH64 && c->gic_version == 2
                          ? " with GIC version 2"
                          : "";
    if (vm->vcpus > max)
        return sv_arch_key_error(err, "vcpus", "%lld is more than %s allows%s (%lld)",
                                 (long long)vm->vcpus, arch, why, (long long)max);
    if (vm->max_vcpus > max)
        return sv_arch_key_error(err, "max_vcpus", "%lld is more than %s allows%s (%lld)",
                                 (long long)vm->max_vcpus, arch, why, (long long)max);
    static const char *const reserved[][2] = {
        {"accel", "the accel key"},
        {"memory-backend", "the memory keys (enable_hugepages, file_mem_backend, ...)"},
        {"confidential-guest-support", "confidential_guest"},
        {"nvdimm", "disable_image_nvdimm and block_device_driver"}};
    for (size_t i = 0; vm->machine_accelerators && vm->machine_accelerators[i]; i++)
        for (size_t j = 0; j < SV_ARRAY_SIZE(reserved); j++) {
            size_t kl = strlen(reserved[j][0]);
            if (strncmp(vm->machine_accelerators[i], reserved[j][0], kl) == 0 &&
                vm->machine_accelerators[i][kl] == '=') {
                _cleanup_free_ char *key = sv_json_path_index("machine_accelerators", i);
                return sv_arch_key_error(err, key ? key : "machine_accelerators",
                                         "%s is set by %s", reserved[j][0], reserved[j][1]);
            }
        }
    if (vm->firmware && vm->pflash && vm->pflash[0])
        return sv_arch_key_error(err, "firmware",
                                 "cannot be combined with pflash: the firmware is the first "
                                 "flash image");
    /* Kata: the vIOMMU is q35's intel-iommu. */
    if (vm->enable_iommu && c->ops->arch != SV_VM_ARCH_X86_64)
        return sv_arch_key_error(err, "enable_iommu",
                                 "%s has no vIOMMU sandvm can add (only x86_64 q35 has one, "
                                 "intel-iommu)",
                                 arch);
    if (vm->enable_iommu && !sv_arch_machine_is(c, "q35"))
        return sv_arch_key_error(err, "enable_iommu",
                                 "intel-iommu needs machine q35 (this VM is %s)", c->machine);
    switch (vm->block_device_driver) {
    case SV_VM_BLOCK_VIRTIO_BLK_CCW:
        if (c->ops->arch != SV_VM_ARCH_S390X)
            return sv_arch_key_error(err, "block_device_driver",
                                     "virtio-blk-ccw needs s390x (this VM is %s; use virtio-blk)",
                                     arch);
        break;
    case SV_VM_BLOCK_VIRTIO_MMIO:
        if (!machine_has_mmio(c))
            return sv_arch_key_error(err, "block_device_driver",
                                     "virtio-mmio needs a machine with virtio-mmio transports "
                                     "(x86_64 microvm or aarch64 virt); %s has none",
                                     c->machine);
        break;
    default:
        break;
    }
    if (vm->pcie_root_port && !machine_has_pcie(c))
        return sv_arch_key_error(err, "pcie_root_port",
                                 "needs a PCI Express machine (x86_64 q35 or aarch64 virt); %s "
                                 "has none",
                                 c->machine);
    const char *key = NULL;
    if (needs_hotplug_region(c, &key) && !c->ops->supports_memory_hotplug(c))
        return sv_arch_key_error(err, key,
                                 "needs memory hotplug, which machine %s on %s does not offer%s",
                                 c->machine, arch,
                                 c->ops->arch == SV_VM_ARCH_S390X
                                     ? " (s390x hot-plugs memory with virtio-mem, which QEMU 7.2 "
                                       "lacks)"
                                     : c->ops->arch == SV_VM_ARCH_AARCH64 && !vm->firmware &&
                                               !(vm->pflash && vm->pflash[0])
                                         ? " without firmware (its ACPI device for memory "
                                           "hotplug needs firmware or pflash)"
                                         : "");
    if (vm->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS && !c->launch->virtiofs_socket)
        return sv_arch_key_error(err, "shared_fs",
                                 "virtio-fs needs the socket of a running virtiofsd "
                                 "(sv_vm_launch.virtiofs_socket)");
    if (c->host->mem_mib > 0 && vm->memory > c->host->mem_mib)
        return sv_arch_key_error(err, "memory", "%lld MiB is more than this host has (%lld MiB)",
                                 (long long)vm->memory, (long long)c->host->mem_mib);
    return 0;
}

const char *sv_arch_base_qemu_path(const sv_arch_ctx *c)
{
    return c->vm->path ? c->vm->path : c->ops->qemu_binary;
}

int sv_arch_base_machine(sv_arch_ctx *c, sv_error **err)
{
    sv_qmachine *m = &c->cfg->machine;
    if (!dup_into(&m->type, c->machine) || !dup_into(&m->acceleration, c->kvm ? "kvm" : "tcg"))
        return oom(err);
    if (c->nvdimm_image || c->vm->block_device_driver == SV_VM_BLOCK_NVDIMM)
        sv_arch_machine_opt(c, "nvdimm", "on");
    return 0;
}

void sv_arch_base_kernel_params(const sv_arch_ctx *c, sv_strbuf *sb)
{
}

unsigned sv_arch_base_capabilities(const sv_arch_ctx *c)
{
    unsigned caps = SV_CAP_MULTIQUEUE;
    if (!sv_arch_machine_is(c, "microvm"))
        caps |= SV_CAP_BLOCK_HOTPLUG | SV_CAP_NET_HOTPLUG;
    if (c->vm->shared_fs != SV_VM_SHARED_FS_NONE)
        caps |= SV_CAP_FS_SHARING;
    if (c->vm->max_memory && c->ops->supports_memory_hotplug(c))
        caps |= SV_CAP_MEMORY_HOTPLUG;
    if (sv_vm_max_vcpus(c->vm) > c->vm->vcpus)
        caps |= SV_CAP_CPU_HOTPLUG;
    return caps;
}

int sv_arch_base_bridges(sv_arch_ctx *c, sv_error **err)
{
    /* microvm has no PCI bus and no hotplug (Kata: no bridges). */
    if (sv_arch_machine_is(c, "microvm"))
        return 0;
    int64_t n = sv_vm_bridges(c->vm);
    for (int64_t i = 0; i < n; i++) {
        sv_qdev *d = sv_arch_add_device(c, SV_QDEV_BRIDGE);
        if (!d)
            return oom(err);
        sv_qdev_bridge *b = &d->u.bridge;
        b->bridge_type = SV_BRIDGE_PCI;
        b->chassis = i + 1;
        b->shpc = false;
        if (!(b->id = fmt_str("pci-bridge-%lld", (long long)i)) ||
            !(b->addr = fmt_str("%llx", (long long)(BRIDGE_FIRST_SLOT + i))) ||
            !dup_into(&b->io_reserve, "4k") || !dup_into(&b->mem_reserve, "1m") ||
            !dup_into(&b->pref64_reserve, "1m"))
            return oom(err);
    }
    return 0;
}

int sv_arch_base_cpu_topology(sv_arch_ctx *c, sv_error **err)
{
    sv_qsmp *s = &c->cfg->smp;
    s->cpus = c->vm->vcpus;
    /* A confidential guest cannot hot-plug CPUs: QEMU's default maxcpus = cpus. */
    if (c->protection != SV_PROT_NONE)
        return 0;
    int64_t max = sv_vm_max_vcpus(c->vm);
    s->cores = 1;
    s->threads = 1;
    s->sockets = max;
    s->max_cpus = max;
    return 0;
}

const char *sv_arch_base_cpu_model(const sv_arch_ctx *c)
{
    /* TCG has no "host"; "max" is everything TCG emulates. */
    return c->kvm ? "host" : "max";
}

const char *const *sv_arch_base_cpu_features(const sv_arch_ctx *c)
{
    return NULL;
}

/* MiB as QEMU's size string. */
static char *mib(int64_t v)
{
    return fmt_str("%lldM", (long long)v);
}

int sv_arch_base_memory_topology(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    sv_qmemory *m = &c->cfg->memory;
    if (!(m->size = mib(vm->memory)))
        return oom(err);
    const char *key = NULL;
    if (needs_hotplug_region(c, &key)) {
        int64_t max = (vm->max_memory ? vm->max_memory : vm->memory) + vm->memory_offset;
        if (c->nvdimm_image) {
            int64_t img = (c->launch->image_size + (1 << 20) - 1) >> 20;
            int64_t reserve = (img + NVDIMM_IMAGE_RESERVE - 1) / NVDIMM_IMAGE_RESERVE *
                              NVDIMM_IMAGE_RESERVE;
            max += reserve > NVDIMM_IMAGE_RESERVE ? reserve : NVDIMM_IMAGE_RESERVE;
        }
        /* ppc64le (Kata): the hashed page table grows in 256 MiB steps */
        if (c->ops->maxmem_align) {
            int64_t aligned = max / c->ops->maxmem_align * c->ops->maxmem_align;
            if (aligned <= vm->memory)
                return sv_arch_key_error(err, key,
                                         "the memory ceiling of %lld MiB aligns down to %lld MiB on "
                                         "%s (%lld MiB steps), which leaves no room above memory "
                                         "(%lld MiB)",
                                         (long long)max, (long long)aligned,
                                         sv_vm_arch_name(c->ops->arch),
                                         (long long)c->ops->maxmem_align, (long long)vm->memory);
            max = aligned;
        }
        m->slots = vm->memory_slots;
        if (!(m->max_mem = mib(max)))
            return oom(err);
    }
    sv_qknobs *k = &c->cfg->knobs;
    k->huge_pages = vm->enable_hugepages;
    /* Kata: hugepages imply prealloc. */
    k->mem_prealloc = vm->enable_mem_prealloc || vm->enable_hugepages;
    const char *mem_file = c->launch->memory_file;
    if (mem_file) {
        const char *other = vm->enable_hugepages ? "enable_hugepages"
                            : vm->file_mem_backend ? "file_mem_backend"
                                                   : NULL;
        if (other)
            return sv_arch_key_error(err, other,
                                     "cannot be combined with a memory file (template memory)");
        if (vm->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS && !c->launch->memory_file_shared)
            return sv_arch_key_error(err, "shared_fs",
                                     "virtio-fs needs guest RAM its daemon can map, which a "
                                     "private mapping of a template's memory is not");
        if (vm->enable_vhost_user_store && !c->launch->memory_file_shared)
            return sv_arch_key_error(err, "enable_vhost_user_store",
                                     "vhost-user backends need guest RAM they can map, which a "
                                     "private mapping of a template's memory is not");
        k->file_backed_mem = true;
        k->mem_shared = c->launch->memory_file_shared;
        if (!dup_into(&m->path, mem_file))
            return oom(err);
    }
    if (vm->file_mem_backend) {
        k->file_backed_mem = true;
        if (!dup_into(&m->path, vm->file_mem_backend))
            return oom(err);
    }
    /* vhost-user backends (virtiofsd; hot-plugged vhost-user-blk/-fs with
     * enable_vhost_user_store) map guest RAM: it must be shared and fd-backed. */
    if (vm->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS || vm->enable_vhost_user_store) {
        k->mem_shared = true;
        if (!vm->enable_hugepages && !vm->file_mem_backend && !mem_file) {
            k->file_backed_mem = true;
            if (!dup_into(&m->path, "/dev/shm"))
                return oom(err);
        }
    }
    return 0;
}

/* The 8250 UART's name, and a virtconsole's. */
const char *sv_arch_base_console_name(const sv_arch_ctx *c)
{
    return c->vm->console == SV_VM_CONSOLE_VIRTIO ? "hvc0" : "ttyS0";
}

/* The virtio-serial controller "serial0", added once. */
static int ensure_virtio_serial(sv_arch_ctx *c, sv_error **err)
{
    for (size_t i = 0; i < c->cfg->n_devices; i++)
        if (c->cfg->devices[i].type == SV_QDEV_SERIAL)
            return 0;
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_SERIAL);
    if (!d)
        return oom(err);
    if (!dup_into(&d->u.serial.id, "serial0"))
        return oom(err);
    return sv_arch_virtio(c, &d->u.serial.v, err);
}

int sv_arch_base_append_console(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_launch *l = c->launch;
    if (!l->console_path && l->console_fd < 0)
        return 0;
    if (l->console_path && l->console_fd >= 0)
        return sv_error_set(err, EINVAL, "launch: console_fd and console_path exclude each other");
    if (l->console_fd >= 0 && l->console_fd < 3)
        return sv_error_set(err, EINVAL, "launch: console_fd %d is a standard stream", l->console_fd);
    int r;
    bool virtio = c->vm->console == SV_VM_CONSOLE_VIRTIO;
    if (virtio && (r = ensure_virtio_serial(c, err)) < 0)
        return r;
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_CHAR);
    if (!d)
        return oom(err);
    sv_qdev_char *ch = &d->u.chr;
    ch->backend = SV_CHAR_SOCKET;
    ch->client = l->console_connect;
    /* driver serial: -serial chardev:..., the machine's own UART */
    ch->driver = virtio ? SV_CHARDRV_VIRTCONSOLE : SV_CHARDRV_SERIAL;
    ch->fd = l->console_fd >= 0 ? l->console_fd : 0;
    if (ch->fd) {
        ch->client = false;
        ch->fd_listening = l->console_listening;
    }
    if (!dup_into(&ch->id, "charconsole0") || (!ch->fd && !dup_into(&ch->path, l->console_path)) ||
        (virtio && !dup_into(&ch->device_id, "console0")))
        return oom(err);
    return 0;
}

int sv_arch_base_append_block(sv_arch_ctx *c, const sv_arch_block *b, sv_error **err)
{
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_BLOCK);
    if (!d)
        return oom(err);
    sv_qdev_block *blk = &d->u.block;
    blk->aio = SV_AIO_THREADS;
    blk->read_only = b->read_only;
    blk->share_rw = b->read_only;
    if (!dup_into(&blk->id, b->id) || !dup_into(&blk->file, b->file) ||
        !dup_into(&blk->format, b->format ? b->format : "raw"))
        return oom(err);
    int driver = c->vm->block_device_driver;
    if (driver == SV_VM_BLOCK_VIRTIO_SCSI) {
        blk->driver = SV_BLK_SCSI_HD;
        return dup_into(&blk->bus, "scsi0.0") ? 0 : oom(err);
    }
    if (driver == SV_VM_BLOCK_NVDIMM)
        return sv_arch_key_error(err, "block_device_driver",
                                 "nvdimm block devices are hot-plugged by size, not cold-plugged");
    blk->driver = SV_BLK_VIRTIO_BLK;
    if (driver == SV_VM_BLOCK_VIRTIO_MMIO)
        blk->v.transport = SV_QT_MMIO;
    if (c->io_thread && !dup_into(&blk->io_thread, c->io_thread))
        return oom(err);
    return sv_arch_virtio(c, &blk->v, err);
}

/* The root file system image: read-only virtio-blk, or an nvdimm (Kata's
 * appendImage / appendNvdimmImage). */
int sv_arch_base_append_image(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    if (!vm->image)
        return 0;
    if (c->nvdimm_image) {
        sv_qdev *b = sv_arch_add_device(c, SV_QDEV_MEMORY_BACKEND);
        if (!b)
            return oom(err);
        sv_qdev_memory_backend *mb = &b->u.memory_backend;
        mb->backend = SV_MEMBE_FILE;
        mb->read_only = true;
        if (!dup_into(&mb->id, "mem0") || !dup_into(&mb->mem_path, vm->image) ||
            !(mb->size = fmt_str("%lld", (long long)c->launch->image_size)))
            return oom(err);
        sv_qdev *n = sv_arch_add_device(c, SV_QDEV_DIMM);
        if (!n)
            return oom(err);
        n->u.dimm.driver = SV_DIMM_NVDIMM;
        n->u.dimm.unarmed = true;
        if (!dup_into(&n->u.dimm.id, "nv0") || !dup_into(&n->u.dimm.memdev, "mem0"))
            return oom(err);
        return 0;
    }
    /* The image is a virtio-blk disk whatever block_device_driver says
     * (Kata's appendBlockImage); only the transport follows virtio-mmio. */
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_BLOCK);
    if (!d)
        return oom(err);
    sv_qdev_block *blk = &d->u.block;
    blk->driver = SV_BLK_VIRTIO_BLK;
    blk->aio = SV_AIO_THREADS;
    blk->read_only = true;
    blk->share_rw = true;
    if (vm->block_device_driver == SV_VM_BLOCK_VIRTIO_MMIO)
        blk->v.transport = SV_QT_MMIO;
    if (!dup_into(&blk->id, "image0") || !dup_into(&blk->file, vm->image) ||
        !dup_into(&blk->format, "raw") ||
        (c->io_thread && !dup_into(&blk->io_thread, c->io_thread)))
        return oom(err);
    return sv_arch_virtio(c, &blk->v, err);
}

int sv_arch_base_append_scsi_controller(sv_arch_ctx *c, sv_error **err)
{
    if (c->vm->block_device_driver != SV_VM_BLOCK_VIRTIO_SCSI)
        return 0;
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_SCSI_CONTROLLER);
    if (!d)
        return oom(err);
    if (!dup_into(&d->u.scsi_controller.id, "scsi0") ||
        (c->io_thread && !dup_into(&d->u.scsi_controller.io_thread, c->io_thread)))
        return oom(err);
    return sv_arch_virtio(c, &d->u.scsi_controller.v, err);
}

int sv_arch_base_append_9p(sv_arch_ctx *c, const char *id, const char *dir, const char *tag,
                           sv_error **err)
{
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_FS);
    if (!d)
        return oom(err);
    sv_qdev_fs *fs = &d->u.fs;
    fs->fs_driver = SV_FSDRV_LOCAL;
    fs->security_model = SV_SM_NONE;
    /* Kata: remap inode numbers of nested mounts so they never collide. */
    fs->multidev = SV_MD_REMAP;
    if (!dup_into(&fs->id, id) || !dup_into(&fs->path, dir) || !dup_into(&fs->mount_tag, tag))
        return oom(err);
    return sv_arch_virtio(c, &fs->v, err);
}

int sv_arch_base_append_socket(sv_arch_ctx *c, const char *id, const char *path, int fd,
                               const char *name, sv_error **err)
{
    if ((fd > 0) == (path != NULL))
        return sv_error_set(err, EINVAL, "launch: the agent channel needs exactly one of a "
                                         "socket path and a listening fd");
    if (fd > 0 && fd < 3)
        return sv_error_set(err, EINVAL, "launch: agent_fd %d is a standard stream", fd);
    int r = ensure_virtio_serial(c, err);
    if (r < 0)
        return r;
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_CHAR);
    if (!d)
        return oom(err);
    sv_qdev_char *ch = &d->u.chr;
    ch->backend = SV_CHAR_SOCKET;
    ch->driver = SV_CHARDRV_VIRTSERIALPORT;
    ch->fd = fd > 0 ? fd : 0;
    ch->fd_listening = fd > 0;
    if (!(ch->id = fmt_str("char%s", id)) || !dup_into(&ch->device_id, id) ||
        !dup_into(&ch->path, path) || !dup_into(&ch->name, name))
        return oom(err);
    return 0;
}

int sv_arch_base_append_vsock(sv_arch_ctx *c, int64_t cid, int fd, sv_error **err)
{
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_VSOCK);
    if (!d)
        return oom(err);
    d->u.vsock.context_id = cid;
    d->u.vsock.vhost_fd = fd > 0 ? fd : 0;
    if (!(d->u.vsock.id = fmt_str("vsock-%lld", (long long)cid)))
        return oom(err);
    return sv_arch_virtio(c, &d->u.vsock.v, err);
}

static int64_t *dup_fds(const int64_t *fds, size_t n)
{
    int64_t *v = malloc((n ? n : 1) * sizeof(int64_t));
    if (v && n)
        memcpy(v, fds, n * sizeof(int64_t));
    return v;
}

int sv_arch_base_append_network(sv_arch_ctx *c, const sv_arch_net *n, sv_error **err)
{
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_NET);
    if (!d)
        return oom(err);
    sv_qdev_net *net = &d->u.net;
    net->net_type = SV_NET_TAP;
    net->vhost = c->vhost_net;
    if (!dup_into(&net->id, n->id) || !dup_into(&net->mac_address, n->mac))
        return oom(err);
    if (n->n_fds) {
        if (!(net->fds = dup_fds(n->fds, n->n_fds)))
            return oom(err);
        net->n_fds = n->n_fds;
    }
    if (net->vhost && n->n_vhost_fds) {
        if (!(net->vhost_fds = dup_fds(n->vhost_fds, n->n_vhost_fds)))
            return oom(err);
        net->n_vhost_fds = n->n_vhost_fds;
    }
    return sv_arch_virtio(c, &net->v, err);
}

int sv_arch_base_append_vhost_user(sv_arch_ctx *c, const sv_arch_vhost_user *v, sv_error **err)
{
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_VHOST_USER);
    if (!d)
        return oom(err);
    sv_qdev_vhost_user *vu = &d->u.vhost_user;
    vu->vhost_user_type = v->type;
    vu->queue_size = v->queue_size;
    if (!dup_into(&vu->socket_path, v->socket_path) || !(vu->char_dev_id = fmt_str("char%s", v->id)) ||
        !dup_into(&vu->type_dev_id, v->id) || !dup_into(&vu->tag, v->tag))
        return oom(err);
    return sv_arch_virtio(c, &vu->v, err);
}

sv_qdev_object *sv_arch_add_protection_object(sv_arch_ctx *c, int object_type, const char *id,
                                              sv_error **err)
{
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_OBJECT);
    if (!d || !(d->u.object.id = sv_arch_strdup(id))) {
        oom(err);
        return NULL;
    }
    d->u.object.object_type = object_type;
    return &d->u.object;
}

int sv_arch_base_append_vfio(sv_arch_ctx *c, const sv_arch_vfio *v, sv_error **err)
{
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_VFIO);
    if (!d)
        return oom(err);
    sv_qdev_vfio *f = &d->u.vfio;
    f->transport = SV_QT_PCI;
    if (!dup_into(&f->id, v->id) || !dup_into(&f->bdf, v->bdf) ||
        !dup_into(&f->sysfsdev, v->sysfsdev) || !dup_into(&f->bus, v->bus))
        return oom(err);
    return 0;
}

int sv_arch_base_append_rng(sv_arch_ctx *c, sv_error **err)
{
    const char *src = sv_vm_entropy_source(c->vm);
    /* "" asks for no RNG; confidential guests get none (Kata: the host's
     * entropy is not trusted inside a TEE). */
    if (!*src || c->protection != SV_PROT_NONE)
        return 0;
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_RNG);
    if (!d)
        return oom(err);
    d->u.rng.backend = SV_RNG_RANDOM;
    if (!dup_into(&d->u.rng.id, "rng0") || !dup_into(&d->u.rng.filename, src))
        return oom(err);
    return sv_arch_virtio(c, &d->u.rng.v, err);
}

int sv_arch_base_append_iommu(sv_arch_ctx *c, sv_error **err)
{
    return 0;
}

int sv_arch_base_append_pflash(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    size_t n = sv_strv_len(vm->pflash);
    if (n) {
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
            return oom(err);
        c->cfg->pflash = v;
        for (size_t i = 0; i < n; i++)
            if (!(v[i] = strdup(vm->pflash[i])))
                return oom(err);
    }
    /* SEV takes the firmware as read-only flash through its object. */
    if (vm->firmware && c->protection != SV_PROT_SEV && !dup_into(&c->cfg->bios, vm->firmware))
        return oom(err);
    return 0;
}

int sv_arch_base_append_pvpanic(sv_arch_ctx *c, sv_error **err)
{
    if (!c->vm->guest_memory_dump_path)
        return 0;
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_PVPANIC);
    if (!d)
        return oom(err);
    /* QEMU stays after a panic so the guest's memory can be dumped. */
    d->u.pvpanic.no_shutdown = true;
    return 0;
}

int sv_arch_base_append_pcie_root_ports(sv_arch_ctx *c, sv_error **err)
{
    for (int64_t i = 0; i < c->vm->pcie_root_port; i++) {
        sv_qdev *d = sv_arch_add_device(c, SV_QDEV_PCIE_ROOT_PORT);
        if (!d)
            return oom(err);
        d->u.pcie_root_port.chassis = 0;
        d->u.pcie_root_port.slot = i;
        if (!(d->u.pcie_root_port.id = fmt_str("rp%lld", (long long)i)))
            return oom(err);
    }
    return 0;
}

bool sv_arch_base_supports_memory_hotplug(const sv_arch_ctx *c)
{
    return c->protection == SV_PROT_NONE;
}

int sv_arch_base_append_protection(sv_arch_ctx *c, sv_error **err)
{
    return 0;
}

/* ---- the build ---- */

static int resolve_accel(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    const sv_host_facts *h = c->host;
    int guest = c->ops->arch;
    if (vm->accel != SV_VM_ACCEL_KVM && !(vm->accel == SV_VM_ACCEL_AUTO && vm->confidential_guest)) {
        c->kvm = vm->accel == SV_VM_ACCEL_AUTO && kvm_can_boot(vm, h);
        return 0;
    }
    /* explicit kvm, or auto for a confidential guest, which only KVM runs */
    const char *what = vm->accel == SV_VM_ACCEL_KVM
                           ? "kvm cannot be used"
                           : "a confidential guest needs kvm, which cannot be used";
    const char *hint = vm->accel == SV_VM_ACCEL_KVM ? "; use tcg or auto" : "";
    if (guest != h->arch)
        return sv_arch_key_error(err, "accel",
                                 "%s: KVM runs guests of the host's architecture only, and this "
                                 "host is %s, the guest %s%s",
                                 what, sv_vm_arch_name(h->arch), sv_vm_arch_name(guest), hint);
    if (!h->kvm_usable)
        return sv_arch_key_error(err, "accel",
                                 "%s: /dev/kvm is missing or cannot be opened read-write on this "
                                 "host%s",
                                 what, hint);
    if (h->kvm_is_pvm)
        return sv_arch_key_error(err, "accel",
                                 "%s: this host's KVM is PVM (module kvm_pvm), which boots only "
                                 "PVM-enabled guest kernels, not an ordinary guest%s",
                                 what, hint);
    c->kvm = true;
    return 0;
}

static int resolve_protection(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    if (!vm->confidential_guest)
        return 0;
    switch (c->host->protection) {
    case SV_PROT_SNP:
        c->protection = vm->sev_snp_guest ? SV_PROT_SNP : SV_PROT_SEV;
        return 0;
    case SV_PROT_NONE:
        return sv_arch_key_error(err, "confidential_guest",
                                 "this host offers no guest protection (no TDX, SEV, SEV-SNP, "
                                 "Secure Execution or PEF found under %s)",
                                 c->host->sysfs_root ? c->host->sysfs_root : "/sys");
    default:
        if (vm->sev_snp_guest)
            return sv_arch_key_error(err, "sev_snp_guest",
                                     "this host offers %s, not SEV-SNP",
                                     sv_protection_names[c->host->protection]);
        c->protection = c->host->protection;
        return 0;
    }
}

/* The longest kernel command line each arch's boot protocol takes. */
static size_t cmdline_max(int arch)
{
    /* s390x: QEMU's ipl refuses more than the kernel's 896-byte parmarea. */
    return arch == SV_VM_ARCH_S390X ? 896 : 2047;
}

static int kernel(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    sv_qkernel *k = &c->cfg->kernel;
    const char *initrd = c->launch->initrd_override ? c->launch->initrd_override : vm->initrd;
    if (!dup_into(&k->path, vm->kernel) || !dup_into(&k->initrd_path, initrd))
        return oom(err);

    /* Kata's order: arch params, debug set, root params, console, panic,
     * nr_cpus, then the user's (the kernel takes the last of a repeated
     * parameter, so the user's win). */
    _cleanup_strbuf_ sv_strbuf sb = SV_STRBUF_INIT;
    c->ops->kernel_params(c, &sb);
    bool image = vm->image != NULL;
    const char *debug = vm->enable_debug
                            ? (image ? "debug systemd.show_status=true systemd.log_level=debug"
                                     : "debug")
                            : (image ? "quiet systemd.show_status=false" : "quiet");
    sv_strbuf_appendf(&sb, "%s%s", sb.len ? " " : "", debug);
    if (image) {
        /* Kata's image layout: ext4 in partition 1. DAX maps the nvdimm
         * directly, except on aarch64 (Kata: kernel panic in caches_clean_inval_pou). */
        if (c->nvdimm_image)
            sv_strbuf_appendf(&sb, " root=/dev/pmem0p1 rootflags=%sdata=ordered,"
                                   "errors=remount-ro ro rootfstype=ext4",
                              c->ops->arch == SV_VM_ARCH_AARCH64 ? "" : "dax,");
        else
            sv_strbuf_append(&sb, " root=/dev/vda1 rootflags=data=ordered,errors=remount-ro ro "
                                  "rootfstype=ext4");
    }
    sv_strbuf_appendf(&sb, " console=%s panic=1", c->ops->console_name(c));
    if (c->protection == SV_PROT_NONE)
        sv_strbuf_appendf(&sb, " nr_cpus=%lld", (long long)sv_vm_max_vcpus(vm));
    if (vm->kernel_params && *vm->kernel_params)
        sv_strbuf_appendf(&sb, " %s", vm->kernel_params);
    if (c->launch->extra_kernel_params && *c->launch->extra_kernel_params)
        sv_strbuf_appendf(&sb, " %s", c->launch->extra_kernel_params);
    if (sb.oom)
        return oom(err);
    size_t max = cmdline_max(c->ops->arch);
    if (sb.len > max)
        return sv_arch_key_error(err, "kernel_params",
                                 "the kernel command line would be %zu bytes; %s takes at most %zu",
                                 sb.len, sv_vm_arch_name(c->ops->arch), max);
    k->params = sv_strbuf_steal(&sb);
    return k->params ? 0 : oom(err);
}

static int cpu(sv_arch_ctx *c, sv_error **err)
{
    const char *model = c->ops->cpu_model(c);
    const char *const *features =
        c->vm->cpu_features ? c->vm->cpu_features : c->ops->cpu_features(c);
    size_t n = sv_strv_len(features);
    if (n && !model)
        return sv_arch_key_error(err, "cpu_features", "needs a CPU model, which %s leaves to QEMU",
                                 sv_vm_arch_name(c->ops->arch));
    if (!dup_into(&c->cfg->cpu_model, model))
        return oom(err);
    if (!n)
        return 0;
    char **v = calloc(n + 1, sizeof(char *));
    if (!v)
        return oom(err);
    c->cfg->cpu_features = v;
    for (size_t i = 0; i < n; i++)
        if (!(v[i] = strdup(features[i])))
            return oom(err);
    return 0;
}

static int qmp(sv_arch_ctx *c, sv_error **err)
{
    if (c->launch->qmp_fd < 0)
        return 0;
    sv_qqmp_socket *q = calloc(1, sizeof(*q));
    if (!q)
        return oom(err);
    q->fd = c->launch->qmp_fd;
    q->server = true;
    q->no_wait = true;
    c->cfg->qmp_sockets = q;
    c->cfg->n_qmp_sockets = 1;
    return 0;
}

static int machine_options(sv_arch_ctx *c, sv_error **err)
{
    /* the user's machine_accelerators come last; the arch's options with
     * the same keys were left out by sv_arch_machine_opt() */
    for (size_t i = 0; c->vm->machine_accelerators && c->vm->machine_accelerators[i]; i++)
        sv_strbuf_appendf(&c->machine_opts, "%s%s", c->machine_opts.len ? "," : "",
                          c->vm->machine_accelerators[i]);
    if (c->machine_opts.oom)
        return oom(err);
    if (c->machine_opts.len && !(c->cfg->machine.options = sv_strbuf_steal(&c->machine_opts)))
        return oom(err);
    return 0;
}

/* Devices the launch brings: shared file system, agent channel, vsock,
 * network, extra disks, VFIO. */
static int launch_devices(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    const sv_vm_launch *l = c->launch;
    const sv_qemu_arch_ops *ops = c->ops;
    int r;
    if (vm->shared_fs == SV_VM_SHARED_FS_VIRTIO_9P &&
        (r = ops->append_9p(c, "extra-9p-" SV_VM_SHARED_TAG, vm->shared_dir, SV_VM_SHARED_TAG,
                            err)) < 0)
        return r;
    if (vm->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS) {
        sv_arch_vhost_user v = {.type = SV_VU_FS, .id = "virtiofs0",
                                .socket_path = l->virtiofs_socket, .tag = SV_VM_SHARED_TAG,
                                .queue_size = VIRTIOFS_QUEUE_SIZE};
        if ((r = ops->append_vhost_user(c, &v, err)) < 0)
            return r;
    }
    if ((l->agent_socket || l->agent_fd > 0) &&
        (r = ops->append_socket(c, "channel0", l->agent_socket, l->agent_fd, "agent.channel.0",
                                err)) < 0)
        return r;
    if (l->vsock_cid && (r = ops->append_vsock(c, l->vsock_cid, l->vsock_fd, err)) < 0)
        return r;
    if (l->n_net_fds) {
        sv_arch_net n = {.id = "network-0", .fds = l->net_fds, .n_fds = l->n_net_fds,
                         .vhost_fds = l->vhost_net_fds, .n_vhost_fds = l->n_vhost_net_fds,
                         .mac = l->net_mac};
        if ((r = ops->append_network(c, &n, err)) < 0)
            return r;
    }
    for (size_t i = 0; l->vfio_devices && l->vfio_devices[i]; i++) {
        _cleanup_free_ char *id = fmt_str("vfio%zu", i);
        /* cold-plugged devices go on the root ports while there are some,
         * so they can be unplugged later */
        _cleanup_free_ char *bus = (int64_t)i < vm->pcie_root_port ? fmt_str("rp%zu", i) : NULL;
        if (!id || ((int64_t)i < vm->pcie_root_port && !bus))
            return oom(err);
        sv_arch_vfio v = {.id = id, .bdf = l->vfio_devices[i], .bus = bus};
        if ((r = ops->append_vfio(c, &v, err)) < 0)
            return r;
    }
    return 0;
}

static int build(sv_arch_ctx *c, sv_error **err)
{
    const sv_qemu_arch_ops *ops = c->ops;
    const sv_vm_config *vm = c->vm;
    int r;
    if ((r = resolve_accel(c, err)) < 0 || (r = resolve_protection(c, err)) < 0)
        return r;
    /* Kata (runtime#1871): legacy virtio dodges an old nested-KVM bug; TCG
     * never had it. */
    c->nested = c->kvm && !vm->disable_nesting_checks && sv_host_is_nested(c->host);
    c->vhost_net = !vm->disable_vhost_net;
    c->nvdimm_image = vm->image && !vm->disable_image_nvdimm && c->protection == SV_PROT_NONE;
    if ((r = ops->validate(c, err)) < 0)
        return r;
    if (c->nvdimm_image && c->launch->image_size <= 0)
        return sv_arch_key_error(err, "image",
                                 "attaching the image as nvdimm needs its size "
                                 "(sv_vm_launch.image_size)");

    sv_qemu_config *cfg = c->cfg;
    cfg->arch = ops->qemu_arch;
    if (!dup_into(&cfg->path, ops->qemu_path(c)))
        return oom(err);
    if (vm->enable_iothreads) {
        if (!(cfg->io_threads = calloc(1, sizeof(sv_qiothread))) ||
            !(cfg->io_threads[0].id = strdup("iothread0")))
            return oom(err);
        cfg->n_io_threads = 1;
        c->io_thread = strdup("iothread0");
        if (!c->io_thread)
            return oom(err);
    }
    if ((r = ops->machine(c, err)) < 0 || (r = cpu(c, err)) < 0 ||
        (r = ops->cpu_topology(c, err)) < 0 || (r = ops->memory_topology(c, err)) < 0)
        return r;
    /* A sandbox boots what it is told and nothing else: no default
     * devices, no user config files, no display, and a guest reboot ends QEMU. */
    cfg->knobs.no_user_config = true;
    cfg->knobs.no_defaults = true;
    cfg->knobs.no_graphic = true;
    cfg->knobs.no_reboot = true;
    cfg->knobs.stopped = c->launch->paused;
    /* seccomp: the strongest set QEMU 7.2 runs with outside -daemonize (which
     * sandvm never uses): no obsolete syscalls, no setuid/setgid/capset, no
     * fork/exec, no scheduler or resource-limit changes */
    if (!dup_into(&cfg->seccomp_sandbox, SV_ARCH_SANDBOX))
        return oom(err);
    if (c->launch->incoming_defer)
        cfg->incoming.migration_type = SV_QMIG_DEFER;
    if (!dup_into(&cfg->pid_file, c->launch->pid_file))
        return oom(err);
    if ((r = kernel(c, err)) < 0 || (r = ops->append_pflash(c, err)) < 0 || (r = qmp(c, err)) < 0)
        return r;
    /* Kata's buildDevices order: bridges first, so they get slots 2, 3, ... */
    if ((r = ops->bridges(c, err)) < 0 || (r = ops->append_console(c, err)) < 0 ||
        (r = ops->append_image(c, err)) < 0 || (r = ops->append_iommu(c, err)) < 0 ||
        (r = ops->append_pvpanic(c, err)) < 0 || (r = ops->append_scsi_controller(c, err)) < 0 ||
        (r = ops->append_protection(c, err)) < 0 || (r = ops->append_rng(c, err)) < 0 ||
        (r = ops->append_pcie_root_ports(c, err)) < 0 || (r = launch_devices(c, err)) < 0)
        return r;
    for (size_t i = 0; c->launch->disks && c->launch->disks[i]; i++) {
        _cleanup_free_ char *id = fmt_str("disk%zu", i);
        if (!id)
            return oom(err);
        sv_arch_block b = {.id = id, .file = c->launch->disks[i]};
        if ((r = ops->append_block(c, &b, err)) < 0)
            return r;
    }
    return machine_options(c, err);
}

/* vm's machine type: the config's, else the arch's default for this launch. */
static const char *machine_of(const sv_qemu_arch_ops *ops, const sv_vm_config *vm,
                              const sv_host_facts *host, const sv_vm_launch *launch)
{
    if (vm->machine_type)
        return vm->machine_type;
    return ops->default_machine ? ops->default_machine(vm, host, launch) : ops->machines[0];
}

unsigned sv_qemu_arch_capabilities(const sv_vm_config *vm, const sv_host_facts *host)
{
    const sv_qemu_arch_ops *ops = sv_qemu_arch_ops_get(sv_qemu_arch_guest(vm, host));
    if (!ops)
        return 0;
    sv_arch_ctx c = {
        .vm = vm,
        .host = host,
        .launch = &no_launch,
        .ops = ops,
        .machine = machine_of(ops, vm, host, &no_launch),
        .protection = vm->confidential_guest ? SV_PROT_SEV : SV_PROT_NONE,
    };
    return ops->capabilities(&c);
}

int sv_qemu_arch_build(const sv_vm_config *vm, const sv_host_facts *host,
                       const sv_vm_launch *launch, sv_qemu_config **out, sv_error **err)
{
    if (!vm || !host || !out)
        return sv_error_set(err, EINVAL, "sv_qemu_arch_build: NULL argument");
    int r = sv_vm_config_validate(vm, err);
    if (r < 0)
        return r;
    const sv_qemu_arch_ops *ops = sv_qemu_arch_ops_get(sv_qemu_arch_guest(vm, host));
    if (!ops)
        return sv_error_set(err, EINVAL, "arch: the host's architecture is unknown");
    sv_arch_ctx c = {
        .vm = vm,
        .host = host,
        .launch = launch ? launch : &no_launch,
        .ops = ops,
        .machine = machine_of(ops, vm, host, launch ? launch : &no_launch),
        .machine_opts = SV_STRBUF_INIT,
    };
    if (!(c.cfg = calloc(1, sizeof(*c.cfg)))) {
        return oom(err);
    }
    sv_qemu_config_init(c.cfg);
    r = build(&c, err);
    free(c.io_thread);
    sv_strbuf_free(&c.machine_opts);
    if (r >= 0 && (r = sv_qemu_config_validate(c.cfg, err)) < 0)
        sv_error_prefix(err, "building the QEMU configuration");
    if (r < 0) {
        sv_qemu_config_free(c.cfg);
        return r;
    }
    *out = c.cfg;
    return 0;
}
