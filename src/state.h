/*
 * VM state on disk, shared by every sandvm process that works on a VM.
 *
 * Layout: a root directory (SV_STATE_ROOT_DEFAULT, or the caller's --root /
 * SANDVM_ROOT), mode 0700 and owned by us, holds one directory per VM named
 * by its id. A VM directory holds state.json (written atomically: a reader
 * sees the old or the new state, never a torn one, even after a crash), a
 * lock file, and the sockets, logs and pid files of the VM's processes, under
 * the fixed names below; nothing else is ever created there, and removal
 * deletes only those names, as links, never following a symlink.
 *
 * Concurrency: any process may open a VM directory and read state.json
 * without the lock (the atomic write makes that safe). Reading, changing and
 * writing state, and removing the directory, happen under the VM's lock
 * (sv_state_dir_lock()), which the kernel releases when the holder exits, so
 * a sandvm killed mid-command never leaves a VM locked.
 *
 * Crash leftovers: a VM directory appears fully formed (created under a
 * temporary SV_TMP_PREFIX name with its lock and state.json, then renamed into
 * place), and disappears at once when removed (renamed away first). A crash
 * in the middle leaves only a hidden SV_TMP_PREFIX directory in the root,
 * which listings ignore and a later sv_state_dir_create() sweeps away.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "sandvm/vm.h"
#include "util/cleanup.h"
#include "util/error.h"

#define SV_STATE_ROOT_DEFAULT "/run/sandvm"
/* Longest VM id, in bytes. */
#define SV_VM_ID_MAX 64

/* Entries of a VM directory. A process that needs a new kind of file adds its
 * name here and to own_entries[] in state.c, so removal knows it. */
#define SV_STATE_FILE "state.json"
#define SV_STATE_LOCK_FILE "lock"
#define SV_STATE_QMP_SOCKET "qmp.sock"
#define SV_STATE_CONSOLE_SOCKET "console.sock"
#define SV_STATE_EXEC_SOCKET "exec.sock"
#define SV_STATE_QEMU_LOG "qemu.log"
#define SV_STATE_QEMU_PIDFILE "qemu.pid"
#define SV_STATE_VIRTIOFSD_SOCKET "virtiofsd.sock"
#define SV_STATE_VIRTIOFSD_LOG "virtiofsd.log"
#define SV_STATE_VIRTIOFSD_PIDFILE "virtiofsd.pid"
/* Execs on one VM take this lock in turn (the VM's own lock is not held
 * while a command runs, so the VM stays manageable). */
#define SV_STATE_EXEC_LOCK_FILE "exec.lock"
/* Guest RAM of a VM created with template memory (sv_vm_create_opts). */
#define SV_STATE_MEMORY_FILE "memory"
/* The console logger (src/logger.h): its pid file and the capped log. */
#define SV_STATE_LOGGER_PIDFILE "logger.pid"
#define SV_STATE_CONSOLE_LOG "console.log"
#define SV_STATE_CONSOLE_LOG_OLD "console.log.1"

/* state.json is at most this large (the VM config it embeds is capped at
 * SV_MAX_CONFIG_BYTES). */
#define SV_STATE_MAX_BYTES ((16u << 20) + (1u << 20))

/* ---- VM ids ---------------------------------------------------------------- */

/* Checks that `id` can name a VM and its directory: 1 to SV_VM_ID_MAX ASCII
 * letters, digits, '-', '_' and '.', not starting with '.'. So an id can never
 * be "", ".", "..", hold a '/' or name a hidden entry. EINVAL with the id
 * (non-printable bytes as \xNN) and the rule it breaks:
 * "invalid vm id \"../x\": must not start with '.'". */
int sv_vm_id_check(const char *id, sv_error **err);

/* ---- processes ------------------------------------------------------------- */

/* A process as recorded in state: the pid alone could be reused by an
 * unrelated process once ours exits, so the kernel's start time (field 22 of
 * /proc/PID/stat, clock ticks since boot) is kept with it. pid 0: none. */
typedef struct sv_proc_ident {
    int64_t pid;
    int64_t start_time;
} sv_proc_ident;

/* The start time of process `pid`. -ESRCH when there is no such process. */
int sv_pid_start_time(pid_t pid, int64_t *start_time, sv_error **err);

/* 1 when `pid` is a live (not zombie) process started at `start_time`; 0 when
 * it is gone: no such pid, exited (a zombie counts as exited), or the pid now
 * belongs to another process (start time differs). Negative errno only when
 * /proc cannot be read. Never signal a recorded pid without this check; better,
 * use sv_pid_signal(), which has no window between check and signal. */
int sv_pid_alive(pid_t pid, int64_t start_time, sv_error **err);

/* A pidfd (close-on-exec) for the process `pid` started at `start_time`,
 * verified after opening, so it can never refer to a process that reused the
 * pid: poll() it to wait for the exit of a process that is not our child.
 * -ESRCH "process N is gone (...)" when sv_pid_alive() would say 0; -ENOSYS
 * on kernels without pidfd_open. */
int sv_pid_open(pid_t pid, int64_t start_time, sv_error **err);

/* Sends `sig` to the process `pid` started at `start_time`, through a pidfd so
 * that the pid cannot be reused between the check and the signal (on kernels
 * without pidfds: check, then kill()). -ESRCH when it is gone. */
int sv_pid_signal(pid_t pid, int64_t start_time, int sig, sv_error **err);

/* Whether `pid` is the process a caller started with the argument `arg`
 * immediately followed by `value` (e.g. QEMU's "-pidfile" <path>): 1 when it
 * is alive (not a zombie), started at `start_time` (any start time when
 * start_time < 0) and /proc/PID/cmdline holds that pair; 0 otherwise (gone,
 * another process, other arguments). The start time and the command line are
 * read through one /proc/PID directory fd, so they describe one process even
 * if the pid is reused meanwhile. *start_out (may be NULL) receives its start
 * time when 1 is returned. Negative errno only when /proc cannot be read. */
int sv_pid_has_args(pid_t pid, int64_t start_time, const char *arg, const char *value,
                    int64_t *start_out, sv_error **err);

/* ---- the state record -------------------------------------------------------- */

/* sv_vm_run_state and sv_vm_run_state_name() are public: sandvm/vm.h. */

/* Absolute paths of the VM's files, for processes that need a path (socket
 * addresses, QEMU options); the lifecycle sets them with sv_state_dir_file().
 * NULL: not used by this VM. */
typedef struct sv_vm_paths {
    char *dir;
    char *qmp_socket;
    char *console_socket;
    char *exec_socket;
    char *qemu_log;
    char *virtiofsd_socket;
} sv_vm_paths;

#define SV_VM_STATE_VERSION 1

/* ---- hot-plugged devices (src/qemu/hotplug.c) ---- */

/* Where one QEMU device of a hot-plugged device sits (a VFIO group is
 * several QEMU devices, every other kind one). */
typedef struct sv_vm_dev_slot {
    char *qemu_id; /* the QEMU device id (device_del's) */
    char *bus;     /* "pci-bridge-0", "rp1", "scsi0.0", "ccw" */
    char *addr;    /* on that bus: PCI slot "01", "0:1" (scsi-id:lun), devno "fe.0.0005" */
    char *guest;   /* the guest's address: PCI path "02/01", "0:1", "0.0.0005"; NULL: unknown */
    char *host;    /* VFIO: the function's BDF or mdev path; else NULL */
} sv_vm_dev_slot;

/* Where a hot-plugged device is in its life: "adding" from before the
 * first QMP command until QEMU has the device, "attached", "removing" from
 * device_del until DEVICE_DELETED (or until QEMU no longer lists it). The
 * id and the places stay reserved in every one of them. */
typedef enum {
    SV_VM_DEV_ADDING,
    SV_VM_DEV_ATTACHED,
    SV_VM_DEV_REMOVING,
    SV__VM_DEV_STATE_MAX
} sv_vm_dev_state;

/* One hot-plugged device, as state.json records it. */
typedef struct sv_vm_dev_record {
    char *id;   /* sandvm's id for it (sv_vm_device.id) */
    char *kind; /* sv_vm_device_kind_name() */
    char *host; /* what it is on the host: image, interface, socket, IOMMU group */
    bool read_only;
    sv_vm_dev_state state;
    sv_vm_dev_slot *slots;
    size_t n_slots;
} sv_vm_dev_record;

/* Frees what `r` holds and zeroes it; NULL is accepted. */
void sv_vm_dev_record_clear(sv_vm_dev_record *r);

/* ---- resize: hot-plugged memory and vCPUs (src/qemu/resize.c) ---- */

/* A DIMM that sv_vm_resize_memory() plugged in: the pc-dimm device and the
 * memory backend object behind it. */
typedef struct sv_vm_dimm {
    char *id;         /* the device ("dimmmem<N>") */
    char *memdev;     /* its backend object ("mem<N>"), object-del'ed after the unplug */
    int64_t size_mib;
} sv_vm_dimm;

/* What the resizes of a running VM added, oldest first. QEMU's own lists
 * (query-memory-devices, query-hotpluggable-cpus) are the truth; each resize
 * reconciles this record with them first, so an entry a crash left behind,
 * or one of a QEMU that started afresh, is dropped then. */
typedef struct sv_vm_resized {
    sv_vm_dimm *dimms;
    size_t n_dimms;
    char **vcpus; /* hot-plugged vCPU device ids ("cpu-<N>"), NULL-terminated; NULL: none */
} sv_vm_resized;

/* Frees what `r` holds and zeroes it; NULL is accepted. */
void sv_vm_resized_clear(sv_vm_resized *r);

/* The content of state.json. Every pointer is owned by the struct. */
typedef struct sv_vm_state {
    int64_t version;         /* format; sv_vm_state_save() writes SV_VM_STATE_VERSION */
    char *id;                /* NULL in a record to save: the directory's id */
    sv_vm_run_state state;   /* as last recorded; see sv_vm_state_observed() */
    char *arch;              /* e.g. "x86_64"; NULL: not recorded */
    int64_t created;         /* seconds since the epoch */
    sv_proc_ident qemu;      /* pid 0 when none */
    sv_proc_ident virtiofsd; /* pid 0 when none */
    sv_vm_paths paths;
    json_object *config; /* the VM config as given (a reference); NULL: none */
    char *hypervisor;    /* the backend ("qemu"); NULL: not recorded (qemu) */
    char *from;          /* the saved directory the VM is restored from; NULL: boots */
    bool template_memory; /* guest RAM lives in SV_STATE_MEMORY_FILE (shared, for sv_vm_save) */
    sv_vm_dev_record *devices; /* hot-plugged devices, in the order they were added */
    size_t n_devices;
    sv_vm_resized resized; /* hot-plugged memory and vCPUs (key "resized", absent when empty) */
} sv_vm_state;

/* Drops every hot-plugged device record of `st` (a QEMU that starts afresh
 * has none of them). */
void sv_vm_state_clear_devices(sv_vm_state *st);

/* Frees what `st` holds and zeroes it (st itself is not freed); NULL is accepted. */
void sv_vm_state_clear(sv_vm_state *st);
/* Clears and frees a heap-allocated record; NULL is accepted. */
void sv_vm_state_free(sv_vm_state *st);

/* The state a user should be told: a recorded running or paused VM whose
 * QEMU is gone (dead, or its pid reused) is stopped. Other states, and a
 * /proc that cannot be read, give the recorded state. */
sv_vm_run_state sv_vm_state_observed(const sv_vm_state *st);

/* state.json text <-> record. Parsing rejects unknown keys, wrong types, a
 * missing id/state/version and a newer format version; when `expect_id` is
 * not NULL the recorded id must equal it. Errors are EINVAL naming the key. */
int sv_vm_state_parse(const char *text, size_t len, const char *expect_id, sv_vm_state **out,
                      sv_error **err);
int sv_vm_state_format(const sv_vm_state *st, const char *id, char **text_out, sv_error **err);

/* ---- the root -------------------------------------------------------------- */

typedef struct sv_state_root sv_state_root;

/* Opens the state root `path` (NULL: SV_STATE_ROOT_DEFAULT), creating it with
 * mode 0700 when missing (its parent must exist). Refused: a relative path
 * (EINVAL), a symlink (ELOOP), not a directory (ENOTDIR), owned by another
 * user (EPERM), writable by group or others (EPERM): any of these would let
 * someone else plant or redirect VM directories. */
int sv_state_root_open(const char *path, sv_state_root **out, sv_error **err);
/* The root's path as given (trailing slashes removed). */
const char *sv_state_root_path(const sv_state_root *root);
void sv_state_root_free(sv_state_root *root);

/* ---- one VM's directory -------------------------------------------------------- */

typedef struct sv_state_dir sv_state_dir;

/* Creates the directory of the VM `initial->id` (mode 0700) holding its lock
 * file and state.json = `initial`, and makes it appear under the root at once,
 * with our lock on it. *out is the opened, locked directory. EEXIST "vm X
 * already exists" (also when a symlink or any other entry holds the name);
 * EINVAL for a bad id; errno of the filesystem step otherwise, the root left
 * as it was. Before creating, sweeps crash leftovers older than a minute. */
int sv_state_dir_create(const sv_state_root *root, const sv_vm_state *initial, sv_state_dir **out,
                        sv_error **err);

/* Opens the existing directory of VM `id`, unlocked. ENOENT "vm X does not
 * exist"; ELOOP when <root>/<id> is a symlink (never followed); ENOTDIR; EPERM
 * when owned by another user or writable by others. */
int sv_state_dir_open(const sv_state_root *root, const char *id, sv_state_dir **out,
                      sv_error **err);

/* Takes the VM's lock, waiting up to `timeout_ms` (0: try once; negative: no
 * limit). ETIMEDOUT "vm X is busy (locked by another sandvm)"; ENOENT when the
 * VM was removed while we waited (the returned lock is never one on a removed
 * VM); ELOOP when the lock file is a symlink. Locking a locked dir is a no-op. */
int sv_state_dir_lock(sv_state_dir *d, int timeout_ms, sv_error **err);
void sv_state_dir_unlock(sv_state_dir *d);
bool sv_state_dir_locked(const sv_state_dir *d);

const char *sv_state_dir_id(const sv_state_dir *d);
/* "<root>/<id>". */
const char *sv_state_dir_path(const sv_state_dir *d);
/* The directory's fd, for *at() calls; owned by `d`. */
int sv_state_dir_fd(const sv_state_dir *d);
/* "<root>/<id>/<name>", newly allocated; NULL on out-of-memory. */
char *sv_state_dir_file(const sv_state_dir *d, const char *name);

/* Writes state.json (atomically, mode 0600). Requires the lock (EINVAL
 * otherwise: a write without it could undo another process's change).
 * st->id must be NULL or the directory's id. */
int sv_vm_state_save(sv_state_dir *d, const sv_vm_state *st, sv_error **err);
/* Reads state.json into a new record (free with sv_vm_state_free()). Needs no
 * lock. ENOENT when there is none; EINVAL when it is corrupt ("vm X:
 * <path>/state.json: invalid JSON at byte 0: ..."), ELOOP for a symlink. */
int sv_vm_state_load(sv_state_dir *d, sv_vm_state **out, sv_error **err);

/* Removes the VM's directory. Requires the lock. First checks that every
 * entry is one sandvm creates (the names above, as files, sockets or
 * symlinks; never a directory): otherwise ENOTEMPTY naming the foreign
 * entries, and nothing is removed. Then renames the directory away (the id is
 * free from that instant), unlinks each entry with unlinkat() on the
 * directory fd -- a symlink is removed as a link, its target untouched --
 * the lock file last, and removes the directory. Processes waiting for the
 * lock then get ENOENT. `d` stays valid only for sv_state_dir_free(). */
int sv_state_dir_remove(sv_state_dir *d, sv_error **err);

/* Closes the directory, releasing the lock if held; NULL is accepted. */
void sv_state_dir_free(sv_state_dir *d);

/* ---- listing ----------------------------------------------------------------- */

typedef struct sv_state_entry {
    char *id;
    sv_vm_state *state; /* NULL when the VM directory or its state.json is unusable */
    char *error;        /* then: why ("vm X: .../state.json: invalid JSON ...") */
} sv_state_entry;

/* Lists the VMs under the root, sorted by id, without taking their locks.
 * Entries that cannot be a VM are skipped silently: names that are not valid
 * ids (which includes hidden crash leftovers), symlinks, non-directories. A VM
 * directory whose state cannot be loaded is listed with state NULL and the
 * error, not failing the listing. Fails only when the root cannot be read.
 * Free with sv_state_entries_free(). */
int sv_state_list(const sv_state_root *root, sv_state_entry **out, size_t *n_out, sv_error **err);
void sv_state_entries_free(sv_state_entry *entries, size_t n);

SV_DEFINE_CLEANUP(sv_state_root, sv_state_root_free)
SV_DEFINE_CLEANUP(sv_state_dir, sv_state_dir_free)
SV_DEFINE_CLEANUP(sv_vm_state, sv_vm_state_free)
#define _cleanup_state_root_ _cleanup_(sv_state_root_freep)
#define _cleanup_state_dir_ _cleanup_(sv_state_dir_freep)
#define _cleanup_vm_state_ _cleanup_(sv_vm_state_freep)
