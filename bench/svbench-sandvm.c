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
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    fputs("usage: svbench-sandvm api-qmp ROOT ID N | client-qmp SOCK N | api-start ROOT ID |\n"
          "       api-exec ROOT ID\n",
          stderr);
    return 2;
}
