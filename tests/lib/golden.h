/*
 * Golden tests in libvirt's style (tests/qemuxmlconftest.c): one input and one
 * expected output per case.
 *
 *   CASES_DIR/<case>.json  the input, turned into a command line by ops->build
 *   CASES_DIR/<case>.argv  the expected argv text, byte for byte
 *   CASES_DIR/<case>.err   for invalid input: the expected error message (one line)
 *
 * Every .argv case not listed in the skip file is then started by the real
 * QEMU (sv_qemu_check: paused, QMP answered, quit), so a golden file can never
 * hold a command line QEMU refuses.
 *
 * Usage: <runner> CASES_DIR [SKIP_FILE]   (SKIP_FILE: CASES_DIR/../qemu-skip.txt)
 * Environment:
 *   SV_TEST_REGENERATE=1  rewrite .argv/.err from the current output (review the diff!)
 *   SV_GOLDEN_FILTER=s    run only the cases whose name contains s
 *   SV_GOLDEN_JOBS=n      QEMU checks run in parallel (default 2)
 *   SV_GOLDEN_NO_QEMU=1   do not start QEMU; every .argv case is then a SKIP
 *
 * Fails on: a .argv/.err without its .json, a case with both, two cases with
 * byte-identical JSON, a skip line naming a missing or .err case, a case with
 * no expectation (outside regenerate mode), any unexpected file in CASES_DIR.
 */
#pragma once

#include <stddef.h>

#include "qemu/qemu_config.h"
#include "sandvm/sandvm.h"

typedef struct sv_golden_ops {
    const char *name;        /* the suite, for messages ("golden") */
    /* Turns a case's JSON into its argv text and the configuration QEMU is
     * checked with (the runner frees it), or fails with the message the
     * .err file holds. */
    int (*build)(const char *json, size_t len, char **text, sv_qemu_config **cfg, sv_error **err);
    /* Creates the files cases may name under fixture_dir; 0 or -errno. */
    int (*fixtures)(void);
    /* Cases naming a path under it take a lock while QEMU runs (QEMU locks
     * images, and another runner may use them at the same time). */
    const char *fixture_dir;
    /* Optional NULL-terminated case-name prefixes counted separately in the summary. */
    const char *const *groups;
} sv_golden_ops;

/* Runs the suite; prints one PASS/FAIL/SKIP line per case and ends with
 * "N passed, N failed". Returns the process exit status. */
int sv_golden_main(int argc, char **argv, const sv_golden_ops *ops);
