/* Host facts: probed from the running host or decoded from JSON (host.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "conf/vm_config.h"
#include "qemu/arch/host.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/strbuf.h"

/* KVM_GET_API_VERSION from <linux/kvm.h>: _IO(KVMIO, 0x00). */
#define SV_KVM_GET_API_VERSION _IO(0xAE, 0x00)
#define SV_KVM_API_VERSION 12
#define SV_PROC_MAX (1 << 20)

const char *const sv_protection_names[] = {"none", "tdx", "sev", "snp", "se", "pef", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_protection_names) == SV__PROT_MAX + 1, "protection names");

void sv_host_facts_free(sv_host_facts *h)
{
    if (!h)
        return;
    for (size_t i = 0; h->cpu_flags && h->cpu_flags[i]; i++)
        free(h->cpu_flags[i]);
    free(h->cpu_flags);
    free(h->sysfs_root);
    memset(h, 0, sizeof(*h));
}

bool sv_host_has_cpu_flag(const sv_host_facts *h, const char *flag)
{
    for (size_t i = 0; h->cpu_flags && h->cpu_flags[i]; i++)
        if (strcmp(h->cpu_flags[i], flag) == 0)
            return true;
    return false;
}

bool sv_host_is_nested(const sv_host_facts *h)
{
    return h->arch == SV_VM_ARCH_X86_64 && sv_host_has_cpu_flag(h, "hypervisor");
}

/* ---- probing ---- */

/* Reads a small text file (procfs, sysfs); NULL with errno set on failure. */
static char *read_text(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return NULL;
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, "");
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            sv_strbuf_free(&sb);
            errno = e;
            return NULL;
        }
        if (n == 0 || sb.len + (size_t)n > SV_PROC_MAX)
            break;
        sv_strbuf_append_n(&sb, buf, (size_t)n);
    }
    return sv_strbuf_steal(&sb);
}

static char *path_join(const char *root, const char *rel)
{
    char *s = NULL;
    return asprintf(&s, "%s/%s", root, rel) < 0 ? NULL : s;
}

/* The value of the first "key<blanks>: value" line of /proc/cpuinfo. */
static const char *cpuinfo_value(const char *text, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        if (n > kl && strncmp(line, key, kl) == 0 && (line[kl] == ' ' || line[kl] == '\t' ||
                                                      line[kl] == ':')) {
            const char *colon = memchr(line, ':', n);
            if (colon) {
                const char *v = colon + 1;
                while (v < line + n && (*v == ' ' || *v == '\t'))
                    v++;
                *len = (size_t)(line + n - v);
                return v;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return NULL;
}

static int split_words(const char *s, size_t len, char ***out)
{
    size_t n = 0, cap = 16;
    char **v = calloc(cap + 1, sizeof(char *));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < len;) {
        while (i < len && isspace((unsigned char)s[i]))
            i++;
        size_t start = i;
        while (i < len && !isspace((unsigned char)s[i]))
            i++;
        if (i == start)
            continue;
        if (n == cap) {
            char **nv = realloc(v, (cap * 2 + 1) * sizeof(char *));
            if (!nv)
                goto oom;
            v = nv;
            cap *= 2;
        }
        v[n] = strndup(s + start, i - start);
        if (!v[n])
            goto oom;
        v[++n] = NULL;
    }
    *out = v;
    return 0;
oom:
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return -ENOMEM;
}

static bool has_word(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= len; i++)
        if ((i == 0 || isspace((unsigned char)s[i - 1])) && strncmp(s + i, word, wl) == 0 &&
            (i + wl == len || isspace((unsigned char)s[i + wl])))
            return true;
    return false;
}

static int host_arch(void)
{
    struct utsname u;
    if (uname(&u) < 0)
        return -1;
    for (int i = SV_VM_ARCH_X86_64; i < SV_VM_ARCH__MAX; i++)
        if (strcmp(u.machine, sv_vm_arch_names[i]) == 0)
            return i;
    return -1;
}

/* A sysfs switch file that reads "Y" (or "1" when one_too). */
static bool switch_on(const char *sysfs, const char *rel, bool one_too)
{
    _cleanup_free_ char *p = path_join(sysfs, rel);
    _cleanup_free_ char *v = p ? read_text(p) : NULL;
    return v && (v[0] == 'Y' || (one_too && v[0] == '1'));
}

/* Secure Execution: facility 158 and prot_virt=1|on|y|yes on the host's command line. */
static bool s390_se(const char *cpuinfo)
{
    size_t len = 0;
    const char *fac = cpuinfo ? cpuinfo_value(cpuinfo, "facilities", &len) : NULL;
    if (!fac || !has_word(fac, len, "158"))
        return false;
    _cleanup_free_ char *cmdline = read_text("/proc/cmdline");
    if (!cmdline)
        return false;
    static const char *const on[] = {"prot_virt=1", "prot_virt=on", "prot_virt=y",
                                     "prot_virt=yes"};
    for (size_t i = 0; i < SV_ARRAY_SIZE(on); i++)
        if (has_word(cmdline, strcspn(cmdline, "\n"), on[i]))
            return true;
    return false;
}

static int64_t sev_cbitpos(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(0x8000001f, &a, &b, &c, &d))
        return b & 0x3f;
#endif
    return 0;
}

static int probe_protection(sv_host_facts *h, const char *cpuinfo)
{
    const char *sys = h->sysfs_root;
    switch (h->arch) {
    case SV_VM_ARCH_X86_64:
        if (switch_on(sys, "module/kvm_intel/parameters/tdx", false))
            return SV_PROT_TDX;
        if (switch_on(sys, "module/kvm_amd/parameters/sev_snp", false))
            return SV_PROT_SNP;
        if (switch_on(sys, "module/kvm_amd/parameters/sev", true))
            return SV_PROT_SEV;
        return SV_PROT_NONE;
    case SV_VM_ARCH_PPC64LE: {
        _cleanup_free_ char *p = path_join(sys, "firmware/ultravisor");
        return p && access(p, F_OK) == 0 ? SV_PROT_PEF : SV_PROT_NONE;
    }
    case SV_VM_ARCH_S390X:
        return s390_se(cpuinfo) ? SV_PROT_SE : SV_PROT_NONE;
    default:
        return SV_PROT_NONE;
    }
}

static bool kvm_usable(void)
{
    _cleanup_close_ int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    return fd >= 0 && ioctl(fd, SV_KVM_GET_API_VERSION, 0) == SV_KVM_API_VERSION;
}

int sv_host_facts_probe(sv_host_facts *out, const char *sysfs_root, sv_error **err)
{
    sv_host_facts h = {0};
    h.arch = host_arch();
    if (h.arch < 0) {
        struct utsname u;
        return sv_error_set(err, ENOTSUP, "host architecture %s is not supported (sandvm runs "
                            "on x86_64, aarch64, ppc64le and s390x)",
                            uname(&u) == 0 ? u.machine : "?");
    }
    h.sysfs_root = strdup(sysfs_root ? sysfs_root : "/sys");
    if (!h.sysfs_root)
        return sv_error_set(err, ENOMEM, "out of memory");
    _cleanup_free_ char *cpuinfo = read_text("/proc/cpuinfo");
    static const char *const flag_keys[SV_VM_ARCH__MAX] = {
        [SV_VM_ARCH_X86_64] = "flags", [SV_VM_ARCH_AARCH64] = "Features",
        [SV_VM_ARCH_S390X] = "features"};
    size_t len = 0;
    const char *flags = cpuinfo && flag_keys[h.arch] ? cpuinfo_value(cpuinfo, flag_keys[h.arch], &len)
                                                     : NULL;
    if (split_words(flags ? flags : "", flags ? len : 0, &h.cpu_flags) < 0) {
        sv_host_facts_free(&h);
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    _cleanup_free_ char *meminfo = read_text("/proc/meminfo");
    const char *mt = meminfo ? cpuinfo_value(meminfo, "MemTotal", &len) : NULL;
    if (mt)
        h.mem_mib = strtoll(mt, NULL, 10) / 1024;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    h.ncpus = n > 0 && n < 1 << 20 ? (int)n : 0;
    h.kvm_usable = kvm_usable();
    _cleanup_free_ char *pvm = path_join(h.sysfs_root, "module/kvm_pvm");
    h.kvm_is_pvm = pvm && access(pvm, F_OK) == 0;
    h.protection = probe_protection(&h, cpuinfo);
    if (h.protection == SV_PROT_SEV || h.protection == SV_PROT_SNP)
        h.sev_cbitpos = sev_cbitpos();
    *out = h;
    return 0;
}

/* ---- JSON ---- */

typedef struct host_json {
    int arch;
    char **cpu_flags;
    int64_t mem_mib, ncpus;
    char *sysfs_root;
    bool kvm_usable, kvm_is_pvm;
    int protection;
    int64_t sev_cbitpos;
} host_json;

static const sv_jfield host_fields[] = {
    SV_JENUM(host_json, arch, "arch", sv_vm_arch_names),
    SV_JSTRV(host_json, cpu_flags, "cpu_flags"),
    SV_JINT(host_json, mem_mib, "mem_mib", 0, SV_VM_MAX_MEMORY),
    SV_JINT(host_json, ncpus, "ncpus", 0, 1 << 20),
    SV_JSTR(host_json, sysfs_root, "sysfs_root"),
    SV_JBOOL(host_json, kvm_usable, "kvm_usable"),
    SV_JBOOL(host_json, kvm_is_pvm, "kvm_is_pvm"),
    SV_JENUM(host_json, protection, "protection", sv_protection_names),
    SV_JINT(host_json, sev_cbitpos, "sev_cbitpos", 0, 63),
    SV_JEND,
};
static const sv_jschema host_schema = {sizeof(host_json), host_fields};

int sv_host_facts_from_json(json_object *obj, const char *path, sv_host_facts *out,
                            sv_error **err)
{
    host_json j = {0};
    int r = sv_json_decode(&host_schema, obj, &j, path, err);
    if (r >= 0 && j.arch == SV_VM_ARCH_HOST)
        r = sv_error_set(err, EINVAL, "%s%sarch: is required (x86_64, aarch64, ppc64le or s390x)",
                         path, *path ? "." : "");
    if (r >= 0 && !j.cpu_flags && !(j.cpu_flags = calloc(1, sizeof(char *))))
        r = sv_error_set(err, ENOMEM, "out of memory");
    if (r >= 0 && !j.sysfs_root && !(j.sysfs_root = strdup("/sys")))
        r = sv_error_set(err, ENOMEM, "out of memory");
    if (r < 0) {
        sv_json_free(&host_schema, &j);
        return r;
    }
    *out = (sv_host_facts){
        .arch = j.arch,
        .cpu_flags = j.cpu_flags,
        .mem_mib = j.mem_mib,
        .ncpus = (int)j.ncpus,
        .sysfs_root = j.sysfs_root,
        .kvm_usable = j.kvm_usable,
        .kvm_is_pvm = j.kvm_is_pvm,
        .protection = j.protection,
        .sev_cbitpos = j.sev_cbitpos,
    };
    return 0;
}

#if defined(__x86_64__)
static uint64_t read_tsc(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* A (clock, TSC) pair: of five tries, the one whose two clock reads around
 * the TSC read were closest, so that a preemption in between is left out. */
static void tsc_pair(int64_t *ns, uint64_t *tsc)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < 5; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        uint64_t t = read_tsc();
        clock_gettime(CLOCK_MONOTONIC, &b);
        int64_t w = ts_ns(&b) - ts_ns(&a);
        if (w < best) {
            best = w;
            *ns = ts_ns(&a) + w / 2;
            *tsc = t;
        }
    }
}

int64_t sv_host_tsc_khz(void)
{
    int64_t n0 = 0, n1 = 0;
    uint64_t t0 = 0, t1 = 0;
    tsc_pair(&n0, &t0);
    struct timespec pause = {0, 2 * 1000 * 1000};
    nanosleep(&pause, NULL); /* woken early by a signal: the interval is measured anyway */
    tsc_pair(&n1, &t1);
    if (n1 - n0 < 500 * 1000 || t1 <= t0)
        return 0;
    return (int64_t)((double)(t1 - t0) * 1e6 / (double)(n1 - n0) + 0.5);
}
#else
int64_t sv_host_tsc_khz(void)
{
    return 0;
}
#endif
