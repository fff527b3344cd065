#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const sv_verb verbs[] = {
    {"run", "boot a VM, run a command in it, exit with its status", sv_cmd_run},
    {"qemu-argv", "print (and optionally check with QEMU) the argv of a QEMU config", sv_cmd_qemu_argv},
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm [--verbose] COMMAND [ARGS...]\n"
            "\n"
            "Launch and manage lightweight sandbox VMs.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(f, "  %-12s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f,
            "\n"
            "Options:\n"
            "  -v, --verbose   say more about what is done\n"
            "  -h, --help      show this help (COMMAND --help for a command's)\n"
            "  -V, --version   print the version\n"
            "\n"
            "Exit status: 0 success, 1 the operation failed, 2 bad command line.\n");
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
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    sv_cli cli = {0};
    int c;
    /* '+': stop at the verb, whose own options follow it */
    while ((c = getopt_long(argc, argv, "+vhV", opts, NULL)) != -1) {
        switch (c) {
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
            return sv_cli_usage_error(NULL, "unknown option");
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
