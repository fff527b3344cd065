/* Resizing a running QEMU VM: memory and vCPUs (resize.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qmp_cmds.h"
#include "qemu/resize.h"
#include "util/cleanup.h"
#include "util/qopts.h"
#include "util/strbuf.h"

#define MiB ((int64_t)1 << 20)

/* Ids: the DIMM device, its backend object, a vCPU device; numbered. */
#define DIMM_PREFIX "dimmmem"
#define MEMDEV_PREFIX "mem"
#define CPU_PREFIX "cpu-"
/* A hot-plugged vCPU's QOM path: QEMU puts devices with an id there. */
#define PERIPHERAL "/machine/peripheral/"
/* A backend's QOM path, as query-memory-devices reports "memdev". */
#define OBJECTS "/objects/"

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

/* The number N of "<prefix>N" (decimal digits only, at most 9), else -1. */
static int64_t id_number(const char *s, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (!s || strncmp(s, prefix, pl) != 0)
        return -1;
    s += pl;
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 9 || s[n] || (n > 1 && s[0] == '0'))
        return -1;
    return strtoll(s, NULL, 10);
}

/* ---- limits --------------------------------------------------------------- */

void sv_resize_limits_init(const sv_vm_config *vm, int arch, const char *id, sv_resize_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->id = id;
    l->arch = sv_vm_arch_name(arch);
    l->memory = vm->memory;
    l->max_memory = vm->max_memory ? vm->max_memory : vm->memory;
    l->memory_slots = vm->memory_slots;
    l->vcpus = vm->vcpus;
    l->max_vcpus = sv_vm_max_vcpus(vm);
    bool microvm = vm->machine_type && strncmp(vm->machine_type, "microvm", 7) == 0;
    bool firmware = vm->firmware || (vm->pflash && vm->pflash[0]);
    switch (arch) {
    case SV_VM_ARCH_X86_64:
        l->block = SV_RESIZE_BLOCK_X86_64;
        l->vcpu_unplug_needs_kvm = true;
        if (microvm) {
            l->no_memory = "machine microvm has no memory hotplug";
            l->no_vcpus = "machine microvm has no CPU hotplug";
        }
        break;
    case SV_VM_ARCH_AARCH64:
        l->block = SV_RESIZE_BLOCK_AARCH64;
        l->no_vcpus = "CPU hotplug is not supported on aarch64 (QEMU 7.2's virt machine has no "
                      "hot-pluggable CPUs)";
        if (!firmware)
            l->no_memory = "memory hotplug is not supported on aarch64 without firmware (the "
                           "virt machine's ACPI device for it needs firmware or pflash)";
        break;
    case SV_VM_ARCH_PPC64LE:
        l->block = SV_RESIZE_BLOCK_PPC64LE;
        l->vcpu_unplug_needs_kvm = true;
        /* QEMU's maxmem is aligned down the same way (the hashed page table) */
        l->max_memory = l->max_memory / SV_RESIZE_BLOCK_PPC64LE * SV_RESIZE_BLOCK_PPC64LE;
        break;
    case SV_VM_ARCH_S390X:
        l->block = 1;
        l->no_memory = "memory hotplug is not supported on s390x (it needs virtio-mem-ccw, which "
                       "QEMU 7.2 lacks)";
        l->no_vcpu_unplug = "vCPU unplug is not supported on s390x (QEMU 7.2 cannot unplug "
                            "s390x CPUs)";
        break;
    default:
        l->block = 1;
        l->no_memory = "memory hotplug is not supported on this arch";
        l->no_vcpus = "CPU hotplug is not supported on this arch";
        break;
    }
    if (vm->confidential_guest) {
        l->no_memory = "memory hotplug is not supported for a confidential guest";
        l->no_vcpus = "CPU hotplug is not supported for a confidential guest";
    }
    if (l->max_memory < l->memory)
        l->max_memory = l->memory;
    /* hot-plugged RAM is backed as the boot RAM is (arch_base.c's memory
     * topology): shared where vhost-user backends map guest RAM. Not in a
     * file_mem_backend, which may name the boot RAM's own file. */
    bool shared = vm->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS || vm->enable_vhost_user_store;
    if (vm->enable_hugepages)
        l->mem_path = "/dev/hugepages";
    else if (shared)
        l->mem_path = "/dev/shm";
    l->mem_share = shared;
    l->mem_prealloc = vm->enable_mem_prealloc || vm->enable_hugepages;
}

/* ---- what QEMU has ------------------------------------------------------------ */

typedef struct dimm {
    char *id, *memdev; /* memdev: the backend's id (its QOM path's last part) */
    int64_t n;         /* N of DIMM_PREFIX N; -1: not ours */
    int64_t size;      /* MiB */
} dimm;

typedef struct mem_view {
    int64_t memory;  /* MiB: boot RAM + every pc-dimm */
    size_t used_slots;
    dimm *ours;      /* by N, ascending */
    size_t n_ours;
    int64_t next;    /* the next free N for a DIMM and its backend */
} mem_view;

static void mem_view_clear(mem_view *v)
{
    for (size_t i = 0; i < v->n_ours; i++) {
        free(v->ours[i].id);
        free(v->ours[i].memdev);
    }
    free(v->ours);
    memset(v, 0, sizeof(*v));
}

static int cmp_dimm(const void *a, const void *b)
{
    const dimm *x = a, *y = b;
    return (x->n > y->n) - (x->n < y->n);
}

/* The object ids under /objects (qom-list), for the numbering. */
static int object_ids(sv_qmp *q, json_object **list, sv_error **err)
{
    _cleanup_json_ json_object *args = json_object_new_object();
    if (!args || json_object_object_add(args, "path", json_object_new_string("/objects")) < 0)
        return oom(err);
    int r = sv_qmp_execute(q, "qom-list", args, SV_QMP_DEADLINE_DEFAULT, list, err);
    if (r < 0)
        return r;
    if (!json_object_is_type(*list, json_type_array)) {
        json_object_put(*list);
        *list = NULL;
        return sv_error_set(err, EPROTO, "qmp qom-list: reply: expected an array");
    }
    return 0;
}

static bool object_listed(json_object *list, const char *id)
{
    size_t n = list ? json_object_array_length(list) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *name = NULL;
        if (json_object_object_get_ex(json_object_array_get_idx(list, i), "name", &name) &&
            json_object_is_type(name, json_type_string) &&
            strcmp(json_object_get_string(name), id) == 0)
            return true;
    }
    return false;
}

/* Replaces rec's DIMMs with `v`'s, object-del'ing the backends of recorded
 * DIMMs QEMU no longer has (an unplug that completed after its call gave
 * up, a backend whose object-del failed). */
static int reconcile_dimms(sv_qmp *q, const mem_view *v, json_object *objects, sv_vm_resized *rec,
                           sv_error **err)
{
    for (size_t i = 0; i < rec->n_dimms; i++) {
        const sv_vm_dimm *d = &rec->dimms[i];
        bool present = false;
        for (size_t j = 0; j < v->n_ours && !present; j++)
            present = strcmp(v->ours[j].id, d->id) == 0;
        if (!present && d->memdev && id_number(d->memdev, MEMDEV_PREFIX) >= 0 &&
            object_listed(objects, d->memdev))
            sv_qmp_object_del(q, d->memdev, SV_QMP_DEADLINE_DEFAULT, NULL);
    }
    sv_vm_dimm *nd = NULL;
    if (v->n_ours && !(nd = calloc(v->n_ours, sizeof(*nd))))
        return oom(err);
    for (size_t i = 0; i < v->n_ours; i++) {
        nd[i].id = strdup(v->ours[i].id);
        nd[i].memdev = strdup(v->ours[i].memdev);
        nd[i].size_mib = v->ours[i].size;
        if (!nd[i].id || !nd[i].memdev) {
            sv_vm_resized tmp = {.dimms = nd, .n_dimms = i + 1};
            sv_vm_resized_clear(&tmp);
            return oom(err);
        }
    }
    for (size_t i = 0; i < rec->n_dimms; i++) {
        free(rec->dimms[i].id);
        free(rec->dimms[i].memdev);
    }
    free(rec->dimms);
    rec->dimms = nd;
    rec->n_dimms = v->n_ours;
    return 0;
}

/* Reads QEMU's memory devices (and objects) into *v, reconciling rec. */
static int mem_view_read(sv_qmp *q, const sv_resize_limits *l, sv_vm_resized *rec, mem_view *v,
                         sv_error **err)
{
    memset(v, 0, sizeof(*v));
    v->memory = l->memory;
    sv_qmp_memory_device *devs = NULL;
    size_t n = 0;
    int r = sv_qmp_query_memory_devices(q, SV_QMP_DEADLINE_DEFAULT, &devs, &n, err);
    if (r < 0)
        return r;
    _cleanup_json_ json_object *objects = NULL;
    if ((r = object_ids(q, &objects, err)) < 0) {
        sv_qmp_memory_devices_free(devs, n);
        return r;
    }
    v->ours = calloc(n ? n : 1, sizeof(*v->ours));
    if (!v->ours) {
        sv_qmp_memory_devices_free(devs, n);
        return oom(err);
    }
    for (size_t i = 0; i < n; i++) {
        const sv_qmp_memory_device *d = &devs[i];
        bool dimm_type = d->type && strcmp(d->type, "dimm") == 0;
        if (dimm_type || (d->type && strcmp(d->type, "nvdimm") == 0))
            v->used_slots++;
        if (!dimm_type)
            continue;
        v->memory += d->size / MiB;
        int64_t num = id_number(d->id, DIMM_PREFIX);
        if (num < 0)
            continue;
        if (num >= v->next)
            v->next = num + 1;
        const char *memdev = d->memdev ? d->memdev : "";
        if (strncmp(memdev, OBJECTS, strlen(OBJECTS)) == 0)
            memdev += strlen(OBJECTS);
        dimm *o = &v->ours[v->n_ours++];
        o->n = num;
        o->size = d->size / MiB;
        o->id = strdup(d->id);
        o->memdev = strdup(memdev);
        if (!o->id || !o->memdev) {
            sv_qmp_memory_devices_free(devs, n);
            return oom(err);
        }
    }
    sv_qmp_memory_devices_free(devs, n);
    qsort(v->ours, v->n_ours, sizeof(*v->ours), cmp_dimm);
    /* a backend left behind keeps its number taken too */
    size_t no = json_object_array_length(objects);
    for (size_t i = 0; i < no; i++) {
        json_object *name = NULL;
        if (!json_object_object_get_ex(json_object_array_get_idx(objects, i), "name", &name))
            continue;
        int64_t num = id_number(json_object_get_string(name), MEMDEV_PREFIX);
        if (num >= v->next)
            v->next = num + 1;
    }
    return reconcile_dimms(q, v, objects, rec, err);
}

typedef struct vcpu_view {
    int64_t vcpus;                   /* present */
    sv_qmp_hotpluggable_cpu *slots;  /* as QEMU lists them */
    size_t n_slots;
    struct our_cpu {
        size_t slot;                 /* index into slots */
        int64_t n;                   /* N of its id "cpu-N" */
    } *ours;                         /* by N ascending */
    size_t n_ours;
    int64_t next;                    /* the next free N for a vCPU device */
} vcpu_view;

static void vcpu_view_clear(vcpu_view *v)
{
    sv_qmp_hotpluggable_cpus_free(v->slots, v->n_slots);
    free(v->ours);
    memset(v, 0, sizeof(*v));
}

/* The vCPU device id of a slot plugged by a resize ("cpu-3"), or NULL. */
static const char *slot_cpu_id(const sv_qmp_hotpluggable_cpu *s)
{
    if (!s->qom_path || strncmp(s->qom_path, PERIPHERAL, strlen(PERIPHERAL)) != 0)
        return NULL;
    const char *id = s->qom_path + strlen(PERIPHERAL);
    return id_number(id, CPU_PREFIX) >= 0 ? id : NULL;
}

static int cmp_ours(const void *a, const void *b)
{
    int64_t x = ((const struct our_cpu *)a)->n, y = ((const struct our_cpu *)b)->n;
    return (x > y) - (x < y);
}

static int vcpu_view_read(sv_qmp *q, const sv_resize_limits *l, sv_vm_resized *rec, vcpu_view *v,
                          sv_error **err)
{
    memset(v, 0, sizeof(*v));
    int r = sv_qmp_query_hotpluggable_cpus(q, SV_QMP_DEADLINE_DEFAULT, &v->slots, &v->n_slots, err);
    if (r < 0)
        return r;
    v->ours = calloc(v->n_slots ? v->n_slots : 1, sizeof(*v->ours));
    if (!v->ours)
        return oom(err);
    v->next = l->vcpus;
    for (size_t i = 0; i < v->n_slots; i++) {
        const sv_qmp_hotpluggable_cpu *s = &v->slots[i];
        if (s->qom_path)
            v->vcpus += s->vcpus_count > 0 ? s->vcpus_count : 1;
        const char *id = slot_cpu_id(s);
        if (!id)
            continue;
        int64_t num = id_number(id, CPU_PREFIX);
        v->ours[v->n_ours++] = (struct our_cpu){i, num};
        if (num >= v->next)
            v->next = num + 1;
    }
    qsort(v->ours, v->n_ours, sizeof(*v->ours), cmp_ours);
    /* the record: what QEMU has, oldest first */
    char **ids = calloc(v->n_ours + 1, sizeof(*ids));
    if (!ids)
        return oom(err);
    for (size_t i = 0; i < v->n_ours; i++)
        if (!(ids[i] = strdup(slot_cpu_id(&v->slots[v->ours[i].slot])))) {
            for (size_t j = 0; j < i; j++)
                free(ids[j]);
            free(ids);
            return oom(err);
        }
    for (size_t i = 0; rec->vcpus && rec->vcpus[i]; i++)
        free(rec->vcpus[i]);
    free(rec->vcpus);
    rec->vcpus = ids;
    return 0;
}

int sv_resize_query(sv_qmp *q, const sv_resize_limits *l, sv_vm_resized *rec,
                    sv_resize_size *out, sv_error **err)
{
    _cleanup_(mem_view_clear) mem_view m = {0};
    int r = mem_view_read(q, l, rec, &m, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", l->id);
    out->memory = m.memory;
    if (l->no_vcpus) {
        /* no hot-pluggable CPUs to list (aarch64 refuses the query) */
        sv_qmp_cpu_info *cpus = NULL;
        size_t n = 0;
        if ((r = sv_qmp_query_cpus_fast(q, SV_QMP_DEADLINE_DEFAULT, &cpus, &n, err)) < 0)
            return sv_error_prefix(err, "vm %s", l->id);
        sv_qmp_cpu_infos_free(cpus, n);
        out->vcpus = (int64_t)n;
        return 0;
    }
    _cleanup_(vcpu_view_clear) vcpu_view v = {0};
    if ((r = vcpu_view_read(q, l, rec, &v, err)) < 0)
        return sv_error_prefix(err, "vm %s", l->id);
    out->vcpus = v.vcpus;
    return 0;
}

/* ---- memory ------------------------------------------------------------------ */

/* Drops entry `i` of rec's DIMMs. */
static void rec_drop_dimm(sv_vm_resized *rec, size_t i)
{
    free(rec->dimms[i].id);
    free(rec->dimms[i].memdev);
    memmove(&rec->dimms[i], &rec->dimms[i + 1], (rec->n_dimms - i - 1) * sizeof(*rec->dimms));
    rec->n_dimms--;
}

static int rec_add_dimm(sv_vm_resized *rec, const char *id, const char *memdev, int64_t size,
                        sv_error **err)
{
    sv_vm_dimm *nd = realloc(rec->dimms, (rec->n_dimms + 1) * sizeof(*nd));
    if (!nd)
        return oom(err);
    rec->dimms = nd;
    sv_vm_dimm *d = &nd[rec->n_dimms];
    *d = (sv_vm_dimm){.id = strdup(id), .memdev = strdup(memdev), .size_mib = size};
    if (!d->id || !d->memdev) {
        free(d->id);
        free(d->memdev);
        return oom(err);
    }
    rec->n_dimms++;
    return 0;
}

/* The memory backend of a hot-plugged DIMM: QMP takes the size as a number
 * (the -object form's "512M" is command-line syntax), so this list is not
 * the cold-plug builder's; its other properties are the boot RAM's. */
static sv_qopts *backend_props(const sv_resize_limits *l, const char *id, int64_t mib)
{
    sv_qopts *o =
        sv_qopts_new("qom-type", l->mem_path ? "memory-backend-file" : "memory-backend-ram");
    sv_qopts_str(o, "id", id);
    sv_qopts_int(o, "size", mib * MiB);
    sv_qopts_str(o, "mem-path", l->mem_path);
    if (l->mem_share)
        sv_qopts_bool(o, "share", true);
    if (l->mem_prealloc)
        sv_qopts_bool(o, "prealloc", true);
    return o;
}

static int grow_memory(sv_qmp *q, const sv_resize_limits *l, const mem_view *v, int64_t target,
                       sv_vm_resized *rec, int64_t *after, sv_error **err)
{
    int64_t size = (target - v->memory + l->block - 1) / l->block * l->block;
    if (v->memory + size > l->max_memory)
        return sv_error_set(err, EINVAL,
                            "vm %s: memory: growing from %" PRId64 " to %" PRId64
                            " MiB takes a %" PRId64 " MiB DIMM (%s hot-plugs memory in %" PRId64
                            " MiB blocks), which would pass max_memory (%" PRId64 " MiB)",
                            l->id, v->memory, target, size, l->arch, l->block, l->max_memory);
    if ((int64_t)v->used_slots >= l->memory_slots)
        return sv_error_set(err, ENOSPC,
                            "vm %s: memory: all %" PRId64 " memory slots are taken "
                            "(memory_slots)",
                            l->id, l->memory_slots);
    char memdev[32], id[32];
    snprintf(memdev, sizeof(memdev), MEMDEV_PREFIX "%" PRId64, v->next);
    snprintf(id, sizeof(id), DIMM_PREFIX "%" PRId64, v->next);
    _cleanup_qopts_ sv_qopts *backend = backend_props(l, memdev, size);
    _cleanup_qopts_ sv_qopts *dev = sv_qopts_new("driver", "pc-dimm");
    sv_qopts_str(dev, "id", id);
    sv_qopts_str(dev, "memdev", memdev);
    if (!backend || !dev || backend->oom || dev->oom)
        return oom(err);
    int r = sv_qmp_object_add(q, backend, SV_QMP_DEADLINE_DEFAULT, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s: memory: plugging a %" PRId64 " MiB DIMM", l->id,
                               size);
    if ((r = sv_qmp_device_add(q, dev, SV_QMP_DEADLINE_DEFAULT, err)) < 0) {
        sv_qmp_object_del(q, memdev, SV_QMP_DEADLINE_DEFAULT, NULL);
        return sv_error_prefix(err, "vm %s: memory: plugging a %" PRId64 " MiB DIMM", l->id,
                               size);
    }
    *after = v->memory + size;
    return rec_add_dimm(rec, id, memdev, size, err);
}

static int shrink_memory(sv_qmp *q, const sv_resize_limits *l, const mem_view *v, int64_t target,
                         int64_t unplug_deadline, sv_vm_resized *rec, int64_t *after,
                         sv_error **err)
{
    if (l->no_memory_unplug)
        return sv_error_set(err, EOPNOTSUPP, "vm %s: memory: %s", l->id, l->no_memory_unplug);
    if (v->n_ours == 0)
        return sv_error_set(err, EINVAL,
                            "vm %s: memory: cannot shrink to %" PRId64 " MiB: no DIMM was "
                            "hot-plugged by a resize (memory is %" PRId64 " MiB)",
                            l->id, target, v->memory);
    int64_t memory = v->memory;
    size_t removed = 0;
    int64_t smallest = INT64_MAX;
    for (size_t i = v->n_ours; i-- > 0;) {
        const dimm *d = &v->ours[i];
        if (d->size < smallest)
            smallest = d->size;
        if (memory - d->size < target)
            continue;
        int r = sv_qmp_device_del_wait(q, d->id, unplug_deadline, err);
        if (r < 0) {
            *after = memory;
            return sv_error_prefix(err, "vm %s: memory: unplugging %s (%" PRId64 " MiB)", l->id,
                                   d->id, d->size);
        }
        memory -= d->size;
        removed++;
        *after = memory;
        /* the DIMM is gone; its backend goes now (or at the next call's reconcile) */
        size_t at = rec->n_dimms;
        for (size_t j = 0; j < rec->n_dimms; j++)
            if (strcmp(rec->dimms[j].id, d->id) == 0)
                at = j;
        if (sv_qmp_object_del(q, d->memdev, SV_QMP_DEADLINE_DEFAULT, err) < 0)
            return sv_error_prefix(err,
                                   "vm %s: memory: %s is unplugged, but removing its backend %s "
                                   "failed",
                                   l->id, d->id, d->memdev);
        if (at < rec->n_dimms)
            rec_drop_dimm(rec, at);
    }
    if (removed == 0)
        return sv_error_set(err, EINVAL,
                            "vm %s: memory: cannot shrink to %" PRId64 " MiB: DIMMs are removed "
                            "whole, and the smallest hot-plugged one (%" PRId64 " MiB) would take "
                            "memory (%" PRId64 " MiB) below it",
                            l->id, target, smallest, v->memory);
    return 0;
}

int sv_resize_memory(sv_qmp *q, const sv_resize_limits *l, int64_t target,
                     int64_t unplug_deadline, sv_vm_resized *rec, int64_t *before,
                     int64_t *after, sv_error **err)
{
    if (l->no_memory)
        return sv_error_set(err, EOPNOTSUPP, "vm %s: memory: %s", l->id, l->no_memory);
    if (target < l->memory)
        return sv_error_set(err, EINVAL,
                            "vm %s: memory: %" PRId64 " MiB is less than the boot memory (%" PRId64
                            " MiB), which cannot be unplugged",
                            l->id, target, l->memory);
    if (target > l->max_memory) {
        if (l->max_memory == l->memory)
            return sv_error_set(err, EINVAL,
                                "vm %s: memory: %" PRId64 " MiB is more than the VM has (%" PRId64
                                " MiB), and it has no hot-plug room: create it with max_memory",
                                l->id, target, l->memory);
        return sv_error_set(err, EINVAL,
                            "vm %s: memory: %" PRId64 " MiB is more than max_memory (%" PRId64
                            " MiB), the hot-plug ceiling set when the VM was created",
                            l->id, target, l->max_memory);
    }
    _cleanup_(mem_view_clear) mem_view v = {0};
    int r = mem_view_read(q, l, rec, &v, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", l->id);
    int64_t now = v.memory;
    if (before)
        *before = v.memory;
    if (target > v.memory)
        r = grow_memory(q, l, &v, target, rec, &now, err);
    else if (target < v.memory)
        r = shrink_memory(q, l, &v, target, unplug_deadline, rec, &now, err);
    if (after)
        *after = now;
    return r;
}

/* ---- vCPUs -------------------------------------------------------------------- */

/* The order free slots are filled in: lowest topology ids first (QEMU lists
 * them highest first). */
static int cmp_props(const void *a, const void *b)
{
    const sv_qmp_cpu_props *x = &((const sv_qmp_hotpluggable_cpu *)a)->props;
    const sv_qmp_cpu_props *y = &((const sv_qmp_hotpluggable_cpu *)b)->props;
    const int64_t xs[] = {x->node_id, x->socket_id, x->die_id, x->cluster_id, x->core_id,
                          x->thread_id};
    const int64_t ys[] = {y->node_id, y->socket_id, y->die_id, y->cluster_id, y->core_id,
                          y->thread_id};
    for (size_t i = 0; i < SV_ARRAY_SIZE(xs); i++)
        if (xs[i] != ys[i])
            return xs[i] < ys[i] ? -1 : 1;
    return 0;
}

/* device_add of a free slot: its driver and exactly the props QEMU listed. */
static sv_qopts *cpu_props(const sv_qmp_hotpluggable_cpu *s, const char *id)
{
    sv_qopts *o = sv_qopts_new("driver", s->type);
    sv_qopts_str(o, "id", id);
    const struct {
        const char *key;
        int64_t value;
    } props[] = {{"node-id", s->props.node_id},       {"socket-id", s->props.socket_id},
                 {"die-id", s->props.die_id},         {"cluster-id", s->props.cluster_id},
                 {"core-id", s->props.core_id},       {"thread-id", s->props.thread_id}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(props); i++)
        if (props[i].value >= 0)
            sv_qopts_int(o, props[i].key, props[i].value);
    return o;
}

static int rec_add_vcpu(sv_vm_resized *rec, const char *id, sv_error **err)
{
    size_t n = 0;
    while (rec->vcpus && rec->vcpus[n])
        n++;
    char **v = realloc(rec->vcpus, (n + 2) * sizeof(*v));
    if (!v)
        return oom(err);
    rec->vcpus = v;
    if (!(v[n] = strdup(id)))
        return oom(err);
    v[n + 1] = NULL;
    return 0;
}

static void rec_drop_vcpu(sv_vm_resized *rec, const char *id)
{
    for (size_t i = 0; rec->vcpus && rec->vcpus[i]; i++)
        if (strcmp(rec->vcpus[i], id) == 0) {
            free(rec->vcpus[i]);
            for (size_t j = i; rec->vcpus[j]; j++)
                rec->vcpus[j] = rec->vcpus[j + 1];
            return;
        }
}

static int grow_vcpus(sv_qmp *q, const sv_resize_limits *l, vcpu_view *v, int64_t target,
                      sv_vm_resized *rec, int64_t *after, sv_error **err)
{
    /* the free slots, lowest first */
    sv_qmp_hotpluggable_cpu *free_slots = calloc(v->n_slots ? v->n_slots : 1, sizeof(*free_slots));
    if (!free_slots)
        return oom(err);
    size_t nf = 0;
    for (size_t i = 0; i < v->n_slots; i++)
        if (!v->slots[i].qom_path)
            free_slots[nf++] = v->slots[i]; /* borrowed strings */
    qsort(free_slots, nf, sizeof(*free_slots), cmp_props);
    int64_t vcpus = v->vcpus, want = target - v->vcpus, added = 0;
    int r = 0;
    for (size_t i = 0; i < nf && vcpus < target; i++) {
        char id[32];
        snprintf(id, sizeof(id), CPU_PREFIX "%" PRId64, v->next++);
        _cleanup_qopts_ sv_qopts *o = cpu_props(&free_slots[i], id);
        if (!o || o->oom) {
            r = oom(err);
            break;
        }
        if ((r = sv_qmp_device_add(q, o, SV_QMP_DEADLINE_DEFAULT, err)) < 0) {
            if (added)
                sv_error_prefix(err, "vm %s: vcpus: added %" PRId64 " of %" PRId64 " vCPUs",
                                l->id, added, want);
            else
                sv_error_prefix(err, "vm %s: vcpus: plugging %s", l->id, id);
            break;
        }
        int64_t c = free_slots[i].vcpus_count > 0 ? free_slots[i].vcpus_count : 1;
        vcpus += c;
        added += c;
        if ((r = rec_add_vcpu(rec, id, err)) < 0)
            break;
    }
    free(free_slots);
    *after = vcpus;
    if (r == 0 && vcpus < target)
        r = sv_error_set(err, ENOSPC,
                         "vm %s: vcpus: QEMU has room for %" PRId64 " vCPUs, not %" PRId64,
                         l->id, vcpus, target);
    return r;
}

/* Whether QEMU runs the guest under KVM (query-kvm). */
static int kvm_enabled(sv_qmp *q, bool *on, sv_error **err)
{
    _cleanup_json_ json_object *ret = NULL;
    int r = sv_qmp_execute(q, "query-kvm", NULL, SV_QMP_DEADLINE_DEFAULT, &ret, err);
    if (r < 0)
        return r;
    json_object *e = NULL;
    if (!json_object_object_get_ex(ret, "enabled", &e) ||
        !json_object_is_type(e, json_type_boolean))
        return sv_error_set(err, EPROTO, "qmp query-kvm: reply: enabled: expected a boolean");
    *on = json_object_get_boolean(e);
    return 0;
}

static int shrink_vcpus(sv_qmp *q, const sv_resize_limits *l, vcpu_view *v, int64_t target,
                        int64_t unplug_deadline, sv_vm_resized *rec, int64_t *after,
                        sv_error **err)
{
    if (l->no_vcpu_unplug)
        return sv_error_set(err, EOPNOTSUPP, "vm %s: vcpus: %s", l->id, l->no_vcpu_unplug);
    int64_t removable = 0;
    for (size_t i = 0; i < v->n_ours; i++) {
        int64_t c = v->slots[v->ours[i].slot].vcpus_count;
        removable += c > 0 ? c : 1;
    }
    if (target < v->vcpus - removable)
        return sv_error_set(err, EINVAL,
                            "vm %s: vcpus: cannot go below %" PRId64 ": only vCPUs a resize "
                            "hot-plugged can be unplugged (the VM booted with %" PRId64 ")",
                            l->id, v->vcpus - removable, l->vcpus);
    if (l->vcpu_unplug_needs_kvm) {
        /* Measured with QEMU 7.2 under TCG, single- and multi-threaded:
         * the guest releases the vCPU, and then x86_64 sends DEVICE_DELETED
         * for its lapic only and dies on the next vCPU device_add (heap
         * corruption); ppc64le sends it but dies on the next hotplug of any
         * device (a use after free); single-threaded TCG aborts at the
         * unplug itself (qemu_thread_join). */
        bool kvm = false;
        int r = kvm_enabled(q, &kvm, err);
        if (r < 0)
            return sv_error_prefix(err, "vm %s", l->id);
        if (!kvm)
            return sv_error_set(err, EOPNOTSUPP,
                                "vm %s: vcpus: vCPU unplug on %s needs KVM: under TCG, QEMU 7.2 "
                                "does not survive it (it crashes at the next hotplug)",
                                l->id, l->arch);
    }
    int64_t vcpus = v->vcpus;
    for (size_t i = v->n_ours; i-- > 0 && vcpus > target;) {
        const sv_qmp_hotpluggable_cpu *s = &v->slots[v->ours[i].slot];
        int64_t c = s->vcpus_count > 0 ? s->vcpus_count : 1;
        if (vcpus - c < target)
            continue;
        const char *id = slot_cpu_id(s);
        int r = sv_qmp_device_del_wait(q, id, unplug_deadline, err);
        if (r < 0) {
            *after = vcpus;
            return sv_error_prefix(err, "vm %s: vcpus: unplugging %s", l->id, id);
        }
        vcpus -= c;
        *after = vcpus;
        rec_drop_vcpu(rec, id);
    }
    return 0;
}

int sv_resize_vcpus(sv_qmp *q, const sv_resize_limits *l, int64_t target,
                    int64_t unplug_deadline, sv_vm_resized *rec, int64_t *before,
                    int64_t *after, sv_error **err)
{
    if (l->no_vcpus)
        return sv_error_set(err, EOPNOTSUPP, "vm %s: vcpus: %s", l->id, l->no_vcpus);
    if (target < 1)
        return sv_error_set(err, EINVAL, "vm %s: vcpus: must be at least 1, not %" PRId64, l->id,
                            target);
    if (target > l->max_vcpus)
        return sv_error_set(err, EINVAL,
                            "vm %s: vcpus: %" PRId64 " is more than max_vcpus (%" PRId64
                            "), the hot-plug ceiling set when the VM was created",
                            l->id, target, l->max_vcpus);
    _cleanup_(vcpu_view_clear) vcpu_view v = {0};
    int r = vcpu_view_read(q, l, rec, &v, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", l->id);
    int64_t now = v.vcpus;
    if (before)
        *before = v.vcpus;
    if (target > v.vcpus)
        r = grow_vcpus(q, l, &v, target, rec, &now, err);
    else if (target < v.vcpus)
        r = shrink_vcpus(q, l, &v, target, unplug_deadline, rec, &now, err);
    if (after)
        *after = now;
    return r;
}

/* ---- guest parameters ------------------------------------------------------------ */

/* Whether the kernel parameters `params` hold a word starting with `key`. */
static bool has_param(const char *params, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = params; p && *p;) {
        p += strspn(p, " \t\n");
        if (strncmp(p, key, kl) == 0)
            return true;
        p += strcspn(p, " \t\n");
    }
    return false;
}

char *sv_resize_guest_params(const sv_vm_config *vm)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    if (vm->max_memory)
        sv_strbuf_append(&sb, "memory_hotplug.online_policy=auto-movable");
    if (vm->shared_fs != SV_VM_SHARED_FS_NONE && !has_param(vm->kernel_params, "sandvm.mount="))
        sv_strbuf_appendf(&sb, "%s" "sandvm.mount=" SV_VM_SHARED_TAG ":%s:" SV_GUEST_SHARED_MOUNT,
                          sb.len ? " " : "",
                          vm->shared_fs == SV_VM_SHARED_FS_VIRTIO_FS ? "virtiofs" : "9p");
    return sv_strbuf_steal(&sb);
}
