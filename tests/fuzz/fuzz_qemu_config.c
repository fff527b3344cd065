/*
 * The QEMU-config JSON parser on arbitrary bytes. A config it accepts must
 * build an argv (every element set, NULL-terminated, argv[0] not empty) whose
 * shell-quoted text form splits back into exactly that argv, with nothing a
 * shell would interpret left unquoted; when the input was valid UTF-8, so is
 * every argv element and the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "sandvm/sandvm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sv_qemu_config *cfg = NULL;
    sv_error *err = NULL;
    int r = sv_qemu_config_parse((const char *)data, size, &cfg, &err);
    if (r < 0) {
        FUZZ_CHECK(cfg == NULL, "sv_qemu_config_parse failed and returned a config");
        fuzz_check_error(r, err, "sv_qemu_config_parse");
        return 0;
    }
    FUZZ_CHECK(r == 0 && cfg && !err, "sv_qemu_config_parse: r=%d", r);
    bool input_utf8 = fuzz_utf8_valid((const char *)data, size);

    char **argv = NULL;
    size_t argc = 0;
    r = sv_qemu_config_argv(cfg, &argv, &argc, &err);
    if (r < 0) {
        /* a parsed config can still be refused when built (e.g. an fd number
         * out of range): then with an error, and the text form agrees */
        FUZZ_CHECK(argv == NULL, "sv_qemu_config_argv failed and returned an argv");
        fuzz_check_error(r, err, "sv_qemu_config_argv");
        char *text = NULL;
        int r2 = sv_qemu_config_argv_text(cfg, &text, &err);
        FUZZ_CHECK(r2 == r && text == NULL, "argv failed (%d) but its text form gave %d", r, r2);
        fuzz_check_error(r2, err, "sv_qemu_config_argv_text");
        sv_qemu_config_free(cfg);
        return 0;
    }
    FUZZ_CHECK(argc > 0 && argv && argv[argc] == NULL, "argv not NULL-terminated at %zu", argc);
    for (size_t i = 0; i < argc; i++) {
        FUZZ_CHECK(argv[i] != NULL, "argv[%zu] is NULL (argc %zu)", i, argc);
        if (input_utf8)
            FUZZ_CHECK(fuzz_utf8_valid(argv[i], strlen(argv[i])),
                       "argv[%zu] is not UTF-8 though the config was: %s", i, argv[i]);
    }
    FUZZ_CHECK(argv[0][0] != '\0', "argv[0] (the QEMU binary) is empty");

    char *text = NULL;
    r = sv_qemu_config_argv_text(cfg, &text, &err);
    FUZZ_CHECK(r == 0 && text, "argv built but its text form failed: %s", sv_error_message(err));
    fuzz_check_argv_text(argv, argc, text);
    free(text);
    sv_strv_free(argv);
    sv_qemu_config_free(cfg);
    return 0;
}
