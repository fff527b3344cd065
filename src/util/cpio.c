#include <string.h>

#include "util/cpio.h"

static unsigned next_ino = 0x5a000000u;

static void pad4(sv_strbuf *sb)
{
    while (sb->len % 4)
        sv_strbuf_append_c(sb, '\0');
}

static void entry(sv_strbuf *sb, const char *name, unsigned mode, const void *data, size_t len)
{
    size_t namesize = strlen(name) + 1;
    /* magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
     * rdevmajor, rdevminor, namesize, check */
    sv_strbuf_appendf(sb, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X",
                      next_ino++, mode, 0u, 0u, (mode & 0040000) ? 2u : 1u, 0u, len, 0u, 0u, 0u,
                      0u, namesize, 0u);
    sv_strbuf_append_n(sb, name, namesize);
    pad4(sb);
    if (len)
        sv_strbuf_append_n(sb, data, len);
    pad4(sb);
}

void sv_cpio_dir(sv_strbuf *sb, const char *name)
{
    entry(sb, name, 0040755, NULL, 0);
}

void sv_cpio_file(sv_strbuf *sb, const char *name, const void *data, size_t len)
{
    entry(sb, name, 0100644, data, len);
}

void sv_cpio_end(sv_strbuf *sb)
{
    entry(sb, "TRAILER!!!", 0, NULL, 0);
}
