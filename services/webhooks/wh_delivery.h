/*
 * wh_delivery: attempts, their outcome, and the schedule of the next one.
 *
 * Postgres is the queue. A delivery (one event for one endpoint) is due when it is
 * `pending` and next_attempt_at has passed; an instance takes it by setting locked_until
 * and locked_by (a lock of WH_LOCK_MS past the claim: a crashed instance's lock expires
 * and another instance picks the delivery up). Claimed deliveries become jobs in memory;
 * at most max_concurrent run at once (the rest wait in a FIFO), and after each attempt its
 * record, the delivery's new state (succeeded, failed, or pending with the next time) and
 * the endpoint's health go to the database in batches, one statement per batch.
 *
 * Jobs come from three places, all through wh_delivery_add_jobs with the same columns
 * (WH_JOB_COLUMNS): the event consumer right after it stored an event's deliveries (the
 * fast path, no second query), the poller (due retries, deliveries left over by another
 * instance, the backlog after a restart), and the API (manual retry, test event).
 *
 * The poller claims as much as there is room for, then sleeps until the next delivery is
 * due or VOXI_WEBHOOKS_POLL_INTERVAL_MS, whichever comes first; retries scheduled here
 * wake it at their due time.
 *
 * An endpoint answering 410 is disabled at once; one failing without a success for
 * VOXI_WEBHOOKS_DISABLE_AFTER_FAILING_S is disabled too. Either way its pending deliveries
 * fail, an audit row is written and an `endpoint.disabled` event is emitted.
 *
 * Threads: the loop thread.
 */
#ifndef WH_DELIVERY_H
#define WH_DELIVERY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "wh_service.h"

/*
 * The columns every query that hands jobs over selects, in this order, with the delivery as
 * `d` and its endpoint as `ep` (webhook_store_events and webhook_claim_due in
 * migrations/0004_webhooks.sql return the same).
 */
#define WH_JOB_COLUMNS                                                                             \
    "d.id, d.org_id, d.endpoint_id, d.event_id, d.event_type, d.payload, d.attempt_count, "        \
    "ep.url, ep.secret, "                                                                          \
    "CASE WHEN ep.previous_secret_expires_at > now() THEN ep.previous_secret END, "                \
    "(extract(epoch FROM d.event_created_at) * 1000)::bigint"
#define WH_JOB_NCOLUMNS 11

/* How long a claim holds a delivery: the attempt's timeout plus room to record it. */
#define WH_LOCK_MS(cfg) (2 * (cfg)->http_timeout_ms + 10000)

lc_status_t wh_delivery_create(wh_service_t *ws, wh_delivery_t **out);

/* Starts the poller (its first claim runs on the next loop turn: due work resumes). */
void wh_delivery_start(wh_delivery_t *d);

/*
 * Takes the rows of `res` from column `col0` on (WH_JOB_COLUMNS, claimed for this instance)
 * as jobs and starts them as capacity allows. Rows whose first column is NULL are skipped
 * (LEFT JOIN results). res is borrowed.
 */
void wh_delivery_add_jobs(wh_delivery_t *d, const PGresult *res, int col0);

/* Whether the consumer should claim what it stores (the fast path) or leave it to the
 * poller: false when enough jobs already wait in memory. */
bool wh_delivery_wants_more(const wh_delivery_t *d);

/* Something becomes due in `in_ms` (0 = now): makes the poller look by then. */
void wh_delivery_wake(wh_delivery_t *d, int64_t in_ms);

/* Stops claiming; jobs not started are released (their locks cleared) so another instance
 * can take them. Running attempts finish and are recorded. */
void wh_delivery_stop(wh_delivery_t *d);

/* Attempts running, results not yet written, claims and releases in progress. */
size_t wh_delivery_inflight(const wh_delivery_t *d);

/* Closes the timers; done_cb when they are closed. */
void wh_delivery_close(wh_delivery_t *d, void (*done_cb)(void *arg), void *arg);
void wh_delivery_destroy(wh_delivery_t *d);

#endif
