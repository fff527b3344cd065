/*
 * Block devices: a disk image behind virtio-blk or scsi-hd (the drive as a
 * legacy -drive or as a -blockdev node), and the virtio-scsi controller that
 * scsi-hd disks sit on.
 */
#include <errno.h>
#include <string.h>

#include "qemu/qemu_devices.h"
#include "util/cleanup.h"

/* QEMU keeps node names in a char[32]. */
#define BLOCK_NODE_NAME_MAX 31
/* virtio-scsi: request queues <= VIRTIO_QUEUE_MAX - 2 fixed queues. */
#define SCSI_MAX_QUEUES 1022
/* virtio-scsi addresses: target 0-255, LUN 0-16383. */
#define SCSI_MAX_ID 255
#define SCSI_MAX_LUN 16383

static const char *const blk_driver_names[] = {"virtio-blk", "scsi-hd", NULL};
_Static_assert(SV_ARRAY_SIZE(blk_driver_names) == SV__BLK_MAX + 1, "block driver names");

static const char *const aio_names[] = {"", "threads", "native", "io_uring", NULL};
_Static_assert(SV_ARRAY_SIZE(aio_names) == SV__AIO_MAX + 1, "aio names");

static bool config_has_iothread(const sv_qemu_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_io_threads; i++)
        if (cfg->io_threads[i].id && strcmp(cfg->io_threads[i].id, id) == 0)
            return true;
    return false;
}

static int check_iothread(const sv_qemu_config *cfg, const sv_qvirtio *v, const char *path,
                          const char *value, sv_error **err)
{
    int r = sv_check_id(path, "io_thread", value, false, err);
    if (r < 0 || !value)
        return r;
    if (!config_has_iothread(cfg, value))
        return sv_field_error(err, path, "io_thread", "no entry of io_threads has the id \"%s\"",
                              value);
    /* An iothread needs ioeventfd, which virtio-mmio has only under KVM. */
    if (sv_qemu_config_transport(cfg, v->transport) == SV_QT_MMIO && !sv_qdev_accel_is_kvm(cfg))
        return sv_field_error(err, path, "io_thread",
                              "needs KVM on the mmio transport: virtio-mmio has ioeventfd only "
                              "under KVM and QEMU refuses an iothread without it (accelerator: "
                              "%s)",
                              cfg->machine.acceleration ? cfg->machine.acceleration
                                                        : "unset, so QEMU's default tcg");
    return 0;
}

static int check_pci_only_addr(const sv_qemu_config *cfg, const sv_qvirtio *v, const char *path,
                               const char *addr, sv_error **err)
{
    if (!addr)
        return 0;
    if (sv_qemu_config_transport(cfg, v->transport) != SV_QT_PCI)
        return sv_field_error(err, path, "addr", "only applies to the pci transport");
    return sv_check_pci_addr(path, "addr", addr, err);
}

/* ---- block ---- */

static const sv_jfield block_fields[] = {
    SV_JENUM(sv_qdev_block, driver, "driver", blk_driver_names),
    SV_JSTR(sv_qdev_block, id, "id"),
    SV_JSTR(sv_qdev_block, file, "file"),
    SV_JSTR(sv_qdev_block, format, "format"),
    SV_JENUM(sv_qdev_block, aio, "aio", aio_names),
    SV_JSTR(sv_qdev_block, io_thread, "io_thread"),
    SV_JSTR(sv_qdev_block, serial, "serial"),
    SV_JSTR(sv_qdev_block, bus, "bus"),
    SV_JSTR(sv_qdev_block, addr, "addr"),
    SV_JBOOL(sv_qdev_block, scsi, "scsi"),
    SV_JBOOL(sv_qdev_block, wce, "wce"),
    SV_JBOOL(sv_qdev_block, share_rw, "share_rw"),
    SV_JBOOL(sv_qdev_block, read_only, "read_only"),
    SV_JBOOL(sv_qdev_block, blockdev, "blockdev"),
    SV_JINT(sv_qdev_block, scsi_id, "scsi_id", 0, SCSI_MAX_ID),
    SV_JINT(sv_qdev_block, lun, "lun", 0, SCSI_MAX_LUN),
    SV_JVIRTIO(sv_qdev_block, v),
    SV_JEND,
};
static const sv_jschema block_schema = {sizeof(sv_qdev_block), block_fields};

/* A block driver name such as raw or qcow2 (QEMU would also take "json:"-ish
 * garbage here, so keep to the characters driver names use). */
static int check_format(const char *path, const char *value, sv_error **err)
{
    size_t n = strlen(value);
    if (n == 0 || n > 32 || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
        return sv_field_error(
            err, path, "format",
            "invalid block driver name (expected e.g. raw or qcow2: a-z, 0-9, '_', '-')");
    return 0;
}

static int block_validate_virtio_blk(const sv_qdev_block *d, const sv_qemu_config *cfg,
                                     const char *path, sv_error **err)
{
    int r;
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    if ((r = sv_qdev_virtio_validate(&d->v, cfg, path, err)) < 0)
        return r;
    if ((r = check_pci_only_addr(cfg, &d->v, path, d->addr, err)) < 0)
        return r;
    if ((r = check_iothread(cfg, &d->v, path, d->io_thread, err)) < 0)
        return r;
    /* SCSI passthrough is a legacy (virtio 0.9) feature: QEMU refuses it on a
     * modern device. virtio-mmio devices are legacy by default. */
    if (d->scsi && t == SV_QT_PCI && !d->v.disable_modern)
        return sv_field_error(err, path, "scsi",
                              "needs \"disable_modern\": true on the pci transport");
    if (d->scsi && t == SV_QT_CCW)
        return sv_field_error(err, path, "scsi",
                              "is not available on the ccw transport (virtio 1.0 only)");
    if (d->scsi_id)
        return sv_field_error(err, path, "scsi_id", "only applies to driver scsi-hd");
    if (d->lun)
        return sv_field_error(err, path, "lun", "only applies to driver scsi-hd");
    return 0;
}

static int block_validate_scsi_hd(const sv_qdev_block *d, const sv_qemu_config *cfg,
                                  const char *path, sv_error **err)
{
    /* scsi-hd is not a virtio device: the controller carries those settings. */
    static const char *const why =
        "does not apply to driver scsi-hd (set it on the scsi_controller)";
    if (d->v.transport != SV_QT_DEFAULT)
        return sv_field_error(err, path, "transport", "%s", why);
    if (d->v.disable_modern)
        return sv_field_error(err, path, "disable_modern", "%s", why);
    if (d->v.rom_file)
        return sv_field_error(err, path, "rom_file", "%s", why);
    if (d->v.dev_no)
        return sv_field_error(err, path, "dev_no", "%s", why);
    if (d->io_thread)
        return sv_field_error(err, path, "io_thread", "%s", why);
    if (d->addr)
        return sv_field_error(err, path, "addr",
                              "does not apply to driver scsi-hd (use scsi_id and lun)");
    if (d->scsi)
        return sv_field_error(err, path, "scsi", "only applies to driver virtio-blk");
    if (d->wce)
        return sv_field_error(err, path, "wce", "only applies to driver virtio-blk");
    for (size_t i = 0; i < cfg->n_devices; i++)
        if (cfg->devices[i].type == SV_QDEV_SCSI_CONTROLLER)
            return 0;
    return sv_field_error(err, path, "driver",
                          "scsi-hd needs a SCSI controller (a device of type \"scsi_controller\")");
}

static int block_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                          sv_error **err)
{
    const sv_qdev_block *d = &dev->u.block;
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if (d->blockdev && strlen(d->id) > BLOCK_NODE_NAME_MAX)
        return sv_field_error(err, path, "id",
                              "is longer than %d bytes, QEMU's limit for a node name",
                              BLOCK_NODE_NAME_MAX);
    if ((r = sv_check_abs_path(path, "file", d->file, true, err)) < 0)
        return r;
    if (d->format && (r = check_format(path, d->format, err)) < 0)
        return r;
    if (d->serial && (r = sv_check_required(path, "serial", d->serial, err)) < 0)
        return r;
    if (d->bus && (r = sv_check_required(path, "bus", d->bus, err)) < 0)
        return r;
    switch ((sv_blk_driver)d->driver) {
    case SV_BLK_VIRTIO_BLK:
        return block_validate_virtio_blk(d, cfg, path, err);
    case SV_BLK_SCSI_HD:
        return block_validate_scsi_hd(d, cfg, path, err);
    case SV__BLK_MAX:
        break;
    }
    return sv_field_error(err, path, "driver", "unknown driver");
}

sv_qopts *sv_qdev_block_props(const sv_qdev_block *d, const sv_qemu_config *cfg)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    bool virtio = d->driver == SV_BLK_VIRTIO_BLK;
    sv_qopts *o = virtio ? sv_qdev_virtio_new("virtio-blk", t) : sv_qopts_new("driver", "scsi-hd");
    if (!o)
        return NULL;
    sv_qopts_str(o, "drive", d->id);
    sv_qopts_str(o, "bus", d->bus);
    if (virtio) {
        sv_qopts_str(o, "addr", d->addr);
        if (d->scsi)
            sv_qopts_bool(o, "scsi", true);
        /* Without wce the guest cannot switch the write cache mode (QEMU's default lets it). */
        if (!d->wce)
            sv_qopts_bool(o, "config-wce", false);
    } else {
        if (d->scsi_id)
            sv_qopts_int(o, "scsi-id", d->scsi_id);
        if (d->lun)
            sv_qopts_int(o, "lun", d->lun);
    }
    if (d->share_rw)
        sv_qopts_bool(o, "share-rw", true);
    sv_qopts_str(o, "iothread", d->io_thread);
    /* virtio-blk always gets a serial so the guest can find the disk by id. */
    sv_qopts_str(o, "serial", d->serial ? d->serial : virtio ? d->id : NULL);
    if (virtio)
        sv_qdev_virtio_common(o, &d->v, t, cfg);
    return o;
}

/* The image without a format is never probed: probing lets a guest that
 * writes a qcow2 header into a raw image make QEMU open other host files. */
static const char *block_format(const sv_qdev_block *d)
{
    return d->format ? d->format : "raw";
}

static sv_qopts *drive_opts(const sv_qdev_block *d)
{
    sv_qopts *o = sv_qopts_new(NULL, NULL);
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "file", d->file);
    sv_qopts_str(o, "if", "none");
    sv_qopts_str(o, "format", block_format(d));
    if (d->aio != SV_AIO_DEFAULT)
        sv_qopts_str(o, "aio", aio_names[d->aio]);
    /* QEMU refuses aio=native without O_DIRECT. */
    if (d->aio == SV_AIO_NATIVE)
        sv_qopts_bool(o, "cache.direct", true);
    if (d->read_only)
        sv_qopts_bool(o, "readonly", true);
    return o;
}

static sv_qopts *blockdev_opts(const sv_qdev_block *d)
{
    sv_qopts *o = sv_qopts_new(NULL, NULL);
    sv_qopts_str(o, "driver", block_format(d));
    sv_qopts_str(o, "node-name", d->id);
    sv_qopts_str(o, "file.driver", "file");
    sv_qopts_str(o, "file.filename", d->file);
    if (d->aio != SV_AIO_DEFAULT)
        sv_qopts_str(o, "file.aio", aio_names[d->aio]);
    if (d->aio == SV_AIO_NATIVE)
        sv_qopts_bool(o, "file.cache.direct", true);
    /* The file child inherits read-only from its parent. */
    if (d->read_only)
        sv_qopts_bool(o, "read-only", true);
    return o;
}

static void block_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qdev_block *d = &dev->u.block;
    _cleanup_qopts_ sv_qopts *drive = d->blockdev ? blockdev_opts(d) : drive_opts(d);
    sv_argv_add_qopts(a, d->blockdev ? "-blockdev" : "-drive", drive);
    _cleanup_qopts_ sv_qopts *o = sv_qdev_block_props(d, cfg);
    sv_qdev_add_device(a, o);
}

static void block_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_block *d = &dev->u.block;
    sv_qdev_desc_id(out, SV_QNS_BLOCK, d->id, "id");
    if (d->driver == SV_BLK_VIRTIO_BLK) {
        sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
        return;
    }
    out->bus_kind = SV_QBUS_SCSI;
    out->bus = d->bus;
}

const sv_qdev_ops sv_qdev_block_ops = {"block", &block_schema, block_validate, block_append,
                                       block_describe};

/* ---- scsi_controller ---- */

static const sv_jfield scsi_controller_fields[] = {
    SV_JSTR(sv_qdev_scsi_controller, id, "id"),
    SV_JSTR(sv_qdev_scsi_controller, bus, "bus"),
    SV_JSTR(sv_qdev_scsi_controller, addr, "addr"),
    SV_JSTR(sv_qdev_scsi_controller, io_thread, "io_thread"),
    SV_JINT(sv_qdev_scsi_controller, num_queues, "num_queues", 0, SCSI_MAX_QUEUES),
    SV_JVIRTIO(sv_qdev_scsi_controller, v),
    SV_JEND,
};
static const sv_jschema scsi_controller_schema = {sizeof(sv_qdev_scsi_controller),
                                                  scsi_controller_fields};

static int scsi_controller_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                                    sv_error **err)
{
    const sv_qdev_scsi_controller *d = &dev->u.scsi_controller;
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if ((r = sv_qdev_virtio_validate(&d->v, cfg, path, err)) < 0)
        return r;
    if (d->bus && (r = sv_check_required(path, "bus", d->bus, err)) < 0)
        return r;
    if ((r = check_pci_only_addr(cfg, &d->v, path, d->addr, err)) < 0)
        return r;
    return check_iothread(cfg, &d->v, path, d->io_thread, err);
}

static sv_qopts *scsi_controller_props(const sv_qdev_scsi_controller *d, const sv_qemu_config *cfg)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    sv_qopts *o = sv_qdev_virtio_new("virtio-scsi", t);
    if (!o)
        return NULL;
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    sv_qopts_str(o, "iothread", d->io_thread);
    if (d->num_queues > 0)
        sv_qopts_int(o, "num_queues", d->num_queues);
    sv_qdev_virtio_common(o, &d->v, t, cfg);
    return o;
}

static void scsi_controller_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = scsi_controller_props(&dev->u.scsi_controller, cfg);
    sv_qdev_add_device(a, o);
}

static void scsi_controller_describe(const sv_qdev *dev, const sv_qemu_config *cfg,
                                     sv_qdev_desc *out)
{
    const sv_qdev_scsi_controller *d = &dev->u.scsi_controller;
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->id, "id");
    sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
    out->provides = SV_QBUS_SCSI;
    out->provides_id = d->id;
}

const sv_qdev_ops sv_qdev_scsi_controller_ops = {"scsi_controller", &scsi_controller_schema,
                                                 scsi_controller_validate, scsi_controller_append,
                                                 scsi_controller_describe};
