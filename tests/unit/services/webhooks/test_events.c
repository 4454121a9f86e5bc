/*
 * Input from outside the service: events from the stream (shape, ids, types, timestamps)
 * and response bodies kept for the deliveries log (valid UTF-8, no NUL, bounded).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../../../services/webhooks/wh_events.h"
#include "../../../../services/webhooks/wh_model.h"

static void
test_event_parse(void **state)
{
    (void) state;
    const char *good = "{\"id\":\"evt_0123456789abcdef0123\",\"type\":\"call.recording.ready\","
                       "\"created_at\":\"2026-11-22T03:30:00.123Z\",\"org_id\":\"org_1\","
                       "\"data\":{\"k\":1},\"extra\":true}";
    wh_event_t ev;
    char why[128];
    assert_int_equal(wh_event_parse(good, strlen(good), &ev, why, sizeof(why)), LC_OK);
    assert_string_equal(ev.id, "evt_0123456789abcdef0123");
    assert_string_equal(ev.type, "call.recording.ready");
    assert_string_equal(ev.org_id, "org_1");
    json_decref(ev.root);

    const char *bad[] = {
        "",
        "[]",
        "{\"id\":\"e\",\"type\":\"t\",\"created_at\":\"2026-11-22T03:30:00Z\",\"org_id\":\"o\"}",
        "{\"id\":\"e v\",\"type\":\"t\",\"created_at\":\"2026-11-22T03:30:00Z\",\"org_id\":\"o\","
        "\"data\":{}}",
        "{\"id\":\"e\",\"type\":\"Call.Ended\",\"created_at\":\"2026-11-22T03:30:00Z\","
        "\"org_id\":\"o\",\"data\":{}}",
        "{\"id\":\"e\",\"type\":\"call..ended\",\"created_at\":\"2026-11-22T03:30:00Z\","
        "\"org_id\":\"o\",\"data\":{}}",
        "{\"id\":\"e\",\"type\":\"t\",\"created_at\":\"yesterday\",\"org_id\":\"o\",\"data\":{}}",
        "{\"id\":\"e\",\"type\":\"t\",\"created_at\":\"2026-11-22T03:30:00Z\",\"org_id\":\"o.x\","
        "\"data\":{}}",
        "{\"id\":\"e\",\"id\":\"f\",\"type\":\"t\",\"created_at\":\"2026-11-22T03:30:00Z\","
        "\"org_id\":\"o\",\"data\":{}}",
        "{not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(wh_event_parse(bad[i], strlen(bad[i]), &ev, why, sizeof(why)),
                         LC_ERR_INVALID);
        assert_null(ev.root);
    }
    /* ids and types are bounded */
    char long_id[WH_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_false(wh_id_valid(long_id));
    long_id[WH_ID_MAX] = '\0';
    assert_true(wh_id_valid(long_id));
    assert_true(wh_event_type_valid("agent.created"));
    assert_false(wh_event_type_valid("agent."));
    assert_false(wh_event_type_valid(".agent"));
    assert_false(wh_event_type_valid("agent.*"));
}

static void
test_rfc3339(void **state)
{
    (void) state;
    assert_int_equal(wh_rfc3339_parse_ms("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(wh_rfc3339_parse_ms("1970-01-01T00:00:01.5Z"), 1500);
    assert_int_equal(wh_rfc3339_parse_ms("1970-01-01T01:00:00.123+01:00"), 123);
    assert_int_equal(wh_rfc3339_parse_ms("2026-11-22T03:30:00.123Z"), 1795318200123LL);
    assert_int_equal(wh_rfc3339_parse_ms("2026-11-22T03:30:00"), -1);
    assert_int_equal(wh_rfc3339_parse_ms("2026-11-22T03:30:00.Z"), -1);
    assert_int_equal(wh_rfc3339_parse_ms("2026-11-22T03:30:00Zjunk"), -1);
}

static void
test_safe_text(void **state)
{
    (void) state;
    char out[64];
    assert_int_equal(wh_model_safe_text("ok \xc3\xa9\n", 6, out, sizeof(out)), 6);
    assert_string_equal(out, "ok \xc3\xa9\n");
    /* NUL, control bytes, invalid and overlong sequences, surrogates become '?' */
    wh_model_safe_text("a\0b\x01\xff\xc0\xaf\xed\xa0\x80z", 11, out, sizeof(out));
    assert_string_equal(out, "a?b???????z");
    /* a sequence cut at the end of what was kept is dropped */
    wh_model_safe_text("ab\xe2\x82", 4, out, sizeof(out));
    assert_string_equal(out, "ab");
    /* never past the output */
    char small[4];
    wh_model_safe_text("abcdef", 6, small, sizeof(small));
    assert_string_equal(small, "abc");
    wh_model_safe_text("a\xe2\x82\xac", 4, small, sizeof(small)); /* euro sign does not fit */
    assert_string_equal(small, "a");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_parse),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_safe_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
