/*
 * Golden tests of the architecture layer: cases/<arch>-<name>.json is
 *
 *   {"host": {...host facts...}, "vm": {...VM config...}, "launch": {...}}
 *
 * with "host" in the JSON form of src/qemu/arch/host.h, "vm" a VM config
 * (docs/vm-config.md) and the optional "launch" the fds and paths a caller
 * prepares (sv_vm_launch, same field names). <case>.argv is the expected
 * sv_qemu_config_argv_text() of what sv_qemu_arch_build() makes of it, and
 * <case>.err the expected error. The host facts are injected, so every arch
 * runs on any build machine; every .argv case not in qemu-skip.txt is then
 * started by that arch's real QEMU. The runner and its options are in
 * tests/lib/golden.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "golden.h"
#include "qemu/arch/arch.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

/* Kernels, firmware and directories QEMU reads (never locks). */
#define FIXTURE_ROOT "/tmp/sandvm-golden-vm"
/* Disk images QEMU locks: cases naming them take turns. */
#define FIXTURE_LOCKED FIXTURE_ROOT "/locked"

typedef struct launch_json {
    int64_t console_fd, qmp_fd;
    char *initrd_override, *extra_kernel_params, *console_path;
    bool console_connect;
    char *virtiofs_socket;
    int64_t image_size;
    int64_t *net_fds;
    size_t n_net_fds;
    int64_t *vhost_net_fds;
    size_t n_vhost_net_fds;
    char *net_mac;
    int64_t vsock_cid, vsock_fd;
    char *agent_socket;
    char **vfio_devices, **disks;
    bool no_hotplug;
    int64_t tsc_khz;
} launch_json;

static const sv_jfield launch_fields[] = {
    SV_JINT(launch_json, console_fd, "console_fd", -1, 65535),
    SV_JINT(launch_json, qmp_fd, "qmp_fd", -1, 65535),
    SV_JSTR(launch_json, initrd_override, "initrd_override"),
    SV_JSTR(launch_json, extra_kernel_params, "extra_kernel_params"),
    SV_JSTR(launch_json, console_path, "console_path"),
    SV_JBOOL(launch_json, console_connect, "console_connect"),
    SV_JSTR(launch_json, virtiofs_socket, "virtiofs_socket"),
    SV_JINT(launch_json, image_size, "image_size", 0, INT64_MAX),
    SV_JINTV(launch_json, net_fds, n_net_fds, "net_fds", 3, 65535),
    SV_JINTV(launch_json, vhost_net_fds, n_vhost_net_fds, "vhost_net_fds", 3, 65535),
    SV_JSTR(launch_json, net_mac, "net_mac"),
    SV_JINT(launch_json, vsock_cid, "vsock_cid", 0, 0xfffffffeLL),
    SV_JINT(launch_json, vsock_fd, "vsock_fd", -1, 65535),
    SV_JSTR(launch_json, agent_socket, "agent_socket"),
    SV_JSTRV(launch_json, vfio_devices, "vfio_devices"),
    SV_JSTRV(launch_json, disks, "disks"),
    SV_JBOOL(launch_json, no_hotplug, "no_hotplug"),
    SV_JINT(launch_json, tsc_khz, "tsc_khz", 0, INT64_MAX),
    SV_JEND,
};
static const sv_jschema launch_schema = {sizeof(launch_json), launch_fields};

static int build(const char *json, size_t len, char **text, sv_qemu_config **cfg, sv_error **err)
{
    _cleanup_json_ json_object *obj = NULL;
    int r = sv_json_parse(json, len, &obj, err);
    if (r < 0)
        return r;
    if (json_object_get_type(obj) != json_type_object)
        return sv_error_set(err, EINVAL, "(top level): expected an object");
    json_object *host_obj = NULL, *vm_obj = NULL, *launch_obj = NULL;
    json_object_object_foreach(obj, key, val)
    {
        if (strcmp(key, "host") == 0)
            host_obj = val;
        else if (strcmp(key, "vm") == 0)
            vm_obj = val;
        else if (strcmp(key, "launch") == 0)
            launch_obj = val;
        else
            return sv_error_set(err, EINVAL, "unknown key \"%s\" (allowed: host, vm, launch)", key);
    }
    if (!host_obj || !vm_obj)
        return sv_error_set(err, EINVAL, "a case needs \"host\" and \"vm\"");

    sv_host_facts host = {0};
    if ((r = sv_host_facts_from_json(host_obj, "host", &host, err)) < 0)
        return r;
    launch_json lj = {.console_fd = -1, .qmp_fd = -1, .vsock_fd = -1};
    sv_vm_config *vm = NULL;
    sv_qemu_config *qcfg = NULL;
    if (launch_obj)
        r = sv_json_decode(&launch_schema, launch_obj, &lj, "launch", err);
    if (r >= 0)
        r = sv_vm_config_from_json(vm_obj, &vm, err);
    if (r >= 0) {
        sv_vm_launch launch = {
            .console_fd = (int)lj.console_fd,
            .qmp_fd = (int)lj.qmp_fd,
            .initrd_override = lj.initrd_override,
            .extra_kernel_params = lj.extra_kernel_params,
            .console_path = lj.console_path,
            .console_connect = lj.console_connect,
            .virtiofs_socket = lj.virtiofs_socket,
            .image_size = lj.image_size,
            .net_fds = lj.net_fds,
            .n_net_fds = lj.n_net_fds,
            .vhost_net_fds = lj.vhost_net_fds,
            .n_vhost_net_fds = lj.n_vhost_net_fds,
            .net_mac = lj.net_mac,
            .vsock_cid = lj.vsock_cid,
            .vsock_fd = (int)lj.vsock_fd,
            .agent_socket = lj.agent_socket,
            .vfio_devices = (const char *const *)lj.vfio_devices,
            .disks = (const char *const *)lj.disks,
            .no_hotplug = lj.no_hotplug,
            .tsc_khz = lj.tsc_khz,
        };
        r = sv_qemu_arch_build(vm, &host, &launch, &qcfg, err);
    }
    if (r >= 0)
        r = sv_qemu_config_argv_text(qcfg, text, err);
    sv_vm_config_free(vm);
    sv_json_free(&launch_schema, &lj);
    sv_host_facts_free(&host);
    if (r < 0) {
        sv_qemu_config_free(qcfg);
        return r;
    }
    *cfg = qcfg;
    return 0;
}

/* ---- fixtures ---- */

static int write_bytes(const char *path, const void *data, size_t len, off_t size)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, 0) < 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len) ||
        ftruncate(fd, size) < 0)
        return -errno;
    return 0;
}

/* A file that exists with `size` bytes of zeros (sparse). */
static int zero_file(const char *path, off_t size)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == size)
        return 0;
    return write_bytes(path, NULL, 0, size);
}

static void put16(unsigned char *p, uint16_t v, bool le)
{
    p[le ? 0 : 1] = (unsigned char)v;
    p[le ? 1 : 0] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v, bool le)
{
    for (int i = 0; i < 4; i++)
        p[le ? i : 3 - i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v, bool le)
{
    for (int i = 0; i < 8; i++)
        p[le ? i : 7 - i] = (unsigned char)(v >> (8 * i));
}

/* A minimal ELF64 executable with one loadable page at `addr`: what the
 * pseries kernel loader and the s390x firmware loader insist on. */
static int elf_file(const char *path, uint16_t machine, bool le, uint64_t addr)
{
    unsigned char b[0x2000] = {0};
    memcpy(b, "\177ELF", 4);
    b[4] = 2;          /* 64-bit */
    b[5] = le ? 1 : 2; /* byte order */
    b[6] = 1;          /* version */
    put16(b + 16, 2, le);          /* ET_EXEC */
    put16(b + 18, machine, le);
    put32(b + 20, 1, le);
    put64(b + 24, addr, le);       /* entry */
    put64(b + 32, 64, le);         /* phoff */
    put16(b + 52, 64, le);         /* ehsize */
    put16(b + 54, 56, le);         /* phentsize */
    put16(b + 56, 1, le);          /* phnum */
    put16(b + 58, 64, le);         /* shentsize */
    unsigned char *ph = b + 64;
    put32(ph, 1, le);              /* PT_LOAD */
    put32(ph + 4, 7, le);          /* rwx */
    put64(ph + 8, 0x1000, le);     /* offset */
    put64(ph + 16, addr, le);      /* vaddr */
    put64(ph + 24, addr, le);      /* paddr */
    put64(ph + 32, 0x1000, le);    /* filesz */
    put64(ph + 40, 0x1000, le);    /* memsz */
    put64(ph + 48, 0x1000, le);    /* align */
    return write_bytes(path, b, sizeof(b), sizeof(b));
}

/* A bzImage header without a kernel behind it: enough for QEMU's x86 loader,
 * which copies setup and payload and runs nothing under -S. */
static int bzimage_file(const char *path)
{
    static unsigned char b[128 << 10];
    memset(b, 0, sizeof(b));
    b[0x1f1] = 4;                      /* setup_sects */
    memcpy(b + 0x202, "HdrS", 4);
    put16(b + 0x206, 0x020f, true);    /* boot protocol 2.15 */
    b[0x211] = 0x01;                   /* LOADED_HIGH */
    put32(b + 0x22c, 0x7fffffff, true); /* initrd_addr_max */
    return write_bytes(path, b, sizeof(b), sizeof(b));
}

static int make_fixtures(void)
{
    /* the names with ',' and '=' prove that paths cannot add QEMU options */
    static const char *const dirs[] = {FIXTURE_ROOT, FIXTURE_LOCKED, FIXTURE_ROOT "/share",
                                       FIXTURE_ROOT "/mem",
                                       FIXTURE_ROOT "/share,security_model=passthrough"};
    for (size_t i = 0; i < SV_ARRAY_SIZE(dirs); i++)
        if (mkdir(dirs[i], 0755) < 0 && errno != EEXIST)
            return -errno;
    int r;
    if ((r = bzimage_file(FIXTURE_ROOT "/kernel-x86_64")) < 0 ||
        (r = zero_file(FIXTURE_ROOT "/kernel-aarch64", 128 << 10)) < 0 ||
        (r = elf_file(FIXTURE_ROOT "/kernel-ppc64le", 21 /* EM_PPC64 */, true, 0)) < 0 ||
        (r = zero_file(FIXTURE_ROOT "/kernel-s390x", 128 << 10)) < 0 ||
        (r = elf_file(FIXTURE_ROOT "/bios-s390x.elf", 22 /* EM_S390 */, false, 0x100000)) < 0 ||
        (r = zero_file(FIXTURE_ROOT "/initrd.img", 4096)) < 0 ||
        (r = zero_file(FIXTURE_ROOT "/bios.bin", 256 << 10)) < 0 ||
        (r = zero_file(FIXTURE_ROOT "/ovmf-code.fd", 1 << 20)) < 0 ||
        (r = zero_file(FIXTURE_ROOT "/ovmf-vars.fd", 128 << 10)) < 0 ||
        (r = zero_file(FIXTURE_ROOT "/aavmf-code.fd", 64 << 20)) < 0 ||
        (r = zero_file(FIXTURE_ROOT "/aavmf-vars.fd", 64 << 20)) < 0 ||
        (r = zero_file(FIXTURE_LOCKED "/rootfs.img", 1 << 20)) < 0 ||
        (r = zero_file(FIXTURE_LOCKED "/disk.img", 1 << 20)) < 0 ||
        (r = zero_file(FIXTURE_LOCKED "/root,format=qcow2.img", 1 << 20)) < 0)
        return r;
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const groups[] = {"x86_64-", "aarch64-", "ppc64le-", "s390x-", NULL};
    static const sv_golden_ops ops = {
        .name = "golden-vm",
        .build = build,
        .fixtures = make_fixtures,
        .fixture_dir = FIXTURE_LOCKED,
        .groups = groups,
    };
    return sv_golden_main(argc, argv, &ops);
}
