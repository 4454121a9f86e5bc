/*
 * The registry's subjects: envelope checks, dispatch to the handlers, replies, metrics.
 */
#include "rg_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "rg_calls.h"
#include "rg_json.h"
#include "rg_req.h"
#include "voxi/v1/api.pb-c.h"
#include "voxi/v1/registry.pb-c.h"

#define QUEUE_GROUP "registry"
#define LIMIT_DEFAULT 20
#define LIMIT_MAX 100

typedef struct {
    const char *subject;
    const char *verb;
    void (*handle)(rg_req_t *req);
    bool api; /* ApiRequest body and an org; else ResolveNumberRequest, no org */
} verb_t;

static const verb_t verbs[] = {
    {"voxi.registry.agents.create", "agents.create", rg_agents_create, true},
    {"voxi.registry.agents.list", "agents.list", rg_agents_list, true},
    {"voxi.registry.agents.get", "agents.get", rg_agents_get, true},
    {"voxi.registry.agents.update", "agents.update", rg_agents_update, true},
    {"voxi.registry.agents.delete", "agents.delete", rg_agents_delete, true},
    {"voxi.registry.numbers.create", "numbers.create", rg_numbers_create, true},
    {"voxi.registry.numbers.list", "numbers.list", rg_numbers_list, true},
    {"voxi.registry.numbers.get", "numbers.get", rg_numbers_get, true},
    {"voxi.registry.numbers.update", "numbers.update", rg_numbers_update, true},
    {"voxi.registry.numbers.delete", "numbers.delete", rg_numbers_delete, true},
    {"voxi.registry.numbers.resolve", "numbers.resolve", rg_numbers_resolve, false},
    {"voxi.registry.calls.create", "calls.create", rg_calls_create, true},
    {"voxi.registry.calls.list", "calls.list", rg_calls_list, true},
    {"voxi.registry.calls.get", "calls.get", rg_calls_get, true},
    {"voxi.registry.calls.hangup", "calls.hangup", rg_calls_hangup, true},
    {"voxi.registry.calls.recording", "calls.recording", rg_calls_recording, true},
};
#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

typedef struct {
    rg_api_t *api;
    const verb_t *verb;
} sub_ctx_t;

struct rg_api {
    rg_api_deps_t deps;
    sub_ctx_t subs_ctx[NVERBS];
    lc_nats_sub_t *subs[NVERBS];
    size_t inflight;
    lc_metric_t *dropped_expired, *dropped_no_reply;
};

/* ---- metrics ---- */

static void
count_request(rg_api_t *api, const char *verb, lc_status_t status, int64_t started_mono_ms)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "verb=\"%s\",outcome=\"%s\"", verb,
             status == LC_OK ? "ok" : lc_status_name(status));
    lc_metric_inc(lc_metrics_counter(api->deps.metrics, "voxi_registry_requests_total",
                                     "registry requests answered, by verb and outcome", labels));
    snprintf(labels, sizeof(labels), "verb=\"%s\"", verb);
    lc_metric_observe(lc_metrics_histogram(api->deps.metrics, "voxi_registry_request_seconds",
                                           "time from request to reply, by verb", labels, NULL, 0),
                      (double) (lc_time_mono_ms() - started_mono_ms) / 1000.0);
}

/* ---- request lifetime ---- */

static void
req_free(rg_req_t *req)
{
    rg_api_t *api = req->api;
    api->inflight--;
    free(req->reply_to);
    free(req->json);
    json_decref(req->patch);
    json_decref(req->doc);
    rg_errors_destroy(req->errs);
    free(req->sealed);
    free(req);
    lc_log_context_clear();
}

static void
respond(rg_req_t *req, uint8_t *buf, size_t len)
{
    lc_status_t st = lc_nats_respond(req->api->deps.nats, req->reply_to, buf, len);
    if (st != LC_OK)
        LC_WARN("api", "%s: reply not sent: %s", req->verb, lc_status_name(st));
    free(buf);
}

void
rg_req_reply_pb(rg_req_t *req, const ProtobufCMessage *body)
{
    lc_log_context_set(req->request_id, NULL);
    lc_pb_meta_t meta = {.request_id = req->request_id};
    uint8_t *buf = NULL;
    size_t len = 0;
    lc_status_t st = lc_pb_pack(&meta, body, &buf, &len);
    if (st != LC_OK) {
        lc_pb_pack_error(req->request_id, st, "reply too large", &buf, &len);
        count_request(req->api, req->verb, st, req->started_mono_ms);
    } else {
        count_request(req->api, req->verb, LC_OK, req->started_mono_ms);
    }
    respond(req, buf, len);
    req_free(req);
}

void
rg_req_reply(rg_req_t *req, int http_status, const char *json)
{
    Voxi__V1__ApiReply rep = VOXI__V1__API_REPLY__INIT;
    rep.http_status = http_status;
    rep.json = (char *) (json ? json : "");
    LC_DEBUG("api", "%s: %d", req->verb, http_status);
    rg_req_reply_pb(req, &rep.base);
}

static void
fail_with(rg_req_t *req, lc_status_t status, const char *message, const rg_errors_t *errs)
{
    lc_log_context_set(req->request_id, NULL);
    Voxi__V1__Envelope env = VOXI__V1__ENVELOPE__INIT;
    Voxi__V1__Error err = VOXI__V1__ERROR__INIT;
    Voxi__V1__FieldError fields[RG_ERRORS_MAX];
    Voxi__V1__FieldError *field_ptrs[RG_ERRORS_MAX];
    env.request_id = req->request_id;
    err.status = (char *) lc_status_name(status);
    err.message = (char *) message;
    for (size_t i = 0; errs != NULL && i < errs->count; i++) {
        voxi__v1__field_error__init(&fields[i]);
        fields[i].field = errs->items[i].field;
        fields[i].message = errs->items[i].message;
        field_ptrs[i] = &fields[i];
    }
    err.n_fields = errs ? errs->count : 0;
    err.fields = field_ptrs;
    env.error = &err;
    size_t len = voxi__v1__envelope__get_packed_size(&env);
    uint8_t *buf = lc_malloc(len);
    voxi__v1__envelope__pack(&env, buf);
    if (status == LC_ERR_INTERNAL || status == LC_ERR_UNAVAILABLE || status == LC_ERR_TIMEOUT)
        LC_WARN("api", "%s: %s: %s", req->verb, lc_status_name(status), message);
    else
        LC_DEBUG("api", "%s: %s: %s", req->verb, lc_status_name(status), message);
    count_request(req->api, req->verb, status, req->started_mono_ms);
    respond(req, buf, len);
    req_free(req);
}

json_t *
rg_req_parse_body(rg_req_t *req)
{
    char err[200];
    json_t *doc = rg_json_parse_object(req->json, req->json_len, err, sizeof(err));
    if (doc == NULL)
        rg_req_fail(req, req->json_len > RG_JSON_MAX_BYTES ? LC_ERR_TOO_LARGE : LC_ERR_INVALID,
                    err);
    return doc;
}

void
rg_req_fail(rg_req_t *req, lc_status_t status, const char *message)
{
    fail_with(req, status, message, NULL);
}

void
rg_req_fail_fields(rg_req_t *req, rg_errors_t *errs)
{
    char message[160];
    if (errs->truncated)
        snprintf(message, sizeof(message),
                 "the request is invalid: more than %d problems, the first %d are listed",
                 RG_ERRORS_MAX, RG_ERRORS_MAX);
    else
        snprintf(message, sizeof(message), "the request is invalid: %zu problem%s", errs->count,
                 errs->count == 1 ? "" : "s");
    fail_with(req, LC_ERR_INVALID, message, errs);
    rg_errors_destroy(errs);
}

void
rg_req_fail_field(rg_req_t *req, const char *field, const char *message)
{
    rg_errors_t *errs = rg_errors_create();
    rg_errors_add(errs, field, "%s", message);
    rg_req_fail_fields(req, errs);
}

void
rg_req_fail_db(rg_req_t *req, lc_status_t status, PGresult *res)
{
    (void) res; /* lc_pg logged the server's message */
    if (status == LC_ERR_TIMEOUT)
        rg_req_fail(req, LC_ERR_TIMEOUT, "the database did not answer in time");
    else if (status == LC_ERR_UNAVAILABLE || status == LC_ERR_CANCELLED || status == LC_ERR_FULL)
        rg_req_fail(req, LC_ERR_UNAVAILABLE, "the database is unavailable; retry later");
    else
        rg_req_fail(req, LC_ERR_INTERNAL, "internal error");
}

bool
rg_req_expired(const rg_req_t *req)
{
    return req->deadline_unix_ms > 0 && lc_time_wall_ms() > req->deadline_unix_ms;
}

const rg_secret_t *
rg_req_secret(const rg_req_t *req)
{
    return req->api->deps.secret;
}

lc_events_t *
rg_req_events(const rg_req_t *req)
{
    return req->api->deps.events;
}

lc_nats_t *
rg_req_nats(const rg_req_t *req)
{
    return req->api->deps.nats;
}

const rg_prices_t *
rg_req_prices(const rg_req_t *req)
{
    return req->api->deps.prices;
}

/* ---- database ---- */

static void
on_query(lc_status_t status, PGresult *res, void *arg)
{
    rg_req_t *req = arg;
    lc_log_context_set(req->request_id, NULL);
    char labels[64];
    snprintf(labels, sizeof(labels), "verb=\"%s\"", req->verb);
    lc_metric_observe(lc_metrics_histogram(req->api->deps.metrics, "voxi_registry_db_query_seconds",
                                           "database query latency, by verb", labels, NULL, 0),
                      (double) (lc_time_mono_ms() - req->query_started_mono_ms) / 1000.0);
    req->query_cb(req, status, res);
}

void
rg_req_query(rg_req_t *req, const char *sql, int nparams, const char *const *params, rg_query_cb cb)
{
    req->query_cb = cb;
    req->query_started_mono_ms = lc_time_mono_ms();
    lc_status_t st = lc_pg_query(req->api->deps.pg, sql, nparams, params, on_query, req);
    if (st != LC_OK)
        rg_req_fail_db(req, st == LC_ERR_INVALID ? LC_ERR_INTERNAL : LC_ERR_UNAVAILABLE, NULL);
}

const char *
rg_pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

const char *
rg_pg_constraint(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    return s ? s : "";
}

json_t *
rg_json_time(int64_t epoch_ms)
{
    char text[32];
    lc_time_format_rfc3339(epoch_ms, text, sizeof(text));
    return json_string(text);
}

/* ---- dispatch ---- */

/* Org ids go into event subjects: only [A-Za-z0-9_-], 1..RG_ID_MAX. */
static bool
subject_token_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > RG_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Copies src into a fixed buffer; false when it does not fit. */
static bool
copy_bounded(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* Fills req from the envelope and body; returns a message for the caller when bad. */
static const char *
read_request(rg_req_t *req, const Voxi__V1__Envelope *env, const ProtobufCMessage *body,
             lc_status_t *status)
{
    *status = LC_ERR_INVALID;
    if (env->principal != NULL) {
        if (!copy_bounded(req->principal_kind, sizeof(req->principal_kind), env->principal->kind) ||
            !copy_bounded(req->principal_id, sizeof(req->principal_id), env->principal->id))
            return "principal too long";
    } else {
        snprintf(req->principal_kind, sizeof(req->principal_kind), "unknown");
    }
    if (body->descriptor == &voxi__v1__resolve_number_request__descriptor) {
        const Voxi__V1__ResolveNumberRequest *r = (const Voxi__V1__ResolveNumberRequest *) body;
        if (!copy_bounded(req->number, sizeof(req->number), r->number) || r->number[0] == '\0')
            return "number must be 1 to 64 characters";
        return NULL;
    }
    const Voxi__V1__ApiRequest *r = (const Voxi__V1__ApiRequest *) body;
    if (!subject_token_ok(env->org_id))
        return "the request has no valid org id";
    snprintf(req->org_id, sizeof(req->org_id), "%s", env->org_id);
    /* an id that cannot exist is "not found" (handlers check the syntax); only bound it */
    if (!copy_bounded(req->id, sizeof(req->id), r->id))
        req->id[0] = '\0'; /* too long to be an id: "" is never found */
    if (!copy_bounded(req->starting_after, sizeof(req->starting_after), r->starting_after))
        return "starting_after is too long";
    if (r->limit < 0 || r->limit > LIMIT_MAX)
        return "limit must be between 1 and 100";
    req->limit = r->limit == 0 ? LIMIT_DEFAULT : r->limit;
    req->json_len = strlen(r->json);
    if (req->json_len > RG_JSON_MAX_BYTES) {
        *status = LC_ERR_TOO_LARGE;
        return "request body too large";
    }
    req->json = lc_strndup(r->json, req->json_len);
    return NULL;
}

static void
on_msg(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    sub_ctx_t *ctx = arg;
    rg_api_t *api = ctx->api;
    const verb_t *verb = ctx->verb;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL || reply_to[0] == '\0') {
        lc_metric_inc(api->dropped_no_reply);
        return;
    }
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    const ProtobufCMessageDescriptor *desc = verb->api
                                                 ? &voxi__v1__api_request__descriptor
                                                 : &voxi__v1__resolve_number_request__descriptor;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg), desc, &env, &body);
    char request_id[RG_ID_MAX + 1] = "";
    if (env != NULL)
        copy_bounded(request_id, sizeof(request_id), env->request_id);
    lc_log_context_set(request_id, NULL);
    if (st != LC_OK) {
        LC_LOG_RL(LC_LOG_WARN, "api", 1, "%s: malformed request: %s", verb->verb,
                  lc_status_name(st));
        uint8_t *buf = NULL;
        size_t len = 0;
        lc_pb_pack_error(request_id, st == LC_ERR_TOO_LARGE ? st : LC_ERR_INVALID,
                         "malformed request", &buf, &len);
        lc_nats_respond(nc, reply_to, buf, len);
        free(buf);
        count_request(api, verb->verb, LC_ERR_INVALID, lc_time_mono_ms());
        lc_pb_free(env, body);
        lc_log_context_clear();
        return;
    }
    if (lc_pb_deadline_passed(env)) {
        /* the caller has given up: answering would be wasted work */
        LC_DEBUG("api", "%s: deadline passed before handling: dropped", verb->verb);
        lc_metric_inc(api->dropped_expired);
        lc_pb_free(env, body);
        lc_log_context_clear();
        return;
    }

    rg_req_t *req = LC_NEW(rg_req_t);
    req->api = api;
    req->verb = verb->verb;
    req->reply_to = lc_strdup(reply_to);
    req->started_mono_ms = lc_time_mono_ms();
    req->deadline_unix_ms = env->deadline_unix_ms;
    snprintf(req->request_id, sizeof(req->request_id), "%s", request_id);
    api->inflight++;
    const char *problem = read_request(req, env, body, &st);
    lc_pb_free(env, body);
    if (problem != NULL) {
        rg_req_fail(req, st, problem);
        return;
    }
    LC_DEBUG("api", "%s org=%s id=%s", verb->verb, req->org_id, req->id);
    verb->handle(req);
    lc_log_context_clear();
}

lc_status_t
rg_api_start(const rg_api_deps_t *deps, rg_api_t **out)
{
    rg_api_t *api = LC_NEW(rg_api_t);
    api->deps = *deps;
    api->dropped_expired =
        lc_metrics_counter(deps->metrics, "voxi_registry_requests_dropped_total",
                           "requests dropped unanswered, by reason", "reason=\"deadline\"");
    api->dropped_no_reply =
        lc_metrics_counter(deps->metrics, "voxi_registry_requests_dropped_total",
                           "requests dropped unanswered, by reason", "reason=\"no_reply_subject\"");
    *out = NULL;
    for (size_t i = 0; i < NVERBS; i++) {
        api->subs_ctx[i] = (sub_ctx_t){.api = api, .verb = &verbs[i]};
        lc_status_t st = lc_nats_subscribe(deps->nats, verbs[i].subject, QUEUE_GROUP, on_msg,
                                           &api->subs_ctx[i], &api->subs[i]);
        if (st != LC_OK) {
            LC_ERROR("api", "cannot subscribe %s: %s", verbs[i].subject, lc_status_name(st));
            rg_api_stop(api);
            free(api);
            return st;
        }
    }
    LC_INFO("api", "serving %zu subjects in queue group %s", NVERBS, QUEUE_GROUP);
    *out = api;
    return LC_OK;
}

void
rg_api_stop(rg_api_t *api)
{
    if (api == NULL)
        return;
    for (size_t i = 0; i < NVERBS; i++) {
        if (api->subs[i] != NULL)
            lc_nats_unsubscribe(api->deps.nats, api->subs[i]);
        api->subs[i] = NULL;
    }
}

size_t
rg_api_inflight(const rg_api_t *api)
{
    return api ? api->inflight : 0;
}

void
rg_api_destroy(rg_api_t *api)
{
    free(api);
}
