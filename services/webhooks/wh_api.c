#include "wh_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/api.pb-c.h"
#include "wh_events.h"
#include "wh_target.h"

#define BODY_MAX_BYTES (256 * 1024)

typedef void (*handler_fn)(wh_req_t *req);

typedef struct {
    const char *verb;
    handler_fn fn;
    bool needs_id;
} route_t;

static const route_t routes[] = {
    {"endpoints.create", wh_endpoints_create, false},
    {"endpoints.list", wh_endpoints_list, false},
    {"endpoints.get", wh_endpoints_get, true},
    {"endpoints.update", wh_endpoints_update, true},
    {"endpoints.delete", wh_endpoints_delete, true},
    {"endpoints.rotate", wh_endpoints_rotate, true},
    {"endpoints.test", wh_endpoints_test, true},
    {"deliveries.list", wh_deliveries_list, true},
    {"deliveries.retry", wh_deliveries_retry, true},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

typedef struct {
    wh_api_t *api;
    const route_t *route;
    char subject[96];
    lc_nats_sub_t *sub;
} route_sub_t;

struct wh_api {
    wh_service_t *ws;
    route_sub_t subs[NROUTES];
    size_t inflight;
    lc_metric_t *m_ok, *m_client, *m_server;
};

/* ---- replies ---- */

static void
req_free(wh_req_t *req)
{
    wh_api_t *api = req->ws->api;
    api->inflight--;
    free(req->reply_to);
    json_decref(req->body);
    json_decref(req->errors);
    json_decref(req->doc);
    free(req->text);
    memset(req->secret, 0, sizeof(req->secret));
    free(req);
    lc_log_context_clear();
}

static void
send_envelope(wh_req_t *req, Voxi__V1__Envelope *env)
{
    size_t n = voxi__v1__envelope__get_packed_size(env);
    uint8_t *buf = lc_malloc(n);
    voxi__v1__envelope__pack(env, buf);
    lc_status_t st = lc_nats_respond(req->ws->nats, req->reply_to, buf, n);
    if (st != LC_OK)
        LC_WARN("api", "%s: reply not sent: %s", req->verb, lc_status_name(st));
    free(buf);
}

void
wh_req_reply(wh_req_t *req, int http_status, const char *json)
{
    Voxi__V1__ApiReply reply = VOXI__V1__API_REPLY__INIT;
    reply.http_status = http_status;
    reply.json = (char *) (json ? json : "");
    uint8_t *buf = NULL;
    size_t len = 0;
    lc_pb_meta_t meta = {.request_id = req->request_id, .org_id = req->org_id};
    if (lc_pb_pack(&meta, &reply.base, &buf, &len) == LC_OK) {
        lc_status_t st = lc_nats_respond(req->ws->nats, req->reply_to, buf, len);
        if (st != LC_OK)
            LC_WARN("api", "%s: reply not sent: %s", req->verb, lc_status_name(st));
    } else {
        LC_WARN("api", "%s: reply too large", req->verb);
    }
    free(buf);
    lc_metric_inc(req->ws->api->m_ok);
    LC_DEBUG("api", "%s -> %d in %lld ms", req->verb, http_status,
             (long long) (lc_time_mono_ms() - req->started_mono_ms));
    req_free(req);
}

static void
fail_with(wh_req_t *req, lc_status_t status, const char *message, json_t *fields)
{
    Voxi__V1__Envelope env = VOXI__V1__ENVELOPE__INIT;
    Voxi__V1__Error err = VOXI__V1__ERROR__INIT;
    env.request_id = req->request_id;
    env.org_id = req->org_id;
    err.status = (char *) lc_status_name(status);
    err.message = (char *) (message ? message : "");
    size_t n = fields ? json_array_size(fields) : 0;
    Voxi__V1__FieldError *items = n ? lc_calloc(n, sizeof(*items)) : NULL;
    Voxi__V1__FieldError **ptrs = n ? lc_calloc(n, sizeof(*ptrs)) : NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(fields, i);
        voxi__v1__field_error__init(&items[i]);
        items[i].field = (char *) json_string_value(json_object_get(f, "field"));
        items[i].message = (char *) json_string_value(json_object_get(f, "message"));
        ptrs[i] = &items[i];
    }
    err.n_fields = n;
    err.fields = ptrs;
    env.error = &err;
    send_envelope(req, &env);
    free(items);
    free(ptrs);
    int http = lc_status_http(status);
    lc_metric_inc(http >= 500 ? req->ws->api->m_server : req->ws->api->m_client);
    LC_DEBUG("api", "%s -> %s: %s", req->verb, lc_status_name(status), message ? message : "");
    req_free(req);
}

void
wh_req_fail(wh_req_t *req, lc_status_t status, const char *message)
{
    fail_with(req, status, message, NULL);
}

void
wh_req_field_error(wh_req_t *req, const char *field, const char *fmt, ...)
{
    if (req->errors == NULL)
        req->errors = json_array();
    if (json_array_size(req->errors) >= WH_FIELD_ERRORS_MAX)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* field names may echo hostile keys: keep them short and valid UTF-8 */
    json_t *f = json_string(field);
    if (f == NULL)
        f = json_string("?");
    json_array_append_new(req->errors, json_pack("{s:o, s:s}", "field", f, "message", msg));
}

void
wh_req_fail_fields(wh_req_t *req)
{
    json_t *first = json_array_get(req->errors, 0);
    char message[600];
    if (first)
        snprintf(message, sizeof(message), "%s %s",
                 json_string_value(json_object_get(first, "field")),
                 json_string_value(json_object_get(first, "message")));
    else
        snprintf(message, sizeof(message), "the request is not valid");
    fail_with(req, LC_ERR_INVALID, message, req->errors);
}

void
wh_req_fail_db(wh_req_t *req, lc_status_t status)
{
    switch (status) {
    case LC_ERR_TIMEOUT:
        wh_req_fail(req, LC_ERR_TIMEOUT, "the database did not answer in time");
        return;
    case LC_ERR_UNAVAILABLE:
    case LC_ERR_FULL:
    case LC_ERR_CANCELLED:
        wh_req_fail(req, LC_ERR_UNAVAILABLE, "the database is not available; retry shortly");
        return;
    default:
        LC_WARN("api", "%s: query failed: %s", req->verb, lc_status_name(status));
        wh_req_fail(req, LC_ERR_INTERNAL, "internal error");
        return;
    }
}

/* ---- queries ---- */

static void
on_query(lc_status_t status, PGresult *res, void *arg)
{
    wh_req_t *req = arg;
    lc_log_context_set(req->request_id, NULL);
    wh_query_cb cb = req->query_cb;
    req->query_cb = NULL;
    cb(req, status, res);
}

void
wh_req_query(wh_req_t *req, const char *sql, int nparams, const char *const *params, wh_query_cb cb)
{
    req->query_cb = cb;
    lc_status_t st = lc_pg_query(req->ws->pg, sql, nparams, params, on_query, req);
    if (st != LC_OK) {
        req->query_cb = NULL;
        wh_req_fail(req, LC_ERR_UNAVAILABLE, "the service is overloaded; retry shortly");
    }
}

/* ---- dispatch ---- */

static bool
copy_id(char *dst, size_t size, const char *src)
{
    if (src == NULL || src[0] == '\0') {
        dst[0] = '\0';
        return true;
    }
    if (!wh_id_valid(src) || strlen(src) >= size)
        return false;
    snprintf(dst, size, "%s", src);
    return true;
}

static void
on_request(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    route_sub_t *rs = arg;
    wh_api_t *api = rs->api;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL || reply_to[0] == '\0' || strlen(reply_to) > 256)
        return;

    wh_req_t *req = LC_NEW(wh_req_t);
    req->ws = api->ws;
    req->verb = rs->route->verb;
    req->reply_to = lc_strdup(reply_to);
    req->started_mono_ms = lc_time_mono_ms();
    api->inflight++;

    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__api_request__descriptor, &env, &body);
    if (env && env->request_id)
        snprintf(req->request_id, sizeof(req->request_id), "%.*s", WH_ID_MAX, env->request_id);
    lc_log_context_set(req->request_id, NULL);
    if (st != LC_OK) {
        LC_LOG_RL(LC_LOG_WARN, "api", 1, "%s: malformed request: %s", req->verb,
                  lc_status_name(st));
        lc_pb_free(env, body);
        wh_req_fail(req, LC_ERR_INVALID, "malformed request");
        return;
    }
    Voxi__V1__ApiRequest *ar = (Voxi__V1__ApiRequest *) body;
    if (!wh_id_valid(env->org_id) || strlen(env->org_id) > WH_ID_MAX) {
        lc_pb_free(env, body);
        wh_req_fail(req, LC_ERR_INVALID, "the request has no valid org_id");
        return;
    }
    snprintf(req->org_id, sizeof(req->org_id), "%s", env->org_id);
    if (env->principal) {
        snprintf(req->principal_kind, sizeof(req->principal_kind), "%s",
                 env->principal->kind ? env->principal->kind : "");
        snprintf(req->principal_id, sizeof(req->principal_id), "%s",
                 env->principal->id ? env->principal->id : "");
    }
    req->deadline_unix_ms = env->deadline_unix_ms;
    if (lc_pb_deadline_passed(env)) {
        lc_pb_free(env, body);
        wh_req_fail(req, LC_ERR_TIMEOUT, "the request's deadline passed before it was served");
        return;
    }
    if (!copy_id(req->id, sizeof(req->id), ar->id)) {
        lc_pb_free(env, body);
        wh_req_fail(req, LC_ERR_NOT_FOUND, "no such object");
        return;
    }
    if (rs->route->needs_id && req->id[0] == '\0') {
        lc_pb_free(env, body);
        wh_req_fail(req, LC_ERR_INVALID, "the request needs an id");
        return;
    }
    if (!copy_id(req->starting_after, sizeof(req->starting_after), ar->starting_after)) {
        lc_pb_free(env, body);
        wh_req_field_error(req, "starting_after", "is not a valid id");
        wh_req_fail_fields(req);
        return;
    }
    req->limit = ar->limit >= 1 && ar->limit <= 100 ? ar->limit : 20;
    size_t json_len = ar->json ? strlen(ar->json) : 0;
    if (json_len > BODY_MAX_BYTES) {
        lc_pb_free(env, body);
        wh_req_fail(req, LC_ERR_TOO_LARGE, "the request body is too large");
        return;
    }
    if (json_len == 0) {
        req->body = json_object();
    } else {
        json_error_t jerr;
        req->body = json_loadb(ar->json, json_len, JSON_REJECT_DUPLICATES, &jerr);
        if (req->body == NULL || !json_is_object(req->body)) {
            lc_pb_free(env, body);
            wh_req_fail(req, LC_ERR_INVALID, "the request body must be a JSON object");
            return;
        }
    }
    lc_pb_free(env, body);
    rs->route->fn(req);
}

lc_status_t
wh_api_create(wh_service_t *ws, wh_api_t **out)
{
    wh_api_t *api = LC_NEW(wh_api_t);
    api->ws = ws;
    api->m_ok = lc_metrics_counter(ws->metrics, "voxi_webhooks_api_requests_total",
                                   "API requests by outcome", "outcome=\"ok\"");
    api->m_client = lc_metrics_counter(ws->metrics, "voxi_webhooks_api_requests_total",
                                       "API requests by outcome", "outcome=\"client_error\"");
    api->m_server = lc_metrics_counter(ws->metrics, "voxi_webhooks_api_requests_total",
                                       "API requests by outcome", "outcome=\"server_error\"");
    *out = api;
    return LC_OK;
}

lc_status_t
wh_api_start(wh_api_t *api)
{
    for (size_t i = 0; i < NROUTES; i++) {
        route_sub_t *rs = &api->subs[i];
        rs->api = api;
        rs->route = &routes[i];
        snprintf(rs->subject, sizeof(rs->subject), "voxi.webhooks.%s", routes[i].verb);
        LC_TRY(lc_nats_subscribe(api->ws->nats, rs->subject, WH_QUEUE_GROUP, on_request, rs,
                                 &rs->sub));
    }
    return LC_OK;
}

void
wh_api_stop(wh_api_t *api)
{
    if (api == NULL)
        return;
    for (size_t i = 0; i < NROUTES; i++) {
        lc_nats_unsubscribe(api->ws->nats, api->subs[i].sub);
        api->subs[i].sub = NULL;
    }
}

size_t
wh_api_inflight(const wh_api_t *api)
{
    return api ? api->inflight : 0;
}

void
wh_api_destroy(wh_api_t *api)
{
    free(api);
}
