/* sandvm qemu-argv: the argv of a QEMU config, optionally proven by the real QEMU. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "util/cleanup.h"

SV_DEFINE_CLEANUP(sv_qemu_config, sv_qemu_config_free)

static inline void strv_freep(char ***v)
{
    sv_strv_free(*v);
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm qemu-argv [OPTIONS] FILE.json\n"
            "\n"
            "Print the QEMU command line for the QEMU configuration in FILE.json\n"
            "(docs/qemu-config.md), one option per line, shell-quoted, as a command\n"
            "you can paste into a shell.\n"
            "\n"
            "Options:\n"
            "  -c, --check        also start the real QEMU with it, paused (-S) and with\n"
            "                     no display, confirm over QMP that it is up, and quit it\n"
            "  -q, --qmp JSON     with --check: run this QMP command (e.g.\n"
            "                     '{\"execute\":\"query-block\"}') and print its reply;\n"
            "                     may be repeated\n"
            "      --json         print the argv as a JSON array of strings instead\n"
            "  -t, --timeout SEC  with --check: give up after SEC seconds (default 10)\n"
            "  -h, --help         show this help\n"
            "\n"
            "Exit status: 0 success, 1 invalid config or QEMU refused it, 2 bad usage.\n");
}

int sv_cmd_qemu_argv(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    static const struct option opts[] = {{"check", no_argument, NULL, 'c'},
                                         {"qmp", required_argument, NULL, 'q'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool check = false, as_json = false;
    int timeout_ms = 0;
    _cleanup_free_ const char **qmp = calloc((size_t)argc + 1, sizeof(char *));
    size_t nqmp = 0;
    int c;
    if (!qmp)
        return SV_EXIT_FAILURE;
    while ((c = getopt_long(argc, argv, "cq:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            check = true;
            break;
        case 'q':
            qmp[nqmp++] = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 't': {
            char *end = NULL;
            long s = strtol(optarg, &end, 10);
            if (!*optarg || *end || s <= 0 || s > 3600) {
                return sv_cli_usage_error("qemu-argv", "--timeout: expected seconds from 1 to 3600, got '%s'", optarg);
            }
            timeout_ms = (int)s * 1000;
            break;
        }
        case 'h':
            usage(stdout);
            return SV_EXIT_OK;
        default:
            return sv_cli_usage_error("qemu-argv", "unknown option");
        }
    }
    if (optind != argc - 1)
        return sv_cli_usage_error("qemu-argv", optind >= argc ? "missing FILE.json" : "too many arguments");
    if (nqmp && !check)
        return sv_cli_usage_error("qemu-argv", "--qmp needs --check");

    _cleanup_(sv_qemu_config_freep) sv_qemu_config *cfg = NULL;
    if (sv_qemu_config_load(argv[optind], &cfg, err) < 0)
        return SV_EXIT_FAILURE;
    if (as_json) {
        _cleanup_(strv_freep) char **v = NULL;
        size_t n = 0;
        if (sv_qemu_config_argv(cfg, &v, &n, err) < 0)
            return SV_EXIT_FAILURE;
        _cleanup_json_ json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++)
            json_object_array_add(arr, json_object_new_string(v[i]));
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    } else {
        _cleanup_free_ char *text = NULL;
        if (sv_qemu_config_argv_text(cfg, &text, err) < 0)
            return SV_EXIT_FAILURE;
        fputs(text, stdout);
    }
    fflush(stdout);
    if (!check)
        return SV_EXIT_OK;
    _cleanup_(strv_freep) char **replies = calloc(nqmp + 1, sizeof(char *));
    if (!replies)
        return SV_EXIT_FAILURE;
    sv_qemu_check_opts co = {.timeout_ms = timeout_ms,
                             .qmp = nqmp ? (const char *const *)qmp : NULL,
                             .replies = nqmp ? replies : NULL};
    if (sv_qemu_check(cfg, &co, err) < 0)
        return SV_EXIT_FAILURE;
    for (size_t i = 0; i < nqmp; i++)
        printf("%s\n", replies[i] ? replies[i] : "null");
    if (cli->verbose)
        fprintf(stderr, "sandvm: QEMU accepted the command line\n");
    return SV_EXIT_OK;
}
