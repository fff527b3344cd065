/*
 * The VM config parser on arbitrary bytes. A config it accepts must pass
 * sv_vm_config_validate() on its own, and the arch layer (with fixed, injected
 * host facts: no host probing, no files read) must either refuse it with an
 * error or build a QEMU config whose argv text round-trips to its argv.
 * Everything is freed; LeakSanitizer checks that nothing is left.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "qemu/arch/arch.h"
#include "qemu/arch/host.h"
#include "sandvm/sandvm.h"
#include "sandvm/vm_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_build(const sv_vm_config *vm)
{
    /* an x86_64 host without usable KVM, as on a CI machine; sysfs_root points
     * nowhere so that nothing depends on the machine the fuzzer runs on */
    static char *flags[] = {"fpu", "sse2", "vmx", NULL};
    sv_host_facts host = {
        .arch = SV_VM_ARCH_X86_64,
        .cpu_flags = flags,
        .mem_mib = 16384,
        .ncpus = 8,
        .sysfs_root = "/nonexistent/sandvm-fuzz-sysfs",
    };
    sv_vm_launch launch = {.console_fd = -1, .qmp_fd = -1, .vsock_fd = -1};
    sv_qemu_config *cfg = NULL;
    sv_error *err = NULL;
    int r = sv_qemu_arch_build(vm, &host, &launch, &cfg, &err);
    if (r < 0) {
        FUZZ_CHECK(cfg == NULL, "sv_qemu_arch_build failed and returned a config");
        fuzz_check_error(r, err, "sv_qemu_arch_build");
        return;
    }
    FUZZ_CHECK(r == 0 && cfg && !err, "sv_qemu_arch_build: r=%d", r);

    char **argv = NULL, *text = NULL;
    size_t argc = 0;
    r = sv_qemu_config_argv(cfg, &argv, &argc, &err);
    FUZZ_CHECK(r == 0, "a config the arch layer built has no argv: %s", sv_error_message(err));
    FUZZ_CHECK(argc > 0 && argv[argc] == NULL, "argv not NULL-terminated at argc %zu", argc);
    r = sv_qemu_config_argv_text(cfg, &text, &err);
    FUZZ_CHECK(r == 0, "argv text: %s", sv_error_message(err));
    fuzz_check_argv_text(argv, argc, text);
    free(text);
    sv_strv_free(argv);
    sv_qemu_config_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sv_vm_config *vm = NULL;
    sv_error *err = NULL;
    int r = sv_vm_config_parse((const char *)data, size, &vm, &err);
    if (r < 0) {
        FUZZ_CHECK(vm == NULL, "sv_vm_config_parse failed and returned a config");
        fuzz_check_error(r, err, "sv_vm_config_parse");
        return 0;
    }
    FUZZ_CHECK(r == 0 && vm && !err, "sv_vm_config_parse: r=%d", r);
    r = sv_vm_config_validate(vm, &err);
    FUZZ_CHECK(r == 0, "a parsed config fails validation: %s", sv_error_message(err));
    check_build(vm);
    sv_vm_config_free(vm);
    return 0;
}
