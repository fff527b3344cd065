/*
 * libsandvm: launch and manage lightweight sandbox VMs.
 *
 * This header is the manual. Every function returns 0 on success or a negative
 * errno-style value on failure; on failure, when `err` is not NULL, *err receives
 * a newly allocated error object (free it with sv_error_free()) whose message
 * names the input that was wrong and the context it was found in, e.g.
 *   "devices[3].mount_tag: expected a string".
 * The library never prints, never exits and never changes signal dispositions.
 * All strings taken are copied unless a function says otherwise. Objects are not
 * thread-safe; distinct objects may be used from distinct threads.
 */
#ifndef SANDVM_H
#define SANDVM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ------------------------------------------------------------- */

typedef struct sv_error sv_error;

/* A positive errno value classifying the failure: EINVAL for invalid input,
 * ENOENT for a missing file or binary, ETIMEDOUT for a deadline, EPROTO for a
 * peer that broke a protocol, ECHILD/ESRCH for a process that died, ENOMEM. */
int sv_error_code(const sv_error *err);

/* The message, with context prefixes ("checking with QEMU: qemu exited: ..."). */
const char *sv_error_message(const sv_error *err);

/* Frees an error; NULL is accepted. */
void sv_error_free(sv_error *err);

/* ---- QEMU configuration (govmm's Config) --------------------------------- */

/* A typed QEMU configuration: the machine, CPU, memory, kernel, knobs and
 * devices of one QEMU process. It is the JSON form documented in
 * docs/qemu-config.md. Every string in it is treated as hostile: values are
 * escaped or validated so that none can add or change a QEMU option. */
typedef struct sv_qemu_config sv_qemu_config;

/* Parses the JSON text `json` (length `len`, need not be NUL-terminated) into
 * a new configuration and validates it. On success *out owns the result (free
 * with sv_qemu_config_free()). Errors: EINVAL with the JSON path of the bad key
 * or value. */
int sv_qemu_config_parse(const char *json, size_t len, sv_qemu_config **out, sv_error **err);

/* As sv_qemu_config_parse(), reading the file at `path`. Errors also: the errno
 * of opening or reading the file (ENOENT, EACCES, ...), EFBIG past 16 MiB. */
int sv_qemu_config_load(const char *path, sv_qemu_config **out, sv_error **err);

/* Frees a configuration; NULL is accepted. */
void sv_qemu_config_free(sv_qemu_config *cfg);

/* Builds QEMU's argv for `cfg`. On success *argv_out is a NULL-terminated
 * array of *argc_out newly allocated strings, argv[0] being the QEMU binary;
 * free it with sv_strv_free(). File descriptors named in the config (tap fds,
 * vhost fds, the incoming-migration fd, QMP fds) appear in the argv under the
 * numbers QEMU will see them as: 3, 4, ... in the order they are first used. */
int sv_qemu_config_argv(const sv_qemu_config *cfg, char ***argv_out, size_t *argc_out,
                        sv_error **err);

/* Renders the argv of `cfg` as a shell command, one option (with its value)
 * per line, each line but the last ending in " \", every word shell-quoted.
 * The result is newly allocated; free() it. */
int sv_qemu_config_argv_text(const sv_qemu_config *cfg, char **text_out, sv_error **err);

/* Options for sv_qemu_check(). Zero-initialise, then set what you need. */
typedef struct sv_qemu_check_opts {
    int timeout_ms;          /* whole check; 0 means 10000 */
    const char *const *qmp;  /* optional NULL-terminated QMP commands (JSON
                                objects without "id") to run once QEMU is up */
    char **replies;          /* if not NULL, receives one newly allocated JSON
                                text per command in `qmp` ("return" value) */
} sv_qemu_check_opts;

/* Starts the real QEMU binary with the argv of `cfg`, paused (-S) and with no
 * display, on a QMP socket that sandvm creates and passes in, waits until QMP
 * answers, runs `opts->qmp` if given, then quits QEMU and reaps it. Proves that
 * QEMU accepted every option. `opts` may be NULL. File descriptors named by the
 * config must be open in the calling process; they are passed to QEMU under
 * the numbers in its argv. On success the caller owns opts->replies[i]
 * (free()); on failure none are left allocated.
 * Errors: EINVAL for a config that cannot be checked (knobs.daemonize: a
 * daemonized QEMU would escape supervision) or a malformed opts->qmp entry;
 * ENOENT (binary not found); ECHILD with QEMU's stderr when QEMU exited or
 * refused the command line; ETIMEDOUT; ECONNRESET when QMP closed early; EPROTO
 * for a peer that broke the protocol; EIO for a QMP error reply, naming the
 * command and QEMU's error class and description. */
int sv_qemu_check(const sv_qemu_config *cfg, const sv_qemu_check_opts *opts, sv_error **err);

/* Frees a NULL-terminated string vector; NULL is accepted. */
void sv_strv_free(char **strv);

#ifdef __cplusplus
}
#endif

#endif
