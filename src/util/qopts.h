/*
 * A QEMU option list (`driver,key=value,...`) built from typed properties.
 * One list feeds both a command-line option string (values escaped by
 * sv_qemu_escape, the only place commas are doubled) and a JSON object for QMP
 * (device_add, object-add, netdev_add), so cold plug and hotplug never differ.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "util/strbuf.h"

typedef enum { SV_QV_STR, SV_QV_INT, SV_QV_BOOL } sv_qv_type;

typedef struct sv_qprop {
    char *key;
    sv_qv_type type;
    char *str;
    int64_t num;
    bool flag;
} sv_qprop;

typedef struct sv_qopts {
    char *head_key;   /* "driver", "qom-type", "type"... the positional first value's name */
    char *head;       /* e.g. "virtio-blk-pci"; NULL for a list with no positional value */
    sv_qprop *props;
    size_t n, cap;
    bool oom;
} sv_qopts;

/* Appends `value` to `sb` with every ',' doubled: QEMU's option parser then
 * reads it back as exactly `value`, whatever it contains. The one escaping
 * function of the project. */
void sv_qemu_escape(sv_strbuf *sb, const char *value);

sv_qopts *sv_qopts_new(const char *head_key, const char *head);
void sv_qopts_free(sv_qopts *o);
void sv_qopts_str(sv_qopts *o, const char *key, const char *value);      /* skipped if value NULL */
void sv_qopts_int(sv_qopts *o, const char *key, int64_t value);
void sv_qopts_bool(sv_qopts *o, const char *key, bool value);            /* on/off; JSON true/false */
/* Renders "head,key=value,..." (no head when head is NULL). NULL on OOM. */
char *sv_qopts_to_string(const sv_qopts *o);
/* Renders {"head_key": head, "key": value, ...} with typed values. */
json_object *sv_qopts_to_json(const sv_qopts *o);
const sv_qprop *sv_qopts_get(const sv_qopts *o, const char *key);

static inline void sv_qopts_freep(sv_qopts **o)
{
    sv_qopts_free(*o);
}
#define _cleanup_qopts_ __attribute__((cleanup(sv_qopts_freep)))
