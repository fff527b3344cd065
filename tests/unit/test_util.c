/*
 * Unit tests for src/util: strbuf, the one QEMU escaping function, typed option
 * lists, the argv object and its shell rendering, the error object and the
 * table-driven JSON decoder. Run under ASan+UBSan too: the partial-decode tests
 * rely on LeakSanitizer to prove sv_json_free releases everything.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/argv.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/qopts.h"
#include "util/strbuf.h"

/* Words a config may carry that must survive every layer unchanged. */
static const char *const hostile_words[] = {
    "",
    " ",
    "a b",
    "'",
    "''",
    "a'b'c",
    "\"",
    "\\",
    "\\'",
    "'\"'\"'",
    "$HOME",
    "${HOME}",
    "`id`",
    "$(id)",
    "a\nb",
    "\n",
    "\t",
    "*",
    "?",
    "[a]",
    "~",
    "~root",
    "-n",
    "-e",
    "--",
    "!",
    "#x",
    "a;b",
    "a|b",
    "a&b",
    "<>",
    "{a,b}",
    "x,readonly=on",
    ",",
    ",,",
    "=",
    "%s%n",
    "\xc3\xa9\xf0\x9f\x98\x80\xe6\x97\xa5\xe6\x9c\xac", /* é😀日本 */
    "\x01\x1f\x7f\xff",
    "plain/path-1.2_x@y+z:w,v=u",
};

/* ---- strbuf ------------------------------------------------------------ */

static void test_strbuf_growth(void **state)
{
    (void)state;
    _cleanup_strbuf_ sv_strbuf sb = SV_STRBUF_INIT;
    for (int i = 0; i < 10000; i++)
        sv_strbuf_append_c(&sb, (char)('a' + i % 26));
    assert_false(sb.oom);
    assert_int_equal(sb.len, 10000);
    assert_true(sb.cap >= sb.len + 1);
    assert_int_equal(strlen(sb.s), 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(sb.s[i], 'a' + i % 26);

    sv_strbuf_append(&sb, "-tail");
    sv_strbuf_appendf(&sb, "[%d:%s]", 42, "x");
    sv_strbuf_append_n(&sb, "abcdef", 3);
    assert_string_equal(sb.s + 10000, "-tail[42:x]abc");
    assert_int_equal(sb.len, 10000 + strlen("-tail[42:x]abc"));

    /* appendf larger than the initial capacity in one go */
    _cleanup_strbuf_ sv_strbuf sb2 = SV_STRBUF_INIT;
    sv_strbuf_appendf(&sb2, "%0500d", 7);
    assert_int_equal(sb2.len, 500);
    assert_int_equal(sb2.s[499], '7');
    assert_int_equal(sb2.s[500], '\0');
}

static void test_strbuf_steal(void **state)
{
    (void)state;
    sv_strbuf sb = SV_STRBUF_INIT;
    char *s = sv_strbuf_steal(&sb);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);

    sv_strbuf_append(&sb, "hello");
    s = sv_strbuf_steal(&sb);
    assert_string_equal(s, "hello");
    free(s);
    /* the buffer is reset and reusable */
    assert_null(sb.s);
    assert_int_equal(sb.len, 0);
    sv_strbuf_append(&sb, "again");
    s = sv_strbuf_steal(&sb);
    assert_string_equal(s, "again");
    free(s);
    sv_strbuf_free(&sb);
}

static void test_strbuf_oom_sticky(void **state)
{
    (void)state;
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, "before");
    /* A size whose doubling overflows: fails without ever calling malloc. */
    sv_strbuf_append_n(&sb, "x", ((size_t)-1) / 2 + 1);
    assert_true(sb.oom);
    /* sticky: later appends of every kind are no-ops */
    size_t len = sb.len;
    sv_strbuf_append(&sb, "after");
    sv_strbuf_append_c(&sb, 'c');
    sv_strbuf_appendf(&sb, "%d", 1);
    sv_strbuf_append_n(&sb, "xyz", 3);
    assert_true(sb.oom);
    assert_int_equal(sb.len, len);
    /* one check at the end: steal reports the failure and frees */
    assert_null(sv_strbuf_steal(&sb));
    assert_null(sb.s);
    assert_false(sb.oom);
    /* after steal the buffer is usable again */
    sv_strbuf_append(&sb, "ok");
    char *s = sv_strbuf_steal(&sb);
    assert_string_equal(s, "ok");
    free(s);

    /* a buffer marked oom by hand behaves the same */
    sv_strbuf sb2 = SV_STRBUF_INIT;
    sb2.oom = true;
    sv_strbuf_append(&sb2, "x");
    assert_null(sb2.s);
    assert_null(sv_strbuf_steal(&sb2));
    sv_strbuf_free(&sb2);
}

/* ---- sv_qemu_escape ---------------------------------------------------- */

static char *escaped(const char *v)
{
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_qemu_escape(&sb, v);
    return sv_strbuf_steal(&sb);
}

static void test_qemu_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"a", "a"},
        {",", ",,"},
        {",,", ",,,,"},
        {"a,b", "a,,b"},
        {"x,readonly=on", "x,,readonly=on"},
        {",a,", ",,a,,"},
        {"= '\"\\\n\t$`", "= '\"\\\n\t$`"},
        {"\xc3\xa9\xf0\x9f\x98\x80", "\xc3\xa9\xf0\x9f\x98\x80"},
        {"/tmp/a b/c=d:e", "/tmp/a b/c=d:e"},
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
        _cleanup_free_ char *s = escaped(cases[i].in);
        assert_non_null(s);
        assert_string_equal(s, cases[i].out);
    }
    /* appends to what the buffer already holds */
    _cleanup_strbuf_ sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, "file=");
    sv_qemu_escape(&sb, "a,b");
    sv_qemu_escape(&sb, "");
    assert_string_equal(sb.s, "file=a,,b");

    /* every byte but ',' is copied, in order */
    char all[256];
    for (int c = 1; c < 256; c++)
        all[c - 1] = (char)c;
    all[255] = '\0';
    _cleanup_free_ char *e = escaped(all);
    size_t j = 0;
    for (int c = 1; c < 256; c++) {
        assert_int_equal((unsigned char)e[j++], c);
        if (c == ',')
            assert_int_equal(e[j++], ',');
    }
    assert_int_equal(e[j], '\0');
}

/* ---- sv_qopts ---------------------------------------------------------- */

/* A reader of QEMU's option syntax (util/qemu-option.c get_opt_value): values
 * end at a single ',' and ",," stands for ','. Returns the n-th value. */
static size_t qemu_split(const char *s, char ***out)
{
    size_t n = 0;
    char **v = NULL;
    const char *p = s;
    for (;;) {
        sv_strbuf sb = SV_STRBUF_INIT;
        sv_strbuf_append(&sb, "");
        while (*p) {
            if (*p == ',') {
                if (p[1] != ',')
                    break;
                p++;
            }
            sv_strbuf_append_c(&sb, *p++);
        }
        v = realloc(v, (n + 2) * sizeof(*v));
        assert_non_null(v);
        v[n++] = sv_strbuf_steal(&sb);
        v[n] = NULL;
        if (!*p)
            break;
        p++;
    }
    *out = v;
    return n;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void test_qopts_to_string(void **state)
{
    (void)state;
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("driver", "virtio-blk-pci");
    assert_non_null(o);
    sv_qopts_str(o, "drive", "d,0");
    sv_qopts_str(o, "serial", NULL); /* unset: skipped */
    sv_qopts_int(o, "num", -5);
    sv_qopts_int(o, "big", INT64_MAX);
    sv_qopts_int(o, "small", INT64_MIN);
    sv_qopts_bool(o, "x", true);
    sv_qopts_bool(o, "y", false);
    sv_qopts_str(o, "empty", "");
    _cleanup_free_ char *s = sv_qopts_to_string(o);
    assert_string_equal(s, "virtio-blk-pci,drive=d,,0,num=-5,big=9223372036854775807,"
                           "small=-9223372036854775808,x=on,y=off,empty=");
    assert_null(sv_qopts_get(o, "serial"));
    const sv_qprop *p = sv_qopts_get(o, "num");
    assert_non_null(p);
    assert_int_equal(p->type, SV_QV_INT);
    assert_int_equal(p->num, -5);
    p = sv_qopts_get(o, "x");
    assert_int_equal(p->type, SV_QV_BOOL);
    assert_true(p->flag);
    p = sv_qopts_get(o, "drive");
    assert_int_equal(p->type, SV_QV_STR);
    assert_string_equal(p->str, "d,0");

    /* no head: the list starts with the first key */
    _cleanup_qopts_ sv_qopts *n = sv_qopts_new(NULL, NULL);
    _cleanup_free_ char *empty = sv_qopts_to_string(n);
    assert_string_equal(empty, "");
    sv_qopts_str(n, "id", "a");
    sv_qopts_bool(n, "server", true);
    _cleanup_free_ char *s2 = sv_qopts_to_string(n);
    assert_string_equal(s2, "id=a,server=on");

    /* a head is a value too: escaped */
    _cleanup_qopts_ sv_qopts *h = sv_qopts_new("driver", "a,b");
    _cleanup_free_ char *s3 = sv_qopts_to_string(h);
    assert_string_equal(s3, "a,,b");

    /* NULL and OOM lists render as NULL, not as a half list */
    assert_null(sv_qopts_to_string(NULL));
    assert_null(sv_qopts_to_json(NULL));
    sv_qopts_free(NULL);
}

static void test_qopts_comma_values_stay_one_value(void **state)
{
    (void)state;
    for (size_t i = 0; i < SV_ARRAY_SIZE(hostile_words); i++) {
        _cleanup_qopts_ sv_qopts *o = sv_qopts_new("driver", "virtio-blk-pci");
        sv_qopts_str(o, "file", hostile_words[i]);
        sv_qopts_bool(o, "readonly", false);
        _cleanup_free_ char *s = sv_qopts_to_string(o);
        assert_non_null(s);
        char **v = NULL;
        size_t n = qemu_split(s, &v);
        /* exactly: head, file=<word>, readonly=off */
        assert_int_equal(n, 3);
        assert_string_equal(v[0], "virtio-blk-pci");
        assert_int_equal(strncmp(v[1], "file=", 5), 0);
        assert_string_equal(v[1] + 5, hostile_words[i]);
        assert_string_equal(v[2], "readonly=off");
        strv_free(v);
    }
}

static void test_qopts_to_json(void **state)
{
    (void)state;
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("driver", "virtio-blk-pci");
    sv_qopts_str(o, "drive", "d,0,readonly=on");
    sv_qopts_int(o, "num", -5);
    sv_qopts_int(o, "big", INT64_MAX);
    sv_qopts_bool(o, "x", true);
    sv_qopts_bool(o, "y", false);
    sv_qopts_str(o, "u", "\xc3\xa9\xf0\x9f\x98\x80\n\"");
    _cleanup_json_ json_object *j = sv_qopts_to_json(o);
    assert_non_null(j);

    /* round trip through text: types and values survive */
    const char *text = sv_json_to_string(j);
    _cleanup_json_ json_object *back = NULL;
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_json_parse(text, strlen(text), &back, &err), 0);
    json_object *v;
    assert_int_equal(json_object_object_length(back), 7);
    assert_true(json_object_object_get_ex(back, "driver", &v));
    assert_int_equal(json_object_get_type(v), json_type_string);
    assert_string_equal(json_object_get_string(v), "virtio-blk-pci");
    assert_true(json_object_object_get_ex(back, "drive", &v));
    assert_int_equal(json_object_get_type(v), json_type_string);
    assert_string_equal(json_object_get_string(v), "d,0,readonly=on"); /* not escaped in JSON */
    assert_true(json_object_object_get_ex(back, "num", &v));
    assert_int_equal(json_object_get_type(v), json_type_int);
    assert_int_equal(json_object_get_int64(v), -5);
    assert_true(json_object_object_get_ex(back, "big", &v));
    assert_int_equal(json_object_get_type(v), json_type_int);
    assert_true(json_object_get_int64(v) == INT64_MAX);
    assert_true(json_object_object_get_ex(back, "x", &v));
    assert_int_equal(json_object_get_type(v), json_type_boolean);
    assert_true(json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(back, "y", &v));
    assert_int_equal(json_object_get_type(v), json_type_boolean);
    assert_false(json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(back, "u", &v));
    assert_string_equal(json_object_get_string(v), "\xc3\xa9\xf0\x9f\x98\x80\n\"");

    /* no head (or no head key): no head member */
    _cleanup_qopts_ sv_qopts *n = sv_qopts_new(NULL, NULL);
    sv_qopts_str(n, "id", "a");
    _cleanup_json_ json_object *jn = sv_qopts_to_json(n);
    assert_string_equal(sv_json_to_string(jn), "{\"id\":\"a\"}");
}

/* ---- sv_argv ----------------------------------------------------------- */

static void test_argv_words(void **state)
{
    (void)state;
    _cleanup_argv_ sv_argv *a = sv_argv_new();
    assert_non_null(a);
    assert_int_equal(a->n, 0);
    assert_null(a->v[0]);
    sv_argv_add(a, "qemu-system-x86_64");
    sv_argv_add_pair(a, "-name", "vm,1");
    sv_argv_add_fmt(a, "-m%d%s", 512, "M");
    sv_argv_add_pair_fmt(a, "-smp", "cpus=%d", 2);
    _cleanup_qopts_ sv_qopts *o = sv_qopts_new("driver", "virtio-rng-pci");
    sv_qopts_str(o, "id", "r,0");
    sv_argv_add_qopts(a, "-device", o);
    static const char *const want[] = {
        "qemu-system-x86_64",    "-name", "vm,1", "-m512M", "-smp", "cpus=2", "-device",
        "virtio-rng-pci,id=r,,0"};
    assert_int_equal(a->n, SV_ARRAY_SIZE(want));
    for (size_t i = 0; i < SV_ARRAY_SIZE(want); i++)
        assert_string_equal(a->v[i], want[i]);
    assert_null(a->v[a->n]);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_argv_take_error(a, &err), 0);
    assert_null(err);
}

static void test_argv_pass_fd(void **state)
{
    (void)state;
    _cleanup_argv_ sv_argv *a = sv_argv_new();
    assert_int_equal(sv_argv_pass_fd(a, 10), 3);
    assert_int_equal(sv_argv_pass_fd(a, 11), 4);
    assert_int_equal(sv_argv_pass_fd(a, 10), 3); /* same fd, same number */
    assert_int_equal(sv_argv_pass_fd(a, 0), 5);
    assert_int_equal(sv_argv_pass_fd(a, 11), 4);
    assert_int_equal(sv_argv_pass_fd(a, 12), 6);
    assert_int_equal(a->nfds, 4);
    assert_int_equal(a->fds[0], 10);
    assert_int_equal(a->fds[1], 11);
    assert_int_equal(a->fds[2], 0);
    assert_int_equal(a->fds[3], 12);

    /* a bad fd is an error, remembered */
    assert_int_equal(sv_argv_pass_fd(a, -1), -1);
    assert_int_equal(sv_argv_pass_fd(a, 13), -1);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_argv_take_error(a, &err), -EBADF);
    assert_int_equal(sv_error_code(err), EBADF);
    assert_non_null(strstr(sv_error_message(err), "-1"));
}

static void test_argv_first_error(void **state)
{
    (void)state;
    _cleanup_argv_ sv_argv *a = sv_argv_new();
    sv_argv_add(a, "qemu");
    sv_argv_fail(a, EINVAL, "devices[%d].id: first", 3);
    sv_argv_fail(a, EIO, "second");
    sv_argv_add(a, "ignored");
    sv_argv_add_pair(a, "-x", "ignored");
    sv_argv_add_pair(a, "-y", NULL);
    assert_int_equal(a->n, 1);
    assert_int_equal(sv_argv_pass_fd(a, 5), -1);
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_argv_take_error(a, &err), -EINVAL);
    assert_string_equal(sv_error_message(err), "devices[3].id: first");
    assert_int_equal(sv_error_code(err), EINVAL);

    /* a NULL value in a pair is an allocation-style failure, not a crash */
    _cleanup_argv_ sv_argv *b = sv_argv_new();
    sv_argv_add_pair(b, "-x", NULL);
    assert_int_equal(sv_argv_take_error(b, NULL), -ENOMEM);

    /* a NULL qopts (its builder ran out of memory) fails the argv */
    _cleanup_argv_ sv_argv *c = sv_argv_new();
    sv_argv_add_qopts(c, "-device", NULL);
    assert_true(sv_argv_take_error(c, NULL) < 0);

    /* the error is moved, not copied; a set *err is kept */
    _cleanup_argv_ sv_argv *d = sv_argv_new();
    sv_argv_fail(d, ENOENT, "new");
    _cleanup_error_ sv_error *old = NULL;
    sv_error_set(&old, EPERM, "old");
    assert_int_equal(sv_argv_take_error(d, &old), -ENOENT);
    assert_string_equal(sv_error_message(old), "old");
    assert_int_equal(sv_argv_take_error(d, &old), 0);
}

static void test_argv_to_text(void **state)
{
    (void)state;
    _cleanup_argv_ sv_argv *a = sv_argv_new();
    sv_argv_add(a, "qemu-system-x86_64");
    sv_argv_add_pair(a, "-name", "my vm");
    sv_argv_add(a, "-nodefaults");
    sv_argv_add_pair(a, "-append", "it's");
    sv_argv_add_pair(a, "-x", "a\nb");
    sv_argv_add_pair(a, "-y", "");
    sv_argv_add_pair(a, "-device", "virtio-blk-pci,drive=d,,0");
    sv_argv_add_pair(a, "-z", "$(id) `id` \"q\" \\");
    _cleanup_free_ char *t = sv_argv_to_text(a);
    assert_string_equal(t, "qemu-system-x86_64 \\\n"
                           "-name 'my vm' \\\n"
                           "-nodefaults \\\n"
                           "-append 'it'\\''s' \\\n"
                           "-x 'a\nb' \\\n"
                           "-y '' \\\n"
                           "-device virtio-blk-pci,drive=d,,0 \\\n"
                           "-z '$(id) `id` \"q\" \\'\n");

    _cleanup_argv_ sv_argv *e = sv_argv_new();
    _cleanup_free_ char *te = sv_argv_to_text(e);
    assert_string_equal(te, "\n");

    _cleanup_argv_ sv_argv *one = sv_argv_new();
    sv_argv_add(one, "qemu");
    _cleanup_free_ char *t1 = sv_argv_to_text(one);
    assert_string_equal(t1, "qemu\n");
}

/* Runs `sh -c 'printf %s "$#:$1"' _ <quoted>` through /bin/sh and returns
 * what it printed: a quoted word must reach the program as one argument,
 * byte for byte. */
static char *shell_roundtrip(const char *quoted)
{
    _cleanup_free_ char *script = NULL;
    assert_true(asprintf(&script, "sh -c 'printf %%s \"$#:$1\"' _ %s", quoted) >= 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    sv_strbuf sb = SV_STRBUF_INIT;
    sv_strbuf_append(&sb, "");
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof(buf))) > 0)
        sv_strbuf_append_n(&sb, buf, (size_t)n);
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    return sv_strbuf_steal(&sb);
}

static void test_shell_quote_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < SV_ARRAY_SIZE(hostile_words); i++) {
        const char *w = hostile_words[i];
        _cleanup_strbuf_ sv_strbuf sb = SV_STRBUF_INIT;
        sv_shell_quote(&sb, w);
        assert_false(sb.oom);
        assert_non_null(sb.s);
        _cleanup_free_ char *got = shell_roundtrip(sb.s);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "1:%s", w) >= 0);
        if (strcmp(got, want) != 0)
            fail_msg("word %zu quoted as <%s> came back as <%s>", i, sb.s, got);
    }
    /* plain words stay unquoted, everything else is quoted */
    _cleanup_strbuf_ sv_strbuf sb = SV_STRBUF_INIT;
    sv_shell_quote(&sb, "virtio-blk-pci,drive=d,,0,file=/a/b.img");
    assert_string_equal(sb.s, "virtio-blk-pci,drive=d,,0,file=/a/b.img");
    _cleanup_strbuf_ sv_strbuf sb2 = SV_STRBUF_INIT;
    sv_shell_quote(&sb2, "");
    assert_string_equal(sb2.s, "''");
}

/* The whole text of an argv is one shell command giving back the same words. */
static void test_argv_text_is_a_shell_command(void **state)
{
    (void)state;
    _cleanup_argv_ sv_argv *a = sv_argv_new();
    for (size_t i = 0; i < SV_ARRAY_SIZE(hostile_words); i++)
        sv_argv_add_pair(a, "-w", hostile_words[i]);
    _cleanup_free_ char *text = sv_argv_to_text(a);
    /* "printf '%s\0' <text>" prints each word NUL-terminated */
    _cleanup_free_ char *script = NULL;
    assert_true(asprintf(&script, "printf '%%s\\0' \\\n%s", text) >= 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    sv_strbuf sb = SV_STRBUF_INIT;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof(buf))) > 0)
        sv_strbuf_append_n(&sb, buf, (size_t)n);
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t off = 0;
    for (size_t i = 0; i < a->n; i++) {
        assert_true(off < sb.len);
        assert_string_equal(sb.s + off, a->v[i]);
        off += strlen(a->v[i]) + 1;
    }
    assert_int_equal(off, sb.len);
    sv_strbuf_free(&sb);
}

/* ---- error object ------------------------------------------------------ */

static void test_error_object(void **state)
{
    (void)state;
    sv_error *err = NULL;
    assert_int_equal(sv_error_set(&err, EINVAL, "c %d", 1), -EINVAL);
    assert_non_null(err);
    assert_int_equal(sv_error_code(err), EINVAL);
    assert_string_equal(sv_error_message(err), "c 1");

    /* the first error wins */
    assert_int_equal(sv_error_set(&err, EIO, "later"), -EIO);
    assert_string_equal(sv_error_message(err), "c 1");
    assert_int_equal(sv_error_code(err), EINVAL);

    /* context on the way up; the code is kept */
    assert_int_equal(sv_error_prefix(&err, "b"), -EINVAL);
    assert_int_equal(sv_error_prefix(&err, "%s", "a"), -EINVAL);
    assert_string_equal(sv_error_message(err), "a: b: c 1");
    assert_int_equal(sv_error_code(err), EINVAL);
    sv_error_free(err);

    /* NULL err: callers that do not want the message */
    assert_int_equal(sv_error_set(NULL, ENOENT, "x"), -ENOENT);
    assert_int_equal(sv_error_errno(NULL, ENOENT, "x"), -ENOENT);
    assert_int_equal(sv_error_prefix(NULL, "x"), -EINVAL);
    err = NULL;
    assert_int_equal(sv_error_prefix(&err, "x"), -EINVAL);
    assert_null(err);
    sv_error_free(NULL);
    assert_int_equal(sv_error_code(NULL), 0);
    assert_string_equal(sv_error_message(NULL), "");

    /* errno form */
    err = NULL;
    assert_int_equal(sv_error_errno(&err, ENOENT, "opening %s", "/x"), -ENOENT);
    assert_int_equal(sv_error_code(err), ENOENT);
    _cleanup_free_ char *want = NULL;
    assert_true(asprintf(&want, "opening /x: %s", strerror(ENOENT)) >= 0);
    assert_string_equal(sv_error_message(err), want);
    sv_error_free(err);

    /* a code <= 0 still classifies as EINVAL */
    err = NULL;
    assert_int_equal(sv_error_set(&err, 0, "zero"), -EINVAL);
    assert_int_equal(sv_error_code(err), EINVAL);
    sv_error_free(err);

    /* hostile text is data, not a format */
    err = NULL;
    sv_error_set(&err, EINVAL, "%s", "100%s %n");
    sv_error_prefix(&err, "%s", "%d");
    assert_string_equal(sv_error_message(err), "%d: 100%s %n");
    sv_error_free(err);
}

/* ---- JSON decoder ------------------------------------------------------ */

typedef struct t_inner {
    char *y;
    int64_t z;
} t_inner;

typedef struct t_dev {
    char *id;
    char *mount_tag;
    char **tags;
    t_inner sub;
} t_dev;

typedef struct t_top {
    char *name;
    bool flag;
    int64_t count;
    int mode;
    int kind;
    char **strv;
    int64_t *ints;
    size_t n_ints;
    t_inner x;
    t_dev *devices;
    size_t n_devices;
    char *custom;
} t_top;

static const char *const mode_names[] = {"a", "b", "c", NULL};
static const char *const kind_names[] = {"", "tap", "macvtap", NULL}; /* "" = unset */

static const sv_jfield inner_fields[] = {
    SV_JSTR(t_inner, y, "y"),
    SV_JINT(t_inner, z, "z", 0, 0),
    SV_JEND,
};
static const sv_jschema inner_schema = {sizeof(t_inner), inner_fields};

static const sv_jfield dev_fields[] = {
    SV_JSTR(t_dev, id, "id"),
    SV_JSTR(t_dev, mount_tag, "mount_tag"),
    SV_JSTRV(t_dev, tags, "tags"),
    SV_JOBJ(t_dev, sub, "sub", &inner_schema),
    SV_JEND,
};
static const sv_jschema dev_schema = {sizeof(t_dev), dev_fields};

static int custom_decode(json_object *v, void *field, const char *path, sv_error **err)
{
    if (json_object_get_type(v) != json_type_string)
        return sv_error_set(err, EINVAL, "%s: custom wants a string", path);
    char **p = field;
    if (asprintf(p, "<%s>", json_object_get_string(v)) < 0) {
        *p = NULL;
        return sv_error_set(err, ENOMEM, "out of memory");
    }
    return 0;
}

static void custom_free(void *field)
{
    char **p = field;
    free(*p);
    *p = NULL;
}

static const sv_jcustom custom_codec = {custom_decode, custom_free};

static const sv_jfield top_fields[] = {
    SV_JSTR(t_top, name, "name"),
    SV_JBOOL(t_top, flag, "flag"),
    SV_JINT(t_top, count, "count", 1, 10),
    SV_JENUM(t_top, mode, "mode", mode_names),
    SV_JENUM(t_top, kind, "kind", kind_names),
    SV_JSTRV(t_top, strv, "strv"),
    SV_JINTV(t_top, ints, n_ints, "ints", 3, 100),
    SV_JOBJ(t_top, x, "x", &inner_schema),
    SV_JARR(t_top, devices, n_devices, "devices", &dev_schema),
    SV_JCUSTOM(t_top, custom, "custom", &custom_codec),
    SV_JEND,
};
static const sv_jschema top_schema = {sizeof(t_top), top_fields};

/* Parses and decodes `text` into a fresh t_top; returns the decode result,
 * the message in *msg (or NULL) and frees everything. */
static int decode_text(const char *text, char **msg)
{
    _cleanup_error_ sv_error *err = NULL;
    _cleanup_json_ json_object *obj = NULL;
    *msg = NULL;
    int r = sv_json_parse(text, strlen(text), &obj, &err);
    if (r == 0) {
        t_top t;
        memset(&t, 0, sizeof(t));
        r = sv_json_decode(&top_schema, obj, &t, "", &err);
        sv_json_free(&top_schema, &t);
        /* everything released and reset */
        assert_null(t.name);
        assert_null(t.strv);
        assert_null(t.ints);
        assert_int_equal(t.n_ints, 0);
        assert_null(t.x.y);
        assert_null(t.devices);
        assert_int_equal(t.n_devices, 0);
        assert_null(t.custom);
    }
    if (r < 0) {
        assert_non_null(err);
        assert_int_equal(-r, sv_error_code(err));
        *msg = strdup(sv_error_message(err));
    } else {
        assert_null(err);
    }
    return r;
}

static void expect_decode_error(const char *text, const char *want)
{
    _cleanup_free_ char *msg = NULL;
    int r = decode_text(text, &msg);
    if (r >= 0)
        fail_msg("decoding %s succeeded; expected \"%s\"", text, want);
    if (strcmp(msg, want) != 0)
        fail_msg("decoding %s: got \"%s\", expected \"%s\"", text, msg, want);
}

static void expect_parse_error_containing(const char *text, size_t len, const char *want)
{
    _cleanup_error_ sv_error *err = NULL;
    json_object *obj = NULL;
    int r = sv_json_parse(text, len, &obj, &err);
    if (r != -EINVAL) {
        _cleanup_free_ char *shown = NULL;
        sv_strbuf sb = SV_STRBUF_INIT;
        for (size_t i = 0; i < len; i++)
            sv_strbuf_appendf(
                &sb,
                (unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e ? "\\x%02x" : "%c",
                (unsigned char)text[i]);
        shown = sv_strbuf_steal(&sb);
        json_object_put(obj);
        fail_msg("sv_json_parse accepted <%s> (%zu bytes): returned %d, want -EINVAL", shown, len,
                 r);
    }
    assert_null(obj);
    assert_int_equal(sv_error_code(err), EINVAL);
    if (!strstr(sv_error_message(err), want))
        fail_msg("parsing <%.*s>: got \"%s\", expected it to contain \"%s\"", (int)len, text,
                 sv_error_message(err), want);
}

static void test_json_decode_ok(void **state)
{
    (void)state;
    static const char text[] =
        "{\"name\":\"n,1\",\"flag\":true,\"count\":10,\"mode\":\"c\",\"kind\":\"macvtap\","
        "\"strv\":[\"a\",\"b\"],\"ints\":[3,100],\"x\":{\"y\":\"why\",\"z\":-9223372036854775808},"
        "\"devices\":[{\"id\":\"d0\",\"mount_tag\":\"t0\"},{\"id\":\"d1\",\"tags\":[],"
        "\"sub\":{\"y\":\"s\"}}],\"custom\":\"c\",\"mode\":\"b\"}";
    _cleanup_error_ sv_error *err = NULL;
    _cleanup_json_ json_object *obj = NULL;
    assert_int_equal(sv_json_parse(text, strlen(text), &obj, &err), 0);
    t_top t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(sv_json_decode(&top_schema, obj, &t, "", &err), 0);
    assert_string_equal(t.name, "n,1");
    assert_true(t.flag);
    assert_int_equal(t.count, 10);
    assert_int_equal(t.mode, 1); /* the last "mode" wins, as in json-c */
    assert_int_equal(t.kind, 2);
    assert_string_equal(t.strv[0], "a");
    assert_string_equal(t.strv[1], "b");
    assert_null(t.strv[2]);
    assert_int_equal(t.n_ints, 2);
    assert_int_equal(t.ints[0], 3);
    assert_int_equal(t.ints[1], 100);
    assert_string_equal(t.x.y, "why");
    assert_true(t.x.z == INT64_MIN);
    assert_int_equal(t.n_devices, 2);
    assert_string_equal(t.devices[0].id, "d0");
    assert_string_equal(t.devices[0].mount_tag, "t0");
    assert_null(t.devices[0].tags);
    assert_string_equal(t.devices[1].id, "d1");
    assert_null(t.devices[1].mount_tag);
    assert_non_null(t.devices[1].tags);
    assert_null(t.devices[1].tags[0]);
    assert_string_equal(t.devices[1].sub.y, "s");
    assert_string_equal(t.custom, "<c>");
    sv_json_free(&top_schema, &t);
    sv_json_free(&top_schema, NULL);

    /* null means absent; an absent enum keeps index 0 */
    _cleanup_json_ json_object *o2 = NULL;
    static const char t2[] = "{\"name\":null,\"kind\":null,\"devices\":null}";
    assert_int_equal(sv_json_parse(t2, strlen(t2), &o2, &err), 0);
    memset(&t, 0, sizeof(t));
    assert_int_equal(sv_json_decode(&top_schema, o2, &t, "", &err), 0);
    assert_null(t.name);
    assert_int_equal(t.kind, 0);
    assert_null(t.devices);
    sv_json_free(&top_schema, &t);

    /* escapes decode to the UTF-8 bytes, surrogate pairs included */
    _cleanup_json_ json_object *o4 = NULL;
    static const char t4[] = "{\"name\":\"\\u00e9\\ud83d\\ude00\\u65e5\\u672c,\\n\"}";
    assert_int_equal(sv_json_parse(t4, strlen(t4), &o4, &err), 0);
    memset(&t, 0, sizeof(t));
    assert_int_equal(sv_json_decode(&top_schema, o4, &t, "", &err), 0);
    assert_string_equal(t.name, "\xc3\xa9\xf0\x9f\x98\x80\xe6\x97\xa5\xe6\x9c\xac,\n");
    sv_json_free(&top_schema, &t);
    assert_null(err);
}

static void test_json_decode_errors(void **state)
{
    (void)state;
    /* unknown keys name their path */
    expect_decode_error("{\"nope\":1}", "unknown key \"nope\"");
    expect_decode_error("{\"x\":{\"q\":1}}", "x: unknown key \"q\"");
    expect_decode_error("{\"devices\":[{},{},{},{\"bogus\":true}]}",
                        "devices[3]: unknown key \"bogus\"");
    expect_decode_error("{\"devices\":[{\"sub\":{\"a\\\"b\":1}}]}",
                        "devices[0].sub: unknown key \"a\\\"b\"");
    /* wrong types */
    expect_decode_error("{\"x\":{\"y\":5}}", "x.y: expected a string, got an integer");
    expect_decode_error("{\"name\":true}", "name: expected a string, got a boolean");
    expect_decode_error("{\"name\":[]}", "name: expected a string, got an array");
    expect_decode_error("{\"flag\":\"yes\"}", "flag: expected a boolean, got a string");
    expect_decode_error("{\"flag\":1}", "flag: expected a boolean, got an integer");
    expect_decode_error("{\"count\":\"1\"}", "count: expected an integer, got a string");
    expect_decode_error("{\"count\":1.5}", "count: expected an integer, got a number");
    expect_decode_error("{\"x\":[]}", "x: expected an object, got an array");
    expect_decode_error("{\"devices\":{}}", "devices: expected an array, got an object");
    expect_decode_error("{\"devices\":[1]}", "devices[0]: expected an object, got an integer");
    expect_decode_error("{\"strv\":[\"a\",1]}", "strv[1]: expected a string, got an integer");
    expect_decode_error("{\"strv\":\"a\"}", "strv: expected an array, got a string");
    expect_decode_error("{\"mode\":1}", "mode: expected a string, got an integer");
    /* enums list the allowed values */
    expect_decode_error("{\"mode\":\"d\"}", "mode: \"d\" is not one of: a, b, c");
    expect_decode_error("{\"kind\":\"TAP\"}", "kind: \"TAP\" is not one of: tap, macvtap");
    /* the "" at index 0 means "absent": it is neither accepted nor listed */
    expect_decode_error("{\"kind\":\"\"}", "kind: \"\" is not one of: tap, macvtap");
    expect_decode_error("{\"mode\":\"a\\\"b\"}", "mode: \"a\\\"b\" is not one of: a, b, c");
    /* integer ranges */
    expect_decode_error("{\"count\":11}", "count: 11 is out of range [1, 10]");
    expect_decode_error("{\"count\":0}", "count: 0 is out of range [1, 10]");
    expect_decode_error("{\"count\":-1}", "count: -1 is out of range [1, 10]");
    expect_decode_error("{\"count\":99999999999999999999}",
                        "count: 9223372036854775807 is out of range [1, 10]");
    expect_decode_error("{\"ints\":[3,2]}", "ints[1]: 2 is out of range [3, 100]");
    expect_decode_error("{\"ints\":[\"3\"]}", "ints[0]: expected an integer, got a string");
    /* nested paths: array of structs and objects inside them */
    expect_decode_error("{\"devices\":[{},{},{},{\"mount_tag\":7}]}",
                        "devices[3].mount_tag: expected a string, got an integer");
    expect_decode_error("{\"devices\":[{\"sub\":{\"z\":\"1\"}}]}",
                        "devices[0].sub.z: expected an integer, got a string");
    expect_decode_error("{\"devices\":[{\"tags\":[\"a\",\"b\",null]}]}",
                        "devices[0].tags[2]: expected a string, got null");
    /* NUL bytes cannot hide in strings */
    expect_decode_error("{\"name\":\"a\\u0000b\"}", "name: the string contains a NUL character");
    expect_decode_error("{\"devices\":[{\"id\":\"\\u0000\"}]}",
                        "devices[0].id: the string contains a NUL character");
    expect_decode_error("{\"strv\":[\"ok\",\"x\\u0000\"]}",
                        "strv[1]: the string contains a NUL character");
    /* custom decoders get the path too */
    expect_decode_error("{\"custom\":1}", "custom: custom wants a string");
    /* the top level must be an object */
    _cleanup_error_ sv_error *err = NULL;
    _cleanup_json_ json_object *arr = json_object_new_array();
    t_top t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(sv_json_decode(&top_schema, arr, &t, "", &err), -EINVAL);
    assert_string_equal(sv_error_message(err), "(top level): expected an object, got an array");
}

static void test_json_parse_strict(void **state)
{
    (void)state;
    /* invalid UTF-8 */
    static const char bad_utf8[] = "{\"name\":\"\xff\"}";
    expect_parse_error_containing(bad_utf8, strlen(bad_utf8), "invalid JSON");
    static const char truncated_seq[] = "{\"name\":\"\xe6\x97\"}";
    expect_parse_error_containing(truncated_seq, strlen(truncated_seq), "invalid JSON");
    static const char bad_key[] = "{\"\xfe\":1}";
    expect_parse_error_containing(bad_key, strlen(bad_key), "invalid JSON");
    /* trailing garbage */
    expect_parse_error_containing("{} x", 4, "invalid JSON at byte 3");
    expect_parse_error_containing("{}{}", 4, "invalid JSON at byte 2");
    expect_parse_error_containing("{\"a\":1}]", 8, "invalid JSON at byte 7");
    expect_parse_error_containing("{\"a\":1}\n\n{\"a\":2}", 16, "invalid JSON");
    /* truncated and non-JSON input */
    expect_parse_error_containing("{\"a\":", 5, "unexpected end of input");
    expect_parse_error_containing("", 0, "unexpected end of input");
    expect_parse_error_containing("{a:1}", 5, "invalid JSON");
    expect_parse_error_containing("{\"a\":1,}", 8, "invalid JSON");
    expect_parse_error_containing("{\"a\":0x10}", 10, "invalid JSON");
    expect_parse_error_containing("nope", 4, "invalid JSON");

    /* valid UTF-8 and trailing whitespace are fine; len bounds the text */
    static const char ok[] = "{\"name\":\"\xc3\xa9\xf0\x9f\x98\x80\"} \n\t\r";
    json_object *obj = NULL;
    _cleanup_error_ sv_error *err = NULL;
    assert_int_equal(sv_json_parse(ok, strlen(ok), &obj, &err), 0);
    json_object_put(obj);
    obj = NULL;
    assert_int_equal(sv_json_parse("{}garbage", 2, &obj, &err), 0);
    json_object_put(obj);
    assert_null(err);
}

/* "Valid UTF-8" includes the shortest-form rule: an overlong sequence (here
 * '/' as C0 AF) or an encoded surrogate is not UTF-8, and a path checker that
 * looks for '/' must not be handed one. */
static void test_json_parse_rejects_overlong_utf8(void **state)
{
    (void)state;
    static const char overlong_slash[] = "{\"name\":\"\xc0\xaf\"}";
    expect_parse_error_containing(overlong_slash, strlen(overlong_slash), "invalid JSON");
    static const char overlong3[] = "{\"name\":\"\xe0\x80\xaf\"}";
    expect_parse_error_containing(overlong3, strlen(overlong3), "invalid JSON");
    static const char surrogate[] = "{\"name\":\"\xed\xa0\x80\"}";
    expect_parse_error_containing(surrogate, strlen(surrogate), "invalid JSON");
    static const char too_big[] = "{\"name\":\"\xf4\x90\x80\x80\"}";
    expect_parse_error_containing(too_big, strlen(too_big), "invalid JSON");
}

/* One value and nothing after it but whitespace: a NUL byte is not whitespace. */
static void test_json_parse_rejects_trailing_nul(void **state)
{
    (void)state;
    expect_parse_error_containing("{}\0", 3, "invalid JSON at byte 2");
    expect_parse_error_containing("{} \0", 4, "invalid JSON at byte 3");
}

/* Failures in the middle of every kind of field leave a struct that
 * sv_json_free releases completely: LeakSanitizer checks it in the ASan build,
 * decode_text() checks that every pointer was reset. */
static void test_json_partial_free(void **state)
{
    (void)state;
    static const char *const texts[] = {
        /* fails in the last array element, after strings, strv, ints, obj, custom */
        "{\"name\":\"n\",\"custom\":\"c\",\"strv\":[\"a\",\"b\"],\"ints\":[3,4],"
        "\"x\":{\"y\":\"y\"},\"devices\":[{\"id\":\"a\",\"mount_tag\":\"m\",\"tags\":[\"t\"],"
        "\"sub\":{\"y\":\"s\"}},{\"id\":\"b\",\"tags\":[\"u\",\"v\"],\"sub\":{\"y\":\"s2\","
        "\"z\":\"bad\"}}]}",
        /* fails inside a string vector */
        "{\"name\":\"n\",\"strv\":[\"a\",\"b\",3,\"d\"]}",
        /* fails inside an int vector */
        "{\"name\":\"n\",\"ints\":[3,4,5,1000]}",
        /* fails inside a nested object after its first string */
        "{\"x\":{\"y\":\"y\",\"q\":1}}",
        /* fails inside an element's string vector */
        "{\"devices\":[{\"id\":\"a\"},{\"id\":\"b\",\"tags\":[\"x\",\"\\u0000\"]}]}",
        /* fails on an element that is not an object */
        "{\"devices\":[{\"id\":\"a\",\"tags\":[\"x\"]},\"oops\"]}",
        /* fails after the custom field allocated */
        "{\"custom\":\"c\",\"mode\":\"zz\"}",
        /* fails on an unknown key after everything else */
        "{\"name\":\"n\",\"devices\":[{\"id\":\"a\"}],\"strv\":[\"s\"],\"zzz\":1}",
    };
    for (size_t i = 0; i < SV_ARRAY_SIZE(texts); i++) {
        _cleanup_free_ char *msg = NULL;
        assert_true(decode_text(texts[i], &msg) < 0);
        assert_non_null(msg);
    }
    _cleanup_free_ char *m0 = NULL;
    decode_text(texts[0], &m0);
    assert_string_equal(m0, "devices[1].sub.z: expected an integer, got a string");
}

static void test_json_paths(void **state)
{
    (void)state;
    _cleanup_free_ char *a = sv_json_path_key("", "x");
    _cleanup_free_ char *b = sv_json_path_key(NULL, "x");
    _cleanup_free_ char *c = sv_json_path_key("devices[3]", "mount_tag");
    _cleanup_free_ char *d = sv_json_path_index("devices", 3);
    _cleanup_free_ char *e = sv_json_path_index("", 0);
    assert_string_equal(a, "x");
    assert_string_equal(b, "x");
    assert_string_equal(c, "devices[3].mount_tag");
    assert_string_equal(d, "devices[3]");
    assert_string_equal(e, "[0]");
    assert_string_equal(sv_json_type_name(json_type_int), "an integer");
    assert_string_equal(sv_json_type_name(json_type_null), "null");

    _cleanup_json_ json_object *o = json_object_new_object();
    json_object_object_add(o, "p", json_object_new_string("/a/b"));
    assert_string_equal(sv_json_to_string(o), "{\"p\":\"/a/b\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_growth),
        cmocka_unit_test(test_strbuf_steal),
        cmocka_unit_test(test_strbuf_oom_sticky),
        cmocka_unit_test(test_qemu_escape),
        cmocka_unit_test(test_qopts_to_string),
        cmocka_unit_test(test_qopts_comma_values_stay_one_value),
        cmocka_unit_test(test_qopts_to_json),
        cmocka_unit_test(test_argv_words),
        cmocka_unit_test(test_argv_pass_fd),
        cmocka_unit_test(test_argv_first_error),
        cmocka_unit_test(test_argv_to_text),
        cmocka_unit_test(test_shell_quote_roundtrip),
        cmocka_unit_test(test_argv_text_is_a_shell_command),
        cmocka_unit_test(test_error_object),
        cmocka_unit_test(test_json_decode_ok),
        cmocka_unit_test(test_json_decode_errors),
        cmocka_unit_test(test_json_parse_strict),
        cmocka_unit_test(test_json_parse_rejects_overlong_utf8),
        cmocka_unit_test(test_json_parse_rejects_trailing_nul),
        cmocka_unit_test(test_json_partial_free),
        cmocka_unit_test(test_json_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
