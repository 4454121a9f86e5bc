#include "rg_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "rg_json.h"

#define STREAM_MAX_AGE_S (7 * 24 * 3600)
#define STREAM_DUPLICATE_WINDOW_S 120
#define JS_TIMEOUT_MS 5000
#define ENSURE_RETRY_MS 500

struct rg_events {
    uv_loop_t *loop;
    lc_nats_t *nats;
    uv_timer_t retry;
    bool timer_open;
    bool stopped;
    bool ready;
    bool ensuring;   /* a stream request is in flight (not counted as work in progress) */
    size_t inflight; /* publishes waiting for their ack */
    lc_metric_t *published_ok, *published_failed, *duplicates;
};

static void ensure_stream(rg_events_t *ev);

static void
on_retry(uv_timer_t *t)
{
    ensure_stream(t->data);
}

static void
retry_later(rg_events_t *ev)
{
    if (!ev->stopped && ev->timer_open)
        uv_timer_start(&ev->retry, on_retry, ENSURE_RETRY_MS, 0);
}

static void
on_stream(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    (void) seq;
    (void) duplicate;
    rg_events_t *ev = arg;
    ev->ensuring = false;
    if (status == LC_OK) {
        ev->ready = true;
        LC_INFO("events", "stream %s ready", RG_EVENTS_STREAM);
        return;
    }
    LC_LOG_RL(LC_LOG_WARN, "events", 1, "stream %s not ensured yet: %s; retrying", RG_EVENTS_STREAM,
              lc_status_name(status));
    retry_later(ev);
}

static void
ensure_stream(rg_events_t *ev)
{
    if (ev->stopped || ev->ready || ev->ensuring)
        return;
    lc_status_t st =
        lc_nats_js_ensure_stream(ev->nats, RG_EVENTS_STREAM, RG_EVENTS_SUBJECTS, STREAM_MAX_AGE_S,
                                 STREAM_DUPLICATE_WINDOW_S, JS_TIMEOUT_MS, on_stream, ev);
    if (st == LC_OK) {
        ev->ensuring = true;
        return;
    }
    /* not connected yet (the usual case at start): try again shortly */
    retry_later(ev);
}

rg_events_t *
rg_events_create(uv_loop_t *loop, lc_nats_t *nats, lc_metrics_t *metrics)
{
    rg_events_t *ev = LC_NEW(rg_events_t);
    ev->loop = loop;
    ev->nats = nats;
    ev->published_ok = lc_metrics_counter(metrics, "voxi_registry_events_total",
                                          "change events published, by outcome", "outcome=\"ok\"");
    ev->published_failed =
        lc_metrics_counter(metrics, "voxi_registry_events_total",
                           "change events published, by outcome", "outcome=\"failed\"");
    ev->duplicates =
        lc_metrics_counter(metrics, "voxi_registry_events_total",
                           "change events published, by outcome", "outcome=\"duplicate\"");
    uv_timer_init(loop, &ev->retry);
    ev->retry.data = ev;
    ev->timer_open = true;
    uv_timer_start(&ev->retry, on_retry, 0, 0);
    return ev;
}

bool
rg_events_ready(const rg_events_t *ev)
{
    return ev->ready;
}

typedef struct {
    rg_events_t *ev;
    char id[32];
    char subject[160];
} publish_ctx_t;

static void
on_ack(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    publish_ctx_t *p = arg;
    rg_events_t *ev = p->ev;
    ev->inflight--;
    if (status == LC_OK) {
        lc_metric_inc(duplicate ? ev->duplicates : ev->published_ok);
        LC_DEBUG("events", "%s published to %s as seq %llu", p->id, p->subject,
                 (unsigned long long) seq);
    } else {
        lc_metric_inc(ev->published_failed);
        LC_WARN("events", "%s to %s not published: %s", p->id, p->subject, lc_status_name(status));
    }
    free(p);
}

void
rg_events_publish(rg_events_t *ev, const char *org_id, const char *type, const json_t *data)
{
    publish_ctx_t *p = LC_NEW(publish_ctx_t);
    p->ev = ev;
    lc_id_new("evt_", p->id, sizeof(p->id));
    snprintf(p->subject, sizeof(p->subject), "voxi.events.%s.%s", org_id, type);
    json_t *event = json_object();
    json_object_set_new(event, "id", json_string(p->id));
    json_object_set_new(event, "type", json_string(type));
    char now[32];
    lc_time_format_rfc3339(lc_time_wall_ms(), now, sizeof(now));
    json_object_set_new(event, "created_at", json_string(now));
    json_object_set_new(event, "org_id", json_string(org_id));
    json_object_set(event, "data", (json_t *) data);
    char *text = rg_json_dumps(event);
    json_decref(event);
    lc_status_t st = lc_nats_js_publish(ev->nats, p->subject, p->id, text, strlen(text),
                                        JS_TIMEOUT_MS, on_ack, p);
    free(text);
    if (st != LC_OK) {
        lc_metric_inc(ev->published_failed);
        LC_WARN("events", "%s to %s not published: %s", p->id, p->subject, lc_status_name(st));
        free(p);
        return;
    }
    ev->inflight++;
}

size_t
rg_events_inflight(const rg_events_t *ev)
{
    return ev ? ev->inflight : 0;
}

void
rg_events_stop(rg_events_t *ev)
{
    if (ev == NULL || ev->stopped)
        return;
    ev->stopped = true;
    if (ev->timer_open) {
        ev->timer_open = false;
        uv_close((uv_handle_t *) &ev->retry, NULL);
    }
}

void
rg_events_destroy(rg_events_t *ev)
{
    free(ev);
}
