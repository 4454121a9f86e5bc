#include "wh_invoke.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/webhooks.pb-c.h"
#include "wh_events.h"
#include "wh_http.h"
#include "wh_sign.h"
#include "wh_target.h"

#define ARGUMENTS_MAX_BYTES (256 * 1024)
#define FUNCTION_NAME_MAX 100
#define DEADLINE_MARGIN_MS 50 /* leave the caller time to receive our answer */

typedef struct {
    wh_service_t *ws;
    char *reply_to;
    char request_id[WH_ID_MAX + 1];
    char org_id[WH_ID_MAX + 1];
    char invocation_id[32];
    char function[FUNCTION_NAME_MAX + 1];
    char call_id[WH_ID_MAX + 1];
    char agent_id[WH_ID_MAX + 1];
    char *url;
    char *arguments;
    char secret[WH_SECRET_TEXT_MAX];
    int64_t timeout_ms;
} invoke_t;

static lc_nats_sub_t *invoke_sub;
static size_t invokes_inflight;

static void
invoke_free(invoke_t *inv)
{
    invokes_inflight--;
    free(inv->reply_to);
    free(inv->url);
    free(inv->arguments);
    memset(inv->secret, 0, sizeof(inv->secret));
    free(inv);
    lc_log_context_clear();
}

static void
respond_error(wh_service_t *ws, const char *reply_to, const char *request_id, lc_status_t st,
              const char *field, const char *message)
{
    Voxi__V1__Envelope env = VOXI__V1__ENVELOPE__INIT;
    Voxi__V1__Error err = VOXI__V1__ERROR__INIT;
    Voxi__V1__FieldError fe = VOXI__V1__FIELD_ERROR__INIT;
    Voxi__V1__FieldError *fields[1] = {&fe};
    env.request_id = (char *) request_id;
    err.status = (char *) lc_status_name(st);
    err.message = (char *) message;
    if (field) {
        fe.field = (char *) field;
        fe.message = (char *) message;
        err.fields = fields;
        err.n_fields = 1;
    }
    env.error = &err;
    size_t n = voxi__v1__envelope__get_packed_size(&env);
    uint8_t *buf = lc_malloc(n);
    voxi__v1__envelope__pack(&env, buf);
    lc_nats_respond(ws->nats, reply_to, buf, n);
    free(buf);
}

static void
count(wh_service_t *ws, const char *status, int64_t duration_ms)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "status=\"%s\"", status);
    lc_metric_inc(lc_metrics_counter(ws->metrics, "voxi_webhooks_tool_calls_total",
                                     "tool calls by outcome", labels));
    lc_metric_observe(lc_metrics_histogram(ws->metrics, "voxi_webhooks_tool_call_duration_seconds",
                                           "duration of tool calls", NULL, NULL, 0),
                      (double) duration_ms / 1000.0);
}

static void
finish(invoke_t *inv, const char *status, int http_status, const char *result_json,
       int64_t duration_ms, const char *error)
{
    Voxi__V1__InvokeReply rep = VOXI__V1__INVOKE_REPLY__INIT;
    rep.status = (char *) status;
    rep.http_status = http_status;
    rep.result_json = (char *) (result_json ? result_json : "");
    rep.duration_ms = duration_ms;
    rep.error = (char *) (error ? error : "");
    rep.invocation_id = inv->invocation_id;
    lc_pb_meta_t meta = {.request_id = inv->request_id, .org_id = inv->org_id};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (lc_pb_pack(&meta, &rep.base, &buf, &len) == LC_OK)
        lc_nats_respond(inv->ws->nats, inv->reply_to, buf, len);
    free(buf);

    json_t *data =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "invocation_id", inv->invocation_id, "function",
                  inv->function, "call_id", inv->call_id, "agent_id", inv->agent_id, "status",
                  status, "duration_ms", (json_int_t) duration_ms);
    json_object_set_new(data, "http_status",
                        http_status > 0 ? json_integer(http_status) : json_null());
    json_object_set_new(data, "error", error && error[0] ? json_string(error) : json_null());
    lc_events_publish(inv->ws->events, inv->org_id, "function.executed", data, NULL);
    count(inv->ws, status, duration_ms);
    LC_INFO("invoke", "%s %s: %s (HTTP %d) in %lld ms", inv->invocation_id, inv->function, status,
            http_status, (long long) duration_ms);
    invoke_free(inv);
}

static void
on_http_done(const wh_http_result_t *res, void *arg)
{
    invoke_t *inv = arg;
    lc_log_context_set(inv->request_id, NULL);
    const char *status;
    const char *result = NULL;
    char error[256] = "";
    json_error_t jerr;
    json_t *parsed = NULL;
    switch (res->error) {
    case WH_HTTP_RESPONSE:
        if (res->body_len > 0)
            parsed = json_loadb(res->body, res->body_len, 0, &jerr);
        if (res->status >= 200 && res->status <= 299) {
            if (parsed != NULL) {
                status = "ok";
                result = res->body;
            } else {
                status = "invalid_response";
                snprintf(error, sizeof(error), "the tool answered %d without a JSON body",
                         res->status);
            }
        } else {
            status = "http_error";
            result = parsed ? res->body : NULL;
            snprintf(error, sizeof(error), "the tool answered HTTP %d", res->status);
        }
        json_decref(parsed);
        break;
    case WH_HTTP_TIMEOUT:
        status = "timeout";
        snprintf(error, sizeof(error), "no answer within %lld ms", (long long) inv->timeout_ms);
        break;
    case WH_HTTP_BLOCKED:
    case WH_HTTP_INVALID:
        status = "blocked";
        snprintf(error, sizeof(error), "%s", res->error_text);
        break;
    case WH_HTTP_TOO_LARGE:
        status = "too_large";
        snprintf(error, sizeof(error), "%s", res->error_text);
        break;
    default:
        status = "error";
        snprintf(error, sizeof(error), "%s: %s", wh_http_error_name(res->error), res->error_text);
        break;
    }
    finish(inv, status, res->status, result, res->duration_ms, error);
}

static void
send_call(invoke_t *inv)
{
    char created[32];
    lc_time_format_rfc3339(lc_time_wall_ms(), created, sizeof(created));
    json_error_t jerr;
    json_t *args = json_loads(inv->arguments, 0, &jerr);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:o, s:s, s:s}}", "id", inv->invocation_id, "type",
                  "function.call", "created_at", created, "org_id", inv->org_id, "data", "function",
                  inv->function, "arguments", args ? args : json_object(), "call_id", inv->call_id,
                  "agent_id", inv->agent_id);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int64_t now_s = lc_time_wall_ms() / 1000;
    char signature[WH_SIGNATURE_HEADER_MAX];
    lc_status_t st = wh_sign_header(inv->secret, NULL, inv->invocation_id, now_s, text,
                                    strlen(text), signature, sizeof(signature));
    if (st != LC_OK) {
        free(text);
        finish(inv, "error", 0, NULL, 0, "the signing secret is unusable");
        return;
    }
    char h_id[80], h_ts[48], h_sig[WH_SIGNATURE_HEADER_MAX + 32];
    snprintf(h_id, sizeof(h_id), "webhook-id: %s", inv->invocation_id);
    snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %" PRId64, now_s);
    snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s", signature);
    const char *headers[] = {
        "Content-Type: application/json", "Accept: application/json", h_id, h_ts, h_sig, NULL};
    size_t max = (size_t) inv->ws->cfg->tool_max_response_bytes;
    wh_http_req_t req = {
        .url = inv->url,
        .headers = headers,
        .body = text,
        .body_len = strlen(text),
        .timeout_ms = inv->timeout_ms,
        .keep_bytes = max,
        .max_bytes = max,
        .allow_http = inv->ws->cfg->allow_http,
    };
    st = wh_http_send(inv->ws->http, &req, on_http_done, inv);
    free(text);
    if (st != LC_OK)
        finish(inv, "error", 0, NULL, 0, "the service is shutting down");
}

static void
on_org_secret(lc_status_t status, PGresult *res, void *arg)
{
    invoke_t *inv = arg;
    lc_log_context_set(inv->request_id, NULL);
    if (status != LC_OK || PQntuples(res) != 1) {
        respond_error(inv->ws, inv->reply_to, inv->request_id, LC_ERR_UNAVAILABLE, NULL,
                      "the org's signing secret could not be read");
        invoke_free(inv);
        return;
    }
    snprintf(inv->secret, sizeof(inv->secret), "%s", PQgetvalue(res, 0, 0));
    send_call(inv);
}

static bool
name_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return n >= 1 && n <= FUNCTION_NAME_MAX;
}

static void
on_invoke(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    wh_service_t *ws = arg;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL || reply_to[0] == '\0' || strlen(reply_to) > 256)
        return;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__invoke_request__descriptor, &env, &body);
    char request_id[WH_ID_MAX + 1] = "";
    if (env && env->request_id)
        snprintf(request_id, sizeof(request_id), "%.*s", WH_ID_MAX, env->request_id);
    lc_log_context_set(request_id, NULL);
    const Voxi__V1__InvokeRequest *r = (const Voxi__V1__InvokeRequest *) body;
    const char *bad_field = NULL, *bad = NULL;
    char why[200] = "";
    wh_target_t t;
    if (st != LC_OK)
        bad = "malformed request";
    else if (!wh_id_valid(env->org_id))
        bad = "the request has no valid org_id";
    else if (lc_pb_deadline_passed(env))
        bad = "deadline";
    else if (wh_url_parse(r->url, ws->cfg->allow_http, &t, why, sizeof(why)) != LC_OK) {
        bad_field = "url";
        bad = why;
    } else if (!name_valid(r->function_name)) {
        bad_field = "function_name";
        bad = "must be 1..100 characters of letters, digits, '_', '-' and '.'";
    } else if ((r->call_id[0] && !wh_id_valid(r->call_id)) ||
               (r->agent_id[0] && !wh_id_valid(r->agent_id))) {
        bad_field = r->call_id[0] && !wh_id_valid(r->call_id) ? "call_id" : "agent_id";
        bad = "is not a valid id";
    } else if (r->timeout_ms < 0) {
        bad_field = "timeout_ms";
        bad = "must not be negative";
    } else if (r->secret[0] != '\0') {
        uint8_t key[WH_SECRET_MAX_KEY_BYTES];
        size_t key_len;
        if (wh_secret_decode(r->secret, key, sizeof(key), &key_len) != LC_OK) {
            bad_field = "secret";
            bad = "must be a whsec_ secret (base64 of 16..64 bytes)";
        }
        memset(key, 0, sizeof(key));
    }
    if (bad == NULL) {
        size_t alen = strlen(r->arguments_json);
        json_error_t jerr;
        json_t *args = alen > 0 && alen <= ARGUMENTS_MAX_BYTES
                           ? json_loadb(r->arguments_json, alen, 0, &jerr)
                           : NULL;
        if (alen > ARGUMENTS_MAX_BYTES || (alen > 0 && !json_is_object(args))) {
            bad_field = "arguments_json";
            bad = alen > ARGUMENTS_MAX_BYTES ? "is too large" : "must be a JSON object";
        }
        json_decref(args);
    }
    if (bad != NULL) {
        lc_status_t code = strcmp(bad, "deadline") == 0 ? LC_ERR_TIMEOUT : LC_ERR_INVALID;
        respond_error(ws, reply_to, request_id, code, bad_field,
                      code == LC_ERR_TIMEOUT ? "the request's deadline passed" : bad);
        lc_pb_free(env, body);
        lc_log_context_clear();
        return;
    }

    invoke_t *inv = LC_NEW(invoke_t);
    invokes_inflight++;
    inv->ws = ws;
    inv->reply_to = lc_strdup(reply_to);
    snprintf(inv->request_id, sizeof(inv->request_id), "%s", request_id);
    snprintf(inv->org_id, sizeof(inv->org_id), "%s", env->org_id);
    lc_id_new("inv_", inv->invocation_id, sizeof(inv->invocation_id));
    snprintf(inv->function, sizeof(inv->function), "%s", r->function_name);
    snprintf(inv->call_id, sizeof(inv->call_id), "%s", r->call_id);
    snprintf(inv->agent_id, sizeof(inv->agent_id), "%s", r->agent_id);
    inv->url = lc_strdup(r->url);
    inv->arguments = lc_strdup(r->arguments_json[0] ? r->arguments_json : "{}");
    int64_t timeout = ws->cfg->tool_timeout_max_ms;
    if (r->timeout_ms > 0 && r->timeout_ms < timeout)
        timeout = r->timeout_ms;
    if (env->deadline_unix_ms > 0) {
        int64_t left = env->deadline_unix_ms - lc_time_wall_ms() - DEADLINE_MARGIN_MS;
        if (left < timeout)
            timeout = left > 1 ? left : 1;
    }
    inv->timeout_ms = timeout;
    bool own_secret = r->secret[0] != '\0';
    if (own_secret)
        snprintf(inv->secret, sizeof(inv->secret), "%s", r->secret);
    lc_pb_free(env, body);

    if (own_secret) {
        send_call(inv);
        return;
    }
    char fresh[WH_SECRET_TEXT_MAX];
    wh_secret_generate(fresh, sizeof(fresh));
    const char *params[] = {inv->org_id, fresh};
    lc_status_t qs = lc_pg_query(ws->pg,
                                 "INSERT INTO webhook_org_secrets (org_id, secret) VALUES ($1, $2) "
                                 "ON CONFLICT (org_id) DO UPDATE SET org_id = EXCLUDED.org_id "
                                 "RETURNING secret",
                                 2, params, on_org_secret, inv);
    memset(fresh, 0, sizeof(fresh));
    if (qs != LC_OK) {
        respond_error(ws, inv->reply_to, inv->request_id, LC_ERR_UNAVAILABLE, NULL,
                      "the service is overloaded; retry shortly");
        invoke_free(inv);
    }
}

lc_status_t
wh_invoke_start(wh_service_t *ws)
{
    return lc_nats_subscribe(ws->nats, WH_INVOKE_SUBJECT, WH_QUEUE_GROUP, on_invoke, ws,
                             &invoke_sub);
}

void
wh_invoke_stop(wh_service_t *ws)
{
    lc_nats_unsubscribe(ws->nats, invoke_sub);
    invoke_sub = NULL;
}

size_t
wh_invoke_inflight(void)
{
    return invokes_inflight;
}
