/*
 * The call-event consumer (rg_calls_consumer.h).
 */
#include "rg_calls_consumer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_events.h"
#include "lc_log.h"
#include "lc_time.h"
#include "rg_calls.h"
#include "rg_json.h"

#define SETUP_RETRY_MS 1000
#define SETUP_TIMEOUT_MS 5000
#define BATCH_MAX 128
#define NAK_DELAY_NS 1000000000LL /* redelivery delay after a failed statement */
#define REPLY_MAX 512

typedef struct {
    json_t *items; /* [{"seq": n, "event": {...}}, ...] */
    char **replies;
    size_t n, cap;
    int64_t started_mono_ms;
} batch_t;

struct rg_calls_consumer {
    uv_loop_t *loop;
    lc_nats_t *nats;
    lc_pg_pool_t *pg;
    int64_t ack_wait_ms;
    lc_nats_sub_t *sub;
    uv_timer_t setup_timer, batch_timer;
    bool ready, setting_up, stopping, batch_armed;
    batch_t *open;    /* collecting */
    batch_t *running; /* its statement runs */
    lc_metric_t *m_applied, *m_duplicate, *m_ignored, *m_invalid, *m_failed, *m_seconds;
};

static void flush(rg_calls_consumer_t *c);
static void on_batch_timer(uv_timer_t *t);

/* ---- batches ---- */

static batch_t *
batch_new(void)
{
    batch_t *b = LC_NEW(batch_t);
    b->items = json_array();
    return b;
}

static void
batch_free(batch_t *b)
{
    if (b == NULL)
        return;
    json_decref(b->items);
    for (size_t i = 0; i < b->n; i++)
        free(b->replies[i]);
    free(b->replies);
    free(b);
}

static void
reply_all(rg_calls_consumer_t *c, batch_t *b, const char *what)
{
    for (size_t i = 0; i < b->n; i++) {
        lc_status_t st = lc_nats_publish(c->nats, b->replies[i], what, strlen(what));
        if (st != LC_OK) /* the event comes again after ack_wait; applying it is idempotent */
            LC_LOG_RL(LC_LOG_WARN, "calls", 1, "ack not sent: %s", lc_status_name(st));
    }
}

static void
arm(rg_calls_consumer_t *c)
{
    if (!c->batch_armed && !c->stopping) {
        c->batch_armed = true;
        uv_timer_start(&c->batch_timer, on_batch_timer, 0, 0);
    }
}

static void
on_applied(lc_status_t status, PGresult *res, void *arg)
{
    rg_calls_consumer_t *c = arg;
    batch_t *b = c->running;
    c->running = NULL;
    if (status != LC_OK) {
        lc_metric_add(c->m_failed, (double) b->n);
        LC_LOG_RL(LC_LOG_WARN, "calls", 1, "applying %zu call events failed (%s); redelivered",
                  b->n, lc_status_name(status));
        char nak[64];
        snprintf(nak, sizeof(nak), "-NAK {\"delay\":%lld}", (long long) NAK_DELAY_NS);
        reply_all(c, b, nak);
        batch_free(b);
    } else {
        /* committed: now, and only now, JetStream may forget them */
        reply_all(c, b, "+ACK");
        int rows = PQntuples(res);
        for (int r = 0; r < rows; r++) {
            const char *outcome = PQgetvalue(res, r, 0);
            if (strcmp(outcome, "applied") == 0) {
                lc_metric_inc(c->m_applied);
            } else if (strcmp(outcome, "duplicate") == 0) {
                lc_metric_inc(c->m_duplicate);
            } else {
                lc_metric_inc(strncmp(outcome, "ignored", 7) == 0 ? c->m_ignored : c->m_invalid);
                json_t *ev = json_object_get(json_array_get(b->items, (size_t) r), "event");
                LC_LOG_RL(LC_LOG_WARN, "calls", 1, "call event %s (%s) not stored: %s",
                          json_string_value(json_object_get(ev, "id")),
                          json_string_value(json_object_get(ev, "type")), outcome);
            }
        }
        lc_metric_observe(c->m_seconds, (double) (lc_time_mono_ms() - b->started_mono_ms) / 1000.0);
        LC_DEBUG("calls", "applied %zu call events", b->n);
        batch_free(b);
    }
    if (c->open != NULL)
        flush(c);
}

static void
flush(rg_calls_consumer_t *c)
{
    if (c->running != NULL || c->open == NULL)
        return; /* the running statement's completion flushes */
    batch_t *b = c->open;
    c->open = NULL;
    c->running = b;
    b->started_mono_ms = lc_time_mono_ms();
    char *text = rg_json_dumps(b->items);
    const char *params[] = {text};
    lc_status_t st = lc_pg_query(c->pg, "SELECT outcome FROM calls_apply_events($1::jsonb)", 1,
                                 params, on_applied, c);
    free(text);
    if (st != LC_OK)
        on_applied(st, NULL, c);
}

static void
on_batch_timer(uv_timer_t *t)
{
    rg_calls_consumer_t *c = t->data;
    c->batch_armed = false;
    flush(c);
}

static void
on_event(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    rg_calls_consumer_t *c = arg;
    const char *reply = lc_nats_msg_reply(msg);
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0 || strlen(reply) > REPLY_MAX)
        return; /* not a JetStream delivery */
    char why[160];
    json_t *ev = rg_call_event_check(lc_nats_msg_data(msg), lc_nats_msg_len(msg), why, sizeof(why));
    if (ev == NULL) {
        lc_metric_inc(c->m_invalid);
        LC_LOG_RL(LC_LOG_WARN, "calls", 1, "dropping a malformed call event on %s: %s",
                  lc_nats_msg_subject(msg), why);
        lc_nats_publish(nc, reply, "+TERM", 5);
        return;
    }
    if (c->open == NULL)
        c->open = batch_new();
    batch_t *b = c->open;
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 32;
        b->replies = lc_realloc(b->replies, b->cap * sizeof(char *));
    }
    b->replies[b->n++] = lc_strdup(reply);
    json_array_append_new(b->items, json_pack("{s:I, s:o}", "seq",
                                              (json_int_t) rg_js_stream_seq(reply), "event", ev));
    if (b->n >= BATCH_MAX)
        flush(c);
    else
        arm(c);
}

/* ---- set-up ---- */

static void setup_step(rg_calls_consumer_t *c);

static void
on_setup_timer(uv_timer_t *t)
{
    setup_step(t->data);
}

static void
retry_setup(rg_calls_consumer_t *c)
{
    c->setting_up = false;
    if (!c->stopping)
        uv_timer_start(&c->setup_timer, on_setup_timer, SETUP_RETRY_MS, 0);
}

static void
on_created(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    rg_calls_consumer_t *c = arg;
    json_t *root = NULL;
    if (status == LC_OK)
        root = json_loadb(lc_nats_msg_data(reply), lc_nats_msg_len(reply), 0, NULL);
    json_t *error = json_object_get(root, "error");
    if (status != LC_OK || root == NULL || error != NULL) {
        const char *what = status != LC_OK ? lc_status_name(status)
                           : error ? json_string_value(json_object_get(error, "description"))
                                   : "unreadable reply";
        LC_LOG_RL(LC_LOG_WARN, "calls", 1, "creating the consumer %s: %s; retrying",
                  RG_CALLS_DURABLE, what ? what : "?");
        json_decref(root);
        retry_setup(c);
        return;
    }
    json_decref(root);
    c->setting_up = false;
    if (!c->ready)
        LC_INFO("calls", "durable consumer %s on %s ready (filter %s)", RG_CALLS_DURABLE,
                LC_EVENTS_STREAM, RG_CALLS_FILTER);
    c->ready = true;
}

static void
setup_step(rg_calls_consumer_t *c)
{
    if (c->stopping || c->setting_up)
        return;
    if (!lc_nats_connected(c->nats)) {
        retry_setup(c);
        return;
    }
    c->setting_up = true;
    json_t *config =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:s, s:s}", "durable_name",
                  RG_CALLS_DURABLE, "name", RG_CALLS_DURABLE, "deliver_subject",
                  RG_CALLS_DELIVER_SUBJECT, "deliver_group", "registry", "deliver_policy", "all",
                  "ack_policy", "explicit", "ack_wait", (json_int_t) c->ack_wait_ms * 1000000,
                  "max_ack_pending", (json_int_t) RG_CALLS_MAX_ACK_PENDING, "max_deliver", -1,
                  "filter_subject", RG_CALLS_FILTER, "replay_policy", "instant");
    json_t *body = json_pack("{s:s, s:o}", "stream_name", LC_EVENTS_STREAM, "config", config);
    char *text = rg_json_dumps(body);
    json_decref(body);
    lc_status_t st =
        lc_nats_request(c->nats, "$JS.API.CONSUMER.CREATE." LC_EVENTS_STREAM "." RG_CALLS_DURABLE,
                        text, strlen(text), SETUP_TIMEOUT_MS, on_created, c, NULL);
    free(text);
    if (st != LC_OK)
        retry_setup(c);
}

/* ---- life cycle ---- */

rg_calls_consumer_t *
rg_calls_consumer_create(uv_loop_t *loop, lc_nats_t *nats, lc_pg_pool_t *pg, lc_metrics_t *metrics,
                         int64_t ack_wait_ms)
{
    rg_calls_consumer_t *c = LC_NEW(rg_calls_consumer_t);
    c->loop = loop;
    c->nats = nats;
    c->pg = pg;
    c->ack_wait_ms = ack_wait_ms;
    uv_timer_init(loop, &c->setup_timer);
    c->setup_timer.data = c;
    uv_timer_init(loop, &c->batch_timer);
    c->batch_timer.data = c;
    const char *name = "voxi_registry_call_events_total";
    const char *help = "call events consumed, by outcome";
    c->m_applied = lc_metrics_counter(metrics, name, help, "outcome=\"applied\"");
    c->m_duplicate = lc_metrics_counter(metrics, name, help, "outcome=\"duplicate\"");
    c->m_ignored = lc_metrics_counter(metrics, name, help, "outcome=\"ignored\"");
    c->m_invalid = lc_metrics_counter(metrics, name, help, "outcome=\"invalid\"");
    c->m_failed = lc_metrics_counter(metrics, name, help, "outcome=\"store_failed\"");
    c->m_seconds = lc_metrics_histogram(metrics, "voxi_registry_call_events_apply_seconds",
                                        "time to apply a batch of call events", NULL, NULL, 0);
    return c;
}

lc_status_t
rg_calls_consumer_start(rg_calls_consumer_t *c)
{
    LC_TRY(lc_nats_subscribe(c->nats, RG_CALLS_DELIVER_SUBJECT, "registry", on_event, c, &c->sub));
    uv_timer_start(&c->setup_timer, on_setup_timer, 0, 0);
    return LC_OK;
}

bool
rg_calls_consumer_ready(const rg_calls_consumer_t *c)
{
    return c != NULL && c->ready;
}

void
rg_calls_consumer_stop(rg_calls_consumer_t *c)
{
    if (c == NULL || c->stopping)
        return;
    c->stopping = true;
    if (c->sub != NULL)
        lc_nats_unsubscribe(c->nats, c->sub);
    c->sub = NULL;
    uv_timer_stop(&c->setup_timer);
    uv_timer_stop(&c->batch_timer);
    c->batch_armed = false;
    uv_close((uv_handle_t *) &c->setup_timer, NULL);
    uv_close((uv_handle_t *) &c->batch_timer, NULL);
    flush(c); /* what was received is still applied and acked */
}

size_t
rg_calls_consumer_inflight(const rg_calls_consumer_t *c)
{
    if (c == NULL)
        return 0;
    return (c->open ? c->open->n : 0) + (c->running ? c->running->n : 0);
}

void
rg_calls_consumer_destroy(rg_calls_consumer_t *c)
{
    if (c == NULL)
        return;
    batch_free(c->open); /* unacked: JetStream redelivers them */
    batch_free(c->running);
    free(c);
}
