/*
 * The hypervisor backends behind the VM lifecycle (src/vm.c): one vtable per
 * VMM, registered in one static table (src/hypervisor.c), chosen by name and
 * recorded in state.json ("hypervisor"). Kata's Hypervisor interface, cut to
 * what a detached VM that any later process re-attaches to needs.
 *
 * The calls say what they do, not how, so that the VMMs with a REST API
 * (Cloud Hypervisor, Firecracker: HTTP on a unix socket, the VM config as
 * JSON, snapshot/restore to a directory) fit beside QEMU and its QMP socket:
 * a backend keeps whatever it needs in the VM's directory under names
 * registered in state.h, and its control channel behind control().
 *
 * Contract of every call taking an sv_hv_vm (except observe() without
 * ask_vmm): the caller holds the VM's lock; vm->st is the VM's current
 * record, which the call updates (state, processes, paths) and persists with
 * sv_vm_state_save() itself wherever a crash of the caller must not lose the
 * change (a pid right after a spawn); the caller saves the final record.
 * Backends never signal a process they cannot prove is this VM's (recorded
 * pid with its start time, plus a mark of its own on the command line), and
 * never print.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/vm_config.h"
#include "sandvm/vm.h"
#include "state.h"
#include "util/error.h"

/* The backend of VMs whose state records none. */
#define SV_HYPERVISOR_DEFAULT "qemu"

/* One VM, as a backend call sees it. */
typedef struct sv_hv_vm {
    const char *id;
    sv_state_dir *dir;
    sv_vm_state *st;
    const sv_vm_config *config; /* st->config, parsed */
    int timeout_ms;             /* bound on each request to the VMM (one QMP command) */
} sv_hv_vm;

/* What validate() is asked about, besides the config. */
typedef struct sv_hv_check {
    bool template_memory; /* the VM keeps its RAM in a file of its own (shared) */
    const char *from;     /* restored from this saved directory */
    bool from_template_memory; /* ... whose RAM is a template memory file */
} sv_hv_check;

/* A VM as observed: the recorded state reconciled with its processes (and,
 * when asked, the VMM's own view). */
typedef struct sv_hv_observed {
    sv_vm_run_state state;
    bool crashed;          /* stopped because a process of the VM died unasked */
    int64_t vmm_pid;       /* 0 when none is alive */
    int64_t virtiofsd_pid; /* 0 when none is alive */
} sv_hv_observed;

typedef struct sv_hypervisor_ops {
    const char *name;
    /* Checks that `config` builds for this host, without starting anything;
     * *arch receives the guest arch's name (static). */
    int (*validate)(const sv_vm_config *config, const sv_hv_check *check, const char **arch,
                    sv_error **err);
    /* Starts (or restores, when st->from) a created or stopped VM. On success
     * st is running or paused with its processes recorded; on failure nothing
     * of it runs, its runtime files are gone and st is created again. */
    int (*start)(sv_hv_vm *vm, const sv_vm_start_opts *opts, sv_error **err);
    /* Stops a running or paused VM (or cleans up a dead one), as
     * sv_vm_stop() describes; leaves st stopped with no processes. */
    int (*stop)(sv_hv_vm *vm, const sv_vm_stop_opts *opts, sv_error **err);
    int (*pause)(sv_hv_vm *vm, sv_error **err);
    int (*resume)(sv_hv_vm *vm, sv_error **err);
    /* Writes the VM's saved state into the new, empty directory `dirfd`
     * (`dir` names it in messages), leaving the VM paused. vm.c writes
     * config.json; the backend its own files (registered in
     * SV_SAVE_*), removing them again on failure. */
    int (*save)(sv_hv_vm *vm, int dirfd, const char *dir, sv_error **err);
    /* Observes the VM. Without ask_vmm: from pids and state alone, no lock
     * needed (listing). With ask_vmm (lock held): also the VMM's own view. */
    int (*observe)(sv_hv_vm *vm, bool ask_vmm, sv_hv_observed *out, sv_error **err);
    /* Host thread ids of the vCPUs, in vCPU order (malloc'ed). */
    int (*vcpu_threads)(sv_hv_vm *vm, int64_t **tids, size_t *n, sv_error **err);
    /* The VM's live processes, the VMM first (malloc'ed). */
    int (*pids)(sv_hv_vm *vm, int64_t **pids, size_t *n, sv_error **err);
    /* One raw request on the control channel (QMP: a command object) and
     * its answer as JSON text (malloc'ed). */
    int (*control)(sv_hv_vm *vm, const char *request, char **reply, sv_error **err);
    /* A connected stream socket to the guest console. */
    int (*console_connect)(sv_hv_vm *vm, int *fd, sv_error **err);
    /* The path of the exec channel's socket (malloc'ed), served while the VM runs. */
    char *(*exec_channel)(sv_hv_vm *vm);
    /* Ends what is left of the VM's processes (recorded ones, and any its own
     * pid files name and that prove to be this VM's) and removes its runtime
     * files, leaving state.json and the locks. Best effort: never fails. */
    void (*cleanup)(sv_hv_vm *vm);

    /* ---- hot-plugged devices (sandvm/vm.h "devices") ----
     * The VM is running or paused. Each call first settles the records of
     * st->devices with the VMM's own view (a pending unplug the VMM finished
     * meanwhile is completed and its record dropped) and persists every
     * change to them before the VMM is asked to do something, so that a
     * caller killed half-way leaves a record the next call settles. */
    /* Hot-plugs `dev`; on success its record is st->devices[*index]. */
    int (*hotplug_add)(sv_hv_vm *vm, const sv_vm_device *dev, size_t *index, sv_error **err);
    /* Unplugs the device `id`; on success its record is gone; on ETIMEDOUT
     * (the guest did not release it within timeout_ms) it stays, removing. */
    int (*hotplug_remove)(sv_hv_vm *vm, const char *id, int timeout_ms, sv_error **err);
    /* Only the settling step. */
    int (*devices)(sv_hv_vm *vm, sv_error **err);

    /* ---- resize (sandvm/vm.h "resize") ----
     * The VM is running. Each call first reconciles st->resized with the
     * VMM's own view and keeps it in step with what it adds or removes, also
     * when it fails half-way; the caller saves st afterwards either way. An
     * unplug waits up to timeout_ms (> 0) for the guest to release the device. */
    int (*resize_memory)(sv_hv_vm *vm, int64_t mib, int timeout_ms, int64_t *before,
                         int64_t *after, sv_error **err);
    int (*resize_vcpus)(sv_hv_vm *vm, int64_t vcpus, int timeout_ms, int64_t *before,
                        int64_t *after, sv_error **err);
    /* The VM's current size and ceilings. */
    int (*get_size)(sv_hv_vm *vm, sv_vm_size *out, sv_error **err);
} sv_hypervisor_ops;

/* Files of a saved directory (sv_vm_save()). */
#define SV_SAVE_CONFIG "config.json"
#define SV_SAVE_STATE "state"
#define SV_SAVE_MEMORY "memory"
#define SV_SAVE_VERSION 1

/* The backend named `name` (NULL: SV_HYPERVISOR_DEFAULT), or NULL. */
const sv_hypervisor_ops *sv_hypervisor_get(const char *name);

extern const sv_hypervisor_ops sv_hypervisor_qemu;
