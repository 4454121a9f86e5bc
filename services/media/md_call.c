#include "md_call.h"
#include "md_call_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "md_agent.h"
#include "md_events.h"
#include "md_playout.h"
#include "md_prompt.h"
#include "md_rtp_session.h"
#include "md_sip_dialog.h"
#include "md_sip_ua.h"
#include "md_wav.h"

/* ---- small helpers ---- */

const char *
md_call_id(const md_call_t *call)
{
    return call->id;
}

const char *
md_call_sip_call_id(const md_call_t *call)
{
    return call->sip_call_id;
}

const md_call_agent_t *
md_call_agent(const md_call_t *call)
{
    return &call->agent;
}

void
md_call_agent_copy(md_call_agent_t *dst, const md_call_agent_t *src)
{
    *dst = *src;
    dst->agent_json = src->agent_json ? lc_strdup(src->agent_json) : NULL;
    dst->variables = src->variables ? json_deep_copy(src->variables) : NULL;
}

bool
md_call_answered(const md_call_t *call)
{
    return call->answered_wall_ms != 0;
}

bool
md_call_matches(const md_call_t *call, const md_sip_msg_t *msg)
{
    return call->dlg && md_sip_dialog_matches(call->dlg, msg);
}

void
md_call_uri_text(const osip_from_t *hdr, char *out, size_t size)
{
    char *s = NULL;
    out[0] = '\0';
    if (hdr && hdr->url && osip_uri_to_str(hdr->url, &s) == 0 && s) {
        snprintf(out, size, "%s", s);
        free(s);
    }
}

void
md_call_add_contact(md_call_t *call, osip_message_t *m)
{
    char contact[160];
    md_sip_ua_contact(call->w->ua, call->peer.proto, contact, sizeof(contact));
    osip_message_set_contact(m, contact);
}

void
md_call_publish(md_call_t *call, const char *type, json_t *extra)
{
    json_t *data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "call_id", call->id, "sip_call_id",
                             call->sip_call_id, "direction", call->inbound ? "inbound" : "outbound",
                             "from", call->from, "to", call->to, "worker_id", call->w->instance_id);
    if (data && call->agent.agent_id[0])
        json_object_set_new(data, "agent_id", json_string(call->agent.agent_id));
    if (data && call->agent.number_id[0])
        json_object_set_new(data, "number_id", json_string(call->agent.number_id));
    if (data && extra)
        json_object_update(data, extra);
    json_decref(extra);
    if (data == NULL)
        return;
    /* the resolved org: the registry stores calls per org */
    const char *org = call->agent.org_id[0]          ? call->agent.org_id
                      : call->w->cfg->default_org_id ? call->w->cfg->default_org_id
                                                     : "org_default";
    md_events_publish(call->w->events, org, type, data);
}

/* ---- SDP ---- */

void
md_call_local_sdp(md_call_t *call, md_sdp_dir_t dir, md_sdp_local_t *out)
{
    memset(out, 0, sizeof(*out));
    out->addr = call->w->public_addr;
    out->rtp_port = md_rtp_session_port(call->rtp);
    out->sess_id = call->sdp_sess_id;
    out->sess_version = call->sdp_version;
    out->dir = dir;
    out->crypto = call->have_local_crypto ? call->crypto_value : NULL;
}

/* Our key for an SRTP stream (RFC 4568 section 7.1.2: same tag and suite as
 * chosen). */
static void
prepare_crypto(md_call_t *call)
{
    if (!call->neg.srtp) {
        call->have_local_crypto = false;
        return;
    }
    if (!call->have_local_crypto || call->local_crypto.tag != call->neg.remote_crypto.tag ||
        call->local_crypto.suite != call->neg.remote_crypto.suite) {
        md_srtp_crypto_generate(&call->local_crypto, call->neg.remote_crypto.tag,
                                call->neg.remote_crypto.suite);
        md_srtp_crypto_format(&call->local_crypto, call->crypto_value, sizeof(call->crypto_value));
        call->have_local_crypto = true;
    }
}

lc_status_t
md_call_apply_neg(md_call_t *call, const md_sdp_neg_t *neg)
{
    call->neg = *neg;
    call->have_neg = true;
    prepare_crypto(call);
    lc_status_t st =
        md_rtp_session_apply(call->rtp, neg, call->have_local_crypto ? &call->local_crypto : NULL);
    if (st != LC_OK)
        return st;
    bool hold =
        neg->remote_hold || neg->local_dir == MD_SDP_INACTIVE || neg->local_dir == MD_SDP_SENDONLY;
    if (hold != call->on_hold)
        LC_INFO("call", "%s", hold ? "on hold" : "resumed");
    call->on_hold = hold;
    if (hold)
        call->media_start_ms = 0;
    else if (call->media_start_ms == 0 && call->stream)
        call->media_start_ms = lc_time_mono_ms();
    return LC_OK;
}

/* ---- transactions ---- */

void
md_call_on_txn_event(void *arg, md_sip_txn_t *txn, md_sip_txn_event_t ev)
{
    md_call_t *call = arg;
    CALL_CTX(call);
    if (ev == MD_TXN_EV_TERMINATED) {
        if (call->invite_txn == txn)
            call->invite_txn = NULL;
        if (call->reinvite_txn == txn)
            call->reinvite_txn = NULL;
        if (call->out_invite == txn)
            call->out_invite = NULL;
    } else if (ev == MD_TXN_EV_ACK_TIMEOUT) {
        /* RFC 3261 section 13.3.1.4: confirmed but no ACK: end the session with a
         * BYE */
        LC_WARN("call", "no ACK for our 200 within 64*T1: hanging up");
        if (call->reinvite_txn == txn)
            call->reinvite_txn = NULL;
        if (call->invite_txn == txn && call->state == CS_ANSWERED)
            call->state = CS_ACTIVE; /* the dialog exists: BYE it */
        md_call_hangup(call, "ack_timeout");
    }
    CALL_CTX_END();
}

void
md_call_respond(md_sip_txn_t *txn, int code, const char *reason, const char *tag)
{
    if (txn && md_sip_txn_last_code(txn) < 200)
        md_sip_txn_respond_code(txn, code, reason, tag);
}

void
md_call_send_bye(md_call_t *call)
{
    char contact[160];
    md_sip_ua_contact(call->w->ua, call->peer.proto, contact, sizeof(contact));
    osip_message_t *bye = md_sip_dialog_request(call->dlg, "BYE", contact, 0);
    if (bye == NULL) {
        LC_WARN("call", "cannot build a BYE (bad remote target)");
        return;
    }
    md_sip_peer_t hop;
    md_sip_dialog_next_hop(call->dlg, &hop);
    if (md_sip_txn_client_start(call->w->txns, bye, &hop, NULL, NULL, NULL) != LC_OK)
        LC_WARN("call", "BYE not sent");
}

/* ---- playout ---- */

static bool
io_pull(void *arg, int64_t now_ms, int16_t *pcm, size_t samples)
{
    md_call_t *call = arg;
    bool audio = md_rtp_session_pull(call->rtp, now_ms, pcm, samples);
    int64_t timeout = call->w->cfg->rtp_timeout_ms;
    if (timeout > 0 && call->state == CS_ACTIVE && !call->on_hold && call->media_start_ms > 0 &&
        call->pending_hangup == NULL) {
        int64_t last = md_rtp_session_last_rx_ms(call->rtp);
        if (last < call->media_start_ms)
            last = call->media_start_ms;
        if (now_ms - last > timeout) {
            /* not from inside the tick: the stream is in use */
            call->pending_hangup = "rtp_timeout";
            uv_timer_start(&call->timer, md_call_on_timer, 0, 0);
        }
    }
    return audio;
}

static void
io_push(void *arg, int64_t now_ms, const int16_t *caller, const int16_t *out, size_t samples,
        bool playing)
{
    md_call_t *call = arg;
    md_rtp_session_send(call->rtp, now_ms, out, samples);
    if (call->agent_rt)
        md_agent_on_frame(call->agent_rt, now_ms, caller, samples, playing);
}

/* Recording (VOXI_MEDIA_RECORDINGS_DIR): <dir>/<call id>.wav, the caller left,
 * us right; 8 kHz for a G.711 call (the wire audio, bit-exact), 16 kHz
 * otherwise. */
static void
start_recording(md_call_t *call)
{
    const char *dir = call->w->cfg->recordings_dir;
    if (dir == NULL || dir[0] == '\0' || call->recording)
        return;
    snprintf(call->recording_path, sizeof(call->recording_path), "%s/%s.wav", dir, call->id);
    bool g711 = call->neg.codec == MD_CODEC_PCMU || call->neg.codec == MD_CODEC_PCMA;
    int rate = g711 ? 8000 : MD_PCM_RATE_HZ;
    if (md_wav_create(call->recording_path, rate, &call->recording) != LC_OK) {
        LC_WARN("call", "cannot record to %s", call->recording_path);
        call->recording_path[0] = '\0';
        return;
    }
    md_rtp_session_set_recorder(call->rtp, call->recording, rate);
}

void
md_call_start_media(md_call_t *call)
{
    if (call->stream)
        return;
    start_recording(call);
    md_playout_io_t io = {.pull = io_pull, .push = io_push, .arg = call};
    call->stream = md_playout_stream_create(call->w->playout, &io);
    call->media_start_ms = call->on_hold ? 0 : lc_time_mono_ms();
    if (call->agent.agent_json && call->answered_wall_ms != 0) {
        /* the agent runtime speaks and listens instead of the echo demo */
        md_agent_env_t env = {.w = call->w,
                              .call = call,
                              .stream = call->stream,
                              .call_id = call->id,
                              .agent = &call->agent,
                              .from = call->from,
                              .to = call->to,
                              .answered_mono_ms = call->answered_mono_ms ? call->answered_mono_ms
                                                                         : lc_time_mono_ms()};
        if (md_agent_create(&env, &call->agent_rt) == LC_OK) {
            md_agent_start(call->agent_rt);
            return;
        }
    }
    if (call->w->prompt) {
        size_t n;
        const int16_t *pcm = md_prompt_pcm(call->w->prompt, &n);
        md_playout_enqueue(call->stream, pcm, n, NULL, NULL);
    }
    md_playout_set_echo(call->stream, true);
}

void
md_call_on_dtmf(void *arg, char digit, int duration_ms, bool end, const char *source)
{
    md_call_t *call = arg;
    CALL_CTX(call);
    if (!end) {
        LC_INFO("call", "DTMF %c (%s)", digit, source);
        lc_metric_inc(call->w->m.dtmf_digits);
        char d[2] = {digit, 0};
        md_call_publish(call, "call.dtmf", json_pack("{s:s, s:s}", "digit", d, "source", source));
        if (call->agent_rt)
            md_agent_on_dtmf(call->agent_rt, digit);
    } else {
        LC_DEBUG("call", "DTMF %c ended after %d ms", digit, duration_ms);
    }
    CALL_CTX_END();
}

/* ---- answering ---- */

static void
answer(md_call_t *call)
{
    md_sip_txn_t *txn = call->invite_txn;
    if (txn == NULL || call->state != CS_RINGING)
        return;
    char sdp[MD_SDP_MAX_BYTES];
    size_t len;
    md_sdp_local_t local;
    if (call->have_neg) {
        md_call_local_sdp(call, call->neg.local_dir, &local);
        len = md_sdp_write_answer(call->offer, &call->neg, &local, sdp, sizeof(sdp));
    } else {
        /* RFC 3264 section 5: the INVITE had no offer, the 200 carries ours */
        md_call_local_sdp(call, MD_SDP_SENDRECV, &local);
        len = md_sdp_write_offer(&call->w->sdp_prefs, NULL, &local, sdp, sizeof(sdp));
        call->awaiting_answer_in_ack = true;
    }
    osip_message_t *ok =
        md_sip_response_create(md_sip_txn_request(txn), 200, NULL, call->local_tag);
    md_call_add_contact(call, ok);
    osip_message_set_header(ok, "Allow", MD_SIP_ALLOW);
    md_sip_set_body(ok, "application/sdp", sdp, len);
    md_sip_txn_respond(txn, ok);
    call->state = CS_ANSWERED;
    call->answered_wall_ms = lc_time_wall_ms();
    call->answered_mono_ms = lc_time_mono_ms();
    LC_INFO("call", "answered (%s)",
            call->have_neg ? md_codec_desc(call->neg.codec)->encoding_name : "offer in 200");
    json_t *extra = NULL;
    if (call->have_neg)
        extra = json_pack("{s:s}", "codec", md_codec_desc(call->neg.codec)->encoding_name);
    md_call_publish(call, "call.answered", extra);
    if (call->have_neg)
        md_call_start_media(call);
}

/* Early media (VOXI_MEDIA_EARLY_MEDIA, while the call rings): 183 Session Progress with our
 * answer (RFC 3261 section 13.3.1.1, RFC 3960 section 3: the gateway model, no 100rel; the
 * 200 repeats the same answer) and the prompt plays before the 200. */
static void
send_progress(md_call_t *call)
{
    char sdp[MD_SDP_MAX_BYTES];
    md_sdp_local_t local;
    md_call_local_sdp(call, call->neg.local_dir, &local);
    size_t len = md_sdp_write_answer(call->offer, &call->neg, &local, sdp, sizeof(sdp));
    osip_message_t *progress =
        md_sip_response_create(md_sip_txn_request(call->invite_txn), 183, NULL, call->local_tag);
    md_call_add_contact(call, progress);
    osip_message_set_header(progress, "Allow", MD_SIP_ALLOW);
    md_sip_set_body(progress, "application/sdp", sdp, len);
    md_sip_txn_respond(call->invite_txn, progress);
    LC_INFO("call", "early media (183): the prompt plays before the answer");
    md_call_start_media(call);
}

void
md_call_on_timer(uv_timer_t *t)
{
    md_call_t *call = t->data;
    if (call->state == CS_ENDED)
        return;
    CALL_CTX(call);
    if (call->pending_hangup)
        md_call_hangup(call, call->pending_hangup);
    else if (call->state == CS_RINGING && call->inbound)
        answer(call);
    else if (call->state == CS_RINGING)
        md_call_out_on_timeout(call);
    CALL_CTX_END();
}

/* ---- creation ---- */

void
md_call_free_cb(uv_handle_t *h)
{
    md_call_t *call = h->data;
    md_sip_dialog_destroy(call->dlg);
    free(call->offer);
    free(call->sip_call_id);
    free(call->target_uri);
    free(call->from_user);
    free(call->auth_user);
    free(call->auth_password);
    free(call->ack_bytes);
    free(call->transfer_target);
    free(call->agent.agent_json);
    json_decref(call->agent.variables);
    free(call);
}

lc_status_t
md_call_alloc(md_worker_t *w, bool inbound, const char *id, const char *peer_ip, md_call_t **out)
{
    *out = NULL;
    md_call_t *call = LC_NEW(md_call_t);
    call->w = w;
    call->inbound = inbound;
    if (id && id[0])
        snprintf(call->id, sizeof(call->id), "%s", id);
    else
        lc_id_new("call_", call->id, sizeof(call->id));
    md_rtp_session_opts_t ro = {.loop = w->loop,
                                .ports = w->ports,
                                .bind_addr = w->cfg->sip_addr,
                                .trusted_ip = peer_ip,
                                .metrics = w->metrics};
    md_rtp_cb_t cb = {.on_dtmf = md_call_on_dtmf, .arg = call};
    lc_status_t st = md_rtp_session_create(&ro, &cb, &call->rtp);
    if (st != LC_OK) {
        free(call);
        return st;
    }
    md_sip_random_token("", call->local_tag, sizeof(call->local_tag));
    lc_random_bytes(&call->sdp_sess_id, sizeof(call->sdp_sess_id));
    call->sdp_sess_id &= 0x7fffffffffffull; /* an NTP-ish number that prints short */
    call->sdp_version = 1;
    call->created_wall_ms = lc_time_wall_ms();
    uv_timer_init(w->loop, &call->timer);
    uv_unref((uv_handle_t *) &call->timer);
    call->timer.data = call;
    *out = call;
    return LC_OK;
}

void
md_call_register(md_call_t *call)
{
    md_worker_t *w = call->w;
    md_sip_ua_register(w->ua, call->sip_call_id, call);
    lc_metric_inc(call->inbound ? w->m.calls_inbound : w->m.calls_outbound);
    lc_metric_set(w->m.calls_active, (double) md_sip_ua_call_count(w->ua));
    md_call_ctl_attach(call);
    md_call_publish(call, "call.started", NULL);
}

lc_status_t
md_call_create_inbound(md_worker_t *w, md_sip_txn_t *invite_txn, const md_sip_msg_t *invite,
                       const md_sip_peer_t *from, const md_sdp_t *offer,
                       const md_call_agent_t *agent, md_call_t **out)
{
    *out = NULL;
    md_sdp_neg_t neg;
    if (offer && md_sdp_negotiate(offer, &w->sdp_prefs, &neg) != LC_OK)
        return LC_ERR_NOT_FOUND;
    char peer_ip[INET6_ADDRSTRLEN];
    md_sip_peer_ip(from, peer_ip, sizeof(peer_ip), NULL);
    md_call_t *call = NULL;
    LC_TRY(md_call_alloc(w, true, NULL, peer_ip, &call));
    call->sip_call_id = lc_strdup(invite->call_id);
    if (agent)
        md_call_agent_copy(&call->agent, agent);
    call->peer = *from;
    call->invite_txn = invite_txn;
    call->invite_cseq = invite->cseq;
    call->dlg = md_sip_dialog_create_uas(invite, call->local_tag, from);
    md_call_uri_text(invite->osip->from, call->from, sizeof(call->from));
    md_call_uri_text(invite->osip->to, call->to, sizeof(call->to));
    if (offer) {
        call->offer = lc_malloc(sizeof(md_sdp_t));
        *call->offer = *offer;
        if (md_call_apply_neg(call, &neg) != LC_OK) {
            LC_WARN("call", "cannot apply the negotiated media");
            md_rtp_session_destroy(call->rtp);
            uv_close((uv_handle_t *) &call->timer, md_call_free_cb);
            return LC_ERR_NOT_FOUND;
        }
    }
    md_sip_txn_set_owner(invite_txn, md_call_on_txn_event, call);
    CALL_CTX(call);
    char p[80];
    md_sip_peer_format(from, p, sizeof(p));
    LC_INFO("call", "inbound call from %s (%s) to %s, SIP Call-ID %s", call->from, p, call->to,
            call->sip_call_id);
    md_call_register(call);

    /* early media needs a ring time and an offer to answer in the 183; for now the demo's
     * prompt only (the agent runtime starts at the answer) */
    bool early = w->cfg->early_media && w->cfg->answer_delay_ms > 0 && call->have_neg &&
                 call->agent.agent_json == NULL;
    if (early) {
        send_progress(call);
    } else {
        osip_message_t *ringing = md_sip_response_create(invite, 180, NULL, call->local_tag);
        md_call_add_contact(call, ringing);
        md_sip_txn_respond(invite_txn, ringing);
    }
    md_call_publish(call, "call.ringing", early ? json_pack("{s:b}", "early_media", 1) : NULL);
    if (w->cfg->answer_delay_ms > 0)
        uv_timer_start(&call->timer, md_call_on_timer, (uint64_t) w->cfg->answer_delay_ms, 0);
    else
        answer(call);
    CALL_CTX_END();
    *out = call;
    return LC_OK;
}

/* ---- ending ---- */

void
md_call_end(md_call_t *call, const char *reason, int sip_code)
{
    if (call->state == CS_ENDED)
        return;
    md_worker_t *w = call->w;
    bool answered = call->answered_wall_ms != 0;
    call->state = CS_ENDED;
    uv_timer_stop(&call->timer);

    json_t *extra = json_pack("{s:s}", "reason", reason);
    if (answered) {
        int64_t now = lc_time_wall_ms();
        json_object_set_new(extra, "duration_ms", json_integer(now - call->answered_wall_ms));
        json_object_set_new(extra, "answered_at_ms", json_integer(call->answered_wall_ms));
    }
    if (sip_code)
        json_object_set_new(extra, "sip_code", json_integer(sip_code));
    if (call->have_neg)
        json_object_set_new(extra, "codec",
                            json_string(md_codec_desc(call->neg.codec)->encoding_name));
    if (call->rtp) {
        md_rtp_stats_t rs;
        md_rtp_session_get_stats(call->rtp, &rs);
        json_object_set_new(
            extra, "rtp",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:i, s:i, s:b, s:I, s:I}", "packets_in",
                      (json_int_t) rs.rx_packets, "packets_out", (json_int_t) rs.tx_packets,
                      "dropped",
                      (json_int_t) (rs.dropped_invalid + rs.dropped_source + rs.dropped_pt +
                                    rs.dropped_srtp),
                      "jitter_late", (json_int_t) rs.jitter.late, "concealed",
                      (json_int_t) rs.jitter.concealed, "jitter_ms", rs.jitter.jitter_ms, "rtt_ms",
                      rs.rtt_ms, "lost", (int) rs.cumulative_lost, "remote_lost",
                      (int) rs.remote_cumulative_lost, "srtp", call->neg.srtp, "rtcp_in",
                      (json_int_t) rs.rtcp_rx, "rtcp_out", (json_int_t) rs.rtcp_tx));
    }
    if (call->recording) {
        md_rtp_session_set_recorder(call->rtp, NULL, 0);
        if (md_wav_close(call->recording) != LC_OK)
            LC_WARN("call", "recording %s incomplete", call->recording_path);
        call->recording = NULL;
        json_object_set_new(extra, "recording_path", json_string(call->recording_path));
    }
    if (call->agent_rt) {
        md_agent_usage(call->agent_rt, extra);
        md_agent_destroy(call->agent_rt);
        call->agent_rt = NULL;
    }
    md_call_publish(call, answered ? "call.ended" : "call.failed", extra);
    LC_INFO("call", "%s: %s", answered ? "ended" : "failed", reason);
    lc_metric_inc(answered ? w->m.calls_ended : w->m.calls_failed);

    md_playout_stream_destroy(call->stream);
    call->stream = NULL;
    md_rtp_session_destroy(call->rtp);
    call->rtp = NULL;
    if (call->invite_txn) {
        md_sip_txn_ack_received(call->invite_txn); /* no more 2xx retransmissions */
        md_sip_txn_set_owner(call->invite_txn, NULL, NULL);
        call->invite_txn = NULL;
    }
    if (call->reinvite_txn) {
        md_sip_txn_ack_received(call->reinvite_txn);
        md_sip_txn_set_owner(call->reinvite_txn, NULL, NULL);
        call->reinvite_txn = NULL;
    }
    md_call_out_release_invite(call, answered);
    if (call->refer_txn) {
        md_sip_txn_detach(call->refer_txn);
        call->refer_txn = NULL;
    }
    md_call_ctl_detach(call);
    md_sip_ua_forget(w->ua, call->sip_call_id, call);
    lc_metric_set(w->m.calls_active, (double) md_sip_ua_call_count(w->ua));
    if (call->resolving)
        uv_cancel((uv_req_t *) &call->resolve); /* its callback frees the call (md_call_out) */
    else
        uv_close((uv_handle_t *) &call->timer, md_call_free_cb);
}

void
md_call_hangup(md_call_t *call, const char *reason)
{
    if (call->state == CS_ENDED)
        return;
    CALL_CTX(call);
    if (call->state == CS_RINGING && !call->inbound) {
        /* RFC 3261 section 9.1: CANCEL once a provisional response is in */
        md_sip_txn_cancel(call->out_invite);
        md_call_end(call, reason, 487);
    } else if (call->state == CS_RINGING) {
        md_call_respond(call->invite_txn, 480, NULL, call->local_tag);
        md_call_end(call, reason, 480);
    } else {
        md_call_send_bye(call);
        md_call_end(call, reason, 0);
    }
    CALL_CTX_END();
}

void
md_call_on_cancel(md_call_t *call)
{
    CALL_CTX(call);
    if (call->state == CS_RINGING) {
        /* RFC 3261 section 9.2 */
        md_call_respond(call->invite_txn, 487, NULL, call->local_tag);
        md_call_end(call, "cancelled", 487);
    }
    CALL_CTX_END();
}

/* ---- requests inside the dialog ---- */

/* The digit of an INFO body (application/dtmf-relay "Signal=5",
 * application/dtmf "5"). */
static char
info_digit(const md_sip_msg_t *req)
{
    if (req->body == NULL)
        return 0;
    char body[256];
    size_t n = req->body_len < sizeof(body) - 1 ? req->body_len : sizeof(body) - 1;
    memcpy(body, req->body, n);
    body[n] = '\0';
    const char *v = body;
    if (strcmp(req->content_type, "application/dtmf-relay") == 0) {
        const char *sig = strcasestr(body, "signal");
        if (sig == NULL)
            return 0;
        v = sig + 6;
        while (*v == ' ' || *v == '\t')
            v++;
        if (*v != '=')
            return 0;
        v++;
    }
    while (*v == ' ' || *v == '\t')
        v++;
    char d = *v;
    if (d >= 'a' && d <= 'd')
        d = (char) (d - 'a' + 'A');
    if (strncmp(v, "10", 2) == 0)
        return '*';
    if (strncmp(v, "11", 2) == 0)
        return '#';
    if ((d >= '0' && d <= '9') || d == '*' || d == '#' || (d >= 'A' && d <= 'D'))
        return d;
    return 0;
}

static void
handle_info(md_call_t *call, md_sip_txn_t *txn, const md_sip_msg_t *req)
{
    if (strcmp(req->content_type, "application/dtmf-relay") != 0 &&
        strcmp(req->content_type, "application/dtmf") != 0) {
        osip_message_t *r = md_sip_response_create(req, 415, NULL, NULL);
        osip_message_set_header(r, "Accept", "application/dtmf-relay, application/dtmf");
        md_sip_txn_respond(txn, r);
        return;
    }
    char digit = info_digit(req);
    if (digit == 0) {
        md_sip_txn_respond_code(txn, 400, "Bad DTMF Body", NULL);
        return;
    }
    md_sip_txn_respond_code(txn, 200, NULL, NULL);
    LC_INFO("call", "DTMF %c (SIP INFO)", digit);
    lc_metric_inc(call->w->m.dtmf_digits);
    char d[2] = {digit, 0};
    md_call_publish(call, "call.dtmf", json_pack("{s:s, s:s}", "digit", d, "source", "sip_info"));
    if (call->agent_rt)
        md_agent_on_dtmf(call->agent_rt, digit);
}

static void
handle_reinvite(md_call_t *call, md_sip_txn_t *txn, const md_sip_msg_t *req)
{
    if (call->reinvite_txn != NULL) {
        /* RFC 3261 section 14.2: an INVITE while ours is pending */
        md_sip_txn_respond_code(txn, 491, NULL, NULL);
        return;
    }
    if (call->state != CS_ACTIVE) {
        /* section 14.2: the first INVITE has not completed yet */
        osip_message_t *r = md_sip_response_create(req, 500, "Previous INVITE Pending", NULL);
        osip_message_set_header(r, "Retry-After", "1");
        md_sip_txn_respond(txn, r);
        return;
    }
    md_sdp_local_t local;
    char sdp[MD_SDP_MAX_BYTES];
    size_t len;
    bool offer_in_200 = req->body == NULL || req->body_len == 0;
    if (!offer_in_200) {
        if (strcmp(req->content_type, "application/sdp") != 0) {
            osip_message_t *r = md_sip_response_create(req, 415, NULL, NULL);
            osip_message_set_header(r, "Accept", "application/sdp");
            md_sip_txn_respond(txn, r);
            return;
        }
        md_sdp_t *offer = lc_malloc(sizeof(md_sdp_t));
        md_sdp_neg_t neg;
        if (md_sdp_parse(req->body, req->body_len, offer) != LC_OK) {
            free(offer);
            md_sip_txn_respond_code(txn, 400, "Bad SDP", NULL);
            return;
        }
        /* RFC 3264 section 8: the stream keeps its m-line; a failed offer leaves
         * the session as it was */
        if (md_sdp_negotiate(offer, &call->w->sdp_prefs, &neg) != LC_OK ||
            md_call_apply_neg(call, &neg) != LC_OK) {
            free(offer);
            osip_message_t *r = md_sip_response_create(req, 488, NULL, NULL);
            osip_message_set_header(r, "Warning", "304 voxi \"Media type not available\"");
            md_sip_txn_respond(txn, r);
            return;
        }
        free(call->offer);
        call->offer = offer;
        call->sdp_version++;
        md_call_local_sdp(call, call->neg.local_dir, &local);
        len = md_sdp_write_answer(call->offer, &call->neg, &local, sdp, sizeof(sdp));
        LC_INFO("call", "re-INVITE: %s, %s", md_codec_desc(call->neg.codec)->encoding_name,
                md_sdp_dir_name(call->neg.remote_dir));
    } else {
        call->sdp_version++;
        md_call_local_sdp(call, MD_SDP_SENDRECV, &local);
        len = md_sdp_write_offer(&call->w->sdp_prefs, NULL, &local, sdp, sizeof(sdp));
        LC_INFO("call", "re-INVITE without SDP: our offer goes in the 200");
    }
    md_sip_dialog_refresh_target(call->dlg, req);
    osip_message_t *ok = md_sip_response_create(req, 200, NULL, NULL);
    md_call_add_contact(call, ok);
    osip_message_set_header(ok, "Allow", MD_SIP_ALLOW);
    md_sip_set_body(ok, "application/sdp", sdp, len);
    md_sip_txn_respond(txn, ok);
    call->reinvite_txn = txn;
    call->reinvite_cseq = req->cseq;
    call->awaiting_answer_in_ack = offer_in_200;
    md_sip_txn_set_owner(txn, md_call_on_txn_event, call);
}

void
md_call_on_request(md_call_t *call, md_sip_txn_t *txn, const md_sip_msg_t *req)
{
    CALL_CTX(call);
    if (call->state == CS_ENDED) {
        md_sip_txn_respond_code(txn, 481, NULL, NULL);
        goto done;
    }
    if (!md_sip_dialog_check_cseq(call->dlg, req)) {
        /* RFC 3261 section 12.2.2 */
        md_sip_txn_respond_code(txn, 500, "CSeq Out of Order", NULL);
        goto done;
    }
    if (md_sip_method_is(req, "BYE")) {
        md_sip_txn_respond_code(txn, 200, NULL, NULL);
        if (call->state == CS_RINGING) {
            /* a BYE on the early dialog: the INVITE is over too (section 15.1.2) */
            md_call_respond(call->invite_txn, 487, NULL, call->local_tag);
            md_call_end(call, "cancelled", 487);
        } else {
            if (call->reinvite_txn && md_sip_txn_last_code(call->reinvite_txn) < 200)
                md_sip_txn_respond_code(call->reinvite_txn, 487, NULL, NULL);
            md_call_end(call, "remote_hangup", 0);
        }
    } else if (md_sip_method_is(req, "INVITE")) {
        handle_reinvite(call, txn, req);
    } else if (md_sip_method_is(req, "INFO")) {
        handle_info(call, txn, req);
    } else if (md_sip_method_is(req, "OPTIONS")) {
        osip_message_t *r = md_sip_response_create(req, 200, NULL, NULL);
        osip_message_set_header(r, "Allow", MD_SIP_ALLOW);
        md_sip_txn_respond(txn, r);
    } else if (md_sip_method_is(req, "NOTIFY")) {
        md_call_refer_on_notify(call, txn, req);
    } else if (md_sip_method_is(req, "REFER")) {
        md_sip_txn_respond_code(txn, 403, "Transfer Not Allowed", NULL);
    } else {
        osip_message_t *r = md_sip_response_create(req, 405, NULL, NULL);
        osip_message_set_header(r, "Allow", MD_SIP_ALLOW);
        md_sip_txn_respond(txn, r);
    }
done:
    CALL_CTX_END();
}

/* The answer in an ACK to the offer our 200 carried. */
static bool
take_answer(md_call_t *call, const md_sip_msg_t *ack)
{
    md_sdp_t *answer = lc_malloc(sizeof(md_sdp_t));
    md_sdp_neg_t neg;
    bool ok = ack->body && strcmp(ack->content_type, "application/sdp") == 0 &&
              md_sdp_parse(ack->body, ack->body_len, answer) == LC_OK &&
              md_sdp_accept_answer(answer, &call->w->sdp_prefs, &neg) == LC_OK &&
              md_call_apply_neg(call, &neg) == LC_OK;
    free(answer);
    return ok;
}

void
md_call_on_ack(md_call_t *call, const md_sip_msg_t *ack)
{
    CALL_CTX(call);
    if (call->state == CS_ANSWERED && ack->cseq == call->invite_cseq) {
        md_sip_txn_ack_received(call->invite_txn);
        call->state = CS_ACTIVE;
        LC_DEBUG("call", "confirmed by ACK");
        if (call->awaiting_answer_in_ack) {
            call->awaiting_answer_in_ack = false;
            if (!take_answer(call, ack)) {
                LC_WARN("call", "the ACK carries no usable SDP answer: hanging up");
                md_call_hangup(call, "bad_sdp_answer");
                goto done;
            }
            md_call_start_media(call);
        }
    } else if (call->reinvite_txn && ack->cseq == call->reinvite_cseq) {
        md_sip_txn_ack_received(call->reinvite_txn);
        md_sip_txn_set_owner(call->reinvite_txn, NULL, NULL);
        call->reinvite_txn = NULL;
        if (call->awaiting_answer_in_ack) {
            call->awaiting_answer_in_ack = false;
            if (!take_answer(call, ack)) {
                LC_WARN("call", "the ACK to our re-INVITE offer carries no usable answer");
                md_call_hangup(call, "bad_sdp_answer");
            }
        }
    }
done:
    CALL_CTX_END();
}
