/*
 * PCI topology and passthrough: pci-bridge / pcie-pci-bridge, pcie-root-port
 * and VFIO (vfio-pci, vfio-ccw).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qemu/qemu_devices.h"
#include "util/cleanup.h"

/* The bus a bridge or root port without "bus" is put on. */
static const char *root_bus(const sv_qemu_config *cfg)
{
    return sv_qdev_root_bus_is_pcie(cfg) ? "pcie.0" : "pci.0";
}

/* A microvm has no PCI bus unless asked for one. */
static int check_machine_has_pci(const sv_qemu_config *cfg, const char *path, const char *what,
                                 sv_error **err)
{
    if (sv_qemu_config_is_microvm(cfg) && !sv_qemu_config_machine_opt_is(cfg, "pcie", "on"))
        return sv_error_set(err, EINVAL, "%s: %s needs a PCI bus; machine microvm has one only "
                            "with the machine option pcie=on", path, what);
    return 0;
}

/* A device's index in cfg->devices, or cfg->n_devices when it is not there. */
static size_t device_index(const sv_qdev *dev, const sv_qemu_config *cfg)
{
    for (size_t i = 0; i < cfg->n_devices; i++)
        if (&cfg->devices[i] == dev)
            return i;
    return cfg->n_devices;
}

/* QEMU 7.2 aborts (pci_register_bar assertion) when a bridge-type device gets
 * an option ROM, so only romfile="" (no ROM) is accepted on bridges. */
static int check_bridge_rom(const char *path, const char *rom_file, sv_error **err)
{
    if (rom_file && *rom_file)
        return sv_field_error(err, path, "rom_file",
                              "a PCI bridge or root port cannot have an option ROM (QEMU 7.2 "
                              "aborts); only \"\" (no ROM) is accepted");
    return 0;
}

static int check_sizes(const char *path, const char *const *fields, const char *const *values,
                       size_t n, sv_error **err)
{
    for (size_t i = 0; i < n; i++) {
        int r;
        if (values[i] && (r = sv_check_size(path, fields[i], values[i], err)) < 0)
            return r;
    }
    return 0;
}

/* ---- bridge: pci-bridge / pcie-pci-bridge ---- */

static const char *const bridge_type_names[] = {"pci", "pcie", NULL};
_Static_assert(SV_ARRAY_SIZE(bridge_type_names) == SV__BRIDGE_MAX + 1, "bridge type names");

static const sv_jfield bridge_fields[] = {
    SV_JENUM(sv_qdev_bridge, bridge_type, "bridge_type", bridge_type_names),
    SV_JSTR(sv_qdev_bridge, id, "id"),
    SV_JSTR(sv_qdev_bridge, bus, "bus"),
    SV_JSTR(sv_qdev_bridge, addr, "addr"),
    SV_JSTR(sv_qdev_bridge, rom_file, "rom_file"),
    SV_JINT(sv_qdev_bridge, chassis, "chassis", 1, 255),
    SV_JBOOL(sv_qdev_bridge, shpc, "shpc"),
    SV_JSTR(sv_qdev_bridge, io_reserve, "io_reserve"),
    SV_JSTR(sv_qdev_bridge, mem_reserve, "mem_reserve"),
    SV_JSTR(sv_qdev_bridge, pref64_reserve, "pref64_reserve"),
    SV_JEND,
};
static const sv_jschema bridge_schema = {sizeof(sv_qdev_bridge), bridge_fields};

static int bridge_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                           sv_error **err)
{
    const sv_qdev_bridge *d = &dev->u.bridge;
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0 ||
        (r = sv_check_id(path, "bus", d->bus, false, err)) < 0 ||
        (d->addr && (r = sv_check_pci_addr(path, "addr", d->addr, err)) < 0) ||
        (r = check_bridge_rom(path, d->rom_file, err)) < 0)
        return r;
    if ((r = check_machine_has_pci(cfg, path, "a PCI bridge", err)) < 0)
        return r;

    if (d->bridge_type == SV_BRIDGE_PCIE) {
        if (sv_qemu_config_arch(cfg) == SV_ARCH_S390X)
            return sv_field_error(err, path, "bridge_type",
                                  "QEMU has no pcie-pci-bridge for s390x; use pci");
        /* spapr wants a chassis_nr on every bridge, and only pci-bridge has one. */
        if (sv_qemu_config_arch(cfg) == SV_ARCH_PPC64)
            return sv_field_error(err, path, "bridge_type",
                                  "ppc64 (pseries) takes only pci bridges: QEMU refuses a "
                                  "pcie-pci-bridge on any of its buses (it lacks chassis_nr); "
                                  "use pci");
        if (d->chassis)
            return sv_field_error(err, path, "chassis", "only applies to bridge_type pci");
        if (d->shpc)
            return sv_field_error(err, path, "shpc", "only applies to bridge_type pci");
        /* QEMU 7.2's pcie-pci-bridge has none of the *-reserve properties. */
        if (d->io_reserve)
            return sv_field_error(err, path, "io_reserve",
                                  "QEMU 7.2's pcie-pci-bridge has no io-reserve property");
        if (d->mem_reserve)
            return sv_field_error(err, path, "mem_reserve",
                                  "QEMU 7.2's pcie-pci-bridge has no mem-reserve property");
        if (d->pref64_reserve)
            return sv_field_error(err, path, "pref64_reserve",
                                  "QEMU 7.2's pcie-pci-bridge has no pref64-reserve property");
        if (!d->bus && !sv_qdev_root_bus_is_pcie(cfg))
            return sv_field_error(err, path, "bus",
                                  "pcie-pci-bridge needs a PCIe bus and machine \"%s\" has a "
                                  "conventional PCI root bus: use q35 (x86_64) or virt "
                                  "(aarch64), or name a PCIe bus",
                                  sv_qdev_machine_type(cfg));
        return 0;
    }

    if (!d->chassis)
        return sv_field_error(err, path, "chassis",
                              "is required for a pci bridge (1-255, unique per bridge)");
    static const char *const names[] = {"io_reserve", "mem_reserve", "pref64_reserve"};
    const char *const values[] = {d->io_reserve, d->mem_reserve, d->pref64_reserve};
    if ((r = check_sizes(path, names, values, SV_ARRAY_SIZE(names), err)) < 0)
        return r;
    size_t self = device_index(dev, cfg);
    for (size_t i = 0; i < self; i++) {
        const sv_qdev *o = &cfg->devices[i];
        if (o->type == SV_QDEV_BRIDGE && o->u.bridge.bridge_type == SV_BRIDGE_PCI &&
            o->u.bridge.chassis == d->chassis)
            return sv_field_error(err, path, "chassis", "%lld is already used by devices[%zu]",
                                  (long long)d->chassis, i);
    }
    return 0;
}

static sv_qopts *bridge_props(const sv_qdev_bridge *d, const sv_qemu_config *cfg)
{
    bool pci = d->bridge_type == SV_BRIDGE_PCI;
    sv_qopts *o = sv_qopts_new("driver", pci ? "pci-bridge" : "pcie-pci-bridge");
    sv_qopts_str(o, "bus", d->bus ? d->bus : root_bus(cfg));
    sv_qopts_str(o, "id", d->id);
    if (pci) {
        sv_qopts_int(o, "chassis_nr", d->chassis);
        sv_qopts_bool(o, "shpc", d->shpc);
    }
    sv_qopts_str(o, "addr", d->addr);
    sv_qopts_str(o, "romfile", d->rom_file);
    if (pci) {
        sv_qopts_str(o, "io-reserve", d->io_reserve);
        sv_qopts_str(o, "mem-reserve", d->mem_reserve);
        sv_qopts_str(o, "pref64-reserve", d->pref64_reserve);
    }
    return o;
}

static void bridge_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = bridge_props(&dev->u.bridge, cfg);
    sv_qdev_add_device(a, o);
}

static void bridge_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_bridge *d = &dev->u.bridge;
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->id, "id");
    out->bus_kind = SV_QBUS_PCI;
    out->bus = d->bus;
    out->addr = d->addr;
    out->provides = SV_QBUS_PCI;
    out->provides_id = d->id;
}

const sv_qdev_ops sv_qdev_bridge_ops = {"bridge", &bridge_schema, bridge_validate, bridge_append,
                                        bridge_describe};

/* ---- pcie_root_port ---- */

static const sv_jfield root_port_fields[] = {
    SV_JSTR(sv_qdev_pcie_root_port, id, "id"),
    SV_JSTR(sv_qdev_pcie_root_port, bus, "bus"),
    SV_JSTR(sv_qdev_pcie_root_port, addr, "addr"),
    SV_JSTR(sv_qdev_pcie_root_port, rom_file, "rom_file"),
    SV_JINT(sv_qdev_pcie_root_port, chassis, "chassis", 0, 255),
    SV_JINT(sv_qdev_pcie_root_port, slot, "slot", 0, 65535),
    SV_JINT(sv_qdev_pcie_root_port, bus_reserve, "bus_reserve", 0, 255),
    SV_JBOOL(sv_qdev_pcie_root_port, multifunction, "multifunction"),
    SV_JSTR(sv_qdev_pcie_root_port, pref64_reserve, "pref64_reserve"),
    SV_JSTR(sv_qdev_pcie_root_port, pref32_reserve, "pref32_reserve"),
    SV_JSTR(sv_qdev_pcie_root_port, mem_reserve, "mem_reserve"),
    SV_JSTR(sv_qdev_pcie_root_port, io_reserve, "io_reserve"),
    SV_JEND,
};
static const sv_jschema root_port_schema = {sizeof(sv_qdev_pcie_root_port), root_port_fields};

static int root_port_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                              sv_error **err)
{
    const sv_qdev_pcie_root_port *d = &dev->u.pcie_root_port;
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0 ||
        (r = sv_check_id(path, "bus", d->bus, false, err)) < 0 ||
        (d->addr && (r = sv_check_pci_addr(path, "addr", d->addr, err)) < 0) ||
        (r = check_bridge_rom(path, d->rom_file, err)) < 0)
        return r;
    static const char *const names[] = {"pref64_reserve", "pref32_reserve", "mem_reserve",
                                        "io_reserve"};
    const char *const values[] = {d->pref64_reserve, d->pref32_reserve, d->mem_reserve,
                                  d->io_reserve};
    if ((r = check_sizes(path, names, values, SV_ARRAY_SIZE(names), err)) < 0)
        return r;
    if (d->pref64_reserve && d->pref32_reserve)
        return sv_field_error(err, path, "pref32_reserve",
                              "cannot be combined with pref64_reserve (QEMU: PREF32 and PREF64 "
                              "conflict)");
    if (sv_qemu_config_arch(cfg) == SV_ARCH_S390X)
        return sv_error_set(err, EINVAL, "%s: QEMU has no pcie-root-port for s390x", path);
    if (sv_qemu_config_arch(cfg) == SV_ARCH_PPC64)
        return sv_error_set(err, EINVAL,
                            "%s: ppc64 (pseries) takes only pci bridges: QEMU refuses a "
                            "pcie-root-port on any of its buses (it lacks chassis_nr); use a "
                            "device of type \"bridge\" with bridge_type pci",
                            path);
    if ((r = check_machine_has_pci(cfg, path, "pcie-root-port", err)) < 0)
        return r;
    if (!d->bus && !sv_qdev_root_bus_is_pcie(cfg))
        return sv_field_error(err, path, "bus",
                              "pcie-root-port needs a PCIe bus and machine \"%s\" has a "
                              "conventional PCI root bus: use q35 (x86_64) or virt (aarch64), "
                              "or name a PCIe bus",
                              sv_qdev_machine_type(cfg));
    size_t self = device_index(dev, cfg);
    for (size_t i = 0; i < self; i++) {
        const sv_qdev *o = &cfg->devices[i];
        if (o->type == SV_QDEV_PCIE_ROOT_PORT && o->u.pcie_root_port.chassis == d->chassis &&
            o->u.pcie_root_port.slot == d->slot)
            return sv_field_error(err, path, "slot",
                                  "chassis %lld slot %lld is already used by devices[%zu]",
                                  (long long)d->chassis, (long long)d->slot, i);
    }
    return 0;
}

static sv_qopts *root_port_props(const sv_qdev_pcie_root_port *d, const sv_qemu_config *cfg)
{
    sv_qopts *o = sv_qopts_new("driver", "pcie-root-port");
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "bus", d->bus ? d->bus : root_bus(cfg));
    sv_qopts_int(o, "chassis", d->chassis);
    sv_qopts_int(o, "slot", d->slot);
    sv_qopts_str(o, "addr", d->addr);
    if (d->multifunction)
        sv_qopts_bool(o, "multifunction", true);
    if (d->bus_reserve)
        sv_qopts_int(o, "bus-reserve", d->bus_reserve);
    sv_qopts_str(o, "pref64-reserve", d->pref64_reserve);
    sv_qopts_str(o, "pref32-reserve", d->pref32_reserve);
    sv_qopts_str(o, "mem-reserve", d->mem_reserve);
    sv_qopts_str(o, "io-reserve", d->io_reserve);
    sv_qopts_str(o, "romfile", d->rom_file);
    return o;
}

static void root_port_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = root_port_props(&dev->u.pcie_root_port, cfg);
    sv_qdev_add_device(a, o);
}

static void root_port_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_pcie_root_port *d = &dev->u.pcie_root_port;
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->id, "id");
    out->bus_kind = SV_QBUS_PCI;
    out->bus = d->bus;
    out->addr = d->addr;
    out->multifunction = d->multifunction;
    out->provides = SV_QBUS_PCI;
    out->provides_id = d->id;
    out->pcie_port = true;
}

const sv_qdev_ops sv_qdev_pcie_root_port_ops = {"pcie_root_port", &root_port_schema,
                                                root_port_validate, root_port_append,
                                                root_port_describe};

/* ---- vfio: vfio-pci / vfio-ccw ---- */

static const sv_jfield vfio_fields[] = {
    SV_JENUM(sv_qdev_vfio, transport, "transport", sv_qtransport_names),
    SV_JSTR(sv_qdev_vfio, bdf, "bdf"),
    SV_JSTR(sv_qdev_vfio, sysfsdev, "sysfsdev"),
    SV_JSTR(sv_qdev_vfio, rom_file, "rom_file"),
    SV_JSTR(sv_qdev_vfio, dev_no, "dev_no"),
    SV_JSTR(sv_qdev_vfio, bus, "bus"),
    SV_JSTR(sv_qdev_vfio, addr, "addr"),
    SV_JSTR(sv_qdev_vfio, id, "id"),
    SV_JINT(sv_qdev_vfio, vendor_id, "vendor_id", 1, 0xffff),
    SV_JINT(sv_qdev_vfio, device_id, "device_id", 1, 0xffff),
    SV_JEND,
};
static const sv_jschema vfio_schema = {sizeof(sv_qdev_vfio), vfio_fields};

static int vfio_validate_ccw(const sv_qdev_vfio *d, const sv_qemu_config *cfg, const char *path,
                             sv_error **err)
{
    int r;
    if (sv_qemu_config_arch(cfg) != SV_ARCH_S390X)
        return sv_field_error(err, path, "transport", "ccw needs an s390x QEMU (arch is %s)",
                              sv_arch_names[sv_qemu_config_arch(cfg)]);
    if (d->bdf)
        return sv_field_error(err, path, "bdf",
                              "vfio-ccw takes sysfsdev (the mediated device), not a PCI "
                              "address; set transport pci for a zPCI device");
    if ((r = sv_check_abs_path(path, "sysfsdev", d->sysfsdev, true, err)) < 0)
        return r;
    if (d->dev_no && (r = sv_check_devno(path, "dev_no", d->dev_no, err)) < 0)
        return r;
    const char *pci_only = d->vendor_id ? "vendor_id" : d->device_id ? "device_id" :
                           d->rom_file ? "rom_file" : d->bus ? "bus" : d->addr ? "addr" : NULL;
    if (pci_only)
        return sv_field_error(err, path, pci_only, "only applies to the pci transport");
    return 0;
}

static int vfio_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                         sv_error **err)
{
    const sv_qdev_vfio *d = &dev->u.vfio;
    int r;
    if ((r = sv_check_id(path, "id", d->id, false, err)) < 0)
        return r;
    switch (sv_qemu_config_transport(cfg, d->transport)) {
    case SV_QT_MMIO:
        return sv_field_error(err, path, "transport",
                              "vfio has no mmio transport (QEMU has no \"vfio-device\"); use pci%s",
                              sv_qemu_config_arch(cfg) == SV_ARCH_S390X ? " or ccw" : "");
    case SV_QT_CCW:
        return vfio_validate_ccw(d, cfg, path, err);
    default:
        break;
    }
    if (!d->bdf == !d->sysfsdev)
        return sv_field_error(err, path, "bdf", "exactly one of bdf and sysfsdev is required");
    if ((d->bdf && (r = sv_check_bdf(path, "bdf", d->bdf, err)) < 0) ||
        (r = sv_check_abs_path(path, "sysfsdev", d->sysfsdev, false, err)) < 0 ||
        (r = sv_check_id(path, "bus", d->bus, false, err)) < 0 ||
        (d->addr && (r = sv_check_pci_addr(path, "addr", d->addr, err)) < 0) ||
        (r = sv_check_abs_path(path, "rom_file", d->rom_file, false, err)) < 0)
        return r;
    if (d->dev_no)
        return sv_field_error(err, path, "dev_no", "only applies to the ccw transport");
    return check_machine_has_pci(cfg, path, "vfio-pci", err);
}

sv_qopts *sv_qdev_vfio_props(const sv_qdev_vfio *d, const sv_qemu_config *cfg)
{
    if (sv_qemu_config_transport(cfg, d->transport) == SV_QT_CCW) {
        sv_qopts *o = sv_qopts_new("driver", "vfio-ccw");
        sv_qopts_str(o, "sysfsdev", d->sysfsdev);
        sv_qopts_str(o, "devno", d->dev_no);
        sv_qopts_str(o, "id", d->id);
        return o;
    }
    sv_qopts *o = sv_qopts_new("driver", "vfio-pci");
    sv_qopts_str(o, "host", d->bdf);
    sv_qopts_str(o, "sysfsdev", d->sysfsdev);
    if (d->vendor_id)
        sv_qopts_int(o, "x-pci-vendor-id", d->vendor_id);
    if (d->device_id)
        sv_qopts_int(o, "x-pci-device-id", d->device_id);
    sv_qopts_str(o, "romfile", d->rom_file);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    sv_qopts_str(o, "id", d->id);
    return o;
}

static void vfio_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = sv_qdev_vfio_props(&dev->u.vfio, cfg);
    sv_qdev_add_device(a, o);
}

static void vfio_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_vfio *d = &dev->u.vfio;
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->id, "id");
    if (sv_qemu_config_transport(cfg, d->transport) == SV_QT_CCW) {
        out->bus_kind = SV_QBUS_CCW;
        out->dev_no = d->dev_no;
        return;
    }
    out->bus_kind = SV_QBUS_PCI;
    out->bus = d->bus;
    out->addr = d->addr;
}

const sv_qdev_ops sv_qdev_vfio_ops = {"vfio", &vfio_schema, vfio_validate, vfio_append,
                                      vfio_describe};
