/*
 * Retry rules: the schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), the
 * scale factor and jitter bounds, which statuses succeed, 410, Retry-After on 429/503 only,
 * and Retry-After parsing (delay-seconds and HTTP-date).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../../../services/webhooks/wh_retry.h"

static void
test_schedule(void **state)
{
    (void) state;
    const int64_t want[] = {0, 5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000};
    for (int a = 1; a <= WH_MAX_ATTEMPTS; a++)
        assert_int_equal(wh_retry_base_delay_ms(a), want[a - 1]);
    assert_int_equal(wh_retry_base_delay_ms(0), -1);
    assert_int_equal(wh_retry_base_delay_ms(9), -1);
    /* the delay after attempt k is the base of attempt k + 1, jittered into [0.8, 1.2) */
    for (int done = 1; done < WH_MAX_ATTEMPTS; done++) {
        int64_t base = want[done];
        assert_int_equal(wh_retry_delay_ms(done, 1.0, 0.5), base);
        assert_int_equal(wh_retry_delay_ms(done, 1.0, 0.0), (int64_t) (base * 0.8));
        int64_t hi = wh_retry_delay_ms(done, 1.0, 0.999999);
        assert_true(hi < (int64_t) (base * 1.2) + 1 && hi > base);
        /* out-of-range units are clamped */
        assert_int_equal(wh_retry_delay_ms(done, 1.0, -3), (int64_t) (base * 0.8));
        assert_true(wh_retry_delay_ms(done, 1.0, 7) <= (int64_t) (base * 1.2));
        /* the scale applies to the whole schedule */
        assert_int_equal(wh_retry_delay_ms(done, 0.001, 0.5), base / 1000);
    }
    assert_int_equal(wh_retry_delay_ms(WH_MAX_ATTEMPTS, 1.0, 0.5), -1);
    /* total of the schedule at scale 1 is 27 h 35 min 5 s */
    int64_t total = 0;
    for (int done = 1; done < WH_MAX_ATTEMPTS; done++)
        total += wh_retry_delay_ms(done, 1.0, 0.5);
    assert_int_equal(total, ((27 * 60 + 35) * 60 + 5) * 1000LL);
}

static void
test_decide(void **state)
{
    (void) state;
    int64_t d;
    /* only 2xx succeeds */
    for (int s = 200; s <= 299; s += 33)
        assert_int_equal(wh_retry_decide(1, s, -1, 1.0, 0.5, &d), WH_OUTCOME_SUCCEEDED);
    assert_int_equal(wh_retry_decide(1, 299, -1, 1.0, 0.5, &d), WH_OUTCOME_SUCCEEDED);
    int retry[] = {0, 100, 199, 300, 301, 302, 304, 307, 308, 400, 401, 404, 429, 500, 502, 503};
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
        assert_int_equal(wh_retry_decide(1, retry[i], -1, 1.0, 0.5, &d), WH_OUTCOME_RETRY);
        assert_int_equal(d, 5000);
    }
    /* 410 gives up at once, whatever the attempt */
    assert_int_equal(wh_retry_decide(1, 410, -1, 1.0, 0.5, &d), WH_OUTCOME_GONE);
    assert_int_equal(wh_retry_decide(8, 410, -1, 1.0, 0.5, &d), WH_OUTCOME_GONE);
    /* the 8th failure is the last */
    assert_int_equal(wh_retry_decide(7, 500, -1, 1.0, 0.5, &d), WH_OUTCOME_RETRY);
    assert_int_equal(d, 36000000);
    assert_int_equal(wh_retry_decide(8, 500, -1, 1.0, 0.5, &d), WH_OUTCOME_FAILED);
    assert_int_equal(wh_retry_decide(9, 0, -1, 1.0, 0.5, &d), WH_OUTCOME_FAILED);
    assert_int_equal(wh_retry_decide(8, 200, -1, 1.0, 0.5, &d), WH_OUTCOME_SUCCEEDED);

    /* Retry-After: honoured on 429 and 503 when longer than the schedule, not scaled */
    assert_int_equal(wh_retry_decide(1, 429, 60000, 0.001, 0.5, &d), WH_OUTCOME_RETRY);
    assert_int_equal(d, 60000);
    assert_int_equal(wh_retry_decide(1, 503, 2000, 0.001, 0.5, &d), WH_OUTCOME_RETRY);
    assert_int_equal(d, 2000);
    assert_int_equal(wh_retry_decide(3, 429, 1000, 1.0, 0.5, &d), WH_OUTCOME_RETRY);
    assert_int_equal(d, 1800000); /* the schedule is longer */
    assert_int_equal(wh_retry_decide(1, 500, 60000, 1.0, 0.5, &d), WH_OUTCOME_RETRY);
    assert_int_equal(d, 5000); /* ignored on 500 */
    assert_int_equal(wh_retry_decide(8, 429, 1000, 1.0, 0.5, &d), WH_OUTCOME_FAILED);
}

static void
test_retry_after_parse(void **state)
{
    (void) state;
    int64_t now = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(wh_retry_after_parse_ms("120", now), 120000);
    assert_int_equal(wh_retry_after_parse_ms(" 0 ", now), 0);
    assert_int_equal(wh_retry_after_parse_ms("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
    assert_int_equal(wh_retry_after_parse_ms("Sun, 06 Nov 1994 08:50:37 GMT", now), 60000);
    assert_int_equal(wh_retry_after_parse_ms("Sun, 06 Nov 1994 07:49:37 GMT", now), 0); /* past */
    assert_int_equal(wh_retry_after_parse_ms("99999999999", now), WH_RETRY_AFTER_MAX_MS);
    assert_int_equal(wh_retry_after_parse_ms("Fri, 31 Dec 2100 00:00:00 GMT", now),
                     WH_RETRY_AFTER_MAX_MS);
    assert_int_equal(wh_retry_after_parse_ms(NULL, now), -1);
    assert_int_equal(wh_retry_after_parse_ms("", now), -1);
    assert_int_equal(wh_retry_after_parse_ms("soon", now), -1);
    assert_int_equal(wh_retry_after_parse_ms("12abc", now), -1);
    assert_int_equal(wh_retry_after_parse_ms("-5", now), -1);
    assert_int_equal(wh_retry_after_parse_ms("Sun, 06 Nov 1994 08:49:37 GMT junk", now), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_retry_after_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
