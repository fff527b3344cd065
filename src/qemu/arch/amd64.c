/* x86_64 (Kata's qemu_amd64.go): q35 (default), pc and microvm. */
#include <errno.h>
#include <string.h>

#include "qemu/arch/arch.h"
#include "util/error.h"

/* Kata's govmm MaxVCPUs() for amd64. */
#define AMD64_MAX_VCPUS 240

static const char *const amd64_machines[] = {"q35", "pc", "microvm", NULL};

static bool is_microvm(const sv_arch_ctx *c)
{
    return sv_arch_machine_is(c, "microvm");
}

static int64_t amd64_max_vcpus(const sv_arch_ctx *c)
{
    return AMD64_MAX_VCPUS;
}

static int amd64_validate(sv_arch_ctx *c, sv_error **err)
{
    const sv_vm_config *vm = c->vm;
    size_t np = sv_strv_len(vm->pflash);
    if (np > 2)
        return sv_arch_key_error(err, "pflash",
                                 "x86_64 takes at most two flash images (code and variables), "
                                 "not %zu",
                                 np);
    if (is_microvm(c) && np)
        return sv_arch_key_error(err, "pflash", "machine microvm has no flash");
    if (c->nvdimm_image && is_microvm(c))
        return sv_arch_key_error(err, "disable_image_nvdimm",
                                 "false needs nvdimm support, which machine microvm lacks");
    if (vm->block_device_driver == SV_VM_BLOCK_NVDIMM && is_microvm(c))
        return sv_arch_key_error(err, "block_device_driver",
                                 "nvdimm needs nvdimm support, which machine microvm lacks");
    /* intel-iommu remaps interrupts, which KVM's in-kernel I/O APIC cannot */
    const char *irqchip = sv_arch_user_machine_opt(c, "kernel-irqchip");
    if (vm->enable_iommu && c->kvm && irqchip && strcmp(irqchip, "split") != 0 &&
        strcmp(irqchip, "off") != 0)
        return sv_arch_key_error(err, "machine_accelerators",
                                 "kernel-irqchip=%s conflicts with enable_iommu under KVM: "
                                 "intel-iommu's interrupt remapping needs kernel-irqchip=split "
                                 "(or off)",
                                 irqchip);
    switch (c->protection) {
    case SV_PROT_TDX:
        return sv_error_set(err, EOPNOTSUPP,
                            "confidential_guest: this host offers TDX, but QEMU 7.2 has no "
                            "tdx-guest object (TDX guests need QEMU 9.0 or later)");
    case SV_PROT_SNP:
        return sv_error_set(err, EOPNOTSUPP,
                            "sev_snp_guest: QEMU 7.2 has no sev-snp-guest object (SEV-SNP guests "
                            "need QEMU 9.1 or later); set sev_snp_guest to false for a SEV guest");
    case SV_PROT_SEV:
        if (is_microvm(c))
            return sv_arch_key_error(err, "confidential_guest",
                                     "a SEV guest needs a q35 or pc machine, not microvm");
        if (!vm->firmware)
            return sv_arch_key_error(err, "firmware",
                                     "a SEV guest needs firmware (an OVMF image built for SEV)");
        if (np)
            return sv_arch_key_error(err, "pflash",
                                     "a SEV guest takes its firmware from the firmware key; leave "
                                     "pflash empty");
        if (!c->host->sev_cbitpos)
            return sv_arch_key_error(err, "confidential_guest",
                                     "SEV needs the host's C-bit position (CPUID 0x8000001f), "
                                     "which is unknown");
        break;
    default:
        break;
    }
    return sv_arch_base_validate(c, err);
}

static int amd64_machine(sv_arch_ctx *c, sv_error **err)
{
    int r = sv_arch_base_machine(c, err);
    if (r < 0)
        return r;
    /* intel-iommu's interrupt remapping and the CC firmware need the I/O
     * APIC in QEMU when KVM runs the guest (Kata: kernel_irqchip=split). */
    if (c->kvm && (c->vm->enable_iommu || c->protection != SV_PROT_NONE))
        sv_arch_machine_opt(c, "kernel-irqchip", "split");
    if (c->protection == SV_PROT_SEV)
        sv_arch_machine_opt(c, "confidential-guest-support", "sev");
    /* Kata: a guest that missed timer ticks must not replay them all. */
    if (c->kvm && !(c->cfg->global_param = sv_arch_strdup("kvm-pit.lost_tick_policy=discard")))
        return sv_error_set(err, ENOMEM, "out of memory");
    return 0;
}

static void amd64_kernel_params(const sv_arch_ctx *c, sv_strbuf *sb)
{
    /* Kata's amd64 set: trust the TSC, skip the legacy keyboard controller
     * probes, expedite RCU, reboot by keyboard controller reset. */
    sv_strbuf_append(sb, "tsc=reliable no_timer_check rcupdate.rcu_expedited=1 i8042.direct=1 "
                         "i8042.dumbkbd=1 i8042.nopnp=1 i8042.noaux=1 noreplace-smp reboot=k "
                         "cryptomgr.notests net.ifnames=0 pci=lastbus=0");
    if (c->vm->enable_iommu)
        sv_strbuf_append(sb, " intel_iommu=on iommu=pt");
    /* microvm has no HPET and no PM timer: the kernel calibrates the TSC
     * against the PIT alone, which under TCG on a busy host fails now and
     * then, and the boot hangs. Under TCG the guest's TSC is the host's, so
     * its rate is known. */
    if (is_microvm(c) && !c->kvm && c->launch->tsc_khz > 0)
        sv_strbuf_appendf(sb, " tsc_early_khz=%lld", (long long)c->launch->tsc_khz);
}

/* microvm boots faster than q35 (no PCI, no firmware tables to walk, a
 * smaller DSDT; docs/performance.md), but it has no PCI hotplug, flash,
 * IOMMU, nvdimm, memory or CPU hotplug: the default for a VM that is never
 * hot-plugged (launch->no_hotplug) and needs none of those, q35 otherwise.
 * Under TCG only with the host's TSC rate known (see above). */
static const char *amd64_default_machine(const sv_vm_config *vm, const sv_host_facts *host,
                                         const sv_vm_launch *l)
{
    bool kvm = strcmp(sv_qemu_arch_accel(vm, host), "kvm") == 0;
    if (!l->no_hotplug || (!kvm && l->tsc_khz <= 0))
        return "q35";
    if (vm->firmware || sv_strv_len(vm->pflash) || vm->enable_iommu || vm->confidential_guest ||
        vm->pcie_root_port || vm->hotplug_vfio_on_root_bus || vm->max_memory ||
        vm->memory_offset || sv_vm_max_vcpus(vm) > vm->vcpus || vm->guest_memory_dump_path ||
        (vm->image && !vm->disable_image_nvdimm) ||
        vm->block_device_driver == SV_VM_BLOCK_NVDIMM || (l->vfio_devices && l->vfio_devices[0]))
        return "q35";
    return "microvm";
}

static const char *const amd64_features[] = {"pmu=off", NULL};

static const char *const *amd64_cpu_features(const sv_arch_ctx *c)
{
    return amd64_features;
}

static bool amd64_supports_memory_hotplug(const sv_arch_ctx *c)
{
    return !is_microvm(c) && sv_arch_base_supports_memory_hotplug(c);
}

static int amd64_append_iommu(sv_arch_ctx *c, sv_error **err)
{
    if (!c->vm->enable_iommu)
        return 0;
    sv_qdev *d = sv_arch_add_device(c, SV_QDEV_IOMMU);
    if (!d)
        return sv_error_set(err, ENOMEM, "out of memory");
    d->u.iommu.intremap = true;
    d->u.iommu.device_iotlb = true;
    d->u.iommu.caching_mode = true;
    return 0;
}

static int amd64_append_protection(sv_arch_ctx *c, sv_error **err)
{
    if (c->protection != SV_PROT_SEV)
        return 0;
    sv_qdev_object *o = sv_arch_add_protection_object(c, SV_OBJ_SEV_GUEST, "sev", err);
    if (!o)
        return -ENOMEM;
    o->cbitpos = c->host->sev_cbitpos;
    o->reduced_phys_bits = 1;
    if (!(o->file = sv_arch_strdup(c->vm->firmware)))
        return sv_error_set(err, ENOMEM, "out of memory");
    return 0;
}

const sv_qemu_arch_ops sv_qemu_arch_amd64 = {
    .arch = SV_VM_ARCH_X86_64,
    .qemu_arch = SV_ARCH_X86_64,
    .qemu_binary = "qemu-system-x86_64",
    .machines = amd64_machines,
    .validate = amd64_validate,
    .machine = amd64_machine,
    .qemu_path = sv_arch_base_qemu_path,
    .kernel_params = amd64_kernel_params,
    .capabilities = sv_arch_base_capabilities,
    .max_vcpus = amd64_max_vcpus,
    .bridges = sv_arch_base_bridges,
    .cpu_topology = sv_arch_base_cpu_topology,
    .cpu_model = sv_arch_base_cpu_model,
    .cpu_features = amd64_cpu_features,
    .memory_topology = sv_arch_base_memory_topology,
    .console_name = sv_arch_base_console_name,
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
    .append_iommu = amd64_append_iommu,
    .append_pflash = sv_arch_base_append_pflash,
    .append_pvpanic = sv_arch_base_append_pvpanic,
    .append_pcie_root_ports = sv_arch_base_append_pcie_root_ports,
    .supports_memory_hotplug = amd64_supports_memory_hotplug,
    .append_protection = amd64_append_protection,
    .default_machine = amd64_default_machine,
};
