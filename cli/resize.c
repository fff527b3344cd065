/* `sandvm resize`: the memory and vCPUs of a running VM. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "sandvm/vm.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

SV_DEFINE_CLEANUP(sv_vm, sv_vm_close)

enum { OPT_ROOT = SV_CLI_OPT__VERB, OPT_JSON };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm resize [OPTIONS] ID\n"
            "\n"
            "Change the memory or the vCPUs of the running VM ID while it runs, within\n"
            "the ceilings it was created with (create --max-memory, --max-vcpus; config\n"
            "keys max_memory, memory_slots, max_vcpus). Growing hot-plugs one DIMM (the\n"
            "missing memory rounded up to the arch's memory block: x86_64 128 MiB,\n"
            "ppc64le 256 MiB) or vCPUs; shrinking unplugs what earlier resizes added,\n"
            "newest first, keeping at least the size asked for, each once the guest\n"
            "has released it. The default guest brings what arrives online by itself.\n"
            "Memory first, then vCPUs. Without --memory and --vcpus, prints the size.\n"
            "Prints \"memory: OLD -> NEW MiB (max M MiB)\" and \"vcpus: OLD -> NEW (max N)\".\n"
            "What each arch supports: x86_64 and ppc64le everything, but vCPU unplug\n"
            "only under KVM (QEMU 7.2 does not survive it under TCG); s390x adding\n"
            "vCPUs only; aarch64 memory only with firmware, vCPUs not at all.\n"
            "\n"
            "Options:\n"
            "  -m, --memory MIB     the memory the VM is to have, in MiB\n"
            "  -c, --vcpus N        the vCPUs the VM is to have\n"
            "  -t, --timeout SEC    how long each unplug waits for the guest to release\n"
            "                       the DIMM or vCPU (default 10)\n"
            "      --json           print the size afterwards as one JSON object:\n"
            "                       memory_mib, max_memory_mib, vcpus, max_vcpus\n"
            "      --root DIR       state root (default: $SANDVM_ROOT, else /run/sandvm)\n"
            "  -h, --help           show this help\n"
            "\n"
            "Examples:\n"
            "  sandvm create --max-vcpus 4 --max-memory 2048 web1 && sandvm start web1\n"
            "  sandvm resize --memory 1024 --vcpus 2 web1\n"
            "  sandvm resize --vcpus 1 web1\n"
            "  sandvm resize web1\n"
            "\n"
            "Exit status: 0 success, 1 the operation failed, 2 bad command line.\n");
}

static int finish_output(sv_error **err)
{
    if (fflush(stdout) != 0 || ferror(stdout))
        return sv_error_errno(err, errno ? errno : EIO, "writing to stdout"), SV_EXIT_FAILURE;
    return SV_EXIT_OK;
}

int sv_cmd_resize(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    static const struct option opts[] = {{"memory", required_argument, NULL, 'm'},
                                         {"vcpus", required_argument, NULL, 'c'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"root", required_argument, NULL, OPT_ROOT},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    long memory = 0, vcpus = 0, timeout = 0;
    bool json = false;
    const char *root_opt = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (sv_cli_parse_uint("resize", "--memory", optarg, 16L << 20, &memory))
                return SV_EXIT_USAGE;
            break;
        case 'c':
            if (sv_cli_parse_uint("resize", "--vcpus", optarg, 4096, &vcpus))
                return SV_EXIT_USAGE;
            break;
        case 't':
            if (sv_cli_parse_seconds("resize", "--timeout", optarg, false, &timeout))
                return SV_EXIT_USAGE;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_ROOT:
            root_opt = optarg;
            break;
        case 'h':
            usage(stdout);
            return SV_EXIT_OK;
        default:
            return sv_cli_bad_option("resize", argv, c);
        }
    }
    if (optind >= argc)
        return sv_cli_usage_error("resize", "missing ID (usage: sandvm resize [OPTIONS] ID)");
    if (argc - optind > 1)
        return sv_cli_usage_error("resize", "unexpected argument '%s'", argv[optind + 1]);

    _cleanup_free_ char *root = NULL;
    if (sv_cli_root(cli, root_opt, &root, err) < 0)
        return SV_EXIT_FAILURE;
    _cleanup_(sv_vm_closep) sv_vm *vm = NULL;
    if (sv_vm_open(root, argv[optind], &vm, err) < 0)
        return SV_EXIT_FAILURE;
    int timeout_ms = (int)timeout * 1000;
    int64_t mem_old = 0, mem_new = 0, cpu_old = 0, cpu_new = 0;
    if (memory && sv_vm_resize_memory(vm, memory, timeout_ms, &mem_old, &mem_new, err) < 0)
        return SV_EXIT_FAILURE;
    if (vcpus && sv_vm_resize_vcpus(vm, vcpus, timeout_ms, &cpu_old, &cpu_new, err) < 0)
        return SV_EXIT_FAILURE;
    sv_vm_size size;
    if (sv_vm_get_size(vm, &size, err) < 0)
        return SV_EXIT_FAILURE;
    if (json) {
        _cleanup_json_ json_object *o = json_object_new_object();
        if (!o || json_object_object_add(o, "memory_mib", json_object_new_int64(size.memory_mib)) ||
            json_object_object_add(o, "max_memory_mib",
                                   json_object_new_int64(size.max_memory_mib)) ||
            json_object_object_add(o, "vcpus", json_object_new_int64(size.vcpus)) ||
            json_object_object_add(o, "max_vcpus", json_object_new_int64(size.max_vcpus)))
            return sv_error_set(err, ENOMEM, "out of memory"), SV_EXIT_FAILURE;
        printf("%s\n", sv_json_to_string(o));
        return finish_output(err);
    }
    if (memory)
        printf("memory: %" PRId64 " -> %" PRId64 " MiB (max %" PRId64 " MiB)\n", mem_old, mem_new,
               size.max_memory_mib);
    else
        printf("memory: %" PRId64 " MiB (max %" PRId64 " MiB)\n", size.memory_mib,
               size.max_memory_mib);
    if (vcpus)
        printf("vcpus: %" PRId64 " -> %" PRId64 " (max %" PRId64 ")\n", cpu_old, cpu_new,
               size.max_vcpus);
    else
        printf("vcpus: %" PRId64 " (max %" PRId64 ")\n", size.vcpus, size.max_vcpus);
    return finish_output(err);
}
