/*
 * Typed QMP commands: one function per command sandvm sends (every command
 * Kata's runtime sends through govmm, and closefd), on top of the client in
 * qmp.h.
 *
 * Common rules:
 * - Arguments are built with json-c from typed C values, never by formatting
 *   text; strings go out exactly as given (see qmp.h: invalid UTF-8 or a NUL
 *   byte is refused, EINVAL naming the argument, before anything is sent).
 *   Optional arguments (NULL pointers) are left out, never sent empty.
 * - Every call takes `deadline` (absolute, see util/sock.h;
 *   SV_QMP_DEADLINE_DEFAULT for the client's default timeout, 10 s) and
 *   returns 0, or a negative errno with *err set as sv_qmp_execute() does
 *   (EIO "qmp CMD: CLASS: DESC" when QEMU refuses).
 * - Results are parsed into small structs that the caller owns and frees
 *   with the matching _free() or _clear() function; open-ended results are handed over
 *   as a json_object the caller releases with json_object_put(). A reply
 *   without the documented shape is EPROTO "qmp CMD: reply: FIELD: ...";
 *   members the struct does not know are ignored (newer QEMUs add some). On
 *   failure nothing is returned and nothing needs freeing.
 * - Property lists come as sv_qopts (util/qopts.h), the same lists the
 *   cold-plug builders make for -device/-netdev/-object/-blockdev, so a
 *   hotplug and a cold plug never differ. Their typed values stay typed
 *   (ints are JSON numbers, booleans JSON true/false).
 *
 * The raw passthrough is sv_qmp_execute() / sv_qmp_execute_text() in qmp.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "qemu/qmp.h"
#include "util/error.h"
#include "util/qopts.h"

/* ---- Run state. */

/* QEMU's RunState (query-status "status"). */
typedef enum {
    SV_QMP_RUN_UNKNOWN, /* a state this table does not know (a newer QEMU) */
    SV_QMP_RUN_DEBUG,
    SV_QMP_RUN_INMIGRATE,
    SV_QMP_RUN_INTERNAL_ERROR,
    SV_QMP_RUN_IO_ERROR,
    SV_QMP_RUN_PAUSED,
    SV_QMP_RUN_POSTMIGRATE,
    SV_QMP_RUN_PRELAUNCH,
    SV_QMP_RUN_FINISH_MIGRATE,
    SV_QMP_RUN_RESTORE_VM,
    SV_QMP_RUN_RUNNING,
    SV_QMP_RUN_SAVE_VM,
    SV_QMP_RUN_SHUTDOWN,
    SV_QMP_RUN_SUSPENDED,
    SV_QMP_RUN_WATCHDOG,
    SV_QMP_RUN_GUEST_PANICKED,
    SV_QMP_RUN_COLO,
    SV__QMP_RUN_MAX
} sv_qmp_run_state;

/* "running", "prelaunch"...; "unknown" for SV_QMP_RUN_UNKNOWN. */
const char *sv_qmp_run_state_name(sv_qmp_run_state s);

typedef struct sv_qmp_status {
    sv_qmp_run_state state;
    bool running;
    bool singlestep;
} sv_qmp_status;

/* query-status. */
int sv_qmp_query_status(sv_qmp *q, int64_t deadline, sv_qmp_status *out, sv_error **err);
/* stop / cont. */
int sv_qmp_stop(sv_qmp *q, int64_t deadline, sv_error **err);
int sv_qmp_cont(sv_qmp *q, int64_t deadline, sv_error **err);
/* system_powerdown: asks the guest to power off (ACPI). Returns once QEMU
 * accepted the request; the connection closing first (the VM went down at
 * once) counts as success. Wait for SHUTDOWN with sv_qmp_wait_event(). */
int sv_qmp_system_powerdown(sv_qmp *q, int64_t deadline, sv_error **err);
/* quit: QEMU exits. Its reply, or the connection closing (or the watched fd
 * firing) before the reply, is success. QEMU emits SHUTDOWN before the reply;
 * it is queued. sv_qmp_wait_closed() waits for the end. */
int sv_qmp_quit(sv_qmp *q, int64_t deadline, sv_error **err);

/* ---- Devices. */

/* device_add with the properties of `props` (head_key "driver", head the
 * driver name): the list a device's cold-plug property builder makes. */
int sv_qmp_device_add(sv_qmp *q, const sv_qopts *props, int64_t deadline, sv_error **err);
/* device_del {"id": id}: returns once QEMU accepted the request. The device
 * is gone only when DEVICE_DELETED arrives (a guest must release it for most
 * buses). */
int sv_qmp_device_del(sv_qmp *q, const char *id, int64_t deadline, sv_error **err);
/* device_del, then waits until `deadline` for DEVICE_DELETED with
 * data.device == id (which may come before the reply: it is found in the
 * queue). ETIMEDOUT "qmp device_del ID: DEVICE_DELETED did not arrive: the
 * unplug is still pending" when QEMU accepted but the event did not come. */
int sv_qmp_device_del_wait(sv_qmp *q, const char *id, int64_t deadline, sv_error **err);

/* ---- Block nodes. */

/* blockdev-add from a -blockdev property list: head_key "driver" (or no
 * head, with a "driver" property); dotted keys nest ("file.filename" ->
 * {"file": {"filename": ...}}). EINVAL when a key is both a value and a
 * parent ("file" and "file.driver"). */
int sv_qmp_blockdev_add(sv_qmp *q, const sv_qopts *opts, int64_t deadline, sv_error **err);
/* blockdev-add with a ready BlockdevOptions object (borrowed). */
int sv_qmp_blockdev_add_json(sv_qmp *q, json_object *options, int64_t deadline, sv_error **err);
/* blockdev-del {"node-name": node_name}. */
int sv_qmp_blockdev_del(sv_qmp *q, const char *node_name, int64_t deadline, sv_error **err);

/* ---- Network backends. */

/* netdev_add from a -netdev property list (head_key "type", head the
 * backend: "tap", "vhost-user"...). fds/vhostfds name fds passed before with
 * sv_qmp_getfd(). */
int sv_qmp_netdev_add(sv_qmp *q, const sv_qopts *opts, int64_t deadline, sv_error **err);
/* netdev_del {"id": id}. */
int sv_qmp_netdev_del(sv_qmp *q, const char *id, int64_t deadline, sv_error **err);

/* ---- Character devices. */

/* chardev-add {"id": id, "backend": backend} (backend borrowed: a
 * ChardevBackend object, {"type": ..., "data": {...}}). */
int sv_qmp_chardev_add(sv_qmp *q, const char *id, json_object *backend, int64_t deadline,
                       sv_error **err);
/* chardev-add of a unix socket at `path`, listening when `server`. `wait`
 * (block until a client connects) is sent only for a server: QEMU 7.2
 * refuses it for a client. */
int sv_qmp_chardev_add_unix_socket(sv_qmp *q, const char *id, const char *path, bool server,
                                   bool wait, int64_t deadline, sv_error **err);
/* chardev-remove {"id": id}. */
int sv_qmp_chardev_remove(sv_qmp *q, const char *id, int64_t deadline, sv_error **err);

/* ---- File descriptors. */

/* getfd {"fdname": fdname}, passing `fd` (still the caller's) as SCM_RIGHTS
 * with the command. QEMU keeps its own copy under `fdname`. */
int sv_qmp_getfd(sv_qmp *q, const char *fdname, int fd, int64_t deadline, sv_error **err);
/* closefd {"fdname": fdname}: drops a getfd copy nothing used. */
int sv_qmp_closefd(sv_qmp *q, const char *fdname, int64_t deadline, sv_error **err);

/* ---- QOM objects. */

/* object-add from a -object property list (head_key "qom-type"). */
int sv_qmp_object_add(sv_qmp *q, const sv_qopts *opts, int64_t deadline, sv_error **err);
/* object-del {"id": id}. */
int sv_qmp_object_del(sv_qmp *q, const char *id, int64_t deadline, sv_error **err);
/* qom-get {"path", "property"}: *value receives the value (owned; NULL for
 * JSON null). */
int sv_qmp_qom_get(sv_qmp *q, const char *path, const char *property, int64_t deadline,
                   json_object **value, sv_error **err);
/* qom-set {"path", "property", "value"} (value borrowed; NULL sends null). */
int sv_qmp_qom_set(sv_qmp *q, const char *path, const char *property, json_object *value,
                   int64_t deadline, sv_error **err);

/* ---- CPUs and memory. */

/* CpuInstanceProperties: -1 when QEMU left the member out. */
typedef struct sv_qmp_cpu_props {
    int64_t node_id, socket_id, die_id, cluster_id, core_id, thread_id;
} sv_qmp_cpu_props;

typedef struct sv_qmp_hotpluggable_cpu {
    char *type; /* the CPU driver for device_add, e.g. "host-x86_64-cpu" */
    int64_t vcpus_count;
    char *qom_path; /* NULL: the slot is free (not plugged) */
    sv_qmp_cpu_props props;
} sv_qmp_hotpluggable_cpu;

/* query-hotpluggable-cpus: *out receives *n entries (owned; free with
 * sv_qmp_hotpluggable_cpus_free(); NULL when n is 0). */
int sv_qmp_query_hotpluggable_cpus(sv_qmp *q, int64_t deadline, sv_qmp_hotpluggable_cpu **out,
                                   size_t *n, sv_error **err);
void sv_qmp_hotpluggable_cpus_free(sv_qmp_hotpluggable_cpu *cpus, size_t n);

typedef struct sv_qmp_cpu_info {
    int64_t cpu_index;
    char *qom_path;
    int64_t thread_id; /* the host thread id of the vCPU */
    char *target;      /* "x86_64", "aarch64"... */
    sv_qmp_cpu_props props;
} sv_qmp_cpu_info;

/* query-cpus-fast (the vCPU thread ids): as above. */
int sv_qmp_query_cpus_fast(sv_qmp *q, int64_t deadline, sv_qmp_cpu_info **out, size_t *n,
                           sv_error **err);
void sv_qmp_cpu_infos_free(sv_qmp_cpu_info *cpus, size_t n);

typedef struct sv_qmp_memory_device {
    char *type;   /* "dimm", "nvdimm", "virtio-mem", "virtio-pmem", "sgx-epc" */
    char *id;     /* the device id, NULL when it has none */
    char *memdev; /* the backend's QOM path, NULL when absent */
    int64_t addr; /* guest physical address ("addr" or "memaddr") */
    int64_t size;
    int64_t slot, node;     /* -1 when not reported */
    int64_t requested_size; /* virtio-mem only, else -1 */
    bool hotplugged, hotpluggable;
} sv_qmp_memory_device;

/* query-memory-devices: as above. */
int sv_qmp_query_memory_devices(sv_qmp *q, int64_t deadline, sv_qmp_memory_device **out, size_t *n,
                                sv_error **err);
void sv_qmp_memory_devices_free(sv_qmp_memory_device *devs, size_t n);

/* balloon {"value": bytes}: the guest's target size. EINVAL past INT64_MAX. */
int sv_qmp_balloon(sv_qmp *q, uint64_t bytes, int64_t deadline, sv_error **err);

/* ---- PCI. */

typedef struct sv_qmp_pci_device {
    int64_t bus, slot, function;
    int64_t vendor_id, device_id, class_code;
    char *qdev_id;         /* the -device id, NULL when it has none */
    int64_t secondary_bus; /* a bridge's secondary bus number, else -1 */
} sv_qmp_pci_device;

/* query-pci, flattened: every device of every bus, bridges' buses included
 * (depth-first, a bridge before the devices behind it). As above. QEMU lists
 * the devices behind a bridge only once the firmware numbered its bus: not
 * in prelaunch (-S), where secondary_bus is 0. */
int sv_qmp_query_pci(sv_qmp *q, int64_t deadline, sv_qmp_pci_device **out, size_t *n,
                     sv_error **err);
void sv_qmp_pci_devices_free(sv_qmp_pci_device *devs, size_t n);

/* ---- Migration (save/restore). */

typedef struct sv_qmp_migrate_cap {
    const char *capability; /* "x-ignore-shared", "auto-converge"... */
    bool state;
} sv_qmp_migrate_cap;

/* migrate-set-capabilities {"capabilities": [{"capability", "state"}...]}. */
int sv_qmp_migrate_set_capabilities(sv_qmp *q, const sv_qmp_migrate_cap *caps, size_t n,
                                    int64_t deadline, sv_error **err);
/* migrate-set-parameters with a MigrateSetParameters object (borrowed). */
int sv_qmp_migrate_set_parameters(sv_qmp *q, json_object *params, int64_t deadline, sv_error **err);
/* migrate {"uri": uri}: starts the migration (it runs on in QEMU). */
int sv_qmp_migrate(sv_qmp *q, const char *uri, int64_t deadline, sv_error **err);
/* migrate-incoming {"uri": uri}: for a QEMU started with -incoming defer. */
int sv_qmp_migrate_incoming(sv_qmp *q, const char *uri, int64_t deadline, sv_error **err);

/* QEMU's MigrationStatus. */
typedef enum {
    SV_QMP_MIG_UNKNOWN, /* a status this table does not know */
    SV_QMP_MIG_NONE,    /* no migration yet (QEMU then reports no status at all) */
    SV_QMP_MIG_SETUP,
    SV_QMP_MIG_CANCELLING,
    SV_QMP_MIG_CANCELLED,
    SV_QMP_MIG_ACTIVE,
    SV_QMP_MIG_POSTCOPY_ACTIVE,
    SV_QMP_MIG_POSTCOPY_PAUSED,
    SV_QMP_MIG_POSTCOPY_RECOVER,
    SV_QMP_MIG_COMPLETED,
    SV_QMP_MIG_FAILED,
    SV_QMP_MIG_COLO,
    SV_QMP_MIG_PRE_SWITCHOVER,
    SV_QMP_MIG_DEVICE,
    SV_QMP_MIG_WAIT_UNPLUG,
    SV__QMP_MIG_MAX
} sv_qmp_migration_status;

const char *sv_qmp_migration_status_name(sv_qmp_migration_status s);

typedef struct sv_qmp_migration_info {
    sv_qmp_migration_status status;
    char *error_desc;      /* why it failed, NULL when QEMU says nothing */
    int64_t total_time_ms; /* -1 when not reported */
    int64_t ram_transferred, ram_remaining, ram_total; /* bytes, -1 when not reported */
    json_object *raw;                                  /* the whole reply (owned) */
} sv_qmp_migration_info;

/* query-migrate: fills *out (free with sv_qmp_migration_info_clear()). */
int sv_qmp_query_migrate(sv_qmp *q, int64_t deadline, sv_qmp_migration_info *out, sv_error **err);
void sv_qmp_migration_info_clear(sv_qmp_migration_info *info);

/* ---- Diagnostics. */

/* dump-guest-memory {"protocol", "paging", "format" (if not NULL)}:
 * protocol "file:/path" or "fd:NAME". Synchronous (no detach). */
int sv_qmp_dump_guest_memory(sv_qmp *q, const char *protocol, bool paging, const char *format,
                             int64_t deadline, sv_error **err);

/* ---- Introspection. */

/* The message size cap sv_qmp_query_qmp_schema() uses for its reply. */
#define SV_QMP_SCHEMA_MAX_MESSAGE (16 * 1024 * 1024)

/* query-qmp-schema: *schema receives the SchemaInfo array (owned). The size
 * cap is raised to SV_QMP_SCHEMA_MAX_MESSAGE for this reply only. */
int sv_qmp_query_qmp_schema(sv_qmp *q, int64_t deadline, json_object **schema, sv_error **err);

/* A query-qmp-schema result indexed by name, for checking commands before
 * sending them. */
typedef struct sv_qmp_schema sv_qmp_schema;

/* Indexes `schema` (borrowed; a reference is kept). EPROTO when it is not an
 * array of {"name", "meta-type"} objects. */
int sv_qmp_schema_new(json_object *schema, sv_qmp_schema **out, sv_error **err);
void sv_qmp_schema_free(sv_qmp_schema *s);
bool sv_qmp_schema_has_command(const sv_qmp_schema *s, const char *command);
/* Checks `command` with `arguments` (NULL for none) against the schema: the
 * command exists, every argument member exists (union branches chosen by
 * their tag), required members are present, values have the schema's JSON
 * types and enum values, and nothing used is marked deprecated. device_add's
 * driver properties are not in the schema (only driver, bus and id are), so
 * its other members are not checked. EINVAL with "CMD: argument PATH: why". */
int sv_qmp_schema_check(const sv_qmp_schema *s, const char *command, json_object *arguments,
                        sv_error **err);

static inline void sv_qmp_schema_freep(sv_qmp_schema **s)
{
    sv_qmp_schema_free(*s);
}
#define _cleanup_qmp_schema_ __attribute__((cleanup(sv_qmp_schema_freep)))
