#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/qopts.h"

void sv_qemu_escape(sv_strbuf *sb, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == ',')
            sv_strbuf_append_c(sb, ',');
        sv_strbuf_append_c(sb, *p);
    }
}

sv_qopts *sv_qopts_new(const char *head_key, const char *head)
{
    sv_qopts *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->head_key = strdup(head_key ? head_key : "");
    o->head = head ? strdup(head) : NULL;
    if (!o->head_key || (head && !o->head)) {
        sv_qopts_free(o);
        return NULL;
    }
    return o;
}

void sv_qopts_free(sv_qopts *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->props[i].key);
        free(o->props[i].str);
    }
    free(o->props);
    free(o->head_key);
    free(o->head);
    free(o);
}

static sv_qprop *push(sv_qopts *o, const char *key)
{
    if (!o || o->oom)
        return NULL;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        sv_qprop *p = realloc(o->props, cap * sizeof(*p));
        if (!p) {
            o->oom = true;
            return NULL;
        }
        o->props = p;
        o->cap = cap;
    }
    sv_qprop *p = &o->props[o->n];
    memset(p, 0, sizeof(*p));
    p->key = strdup(key);
    if (!p->key) {
        o->oom = true;
        return NULL;
    }
    o->n++;
    return p;
}

void sv_qopts_str(sv_qopts *o, const char *key, const char *value)
{
    if (!value)
        return;
    sv_qprop *p = push(o, key);
    if (!p)
        return;
    p->type = SV_QV_STR;
    p->str = strdup(value);
    if (!p->str)
        o->oom = true;
}

void sv_qopts_int(sv_qopts *o, const char *key, int64_t value)
{
    sv_qprop *p = push(o, key);
    if (p) {
        p->type = SV_QV_INT;
        p->num = value;
    }
}

void sv_qopts_bool(sv_qopts *o, const char *key, bool value)
{
    sv_qprop *p = push(o, key);
    if (p) {
        p->type = SV_QV_BOOL;
        p->flag = value;
    }
}

const sv_qprop *sv_qopts_get(const sv_qopts *o, const char *key)
{
    for (size_t i = 0; o && i < o->n; i++)
        if (strcmp(o->props[i].key, key) == 0)
            return &o->props[i];
    return NULL;
}

char *sv_qopts_to_string(const sv_qopts *o)
{
    if (!o || o->oom)
        return NULL;
    sv_strbuf sb = SV_STRBUF_INIT;
    bool first = true;
    if (o->head) {
        sv_qemu_escape(&sb, o->head);
        first = false;
    }
    for (size_t i = 0; i < o->n; i++) {
        const sv_qprop *p = &o->props[i];
        if (!first)
            sv_strbuf_append_c(&sb, ',');
        first = false;
        sv_strbuf_append(&sb, p->key);
        sv_strbuf_append_c(&sb, '=');
        switch (p->type) {
        case SV_QV_STR:
            sv_qemu_escape(&sb, p->str);
            break;
        case SV_QV_INT:
            sv_strbuf_appendf(&sb, "%" PRId64, p->num);
            break;
        case SV_QV_BOOL:
            sv_strbuf_append(&sb, p->flag ? "on" : "off");
            break;
        }
    }
    return sv_strbuf_steal(&sb);
}

json_object *sv_qopts_to_json(const sv_qopts *o)
{
    if (!o || o->oom)
        return NULL;
    json_object *j = json_object_new_object();
    if (!j)
        return NULL;
    if (o->head && *o->head_key)
        json_object_object_add(j, o->head_key, json_object_new_string(o->head));
    for (size_t i = 0; i < o->n; i++) {
        const sv_qprop *p = &o->props[i];
        json_object *v = NULL;
        switch (p->type) {
        case SV_QV_STR:
            v = json_object_new_string(p->str);
            break;
        case SV_QV_INT:
            v = json_object_new_int64(p->num);
            break;
        case SV_QV_BOOL:
            v = json_object_new_boolean(p->flag);
            break;
        }
        if (!v || json_object_object_add(j, p->key, v) < 0) {
            json_object_put(v);
            json_object_put(j);
            return NULL;
        }
    }
    return j;
}
