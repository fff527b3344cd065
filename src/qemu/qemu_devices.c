#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qemu_devices.h"
#include "util/cleanup.h"

/* Indexed by sv_qdev_type; the order is checked by the static assertion below
 * and by sv_qdev_ops_by_name's callers through the JSON "type" names. */
const sv_qdev_ops *const sv_qdev_table[SV__QDEV_MAX] = {
    [SV_QDEV_NET] = &sv_qdev_net_ops,
    [SV_QDEV_LEGACY_SERIAL] = &sv_qdev_legacy_serial_ops,
    [SV_QDEV_SERIAL] = &sv_qdev_serial_ops,
    [SV_QDEV_CHAR] = &sv_qdev_char_ops,
    [SV_QDEV_BLOCK] = &sv_qdev_block_ops,
    [SV_QDEV_SCSI_CONTROLLER] = &sv_qdev_scsi_controller_ops,
    [SV_QDEV_BRIDGE] = &sv_qdev_bridge_ops,
    [SV_QDEV_FS] = &sv_qdev_fs_ops,
    [SV_QDEV_VHOST_USER] = &sv_qdev_vhost_user_ops,
    [SV_QDEV_VSOCK] = &sv_qdev_vsock_ops,
    [SV_QDEV_VFIO] = &sv_qdev_vfio_ops,
    [SV_QDEV_RNG] = &sv_qdev_rng_ops,
    [SV_QDEV_PCIE_ROOT_PORT] = &sv_qdev_pcie_root_port_ops,
    [SV_QDEV_LOADER] = &sv_qdev_loader_ops,
    [SV_QDEV_BALLOON] = &sv_qdev_balloon_ops,
    [SV_QDEV_IOMMU] = &sv_qdev_iommu_ops,
    [SV_QDEV_PVPANIC] = &sv_qdev_pvpanic_ops,
    [SV_QDEV_MEMORY_BACKEND] = &sv_qdev_memory_backend_ops,
    [SV_QDEV_DIMM] = &sv_qdev_dimm_ops,
    [SV_QDEV_OBJECT] = &sv_qdev_object_ops,
};
_Static_assert(SV_ARRAY_SIZE(sv_qdev_table) == SV__QDEV_MAX, "one ops entry per device kind");

const sv_qdev_ops *sv_qdev_ops_by_name(const char *name)
{
    for (size_t i = 0; i < SV__QDEV_MAX; i++)
        if (sv_qdev_table[i] && strcmp(sv_qdev_table[i]->name, name) == 0)
            return sv_qdev_table[i];
    return NULL;
}

char *sv_qdev_virtio_name(const char *base, int transport)
{
    const char *suffix = transport == SV_QT_CCW ? "ccw" : transport == SV_QT_MMIO ? "device" : "pci";
    char *s = NULL;
    if (asprintf(&s, "%s-%s", base, suffix) < 0)
        return NULL;
    return s;
}

sv_qopts *sv_qdev_virtio_new(const char *base, int transport)
{
    _cleanup_free_ char *name = sv_qdev_virtio_name(base, transport);
    return name ? sv_qopts_new("driver", name) : NULL;
}

void sv_qdev_virtio_common(sv_qopts *o, const sv_qvirtio *v, int transport,
                           const sv_qemu_config *cfg)
{
    switch (transport) {
    case SV_QT_PCI:
        if (v->disable_modern)
            sv_qopts_bool(o, "disable-modern", true);
        sv_qopts_str(o, "romfile", v->rom_file);
        break;
    case SV_QT_CCW:
        if (cfg->knobs.iommu_platform)
            sv_qopts_bool(o, "iommu_platform", true);
        sv_qopts_str(o, "devno", v->dev_no);
        break;
    default:
        break;
    }
}

int sv_qdev_virtio_validate(const sv_qvirtio *v, const sv_qemu_config *cfg, const char *path,
                            sv_error **err)
{
    int t = sv_qemu_config_transport(cfg, v->transport);
    int arch = sv_qemu_config_arch(cfg);
    if (t == SV_QT_CCW && arch != SV_ARCH_S390X)
        return sv_field_error(err, path, "transport", "ccw needs an s390x QEMU (arch is %s)",
                              sv_arch_names[arch]);
    if (arch == SV_ARCH_S390X && t == SV_QT_MMIO)
        return sv_field_error(err, path, "transport", "s390x has no virtio-mmio transport");
    if (t == SV_QT_MMIO && sv_qdev_mmio_transports(cfg) == 0)
        return sv_field_error(err, path, "transport",
                              "machine \"%s\" has no virtio-mmio bus (virtio-mmio exists on the "
                              "x86_64 microvm and aarch64 virt machines); use pci",
                              sv_qdev_machine_type(cfg));
    if (t == SV_QT_PCI && sv_qdev_machine_family(cfg) == SV_MACH_MICROVM &&
        !sv_qdev_root_bus(cfg))
        return sv_field_error(err, path, "transport",
                              "machine microvm has no PCI bus unless the machine option pcie=on "
                              "is set; use mmio or set pcie=on");
    if (v->dev_no) {
        if (t != SV_QT_CCW)
            return sv_field_error(err, path, "dev_no", "only applies to the ccw transport");
        int r = sv_check_devno(path, "dev_no", v->dev_no, err);
        if (r < 0)
            return r;
    }
    if (v->rom_file && t != SV_QT_PCI)
        return sv_field_error(err, path, "rom_file", "only applies to the pci transport");
    if (v->disable_modern && t != SV_QT_PCI)
        return sv_field_error(err, path, "disable_modern", "only applies to the pci transport");
    if (v->rom_file && *v->rom_file) {
        int r = sv_check_abs_path(path, "rom_file", v->rom_file, false, err);
        if (r < 0)
            return r;
    }
    return 0;
}

void sv_qdev_desc_id(sv_qdev_desc *out, int ns, const char *id, const char *field)
{
    if (!id || !*id || out->n_ids >= SV_ARRAY_SIZE(out->ids))
        return;
    out->ids[out->n_ids++] = (sv_qdev_id){ns, id, field};
}

void sv_qdev_desc_virtio(sv_qdev_desc *out, const sv_qvirtio *v, const sv_qemu_config *cfg,
                         const char *bus, const char *addr)
{
    switch ((sv_qtransport)sv_qemu_config_transport(cfg, v->transport)) {
    case SV_QT_PCI:
        out->bus_kind = SV_QBUS_PCI;
        out->addr = addr;
        out->disable_modern = v->disable_modern;
        break;
    case SV_QT_CCW:
        out->bus_kind = SV_QBUS_CCW;
        out->dev_no = v->dev_no;
        break;
    case SV_QT_MMIO:
        out->bus_kind = SV_QBUS_MMIO;
        break;
    case SV_QT_DEFAULT:
    case SV__QT_MAX:
        break;
    }
    out->bus = bus;
}

/* ---- machine facts ---- */

/* `type` is `name` or one of its versions ("pc-q35-7.2" for "pc-q35-"). */
static bool type_is(const char *type, const char *name, const char *versioned)
{
    return strcmp(type, name) == 0 ||
           (versioned && strncmp(type, versioned, strlen(versioned)) == 0);
}

const char *sv_qdev_machine_type(const sv_qemu_config *cfg)
{
    if (cfg->machine.type)
        return cfg->machine.type;
    switch ((sv_arch)sv_qemu_config_arch(cfg)) {
    case SV_ARCH_PPC64:
        return "pseries";
    case SV_ARCH_S390X:
        return "s390-ccw-virtio";
    case SV_ARCH_AARCH64:
        return "none";
    case SV_ARCH_DEFAULT:
    case SV_ARCH_X86_64:
    case SV__ARCH_MAX:
        break;
    }
    return "pc";
}

int sv_qdev_machine_family(const sv_qemu_config *cfg)
{
    const char *t = sv_qdev_machine_type(cfg);
    switch ((sv_arch)sv_qemu_config_arch(cfg)) {
    case SV_ARCH_X86_64:
        if (type_is(t, "pc", "pc-i440fx-"))
            return SV_MACH_PC;
        if (type_is(t, "q35", "pc-q35-"))
            return SV_MACH_Q35;
        if (type_is(t, "microvm", NULL))
            return SV_MACH_MICROVM;
        break;
    case SV_ARCH_AARCH64:
        if (type_is(t, "virt", "virt-"))
            return SV_MACH_ARM_VIRT;
        break;
    case SV_ARCH_PPC64:
        if (type_is(t, "pseries", "pseries-"))
            return SV_MACH_PSERIES;
        break;
    case SV_ARCH_S390X:
        if (type_is(t, "s390-ccw-virtio", "s390-ccw-virtio-"))
            return SV_MACH_S390;
        break;
    case SV_ARCH_DEFAULT:
    case SV__ARCH_MAX:
        break;
    }
    return SV_MACH_OTHER;
}

bool sv_qdev_root_bus_is_pcie(const sv_qemu_config *cfg)
{
    const char *root = sv_qdev_root_bus(cfg);
    return root && strcmp(root, "pcie.0") == 0;
}

const char *sv_qdev_root_bus(const sv_qemu_config *cfg)
{
    switch ((sv_machine_family)sv_qdev_machine_family(cfg)) {
    case SV_MACH_PC:
    case SV_MACH_PSERIES:
    case SV_MACH_S390:
        return "pci.0";
    case SV_MACH_Q35:
    case SV_MACH_ARM_VIRT:
        return "pcie.0";
    case SV_MACH_MICROVM:
        return sv_qemu_config_machine_opt_is(cfg, "pcie", "on") ? "pcie.0" : NULL;
    case SV_MACH_OTHER:
        break;
    }
    return NULL;
}

int sv_qdev_mmio_transports(const sv_qemu_config *cfg)
{
    switch ((sv_machine_family)sv_qdev_machine_family(cfg)) {
    case SV_MACH_MICROVM:
        /* 24 with the second IO-APIC, which needs ACPI; 8 without. */
        if (sv_qemu_config_machine_opt_is(cfg, "acpi", "off") ||
            sv_qemu_config_machine_opt_is(cfg, "ioapic2", "off"))
            return 8;
        return 24;
    case SV_MACH_ARM_VIRT:
        return 32;
    case SV_MACH_PC:
    case SV_MACH_Q35:
    case SV_MACH_PSERIES:
    case SV_MACH_S390:
        return 0;
    case SV_MACH_OTHER:
        break;
    }
    /* Of the other boards only some arm ones have virtio-mmio transports. */
    return sv_qemu_config_arch(cfg) == SV_ARCH_AARCH64 ? -1 : 0;
}

bool sv_qdev_accel_is_kvm(const sv_qemu_config *cfg)
{
    const char *a = cfg->machine.acceleration;
    return a && strncmp(a, "kvm", 3) == 0 && (a[3] == '\0' || a[3] == ':');
}

int sv_parse_size(const char *value, uint64_t unit, uint64_t *out)
{
    const char *p = value;
    uint64_t n = 0;
    if (!p || !isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -ERANGE;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (*p) {
        static const char suffixes[] = "kmgt";
        const char *s = strchr(suffixes, tolower((unsigned char)*p));
        if (!s || p[1])
            return -EINVAL;
        unit = (uint64_t)1 << (10 * (s - suffixes + 1));
    }
    if (n > UINT64_MAX / unit)
        return -ERANGE;
    *out = n * unit;
    return 0;
}

void sv_qdev_add_device(sv_argv *a, const sv_qopts *o)
{
    if (!o || o->oom) {
        sv_argv_fail(a, ENOMEM, "out of memory building the command line");
        return;
    }
    sv_argv_add_qopts(a, "-device", o);
}

int sv_field_error(sv_error **err, const char *path, const char *field, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    int r = sv_error_set(err, EINVAL, "%s%s%s: %s", path ? path : "", path && *path && *field ? "." : "",
                         field, n < 0 ? "invalid" : msg);
    free(msg);
    return r;
}

int sv_check_required(const char *path, const char *field, const char *value, sv_error **err)
{
    if (!value || !*value)
        return sv_field_error(err, path, field, "is required");
    return 0;
}

int sv_check_id(const char *path, const char *field, const char *value, bool required, sv_error **err)
{
    if (!value || !*value)
        return required ? sv_field_error(err, path, field, "is required") : 0;
    /* QEMU's id_wellformed(): ids name objects in QMP and the QOM tree. */
    bool ok = isascii((unsigned char)value[0]) && isalpha((unsigned char)value[0]);
    size_t n = 0;
    for (const char *p = value; *p && ok; p++, n++)
        ok = isascii((unsigned char)*p) && (isalnum((unsigned char)*p) || strchr("-._", *p));
    if (!ok || n > 127)
        return sv_field_error(err, path, field,
                              "invalid id: it must start with a letter and contain only letters, "
                              "digits, '-', '.' and '_' (at most 127)");
    return 0;
}

int sv_check_abs_path(const char *path, const char *field, const char *value, bool required,
                      sv_error **err)
{
    if (!value || !*value)
        return required ? sv_field_error(err, path, field, "is required") : 0;
    if (value[0] != '/')
        return sv_field_error(err, path, field, "must be an absolute path");
    if (strlen(value) >= 4096)
        return sv_field_error(err, path, field, "path too long");
    size_t off = 0;
    const char *bad = sv_text_problem(value, &off);
    if (bad)
        return sv_field_error(err, path, field,
                              "has %s at byte %zu (paths must be UTF-8 without control characters)",
                              bad, off);
    return 0;
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return n > 0;
}

int sv_check_devno(const char *path, const char *field, const char *value, sv_error **err)
{
    /* cssid.ssid.devno: cssid 0x00-0xfe, ssid 0-3, devno 0x0000-0xffff */
    const char *d1 = strchr(value, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    bool ok = d1 && d2 && all_hex(value, (size_t)(d1 - value)) && d1 - value <= 2 &&
              d2 - d1 == 2 && d1[1] >= '0' && d1[1] <= '3' && strlen(d2 + 1) == 4 &&
              all_hex(d2 + 1, 4);
    if (!ok)
        return sv_field_error(err, path, field,
                              "invalid CCW device number (expected cssid.ssid.devno, e.g. fe.0.0001)");
    return 0;
}

int sv_check_pci_addr(const char *path, const char *field, const char *value, sv_error **err)
{
    const char *s = value;
    if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
        s += 2;
    const char *dot = strchr(s, '.');
    size_t slen = dot ? (size_t)(dot - s) : strlen(s);
    bool ok = slen >= 1 && slen <= 2 && all_hex(s, slen) && strtoul(s, NULL, 16) < 32;
    if (ok && dot)
        ok = dot[1] >= '0' && dot[1] <= '7' && dot[2] == '\0';
    if (!ok)
        return sv_field_error(err, path, field,
                              "invalid PCI address (expected slot[.function], slot 0-0x1f, e.g. 0x2 or 02.1)");
    return 0;
}

int sv_check_mac(const char *path, const char *field, const char *value, sv_error **err)
{
    bool ok = strlen(value) == 17;
    for (int i = 0; ok && i < 17; i++)
        ok = (i % 3 == 2) ? value[i] == ':' : isxdigit((unsigned char)value[i]) != 0;
    if (!ok)
        return sv_field_error(err, path, field, "invalid MAC address (expected aa:bb:cc:dd:ee:ff)");
    if (strtoul(value, NULL, 16) & 1)
        return sv_field_error(err, path, field, "is a multicast address");
    return 0;
}

int sv_check_size(const char *path, const char *field, const char *value, sv_error **err)
{
    uint64_t bytes;
    int r = sv_parse_size(value, 1, &bytes);
    if (r == -ERANGE)
        return sv_field_error(err, path, field, "is too large (QEMU's sizes end at 2^64 - 1 bytes)");
    size_t n = strlen(value);
    if (r < 0 && n >= 3 && strspn(value, "0123456789") == n - 2 &&
        strchr("KMGTkmgt", value[n - 2]) && strchr("Bb", value[n - 1]))
        return sv_field_error(err, path, field,
                              "invalid size: QEMU takes one suffix letter (%.*s, not %s)",
                              (int)(n - 1), value, value);
    if (r < 0)
        return sv_field_error(err, path, field,
                              "invalid size (expected a number with an optional K, M, G or T suffix)");
    return 0;
}

int sv_check_bdf(const char *path, const char *field, const char *value, sv_error **err)
{
    /* [dddd:]bb:ss.f */
    const char *s = value;
    size_t n = strlen(s);
    if (n == 12) {
        if (!all_hex(s, 4) || s[4] != ':')
            goto bad;
        s += 5;
        n -= 5;
    }
    if (n != 7 || !all_hex(s, 2) || s[2] != ':' || !all_hex(s + 3, 2) || s[5] != '.' || s[6] < '0' ||
        s[6] > '7' || strtoul(s + 3, NULL, 16) > 0x1f)
        goto bad;
    return 0;
bad:
    return sv_field_error(err, path, field, "invalid PCI address (expected [dddd:]bb:ss.f, e.g. 0000:01:00.0)");
}
