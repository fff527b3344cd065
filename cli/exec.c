/* sandvm exec: run one command in a running VM through its exec agent and
 * exit with the command's status. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sandvm/vm.h"
#include "util/cleanup.h"
#include "util/error.h"

SV_DEFINE_CLEANUP(sv_vm, sv_vm_close)

enum { OPT_ROOT = SV_CLI_OPT__VERB };

static int cancel_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    int saved = errno;
    got_signal = sig;
    (void)!write(cancel_pipe[1], "x", 1);
    errno = saved;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm exec [OPTIONS] ID [--] COMMAND [ARG...]\n"
            "\n"
            "Run COMMAND in the running VM ID through the guest's exec agent (waiting\n"
            "for the agent if the guest is still booting) and exit with its status.\n"
            "COMMAND is looked up in the guest's PATH; it and its arguments reach the\n"
            "guest as data, no shell parses them. Its stdout and stderr are relayed to\n"
            "sandvm's; its stdin is empty unless -i. Ctrl-C (SIGINT, SIGTERM, SIGHUP)\n"
            "kills the command. Execs on one VM may run from many processes at once.\n"
            "Options go before ID.\n"
            "\n"
            "Options:\n"
            "  -e, --env NAME=VALUE add to the command's environment (repeatable)\n"
            "  -w, --cwd DIR        working directory in the guest (default /)\n"
            "  -i, --interactive    relay sandvm's stdin to the command\n"
            "  -t, --timeout SEC    give up when the guest agent has not answered within\n"
            "                       SEC seconds (default 120; covers the boot); the\n"
            "                       command itself has no time limit\n"
            "%s"
            "\n"
            "Examples:\n"
            "  sandvm exec web1 -- uname -a\n"
            "  sandvm exec --env LANG=C.UTF-8 --cwd /tmp web1 -- sh -c 'echo $LANG; pwd'\n"
            "  tar c src | sandvm exec -i web1 -- tar x -C /tmp\n"
            "\n"
            "Exit status: COMMAND's own status (128+N when it was killed by signal N);\n"
            "125 when sandvm could not run it (bad command line, no such VM, VM not\n"
            "running, the agent did not answer); 126 when the command cannot be\n"
            "executed; 127 when there is no such command; 128+N when sandvm itself\n"
            "got signal N (130 for Ctrl-C) and killed the command.\n",
            "      --root DIR       state root (default: $SANDVM_ROOT, else /run/sandvm)\n"
            "  -h, --help           show this help\n");
}

/* NAME must be a shell variable name: the guest refuses others. */
static bool env_ok(const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (const char *p = s; p < eq; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static int exec_usage_error(int r)
{
    return r == SV_EXIT_USAGE ? SV_EXIT_EXEC_FAILED : r;
}

int sv_cmd_exec(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    static const struct option opts[] = {{"env", required_argument, NULL, 'e'},
                                         {"cwd", required_argument, NULL, 'w'},
                                         {"interactive", no_argument, NULL, 'i'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"root", required_argument, NULL, OPT_ROOT},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    _cleanup_free_ const char **env = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_env = 0;
    const char *cwd = NULL, *root_opt = NULL;
    bool interactive = false;
    long timeout = 0;
    int c;
    if (!env)
        return sv_error_set(err, ENOMEM, "out of memory"), SV_EXIT_EXEC_FAILED;
    opterr = 0;
    /* '+': options end at ID, so the command's own options stay its own */
    while ((c = getopt_long(argc, argv, "+:e:w:it:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            if (!env_ok(optarg))
                return exec_usage_error(
                    sv_cli_usage_error("exec",
                                       "--env: expected NAME=VALUE with NAME of letters, "
                                       "digits and '_' (not starting with a digit), got '%s'",
                                       optarg));
            env[n_env++] = optarg;
            break;
        case 'w':
            cwd = optarg;
            break;
        case 'i':
            interactive = true;
            break;
        case 't':
            if (sv_cli_parse_seconds("exec", "--timeout", optarg, false, &timeout))
                return SV_EXIT_EXEC_FAILED;
            break;
        case OPT_ROOT:
            root_opt = optarg;
            break;
        case 'h':
            usage(stdout);
            return SV_EXIT_OK;
        default:
            return exec_usage_error(sv_cli_bad_option("exec", argv, c));
        }
    }
    if (optind >= argc)
        return exec_usage_error(sv_cli_usage_error(
            "exec", "missing ID (usage: sandvm exec [OPTIONS] ID -- COMMAND [ARG...])"));
    const char *id = argv[optind++];
    if (optind < argc && !strcmp(argv[optind], "--"))
        optind++;
    if (optind >= argc)
        return exec_usage_error(sv_cli_usage_error(
            "exec", "missing COMMAND (usage: sandvm exec [OPTIONS] ID -- COMMAND [ARG...])"));
    const char *const *command = (const char *const *)&argv[optind];

    _cleanup_free_ char *root = NULL;
    if (sv_cli_root(cli, root_opt, &root, err) < 0)
        return SV_EXIT_EXEC_FAILED;
    _cleanup_(sv_vm_closep) sv_vm *vm = NULL;
    if (sv_vm_open(root, id, &vm, err) < 0)
        return SV_EXIT_EXEC_FAILED;

    if (pipe2(cancel_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return sv_error_errno(err, errno, "pipe"), SV_EXIT_EXEC_FAILED;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* a closed stdout is an error to report, not a reason to die silently */
    signal(SIGPIPE, SIG_IGN);

    sv_exec_opts eo = {.argv = command,
                       .env = n_env ? env : NULL,
                       .cwd = cwd,
                       .stdin_fd = interactive ? STDIN_FILENO : -1,
                       .stdout_fd = STDOUT_FILENO,
                       .stderr_fd = STDERR_FILENO,
                       .timeout_ms = (int)timeout * 1000,
                       .cancel_fd = cancel_pipe[0]};
    int status = 0;
    int r = sv_vm_exec(vm, &eo, &status, err);
    close(cancel_pipe[0]), close(cancel_pipe[1]);
    cancel_pipe[0] = cancel_pipe[1] = -1;
    if (r == -ECANCELED && got_signal)
        return 128 + got_signal;
    if (r == -ENOENT)
        return SV_EXIT_EXEC_NOTFOUND;
    if (r == -EACCES || r == -ENOEXEC || r == -EPERM)
        return SV_EXIT_EXEC_CANNOT;
    if (r < 0)
        return SV_EXIT_EXEC_FAILED;
    return status;
}
