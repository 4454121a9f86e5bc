/*
 * wh_consumer: the durable JetStream consumer "webhooks" on VOXI_EVENTS.
 *
 * It is a push consumer with a deliver group: JetStream sends each event to one member of
 * the queue group "webhooks" on WH_DELIVER_SUBJECT, so any number of instances share the
 * stream, with explicit acks and at most 4 * VOXI_WEBHOOKS_CONSUMER_BATCH events unacked
 * (flow control by max_ack_pending). Set-up goes through the JetStream API over plain
 * request/reply: $JS.API.STREAM.CREATE (lc_nats_js_ensure_stream), then
 * $JS.API.CONSUMER.CREATE.VOXI_EVENTS.webhooks, retried until it succeeds.
 *
 * Events that arrive in one loop turn (up to the batch size) are stored together: one
 * statement inserts a delivery for every enabled endpoint of the event's org whose filter
 * matches and that existed when the event happened, ON CONFLICT (endpoint, event) DO
 * NOTHING, so a redelivered event adds nothing. Only after that statement commits are the
 * events acked ("+ACK" to each message's reply subject): a crash before leaves them unacked
 * and JetStream redelivers them after ack_wait. When the insert fails they are nak'ed with a
 * delay. A malformed event is logged, counted and terminated ("+TERM").
 *
 * When the delivery engine has room, the insert also claims what it creates and hands it
 * over directly (the first attempt starts without another query).
 *
 * Threads: the loop thread.
 */
#ifndef WH_CONSUMER_H
#define WH_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>

#include "lc_status.h"
#include "wh_service.h"

#define WH_DELIVER_SUBJECT "voxi.webhooks.consumer.events"

lc_status_t wh_consumer_create(wh_service_t *ws, wh_consumer_t **out);
/* Subscribes and starts setting up the stream and consumer (retried until done). */
lc_status_t wh_consumer_start(wh_consumer_t *c);
/* The consumer exists on the server (for /readyz). */
bool wh_consumer_ready(const wh_consumer_t *c);
/* Unsubscribes; events already received are still stored and acked. */
void wh_consumer_stop(wh_consumer_t *c);
size_t wh_consumer_inflight(const wh_consumer_t *c);
void wh_consumer_close(wh_consumer_t *c, void (*done_cb)(void *arg), void *arg);
void wh_consumer_destroy(wh_consumer_t *c);

#endif
