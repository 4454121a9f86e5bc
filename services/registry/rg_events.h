/*
 * rg_events: the registry's change events on JetStream.
 *
 * At start it makes sure the stream VOXI_EVENTS (subjects voxi.events.>, 7 days, 120 s
 * duplicate window) exists, retrying until NATS answers; the service is not ready before.
 * Changes are published after their database commit as
 *   {"id":"evt_...","type":"agent.created","created_at":"...","org_id":"org_...","data":{...}}
 * to voxi.events.<org_id>.<type> with Nats-Msg-Id = the event id. A publish that fails is
 * logged and counted (voxi_registry_events_total{outcome}); a later issue adds an outbox.
 *
 * Threads: loop thread only.
 */
#ifndef RG_EVENTS_H
#define RG_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"

#define RG_EVENTS_STREAM "VOXI_EVENTS"
#define RG_EVENTS_SUBJECTS "voxi.events.>"

typedef struct rg_events rg_events_t;

/* Borrows loop, nats and metrics (they outlive it). Starts ensuring the stream. */
rg_events_t *rg_events_create(uv_loop_t *loop, lc_nats_t *nats, lc_metrics_t *metrics);

/* The stream is known to exist. */
bool rg_events_ready(const rg_events_t *ev);

/* Publishes one event (org_id and type are checked by the caller to be subject-safe);
 * data is borrowed. */
void rg_events_publish(rg_events_t *ev, const char *org_id, const char *type, const json_t *data);

/* Publishes (and the stream request) waiting for JetStream's answer. */
size_t rg_events_inflight(const rg_events_t *ev);

/* Stops retrying the stream (closes the retry timer); publishes still in flight finish. */
void rg_events_stop(rg_events_t *ev);

/* After the loop has ended (every callback ran). NULL is a no-op. */
void rg_events_destroy(rg_events_t *ev);

#endif
