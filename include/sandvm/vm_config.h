/*
 * libsandvm: the VM configuration.
 *
 * A hypervisor-neutral description of one VM: architecture, kernel and boot
 * assets, CPUs, memory, block and file-sharing choices, confidential-guest
 * and debugging switches. It is the same as the JSON form documented in
 * docs/vm-config.md (one C field per JSON key, same names), and it covers the
 * `[hypervisor.qemu]` settings of Kata Containers' configuration.toml (the
 * document maps every key). The QEMU backend turns it, with the facts of the
 * host it runs on, into a QEMU command line.
 *
 * Two ways to get one:
 *  - sv_vm_config_parse() / sv_vm_config_load(): from JSON. The result owns
 *    every string and array in it; free it with sv_vm_config_free().
 *  - in C: declare one, call sv_vm_config_init_defaults(), then set fields.
 *    Strings and arrays are then borrowed: the library reads them during the
 *    calls that take the config and never frees or keeps them. Do not pass
 *    such a config to sv_vm_config_free().
 *
 * Every string is treated as hostile: paths are checked and escaped on their
 * way into QEMU options, so none can add or change a QEMU option.
 * Errors follow sandvm.h: 0 or a negative errno value, and *err (if err is
 * not NULL) names the JSON key path and the allowed values, e.g.
 *   "block_device_driver: \"ide\" is not one of: virtio-scsi, virtio-blk, ..."
 */
#ifndef SANDVM_VM_CONFIG_H
#define SANDVM_VM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandvm/sandvm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Guest architectures. SV_VM_ARCH_HOST means the architecture of the host
 * sandvm runs on, resolved when the VM is built. JSON: "host", "x86_64",
 * "aarch64", "ppc64le", "s390x". */
typedef enum {
    SV_VM_ARCH_HOST,
    SV_VM_ARCH_X86_64,
    SV_VM_ARCH_AARCH64,
    SV_VM_ARCH_PPC64LE,
    SV_VM_ARCH_S390X,
    SV_VM_ARCH__MAX
} sv_vm_arch;

/* block_device_driver: how block devices reach the guest. virtio-blk-ccw is
 * s390x's virtio-blk (virtio-blk means the same there); virtio-mmio is
 * virtio-blk on a virtio-mmio transport (microvm, aarch64 virt). */
typedef enum {
    SV_VM_BLOCK_VIRTIO_SCSI,
    SV_VM_BLOCK_VIRTIO_BLK,
    SV_VM_BLOCK_NVDIMM,
    SV_VM_BLOCK_VIRTIO_MMIO,
    SV_VM_BLOCK_VIRTIO_BLK_CCW,
    SV_VM_BLOCK__MAX
} sv_vm_block_driver;

/* shared_fs: how shared_dir reaches the guest. JSON: "none", "virtio-9p",
 * "virtio-fs". */
typedef enum {
    SV_VM_SHARED_FS_NONE,
    SV_VM_SHARED_FS_VIRTIO_9P,
    SV_VM_SHARED_FS_VIRTIO_FS,
    SV_VM_SHARED_FS__MAX
} sv_vm_shared_fs;

/* virtio_fs_cache: virtiofsd's cache mode. JSON: "never", "metadata",
 * "auto", "always". */
typedef enum {
    SV_VM_FS_CACHE_NEVER,
    SV_VM_FS_CACHE_METADATA,
    SV_VM_FS_CACHE_AUTO,
    SV_VM_FS_CACHE_ALWAYS,
    SV_VM_FS_CACHE__MAX
} sv_vm_fs_cache;

/* accel: "auto" picks KVM only where it can boot an ordinary guest (usable
 * /dev/kvm, not a PVM host, guest arch = host arch), TCG otherwise. */
typedef enum { SV_VM_ACCEL_AUTO, SV_VM_ACCEL_KVM, SV_VM_ACCEL_TCG, SV_VM_ACCEL__MAX } sv_vm_accel;

/* console: "serial" is the arch's built-in UART (8250 ttyS0 on x86_64,
 * PL011 ttyAMA0 on aarch64, spapr-vty hvc0 on ppc64le, SCLP ttysclp0 on
 * s390x), which works from the first kernel message; "virtio" is a
 * virtconsole (hvc0), which needs the guest's virtio_console driver. */
typedef enum { SV_VM_CONSOLE_SERIAL, SV_VM_CONSOLE_VIRTIO, SV_VM_CONSOLE__MAX } sv_vm_console;

/* The VM configuration. Sizes are MiB. A NULL string means "unset" (the
 * documented default applies); a NULL array means the default, an empty
 * array (just the NULL terminator) means "none". */
typedef struct sv_vm_config {
    int arch;                         /* sv_vm_arch; default host */
    const char *path;                 /* QEMU binary; default qemu-system-<arch> from PATH */
    const char *kernel;               /* guest kernel (absolute path); required */
    const char *initrd;               /* initramfs; excludes image */
    const char *image;                /* root file system image (raw, ext4 in partition 1); excludes initrd */
    const char *kernel_params;        /* appended to the kernel command line, last wins */
    const char *firmware;             /* -bios image (SEV: the OVMF image) */
    const char *const *pflash;        /* flash images, NULL-terminated; aarch64: none or two */
    const char *machine_type;         /* default: q35, virt, pseries, s390-ccw-virtio */
    const char *const *machine_accelerators; /* extra machine options "key=value" */
    const char *const *cpu_features;  /* -cpu features; NULL: the arch's default */
    int64_t vcpus;                    /* boot vCPUs; default 1 */
    int64_t max_vcpus;                /* hot-plug ceiling; 0: = vcpus */
    int64_t memory;                   /* boot RAM, MiB; default 512 */
    int64_t max_memory;               /* hot-plug ceiling, MiB; 0: no memory hotplug */
    int64_t memory_slots;             /* hot-plug slots; default 10 */
    int64_t memory_offset;            /* extra hot-plug room for nvdimm block devices, MiB */
    int64_t default_bridges;          /* PCI bridges for hotplug, 30 slots each; 0 means 1; at most 5 */
    int block_device_driver;          /* sv_vm_block_driver; default virtio-blk */
    int shared_fs;                    /* sv_vm_shared_fs; default none */
    const char *shared_dir;           /* host directory shared as mount tag "sandvm" */
    const char *virtio_fs_daemon;     /* virtiofsd; default /usr/lib/qemu/virtiofsd */
    int virtio_fs_cache;              /* sv_vm_fs_cache; default auto */
    const char *const *virtio_fs_extra_args; /* extra virtiofsd arguments, each starting with '-' */
    bool enable_iothreads;            /* an I/O thread for the SCSI controller and the image */
    bool enable_mem_prealloc;         /* preallocate guest RAM */
    bool enable_hugepages;            /* back guest RAM with /dev/hugepages (implies prealloc) */
    bool enable_vhost_user_store;     /* share guest RAM (a /dev/shm file unless hugepages or
                                         file_mem_backend) so vhost-user block and fs backends
                                         can be hot-plugged */
    const char *file_mem_backend;     /* back guest RAM with a file in this directory */
    bool disable_nesting_checks;      /* ignore that the host is itself a VM */
    bool disable_vhost_net;           /* virtio-net without vhost-net */
    bool enable_debug;                /* debug kernel parameters instead of quiet */
    bool disable_image_nvdimm;        /* image as read-only virtio-blk, not nvdimm; default true */
    bool enable_iommu;                /* a vIOMMU (x86_64 q35 only) */
    bool confidential_guest;          /* run under the host's guest protection (TDX, SEV, SE, PEF) */
    bool sev_snp_guest;               /* on an SNP host: SEV-SNP instead of SEV */
    bool hotplug_vfio_on_root_bus;    /* hot-plug VFIO devices on PCIe root ports */
    int64_t pcie_root_port;           /* PCIe root ports to create (q35, virt); at most 16 */
    const char *entropy_source;       /* virtio-rng backend; default /dev/urandom; "" for no RNG */
    const char *guest_memory_dump_path; /* where a panicked guest's memory is dumped (adds pvpanic) */
    int accel;                        /* sv_vm_accel; default auto */
    int console;                      /* sv_vm_console; default serial */
    const char *run_as_user;          /* when sandvm runs as root: QEMU and virtiofsd run as this
                                         user (a name or a numeric uid, not root), without
                                         capabilities; unset: they keep root (still sandboxed) */
    const char *run_as_group;         /* their group (a name or a gid); default: the user's
                                         primary group */
    int64_t console_log_size;         /* MiB of guest console output kept on the host
                                         (console.log + console.log.1 together); 0: none */
} sv_vm_config;

/* Resets *vm to the defaults for `arch` (an sv_vm_arch): every string and
 * array unset, vcpus 1, memory 512, memory_slots 10, default_bridges 1,
 * block_device_driver virtio-blk, virtio_fs_cache auto, disable_image_nvdimm
 * true, everything else 0 / false / auto / serial. Allocates nothing. */
void sv_vm_config_init_defaults(sv_vm_config *vm, int arch);

/* Parses the JSON text `json` (length `len`, need not be NUL-terminated):
 * the defaults of sv_vm_config_init_defaults() for the "arch" it names, with
 * the keys it sets on top; then validates the result as
 * sv_vm_config_validate() does. On success *out owns the config (free with
 * sv_vm_config_free()). Errors: EINVAL naming the key path of an unknown key,
 * a value of the wrong type or out of range, with the allowed values. */
int sv_vm_config_parse(const char *json, size_t len, sv_vm_config **out, sv_error **err);

/* As sv_vm_config_parse(), reading the file at `path`; errors are prefixed
 * with the path. Errors also: the errno of opening or reading it (ENOENT,
 * EACCES, ...), EFBIG past 16 MiB. */
int sv_vm_config_load(const char *path, sv_vm_config **out, sv_error **err);

/* Checks what can be checked without knowing the hypervisor or the host:
 * ranges, paths, keys that exclude or need each other (image and initrd,
 * shared_fs and shared_dir, ...). What depends on the architecture's
 * hypervisor layer (aarch64: none or two pflash images, no vIOMMU; vCPUs
 * within the arch's maximum; machine types) and on the host (KVM usable,
 * host memory, guest protection) is checked when the VM is built, with
 * errors naming the key the same way. Errors: EINVAL naming the key. */
int sv_vm_config_validate(const sv_vm_config *vm, sv_error **err);

/* Frees a config returned by sv_vm_config_parse() or sv_vm_config_load();
 * NULL is accepted. */
void sv_vm_config_free(sv_vm_config *vm);

/* The JSON name of an sv_vm_arch ("x86_64", ...), or NULL when out of range. */
const char *sv_vm_arch_name(int arch);


/* ---- Running a VM with one job ------------------------------------------ */

/* Options for sv_vm_run(). Zero-initialise, then set fds to -1 where unused. */
typedef struct sv_run_opts {
    const char *const *argv;  /* the job: command and arguments (NULL-terminated), or
                                 NULL for the guest's default job. Passed as data:
                                 no shell parses them on either side. */
    int console_fd;           /* the guest console's output is written here; -1 drops it */
    int cancel_fd;            /* when readable, the VM is stopped (e.g. a pipe written
                                 by a SIGINT handler); -1: none */
    int boot_timeout_ms;      /* how long the guest may take to start the job; 0: 120 s */
    void (*log)(void *ctx, const char *msg); /* progress (accelerator picked, boot
                                 stages, the QEMU command line); may be NULL */
    void *log_ctx;
} sv_run_opts;

/* Boots `vm` (its kernel and initrd must be the default guest's or follow its
 * init protocol, guest/README.md), runs the job, streams the console, and
 * stores the job's exit status (0-255) in *exit_status. QEMU is started by
 * sandvm itself, never outlives the call, and leaves no files behind.
 * Errors: ETIMEDOUT when the job did not start within the boot timeout (the
 * message names the last boot stage reached and QEMU's stderr); ECHILD when
 * QEMU exited first (with its stderr); ECANCELED when cancel_fd fired; EINVAL
 * for an invalid configuration (naming the key); ENOENT for a missing QEMU. */
int sv_vm_run(const sv_vm_config *vm, const sv_run_opts *opts, int *exit_status, sv_error **err);

#ifdef __cplusplus
}
#endif

#endif
