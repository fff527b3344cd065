/*
 * Hotplug of devices into a running QEMU over QMP (Kata's HotplugAddDevice /
 * HotplugRemoveDevice for block, network, VFIO, vhost-user and vsock
 * devices), on top of the neutral device layer (src/devices/) and the
 * cold-plug property builders (qemu_devices.h), so a hot-plugged device
 * gets exactly the -device properties a cold-plugged one would.
 *
 * Two steps, so that tests can drive the second one with fake fds and fake
 * sysfs trees:
 *  - prepare (sv_hotplug_prepare): checks the request and does the host
 *    side -- resolves a block device given by major:minor through sysfs,
 *    opens the tap / macvtap queues (and vhost-net) or /dev/vhost-vsock,
 *    enumerates a VFIO device's IOMMU group -- into a plan of neutral
 *    device descriptions;
 *  - plug (sv_hotplug_plug): takes a place on the VM's buses and sends the
 *    QMP sequence, undoing what it did when a step fails.
 *
 * Places come from allocators (devices/slots.h) built afresh for every call
 * from the VM's QEMU configuration (its bridges, root ports, SCSI
 * controller, and every devno of its cold-plugged CCW devices reserved)
 * and from the records of state.json (sv_vm_dev_record), so a later process
 * hands out exactly what is free.
 *
 * Names sandvm gives QEMU for device X (X: 1-20 of [A-Za-z0-9_-], starting
 * with a letter; never a '.', so these never clash with a device's id nor
 * with a cold-plugged object's, none of which holds a '.'):
 *   device X (a VFIO group's further functions: X.1, X.2, ...),
 *   block node X.drive, netdev X.netdev, chardev X.chardev,
 *   getfd names X.fd<i> and X.vhostfd<i>.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/device.h"
#include "devices/vfio.h"
#include "qemu/qemu_config.h"
#include "qemu/qmp.h"
#include "sandvm/vm.h"
#include "state.h"
#include "util/error.h"

/* How long an unplug waits for DEVICE_DELETED when the caller says 0. */
#define SV_HOTPLUG_UNPLUG_TIMEOUT_MS 10000

/* One VM's hotplug context, for one call. */
typedef struct sv_hotplug {
    const char *vm_id;         /* names the VM in errors */
    const sv_qemu_config *cfg; /* the QEMU configuration the VM was started with */
    sv_vm_state *st;           /* its records (st->devices) are read and changed */
    sv_qmp *q;                 /* a ready QMP session with the VM's QEMU */
    int block_driver;          /* sv_dev_block_driver: the VM config's block_device_driver */
    bool vhost_net;            /* network devices use /dev/vhost-net when it opens */
    bool vfio_root_ports;      /* PCIe functions go on the root ports (hotplug_vfio_on_root_bus) */
    const char *sysfs_root;    /* NULL: "/"; tests: a generated tree */
    /* Persists st (state.json); called before each QMP step whose outcome a
     * crash must not lose. NULL: nothing is persisted. */
    int (*save)(void *opaque, sv_error **err);
    void *save_opaque;
} sv_hotplug;

/* A prepared device: what plug sends, in the neutral device model. The plan
 * owns its strings and the fds in `owned` (closed by sv_hotplug_plan_clear);
 * the fd numbers in net/vsock are not owned (a test may put its own there). */
typedef struct sv_hotplug_plan {
    int kind;   /* sv_vm_device_kind */
    char *id;   /* the device id X */
    char *host; /* for the record: the file, interface, socket or group */
    bool read_only;
    sv_dev_block block;           /* BLOCK: path, read_only; major/minor when found by number */
    bool block_is_device;         /* BLOCK: a block device (host_device), not a file */
    sv_dev_net net;               /* NET: fds (and vhost_fds), one per queue; mac */
    sv_vfio_group vfio;           /* VFIO: every function of the group */
    sv_dev_vhost_user vhost_user; /* VHOST_USER_*: socket_path, tag */
    sv_dev_vsock vsock;           /* VSOCK: cid, vhost_fd */
    int *owned;
    size_t n_owned;
} sv_hotplug_plan;

void sv_hotplug_plan_clear(sv_hotplug_plan *p);

/* Checks `req` against the VM (its kind, id, fields; whether the VM can take
 * it) and prepares it. The id must be free (EEXIST otherwise, naming a
 * device whose unplug is pending as still held by QEMU); a NULL id gets the
 * kind's stem and the lowest free number. Errors name the field:
 * "block: path: ...", "net: ifname: no interface \"tap9\" in this network
 * namespace". */
int sv_hotplug_prepare(const sv_hotplug *h, const sv_vm_device *req, sv_hotplug_plan *plan,
                       sv_error **err);

/* Plugs a prepared device: takes its places, records it (adding; saved),
 * sends the QMP sequence and records it attached (saved), with its index in
 * h->st->devices in *index. A failing step undoes the earlier ones (QMP and
 * places) and drops the record, unless a function of a VFIO group that was
 * already added could not be removed in time: that record stays, removing. */
int sv_hotplug_plug(sv_hotplug *h, sv_hotplug_plan *plan, size_t *index, sv_error **err);

/* Settles, prepares and plugs. */
int sv_hotplug_add(sv_hotplug *h, const sv_vm_device *req, size_t *index, sv_error **err);

/* Unplugs device `id` (sandvm/vm.h sv_vm_unplug()): device_del of each of
 * its QEMU devices, then waits until `timeout_ms` (<= 0: the default) for
 * their DEVICE_DELETED, then removes their backends, frees their places and
 * drops the record. ETIMEDOUT leaves the record removing (saved). */
int sv_hotplug_unplug(sv_hotplug *h, const char *id, int timeout_ms, sv_error **err);

/* Settles the records that are between two states (adding, removing) with
 * QEMU's own view (qom-list of /machine/peripheral): a removing device QEMU
 * no longer has is finished and dropped; an adding one that QEMU has is
 * attached, one it lacks dropped (a sandvm killed half-way). Sends nothing
 * when every record is attached. */
int sv_hotplug_settle(sv_hotplug *h, sv_error **err);

/* The stem of ids picked for `kind`: "blk", "net", "vfio", "vublk", "vufs",
 * "vsock". */
const char *sv_hotplug_id_stem(int kind);
/* 0 when `id` is a valid device id, else EINVAL naming the rule. */
int sv_hotplug_check_id(const char *id, sv_error **err);
