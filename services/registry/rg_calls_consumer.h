/*
 * rg_calls_consumer: keeps the calls table up to date from the call events on JetStream.
 *
 * A durable push consumer "registry_calls" on the stream VOXI_EVENTS, filter
 * voxi.events.*.call.>, delivered to RG_CALLS_DELIVER_SUBJECT in the queue group "registry"
 * (any number of registry instances share it), explicit acks, at most
 * RG_CALLS_MAX_ACK_PENDING unacked. It is created through $JS.API.CONSUMER.CREATE (plain
 * request/reply), retried every second until it succeeds (the stream is ensured by the
 * service's lc_events).
 *
 * Events of one loop turn are applied together by one statement (calls_apply_events in
 * migrations/0005_calls.sql): each event id is applied once (call_events_applied), the
 * status only moves forward, turns are upserted by index. Only after that statement commits
 * are the events acked; when it fails they are nak'ed with a delay and come again. One
 * statement runs at a time (events arriving meanwhile wait for the next one), so two
 * batches of one instance never lock the same calls in opposite orders. A malformed event is
 * logged, counted and terminated (+TERM).
 *
 * Threads: the loop thread only.
 */
#ifndef RG_CALLS_CONSUMER_H
#define RG_CALLS_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_pg.h"
#include "lc_status.h"

#define RG_CALLS_DURABLE "registry_calls"
#define RG_CALLS_DELIVER_SUBJECT "voxi.registry.consumer.calls"
#define RG_CALLS_FILTER "voxi.events.*.call.>"
#define RG_CALLS_MAX_ACK_PENDING 256

typedef struct rg_calls_consumer rg_calls_consumer_t;

/* Borrows everything (it must outlive the consumer). ack_wait_ms: JetStream redelivers an
 * event not acked within it. */
rg_calls_consumer_t *rg_calls_consumer_create(uv_loop_t *loop, lc_nats_t *nats, lc_pg_pool_t *pg,
                                              lc_metrics_t *metrics, int64_t ack_wait_ms);
/* Subscribes and starts creating the consumer on the server. */
lc_status_t rg_calls_consumer_start(rg_calls_consumer_t *c);
/* The consumer exists on the server. */
bool rg_calls_consumer_ready(const rg_calls_consumer_t *c);
/* Unsubscribes and closes the timers; events received are still applied and acked. */
void rg_calls_consumer_stop(rg_calls_consumer_t *c);
/* Events received and not acked yet. */
size_t rg_calls_consumer_inflight(const rg_calls_consumer_t *c);
/* After stop, once the loop has run the closes and nothing is in flight. NULL: no-op. */
void rg_calls_consumer_destroy(rg_calls_consumer_t *c);

#endif
