/*
 * md_call_ctl: call control over NATS. Each call subscribes `voxi.call.<call id>.ctl` for
 * its life, so a request reaches the worker that owns the call (ARCHITECTURE: messages).
 * voxi.v1.CallControlRequest in an Envelope: hangup (reason), transfer (target), dtmf
 * (digits); the reply is a CallControlReply or an error envelope.
 *
 * Threads: the loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_pb.h"
#include "md_call_internal.h"
#include "voxi/v1/media.pb-c.h"

static const char *
state_name(const md_call_t *call)
{
    switch (call->state) {
    case CS_RINGING:
        return "ringing";
    case CS_ANSWERED:
        return "answered";
    case CS_ACTIVE:
        return "active";
    default:
        return "ended";
    }
}

static void
on_ctl(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    md_call_t *call = arg;
    const char *reply_to = lc_nats_msg_reply(msg);
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__call_control_request__descriptor, &env, &body);
    const char *rid = env && env->request_id ? env->request_id : "";
    lc_log_context_set(rid, call->id);
    const char *what = "malformed request";
    if (st == LC_OK) {
        Voxi__V1__CallControlRequest *req = (Voxi__V1__CallControlRequest *) body;
        LC_INFO("ctl", "%s", req->action);
        if (strcmp(req->action, "hangup") == 0) {
            md_call_hangup(call, req->reason[0] ? req->reason : "api_hangup");
        } else if (strcmp(req->action, "transfer") == 0) {
            st = md_call_transfer(call, req->target);
            what = st == LC_ERR_CONFLICT ? "the call cannot be transferred now"
                                         : "transfer target is not a SIP URI";
        } else if (strcmp(req->action, "dtmf") == 0) {
            st = md_call_send_dtmf(call, req->digits);
            what = st == LC_ERR_UNAVAILABLE ? "no telephone-event on this call" : "bad digits";
        } else {
            st = LC_ERR_INVALID;
            what = "unknown action";
        }
    }
    if (reply_to && reply_to[0]) {
        uint8_t *out = NULL;
        size_t len = 0;
        if (st == LC_OK) {
            Voxi__V1__CallControlReply rep = VOXI__V1__CALL_CONTROL_REPLY__INIT;
            rep.call_id = call->id;
            rep.state = (char *) state_name(call);
            lc_pb_meta_t meta = {.request_id = rid};
            lc_pb_pack(&meta, &rep.base, &out, &len);
        } else {
            lc_pb_pack_error(rid, st, what, &out, &len);
        }
        lc_nats_respond(nc, reply_to, out, len);
        free(out);
    }
    lc_pb_free(env, body);
    lc_log_context_clear();
}

void
md_call_ctl_attach(md_call_t *call)
{
    char subject[96];
    snprintf(subject, sizeof(subject), "voxi.call.%s.ctl", call->id);
    if (lc_nats_subscribe(call->w->nats, subject, NULL, on_ctl, call, &call->ctl_sub) != LC_OK)
        LC_WARN("ctl", "cannot subscribe %s", subject);
}

void
md_call_ctl_detach(md_call_t *call)
{
    if (call->ctl_sub == NULL)
        return;
    lc_nats_unsubscribe(call->w->nats, call->ctl_sub);
    call->ctl_sub = NULL;
}

lc_status_t
md_call_send_dtmf(md_call_t *call, const char *digits)
{
    if (call->state != CS_ACTIVE || call->rtp == NULL)
        return LC_ERR_CONFLICT;
    if (digits == NULL || digits[0] == '\0')
        return LC_ERR_INVALID;
    for (const char *d = digits; *d; d++)
        LC_TRY(md_rtp_session_send_dtmf(call->rtp, *d, 160));
    return LC_OK;
}
