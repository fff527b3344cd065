/* ppc64le (Kata's qemu_ppc64le.go): the pseries machine. */
#include <errno.h>
#include <string.h>

#include "qemu/arch/arch.h"
#include "util/error.h"

/* Kata's govmm MaxVCPUs() for ppc64le. */
#define PPC64LE_MAX_VCPUS 128
/* The hashed page table is sized from maxmem in 256 MiB steps. */
#define PPC64LE_MEM_ALIGN 256

static const char *const ppc64le_machines[] = {"pseries", NULL};

static int64_t ppc64le_max_vcpus(const sv_arch_ctx *c)
{
    return PPC64LE_MAX_VCPUS;
}

static int ppc64le_validate(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    if (vm->pflash && vm->pflash[0])
        return sv_arch_key_error(err, "pflash",
                                 "pseries has no flash for firmware images; use firmware");
    if (vm->cpu_features && vm->cpu_features[0])
        return sv_arch_key_error(err, "cpu_features",
                                 "QEMU's POWER CPUs have no feature switches; the pseries "
                                 "capabilities are machine_accelerators (cap-*=..., "
                                 "max-cpu-compat=...)");
    /* Kata's ppc64le attaches the image as virtio-blk whatever the switch
     * says, yet may emit nvdimm root parameters; here the switch is refused
     * instead of ignored. */
    if (vm->image && !vm->disable_image_nvdimm)
        return sv_arch_key_error(err, "disable_image_nvdimm",
                                 "false is not supported on ppc64le: the image goes in as "
                                 "virtio-blk");
    if (vm->memory % PPC64LE_MEM_ALIGN)
        return sv_arch_key_error(err, "memory",
                                 "%lld MiB: pseries takes guest memory in multiples of %d MiB",
                                 (long long)vm->memory, PPC64LE_MEM_ALIGN);
    if (vm->block_device_driver == SV_VM_BLOCK_NVDIMM)
        return sv_arch_key_error(err, "block_device_driver",
                                 "nvdimm is not supported on ppc64le (QEMU's pseries nvdimm "
                                 "needs a label area); use virtio-blk or virtio-scsi");
    return sv_arch_base_validate(c, err);
}

static int ppc64le_machine(sv_arch_ctx *c, sv_error **err)
{
    int r = sv_arch_base_machine(c, err);
    if (r < 0)
        return r;
    /* Kata's ppc64le machine_accelerators: the Spectre/Meltdown mitigation
     * caps marked broken so that pseries starts on any POWER host and under
     * TCG (which implements none of them and warns otherwise). Kata's
     * cap-ail-mode-3 is left out: QEMU 7.2 does not know it. */
    sv_arch_machine_opt(c, "usb", "off");
    sv_arch_machine_opt(c, "cap-cfpc", "broken");
    sv_arch_machine_opt(c, "cap-sbbc", "broken");
    sv_arch_machine_opt(c, "cap-ibs", "broken");
    sv_arch_machine_opt(c, "cap-large-decr", "off");
    sv_arch_machine_opt(c, "cap-ccf-assist", "off");
    /* VOF, QEMU's minimal Open Firmware, enters the -kernel directly: the
     * guest starts its job in about 3 s under TCG instead of about 10 s with
     * SLOF (guest/README.md). A firmware image of the user's keeps SLOF's place. */
    if (!c->vm->firmware && c->protection == SV_PROT_NONE)
        sv_arch_machine_opt(c, "x-vof", "on");
    if (c->protection == SV_PROT_PEF)
        sv_arch_machine_opt(c, "confidential-guest-support", "pef0");
    return 0;
}

static void ppc64le_kernel_params(const sv_arch_ctx *c, sv_strbuf *sb)
{
    sv_strbuf_append(sb, "rcupdate.rcu_expedited=1 reboot=k cryptomgr.notests net.ifnames=0");
}

static const char *ppc64le_cpu_model(const sv_arch_ctx *c)
{
    return c->kvm ? "host" : "power9";
}

static const char *ppc64le_console_name(const sv_arch_ctx *c)
{
    /* the serial console is the spapr-vty, an hvc device too */
    return "hvc0";
}

/* pseries reports a panic itself (RTAS ibm,os-term): no pvpanic device. */
static int ppc64le_append_pvpanic(sv_arch_ctx *c, sv_error **err)
{
    return 0;
}

static int ppc64le_append_protection(sv_arch_ctx *c, sv_error **err)
{
    if (c->protection != SV_PROT_PEF)
        return 0;
    /* Kata also adds spapr-tpm-proxy (host /dev/tpmrm0 for the ultravisor);
     * the QEMU configuration has no such device, so it is left out. */
    return sv_arch_add_protection_object(c, SV_OBJ_PEF_GUEST, "pef0", err) ? 0 : -ENOMEM;
}

const sv_qemu_arch_ops sv_qemu_arch_ppc64le = {
    .arch = SV_VM_ARCH_PPC64LE,
    .qemu_arch = SV_ARCH_PPC64,
    .qemu_binary = "qemu-system-ppc64",
    .machines = ppc64le_machines,
    .validate = ppc64le_validate,
    .machine = ppc64le_machine,
    .qemu_path = sv_arch_base_qemu_path,
    .kernel_params = ppc64le_kernel_params,
    .capabilities = sv_arch_base_capabilities,
    .max_vcpus = ppc64le_max_vcpus,
    .bridges = sv_arch_base_bridges,
    .cpu_topology = sv_arch_base_cpu_topology,
    .cpu_model = ppc64le_cpu_model,
    .cpu_features = sv_arch_base_cpu_features,
    .memory_topology = sv_arch_base_memory_topology,
    .maxmem_align = PPC64LE_MEM_ALIGN,
    .console_name = ppc64le_console_name,
    .append_console = sv_arch_base_append_console,
    .append_image = sv_arch_base_append_image,
    .append_scsi_controller = sv_arch_base_append_scsi_controller,
    .append_9p = sv_arch_base_append_9p,
    .append_socket = sv_arch_base_append_socket,
    .append_vsock = sv_arch_base_append_vsock,
    .append_network = sv_arch_base_append_network,
    .append_block = sv_arch_base_append_block,
    .append_vhost_user = sv_arch_base_append_vhost_user,
    .append_vfio = sv_arch_base_append_vfio,
    .append_rng = sv_arch_base_append_rng,
    .append_iommu = sv_arch_base_append_iommu,
    .append_pflash = sv_arch_base_append_pflash,
    .append_pvpanic = ppc64le_append_pvpanic,
    .append_pcie_root_ports = sv_arch_base_append_pcie_root_ports,
    .supports_memory_hotplug = sv_arch_base_supports_memory_hotplug,
    .append_protection = ppc64le_append_protection,
};
