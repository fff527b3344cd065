#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "qemu/qemu_config.h"
#include "qemu/qemu_devices.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/strbuf.h"

/* The -object id of the RAM backend qemu_argv.c adds for the memory knobs. */
#define RAM_BACKEND_ID "sv-ram"

const char *const sv_arch_names[] = {"default", "x86_64", "aarch64", "ppc64", "s390x", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_arch_names) == SV__ARCH_MAX + 1, "arch names");
const char *const sv_qtransport_names[] = {"default", "pci", "ccw", "mmio", NULL};
_Static_assert(SV_ARRAY_SIZE(sv_qtransport_names) == SV__QT_MAX + 1, "transport names");

void sv_qemu_config_init(sv_qemu_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->uid = -1;
    cfg->gid = -1;
}

static int host_arch(void)
{
    struct utsname u;
    if (uname(&u) < 0)
        return SV_ARCH_X86_64;
    if (strcmp(u.machine, "aarch64") == 0)
        return SV_ARCH_AARCH64;
    if (strncmp(u.machine, "ppc64", 5) == 0)
        return SV_ARCH_PPC64;
    if (strcmp(u.machine, "s390x") == 0)
        return SV_ARCH_S390X;
    return SV_ARCH_X86_64;
}

int sv_qemu_config_arch(const sv_qemu_config *cfg)
{
    if (cfg->arch != SV_ARCH_DEFAULT)
        return cfg->arch;
    if (cfg->path) {
        const char *base = strrchr(cfg->path, '/');
        base = base ? base + 1 : cfg->path;
        if (strncmp(base, "qemu-system-", 12) == 0) {
            for (int i = 1; i < SV__ARCH_MAX; i++)
                if (strcmp(base + 12, sv_arch_names[i]) == 0)
                    return i;
        }
    }
    return host_arch();
}

const char *sv_qemu_config_binary(const sv_qemu_config *cfg)
{
    static const char *const bins[SV__ARCH_MAX] = {
        [SV_ARCH_X86_64] = "qemu-system-x86_64", [SV_ARCH_AARCH64] = "qemu-system-aarch64",
        [SV_ARCH_PPC64] = "qemu-system-ppc64", [SV_ARCH_S390X] = "qemu-system-s390x"};
    if (cfg->path)
        return cfg->path;
    return bins[sv_qemu_config_arch(cfg)];
}

bool sv_qemu_config_is_microvm(const sv_qemu_config *cfg)
{
    return cfg->machine.type && strcmp(cfg->machine.type, "microvm") == 0;
}

bool sv_qemu_config_machine_opt_is(const sv_qemu_config *cfg, const char *key, const char *value)
{
    const char *s = cfg->machine.options;
    size_t kl = strlen(key), vl = strlen(value);
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n == kl + 1 + vl && strncmp(s, key, kl) == 0 && s[kl] == '=' &&
            strncmp(s + kl + 1, value, vl) == 0)
            return true;
        s = end ? end + 1 : NULL;
    }
    return false;
}

int sv_qemu_config_transport(const sv_qemu_config *cfg, int requested)
{
    if (requested != SV_QT_DEFAULT)
        return requested;
    if (sv_qemu_config_arch(cfg) == SV_ARCH_S390X)
        return SV_QT_CCW;
    if (sv_qemu_config_is_microvm(cfg))
        return SV_QT_MMIO;
    return SV_QT_PCI;
}

/* ---- top-level validation ---- */

static bool chars_in(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!(isascii((unsigned char)*s) && (isalnum((unsigned char)*s) || strchr(extra, *s))))
            return false;
    return true;
}

static int check_word(const char *path, const char *field, const char *v, const char *extra,
                      const char *what, sv_error **err)
{
    if (!v)
        return 0;
    if (!*v || !chars_in(v, extra)) {
        _cleanup_json_ json_object *q = json_object_new_string(v);
        return sv_field_error(err, path, field,
                              "invalid %s %s (allowed: letters, digits and any of \"%s\")", what,
                              q ? sv_json_to_string(q) : "", extra);
    }
    return 0;
}

/* "key=value,key=value" with plain words only: these lists are options by design. */
static int check_option_list(const char *path, const char *field, const char *v, sv_error **err)
{
    if (!v)
        return 0;
    _cleanup_free_ char *copy = strdup(v);
    if (!copy)
        return sv_error_set(err, ENOMEM, "out of memory");
    char *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1])
            return sv_field_error(err, path, field, "\"%s\" is not key=value", tok);
        *eq = '\0';
        bool ok = chars_in(tok, "-_.") && chars_in(eq + 1, "-_.:");
        *eq = '=';
        if (!ok)
            return sv_field_error(err, path, field,
                                  "\"%s\" has characters other than letters, digits, '-', '_', '.', ':'",
                                  tok);
    }
    if (n == 0 || v[0] == ',' || v[strlen(v) - 1] == ',' || strstr(v, ",,"))
        return sv_field_error(err, path, field, "empty option in \"%s\"", v);
    return 0;
}

static int check_uuid(const char *v, sv_error **err)
{
    static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    bool ok = strlen(v) == sizeof(pat) - 1;
    for (size_t i = 0; ok && pat[i]; i++)
        ok = pat[i] == '-' ? v[i] == '-' : isxdigit((unsigned char)v[i]) != 0;
    return ok ? 0 : sv_field_error(err, "", "uuid", "invalid UUID (expected 8-4-4-4-12 hex digits)");
}

static int check_sandbox(const char *v, sv_error **err)
{
    static const struct {
        const char *key, *values[4];
    } keys[] = {{"obsolete", {"allow", "deny"}},
                {"elevateprivileges", {"allow", "deny", "children"}},
                {"spawn", {"allow", "deny"}},
                {"resourcecontrol", {"allow", "deny"}}};
    _cleanup_free_ char *copy = strdup(v);
    if (!copy)
        return sv_error_set(err, ENOMEM, "out of memory");
    char *save = NULL;
    char *tok = strtok_r(copy, ",", &save);
    if (!tok || (strcmp(tok, "on") && strcmp(tok, "off")))
        return sv_field_error(err, "", "seccomp_sandbox", "must start with \"on\" or \"off\"");
    while ((tok = strtok_r(NULL, ",", &save))) {
        char *eq = strchr(tok, '=');
        bool ok = false;
        for (size_t i = 0; eq && i < SV_ARRAY_SIZE(keys) && !ok; i++) {
            if ((size_t)(eq - tok) != strlen(keys[i].key) || strncmp(tok, keys[i].key, eq - tok))
                continue;
            for (size_t j = 0; j < 4 && keys[i].values[j] && !ok; j++)
                ok = strcmp(eq + 1, keys[i].values[j]) == 0;
        }
        if (!ok)
            return sv_field_error(err, "", "seccomp_sandbox",
                                  "unknown setting \"%s\" (allowed: obsolete=allow|deny, "
                                  "elevateprivileges=allow|deny|children, spawn=allow|deny, "
                                  "resourcecontrol=allow|deny)",
                                  tok);
    }
    if (strstr(v, ",,") || v[strlen(v) - 1] == ',')
        return sv_field_error(err, "", "seccomp_sandbox", "empty setting");
    return 0;
}

static int check_rtc_base(const char *v, sv_error **err)
{
    if (!strcmp(v, "utc") || !strcmp(v, "localtime"))
        return 0;
    /* YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS */
    static const char d[] = "dddd-dd-dd", dt[] = "dddd-dd-ddTdd:dd:dd";
    const char *pat = strlen(v) == sizeof(d) - 1 ? d : strlen(v) == sizeof(dt) - 1 ? dt : NULL;
    bool ok = pat != NULL;
    for (size_t i = 0; ok && pat[i]; i++)
        ok = pat[i] == 'd' ? isdigit((unsigned char)v[i]) != 0 : v[i] == pat[i];
    return ok ? 0
              : sv_field_error(err, "rtc", "base",
                               "expected utc, localtime, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS");
}

static int check_global(const char *v, sv_error **err)
{
    const char *dot = strchr(v, '.'), *eq = strchr(v, '=');
    bool ok = dot && eq && dot > v && eq > dot + 1;
    if (ok) {
        _cleanup_free_ char *drv = strndup(v, dot - v), *prop = strndup(dot + 1, eq - dot - 1);
        ok = drv && prop && strlen(drv) < 64 && strlen(prop) < 64 && chars_in(drv, "-_") &&
             chars_in(prop, "-_.");
    }
    return ok ? 0
              : sv_field_error(err, "", "global_param",
                               "expected driver.property=value (driver and property made of "
                               "letters, digits, '-' and '_')");
}

static int check_binary(const char *v, sv_error **err)
{
    if (!v)
        return 0;
    if (v[0] == '/')
        return 0;
    if (strncmp(v, "qemu-system-", 12) == 0 && chars_in(v + 12, "_-"))
        return 0;
    return sv_field_error(err, "", "path",
                          "must be an absolute path or a qemu-system-<arch> name found in PATH");
}

/* -fw_cfg needs the machine's fw_cfg device: x86_64 and arm machines have
 * one, and the ppc64 Mac machines; pseries, powernv and s390x have none. */
static bool machine_has_fw_cfg(const sv_qemu_config *cfg)
{
    const char *type = sv_qdev_machine_type(cfg);
    switch ((sv_arch)sv_qemu_config_arch(cfg)) {
    case SV_ARCH_S390X:
        return false;
    case SV_ARCH_PPC64:
        return strncmp(type, "pseries", 7) != 0 && strncmp(type, "powernv", 7) != 0;
    case SV_ARCH_DEFAULT:
    case SV_ARCH_X86_64:
    case SV_ARCH_AARCH64:
    case SV__ARCH_MAX:
        break;
    }
    return true;
}

/* A host name, an IPv4 address, or an IPv6 address bare or in brackets
 * (the argv brackets a bare one: QEMU splits "tcp:host:port" at a colon). */
static int check_incoming_host(const char *host, sv_error **err)
{
    size_t n = strlen(host);
    bool bracketed = host[0] == '[';
    _cleanup_free_ char *inner = bracketed ? strndup(host + 1, n - 1 - (host[n - 1] == ']')) : NULL;
    if (bracketed && !inner)
        return sv_error_set(err, ENOMEM, "out of memory");
    const char *h = bracketed ? inner : host;
    if ((bracketed && (n < 3 || host[n - 1] != ']' || !strchr(h, ':'))) || !*h ||
        !chars_in(h, "-.:"))
        return sv_field_error(err, "incoming", "host",
                              "invalid host name or address (an IPv6 address may come in "
                              "brackets: [::1])");
    return 0;
}

static int validate_incoming(const sv_qincoming *in, sv_error **err)
{
    int r;
    switch (in->migration_type) {
    case SV_QMIG_NONE:
        if (in->fd || in->exec || in->host || in->port)
            return sv_field_error(err, "incoming", "migration_type", "is required with fd, exec, host or port");
        return 0;
    case SV_QMIG_FD:
        if (!in->fd)
            return sv_field_error(err, "incoming", "fd", "is required for migration_type fd");
        break;
    case SV_QMIG_EXEC:
        if (!in->exec || !in->exec[0] || !in->exec[0][0])
            return sv_field_error(err, "incoming", "exec", "needs the command's words for migration_type exec");
        break;
    case SV_QMIG_TCP:
        if (!in->host || !*in->host)
            return sv_field_error(err, "incoming", "host", "is required for migration_type tcp");
        if ((r = check_incoming_host(in->host, err)) < 0)
            return r;
        if (!in->port)
            return sv_field_error(err, "incoming", "port", "is required for migration_type tcp");
        break;
    default:
        break;
    }
    if (in->migration_type != SV_QMIG_FD && in->fd)
        return sv_field_error(err, "incoming", "fd", "only applies to migration_type fd");
    if (in->migration_type != SV_QMIG_EXEC && in->exec)
        return sv_field_error(err, "incoming", "exec", "only applies to migration_type exec");
    if (in->migration_type != SV_QMIG_TCP && (in->host || in->port))
        return sv_field_error(err, "incoming", in->host ? "host" : "port",
                              "only applies to migration_type tcp");
    return 0;
}

/* ---- CPU, topology, memory and display, per machine ----
 *
 * QEMU 7.2 checks these only once the machine is chosen, so each rule here
 * names the machine family (qemu_devices.h) or arch it comes from. */

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)

/* The accelerator QEMU tries first is `name` (QEMU 7.2's default is tcg). */
static bool accel_first_is(const sv_qemu_config *cfg, const char *name)
{
    const char *a = cfg->machine.acceleration ? cfg->machine.acceleration : "tcg";
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == ':');
}

/* A versioned machine type older than major.minor ("pc-q35-2.7",
 * "virt-6.1"); the unversioned alias of a family is its newest version. */
static bool machine_older_than(const sv_qemu_config *cfg, long major, long minor)
{
    if (sv_qdev_machine_family(cfg) == SV_MACH_OTHER)
        return false;
    const char *t = sv_qdev_machine_type(cfg);
    for (const char *p = strchr(t, '-'); p; p = strchr(p + 1, '-')) {
        if (!isdigit((unsigned char)p[1]))
            continue;
        char *end = NULL;
        long ma = strtol(p + 1, &end, 10);
        long mi = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
        return ma < major || (ma == major && mi < minor);
    }
    return false;
}

/* QEMU's ARM and s390x CPU models take their features as QOM properties,
 * name=value only ("Expected key=value format"); x86 also takes +name,
 * -name and a bare name. The POWER models have no feature properties: the
 * pseries capabilities are machine options. */
static int check_cpu_feature_form(const sv_qemu_config *cfg, const char *path, const char *f,
                                  sv_error **err)
{
    int arch = sv_qemu_config_arch(cfg);
    switch ((sv_arch)arch) {
    case SV_ARCH_AARCH64:
    case SV_ARCH_S390X:
        if (strchr(f, '='))
            return 0;
        return sv_field_error(err, "", path,
                              "\"%s\": QEMU's %s CPU models take features only as name=value "
                              "(write %s=%s)",
                              f, sv_arch_names[arch], f + (*f == '+' || *f == '-'),
                              *f == '-' ? "off" : "on");
    case SV_ARCH_PPC64:
        return sv_field_error(err, "", path,
                              "QEMU's POWER CPU models have no feature switches (the pseries "
                              "capabilities are machine.options, e.g. cap-htm=off)");
    case SV_ARCH_DEFAULT:
    case SV_ARCH_X86_64:
    case SV__ARCH_MAX:
        break;
    }
    return 0;
}

/* The CPU topology as QEMU 7.2's machine_parse_smp_config() completes it
 * (clusters are always 1 here). */
typedef struct smp_topo {
    long long sockets, dies, cores, threads, max_cpus;
    bool computed_sockets, computed_cores, computed_threads;
} smp_topo;

static smp_topo smp_complete(const sv_qemu_config *cfg)
{
    const sv_qsmp *s = &cfg->smp;
    smp_topo t = {s->sockets, s->dies ? s->dies : 1, s->cores, s->threads,
                  s->max_cpus ? s->max_cpus : s->cpus, !s->sockets, !s->cores, !s->threads};
    /* Machines before 6.2 fill in sockets first, later ones cores. */
    bool prefer_sockets = machine_older_than(cfg, 6, 2);
    if (prefer_sockets ? !t.sockets : (t.cores && !t.sockets)) {
        t.cores = t.cores ? t.cores : 1;
        t.threads = t.threads ? t.threads : 1;
        t.sockets = t.max_cpus / (t.dies * t.cores * t.threads);
    } else if (!t.cores) {
        t.sockets = t.sockets ? t.sockets : 1;
        t.threads = t.threads ? t.threads : 1;
        t.cores = t.max_cpus / (t.sockets * t.dies * t.threads);
    }
    if (!t.threads)
        t.threads = t.max_cpus / (t.sockets * t.dies * t.cores);
    return t;
}

/* mc->max_cpus of QEMU 7.2's machine types; 0 when not known. */
static long long machine_max_cpus(const sv_qemu_config *cfg)
{
    switch ((sv_machine_family)sv_qdev_machine_family(cfg)) {
    case SV_MACH_PC:
        return 255;
    case SV_MACH_Q35:
        return machine_older_than(cfg, 2, 8) ? 255 : 288;
    case SV_MACH_MICROVM:
        return 288;
    case SV_MACH_ARM_VIRT:
        return machine_older_than(cfg, 3, 0) ? 255 : 512;
    case SV_MACH_PSERIES:
        return 4096;
    case SV_MACH_S390:
        return 248;
    case SV_MACH_OTHER:
        break;
    }
    return 0;
}

/* The CPUs the interrupt controller of aarch64 virt serves (virt_max_cpus()):
 * 8 with GICv2, 317 with GICv4's larger redistributors, the machine's limit
 * with GICv3. Under TCG no gic-version means GICv2 and max means GICv3 (GICv4
 * with virtualization=on); under KVM those follow the host: 0, not known. */
static long long virt_gic_max_cpus(const sv_qemu_config *cfg, int *version)
{
    bool kvm = sv_qdev_accel_is_kvm(cfg);
    *version = 0;
    if (sv_qemu_config_machine_opt_is(cfg, "gic-version", "2"))
        *version = 2;
    else if (sv_qemu_config_machine_opt_is(cfg, "gic-version", "3"))
        *version = 3;
    else if (sv_qemu_config_machine_opt_is(cfg, "gic-version", "4"))
        *version = 4;
    else if (kvm || sv_qemu_config_machine_opt_is(cfg, "gic-version", "host"))
        return 0;
    else if (sv_qemu_config_machine_opt_is(cfg, "gic-version", "max"))
        *version = sv_qemu_config_machine_opt_is(cfg, "virtualization", "on") ? 4 : 3;
    else
        *version = 2;
    return *version == 2 ? 8 : *version == 4 ? 317 : 0;
}

/* Bits of an APIC ID field holding `count` values (apicid_bitwidth_for_count()). */
static int apic_id_width(long long count)
{
    int w = 0;
    while ((1LL << w) < count)
        w++;
    return w;
}

/* QEMU's x86 APIC ID of CPU `index`: socket, die, core and thread ids, each
 * below in a field as wide as its count needs (x86_apicid_from_cpu_idx()). */
static long long x86_apic_id(const smp_topo *t, long long index)
{
    int smt_w = apic_id_width(t->threads), core_w = apic_id_width(t->cores),
        die_w = apic_id_width(t->dies);
    long long pkg = index / (t->dies * t->cores * t->threads);
    long long die = index / (t->cores * t->threads) % t->dies;
    long long core = index / t->threads % t->cores;
    long long smt = index % t->threads;
    return pkg << (smt_w + core_w + die_w) | die << (smt_w + core_w) | core << smt_w | smt;
}

static void topo_term(sv_strbuf *sb, const char *name, long long v, bool computed, bool first)
{
    sv_strbuf_appendf(sb, "%s%s (%lld%s)", first ? "" : " * ", name, v,
                      computed ? ", computed" : "");
}

static int validate_smp(const sv_qemu_config *cfg, sv_error **err)
{
    const sv_qsmp *s = &cfg->smp;
    if (s->max_cpus && s->max_cpus < s->cpus)
        return sv_field_error(err, "smp", "max_cpus", "%lld is less than cpus (%lld)",
                              (long long)s->max_cpus, (long long)s->cpus);
    if (!s->cpus && (s->cores || s->threads || s->sockets || s->dies || s->max_cpus))
        return sv_field_error(err, "smp", "cpus", "is required with the other smp keys");
    if (!s->cpus)
        return 0;
    int arch = sv_qemu_config_arch(cfg);
    int family = sv_qdev_machine_family(cfg);
    const char *machine = sv_qdev_machine_type(cfg);
    bool x86_dies = arch == SV_ARCH_X86_64 && family != SV_MACH_MICROVM;
    if (s->dies > 1 && !x86_dies)
        return sv_field_error(err, "smp", "dies",
                              "machine %s has no dies in its CPU topology (only QEMU's x86 pc "
                              "and q35 machines have): leave dies out or set it to 1",
                              machine);
    smp_topo t = smp_complete(cfg);
    if (t.sockets * t.dies * t.cores * t.threads != t.max_cpus) {
        _cleanup_strbuf_ sv_strbuf sb = SV_STRBUF_INIT;
        topo_term(&sb, "sockets", t.sockets, t.computed_sockets, true);
        if (x86_dies || s->dies)
            topo_term(&sb, "dies", t.dies, false, false);
        topo_term(&sb, "cores", t.cores, t.computed_cores, false);
        topo_term(&sb, "threads", t.threads, t.computed_threads, false);
        _cleanup_free_ char *terms = sv_strbuf_steal(&sb);
        return sv_error_set(err, EINVAL,
                            "smp: the topology must multiply out to max_cpus (cpus when "
                            "max_cpus is absent): %s is %lld, not %lld (QEMU computes a "
                            "missing sockets, cores or threads as max_cpus divided by the others)",
                            terms ? terms : "sockets * cores * threads",
                            t.sockets * t.dies * t.cores * t.threads, t.max_cpus);
    }
    const char *max_field = s->max_cpus ? "max_cpus" : "cpus";
    long long limit = machine_max_cpus(cfg);
    if (limit && t.max_cpus > limit)
        return sv_field_error(err, "smp", max_field,
                              "%lld is more than the %lld CPUs machine %s takes", t.max_cpus, limit,
                              machine);
    if (family == SV_MACH_ARM_VIRT) {
        int gic;
        long long gic_limit = virt_gic_max_cpus(cfg, &gic);
        const char *opts = cfg->machine.options ? cfg->machine.options : "";
        bool default_gic = !strstr(opts, "gic-version=");
        if (gic_limit && t.max_cpus > gic_limit)
            return sv_field_error(err, "smp", max_field,
                                  "%lld is more than the %lld CPUs the GICv%d of machine %s "
                                  "serves (%sgic-version=3 in machine.options serves up to %lld)",
                                  t.max_cpus, gic_limit, gic, machine,
                                  default_gic ? "GICv2 is the default under TCG; " : "", limit);
    }
    /* Under TCG x86_cpus_init() wants every APIC ID below 255: more needs
     * x2APIC, which QEMU offers only with KVM's in-kernel irqchip. */
    if ((family == SV_MACH_PC || family == SV_MACH_Q35 || family == SV_MACH_MICROVM) &&
        !sv_qdev_accel_is_kvm(cfg) && !accel_first_is(cfg, "xen")) {
        long long id = x86_apic_id(&t, t.max_cpus - 1);
        if (id > 254)
            return sv_field_error(
                err, "smp", max_field,
                "CPU %lld gets APIC ID %lld, and under TCG QEMU's x86 machines take APIC IDs up "
                "to 254 only (x2APIC needs KVM); an APIC ID has a field each for thread, core "
                "and die as wide as their count rounded up to a power of two",
                t.max_cpus - 1, id);
    }
    const char *computed =
        s->threads ? "" : " (computed by QEMU from max_cpus / (sockets * cores))";
    if (arch == SV_ARCH_S390X && t.threads > 1)
        return sv_field_error(err, "smp", "threads",
                              "%lld%s: s390x CPUs have 1 thread each (QEMU refuses more)",
                              t.threads, computed);
    if (family == SV_MACH_PSERIES && t.threads > 1 && !sv_qdev_accel_is_kvm(cfg))
        return sv_field_error(err, "smp", "threads",
                              "%lld%s: under TCG QEMU runs pseries with 1 thread per core only "
                              "(more needs KVM)",
                              t.threads, computed);
    return 0;
}

static void format_bytes(char *buf, size_t n, uint64_t bytes)
{
    if (bytes && bytes % (1024 * MiB) == 0)
        snprintf(buf, n, "%lluG", (unsigned long long)(bytes / (1024 * MiB)));
    else if (bytes && bytes % MiB == 0)
        snprintf(buf, n, "%lluM", (unsigned long long)(bytes / MiB));
    else if (bytes && bytes % KiB == 0)
        snprintf(buf, n, "%lluK", (unsigned long long)(bytes / KiB));
    else
        snprintf(buf, n, "%llu bytes", (unsigned long long)bytes);
}

static bool is_bare_number(const char *v)
{
    return v && *v && strspn(v, "0123456789") == strlen(v);
}

/* memory.size as QEMU 7.2's -m takes it: a bare number counts MiB, and
 * machine_set_mem() rounds it up to 8 KiB. */
static int parse_ram_size(const char *v, uint64_t *out)
{
    uint64_t b;
    int r = sv_parse_size(v, MiB, &b);
    if (r < 0)
        return r;
    if (b > UINT64_MAX - (8 * KiB - 1))
        return -ERANGE;
    *out = (b + 8 * KiB - 1) & ~(8 * KiB - 1);
    return 0;
}

static bool memory_knobs(const sv_qknobs *k)
{
    return k->huge_pages || k->file_backed_mem || k->mem_shared || k->mem_prealloc;
}

static int validate_memory(const sv_qemu_config *cfg, sv_error **err)
{
    const sv_qmemory *m = &cfg->memory;
    int r;
    if (!m->size && !m->max_mem && !m->slots && !m->path)
        return 0;
    if (!m->size)
        return sv_field_error(err, "memory", "size", "is required");
    if ((r = sv_check_size("memory", "size", m->size, err)) < 0)
        return r;
    if (m->max_mem && (r = sv_check_size("memory", "max_mem", m->max_mem, err)) < 0)
        return r;
    if ((r = sv_check_abs_path("memory", "path", m->path, false, err)) < 0)
        return r;
    int arch = sv_qemu_config_arch(cfg);
    int family = sv_qdev_machine_family(cfg);
    const char *machine = sv_qdev_machine_type(cfg);
    /* QEMU 7.2 takes slots and maxmem there and does nothing with them. */
    if ((m->slots || m->max_mem) && (family == SV_MACH_MICROVM || arch == SV_ARCH_S390X))
        return sv_field_error(err, "memory", m->max_mem ? "max_mem" : "slots",
                              "machine %s has no memory hotplug: QEMU takes slots and max_mem "
                              "there and does nothing with them (nor maps a dimm into the "
                              "guest); leave them out",
                              machine);
    if (m->slots && !m->max_mem)
        return sv_field_error(err, "memory", "slots", "needs max_mem");

    uint64_t raw = 0, size, max_mem = 0;
    r = parse_ram_size(m->size, &size);
    if (r == -ERANGE)
        return sv_field_error(err, "memory", "size",
                              "is too large (a bare number counts MiB; QEMU's sizes end at "
                              "2^64 - 1 bytes)");
    if (r < 0)
        return sv_field_error(err, "memory", "size", "invalid size");
    if (size == 0)
        return sv_field_error(err, "memory", "size",
                              "must be more than 0 (QEMU would take 0 as its default size)");
    (void)sv_parse_size(m->size, MiB, &raw);
    char size_text[48], max_text[48];
    format_bytes(size_text, sizeof(size_text), size);
    if (m->max_mem) {
        if (sv_parse_size(m->max_mem, 1, &max_mem) < 0)
            return sv_field_error(err, "memory", "max_mem", "invalid size");
        format_bytes(max_text, sizeof(max_text), max_mem);
        if (max_mem < size)
            return sv_field_error(
                err, "memory", "max_mem", "%s is less than size (%s%s)%s", max_text, size_text,
                is_bare_number(m->size) ? ", a bare size counts MiB"
                : raw == size           ? ""
                                        : ", which QEMU rounds up to 8 KiB",
                is_bare_number(m->max_mem) ? ": a bare max_mem counts bytes, as QEMU's maxmem "
                                             "does; give it a unit (K, M, G, T)"
                                           : "");
        if (m->slots && max_mem == size)
            return sv_field_error(err, "memory", "slots",
                                  "needs max_mem (%s) larger than size: QEMU refuses slots "
                                  "with no room to plug memory in",
                                  max_text);
    }
    /* spapr hands memory to the guest in 256 MiB logical memory blocks. */
    if (family == SV_MACH_PSERIES) {
        if (size % (256 * MiB))
            return sv_field_error(err, "memory", "size",
                                  "%s is not a multiple of 256M, which machine %s needs (it "
                                  "gives the guest memory in 256 MiB blocks)",
                                  size_text, machine);
        if (m->max_mem && max_mem % (256 * MiB))
            return sv_field_error(err, "memory", "max_mem",
                                  "%s is not a multiple of 256M, which machine %s needs (it "
                                  "gives the guest memory in 256 MiB blocks)",
                                  max_text, machine);
    }
    if (arch == SV_ARCH_S390X && size % MiB)
        return sv_field_error(err, "memory", "size",
                              "%s%s%s%s is not a multiple of 1M, which s390x needs", m->size,
                              raw == size ? "" : " (",
                              raw == size ? "" : size_text,
                              raw == size ? "" : " once QEMU rounds it up to 8 KiB)");
    /* The memory knobs give the RAM backend size=<memory.size>, which QEMU
     * reads as bytes when bare and does not round: it must come out the
     * same as the machine's RAM size. */
    if (memory_knobs(&cfg->knobs)) {
        uint64_t backend = 0;
        if (sv_parse_size(m->size, 1, &backend) == 0 && backend != size) {
            char backend_text[48];
            format_bytes(backend_text, sizeof(backend_text), backend);
            return sv_field_error(
                err, "memory", "size",
                "\"%s\" gives the RAM backend of the memory knobs %s but the machine %s (%s), and "
                "QEMU wants them equal: write a size with a unit, a multiple of 8K",
                m->size, backend_text, size_text,
                is_bare_number(m->size) ? "-m counts a bare number as MiB, a backend as bytes"
                                        : "QEMU rounds -m up to 8 KiB, not a backend");
        }
    }
    return 0;
}

/* What -vga makes on each machine of QEMU 7.2: the x86 pc and q35 machines
 * take every type, pseries std and cirrus (the ppc64 build has no
 * virtio-vga); microvm, aarch64 virt and s390x create no VGA card at all,
 * ignoring some types with a warning and refusing the others. */
static int check_vga(const sv_qemu_config *cfg, sv_error **err)
{
    static const char *const vgas[] = {"none", "std", "cirrus", "vmware", "qxl", "virtio"};
    const char *v = cfg->vga;
    bool ok = false;
    for (size_t i = 0; i < SV_ARRAY_SIZE(vgas) && !ok; i++)
        ok = strcmp(v, vgas[i]) == 0;
    if (!ok)
        return sv_field_error(err, "", "vga",
                              "unknown VGA type (allowed: none, std, cirrus, vmware, qxl, virtio)");
    if (strcmp(v, "none") == 0)
        return 0;
    const char *machine = sv_qdev_machine_type(cfg);
    if (sv_qemu_config_arch(cfg) == SV_ARCH_S390X)
        return sv_field_error(err, "", "vga",
                              "\"%s\": s390x has no VGA card; use none or leave vga out", v);
    switch ((sv_machine_family)sv_qdev_machine_family(cfg)) {
    case SV_MACH_PSERIES:
        if (strcmp(v, "std") == 0 || strcmp(v, "cirrus") == 0)
            return 0;
        return sv_field_error(err, "", "vga",
                              "\"%s\": machine %s takes none, std or cirrus (QEMU 7.2 for ppc64 "
                              "has no %s VGA card)",
                              v, machine, v);
    case SV_MACH_MICROVM:
    case SV_MACH_ARM_VIRT:
        return sv_field_error(err, "", "vga",
                              "\"%s\": machine %s creates no VGA card from vga (QEMU ignores or "
                              "refuses it); use none or leave vga out",
                              v, machine);
    case SV_MACH_PC:
    case SV_MACH_Q35:
    case SV_MACH_S390:
    case SV_MACH_OTHER:
        break;
    }
    return 0;
}

/* ---- checks across devices ----
 *
 * QEMU creates -device, -object, -chardev, ... in command-line order, which
 * is the order of `devices`. These checks replay that order with QEMU 7.2's
 * rules for ids, buses, PCI slots and CCW device numbers, so a clash is
 * reported here, with its JSON path, instead of by QEMU. Devices QEMU adds on
 * its own without knobs.no_defaults (a VGA card, a NIC) are not modelled:
 * the model then holds a subset of what QEMU holds, so whatever it refuses,
 * QEMU refuses too. */

static const char *const ns_names[] = {
    [SV_QNS_DEVICE] = "-device id",
    [SV_QNS_OBJECT] = "-object id",
    [SV_QNS_CHARDEV] = "-chardev id",
    [SV_QNS_NETDEV] = "-netdev id",
    [SV_QNS_BLOCK] = "drive id or node name",
    [SV_QNS_FSDEV] = "-fsdev id",
};
_Static_assert(SV_ARRAY_SIZE(ns_names) == SV__QNS_MAX, "one name per id namespace");

/* "<prefix><n>" with n < limit, n in decimal without leading zeros. */
static bool is_numbered(const char *id, const char *prefix, size_t limit, size_t *n)
{
    size_t pl = strlen(prefix);
    if (strncmp(id, prefix, pl) != 0 || !isdigit((unsigned char)id[pl]) ||
        (id[pl] == '0' && id[pl + 1]) || strlen(id + pl) > 9)
        return false;
    char *end = NULL;
    unsigned long v = strtoul(id + pl, &end, 10);
    if (*end || v >= limit)
        return false;
    *n = v;
    return true;
}

static bool config_sets_serial(const sv_qemu_config *cfg)
{
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *d = &cfg->devices[i];
        if (d->type == SV_QDEV_LEGACY_SERIAL ||
            (d->type == SV_QDEV_CHAR && d->u.chr.driver == SV_CHARDRV_SERIAL))
            return true;
    }
    return false;
}

static size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static char *xasprintf_or_null(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf_or_null(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* Who holds an id that no entry of the config sets (one sandvm generates, or
 * one of QEMU's default chardevs and drives), as a new string; NULL if none. */
static char *reserved_id_owner(const sv_qemu_config *cfg, int ns, const char *id)
{
    const sv_qknobs *k = &cfg->knobs;
    int family = sv_qdev_machine_family(cfg);
    bool defaults = !k->no_defaults && family != SV_MACH_OTHER;
    bool default_serial = defaults && !k->no_serial && !config_sets_serial(cfg);
    size_t n;
    switch ((sv_qns)ns) {
    case SV_QNS_CHARDEV:
        if (is_numbered(id, "qmp", cfg->n_qmp_sockets, &n))
            return xasprintf_or_null("the QMP monitor sandvm creates for qmp_sockets[%zu]", n);
        if (strcmp(id, "serial0") == 0 && default_serial)
            return strdup("QEMU's default serial port (set knobs.no_defaults or knobs.no_serial)");
        if (strcmp(id, "parallel0") == 0 && defaults && !k->no_parallel &&
            family != SV_MACH_PSERIES && family != SV_MACH_S390)
            return strdup("QEMU's default parallel port (set knobs.no_defaults or "
                          "knobs.no_parallel)");
        /* -nographic puts the default monitor on the default serial port. */
        if (strcmp(id, "compat_monitor0") == 0 && defaults && cfg->n_qmp_sockets == 0 &&
            !(k->no_graphic && default_serial))
            return strdup("QEMU's default monitor (set knobs.no_defaults or add a qmp_sockets "
                          "entry)");
        return NULL;
    case SV_QNS_OBJECT:
        if (strcmp(id, RAM_BACKEND_ID) == 0 && cfg->memory.size &&
            (k->huge_pages || k->file_backed_mem || k->mem_shared || k->mem_prealloc))
            return strdup("the RAM backend sandvm creates for the memory knobs");
        return NULL;
    case SV_QNS_BLOCK:
        /* QEMU names an if=pflash drive "pflash<unit>". */
        if (is_numbered(id, "pflash", strv_len(cfg->pflash), &n))
            return xasprintf_or_null("the drive QEMU creates for pflash[%zu]", n);
        for (size_t i = 0; strcmp(id, "pflash0") == 0 && i < cfg->n_devices; i++) {
            const sv_qdev *d = &cfg->devices[i];
            if (d->type == SV_QDEV_OBJECT && d->u.object.object_type == SV_OBJ_SEV_GUEST &&
                d->u.object.file)
                return xasprintf_or_null("the drive QEMU creates for the file of devices[%zu]", i);
        }
        return NULL;
    case SV_QNS_DEVICE:
    case SV_QNS_NETDEV:
    case SV_QNS_FSDEV:
    case SV__QNS_MAX:
        break;
    }
    return NULL;
}

typedef struct id_use {
    int ns;
    const char *id, *field;
    char *path; /* JSON path of the entry that sets it */
} id_use;

typedef struct id_uses {
    id_use *v;
    size_t n;
} id_uses;

static void id_uses_done(id_uses *u)
{
    for (size_t i = 0; i < u->n; i++)
        free(u->v[i].path);
    free(u->v);
}

static int check_ids(const sv_qemu_config *cfg, const sv_qdev_desc *descs, sv_error **err)
{
    size_t cap = cfg->n_io_threads + 1;
    for (size_t i = 0; i < cfg->n_devices; i++)
        cap += descs[i].n_ids;
    _cleanup_(id_uses_done) id_uses u = {calloc(cap, sizeof(id_use)), 0};
    if (!u.v)
        return sv_error_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_io_threads; i++)
        u.v[u.n++] = (id_use){SV_QNS_OBJECT, cfg->io_threads[i].id, "id",
                              sv_json_path_index("io_threads", i)};
    for (size_t i = 0; i < cfg->n_devices; i++)
        for (size_t k = 0; k < descs[i].n_ids; k++)
            u.v[u.n++] = (id_use){descs[i].ids[k].ns, descs[i].ids[k].id, descs[i].ids[k].field,
                                  sv_json_path_index("devices", i)};
    for (size_t i = 0; i < u.n; i++) {
        const id_use *a = &u.v[i];
        if (!a->path)
            return sv_error_set(err, ENOMEM, "out of memory");
        _cleanup_free_ char *owner = reserved_id_owner(cfg, a->ns, a->id);
        if (owner)
            return sv_field_error(err, a->path, a->field, "\"%s\" is already the %s of %s", a->id,
                                  ns_names[a->ns], owner);
        for (size_t j = 0; j < i; j++) {
            const id_use *b = &u.v[j];
            if (b->ns != a->ns || strcmp(b->id, a->id) != 0)
                continue;
            bool plain = strcmp(b->field, "id") == 0;
            return sv_field_error(err, a->path, a->field, "\"%s\" is already the %s of %s%s%s",
                                  a->id, ns_names[a->ns], b->path, plain ? "" : ".",
                                  plain ? "" : b->field);
        }
    }
    return 0;
}

/* ---- buses ---- */

#define PCI_SLOTS 32
#define PCI_DEVFNS (PCI_SLOTS * 8)
#define OWNER_FREE (-1L)
#define OWNER_MACHINE (-2L)

/* Who holds a PCI function, a virtio-mmio transport or a CCW number. */
typedef struct holder {
    long owner;          /* device index, OWNER_FREE or OWNER_MACHINE */
    bool placed;         /* QEMU chose the place (the device gave none) */
    bool multifunction;  /* PCI function 0 of a multifunction device */
    const char *builtin; /* OWNER_MACHINE: what the machine has there */
} holder;

typedef struct pci_bus {
    const char *name; /* the root bus's, or its bridge's id */
    bool pcie_port;   /* a PCIe root port's: QEMU turns legacy virtio off there */
    holder fn[PCI_DEVFNS];
} pci_bus;

typedef struct ccw_number {
    uint32_t key; /* cssid << 24 | ssid << 16 | devno */
    holder h;
} ccw_number;

typedef struct topo {
    const sv_qemu_config *cfg;
    const sv_qdev_desc *descs;
    pci_bus **pci; /* [0] is the root bus; none when the machine is not modelled */
    size_t n_pci;
    int n_mmio; /* virtio-mmio transports; <= 0: not modelled */
    holder mmio[32];
    ccw_number *ccw;
    size_t n_ccw;
} topo;

static void topo_done(topo *t)
{
    for (size_t i = 0; i < t->n_pci; i++)
        free(t->pci[i]);
    free(t->pci);
    free(t->ccw);
}

static pci_bus *topo_add_pci(topo *t, const char *name, bool pcie_port)
{
    pci_bus **v = realloc(t->pci, (t->n_pci + 1) * sizeof(*v));
    if (!v)
        return NULL;
    t->pci = v;
    pci_bus *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->name = name;
    b->pcie_port = pcie_port;
    for (size_t i = 0; i < PCI_DEVFNS; i++)
        b->fn[i].owner = OWNER_FREE;
    t->pci[t->n_pci++] = b;
    return b;
}

static void pci_builtin(pci_bus *b, int slot, int fn, bool multifunction, const char *what)
{
    b->fn[slot * 8 + fn] = (holder){OWNER_MACHINE, false, multifunction, what};
}

/* The root bus with the devices the machine itself puts on it (QEMU 7.2's
 * query-pci with -nodefaults). */
static int topo_init_pci(topo *t)
{
    const char *root = sv_qdev_root_bus(t->cfg);
    if (!root)
        return 0;
    pci_bus *b = topo_add_pci(t, root, false);
    if (!b)
        return -ENOMEM;
    switch ((sv_machine_family)sv_qdev_machine_family(t->cfg)) {
    case SV_MACH_PC:
        pci_builtin(b, 0, 0, false, "the machine's i440FX host bridge");
        pci_builtin(b, 1, 0, true, "the machine's PIIX3 ISA bridge");
        pci_builtin(b, 1, 1, false, "the machine's PIIX3 IDE controller");
        pci_builtin(b, 1, 3, false, "the machine's PIIX4 ACPI controller");
        break;
    case SV_MACH_Q35:
        pci_builtin(b, 0, 0, false, "the machine's q35 host bridge");
        pci_builtin(b, 0x1f, 0, true, "the machine's ICH9 LPC bridge");
        pci_builtin(b, 0x1f, 2, false, "the machine's ICH9 SATA controller");
        pci_builtin(b, 0x1f, 3, false, "the machine's ICH9 SMBus controller");
        break;
    case SV_MACH_MICROVM:
    case SV_MACH_ARM_VIRT:
        pci_builtin(b, 0, 0, false, "the machine's PCIe host bridge");
        break;
    case SV_MACH_PSERIES:
    case SV_MACH_S390:
    case SV_MACH_OTHER:
        break;
    }
    return 0;
}

static pci_bus *topo_find_pci(const topo *t, const char *name)
{
    for (size_t i = 0; i < t->n_pci; i++)
        if (strcmp(t->pci[i]->name, name) == 0)
            return t->pci[i];
    return NULL;
}

/* The bus a device offers, "<id>" for PCI and "<id>.0" for the others, as
 * a new string. */
static char *provided_bus_name(const sv_qdev_desc *d)
{
    if (d->provides == SV_QBUS_PCI)
        return strdup(d->provides_id);
    return xasprintf_or_null("%s.0", d->provides_id);
}

/* A device after `self` offering a bus of `kind` named `name`, or -1. */
static long later_provider(const topo *t, size_t self, int kind, const char *name)
{
    for (size_t i = self + 1; i < t->cfg->n_devices; i++) {
        const sv_qdev_desc *d = &t->descs[i];
        if (d->provides != kind)
            continue;
        _cleanup_free_ char *bus = provided_bus_name(d);
        if (bus && strcmp(bus, name) == 0)
            return (long)i;
    }
    return -1;
}

static char *pci_holder_name(const holder *h)
{
    if (h->owner == OWNER_MACHINE)
        return strdup(h->builtin);
    return xasprintf_or_null("devices[%ld]%s", h->owner,
                             h->placed ? " (QEMU put it there: a device without addr gets the "
                                         "lowest free slot)"
                                       : "");
}

/* QEMU's pci_init_multifunction(): a function other than 0 needs function 0
 * to be a multifunction device, and so does a function 0 whose slot has
 * other functions already. `placed`: QEMU chose the slot (no addr). */
static int pci_check_functions(const pci_bus *b, int devfn, bool multifunction, bool placed,
                               const char *path, sv_error **err)
{
    int slot = devfn / 8, fn = devfn % 8;
    if (fn) {
        const holder *f0 = &b->fn[slot * 8];
        if (f0->owner == OWNER_FREE || f0->multifunction)
            return 0;
        _cleanup_free_ char *owner = pci_holder_name(f0);
        return sv_field_error(err, path, "addr",
                              "function 0 of slot 0x%x of bus %s holds %s, a single-function "
                              "device: QEMU puts nothing at its function %d",
                              slot, b->name, owner ? owner : "a device", fn);
    }
    for (int f = 1; f < 8 && !multifunction; f++) {
        if (b->fn[slot * 8 + f].owner == OWNER_FREE)
            continue;
        _cleanup_free_ char *owner = pci_holder_name(&b->fn[slot * 8 + f]);
        if (placed)
            return sv_error_set(err, EINVAL,
                                "%s: QEMU gives this device (it has no addr) slot 0x%x of bus %s, "
                                "whose function %d holds %s; function 0 there must be a "
                                "multifunction device: give this device an addr",
                                path, slot, b->name, f, owner ? owner : "a device");
        return sv_field_error(err, path, "addr",
                              "function %d of slot 0x%x of bus %s holds %s, so function 0 must be "
                              "a multifunction device",
                              f, slot, b->name, owner ? owner : "a device");
    }
    return 0;
}

static int place_pci(topo *t, size_t i, const char *path, sv_error **err)
{
    const sv_qdev_desc *d = &t->descs[i];
    if (t->n_pci == 0)
        return 0;
    pci_bus *b = t->pci[0];
    if (d->bus) {
        /* A qdev path ("/machine/..."): not checked. */
        if (strchr(d->bus, '/'))
            return 0;
        b = topo_find_pci(t, d->bus);
        if (!b) {
            long later = later_provider(t, i, SV_QBUS_PCI, d->bus);
            if (later >= 0)
                return sv_field_error(err, path, "bus",
                                      "\"%s\" is the bus of devices[%ld], which comes after this "
                                      "device: QEMU creates the devices in order",
                                      d->bus, later);
            return sv_field_error(err, path, "bus",
                                  "\"%s\" names no PCI bus: expected %s (the machine's root bus) "
                                  "or the id of a bridge or pcie_root_port listed before this "
                                  "device",
                                  d->bus, t->pci[0]->name);
        }
    }
    if (d->disable_modern && b->pcie_port)
        return sv_field_error(err, path, "disable_modern",
                              "bus %s is a PCIe root port's, where QEMU turns a virtio device's "
                              "legacy mode off: with disable_modern it would have no mode left "
                              "(put it on %s or behind a bridge)",
                              b->name, t->pci[0]->name);
    int devfn = -1;
    if (d->addr) {
        const char *s = d->addr;
        if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
            s += 2;
        char *end = NULL;
        unsigned long slot = strtoul(s, &end, 16);
        unsigned long fn = *end == '.' ? strtoul(end + 1, NULL, 10) : 0;
        if (slot >= PCI_SLOTS || fn >= 8)
            return 0;
        devfn = (int)(slot * 8 + fn);
        if (b->fn[devfn].owner != OWNER_FREE) {
            _cleanup_free_ char *owner = pci_holder_name(&b->fn[devfn]);
            return sv_field_error(err, path, "addr",
                                  "slot 0x%lx function %lu of bus %s is taken by %s", slot, fn,
                                  b->name, owner ? owner : "another device");
        }
    } else {
        for (int s = 0; s < PCI_SLOTS && devfn < 0; s++)
            if (b->fn[s * 8].owner == OWNER_FREE)
                devfn = s * 8;
        if (devfn < 0)
            return sv_error_set(err, EINVAL,
                                "%s: bus %s has no free slot left for this device (QEMU gives a "
                                "device without addr the lowest free one of its %d)",
                                path, b->name, PCI_SLOTS);
    }
    int r = pci_check_functions(b, devfn, d->multifunction, !d->addr, path, err);
    if (r < 0)
        return r;
    b->fn[devfn] = (holder){(long)i, !d->addr, d->multifunction, NULL};
    return 0;
}

/* "virtio-mmio-bus.<n>" with n < limit, or -1. */
static int mmio_bus_index(const char *bus, int limit)
{
    size_t n;
    if (!is_numbered(bus, "virtio-mmio-bus.", (size_t)limit, &n))
        return -1;
    return (int)n;
}

static int place_mmio(topo *t, size_t i, const char *path, sv_error **err)
{
    const sv_qdev_desc *d = &t->descs[i];
    const char *machine = sv_qdev_machine_type(t->cfg);
    int slot = -1;
    if (t->n_mmio <= 0)
        return 0;
    if (d->bus) {
        if (strchr(d->bus, '/'))
            return 0;
        slot = mmio_bus_index(d->bus, t->n_mmio);
        if (slot < 0)
            return sv_field_error(err, path, "bus",
                                  "\"%s\" names no virtio-mmio bus: machine %s has "
                                  "virtio-mmio-bus.0 to virtio-mmio-bus.%d",
                                  d->bus, machine, t->n_mmio - 1);
        const holder *h = &t->mmio[slot];
        if (h->owner != OWNER_FREE)
            return sv_field_error(err, path, "bus", "%s is taken by devices[%ld]%s", d->bus,
                                  h->owner,
                                  h->placed ? " (QEMU put it there: a device without bus gets "
                                              "the highest-numbered free virtio-mmio bus)"
                                            : "");
    } else {
        for (int s = t->n_mmio - 1; s >= 0 && slot < 0; s--)
            if (t->mmio[s].owner == OWNER_FREE)
                slot = s;
        if (slot < 0)
            return sv_error_set(err, EINVAL,
                                "%s: too many virtio-mmio devices: machine %s has %d virtio-mmio "
                                "transports and devices before this one take them all%s",
                                path, machine, t->n_mmio,
                                t->n_mmio == 8 ? " (microvm has 24 with ACPI and ioapic2 on)" : "");
    }
    t->mmio[slot] = (holder){(long)i, !d->bus, false, NULL};
    return 0;
}

/* "fe.0.0001" (validated) as cssid << 24 | ssid << 16 | devno. */
static uint32_t ccw_key(const char *devno)
{
    char *end = NULL;
    unsigned long cssid = strtoul(devno, &end, 16);
    unsigned long ssid = strtoul(end + 1, &end, 16);
    unsigned long num = strtoul(end + 1, NULL, 16);
    return (uint32_t)(cssid << 24 | ssid << 16 | num);
}

static const ccw_number *ccw_find(const topo *t, uint32_t key)
{
    for (size_t j = 0; j < t->n_ccw; j++)
        if (t->ccw[j].key == key)
            return &t->ccw[j];
    return NULL;
}

static int place_ccw(topo *t, size_t i, const char *path, sv_error **err)
{
    const sv_qdev_desc *d = &t->descs[i];
    uint32_t key;
    if (d->bus && !strchr(d->bus, '/') && strcmp(d->bus, "virtual-css") != 0)
        return sv_field_error(err, path, "bus",
                              "\"%s\" names no channel subsystem bus: the ccw transport has one, "
                              "virtual-css (or leave bus out)",
                              d->bus);
    if (d->dev_no) {
        key = ccw_key(d->dev_no);
        const ccw_number *used = ccw_find(t, key);
        if (used)
            return sv_field_error(
                err, path, "dev_no", "%x.%x.%04x is already the device number of devices[%ld]%s",
                key >> 24, (key >> 16) & 0xff, key & 0xffff, used->h.owner,
                used->h.placed ? " (QEMU numbered it: a ccw device without dev_no gets the lowest "
                                 "free fe.0.xxxx)"
                               : "");
    } else {
        /* QEMU numbers it in the virtual channel subsystem fe, subchannel set 0. */
        uint32_t devno = 0;
        while (devno <= 0xffff && ccw_find(t, 0xfeu << 24 | devno))
            devno++;
        if (devno > 0xffff)
            return sv_error_set(err, EINVAL, "%s: no free CCW device number left in fe.0", path);
        key = 0xfeu << 24 | devno;
    }
    ccw_number *v = realloc(t->ccw, (t->n_ccw + 1) * sizeof(*v));
    if (!v)
        return sv_error_set(err, ENOMEM, "out of memory");
    t->ccw = v;
    t->ccw[t->n_ccw++] = (ccw_number){key, {(long)i, !d->dev_no, false, NULL}};
    return 0;
}

/* scsi-hd on a SCSI bus, virtconsole and virtserialport on a virtio-serial
 * bus: "<controller id>.0" of a controller listed before the device. */
static int place_named(const topo *t, size_t i, const char *path, sv_error **err)
{
    const sv_qdev_desc *d = &t->descs[i];
    bool scsi = d->bus_kind == SV_QBUS_SCSI;
    const char *what = scsi ? "SCSI" : "virtio-serial";
    const char *provider = scsi ? "scsi_controller" : "serial";
    const char *example = NULL;
    for (size_t j = 0; j < i; j++) {
        const sv_qdev_desc *p = &t->descs[j];
        if (p->provides != d->bus_kind)
            continue;
        if (!d->bus)
            return 0;
        _cleanup_free_ char *name = provided_bus_name(p);
        if (!name)
            return sv_error_set(err, ENOMEM, "out of memory");
        if (strcmp(name, d->bus) == 0)
            return 0;
        if (!example)
            example = p->provides_id;
    }
    if (!d->bus)
        return sv_error_set(err, EINVAL,
                            "%s: %s needs a %s bus, and no %s device comes before it: QEMU "
                            "creates the devices in order",
                            path, scsi ? "scsi-hd" : "a virtio-serial port", what, provider);
    if (strchr(d->bus, '/'))
        return 0;
    long later = later_provider(t, i, d->bus_kind, d->bus);
    if (later >= 0)
        return sv_field_error(err, path, "bus",
                              "\"%s\" is the bus of devices[%ld], which comes after this device: "
                              "QEMU creates the devices in order",
                              d->bus, later);
    return sv_field_error(err, path, "bus",
                          "\"%s\" names no %s bus: expected \"<id>.0\" of a %s device listed "
                          "before this one%s%s%s",
                          d->bus, what, provider, example ? " (\"" : "", example ? example : "",
                          example ? ".0\")" : "");
}

static int check_topology(const sv_qemu_config *cfg, const sv_qdev_desc *descs, sv_error **err)
{
    _cleanup_(topo_done) topo t = {.cfg = cfg, .descs = descs};
    if (topo_init_pci(&t) < 0)
        return sv_error_set(err, ENOMEM, "out of memory");
    t.n_mmio = sv_qdev_mmio_transports(cfg);
    if (t.n_mmio > (int)SV_ARRAY_SIZE(t.mmio))
        t.n_mmio = 0;
    for (size_t s = 0; s < SV_ARRAY_SIZE(t.mmio); s++)
        t.mmio[s].owner = OWNER_FREE;
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev_desc *d = &descs[i];
        _cleanup_free_ char *path = sv_json_path_index("devices", i);
        if (!path)
            return sv_error_set(err, ENOMEM, "out of memory");
        int r = 0;
        switch ((sv_qbus)d->bus_kind) {
        case SV_QBUS_PCI:
            r = place_pci(&t, i, path, err);
            break;
        case SV_QBUS_MMIO:
            r = place_mmio(&t, i, path, err);
            break;
        case SV_QBUS_CCW:
            r = place_ccw(&t, i, path, err);
            break;
        case SV_QBUS_SCSI:
        case SV_QBUS_VIRTIO_SERIAL:
            r = place_named(&t, i, path, err);
            break;
        case SV_QBUS_NONE:
        case SV__QBUS_MAX:
            break;
        }
        if (r < 0)
            return r;
        if (d->provides == SV_QBUS_PCI && t.n_pci > 0 &&
            !topo_add_pci(&t, d->provides_id, d->pcie_port))
            return sv_error_set(err, ENOMEM, "out of memory");
    }
    return 0;
}

static int validate_devices(const sv_qemu_config *cfg, sv_error **err)
{
    int r;
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *d = &cfg->devices[i];
        _cleanup_free_ char *p = sv_json_path_index("devices", i);
        if ((r = sv_qdev_table[d->type]->validate(d, cfg, p ? p : "devices", err)) < 0)
            return r;
    }
    _cleanup_free_ sv_qdev_desc *descs = calloc(cfg->n_devices + 1, sizeof(*descs));
    if (!descs)
        return sv_error_set(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const sv_qdev *d = &cfg->devices[i];
        if (sv_qdev_table[d->type]->describe)
            sv_qdev_table[d->type]->describe(d, cfg, &descs[i]);
    }
    if ((r = check_ids(cfg, descs, err)) < 0)
        return r;
    return check_topology(cfg, descs, err);
}

int sv_qemu_config_validate(const sv_qemu_config *cfg, sv_error **err)
{
    int r;
    if ((r = check_binary(cfg->path, err)) < 0)
        return r;
    if (cfg->uuid && (r = check_uuid(cfg->uuid, err)) < 0)
        return r;
    if ((r = check_word("", "cpu_model", cfg->cpu_model, "-_.", "CPU model", err)) < 0)
        return r;
    for (size_t i = 0; cfg->cpu_features && cfg->cpu_features[i]; i++) {
        const char *f = cfg->cpu_features[i];
        if (*f == '+' || *f == '-')
            f++;
        _cleanup_free_ char *p = sv_json_path_index("cpu_features", i);
        if (!*f || !chars_in(f, "-_.=") || strchr(f, '=') == f ||
            (f != cfg->cpu_features[i] && strchr(f, '=')))
            return sv_field_error(err, "", p ? p : "cpu_features",
                                  "invalid CPU feature (expected [+|-]name or name=value)");
        if ((r = check_cpu_feature_form(cfg, p ? p : "cpu_features", cfg->cpu_features[i],
                                        err)) < 0)
            return r;
    }
    if (cfg->cpu_features && cfg->cpu_features[0] && !cfg->cpu_model)
        return sv_field_error(err, "", "cpu_features", "needs cpu_model");
    if (cfg->seccomp_sandbox && (r = check_sandbox(cfg->seccomp_sandbox, err)) < 0)
        return r;
    if ((r = check_word("machine", "type", cfg->machine.type, "-_.", "machine type", err)) < 0)
        return r;
    if (cfg->machine.acceleration) {
        _cleanup_free_ char *copy = strdup(cfg->machine.acceleration);
        char *save = NULL;
        int n = 0;
        for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save), n++)
            if (strcmp(t, "kvm") && strcmp(t, "tcg") && strcmp(t, "xen") && strcmp(t, "qtest"))
                return sv_field_error(err, "machine", "acceleration",
                                      "unknown accelerator \"%s\" (allowed: kvm, tcg, xen, qtest, "
                                      "joined by ':')", t);
        if (n == 0 || strstr(cfg->machine.acceleration, "::"))
            return sv_field_error(err, "machine", "acceleration", "is empty");
    }
    if ((r = check_option_list("machine", "options", cfg->machine.options, err)) < 0)
        return r;
    if (cfg->machine.options && cfg->memory.size && memory_knobs(&cfg->knobs) &&
        strstr(cfg->machine.options, "memory-backend="))
        return sv_field_error(err, "machine", "options",
                              "memory-backend is set by the memory knobs already");
    for (size_t i = 0; i < cfg->n_qmp_sockets; i++) {
        const sv_qqmp_socket *q = &cfg->qmp_sockets[i];
        _cleanup_free_ char *p = sv_json_path_index("qmp_sockets", i);
        if (!q->name == !q->fd)
            return sv_field_error(err, p, "name", "exactly one of name and fd is required");
        if (q->name && (r = sv_check_abs_path(p, "name", q->name, true, err)) < 0)
            return r;
        if (q->name && strlen(q->name) > 107)
            return sv_field_error(err, p, "name",
                                  "is longer than 107 bytes, the limit for a unix socket");
        if (q->no_wait && !q->server)
            return sv_field_error(err, p, "no_wait", "only applies with server");
    }
    if ((r = validate_memory(cfg, err)) < 0)
        return r;
    if (memory_knobs(&cfg->knobs) && !cfg->memory.size)
        return sv_field_error(err, "knobs", cfg->knobs.huge_pages ? "huge_pages" :
                              cfg->knobs.file_backed_mem ? "file_backed_mem" :
                              cfg->knobs.mem_shared ? "mem_shared" : "mem_prealloc",
                              "needs memory.size");
    if (cfg->knobs.file_backed_mem && !cfg->knobs.huge_pages && !cfg->memory.path)
        return sv_field_error(err, "knobs", "file_backed_mem", "needs memory.path");
    if ((r = validate_smp(cfg, err)) < 0)
        return r;
    if (cfg->kernel.initrd_path || cfg->kernel.params || cfg->kernel.path) {
        if ((r = sv_check_abs_path("kernel", "path", cfg->kernel.path, true, err)) < 0 ||
            (r = sv_check_abs_path("kernel", "initrd_path", cfg->kernel.initrd_path, false, err)) < 0)
            return r;
    }
    if (cfg->rtc.base || cfg->rtc.clock || cfg->rtc.drift_fix) {
        if (!cfg->rtc.base)
            return sv_field_error(err, "rtc", "base", "is required");
        if ((r = check_rtc_base(cfg->rtc.base, err)) < 0)
            return r;
    }
    if (cfg->vga && (r = check_vga(cfg, err)) < 0)
        return r;
    if (cfg->global_param && (r = check_global(cfg->global_param, err)) < 0)
        return r;
    if (cfg->bios && cfg->bios[0] != '/' && (strchr(cfg->bios, '/') || !*cfg->bios))
        return sv_field_error(err, "", "bios",
                              "must be an absolute path or a file name from QEMU's firmware directory");
    if (cfg->bios && cfg->bios[0] == '/' &&
        (r = sv_check_abs_path("", "bios", cfg->bios, true, err)) < 0)
        return r;
    for (size_t i = 0; cfg->pflash && cfg->pflash[i]; i++) {
        _cleanup_free_ char *p = sv_json_path_index("pflash", i);
        if ((r = sv_check_abs_path("", p ? p : "pflash", cfg->pflash[i], true, err)) < 0)
            return r;
    }
    if ((r = validate_incoming(&cfg->incoming, err)) < 0)
        return r;
    if (cfg->n_fw_cfg > 0 && !machine_has_fw_cfg(cfg))
        return sv_error_set(err, EINVAL,
                            "fw_cfg[0]: machine \"%s\" has no fw_cfg device (QEMU has none on "
                            "ppc64 pseries and powernv, nor on s390x)",
                            sv_qdev_machine_type(cfg));
    for (size_t i = 0; i < cfg->n_fw_cfg; i++) {
        const sv_qfw_cfg *f = &cfg->fw_cfg[i];
        _cleanup_free_ char *p = sv_json_path_index("fw_cfg", i);
        if ((r = sv_check_required(p, "name", f->name, err)) < 0)
            return r;
        if (strlen(f->name) > 55)
            return sv_field_error(err, p, "name", "is longer than QEMU's 55 bytes");
        if (!f->file == !f->str)
            return sv_field_error(err, p, "file", "exactly one of file and str is required");
        if (f->file && (r = sv_check_abs_path(p, "file", f->file, true, err)) < 0)
            return r;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->fw_cfg[j].name, f->name) == 0)
                return sv_field_error(err, p, "name", "duplicates fw_cfg[%zu]", j);
    }
    for (size_t i = 0; i < cfg->n_io_threads; i++) {
        _cleanup_free_ char *p = sv_json_path_index("io_threads", i);
        if ((r = sv_check_id(p, "id", cfg->io_threads[i].id, true, err)) < 0)
            return r;
    }
    if ((r = sv_check_abs_path("", "pid_file", cfg->pid_file, false, err)) < 0 ||
        (r = sv_check_abs_path("", "log_file", cfg->log_file, false, err)) < 0)
        return r;
    /* QEMU reads -D as a template: "%d" becomes its pid, any other '%' is
     * refused, and there is no escape for a literal '%' */
    if (cfg->log_file && strchr(cfg->log_file, '%'))
        return sv_field_error(err, "", "log_file",
                              "must not contain '%%' (QEMU takes the name as a template)");
    return validate_devices(cfg, err);
}
