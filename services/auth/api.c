#include "au_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "au_text.h"
#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

typedef struct {
    au_ctx_t *ctx;
    const char *op;
    au_handler_fn fn;
} route_t;

/* ---- requests ---- */

static void
req_free(au_req_t *req)
{
    if (req->free_data)
        req->free_data(req->data);
    lc_pb_free(req->env, req->api ? &req->api->base : NULL);
    free(req->reply_to);
    req->ctx->inflight--;
    lc_log_context_clear();
    free(req);
}

static lc_metric_t *
op_counter(au_ctx_t *ctx, const char *op, const char *status)
{
    char labels[128];
    snprintf(labels, sizeof(labels), "op=\"%s\",status=\"%s\"", op, status);
    return lc_metrics_counter(ctx->metrics, "voxi_auth_api_requests_total",
                              "API requests auth answered, by operation and status", labels);
}

static void
send_and_free(au_req_t *req, uint8_t *buf, size_t len, const char *status)
{
    lc_status_t st = lc_nats_respond(req->ctx->nc, req->reply_to, buf, len);
    if (st != LC_OK)
        LC_LOG_RL(LC_LOG_WARN, "api", 1, "%s: reply not sent: %s", req->op, lc_status_name(st));
    lc_metric_inc(op_counter(req->ctx, req->op, status));
    LC_DEBUG("api", "%s -> %s in %lld ms", req->op, status,
             (long long) (lc_time_mono_ms() - req->started_ms));
    free(buf);
    req_free(req);
}

static void
on_api_msg(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    route_t *route = arg;
    au_ctx_t *ctx = route->ctx;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL || reply_to[0] == '\0')
        return;

    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__api_request__descriptor, &env, &body);
    au_req_t *req = LC_NEW(au_req_t);
    req->ctx = ctx;
    req->op = route->op;
    req->reply_to = lc_strdup(reply_to);
    req->env = env;
    req->api = (Voxi__V1__ApiRequest *) body;
    req->started_ms = lc_time_mono_ms();
    ctx->inflight++;
    lc_log_context_set(env ? env->request_id : "", NULL);
    if (st != LC_OK) {
        LC_LOG_RL(LC_LOG_WARN, "api", 1, "%s: malformed request: %s", route->op,
                  lc_status_name(st));
        au_req_reply_error(req, LC_ERR_INVALID, "malformed request");
        return;
    }
    if (lc_pb_deadline_passed(env)) {
        LC_LOG_RL(LC_LOG_WARN, "api", 1, "%s: deadline passed before it arrived: dropped",
                  route->op);
        lc_metric_inc(op_counter(ctx, route->op, "expired"));
        req_free(req);
        return;
    }
    route->fn(req);
}

lc_status_t
au_api_subscribe(au_ctx_t *ctx, const char *subject, const char *op, au_handler_fn fn)
{
    if (ctx->nsubs >= AU_MAX_SUBS)
        return LC_ERR_FULL;
    route_t *route = LC_NEW(route_t);
    route->ctx = ctx;
    route->op = op;
    route->fn = fn;
    ctx->sub_args[ctx->nsubs] = route;
    return lc_nats_subscribe(ctx->nc, subject, AU_QUEUE, on_api_msg, route,
                             &ctx->subs[ctx->nsubs++]);
}

void
au_req_reply_json(au_req_t *req, int http_status, json_t *body)
{
    Voxi__V1__ApiReply rep = VOXI__V1__API_REPLY__INIT;
    char *text = NULL;
    rep.http_status = http_status;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (text == NULL) {
            au_req_reply_error(req, LC_ERR_INTERNAL, "internal error");
            return;
        }
        rep.json = text;
    }
    lc_pb_meta_t meta = {.request_id = req->env ? req->env->request_id : ""};
    uint8_t *buf = NULL;
    size_t len = 0;
    lc_status_t st = lc_pb_pack(&meta, &rep.base, &buf, &len);
    free(text);
    if (st != LC_OK) {
        au_req_reply_error(req, st, "response too large");
        return;
    }
    send_and_free(req, buf, len, "ok");
}

static void
reply_error_fields(au_req_t *req, lc_status_t status, const char *message, au_fields_t *f)
{
    Voxi__V1__Envelope env = VOXI__V1__ENVELOPE__INIT;
    Voxi__V1__Error err = VOXI__V1__ERROR__INIT;
    env.request_id = req->env ? req->env->request_id : (char *) "";
    err.status = (char *) lc_status_name(status);
    err.message = (char *) (message ? message : "");
    if (f != NULL) {
        err.n_fields = f->n;
        err.fields = f->items;
    }
    env.error = &err;
    size_t len = voxi__v1__envelope__get_packed_size(&env);
    uint8_t *buf = lc_malloc(len);
    voxi__v1__envelope__pack(&env, buf);
    if (status == LC_ERR_INTERNAL || status == LC_ERR_DB || status == LC_ERR_UNAVAILABLE)
        LC_LOG_RL(LC_LOG_WARN, "api", 2, "%s failed: %s (%s)", req->op, lc_status_name(status),
                  message ? message : "");
    send_and_free(req, buf, len, lc_status_name(status));
}

void
au_req_reply_error(au_req_t *req, lc_status_t status, const char *message)
{
    reply_error_fields(req, status, message, NULL);
}

void
au_fields_add(au_fields_t *f, const char *field, const char *fmt, ...)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->items = lc_realloc(f->items, f->cap * sizeof(*f->items));
    }
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    Voxi__V1__FieldError *fe = LC_NEW(Voxi__V1__FieldError);
    voxi__v1__field_error__init(fe);
    fe->field = lc_strdup(field);
    fe->message = lc_strdup(message);
    f->items[f->n++] = fe;
}

void
au_fields_free(au_fields_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i]->field);
        free(f->items[i]->message);
        free(f->items[i]);
    }
    free(f->items);
    f->items = NULL;
    f->n = f->cap = 0;
}

void
au_req_reply_invalid(au_req_t *req, const char *message, au_fields_t *f)
{
    reply_error_fields(req, LC_ERR_INVALID, message, f);
    if (f)
        au_fields_free(f);
}

/* ---- the caller ---- */

const char *
au_req_org(const au_req_t *req)
{
    if (req->env == NULL || !au_id_valid(req->env->org_id, "org_"))
        return NULL;
    return req->env->org_id;
}

const char *
au_req_principal_kind(const au_req_t *req)
{
    return req->env && req->env->principal ? req->env->principal->kind : "";
}

const char *
au_req_principal_id(const au_req_t *req)
{
    return req->env && req->env->principal ? req->env->principal->id : "";
}

au_scopes_t
au_req_principal_scopes(const au_req_t *req)
{
    au_scopes_t set = 0;
    if (req->env == NULL || req->env->principal == NULL)
        return 0;
    for (size_t i = 0; i < req->env->principal->n_scopes; i++) {
        const char *s = req->env->principal->scopes[i];
        set |= au_scope_parse(s, strlen(s));
    }
    return set;
}

json_t *
au_req_body_object(au_req_t *req)
{
    const char *text = req->api ? req->api->json : "";
    size_t len = strlen(text);
    if (len == 0)
        return json_object();
    if (len > AU_BODY_MAX_BYTES) {
        au_req_reply_error(req, LC_ERR_TOO_LARGE, "request body too large");
        return NULL;
    }
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL || !json_is_object(obj)) {
        json_decref(obj);
        au_req_reply_error(req, LC_ERR_INVALID,
                           obj == NULL ? "request body is not valid JSON (or repeats a key)"
                                       : "request body must be a JSON object");
        return NULL;
    }
    return obj;
}

/* ---- JSON and time ---- */

json_t *
au_json_time(const char *epoch_ms_text)
{
    if (epoch_ms_text == NULL || epoch_ms_text[0] == '\0')
        return json_null();
    char out[32];
    lc_time_format_rfc3339(strtoll(epoch_ms_text, NULL, 10), out, sizeof(out));
    return json_string(out);
}
