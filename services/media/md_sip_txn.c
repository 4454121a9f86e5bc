#include "md_sip_txn.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "md_map.h"

typedef enum {
    ST_TRYING = 0, /* server/client non-INVITE before a provisional response */
    ST_CALLING,    /* client INVITE before any response */
    ST_PROCEEDING,
    ST_ACCEPTED, /* RFC 6026: after a 2xx to/for an INVITE */
    ST_COMPLETED,
    ST_CONFIRMED,
    ST_TERMINATED,
} txn_state_t;

struct md_sip_txn {
    md_sip_txn_layer_t *layer;
    bool server;
    bool invite;
    txn_state_t state;
    char *key;
    md_sip_msg_t *request; /* server: the request received; client: the request sent */
    md_sip_peer_t peer;
    /* server: the last response, serialised, for retransmission */
    char *last_resp;
    size_t last_resp_len;
    int last_code;
    /* client: the request (and for INVITE the ACK), serialised */
    char *req_buf;
    size_t req_len;
    char *ack_buf;
    size_t ack_len;
    int64_t retrans_interval_ms;
    uv_timer_t retrans_timer;
    uv_timer_t life_timer;
    int open_timers;
    bool acked;
    bool got_provisional;
    bool cancel_requested;
    bool cancel_sent;
    md_sip_client_cb cb;
    void *cb_arg;
    md_sip_txn_owner_cb owner_cb;
    void *owner_arg;
};

struct md_sip_txn_layer {
    uv_loop_t *loop;
    md_sip_transport_t *transport;
    md_sip_tu_t tu;
    md_map_t *txns;
    char via_host[INET6_ADDRSTRLEN + 8];
    int via_port;
    int64_t t1, t2, t4;
    size_t live; /* transactions not yet freed */
    bool closing;
    void (*done)(void *);
    void *done_arg;
    lc_metric_t *m_unparseable, *m_invalid, *m_retrans_in, *m_retrans_out, *m_timeouts, *m_active,
        *m_stray;
};

/* ---- helpers ---- */

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt_alloc(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = lc_malloc((size_t) n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t) n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* the layer a transaction belongs to (timer values live there) */
#define L(txn) ((txn)->layer)

static bool
is_reliable(const md_sip_peer_t *p)
{
    return p->proto == MD_SIP_TCP;
}

/* RFC 3261 section 17.2.3 (and its RFC 2543 fallback, simplified to the fields that stay
 * the same between an INVITE and its ACK). */
static char *
server_key(const md_sip_msg_t *m, const char *method)
{
    osip_via_t *via = osip_list_get(&m->osip->vias, 0);
    const char *host = via && via->host ? via->host : "";
    const char *port = via && via->port ? via->port : "";
    char *key;
    /* Call-ID and CSeq number on top of the RFC 3261 key: a retransmission, its ACK and
     * its CANCEL share them, and two requests that reuse a branch (RFC 4475's messages all
     * do) stay apart */
    if (m->branch && strncmp(m->branch, "z9hG4bK", 7) == 0)
        key = fmt_alloc("s|%s|%s:%s|%s|%s|%u", m->branch, host, port, method,
                        m->call_id ? m->call_id : "", m->cseq);
    else
        key = fmt_alloc("s2543|%s|%u|%s|%s:%s|%s", m->call_id ? m->call_id : "", m->cseq,
                        m->from_tag ? m->from_tag : "", host, port, method);
    for (char *c = key; *c; c++)
        *c = (char) tolower((unsigned char) *c);
    return key;
}

/* RFC 3261 section 17.1.3: branch of the top Via plus the CSeq method. */
static char *
client_key(const char *branch, const char *method)
{
    return fmt_alloc("c|%s|%s", branch ? branch : "", method ? method : "");
}

static lc_status_t
send_bytes(md_sip_txn_layer_t *layer, md_sip_peer_t *to, const char *buf, size_t len)
{
    return md_sip_transport_send(layer->transport, to, buf, len);
}

static lc_status_t
send_msg(md_sip_txn_layer_t *layer, md_sip_peer_t *to, osip_message_t *m, char **keep,
         size_t *keep_len)
{
    char *buf = NULL;
    size_t len = 0;
    lc_status_t st = md_sip_serialize(m, &buf, &len);
    if (st != LC_OK)
        return st;
    st = send_bytes(layer, to, buf, len);
    if (keep) {
        free(*keep);
        *keep = buf;
        *keep_len = len;
    } else {
        free(buf);
    }
    return st;
}

void
md_sip_txn_add_via(md_sip_txn_layer_t *layer, osip_message_t *req, md_sip_proto_t proto)
{
    char branch[40];
    md_sip_random_token("z9hG4bK", branch, sizeof(branch));
    char via[256];
    snprintf(via, sizeof(via), "SIP/2.0/%s %s:%d;rport;branch=%s",
             proto == MD_SIP_TCP ? "TCP" : "UDP", layer->via_host, layer->via_port, branch);
    osip_message_set_via(req, via);
}

/* ---- life cycle of one transaction ---- */

static void
timer_closed(uv_handle_t *h)
{
    md_sip_txn_t *txn = h->data;
    if (--txn->open_timers > 0)
        return;
    md_sip_txn_layer_t *layer = txn->layer;
    md_sip_msg_destroy(txn->request);
    free(txn->key);
    free(txn->last_resp);
    free(txn->req_buf);
    free(txn->ack_buf);
    free(txn);
    layer->live--;
    lc_metric_set(layer->m_active, (double) layer->live);
    if (layer->closing && layer->live == 0 && layer->done) {
        void (*done)(void *) = layer->done;
        layer->done = NULL;
        done(layer->done_arg);
    }
}

static void
txn_terminate(md_sip_txn_t *txn)
{
    if (txn->state == ST_TERMINATED)
        return;
    txn->state = ST_TERMINATED;
    if (md_map_get(txn->layer->txns, txn->key) == txn)
        md_map_remove(txn->layer->txns, txn->key);
    md_sip_txn_owner_cb cb = txn->owner_cb;
    txn->owner_cb = NULL;
    txn->cb = NULL;
    if (cb)
        cb(txn->owner_arg, txn, MD_TXN_EV_TERMINATED);
    uv_close((uv_handle_t *) &txn->retrans_timer, timer_closed);
    uv_close((uv_handle_t *) &txn->life_timer, timer_closed);
}

static void on_life_timer(uv_timer_t *t);

/* Ends the transaction on a later loop turn (callers may still hold the pointer now). */
static void
txn_end_after(md_sip_txn_t *txn, int64_t ms)
{
    uv_timer_stop(&txn->retrans_timer);
    uv_timer_start(&txn->life_timer, on_life_timer, (uint64_t) ms, 0);
}

static md_sip_txn_t *
txn_new(md_sip_txn_layer_t *layer, bool server, bool invite, char *key, md_sip_msg_t *request,
        const md_sip_peer_t *peer)
{
    md_sip_txn_t *txn = LC_NEW(md_sip_txn_t);
    txn->layer = layer;
    txn->server = server;
    txn->invite = invite;
    txn->key = key;
    txn->request = request;
    txn->peer = *peer;
    uv_timer_init(layer->loop, &txn->retrans_timer);
    uv_timer_init(layer->loop, &txn->life_timer);
    uv_unref((uv_handle_t *) &txn->retrans_timer);
    uv_unref((uv_handle_t *) &txn->life_timer);
    txn->retrans_timer.data = txn;
    txn->life_timer.data = txn;
    txn->open_timers = 2;
    md_map_put(layer->txns, key, txn);
    layer->live++;
    lc_metric_set(layer->m_active, (double) layer->live);
    return txn;
}

static void
client_report(md_sip_txn_t *txn, const md_sip_msg_t *resp, int code)
{
    if (txn->cb)
        txn->cb(txn->cb_arg, txn, resp, code);
}

static void
on_life_timer(uv_timer_t *t)
{
    md_sip_txn_t *txn = t->data;
    md_sip_txn_layer_t *layer = txn->layer;
    if (txn->server && txn->invite && txn->state == ST_ACCEPTED && !txn->acked) {
        /* RFC 3261 section 13.3.1.4: no ACK for the 2xx within 64*T1 */
        lc_metric_inc(layer->m_timeouts);
        if (txn->owner_cb)
            txn->owner_cb(txn->owner_arg, txn, MD_TXN_EV_ACK_TIMEOUT);
    } else if (!txn->server && (txn->state == ST_CALLING || txn->state == ST_TRYING ||
                                txn->state == ST_PROCEEDING)) {
        /* timer B / F: section 8.1.3.1 treats it as a 408 */
        lc_metric_inc(layer->m_timeouts);
        client_report(txn, NULL, 408);
    }
    txn_terminate(txn);
}

static void
on_retrans_timer(uv_timer_t *t)
{
    md_sip_txn_t *txn = t->data;
    md_sip_txn_layer_t *layer = txn->layer;
    int64_t cap = L(txn)->t2;
    if (txn->server) {
        /* timer G (Completed) or the 2xx retransmission (Accepted): T1 doubling to T2 */
        if (txn->last_resp == NULL)
            return;
        send_bytes(layer, &txn->peer, txn->last_resp, txn->last_resp_len);
    } else {
        /* timer A (INVITE: doubles without a cap until B) or E (up to T2) */
        if (txn->invite)
            cap = INT64_MAX / 4;
        else if (txn->state == ST_PROCEEDING)
            txn->retrans_interval_ms = L(txn)->t2;
        send_bytes(layer, &txn->peer, txn->req_buf, txn->req_len);
    }
    lc_metric_inc(layer->m_retrans_out);
    txn->retrans_interval_ms *= 2;
    if (txn->retrans_interval_ms > cap)
        txn->retrans_interval_ms = cap;
    uv_timer_start(&txn->retrans_timer, on_retrans_timer, (uint64_t) txn->retrans_interval_ms, 0);
}

static void
start_retrans(md_sip_txn_t *txn)
{
    if (is_reliable(&txn->peer))
        return;
    txn->retrans_interval_ms = L(txn)->t1;
    uv_timer_start(&txn->retrans_timer, on_retrans_timer, L(txn)->t1, 0);
}

/* ---- server side ---- */

const md_sip_msg_t *
md_sip_txn_request(const md_sip_txn_t *txn)
{
    return txn->request;
}

const md_sip_peer_t *
md_sip_txn_peer(const md_sip_txn_t *txn)
{
    return &txn->peer;
}

int
md_sip_txn_last_code(const md_sip_txn_t *txn)
{
    return txn->last_code;
}

void
md_sip_txn_set_owner(md_sip_txn_t *txn, md_sip_txn_owner_cb cb, void *arg)
{
    txn->owner_cb = cb;
    txn->owner_arg = arg;
}

lc_status_t
md_sip_txn_respond(md_sip_txn_t *txn, osip_message_t *resp)
{
    int code = osip_message_get_status_code(resp);
    if (!txn->server || txn->state == ST_TERMINATED || txn->last_code >= 200 ||
        txn->state == ST_COMPLETED || txn->state == ST_ACCEPTED) {
        osip_message_free(resp);
        return LC_ERR_CONFLICT;
    }
    md_sip_txn_layer_t *layer = txn->layer;
    lc_status_t st = send_msg(layer, &txn->peer, resp, &txn->last_resp, &txn->last_resp_len);
    osip_message_free(resp);
    txn->last_code = code;
    if (code < 200) {
        txn->state = ST_PROCEEDING;
        return st;
    }
    if (txn->invite && code < 300) {
        txn->state = ST_ACCEPTED; /* RFC 6026 section 7.1 */
        txn->retrans_interval_ms = L(txn)->t1;
        if (!is_reliable(&txn->peer))
            uv_timer_start(&txn->retrans_timer, on_retrans_timer, L(txn)->t1, 0);
        uv_timer_start(&txn->life_timer, on_life_timer, 64 * L(txn)->t1, 0); /* timer L */
    } else if (txn->invite) {
        txn->state = ST_COMPLETED;
        start_retrans(txn);                                                  /* timer G */
        uv_timer_start(&txn->life_timer, on_life_timer, 64 * L(txn)->t1, 0); /* timer H */
    } else {
        txn->state = ST_COMPLETED;
        txn_end_after(txn, is_reliable(&txn->peer) ? 0 : 64 * L(txn)->t1); /* timer J */
    }
    return st;
}

lc_status_t
md_sip_txn_respond_code(md_sip_txn_t *txn, int code, const char *reason, const char *to_tag)
{
    return md_sip_txn_respond(txn, md_sip_response_create(txn->request, code, reason, to_tag));
}

void
md_sip_txn_ack_received(md_sip_txn_t *txn)
{
    if (txn == NULL || !txn->server || txn->state != ST_ACCEPTED)
        return;
    txn->acked = true;
    uv_timer_stop(&txn->retrans_timer);
}

md_sip_txn_t *
md_sip_txn_find_invite(md_sip_txn_layer_t *layer, const md_sip_msg_t *cancel,
                       const md_sip_peer_t *from)
{
    (void) from;
    char *key = server_key(cancel, "invite");
    md_sip_txn_t *txn = md_map_get(layer->txns, key);
    free(key);
    return txn && txn->server && txn->invite ? txn : NULL;
}

static void
stateless_reject(md_sip_txn_layer_t *layer, const md_sip_msg_t *msg, const md_sip_peer_t *from,
                 const md_sip_reject_t *rej)
{
    char tag[32];
    md_sip_random_token("", tag, sizeof(tag));
    osip_message_t *resp = md_sip_response_create(msg, rej->code, rej->reason, tag);
    md_sip_peer_t to = *from;
    send_msg(layer, &to, resp, NULL, NULL);
    osip_message_free(resp);
}

static void
handle_request(md_sip_txn_layer_t *layer, md_sip_msg_t *msg, const md_sip_peer_t *from)
{
    bool ack = md_sip_method_is(msg, "ACK");
    char *key = server_key(msg, ack ? "INVITE" : msg->method);
    md_sip_txn_t *txn = md_map_get(layer->txns, key);
    if (txn) {
        free(key);
        if (ack) {
            if (txn->invite && txn->state == ST_COMPLETED) {
                /* section 17.2.1: Confirmed, timer I */
                txn->state = ST_CONFIRMED;
                txn_end_after(txn, is_reliable(&txn->peer) ? 0 : L(txn)->t4);
            } else if (txn->invite && txn->state == ST_ACCEPTED) {
                /* an ACK for the 2xx matched only through the RFC 2543 key: TU's */
                layer->tu.on_request(layer->tu.arg, NULL, msg, from);
            }
        } else {
            lc_metric_inc(layer->m_retrans_in);
            if (txn->last_resp)
                send_bytes(layer, &txn->peer, txn->last_resp, txn->last_resp_len);
        }
        md_sip_msg_destroy(msg);
        return;
    }
    if (ack) {
        free(key);
        layer->tu.on_request(layer->tu.arg, NULL, msg, from);
        md_sip_msg_destroy(msg);
        return;
    }
    if (layer->closing) {
        free(key);
        md_sip_reject_t rej = {503, "Service Unavailable"};
        stateless_reject(layer, msg, from, &rej);
        md_sip_msg_destroy(msg);
        return;
    }
    bool invite = md_sip_method_is(msg, "INVITE");
    txn = txn_new(layer, true, invite, key, msg, from);
    txn->state = invite ? ST_PROCEEDING : ST_TRYING;
    if (invite) /* section 17.2.1: quench retransmissions at once */
        md_sip_txn_respond_code(txn, 100, NULL, NULL);
    layer->tu.on_request(layer->tu.arg, txn, msg, from);
}

/* ---- client side ---- */

const md_sip_msg_t *
md_sip_txn_client_request(const md_sip_txn_t *txn)
{
    return txn->request;
}

void
md_sip_txn_detach(md_sip_txn_t *txn)
{
    if (txn == NULL)
        return;
    txn->cb = NULL;
    txn->owner_cb = NULL;
}

void
md_sip_txn_client_rebind(md_sip_txn_t *txn, md_sip_client_cb cb, void *arg)
{
    if (txn == NULL || txn->server)
        return;
    txn->cb = cb;
    txn->cb_arg = arg;
}

lc_status_t
md_sip_txn_client_start(md_sip_txn_layer_t *layer, osip_message_t *req, const md_sip_peer_t *to,
                        md_sip_client_cb cb, void *arg, md_sip_txn_t **out)
{
    if (out)
        *out = NULL;
    if (layer->closing) {
        osip_message_free(req);
        return LC_ERR_UNAVAILABLE;
    }
    if (osip_list_size(&req->vias) == 0)
        md_sip_txn_add_via(layer, req, to->proto);
    md_sip_msg_t *msg = NULL;
    md_sip_msg_wrap(req, &msg);
    char *key = client_key(msg->branch, msg->cseq_method);
    if (md_map_get(layer->txns, key) != NULL) {
        free(key);
        md_sip_msg_destroy(msg);
        return LC_ERR_CONFLICT;
    }
    bool invite = md_sip_method_is(msg, "INVITE");
    md_sip_txn_t *txn = txn_new(layer, false, invite, key, msg, to);
    txn->state = invite ? ST_CALLING : ST_TRYING;
    txn->cb = cb;
    txn->cb_arg = arg;
    char *buf = NULL;
    size_t len = 0;
    lc_status_t st = md_sip_serialize(req, &buf, &len);
    if (st == LC_OK) {
        txn->req_buf = buf;
        txn->req_len = len;
        st = send_bytes(layer, &txn->peer, buf, len);
    }
    if (st != LC_OK) {
        txn->cb = NULL;
        txn_terminate(txn);
        return st;
    }
    start_retrans(txn);                                                  /* timer A / E */
    uv_timer_start(&txn->life_timer, on_life_timer, 64 * L(txn)->t1, 0); /* timer B / F */
    if (out)
        *out = txn;
    return LC_OK;
}

/* Copies the headers a CANCEL or a non-2xx ACK shares with its INVITE (sections 9.1 and
 * 17.1.1.3): Call-ID, From, CSeq number, the top Via, Route. */
static osip_message_t *
derived_request(const md_sip_msg_t *invite, const char *method, const osip_to_t *to)
{
    char *uri = NULL;
    if (osip_uri_to_str(invite->osip->req_uri, &uri) != 0)
        return NULL;
    osip_message_t *m = md_sip_request_create(method, uri);
    free(uri);
    if (m == NULL)
        return NULL;
    const osip_message_t *q = invite->osip;
    osip_via_t *via = osip_list_get(&q->vias, 0), *via_copy = NULL;
    if (via && osip_via_clone(via, &via_copy) == 0)
        osip_list_add(&m->vias, via_copy, 0);
    osip_from_clone(q->from, &m->from);
    osip_to_clone(to, &m->to);
    osip_call_id_clone(q->call_id, &m->call_id);
    osip_cseq_clone(q->cseq, &m->cseq);
    osip_free(m->cseq->method);
    m->cseq->method = osip_strdup(method);
    osip_list_clone(&q->routes, &m->routes, (int (*)(void *, void **)) & osip_route_clone);
    osip_message_set_header(m, "Max-Forwards", "70");
    return m;
}

static void
send_cancel(md_sip_txn_t *txn)
{
    txn->cancel_sent = true;
    osip_message_t *c = derived_request(txn->request, "CANCEL", txn->request->osip->to);
    if (c == NULL)
        return;
    md_sip_txn_client_start(txn->layer, c, &txn->peer, NULL, NULL, NULL);
}

void
md_sip_txn_cancel(md_sip_txn_t *txn)
{
    if (txn == NULL || txn->server || !txn->invite || txn->cancel_requested)
        return;
    txn->cancel_requested = true;
    /* section 9.1: not before a provisional response, and not after a final one */
    if (txn->state == ST_PROCEEDING && txn->got_provisional)
        send_cancel(txn);
}

static void
client_invite_response(md_sip_txn_t *txn, const md_sip_msg_t *resp)
{
    md_sip_txn_layer_t *layer = txn->layer;
    int code = resp->status_code;
    if (code < 200) {
        if (txn->state == ST_CALLING || txn->state == ST_PROCEEDING) {
            txn->state = ST_PROCEEDING;
            /* section 17.1.1.2: no retransmissions and no timer B once in Proceeding; the
             * TU decides how long it may ring (and CANCELs) */
            uv_timer_stop(&txn->retrans_timer);
            uv_timer_stop(&txn->life_timer);
            txn->got_provisional = true;
            if (txn->cancel_requested && !txn->cancel_sent)
                send_cancel(txn);
            client_report(txn, resp, code);
        }
        return;
    }
    if (code < 300) {
        if (txn->state == ST_CALLING || txn->state == ST_PROCEEDING) {
            txn->state = ST_ACCEPTED; /* RFC 6026: timer M keeps absorbing 2xx for 64*T1 */
            txn_end_after(txn, 64 * L(txn)->t1);
        }
        if (txn->state == ST_ACCEPTED)
            client_report(txn, resp, code);
        return;
    }
    if (txn->state == ST_COMPLETED) {
        if (txn->ack_buf) /* a retransmitted final response: ACK again */
            send_bytes(layer, &txn->peer, txn->ack_buf, txn->ack_len);
        return;
    }
    if (txn->state != ST_CALLING && txn->state != ST_PROCEEDING)
        return;
    txn->state = ST_COMPLETED;
    osip_message_t *ack = derived_request(txn->request, "ACK", resp->osip->to);
    if (ack) {
        send_msg(layer, &txn->peer, ack, &txn->ack_buf, &txn->ack_len);
        osip_message_free(ack);
    }
    txn_end_after(txn, is_reliable(&txn->peer) ? 0 : 64 * L(txn)->t1); /* timer D (>= 32 s) */
    client_report(txn, resp, code);
    txn->cb = NULL;
}

static void
handle_response(md_sip_txn_layer_t *layer, md_sip_msg_t *msg, const md_sip_peer_t *from)
{
    char *key = client_key(msg->branch, msg->cseq_method);
    md_sip_txn_t *txn = md_map_get(layer->txns, key);
    free(key);
    if (txn == NULL || txn->server) {
        lc_metric_inc(layer->m_stray);
        if (layer->tu.on_stray_response)
            layer->tu.on_stray_response(layer->tu.arg, msg, from);
        return;
    }
    if (txn->invite) {
        client_invite_response(txn, msg);
        return;
    }
    int code = msg->status_code;
    if (code < 200) {
        if (txn->state == ST_TRYING || txn->state == ST_PROCEEDING) {
            txn->state = ST_PROCEEDING;
            client_report(txn, msg, code);
        }
        return;
    }
    if (txn->state != ST_TRYING && txn->state != ST_PROCEEDING)
        return;
    txn->state = ST_COMPLETED;
    txn_end_after(txn, is_reliable(&txn->peer) ? 0 : L(txn)->t4); /* timer K */
    client_report(txn, msg, code);
    txn->cb = NULL;
}

/* ---- the layer ---- */

lc_status_t
md_sip_txn_layer_create(uv_loop_t *loop, const md_sip_txn_opts_t *opts, const md_sip_tu_t *tu,
                        md_sip_txn_layer_t **out)
{
    md_sip_txn_layer_t *layer = LC_NEW(md_sip_txn_layer_t);
    layer->loop = loop;
    layer->transport = opts->transport;
    layer->tu = *tu;
    layer->txns = md_map_create();
    if (strchr(opts->via_host, ':') && opts->via_host[0] != '[')
        snprintf(layer->via_host, sizeof(layer->via_host), "[%s]", opts->via_host);
    else
        snprintf(layer->via_host, sizeof(layer->via_host), "%s", opts->via_host);
    layer->via_port = opts->via_port;
    layer->t1 = opts->t1_ms > 0 ? opts->t1_ms : MD_SIP_T1_MS;
    layer->t2 = opts->t1_ms > 0 ? 8 * layer->t1 : MD_SIP_T2_MS;
    layer->t4 = opts->t1_ms > 0 ? 10 * layer->t1 : MD_SIP_T4_MS;
    lc_metrics_t *reg = opts->metrics;
    const char *dh = "SIP input dropped, by reason";
    layer->m_unparseable =
        lc_metrics_counter(reg, "voxi_media_sip_dropped_total", dh, "reason=\"unparseable\"");
    layer->m_invalid =
        lc_metrics_counter(reg, "voxi_media_sip_dropped_total", dh, "reason=\"invalid\"");
    layer->m_stray =
        lc_metrics_counter(reg, "voxi_media_sip_dropped_total", dh, "reason=\"no_transaction\"");
    const char *rh = "SIP retransmissions, received and sent";
    layer->m_retrans_in =
        lc_metrics_counter(reg, "voxi_media_sip_retransmissions_total", rh, "direction=\"in\"");
    layer->m_retrans_out =
        lc_metrics_counter(reg, "voxi_media_sip_retransmissions_total", rh, "direction=\"out\"");
    layer->m_timeouts = lc_metrics_counter(reg, "voxi_media_sip_transaction_timeouts_total",
                                           "transactions ended by timer B, F or L", NULL);
    layer->m_active =
        lc_metrics_gauge(reg, "voxi_media_sip_transactions", "SIP transactions in progress", NULL);
    *out = layer;
    return LC_OK;
}

void
md_sip_txn_layer_input(md_sip_txn_layer_t *layer, const md_sip_peer_t *from, const char *buf,
                       size_t len)
{
    md_sip_msg_t *msg = NULL;
    md_sip_reject_t rej;
    lc_status_t st = md_sip_msg_parse(buf, len, &msg, &rej);
    if (st == LC_ERR_INVALID || st == LC_ERR_TOO_LARGE) {
        lc_metric_inc(layer->m_unparseable);
        char p[80];
        md_sip_peer_format(from, p, sizeof(p));
        /* a request libosip2 cannot read still gets its 400 when we can tell where it goes */
        char resp[4096];
        int code = 0;
        size_t n = st == LC_ERR_INVALID
                       ? md_sip_fallback_response(buf, len, resp, sizeof(resp), &code)
                       : 0;
        if (n > 0) {
            md_sip_peer_t to = *from;
            md_sip_transport_send(layer->transport, &to, resp, n);
            LC_LOG_RL(LC_LOG_WARN, "sip", 2, "unparseable request (%zu bytes) from %s: %d", len, p,
                      code);
            return;
        }
        LC_LOG_RL(LC_LOG_WARN, "sip", 2, "dropped an unparseable message (%zu bytes) from %s", len,
                  p);
        return;
    }
    if (st != LC_OK) {
        lc_metric_inc(layer->m_invalid);
        char p[80];
        md_sip_peer_format(from, p, sizeof(p));
        LC_LOG_RL(LC_LOG_WARN, "sip", 2, "invalid %s %s from %s: %s",
                  msg->is_request ? "request" : "response", msg->method ? msg->method : "?", p,
                  rej.reason);
        if (msg->is_request && !md_sip_method_is(msg, "ACK"))
            stateless_reject(layer, msg, from, &rej);
        md_sip_msg_destroy(msg);
        return;
    }
    if (msg->is_request) {
        char ip[INET6_ADDRSTRLEN];
        int port;
        md_sip_peer_ip(from, ip, sizeof(ip), &port);
        /* RFC 3261 section 18.2.1 received, RFC 3581 section 4 rport */
        osip_message_fix_last_via_header(msg->osip, ip, port);
        handle_request(layer, msg, from);
        return;
    }
    handle_response(layer, msg, from);
    md_sip_msg_destroy(msg);
}

lc_status_t
md_sip_txn_send_stateless(md_sip_txn_layer_t *layer, osip_message_t *msg, md_sip_peer_t *to)
{
    lc_status_t st = send_msg(layer, to, msg, NULL, NULL);
    osip_message_free(msg);
    return st;
}

size_t
md_sip_txn_count(const md_sip_txn_layer_t *layer)
{
    return layer->live;
}

static void
collect_txn(const char *key, void *value, void *arg)
{
    (void) key;
    md_sip_txn_t ***cursor = arg;
    **cursor = value;
    (*cursor)++;
}

void
md_sip_txn_layer_close(md_sip_txn_layer_t *layer, void (*done)(void *), void *arg)
{
    layer->closing = true;
    layer->done = done;
    layer->done_arg = arg;
    size_t n = md_map_size(layer->txns);
    md_sip_txn_t **all = lc_calloc(n + 1, sizeof(*all));
    md_sip_txn_t **cursor = all;
    md_map_foreach(layer->txns, collect_txn, &cursor);
    for (size_t i = 0; i < n; i++)
        txn_terminate(all[i]);
    free(all);
    if (layer->live == 0 && layer->done) {
        layer->done = NULL;
        done(arg);
    }
}

void
md_sip_txn_layer_destroy(md_sip_txn_layer_t *layer)
{
    if (layer == NULL)
        return;
    md_map_destroy(layer->txns);
    free(layer);
}
