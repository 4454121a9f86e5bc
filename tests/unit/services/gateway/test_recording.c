/*
 * gw_recording: the registry's recording locator, which names a NATS subject token and a
 * path that travel on to a media worker: nothing malformed may pass.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/gateway/gw_recording.h"

static lc_status_t
parse(const char *json, gw_recording_locator_t *out)
{
    return gw_recording_locator_parse(json, strlen(json), out);
}

static void
test_locator_ok(void **state)
{
    (void) state;
    gw_recording_locator_t loc;
    assert_int_equal(parse("{\"worker_id\":\"media-7_a\",\"recording_path\":\"/var/rec/c1.wav\","
                           "\"size_bytes\":48044}",
                           &loc),
                     LC_OK);
    assert_string_equal(loc.worker_id, "media-7_a");
    assert_string_equal(loc.path, "/var/rec/c1.wav");
    assert_int_equal(loc.size_bytes, 48044);
    /* extra fields are tolerated, size 0 is a valid (empty) file */
    assert_int_equal(parse("{\"worker_id\":\"w\",\"recording_path\":\"r.wav\",\"size_bytes\":0,"
                           "\"object\":\"recording\"}",
                           &loc),
                     LC_OK);
    assert_int_equal(loc.size_bytes, 0);
}

static void
test_locator_rejected(void **state)
{
    (void) state;
    gw_recording_locator_t loc;
    const char *bad[] = {
        "",
        "[]",
        "{}",
        "not json",
        "{\"worker_id\":\"w\",\"recording_path\":\"p\"}",
        "{\"worker_id\":\"w\",\"recording_path\":\"p\",\"size_bytes\":-1}",
        "{\"worker_id\":\"w\",\"recording_path\":\"p\",\"size_bytes\":\"5\"}",
        "{\"worker_id\":\"w\",\"recording_path\":\"p\",\"size_bytes\":1.5}",
        "{\"worker_id\":\"\",\"recording_path\":\"p\",\"size_bytes\":1}",
        "{\"worker_id\":\"w\",\"recording_path\":\"\",\"size_bytes\":1}",
        "{\"worker_id\":7,\"recording_path\":\"p\",\"size_bytes\":1}",
        /* subject injection: wildcards, token separators, spaces */
        "{\"worker_id\":\"a.b\",\"recording_path\":\"p\",\"size_bytes\":1}",
        "{\"worker_id\":\"*\",\"recording_path\":\"p\",\"size_bytes\":1}",
        "{\"worker_id\":\">\",\"recording_path\":\"p\",\"size_bytes\":1}",
        "{\"worker_id\":\"a b\",\"recording_path\":\"p\",\"size_bytes\":1}",
        "{\"worker_id\":\"a\\u0000b\",\"recording_path\":\"p\",\"size_bytes\":1}",
        /* a NUL inside the path */
        "{\"worker_id\":\"w\",\"recording_path\":\"a\\u0000b\",\"size_bytes\":1}",
        "{\"worker_id\":\"w\",\"worker_id\":\"v\",\"recording_path\":\"p\",\"size_bytes\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &loc) != LC_ERR_PROTOCOL)
            fail_msg("accepted: %s", bad[i]);
    }
    assert_int_equal(gw_recording_locator_parse(NULL, 0, &loc), LC_ERR_PROTOCOL);
    /* bounds: a worker id of 79 characters passes, 80 does not */
    char json[6000];
    char id[90];
    memset(id, 'w', 80);
    id[80] = '\0';
    snprintf(json, sizeof(json), "{\"worker_id\":\"%s\",\"recording_path\":\"p\",\"size_bytes\":1}",
             id);
    assert_int_equal(parse(json, &loc), LC_ERR_PROTOCOL);
    id[79] = '\0';
    snprintf(json, sizeof(json), "{\"worker_id\":\"%s\",\"recording_path\":\"p\",\"size_bytes\":1}",
             id);
    assert_int_equal(parse(json, &loc), LC_OK);
    char path[GW_RECORDING_PATH_MAX + 2];
    memset(path, 'p', GW_RECORDING_PATH_MAX + 1);
    path[GW_RECORDING_PATH_MAX + 1] = '\0';
    snprintf(json, sizeof(json), "{\"worker_id\":\"w\",\"recording_path\":\"%s\",\"size_bytes\":1}",
             path);
    assert_int_equal(parse(json, &loc), LC_ERR_PROTOCOL);
    path[GW_RECORDING_PATH_MAX] = '\0';
    snprintf(json, sizeof(json), "{\"worker_id\":\"w\",\"recording_path\":\"%s\",\"size_bytes\":1}",
             path);
    assert_int_equal(parse(json, &loc), LC_OK);
    assert_int_equal(strlen(loc.path), GW_RECORDING_PATH_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locator_ok),
        cmocka_unit_test(test_locator_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
