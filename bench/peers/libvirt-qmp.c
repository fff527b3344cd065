/*
 * libvirt-qmp: the libvirt peer of the QMP round-trip figure of bench/run:
 * one connection to libvirtd, then N x virDomainQemuMonitorCommand(query-status)
 * (the in-process API a libvirt client program uses). Prints one line
 * "ns=<t1> <t2> ..." (CLOCK_MONOTONIC nanoseconds per call).
 *
 *   libvirt-qmp URI DOMAIN N
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int fail(const char *what)
{
    virErrorPtr e = virGetLastError();
    fprintf(stderr, "libvirt-qmp: %s: %s\n", what, e && e->message ? e->message : "failed");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fputs("usage: libvirt-qmp URI DOMAIN N\n", stderr);
        return 2;
    }
    long n = strtol(argv[3], NULL, 10);
    if (n <= 0 || n > 10000000) {
        fputs("libvirt-qmp: bad count\n", stderr);
        return 2;
    }
    virConnectPtr conn = virConnectOpen(argv[1]);
    if (!conn)
        return fail("connecting");
    virDomainPtr dom = virDomainLookupByName(conn, argv[2]);
    if (!dom) {
        virConnectClose(conn);
        return fail("looking up the domain");
    }
    int64_t *t = calloc((size_t)n, sizeof(*t));
    if (!t)
        return fail("out of memory");
    int rc = 0;
    for (long i = 0; i < n; i++) {
        char *result = NULL;
        int64_t t0 = now_ns();
        if (virDomainQemuMonitorCommand(dom, "{\"execute\":\"query-status\"}", &result, 0) < 0) {
            rc = fail("query-status");
            break;
        }
        t[i] = now_ns() - t0;
        free(result);
    }
    if (rc == 0) {
        fputs("ns=", stdout);
        for (long i = 0; i < n; i++)
            printf(i ? " %lld" : "%lld", (long long)t[i]);
        putchar('\n');
    }
    free(t);
    virDomainFree(dom);
    virConnectClose(conn);
    return rc;
}
