/* sandvm console: relay the terminal to a VM's serial console. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sandvm/vm.h"
#include "util/cleanup.h"
#include "util/error.h"

SV_DEFINE_CLEANUP(sv_vm, sv_vm_close)

enum { OPT_ROOT = SV_CLI_OPT__VERB, OPT_LINGER };

/* Ctrl-], as telnet and virsh console */
#define DETACH_BYTE 0x1d

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    int saved = errno;
    got_signal = sig;
    (void)!write(sig_pipe[1], "x", 1);
    errno = saved;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: sandvm console [OPTIONS] ID\n"
               "\n"
               "Attach to the serial console of the running VM ID: the guest's console\n"
               "output goes to stdout, stdin goes to the guest. On a terminal, the terminal\n"
               "is put in raw mode (restored on exit) and Ctrl-] detaches; the VM keeps\n"
               "running. When stdin is not a terminal (a pipe, a file), its bytes are sent\n"
               "as they are, and after its end the output is relayed until the console has\n"
               "been quiet for --linger seconds. The console ends too when the VM stops.\n"
               "\n"
               "Options:\n"
               "      --linger SEC     with stdin not a terminal: after its end, wait for\n"
               "                       SEC quiet seconds before leaving (default 1)\n"
               "      --root DIR       state root (default: $SANDVM_ROOT, else /run/sandvm)\n"
               "  -h, --help           show this help\n"
               "\n"
               "Examples:\n"
               "  sandvm console web1\n"
               "  printf 'cat /proc/uptime\\n' | sandvm console --linger 3 web1\n"
               "\n"
               "Exit status: 0 detached or the console closed, 1 the VM's console could\n"
               "not be reached, 2 bad command line, 128+N when ended by signal N.\n");
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

typedef struct tty_state {
    bool raw;
    struct termios saved;
} tty_state;

static void tty_restore(tty_state *t)
{
    if (t->raw)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
}

int sv_cmd_console(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    static const struct option opts[] = {{"linger", required_argument, NULL, OPT_LINGER},
                                         {"root", required_argument, NULL, OPT_ROOT},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *root_opt = NULL;
    long linger = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_LINGER:
            if (sv_cli_parse_seconds("console", "--linger", optarg, true, &linger))
                return SV_EXIT_USAGE;
            break;
        case OPT_ROOT:
            root_opt = optarg;
            break;
        case 'h':
            usage(stdout);
            return SV_EXIT_OK;
        default:
            return sv_cli_bad_option("console", argv, c);
        }
    }
    if (optind >= argc)
        return sv_cli_usage_error("console", "missing ID (usage: sandvm console [OPTIONS] ID)");
    if (argc - optind > 1)
        return sv_cli_usage_error("console", "unexpected argument '%s'", argv[optind + 1]);
    const char *id = argv[optind];

    _cleanup_free_ char *root = NULL;
    if (sv_cli_root(cli, root_opt, &root, err) < 0)
        return SV_EXIT_FAILURE;
    _cleanup_(sv_vm_closep) sv_vm *vm = NULL;
    if (sv_vm_open(root, id, &vm, err) < 0)
        return SV_EXIT_FAILURE;
    _cleanup_close_ int fd = -1;
    if (sv_vm_console_connect(vm, &fd, err) < 0)
        return SV_EXIT_FAILURE;

    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return sv_error_errno(err, errno, "pipe"), SV_EXIT_FAILURE;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    bool tty = isatty(STDIN_FILENO);
    _cleanup_(tty_restore) tty_state ts = {0};
    if (tty && tcgetattr(STDIN_FILENO, &ts.saved) == 0) {
        struct termios raw = ts.saved;
        cfmakeraw(&raw);
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
            ts.raw = true;
        fprintf(stderr, "Connected to the console of vm %s; Ctrl-] detaches.\r\n", id);
    }

    bool in_open = true;
    int result = SV_EXIT_OK;
    char buf[16384];
    for (;;) {
        struct pollfd p[3] = {{.fd = fd, .events = POLLIN},
                              {.fd = sig_pipe[0], .events = POLLIN},
                              {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN}};
        int r = poll(p, 3, in_open ? -1 : (int)linger * 1000);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            sv_error_errno(err, errno, "vm %s: console: poll", id);
            result = SV_EXIT_FAILURE;
            break;
        }
        if (r == 0)
            break; /* input over and the console quiet for --linger */
        if (p[1].revents) {
            result = 128 + got_signal;
            break;
        }
        if (p[0].revents) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                if (tty)
                    fprintf(stderr, "\r\nsandvm: vm %s: the console closed\r\n", id);
                break;
            }
            if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
                break; /* nobody reads our output any more */
        }
        if (in_open && p[2].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                in_open = false;
                if (tty)
                    break;
                continue;
            }
            size_t len = (size_t)n;
            const char *detach = tty ? memchr(buf, DETACH_BYTE, len) : NULL;
            if (detach)
                len = (size_t)(detach - buf);
            int w = len ? write_all(fd, buf, len) : 0;
            if (w < 0) {
                sv_error_errno(err, -w, "vm %s: writing to the console", id);
                result = SV_EXIT_FAILURE;
                break;
            }
            if (detach) {
                fprintf(stderr, "\r\n");
                break;
            }
        }
    }
    close(sig_pipe[0]), close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
    return result;
}
