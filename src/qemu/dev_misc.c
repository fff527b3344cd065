/*
 * Small devices: vhost-vsock, virtio-rng, virtio-balloon, intel-iommu,
 * pvpanic and the generic loader.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qemu/qemu_devices.h"
#include "util/cleanup.h"

/* bus and addr of a virtio device: addr is a PCI slot, bus any QEMU bus id
 * except on CCW, where the one channel subsystem bus is implied. */
static int check_bus_addr(const char *path, const char *bus, const char *addr, int transport,
                          sv_error **err)
{
    int r;
    if (addr) {
        if (transport != SV_QT_PCI)
            return sv_field_error(err, path, "addr", "only applies to the pci transport");
        if ((r = sv_check_pci_addr(path, "addr", addr, err)) < 0)
            return r;
    }
    if (bus && transport == SV_QT_CCW)
        return sv_field_error(err, path, "bus", "does not apply to the ccw transport");
    return sv_check_id(path, "bus", bus, false, err);
}

/* Index of the first device of `type` before `dev` in cfg->devices, or -1. */
static long earlier_of_type(const sv_qdev *dev, const sv_qemu_config *cfg, int type)
{
    for (size_t i = 0; i < cfg->n_devices && &cfg->devices[i] != dev; i++)
        if (cfg->devices[i].type == type)
            return (long)i;
    return -1;
}

/* ---- vsock: vhost-vsock ---- */

static const sv_jfield vsock_fields[] = {
    SV_JSTR(sv_qdev_vsock, id, "id"),
    SV_JSTR(sv_qdev_vsock, bus, "bus"),
    SV_JSTR(sv_qdev_vsock, addr, "addr"),
    /* 0-2 are the hypervisor, local and host; U32_MAX is VMADDR_CID_ANY,
     * which the vhost-vsock driver refuses (QEMU itself takes up to U32_MAX). */
    SV_JINT(sv_qdev_vsock, context_id, "context_id", 3, 0xfffffffeLL),
    SV_JINT(sv_qdev_vsock, vhost_fd, "vhost_fd", 3, INT32_MAX),
    SV_JVIRTIO(sv_qdev_vsock, v),
    SV_JEND,
};
static const sv_jschema vsock_schema = {sizeof(sv_qdev_vsock), vsock_fields};

static int vsock_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                          sv_error **err)
{
    const sv_qdev_vsock *d = &dev->u.vsock;
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if (!d->context_id)
        return sv_field_error(err, path, "context_id", "is required (3 to 4294967294)");
    if ((r = check_bus_addr(path, d->bus, d->addr, t, err)) < 0)
        return r;
    return sv_qdev_virtio_validate(&d->v, cfg, path, err);
}

/* `vhostfd` is the fd as the child sees it (cold plug), or the name of an fd
 * passed with getfd (hotplug); NULL when QEMU opens /dev/vhost-vsock itself. */
sv_qopts *sv_qdev_vsock_props(const sv_qdev_vsock *d, const sv_qemu_config *cfg,
                              const char *vhostfd)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    sv_qopts *o = sv_qdev_virtio_new("vhost-vsock", t);
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    sv_qopts_int(o, "guest-cid", d->context_id);
    sv_qopts_str(o, "vhostfd", vhostfd);
    sv_qdev_virtio_common(o, &d->v, t, cfg);
    return o;
}

static void vsock_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qdev_vsock *d = &dev->u.vsock;
    _cleanup_free_ char *fd = NULL;
    if (d->vhost_fd) {
        int child = sv_argv_pass_fd(a, (int)d->vhost_fd);
        if (child < 0)
            return;
        if (asprintf(&fd, "%d", child) < 0) {
            sv_argv_fail(a, ENOMEM, "out of memory building the command line");
            return;
        }
    }
    _cleanup_qopts_ sv_qopts *o = sv_qdev_vsock_props(d, cfg, fd);
    sv_qdev_add_device(a, o);
}

static void vsock_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_vsock *d = &dev->u.vsock;
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->id, "id");
    sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
}

const sv_qdev_ops sv_qdev_vsock_ops = {"vsock", &vsock_schema, vsock_validate, vsock_append,
                                       vsock_describe};

/* ---- rng: rng-random / rng-builtin + virtio-rng ---- */

static const char *const rng_backend_names[] = {"random", "builtin", NULL};
_Static_assert(SV_ARRAY_SIZE(rng_backend_names) == SV__RNG_MAX + 1, "rng backend names");

static const sv_jfield rng_fields[] = {
    SV_JENUM(sv_qdev_rng, backend, "backend", rng_backend_names),
    SV_JSTR(sv_qdev_rng, id, "id"),
    SV_JSTR(sv_qdev_rng, filename, "filename"),
    SV_JSTR(sv_qdev_rng, bus, "bus"),
    SV_JSTR(sv_qdev_rng, addr, "addr"),
    SV_JINT(sv_qdev_rng, max_bytes, "max_bytes", 1, INT64_MAX),
    SV_JINT(sv_qdev_rng, period, "period", 1, UINT32_MAX),
    SV_JVIRTIO(sv_qdev_rng, v),
    SV_JEND,
};
static const sv_jschema rng_schema = {sizeof(sv_qdev_rng), rng_fields};

static int rng_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                        sv_error **err)
{
    const sv_qdev_rng *d = &dev->u.rng;
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if (d->filename && d->backend != SV_RNG_RANDOM)
        return sv_field_error(err, path, "filename", "only applies to backend random");
    if ((r = sv_check_abs_path(path, "filename", d->filename, false, err)) < 0)
        return r;
    if (d->filename && !*d->filename)
        return sv_field_error(err, path, "filename", "is empty");
    if ((r = check_bus_addr(path, d->bus, d->addr, t, err)) < 0)
        return r;
    return sv_qdev_virtio_validate(&d->v, cfg, path, err);
}

/* The backend object shares the device's id: objects and devices live in
 * separate QOM containers, and one name for the pair keeps them together. */
static sv_qopts *rng_backend_props(const sv_qdev_rng *d)
{
    if (d->backend == SV_RNG_BUILTIN) {
        sv_qopts *o = sv_qopts_new("qom-type", "rng-builtin");
        sv_qopts_str(o, "id", d->id);
        return o;
    }
    sv_qopts *o = sv_qopts_new("qom-type", "rng-random");
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "filename", d->filename ? d->filename : "/dev/urandom");
    return o;
}

static sv_qopts *rng_props(const sv_qdev_rng *d, const sv_qemu_config *cfg)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    sv_qopts *o = sv_qdev_virtio_new("virtio-rng", t);
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "rng", d->id);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    if (d->max_bytes)
        sv_qopts_int(o, "max-bytes", d->max_bytes);
    if (d->period)
        sv_qopts_int(o, "period", d->period);
    sv_qdev_virtio_common(o, &d->v, t, cfg);
    return o;
}

static void rng_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *b = rng_backend_props(&dev->u.rng);
    sv_argv_add_qopts(a, "-object", b);
    _cleanup_qopts_ sv_qopts *o = rng_props(&dev->u.rng, cfg);
    sv_qdev_add_device(a, o);
}

static void rng_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_rng *d = &dev->u.rng;
    sv_qdev_desc_id(out, SV_QNS_OBJECT, d->id, "id");
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->id, "id");
    sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
}

const sv_qdev_ops sv_qdev_rng_ops = {"rng", &rng_schema, rng_validate, rng_append, rng_describe};

/* ---- balloon: virtio-balloon ---- */

static const sv_jfield balloon_fields[] = {
    SV_JSTR(sv_qdev_balloon, id, "id"),
    SV_JSTR(sv_qdev_balloon, bus, "bus"),
    SV_JSTR(sv_qdev_balloon, addr, "addr"),
    SV_JBOOL(sv_qdev_balloon, deflate_on_oom, "deflate_on_oom"),
    SV_JBOOL(sv_qdev_balloon, free_page_reporting, "free_page_reporting"),
    SV_JVIRTIO(sv_qdev_balloon, v),
    SV_JEND,
};
static const sv_jschema balloon_schema = {sizeof(sv_qdev_balloon), balloon_fields};

static int balloon_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                            sv_error **err)
{
    const sv_qdev_balloon *d = &dev->u.balloon;
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0 ||
        (r = check_bus_addr(path, d->bus, d->addr, t, err)) < 0)
        return r;
    long other = earlier_of_type(dev, cfg, SV_QDEV_BALLOON);
    if (other >= 0)
        return sv_error_set(err, EINVAL, "%s: only one balloon is allowed (devices[%ld] is one)",
                            path, other);
    /* zPCI delivers interrupts through MSI-X only, and virtio-balloon-pci is
     * the one virtio-pci device here without MSI-X vectors. */
    if (t == SV_QT_PCI && sv_qemu_config_arch(cfg) == SV_ARCH_S390X)
        return sv_field_error(err, path, "transport",
                              "pci: s390x PCI devices need MSI-X, which virtio-balloon-pci "
                              "lacks; use ccw (the default on s390x)");
    return sv_qdev_virtio_validate(&d->v, cfg, path, err);
}

static sv_qopts *balloon_props(const sv_qdev_balloon *d, const sv_qemu_config *cfg)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    sv_qopts *o = sv_qdev_virtio_new("virtio-balloon", t);
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    sv_qopts_bool(o, "deflate-on-oom", d->deflate_on_oom);
    sv_qopts_bool(o, "free-page-reporting", d->free_page_reporting);
    sv_qdev_virtio_common(o, &d->v, t, cfg);
    return o;
}

static void balloon_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = balloon_props(&dev->u.balloon, cfg);
    sv_qdev_add_device(a, o);
}

static void balloon_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_balloon *d = &dev->u.balloon;
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->id, "id");
    sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
}

const sv_qdev_ops sv_qdev_balloon_ops = {"balloon", &balloon_schema, balloon_validate,
                                         balloon_append, balloon_describe};

/* ---- iommu: intel-iommu ---- */

static const sv_jfield iommu_fields[] = {
    SV_JBOOL(sv_qdev_iommu, intremap, "intremap"),
    SV_JBOOL(sv_qdev_iommu, device_iotlb, "device_iotlb"),
    SV_JBOOL(sv_qdev_iommu, caching_mode, "caching_mode"),
    SV_JEND,
};
static const sv_jschema iommu_schema = {sizeof(sv_qdev_iommu), iommu_fields};

static int iommu_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                          sv_error **err)
{
    const sv_qdev_iommu *d = &dev->u.iommu;
    const char *type = cfg->machine.type;
    bool q35 = type && (strcmp(type, "q35") == 0 || strncmp(type, "pc-q35-", 7) == 0);
    if (sv_qemu_config_arch(cfg) != SV_ARCH_X86_64 || !q35)
        return sv_error_set(err, EINVAL,
                            "%s: intel-iommu needs an x86_64 q35 machine (machine is \"%s\" on %s)",
                            path, type ? type : "(QEMU's default)",
                            sv_arch_names[sv_qemu_config_arch(cfg)]);
    long other = earlier_of_type(dev, cfg, SV_QDEV_IOMMU);
    if (other >= 0)
        return sv_error_set(err, EINVAL, "%s: QEMU supports one vIOMMU (devices[%ld] is one)",
                            path, other);
    /* KVM's in-kernel irqchip cannot remap interrupts; TCG can. */
    if (d->intremap && sv_qdev_accel_is_kvm(cfg) &&
        !sv_qemu_config_machine_opt_is(cfg, "kernel-irqchip", "split") &&
        !sv_qemu_config_machine_opt_is(cfg, "kernel-irqchip", "off"))
        return sv_field_error(err, path, "intremap",
                              "needs the machine option kernel-irqchip=split under KVM");
    return 0;
}

static sv_qopts *iommu_props(const sv_qdev_iommu *d, const sv_qemu_config *cfg)
{
    sv_qopts *o = sv_qopts_new("driver", "intel-iommu");
    sv_qopts_bool(o, "intremap", d->intremap);
    sv_qopts_bool(o, "device-iotlb", d->device_iotlb);
    sv_qopts_bool(o, "caching-mode", d->caching_mode);
    return o;
}

static void iommu_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = iommu_props(&dev->u.iommu, cfg);
    sv_qdev_add_device(a, o);
}

const sv_qdev_ops sv_qdev_iommu_ops = {"iommu", &iommu_schema, iommu_validate, iommu_append,
                                       NULL};

/* ---- pvpanic: the ISA device on x86, pvpanic-pci elsewhere ---- */

static const sv_jfield pvpanic_fields[] = {
    SV_JBOOL(sv_qdev_pvpanic, no_shutdown, "no_shutdown"),
    SV_JEND,
};
static const sv_jschema pvpanic_schema = {sizeof(sv_qdev_pvpanic), pvpanic_fields};

static int pvpanic_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                            sv_error **err)
{
    int arch = sv_qemu_config_arch(cfg);
    if (arch == SV_ARCH_S390X)
        return sv_error_set(err, EINVAL, "%s: QEMU 7.2 has no pvpanic device for s390x", path);
    long other = earlier_of_type(dev, cfg, SV_QDEV_PVPANIC);
    if (other >= 0)
        return sv_error_set(err, EINVAL, "%s: only one pvpanic is allowed (devices[%ld] is one)",
                            path, other);
    return 0;
}

static sv_qopts *pvpanic_props(const sv_qdev_pvpanic *d, const sv_qemu_config *cfg)
{
    return sv_qopts_new("driver",
                        sv_qemu_config_arch(cfg) == SV_ARCH_X86_64 ? "pvpanic" : "pvpanic-pci");
}

static void pvpanic_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = pvpanic_props(&dev->u.pvpanic, cfg);
    sv_qdev_add_device(a, o);
    /* The knob emits -no-shutdown already; QEMU needs it once. */
    if (dev->u.pvpanic.no_shutdown && !cfg->knobs.no_shutdown)
        sv_argv_add(a, "-no-shutdown");
}

/* pvpanic-pci takes the lowest free slot of the root bus. */
static void pvpanic_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    if (sv_qemu_config_arch(cfg) != SV_ARCH_X86_64)
        out->bus_kind = SV_QBUS_PCI;
}

const sv_qdev_ops sv_qdev_pvpanic_ops = {"pvpanic", &pvpanic_schema, pvpanic_validate,
                                         pvpanic_append, pvpanic_describe};

/* ---- loader: the generic loader ---- */

static const sv_jfield loader_fields[] = {
    SV_JSTR(sv_qdev_loader, file, "file"),
    SV_JSTR(sv_qdev_loader, id, "id"),
    SV_JINT(sv_qdev_loader, addr, "addr", 0, INT64_MAX),
    SV_JBOOL(sv_qdev_loader, force_raw, "force_raw"),
    SV_JEND,
};
static const sv_jschema loader_schema = {sizeof(sv_qdev_loader), loader_fields};

static int loader_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                           sv_error **err)
{
    const sv_qdev_loader *d = &dev->u.loader;
    int r;
    if ((r = sv_check_abs_path(path, "file", d->file, true, err)) < 0 ||
        (r = sv_check_id(path, "id", d->id, false, err)) < 0)
        return r;
    return 0;
}

static sv_qopts *loader_props(const sv_qdev_loader *d, const sv_qemu_config *cfg)
{
    sv_qopts *o = sv_qopts_new("driver", "loader");
    sv_qopts_str(o, "file", d->file);
    if (d->addr)
        sv_qopts_int(o, "addr", d->addr);
    if (d->force_raw)
        sv_qopts_bool(o, "force-raw", true);
    sv_qopts_str(o, "id", d->id);
    return o;
}

static void loader_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = loader_props(&dev->u.loader, cfg);
    sv_qdev_add_device(a, o);
}

static void loader_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    sv_qdev_desc_id(out, SV_QNS_DEVICE, dev->u.loader.id, "id");
}

const sv_qdev_ops sv_qdev_loader_ops = {"loader", &loader_schema, loader_validate, loader_append,
                                        loader_describe};
