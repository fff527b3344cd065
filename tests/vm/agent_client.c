/*
 * A small client for tests/vm/agent_test.sh:
 *
 *   agent_client exec SOCKET [-t TIMEOUT_MS] [-i] -- COMMAND [ARG...]
 *       runs the command through the exec channel (sv_agent_exec): stdout and
 *       stderr to ours, stdin from ours with -i (else empty); exits with the
 *       command's status, or prints "agent_client: <error>" and exits 255
 *   agent_client bench SOCKET N
 *       N execs of `true`; prints "min <ms> mean <ms> max <ms>"
 *   agent_client powerdown QMP-SOCKET
 *       QMP system_powerdown
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "qemu/qmp.h"
#include "qemu/qmp_cmds.h"
#include "util/sock.h"

static int usage(void)
{
    fprintf(stderr, "usage: agent_client exec SOCKET [-t MS] [-i] -- COMMAND [ARG...]\n"
                    "       agent_client bench SOCKET N\n"
                    "       agent_client powerdown QMP-SOCKET\n");
    return 2;
}

static int fail(sv_error *e)
{
    fprintf(stderr, "agent_client: %s\n", sv_error_message(e));
    sv_error_free(e);
    return 255;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const char *verb = argv[1], *sock = argv[2];
    sv_error *e = NULL;
    if (!strcmp(verb, "exec")) {
        sv_exec_opts o = {.stdin_fd = -1, .stdout_fd = 1, .stderr_fd = 2, .cancel_fd = -1};
        int i = 3;
        for (; i < argc && strcmp(argv[i], "--"); i++) {
            if (!strcmp(argv[i], "-i"))
                o.stdin_fd = 0;
            else if (!strcmp(argv[i], "-t") && i + 1 < argc)
                o.timeout_ms = atoi(argv[++i]);
            else
                return usage();
        }
        if (i + 1 >= argc)
            return usage();
        o.argv = (const char *const *)argv + i + 1;
        int st = -1;
        if (sv_agent_exec(sock, &o, &st, &e) < 0)
            return fail(e);
        return st;
    }
    if (!strcmp(verb, "bench") && argc == 4) {
        int n = atoi(argv[3]);
        const char *cmd[] = {"true", NULL};
        sv_exec_opts o = {
            .argv = cmd, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .cancel_fd = -1};
        int64_t min = INT64_MAX, max = 0, sum = 0;
        for (int k = 0; k < n; k++) {
            int st = -1;
            int64_t t0 = sv_now_ms();
            if (sv_agent_exec(sock, &o, &st, &e) < 0)
                return fail(e);
            int64_t t = sv_now_ms() - t0;
            if (st != 0) {
                fprintf(stderr, "agent_client: true exited %d\n", st);
                return 1;
            }
            min = t < min ? t : min;
            max = t > max ? t : max;
            sum += t;
        }
        printf("min %lld mean %lld max %lld\n", (long long)min, (long long)(n ? sum / n : 0),
               (long long)max);
        return 0;
    }
    if (!strcmp(verb, "powerdown") && argc == 3) {
        int64_t deadline = sv_deadline_ms(10000);
        int fd = sv_unix_connect(sock, deadline, &e);
        if (fd < 0)
            return fail(e);
        sv_qmp *q = sv_qmp_new(fd);
        if (!q) {
            fprintf(stderr, "agent_client: out of memory\n");
            return 255;
        }
        int r = sv_qmp_handshake(q, deadline, &e);
        if (r == 0)
            r = sv_qmp_system_powerdown(q, deadline, &e);
        sv_qmp_free(q);
        return r < 0 ? fail(e) : 0;
    }
    return usage();
}
