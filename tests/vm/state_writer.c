/*
 * The state-save path as a small program, for tests/vm/state_crash_test.sh to
 * kill at every syscall and to inject errors into (strace -e inject=...).
 *
 *   state_writer init ROOT ID          create VM ID under ROOT with state A
 *   state_writer save ROOT ID [--named] lock it and save state B; --named
 *                                       skips O_TMPFILE (the named-temp path)
 *   state_writer text A|B ID           print the exact bytes of state A or B
 *   state_writer check ROOT ID         load state.json through the library and
 *                                       compare its bytes: prints "A" or "B",
 *                                       then one line per other entry of the
 *                                       VM directory ("extra NAME")
 *   state_writer remove ROOT ID        remove the VM, then check that ROOT
 *                                       holds nothing at all (hidden included)
 *
 * save brackets sv_vm_state_save() with two write(-1, "sv-save-begin"/
 * "sv-save-end") calls (EBADF, no effect) so a trace shows where the save
 * path starts and ends. Errors: "state_writer: <message>" on stderr, exit 1
 * (exit 2 for usage).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <json-c/json.h>

#include "state.h"
#include "util/cleanup.h"
#include "util/fileio.h"

#define CREATED 1700000000

static int fail(sv_error *err)
{
    fprintf(stderr, "state_writer: %s\n", err ? sv_error_message(err) : "out of memory");
    sv_error_free(err);
    return 1;
}

/* State A: a VM just created. State B: the same VM running, with a config
 * large enough (about 64 KiB) that a torn write would show. */
static void fill(sv_vm_state *st, char which)
{
    memset(st, 0, sizeof(*st));
    st->version = SV_VM_STATE_VERSION;
    st->arch = strdup("x86_64");
    st->created = CREATED;
    st->hypervisor = strdup("qemu");
    st->config = json_object_new_object();
    json_object_object_add(st->config, "arch", json_object_new_string("x86_64"));
    if (which == 'A') {
        st->state = SV_VM_CREATED;
        json_object_object_add(st->config, "kernel", json_object_new_string("/boot/vmlinuz-a"));
        return;
    }
    st->state = SV_VM_RUNNING;
    st->qemu.pid = 4242;
    st->qemu.start_time = 987654;
    json_object_object_add(st->config, "kernel", json_object_new_string("/boot/vmlinuz-b"));
    json_object *params = json_object_new_array();
    for (int i = 0; i < 1024; i++) {
        char word[64];
        snprintf(word, sizeof(word), "sandvm.param%04d=%040d", i, i);
        json_object_array_add(params, json_object_new_string(word));
    }
    json_object_object_add(st->config, "extra", params);
}

static char *text_of(char which, const char *id)
{
    sv_vm_state st;
    fill(&st, which);
    char *text = NULL;
    sv_error *err = NULL;
    if (sv_vm_state_format(&st, id, &text, &err) < 0) {
        fail(err);
        exit(1);
    }
    sv_vm_state_clear(&st);
    return text;
}

static void marker(const char *what)
{
    /* a syscall that does nothing but shows in a trace */
    (void)!syscall(SYS_write, -1, what, strlen(what));
}

static int cmd_init(const char *rootpath, const char *id)
{
    _cleanup_state_root_ sv_state_root *root = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    sv_error *err = NULL;
    sv_vm_state st;
    fill(&st, 'A');
    st.id = strdup(id);
    int r = sv_state_root_open(rootpath, &root, &err);
    if (r >= 0)
        r = sv_state_dir_create(root, &st, &d, &err);
    sv_vm_state_clear(&st);
    return r < 0 ? fail(err) : 0;
}

static int cmd_save(const char *rootpath, const char *id, bool named)
{
    _cleanup_state_root_ sv_state_root *root = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    sv_error *err = NULL;
    if (sv_state_root_open(rootpath, &root, &err) < 0 ||
        sv_state_dir_open(root, id, &d, &err) < 0 || sv_state_dir_lock(d, 0, &err) < 0)
        return fail(err);
    sv_fileio_hooks.no_tmpfile = named;
    sv_vm_state st;
    fill(&st, 'B');
    marker("sv-save-begin");
    int r = sv_vm_state_save(d, &st, &err);
    marker("sv-save-end");
    sv_vm_state_clear(&st);
    return r < 0 ? fail(err) : 0;
}

static int cmd_check(const char *rootpath, const char *id)
{
    _cleanup_state_root_ sv_state_root *root = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    _cleanup_vm_state_ sv_vm_state *st = NULL;
    _cleanup_free_ char *a = text_of('A', id), *b = text_of('B', id), *bytes = NULL;
    sv_error *err = NULL;
    size_t len = 0;
    if (sv_state_root_open(rootpath, &root, &err) < 0 ||
        sv_state_dir_open(root, id, &d, &err) < 0 || sv_vm_state_load(d, &st, &err) < 0 ||
        sv_read_file_at(sv_state_dir_fd(d), SV_STATE_FILE, SV_STATE_MAX_BYTES, &bytes, &len, &err) <
            0)
        return fail(err);
    if (len == strlen(a) && memcmp(bytes, a, len) == 0)
        printf("A\n");
    else if (len == strlen(b) && memcmp(bytes, b, len) == 0)
        printf("B\n");
    else {
        fprintf(stderr, "state_writer: state.json (%zu bytes) is neither A (%zu) nor B (%zu)\n",
                len, strlen(a), strlen(b));
        return 1;
    }
    DIR *dir = opendir(sv_state_dir_path(d));
    if (!dir)
        return fail(NULL);
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, SV_STATE_FILE) &&
            strcmp(e->d_name, SV_STATE_LOCK_FILE))
            printf("extra %s\n", e->d_name);
    closedir(dir);
    return 0;
}

static int cmd_remove(const char *rootpath, const char *id)
{
    _cleanup_state_root_ sv_state_root *root = NULL;
    _cleanup_state_dir_ sv_state_dir *d = NULL;
    sv_error *err = NULL;
    if (sv_state_root_open(rootpath, &root, &err) < 0 ||
        sv_state_dir_open(root, id, &d, &err) < 0 || sv_state_dir_lock(d, 0, &err) < 0 ||
        sv_state_dir_remove(d, &err) < 0)
        return fail(err);
    DIR *dir = opendir(rootpath);
    if (!dir)
        return fail(NULL);
    int left = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            fprintf(stderr, "state_writer: %s still holds %s\n", rootpath, e->d_name);
            left++;
        }
    closedir(dir);
    return left ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "text") && (!strcmp(argv[2], "A") || !strcmp(argv[2], "B"))) {
        _cleanup_free_ char *t = text_of(argv[2][0], argv[3]);
        fputs(t, stdout);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "init"))
        return cmd_init(argv[2], argv[3]);
    if ((argc == 4 || (argc == 5 && !strcmp(argv[4], "--named"))) && !strcmp(argv[1], "save"))
        return cmd_save(argv[2], argv[3], argc == 5);
    if (argc == 4 && !strcmp(argv[1], "check"))
        return cmd_check(argv[2], argv[3]);
    if (argc == 4 && !strcmp(argv[1], "remove"))
        return cmd_remove(argv[2], argv[3]);
    fprintf(stderr, "usage: state_writer init|save|check|remove ROOT ID [--named] | text A|B ID\n");
    return 2;
}
