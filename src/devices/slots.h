/*
 * Where hot-plugged devices go: slots on PCI bridges, PCIe root ports, CCW
 * device numbers on s390x, and SCSI id:lun on the virtio-scsi controller
 * (Kata's types/bridges.go, types/ccw.go, the PCIe port maps and the
 * sandbox block-index allocator).
 *
 * Pure data structures: no I/O, no randomness, nothing global. Every
 * allocator hands out the lowest free number, so the same sequence of calls
 * gives the same addresses. Devices are known by their id (the QEMU device
 * id); an id holds at most one place per allocator. `reserve` records a
 * place already taken (a cold-plugged device, or state re-read after a
 * restart) so `add` never hands it out again.
 *
 * Common errors: EINVAL for an empty id or a number out of range, EEXIST
 * when the id already holds a place (naming it) or the place is taken,
 * ENOSPC when everything is in use, ENOENT when removing an id that holds
 * no place (never added, or already removed). ENOMEM as usual. A failed
 * call changes nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/cleanup.h"
#include "util/error.h"

/* ---- PCI bridges ---- */

/* Kata's PCIBridgeMaxCapacity: slots 1..30 of each bridge take devices. */
#define SV_PCI_BRIDGE_SLOTS 30
/* Kata's bridgePCIStartAddr: the first bridge sits in slot 2 of the root bus. */
#define SV_PCI_BRIDGE_FIRST_ADDR 2

typedef struct sv_pci_bridges sv_pci_bridges;

/* A device's place behind a bridge. */
typedef struct sv_pci_slot {
    size_t bridge;         /* index of the bridge, in the order they were added */
    const char *bridge_id; /* "pci-bridge-0"; valid while the allocator lives */
    unsigned bridge_addr;  /* the bridge's slot on the root bus */
    unsigned slot;         /* 1..30 */
    char addr[3];          /* device_add "addr": slot as "%02x", "01" */
    char pci_path[6];      /* guest PCI path "<bridge_addr>/<slot>", "%02x/%02x": "02/01" */
} sv_pci_slot;

/* An allocator with no bridges; NULL on OOM. */
sv_pci_bridges *sv_pci_bridges_new(void);
/* The bridges sandvm's arch layer creates: n bridges "pci-bridge-<i>" in
 * root-bus slots SV_PCI_BRIDGE_FIRST_ADDR + i. */
int sv_pci_bridges_new_default(size_t n, sv_pci_bridges **out, sv_error **err);
void sv_pci_bridges_free(sv_pci_bridges *b);
SV_DEFINE_CLEANUP(sv_pci_bridges, sv_pci_bridges_free)
/* Adds a bridge `id` sitting in root-bus slot `addr` (1..31). EEXIST when
 * the id or the address is already a bridge's. */
int sv_pci_bridges_add_bridge(sv_pci_bridges *b, const char *id, unsigned addr, sv_error **err);
size_t sv_pci_bridges_count(const sv_pci_bridges *b);
/* Free slots over all bridges. */
size_t sv_pci_bridges_free_slots(const sv_pci_bridges *b);
/* Gives `dev_id` the first free slot of the first bridge with room.
 * ENOSPC "no free PCI bridge slot for device "x": all 2 bridges' 30 slots
 * are in use" (or "the VM has no PCI bridge"). */
int sv_pci_bridges_add(sv_pci_bridges *b, const char *dev_id, sv_pci_slot *out, sv_error **err);
/* Records that `dev_id` holds `slot` on the bridge `bridge_id`; `out` may
 * be NULL. */
int sv_pci_bridges_reserve(sv_pci_bridges *b, const char *dev_id, const char *bridge_id,
                           unsigned slot, sv_pci_slot *out, sv_error **err);
/* Frees the slot of `dev_id`. ENOENT "device "x" is not on any PCI bridge". */
int sv_pci_bridges_remove(sv_pci_bridges *b, const char *dev_id, sv_error **err);
/* The slot of `dev_id`: 0, or -ENOENT. */
int sv_pci_bridges_find(const sv_pci_bridges *b, const char *dev_id, sv_pci_slot *out);

/* ---- PCIe root ports (and switch downstream ports) ---- */

/* Kata's maxPCIeRootPort / maxPCIeSwitchPort */
#define SV_PCIE_PORTS_MAX 16

typedef struct sv_pcie_ports sv_pcie_ports;

typedef struct sv_pcie_port {
    size_t index;
    char bus[16]; /* "<prefix><index>": "rp0", the device_add "bus"; "addr" is "00" */
} sv_pcie_port;

/* Ports "<prefix>0" .. "<prefix><n-1>" as the arch layer created them
 * (prefix "rp" for root ports, "swdp" for switch downstream ports: 1..8
 * lowercase letters). n <= SV_PCIE_PORTS_MAX; 0 is allowed (every add then
 * fails, naming the missing ports instead of QEMU's "Bus 'rp1' not found"). */
int sv_pcie_ports_new(const char *prefix, size_t n, sv_pcie_ports **out, sv_error **err);
void sv_pcie_ports_free(sv_pcie_ports *p);
SV_DEFINE_CLEANUP(sv_pcie_ports, sv_pcie_ports_free)
size_t sv_pcie_ports_count(const sv_pcie_ports *p);
/* One device per port: the lowest free one. ENOSPC "no free PCIe port for
 * device "x": rp0..rp3 are all in use" / "... there are no rp ports". */
int sv_pcie_ports_add(sv_pcie_ports *p, const char *dev_id, sv_pcie_port *out, sv_error **err);
int sv_pcie_ports_reserve(sv_pcie_ports *p, const char *dev_id, size_t index, sv_pcie_port *out,
                          sv_error **err);
int sv_pcie_ports_remove(sv_pcie_ports *p, const char *dev_id, sv_error **err);
int sv_pcie_ports_find(const sv_pcie_ports *p, const char *dev_id, sv_pcie_port *out);

/* ---- CCW (s390x) ---- */

/* The channel subsystem id of virtual devices. */
#define SV_CCW_CSSID 0xfe
/* Kata's CCWBridgeMaxCapacity: devnos 0x0000..0xfffe are handed out (the
 * arch layer's cold-plug numbering uses the same range); any 16-bit devno
 * can be reserved. */
#define SV_CCW_DEVNO_CAPACITY 0xffff
#define SV_CCW_SSID_MAX 3

typedef struct sv_ccw_bridge sv_ccw_bridge;

typedef struct sv_ccw_addr {
    unsigned ssid;
    unsigned devno;
    char qemu[12];  /* device_add "devno": "fe.<ssid>.%04x": "fe.0.0005" */
    char guest[12]; /* the agent's form "0.<ssid>.%04x": "0.0.0005" */
} sv_ccw_addr;

/* The one CCW bridge of css 0xfe, subchannel set `ssid` (0..3). */
int sv_ccw_bridge_new(unsigned ssid, sv_ccw_bridge **out, sv_error **err);
void sv_ccw_bridge_free(sv_ccw_bridge *c);
SV_DEFINE_CLEANUP(sv_ccw_bridge, sv_ccw_bridge_free)
int sv_ccw_bridge_add(sv_ccw_bridge *c, const char *dev_id, sv_ccw_addr *out, sv_error **err);
/* Marks `devno` (0..0xffff) used. dev_id may be NULL for a device that is
 * never removed (a cold-plugged one); EEXIST when the devno is taken. */
int sv_ccw_bridge_reserve(sv_ccw_bridge *c, const char *dev_id, unsigned devno, sv_error **err);
/* As sv_ccw_bridge_reserve for a QEMU devno string "fe.0.0005" (hex, any
 * case). A devno in another css or subchannel set cannot clash with this
 * bridge: it is accepted and not recorded. EINVAL for a malformed string. */
int sv_ccw_bridge_reserve_str(sv_ccw_bridge *c, const char *dev_id, const char *devno,
                              sv_error **err);
int sv_ccw_bridge_remove(sv_ccw_bridge *c, const char *dev_id, sv_error **err);
int sv_ccw_bridge_find(const sv_ccw_bridge *c, const char *dev_id, sv_ccw_addr *out);
/* Parses "<cssid>.<ssid>.<devno>": 1-2, 1 and 1-4 hex digits, ssid <= 3.
 * 0 or -EINVAL. */
int sv_ccw_devno_parse(const char *s, unsigned *cssid, unsigned *ssid, unsigned *devno);

/* ---- SCSI (virtio-scsi) ---- */

/* Kata's maxBlockIndex: indexes 0..65535. */
#define SV_SCSI_MAX_INDEX 65535

typedef struct sv_scsi_addr {
    unsigned index;
    unsigned scsi_id; /* index / 256 */
    unsigned lun;     /* index % 256 */
    char addr[12];    /* "<scsi_id>:<lun>", the agent's SCSI address */
} sv_scsi_addr;

/* index -> scsi-id index/256, lun index%256. ERANGE outside 0..65535. */
int sv_scsi_addr_of_index(int64_t index, sv_scsi_addr *out, sv_error **err);

/* The VM-wide block index (Kata's sandbox block index), from which a
 * virtio-scsi drive's address follows. */
typedef struct sv_scsi_alloc sv_scsi_alloc;
sv_scsi_alloc *sv_scsi_alloc_new(void);
void sv_scsi_alloc_free(sv_scsi_alloc *a);
SV_DEFINE_CLEANUP(sv_scsi_alloc, sv_scsi_alloc_free)
/* `out` may be NULL (also for the other allocators' add and reserve). */
int sv_scsi_alloc_add(sv_scsi_alloc *a, const char *dev_id, sv_scsi_addr *out, sv_error **err);
/* dev_id may be NULL for an index never given back (the root disk). */
int sv_scsi_alloc_reserve(sv_scsi_alloc *a, const char *dev_id, unsigned index, sv_error **err);
int sv_scsi_alloc_remove(sv_scsi_alloc *a, const char *dev_id, sv_error **err);
int sv_scsi_alloc_find(const sv_scsi_alloc *a, const char *dev_id, sv_scsi_addr *out);
