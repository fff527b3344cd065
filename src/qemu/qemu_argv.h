/* The QEMU argv: a pure function of the typed configuration. */
#pragma once

#include "qemu/qemu_config.h"
#include "util/argv.h"

/* Builds the argv (argv[0] = the QEMU binary). Fds named by the config are
 * recorded in (*out)->fds in the order QEMU sees them (3, 4, ...). */
int sv_qemu_build_argv(const sv_qemu_config *cfg, sv_argv **out, sv_error **err);
