/* Unit tests: lc_status names/HTTP mapping, lc_log formats, context and rate limiting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_status.h"
#include "lc_time.h"

static void
test_status_names_round_trip(void **state)
{
    (void) state;
    for (int s = 0; s < LC_STATUS_COUNT_; s++) {
        const char *name = lc_status_name((lc_status_t) s);
        assert_non_null(name);
        assert_int_equal(lc_status_from_name(name), s);
    }
    assert_int_equal(lc_status_from_name("no-such-status"), LC_ERR_INTERNAL);
    assert_string_equal(lc_status_name((lc_status_t) 999), "internal");
}

static void
test_status_http(void **state)
{
    (void) state;
    assert_int_equal(lc_status_http(LC_OK), 200);
    assert_int_equal(lc_status_http(LC_ERR_INVALID), 400);
    assert_int_equal(lc_status_http(LC_ERR_NOT_FOUND), 404);
    assert_int_equal(lc_status_http(LC_ERR_TIMEOUT), 504);
    assert_int_equal(lc_status_http(LC_ERR_NO_RESPONDERS), 503);
    assert_int_equal(lc_status_http(LC_ERR_RATE_LIMITED), 429);
}

static lc_status_t
step(lc_status_t s, int *calls)
{
    (*calls)++;
    return s;
}

static lc_status_t
chain(lc_status_t second, int *calls)
{
    LC_TRY(step(LC_OK, calls));
    LC_TRY(step(second, calls));
    LC_TRY(step(LC_OK, calls));
    return LC_OK;
}

static void
test_try_stops_at_first_error(void **state)
{
    (void) state;
    int calls = 0;
    assert_int_equal(chain(LC_ERR_IO, &calls), LC_ERR_IO);
    assert_int_equal(calls, 2);
    calls = 0;
    assert_int_equal(chain(LC_OK, &calls), LC_OK);
    assert_int_equal(calls, 3);
}

/* Captures what the logger writes into a memory buffer. */
static char *captured;
static size_t captured_len;
static FILE *capture;

static int
capture_start(void **state)
{
    (void) state;
    capture = open_memstream(&captured, &captured_len);
    lc_log_set_output(capture);
    return 0;
}

static int
capture_stop(void **state)
{
    (void) state;
    lc_log_set_output(NULL);
    fclose(capture);
    free(captured);
    captured = NULL;
    lc_log_context_clear();
    return 0;
}

static void
test_logfmt_line_has_context_and_escapes(void **state)
{
    (void) state;
    lc_log_init("unit", LC_LOG_INFO, LC_LOG_FMT_LOGFMT);
    lc_log_context_set("req_1", "call_9");
    LC_INFO("sip", "hello \"world\"\nnext");
    fflush(capture);
    assert_non_null(strstr(captured, "level=info"));
    assert_non_null(strstr(captured, "svc=unit"));
    assert_non_null(strstr(captured, "sub=sip"));
    assert_non_null(strstr(captured, "request_id=req_1"));
    assert_non_null(strstr(captured, "call_id=call_9"));
    assert_non_null(strstr(captured, "msg=\"hello \\\"world\\\"\\nnext\""));
    /* exactly one line */
    assert_int_equal(strchr(captured, '\n') - captured, (long) captured_len - 1);
}

static void
test_json_line_and_level_filter(void **state)
{
    (void) state;
    lc_log_init("unit", LC_LOG_WARN, LC_LOG_FMT_JSON);
    LC_INFO("x", "filtered out");
    LC_ERROR("db", "tab\there");
    fflush(capture);
    assert_null(strstr(captured, "filtered out"));
    assert_non_null(strstr(captured, "{\"ts\":\""));
    assert_non_null(strstr(captured, "\"level\":\"error\""));
    assert_non_null(strstr(captured, "\"msg\":\"tab\\there\"}\n"));
}

static void
test_context_clear(void **state)
{
    (void) state;
    lc_log_init("unit", LC_LOG_INFO, LC_LOG_FMT_LOGFMT);
    lc_log_context_set("req_2", NULL);
    lc_log_context_clear();
    LC_INFO("x", "no context");
    fflush(capture);
    assert_null(strstr(captured, "request_id="));
}

static void
test_rate_limited_logging(void **state)
{
    (void) state;
    lc_log_init("unit", LC_LOG_INFO, LC_LOG_FMT_LOGFMT);
    for (int i = 0; i < 100; i++)
        LC_LOG_RL(LC_LOG_WARN, "rtp", 5, "bad packet %d", i);
    fflush(capture);
    int lines = 0;
    for (char *p = captured; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 5);
}

static void
test_ratelimit_reports_suppressed(void **state)
{
    (void) state;
    lc_log_ratelimit_t rl = {0};
    uint32_t dropped = 0;
    assert_true(lc_log_ratelimit_allow(&rl, 1, &dropped));
    assert_false(lc_log_ratelimit_allow(&rl, 1, &dropped));
    assert_false(lc_log_ratelimit_allow(&rl, 1, &dropped));
    /* open a new window by moving its start back a second */
    atomic_store(&rl.window_start_ms, lc_time_mono_ms() - 1001);
    assert_true(lc_log_ratelimit_allow(&rl, 1, &dropped));
    assert_int_equal(dropped, 2);
}

static void
test_parse_levels_and_formats(void **state)
{
    (void) state;
    lc_log_level_t l;
    lc_log_format_t f;
    assert_int_equal(lc_log_level_parse("DEBUG", &l), LC_OK);
    assert_int_equal(l, LC_LOG_DEBUG);
    assert_int_equal(lc_log_level_parse("verbose", &l), LC_ERR_INVALID);
    assert_int_equal(lc_log_format_parse("json", &f), LC_OK);
    assert_int_equal(f, LC_LOG_FMT_JSON);
    assert_int_equal(lc_log_format_parse("xml", &f), LC_ERR_INVALID);
}

static void
test_ids_are_unique_and_shaped(void **state)
{
    (void) state;
    char a[32], b[32];
    lc_id_new("req_", a, sizeof(a));
    lc_id_new("req_", b, sizeof(b));
    assert_int_equal(strlen(a), 24);
    assert_memory_equal(a, "req_", 4);
    assert_string_not_equal(a, b);
    char small[8] = "x";
    lc_id_new("req_", small, sizeof(small));
    assert_string_equal(small, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names_round_trip),
        cmocka_unit_test(test_status_http),
        cmocka_unit_test(test_try_stops_at_first_error),
        cmocka_unit_test_setup_teardown(test_logfmt_line_has_context_and_escapes, capture_start,
                                        capture_stop),
        cmocka_unit_test_setup_teardown(test_json_line_and_level_filter, capture_start,
                                        capture_stop),
        cmocka_unit_test_setup_teardown(test_context_clear, capture_start, capture_stop),
        cmocka_unit_test_setup_teardown(test_rate_limited_logging, capture_start, capture_stop),
        cmocka_unit_test(test_ratelimit_reports_suppressed),
        cmocka_unit_test(test_parse_levels_and_formats),
        cmocka_unit_test(test_ids_are_unique_and_shaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
