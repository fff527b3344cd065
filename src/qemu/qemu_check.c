/*
 * sv_qemu_check(): start the real QEMU on the argv of a config, paused, and
 * prove over QMP that it accepted every option.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu/qemu_argv.h"
#include "qemu/qemu_config.h"
#include "qemu/qmp.h"
#include "util/argv.h"
#include "util/cleanup.h"
#include "util/proc.h"
#include "util/qopts.h"
#include "util/sock.h"
#include "util/strbuf.h"

#define CHECK_TIMEOUT_MS 10000
/* How long a QEMU that quit or closed QMP gets to exit, even past the deadline. */
#define EXIT_GRACE_MS 500
/* The chardev id of our monitor; a config's own QMP sockets are qmp0, qmp1... */
#define QMP_ID "sv-qmp"

/* A listening socket to pass to QEMU, and our connection to it. Connecting
 * succeeds at once (the backlog holds it until QEMU accepts), so the socket's
 * directory is gone before QEMU even starts: nothing else can connect. */
static int qmp_socket(int *listen_out, int *client_out, int64_t deadline, sv_error **err)
{
    _cleanup_private_dir_ char *dir = NULL;
    int r = sv_private_dir_new(&dir, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/qmp.sock", dir) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    _cleanup_close_ int l = sv_unix_listen(path, err);
    if (l < 0)
        return l;
    int c = sv_unix_connect(path, deadline, err);
    if (c < 0)
        return c;
    *listen_out = TAKE_FD(l);
    *client_out = c;
    return 0;
}

/* Our monitor: a server chardev on the listening fd QEMU inherits, and paused
 * without a display whatever the config says (-S twice is harmless). */
static void add_check_options(sv_argv *a, int listen_fd)
{
    int n = sv_argv_pass_fd(a, listen_fd);
    if (n < 0)
        return;
    _cleanup_qopts_ sv_qopts *chr = sv_qopts_new("backend", "socket");
    sv_qopts_str(chr, "id", QMP_ID);
    sv_qopts_int(chr, "fd", n);
    sv_qopts_bool(chr, "server", true);
    sv_qopts_bool(chr, "wait", false);
    _cleanup_qopts_ sv_qopts *mon = sv_qopts_new(NULL, NULL);
    sv_qopts_str(mon, "chardev", QMP_ID);
    sv_qopts_str(mon, "mode", "control");
    if (!chr || !mon || chr->oom || mon->oom) {
        sv_argv_fail(a, ENOMEM, "out of memory building the command line");
        return;
    }
    sv_argv_add_qopts(a, "-chardev", chr);
    sv_argv_add_qopts(a, "-mon", mon);
    sv_argv_add(a, "-S");
    sv_argv_add_pair(a, "-display", "none");
}

static bool is_prelaunch(const char *status)
{
    /* -S gives "prelaunch"; -incoming gives "inmigrate" */
    return status && (!strcmp(status, "prelaunch") || !strcmp(status, "inmigrate"));
}

static int talk(sv_qmp *q, const sv_qemu_check_opts *opts, int64_t deadline, sv_error **err)
{
    int r = sv_qmp_handshake(q, deadline, err);
    if (r < 0)
        return r;

    _cleanup_json_ json_object *st = NULL;
    r = sv_qmp_execute(q, "query-status", NULL, deadline, &st, err);
    if (r < 0)
        return r;
    json_object *v = NULL;
    const char *status =
        json_object_object_get_ex(st, "status", &v) && json_object_is_type(v, json_type_string)
            ? json_object_get_string(v)
            : NULL;
    if (!is_prelaunch(status))
        return sv_error_set(err, EPROTO,
                            "qemu is in state \"%s\" after starting with -S, not \"prelaunch\"",
                            status ? status : "?");

    for (size_t i = 0; opts->qmp && opts->qmp[i]; i++) {
        r = sv_qmp_execute_text(q, opts->qmp[i], deadline, opts->replies ? &opts->replies[i] : NULL,
                                err);
        if (r < 0)
            return r;
    }

    /* QEMU may close the connection as it exits, before its reply is read */
    sv_error *e = NULL;
    r = sv_qmp_execute(q, "quit", NULL, deadline, NULL, &e);
    if (r == -ECONNRESET || r == -ECHILD)
        r = 0;
    if (r < 0 && err && !*err)
        *err = TAKE_PTR(e);
    sv_error_free(e);
    return r;
}

/* "qemu exited with status 1: <stderr>" */
static int qemu_exited(sv_proc *p, int status, const char *when, sv_error **err)
{
    _cleanup_free_ char *how = sv_wait_status_string(status);
    const char *text = sv_proc_stderr(p);
    return sv_error_set(err, ECHILD, "qemu %s%s%s%s", how ? how : "exited", when,
                        *text ? ": " : " (nothing on stderr)", text);
}

/* The deadline for a QEMU that is known to be exiting: a little past the
 * check's own deadline if that is already (nearly) over. */
static int64_t exit_deadline(int64_t deadline)
{
    int64_t min = sv_deadline_ms(EXIT_GRACE_MS);
    return deadline > min ? deadline : min;
}

/* QMP failed with `e`: when QEMU died, what it printed says why, not QMP. */
static int explain_failure(sv_proc *p, sv_error *e, int64_t deadline, sv_error **err)
{
    int code = sv_error_code(e);
    /* a closed connection means QEMU is exiting: give it the time to */
    bool closed = code == ECONNRESET || code == ECHILD || code == EPIPE;
    int status;
    if (sv_proc_wait(p, closed ? exit_deadline(deadline) : sv_now_ms(), &status, NULL) == 0) {
        sv_error_free(e);
        return qemu_exited(p, status, "", err);
    }
    const char *text = sv_proc_stderr(p);
    if (code == ETIMEDOUT && *text) {
        /* e.g. "QEMU waiting for connection on: ...": a chardev with wait=on */
        int r = sv_error_set(err, ETIMEDOUT, "%s (qemu stderr: %s)", sv_error_message(e), text);
        sv_error_free(e);
        return r;
    }
    if (err && !*err)
        *err = e;
    else
        sv_error_free(e);
    return -code;
}

/* `err` is never NULL here, so that context can be added to every error. */
static int check(const sv_qemu_config *cfg, const sv_qemu_check_opts *opts, sv_error **err)
{
    if (opts->timeout_ms < 0)
        return sv_error_set(err, EINVAL, "timeout_ms: must not be negative");
    if (cfg->knobs.daemonize)
        /* A daemonized QEMU leaves our process group and cannot be reaped by
         * us, so a failed check could leave it running. sandvm detaches QEMU
         * itself instead of using -daemonize. */
        return sv_error_set(err, EINVAL,
                            "knobs.daemonize: cannot be checked: a daemonized QEMU escapes "
                            "sandvm's supervision");
    /* bad commands fail before QEMU starts */
    for (size_t i = 0; opts->qmp && opts->qmp[i]; i++)
        if (sv_qmp_parse_command(opts->qmp[i], NULL, err) < 0)
            return sv_error_prefix(err, "qmp[%zu]", i);
    int64_t deadline = sv_deadline_ms(opts->timeout_ms ? opts->timeout_ms : CHECK_TIMEOUT_MS);

    _cleanup_argv_ sv_argv *a = NULL;
    int r = sv_qemu_build_argv(cfg, &a, err);
    if (r < 0)
        return r;

    _cleanup_close_ int listen_fd = -1;
    _cleanup_close_ int client_fd = -1;
    r = qmp_socket(&listen_fd, &client_fd, deadline, err);
    if (r < 0)
        return sv_error_prefix(err, "checking with QEMU: creating the QMP socket");
    add_check_options(a, listen_fd);
    r = sv_argv_take_error(a, err);
    if (r < 0)
        return r;

    _cleanup_proc_ sv_proc *p = NULL;
    sv_spawn_opts so = {.program = sv_qemu_config_binary(cfg), .fds = a->fds, .nfds = a->nfds};
    r = sv_proc_spawn(a->v, &so, &p, err);
    if (r < 0)
        return sv_error_prefix(err, "checking with QEMU");
    /* only QEMU may hold the listener now, so that its death resets our connection */
    close(TAKE_FD(listen_fd));

    _cleanup_qmp_ sv_qmp *q = sv_qmp_new(TAKE_FD(client_fd));
    if (!q)
        return sv_error_set(err, ENOMEM, "out of memory");
    sv_qmp_set_watch_fd(q, sv_proc_pidfd(p));

    sv_error *e = NULL;
    r = talk(q, opts, deadline, &e);
    if (r < 0) {
        r = explain_failure(p, e, deadline, err);
        return sv_error_prefix(err, "checking with QEMU");
    }

    int status;
    r = sv_proc_wait(p, exit_deadline(deadline), &status, NULL);
    if (r == -ETIMEDOUT) {
        r = sv_error_set(err, ETIMEDOUT, "qemu did not exit after quit");
        return sv_error_prefix(err, "checking with QEMU");
    }
    if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        r = qemu_exited(p, r < 0 ? W_EXITCODE(255, 0) : status, " after quit", err);
        return sv_error_prefix(err, "checking with QEMU");
    }
    return 0;
}

int sv_qemu_check(const sv_qemu_config *cfg, const sv_qemu_check_opts *opts, sv_error **err)
{
    static const sv_qemu_check_opts defaults = {0};
    if (!cfg)
        return sv_error_set(err, EINVAL, "no configuration");
    if (!opts)
        opts = &defaults;
    size_t n = 0;
    while (opts->qmp && opts->qmp[n])
        n++;
    for (size_t i = 0; opts->replies && i < n; i++)
        opts->replies[i] = NULL;
    sv_error *e = NULL;
    int r = check(cfg, opts, &e);
    if (r == 0)
        return 0;
    /* the caller owns replies only on success */
    for (size_t i = 0; opts->replies && i < n; i++) {
        free(opts->replies[i]);
        opts->replies[i] = NULL;
    }
    if (err && !*err)
        *err = e;
    else
        sv_error_free(e);
    return r;
}
