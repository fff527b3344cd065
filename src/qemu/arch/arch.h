/*
 * The QEMU architecture layer (Kata's qemuArch): from a hypervisor-neutral VM
 * configuration and the facts of the host, the typed QEMU configuration
 * (qemu/qemu_config.h) of one VM. One ops table per architecture, all
 * compiled in and chosen at run time; a shared base (arch_base.c) holds what
 * the architectures have in common, and each arch file overrides the rest.
 *
 * Building is a pure function of its inputs: fds and paths arrive in
 * sv_vm_launch, host facts are injected, nothing is opened or probed, so the
 * output of a golden test is byte-identical on any build machine.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/vm_config.h"
#include "qemu/arch/host.h"
#include "qemu/qemu_config.h"
#include "util/strbuf.h"

/* What the caller prepared for one start of the VM. Zero-initialise, then
 * set what applies (fds -1 when unused). */
typedef struct sv_vm_launch {
    int console_fd;        /* >= 0: a connected stream socket for the guest console chardev
                              (-chardev socket,id=console0,fd=N); -1: none */
    int qmp_fd;            /* >= 0: a listening unix socket for QMP (-chardev
                              socket,...,fd=N,server=on,wait=off -mon ...,mode=control); -1: none */
    const char *initrd_override; /* if set, used instead of vm->initrd (the host appends a job cpio) */
    const char *extra_kernel_params; /* appended last */
    /* -- additions -- */
    const char *console_path;    /* with console_fd < 0: a unix socket path for the console */
    bool console_connect;        /* console_path: QEMU connects to it (the caller listens) instead
                                    of listening there itself */
    const char *virtiofs_socket; /* shared_fs virtio-fs: the vhost-user socket of virtiofsd */
    int64_t image_size;          /* bytes of vm->image; needed when it goes in as nvdimm */
    const int64_t *net_fds;      /* tap fds of one virtio-net device (one per queue) */
    size_t n_net_fds;
    const int64_t *vhost_net_fds; /* vhost-net fds, one per tap fd (ignored with disable_vhost_net) */
    size_t n_vhost_net_fds;
    const char *net_mac;         /* its MAC address */
    int64_t vsock_cid;           /* >= 3: a vhost-vsock device with this guest CID */
    int vsock_fd;                /* > 0: an open /dev/vhost-vsock for it; else QEMU opens it */
    const char *agent_socket;    /* a virtio-serial port "agent.channel.0" on this unix socket */
    const char *const *vfio_devices; /* PCI devices (BDF) to pass through, NULL-terminated */
    const char *const *disks;    /* raw disk images, read-write, on block_device_driver */
    /* -- a VM of the lifecycle (src/qemu/qemu_vm.c) -- */
    bool console_listening;      /* console_fd is a listening socket, not a connected one: the
                                    chardev serves it (server=on,wait=off) */
    int agent_fd;                /* > 0: a listening socket for the virtio-serial port
                                    "agent.channel.0" (instead of agent_socket) */
    const char *memory_file;     /* back guest RAM with this file (memory-backend-file) */
    bool memory_file_shared;     /* map memory_file shared (share=on: writes reach the file);
                                    else privately (copy-on-write, the file is never written) */
    const char *pid_file;        /* -pidfile: QEMU writes its pid there */
    bool incoming_defer;         /* -incoming defer: the state arrives over QMP (a restore) */
    bool paused;                 /* -S: vCPUs stay stopped until QMP cont */
    /* -- boot speed (docs/performance.md) -- */
    bool no_hotplug;             /* nothing is ever hot-plugged into this VM (sv_vm_run): with
                                    machine_type unset, x86_64 then boots microvm where the
                                    config allows it (no PCI, no firmware, no hotplug) */
    int64_t tsc_khz;             /* the host's TSC rate in kHz (0: unknown). Under TCG the
                                    guest's TSC runs at it; microvm, which has no HPET or PM
                                    timer to calibrate against, gets it as tsc_early_khz=, and
                                    is not picked by default without it */
} sv_vm_launch;

/* QEMU's -sandbox setting for every VM. */
#define SV_ARCH_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

/* Kata's capabilities(): what the VM can do once running. */
enum {
    SV_CAP_BLOCK_HOTPLUG = 1 << 0,
    SV_CAP_MULTIQUEUE = 1 << 1,
    SV_CAP_FS_SHARING = 1 << 2,
    SV_CAP_NET_HOTPLUG = 1 << 3,
    SV_CAP_MEMORY_HOTPLUG = 1 << 4,
    SV_CAP_CPU_HOTPLUG = 1 << 5,
};

typedef struct sv_qemu_arch_ops sv_qemu_arch_ops;

/* The state of one build: inputs, decisions taken so far, and the typed
 * configuration being filled. Methods take it whole. */
typedef struct sv_arch_ctx {
    const sv_vm_config *vm;
    const sv_host_facts *host;
    const sv_vm_launch *launch;
    const sv_qemu_arch_ops *ops;
    sv_qemu_config *cfg;
    const char *machine;   /* the machine type in use */
    bool kvm;              /* accel resolved to kvm */
    bool nested;           /* nesting checks on a VM host: legacy virtio (disable-modern) */
    int protection;        /* sv_protection in use; SV_PROT_NONE unless confidential_guest */
    bool nvdimm_image;     /* the image goes in as an nvdimm */
    bool vhost_net;
    unsigned ccw_next;     /* s390x: next free devno on the one CCW bridge (0xfe.0.xxxx) */
    int gic_version;       /* aarch64: 2 or 3 (the vCPU limit depends on it) */
    char *io_thread;       /* the iothread id, when enable_iothreads */
    sv_strbuf machine_opts; /* machine options, comma separated, built by machine() */
} sv_arch_ctx;

typedef struct sv_arch_block {
    const char *id, *file, *format;
    bool read_only;
} sv_arch_block;

typedef struct sv_arch_net {
    const char *id;
    const int64_t *fds, *vhost_fds;
    size_t n_fds, n_vhost_fds;
    const char *mac;
} sv_arch_net;

typedef struct sv_arch_vhost_user {
    int type;              /* sv_vhost_user_type */
    const char *id, *socket_path, *tag;
    int64_t queue_size;
} sv_arch_vhost_user;

typedef struct sv_arch_vfio {
    const char *id, *bdf, *sysfsdev;
    const char *bus;       /* a root port id, or NULL */
} sv_arch_vfio;

/* Kata's qemuArch methods. Appenders add typed devices to c->cfg; every
 * method that can fail names the VM config key in its error. */
struct sv_qemu_arch_ops {
    int arch;                         /* sv_vm_arch */
    int qemu_arch;                    /* sv_arch of the QEMU configuration */
    const char *qemu_binary;          /* qemu-system-<x> */
    const char *const *machines;      /* machine types, NULL-terminated; [0] is the default */
    int64_t maxmem_align;             /* MiB the hot-plug ceiling is aligned down to; 0: none */
    int (*validate)(sv_arch_ctx *c, sv_error **err);
    /* machine type, accelerator and options, in c->cfg->machine */
    int (*machine)(sv_arch_ctx *c, sv_error **err);
    const char *(*qemu_path)(const sv_arch_ctx *c);
    /* the arch's own kernel parameters, appended to sb (space separated) */
    void (*kernel_params)(const sv_arch_ctx *c, sv_strbuf *sb);
    unsigned (*capabilities)(const sv_arch_ctx *c);
    int64_t (*max_vcpus)(const sv_arch_ctx *c);
    int (*bridges)(sv_arch_ctx *c, sv_error **err);
    int (*cpu_topology)(sv_arch_ctx *c, sv_error **err);
    /* -cpu model (NULL: QEMU's default) and default features (when vm->cpu_features is NULL) */
    const char *(*cpu_model)(const sv_arch_ctx *c);
    const char *const *(*cpu_features)(const sv_arch_ctx *c);
    int (*memory_topology)(sv_arch_ctx *c, sv_error **err);
    /* the guest's console device name for console= ("ttyS0", "hvc0", ...) */
    const char *(*console_name)(const sv_arch_ctx *c);
    int (*append_console)(sv_arch_ctx *c, sv_error **err);
    int (*append_image)(sv_arch_ctx *c, sv_error **err);
    int (*append_scsi_controller)(sv_arch_ctx *c, sv_error **err);
    int (*append_9p)(sv_arch_ctx *c, const char *id, const char *dir, const char *tag,
                     sv_error **err);
    /* a virtio-serial port `name` on a unix socket: at `path` (QEMU listens there), or
     * fd > 0, a listening socket the caller bound */
    int (*append_socket)(sv_arch_ctx *c, const char *id, const char *path, int fd,
                         const char *name, sv_error **err);
    int (*append_vsock)(sv_arch_ctx *c, int64_t cid, int fd, sv_error **err);
    int (*append_network)(sv_arch_ctx *c, const sv_arch_net *n, sv_error **err);
    int (*append_block)(sv_arch_ctx *c, const sv_arch_block *b, sv_error **err);
    int (*append_vhost_user)(sv_arch_ctx *c, const sv_arch_vhost_user *v, sv_error **err);
    int (*append_vfio)(sv_arch_ctx *c, const sv_arch_vfio *v, sv_error **err);
    int (*append_rng)(sv_arch_ctx *c, sv_error **err);
    int (*append_iommu)(sv_arch_ctx *c, sv_error **err);
    int (*append_pflash)(sv_arch_ctx *c, sv_error **err);
    int (*append_pvpanic)(sv_arch_ctx *c, sv_error **err);
    int (*append_pcie_root_ports)(sv_arch_ctx *c, sv_error **err);
    bool (*supports_memory_hotplug)(const sv_arch_ctx *c);
    /* the confidential-guest object and machine option for c->protection */
    int (*append_protection)(sv_arch_ctx *c, sv_error **err);
    /* the machine type when the config leaves machine_type unset; NULL (no method):
     * machines[0] */
    const char *(*default_machine)(const sv_vm_config *vm, const sv_host_facts *host,
                                   const sv_vm_launch *launch);
};

extern const sv_qemu_arch_ops sv_qemu_arch_amd64, sv_qemu_arch_arm64, sv_qemu_arch_ppc64le,
    sv_qemu_arch_s390x;

/* The ops of an sv_vm_arch (not SV_VM_ARCH_HOST), or NULL. */
const sv_qemu_arch_ops *sv_qemu_arch_ops_get(int arch);

/* The guest architecture of vm on host: vm->arch, or the host's. */
int sv_qemu_arch_guest(const sv_vm_config *vm, const sv_host_facts *host);

/* "kvm" or "tcg": vm->accel, with auto resolved (KVM only when usable, not
 * PVM, and guest arch = host arch). Never fails; sv_qemu_arch_build()
 * reports why an explicit kvm cannot be used. */
const char *sv_qemu_arch_accel(const sv_vm_config *vm, const sv_host_facts *host);

/* Kata's capabilities(): SV_CAP_* bits of what vm on host can do once
 * running (block/net/CPU/memory hotplug, multiqueue, file sharing). 0 when
 * the guest arch is unknown. */
unsigned sv_qemu_arch_capabilities(const sv_vm_config *vm, const sv_host_facts *host);

/* Builds the typed QEMU configuration of vm on host, with the fds and paths
 * of `launch` (NULL: none). On success *out is a new configuration (free
 * with sv_qemu_config_free()) that has passed sv_qemu_config_validate().
 * Errors: EINVAL naming the VM config key ("pflash: aarch64 takes none or
 * exactly two pflash images (code and variables), not 1"); EOPNOTSUPP for
 * what this QEMU cannot do (SEV-SNP, TDX); ENOMEM. */
int sv_qemu_arch_build(const sv_vm_config *vm, const sv_host_facts *host,
                       const sv_vm_launch *launch, sv_qemu_config **out, sv_error **err);

/* ---- the shared base (arch_base.c), for the arch files ---- */

int sv_arch_base_validate(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_machine(sv_arch_ctx *c, sv_error **err);
const char *sv_arch_base_qemu_path(const sv_arch_ctx *c);
void sv_arch_base_kernel_params(const sv_arch_ctx *c, sv_strbuf *sb);
unsigned sv_arch_base_capabilities(const sv_arch_ctx *c);
int sv_arch_base_bridges(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_cpu_topology(sv_arch_ctx *c, sv_error **err);
const char *sv_arch_base_cpu_model(const sv_arch_ctx *c);
const char *const *sv_arch_base_cpu_features(const sv_arch_ctx *c);
int sv_arch_base_memory_topology(sv_arch_ctx *c, sv_error **err);
const char *sv_arch_base_console_name(const sv_arch_ctx *c);
int sv_arch_base_append_console(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_append_image(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_append_scsi_controller(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_append_9p(sv_arch_ctx *c, const char *id, const char *dir, const char *tag,
                           sv_error **err);
int sv_arch_base_append_socket(sv_arch_ctx *c, const char *id, const char *path, int fd,
                               const char *name, sv_error **err);
int sv_arch_base_append_vsock(sv_arch_ctx *c, int64_t cid, int fd, sv_error **err);
int sv_arch_base_append_network(sv_arch_ctx *c, const sv_arch_net *n, sv_error **err);
int sv_arch_base_append_block(sv_arch_ctx *c, const sv_arch_block *b, sv_error **err);
int sv_arch_base_append_vhost_user(sv_arch_ctx *c, const sv_arch_vhost_user *v, sv_error **err);
int sv_arch_base_append_vfio(sv_arch_ctx *c, const sv_arch_vfio *v, sv_error **err);
int sv_arch_base_append_rng(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_append_iommu(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_append_pflash(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_append_pvpanic(sv_arch_ctx *c, sv_error **err);
int sv_arch_base_append_pcie_root_ports(sv_arch_ctx *c, sv_error **err);
bool sv_arch_base_supports_memory_hotplug(const sv_arch_ctx *c);
int sv_arch_base_append_protection(sv_arch_ctx *c, sv_error **err);

/* Helpers for the arch files. */
int sv_arch_key_error(sv_error **err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A new zeroed device of `type` at the end of c->cfg->devices, or NULL (OOM). */
sv_qdev *sv_arch_add_device(sv_arch_ctx *c, int type);
/* strdup() that copies NULL as NULL. */
char *sv_arch_strdup(const char *s);
/* Adds the confidential-guest object (sev-guest, s390-pv-guest, pef-guest, …)
 * with `id`; returns it for type-specific settings, or NULL with *err set. */
sv_qdev_object *sv_arch_add_protection_object(sv_arch_ctx *c, int object_type, const char *id,
                                              sv_error **err);
/* Fills the transport fields of a virtio device: the next devno on CCW,
 * disable-modern on PCI when nested. Fails when the CCW bridge is full. */
int sv_arch_virtio(sv_arch_ctx *c, sv_qvirtio *v, sv_error **err);
/* Appends "key=value" to the machine options (dropped when the user's
 * machine_accelerators sets the same key). */
void sv_arch_machine_opt(sv_arch_ctx *c, const char *key, const char *value);
/* Whether the machine type is, or is a versioned form of, `base` ("q35",
 * "pc-q35-7.2"). */
bool sv_arch_machine_is(const sv_arch_ctx *c, const char *base);
/* The value of `key` in vm->machine_accelerators, or NULL. */
const char *sv_arch_user_machine_opt(const sv_arch_ctx *c, const char *key);
