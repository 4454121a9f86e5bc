/*
 * wh_retry: what happens after a delivery attempt (the rules of issue 6).
 *
 *   - 2xx: delivered. Any other status, a timeout or a connection error: retry. Redirects
 *     are failures like any non-2xx (they are never followed).
 *   - 410 Gone: the delivery fails now and the endpoint is disabled.
 *   - Attempts happen immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after
 *     the previous one (8 attempts), each delay multiplied by the configured scale and a
 *     jitter factor in [0.8, 1.2).
 *   - 429 and 503 with Retry-After (RFC 9110 10.2.3: delay-seconds or an HTTP-date): the
 *     next attempt waits at least that long (bounded by WH_RETRY_AFTER_MAX_MS; not scaled,
 *     it is the receiver's word).
 *
 * Threads: any; pure functions.
 */
#ifndef WH_RETRY_H
#define WH_RETRY_H

#include <stdint.h>

#define WH_MAX_ATTEMPTS 8
#define WH_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

typedef enum {
    WH_OUTCOME_SUCCEEDED = 0, /* 2xx */
    WH_OUTCOME_RETRY,         /* another attempt is scheduled */
    WH_OUTCOME_FAILED,        /* attempts exhausted */
    WH_OUTCOME_GONE,          /* 410: failed, and the endpoint is disabled */
} wh_outcome_t;

const char *wh_outcome_name(wh_outcome_t o);

/* The unscaled delay before attempt `attempt` (1-based; attempt 1 is immediate), or -1 past
 * WH_MAX_ATTEMPTS. */
int64_t wh_retry_base_delay_ms(int attempt);

/*
 * The delay before the attempt after `attempts_done` attempts: base delay * scale * jitter,
 * where jitter = 0.8 + 0.4 * jitter_unit (jitter_unit in [0, 1)). -1 when attempts_done
 * >= WH_MAX_ATTEMPTS.
 */
int64_t wh_retry_delay_ms(int attempts_done, double scale, double jitter_unit);

/* Parses a Retry-After value relative to now_wall_ms; returns milliseconds (>= 0, capped at
 * WH_RETRY_AFTER_MAX_MS), or -1 when value is NULL or malformed. */
int64_t wh_retry_after_parse_ms(const char *value, int64_t now_wall_ms);

/*
 * Decides the outcome of attempt number `attempt` (1-based). http_status is 0 when no
 * response arrived; retry_after_ms is the parsed Retry-After (-1 when absent), honoured only
 * on 429 and 503. On WH_OUTCOME_RETRY *delay_ms gets the wait before the next attempt.
 */
wh_outcome_t wh_retry_decide(int attempt, int http_status, int64_t retry_after_ms, double scale,
                             double jitter_unit, int64_t *delay_ms);

#endif
