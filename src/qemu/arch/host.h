/*
 * Host facts: what the architecture layer needs to know about the machine
 * QEMU will run on. Probed once from the running host, or decoded from JSON
 * so that an aarch64 golden test runs unchanged on an x86_64 build machine.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sandvm/vm_config.h"

/* Guest protection the host offers (Kata's availableGuestProtection()). An
 * SNP host also runs plain SEV guests. */
typedef enum {
    SV_PROT_NONE,
    SV_PROT_TDX,   /* Intel TDX: kvm_intel.tdx=Y */
    SV_PROT_SEV,   /* AMD SEV: kvm_amd.sev=1|Y */
    SV_PROT_SNP,   /* AMD SEV-SNP: kvm_amd.sev_snp=Y */
    SV_PROT_SE,    /* s390x Secure Execution: facility 158 and prot_virt=1 */
    SV_PROT_PEF,   /* ppc64le Protected Execution Facility: /sys/firmware/ultravisor */
    SV__PROT_MAX
} sv_protection;
extern const char *const sv_protection_names[]; /* "none", "tdx", "sev", "snp", "se", "pef" */

typedef struct sv_host_facts {
    int arch;            /* sv_vm_arch of the host (never SV_VM_ARCH_HOST) */
    char **cpu_flags;    /* NULL-terminated CPU flags ("flags"/"Features"/"features" of /proc/cpuinfo) */
    int64_t mem_mib;     /* MemTotal; 0 = unknown */
    int ncpus;           /* online CPUs; 0 = unknown */
    char *sysfs_root;    /* where sysfs is mounted ("/sys"); device layers resolve host paths there */
    bool kvm_usable;     /* /dev/kvm opens read-write and answers KVM_GET_API_VERSION */
    bool kvm_is_pvm;     /* the KVM module is PVM (kvm_pvm), which boots only PVM guest kernels */
    int protection;      /* sv_protection */
    int64_t sev_cbitpos; /* SEV: the C-bit position (CPUID 0x8000001f EBX[5:0]); 0 = unknown */
} sv_host_facts;

/* Probes the running host: /proc/cpuinfo, /proc/meminfo, /dev/kvm,
 * <sysfs_root>/module/kvm_pvm and the guest protection switches under
 * <sysfs_root> (NULL means "/sys"). Fills *out (free its contents with
 * sv_host_facts_free()). Errors: ENOTSUP on a host architecture sandvm has no
 * layer for; ENOMEM. Files that are missing leave their fact unknown. */
int sv_host_facts_probe(sv_host_facts *out, const char *sysfs_root, sv_error **err);

/* Decodes the JSON form: {"arch": "x86_64", "cpu_flags": [...], "mem_mib": N,
 * "ncpus": N, "sysfs_root": "/sys", "kvm_usable": bool, "kvm_is_pvm": bool,
 * "protection": "none"|"tdx"|"sev"|"snp"|"se"|"pef", "sev_cbitpos": N};
 * only "arch" is required. Errors name the path under `path` ("host.arch"). */
int sv_host_facts_from_json(json_object *obj, const char *path, sv_host_facts *out,
                            sv_error **err);

/* Frees what *h holds (not h itself) and zeroes it; NULL is accepted. */
void sv_host_facts_free(sv_host_facts *h);

bool sv_host_has_cpu_flag(const sv_host_facts *h, const char *flag);
/* Kata's RunningOnVMM(): the host is itself a VM (x86_64 "hypervisor" flag). */
bool sv_host_is_nested(const sv_host_facts *h);

/* The rate of the host's TSC in kHz, which under TCG is the rate of an x86
 * guest's TSC: measured against CLOCK_MONOTONIC over ~2 ms (to about 0.01%).
 * 0 on a host that is not x86_64, or when the measurement failed. */
int64_t sv_host_tsc_khz(void);
