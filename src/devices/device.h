/*
 * Hypervisor-neutral descriptions of the devices a VM gets: what the user (or
 * the container layer) asks for, before any backend turns it into QEMU
 * arguments or QMP commands. Kata's device configuration model
 * (pkg/device/config) in plain C.
 *
 * Ownership rule, for every struct in this file: the struct owns every
 * pointer in it (strings and arrays are heap copies, never borrowed), and
 * sv_dev_*_clear() frees them all and zeroes the struct; clearing a zeroed
 * struct is a no-op. File descriptors are the exception: the numbers are
 * recorded, never owned or closed here; the prepare step that opened them
 * closes them. Fields marked "out" are filled by the backend when the device
 * is plugged (guest addresses the agent needs to find the device).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kata's vhost-user store majors: block device nodes under
 * <store>/block/devices/ with these majors stand for vhost-user sockets. */
#define SV_VHOST_USER_BLK_MAJOR 241
#define SV_VHOST_USER_SCSI_MAJOR 242
/* The Linux loop driver's major. */
#define SV_LOOP_MAJOR 7

typedef enum {
    SV_DEV_BLOCK,
    SV_DEV_NET,
    SV_DEV_VFIO,
    SV_DEV_VHOST_USER,
    SV_DEV_SHARED_DIR,
    SV_DEV_RNG,
    SV_DEV_CONSOLE,
    SV_DEV_VSOCK,
    SV__DEV_MAX
} sv_dev_kind;

/* How a block drive reaches the guest (Kata's block_device_driver). */
typedef enum {
    SV_DEV_BLOCK_VIRTIO_SCSI,    /* scsi-hd on the virtio-scsi controller: "id:lun" */
    SV_DEV_BLOCK_VIRTIO_BLK,     /* virtio-blk-pci on a bridge slot: PCI path */
    SV_DEV_BLOCK_VIRTIO_BLK_CCW, /* s390x: devno */
    SV_DEV_BLOCK_NVDIMM,         /* memory-backend-file + nvdimm: /dev/pmemN */
    SV_DEV_BLOCK_VIRTIO_MMIO,    /* pre-created virtio-mmio transports */
    SV__DEV_BLOCK_MAX
} sv_dev_block_driver;

typedef enum { SV_DEV_NET_TAP, SV_DEV_NET_MACVTAP, SV__DEV_NET_MAX } sv_dev_net_kind;

typedef enum {
    SV_DEV_VFIO_PCI,      /* a PCI function, passed by BDF */
    SV_DEV_VFIO_PCI_MDEV, /* a mediated device on a PCI parent, passed by sysfsdev */
    SV_DEV_VFIO_AP_MDEV,  /* s390x AP matrix mediated device, passed by sysfsdev */
    SV__DEV_VFIO_MAX
} sv_dev_vfio_type;

typedef enum {
    SV_DEV_VHOST_USER_NET,
    SV_DEV_VHOST_USER_BLK,
    SV_DEV_VHOST_USER_SCSI,
    SV_DEV_VHOST_USER_FS,
    SV__DEV_VHOST_USER_MAX
} sv_dev_vhost_user_type;

typedef enum { SV_DEV_SHARED_VIRTIO_FS, SV_DEV_SHARED_9P, SV__DEV_SHARED_MAX } sv_dev_shared_kind;

typedef enum {
    SV_DEV_CONSOLE_VIRTIO, /* virtio-serial + virtconsole: hvc0 */
    SV_DEV_CONSOLE_SERIAL, /* legacy 8250: ttyS0 */
    SV__DEV_CONSOLE_MAX
} sv_dev_console_kind;

/* Names, in one table each (device.c, count checked at compile time); the
 * strings are Kata's where Kata has one ("virtio-scsi", "vhost-user-blk-pci"
 * is Kata's device type, here just "blk"). NULL for an out-of-range value. */
const char *sv_dev_kind_name(int kind);
const char *sv_dev_block_driver_name(int driver);
const char *sv_dev_net_kind_name(int kind);
const char *sv_dev_vfio_type_name(int type);
const char *sv_dev_vhost_user_type_name(int type);
const char *sv_dev_shared_kind_name(int kind);
const char *sv_dev_console_kind_name(int kind);
/* The value whose name is `name`, or -1. */
int sv_dev_block_driver_from_name(const char *name);
int sv_dev_vhost_user_type_from_name(const char *name);

/* What the caller hands in to find a device on the host (Kata's DeviceInfo).
 * `type` is 'b' (block), 'c' or 'u' (char), 'p' (FIFO); major < 0 means the
 * device is given by host_path alone. */
typedef struct sv_dev_info {
    char *host_path;
    char *container_path;
    char type;
    int64_t major, minor;
    bool read_only;
} sv_dev_info;

/* Where a plugged device sits in the guest; every field "out", NULL until
 * the backend plugs the device. */
typedef struct sv_dev_guest_addr {
    char *bus;       /* the bus it went on: "pci-bridge-0", "rp1", "scsi0.0" */
    char *addr;      /* its PCI slot on that bus, "%02x": "01" */
    char *pci_path;  /* guest PCI path, "<bridge slot>/<slot>": "02/01" */
    char *scsi_addr; /* "<scsi-id>:<lun>": "0:3" */
    char *ccw_devno; /* the agent's form "0.<ssid>.<devno>": "0.0.0005" */
} sv_dev_guest_addr;

typedef struct sv_dev_block {
    char *id;     /* the drive id (QEMU node-name) */
    char *path;   /* host file or block device */
    char *format; /* "raw", "qcow2", ...; NULL: raw */
    bool read_only;
    bool share_rw;
    bool discard_unmap;
    int64_t major, minor;    /* the host device, or -1 when given by path */
    int driver;              /* sv_dev_block_driver */
    int64_t index;           /* the VM-wide block index (SCSI address, /dev/vdX); -1: none */
    sv_dev_guest_addr guest; /* out */
} sv_dev_block;

typedef struct sv_dev_net {
    int kind; /* sv_dev_net_kind */
    char *id;
    char *name; /* host interface name: "tap0", "macvtap3" */
    char *mac;  /* guest MAC "aa:bb:cc:dd:ee:ff", or NULL */
    int *fds;   /* one per queue (not owned: numbers only) */
    size_t n_fds;
    int *vhost_fds; /* /dev/vhost-net fds, one per queue, or none */
    size_t n_vhost_fds;
    unsigned queues;
    sv_dev_guest_addr guest; /* out */
} sv_dev_net;

typedef struct sv_dev_vfio {
    int type; /* sv_dev_vfio_type */
    char *id;
    char bdf[13];   /* "dddd:bb:dd.f": the function, or an mdev's PCI parent; "" for AP */
    char *sysfsdev; /* mdevs: "<sysfs root>/sys/bus/mdev/devices/<uuid>"; else NULL */
    char *devfs;    /* "/dev/vfio/<group>" */
    char *group;    /* IOMMU group number, decimal */
    uint16_t vendor, device;
    uint32_t class_code;     /* 24-bit: base class, subclass, prog-if */
    int numa_node;           /* -1 when unknown */
    bool pcie;               /* has a PCI Express capability */
    char *port_bus;          /* root port it is assigned to ("rp0"), or NULL (bridge or root bus) */
    sv_dev_guest_addr guest; /* out */
} sv_dev_vfio;

typedef struct sv_dev_vhost_user {
    int type; /* sv_dev_vhost_user_type */
    char *id;
    char *socket_path;
    char *mac;                  /* net */
    char *tag;                  /* fs: mount tag */
    char *cache;                /* fs: virtiofsd cache mode, or NULL */
    uint64_t cache_size;        /* fs: DAX window bytes; 0: none */
    uint32_t queue_size;        /* 0: the backend's default */
    int64_t index;              /* blk: the VM-wide block index; -1: none */
    uint32_t reconnect_seconds; /* blk: 0 = no reconnect */
    sv_dev_guest_addr guest;    /* out */
} sv_dev_vhost_user;

typedef struct sv_dev_shared_dir {
    int kind; /* sv_dev_shared_kind */
    char *id;
    char *path;  /* host directory */
    char *tag;   /* guest mount tag */
    char *cache; /* virtio-fs cache mode ("auto", "always", "never") or 9p cache; NULL: default */
    uint32_t msize; /* 9p: msize; 0: default */
    bool read_only;
    sv_dev_guest_addr guest; /* out */
} sv_dev_shared_dir;

typedef struct sv_dev_rng {
    char *id;
    char *filename; /* entropy source, "/dev/urandom" */
} sv_dev_rng;

typedef struct sv_dev_console {
    int kind; /* sv_dev_console_kind */
    char *id;
    char *socket_path; /* host unix socket the console is served on */
} sv_dev_console;

typedef struct sv_dev_vsock {
    char *id;
    uint64_t cid;            /* guest CID, >= 3 */
    int vhost_fd;            /* an open /dev/vhost-vsock (not owned), or -1 */
    sv_dev_guest_addr guest; /* out */
} sv_dev_vsock;

/* One device of any kind. */
typedef struct sv_device {
    int kind; /* sv_dev_kind */
    union {
        sv_dev_block block;
        sv_dev_net net;
        sv_dev_vfio vfio;
        sv_dev_vhost_user vhost_user;
        sv_dev_shared_dir shared_dir;
        sv_dev_rng rng;
        sv_dev_console console;
        sv_dev_vsock vsock;
    } u;
} sv_device;

void sv_dev_info_clear(sv_dev_info *d);
void sv_dev_guest_addr_clear(sv_dev_guest_addr *a);
void sv_dev_block_clear(sv_dev_block *d);
void sv_dev_net_clear(sv_dev_net *d);
void sv_dev_vfio_clear(sv_dev_vfio *d);
void sv_dev_vhost_user_clear(sv_dev_vhost_user *d);
void sv_dev_shared_dir_clear(sv_dev_shared_dir *d);
void sv_dev_rng_clear(sv_dev_rng *d);
void sv_dev_console_clear(sv_dev_console *d);
void sv_dev_vsock_clear(sv_dev_vsock *d);
/* Clears the member `kind` selects; accepts NULL. */
void sv_device_clear(sv_device *d);
