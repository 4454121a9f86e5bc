/*
 * md_rtp_session: the RTP/RTCP port pair of one call and everything per packet:
 * receive (SRTP unprotect, RFC 3550 parse, latching, jitter buffer, RFC 4733
 * events, RTCP stats) and send (encode, packetise, SRTP protect).
 *
 * Ports: an even RTP port and the next odd one for RTCP (RFC 3550 section 11),
 * taken round-robin from [min, max] so a port just released is not reused at
 * once (stray packets of the previous call land nowhere).
 *
 * Symmetric RTP: we send to the address the peer's packets come from, not the
 * one in its SDP (they differ behind NAT). Guard against hijack: the first
 * valid packet latches the source at once only when its IP is the SDP address
 * or the SIP peer's; any other source must send MD_RTP_LATCH_PACKETS valid
 * packets in a row first. Once latched, packets from elsewhere are dropped
 * (counted) unless the latched source fell silent for MD_RTP_RELATCH_SILENCE_MS
 * and the newcomer is a trusted IP (NAT rebinding).
 *
 * Sending: one frame per playout tick (20 ms). Sequence numbers and timestamps
 * start random and advance by one frame per tick also while nothing is sent
 * (hold), so the peer sees time pass; the marker bit (RFC 3551 section 4.1) is
 * set on the first packet, after every gap and after a codec change. A DTMF
 * digit (RFC 4733 section 2.5.1) replaces audio packets while it lasts.
 *
 * Bad input (short, wrong version, bad lengths, unknown payload type, SRTP
 * replay or tampering, strangers) is dropped and counted; nothing on the packet
 * path allocates.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_RTP_SESSION_H
#define MD_RTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_status.h"
#include "md_codec.h"
#include "md_jitter.h"
#include "md_sdp.h"
#include "md_srtp.h"
#include "md_wav.h"

#define MD_RTP_FRAME_MS 20
#define MD_RTP_FRAME_SAMPLES (MD_PCM_SAMPLES_PER_MS * MD_RTP_FRAME_MS)
#define MD_RTP_LATCH_PACKETS 5
#define MD_RTP_RELATCH_SILENCE_MS 2000
#define MD_RTCP_INTERVAL_MS 5000

/* ---- port pool ---- */

typedef struct md_rtp_ports md_rtp_ports_t;

md_rtp_ports_t *md_rtp_ports_create(int min_port, int max_port);
void md_rtp_ports_destroy(md_rtp_ports_t *p);
/* Reserves the next free even port; false when none is left. */
bool md_rtp_ports_acquire(md_rtp_ports_t *p, int *port);
void md_rtp_ports_release(md_rtp_ports_t *p, int port);
size_t md_rtp_ports_available(const md_rtp_ports_t *p);

/* ---- session ---- */

typedef struct md_rtp_session md_rtp_session_t;

typedef struct {
    /* A DTMF digit: end=false when it starts, end=true (with its duration) when
     * over. source: "rfc4733", or "inband" (tones detected in G.711 audio when
     * the peer negotiated no telephone-event). */
    void (*on_dtmf)(void *arg, char digit, int duration_ms, bool end, const char *source);
    void *arg;
} md_rtp_cb_t;

typedef struct {
    uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
    uint64_t dropped_invalid; /* not RTP/RTCP, bad lengths */
    uint64_t dropped_source;  /* from a stranger */
    uint64_t dropped_pt;      /* payload type not negotiated */
    uint64_t dropped_srtp;    /* replayed / tampered / undecryptable */
    uint64_t ssrc_changes;
    uint64_t relatched;
    uint64_t rtcp_rx, rtcp_tx;
    md_jitter_stats_t jitter;
    double rtt_ms;           /* from the peer's report blocks; 0 unknown */
    double remote_jitter_ms; /* the peer's view of our stream */
    int32_t remote_cumulative_lost;
    int32_t cumulative_lost; /* our view of the peer's stream */
} md_rtp_stats_t;

typedef struct {
    uv_loop_t *loop;
    md_rtp_ports_t *ports;
    const char *bind_addr;
    const char *trusted_ip; /* the SIP peer's IP: may latch at once */
    lc_metrics_t *metrics;  /* may be NULL */
} md_rtp_session_opts_t;

/* Binds a port pair (trying further pairs when one is taken). LC_ERR_FULL when
 * the range is exhausted. */
lc_status_t md_rtp_session_create(const md_rtp_session_opts_t *opts, const md_rtp_cb_t *cb,
                                  md_rtp_session_t **out);
int md_rtp_session_port(const md_rtp_session_t *s);

/*
 * Applies a negotiation: remote address, codec (a change recreates encoder,
 * decoder and jitter buffer and marks the next packet), telephone-event payload
 * type, direction (we send when local_dir is sendrecv/sendonly and the peer is
 * not on hold), SRTP keys (local_crypto: ours, when neg->srtp). LC_ERR_INVALID
 * for a bad address or codec.
 */
lc_status_t md_rtp_session_apply(md_rtp_session_t *s, const md_sdp_neg_t *neg,
                                 const md_srtp_crypto_t *local_crypto);

/* Playout tick: 20 ms of the caller's audio at 16 kHz into pcm (silence when
 * there is none; returns false then). */
bool md_rtp_session_pull(md_rtp_session_t *s, int64_t now_ms, int16_t *pcm, size_t samples);
/* Playout tick: encodes and sends 20 ms of 16 kHz audio (or a pending DTMF
 * packet). */
void md_rtp_session_send(md_rtp_session_t *s, int64_t now_ms, const int16_t *pcm, size_t samples);
/* Queues a digit to send as RFC 4733 events (needs a negotiated
 * telephone-event). */
lc_status_t md_rtp_session_send_dtmf(md_rtp_session_t *s, char digit, int duration_ms);

/*
 * Records both directions into wav (borrowed until replaced or NULL): the
 * peer's audio on the left, ours on the right, one frame per playout tick each.
 * At rate_hz 8000 on a G.711 call the wire bytes themselves are decoded
 * (bit-exact with what was sent); otherwise the 16 kHz PCM is written
 * (resampled when rate_hz is 8000). Lost frames and silence are recorded as
 * silence.
 */
void md_rtp_session_set_recorder(md_rtp_session_t *s, md_wav_t *wav, int rate_hz);

int64_t md_rtp_session_last_rx_ms(const md_rtp_session_t *s); /* 0 = never */
void md_rtp_session_get_stats(const md_rtp_session_t *s, md_rtp_stats_t *out);
md_codec_id_t md_rtp_session_codec(const md_rtp_session_t *s);

/* Closes the sockets (asynchronously), releases the ports and frees. NULL is a
 * no-op. */
void md_rtp_session_destroy(md_rtp_session_t *s);

#endif
