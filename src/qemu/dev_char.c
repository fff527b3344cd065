/*
 * Character devices: host chardev backends (`char`), the ports they feed
 * (virtconsole, virtserialport, a legacy serial port), the virtio-serial
 * controller those ports sit on (`serial`) and `legacy_serial`, which wires an
 * existing chardev to an emulated UART.
 */
#include <errno.h>
#include <string.h>

#include "qemu/qemu_devices.h"
#include "util/cleanup.h"

/* virtio-serial: ports are limited by VIRTIO_QUEUE_MAX / 2 - 1. */
#define SERIAL_MAX_PORTS 511

/* sizeof(sockaddr_un.sun_path) - 1 */
#define UNIX_PATH_MAX_LEN 107

/* The `char` device with chardev id `id` (legacy_serial points at one), or NULL. */
static const sv_qdev_char *config_find_chardev(const sv_qemu_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *d = &cfg->devices[i];
        if (d->type == SV_QDEV_CHAR && d->u.chr.id && strcmp(d->u.chr.id, id) == 0)
            return &d->u.chr;
    }
    return NULL;
}

static const char *const char_driver_names[] = {"virtconsole", "virtserialport", "serial", "none",
                                                NULL};
_Static_assert(SV_ARRAY_SIZE(char_driver_names) == SV__CHARDRV_MAX + 1, "char driver names");

/* ---- legacy_serial ---- */

static const sv_jfield legacy_serial_fields[] = {
    SV_JSTR(sv_qdev_legacy_serial, chardev, "chardev"),
    SV_JEND,
};
static const sv_jschema legacy_serial_schema = {sizeof(sv_qdev_legacy_serial),
                                                legacy_serial_fields};

static int legacy_serial_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                                  sv_error **err)
{
    const sv_qdev_legacy_serial *d = &dev->u.legacy_serial;
    int r = sv_check_id(path, "chardev", d->chardev, true, err);
    if (r < 0)
        return r;
    const sv_qdev_char *chr = config_find_chardev(cfg, d->chardev);
    if (!chr)
        return sv_field_error(err, path, "chardev", "no device of type \"char\" has the id \"%s\"",
                              d->chardev);
    /* A chardev takes one frontend; QEMU refuses a second ("is in use"). */
    if (chr->driver != SV_CHARDRV_NONE)
        return sv_field_error(
            err, path, "chardev",
            "char device \"%s\" already feeds its own %s; give it \"driver\": \"none\"", d->chardev,
            char_driver_names[chr->driver]);
    return 0;
}

static void legacy_serial_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    /* The id is validated (letters, digits, '-', '.', '_'), so nothing needs escaping. */
    sv_argv_add_pair_fmt(a, "-serial", "chardev:%s", dev->u.legacy_serial.chardev);
}

const sv_qdev_ops sv_qdev_legacy_serial_ops = {"legacy_serial", &legacy_serial_schema,
                                               legacy_serial_validate, legacy_serial_append, NULL};

/* ---- serial: the virtio-serial controller ---- */

static const sv_jfield serial_fields[] = {
    SV_JSTR(sv_qdev_serial, id, "id"),
    SV_JSTR(sv_qdev_serial, bus, "bus"),
    SV_JSTR(sv_qdev_serial, addr, "addr"),
    SV_JINT(sv_qdev_serial, max_ports, "max_ports", 0, SERIAL_MAX_PORTS),
    SV_JVIRTIO(sv_qdev_serial, v),
    SV_JEND,
};
static const sv_jschema serial_schema = {sizeof(sv_qdev_serial), serial_fields};

static int serial_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                           sv_error **err)
{
    const sv_qdev_serial *d = &dev->u.serial;
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if ((r = sv_qdev_virtio_validate(&d->v, cfg, path, err)) < 0)
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

static sv_qopts *serial_props(const sv_qdev_serial *d, const sv_qemu_config *cfg)
{
    int t = sv_qemu_config_transport(cfg, d->v.transport);
    sv_qopts *o = sv_qdev_virtio_new("virtio-serial", t);
    if (!o)
        return NULL;
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "addr", d->addr);
    if (d->max_ports > 0)
        sv_qopts_int(o, "max_ports", d->max_ports);
    sv_qdev_virtio_common(o, &d->v, t, cfg);
    return o;
}

static void serial_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = serial_props(&dev->u.serial, cfg);
    sv_qdev_add_device(a, o);
}

static void serial_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_serial *d = &dev->u.serial;
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->id, "id");
    sv_qdev_desc_virtio(out, &d->v, cfg, d->bus, d->addr);
    out->provides = SV_QBUS_VIRTIO_SERIAL;
    out->provides_id = d->id;
}

const sv_qdev_ops sv_qdev_serial_ops = {"serial", &serial_schema, serial_validate, serial_append,
                                        serial_describe};

/* ---- char: a chardev and the port it feeds ---- */

static const char *const char_backend_names[] = {"socket", "pty", "file", "stdio", "pipe",
                                                 "serial", "tty", "null", NULL};
_Static_assert(SV_ARRAY_SIZE(char_backend_names) == SV__CHAR_MAX + 1, "char backend names");

static const sv_jfield char_fields[] = {
    SV_JENUM(sv_qdev_char, backend, "backend", char_backend_names),
    SV_JENUM(sv_qdev_char, driver, "driver", char_driver_names),
    SV_JSTR(sv_qdev_char, id, "id"),
    SV_JSTR(sv_qdev_char, device_id, "device_id"),
    SV_JSTR(sv_qdev_char, bus, "bus"),
    SV_JSTR(sv_qdev_char, path, "path"),
    SV_JSTR(sv_qdev_char, name, "name"),
    SV_JBOOL(sv_qdev_char, client, "client"),
    SV_JINT(sv_qdev_char, fd, "fd", 3, 65535),
    SV_JEND,
};
static const sv_jschema char_schema = {sizeof(sv_qdev_char), char_fields};

static bool char_backend_has_path(int backend)
{
    switch ((sv_char_backend)backend) {
    case SV_CHAR_SOCKET:
    case SV_CHAR_FILE:
    case SV_CHAR_PIPE:
    case SV_CHAR_SERIAL:
    case SV_CHAR_TTY:
        return true;
    case SV_CHAR_PTY:
    case SV_CHAR_STDIO:
    case SV_CHAR_NULL:
    case SV__CHAR_MAX:
        break;
    }
    return false;
}

/* QEMU's chardev driver name; "tty" is a deprecated alias of "serial". */
static const char *char_backend_qemu_name(int backend)
{
    return backend == SV_CHAR_TTY ? "serial" : char_backend_names[backend];
}

static bool char_driver_is_port(int driver)
{
    return driver == SV_CHARDRV_VIRTCONSOLE || driver == SV_CHARDRV_VIRTSERIALPORT;
}

static bool config_has_virtio_serial(const sv_qemu_config *cfg)
{
    for (size_t i = 0; i < cfg->n_devices; i++)
        if (cfg->devices[i].type == SV_QDEV_SERIAL)
            return true;
    return false;
}

static int char_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                         sv_error **err)
{
    const sv_qdev_char *d = &dev->u.chr;
    const char *backend = char_backend_names[d->backend];
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if (d->fd && d->backend != SV_CHAR_SOCKET)
        return sv_field_error(err, path, "fd", "only applies to the socket backend");
    if (d->fd && d->path)
        return sv_field_error(err, path, "fd", "exactly one of path and fd is allowed");
    if (d->fd && d->client)
        return sv_field_error(err, path, "client", "does not apply with fd (a connected socket)");
    if (d->fd) {
        /* a connected socket: nothing to listen on or connect to */
    } else if (char_backend_has_path(d->backend)) {
        if ((r = sv_check_abs_path(path, "path", d->path, true, err)) < 0)
            return r;
        if (d->backend == SV_CHAR_SOCKET && strlen(d->path) > UNIX_PATH_MAX_LEN)
            return sv_field_error(err, path, "path",
                                  "is longer than %d bytes, the limit for a unix socket",
                                  UNIX_PATH_MAX_LEN);
    } else if (d->path) {
        return sv_field_error(err, path, "path", "does not apply to the %s backend", backend);
    }
    if (d->client && d->backend != SV_CHAR_SOCKET)
        return sv_field_error(err, path, "client", "only applies to the socket backend");
    if (d->backend == SV_CHAR_STDIO && cfg->knobs.daemonize)
        return sv_field_error(err, path, "backend", "stdio cannot be used with the daemonize knob");
    if (char_driver_is_port(d->driver)) {
        if ((r = sv_check_id(path, "device_id", d->device_id, true, err)) < 0)
            return r;
        if (d->bus && (r = sv_check_required(path, "bus", d->bus, err)) < 0)
            return r;
        if (d->name && (r = sv_check_required(path, "name", d->name, err)) < 0)
            return r;
        /* Port names are one namespace across all virtio-serial controllers. */
        for (size_t i = 0; d->name && i < cfg->n_devices && &cfg->devices[i] != dev; i++) {
            const sv_qdev *o = &cfg->devices[i];
            if (o->type == SV_QDEV_CHAR && char_driver_is_port(o->u.chr.driver) &&
                o->u.chr.name && strcmp(o->u.chr.name, d->name) == 0)
                return sv_field_error(err, path, "name",
                                      "port name \"%s\" is already taken by devices[%zu]: "
                                      "QEMU refuses two ports of one name, on any controller",
                                      d->name, i);
        }
        if (!config_has_virtio_serial(cfg))
            return sv_field_error(
                err, path, "driver",
                "%s needs a virtio-serial controller (a device of type \"serial\")",
                char_driver_names[d->driver]);
    } else {
        const char *drv = char_driver_names[d->driver];
        if (d->device_id)
            return sv_field_error(err, path, "device_id", "does not apply to driver %s", drv);
        if (d->bus)
            return sv_field_error(err, path, "bus", "does not apply to driver %s", drv);
        if (d->name)
            return sv_field_error(err, path, "name", "does not apply to driver %s", drv);
    }
    return 0;
}

static sv_qopts *char_props(const sv_qdev_char *d, const sv_qemu_config *cfg)
{
    sv_qopts *o = sv_qopts_new("driver", char_driver_names[d->driver]);
    if (!o)
        return NULL;
    sv_qopts_str(o, "chardev", d->id);
    sv_qopts_str(o, "id", d->device_id);
    sv_qopts_str(o, "bus", d->bus);
    sv_qopts_str(o, "name", d->name);
    return o;
}

static void char_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qdev_char *d = &dev->u.chr;
    _cleanup_qopts_ sv_qopts *chr = sv_qopts_new("backend", char_backend_qemu_name(d->backend));
    sv_qopts_str(chr, "id", d->id);
    if (d->fd) {
        int fd = sv_argv_pass_fd(a, (int)d->fd);
        if (fd < 0)
            return;
        sv_qopts_int(chr, "fd", fd);
    } else if (char_backend_has_path(d->backend)) {
        sv_qopts_str(chr, "path", d->path);
    }
    if (d->backend == SV_CHAR_SOCKET && !d->client && (!d->fd || d->fd_listening)) {
        sv_qopts_bool(chr, "server", true);
        sv_qopts_bool(chr, "wait", false);
    }
    sv_argv_add_qopts(a, "-chardev", chr);

    switch ((sv_char_driver)d->driver) {
    case SV_CHARDRV_VIRTCONSOLE:
    case SV_CHARDRV_VIRTSERIALPORT: {
        _cleanup_qopts_ sv_qopts *o = char_props(d, cfg);
        sv_qdev_add_device(a, o);
        break;
    }
    case SV_CHARDRV_SERIAL:
        sv_argv_add_pair_fmt(a, "-serial", "chardev:%s", d->id);
        break;
    case SV_CHARDRV_NONE:
    case SV__CHARDRV_MAX:
        break;
    }
}

static void char_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    const sv_qdev_char *d = &dev->u.chr;
    sv_qdev_desc_id(out, SV_QNS_CHARDEV, d->id, "id");
    if (!char_driver_is_port(d->driver))
        return;
    sv_qdev_desc_id(out, SV_QNS_DEVICE, d->device_id, "device_id");
    out->bus_kind = SV_QBUS_VIRTIO_SERIAL;
    out->bus = d->bus;
}

const sv_qdev_ops sv_qdev_char_ops = {"char", &char_schema, char_validate, char_append,
                                      char_describe};
