/*
 * The VM configuration and the architecture layer, below the golden files:
 * defaults, the C-struct form (borrowed strings the library must never free),
 * host facts, accel resolution, and every golden-vm case built once more so
 * that the ASan run sees each success and error path free what it allocated.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/vm_config.h"
#include "qemu/arch/arch.h"
#include "qemu/qemu_argv.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

static const char *cases_dir;

SV_DEFINE_CLEANUP(sv_qemu_config, sv_qemu_config_free)

static sv_host_facts x86_host(void)
{
    static char *no_flags[] = {NULL};
    return (sv_host_facts){.arch = SV_VM_ARCH_X86_64, .cpu_flags = no_flags, .mem_mib = 8192,
                           .ncpus = 4, .sysfs_root = (char *)"/sys"};
}

/* The argv text of vm on host, or NULL with *err set. */
static char *argv_text(const sv_vm_config *vm, const sv_host_facts *host, const sv_vm_launch *l,
                       sv_error **err)
{
    _cleanup_(sv_qemu_config_freep) sv_qemu_config *cfg = NULL;
    char *text = NULL;
    if (sv_qemu_arch_build(vm, host, l, &cfg, err) < 0 ||
        sv_qemu_config_argv_text(cfg, &text, err) < 0)
        return NULL;
    return text;
}

static void test_defaults(void **state)
{
    sv_vm_config vm;
    sv_vm_config_init_defaults(&vm, SV_VM_ARCH_AARCH64);
    assert_int_equal(vm.arch, SV_VM_ARCH_AARCH64);
    assert_int_equal(vm.vcpus, 1);
    assert_int_equal(vm.memory, 512);
    assert_int_equal(vm.memory_slots, 10);
    assert_int_equal(vm.default_bridges, 1);
    assert_int_equal(vm.block_device_driver, SV_VM_BLOCK_VIRTIO_BLK);
    assert_int_equal(vm.shared_fs, SV_VM_SHARED_FS_NONE);
    assert_int_equal(vm.accel, SV_VM_ACCEL_AUTO);
    assert_int_equal(vm.console, SV_VM_CONSOLE_SERIAL);
    assert_true(vm.disable_image_nvdimm);
    assert_null(vm.kernel);
    assert_null(vm.pflash);
    assert_string_equal(sv_vm_arch_name(SV_VM_ARCH_PPC64LE), "ppc64le");
    assert_null(sv_vm_arch_name(SV_VM_ARCH__MAX));
    assert_null(sv_vm_arch_name(-1));
}

static void test_parse_defaults_and_keys(void **state)
{
    static const char json[] = "{\"arch\": \"s390x\", \"kernel\": \"/k\", \"vcpus\": 2,"
                               " \"pflash\": null, \"cpu_features\": []}";
    sv_vm_config *vm = NULL;
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_vm_config_parse(json, strlen(json), &vm, &err), 0);
    assert_int_equal(vm->arch, SV_VM_ARCH_S390X);
    assert_int_equal(vm->vcpus, 2);
    assert_int_equal(vm->memory, 512);
    assert_true(vm->disable_image_nvdimm);
    assert_null(vm->pflash);
    assert_non_null(vm->cpu_features); /* [] is "none", not the default */
    assert_null(vm->cpu_features[0]);
    sv_vm_config_free(vm);
    sv_vm_config_free(NULL);
}

static void test_parse_errors_free(void **state)
{
    /* strings decoded before the failing key are freed (ASan checks) */
    static const char *const bad[] = {
        "{\"kernel\": \"/k\", \"initrd\": \"/i\", \"pflash\": [\"/a\"], \"bogus\": 1}",
        "{\"kernel\": \"/k\", \"cpu_features\": [\"a\", 3]}",
        "{\"kernel\": \"/k\", \"image\": \"/i\", \"initrd\": \"/j\"}",
        "{\"arch\": \"riscv64\", \"kernel\": \"/k\"}",
        "[]",
        "{\"kernel\": \"/k\",}",
    };
    static const char *const want[] = {
        "unknown key \"bogus\"",
        "cpu_features[1]: expected a string, got an integer",
        "image: cannot be combined with initrd: the guest boots from one of them",
        "arch: \"riscv64\" is not one of: host, x86_64, aarch64, ppc64le, s390x",
        "(top level): expected an object, got an array",
        NULL,
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
        sv_vm_config *vm = NULL;
        _cleanup_error_ sv_error *err = NULL;
        assert_true(sv_vm_config_parse(bad[i], strlen(bad[i]), &vm, &err) < 0);
        assert_null(vm);
        assert_int_equal(sv_error_code(err), EINVAL);
        if (want[i])
            assert_string_equal(sv_error_message(err), want[i]);
    }
}

static void test_load(void **state)
{
    char path[] = "/tmp/sv-vm-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char json[] = "{\"kernel\": \"/k\", \"memory\": 1}";
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    sv_vm_config *vm = NULL;
    _cleanup_error_ sv_error *err = NULL;
    assert_true(sv_vm_config_load(path, &vm, &err) < 0);
    char *want = NULL;
    assert_true(asprintf(&want, "%s: memory: 1 is out of range [64, 16777216]", path) > 0);
    assert_string_equal(sv_error_message(err), want);
    free(want);
    unlink(path);
    sv_error_free(TAKE_PTR(err));
    assert_int_equal(sv_vm_config_load("/nonexistent/vm.json", &vm, &err), -ENOENT);
}

/* A config in C: stack struct, literal strings and arrays (borrowed). */
static void test_c_struct_every_arch(void **state)
{
    static const char *const want[SV_VM_ARCH__MAX] = {
        [SV_VM_ARCH_X86_64] = "-machine q35,accel=tcg",
        [SV_VM_ARCH_AARCH64] = "-machine virt,accel=tcg,usb=off,gic-version=3",
        [SV_VM_ARCH_PPC64LE] = "-machine pseries,accel=tcg,usb=off,cap-cfpc=broken",
        [SV_VM_ARCH_S390X] = "-device virtio-rng-ccw,id=rng0,rng=rng0,devno=fe.0.0000",
    };
    sv_host_facts host = x86_host();
    for (int arch = SV_VM_ARCH_X86_64; arch < SV_VM_ARCH__MAX; arch++) {
        sv_vm_config vm;
        sv_vm_config_init_defaults(&vm, arch);
        vm.kernel = "/boot/vmlinuz";
        vm.initrd = "/boot/initrd.img";
        vm.vcpus = 2;
        vm.kernel_params = "sandvm.a=1";
        vm.entropy_source = "/dev/urandom";
        vm.cpu_features = (const char *const[]){NULL};
        sv_vm_launch launch = {.console_fd = -1, .qmp_fd = -1, .vsock_fd = -1,
                               .console_path = "/run/c.sock", .extra_kernel_params = "x=1"};
        _cleanup_error_ sv_error *err = NULL;
        _cleanup_free_ char *text = argv_text(&vm, &host, &launch, &err);
        if (!text)
            fail_msg("%s: %s", sv_vm_arch_name(arch), sv_error_message(err));
        assert_non_null(strstr(text, want[arch]));
        assert_non_null(strstr(text, "sandvm.a=1 x=1'"));
        assert_non_null(strstr(text, "-smp cpus=2,sockets=2,cores=1,threads=1,maxcpus=2"));
        assert_int_equal(sv_vm_config_validate(&vm, NULL), 0);
        unsigned caps = sv_qemu_arch_capabilities(&vm, &host);
        assert_true(caps & SV_CAP_BLOCK_HOTPLUG);
        assert_false(caps & (SV_CAP_CPU_HOTPLUG | SV_CAP_MEMORY_HOTPLUG | SV_CAP_FS_SHARING));
        vm.max_vcpus = 4;
        vm.max_memory = 1024;
        caps = sv_qemu_arch_capabilities(&vm, &host);
        assert_true(caps & SV_CAP_CPU_HOTPLUG);
        /* s390x needs virtio-mem, aarch64 firmware, for memory hotplug */
        assert_int_equal(!!(caps & SV_CAP_MEMORY_HOTPLUG),
                         arch == SV_VM_ARCH_X86_64 || arch == SV_VM_ARCH_PPC64LE);
    }
}

static void test_accel(void **state)
{
    sv_vm_config vm;
    sv_vm_config_init_defaults(&vm, SV_VM_ARCH_HOST);
    sv_host_facts host = x86_host();
    assert_string_equal(sv_qemu_arch_accel(&vm, &host), "tcg");
    host.kvm_usable = true;
    assert_string_equal(sv_qemu_arch_accel(&vm, &host), "kvm");
    host.kvm_is_pvm = true;
    assert_string_equal(sv_qemu_arch_accel(&vm, &host), "tcg");
    host.kvm_is_pvm = false;
    vm.arch = SV_VM_ARCH_AARCH64;
    assert_string_equal(sv_qemu_arch_accel(&vm, &host), "tcg");
    vm.accel = SV_VM_ACCEL_KVM;
    assert_string_equal(sv_qemu_arch_accel(&vm, &host), "kvm");
    /* the build says why */
    vm.kernel = "/k";
    _cleanup_error_ sv_error *err = NULL;
    _cleanup_free_ char *text = argv_text(&vm, &host, NULL, &err);
    assert_null(text);
    assert_string_equal(sv_error_message(err),
                        "accel: kvm cannot be used: KVM runs guests of the host's architecture "
                        "only, and this host is x86_64, the guest aarch64; use tcg or auto");
}

static void test_host_facts(void **state)
{
    sv_host_facts h = {0};
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_host_facts_probe(&h, NULL, &err), 0);
    assert_true(h.arch > SV_VM_ARCH_HOST && h.arch < SV_VM_ARCH__MAX);
    assert_true(h.mem_mib > 0);
    assert_true(h.ncpus > 0);
    assert_non_null(h.cpu_flags);
    assert_string_equal(h.sysfs_root, "/sys");
    sv_host_facts_free(&h);
    assert_null(h.cpu_flags);
    sv_host_facts_free(NULL);

    /* an injected sysfs root: PVM and guest protection come from it */
    char root[] = "/tmp/sv-sysfs-XXXXXX";
    assert_non_null(mkdtemp(root));
    char *p = NULL;
    assert_true(asprintf(&p, "mkdir -p %s/module/kvm_pvm %s/firmware/ultravisor", root, root) > 0);
    assert_int_equal(system(p), 0);
    free(p);
    assert_int_equal(sv_host_facts_probe(&h, root, &err), 0);
    assert_true(h.kvm_is_pvm);
    assert_int_equal(h.protection, h.arch == SV_VM_ARCH_PPC64LE ? SV_PROT_PEF : SV_PROT_NONE);
    sv_host_facts_free(&h);
    assert_true(asprintf(&p, "rm -rf %s", root) > 0);
    assert_int_equal(system(p), 0);
    free(p);

    static const char json[] = "{\"arch\": \"s390x\", \"cpu_flags\": [\"a\", \"hypervisor\"],"
                               " \"protection\": \"se\"}";
    _cleanup_json_ json_object *obj = NULL;
    assert_int_equal(sv_json_parse(json, strlen(json), &obj, &err), 0);
    assert_int_equal(sv_host_facts_from_json(obj, "host", &h, &err), 0);
    assert_int_equal(h.arch, SV_VM_ARCH_S390X);
    assert_int_equal(h.protection, SV_PROT_SE);
    assert_true(sv_host_has_cpu_flag(&h, "hypervisor"));
    assert_false(sv_host_is_nested(&h)); /* Kata: only x86_64 hosts count as nested */
    sv_host_facts_free(&h);
}

/* Every golden-vm case once more: the ASan run sees all paths free their memory. */
static void test_all_cases(void **state)
{
    if (!cases_dir)
        skip();
    DIR *d = opendir(cases_dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        _cleanup_free_ char *path = NULL;
        assert_true(asprintf(&path, "%s/%s", cases_dir, de->d_name) > 0);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char buf[1 << 16];
        size_t got = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        _cleanup_error_ sv_error *err = NULL;
        _cleanup_json_ json_object *obj = NULL;
        assert_int_equal(sv_json_parse(buf, got, &obj, &err), 0);
        json_object *host_obj = NULL, *vm_obj = NULL;
        if (!json_object_object_get_ex(obj, "host", &host_obj) ||
            !json_object_object_get_ex(obj, "vm", &vm_obj))
            continue;
        sv_host_facts host = {0};
        if (sv_host_facts_from_json(host_obj, "host", &host, &err) == 0) {
            sv_vm_config *vm = NULL;
            if (sv_vm_config_from_json(vm_obj, &vm, &err) == 0) {
                /* without the case's launch: some builds fail, which is a path too */
                _cleanup_free_ char *text = argv_text(vm, &host, NULL, &err);
                sv_vm_config_free(vm);
            }
            sv_host_facts_free(&host);
        }
        n++;
    }
    closedir(d);
    assert_true(n > 100);
}

int main(int argc, char **argv)
{
    cases_dir = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parse_defaults_and_keys),
        cmocka_unit_test(test_parse_errors_free),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_c_struct_every_arch),
        cmocka_unit_test(test_accel),
        cmocka_unit_test(test_host_facts),
        cmocka_unit_test(test_all_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
