/*
 * Resizing a running QEMU VM: memory through pc-dimm hotplug, vCPUs through
 * CPU hotplug (Kata's ResizeMemory / ResizeVCPUs, with the unplug Kata
 * leaves out). The QMP sequences (kata-hypervisor.md b.5):
 *
 *   memory up    query-memory-devices, qom-list /objects (free ids),
 *                object-add {"qom-type": "memory-backend-ram" (or -file with
 *                the boot RAM's mem-path, share, prealloc), "id": "mem<N>",
 *                "size": bytes}, device_add {"driver": "pc-dimm",
 *                "id": "dimmmem<N>", "memdev": "mem<N>"}; object-del when
 *                device_add fails
 *   memory down  device_del dimmmem<N> (newest first) until DEVICE_DELETED,
 *                then object-del mem<N>
 *   vCPUs up     query-hotpluggable-cpus, then per free slot (lowest
 *                topology ids first) device_add {"driver": <its type>,
 *                "id": "cpu-<N>", <its props: node-id, socket-id, die-id,
 *                cluster-id, core-id, thread-id, as QEMU lists them>}
 *   vCPUs down   query-kvm (refused under TCG), device_del cpu-<N> (newest
 *                first) until DEVICE_DELETED
 *
 * QEMU's lists are the truth: each call reads them first, reconciles the
 * record kept in the VM's state with them, and never reuses an id QEMU still
 * holds (a device whose unplug is pending, a backend left behind). The guest
 * brings what arrives online itself: the default guest's agent on the
 * kernel's uevent (x86_64 ACPI; ppc64le pseries does it in the kernel).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conf/vm_config.h"
#include "qemu/qmp.h"
#include "state.h"
#include "util/error.h"

/* What a VM's config and arch let a resize do. Strings are static or point
 * into the config. */
typedef struct sv_resize_limits {
    const char *id;            /* the VM, for messages */
    const char *arch;          /* "x86_64", ... */
    int64_t memory;            /* boot RAM, MiB */
    int64_t max_memory;        /* the hot-plug ceiling, MiB (as QEMU's maxmem is aligned) */
    int64_t memory_slots;      /* DIMM slots */
    int64_t block;             /* hot-plugged memory comes in multiples of this (MiB): the
                                  guest's memory block */
    const char *no_memory;     /* why memory cannot be hot-plugged at all; NULL: it can */
    const char *no_memory_unplug; /* why hot-plugged memory cannot be removed; NULL: it can */
    int64_t vcpus;             /* boot vCPUs */
    int64_t max_vcpus;         /* the hot-plug ceiling */
    const char *no_vcpus;      /* why vCPUs cannot be hot-plugged; NULL: they can */
    const char *no_vcpu_unplug; /* why hot-plugged vCPUs cannot be removed; NULL: they can */
    bool vcpu_unplug_needs_kvm; /* QEMU 7.2 does not survive a vCPU unplug under TCG */
    /* the backend of hot-plugged memory: the boot RAM's kind (shared for
     * vhost-user backends) */
    const char *mem_path;      /* memory-backend-file at this path; NULL: memory-backend-ram */
    bool mem_share, mem_prealloc;
} sv_resize_limits;

/* The guest memory block of each arch (MiB): Debian's 6.1 kernels use
 * 128 MiB sections on x86_64 and aarch64 (4 KiB pages), 256 MiB LMBs on
 * ppc64le pseries. */
#define SV_RESIZE_BLOCK_X86_64 128
#define SV_RESIZE_BLOCK_AARCH64 128
#define SV_RESIZE_BLOCK_PPC64LE 256

/* Fills *out from the VM's config and its arch (an sv_vm_arch, resolved:
 * not SV_VM_ARCH_HOST). Never fails. */
void sv_resize_limits_init(const sv_vm_config *vm, int arch, const char *id,
                           sv_resize_limits *out);

/* The VM's size as QEMU has it. */
typedef struct sv_resize_size {
    int64_t memory;  /* MiB: boot RAM plus every pc-dimm */
    int64_t vcpus;   /* present vCPUs */
} sv_resize_size;

/* Reads the VM's size (query-memory-devices, query-hotpluggable-cpus;
 * query-cpus-fast where QEMU has no hot-pluggable CPUs) and reconciles `rec`
 * with it. Each QMP command runs under the client's default timeout. */
int sv_resize_query(sv_qmp *q, const sv_resize_limits *l, sv_vm_resized *rec,
                    sv_resize_size *out, sv_error **err);

/* Brings the VM's memory to `target` MiB, or the least above it that whole
 * DIMMs allow: growing plugs one DIMM of the missing size rounded up to
 * l->block; shrinking unplugs hot-plugged DIMMs, newest first, while the
 * memory stays at or above the target, each waiting for DEVICE_DELETED until
 * `unplug_deadline` (absolute, util/sock.h). *before / *after (may be NULL)
 * receive the sizes in MiB; `rec` is kept in step with every DIMM added or
 * removed, also when a later step fails. Errors, all naming "memory":
 * EOPNOTSUPP (l->no_memory, l->no_memory_unplug), EINVAL (past max_memory,
 * below the boot RAM, no DIMM small enough to remove), ENOSPC (no free slot),
 * ETIMEDOUT naming the DIMM whose unplug is still pending (the VM goes on;
 * the DIMM stays until the guest lets it go), and QMP's errors. */
int sv_resize_memory(sv_qmp *q, const sv_resize_limits *l, int64_t target,
                     int64_t unplug_deadline, sv_vm_resized *rec, int64_t *before,
                     int64_t *after, sv_error **err);

/* Brings the VM's vCPUs to `target`: growing plugs free slots (lowest
 * topology ids first); shrinking unplugs hot-plugged vCPUs, newest first,
 * each waiting for DEVICE_DELETED until `unplug_deadline`. As
 * sv_resize_memory() for the rest; errors name "vcpus". A device_add QEMU
 * refuses after others went in ends the call with EIO "added K of M
 * vCPUs: ..." (the ones added stay, and are recorded). */
int sv_resize_vcpus(sv_qmp *q, const sv_resize_limits *l, int64_t target,
                    int64_t unplug_deadline, sv_vm_resized *rec, int64_t *before,
                    int64_t *after, sv_error **err);

/* Kernel parameters the guest of a VM needs for what sandvm does with it
 * at run time, appended to the command line (newly allocated; "" for none;
 * NULL on OOM):
 *   memory_hotplug.online_policy=auto-movable   with max_memory: memory a
 *       kernel brings online itself (ppc64le pseries) goes to ZONE_MOVABLE,
 *       so that it can be unplugged again;
 *   sandvm.mount=sandvm:<9p|virtiofs>:/mnt/sandvm   with shared_fs: the
 *       default guest mounts the shared directory there (guest/README.md),
 *       unless kernel_params already name a sandvm.mount= of their own. */
char *sv_resize_guest_params(const sv_vm_config *vm);

/* Where the default guest mounts shared_dir. */
#define SV_GUEST_SHARED_MOUNT "/mnt/sandvm"
