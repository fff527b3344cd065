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

/* QEMU's id namespaces: an id must be unique within one, and may repeat
 * across them (an rng's -object and -device share one id on purpose). */
typedef enum {
    SV_QNS_DEVICE,   /* -device id= */
    SV_QNS_OBJECT,   /* -object id=: backends, iothreads, confidential-guest objects */
    SV_QNS_CHARDEV,  /* -chardev id= */
    SV_QNS_NETDEV,   /* -netdev id= */
    SV_QNS_BLOCK,    /* -drive id= and -blockdev node-name=: QEMU refuses one name in both */
    SV_QNS_FSDEV,    /* -fsdev id= */
    SV__QNS_MAX
} sv_qns;

/* The bus a -device plugs into, or offers to the devices after it. */
typedef enum {
    SV_QBUS_NONE,           /* no -device, or one on the system bus */
    SV_QBUS_PCI,            /* a PCI (or PCI Express) bus: slots and functions */
    SV_QBUS_MMIO,           /* a virtio-mmio transport, "virtio-mmio-bus.N" */
    SV_QBUS_CCW,            /* the channel subsystem: devno */
    SV_QBUS_SCSI,           /* "<scsi_controller id>.0" */
    SV_QBUS_VIRTIO_SERIAL,  /* "<serial id>.0" */
    SV__QBUS_MAX
} sv_qbus;

/* One id a device gives QEMU, and the JSON key it came from. */
typedef struct sv_qdev_id {
    int ns;             /* sv_qns */
    const char *id;
    const char *field;
} sv_qdev_id;

/* What the checks across devices need to know about one device: its ids,
 * where it plugs in and what it offers. Strings point into the device. */
typedef struct sv_qdev_desc {
    sv_qdev_id ids[3];
    size_t n_ids;
    int bus_kind;              /* sv_qbus the -device plugs into */
    const char *bus;           /* configured "bus", or NULL: QEMU picks one */
    const char *addr;          /* configured PCI "addr" slot[.function], or NULL */
    const char *dev_no;        /* configured CCW "dev_no", or NULL */
    bool disable_modern;       /* a virtio-pci device with disable-modern=on */
    bool multifunction;        /* a PCI device with multifunction=on */
    int provides;              /* sv_qbus it offers to later devices */
    const char *provides_id;   /* its -device id: the bus is "<id>" (PCI) or "<id>.0" */
    bool pcie_port;            /* the bus it offers is a PCI Express port's */
} sv_qdev_desc;

typedef struct sv_qdev_ops {
    const char *name;          /* the JSON "type" */
    const sv_jschema *schema;  /* the keys besides "type"; decoded into sv_qdev.u */
    /* Checks one device; `path` is its JSON path ("devices[3]"). */
    int (*validate)(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path, sv_error **err);
    /* Appends the device's cold-plug arguments; errors go into the argv object. */
    void (*append)(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a);
    /* Describes a validated device for the checks across devices; NULL for a
     * kind that gives QEMU no ids and sits on no bus. `out` comes zeroed. */
    void (*describe)(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out);
} sv_qdev_ops;

/* Adds one id to a description (ignored when id is NULL). */
void sv_qdev_desc_id(sv_qdev_desc *out, int ns, const char *id, const char *field);
/* Fills bus kind, bus, addr, dev_no and disable_modern of a virtio device. */
void sv_qdev_desc_virtio(sv_qdev_desc *out, const sv_qvirtio *v, const sv_qemu_config *cfg,
                         const char *bus, const char *addr);

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

/* The -device property builders of the kinds a running VM can hot-plug:
 * the cold-plug `-device` argument and the hotplug's QMP device_add both
 * come from these (src/qemu/hotplug.c adds only the "id" device_del needs
 * where the cold-plug form has none). NULL on OOM. sv_qdev_vsock_props'
 * `vhostfd` is the child's fd number (cold plug) or a getfd name (hotplug),
 * NULL when QEMU opens /dev/vhost-vsock itself. */
sv_qopts *sv_qdev_block_props(const sv_qdev_block *d, const sv_qemu_config *cfg);
sv_qopts *sv_qdev_net_props(const sv_qdev_net *d, const sv_qemu_config *cfg);
sv_qopts *sv_qdev_vhost_user_props(const sv_qdev_vhost_user *d, const sv_qemu_config *cfg);
sv_qopts *sv_qdev_vfio_props(const sv_qdev_vfio *d, const sv_qemu_config *cfg);
sv_qopts *sv_qdev_vsock_props(const sv_qdev_vsock *d, const sv_qemu_config *cfg,
                              const char *vhostfd);

/* ---- machine facts of QEMU 7.2, shared by the device kinds ---- */
/* The machine families whose buses sandvm knows; others are not checked. */
typedef enum {
    SV_MACH_OTHER,
    SV_MACH_PC,        /* pc, pc-i440fx-*: root bus pci.0 */
    SV_MACH_Q35,       /* q35, pc-q35-*: root bus pcie.0 */
    SV_MACH_MICROVM,   /* x86_64 microvm: virtio-mmio; pcie.0 only with pcie=on */
    SV_MACH_ARM_VIRT,  /* aarch64 virt, virt-*: pcie.0 and 32 virtio-mmio transports */
    SV_MACH_PSERIES,   /* ppc64 pseries, pseries-*: pci.0 */
    SV_MACH_S390,      /* s390-ccw-virtio, s390-ccw-virtio-*: the channel subsystem, zPCI pci.0 */
} sv_machine_family;
/* The machine type QEMU runs: machine.type, else the arch's default ("pc",
 * "pseries", "s390-ccw-virtio"; aarch64 has none: "none"). */
const char *sv_qdev_machine_type(const sv_qemu_config *cfg);
int sv_qdev_machine_family(const sv_qemu_config *cfg);
/* The name of the machine's root PCI bus; NULL when it has none or the
 * machine is not a known family. */
const char *sv_qdev_root_bus(const sv_qemu_config *cfg);
/* Whether the root bus is PCI Express (pcie.0). */
bool sv_qdev_root_bus_is_pcie(const sv_qemu_config *cfg);
/* Number of virtio-mmio transports; 0 when the machine has none, -1 when the
 * machine is not a known family. */
int sv_qdev_mmio_transports(const sv_qemu_config *cfg);
/* Whether QEMU runs the guest under KVM: the first of machine.acceleration
 * is kvm (unset means QEMU 7.2's default, tcg). */
bool sv_qdev_accel_is_kvm(const sv_qemu_config *cfg);

/* Parses a size as QEMU does: digits with an optional K, M, G or T suffix
 * (any case); a bare number counts `unit` bytes. -ERANGE past 2^64 - 1. */
int sv_parse_size(const char *value, uint64_t unit, uint64_t *out);

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
/* A size: digits with an optional K/M/G/T suffix (also k, m, g, t); QEMU
 * takes one suffix letter, so "2MB" is refused. */
int sv_check_size(const char *path, const char *field, const char *value, sv_error **err);
/* A PCI BDF "0000:01:00.0" or "01:00.0". */
int sv_check_bdf(const char *path, const char *field, const char *value, sv_error **err);
/* Fails with "<path>.<field>: <msg>". */
int sv_field_error(sv_error **err, const char *path, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
