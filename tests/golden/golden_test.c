/*
 * Golden tests of the typed QEMU configuration: cases/<case>.json is a QEMU
 * configuration (docs/qemu-config.md), <case>.argv the expected
 * sv_qemu_config_argv_text(); the runner and its options are in
 * tests/lib/golden.h.
 */
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "golden.h"
#include "util/cleanup.h"

#define FIXTURE_DIR "/tmp/sandvm-golden"

/* Files every case may reference; QEMU opens them, so they must exist. */
/* mkdir -p: hostile names contain '/' of their own ("x,filename=/dev/zero"). */
static int mkdir_p(const char *path)
{
    _cleanup_free_ char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

static int make_fixtures(void)
{
    if (mkdir(FIXTURE_DIR, 0755) < 0 && errno != EEXIST)
        return -errno;
    /* Hostile names are real files too, so QEMU must open exactly them. */
    static const char *const dirs[] = {FIXTURE_DIR "/dir", FIXTURE_DIR "/dir,security_model=passthrough",
                                       FIXTURE_DIR "/mem,mem-path=/dev/shm,share=on",
                                       FIXTURE_DIR "/logs/log,append=on,logfile=/etc"};
    for (size_t i = 0; i < SV_ARRAY_SIZE(dirs); i++) {
        int r = mkdir_p(dirs[i]);
        if (r < 0)
            return r;
    }
    static const struct {
        const char *path;
        off_t size;
    } files[] = {{FIXTURE_DIR "/disk.img", 1 << 20},
                 {FIXTURE_DIR "/file.bin", 4096},
                 {FIXTURE_DIR "/disk.img,readonly=on,file.locking=off", 1 << 20},
                 {FIXTURE_DIR "/rng,filename=/dev/zero", 4096}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *parent = strdup(files[i].path);
        if (!parent)
            return -ENOMEM;
        *strrchr(parent, '/') = '\0';
        int r = mkdir_p(parent);
        if (r < 0)
            return r;
        _cleanup_close_ int fd = open(files[i].path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
            return -errno;
        if (st.st_size != files[i].size && ftruncate(fd, files[i].size) < 0)
            return -errno;
    }
    return 0;
}

static int build(const char *json, size_t len, char **text, sv_qemu_config **cfg, sv_error **err)
{
    sv_qemu_config *c = NULL;
    int r = sv_qemu_config_parse(json, len, &c, err);
    if (r == 0)
        r = sv_qemu_config_argv_text(c, text, err);
    if (r < 0) {
        sv_qemu_config_free(c);
        return r;
    }
    *cfg = c;
    return 0;
}

int main(int argc, char **argv)
{
    static const sv_golden_ops ops = {
        .name = "golden",
        .build = build,
        .fixtures = make_fixtures,
        .fixture_dir = FIXTURE_DIR,
    };
    return sv_golden_main(argc, argv, &ops);
}
