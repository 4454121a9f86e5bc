/*
 * Module tests of the shared rate limiter against a real PostgreSQL ($VOXI_TEST_PG_DSN,
 * from scripts/testenv.sh): two limiter instances, each with its own pool, share one
 * database as two auth processes do. Every test gets a new database with auth's migration
 * (migrations/0001 and 0002, read from the repository: run from its root, as unit.sh does).
 * Waits are for events (callbacks, query results); a guard timer turns a hang into a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/auth/au_ratelimit.h"
#include "lc_log.h"
#include "lc_metrics.h"
#include "lc_time.h"

#define GUARD_MS 30000

typedef struct {
    uv_loop_t loop;
    uv_timer_t guard;
    bool guard_fired;
    char dbname[40];
    char *dsn;
    lc_pg_pool_t *pool[2];
    lc_metrics_t *metrics[2];
    au_ratelimit_t *rl[2];
    int closed;
} fx_t;

/* One check's outcome. */
typedef struct {
    bool done;
    lc_status_t status;
    au_rl_decision_t d;
} outcome_t;

/* ---- database ---- */

static char *
dsn_with_db(const char *base, const char *dbname)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &err);
    assert_non_null(opts);
    char *out = calloc(1, 4096);
    size_t len = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && strcmp(o->keyword, "dbname") != 0)
            len += (size_t) snprintf(out + len, 4096 - len, "%s='%s' ", o->keyword, o->val);
    snprintf(out + len, 4096 - len, "dbname='%s'", dbname);
    PQconninfoFree(opts);
    return out;
}

static void
sync_exec(const char *dsn, const char *sql)
{
    PGconn *conn = PQconnectdb(dsn);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s\n", PQresultErrorMessage(res));
    assert_true(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
    PQclear(res);
    PQfinish(conn);
}

/* The bucket's debt (tat - now) in ms as the database sees it; -1 when there is no row. */
static long long
db_debt_ms(fx_t *fx, const char *bucket)
{
    PGconn *conn = PQconnectdb(fx->dsn);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    const char *params[] = {bucket};
    PGresult *res = PQexecParams(conn,
                                 "SELECT (extract(epoch FROM tat - now()) * 1000)::bigint"
                                 " FROM rate_limit_buckets WHERE bucket = $1",
                                 1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    long long v = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    PQfinish(conn);
    return v;
}

static void
apply_file(const char *dsn, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s not found: run from the repository root\n", path);
        fail();
    }
    static char sql[1 << 16];
    size_t n = fread(sql, 1, sizeof(sql) - 1, f);
    fclose(f);
    sql[n] = '\0';
    sync_exec(dsn, sql);
}

/* ---- loop ---- */

static void
on_guard(uv_timer_t *t)
{
    ((fx_t *) t->data)->guard_fired = true;
}

static void
run_until(fx_t *fx, bool *flag)
{
    while (!*flag && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_false(fx->guard_fired);
}

static void
on_decision(lc_status_t status, const au_rl_decision_t *d, void *arg)
{
    outcome_t *o = arg;
    assert_false(o->done);
    o->done = true;
    o->status = status;
    if (d)
        o->d = *d;
}

/* One check on instance i, waited for. */
static outcome_t
check(fx_t *fx, int i, const char *bucket, int64_t limit)
{
    outcome_t o = {0};
    bool decided = false;
    assert_int_equal(au_ratelimit_check(fx->rl[i], bucket, limit, &o.d, &decided, on_decision, &o),
                     LC_OK);
    if (decided)
        o.done = true;
    else
        run_until(fx, &o.done);
    assert_int_equal(o.status, LC_OK);
    return o;
}

static double
counter(fx_t *fx, int i, const char *name, const char *labels)
{
    return lc_metric_value(lc_metrics_counter(fx->metrics[i], name, "", labels));
}

static int
setup_ttl(void **state, int64_t lease_ttl_ms)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    const char *base = getenv("VOXI_TEST_PG_DSN");
    if (base == NULL || *base == '\0') {
        fprintf(stderr, "VOXI_TEST_PG_DSN is not set: run through scripts/testenv.sh\n");
        return -1;
    }
    lc_id_new("voxi_rl_", fx->dbname, sizeof(fx->dbname));
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", fx->dbname);
    sync_exec(base, sql);
    fx->dsn = dsn_with_db(base, fx->dbname);
    apply_file(fx->dsn, "migrations/0001_orgs.sql");
    apply_file(fx->dsn, "migrations/0002_auth.sql");

    uv_loop_init(&fx->loop);
    uv_timer_init(&fx->loop, &fx->guard);
    fx->guard.data = fx;
    uv_timer_start(&fx->guard, on_guard, GUARD_MS, 0);
    uv_unref((uv_handle_t *) &fx->guard);
    au_rl_opts_t opts = {.lease_ttl_ms = lease_ttl_ms};
    for (int i = 0; i < 2; i++) {
        fx->metrics[i] = lc_metrics_create(0);
        assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 2, &fx->pool[i]), LC_OK);
        assert_int_equal(
            au_ratelimit_create(&fx->loop, fx->pool[i], fx->metrics[i], &opts, &fx->rl[i]), LC_OK);
    }
    *state = fx;
    return 0;
}

static int
setup(void **state)
{
    return setup_ttl(state, 1000);
}

/* leases that cannot expire during a test, however slow the machine */
static int
setup_long_lease(void **state)
{
    return setup_ttl(state, 60000);
}

static int
setup_short_lease(void **state)
{
    return setup_ttl(state, 200);
}

static void
on_closed(void *arg)
{
    ((fx_t *) arg)->closed++;
}

/* Closes both limiters, lets their refunds run, then closes the pools. */
static void
close_all(fx_t *fx)
{
    for (int i = 0; i < 2; i++)
        au_ratelimit_close(fx->rl[i], on_closed, fx);
    while ((fx->closed < 2 || au_ratelimit_busy(fx->rl[0]) || au_ratelimit_busy(fx->rl[1])) &&
           !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_false(fx->guard_fired);
}

static int
teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->closed < 2)
        close_all(fx);
    for (int i = 0; i < 2; i++)
        lc_pg_pool_close(fx->pool[i], NULL, NULL);
    uv_close((uv_handle_t *) &fx->guard, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 2; i++) {
        lc_pg_pool_destroy(fx->pool[i]);
        au_ratelimit_destroy(fx->rl[i]);
        lc_metrics_destroy(fx->metrics[i]);
    }
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", fx->dbname);
    sync_exec(getenv("VOXI_TEST_PG_DSN"), sql);
    free(fx->dsn);
    free(fx);
    return 0;
}

/* ---- tests ---- */

static void
test_two_instances_share_one_bucket(void **state)
{
    fx_t *fx = *state;
    /* 60 per minute: T = 1 s, burst 60 */
    int64_t started = lc_time_mono_ms();
    int allowed = 0, first_denied = -1;
    for (int n = 0; n < 90; n++) {
        outcome_t o = check(fx, n % 2, "k:key_shared:read", 60);
        assert_int_equal(o.d.limit, 60);
        assert_int_equal(o.d.window_s, 60);
        if (o.d.allowed) {
            allowed++;
            assert_int_equal(o.d.retry_after_s, 0);
        } else {
            if (first_denied < 0)
                first_denied = n;
            assert_int_equal(o.d.remaining, 0);
            assert_true(o.d.retry_after_s >= 1 && o.d.retry_after_s <= 2);
            assert_true(o.d.reset_s >= o.d.retry_after_s);
        }
    }
    int64_t elapsed_s = (lc_time_mono_ms() - started) / 1000;
    /* one bucket's worth: the burst plus one per second that passed, never more */
    assert_true(allowed >= 60 && allowed <= 60 + elapsed_s + 1);
    assert_true(first_denied >= 60);
}

static void
test_denial_is_answered_locally(void **state)
{
    fx_t *fx = *state;
    for (int n = 0; n < 10; n++)
        check(fx, 0, "ip:192.0.2.1", 10);
    outcome_t o = check(fx, 0, "ip:192.0.2.1", 10); /* asks the database, learns the wait */
    assert_false(o.d.allowed);
    double leases = counter(fx, 0, "voxi_auth_ratelimit_leases_total", "result=\"denied\"");
    double local =
        counter(fx, 0, "voxi_auth_ratelimit_local_decisions_total", "outcome=\"limited\"");
    for (int n = 0; n < 5; n++) {
        au_rl_decision_t d;
        bool decided = false;
        outcome_t unused = {0};
        assert_int_equal(
            au_ratelimit_check(fx->rl[0], "ip:192.0.2.1", 10, &d, &decided, on_decision, &unused),
            LC_OK);
        assert_true(decided); /* no database round trip while the wait lasts */
        assert_false(d.allowed);
        assert_true(d.retry_after_s >= 1);
    }
    assert_true(counter(fx, 0, "voxi_auth_ratelimit_leases_total", "result=\"denied\"") == leases);
    assert_true(counter(fx, 0, "voxi_auth_ratelimit_local_decisions_total",
                        "outcome=\"limited\"") == local + 5);
    /* the other instance, which knows nothing yet, gets the same answer from the database */
    outcome_t other = check(fx, 1, "ip:192.0.2.1", 10);
    assert_false(other.d.allowed);
}

static void
test_leases_grow_and_unspent_tokens_go_back(void **state)
{
    fx_t *fx = *state;
    /* 6000 per minute: T = 10 ms, leases of up to 120 */
    const char *bucket = "k:key_busy:read";
    /* the first lease's database time lies between these two */
    int64_t before_first = lc_time_mono_ms();
    assert_true(check(fx, 0, bucket, 6000).d.allowed);
    int64_t after_first = lc_time_mono_ms();
    for (int n = 1; n < 100; n++)
        assert_true(check(fx, 0, bucket, 6000).d.allowed);
    /* leases doubled: far fewer database trips than requests */
    double leases = counter(fx, 0, "voxi_auth_ratelimit_leases_total", "result=\"granted\"");
    double local =
        counter(fx, 0, "voxi_auth_ratelimit_local_decisions_total", "outcome=\"allowed\"");
    assert_true(leases < 20);
    assert_true(local + leases >= 100);
    /* what was leased but not spent is returned once the lease (200 ms here) expires */
    double refunded = 0;
    while (refunded == 0 && !fx->guard_fired) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        refunded = counter(fx, 0, "voxi_auth_ratelimit_refunded_tokens_total", NULL);
    }
    assert_true(refunded > 0);
    while (au_ratelimit_busy(fx->rl[0]) && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    /* the database now owes exactly the 100 spent (minus the time since the first lease),
     * not the tokens leased */
    int64_t before_query = lc_time_mono_ms();
    long long debt = db_debt_ms(fx, bucket);
    int64_t after_query = lc_time_mono_ms();
    assert_true(debt <= 100 * 10 - (before_query - after_first) + 5);
    assert_true(debt >= 100 * 10 - (after_query - before_first) - 5);
}

static void
test_close_gives_tokens_back(void **state)
{
    fx_t *fx = *state;
    const char *bucket = "k:key_closing:write";
    for (int n = 0; n < 40; n++)
        check(fx, 1, bucket, 6000);
    long long held_debt = db_debt_ms(fx, bucket);
    close_all(fx);
    long long debt = db_debt_ms(fx, bucket);
    assert_true(debt < held_debt);
    /* 40 spent, 10 ms each: what is left is at most that (time has passed since) */
    assert_true(debt <= 40 * 10);
    outcome_t o = {0};
    bool decided;
    assert_int_equal(au_ratelimit_check(fx->rl[1], bucket, 6000, &o.d, &decided, on_decision, &o),
                     LC_ERR_UNAVAILABLE);
}

/* The gateway's slices: leased tokens handed out without I/O, never given back here. */
static void
test_take_local_hands_out_leased_tokens(void **state)
{
    fx_t *fx = *state;
    const char *bucket = "k:key_sliced:read";
    assert_int_equal(au_ratelimit_take_local(fx->rl[0], bucket, 10), 0); /* unknown bucket */
    int64_t before_first = lc_time_mono_ms();
    for (int n = 0; n < 20; n++)
        assert_true(check(fx, 0, bucket, 6000).d.allowed);
    /* leases of 1, 2, 4, 8 were used up, so the fifth asked for 16: some are left */
    int64_t first = au_ratelimit_take_local(fx->rl[0], bucket, 3);
    assert_int_equal(first, 3);
    int64_t rest = au_ratelimit_take_local(fx->rl[0], bucket, 1000);
    assert_true(rest >= 1 && rest <= 120);
    assert_int_equal(au_ratelimit_take_local(fx->rl[0], bucket, 1000), 0);
    assert_int_equal(au_ratelimit_take_local(fx->rl[0], bucket, 0), 0);
    /* handed out means spent: closing refunds nothing, the database owes them all */
    close_all(fx);
    assert_true(counter(fx, 0, "voxi_auth_ratelimit_refunded_tokens_total", NULL) == 0);
    long long debt = db_debt_ms(fx, bucket);
    int64_t elapsed = lc_time_mono_ms() - before_first;
    assert_true(debt >= (20 + first + rest) * 10 - elapsed - 5);
}

static void
test_bad_arguments(void **state)
{
    fx_t *fx = *state;
    au_rl_decision_t d;
    bool decided;
    outcome_t o = {0};
    char long_name[AU_RL_BUCKET_MAX + 2];
    memset(long_name, 'b', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(au_ratelimit_check(fx->rl[0], "", 5, &d, &decided, on_decision, &o),
                     LC_ERR_INVALID);
    assert_int_equal(au_ratelimit_check(fx->rl[0], long_name, 5, &d, &decided, on_decision, &o),
                     LC_ERR_INVALID);
    assert_int_equal(au_ratelimit_check(fx->rl[0], "x", 0, &d, &decided, on_decision, &o),
                     LC_ERR_INVALID);
    char policy[64];
    au_ratelimit_policy("read", 600, 60, policy, sizeof(policy));
    assert_string_equal(policy, "\"read\";q=600;w=60");
}

int
main(void)
{
    lc_log_init("test", LC_LOG_WARN, LC_LOG_FMT_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_instances_share_one_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denial_is_answered_locally, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases_grow_and_unspent_tokens_go_back,
                                        setup_short_lease, teardown),
        cmocka_unit_test_setup_teardown(test_close_gives_tokens_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_local_hands_out_leased_tokens, setup_long_lease,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
