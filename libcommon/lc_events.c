#include "lc_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define STREAM_MAX_AGE_S (7 * 24 * 3600)
#define STREAM_DUPLICATE_WINDOW_S 120
#define JS_TIMEOUT_MS 5000
#define ENSURE_RETRY_MS 500
#define ORG_MAX 64
#define TYPE_MAX 64

struct lc_events {
    lc_nats_t *nats;
    uv_timer_t retry;
    bool timer_open;
    bool stopped;
    bool ready;
    bool ensuring; /* a stream request is in flight */
    size_t inflight;
    lc_metric_t *ok, *failed, *duplicate;
};

typedef struct {
    lc_events_t *ev;
    char id[LC_EVENTS_ID_SIZE];
    char type[TYPE_MAX + 1];
} publish_t;

static void ensure_stream(lc_events_t *ev);

static void
on_retry(uv_timer_t *t)
{
    ensure_stream(t->data);
}

static void
retry_later(lc_events_t *ev)
{
    if (!ev->stopped && ev->timer_open)
        uv_timer_start(&ev->retry, on_retry, ENSURE_RETRY_MS, 0);
}

static void
on_stream(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    (void) seq;
    (void) duplicate;
    lc_events_t *ev = arg;
    ev->ensuring = false;
    if (status == LC_OK) {
        ev->ready = true;
        LC_INFO("events", "stream %s ready", LC_EVENTS_STREAM);
        return;
    }
    LC_LOG_RL(LC_LOG_WARN, "events", 1, "stream %s not ensured yet: %s; retrying", LC_EVENTS_STREAM,
              lc_status_name(status));
    retry_later(ev);
}

static void
ensure_stream(lc_events_t *ev)
{
    if (ev->stopped || ev->ready || ev->ensuring)
        return;
    lc_status_t st =
        lc_nats_js_ensure_stream(ev->nats, LC_EVENTS_STREAM, LC_EVENTS_SUBJECTS, STREAM_MAX_AGE_S,
                                 STREAM_DUPLICATE_WINDOW_S, JS_TIMEOUT_MS, on_stream, ev);
    if (st == LC_OK)
        ev->ensuring = true;
    else /* not connected yet, the usual case at start */
        retry_later(ev);
}

lc_events_t *
lc_events_create(uv_loop_t *loop, lc_nats_t *nats, lc_metrics_t *metrics, const char *metric_name,
                 const char *metric_help)
{
    lc_events_t *ev = LC_NEW(lc_events_t);
    ev->nats = nats;
    ev->ok = lc_metrics_counter(metrics, metric_name, metric_help, "outcome=\"ok\"");
    ev->failed = lc_metrics_counter(metrics, metric_name, metric_help, "outcome=\"failed\"");
    ev->duplicate = lc_metrics_counter(metrics, metric_name, metric_help, "outcome=\"duplicate\"");
    uv_timer_init(loop, &ev->retry);
    uv_unref((uv_handle_t *) &ev->retry);
    ev->retry.data = ev;
    ev->timer_open = true;
    uv_timer_start(&ev->retry, on_retry, 0, 0);
    return ev;
}

bool
lc_events_ready(const lc_events_t *ev)
{
    return ev != NULL && ev->ready;
}

static void
on_published(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    publish_t *p = arg;
    p->ev->inflight--;
    if (status == LC_OK) {
        lc_metric_inc(duplicate ? p->ev->duplicate : p->ev->ok);
        LC_DEBUG("events", "%s (%s) published as seq %llu%s", p->id, p->type,
                 (unsigned long long) seq, duplicate ? " (duplicate)" : "");
    } else {
        lc_metric_inc(p->ev->failed);
        LC_LOG_RL(LC_LOG_WARN, "events", 2, "event %s (%s) not published: %s", p->id, p->type,
                  lc_status_name(status));
    }
    free(p);
}

/* A subject token: 1..max characters, none of them '.' (unless dots allowed), '*', '>' or
 * white space, no empty dotted part. */
static bool
token_ok(const char *s, size_t max, bool dots)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c <= ' ' || c == '*' || c == '>' || c == 0x7f || (c == '.' && !dots) ||
            (c == '.' && s[i + 1] == '.'))
            return false;
    }
    return true;
}

void
lc_events_publish(lc_events_t *ev, const char *org_id, const char *type, json_t *data, char *id_out)
{
    publish_t *p = LC_NEW(publish_t);
    p->ev = ev;
    lc_id_new("evt_", p->id, sizeof(p->id));
    snprintf(p->type, sizeof(p->type), "%s", type ? type : "");
    if (id_out)
        memcpy(id_out, p->id, sizeof(p->id));
    if (data == NULL)
        data = json_object();
    lc_status_t st = LC_ERR_INVALID;
    char *text = NULL;
    if (token_ok(org_id, ORG_MAX, false) && token_ok(type, TYPE_MAX, true)) {
        char now[32];
        lc_time_format_rfc3339(lc_time_wall_ms(), now, sizeof(now));
        json_t *event = json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", p->id, "type", type,
                                  "created_at", now, "org_id", org_id, "data", data);
        text = event ? json_dumps(event, JSON_COMPACT) : NULL;
        json_decref(event);
        st = LC_ERR_INTERNAL;
    }
    json_decref(data); /* "O" took its own reference */
    if (text) {
        char subject[160];
        snprintf(subject, sizeof(subject), "voxi.events.%s.%s", org_id, type);
        st = lc_nats_js_publish(ev->nats, subject, p->id, text, strlen(text), JS_TIMEOUT_MS,
                                on_published, p);
        free(text);
    }
    if (st != LC_OK) {
        lc_metric_inc(ev->failed);
        LC_LOG_RL(LC_LOG_WARN, "events", 2, "event %s (%s) not published: %s", p->id, p->type,
                  lc_status_name(st));
        free(p);
        return;
    }
    LC_DEBUG("events", "publishing %s (%s)", p->id, p->type);
    ev->inflight++;
}

size_t
lc_events_inflight(const lc_events_t *ev)
{
    return ev ? ev->inflight : 0;
}

void
lc_events_stop(lc_events_t *ev)
{
    if (ev == NULL || ev->stopped)
        return;
    ev->stopped = true;
    if (ev->timer_open) {
        ev->timer_open = false;
        uv_timer_stop(&ev->retry);
        uv_close((uv_handle_t *) &ev->retry, NULL);
    }
}

void
lc_events_destroy(lc_events_t *ev)
{
    free(ev);
}
