/*
 * Rate limits shared by several auth instances.
 *
 * The design
 * ----------
 * Every bucket is one GCRA (au_gcra.h): limit L per window W, emission interval T = W / L,
 * burst tolerance tau = L * T. The truth is one row per bucket in Postgres,
 * rate_limit_buckets(bucket, tat), in the database's clock, so instances on different
 * machines agree without synchronised clocks.
 *
 * Asking the database for every request would put a write on every API call. Instead an
 * instance *leases* tokens: one statement (LEASE_SQL: INSERT ... ON CONFLICT DO UPDATE
 * ... WHERE ... RETURNING) advances the row's tat by k emission intervals, where
 * k = min(n, tokens that still conform), and only when at least one conforms. The row
 * lock makes concurrent leases from any number of instances serialise, so the sum of all
 * tokens ever leased obeys the GCRA exactly: no instance mix can admit more than one
 * bucket would. The instance then spends its k tokens locally with no further I/O.
 *
 * Lease size adapts per bucket: it starts at 1, doubles each time a lease is used up
 * before it expires and halves when one expires unused, and never exceeds
 * au_gcra_lease_max() (about 2% of L, 1 for L < 100). Small limits therefore go to the
 * database for every request (exact), busy large ones about every 2% of their limit.
 *
 * Leases expire after lease_ttl_ms (1 s): unspent tokens are given back (REFUND_SQL moves
 * tat back by their intervals, never before now), so an idle instance does not sit on
 * capacity another instance needs. A denied lease tells the instance when the next token
 * conforms (tat - now - tau + T): until then it answers 429 locally without asking again,
 * which is exact because tat can only move later (refunds aside).
 *
 * Error bound: admitted requests never exceed the single-bucket GCRA. They fall short of
 * it only by tokens that are leased but not spent yet, at most one lease per instance:
 * with 2 instances and L = 600/min that is 2 x 12 = 24 requests, 4% of a minute's burst,
 * and those tokens are spent by the next requests or refunded within 1 s, so over any
 * window longer than the lease TTL the shortfall is smaller still. (Measured by
 * tests/system/test_auth.py: two gateways and two auth instances, see the report there.)
 *
 * Headers: remaining and reset come from the bucket state the last database answer gave
 * (the debt tat - now at that moment, aged locally) plus the tokens this instance holds;
 * other instances' spending since then is not seen, which only matters within one lease.
 *
 * Housekeeping: a timer returns expired leases (every TTL/4), forgets local state of
 * buckets idle for IDLE_FORGET_MS, and deletes database rows whose tat has long passed
 * (a missing row is a full bucket).
 */
#include "au_ratelimit.h"

#include <h2o/linklist.h>
#include <h2o/memory.h>
#include <inttypes.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "au_gcra.h"
#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define IDLE_FORGET_MS 30000
#define IDLE_SCAN_EVERY_MS 5000
#define DB_SWEEP_EVERY_MS 60000

/* $1 bucket, $2 tokens asked, $3 T in us, $4 tau in us -> (granted, tat - now in us). */
static const char LEASE_SQL[] =
    "WITH up AS ("
    " INSERT INTO rate_limit_buckets AS b (bucket, tat, granted)"
    " VALUES ($1::text,"
    "  now() + interval '1 microsecond' * (least($2::int, $4::bigint / $3::bigint) * $3::bigint),"
    "  least($2::int, $4::bigint / $3::bigint))"
    " ON CONFLICT (bucket) DO UPDATE SET"
    "  granted = least($2::int, floor((extract(epoch FROM now() - greatest(b.tat, now()))"
    "   * 1000000 + $4::bigint) / $3::bigint)),"
    "  tat = greatest(b.tat, now()) + interval '1 microsecond' * (least($2::int,"
    "   floor((extract(epoch FROM now() - greatest(b.tat, now())) * 1000000 + $4::bigint)"
    "   / $3::bigint)) * $3::bigint)"
    " WHERE extract(epoch FROM now() - greatest(b.tat, now())) * 1000000 + $4::bigint"
    "  >= $3::bigint"
    " RETURNING b.tat, b.granted)"
    " SELECT coalesce((SELECT granted FROM up), 0),"
    "  (extract(epoch FROM coalesce((SELECT tat FROM up),"
    "   (SELECT tat FROM rate_limit_buckets WHERE bucket = $1::text), now()) - now())"
    "   * 1000000)::bigint";

/* $1 bucket, $2 microseconds to give back. */
static const char REFUND_SQL[] =
    "UPDATE rate_limit_buckets SET tat = greatest(tat - interval '1 microsecond' * $2::bigint,"
    " now()) WHERE bucket = $1::text AND tat > now()";

/* Rows whose bucket has been full for a minute; the outer condition is re-checked on the
 * locked row, so a lease racing the sweep is never deleted. */
static const char SWEEP_SQL[] =
    "DELETE FROM rate_limit_buckets WHERE tat < now() - interval '1 minute' AND bucket IN"
    " (SELECT bucket FROM rate_limit_buckets WHERE tat < now() - interval '1 minute'"
    " LIMIT 10000)";

typedef struct {
    h2o_linklist_t link;
    au_rl_cb cb;
    void *arg;
} waiter_t;

typedef struct bucket {
    char *name;
    au_gcra_t gcra;
    int64_t tokens; /* leased, not spent */
    int64_t lease_expires_ms;
    int64_t lease_size;
    int64_t blocked_until_ms; /* after a denied lease: nothing conforms before this */
    int64_t debt_us;          /* tat - now, as the database said at seen_ms */
    int64_t seen_ms;
    int64_t last_used_ms;
    bool leasing; /* a lease query is in flight */
    int64_t asked;
    h2o_linklist_t waiters;
    size_t nwaiters;
    h2o_linklist_t held_link; /* in rl->held while tokens > 0, by lease expiry */
    h2o_linklist_t idle_link; /* in rl->lru, least recently used first */
} bucket_t;

struct au_ratelimit {
    lc_pg_pool_t *pg;
    au_rl_opts_t opts;
    void *tree; /* tsearch root, bucket_t * by name */
    size_t nbuckets;
    h2o_linklist_t held;
    h2o_linklist_t lru;
    uv_timer_t timer;
    int64_t next_idle_scan_ms;
    int64_t next_db_sweep_ms;
    size_t queries;
    bool closing;
    void (*done_cb)(void *arg);
    void *done_arg;
    lc_metric_t *m_lease_granted, *m_lease_partial, *m_lease_denied, *m_lease_error;
    lc_metric_t *m_local_allowed, *m_local_limited, *m_refunds, *m_buckets;
};

typedef struct {
    au_ratelimit_t *rl;
    bucket_t *bucket; /* NULL for refunds and sweeps */
} query_t;

/* ---- bucket map ---- */

static int
bucket_cmp(const void *a, const void *b)
{
    return strcmp(((const bucket_t *) a)->name, ((const bucket_t *) b)->name);
}

static bucket_t *
bucket_find(au_ratelimit_t *rl, const char *name)
{
    bucket_t probe = {.name = (char *) name};
    void *node = tfind(&probe, &rl->tree, bucket_cmp);
    return node ? *(bucket_t **) node : NULL;
}

static void
bucket_free(bucket_t *b)
{
    free(b->name);
    free(b);
}

static void
bucket_remove(au_ratelimit_t *rl, bucket_t *b)
{
    tdelete(b, &rl->tree, bucket_cmp);
    if (h2o_linklist_is_linked(&b->held_link))
        h2o_linklist_unlink(&b->held_link);
    h2o_linklist_unlink(&b->idle_link);
    rl->nbuckets--;
    lc_metric_set(rl->m_buckets, (double) rl->nbuckets);
    bucket_free(b);
}

/* ---- decisions ---- */

static int64_t
debt_now_us(const bucket_t *b, int64_t now_ms)
{
    int64_t debt = b->debt_us - (now_ms - b->seen_ms) * 1000;
    return debt > 0 ? debt : 0;
}

static void
fill_decision(const bucket_t *b, int64_t now_ms, bool allowed, au_rl_decision_t *d)
{
    const au_gcra_t *g = &b->gcra;
    int64_t debt = debt_now_us(b, now_ms);
    int64_t remaining = au_gcra_remaining(g, debt) + b->tokens;
    d->allowed = allowed;
    d->limit = g->limit;
    d->window_s = (g->window_ms + 999) / 1000;
    d->remaining = remaining > g->limit ? g->limit : remaining;
    if (!allowed)
        d->remaining = 0;
    int64_t reset = au_gcra_reset_us(g, debt - b->tokens * g->interval_us);
    d->reset_s = au_gcra_ceil_s(reset);
    d->retry_after_s = 0;
    if (!allowed) {
        int64_t wait_ms = b->blocked_until_ms - now_ms;
        d->retry_after_s = wait_ms > 0 ? (wait_ms + 999) / 1000 : 1;
        if (d->reset_s < d->retry_after_s)
            d->reset_s = d->retry_after_s;
    }
}

static void
hold_tokens(au_ratelimit_t *rl, bucket_t *b, int64_t granted, int64_t now_ms)
{
    b->tokens += granted;
    b->lease_expires_ms = now_ms + rl->opts.lease_ttl_ms;
    if (h2o_linklist_is_linked(&b->held_link))
        h2o_linklist_unlink(&b->held_link);
    h2o_linklist_insert(&rl->held, &b->held_link); /* at the tail: latest expiry */
}

/* Takes one local token; returns false when there is none. */
static bool
spend_token(bucket_t *b, int64_t now_ms)
{
    if (b->tokens <= 0)
        return false;
    b->tokens--;
    if (b->tokens == 0) {
        h2o_linklist_unlink(&b->held_link);
        /* used up before it expired: the next lease may be larger */
        if (now_ms < b->lease_expires_ms) {
            int64_t max = au_gcra_lease_max(&b->gcra);
            b->lease_size = b->lease_size * 2 > max ? max : b->lease_size * 2;
        }
    }
    return true;
}

/* ---- database ---- */

static lc_status_t lease_start(au_ratelimit_t *rl, bucket_t *b);

static void
query_done(au_ratelimit_t *rl)
{
    rl->queries--;
}

static void
fail_waiters(bucket_t *b, lc_status_t status)
{
    while (!h2o_linklist_is_empty(&b->waiters)) {
        waiter_t *w = H2O_STRUCT_FROM_MEMBER(waiter_t, link, b->waiters.next);
        h2o_linklist_unlink(&w->link);
        b->nwaiters--;
        au_rl_cb cb = w->cb;
        void *arg = w->arg;
        free(w);
        cb(status, NULL, arg);
    }
}

static bool
parse_int64(const char *text, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0')
        return false;
    *out = v;
    return true;
}

static void
on_lease(lc_status_t status, PGresult *res, void *arg)
{
    query_t *q = arg;
    au_ratelimit_t *rl = q->rl;
    bucket_t *b = q->bucket;
    free(q);
    query_done(rl);
    b->leasing = false;
    int64_t now = lc_time_mono_ms();

    int64_t granted = 0, debt_us = 0;
    if (status == LC_OK && (PQntuples(res) != 1 || PQnfields(res) != 2 ||
                            !parse_int64(PQgetvalue(res, 0, 0), &granted) ||
                            !parse_int64(PQgetvalue(res, 0, 1), &debt_us))) {
        LC_LOG_RL(LC_LOG_ERROR, "ratelimit", 1, "lease: unexpected result shape");
        status = LC_ERR_INTERNAL;
    }
    if (status != LC_OK) {
        lc_metric_inc(rl->m_lease_error);
        LC_LOG_RL(LC_LOG_WARN, "ratelimit", 1, "lease for a bucket failed: %s",
                  lc_status_name(status));
        fail_waiters(b, status == LC_ERR_TIMEOUT ? LC_ERR_TIMEOUT : LC_ERR_UNAVAILABLE);
        return;
    }

    b->debt_us = debt_us;
    b->seen_ms = now;
    if (granted > 0)
        hold_tokens(rl, b, granted, now);
    bool exhausted = granted < b->asked;
    if (exhausted) {
        int64_t wait_us = au_gcra_retry_after_us(&b->gcra, debt_us);
        b->blocked_until_ms = now + (wait_us + 999) / 1000;
        if (b->blocked_until_ms <= now)
            b->blocked_until_ms = now + 1;
        lc_metric_inc(granted > 0 ? rl->m_lease_partial : rl->m_lease_denied);
    } else {
        b->blocked_until_ms = 0;
        lc_metric_inc(rl->m_lease_granted);
    }

    while (!h2o_linklist_is_empty(&b->waiters)) {
        au_rl_decision_t d;
        bool allowed = spend_token(b, now);
        if (!allowed && !exhausted)
            break; /* more waiters than this lease asked for: lease again */
        if (!allowed && rl->closing) {
            fail_waiters(b, LC_ERR_UNAVAILABLE);
            return;
        }
        waiter_t *w = H2O_STRUCT_FROM_MEMBER(waiter_t, link, b->waiters.next);
        h2o_linklist_unlink(&w->link);
        b->nwaiters--;
        fill_decision(b, now, allowed, &d);
        au_rl_cb cb = w->cb;
        void *cb_arg = w->arg;
        free(w);
        cb(LC_OK, &d, cb_arg);
    }
    if (!h2o_linklist_is_empty(&b->waiters)) {
        if (rl->closing || lease_start(rl, b) != LC_OK)
            fail_waiters(b, LC_ERR_UNAVAILABLE);
    }
}

/* Sends a lease query for the bucket's waiters; on failure nothing is queued and the
 * waiters are left to the caller. */
static lc_status_t
lease_start(au_ratelimit_t *rl, bucket_t *b)
{
    int64_t n = b->lease_size;
    if ((int64_t) b->nwaiters > n)
        n = (int64_t) b->nwaiters;
    if (n > b->gcra.burst)
        n = b->gcra.burst;
    char p_n[24], p_t[24], p_tau[24];
    snprintf(p_n, sizeof(p_n), "%" PRId64, n);
    snprintf(p_t, sizeof(p_t), "%" PRId64, b->gcra.interval_us);
    snprintf(p_tau, sizeof(p_tau), "%" PRId64, b->gcra.tolerance_us);
    const char *params[] = {b->name, p_n, p_t, p_tau};
    query_t *q = LC_NEW(query_t);
    q->rl = rl;
    q->bucket = b;
    lc_status_t st = lc_pg_query(rl->pg, LEASE_SQL, 4, params, on_lease, q);
    if (st != LC_OK) {
        free(q);
        lc_metric_inc(rl->m_lease_error);
        LC_LOG_RL(LC_LOG_WARN, "ratelimit", 1, "cannot queue a lease: %s", lc_status_name(st));
        return st;
    }
    rl->queries++;
    b->leasing = true;
    b->asked = n;
    return LC_OK;
}

static void
on_housekeeping_query(lc_status_t status, PGresult *res, void *arg)
{
    (void) res;
    query_t *q = arg;
    query_done(q->rl);
    if (status != LC_OK && status != LC_ERR_CANCELLED)
        LC_LOG_RL(LC_LOG_WARN, "ratelimit", 1, "refund or sweep failed: %s",
                  lc_status_name(status));
    free(q);
}

static void
housekeeping_query(au_ratelimit_t *rl, const char *sql, int nparams, const char *const *params)
{
    query_t *q = LC_NEW(query_t);
    q->rl = rl;
    if (lc_pg_query(rl->pg, sql, nparams, params, on_housekeeping_query, q) != LC_OK) {
        free(q);
        return;
    }
    rl->queries++;
}

/* Gives a bucket's unspent tokens back to the database. */
static void
refund(au_ratelimit_t *rl, bucket_t *b)
{
    if (b->tokens <= 0)
        return;
    char p_us[24];
    snprintf(p_us, sizeof(p_us), "%" PRId64, b->tokens * b->gcra.interval_us);
    const char *params[] = {b->name, p_us};
    housekeeping_query(rl, REFUND_SQL, 2, params);
    lc_metric_add(rl->m_refunds, (double) b->tokens);
    /* the database's debt shrinks by what went back; keep the headers in step */
    b->debt_us -= b->tokens * b->gcra.interval_us;
    b->tokens = 0;
    h2o_linklist_unlink(&b->held_link);
}

/* ---- housekeeping ---- */

static void
on_timer(uv_timer_t *t)
{
    au_ratelimit_t *rl = t->data;
    int64_t now = lc_time_mono_ms();

    while (!h2o_linklist_is_empty(&rl->held)) {
        bucket_t *b = H2O_STRUCT_FROM_MEMBER(bucket_t, held_link, rl->held.next);
        if (b->lease_expires_ms > now)
            break;
        refund(rl, b);
        b->lease_size = b->lease_size / 2 > 1 ? b->lease_size / 2 : 1;
    }

    if (now >= rl->next_idle_scan_ms) {
        rl->next_idle_scan_ms = now + IDLE_SCAN_EVERY_MS;
        while (!h2o_linklist_is_empty(&rl->lru)) {
            bucket_t *b = H2O_STRUCT_FROM_MEMBER(bucket_t, idle_link, rl->lru.next);
            if (now - b->last_used_ms < IDLE_FORGET_MS)
                break;
            if (b->leasing || b->nwaiters > 0 || b->tokens > 0 || b->blocked_until_ms > now) {
                /* still busy: look again after a full idle period */
                b->last_used_ms = now;
                h2o_linklist_unlink(&b->idle_link);
                h2o_linklist_insert(&rl->lru, &b->idle_link);
                continue;
            }
            bucket_remove(rl, b);
        }
    }

    if (now >= rl->next_db_sweep_ms) {
        rl->next_db_sweep_ms = now + DB_SWEEP_EVERY_MS;
        housekeeping_query(rl, SWEEP_SQL, 0, NULL);
    }
}

/* ---- public ---- */

lc_status_t
au_ratelimit_create(uv_loop_t *loop, lc_pg_pool_t *pg, lc_metrics_t *metrics,
                    const au_rl_opts_t *opts, au_ratelimit_t **out)
{
    au_ratelimit_t *rl = LC_NEW(au_ratelimit_t);
    rl->pg = pg;
    if (opts)
        rl->opts = *opts;
    if (rl->opts.window_ms <= 0)
        rl->opts.window_ms = 60000;
    if (rl->opts.lease_ttl_ms <= 0)
        rl->opts.lease_ttl_ms = 1000;
    if (rl->opts.max_buckets == 0)
        rl->opts.max_buckets = 100000;
    h2o_linklist_init_anchor(&rl->held);
    h2o_linklist_init_anchor(&rl->lru);
    const char *name = "voxi_auth_ratelimit_leases_total";
    const char *help = "rate-limit lease queries to the database by result";
    rl->m_lease_granted = lc_metrics_counter(metrics, name, help, "result=\"granted\"");
    rl->m_lease_partial = lc_metrics_counter(metrics, name, help, "result=\"partial\"");
    rl->m_lease_denied = lc_metrics_counter(metrics, name, help, "result=\"denied\"");
    rl->m_lease_error = lc_metrics_counter(metrics, name, help, "result=\"error\"");
    name = "voxi_auth_ratelimit_local_decisions_total";
    help = "rate-limit checks decided from a lease or a known denial, without the database";
    rl->m_local_allowed = lc_metrics_counter(metrics, name, help, "outcome=\"allowed\"");
    rl->m_local_limited = lc_metrics_counter(metrics, name, help, "outcome=\"limited\"");
    rl->m_refunds = lc_metrics_counter(metrics, "voxi_auth_ratelimit_refunded_tokens_total",
                                       "leased tokens given back unspent", NULL);
    rl->m_buckets = lc_metrics_gauge(metrics, "voxi_auth_ratelimit_buckets",
                                     "buckets this instance keeps state for", NULL);
    uv_timer_init(loop, &rl->timer);
    rl->timer.data = rl;
    uint64_t tick = (uint64_t) (rl->opts.lease_ttl_ms / 4 > 0 ? rl->opts.lease_ttl_ms / 4 : 1);
    uv_timer_start(&rl->timer, on_timer, tick, tick);
    rl->next_idle_scan_ms = lc_time_mono_ms() + IDLE_SCAN_EVERY_MS;
    rl->next_db_sweep_ms = lc_time_mono_ms() + DB_SWEEP_EVERY_MS;
    *out = rl;
    return LC_OK;
}

lc_status_t
au_ratelimit_check(au_ratelimit_t *rl, const char *bucket, int64_t limit, au_rl_decision_t *out,
                   bool *decided, au_rl_cb cb, void *arg)
{
    *decided = false;
    size_t len = bucket ? strlen(bucket) : 0;
    if (len == 0 || len > AU_RL_BUCKET_MAX || limit < 1 || cb == NULL)
        return LC_ERR_INVALID;
    if (rl->closing)
        return LC_ERR_UNAVAILABLE;
    int64_t now = lc_time_mono_ms();

    bucket_t *b = bucket_find(rl, bucket);
    if (b == NULL) {
        if (rl->nbuckets >= rl->opts.max_buckets) {
            LC_LOG_RL(LC_LOG_WARN, "ratelimit", 1, "%zu buckets in use: refusing new ones",
                      rl->nbuckets);
            return LC_ERR_FULL;
        }
        b = LC_NEW(bucket_t);
        b->name = lc_strdup(bucket);
        au_gcra_init(&b->gcra, limit, rl->opts.window_ms, limit);
        b->lease_size = 1;
        b->seen_ms = now;
        h2o_linklist_init_anchor(&b->waiters);
        tsearch(b, &rl->tree, bucket_cmp);
        rl->nbuckets++;
        lc_metric_set(rl->m_buckets, (double) rl->nbuckets);
    } else {
        h2o_linklist_unlink(&b->idle_link);
        if (b->gcra.limit != limit) { /* the org's limit changed */
            au_gcra_init(&b->gcra, limit, rl->opts.window_ms, limit);
            int64_t max = au_gcra_lease_max(&b->gcra);
            if (b->lease_size > max)
                b->lease_size = max;
        }
    }
    b->last_used_ms = now;
    h2o_linklist_insert(&rl->lru, &b->idle_link);

    /* Waiters go first: a token freed now belongs to the request that came earlier. */
    if (b->nwaiters == 0 && spend_token(b, now)) {
        fill_decision(b, now, true, out);
        lc_metric_inc(rl->m_local_allowed);
        *decided = true;
        return LC_OK;
    }
    if (b->nwaiters == 0 && now < b->blocked_until_ms) {
        fill_decision(b, now, false, out);
        lc_metric_inc(rl->m_local_limited);
        *decided = true;
        return LC_OK;
    }
    /* Waiters exist only while a lease is in flight: the first one starts it. */
    waiter_t *w = LC_NEW(waiter_t);
    w->cb = cb;
    w->arg = arg;
    h2o_linklist_insert(&b->waiters, &w->link);
    b->nwaiters++;
    if (!b->leasing) {
        lc_status_t st = lease_start(rl, b);
        if (st != LC_OK) {
            h2o_linklist_unlink(&w->link);
            b->nwaiters--;
            free(w);
            return st;
        }
    }
    return LC_OK;
}

int64_t
au_ratelimit_take_local(au_ratelimit_t *rl, const char *bucket, int64_t max)
{
    if (rl->closing || max <= 0 || bucket == NULL)
        return 0;
    bucket_t *b = bucket_find(rl, bucket);
    if (b == NULL || b->nwaiters > 0)
        return 0;
    int64_t now = lc_time_mono_ms();
    int64_t taken = 0;
    while (taken < max && spend_token(b, now))
        taken++;
    if (taken > 0)
        lc_metric_add(rl->m_local_allowed, (double) taken);
    return taken;
}

void
au_ratelimit_policy(const char *name, int64_t limit, int64_t window_s, char *out, size_t out_size)
{
    snprintf(out, out_size, "\"%s\";q=%" PRId64 ";w=%" PRId64, name, limit, window_s);
}

size_t
au_ratelimit_busy(const au_ratelimit_t *rl)
{
    return rl->queries;
}

static void
on_timer_closed(uv_handle_t *h)
{
    au_ratelimit_t *rl = h->data;
    if (rl->done_cb)
        rl->done_cb(rl->done_arg);
}

void
au_ratelimit_close(au_ratelimit_t *rl, void (*done_cb)(void *arg), void *arg)
{
    if (rl == NULL || rl->closing)
        return;
    rl->closing = true;
    rl->done_cb = done_cb;
    rl->done_arg = arg;
    while (!h2o_linklist_is_empty(&rl->held)) {
        bucket_t *b = H2O_STRUCT_FROM_MEMBER(bucket_t, held_link, rl->held.next);
        refund(rl, b);
    }
    uv_timer_stop(&rl->timer);
    uv_close((uv_handle_t *) &rl->timer, on_timer_closed);
}

static void
free_node(void *node)
{
    bucket_t *b = node;
    fail_waiters(b, LC_ERR_CANCELLED);
    bucket_free(b);
}

void
au_ratelimit_destroy(au_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    tdestroy(rl->tree, free_node);
    free(rl);
}
