/* sandvm run: boot a VM (the default guest unless told otherwise), stream its
 * console, run a command in it and exit with the command's status. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sandvm/vm_config.h"
#include "util/cleanup.h"
#include "util/error.h"

static inline void sv_vm_config_freep(sv_vm_config **p)
{
    sv_vm_config_free(*p);
}

static int cancel_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    (void)!write(cancel_pipe[1], "x", 1);
    errno = saved;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm run [OPTIONS] [CONFIG.json] [-- COMMAND [ARG...]]\n"
            "\n"
            "Boot a VM, stream its console, and run COMMAND in it; exit with COMMAND's\n"
            "exit status. Without CONFIG.json the VM is the default guest (a Debian\n"
            "kernel and a busybox initramfs, built and cached by guest/build-guest on\n"
            "first use). Without COMMAND the guest prints uname -a and its kernel\n"
            "command line. Arguments reach the guest as data: spaces, quotes and\n"
            "newlines survive. Ctrl-C stops the VM and cleans up.\n"
            "\n"
            "Options (they override CONFIG.json):\n"
            "  -a, --arch ARCH      x86_64 (default: the host's), aarch64, ppc64le, s390x\n"
            "  -c, --vcpus N        virtual CPUs\n"
            "  -m, --memory MIB     guest memory in MiB\n"
            "      --kernel PATH    guest kernel (default: the default guest's)\n"
            "      --initrd PATH    initramfs (default: the default guest's)\n"
            "      --append PARAMS  extra kernel parameters\n"
            "      --accel MODE     auto (default: KVM only where it can boot an ordinary\n"
            "                       guest, e.g. not on a PVM host), kvm, or tcg\n"
            "  -t, --timeout SEC    give up if the command has not started after SEC\n"
            "                       seconds (default 120)\n"
            "  -v, --verbose        say which accelerator was picked, the boot stages\n"
            "                       and the QEMU command line\n"
            "  -h, --help           show this help\n"
            "\n"
            "Exit status: COMMAND's status; 1 when the VM could not run it; 2 bad usage;\n"
            "130 when interrupted.\n");
}

static void log_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "sandvm: %s\n", msg);
}

int sv_cmd_run(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    static const struct option opts[] = {SV_CLI_VM_OPTIONS,
                                         {"timeout", required_argument, NULL, 't'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    sv_cli_vm_flags flags = {0};
    long timeout = 0;
    bool verbose = cli->verbose > 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:" SV_CLI_VM_SHORT "t:vh", opts, NULL)) != -1) {
        int r = sv_cli_vm_flag(&flags, "run", c, optarg);
        if (r == SV_EXIT_USAGE)
            return r;
        if (r)
            continue;
        switch (c) {
        case 't':
            if (sv_cli_parse_uint("run", "--timeout", optarg, 86400, &timeout))
                return SV_EXIT_USAGE;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return SV_EXIT_OK;
        default:
            return sv_cli_bad_option("run", argv, c);
        }
    }
    /* getopt stops at "--" (consumed) or the first operand */
    bool dashdash = optind > 0 && optind <= argc && !strcmp(argv[optind - 1], "--");
    const char *config = NULL;
    if (!dashdash && optind < argc) {
        config = argv[optind++];
        if (optind < argc && strcmp(argv[optind], "--") != 0)
            return sv_cli_usage_error("run", "unexpected argument '%s' (put the command after --)",
                                      argv[optind]);
        if (optind < argc)
            optind++;
    }
    const char *const *job = optind < argc ? (const char *const *)&argv[optind] : NULL;

    /* The same config `sandvm create` would record: the file, or the default
     * guest of --arch, with the flags on top. */
    _cleanup_free_ char *json = NULL;
    int r = sv_cli_vm_config_json("run", config, &flags, &json, err);
    if (r)
        return r;
    _cleanup_(sv_vm_config_freep) sv_vm_config *vm = NULL;
    if (sv_vm_config_parse(json, strlen(json), &vm, err) < 0)
        return SV_EXIT_FAILURE;

    if (pipe2(cancel_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return sv_error_errno(err, errno, "pipe"), SV_EXIT_FAILURE;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    sv_run_opts ro = {.argv = job,
                      .console_fd = STDOUT_FILENO,
                      .cancel_fd = cancel_pipe[0],
                      .boot_timeout_ms = (int)timeout * 1000,
                      .log = verbose ? log_stderr : NULL};
    int status = 0;
    r = sv_vm_run(vm, &ro, &status, err);
    close(cancel_pipe[0]), close(cancel_pipe[1]);
    if (r == -ECANCELED)
        return 130;
    if (r < 0)
        return SV_EXIT_FAILURE;
    return status;
}
