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
#include "md_sdp.h"
#include "md_sip_acl.h"

#define RETRY_AFTER_S "5"

struct md_sip_ua {
    md_worker_t *w;
    md_map_t *calls; /* SIP Call-ID -> md_call_t */
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
    if ((int64_t) md_sip_ua_call_count(ua) >= w->cfg->max_calls) {
        lc_metric_inc(w->m.calls_rejected_full);
        reject(ua, txn, 503, "Too Many Calls", "Retry-After", RETRY_AFTER_S);
        return;
    }
    const char *user = md_sip_msg_ruri_user(req);
    if (user == NULL || w->cfg->demo_user == NULL || strcmp(user, w->cfg->demo_user) != 0) {
        /* numbers from the control plane route here once the registry resolves them */
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
    md_call_t *call = NULL;
    lc_status_t st = md_call_create_inbound(w, txn, req, from, offer, &call);
    free(offer);
    if (st == LC_ERR_NOT_FOUND)
        reject(ua, txn, 488, NULL, "Warning", "304 voxi \"Media type not available\"");
    else if (st == LC_ERR_FULL)
        reject(ua, txn, 503, "No Media Ports", "Retry-After", RETRY_AFTER_S);
    else if (st != LC_OK)
        reject(ua, txn, 500, NULL, NULL, NULL);
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
