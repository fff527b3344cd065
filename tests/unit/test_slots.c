/*
 * Slot allocators (src/devices/slots.c): PCI bridge slots, PCIe ports, CCW
 * devnos and SCSI addresses — the addresses a hot-plugged device gets, the
 * reuse after removal, and the errors a caller sees.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/slots.h"
#include "util/cleanup.h"
#include "util/error.h"

static void assert_err(sv_error **err, int r, int code, const char *needle)
{
    assert_int_equal(r, -code);
    assert_non_null(*err);
    assert_int_equal(sv_error_code(*err), code);
    if (needle && !strstr(sv_error_message(*err), needle))
        fail_msg("error \"%s\" lacks \"%s\"", sv_error_message(*err), needle);
    sv_error_free(*err);
    *err = NULL;
}

static void ok(int r, sv_error **err)
{
    if (r < 0)
        fail_msg("unexpected error %d: %s", r, sv_error_message(*err));
}

/* ---- PCI bridges ---- */

static void test_pci_exhaust_two_bridges(void **state)
{
    (void)state;
    _cleanup_(sv_pci_bridges_freep) sv_pci_bridges *b = NULL;
    sv_error *err = NULL;
    ok(sv_pci_bridges_new_default(2, &b, &err), &err);
    assert_int_equal(sv_pci_bridges_count(b), 2);
    assert_int_equal(sv_pci_bridges_free_slots(b), 60);
    for (unsigned i = 0; i < 60; i++) {
        char id[16], addr[3], path[6];
        snprintf(id, sizeof(id), "dev%u", i);
        sv_pci_slot s;
        ok(sv_pci_bridges_add(b, id, &s, &err), &err);
        unsigned slot = i % 30 + 1, bridge = i / 30;
        assert_int_equal(s.bridge, bridge);
        assert_int_equal(s.slot, slot);
        assert_int_equal(s.bridge_addr, 2 + bridge);
        assert_string_equal(s.bridge_id, bridge ? "pci-bridge-1" : "pci-bridge-0");
        snprintf(addr, sizeof(addr), "%02x", slot);
        snprintf(path, sizeof(path), "%02x/%02x", 2 + bridge, slot);
        assert_string_equal(s.addr, addr);
        assert_string_equal(s.pci_path, path);
    }
    sv_pci_slot s;
    ok(sv_pci_bridges_find(b, "dev0", &s), &err);
    assert_string_equal(s.pci_path, "02/01");
    ok(sv_pci_bridges_find(b, "dev59", &s), &err);
    assert_string_equal(s.pci_path, "03/1e");
    assert_string_equal(s.addr, "1e");
    assert_int_equal(sv_pci_bridges_free_slots(b), 0);
    int r = sv_pci_bridges_add(b, "one-too-many", &s, &err);
    assert_err(&err, r, ENOSPC,
               "no free PCI bridge slot for device \"one-too-many\": all 2 bridges' 30 slots are "
               "in use");
    assert_int_equal(sv_pci_bridges_find(b, "one-too-many", NULL), -ENOENT);
}

static void test_pci_free_and_reuse(void **state)
{
    (void)state;
    _cleanup_(sv_pci_bridges_freep) sv_pci_bridges *b = NULL;
    sv_error *err = NULL;
    ok(sv_pci_bridges_new_default(2, &b, &err), &err);
    char id[16];
    for (unsigned i = 0; i < 35; i++) {
        snprintf(id, sizeof(id), "d%u", i);
        ok(sv_pci_bridges_add(b, id, NULL, &err), &err);
    }
    /* a hole on the first bridge is filled before the second bridge's next slot */
    ok(sv_pci_bridges_remove(b, "d7", &err), &err);
    ok(sv_pci_bridges_remove(b, "d31", &err), &err);
    assert_int_equal(sv_pci_bridges_find(b, "d7", NULL), -ENOENT);
    sv_pci_slot s;
    ok(sv_pci_bridges_add(b, "new1", &s, &err), &err);
    assert_string_equal(s.pci_path, "02/08");
    ok(sv_pci_bridges_add(b, "new2", &s, &err), &err);
    assert_string_equal(s.pci_path, "03/02");
    ok(sv_pci_bridges_add(b, "new3", &s, &err), &err);
    assert_string_equal(s.pci_path, "03/06");
    /* an id removed can come back */
    ok(sv_pci_bridges_add(b, "d7", &s, &err), &err);
    assert_string_equal(s.pci_path, "03/07");
}

static void test_pci_errors(void **state)
{
    (void)state;
    _cleanup_(sv_pci_bridges_freep) sv_pci_bridges *b = NULL;
    sv_error *err = NULL;
    ok(sv_pci_bridges_new_default(1, &b, &err), &err);
    sv_pci_slot s;
    ok(sv_pci_bridges_add(b, "disk0", &s, &err), &err);
    int r = sv_pci_bridges_add(b, "disk0", &s, &err);
    assert_err(&err, r, EEXIST, "device \"disk0\" already has PCI slot 02/01 on pci-bridge-0");
    ok(sv_pci_bridges_remove(b, "disk0", &err), &err);
    r = sv_pci_bridges_remove(b, "disk0", &err); /* double free */
    assert_err(&err, r, ENOENT, "device \"disk0\" is not on any PCI bridge");
    r = sv_pci_bridges_remove(b, "never\n", &err);
    assert_err(&err, r, ENOENT, "device \"never\\n\" is not on any PCI bridge");
    r = sv_pci_bridges_add(b, "", &s, &err);
    assert_err(&err, r, EINVAL, "a device needs an id");
    r = sv_pci_bridges_add(b, NULL, &s, &err);
    assert_err(&err, r, EINVAL, "a device needs an id");
    r = sv_pci_bridges_remove(b, NULL, &err);
    assert_err(&err, r, EINVAL, "a device needs an id");
    /* a VM without bridges (microvm) */
    sv_pci_bridges *none = sv_pci_bridges_new();
    assert_non_null(none);
    r = sv_pci_bridges_add(none, "x", &s, &err);
    assert_err(&err, r, ENOSPC, "the VM has no PCI bridge");
    sv_pci_bridges_free(none);
    sv_pci_bridges_free(NULL);
    sv_pci_bridges *huge = NULL;
    r = sv_pci_bridges_new_default(31, &huge, &err);
    assert_err(&err, r, EINVAL, "do not fit");
    assert_null(huge);
}

static void test_pci_bridges_and_reserve(void **state)
{
    (void)state;
    _cleanup_(sv_pci_bridges_freep) sv_pci_bridges *b = sv_pci_bridges_new();
    assert_non_null(b);
    sv_error *err = NULL;
    ok(sv_pci_bridges_add_bridge(b, "br-a", 5, &err), &err);
    ok(sv_pci_bridges_add_bridge(b, "br-b", 0x1f, &err), &err);
    int r = sv_pci_bridges_add_bridge(b, "br-a", 6, &err);
    assert_err(&err, r, EEXIST, "PCI bridge \"br-a\": added twice");
    r = sv_pci_bridges_add_bridge(b, "br-c", 5, &err);
    assert_err(&err, r, EEXIST, "root bus slot 05 is bridge br-a's");
    r = sv_pci_bridges_add_bridge(b, "br-c", 0, &err);
    assert_err(&err, r, EINVAL, "root bus slot 0 is not 1..31");
    r = sv_pci_bridges_add_bridge(b, "br-c", 32, &err);
    assert_err(&err, r, EINVAL, "is not 1..31");
    /* reserved slots (state re-read after a restart) are skipped by add */
    sv_pci_slot s;
    ok(sv_pci_bridges_reserve(b, "old1", "br-a", 1, &s, &err), &err);
    assert_string_equal(s.pci_path, "05/01");
    ok(sv_pci_bridges_reserve(b, "old2", "br-a", 2, NULL, &err), &err);
    ok(sv_pci_bridges_reserve(b, "old3", "br-b", 30, &s, &err), &err);
    assert_string_equal(s.pci_path, "1f/1e");
    ok(sv_pci_bridges_add(b, "new", &s, &err), &err);
    assert_string_equal(s.pci_path, "05/03");
    r = sv_pci_bridges_reserve(b, "x", "br-a", 3, &s, &err);
    assert_err(&err, r, EEXIST, "slot 03 of br-a is taken");
    r = sv_pci_bridges_reserve(b, "old1", "br-b", 4, &s, &err);
    assert_err(&err, r, EEXIST, "already has PCI slot 05/01");
    r = sv_pci_bridges_reserve(b, "x", "br-z", 4, &s, &err);
    assert_err(&err, r, ENOENT, "device \"x\": no PCI bridge \"br-z\"");
    r = sv_pci_bridges_reserve(b, "x", "br-b", 0, &s, &err);
    assert_err(&err, r, EINVAL, "slot 0 of br-b is not 1..30");
    r = sv_pci_bridges_reserve(b, "x", "br-b", 31, &s, &err);
    assert_err(&err, r, EINVAL, "is not 1..30");
    assert_int_equal(sv_pci_bridges_free_slots(b), 56);
}

/* ---- PCIe ports ---- */

static void test_pcie_ports(void **state)
{
    (void)state;
    _cleanup_(sv_pcie_ports_freep) sv_pcie_ports *p = NULL;
    sv_error *err = NULL;
    ok(sv_pcie_ports_new("rp", 4, &p, &err), &err);
    assert_int_equal(sv_pcie_ports_count(p), 4);
    sv_pcie_port port;
    for (unsigned i = 0; i < 4; i++) {
        char id[16], bus[8];
        snprintf(id, sizeof(id), "vfio%u", i);
        snprintf(bus, sizeof(bus), "rp%u", i);
        ok(sv_pcie_ports_add(p, id, &port, &err), &err);
        assert_string_equal(port.bus, bus);
        assert_int_equal(port.index, i);
    }
    int r = sv_pcie_ports_add(p, "gpu", &port, &err);
    assert_err(&err, r, ENOSPC, "no free PCIe port for device \"gpu\": rp0..rp3 are all in use");
    ok(sv_pcie_ports_remove(p, "vfio1", &err), &err);
    ok(sv_pcie_ports_add(p, "gpu", &port, &err), &err);
    assert_string_equal(port.bus, "rp1");
    ok(sv_pcie_ports_find(p, "gpu", &port), &err);
    assert_string_equal(port.bus, "rp1");
    r = sv_pcie_ports_remove(p, "vfio1", &err);
    assert_err(&err, r, ENOENT, "device \"vfio1\" is not on any rp PCIe port");
    r = sv_pcie_ports_add(p, "gpu", &port, &err);
    assert_err(&err, r, EEXIST, "device \"gpu\" already has PCIe port rp1");
}

static void test_pcie_ports_reserve_and_none(void **state)
{
    (void)state;
    sv_pcie_ports *p = NULL;
    sv_error *err = NULL;
    ok(sv_pcie_ports_new("swdp", 3, &p, &err), &err);
    sv_pcie_port port;
    /* cold-plugged devices went on swdp0 and swdp2 */
    ok(sv_pcie_ports_reserve(p, "cold0", 0, &port, &err), &err);
    assert_string_equal(port.bus, "swdp0");
    ok(sv_pcie_ports_reserve(p, "cold2", 2, NULL, &err), &err);
    ok(sv_pcie_ports_add(p, "hot", &port, &err), &err);
    assert_string_equal(port.bus, "swdp1");
    int r = sv_pcie_ports_reserve(p, "x", 2, &port, &err);
    assert_err(&err, r, EEXIST, "PCIe port swdp2 is taken");
    r = sv_pcie_ports_reserve(p, "x", 3, &port, &err);
    assert_err(&err, r, EINVAL, "there is no PCIe port swdp3 (3 ports)");
    sv_pcie_ports_free(p);
    /* no ports configured: say so instead of QEMU's "Bus 'rp1' not found" */
    ok(sv_pcie_ports_new("rp", 0, &p, &err), &err);
    r = sv_pcie_ports_add(p, "gpu", &port, &err);
    assert_err(&err, r, ENOSPC, "no free PCIe port for device \"gpu\": there are no rp ports");
    r = sv_pcie_ports_reserve(p, "gpu", 0, &port, &err);
    assert_err(&err, r, EINVAL, "there is no PCIe port rp0");
    sv_pcie_ports_free(p);
    p = NULL;
    r = sv_pcie_ports_new("RP", 1, &p, &err);
    assert_err(&err, r, EINVAL, "not 1..8 lowercase letters");
    r = sv_pcie_ports_new("rp1", 1, &p, &err);
    assert_err(&err, r, EINVAL, "not 1..8 lowercase letters");
    r = sv_pcie_ports_new("rp", 17, &p, &err);
    assert_err(&err, r, EINVAL, "at most 16");
    assert_null(p);
}

/* ---- CCW ---- */

static void test_ccw_basic(void **state)
{
    (void)state;
    _cleanup_(sv_ccw_bridge_freep) sv_ccw_bridge *c = NULL;
    sv_error *err = NULL;
    ok(sv_ccw_bridge_new(0, &c, &err), &err);
    sv_ccw_addr a;
    ok(sv_ccw_bridge_add(c, "blk0", &a, &err), &err);
    assert_int_equal(a.devno, 0);
    assert_string_equal(a.qemu, "fe.0.0000");
    assert_string_equal(a.guest, "0.0.0000");
    ok(sv_ccw_bridge_add(c, "net0", &a, &err), &err);
    assert_string_equal(a.qemu, "fe.0.0001");
    ok(sv_ccw_bridge_remove(c, "blk0", &err), &err);
    ok(sv_ccw_bridge_add(c, "blk1", &a, &err), &err);
    assert_string_equal(a.qemu, "fe.0.0000");
    ok(sv_ccw_bridge_find(c, "net0", &a), &err);
    assert_string_equal(a.guest, "0.0.0001");
    int r = sv_ccw_bridge_remove(c, "blk0", &err);
    assert_err(&err, r, ENOENT, "device \"blk0\" has no CCW devno");
    r = sv_ccw_bridge_add(c, "net0", &a, &err);
    assert_err(&err, r, EEXIST, "device \"net0\" already has CCW devno fe.0.0001");
    /* another subchannel set formats its own number */
    sv_ccw_bridge *c1 = NULL;
    ok(sv_ccw_bridge_new(1, &c1, &err), &err);
    ok(sv_ccw_bridge_add(c1, "x", &a, &err), &err);
    assert_string_equal(a.qemu, "fe.1.0000");
    assert_string_equal(a.guest, "0.1.0000");
    sv_ccw_bridge_free(c1);
    c1 = NULL;
    r = sv_ccw_bridge_new(4, &c1, &err);
    assert_err(&err, r, EINVAL, "CCW subchannel set 4: at most 3");
}

static void test_ccw_reservations(void **state)
{
    (void)state;
    _cleanup_(sv_ccw_bridge_freep) sv_ccw_bridge *c = NULL;
    sv_error *err = NULL;
    ok(sv_ccw_bridge_new(0, &c, &err), &err);
    /* the cold-plugged devices numbered 0..5 (Kata's clash: fe.0.0006 was
     * handed out again) */
    static const char *const cold[] = {"fe.0.0000", "fe.0.0001", "FE.0.0002",
                                       "fe.0.3",    "fe.0.0004", "fe.0.0005"};
    for (size_t i = 0; i < sizeof(cold) / sizeof(cold[0]); i++)
        ok(sv_ccw_bridge_reserve_str(c, NULL, cold[i], &err), &err);
    ok(sv_ccw_bridge_reserve(c, "fs0", 6, &err), &err);
    sv_ccw_addr a;
    ok(sv_ccw_bridge_add(c, "hot0", &a, &err), &err);
    assert_string_equal(a.qemu, "fe.0.0007");
    /* taken numbers are refused */
    int r = sv_ccw_bridge_reserve_str(c, "y", "fe.0.0007", &err);
    assert_err(&err, r, EEXIST, "CCW devno fe.0.0007 is taken");
    r = sv_ccw_bridge_reserve(c, "fs0", 9, &err);
    assert_err(&err, r, EEXIST, "already has CCW devno fe.0.0006");
    r = sv_ccw_bridge_reserve(c, NULL, 0x10000, &err);
    assert_err(&err, r, EINVAL, "is not 16 bits");
    /* other css or subchannel set: no clash possible, nothing recorded */
    ok(sv_ccw_bridge_reserve_str(c, NULL, "fe.1.0008", &err), &err);
    ok(sv_ccw_bridge_reserve_str(c, NULL, "0.0.0008", &err), &err);
    ok(sv_ccw_bridge_add(c, "hot1", &a, &err), &err);
    assert_string_equal(a.qemu, "fe.0.0008");
    /* a reserved device with an id can be removed and its number reused */
    ok(sv_ccw_bridge_remove(c, "fs0", &err), &err);
    ok(sv_ccw_bridge_add(c, "hot2", &a, &err), &err);
    assert_string_equal(a.qemu, "fe.0.0006");
    static const char *const bad[] = {"fe.0",    "fe.0.00000", "fe.4.0001",  "fe..0001",
                                      "xfe.0.1", "fe.0.000g",  "fe.0.0001.", "100.0.0001",
                                      "",        "fe.0.0001 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = sv_ccw_bridge_reserve_str(c, NULL, bad[i], &err);
        assert_err(&err, r, EINVAL, "is not <cssid>.<ssid>.<devno> in hex");
    }
    unsigned cs, ss, dn;
    assert_int_equal(sv_ccw_devno_parse("fe.3.ffff", &cs, &ss, &dn), 0);
    assert_int_equal(cs, 0xfe);
    assert_int_equal(ss, 3);
    assert_int_equal(dn, 0xffff);
    assert_int_equal(sv_ccw_devno_parse(NULL, &cs, &ss, &dn), -EINVAL);
}

static void test_ccw_exhaust(void **state)
{
    (void)state;
    _cleanup_(sv_ccw_bridge_freep) sv_ccw_bridge *c = NULL;
    sv_error *err = NULL;
    ok(sv_ccw_bridge_new(0, &c, &err), &err);
    for (unsigned d = 0; d < 0xfffe; d++)
        ok(sv_ccw_bridge_reserve(c, NULL, d, &err), &err);
    sv_ccw_addr a;
    ok(sv_ccw_bridge_add(c, "last", &a, &err), &err);
    assert_string_equal(a.qemu, "fe.0.fffe");
    int r = sv_ccw_bridge_add(c, "none", &a, &err);
    assert_err(&err, r, ENOSPC, "no free CCW devno for device \"none\": all 65535 are in use");
    /* 0xffff is never handed out, but can be reserved */
    ok(sv_ccw_bridge_reserve(c, "top", 0xffff, &err), &err);
    ok(sv_ccw_bridge_remove(c, "last", &err), &err);
    ok(sv_ccw_bridge_add(c, "again", &a, &err), &err);
    assert_int_equal(a.devno, 0xfffe);
}

/* ---- SCSI ---- */

static void test_scsi_index_edges(void **state)
{
    (void)state;
    static const struct {
        int64_t index;
        unsigned id, lun;
        const char *addr;
    } cases[] = {
        {0, 0, 0, "0:0"},
        {1, 0, 1, "0:1"},
        {255, 0, 255, "0:255"},
        {256, 1, 0, "1:0"},
        {257, 1, 1, "1:1"},
        {65280, 255, 0, "255:0"},
        {65535, 255, 255, "255:255"},
    };
    sv_error *err = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sv_scsi_addr a;
        ok(sv_scsi_addr_of_index(cases[i].index, &a, &err), &err);
        assert_int_equal(a.index, cases[i].index);
        assert_int_equal(a.scsi_id, cases[i].id);
        assert_int_equal(a.lun, cases[i].lun);
        assert_string_equal(a.addr, cases[i].addr);
    }
    sv_scsi_addr a;
    int r = sv_scsi_addr_of_index(65536, &a, &err);
    assert_err(&err, r, ERANGE, "block index 65536 is out of the SCSI range 0..65535");
    r = sv_scsi_addr_of_index(-1, &a, &err);
    assert_err(&err, r, ERANGE, "block index -1 is out");
    r = sv_scsi_addr_of_index(INT64_MAX, &a, &err);
    assert_err(&err, r, ERANGE, "out of the SCSI range");
}

static void test_scsi_alloc(void **state)
{
    (void)state;
    _cleanup_(sv_scsi_alloc_freep) sv_scsi_alloc *a = sv_scsi_alloc_new();
    assert_non_null(a);
    sv_error *err = NULL;
    sv_scsi_addr s;
    /* the root disk holds index 0 for good */
    ok(sv_scsi_alloc_reserve(a, NULL, 0, &err), &err);
    ok(sv_scsi_alloc_add(a, "d1", &s, &err), &err);
    assert_string_equal(s.addr, "0:1");
    ok(sv_scsi_alloc_reserve(a, "d2", 2, &err), &err);
    ok(sv_scsi_alloc_add(a, "d3", &s, &err), &err);
    assert_string_equal(s.addr, "0:3");
    ok(sv_scsi_alloc_remove(a, "d1", &err), &err);
    ok(sv_scsi_alloc_add(a, "d4", &s, &err), &err);
    assert_string_equal(s.addr, "0:1");
    ok(sv_scsi_alloc_find(a, "d2", &s), &err);
    assert_string_equal(s.addr, "0:2");
    int r = sv_scsi_alloc_remove(a, "d1", &err);
    assert_err(&err, r, ENOENT, "device \"d1\" has no SCSI address");
    r = sv_scsi_alloc_add(a, "d4", &s, &err);
    assert_err(&err, r, EEXIST, "device \"d4\" already has SCSI address 0:1");
    r = sv_scsi_alloc_reserve(a, "x", 3, &err);
    assert_err(&err, r, EEXIST, "SCSI address 0:3 (block index 3) is taken");
    r = sv_scsi_alloc_reserve(a, "x", 65536, &err);
    assert_err(&err, r, ERANGE, "out of the SCSI range");
    r = sv_scsi_alloc_add(a, "", &s, &err);
    assert_err(&err, r, EINVAL, "a device needs an id");
    /* fill everything: the last index is 255:255, then nothing */
    for (unsigned i = 4; i < 65535; i++)
        ok(sv_scsi_alloc_reserve(a, NULL, i, &err), &err);
    ok(sv_scsi_alloc_add(a, "last", &s, &err), &err);
    assert_string_equal(s.addr, "255:255");
    r = sv_scsi_alloc_add(a, "none", NULL, &err);
    assert_err(&err, r, ENOSPC, "no free SCSI address for device \"none\": all 65536 are in use");
    /* a freed index is the next one handed out, even when it is the lowest */
    ok(sv_scsi_alloc_remove(a, "d3", &err), &err);
    ok(sv_scsi_alloc_add(a, "d5", &s, &err), &err);
    assert_string_equal(s.addr, "0:3");
}

static void test_allocators_deterministic(void **state)
{
    (void)state;
    /* one sequence of calls, twice: the same addresses */
    char out[2][256];
    for (int run = 0; run < 2; run++) {
        sv_pci_bridges *b = NULL;
        sv_ccw_bridge *c = NULL;
        sv_error *err = NULL;
        ok(sv_pci_bridges_new_default(2, &b, &err), &err);
        ok(sv_ccw_bridge_new(0, &c, &err), &err);
        size_t len = 0;
        for (int i = 0; i < 8; i++) {
            char id[16];
            snprintf(id, sizeof(id), "d%d", i);
            sv_pci_slot s;
            sv_ccw_addr a;
            ok(sv_pci_bridges_add(b, id, &s, &err), &err);
            ok(sv_ccw_bridge_add(c, id, &a, &err), &err);
            if (i % 3 == 0) {
                ok(sv_pci_bridges_remove(b, id, &err), &err);
                ok(sv_ccw_bridge_remove(c, id, &err), &err);
            }
            len += (size_t)snprintf(out[run] + len, sizeof(out[run]) - len, "%s %s;", s.pci_path,
                                    a.qemu);
        }
        sv_pci_bridges_free(b);
        sv_ccw_bridge_free(c);
    }
    assert_string_equal(out[0], out[1]);
    assert_string_equal(out[0], "02/01 fe.0.0000;02/01 fe.0.0000;02/02 fe.0.0001;02/03 fe.0.0002;"
                                "02/03 fe.0.0002;02/04 fe.0.0003;02/05 fe.0.0004;02/05 fe.0.0004;");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pci_exhaust_two_bridges),
        cmocka_unit_test(test_pci_free_and_reuse),
        cmocka_unit_test(test_pci_errors),
        cmocka_unit_test(test_pci_bridges_and_reserve),
        cmocka_unit_test(test_pcie_ports),
        cmocka_unit_test(test_pcie_ports_reserve_and_none),
        cmocka_unit_test(test_ccw_basic),
        cmocka_unit_test(test_ccw_reservations),
        cmocka_unit_test(test_ccw_exhaust),
        cmocka_unit_test(test_scsi_index_edges),
        cmocka_unit_test(test_scsi_alloc),
        cmocka_unit_test(test_allocators_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
