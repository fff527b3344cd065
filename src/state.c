#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "state.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/lock.h"
#include "util/strbuf.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* A crash leftover younger than this may belong to a sandvm that is creating
 * it right now (between mkdir and taking its lock): never swept. */
#define SWEEP_MIN_AGE_S 60

struct sv_state_root {
    char *path;
    int fd;
};

struct sv_state_dir {
    char *id;
    char *path;
    int root_fd;
    int fd;
    int lock_fd;
};

/* What sandvm creates inside a VM directory (fnmatch patterns); removal
 * deletes these and nothing else. */
static const char *const own_entries[] = {
    SV_STATE_FILE,
    SV_STATE_LOCK_FILE,
    SV_STATE_QMP_SOCKET,
    SV_STATE_CONSOLE_SOCKET,
    SV_STATE_EXEC_SOCKET,
    SV_STATE_QEMU_LOG,
    SV_STATE_QEMU_PIDFILE,
    SV_STATE_EXEC_LOCK_FILE,
    SV_STATE_MEMORY_FILE,
    SV_STATE_LOGGER_PIDFILE,
    SV_STATE_CONSOLE_LOG,
    SV_STATE_CONSOLE_LOG_OLD,
    "virtiofsd*.sock", /* SV_STATE_VIRTIOFSD_SOCKET, one per shared directory */
    "virtiofsd*.log",
    "virtiofsd*.pid",
    SV_TMP_PREFIX "*", /* sv_write_file_atomic() temporaries left by a crash */
};

static bool own_entry_name(const char *name)
{
    for (size_t i = 0; i < SV_ARRAY_SIZE(own_entries); i++)
        if (fnmatch(own_entries[i], name, FNM_PATHNAME) == 0)
            return true;
    return false;
}

/* ---- ids ------------------------------------------------------------------- */

/* The id quoted for a message: printable ASCII kept, the rest as \xNN, at
 * most 80 bytes shown. */
static char *quote_id(const char *id)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append_c(&sb, '"');
    size_t i = 0;
    for (; id[i] && i < 80; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '"' || c == '\\')
            sv_strbuf_appendf(&sb, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            sv_strbuf_append_c(&sb, (char)c);
        else
            sv_strbuf_appendf(&sb, "\\x%02x", c);
    }
    sv_strbuf_append(&sb, id[i] ? "\"..." : "\"");
    return sv_strbuf_steal(&sb);
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

#define ONLY " (only letters, digits, '-', '_' and '.')"

int sv_vm_id_check(const char *id, sv_error **err)
{
    if (!id)
        return sv_error_set(err, EINVAL, "no vm id given");
    char why[96] = "";
    size_t len = strnlen(id, SV_VM_ID_MAX + 1);
    if (len == 0)
        snprintf(why, sizeof(why), "it is empty");
    else if (len > SV_VM_ID_MAX)
        snprintf(why, sizeof(why), "it is longer than %d characters", SV_VM_ID_MAX);
    else if (id[0] == '.')
        snprintf(why, sizeof(why), "it must not start with '.'");
    for (const char *p = id; !why[0] && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (id_char(*p))
            continue;
        if (c > 0x20 && c < 0x7f)
            snprintf(why, sizeof(why), "'%c' is not allowed%s", c, ONLY);
        else
            snprintf(why, sizeof(why), "byte \\x%02x is not allowed%s", c, ONLY);
    }
    if (!why[0])
        return 0;
    _cleanup_free_ char *q = quote_id(id);
    return sv_error_set(err, EINVAL, "invalid vm id %s: %s", q ? q : "?", why);
}

/* ---- processes --------------------------------------------------------------- */

/* Reads the state letter and the start time (field 22) of /proc/PID/stat;
 * `procfd` >= 0 is an open /proc/PID directory to read it through. */
static int read_stat_at(int procfd, pid_t pid, char *state, int64_t *start_time, sv_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    _cleanup_close_ int fd = procfd >= 0 ? openat(procfd, "stat", O_RDONLY | O_CLOEXEC)
                                          : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ESRCH)
            return -ESRCH;
        return sv_error_errno(err, errno, "opening %s", path);
    }
    char buf[2048];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno == ESRCH)
                return -ESRCH; /* exited and reaped between open and read */
            return sv_error_errno(err, errno, "reading %s", path);
        }
        if (n == 0 || (got += (size_t)n) == sizeof(buf) - 1)
            break;
    }
    buf[got] = '\0';
    /* the command name (field 2) may hold spaces and ')': skip to the last ')' */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return sv_error_set(err, EPROTO, "%s: unexpected format", path);
    *state = p[2];
    p += 2; /* field 3 */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return sv_error_set(err, EPROTO, "%s: unexpected format", path);
        p++;
    }
    char *end;
    errno = 0;
    unsigned long long st = strtoull(p, &end, 10);
    if (errno || end == p || (*end != ' ' && *end != '\n' && *end) || st > INT64_MAX)
        return sv_error_set(err, EPROTO, "%s: unexpected start time", path);
    *start_time = (int64_t)st;
    return 0;
}

static int read_stat(pid_t pid, char *state, int64_t *start_time, sv_error **err)
{
    return read_stat_at(-1, pid, state, start_time, err);
}

int sv_pid_start_time(pid_t pid, int64_t *start_time, sv_error **err)
{
    char state;
    if (pid <= 0)
        return sv_error_set(err, ESRCH, "no process %d", (int)pid);
    int r = read_stat(pid, &state, start_time, err);
    if (r == -ESRCH)
        return sv_error_set(err, ESRCH, "no process %d", (int)pid);
    return r;
}

int sv_pid_alive(pid_t pid, int64_t start_time, sv_error **err)
{
    if (pid <= 0)
        return 0;
    char state;
    int64_t st;
    int r = read_stat(pid, &state, &st, err);
    if (r == -ESRCH)
        return 0;
    if (r < 0)
        return r;
    if (state == 'Z' || state == 'X' || state == 'x')
        return 0;
    return st == start_time;
}

static int gone(sv_error **err, pid_t pid)
{
    return sv_error_set(err, ESRCH,
                        "process %d is gone (it exited, or its pid now belongs to another process)",
                        (int)pid);
}

int sv_pid_open(pid_t pid, int64_t start_time, sv_error **err)
{
    if (pid <= 0)
        return gone(err, pid);
    _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        if (errno == ESRCH)
            return gone(err, pid);
        return sv_error_errno(err, errno, "pidfd_open(%d)", (int)pid);
    }
    /* Checked after opening: if the pid was reused before pidfd_open, the
     * start time read now is the newcomer's and differs. */
    int r = sv_pid_alive(pid, start_time, err);
    if (r < 0)
        return r;
    if (r == 0)
        return gone(err, pid);
    return TAKE_FD(pidfd);
}

int sv_pid_signal(pid_t pid, int64_t start_time, int sig, sv_error **err)
{
    sv_error *perr = NULL;
    _cleanup_close_ int pidfd = sv_pid_open(pid, start_time, &perr);
    if (pidfd == -ENOSYS) {
        sv_error_free(perr);
        int r = sv_pid_alive(pid, start_time, err);
        if (r <= 0)
            return r < 0 ? r : gone(err, pid);
        if (kill(pid, sig) < 0)
            return errno == ESRCH ? gone(err, pid)
                                  : sv_error_errno(err, errno, "kill(%d)", (int)pid);
        return 0;
    }
    if (pidfd < 0) {
        if (err && !*err)
            *err = perr;
        else
            sv_error_free(perr);
        return pidfd;
    }
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0) {
        if (errno == ESRCH)
            return gone(err, pid);
        return sv_error_errno(err, errno, "signalling process %d", (int)pid);
    }
    return 0;
}

/* The longest command line read; QEMU's are a few KiB. */
#define CMDLINE_MAX (1u << 20)

int sv_pid_has_args(pid_t pid, int64_t start_time, const char *arg, const char *value,
                    int64_t *start_out, sv_error **err)
{
    if (pid <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    _cleanup_close_ int procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0) {
        if (errno == ENOENT || errno == ESRCH)
            return 0;
        return sv_error_errno(err, errno, "opening %s", path);
    }
    char state;
    int64_t st;
    int r = read_stat_at(procfd, pid, &state, &st, err);
    if (r == -ESRCH)
        return 0;
    if (r < 0)
        return r;
    if (state == 'Z' || state == 'X' || state == 'x' || (start_time >= 0 && st != start_time))
        return 0;
    _cleanup_close_ int fd = openat(procfd, "cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? 0
                                                 : sv_error_errno(err, errno, "opening %s/cmdline", path);
    _cleanup_free_ char *buf = malloc(CMDLINE_MAX + 1);
    if (!buf)
        return sv_error_set(err, ENOMEM, "out of memory");
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, CMDLINE_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ESRCH ? 0 : sv_error_errno(err, errno, "reading %s/cmdline", path);
        if (n == 0 || (got += (size_t)n) == CMDLINE_MAX)
            break;
    }
    buf[got] = '\0';
    /* NUL-separated words; the pair must be two whole consecutive words */
    const char *prev = NULL;
    for (size_t i = 0; i < got;) {
        const char *w = buf + i;
        size_t len = strnlen(w, got - i);
        if (prev && strcmp(prev, arg) == 0 && len == strlen(value) && memcmp(w, value, len) == 0) {
            if (start_out)
                *start_out = st;
            return 1;
        }
        prev = w;
        i += len + 1;
    }
    return 0;
}

/* ---- the state record ------------------------------------------------------------ */

static const char *const run_state_names[] = {"created", "running", "paused", "stopped", NULL};
_Static_assert(SV_ARRAY_SIZE(run_state_names) == SV__VM_STATE_MAX + 1, "run state names");

const char *sv_vm_run_state_name(sv_vm_run_state s)
{
    return (unsigned)s < SV__VM_STATE_MAX ? run_state_names[s] : "?";
}

static int decode_config(json_object *v, void *field, const char *path, sv_error **err)
{
    if (json_object_get_type(v) != json_type_object)
        return sv_error_set(err, EINVAL, "%s: expected an object, got %s", path,
                            sv_json_type_name(json_object_get_type(v)));
    *(json_object **)field = json_object_get(v);
    return 0;
}

static void free_config(void *field)
{
    json_object_put(*(json_object **)field);
    *(json_object **)field = NULL;
}

static const sv_jcustom config_codec = {decode_config, free_config};

static const sv_jfield proc_fields[] = {
    SV_JINT(sv_proc_ident, pid, "pid", 1, INT32_MAX),
    SV_JINT(sv_proc_ident, start_time, "start_time", 0, INT64_MAX),
    SV_JEND,
};
static const sv_jschema proc_schema = {sizeof(sv_proc_ident), proc_fields};

static const sv_jfield paths_fields[] = {
    SV_JSTR(sv_vm_paths, dir, "dir"),
    SV_JSTR(sv_vm_paths, qmp_socket, "qmp_socket"),
    SV_JSTR(sv_vm_paths, console_socket, "console_socket"),
    SV_JSTR(sv_vm_paths, exec_socket, "exec_socket"),
    SV_JSTR(sv_vm_paths, qemu_log, "qemu_log"),
    SV_JSTR(sv_vm_paths, virtiofsd_socket, "virtiofsd_socket"),
    SV_JEND,
};
static const sv_jschema paths_schema = {sizeof(sv_vm_paths), paths_fields};

/* ---- hot-plugged devices ---- */

static const char *const dev_state_names[] = {"adding", "attached", "removing", NULL};
_Static_assert(SV_ARRAY_SIZE(dev_state_names) == SV__VM_DEV_STATE_MAX + 1, "device state names");

static const sv_jfield dev_slot_fields[] = {
    SV_JSTR(sv_vm_dev_slot, qemu_id, "qemu_id"),
    SV_JSTR(sv_vm_dev_slot, bus, "bus"),
    SV_JSTR(sv_vm_dev_slot, addr, "addr"),
    SV_JSTR(sv_vm_dev_slot, guest, "guest"),
    SV_JSTR(sv_vm_dev_slot, host, "host"),
    SV_JEND,
};
static const sv_jschema dev_slot_schema = {sizeof(sv_vm_dev_slot), dev_slot_fields};

static const sv_jfield dev_record_fields[] = {
    SV_JSTR(sv_vm_dev_record, id, "id"),
    SV_JSTR(sv_vm_dev_record, kind, "kind"),
    SV_JSTR(sv_vm_dev_record, host, "host"),
    SV_JBOOL(sv_vm_dev_record, read_only, "read_only"),
    SV_JENUM(sv_vm_dev_record, state, "state", dev_state_names),
    SV_JARR(sv_vm_dev_record, slots, n_slots, "slots", &dev_slot_schema),
    SV_JEND,
};
static const sv_jschema dev_record_schema = {sizeof(sv_vm_dev_record), dev_record_fields};

void sv_vm_dev_record_clear(sv_vm_dev_record *r)
{
    if (!r)
        return;
    sv_json_free(&dev_record_schema, r);
    memset(r, 0, sizeof(*r));
}

void sv_vm_state_clear_devices(sv_vm_state *st)
{
    for (size_t i = 0; i < st->n_devices; i++)
        sv_vm_dev_record_clear(&st->devices[i]);
    free(st->devices);
    st->devices = NULL;
    st->n_devices = 0;
}

/* Every record names itself and its QEMU devices. */
static int check_devices(const sv_vm_state *st, sv_error **err)
{
    for (size_t i = 0; i < st->n_devices; i++) {
        const sv_vm_dev_record *r = &st->devices[i];
        if (!r->id || !r->kind)
            return sv_error_set(err, EINVAL, "devices[%zu]: %s: is required", i,
                                r->id ? "kind" : "id");
        for (size_t j = 0; j < r->n_slots; j++)
            if (!r->slots[j].qemu_id)
                return sv_error_set(err, EINVAL, "devices[%zu].slots[%zu].qemu_id: is required",
                                    i, j);
    }
    return 0;
}

/* ---- resize: hot-plugged memory and vCPUs ---- */

static const sv_jfield dimm_fields[] = {
    SV_JSTR(sv_vm_dimm, id, "id"),
    SV_JSTR(sv_vm_dimm, memdev, "memdev"),
    SV_JINT(sv_vm_dimm, size_mib, "size_mib", 1, INT64_MAX),
    SV_JEND,
};
static const sv_jschema dimm_schema = {sizeof(sv_vm_dimm), dimm_fields};

static const sv_jfield resized_fields[] = {
    SV_JARR(sv_vm_resized, dimms, n_dimms, "dimms", &dimm_schema),
    SV_JSTRV(sv_vm_resized, vcpus, "vcpus"),
    SV_JEND,
};
static const sv_jschema resized_schema = {sizeof(sv_vm_resized), resized_fields};

void sv_vm_resized_clear(sv_vm_resized *r)
{
    if (!r)
        return;
    sv_json_free(&resized_schema, r);
    memset(r, 0, sizeof(*r));
}

static int check_resized(const sv_vm_state *st, sv_error **err)
{
    for (size_t i = 0; i < st->resized.n_dimms; i++) {
        const sv_vm_dimm *d = &st->resized.dimms[i];
        if (!d->id || !d->memdev)
            return sv_error_set(err, EINVAL, "resized.dimms[%zu].%s: is required", i,
                                d->id ? "memdev" : "id");
    }
    return 0;
}

static const sv_jfield state_fields[] = {
    SV_JINT(sv_vm_state, version, "version", 1, INT64_MAX),
    SV_JSTR(sv_vm_state, id, "id"),
    SV_JENUM(sv_vm_state, state, "state", run_state_names),
    SV_JSTR(sv_vm_state, arch, "arch"),
    SV_JINT(sv_vm_state, created, "created", 0, INT64_MAX),
    SV_JOBJ(sv_vm_state, qemu, "qemu", &proc_schema),
    SV_JOBJ(sv_vm_state, virtiofsd, "virtiofsd", &proc_schema),
    SV_JOBJ(sv_vm_state, paths, "paths", &paths_schema),
    SV_JCUSTOM(sv_vm_state, config, "config", &config_codec),
    SV_JSTR(sv_vm_state, hypervisor, "hypervisor"),
    SV_JSTR(sv_vm_state, from, "from"),
    SV_JBOOL(sv_vm_state, template_memory, "template_memory"),
    SV_JARR(sv_vm_state, devices, n_devices, "devices", &dev_record_schema),
    SV_JOBJ(sv_vm_state, resized, "resized", &resized_schema),
    SV_JEND,
};
static const sv_jschema state_schema = {sizeof(sv_vm_state), state_fields};

void sv_vm_state_clear(sv_vm_state *st)
{
    if (!st)
        return;
    sv_json_free(&state_schema, st);
    memset(st, 0, sizeof(*st));
}

void sv_vm_state_free(sv_vm_state *st)
{
    sv_vm_state_clear(st);
    free(st);
}

sv_vm_run_state sv_vm_state_observed(const sv_vm_state *st)
{
    if (st->state != SV_VM_RUNNING && st->state != SV_VM_PAUSED)
        return st->state;
    if (st->qemu.pid <= 0 || st->qemu.pid > INT32_MAX)
        return SV_VM_STOPPED;
    int r = sv_pid_alive((pid_t)st->qemu.pid, st->qemu.start_time, NULL);
    return r == 0 ? SV_VM_STOPPED : st->state;
}

int sv_vm_state_parse(const char *text, size_t len, const char *expect_id, sv_vm_state **out,
                      sv_error **err)
{
    _cleanup_json_ json_object *obj = NULL;
    int r = sv_json_parse(text, len, &obj, err);
    if (r < 0)
        return r;
    if (json_object_get_type(obj) != json_type_object)
        return sv_error_set(err, EINVAL, "expected an object, got %s",
                            sv_json_type_name(json_object_get_type(obj)));
    /* the version first: a newer sandvm's keys would otherwise read as "unknown key" */
    json_object *v;
    if (!json_object_object_get_ex(obj, "version", &v) || json_object_get_type(v) != json_type_int)
        return sv_error_set(err, EINVAL, "version: expected an integer");
    int64_t version = json_object_get_int64(v);
    if (version > SV_VM_STATE_VERSION)
        return sv_error_set(
            err, EINVAL,
            "version: %lld is newer than this sandvm understands (%d); use a newer sandvm",
            (long long)version, SV_VM_STATE_VERSION);
    _cleanup_vm_state_ sv_vm_state *st = calloc(1, sizeof(*st));
    if (!st)
        return sv_error_set(err, ENOMEM, "out of memory");
    if ((r = sv_json_decode(&state_schema, obj, st, "", err)) < 0 ||
        (r = check_devices(st, err)) < 0 || (r = check_resized(st, err)) < 0)
        return r;
    if (!st->id)
        return sv_error_set(err, EINVAL, "id: is required");
    if (!json_object_object_get_ex(obj, "state", &v) || !v)
        return sv_error_set(err, EINVAL, "state: is required");
    if ((r = sv_vm_id_check(st->id, err)) < 0)
        return sv_error_prefix(err, "id");
    if (expect_id && strcmp(st->id, expect_id) != 0) {
        _cleanup_free_ char *q = quote_id(st->id);
        return sv_error_set(err, EINVAL, "id: names vm %s, not the vm of this directory",
                            q ? q : "?");
    }
    *out = TAKE_PTR(st);
    return 0;
}

static int add(json_object *o, const char *key, json_object *v)
{
    if (!v)
        return -ENOMEM;
    if (json_object_object_add(o, key, v) < 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

static int add_proc(json_object *o, const char *key, const sv_proc_ident *p)
{
    if (p->pid == 0)
        return 0;
    json_object *po = json_object_new_object();
    if (!po)
        return -ENOMEM;
    int r = add(o, key, po);
    if (r < 0)
        return r;
    if (add(po, "pid", json_object_new_int64(p->pid)) < 0 ||
        add(po, "start_time", json_object_new_int64(p->start_time)) < 0)
        return -ENOMEM;
    return 0;
}

static int add_str(json_object *o, const char *key, const char *s)
{
    return s ? add(o, key, json_object_new_string(s)) : 0;
}

static json_object *dev_record_json(const sv_vm_dev_record *r)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    json_object *slots = json_object_new_array();
    if (!o || !slots || json_object_object_add(o, "slots", slots) < 0) {
        json_object_put(slots);
        return NULL;
    }
    if (add_str(o, "id", r->id) < 0 || add_str(o, "kind", r->kind) < 0 ||
        add_str(o, "host", r->host) < 0 ||
        (r->read_only && add(o, "read_only", json_object_new_boolean(true)) < 0) ||
        add_str(o, "state", dev_state_names[r->state]) < 0)
        return NULL;
    for (size_t i = 0; i < r->n_slots; i++) {
        const sv_vm_dev_slot *sl = &r->slots[i];
        json_object *so = json_object_new_object();
        if (!so || json_object_array_add(slots, so) < 0) {
            json_object_put(so);
            return NULL;
        }
        if (add_str(so, "qemu_id", sl->qemu_id) < 0 || add_str(so, "bus", sl->bus) < 0 ||
            add_str(so, "addr", sl->addr) < 0 || add_str(so, "guest", sl->guest) < 0 ||
            add_str(so, "host", sl->host) < 0)
            return NULL;
    }
    return TAKE_PTR(o);
}

static int add_devices(json_object *o, const sv_vm_state *st)
{
    if (!st->n_devices)
        return 0;
    json_object *arr = json_object_new_array();
    int r = add(o, "devices", arr);
    if (r < 0)
        return r;
    for (size_t i = 0; i < st->n_devices; i++) {
        json_object *d = dev_record_json(&st->devices[i]);
        if (!d || json_object_array_add(arr, d) < 0) {
            json_object_put(d);
            return -ENOMEM;
        }
    }
    return 0;
}

static int add_resized(json_object *o, const sv_vm_state *st)
{
    const sv_vm_resized *rz = &st->resized;
    if (!rz->n_dimms && !(rz->vcpus && rz->vcpus[0]))
        return 0;
    json_object *ro = json_object_new_object();
    int r = add(o, "resized", ro);
    if (r < 0)
        return r;
    if (rz->n_dimms) {
        json_object *arr = json_object_new_array();
        if ((r = add(ro, "dimms", arr)) < 0)
            return r;
        for (size_t i = 0; i < rz->n_dimms; i++) {
            const sv_vm_dimm *d = &rz->dimms[i];
            json_object *dj = json_object_new_object();
            if (!dj || json_object_array_add(arr, dj) < 0) {
                json_object_put(dj);
                return -ENOMEM;
            }
            if (add_str(dj, "id", d->id) < 0 || add_str(dj, "memdev", d->memdev) < 0 ||
                add(dj, "size_mib", json_object_new_int64(d->size_mib)) < 0)
                return -ENOMEM;
        }
    }
    if (rz->vcpus && rz->vcpus[0]) {
        json_object *arr = json_object_new_array();
        if ((r = add(ro, "vcpus", arr)) < 0)
            return r;
        for (size_t i = 0; rz->vcpus[i]; i++) {
            json_object *v = json_object_new_string(rz->vcpus[i]);
            if (!v || json_object_array_add(arr, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
            }
        }
    }
    return 0;
}

int sv_vm_state_format(const sv_vm_state *st, const char *id, char **text_out, sv_error **err)
{
    if (!id)
        id = st->id;
    int r = sv_vm_id_check(id, err);
    if (r < 0)
        return r;
    if ((unsigned)st->state >= SV__VM_STATE_MAX)
        return sv_error_set(err, EINVAL, "vm %s: state %d out of range", id, (int)st->state);
    if (st->qemu.pid < 0 || st->qemu.pid > INT32_MAX || st->virtiofsd.pid < 0 ||
        st->virtiofsd.pid > INT32_MAX || st->qemu.start_time < 0 || st->virtiofsd.start_time < 0)
        return sv_error_set(err, EINVAL,
                            "vm %s: a recorded process has an invalid pid or start time", id);
    _cleanup_json_ json_object *o = json_object_new_object();
    json_object *paths = json_object_new_object();
    const sv_vm_paths *p = &st->paths;
    bool ok = o && paths && add(o, "version", json_object_new_int64(SV_VM_STATE_VERSION)) == 0 &&
              add_str(o, "id", id) == 0 && add_str(o, "state", run_state_names[st->state]) == 0 &&
              add_str(o, "arch", st->arch) == 0 &&
              add(o, "created", json_object_new_int64(st->created)) == 0 &&
              add_proc(o, "qemu", &st->qemu) == 0 &&
              add_proc(o, "virtiofsd", &st->virtiofsd) == 0 && add_str(paths, "dir", p->dir) == 0 &&
              add_str(paths, "qmp_socket", p->qmp_socket) == 0 &&
              add_str(paths, "console_socket", p->console_socket) == 0 &&
              add_str(paths, "exec_socket", p->exec_socket) == 0 &&
              add_str(paths, "qemu_log", p->qemu_log) == 0 &&
              add_str(paths, "virtiofsd_socket", p->virtiofsd_socket) == 0 &&
              add(o, "paths", TAKE_PTR(paths)) == 0 &&
              (!st->config || add(o, "config", json_object_get(st->config)) == 0) &&
              add_str(o, "hypervisor", st->hypervisor) == 0 && add_str(o, "from", st->from) == 0 &&
              (!st->template_memory ||
               add(o, "template_memory", json_object_new_boolean(true)) == 0) &&
              add_devices(o, st) == 0 && add_resized(o, st) == 0;
    json_object_put(paths);
    if (!ok)
        return sv_error_set(err, ENOMEM, "out of memory");
    const char *s =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s || asprintf(text_out, "%s\n", s) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    return 0;
}

/* ---- the root ---------------------------------------------------------------- */

/* Opens an existing directory entry, refusing symlinks and anything another
 * user could write into. `what` names it in messages. */
static int open_private_dir(int at, const char *name, const char *shown, const char *what,
                            sv_error **err)
{
    _cleanup_close_ int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        struct stat st;
        if ((e == ENOTDIR || e == ELOOP) && fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISLNK(st.st_mode))
                return sv_error_set(err, ELOOP, "%s: %s is a symlink; refusing to follow it", what,
                                    shown);
            return sv_error_set(err, ENOTDIR, "%s: %s is not a directory", what, shown);
        }
        return sv_error_errno(err, e, "%s: opening %s", what, shown);
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return sv_error_errno(err, errno, "%s: %s", what, shown);
    if (st.st_uid != geteuid())
        return sv_error_set(err, EPERM,
                            "%s: %s is owned by uid %u, not by us (uid %u); refusing it", what,
                            shown, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return sv_error_set(err, EPERM,
                            "%s: %s is writable by other users (mode %04o); refusing it", what,
                            shown, (unsigned)(st.st_mode & 07777));
    return TAKE_FD(fd);
}

int sv_state_root_open(const char *path, sv_state_root **out, sv_error **err)
{
    if (!path)
        path = SV_STATE_ROOT_DEFAULT;
    if (path[0] != '/')
        return sv_error_set(err, EINVAL, "state root %s: not an absolute path", path);
    _cleanup_free_ char *p = strdup(path);
    if (!p)
        return sv_error_set(err, ENOMEM, "out of memory");
    /* a trailing slash would make the kernel follow a symlink at the last component */
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
        p[n - 1] = '\0';
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return sv_error_errno(err, errno, "creating state root %s", p);
    int fd = open_private_dir(AT_FDCWD, p, p, "state root", err);
    if (fd < 0)
        return fd;
    sv_state_root *root = calloc(1, sizeof(*root));
    if (!root) {
        close(fd);
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    root->fd = fd;
    root->path = TAKE_PTR(p);
    *out = root;
    return 0;
}

const char *sv_state_root_path(const sv_state_root *root)
{
    return root->path;
}

void sv_state_root_free(sv_state_root *root)
{
    if (!root)
        return;
    if (root->fd >= 0)
        close(root->fd);
    free(root->path);
    free(root);
}

/* ---- one VM's directory ------------------------------------------------------------- */

static char *vm_what(const char *id)
{
    char *s = NULL;
    return asprintf(&s, "vm %s", id) < 0 ? NULL : s;
}

void sv_state_dir_free(sv_state_dir *d)
{
    if (!d)
        return;
    sv_lock_release(&d->lock_fd);
    if (d->fd >= 0)
        close(d->fd);
    if (d->root_fd >= 0)
        close(d->root_fd);
    free(d->id);
    free(d->path);
    free(d);
}

static sv_state_dir *dir_new(const sv_state_root *root, const char *id, int fd)
{
    sv_state_dir *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->fd = fd;
    d->lock_fd = -1;
    d->root_fd = fcntl(root->fd, F_DUPFD_CLOEXEC, 3);
    d->id = strdup(id);
    if (d->root_fd < 0 || !d->id ||
        asprintf(&d->path, "%s%s%s", root->path, strcmp(root->path, "/") ? "/" : "", id) < 0) {
        d->path = NULL;
        d->fd = -1; /* the caller still owns fd */
        sv_state_dir_free(d);
        return NULL;
    }
    return d;
}

const char *sv_state_dir_id(const sv_state_dir *d)
{
    return d->id;
}

const char *sv_state_dir_path(const sv_state_dir *d)
{
    return d->path;
}

int sv_state_dir_fd(const sv_state_dir *d)
{
    return d->fd;
}

bool sv_state_dir_locked(const sv_state_dir *d)
{
    return d->lock_fd >= 0;
}

char *sv_state_dir_file(const sv_state_dir *d, const char *name)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", d->path, name) < 0 ? NULL : s;
}

int sv_state_dir_open(const sv_state_root *root, const char *id, sv_state_dir **out, sv_error **err)
{
    int r = sv_vm_id_check(id, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *what = vm_what(id);
    _cleanup_free_ char *shown = NULL;
    if (!what || asprintf(&shown, "%s/%s", root->path, id) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    struct stat st;
    if (fstatat(root->fd, id, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
        return sv_error_set(err, ENOENT, "vm %s does not exist", id);
    _cleanup_close_ int fd = open_private_dir(root->fd, id, shown, what, err);
    if (fd < 0)
        return fd;
    sv_state_dir *d = dir_new(root, id, fd);
    if (!d)
        return sv_error_set(err, ENOMEM, "out of memory");
    TAKE_FD(fd);
    *out = d;
    return 0;
}

/* True when <root>/<id> is still the directory `d` has open. */
static bool still_in_place(const sv_state_dir *d)
{
    struct stat a, b;
    return fstat(d->fd, &a) == 0 && fstatat(d->root_fd, d->id, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int sv_state_dir_lock(sv_state_dir *d, int timeout_ms, sv_error **err)
{
    if (d->lock_fd >= 0)
        return 0;
    _cleanup_free_ char *what = vm_what(d->id);
    if (!what)
        return sv_error_set(err, ENOMEM, "out of memory");
    int fd = sv_lock_acquire(d->fd, SV_STATE_LOCK_FILE, what, 0, timeout_ms, err);
    if (fd < 0)
        return fd;
    /* the holder we waited for may have removed the VM (renaming the
     * directory away first) and someone may have created a new one */
    if (!still_in_place(d)) {
        close(fd);
        return sv_error_set(err, ENOENT, "vm %s was removed while waiting for its lock", d->id);
    }
    d->lock_fd = fd;
    return 0;
}

void sv_state_dir_unlock(sv_state_dir *d)
{
    sv_lock_release(&d->lock_fd);
}

int sv_vm_state_save(sv_state_dir *d, const sv_vm_state *st, sv_error **err)
{
    if (d->lock_fd < 0)
        return sv_error_set(err, EINVAL, "vm %s: saving state without holding its lock", d->id);
    if (st->id && strcmp(st->id, d->id) != 0)
        return sv_error_set(err, EINVAL, "vm %s: saving the state of another vm", d->id);
    _cleanup_free_ char *text = NULL;
    int r = sv_vm_state_format(st, d->id, &text, err);
    if (r < 0)
        return r;
    r = sv_write_file_atomic(d->fd, SV_STATE_FILE, text, strlen(text), 0600, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", d->id);
    return 0;
}

int sv_vm_state_load(sv_state_dir *d, sv_vm_state **out, sv_error **err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = sv_read_file_at(d->fd, SV_STATE_FILE, SV_STATE_MAX_BYTES, &text, &len, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s", d->id);
    r = sv_vm_state_parse(text, len, d->id, out, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s: %s/%s", d->id, d->path, SV_STATE_FILE);
    return 0;
}

/* Unlinks the entries of `fd` that sandvm creates (never a directory, never
 * following a symlink), the lock file last. Returns how many remain that
 * sandvm did not create; their names go to `foreign` when not NULL. With
 * `dry_run`, only counts. */
static int scan_entries(int fd, bool dry_run, sv_strbuf *foreign)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return -ENOMEM;
    }
    int n_foreign = 0;
    bool lock_seen = false;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        bool is_dir =
            e->d_type == DT_DIR ||
            (e->d_type == DT_UNKNOWN && fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
             S_ISDIR(st.st_mode));
        if (is_dir || !own_entry_name(e->d_name)) {
            if (foreign && n_foreign < 8) {
                _cleanup_free_ char *q = quote_id(e->d_name);
                sv_strbuf_appendf(foreign, "%s%s", n_foreign ? ", " : "", q ? q : "?");
            }
            n_foreign++;
            continue;
        }
        if (strcmp(e->d_name, SV_STATE_LOCK_FILE) == 0) {
            lock_seen = true;
            continue;
        }
        if (!dry_run)
            unlinkat(fd, e->d_name, 0);
    }
    closedir(dir);
    if (!dry_run && lock_seen)
        unlinkat(fd, SV_STATE_LOCK_FILE, 0);
    return n_foreign;
}

/* Renames root/`from` to a fresh hidden name; *to receives it. */
static int rename_away(int root_fd, const char *from, const char *id, char *to, size_t tosize)
{
    for (int i = 0; i < 16; i++) {
        char rnd[13];
        sv_random_hex(rnd, 6);
        snprintf(to, tosize, SV_TMP_PREFIX "%s.%s", id, rnd);
        if (renameat2(root_fd, from, root_fd, to, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno == EINVAL) { /* filesystem without RENAME_NOREPLACE */
            struct stat st;
            if (fstatat(root_fd, to, &st, AT_SYMLINK_NOFOLLOW) == 0)
                continue;
            if (renameat(root_fd, from, root_fd, to) == 0)
                return 0;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

int sv_state_dir_remove(sv_state_dir *d, sv_error **err)
{
    if (d->lock_fd < 0)
        return sv_error_set(err, EINVAL, "removing vm %s: not holding its lock", d->id);
    _cleanup_strbuf_ sv_strbuf foreign = SV_STRBUF_INIT;
    int n = scan_entries(d->fd, true, &foreign);
    if (n < 0)
        return sv_error_errno(err, -n, "removing vm %s: reading %s", d->id, d->path);
    if (n > 0)
        return sv_error_set(err, ENOTEMPTY,
                            "removing vm %s: %s holds %d %s sandvm did not create (%s%s); "
                            "remove %s first",
                            d->id, d->path, n, n == 1 ? "entry" : "entries",
                            foreign.s ? foreign.s : "", n > 8 ? ", ..." : "",
                            n == 1 ? "it" : "them");
    if (!still_in_place(d))
        return sv_error_set(err, ENOENT, "removing vm %s: it was already removed", d->id);
    char away[NAME_MAX + 1];
    int r = rename_away(d->root_fd, d->id, d->id, away, sizeof(away));
    if (r < 0)
        return sv_error_errno(err, -r, "removing vm %s: renaming %s away", d->id, d->path);
    /* from here the id is free; what follows only tidies the hidden name */
    scan_entries(d->fd, false, NULL);
    if (unlinkat(d->root_fd, away, AT_REMOVEDIR) < 0) {
        int e = errno;
        _cleanup_free_ char *shown = sv_fd_path(d->root_fd, away);
        return sv_error_errno(err, e, "removing vm %s: removing its directory (now %s)", d->id,
                              shown ? shown : away);
    }
    fsync(d->root_fd);
    return 0;
}

/* Removes crash leftovers: hidden SV_TMP_PREFIX directories of creates and
 * removes that did not finish, once nobody holds their lock. */
static void sweep(const sv_state_root *root)
{
    int dfd = openat(root->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return;
    }
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, SV_TMP_PREFIX, strlen(SV_TMP_PREFIX)) != 0)
            continue;
        struct stat st;
        if (fstatat(root->fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
            st.st_uid != geteuid() || now - st.st_mtime < SWEEP_MIN_AGE_S)
            continue;
        _cleanup_close_ int fd =
            openat(root->fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        _cleanup_close_ int lock = sv_lock_acquire(fd, SV_STATE_LOCK_FILE, "leftover", 0, 0, NULL);
        if (lock == -ETIMEDOUT)
            continue; /* someone is still working in it */
        /* a foreign entry means someone put it there on purpose: leave all of it */
        if (scan_entries(fd, true, NULL) == 0 && scan_entries(fd, false, NULL) == 0)
            unlinkat(root->fd, e->d_name, AT_REMOVEDIR);
    }
    closedir(dir);
}

static int exists_error(sv_error **err, const char *id)
{
    return sv_error_set(err, EEXIST, "vm %s already exists", id);
}

/* Removes the half-made directory root/`tmp` (open as `fd`). */
static void discard(int root_fd, int fd, const char *tmp)
{
    scan_entries(fd, false, NULL);
    unlinkat(root_fd, tmp, AT_REMOVEDIR);
}

/* Moves root/`tmp` to root/`id` unless `id` exists. */
static int rename_into_place(int root_fd, const char *tmp, const char *id)
{
    if (renameat2(root_fd, tmp, root_fd, id, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL)
        return errno == ENOTEMPTY ? -EEXIST : -errno;
    /* a filesystem without RENAME_NOREPLACE: check, then rename (a rename
     * over a directory fails unless it is empty) */
    struct stat st;
    if (fstatat(root_fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return -EEXIST;
    if (renameat(root_fd, tmp, root_fd, id) < 0)
        return errno == ENOTEMPTY ? -EEXIST : -errno;
    return 0;
}

int sv_state_dir_create(const sv_state_root *root, const sv_vm_state *initial, sv_state_dir **out,
                        sv_error **err)
{
    const char *id = initial->id;
    int r = sv_vm_id_check(id, err);
    if (r < 0)
        return r;
    sweep(root);
    struct stat st;
    if (fstatat(root->fd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return exists_error(err, id);
    _cleanup_free_ char *what = vm_what(id);
    if (!what)
        return sv_error_set(err, ENOMEM, "out of memory");

    char tmp[NAME_MAX + 1];
    int i = 0;
    for (; i < 16; i++) {
        char rnd[13];
        sv_random_hex(rnd, 6);
        snprintf(tmp, sizeof(tmp), SV_TMP_PREFIX "%s.%s", id, rnd);
        if (mkdirat(root->fd, tmp, 0700) == 0)
            break;
        if (errno != EEXIST)
            return sv_error_errno(err, errno, "creating vm %s: creating a directory in %s", id,
                                  root->path);
    }
    if (i == 16)
        return sv_error_errno(err, EEXIST, "creating vm %s: creating a directory in %s", id,
                              root->path);
    int fd = open_private_dir(root->fd, tmp, tmp, what, err);
    if (fd < 0) {
        unlinkat(root->fd, tmp, AT_REMOVEDIR);
        return fd;
    }
    _cleanup_state_dir_ sv_state_dir *d = dir_new(root, id, fd);
    if (!d) {
        discard(root->fd, fd, tmp);
        close(fd);
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    r = d->lock_fd = sv_lock_acquire(fd, SV_STATE_LOCK_FILE, what, SV_LOCK_CREATE, 0, err);
    if (r >= 0)
        r = sv_vm_state_save(d, initial, err);
    if (r >= 0 && (r = rename_into_place(root->fd, tmp, id)) < 0) {
        if (r == -EEXIST)
            exists_error(err, id);
        else
            sv_error_errno(err, -r, "creating vm %s: renaming %s/%s into place", id, root->path,
                           tmp);
    }
    if (r < 0) {
        discard(root->fd, fd, tmp);
        return r;
    }
    /* the new name is durable only once the root is */
    if (fsync(root->fd) < 0) {
        int e = errno;
        return sv_error_errno(err, e, "creating vm %s: fsync of %s", id, root->path);
    }
    *out = TAKE_PTR(d);
    return 0;
}

/* ---- listing ------------------------------------------------------------------ */

void sv_state_entries_free(sv_state_entry *entries, size_t n)
{
    for (size_t i = 0; entries && i < n; i++) {
        free(entries[i].id);
        sv_vm_state_free(entries[i].state);
        free(entries[i].error);
    }
    free(entries);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const sv_state_entry *)a)->id, ((const sv_state_entry *)b)->id);
}

/* Fills `ent` for the VM directory `id`: its state, or why there is none. */
static int list_one(const sv_state_root *root, const char *id, sv_state_entry *ent)
{
    _cleanup_error_ sv_error *e = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    ent->id = strdup(id);
    if (!ent->id)
        return -ENOMEM;
    if (sv_state_dir_open(root, id, &d, &e) < 0 || sv_vm_state_load(d, &ent->state, &e) < 0) {
        if (sv_error_code(e) == ENOMEM)
            return -ENOMEM;
        ent->error = strdup(sv_error_message(e));
        if (!ent->error)
            return -ENOMEM;
    }
    return 0;
}

int sv_state_list(const sv_state_root *root, sv_state_entry **out, size_t *n_out, sv_error **err)
{
    int dfd = openat(root->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return sv_error_errno(err, errno, "listing %s", root->path);
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return sv_error_errno(err, errno, "listing %s", root->path);
    }
    sv_state_entry *v = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *e;
    for (errno = 0; (e = readdir(dir)); errno = 0) {
        struct stat st;
        if (sv_vm_id_check(e->d_name, NULL) < 0 ||
            fstatat(root->fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            sv_state_entry *nv = realloc(v, ncap * sizeof(*nv));
            if (!nv) {
                r = -ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        memset(&v[n], 0, sizeof(v[n]));
        r = list_one(root, e->d_name, &v[n++]);
        if (r < 0)
            break;
    }
    int rerr = errno;
    closedir(dir);
    if (r == 0 && !e && rerr)
        r = -rerr;
    if (r < 0) {
        sv_state_entries_free(v, n);
        if (r == -ENOMEM)
            return sv_error_set(err, ENOMEM, "out of memory");
        return sv_error_errno(err, -r, "listing %s", root->path);
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), entry_cmp);
    *out = v;
    *n_out = n;
    return 0;
}
