/*
 * Network device: a tap-like host interface (tap, macvtap, ipvtap, vethtap are
 * all a "tap" netdev to QEMU) behind a virtio-net device.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qemu_devices.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

/* Linux IFNAMSIZ - 1. */
#define NET_IFNAME_MAX 15
/* virtio-net: queue pairs must be below VIRTIO_QUEUE_MAX / 2. */
#define NET_MAX_QUEUES 511

static const char *const net_type_names[] = {"tap", "macvtap", "ipvtap", "vethtap", NULL};
_Static_assert(SV_ARRAY_SIZE(net_type_names) == SV__NET_MAX + 1, "net type names");

static const sv_jfield net_fields[] = {
    SV_JENUM(sv_qdev_net, net_type, "net_type", net_type_names),
    SV_JSTR(sv_qdev_net, id, "id"),
    SV_JSTR(sv_qdev_net, if_name, "if_name"),
    SV_JSTR(sv_qdev_net, bus, "bus"),
    SV_JSTR(sv_qdev_net, addr, "addr"),
    SV_JSTR(sv_qdev_net, script, "script"),
    SV_JSTR(sv_qdev_net, down_script, "down_script"),
    SV_JINTV(sv_qdev_net, fds, n_fds, "fds", 3, INT32_MAX),
    SV_JINTV(sv_qdev_net, vhost_fds, n_vhost_fds, "vhost_fds", 3, INT32_MAX),
    SV_JBOOL(sv_qdev_net, vhost, "vhost"),
    SV_JSTR(sv_qdev_net, mac_address, "mac_address"),
    SV_JVIRTIO(sv_qdev_net, v),
    SV_JEND,
};
static const sv_jschema net_schema = {sizeof(sv_qdev_net), net_fields};

/* The kernel's dev_valid_name(): QEMU hands the name to TUNSETIFF as is. */
static int check_ifname(const char *path, const char *value, sv_error **err)
{
    size_t n = strlen(value);
    if (n > NET_IFNAME_MAX)
        return sv_field_error(err, path, "if_name", "is %zu bytes long; at most %d are allowed", n,
                              NET_IFNAME_MAX);
    if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0 || strpbrk(value, "/: \t\n\v\f\r"))
        return sv_field_error(
            err, path, "if_name",
            "is not a valid interface name (no '/', ':' or white space; not \".\" or \"..\")");
    return 0;
}

/* A script QEMU runs for the interface: an absolute path, or "no" for none. */
static int check_script(const char *path, const char *field, const char *value, sv_error **err)
{
    if (!value || strcmp(value, "no") == 0)
        return 0;
    if (!*value || value[0] != '/')
        return sv_field_error(err, path, field, "must be an absolute path or \"no\"");
    return sv_check_abs_path(path, field, value, true, err);
}

static bool fd_listed(const int64_t *fds, size_t n, int64_t fd)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] == fd)
            return true;
    return false;
}

static int check_fd_list(const char *path, const char *field, const int64_t *fds, size_t n,
                         const int64_t *other, size_t n_other, sv_error **err)
{
    if (n > NET_MAX_QUEUES)
        return sv_field_error(err, path, field,
                              "has %zu entries; virtio-net takes at most %d queues", n,
                              NET_MAX_QUEUES);
    for (size_t i = 0; i < n; i++)
        if (fd_listed(fds, i, fds[i]) || fd_listed(other, n_other, fds[i]))
            return sv_field_error(err, path, field, "fd %lld is listed twice", (long long)fds[i]);
    return 0;
}

static int net_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                        sv_error **err)
{
    const sv_qdev_net *d = &dev->u.net;
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if ((r = sv_qdev_virtio_validate(&d->v, cfg, path, err)) < 0)
        return r;
    bool has_ifname = d->if_name && *d->if_name;
    if (has_ifname && d->n_fds > 0)
        return sv_field_error(err, path, "fds",
                              "cannot be combined with if_name (give one of them)");
    if (!has_ifname && d->n_fds == 0) {
        if (d->net_type == SV_NET_MACVTAP || d->net_type == SV_NET_IPVTAP)
            return sv_field_error(err, path, "fds",
                                  "is required for a %s interface: QEMU cannot open it by name",
                                  net_type_names[d->net_type]);
        return sv_field_error(err, path, "if_name", "is required unless fds are given");
    }
    if (has_ifname && (d->net_type == SV_NET_MACVTAP || d->net_type == SV_NET_IPVTAP))
        return sv_field_error(
            err, path, "if_name",
            "cannot be used with a %s interface: QEMU cannot open it by name; pass fds",
            net_type_names[d->net_type]);
    if (has_ifname && (r = check_ifname(path, d->if_name, err)) < 0)
        return r;
    for (size_t i = 0; has_ifname && i < cfg->n_devices && &cfg->devices[i] != dev; i++) {
        const sv_qdev *o = &cfg->devices[i];
        if (o->type == SV_QDEV_NET && o->u.net.if_name && strcmp(o->u.net.if_name, d->if_name) == 0)
            return sv_field_error(err, path, "if_name",
                                  "\"%s\" is already the interface of devices[%zu]: QEMU "
                                  "cannot open one tap for two netdevs (\"Device or resource "
                                  "busy\")",
                                  d->if_name, i);
    }
    if (!has_ifname && d->script)
        return sv_field_error(err, path, "script",
                              "only applies with if_name (QEMU runs no script for fds)");
    if (!has_ifname && d->down_script)
        return sv_field_error(err, path, "down_script",
                              "only applies with if_name (QEMU runs no script for fds)");
    if ((r = check_script(path, "script", d->script, err)) < 0 ||
        (r = check_script(path, "down_script", d->down_script, err)) < 0)
        return r;
    if ((r = check_fd_list(path, "fds", d->fds, d->n_fds, NULL, 0, err)) < 0 ||
        (r = check_fd_list(path, "vhost_fds", d->vhost_fds, d->n_vhost_fds, d->fds, d->n_fds,
                           err)) < 0)
        return r;
    if (d->n_vhost_fds > 0) {
        if (!d->vhost)
            return sv_field_error(err, path, "vhost_fds", "requires \"vhost\": true");
        if (d->n_fds == 0)
            return sv_field_error(err, path, "vhost_fds",
                                  "requires fds (QEMU takes vhostfds only with fds)");
        if (d->n_vhost_fds != d->n_fds)
            return sv_field_error(err, path, "vhost_fds",
                                  "has %zu entries but fds has %zu; they must match",
                                  d->n_vhost_fds, d->n_fds);
    }
    if (d->mac_address && (r = sv_check_mac(path, "mac_address", d->mac_address, err)) < 0)
        return r;
    if (d->bus && (r = sv_check_required(path, "bus", d->bus, err)) < 0)
        return r;
    if (d->addr) {
        if (sv_qemu_config_transport(cfg, d->v.transport) != SV_QT_PCI)
            return sv_field_error(err, path, "addr", "only applies to the pci transport");
        if ((r = sv_check_pci_addr(path, "addr", d->addr, err)) < 0)
            return r;
    }
    return 0;
}

sv_qopts *sv_qdev_net_props(const sv_qdev_net *d, const sv_qemu_config *cfg)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    sv_qopts *o = sv_qdev_virtio_new("virtio-net", t);
    if (!o)
        return NULL;
    sv_qopts_str(o, "netdev", d->id);
    sv_qopts_str(o, "mac", d->mac_address);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    if (d->n_fds > 1) {
        sv_qopts_bool(o, "mq", true);
        /* One vector per rx and tx queue, one for config, one for control. */
        if (t == SV_QT_PCI)
            sv_qopts_int(o, "vectors", 2 * (int64_t)d->n_fds + 2);
    }
    sv_qdev_virtio_common(o, &d->v, t, cfg);
    return o;
}

/* Passes each fd to the child and returns their child numbers joined by ':'. */
static char *pass_fds(sv_argv *a, const int64_t *fds, size_t n)
{
    _cleanup_strbuf_ sv_strbuf sb = SV_STRBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        int child = sv_argv_pass_fd(a, (int)fds[i]);
        if (child < 0)
            return NULL;
        sv_strbuf_appendf(&sb, "%s%d", i ? ":" : "", child);
    }
    char *s = sv_strbuf_steal(&sb);
    if (!s)
        sv_argv_fail(a, ENOMEM, "out of memory building the command line");
    return s;
}

static sv_qopts *netdev_opts(const sv_qdev_net *d, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("type", "tap");
    if (!o)
        return NULL;
    sv_qopts_str(o, "id", d->id);
    if (d->vhost)
        sv_qopts_bool(o, "vhost", true);
    if (d->n_vhost_fds > 0) {
        _cleanup_free_ char *vhostfds = pass_fds(a, d->vhost_fds, d->n_vhost_fds);
        if (!vhostfds)
            return NULL;
        sv_qopts_str(o, "vhostfds", vhostfds);
    }
    if (d->n_fds > 0) {
        _cleanup_free_ char *fds = pass_fds(a, d->fds, d->n_fds);
        if (!fds)
            return NULL;
        sv_qopts_str(o, "fds", fds);
    } else {
        sv_qopts_str(o, "ifname", d->if_name);
        /* QEMU runs /etc/qemu-ifup and -ifdown unless told "no". */
        sv_qopts_str(o, "script", d->script ? d->script : "no");
        sv_qopts_str(o, "downscript", d->down_script ? d->down_script : "no");
    }
    return TAKE_PTR(o);
}

static void net_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qdev_net *d = &dev->u.net;
    _cleanup_qopts_ sv_qopts *netdev = netdev_opts(d, a);
    if (!netdev) {
        sv_argv_fail(a, ENOMEM, "out of memory building the command line");
        return;
    }
    sv_argv_add_qopts(a, "-netdev", netdev);
    _cleanup_qopts_ sv_qopts *o = sv_qdev_net_props(d, cfg);
    sv_qdev_add_device(a, o);
}

static void net_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_net *d = &dev->u.net;
    sv_qdev_desc_id(out, SV_QNS_NETDEV, d->id, "id");
    sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
}

const sv_qdev_ops sv_qdev_net_ops = {"net", &net_schema, net_validate, net_append, net_describe};
