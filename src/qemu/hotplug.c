/*
 * Hotplug over QMP: see hotplug.h. The sequences follow Kata's (see
 * docs/devices.md for each one and where sandvm differs).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "devices/slots.h"
#include "devices/sysfs.h"
#include "qemu/hotplug.h"
#include "qemu/qemu_devices.h"
#include "qemu/qmp_cmds.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/qopts.h"
#include "util/sock.h"
#include "util/strbuf.h"

/* tun allows 256 queues per tap (MAX_TAP_QUEUES), macvtap as many. */
#define NET_MAX_QUEUES 256
/* virtio-fs: the tag field of its config space is 36 bytes. */
#define FS_TAG_MAX 36
/* The queue size the cold-plugged virtio-fs device has too. */
#define VIRTIOFS_QUEUE_SIZE 1024
/* Linux IFNAMSIZ - 1. */
#define IFNAME_MAX 15
/* vhost-vsock: 0-2 are reserved, U32_MAX is VMADDR_CID_ANY. */
#define VSOCK_CID_MIN 3
#define VSOCK_CID_MAX 0xfffffffeu
/* The bus name recorded for a CCW device (s390x has one channel subsystem). */
#define CCW_BUS "ccw"
/* Where QEMU keeps the devices that have an id. */
#define PERIPHERAL "/machine/peripheral"
/* How long a backend still in use by a device being finalized is asked
 * again, and how often. */
#define BACKEND_BUSY_MS 3000
#define BACKEND_RETRY_MS 50

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, f);
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* Hands `e` to the caller's *err (first error wins), or frees it. */
static int pass_error(sv_error **err, sv_error *e, int r)
{
    if (err && !*err)
        *err = e;
    else
        sv_error_free(e);
    return r;
}

/* ---- names ------------------------------------------------------------------ */

static const char *const kind_stems[] = {"blk", "net", "vfio", "vublk", "vufs", "vsock"};
_Static_assert(SV_ARRAY_SIZE(kind_stems) == SV__VM_DEVICE_MAX, "one id stem per device kind");

const char *sv_hotplug_id_stem(int kind)
{
    return kind >= 0 && kind < SV__VM_DEVICE_MAX ? kind_stems[kind] : NULL;
}

int sv_hotplug_check_id(const char *id, sv_error **err)
{
    if (!id || !*id)
        return sv_error_set(err, EINVAL, "id: is empty");
    size_t n = strlen(id);
    _cleanup_free_ char *q = sv_quote(id);
    if (n > SV_VM_DEVICE_ID_MAX)
        return sv_error_set(err, EINVAL, "id: %s is longer than %d characters", q ? q : "?",
                            SV_VM_DEVICE_ID_MAX);
    bool ok = (id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z');
    for (size_t i = 0; ok && i < n; i++) {
        char c = id[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_';
    }
    if (!ok)
        return sv_error_set(err, EINVAL,
                            "id: %s is not a device id (a letter, then letters, digits, '-' and "
                            "'_')",
                            q ? q : "?");
    return 0;
}

/* QEMU's names of device `id`'s parts: "<id>.<what>". */
static char *part_name(const char *id, const char *what)
{
    return fmt("%s.%s", id, what);
}

/* The QEMU device id of a VFIO group's function i: the device's own id for
 * the first, "<id>.<i>" for the others. */
static char *vfio_member_id(const char *id, size_t i)
{
    return i == 0 ? strdup(id) : fmt("%s.%zu", id, i);
}

/* ---- the records ----------------------------------------------------------- */

static sv_vm_dev_record *find_record(sv_vm_state *st, const char *id, size_t *index)
{
    for (size_t i = 0; i < st->n_devices; i++)
        if (st->devices[i].id && strcmp(st->devices[i].id, id) == 0) {
            if (index)
                *index = i;
            return &st->devices[i];
        }
    return NULL;
}

static void drop_record(sv_vm_state *st, size_t i)
{
    sv_vm_dev_record_clear(&st->devices[i]);
    memmove(&st->devices[i], &st->devices[i + 1], (st->n_devices - i - 1) * sizeof(*st->devices));
    st->n_devices--;
}

/* Appends *rec (moved: *rec is zeroed) to st->devices. */
static int append_record(sv_vm_state *st, sv_vm_dev_record *rec, size_t *index)
{
    sv_vm_dev_record *v = realloc(st->devices, (st->n_devices + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    st->devices = v;
    *index = st->n_devices;
    v[st->n_devices++] = *rec;
    memset(rec, 0, sizeof(*rec));
    return 0;
}

static int save(sv_hotplug *h, sv_error **err)
{
    return h->save ? h->save(h->save_opaque, err) : 0;
}

/* ---- the VM's QEMU configuration ------------------------------------------------ */

/* Every id the cold-plugged devices give QEMU, in any namespace. */
static bool cold_id_taken(const sv_qemu_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev_ops *ops = sv_qdev_table[cfg->devices[i].type];
        if (!ops || !ops->describe)
            continue;
        sv_qdev_desc d = {0};
        ops->describe(&cfg->devices[i], cfg, &d);
        for (size_t j = 0; j < d.n_ids; j++)
            if (d.ids[j].id && strcmp(d.ids[j].id, id) == 0)
                return true;
    }
    return false;
}

/* Guest RAM the vhost-user backend can map: shared (memory-backend share=on). */
static bool shares_memory(const sv_qemu_config *cfg)
{
    if (cfg->knobs.mem_shared && cfg->memory.size)
        return true;
    for (size_t i = 0; i < cfg->n_devices; i++)
        if (cfg->devices[i].type == SV_QDEV_MEMORY_BACKEND &&
            cfg->devices[i].u.memory_backend.share)
            return true;
    return false;
}

static int transport(const sv_hotplug *h)
{
    return sv_qemu_config_transport(h->cfg, SV_QT_DEFAULT);
}

/* ---- places -------------------------------------------------------------------- */

/* Where hot-plugged devices can go, rebuilt for each call (hotplug.h). */
typedef struct places {
    sv_pci_bridges *bridges;
    char **bridge_ids; /* the bridges' ids, as the allocator has them */
    size_t n_bridges;
    sv_pcie_ports *ports; /* "rp0".. */
    sv_ccw_bridge *ccw;   /* s390x */
    sv_scsi_alloc *scsi;  /* with a SCSI controller */
    char *scsi_bus;       /* "<controller>.0" */
} places;

static void places_clear(places *p)
{
    sv_pci_bridges_free(p->bridges);
    for (size_t i = 0; i < p->n_bridges; i++)
        free(p->bridge_ids[i]);
    free(p->bridge_ids);
    sv_pcie_ports_free(p->ports);
    sv_ccw_bridge_free(p->ccw);
    sv_scsi_alloc_free(p->scsi);
    free(p->scsi_bus);
    memset(p, 0, sizeof(*p));
}

/* A PCI slot as QEMU's "addr" takes it ("2", "0x1f", "02.1"): the slot. */
static int parse_slot(const char *s, unsigned *out)
{
    if (!s)
        return -EINVAL;
    if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
        s += 2;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 16);
    if (errno || end == s || (*end && *end != '.') || v > 31)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

static bool is_bridge(const places *p, const char *bus)
{
    for (size_t i = 0; bus && i < p->n_bridges; i++)
        if (strcmp(p->bridge_ids[i], bus) == 0)
            return true;
    return false;
}

/* "rp<k>" of the VM's root ports -> k. */
static bool port_index(const places *p, const char *bus, size_t *k)
{
    if (!p->ports || !bus || strncmp(bus, "rp", 2) != 0 || bus[2] < '0' || bus[2] > '9')
        return false;
    char *end = NULL;
    unsigned long v = strtoul(bus + 2, &end, 10);
    if (*end || v >= sv_pcie_ports_count(p->ports))
        return false;
    *k = v;
    return true;
}

/* "<scsi-id>:<lun>" -> the block index (sv_scsi_addr_of_index()'s reverse). */
static int scsi_index(const char *addr, unsigned *index)
{
    unsigned id, lun;
    char tail;
    if (!addr || sscanf(addr, "%u:%u%c", &id, &lun, &tail) != 2 || id > 255 || lun > 255)
        return -EINVAL;
    *index = id * 256 + lun;
    return 0;
}

static int add_bridge(places *p, const char *id, unsigned addr, sv_error **err)
{
    char **v = realloc(p->bridge_ids, (p->n_bridges + 1) * sizeof(*v));
    if (!v)
        return oom(err);
    p->bridge_ids = v;
    if (!(v[p->n_bridges] = strdup(id)))
        return oom(err);
    p->n_bridges++;
    return sv_pci_bridges_add_bridge(p->bridges, id, addr, err);
}

/* The allocators, with the cold-plugged devices' places reserved. */
static int places_from_config(const sv_hotplug *h, places *p, sv_error **err)
{
    const sv_qemu_config *cfg = h->cfg;
    const char *root = sv_qdev_root_bus(cfg);
    int r;
    if (!(p->bridges = sv_pci_bridges_new()))
        return oom(err);
    size_t n_ports = 0;
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *d = &cfg->devices[i];
        if (d->type == SV_QDEV_BRIDGE) {
            const sv_qdev_bridge *b = &d->u.bridge;
            unsigned slot;
            /* hotplug takes the bridges on the root bus whose slot is known,
             * so the guest's PCI path of what goes behind them is too */
            bool on_root = !b->bus || (root && strcmp(b->bus, root) == 0);
            if (b->id && on_root && parse_slot(b->addr, &slot) == 0 &&
                (r = add_bridge(p, b->id, slot, err)) < 0)
                return r;
        } else if (d->type == SV_QDEV_PCIE_ROOT_PORT && d->u.pcie_root_port.id) {
            _cleanup_free_ char *want = fmt("rp%zu", n_ports);
            if (!want)
                return oom(err);
            if (strcmp(d->u.pcie_root_port.id, want) == 0)
                n_ports++;
        } else if (d->type == SV_QDEV_SCSI_CONTROLLER && d->u.scsi_controller.id && !p->scsi_bus) {
            if (!(p->scsi_bus = fmt("%s.0", d->u.scsi_controller.id)) ||
                !(p->scsi = sv_scsi_alloc_new()))
                return oom(err);
        }
    }
    if ((r = sv_pcie_ports_new("rp", n_ports, &p->ports, err)) < 0)
        return r;
    if (sv_qemu_config_arch(cfg) == SV_ARCH_S390X && (r = sv_ccw_bridge_new(0, &p->ccw, err)) < 0)
        return r;
    /* what the cold-plugged devices hold */
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *d = &cfg->devices[i];
        const sv_qdev_ops *ops = sv_qdev_table[d->type];
        if (!ops || !ops->describe)
            continue;
        sv_qdev_desc desc = {0};
        ops->describe(d, cfg, &desc);
        _cleanup_free_ char *key = fmt("devices[%zu]", i);
        if (!key)
            return oom(err);
        unsigned slot;
        size_t k;
        if (is_bridge(p, desc.bus) && parse_slot(desc.addr, &slot) == 0)
            r = sv_pci_bridges_reserve(p->bridges, key, desc.bus, slot, NULL, err);
        else if (port_index(p, desc.bus, &k))
            r = sv_pcie_ports_reserve(p->ports, key, k, NULL, err);
        else if (desc.dev_no && p->ccw)
            r = sv_ccw_bridge_reserve_str(p->ccw, NULL, desc.dev_no, err);
        else if (d->type == SV_QDEV_BLOCK && d->u.block.driver == SV_BLK_SCSI_HD && p->scsi)
            r = sv_scsi_alloc_reserve(p->scsi, NULL,
                                      (unsigned)(d->u.block.scsi_id * 256 + d->u.block.lun), err);
        else
            r = 0;
        if (r < 0)
            return sv_error_prefix(err, "the VM's %s (%s)", key, ops->name);
    }
    return 0;
}

/* Reserves what one recorded QEMU device holds. */
static int reserve_slot(places *p, const sv_vm_dev_slot *s, sv_error **err)
{
    unsigned n;
    size_t k;
    if (!s->bus)
        return 0;
    if (is_bridge(p, s->bus)) {
        if (parse_slot(s->addr, &n) < 0)
            return sv_error_set(err, EINVAL, "addr: bad PCI slot");
        return sv_pci_bridges_reserve(p->bridges, s->qemu_id, s->bus, n, NULL, err);
    }
    if (port_index(p, s->bus, &k))
        return sv_pcie_ports_reserve(p->ports, s->qemu_id, k, NULL, err);
    if (strcmp(s->bus, CCW_BUS) == 0 && p->ccw)
        return sv_ccw_bridge_reserve_str(p->ccw, s->qemu_id, s->addr ? s->addr : "", err);
    if (p->scsi_bus && strcmp(s->bus, p->scsi_bus) == 0) {
        if (scsi_index(s->addr, &n) < 0)
            return sv_error_set(err, EINVAL, "addr: bad SCSI address");
        return sv_scsi_alloc_reserve(p->scsi, s->qemu_id, n, err);
    }
    return sv_error_set(err, EINVAL, "bus: the VM has no bus \"%s\"", s->bus);
}

static int places_build(const sv_hotplug *h, places *p, sv_error **err)
{
    int r = places_from_config(h, p, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < h->st->n_devices; i++) {
        const sv_vm_dev_record *rec = &h->st->devices[i];
        for (size_t j = 0; j < rec->n_slots; j++)
            if ((r = reserve_slot(p, &rec->slots[j], err)) < 0)
                return sv_error_prefix(err, "state: devices[%zu] (%s): slots[%zu]", i, rec->id, j);
    }
    return 0;
}

/* Takes a place for the virtio device `qemu_id` on the VM's transport: a
 * bridge slot (pci) or a devno (ccw); fills `slot` and points v->dev_no /
 * *bus / *addr at its strings. */
/* aarch64 virt: a pci-bridge there cannot hot-plug (no SHPC, no ACPI PCI
 * hotplug in QEMU 7.2), so hot-plugged PCI devices go on the root ports
 * (Kata does the same there). */
static bool ports_only(const sv_hotplug *h)
{
    return sv_qdev_machine_family(h->cfg) == SV_MACH_ARM_VIRT;
}

/* Takes a root port for `qemu_id`: the device's bus, no "addr" (slot 0,
 * the port's only one). */
static int take_port(const sv_hotplug *h, places *p, const char *qemu_id, sv_vm_dev_slot *slot,
                     sv_error **err)
{
    if (sv_pcie_ports_count(p->ports) == 0)
        return sv_error_set(err, EINVAL,
                            "machine \"%s\" hot-plugs PCI devices onto PCIe root ports (its PCI "
                            "bridges cannot hot-plug), and the VM has none: set pcie_root_port",
                            sv_qdev_machine_type(h->cfg));
    sv_pcie_port port;
    int r = sv_pcie_ports_add(p->ports, qemu_id, &port, err);
    if (r < 0)
        return r;
    if (!(slot->bus = strdup(port.bus)) || !(slot->addr = strdup("00")))
        return oom(err);
    return 0;
}

static int take_virtio_place(const sv_hotplug *h, places *p, const char *qemu_id, sv_qvirtio *v,
                             char **bus, char **addr, sv_vm_dev_slot *slot, sv_error **err)
{
    int r;
    switch (transport(h)) {
    case SV_QT_PCI: {
        if (ports_only(h)) {
            if ((r = take_port(h, p, qemu_id, slot, err)) < 0)
                return r;
            *bus = slot->bus;
            *addr = NULL;
            return 0;
        }
        sv_pci_slot s;
        if ((r = sv_pci_bridges_add(p->bridges, qemu_id, &s, err)) < 0)
            return r;
        if (!(slot->bus = strdup(s.bridge_id)) || !(slot->addr = strdup(s.addr)) ||
            !(slot->guest = strdup(s.pci_path)))
            return oom(err);
        *bus = slot->bus;
        *addr = slot->addr;
        return 0;
    }
    case SV_QT_CCW: {
        sv_ccw_addr a;
        if ((r = sv_ccw_bridge_add(p->ccw, qemu_id, &a, err)) < 0)
            return r;
        if (!(slot->bus = strdup(CCW_BUS)) || !(slot->addr = strdup(a.qemu)) ||
            !(slot->guest = strdup(a.guest)))
            return oom(err);
        v->dev_no = slot->addr;
        return 0;
    }
    default:
        return sv_error_set(err, EINVAL,
                            "machine \"%s\" has virtio-mmio transports only, which cannot be "
                            "hot-plugged",
                            sv_qdev_machine_type(h->cfg));
    }
}

/* No option ROM on a PCI device: nothing boots from a hot-plugged device
 * (Kata sends romfile "" for disks, NICs, vsock and VFIO). */
static void no_rom(const sv_hotplug *h, sv_qvirtio *v)
{
    if (transport(h) == SV_QT_PCI)
        v->rom_file = (char *)"";
}

/* ---- QMP steps ------------------------------------------------------------------ */

#define NOW SV_QMP_DEADLINE_DEFAULT

/* device_add of a builder's properties, with the id device_del will need. */
static int device_add(sv_hotplug *h, sv_qopts *o, const char *id, sv_error **err)
{
    if (!o)
        return oom(err);
    if (!sv_qopts_get(o, "id"))
        sv_qopts_str(o, "id", id);
    if (o->oom)
        return oom(err);
    return sv_qmp_device_add(h->q, o, NOW, err);
}

/* Best effort, for undoing: the error (if any) is dropped. */
static void quietly(int r, sv_error *e)
{
    (void)r;
    sv_error_free(e);
}

static void undo_blockdev(sv_hotplug *h, const char *node)
{
    sv_error *e = NULL;
    quietly(sv_qmp_blockdev_del(h->q, node, NOW, &e), e);
}

static void undo_netdev(sv_hotplug *h, const char *netdev)
{
    sv_error *e = NULL;
    quietly(sv_qmp_netdev_del(h->q, netdev, NOW, &e), e);
}

static void undo_chardev(sv_hotplug *h, const char *chardev)
{
    sv_error *e = NULL;
    quietly(sv_qmp_chardev_remove(h->q, chardev, NOW, &e), e);
}

/* Drops the fds passed under `names` that QEMU did not take. */
static void undo_getfds(sv_hotplug *h, char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sv_error *e = NULL;
        quietly(sv_qmp_closefd(h->q, names[i], NOW, &e), e);
    }
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* getfd of each fd as "<id>.<stem><i>"; *names receives the names (all of
 * them, also on failure, where the ones passed were closed again). */
static int pass_fds(sv_hotplug *h, const char *id, const char *stem, const int *fds, size_t n,
                    char ***names, sv_error **err)
{
    char **v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return oom(err);
    *names = v;
    for (size_t i = 0; i < n; i++)
        if (!(v[i] = fmt("%s.%s%zu", id, stem, i)))
            return oom(err);
    for (size_t i = 0; i < n; i++) {
        int r = sv_qmp_getfd(h->q, v[i], fds[i], NOW, err);
        if (r < 0) {
            undo_getfds(h, v, i);
            return r;
        }
    }
    return 0;
}

static char *join_names(char **names, size_t n)
{
    _cleanup_strbuf_ sv_strbuf sb = SV_STRBUF_INIT;
    for (size_t i = 0; i < n; i++)
        sv_strbuf_appendf(&sb, "%s%s", i ? ":" : "", names[i]);
    return sv_strbuf_steal(&sb);
}

/* ---- plugging, per kind --------------------------------------------------------- */

/* The record being built: one slot per QEMU device. */
static sv_vm_dev_slot *new_slot(sv_vm_dev_record *rec, const char *qemu_id)
{
    sv_vm_dev_slot *v = realloc(rec->slots, (rec->n_slots + 1) * sizeof(*v));
    if (!v)
        return NULL;
    rec->slots = v;
    sv_vm_dev_slot *s = &v[rec->n_slots++];
    memset(s, 0, sizeof(*s));
    return (s->qemu_id = strdup(qemu_id)) ? s : NULL;
}

/* Kata's blockdev-add: raw over a file or host_device node, threads aio. */
static int blockdev_add(sv_hotplug *h, const sv_hotplug_plan *plan, const char *node,
                        sv_error **err)
{
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("driver", "raw");
    if (!o)
        return oom(err);
    sv_qopts_str(o, "node-name", node);
    sv_qopts_bool(o, "read-only", plan->read_only);
    sv_qopts_str(o, "file.driver", plan->block_is_device ? "host_device" : "file");
    sv_qopts_str(o, "file.filename", plan->block.path);
    sv_qopts_str(o, "file.aio", "threads");
    if (o->oom)
        return oom(err);
    return sv_qmp_blockdev_add(h->q, o, NOW, err);
}

/* Fills the slot of a block device; sets up `qb` (borrowing the strings). */
static int block_place(sv_hotplug *h, places *p, const sv_hotplug_plan *plan, sv_vm_dev_slot *slot,
                       sv_qdev_block *qb, sv_error **err)
{
    int r;
    switch ((sv_dev_block_driver)h->block_driver) {
    case SV_DEV_BLOCK_VIRTIO_SCSI: {
        if (!p->scsi)
            return sv_error_set(err, EINVAL, "the VM has no SCSI controller");
        sv_scsi_addr a;
        if ((r = sv_scsi_alloc_add(p->scsi, plan->id, &a, err)) < 0)
            return r;
        if (!(slot->bus = strdup(p->scsi_bus)) || !(slot->addr = strdup(a.addr)) ||
            !(slot->guest = strdup(a.addr)))
            return oom(err);
        qb->driver = SV_BLK_SCSI_HD;
        qb->bus = slot->bus;
        qb->scsi_id = a.scsi_id;
        qb->lun = a.lun;
        return 0;
    }
    case SV_DEV_BLOCK_VIRTIO_BLK:
    case SV_DEV_BLOCK_VIRTIO_BLK_CCW:
        qb->driver = SV_BLK_VIRTIO_BLK;
        no_rom(h, &qb->v);
        return take_virtio_place(h, p, plan->id, &qb->v, &qb->bus, &qb->addr, slot, err);
    case SV_DEV_BLOCK_NVDIMM:
        return sv_error_set(err, EINVAL,
                            "block_device_driver nvdimm: block devices cannot be hot-plugged as "
                            "nvdimm (use virtio-blk or virtio-scsi)");
    case SV_DEV_BLOCK_VIRTIO_MMIO:
        return sv_error_set(err, EINVAL,
                            "block_device_driver virtio-mmio: virtio-mmio transports cannot be "
                            "hot-plugged (use virtio-blk or virtio-scsi)");
    case SV__DEV_BLOCK_MAX:
        break;
    }
    return sv_error_set(err, EINVAL, "block_device_driver: unknown (%d)", h->block_driver);
}

static int plug_block(sv_hotplug *h, places *p, sv_hotplug_plan *plan, sv_vm_dev_record *rec,
                      sv_error **err)
{
    sv_vm_dev_slot *slot = new_slot(rec, plan->id);
    _cleanup_free_ char *node = part_name(plan->id, "drive");
    if (!slot || !node)
        return oom(err);
    sv_qdev_block qb = {0};
    int r = block_place(h, p, plan, slot, &qb, err);
    if (r < 0)
        return r;
    if ((r = save(h, err)) < 0 || (r = blockdev_add(h, plan, node, err)) < 0)
        return r;
    qb.id = node;
    qb.serial = plan->id; /* the guest finds the disk by its id (virtio-blk serial, SCSI serial) */
    qb.read_only = plan->read_only;
    qb.share_rw = plan->read_only;
    _cleanup_qopts_ sv_qopts *o = sv_qdev_block_props(&qb, h->cfg);
    if (o && qb.driver == SV_BLK_SCSI_HD) {
        /* the builder leaves out 0, where QEMU would pick an id or lun itself */
        if (!sv_qopts_get(o, "scsi-id"))
            sv_qopts_int(o, "scsi-id", qb.scsi_id);
        if (!sv_qopts_get(o, "lun"))
            sv_qopts_int(o, "lun", qb.lun);
    }
    if ((r = device_add(h, o, plan->id, err)) < 0)
        undo_blockdev(h, node);
    return r;
}

static int plug_net(sv_hotplug *h, places *p, sv_hotplug_plan *plan, sv_vm_dev_record *rec,
                    sv_error **err)
{
    const sv_dev_net *n = &plan->net;
    sv_vm_dev_slot *slot = new_slot(rec, plan->id);
    _cleanup_free_ char *netdev = part_name(plan->id, "netdev");
    if (!slot || !netdev)
        return oom(err);
    if (n->n_fds == 0)
        return sv_error_set(err, EINVAL, "net: no tap fd to pass");
    sv_qdev_net qn = {.net_type =
                          plan->net.kind == SV_DEV_NET_MACVTAP ? SV_NET_MACVTAP : SV_NET_TAP,
                      .id = netdev,
                      .mac_address = n->mac,
                      .n_fds = n->n_fds};
    no_rom(h, &qn.v);
    int r = take_virtio_place(h, p, plan->id, &qn.v, &qn.bus, &qn.addr, slot, err);
    if (r < 0 || (r = save(h, err)) < 0)
        return r;
    char **fd_names = NULL, **vhost_names = NULL;
    r = pass_fds(h, plan->id, "fd", n->fds, n->n_fds, &fd_names, err);
    if (r == 0 && n->n_vhost_fds &&
        (r = pass_fds(h, plan->id, "vhostfd", n->vhost_fds, n->n_vhost_fds, &vhost_names, err)) < 0)
        undo_getfds(h, fd_names, n->n_fds);
    if (r == 0) {
        _cleanup_free_ char *fds = join_names(fd_names, n->n_fds);
        _cleanup_free_ char *vhostfds =
            n->n_vhost_fds ? join_names(vhost_names, n->n_vhost_fds) : NULL;
        _cleanup_qopts_ sv_qopts *o = sv_qopts_new("type", "tap");
        if (!fds || !o || (n->n_vhost_fds && !vhostfds)) {
            r = oom(err);
        } else {
            sv_qopts_str(o, "id", netdev);
            sv_qopts_str(o, "fds", fds);
            if (n->n_vhost_fds) {
                sv_qopts_bool(o, "vhost", true);
                sv_qopts_str(o, "vhostfds", vhostfds);
            }
            r = o->oom ? oom(err) : sv_qmp_netdev_add(h->q, o, NOW, err);
        }
        if (r < 0) {
            /* whatever netdev_add did not take */
            undo_getfds(h, fd_names, n->n_fds);
            undo_getfds(h, vhost_names, n->n_vhost_fds);
        }
    }
    free_names(fd_names, n->n_fds);
    free_names(vhost_names, n->n_vhost_fds);
    if (r < 0)
        return r;
    _cleanup_qopts_ sv_qopts *o = sv_qdev_net_props(&qn, h->cfg);
    if ((r = device_add(h, o, plan->id, err)) < 0)
        undo_netdev(h, netdev);
    return r;
}

static int plug_vhost_user(sv_hotplug *h, places *p, sv_hotplug_plan *plan, sv_vm_dev_record *rec,
                           sv_error **err)
{
    bool fs = plan->kind == SV_VM_DEVICE_VHOST_USER_FS;
    sv_vm_dev_slot *slot = new_slot(rec, plan->id);
    _cleanup_free_ char *chardev = part_name(plan->id, "chardev");
    if (!slot || !chardev)
        return oom(err);
    if (!fs && transport(h) == SV_QT_CCW)
        return sv_error_set(err, EINVAL,
                            "vhost-user-blk: QEMU has no vhost-user-blk device for s390x's ccw "
                            "transport");
    sv_qdev_vhost_user qv = {.vhost_user_type = fs ? SV_VU_FS : SV_VU_BLK,
                             .socket_path = plan->vhost_user.socket_path,
                             .char_dev_id = chardev,
                             .type_dev_id = plan->id,
                             .tag = fs ? plan->vhost_user.tag : NULL,
                             .queue_size = fs ? VIRTIOFS_QUEUE_SIZE : 0};
    int r = take_virtio_place(h, p, plan->id, &qv.v, &qv.bus, &qv.addr, slot, err);
    if (r < 0 || (r = save(h, err)) < 0)
        return r;
    if ((r = sv_qmp_chardev_add_unix_socket(h->q, chardev, plan->vhost_user.socket_path, false,
                                            false, NOW, err)) < 0)
        return r;
    _cleanup_qopts_ sv_qopts *o = sv_qdev_vhost_user_props(&qv, h->cfg);
    if ((r = device_add(h, o, plan->id, err)) < 0)
        undo_chardev(h, chardev);
    return r;
}

static int plug_vsock(sv_hotplug *h, places *p, sv_hotplug_plan *plan, sv_vm_dev_record *rec,
                      sv_error **err)
{
    sv_vm_dev_slot *slot = new_slot(rec, plan->id);
    if (!slot)
        return oom(err);
    sv_qdev_vsock qs = {.id = plan->id, .context_id = (int64_t)plan->vsock.cid};
    no_rom(h, &qs.v);
    int r = take_virtio_place(h, p, plan->id, &qs.v, &qs.bus, &qs.addr, slot, err);
    if (r < 0 || (r = save(h, err)) < 0)
        return r;
    char **names = NULL;
    int fd = plan->vsock.vhost_fd;
    if ((r = pass_fds(h, plan->id, "vhostfd", &fd, 1, &names, err)) == 0) {
        _cleanup_qopts_ sv_qopts *o = sv_qdev_vsock_props(&qs, h->cfg, names[0]);
        if ((r = device_add(h, o, plan->id, err)) < 0)
            undo_getfds(h, names, 1);
    }
    free_names(names, 1);
    return r;
}

/* device_del of each QEMU device in ids[0..n), then waits for every
 * DEVICE_DELETED until `deadline`. `pending` (for an unplug that was
 * already under way) takes a refused device_del as "still under way".
 * *left receives how many did not go. */
static int del_and_wait(sv_hotplug *h, char *const *ids, size_t n, bool pending, int64_t deadline,
                        size_t *left, sv_error **err)
{
    *left = n;
    bool *gone = calloc(n ? n : 1, sizeof(*gone));
    if (!gone)
        return oom(err);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        sv_error *e = NULL;
        r = sv_qmp_device_del(h->q, ids[i], NOW, &e);
        const char *cls = r < 0 ? sv_qmp_error_class(h->q) : NULL;
        if (r == -EIO && cls && strcmp(cls, "DeviceNotFound") == 0) {
            gone[i] = true; /* QEMU let it go already */
            r = 0;
            sv_error_free(e);
        } else if (r == -EIO && pending) {
            r = 0; /* QEMU refuses a second device_del while the first is under way */
            sv_error_free(e);
        } else if (r < 0) {
            pass_error(err, e, r);
        }
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        if (gone[i])
            continue;
        sv_error *e = NULL;
        int w = sv_qmp_wait_event(h->q, "DEVICE_DELETED", "device", ids[i], deadline, NULL, &e);
        if (w == 0) {
            gone[i] = true;
            sv_error_free(e);
        } else if (w == -ETIMEDOUT) {
            sv_error_free(e); /* the next one may have come meanwhile: look for it */
        } else {
            r = pass_error(err, e, w);
        }
    }
    size_t still = 0;
    for (size_t i = 0; i < n; i++)
        still += !gone[i];
    free(gone);
    *left = still;
    return r;
}

static int plug_vfio(sv_hotplug *h, places *p, sv_hotplug_plan *plan, sv_vm_dev_record *rec,
                     sv_error **err)
{
    const sv_vfio_group *g = &plan->vfio;
    if (g->n == 0)
        return sv_error_set(err, ENOENT, "vfio: IOMMU group %s has no device to pass through",
                            g->group ? g->group : "?");
    int r;
    for (size_t i = 0; i < g->n; i++) {
        const sv_dev_vfio *d = &g->devs[i];
        if (d->type == SV_DEV_VFIO_AP_MDEV)
            return sv_error_set(err, EINVAL,
                                "vfio: %s is an s390x AP matrix device (vfio-ap), which sandvm "
                                "does not hot-plug",
                                d->sysfsdev ? d->sysfsdev : "?");
        _cleanup_free_ char *qid = vfio_member_id(plan->id, i);
        sv_vm_dev_slot *slot = qid ? new_slot(rec, qid) : NULL;
        if (!slot || (d->sysfsdev && !(slot->host = strdup(d->sysfsdev))) ||
            (!d->sysfsdev && !(slot->host = strdup(d->bdf))))
            return oom(err);
        if (ports_only(h) || (h->vfio_root_ports && d->pcie && sv_pcie_ports_count(p->ports) > 0)) {
            /* large BARs get their space on a root port, not behind a bridge */
            if ((r = take_port(h, p, qid, slot, err)) < 0)
                return r;
        } else {
            if (transport(h) != SV_QT_PCI)
                return sv_error_set(err, EINVAL, "vfio: the VM has no PCI bus to hot-plug %s on",
                                    d->bdf);
            sv_pci_slot s;
            if ((r = sv_pci_bridges_add(p->bridges, qid, &s, err)) < 0)
                return r;
            if (!(slot->bus = strdup(s.bridge_id)) || !(slot->addr = strdup(s.addr)) ||
                !(slot->guest = strdup(s.pci_path)))
                return oom(err);
        }
    }
    if ((r = save(h, err)) < 0)
        return r;
    for (size_t i = 0; i < g->n; i++) {
        const sv_dev_vfio *d = &g->devs[i];
        sv_vm_dev_slot *slot = &rec->slots[i];
        size_t k;
        bool on_port = port_index(p, slot->bus, &k);
        sv_qdev_vfio qv = {.transport = SV_QT_PCI,
                           .bdf = d->sysfsdev ? NULL : (char *)d->bdf,
                           .sysfsdev = d->sysfsdev,
                           .rom_file = (char *)"",
                           .bus = slot->bus,
                           .addr = on_port ? NULL : slot->addr,
                           .id = slot->qemu_id};
        _cleanup_qopts_ sv_qopts *o = sv_qdev_vfio_props(&qv, h->cfg);
        if ((r = device_add(h, o, slot->qemu_id, err)) < 0) {
            /* take the group's functions added so far out again */
            char **ids = calloc(i ? i : 1, sizeof(*ids));
            if (!ids)
                return r;
            for (size_t j = 0; j < i; j++)
                ids[j] = rec->slots[j].qemu_id;
            size_t left = 0;
            sv_error *e = NULL;
            int w = del_and_wait(h, ids, i, false, sv_deadline_ms(SV_HOTPLUG_UNPLUG_TIMEOUT_MS),
                                 &left, &e);
            free(ids);
            sv_error_free(e);
            if (w < 0 || left > 0) {
                /* those stay QEMU's until it lets them go: the record keeps
                 * them (and only them), unplugging */
                for (size_t j = i; j < rec->n_slots; j++) {
                    sv_vm_dev_slot *sl = &rec->slots[j];
                    free(sl->qemu_id), free(sl->bus), free(sl->addr), free(sl->guest),
                        free(sl->host);
                }
                rec->n_slots = i;
                rec->state = SV_VM_DEV_REMOVING;
                size_t stuck = w < 0 ? i : left;
                return sv_error_prefix(err,
                                       "%zu function%s added before did not go away in time "
                                       "and stay%s recorded, unplugging",
                                       stuck, stuck == 1 ? "" : "s", stuck == 1 ? "s" : "");
            }
            return r;
        }
    }
    return 0;
}

int sv_hotplug_plug(sv_hotplug *h, sv_hotplug_plan *plan, size_t *index, sv_error **err)
{
    if (!h || !plan || !plan->id || (unsigned)plan->kind >= SV__VM_DEVICE_MAX)
        return sv_error_set(err, EINVAL, "sv_hotplug_plug: bad argument");
    const char *kind = sv_vm_device_kind_name(plan->kind);
    if (find_record(h->st, plan->id, NULL))
        return sv_error_set(err, EEXIST, "vm %s: device %s exists", h->vm_id, plan->id);
    places p = {0};
    int r = places_build(h, &p, err);
    if (r < 0) {
        places_clear(&p);
        return sv_error_prefix(err, "vm %s", h->vm_id);
    }
    sv_vm_dev_record rec = {.read_only = plan->read_only, .state = SV_VM_DEV_ADDING};
    size_t at = 0;
    if (!(rec.id = strdup(plan->id)) || !(rec.kind = strdup(kind)) ||
        (plan->host && !(rec.host = strdup(plan->host))) || append_record(h->st, &rec, &at) < 0) {
        sv_vm_dev_record_clear(&rec);
        places_clear(&p);
        return oom(err);
    }
    /* the record lives in h->st from here on; the plug functions fill its
     * slots and persist it (adding) before their first QMP command */
    sv_vm_dev_record *live = &h->st->devices[at];
    switch ((sv_vm_device_kind)plan->kind) {
    case SV_VM_DEVICE_BLOCK:
        r = plug_block(h, &p, plan, live, err);
        break;
    case SV_VM_DEVICE_NET:
        r = plug_net(h, &p, plan, live, err);
        break;
    case SV_VM_DEVICE_VFIO:
        r = plug_vfio(h, &p, plan, live, err);
        break;
    case SV_VM_DEVICE_VHOST_USER_BLK:
    case SV_VM_DEVICE_VHOST_USER_FS:
        r = plug_vhost_user(h, &p, plan, live, err);
        break;
    case SV_VM_DEVICE_VSOCK:
        r = plug_vsock(h, &p, plan, live, err);
        break;
    case SV__VM_DEVICE_MAX:
        r = sv_error_set(err, EINVAL, "unknown device kind");
        break;
    }
    places_clear(&p);
    live = &h->st->devices[at];
    if (r < 0) {
        if (live->state != SV_VM_DEV_REMOVING)
            drop_record(h->st, at);
        save(h, NULL);
        return sv_error_prefix(err, "vm %s: hot-plugging %s %s", h->vm_id, kind, plan->id);
    }
    live->state = SV_VM_DEV_ATTACHED;
    if ((r = save(h, err)) < 0)
        return r;
    if (index)
        *index = at;
    return 0;
}

/* ---- unplugging and settling ------------------------------------------------------ */

/* Whether a refused removal says the backend is not there (any more). */
static bool backend_gone(sv_hotplug *h, const sv_error *e)
{
    const char *cls = sv_qmp_error_class(h->q);
    const char *msg = e ? sv_error_message(e) : "";
    return (cls && strcmp(cls, "DeviceNotFound") == 0) || strstr(msg, "not found") ||
           strstr(msg, "Failed to find");
}

/* Removes what device `rec` had in QEMU besides its devices (its block
 * node, netdev or chardev): 0 once it is gone, also when it was gone
 * already. A device leaves QEMU's tree before it is finalized, and only
 * then lets go of its drive or chardev: a backend still in use is asked
 * again for a moment before this gives up (the record must then stay, its
 * id taken). */
static int remove_backend(sv_hotplug *h, const sv_vm_dev_record *rec, sv_error **err)
{
    int kind = sv_vm_device_kind_from_name(rec->kind);
    const char *what = kind == SV_VM_DEVICE_BLOCK ? "drive"
                       : kind == SV_VM_DEVICE_NET ? "netdev"
                       : kind == SV_VM_DEVICE_VHOST_USER_BLK || kind == SV_VM_DEVICE_VHOST_USER_FS
                           ? "chardev"
                           : NULL;
    if (!what)
        return 0;
    _cleanup_free_ char *name = part_name(rec->id, what);
    if (!name)
        return oom(err);
    int64_t until = sv_deadline_ms(BACKEND_BUSY_MS);
    for (;;) {
        sv_error *e = NULL;
        int r = kind == SV_VM_DEVICE_BLOCK ? sv_qmp_blockdev_del(h->q, name, NOW, &e)
                : kind == SV_VM_DEVICE_NET ? sv_qmp_netdev_del(h->q, name, NOW, &e)
                                           : sv_qmp_chardev_remove(h->q, name, NOW, &e);
        if (r == 0 || (r == -EIO && backend_gone(h, e))) {
            sv_error_free(e);
            return 0;
        }
        if (r != -EIO || sv_remaining_ms(until) <= 0)
            return pass_error(err, e, r);
        sv_error_free(e);
        poll(NULL, 0, BACKEND_RETRY_MS);
    }
}

/* The ids of the devices QEMU has under /machine/peripheral (qom-list). */
static int peripheral_ids(sv_hotplug *h, json_object **names, sv_error **err)
{
    _cleanup_json_ json_object *args = json_object_new_object();
    if (!args || json_object_object_add(args, "path", json_object_new_string(PERIPHERAL)) < 0)
        return oom(err);
    _cleanup_json_ json_object *ret = NULL;
    int r = sv_qmp_execute(h->q, "qom-list", args, NOW, &ret, err);
    if (r < 0)
        return r;
    if (!json_object_is_type(ret, json_type_array))
        return sv_error_set(err, EPROTO, "qmp qom-list: reply: expected an array");
    _cleanup_json_ json_object *set = json_object_new_object();
    if (!set)
        return oom(err);
    for (size_t i = 0; i < json_object_array_length(ret); i++) {
        json_object *e = json_object_array_get_idx(ret, i), *n = NULL, *t = NULL;
        if (!json_object_object_get_ex(e, "name", &n) || !json_object_object_get_ex(e, "type", &t))
            continue;
        const char *type = json_object_get_string(t);
        if (type && strncmp(type, "child<", 6) == 0 &&
            json_object_object_add(set, json_object_get_string(n), NULL) < 0)
            return oom(err);
    }
    *names = TAKE_PTR(set);
    return 0;
}

int sv_hotplug_settle(sv_hotplug *h, sv_error **err)
{
    bool need = false;
    for (size_t i = 0; i < h->st->n_devices; i++)
        need |= h->st->devices[i].state != SV_VM_DEV_ATTACHED;
    if (!need)
        return 0;
    _cleanup_json_ json_object *present = NULL;
    int r = peripheral_ids(h, &present, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", h->vm_id);
    bool changed = false;
    for (size_t i = h->st->n_devices; i-- > 0;) {
        sv_vm_dev_record *rec = &h->st->devices[i];
        if (rec->state == SV_VM_DEV_ATTACHED)
            continue;
        size_t have = 0;
        for (size_t j = 0; j < rec->n_slots; j++)
            have += json_object_object_get_ex(present, rec->slots[j].qemu_id, NULL);
        if (have == 0) {
            /* QEMU has none of it (an unplug finished unseen, or a plug never
             * got that far): what is left of it goes, and so does the record,
             * unless QEMU still holds that (the next call tries again) */
            sv_error *e = NULL;
            if (remove_backend(h, rec, &e) < 0) {
                sv_error_free(e);
                changed |= rec->state != SV_VM_DEV_REMOVING;
                rec->state = SV_VM_DEV_REMOVING;
                continue;
            }
            drop_record(h->st, i);
            changed = true;
        } else if (rec->state == SV_VM_DEV_ADDING) {
            rec->state = have == rec->n_slots ? SV_VM_DEV_ATTACHED : SV_VM_DEV_REMOVING;
            changed = true;
        }
    }
    return changed ? save(h, err) : 0;
}

int sv_hotplug_unplug(sv_hotplug *h, const char *id, int timeout_ms, sv_error **err)
{
    if (!id)
        return sv_error_set(err, EINVAL, "no device id given");
    int64_t deadline = sv_deadline_ms(timeout_ms > 0 ? timeout_ms : SV_HOTPLUG_UNPLUG_TIMEOUT_MS);
    int r = sv_hotplug_settle(h, err);
    if (r < 0)
        return r;
    size_t at = 0;
    sv_vm_dev_record *rec = find_record(h->st, id, &at);
    if (!rec) {
        _cleanup_free_ char *q = sv_quote(id);
        return sv_error_set(err, ENOENT, "vm %s has no hot-plugged device %s", h->vm_id,
                            q ? q : "?");
    }
    sv_vm_dev_state before = rec->state;
    bool pending = before == SV_VM_DEV_REMOVING;
    rec->state = SV_VM_DEV_REMOVING;
    if ((r = save(h, err)) < 0)
        return r;
    char **ids = calloc(rec->n_slots ? rec->n_slots : 1, sizeof(*ids));
    if (!ids)
        return oom(err);
    for (size_t i = 0; i < rec->n_slots; i++)
        ids[i] = rec->slots[i].qemu_id;
    size_t left = 0;
    r = del_and_wait(h, ids, rec->n_slots, pending, deadline, &left, err);
    free(ids);
    rec = &h->st->devices[at];
    if (r < 0) {
        /* QEMU refused: the device is as it was */
        rec->state = before;
        save(h, NULL);
        return sv_error_prefix(err, "vm %s: unplugging %s", h->vm_id, id);
    }
    if (left > 0) {
        int t = timeout_ms > 0 ? timeout_ms : SV_HOTPLUG_UNPLUG_TIMEOUT_MS;
        save(h, NULL);
        return sv_error_set(err, ETIMEDOUT,
                            "vm %s: device %s: unplug still pending after %d ms (the guest has "
                            "not released it); the id stays taken until QEMU lets the device go",
                            h->vm_id, id, t);
    }
    sv_error *e = NULL;
    if ((r = remove_backend(h, rec, &e)) < 0) {
        /* QEMU still holds its drive, netdev or chardev: so is the id */
        save(h, NULL);
        sv_error_prefix(&e,
                        "vm %s: device %s left the guest, but QEMU still holds its backend (a "
                        "later call removes it; the id stays taken until then)",
                        h->vm_id, id);
        return pass_error(err, e, r);
    }
    drop_record(h->st, at);
    return save(h, err);
}

/* ---- preparing ------------------------------------------------------------------- */

void sv_hotplug_plan_clear(sv_hotplug_plan *p)
{
    if (!p)
        return;
    free(p->id);
    free(p->host);
    sv_dev_block_clear(&p->block);
    sv_dev_net_clear(&p->net);
    sv_vfio_group_clear(&p->vfio);
    sv_dev_vhost_user_clear(&p->vhost_user);
    sv_dev_vsock_clear(&p->vsock);
    for (size_t i = 0; i < p->n_owned; i++)
        if (p->owned[i] >= 0)
            close(p->owned[i]);
    free(p->owned);
    memset(p, 0, sizeof(*p));
}

static int own_fd(sv_hotplug_plan *p, int fd)
{
    int *v = realloc(p->owned, (p->n_owned + 1) * sizeof(*v));
    if (!v) {
        close(fd);
        return -ENOMEM;
    }
    p->owned = v;
    v[p->n_owned++] = fd;
    return 0;
}

/* Whether `id` is free: not recorded, not a cold-plugged device's. */
static int id_free(const sv_hotplug *h, const char *id, sv_error **err)
{
    sv_vm_dev_record *rec = find_record(h->st, id, NULL);
    if (rec && rec->state == SV_VM_DEV_REMOVING)
        return sv_error_set(err, EEXIST,
                            "id: device %s is still being unplugged: QEMU holds it (and its id) "
                            "until the guest releases it",
                            id);
    if (rec)
        return sv_error_set(err, EEXIST, "id: device %s exists", id);
    if (cold_id_taken(h->cfg, id))
        return sv_error_set(err, EEXIST, "id: %s is the id of one of the VM's own devices", id);
    return 0;
}

static int pick_id(const sv_hotplug *h, const sv_vm_device *req, char **out, sv_error **err)
{
    if (req->id) {
        int r = sv_hotplug_check_id(req->id, err);
        if (r < 0 || (r = id_free(h, req->id, err)) < 0)
            return r;
        return (*out = strdup(req->id)) ? 0 : oom(err);
    }
    for (unsigned n = 0; n < 100000; n++) {
        _cleanup_free_ char *id = fmt("%s%u", sv_hotplug_id_stem(req->kind), n);
        if (!id)
            return oom(err);
        if (!find_record(h->st, id, NULL) && !cold_id_taken(h->cfg, id)) {
            *out = TAKE_PTR(id);
            return 0;
        }
    }
    return sv_error_set(err, ENOSPC, "id: no free id");
}

/* The request's fields that do not apply to its kind are refused, so that a
 * typo in a caller's code does not go unnoticed. */
enum {
    U_PATH = 1 << 0,
    U_MAJOR = 1 << 1,
    U_RO = 1 << 2,
    U_IFNAME = 1 << 3,
    U_MACVTAP = 1 << 4,
    U_MAC = 1 << 5,
    U_QUEUES = 1 << 6,
    U_TAG = 1 << 7,
    U_CID = 1 << 8,
};

static const unsigned kind_fields[] = {
    [SV_VM_DEVICE_BLOCK] = U_PATH | U_MAJOR | U_RO,
    [SV_VM_DEVICE_NET] = U_IFNAME | U_MACVTAP | U_MAC | U_QUEUES,
    [SV_VM_DEVICE_VFIO] = U_PATH,
    [SV_VM_DEVICE_VHOST_USER_BLK] = U_PATH,
    [SV_VM_DEVICE_VHOST_USER_FS] = U_PATH | U_TAG,
    [SV_VM_DEVICE_VSOCK] = U_CID,
};
_Static_assert(SV_ARRAY_SIZE(kind_fields) == SV__VM_DEVICE_MAX, "fields of every device kind");

static int check_fields(const sv_vm_device *req, const char *kind, sv_error **err)
{
    const struct {
        unsigned bit;
        bool set;
        const char *name;
    } f[] = {
        {U_PATH, req->path != NULL, "path"},
        {U_MAJOR, req->major != 0 || req->minor != 0, "major"},
        {U_RO, req->read_only, "read_only"},
        {U_IFNAME, req->ifname != NULL, "ifname"},
        {U_MACVTAP, req->macvtap, "macvtap"},
        {U_MAC, req->mac != NULL, "mac"},
        {U_QUEUES, req->queues != 0, "queues"},
        {U_TAG, req->tag != NULL, "tag"},
        {U_CID, req->cid != 0, "cid"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(f); i++)
        if (f[i].set && !(kind_fields[req->kind] & f[i].bit))
            return sv_field_error(err, kind, f[i].name, "does not apply to a %s device", kind);
    return 0;
}

/* An absolute path without control characters, for `field`. */
static int check_path(const char *kind, const char *field, const char *path, sv_error **err)
{
    return sv_check_abs_path(kind, field, path, true, err);
}

static int prepare_block(const sv_hotplug *h, const sv_vm_device *req, sv_hotplug_plan *p,
                         sv_error **err)
{
    int r;
    _cleanup_free_ char *path = NULL;
    if (req->path && (req->major || req->minor))
        return sv_field_error(err, "block", "major", "give either path or major:minor, not both");
    if (req->path) {
        if ((r = check_path("block", "path", req->path, err)) < 0)
            return r;
        if (!(path = strdup(req->path)))
            return oom(err);
    } else {
        if (req->major <= 0 || req->major > SV_DEV_MAJOR_MAX || req->minor < 0 ||
            req->minor > SV_DEV_MINOR_MAX)
            return sv_field_error(err, "block", req->major > 0 ? "minor" : "path",
                                  req->major > 0 ? "out of range (0-%u)"
                                                 : "is required (or major:minor)",
                                  SV_DEV_MINOR_MAX);
        _cleanup_sysfs_ sv_sysfs *s = NULL;
        if ((r = sv_sysfs_open(h->sysfs_root, &s, err)) < 0 ||
            (r = sv_sysfs_devnode_path(s, SV_DEVNODE_BLOCK, (unsigned)req->major,
                                       (unsigned)req->minor, &path, err)) < 0)
            return sv_error_prefix(err, "block");
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return sv_error_errno(err, errno, "block.path: %s", path);
    if (S_ISBLK(st.st_mode))
        p->block_is_device = true;
    else if (!S_ISREG(st.st_mode))
        return sv_field_error(err, "block", "path",
                              "%s is neither a regular file nor a block device", path);
    if (!req->path && (major(st.st_rdev) != (unsigned)req->major ||
                       minor(st.st_rdev) != (unsigned)req->minor || !p->block_is_device))
        return sv_field_error(err, "block", "major",
                              "%s (the name sysfs gives block device %lld:%lld) is another device",
                              path, (long long)req->major, (long long)req->minor);
    p->block.major = req->path ? -1 : req->major;
    p->block.minor = req->path ? -1 : req->minor;
    p->block.read_only = req->read_only;
    p->read_only = req->read_only;
    p->block.driver = h->block_driver;
    if (!(p->host = strdup(path)))
        return oom(err);
    p->block.path = TAKE_PTR(path);
    return 0;
}

/* The kernel's dev_valid_name(). */
static int check_ifname(const char *name, sv_error **err)
{
    size_t n = strlen(name);
    if (n == 0 || n > IFNAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strpbrk(name, "/: \t\n\v\f\r")) {
        _cleanup_free_ char *q = sv_quote(name);
        return sv_field_error(err, "net", "ifname",
                              "%s is not an interface name (1-%d bytes, no '/', ':' or white "
                              "space)",
                              q ? q : "?", IFNAME_MAX);
    }
    return 0;
}

/* One queue of tap `name`: /dev/net/tun attached to it. */
static int open_tap(const char *name, bool multi_queue, sv_error **err)
{
    _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return sv_error_errno(err, errno, "net: opening /dev/net/tun");
    struct ifreq ifr = {0};
    memcpy(ifr.ifr_name, name, strlen(name));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi_queue ? IFF_MULTI_QUEUE : 0);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        if (e == EINVAL)
            return sv_error_set(err, EINVAL,
                                "net.ifname: %s is not a tap device, or its multi_queue setting "
                                "does not match %s",
                                name, multi_queue ? "queues > 1" : "one queue");
        if (e == EBUSY)
            return sv_error_set(err, EBUSY,
                                "net.ifname: tap %s is in use (open elsewhere; a tap without "
                                "multi_queue takes one user)",
                                name);
        return sv_error_errno(err, e, "net.ifname: attaching to tap %s", name);
    }
    return TAKE_FD(fd);
}

static int append_fd(int **v, size_t *n, int fd)
{
    int *nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    nv[(*n)++] = fd;
    return 0;
}

static int prepare_net(const sv_hotplug *h, const sv_vm_device *req, sv_hotplug_plan *p,
                       sv_error **err)
{
    int r;
    if (!req->ifname)
        return sv_field_error(err, "net", "ifname", "is required");
    if ((r = check_ifname(req->ifname, err)) < 0)
        return r;
    if (req->mac && (r = sv_check_mac("net", "mac", req->mac, err)) < 0)
        return r;
    unsigned queues = req->queues ? req->queues : 1;
    if (queues > NET_MAX_QUEUES)
        return sv_field_error(err, "net", "queues", "%u is more than %d", queues, NET_MAX_QUEUES);
    unsigned ifindex = if_nametoindex(req->ifname);
    if (ifindex == 0)
        return sv_error_set(
            err, ENOENT, "net.ifname: no interface \"%s\" in this network namespace", req->ifname);
    sv_dev_net *n = &p->net;
    n->kind = req->macvtap ? SV_DEV_NET_MACVTAP : SV_DEV_NET_TAP;
    n->queues = queues;
    if (!(n->name = strdup(req->ifname)) || (req->mac && !(n->mac = strdup(req->mac))) ||
        !(p->host = strdup(req->ifname)))
        return oom(err);
    _cleanup_free_ char *tapdev = req->macvtap ? fmt("/dev/tap%u", ifindex) : NULL;
    if (req->macvtap && !tapdev)
        return oom(err);
    for (unsigned i = 0; i < queues; i++) {
        int fd;
        if (req->macvtap) {
            /* each open of a macvtap's character device is one more queue */
            fd = open(tapdev, O_RDWR | O_CLOEXEC);
            if (fd < 0)
                return sv_error_errno(err, errno, "net.ifname: %s is not a macvtap (opening %s)",
                                      req->ifname, tapdev);
        } else if ((fd = open_tap(req->ifname, queues > 1, err)) < 0) {
            return fd;
        }
        if (own_fd(p, fd) < 0 || append_fd(&n->fds, &n->n_fds, fd) < 0)
            return oom(err);
    }
    /* vhost-net when the host has it (s390x never uses it, as Kata) */
    if (!h->vhost_net || transport(h) == SV_QT_CCW)
        return 0;
    for (unsigned i = 0; i < queues; i++) {
        int fd = open("/dev/vhost-net", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            if (i == 0)
                return 0; /* no vhost-net here: QEMU moves the packets itself */
            return sv_error_errno(err, errno, "net: opening /dev/vhost-net");
        }
        if (own_fd(p, fd) < 0 || append_fd(&n->vhost_fds, &n->n_vhost_fds, fd) < 0)
            return oom(err);
    }
    return 0;
}

static int prepare_vfio(const sv_hotplug *h, const sv_vm_device *req, sv_hotplug_plan *p,
                        sv_error **err)
{
    if (!req->path)
        return sv_field_error(err, "vfio", "path",
                              "is required (/dev/vfio/<group> or a PCI address)");
    _cleanup_sysfs_ sv_sysfs *s = NULL;
    int r;
    if ((r = sv_sysfs_open(h->sysfs_root, &s, err)) < 0 ||
        (r = sv_vfio_enumerate(s, req->path, &p->vfio, err)) < 0)
        return sv_error_prefix(err, "vfio.path");
    if (!(p->host = strdup(p->vfio.devfs)))
        return oom(err);
    return 0;
}

static int prepare_vhost_user(const sv_hotplug *h, const sv_vm_device *req, sv_hotplug_plan *p,
                              sv_error **err)
{
    bool fs = req->kind == SV_VM_DEVICE_VHOST_USER_FS;
    const char *kind = sv_vm_device_kind_name(req->kind);
    int r;
    if ((r = check_path(kind, "path", req->path, err)) < 0)
        return r;
    struct stat st;
    if (stat(req->path, &st) < 0)
        return sv_error_errno(err, errno, "%s.path: %s", kind, req->path);
    if (!S_ISSOCK(st.st_mode))
        return sv_field_error(err, kind, "path", "%s is not a unix socket", req->path);
    if (fs) {
        if (!req->tag || !*req->tag)
            return sv_field_error(err, kind, "tag", "is required");
        size_t off = 0;
        if (strlen(req->tag) > FS_TAG_MAX || sv_text_problem(req->tag, &off))
            return sv_field_error(err, kind, "tag",
                                  "must be 1-%d bytes of UTF-8 without control characters",
                                  FS_TAG_MAX);
    }
    if (!shares_memory(h->cfg))
        return sv_error_set(err, EINVAL,
                            "%s: the backend must map guest RAM, which this VM does not share: "
                            "create it with enable_vhost_user_store (or shared_fs virtio-fs)",
                            kind);
    sv_dev_vhost_user *v = &p->vhost_user;
    v->type = fs ? SV_DEV_VHOST_USER_FS : SV_DEV_VHOST_USER_BLK;
    v->index = -1;
    if (!(v->socket_path = strdup(req->path)) || (fs && !(v->tag = strdup(req->tag))) ||
        !(p->host = strdup(req->path)))
        return oom(err);
    return 0;
}

static int prepare_vsock(const sv_hotplug *h, const sv_vm_device *req, sv_hotplug_plan *p,
                         sv_error **err)
{
    if (req->cid < VSOCK_CID_MIN || req->cid > VSOCK_CID_MAX)
        return sv_field_error(err, "vsock", "cid", "must be %u to %u", VSOCK_CID_MIN,
                              VSOCK_CID_MAX);
    int fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return sv_error_errno(err, errno, "vsock: opening /dev/vhost-vsock");
    if (own_fd(p, fd) < 0)
        return oom(err);
    p->vsock.cid = req->cid;
    p->vsock.vhost_fd = fd;
    if (!(p->host = fmt("cid %" PRIu32, req->cid)))
        return oom(err);
    return 0;
}

int sv_hotplug_prepare(const sv_hotplug *h, const sv_vm_device *req, sv_hotplug_plan *p,
                       sv_error **err)
{
    memset(p, 0, sizeof(*p));
    p->vsock.vhost_fd = -1;
    if (!req)
        return sv_error_set(err, EINVAL, "no device given");
    const char *kind = sv_vm_device_kind_name(req->kind);
    if (!kind)
        return sv_error_set(err, EINVAL, "kind: %d is not a device kind", req->kind);
    p->kind = req->kind;
    int r = check_fields(req, kind, err);
    if (r < 0 || (r = pick_id(h, req, &p->id, err)) < 0)
        return r;
    switch ((sv_vm_device_kind)req->kind) {
    case SV_VM_DEVICE_BLOCK:
        r = prepare_block(h, req, p, err);
        break;
    case SV_VM_DEVICE_NET:
        r = prepare_net(h, req, p, err);
        break;
    case SV_VM_DEVICE_VFIO:
        r = prepare_vfio(h, req, p, err);
        break;
    case SV_VM_DEVICE_VHOST_USER_BLK:
    case SV_VM_DEVICE_VHOST_USER_FS:
        r = prepare_vhost_user(h, req, p, err);
        break;
    case SV_VM_DEVICE_VSOCK:
        r = prepare_vsock(h, req, p, err);
        break;
    case SV__VM_DEVICE_MAX:
        r = sv_error_set(err, EINVAL, "unknown device kind");
        break;
    }
    if (r < 0)
        sv_hotplug_plan_clear(p);
    return r;
}

int sv_hotplug_add(sv_hotplug *h, const sv_vm_device *req, size_t *index, sv_error **err)
{
    int r = sv_hotplug_settle(h, err);
    if (r < 0)
        return r;
    sv_hotplug_plan plan;
    if ((r = sv_hotplug_prepare(h, req, &plan, err)) < 0)
        return sv_error_prefix(err, "vm %s: hot-plugging %s", h->vm_id,
                               sv_vm_device_kind_name(req->kind) ? sv_vm_device_kind_name(req->kind)
                                                                 : "a device");
    r = sv_hotplug_plug(h, &plan, index, err);
    sv_hotplug_plan_clear(&plan);
    return r;
}
