/* What several verbs share: option errors, numbers, the state root, the VM
 * flags of `run` and `create`, and the default guest. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "sandvm/vm_config.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

static inline void sv_vm_config_freep(sv_vm_config **p)
{
    sv_vm_config_free(*p);
}

int sv_cli_bad_option(const char *verb, char **argv, int c)
{
    /* optopt is the short option letter, or (for long options) its val or 0 */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':') {
        if (optopt > 0 && optopt < 0x100 && strncmp(word, "--", 2) != 0)
            return sv_cli_usage_error(verb, "option '-%c' needs a value", optopt);
        return sv_cli_usage_error(verb, "option '%s' needs a value", word);
    }
    if (optopt > 0 && optopt < 0x100)
        return sv_cli_usage_error(verb, "unknown option '-%c'", optopt);
    return sv_cli_usage_error(verb, "unknown option '%s'", word);
}

int sv_cli_parse_uint(const char *verb, const char *flag, const char *s, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v <= 0 || v > max)
        return sv_cli_usage_error(verb, "%s: expected a number from 1 to %ld, got '%s'", flag, max,
                                  s);
    *out = v;
    return 0;
}

int sv_cli_parse_seconds(const char *verb, const char *flag, const char *s, bool allow_zero,
                         long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    long min = allow_zero ? 0 : 1;
    if (!*s || *end || errno || v < min || v > 86400)
        return sv_cli_usage_error(verb, "%s: expected seconds from %ld to 86400, got '%s'", flag,
                                  min, s);
    *out = v;
    return 0;
}

int sv_cli_absolute(const char *path, char **out, sv_error **err)
{
    if (path[0] == '/') {
        *out = strdup(path);
    } else {
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        if (!cwd)
            return sv_error_errno(err, errno, "%s: current directory", path);
        if (asprintf(out, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", path) < 0)
            *out = NULL;
    }
    if (!*out)
        return sv_error_set(err, ENOMEM, "out of memory");
    return 0;
}

int sv_cli_root(const sv_cli *cli, const char *verb_root, char **out, sv_error **err)
{
    const char *root = verb_root ? verb_root : cli->root;
    if (!root) {
        const char *env = getenv("SANDVM_ROOT");
        root = env && *env ? env : NULL;
    }
    *out = NULL;
    if (!root)
        return 0;
    if (!*root)
        return sv_error_set(err, EINVAL, "--root: the state root must not be empty");
    return sv_cli_absolute(root, out, err);
}

/* ---- VM flags ------------------------------------------------------------ */

int sv_cli_vm_flag(sv_cli_vm_flags *f, const char *verb, int c, const char *arg)
{
    switch (c) {
    case 'a':
        f->arch = arg;
        return 1;
    case 'c':
        return sv_cli_parse_uint(verb, "--vcpus", arg, 4096, &f->vcpus) ? SV_EXIT_USAGE : 1;
    case 'm':
        return sv_cli_parse_uint(verb, "--memory", arg, 16L << 20, &f->memory) ? SV_EXIT_USAGE : 1;
    case SV_CLI_OPT_KERNEL:
        f->kernel = arg;
        return 1;
    case SV_CLI_OPT_INITRD:
        f->initrd = arg;
        return 1;
    case SV_CLI_OPT_APPEND:
        f->append = arg;
        return 1;
    case SV_CLI_OPT_ACCEL:
        f->accel = arg;
        return 1;
    case SV_CLI_OPT_SHARED_DIR:
        f->shared_dir = arg;
        return 1;
    case SV_CLI_OPT_SHARED_FS:
        f->shared_fs = arg;
        return 1;
    case SV_CLI_OPT_MAX_VCPUS:
        return sv_cli_parse_uint(verb, "--max-vcpus", arg, 4096, &f->max_vcpus) ? SV_EXIT_USAGE
                                                                                 : 1;
    case SV_CLI_OPT_MAX_MEMORY:
        return sv_cli_parse_uint(verb, "--max-memory", arg, 16L << 20, &f->max_memory)
                   ? SV_EXIT_USAGE
                   : 1;
    default:
        return 0;
    }
}

bool sv_cli_vm_flags_given(const sv_cli_vm_flags *f)
{
    return f->arch || f->kernel || f->initrd || f->append || f->accel || f->shared_dir ||
           f->shared_fs || f->vcpus || f->memory || f->max_vcpus || f->max_memory;
}

/* The default guest's builder: $SANDVM_GUEST_BUILDER, else guest/build-guest
 * beside the build tree (build/sandvm -> ../guest), else the installed copy. */
static char *find_builder(void)
{
    const char *env = getenv("SANDVM_GUEST_BUILDER");
    if (env && *env)
        return strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    static const char *const rel[] = {"/../guest/build-guest",
                                      "/../share/sandvm/guest/build-guest"};
    for (size_t i = 0; i < SV_ARRAY_SIZE(rel); i++) {
        char *p = NULL;
        if (asprintf(&p, "%s%s", exe, rel[i]) < 0)
            return NULL;
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

/* Runs the builder for `arch` (its progress goes to our stderr) and returns
 * the paths of the default guest's kernel and initramfs. */
static int default_guest(const char *arch, char **kernel, char **initrd, sv_error **err)
{
    _cleanup_free_ char *builder = find_builder();
    if (!builder)
        return sv_error_set(
            err, ENOENT, "default guest: guest/build-guest not found (set SANDVM_GUEST_BUILDER)");
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return sv_error_errno(err, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]), close(pfd[1]);
        return sv_error_errno(err, errno, "fork");
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        execl(builder, builder, arch, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char out[4096];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(pfd[0], out + got, sizeof(out) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof(out) - 1)
            break;
    }
    close(pfd[0]);
    out[got] = '\0';
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return sv_error_set(err, EIO, "default guest: %s %s failed (%s %d)", builder, arch,
                            WIFEXITED(st) ? "exit status" : "signal",
                            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    char *slash = strrchr(out, '/');
    if (out[0] != '/' || !slash)
        return sv_error_set(err, EPROTO, "default guest: unexpected output from %s: '%s'", builder,
                            out);
    *slash = '\0';
    if (asprintf(kernel, "%s/kernel", out) < 0 || asprintf(initrd, "%s/initramfs.cpio.gz", out) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    return 0;
}

static const char *arch_json_name(const char *arch)
{
    return arch && !strcmp(arch, "ppc64") ? "ppc64le" : arch;
}

static int json_set_string(json_object *o, const char *key, const char *value, sv_error **err)
{
    json_object *s = json_object_new_string(value);
    if (!s || json_object_object_add(o, key, s) < 0) {
        json_object_put(s);
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    return 0;
}

static int json_set_int(json_object *o, const char *key, int64_t value, sv_error **err)
{
    json_object *n = json_object_new_int64(value);
    if (!n || json_object_object_add(o, key, n) < 0) {
        json_object_put(n);
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    return 0;
}

int sv_cli_vm_config_json(const char *verb, const char *config_path, const sv_cli_vm_flags *f,
                          char **json_out, sv_error **err)
{
    _cleanup_json_ json_object *o = NULL;
    if (config_path) {
        /* The library's own loader first: its errors name the file and the key. */
        _cleanup_(sv_vm_config_freep) sv_vm_config *vm = NULL;
        if (sv_vm_config_load(config_path, &vm, err) < 0)
            return SV_EXIT_FAILURE;
        if (f->arch && strcmp(sv_vm_arch_name(vm->arch), arch_json_name(f->arch)) != 0)
            return sv_cli_usage_error(verb, "--arch %s contradicts the config's arch %s", f->arch,
                                      sv_vm_arch_name(vm->arch));
        if (sv_json_load_file(config_path, &o, err) < 0)
            return SV_EXIT_FAILURE;
        if (!json_object_is_type(o, json_type_object))
            return sv_error_set(err, EINVAL, "%s: expected a JSON object", config_path),
                   SV_EXIT_FAILURE;
    } else {
        struct utsname u;
        const char *a = f->arch ? arch_json_name(f->arch) : (uname(&u) == 0 ? u.machine : "x86_64");
        static const char *const known[] = {"x86_64", "aarch64", "ppc64le", "s390x"};
        bool ok = false;
        for (size_t i = 0; i < SV_ARRAY_SIZE(known); i++)
            ok |= !strcmp(a, known[i]);
        if (!ok)
            return sv_cli_usage_error(
                verb, "--arch: expected x86_64, aarch64, ppc64le or s390x, got '%s'", a);
        o = json_object_new_object();
        if (!o)
            return sv_error_set(err, ENOMEM, "out of memory"), SV_EXIT_FAILURE;
        if (json_set_string(o, "arch", a, err) < 0)
            return SV_EXIT_FAILURE;
        if (!f->kernel) {
            _cleanup_free_ char *k = NULL, *i = NULL;
            if (default_guest(a, &k, &i, err) < 0 || json_set_string(o, "kernel", k, err) < 0 ||
                (!f->initrd && json_set_string(o, "initrd", i, err) < 0))
                return SV_EXIT_FAILURE;
        }
    }

    if (f->accel) {
        if (strcmp(f->accel, "auto") && strcmp(f->accel, "kvm") && strcmp(f->accel, "tcg"))
            return sv_cli_usage_error(verb, "--accel: expected auto, kvm or tcg, got '%s'",
                                      f->accel);
        if (json_set_string(o, "accel", f->accel, err) < 0)
            return SV_EXIT_FAILURE;
    }
    if (f->shared_fs && strcmp(f->shared_fs, "virtio-fs") && strcmp(f->shared_fs, "virtio-9p") &&
        strcmp(f->shared_fs, "none"))
        return sv_cli_usage_error(
            verb, "--shared-fs: expected virtio-fs, virtio-9p or none, got '%s'", f->shared_fs);
    if (f->vcpus) {
        if (json_set_int(o, "vcpus", f->vcpus, err) < 0)
            return SV_EXIT_FAILURE;
        /* a config's hot-plug ceiling below the asked vCPUs would be refused */
        json_object *max = NULL;
        if (json_object_object_get_ex(o, "max_vcpus", &max) &&
            json_object_is_type(max, json_type_int) && json_object_get_int64(max) > 0 &&
            json_object_get_int64(max) < f->vcpus &&
            json_set_int(o, "max_vcpus", f->vcpus, err) < 0)
            return SV_EXIT_FAILURE;
    }
    if (f->memory && json_set_int(o, "memory", f->memory, err) < 0)
        return SV_EXIT_FAILURE;
    if ((f->max_vcpus && json_set_int(o, "max_vcpus", f->max_vcpus, err) < 0) ||
        (f->max_memory && json_set_int(o, "max_memory", f->max_memory, err) < 0))
        return SV_EXIT_FAILURE;
    if (f->append) {
        json_object *old = NULL;
        const char *prev = json_object_object_get_ex(o, "kernel_params", &old) &&
                                   json_object_is_type(old, json_type_string)
                               ? json_object_get_string(old)
                               : NULL;
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s%s%s", prev ? prev : "", prev && *prev ? " " : "", f->append) < 0)
            return sv_error_set(err, ENOMEM, "out of memory"), SV_EXIT_FAILURE;
        if (json_set_string(o, "kernel_params", p, err) < 0)
            return SV_EXIT_FAILURE;
    }
    if (f->kernel && json_set_string(o, "kernel", f->kernel, err) < 0)
        return SV_EXIT_FAILURE;
    if (f->initrd && json_set_string(o, "initrd", f->initrd, err) < 0)
        return SV_EXIT_FAILURE;
    if (f->shared_dir) {
        /* Kata's default file sharing, unless told otherwise */
        if (json_set_string(o, "shared_dir", f->shared_dir, err) < 0 ||
            json_set_string(o, "shared_fs", f->shared_fs ? f->shared_fs : "virtio-fs", err) < 0)
            return SV_EXIT_FAILURE;
    } else if (f->shared_fs && json_set_string(o, "shared_fs", f->shared_fs, err) < 0) {
        return SV_EXIT_FAILURE;
    }
    const char *text = sv_json_to_string(o);
    *json_out = text ? strdup(text) : NULL;
    if (!*json_out)
        return sv_error_set(err, ENOMEM, "out of memory"), SV_EXIT_FAILURE;
    return 0;
}
