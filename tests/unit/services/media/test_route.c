/* Unit tests: md_route (the dialled-number cache; lookups over NATS are in
 * tests/system/test_media_routing.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../libcommon/lc_time.h"
#include "../../../../services/media/md_route.h"

static void
test_number_ok(void **state)
{
    (void) state;
    assert_true(md_route_number_ok("+15551234567"));
    assert_true(md_route_number_ok("demo"));
    assert_true(md_route_number_ok("a.b-c_d*#"));
    assert_false(md_route_number_ok(""));
    assert_false(md_route_number_ok(NULL));
    assert_false(md_route_number_ok("has space"));
    assert_false(md_route_number_ok("x>y"));
    assert_false(md_route_number_ok("%41"));
    char longest[MD_ROUTE_NUMBER_MAX + 2];
    memset(longest, '1', sizeof(longest));
    longest[MD_ROUTE_NUMBER_MAX] = '\0';
    assert_true(md_route_number_ok(longest));
    longest[MD_ROUTE_NUMBER_MAX] = '1';
    longest[MD_ROUTE_NUMBER_MAX + 1] = '\0';
    assert_false(md_route_number_ok(longest));
}

static void
test_copy_and_clear(void **state)
{
    (void) state;
    md_route_t a = {
        .org_id = "org_1", .number_id = "pn_1", .agent_id = "agt_1", .agent_version = 3};
    a.agent_json = strdup("{\"name\":\"x\"}");
    md_route_t b;
    md_route_copy(&b, &a);
    assert_string_equal(b.org_id, "org_1");
    assert_int_equal(b.agent_version, 3);
    assert_ptr_not_equal(b.agent_json, a.agent_json);
    assert_string_equal(b.agent_json, a.agent_json);
    md_route_clear(&a);
    assert_null(a.agent_json);
    assert_string_equal(a.org_id, "");
    md_route_clear(&b);
}

static void
test_cache_none_expiry_and_bound(void **state)
{
    (void) state;
    lc_metrics_t *m = lc_metrics_create(64);
    md_router_t *r = md_router_create(NULL, m, 1000, 10000);
    md_route_t out;
    int64_t now = lc_time_mono_ms();
    assert_int_equal(md_router_cached(r, "demo", now, &out), MD_ROUTE_MISS);
    md_router_remember_none(r, "demo");
    assert_int_equal(md_router_cached(r, "demo", lc_time_mono_ms(), &out), MD_ROUTE_NONE);
    /* expired after the TTL: asked again */
    assert_int_equal(md_router_cached(r, "demo", lc_time_mono_ms() + 10001, &out), MD_ROUTE_MISS);
    assert_int_equal(md_router_cached(r, "demo", lc_time_mono_ms(), &out), MD_ROUTE_MISS);
    /* bad numbers are never stored */
    md_router_remember_none(r, "bad number");
    assert_int_equal(md_router_cached(r, "bad number", lc_time_mono_ms(), &out), MD_ROUTE_MISS);
    /* bounded: past MD_ROUTE_CACHE_MAX live entries a new number is not cached */
    char num[32];
    for (int i = 0; i < MD_ROUTE_CACHE_MAX; i++) {
        snprintf(num, sizeof(num), "n%d", i);
        md_router_remember_none(r, num);
    }
    md_router_remember_none(r, "one-too-many");
    assert_int_equal(md_router_cached(r, "one-too-many", lc_time_mono_ms(), &out), MD_ROUTE_MISS);
    assert_int_equal(md_router_cached(r, "n0", lc_time_mono_ms(), &out), MD_ROUTE_NONE);
    md_router_destroy(r);
    /* no TTL: nothing is cached */
    r = md_router_create(NULL, m, 1000, 0);
    md_router_remember_none(r, "demo");
    assert_int_equal(md_router_cached(r, "demo", lc_time_mono_ms(), &out), MD_ROUTE_MISS);
    md_router_destroy(r);
    md_router_destroy(NULL);
    lc_metrics_destroy(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_ok),
        cmocka_unit_test(test_copy_and_clear),
        cmocka_unit_test(test_cache_none_expiry_and_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
