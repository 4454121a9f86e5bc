/*
 * md_codec_opus: Opus (RFC 6716) over RTP (RFC 7587): 48 kHz RTP clock whatever the audio
 * bandwidth (section 4.1), mono here. libopus encodes and decodes 16 kHz PCM directly, so no
 * resampling. Loss: the decoder's own concealment, or in-band FEC (LBRR) taken from the next
 * packet when the jitter buffer has it (opus_decode with decode_fec = 1).
 */
#include <stdbool.h>
#include <stdlib.h>

#include <opus/opus.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "md_codec_impl.h"

/* Frame sizes Opus accepts, at 16 kHz: 2.5, 5, 10, 20, 40, 60 ms. */
#define OPUS_MIN_FRAME (MD_PCM_SAMPLES_PER_MS * 5 / 2)
/* Expected loss the encoder plans its FEC for when FEC is on (RFC 7587 section 3.3 leaves
 * the amount to the sender). */
#define OPUS_FEC_LOSS_PCT 10

static void
opus_enc_fini(void *state)
{
    if (state != NULL)
        opus_encoder_destroy(state);
}

static void
opus_dec_fini(void *state)
{
    if (state != NULL)
        opus_decoder_destroy(state);
}

/* maxplaybackrate (RFC 7587 section 6.1) caps the audio bandwidth we send. */
static int
max_bandwidth(int max_playback_rate_hz)
{
    if (max_playback_rate_hz <= 0)
        return OPUS_BANDWIDTH_WIDEBAND; /* 16 kHz input: wideband is the most there is */
    if (max_playback_rate_hz <= 8000)
        return OPUS_BANDWIDTH_NARROWBAND;
    if (max_playback_rate_hz <= 12000)
        return OPUS_BANDWIDTH_MEDIUMBAND;
    return OPUS_BANDWIDTH_WIDEBAND;
}

static lc_status_t
opus_enc_init(const md_codec_desc_t *desc, const md_codec_params_t *params, void **state)
{
    (void) desc;
    if (params->ptime_ms != 10 && params->ptime_ms != 20 && params->ptime_ms != 40 &&
        params->ptime_ms != 60)
        return LC_ERR_INVALID;
    int err = 0;
    OpusEncoder *enc = opus_encoder_create(MD_PCM_RATE_HZ, 1, OPUS_APPLICATION_VOIP, &err);
    if (enc == NULL) {
        LC_WARN("codec", "opus_encoder_create: %s", opus_strerror(err));
        return LC_ERR_INTERNAL;
    }
    int rc = opus_encoder_ctl(
        enc, OPUS_SET_MAX_BANDWIDTH(max_bandwidth(params->opus_max_playback_rate_hz)));
    if (rc == OPUS_OK)
        rc = opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(params->opus_complexity));
    if (rc == OPUS_OK && params->opus_bitrate_bps > 0) {
        int bitrate = params->opus_bitrate_bps;
        if (bitrate < 6000)
            bitrate = 6000;
        if (bitrate > 510000)
            bitrate = 510000;
        rc = opus_encoder_ctl(enc, OPUS_SET_BITRATE(bitrate));
    }
    if (rc == OPUS_OK && params->opus_inband_fec) {
        rc = opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
        if (rc == OPUS_OK)
            rc = opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(OPUS_FEC_LOSS_PCT));
    }
    if (rc != OPUS_OK) {
        LC_WARN("codec", "opus_encoder_ctl: %s", opus_strerror(rc));
        opus_encoder_destroy(enc);
        return LC_ERR_INTERNAL;
    }
    *state = enc;
    return LC_OK;
}

static lc_status_t
opus_dec_init(const md_codec_desc_t *desc, const md_codec_params_t *params, void **state)
{
    (void) desc;
    (void) params;
    int err = 0;
    OpusDecoder *dec = opus_decoder_create(MD_PCM_RATE_HZ, 1, &err);
    if (dec == NULL) {
        LC_WARN("codec", "opus_decoder_create: %s", opus_strerror(err));
        return LC_ERR_INTERNAL;
    }
    *state = dec;
    return LC_OK;
}

static bool
opus_frame_ok(size_t samples)
{
    switch (samples) {
    case OPUS_MIN_FRAME:
    case OPUS_MIN_FRAME * 2:
    case OPUS_MIN_FRAME * 4:
    case OPUS_MIN_FRAME * 8:
    case OPUS_MIN_FRAME * 16:
    case OPUS_MIN_FRAME * 24:
        return true;
    default:
        return false;
    }
}

static size_t
opus_enc(void *state, const int16_t *pcm16k, size_t samples, uint8_t *out, size_t out_size)
{
    if (out_size > MD_MAX_PAYLOAD_BYTES)
        out_size = MD_MAX_PAYLOAD_BYTES;
    int n = opus_encode(state, pcm16k, (int) samples, out, (opus_int32) out_size);
    if (n < 0) {
        LC_LOG_RL(LC_LOG_WARN, "codec", 1, "opus_encode: %s", opus_strerror(n));
        return 0;
    }
    return (size_t) n;
}

static int
opus_dec(void *state, const uint8_t *payload, size_t len, int16_t *out, size_t out_samples)
{
    if (len > MD_MAX_PAYLOAD_BYTES * 6) /* 120 ms of the largest frames: still hostile */
        return -1;
    if (out_samples > MD_MAX_FRAME_SAMPLES * 2)
        out_samples = MD_MAX_FRAME_SAMPLES * 2; /* keeps the int conversion obvious */
    int n = opus_decode(state, payload, (opus_int32) len, out, (int) out_samples, 0);
    if (n < 0) {
        LC_LOG_RL(LC_LOG_WARN, "codec", 1, "opus_decode of %zu bytes: %s", len, opus_strerror(n));
        return -1;
    }
    return n;
}

static int
opus_dec_plc(void *state, const uint8_t *next_payload, size_t next_len, int16_t *out,
             size_t samples)
{
    /* Opus conceals in multiples of 2.5 ms; pad an odd remainder with silence. */
    size_t whole = samples - samples % OPUS_MIN_FRAME;
    int n = 0;
    if (whole > 0) {
        if (next_payload != NULL && next_len > 0 && next_len <= MD_MAX_PAYLOAD_BYTES * 6)
            n = opus_decode(state, next_payload, (opus_int32) next_len, out, (int) whole, 1);
        else
            n = opus_decode(state, NULL, 0, out, (int) whole, 0);
        if (n < 0) {
            /* A corrupt next packet: fall back to plain concealment. */
            n = opus_decode(state, NULL, 0, out, (int) whole, 0);
            if (n < 0)
                n = 0;
        }
    }
    for (size_t i = (size_t) n; i < samples; i++)
        out[i] = 0;
    return (int) samples;
}

const md_codec_ops_t md_codec_opus_ops = {
    .encoder_init = opus_enc_init,
    .encoder_fini = opus_enc_fini,
    .encode = opus_enc,
    .decoder_init = opus_dec_init,
    .decoder_fini = opus_dec_fini,
    .decode = opus_dec,
    .decode_plc = opus_dec_plc,
    .frame_ok = opus_frame_ok,
};
