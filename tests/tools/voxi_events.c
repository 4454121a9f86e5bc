/*
 * voxi_events: publishes platform events into JetStream the way the services do, for tests
 * and benchmarks of the event consumers (webhooks, registry).
 *
 *   voxi_events NATS_URL ORG_ID TYPE COUNT [--data JSON] [--inflight N] [--timeout-ms N]
 *
 * Ensures the stream VOXI_EVENTS (voxi.events.>, the services' settings), then publishes
 * COUNT events {"id":"evt_...","type":TYPE,"created_at":"<now>","org_id":ORG_ID,
 * "data":JSON (default {"seq":i})} to voxi.events.<ORG_ID>.<TYPE> with Nats-Msg-Id = id,
 * at most N (default 256) awaiting their ack at once. Prints one line per acked event:
 *
 *   {"id":"evt_...","seq":0}
 *
 * Exit: 0 all acked, 3 no stream / JetStream, 4 timeout, 5 error, 2 usage.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_nats.h"
#include "lc_time.h"

typedef struct {
    lc_nats_t *nc;
    const char *org_id;
    const char *type;
    const char *data;
    long count;
    long next;
    long acked;
    long inflight;
    long max_inflight;
    int64_t timeout_ms;
    int64_t deadline_mono_ms;
    int exit_code;
    bool done;
    uv_timer_t timer;
} pub_t;

typedef struct {
    pub_t *p;
    long seq;
    char id[32];
} one_t;

static void
on_closed(void *arg)
{
    (void) arg;
}

static void
finish(pub_t *p, int code)
{
    if (p->done)
        return;
    p->done = true;
    p->exit_code = code;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *) &p->timer, NULL);
    lc_nats_close(p->nc, on_closed, p);
}

static void pump(pub_t *p);

static void
on_ack(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    one_t *o = arg;
    pub_t *p = o->p;
    (void) seq;
    (void) duplicate;
    p->inflight--;
    if (status != LC_OK) {
        if (!p->done)
            fprintf(stderr, "publish %s: %s\n", o->id, lc_status_name(status));
        free(o);
        finish(p, status == LC_ERR_TIMEOUT ? 4 : status == LC_ERR_NO_RESPONDERS ? 3 : 5);
        return;
    }
    if (!p->done)
        printf("{\"id\":\"%s\",\"seq\":%ld}\n", o->id, o->seq);
    free(o);
    p->acked++;
    if (p->acked == p->count) {
        fflush(stdout);
        finish(p, 0);
        return;
    }
    pump(p);
}

static void
pump(pub_t *p)
{
    while (!p->done && p->next < p->count && p->inflight < p->max_inflight) {
        one_t *o = LC_NEW(one_t);
        o->p = p;
        o->seq = p->next++;
        lc_id_new("evt_", o->id, sizeof(o->id));
        char created[32];
        lc_time_format_rfc3339(lc_time_wall_ms(), created, sizeof(created));
        json_t *data;
        if (p->data) {
            json_error_t jerr;
            data = json_loads(p->data, 0, &jerr);
        } else {
            data = json_pack("{s:I}", "seq", (json_int_t) o->seq);
        }
        json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", o->id, "type", p->type,
                               "created_at", created, "org_id", p->org_id, "data", data);
        char *text = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        char subject[256];
        snprintf(subject, sizeof(subject), "voxi.events.%s.%s", p->org_id, p->type);
        lc_status_t st =
            lc_nats_js_publish(p->nc, subject, o->id, text, strlen(text), p->timeout_ms, on_ack, o);
        free(text);
        if (st != LC_OK) {
            fprintf(stderr, "publish: %s\n", lc_status_name(st));
            free(o);
            finish(p, 5);
            return;
        }
        p->inflight++;
    }
}

static void
on_stream(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    pub_t *p = arg;
    (void) seq;
    (void) duplicate;
    if (status != LC_OK) {
        fprintf(stderr, "ensure stream VOXI_EVENTS: %s\n", lc_status_name(status));
        finish(p, status == LC_ERR_TIMEOUT ? 4 : 3);
        return;
    }
    if (p->count == 0) {
        finish(p, 0);
        return;
    }
    pump(p);
}

static void
on_start(uv_timer_t *t)
{
    pub_t *p = t->data;
    if (!lc_nats_connected(p->nc)) {
        if (lc_time_mono_ms() > p->deadline_mono_ms) {
            fprintf(stderr, "could not connect to NATS\n");
            finish(p, 4);
            return;
        }
        uv_timer_start(t, on_start, 10, 0);
        return;
    }
    if (lc_nats_js_ensure_stream(p->nc, "VOXI_EVENTS", "voxi.events.>", 7 * 24 * 3600, 120,
                                 p->timeout_ms, on_stream, p) != LC_OK) {
        fprintf(stderr, "ensure stream: request failed\n");
        finish(p, 5);
    }
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: voxi_events NATS_URL ORG_ID TYPE COUNT [--data JSON] "
                        "[--inflight N] [--timeout-ms N]\n");
        return 2;
    }
    lc_log_init("voxi_events", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    pub_t p = {.org_id = argv[2],
               .type = argv[3],
               .count = atol(argv[4]),
               .max_inflight = 256,
               .timeout_ms = 5000,
               .exit_code = 1};
    for (int i = 5; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0)
            p.data = argv[i + 1];
        else if (strcmp(argv[i], "--inflight") == 0)
            p.max_inflight = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            p.timeout_ms = atoll(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (p.count < 0 || p.max_inflight < 1) {
        fprintf(stderr, "COUNT must be >= 0 and --inflight >= 1\n");
        return 2;
    }
    if (p.data) {
        json_error_t jerr;
        json_t *d = json_loads(p.data, 0, &jerr);
        if (!json_is_object(d)) {
            fprintf(stderr, "--data must be a JSON object\n");
            json_decref(d);
            return 2;
        }
        json_decref(d);
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    lc_nats_loop_init(&loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_events"};
    if (lc_nats_connect(&loop, &opts, &p.nc) != LC_OK)
        return 5;
    p.deadline_mono_ms = lc_time_mono_ms() + p.timeout_ms;
    uv_timer_init(&loop, &p.timer);
    p.timer.data = &p;
    uv_timer_start(&p.timer, on_start, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_nats_destroy(p.nc);
    uv_loop_close(&loop);
    lc_nats_library_shutdown();
    return p.exit_code;
}
