#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qmp_cmds.h"
#include "util/cleanup.h"
#include "util/sock.h"
#include "util/strbuf.h"

/* ---- Enum tables. */

static const char *const run_state_names[] = {
    [SV_QMP_RUN_UNKNOWN] = "unknown",
    [SV_QMP_RUN_DEBUG] = "debug",
    [SV_QMP_RUN_INMIGRATE] = "inmigrate",
    [SV_QMP_RUN_INTERNAL_ERROR] = "internal-error",
    [SV_QMP_RUN_IO_ERROR] = "io-error",
    [SV_QMP_RUN_PAUSED] = "paused",
    [SV_QMP_RUN_POSTMIGRATE] = "postmigrate",
    [SV_QMP_RUN_PRELAUNCH] = "prelaunch",
    [SV_QMP_RUN_FINISH_MIGRATE] = "finish-migrate",
    [SV_QMP_RUN_RESTORE_VM] = "restore-vm",
    [SV_QMP_RUN_RUNNING] = "running",
    [SV_QMP_RUN_SAVE_VM] = "save-vm",
    [SV_QMP_RUN_SHUTDOWN] = "shutdown",
    [SV_QMP_RUN_SUSPENDED] = "suspended",
    [SV_QMP_RUN_WATCHDOG] = "watchdog",
    [SV_QMP_RUN_GUEST_PANICKED] = "guest-panicked",
    [SV_QMP_RUN_COLO] = "colo",
};
_Static_assert(SV_ARRAY_SIZE(run_state_names) == SV__QMP_RUN_MAX, "run state names");

static const char *const migration_status_names[] = {
    [SV_QMP_MIG_UNKNOWN] = "unknown",
    [SV_QMP_MIG_NONE] = "none",
    [SV_QMP_MIG_SETUP] = "setup",
    [SV_QMP_MIG_CANCELLING] = "cancelling",
    [SV_QMP_MIG_CANCELLED] = "cancelled",
    [SV_QMP_MIG_ACTIVE] = "active",
    [SV_QMP_MIG_POSTCOPY_ACTIVE] = "postcopy-active",
    [SV_QMP_MIG_POSTCOPY_PAUSED] = "postcopy-paused",
    [SV_QMP_MIG_POSTCOPY_RECOVER] = "postcopy-recover",
    [SV_QMP_MIG_COMPLETED] = "completed",
    [SV_QMP_MIG_FAILED] = "failed",
    [SV_QMP_MIG_COLO] = "colo",
    [SV_QMP_MIG_PRE_SWITCHOVER] = "pre-switchover",
    [SV_QMP_MIG_DEVICE] = "device",
    [SV_QMP_MIG_WAIT_UNPLUG] = "wait-unplug",
};
_Static_assert(SV_ARRAY_SIZE(migration_status_names) == SV__QMP_MIG_MAX, "migration names");

static int lookup(const char *const *names, int n, const char *name)
{
    for (int i = 1; i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return 0;
}

const char *sv_qmp_run_state_name(sv_qmp_run_state s)
{
    return (unsigned)s < SV__QMP_RUN_MAX ? run_state_names[s] : "unknown";
}

const char *sv_qmp_migration_status_name(sv_qmp_migration_status s)
{
    return (unsigned)s < SV__QMP_MIG_MAX ? migration_status_names[s] : "unknown";
}

/* ---- Building arguments. */

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

/* Adds `v` (taken over; NULL means allocation failed) under `key`. */
static bool put(json_object *o, const char *key, json_object *v)
{
    if (!o || !v || json_object_object_add(o, key, v) < 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

static bool put_str(json_object *o, const char *key, const char *v)
{
    return put(o, key, json_object_new_string(v));
}

static int required(const char *cmd, const char *what, const char *v, sv_error **err)
{
    if (!v)
        return sv_error_set(err, EINVAL, "qmp %s: %s is required", cmd, what);
    return 0;
}

/* Runs `cmd` with `args` (taken over; NULL for none). */
static int run(sv_qmp *q, const char *cmd, json_object *args, int64_t deadline, json_object **ret,
               sv_error **err)
{
    _cleanup_json_ json_object *a = args;
    return sv_qmp_execute(q, cmd, a, deadline, ret, err);
}

/* A command whose only argument is the string `key`. */
static int one_string(sv_qmp *q, const char *cmd, const char *key, const char *value,
                      int64_t deadline, sv_error **err)
{
    int r = required(cmd, key, value, err);
    if (r < 0)
        return r;
    json_object *a = json_object_new_object();
    if (!put_str(a, key, value)) {
        json_object_put(a);
        return oom(err);
    }
    return run(q, cmd, a, deadline, NULL, err);
}

static json_object *prop_value(const sv_qprop *p)
{
    switch (p->type) {
    case SV_QV_STR:
        return json_object_new_string(p->str);
    case SV_QV_INT:
        return json_object_new_int64(p->num);
    case SV_QV_BOOL:
        return json_object_new_boolean(p->flag);
    }
    return NULL;
}

/* Puts `v` (taken over) at the dotted `key` inside `o`, creating the parent
 * objects. */
static int put_nested(const char *cmd, json_object *o, const char *key, json_object *v,
                      sv_error **err)
{
    _cleanup_json_ json_object *val = v;
    const char *p = key;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        _cleanup_free_ char *part = strndup(p, n);
        if (!part)
            return oom(err);
        if (n == 0)
            return sv_error_set(err, EINVAL, "qmp %s: property \"%s\": empty key part", cmd, key);
        json_object *cur = NULL;
        bool has = json_object_object_get_ex(o, part, &cur);
        if (!dot) {
            if (has)
                return sv_error_set(err, EINVAL, "qmp %s: property \"%s\" given twice", cmd, key);
            return put(o, part, TAKE_PTR(val)) ? 0 : oom(err);
        }
        if (has && !json_object_is_type(cur, json_type_object))
            return sv_error_set(err, EINVAL,
                                "qmp %s: property \"%s\": \"%.*s\" is also given a value", cmd, key,
                                (int)(dot - key), key);
        if (!has) {
            cur = json_object_new_object();
            if (!put(o, part, cur))
                return oom(err);
        }
        o = cur;
        p = dot + 1;
    }
}

/* The arguments of a command that takes a property list: {head_key: head,
 * key: value...}; dotted keys nest when `nest`. */
static int qopts_args(const char *cmd, const sv_qopts *o, const char *head_key, bool nest,
                      json_object **out, sv_error **err)
{
    if (!o)
        return sv_error_set(err, EINVAL, "qmp %s: no property list", cmd);
    if (o->oom)
        return oom(err);
    bool headless = !o->head && !*o->head_key;
    if (!(o->head && !strcmp(o->head_key, head_key)) && !(nest && headless))
        return sv_error_set(err, EINVAL, "qmp %s: the property list must start with %s=", cmd,
                            head_key);
    _cleanup_json_ json_object *a = json_object_new_object();
    if (!a)
        return oom(err);
    if (o->head && !put_str(a, head_key, o->head))
        return oom(err);
    for (size_t i = 0; i < o->n; i++) {
        const sv_qprop *p = &o->props[i];
        json_object *v = prop_value(p);
        if (!v)
            return oom(err);
        int r;
        if (nest) {
            r = put_nested(cmd, a, p->key, v, err);
        } else if (json_object_object_get_ex(a, p->key, NULL)) {
            json_object_put(v);
            r = sv_error_set(err, EINVAL, "qmp %s: property \"%s\" given twice", cmd, p->key);
        } else {
            r = put(a, p->key, v) ? 0 : oom(err);
        }
        if (r < 0)
            return r;
    }
    if (!json_object_object_get_ex(a, head_key, NULL))
        return sv_error_set(err, EINVAL, "qmp %s: the property list has no %s", cmd, head_key);
    *out = TAKE_PTR(a);
    return 0;
}

static int qopts_command(sv_qmp *q, const char *cmd, const sv_qopts *o, const char *head_key,
                         bool nest, int64_t deadline, sv_error **err)
{
    json_object *a = NULL;
    int r = qopts_args(cmd, o, head_key, nest, &a, err);
    if (r < 0)
        return r;
    return run(q, cmd, a, deadline, NULL, err);
}

/* ---- Reading replies. */

static int bad_reply(const char *cmd, const char *where, const char *key, const char *what,
                     sv_error **err)
{
    return sv_error_set(err, EPROTO, "qmp %s: reply: %s%s%s: %s", cmd, where,
                        *where && key ? "." : "", key ? key : "", what);
}

/* A member of `o`, NULL when absent (or JSON null). */
static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

typedef struct rctx {
    const char *cmd;
    const char *where; /* "" or "[3]" or "[3].props" */
    sv_error **err;
} rctx;

/* Integer member; `def` when absent and !req. */
static int r_int(const rctx *c, json_object *o, const char *key, bool req, int64_t def,
                 int64_t *out)
{
    json_object *v = member(o, key);
    if (!v) {
        if (req)
            return bad_reply(c->cmd, c->where, key, "is missing", c->err);
        *out = def;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int))
        return bad_reply(c->cmd, c->where, key, "expected an integer", c->err);
    *out = json_object_get_int64(v);
    return 0;
}

static int r_bool(const rctx *c, json_object *o, const char *key, bool req, bool *out)
{
    json_object *v = member(o, key);
    if (!v) {
        if (req)
            return bad_reply(c->cmd, c->where, key, "is missing", c->err);
        *out = false;
        return 0;
    }
    if (!json_object_is_type(v, json_type_boolean))
        return bad_reply(c->cmd, c->where, key, "expected a boolean", c->err);
    *out = json_object_get_boolean(v);
    return 0;
}

/* String member, borrowed; NULL when absent and !req. A string holding a NUL
 * byte (a "\u0000" escape) is refused: C would see only part of it. */
static int r_str_ref(const rctx *c, json_object *o, const char *key, bool req, const char **out)
{
    json_object *v = member(o, key);
    *out = NULL;
    if (!v) {
        if (req)
            return bad_reply(c->cmd, c->where, key, "is missing", c->err);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return bad_reply(c->cmd, c->where, key, "expected a string", c->err);
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return bad_reply(c->cmd, c->where, key, "string holds a NUL byte", c->err);
    *out = s;
    return 0;
}

/* As r_str_ref, copied; `empty_is_null` maps "" to NULL. */
static int r_str(const rctx *c, json_object *o, const char *key, bool req, bool empty_is_null,
                 char **out)
{
    const char *s;
    *out = NULL;
    int r = r_str_ref(c, o, key, req, &s);
    if (r < 0 || !s || (empty_is_null && !*s))
        return r;
    *out = strdup(s);
    return *out ? 0 : oom(c->err);
}

static int expect_type(const rctx *c, json_object *v, json_type t, const char *what)
{
    if (!json_object_is_type(v, t))
        return bad_reply(c->cmd, c->where, NULL, what, c->err);
    return 0;
}

/* Runs a query returning an array and checks its type. */
static int query_array(sv_qmp *q, const char *cmd, int64_t deadline, json_object **ret,
                       sv_error **err)
{
    int r = sv_qmp_execute(q, cmd, NULL, deadline, ret, err);
    if (r < 0)
        return r;
    if (!json_object_is_type(*ret, json_type_array)) {
        json_object_put(*ret);
        *ret = NULL;
        return sv_error_set(err, EPROTO, "qmp %s: reply: expected an array", cmd);
    }
    return 0;
}

static int cpu_props(const rctx *c, json_object *entry, sv_qmp_cpu_props *p)
{
    json_object *o = member(entry, "props");
    char where[64];
    snprintf(where, sizeof(where), "%s.props", c->where);
    rctx pc = {c->cmd, where, c->err};
    if (o && !json_object_is_type(o, json_type_object))
        return bad_reply(c->cmd, where, NULL, "expected an object", c->err);
    int r = 0;
    if (r == 0)
        r = r_int(&pc, o, "node-id", false, -1, &p->node_id);
    if (r == 0)
        r = r_int(&pc, o, "socket-id", false, -1, &p->socket_id);
    if (r == 0)
        r = r_int(&pc, o, "die-id", false, -1, &p->die_id);
    if (r == 0)
        r = r_int(&pc, o, "cluster-id", false, -1, &p->cluster_id);
    if (r == 0)
        r = r_int(&pc, o, "core-id", false, -1, &p->core_id);
    if (r == 0)
        r = r_int(&pc, o, "thread-id", false, -1, &p->thread_id);
    return r;
}

/* ---- Run state. */

int sv_qmp_query_status(sv_qmp *q, int64_t deadline, sv_qmp_status *out, sv_error **err)
{
    static const char cmd[] = "query-status";
    _cleanup_json_ json_object *ret = NULL;
    int r = sv_qmp_execute(q, cmd, NULL, deadline, &ret, err);
    if (r < 0)
        return r;
    rctx c = {cmd, "", err};
    sv_qmp_status st = {0};
    const char *status;
    if ((r = expect_type(&c, ret, json_type_object, "expected an object")) < 0 ||
        (r = r_str_ref(&c, ret, "status", true, &status)) < 0 ||
        (r = r_bool(&c, ret, "running", true, &st.running)) < 0 ||
        (r = r_bool(&c, ret, "singlestep", false, &st.singlestep)) < 0)
        return r;
    st.state = (sv_qmp_run_state)lookup(run_state_names, SV__QMP_RUN_MAX, status);
    *out = st;
    return 0;
}

int sv_qmp_stop(sv_qmp *q, int64_t deadline, sv_error **err)
{
    return run(q, "stop", NULL, deadline, NULL, err);
}

int sv_qmp_cont(sv_qmp *q, int64_t deadline, sv_error **err)
{
    return run(q, "cont", NULL, deadline, NULL, err);
}

/* A command after which QEMU may be gone before it answers. */
static int closing_command(sv_qmp *q, const char *cmd, int64_t deadline, sv_error **err)
{
    sv_error *e = NULL;
    int r = sv_qmp_execute(q, cmd, NULL, deadline, NULL, &e);
    if (r == -ECONNRESET || r == -ECHILD) {
        sv_error_free(e);
        return 0;
    }
    if (r < 0) {
        if (err && !*err)
            *err = e;
        else
            sv_error_free(e);
    }
    return r;
}

int sv_qmp_system_powerdown(sv_qmp *q, int64_t deadline, sv_error **err)
{
    return closing_command(q, "system_powerdown", deadline, err);
}

int sv_qmp_quit(sv_qmp *q, int64_t deadline, sv_error **err)
{
    return closing_command(q, "quit", deadline, err);
}

/* ---- Devices. */

int sv_qmp_device_add(sv_qmp *q, const sv_qopts *props, int64_t deadline, sv_error **err)
{
    return qopts_command(q, "device_add", props, "driver", false, deadline, err);
}

int sv_qmp_device_del(sv_qmp *q, const char *id, int64_t deadline, sv_error **err)
{
    return one_string(q, "device_del", "id", id, deadline, err);
}

int sv_qmp_device_del_wait(sv_qmp *q, const char *id, int64_t deadline, sv_error **err)
{
    deadline = sv_qmp_deadline(q, deadline);
    int r = sv_qmp_device_del(q, id, deadline, err);
    if (r < 0)
        return r;
    sv_error *e = NULL;
    r = sv_qmp_wait_event(q, "DEVICE_DELETED", "device", id, deadline, NULL, &e);
    if (r == -ETIMEDOUT) {
        sv_error_free(e);
        return sv_error_set(err, ETIMEDOUT,
                            "qmp device_del %s: DEVICE_DELETED did not arrive: the unplug is "
                            "still pending",
                            id);
    }
    if (r < 0) {
        r = sv_error_prefix(&e, "qmp device_del %s", id);
        if (err && !*err)
            *err = e;
        else
            sv_error_free(e);
    }
    return r;
}

/* ---- Block nodes. */

int sv_qmp_blockdev_add(sv_qmp *q, const sv_qopts *opts, int64_t deadline, sv_error **err)
{
    return qopts_command(q, "blockdev-add", opts, "driver", true, deadline, err);
}

int sv_qmp_blockdev_add_json(sv_qmp *q, json_object *options, int64_t deadline, sv_error **err)
{
    if (!json_object_is_type(options, json_type_object))
        return sv_error_set(err, EINVAL, "qmp blockdev-add: options must be an object");
    return sv_qmp_execute(q, "blockdev-add", options, deadline, NULL, err);
}

int sv_qmp_blockdev_del(sv_qmp *q, const char *node_name, int64_t deadline, sv_error **err)
{
    return one_string(q, "blockdev-del", "node-name", node_name, deadline, err);
}

/* ---- Network backends. */

int sv_qmp_netdev_add(sv_qmp *q, const sv_qopts *opts, int64_t deadline, sv_error **err)
{
    return qopts_command(q, "netdev_add", opts, "type", false, deadline, err);
}

int sv_qmp_netdev_del(sv_qmp *q, const char *id, int64_t deadline, sv_error **err)
{
    return one_string(q, "netdev_del", "id", id, deadline, err);
}

/* ---- Character devices. */

int sv_qmp_chardev_add(sv_qmp *q, const char *id, json_object *backend, int64_t deadline,
                       sv_error **err)
{
    static const char cmd[] = "chardev-add";
    int r = required(cmd, "id", id, err);
    if (r < 0)
        return r;
    if (!json_object_is_type(backend, json_type_object))
        return sv_error_set(err, EINVAL, "qmp %s: backend must be an object", cmd);
    json_object *a = json_object_new_object();
    if (!put_str(a, "id", id) || !put(a, "backend", json_object_get(backend))) {
        json_object_put(a);
        return oom(err);
    }
    return run(q, cmd, a, deadline, NULL, err);
}

int sv_qmp_chardev_add_unix_socket(sv_qmp *q, const char *id, const char *path, bool server,
                                   bool wait, int64_t deadline, sv_error **err)
{
    int r = required("chardev-add", "path", path, err);
    if (r < 0)
        return r;
    /* each object is attached as soon as it exists, so one put of the root frees all */
    _cleanup_json_ json_object *backend = json_object_new_object();
    json_object *data = json_object_new_object();
    bool ok = put(backend, "data", data) && put_str(backend, "type", "socket");
    json_object *addr = ok ? json_object_new_object() : NULL;
    ok = ok && put(data, "addr", addr) && put_str(addr, "type", "unix");
    json_object *addr_data = ok ? json_object_new_object() : NULL;
    ok = ok && put(addr, "data", addr_data) && put_str(addr_data, "path", path);
    ok = ok && put(data, "server", json_object_new_boolean(server));
    if (ok && server)
        ok = put(data, "wait", json_object_new_boolean(wait));
    if (!ok)
        return oom(err);
    return sv_qmp_chardev_add(q, id, backend, deadline, err);
}

int sv_qmp_chardev_remove(sv_qmp *q, const char *id, int64_t deadline, sv_error **err)
{
    return one_string(q, "chardev-remove", "id", id, deadline, err);
}

/* ---- File descriptors. */

int sv_qmp_getfd(sv_qmp *q, const char *fdname, int fd, int64_t deadline, sv_error **err)
{
    static const char cmd[] = "getfd";
    int r = required(cmd, "fdname", fdname, err);
    if (r < 0)
        return r;
    if (fd < 0)
        return sv_error_set(err, EBADF, "qmp %s: no fd to pass", cmd);
    _cleanup_json_ json_object *a = json_object_new_object();
    if (!put_str(a, "fdname", fdname))
        return oom(err);
    return sv_qmp_execute_fd(q, cmd, a, fd, deadline, NULL, err);
}

int sv_qmp_closefd(sv_qmp *q, const char *fdname, int64_t deadline, sv_error **err)
{
    return one_string(q, "closefd", "fdname", fdname, deadline, err);
}

/* ---- QOM objects. */

int sv_qmp_object_add(sv_qmp *q, const sv_qopts *opts, int64_t deadline, sv_error **err)
{
    return qopts_command(q, "object-add", opts, "qom-type", false, deadline, err);
}

int sv_qmp_object_del(sv_qmp *q, const char *id, int64_t deadline, sv_error **err)
{
    return one_string(q, "object-del", "id", id, deadline, err);
}

static json_object *qom_args(const char *path, const char *property)
{
    json_object *a = json_object_new_object();
    if (!put_str(a, "path", path) || !put_str(a, "property", property)) {
        json_object_put(a);
        return NULL;
    }
    return a;
}

int sv_qmp_qom_get(sv_qmp *q, const char *path, const char *property, int64_t deadline,
                   json_object **value, sv_error **err)
{
    int r;
    if ((r = required("qom-get", "path", path, err)) < 0 ||
        (r = required("qom-get", "property", property, err)) < 0)
        return r;
    json_object *a = qom_args(path, property);
    if (!a)
        return oom(err);
    return run(q, "qom-get", a, deadline, value, err);
}

int sv_qmp_qom_set(sv_qmp *q, const char *path, const char *property, json_object *value,
                   int64_t deadline, sv_error **err)
{
    int r;
    if ((r = required("qom-set", "path", path, err)) < 0 ||
        (r = required("qom-set", "property", property, err)) < 0)
        return r;
    json_object *a = qom_args(path, property);
    if (!a || json_object_object_add(a, "value", json_object_get(value)) < 0) {
        json_object_put(a);
        return oom(err);
    }
    return run(q, "qom-set", a, deadline, NULL, err);
}

/* ---- CPUs and memory. */

/* A query whose reply is an array of objects: parses each element into a
 * newly allocated array of `size`-byte structs with `elem`, freeing them all
 * with `free_all` on the first bad element. */
typedef int (*elem_fn)(const rctx *c, json_object *e, void *out);
static int query_list(sv_qmp *q, const char *cmd, int64_t deadline, size_t size, elem_fn elem,
                      void (*free_all)(void *v, size_t n), void **out, size_t *n, sv_error **err)
{
    _cleanup_json_ json_object *ret = NULL;
    int r = query_array(q, cmd, deadline, &ret, err);
    if (r < 0)
        return r;
    size_t len = json_object_array_length(ret);
    char *v = len ? calloc(len, size) : NULL;
    if (len && !v)
        return oom(err);
    for (size_t i = 0; i < len && r == 0; i++) {
        char where[32];
        snprintf(where, sizeof(where), "[%zu]", i);
        rctx c = {cmd, where, err};
        r = elem(&c, json_object_array_get_idx(ret, i), v + i * size);
    }
    if (r < 0) {
        free_all(v, len);
        return r;
    }
    *out = v;
    *n = len;
    return 0;
}

void sv_qmp_hotpluggable_cpus_free(sv_qmp_hotpluggable_cpu *cpus, size_t n)
{
    for (size_t i = 0; cpus && i < n; i++) {
        free(cpus[i].type);
        free(cpus[i].qom_path);
    }
    free(cpus);
}

static int hotpluggable_cpu(const rctx *c, json_object *e, void *out)
{
    sv_qmp_hotpluggable_cpu *cpu = out;
    int r;
    if ((r = expect_type(c, e, json_type_object, "expected an object")) < 0 ||
        (r = r_str(c, e, "type", true, false, &cpu->type)) < 0 ||
        (r = r_int(c, e, "vcpus-count", true, 0, &cpu->vcpus_count)) < 0 ||
        (r = r_str(c, e, "qom-path", false, false, &cpu->qom_path)) < 0)
        return r;
    return cpu_props(c, e, &cpu->props);
}

static void hotpluggable_cpus_free(void *v, size_t n)
{
    sv_qmp_hotpluggable_cpus_free(v, n);
}

int sv_qmp_query_hotpluggable_cpus(sv_qmp *q, int64_t deadline, sv_qmp_hotpluggable_cpu **out,
                                   size_t *n, sv_error **err)
{
    return query_list(q, "query-hotpluggable-cpus", deadline, sizeof(**out), hotpluggable_cpu,
                      hotpluggable_cpus_free, (void **)out, n, err);
}

void sv_qmp_cpu_infos_free(sv_qmp_cpu_info *cpus, size_t n)
{
    for (size_t i = 0; cpus && i < n; i++) {
        free(cpus[i].qom_path);
        free(cpus[i].target);
    }
    free(cpus);
}

static int cpu_info(const rctx *c, json_object *e, void *out)
{
    sv_qmp_cpu_info *cpu = out;
    int r;
    if ((r = expect_type(c, e, json_type_object, "expected an object")) < 0 ||
        (r = r_int(c, e, "cpu-index", true, 0, &cpu->cpu_index)) < 0 ||
        (r = r_str(c, e, "qom-path", true, false, &cpu->qom_path)) < 0 ||
        (r = r_int(c, e, "thread-id", true, 0, &cpu->thread_id)) < 0 ||
        (r = r_str(c, e, "target", true, false, &cpu->target)) < 0)
        return r;
    return cpu_props(c, e, &cpu->props);
}

static void cpu_infos_free(void *v, size_t n)
{
    sv_qmp_cpu_infos_free(v, n);
}

int sv_qmp_query_cpus_fast(sv_qmp *q, int64_t deadline, sv_qmp_cpu_info **out, size_t *n,
                           sv_error **err)
{
    return query_list(q, "query-cpus-fast", deadline, sizeof(**out), cpu_info, cpu_infos_free,
                      (void **)out, n, err);
}

void sv_qmp_memory_devices_free(sv_qmp_memory_device *devs, size_t n)
{
    for (size_t i = 0; devs && i < n; i++) {
        free(devs[i].type);
        free(devs[i].id);
        free(devs[i].memdev);
    }
    free(devs);
}

static int memory_device(const rctx *c, json_object *e, void *out)
{
    sv_qmp_memory_device *d = out;
    int r;
    if ((r = expect_type(c, e, json_type_object, "expected an object")) < 0 ||
        (r = r_str(c, e, "type", true, false, &d->type)) < 0)
        return r;
    json_object *data = member(e, "data");
    char where[48];
    snprintf(where, sizeof(where), "%s.data", c->where);
    rctx dc = {c->cmd, where, c->err};
    if (!json_object_is_type(data, json_type_object))
        return bad_reply(c->cmd, c->where, "data", "expected an object", c->err);
    /* dimm/nvdimm say "addr", virtio-mem/virtio-pmem/sgx-epc "memaddr" */
    const char *addr_key = member(data, "addr") ? "addr" : "memaddr";
    if ((r = r_str(&dc, data, "id", false, false, &d->id)) < 0 ||
        (r = r_str(&dc, data, "memdev", false, false, &d->memdev)) < 0 ||
        (r = r_int(&dc, data, addr_key, false, -1, &d->addr)) < 0 ||
        (r = r_int(&dc, data, "size", false, -1, &d->size)) < 0 ||
        (r = r_int(&dc, data, "slot", false, -1, &d->slot)) < 0 ||
        (r = r_int(&dc, data, "node", false, -1, &d->node)) < 0 ||
        (r = r_int(&dc, data, "requested-size", false, -1, &d->requested_size)) < 0 ||
        (r = r_bool(&dc, data, "hotplugged", false, &d->hotplugged)) < 0 ||
        (r = r_bool(&dc, data, "hotpluggable", false, &d->hotpluggable)) < 0)
        return r;
    return 0;
}

static void memory_devices_free(void *v, size_t n)
{
    sv_qmp_memory_devices_free(v, n);
}

int sv_qmp_query_memory_devices(sv_qmp *q, int64_t deadline, sv_qmp_memory_device **out, size_t *n,
                                sv_error **err)
{
    return query_list(q, "query-memory-devices", deadline, sizeof(**out), memory_device,
                      memory_devices_free, (void **)out, n, err);
}

int sv_qmp_balloon(sv_qmp *q, uint64_t bytes, int64_t deadline, sv_error **err)
{
    if (bytes > (uint64_t)INT64_MAX)
        return sv_error_set(err, EINVAL, "qmp balloon: value %llu is out of range",
                            (unsigned long long)bytes);
    json_object *a = json_object_new_object();
    if (!put(a, "value", json_object_new_int64((int64_t)bytes))) {
        json_object_put(a);
        return oom(err);
    }
    return run(q, "balloon", a, deadline, NULL, err);
}

/* ---- PCI. */

/* A list grown while walking the buses. */
typedef struct pci_list {
    sv_qmp_pci_device *v;
    size_t n, cap;
} pci_list;

void sv_qmp_pci_devices_free(sv_qmp_pci_device *devs, size_t n)
{
    for (size_t i = 0; devs && i < n; i++)
        free(devs[i].qdev_id);
    free(devs);
}

/* Bridges nest; a reply deeper than this is refused rather than recursed. */
#define PCI_MAX_DEPTH 32

static int pci_devices(const rctx *c, json_object *devices, pci_list *l, int depth)
{
    if (depth > PCI_MAX_DEPTH)
        return bad_reply(c->cmd, c->where, NULL, "bridges nested too deep", c->err);
    if (!json_object_is_type(devices, json_type_array))
        return bad_reply(c->cmd, c->where, "devices", "expected an array", c->err);
    for (size_t i = 0; i < json_object_array_length(devices); i++) {
        json_object *e = json_object_array_get_idx(devices, i);
        _cleanup_free_ char *where = NULL;
        if (asprintf(&where, "%s%sdevices[%zu]", c->where, *c->where ? "." : "", i) < 0)
            return oom(c->err);
        rctx dc = {c->cmd, where, c->err};
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 16;
            sv_qmp_pci_device *nv = realloc(l->v, cap * sizeof(*nv));
            if (!nv)
                return oom(c->err);
            l->v = nv;
            l->cap = cap;
        }
        sv_qmp_pci_device *d = &l->v[l->n];
        memset(d, 0, sizeof(*d));
        l->n++;
        int r;
        json_object *class_info = member(e, "class_info"), *id = member(e, "id");
        if ((r = expect_type(&dc, e, json_type_object, "expected an object")) < 0 ||
            (r = r_int(&dc, e, "bus", true, 0, &d->bus)) < 0 ||
            (r = r_int(&dc, e, "slot", true, 0, &d->slot)) < 0 ||
            (r = r_int(&dc, e, "function", true, 0, &d->function)) < 0 ||
            (r = r_str(&dc, e, "qdev_id", false, true, &d->qdev_id)) < 0)
            return r;
        if (!json_object_is_type(class_info, json_type_object))
            return bad_reply(c->cmd, where, "class_info", "expected an object", c->err);
        if (!json_object_is_type(id, json_type_object))
            return bad_reply(c->cmd, where, "id", "expected an object", c->err);
        rctx cc = {c->cmd, where, c->err};
        if ((r = r_int(&cc, class_info, "class", true, 0, &d->class_code)) < 0 ||
            (r = r_int(&cc, id, "vendor", true, 0, &d->vendor_id)) < 0 ||
            (r = r_int(&cc, id, "device", true, 0, &d->device_id)) < 0)
            return r;
        d->secondary_bus = -1;
        json_object *bridge = member(e, "pci_bridge");
        if (!bridge)
            continue;
        _cleanup_free_ char *bwhere = NULL;
        if (asprintf(&bwhere, "%s.pci_bridge", where) < 0)
            return oom(c->err);
        rctx bc = {c->cmd, bwhere, c->err};
        json_object *bus = member(bridge, "bus");
        if (!json_object_is_type(bus, json_type_object))
            return bad_reply(c->cmd, bwhere, "bus", "expected an object", c->err);
        int64_t secondary;
        if ((r = r_int(&bc, bus, "secondary", true, 0, &secondary)) < 0)
            return r;
        /* d may move when the list grows: write through the index */
        l->v[l->n - 1].secondary_bus = secondary;
        json_object *behind = member(bridge, "devices");
        if (behind && (r = pci_devices(&bc, behind, l, depth + 1)) < 0)
            return r;
    }
    return 0;
}

int sv_qmp_query_pci(sv_qmp *q, int64_t deadline, sv_qmp_pci_device **out, size_t *n,
                     sv_error **err)
{
    static const char cmd[] = "query-pci";
    _cleanup_json_ json_object *ret = NULL;
    int r = query_array(q, cmd, deadline, &ret, err);
    if (r < 0)
        return r;
    pci_list l = {0};
    for (size_t i = 0; i < json_object_array_length(ret) && r == 0; i++) {
        char where[32];
        snprintf(where, sizeof(where), "[%zu]", i);
        rctx c = {cmd, where, err};
        json_object *bus = json_object_array_get_idx(ret, i);
        r = expect_type(&c, bus, json_type_object, "expected an object");
        if (r == 0)
            r = pci_devices(&c, member(bus, "devices"), &l, 0);
    }
    if (r < 0) {
        sv_qmp_pci_devices_free(l.v, l.n);
        return r;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

/* ---- Migration. */

int sv_qmp_migrate_set_capabilities(sv_qmp *q, const sv_qmp_migrate_cap *caps, size_t n,
                                    int64_t deadline, sv_error **err)
{
    static const char cmd[] = "migrate-set-capabilities";
    json_object *list = json_object_new_array();
    json_object *a = json_object_new_object();
    if (!put(a, "capabilities", list)) {
        json_object_put(a);
        return oom(err);
    }
    for (size_t i = 0; i < n; i++) {
        if (!caps[i].capability) {
            json_object_put(a);
            return sv_error_set(err, EINVAL, "qmp %s: capabilities[%zu]: no name", cmd, i);
        }
        json_object *c = json_object_new_object();
        if (!put_str(c, "capability", caps[i].capability) ||
            !put(c, "state", json_object_new_boolean(caps[i].state)) ||
            json_object_array_add(list, c) < 0) {
            json_object_put(c);
            json_object_put(a);
            return oom(err);
        }
    }
    return run(q, cmd, a, deadline, NULL, err);
}

int sv_qmp_migrate_set_parameters(sv_qmp *q, json_object *params, int64_t deadline, sv_error **err)
{
    if (!json_object_is_type(params, json_type_object))
        return sv_error_set(err, EINVAL,
                            "qmp migrate-set-parameters: parameters must be an object");
    return sv_qmp_execute(q, "migrate-set-parameters", params, deadline, NULL, err);
}

int sv_qmp_migrate(sv_qmp *q, const char *uri, int64_t deadline, sv_error **err)
{
    return one_string(q, "migrate", "uri", uri, deadline, err);
}

int sv_qmp_migrate_incoming(sv_qmp *q, const char *uri, int64_t deadline, sv_error **err)
{
    return one_string(q, "migrate-incoming", "uri", uri, deadline, err);
}

void sv_qmp_migration_info_clear(sv_qmp_migration_info *info)
{
    if (!info)
        return;
    free(info->error_desc);
    json_object_put(info->raw);
    memset(info, 0, sizeof(*info));
}

int sv_qmp_query_migrate(sv_qmp *q, int64_t deadline, sv_qmp_migration_info *out, sv_error **err)
{
    static const char cmd[] = "query-migrate";
    _cleanup_json_ json_object *ret = NULL;
    int r = sv_qmp_execute(q, cmd, NULL, deadline, &ret, err);
    if (r < 0)
        return r;
    rctx c = {cmd, "", err};
    if ((r = expect_type(&c, ret, json_type_object, "expected an object")) < 0)
        return r;
    sv_qmp_migration_info m = {0};
    const char *status;
    json_object *ram = member(ret, "ram");
    rctx rc = {cmd, "ram", err};
    if ((r = r_str_ref(&c, ret, "status", false, &status)) < 0 ||
        (r = r_int(&c, ret, "total-time", false, -1, &m.total_time_ms)) < 0 ||
        (ram && (r = expect_type(&rc, ram, json_type_object, "expected an object")) < 0) ||
        (r = r_int(&rc, ram, "transferred", false, -1, &m.ram_transferred)) < 0 ||
        (r = r_int(&rc, ram, "remaining", false, -1, &m.ram_remaining)) < 0 ||
        (r = r_int(&rc, ram, "total", false, -1, &m.ram_total)) < 0 ||
        (r = r_str(&c, ret, "error-desc", false, false, &m.error_desc)) < 0) {
        free(m.error_desc);
        return r;
    }
    m.status =
        status ? (sv_qmp_migration_status)lookup(migration_status_names, SV__QMP_MIG_MAX, status)
               : SV_QMP_MIG_NONE;
    m.raw = TAKE_PTR(ret);
    *out = m;
    return 0;
}

/* ---- Diagnostics. */

int sv_qmp_dump_guest_memory(sv_qmp *q, const char *protocol, bool paging, const char *format,
                             int64_t deadline, sv_error **err)
{
    int r = required("dump-guest-memory", "protocol", protocol, err);
    if (r < 0)
        return r;
    json_object *a = json_object_new_object();
    if (!put_str(a, "protocol", protocol) || !put(a, "paging", json_object_new_boolean(paging)) ||
        (format && !put_str(a, "format", format))) {
        json_object_put(a);
        return oom(err);
    }
    return run(q, "dump-guest-memory", a, deadline, NULL, err);
}

/* ---- Introspection. */

int sv_qmp_query_qmp_schema(sv_qmp *q, int64_t deadline, json_object **schema, sv_error **err)
{
    static const char cmd[] = "query-qmp-schema";
    size_t cap = sv_qmp_max_message(q);
    if (cap < SV_QMP_SCHEMA_MAX_MESSAGE)
        sv_qmp_set_max_message(q, SV_QMP_SCHEMA_MAX_MESSAGE);
    int r = query_array(q, cmd, deadline, schema, err);
    sv_qmp_set_max_message(q, cap);
    return r;
}

struct sv_qmp_schema {
    json_object *all;     /* the array, referenced */
    json_object *by_name; /* name -> entry (borrowed from all) */
};

void sv_qmp_schema_free(sv_qmp_schema *s)
{
    if (!s)
        return;
    json_object_put(s->by_name);
    json_object_put(s->all);
    free(s);
}

int sv_qmp_schema_new(json_object *schema, sv_qmp_schema **out, sv_error **err)
{
    if (!json_object_is_type(schema, json_type_array))
        return sv_error_set(err, EPROTO, "QMP schema: expected an array");
    sv_qmp_schema *s = calloc(1, sizeof(*s));
    if (!s)
        return oom(err);
    s->all = json_object_get(schema);
    s->by_name = json_object_new_object();
    if (!s->by_name) {
        sv_qmp_schema_free(s);
        return oom(err);
    }
    for (size_t i = 0; i < json_object_array_length(schema); i++) {
        json_object *e = json_object_array_get_idx(schema, i), *name, *meta;
        if (!json_object_object_get_ex(e, "name", &name) ||
            !json_object_is_type(name, json_type_string) ||
            !json_object_object_get_ex(e, "meta-type", &meta) ||
            !json_object_is_type(meta, json_type_string)) {
            sv_qmp_schema_free(s);
            return sv_error_set(err, EPROTO, "QMP schema: [%zu]: expected name and meta-type", i);
        }
        /* an object holds what it is given: take a reference per entry */
        if (json_object_object_add(s->by_name, json_object_get_string(name), json_object_get(e)) <
            0) {
            json_object_put(e);
            sv_qmp_schema_free(s);
            return oom(err);
        }
    }
    *out = s;
    return 0;
}

static json_object *schema_entry(const sv_qmp_schema *s, const char *name)
{
    json_object *e = NULL;
    if (!name || !json_object_object_get_ex(s->by_name, name, &e))
        return NULL;
    return e;
}

static const char *entry_str(json_object *e, const char *key)
{
    json_object *v = member(e, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool is_deprecated(json_object *e)
{
    json_object *f = member(e, "features");
    for (size_t i = 0; json_object_is_type(f, json_type_array) && i < json_object_array_length(f);
         i++) {
        json_object *v = json_object_array_get_idx(f, i);
        if (json_object_is_type(v, json_type_string) &&
            !strcmp(json_object_get_string(v), "deprecated"))
            return true;
    }
    return false;
}

bool sv_qmp_schema_has_command(const sv_qmp_schema *s, const char *command)
{
    const char *meta = entry_str(schema_entry(s, command), "meta-type");
    return meta && !strcmp(meta, "command");
}

typedef struct sctx {
    const sv_qmp_schema *s;
    const char *cmd;
    sv_strbuf path;
    sv_error **err;
} sctx;

static int schema_fail(sctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int schema_fail(sctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *why = NULL;
    int n = vasprintf(&why, fmt, ap);
    va_end(ap);
    return sv_error_set(c->err, EINVAL, "%s: argument %s: %s", c->cmd,
                        c->path.len ? c->path.s : "(top)", n < 0 ? "?" : why);
}

static void path_push_key(sv_strbuf *sb, const char *key)
{
    if (sb->len)
        sv_strbuf_append_c(sb, '.');
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f)
            sv_strbuf_append_c(sb, (char)*p);
        else
            sv_strbuf_appendf(sb, "\\x%02x", *p);
    }
}

static void path_pop(sv_strbuf *sb, size_t mark)
{
    sb->len = mark;
    if (sb->s)
        sb->s[mark] = '\0';
}

static int check_value(sctx *c, const char *type, json_object *v, bool open);

/* The member `key` of object type `t` or of the union branch `v` selects. */
static json_object *find_member(sctx *c, json_object *t, json_object *v, const char *key, int depth)
{
    json_object *members = member(t, "members");
    for (size_t i = 0;
         json_object_is_type(members, json_type_array) && i < json_object_array_length(members);
         i++) {
        json_object *m = json_object_array_get_idx(members, i);
        const char *name = entry_str(m, "name");
        if (name && !strcmp(name, key))
            return m;
    }
    const char *tag = entry_str(t, "tag");
    const char *tag_value = tag ? entry_str(v, tag) : NULL;
    json_object *variants = member(t, "variants");
    if (!tag_value || depth > 8)
        return NULL;
    for (size_t i = 0;
         json_object_is_type(variants, json_type_array) && i < json_object_array_length(variants);
         i++) {
        json_object *var = json_object_array_get_idx(variants, i);
        const char *cas = entry_str(var, "case");
        if (cas && !strcmp(cas, tag_value))
            return find_member(c, schema_entry(c->s, entry_str(var, "type")), v, key, depth + 1);
    }
    return NULL;
}

static int check_required(sctx *c, json_object *t, json_object *v, int depth)
{
    json_object *members = member(t, "members");
    for (size_t i = 0;
         json_object_is_type(members, json_type_array) && i < json_object_array_length(members);
         i++) {
        json_object *m = json_object_array_get_idx(members, i);
        const char *name = entry_str(m, "name");
        if (name && !json_object_object_get_ex(m, "default", NULL) &&
            !json_object_object_get_ex(v, name, NULL))
            return schema_fail(c, "missing required member \"%s\"", name);
    }
    const char *tag = entry_str(t, "tag");
    const char *tag_value = tag ? entry_str(v, tag) : NULL;
    json_object *variants = member(t, "variants");
    if (!tag_value || depth > 8)
        return 0;
    for (size_t i = 0;
         json_object_is_type(variants, json_type_array) && i < json_object_array_length(variants);
         i++) {
        json_object *var = json_object_array_get_idx(variants, i);
        const char *cas = entry_str(var, "case");
        if (cas && !strcmp(cas, tag_value))
            return check_required(c, schema_entry(c->s, entry_str(var, "type")), v, depth + 1);
    }
    return 0;
}

static int check_object(sctx *c, json_object *t, json_object *v, bool open)
{
    if (!json_object_is_type(v, json_type_object))
        return schema_fail(c, "expected an object");
    size_t mark = c->path.len;
    json_object_object_foreach(v, key, val)
    {
        path_push_key(&c->path, key);
        json_object *m = find_member(c, t, v, key, 0);
        int r = 0;
        if (!m && !open)
            r = schema_fail(c, "not in QEMU's schema");
        else if (m && is_deprecated(m))
            r = schema_fail(c, "deprecated");
        else if (m)
            r = check_value(c, entry_str(m, "type"), val, false);
        if (r < 0)
            return r;
        path_pop(&c->path, mark);
    }
    return check_required(c, t, v, 0);
}

static bool json_type_ok(const char *want, json_object *v)
{
    json_type t = json_object_get_type(v);
    if (!strcmp(want, "value"))
        return true;
    if (!strcmp(want, "string"))
        return t == json_type_string;
    if (!strcmp(want, "int"))
        return t == json_type_int;
    if (!strcmp(want, "number"))
        return t == json_type_int || t == json_type_double;
    if (!strcmp(want, "boolean"))
        return t == json_type_boolean;
    if (!strcmp(want, "null"))
        return t == json_type_null;
    if (!strcmp(want, "object"))
        return t == json_type_object;
    if (!strcmp(want, "array"))
        return t == json_type_array;
    return false;
}

static int check_enum(sctx *c, json_object *t, json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return schema_fail(c, "expected a string (enum %s)", entry_str(t, "name"));
    const char *s = json_object_get_string(v);
    json_object *members = member(t, "members");
    for (size_t i = 0;
         json_object_is_type(members, json_type_array) && i < json_object_array_length(members);
         i++) {
        json_object *m = json_object_array_get_idx(members, i);
        const char *name = entry_str(m, "name");
        if (name && !strcmp(name, s))
            return is_deprecated(m) ? schema_fail(c, "\"%s\" is deprecated", s) : 0;
    }
    json_object *values = member(t, "values");
    for (size_t i = 0;
         json_object_is_type(values, json_type_array) && i < json_object_array_length(values);
         i++) {
        json_object *e = json_object_array_get_idx(values, i);
        if (json_object_is_type(e, json_type_string) && !strcmp(json_object_get_string(e), s))
            return 0;
    }
    return schema_fail(c, "\"%s\" is not a value QEMU knows", s);
}

static int check_value(sctx *c, const char *type, json_object *v, bool open)
{
    json_object *t = schema_entry(c->s, type);
    const char *meta = entry_str(t, "meta-type");
    if (!meta)
        return schema_fail(c, "type %s is not in QEMU's schema", type ? type : "?");
    if (!strcmp(meta, "builtin")) {
        const char *jt = entry_str(t, "json-type");
        if (!jt || !json_type_ok(jt, v))
            return schema_fail(c, "expected JSON type %s, not %s", jt ? jt : "?",
                               json_type_to_name(json_object_get_type(v)));
        return 0;
    }
    if (!strcmp(meta, "enum"))
        return check_enum(c, t, v);
    if (!strcmp(meta, "object"))
        return check_object(c, t, v, open);
    if (!strcmp(meta, "array")) {
        if (!json_object_is_type(v, json_type_array))
            return schema_fail(c, "expected an array");
        size_t mark = c->path.len;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            sv_strbuf_appendf(&c->path, "[%zu]", i);
            int r = check_value(c, entry_str(t, "element-type"), json_object_array_get_idx(v, i),
                                false);
            if (r < 0)
                return r;
            path_pop(&c->path, mark);
        }
        return 0;
    }
    if (!strcmp(meta, "alternate")) {
        json_object *members = member(t, "members");
        for (size_t i = 0;
             json_object_is_type(members, json_type_array) && i < json_object_array_length(members);
             i++) {
            sctx quiet = *c;
            quiet.err = NULL;
            size_t mark = c->path.len;
            int r = check_value(&quiet, entry_str(json_object_array_get_idx(members, i), "type"), v,
                                false);
            c->path = quiet.path; /* the buffer may have moved */
            path_pop(&c->path, mark);
            if (r == 0)
                return 0;
        }
        return schema_fail(c, "matches none of the alternatives of %s", entry_str(t, "name"));
    }
    return schema_fail(c, "unexpected meta-type %s", meta);
}

int sv_qmp_schema_check(const sv_qmp_schema *s, const char *command, json_object *arguments,
                        sv_error **err)
{
    json_object *cmd = schema_entry(s, command);
    const char *meta = entry_str(cmd, "meta-type");
    if (!meta || strcmp(meta, "command") != 0)
        return sv_error_set(err, EINVAL, "%s: not a command in QEMU's schema", command);
    if (is_deprecated(cmd))
        return sv_error_set(err, EINVAL, "%s: deprecated", command);
    sctx c = {s, command, SV_STRBUF_INIT, err};
    _cleanup_json_ json_object *none = arguments ? NULL : json_object_new_object();
    if (!arguments && !none)
        return oom(err);
    /* device_add's driver properties are not in the schema */
    bool open = !strcmp(command, "device_add");
    int r = check_value(&c, entry_str(cmd, "arg-type"), arguments ? arguments : none, open);
    sv_strbuf_free(&c.path);
    return r;
}
