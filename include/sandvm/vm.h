/*
 * libsandvm: the VM lifecycle -- create, start, exec, pause, resume, save,
 * stop, delete, status, list -- from any process.
 *
 * A VM is a directory under a state root (default /run/sandvm; a caller may
 * pass another absolute path, the CLI's --root / SANDVM_ROOT): state.json
 * (written atomically), a lock, the sockets and logs of its processes. Every
 * call opens the directory, takes the VM's lock for as long as it changes or
 * talks to the VM, and releases it before returning, so calls from separate
 * processes serialize and a caller killed at any point never leaves the VM
 * locked. No sandvm process stays resident: QEMU (and virtiofsd, when the
 * config shares a directory with virtio-fs) run detached from the caller, and
 * any later call re-attaches from the state directory.
 *
 * A VM whose VMM died (or whose recorded pid now belongs to another process),
 * or whose virtiofsd died (its guest lost the shared directory), is reported
 * as SV_VM_STOPPED with `crashed` set; sv_vm_stop() or sv_vm_delete() cleans
 * it up (ending a VMM that outlived its virtiofsd). A recorded process is
 * only ever signalled once proven to be the VM's own: alive, started at the
 * recorded time, and carrying the VM's mark on its command line (QEMU's
 * -pidfile in the VM's directory, by which a QEMU whose start was
 * interrupted before it was recorded is found too).
 *
 * Errors follow sandvm.h. Besides those: ENOENT "vm X does not exist";
 * EEXIST "vm X already exists"; EBUSY "vm X is busy (locked by another
 * sandvm)" when the lock was not free within the call's lock timeout;
 * EALREADY/EINVAL when the VM is not in a state the call applies to (the
 * message names the state: "vm X is paused; resume it first");
 * ETIMEDOUT naming the VM and the QMP command that did not answer; ECHILD
 * "vm X: qemu exited: <its stderr>" when the VMM died during the call.
 */
#ifndef SANDVM_VM_H
#define SANDVM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandvm/sandvm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SV_VM_CREATED, /* state dir and config exist; no VMM process */
    SV_VM_RUNNING,
    SV_VM_PAUSED,
    SV_VM_STOPPED, /* VMM gone: stopped with keep, or found dead (crashed) */
    SV__VM_STATE_MAX
} sv_vm_run_state;

/* "created", "running", "paused", "stopped"; "?" out of range. */
const char *sv_vm_run_state_name(sv_vm_run_state s);

typedef struct sv_vm sv_vm;

/* ---- opening ------------------------------------------------------------- */

/* Options of sv_vm_create(). Zero-initialise, then set what you need. */
typedef struct sv_vm_create_opts {
    const char *root;        /* state root; NULL: /run/sandvm */
    const char *config_json; /* the VM config (docs/vm-config.md); NULL with `from` */
    size_t config_len;       /* bytes of config_json (need not be NUL-terminated) */
    const char *from;        /* a directory written by sv_vm_save(): the new VM takes its
                                config and starts from its saved state, without booting */
    bool template_memory;    /* keep guest RAM in a shared file in the state dir, so that
                                sv_vm_save() can skip copying it (Kata's VM templating) */
} sv_vm_create_opts;

/* Creates VM `id` (see sv_vm_id rules: 1-64 of [A-Za-z0-9_.-], not starting
 * with '.'): validates the config against this host (arch, assets, QEMU
 * binary), records it, and leaves the VM created (no process). *out is an
 * open handle (unlocked). Exactly one of config_json and `from` is given;
 * `from` excludes template_memory, and template_memory excludes shared_fs
 * virtio-fs. Errors: EINVAL naming the config key ("kernel: ...") or the
 * option; ENOENT for a missing kernel, initrd, QEMU binary, or a `from` that
 * is not a saved VM; EEXIST. */
int sv_vm_create(const char *id, const sv_vm_create_opts *opts, sv_vm **out, sv_error **err);

/* Opens existing VM `id` under `root` (NULL: /run/sandvm). */
int sv_vm_open(const char *root, const char *id, sv_vm **out, sv_error **err);

/* Closes the handle (the VM is unaffected); NULL is accepted. */
void sv_vm_close(sv_vm *vm);

const char *sv_vm_id(const sv_vm *vm);

/* How long calls on this handle wait for the VM's lock (default 10000 ms;
 * 0: try once; negative: no limit). */
void sv_vm_set_lock_timeout(sv_vm *vm, int timeout_ms);

/* How long each request to the VMM (one QMP exchange: connecting, the
 * greeting and the command) may take on this handle before the call fails
 * with ETIMEDOUT naming the VM and the command (default 10000 ms; values
 * <= 0 restore the default). A stopped or wedged VMM is found out within it. */
void sv_vm_set_vmm_timeout(sv_vm *vm, int timeout_ms);

/* ---- lifecycle ------------------------------------------------------------ */

typedef struct sv_vm_start_opts {
    int timeout_ms;  /* until QMP answers (and a restore completes); 0: 30000 */
    bool paused;     /* leave the vCPUs stopped (QEMU -S); resume later */
} sv_vm_start_opts;

/* Starts a created (or kept stopped, or crashed) VM: prepares its sockets,
 * starts virtiofsd first when the config shares a directory with virtio-fs,
 * spawns the VMM detached from the caller (it outlives the caller; nobody
 * needs to reap it) with the QMP listening socket bound by sandvm, and
 * returns once QMP has answered (the guest may still be booting;
 * sv_vm_exec() waits for its agent). A VM created `from` a saved state is
 * restored instead of booted, and returns once the restore completed
 * (paused with opts->paused, else running). On failure nothing is left
 * running and the VM is created again; an early VMM (or virtiofsd) exit is
 * ECHILD "vm X: qemu exited: <the end of its log>". EALREADY when it runs.
 * `opts` may be NULL. */
int sv_vm_start(sv_vm *vm, const sv_vm_start_opts *opts, sv_error **err);

/* QMP stop / cont. Pausing a paused VM (resuming a running one) is a no-op.
 * EINVAL "vm X is not running (it is created|stopped|crashed)". */
int sv_vm_pause(sv_vm *vm, sv_error **err);
int sv_vm_resume(sv_vm *vm, sv_error **err);

typedef struct sv_vm_stop_opts {
    int grace_ms; /* how long the guest gets to power off after system_powerdown;
                     0: 10000; negative: skip the powerdown request */
    bool keep;    /* keep the VM (state stopped, restartable) instead of deleting it */
    bool force;   /* no QMP at all: SIGKILL at once (for a stuck or SIGSTOPped VMM,
                     where a plain stop fails with ETIMEDOUT naming the command) */
} sv_vm_stop_opts;

/* Stops the VM: system_powerdown (not for a paused VM) and up to grace_ms
 * for the guest to power off, then QMP quit, then SIGKILL; waits for the
 * VMM (and then virtiofsd, which is killed) to be gone -- through pidfds,
 * never relying on init reaping them -- and removes sockets, pid files, logs
 * and, unless `keep`, the VM's directory. Stopping a VM that already died
 * cleans it up the same way. A VMM whose QMP does not answer (stopped,
 * wedged) is ETIMEDOUT within the handle's VMM timeout, with nothing changed;
 * `force` then kills it. EALREADY for a created or stopped VM (after ending
 * anything an interrupted start left). `opts` may be NULL. */
int sv_vm_stop(sv_vm *vm, const sv_vm_stop_opts *opts, sv_error **err);

/* Removes a VM that is not running (created, stopped, crashed), ending any
 * process of it that is left. EINVAL "vm X is running; stop it first" (or
 * paused) unless `force`, which kills it first (SIGKILL, no powerdown). */
int sv_vm_delete(sv_vm *vm, bool force, sv_error **err);

/* Saves a running or paused VM for templating: pauses it, writes `dir`
 * (created, mode 0700; must not exist: EEXIST, also for a symlink there)
 * with config.json (the VM config, arch, whether it holds template memory)
 * and `state`, the migration stream (QMP migrate to an fd sandvm opened;
 * with x-ignore-shared when the VM was created with template_memory, as
 * Kata does, and then `memory`, a sparse copy of its RAM file), and leaves
 * the VM paused (sv_vm_resume() continues it). Any number of VMs can then be
 * created `from` the directory; they map `memory` privately. On failure the
 * directory is removed again. EINVAL when the VM is not running. */
int sv_vm_save(sv_vm *vm, const char *dir, sv_error **err);

/* ---- observing ------------------------------------------------------------ */

typedef struct sv_vm_info {
    char *id;
    sv_vm_run_state state; /* observed: reconciled with the VMM (pid liveness, query-status) */
    bool crashed;          /* stopped because the VMM died without being stopped */
    char *arch;            /* "x86_64", ... */
    char *hypervisor;      /* "qemu" */
    int64_t created;       /* seconds since the epoch */
    int64_t vmm_pid;       /* 0 when not running */
    int64_t virtiofsd_pid; /* 0 when none */
    char *dir;             /* the VM's state directory */
    char *from;            /* the saved directory it is restored from; NULL: it boots */
    bool template_memory;  /* its guest RAM is a template memory file */
    char *error;           /* non-NULL when the VM could not be inspected (corrupt state) */
} sv_vm_info;

/* Fills *out (free with sv_vm_info_free()). Running or paused VMs are asked
 * (query-status) so the answer is QEMU's own view (and is recorded: a VM
 * paused through raw QMP is paused). ETIMEDOUT naming the VM and the command
 * when the VMM does not answer; EBUSY when another call holds the VM. */
int sv_vm_status(sv_vm *vm, sv_vm_info **out, sv_error **err);
void sv_vm_info_free(sv_vm_info *info);

/* All VMs under `root` (NULL: default), sorted by id, their states observed
 * from pids only (no QMP, no locks). Free with sv_vm_info_list_free(). */
int sv_vm_list(const char *root, sv_vm_info **out, size_t *n_out, sv_error **err);
void sv_vm_info_list_free(sv_vm_info *list, size_t n);

/* Host thread ids of the vCPUs (query-cpus-fast), in vCPU order; free(). */
int sv_vm_vcpu_threads(sv_vm *vm, int64_t **tids, size_t *n_out, sv_error **err);
/* Pids of the VM's processes: the VMM first, then virtiofsd if any; free(). */
int sv_vm_pids(sv_vm *vm, int64_t **pids, size_t *n_out, sv_error **err);

/* Sends one raw QMP command (a JSON object with "execute" and optional
 * "arguments"; no "id") and stores the JSON text of the reply's "return"
 * value in *reply (free()). A QMP error reply is EIO naming its class and
 * description. */
int sv_vm_qmp(sv_vm *vm, const char *command_json, char **reply, sv_error **err);

/* A connected socket to the guest console (the serial console chardev):
 * read the guest's output, write its input. The caller closes it. The
 * console serves one client at a time (others wait for it to close); what
 * the guest prints while nobody is connected is lost. */
int sv_vm_console_connect(sv_vm *vm, int *fd_out, sv_error **err);

/* ---- exec ------------------------------------------------------------------- */

typedef struct sv_exec_opts {
    const char *const *argv; /* command and arguments, NULL-terminated; argv[0] is looked
                                up in the guest's PATH. Passed as data: no shell parses them. */
    const char *const *env;  /* "NAME=value" added to the guest's default environment; may be NULL */
    const char *cwd;         /* working directory in the guest; NULL: / */
    int stdin_fd;            /* the command's stdin is copied from here; -1: empty stdin */
    int stdout_fd;           /* the command's stdout is written here; -1: dropped */
    int stderr_fd;           /* the command's stderr is written here; -1: dropped */
    int timeout_ms;          /* the guest agent must answer within this (covers boot);
                                0: 120000. The command itself has no limit. */
    int cancel_fd;           /* when readable, the command is killed; -1: none */
} sv_exec_opts;

/* Runs a command in the running VM through the exec channel (a virtio-serial
 * port served by the default guest's agent) and stores its exit status in
 * *exit_status: 0-255, or 128+N when killed by signal N. Execs on one VM may
 * be issued concurrently from any process; they are served in turn (waiting
 * for the turn has no time limit; cancel_fd ends it). The VM's lock is not
 * held while the command runs: the VM can be paused, inspected or stopped
 * meanwhile. Errors: EINVAL "vm X is paused; resume it first" / "is not
 * running"; ENOENT (no such command in the guest, with its name), ETIMEDOUT
 * when the agent did not answer, ECANCELED, ECHILD when the VM stopped
 * before or during the command. */
int sv_vm_exec(sv_vm *vm, const sv_exec_opts *opts, int *exit_status, sv_error **err);

/* ---- devices ------------------------------------------------------------------ */

/* Devices hot-plugged into a running (or paused) VM over QMP. Each gets an id
 * (given, or picked by sandvm: "blk0", "net0", ...) that names it until it is
 * unplugged, and a place on the VM's buses: a slot on a PCI bridge (30 per
 * bridge, config key default_bridges), a PCIe root port (pcie_root_port; on
 * aarch64 virt every PCI device, VFIO with hotplug_vfio_on_root_bus
 * elsewhere), an id:lun on the virtio-scsi controller
 * (block_device_driver virtio-scsi), or a CCW device number (s390x). What is
 * attached, where, and what is still being removed is recorded in the VM's
 * state, so any later process sees it; a VM that starts again starts with
 * none of it. */
typedef enum {
    SV_VM_DEVICE_BLOCK,          /* a disk on block_device_driver: virtio-blk on a bridge slot,
                                    scsi-hd on the SCSI controller, virtio-blk-ccw on s390x */
    SV_VM_DEVICE_NET,            /* virtio-net on a tap (or macvtap) sandvm opens */
    SV_VM_DEVICE_VFIO,           /* every PCI function of one IOMMU group, passed through */
    SV_VM_DEVICE_VHOST_USER_BLK, /* a vhost-user-blk backend's socket (qemu-storage-daemon, SPDK) */
    SV_VM_DEVICE_VHOST_USER_FS,  /* a vhost-user-fs backend's socket (virtiofsd), with a tag */
    SV_VM_DEVICE_VSOCK,          /* vhost-vsock with a guest CID (sandvm opens /dev/vhost-vsock) */
    SV__VM_DEVICE_MAX
} sv_vm_device_kind;

/* "block", "net", "vfio", "vhost-user-blk", "vhost-user-fs", "vsock"; NULL
 * out of range. sv_vm_device_kind_from_name() is the reverse, -1 if none. */
const char *sv_vm_device_kind_name(int kind);
int sv_vm_device_kind_from_name(const char *name);

/* Longest device id, in bytes. */
#define SV_VM_DEVICE_ID_MAX 20

/* What to hot-plug. Zero-initialise, set kind and what it takes; strings
 * are read during the call only. */
typedef struct sv_vm_device {
    int kind;          /* sv_vm_device_kind */
    const char *id;    /* 1-SV_VM_DEVICE_ID_MAX of [A-Za-z0-9_-], starting with a letter;
                          NULL: the kind's name stem and the lowest free number */
    const char *path;  /* BLOCK: an absolute path to a regular file or a block device (raw);
                          VHOST_USER_*: the backend's unix socket (absolute);
                          VFIO: "/dev/vfio/<group>" or a PCI address ("0000:01:00.0" or
                          "01:00.0"), meaning that function's whole IOMMU group */
    int64_t major, minor; /* BLOCK without path: the host block device major:minor (major
                          >= 1), found through /sys/dev/block */
    bool read_only;    /* BLOCK */
    const char *ifname; /* NET: an existing tap (or macvtap) interface in the caller's
                          network namespace (the fds are opened there) */
    bool macvtap;      /* NET: ifname is a macvtap (its /dev/tap<ifindex> is opened) */
    const char *mac;   /* NET: the guest's MAC address; NULL: QEMU picks one */
    unsigned queues;   /* NET: queue pairs (multi-queue tap, one fd each); 0 means 1 */
    const char *tag;   /* VHOST_USER_FS: the guest's mount tag (1-36 bytes) */
    uint32_t cid;      /* VSOCK: the guest's context id, >= 3 */
} sv_vm_device;

/* Where one QEMU device of a hot-plugged device sits (a VFIO group is one
 * per PCI function; the other kinds have one). */
typedef struct sv_vm_device_slot {
    char *qemu_id; /* QEMU's device id */
    char *bus;     /* "pci-bridge-0", "rp1", "scsi0.0", "ccw" */
    char *addr;    /* the place on that bus: PCI slot "01", root port "00", SCSI
                      "<scsi-id>:<lun>", CCW devno "fe.0.0005" */
    char *guest;   /* how the guest finds it: PCI path "02/01" (bridge slot/device
                      slot), SCSI "0:1", CCW "0.0.0005"; NULL when unknown */
    char *host;    /* VFIO: the host function's PCI address or mdev; else NULL */
} sv_vm_device_slot;

typedef struct sv_vm_device_info {
    char *id;
    int kind;       /* sv_vm_device_kind */
    char *host;     /* the file or device, the interface, the socket, the IOMMU group */
    bool read_only;
    bool unplugging; /* an unplug is pending: QEMU still holds the device (and its id) */
    sv_vm_device_slot *slots;
    size_t n_slots;
} sv_vm_device_info;

/* Hot-plugs `dev` into the running or paused VM (a paused guest notices it
 * when resumed), through QMP: blockdev-add + device_add (BLOCK); getfd of
 * each tap (and vhost-net) fd + netdev_add + device_add (NET); device_add per
 * function (VFIO); chardev-add + device_add (VHOST_USER_*); getfd +
 * device_add (VSOCK). docs/devices.md has the exact sequences. Returns once
 * QEMU has added the device; the guest's driver may take a moment longer to
 * show it. *out (may be NULL; free with sv_vm_device_info_free()) says where
 * it went. A step that fails undoes the ones before it (blockdev-del,
 * netdev_del, chardev-remove, device_del of the group's functions already
 * added) and gives its place back. Errors: EINVAL naming the field
 * ("net.ifname: ..."), the state ("vm X is not running") or a VM that cannot take
 * the device (no PCI bridge, nvdimm or virtio-mmio block driver, vhost-user
 * without shared memory: config key enable_vhost_user_store); EEXIST for an
 * id in use (also by a device whose unplug is pending: "still held by QEMU");
 * ENOSPC when the bus is full; ENOENT for a missing file, interface or
 * IOMMU group; EIO "qmp CMD: CLASS: DESC" when QEMU refuses. */
int sv_vm_hotplug(sv_vm *vm, const sv_vm_device *dev, sv_vm_device_info **out, sv_error **err);

/* Unplugs device `id` (all of a VFIO group's functions): device_del, then
 * waits up to `timeout_ms` (<= 0: 10000) for QEMU's DEVICE_DELETED, which
 * most buses send only once the guest released the device; then removes its
 * backend (blockdev-del, netdev_del, chardev-remove) and frees its place and
 * id. A guest that does not release it (a paused VM, a guest without PCI
 * hotplug) makes it ETIMEDOUT "vm X: device Y: unplug still pending after N
 * ms (the guest has not released it)": the VM is unaffected, the device
 * stays recorded as unplugging, and its id and place stay taken until QEMU
 * lets it go, which any later call on the VM notices (sv_vm_devices(), or
 * sv_vm_unplug() again, which also waits for the event). ENOENT "vm X has no
 * hot-plugged device Y". */
int sv_vm_unplug(sv_vm *vm, const char *id, int timeout_ms, sv_error **err);

/* The hot-plugged devices of the VM, in the order they were added (*out:
 * free with sv_vm_device_info_list_free()). For a running or paused VM,
 * devices whose unplug was pending and that QEMU has let go meanwhile are
 * finished (their backends removed) and left out. */
int sv_vm_devices(sv_vm *vm, sv_vm_device_info **out, size_t *n_out, sv_error **err);

void sv_vm_device_info_free(sv_vm_device_info *info);
void sv_vm_device_info_list_free(sv_vm_device_info *list, size_t n);

/* ---- resize --------------------------------------------------------------------- */

/* Memory and vCPUs of a running VM, changed while it runs (Kata's
 * ResizeMemory / ResizeVCPUs). The room for it is set when the VM is created
 * (config keys max_memory, memory_slots, max_vcpus; docs/vm-config.md); what
 * each arch can do (QEMU 7.2):
 *
 *   arch     memory up        memory down           vCPUs up   vCPUs down
 *   x86_64   pc-dimm (ACPI)   yes (hot-plugged)     yes        under KVM only (ACPI eject;
 *                                                              QEMU 7.2's TCG breaks on it)
 *   ppc64le  pc-dimm (LMBs)   yes (hot-plugged)     yes        yes
 *   aarch64  with firmware*   -                     no         no
 *   s390x    no               no                    yes        no
 *
 *   * QEMU takes the DIMM, but Debian's arm64 kernel (the default guest's)
 *     has no ACPI memory hotplug and never adds it.
 *
 * The default guest brings hot-plugged vCPUs and memory online by itself
 * (guest/README.md), usually within a second or two under TCG; sandvm does
 * not wait for that. Only what a resize added can be removed again, newest
 * first, and only once the guest releases it (it offlines the vCPU, or
 * migrates the pages off the memory, which the default guest keeps movable
 * for this). What a resize added is recorded in the VM's state and lost
 * when the VM stops; a VM saved with it cannot be restored (sv_vm_save()
 * refuses). Errors besides the usual: EOPNOTSUPP naming what the arch or
 * machine lacks ("vm X: memory: memory hotplug is not supported on s390x
 * (...)"); EINVAL for a size past the ceiling or below what can be removed,
 * naming the limit; ENOSPC when no memory slot is free; ETIMEDOUT naming the
 * device whose unplug the guest did not complete within `timeout_ms` (the VM
 * goes on; the device stays, and is counted, until the guest lets it go);
 * EINVAL "vm X is paused; resume it first". */

typedef struct sv_vm_size {
    int64_t memory_mib;     /* boot memory plus every DIMM QEMU has */
    int64_t max_memory_mib; /* what memory can grow to (memory_mib when it cannot) */
    int64_t vcpus;          /* present vCPUs */
    int64_t max_vcpus;      /* what vcpus can grow to (vcpus when they cannot) */
} sv_vm_size;

/* The size of the running or paused VM, as QEMU has it. */
int sv_vm_get_size(sv_vm *vm, sv_vm_size *out, sv_error **err);

/* Brings the VM's memory to `mib` MiB: growing plugs one DIMM (an
 * object-add'ed memory backend of the boot RAM's kind, plus a pc-dimm) of
 * the difference rounded up to the arch's memory block (x86_64 and aarch64
 * 128 MiB, ppc64le 256 MiB); shrinking unplugs DIMMs a resize added, newest
 * first, while the memory stays at or above `mib`, each waiting up to
 * `timeout_ms` (<= 0: 10000) for the guest to release it. *old_mib and
 * *new_mib (may be NULL) receive the sizes before and after; on a failure
 * half-way, *new_mib is what the VM has then. */
int sv_vm_resize_memory(sv_vm *vm, int64_t mib, int timeout_ms, int64_t *old_mib,
                        int64_t *new_mib, sv_error **err);

/* Brings the VM's vCPUs to `vcpus` (1 - max_vcpus): growing device_adds free
 * CPU slots (query-hotpluggable-cpus), lowest topology ids first; shrinking
 * unplugs vCPUs a resize added, newest first, each waiting up to
 * `timeout_ms` (<= 0: 10000). As sv_vm_resize_memory() for the rest. */
int sv_vm_resize_vcpus(sv_vm *vm, int64_t vcpus, int timeout_ms, int64_t *old_vcpus,
                       int64_t *new_vcpus, sv_error **err);

#ifdef __cplusplus
}
#endif

#endif
