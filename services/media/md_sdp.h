/*
 * md_sdp: SDP offer/answer for one audio stream (RFC 4566 parsed by libosip2's
 * sdp_message_parse, RFC 3264 negotiation, our own SDP written with snprintf).
 *
 * Supported: PCMU, PCMA, G722 and opus (md_codec's table, opus fmtp per RFC 7587 section
 * 6.1), telephone-event (RFC 4733 section 7.1), ptime, sendrecv/sendonly/recvonly/inactive
 * (RFC 3264 section 6.1) and the RFC 2543 hold address 0.0.0.0, RTP/AVP and RTP/SAVP with
 * a=crypto (RFC 4568, read by md_srtp: AES_CM_128_HMAC_SHA1_80 and _32, no MKI), a=rtcp
 * (RFC 3605).
 *
 * The first audio m-line with a codec we support is used; every other m-line is rejected
 * with port 0 in the answer, which keeps the m-line count and order (RFC 3264 section 6).
 * Parsed input is untrusted: counts, lengths and numbers are bounded; addresses must be IP
 * literals.
 *
 * Threads: pure functions; any thread.
 */
#ifndef MD_SDP_H
#define MD_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "md_codec.h"
#include "md_srtp.h"

#define MD_SDP_MAX_MEDIA 8
#define MD_SDP_MAX_FORMATS 24
#define MD_SDP_MAX_CRYPTO 4
#define MD_SDP_MAX_BYTES 8192

typedef enum {
    MD_SDP_SENDRECV = 0,
    MD_SDP_SENDONLY,
    MD_SDP_RECVONLY,
    MD_SDP_INACTIVE,
} md_sdp_dir_t;

typedef struct {
    int pt;
    char name[32]; /* rtpmap encoding name; static types filled from RFC 3551 */
    int clock_hz;
    int channels;
    char fmtp[256];
} md_sdp_format_t;

typedef struct {
    char value[160]; /* the a=crypto value as written (md_srtp_crypto_parse reads it) */
} md_sdp_crypto_t;

typedef struct {
    char media[16];
    char proto[24];
    int port;
    int rtcp_port; /* a=rtcp or port + 1 */
    char addr[64]; /* the c= address (media level, else session) */
    bool ipv6;
    md_sdp_dir_t dir;
    int ptime_ms; /* 0 = absent */
    md_sdp_format_t formats[MD_SDP_MAX_FORMATS];
    int nformats;
    md_sdp_crypto_t crypto[MD_SDP_MAX_CRYPTO];
    int ncrypto;
    char fmt_raw[96]; /* the m-line's format list as written, for echoing a rejection */
} md_sdp_media_t;

typedef struct {
    uint64_t sess_id, sess_version;
    md_sdp_media_t media[MD_SDP_MAX_MEDIA];
    int nmedia;
} md_sdp_t;

/* What was agreed for the audio stream. */
typedef struct {
    int media_index; /* the m-line used */
    md_codec_id_t codec;
    int pt;
    md_codec_params_t params; /* for our encoder: the peer's ptime/opus wishes */
    int te_pt;                /* -1 = no telephone-event */
    int te_clock_hz;
    md_sdp_dir_t remote_dir; /* as the peer declared it */
    md_sdp_dir_t local_dir;  /* ours, as in the answer */
    char remote_addr[64];
    int remote_rtp_port; /* 0: the stream is rejected or on hold without address */
    int remote_rtcp_port;
    bool remote_hold; /* sendonly / inactive / c=0.0.0.0 */
    bool srtp;
    md_srtp_crypto_t remote_crypto; /* when srtp: the peer's key (a secret) */
} md_sdp_neg_t;

typedef struct {
    const md_codec_id_t *codecs; /* what we accept/offer, in our preference order */
    size_t ncodecs;
    bool telephone_event;
    bool srtp_allowed; /* accept RTP/SAVP offers */
    bool srtp_offer;   /* offer RTP/SAVP ourselves */
} md_sdp_prefs_t;

/* Our side of an SDP we write. */
typedef struct {
    const char *addr; /* IP literal */
    int rtp_port;
    uint64_t sess_id, sess_version;
    md_sdp_dir_t dir;   /* offers: our direction (sendonly to hold); answers: neg's */
    const char *crypto; /* our a=crypto value (md_srtp_crypto_format); NULL = plain RTP */
} md_sdp_local_t;

/* LC_OK, LC_ERR_INVALID (not SDP / malformed / too large). */
lc_status_t md_sdp_parse(const char *body, size_t len, md_sdp_t *out);

/* Picks the stream and codec for an offer. LC_ERR_NOT_FOUND: nothing acceptable (488). */
lc_status_t md_sdp_negotiate(const md_sdp_t *offer, const md_sdp_prefs_t *prefs, md_sdp_neg_t *out);

/* Reads the answer to an offer we made with these prefs. LC_ERR_NOT_FOUND when it accepted
 * nothing we offered. */
lc_status_t md_sdp_accept_answer(const md_sdp_t *answer, const md_sdp_prefs_t *prefs,
                                 md_sdp_neg_t *out);

/* Writes our answer to `offer` for `neg`; returns the length (0 if out_size is too small). */
size_t md_sdp_write_answer(const md_sdp_t *offer, const md_sdp_neg_t *neg,
                           const md_sdp_local_t *local, char *out, size_t out_size);

/* Writes an offer; `current` (may be NULL) pins the codec already in use (re-INVITE),
 * otherwise every codec of prefs is offered. Returns the length (0 if too small). */
size_t md_sdp_write_offer(const md_sdp_prefs_t *prefs, const md_sdp_neg_t *current,
                          const md_sdp_local_t *local, char *out, size_t out_size);

const char *md_sdp_dir_name(md_sdp_dir_t dir);

#endif
