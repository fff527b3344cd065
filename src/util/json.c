#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/json.h"
#include "util/strbuf.h"

const char *sv_json_type_name(json_type t)
{
    switch (t) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
        return "a number";
    case json_type_int:
        return "an integer";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "unknown";
}

const char *sv_json_to_string(json_object *obj)
{
    return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
 * Returns the offset of the first bad byte, or len. */
size_t sv_utf8_bad_offset(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (i + n >= len) /* truncated sequence */
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n + 1;
    }
    return len;
}

const char *sv_text_problem(const char *s, size_t *off)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);
    size_t bad = sv_utf8_bad_offset(u, len);
    for (size_t i = 0; i < bad; i++) {
        /* C1 controls are U+0080-U+009F, encoded 0xc2 0x80-0x9f */
        if (u[i] < 0x20 || u[i] == 0x7f ||
            (u[i] == 0xc2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9f)) {
            *off = i;
            return "a control character";
        }
    }
    if (bad < len) {
        *off = bad;
        return "invalid UTF-8";
    }
    return NULL;
}

int sv_json_parse(const char *text, size_t len, json_object **out, sv_error **err)
{
    if (len > INT32_MAX)
        return sv_error_set(err, EFBIG, "JSON text too large");
    size_t bad = sv_utf8_bad_offset((const unsigned char *)text, len);
    if (bad < len)
        return sv_error_set(err, EINVAL, "invalid JSON at byte %zu: invalid UTF-8", bad);
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok)
        return sv_error_set(err, ENOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr == json_tokener_continue) {
        json_object_put(obj);
        return sv_error_set(err, EINVAL, "invalid JSON: unexpected end of input");
    }
    if (jerr != json_tokener_success || !obj) {
        json_object_put(obj);
        return sv_error_set(err, EINVAL, "invalid JSON at byte %zu: %s", used,
                            json_tokener_error_desc(jerr));
    }
    for (size_t i = used; i < len; i++) {
        if (text[i] == '\0' || !strchr(" \t\r\n", text[i])) {
            json_object_put(obj);
            return sv_error_set(err, EINVAL, "invalid JSON at byte %zu: trailing data", i);
        }
    }
    *out = obj;
    return 0;
}

char *sv_json_path_key(const char *path, const char *key)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", path ? path : "", path && *path ? "." : "", key) < 0)
        return NULL;
    return s;
}

char *sv_json_path_index(const char *path, size_t i)
{
    char *s = NULL;
    if (asprintf(&s, "%s[%zu]", path ? path : "", i) < 0)
        return NULL;
    return s;
}

static int expect(json_object *v, json_type t, const char *path, sv_error **err)
{
    if (json_object_get_type(v) == t)
        return 0;
    return sv_error_set(err, EINVAL, "%s: expected %s, got %s", path, sv_json_type_name(t),
                        sv_json_type_name(json_object_get_type(v)));
}

static int get_string(json_object *v, char **out, const char *path, sv_error **err)
{
    int r = expect(v, json_type_string, path, err);
    if (r < 0)
        return r;
    const char *s = json_object_get_string(v);
    if ((size_t)json_object_get_string_len(v) != strlen(s))
        return sv_error_set(err, EINVAL, "%s: the string contains a NUL character", path);
    *out = strdup(s);
    return *out ? 0 : sv_error_set(err, ENOMEM, "out of memory");
}

static int get_int(json_object *v, const sv_jfield *f, int64_t *out, const char *path, sv_error **err)
{
    int r = expect(v, json_type_int, path, err);
    if (r < 0)
        return r;
    errno = 0;
    int64_t n = json_object_get_int64(v);
    /* json-c clamps out-of-range numbers; a clamped value is out of range either way. */
    if (f->min != f->max && (n < f->min || n > f->max))
        return sv_error_set(err, EINVAL, "%s: %lld is out of range [%lld, %lld]", path, (long long)n,
                            (long long)f->min, (long long)f->max);
    *out = n;
    return 0;
}

static int decode_field(const sv_jfield *f, json_object *v, void *base, const char *path,
                        sv_error **err)
{
    void *p = (char *)base + f->off;
    int r;
    switch (f->type) {
    case SV_JF_STR:
        return get_string(v, (char **)p, path, err);
    case SV_JF_BOOL:
        if ((r = expect(v, json_type_boolean, path, err)) < 0)
            return r;
        *(bool *)p = json_object_get_boolean(v);
        return 0;
    case SV_JF_INT:
        return get_int(v, f, (int64_t *)p, path, err);
    case SV_JF_ENUM: {
        if ((r = expect(v, json_type_string, path, err)) < 0)
            return r;
        const char *const *names = f->aux;
        const char *s = json_object_get_string(v);
        for (int i = 0; names[i]; i++) {
            if (*s && strcmp(names[i], s) == 0) {
                *(int *)p = i;
                return 0;
            }
        }
        sv_strbuf sb = SV_STRBUF_INIT;
        for (int i = 0; names[i]; i++)
            if (*names[i])
                sv_strbuf_appendf(&sb, "%s%s", sb.len ? ", " : "", names[i]);
        _cleanup_free_ char *allowed = sv_strbuf_steal(&sb);
        _cleanup_json_ json_object *quoted = json_object_new_string(s);
        return sv_error_set(err, EINVAL, "%s: %s is not one of: %s", path,
                            quoted ? sv_json_to_string(quoted) : "value", allowed ? allowed : "?");
    }
    case SV_JF_STRV: {
        if ((r = expect(v, json_type_array, path, err)) < 0)
            return r;
        size_t n = json_object_array_length(v);
        char **strv = calloc(n + 1, sizeof(char *));
        if (!strv)
            return sv_error_set(err, ENOMEM, "out of memory");
        *(char ***)p = strv;
        for (size_t i = 0; i < n; i++) {
            _cleanup_free_ char *ip = sv_json_path_index(path, i);
            if ((r = get_string(json_object_array_get_idx(v, i), &strv[i], ip, err)) < 0)
                return r;
        }
        return 0;
    }
    case SV_JF_INTV: {
        if ((r = expect(v, json_type_array, path, err)) < 0)
            return r;
        size_t n = json_object_array_length(v);
        int64_t *arr = calloc(n ? n : 1, sizeof(int64_t));
        if (!arr)
            return sv_error_set(err, ENOMEM, "out of memory");
        *(int64_t **)p = arr;
        for (size_t i = 0; i < n; i++) {
            _cleanup_free_ char *ip = sv_json_path_index(path, i);
            if ((r = get_int(json_object_array_get_idx(v, i), f, &arr[i], ip, err)) < 0)
                return r;
            *(size_t *)((char *)base + f->count_off) = i + 1;
        }
        return 0;
    }
    case SV_JF_OBJ:
        return sv_json_decode(f->aux, v, p, path, err);
    case SV_JF_ARR: {
        const sv_jschema *s = f->aux;
        if ((r = expect(v, json_type_array, path, err)) < 0)
            return r;
        size_t n = json_object_array_length(v);
        char *arr = calloc(n ? n : 1, s->size);
        if (!arr)
            return sv_error_set(err, ENOMEM, "out of memory");
        *(void **)p = arr;
        size_t *count = (size_t *)((char *)base + f->count_off);
        for (size_t i = 0; i < n; i++) {
            _cleanup_free_ char *ip = sv_json_path_index(path, i);
            *count = i + 1; /* so a partial element is freed too */
            if ((r = sv_json_decode(s, json_object_array_get_idx(v, i), arr + i * s->size, ip, err)) < 0)
                return r;
        }
        return 0;
    }
    case SV_JF_CUSTOM:
        return ((const sv_jcustom *)f->aux)->decode(v, p, path, err);
    }
    return sv_error_set(err, EINVAL, "%s: unsupported field type", path);
}

int sv_json_decode(const sv_jschema *schema, json_object *obj, void *out, const char *path,
                   sv_error **err)
{
    if (json_object_get_type(obj) != json_type_object)
        return sv_error_set(err, EINVAL, "%s: expected an object, got %s",
                            path && *path ? path : "(top level)",
                            sv_json_type_name(json_object_get_type(obj)));
    json_object_object_foreach(obj, key, val)
    {
        _cleanup_free_ char *kp = sv_json_path_key(path, key);
        const sv_jfield *f = schema->fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f->name) {
            _cleanup_json_ json_object *q = json_object_new_string(key);
            return sv_error_set(err, EINVAL, "%s%sunknown key %s", path ? path : "",
                                path && *path ? ": " : "", q ? sv_json_to_string(q) : "?");
        }
        if (json_object_get_type(val) == json_type_null)
            continue; /* null means "not set", as an absent key */
        int r = decode_field(f, val, out, kp ? kp : key, err);
        if (r < 0)
            return r;
    }
    return 0;
}

void sv_json_free(const sv_jschema *schema, void *ptr)
{
    if (!ptr)
        return;
    for (const sv_jfield *f = schema->fields; f->name; f++) {
        void *p = (char *)ptr + f->off;
        switch (f->type) {
        case SV_JF_STR:
            free(*(char **)p);
            *(char **)p = NULL;
            break;
        case SV_JF_STRV: {
            char **v = *(char ***)p;
            for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
            free(v);
            *(char ***)p = NULL;
            break;
        }
        case SV_JF_INTV:
            free(*(void **)p);
            *(void **)p = NULL;
            *(size_t *)((char *)ptr + f->count_off) = 0;
            break;
        case SV_JF_OBJ:
            sv_json_free(f->aux, p);
            break;
        case SV_JF_ARR: {
            const sv_jschema *s = f->aux;
            char *arr = *(char **)p;
            size_t *count = (size_t *)((char *)ptr + f->count_off);
            for (size_t i = 0; arr && i < *count; i++)
                sv_json_free(s, arr + i * s->size);
            free(arr);
            *(void **)p = NULL;
            *count = 0;
            break;
        }
        case SV_JF_CUSTOM:
            ((const sv_jcustom *)f->aux)->free(p);
            break;
        default:
            break;
        }
    }
}

int sv_json_parse_config(const char *text, size_t len, json_object **out, sv_error **err)
{
    if (len > SV_MAX_CONFIG_BYTES)
        return sv_error_set(err, EFBIG, "configuration larger than 16 MiB");
    return sv_json_parse(text, len, out, err);
}

int sv_json_load_file(const char *path, json_object **out, sv_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return sv_error_errno(err, errno, "opening %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return sv_error_errno(err, errno, "reading %s", path);
    if (!S_ISREG(st.st_mode))
        return sv_error_set(err, EINVAL, "%s: not a regular file", path);
    if ((size_t)st.st_size > SV_MAX_CONFIG_BYTES)
        return sv_error_set(err, EFBIG, "%s: configuration larger than 16 MiB", path);
    _cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return sv_error_set(err, ENOMEM, "out of memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sv_error_errno(err, errno, "reading %s", path);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    int r = sv_json_parse(buf, got, out, err);
    if (r < 0)
        sv_error_prefix(err, "%s", path);
    return r;
}
