/* The VM lifecycle verbs: create, start, pause, resume, save, stop, delete,
 * status, list, qmp, threads, pids. Each opens the VM under the state root,
 * makes one library call and prints its result; `exec` and `console` have
 * files of their own. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "sandvm/vm.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

SV_DEFINE_CLEANUP(sv_vm, sv_vm_close)
SV_DEFINE_CLEANUP(sv_vm_info, sv_vm_info_free)

/* ---- the options the simple verbs share ------------------------------------ */

enum {
    F_JSON = 1 << 0,
    F_PAUSED = 1 << 1,
    F_TIMEOUT = 1 << 2,
    F_GRACE = 1 << 3,
    F_KEEP = 1 << 4,
    F_FORCE = 1 << 5,
};

enum {
    OPT_ROOT = SV_CLI_OPT__VERB,
    OPT_JSON,
    OPT_PAUSED,
    OPT_GRACE,
    OPT_KEEP,
    OPT_CONFIG,
    OPT_FROM,
    OPT_TEMPLATE
};

typedef struct verb_spec {
    const char *name;
    const char *operands;    /* for the usage line: "ID", "ID DIR" */
    int n_operands;          /* exactly this many */
    unsigned flags;          /* F_*: the options it takes besides --root and --help */
    const char *description; /* what it does */
    const char *options;     /* help lines of its F_* options */
    const char *examples;
} verb_spec;

typedef struct verb_args {
    char *root; /* owned; NULL: the library's default */
    bool json, paused, keep, force;
    long timeout; /* seconds; 0: default */
    long grace;   /* seconds */
    bool grace_set;
    char **operands;
} verb_args;

static void verb_args_clear(verb_args *a)
{
    free(a->root);
}

static const char root_help[] =
    "      --root DIR       state root (default: $SANDVM_ROOT, else /run/sandvm)\n"
    "  -h, --help           show this help\n";

static void verb_usage(const verb_spec *v, FILE *f)
{
    fprintf(f, "Usage: sandvm %s [OPTIONS]%s%s\n\n%s\nOptions:\n%s%s\nExamples:\n%s\n", v->name,
            *v->operands ? " " : "", v->operands, v->description, v->options ? v->options : "",
            root_help, v->examples);
    fprintf(f, "Exit status: 0 success, 1 the operation failed, 2 bad command line.\n");
}

/* Parses a simple verb's command line. Returns -1 to go on, else the exit
 * code (after printing help or a usage error). */
static int verb_parse(const sv_cli *cli, const verb_spec *v, int argc, char **argv, verb_args *a,
                      sv_error **err)
{
    static const struct {
        unsigned flag;
        struct option opt;
    } all[] = {
        {0, {"root", required_argument, NULL, OPT_ROOT}},
        {0, {"help", no_argument, NULL, 'h'}},
        {F_JSON, {"json", no_argument, NULL, OPT_JSON}},
        {F_PAUSED, {"paused", no_argument, NULL, OPT_PAUSED}},
        {F_TIMEOUT, {"timeout", required_argument, NULL, 't'}},
        {F_GRACE, {"grace", required_argument, NULL, OPT_GRACE}},
        {F_KEEP, {"keep", no_argument, NULL, OPT_KEEP}},
        {F_FORCE, {"force", no_argument, NULL, 'f'}},
    };
    struct option opts[SV_ARRAY_SIZE(all) + 1];
    size_t n = 0;
    for (size_t i = 0; i < SV_ARRAY_SIZE(all); i++)
        if (!all[i].flag || (v->flags & all[i].flag))
            opts[n++] = all[i].opt;
    opts[n] = (struct option){0};
    char shorts[16] = ":h";
    if (v->flags & F_TIMEOUT)
        strcat(shorts, "t:");
    if (v->flags & F_FORCE)
        strcat(shorts, "f");

    const char *root = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        switch (c) {
        case OPT_ROOT:
            root = optarg;
            break;
        case 'h':
            verb_usage(v, stdout);
            return SV_EXIT_OK;
        case OPT_JSON:
            a->json = true;
            break;
        case OPT_PAUSED:
            a->paused = true;
            break;
        case 't':
            if (sv_cli_parse_seconds(v->name, "--timeout", optarg, false, &a->timeout))
                return SV_EXIT_USAGE;
            break;
        case OPT_GRACE:
            if (sv_cli_parse_seconds(v->name, "--grace", optarg, true, &a->grace))
                return SV_EXIT_USAGE;
            a->grace_set = true;
            break;
        case OPT_KEEP:
            a->keep = true;
            break;
        case 'f':
            a->force = true;
            break;
        default:
            return sv_cli_bad_option(v->name, argv, c);
        }
    }
    int have = argc - optind;
    if (have < v->n_operands)
        return sv_cli_usage_error(v->name, "missing %s (usage: sandvm %s [OPTIONS] %s)",
                                  have == 0 ? v->operands : strchr(v->operands, ' ') + 1, v->name,
                                  v->operands);
    if (have > v->n_operands)
        return sv_cli_usage_error(v->name, "unexpected argument '%s'",
                                  argv[optind + v->n_operands]);
    a->operands = argv + optind;
    if (sv_cli_root(cli, root, &a->root, err) < 0)
        return SV_EXIT_FAILURE;
    return -1;
}

/* ---- printing ---------------------------------------------------------------- */

static void format_time(int64_t t, char *buf, size_t size)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "-");
}

static json_object *json_str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *json_pid(int64_t pid)
{
    return pid > 0 ? json_object_new_int64(pid) : NULL;
}

/* The JSON object of `sandvm status --json` (and of each `list --json` entry). */
static json_object *info_json(const sv_vm_info *i)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "id", json_str_or_null(i->id));
    json_object_object_add(o, "state", json_object_new_string(sv_vm_run_state_name(i->state)));
    json_object_object_add(o, "crashed", json_object_new_boolean(i->crashed));
    json_object_object_add(o, "arch", json_str_or_null(i->arch));
    json_object_object_add(o, "hypervisor", json_str_or_null(i->hypervisor));
    json_object_object_add(o, "created", json_object_new_int64(i->created));
    json_object_object_add(o, "pid", json_pid(i->vmm_pid));
    json_object_object_add(o, "virtiofsd_pid", json_pid(i->virtiofsd_pid));
    json_object_object_add(o, "dir", json_str_or_null(i->dir));
    json_object_object_add(o, "from", json_str_or_null(i->from));
    json_object_object_add(o, "template_memory", json_object_new_boolean(i->template_memory));
    if (i->error)
        json_object_object_add(o, "error", json_object_new_string(i->error));
    return o;
}

static const char *state_text(const sv_vm_info *i)
{
    if (i->error)
        return "unknown";
    if (i->state == SV_VM_STOPPED && i->crashed)
        return "stopped (crashed)";
    return sv_vm_run_state_name(i->state);
}

/* Flushes stdout; a failed write (full disk, closed pipe) is a failure. */
static int finish_output(sv_error **err)
{
    if (fflush(stdout) != 0 || ferror(stdout))
        return sv_error_errno(err, errno ? errno : EIO, "writing to stdout"), SV_EXIT_FAILURE;
    return SV_EXIT_OK;
}

static int print_json(json_object *o, sv_error **err)
{
    if (!o)
        return sv_error_set(err, ENOMEM, "out of memory"), SV_EXIT_FAILURE;
    printf("%s\n", sv_json_to_string(o));
    return finish_output(err);
}

static void print_pid_line(const char *key, int64_t pid)
{
    if (pid > 0)
        printf("%s: %" PRId64 "\n", key, pid);
    else
        printf("%s: -\n", key);
}

static int print_status(const sv_vm_info *i, bool json, sv_error **err)
{
    if (json) {
        _cleanup_json_ json_object *o = info_json(i);
        return print_json(o, err);
    }
    char created[64];
    format_time(i->created, created, sizeof(created));
    printf("id: %s\n", i->id ? i->id : "-");
    printf("state: %s\n", state_text(i));
    printf("arch: %s\n", i->arch ? i->arch : "-");
    printf("hypervisor: %s\n", i->hypervisor ? i->hypervisor : "-");
    printf("created: %s\n", created);
    print_pid_line("pid", i->vmm_pid);
    print_pid_line("virtiofsd_pid", i->virtiofsd_pid);
    printf("dir: %s\n", i->dir ? i->dir : "-");
    printf("from: %s\n", i->from ? i->from : "-");
    printf("template_memory: %s\n", i->template_memory ? "true" : "false");
    if (i->error)
        printf("error: %s\n", i->error);
    return finish_output(err);
}

/* ---- create -------------------------------------------------------------------- */

static void create_usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm create [OPTIONS] [--config FILE.json | --from DIR] ID\n"
            "\n"
            "Create the VM ID (1-64 letters, digits, '-', '_', '.'; not starting with\n"
            "'.'): check its configuration against this host and record it under the\n"
            "state root, without starting anything (see `sandvm start`). The VM is\n"
            "the default guest of --arch (Debian's kernel and a busybox initramfs with\n"
            "sandvm's exec agent, built and cached by guest/build-guest on first use),\n"
            "or the VM config in FILE.json (docs/vm-config.md) with the flags below on\n"
            "top, or a VM saved by `sandvm save` (--from), which starts from the saved\n"
            "state without booting. Prints ID.\n"
            "\n"
            "Options:\n"
            "      --config FILE    the VM config (JSON); the flags below override it\n"
            "      --from DIR       a directory written by `sandvm save`: its config and\n"
            "                       state (excludes --config and the VM flags)\n"
            "      --template       keep guest RAM in a shared file in the VM's directory:\n"
            "                       `sandvm save` copies that file instead of streaming\n"
            "                       RAM, and VMs created from the save map it privately\n"
            "                       (Kata's VM templating)\n"
            "  -a, --arch ARCH      x86_64 (default: the host's), aarch64, ppc64le, s390x\n"
            "  -c, --vcpus N        virtual CPUs\n"
            "  -m, --memory MIB     guest memory in MiB\n"
            "      --kernel PATH    guest kernel (default: the default guest's)\n"
            "      --initrd PATH    initramfs (default: the default guest's)\n"
            "      --append PARAMS  extra kernel parameters\n"
            "      --accel MODE     auto (default), kvm or tcg\n"
            "      --shared-dir DIR share this host directory with the guest (mount tag\n"
            "                       \"sandvm\")\n"
            "      --shared-fs FS   how: virtio-fs (default; runs virtiofsd), virtio-9p;\n"
            "                       the default guest mounts it at /mnt/sandvm\n"
            "      --max-vcpus N    vCPU hot-plug ceiling for `sandvm resize` (max_vcpus)\n"
            "      --max-memory MIB memory hot-plug ceiling for `sandvm resize`\n"
            "                       (max_memory; x86_64, ppc64le)\n"
            "      --json           print the new VM's status as JSON (as status --json)\n"
            "%s"
            "\n"
            "Examples:\n"
            "  sandvm create web1\n"
            "  sandvm create --arch s390x --vcpus 2 --memory 1024 web2\n"
            "  sandvm create --config vm.json --append debug web3\n"
            "  sandvm create --from /var/lib/tmpl/web web4\n"
            "\n"
            "Exit status: 0 success, 1 the operation failed, 2 bad command line.\n",
            root_help);
}

int sv_cmd_create(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    static const struct option opts[] = {SV_CLI_VM_OPTIONS,
                                         SV_CLI_VM_SHARE_OPTIONS,
                                         {"config", required_argument, NULL, OPT_CONFIG},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"template", no_argument, NULL, OPT_TEMPLATE},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"root", required_argument, NULL, OPT_ROOT},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    sv_cli_vm_flags flags = {0};
    const char *config = NULL, *from = NULL, *root_opt = NULL;
    bool template_memory = false, json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":" SV_CLI_VM_SHORT "h", opts, NULL)) != -1) {
        int r = sv_cli_vm_flag(&flags, "create", c, optarg);
        if (r == SV_EXIT_USAGE)
            return r;
        if (r)
            continue;
        switch (c) {
        case OPT_CONFIG:
            config = optarg;
            break;
        case OPT_FROM:
            from = optarg;
            break;
        case OPT_TEMPLATE:
            template_memory = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_ROOT:
            root_opt = optarg;
            break;
        case 'h':
            create_usage(stdout);
            return SV_EXIT_OK;
        default:
            return sv_cli_bad_option("create", argv, c);
        }
    }
    if (optind >= argc)
        return sv_cli_usage_error("create", "missing ID (usage: sandvm create [OPTIONS] ID)");
    if (argc - optind > 1)
        return sv_cli_usage_error("create", "unexpected argument '%s'", argv[optind + 1]);
    const char *id = argv[optind];
    if (from && (config || sv_cli_vm_flags_given(&flags)))
        return sv_cli_usage_error("create",
                                  "--from takes the saved VM's config: it excludes --config "
                                  "and the VM flags");

    _cleanup_free_ char *root = NULL, *from_abs = NULL, *config_json = NULL;
    if (sv_cli_root(cli, root_opt, &root, err) < 0)
        return SV_EXIT_FAILURE;
    if (from && sv_cli_absolute(from, &from_abs, err) < 0)
        return SV_EXIT_FAILURE;
    if (!from) {
        int r = sv_cli_vm_config_json("create", config, &flags, &config_json, err);
        if (r)
            return r;
    }
    sv_vm_create_opts co = {.root = root,
                            .config_json = config_json,
                            .config_len = config_json ? strlen(config_json) : 0,
                            .from = from_abs,
                            .template_memory = template_memory};
    _cleanup_(sv_vm_closep) sv_vm *vm = NULL;
    if (sv_vm_create(id, &co, &vm, err) < 0)
        return SV_EXIT_FAILURE;
    if (!json) {
        printf("%s\n", sv_vm_id(vm));
        return finish_output(err);
    }
    _cleanup_(sv_vm_info_freep) sv_vm_info *info = NULL;
    if (sv_vm_status(vm, &info, err) < 0)
        return SV_EXIT_FAILURE;
    return print_status(info, true, err);
}

/* ---- the simple verbs -------------------------------------------------------------- */

/* Parses the command line of `v` and opens the VM named by its first operand. */
static int open_vm(sv_cli *cli, const verb_spec *v, int argc, char **argv, verb_args *a, sv_vm **vm,
                   sv_error **err)
{
    int r = verb_parse(cli, v, argc, argv, a, err);
    if (r >= 0)
        return r;
    if (sv_vm_open(a->root, a->operands[0], vm, err) < 0)
        return SV_EXIT_FAILURE;
    return -1;
}

#define VERB_PROLOGUE(spec)                                                                        \
    _cleanup_(verb_args_clear) verb_args a = {0};                                                  \
    _cleanup_(sv_vm_closep) sv_vm *vm = NULL;                                                      \
    {                                                                                              \
        int r_ = open_vm(cli, &(spec), argc, argv, &a, &vm, err);                                  \
        if (r_ >= 0)                                                                               \
            return r_;                                                                             \
    }

static const verb_spec start_spec = {
    "start",
    "ID",
    1,
    F_PAUSED | F_TIMEOUT,
    "Start the created (or kept stopped) VM ID: QEMU (and virtiofsd, when the VM\n"
    "shares a directory with virtio-fs) run detached from sandvm, which returns\n"
    "as soon as QEMU answers on QMP; the guest may still be booting (exec waits\n"
    "for it). A VM created --from a saved VM is restored instead of booted. On\n"
    "failure nothing is left running and the VM is created again.\n",
    "      --paused         leave the vCPUs stopped; `sandvm resume` starts them\n"
    "  -t, --timeout SEC    give up when QEMU has not answered (or a restore not\n"
    "                       completed) after SEC seconds (default 30)\n",
    "  sandvm start web1\n"
    "  sandvm start --paused --timeout 60 web1\n",
};

int sv_cmd_start(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(start_spec);
    sv_vm_start_opts so = {.timeout_ms = (int)a.timeout * 1000, .paused = a.paused};
    return sv_vm_start(vm, &so, err) < 0 ? SV_EXIT_FAILURE : SV_EXIT_OK;
}

static const verb_spec pause_spec = {
    "pause",
    "ID",
    1,
    0,
    "Pause the vCPUs of VM ID (QMP stop). Pausing a paused VM does nothing.\n",
    NULL,
    "  sandvm pause web1\n",
};

int sv_cmd_pause(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(pause_spec);
    return sv_vm_pause(vm, err) < 0 ? SV_EXIT_FAILURE : SV_EXIT_OK;
}

static const verb_spec resume_spec = {
    "resume",
    "ID",
    1,
    0,
    "Resume the vCPUs of the paused VM ID (QMP cont). Resuming a running VM does\n"
    "nothing.\n",
    NULL,
    "  sandvm resume web1\n",
};

int sv_cmd_resume(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(resume_spec);
    return sv_vm_resume(vm, err) < 0 ? SV_EXIT_FAILURE : SV_EXIT_OK;
}

static const verb_spec save_spec = {
    "save",
    "ID DIR",
    2,
    0,
    "Save the running or paused VM ID to DIR (created, mode 0700; must not exist):\n"
    "its config and its migration stream. The VM is left paused; stop it or\n"
    "resume it. `sandvm create --from DIR` makes new VMs that start from the saved\n"
    "state without booting. With a VM created --template, guest RAM is not in\n"
    "the migration stream: its memory file is copied beside it.\n",
    NULL,
    "  sandvm save web1 /var/lib/tmpl/web && sandvm stop web1\n"
    "  sandvm create --from /var/lib/tmpl/web web2 && sandvm start web2\n",
};

int sv_cmd_save(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(save_spec);
    _cleanup_free_ char *dir = NULL;
    if (sv_cli_absolute(a.operands[1], &dir, err) < 0)
        return SV_EXIT_FAILURE;
    return sv_vm_save(vm, dir, err) < 0 ? SV_EXIT_FAILURE : SV_EXIT_OK;
}

static const verb_spec stop_spec = {
    "stop",
    "ID",
    1,
    F_GRACE | F_KEEP | F_FORCE,
    "Stop VM ID: ask the guest to power off (ACPI power button), wait up to the\n"
    "grace period, then QMP quit, then SIGKILL; wait until QEMU and virtiofsd are\n"
    "gone and remove the VM's directory. A VM that already died is cleaned up the\n"
    "same way.\n",
    "      --grace SEC      how long the guest gets to power off (default 10;\n"
    "                       0: no power-off request, quit at once)\n"
    "      --keep           keep the VM, stopped: `sandvm start` boots it again\n"
    "  -f, --force          no QMP at all: SIGKILL at once (for a hung or\n"
    "                       SIGSTOPped QEMU, where a plain stop times out)\n",
    "  sandvm stop web1\n"
    "  sandvm stop --grace 0 --keep web1\n"
    "  sandvm stop --force web1\n",
};

int sv_cmd_stop(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(stop_spec);
    sv_vm_stop_opts so = {.keep = a.keep, .force = a.force};
    if (a.grace_set)
        so.grace_ms = a.grace == 0 ? -1 : (int)a.grace * 1000;
    return sv_vm_stop(vm, &so, err) < 0 ? SV_EXIT_FAILURE : SV_EXIT_OK;
}

static const verb_spec delete_spec = {
    "delete",
    "ID",
    1,
    F_FORCE,
    "Delete VM ID, which must not be running (created, stopped or crashed):\n"
    "remove its directory and what is left of its processes' files.\n",
    "  -f, --force          kill it first if it is running or paused (as\n"
    "                       `sandvm stop --force`: SIGKILL, no power-off)\n",
    "  sandvm delete web1\n"
    "  sandvm delete --force web1\n",
};

int sv_cmd_delete(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(delete_spec);
    return sv_vm_delete(vm, a.force, err) < 0 ? SV_EXIT_FAILURE : SV_EXIT_OK;
}

static const verb_spec status_spec = {
    "status",
    "ID",
    1,
    F_JSON,
    "Show the state of VM ID: created, running, paused or stopped (\"stopped\n"
    "(crashed)\" when QEMU died without being stopped). A running or paused VM is\n"
    "asked over QMP, so this is QEMU's own view; an unresponsive QEMU is an error\n"
    "after the QMP deadline (10 s). One \"key: value\" line each: id, state,\n"
    "arch, hypervisor, created (UTC), pid, virtiofsd_pid, dir, from (the saved VM\n"
    "it was created from), template_memory (\"-\": none).\n",
    "      --json           one JSON object: id, state, crashed, arch, hypervisor,\n"
    "                       created (seconds since the epoch), pid, virtiofsd_pid\n"
    "                       (null: none), dir, from, template_memory\n",
    "  sandvm status web1\n"
    "  sandvm status --json web1\n",
};

int sv_cmd_status(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(status_spec);
    _cleanup_(sv_vm_info_freep) sv_vm_info *info = NULL;
    if (sv_vm_status(vm, &info, err) < 0)
        return SV_EXIT_FAILURE;
    int r = print_status(info, a.json, err);
    if (r == SV_EXIT_OK && info->error)
        return sv_error_set(err, EINVAL, "vm %s: %s", a.operands[0], info->error), SV_EXIT_FAILURE;
    return r;
}

static const verb_spec list_spec = {
    "list",
    "",
    0,
    F_JSON,
    "List the VMs under the state root, sorted by id, as a table: ID STATE ARCH\n"
    "PID CREATED. States are observed from the processes only (no QMP, no\n"
    "locks), so list never waits for a busy VM.\n",
    "      --json           a JSON array of objects as `sandvm status --json` prints\n",
    "  sandvm list\n"
    "  sandvm --root /tmp/vms list --json\n",
};

int sv_cmd_list(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    _cleanup_(verb_args_clear) verb_args a = {0};
    int r = verb_parse(cli, &list_spec, argc, argv, &a, err);
    if (r >= 0)
        return r;
    sv_vm_info *list = NULL;
    size_t n = 0;
    if (sv_vm_list(a.root, &list, &n, err) < 0)
        return SV_EXIT_FAILURE;
    if (a.json) {
        _cleanup_json_ json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++)
            json_object_array_add(arr, info_json(&list[i]));
        sv_vm_info_list_free(list, n);
        return print_json(arr, err);
    }
    int w_id = 2, w_state = 5, w_arch = 4;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(list[i].id ? list[i].id : "-");
        w_id = l > w_id ? l : w_id;
        l = (int)strlen(state_text(&list[i]));
        w_state = l > w_state ? l : w_state;
        l = (int)strlen(list[i].arch ? list[i].arch : "-");
        w_arch = l > w_arch ? l : w_arch;
    }
    printf("%-*s  %-*s  %-*s  %-8s  %s\n", w_id, "ID", w_state, "STATE", w_arch, "ARCH", "PID",
           "CREATED");
    for (size_t i = 0; i < n; i++) {
        const sv_vm_info *e = &list[i];
        char created[64], pid[32];
        format_time(e->created, created, sizeof(created));
        if (e->vmm_pid > 0)
            snprintf(pid, sizeof(pid), "%" PRId64, e->vmm_pid);
        else
            snprintf(pid, sizeof(pid), "-");
        printf("%-*s  %-*s  %-*s  %-8s  %s\n", w_id, e->id ? e->id : "-", w_state, state_text(e),
               w_arch, e->arch ? e->arch : "-", pid, created);
    }
    r = finish_output(err);
    for (size_t i = 0; i < n; i++)
        if (list[i].error)
            fprintf(stderr, "sandvm: vm %s: %s\n", list[i].id ? list[i].id : "?", list[i].error);
    sv_vm_info_list_free(list, n);
    return r;
}

static const verb_spec qmp_spec = {
    "qmp",
    "ID JSON",
    2,
    0,
    "Send one QMP command to VM ID's QEMU: a JSON object with \"execute\" and\n"
    "optional \"arguments\" (no \"id\"). Prints the reply's \"return\" value as one\n"
    "line of JSON. A QMP error reply fails (exit 1) with its class and\n"
    "description. The command goes to QEMU as is: it can change or stop the VM\n"
    "behind sandvm's back.\n",
    NULL,
    "  sandvm qmp web1 '{\"execute\":\"query-status\"}'\n"
    "  sandvm qmp web1 '{\"execute\":\"query-cpus-fast\"}'\n",
};

int sv_cmd_qmp(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(qmp_spec);
    _cleanup_free_ char *reply = NULL;
    if (sv_vm_qmp(vm, a.operands[1], &reply, err) < 0)
        return SV_EXIT_FAILURE;
    printf("%s\n", reply);
    return finish_output(err);
}

static int print_ids(const int64_t *ids, size_t n, bool json, sv_error **err)
{
    if (json) {
        _cleanup_json_ json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++)
            json_object_array_add(arr, json_object_new_int64(ids[i]));
        return print_json(arr, err);
    }
    for (size_t i = 0; i < n; i++)
        printf("%" PRId64 "\n", ids[i]);
    return finish_output(err);
}

static const verb_spec threads_spec = {
    "threads",
    "ID",
    1,
    F_JSON,
    "Print the host thread ids of VM ID's vCPUs, one per line, in vCPU order\n"
    "(QMP query-cpus-fast): for pinning or accounting.\n",
    "      --json           a JSON array of numbers\n",
    "  sandvm threads web1\n"
    "  for t in $(sandvm threads web1); do taskset -p -c 1 \"$t\"; done\n",
};

int sv_cmd_threads(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(threads_spec);
    _cleanup_free_ int64_t *ids = NULL;
    size_t n = 0;
    if (sv_vm_vcpu_threads(vm, &ids, &n, err) < 0)
        return SV_EXIT_FAILURE;
    return print_ids(ids, n, a.json, err);
}

static const verb_spec pids_spec = {
    "pids",
    "ID",
    1,
    F_JSON,
    "Print the pids of VM ID's processes, one per line: QEMU first, then\n"
    "virtiofsd if the VM has one.\n",
    "      --json           a JSON array of numbers\n",
    "  sandvm pids web1\n",
};

int sv_cmd_pids(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    VERB_PROLOGUE(pids_spec);
    _cleanup_free_ int64_t *ids = NULL;
    size_t n = 0;
    if (sv_vm_pids(vm, &ids, &n, err) < 0)
        return SV_EXIT_FAILURE;
    return print_ids(ids, n, a.json, err);
}
