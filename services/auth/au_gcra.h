/*
 * au_gcra: the arithmetic of the Generic Cell Rate Algorithm (ITU-T I.371, the "virtual
 * scheduling" form) that the rate limiter uses, kept apart so it can be tested alone.
 *
 * A limit of `limit` requests per `window_ms` has emission interval T = window / limit and
 * burst tolerance tau = burst * T. A bucket's whole state is its theoretical arrival time
 * (tat): a request at `now` conforms when max(tat, now) + T <= now + tau, and then tat
 * advances by T. Everything else is derived from the bucket's debt, tat - now:
 *
 *   remaining   = floor((tau - debt) / T)      requests that would conform right now
 *   retry after = debt + T - tau               until the next request conforms
 *   reset       = debt                         until the bucket is full again
 *
 * The database runs the same rule in SQL (ratelimit.c) to take n tokens at once; the C
 * version here is what the unit tests check the formulas with, and what the limiter uses
 * to turn the database's answer into header values.
 *
 * Times are integer microseconds. Threads: any (pure functions).
 */
#ifndef AU_GCRA_H
#define AU_GCRA_H

#include <stdint.h>

typedef struct {
    int64_t limit;        /* requests per window, >= 1 */
    int64_t window_ms;    /* >= 1 */
    int64_t burst;        /* requests that may come at once, 1..limit */
    int64_t interval_us;  /* T */
    int64_t tolerance_us; /* tau = burst * T */
} au_gcra_t;

/* Sets the parameters; limit, window_ms and burst are clamped to their valid ranges
 * (burst <= 0 means burst = limit). */
void au_gcra_init(au_gcra_t *g, int64_t limit, int64_t window_ms, int64_t burst);

/*
 * Takes up to n tokens (n >= 1) from a bucket whose tat is *tat_us (0 for a bucket never
 * used) at time now_us: returns how many conform (0..n, as many as fit) and advances *tat_us
 * by that many intervals. The same rule as the SQL lease.
 */
int64_t au_gcra_take(const au_gcra_t *g, int64_t *tat_us, int64_t now_us, int64_t n);

/* Requests that would conform now, 0..burst, for debt = tat - now (negative = 0). */
int64_t au_gcra_remaining(const au_gcra_t *g, int64_t debt_us);

/* Microseconds until one more request conforms (0 when one does now). */
int64_t au_gcra_retry_after_us(const au_gcra_t *g, int64_t debt_us);

/* Microseconds until the bucket is full again (0 when it is). */
int64_t au_gcra_reset_us(const au_gcra_t *g, int64_t debt_us);

/* Largest lease an instance takes at once: about 2% of the limit, at least 1 and at most
 * the burst. Every instance can hold at most this many tokens it has not spent yet, which
 * bounds how far below the limit the admitted count can fall. */
int64_t au_gcra_lease_max(const au_gcra_t *g);

/* Whole seconds for a microsecond duration, rounded up (0 stays 0). */
int64_t au_gcra_ceil_s(int64_t us);

#endif
