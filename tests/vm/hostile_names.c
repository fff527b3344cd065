/* The hostile file names of tests/vm/hostile_test.c (see hostile_names.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostile_names.h"

typedef struct atom {
    const char *label;
    const char *v;
} atom;

/* What QEMU's option parser, its protocol prefixes, the shell and globbing
 * give a meaning to. */
static const atom syntax[] = {
    {"comma", ","},
    {"double-comma", ",,"},
    {"triple-comma", ",,,"},
    {"equals", "="},
    {"readonly-on", ",readonly=on"},
    {"readonly-escaped", ",,readonly=on"},
    {"file-passwd", ",file=/etc/passwd"},
    {"format-qcow2", ",format=qcow2"},
    {"id-evil", ",id=evil"},
    {"server-nowait", ",server=on,wait=off"},
    {"key-value", "k=v"},
    {"equals-on", "=on"},
    {"space", " "},
    {"two-spaces", "  "},
    {"single-quote", "'"},
    {"double-quote", "\""},
    {"backslash", "\\"},
    {"backslash-n", "\\n"},
    {"subshell", "$(id)"},
    {"backtick", "`id`"},
    {"dollar-var", "${HOME}"},
    {"semicolon", ";"},
    {"pipe", "|"},
    {"ampersand", "&"},
    {"redirect", "<>"},
    {"colon", ":"},
    {"nbd-protocol", "nbd:localhost:10809"},
    {"file-protocol", "file:"},
    {"json-protocol", "json:{\"driver\":\"null-co\"}"},
    {"fat-protocol", "fat:rw:"},
    {"question", "?"},
    {"star", "*"},
    {"hash", "#"},
    {"tilde", "~"},
    {"printf", "%s%n"},
    {"pid-template", "%d"},
    {"percent-escape", "%%"},
    {"brackets", "[]{}"},
    {"at", "@"},
    {"exclamation", "!"},
    {"dots", ".."},
    {"dash", "-"},
    {"dash-dash", "--"},
    {"dash-option", "-readonly"},
    {"plus", "+"},
};

/* Text that is not ASCII: multi-byte, invisible, bidirectional, combining,
 * separators some tools treat as line ends, 4-byte emoji. */
static const atom unicode[] = {
    {"e-acute", "\xc3\xa9"},
    {"sharp-s", "\xc3\x9f"},
    {"nbsp", "\xc2\xa0"},
    {"cjk", "\xe6\x97\xa5\xe6\x9c\xac"},
    {"rtl-mark", "\xe2\x80\x8f"},
    {"rtl-override", "\xe2\x80\xae"},
    {"line-separator", "\xe2\x80\xa8"},
    {"paragraph-separator", "\xe2\x80\xa9"},
    {"combining", "e\xcc\x81"},
    {"lone-combining", "\xcc\x81"},
    {"bom", "\xef\xbb\xbf"},
    {"zero-width-space", "\xe2\x80\x8b"},
    {"fullwidth-comma", "\xef\xbc\x8c"},
    {"fullwidth-equals", "\xef\xbc\x9d"},
    {"emoji", "\xf0\x9f\x98\x80"},
    {"emoji-zwj", "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7"},
    {"flag", "\xf0\x9f\x87\xaf\xf0\x9f\x87\xb5"},
    {"max-codepoint", "\xf4\x8f\xbf\xbf"},
    {"noncharacter", "\xef\xbf\xbf"},
    {"plane-16", "\xf4\x8f\xbf\xbd"},
    {"replacement-char", "\xef\xbf\xbd"},
    {"arabic", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7"},
    {"hebrew", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"},
};

/* The pairs: non-ASCII text in front of option syntax, so that a parser
 * that stops at the first non-ASCII byte or mis-sizes a multi-byte
 * character would still meet the option. */
static const char *const pair_syntax[] = {"comma",        "readonly-on",  "equals",    "space",
                                          "single-quote", "double-quote", "backslash", "colon"};
static const char *const pair_unicode[] = {"e-acute", "cjk", "emoji", "rtl-override"};

/* The first version's values, kept as they were (labels unchanged). */
static const atom legacy[] = {
    {"comma", ","},
    {"readonly-suffix", ",readonly=on"},
    {"double-comma", "a,,b,"},
    {"equals", "="},
    {"key-value", "k=v,x=y"},
    {"space", "a b"},
    {"single-quote", "it's"},
    {"double-quote", "\"q\""},
    {"backslash", "a\\b\\"},
    {"newline", "a\nb"},
    {"tab", "a\tb"},
    {"e-acute", "\xc3\xa9"},
    {"emoji", "\xf0\x9f\x98\x80"},
    {"cjk", "\xe6\x97\xa5\xe6\x9c\xac"},
    {"shell", "$(id)`id`;|&*?<>"},
    {"security-model", ",security_model=none"},
    {"json-protocol", "json:{\"driver\":\"null-co\"}"},
    {"mixed", "x,id=evil, \xc3\xa9'\"\\\n\xf0\x9f\x98\x80=\xe6\x97\xa5\xe6\x9c\xac"},
};

/* Long names: the atoms repeated, whole characters only, then padded with
 * 'x' to the length that fills NAME_MAX behind the longest prefix. */
static const struct {
    const char *label;
    const char *const parts[6];
} longs[] = {
    {"long-readonly", {",readonly=on", NULL}},
    {"long-cjk", {"\xe6\x97\xa5\xe6\x9c\xac", NULL}},
    {"long-emoji", {"\xf0\x9f\x98\x80", NULL}},
    {"long-combining", {"e\xcc\x81", NULL}},
    {"long-quotes", {"'", "\"", "\\", " ", NULL}},
    {"long-mixed", {",file=x,", "\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x80\xae", "$(id) ", NULL}},
};

/* Control characters (C0, DEL, C1 as UTF-8) and invalid UTF-8. */
static const atom invalid[] = {
    {"ctl-soh", "\x01"},
    {"ctl-bel", "\x07"},
    {"ctl-backspace", "\x08"},
    {"ctl-tab", "\t"},
    {"ctl-newline", "\n"},
    {"ctl-cr", "\r"},
    {"ctl-esc", "\x1b"},
    {"ctl-ansi-red", "\x1b[31m"},
    {"ctl-unit-sep", "\x1f"},
    {"ctl-del", "\x7f"},
    {"ctl-c1-nel", "\xc2\x85"},
    {"ctl-c1-csi", "\xc2\x9b"},
    {"utf8-ff", "\xff"},
    {"utf8-continuation", "\x80"},
    {"utf8-truncated-2", "\xc3"},
    {"utf8-truncated-3", "\xe6\x97"},
    {"utf8-overlong-slash", "\xc0\xaf"},
    {"utf8-surrogate", "\xed\xa0\x80"},
    {"utf8-past-max", "\xf4\x90\x80\x80"},
};

static char *xstrdup(const char *s)
{
    char *r = strdup(s);
    if (!r)
        abort();
    return r;
}

static char *xfmt3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *r = malloc(n);
    if (!r)
        abort();
    snprintf(r, n, "%s%s%s", a, b, c);
    return r;
}

typedef struct list {
    hname *v;
    size_t n, cap;
} list;

/* Adds (label, value) unless the value is already there: a name is tested
 * once, under the first label that produced it. Takes both strings. */
static void add(list *l, char *label, char *v)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].v, v) == 0) {
            free(label);
            free(v);
            return;
        }
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (!l->v)
            abort();
    }
    l->v[l->n++] = (hname){label, v};
}

static const atom *find(const atom *t, size_t n, const char *label)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].label, label) == 0)
            return &t[i];
    abort();
}

/* The four positions of a fragment in a name. */
static void add_positions(list *l, const atom *a)
{
    add(l, xfmt3(a->label, "/alone", ""), xstrdup(a->v));
    add(l, xfmt3(a->label, "/leading", ""), xfmt3(a->v, "x", ""));
    add(l, xfmt3(a->label, "/trailing", ""), xfmt3("x", a->v, ""));
    add(l, xfmt3(a->label, "/middle", ""), xfmt3("a", a->v, "b"));
}

hname *hostile_names_valid(size_t *n_out)
{
    list l = {0};
    for (size_t i = 0; i < sizeof(legacy) / sizeof(*legacy); i++)
        add(&l, xstrdup(legacy[i].label), xstrdup(legacy[i].v));
    for (size_t i = 0; i < sizeof(syntax) / sizeof(*syntax); i++)
        add_positions(&l, &syntax[i]);
    for (size_t i = 0; i < sizeof(unicode) / sizeof(*unicode); i++)
        add_positions(&l, &unicode[i]);
    for (size_t i = 0; i < sizeof(pair_unicode) / sizeof(*pair_unicode); i++) {
        const atom *u = find(unicode, sizeof(unicode) / sizeof(*unicode), pair_unicode[i]);
        for (size_t j = 0; j < sizeof(pair_syntax) / sizeof(*pair_syntax); j++) {
            const atom *s = find(syntax, sizeof(syntax) / sizeof(*syntax), pair_syntax[j]);
            add(&l, xfmt3(u->label, "+", s->label), xfmt3(u->v, s->v, ""));
        }
    }
    const size_t want = NAME_MAX - HOSTILE_LONG_PREFIX_MAX;
    for (size_t i = 0; i < sizeof(longs) / sizeof(*longs); i++) {
        char *v = calloc(want + 1, 1);
        if (!v)
            abort();
        size_t len = 0;
        for (size_t k = 0;; k++) {
            const char *p = longs[i].parts[k];
            if (!p) {
                k = (size_t)-1; /* next round of parts */
                continue;
            }
            if (len + strlen(p) > want)
                break;
            memcpy(v + len, p, strlen(p));
            len += strlen(p);
        }
        memset(v + len, 'x', want - len);
        add(&l, xstrdup(longs[i].label), v);
    }
    *n_out = l.n;
    return l.v;
}

hname *hostile_names_invalid(size_t *n_out)
{
    list l = {0};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(*invalid); i++) {
        add(&l, xfmt3(invalid[i].label, "/middle", ""), xfmt3("a", invalid[i].v, "b"));
        add(&l, xfmt3(invalid[i].label, "/trailing", ""), xfmt3("x", invalid[i].v, ""));
    }
    *n_out = l.n;
    return l.v;
}

void hostile_names_free(hname *names, size_t n)
{
    for (size_t i = 0; names && i < n; i++) {
        free(names[i].label);
        free(names[i].v);
    }
    free(names);
}
