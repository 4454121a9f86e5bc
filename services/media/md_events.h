/*
 * md_events: call events (call.started, call.ringing, call.answered, call.dtmf,
 * call.transferred, call.interrupted, call.transcript, call.ended, call.failed) into the
 * JetStream stream VOXI_EVENTS, through lc_events (envelope, subject voxi.events.<org>.<type>,
 * Nats-Msg-Id, stream ensured at start). This header only names the media worker's counter
 * (voxi_media_events_total{outcome}). A publish that fails is logged and counted; the call
 * goes on.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_EVENTS_H
#define MD_EVENTS_H

#include "lc_events.h"

typedef struct lc_events md_events_t;

/* nats and metrics are borrowed and must outlive the object. */
static inline md_events_t *
md_events_create(uv_loop_t *loop, lc_nats_t *nats, lc_metrics_t *metrics)
{
    return lc_events_create(loop, nats, metrics, "voxi_media_events_total",
                            "call events published to JetStream, by outcome");
}

/* data is taken. org_id: the tenant; type: "call.started" etc. */
static inline void
md_events_publish(md_events_t *ev, const char *org_id, const char *type, json_t *data)
{
    lc_events_publish(ev, org_id, type, data, NULL);
}

static inline size_t
md_events_inflight(const md_events_t *ev)
{
    return lc_events_inflight(ev);
}

static inline void
md_events_stop(md_events_t *ev)
{
    lc_events_stop(ev);
}

static inline void
md_events_destroy(md_events_t *ev)
{
    lc_events_destroy(ev);
}

#endif
