/* aarch64 (Kata's qemu_arm64.go): the virt machine. */
#include <errno.h>
#include <string.h>

#include "qemu/arch/arch.h"
#include "qemu/qemu_devices.h"
#include "util/error.h"

/* Kata's govmm MaxVCPUs() for arm64: the GIC's limit under KVM. */
#define ARM64_MAX_VCPUS_GICV2 8
#define ARM64_MAX_VCPUS_GICV3 123

static const char *const arm64_machines[] = {"virt", NULL};

static int64_t arm64_max_vcpus(const sv_arch_ctx *c)
{
    return c->gic_version == 2 ? ARM64_MAX_VCPUS_GICV2 : ARM64_MAX_VCPUS_GICV3;
}

static bool has_firmware(const sv_arch_ctx *c)
{
    return c->vm->firmware || (c->vm->pflash && c->vm->pflash[0]);
}

/* The GIC version from machine_accelerators ("gic-version=2"), else the
 * arch's choice: the host's under KVM (Kata), GICv3 under TCG (v2 would cap
 * the guest at 8 vCPUs). "host" and "max" count as v3, Kata's default. */
static int gic_version(sv_arch_ctx *c, sv_error **err)
{
    const char *v = sv_arch_user_machine_opt(c, "gic-version");
    if (!v)
        return 3;
    if (strcmp(v, "2") == 0)
        return 2;
    if (!strcmp(v, "3") || !strcmp(v, "4") || !strcmp(v, "host") || !strcmp(v, "max"))
        return 3;
    return sv_arch_key_error(err, "machine_accelerators",
                             "gic-version=%s is not one of 2, 3, 4, host, max", v);
}

static int arm64_validate(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    int r = gic_version(c, err);
    if (r < 0)
        return r;
    c->gic_version = r;
    /* AAVMF comes as two images: code and variables (Kata: "two pflash
     * images needed for arm64"). */
    size_t np = sv_strv_len(vm->pflash);
    if (np != 0 && np != 2)
        return sv_arch_key_error(err, "pflash",
                                 "aarch64 takes none or exactly two flash images (firmware code "
                                 "and variables), not %zu",
                                 np);
    /* nvdimm needs ACPI (NFIT), which the virt machine builds only with firmware. */
    if (c->nvdimm_image && !has_firmware(c))
        return sv_arch_key_error(err, "disable_image_nvdimm",
                                 "false needs firmware on aarch64 (firmware or pflash): the "
                                 "virt machine describes nvdimms in ACPI, which it builds only "
                                 "with firmware");
    if (vm->block_device_driver == SV_VM_BLOCK_NVDIMM && !has_firmware(c))
        return sv_arch_key_error(err, "block_device_driver",
                                 "nvdimm needs firmware on aarch64 (firmware or pflash): the "
                                 "virt machine describes nvdimms in ACPI, which it builds only "
                                 "with firmware");
    return sv_arch_base_validate(c, err);
}

static bool arm64_supports_memory_hotplug(const sv_arch_ctx *c)
{
    /* pc-dimm on virt needs the ACPI GED device, created only with firmware. */
    return has_firmware(c) && sv_arch_base_supports_memory_hotplug(c);
}

static int arm64_machine(sv_arch_ctx *c, sv_error **err)
{
    int r = sv_arch_base_machine(c, err);
    if (r < 0)
        return r;
    sv_arch_machine_opt(c, "usb", "off");
    sv_arch_machine_opt(c, "gic-version", c->kvm ? "host" : "3");
    return 0;
}

static void arm64_kernel_params(const sv_arch_ctx *c, sv_strbuf *sb)
{
    sv_strbuf_append(sb, "iommu.passthrough=0");
}

/* Pointer authentication with QEMU's own cipher instead of the
 * architected QARMA: several times faster under TCG, and Linux uses either
 * algorithm the same way. */
static const char *const arm64_tcg_features[] = {"pauth-impdef=on", NULL};

static const char *const *arm64_cpu_features(const sv_arch_ctx *c)
{
    return c->kvm ? NULL : arm64_tcg_features;
}

static const char *arm64_console_name(const sv_arch_ctx *c)
{
    return c->vm->console == SV_VM_CONSOLE_VIRTIO ? "hvc0" : "ttyAMA0";
}

static int arm64_append_9p(sv_arch_ctx *c, const char *id, const char *dir, const char *tag,
                           sv_error **err)
{
    int r = sv_arch_base_append_9p(c, id, dir, tag, err);
    if (r < 0)
        return r;
    /* Kata's arm64 leaves multidevs out. */
    c->cfg->devices[c->cfg->n_devices - 1].u.fs.multidev = SV_MD_DEFAULT;
    return 0;
}

const sv_qemu_arch_ops sv_qemu_arch_arm64 = {
    .arch = SV_VM_ARCH_AARCH64,
    .qemu_arch = SV_ARCH_AARCH64,
    .qemu_binary = "qemu-system-aarch64",
    .machines = arm64_machines,
    .validate = arm64_validate,
    .machine = arm64_machine,
    .qemu_path = sv_arch_base_qemu_path,
    .kernel_params = arm64_kernel_params,
    .capabilities = sv_arch_base_capabilities,
    .max_vcpus = arm64_max_vcpus,
    .bridges = sv_arch_base_bridges,
    .cpu_topology = sv_arch_base_cpu_topology,
    .cpu_model = sv_arch_base_cpu_model,
    .cpu_features = arm64_cpu_features,
    .memory_topology = sv_arch_base_memory_topology,
    .console_name = arm64_console_name,
    .append_console = sv_arch_base_append_console,
    .append_image = sv_arch_base_append_image,
    .append_scsi_controller = sv_arch_base_append_scsi_controller,
    .append_9p = arm64_append_9p,
    .append_socket = sv_arch_base_append_socket,
    .append_vsock = sv_arch_base_append_vsock,
    .append_network = sv_arch_base_append_network,
    .append_block = sv_arch_base_append_block,
    .append_vhost_user = sv_arch_base_append_vhost_user,
    .append_vfio = sv_arch_base_append_vfio,
    .append_rng = sv_arch_base_append_rng,
    .append_iommu = sv_arch_base_append_iommu,
    .append_pflash = sv_arch_base_append_pflash,
    .append_pvpanic = sv_arch_base_append_pvpanic,
    .append_pcie_root_ports = sv_arch_base_append_pcie_root_ports,
    .supports_memory_hotplug = arm64_supports_memory_hotplug,
    .append_protection = sv_arch_base_append_protection,
};
