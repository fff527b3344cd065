/* sandvm run: boot a VM (the default guest unless told otherwise), stream its
 * console, run a command in it and exit with the command's status. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

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

static int parse_uint(const char *verb, const char *flag, const char *s, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v <= 0 || v > max)
        return sv_cli_usage_error(verb, "%s: expected a number from 1 to %ld, got '%s'", flag, max, s);
    *out = v;
    return 0;
}

/* The default guest's builder: $SANDVM_GUEST_BUILDER, else guest/build-guest
 * beside the build tree (build/sandvm -> ../guest), else the installed copy. */
static char *find_builder(void)
{
    const char *env = getenv("SANDVM_GUEST_BUILDER");
    if (env && *env)
        return strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    static const char *const rel[] = {"/../guest/build-guest", "/../share/sandvm/guest/build-guest"};
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        char *p = NULL;
        if (asprintf(&p, "%s%s", exe, rel[i]) < 0)
            return NULL;
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

/* Runs the builder for `arch` (its progress goes to our stderr) and returns
 * the directory holding the guest's kernel and initramfs. */
static int default_guest(const char *arch, char **kernel, char **initrd, sv_error **err)
{
    _cleanup_free_ char *builder = find_builder();
    if (!builder)
        return sv_error_set(err, ENOENT,
                            "default guest: guest/build-guest not found (set SANDVM_GUEST_BUILDER)");
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return sv_error_errno(err, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]), close(pfd[1]);
        return sv_error_errno(err, errno, "fork");
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        execl(builder, builder, arch, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char out[4096];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(pfd[0], out + got, sizeof(out) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof(out) - 1)
            break;
    }
    close(pfd[0]);
    out[got] = '\0';
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return sv_error_set(err, EIO, "default guest: %s %s failed (%s %d)", builder, arch,
                            WIFEXITED(st) ? "exit status" : "signal",
                            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    char *slash = strrchr(out, '/');
    if (out[0] != '/' || !slash)
        return sv_error_set(err, EPROTO, "default guest: unexpected output from %s: '%s'", builder, out);
    *slash = '\0';
    if (asprintf(kernel, "%s/kernel", out) < 0 || asprintf(initrd, "%s/initramfs.cpio.gz", out) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    return 0;
}

static void set_str(const char **field, const char *value)
{
    free((char *)*field);
    *field = value ? strdup(value) : NULL;
}

static const char *arch_json_name(const char *arch)
{
    return arch && !strcmp(arch, "ppc64") ? "ppc64le" : arch;
}

int sv_cmd_run(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    enum { OPT_KERNEL = 256, OPT_INITRD, OPT_APPEND, OPT_ACCEL };
    static const struct option opts[] = {{"arch", required_argument, NULL, 'a'},
                                         {"vcpus", required_argument, NULL, 'c'},
                                         {"memory", required_argument, NULL, 'm'},
                                         {"kernel", required_argument, NULL, OPT_KERNEL},
                                         {"initrd", required_argument, NULL, OPT_INITRD},
                                         {"append", required_argument, NULL, OPT_APPEND},
                                         {"accel", required_argument, NULL, OPT_ACCEL},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *arch = NULL, *kernel = NULL, *initrd = NULL, *append = NULL, *accel = NULL;
    long vcpus = 0, memory = 0, timeout = 0;
    bool verbose = cli->verbose > 0;
    int c;
    while ((c = getopt_long(argc, argv, "+a:c:m:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            arch = optarg;
            break;
        case 'c':
            if (parse_uint("run", "--vcpus", optarg, 4096, &vcpus))
                return SV_EXIT_USAGE;
            break;
        case 'm':
            if (parse_uint("run", "--memory", optarg, 16L << 20, &memory))
                return SV_EXIT_USAGE;
            break;
        case 't':
            if (parse_uint("run", "--timeout", optarg, 86400, &timeout))
                return SV_EXIT_USAGE;
            break;
        case OPT_KERNEL:
            kernel = optarg;
            break;
        case OPT_INITRD:
            initrd = optarg;
            break;
        case OPT_APPEND:
            append = optarg;
            break;
        case OPT_ACCEL:
            accel = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return SV_EXIT_OK;
        default:
            return sv_cli_usage_error("run", "unknown option");
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

    /* One owned config: from the file, or the defaults for --arch with the
     * default guest's kernel and initramfs (or --kernel/--initrd). */
    _cleanup_(sv_vm_config_freep) sv_vm_config *vm = NULL;
    if (config) {
        if (sv_vm_config_load(config, &vm, err) < 0)
            return SV_EXIT_FAILURE;
        if (arch && strcmp(sv_vm_arch_name(vm->arch), arch_json_name(arch)) != 0)
            return sv_cli_usage_error("run", "--arch %s contradicts the config's arch %s", arch,
                                      sv_vm_arch_name(vm->arch));
    } else {
        struct utsname u;
        const char *a = arch ? arch_json_name(arch) : (uname(&u) == 0 ? u.machine : "x86_64");
        static const char *const known[] = {"x86_64", "aarch64", "ppc64le", "s390x"};
        bool ok = false;
        for (size_t i = 0; i < 4; i++)
            ok |= !strcmp(a, known[i]);
        if (!ok)
            return sv_cli_usage_error("run", "--arch: expected x86_64, aarch64, ppc64le or s390x, got '%s'", a);
        _cleanup_free_ char *k = NULL, *i = NULL;
        if (!kernel && default_guest(a, &k, &i, err) < 0)
            return SV_EXIT_FAILURE;
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object_object_add(o, "arch", json_object_new_string(a));
        json_object_object_add(o, "kernel", json_object_new_string(kernel ? kernel : k));
        if (initrd || !kernel)
            json_object_object_add(o, "initrd", json_object_new_string(initrd ? initrd : i));
        const char *text = json_object_to_json_string(o);
        if (sv_vm_config_parse(text, strlen(text), &vm, err) < 0)
            return SV_EXIT_FAILURE;
        kernel = initrd = NULL; /* applied */
    }
    if (vcpus)
        vm->vcpus = vcpus;
    if (vcpus && vm->max_vcpus && vm->max_vcpus < vcpus)
        vm->max_vcpus = vcpus;
    if (memory)
        vm->memory = memory;
    if (append) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s%s%s", vm->kernel_params ? vm->kernel_params : "",
                     vm->kernel_params ? " " : "", append) < 0)
            return SV_EXIT_FAILURE;
        set_str(&vm->kernel_params, p);
    }
    if (accel) {
        static const char *const names[] = {"auto", "kvm", "tcg"};
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(accel, names[i]))
                found = i;
        if (found < 0)
            return sv_cli_usage_error("run", "--accel: expected auto, kvm or tcg, got '%s'", accel);
        vm->accel = found == 0 ? SV_VM_ACCEL_AUTO : found == 1 ? SV_VM_ACCEL_KVM : SV_VM_ACCEL_TCG;
    }
    if (kernel)
        set_str(&vm->kernel, kernel);
    if (initrd)
        set_str(&vm->initrd, initrd);
    if (sv_vm_config_validate(vm, err) < 0)
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
    int r = sv_vm_run(vm, &ro, &status, err);
    close(cancel_pipe[0]), close(cancel_pipe[1]);
    if (r == -ECANCELED)
        return 130;
    if (r < 0)
        return SV_EXIT_FAILURE;
    return status;
}
