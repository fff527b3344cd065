/*
 * Checks a QMP trace (SANDVM_QMP_TRACE=FILE, src/qemu/qmp.c: one line per
 * command the library sent, with the binary of the QEMU it went to) against
 * the query-qmp-schema of each of those QEMU binaries: every command exists,
 * its arguments are members of the schema with the schema's types and enum
 * values, required ones present, nothing deprecated (sv_qmp_schema_check());
 * device_add's properties against device-list-properties of the driver.
 * Commands a caller gave as raw text (`sandvm qmp`) are counted, not checked
 * (tests send invalid ones on purpose), and so are commands to processes
 * that are not a qemu-system-* binary (the tests' fake QEMU).
 *
 * Usage: qmp_trace_check FILE...
 * Prints per binary and in total: commands checked, distinct commands, raw
 * and non-QEMU ones skipped, mismatches (each named); exits 1 on any
 * mismatch, unreadable line or empty trace.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qemu/qmp.h"
#include "qemu/qmp_cmds.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/proc.h"
#include "util/sock.h"

typedef struct binary {
    char *exe;
    json_object *commands; /* array of the checked commands sent to it */
} binary;

static binary bins[16];
static size_t n_bins;

static binary *bin_for(const char *exe)
{
    for (size_t i = 0; i < n_bins; i++)
        if (!strcmp(bins[i].exe, exe))
            return &bins[i];
    if (n_bins == sizeof(bins) / sizeof(bins[0]))
        return NULL;
    bins[n_bins] = (binary){strdup(exe), json_object_new_array()};
    return &bins[n_bins++];
}

static bool has_prop(json_object *props, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(props); i++) {
        json_object *n;
        if (json_object_object_get_ex(json_object_array_get_idx(props, i), "name", &n) &&
            !strcmp(json_object_get_string(n), name))
            return true;
    }
    return false;
}

/* Starts `exe` with a monitor on a socket pair and checks its commands. */
static long check_binary(binary *b, long *distinct)
{
    sv_error *err = NULL;
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        perror("socketpair");
        return -1;
    }
    char *argv[] = {b->exe,     "-machine", "none", "-nodefaults", "-no-user-config", "-display",
                    "none",     "-S",       "-chardev", "socket,id=qmp,fd=3",   "-mon",
                    "chardev=qmp,mode=control", NULL};
    int fds[] = {sp[1]};
    sv_spawn_opts so = {.fds = fds, .nfds = 1};
    _cleanup_proc_ sv_proc *p = NULL;
    if (sv_proc_spawn(argv, &so, &p, &err) < 0) {
        fprintf(stderr, "qmp_trace_check: %s: %s\n", b->exe, sv_error_message(err));
        sv_error_free(err);
        close(sp[0]);
        close(sp[1]);
        return -1;
    }
    close(sp[1]);
    _cleanup_qmp_ sv_qmp *q = sv_qmp_new(sp[0]);
    sv_qmp_set_watch_fd(q, sv_proc_pidfd(p));
    _cleanup_json_ json_object *schema = NULL;
    _cleanup_qmp_schema_ sv_qmp_schema *s = NULL;
    if (sv_qmp_handshake(q, sv_deadline_ms(30000), &err) < 0 ||
        sv_qmp_query_qmp_schema(q, sv_deadline_ms(30000), &schema, &err) < 0 ||
        sv_qmp_schema_new(schema, &s, &err) < 0) {
        fprintf(stderr, "qmp_trace_check: %s: %s (stderr: %s)\n", b->exe, sv_error_message(err),
                sv_proc_stderr(p));
        sv_error_free(err);
        return -1;
    }
    long bad = 0;
    size_t n = json_object_array_length(b->commands);
    _cleanup_json_ json_object *names = json_object_new_object();
    for (size_t i = 0; i < n; i++) {
        json_object *cmd = json_object_array_get_idx(b->commands, i), *exec = NULL, *args = NULL;
        json_object_object_get_ex(cmd, "execute", &exec);
        json_object_object_get_ex(cmd, "arguments", &args);
        const char *name = json_object_get_string(exec);
        if (!name) {
            printf("MISMATCH %s: a command without \"execute\": %s\n", b->exe,
                   json_object_to_json_string(cmd));
            bad++;
            continue;
        }
        json_object_object_add(names, name, NULL);
        if (sv_qmp_schema_check(s, name, args, &err) < 0) {
            printf("MISMATCH %s: %s\n", b->exe, sv_error_message(err));
            sv_error_free(err);
            err = NULL;
            bad++;
            continue;
        }
        if (strcmp(name, "device_add") != 0)
            continue;
        json_object *drv = NULL;
        json_object_object_get_ex(args, "driver", &drv);
        _cleanup_json_ json_object *qa = json_object_new_object(), *props = NULL;
        json_object_object_add(qa, "typename", json_object_get(drv));
        if (sv_qmp_execute(q, "device-list-properties", qa, sv_deadline_ms(10000), &props,
                           &err) < 0) {
            printf("MISMATCH %s: device-list-properties %s: %s\n", b->exe,
                   json_object_get_string(drv), sv_error_message(err));
            sv_error_free(err);
            err = NULL;
            bad++;
            continue;
        }
        json_object_object_foreach(args, key, val)
        {
            (void)val;
            if (strcmp(key, "driver") && strcmp(key, "id") && strcmp(key, "bus") &&
                !has_prop(props, key)) {
                printf("MISMATCH %s: device_add: %s has no property %s\n", b->exe,
                       json_object_get_string(drv), key);
                bad++;
            }
        }
    }
    printf("%s: %zu commands, %d distinct:", b->exe, n, json_object_object_length(names));
    json_object_object_foreach(names, key, val)
    {
        (void)val;
        printf(" %s", key);
    }
    printf("\n");
    *distinct = json_object_object_length(names);
    sv_qmp_execute(q, "quit", NULL, sv_deadline_ms(5000), NULL, NULL);
    sv_proc_wait(p, sv_deadline_ms(5000), NULL, NULL);
    return bad;
}

static bool is_qemu(const char *exe)
{
    const char *base = strrchr(exe, '/');
    return !strncmp(base ? base + 1 : exe, "qemu-system-", 12);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: qmp_trace_check FILE...\n");
        return 2;
    }
    /* the checker's own commands are no part of the trace it reads */
    unsetenv("SANDVM_QMP_TRACE");
    long total = 0, raw = 0, not_qemu = 0, unreadable = 0;
    _cleanup_json_ json_object *all_names = json_object_new_object();
    for (int f = 1; f < argc; f++) {
        FILE *in = fopen(argv[f], "re");
        if (!in) {
            fprintf(stderr, "qmp_trace_check: %s: %s\n", argv[f], strerror(errno));
            return 1;
        }
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, in) > 0) {
            total++;
            json_object *o = json_tokener_parse(line), *exe = NULL, *israw = NULL, *cmd = NULL;
            if (!o || !json_object_object_get_ex(o, "cmd", &cmd)) {
                unreadable++;
                json_object_put(o);
                continue;
            }
            json_object_object_get_ex(o, "exe", &exe);
            json_object_object_get_ex(o, "raw", &israw);
            const char *e = exe ? json_object_get_string(exe) : NULL;
            if (json_object_get_boolean(israw)) {
                raw++;
            } else if (!e || !is_qemu(e)) {
                not_qemu++;
            } else {
                binary *b = bin_for(e);
                json_object *ex = NULL;
                if (b)
                    json_object_array_add(b->commands, json_object_get(cmd));
                if (json_object_object_get_ex(cmd, "execute", &ex))
                    json_object_object_add(all_names, json_object_get_string(ex), NULL);
            }
            json_object_put(o);
        }
        free(line);
        fclose(in);
    }
    long bad = 0, checked = 0, failed_bins = 0;
    for (size_t i = 0; i < n_bins; i++) {
        long distinct = 0;
        long r = check_binary(&bins[i], &distinct);
        if (r < 0)
            failed_bins++;
        else
            bad += r;
        checked += (long)json_object_array_length(bins[i].commands);
    }
    printf("qmp_trace_check: %ld commands traced: %ld checked against the schemas of %zu QEMU "
           "binaries (%d distinct commands), %ld raw (sandvm qmp) and %ld to non-QEMU "
           "processes skipped, %ld unreadable lines; %ld mismatches\n",
           total, checked, n_bins, json_object_object_length(all_names), raw, not_qemu,
           unreadable, bad);
    for (size_t i = 0; i < n_bins; i++) {
        free(bins[i].exe);
        json_object_put(bins[i].commands);
    }
    return bad || unreadable || failed_bins || checked == 0 ? 1 : 0;
}
