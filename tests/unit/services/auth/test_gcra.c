/* Unit tests: GCRA arithmetic (burst, refill, partial takes, header values, lease size). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../../services/auth/au_gcra.h"

#define MS 1000LL
#define S 1000000LL

static void
test_parameters(void **state)
{
    (void) state;
    au_gcra_t g;
    au_gcra_init(&g, 600, 60000, 0);
    assert_int_equal(g.interval_us, 100 * MS);
    assert_int_equal(g.burst, 600);
    assert_int_equal(g.tolerance_us, 60 * S);
    au_gcra_init(&g, 120, 60000, 10);
    assert_int_equal(g.interval_us, 500 * MS);
    assert_int_equal(g.tolerance_us, 5 * S);
    /* nonsense is clamped, never a division by zero */
    au_gcra_init(&g, 0, 0, -5);
    assert_int_equal(g.limit, 1);
    assert_true(g.interval_us >= 1);
    au_gcra_init(&g, 5, 60000, 50); /* burst above the limit -> the limit */
    assert_int_equal(g.burst, 5);
}

static void
test_burst_then_refill(void **state)
{
    (void) state;
    au_gcra_t g;
    au_gcra_init(&g, 600, 60000, 0);
    int64_t now = 1000 * S, tat = 0;
    /* a full bucket lets the whole burst through at once, and not one more */
    assert_int_equal(au_gcra_take(&g, &tat, now, 600), 600);
    assert_int_equal(tat, now + 60 * S);
    assert_int_equal(au_gcra_take(&g, &tat, now, 1), 0);
    assert_int_equal(au_gcra_take(&g, &tat, now + 99 * MS, 1), 0);
    /* one emission interval later, exactly one more */
    assert_int_equal(au_gcra_take(&g, &tat, now + 100 * MS, 5), 1);
    assert_int_equal(au_gcra_take(&g, &tat, now + 100 * MS, 1), 0);
    /* after a full window idle the bucket is full again: a burst, not more */
    assert_int_equal(au_gcra_take(&g, &tat, now + 200 * S, 1000), 600);
}

static void
test_partial_take(void **state)
{
    (void) state;
    au_gcra_t g;
    au_gcra_init(&g, 60, 60000, 0);
    int64_t now = 50 * S, tat = 0;
    assert_int_equal(au_gcra_take(&g, &tat, now, 57), 57);
    assert_int_equal(au_gcra_take(&g, &tat, now, 10), 3); /* only 3 fit */
    assert_int_equal(au_gcra_take(&g, &tat, now, 10), 0);
}

static void
test_header_values(void **state)
{
    (void) state;
    au_gcra_t g;
    au_gcra_init(&g, 600, 60000, 0);
    int64_t now = 7 * S, tat = 0;
    assert_int_equal(au_gcra_remaining(&g, tat - now), 600);
    assert_int_equal(au_gcra_reset_us(&g, tat - now), 0);
    assert_int_equal(au_gcra_retry_after_us(&g, tat - now), 0);
    au_gcra_take(&g, &tat, now, 100);
    assert_int_equal(au_gcra_remaining(&g, tat - now), 500);
    assert_int_equal(au_gcra_reset_us(&g, tat - now), 10 * S);
    assert_int_equal(au_gcra_retry_after_us(&g, tat - now), 0);
    au_gcra_take(&g, &tat, now, 500);
    assert_int_equal(au_gcra_remaining(&g, tat - now), 0);
    assert_int_equal(au_gcra_reset_us(&g, tat - now), 60 * S);
    assert_int_equal(au_gcra_retry_after_us(&g, tat - now), 100 * MS);
    assert_int_equal(au_gcra_ceil_s(100 * MS), 1);
    assert_int_equal(au_gcra_ceil_s(0), 0);
    assert_int_equal(au_gcra_ceil_s(2 * S), 2);
    assert_int_equal(au_gcra_ceil_s(2 * S + 1), 3);
    /* the retry-after is exact: waiting it makes one request conform */
    int64_t wait = au_gcra_retry_after_us(&g, tat - now);
    assert_int_equal(au_gcra_take(&g, &tat, now + wait - 1, 1), 0);
    assert_int_equal(au_gcra_take(&g, &tat, now + wait, 1), 1);
}

static void
test_sustained_rate(void **state)
{
    (void) state;
    /* Requests every 10 ms for 60 s against 600/min with burst 600: the burst plus one
     * request per 100 ms gets through, i.e. 600 + 600 (the last window's request at the
     * very end included). */
    au_gcra_t g;
    au_gcra_init(&g, 600, 60000, 0);
    int64_t tat = 0, admitted = 0, start = 3 * S;
    for (int64_t t = start; t <= start + 60 * S; t += 10 * MS)
        admitted += au_gcra_take(&g, &tat, t, 1);
    assert_true(admitted >= 1200 && admitted <= 1201);
}

static void
test_leased_instances_stay_within_bounds(void **state)
{
    (void) state;
    /* Two instances leasing from one shared bucket (the database's role) and spending
     * locally, requests alternating between them, leases expiring after 1 s with refunds:
     * admitted never exceeds what one bucket allows and falls short by at most the tokens
     * the instances hold unspent at the end (2 leases). */
    au_gcra_t g;
    au_gcra_init(&g, 1200, 60000, 0);
    int64_t lease = au_gcra_lease_max(&g);
    assert_int_equal(lease, 24);
    int64_t shared_tat = 0, single_tat = 0;
    int64_t tokens[2] = {0, 0}, expires[2] = {0, 0};
    int64_t admitted = 0, single = 0, start = 100 * S;
    int i = 0;
    for (int64_t t = start; t <= start + 20 * S; t += 5 * MS, i ^= 1) {
        single += au_gcra_take(&g, &single_tat, t, 1);
        if (tokens[i] > 0 && t >= expires[i]) { /* refund what expired unspent */
            shared_tat -= tokens[i] * g.interval_us;
            if (shared_tat < t)
                shared_tat = t;
            tokens[i] = 0;
        }
        if (tokens[i] == 0) {
            tokens[i] = au_gcra_take(&g, &shared_tat, t, lease);
            expires[i] = t + 1 * S;
        }
        if (tokens[i] > 0) {
            tokens[i]--;
            admitted++;
        }
    }
    assert_true(admitted <= single);
    assert_true(admitted >= single - 2 * lease);
}

static void
test_lease_size(void **state)
{
    (void) state;
    au_gcra_t g;
    au_gcra_init(&g, 60, 60000, 0);
    assert_int_equal(au_gcra_lease_max(&g), 1);
    au_gcra_init(&g, 600, 60000, 0);
    assert_int_equal(au_gcra_lease_max(&g), 12);
    au_gcra_init(&g, 100000, 60000, 0);
    assert_int_equal(au_gcra_lease_max(&g), 2000);
    au_gcra_init(&g, 100000, 60000, 5); /* never more than the burst */
    assert_int_equal(au_gcra_lease_max(&g), 5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parameters),
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_partial_take),
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_sustained_rate),
        cmocka_unit_test(test_leased_instances_stay_within_bounds),
        cmocka_unit_test(test_lease_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
