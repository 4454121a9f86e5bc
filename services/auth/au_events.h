/*
 * au_events: auth's change events (org.created, api_key.created, api_key.revoked) into the
 * JetStream stream VOXI_EVENTS.
 *
 * At start the stream is ensured (subjects voxi.events.>, 7 days, 120 s duplicate window),
 * retried every 500 ms until NATS is there. An event is published after its change is
 * committed, as {"id":"evt_...","type":...,"created_at":...,"org_id":...,"data":{...}} to
 * voxi.events.<org_id>.<type> with Nats-Msg-Id = the event id. A publish that fails is
 * logged and counted (voxi_auth_events_total{outcome="failed"}); the API caller still gets
 * its answer, since the change is committed.
 *
 * Threads: the loop thread only.
 */
#ifndef AU_EVENTS_H
#define AU_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"

typedef struct au_events au_events_t;

/* nats and metrics are borrowed and must outlive the events object. */
au_events_t *au_events_create(uv_loop_t *loop, lc_nats_t *nats, lc_metrics_t *metrics);

/* data is taken (the object that changed, never a secret). */
void au_events_publish(au_events_t *ev, const char *org_id, const char *type, json_t *data);

/* Publishes waiting for their acknowledgement (the drain waits for them). */
size_t au_events_inflight(const au_events_t *ev);

/* Stops retrying the stream and closes the timer; call before the loop's last run. */
void au_events_stop(au_events_t *ev);

/* After the loop ended (NATS closed, its callbacks run). NULL is a no-op. */
void au_events_destroy(au_events_t *ev);

#endif
