#include "wh_delivery.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "wh_events.h"
#include "wh_http.h"
#include "wh_model.h"
#include "wh_retry.h"
#include "wh_sign.h"

#define CLAIM_MAX 500                       /* deliveries claimed by one query */
#define FLUSH_MAX 1000                      /* results written by one statement */
#define FLUSHES_MAX 2                       /* result statements in flight */
#define FLUSH_RETRY_MS 500                  /* after a failed result write */
#define FLUSH_RETRY_LIMIT 10                /* then the locks expire and another attempt follows */
#define DELIVERY_MAX_RESPONSE (1024 * 1024) /* response bytes read from a webhook receiver */

typedef struct job {
    struct job *next;
    char id[WH_ID_MAX + 1];
    char org_id[WH_ID_MAX + 1];
    char endpoint_id[WH_ID_MAX + 1];
    char event_id[WH_ID_MAX + 1];
    char event_type[WH_TYPE_MAX + 1];
    char *payload;
    size_t payload_len;
    char *url;
    char *secret;
    char *previous; /* NULL outside a rotation's overlap */
    int attempt;    /* the number of the attempt this job makes (1-based) */
    int64_t event_created_ms;
    int64_t claimed_mono_ms;
    int64_t started_wall_ms;
    wh_delivery_t *d;
} job_t;

/* One row of the results statement (RESULTS_SQL). */
typedef struct {
    char d[WH_ID_MAX + 1];  /* delivery */
    char ep[WH_ID_MAX + 1]; /* endpoint */
    char org[WH_ID_MAX + 1];
    bool rel;       /* a release: only the lock is cleared */
    int n;          /* attempt number */
    int64_t s, ms;  /* started (epoch ms), duration */
    int c;          /* status code, 0 = none */
    char *e;        /* error or NULL */
    char *b;        /* response bytes kept (valid UTF-8) */
    const char *st; /* "succeeded" | "pending" | "failed" (static) */
    int64_t nx;     /* next attempt (epoch ms), -1 = none */
    bool ok, gone;
} record_t;

typedef struct {
    record_t *items;
    size_t n, cap;
} records_t;

typedef struct {
    wh_delivery_t *d;
    records_t recs;
    int tries;
} flush_t;

struct wh_delivery {
    wh_service_t *ws;
    const wh_config_t *cfg;
    job_t *head, *tail;
    size_t queued;
    size_t running;
    size_t max_running;
    uint64_t rng;

    uv_timer_t poll_timer;
    int64_t poll_at_ms; /* monotonic; 0 = not armed */
    bool claiming;
    size_t claim_limit; /* LIMIT of the claim in flight */
    bool want_room;     /* a claim was skipped for lack of room */

    records_t results; /* records not yet handed to a statement */
    size_t flushes;
    uv_timer_t flush_timer;
    bool flush_armed;
    size_t disable_queries;

    bool stopping;
    int open_handles;
    void (*done_cb)(void *arg);
    void *done_arg;

    lc_metric_t *m_queue, *m_running, *m_duration, *m_first_delay;
    lc_metric_t *m_outcome[5]; /* by wh_outcome_t, + released */
    lc_metric_t *m_writes_ok, *m_writes_err;
};

static void pump(wh_delivery_t *d);
static void schedule_poll(wh_delivery_t *d, int64_t in_ms);
static void schedule_flush(wh_delivery_t *d);

/* ---- helpers ---- */

static double
next_unit(wh_delivery_t *d)
{
    /* xorshift64*: jitter only, not security */
    uint64_t x = d->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    d->rng = x;
    return (double) ((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void
copy_field(char *dst, size_t size, const PGresult *res, int row, int col)
{
    snprintf(dst, size, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static char *
dup_field(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return lc_strndup(PQgetvalue(res, row, col), (size_t) PQgetlength(res, row, col));
}

static void
job_free(job_t *j)
{
    if (j == NULL)
        return;
    free(j->payload);
    free(j->url);
    free(j->secret);
    free(j->previous);
    free(j);
}

static size_t
room(const wh_delivery_t *d)
{
    size_t high = 2 * d->max_running;
    size_t used = d->queued + d->running;
    return used >= high ? 0 : high - used;
}

bool
wh_delivery_wants_more(const wh_delivery_t *d)
{
    return !d->stopping && d->queued + d->running < d->max_running;
}

/* ---- results ---- */

static void
records_free(records_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].e);
        free(r->items[i].b);
    }
    free(r->items);
    memset(r, 0, sizeof(*r));
}

/* Takes the record (its strings included). */
static void
add_record(wh_delivery_t *d, const record_t *rec)
{
    records_t *r = &d->results;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->items = lc_realloc(r->items, r->cap * sizeof(record_t));
    }
    r->items[r->n++] = *rec;
    schedule_flush(d);
}

static void
release_job(wh_delivery_t *d, job_t *j)
{
    record_t rec = {.rel = true, .nx = -1, .st = "pending"};
    snprintf(rec.d, sizeof(rec.d), "%s", j->id);
    snprintf(rec.ep, sizeof(rec.ep), "%s", j->endpoint_id);
    snprintf(rec.org, sizeof(rec.org), "%s", j->org_id);
    add_record(d, &rec);
    lc_metric_inc(d->m_outcome[4]);
}

/* The statement's $1: a JSON array of the records. */
static char *
records_json(const records_t *r)
{
    wh_buf_t b = {0};
    wh_buf_append(&b, "[", 1);
    for (size_t i = 0; i < r->n; i++) {
        const record_t *x = &r->items[i];
        wh_buf_str(&b, i ? ",{\"d\":" : "{\"d\":");
        wh_buf_json_string(&b, x->d, strlen(x->d));
        wh_buf_str(&b, ",\"ep\":");
        wh_buf_json_string(&b, x->ep, strlen(x->ep));
        wh_buf_str(&b, ",\"org\":");
        wh_buf_json_string(&b, x->org, strlen(x->org));
        if (x->rel) {
            wh_buf_str(&b, ",\"rel\":true}");
            continue;
        }
        wh_buf_printf(&b,
                      ",\"rel\":false,\"n\":%d,\"s\":%" PRId64 ",\"ms\":%" PRId64
                      ",\"st\":\"%s\",\"ok\":%s,\"gone\":%s",
                      x->n, x->s, x->ms, x->st, x->ok ? "true" : "false",
                      x->gone ? "true" : "false");
        if (x->c > 0)
            wh_buf_printf(&b, ",\"c\":%d", x->c);
        if (x->nx >= 0)
            wh_buf_printf(&b, ",\"nx\":%" PRId64, x->nx);
        if (x->e) {
            wh_buf_str(&b, ",\"e\":");
            wh_buf_json_string(&b, x->e, strlen(x->e));
        }
        wh_buf_str(&b, ",\"b\":");
        wh_buf_json_string(&b, x->b ? x->b : "", x->b ? strlen(x->b) : 0);
        wh_buf_append(&b, "}", 1);
    }
    wh_buf_append(&b, "]", 1);
    return b.data;
}

/* One statement per batch (migrations/0004_webhooks.sql): the attempts, the deliveries' new
 * state, the endpoints' health; it returns the endpoints it has just disabled. */
static const char RESULTS_SQL[] =
    "SELECT * FROM webhook_record_attempts($1::json, $2::double precision)";

/* Pending deliveries of an endpoint just disabled fail; the change is audited; the endpoint
 * is rendered for the endpoint.disabled event. */
static const char DISABLE_SQL[] =
    "WITH f AS ("
    "  UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,"
    "    last_error = 'endpoint disabled', updated_at = now()"
    "  WHERE endpoint_id = $1 AND status = 'pending'"
    "    AND (locked_until IS NULL OR locked_until < now() OR locked_by = $3)"
    "  RETURNING 1"
    "), a AS ("
    "  INSERT INTO webhook_audit (org_id, principal_kind, principal_id, action, resource_type,"
    "    resource_id, changes)"
    "  SELECT $2, 'service', $3, 'webhook_endpoint.disable', 'webhook_endpoint', $1,"
    "    jsonb_build_object('enabled', false, 'disabled_reason', $4::text,"
    "      'failed_deliveries', (SELECT count(*) FROM f))"
    ")"
    "SELECT " WH_ENDPOINT_JSON("e") "::text FROM webhook_endpoints e WHERE e.id = $1";

typedef struct {
    wh_delivery_t *d;
    char org_id[WH_ID_MAX + 1];
    char reason[16];
} disable_t;

static void
on_disable_done(lc_status_t status, PGresult *res, void *arg)
{
    disable_t *x = arg;
    wh_delivery_t *d = x->d;
    d->disable_queries--;
    if (status != LC_OK) {
        LC_WARN("delivery", "failing the deliveries of a disabled endpoint: %s",
                lc_status_name(status));
    } else if (PQntuples(res) == 1) {
        json_error_t jerr;
        json_t *ep = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
        if (ep != NULL)
            lc_events_publish(d->ws->events, x->org_id, "endpoint.disabled",
                              json_pack("{s:o, s:s}", "endpoint", ep, "reason", x->reason), NULL);
    }
    free(x);
}

static void
endpoint_disabled(wh_delivery_t *d, const char *endpoint_id, const char *org_id, const char *reason)
{
    LC_INFO("delivery", "endpoint %s of %s disabled: %s", endpoint_id, org_id, reason);
    bool gone = strcmp(reason, "gone") == 0;
    char labels[64];
    snprintf(labels, sizeof(labels), "reason=\"%s\"", gone ? "gone" : "failing");
    lc_metric_inc(lc_metrics_counter(d->ws->metrics, "voxi_webhooks_endpoints_disabled_total",
                                     "endpoints disabled automatically", labels));
    disable_t *x = LC_NEW(disable_t);
    x->d = d;
    snprintf(x->org_id, sizeof(x->org_id), "%s", org_id);
    snprintf(x->reason, sizeof(x->reason), "%s", gone ? "gone" : "failing");
    const char *params[] = {endpoint_id, org_id, d->ws->instance_id, x->reason};
    if (lc_pg_query(d->ws->pg, DISABLE_SQL, 4, params, on_disable_done, x) == LC_OK)
        d->disable_queries++;
    else
        free(x);
}

static void start_flush(wh_delivery_t *d, records_t recs, int tries);

static void
on_flush_retry(uv_timer_t *t)
{
    wh_delivery_t *d = t->data;
    d->flush_armed = false;
    if (d->results.n > 0 && d->flushes < FLUSHES_MAX)
        schedule_flush(d);
}

static void
on_flushed(lc_status_t status, PGresult *res, void *arg)
{
    flush_t *f = arg;
    wh_delivery_t *d = f->d;
    d->flushes--;
    if (status != LC_OK) {
        lc_metric_inc(d->m_writes_err);
        if (f->tries + 1 < FLUSH_RETRY_LIMIT && status != LC_ERR_CANCELLED) {
            LC_LOG_RL(LC_LOG_WARN, "delivery", 1,
                      "writing %zu attempt results failed (%s); retrying", f->recs.n,
                      lc_status_name(status));
            /* Put them back in front and try again a little later. */
            records_t *r = &d->results;
            size_t need = r->n + f->recs.n;
            if (need > r->cap) {
                r->cap = need;
                r->items = lc_realloc(r->items, r->cap * sizeof(record_t));
            }
            memmove(r->items + f->recs.n, r->items, r->n * sizeof(record_t));
            memcpy(r->items, f->recs.items, f->recs.n * sizeof(record_t));
            r->n = need;
            free(f->recs.items); /* the strings moved with the records */
            free(f);
            if (!d->flush_armed) {
                d->flush_armed = true;
                uv_timer_start(&d->flush_timer, on_flush_retry, FLUSH_RETRY_MS, 0);
            }
            return;
        }
        LC_WARN("delivery",
                "dropping %zu attempt results after %d failed writes (%s); their locks expire "
                "and the deliveries are attempted again",
                f->recs.n, f->tries + 1, lc_status_name(status));
        records_free(&f->recs);
        free(f);
        return;
    }
    lc_metric_inc(d->m_writes_ok);
    for (int i = 0; i < PQntuples(res); i++)
        endpoint_disabled(d, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    /* Retries written by this batch: wake the poller when the first is due. */
    int64_t now = lc_time_wall_ms(), first = -1;
    for (size_t i = 0; i < f->recs.n; i++) {
        int64_t at = f->recs.items[i].nx;
        if (!f->recs.items[i].rel && at >= 0 && (first < 0 || at < first))
            first = at;
    }
    if (first >= 0)
        wh_delivery_wake(d, first > now ? first - now : 0);
    records_free(&f->recs);
    free(f);
    if (d->results.n > 0)
        schedule_flush(d);
}

static void
start_flush(wh_delivery_t *d, records_t recs, int tries)
{
    flush_t *f = LC_NEW(flush_t);
    f->d = d;
    f->recs = recs;
    f->tries = tries;
    char *text = records_json(&f->recs);
    char after_s[32];
    snprintf(after_s, sizeof(after_s), "%" PRId64, d->cfg->disable_after_failing_s);
    const char *params[] = {text, after_s};
    lc_status_t st = lc_pg_query(d->ws->pg, RESULTS_SQL, 2, params, on_flushed, f);
    free(text);
    d->flushes++;
    if (st != LC_OK) /* queue full or pool closing: handle as a failed write */
        on_flushed(st, NULL, f);
}

static void
on_flush_timer(uv_timer_t *t)
{
    wh_delivery_t *d = t->data;
    d->flush_armed = false;
    while (d->results.n > 0 && d->flushes < FLUSHES_MAX) {
        records_t batch = {0};
        size_t take = d->results.n > FLUSH_MAX ? FLUSH_MAX : d->results.n;
        batch.items = lc_malloc(take * sizeof(record_t));
        batch.n = batch.cap = take;
        memcpy(batch.items, d->results.items, take * sizeof(record_t));
        memmove(d->results.items, d->results.items + take,
                (d->results.n - take) * sizeof(record_t));
        d->results.n -= take;
        start_flush(d, batch, 0);
    }
}

/* Results produced in one loop turn go out together. */
static void
schedule_flush(wh_delivery_t *d)
{
    if (d->flush_armed || d->flushes >= FLUSHES_MAX)
        return;
    d->flush_armed = true;
    uv_timer_start(&d->flush_timer, on_flush_timer, 0, 0);
}

/* ---- attempts ---- */

static void
on_attempt_done(const wh_http_result_t *res, void *arg)
{
    job_t *j = arg;
    wh_delivery_t *d = j->d;
    d->running--;
    lc_metric_set(d->m_running, (double) d->running);
    lc_log_context_set(j->event_id, NULL);

    if (res->error == WH_HTTP_CANCELLED) {
        release_job(d, j);
        job_free(j);
        lc_log_context_clear();
        pump(d);
        return;
    }
    int code =
        (res->error == WH_HTTP_RESPONSE || res->error == WH_HTTP_TOO_LARGE) ? res->status : 0;
    int64_t delay = 0;
    wh_outcome_t outcome = wh_retry_decide(j->attempt, code, res->retry_after_ms,
                                           d->ws->retry_scale, next_unit(d), &delay);
    char error[256] = "";
    if (outcome != WH_OUTCOME_SUCCEEDED) {
        if (res->error == WH_HTTP_RESPONSE && code >= 300 && code < 400)
            snprintf(error, sizeof(error), "HTTP %d: redirects are not followed", code);
        else if (res->error == WH_HTTP_RESPONSE)
            snprintf(error, sizeof(error), "HTTP %d", code);
        else
            snprintf(error, sizeof(error), "%s: %s", wh_http_error_name(res->error),
                     res->error_text);
    }
    char *body = lc_malloc(res->body_len + 1);
    wh_model_safe_text(res->body, res->body_len, body, res->body_len + 1);
    record_t rec = {
        .n = j->attempt,
        .s = j->started_wall_ms,
        .ms = res->duration_ms,
        .c = code,
        .e = error[0] ? lc_strdup(error) : NULL,
        .b = body,
        .st = outcome == WH_OUTCOME_SUCCEEDED ? "succeeded"
              : outcome == WH_OUTCOME_RETRY   ? "pending"
                                              : "failed",
        .nx = outcome == WH_OUTCOME_RETRY ? lc_time_wall_ms() + delay : -1,
        .ok = outcome == WH_OUTCOME_SUCCEEDED,
        .gone = outcome == WH_OUTCOME_GONE,
    };
    snprintf(rec.d, sizeof(rec.d), "%s", j->id);
    snprintf(rec.ep, sizeof(rec.ep), "%s", j->endpoint_id);
    snprintf(rec.org, sizeof(rec.org), "%s", j->org_id);
    add_record(d, &rec);

    lc_metric_inc(d->m_outcome[outcome]);
    lc_metric_observe(d->m_duration, (double) res->duration_ms / 1000.0);
    if (outcome == WH_OUTCOME_SUCCEEDED)
        LC_DEBUG("delivery", "%s attempt %d to %s: %d in %lld ms", j->id, j->attempt,
                 j->endpoint_id, code, (long long) res->duration_ms);
    else
        LC_LOG_RL(LC_LOG_INFO, "delivery", 10, "%s attempt %d to %s: %s (%s%s)", j->id, j->attempt,
                  j->endpoint_id, wh_outcome_name(outcome), error,
                  outcome == WH_OUTCOME_RETRY ? ", will retry" : "");
    job_free(j);
    lc_log_context_clear();
    pump(d);
}

static void
run_job(wh_delivery_t *d, job_t *j)
{
    int64_t held = lc_time_mono_ms() - j->claimed_mono_ms;
    if (d->stopping || held > WH_LOCK_MS(d->cfg) - d->cfg->http_timeout_ms - 2000) {
        /* Too late to finish inside our lock: give it back rather than race another
         * instance that may take it when the lock expires. */
        release_job(d, j);
        job_free(j);
        return;
    }
    j->started_wall_ms = lc_time_wall_ms();
    if (j->attempt == 1 && j->event_created_ms > 0)
        lc_metric_observe(d->m_first_delay,
                          (double) (j->started_wall_ms - j->event_created_ms) / 1000.0);
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, j->started_wall_ms / 1000);
    char signature[WH_SIGNATURE_HEADER_MAX];
    char h_id[WH_ID_MAX + 16], h_ts[48], h_sig[WH_SIGNATURE_HEADER_MAX + 32];
    lc_status_t st = wh_sign_header(j->secret, j->previous, j->event_id, j->started_wall_ms / 1000,
                                    j->payload, j->payload_len, signature, sizeof(signature));
    if (st != LC_OK) {
        /* Cannot happen with secrets we generated; fail the attempt visibly. */
        wh_http_result_t res = {.error = WH_HTTP_ERROR, .retry_after_ms = -1, .body = ""};
        snprintf(res.error_text, sizeof(res.error_text), "the endpoint's secret is unusable");
        d->running++;
        on_attempt_done(&res, j);
        return;
    }
    snprintf(h_id, sizeof(h_id), "webhook-id: %s", j->event_id);
    snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %s", ts);
    snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", signature);
    const char *headers[] = {"Content-Type: application/json", h_id, h_ts, h_sig, NULL};
    wh_http_req_t req = {
        .url = j->url,
        .headers = headers,
        .body = j->payload,
        .body_len = j->payload_len,
        .timeout_ms = d->cfg->http_timeout_ms,
        .keep_bytes = (size_t) d->cfg->response_bytes_kept,
        .max_bytes = DELIVERY_MAX_RESPONSE,
        .allow_http = d->cfg->allow_http,
    };
    d->running++;
    lc_metric_set(d->m_running, (double) d->running);
    if (wh_http_send(d->ws->http, &req, on_attempt_done, j) != LC_OK) {
        d->running--;
        release_job(d, j);
        job_free(j);
    }
}

static void
pump(wh_delivery_t *d)
{
    while (d->head && d->running < d->max_running) {
        job_t *j = d->head;
        d->head = j->next;
        if (d->head == NULL)
            d->tail = NULL;
        d->queued--;
        run_job(d, j);
    }
    lc_metric_set(d->m_queue, (double) d->queued);
    if (d->want_room && room(d) >= d->max_running) {
        d->want_room = false;
        schedule_poll(d, 0);
    }
}

void
wh_delivery_add_jobs(wh_delivery_t *d, const PGresult *res, int col0)
{
    int64_t now = lc_time_mono_ms();
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, col0))
            continue;
        job_t *j = LC_NEW(job_t);
        j->d = d;
        copy_field(j->id, sizeof(j->id), res, i, col0 + 0);
        copy_field(j->org_id, sizeof(j->org_id), res, i, col0 + 1);
        copy_field(j->endpoint_id, sizeof(j->endpoint_id), res, i, col0 + 2);
        copy_field(j->event_id, sizeof(j->event_id), res, i, col0 + 3);
        copy_field(j->event_type, sizeof(j->event_type), res, i, col0 + 4);
        j->payload = dup_field(res, i, col0 + 5);
        j->payload_len = j->payload ? strlen(j->payload) : 0;
        j->attempt = atoi(PQgetvalue(res, i, col0 + 6)) + 1;
        j->url = dup_field(res, i, col0 + 7);
        j->secret = dup_field(res, i, col0 + 8);
        j->previous = dup_field(res, i, col0 + 9);
        j->event_created_ms =
            PQgetisnull(res, i, col0 + 10) ? -1 : strtoll(PQgetvalue(res, i, col0 + 10), NULL, 10);
        j->claimed_mono_ms = now;
        if (j->payload == NULL || j->url == NULL || j->secret == NULL) {
            job_free(j);
            continue;
        }
        if (d->stopping) {
            release_job(d, j);
            job_free(j);
            continue;
        }
        if (d->tail)
            d->tail->next = j;
        else
            d->head = j;
        d->tail = j;
        d->queued++;
    }
    pump(d);
}

/* ---- the poller ---- */

/* migrations/0004_webhooks.sql; one row at least, due_in in the last column */
static const char CLAIM_SQL[] = "SELECT * FROM webhook_claim_due($1::integer, $2::bigint, $3)";

static void
on_claimed(lc_status_t status, PGresult *res, void *arg)
{
    wh_delivery_t *d = arg;
    d->claiming = false;
    int64_t next_in = d->cfg->poll_interval_ms;
    if (status != LC_OK) {
        LC_LOG_RL(LC_LOG_WARN, "delivery", 1, "claiming due deliveries failed: %s",
                  lc_status_name(status));
        schedule_poll(d, next_in);
        return;
    }
    int claimed = 0;
    for (int i = 0; i < PQntuples(res); i++)
        if (!PQgetisnull(res, i, 0))
            claimed++;
    if (claimed > 0)
        LC_DEBUG("delivery", "claimed %d due deliveries", claimed);
    wh_delivery_add_jobs(d, res, 0);
    int due_col = WH_JOB_NCOLUMNS;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, due_col)) {
        int64_t due_in = strtoll(PQgetvalue(res, 0, due_col), NULL, 10);
        if (due_in < 0)
            due_in = 0;
        if (due_in < next_in)
            next_in = due_in;
    }
    /* a full page means more is due now */
    if (claimed > 0 && (size_t) claimed >= d->claim_limit)
        next_in = 0;
    schedule_poll(d, next_in);
}

static void
claim(wh_delivery_t *d)
{
    if (d->stopping || d->claiming)
        return;
    size_t limit = room(d);
    if (limit < d->max_running / 2 + 1) {
        d->want_room = true; /* pump() polls again when jobs finish */
        return;
    }
    if (limit > CLAIM_MAX)
        limit = CLAIM_MAX;
    char limit_s[24], lock_s[24];
    snprintf(limit_s, sizeof(limit_s), "%zu", limit);
    snprintf(lock_s, sizeof(lock_s), "%" PRId64, (int64_t) WH_LOCK_MS(d->cfg));
    const char *params[] = {limit_s, lock_s, d->ws->instance_id};
    d->claim_limit = limit;
    if (lc_pg_query(d->ws->pg, CLAIM_SQL, 3, params, on_claimed, d) == LC_OK)
        d->claiming = true;
    else
        schedule_poll(d, d->cfg->poll_interval_ms);
}

static void
on_poll_timer(uv_timer_t *t)
{
    wh_delivery_t *d = t->data;
    d->poll_at_ms = 0;
    claim(d);
}

static void
schedule_poll(wh_delivery_t *d, int64_t in_ms)
{
    if (d->stopping)
        return;
    if (in_ms < 0)
        in_ms = 0;
    int64_t at = lc_time_mono_ms() + in_ms;
    if (d->poll_at_ms != 0 && d->poll_at_ms <= at)
        return;
    d->poll_at_ms = at;
    uv_timer_start(&d->poll_timer, on_poll_timer, (uint64_t) in_ms, 0);
}

void
wh_delivery_wake(wh_delivery_t *d, int64_t in_ms)
{
    schedule_poll(d, in_ms);
}

void
wh_delivery_start(wh_delivery_t *d)
{
    schedule_poll(d, 0);
}

/* ---- life cycle ---- */

lc_status_t
wh_delivery_create(wh_service_t *ws, wh_delivery_t **out)
{
    wh_delivery_t *d = LC_NEW(wh_delivery_t);
    d->ws = ws;
    d->cfg = ws->cfg;
    d->max_running = (size_t) ws->cfg->max_concurrent;
    lc_random_bytes(&d->rng, sizeof(d->rng));
    d->rng |= 1;
    uv_timer_init(ws->loop, &d->poll_timer);
    d->poll_timer.data = d;
    uv_timer_init(ws->loop, &d->flush_timer);
    d->flush_timer.data = d;
    d->open_handles = 2;

    lc_metrics_t *m = ws->metrics;
    d->m_queue = lc_metrics_gauge(m, "voxi_webhooks_jobs_queued",
                                  "claimed deliveries waiting for a free slot", NULL);
    d->m_running = lc_metrics_gauge(m, "voxi_webhooks_jobs_running", "attempts in progress", NULL);
    d->m_duration = lc_metrics_histogram(m, "voxi_webhooks_attempt_duration_seconds",
                                         "duration of delivery attempts", NULL, NULL, 0);
    d->m_first_delay =
        lc_metrics_histogram(m, "voxi_webhooks_first_attempt_delay_seconds",
                             "from the event's created_at to its first attempt", NULL, NULL, 0);
    static const char *const names[] = {"succeeded", "retry", "failed", "gone", "released"};
    for (int i = 0; i < 5; i++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "outcome=\"%s\"", names[i]);
        d->m_outcome[i] = lc_metrics_counter(m, "voxi_webhooks_attempts_total",
                                             "delivery attempts by outcome", labels);
    }
    d->m_writes_ok = lc_metrics_counter(m, "voxi_webhooks_result_writes_total",
                                        "attempt-result statements", "outcome=\"ok\"");
    d->m_writes_err = lc_metrics_counter(m, "voxi_webhooks_result_writes_total",
                                         "attempt-result statements", "outcome=\"error\"");
    *out = d;
    return LC_OK;
}

void
wh_delivery_stop(wh_delivery_t *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    uv_timer_stop(&d->poll_timer);
    d->poll_at_ms = 0;
    size_t released = d->queued;
    while (d->head) {
        job_t *j = d->head;
        d->head = j->next;
        release_job(d, j);
        job_free(j);
    }
    d->tail = NULL;
    d->queued = 0;
    lc_metric_set(d->m_queue, 0);
    if (released)
        LC_INFO("delivery", "stopping: released %zu queued deliveries, %zu attempts running",
                released, d->running);
}

size_t
wh_delivery_inflight(const wh_delivery_t *d)
{
    if (d == NULL)
        return 0;
    return d->running + d->queued + d->results.n + d->flushes + (d->claiming ? 1 : 0) +
           d->disable_queries;
}

static void
on_timer_closed(uv_handle_t *h)
{
    wh_delivery_t *d = h->data;
    if (--d->open_handles == 0 && d->done_cb)
        d->done_cb(d->done_arg);
}

void
wh_delivery_close(wh_delivery_t *d, void (*done_cb)(void *arg), void *arg)
{
    d->done_cb = done_cb;
    d->done_arg = arg;
    d->stopping = true;
    uv_close((uv_handle_t *) &d->poll_timer, on_timer_closed);
    uv_close((uv_handle_t *) &d->flush_timer, on_timer_closed);
}

void
wh_delivery_destroy(wh_delivery_t *d)
{
    if (d == NULL)
        return;
    while (d->head) {
        job_t *j = d->head;
        d->head = j->next;
        job_free(j);
    }
    records_free(&d->results);
    free(d);
}
