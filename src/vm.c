/*
 * The public VM lifecycle (include/sandvm/vm.h): state directories, locks
 * and state transitions here; everything that talks to a VMM behind the
 * hypervisor vtable (hypervisor.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "conf/vm_config.h"
#include "hypervisor.h"
#include "sandvm/vm.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/lock.h"
#include "util/sock.h"

#define LOCK_TIMEOUT_DEFAULT_MS 10000

struct sv_vm {
    sv_state_root *root;
    sv_state_dir *dir;
    int lock_timeout_ms;
    int vmm_timeout_ms; /* <= 0: the backend's default */
};

static int oom(sv_error **err)
{
    return sv_error_set(err, ENOMEM, "out of memory");
}

static bool live_state(sv_vm_run_state s)
{
    return s == SV_VM_RUNNING || s == SV_VM_PAUSED;
}

/* ---- handles ------------------------------------------------------------------ */

static sv_vm *vm_new(sv_state_root *root, sv_state_dir *dir)
{
    sv_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return NULL;
    vm->root = root;
    vm->dir = dir;
    vm->lock_timeout_ms = LOCK_TIMEOUT_DEFAULT_MS;
    return vm;
}

void sv_vm_close(sv_vm *vm)
{
    if (!vm)
        return;
    sv_state_dir_free(vm->dir);
    sv_state_root_free(vm->root);
    free(vm);
}

const char *sv_vm_id(const sv_vm *vm)
{
    return sv_state_dir_id(vm->dir);
}

void sv_vm_set_lock_timeout(sv_vm *vm, int timeout_ms)
{
    vm->lock_timeout_ms = timeout_ms;
}

void sv_vm_set_vmm_timeout(sv_vm *vm, int timeout_ms)
{
    vm->vmm_timeout_ms = timeout_ms;
}

int sv_vm_open(const char *root, const char *id, sv_vm **out, sv_error **err)
{
    if (!out)
        return sv_error_set(err, EINVAL, "sv_vm_open: NULL argument");
    int r = sv_vm_id_check(id, err);
    if (r < 0)
        return r;
    _cleanup_state_root_ sv_state_root *rt = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    if ((r = sv_state_root_open(root, &rt, err)) < 0 || (r = sv_state_dir_open(rt, id, &d, err)) < 0)
        return r;
    sv_vm *vm = vm_new(rt, d);
    if (!vm)
        return oom(err);
    rt = NULL;
    d = NULL;
    *out = vm;
    return 0;
}

/* ---- a call on one VM: lock, state, config, backend ------------------------------- */

typedef struct session {
    sv_vm *vm;
    sv_vm_state *st;
    sv_vm_config *config;
    const sv_hypervisor_ops *hv;
    sv_hv_vm h;
} session;

static void session_end(session *s)
{
    sv_vm_config_free(s->config);
    sv_vm_state_free(s->st);
    if (s->vm)
        sv_state_dir_unlock(s->vm->dir);
    memset(s, 0, sizeof(*s));
}

#define _cleanup_session_ __attribute__((cleanup(session_end)))

/* Parses the config a state records and finds its backend. */
static int state_config(const char *id, const sv_vm_state *st, sv_vm_config **config,
                        const sv_hypervisor_ops **hv, sv_error **err)
{
    *hv = sv_hypervisor_get(st->hypervisor);
    if (!*hv)
        return sv_error_set(err, EINVAL, "vm %s: hypervisor \"%s\" is not one this sandvm has", id,
                            st->hypervisor);
    if (!st->config)
        return sv_error_set(err, EINVAL, "vm %s: its state records no config", id);
    int r = sv_vm_config_from_json(st->config, config, err);
    if (r < 0)
        return sv_error_prefix(err, "vm %s: its recorded config", id);
    return 0;
}

static int session_load(sv_vm *vm, session *s, sv_error **err)
{
    const char *id = sv_vm_id(vm);
    int r = sv_vm_state_load(vm->dir, &s->st, err);
    if (r < 0 || (r = state_config(id, s->st, &s->config, &s->hv, err)) < 0)
        return r;
    s->h = (sv_hv_vm){.id = id,
                      .dir = vm->dir,
                      .st = s->st,
                      .config = s->config,
                      .timeout_ms = vm->vmm_timeout_ms};
    return 0;
}

/* Takes the VM's lock (EBUSY when another sandvm holds it past the handle's
 * lock timeout) and loads what a call needs. */
static int session_begin(sv_vm *vm, session *s, sv_error **err)
{
    memset(s, 0, sizeof(*s));
    sv_error *e = NULL;
    int r = sv_state_dir_lock(vm->dir, vm->lock_timeout_ms, &e);
    if (r == -ETIMEDOUT) {
        r = sv_error_set(err, EBUSY, "%s", sv_error_message(e));
        sv_error_free(e);
        return r;
    }
    if (r < 0) {
        if (err && !*err)
            *err = e;
        else
            sv_error_free(e);
        return r;
    }
    s->vm = vm;
    return session_load(vm, s, err);
}

static int save_state(session *s, sv_error **err)
{
    return sv_vm_state_save(s->vm->dir, s->st, err);
}

/* The VM as its records and processes show it. */
static sv_hv_observed observe(session *s)
{
    sv_hv_observed o;
    s->hv->observe(&s->h, false, &o, NULL);
    return o;
}

/* "created", "stopped", "crashed"... for "vm X is not running (it is ...)". */
static const char *state_word(const sv_hv_observed *o)
{
    return o->crashed ? "crashed" : sv_vm_run_state_name(o->state);
}

/* The VM must be running or paused (with its processes alive). */
static int need_live(session *s, sv_error **err)
{
    sv_hv_observed o = observe(s);
    if (!live_state(o.state))
        return sv_error_set(err, EINVAL, "vm %s is not running (it is %s)", s->h.id,
                            state_word(&o));
    return 0;
}

/* ---- create ---------------------------------------------------------------------- */

/* config.json of a saved directory. */
typedef struct saved_vm {
    int64_t version;
    char *hypervisor;
    char *arch;
    bool template_memory;
    json_object *config;
} saved_vm;

static int decode_object(json_object *v, void *field, const char *path, sv_error **err)
{
    if (json_object_get_type(v) != json_type_object)
        return sv_error_set(err, EINVAL, "%s: expected an object, got %s", path,
                            sv_json_type_name(json_object_get_type(v)));
    *(json_object **)field = json_object_get(v);
    return 0;
}

static void free_object(void *field)
{
    json_object_put(*(json_object **)field);
    *(json_object **)field = NULL;
}

static const sv_jcustom object_codec = {decode_object, free_object};

static const sv_jfield saved_fields[] = {
    SV_JINT(saved_vm, version, "version", 1, INT64_MAX),
    SV_JSTR(saved_vm, hypervisor, "hypervisor"),
    SV_JSTR(saved_vm, arch, "arch"),
    SV_JBOOL(saved_vm, template_memory, "template_memory"),
    SV_JCUSTOM(saved_vm, config, "config", &object_codec),
    SV_JEND,
};
static const sv_jschema saved_schema = {sizeof(saved_vm), saved_fields};

/* Reads the saved directory `dir`: *abs its absolute path, *saved its config.json. */
static int load_saved(const char *dir, char **abs, saved_vm *saved, sv_error **err)
{
    _cleanup_free_ char *path = realpath(dir, NULL);
    if (!path)
        return sv_error_errno(err, errno, "from: %s", dir);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sv_error_errno(err, errno, "from: %s", path);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    int r = sv_read_file_at(fd, SV_SAVE_CONFIG, SV_STATE_MAX_BYTES, &text, &len, err);
    if (r < 0)
        return sv_error_prefix(err, "from: not a saved vm");
    _cleanup_json_ json_object *obj = NULL;
    if ((r = sv_json_parse(text, len, &obj, err)) < 0)
        return sv_error_prefix(err, "from: %s/%s", path, SV_SAVE_CONFIG);
    if (json_object_get_type(obj) != json_type_object)
        return sv_error_set(err, EINVAL, "from: %s/%s: expected an object", path, SV_SAVE_CONFIG);
    if ((r = sv_json_decode(&saved_schema, obj, saved, "", err)) < 0)
        return sv_error_prefix(err, "from: %s/%s", path, SV_SAVE_CONFIG);
    if (saved->version > SV_SAVE_VERSION)
        return sv_error_set(err, EINVAL,
                            "from: %s/%s: version %lld is newer than this sandvm understands",
                            path, SV_SAVE_CONFIG, (long long)saved->version);
    if (!saved->config || !saved->arch)
        return sv_error_set(err, EINVAL, "from: %s/%s: %s: is required", path, SV_SAVE_CONFIG,
                            saved->config ? "arch" : "config");
    struct stat st;
    if (fstatat(fd, SV_SAVE_STATE, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return sv_error_errno(err, errno, "from: %s/%s", path, SV_SAVE_STATE);
    if (!S_ISREG(st.st_mode))
        return sv_error_set(err, EINVAL, "from: %s/%s is not a regular file", path,
                            SV_SAVE_STATE);
    *abs = TAKE_PTR(path);
    return 0;
}

static int create_checked(const char *id, const sv_vm_create_opts *opts, sv_vm **out,
                          sv_error **err)
{
    if (opts->from && opts->config_json)
        return sv_error_set(err, EINVAL, "config_json and from exclude each other: a saved vm "
                                         "brings its config");
    if (!opts->from && !opts->config_json)
        return sv_error_set(err, EINVAL, "no config given (config_json or from)");
    if (opts->from && opts->template_memory)
        return sv_error_set(err, EINVAL,
                            "template_memory: a vm restored from a saved one maps the saved "
                            "memory (when it has any); it cannot have its own");
    _cleanup_json_ json_object *obj = NULL;
    _cleanup_free_ char *from = NULL;
    saved_vm saved = {0};
    int r;
    if (opts->from) {
        r = load_saved(opts->from, &from, &saved, err);
        obj = json_object_get(saved.config);
    } else {
        r = sv_json_parse_config(opts->config_json, opts->config_len, &obj, err);
        if (r < 0)
            sv_error_prefix(err, "config");
    }
    if (r < 0) {
        sv_json_free(&saved_schema, &saved);
        return r;
    }
    const sv_hypervisor_ops *hv = sv_hypervisor_get(saved.hypervisor);
    if (!hv) {
        r = sv_error_set(err, EINVAL, "from: saved by hypervisor \"%s\", which this sandvm lacks",
                         saved.hypervisor);
        sv_json_free(&saved_schema, &saved);
        return r;
    }
    _cleanup_(sv_vm_config_freep) sv_vm_config *config = NULL;
    const char *arch = NULL;
    sv_hv_check check = {.template_memory = opts->template_memory,
                         .from = from,
                         .from_template_memory = saved.template_memory};
    if ((r = sv_vm_config_from_json(obj, &config, err)) < 0 ||
        (r = hv->validate(config, &check, &arch, err)) < 0) {
        sv_json_free(&saved_schema, &saved);
        return r;
    }
    if (from && strcmp(arch, saved.arch) != 0) {
        r = sv_error_set(err, EINVAL, "from: %s was saved on %s; its config builds %s here", from,
                         saved.arch, arch);
        sv_json_free(&saved_schema, &saved);
        return r;
    }
    sv_json_free(&saved_schema, &saved);

    _cleanup_state_root_ sv_state_root *root = NULL;
    if ((r = sv_state_root_open(opts->root, &root, err)) < 0)
        return r;
    sv_vm_state st = {
        .id = (char *)id,
        .state = SV_VM_CREATED,
        .arch = (char *)arch,
        .created = (int64_t)time(NULL),
        .config = obj,
        .hypervisor = (char *)hv->name,
        .from = from,
        .template_memory = opts->template_memory || check.from_template_memory,
    };
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    if ((r = sv_state_dir_create(root, &st, &d, err)) < 0)
        return r;
    /* execs wait on this lock; made now, while nobody else can be waiting */
    int fd = openat(sv_state_dir_fd(d), SV_STATE_EXEC_LOCK_FILE,
                    O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = sv_error_errno(err, errno, "creating vm %s: %s/%s", id, sv_state_dir_path(d),
                           SV_STATE_EXEC_LOCK_FILE);
        sv_state_dir_remove(d, NULL);
        return r;
    }
    close(fd);
    sv_state_dir_unlock(d);
    sv_vm *vm = vm_new(root, d);
    if (!vm)
        return oom(err);
    root = NULL;
    d = NULL;
    *out = vm;
    return 0;
}

int sv_vm_create(const char *id, const sv_vm_create_opts *opts, sv_vm **out, sv_error **err)
{
    if (!opts || !out)
        return sv_error_set(err, EINVAL, "sv_vm_create: NULL argument");
    int r = sv_vm_id_check(id, err);
    if (r < 0)
        return r;
    r = create_checked(id, opts, out, err);
    if (r < 0 && r != -EEXIST)
        return sv_error_prefix(err, "creating vm %s", id);
    return r;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

int sv_vm_start(sv_vm *vm, const sv_vm_start_opts *opts, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0)
        return r;
    sv_hv_observed o = observe(&s);
    if (live_state(o.state))
        return sv_error_set(err, EALREADY, "vm %s is already %s", s.h.id,
                            sv_vm_run_state_name(o.state));
    if ((r = s.hv->start(&s.h, opts, err)) < 0)
        return r;
    return save_state(&s, err);
}

static int pause_resume(sv_vm *vm, bool pause, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_live(&s, err)) < 0)
        return r;
    r = pause ? s.hv->pause(&s.h, err) : s.hv->resume(&s.h, err);
    if (r < 0)
        return r;
    return save_state(&s, err);
}

int sv_vm_pause(sv_vm *vm, sv_error **err)
{
    return pause_resume(vm, true, err);
}

int sv_vm_resume(sv_vm *vm, sv_error **err)
{
    return pause_resume(vm, false, err);
}

int sv_vm_stop(sv_vm *vm, const sv_vm_stop_opts *opts, sv_error **err)
{
    static const sv_vm_stop_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0)
        return r;
    if (!live_state(s.st->state)) {
        /* nothing to stop; an interrupted start may have left a process */
        s.hv->cleanup(&s.h);
        return sv_error_set(err, EALREADY, "vm %s is not running (it is %s)", s.h.id,
                            sv_vm_run_state_name(s.st->state));
    }
    if ((r = s.hv->stop(&s.h, opts, err)) < 0)
        return r;
    s.st->state = SV_VM_STOPPED;
    if (opts->keep)
        return save_state(&s, err);
    return sv_state_dir_remove(vm->dir, err);
}

int sv_vm_delete(sv_vm *vm, bool force, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0)
        return r;
    sv_hv_observed o = observe(&s);
    if (live_state(o.state)) {
        if (!force)
            return sv_error_set(err, EINVAL, "vm %s is %s; stop it first", s.h.id,
                                sv_vm_run_state_name(o.state));
        sv_vm_stop_opts kill = {.force = true};
        if ((r = s.hv->stop(&s.h, &kill, err)) < 0)
            return r;
    }
    s.hv->cleanup(&s.h);
    return sv_state_dir_remove(vm->dir, err);
}

/* ---- save ---------------------------------------------------------------------------- */

/* Creates the save directory `dir` (mode 0700; it must not exist) and opens it. */
static int make_save_dir(const char *id, const char *dir, sv_error **err)
{
    if (!dir || !*dir)
        return sv_error_set(err, EINVAL, "saving vm %s: no directory given", id);
    if (strlen(dir) >= PATH_MAX)
        return sv_error_set(err, ENAMETOOLONG, "saving vm %s: directory name too long", id);
    if (mkdir(dir, 0700) < 0) {
        if (errno == EEXIST)
            return sv_error_set(err, EEXIST,
                                "saving vm %s: %s already exists (the save directory must be "
                                "new)",
                                id, dir);
        return sv_error_errno(err, errno, "saving vm %s: creating %s", id, dir);
    }
    /* what is at the name now must be the directory we just made, empty */
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return sv_error_errno(err, errno, "saving vm %s: opening %s", id, dir);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return sv_error_errno(err, errno, "saving vm %s: %s", id, dir);
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    bool empty = d != NULL;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = false;
    if (d)
        closedir(d);
    else if (dfd >= 0)
        close(dfd);
    if (st.st_uid != geteuid() || (st.st_mode & 077) || !empty)
        return sv_error_set(err, EPERM,
                            "saving vm %s: %s changed under us (it is not the empty private "
                            "directory just created); refusing it",
                            id, dir);
    return TAKE_FD(fd);
}

static int write_saved_config(session *s, int dirfd, const char *dir, sv_error **err)
{
    _cleanup_json_ json_object *o = json_object_new_object();
    bool own_memory = s->st->template_memory && !s->st->from;
    if (!o || json_object_object_add(o, "version", json_object_new_int64(SV_SAVE_VERSION)) < 0 ||
        json_object_object_add(o, "hypervisor", json_object_new_string(s->hv->name)) < 0 ||
        json_object_object_add(o, "arch", json_object_new_string(s->st->arch ? s->st->arch : "")) <
            0 ||
        json_object_object_add(o, "template_memory", json_object_new_boolean(own_memory)) < 0 ||
        json_object_object_add(o, "config", json_object_get(s->st->config)) < 0)
        return oom(err);
    const char *text =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text)
        return oom(err);
    int r = sv_write_file_atomic(dirfd, SV_SAVE_CONFIG, text, strlen(text), 0600, err);
    if (r < 0)
        return sv_error_prefix(err, "saving vm %s to %s", s->h.id, dir);
    return 0;
}

/* A saved VM restores into a QEMU built from its config alone: one that
 * has memory or vCPUs a resize added (as last recorded) cannot be saved. */
static int refuse_resized(session *s, sv_error **err)
{
    size_t vcpus = 0;
    while (s->st->resized.vcpus && s->st->resized.vcpus[vcpus])
        vcpus++;
    if (s->st->resized.n_dimms || vcpus)
        return sv_error_set(err, EINVAL,
                            "saving vm %s: it has %zu DIMM(s) and %zu vCPU(s) a resize "
                            "hot-plugged, which a VM restored from the save would lack; resize "
                            "it back to its boot size first",
                            s->h.id, s->st->resized.n_dimms, vcpus);
    return 0;
}

/* A saved VM restores into a QEMU built from its config alone, which lacks
 * what was hot-plugged: such a VM cannot be saved. */
static int refuse_hotplugged(session *s, sv_error **err)
{
    if (s->st->n_devices)
        return sv_error_set(err, EINVAL,
                            "saving vm %s: it has %zu hot-plugged device(s) (%s%s), which a VM "
                            "restored from the save would lack; unplug them first",
                            s->h.id, s->st->n_devices, s->st->devices[0].id,
                            s->st->n_devices > 1 ? ", ..." : "");
    return 0;
}

int sv_vm_save(sv_vm *vm, const char *dir, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_live(&s, err)) < 0 || (r = refuse_resized(&s, err)) < 0 ||
        (r = refuse_hotplugged(&s, err)) < 0)
        return r;
    _cleanup_close_ int dirfd = make_save_dir(s.h.id, dir, err);
    if (dirfd < 0)
        return dirfd;
    if ((r = write_saved_config(&s, dirfd, dir, err)) < 0 ||
        (r = s.hv->save(&s.h, dirfd, dir, err)) < 0 || fsync(dirfd) < 0) {
        if (r == 0)
            r = sv_error_errno(err, errno, "saving vm %s: fsync of %s", s.h.id, dir);
        unlinkat(dirfd, SV_SAVE_CONFIG, 0);
        rmdir(dir); /* only if empty: never anything we did not write */
        if (live_state(s.st->state))
            save_state(&s, NULL);
        return r;
    }
    s.st->state = SV_VM_PAUSED;
    return save_state(&s, err);
}

/* ---- observing ---------------------------------------------------------------------- */

static int fill_info(sv_vm_info *info, const char *id, const char *dir, const sv_vm_state *st,
                     const sv_hv_observed *o)
{
    memset(info, 0, sizeof(*info));
    info->id = strdup(id);
    info->dir = strdup(dir);
    if (!info->id || !info->dir)
        return -ENOMEM;
    if (!st)
        return 0;
    info->state = o->state;
    info->crashed = o->crashed;
    info->created = st->created;
    info->vmm_pid = o->vmm_pid;
    info->virtiofsd_pid = o->virtiofsd_pid;
    info->template_memory = st->template_memory;
    if ((st->arch && !(info->arch = strdup(st->arch))) ||
        !(info->hypervisor = strdup(st->hypervisor ? st->hypervisor : SV_HYPERVISOR_DEFAULT)) ||
        (st->from && !(info->from = strdup(st->from))))
        return -ENOMEM;
    return 0;
}

static void info_clear(sv_vm_info *info)
{
    free(info->id);
    free(info->arch);
    free(info->hypervisor);
    free(info->dir);
    free(info->from);
    free(info->error);
}

void sv_vm_info_free(sv_vm_info *info)
{
    if (!info)
        return;
    info_clear(info);
    free(info);
}

void sv_vm_info_list_free(sv_vm_info *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        info_clear(&list[i]);
    free(list);
}

int sv_vm_status(sv_vm *vm, sv_vm_info **out, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0)
        return r;
    sv_hv_observed o;
    if ((r = s.hv->observe(&s.h, true, &o, err)) < 0)
        return r;
    /* QEMU's own view wins (e.g. paused through raw QMP) */
    if (live_state(o.state) && o.state != s.st->state) {
        s.st->state = o.state;
        if ((r = save_state(&s, err)) < 0)
            return r;
    }
    sv_vm_info *info = calloc(1, sizeof(*info));
    if (!info || fill_info(info, s.h.id, sv_state_dir_path(vm->dir), s.st, &o) < 0) {
        sv_vm_info_free(info);
        return oom(err);
    }
    *out = info;
    return 0;
}

int sv_vm_list(const char *root, sv_vm_info **out, size_t *n_out, sv_error **err)
{
    if (!out || !n_out)
        return sv_error_set(err, EINVAL, "sv_vm_list: NULL argument");
    _cleanup_state_root_ sv_state_root *rt = NULL;
    int r = sv_state_root_open(root, &rt, err);
    if (r < 0)
        return r;
    sv_state_entry *ents = NULL;
    size_t n = 0;
    if ((r = sv_state_list(rt, &ents, &n, err)) < 0)
        return r;
    sv_vm_info *v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        sv_state_entries_free(ents, n);
        return oom(err);
    }
    const char *rp = sv_state_root_path(rt);
    for (size_t i = 0; i < n && r == 0; i++) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s%s%s", rp, strcmp(rp, "/") ? "/" : "", ents[i].id) < 0) {
            r = -ENOMEM;
            break;
        }
        sv_vm_state *st = ents[i].state;
        sv_hv_observed o = {0};
        _cleanup_error_ sv_error *e = NULL;
        _cleanup_(sv_vm_config_freep) sv_vm_config *config = NULL;
        const sv_hypervisor_ops *hv = NULL;
        if (st && state_config(ents[i].id, st, &config, &hv, &e) == 0) {
            sv_hv_vm h = {.id = ents[i].id, .st = st, .config = config};
            /* no lock, no QMP: pids and records only (no dir handle needed) */
            _cleanup_state_dir_ sv_state_dir *d = NULL;
            if (sv_state_dir_open(rt, ents[i].id, &d, NULL) == 0) {
                h.dir = d;
                hv->observe(&h, false, &o, NULL);
            } else {
                o.state = st->state;
            }
        }
        r = fill_info(&v[i], ents[i].id, dir, st && !e ? st : NULL, &o);
        const char *why = ents[i].error ? ents[i].error : e ? sv_error_message(e) : NULL;
        if (r == 0 && why && !(v[i].error = strdup(why)))
            r = -ENOMEM;
    }
    sv_state_entries_free(ents, n);
    if (r < 0) {
        sv_vm_info_list_free(v, n);
        return oom(err);
    }
    *out = v;
    *n_out = n;
    return 0;
}

int sv_vm_vcpu_threads(sv_vm *vm, int64_t **tids, size_t *n_out, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_live(&s, err)) < 0)
        return r;
    return s.hv->vcpu_threads(&s.h, tids, n_out, err);
}

int sv_vm_pids(sv_vm *vm, int64_t **pids, size_t *n_out, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0)
        return r;
    return s.hv->pids(&s.h, pids, n_out, err);
}

int sv_vm_qmp(sv_vm *vm, const char *command_json, char **reply, sv_error **err)
{
    if (!command_json)
        return sv_error_set(err, EINVAL, "sv_vm_qmp: no command");
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_live(&s, err)) < 0)
        return r;
    return s.hv->control(&s.h, command_json, reply, err);
}

int sv_vm_console_connect(sv_vm *vm, int *fd_out, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_live(&s, err)) < 0)
        return r;
    return s.hv->console_connect(&s.h, fd_out, err);
}

/* ---- exec ------------------------------------------------------------------------------ */

/* How long an exec whose channel closed waits for the VM to be gone, before
 * blaming the channel: a guest powering off closes it just before its VMM
 * exits. */
#define EXEC_EXIT_GRACE_MS 2000

/* Whether the process of `pidfd` ended within `ms`. */
static bool ended_within(int pidfd, int ms)
{
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int64_t end = sv_deadline_ms(ms);
    for (;;) {
        int r = poll(&p, 1, sv_remaining_ms(end));
        if (r >= 0 || errno != EINTR)
            return r > 0;
    }
}

int sv_vm_exec(sv_vm *vm, const sv_exec_opts *opts, int *exit_status, sv_error **err)
{
    if (!opts || !opts->argv || !opts->argv[0])
        return sv_error_set(err, EINVAL, "exec: no command given");
    const char *id = sv_vm_id(vm);
    _cleanup_free_ char *channel = NULL;
    sv_proc_ident vmm;
    {
        _cleanup_session_ session s = {0};
        int r = session_begin(vm, &s, err);
        if (r < 0)
            return r;
        sv_hv_observed o = observe(&s);
        if (o.state == SV_VM_PAUSED)
            return sv_error_set(err, EINVAL, "vm %s is paused; resume it first", id);
        if (o.state != SV_VM_RUNNING)
            return sv_error_set(err, EINVAL, "vm %s is not running (it is %s)", id,
                                state_word(&o));
        if (!(channel = s.hv->exec_channel(&s.h)))
            return oom(err);
        vmm = s.st->qemu;
    } /* the VM's lock is released here: a long exec must not block stop, status... */

    _cleanup_free_ char *what = NULL;
    if (asprintf(&what, "vm %s's exec channel", id) < 0)
        return oom(err);
    sv_error *e = NULL;
    int lock = sv_lock_acquire_cancel(sv_state_dir_fd(vm->dir), SV_STATE_EXEC_LOCK_FILE, what, 0,
                                      -1, opts->cancel_fd, &e);
    if (lock < 0) {
        int r = lock;
        if (r == -ENOENT) { /* the VM was removed while we waited */
            sv_error_free(e);
            e = NULL;
            r = sv_error_set(&e, ECHILD, "vm %s was stopped before the exec could run", id);
        }
        if (err && !*err)
            *err = e;
        else
            sv_error_free(e);
        return r;
    }
    int r;
    /* its identity was proven under the VM's lock: pid and start time suffice */
    _cleanup_close_ int pidfd = sv_pid_open((pid_t)vmm.pid, vmm.start_time, NULL);
    if (pidfd < 0) {
        r = sv_error_set(err, ECHILD, "vm %s stopped before the exec could run", id);
    } else {
        r = sv_agent_exec(channel, opts, exit_status, &e);
        bool closed = r == -ECONNRESET || r == -EPIPE || r == -ECONNREFUSED;
        if (r < 0 && r != -ECANCELED && ended_within(pidfd, closed ? EXEC_EXIT_GRACE_MS : 0)) {
            sv_error_free(e);
            e = NULL;
            r = sv_error_set(&e, ECHILD, "vm %s stopped during the exec", id);
        }
        if (r < 0) {
            if (err && !*err)
                *err = e;
            else
                sv_error_free(e);
        }
    }
    sv_lock_release(&lock);
    return r;
}

/* ---- resize ------------------------------------------------------------------------------ */

#define RESIZE_UNPLUG_TIMEOUT_MS 10000

/* The VM must be running: a paused guest cannot bring a vCPU online or
 * release one. */
static int need_running(session *s, sv_error **err)
{
    sv_hv_observed o = observe(s);
    if (o.state == SV_VM_PAUSED)
        return sv_error_set(err, EINVAL, "vm %s is paused; resume it first", s->h.id);
    if (o.state != SV_VM_RUNNING)
        return sv_error_set(err, EINVAL, "vm %s is not running (it is %s)", s->h.id,
                            state_word(&o));
    return 0;
}

int sv_vm_get_size(sv_vm *vm, sv_vm_size *out, sv_error **err)
{
    if (!out)
        return sv_error_set(err, EINVAL, "sv_vm_get_size: NULL argument");
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_live(&s, err)) < 0)
        return r;
    r = s.hv->get_size(&s.h, out, err);
    /* the reconciled record of what resizes added */
    int w = save_state(&s, r < 0 ? NULL : err);
    return r < 0 ? r : w;
}

static int resize(sv_vm *vm, bool memory, int64_t value, int timeout_ms, int64_t *before,
                  int64_t *after, sv_error **err)
{
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_running(&s, err)) < 0)
        return r;
    int64_t b = 0, a = 0;
    int t = timeout_ms > 0 ? timeout_ms : RESIZE_UNPLUG_TIMEOUT_MS;
    r = memory ? s.hv->resize_memory(&s.h, value, t, &b, &a, err)
               : s.hv->resize_vcpus(&s.h, value, t, &b, &a, err);
    /* what was added or removed is recorded, also when a later step failed */
    int w = save_state(&s, r < 0 ? NULL : err);
    if (before)
        *before = b;
    if (after)
        *after = a;
    return r < 0 ? r : w;
}

int sv_vm_resize_memory(sv_vm *vm, int64_t mib, int timeout_ms, int64_t *old_mib,
                        int64_t *new_mib, sv_error **err)
{
    return resize(vm, true, mib, timeout_ms, old_mib, new_mib, err);
}

int sv_vm_resize_vcpus(sv_vm *vm, int64_t vcpus, int timeout_ms, int64_t *old_vcpus,
                       int64_t *new_vcpus, sv_error **err)
{
    return resize(vm, false, vcpus, timeout_ms, old_vcpus, new_vcpus, err);
}

/* ---- devices ------------------------------------------------------------------------------ */

static const char *const device_kind_names[] = {
    [SV_VM_DEVICE_BLOCK] = "block",
    [SV_VM_DEVICE_NET] = "net",
    [SV_VM_DEVICE_VFIO] = "vfio",
    [SV_VM_DEVICE_VHOST_USER_BLK] = "vhost-user-blk",
    [SV_VM_DEVICE_VHOST_USER_FS] = "vhost-user-fs",
    [SV_VM_DEVICE_VSOCK] = "vsock",
};
_Static_assert(SV_ARRAY_SIZE(device_kind_names) == SV__VM_DEVICE_MAX, "device kind names");

const char *sv_vm_device_kind_name(int kind)
{
    return kind >= 0 && kind < SV__VM_DEVICE_MAX ? device_kind_names[kind] : NULL;
}

int sv_vm_device_kind_from_name(const char *name)
{
    for (int i = 0; name && i < SV__VM_DEVICE_MAX; i++)
        if (strcmp(device_kind_names[i], name) == 0)
            return i;
    return -1;
}

static void device_info_clear(sv_vm_device_info *d)
{
    free(d->id);
    free(d->host);
    for (size_t i = 0; i < d->n_slots; i++) {
        sv_vm_device_slot *s = &d->slots[i];
        free(s->qemu_id);
        free(s->bus);
        free(s->addr);
        free(s->guest);
        free(s->host);
    }
    free(d->slots);
    memset(d, 0, sizeof(*d));
}

void sv_vm_device_info_free(sv_vm_device_info *info)
{
    if (!info)
        return;
    device_info_clear(info);
    free(info);
}

void sv_vm_device_info_list_free(sv_vm_device_info *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        device_info_clear(&list[i]);
    free(list);
}

static bool dup_ok(char **dst, const char *src)
{
    return !src || (*dst = strdup(src)) != NULL;
}

/* The public view of a record: -ENOMEM, or 0 with *out filled. */
static int device_info_fill(sv_vm_device_info *out, const sv_vm_dev_record *r)
{
    memset(out, 0, sizeof(*out));
    out->kind = sv_vm_device_kind_from_name(r->kind);
    out->read_only = r->read_only;
    out->unplugging = r->state == SV_VM_DEV_REMOVING;
    if (!dup_ok(&out->id, r->id) || !dup_ok(&out->host, r->host) ||
        !(out->slots = calloc(r->n_slots ? r->n_slots : 1, sizeof(*out->slots))))
        return -ENOMEM;
    for (size_t i = 0; i < r->n_slots; i++, out->n_slots++) {
        const sv_vm_dev_slot *s = &r->slots[i];
        sv_vm_device_slot *o = &out->slots[i];
        if (!dup_ok(&o->qemu_id, s->qemu_id) || !dup_ok(&o->bus, s->bus) ||
            !dup_ok(&o->addr, s->addr) || !dup_ok(&o->guest, s->guest) ||
            !dup_ok(&o->host, s->host)) {
            out->n_slots++;
            return -ENOMEM;
        }
    }
    return 0;
}

static int need_devices(session *s, sv_error **err)
{
    if (!s->hv->hotplug_add || !s->hv->hotplug_remove || !s->hv->devices)
        return sv_error_set(err, ENOTSUP, "vm %s: hypervisor %s cannot hot-plug devices",
                            s->h.id, s->hv->name);
    return need_live(s, err);
}

int sv_vm_hotplug(sv_vm *vm, const sv_vm_device *dev, sv_vm_device_info **out, sv_error **err)
{
    if (!dev)
        return sv_error_set(err, EINVAL, "sv_vm_hotplug: no device given");
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_devices(&s, err)) < 0)
        return r;
    size_t index = 0;
    r = s.hv->hotplug_add(&s.h, dev, &index, err);
    int w = save_state(&s, r < 0 ? NULL : err);
    if (r < 0 || w < 0)
        return r < 0 ? r : w;
    if (!out)
        return 0;
    sv_vm_device_info *info = calloc(1, sizeof(*info));
    if (!info || device_info_fill(info, &s.st->devices[index]) < 0) {
        sv_vm_device_info_free(info);
        return oom(err);
    }
    *out = info;
    return 0;
}

int sv_vm_unplug(sv_vm *vm, const char *id, int timeout_ms, sv_error **err)
{
    if (!id)
        return sv_error_set(err, EINVAL, "sv_vm_unplug: no device id given");
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0 || (r = need_devices(&s, err)) < 0)
        return r;
    r = s.hv->hotplug_remove(&s.h, id, timeout_ms, err);
    int w = save_state(&s, r < 0 ? NULL : err);
    return r < 0 ? r : w;
}

int sv_vm_devices(sv_vm *vm, sv_vm_device_info **out, size_t *n_out, sv_error **err)
{
    if (!out || !n_out)
        return sv_error_set(err, EINVAL, "sv_vm_devices: NULL argument");
    _cleanup_session_ session s = {0};
    int r = session_begin(vm, &s, err);
    if (r < 0)
        return r;
    size_t n = 0;
    sv_hv_observed o = observe(&s);
    /* a VM that is not running has nothing plugged: its records, if any,
     * belong to a QEMU that is gone */
    if (live_state(o.state)) {
        /* settling persists what it changes */
        if ((r = need_devices(&s, err)) < 0 || (r = s.hv->devices(&s.h, err)) < 0)
            return r;
        n = s.st->n_devices;
    }
    sv_vm_device_info *v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        return oom(err);
    for (size_t i = 0; i < n; i++)
        if (device_info_fill(&v[i], &s.st->devices[i]) < 0) {
            sv_vm_device_info_list_free(v, i + 1);
            return oom(err);
        }
    *out = v;
    *n_out = n;
    return 0;
}
