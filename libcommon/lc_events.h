/*
 * lc_events: the platform's change and call events on JetStream, for every service that
 * publishes them (auth, registry, webhooks, media).
 *
 * At create it starts ensuring the stream VOXI_EVENTS (subjects voxi.events.>, kept 7 days,
 * 120 s duplicate window), retrying every 500 ms until NATS answers. An event is
 *   {"id":"evt_...","type":"agent.created","created_at":"<RFC 3339>","org_id":"org_...",
 *    "data":{...}}
 * published to voxi.events.<org_id>.<type> with Nats-Msg-Id = the event id, so a retried
 * publish is stored once. A publish that fails is logged (rate-limited) and counted in the
 * counter named at create, label outcome="ok"|"failed"|"duplicate"; the caller goes on.
 *
 * Threads: the loop thread only (publish acks arrive there through lc_nats).
 */
#ifndef LC_EVENTS_H
#define LC_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"

#define LC_EVENTS_STREAM "VOXI_EVENTS"
#define LC_EVENTS_SUBJECTS "voxi.events.>"
#define LC_EVENTS_ID_SIZE 32

typedef struct lc_events lc_events_t;

/* Borrows loop, nats and metrics (they outlive it). metric_name/help name the counter
 * (e.g. "voxi_media_events_total"). Starts ensuring the stream at once. */
lc_events_t *lc_events_create(uv_loop_t *loop, lc_nats_t *nats, lc_metrics_t *metrics,
                              const char *metric_name, const char *metric_help);

/* The stream has been ensured (a service may report not-ready until then). */
bool lc_events_ready(const lc_events_t *ev);

/* Publishes one event. data is taken (NULL = {}). org_id and type must be non-empty subject
 * tokens (no '.', '*', '>' or white space in org_id; type is dotted like "call.ended"); a bad
 * one is logged and counted as failed. If id_out is not NULL it receives the event id
 * (LC_EVENTS_ID_SIZE bytes), also when the publish fails. */
void lc_events_publish(lc_events_t *ev, const char *org_id, const char *type, json_t *data,
                       char *id_out);

/* Publishes waiting for their acknowledgement (a drain waits for them). NULL → 0. */
size_t lc_events_inflight(const lc_events_t *ev);

/* Stops retrying the stream and closes the timer. Idempotent; NULL is a no-op. */
void lc_events_stop(lc_events_t *ev);

/* After lc_events_stop and after the loop has run the close (acks still in flight then are
 * lost with the loop). NULL is a no-op. */
void lc_events_destroy(lc_events_t *ev);

#endif
