/*
 * au_ratelimit: rate limits shared by every auth instance, GCRA buckets whose truth is in
 * Postgres, spent locally through short leases. The design and its error bound are
 * described at the top of ratelimit.c.
 *
 * A bucket is named by the caller ("k:<key id>:read", "ip:<address>", ...) and checked
 * against `limit` requests per window (burst = limit). A check is decided at once from the
 * instance's lease when it can be, and otherwise after one database round trip.
 *
 * Threads: the loop thread only; callbacks run on it.
 */
#ifndef AU_RATELIMIT_H
#define AU_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_pg.h"
#include "lc_status.h"

#define AU_RL_BUCKET_MAX 200

typedef struct au_ratelimit au_ratelimit_t;

/* What the headers say (draft-ietf-httpapi-ratelimit-headers) and whether it passed. */
typedef struct {
    bool allowed;
    int64_t limit;         /* requests per window */
    int64_t window_s;      /* the window */
    int64_t remaining;     /* requests that would pass now */
    int64_t reset_s;       /* until the bucket is full again */
    int64_t retry_after_s; /* denied: until the next request can pass (>= 1); else 0 */
} au_rl_decision_t;

/* status LC_OK with a decision, or why none could be made (LC_ERR_UNAVAILABLE: the
 * database failed or the limiter is closing; LC_ERR_TIMEOUT). decision NULL unless LC_OK. */
typedef void (*au_rl_cb)(lc_status_t status, const au_rl_decision_t *decision, void *arg);

typedef struct {
    int64_t window_ms;    /* 0 = 60000 */
    int64_t lease_ttl_ms; /* unspent leased tokens go back after this; 0 = 1000 */
    size_t max_buckets;   /* local bucket states; 0 = 100000 */
} au_rl_opts_t;

/*
 * Creates a limiter on `loop` using `pg` (borrowed; must outlive the limiter's use) and
 * registers its metrics in `metrics` (borrowed). opts may be NULL.
 */
lc_status_t au_ratelimit_create(uv_loop_t *loop, lc_pg_pool_t *pg, lc_metrics_t *metrics,
                                const au_rl_opts_t *opts, au_ratelimit_t **out);

/*
 * Counts one request against `bucket` (copied; 1..AU_RL_BUCKET_MAX bytes) limited to
 * `limit` (>= 1) requests per window.
 * Returns LC_OK and either *decided = true with *out filled (cb is not called), or
 * *decided = false: cb(arg) is called exactly once later, on the loop.
 * Errors (cb never called): LC_ERR_INVALID (bad bucket or limit), LC_ERR_FULL (too many
 * buckets known at once), LC_ERR_UNAVAILABLE (closing), or lc_pg_query's error.
 */
lc_status_t au_ratelimit_check(au_ratelimit_t *rl, const char *bucket, int64_t limit,
                               au_rl_decision_t *out, bool *decided, au_rl_cb cb, void *arg);

/*
 * Hands out up to `max` more tokens of `bucket` from this instance's lease, without I/O:
 * returns how many (0 when the bucket is unknown, has waiters, or holds none). Used for
 * the gateway's slices (api.proto AuthenticateReply.grant): the tokens are spent
 * elsewhere, so like any leased token they count as admitted here.
 */
int64_t au_ratelimit_take_local(au_ratelimit_t *rl, const char *bucket, int64_t max);

/* Policy text for the RateLimit-Policy header: `"<name>";q=<limit>;w=<window>`. */
void au_ratelimit_policy(const char *name, int64_t limit, int64_t window_s, char *out,
                         size_t out_size);

/* Database queries in flight (leases, refunds, sweeps): the drain waits for them. */
size_t au_ratelimit_busy(const au_ratelimit_t *rl);

/*
 * Stops taking checks (later ones fail with LC_ERR_UNAVAILABLE), gives unspent tokens back
 * (queries that still need the pool: close the limiter before the pool), and closes the
 * timer; done_cb(arg) (may be NULL) runs on the loop once the timer is closed. Waiters whose
 * lease query is in flight are answered when it returns.
 */
void au_ratelimit_close(au_ratelimit_t *rl, void (*done_cb)(void *arg), void *arg);

/* Frees a closed limiter once the pool's callbacks have all run (NULL is a no-op). */
void au_ratelimit_destroy(au_ratelimit_t *rl);

#endif
