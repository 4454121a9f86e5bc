/*
 * md_codec: one descriptor per codec (rtpengine's codeclib idea), behind one interface.
 *
 * Every call's audio is 16 kHz mono int16 PCM inside the worker; a codec instance converts
 * between that and its wire format, resampling (speexdsp) when its own rate differs:
 *   PCMU/PCMA  8 kHz, RFC 3551        payload types 0 / 8
 *   G722       16 kHz audio, RTP clock 8000 (RFC 3551 section 4.5.2), spandsp
 *   opus       48 kHz RTP clock, RFC 7587, libopus (fmtp: useinbandfec, maxplaybackrate,
 *              stereo=0, ptime; decoding at 16 kHz directly)
 * Frames are 20 ms by default (ptime 10..60 supported in multiples of 10 ms where the codec
 * allows). Encoders and decoders keep state: one instance per call direction.
 *
 * Threads: an instance is used by one thread at a time.
 */
#ifndef MD_CODEC_H
#define MD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

#define MD_PCM_RATE_HZ 16000
#define MD_PCM_SAMPLES_PER_MS 16
#define MD_MAX_FRAME_SAMPLES (MD_PCM_SAMPLES_PER_MS * 60) /* 60 ms at 16 kHz */
#define MD_MAX_PAYLOAD_BYTES 1275                         /* largest Opus frame */

typedef enum {
    MD_CODEC_PCMU = 0,
    MD_CODEC_PCMA,
    MD_CODEC_G722,
    MD_CODEC_OPUS,
    MD_CODEC_COUNT_,
} md_codec_id_t;

typedef struct {
    md_codec_id_t id;
    const char *encoding_name; /* SDP rtpmap name: "PCMU", "PCMA", "G722", "opus" */
    int static_payload_type;   /* 0, 8, 9, or -1 for dynamic (opus) */
    int rtp_clock_hz;          /* 8000, 8000, 8000, 48000 */
    int channels_in_rtpmap;    /* 0 = omit; opus: 2 (RFC 7587 requires "opus/48000/2") */
    int audio_rate_hz;         /* 8000, 8000, 16000, 48000 */
} md_codec_desc_t;

/* NULL for an unknown name (case-insensitive match on encoding name and clock). */
const md_codec_desc_t *md_codec_find(const char *encoding_name, int rtp_clock_hz);
const md_codec_desc_t *md_codec_desc(md_codec_id_t id);

/* Codec parameters from SDP fmtp (opus) and ptime. */
typedef struct {
    int ptime_ms;                  /* 20 default */
    bool opus_inband_fec;          /* useinbandfec=1 */
    int opus_max_playback_rate_hz; /* maxplaybackrate, 0 = 48000 */
    int opus_bitrate_bps;          /* 0 = codec default for the rate */
    int opus_complexity;           /* encoder complexity 1..10, 0 = MD_OPUS_COMPLEXITY_DEFAULT */
} md_codec_params_t;

/* libopus' default is 10; measured here, 5 halves the encoder's CPU (about 100 us instead of
 * 220 us per 20 ms frame at 16 kHz) for a hardly audible difference on speech, which is what
 * lets a worker carry its share of Opus calls. */
#define MD_OPUS_COMPLEXITY_DEFAULT 5

typedef struct md_encoder md_encoder_t;
typedef struct md_decoder md_decoder_t;

lc_status_t md_encoder_create(md_codec_id_t id, const md_codec_params_t *params,
                              md_encoder_t **out);
void md_encoder_destroy(md_encoder_t *enc);
/* Encodes one frame of ptime_ms of 16 kHz PCM (samples = 16 * ptime_ms). Returns the payload
 * length written to out (out_size >= MD_MAX_PAYLOAD_BYTES is always enough), 0 on error. */
size_t md_encode(md_encoder_t *enc, const int16_t *pcm16k, size_t samples, uint8_t *out,
                 size_t out_size);
/* RTP timestamp units per frame of `ptime_ms` for this codec (e.g. 160 for PCMU at 20 ms,
 * 160 for G722, 960 for opus). */
uint32_t md_codec_timestamp_step(md_codec_id_t id, int ptime_ms);

lc_status_t md_decoder_create(md_codec_id_t id, const md_codec_params_t *params,
                              md_decoder_t **out);
void md_decoder_destroy(md_decoder_t *dec);
/* Decodes one payload into 16 kHz PCM; returns samples written (<= out_samples), or -1 on
 * a corrupt payload. */
int md_decode(md_decoder_t *dec, const uint8_t *payload, size_t len, int16_t *out,
              size_t out_samples);
/* Loss concealment for one missing frame of `samples` 16 kHz samples (opus: its PLC, or FEC
 * from `next_payload` when given and the encoder sent FEC; G.711/G.722: repeat the last
 * pitch period with fading, then silence). Returns samples written. */
int md_decode_plc(md_decoder_t *dec, const uint8_t *next_payload, size_t next_len, int16_t *out,
                  size_t samples);

#endif
