/*
 * Golden tests of the typed QEMU configuration: cases/<case>.json is a QEMU
 * configuration (docs/qemu-config.md), <case>.argv the expected
 * sv_qemu_config_argv_text(); the runner and its options are in
 * tests/lib/golden.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "golden.h"
#include "util/cleanup.h"

#define FIXTURE_DIR "/tmp/sandvm-golden"

/* Files every case may reference; QEMU opens them, so they must exist. */
static int make_fixtures(void)
{
    if (mkdir(FIXTURE_DIR, 0755) < 0 && errno != EEXIST)
        return -errno;
    if (mkdir(FIXTURE_DIR "/dir", 0755) < 0 && errno != EEXIST)
        return -errno;
    static const struct {
        const char *path;
        off_t size;
    } files[] = {{FIXTURE_DIR "/disk.img", 1 << 20}, {FIXTURE_DIR "/file.bin", 4096}};
    for (size_t i = 0; i < SV_ARRAY_SIZE(files); i++) {
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
