/*
 * Hostile file names for tests/vm/hostile_test.c, generated systematically:
 * each hostile fragment (QEMU option syntax, shell syntax, QEMU protocol
 * prefixes, glob characters, non-ASCII text, emoji, invisible and
 * bidirectional marks, combining characters) in four positions (alone,
 * leading, trailing, in the middle), pairs of option syntax with non-ASCII
 * text, names near NAME_MAX, and the hand-written values of the first version
 * of the test. Every generated name is valid: UTF-8 without control
 * characters (the hand-written ones may hold \n or \t: fine for text fields,
 * rejected in paths), so sandvm must hand it to QEMU unchanged.
 *
 * The invalid ones are separate: control characters and invalid UTF-8, which
 * sandvm must reject in a path before anything runs.
 */
#pragma once

#include <stddef.h>

typedef struct hname {
    char *label; /* short, unique, ASCII: "readonly-on/trailing" */
    char *v;     /* the bytes; never empty */
} hname;

/* The valid hostile names, distinct, in a fixed order. Free with
 * hostile_names_free(). Never fails (aborts on out-of-memory). */
hname *hostile_names_valid(size_t *n_out);

/* Names sandvm must refuse in a path: control characters (C0, DEL, C1) and
 * invalid UTF-8 (stray continuation bytes, truncated and overlong sequences,
 * surrogates, code points past U+10FFFF). */
hname *hostile_names_invalid(size_t *n_out);

void hostile_names_free(hname *names, size_t n);

/* Longest file name the generator makes: the long names fill NAME_MAX (255)
 * exactly with the longest per-field prefix the test puts in front. */
#define HOSTILE_LONG_PREFIX_MAX 8
