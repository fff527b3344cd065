/*
 * The VM configuration (include/sandvm/vm_config.h): JSON names of its enums,
 * its schema for the table decoder, and the helpers the hypervisor layers
 * share. The public header is the manual; this one is for the library.
 */
#pragma once

#include <sys/types.h>
#include <json-c/json.h>

#include "sandvm/vm_config.h"
#include "util/cleanup.h"
#include "util/json.h"

extern const char *const sv_vm_arch_names[];         /* "host", "x86_64", ... */
extern const char *const sv_vm_block_driver_names[]; /* "virtio-scsi", ... */
extern const char *const sv_vm_shared_fs_names[];
extern const char *const sv_vm_fs_cache_names[];
extern const char *const sv_vm_accel_names[];
extern const char *const sv_vm_console_names[];

/* Memory limits, MiB. */
#define SV_VM_MIN_MEMORY 64
#define SV_VM_MAX_MEMORY (16LL << 20) /* 16 TiB */
#define SV_VM_MAX_VCPUS 4096
#define SV_VM_MAX_BRIDGES 5
#define SV_VM_MAX_PCIE_ROOT_PORTS 16
#define SV_VM_MAX_MEMORY_SLOTS 256
#define SV_VM_MAX_CONSOLE_LOG 1024 /* MiB */
#define SV_VM_DEFAULT_MEMORY 512
#define SV_VM_DEFAULT_MEMORY_SLOTS 10
#define SV_VM_DEFAULT_ENTROPY "/dev/urandom"
#define SV_VM_DEFAULT_VIRTIOFSD "/usr/lib/qemu/virtiofsd"
/* The mount tag under which shared_dir reaches the guest. */
#define SV_VM_SHARED_TAG "sandvm"

const sv_jschema *sv_vm_config_schema(void);
/* Decodes and validates a JSON object (the body of sv_vm_config_parse). */
int sv_vm_config_from_json(json_object *obj, sv_vm_config **out, sv_error **err);

/* The effective values of keys whose default is "unset". */
const char *sv_vm_entropy_source(const sv_vm_config *vm);
const char *sv_vm_virtiofsd(const sv_vm_config *vm);
/* default_bridges after Kata's normalisation: 0 means 1. */
int64_t sv_vm_bridges(const sv_vm_config *vm);
/* max_vcpus, 0 meaning vcpus. */
int64_t sv_vm_max_vcpus(const sv_vm_config *vm);
/* The ids run_as_user / run_as_group name: 1 with *uid and *gid set, 0 when
 * run_as_user is unset (the VM's processes keep the caller's ids). EINVAL
 * naming the key for an unknown user or group, or one that is root. */
int sv_vm_run_as(const sv_vm_config *vm, uid_t *uid, gid_t *gid, sv_error **err);

/* Number of strings in a NULL-terminated array (NULL counts 0). */
size_t sv_strv_len(const char *const *v);

SV_DEFINE_CLEANUP(sv_vm_config, sv_vm_config_free)
