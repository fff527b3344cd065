/*
 * VFIO devices on the host: an IOMMU group's members through sysfs (Kata's
 * drivers/vfio.go), every member of the group, not only the first one
 * (Kata's cold-plug path stopped after the first).
 *
 * For a group G, /sys/kernel/iommu_groups/G/devices/ holds one entry per
 * member: a PCI function named by its BDF, or a mediated device named by its
 * UUID. For each PCI function, vendor, device, class and numa_node come
 * from /sys/bus/pci/devices/<bdf>/, whose iommu_group link must lead back to
 * G inside the sysfs root; PCI Express-ness comes from walking the
 * capability list of its config space. Host bridges and PCI bridges (class
 * 0x0600 and 0x0604) are skipped, as Kata does: they cannot be passed
 * through. A mediated device is reported with its sysfsdev path
 * /sys/bus/mdev/devices/<uuid> (whose iommu_group must lead back to G); it
 * is an AP matrix device when it lives under /sys/devices/vfio_ap/, else a
 * PCI mdev whose parent (the directory it lives in) must be a BDF.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/device.h"
#include "devices/sysfs.h"
#include "util/error.h"

/* "dddd:bb:dd.f" plus the NUL */
#define SV_BDF_LEN 13

typedef struct sv_bdf {
    unsigned domain, bus, dev, fn;
} sv_bdf;

/* Parses a PCI address. strict (names read from sysfs): exactly
 * "dddd:bb:dd.f" in lowercase hex. Otherwise (user input) also "bb:dd.f"
 * (domain 0) and uppercase. Always: device <= 0x1f, function <= 7. Returns
 * 0 or -EINVAL. */
int sv_bdf_parse(const char *s, bool strict, sv_bdf *out);
/* True for the strict sysfs form. */
bool sv_bdf_valid(const char *s);
/* The canonical form "dddd:bb:dd.f". */
void sv_bdf_format(const sv_bdf *b, char out[SV_BDF_LEN]);
/* True for a UUID "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, any case). */
bool sv_uuid_valid(const char *s);
/* True for an IOMMU group name: decimal, no leading zero, at most 10 digits. */
bool sv_iommu_group_valid(const char *s);

/* Whether PCI config space `cfg` (len bytes, as the sysfs "config" file
 * holds it) lists a PCI Express capability (ID 0x10): 1 yes, 0 no (no
 * capability list, list ends or is malformed), -ENODATA when the list runs
 * past `len` (an unprivileged read of "config" returns only 64 bytes). The
 * walk is Linux's: at most 48 steps, pointers below 0x40 end it. Pure; any
 * input is safe. */
int sv_pci_config_has_pcie(const uint8_t *cfg, size_t len);

/* The VFIO devices of one IOMMU group. */
typedef struct sv_vfio_group {
    char *group;       /* "12" */
    char *devfs;       /* "/dev/vfio/12" */
    sv_dev_vfio *devs; /* sorted by sysfs name; id, port_bus and guest unset */
    size_t n;
    size_t n_skipped; /* bridges left out */
} sv_vfio_group;
void sv_vfio_group_clear(sv_vfio_group *g);

/* "/dev/vfio/<group>" -> "<group>". EINVAL for anything else, with a hint
 * for "/dev/vfio/vfio" (the container) and "/dev/vfio/devices/vfioN"
 * (IOMMUFD device nodes, not supported here: pass the BDF). */
int sv_vfio_group_from_devfs(const char *path, char **group_out, sv_error **err);
/* The IOMMU group of PCI function `bdf` (either form, see sv_bdf_parse):
 * where /sys/bus/pci/devices/<bdf>/iommu_group leads. ENOENT when the
 * device does not exist or has no group (no IOMMU); EXDEV when the link
 * leads outside the sysfs root; EINVAL when it leads elsewhere. */
int sv_vfio_group_of_bdf(const sv_sysfs *s, const char *bdf, char **group_out, sv_error **err);
/* Enumerates every member of IOMMU group `group` (see the top of this
 * file). Errors name the group and the member: EINVAL for an entry that is
 * neither a BDF nor a UUID, unparsable attributes or a member whose links
 * disagree; EXDEV for a link leading outside the sysfs root; ENOENT for a
 * missing group, attribute, or a group with nothing left to pass through. */
int sv_vfio_group_enumerate(const sv_sysfs *s, const char *group, sv_vfio_group *out,
                            sv_error **err);
/* sv_vfio_group_enumerate() for "/dev/vfio/<group>" or a PCI function's BDF
 * (the whole group of that function). */
int sv_vfio_enumerate(const sv_sysfs *s, const char *spec, sv_vfio_group *out, sv_error **err);
