#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "util/cleanup.h"

static const char *const kind_names[] = {
    [SV_DEV_BLOCK] = "block",
    [SV_DEV_NET] = "net",
    [SV_DEV_VFIO] = "vfio",
    [SV_DEV_VHOST_USER] = "vhost-user",
    [SV_DEV_SHARED_DIR] = "shared-dir",
    [SV_DEV_RNG] = "rng",
    [SV_DEV_CONSOLE] = "console",
    [SV_DEV_VSOCK] = "vsock",
};
_Static_assert(SV_ARRAY_SIZE(kind_names) == SV__DEV_MAX, "kind_names");

static const char *const block_driver_names[] = {
    [SV_DEV_BLOCK_VIRTIO_SCSI] = "virtio-scsi",       [SV_DEV_BLOCK_VIRTIO_BLK] = "virtio-blk",
    [SV_DEV_BLOCK_VIRTIO_BLK_CCW] = "virtio-blk-ccw", [SV_DEV_BLOCK_NVDIMM] = "nvdimm",
    [SV_DEV_BLOCK_VIRTIO_MMIO] = "virtio-mmio",
};
_Static_assert(SV_ARRAY_SIZE(block_driver_names) == SV__DEV_BLOCK_MAX, "block_driver_names");

static const char *const net_kind_names[] = {
    [SV_DEV_NET_TAP] = "tap",
    [SV_DEV_NET_MACVTAP] = "macvtap",
};
_Static_assert(SV_ARRAY_SIZE(net_kind_names) == SV__DEV_NET_MAX, "net_kind_names");

static const char *const vfio_type_names[] = {
    [SV_DEV_VFIO_PCI] = "pci",
    [SV_DEV_VFIO_PCI_MDEV] = "pci-mdev",
    [SV_DEV_VFIO_AP_MDEV] = "ap-mdev",
};
_Static_assert(SV_ARRAY_SIZE(vfio_type_names) == SV__DEV_VFIO_MAX, "vfio_type_names");

static const char *const vhost_user_type_names[] = {
    [SV_DEV_VHOST_USER_NET] = "net",
    [SV_DEV_VHOST_USER_BLK] = "blk",
    [SV_DEV_VHOST_USER_SCSI] = "scsi",
    [SV_DEV_VHOST_USER_FS] = "fs",
};
_Static_assert(SV_ARRAY_SIZE(vhost_user_type_names) == SV__DEV_VHOST_USER_MAX,
               "vhost_user_type_names");

static const char *const shared_kind_names[] = {
    [SV_DEV_SHARED_VIRTIO_FS] = "virtio-fs",
    [SV_DEV_SHARED_9P] = "virtio-9p",
};
_Static_assert(SV_ARRAY_SIZE(shared_kind_names) == SV__DEV_SHARED_MAX, "shared_kind_names");

static const char *const console_kind_names[] = {
    [SV_DEV_CONSOLE_VIRTIO] = "virtio",
    [SV_DEV_CONSOLE_SERIAL] = "serial",
};
_Static_assert(SV_ARRAY_SIZE(console_kind_names) == SV__DEV_CONSOLE_MAX, "console_kind_names");

static const char *name_of(const char *const *table, size_t n, int v)
{
    return v >= 0 && (size_t)v < n ? table[v] : NULL;
}

static int value_of(const char *const *table, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(table[i], name) == 0)
            return (int)i;
    return -1;
}

#define NAME_OF(t, v) name_of(t, SV_ARRAY_SIZE(t), v)

const char *sv_dev_kind_name(int kind)
{
    return NAME_OF(kind_names, kind);
}

const char *sv_dev_block_driver_name(int driver)
{
    return NAME_OF(block_driver_names, driver);
}

const char *sv_dev_net_kind_name(int kind)
{
    return NAME_OF(net_kind_names, kind);
}

const char *sv_dev_vfio_type_name(int type)
{
    return NAME_OF(vfio_type_names, type);
}

const char *sv_dev_vhost_user_type_name(int type)
{
    return NAME_OF(vhost_user_type_names, type);
}

const char *sv_dev_shared_kind_name(int kind)
{
    return NAME_OF(shared_kind_names, kind);
}

const char *sv_dev_console_kind_name(int kind)
{
    return NAME_OF(console_kind_names, kind);
}

int sv_dev_block_driver_from_name(const char *name)
{
    return value_of(block_driver_names, SV_ARRAY_SIZE(block_driver_names), name);
}

int sv_dev_vhost_user_type_from_name(const char *name)
{
    return value_of(vhost_user_type_names, SV_ARRAY_SIZE(vhost_user_type_names), name);
}

void sv_dev_info_clear(sv_dev_info *d)
{
    if (!d)
        return;
    free(d->host_path);
    free(d->container_path);
    memset(d, 0, sizeof(*d));
}

void sv_dev_guest_addr_clear(sv_dev_guest_addr *a)
{
    if (!a)
        return;
    free(a->bus);
    free(a->addr);
    free(a->pci_path);
    free(a->scsi_addr);
    free(a->ccw_devno);
    memset(a, 0, sizeof(*a));
}

void sv_dev_block_clear(sv_dev_block *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->path);
    free(d->format);
    sv_dev_guest_addr_clear(&d->guest);
    memset(d, 0, sizeof(*d));
}

void sv_dev_net_clear(sv_dev_net *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->name);
    free(d->mac);
    free(d->fds);
    free(d->vhost_fds);
    sv_dev_guest_addr_clear(&d->guest);
    memset(d, 0, sizeof(*d));
}

void sv_dev_vfio_clear(sv_dev_vfio *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->sysfsdev);
    free(d->devfs);
    free(d->group);
    free(d->port_bus);
    sv_dev_guest_addr_clear(&d->guest);
    memset(d, 0, sizeof(*d));
}

void sv_dev_vhost_user_clear(sv_dev_vhost_user *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->socket_path);
    free(d->mac);
    free(d->tag);
    free(d->cache);
    sv_dev_guest_addr_clear(&d->guest);
    memset(d, 0, sizeof(*d));
}

void sv_dev_shared_dir_clear(sv_dev_shared_dir *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->path);
    free(d->tag);
    free(d->cache);
    sv_dev_guest_addr_clear(&d->guest);
    memset(d, 0, sizeof(*d));
}

void sv_dev_rng_clear(sv_dev_rng *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->filename);
    memset(d, 0, sizeof(*d));
}

void sv_dev_console_clear(sv_dev_console *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->socket_path);
    memset(d, 0, sizeof(*d));
}

void sv_dev_vsock_clear(sv_dev_vsock *d)
{
    if (!d)
        return;
    free(d->id);
    sv_dev_guest_addr_clear(&d->guest);
    memset(d, 0, sizeof(*d));
}

void sv_device_clear(sv_device *d)
{
    if (!d)
        return;
    switch ((sv_dev_kind)d->kind) {
    case SV_DEV_BLOCK:
        sv_dev_block_clear(&d->u.block);
        break;
    case SV_DEV_NET:
        sv_dev_net_clear(&d->u.net);
        break;
    case SV_DEV_VFIO:
        sv_dev_vfio_clear(&d->u.vfio);
        break;
    case SV_DEV_VHOST_USER:
        sv_dev_vhost_user_clear(&d->u.vhost_user);
        break;
    case SV_DEV_SHARED_DIR:
        sv_dev_shared_dir_clear(&d->u.shared_dir);
        break;
    case SV_DEV_RNG:
        sv_dev_rng_clear(&d->u.rng);
        break;
    case SV_DEV_CONSOLE:
        sv_dev_console_clear(&d->u.console);
        break;
    case SV_DEV_VSOCK:
        sv_dev_vsock_clear(&d->u.vsock);
        break;
    case SV__DEV_MAX:
        break;
    }
}
