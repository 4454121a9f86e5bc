#include "md_events.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define STREAM "VOXI_EVENTS"
#define STREAM_SUBJECTS "voxi.events.>"
#define STREAM_MAX_AGE_S (7 * 24 * 3600)
#define STREAM_DUPLICATE_WINDOW_S 120
#define JS_TIMEOUT_MS 5000
#define ENSURE_RETRY_MS 500

struct md_events {
    lc_nats_t *nats;
    uv_timer_t retry;
    bool stopped;
    bool ready;
    bool ensuring;
    size_t inflight;
    lc_metric_t *ok, *failed;
};

typedef struct {
    md_events_t *ev;
    char id[32];
    char type[48];
} publish_t;

static void ensure_stream(md_events_t *ev);

static void
on_retry(uv_timer_t *t)
{
    ensure_stream(t->data);
}

static void
on_stream(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    (void) seq;
    (void) duplicate;
    md_events_t *ev = arg;
    ev->ensuring = false;
    if (status == LC_OK) {
        ev->ready = true;
        LC_INFO("events", "stream %s ready", STREAM);
        return;
    }
    LC_LOG_RL(LC_LOG_WARN, "events", 1, "stream %s not ensured yet: %s; retrying", STREAM,
              lc_status_name(status));
    if (!ev->stopped)
        uv_timer_start(&ev->retry, on_retry, ENSURE_RETRY_MS, 0);
}

static void
ensure_stream(md_events_t *ev)
{
    if (ev->stopped || ev->ready || ev->ensuring)
        return;
    lc_status_t st =
        lc_nats_js_ensure_stream(ev->nats, STREAM, STREAM_SUBJECTS, STREAM_MAX_AGE_S,
                                 STREAM_DUPLICATE_WINDOW_S, JS_TIMEOUT_MS, on_stream, ev);
    if (st == LC_OK)
        ev->ensuring = true;
    else /* not connected yet, the usual case at start */
        uv_timer_start(&ev->retry, on_retry, ENSURE_RETRY_MS, 0);
}

md_events_t *
md_events_create(uv_loop_t *loop, lc_nats_t *nats, lc_metrics_t *metrics)
{
    md_events_t *ev = LC_NEW(md_events_t);
    ev->nats = nats;
    const char *name = "voxi_media_events_total";
    const char *help = "call events published to JetStream, by outcome";
    ev->ok = lc_metrics_counter(metrics, name, help, "outcome=\"ok\"");
    ev->failed = lc_metrics_counter(metrics, name, help, "outcome=\"failed\"");
    uv_timer_init(loop, &ev->retry);
    uv_unref((uv_handle_t *) &ev->retry);
    ev->retry.data = ev;
    uv_timer_start(&ev->retry, on_retry, 0, 0);
    return ev;
}

static void
on_published(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    (void) duplicate;
    publish_t *p = arg;
    p->ev->inflight--;
    if (status == LC_OK) {
        lc_metric_inc(p->ev->ok);
        LC_DEBUG("events", "%s (%s) published as seq %llu", p->id, p->type,
                 (unsigned long long) seq);
    } else {
        lc_metric_inc(p->ev->failed);
        LC_LOG_RL(LC_LOG_WARN, "events", 2, "event %s (%s) not published: %s", p->id, p->type,
                  lc_status_name(status));
    }
    free(p);
}

void
md_events_publish(md_events_t *ev, const char *org_id, const char *type, json_t *data)
{
    publish_t *p = LC_NEW(publish_t);
    p->ev = ev;
    lc_id_new("evt_", p->id, sizeof(p->id));
    snprintf(p->type, sizeof(p->type), "%s", type);
    char now[32];
    lc_time_format_rfc3339(lc_time_wall_ms(), now, sizeof(now));
    json_t *event = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", p->id, "type", type, "created_at",
                              now, "org_id", org_id, "data", data);
    char *text = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);
    char subject[160];
    snprintf(subject, sizeof(subject), "voxi.events.%s.%s", org_id, type);
    lc_status_t st = text ? lc_nats_js_publish(ev->nats, subject, p->id, text, strlen(text),
                                               JS_TIMEOUT_MS, on_published, p)
                          : LC_ERR_INTERNAL;
    free(text);
    if (st != LC_OK) {
        lc_metric_inc(ev->failed);
        LC_LOG_RL(LC_LOG_WARN, "events", 2, "event %s (%s) not published: %s", p->id, type,
                  lc_status_name(st));
        free(p);
        return;
    }
    LC_DEBUG("events", "publishing %s (%s)", p->id, type);
    ev->inflight++;
}

size_t
md_events_inflight(const md_events_t *ev)
{
    return ev ? ev->inflight : 0;
}

void
md_events_stop(md_events_t *ev)
{
    if (ev == NULL || ev->stopped)
        return;
    ev->stopped = true;
    uv_timer_stop(&ev->retry);
    uv_close((uv_handle_t *) &ev->retry, NULL);
}

void
md_events_destroy(md_events_t *ev)
{
    free(ev);
}
