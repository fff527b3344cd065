/*
 * svbench-sandvm: sandvm's side of the in-process figures of bench/run,
 * linked against libsandvm (its internal static library, to reach the QMP
 * client as well as the public API). Output as svbench's: one line of
 * "key=value" words, CLOCK_MONOTONIC nanoseconds.
 *
 *   svbench-sandvm api-qmp ROOT ID N
 *       sv_vm_open() once, then N x sv_vm_qmp(query-status): the public API,
 *       which takes the VM's lock and talks to QEMU on every call.
 *       Prints: ns=<t1> <t2> ... (per call)
 *   svbench-sandvm client-qmp SOCK N
 *       sandvm's QMP client on one connection to SOCK (handshake once), then
 *       N x query-status. Prints: ns=<t1> <t2> ...
 *   svbench-sandvm api-start ROOT ID
 *       sv_vm_start(paused) of a created VM. Prints: ns=<call>
 *   svbench-sandvm api-exec ROOT ID
 *       sv_vm_exec("true") in a running VM. Prints: ns=<call> status=<exit status>
 *   svbench-sandvm client-cpu N
 *       The CPU the client itself spends per call: a fake QMP peer in a second
 *       thread answers every command at once (QEMU's query-status reply, the
 *       command's id echoed), and N calls are made twice on one connection each:
 *       with sandvm's client (sv_qmp_execute) and with the plain C client's loop
 *       (a fixed command line, the reply found with strstr). Prints
 *       sandvm_cpu_ns=<per call> plain_cpu_ns=<per call> (CPU time of the
 *       calling thread, CLOCK_THREAD_CPUTIME_ID)
 *   svbench-sandvm run-argv CONFIG.json | life-argv CONFIG.json
 *       The QEMU argv sandvm builds for the VM config in CONFIG.json on this
 *       host: as `sandvm run` does (console on fd 3), or as `sandvm start` does
 *       for a lifecycle VM (console 3, QMP 4, agent port 5, a pid file), as a
 *       JSON array (bench/investigate.py boots variants of it).
 */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qemu/arch/arch.h"
#include "qemu/qemu_argv.h"
#include "qemu/qmp.h"
#include "sandvm/vm.h"
#include "util/sock.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int fail(sv_error *err, const char *what)
{
    fprintf(stderr, "svbench-sandvm: %s: %s\n", what, err ? sv_error_message(err) : "failed");
    sv_error_free(err);
    return 1;
}

static void print_ns(const int64_t *t, long n)
{
    fputs("ns=", stdout);
    for (long i = 0; i < n; i++)
        printf(i ? " %" PRId64 : "%" PRId64, t[i]);
    putchar('\n');
}

static long parse_count(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v <= 0 || v > 10000000) {
        fprintf(stderr, "svbench-sandvm: bad count %s\n", s);
        exit(2);
    }
    return v;
}

static int api_qmp(const char *root, const char *id, long n)
{
    sv_error *err = NULL;
    sv_vm *vm = NULL;
    if (sv_vm_open(root, id, &vm, &err) < 0)
        return fail(err, "opening the vm");
    int64_t *t = calloc((size_t)n, sizeof(*t));
    if (!t)
        return fail(NULL, "out of memory");
    for (long i = 0; i < n; i++) {
        char *reply = NULL;
        int64_t t0 = now_ns();
        if (sv_vm_qmp(vm, "{\"execute\":\"query-status\"}", &reply, &err) < 0) {
            free(t);
            sv_vm_close(vm);
            return fail(err, "sv_vm_qmp");
        }
        t[i] = now_ns() - t0;
        free(reply);
    }
    sv_vm_close(vm);
    print_ns(t, n);
    free(t);
    return 0;
}

static int client_qmp(const char *sock, long n)
{
    sv_error *err = NULL;
    int fd = sv_unix_connect(sock, sv_deadline_ms(10000), &err);
    if (fd < 0)
        return fail(err, "connecting");
    sv_qmp *q = sv_qmp_new(fd);
    if (!q)
        return fail(NULL, "out of memory");
    if (sv_qmp_handshake(q, SV_QMP_DEADLINE_DEFAULT, &err) < 0) {
        sv_qmp_free(q);
        return fail(err, "handshake");
    }
    int64_t *t = calloc((size_t)n, sizeof(*t));
    if (!t) {
        sv_qmp_free(q);
        return fail(NULL, "out of memory");
    }
    for (long i = 0; i < n; i++) {
        json_object *ret = NULL;
        int64_t t0 = now_ns();
        if (sv_qmp_execute(q, "query-status", NULL, SV_QMP_DEADLINE_DEFAULT, &ret, &err) < 0) {
            free(t);
            sv_qmp_free(q);
            return fail(err, "query-status");
        }
        t[i] = now_ns() - t0;
        json_object_put(ret);
    }
    sv_qmp_free(q);
    print_ns(t, n);
    free(t);
    return 0;
}

/* ---- client-cpu: a fake QMP peer that answers at once ---- */

static void *fake_peer(void *arg)
{
    int fd = *(int *)arg;
    static const char greeting[] = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, "
                                   "\"minor\": 2, \"major\": 7}, \"package\": \"\"}, "
                                   "\"capabilities\": [\"oob\"]}}\r\n";
    if (write(fd, greeting, sizeof(greeting) - 1) < 0)
        return NULL;
    char buf[4096], reply[256];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n <= 0)
            return NULL;
        len += (size_t)n;
        char *nl;
        while ((nl = memchr(buf, '\n', len))) {
            *nl = '\0';
            const char *id = strstr(buf, "\"id\":");
            long idv = id ? strtol(id + 5, NULL, 10) : -1;
            int rl = idv >= 0 ? snprintf(reply, sizeof(reply),
                                         "{\"return\": {\"status\": \"prelaunch\", "
                                         "\"singlestep\": false, \"running\": false}, "
                                         "\"id\": %ld}\r\n",
                                         idv)
                              : snprintf(reply, sizeof(reply),
                                         "{\"return\": {\"status\": \"prelaunch\", "
                                         "\"singlestep\": false, \"running\": false}}\r\n");
            if (write(fd, reply, (size_t)rl) < 0)
                return NULL;
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, buf + used, len - used);
            len -= used;
        }
    }
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int client_cpu(long n)
{
    int sp[2][2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[i]) < 0 ||
            pthread_create(&th[i], NULL, fake_peer, &sp[i][1]) != 0)
            return fail(NULL, "socketpair/pthread_create");
    }
    /* sandvm's client */
    sv_error *err = NULL;
    sv_qmp *q = sv_qmp_new(sp[0][0]);
    if (!q || sv_qmp_handshake(q, SV_QMP_DEADLINE_DEFAULT, &err) < 0)
        return fail(err, "handshake");
    int64_t c0 = thread_cpu_ns();
    for (long i = 0; i < n; i++) {
        json_object *ret = NULL;
        if (sv_qmp_execute(q, "query-status", NULL, SV_QMP_DEADLINE_DEFAULT, &ret, &err) < 0)
            return fail(err, "query-status");
        json_object_put(ret);
    }
    int64_t sandvm = (thread_cpu_ns() - c0) / n;
    sv_qmp_free(q);
    /* the plain client's loop (bench/svbench.c) */
    int fd = sp[1][0];
    char buf[65536];
    size_t len = 0;
    static const char cmd[] = "{\"execute\":\"query-status\"}\n";
    int64_t p0 = 0;
    for (long i = -2; i < n; i++) { /* the greeting and qmp_capabilities first, untimed */
        if (i == 0)
            p0 = thread_cpu_ns();
        if (i != -2 && send(fd, cmd, sizeof(cmd) - 1, MSG_NOSIGNAL) < 0)
            return fail(NULL, "send");
        for (;;) {
            char *nl = memchr(buf, '\n', len);
            if (nl) {
                *nl = '\0';
                bool ok = strstr(buf, "\"return\"") || strstr(buf, "\"QMP\"");
                size_t used = (size_t)(nl - buf) + 1;
                memmove(buf, buf + used, len - used);
                len -= used;
                if (!ok)
                    return fail(NULL, "unexpected reply");
                break;
            }
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 30000) <= 0)
                return fail(NULL, "poll");
            ssize_t got = read(fd, buf + len, sizeof(buf) - len);
            if (got <= 0)
                return fail(NULL, "read");
            len += (size_t)got;
        }
    }
    int64_t plain = (thread_cpu_ns() - p0) / n;
    close(fd);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    close(sp[0][1]);
    close(sp[1][1]);
    printf("sandvm_cpu_ns=%" PRId64 " plain_cpu_ns=%" PRId64 "\n", sandvm, plain);
    return 0;
}

static int api_start(const char *root, const char *id)
{
    sv_error *err = NULL;
    sv_vm *vm = NULL;
    if (sv_vm_open(root, id, &vm, &err) < 0)
        return fail(err, "opening the vm");
    sv_vm_start_opts o = {.paused = true};
    int64_t t0 = now_ns();
    int r = sv_vm_start(vm, &o, &err);
    int64_t t1 = now_ns();
    sv_vm_close(vm);
    if (r < 0)
        return fail(err, "sv_vm_start");
    printf("ns=%" PRId64 "\n", t1 - t0);
    return 0;
}

static int api_exec(const char *root, const char *id)
{
    sv_error *err = NULL;
    sv_vm *vm = NULL;
    if (sv_vm_open(root, id, &vm, &err) < 0)
        return fail(err, "opening the vm");
    const char *const argv[] = {"true", NULL};
    sv_exec_opts o = {.argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1, .cancel_fd = -1};
    int status = -1;
    int64_t t0 = now_ns();
    int r = sv_vm_exec(vm, &o, &status, &err);
    int64_t t1 = now_ns();
    sv_vm_close(vm);
    if (r < 0)
        return fail(err, "sv_vm_exec");
    printf("ns=%" PRId64 " status=%d\n", t1 - t0, status);
    return 0;
}

static int print_argv(const char *config, bool lifecycle)
{
    sv_error *err = NULL;
    sv_vm_config *vm = NULL;
    if (sv_vm_config_load(config, &vm, &err) < 0)
        return fail(err, "loading the config");
    sv_host_facts host = {0};
    if (sv_host_facts_probe(&host, NULL, &err) < 0) {
        sv_vm_config_free(vm);
        return fail(err, "probing the host");
    }
    sv_vm_launch run = {.console_fd = 3, .qmp_fd = -1};
    sv_vm_launch life = {.console_fd = 3, .console_listening = true, .qmp_fd = 4, .agent_fd = 5,
                         .vsock_fd = -1, .pid_file = "/nonexistent/qemu.pid"};
    sv_qemu_config *cfg = NULL;
    sv_argv *a = NULL;
    int r = sv_qemu_arch_build(vm, &host, lifecycle ? &life : &run, &cfg, &err);
    if (r == 0)
        r = sv_qemu_build_argv(cfg, &a, &err);
    sv_host_facts_free(&host);
    sv_vm_config_free(vm);
    sv_qemu_config_free(cfg);
    if (r < 0)
        return fail(err, "building the argv");
    json_object *arr = json_object_new_array();
    for (size_t i = 0; arr && i < a->n; i++)
        json_object_array_add(arr, json_object_new_string(a->v[i]));
    puts(arr ? json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN) : "null");
    json_object_put(arr);
    sv_argv_free(a);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && !strcmp(argv[1], "api-qmp"))
        return api_qmp(argv[2], argv[3], parse_count(argv[4]));
    if (argc == 4 && !strcmp(argv[1], "client-qmp"))
        return client_qmp(argv[2], parse_count(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "api-start"))
        return api_start(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "api-exec"))
        return api_exec(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "client-cpu"))
        return client_cpu(parse_count(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "run-argv"))
        return print_argv(argv[2], false);
    if (argc == 3 && !strcmp(argv[1], "life-argv"))
        return print_argv(argv[2], true);
    fputs("usage: svbench-sandvm api-qmp ROOT ID N | client-qmp SOCK N | api-start ROOT ID |\n"
          "       api-exec ROOT ID | client-cpu N | run-argv CONFIG.json | life-argv CONFIG.json\n",
          stderr);
    return 2;
}
