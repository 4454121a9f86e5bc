/*
 * md_call: one call: its dialog, its media, its state machine and its events.
 *
 * Inbound (UAS, RFC 3261 section 13.3): the INVITE arrives admitted by md_sip_ua;
 * md_call_create_inbound negotiates the offer (or prepares an offer when the INVITE has
 * none), binds the RTP ports, answers 180 Ringing and, after VOXI_MEDIA_ANSWER_DELAY_MS,
 * 200 OK with the SDP; the ACK (carrying the answer when the 200 held the offer) confirms
 * the call. With VOXI_MEDIA_EARLY_MEDIA and a ring time, 183 Session Progress carries the
 * answer instead of the 180 and the demo's prompt plays before the 200 (RFC 3960 gateway
 * model). A CANCEL that crosses our 200 gets its 200 and the call goes on (section 9.2).
 * The demo behaviour: the cached welcome prompt plays, then the caller's audio is echoed
 * until BYE.
 *
 * In the dialog: BYE ends the call; re-INVITE changes codec, address or direction (hold /
 * unhold, RFC 3264 section 8.4), also without SDP (offer in the 200, answer in the ACK);
 * INFO carries DTMF (application/dtmf-relay, application/dtmf); CANCEL before the answer
 * gets the INVITE a 487. The call ends itself on a missing ACK (64*T1), on RTP silence
 * (VOXI_MEDIA_RTP_TIMEOUT_MS, not while on hold) and on shutdown.
 *
 * Events: call.started, call.ringing, call.answered, call.dtmf; then exactly one of
 * call.ended (the call was answered) or call.failed (it never was), with the reason.
 *
 * Ownership: the call is owned by the UA's call table (md_sip_ua) from creation until it
 * ends; it frees itself on the loop once ended. Pointers to it are valid until then.
 * Threads: the loop thread only.
 */
#ifndef MD_CALL_H
#define MD_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "md_sdp.h"
#include "md_sip_msg.h"
#include "md_sip_transport.h"
#include "md_sip_txn.h"
#include "md_worker.h"

typedef struct md_call md_call_t;

/*
 * What the control plane says runs this call: for an inbound call the answer of
 * voxi.registry.numbers.resolve for the dialled number (md_route), for an outbound call the
 * DialRequest's fields. Set when the call is created and constant afterwards; strings empty
 * and pointers NULL when unknown (the echo demo, or a dial without an agent).
 * Thread: the call's loop (read-only after creation).
 */
#define MD_CALL_AGENT_JSON_MAX (256u * 1024u)

typedef struct {
    char org_id[72];    /* the tenant; "" = VOXI_MEDIA_DEFAULT_ORG_ID (the demo) */
    char number_id[72]; /* pn_... the number dialled (inbound) or placed from (outbound) */
    char agent_id[72];  /* agt_... */
    int32_t agent_version;
    char *agent_json;  /* the agent as GET /v1/agents/{id} returns it; NULL = no agent */
    json_t *variables; /* outbound: {{variables}} as a JSON object of strings; NULL = none */
} md_call_agent_t;

/* The call's agent and tenant (borrowed; valid while the call is). */
const md_call_agent_t *md_call_agent(const md_call_t *call);

/*
 * A new inbound call for an INVITE md_sip_ua admitted (borrowed; the transaction keeps it).
 * offer: the parsed SDP offer or NULL when the INVITE has none. agent: what resolving the
 * dialled number gave (copied; NULL = the echo demo in the default org). On LC_OK the call answers
 * the INVITE itself from now on. Otherwise nothing was sent and the caller responds:
 * LC_ERR_NOT_FOUND -> 488 (no acceptable codec), LC_ERR_FULL -> 503 (no RTP ports).
 */
lc_status_t md_call_create_inbound(md_worker_t *w, md_sip_txn_t *invite_txn,
                                   const md_sip_msg_t *invite, const md_sip_peer_t *from,
                                   const md_sdp_t *offer, const md_call_agent_t *agent,
                                   md_call_t **out);

/* An outbound call (UAC): what voxi.media.dial asks for. Strings are copied. */
typedef struct {
    const char *to;        /* a SIP URI, or a user/number sent to the trunk */
    const char *from_user; /* caller id; NULL = "voxi" */
    const char *call_id;   /* the id to use (the registry's); NULL = a new one */
    int64_t timeout_ms;    /* ringing limit; 0 = VOXI_MEDIA_DIAL_TIMEOUT_MS */
    const char *trunk_uri; /* NULL = VOXI_MEDIA_TRUNK_URI */
    const char *auth_user; /* NULL = VOXI_MEDIA_TRUNK_USER (with its password) */
    const char *auth_password;
    /* the agent that runs the call (copied; strings may be NULL or ""; NULL variables = none;
     * variables: a JSON object of strings, borrowed) */
    const char *org_id, *agent_id, *agent_json, *number_id;
    int32_t agent_version;
    json_t *variables;
} md_call_dial_t;

/*
 * Places a call (RFC 3261 section 13.2): INVITE with our SDP offer to the trunk or URI,
 * digest answers to 401/407 (section 22.2, once per challenge), 1xx -> call.ringing,
 * 2xx -> ACK and call.answered, a failure -> call.failed; CANCEL when it rings past its
 * timeout. LC_ERR_INVALID: no usable target; LC_ERR_FULL: no RTP ports; LC_ERR_CONFLICT:
 * that call id is in use. On LC_OK *out (may be NULL) is the call, ringing.
 */
lc_status_t md_call_create_outbound(md_worker_t *w, const md_call_dial_t *dial, md_call_t **out);

/* Cold transfer (RFC 3515): REFER the peer to target (a SIP URI); call.transferred follows
 * with the outcome, and on success we hang up. LC_ERR_CONFLICT: not answered, or a transfer
 * is already running. */
lc_status_t md_call_transfer(md_call_t *call, const char *target);

/* Sends DTMF digits as RFC 4733 events (LC_ERR_UNAVAILABLE without telephone-event). */
lc_status_t md_call_send_dtmf(md_call_t *call, const char *digits);

/* Call control over NATS: subscribes voxi.call.<id>.ctl (voxi.v1.CallControlRequest:
 * hangup, transfer, dtmf) for the call's life (md_call_ctl.c). */
void md_call_ctl_attach(md_call_t *call);
void md_call_ctl_detach(md_call_t *call);

/* A request inside this call's dialog (after md_sip_ua matched Call-ID and tags). */
void md_call_on_request(md_call_t *call, md_sip_txn_t *txn, const md_sip_msg_t *req);
/* An ACK for this call (2xx ACKs are end-to-end: no transaction). */
void md_call_on_ack(md_call_t *call, const md_sip_msg_t *ack);
/* A CANCEL matched this call's INVITE (the CANCEL itself got its 200 already). */
void md_call_on_cancel(md_call_t *call);
/* True when msg (a request from the peer) belongs to this call's dialog. */
bool md_call_matches(const md_call_t *call, const md_sip_msg_t *msg);

/* A 2xx to our INVITE after its transaction ended: ACK it again (RFC 3261 13.2.2.4). */
void md_call_on_stray_2xx(md_call_t *call);

/* Ends the call from our side: BYE when answered, 480/487 to the INVITE before. */
void md_call_hangup(md_call_t *call, const char *reason);

const char *md_call_id(const md_call_t *call);
const char *md_call_sip_call_id(const md_call_t *call);
bool md_call_answered(const md_call_t *call);

#endif
