/* The sandvm CLI: main.c holds global options and the verb table; one file per verb. */
#pragma once

#include <stdio.h>

#include "sandvm/sandvm.h"

/* Exit codes (documented in docs/cli.md). */
enum {
    SV_EXIT_OK = 0,
    SV_EXIT_FAILURE = 1,  /* the operation failed: bad config, QEMU refused, ... */
    SV_EXIT_USAGE = 2,    /* the command line itself was wrong */
};

typedef struct sv_cli {
    int verbose;
} sv_cli;

typedef struct sv_verb {
    const char *name;
    const char *summary;
    int (*run)(sv_cli *cli, int argc, char **argv, sv_error **err);
} sv_verb;

int sv_cmd_qemu_argv(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_run(sv_cli *cli, int argc, char **argv, sv_error **err);
/* Prints "sandvm: <msg>" for a usage problem and returns SV_EXIT_USAGE. */
int sv_cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
