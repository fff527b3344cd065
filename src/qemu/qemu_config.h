/*
 * The typed QEMU configuration: govmm's Config in C. Field names are govmm's in
 * snake_case and are also the JSON keys (docs/qemu-config.md). Integers that
 * mean "unset" at 0 follow govmm; fds are >= 3 (0 = unset). Strings are owned.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sandvm/sandvm.h"

typedef enum { SV_ARCH_DEFAULT, SV_ARCH_X86_64, SV_ARCH_AARCH64, SV_ARCH_PPC64, SV_ARCH_S390X, SV__ARCH_MAX } sv_arch;
extern const char *const sv_arch_names[];

typedef enum { SV_QT_DEFAULT, SV_QT_PCI, SV_QT_CCW, SV_QT_MMIO, SV__QT_MAX } sv_qtransport;
extern const char *const sv_qtransport_names[];

/* Fields every virtio device takes; their meaning depends on the transport. */
typedef struct sv_qvirtio {
    int transport;        /* sv_qtransport */
    bool disable_modern;  /* PCI: disable-modern=on */
    char *rom_file;       /* PCI: romfile= */
    char *dev_no;         /* CCW: devno= (fe.0.0001 form) */
} sv_qvirtio;

typedef struct sv_qmachine {
    char *type;
    char *acceleration;   /* "kvm", "tcg", "kvm:tcg" */
    char *options;        /* "key=value,key=value", validated */
} sv_qmachine;

typedef struct sv_qqmp_socket {
    int type;             /* only "unix" */
    char *name;           /* socket path */
    bool server, no_wait;
    int64_t fd;           /* a listening socket already open in the caller */
} sv_qqmp_socket;

typedef struct sv_qmemory {
    char *size;           /* "2048M" */
    int64_t slots;
    char *max_mem;
    char *path;           /* file-backed memory directory or file */
} sv_qmemory;

typedef struct sv_qsmp {
    int64_t cpus, cores, threads, sockets, dies, max_cpus;
} sv_qsmp;

typedef struct sv_qkernel {
    char *path, *initrd_path, *params;
} sv_qkernel;

typedef struct sv_qrtc {
    char *base;           /* utc, localtime or an ISO date */
    int clock;            /* "", host, rt, vm */
    int drift_fix;        /* "", slew, none */
} sv_qrtc;

typedef struct sv_qknobs {
    bool no_user_config, no_defaults, no_graphic, no_reboot, no_shutdown, daemonize;
    bool huge_pages, mem_prealloc, file_backed_mem, mem_shared, mlock, stopped;
    bool iommu_platform, no_serial, no_parallel;
} sv_qknobs;

typedef enum { SV_QMIG_NONE, SV_QMIG_FD, SV_QMIG_EXEC, SV_QMIG_DEFER, SV_QMIG_TCP, SV__QMIG_MAX } sv_qmig;
typedef struct sv_qincoming {
    int migration_type;   /* sv_qmig */
    int64_t fd;
    char **exec;          /* argv of the command QEMU runs; each word shell-quoted */
    char *host;
    int64_t port;
} sv_qincoming;

typedef struct sv_qfw_cfg {
    char *name, *file, *str;
} sv_qfw_cfg;

typedef struct sv_qiothread {
    char *id;
} sv_qiothread;

/* ---- devices ---- */

typedef enum {
    SV_QDEV_NET,
    SV_QDEV_LEGACY_SERIAL,
    SV_QDEV_SERIAL,
    SV_QDEV_CHAR,
    SV_QDEV_BLOCK,
    SV_QDEV_SCSI_CONTROLLER,
    SV_QDEV_BRIDGE,
    SV_QDEV_FS,
    SV_QDEV_VHOST_USER,
    SV_QDEV_VSOCK,
    SV_QDEV_VFIO,
    SV_QDEV_RNG,
    SV_QDEV_PCIE_ROOT_PORT,
    SV_QDEV_LOADER,
    SV_QDEV_BALLOON,
    SV_QDEV_IOMMU,
    SV_QDEV_PVPANIC,
    SV_QDEV_MEMORY_BACKEND,
    SV_QDEV_DIMM,
    SV_QDEV_OBJECT,
    SV__QDEV_MAX
} sv_qdev_type;

typedef enum { SV_NET_TAP, SV_NET_MACVTAP, SV_NET_IPVTAP, SV_NET_VETHTAP, SV__NET_MAX } sv_net_type;
typedef struct sv_qdev_net {
    sv_qvirtio v;
    int net_type;                  /* sv_net_type; all are tap netdevs to QEMU */
    char *id, *if_name, *bus, *addr;
    char *script, *down_script;    /* default: none run ("no") */
    int64_t *fds; size_t n_fds;
    int64_t *vhost_fds; size_t n_vhost_fds;
    bool vhost;
    char *mac_address;
} sv_qdev_net;

typedef struct sv_qdev_legacy_serial {
    char *chardev;
} sv_qdev_legacy_serial;

typedef struct sv_qdev_serial {   /* virtio-serial controller */
    sv_qvirtio v;
    char *id, *bus, *addr;
    int64_t max_ports;
} sv_qdev_serial;

typedef enum { SV_CHAR_SOCKET, SV_CHAR_PTY, SV_CHAR_FILE, SV_CHAR_STDIO, SV_CHAR_PIPE, SV_CHAR_SERIAL, SV_CHAR_TTY, SV_CHAR_NULL, SV__CHAR_MAX } sv_char_backend;
typedef enum { SV_CHARDRV_VIRTCONSOLE, SV_CHARDRV_VIRTSERIALPORT, SV_CHARDRV_SERIAL, SV_CHARDRV_NONE, SV__CHARDRV_MAX } sv_char_driver;
typedef struct sv_qdev_char {
    int backend;                   /* sv_char_backend */
    int driver;                    /* sv_char_driver; serial/none: -chardev only */
    char *id;                      /* chardev id */
    char *device_id, *bus, *path, *name;
    bool client;                   /* socket: connect instead of listen */
    int64_t fd;                    /* socket: an already connected socket instead of path */
    bool fd_listening;             /* fd is a listening socket: served with server=on,wait=off
                                      (set by the launcher; not in the JSON form) */
} sv_qdev_char;

typedef enum { SV_BLK_VIRTIO_BLK, SV_BLK_SCSI_HD, SV__BLK_MAX } sv_blk_driver;
typedef enum { SV_AIO_DEFAULT, SV_AIO_THREADS, SV_AIO_NATIVE, SV_AIO_IO_URING, SV__AIO_MAX } sv_aio;
typedef struct sv_qdev_block {
    sv_qvirtio v;
    int driver;                    /* sv_blk_driver */
    char *id, *file, *format, *io_thread, *serial, *bus, *addr;
    int aio;                       /* sv_aio */
    bool scsi, wce, share_rw, read_only;
    bool blockdev;                 /* -blockdev node instead of -drive */
    int64_t scsi_id, lun;          /* scsi-hd */
} sv_qdev_block;

typedef struct sv_qdev_scsi_controller {
    sv_qvirtio v;
    char *id, *bus, *addr, *io_thread;
    int64_t num_queues;
} sv_qdev_scsi_controller;

typedef enum { SV_BRIDGE_PCI, SV_BRIDGE_PCIE, SV__BRIDGE_MAX } sv_bridge_type;
typedef struct sv_qdev_bridge {
    int bridge_type;
    char *id, *bus, *addr, *rom_file;
    int64_t chassis;
    bool shpc;
    char *io_reserve, *mem_reserve, *pref64_reserve;
} sv_qdev_bridge;

typedef enum { SV_FSDRV_LOCAL, SV_FSDRV_PROXY, SV_FSDRV_SYNTH, SV__FSDRV_MAX } sv_fs_driver;
typedef enum { SV_SM_NONE, SV_SM_PASSTHROUGH, SV_SM_MAPPED_XATTR, SV_SM_MAPPED_FILE, SV__SM_MAX } sv_security_model;
typedef enum { SV_MD_DEFAULT, SV_MD_REMAP, SV_MD_FORBID, SV_MD_WARN, SV__MD_MAX } sv_multidev;
typedef struct sv_qdev_fs {        /* virtio-9p */
    sv_qvirtio v;
    int fs_driver, security_model, multidev;
    char *id, *path, *mount_tag, *bus, *addr;
    bool read_only;
} sv_qdev_fs;

typedef enum { SV_VU_NET, SV_VU_SCSI, SV_VU_BLK, SV_VU_FS, SV__VU_MAX } sv_vhost_user_type;
typedef struct sv_qdev_vhost_user {
    sv_qvirtio v;
    int vhost_user_type;
    char *socket_path, *char_dev_id, *type_dev_id, *address, *tag, *bus, *addr;
    int64_t cache_size;            /* MiB, virtio-fs DAX window (not in upstream QEMU 7.2) */
    bool shared_versions;
    int64_t queue_size, num_queues;
} sv_qdev_vhost_user;

typedef struct sv_qdev_vsock {
    sv_qvirtio v;
    char *id, *bus, *addr;
    int64_t context_id, vhost_fd;
} sv_qdev_vsock;

typedef struct sv_qdev_vfio {
    int transport;
    char *bdf, *sysfsdev, *rom_file, *dev_no, *bus, *addr, *id;
    int64_t vendor_id, device_id;  /* 0 = unset */
} sv_qdev_vfio;

typedef enum { SV_RNG_RANDOM, SV_RNG_BUILTIN, SV__RNG_MAX } sv_rng_backend;
typedef struct sv_qdev_rng {
    sv_qvirtio v;
    int backend;
    char *id, *filename, *bus, *addr;
    int64_t max_bytes, period;
} sv_qdev_rng;

typedef struct sv_qdev_pcie_root_port {
    char *id, *bus, *addr, *rom_file;
    int64_t chassis, slot, bus_reserve;
    bool multifunction;
    char *pref64_reserve, *pref32_reserve, *mem_reserve, *io_reserve;
} sv_qdev_pcie_root_port;

typedef struct sv_qdev_loader {
    char *file, *id;
    int64_t addr;
    bool force_raw;
} sv_qdev_loader;

typedef struct sv_qdev_balloon {
    sv_qvirtio v;
    char *id, *bus, *addr;
    bool deflate_on_oom, free_page_reporting;
} sv_qdev_balloon;

typedef struct sv_qdev_iommu {
    bool intremap, device_iotlb, caching_mode;
} sv_qdev_iommu;

typedef struct sv_qdev_pvpanic {
    bool no_shutdown;
} sv_qdev_pvpanic;

typedef enum { SV_MEMBE_RAM, SV_MEMBE_FILE, SV_MEMBE_MEMFD, SV__MEMBE_MAX } sv_mem_backend;
typedef struct sv_qdev_memory_backend {
    int backend;
    char *id, *size, *mem_path;
    bool share, prealloc, huge_pages, read_only;
} sv_qdev_memory_backend;

typedef enum { SV_DIMM_PC_DIMM, SV_DIMM_NVDIMM, SV__DIMM_MAX } sv_dimm_driver;
typedef struct sv_qdev_dimm {
    int driver;
    char *id, *memdev;
    bool unarmed;
} sv_qdev_dimm;

typedef enum { SV_OBJ_SEV_GUEST, SV_OBJ_S390_PV_GUEST, SV_OBJ_PEF_GUEST, SV_OBJ_TDX_GUEST, SV_OBJ_MEMORY_BACKEND_EPC, SV__OBJ_MAX } sv_object_type;
typedef struct sv_qdev_object {    /* confidential-guest objects and SGX EPC */
    int object_type;
    char *id, *file, *size;
    int64_t cbitpos, reduced_phys_bits, policy;
    bool debug, prealloc;
} sv_qdev_object;

typedef struct sv_qdev {
    int type;                      /* sv_qdev_type */
    union {
        sv_qdev_net net;
        sv_qdev_legacy_serial legacy_serial;
        sv_qdev_serial serial;
        sv_qdev_char chr;
        sv_qdev_block block;
        sv_qdev_scsi_controller scsi_controller;
        sv_qdev_bridge bridge;
        sv_qdev_fs fs;
        sv_qdev_vhost_user vhost_user;
        sv_qdev_vsock vsock;
        sv_qdev_vfio vfio;
        sv_qdev_rng rng;
        sv_qdev_pcie_root_port pcie_root_port;
        sv_qdev_loader loader;
        sv_qdev_balloon balloon;
        sv_qdev_iommu iommu;
        sv_qdev_pvpanic pvpanic;
        sv_qdev_memory_backend memory_backend;
        sv_qdev_dimm dimm;
        sv_qdev_object object;
    } u;
} sv_qdev;

struct sv_qemu_config {
    char *path;                    /* QEMU binary; default qemu-system-<arch> */
    int arch;                      /* sv_arch; default from path, else the host */
    int64_t uid, gid;              /* -1 = unset; applied by the launcher, not argv */
    int64_t *groups; size_t n_groups;
    char *name, *uuid;
    char *cpu_model;
    char **cpu_features;
    char *seccomp_sandbox;
    sv_qmachine machine;
    sv_qqmp_socket *qmp_sockets; size_t n_qmp_sockets;
    sv_qdev *devices; size_t n_devices;
    sv_qrtc rtc;
    char *vga;
    sv_qkernel kernel;
    sv_qmemory memory;
    sv_qsmp smp;
    char *global_param;
    sv_qknobs knobs;
    char *bios;
    char **pflash;
    sv_qincoming incoming;
    sv_qfw_cfg *fw_cfg; size_t n_fw_cfg;
    sv_qiothread *io_threads; size_t n_io_threads;
    char *pid_file, *log_file;
};
typedef struct sv_qemu_config sv_qemu_config;

/* Effective values derived from the config. */
int sv_qemu_config_arch(const sv_qemu_config *cfg);
/* The transport a device ends up on: its own, else ccw on s390x, mmio on a
 * microvm machine, pci otherwise. */
int sv_qemu_config_transport(const sv_qemu_config *cfg, int requested);
const char *sv_qemu_config_binary(const sv_qemu_config *cfg);
bool sv_qemu_config_is_microvm(const sv_qemu_config *cfg);
/* True when machine.options (validated key=value words) contains key=value. */
bool sv_qemu_config_machine_opt_is(const sv_qemu_config *cfg, const char *key, const char *value);
int sv_qemu_config_validate(const sv_qemu_config *cfg, sv_error **err);
void sv_qemu_config_init(sv_qemu_config *cfg);
struct sv_jschema;
/* The JSON schema of the whole configuration (for docs and tests). */
const struct sv_jschema *sv_qemu_config_schema(void);
int sv_qemu_config_from_json(json_object *obj, sv_qemu_config **out, sv_error **err);
