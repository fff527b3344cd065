/*
 * The host side of the exec channel: a client of the default guest's agent
 * (guest/agent/), reached through a virtio-serial port named
 * SV_AGENT_PORT_NAME whose host end is a unix socket served by QEMU's
 * chardev. The wire protocol is documented in guest/README.md.
 *
 * QEMU's socket chardev serves one client at a time; further clients wait in
 * the listen backlog. Callers that need ordering (sv_vm_exec) serialize on a
 * lock of their own before calling.
 */
#pragma once

#include "sandvm/vm.h"
#include "util/error.h"

/* The name of the virtio-serial port (virtserialport,name=...) the guest's
 * agent serves: Kata's agent channel name. */
#define SV_AGENT_PORT_NAME "agent.channel.0"

/* Connects to the chardev socket at `socket_path`, waits for the agent's
 * hello (within opts->timeout_ms, which covers the connect too; 0: 120 s;
 * negative: no limit), runs opts->argv, relays stdin/stdout/stderr and stores
 * the exit status (0-255, 128+N for signal N). Never prints. Errors:
 *   ETIMEDOUT  "the guest agent did not answer within N s (is the VM booted
 *              from the default guest?)"
 *   ECONNRESET "the exec channel closed before the command finished" (the
 *              caller tells whether the VM stopped: ECHILD for sv_vm_exec())
 *   ENOENT     "command not found in the guest: \"NAME\"", or no socket
 *   EACCES ... the guest's errno when the command could not be started
 *              ("cannot run \"X\" in the guest: ..."), or its directory
 *              ("cannot change to directory \"D\" in the guest: ...")
 *   ECANCELED  opts->cancel_fd became readable (the command is killed)
 *   EINVAL     no argv[0], an env entry that is not NAME=value
 *   E2BIG      argv + env + cwd over the channel's 1 MiB request limit
 *   EPROTO     the peer broke the protocol
 *   and the errno of writing to stdout_fd/stderr_fd or reading stdin_fd. */
int sv_agent_exec(const char *socket_path, const sv_exec_opts *opts, int *exit_status,
                  sv_error **err);

/* Same, on an already connected stream socket `fd` (tests; not closed). */
int sv_agent_exec_fd(int fd, const sv_exec_opts *opts, int *exit_status, sv_error **err);
