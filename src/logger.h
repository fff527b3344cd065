/*
 * The console logger of a VM: a small process (sandvm-logger, built from
 * src/logger_main.c) that owns QEMU's end of the guest console, keeps the
 * guest's output in a capped log in the VM's directory (console.log and
 * console.log.1, together at most console_log_size MiB) and serves the
 * console socket to one client at a time. It runs detached, like QEMU, and
 * ends when QEMU does. Only VMs whose config sets console_log_size have one.
 */
#pragma once

#include <stdint.h>

#include "util/error.h"
#include "util/proc.h"

#define SV_LOGGER_NAME "sandvm-logger"
/* The argument that marks a logger as the one of a VM directory: it is
 * followed by the directory's path on the logger's command line. */
#define SV_LOGGER_MARK "--vm-dir"

/* Where the logger is: $SANDVM_LOGGER (an absolute path), else
 * sandvm-logger next to the running program (a build tree, or a bindir
 * install), else the installed SV_LIBEXECDIR/sandvm-logger. *out is newly
 * allocated. ENOENT "console_log_size: the console logger sandvm-logger was
 * not found (looked in ...)". */
int sv_logger_path(char **out, sv_error **err);

/* Starts the logger of the VM directory `vm_dir` (opened as `dirfd`) on
 * `qemu_fd` (a connected stream socket whose peer QEMU gets as its console)
 * and `listen_fd` (the listening console socket), keeping `bytes` of log,
 * its pid written to `pid_fd`, confined by `cf` (may be NULL). */
int sv_logger_start(const char *vm_dir, int dirfd, int qemu_fd, int listen_fd, int pid_fd,
                    uint64_t bytes, const sv_confine *cf, sv_detached *out, sv_error **err);
