#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qemu_argv.h"
#include "qemu/qemu_devices.h"
#include "util/cleanup.h"

#define SV_RAM_BACKEND_ID "sv-ram"

static bool needs_ram_backend(const sv_qemu_config *cfg)
{
    const sv_qknobs *k = &cfg->knobs;
    return cfg->memory.size && (k->huge_pages || k->file_backed_mem || k->mem_shared || k->mem_prealloc);
}

static void add_machine(const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qmachine *m = &cfg->machine;
    bool backend = needs_ram_backend(cfg);
    if (!m->type && !m->acceleration && !m->options && !backend)
        return;
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("type", m->type);
    sv_qopts_str(o, "accel", m->acceleration);
    if (backend)
        sv_qopts_str(o, "memory-backend", SV_RAM_BACKEND_ID);
    _cleanup_free_ char *s = sv_qopts_to_string(o);
    if (!s) {
        sv_argv_fail(a, ENOMEM, "out of memory building the command line");
        return;
    }
    /* options were validated as plain key=value words: they are options by design */
    if (m->options)
        sv_argv_add_pair_fmt(a, "-machine", "%s%s%s", s, *s ? "," : "", m->options);
    else
        sv_argv_add_pair(a, "-machine", s);
}

static void add_cpu(const sv_qemu_config *cfg, sv_argv *a)
{
    if (!cfg->cpu_model)
        return;
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, cfg->cpu_model);
    for (size_t i = 0; cfg->cpu_features && cfg->cpu_features[i]; i++) {
        sv_strbuf_append_c(&sb, ',');
        sv_strbuf_append(&sb, cfg->cpu_features[i]);
    }
    _cleanup_free_ char *s = sv_strbuf_steal(&sb);
    sv_argv_add_pair(a, "-cpu", s);
}

static void add_smp(const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qsmp *s = &cfg->smp;
    if (!s->cpus)
        return;
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("cpus", NULL);
    sv_qopts_int(o, "cpus", s->cpus);
    if (s->sockets)
        sv_qopts_int(o, "sockets", s->sockets);
    if (s->dies)
        sv_qopts_int(o, "dies", s->dies);
    if (s->cores)
        sv_qopts_int(o, "cores", s->cores);
    if (s->threads)
        sv_qopts_int(o, "threads", s->threads);
    if (s->max_cpus)
        sv_qopts_int(o, "maxcpus", s->max_cpus);
    sv_argv_add_qopts(a, "-smp", o);
}

static void add_memory(const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qmemory *m = &cfg->memory;
    if (!m->size)
        return;
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("size", NULL);
    sv_qopts_str(o, "size", m->size);
    if (m->slots)
        sv_qopts_int(o, "slots", m->slots);
    sv_qopts_str(o, "maxmem", m->max_mem);
    sv_argv_add_qopts(a, "-m", o);

    if (!needs_ram_backend(cfg))
        return;
    const sv_qknobs *k = &cfg->knobs;
    const char *mem_path = k->huge_pages ? "/dev/hugepages" : k->file_backed_mem ? m->path : NULL;
    _cleanup_qopts_ sv_qopts *b =
        sv_qopts_new("qom-type", mem_path ? "memory-backend-file" : "memory-backend-ram");
    sv_qopts_str(b, "id", SV_RAM_BACKEND_ID);
    sv_qopts_str(b, "size", m->size);
    sv_qopts_str(b, "mem-path", mem_path);
    if (k->mem_shared)
        sv_qopts_bool(b, "share", true);
    if (k->mem_prealloc)
        sv_qopts_bool(b, "prealloc", true);
    sv_argv_add_qopts(a, "-object", b);
}

static void add_knobs(const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qknobs *k = &cfg->knobs;
    if (k->no_user_config)
        sv_argv_add(a, "-no-user-config");
    if (k->no_defaults)
        sv_argv_add(a, "-nodefaults");
    if (k->no_graphic)
        sv_argv_add(a, "-nographic");
    if (k->no_serial)
        sv_argv_add_pair(a, "-serial", "none");
    if (k->no_parallel)
        sv_argv_add_pair(a, "-parallel", "none");
    if (k->no_reboot)
        sv_argv_add(a, "-no-reboot");
    if (k->no_shutdown)
        sv_argv_add(a, "-no-shutdown");
    if (k->daemonize)
        sv_argv_add(a, "-daemonize");
    if (k->mlock)
        sv_argv_add_pair(a, "-overcommit", "mem-lock=on");
    /* -S once, whether asked for by the knob or implied by an incoming migration */
    if (k->stopped || cfg->incoming.migration_type != SV_QMIG_NONE)
        sv_argv_add(a, "-S");
}

static void add_kernel(const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qkernel *k = &cfg->kernel;
    if (!k->path)
        return;
    /* plain file names and a plain string: QEMU does not parse options in them */
    sv_argv_add_pair(a, "-kernel", k->path);
    if (k->initrd_path)
        sv_argv_add_pair(a, "-initrd", k->initrd_path);
    if (k->params)
        sv_argv_add_pair(a, "-append", k->params);
}

static void add_qmp(const sv_qemu_config *cfg, sv_argv *a)
{
    for (size_t i = 0; i < cfg->n_qmp_sockets; i++) {
        const sv_qqmp_socket *q = &cfg->qmp_sockets[i];
        _cleanup_free_ char *id = NULL;
        if (asprintf(&id, "qmp%zu", i) < 0) {
            sv_argv_fail(a, ENOMEM, "out of memory building the command line");
            return;
        }
        _cleanup_qopts_ sv_qopts *o = sv_qopts_new("backend", "socket");
        sv_qopts_str(o, "id", id);
        if (q->fd) {
            int fd = sv_argv_pass_fd(a, (int)q->fd);
            if (fd < 0)
                return;
            sv_qopts_int(o, "fd", fd);
        } else {
            sv_qopts_str(o, "path", q->name);
        }
        if (q->server) {
            sv_qopts_bool(o, "server", true);
            sv_qopts_bool(o, "wait", !q->no_wait);
        }
        sv_argv_add_qopts(a, "-chardev", o);
        sv_argv_add_pair_fmt(a, "-mon", "chardev=%s,mode=control", id);
    }
}

static void add_rtc(const sv_qemu_config *cfg, sv_argv *a)
{
    static const char *const clocks[] = {NULL, "host", "rt", "vm"};
    static const char *const drift[] = {NULL, "slew", "none"};
    const sv_qrtc *r = &cfg->rtc;
    if (!r->base)
        return;
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("base", NULL);
    sv_qopts_str(o, "base", r->base);
    sv_qopts_str(o, "clock", clocks[r->clock]);
    sv_qopts_str(o, "driftfix", drift[r->drift_fix]);
    sv_argv_add_qopts(a, "-rtc", o);
}

static void add_incoming(const sv_qemu_config *cfg, sv_argv *a)
{
    const sv_qincoming *in = &cfg->incoming;
    switch (in->migration_type) {
    case SV_QMIG_FD: {
        int fd = sv_argv_pass_fd(a, (int)in->fd);
        if (fd >= 0)
            sv_argv_add_pair_fmt(a, "-incoming", "fd:%d", fd);
        break;
    }
    case SV_QMIG_EXEC: {
        /* QEMU hands the text to /bin/sh -c: each configured word is quoted. */
        sv_strbuf sb = SV_STRBUF_INIT;
        sv_strbuf_append(&sb, "exec:");
        for (size_t i = 0; in->exec[i]; i++) {
            if (i)
                sv_strbuf_append_c(&sb, ' ');
            sv_shell_quote(&sb, in->exec[i]);
        }
        _cleanup_free_ char *s = sv_strbuf_steal(&sb);
        sv_argv_add_pair(a, "-incoming", s);
        break;
    }
    case SV_QMIG_DEFER:
        sv_argv_add_pair(a, "-incoming", "defer");
        break;
    case SV_QMIG_TCP: {
        /* QEMU takes an IPv6 address in brackets, or it splits at its colons */
        bool bracket = strchr(in->host, ':') && in->host[0] != '[';
        sv_argv_add_pair_fmt(a, "-incoming", "tcp:%s%s%s:%lld", bracket ? "[" : "", in->host,
                             bracket ? "]" : "", (long long)in->port);
        break;
    }
    default:
        break;
    }
}

static void add_fw_cfg(const sv_qemu_config *cfg, sv_argv *a)
{
    for (size_t i = 0; i < cfg->n_fw_cfg; i++) {
        const sv_qfw_cfg *f = &cfg->fw_cfg[i];
        _cleanup_qopts_ sv_qopts *o = sv_qopts_new("name", NULL);
        sv_qopts_str(o, "name", f->name);
        sv_qopts_str(o, "file", f->file);
        sv_qopts_str(o, "string", f->str);
        sv_argv_add_qopts(a, "-fw_cfg", o);
    }
}

int sv_qemu_build_argv(const sv_qemu_config *cfg, sv_argv **out, sv_error **err)
{
    _cleanup_argv_ sv_argv *a = sv_argv_new();
    if (!a)
        return sv_error_set(err, ENOMEM, "out of memory");

    sv_argv_add(a, sv_qemu_config_binary(cfg));
    if (cfg->name) {
        /* guest= spelled out: a bare first value would be read as a key if it had '=' */
        _cleanup_qopts_ sv_qopts *o = sv_qopts_new("guest", NULL);
        sv_qopts_str(o, "guest", cfg->name);
        sv_argv_add_qopts(a, "-name", o);
    }
    if (cfg->uuid)
        sv_argv_add_pair(a, "-uuid", cfg->uuid);
    add_machine(cfg, a);
    add_cpu(cfg, a);
    add_smp(cfg, a);
    add_memory(cfg, a);
    add_knobs(cfg, a);
    add_kernel(cfg, a);
    if (cfg->bios)
        sv_argv_add_pair(a, "-bios", cfg->bios);
    for (size_t i = 0; cfg->pflash && cfg->pflash[i]; i++) {
        /* -drive instead of -pflash: format given, so QEMU neither probes nor warns */
        _cleanup_qopts_ sv_qopts *o = sv_qopts_new("if", NULL);
        sv_qopts_str(o, "if", "pflash");
        sv_qopts_int(o, "unit", (int64_t)i);
        sv_qopts_str(o, "format", "raw");
        sv_qopts_str(o, "file", cfg->pflash[i]);
        sv_argv_add_qopts(a, "-drive", o);
    }
    add_qmp(cfg, a);
    add_rtc(cfg, a);
    if (cfg->vga)
        sv_argv_add_pair(a, "-vga", cfg->vga);
    if (cfg->global_param)
        sv_argv_add_pair(a, "-global", cfg->global_param);
    for (size_t i = 0; i < cfg->n_io_threads; i++)
        sv_argv_add_pair_fmt(a, "-object", "iothread,id=%s", cfg->io_threads[i].id);
    for (size_t i = 0; i < cfg->n_devices; i++)
        sv_qdev_table[cfg->devices[i].type]->append(&cfg->devices[i], cfg, a);
    add_incoming(cfg, a);
    if (cfg->pid_file)
        sv_argv_add_pair(a, "-pidfile", cfg->pid_file);
    if (cfg->log_file)
        sv_argv_add_pair(a, "-D", cfg->log_file);
    add_fw_cfg(cfg, a);
    if (cfg->seccomp_sandbox)
        sv_argv_add_pair(a, "-sandbox", cfg->seccomp_sandbox);

    int r = sv_argv_take_error(a, err);
    if (r < 0)
        return r;
    *out = TAKE_PTR(a);
    return 0;
}
