/*
 * md_call_internal: the call object as md_call.c (inbound, dialog requests), md_call_out.c
 * (outbound, UAC) and md_sip_refer.c (transfer) share it. Not for other modules: they use
 * md_call.h.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_CALL_INTERNAL_H
#define MD_CALL_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "md_call.h"
#include "md_playout.h"
#include "md_rtp_session.h"
#include "md_sdp.h"
#include "md_sip_dialog.h"
#include "md_srtp.h"
#include "md_wav.h"

typedef enum {
    CS_RINGING = 0, /* inbound: 180 sent, no final response; outbound: INVITE out, no 2xx */
    CS_ANSWERED,    /* inbound: 200 sent, waiting for the ACK */
    CS_ACTIVE,      /* confirmed */
    CS_ENDED,
} call_state_t;

struct md_call {
    md_worker_t *w;
    char id[48];
    char *sip_call_id;
    bool inbound;
    call_state_t state;
    md_sip_dialog_t *dlg;
    md_sip_peer_t peer; /* inbound: where the INVITE came from; outbound: the next hop */
    char local_tag[24];
    char from[256], to[256];
    md_call_agent_t agent; /* org, number, agent (md_call.h); set at creation, then constant */

    /* inbound */
    md_sip_txn_t *invite_txn; /* the initial INVITE (server) until it terminates */
    uint32_t invite_cseq;
    md_sip_txn_t *reinvite_txn; /* a re-INVITE answered with 200, waiting for its ACK */
    uint32_t reinvite_cseq;
    bool awaiting_answer_in_ack; /* our 200 carried the offer */

    /* outbound */
    md_sip_txn_t *out_invite; /* our INVITE's client transaction */
    char *target_uri;
    char *from_user;
    char *auth_user, *auth_password; /* secrets: never logged */
    int auth_attempts;
    char *ack_bytes; /* the ACK of the 2xx, sent again for each 2xx retransmission */
    size_t ack_len;
    int64_t dial_timeout_ms;
    bool cancelled;
    bool ringing_reported;
    uv_getaddrinfo_t resolve;
    bool resolving; /* the call is freed by the resolver's callback then */

    /* transfer (REFER, md_sip_refer.c) */
    md_sip_txn_t *refer_txn;
    char *transfer_target;
    bool transfer_pending;

    /* call control (voxi.call.<id>.ctl) */
    lc_nats_sub_t *ctl_sub;

    /* SDP and media */
    md_sdp_t *offer; /* the last offer the peer made (to write our answer against) */
    md_sdp_neg_t neg;
    bool have_neg;
    uint64_t sdp_sess_id, sdp_version;
    md_srtp_crypto_t local_crypto;
    char crypto_value[MD_SRTP_CRYPTO_VALUE_MAX];
    bool have_local_crypto;
    md_rtp_session_t *rtp;
    md_playout_stream_t *stream;
    struct md_agent *agent_rt; /* the agent runtime (md_agent.h) while media runs; NULL = echo */
    md_wav_t *recording;
    char recording_path[1100];
    int64_t media_start_ms;
    bool on_hold;

    uv_timer_t timer;
    const char *pending_hangup; /* set from the packet path; acted on from the timer */
    int64_t created_wall_ms, answered_wall_ms;
    int64_t answered_mono_ms;
};

#define CALL_CTX(call) lc_log_context_set(NULL, (call)->id)
#define CALL_CTX_END() lc_log_context_set(NULL, "")

/* A new call with its RTP ports and timer (not yet in the table). LC_ERR_FULL without
 * ports. id NULL = a new one. peer_ip: trusted for RTP latching. */
lc_status_t md_call_alloc(md_worker_t *w, bool inbound, const char *id, const char *peer_ip,
                          md_call_t **out);
/* Registers it (call table, metrics, control subscription) and publishes call.started. */
void md_call_register(md_call_t *call);

/* Deep copy of an agent (dst's old content is not freed). */
void md_call_agent_copy(md_call_agent_t *dst, const md_call_agent_t *src);
void md_call_uri_text(const osip_from_t *hdr, char *out, size_t size);
void md_call_add_contact(md_call_t *call, osip_message_t *m);
/* data: extra fields merged into the event's data (taken; may be NULL). */
void md_call_publish(md_call_t *call, const char *type, json_t *extra);
void md_call_local_sdp(md_call_t *call, md_sdp_dir_t dir, md_sdp_local_t *out);
lc_status_t md_call_apply_neg(md_call_t *call, const md_sdp_neg_t *neg);
void md_call_start_media(md_call_t *call);
void md_call_send_bye(md_call_t *call);
void md_call_respond(md_sip_txn_t *txn, int code, const char *reason, const char *tag);
/* Publishes call.ended / call.failed, releases media and transactions, leaves the table,
 * frees on the loop. */
void md_call_end(md_call_t *call, const char *reason, int sip_code);
void md_call_on_txn_event(void *arg, md_sip_txn_t *txn, md_sip_txn_event_t ev);
void md_call_on_dtmf(void *arg, char digit, int duration_ms, bool end, const char *source);
void md_call_on_timer(uv_timer_t *t);
void md_call_free_cb(uv_handle_t *h);

/* md_call_out.c: true when id may name a call (1..47 of [A-Za-z0-9_-]: a subject token and
 * a file name). */
bool md_call_id_ok(const char *id);
/* md_call_out.c: the call ends; its INVITE client transaction is let go. When it was never
 * answered, a 2xx that still arrives (it crossed our CANCEL) is ACKed and BYEd at once. */
void md_call_out_release_invite(md_call_t *call, bool answered);
/* md_call_out.c: the dial timer fired while ringing. */
void md_call_out_on_timeout(md_call_t *call);

/* md_sip_refer.c: a NOTIFY in this call's dialog (RFC 3515 section 2.4.4). */
void md_call_refer_on_notify(md_call_t *call, md_sip_txn_t *txn, const md_sip_msg_t *req);

#endif
