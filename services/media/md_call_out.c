/*
 * md_call_out: outbound calls (UAC, RFC 3261 section 13.2). See md_call_create_outbound in
 * md_call.h.
 *
 * The INVITE goes to the trunk (VOXI_MEDIA_TRUNK_URI, or the dial request's) or to the URI
 * dialled; a host name is resolved first (uv_getaddrinfo). 401 and 407 are answered once per
 * challenge with digest credentials (section 22.2); a provisional response with a To tag
 * makes an early dialog, the 2xx the confirmed one (its Record-Route reversed, section
 * 12.1.2) and gets our ACK (section 13.2.2.4), which is sent again for each retransmitted
 * 2xx. Ringing past the timeout sends CANCEL (section 9.1).
 *
 * Threads: the loop thread only.
 */
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_time.h"
#include "md_call_internal.h"
#include "md_sip_digest.h"
#include "md_sip_ua.h"

static void on_invite_response(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *resp, int code);

static lc_status_t
send_invite(md_call_t *call, const char *auth_name, const char *auth_value)
{
    md_worker_t *w = call->w;
    osip_message_t *m = md_sip_request_create("INVITE", call->target_uri);
    if (m == NULL)
        return LC_ERR_INVALID;
    char hdr[512];
    bool v6 = strchr(w->public_addr, ':') != NULL;
    snprintf(hdr, sizeof(hdr), "<sip:%s@%s%s%s>;tag=%s", call->from_user, v6 ? "[" : "",
             w->public_addr, v6 ? "]" : "", call->local_tag);
    osip_message_set_from(m, hdr);
    snprintf(hdr, sizeof(hdr), "<%s>", call->target_uri);
    osip_message_set_to(m, hdr);
    osip_message_set_call_id(m, call->sip_call_id);
    snprintf(hdr, sizeof(hdr), "%u INVITE", ++call->invite_cseq);
    osip_message_set_cseq(m, hdr);
    osip_message_set_header(m, "Max-Forwards", "70");
    md_call_add_contact(call, m);
    osip_message_set_header(m, "Allow", MD_SIP_ALLOW);
    osip_message_set_header(m, "User-Agent", MD_SIP_USER_AGENT);
    if (auth_name)
        osip_message_set_header(m, auth_name, auth_value);
    char sdp[MD_SDP_MAX_BYTES];
    md_sdp_local_t local;
    md_call_local_sdp(call, MD_SDP_SENDRECV, &local);
    size_t len = md_sdp_write_offer(&w->sdp_prefs, NULL, &local, sdp, sizeof(sdp));
    md_sip_set_body(m, "application/sdp", sdp, len);
    lc_status_t st = md_sip_txn_client_start(w->txns, m, &call->peer, on_invite_response, call,
                                             &call->out_invite);
    if (st == LC_OK) /* it may end before the call does (64*T1 after the 2xx) */
        md_sip_txn_set_owner(call->out_invite, md_call_on_txn_event, call);
    return st;
}

static const char *
failure_reason(const md_call_t *call, int code)
{
    if (code == 487)
        return call->cancelled ? "no_answer" : "cancelled";
    if (code == 486 || code == 600)
        return "busy";
    if (code == 404 || code == 604)
        return "not_found";
    if (code == 401 || code == 407 || code == 403)
        return "unauthorized";
    if (code == 408)
        return "timeout";
    if (code == 503 && call->out_invite == NULL)
        return "unreachable";
    return "rejected";
}

/* Section 22.2: one answer per challenge; a second challenge means bad credentials. */
static bool
answer_challenge(md_call_t *call, const md_sip_msg_t *resp)
{
    if (call->auth_user == NULL || call->auth_attempts >= 2)
        return false;
    osip_www_authenticate_t *ch = NULL;
    if (resp->status_code == 401)
        osip_message_get_www_authenticate(resp->osip, 0, &ch);
    else
        osip_message_get_proxy_authenticate(resp->osip, 0,
                                            (osip_proxy_authenticate_t **) (void *) &ch);
    char value[1024];
    if (md_sip_digest_answer(ch, call->auth_user, call->auth_password ? call->auth_password : "",
                             "INVITE", call->target_uri, value, sizeof(value)) != LC_OK)
        return false;
    call->auth_attempts++;
    LC_INFO("call", "answering the %d challenge as %s", resp->status_code, call->auth_user);
    const char *name = resp->status_code == 401 ? "Authorization" : "Proxy-Authorization";
    return send_invite(call, name, value) == LC_OK;
}

static void
send_ack(md_call_t *call)
{
    if (call->ack_bytes == NULL) {
        osip_message_t *ack = md_sip_dialog_request(call->dlg, "ACK", NULL, call->invite_cseq);
        if (ack == NULL)
            return;
        md_sip_txn_add_via(call->w->txns, ack, call->peer.proto);
        md_sip_serialize(ack, &call->ack_bytes, &call->ack_len);
        osip_message_free(ack);
    }
    md_sip_peer_t hop;
    md_sip_dialog_next_hop(call->dlg, &hop);
    if (call->ack_bytes)
        md_sip_transport_send(call->w->transport, &hop, call->ack_bytes, call->ack_len);
}

void
md_call_on_stray_2xx(md_call_t *call)
{
    if (call->state != CS_ENDED && call->ack_bytes)
        send_ack(call);
}

static void
on_answered(md_call_t *call, const md_sip_msg_t *resp)
{
    const md_sip_msg_t *req = md_sip_txn_client_request(call->out_invite);
    if (call->dlg == NULL || call->dlg->remote_tag == NULL || resp->to_tag == NULL ||
        strcmp(call->dlg->remote_tag, resp->to_tag) != 0) {
        /* the 2xx makes the dialog (an early one from another fork is replaced) */
        md_sip_dialog_destroy(call->dlg);
        call->dlg = md_sip_dialog_create_uac(req, resp, &call->peer);
    } else {
        md_sip_dialog_refresh_target(call->dlg, resp);
    }
    send_ack(call);
    md_sdp_t *answer = lc_malloc(sizeof(md_sdp_t));
    md_sdp_neg_t neg;
    bool ok = resp->body && strcmp(resp->content_type, "application/sdp") == 0 &&
              md_sdp_parse(resp->body, resp->body_len, answer) == LC_OK &&
              md_sdp_accept_answer(answer, &call->w->sdp_prefs, &neg) == LC_OK &&
              md_call_apply_neg(call, &neg) == LC_OK;
    free(answer);
    call->state = CS_ACTIVE;
    call->answered_wall_ms = lc_time_wall_ms();
    call->answered_mono_ms = lc_time_mono_ms();
    uv_timer_stop(&call->timer);
    if (!ok) {
        LC_WARN("call", "the 2xx carries no usable SDP answer: hanging up");
        md_call_hangup(call, "bad_sdp_answer");
        return;
    }
    LC_INFO("call", "answered (%s)", md_codec_desc(call->neg.codec)->encoding_name);
    md_call_publish(call, "call.answered",
                    json_pack("{s:s}", "codec", md_codec_desc(call->neg.codec)->encoding_name));
    md_call_start_media(call);
}

static void
on_invite_response(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *resp, int code)
{
    md_call_t *call = arg;
    if (call->state == CS_ENDED)
        return;
    CALL_CTX(call);
    if (txn != call->out_invite)
        goto done; /* an earlier INVITE (before a challenge) */
    if (resp == NULL) {
        md_sip_txn_set_owner(txn, NULL, NULL);
        call->out_invite = NULL;
        md_call_end(call, code == 408 ? "timeout" : "unreachable", code);
        goto done;
    }
    if (code < 200) {
        if (resp->to_tag && call->dlg == NULL) /* an early dialog, section 12.1.2 */
            call->dlg = md_sip_dialog_create_uac(md_sip_txn_client_request(txn), resp, &call->peer);
        if ((code == 180 || code == 183) && !call->ringing_reported) {
            LC_INFO("call", "ringing (%d)", code);
            md_call_publish(call, "call.ringing", json_pack("{s:i}", "sip_code", code));
            call->ringing_reported = true;
        }
        goto done;
    }
    if (code < 300) {
        if (call->state == CS_RINGING) {
            on_answered(call, resp);
        } else {
            send_ack(call); /* a retransmitted 2xx */
        }
        goto done;
    }
    md_sip_txn_set_owner(txn, NULL, NULL);
    call->out_invite = NULL;
    if ((code == 401 || code == 407) && answer_challenge(call, resp))
        goto done;
    LC_INFO("call", "outbound call failed: %d", code);
    md_call_end(call, failure_reason(call, code), code);
done:
    CALL_CTX_END();
}

/* ---- an INVITE that outlives its call ---- */

/* The call ended while its INVITE had no final response (we CANCELled, or hung up). If a 2xx
 * still comes (it crossed our CANCEL, section 9.1), the session exists on the far side: ACK
 * it and BYE it at once (section 15). Lives until the transaction terminates. */
typedef struct {
    md_worker_t *w;
    md_sip_peer_t peer;
    char call_id[48];
    char *ack_bytes;
    size_t ack_len;
    md_sip_peer_t hop;
} orphan_t;

static void
orphan_response(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *resp, int code)
{
    orphan_t *o = arg;
    if (resp == NULL || code < 200 || code >= 300)
        return;         /* the layer ACKs 3xx-6xx itself */
    if (o->ack_bytes) { /* a retransmitted 2xx: our ACK again (section 13.2.2.4) */
        md_sip_transport_send(o->w->transport, &o->hop, o->ack_bytes, o->ack_len);
        return;
    }
    lc_log_context_set(NULL, o->call_id);
    md_sip_dialog_t *dlg = md_sip_dialog_create_uac(md_sip_txn_client_request(txn), resp, &o->peer);
    if (dlg == NULL) {
        LC_WARN("call", "a 2xx after our CANCEL that makes no dialog: ignored");
        lc_log_context_clear();
        return;
    }
    LC_INFO("call", "answered after our CANCEL: ACK and BYE");
    md_sip_dialog_next_hop(dlg, &o->hop);
    osip_message_t *ack = md_sip_dialog_request(dlg, "ACK", NULL, resp->cseq);
    if (ack) {
        md_sip_txn_add_via(o->w->txns, ack, o->peer.proto);
        md_sip_serialize(ack, &o->ack_bytes, &o->ack_len);
        osip_message_free(ack);
        if (o->ack_bytes)
            md_sip_transport_send(o->w->transport, &o->hop, o->ack_bytes, o->ack_len);
    }
    char contact[160];
    md_sip_ua_contact(o->w->ua, o->peer.proto, contact, sizeof(contact));
    osip_message_t *bye = md_sip_dialog_request(dlg, "BYE", contact, 0);
    if (bye == NULL || md_sip_txn_client_start(o->w->txns, bye, &o->hop, NULL, NULL, NULL) != LC_OK)
        LC_WARN("call", "BYE after the late 2xx not sent");
    md_sip_dialog_destroy(dlg);
    lc_log_context_clear();
}

static void
orphan_txn_event(void *arg, md_sip_txn_t *txn, md_sip_txn_event_t ev)
{
    orphan_t *o = arg;
    if (ev != MD_TXN_EV_TERMINATED)
        return;
    md_sip_txn_detach(txn);
    free(o->ack_bytes);
    free(o);
}

void
md_call_out_release_invite(md_call_t *call, bool answered)
{
    md_sip_txn_t *txn = call->out_invite;
    call->out_invite = NULL;
    if (txn == NULL)
        return;
    if (answered) {
        md_sip_txn_detach(txn);
        return;
    }
    orphan_t *o = LC_NEW(orphan_t);
    o->w = call->w;
    o->peer = call->peer;
    snprintf(o->call_id, sizeof(o->call_id), "%s", call->id);
    md_sip_txn_client_rebind(txn, orphan_response, o);
    md_sip_txn_set_owner(txn, orphan_txn_event, o);
}

void
md_call_out_on_timeout(md_call_t *call)
{
    LC_INFO("call", "no answer within %lld ms: CANCEL", (long long) call->dial_timeout_ms);
    call->cancelled = true;
    md_sip_txn_cancel(call->out_invite);
    md_call_end(call, "no_answer", 487);
}

static void
start(md_call_t *call)
{
    lc_status_t st = send_invite(call, NULL, NULL);
    if (st != LC_OK) {
        LC_WARN("call", "INVITE not sent: %s", lc_status_name(st));
        md_call_end(call, "unreachable", 503);
        return;
    }
    uv_timer_start(&call->timer, md_call_on_timer, (uint64_t) call->dial_timeout_ms, 0);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    md_call_t *call = req->data;
    call->resolving = false;
    if (call->state == CS_ENDED) {
        /* ended while resolving: md_call_end left the freeing to us */
        uv_freeaddrinfo(res);
        uv_close((uv_handle_t *) &call->timer, md_call_free_cb);
        return;
    }
    CALL_CTX(call);
    if (status < 0 || res == NULL) {
        LC_WARN("call", "cannot resolve the next hop: %s", uv_strerror(status));
        uv_freeaddrinfo(res);
        md_call_end(call, "unreachable", 503);
        CALL_CTX_END();
        return;
    }
    int port = ntohs(((struct sockaddr_in *) &call->peer.addr)->sin_port);
    memset(&call->peer.addr, 0, sizeof(call->peer.addr));
    memcpy(&call->peer.addr, res->ai_addr, res->ai_addrlen);
    ((struct sockaddr_in *) &call->peer.addr)->sin_port = htons((uint16_t) port);
    uv_freeaddrinfo(res);
    start(call);
    CALL_CTX_END();
}

/* The request URI and next hop of a dial request. */
static lc_status_t
route(md_worker_t *w, const md_call_dial_t *dial, char **target, osip_uri_t **hop_uri)
{
    const char *trunk = dial->trunk_uri && dial->trunk_uri[0] ? dial->trunk_uri : w->cfg->trunk_uri;
    bool is_uri = strncasecmp(dial->to, "sip:", 4) == 0 || strncasecmp(dial->to, "sips:", 5) == 0;
    osip_uri_t *trunk_uri = NULL;
    if (trunk) {
        osip_uri_init(&trunk_uri);
        if (osip_uri_parse(trunk_uri, trunk) != 0 || trunk_uri->host == NULL) {
            osip_uri_free(trunk_uri);
            return LC_ERR_INVALID;
        }
    }
    if (is_uri) {
        *target = lc_strdup(dial->to);
    } else {
        if (trunk_uri == NULL)
            return LC_ERR_INVALID; /* a number needs a trunk */
        for (const char *c = dial->to; *c; c++)
            if (!(isalnum((unsigned char) *c) || strchr("+-._*#", *c))) {
                osip_uri_free(trunk_uri);
                return LC_ERR_INVALID;
            }
        char buf[512];
        snprintf(buf, sizeof(buf), "sip:%s@%s%s%s", dial->to, trunk_uri->host,
                 trunk_uri->port ? ":" : "", trunk_uri->port ? trunk_uri->port : "");
        *target = lc_strdup(buf);
    }
    if (trunk_uri) {
        *hop_uri = trunk_uri;
        return LC_OK;
    }
    osip_uri_t *u = NULL;
    osip_uri_init(&u);
    if (osip_uri_parse(u, *target) != 0 || u->host == NULL) {
        osip_uri_free(u);
        free(*target);
        *target = NULL;
        return LC_ERR_INVALID;
    }
    *hop_uri = u;
    return LC_OK;
}

bool
md_call_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= sizeof(((md_call_t *) 0)->id))
        return false;
    for (const char *c = id; *c; c++)
        if (!isalnum((unsigned char) *c) && *c != '_' && *c != '-')
            return false;
    return true;
}

/* A bounded id from the bus (NULL or "" = unknown). */
static bool
agent_field(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= size)
        return false;
    memcpy(dst, src ? src : "", n + 1);
    return true;
}

lc_status_t
md_call_create_outbound(md_worker_t *w, const md_call_dial_t *dial, md_call_t **out)
{
    if (out)
        *out = NULL;
    if (dial->to == NULL || dial->to[0] == '\0' || strlen(dial->to) > 256)
        return LC_ERR_INVALID;
    md_call_agent_t agent = {.agent_version = dial->agent_version,
                             .agent_json = (char *) dial->agent_json,
                             .variables = dial->variables};
    if (!agent_field(agent.org_id, sizeof(agent.org_id), dial->org_id) ||
        !agent_field(agent.agent_id, sizeof(agent.agent_id), dial->agent_id) ||
        !agent_field(agent.number_id, sizeof(agent.number_id), dial->number_id) ||
        (dial->agent_json && strlen(dial->agent_json) > MD_CALL_AGENT_JSON_MAX))
        return LC_ERR_INVALID;
    /* the id becomes a subject token (voxi.call.<id>.ctl) and a file name (recordings) */
    if (dial->call_id && dial->call_id[0] && !md_call_id_ok(dial->call_id))
        return LC_ERR_INVALID;
    if (agent.agent_json && agent.agent_json[0] == '\0')
        agent.agent_json = NULL;
    char *target = NULL;
    osip_uri_t *hop = NULL;
    LC_TRY(route(w, dial, &target, &hop));
    int port = hop->port ? atoi(hop->port) : 5060;
    if (port <= 0 || port > 65535)
        port = 5060;
    osip_uri_param_t *tp = NULL;
    bool tcp = osip_uri_param_get_byname(&hop->url_params, "transport", &tp) == 0 && tp &&
               tp->gvalue && strcasecmp(tp->gvalue, "tcp") == 0;
    char host[256];
    snprintf(host, sizeof(host), "%s", hop->host);
    osip_uri_free(hop);
    struct sockaddr_storage literal;
    bool is_literal = md_sip_addr_from_ip(host, port, &literal);
    md_call_t *call = NULL;
    lc_status_t st = md_call_alloc(w, false, dial->call_id, is_literal ? host : NULL, &call);
    if (st != LC_OK) {
        free(target);
        return st;
    }
    call->target_uri = target;
    md_call_agent_copy(&call->agent, &agent);
    call->from_user = lc_strdup(dial->from_user && dial->from_user[0] ? dial->from_user : "voxi");
    const char *user = dial->auth_user && dial->auth_user[0] ? dial->auth_user : w->cfg->trunk_user;
    const char *pass =
        dial->auth_user && dial->auth_user[0] ? dial->auth_password : w->cfg->trunk_password;
    call->auth_user = user ? lc_strdup(user) : NULL;
    call->auth_password = pass ? lc_strdup(pass) : NULL;
    call->dial_timeout_ms = dial->timeout_ms > 0 ? dial->timeout_ms : w->cfg->dial_timeout_ms;
    char token[40];
    md_sip_random_token("", token, sizeof(token));
    char cid[128];
    snprintf(cid, sizeof(cid), "%s@%s", token, w->public_addr);
    call->sip_call_id = lc_strdup(cid);
    call->peer.proto = tcp ? MD_SIP_TCP : MD_SIP_UDP;
    snprintf(call->from, sizeof(call->from), "sip:%s@%s", call->from_user, w->public_addr);
    snprintf(call->to, sizeof(call->to), "%s", target);
    CALL_CTX(call);
    LC_INFO("call", "outbound call to %s via %s:%d%s", target, host, port, tcp ? " (tcp)" : "");
    md_call_register(call);
    if (is_literal) {
        call->peer.addr = literal;
        start(call);
    } else {
        /* resolve first; the port is kept in the address until then */
        md_sip_addr_from_ip("0.0.0.0", port, &call->peer.addr);
        call->resolve.data = call;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
        if (uv_getaddrinfo(w->loop, &call->resolve, on_resolved, host, NULL, &hints) == 0)
            call->resolving = true;
        else
            md_call_end(call, "unreachable", 503);
    }
    CALL_CTX_END();
    if (out)
        *out = call;
    return LC_OK;
}
