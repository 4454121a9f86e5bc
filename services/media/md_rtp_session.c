#include "md_rtp_session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "md_dtmf.h"
#include "md_g711.h"
#include "md_inband_dtmf.h"
#include "md_resample.h"
#include "md_rtcp.h"
#include "md_rtp.h"
#include "md_sip_transport.h"

#define BIND_ATTEMPTS 16
#define PT_COMFORT_NOISE 13
#define DTMF_QUEUE 32

/* ---- port pool ---- */

struct md_rtp_ports {
    int min_port;
    int npairs;
    uint8_t *used;
    int next;
    size_t available;
};

md_rtp_ports_t *
md_rtp_ports_create(int min_port, int max_port)
{
    md_rtp_ports_t *p = LC_NEW(md_rtp_ports_t);
    if (min_port % 2)
        min_port++;
    p->min_port = min_port;
    p->npairs = max_port > min_port ? (max_port - min_port + 1) / 2 : 0;
    p->used = lc_calloc((size_t) p->npairs + 1, 1);
    p->available = (size_t) p->npairs;
    return p;
}

void
md_rtp_ports_destroy(md_rtp_ports_t *p)
{
    if (p == NULL)
        return;
    free(p->used);
    free(p);
}

bool
md_rtp_ports_acquire(md_rtp_ports_t *p, int *port)
{
    for (int i = 0; i < p->npairs; i++) {
        int idx = (p->next + i) % p->npairs;
        if (!p->used[idx]) {
            p->used[idx] = 1;
            p->next = (idx + 1) % p->npairs;
            p->available--;
            *port = p->min_port + 2 * idx;
            return true;
        }
    }
    return false;
}

void
md_rtp_ports_release(md_rtp_ports_t *p, int port)
{
    int idx = (port - p->min_port) / 2;
    if (idx < 0 || idx >= p->npairs || !p->used[idx])
        return;
    p->used[idx] = 0;
    p->available++;
}

size_t
md_rtp_ports_available(const md_rtp_ports_t *p)
{
    return p->available;
}

/* ---- session ---- */

typedef struct {
    int family;
    uint8_t addr[16];
} ip_t;

struct md_rtp_session {
    uv_loop_t *loop;
    md_rtp_ports_t *ports;
    int port;
    uv_udp_t rtp, rtcp;
    int open_handles;
    bool closing;
    md_rtp_cb_t cb;

    /* where to send */
    bool have_remote;
    struct sockaddr_storage sdp_rtp, sdp_rtcp;
    bool latched, rtcp_latched;
    struct sockaddr_storage latched_rtp, latched_rtcp;
    int64_t latched_rx_ms;
    struct sockaddr_storage candidate;
    int candidate_count;
    ip_t trusted[2]; /* SIP peer, SDP address */

    /* codec */
    bool have_codec;
    md_codec_id_t codec;
    int pt;
    int te_pt;
    int te_clock_hz;
    int clock_hz;
    uint32_t ts_step;
    md_encoder_t *enc;
    md_decoder_t *dec;
    md_jitter_t *jb;
    bool send_enabled, recv_enabled;

    /* sending */
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts;
    bool marker_next;
    uint32_t packets_sent, octets_sent;
    bool sent_since_report;
    md_dtmf_tx_t dtmf_tx;
    bool dtmf_active;
    char dtmf_queue[DTMF_QUEUE];
    int dtmf_durations[DTMF_QUEUE];
    int dtmf_qlen;

    /* receiving */
    md_dtmf_rx_t dtmf_rx;
    md_rtcp_rx_stats_t rx_stats;
    bool have_ssrc;
    uint32_t rx_ssrc;
    int64_t last_rx_ms;
    int16_t fifo[2 * MD_MAX_FRAME_SAMPLES];
    size_t fifo_len;

    /* in-band DTMF (G.711 without telephone-event) */
    md_inband_dtmf_t *inband;

    /* recording */
    md_wav_t *wav;
    int wav_rate_hz;
    md_resampler_t *wav_down; /* 16 kHz -> 8 kHz when needed */

    /* SRTP */
    md_srtp_t *srtp_in, *srtp_out;
    md_srtp_crypto_t key_in, key_out;
    bool have_key_in, have_key_out;

    int64_t next_rtcp_ms;
    md_rtp_stats_t stats;
    lc_metric_t *m_rx, *m_tx, *m_drop_invalid, *m_drop_source, *m_drop_pt, *m_drop_srtp;

    uint8_t rx_buf[2048] __attribute__((aligned(16)));
    uint8_t tx_buf[MD_RTP_MAX_PACKET_BYTES + MD_SRTP_TRAILER_ROOM] __attribute__((aligned(16)));
    uint8_t payload_buf[MD_MAX_PAYLOAD_BYTES];
};

static void
ip_of(const struct sockaddr *sa, ip_t *out)
{
    memset(out, 0, sizeof(*out));
    out->family = sa->sa_family;
    if (sa->sa_family == AF_INET)
        memcpy(out->addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
        memcpy(out->addr, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
}

static bool
ip_equal(const ip_t *a, const ip_t *b)
{
    return a->family != 0 && a->family == b->family && memcmp(a->addr, b->addr, 16) == 0;
}

static bool
trusted_source(const md_rtp_session_t *s, const struct sockaddr *from)
{
    ip_t ip;
    ip_of(from, &ip);
    return ip_equal(&ip, &s->trusted[0]) || ip_equal(&ip, &s->trusted[1]);
}

static void
copy_sockaddr(struct sockaddr_storage *dst, const struct sockaddr *src)
{
    memset(dst, 0, sizeof(*dst));
    memcpy(dst, src,
           src->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
}

static void
set_port(struct sockaddr_storage *a, int port)
{
    if (a->ss_family == AF_INET)
        ((struct sockaddr_in *) a)->sin_port = htons((uint16_t) port);
    else if (a->ss_family == AF_INET6)
        ((struct sockaddr_in6 *) a)->sin6_port = htons((uint16_t) port);
}

static int
get_port(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *) a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *) a)->sin6_port);
    return 0;
}

/* Symmetric RTP with the hijack guard described in the header. */
static bool
accept_source(md_rtp_session_t *s, const struct sockaddr *from, int64_t now)
{
    struct sockaddr_storage src;
    copy_sockaddr(&src, from);
    if (s->latched) {
        if (md_sip_addr_equal(&src, &s->latched_rtp)) {
            s->latched_rx_ms = now;
            return true;
        }
        if (now - s->latched_rx_ms > MD_RTP_RELATCH_SILENCE_MS && trusted_source(s, from)) {
            s->latched_rtp = src;
            s->latched_rx_ms = now;
            s->rtcp_latched = false;
            s->stats.relatched++;
            return true;
        }
        return false;
    }
    if (!trusted_source(s, from)) {
        if (s->candidate_count > 0 && md_sip_addr_equal(&src, &s->candidate))
            s->candidate_count++;
        else {
            s->candidate = src;
            s->candidate_count = 1;
        }
        if (s->candidate_count < MD_RTP_LATCH_PACKETS)
            return false;
    }
    s->latched = true;
    s->latched_rtp = src;
    s->latched_rx_ms = now;
    return true;
}

static const struct sockaddr *
rtp_destination(const md_rtp_session_t *s)
{
    if (s->latched)
        return (const struct sockaddr *) &s->latched_rtp;
    return s->have_remote ? (const struct sockaddr *) &s->sdp_rtp : NULL;
}

static const struct sockaddr *
rtcp_destination(md_rtp_session_t *s, struct sockaddr_storage *tmp)
{
    if (s->rtcp_latched)
        return (const struct sockaddr *) &s->latched_rtcp;
    if (!s->have_remote)
        return NULL;
    if (s->latched) {
        /* the peer's RTCP port from its SDP, at the address its RTP comes from */
        *tmp = s->latched_rtp;
        set_port(tmp, get_port(&s->sdp_rtcp));
        return (const struct sockaddr *) tmp;
    }
    return (const struct sockaddr *) &s->sdp_rtcp;
}

/* ---- receive ---- */

static void
rx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void) suggested;
    md_rtp_session_t *s = h->data;
    buf->base = (char *) s->rx_buf;
    buf->len = sizeof(s->rx_buf);
}

static void
drop(uint64_t *counter, lc_metric_t *metric)
{
    (*counter)++;
    lc_metric_inc(metric);
}

static void
handle_rtcp(md_rtp_session_t *s, uint8_t *p, size_t len, const struct sockaddr *from, int64_t now)
{
    lc_status_t sst;
    if (s->srtp_in && (sst = md_srtp_unprotect_rtcp(s->srtp_in, p, &len)) != LC_OK) {
        drop(&s->stats.dropped_srtp, s->m_drop_srtp);
        LC_LOG_RL(LC_LOG_WARN, "rtp", 1, "SRTCP packet (%zu bytes) dropped: %s", len,
                  lc_status_name(sst));
        return;
    }
    md_rtcp_info_t info;
    if (md_rtcp_parse(p, len, &info) != LC_OK) {
        drop(&s->stats.dropped_invalid, s->m_drop_invalid);
        return;
    }
    /* RTCP is taken from the trusted IPs and from the IP our RTP is latched to */
    ip_t from_ip, latched_ip;
    ip_of(from, &from_ip);
    ip_of((const struct sockaddr *) &s->latched_rtp, &latched_ip);
    if (!trusted_source(s, from) && !(s->latched && ip_equal(&from_ip, &latched_ip))) {
        drop(&s->stats.dropped_source, s->m_drop_source);
        return;
    }
    if (!s->rtcp_latched) {
        copy_sockaddr(&s->latched_rtcp, from);
        s->rtcp_latched = true;
    }
    s->stats.rtcp_rx++;
    if (info.has_sr)
        md_rtcp_rx_note_sr(&s->rx_stats, &info, now);
    uint64_t ntp = md_ntp_now();
    for (int i = 0; i < info.nblocks && i < 4; i++) {
        const md_rtcp_report_block_t *b = &info.blocks[i];
        if (b->ssrc != s->ssrc)
            continue;
        double rtt = md_rtcp_rtt_ms(b, ntp);
        if (rtt > 0)
            s->stats.rtt_ms = rtt;
        s->stats.remote_cumulative_lost = b->cumulative_lost;
        if (s->clock_hz > 0)
            s->stats.remote_jitter_ms = (double) b->jitter * 1000.0 / s->clock_hz;
    }
}

static void
handle_dtmf(md_rtp_session_t *s, const md_rtp_packet_t *pkt)
{
    char digit = 0;
    int duration_ms = 0;
    md_dtmf_rx_result_t r =
        md_dtmf_rx_packet(&s->dtmf_rx, pkt->timestamp, pkt->payload, pkt->payload_len,
                          s->te_clock_hz, &digit, &duration_ms);
    if (r == MD_DTMF_NONE || s->cb.on_dtmf == NULL)
        return;
    s->cb.on_dtmf(s->cb.arg, digit, duration_ms, r == MD_DTMF_DIGIT_END, "rfc4733");
}

static void
on_inband(void *user, md_dtmf_rx_result_t what, char digit, int duration_ms)
{
    md_rtp_session_t *s = user;
    if (what != MD_DTMF_NONE && s->cb.on_dtmf)
        s->cb.on_dtmf(s->cb.arg, digit, duration_ms, what == MD_DTMF_DIGIT_END, "inband");
}

/* ---- recording ---- */

static bool
is_g711(md_codec_id_t c)
{
    return c == MD_CODEC_PCMU || c == MD_CODEC_PCMA;
}

static void
record_silence(md_rtp_session_t *s, md_wav_channel_t ch)
{
    static const int16_t zero[MD_RTP_FRAME_SAMPLES];
    md_wav_write(s->wav, ch, zero, (size_t) (s->wav_rate_hz / 1000 * MD_RTP_FRAME_MS));
}

static void
record_pcm16k(md_rtp_session_t *s, md_wav_channel_t ch, const int16_t *pcm, size_t n)
{
    if (s->wav_rate_hz == MD_PCM_RATE_HZ) {
        md_wav_write(s->wav, ch, pcm, n);
        return;
    }
    int16_t down[MD_MAX_FRAME_SAMPLES];
    if (s->wav_down == NULL &&
        md_resampler_create(MD_PCM_RATE_HZ, s->wav_rate_hz, MD_RESAMPLE_QUALITY_DEFAULT,
                            &s->wav_down) != LC_OK)
        return;
    size_t m = md_resample(s->wav_down, pcm, n, down, sizeof(down) / sizeof(down[0]));
    md_wav_write(s->wav, ch, down, m);
}

/* One frame as it went over the wire (payload) or as PCM. */
static void
record_frame(md_rtp_session_t *s, md_wav_channel_t ch, const uint8_t *payload, size_t len,
             const int16_t *pcm16k, size_t n)
{
    if (s->wav == NULL)
        return;
    if (s->wav_rate_hz == 8000 && is_g711(s->codec) && payload) {
        int16_t pcm8k[MD_MAX_FRAME_SAMPLES];
        if (len > sizeof(pcm8k) / sizeof(pcm8k[0]))
            len = sizeof(pcm8k) / sizeof(pcm8k[0]);
        md_g711_decode(s->codec, payload, len, pcm8k);
        md_wav_write(s->wav, ch, pcm8k, len);
    } else if (pcm16k) {
        record_pcm16k(s, ch, pcm16k, n);
    } else {
        record_silence(s, ch);
    }
}

void
md_rtp_session_set_recorder(md_rtp_session_t *s, md_wav_t *wav, int rate_hz)
{
    s->wav = wav;
    s->wav_rate_hz = rate_hz;
}

static void
on_rtp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags)
{
    (void) buf;
    md_rtp_session_t *s = h->data;
    if (nread <= 0 || addr == NULL || s->closing)
        return;
    int64_t now = lc_time_mono_ms();
    uint8_t *p = s->rx_buf;
    size_t len = (size_t) nread;
    if (flags & UV_UDP_PARTIAL) {
        drop(&s->stats.dropped_invalid, s->m_drop_invalid);
        return;
    }
    /* RFC 5761 section 4: RTCP multiplexed on the RTP port */
    if (len >= 2 && p[1] >= 192 && p[1] <= 223) {
        handle_rtcp(s, p, len, addr, now);
        return;
    }
    if (s->srtp_in) {
        lc_status_t sst = md_srtp_unprotect_rtp(s->srtp_in, p, &len);
        if (sst != LC_OK) {
            drop(&s->stats.dropped_srtp, s->m_drop_srtp);
            LC_LOG_RL(LC_LOG_WARN, "rtp", 1, "SRTP packet (%zu bytes) dropped: %s", len,
                      lc_status_name(sst));
            return;
        }
    }
    md_rtp_packet_t pkt;
    if (md_rtp_parse(p, len, &pkt) != LC_OK) {
        drop(&s->stats.dropped_invalid, s->m_drop_invalid);
        return;
    }
    bool is_te = s->te_pt >= 0 && pkt.payload_type == s->te_pt;
    bool is_audio = s->have_codec && pkt.payload_type == s->pt;
    if (!is_te && !is_audio && pkt.payload_type != PT_COMFORT_NOISE) {
        drop(&s->stats.dropped_pt, s->m_drop_pt);
        return;
    }
    if (!accept_source(s, addr, now)) {
        drop(&s->stats.dropped_source, s->m_drop_source);
        return;
    }
    s->stats.rx_packets++;
    s->stats.rx_bytes += len;
    lc_metric_inc(s->m_rx);
    s->last_rx_ms = now;
    if (s->have_ssrc && pkt.ssrc != s->rx_ssrc)
        s->stats.ssrc_changes++; /* the jitter buffer and RTCP statistics restart on
                                    it */
    s->have_ssrc = true;
    s->rx_ssrc = pkt.ssrc;
    if (!s->recv_enabled)
        return;
    if (is_te) {
        handle_dtmf(s, &pkt);
        return;
    }
    if (!is_audio)
        return;
    md_rtcp_rx_update(&s->rx_stats, pkt.ssrc, pkt.seq, pkt.timestamp, now, s->clock_hz);
    md_jitter_put(s->jb, pkt.seq, pkt.timestamp, pkt.ssrc, pkt.marker, pkt.payload, pkt.payload_len,
                  now);
}

static void
on_rtcp_sock(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
             unsigned flags)
{
    (void) buf;
    md_rtp_session_t *s = h->data;
    if (nread <= 0 || addr == NULL || s->closing)
        return;
    if (flags & UV_UDP_PARTIAL) {
        drop(&s->stats.dropped_invalid, s->m_drop_invalid);
        return;
    }
    handle_rtcp(s, s->rx_buf, (size_t) nread, addr, lc_time_mono_ms());
}

/* ---- send ---- */

static void
send_packet(md_rtp_session_t *s, uv_udp_t *sock, size_t len, const struct sockaddr *dst)
{
    uv_buf_t b = uv_buf_init((char *) s->tx_buf, (unsigned) len);
    int rc = uv_udp_try_send(sock, &b, 1, dst);
    if (rc < 0)
        LC_LOG_RL(LC_LOG_WARN, "rtp", 1, "RTP send failed: %s", uv_strerror(rc));
}

static void
maybe_send_rtcp(md_rtp_session_t *s, int64_t now)
{
    if (now < s->next_rtcp_ms)
        return;
    s->next_rtcp_ms = now + MD_RTCP_INTERVAL_MS;
    struct sockaddr_storage tmp;
    const struct sockaddr *dst = rtcp_destination(s, &tmp);
    if (dst == NULL)
        return;
    size_t room = sizeof(s->tx_buf) - MD_SRTP_TRAILER_ROOM;
    size_t len = md_rtcp_build_report(s->tx_buf, room, s->ssrc, s->sent_since_report, md_ntp_now(),
                                      s->ts, s->packets_sent, s->octets_sent,
                                      s->have_ssrc ? &s->rx_stats : NULL, now, "voxi");
    if (len == 0)
        return;
    if (s->srtp_out && md_srtp_protect_rtcp(s->srtp_out, s->tx_buf, &len, sizeof(s->tx_buf)))
        return;
    s->sent_since_report = false;
    s->stats.rtcp_tx++;
    send_packet(s, &s->rtcp, len, dst);
}

/* The next DTMF packet, if a digit is being sent; false otherwise. */
static bool
next_dtmf(md_rtp_session_t *s, uint8_t payload[4], bool *marker, uint32_t *ts)
{
    for (;;) {
        if (s->dtmf_active) {
            if (md_dtmf_tx_next(&s->dtmf_tx, payload, marker)) {
                *ts = s->dtmf_tx.timestamp;
                return true;
            }
            s->dtmf_active = false;
        }
        if (s->dtmf_qlen == 0)
            return false;
        char digit = s->dtmf_queue[0];
        int dur = s->dtmf_durations[0];
        memmove(s->dtmf_queue, s->dtmf_queue + 1, (size_t) (s->dtmf_qlen - 1));
        memmove(s->dtmf_durations, s->dtmf_durations + 1,
                (size_t) (s->dtmf_qlen - 1) * sizeof(int));
        s->dtmf_qlen--;
        if (md_dtmf_tx_start(&s->dtmf_tx, digit, dur, MD_RTP_FRAME_MS, s->te_clock_hz, s->ts, 10) ==
            LC_OK)
            s->dtmf_active = true;
    }
}

void
md_rtp_session_send(md_rtp_session_t *s, int64_t now_ms, const int16_t *pcm, size_t samples)
{
    if (s->closing || !s->have_codec)
        return;
    maybe_send_rtcp(s, now_ms);
    uint32_t ts = s->ts;
    const struct sockaddr *dst = rtp_destination(s);
    if (!s->send_enabled || dst == NULL) {
        s->ts += s->ts_step; /* time passes on hold too */
        s->marker_next = true;
        if (s->wav)
            record_silence(s, MD_WAV_AGENT);
        return;
    }
    bool marker = s->marker_next;
    uint8_t pt = (uint8_t) s->pt;
    const uint8_t *payload = s->payload_buf;
    size_t plen;
    uint8_t te[4];
    bool te_marker = false;
    uint32_t te_ts;
    if (s->te_pt >= 0 && next_dtmf(s, te, &te_marker, &te_ts)) {
        payload = te;
        plen = sizeof(te);
        pt = (uint8_t) s->te_pt;
        ts = te_ts;
        marker = te_marker;
        if (s->wav)
            record_silence(s, MD_WAV_AGENT);
    } else {
        plen = md_encode(s->enc, pcm, samples, s->payload_buf, sizeof(s->payload_buf));
        if (plen == 0) {
            s->ts += s->ts_step;
            if (s->wav)
                record_silence(s, MD_WAV_AGENT);
            return;
        }
        record_frame(s, MD_WAV_AGENT, s->payload_buf, plen, pcm, samples);
    }
    s->ts += s->ts_step;
    size_t room = sizeof(s->tx_buf) - MD_SRTP_TRAILER_ROOM;
    size_t len = md_rtp_build(s->tx_buf, room, marker, pt, s->seq, ts, s->ssrc, payload, plen);
    if (len == 0)
        return;
    s->seq++;
    if (s->srtp_out && md_srtp_protect_rtp(s->srtp_out, s->tx_buf, &len, sizeof(s->tx_buf)))
        return;
    s->marker_next = false;
    s->packets_sent++;
    s->octets_sent += (uint32_t) plen;
    s->sent_since_report = true;
    s->stats.tx_packets++;
    s->stats.tx_bytes += len;
    lc_metric_inc(s->m_tx);
    send_packet(s, &s->rtp, len, dst);
}

lc_status_t
md_rtp_session_send_dtmf(md_rtp_session_t *s, char digit, int duration_ms)
{
    if (s->te_pt < 0)
        return LC_ERR_UNAVAILABLE;
    if (md_dtmf_char_event(digit) < 0)
        return LC_ERR_INVALID;
    if (s->dtmf_qlen >= DTMF_QUEUE)
        return LC_ERR_FULL;
    s->dtmf_queue[s->dtmf_qlen] = digit;
    s->dtmf_durations[s->dtmf_qlen] = duration_ms;
    s->dtmf_qlen++;
    return LC_OK;
}

/* ---- playout pull ---- */

static void
fifo_decode_one(md_rtp_session_t *s, int64_t now_ms, bool *audio)
{
    const uint8_t *payload = NULL, *next = NULL;
    size_t len = 0, next_len = 0;
    md_jitter_result_t r = md_jitter_get(s->jb, now_ms, &payload, &len, &next, &next_len);
    int16_t *dst = s->fifo + s->fifo_len;
    size_t room = sizeof(s->fifo) / sizeof(s->fifo[0]) - s->fifo_len;
    if (room > MD_MAX_FRAME_SAMPLES)
        room = MD_MAX_FRAME_SAMPLES;
    int n = 0;
    if (r == MD_JITTER_FRAME) {
        n = md_decode(s->dec, payload, len, dst, room);
        if (n < 0)
            n = md_decode_plc(s->dec, NULL, 0, dst, MD_RTP_FRAME_SAMPLES);
        *audio = true;
        if (s->inband)
            md_inband_dtmf_process_g711(s->inband, s->codec, payload, len);
    } else if (r == MD_JITTER_MISSING) {
        n = md_decode_plc(s->dec, next, next_len, dst, MD_RTP_FRAME_SAMPLES);
        *audio = true;
    } else {
        memset(dst, 0, MD_RTP_FRAME_SAMPLES * sizeof(int16_t));
        n = MD_RTP_FRAME_SAMPLES;
    }
    if (n <= 0) {
        memset(dst, 0, MD_RTP_FRAME_SAMPLES * sizeof(int16_t));
        n = MD_RTP_FRAME_SAMPLES;
    }
    if (r != MD_JITTER_FRAME && s->inband)
        md_inband_dtmf_fill(s->inband, (size_t) n / 2);
    if (r == MD_JITTER_FRAME)
        record_frame(s, MD_WAV_CALLER, payload, len, dst, (size_t) n);
    else if (s->wav)
        record_silence(s, MD_WAV_CALLER);
    s->fifo_len += (size_t) n;
}

bool
md_rtp_session_pull(md_rtp_session_t *s, int64_t now_ms, int16_t *pcm, size_t samples)
{
    bool audio = false;
    if (!s->have_codec || s->closing || !s->recv_enabled) {
        memset(pcm, 0, samples * sizeof(int16_t));
        if (s->wav && !s->closing)
            record_silence(s, MD_WAV_CALLER);
        return false;
    }
    for (int i = 0; i < 3 && s->fifo_len < samples; i++)
        fifo_decode_one(s, now_ms, &audio);
    size_t n = s->fifo_len < samples ? s->fifo_len : samples;
    memcpy(pcm, s->fifo, n * sizeof(int16_t));
    if (n < samples)
        memset(pcm + n, 0, (samples - n) * sizeof(int16_t));
    memmove(s->fifo, s->fifo + n, (s->fifo_len - n) * sizeof(int16_t));
    s->fifo_len -= n;
    return audio;
}

/* ---- configuration ---- */

static lc_status_t
set_codec(md_rtp_session_t *s, const md_sdp_neg_t *neg)
{
    const md_codec_desc_t *d = md_codec_desc(neg->codec);
    if (d == NULL)
        return LC_ERR_INVALID;
    md_encoder_t *enc = NULL;
    md_decoder_t *dec = NULL;
    md_jitter_t *jb = NULL;
    md_jitter_opts_t jo = {.ptime_ms = MD_RTP_FRAME_MS,
                           .rtp_clock_hz = d->rtp_clock_hz,
                           .min_delay_ms = 20,
                           .target_max_ms = 40,
                           .max_delay_ms = 200};
    lc_status_t st;
    LC_CHECK(st, md_encoder_create(neg->codec, &neg->params, &enc));
    LC_CHECK(st, md_decoder_create(neg->codec, &neg->params, &dec));
    LC_CHECK(st, md_jitter_create(&jo, &jb));
    md_encoder_destroy(s->enc);
    md_decoder_destroy(s->dec);
    md_jitter_destroy(s->jb);
    s->enc = enc;
    s->dec = dec;
    s->jb = jb;
    s->codec = neg->codec;
    s->clock_hz = d->rtp_clock_hz;
    s->ts_step = md_codec_timestamp_step(neg->codec, MD_RTP_FRAME_MS);
    s->have_codec = true;
    s->marker_next = true;
    s->fifo_len = 0;
    memset(&s->rx_stats, 0, sizeof(s->rx_stats));
    return LC_OK;
done:
    md_encoder_destroy(enc);
    md_decoder_destroy(dec);
    md_jitter_destroy(jb);
    return st;
}

static lc_status_t
set_srtp(md_rtp_session_t *s, const md_sdp_neg_t *neg, const md_srtp_crypto_t *local)
{
    if (!neg->srtp || local == NULL) {
        md_srtp_destroy(s->srtp_in);
        md_srtp_destroy(s->srtp_out);
        s->srtp_in = s->srtp_out = NULL;
        s->have_key_in = s->have_key_out = false;
        return LC_OK;
    }
    if (!s->have_key_in || memcmp(&s->key_in, &neg->remote_crypto, sizeof(s->key_in)) != 0) {
        md_srtp_t *in = NULL;
        LC_TRY(md_srtp_create(&neg->remote_crypto, MD_SRTP_INBOUND, &in));
        md_srtp_destroy(s->srtp_in);
        s->srtp_in = in;
        s->key_in = neg->remote_crypto;
        s->have_key_in = true;
    }
    if (!s->have_key_out || memcmp(&s->key_out, local, sizeof(s->key_out)) != 0) {
        md_srtp_t *out = NULL;
        LC_TRY(md_srtp_create(local, MD_SRTP_OUTBOUND, &out));
        md_srtp_destroy(s->srtp_out);
        s->srtp_out = out;
        s->key_out = *local;
        s->have_key_out = true;
    }
    return LC_OK;
}

lc_status_t
md_rtp_session_apply(md_rtp_session_t *s, const md_sdp_neg_t *neg,
                     const md_srtp_crypto_t *local_crypto)
{
    if (!s->have_codec || s->codec != neg->codec)
        LC_TRY(set_codec(s, neg));
    s->pt = neg->pt;
    s->te_pt = neg->te_pt;
    s->te_clock_hz = neg->te_clock_hz;
    if (s->te_pt >= 0 && s->te_clock_hz != s->clock_hz)
        s->te_pt = -1; /* RFC 4733 section 2.1: events use the audio codec's clock */
    bool want_inband = s->te_pt < 0 && is_g711(s->codec);
    if (want_inband && s->inband == NULL)
        md_inband_dtmf_create(on_inband, s, &s->inband);
    else if (!want_inband && s->inband) {
        md_inband_dtmf_destroy(s->inband);
        s->inband = NULL;
    }
    LC_TRY(set_srtp(s, neg, local_crypto));
    bool had = s->have_remote;
    struct sockaddr_storage old = s->sdp_rtp;
    s->have_remote = false;
    if (neg->remote_rtp_port > 0 &&
        md_sip_addr_from_ip(neg->remote_addr, neg->remote_rtp_port, &s->sdp_rtp)) {
        md_sip_addr_from_ip(neg->remote_addr,
                            neg->remote_rtcp_port > 0 ? neg->remote_rtcp_port
                                                      : neg->remote_rtp_port + 1,
                            &s->sdp_rtcp);
        s->have_remote = true;
        ip_of((const struct sockaddr *) &s->sdp_rtp, &s->trusted[1]);
        if (had && !md_sip_addr_equal(&old, &s->sdp_rtp)) {
            /* the peer moved its media (re-INVITE): follow it */
            s->latched = s->rtcp_latched = false;
            s->candidate_count = 0;
        }
    }
    s->send_enabled = neg->local_dir == MD_SDP_SENDRECV || neg->local_dir == MD_SDP_SENDONLY;
    s->recv_enabled = neg->local_dir == MD_SDP_SENDRECV || neg->local_dir == MD_SDP_RECVONLY;
    if (!s->send_enabled)
        s->marker_next = true;
    return LC_OK;
}

/* ---- life cycle ---- */

static void
closed(uv_handle_t *h)
{
    md_rtp_session_t *s = h->data;
    if (--s->open_handles > 0)
        return;
    md_rtp_ports_release(s->ports, s->port);
    md_encoder_destroy(s->enc);
    md_decoder_destroy(s->dec);
    md_jitter_destroy(s->jb);
    md_srtp_destroy(s->srtp_in);
    md_srtp_destroy(s->srtp_out);
    md_inband_dtmf_destroy(s->inband);
    md_resampler_destroy(s->wav_down);
    free(s);
}

static bool
bind_pair(md_rtp_session_t *s, const char *bind_addr, int port)
{
    struct sockaddr_storage a;
    if (!md_sip_addr_from_ip(bind_addr, port, &a))
        return false;
    if (uv_udp_bind(&s->rtp, (const struct sockaddr *) &a, 0) != 0)
        return false;
    set_port(&a, port + 1);
    return uv_udp_bind(&s->rtcp, (const struct sockaddr *) &a, 0) == 0;
}

lc_status_t
md_rtp_session_create(const md_rtp_session_opts_t *opts, const md_rtp_cb_t *cb,
                      md_rtp_session_t **out)
{
    *out = NULL;
    for (int attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
        int port;
        if (!md_rtp_ports_acquire(opts->ports, &port))
            return LC_ERR_FULL;
        md_rtp_session_t *s = LC_NEW(md_rtp_session_t);
        s->loop = opts->loop;
        s->ports = opts->ports;
        s->port = port;
        uv_udp_init(opts->loop, &s->rtp);
        uv_udp_init(opts->loop, &s->rtcp);
        s->rtp.data = s->rtcp.data = s;
        s->open_handles = 2;
        if (!bind_pair(s, opts->bind_addr, port)) {
            /* taken by someone else: close (this pair stays reserved until then) */
            s->closing = true;
            uv_close((uv_handle_t *) &s->rtp, closed);
            uv_close((uv_handle_t *) &s->rtcp, closed);
            continue;
        }
        uv_unref((uv_handle_t *) &s->rtp);
        uv_unref((uv_handle_t *) &s->rtcp);
        if (cb)
            s->cb = *cb;
        s->te_pt = -1;
        lc_random_bytes(&s->ssrc, sizeof(s->ssrc));
        lc_random_bytes(&s->seq, sizeof(s->seq));
        lc_random_bytes(&s->ts, sizeof(s->ts));
        s->seq &= 0x7fff; /* RFC 3550 5.1: random, and far from a wrap at first */
        s->marker_next = true;
        s->next_rtcp_ms = lc_time_mono_ms() + MD_RTCP_INTERVAL_MS;
        struct sockaddr_storage peer;
        if (opts->trusted_ip && md_sip_addr_from_ip(opts->trusted_ip, 0, &peer))
            ip_of((const struct sockaddr *) &peer, &s->trusted[0]);
        lc_metrics_t *reg = opts->metrics;
        const char *ph = "RTP packets, by direction";
        const char *dh = "RTP/RTCP packets dropped, by reason";
        s->m_rx = lc_metrics_counter(reg, "voxi_media_rtp_packets_total", ph, "direction=\"in\"");
        s->m_tx = lc_metrics_counter(reg, "voxi_media_rtp_packets_total", ph, "direction=\"out\"");
        s->m_drop_invalid =
            lc_metrics_counter(reg, "voxi_media_rtp_dropped_total", dh, "reason=\"invalid\"");
        s->m_drop_source =
            lc_metrics_counter(reg, "voxi_media_rtp_dropped_total", dh, "reason=\"source\"");
        s->m_drop_pt =
            lc_metrics_counter(reg, "voxi_media_rtp_dropped_total", dh, "reason=\"payload_type\"");
        s->m_drop_srtp =
            lc_metrics_counter(reg, "voxi_media_rtp_dropped_total", dh, "reason=\"srtp\"");
        uv_udp_recv_start(&s->rtp, rx_alloc, on_rtp);
        uv_udp_recv_start(&s->rtcp, rx_alloc, on_rtcp_sock);
        *out = s;
        return LC_OK;
    }
    return LC_ERR_FULL;
}

int
md_rtp_session_port(const md_rtp_session_t *s)
{
    return s->port;
}

int64_t
md_rtp_session_last_rx_ms(const md_rtp_session_t *s)
{
    return s->last_rx_ms;
}

md_codec_id_t
md_rtp_session_codec(const md_rtp_session_t *s)
{
    return s->codec;
}

void
md_rtp_session_get_stats(const md_rtp_session_t *s, md_rtp_stats_t *out)
{
    *out = s->stats;
    if (s->jb)
        md_jitter_get_stats(s->jb, &out->jitter);
    out->cumulative_lost = s->have_ssrc ? md_rtcp_rx_cumulative_lost(&s->rx_stats) : 0;
}

void
md_rtp_session_destroy(md_rtp_session_t *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    s->wav = NULL;
    uv_udp_recv_stop(&s->rtp);
    uv_udp_recv_stop(&s->rtcp);
    uv_close((uv_handle_t *) &s->rtp, closed);
    uv_close((uv_handle_t *) &s->rtcp, closed);
}
