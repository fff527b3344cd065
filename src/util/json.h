/*
 * Table-driven JSON -> struct decoding on json-c. A schema lists a struct's keys
 * with their C type and offset; the decoder rejects unknown keys and wrong
 * types with an error naming the JSON path ("devices[3].mount_tag: expected a
 * string"), so every config parser gets the same checks for free.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "util/error.h"

typedef enum {
    SV_JF_STR,    /* char *; JSON string without NUL bytes */
    SV_JF_BOOL,   /* bool */
    SV_JF_INT,    /* int64_t, range [min, max] */
    SV_JF_ENUM,   /* int; aux = NULL-terminated const char *const[], value = index */
    SV_JF_STRV,   /* char **, NULL-terminated; JSON array of strings */
    SV_JF_INTV,   /* int64_t * with size_t count at count_off; each in [min, max] */
    SV_JF_OBJ,    /* embedded struct at off; aux = const sv_jschema * */
    SV_JF_ARR,    /* array of structs: pointer at off, size_t count at count_off; aux = schema */
    SV_JF_CUSTOM, /* aux = const sv_jcustom * */
} sv_jftype;

typedef struct sv_jfield {
    const char *name;
    sv_jftype type;
    size_t off;
    const void *aux;
    int64_t min, max;  /* SV_JF_INT / SV_JF_INTV; both 0 means any int64 */
    size_t count_off;  /* SV_JF_INTV / SV_JF_ARR */
} sv_jfield;

typedef struct sv_jschema {
    size_t size;              /* sizeof the struct (for arrays) */
    const sv_jfield *fields;  /* terminated by an entry with name == NULL */
} sv_jschema;

typedef struct sv_jcustom {
    int (*decode)(json_object *v, void *field, const char *path, sv_error **err);
    void (*free)(void *field);
} sv_jcustom;

/* Strict UTF-8 (RFC 3629: no overlong forms, surrogates or code points past
 * U+10FFFF): the offset of the first bad byte, or len when all is valid. */
size_t sv_utf8_bad_offset(const unsigned char *s, size_t len);

/* Why the NUL-terminated `s` is not plain text: NULL when it is valid UTF-8
 * without control characters (U+0000-U+001F, U+007F-U+009F); else "invalid
 * UTF-8" or "a control character", *off receiving the first bad byte's
 * offset. For values such as paths that end up in messages and terminals. */
const char *sv_text_problem(const char *s, size_t *off);

/* Parses JSON text strictly (valid UTF-8, one value, no trailing garbage). */
int sv_json_parse(const char *text, size_t len, json_object **out, sv_error **err);
/* Configuration files are at most this large. */
#define SV_MAX_CONFIG_BYTES (16u << 20)
/* sv_json_parse() with the configuration size cap (EFBIG past it). */
int sv_json_parse_config(const char *text, size_t len, json_object **out, sv_error **err);
/* Reads the regular file `path` (at most SV_MAX_CONFIG_BYTES) and parses it as
 * JSON; errors name the file. */
int sv_json_load_file(const char *path, json_object **out, sv_error **err);
/* Decodes `obj` (must be a JSON object) into `out` (zeroed by the caller). On
 * failure the partly decoded struct is still freed correctly by sv_json_free. */
int sv_json_decode(const sv_jschema *schema, json_object *obj, void *out, const char *path,
                   sv_error **err);
/* Frees what sv_json_decode allocated inside `ptr` (not ptr itself). */
void sv_json_free(const sv_jschema *schema, void *ptr);
/* "a.b" / "a[3]" path joining; returns a new string or NULL on OOM. */
char *sv_json_path_key(const char *path, const char *key);
char *sv_json_path_index(const char *path, size_t i);
const char *sv_json_type_name(json_type t);
/* Serialises `obj` without spaces or escaped slashes; the string is owned by obj. */
const char *sv_json_to_string(json_object *obj);

#define SV_JSTR(st, f, key) {key, SV_JF_STR, offsetof(st, f), NULL, 0, 0, 0}
#define SV_JBOOL(st, f, key) {key, SV_JF_BOOL, offsetof(st, f), NULL, 0, 0, 0}
#define SV_JINT(st, f, key, lo, hi) {key, SV_JF_INT, offsetof(st, f), NULL, lo, hi, 0}
#define SV_JENUM(st, f, key, names) {key, SV_JF_ENUM, offsetof(st, f), names, 0, 0, 0}
#define SV_JSTRV(st, f, key) {key, SV_JF_STRV, offsetof(st, f), NULL, 0, 0, 0}
#define SV_JINTV(st, f, n, key, lo, hi) {key, SV_JF_INTV, offsetof(st, f), NULL, lo, hi, offsetof(st, n)}
#define SV_JOBJ(st, f, key, schema) {key, SV_JF_OBJ, offsetof(st, f), schema, 0, 0, 0}
#define SV_JARR(st, f, n, key, schema) {key, SV_JF_ARR, offsetof(st, f), schema, 0, 0, offsetof(st, n)}
#define SV_JCUSTOM(st, f, key, c) {key, SV_JF_CUSTOM, offsetof(st, f), c, 0, 0, 0}
#define SV_JEND {NULL, 0, 0, NULL, 0, 0, 0}
