/*
 * One API request after routing: ask auth (voxi.auth.authenticate), then serve a local
 * route or check the request and forward it to the owning service, and map its reply.
 * A request with an API key whose auth decision and rate-limit slice the gateway holds
 * (gw_authcache.h) skips the question and is forwarded at once.
 *
 * The request waits in lc_http's deferred table while NATS works; callbacks find it by
 * id (lc_http_resume), never by pointer. A gw_call_t lives from gw_call_start until the
 * response is sent or the request is gone, and owns at most one NATS request at a time;
 * the two always end together: a NATS callback resumes the HTTP request, and an HTTP
 * abort (deadline, client gone) cancels the NATS request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_authcache.h"
#include "gw_internal.h"
#include "gw_recording.h"
#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/api.pb-c.h"

#define AUTH_SUBJECT "voxi.auth.authenticate"
#define CLIENT_IP_MAX 64

typedef enum {
    STAGE_AUTH = 0,
    STAGE_BACKEND,
} stage_t;

typedef struct {
    gw_t *gw;
    gw_ctx_t ctx;
    const gw_route_t *route;
    char id[GW_PARAM_MAX + 1];
    char sub_id[GW_PARAM_MAX + 1];
    char client_ip[CLIENT_IP_MAX];
    stage_t stage;
    uint64_t http_id;
    uint64_t nats_id;
    bool nats_pending;
    bool keyed; /* an API key: key_hash is set and auth is asked for a slice */
    uint8_t key_hash[GW_AUTHCACHE_HASH_LEN];
} gw_call_t;

/* ---- rate-limit headers (IETF httpapi RateLimit header fields draft, and X-RateLimit-*) */

void
gw_ratelimit_headers(h2o_req_t *req, const gw_ratelimit_t *rl)
{
    if (!rl->present)
        return;
    char v[160];
    if (rl->policy[0] != '\0')
        lc_http_add_header(req, "RateLimit-Policy", rl->policy);
    snprintf(v, sizeof(v), "limit=%lld, remaining=%lld, reset=%lld", (long long) rl->limit,
             (long long) rl->remaining, (long long) rl->reset_s);
    lc_http_add_header(req, "RateLimit", v);
    snprintf(v, sizeof(v), "%lld", (long long) rl->limit);
    lc_http_add_header(req, "X-RateLimit-Limit", v);
    snprintf(v, sizeof(v), "%lld", (long long) rl->remaining);
    lc_http_add_header(req, "X-RateLimit-Remaining", v);
    snprintf(v, sizeof(v), "%lld", (long long) rl->reset_s);
    lc_http_add_header(req, "X-RateLimit-Reset", v);
}

static int64_t
clamp_nonneg(int64_t v)
{
    return v < 0 ? 0 : v;
}

static void
copy_ratelimit(gw_ratelimit_t *out, const Voxi__V1__RateLimit *rl)
{
    if (rl == NULL)
        return;
    out->present = true;
    out->limit = clamp_nonneg(rl->limit);
    out->remaining = clamp_nonneg(rl->remaining);
    out->reset_s = clamp_nonneg(rl->reset_s);
    out->retry_after_s = clamp_nonneg(rl->retry_after_s);
    /* from the bus, but it becomes a header: printable ASCII only, bounded */
    gw_printable(rl->policy, strlen(rl->policy), GW_POLICY_MAX - 4, out->policy,
                 sizeof(out->policy));
}

/* ---- lifetime ---- */

static void
call_free(gw_call_t *call)
{
    gw_t *gw = call->gw;
    gw->ncalls--;
    lc_metric_dec(gw->inflight);
    free(call);
}

static void on_abort(lc_http_t *http, uint64_t id, h2o_req_t *req, void *arg);

static void
call_defer(gw_call_t *call, h2o_req_t *req, int64_t timeout_ms)
{
    call->http_id =
        lc_http_defer(call->gw->http, req, timeout_ms + GW_DEADLINE_GRACE_MS, on_abort, call);
}

/* The HTTP side ended first: deadline passed (req alive) or the client went away. */
static void
on_abort(lc_http_t *http, uint64_t id, h2o_req_t *req, void *arg)
{
    (void) http;
    (void) id;
    gw_call_t *call = arg;
    gw_t *gw = call->gw;
    lc_log_context_set(call->ctx.request_id, NULL);
    if (call->nats_pending)
        lc_nats_request_cancel(gw->nats, call->nats_id);
    if (req != NULL) {
        LC_WARN("http", "no answer from %s in time",
                call->stage == STAGE_AUTH ? "auth" : call->route->subject);
        gw_respond_problem(gw, req, &call->ctx, 504, "timeout",
                           "The request did not complete in time.", NULL, 0);
    }
    lc_log_context_clear();
    call_free(call);
}

/* ---- replies from the bus ---- */

/* Answers for a failed NATS request (no reply message). who: "authentication", "agents". */
static void
respond_bus_failure(gw_call_t *call, h2o_req_t *req, lc_status_t st, const char *who,
                    int64_t timeout_ms)
{
    char detail[GW_DETAIL_MAX];
    int status = gw_problem_http_for_status(st);
    switch (st) {
    case LC_ERR_TIMEOUT:
        snprintf(detail, sizeof(detail), "The %s service did not answer within %lld ms.", who,
                 (long long) timeout_ms);
        break;
    case LC_ERR_NO_RESPONDERS:
        snprintf(detail, sizeof(detail), "The %s service is not available.", who);
        break;
    case LC_ERR_TOO_LARGE:
        snprintf(detail, sizeof(detail), "The request is too large to forward.");
        break;
    case LC_ERR_CANCELLED:
        snprintf(detail, sizeof(detail), "The gateway is shutting down.");
        break;
    default:
        snprintf(detail, sizeof(detail), "The %s service could not be reached.", who);
        break;
    }
    gw_respond_problem(call->gw, req, &call->ctx, status, lc_status_name(st), detail, NULL, 0);
}

/* An Envelope.error from a service: its status, message and field errors. */
static void
respond_envelope_error(gw_call_t *call, h2o_req_t *req, lc_status_t st, const Voxi__V1__Error *err)
{
    size_t n = err->n_fields < GW_PROBLEM_MAX_ERRORS ? err->n_fields : GW_PROBLEM_MAX_ERRORS;
    gw_field_error_t *fields = n ? lc_calloc(n, sizeof(*fields)) : NULL;
    for (size_t i = 0; i < n; i++) {
        fields[i].field = err->fields[i]->field;
        fields[i].message = err->fields[i]->message;
    }
    int status = gw_problem_http_for_status(st);
    const char *detail = err->message[0] != '\0' ? err->message : NULL;
    gw_respond_problem(call->gw, req, &call->ctx, status, lc_status_name(st), detail, fields, n);
    free(fields);
}

static void
respond_bad_reply(gw_call_t *call, h2o_req_t *req, const char *who, lc_status_t st)
{
    LC_LOG_RL(LC_LOG_WARN, "http", 1, "bad reply from the %s service: %s", who, lc_status_name(st));
    char detail[GW_DETAIL_MAX];
    snprintf(detail, sizeof(detail), "The %s service sent a malformed reply.", who);
    gw_respond_problem(call->gw, req, &call->ctx, 502, "protocol", detail, NULL, 0);
}

/* The service a route's subject belongs to, for messages: "voxi.registry.agents.get" ->
 * "registry". */
static void
service_of(const gw_route_t *route, char *out, size_t out_size)
{
    const char *s = route->subject ? strchr(route->subject, '.') : NULL;
    const char *end = s ? strchr(s + 1, '.') : NULL;
    if (s == NULL || end == NULL) {
        snprintf(out, out_size, "backend");
        return;
    }
    snprintf(out, out_size, "%.*s", (int) (end - s - 1), s + 1);
}

static void
on_backend_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    gw_call_t *call = arg;
    gw_t *gw = call->gw;
    call->nats_pending = false;
    h2o_req_t *req = lc_http_resume(gw->http, call->http_id);
    if (req == NULL) { /* cannot happen: an abort cancels the NATS request */
        call_free(call);
        return;
    }
    lc_log_context_set(call->ctx.request_id, NULL);
    char who[64];
    service_of(call->route, who, sizeof(who));
    if (status != LC_OK) {
        if (status == LC_ERR_TIMEOUT || status == LC_ERR_NO_RESPONDERS)
            LC_WARN("http", "%s: %s", call->route->subject, lc_status_name(status));
        respond_bus_failure(call, req, status, who, gw->cfg->request_timeout_ms);
        goto done;
    }
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                                  &voxi__v1__api_reply__descriptor, &env, &body);
    if (st != LC_OK) {
        if (env != NULL && env->error != NULL)
            respond_envelope_error(call, req, st, env->error);
        else
            respond_bad_reply(call, req, who, st);
    } else {
        Voxi__V1__ApiReply *api = (Voxi__V1__ApiReply *) body;
        if (api->http_status < 200 || api->http_status > 299) {
            respond_bad_reply(call, req, who, LC_ERR_PROTOCOL);
        } else if (call->route->reply == GW_REPLY_RECORDING) {
            gw_recording_start(gw, req, &call->ctx, call->id, api->json);
        } else if (api->http_status == 204) {
            gw_respond(gw, req, &call->ctx, 204, NULL, NULL, 0);
        } else {
            gw_respond(gw, req, &call->ctx, api->http_status, "application/json", api->json,
                       strlen(api->json));
        }
    }
    lc_pb_free(env, body);
done:
    lc_log_context_clear();
    call_free(call);
}

/* ---- forwarding ---- */

/* Checks query and body of an authenticated request; answers 4xx and returns false when
 * they are not acceptable. */
static bool
check_request(gw_call_t *call, h2o_req_t *req, gw_query_t *query)
{
    char detail[GW_DETAIL_MAX];
    const char *q = NULL;
    size_t qlen = 0;
    if (req->query_at != SIZE_MAX) {
        q = req->path.base + req->query_at + 1;
        qlen = req->path.len - req->query_at - 1;
    }
    if (gw_query_parse(q, qlen, call->route, query, detail, sizeof(detail)) != LC_OK) {
        gw_field_error_t fe = {.field = query->bad_param, .message = detail};
        gw_respond_problem(call->gw, req, &call->ctx, 400, "invalid", detail, &fe,
                           query->bad_param[0] ? 1 : 0);
        return false;
    }
    if (!gw_route_body_expected(call->route, req->entity.len))
        return true;
    h2o_iovec_t ctype = {NULL, 0};
    lc_http_header(req, "content-type", &ctype);
    bool patch = strcmp(call->route->method, "PATCH") == 0;
    if (!gw_content_type_ok(ctype.base, ctype.len, patch, detail, sizeof(detail))) {
        gw_respond_problem(call->gw, req, &call->ctx, 415, "unsupported_media_type", detail, NULL,
                           0);
        return false;
    }
    if (gw_body_check(req->entity.base, req->entity.len, detail, sizeof(detail)) != LC_OK) {
        gw_respond_problem(call->gw, req, &call->ctx, 400, "invalid", detail, NULL, 0);
        return false;
    }
    return true;
}

/* Sends the request to its service; on success the call waits (deferred) again. */
static void
forward(gw_call_t *call, h2o_req_t *req, const Voxi__V1__AuthenticateReply *auth)
{
    gw_t *gw = call->gw;
    gw_query_t query;
    if (!check_request(call, req, &query)) {
        call_free(call);
        return;
    }
    Voxi__V1__ApiRequest api = VOXI__V1__API_REQUEST__INIT;
    api.id = call->id;
    api.sub_id = call->sub_id;
    api.limit = query.limit;
    api.starting_after = query.starting_after;
    api.client_ip = call->client_ip;
    char *json = NULL;
    if (gw_route_has_body(call->route) && req->entity.len > 0) {
        /* the body as sent: re-serialising would change number formatting */
        json = lc_strndup(req->entity.base, req->entity.len);
        api.json = json;
    } else if ((json = gw_query_filters_json(&query)) != NULL) {
        api.json = json;
    }
    lc_pb_meta_t meta = {
        .request_id = call->ctx.request_id,
        .org_id = auth->org_id,
        .principal = auth->principal,
        .deadline_unix_ms = lc_time_wall_ms() + gw->cfg->request_timeout_ms,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    lc_status_t st = lc_pb_pack(&meta, &api.base, &buf, &len);
    free(json);
    if (st == LC_OK)
        st = lc_nats_request(gw->nats, call->route->subject, buf, len, gw->cfg->request_timeout_ms,
                             on_backend_reply, call, &call->nats_id);
    free(buf);
    if (st != LC_OK) {
        char who[64];
        service_of(call->route, who, sizeof(who));
        LC_WARN("http", "cannot forward to %s: %s", call->route->subject, lc_status_name(st));
        respond_bus_failure(call, req, st, who, gw->cfg->request_timeout_ms);
        call_free(call);
        return;
    }
    call->stage = STAGE_BACKEND;
    call->nats_pending = true;
    call_defer(call, req, gw->cfg->request_timeout_ms);
}

/* ---- authentication ---- */

/* Auth could not be asked or did not answer. Local routes need nothing from auth but
 * the rate limit, and serving the static document beats refusing it: they fail open. */
static bool
fail_open(const gw_call_t *call, lc_status_t st)
{
    return call->route->local != GW_LOCAL_NONE &&
           (st == LC_ERR_TIMEOUT || st == LC_ERR_NO_RESPONDERS || st == LC_ERR_UNAVAILABLE ||
            st == LC_ERR_FULL);
}

/* Handles a decoded AuthenticateReply; returns true when the call moved on (forwarded,
 * still owned by the NATS request) and false when it has been answered. */
static bool
handle_auth(gw_call_t *call, h2o_req_t *req, const Voxi__V1__AuthenticateReply *auth)
{
    gw_t *gw = call->gw;
    copy_ratelimit(&call->ctx.rl, auth->rate_limit);
    const char *outcome = auth->outcome;
    if (strcmp(outcome, "ok") == 0) {
        if (call->keyed && auth->grant > 0)
            gw_authcache_put(gw->authcache, call->key_hash,
                             strcmp(call->route->route_class, "write") == 0, auth, &call->ctx.rl,
                             (int64_t) (uv_now(gw->loop)));
        if (call->route->local != GW_LOCAL_NONE) {
            gw_serve_local(gw, req, &call->ctx, call->route->local);
            return false;
        }
        if (auth->org_id[0] == '\0' || auth->principal == NULL) {
            respond_bad_reply(call, req, "authentication", LC_ERR_PROTOCOL);
            return false;
        }
        forward(call, req, auth);
        return true;
    }
    if (strcmp(outcome, "unauthorized") == 0) {
        /* one body whatever the reason: no hint which part of a key was wrong */
        lc_http_add_header(req, "WWW-Authenticate", "Bearer");
        gw_respond_problem(gw, req, &call->ctx, 401, "unauthorized",
                           "Missing or invalid API key: send Authorization: Bearer <key>.", NULL,
                           0);
    } else if (strcmp(outcome, "forbidden") == 0) {
        char detail[GW_DETAIL_MAX];
        if (auth->message[0] != '\0')
            snprintf(detail, sizeof(detail), "%s", auth->message);
        else
            snprintf(detail, sizeof(detail), "This API key may not call this route (needs %s).",
                     call->route->scope[0] ? call->route->scope : "another scope");
        gw_respond_problem(gw, req, &call->ctx, 403, "forbidden", detail, NULL, 0);
    } else if (strcmp(outcome, "rate_limited") == 0) {
        int64_t retry = call->ctx.rl.retry_after_s > 0 ? call->ctx.rl.retry_after_s : 1;
        char v[32], detail[GW_DETAIL_MAX];
        snprintf(v, sizeof(v), "%lld", (long long) retry);
        lc_http_add_header(req, "Retry-After", v);
        snprintf(detail, sizeof(detail), "Rate limit exceeded; retry in %lld s.",
                 (long long) retry);
        gw_respond_problem(gw, req, &call->ctx, 429, "rate_limited", detail, NULL, 0);
    } else {
        respond_bad_reply(call, req, "authentication", LC_ERR_PROTOCOL);
    }
    return false;
}

static void
on_auth_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    gw_call_t *call = arg;
    gw_t *gw = call->gw;
    call->nats_pending = false;
    h2o_req_t *req = lc_http_resume(gw->http, call->http_id);
    if (req == NULL) { /* cannot happen: an abort cancels the NATS request */
        call_free(call);
        return;
    }
    lc_log_context_set(call->ctx.request_id, NULL);
    bool moved_on = false;
    if (status != LC_OK) {
        if (fail_open(call, status)) {
            gw_serve_local(gw, req, &call->ctx, call->route->local);
        } else {
            LC_LOG_RL(LC_LOG_WARN, "http", 1, "%s: %s", AUTH_SUBJECT, lc_status_name(status));
            respond_bus_failure(call, req, status, "authentication", gw->cfg->auth_timeout_ms);
        }
        goto done;
    }
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                                  &voxi__v1__authenticate_reply__descriptor, &env, &body);
    if (st != LC_OK) {
        if (env != NULL && env->error != NULL) {
            LC_LOG_RL(LC_LOG_WARN, "http", 1, "auth failed: %s: %s", lc_status_name(st),
                      env->error->message);
            respond_envelope_error(call, req, st, env->error);
        } else {
            respond_bad_reply(call, req, "authentication", st);
        }
    } else {
        moved_on = handle_auth(call, req, (Voxi__V1__AuthenticateReply *) body);
    }
    lc_pb_free(env, body);
done:
    lc_log_context_clear();
    if (!moved_on)
        call_free(call);
}

/* Serves a request from a cached decision and slice (gw_authcache.h) when there is one:
 * forwards it as auth's "ok" would have and returns true. */
static bool
start_cached(gw_call_t *call, h2o_req_t *req)
{
    gw_t *gw = call->gw;
    if (!call->keyed || call->route->local != GW_LOCAL_NONE)
        return false;
    const gw_authcache_entry_t *e = gw_authcache_take(
        gw->authcache, call->key_hash, strcmp(call->route->route_class, "write") == 0,
        call->route->scope, (int64_t) uv_now(gw->loop));
    if (e == NULL)
        return false;
    call->ctx.rl = e->rl;
    int64_t remaining = e->rl.remaining + e->tokens;
    call->ctx.rl.remaining = remaining < e->rl.limit ? remaining : e->rl.limit;
    Voxi__V1__Principal who = VOXI__V1__PRINCIPAL__INIT;
    who.kind = (char *) e->kind;
    who.id = (char *) e->principal_id;
    who.n_scopes = e->n_scopes;
    who.scopes = (char **) e->scope_ptrs;
    Voxi__V1__AuthenticateReply auth = VOXI__V1__AUTHENTICATE_REPLY__INIT;
    auth.outcome = "ok";
    auth.org_id = (char *) e->org_id;
    auth.principal = &who;
    forward(call, req, &auth);
    return true;
}

void
gw_call_start(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, const gw_match_result_t *match)
{
    gw_call_t *call = LC_NEW(gw_call_t);
    call->gw = gw;
    call->ctx = *ctx;
    call->route = match->route;
    memcpy(call->id, match->id, sizeof(call->id));
    memcpy(call->sub_id, match->sub_id, sizeof(call->sub_id));
    lc_http_peer_addr(req, call->client_ip, sizeof(call->client_ip));
    gw->ncalls++;
    lc_metric_inc(gw->inflight);

    Voxi__V1__AuthenticateRequest areq = VOXI__V1__AUTHENTICATE_REQUEST__INIT;
    h2o_iovec_t authz = {NULL, 0};
    char *authorization = NULL;
    if (lc_http_header(req, "authorization", &authz)) {
        call->keyed = call->route->local == GW_LOCAL_NONE &&
                      gw_authcache_key_hash(authz.base, authz.len, call->key_hash);
        if (start_cached(call, req))
            return;
        authorization = lc_strndup(authz.base, authz.len); /* h2o bounds header sizes */
    }
    areq.authorization = authorization ? authorization : "";
    areq.client_ip = call->client_ip;
    areq.route_class = (char *) call->route->route_class;
    areq.required_scope = (char *) call->route->scope;
    areq.anonymous_ok = call->route->anonymous;
    areq.grant_wanted = call->keyed ? GW_AUTHCACHE_GRANT_WANTED : 0;
    lc_pb_meta_t meta = {
        .request_id = call->ctx.request_id,
        .deadline_unix_ms = lc_time_wall_ms() + gw->cfg->auth_timeout_ms,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    lc_status_t st = lc_pb_pack(&meta, &areq.base, &buf, &len);
    free(authorization);
    if (st == LC_OK)
        st = lc_nats_request(gw->nats, AUTH_SUBJECT, buf, len, gw->cfg->auth_timeout_ms,
                             on_auth_reply, call, &call->nats_id);
    free(buf);
    if (st != LC_OK) {
        if (fail_open(call, st)) {
            gw_serve_local(gw, req, &call->ctx, call->route->local);
        } else {
            LC_LOG_RL(LC_LOG_WARN, "http", 1, "cannot ask auth: %s", lc_status_name(st));
            respond_bus_failure(call, req, st, "authentication", gw->cfg->auth_timeout_ms);
        }
        call_free(call);
        return;
    }
    call->stage = STAGE_AUTH;
    call->nats_pending = true;
    call_defer(call, req, gw->cfg->auth_timeout_ms);
}
