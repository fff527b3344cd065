/*
 * virtiofsd, the vhost-user daemon behind shared_fs virtio-fs: its command
 * line and its start. The daemon is QEMU 7.2's C virtiofsd (Debian's
 * /usr/lib/qemu/virtiofsd), which takes its options as libfuse option groups
 * ("-o source=DIR"): a group is split at ',' and '\' escapes the next byte,
 * so the shared directory is escaped (sv_virtiofsd_escape()) and can never
 * end its option and start another one ("/srv/a,allow_root" is one name).
 *
 * virtiofsd serves a listening socket sandvm binds and passes in (--fd), so
 * QEMU can connect the moment it starts, whether or not the daemon is ready.
 */
#pragma once

#include "conf/vm_config.h"
#include "util/argv.h"
#include "util/error.h"
#include "util/proc.h"

/* `s` escaped for a value inside a libfuse option group: '\' before every
 * ',' and '\'. Newly allocated; NULL on out-of-memory. */
char *sv_virtiofsd_escape(const char *s);

/* "source=<escaped shared_dir>": the word after "-o" that names the VM's
 * directory on virtiofsd's command line (also how a recorded virtiofsd is
 * recognised in /proc/PID/cmdline). Newly allocated; NULL on out-of-memory. */
char *sv_virtiofsd_source_arg(const sv_vm_config *vm);

/* virtiofsd's argv for `vm` (shared_fs virtio-fs) serving the listening
 * socket it will see as fd `fd`: the daemon, -f, --fd=N, -o source=...,
 * -o cache=..., then virtio_fs_extra_args as given. Errors: EINVAL naming
 * the key (virtio_fs_cache "metadata", which this virtiofsd lacks; a VM
 * without virtio-fs). */
int sv_virtiofsd_argv(const sv_vm_config *vm, int fd, sv_argv **out, sv_error **err);

/* Starts virtiofsd for `vm` detached (util/proc.h) on the listening socket
 * `listen_fd`, its stderr on `log_fd` (-1: /dev/null), its pid written to
 * `pid_fd` as soon as it exists (-1: nowhere), confined by `cf` (may be
 * NULL). *out receives its pid, start time and pidfd. Errors: those of
 * sv_virtiofsd_argv() and sv_proc_spawn_detached() (ENOENT for a missing
 * daemon). */
int sv_virtiofsd_start(const sv_vm_config *vm, int listen_fd, int log_fd, int pid_fd,
                       const sv_confine *cf, sv_detached *out, sv_error **err);
