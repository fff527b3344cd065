/* Writing "newc" cpio archives: the format the Linux kernel unpacks from an
 * initramfs, including archives appended to another one. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "util/strbuf.h"

/* Appends a directory entry ("sandvm", mode 0755). */
void sv_cpio_dir(sv_strbuf *sb, const char *name);
/* Appends a regular file with `len` bytes of `data` (mode 0644). */
void sv_cpio_file(sv_strbuf *sb, const char *name, const void *data, size_t len);
/* Appends the TRAILER!!! entry that ends an archive. */
void sv_cpio_end(sv_strbuf *sb);
