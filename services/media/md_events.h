/*
 * md_events: call events into the JetStream stream VOXI_EVENTS (call.started, call.ringing,
 * call.answered, call.dtmf, call.transferred, call.ended, call.failed).
 *
 * Like the other services, the stream is ensured at start (subjects voxi.events.>, 7 days,
 * 120 s duplicate window), retried every 500 ms until NATS is there. An event is
 * {"id":"evt_...","type":...,"created_at":...,"org_id":...,"data":{...}} published to
 * voxi.events.<org_id>.<type> with Nats-Msg-Id = the event id. The org id is the configured
 * default org until numbers are resolved through the registry. A publish that fails is
 * logged and counted (voxi_media_events_total{outcome="failed"}); the call goes on.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_EVENTS_H
#define MD_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"

typedef struct md_events md_events_t;

/* nats and metrics are borrowed and must outlive the object. */
md_events_t *md_events_create(uv_loop_t *loop, lc_nats_t *nats, lc_metrics_t *metrics);

/* data is taken. org_id: the tenant; type: "call.started" etc. */
void md_events_publish(md_events_t *ev, const char *org_id, const char *type, json_t *data);

/* Publishes waiting for their acknowledgement (the drain waits for them). */
size_t md_events_inflight(const md_events_t *ev);

/* Stops retrying the stream and closes the timer. */
void md_events_stop(md_events_t *ev);

/* After the loop ended. NULL is a no-op. */
void md_events_destroy(md_events_t *ev);

#endif
