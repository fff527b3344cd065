#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const sv_verb verbs[] = {
    {"create", "create a VM (default guest, flags or a config file, or a saved VM)", sv_cmd_create},
    {"start", "start a created VM; it keeps running after sandvm exits", sv_cmd_start},
    {"exec", "run a command in a running VM, exit with its status", sv_cmd_exec},
    {"console", "attach the terminal to a VM's console (Ctrl-] detaches)", sv_cmd_console},
    {"pause", "pause a VM's vCPUs", sv_cmd_pause},
    {"resume", "resume a paused VM", sv_cmd_resume},
    {"save", "save a running VM to a directory, for create --from", sv_cmd_save},
    {"stop", "stop a VM and delete it (--keep: keep it, stopped)", sv_cmd_stop},
    {"delete", "delete a VM that is not running (--force: stop it first)", sv_cmd_delete},
    {"status", "show a VM's state", sv_cmd_status},
    {"list", "list the VMs", sv_cmd_list},
    {"qmp", "send one QMP command to a VM, print the reply", sv_cmd_qmp},
    {"threads", "print the host thread ids of a VM's vCPUs", sv_cmd_threads},
    {"pids", "print the pids of a VM's processes", sv_cmd_pids},
    {"resize", "change a running VM's memory and vCPUs (hot-plug)", sv_cmd_resize},
    {"hotplug", "hot-plug a disk, NIC, VFIO or vhost-user device into a VM", sv_cmd_hotplug},
    {"unplug", "unplug a hot-plugged device from a VM", sv_cmd_unplug},
    {"devices", "list a VM's hot-plugged devices and their addresses", sv_cmd_devices},
    {"run", "create, start and attach in one: boot, run one command, exit with its status",
     sv_cmd_run},
    {"qemu-argv", "print (and optionally check with QEMU) the argv of a QEMU config",
     sv_cmd_qemu_argv},
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm [--verbose] [--root DIR] COMMAND [ARGS...]\n"
            "\n"
            "Launch and manage lightweight sandbox VMs.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f,
            "\n"
            "Options:\n"
            "  -v, --verbose   say more about what is done\n"
            "      --root DIR  state root of the VMs (default: $SANDVM_ROOT, else /run/sandvm);\n"
            "                  every VM command also takes it after the command name\n"
            "  -h, --help      show this help (COMMAND --help for a command's)\n"
            "  -V, --version   print the version\n"
            "\n"
            "Example:\n"
            "  sandvm create --arch aarch64 web1 && sandvm start web1\n"
            "  sandvm exec web1 -- uname -m\n"
            "  sandvm stop web1\n"
            "\n"
            "Exit status: 0 success, 1 the operation failed, 2 bad command line.\n"
            "exec and run exit with the command's status; exec's own failures are\n"
            "125 (sandvm could not run the command), 126 (the command cannot be\n"
            "executed) and 127 (no such command); 128+N: killed by signal N.\n");
}

int sv_cli_usage_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sandvm: ", stderr);
    if (verb)
        fprintf(stderr, "%s: ", verb);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'sandvm %s%s--help'.\n", verb ? verb : "", verb ? " " : "");
    va_end(ap);
    return SV_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"verbose", no_argument, NULL, 'v'},
                                         {"root", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    sv_cli cli = {0};
    int c;
    /* '+': stop at the verb, whose own options follow it */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            cli.root = optarg;
            break;
        case 'v':
            cli.verbose++;
            break;
        case 'h':
            usage(stdout);
            return SV_EXIT_OK;
        case 'V':
            printf("sandvm 0.1.0\n");
            return SV_EXIT_OK;
        default:
            return sv_cli_bad_option(NULL, argv, c);
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return SV_EXIT_USAGE;
    }
    int vi = optind;
    const char *name = argv[vi];
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(verbs[i].name, name) != 0)
            continue;
        sv_error *err = NULL;
        optind = 0; /* re-initialise getopt for the verb's own options */
        opterr = 1; /* qemu-argv lets getopt report; the other verbs clear it */
        int r = verbs[i].run(&cli, argc - vi, argv + vi, &err);
        if (err) {
            fprintf(stderr, "sandvm: %s\n", sv_error_message(err));
            sv_error_free(err);
            return r == SV_EXIT_OK ? SV_EXIT_FAILURE : r;
        }
        return r;
    }
    return sv_cli_usage_error(NULL, "unknown command '%s'", name);
}
