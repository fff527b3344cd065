#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/slots.h"
#include "devices/sysfs.h"
#include "util/cleanup.h"

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

/* ---- numbers lo..hi handed out (lowest first), 0..max reservable ---- */

typedef struct na_entry {
    unsigned num;
    char *id; /* NULL for an anonymous reservation */
} na_entry;

typedef struct numalloc {
    unsigned lo, hi, max;
    unsigned char *used; /* bitmap over 0..max */
    na_entry *e;
    size_t n, cap;
} numalloc;

static int na_init(numalloc *a, unsigned lo, unsigned hi, unsigned max)
{
    memset(a, 0, sizeof(*a));
    a->lo = lo;
    a->hi = hi;
    a->max = max;
    a->used = calloc(max / 8 + 1, 1);
    return a->used ? 0 : -ENOMEM;
}

static void na_clear(numalloc *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->e[i].id);
    free(a->e);
    free(a->used);
    memset(a, 0, sizeof(*a));
}

static bool na_used(const numalloc *a, unsigned num)
{
    return num <= a->max && (a->used[num / 8] >> (num % 8)) & 1;
}

static size_t na_free_count(const numalloc *a)
{
    size_t free_n = 0;
    for (unsigned i = a->lo; i <= a->hi; i++)
        free_n += !na_used(a, i);
    return free_n;
}

/* The lowest free number in lo..hi, or -1. */
static long na_first_free(const numalloc *a)
{
    for (unsigned i = a->lo; i <= a->hi; i++)
        if (!na_used(a, i))
            return (long)i;
    return -1;
}

static const na_entry *na_find(const numalloc *a, const char *id)
{
    for (size_t i = 0; id && i < a->n; i++)
        if (a->e[i].id && strcmp(a->e[i].id, id) == 0)
            return &a->e[i];
    return NULL;
}

static int na_take(numalloc *a, unsigned num, const char *id)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 8;
        na_entry *e = realloc(a->e, ncap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        a->e = e;
        a->cap = ncap;
    }
    char *copy = NULL;
    if (id && !(copy = strdup(id)))
        return -ENOMEM;
    a->e[a->n++] = (na_entry){num, copy};
    a->used[num / 8] |= (unsigned char)(1u << (num % 8));
    return 0;
}

/* Releases the number `id` holds; false when it holds none. */
static bool na_release(numalloc *a, const char *id)
{
    const na_entry *f = na_find(a, id);
    if (!f)
        return false;
    size_t i = (size_t)(f - a->e);
    a->used[a->e[i].num / 8] &= (unsigned char)~(1u << (a->e[i].num % 8));
    free(a->e[i].id);
    a->e[i] = a->e[--a->n];
    return true;
}

static int check_id(const char *what, const char *dev_id, sv_error **err)
{
    if (!dev_id || !*dev_id)
        return sv_error_set(err, EINVAL, "%s: a device needs an id", what);
    return 0;
}

/* `var`: `s` quoted for a message, freed at the end of the scope; "?" on OOM. */
#define Q(var, s)                                                                                  \
    _cleanup_free_ char *var##_q = sv_quote(s);                                                    \
    const char *var = var##_q ? var##_q : "?"

/* ---- PCI bridges ---- */

typedef struct pci_bridge {
    char *id;
    unsigned addr;
    numalloc slots;
} pci_bridge;

struct sv_pci_bridges {
    pci_bridge *b;
    size_t n;
};

sv_pci_bridges *sv_pci_bridges_new(void)
{
    return calloc(1, sizeof(sv_pci_bridges));
}

void sv_pci_bridges_free(sv_pci_bridges *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->b[i].id);
        na_clear(&b->b[i].slots);
    }
    free(b->b);
    free(b);
}

int sv_pci_bridges_add_bridge(sv_pci_bridges *b, const char *id, unsigned addr, sv_error **err)
{
    if (!id || !*id)
        return sv_error_set(err, EINVAL, "PCI bridge: a bridge needs an id");
    Q(qid, id);
    if (addr < 1 || addr > 31)
        return sv_error_set(err, EINVAL, "PCI bridge %s: root bus slot %u is not 1..31", qid, addr);
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->b[i].id, id) == 0)
            return sv_error_set(err, EEXIST, "PCI bridge %s: added twice", qid);
        if (b->b[i].addr == addr)
            return sv_error_set(err, EEXIST, "PCI bridge %s: root bus slot %02x is bridge %s's",
                                qid, addr, b->b[i].id);
    }
    pci_bridge *nb = realloc(b->b, (b->n + 1) * sizeof(*nb));
    if (!nb)
        return oom(err);
    b->b = nb;
    pci_bridge *x = &b->b[b->n];
    x->addr = addr;
    if (!(x->id = strdup(id)))
        return oom(err);
    if (na_init(&x->slots, 1, SV_PCI_BRIDGE_SLOTS, SV_PCI_BRIDGE_SLOTS) < 0) {
        free(x->id);
        return oom(err);
    }
    b->n++;
    return 0;
}

int sv_pci_bridges_new_default(size_t n, sv_pci_bridges **out, sv_error **err)
{
    *out = NULL;
    if (n > 31 - SV_PCI_BRIDGE_FIRST_ADDR + 1)
        return sv_error_set(err, EINVAL, "%zu PCI bridges do not fit on the root bus", n);
    sv_pci_bridges *b = sv_pci_bridges_new();
    if (!b)
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "pci-bridge-%zu", i);
        int r = sv_pci_bridges_add_bridge(b, id, SV_PCI_BRIDGE_FIRST_ADDR + (unsigned)i, err);
        if (r < 0) {
            sv_pci_bridges_free(b);
            return r;
        }
    }
    *out = b;
    return 0;
}

size_t sv_pci_bridges_count(const sv_pci_bridges *b)
{
    return b->n;
}

size_t sv_pci_bridges_free_slots(const sv_pci_bridges *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        n += na_free_count(&b->b[i].slots);
    return n;
}

static void fill_slot(const sv_pci_bridges *b, size_t bi, unsigned slot, sv_pci_slot *out)
{
    if (!out)
        return;
    out->bridge = bi;
    out->bridge_id = b->b[bi].id;
    out->bridge_addr = b->b[bi].addr;
    out->slot = slot;
    snprintf(out->addr, sizeof(out->addr), "%02x", slot);
    snprintf(out->pci_path, sizeof(out->pci_path), "%02x/%02x", b->b[bi].addr, slot);
}

int sv_pci_bridges_find(const sv_pci_bridges *b, const char *dev_id, sv_pci_slot *out)
{
    for (size_t i = 0; dev_id && i < b->n; i++) {
        const na_entry *e = na_find(&b->b[i].slots, dev_id);
        if (e) {
            fill_slot(b, i, e->num, out);
            return 0;
        }
    }
    return -ENOENT;
}

static int pci_check_new_id(const sv_pci_bridges *b, const char *dev_id, sv_error **err)
{
    int r = check_id("PCI bridge slot", dev_id, err);
    if (r < 0)
        return r;
    sv_pci_slot s;
    if (sv_pci_bridges_find(b, dev_id, &s) == 0) {
        Q(qid, dev_id);
        return sv_error_set(err, EEXIST, "device %s already has PCI slot %s on %s", qid, s.pci_path,
                            s.bridge_id);
    }
    return 0;
}

int sv_pci_bridges_add(sv_pci_bridges *b, const char *dev_id, sv_pci_slot *out, sv_error **err)
{
    int r = pci_check_new_id(b, dev_id, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < b->n; i++) {
        long slot = na_first_free(&b->b[i].slots);
        if (slot < 0)
            continue;
        if (na_take(&b->b[i].slots, (unsigned)slot, dev_id) < 0)
            return oom(err);
        fill_slot(b, i, (unsigned)slot, out);
        return 0;
    }
    Q(qid, dev_id);
    if (b->n == 0)
        return sv_error_set(err, ENOSPC,
                            "no free PCI bridge slot for device %s: the VM has no PCI bridge", qid);
    return sv_error_set(
        err, ENOSPC, "no free PCI bridge slot for device %s: all %zu bridges' %d slots are in use",
        qid, b->n, SV_PCI_BRIDGE_SLOTS);
}

int sv_pci_bridges_reserve(sv_pci_bridges *b, const char *dev_id, const char *bridge_id,
                           unsigned slot, sv_pci_slot *out, sv_error **err)
{
    int r = pci_check_new_id(b, dev_id, err);
    if (r < 0)
        return r;
    Q(qid, dev_id);
    size_t i;
    for (i = 0; i < b->n; i++)
        if (bridge_id && strcmp(b->b[i].id, bridge_id) == 0)
            break;
    if (i == b->n) {
        Q(qb, bridge_id);
        return sv_error_set(err, ENOENT, "device %s: no PCI bridge %s", qid, qb);
    }
    if (slot < 1 || slot > SV_PCI_BRIDGE_SLOTS)
        return sv_error_set(err, EINVAL, "device %s: slot %u of %s is not 1..%d", qid, slot,
                            b->b[i].id, SV_PCI_BRIDGE_SLOTS);
    if (na_used(&b->b[i].slots, slot))
        return sv_error_set(err, EEXIST, "device %s: slot %02x of %s is taken", qid, slot,
                            b->b[i].id);
    if (na_take(&b->b[i].slots, slot, dev_id) < 0)
        return oom(err);
    fill_slot(b, i, slot, out);
    return 0;
}

int sv_pci_bridges_remove(sv_pci_bridges *b, const char *dev_id, sv_error **err)
{
    int r = check_id("PCI bridge slot", dev_id, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < b->n; i++)
        if (na_release(&b->b[i].slots, dev_id))
            return 0;
    Q(qid, dev_id);
    return sv_error_set(err, ENOENT, "device %s is not on any PCI bridge", qid);
}

/* ---- PCIe ports ---- */

struct sv_pcie_ports {
    char prefix[9];
    size_t n;
    numalloc ports; /* 0..n-1; for n == 0 the range is empty */
};

int sv_pcie_ports_new(const char *prefix, size_t n, sv_pcie_ports **out, sv_error **err)
{
    *out = NULL;
    size_t len = prefix ? strlen(prefix) : 0;
    if (len == 0 || len > 8 || strspn(prefix, "abcdefghijklmnopqrstuvwxyz") != len) {
        Q(qp, prefix);
        return sv_error_set(err, EINVAL, "PCIe port prefix %s is not 1..8 lowercase letters", qp);
    }
    if (n > SV_PCIE_PORTS_MAX)
        return sv_error_set(err, EINVAL, "%zu PCIe %s ports: at most %d", n, prefix,
                            SV_PCIE_PORTS_MAX);
    sv_pcie_ports *p = calloc(1, sizeof(*p));
    if (!p)
        return oom(err);
    memcpy(p->prefix, prefix, len + 1);
    p->n = n;
    /* n == 0: lo > hi, nothing to hand out */
    if (na_init(&p->ports, n ? 0 : 1, n ? (unsigned)n - 1 : 0, SV_PCIE_PORTS_MAX) < 0) {
        free(p);
        return oom(err);
    }
    *out = p;
    return 0;
}

void sv_pcie_ports_free(sv_pcie_ports *p)
{
    if (!p)
        return;
    na_clear(&p->ports);
    free(p);
}

size_t sv_pcie_ports_count(const sv_pcie_ports *p)
{
    return p->n;
}

static void fill_port(const sv_pcie_ports *p, unsigned index, sv_pcie_port *out)
{
    if (!out)
        return;
    out->index = index;
    snprintf(out->bus, sizeof(out->bus), "%s%u", p->prefix, index);
}

int sv_pcie_ports_find(const sv_pcie_ports *p, const char *dev_id, sv_pcie_port *out)
{
    const na_entry *e = na_find(&p->ports, dev_id);
    if (!e)
        return -ENOENT;
    fill_port(p, e->num, out);
    return 0;
}

static int port_check_new_id(const sv_pcie_ports *p, const char *dev_id, sv_error **err)
{
    int r = check_id("PCIe port", dev_id, err);
    if (r < 0)
        return r;
    sv_pcie_port port;
    if (sv_pcie_ports_find(p, dev_id, &port) == 0) {
        Q(qid, dev_id);
        return sv_error_set(err, EEXIST, "device %s already has PCIe port %s", qid, port.bus);
    }
    return 0;
}

int sv_pcie_ports_add(sv_pcie_ports *p, const char *dev_id, sv_pcie_port *out, sv_error **err)
{
    int r = port_check_new_id(p, dev_id, err);
    if (r < 0)
        return r;
    Q(qid, dev_id);
    if (p->n == 0)
        return sv_error_set(err, ENOSPC, "no free PCIe port for device %s: there are no %s ports",
                            qid, p->prefix);
    long i = na_first_free(&p->ports);
    if (i < 0)
        return sv_error_set(err, ENOSPC,
                            "no free PCIe port for device %s: %s0..%s%zu are all in use", qid,
                            p->prefix, p->prefix, p->n - 1);
    if (na_take(&p->ports, (unsigned)i, dev_id) < 0)
        return oom(err);
    fill_port(p, (unsigned)i, out);
    return 0;
}

int sv_pcie_ports_reserve(sv_pcie_ports *p, const char *dev_id, size_t index, sv_pcie_port *out,
                          sv_error **err)
{
    int r = port_check_new_id(p, dev_id, err);
    if (r < 0)
        return r;
    Q(qid, dev_id);
    if (index >= p->n)
        return sv_error_set(err, EINVAL, "device %s: there is no PCIe port %s%zu (%zu ports)", qid,
                            p->prefix, index, p->n);
    if (na_used(&p->ports, (unsigned)index))
        return sv_error_set(err, EEXIST, "device %s: PCIe port %s%zu is taken", qid, p->prefix,
                            index);
    if (na_take(&p->ports, (unsigned)index, dev_id) < 0)
        return oom(err);
    fill_port(p, (unsigned)index, out);
    return 0;
}

int sv_pcie_ports_remove(sv_pcie_ports *p, const char *dev_id, sv_error **err)
{
    int r = check_id("PCIe port", dev_id, err);
    if (r < 0)
        return r;
    if (na_release(&p->ports, dev_id))
        return 0;
    Q(qid, dev_id);
    return sv_error_set(err, ENOENT, "device %s is not on any %s PCIe port", qid, p->prefix);
}

/* ---- CCW ---- */

struct sv_ccw_bridge {
    unsigned ssid;
    numalloc devnos;
};

int sv_ccw_bridge_new(unsigned ssid, sv_ccw_bridge **out, sv_error **err)
{
    *out = NULL;
    if (ssid > SV_CCW_SSID_MAX)
        return sv_error_set(err, EINVAL, "CCW subchannel set %u: at most %d", ssid,
                            SV_CCW_SSID_MAX);
    sv_ccw_bridge *c = calloc(1, sizeof(*c));
    if (!c)
        return oom(err);
    c->ssid = ssid;
    if (na_init(&c->devnos, 0, SV_CCW_DEVNO_CAPACITY - 1, 0xffff) < 0) {
        free(c);
        return oom(err);
    }
    *out = c;
    return 0;
}

void sv_ccw_bridge_free(sv_ccw_bridge *c)
{
    if (!c)
        return;
    na_clear(&c->devnos);
    free(c);
}

static void fill_ccw(const sv_ccw_bridge *c, unsigned devno, sv_ccw_addr *out)
{
    if (!out)
        return;
    out->ssid = c->ssid;
    out->devno = devno;
    snprintf(out->qemu, sizeof(out->qemu), "%x.%u.%04x", SV_CCW_CSSID, c->ssid, devno);
    snprintf(out->guest, sizeof(out->guest), "0.%u.%04x", c->ssid, devno);
}

int sv_ccw_bridge_find(const sv_ccw_bridge *c, const char *dev_id, sv_ccw_addr *out)
{
    const na_entry *e = na_find(&c->devnos, dev_id);
    if (!e)
        return -ENOENT;
    fill_ccw(c, e->num, out);
    return 0;
}

static int ccw_check_new_id(const sv_ccw_bridge *c, const char *dev_id, bool optional,
                            sv_error **err)
{
    if (optional && !dev_id)
        return 0;
    int r = check_id("CCW devno", dev_id, err);
    if (r < 0)
        return r;
    sv_ccw_addr a;
    if (sv_ccw_bridge_find(c, dev_id, &a) == 0) {
        Q(qid, dev_id);
        return sv_error_set(err, EEXIST, "device %s already has CCW devno %s", qid, a.qemu);
    }
    return 0;
}

int sv_ccw_bridge_add(sv_ccw_bridge *c, const char *dev_id, sv_ccw_addr *out, sv_error **err)
{
    int r = ccw_check_new_id(c, dev_id, false, err);
    if (r < 0)
        return r;
    long devno = na_first_free(&c->devnos);
    if (devno < 0) {
        Q(qid, dev_id);
        return sv_error_set(err, ENOSPC, "no free CCW devno for device %s: all %d are in use", qid,
                            SV_CCW_DEVNO_CAPACITY);
    }
    if (na_take(&c->devnos, (unsigned)devno, dev_id) < 0)
        return oom(err);
    fill_ccw(c, (unsigned)devno, out);
    return 0;
}

int sv_ccw_bridge_reserve(sv_ccw_bridge *c, const char *dev_id, unsigned devno, sv_error **err)
{
    int r = ccw_check_new_id(c, dev_id, true, err);
    if (r < 0)
        return r;
    if (devno > 0xffff)
        return sv_error_set(err, EINVAL, "CCW devno %#x is not 16 bits", devno);
    if (na_used(&c->devnos, devno))
        return sv_error_set(err, EEXIST, "CCW devno %x.%u.%04x is taken", SV_CCW_CSSID, c->ssid,
                            devno);
    if (na_take(&c->devnos, devno, dev_id) < 0)
        return oom(err);
    return 0;
}

int sv_ccw_devno_parse(const char *s, unsigned *cssid, unsigned *ssid, unsigned *devno)
{
    unsigned v[3] = {0, 0, 0};
    static const size_t maxd[3] = {2, 1, 4};
    const char *p = s;
    if (!s)
        return -EINVAL;
    for (int part = 0; part < 3; part++) {
        size_t d = 0;
        for (; p[d] && p[d] != '.'; d++) {
            char ch = p[d];
            int x = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (x < 0 || d >= maxd[part])
                return -EINVAL;
            v[part] = v[part] * 16 + (unsigned)x;
        }
        if (d == 0)
            return -EINVAL;
        p += d;
        if (part < 2) {
            if (*p != '.')
                return -EINVAL;
            p++;
        }
    }
    if (*p || v[1] > SV_CCW_SSID_MAX)
        return -EINVAL;
    *cssid = v[0];
    *ssid = v[1];
    *devno = v[2];
    return 0;
}

int sv_ccw_bridge_reserve_str(sv_ccw_bridge *c, const char *dev_id, const char *devno,
                              sv_error **err)
{
    unsigned cssid, ssid, dn;
    if (sv_ccw_devno_parse(devno, &cssid, &ssid, &dn) < 0) {
        Q(q, devno);
        return sv_error_set(err, EINVAL, "CCW devno %s is not <cssid>.<ssid>.<devno> in hex", q);
    }
    if (cssid != SV_CCW_CSSID || ssid != c->ssid)
        return 0;
    return sv_ccw_bridge_reserve(c, dev_id, dn, err);
}

int sv_ccw_bridge_remove(sv_ccw_bridge *c, const char *dev_id, sv_error **err)
{
    int r = check_id("CCW devno", dev_id, err);
    if (r < 0)
        return r;
    if (na_release(&c->devnos, dev_id))
        return 0;
    Q(qid, dev_id);
    return sv_error_set(err, ENOENT, "device %s has no CCW devno", qid);
}

/* ---- SCSI ---- */

int sv_scsi_addr_of_index(int64_t index, sv_scsi_addr *out, sv_error **err)
{
    if (index < 0 || index > SV_SCSI_MAX_INDEX)
        return sv_error_set(err, ERANGE, "block index %lld is out of the SCSI range 0..%d",
                            (long long)index, SV_SCSI_MAX_INDEX);
    out->index = (unsigned)index;
    out->scsi_id = (unsigned)index / 256;
    out->lun = (unsigned)index % 256;
    snprintf(out->addr, sizeof(out->addr), "%u:%u", out->scsi_id, out->lun);
    return 0;
}

struct sv_scsi_alloc {
    numalloc idx;
};

sv_scsi_alloc *sv_scsi_alloc_new(void)
{
    sv_scsi_alloc *a = calloc(1, sizeof(*a));
    if (a && na_init(&a->idx, 0, SV_SCSI_MAX_INDEX, SV_SCSI_MAX_INDEX) < 0) {
        free(a);
        return NULL;
    }
    return a;
}

void sv_scsi_alloc_free(sv_scsi_alloc *a)
{
    if (!a)
        return;
    na_clear(&a->idx);
    free(a);
}

int sv_scsi_alloc_find(const sv_scsi_alloc *a, const char *dev_id, sv_scsi_addr *out)
{
    const na_entry *e = na_find(&a->idx, dev_id);
    if (!e)
        return -ENOENT;
    return sv_scsi_addr_of_index(e->num, out, NULL);
}

static int scsi_check_new_id(const sv_scsi_alloc *a, const char *dev_id, sv_error **err)
{
    int r = check_id("SCSI address", dev_id, err);
    if (r < 0)
        return r;
    sv_scsi_addr s;
    if (sv_scsi_alloc_find(a, dev_id, &s) == 0) {
        Q(qid, dev_id);
        return sv_error_set(err, EEXIST, "device %s already has SCSI address %s", qid, s.addr);
    }
    return 0;
}

int sv_scsi_alloc_add(sv_scsi_alloc *a, const char *dev_id, sv_scsi_addr *out, sv_error **err)
{
    int r = scsi_check_new_id(a, dev_id, err);
    if (r < 0)
        return r;
    long i = na_first_free(&a->idx);
    if (i < 0) {
        Q(qid, dev_id);
        return sv_error_set(err, ENOSPC, "no free SCSI address for device %s: all %d are in use",
                            qid, SV_SCSI_MAX_INDEX + 1);
    }
    if (na_take(&a->idx, (unsigned)i, dev_id) < 0)
        return oom(err);
    sv_scsi_addr s;
    sv_scsi_addr_of_index(i, &s, NULL);
    if (out)
        *out = s;
    return 0;
}

int sv_scsi_alloc_reserve(sv_scsi_alloc *a, const char *dev_id, unsigned index, sv_error **err)
{
    int r = dev_id ? scsi_check_new_id(a, dev_id, err) : 0;
    if (r < 0)
        return r;
    sv_scsi_addr s;
    if ((r = sv_scsi_addr_of_index(index, &s, err)) < 0)
        return r;
    if (na_used(&a->idx, index))
        return sv_error_set(err, EEXIST, "SCSI address %s (block index %u) is taken", s.addr,
                            index);
    if (na_take(&a->idx, index, dev_id) < 0)
        return oom(err);
    return 0;
}

int sv_scsi_alloc_remove(sv_scsi_alloc *a, const char *dev_id, sv_error **err)
{
    int r = check_id("SCSI address", dev_id, err);
    if (r < 0)
        return r;
    if (na_release(&a->idx, dev_id))
        return 0;
    Q(qid, dev_id);
    return sv_error_set(err, ENOENT, "device %s has no SCSI address", qid);
}
