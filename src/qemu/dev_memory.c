/*
 * Memory and confidential-computing objects: memory backends, the DIMM
 * devices that plug them in, and the confidential-guest / SGX EPC objects.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qemu/qemu_devices.h"
#include "util/cleanup.h"

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)

static int check_arch(const sv_qemu_config *cfg, const char *path, const char *what, int arch,
                      sv_error **err)
{
    int have = sv_qemu_config_arch(cfg);
    if (have != arch)
        return sv_error_set(err, EINVAL, "%s: %s needs qemu-system-%s (arch is %s)", path, what,
                            sv_arch_names[arch], sv_arch_names[have]);
    return 0;
}

/* ---- memory_backend: memory-backend-ram / -file / -memfd ---- */

static const char *const mem_backend_names[] = {"ram", "file", "memfd", NULL};
_Static_assert(SV_ARRAY_SIZE(mem_backend_names) == SV__MEMBE_MAX + 1, "memory backend names");

#define SV_HUGEPAGES_PATH "/dev/hugepages"

static const sv_jfield mem_backend_fields[] = {
    SV_JENUM(sv_qdev_memory_backend, backend, "backend", mem_backend_names),
    SV_JSTR(sv_qdev_memory_backend, id, "id"),
    SV_JSTR(sv_qdev_memory_backend, size, "size"),
    SV_JSTR(sv_qdev_memory_backend, mem_path, "mem_path"),
    SV_JBOOL(sv_qdev_memory_backend, share, "share"),
    SV_JBOOL(sv_qdev_memory_backend, prealloc, "prealloc"),
    SV_JBOOL(sv_qdev_memory_backend, huge_pages, "huge_pages"),
    SV_JBOOL(sv_qdev_memory_backend, read_only, "read_only"),
    SV_JEND,
};
static const sv_jschema mem_backend_schema = {sizeof(sv_qdev_memory_backend), mem_backend_fields};

static int mem_backend_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                                sv_error **err)
{
    const sv_qdev_memory_backend *d = &dev->u.memory_backend;
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0 ||
        (r = sv_check_required(path, "size", d->size, err)) < 0 ||
        (r = sv_check_size(path, "size", d->size, err)) < 0)
        return r;
    if (d->backend != SV_MEMBE_FILE) {
        if (d->mem_path)
            return sv_field_error(err, path, "mem_path", "only applies to backend file");
        if (d->read_only)
            return sv_field_error(err, path, "read_only", "only applies to backend file");
        if (d->huge_pages && d->backend == SV_MEMBE_RAM)
            return sv_field_error(err, path, "huge_pages",
                                  "backend ram cannot use huge pages; use file or memfd");
        return 0;
    }
    if (d->huge_pages && d->mem_path)
        return sv_field_error(err, path, "mem_path",
                              "give either mem_path or huge_pages (which uses " SV_HUGEPAGES_PATH
                              ")");
    if (!d->huge_pages && !d->mem_path)
        return sv_field_error(err, path, "mem_path",
                              "is required for backend file (or set huge_pages)");
    return sv_check_abs_path(path, "mem_path", d->mem_path, false, err);
}

static const char *mem_backend_qom_type(int backend)
{
    switch (backend) {
    case SV_MEMBE_FILE:
        return "memory-backend-file";
    case SV_MEMBE_MEMFD:
        return "memory-backend-memfd";
    case SV_MEMBE_RAM:
    default:
        return "memory-backend-ram";
    }
}

static sv_qopts *mem_backend_props(const sv_qdev_memory_backend *d, const sv_qemu_config *cfg)
{
    sv_qopts *o = sv_qopts_new("qom-type", mem_backend_qom_type(d->backend));
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "size", d->size);
    if (d->backend == SV_MEMBE_FILE)
        sv_qopts_str(o, "mem-path", d->huge_pages ? SV_HUGEPAGES_PATH : d->mem_path);
    if (d->share)
        sv_qopts_bool(o, "share", true);
    if (d->prealloc)
        sv_qopts_bool(o, "prealloc", true);
    if (d->huge_pages && d->backend == SV_MEMBE_MEMFD)
        sv_qopts_bool(o, "hugetlb", true);
    if (d->read_only)
        sv_qopts_bool(o, "readonly", true);
    return o;
}

static void mem_backend_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = mem_backend_props(&dev->u.memory_backend, cfg);
    sv_argv_add_qopts(a, "-object", o);
}

static void mem_backend_describe(const sv_qdev *dev, const sv_qemu_config *cfg,
                                 sv_qdev_desc *out)
{
    sv_qdev_desc_id(out, SV_QNS_OBJECT, dev->u.memory_backend.id, "id");
}

const sv_qdev_ops sv_qdev_memory_backend_ops = {"memory_backend", &mem_backend_schema,
                                                mem_backend_validate, mem_backend_append,
                                                mem_backend_describe};

/* ---- dimm: pc-dimm / nvdimm ---- */

static const char *const dimm_driver_names[] = {"pc-dimm", "nvdimm", NULL};
_Static_assert(SV_ARRAY_SIZE(dimm_driver_names) == SV__DIMM_MAX + 1, "dimm driver names");

static const sv_jfield dimm_fields[] = {
    SV_JENUM(sv_qdev_dimm, driver, "driver", dimm_driver_names),
    SV_JSTR(sv_qdev_dimm, id, "id"),
    SV_JSTR(sv_qdev_dimm, memdev, "memdev"),
    SV_JBOOL(sv_qdev_dimm, unarmed, "unarmed"),
    SV_JEND,
};
static const sv_jschema dimm_schema = {sizeof(sv_qdev_dimm), dimm_fields};

/* The arm virt machine creates the ACPI GED device that memory hotplug needs
 * only with firmware, ACPI and a 64-bit CPU (its default cortex-a15 is 32-bit). */
static int check_aarch64_dimm(const sv_qemu_config *cfg, const char *path, const char *what,
                              sv_error **err)
{
    static const char *const cpus32[] = {"cortex-a7", "cortex-a8", "cortex-a9", "cortex-a15"};
    if (!cfg->bios && !(cfg->pflash && cfg->pflash[0]))
        return sv_error_set(err, EINVAL,
                            "%s: %s on aarch64 needs firmware (bios or pflash): without it the "
                            "virt machine has no ACPI GED device for memory hotplug",
                            path, what);
    if (sv_qemu_config_machine_opt_is(cfg, "acpi", "off"))
        return sv_error_set(err, EINVAL, "%s: %s on aarch64 needs ACPI (machine option acpi=off)",
                            path, what);
    bool is32 = !cfg->cpu_model;
    for (size_t i = 0; i < SV_ARRAY_SIZE(cpus32) && !is32; i++)
        is32 = strcmp(cfg->cpu_model, cpus32[i]) == 0;
    if (is32)
        return sv_error_set(err, EINVAL,
                            "%s: %s on aarch64 needs a 64-bit cpu_model (virt's default "
                            "cortex-a15 is 32-bit)",
                            path, what);
    return 0;
}

/* The memory_backend with id `id` and its index, or NULL. */
static const sv_qdev_memory_backend *find_backend(const sv_qemu_config *cfg, const char *id,
                                                  size_t *index)
{
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *o = &cfg->devices[i];
        if (o->type == SV_QDEV_MEMORY_BACKEND && o->u.memory_backend.id &&
            strcmp(o->u.memory_backend.id, id) == 0) {
            if (index)
                *index = i;
            return &o->u.memory_backend;
        }
    }
    return NULL;
}

/* "2 MiB" or "4 KiB": an alignment. */
static void format_align(char *buf, size_t n, uint64_t align)
{
    if (align % MiB == 0)
        snprintf(buf, n, "%llu MiB", (unsigned long long)(align / MiB));
    else
        snprintf(buf, n, "%llu KiB", (unsigned long long)(align / KiB));
}

/* "512M" when whole MiB, else the byte count. */
static void format_size(char *buf, size_t n, uint64_t bytes)
{
    if (bytes % MiB == 0)
        snprintf(buf, n, "%lluM", (unsigned long long)(bytes / MiB));
    else
        snprintf(buf, n, "%llu bytes", (unsigned long long)bytes);
}

/* The alignment QEMU gives a backend's memory: anonymous RAM is aligned for
 * transparent huge pages (QEMU_VMALLOC_ALIGN of the host), a file or memfd
 * to its page size, which is at least 4 KiB. */
static uint64_t backend_align(const sv_qdev_memory_backend *b)
{
    if (b->backend != SV_MEMBE_RAM)
        return 4 * KiB;
#if defined(__x86_64__) || defined(__aarch64__) || defined(__arm__) || defined(__powerpc64__)
    return 2 * MiB;
#elif defined(__s390x__)
    return 1 * MiB;
#else
    return 4 * KiB;
#endif
}

/* How much of the memory-device space (max_mem - size) one DIMM takes, after
 * checking its backend's size as QEMU's pre-plug does; 0 on machines whose
 * rules are not known here. */
static int dimm_space(const sv_qdev_dimm *d, const sv_qemu_config *cfg, const char *dimm_path,
                      uint64_t *space, sv_error **err)
{
    size_t bi = 0;
    const sv_qdev_memory_backend *b = find_backend(cfg, d->memdev, &bi);
    _cleanup_free_ char *bpath = sv_json_path_index("devices", bi);
    uint64_t bytes;
    int r;
    *space = 0;
    int family = sv_qdev_machine_family(cfg);
    /* Only the machines whose rules are known here; microvm, for one, takes a
     * pc-dimm of any size without plugging it in. */
    if (!b || !b->size || !bpath ||
        (family != SV_MACH_PC && family != SV_MACH_Q35 && family != SV_MACH_ARM_VIRT &&
         family != SV_MACH_PSERIES))
        return 0;
    if ((r = sv_check_size(bpath, "size", b->size, err)) < 0)
        return r;
    if (sv_parse_size(b->size, 1, &bytes) < 0)
        return 0;
    uint64_t align = backend_align(b);
    const char *kind = mem_backend_qom_type(b->backend);
    char align_text[32];
    format_align(align_text, sizeof(align_text), align);
    if (d->driver == SV_DIMM_NVDIMM) {
        /* With no label area, the whole backend aligned down is the PMEM. */
        *space = bytes / align * align;
        if (*space == 0)
            return sv_field_error(err, bpath, "size",
                                  "%s is too small for an nvdimm (%s plugs it in): QEMU aligns a "
                                  "%s to %s and an nvdimm needs at least that",
                                  b->size, dimm_path, kind, align_text);
        return 0;
    }
    if (bytes % align)
        return sv_field_error(err, bpath, "size",
                              "%s is not a multiple of %s, the alignment QEMU gives a %s, so a "
                              "pc-dimm refuses it (%s plugs it in)",
                              b->size, align_text, kind, dimm_path);
    if (family == SV_MACH_PSERIES && bytes % (256 * MiB))
        return sv_field_error(err, bpath, "size",
                              "%s is not a multiple of 256 MiB, which QEMU needs for a pc-dimm on "
                              "ppc64 pseries (%s plugs it in)",
                              b->size, dimm_path);
    *space = bytes;
    return 0;
}

/* The DIMMs up to this one must fit in max_mem - size: QEMU refuses a DIMM
 * that does not ("not enough space"). */
static int check_dimm_sizes(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                            sv_error **err)
{
    uint64_t size, max_mem, used = 0;
    if (sv_parse_size(cfg->memory.size, MiB, &size) < 0 ||
        sv_parse_size(cfg->memory.max_mem, 1, &max_mem) < 0 || max_mem < size)
        return 0;
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *o = &cfg->devices[i];
        if (o->type != SV_QDEV_DIMM)
            continue;
        uint64_t space;
        _cleanup_free_ char *p = sv_json_path_index("devices", i);
        int r = dimm_space(&o->u.dimm, cfg, p ? p : "devices", &space, err);
        if (r < 0)
            return r;
        used += space;
        if (o == dev)
            break;
    }
    if (used > max_mem - size) {
        char need[48], room[48];
        format_size(need, sizeof(need), used);
        format_size(room, sizeof(room), max_mem - size);
        return sv_error_set(err, EINVAL,
                            "%s: the DIMMs up to this one take %s, more than the %s between "
                            "memory.size and memory.max_mem",
                            path, need, room);
    }
    return 0;
}

static int dimm_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                         sv_error **err)
{
    const sv_qdev_dimm *d = &dev->u.dimm;
    const char *what = dimm_driver_names[d->driver];
    int arch = sv_qemu_config_arch(cfg);
    int r;
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0 ||
        (r = sv_check_id(path, "memdev", d->memdev, true, err)) < 0)
        return r;
    if (d->unarmed && d->driver != SV_DIMM_NVDIMM)
        return sv_field_error(err, path, "unarmed", "only applies to driver nvdimm");

    if (arch == SV_ARCH_S390X)
        return sv_error_set(err, EINVAL, "%s: QEMU 7.2 has no %s for s390x", path, what);
    if (d->driver == SV_DIMM_NVDIMM && arch == SV_ARCH_PPC64)
        return sv_error_set(err, EINVAL,
                            "%s: nvdimm on ppc64 pseries needs label-size, which this config "
                            "cannot set; use pc-dimm",
                            path);
    if (!cfg->memory.slots || !cfg->memory.max_mem)
        return sv_error_set(err, EINVAL, "%s: %s needs memory slots: set memory.slots and "
                            "memory.max_mem", path, what);
    if (d->driver == SV_DIMM_NVDIMM && sv_qemu_config_is_microvm(cfg))
        return sv_field_error(err, path, "driver",
                              "machine microvm has no nvdimm support (QEMU's microvm lacks the "
                              "nvdimm machine option); use pc-dimm, or a pc or q35 machine");
    if (d->driver == SV_DIMM_NVDIMM && !sv_qemu_config_machine_opt_is(cfg, "nvdimm", "on"))
        return sv_error_set(err, EINVAL, "%s: nvdimm needs the machine option nvdimm=on", path);
    if (arch == SV_ARCH_AARCH64 && (r = check_aarch64_dimm(cfg, path, what, err)) < 0)
        return r;

    /* The backend must be a memory_backend of this config, used by no other DIMM. */
    size_t ndimms = 0;
    for (size_t i = 0; i < cfg->n_devices && &cfg->devices[i] != dev; i++) {
        const sv_qdev *o = &cfg->devices[i];
        if (o->type != SV_QDEV_DIMM)
            continue;
        ndimms++;
        if (o->u.dimm.memdev && strcmp(o->u.dimm.memdev, d->memdev) == 0)
            return sv_field_error(err, path, "memdev", "\"%s\" is already used by devices[%zu]",
                                  d->memdev, i);
    }
    const sv_qdev_memory_backend *backend = find_backend(cfg, d->memdev, NULL);
    if (!backend)
        return sv_field_error(err, path, "memdev", "no memory_backend device has id \"%s\"",
                              d->memdev);
    if (ndimms >= (size_t)cfg->memory.slots)
        return sv_error_set(err, EINVAL, "%s: more DIMMs than memory.slots (%lld)", path,
                            (long long)cfg->memory.slots);
    if (d->driver == SV_DIMM_NVDIMM && backend->read_only && !d->unarmed)
        return sv_field_error(err, path, "unarmed",
                              "must be true: memdev \"%s\" is read_only", d->memdev);
    return check_dimm_sizes(dev, cfg, path, err);
}

static sv_qopts *dimm_props(const sv_qdev_dimm *d, const sv_qemu_config *cfg)
{
    sv_qopts *o = sv_qopts_new("driver", dimm_driver_names[d->driver]);
    sv_qopts_str(o, "id", d->id);
    sv_qopts_str(o, "memdev", d->memdev);
    if (d->unarmed)
        sv_qopts_bool(o, "unarmed", true);
    return o;
}

static void dimm_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    _cleanup_qopts_ sv_qopts *o = dimm_props(&dev->u.dimm, cfg);
    sv_qdev_add_device(a, o);
}

static void dimm_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    sv_qdev_desc_id(out, SV_QNS_DEVICE, dev->u.dimm.id, "id");
}

const sv_qdev_ops sv_qdev_dimm_ops = {"dimm", &dimm_schema, dimm_validate, dimm_append,
                                      dimm_describe};

/* ---- object: confidential-guest objects and SGX EPC ---- */

static const char *const object_type_names[] = {"sev-guest", "s390-pv-guest", "pef-guest",
                                                "tdx-guest", "memory-backend-epc", NULL};
_Static_assert(SV_ARRAY_SIZE(object_type_names) == SV__OBJ_MAX + 1, "object type names");

static const sv_jfield object_fields[] = {
    SV_JENUM(sv_qdev_object, object_type, "object_type", object_type_names),
    SV_JSTR(sv_qdev_object, id, "id"),
    SV_JSTR(sv_qdev_object, file, "file"),
    SV_JSTR(sv_qdev_object, size, "size"),
    SV_JINT(sv_qdev_object, cbitpos, "cbitpos", 1, 63),
    SV_JINT(sv_qdev_object, reduced_phys_bits, "reduced_phys_bits", 1, 63),
    SV_JINT(sv_qdev_object, policy, "policy", 0, UINT32_MAX),
    SV_JBOOL(sv_qdev_object, debug, "debug"),
    SV_JBOOL(sv_qdev_object, prealloc, "prealloc"),
    SV_JEND,
};
static const sv_jschema object_schema = {sizeof(sv_qdev_object), object_fields};

/* The first key set on `d` that `type` does not take, or NULL. */
static const char *object_stray_key(const sv_qdev_object *d, int type)
{
    bool sev = type == SV_OBJ_SEV_GUEST, epc = type == SV_OBJ_MEMORY_BACKEND_EPC;
    if (d->file && !sev)
        return "file";
    if (d->size && !epc)
        return "size";
    if (d->cbitpos && !sev)
        return "cbitpos";
    if (d->reduced_phys_bits && !sev)
        return "reduced_phys_bits";
    if (d->policy && !sev)
        return "policy";
    if (d->prealloc && !epc)
        return "prealloc";
    return NULL;
}

static int object_validate(const sv_qdev *dev, const sv_qemu_config *cfg, const char *path,
                           sv_error **err)
{
    const sv_qdev_object *d = &dev->u.object;
    const char *what = object_type_names[d->object_type];
    int r;
    if (d->object_type == SV_OBJ_TDX_GUEST)
        return sv_field_error(err, path, "object_type",
                              "QEMU 7.2 lacks tdx-guest (TDX guests need a newer QEMU)");
    if ((r = sv_check_id(path, "id", d->id, true, err)) < 0)
        return r;
    if (d->debug)
        return sv_field_error(err, path, "debug",
                              "%s has no debug switch in QEMU 7.2%s", what,
                              d->object_type == SV_OBJ_SEV_GUEST
                                  ? " (SEV debugging is bit 0 of policy)" : "");
    const char *stray = object_stray_key(d, d->object_type);
    if (stray)
        return sv_field_error(err, path, stray, "does not apply to %s", what);

    switch (d->object_type) {
    case SV_OBJ_SEV_GUEST:
        if ((r = check_arch(cfg, path, what, SV_ARCH_X86_64, err)) < 0)
            return r;
        if (!d->cbitpos)
            return sv_field_error(err, path, "cbitpos", "is required for sev-guest");
        if (!d->reduced_phys_bits)
            return sv_field_error(err, path, "reduced_phys_bits", "is required for sev-guest");
        if ((r = sv_check_abs_path(path, "file", d->file, false, err)) < 0)
            return r;
        if (d->file && !*d->file)
            return sv_field_error(err, path, "file", "is empty");
        if (d->file && cfg->pflash && cfg->pflash[0])
            return sv_field_error(err, path, "file",
                                  "the firmware is given by pflash already; set only one");
        return 0;
    case SV_OBJ_S390_PV_GUEST:
        return check_arch(cfg, path, what, SV_ARCH_S390X, err);
    case SV_OBJ_PEF_GUEST:
        return check_arch(cfg, path, what, SV_ARCH_PPC64, err);
    case SV_OBJ_MEMORY_BACKEND_EPC:
        if ((r = check_arch(cfg, path, what, SV_ARCH_X86_64, err)) < 0 ||
            (r = sv_check_required(path, "size", d->size, err)) < 0)
            return r;
        return sv_check_size(path, "size", d->size, err);
    default:
        return sv_field_error(err, path, "object_type", "unknown object type");
    }
}

static sv_qopts *object_props(const sv_qdev_object *d, const sv_qemu_config *cfg)
{
    sv_qopts *o = sv_qopts_new("qom-type", object_type_names[d->object_type]);
    sv_qopts_str(o, "id", d->id);
    switch (d->object_type) {
    case SV_OBJ_SEV_GUEST:
        sv_qopts_int(o, "cbitpos", d->cbitpos);
        sv_qopts_int(o, "reduced-phys-bits", d->reduced_phys_bits);
        if (d->policy)
            sv_qopts_int(o, "policy", d->policy);
        break;
    case SV_OBJ_MEMORY_BACKEND_EPC:
        sv_qopts_str(o, "size", d->size);
        if (d->prealloc)
            sv_qopts_bool(o, "prealloc", true);
        break;
    default:
        break;
    }
    return o;
}

static void object_append(const sv_qdev *dev, const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qdev_object *d = &dev->u.object;
    _cleanup_qopts_ sv_qopts *o = object_props(d, cfg);
    sv_argv_add_qopts(a, "-object", o);
    if (d->object_type == SV_OBJ_SEV_GUEST && d->file) {
        /* The SEV firmware, read-only in the first flash unit (validation made
         * sure no top-level pflash takes that unit). */
        _cleanup_qopts_ sv_qopts *f = sv_qopts_new("if", NULL);
        sv_qopts_str(f, "if", "pflash");
        sv_qopts_int(f, "unit", 0);
        sv_qopts_str(f, "format", "raw");
        sv_qopts_bool(f, "readonly", true);
        sv_qopts_str(f, "file", d->file);
        sv_argv_add_qopts(a, "-drive", f);
    }
}

static void object_describe(const sv_qdev *dev, const sv_qemu_config *cfg, sv_qdev_desc *out)
{
    sv_qdev_desc_id(out, SV_QNS_OBJECT, dev->u.object.id, "id");
}

const sv_qdev_ops sv_qdev_object_ops = {"object", &object_schema, object_validate, object_append,
                                        object_describe};
