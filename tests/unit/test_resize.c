/*
 * Resizing a running VM (src/qemu/resize.c) against the scripted fake QMP
 * server: the exact commands of memory hotplug (object-add + device_add
 * pc-dimm) and unplug (device_del, DEVICE_DELETED, object-del), of CPU
 * hotplug (query-hotpluggable-cpus -> device_add with the listed props) and
 * unplug, the timeouts of an unplug the guest ignores (ETIMEDOUT naming the
 * device; the connection stays usable), the refusals per arch, the record
 * kept in state.json, and the guest's kernel parameters.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/vm_config.h"
#include "fake_qmp.h"
#include "qemu/qmp.h"
#include "qemu/qmp_cmds.h"
#include "qemu/resize.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/sock.h"

#define DL sv_deadline_ms(5000)

typedef struct conn {
    fake_qmp *f;
    sv_qmp *q;
} conn;

static conn conn_start(const fq_step *script, size_t n)
{
    int fd = -1;
    conn c = {fake_qmp_start(script, n, &fd), NULL};
    assert_non_null(c.f);
    c.q = sv_qmp_new(fd);
    assert_non_null(c.q);
    sv_qmp_set_default_timeout(c.q, 5000);
    _cleanup_error_ sv_error *err = NULL;
    if (sv_qmp_handshake(c.q, DL, &err) < 0)
        fail_msg("handshake: %s", sv_error_message(err));
    return c;
}
#define START(script) conn_start(script, SV_ARRAY_SIZE(script))

static void conn_free(conn *c)
{
    sv_qmp_free(c->q);
    c->q = NULL;
    const char *why = fake_qmp_finish(c->f);
    if (why)
        fail_msg("%s", why);
    fake_qmp_free(c->f);
}

/* A VM config of `arch` with hot-plug room: 1 vCPU of 4, 512 MiB of 2048. */
static void config(sv_vm_config *vm, int arch)
{
    sv_vm_config_init_defaults(vm, arch);
    vm->kernel = "/k";
    vm->vcpus = 1;
    vm->max_vcpus = 4;
    vm->memory = 512;
    vm->max_memory = 2048;
}

static void limits(sv_resize_limits *l, sv_vm_config *vm, int arch)
{
    config(vm, arch);
    sv_resize_limits_init(vm, arch, "t", l);
}

#define expect_fail(call, code, msg)                                                               \
    do {                                                                                           \
        _cleanup_error_ sv_error *e_ = NULL;                                                       \
        sv_error **err_ = &e_;                                                                     \
        int r_ = (call);                                                                           \
        if (r_ != -(code))                                                                         \
            fail_msg("%s: returned %d (%s), expected %d", #call, r_, sv_error_message(e_),         \
                     -(code));                                                                     \
        assert_string_equal(sv_error_message(e_), (msg));                                          \
    } while (0)

#define expect_ok(call)                                                                            \
    do {                                                                                           \
        _cleanup_error_ sv_error *e_ = NULL;                                                       \
        sv_error **err_ = &e_;                                                                     \
        if ((call) < 0)                                                                            \
            fail_msg("%s: %s", #call, sv_error_message(e_));                                       \
    } while (0)

#define ERR err_

static size_t n_vcpus(const sv_vm_resized *rec)
{
    size_t n = 0;
    while (rec->vcpus && rec->vcpus[n])
        n++;
    return n;
}

/* ---- memory ------------------------------------------------------------------- */

#define NO_MEMORY_DEVICES FQ_EXPECT_NOARGS("query-memory-devices"), FQ_RET("[]")
#define OBJECTS(json) FQ_EXPECT_ARGS("qom-list", "{\"path\": \"/objects\"}"), FQ_RET(json)
#define RAM_ONLY "[{\"name\": \"sv-ram\", \"type\": \"child<memory-backend-ram>\"}]"

static void test_memory_up(void **state)
{
    /* 700 MiB from 512: a 256 MiB DIMM (two 128 MiB blocks on x86_64) */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        NO_MEMORY_DEVICES,
        OBJECTS(RAM_ONLY),
        FQ_EXPECT_ARGS("object-add", "{\"qom-type\": \"memory-backend-ram\", \"id\": \"mem0\", "
                                     "\"size\": 268435456}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\": \"pc-dimm\", \"id\": \"dimmmem0\", \"memdev\": \"mem0\"}"),
        FQ_OK(),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t before = 0, after = 0;
    expect_ok(sv_resize_memory(c.q, &l, 700, DL, &rec, &before, &after, ERR));
    assert_int_equal(before, 512);
    assert_int_equal(after, 768);
    assert_int_equal(rec.n_dimms, 1);
    assert_string_equal(rec.dimms[0].id, "dimmmem0");
    assert_string_equal(rec.dimms[0].memdev, "mem0");
    assert_int_equal(rec.dimms[0].size_mib, 256);
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_memory_up_shared_ppc64le(void **state)
{
    /* virtio-fs: the DIMM's RAM is shared like the boot RAM; ppc64le blocks
     * are 256 MiB; numbering skips what QEMU holds (a DIMM, a left-over
     * backend mem3) */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-memory-devices"),
        FQ_RET("[{\"type\": \"dimm\", \"data\": {\"id\": \"dimmmem0\", \"memdev\": "
               "\"/objects/mem0\", \"addr\": 4294967296, \"size\": 268435456, \"slot\": 0, "
               "\"node\": 0, \"hotplugged\": true, \"hotpluggable\": true}}]"),
        OBJECTS("[{\"name\": \"sv-ram\", \"type\": \"child<memory-backend-file>\"}, "
                "{\"name\": \"mem0\", \"type\": \"child<memory-backend-file>\"}, "
                "{\"name\": \"mem3\", \"type\": \"child<memory-backend-file>\"}]"),
        FQ_EXPECT_ARGS("object-add", "{\"qom-type\": \"memory-backend-file\", \"id\": \"mem4\", "
                                     "\"size\": 536870912, \"mem-path\": \"/dev/shm\", "
                                     "\"share\": true}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\": \"pc-dimm\", \"id\": \"dimmmem4\", \"memdev\": \"mem4\"}"),
        FQ_OK(),
    };
    sv_vm_config vm;
    config(&vm, SV_VM_ARCH_PPC64LE);
    vm.shared_fs = SV_VM_SHARED_FS_VIRTIO_FS;
    vm.shared_dir = "/srv";
    sv_resize_limits l;
    sv_resize_limits_init(&vm, SV_VM_ARCH_PPC64LE, "t", &l);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t after = 0;
    expect_ok(sv_resize_memory(c.q, &l, 1025, DL, &rec, NULL, &after, ERR));
    assert_int_equal(after, 1280);
    assert_int_equal(rec.n_dimms, 2);
    assert_string_equal(rec.dimms[0].id, "dimmmem0");
    assert_string_equal(rec.dimms[1].id, "dimmmem4");
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_memory_up_rollback(void **state)
{
    /* QEMU refuses the DIMM: its backend is deleted again, nothing recorded */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        NO_MEMORY_DEVICES,
        OBJECTS(RAM_ONLY),
        FQ_EXPECT_CMD("object-add"),
        FQ_OK(),
        FQ_EXPECT_CMD("device_add"),
        FQ_ERR("GenericError", "not enough space"),
        FQ_EXPECT_ARGS("object-del", "{\"id\": \"mem0\"}"),
        FQ_OK(),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t after = 0;
    expect_fail(sv_resize_memory(c.q, &l, 1024, DL, &rec, NULL, &after, ERR), EIO,
                "vm t: memory: plugging a 512 MiB DIMM: qmp device_add: GenericError: not enough "
                "space");
    assert_int_equal(after, 512);
    assert_int_equal(rec.n_dimms, 0);
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static const char two_dimms[] =
    "[{\"type\": \"dimm\", \"data\": {\"id\": \"dimmmem0\", \"memdev\": \"/objects/mem0\", "
    "\"addr\": 4294967296, \"size\": 268435456, \"slot\": 0, \"node\": 0, \"hotplugged\": true, "
    "\"hotpluggable\": true}}, "
    "{\"type\": \"dimm\", \"data\": {\"id\": \"dimmmem1\", \"memdev\": \"/objects/mem1\", "
    "\"addr\": 4563402752, \"size\": 134217728, \"slot\": 1, \"node\": 0, \"hotplugged\": true, "
    "\"hotpluggable\": true}}]";
#define TWO_BACKENDS                                                                               \
    OBJECTS("[{\"name\": \"mem0\", \"type\": \"child<memory-backend-ram>\"}, "                    \
            "{\"name\": \"mem1\", \"type\": \"child<memory-backend-ram>\"}]")

static void test_memory_down(void **state)
{
    /* 896 MiB (512 + 256 + 128) to 700: only the newest DIMM (128) fits;
     * the 256 one would take it below 700 */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-memory-devices"),
        FQ_RET(two_dimms),
        TWO_BACKENDS,
        FQ_EXPECT_ARGS("device_del", "{\"id\": \"dimmmem1\"}"),
        FQ_OK(),
        FQ_EV("DEVICE_DELETED", "{\"device\": \"dimmmem1\", \"path\": "
                                "\"/machine/peripheral/dimmmem1\"}"),
        FQ_EXPECT_ARGS("object-del", "{\"id\": \"mem1\"}"),
        FQ_OK(),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t before = 0, after = 0;
    expect_ok(sv_resize_memory(c.q, &l, 700, DL, &rec, &before, &after, ERR));
    assert_int_equal(before, 896);
    assert_int_equal(after, 768);
    assert_int_equal(rec.n_dimms, 1);
    assert_string_equal(rec.dimms[0].id, "dimmmem0");
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_memory_down_timeout(void **state)
{
    /* the guest does not release the DIMM: ETIMEDOUT naming it, the DIMM
     * stays recorded, the connection goes on */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-memory-devices"),
        FQ_RET(two_dimms),
        TWO_BACKENDS,
        FQ_EXPECT_ARGS("device_del", "{\"id\": \"dimmmem1\"}"),
        FQ_OK(),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\": \"running\", \"running\": true}"),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t after = 0;
    expect_fail(sv_resize_memory(c.q, &l, 768, sv_deadline_ms(200), &rec, NULL, &after, ERR),
                ETIMEDOUT,
                "vm t: memory: unplugging dimmmem1 (128 MiB): qmp device_del dimmmem1: "
                "DEVICE_DELETED did not arrive: the unplug is still pending");
    assert_int_equal(after, 896);
    assert_int_equal(rec.n_dimms, 2);
    sv_qmp_status st;
    expect_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_true(st.running);
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_memory_reconcile(void **state)
{
    /* the record names a DIMM QEMU no longer has (its unplug completed after
     * the call gave up): its left-over backend is deleted, the record
     * follows QEMU */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-memory-devices"),
        FQ_RET("[{\"type\": \"dimm\", \"data\": {\"id\": \"dimmmem0\", \"memdev\": "
               "\"/objects/mem0\", \"addr\": 4294967296, \"size\": 268435456, \"slot\": 0, "
               "\"node\": 0, \"hotplugged\": true, \"hotpluggable\": true}}]"),
        TWO_BACKENDS,
        FQ_EXPECT_ARGS("object-del", "{\"id\": \"mem1\"}"),
        FQ_OK(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET("[{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"socket-id\": 1}, "
               "\"vcpus-count\": 1, \"type\": \"max-x86_64-cpu\"}, "
               "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"socket-id\": 0}, "
               "\"vcpus-count\": 1, \"qom-path\": \"/machine/unattached/device[0]\", "
               "\"type\": \"max-x86_64-cpu\"}]"),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    char *vcpus[] = {strdup("cpu-1"), NULL};
    rec.vcpus = calloc(2, sizeof(char *));
    rec.vcpus[0] = vcpus[0];
    rec.dimms = calloc(2, sizeof(*rec.dimms));
    rec.dimms[0] = (sv_vm_dimm){strdup("dimmmem0"), strdup("mem0"), 256};
    rec.dimms[1] = (sv_vm_dimm){strdup("dimmmem1"), strdup("mem1"), 128};
    rec.n_dimms = 2;
    conn c = START(s);
    sv_resize_size size;
    expect_ok(sv_resize_query(c.q, &l, &rec, &size, ERR));
    assert_int_equal(size.memory, 768);
    assert_int_equal(size.vcpus, 1);
    assert_int_equal(rec.n_dimms, 1);
    assert_string_equal(rec.dimms[0].id, "dimmmem0");
    assert_int_equal(n_vcpus(&rec), 0);
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_memory_refusals(void **state)
{
    sv_vm_config vm;
    sv_resize_limits l;
    sv_vm_resized rec = {0};
    /* decided before QMP: no script, nothing sent */
    static const fq_step none[] = {FQ_HANDSHAKE()};
    conn c = START(none);
    limits(&l, &vm, SV_VM_ARCH_S390X);
    expect_fail(sv_resize_memory(c.q, &l, 1024, DL, &rec, NULL, NULL, ERR), EOPNOTSUPP,
                "vm t: memory: memory hotplug is not supported on s390x (it needs "
                "virtio-mem-ccw, which QEMU 7.2 lacks)");
    limits(&l, &vm, SV_VM_ARCH_AARCH64);
    expect_fail(sv_resize_memory(c.q, &l, 1024, DL, &rec, NULL, NULL, ERR), EOPNOTSUPP,
                "vm t: memory: memory hotplug is not supported on aarch64 without firmware (the "
                "virt machine's ACPI device for it needs firmware or pflash)");
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    expect_fail(sv_resize_memory(c.q, &l, 4096, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: memory: 4096 MiB is more than max_memory (2048 MiB), the hot-plug "
                "ceiling set when the VM was created");
    expect_fail(sv_resize_memory(c.q, &l, 256, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: memory: 256 MiB is less than the boot memory (512 MiB), which cannot be "
                "unplugged");
    config(&vm, SV_VM_ARCH_X86_64);
    vm.max_memory = 0;
    sv_resize_limits_init(&vm, SV_VM_ARCH_X86_64, "t", &l);
    expect_fail(sv_resize_memory(c.q, &l, 1024, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: memory: 1024 MiB is more than the VM has (512 MiB), and it has no "
                "hot-plug room: create it with max_memory");
    /* ppc64le: max_memory aligned down to 256 MiB, as QEMU's maxmem */
    config(&vm, SV_VM_ARCH_PPC64LE);
    vm.max_memory = 1000;
    sv_resize_limits_init(&vm, SV_VM_ARCH_PPC64LE, "t", &l);
    expect_fail(sv_resize_memory(c.q, &l, 1000, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: memory: 1000 MiB is more than max_memory (768 MiB), the hot-plug "
                "ceiling set when the VM was created");
    conn_free(&c);
}

static void test_memory_slots_and_rounding(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        /* one slot, taken */
        FQ_EXPECT_NOARGS("query-memory-devices"),
        FQ_RET(two_dimms),
        TWO_BACKENDS,
        /* rounding up would pass the ceiling */
        NO_MEMORY_DEVICES,
        OBJECTS(RAM_ONLY),
        /* nothing a resize added: nothing to remove */
        FQ_EXPECT_NOARGS("query-memory-devices"),
        FQ_RET("[{\"type\": \"dimm\", \"data\": {\"id\": \"user0\", \"memdev\": "
               "\"/objects/m\", \"addr\": 4294967296, \"size\": 268435456, \"slot\": 0, "
               "\"node\": 0, \"hotplugged\": true, \"hotpluggable\": true}}]"),
        OBJECTS(RAM_ONLY),
    };
    sv_vm_config vm;
    config(&vm, SV_VM_ARCH_X86_64);
    vm.memory_slots = 2;
    sv_resize_limits l;
    sv_resize_limits_init(&vm, SV_VM_ARCH_X86_64, "t", &l);
    sv_vm_resized rec = {0};
    conn c = START(s);
    expect_fail(sv_resize_memory(c.q, &l, 1024, DL, &rec, NULL, NULL, ERR), ENOSPC,
                "vm t: memory: all 2 memory slots are taken (memory_slots)");
    vm.max_memory = 600;
    sv_resize_limits_init(&vm, SV_VM_ARCH_X86_64, "t", &l);
    expect_fail(sv_resize_memory(c.q, &l, 600, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: memory: growing from 512 to 600 MiB takes a 128 MiB DIMM (x86_64 "
                "hot-plugs memory in 128 MiB blocks), which would pass max_memory (600 MiB)");
    vm.max_memory = 2048;
    sv_resize_limits_init(&vm, SV_VM_ARCH_X86_64, "t", &l);
    expect_fail(sv_resize_memory(c.q, &l, 512, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: memory: cannot shrink to 512 MiB: no DIMM was hot-plugged by a resize "
                "(memory is 768 MiB)");
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

/* ---- vCPUs -------------------------------------------------------------------- */

/* x86_64 q35 as QEMU 7.2 lists it: highest socket first, node-id present */
static const char x86_cpus[] =
    "[{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 3}, "
    "\"vcpus-count\": 1, \"type\": \"max-x86_64-cpu\"}, "
    "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 2}, "
    "\"vcpus-count\": 1, \"type\": \"max-x86_64-cpu\"}, "
    "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 1}, "
    "\"vcpus-count\": 1, \"type\": \"max-x86_64-cpu\"}, "
    "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 0}, "
    "\"vcpus-count\": 1, \"qom-path\": \"/machine/unattached/device[0]\", "
    "\"type\": \"max-x86_64-cpu\"}]";

static void test_vcpus_up_x86_64(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET(x86_cpus),
        FQ_EXPECT_ARGS("device_add", "{\"driver\": \"max-x86_64-cpu\", \"id\": \"cpu-1\", "
                                     "\"node-id\": 0, \"socket-id\": 1, \"core-id\": 0, "
                                     "\"thread-id\": 0}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add", "{\"driver\": \"max-x86_64-cpu\", \"id\": \"cpu-2\", "
                                     "\"node-id\": 0, \"socket-id\": 2, \"core-id\": 0, "
                                     "\"thread-id\": 0}"),
        FQ_OK(),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t before = 0, after = 0;
    expect_ok(sv_resize_vcpus(c.q, &l, 3, DL, &rec, &before, &after, ERR));
    assert_int_equal(before, 1);
    assert_int_equal(after, 3);
    assert_int_equal(n_vcpus(&rec), 2);
    assert_string_equal(rec.vcpus[0], "cpu-1");
    assert_string_equal(rec.vcpus[1], "cpu-2");
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_vcpus_up_ppc64le(void **state)
{
    /* pseries: spapr cores, props core-id and node-id only */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET("[{\"props\": {\"core-id\": 3, \"node-id\": 0}, \"vcpus-count\": 1, "
               "\"type\": \"power9_v2.0-spapr-cpu-core\"}, "
               "{\"props\": {\"core-id\": 2, \"node-id\": 0}, \"vcpus-count\": 1, "
               "\"type\": \"power9_v2.0-spapr-cpu-core\"}, "
               "{\"props\": {\"core-id\": 1, \"node-id\": 0}, \"vcpus-count\": 1, "
               "\"qom-path\": \"/machine/peripheral/cpu-1\", "
               "\"type\": \"power9_v2.0-spapr-cpu-core\"}, "
               "{\"props\": {\"core-id\": 0, \"node-id\": 0}, \"vcpus-count\": 1, "
               "\"qom-path\": \"/machine/unattached/device[1]\", "
               "\"type\": \"power9_v2.0-spapr-cpu-core\"}]"),
        FQ_EXPECT_ARGS("device_add", "{\"driver\": \"power9_v2.0-spapr-cpu-core\", "
                                     "\"id\": \"cpu-2\", \"node-id\": 0, \"core-id\": 2}"),
        FQ_OK(),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_PPC64LE);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t before = 0, after = 0;
    expect_ok(sv_resize_vcpus(c.q, &l, 3, DL, &rec, &before, &after, ERR));
    assert_int_equal(before, 2);
    assert_int_equal(after, 3);
    assert_int_equal(n_vcpus(&rec), 2);
    assert_string_equal(rec.vcpus[0], "cpu-1");
    assert_string_equal(rec.vcpus[1], "cpu-2");
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_vcpus_up_partial(void **state)
{
    /* the second device_add is refused: the first stays, recorded */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET(x86_cpus),
        FQ_EXPECT_CMD("device_add"),
        FQ_OK(),
        FQ_EXPECT_CMD("device_add"),
        FQ_ERR("GenericError", "CPU hotplug failed"),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t after = 0;
    expect_fail(sv_resize_vcpus(c.q, &l, 4, DL, &rec, NULL, &after, ERR), EIO,
                "vm t: vcpus: added 1 of 3 vCPUs: qmp device_add: GenericError: CPU hotplug "
                "failed");
    assert_int_equal(after, 2);
    assert_int_equal(n_vcpus(&rec), 1);
    assert_string_equal(rec.vcpus[0], "cpu-1");
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

/* x86_64 with cpu-1 and cpu-2 hot-plugged */
static const char x86_cpus_plugged[] =
    "[{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 3}, "
    "\"vcpus-count\": 1, \"type\": \"max-x86_64-cpu\"}, "
    "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 2}, "
    "\"vcpus-count\": 1, \"qom-path\": \"/machine/peripheral/cpu-2\", "
    "\"type\": \"max-x86_64-cpu\"}, "
    "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 1}, "
    "\"vcpus-count\": 1, \"qom-path\": \"/machine/peripheral/cpu-1\", "
    "\"type\": \"max-x86_64-cpu\"}, "
    "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"node-id\": 0, \"socket-id\": 0}, "
    "\"vcpus-count\": 1, \"qom-path\": \"/machine/unattached/device[0]\", "
    "\"type\": \"max-x86_64-cpu\"}]";

#define KVM(on)                                                                                    \
    FQ_EXPECT_NOARGS("query-kvm"), FQ_RET("{\"enabled\": " #on ", \"present\": " #on "}")

static void test_vcpus_down(void **state)
{
    /* newest first; DEVICE_DELETED before device_del's reply counts too */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET(x86_cpus_plugged),
        KVM(true),
        FQ_EXPECT_ARGS("device_del", "{\"id\": \"cpu-2\"}"),
        FQ_OK(),
        FQ_SLEEP_MS(50),
        FQ_EV("DEVICE_DELETED", "{\"device\": \"cpu-2\", \"path\": \"/machine/peripheral/cpu-2\"}"),
        FQ_EXPECT_ARGS("device_del", "{\"id\": \"cpu-1\"}"),
        FQ_EV("DEVICE_DELETED", "{\"device\": \"cpu-1\", \"path\": \"/machine/peripheral/cpu-1\"}"),
        FQ_OK(),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t before = 0, after = 0;
    expect_ok(sv_resize_vcpus(c.q, &l, 1, DL, &rec, &before, &after, ERR));
    assert_int_equal(before, 3);
    assert_int_equal(after, 1);
    assert_int_equal(n_vcpus(&rec), 0);
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_vcpus_down_timeout(void **state)
{
    /* a guest that ignores the eject: ETIMEDOUT naming the vCPU device, the
     * vCPU stays recorded, the VM's QMP goes on answering */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET(x86_cpus_plugged),
        KVM(true),
        FQ_EXPECT_ARGS("device_del", "{\"id\": \"cpu-2\"}"),
        FQ_OK(),
        FQ_EXPECT_NOARGS("query-status"),
        FQ_RET("{\"status\": \"running\", \"running\": true}"),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t after = 0;
    expect_fail(sv_resize_vcpus(c.q, &l, 2, sv_deadline_ms(200), &rec, NULL, &after, ERR),
                ETIMEDOUT,
                "vm t: vcpus: unplugging cpu-2: qmp device_del cpu-2: DEVICE_DELETED did not "
                "arrive: the unplug is still pending");
    assert_int_equal(after, 3);
    assert_int_equal(n_vcpus(&rec), 2);
    sv_qmp_status st;
    expect_ok(sv_qmp_query_status(c.q, DL, &st, ERR));
    assert_true(st.running);
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_vcpus_down_ppc64le(void **state)
{
    /* a spapr core: the same device_del, the event for the core's id */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET("[{\"props\": {\"core-id\": 1, \"node-id\": 0}, \"vcpus-count\": 1, "
               "\"qom-path\": \"/machine/peripheral/cpu-1\", "
               "\"type\": \"power9_v2.0-spapr-cpu-core\"}, "
               "{\"props\": {\"core-id\": 0, \"node-id\": 0}, \"vcpus-count\": 1, "
               "\"qom-path\": \"/machine/unattached/device[1]\", "
               "\"type\": \"power9_v2.0-spapr-cpu-core\"}]"),
        KVM(true),
        FQ_EXPECT_ARGS("device_del", "{\"id\": \"cpu-1\"}"),
        FQ_OK(),
        FQ_EV("DEVICE_DELETED", "{\"path\": \"/machine/peripheral/cpu-1/thread[0]\"}"),
        FQ_EV("DEVICE_DELETED", "{\"device\": \"cpu-1\", \"path\": \"/machine/peripheral/cpu-1\"}"),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_PPC64LE);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t after = 0;
    expect_ok(sv_resize_vcpus(c.q, &l, 1, DL, &rec, NULL, &after, ERR));
    assert_int_equal(after, 1);
    assert_int_equal(n_vcpus(&rec), 0);
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_vcpus_down_tcg(void **state)
{
    /* QEMU 7.2 does not survive a vCPU unplug under TCG: refused, nothing sent */
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET(x86_cpus_plugged),
        KVM(false),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    sv_vm_resized rec = {0};
    conn c = START(s);
    int64_t after = 0;
    expect_fail(sv_resize_vcpus(c.q, &l, 2, DL, &rec, NULL, &after, ERR), EOPNOTSUPP,
                "vm t: vcpus: vCPU unplug on x86_64 needs KVM: under TCG, QEMU 7.2 does not "
                "survive it (it crashes at the next hotplug)");
    assert_int_equal(after, 3);
    assert_int_equal(n_vcpus(&rec), 2);
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

static void test_vcpus_refusals(void **state)
{
    static const fq_step s[] = {
        FQ_HANDSHAKE(),
        /* a vCPU of someone else's (raw QMP, id "extra") is not a resize's to remove */
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET("[{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"socket-id\": 2}, "
               "\"vcpus-count\": 1, \"qom-path\": \"/machine/peripheral/extra\", "
               "\"type\": \"max-x86_64-cpu\"}, "
               "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"socket-id\": 1}, "
               "\"vcpus-count\": 1, \"qom-path\": \"/machine/peripheral/cpu-1\", "
               "\"type\": \"max-x86_64-cpu\"}, "
               "{\"props\": {\"core-id\": 0, \"thread-id\": 0, \"socket-id\": 0}, "
               "\"vcpus-count\": 1, \"qom-path\": \"/machine/unattached/device[0]\", "
               "\"type\": \"max-x86_64-cpu\"}]"),
        /* s390x: adding works, removing does not */
        FQ_EXPECT_NOARGS("query-hotpluggable-cpus"),
        FQ_RET("[{\"props\": {\"core-id\": 1}, \"vcpus-count\": 1, \"qom-path\": "
               "\"/machine/peripheral/cpu-1\", \"type\": \"max-s390x-cpu\"}, "
               "{\"props\": {\"core-id\": 0}, \"vcpus-count\": 1, \"qom-path\": "
               "\"/machine/unattached/device[0]\", \"type\": \"max-s390x-cpu\"}]"),
    };
    sv_vm_config vm;
    sv_resize_limits l;
    sv_vm_resized rec = {0};
    conn c = START(s);
    /* decided before any QMP */
    limits(&l, &vm, SV_VM_ARCH_AARCH64);
    expect_fail(sv_resize_vcpus(c.q, &l, 2, DL, &rec, NULL, NULL, ERR), EOPNOTSUPP,
                "vm t: vcpus: CPU hotplug is not supported on aarch64 (QEMU 7.2's virt machine "
                "has no hot-pluggable CPUs)");
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    expect_fail(sv_resize_vcpus(c.q, &l, 5, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: vcpus: 5 is more than max_vcpus (4), the hot-plug ceiling set when the "
                "VM was created");
    expect_fail(sv_resize_vcpus(c.q, &l, 0, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: vcpus: must be at least 1, not 0");
    config(&vm, SV_VM_ARCH_X86_64);
    vm.confidential_guest = true;
    sv_resize_limits_init(&vm, SV_VM_ARCH_X86_64, "t", &l);
    expect_fail(sv_resize_vcpus(c.q, &l, 2, DL, &rec, NULL, NULL, ERR), EOPNOTSUPP,
                "vm t: vcpus: CPU hotplug is not supported for a confidential guest");
    /* after the query */
    limits(&l, &vm, SV_VM_ARCH_X86_64);
    expect_fail(sv_resize_vcpus(c.q, &l, 1, DL, &rec, NULL, NULL, ERR), EINVAL,
                "vm t: vcpus: cannot go below 2: only vCPUs a resize hot-plugged can be "
                "unplugged (the VM booted with 1)");
    assert_int_equal(n_vcpus(&rec), 1);
    limits(&l, &vm, SV_VM_ARCH_S390X);
    expect_fail(sv_resize_vcpus(c.q, &l, 1, DL, &rec, NULL, NULL, ERR), EOPNOTSUPP,
                "vm t: vcpus: vCPU unplug is not supported on s390x (QEMU 7.2 cannot unplug "
                "s390x CPUs)");
    conn_free(&c);
    sv_vm_resized_clear(&rec);
}

/* ---- the record in state.json ---------------------------------------------------- */

static void test_state_round_trip(void **state)
{
    sv_vm_state st = {.id = (char *)"vm1", .state = SV_VM_RUNNING};
    sv_vm_dimm dimms[] = {{(char *)"dimmmem0", (char *)"mem0", 256},
                          {(char *)"dimmmem2", (char *)"mem2", 512}};
    char *vcpus[] = {(char *)"cpu-1", (char *)"cpu-3", NULL};
    st.resized = (sv_vm_resized){.dimms = dimms, .n_dimms = 2, .vcpus = vcpus};
    _cleanup_free_ char *text = NULL;
    _cleanup_error_ sv_error *err = NULL;
    if (sv_vm_state_format(&st, NULL, &text, &err) < 0)
        fail_msg("format: %s", sv_error_message(err));
    assert_non_null(strstr(text, "\"resized\""));
    _cleanup_vm_state_ sv_vm_state *back = NULL;
    if (sv_vm_state_parse(text, strlen(text), "vm1", &back, &err) < 0)
        fail_msg("parse: %s", sv_error_message(err));
    assert_int_equal(back->resized.n_dimms, 2);
    assert_string_equal(back->resized.dimms[1].id, "dimmmem2");
    assert_string_equal(back->resized.dimms[1].memdev, "mem2");
    assert_int_equal(back->resized.dimms[1].size_mib, 512);
    assert_string_equal(back->resized.vcpus[1], "cpu-3");
    assert_null(back->resized.vcpus[2]);

    /* nothing resized: no key at all (older sandvms read the file) */
    sv_vm_state plain = {.id = (char *)"vm1", .state = SV_VM_RUNNING};
    _cleanup_free_ char *t2 = NULL;
    if (sv_vm_state_format(&plain, NULL, &t2, &err) < 0)
        fail_msg("format: %s", sv_error_message(err));
    assert_null(strstr(t2, "resized"));

    /* a DIMM without its backend is refused, naming the key */
    static const char bad[] = "{\"version\": 1, \"id\": \"vm1\", \"state\": \"running\", "
                              "\"resized\": {\"dimms\": [{\"id\": \"dimmmem0\", "
                              "\"size_mib\": 128}]}}";
    _cleanup_vm_state_ sv_vm_state *b = NULL;
    _cleanup_error_ sv_error *e2 = NULL;
    assert_int_equal(sv_vm_state_parse(bad, strlen(bad), "vm1", &b, &e2), -EINVAL);
    assert_string_equal(sv_error_message(e2), "resized.dimms[0].memdev: is required");
}

/* ---- guest parameters ------------------------------------------------------------- */

static void test_guest_params(void **state)
{
    sv_vm_config vm;
    config(&vm, SV_VM_ARCH_X86_64);
    vm.max_memory = 0;
    _cleanup_free_ char *none = sv_resize_guest_params(&vm);
    assert_string_equal(none, "");
    vm.max_memory = 2048;
    vm.shared_fs = SV_VM_SHARED_FS_VIRTIO_FS;
    vm.shared_dir = "/srv";
    _cleanup_free_ char *fs = sv_resize_guest_params(&vm);
    assert_string_equal(fs, "memory_hotplug.online_policy=auto-movable "
                            "sandvm.mount=sandvm:virtiofs:/mnt/sandvm");
    vm.max_memory = 0;
    vm.shared_fs = SV_VM_SHARED_FS_VIRTIO_9P;
    _cleanup_free_ char *p9 = sv_resize_guest_params(&vm);
    assert_string_equal(p9, "sandvm.mount=sandvm:9p:/mnt/sandvm");
    /* the user's own sandvm.mount= wins: none is added */
    vm.kernel_params = "quiet  sandvm.mount=sandvm:9p:/data";
    _cleanup_free_ char *own = sv_resize_guest_params(&vm);
    assert_string_equal(own, "");
    vm.kernel_params = "xsandvm.mount=x";
    _cleanup_free_ char *other = sv_resize_guest_params(&vm);
    assert_string_equal(other, "sandvm.mount=sandvm:9p:/mnt/sandvm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_up),
        cmocka_unit_test(test_memory_up_shared_ppc64le),
        cmocka_unit_test(test_memory_up_rollback),
        cmocka_unit_test(test_memory_down),
        cmocka_unit_test(test_memory_down_timeout),
        cmocka_unit_test(test_memory_reconcile),
        cmocka_unit_test(test_memory_refusals),
        cmocka_unit_test(test_memory_slots_and_rounding),
        cmocka_unit_test(test_vcpus_up_x86_64),
        cmocka_unit_test(test_vcpus_up_ppc64le),
        cmocka_unit_test(test_vcpus_up_partial),
        cmocka_unit_test(test_vcpus_down),
        cmocka_unit_test(test_vcpus_down_timeout),
        cmocka_unit_test(test_vcpus_down_ppc64le),
        cmocka_unit_test(test_vcpus_down_tcg),
        cmocka_unit_test(test_vcpus_refusals),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_guest_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
