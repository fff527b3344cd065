/* The device verbs: `hotplug` (block, net, vfio, vhost-user, vsock), `unplug`
 * and `devices`. Each opens the VM, makes one library call and prints what
 * it says (sandvm/vm.h "devices"). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "sandvm/vm.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"

SV_DEFINE_CLEANUP(sv_vm, sv_vm_close)
SV_DEFINE_CLEANUP(sv_vm_device_info, sv_vm_device_info_free)

enum {
    OPT_ROOT = SV_CLI_OPT__VERB,
    OPT_JSON,
    OPT_ID,
    OPT_READ_ONLY,
    OPT_DEV,
    OPT_MACVTAP,
    OPT_MAC,
    OPT_QUEUES,
    OPT_TAG,
    OPT_CID,
};

static const char root_help[] =
    "      --root DIR       state root (default: $SANDVM_ROOT, else /run/sandvm)\n"
    "  -h, --help           show this help\n";

/* ---- printing ---------------------------------------------------------------------- */

static json_object *str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *device_json(const sv_vm_device_info *d)
{
    json_object *o = json_object_new_object();
    json_object *slots = json_object_new_array();
    if (!o || !slots) {
        json_object_put(o);
        json_object_put(slots);
        return NULL;
    }
    const char *kind = sv_vm_device_kind_name(d->kind);
    json_object_object_add(o, "id", str_or_null(d->id));
    json_object_object_add(o, "kind", str_or_null(kind));
    json_object_object_add(o, "host", str_or_null(d->host));
    json_object_object_add(o, "read_only", json_object_new_boolean(d->read_only));
    json_object_object_add(o, "unplugging", json_object_new_boolean(d->unplugging));
    for (size_t i = 0; i < d->n_slots; i++) {
        const sv_vm_device_slot *s = &d->slots[i];
        json_object *so = json_object_new_object();
        if (!so)
            break;
        json_object_object_add(so, "qemu_id", str_or_null(s->qemu_id));
        json_object_object_add(so, "bus", str_or_null(s->bus));
        json_object_object_add(so, "addr", str_or_null(s->addr));
        json_object_object_add(so, "guest", str_or_null(s->guest));
        json_object_object_add(so, "host", str_or_null(s->host));
        json_object_array_add(slots, so);
    }
    json_object_object_add(o, "slots", slots);
    return o;
}

static int finish_output(sv_error **err)
{
    if (fflush(stdout) != 0 || ferror(stdout))
        return sv_error_errno(err, errno ? errno : EIO, "writing to stdout"), SV_EXIT_FAILURE;
    return SV_EXIT_OK;
}

static int print_json(json_object *o, sv_error **err)
{
    if (!o)
        return sv_error_set(err, ENOMEM, "out of memory"), SV_EXIT_FAILURE;
    printf("%s\n", sv_json_to_string(o));
    json_object_put(o);
    return finish_output(err);
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

/* One line per QEMU device: ID KIND BUS ADDR GUEST HOST STATE. */
static void print_rows(const sv_vm_device_info *v, size_t n, bool header)
{
    int w_id = 2, w_kind = 4, w_bus = 3, w_addr = 4, w_guest = 5, w_state = 5;
#define WIDEN(w, s)                                                                                \
    do {                                                                                           \
        int l_ = (int)strlen(or_dash(s));                                                          \
        if (l_ > (w))                                                                              \
            (w) = l_;                                                                              \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        WIDEN(w_kind, sv_vm_device_kind_name(v[i].kind));
        if (v[i].unplugging)
            WIDEN(w_state, "unplugging");
        for (size_t j = 0; j < v[i].n_slots; j++) {
            WIDEN(w_id, v[i].slots[j].qemu_id);
            WIDEN(w_bus, v[i].slots[j].bus);
            WIDEN(w_addr, v[i].slots[j].addr);
            WIDEN(w_guest, v[i].slots[j].guest);
        }
    }
#undef WIDEN
    if (header)
        printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w_id, "ID", w_kind, "KIND", w_bus, "BUS",
               w_addr, "ADDR", w_guest, "GUEST", w_state, "STATE", "HOST");
    for (size_t i = 0; i < n; i++) {
        const sv_vm_device_info *d = &v[i];
        for (size_t j = 0; j < d->n_slots; j++) {
            const sv_vm_device_slot *s = &d->slots[j];
            printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w_id, or_dash(s->qemu_id), w_kind,
                   or_dash(sv_vm_device_kind_name(d->kind)), w_bus, or_dash(s->bus), w_addr,
                   or_dash(s->addr), w_guest, or_dash(s->guest), w_state,
                   d->unplugging ? "unplugging" : "ok", or_dash(s->host ? s->host : d->host));
        }
    }
}

/* ---- hotplug ------------------------------------------------------------------------- */

static void hotplug_usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm hotplug [OPTIONS] ID KIND ARG...\n"
            "\n"
            "Hot-plug a device into the running (or paused) VM ID over QMP and print where\n"
            "it went: DEVICE-ID BUS ADDR GUEST (the guest's PCI path \"bridge slot/slot\",\n"
            "SCSI \"id:lun\" or CCW \"0.0.devno\"). The device keeps DEVICE-ID until\n"
            "`sandvm unplug ID DEVICE-ID`. A step that fails is undone.\n"
            "\n"
            "Kinds:\n"
            "  block PATH             a raw disk image or block device, on the VM's\n"
            "                         block_device_driver (virtio-blk: a PCI bridge slot;\n"
            "                         virtio-scsi: scsi-hd on the SCSI controller; s390x: ccw)\n"
            "  block --dev MAJ:MIN    the host block device with that number (looked up\n"
            "                         in /sys/dev/block)\n"
            "  net IFNAME             virtio-net on an existing tap interface of sandvm's\n"
            "                         network namespace (sandvm opens it; run sandvm under\n"
            "                         `ip netns exec NS` for a tap in NS)\n"
            "  vfio GROUP|BDF         every function of an IOMMU group, passed through:\n"
            "                         /dev/vfio/N, or a PCI address (0000:01:00.0) for its group\n"
            "  vhost-user blk SOCKET  a vhost-user-blk backend (qemu-storage-daemon, SPDK)\n"
            "  vhost-user fs SOCKET --tag TAG\n"
            "                         a vhost-user-fs backend (virtiofsd), mounted in the\n"
            "                         guest with `mount -t virtiofs TAG DIR`\n"
            "  vsock --cid N          vhost-vsock with guest CID N (N >= 3)\n"
            "vhost-user needs a VM created with enable_vhost_user_store (or virtio-fs).\n"
            "Memory and vCPUs: `sandvm resize`.\n"
            "\n"
            "Options:\n"
            "      --id DEVICE-ID   the device's id (1-20 letters, digits, '-', '_', starting\n"
            "                       with a letter); default: the kind and the lowest free\n"
            "                       number (blk0, net0, vfio0, vublk0, vufs0, vsock0)\n"
            "      --read-only      block: the guest cannot write to it\n"
            "      --dev MAJ:MIN    block: a host block device by number instead of PATH\n"
            "      --macvtap        net: IFNAME is a macvtap (its /dev/tapN is opened)\n"
            "      --mac MAC        net: the guest's MAC address (default: QEMU's)\n"
            "      --queues N       net: queue pairs (a multi_queue tap); default 1\n"
            "      --tag TAG        vhost-user fs: the mount tag\n"
            "      --cid N          vsock: the guest's context id\n"
            "      --json           print the device as JSON (as `sandvm devices --json`)\n"
            "%s"
            "\n"
            "Examples:\n"
            "  sandvm hotplug web1 block /var/lib/disks/data.img\n"
            "  sandvm hotplug --id scratch --read-only web1 block --dev 7:0\n"
            "  ip netns exec pod1 sandvm hotplug web1 net tap0 --mac 02:00:00:00:00:01\n"
            "  sandvm hotplug web1 vhost-user blk /run/vhost/disk.sock\n"
            "  sandvm hotplug web1 vfio /dev/vfio/12\n"
            "\n"
            "Exit status: 0 success, 1 the operation failed, 2 bad command line.\n",
            root_help);
}

/* "MAJ:MIN" -> numbers. */
static int parse_devnum(const char *s, int64_t *maj, int64_t *min)
{
    char *end = NULL;
    errno = 0;
    long long a = strtoll(s, &end, 10);
    if (errno || end == s || *end != ':' || a <= 0)
        return -EINVAL;
    const char *m = end + 1;
    long long b = strtoll(m, &end, 10);
    if (errno || end == m || *end || b < 0)
        return -EINVAL;
    *maj = a;
    *min = b;
    return 0;
}

typedef struct hotplug_args {
    const char *root, *id, *dev, *mac, *tag, *cid;
    bool read_only, macvtap, json;
    long queues;
} hotplug_args;

int sv_cmd_hotplug(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    // clang-format off
    static const struct option opts[] = {{"root", required_argument, NULL, OPT_ROOT},
                                         {"help", no_argument, NULL, 'h'},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"id", required_argument, NULL, OPT_ID},
                                         {"read-only", no_argument, NULL, OPT_READ_ONLY},
                                         {"dev", required_argument, NULL, OPT_DEV},
                                         {"macvtap", no_argument, NULL, OPT_MACVTAP},
                                         {"mac", required_argument, NULL, OPT_MAC},
                                         {"queues", required_argument, NULL, OPT_QUEUES},
                                         {"tag", required_argument, NULL, OPT_TAG},
                                         {"cid", required_argument, NULL, OPT_CID},
                                         {NULL, 0, NULL, 0}};
    // clang-format on
    hotplug_args a = {0};
    int c;
    opterr = 0;
    /* options may come anywhere: after ID and KIND too */
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ROOT:
            a.root = optarg;
            break;
        case 'h':
            hotplug_usage(stdout);
            return SV_EXIT_OK;
        case OPT_JSON:
            a.json = true;
            break;
        case OPT_ID:
            a.id = optarg;
            break;
        case OPT_READ_ONLY:
            a.read_only = true;
            break;
        case OPT_DEV:
            a.dev = optarg;
            break;
        case OPT_MACVTAP:
            a.macvtap = true;
            break;
        case OPT_MAC:
            a.mac = optarg;
            break;
        case OPT_QUEUES:
            if (sv_cli_parse_uint("hotplug", "--queues", optarg, 256, &a.queues))
                return SV_EXIT_USAGE;
            break;
        case OPT_TAG:
            a.tag = optarg;
            break;
        case OPT_CID:
            a.cid = optarg;
            break;
        default:
            return sv_cli_bad_option("hotplug", argv, c);
        }
    }
    char **ops = argv + optind;
    int n = argc - optind;
    if (n < 2)
        return sv_cli_usage_error("hotplug",
                                  "missing %s (usage: sandvm hotplug [OPTIONS] ID KIND "
                                  "ARG...)",
                                  n == 0 ? "ID and KIND" : "KIND");
    const char *vm_id = ops[0], *kind = ops[1];
    sv_vm_device d = {.id = a.id,
                      .read_only = a.read_only,
                      .mac = a.mac,
                      .tag = a.tag,
                      .macvtap = a.macvtap,
                      .queues = (unsigned)a.queues};
    int want = 1; /* operands after KIND */
    const char *path = n > 2 ? ops[2] : NULL;
    if (strcmp(kind, "block") == 0) {
        d.kind = SV_VM_DEVICE_BLOCK;
        if (a.dev) {
            want = 0;
            if (parse_devnum(a.dev, &d.major, &d.minor) < 0)
                return sv_cli_usage_error("hotplug", "--dev: expected MAJOR:MINOR, got '%s'",
                                          a.dev);
        }
    } else if (strcmp(kind, "net") == 0) {
        d.kind = SV_VM_DEVICE_NET;
        d.ifname = path;
        path = NULL;
    } else if (strcmp(kind, "vfio") == 0) {
        d.kind = SV_VM_DEVICE_VFIO;
    } else if (strcmp(kind, "vhost-user") == 0) {
        want = 2;
        const char *type = path;
        path = n > 3 ? ops[3] : NULL;
        if (type && strcmp(type, "blk") == 0)
            d.kind = SV_VM_DEVICE_VHOST_USER_BLK;
        else if (type && strcmp(type, "fs") == 0)
            d.kind = SV_VM_DEVICE_VHOST_USER_FS;
        else
            return sv_cli_usage_error("hotplug", "vhost-user: expected blk or fs, got '%s'",
                                      type ? type : "nothing");
    } else if (strcmp(kind, "vsock") == 0) {
        d.kind = SV_VM_DEVICE_VSOCK;
        want = 0;
        if (!a.cid)
            return sv_cli_usage_error("hotplug", "vsock: --cid is required");
        char *end = NULL;
        errno = 0;
        unsigned long long cid = strtoull(a.cid, &end, 10);
        if (errno || end == a.cid || *end || a.cid[0] == '-' || cid > UINT32_MAX)
            return sv_cli_usage_error("hotplug", "--cid: expected a number, got '%s'", a.cid);
        d.cid = (uint32_t)cid; /* the library checks the range */
        path = NULL;
    } else if (strcmp(kind, "memory") == 0 || strcmp(kind, "cpu") == 0) {
        return sv_cli_usage_error("hotplug",
                                  "memory and vCPUs are hot-plugged with `sandvm resize ID "
                                  "--memory MIB` / `--vcpus N`");
    } else {
        return sv_cli_usage_error("hotplug",
                                  "unknown kind '%s' (expected block, net, vfio, vhost-user or "
                                  "vsock)",
                                  kind);
    }
    if (n - 2 < want)
        return sv_cli_usage_error("hotplug", "%s: missing %s", kind,
                                  d.kind == SV_VM_DEVICE_NET     ? "IFNAME"
                                  : d.kind == SV_VM_DEVICE_VFIO  ? "the group or PCI address"
                                  : d.kind == SV_VM_DEVICE_BLOCK ? "PATH (or --dev MAJ:MIN)"
                                                                 : "SOCKET");
    if (n - 2 > want)
        return sv_cli_usage_error("hotplug", "unexpected argument '%s'", ops[2 + want]);
    if (a.cid && d.kind != SV_VM_DEVICE_VSOCK)
        return sv_cli_usage_error("hotplug", "--cid applies to vsock only");
    if (a.dev && d.kind != SV_VM_DEVICE_BLOCK)
        return sv_cli_usage_error("hotplug", "--dev applies to block only");
    /* relative paths are the caller's: made absolute here (never for a BDF) */
    _cleanup_free_ char *abs = NULL;
    if (path && d.kind != SV_VM_DEVICE_VFIO && path[0] != '/') {
        if (sv_cli_absolute(path, &abs, err) < 0)
            return SV_EXIT_FAILURE;
        path = abs;
    }
    d.path = path;

    _cleanup_free_ char *root = NULL;
    if (sv_cli_root(cli, a.root, &root, err) < 0)
        return SV_EXIT_FAILURE;
    _cleanup_(sv_vm_closep) sv_vm *vm = NULL;
    if (sv_vm_open(root, vm_id, &vm, err) < 0)
        return SV_EXIT_FAILURE;
    _cleanup_(sv_vm_device_info_freep) sv_vm_device_info *info = NULL;
    if (sv_vm_hotplug(vm, &d, &info, err) < 0)
        return SV_EXIT_FAILURE;
    if (a.json)
        return print_json(device_json(info), err);
    for (size_t i = 0; i < info->n_slots; i++)
        printf("%s %s %s %s\n", or_dash(info->slots[i].qemu_id), or_dash(info->slots[i].bus),
               or_dash(info->slots[i].addr), or_dash(info->slots[i].guest));
    return finish_output(err);
}

/* ---- unplug ------------------------------------------------------------------------ */

static void unplug_usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm unplug [OPTIONS] ID DEVICE-ID\n"
            "\n"
            "Unplug the hot-plugged device DEVICE-ID from VM ID: QMP device_del, then wait\n"
            "for QEMU's DEVICE_DELETED (most buses send it once the guest has released the\n"
            "device), then remove its backend (block node, netdev, chardev) and free its\n"
            "place. A guest that does not release it in time (paused, no hotplug driver)\n"
            "fails the command; the device then stays listed as unplugging by `sandvm\n"
            "devices`, its id taken, until QEMU lets it go (unplug again to wait longer).\n"
            "\n"
            "Options:\n"
            "  -t, --timeout SEC    how long to wait for the guest (default 10)\n"
            "%s"
            "\n"
            "Examples:\n"
            "  sandvm unplug web1 blk0\n"
            "  sandvm unplug --timeout 60 web1 vfio0\n"
            "\n"
            "Exit status: 0 success, 1 the operation failed (or timed out), 2 bad command\n"
            "line.\n",
            root_help);
}

int sv_cmd_unplug(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    static const struct option opts[] = {{"root", required_argument, NULL, OPT_ROOT},
                                         {"help", no_argument, NULL, 'h'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    const char *root_opt = NULL;
    long timeout = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ht:", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ROOT:
            root_opt = optarg;
            break;
        case 'h':
            unplug_usage(stdout);
            return SV_EXIT_OK;
        case 't':
            if (sv_cli_parse_seconds("unplug", "--timeout", optarg, false, &timeout))
                return SV_EXIT_USAGE;
            break;
        default:
            return sv_cli_bad_option("unplug", argv, c);
        }
    }
    int n = argc - optind;
    if (n < 2)
        return sv_cli_usage_error("unplug",
                                  "missing %s (usage: sandvm unplug [OPTIONS] ID "
                                  "DEVICE-ID)",
                                  n == 0 ? "ID and DEVICE-ID" : "DEVICE-ID");
    if (n > 2)
        return sv_cli_usage_error("unplug", "unexpected argument '%s'", argv[optind + 2]);
    _cleanup_free_ char *root = NULL;
    if (sv_cli_root(cli, root_opt, &root, err) < 0)
        return SV_EXIT_FAILURE;
    _cleanup_(sv_vm_closep) sv_vm *vm = NULL;
    if (sv_vm_open(root, argv[optind], &vm, err) < 0)
        return SV_EXIT_FAILURE;
    return sv_vm_unplug(vm, argv[optind + 1], (int)timeout * 1000, err) < 0 ? SV_EXIT_FAILURE
                                                                            : SV_EXIT_OK;
}

/* ---- devices -------------------------------------------------------------------------- */

static void devices_usage(FILE *f)
{
    fprintf(f,
            "Usage: sandvm devices [OPTIONS] ID\n"
            "\n"
            "List the devices hot-plugged into VM ID, in the order they were added: one\n"
            "line per QEMU device (a VFIO group has one per function) with its id, kind,\n"
            "bus and address there, the guest's address (PCI path \"bridge slot/slot\",\n"
            "SCSI \"id:lun\", CCW \"0.0.devno\"), its state (ok, or unplugging while the\n"
            "guest has not released it) and what it is on the host. Devices whose unplug\n"
            "QEMU finished meanwhile are completed first and not listed. A VM that is not\n"
            "running has none.\n"
            "\n"
            "Options:\n"
            "      --json           a JSON array: id, kind, host, read_only, unplugging,\n"
            "                       slots [{qemu_id, bus, addr, guest, host}]\n"
            "%s"
            "\n"
            "Examples:\n"
            "  sandvm devices web1\n"
            "  sandvm devices --json web1\n"
            "\n"
            "Exit status: 0 success, 1 the operation failed, 2 bad command line.\n",
            root_help);
}

int sv_cmd_devices(sv_cli *cli, int argc, char **argv, sv_error **err)
{
    static const struct option opts[] = {{"root", required_argument, NULL, OPT_ROOT},
                                         {"help", no_argument, NULL, 'h'},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {NULL, 0, NULL, 0}};
    const char *root_opt = NULL;
    bool json = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ROOT:
            root_opt = optarg;
            break;
        case 'h':
            devices_usage(stdout);
            return SV_EXIT_OK;
        case OPT_JSON:
            json = true;
            break;
        default:
            return sv_cli_bad_option("devices", argv, c);
        }
    }
    int n = argc - optind;
    if (n < 1)
        return sv_cli_usage_error("devices", "missing ID (usage: sandvm devices [OPTIONS] ID)");
    if (n > 1)
        return sv_cli_usage_error("devices", "unexpected argument '%s'", argv[optind + 1]);
    _cleanup_free_ char *root = NULL;
    if (sv_cli_root(cli, root_opt, &root, err) < 0)
        return SV_EXIT_FAILURE;
    _cleanup_(sv_vm_closep) sv_vm *vm = NULL;
    if (sv_vm_open(root, argv[optind], &vm, err) < 0)
        return SV_EXIT_FAILURE;
    sv_vm_device_info *list = NULL;
    size_t count = 0;
    if (sv_vm_devices(vm, &list, &count, err) < 0)
        return SV_EXIT_FAILURE;
    int r;
    if (json) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < count; i++)
            json_object_array_add(arr, device_json(&list[i]));
        r = print_json(arr, err);
    } else {
        print_rows(list, count, true);
        r = finish_output(err);
    }
    sv_vm_device_info_list_free(list, count);
    return r;
}
