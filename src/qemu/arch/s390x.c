/*
 * s390x (Kata's qemu_s390x.go): the s390-ccw-virtio machine. Every device
 * is a CCW device with an explicit devno from the one CCW bridge (css 0xfe,
 * 65536 devnos): QEMU's own numbering would clash with later hot-plugs
 * (Kata issue 1753, "Device fe.0.0006 already exists").
 */
#include <errno.h>
#include <string.h>

#include "qemu/arch/arch.h"
#include "util/error.h"

/* Kata's govmm MaxVCPUs() for s390x. */
#define S390X_MAX_VCPUS 248

static const char *const s390x_machines[] = {"s390-ccw-virtio", NULL};

static int64_t s390x_max_vcpus(const sv_arch_ctx *c)
{
    return S390X_MAX_VCPUS;
}

static int s390x_validate(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    if (vm->pflash && vm->pflash[0])
        return sv_arch_key_error(err, "pflash", "s390x has no flash; use firmware");
    if (vm->image && !vm->disable_image_nvdimm)
        return sv_arch_key_error(err, "disable_image_nvdimm",
                                 "false is not supported on s390x (no nvdimm): the image goes in "
                                 "as virtio-blk-ccw");
    if (vm->block_device_driver == SV_VM_BLOCK_NVDIMM)
        return sv_arch_key_error(err, "block_device_driver",
                                 "nvdimm is not supported on s390x (allowed there: virtio-blk, "
                                 "virtio-blk-ccw, virtio-scsi)");
    if (c->launch->vfio_devices && c->launch->vfio_devices[0])
        return sv_error_set(err, EINVAL,
                            "vfio: s390x passes devices through as vfio-ccw or vfio-ap mediated "
                            "devices, which the launch's PCI list cannot name");
    if (c->protection == SV_PROT_SE && (vm->image || vm->initrd))
        return sv_arch_key_error(err, vm->image ? "image" : "initrd",
                                 "a Secure Execution guest boots from its kernel alone (an SE "
                                 "image holding kernel, initrd and command line); leave image "
                                 "and initrd unset");
    return sv_arch_base_validate(c, err);
}

static int s390x_machine(sv_arch_ctx *c, sv_error **err)
{
    int r = sv_arch_base_machine(c, err);
    if (r < 0)
        return r;
    if (c->protection == SV_PROT_SE) {
        sv_arch_machine_opt(c, "confidential-guest-support", "pv0");
        /* a protected guest's memory is not the host's to read: devices go
         * through its bounce buffers (Kata's enable_iommu_platform) */
        c->cfg->knobs.iommu_platform = true;
    }
    return 0;
}

static void s390x_kernel_params(const sv_arch_ctx *c, sv_strbuf *sb)
{
}

static const char *s390x_console_name(const sv_arch_ctx *c)
{
    /* the serial console is the SCLP line-mode/VT220 console */
    return c->vm->console == SV_VM_CONSOLE_VIRTIO ? "hvc0" : "ttysclp0";
}

/* The CCW bridge is the channel subsystem itself: nothing to create. */
static int s390x_bridges(sv_arch_ctx *c, sv_error **err)
{
    return 0;
}

static bool s390x_supports_memory_hotplug(const sv_arch_ctx *c)
{
    /* s390x hot-plugs memory only through virtio-mem-ccw, added after QEMU 7.2 */
    return false;
}

/* Kata adds no RNG on s390x (the CPACF TRNG serves the guest); an explicit
 * entropy_source still gets virtio-rng-ccw. */
static int s390x_append_rng(sv_arch_ctx *c, sv_error **err)
{
    if (!c->vm->entropy_source)
        return 0;
    return sv_arch_base_append_rng(c, err);
}

static int s390x_append_network(sv_arch_ctx *c, const sv_arch_net *n, sv_error **err)
{
    /* Kata's s390x network device has no vhost */
    bool vhost = c->vhost_net;
    c->vhost_net = false;
    int r = sv_arch_base_append_network(c, n, err);
    c->vhost_net = vhost;
    return r;
}

static int s390x_append_vhost_user(sv_arch_ctx *c, const sv_arch_vhost_user *v, sv_error **err)
{
    /* QEMU 7.2 has vhost-user-fs-ccw only (Kata: the others have no CCW form) */
    if (v->type != SV_VU_FS)
        return sv_error_set(err, EINVAL, "vhost-user: s390x supports only vhost-user-fs (CCW)");
    return sv_arch_base_append_vhost_user(c, v, err);
}

/* s390x reports a panic itself (disabled wait): no pvpanic device. */
static int s390x_append_pvpanic(sv_arch_ctx *c, sv_error **err)
{
    return 0;
}

static int s390x_append_protection(sv_arch_ctx *c, sv_error **err)
{
    if (c->protection != SV_PROT_SE)
        return 0;
    return sv_arch_add_protection_object(c, SV_OBJ_S390_PV_GUEST, "pv0", err) ? 0 : -ENOMEM;
}

const sv_qemu_arch_ops sv_qemu_arch_s390x = {
    .arch = SV_VM_ARCH_S390X,
    .qemu_arch = SV_ARCH_S390X,
    .qemu_binary = "qemu-system-s390x",
    .machines = s390x_machines,
    .validate = s390x_validate,
    .machine = s390x_machine,
    .qemu_path = sv_arch_base_qemu_path,
    .kernel_params = s390x_kernel_params,
    .capabilities = sv_arch_base_capabilities,
    .max_vcpus = s390x_max_vcpus,
    .bridges = s390x_bridges,
    .cpu_topology = sv_arch_base_cpu_topology,
    .cpu_model = sv_arch_base_cpu_model,
    .cpu_features = sv_arch_base_cpu_features,
    .memory_topology = sv_arch_base_memory_topology,
    .console_name = s390x_console_name,
    .append_console = sv_arch_base_append_console,
    .append_image = sv_arch_base_append_image,
    .append_scsi_controller = sv_arch_base_append_scsi_controller,
    .append_9p = sv_arch_base_append_9p,
    .append_socket = sv_arch_base_append_socket,
    .append_vsock = sv_arch_base_append_vsock,
    .append_network = s390x_append_network,
    .append_block = sv_arch_base_append_block,
    .append_vhost_user = s390x_append_vhost_user,
    .append_vfio = sv_arch_base_append_vfio,
    .append_rng = s390x_append_rng,
    .append_iommu = sv_arch_base_append_iommu,
    .append_pflash = sv_arch_base_append_pflash,
    .append_pvpanic = s390x_append_pvpanic,
    .append_pcie_root_ports = sv_arch_base_append_pcie_root_ports,
    .supports_memory_hotplug = s390x_supports_memory_hotplug,
    .append_protection = s390x_append_protection,
};
