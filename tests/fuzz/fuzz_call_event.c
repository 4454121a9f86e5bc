/*
 * Fuzz target: rg_call_event_check, the registry's check of every call event it takes from
 * JetStream (untrusted bus input), and rg_js_stream_seq on the same bytes as an ack subject.
 *
 *   libFuzzer: clang -fsanitize=fuzzer,address ... (make fuzz)
 *   replay:    the same file linked with replay_main.c runs the saved corpus in make test
 *
 * The registry's sources are included (h2o's unit-test habit): fuzz targets link only
 * libcommon.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/registry/calls_validate.c"
#include "../../services/registry/errors.c"
#include "../../services/registry/json_util.c"
#include "../../services/registry/number_validate.c"
#include "../../services/registry/schema.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[160];
    json_t *ev = rg_call_event_check(data, size, why, sizeof(why));
    if (ev != NULL) {
        /* touch what the consumer reads */
        (void) json_string_value(json_object_get(ev, "type"));
        json_decref(ev);
    }
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    (void) rg_js_stream_seq(text);
    (void) rg_rfc3339_valid(text);
    (void) rg_call_to_valid(text);
    free(text);
    return 0;
}
