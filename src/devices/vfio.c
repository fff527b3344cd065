#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/vfio.h"
#include "util/cleanup.h"

/* PCI class codes (base class << 8 | subclass) Kata refuses to pass through. */
#define PCI_CLASS_BRIDGE_HOST 0x0600
#define PCI_CLASS_BRIDGE_PCI 0x0604
/* Linux's PCI_FIND_CAP_TTL */
#define PCI_CAP_TTL 48
#define PCI_CAP_ID_EXP 0x10
#define PCI_STATUS_CAP_LIST 0x10
/* Conventional config space; a larger sysfs "config" means extended (PCIe)
 * config space, Kata's whole PCIe test, used here only when the capability
 * list cannot be read. */
#define PCI_CFG_SPACE_SIZE 256

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

/* ---- names ---- */

static int hexval(char c, bool lower_only)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (!lower_only && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly `n` hex digits at *p; advances *p. */
static bool hexn(const char **p, size_t n, bool lower_only, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hexval((*p)[i], lower_only);
        if (d < 0)
            return false;
        v = v * 16 + (unsigned)d;
    }
    *p += n;
    *out = v;
    return true;
}

int sv_bdf_parse(const char *s, bool strict, sv_bdf *out)
{
    if (!s)
        return -EINVAL;
    sv_bdf b = {0, 0, 0, 0};
    const char *p = s;
    size_t len = strlen(s);
    if (len == 12) {
        if (!hexn(&p, 4, strict, &b.domain) || *p++ != ':')
            return -EINVAL;
    } else if (strict || len != 7) {
        return -EINVAL;
    }
    if (!hexn(&p, 2, strict, &b.bus) || *p++ != ':' || !hexn(&p, 2, strict, &b.dev) ||
        *p++ != '.' || !hexn(&p, 1, strict, &b.fn) || *p != '\0')
        return -EINVAL;
    if (b.dev > 0x1f || b.fn > 7)
        return -EINVAL;
    if (out)
        *out = b;
    return 0;
}

bool sv_bdf_valid(const char *s)
{
    return sv_bdf_parse(s, true, NULL) == 0;
}

void sv_bdf_format(const sv_bdf *b, char out[SV_BDF_LEN])
{
    snprintf(out, SV_BDF_LEN, "%04x:%02x:%02x.%x", b->domain & 0xffff, b->bus & 0xff, b->dev & 0x1f,
             b->fn & 7);
}

bool sv_uuid_valid(const char *s)
{
    static const size_t groups[] = {8, 4, 4, 4, 12};
    const char *p = s;
    unsigned v;
    if (!s || strlen(s) != 36)
        return false;
    for (size_t i = 0; i < SV_ARRAY_SIZE(groups); i++) {
        for (size_t j = 0; j < groups[i]; j++) {
            const char *q = p + j;
            if (!hexn(&q, 1, false, &v))
                return false;
        }
        p += groups[i];
        if (i + 1 < SV_ARRAY_SIZE(groups) && *p++ != '-')
            return false;
    }
    return *p == '\0';
}

bool sv_iommu_group_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* ---- config space ---- */

int sv_pci_config_has_pcie(const uint8_t *cfg, size_t len)
{
    if (!cfg || len < 0x40)
        return -ENODATA;
    unsigned status = cfg[0x06] | (unsigned)cfg[0x07] << 8;
    if (!(status & PCI_STATUS_CAP_LIST))
        return 0;
    unsigned pos;
    switch (cfg[0x0e] & 0x7f) {
    case 0: /* normal device */
    case 1: /* PCI-to-PCI bridge */
        pos = cfg[0x34];
        break;
    case 2: /* CardBus bridge */
        pos = cfg[0x14];
        break;
    default:
        return 0;
    }
    for (int ttl = PCI_CAP_TTL; ttl > 0; ttl--) {
        pos &= ~3u;
        if (pos < 0x40)
            return 0;
        if (pos + 1 >= len)
            return -ENODATA;
        unsigned id = cfg[pos];
        if (id == 0xff)
            return 0;
        if (id == PCI_CAP_ID_EXP)
            return 1;
        pos = cfg[pos + 1];
    }
    return 0;
}

/* ---- attributes ---- */

/* A "0x..." attribute of at most `max_digits` hex digits. */
static int read_hex(const sv_sysfs *s, const char *rel, size_t max_digits, uint32_t *out,
                    sv_error **err)
{
    _cleanup_free_ char *v = NULL;
    int r = sv_sysfs_read_line(s, rel, &v, err);
    if (r < 0)
        return r;
    size_t n = strlen(v);
    unsigned x = 0;
    const char *p = v + 2;
    if (n < 3 || n > 2 + max_digits || v[0] != '0' || (v[1] != 'x' && v[1] != 'X') ||
        !hexn(&p, n - 2, false, &x)) {
        _cleanup_free_ char *path = sv_sysfs_path(s, rel);
        _cleanup_free_ char *q = sv_quote(v);
        return sv_error_set(err, EINVAL, "%s: %s is not a hex number of at most %zu digits",
                            path ? path : rel, q ? q : "?", max_digits);
    }
    *out = x;
    return 0;
}

static int read_numa_node(const sv_sysfs *s, const char *rel, int *out, sv_error **err)
{
    *out = -1;
    sv_error *e = NULL;
    _cleanup_free_ char *v = NULL;
    int r = sv_sysfs_read_line(s, rel, &v, &e);
    if (r == -ENOENT) { /* no NUMA: the kernel has no such file */
        sv_error_free(e);
        return 0;
    }
    if (r < 0) {
        if (err && !*err)
            *err = e;
        else
            sv_error_free(e);
        return r;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < -1 || n > 65535) {
        _cleanup_free_ char *path = sv_sysfs_path(s, rel);
        _cleanup_free_ char *q = sv_quote(v);
        return sv_error_set(err, EINVAL, "%s: %s is not a NUMA node", path ? path : rel,
                            q ? q : "?");
    }
    *out = (int)n;
    return 0;
}

/* Where `rel` (a symlink such as ".../iommu_group") leads must be
 * kernel/iommu_groups/<group>; *group_out gets the group (may be NULL to
 * only check it equals `want`). */
static int read_group_link(const sv_sysfs *s, const char *rel, const char *want, char **group_out,
                           sv_error **err)
{
    sv_sysfs_walk w;
    int r = sv_sysfs_resolve(s, rel, &w, err);
    if (r < 0)
        return r;
    static const char prefix[] = "kernel/iommu_groups/";
    const char *g =
        strncmp(w.canon, prefix, sizeof(prefix) - 1) == 0 ? w.canon + sizeof(prefix) - 1 : NULL;
    if (!g || !sv_iommu_group_valid(g) || (want && strcmp(g, want) != 0)) {
        _cleanup_free_ char *path = sv_sysfs_path(s, rel), *to = sv_sysfs_path(s, w.canon);
        if (want)
            r = sv_error_set(err, EINVAL, "%s leads to %s, not to IOMMU group %s",
                             path ? path : rel, to ? to : w.canon, want);
        else
            r = sv_error_set(err, EINVAL, "%s leads to %s, not to an IOMMU group",
                             path ? path : rel, to ? to : w.canon);
    } else if (group_out && !(*group_out = strdup(g))) {
        r = oom(err);
    }
    sv_sysfs_walk_clear(&w);
    return r;
}

static __attribute__((format(printf, 1, 2))) char *fmt(const char *f, ...)
{
    char *out = NULL;
    va_list ap;
    va_start(ap, f);
    int n = vasprintf(&out, f, ap);
    va_end(ap);
    return n < 0 ? NULL : out;
}

/* vendor, device, class, numa_node and PCIe-ness of PCI function `bdf`. */
static int pci_props(const sv_sysfs *s, const char *bdf, sv_dev_vfio *d, sv_error **err)
{
    _cleanup_free_ char *base = fmt("bus/pci/devices/%s", bdf);
    _cleanup_free_ char *rv = fmt("%s/vendor", base), *rd = fmt("%s/device", base),
                        *rc = fmt("%s/class", base), *rn = fmt("%s/numa_node", base),
                        *rcfg = fmt("%s/config", base);
    if (!base || !rv || !rd || !rc || !rn || !rcfg)
        return oom(err);
    uint32_t vendor, device, cls;
    int r;
    if ((r = read_hex(s, rv, 4, &vendor, err)) < 0 || (r = read_hex(s, rd, 4, &device, err)) < 0 ||
        (r = read_hex(s, rc, 6, &cls, err)) < 0 ||
        (r = read_numa_node(s, rn, &d->numa_node, err)) < 0)
        return r;
    d->vendor = (uint16_t)vendor;
    d->device = (uint16_t)device;
    d->class_code = cls;
    _cleanup_free_ char *cfg = NULL;
    size_t len = 0, size = 0;
    if ((r = sv_sysfs_read(s, rcfg, SV_SYSFS_READ_MAX, &cfg, &len, &size, err)) < 0)
        return r;
    int pcie = sv_pci_config_has_pcie((const uint8_t *)cfg, len);
    d->pcie = pcie < 0 ? size > PCI_CFG_SPACE_SIZE : pcie == 1;
    return 0;
}

static int add_dev(sv_vfio_group *g, sv_dev_vfio **out, sv_error **err)
{
    sv_dev_vfio *v = realloc(g->devs, (g->n + 1) * sizeof(*v));
    if (!v)
        return oom(err);
    g->devs = v;
    *out = memset(&v[g->n++], 0, sizeof(*v));
    (*out)->numa_node = -1;
    if (!((*out)->group = strdup(g->group)) || !((*out)->devfs = strdup(g->devfs)))
        return oom(err);
    return 0;
}

static int pci_member(const sv_sysfs *s, sv_vfio_group *g, const char *bdf, sv_error **err)
{
    _cleanup_free_ char *link = fmt("bus/pci/devices/%s/iommu_group", bdf);
    if (!link)
        return oom(err);
    int r = read_group_link(s, link, g->group, NULL, err);
    if (r < 0)
        return r;
    sv_dev_vfio d = {.type = SV_DEV_VFIO_PCI, .numa_node = -1};
    if ((r = pci_props(s, bdf, &d, err)) < 0)
        return r;
    unsigned cls = d.class_code >> 8;
    if (cls == PCI_CLASS_BRIDGE_HOST || cls == PCI_CLASS_BRIDGE_PCI) {
        g->n_skipped++;
        return 0;
    }
    sv_dev_vfio *o;
    if ((r = add_dev(g, &o, err)) < 0)
        return r;
    o->type = d.type;
    memcpy(o->bdf, bdf, SV_BDF_LEN);
    o->vendor = d.vendor;
    o->device = d.device;
    o->class_code = d.class_code;
    o->numa_node = d.numa_node;
    o->pcie = d.pcie;
    return 0;
}

static int mdev_member(const sv_sysfs *s, sv_vfio_group *g, const char *uuid, sv_error **err)
{
    _cleanup_free_ char *entry = fmt("kernel/iommu_groups/%s/devices/%s", g->group, uuid),
                        *bus_rel = fmt("bus/mdev/devices/%s", uuid);
    _cleanup_free_ char *link = bus_rel ? fmt("%s/iommu_group", bus_rel) : NULL;
    if (!entry || !bus_rel || !link)
        return oom(err);
    sv_sysfs_walk we, wb;
    int r = sv_sysfs_resolve(s, entry, &we, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *canon = TAKE_PTR(we.canon);
    sv_sysfs_walk_clear(&we);
    if ((r = sv_sysfs_resolve(s, bus_rel, &wb, err)) < 0)
        return r;
    bool same = strcmp(wb.canon, canon) == 0;
    sv_sysfs_walk_clear(&wb);
    if (!same) {
        _cleanup_free_ char *p1 = sv_sysfs_path(s, entry), *p2 = sv_sysfs_path(s, bus_rel);
        return sv_error_set(err, EINVAL, "%s and %s are different devices", p1 ? p1 : entry,
                            p2 ? p2 : bus_rel);
    }
    if ((r = read_group_link(s, link, g->group, NULL, err)) < 0)
        return r;
    sv_dev_vfio d = {.type = SV_DEV_VFIO_PCI_MDEV, .numa_node = -1};
    /* the parent is the directory the mdev lives in: cut the mdev's own
     * name off canon, and the parent's name is what remains last */
    char *slash = strrchr(canon, '/');
    if (slash)
        *slash = '\0';
    const char *parent = strrchr(canon, '/');
    parent = parent ? parent + 1 : canon;
    if (strncmp(canon, "devices/vfio_ap/", 16) == 0 || strcmp(canon, "devices/vfio_ap") == 0) {
        d.type = SV_DEV_VFIO_AP_MDEV;
    } else if (sv_bdf_valid(parent)) {
        memcpy(d.bdf, parent, SV_BDF_LEN);
        if ((r = pci_props(s, d.bdf, &d, err)) < 0)
            return r;
    } else {
        _cleanup_free_ char *p = sv_sysfs_path(s, entry), *q = sv_quote(parent);
        return sv_error_set(err, EINVAL,
                            "%s: mediated device's parent %s is neither a PCI function nor vfio_ap",
                            p ? p : entry, q ? q : "?");
    }
    sv_dev_vfio *o;
    if ((r = add_dev(g, &o, err)) < 0)
        return r;
    o->type = d.type;
    memcpy(o->bdf, d.bdf, SV_BDF_LEN);
    o->vendor = d.vendor;
    o->device = d.device;
    o->class_code = d.class_code;
    o->numa_node = d.numa_node;
    o->pcie = d.pcie;
    if (!(o->sysfsdev = sv_sysfs_path(s, bus_rel)))
        return oom(err);
    return 0;
}

void sv_vfio_group_clear(sv_vfio_group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        sv_dev_vfio_clear(&g->devs[i]);
    free(g->devs);
    free(g->group);
    free(g->devfs);
    memset(g, 0, sizeof(*g));
}

static void vfio_group_clearp(sv_vfio_group *g)
{
    sv_vfio_group_clear(g);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct name_list {
    char **v;
    size_t n;
} name_list;

static void name_list_clear(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* The entries of directory `rel`, sorted. */
static int list_dir(const sv_sysfs *s, const char *rel, name_list *out, sv_error **err)
{
    int fd;
    int r = sv_sysfs_open_dir(s, rel, &fd, err);
    if (r < 0)
        return r;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        _cleanup_free_ char *path = sv_sysfs_path(s, rel);
        return sv_error_errno(err, e, "reading %s", path ? path : rel);
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **v = realloc(out->v, ncap * sizeof(*v));
            if (!v) {
                r = oom(err);
                break;
            }
            out->v = v;
            cap = ncap;
        }
        if (!(out->v[out->n] = strdup(de->d_name))) {
            r = oom(err);
            break;
        }
        out->n++;
    }
    closedir(d);
    if (r < 0)
        name_list_clear(out);
    else if (out->n)
        qsort(out->v, out->n, sizeof(*out->v), compare_names);
    return r;
}

int sv_vfio_group_enumerate(const sv_sysfs *s, const char *group, sv_vfio_group *out,
                            sv_error **err)
{
    memset(out, 0, sizeof(*out));
    if (!sv_iommu_group_valid(group)) {
        _cleanup_free_ char *q = sv_quote(group);
        return sv_error_set(err, EINVAL, "IOMMU group %s: not a group number", q ? q : "?");
    }
    _cleanup_(vfio_group_clearp) sv_vfio_group g = {0};
    _cleanup_free_ char *rel = fmt("kernel/iommu_groups/%s/devices", group);
    if (!rel || !(g.group = strdup(group)) || !(g.devfs = fmt("/dev/vfio/%s", group)))
        return oom(err);
    _cleanup_(name_list_clear) name_list names = {NULL, 0};
    int r = list_dir(s, rel, &names, err);
    if (r < 0) {
        sv_error_prefix(err, "IOMMU group %s", group);
        return r;
    }
    for (size_t i = 0; i < names.n; i++) {
        const char *name = names.v[i];
        if (sv_bdf_valid(name)) {
            r = pci_member(s, &g, name, err);
        } else if (sv_uuid_valid(name)) {
            r = mdev_member(s, &g, name, err);
        } else {
            _cleanup_free_ char *path = sv_sysfs_path(s, rel), *q = sv_quote(name);
            r = sv_error_set(err, EINVAL,
                             "unexpected entry %s in %s: neither a PCI address nor a UUID",
                             q ? q : "?", path ? path : rel);
        }
        if (r < 0) {
            sv_error_prefix(err, "IOMMU group %s", group);
            return r;
        }
    }
    if (g.n == 0)
        return sv_error_set(err, ENOENT,
                            "IOMMU group %s has no device to pass through (%zu bridges skipped)",
                            group, g.n_skipped);
    *out = g;
    memset(&g, 0, sizeof(g));
    return 0;
}

int sv_vfio_group_from_devfs(const char *path, char **group_out, sv_error **err)
{
    *group_out = NULL;
    static const char prefix[] = "/dev/vfio/";
    _cleanup_free_ char *q = sv_quote(path);
    if (!path || strncmp(path, prefix, sizeof(prefix) - 1) != 0)
        return sv_error_set(err, EINVAL, "VFIO device %s: not under /dev/vfio/", q ? q : "?");
    const char *g = path + sizeof(prefix) - 1;
    if (strcmp(g, "vfio") == 0)
        return sv_error_set(err, EINVAL,
                            "VFIO device %s: that is the VFIO container, not an IOMMU group",
                            q ? q : "?");
    if (strncmp(g, "devices/", 8) == 0)
        return sv_error_set(err, EINVAL,
                            "VFIO device %s: IOMMUFD device nodes are not supported; "
                            "give the PCI address instead",
                            q ? q : "?");
    if (!sv_iommu_group_valid(g))
        return sv_error_set(err, EINVAL, "VFIO device %s: not /dev/vfio/<IOMMU group number>",
                            q ? q : "?");
    if (!(*group_out = strdup(g)))
        return oom(err);
    return 0;
}

int sv_vfio_group_of_bdf(const sv_sysfs *s, const char *bdf, char **group_out, sv_error **err)
{
    *group_out = NULL;
    sv_bdf b;
    if (sv_bdf_parse(bdf, false, &b) < 0) {
        _cleanup_free_ char *q = sv_quote(bdf);
        return sv_error_set(err, EINVAL, "PCI address %s: not dddd:bb:dd.f", q ? q : "?");
    }
    char name[SV_BDF_LEN];
    sv_bdf_format(&b, name);
    _cleanup_free_ char *link = fmt("bus/pci/devices/%s/iommu_group", name);
    if (!link)
        return oom(err);
    int r = read_group_link(s, link, NULL, group_out, err);
    if (r < 0)
        sv_error_prefix(err, "PCI device %s", name);
    return r;
}

int sv_vfio_enumerate(const sv_sysfs *s, const char *spec, sv_vfio_group *out, sv_error **err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *group = NULL;
    int r = spec && spec[0] == '/' ? sv_vfio_group_from_devfs(spec, &group, err)
                                   : sv_vfio_group_of_bdf(s, spec, &group, err);
    if (r < 0)
        return r;
    return sv_vfio_group_enumerate(s, group, out, err);
}
