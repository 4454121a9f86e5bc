#include "au_authn.h"

#include <h2o/linklist.h>
#include <h2o/memory.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "au_api.h"
#include "au_gcra.h"
#include "au_jwt.h"
#include "au_scope.h"
#include "au_text.h"
#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/api.pb-c.h"
#include "voxi/v1/auth.pb-c.h"

/* "Bearer " + a JWT of the largest size we accept, with room for stray spaces. */
#define AUTHORIZATION_MAX (AU_JWT_MAX_LEN + 64)
#define CLIENT_IP_MAX 64
#define LAST_USED_EVERY_MS 60000
/* Gateway slices (api.proto AuthenticateReply.grant): at most GRANT_MAX tokens at once, at
 * most 1/GRANT_LIMIT_SHARE of the limit (so limits under that many per window get none and
 * stay exact), trusted by the gateway for at most GRANT_TTL_MS (and never past the key
 * cache's TTL or the key's expiry). Unspent tokens are forfeited: with two gateways and a
 * limit of 600/min that is at most 2 x 3 requests short of the one-bucket GCRA. */
#define GRANT_MAX 256
#define GRANT_LIMIT_SHARE 200
#define GRANT_TTL_MS 1000

/* A verified API key as the cache keeps it. */
typedef struct {
    char key_id[AU_ID_MAX];
    char org_id[AU_ID_MAX];
    au_scopes_t scopes; /* platform-admin keys: every scope plus platform:admin */
    bool platform_admin;
    bool revoked;
    int64_t expires_ms;   /* wall clock; 0 = never */
    int64_t last_used_ms; /* wall clock; 0 = never */
    int64_t read_per_min; /* the org's overrides; 0 = the configured default */
    int64_t write_per_min;
} cred_t;

/* An org as JWT principals need it. */
typedef struct {
    bool exists;
    int64_t read_per_min;
    int64_t write_per_min;
} org_t;

/* Database lookups in flight, shared by every request that needs the same answer. */
typedef struct {
    h2o_linklist_t link;
    au_authn_t *authn;
    bool is_org;
    uint8_t hash[AU_KEY_HASH_LEN];   /* key lookups */
    char org_id[AU_JWT_ORG_MAX + 1]; /* org lookups */
    h2o_linklist_t waiters;          /* authn_req_t */
} lookup_t;

struct au_authn {
    au_ctx_t *ctx;
    h2o_linklist_t lookups;
    lc_metric_t *m_ok, *m_unauthorized, *m_forbidden, *m_limited, *m_error;
    lc_metric_t *m_cache_hit, *m_cache_miss, *m_latency, *m_evictions;
};

typedef enum { OUT_OK, OUT_UNAUTHORIZED, OUT_FORBIDDEN, OUT_RATE_LIMITED } outcome_t;

typedef struct {
    au_authn_t *authn;
    char *reply_to;
    char request_id[72];
    int64_t started_ms;
    bool write;
    au_scopes_t required;
    const char *required_name;
    char client_ip[CLIENT_IP_MAX + 1];
    h2o_linklist_t wait_link; /* in a lookup's waiters */
    /* who, once known */
    const char *kind; /* "api_key", "platform_admin", "jwt", "anonymous" */
    char principal_id[AU_JWT_SUB_MAX + 1];
    char org_id[AU_JWT_ORG_MAX + 1];
    au_scopes_t scopes;
    int64_t limit;
    const char *class_name; /* "read", "write", "anonymous" */
    char bucket[256];       /* at most AU_RL_BUCKET_MAX used: ids are validated */
    int64_t grant_wanted;   /* the gateway's slice request, 0..GRANT_MAX */
    int64_t expires_ms;     /* the key's expiry (wall clock), 0 = never */
} authn_req_t;

/* ---- replies ---- */

static void
req_free(authn_req_t *a)
{
    a->authn->ctx->inflight--;
    free(a->reply_to);
    free(a);
    lc_log_context_clear();
}

static void
send_reply(authn_req_t *a, uint8_t *buf, size_t len)
{
    au_authn_t *authn = a->authn;
    lc_status_t st = lc_nats_respond(authn->ctx->nc, a->reply_to, buf, len);
    if (st != LC_OK)
        LC_LOG_RL(LC_LOG_WARN, "authn", 1, "reply not sent: %s", lc_status_name(st));
    free(buf);
    lc_metric_observe(authn->m_latency, (double) (lc_time_mono_ms() - a->started_ms) / 1000.0);
    req_free(a);
}

static void
reply_error(authn_req_t *a, lc_status_t status, const char *message)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    lc_metric_inc(a->authn->m_error);
    LC_LOG_RL(LC_LOG_WARN, "authn", 1, "authenticate failed: %s", lc_status_name(status));
    lc_pb_pack_error(a->request_id, status, message, &buf, &len);
    send_reply(a, buf, len);
}

/* Tokens handed to the gateway with an "ok" for an API key (see GRANT_MAX); sets *ttl_ms. */
static int64_t
take_grant(authn_req_t *a, const au_rl_decision_t *d, int64_t *ttl_ms)
{
    const au_config_t *cfg = a->authn->ctx->cfg;
    *ttl_ms = 0;
    if (a->grant_wanted <= 0 || d == NULL || !d->allowed ||
        (strcmp(a->kind, "api_key") != 0 && strcmp(a->kind, "platform_admin") != 0))
        return 0;
    int64_t ttl = GRANT_TTL_MS < cfg->key_cache_ttl_ms ? GRANT_TTL_MS : cfg->key_cache_ttl_ms;
    if (a->expires_ms != 0) {
        int64_t left = a->expires_ms - lc_time_wall_ms();
        ttl = left < ttl ? left : ttl;
    }
    int64_t max = d->limit / GRANT_LIMIT_SHARE;
    max = a->grant_wanted < max ? a->grant_wanted : max;
    if (ttl <= 0 || max <= 0)
        return 0;
    *ttl_ms = ttl;
    return au_ratelimit_take_local(a->authn->ctx->rl, a->bucket, max);
}

static void
reply(authn_req_t *a, outcome_t outcome, const char *message, const au_rl_decision_t *d)
{
    au_authn_t *authn = a->authn;
    static const char *names[] = {"ok", "unauthorized", "forbidden", "rate_limited"};
    Voxi__V1__AuthenticateReply rep = VOXI__V1__AUTHENTICATE_REPLY__INIT;
    Voxi__V1__Principal who = VOXI__V1__PRINCIPAL__INIT;
    Voxi__V1__RateLimit rlm = VOXI__V1__RATE_LIMIT__INIT;
    char *scope_names[AU_SCOPE_COUNT];
    char policy[96];
    rep.outcome = (char *) names[outcome];
    rep.message = (char *) (message ? message : "");
    if (outcome == OUT_OK || outcome == OUT_RATE_LIMITED || outcome == OUT_FORBIDDEN) {
        rep.org_id = a->org_id;
        who.kind = (char *) a->kind;
        who.id = a->principal_id;
        for (size_t i = 0; i < AU_SCOPE_COUNT; i++)
            if (a->scopes & (1u << i))
                scope_names[who.n_scopes++] = (char *) au_scope_name(i);
        who.scopes = scope_names;
        rep.principal = &who;
    }
    if (d != NULL) {
        rlm.limit = d->limit;
        rlm.remaining = d->remaining;
        rlm.reset_s = d->reset_s;
        rlm.window_s = d->window_s;
        rlm.retry_after_s = d->retry_after_s;
        au_ratelimit_policy(a->class_name, d->limit, d->window_s, policy, sizeof(policy));
        rlm.policy = policy;
        rep.rate_limit = &rlm;
        if (outcome == OUT_OK) {
            rep.grant = take_grant(a, d, &rep.grant_ttl_ms);
            if (rep.grant == 0)
                rep.grant_ttl_ms = 0;
            /* the granted tokens are the gateway's now: not "remaining" here */
            rlm.remaining = d->remaining > rep.grant ? d->remaining - rep.grant : 0;
        }
    }
    lc_metric_t *counters[] = {authn->m_ok, authn->m_unauthorized, authn->m_forbidden,
                               authn->m_limited};
    lc_metric_inc(counters[outcome]);
    lc_pb_meta_t meta = {.request_id = a->request_id};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (lc_pb_pack(&meta, &rep.base, &buf, &len) != LC_OK) {
        reply_error(a, LC_ERR_INTERNAL, "internal error");
        return;
    }
    send_reply(a, buf, len);
}

static void check_rate(authn_req_t *a, au_rl_cb cb);

static void
on_unauthorized_rate(lc_status_t status, const au_rl_decision_t *d, void *arg)
{
    authn_req_t *a = arg;
    if (status != LC_OK) { /* the limiter failed: still a 401, without numbers */
        reply(a, OUT_UNAUTHORIZED, NULL, NULL);
        return;
    }
    reply(a, d->allowed ? OUT_UNAUTHORIZED : OUT_RATE_LIMITED, NULL, d);
}

/*
 * Every credential failure looks the same to the caller; the reason is only logged. A
 * request without valid credentials is anonymous: it counts against its client IP's
 * bucket (the one anonymous routes use), whose numbers the 401 carries, and once that is
 * spent the answer is 429 instead, which bounds guessing keys from one address.
 */
static void
unauthorized(authn_req_t *a, const char *reason)
{
    LC_DEBUG("authn", "unauthorized: %s", reason);
    /* nothing of a credential that failed may reach the reply */
    a->kind = "anonymous";
    a->class_name = "anonymous";
    a->org_id[0] = '\0';
    a->principal_id[0] = '\0';
    a->scopes = 0;
    a->limit = a->authn->ctx->cfg->rate_anon_per_min;
    snprintf(a->bucket, sizeof(a->bucket), "ip:%s", a->client_ip[0] ? a->client_ip : "unknown");
    check_rate(a, on_unauthorized_rate);
}

/* ---- the rate limit, once the principal is known ---- */

static void
on_rate_decision(lc_status_t status, const au_rl_decision_t *d, void *arg)
{
    authn_req_t *a = arg;
    if (status != LC_OK) {
        reply_error(a, status == LC_ERR_TIMEOUT ? LC_ERR_TIMEOUT : LC_ERR_UNAVAILABLE,
                    "rate limiter unavailable");
        return;
    }
    reply(a, d->allowed ? OUT_OK : OUT_RATE_LIMITED, NULL, d);
}

static void
check_rate(authn_req_t *a, au_rl_cb cb)
{
    au_rl_decision_t d;
    bool decided = false;
    lc_status_t st =
        au_ratelimit_check(a->authn->ctx->rl, a->bucket, a->limit, &d, &decided, cb, a);
    if (st != LC_OK) {
        cb(st, NULL, a);
        return;
    }
    if (decided)
        cb(LC_OK, &d, a);
}

/* Scope, then rate limit. limit_read/limit_write: the org's overrides (0 = defaults). */
static void
authorize(authn_req_t *a, int64_t limit_read, int64_t limit_write)
{
    const au_config_t *cfg = a->authn->ctx->cfg;
    if (a->required != 0 && (a->scopes & a->required) == 0) {
        char message[96];
        snprintf(message, sizeof(message), "the credentials lack the scope \"%s\"",
                 a->required_name);
        reply(a, OUT_FORBIDDEN, message, NULL);
        return;
    }
    a->class_name = a->write ? "write" : "read";
    a->limit = a->write ? (limit_write > 0 ? limit_write : cfg->rate_write_per_min)
                        : (limit_read > 0 ? limit_read : cfg->rate_read_per_min);
    /* a JWT subject is only unique within its org; key ids are unique everywhere */
    if (strcmp(a->kind, "jwt") == 0)
        snprintf(a->bucket, sizeof(a->bucket), "j:%s:%s:%s", a->org_id, a->principal_id,
                 a->class_name);
    else
        snprintf(a->bucket, sizeof(a->bucket), "k:%s:%s", a->principal_id, a->class_name);
    check_rate(a, on_rate_decision);
}

static void
anonymous(authn_req_t *a)
{
    a->kind = "anonymous";
    a->class_name = "anonymous";
    a->limit = a->authn->ctx->cfg->rate_anon_per_min;
    snprintf(a->bucket, sizeof(a->bucket), "ip:%s", a->client_ip[0] ? a->client_ip : "unknown");
    check_rate(a, on_rate_decision);
}

/* ---- API keys ---- */

static void
on_last_used(lc_status_t status, PGresult *res, void *arg)
{
    (void) res;
    au_ctx_t *ctx = arg;
    ctx->background--;
    if (status != LC_OK && status != LC_ERR_CANCELLED)
        LC_LOG_RL(LC_LOG_WARN, "authn", 1, "last_used_at not written: %s", lc_status_name(status));
}

static void
set_last_used(void *value, void *arg)
{
    ((cred_t *) value)->last_used_ms = *(const int64_t *) arg;
}

/* At most about once a minute per key (per instance; the WHERE keeps it so across
 * instances), and never on the request's path. */
static void
touch_last_used(au_ctx_t *ctx, const cred_t *cred, const uint8_t hash[AU_KEY_HASH_LEN])
{
    int64_t now = lc_time_wall_ms();
    if (cred->last_used_ms != 0 && now - cred->last_used_ms < LAST_USED_EVERY_MS)
        return;
    au_cache_update(ctx->keys, hash, AU_KEY_HASH_LEN, lc_time_mono_ms(), set_last_used, &now);
    const char *params[] = {cred->key_id};
    if (lc_pg_query(ctx->pg,
                    "UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND"
                    " (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
                    1, params, on_last_used, ctx) == LC_OK)
        ctx->background++;
}

static void
with_cred(authn_req_t *a, const cred_t *cred, const uint8_t hash[AU_KEY_HASH_LEN])
{
    if (cred->revoked) {
        unauthorized(a, "key revoked");
        return;
    }
    if (cred->expires_ms != 0 && lc_time_wall_ms() >= cred->expires_ms) {
        unauthorized(a, "key expired");
        return;
    }
    touch_last_used(a->authn->ctx, cred, hash);
    a->kind = cred->platform_admin ? "platform_admin" : "api_key";
    snprintf(a->principal_id, sizeof(a->principal_id), "%s", cred->key_id);
    snprintf(a->org_id, sizeof(a->org_id), "%s", cred->org_id);
    a->scopes = cred->scopes;
    a->expires_ms = cred->expires_ms;
    authorize(a, cred->read_per_min, cred->write_per_min);
}

static const char KEY_SQL[] =
    "SELECT k.id, k.org_id, array_to_string(k.scopes, ' '), k.platform_admin,"
    " coalesce(floor(extract(epoch FROM k.expires_at) * 1000)::bigint, 0),"
    " k.revoked_at IS NOT NULL,"
    " coalesce(floor(extract(epoch FROM k.last_used_at) * 1000)::bigint, 0),"
    " coalesce(l.read_per_min, 0), coalesce(l.write_per_min, 0)"
    " FROM api_keys k LEFT JOIN org_limits l ON l.org_id = k.org_id"
    " WHERE k.secret_hash = decode($1, 'hex')";

static const char ORG_SQL[] =
    "SELECT o.id, coalesce(l.read_per_min, 0), coalesce(l.write_per_min, 0)"
    " FROM orgs o LEFT JOIN org_limits l ON l.org_id = o.id WHERE o.id = $1";

static void
cred_from_row(PGresult *res, cred_t *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->key_id, sizeof(c->key_id), "%s", PQgetvalue(res, 0, 0));
    snprintf(c->org_id, sizeof(c->org_id), "%s", PQgetvalue(res, 0, 1));
    c->scopes = au_scopes_parse_list(PQgetvalue(res, 0, 2), NULL) & AU_SCOPES_ALL;
    c->platform_admin = PQgetvalue(res, 0, 3)[0] == 't';
    if (c->platform_admin)
        c->scopes = AU_SCOPES_ALL | AU_SCOPE_PLATFORM_ADMIN;
    c->expires_ms = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    c->revoked = PQgetvalue(res, 0, 5)[0] == 't';
    c->last_used_ms = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    c->read_per_min = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    c->write_per_min = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
}

static void
on_lookup(lc_status_t status, PGresult *res, void *arg)
{
    lookup_t *lk = arg;
    au_authn_t *authn = lk->authn;
    au_ctx_t *ctx = authn->ctx;
    h2o_linklist_unlink(&lk->link);
    int64_t now = lc_time_mono_ms();
    bool found = false;
    cred_t cred;
    org_t org = {0};
    if (status == LC_OK && PQntuples(res) == 1) {
        found = true;
        if (lk->is_org) {
            org.exists = true;
            org.read_per_min = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
            org.write_per_min = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
            au_cache_put(ctx->orgs, lk->org_id, strlen(lk->org_id), &org, now);
        } else {
            cred_from_row(res, &cred);
            au_cache_put(ctx->keys, lk->hash, AU_KEY_HASH_LEN, &cred, now);
        }
    } else if (status == LC_OK && lk->is_org) {
        /* an org that does not exist stays so for a TTL too (tokens are signed by the
         * operator's issuer, so these are few and legitimate-looking) */
        au_cache_put(ctx->orgs, lk->org_id, strlen(lk->org_id), &org, now);
    }
    while (!h2o_linklist_is_empty(&lk->waiters)) {
        authn_req_t *a = H2O_STRUCT_FROM_MEMBER(authn_req_t, wait_link, lk->waiters.next);
        h2o_linklist_unlink(&a->wait_link);
        lc_log_context_set(a->request_id, NULL);
        if (status != LC_OK)
            reply_error(a, status == LC_ERR_TIMEOUT ? LC_ERR_TIMEOUT : LC_ERR_UNAVAILABLE,
                        "credential store unavailable");
        else if (!found)
            unauthorized(a, lk->is_org ? "JWT org unknown" : "key unknown");
        else if (lk->is_org)
            authorize(a, org.read_per_min, org.write_per_min);
        else
            with_cred(a, &cred, lk->hash);
    }
    free(lk);
}

/* Joins the lookup already running for this key or org, or starts one. */
static void
lookup(authn_req_t *a, const uint8_t *hash, const char *org_id)
{
    au_authn_t *authn = a->authn;
    for (h2o_linklist_t *n = authn->lookups.next; n != &authn->lookups; n = n->next) {
        lookup_t *lk = H2O_STRUCT_FROM_MEMBER(lookup_t, link, n);
        if ((hash && !lk->is_org && memcmp(lk->hash, hash, AU_KEY_HASH_LEN) == 0) ||
            (org_id && lk->is_org && strcmp(lk->org_id, org_id) == 0)) {
            h2o_linklist_insert(&lk->waiters, &a->wait_link);
            return;
        }
    }
    lookup_t *lk = LC_NEW(lookup_t);
    lk->authn = authn;
    h2o_linklist_init_anchor(&lk->waiters);
    char hex[2 * AU_KEY_HASH_LEN + 1];
    const char *params[1];
    if (hash) {
        memcpy(lk->hash, hash, AU_KEY_HASH_LEN);
        au_hex(hash, AU_KEY_HASH_LEN, hex);
        params[0] = hex;
    } else {
        lk->is_org = true;
        snprintf(lk->org_id, sizeof(lk->org_id), "%s", org_id);
        params[0] = lk->org_id;
    }
    lc_status_t st =
        lc_pg_query(authn->ctx->pg, hash ? KEY_SQL : ORG_SQL, 1, params, on_lookup, lk);
    if (st != LC_OK) {
        free(lk);
        reply_error(a, LC_ERR_UNAVAILABLE, "credential store unavailable");
        return;
    }
    h2o_linklist_insert(&authn->lookups, &lk->link);
    h2o_linklist_insert(&lk->waiters, &a->wait_link);
}

static void
authenticate_key(authn_req_t *a, const char *token, size_t len)
{
    if (!au_key_well_formed(token, len)) {
        unauthorized(a, "malformed key");
        return;
    }
    au_authn_t *authn = a->authn;
    uint8_t hash[AU_KEY_HASH_LEN];
    au_key_hash(token, len, hash);
    cred_t cred;
    if (au_cache_get(authn->ctx->keys, hash, sizeof(hash), lc_time_mono_ms(), &cred)) {
        lc_metric_inc(authn->m_cache_hit);
        with_cred(a, &cred, hash);
        return;
    }
    lc_metric_inc(authn->m_cache_miss);
    lookup(a, hash, NULL);
}

static void
authenticate_jwt(authn_req_t *a, const char *token, size_t len)
{
    au_authn_t *authn = a->authn;
    au_jwt_claims_t claims;
    const char *why = NULL;
    if (au_jwt_verify(authn->ctx->jwt, token, len, lc_time_wall_ms() / 1000, &claims, &why) !=
        LC_OK) {
        unauthorized(a, why);
        return;
    }
    a->kind = "jwt";
    snprintf(a->principal_id, sizeof(a->principal_id), "%s", claims.sub);
    snprintf(a->org_id, sizeof(a->org_id), "%s", claims.org_id);
    a->scopes = claims.scopes;
    org_t org;
    if (au_cache_get(authn->ctx->orgs, a->org_id, strlen(a->org_id), lc_time_mono_ms(), &org)) {
        lc_metric_inc(authn->m_cache_hit);
        if (!org.exists)
            unauthorized(a, "JWT org unknown");
        else
            authorize(a, org.read_per_min, org.write_per_min);
        return;
    }
    lc_metric_inc(authn->m_cache_miss);
    lookup(a, NULL, a->org_id);
}

/* RFC 6750 section 2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive
 * (RFC 9110 section 11.1). Returns the token or NULL. */
static const char *
bearer_token(const char *header, size_t *len_out)
{
    if (strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    const char *p = header + 7;
    while (*p == ' ')
        p++;
    size_t len = strlen(p);
    while (len > 0 && p[len - 1] == ' ')
        len--;
    if (len == 0 || memchr(p, ' ', len) != NULL)
        return NULL;
    *len_out = len;
    return p;
}

static void
start(authn_req_t *a, const char *authorization, bool anonymous_ok)
{
    if (authorization[0] == '\0') {
        if (anonymous_ok)
            anonymous(a);
        else
            unauthorized(a, "no credentials");
        return;
    }
    size_t len = 0;
    const char *token = bearer_token(authorization, &len);
    if (token == NULL)
        unauthorized(a, "not a Bearer credential");
    else if (au_key_tagged(token, len))
        authenticate_key(a, token, len);
    else if (au_jwt_shaped(token, len))
        authenticate_jwt(a, token, len);
    else
        unauthorized(a, "neither an API key nor a JWT");
}

static void
on_authenticate(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    au_authn_t *authn = arg;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL || reply_to[0] == '\0')
        return;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__authenticate_request__descriptor, &env, &body);
    authn_req_t *a = LC_NEW(authn_req_t);
    a->authn = authn;
    a->reply_to = lc_strdup(reply_to);
    a->started_ms = lc_time_mono_ms();
    snprintf(a->request_id, sizeof(a->request_id), "%s", env ? env->request_id : "");
    authn->ctx->inflight++;
    lc_log_context_set(a->request_id, NULL);

    Voxi__V1__AuthenticateRequest *req = (Voxi__V1__AuthenticateRequest *) body;
    /* before any answer: a 401 counts against the client IP */
    if (st == LC_OK && strlen(req->client_ip) <= CLIENT_IP_MAX)
        snprintf(a->client_ip, sizeof(a->client_ip), "%s", req->client_ip);
    if (st != LC_OK) {
        reply_error(a, LC_ERR_INVALID, "malformed authenticate request");
    } else if (lc_pb_deadline_passed(env)) {
        LC_LOG_RL(LC_LOG_WARN, "authn", 1, "deadline passed before it arrived: dropped");
        req_free(a);
    } else if (strlen(req->authorization) > AUTHORIZATION_MAX) {
        unauthorized(a, "Authorization header too long");
    } else if (strlen(req->client_ip) > CLIENT_IP_MAX ||
               (strcmp(req->route_class, "read") != 0 && strcmp(req->route_class, "write") != 0) ||
               (req->required_scope[0] != '\0' &&
                au_scope_parse(req->required_scope, strlen(req->required_scope)) == 0)) {
        reply_error(a, LC_ERR_INVALID, "bad client_ip, route_class or required_scope");
    } else {
        a->write = strcmp(req->route_class, "write") == 0;
        a->grant_wanted = req->grant_wanted < 0           ? 0
                          : req->grant_wanted > GRANT_MAX ? GRANT_MAX
                                                          : req->grant_wanted;
        a->required = au_scope_parse(req->required_scope, strlen(req->required_scope));
        for (size_t i = 0; i < AU_SCOPE_COUNT; i++)
            if (a->required == (1u << i))
                a->required_name = au_scope_name(i);
        start(a, req->authorization, req->anonymous_ok);
    }
    lc_pb_free(env, body);
}

/* ---- revocation broadcast ---- */

static void
on_evict(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    au_authn_t *authn = arg;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    if (lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                     &voxi__v1__key_revoked__descriptor, &env, &body) == LC_OK) {
        Voxi__V1__KeyRevoked *kr = (Voxi__V1__KeyRevoked *) body;
        if (kr->secret_hash.len == AU_KEY_HASH_LEN) {
            au_cache_evict(authn->ctx->keys, kr->secret_hash.data, AU_KEY_HASH_LEN,
                           lc_time_mono_ms());
            lc_metric_inc(authn->m_evictions);
            LC_DEBUG("authn", "key %s evicted from the cache (revoked)", kr->key_id);
        }
    }
    lc_pb_free(env, body);
}

void
au_authn_revoked(au_ctx_t *ctx, const char *key_id, const char *org_id,
                 const uint8_t hash[AU_KEY_HASH_LEN])
{
    au_cache_evict(ctx->keys, hash, AU_KEY_HASH_LEN, lc_time_mono_ms());
    Voxi__V1__KeyRevoked kr = VOXI__V1__KEY_REVOKED__INIT;
    kr.key_id = (char *) key_id;
    kr.org_id = (char *) org_id;
    kr.secret_hash.data = (uint8_t *) hash;
    kr.secret_hash.len = AU_KEY_HASH_LEN;
    lc_pb_meta_t meta = {.request_id = lc_log_context_request_id()};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (lc_pb_pack(&meta, &kr.base, &buf, &len) == LC_OK) {
        lc_status_t st = lc_nats_publish(ctx->nc, AU_SUBJECT_CACHE_EVICT, buf, len);
        if (st != LC_OK)
            LC_WARN("authn",
                    "revocation of %s not broadcast (%s): other instances notice "
                    "within the cache TTL",
                    key_id, lc_status_name(st));
    }
    free(buf);
}

/* ---- lifecycle ---- */

lc_status_t
au_authn_start(au_ctx_t *ctx, au_authn_t **out)
{
    au_authn_t *authn = LC_NEW(au_authn_t);
    authn->ctx = ctx;
    size_t entries = (size_t) ctx->cfg->key_cache_size;
    ctx->keys = au_cache_create(entries, ctx->cfg->key_cache_ttl_ms, sizeof(cred_t));
    ctx->orgs = au_cache_create(entries, ctx->cfg->key_cache_ttl_ms, sizeof(org_t));
    h2o_linklist_init_anchor(&authn->lookups);
    lc_metrics_t *m = ctx->metrics;
    const char *name = "voxi_auth_authenticate_total";
    const char *help = "authenticate requests by outcome";
    authn->m_ok = lc_metrics_counter(m, name, help, "outcome=\"ok\"");
    authn->m_unauthorized = lc_metrics_counter(m, name, help, "outcome=\"unauthorized\"");
    authn->m_forbidden = lc_metrics_counter(m, name, help, "outcome=\"forbidden\"");
    authn->m_limited = lc_metrics_counter(m, name, help, "outcome=\"rate_limited\"");
    authn->m_error = lc_metrics_counter(m, name, help, "outcome=\"error\"");
    name = "voxi_auth_credential_cache_total";
    help = "credential cache lookups (API keys, JWT orgs) by result";
    authn->m_cache_hit = lc_metrics_counter(m, name, help, "result=\"hit\"");
    authn->m_cache_miss = lc_metrics_counter(m, name, help, "result=\"miss\"");
    authn->m_latency =
        lc_metrics_histogram(m, "voxi_auth_authenticate_duration_seconds",
                             "time to answer an authenticate request", NULL, NULL, 0);
    authn->m_evictions = lc_metrics_counter(m, "voxi_auth_cache_evictions_total",
                                            "keys dropped from the cache by a revocation", NULL);
    *out = authn;
    if (ctx->nsubs + 2 > AU_MAX_SUBS)
        return LC_ERR_FULL;
    LC_TRY(lc_nats_subscribe(ctx->nc, AU_SUBJECT_AUTHENTICATE, AU_QUEUE, on_authenticate, authn,
                             &ctx->subs[ctx->nsubs++]));
    return lc_nats_subscribe(ctx->nc, AU_SUBJECT_CACHE_EVICT, NULL, on_evict, authn,
                             &ctx->subs[ctx->nsubs++]);
}

void
au_authn_destroy(au_authn_t *authn)
{
    free(authn);
}
