/*
 * Hotplug sequences (src/qemu/hotplug.c) against the scripted fake QMP
 * server: the exact QMP commands, in order, that each device kind sends on
 * each bus (virtio-blk on a bridge slot, scsi-hd, virtio-blk-ccw, virtio-net
 * with tap/macvtap/vhost fds, vhost-user, vhost-vsock, a whole VFIO group on
 * bridge slots or root ports from a fake sysfs tree), what a failing step
 * undoes, and unplug: DEVICE_DELETED, a timeout that keeps the id taken, and
 * a later DEVICE_DELETED (or QEMU's own view) that frees it. The VM
 * configurations are built by the real arch layer, so the reserved places
 * are the ones a started VM has. No QEMU runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_qmp.h"
#include "qemu/arch/arch.h"
#include "qemu/hotplug.h"
#include "qemu/qemu_config.h"
#include "qemu/qmp.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/sock.h"

/* ---- fixture ---------------------------------------------------------------------- */

typedef struct fx {
    char *tmp;           /* a private directory: images, sockets, a fake sysfs */
    sv_qemu_config *cfg; /* the VM's QEMU configuration, from the arch layer */
    sv_vm_state st;      /* its records */
    fake_qmp *fq;
    sv_qmp *q;
    sv_hotplug h;
    size_t saves;
    char *saved[16]; /* state.json as each save wrote it (the first 16) */
    char *strs[32];  /* script strings built at run time */
    size_t n_strs;
    int fds[8]; /* fds a plan uses (pipes): not the fixture's to pass, the test's */
    size_t n_fds;
} fx;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->tmp = strdup("/tmp/sandvm-test-hotplug.XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    sv_qmp_free(f->q);
    fake_qmp_free(f->fq);
    sv_qemu_config_free(f->cfg);
    sv_vm_state_clear(&f->st);
    for (size_t i = 0; i < SV_ARRAY_SIZE(f->saved); i++)
        free(f->saved[i]);
    for (size_t i = 0; i < f->n_strs; i++)
        free(f->strs[i]);
    for (size_t i = 0; i < f->n_fds; i++)
        close(f->fds[i]);
    nftw(f->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f->tmp);
    free(f);
    return 0;
}

/* A string for a script, freed with the fixture. */
static const char *str(fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *str(fx *f, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    assert_true(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    assert_true(f->n_strs < SV_ARRAY_SIZE(f->strs));
    f->strs[f->n_strs++] = s;
    return s;
}

static char *path_in(const fx *f, const char *name)
{
    char *s = NULL;
    assert_true(asprintf(&s, "%s/%s", f->tmp, name) > 0);
    return s;
}

/* An fd the fake receives (one end of a pipe). */
static int test_fd(fx *f)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_true(f->n_fds + 2 <= SV_ARRAY_SIZE(f->fds));
    f->fds[f->n_fds++] = p[0];
    f->fds[f->n_fds++] = p[1];
    return p[0];
}

static int save_cb(void *opaque, sv_error **err)
{
    fx *f = opaque;
    char *text = NULL;
    int r = sv_vm_state_format(&f->st, "vm1", &text, err);
    if (r < 0)
        return r;
    if (f->saves < SV_ARRAY_SIZE(f->saved))
        f->saved[f->saves] = text;
    else
        free(text);
    f->saves++;
    return 0;
}

typedef void (*tweak_fn)(sv_vm_config *vm);

/* The VM: the default guest's config for `arch`, changed by `tweak`, built
 * as a started VM's (agent channel, console and QMP fds). */
static void vm(fx *f, int arch, tweak_fn tweak)
{
    static char *no_flags[] = {NULL};
    sv_host_facts host = {.arch = SV_VM_ARCH_X86_64,
                          .cpu_flags = no_flags,
                          .mem_mib = 8192,
                          .ncpus = 4,
                          .sysfs_root = (char *)"/sys"};
    sv_vm_config c;
    sv_vm_config_init_defaults(&c, arch);
    c.kernel = "/boot/kernel";
    c.initrd = "/boot/initrd";
    if (tweak)
        tweak(&c);
    sv_vm_launch l = {.console_fd = 3,
                      .console_listening = true,
                      .qmp_fd = 4,
                      .agent_fd = 5,
                      .vsock_fd = -1,
                      .pid_file = "/run/vm1/qemu.pid"};
    sv_error *err = NULL;
    if (sv_qemu_arch_build(&c, &host, &l, &f->cfg, &err) < 0)
        fail_msg("building the VM: %s", sv_error_message(err));
    f->h = (sv_hotplug){
        .vm_id = "vm1",
        .cfg = f->cfg,
        .st = &f->st,
        .block_driver = sv_dev_block_driver_from_name(
            c.block_device_driver == SV_VM_BLOCK_VIRTIO_SCSI ? "virtio-scsi" : "virtio-blk"),
        .vfio_root_ports = c.hotplug_vfio_on_root_bus,
        .save = save_cb,
        .save_opaque = f};
}

/* Plays `script` (which starts with the handshake) against h.q. */
static void play(fx *f, const fq_step *script, size_t n)
{
    int fd = -1;
    f->fq = fake_qmp_start(script, n, &fd);
    assert_non_null(f->fq);
    f->q = sv_qmp_new(fd);
    assert_non_null(f->q);
    f->h.q = f->q;
    sv_error *err = NULL;
    if (sv_qmp_handshake(f->q, sv_deadline_ms(5000), &err) < 0)
        fail_msg("handshake: %s", sv_error_message(err));
}
#define PLAY(f, script) play(f, script, SV_ARRAY_SIZE(script))

/* Ends the session: every expected command came, nothing else. */
static void done(fx *f)
{
    sv_qmp_free(f->q);
    f->q = NULL;
    f->h.q = NULL;
    const char *why = fake_qmp_finish(f->fq);
    if (why)
        fail_msg("fake QMP: %s", why);
}

static void ok(int r, sv_error **err)
{
    if (r < 0)
        fail_msg("unexpected error %d: %s", r, *err ? sv_error_message(*err) : "(none)");
}

static void expect_error(int r, sv_error **err, int code, const char *needle)
{
    if (r != -code)
        fail_msg("expected error %d (%s), got %d: %s", -code, needle, r,
                 *err ? sv_error_message(*err) : "(no message)");
    assert_non_null(*err);
    if (!strstr(sv_error_message(*err), needle))
        fail_msg("message \"%s\" lacks \"%s\"", sv_error_message(*err), needle);
    sv_error_free(*err);
    *err = NULL;
}

/* Prepares and plugs `req`. */
static int add(fx *f, const sv_vm_device *req, sv_error **err)
{
    return sv_hotplug_add(&f->h, req, NULL, err);
}

static const sv_vm_dev_record *record(fx *f, const char *id)
{
    for (size_t i = 0; i < f->st.n_devices; i++)
        if (strcmp(f->st.devices[i].id, id) == 0)
            return &f->st.devices[i];
    return NULL;
}

static void assert_slot(const sv_vm_dev_record *r, size_t i, const char *qemu_id, const char *bus,
                        const char *addr, const char *guest)
{
    assert_non_null(r);
    assert_true(i < r->n_slots);
    assert_string_equal(r->slots[i].qemu_id, qemu_id);
    assert_string_equal(r->slots[i].bus, bus);
    assert_string_equal(r->slots[i].addr, addr);
    if (guest)
        assert_string_equal(r->slots[i].guest, guest);
    else
        assert_null(r->slots[i].guest);
}

static char *image(fx *f, const char *name)
{
    char *p = path_in(f, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    return p;
}

/* Kata's blockdev-add of a raw image file. */
static const char *bdev_json(fx *f, const char *node, const char *file, bool ro)
{
    return str(f,
               "{\"driver\":\"raw\",\"node-name\":\"%s\",\"read-only\":%s,\"file\":{\"driver\":"
               "\"file\",\"filename\":\"%s\",\"aio\":\"threads\"}}",
               node, ro ? "true" : "false", file);
}

static void scsi_vm(sv_vm_config *c)
{
    c->block_device_driver = SV_VM_BLOCK_VIRTIO_SCSI;
}

#define EV_DELETED(id)                                                                             \
    FQ_EV("DEVICE_DELETED", "{\"device\":\"" id "\",\"path\":\"/machine/peripheral/" id "\"}")

/* ---- block ---------------------------------------------------------------------- */

/* virtio-blk on the first free slot of pci-bridge-0 (Kata's blockdev-add then
 * device_add with bus/addr), the record persisted as "adding" before the
 * first command, then a second disk in the next slot. */
static void test_block_virtio_blk_bridge(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    _cleanup_free_ char *img = image(f, "disk.img");
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("blockdev-add", bdev_json(f, "blk0.drive", img, false)),
        FQ_OK(),
        FQ_EXPECT_ARGS(
            "device_add",
            "{\"driver\":\"virtio-blk-pci\",\"drive\":\"blk0.drive\",\"bus\":\"pci-bridge-0\","
            "\"addr\":\"01\",\"config-wce\":false,\"serial\":\"blk0\",\"romfile\":\"\","
            "\"id\":\"blk0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("blockdev-add", bdev_json(f, "data.drive", img, true)),
        FQ_OK(),
        FQ_EXPECT_ARGS(
            "device_add",
            "{\"driver\":\"virtio-blk-pci\",\"drive\":\"data.drive\",\"bus\":\"pci-bridge-0\","
            "\"addr\":\"02\",\"config-wce\":false,\"share-rw\":true,\"serial\":\"data\","
            "\"romfile\":\"\",\"id\":\"data\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    ok(add(f, &d, &err), &err);
    /* persisted before QEMU was asked: a crash in between leaves a record */
    assert_true(f->saves >= 2);
    assert_non_null(strstr(f->saved[0], "\"adding\""));
    assert_non_null(strstr(f->saved[f->saves - 1], "\"attached\""));
    sv_vm_device ro = {.kind = SV_VM_DEVICE_BLOCK, .id = "data", .path = img, .read_only = true};
    ok(add(f, &ro, &err), &err);
    done(f);
    assert_int_equal(f->st.n_devices, 2);
    assert_slot(record(f, "blk0"), 0, "blk0", "pci-bridge-0", "01", "02/01");
    assert_slot(record(f, "data"), 0, "data", "pci-bridge-0", "02", "02/02");
    assert_string_equal(record(f, "blk0")->host, img);
    assert_true(record(f, "data")->read_only);
    assert_int_equal(record(f, "data")->state, SV_VM_DEV_ATTACHED);
}

/* scsi-hd on the VM's controller with an explicit scsi-id and lun (index
 * 0 is 0:0, which the cold-plug builder would leave to QEMU). */
static void test_block_scsi(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, scsi_vm);
    _cleanup_free_ char *img = image(f, "disk.img");
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("blockdev-add", bdev_json(f, "blk0.drive", img, false)),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"scsi-hd\",\"drive\":\"blk0.drive\",\"bus\":\"scsi0.0\","
                       "\"serial\":\"blk0\",\"scsi-id\":0,\"lun\":0,\"id\":\"blk0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("blockdev-add", bdev_json(f, "blk1.drive", img, false)),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"scsi-hd\",\"drive\":\"blk1.drive\",\"bus\":\"scsi0.0\","
                       "\"lun\":1,\"serial\":\"blk1\",\"scsi-id\":0,\"id\":\"blk1\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    ok(add(f, &d, &err), &err);
    ok(add(f, &d, &err), &err);
    done(f);
    assert_slot(record(f, "blk0"), 0, "blk0", "scsi0.0", "0:0", "0:0");
    assert_slot(record(f, "blk1"), 0, "blk1", "scsi0.0", "0:1", "0:1");
}

/* The devno after the last one the VM's cold-plugged devices took. */
static unsigned next_devno(const sv_qemu_config *cfg)
{
    unsigned next = 0;
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *d = &cfg->devices[i];
        const char *no = d->type == SV_QDEV_SERIAL  ? d->u.serial.v.dev_no
                         : d->type == SV_QDEV_RNG   ? d->u.rng.v.dev_no
                         : d->type == SV_QDEV_FS    ? d->u.fs.v.dev_no
                         : d->type == SV_QDEV_BLOCK ? d->u.block.v.dev_no
                                                    : NULL;
        unsigned v;
        if (no && sscanf(no, "fe.0.%x", &v) == 1 && v + 1 > next)
            next = v + 1;
    }
    return next;
}

static void s390x_9p(sv_vm_config *c)
{
    c->shared_fs = SV_VM_SHARED_FS_VIRTIO_9P;
    c->shared_dir = "/srv";
}

/* s390x: virtio-blk-ccw with the first devno no cold-plugged device holds. */
static void test_block_ccw(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_S390X, s390x_9p);
    unsigned devno = next_devno(f->cfg);
    assert_true(devno >= 2); /* the agent's virtio-serial and the 9p share hold the first */
    _cleanup_free_ char *img = image(f, "disk.img");
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("blockdev-add", bdev_json(f, "blk0.drive", img, false)),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       str(f,
                           "{\"driver\":\"virtio-blk-ccw\",\"drive\":\"blk0.drive\","
                           "\"config-wce\":false,\"serial\":\"blk0\",\"devno\":\"fe.0.%04x\","
                           "\"id\":\"blk0\"}",
                           devno)),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    ok(add(f, &d, &err), &err);
    done(f);
    char qemu[16], guest[16];
    snprintf(qemu, sizeof(qemu), "fe.0.%04x", devno);
    snprintf(guest, sizeof(guest), "0.0.%04x", devno);
    assert_slot(record(f, "blk0"), 0, "blk0", "ccw", qemu, guest);
}

static void ports_vm(sv_vm_config *c)
{
    c->pcie_root_port = 2;
}

/* aarch64 virt: its pci-bridge cannot hot-plug, so a disk (and every other
 * PCI device) takes a root port, one each, without addr; a VM without root
 * ports says so before anything is sent. */
static void test_block_aarch64_root_ports(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_AARCH64, ports_vm);
    _cleanup_free_ char *img = image(f, "disk.img");
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("blockdev-add", bdev_json(f, "blk0.drive", img, false)),
        FQ_OK(),
        FQ_EXPECT_ARGS(
            "device_add",
            "{\"driver\":\"virtio-blk-pci\",\"drive\":\"blk0.drive\",\"bus\":\"rp0\","
            "\"config-wce\":false,\"serial\":\"blk0\",\"romfile\":\"\",\"id\":\"blk0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("blockdev-add", bdev_json(f, "blk1.drive", img, false)),
        FQ_OK(),
        FQ_EXPECT_ARGS(
            "device_add",
            "{\"driver\":\"virtio-blk-pci\",\"drive\":\"blk1.drive\",\"bus\":\"rp1\","
            "\"config-wce\":false,\"serial\":\"blk1\",\"romfile\":\"\",\"id\":\"blk1\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    ok(add(f, &d, &err), &err);
    ok(add(f, &d, &err), &err);
    /* both ports taken */
    expect_error(add(f, &d, &err), &err, ENOSPC, "no free PCIe port");
    done(f);
    assert_slot(record(f, "blk0"), 0, "blk0", "rp0", "00", NULL);
    assert_slot(record(f, "blk1"), 0, "blk1", "rp1", "00", NULL);

    sv_qemu_config_free(f->cfg);
    f->cfg = NULL;
    sv_vm_state_clear(&f->st);
    vm(f, SV_VM_ARCH_AARCH64, NULL);
    sv_hotplug_plan p;
    ok(sv_hotplug_prepare(&f->h, &d, &p, &err), &err);
    expect_error(sv_hotplug_plug(&f->h, &p, NULL, &err), &err, EINVAL, "set pcie_root_port");
    sv_hotplug_plan_clear(&p);
    assert_int_equal(f->st.n_devices, 0);
}

/* A failing device_add takes the block node out again and gives the slot
 * back: the next disk gets it. */
static void test_block_rollback(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    _cleanup_free_ char *img = image(f, "disk.img");
    const char *bdev = bdev_json(f, "blk0.drive", img, false);
    const char *dev =
        "{\"driver\":\"virtio-blk-pci\",\"drive\":\"blk0.drive\",\"bus\":\"pci-bridge-0\","
        "\"addr\":\"01\",\"config-wce\":false,\"serial\":\"blk0\",\"romfile\":\"\","
        "\"id\":\"blk0\"}";
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("blockdev-add", bdev),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add", dev),
        FQ_ERR("GenericError", "\"Bus 'pci-bridge-0' does not support hotplugging\""),
        FQ_EXPECT_ARGS("blockdev-del", "{\"node-name\":\"blk0.drive\"}"),
        FQ_OK(),
        /* a blockdev-add QEMU refuses has nothing to undo */
        FQ_EXPECT_ARGS("blockdev-add", bdev),
        FQ_ERR("GenericError", "\"Could not open: Permission denied\""),
        /* the slot and the id are free again */
        FQ_EXPECT_ARGS("blockdev-add", bdev),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add", dev),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    expect_error(add(f, &d, &err), &err, EIO, "does not support hotplugging");
    assert_int_equal(f->st.n_devices, 0);
    /* the record is gone from disk too */
    assert_null(strstr(f->saved[f->saves - 1], "blk0"));
    expect_error(add(f, &d, &err), &err, EIO, "Permission denied");
    assert_int_equal(f->st.n_devices, 0);
    ok(add(f, &d, &err), &err);
    done(f);
    assert_slot(record(f, "blk0"), 0, "blk0", "pci-bridge-0", "01", "02/01");
}

/* ---- network ---------------------------------------------------------------------- */

/* Kata's sequence: getfd per queue fd, getfd per vhost fd, netdev_add with
 * the names joined by ':', device_add with mq and 2n+2 vectors. */
static void test_net_tap_multiqueue_vhost(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.fd0\"}"),
        FQ_OK(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.fd1\"}"),
        FQ_OK(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.vhostfd0\"}"),
        FQ_OK(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.vhostfd1\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("netdev_add",
                       "{\"type\":\"tap\",\"id\":\"net0.netdev\",\"fds\":\"net0.fd0:net0.fd1\","
                       "\"vhost\":true,\"vhostfds\":\"net0.vhostfd0:net0.vhostfd1\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"virtio-net-pci\",\"netdev\":\"net0.netdev\","
                       "\"mac\":\"02:00:00:00:00:01\",\"bus\":\"pci-bridge-0\",\"addr\":\"01\","
                       "\"mq\":true,\"vectors\":6,\"romfile\":\"\",\"id\":\"net0\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    int fds[2] = {test_fd(f), test_fd(f)};
    int vfds[2] = {test_fd(f), test_fd(f)};
    sv_hotplug_plan p = {.kind = SV_VM_DEVICE_NET,
                         .id = strdup("net0"),
                         .host = strdup("tap0"),
                         .net = {.kind = SV_DEV_NET_TAP,
                                 .mac = strdup("02:00:00:00:00:01"),
                                 .fds = malloc(sizeof(fds)),
                                 .n_fds = 2,
                                 .vhost_fds = malloc(sizeof(vfds)),
                                 .n_vhost_fds = 2,
                                 .queues = 2},
                         .vsock = {.vhost_fd = -1}};
    memcpy(p.net.fds, fds, sizeof(fds));
    memcpy(p.net.vhost_fds, vfds, sizeof(vfds));
    sv_error *err = NULL;
    ok(sv_hotplug_plug(&f->h, &p, NULL, &err), &err);
    sv_hotplug_plan_clear(&p);
    done(f);
    for (size_t i = 0; i < 4; i++)
        assert_true(fake_qmp_command_fd(f->fq, 1 + i) >= 0); /* after qmp_capabilities */
    assert_slot(record(f, "net0"), 0, "net0", "pci-bridge-0", "01", "02/01");
    assert_string_equal(record(f, "net0")->kind, "net");
}

/* A macvtap's queue fd (/dev/tapN) goes the same way; one queue: no mq. A
 * failing device_add takes the netdev out; a failing netdev_add drops the
 * fds QEMU was given. */
static void test_net_macvtap_and_rollback(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    const char *dev =
        "{\"driver\":\"virtio-net-pci\",\"netdev\":\"net0.netdev\",\"bus\":\"pci-bridge-0\","
        "\"addr\":\"01\",\"romfile\":\"\",\"id\":\"net0\"}";
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.fd0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("netdev_add",
                       "{\"type\":\"tap\",\"id\":\"net0.netdev\",\"fds\":\"net0.fd0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add", dev),
        FQ_ERR("GenericError", "\"Duplicate ID 'net0' for device\""),
        FQ_EXPECT_ARGS("netdev_del", "{\"id\":\"net0.netdev\"}"),
        FQ_OK(),
        /* netdev_add refused: the fd QEMU holds under the name is dropped */
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.fd0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("netdev_add",
                       "{\"type\":\"tap\",\"id\":\"net0.netdev\",\"fds\":\"net0.fd0\"}"),
        FQ_ERR("GenericError", "\"could not configure /dev/net/tun: Invalid argument\""),
        FQ_EXPECT_ARGS("closefd", "{\"fdname\":\"net0.fd0\"}"),
        FQ_OK(),
        /* then it works, in the same slot */
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.fd0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("netdev_add",
                       "{\"type\":\"tap\",\"id\":\"net0.netdev\",\"fds\":\"net0.fd0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add", dev),
        FQ_OK(),
    };
    PLAY(f, script);
    int fd = test_fd(f);
    sv_error *err = NULL;
    for (int round = 0; round < 3; round++) {
        sv_hotplug_plan p = {.kind = SV_VM_DEVICE_NET,
                             .id = strdup("net0"),
                             .host = strdup("macvtap0"),
                             .net = {.kind = SV_DEV_NET_MACVTAP,
                                     .fds = malloc(sizeof(int)),
                                     .n_fds = 1,
                                     .queues = 1},
                             .vsock = {.vhost_fd = -1}};
        p.net.fds[0] = fd;
        int r = sv_hotplug_plug(&f->h, &p, NULL, &err);
        sv_hotplug_plan_clear(&p);
        if (round == 0)
            expect_error(r, &err, EIO, "Duplicate ID");
        else if (round == 1)
            expect_error(r, &err, EIO, "could not configure");
        else
            ok(r, &err);
        assert_int_equal(f->st.n_devices, round == 2 ? 1 : 0);
    }
    done(f);
    assert_slot(record(f, "net0"), 0, "net0", "pci-bridge-0", "01", "02/01");
}

/* s390x: virtio-net-ccw with a devno; no vectors (a PCI property). */
static void test_net_ccw(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_S390X, NULL);
    unsigned devno = next_devno(f->cfg);
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.fd0\"}"),
        FQ_OK(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"net0.fd1\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("netdev_add",
                       "{\"type\":\"tap\",\"id\":\"net0.netdev\",\"fds\":\"net0.fd0:net0.fd1\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       str(f,
                           "{\"driver\":\"virtio-net-ccw\",\"netdev\":\"net0.netdev\","
                           "\"mq\":true,\"devno\":\"fe.0.%04x\",\"id\":\"net0\"}",
                           devno)),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_hotplug_plan p = {
        .kind = SV_VM_DEVICE_NET,
        .id = strdup("net0"),
        .net = {.kind = SV_DEV_NET_TAP, .fds = malloc(2 * sizeof(int)), .n_fds = 2, .queues = 2},
        .vsock = {.vhost_fd = -1}};
    p.net.fds[0] = test_fd(f);
    p.net.fds[1] = test_fd(f);
    sv_error *err = NULL;
    ok(sv_hotplug_plug(&f->h, &p, NULL, &err), &err);
    sv_hotplug_plan_clear(&p);
    done(f);
    assert_string_equal(record(f, "net0")->slots[0].bus, "ccw");
}

/* ---- vhost-vsock, vhost-user ------------------------------------------------------- */

static void test_vsock(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"vsock0.vhostfd0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"vhost-vsock-pci\",\"id\":\"vsock0\",\"bus\":\"pci-bridge-0\","
                       "\"addr\":\"01\",\"guest-cid\":3,\"vhostfd\":\"vsock0.vhostfd0\","
                       "\"romfile\":\"\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_hotplug_plan p = {.kind = SV_VM_DEVICE_VSOCK,
                         .id = strdup("vsock0"),
                         .vsock = {.cid = 3, .vhost_fd = test_fd(f)}};
    sv_error *err = NULL;
    ok(sv_hotplug_plug(&f->h, &p, NULL, &err), &err);
    sv_hotplug_plan_clear(&p);
    done(f);
    assert_slot(record(f, "vsock0"), 0, "vsock0", "pci-bridge-0", "01", "02/01");
}

/* chardev-add of a unix socket QEMU connects to. */
static const char *chardev_json(fx *f, const char *id, const char *path)
{
    return str(f,
               "{\"id\":\"%s.chardev\",\"backend\":{\"type\":\"socket\",\"data\":{\"addr\":"
               "{\"type\":\"unix\",\"data\":{\"path\":\"%s\"}},\"server\":false}}}",
               id, path);
}

static void vhost_user_vm(sv_vm_config *c)
{
    c->enable_vhost_user_store = true;
}

static char *listening_socket(fx *f, const char *name, int *fd)
{
    char *p = path_in(f, name);
    sv_error *err = NULL;
    *fd = sv_unix_listen(p, &err);
    if (*fd < 0)
        fail_msg("%s", sv_error_message(err));
    return p;
}

/* chardev-add of the backend's socket (client), device_add; a refused
 * device_add removes the chardev. A VM without shared RAM is refused before
 * anything is sent. */
static void test_vhost_user(void **state)
{
    fx *f = *state;
    int lfd = -1;
    _cleanup_free_ char *sock = listening_socket(f, "vu.sock", &lfd);
    sv_error *err = NULL;
    sv_vm_device blk = {.kind = SV_VM_DEVICE_VHOST_USER_BLK, .path = sock};
    sv_vm_device fs = {.kind = SV_VM_DEVICE_VHOST_USER_FS, .path = sock, .tag = "share"};

    vm(f, SV_VM_ARCH_X86_64, NULL);
    sv_hotplug_plan p;
    expect_error(sv_hotplug_prepare(&f->h, &blk, &p, &err), &err, EINVAL,
                 "enable_vhost_user_store");
    sv_qemu_config_free(f->cfg);
    f->cfg = NULL;

    vm(f, SV_VM_ARCH_X86_64, vhost_user_vm);
    /* enable_vhost_user_store: guest RAM a shared file the backend can map */
    assert_true(f->cfg->knobs.mem_shared);
    assert_true(f->cfg->knobs.file_backed_mem);
    assert_string_equal(f->cfg->memory.path, "/dev/shm");
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("chardev-add", chardev_json(f, "vublk0", sock)),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"vhost-user-blk-pci\",\"chardev\":\"vublk0.chardev\","
                       "\"id\":\"vublk0\",\"bus\":\"pci-bridge-0\",\"addr\":\"01\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("chardev-add", chardev_json(f, "vufs0", sock)),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"vhost-user-fs-pci\",\"chardev\":\"vufs0.chardev\","
                       "\"tag\":\"share\",\"queue-size\":1024,\"id\":\"vufs0\","
                       "\"bus\":\"pci-bridge-0\",\"addr\":\"02\"}"),
        FQ_ERR("GenericError", "\"Failed to connect to 'x': Connection refused\""),
        FQ_EXPECT_ARGS("chardev-remove", "{\"id\":\"vufs0.chardev\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    ok(add(f, &blk, &err), &err);
    expect_error(add(f, &fs, &err), &err, EIO, "Connection refused");
    done(f);
    close(lfd);
    assert_int_equal(f->st.n_devices, 1);
    assert_slot(record(f, "vublk0"), 0, "vublk0", "pci-bridge-0", "01", "02/01");
    assert_string_equal(record(f, "vublk0")->kind, "vhost-user-blk");
}

/* ---- VFIO: a whole IOMMU group from a fake sysfs tree ----------------------------------- */

static void mkdir_p(const char *path)
{
    char *p = strdup(path);
    assert_non_null(p);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                fail_msg("mkdir %s: %s", p, strerror(errno));
            *s = '/';
        }
    }
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", p, strerror(errno));
    free(p);
}

static void put_n(const fx *f, const char *rel, const void *data, size_t len)
{
    char *path = path_in(f, rel);
    char *dir = strdup(path);
    *strrchr(dir, '/') = '\0';
    mkdir_p(dir);
    free(dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    free(path);
}

static void link_to(const fx *f, const char *rel, const char *target)
{
    char *path = path_in(f, rel);
    char *dir = strdup(path);
    *strrchr(dir, '/') = '\0';
    mkdir_p(dir);
    free(dir);
    if (symlink(target, path) < 0)
        fail_msg("symlink %s: %s", path, strerror(errno));
    free(path);
}

typedef struct pci_dev {
    const char *bdf, *class_code;
    bool pcie;
} pci_dev;

/* A PCI function of IOMMU group `group` under <tmp>/sys. */
static void add_pci(const fx *f, const char *group, const pci_dev *d)
{
    char rel[256], target[256], text[32];
    const char *attrs[][2] = {{"vendor", "0x10de"}, {"device", "0x1db6"}, {"class", d->class_code}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(attrs); i++) {
        snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/%s", d->bdf, attrs[i][0]);
        snprintf(text, sizeof(text), "%s\n", attrs[i][1]);
        put_n(f, rel, text, strlen(text));
    }
    /* config space: PM, then PCI Express (or MSI) */
    size_t len = d->pcie ? 4096 : 256;
    uint8_t *cfg = calloc(1, len);
    assert_non_null(cfg);
    cfg[0] = 0xde, cfg[1] = 0x10, cfg[0x06] = 0x10, cfg[0x34] = 0x40;
    cfg[0x40] = 0x01, cfg[0x41] = 0x60, cfg[0x60] = d->pcie ? 0x10 : 0x05;
    cfg[0x0e] = strcmp(d->class_code, "0x060400") == 0;
    snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/config", d->bdf);
    put_n(f, rel, cfg, len);
    free(cfg);
    snprintf(rel, sizeof(rel), "sys/devices/pci0000:00/%s/iommu_group", d->bdf);
    snprintf(target, sizeof(target), "../../../kernel/iommu_groups/%s", group);
    link_to(f, rel, target);
    snprintf(rel, sizeof(rel), "sys/bus/pci/devices/%s", d->bdf);
    snprintf(target, sizeof(target), "../../../devices/pci0000:00/%s", d->bdf);
    link_to(f, rel, target);
    snprintf(rel, sizeof(rel), "sys/kernel/iommu_groups/%s/devices/%s", group, d->bdf);
    snprintf(target, sizeof(target), "../../../../devices/pci0000:00/%s", d->bdf);
    link_to(f, rel, target);
}

/* Group 12: a GPU, its audio function and a PCI bridge (never passed). */
static void gpu_group(fx *f)
{
    static const pci_dev gpu = {"0000:01:00.0", "0x030200", true};
    static const pci_dev audio = {"0000:01:00.1", "0x040300", false};
    static const pci_dev bridge = {"0000:00:1c.0", "0x060400", true};
    add_pci(f, "12", &bridge);
    add_pci(f, "12", &gpu);
    add_pci(f, "12", &audio);
    f->h.sysfs_root = f->tmp;
}

/* Every function of the group on the bridge, in sysfs order, the bridge
 * left out; given by the group's /dev/vfio node. */
static void test_vfio_group_on_bridge(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    gpu_group(f);
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"vfio-pci\",\"host\":\"0000:01:00.0\",\"romfile\":\"\","
                       "\"bus\":\"pci-bridge-0\",\"addr\":\"01\",\"id\":\"gpu\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"vfio-pci\",\"host\":\"0000:01:00.1\",\"romfile\":\"\","
                       "\"bus\":\"pci-bridge-0\",\"addr\":\"02\",\"id\":\"gpu.1\"}"),
        FQ_OK(),
        /* unplug: every function, then their events in any order */
        FQ_EXPECT_ARGS("device_del", "{\"id\":\"gpu\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_del", "{\"id\":\"gpu.1\"}"),
        FQ_OK(),
        EV_DELETED("gpu.1"),
        EV_DELETED("gpu"),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_VFIO, .id = "gpu", .path = "/dev/vfio/12"};
    ok(add(f, &d, &err), &err);
    const sv_vm_dev_record *r = record(f, "gpu");
    assert_int_equal(r->n_slots, 2);
    assert_slot(r, 0, "gpu", "pci-bridge-0", "01", "02/01");
    assert_slot(r, 1, "gpu.1", "pci-bridge-0", "02", "02/02");
    assert_string_equal(r->slots[1].host, "0000:01:00.1");
    assert_string_equal(r->host, "/dev/vfio/12");
    ok(sv_hotplug_unplug(&f->h, "gpu", 5000, &err), &err);
    done(f);
    assert_int_equal(f->st.n_devices, 0);
}

static void root_port_vm(sv_vm_config *c)
{
    c->pcie_root_port = 2;
    c->hotplug_vfio_on_root_bus = true;
}

/* hotplug_vfio_on_root_bus: a PCIe function takes a root port (no addr);
 * a conventional one still goes behind the bridge. Given by a member's
 * PCI address (its whole group). */
static void test_vfio_root_port(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, root_port_vm);
    gpu_group(f);
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"vfio-pci\",\"host\":\"0000:01:00.0\",\"romfile\":\"\","
                       "\"bus\":\"rp0\",\"id\":\"vfio0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"vfio-pci\",\"host\":\"0000:01:00.1\",\"romfile\":\"\","
                       "\"bus\":\"pci-bridge-0\",\"addr\":\"01\",\"id\":\"vfio0.1\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_VFIO, .path = "01:00.1"};
    ok(add(f, &d, &err), &err);
    done(f);
    assert_slot(record(f, "vfio0"), 0, "vfio0", "rp0", "00", NULL);
    assert_slot(record(f, "vfio0"), 1, "vfio0.1", "pci-bridge-0", "01", "02/01");
}

/* A function QEMU refuses: the ones added before it are taken out again
 * (device_del until DEVICE_DELETED) and nothing stays recorded. */
static void test_vfio_group_rollback(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    gpu_group(f);
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_CMD("device_add"),
        FQ_OK(),
        FQ_EXPECT_CMD("device_add"),
        FQ_ERR("GenericError", "\"vfio 0000:01:00.1: group 12 is not viable\""),
        FQ_EXPECT_ARGS("device_del", "{\"id\":\"vfio0\"}"),
        FQ_OK(),
        EV_DELETED("vfio0"),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_VFIO, .path = "/dev/vfio/12"};
    expect_error(add(f, &d, &err), &err, EIO, "not viable");
    done(f);
    assert_int_equal(f->st.n_devices, 0);
}

/* ---- unplug ------------------------------------------------------------------------ */

/* device_del, DEVICE_DELETED (another device's first), blockdev-del (again
 * while QEMU still holds the node). */
static void test_unplug(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    _cleanup_free_ char *img = image(f, "disk.img");
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_CMD("blockdev-add"),
        FQ_OK(),
        FQ_EXPECT_CMD("device_add"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_del", "{\"id\":\"blk0\"}"),
        FQ_OK(),
        EV_DELETED("other"),
        EV_DELETED("blk0"),
        /* the device may still be finalizing: its drive is asked for again */
        FQ_EXPECT_ARGS("blockdev-del", "{\"node-name\":\"blk0.drive\"}"),
        FQ_ERR("GenericError", "\"Node blk0.drive is in use\""),
        FQ_EXPECT_ARGS("blockdev-del", "{\"node-name\":\"blk0.drive\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    ok(add(f, &d, &err), &err);
    expect_error(sv_hotplug_unplug(&f->h, "nosuch", 1000, &err), &err, ENOENT,
                 "has no hot-plugged device \"nosuch\"");
    ok(sv_hotplug_unplug(&f->h, "blk0", 5000, &err), &err);
    done(f);
    assert_int_equal(f->st.n_devices, 0);
}

/* No DEVICE_DELETED (a paused guest): ETIMEDOUT naming the device, the VM
 * left as it is, the id and the slot kept (persisted: removing); a new
 * device with that id is refused; the next unplug finds it still there
 * (qom-list), asks again and completes on the event; then the id and the
 * slot are free. */
static void test_unplug_timeout_keeps_id(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    _cleanup_free_ char *img = image(f, "disk.img");
    const char *list = "[{\"name\":\"type\",\"type\":\"string\"},"
                       "{\"name\":\"pci-bridge-0\",\"type\":\"child<pci-bridge>\"},"
                       "{\"name\":\"blk0\",\"type\":\"child<virtio-blk-pci>\"}]";
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_CMD("blockdev-add"),
        FQ_OK(),
        FQ_EXPECT_CMD("device_add"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_del", "{\"id\":\"blk0\"}"),
        FQ_OK(),
        /* nothing: the guest does not release it */
        FQ_EXPECT_ARGS("qom-list", "{\"path\":\"/machine/peripheral\"}"),
        FQ_RET(list),
        /* another disk goes in the next slot meanwhile */
        FQ_EXPECT_ARGS("qom-list", "{\"path\":\"/machine/peripheral\"}"),
        FQ_RET(list),
        FQ_EXPECT_CMD("blockdev-add"),
        FQ_OK(),
        FQ_EXPECT_ARGS(
            "device_add",
            "{\"driver\":\"virtio-blk-pci\",\"drive\":\"blk1.drive\",\"bus\":\"pci-bridge-0\","
            "\"addr\":\"02\",\"config-wce\":false,\"serial\":\"blk1\",\"romfile\":\"\","
            "\"id\":\"blk1\"}"),
        FQ_OK(),
        /* unplug again: still QEMU's; a hotplug controller may refuse a
         * second device_del while one is pending (q35's ACPI hotplug returns
         * {}); either way the event ends it */
        FQ_EXPECT_ARGS("qom-list", "{\"path\":\"/machine/peripheral\"}"),
        FQ_RET(list),
        FQ_EXPECT_ARGS("device_del", "{\"id\":\"blk0\"}"),
        FQ_ERR("GenericError", "\"Device blk0 is already in the process of unplug\""),
        EV_DELETED("blk0"),
        FQ_EXPECT_ARGS("blockdev-del", "{\"node-name\":\"blk0.drive\"}"),
        FQ_OK(),
        /* blk0 and slot 01 are free again */
        FQ_EXPECT_ARGS("blockdev-add", bdev_json(f, "blk0.drive", img, false)),
        FQ_OK(),
        FQ_EXPECT_ARGS(
            "device_add",
            "{\"driver\":\"virtio-blk-pci\",\"drive\":\"blk0.drive\",\"bus\":\"pci-bridge-0\","
            "\"addr\":\"01\",\"config-wce\":false,\"serial\":\"blk0\",\"romfile\":\"\","
            "\"id\":\"blk0\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    ok(add(f, &d, &err), &err);
    expect_error(sv_hotplug_unplug(&f->h, "blk0", 300, &err), &err, ETIMEDOUT,
                 "device blk0: unplug still pending after 300 ms");
    const sv_vm_dev_record *r = record(f, "blk0");
    assert_non_null(r);
    assert_int_equal(r->state, SV_VM_DEV_REMOVING);
    assert_non_null(strstr(f->saved[f->saves - 1], "\"removing\""));
    /* the id is not handed out again while QEMU holds it */
    sv_vm_device again = {.kind = SV_VM_DEVICE_BLOCK, .id = "blk0", .path = img};
    expect_error(add(f, &again, &err), &err, EEXIST, "still being unplugged");
    ok(add(f, &d, &err), &err); /* a picked id skips it: blk1 */
    assert_slot(record(f, "blk1"), 0, "blk1", "pci-bridge-0", "02", "02/02");
    ok(sv_hotplug_unplug(&f->h, "blk0", 5000, &err), &err);
    assert_null(record(f, "blk0"));
    ok(add(f, &again, &err), &err);
    done(f);
    assert_slot(record(f, "blk0"), 0, "blk0", "pci-bridge-0", "01", "02/01");
}

/* A pending unplug that QEMU finished while nobody listened (the event was
 * lost with the connection): settling sees the device gone from
 * /machine/peripheral, removes its backend and drops the record. An
 * "adding" record left by a sandvm killed before device_add goes too. */
static void test_settle(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    sv_vm_dev_slot s1 = {strdup("net0"), strdup("pci-bridge-0"), strdup("01"), strdup("02/01"),
                         NULL};
    sv_vm_dev_slot s2 = {strdup("blk0"), strdup("pci-bridge-0"), strdup("02"), strdup("02/02"),
                         NULL};
    sv_vm_dev_slot s3 = {strdup("blk1"), strdup("pci-bridge-0"), strdup("03"), strdup("02/03"),
                         NULL};
    f->st.devices = calloc(3, sizeof(*f->st.devices));
    f->st.devices[0] = (sv_vm_dev_record){strdup("net0"),
                                          strdup("net"),
                                          strdup("tap0"),
                                          false,
                                          SV_VM_DEV_REMOVING,
                                          malloc(sizeof(s1)),
                                          1};
    f->st.devices[1] = (sv_vm_dev_record){strdup("blk0"),
                                          strdup("block"),
                                          strdup("/x"),
                                          false,
                                          SV_VM_DEV_ADDING,
                                          malloc(sizeof(s2)),
                                          1};
    f->st.devices[2] = (sv_vm_dev_record){strdup("blk1"),
                                          strdup("block"),
                                          strdup("/y"),
                                          false,
                                          SV_VM_DEV_ADDING,
                                          malloc(sizeof(s3)),
                                          1};
    *f->st.devices[0].slots = s1;
    *f->st.devices[1].slots = s2;
    *f->st.devices[2].slots = s3;
    f->st.n_devices = 3;
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_ARGS("qom-list", "{\"path\":\"/machine/peripheral\"}"),
        FQ_RET("[{\"name\":\"blk1\",\"type\":\"child<virtio-blk-pci>\"}]"),
        FQ_EXPECT_ARGS("blockdev-del", "{\"node-name\":\"blk0.drive\"}"),
        FQ_ERR("GenericError", "\"Failed to find node with node-name='blk0.drive'\""),
        FQ_EXPECT_ARGS("netdev_del", "{\"id\":\"net0.netdev\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_error *err = NULL;
    ok(sv_hotplug_settle(&f->h, &err), &err);
    done(f);
    assert_int_equal(f->st.n_devices, 1);
    assert_int_equal(record(f, "blk1")->state, SV_VM_DEV_ATTACHED);
    assert_true(f->saves > 0);
}

/* ---- requests refused before QMP --------------------------------------------------- */

static void test_prepare_refuses(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    _cleanup_free_ char *img = image(f, "disk.img");
    sv_error *err = NULL;
    sv_hotplug_plan p;
    struct {
        sv_vm_device d;
        int code;
        const char *needle;
    } cases[] = {
        {{.kind = SV_VM_DEVICE_BLOCK, .id = "1disk", .path = img}, EINVAL, "is not a device id"},
        {{.kind = SV_VM_DEVICE_BLOCK, .id = "a.b", .path = img}, EINVAL, "is not a device id"},
        {{.kind = SV_VM_DEVICE_BLOCK, .id = "a,b=c", .path = img}, EINVAL, "is not a device id"},
        {{.kind = SV_VM_DEVICE_BLOCK, .id = "abcdefghijklmnopqrstu", .path = img},
         EINVAL,
         "longer than 20"},
        {{.kind = SV_VM_DEVICE_BLOCK, .id = "", .path = img}, EINVAL, "id: is empty"},
        /* the VM's own devices' ids are taken */
        {{.kind = SV_VM_DEVICE_BLOCK, .id = "pci-bridge-0", .path = img},
         EEXIST,
         "one of the VM's own devices"},
        {{.kind = SV_VM_DEVICE_BLOCK, .id = "rng0", .path = img},
         EEXIST,
         "one of the VM's own devices"},
        {{.kind = SV_VM_DEVICE_BLOCK, .path = img, .ifname = "tap0"},
         EINVAL,
         "block.ifname: does not apply to a block device"},
        {{.kind = SV_VM_DEVICE_NET, .ifname = "tap0", .read_only = true},
         EINVAL,
         "net.read_only: does not apply"},
        {{.kind = SV_VM_DEVICE_BLOCK}, EINVAL, "block.path: is required"},
        {{.kind = SV_VM_DEVICE_BLOCK, .path = "disk.img"},
         EINVAL,
         "block.path: must be an absolute path"},
        {{.kind = SV_VM_DEVICE_BLOCK, .path = "/nonexistent/disk.img"},
         ENOENT,
         "/nonexistent/disk.img"},
        {{.kind = SV_VM_DEVICE_BLOCK, .path = "/tmp"},
         EINVAL,
         "neither a regular file nor a block device"},
        {{.kind = SV_VM_DEVICE_BLOCK, .path = "/x\n,readonly=on"}, EINVAL, "control character"},
        {{.kind = SV_VM_DEVICE_BLOCK, .path = img, .major = 7}, EINVAL, "not both"},
        {{.kind = SV_VM_DEVICE_NET}, EINVAL, "net.ifname: is required"},
        {{.kind = SV_VM_DEVICE_NET, .ifname = "../eth0"}, EINVAL, "is not an interface name"},
        {{.kind = SV_VM_DEVICE_NET, .ifname = "waytoolonginterface"},
         EINVAL,
         "is not an interface name"},
        {{.kind = SV_VM_DEVICE_NET, .ifname = "svnosuch0"},
         ENOENT,
         "no interface \"svnosuch0\" in this network namespace"},
        {{.kind = SV_VM_DEVICE_NET, .ifname = "lo", .mac = "01:00:00:00:00:01"},
         EINVAL,
         "net.mac: is a multicast address"},
        {{.kind = SV_VM_DEVICE_NET, .ifname = "lo", .queues = 1000}, EINVAL, "net.queues"},
        {{.kind = SV_VM_DEVICE_VFIO}, EINVAL, "vfio.path: is required"},
        {{.kind = SV_VM_DEVICE_VFIO, .path = "/dev/vfio/vfio"}, EINVAL, "vfio.path"},
        {{.kind = SV_VM_DEVICE_VHOST_USER_BLK, .path = img}, EINVAL, "is not a unix socket"},
        {{.kind = SV_VM_DEVICE_VHOST_USER_FS, .path = "/tmp", .tag = "x"},
         EINVAL,
         "is not a unix socket"},
        {{.kind = SV_VM_DEVICE_VSOCK, .cid = 2}, EINVAL, "vsock.cid: must be 3"},
        {{.kind = 99}, EINVAL, "is not a device kind"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
        int r = sv_hotplug_prepare(&f->h, &cases[i].d, &p, &err);
        if (r == 0)
            fail_msg("case %zu (%s) was accepted", i, cases[i].needle);
        expect_error(r, &err, cases[i].code, cases[i].needle);
    }
    /* ids are picked past the taken ones */
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    ok(sv_hotplug_prepare(&f->h, &d, &p, &err), &err);
    assert_string_equal(p.id, "blk0");
    assert_false(p.block_is_device);
    sv_hotplug_plan_clear(&p);
}

/* Block drivers that cannot take a hot-plugged disk say so before QMP. */
static void nvdimm_vm(sv_vm_config *c)
{
    c->block_device_driver = SV_VM_BLOCK_NVDIMM;
}

static void test_block_driver_refused(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, nvdimm_vm);
    f->h.block_driver = SV_DEV_BLOCK_NVDIMM;
    _cleanup_free_ char *img = image(f, "disk.img");
    const fq_step script[] = {FQ_HANDSHAKE()};
    PLAY(f, script);
    sv_error *err = NULL;
    sv_vm_device d = {.kind = SV_VM_DEVICE_BLOCK, .path = img};
    expect_error(add(f, &d, &err), &err, EINVAL, "block_device_driver nvdimm");
    done(f);
    assert_int_equal(f->st.n_devices, 0);
}

/* ---- the records in state.json ---------------------------------------------------- */

static void test_state_records(void **state)
{
    fx *f = *state;
    const char *text =
        "{\"version\":1,\"id\":\"vm1\",\"state\":\"running\",\"devices\":["
        "{\"id\":\"gpu\",\"kind\":\"vfio\",\"host\":\"/dev/vfio/12\",\"state\":\"removing\","
        "\"slots\":[{\"qemu_id\":\"gpu\",\"bus\":\"rp0\",\"addr\":\"00\",\"host\":\"0000:01:00.0\"}"
        ","
        "{\"qemu_id\":\"gpu.1\",\"bus\":\"pci-bridge-0\",\"addr\":\"01\",\"guest\":\"02/01\"}]}]}";
    sv_vm_state *st = NULL;
    sv_error *err = NULL;
    ok(sv_vm_state_parse(text, strlen(text), "vm1", &st, &err), &err);
    assert_int_equal(st->n_devices, 1);
    assert_int_equal(st->devices[0].state, SV_VM_DEV_REMOVING);
    assert_int_equal(st->devices[0].n_slots, 2);
    assert_string_equal(st->devices[0].slots[1].guest, "02/01");
    char *out = NULL;
    ok(sv_vm_state_format(st, NULL, &out, &err), &err);
    sv_vm_state *again = NULL;
    ok(sv_vm_state_parse(out, strlen(out), "vm1", &again, &err), &err);
    assert_string_equal(again->devices[0].slots[0].host, "0000:01:00.0");
    assert_string_equal(again->devices[0].slots[1].qemu_id, "gpu.1");
    free(out);
    sv_vm_state_free(again);
    sv_vm_state_clear_devices(st);
    assert_int_equal(st->n_devices, 0);
    sv_vm_state_free(st);
    static const char *const bad[] = {
        "{\"version\":1,\"id\":\"vm1\",\"state\":\"running\",\"devices\":[{\"kind\":\"net\"}]}",
        "{\"version\":1,\"id\":\"vm1\",\"state\":\"running\",\"devices\":[{\"id\":\"a\",\"kind\":"
        "\"net\",\"slots\":[{\"bus\":\"x\"}]}]}",
        "{\"version\":1,\"id\":\"vm1\",\"state\":\"running\",\"devices\":[{\"id\":\"a\",\"kind\":"
        "\"net\",\"state\":\"gone\"}]}",
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
        assert_int_equal(sv_vm_state_parse(bad[i], strlen(bad[i]), "vm1", &st, &err), -EINVAL);
        assert_non_null(strstr(sv_error_message(err), "devices[0]"));
        sv_error_free(err);
        err = NULL;
    }
    (void)f;
}

/* A record's places are taken on the next call: a device recorded at
 * pci-bridge-0 slot 01 (by another sandvm) pushes the next one to 02. */
static void test_recorded_places_reserved(void **state)
{
    fx *f = *state;
    vm(f, SV_VM_ARCH_X86_64, NULL);
    sv_vm_dev_slot s = {strdup("old"), strdup("pci-bridge-0"), strdup("01"), strdup("02/01"), NULL};
    f->st.devices = calloc(1, sizeof(*f->st.devices));
    f->st.devices[0] = (sv_vm_dev_record){strdup("old"),      strdup("vsock"),   NULL, false,
                                          SV_VM_DEV_ATTACHED, malloc(sizeof(s)), 1};
    *f->st.devices[0].slots = s;
    f->st.n_devices = 1;
    const fq_step script[] = {
        FQ_HANDSHAKE(),
        FQ_EXPECT_WITH_FD("getfd", "{\"fdname\":\"vsock0.vhostfd0\"}"),
        FQ_OK(),
        FQ_EXPECT_ARGS("device_add",
                       "{\"driver\":\"vhost-vsock-pci\",\"id\":\"vsock0\",\"bus\":\"pci-bridge-0\","
                       "\"addr\":\"02\",\"guest-cid\":4,\"vhostfd\":\"vsock0.vhostfd0\","
                       "\"romfile\":\"\"}"),
        FQ_OK(),
    };
    PLAY(f, script);
    sv_hotplug_plan p = {.kind = SV_VM_DEVICE_VSOCK,
                         .id = strdup("vsock0"),
                         .vsock = {.cid = 4, .vhost_fd = test_fd(f)}};
    sv_error *err = NULL;
    ok(sv_hotplug_plug(&f->h, &p, NULL, &err), &err);
    sv_hotplug_plan_clear(&p);
    done(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_block_virtio_blk_bridge),
        T(test_block_scsi),
        T(test_block_ccw),
        T(test_block_aarch64_root_ports),
        T(test_block_rollback),
        T(test_net_tap_multiqueue_vhost),
        T(test_net_macvtap_and_rollback),
        T(test_net_ccw),
        T(test_vsock),
        T(test_vhost_user),
        T(test_vfio_group_on_bridge),
        T(test_vfio_root_port),
        T(test_vfio_group_rollback),
        T(test_unplug),
        T(test_unplug_timeout_keeps_id),
        T(test_settle),
        T(test_prepare_refuses),
        T(test_block_driver_refused),
        T(test_state_records),
        T(test_recorded_places_reserved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
