/* The sandvm CLI: main.c holds global options and the verb table; each verb
 * parses its flags, calls the public API only, and hands the error back to
 * main, which prints it as "sandvm: <message>". */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "sandvm/sandvm.h"

/* Exit codes (documented in docs/cli.md and `sandvm --help`). */
enum {
    SV_EXIT_OK = 0,
    SV_EXIT_FAILURE = 1, /* the operation failed: bad config, QEMU refused, ... */
    SV_EXIT_USAGE = 2,   /* the command line itself was wrong */
    /* sandvm exec only, as docker/podman exec: its own failures must not look
     * like the statuses of the command it runs. */
    SV_EXIT_EXEC_FAILED = 125,   /* sandvm could not run the command (any reason but these two) */
    SV_EXIT_EXEC_CANNOT = 126,   /* the command was found but could not be executed */
    SV_EXIT_EXEC_NOTFOUND = 127, /* no such command in the guest */
};

typedef struct sv_cli {
    int verbose;
    const char *root; /* --root given before the verb; NULL: none */
} sv_cli;

typedef struct sv_verb {
    const char *name;
    const char *summary;
    int (*run)(sv_cli *cli, int argc, char **argv, sv_error **err);
} sv_verb;

int sv_cmd_qemu_argv(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_run(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_create(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_start(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_exec(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_pause(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_resume(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_save(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_stop(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_delete(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_status(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_list(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_console(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_qmp(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_threads(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_pids(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_hotplug(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_unplug(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_devices(sv_cli *cli, int argc, char **argv, sv_error **err);
int sv_cmd_resize(sv_cli *cli, int argc, char **argv, sv_error **err);

/* Prints "sandvm: <verb>: <msg>" and a hint for a usage problem; returns SV_EXIT_USAGE. */
int sv_cli_usage_error(const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For getopt_long() run with opterr = 0 and an optstring starting with ":"
 * (after any '+'): reports the unknown option or the option missing its value
 * that getopt_long() just returned `c` ('?' or ':') for. Returns SV_EXIT_USAGE. */
int sv_cli_bad_option(const char *verb, char **argv, int c);

/* A whole number of seconds from 0 (when `allow_zero`) or 1 to 86400 in `s`;
 * on success stores it in *out and returns 0, else reports a usage error
 * naming `flag` and returns SV_EXIT_USAGE. */
int sv_cli_parse_seconds(const char *verb, const char *flag, const char *s, bool allow_zero,
                         long *out);

/* A number from 1 to `max`, as sv_cli_parse_seconds(). */
int sv_cli_parse_uint(const char *verb, const char *flag, const char *s, long max, long *out);

/* The state root a lifecycle verb uses: its --root, else the global --root,
 * else $SANDVM_ROOT, else NULL (the library's default, /run/sandvm). A
 * relative path is made absolute against the current directory. *out is
 * newly allocated (or NULL). */
int sv_cli_root(const sv_cli *cli, const char *verb_root, char **out, sv_error **err);

/* `path` made absolute against the current directory (not resolved: symlinks
 * and ".." stay as given); newly allocated. */
int sv_cli_absolute(const char *path, char **out, sv_error **err);

/* ---- VM flags, shared by `run` and `create` ---------------------------------- */

enum {
    SV_CLI_OPT_KERNEL = 0x100,
    SV_CLI_OPT_INITRD,
    SV_CLI_OPT_APPEND,
    SV_CLI_OPT_ACCEL,
    SV_CLI_OPT_SHARED_DIR,
    SV_CLI_OPT_SHARED_FS,
    SV_CLI_OPT_MAX_VCPUS,
    SV_CLI_OPT_MAX_MEMORY,
    SV_CLI_OPT__VERB = 0x200, /* a verb's own long-only options start here */
};

/* The `struct option` entries of the VM flags that `run` has. */
// clang-format off
#define SV_CLI_VM_OPTIONS                                           \
    {"arch", required_argument, NULL, 'a'},                         \
    {"vcpus", required_argument, NULL, 'c'},                        \
    {"memory", required_argument, NULL, 'm'},                       \
    {"kernel", required_argument, NULL, SV_CLI_OPT_KERNEL},         \
    {"initrd", required_argument, NULL, SV_CLI_OPT_INITRD},         \
    {"append", required_argument, NULL, SV_CLI_OPT_APPEND},         \
    {"accel", required_argument, NULL, SV_CLI_OPT_ACCEL}
/* ... and the flags only `create` adds: the shared directory, the
 * hot-plug ceilings of `sandvm resize`. */
#define SV_CLI_VM_SHARE_OPTIONS                                     \
    {"shared-dir", required_argument, NULL, SV_CLI_OPT_SHARED_DIR}, \
    {"shared-fs", required_argument, NULL, SV_CLI_OPT_SHARED_FS},   \
    {"max-vcpus", required_argument, NULL, SV_CLI_OPT_MAX_VCPUS},   \
    {"max-memory", required_argument, NULL, SV_CLI_OPT_MAX_MEMORY}
// clang-format on
#define SV_CLI_VM_SHORT "a:c:m:"

/* The VM flags as given; NULL / 0: not given. */
typedef struct sv_cli_vm_flags {
    const char *arch, *kernel, *initrd, *append, *accel, *shared_dir, *shared_fs;
    long vcpus, memory;
    long max_vcpus, max_memory; /* create only */
} sv_cli_vm_flags;

/* Stores VM flag `c` (a getopt_long() result) with its value `arg`. Returns 1
 * when `c` is a VM flag, 0 when it is not, SV_EXIT_USAGE (after reporting)
 * for a bad value. */
int sv_cli_vm_flag(sv_cli_vm_flags *f, const char *verb, int c, const char *arg);

/* True when any VM flag was given. */
bool sv_cli_vm_flags_given(const sv_cli_vm_flags *f);

/* Builds the VM config as JSON text (docs/vm-config.md): the config file
 * `config_path` (validated first, so errors name the file and the key), or,
 * without one, the default guest of --arch (default: the host's arch); then
 * the flags on top of it (--append adds to kernel_params). Returns 0 with
 * *json_out newly allocated; SV_EXIT_USAGE after reporting a contradictory
 * or unknown --arch / --accel / --shared-fs; SV_EXIT_FAILURE with *err set. */
int sv_cli_vm_config_json(const char *verb, const char *config_path, const sv_cli_vm_flags *f,
                          char **json_out, sv_error **err);
