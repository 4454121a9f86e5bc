/*
 * Unit tests for lc_pg against a real PostgreSQL whose libpq conninfo is in
 * $VOXI_TEST_PG_DSN (scripts/testenv.sh provides it). Every test gets its own database,
 * created in setup and dropped (WITH (FORCE)) in teardown. Every wait is for an event; a
 * guard timer only turns a hang into a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_pg.h"
#include "lc_time.h"

#define GUARD_MS 20000
#define MAX_RESULTS 256

typedef struct fx fx_t;

/* What one query's callback saw. */
typedef struct {
    fx_t *fx;
    int id;
    bool done;
    lc_status_t status;
    int ncols;
    char values[4][128];
    bool isnull[4];
    char sqlstate[8];
} result_t;

struct fx {
    uv_loop_t loop;
    uv_timer_t guard;
    bool guard_fired;
    char dbname[40];
    char *dsn;
    lc_pg_pool_t *pool;
    bool closed;
    int completed;
    int order[MAX_RESULTS]; /* ids in completion order */
    result_t results[MAX_RESULTS];
};

/* ---- a database per test, through blocking libpq ---- */

static const char *
base_dsn(void)
{
    const char *dsn = getenv("VOXI_TEST_PG_DSN");
    if (dsn == NULL || *dsn == '\0') {
        fprintf(stderr, "VOXI_TEST_PG_DSN is not set: run through scripts/testenv.sh\n");
        fail();
    }
    return dsn;
}

static void
append_quoted(char *out, size_t size, const char *keyword, const char *value)
{
    size_t len = strlen(out);
    len += (size_t) snprintf(out + len, size - len, "%s%s='", len ? " " : "", keyword);
    for (const char *p = value; *p && len + 3 < size; p++) {
        if (*p == '\'' || *p == '\\')
            out[len++] = '\\';
        out[len++] = *p;
    }
    snprintf(out + len, size - len, "'");
}

/* The base conninfo (keyword/value or URI) with dbname replaced. */
static char *
dsn_with_db(const char *base, const char *dbname)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &err);
    if (opts == NULL) {
        fprintf(stderr, "VOXI_TEST_PG_DSN does not parse: %s\n", err ? err : "?");
        PQfreemem(err);
        fail();
    }
    char *out = calloc(1, 4096);
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && strcmp(o->keyword, "dbname") != 0)
            append_quoted(out, 4096, o->keyword, o->val);
    append_quoted(out, 4096, "dbname", dbname);
    PQconninfoFree(opts);
    return out;
}

static PGconn *
sync_connect(const char *dsn)
{
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to the test database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        fail();
    }
    return conn;
}

static void
sync_exec(const char *dsn, const char *sql)
{
    PGconn *conn = sync_connect(dsn);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(res));
    assert_true(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
    PQclear(res);
    PQfinish(conn);
}

/* ---- loop helpers ---- */

static void
on_guard(uv_timer_t *t)
{
    ((fx_t *) t->data)->guard_fired = true;
}

static void
run_until_count(fx_t *fx, int want)
{
    while (fx->completed < want && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_false(fx->guard_fired);
}

static void
run_until_connected(fx_t *fx, int want)
{
    while (lc_pg_pool_connected(fx->pool) < want && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_false(fx->guard_fired);
}

static void
on_result(lc_status_t status, PGresult *res, void *arg)
{
    result_t *r = arg;
    fx_t *fx = r->fx;
    assert_false(r->done); /* exactly once */
    r->done = true;
    r->status = status;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
        r->ncols = PQnfields(res) < 4 ? PQnfields(res) : 4;
        for (int c = 0; c < r->ncols; c++) {
            r->isnull[c] = PQgetisnull(res, 0, c);
            snprintf(r->values[c], sizeof(r->values[c]), "%s", PQgetvalue(res, 0, c));
        }
    }
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (sqlstate)
        snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", sqlstate);
    fx->order[fx->completed++] = r->id;
}

/* Queues a query whose outcome lands in fx->results[id]. */
static lc_status_t
query(fx_t *fx, int id, const char *sql, int nparams, const char *const *params)
{
    result_t *r = &fx->results[id];
    memset(r, 0, sizeof(*r));
    r->fx = fx;
    r->id = id;
    return lc_pg_query(fx->pool, sql, nparams, params, on_result, r);
}

static void
on_closed(void *arg)
{
    ((fx_t *) arg)->closed = true;
}

static int
setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    const char *base = base_dsn();
    lc_id_new("voxi_t_", fx->dbname, sizeof(fx->dbname));
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", fx->dbname);
    sync_exec(base, sql);
    fx->dsn = dsn_with_db(base, fx->dbname);
    uv_loop_init(&fx->loop);
    uv_timer_init(&fx->loop, &fx->guard);
    fx->guard.data = fx;
    uv_timer_start(&fx->guard, on_guard, GUARD_MS, 0);
    uv_unref((uv_handle_t *) &fx->guard);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->pool && !fx->closed)
        lc_pg_pool_close(fx->pool, on_closed, fx);
    uv_close((uv_handle_t *) &fx->guard, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    bool closed = fx->pool == NULL || fx->closed;
    lc_pg_pool_destroy(fx->pool);
    int loop_rc = uv_loop_close(&fx->loop);
    /* Drop the database before asserting, so a failure does not leave it behind. */
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", fx->dbname);
    sync_exec(base_dsn(), sql);
    free(fx->dsn);
    free(fx);
    assert_true(closed);
    assert_int_equal(loop_rc, 0); /* no live handles */
    return 0;
}

/* ---- tests ---- */

static void
test_params_round_trip(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 1, &fx->pool), LC_OK);
    assert_false(lc_pg_pool_ready(fx->pool));

    const char *tricky = "it's \"quoted\"; -- DROP TABLE x; \\ $1";
    char *p0 = strdup(tricky), *p2 = strdup("41");
    const char *params[3] = {p0, NULL, p2};
    assert_int_equal(
        query(fx, 0, "SELECT $1::text, $2::text, $3::int + 1, $2::text IS NULL", 3, params), LC_OK);
    memset(p0, 'x', strlen(p0)); /* the pool copied them */
    free(p0);
    free(p2);
    run_until_count(fx, 1);

    result_t *r = &fx->results[0];
    assert_int_equal(r->status, LC_OK);
    assert_int_equal(r->ncols, 4);
    assert_string_equal(r->values[0], tricky);
    assert_true(r->isnull[1]);
    assert_string_equal(r->values[2], "42");
    assert_string_equal(r->values[3], "t");
    assert_true(lc_pg_pool_ready(fx->pool));

    /* A statement without rows. */
    assert_int_equal(query(fx, 1, "CREATE TABLE t (x int)", 0, NULL), LC_OK);
    run_until_count(fx, 2);
    assert_int_equal(fx->results[1].status, LC_OK);
}

/* Larger than the socket buffer: PQflush returns 1 and the rest goes out when writable. */
static void
test_large_param_is_flushed(void **state)
{
    fx_t *fx = *state;
    enum { LEN = 8 * 1024 * 1024 };
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 1, &fx->pool), LC_OK);
    run_until_connected(fx, 1);
    char *big = malloc(LEN + 1);
    memset(big, 'a', LEN);
    big[LEN] = '\0';
    const char *params[2] = {big, "8388608"};
    assert_int_equal(query(fx, 0, "SELECT length($1), md5($1) = md5(repeat('a', $2))", 2, params),
                     LC_OK);
    free(big);
    run_until_count(fx, 1);
    assert_int_equal(fx->results[0].status, LC_OK);
    assert_string_equal(fx->results[0].values[0], "8388608");
    assert_string_equal(fx->results[0].values[1], "t");
}

/* Index of `pid` among two backend pids seen so far, recording it if new. */
static int
pid_slot(char pids[2][32], const char *pid)
{
    for (int s = 0; s < 2; s++) {
        if (pids[s][0] == '\0')
            snprintf(pids[s], sizeof(pids[s]), "%s", pid);
        if (strcmp(pids[s], pid) == 0)
            return s;
    }
    fail_msg("a third backend pid %s", pid);
    return -1;
}

static void
test_fifo_on_pool_of_two(void **state)
{
    fx_t *fx = *state;
    enum { N = 200 };
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 2, &fx->pool), LC_OK);
    run_until_connected(fx, 2);

    for (int i = 0; i < N; i++) {
        char num[16];
        snprintf(num, sizeof(num), "%d", i);
        const char *params[1] = {num};
        assert_int_equal(query(fx, i, "SELECT $1::int, pg_backend_pid()", 1, params), LC_OK);
    }
    assert_int_equal(lc_pg_pool_queued(fx->pool), N - 2); /* two went out at once */
    run_until_count(fx, N);

    /* Each connection ran its share in submission order; both took part. */
    char pids[2][32] = {"", ""};
    int last[2] = {-1, -1};
    for (int k = 0; k < N; k++) {
        result_t *r = &fx->results[fx->order[k]];
        assert_int_equal(r->status, LC_OK);
        assert_int_equal(atoi(r->values[0]), r->id);
        int slot = pid_slot(pids, r->values[1]);
        assert_true(r->id > last[slot]);
        last[slot] = r->id;
    }
    assert_true(pids[0][0] != '\0' && pids[1][0] != '\0');
}

static void
test_sql_error_keeps_pool_working(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 1, &fx->pool), LC_OK);
    assert_int_equal(query(fx, 0, "SELECT 1/0", 0, NULL), LC_OK);
    assert_int_equal(query(fx, 1, "SELEC nonsense", 0, NULL), LC_OK);
    assert_int_equal(query(fx, 2, "SELECT 'still here'", 0, NULL), LC_OK);
    run_until_count(fx, 3);
    assert_int_equal(fx->results[0].status, LC_ERR_DB);
    assert_string_equal(fx->results[0].sqlstate, "22012"); /* division_by_zero */
    assert_int_equal(fx->results[1].status, LC_ERR_DB);
    assert_string_equal(fx->results[1].sqlstate, "42601"); /* syntax_error */
    assert_int_equal(fx->results[2].status, LC_OK);
    assert_string_equal(fx->results[2].values[0], "still here");
    assert_int_equal(fx->order[0], 0);
    assert_int_equal(fx->order[2], 2);
}

/* Terminates every session of the test database but the caller's; returns how many. */
static int
terminate_backends(fx_t *fx)
{
    PGconn *conn = sync_connect(fx->dsn);
    PGresult *res = PQexec(conn, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                                 "FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    int n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return n;
}

static void
test_reconnect_after_terminate(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 2, &fx->pool), LC_OK);
    run_until_connected(fx, 2);
    assert_int_equal(query(fx, 0, "SELECT pg_backend_pid()", 0, NULL), LC_OK);
    run_until_count(fx, 1);
    char old_pid[128];
    snprintf(old_pid, sizeof(old_pid), "%s", fx->results[0].values[0]);

    assert_int_equal(terminate_backends(fx), 2);

    /* Queries on a connection that has not noticed yet fail (the server may or may not have
     * run them); each failure is retried, and a reconnected connection answers. */
    int attempt = 1;
    for (;; attempt++) {
        assert_true(attempt < 8);
        assert_int_equal(query(fx, attempt, "SELECT pg_backend_pid()", 0, NULL), LC_OK);
        run_until_count(fx, attempt + 1);
        lc_status_t st = fx->results[attempt].status;
        if (st == LC_OK)
            break;
        assert_true(st == LC_ERR_UNAVAILABLE || st == LC_ERR_DB);
    }
    assert_string_not_equal(fx->results[attempt].values[0], old_pid);

    run_until_connected(fx, 2); /* both come back */
    int base = fx->completed;
    assert_int_equal(query(fx, base, "SELECT 1", 0, NULL), LC_OK);
    assert_int_equal(query(fx, base + 1, "SELECT 2", 0, NULL), LC_OK);
    run_until_count(fx, base + 2);
    assert_int_equal(fx->results[base].status, LC_OK);
    assert_int_equal(fx->results[base + 1].status, LC_OK);
}

static void
test_queue_bound(void **state)
{
    fx_t *fx = *state;
    lc_pg_pool_opts_t opts = {.max_queued = 4};
    assert_int_equal(lc_pg_pool_create_opts(&fx->loop, fx->dsn, 1, &opts, &fx->pool), LC_OK);
    /* Not connected before the loop runs: everything queues. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(query(fx, i, "SELECT 1", 0, NULL), LC_OK);
    assert_int_equal(lc_pg_pool_queued(fx->pool), 4);
    assert_int_equal(query(fx, 4, "SELECT 1", 0, NULL), LC_ERR_FULL);
    run_until_count(fx, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fx->order[i], i); /* one connection: strict FIFO */
        assert_int_equal(fx->results[i].status, LC_OK);
    }
    assert_false(fx->results[4].done); /* refused means no callback */
    assert_int_equal(lc_pg_pool_queued(fx->pool), 0);
}

static void
test_queued_query_times_out_while_unreachable(void **state)
{
    fx_t *fx = *state;
    lc_pg_pool_opts_t opts = {.query_timeout_ms = 300};
    /* A socket directory that does not exist: every attempt fails at once. */
    assert_int_equal(lc_pg_pool_create_opts(&fx->loop, "host=/nonexistent/voxi port=5 dbname=x", 2,
                                            &opts, &fx->pool),
                     LC_OK);
    int64_t start = lc_time_mono_ms();
    assert_int_equal(query(fx, 0, "SELECT 1", 0, NULL), LC_OK);
    run_until_count(fx, 1);
    assert_int_equal(fx->results[0].status, LC_ERR_TIMEOUT);
    assert_true(lc_time_mono_ms() - start >= 250); /* it waited instead of failing at once */
    assert_false(lc_pg_pool_ready(fx->pool));
}

static void
test_running_query_times_out(void **state)
{
    fx_t *fx = *state;
    lc_pg_pool_opts_t opts = {.query_timeout_ms = 300};
    assert_int_equal(lc_pg_pool_create_opts(&fx->loop, fx->dsn, 1, &opts, &fx->pool), LC_OK);
    run_until_connected(fx, 1);
    assert_int_equal(query(fx, 0, "SELECT pg_sleep(30)", 0, NULL), LC_OK);
    run_until_count(fx, 1);
    assert_int_equal(fx->results[0].status, LC_ERR_TIMEOUT);
    /* The connection was given up; the pool reconnects and serves again. */
    assert_int_equal(query(fx, 1, "SELECT 'after'", 0, NULL), LC_OK);
    run_until_count(fx, 2);
    assert_int_equal(fx->results[1].status, LC_OK);
    assert_string_equal(fx->results[1].values[0], "after");
}

static void
test_close_cancels_pending(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 1, &fx->pool), LC_OK);
    run_until_connected(fx, 1);
    assert_int_equal(query(fx, 0, "SELECT pg_sleep(30)", 0, NULL), LC_OK); /* in flight */
    for (int i = 1; i <= 5; i++)
        assert_int_equal(query(fx, i, "SELECT 1", 0, NULL), LC_OK); /* queued */
    assert_int_equal(lc_pg_pool_queued(fx->pool), 5);

    lc_pg_pool_close(fx->pool, on_closed, fx);
    assert_int_equal(fx->completed, 6); /* before close returned */
    for (int i = 0; i <= 5; i++) {
        assert_int_equal(fx->order[i], i);
        assert_int_equal(fx->results[i].status, LC_ERR_CANCELLED);
    }
    assert_int_equal(query(fx, 6, "SELECT 1", 0, NULL), LC_ERR_UNAVAILABLE);
    assert_false(fx->closed); /* done_cb comes from the loop */
    while (!fx->closed && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_true(fx->closed);
    /* teardown: uv_run returns and uv_loop_close finds no live handle */
}

static void
destroy_from_callback(lc_status_t status, PGresult *res, void *arg)
{
    (void) res;
    fx_t *fx = arg;
    assert_int_equal(status, LC_OK);
    fx->completed++;
    lc_pg_pool_destroy(fx->pool); /* frees once the handles have closed */
    fx->pool = NULL;
}

static void
on_cancelled(lc_status_t status, PGresult *res, void *arg)
{
    (void) res;
    assert_int_equal(status, LC_ERR_CANCELLED);
    ((fx_t *) arg)->completed++;
}

static void
test_destroy_from_callback(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 1, &fx->pool), LC_OK);
    assert_int_equal(lc_pg_query(fx->pool, "SELECT 1", 0, NULL, destroy_from_callback, fx), LC_OK);
    assert_int_equal(lc_pg_query(fx->pool, "SELECT 2", 0, NULL, on_cancelled, fx), LC_OK);
    run_until_count(fx, 2);
    assert_null(fx->pool);
    /* teardown runs the loop: the pool's handles close, then it frees itself (ASan checks) */
}

static void
test_invalid_arguments(void **state)
{
    fx_t *fx = *state;
    lc_pg_pool_t *pool = NULL;
    assert_int_equal(lc_pg_pool_create(&fx->loop, "nosuchkeyword=1", 1, &pool), LC_ERR_CONFIG);
    assert_null(pool);
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 0, &pool), LC_ERR_INVALID);
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 65, &pool), LC_ERR_INVALID);
    assert_int_equal(lc_pg_pool_create(&fx->loop, fx->dsn, 1, &fx->pool), LC_OK);
    assert_int_equal(query(fx, 0, NULL, 0, NULL), LC_ERR_INVALID);
    assert_int_equal(query(fx, 0, "SELECT 1", -1, NULL), LC_ERR_INVALID);
    assert_int_equal(query(fx, 0, "SELECT $1", 1, NULL), LC_ERR_INVALID);
    lc_pg_pool_destroy(NULL);
}

int
main(void)
{
    lc_log_init("test_pg", LC_LOG_WARN, LC_LOG_FMT_LOGFMT);
    const char *dsn = getenv("VOXI_TEST_PG_DSN");
    if (dsn == NULL || *dsn == '\0') {
        fprintf(stderr, "test_pg: VOXI_TEST_PG_DSN is not set (a libpq conninfo for a "
                        "PostgreSQL that lets us CREATE DATABASE): run through "
                        "scripts/testenv.sh\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_params_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_param_is_flushed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_on_pool_of_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sql_error_keeps_pool_working, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_terminate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_query_times_out_while_unreachable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_running_query_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
