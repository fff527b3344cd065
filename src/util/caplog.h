/*
 * A log with a hard cap on disk: a current file and one rotated predecessor
 * in a directory (given as an fd, so no path is ever resolved again), each
 * kept at most half the cap, so the two together never exceed it however
 * much is written. Files are created fresh (O_EXCL, never through a symlink)
 * and rotation renames within the directory, so an entry planted under either
 * name (a symlink, a hard link) is replaced as a link and its target is
 * never written. Writing never fails the caller: a log that cannot be
 * written any more (disk full, a directory planted under its name) stops
 * logging and says so in sv_caplog_failed().
 *
 * Async-signal-safe and allocation-free, for the console logger
 * (sandvm-logger) and for tests.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sv_caplog {
    int dirfd;            /* borrowed */
    const char *name;     /* "console.log" */
    const char *old_name; /* "console.log.1" */
    uint64_t half;        /* each file's cap: half the total */
    uint64_t size;        /* bytes in the current file */
    uint64_t written;     /* bytes accepted in all */
    uint64_t rotations;
    int fd;
    int error; /* the errno that stopped logging, 0 while it works */
} sv_caplog;

/* Starts a log of at most `max_total` bytes on disk (at least 2) in `dirfd`:
 * removes whatever holds `name` and `old_name` (as links) and creates `name`
 * (mode 0600). 0, or a negative errno (the log is then failed too). */
int sv_caplog_open(sv_caplog *l, int dirfd, const char *name, const char *old_name,
                   uint64_t max_total);
/* Appends `n` bytes, rotating as needed. */
void sv_caplog_write(sv_caplog *l, const void *buf, size_t n);
/* The errno that stopped logging, or 0. */
int sv_caplog_failed(const sv_caplog *l);
void sv_caplog_close(sv_caplog *l);
