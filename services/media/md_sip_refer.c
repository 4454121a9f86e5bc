/*
 * md_sip_refer: cold transfer with REFER (RFC 3515). We send REFER with Refer-To inside the
 * call's dialog; the peer answers 202 and reports the new call's progress in NOTIFYs with a
 * message/sipfrag body (section 2.4.5) under the implicit "refer" subscription. A final 2xx
 * means the transferee is connected: call.transferred (outcome "completed") and we BYE;
 * a final failure leaves the call as it was (call.transferred, outcome "failed").
 *
 * Threads: the loop thread only.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "md_call_internal.h"
#include "md_sip_ua.h"

static void
transfer_done(md_call_t *call, bool ok, int code)
{
    call->transfer_pending = false;
    md_call_publish(call, "call.transferred",
                    json_pack("{s:s, s:s, s:i}", "target", call->transfer_target, "outcome",
                              ok ? "completed" : "failed", "sip_code", code));
    LC_INFO("call", "transfer to %s %s (%d)", call->transfer_target, ok ? "completed" : "failed",
            code);
    if (ok)
        md_call_hangup(call, "transferred");
}

static void
on_refer_response(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *resp, int code)
{
    (void) txn;
    (void) resp;
    md_call_t *call = arg;
    if (code < 200 || call->state == CS_ENDED)
        return;
    CALL_CTX(call);
    call->refer_txn = NULL;
    /* 202 Accepted (or 200): the NOTIFYs tell the rest (section 2.4.2) */
    if (code >= 300 && call->transfer_pending)
        transfer_done(call, false, code);
    CALL_CTX_END();
}

lc_status_t
md_call_transfer(md_call_t *call, const char *target)
{
    if (call->state != CS_ACTIVE || call->transfer_pending)
        return LC_ERR_CONFLICT;
    osip_uri_t *u = NULL;
    osip_uri_init(&u);
    bool ok = target && osip_uri_parse(u, target) == 0 && u->scheme &&
              (strcasecmp(u->scheme, "sip") == 0 || strcasecmp(u->scheme, "sips") == 0 ||
               strcasecmp(u->scheme, "tel") == 0);
    osip_uri_free(u);
    if (!ok)
        return LC_ERR_INVALID;
    char contact[160], hdr[1100];
    md_sip_ua_contact(call->w->ua, call->peer.proto, contact, sizeof(contact));
    osip_message_t *refer = md_sip_dialog_request(call->dlg, "REFER", contact, 0);
    if (refer == NULL)
        return LC_ERR_INTERNAL;
    snprintf(hdr, sizeof(hdr), "<%s>", target);
    osip_message_set_header(refer, "Refer-To", hdr);
    osip_message_set_header(refer, "Referred-By", contact);
    md_sip_peer_t hop;
    md_sip_dialog_next_hop(call->dlg, &hop);
    LC_TRY(md_sip_txn_client_start(call->w->txns, refer, &hop, on_refer_response, call,
                                   &call->refer_txn));
    free(call->transfer_target);
    call->transfer_target = lc_strdup(target);
    call->transfer_pending = true;
    LC_INFO("call", "transferring to %s (REFER)", target);
    return LC_OK;
}

/* The status code of a message/sipfrag body ("SIP/2.0 200 OK"), 0 when there is none. */
static int
sipfrag_code(const md_sip_msg_t *req)
{
    if (req->body == NULL || req->body_len < 12 || strncmp(req->body, "SIP/2.0 ", 8) != 0)
        return 0;
    const char *p = req->body + 8;
    if (!isdigit((unsigned char) p[0]) || !isdigit((unsigned char) p[1]) ||
        !isdigit((unsigned char) p[2]))
        return 0;
    return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

void
md_call_refer_on_notify(md_call_t *call, md_sip_txn_t *txn, const md_sip_msg_t *req)
{
    const char *event = md_sip_msg_header(req, "event", 0);
    if (!call->transfer_pending || event == NULL || strncasecmp(event, "refer", 5) != 0) {
        md_sip_txn_respond_code(txn, 481, "Subscription Does Not Exist", NULL);
        return;
    }
    int code = sipfrag_code(req);
    if (strcmp(req->content_type, "message/sipfrag") != 0 || code == 0) {
        md_sip_txn_respond_code(txn, 400, "Bad Sipfrag", NULL);
        return;
    }
    md_sip_txn_respond_code(txn, 200, NULL, NULL);
    LC_DEBUG("call", "transfer progress: %d", code);
    if (code >= 200)
        transfer_done(call, code < 300, code);
}
