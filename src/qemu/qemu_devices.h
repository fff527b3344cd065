/*
 * Device kinds of the QEMU configuration: one ops entry per kind in one table
 * (qemu_devices.c), each with its JSON schema, a validator that names the bad
 * field, and a builder that appends the cold-plug arguments. Builders that
 * create a `-device` do so through one property builder (`*_props`) returning
 * an sv_qopts, so the QMP device_add of a hotplug uses the same properties.
 */
#pragma once

#include "qemu/qemu_config.h"
#include "util/argv.h"
#include "util/json.h"
#include "util/qopts.h"

typedef struct sv_qdev_ops {
    const char *name;          /* the JSON "type" */
    const sv_jschema *schema;  /* the keys besides "type"; decoded into sv_qdev.u */
    /* Checks one device; `path` is its JSON path ("devices[3]"). */
    int (*validate)(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path, sv_error **err);
    /* Appends the device's cold-plug arguments; errors go into the argv object. */
    void (*append)(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a);
} sv_qdev_ops;

extern const sv_qdev_ops *const sv_qdev_table[SV__QDEV_MAX];
const sv_qdev_ops *sv_qdev_ops_by_name(const char *name);

/* Per-kind ops, each defined in its family's file. */
extern const sv_qdev_ops sv_qdev_net_ops, sv_qdev_legacy_serial_ops, sv_qdev_serial_ops,
    sv_qdev_char_ops, sv_qdev_block_ops, sv_qdev_scsi_controller_ops, sv_qdev_bridge_ops,
    sv_qdev_fs_ops, sv_qdev_vhost_user_ops, sv_qdev_vsock_ops, sv_qdev_vfio_ops, sv_qdev_rng_ops,
    sv_qdev_pcie_root_port_ops, sv_qdev_loader_ops, sv_qdev_balloon_ops, sv_qdev_iommu_ops,
    sv_qdev_pvpanic_ops, sv_qdev_memory_backend_ops, sv_qdev_dimm_ops, sv_qdev_object_ops;

/* JSON schema fields shared by every virtio device (sv_qvirtio at member `m`). */
#define SV_JVIRTIO(st, m)                                                                          \
    SV_JENUM(st, m.transport, "transport", sv_qtransport_names),                                   \
        SV_JBOOL(st, m.disable_modern, "disable_modern"), SV_JSTR(st, m.rom_file, "rom_file"),     \
        SV_JSTR(st, m.dev_no, "dev_no")

/* "virtio-blk" + transport -> "virtio-blk-pci" / "-ccw" / "-device". */
char *sv_qdev_virtio_name(const char *base, int transport);
/* New qopts for `-device <base>-<transport>`; NULL on OOM. */
sv_qopts *sv_qdev_virtio_new(const char *base, int transport);
/* Adds the transport-dependent properties of a virtio device: disable-modern
 * and romfile on PCI; devno and iommu_platform (with the knob) on CCW. */
void sv_qdev_virtio_common(sv_qopts *o, const sv_qvirtio *v, int transport,
                           const sv_qemu_config *cfg);
/* Validates the sv_qvirtio fields at `path` (devno form, romfile, transport
 * allowed for the machine). */
int sv_qdev_virtio_validate(const sv_qvirtio *v, const sv_qemu_config *cfg, const char *path,
                            sv_error **err);
/* Appends -device with `o`, failing the argv when o is NULL (OOM). */
void sv_qdev_add_device(sv_argv *a, const sv_qopts *o);

/* ---- validators; each names "<path>.<field>" in its error ---- */
/* QEMU's id rule: a letter, then letters, digits, '-', '.', '_'; at most 127. */
int sv_check_id(const char *path, const char *field, const char *value, bool required, sv_error **err);
/* An absolute path (so QEMU never takes a "proto:" prefix from it). */
int sv_check_abs_path(const char *path, const char *field, const char *value, bool required, sv_error **err);
/* A non-empty string; any bytes are fine (escaped later). */
int sv_check_required(const char *path, const char *field, const char *value, sv_error **err);
/* CCW device number "fe.0.0001": cssid.ssid.devno in hex. */
int sv_check_devno(const char *path, const char *field, const char *value, sv_error **err);
/* PCI slot[.function]: "2", "0x1f", "02.1". */
int sv_check_pci_addr(const char *path, const char *field, const char *value, sv_error **err);
/* MAC address aa:bb:cc:dd:ee:ff. */
int sv_check_mac(const char *path, const char *field, const char *value, sv_error **err);
/* A size: digits with an optional K/M/G/T suffix (also k, m, g, t and "B"). */
int sv_check_size(const char *path, const char *field, const char *value, sv_error **err);
/* A PCI BDF "0000:01:00.0" or "01:00.0". */
int sv_check_bdf(const char *path, const char *field, const char *value, sv_error **err);
/* Fails with "<path>.<field>: <msg>". */
int sv_field_error(sv_error **err, const char *path, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
