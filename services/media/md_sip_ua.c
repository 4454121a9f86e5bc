#include "md_sip_ua.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "md_call.h"
#include "md_map.h"
#include "md_route.h"
#include "md_sdp.h"
#include "md_sip_acl.h"

#define RETRY_AFTER_S "5"

/* An INVITE waiting for the registry to resolve its number (the caller has our 100 Trying).
 * Owned by the ua's pending list; ends when the lookup answers, or when the transaction
 * terminates first (CANCEL, shutdown). */
typedef struct pending_invite {
    md_sip_ua_t *ua;
    md_sip_txn_t *txn;
    md_sip_peer_t from;
    md_sdp_t *offer; /* NULL: the INVITE has none */
    char number[MD_ROUTE_NUMBER_MAX + 1];
    bool demo; /* the demo user: without a route it stays the offline echo demo */
    md_route_lookup_t *lookup;
    struct pending_invite *prev, *next;
} pending_invite_t;

struct md_sip_ua {
    md_worker_t *w;
    md_map_t *calls; /* SIP Call-ID -> md_call_t */
    pending_invite_t *pending;
    size_t npending;
    lc_metric_t *m_flood, *m_requests, *m_rejected, *m_auth_challenged, *m_auth_forbidden;
};

/* Methods RFC 3261 and its extensions define that this worker does not serve (405). */
static const char *const known_methods[] = {"REGISTER", "SUBSCRIBE", "PUBLISH",
                                            "MESSAGE",  "PRACK",     "UPDATE"};

lc_status_t
md_sip_ua_create(md_worker_t *w, md_sip_ua_t **out)
{
    md_sip_ua_t *ua = LC_NEW(md_sip_ua_t);
    ua->w = w;
    ua->calls = md_map_create();
    lc_metrics_t *reg = w->metrics;
    ua->m_flood = lc_metrics_counter(reg, "voxi_media_sip_dropped_total",
                                     "SIP input dropped, by reason", "reason=\"flood\"");
    ua->m_requests =
        lc_metrics_counter(reg, "voxi_media_sip_requests_total", "new SIP requests handled", NULL);
    ua->m_rejected = lc_metrics_counter(reg, "voxi_media_sip_rejected_total",
                                        "new requests answered with an error by the UA core", NULL);
    const char *ah = "INVITEs from outside the allowlist, by outcome";
    ua->m_auth_challenged =
        lc_metrics_counter(reg, "voxi_media_sip_auth_total", ah, "outcome=\"challenged\"");
    ua->m_auth_forbidden =
        lc_metrics_counter(reg, "voxi_media_sip_auth_total", ah, "outcome=\"forbidden\"");
    *out = ua;
    return LC_OK;
}

void
md_sip_ua_destroy(md_sip_ua_t *ua)
{
    if (ua == NULL)
        return;
    md_map_destroy(ua->calls);
    free(ua);
}

/* ---- the call table ---- */

void
md_sip_ua_register(md_sip_ua_t *ua, const char *sip_call_id, md_call_t *call)
{
    md_map_put(ua->calls, sip_call_id, call);
}

void
md_sip_ua_forget(md_sip_ua_t *ua, const char *sip_call_id, md_call_t *call)
{
    if (md_map_get(ua->calls, sip_call_id) == call)
        md_map_remove(ua->calls, sip_call_id);
}

md_call_t *
md_sip_ua_find(md_sip_ua_t *ua, const char *sip_call_id)
{
    return sip_call_id ? md_map_get(ua->calls, sip_call_id) : NULL;
}

size_t
md_sip_ua_call_count(const md_sip_ua_t *ua)
{
    return md_map_size(ua->calls);
}

size_t
md_sip_ua_pending_count(const md_sip_ua_t *ua)
{
    return ua->npending;
}

static void
collect_call(const char *key, void *value, void *arg)
{
    (void) key;
    md_call_t ***cursor = arg;
    **cursor = value;
    (*cursor)++;
}

void
md_sip_ua_hangup_all(md_sip_ua_t *ua, const char *reason)
{
    size_t n = md_map_size(ua->calls);
    md_call_t **all = lc_calloc(n + 1, sizeof(*all));
    md_call_t **cursor = all;
    md_map_foreach(ua->calls, collect_call, &cursor);
    for (size_t i = 0; i < n; i++)
        md_call_hangup(all[i], reason);
    free(all);
    /* INVITEs still waiting for their route: 503 (their transactions end on their own) */
    for (pending_invite_t *p = ua->pending; p; p = p->next)
        if (md_sip_txn_last_code(p->txn) < 200) {
            osip_message_t *r =
                md_sip_response_create(md_sip_txn_request(p->txn), 503, "Shutting Down", NULL);
            osip_message_set_header(r, "Retry-After", RETRY_AFTER_S);
            md_sip_txn_respond(p->txn, r);
        }
}

void
md_sip_ua_contact(const md_sip_ua_t *ua, md_sip_proto_t proto, char *out, size_t size)
{
    const char *addr = ua->w->public_addr;
    bool v6 = strchr(addr, ':') != NULL;
    snprintf(out, size, "<sip:voxi@%s%s%s:%d%s>", v6 ? "[" : "", addr, v6 ? "]" : "",
             ua->w->sip_port, proto == MD_SIP_TCP ? ";transport=tcp" : "");
}

/* ---- input ---- */

void
md_sip_ua_on_transport(void *arg, const md_sip_peer_t *from, const char *buf, size_t len)
{
    md_sip_ua_t *ua = arg;
    md_worker_t *w = ua->w;
    if (!md_sip_acl_allowed(w->acl, &from->addr) &&
        md_sip_acl_flooding(w->acl, &from->addr, lc_time_mono_ms())) {
        lc_metric_inc(ua->m_flood);
        char p[80];
        md_sip_peer_format(from, p, sizeof(p));
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "flood from %s: dropping", p);
        return;
    }
    md_sip_txn_layer_input(w->txns, from, buf, len);
}

static void
reject(md_sip_ua_t *ua, md_sip_txn_t *txn, int code, const char *reason, const char *hname,
       const char *hvalue)
{
    lc_metric_inc(ua->m_rejected);
    char tag[24];
    md_sip_random_token("", tag, sizeof(tag));
    osip_message_t *r = md_sip_response_create(md_sip_txn_request(txn), code, reason, tag);
    if (hname)
        osip_message_set_header(r, hname, hvalue);
    md_sip_txn_respond(txn, r);
    const md_sip_msg_t *req = md_sip_txn_request(txn);
    LC_DEBUG("sip", "%s %s answered %d", req->method, req->call_id ? req->call_id : "-", code);
}

static bool
method_known(const char *m)
{
    static const char *const served[] = {"INVITE",  "ACK",  "BYE",   "CANCEL",
                                         "OPTIONS", "INFO", "REFER", "NOTIFY"};
    for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++)
        if (strcmp(m, served[i]) == 0)
            return true;
    return false;
}

static bool
method_not_allowed(const char *m)
{
    for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++)
        if (strcmp(m, known_methods[i]) == 0)
            return true;
    return false;
}

/* The first option of Require we do not support (we support none), or NULL. Writes the
 * Unsupported header value (every unsupported option, section 8.2.2.3). */
static bool
unsupported_require(const md_sip_msg_t *req, char *out, size_t size)
{
    out[0] = '\0';
    size_t len = 0;
    const char *v;
    for (int i = 0; (v = md_sip_msg_header(req, "require", i)) != NULL; i++) {
        const char *p = v;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            const char *start = p;
            while (*p && *p != ',')
                p++;
            const char *end = p;
            while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if (end > start && len + (size_t) (end - start) + 3 < size) {
                if (len)
                    len += (size_t) snprintf(out + len, size - len, ", ");
                memcpy(out + len, start, (size_t) (end - start));
                len += (size_t) (end - start);
                out[len] = '\0';
            }
        }
    }
    return len > 0;
}

/* RFC 3261 section 8.2.3: an Accept without application/sdp means our answer would be
 * unacceptable (406). No Accept at all means application/sdp. */
static bool
accepts_sdp(const md_sip_msg_t *req)
{
    int n = osip_list_size(&req->osip->accepts);
    if (n == 0)
        return true;
    for (int i = 0; i < n; i++) {
        osip_accept_t *a = osip_list_get(&req->osip->accepts, i);
        if (a == NULL || a->type == NULL)
            return true; /* an empty Accept value: nothing to object to */
        bool type_ok = strcmp(a->type, "*") == 0 || strcasecmp(a->type, "application") == 0;
        bool sub_ok = a->subtype == NULL || strcmp(a->subtype, "*") == 0 ||
                      strcasecmp(a->subtype, "sdp") == 0;
        if (type_ok && sub_ok)
            return true;
    }
    return false;
}

static void
handle_options(md_sip_ua_t *ua, md_sip_txn_t *txn, const md_sip_msg_t *req)
{
    (void) ua;
    char tag[24];
    md_sip_random_token("", tag, sizeof(tag));
    osip_message_t *r = md_sip_response_create(req, 200, NULL, tag);
    osip_message_set_header(r, "Allow", MD_SIP_ALLOW);
    osip_message_set_header(r, "Accept", "application/sdp");
    osip_message_set_header(r, "Supported", "");
    md_sip_txn_respond(txn, r);
}

static void
handle_cancel(md_sip_ua_t *ua, md_sip_txn_t *txn, const md_sip_msg_t *req,
              const md_sip_peer_t *from)
{
    /* RFC 3261 section 9.2: find the INVITE transaction; answer the CANCEL itself 200 */
    md_sip_txn_t *inv = md_sip_txn_find_invite(ua->w->txns, req, from);
    if (inv == NULL) {
        md_sip_txn_respond_code(txn, 481, NULL, NULL);
        return;
    }
    md_sip_txn_respond_code(txn, 200, NULL, NULL);
    md_call_t *call = md_sip_ua_find(ua, req->call_id);
    if (call)
        md_call_on_cancel(call);
    else if (md_sip_txn_last_code(inv) < 200)
        md_sip_txn_respond_code(inv, 487, NULL, NULL);
}

/* Creates the call for an admitted INVITE (route NULL: the echo demo). */
static void
start_call(md_sip_ua_t *ua, md_sip_txn_t *txn, const md_sip_peer_t *from, const md_sdp_t *offer,
           const md_route_t *route)
{
    md_call_agent_t agent;
    memset(&agent, 0, sizeof(agent));
    if (route) {
        snprintf(agent.org_id, sizeof(agent.org_id), "%s", route->org_id);
        snprintf(agent.number_id, sizeof(agent.number_id), "%s", route->number_id);
        snprintf(agent.agent_id, sizeof(agent.agent_id), "%s", route->agent_id);
        agent.agent_version = route->agent_version;
        agent.agent_json = route->agent_json; /* copied by the call */
    }
    md_call_t *call = NULL;
    lc_status_t st = md_call_create_inbound(ua->w, txn, md_sip_txn_request(txn), from, offer,
                                            route ? &agent : NULL, &call);
    if (st == LC_ERR_NOT_FOUND)
        reject(ua, txn, 488, NULL, "Warning", "304 voxi \"Media type not available\"");
    else if (st == LC_ERR_FULL)
        reject(ua, txn, 503, "No Media Ports", "Retry-After", RETRY_AFTER_S);
    else if (st != LC_OK)
        reject(ua, txn, 500, NULL, NULL, NULL);
}

static void
pending_free(pending_invite_t *p)
{
    md_sip_ua_t *ua = p->ua;
    if (p->prev)
        p->prev->next = p->next;
    else if (ua->pending == p)
        ua->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (ua->npending > 0)
        ua->npending--;
    free(p->offer);
    free(p);
}

/* The INVITE transaction ended before its route came (a CANCEL got it a 487 and the ACK came,
 * or the layer closed). */
static void
on_pending_txn_event(void *arg, md_sip_txn_t *txn, md_sip_txn_event_t ev)
{
    pending_invite_t *p = arg;
    (void) txn;
    if (ev != MD_TXN_EV_TERMINATED)
        return;
    md_route_lookup_cancel(p->lookup);
    pending_free(p);
}

static void
on_route(void *arg, lc_status_t status, const md_route_t *route)
{
    pending_invite_t *p = arg;
    md_sip_ua_t *ua = p->ua;
    md_sip_txn_t *txn = p->txn;
    p->lookup = NULL;
    md_sip_txn_set_owner(txn, NULL, NULL);
    const md_sip_msg_t *req = md_sip_txn_request(txn);
    lc_log_context_set(NULL, req->call_id ? req->call_id : "");
    if (md_sip_txn_last_code(txn) >= 200) {
        /* CANCELled (487 sent) or shut down while we waited */
    } else if (ua->w->draining) {
        lc_metric_inc(ua->w->m.calls_rejected_draining);
        reject(ua, txn, 503, "Draining", "Retry-After", RETRY_AFTER_S);
    } else if (status == LC_OK) {
        LC_INFO("sip", "%s routes to agent %s (org %s)", p->number, route->agent_id, route->org_id);
        start_call(ua, txn, &p->from, p->offer, route);
    } else if (p->demo) {
        /* the demo keeps working without a control plane, and when no number "demo" is
         * registered (remembered for the cache TTL) */
        md_router_remember_none(ua->w->router, p->number);
        start_call(ua, txn, &p->from, p->offer, NULL);
    } else if (status == LC_ERR_NOT_FOUND) {
        LC_INFO("sip", "%s: no such number", p->number);
        reject(ua, txn, 404, NULL, NULL, NULL);
    } else {
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "%s: the registry is unreachable: 503", p->number);
        reject(ua, txn, 503, "Routing Unavailable", "Retry-After", RETRY_AFTER_S);
    }
    lc_log_context_clear();
    if (p->prev || p->next || ua->pending == p)
        pending_free(p);
    else {
        free(p->offer);
        free(p); /* never listed (the lookup could not start) */
    }
}

static void
handle_invite(md_sip_ua_t *ua, md_sip_txn_t *txn, const md_sip_msg_t *req,
              const md_sip_peer_t *from)
{
    md_worker_t *w = ua->w;
    if (md_sip_ua_find(ua, req->call_id)) {
        /* RFC 3261 section 8.2.2.2: a second INVITE with this Call-ID (merged / looped) */
        reject(ua, txn, 482, NULL, NULL, NULL);
        return;
    }
    bool has_body = req->body != NULL && req->body_len > 0;
    if (has_body && strcmp(req->content_type, "application/sdp") != 0) {
        reject(ua, txn, 415, NULL, "Accept", "application/sdp");
        return;
    }
    const char *enc = md_sip_msg_header(req, "content-encoding", 0);
    if (osip_list_size(&req->osip->content_encodings) > 0 || (enc && strcasecmp(enc, "identity"))) {
        reject(ua, txn, 415, NULL, "Accept-Encoding", "identity");
        return;
    }
    if (!accepts_sdp(req)) {
        reject(ua, txn, 406, NULL, "Accept", "application/sdp");
        return;
    }
    if (!md_sip_acl_allowed(w->acl, &from->addr)) {
        char challenge[256], user[64];
        switch (md_sip_acl_check(w->acl, req, lc_time_mono_ms(), challenge, sizeof(challenge), user,
                                 sizeof(user))) {
        case MD_SIP_AUTH_OK:
            LC_INFO("sip", "INVITE authenticated as %s", user);
            break;
        case MD_SIP_AUTH_CHALLENGE:
            lc_metric_inc(ua->m_auth_challenged);
            reject(ua, txn, 401, NULL, "WWW-Authenticate", challenge);
            return;
        default:
            lc_metric_inc(ua->m_auth_forbidden);
            reject(ua, txn, 403, NULL, NULL, NULL);
            return;
        }
    }
    if (w->draining) {
        lc_metric_inc(w->m.calls_rejected_draining);
        reject(ua, txn, 503, "Draining", "Retry-After", RETRY_AFTER_S);
        return;
    }
    if ((int64_t) (md_sip_ua_call_count(ua) + ua->npending) >= w->cfg->max_calls) {
        lc_metric_inc(w->m.calls_rejected_full);
        reject(ua, txn, 503, "Too Many Calls", "Retry-After", RETRY_AFTER_S);
        return;
    }
    const char *user = md_sip_msg_ruri_user(req);
    if (user == NULL || !md_route_number_ok(user)) {
        reject(ua, txn, 404, NULL, NULL, NULL);
        return;
    }
    md_sdp_t *offer = NULL;
    if (has_body) {
        offer = lc_malloc(sizeof(md_sdp_t));
        if (md_sdp_parse(req->body, req->body_len, offer) != LC_OK) {
            free(offer);
            reject(ua, txn, 400, "Bad SDP", NULL, NULL);
            return;
        }
    }
    bool demo = w->cfg->demo_user && strcmp(user, w->cfg->demo_user) == 0;
    md_route_t route;
    md_route_cache_t cached = md_router_cached(w->router, user, lc_time_mono_ms(), &route);
    if (cached == MD_ROUTE_HIT || (cached == MD_ROUTE_NONE && demo)) {
        start_call(ua, txn, from, offer, cached == MD_ROUTE_HIT ? &route : NULL);
        if (cached == MD_ROUTE_HIT)
            md_route_clear(&route);
        free(offer);
        return;
    }
    pending_invite_t *p = LC_NEW(pending_invite_t);
    p->ua = ua;
    p->txn = txn;
    p->from = *from;
    p->offer = offer;
    p->demo = demo;
    snprintf(p->number, sizeof(p->number), "%s", user);
    if (md_router_lookup(w->router, user, on_route, p, &p->lookup) != LC_OK) {
        /* not connected to NATS: as if the registry did not answer */
        on_route(p, LC_ERR_UNAVAILABLE, NULL);
        return;
    }
    p->next = ua->pending;
    if (p->next)
        p->next->prev = p;
    ua->pending = p;
    ua->npending++;
    md_sip_txn_set_owner(txn, on_pending_txn_event, p);
}

void
md_sip_ua_on_request(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *req,
                     const md_sip_peer_t *from)
{
    md_sip_ua_t *ua = arg;
    if (md_sip_method_is(req, "ACK")) {
        md_call_t *call = md_sip_ua_find(ua, req->call_id);
        if (call && md_call_matches(call, req))
            md_call_on_ack(call, req);
        return;
    }
    lc_metric_inc(ua->m_requests);
    const char *method = req->method;
    if (!method_known(method)) {
        if (method_not_allowed(method))
            reject(ua, txn, 405, NULL, "Allow", MD_SIP_ALLOW);
        else
            reject(ua, txn, 501, NULL, NULL, NULL);
        return;
    }
    osip_uri_t *ruri = req->osip->req_uri;
    const char *scheme = ruri && ruri->scheme ? ruri->scheme : "";
    if (strcasecmp(scheme, "sip") != 0 && strcasecmp(scheme, "sips") != 0 &&
        strcasecmp(scheme, "tel") != 0) {
        reject(ua, txn, 416, NULL, NULL, NULL);
        return;
    }
    char unsupported[256];
    if (!md_sip_method_is(req, "CANCEL") &&
        unsupported_require(req, unsupported, sizeof(unsupported))) {
        reject(ua, txn, 420, NULL, "Unsupported", unsupported);
        return;
    }
    if (req->max_forwards == 0 && !md_sip_method_is(req, "OPTIONS")) {
        reject(ua, txn, 483, NULL, NULL, NULL);
        return;
    }
    if (md_sip_method_is(req, "CANCEL")) {
        handle_cancel(ua, txn, req, from);
        return;
    }
    if (req->to_tag != NULL) {
        /* inside a dialog (RFC 3261 section 12.2.2) */
        md_call_t *call = md_sip_ua_find(ua, req->call_id);
        if (call == NULL || !md_call_matches(call, req)) {
            reject(ua, txn, 481, NULL, NULL, NULL);
            return;
        }
        md_call_on_request(call, txn, req);
        return;
    }
    if (md_sip_method_is(req, "OPTIONS")) {
        handle_options(ua, txn, req);
        return;
    }
    if (md_sip_method_is(req, "INVITE")) {
        handle_invite(ua, txn, req, from);
        return;
    }
    /* BYE, INFO, REFER, NOTIFY outside a dialog */
    reject(ua, txn, 481, NULL, NULL, NULL);
}

void
md_sip_ua_on_stray_response(void *arg, const md_sip_msg_t *msg, const md_sip_peer_t *from)
{
    md_sip_ua_t *ua = arg;
    if (msg->status_code >= 200 && msg->status_code < 300 && md_sip_method_is(msg, "INVITE")) {
        md_call_t *call = md_sip_ua_find(ua, msg->call_id);
        if (call) {
            md_call_on_stray_2xx(call);
            return;
        }
    }
    char p[80];
    md_sip_peer_format(from, p, sizeof(p));
    LC_LOG_RL(LC_LOG_DEBUG, "sip", 5, "stray %d response to %s from %s", msg->status_code,
              msg->method ? msg->method : "?", p);
}
