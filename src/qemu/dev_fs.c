/*
 * Shared file systems and vhost-user devices: a 9p export (`fs`: -fsdev +
 * virtio-9p) and a device whose backend runs in another process behind a
 * vhost-user socket (`vhost_user`: net, scsi, blk, fs).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "qemu/qemu_devices.h"
#include "util/cleanup.h"

/* virtio-9p: QEMU's MAX_TAG_LEN is 32 including the NUL. */
#define FS_MOUNT_TAG_MAX 31
/* vhost-user-fs: sizeof(struct virtio_fs_config.tag). */
#define VU_FS_TAG_MAX 36
/* VIRTQUEUE_MAX_SIZE */
#define VU_QUEUE_SIZE_MAX 1024
/* VIRTIO_QUEUE_MAX - 1 */
#define VU_NUM_QUEUES_MAX 1023
/* sizeof(sockaddr_un.sun_path) - 1 */
#define UNIX_PATH_MAX_LEN 107

static int check_pci_only_addr(const sv_qemu_config *cfg, const sv_qvirtio *v, const char *path,
                               const char *addr, sv_error **err)
{
    if (!addr)
        return 0;
    if (sv_qemu_config_transport(cfg, v->transport) != SV_QT_PCI)
        return sv_field_error(err, path, "addr", "only applies to the pci transport");
    return sv_check_pci_addr(path, "addr", addr, err);
}

static int check_max_len(const char *path, const char *field, const char *value, size_t max,
                         sv_error **err)
{
    size_t n = strlen(value);
    if (n > max)
        return sv_field_error(err, path, field, "is %zu bytes long; QEMU takes at most %zu", n,
                              max);
    return 0;
}

static int check_socket_path(const char *path, const char *field, const char *value, sv_error **err)
{
    int r = sv_check_abs_path(path, field, value, true, err);
    if (r < 0)
        return r;
    if (strlen(value) > UNIX_PATH_MAX_LEN)
        return sv_field_error(err, path, field,
                              "is longer than %d bytes, the limit for a unix socket",
                              UNIX_PATH_MAX_LEN);
    return 0;
}

/* ---- fs: virtio-9p ---- */

static const char *const fs_driver_names[] = {"local", "proxy", "synth", NULL};
_Static_assert(SV_ARRAY_SIZE(fs_driver_names) == SV__FSDRV_MAX + 1, "fs driver names");

static const char *const security_model_names[] = {"none", "passthrough", "mapped-xattr",
                                                   "mapped-file", NULL};
_Static_assert(SV_ARRAY_SIZE(security_model_names) == SV__SM_MAX + 1, "security model names");

static const char *const multidev_names[] = {"", "remap", "forbid", "warn", NULL};
_Static_assert(SV_ARRAY_SIZE(multidev_names) == SV__MD_MAX + 1, "multidev names");

static const sv_jfield fs_fields[] = {
    SV_JENUM(sv_qdev_fs, fs_driver, "fs_driver", fs_driver_names),
    SV_JENUM(sv_qdev_fs, security_model, "security_model", security_model_names),
    SV_JENUM(sv_qdev_fs, multidev, "multidev", multidev_names),
    SV_JSTR(sv_qdev_fs, id, "id"),
    SV_JSTR(sv_qdev_fs, path, "path"),
    SV_JSTR(sv_qdev_fs, mount_tag, "mount_tag"),
    SV_JSTR(sv_qdev_fs, bus, "bus"),
    SV_JSTR(sv_qdev_fs, addr, "addr"),
    SV_JBOOL(sv_qdev_fs, read_only, "read_only"),
    SV_JVIRTIO(sv_qdev_fs, v),
    SV_JEND,
};
static const sv_jschema fs_schema = {sizeof(sv_qdev_fs), fs_fields};

static int fs_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                       sv_error **err)
{
    const sv_qdev_fs *d = &dev->u.fs;
    const char *drv = fs_driver_names[d->fs_driver];
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if ((r = sv_qdev_virtio_validate(&d->v, cfg, path, err)) < 0)
        return r;
    if ((r = sv_check_required(path, "mount_tag", d->mount_tag, err)) < 0 ||
        (r = check_max_len(path, "mount_tag", d->mount_tag, FS_MOUNT_TAG_MAX, err)) < 0)
        return r;
    switch ((sv_fs_driver)d->fs_driver) {
    case SV_FSDRV_LOCAL:
        /* path: the exported directory. */
        if ((r = sv_check_abs_path(path, "path", d->path, true, err)) < 0)
            return r;
        break;
    case SV_FSDRV_PROXY:
        /* path: the virtfs-proxy-helper socket. */
        if ((r = check_socket_path(path, "path", d->path, err)) < 0)
            return r;
        /* fall through */
    case SV_FSDRV_SYNTH:
        if (d->fs_driver == SV_FSDRV_SYNTH && d->path)
            return sv_field_error(err, path, "path", "does not apply to fs_driver %s", drv);
        if (d->security_model != SV_SM_NONE)
            return sv_field_error(err, path, "security_model", "does not apply to fs_driver %s",
                                  drv);
        if (d->multidev != SV_MD_DEFAULT)
            return sv_field_error(err, path, "multidev", "does not apply to fs_driver %s", drv);
        break;
    case SV__FSDRV_MAX:
        return sv_field_error(err, path, "fs_driver", "unknown driver");
    }
    if (d->bus && (r = sv_check_required(path, "bus", d->bus, err)) < 0)
        return r;
    return check_pci_only_addr(cfg, &d->v, path, d->addr, err);
}

static sv_qopts *fs_props(const sv_qdev_fs *d, const sv_qemu_config *cfg)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    sv_qopts *o = sv_qdev_virtio_new("virtio-9p", t);
    if (!o)
        return NULL;
    sv_qopts_str(o, "fsdev", d->id);
    sv_qopts_str(o, "mount_tag", d->mount_tag);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    sv_qdev_virtio_common(o, &d->v, t, cfg);
    return o;
}

static void fs_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qdev_fs *d = &dev->u.fs;
    _cleanup_qopts_ sv_qopts *fsdev = sv_qopts_new("fsdriver", fs_driver_names[d->fs_driver]);
    sv_qopts_str(fsdev, "id", d->id);
    switch ((sv_fs_driver)d->fs_driver) {
    case SV_FSDRV_LOCAL:
        sv_qopts_str(fsdev, "path", d->path);
        sv_qopts_str(fsdev, "security_model", security_model_names[d->security_model]);
        if (d->multidev != SV_MD_DEFAULT)
            sv_qopts_str(fsdev, "multidevs", multidev_names[d->multidev]);
        break;
    case SV_FSDRV_PROXY:
        sv_qopts_str(fsdev, "socket", d->path);
        break;
    case SV_FSDRV_SYNTH:
    case SV__FSDRV_MAX:
        break;
    }
    if (d->read_only)
        sv_qopts_bool(fsdev, "readonly", true);
    sv_argv_add_qopts(a, "-fsdev", fsdev);
    _cleanup_qopts_ sv_qopts *o = fs_props(d, cfg);
    sv_qdev_add_device(a, o);
}

static void fs_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_fs *d = &dev->u.fs;
    sv_qdev_desc_id(out, SV_QNS_FSDEV, d->id, "id");
    sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
}

const sv_qdev_ops sv_qdev_fs_ops = {"fs", &fs_schema, fs_validate, fs_append, fs_describe};

/* ---- vhost_user ---- */

static const char *const vu_type_names[] = {"net", "scsi", "blk", "fs", NULL};
_Static_assert(SV_ARRAY_SIZE(vu_type_names) == SV__VU_MAX + 1, "vhost-user type names");

static const sv_jfield vu_fields[] = {
    SV_JENUM(sv_qdev_vhost_user, vhost_user_type, "vhost_user_type", vu_type_names),
    SV_JSTR(sv_qdev_vhost_user, socket_path, "socket_path"),
    SV_JSTR(sv_qdev_vhost_user, char_dev_id, "char_dev_id"),
    SV_JSTR(sv_qdev_vhost_user, type_dev_id, "type_dev_id"),
    SV_JSTR(sv_qdev_vhost_user, address, "address"),
    SV_JSTR(sv_qdev_vhost_user, tag, "tag"),
    SV_JSTR(sv_qdev_vhost_user, bus, "bus"),
    SV_JSTR(sv_qdev_vhost_user, addr, "addr"),
    SV_JINT(sv_qdev_vhost_user, cache_size, "cache_size", 0, 1 << 20),
    SV_JBOOL(sv_qdev_vhost_user, shared_versions, "shared_versions"),
    SV_JINT(sv_qdev_vhost_user, queue_size, "queue_size", 0, VU_QUEUE_SIZE_MAX),
    SV_JINT(sv_qdev_vhost_user, num_queues, "num_queues", 0, VU_NUM_QUEUES_MAX),
    SV_JVIRTIO(sv_qdev_vhost_user, v),
    SV_JEND,
};
static const sv_jschema vu_schema = {sizeof(sv_qdev_vhost_user), vu_fields};

/* The backend maps guest RAM, so it must be shared (memory-backend share=on). */
static bool config_shares_memory(const sv_qemu_config *cfg)
{
    if (cfg->knobs.mem_shared && cfg->memory.size)
        return true;
    for (size_t i = 0; i < cfg->n_devices; i++)
        if (cfg->devices[i].type == SV_QDEV_MEMORY_BACKEND &&
            cfg->devices[i].u.memory_backend.share)
            return true;
    return false;
}

static bool is_pow2(int64_t n)
{
    return n > 0 && (n & (n - 1)) == 0;
}

static int vu_check_unused(const sv_qdev_vhost_user *d, const char *path, sv_error **err)
{
    const char *type = vu_type_names[d->vhost_user_type];
    bool net = d->vhost_user_type == SV_VU_NET, fs = d->vhost_user_type == SV_VU_FS;
    bool blk = d->vhost_user_type == SV_VU_BLK;
    if (d->address && !net)
        return sv_field_error(err, path, "address", "only applies to vhost_user_type net (not %s)",
                              type);
    if (d->tag && !fs)
        return sv_field_error(err, path, "tag", "only applies to vhost_user_type fs (not %s)",
                              type);
    if (d->cache_size && !fs)
        return sv_field_error(err, path, "cache_size",
                              "only applies to vhost_user_type fs (not %s)", type);
    if (d->queue_size && !fs && !blk)
        return sv_field_error(err, path, "queue_size",
                              "only applies to vhost_user_type blk and fs (not %s)", type);
    if (d->num_queues && !fs && !blk)
        return sv_field_error(err, path, "num_queues",
                              "only applies to vhost_user_type blk and fs (not %s)", type);
    return 0;
}

static int vu_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                       sv_error **err)
{
    const sv_qdev_vhost_user *d = &dev->u.vhost_user;
    const char *type = vu_type_names[d->vhost_user_type];
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    int r;
    if ((r = check_socket_path(path, "socket_path", d->socket_path, err)) < 0)
        return r;
    if ((r = sv_check_id(path, "char_dev_id", d->char_dev_id, true, err)) < 0)
        return r;
    if ((r = sv_qdev_virtio_validate(&d->v, cfg, path, err)) < 0)
        return r;
    if ((r = vu_check_unused(d, path, err)) < 0)
        return r;
    if (d->shared_versions)
        return sv_field_error(err, path, "shared_versions",
                              "is not supported: QEMU has no versiontable property (it was in a "
                              "Kata-only virtio-fs branch)");
    bool type_dev_id_required = false;
    switch ((sv_vhost_user_type)d->vhost_user_type) {
    case SV_VU_NET:
        type_dev_id_required = true;
        if ((r = sv_check_required(path, "address", d->address, err)) < 0 ||
            (r = sv_check_mac(path, "address", d->address, err)) < 0)
            return r;
        break;
    case SV_VU_SCSI:
        type_dev_id_required = true;
        /* fall through */
    case SV_VU_BLK:
        if (t == SV_QT_CCW)
            return sv_field_error(err, path, "transport",
                                  "QEMU has no vhost-user-%s device for the ccw transport", type);
        break;
    case SV_VU_FS:
        if ((r = sv_check_required(path, "tag", d->tag, err)) < 0 ||
            (r = check_max_len(path, "tag", d->tag, VU_FS_TAG_MAX, err)) < 0)
            return r;
        if (d->queue_size && !is_pow2(d->queue_size))
            return sv_field_error(err, path, "queue_size", "must be a power of 2");
        if (d->v.disable_modern)
            return sv_field_error(err, path, "disable_modern",
                                  "does not apply to vhost-user-fs (a virtio 1.0 only device)");
        break;
    case SV__VU_MAX:
        return sv_field_error(err, path, "vhost_user_type", "unknown type");
    }
    if ((r = sv_check_id(path, "type_dev_id", d->type_dev_id, type_dev_id_required, err)) < 0)
        return r;
    if (d->bus && (r = sv_check_required(path, "bus", d->bus, err)) < 0)
        return r;
    if ((r = check_pci_only_addr(cfg, &d->v, path, d->addr, err)) < 0)
        return r;
    if (!config_shares_memory(cfg))
        return sv_field_error(err, path, "",
                              "vhost-user needs shared guest memory: set knobs.mem_shared "
                              "(with memory.size) or a memory_backend with share");
    return 0;
}

/* vhost-user-blk and -scsi exist as "<base>-pci" and as the bare virtio-mmio
 * device "<base>"; only vhost-user-fs has a "-device" and a "-ccw" form. */
static sv_qopts *vu_device_new(const char *base, int transport, bool bare_mmio)
{
    if (transport == SV_QT_MMIO && bare_mmio)
        return sv_qopts_new("driver", base);
    return sv_qdev_virtio_new(base, transport);
}

sv_qopts *sv_qdev_vhost_user_props(const sv_qdev_vhost_user *d, const sv_qemu_config *cfg)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    _cleanup_qopts_ sv_qopts *o = NULL;
    switch ((sv_vhost_user_type)d->vhost_user_type) {
    case SV_VU_NET:
        if (!(o = sv_qdev_virtio_new("virtio-net", t)))
            return NULL;
        sv_qopts_str(o, "netdev", d->type_dev_id);
        sv_qopts_str(o, "mac", d->address);
        break;
    case SV_VU_SCSI:
        if (!(o = vu_device_new("vhost-user-scsi", t, true)))
            return NULL;
        sv_qopts_str(o, "id", d->type_dev_id);
        sv_qopts_str(o, "chardev", d->char_dev_id);
        break;
    case SV_VU_BLK:
        if (!(o = vu_device_new("vhost-user-blk", t, true)))
            return NULL;
        sv_qopts_str(o, "chardev", d->char_dev_id);
        if (d->num_queues)
            sv_qopts_int(o, "num-queues", d->num_queues);
        if (d->queue_size)
            sv_qopts_int(o, "queue-size", d->queue_size);
        sv_qopts_str(o, "id", d->type_dev_id);
        break;
    case SV_VU_FS:
        if (!(o = vu_device_new("vhost-user-fs", t, false)))
            return NULL;
        sv_qopts_str(o, "chardev", d->char_dev_id);
        sv_qopts_str(o, "tag", d->tag);
        if (d->queue_size)
            sv_qopts_int(o, "queue-size", d->queue_size);
        if (d->num_queues)
            sv_qopts_int(o, "num-request-queues", d->num_queues);
        if (d->cache_size) {
            /* The DAX window: only QEMU builds carrying the virtio-fs DAX patches have it. */
            char size[32];
            snprintf(size, sizeof(size), "%lldM", (long long)d->cache_size);
            sv_qopts_str(o, "cache-size", size);
        }
        sv_qopts_str(o, "id", d->type_dev_id);
        break;
    case SV__VU_MAX:
        return NULL;
    }
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    sv_qdev_virtio_common(o, &d->v, t, cfg);
    return TAKE_PTR(o);
}

static void vu_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qdev_vhost_user *d = &dev->u.vhost_user;
    /* QEMU connects to the backend's socket (client mode). */
    _cleanup_qopts_ sv_qopts *chr = sv_qopts_new("backend", "socket");
    sv_qopts_str(chr, "id", d->char_dev_id);
    sv_qopts_str(chr, "path", d->socket_path);
    sv_argv_add_qopts(a, "-chardev", chr);
    if (d->vhost_user_type == SV_VU_NET) {
        _cleanup_qopts_ sv_qopts *netdev = sv_qopts_new("type", "vhost-user");
        sv_qopts_str(netdev, "id", d->type_dev_id);
        sv_qopts_str(netdev, "chardev", d->char_dev_id);
        sv_argv_add_qopts(a, "-netdev", netdev);
    }
    _cleanup_qopts_ sv_qopts *o = sv_qdev_vhost_user_props(d, cfg);
    sv_qdev_add_device(a, o);
}

static void vu_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_vhost_user *d = &dev->u.vhost_user;
    sv_qdev_desc_id(out, SV_QNS_CHARDEV, d->char_dev_id, "char_dev_id");
    /* net: type_dev_id names the -netdev (the -device has no id). */
    sv_qdev_desc_id(out, d->vhost_user_type == SV_VU_NET ? SV_QNS_NETDEV : SV_QNS_DEVICE,
                    d->type_dev_id, "type_dev_id");
    sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
}

const sv_qdev_ops sv_qdev_vhost_user_ops = {"vhost_user", &vu_schema, vu_validate, vu_append,
                                           vu_describe};
