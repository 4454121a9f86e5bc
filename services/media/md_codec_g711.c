/*
 * md_codec_g711: PCMU and PCMA (ITU-T G.711, RFC 3551 section 4.5.14), 8 kHz on the wire and
 * 16 kHz inside. Decoding upsamples with md_resample's half-band interpolator, which keeps
 * the decoded G.711 values as the even 16 kHz samples (MD_RESAMPLE_HALFBAND_DELAY samples
 * later), so what arrived can be recovered bit-exactly from the 16 kHz audio. Encoding
 * downsamples with speexdsp, whose anti-aliasing filter 16 kHz sources (TTS) need. md_plc
 * conceals at 8 kHz before the upsampler so its history stays continuous across a loss.
 */
#include <stdbool.h>
#include <stdlib.h>

#include <spandsp.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "md_codec_impl.h"
#include "md_g711.h"
#include "md_plc.h"
#include "md_resample.h"

/* Work in chunks of the largest frame: 60 ms at 8 kHz. */
#define CHUNK_8K (MD_MAX_FRAME_SAMPLES / 2)

typedef struct {
    md_codec_id_t id;
    md_resampler_t *resampler; /* 16k -> 8k (encoder) or 8k -> 16k (decoder) */
    md_plc_t *plc;             /* decoder only */
} pcm_state_t;

void
md_g711_decode(md_codec_id_t id, const uint8_t *in, size_t n, int16_t *out)
{
    if (id == MD_CODEC_PCMA) {
        for (size_t i = 0; i < n; i++)
            out[i] = alaw_to_linear(in[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            out[i] = ulaw_to_linear(in[i]);
    }
}

void
md_g711_encode(md_codec_id_t id, const int16_t *in, size_t n, uint8_t *out)
{
    if (id == MD_CODEC_PCMA) {
        for (size_t i = 0; i < n; i++)
            out[i] = linear_to_alaw(in[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            out[i] = linear_to_ulaw(in[i]);
    }
}

static void
pcm_fini(void *state)
{
    pcm_state_t *st = state;
    if (st == NULL)
        return;
    md_resampler_destroy(st->resampler);
    md_plc_destroy(st->plc);
    free(st);
}

static lc_status_t
pcm_encoder_init(const md_codec_desc_t *desc, const md_codec_params_t *params, void **state)
{
    (void) params;
    pcm_state_t *st = LC_NEW(pcm_state_t);
    st->id = desc->id;
    lc_status_t s = md_resampler_create(MD_PCM_RATE_HZ, desc->audio_rate_hz,
                                        MD_RESAMPLE_QUALITY_DEFAULT, &st->resampler);
    if (s != LC_OK) {
        pcm_fini(st);
        return s;
    }
    *state = st;
    return LC_OK;
}

static lc_status_t
pcm_decoder_init(const md_codec_desc_t *desc, const md_codec_params_t *params, void **state)
{
    (void) params;
    pcm_state_t *st = LC_NEW(pcm_state_t);
    st->id = desc->id;
    lc_status_t s = LC_OK;
    /* Sample-preserving upsampler: every other 16 kHz sample is the exact G.711 value. */
    LC_CHECK(s, md_resampler_create_halfband_up(&st->resampler));
    LC_CHECK(s, md_plc_create(desc->audio_rate_hz, &st->plc));
    *state = st;
    st = NULL;
done:
    pcm_fini(st);
    return s;
}

static bool
pcm_frame_ok(size_t samples)
{
    return samples % 2 == 0; /* two 16 kHz samples per 8 kHz sample */
}

static size_t
pcm_encode(void *state, const int16_t *pcm16k, size_t samples, uint8_t *out, size_t out_size)
{
    pcm_state_t *st = state;
    size_t n8 = samples / 2;
    if (out_size < n8)
        return 0;
    int16_t pcm8k[CHUNK_8K];
    size_t got = md_resample(st->resampler, pcm16k, samples, pcm8k, CHUNK_8K);
    /* The 2:1 ratio gives exactly half; anything else would be a resampler bug. */
    if (got != n8)
        return 0;
    md_g711_encode(st->id, pcm8k, n8, out);
    return n8;
}

static int
pcm_decode(void *state, const uint8_t *payload, size_t len, int16_t *out, size_t out_samples)
{
    pcm_state_t *st = state;
    if (len > out_samples / 2) {
        LC_LOG_RL(LC_LOG_WARN, "codec", 1, "G.711 payload of %zu bytes does not fit %zu samples",
                  len, out_samples);
        return -1;
    }
    size_t written = 0;
    while (len > 0) {
        size_t n = len < CHUNK_8K ? len : CHUNK_8K;
        int16_t pcm8k[CHUNK_8K];
        md_g711_decode(st->id, payload, n, pcm8k);
        md_plc_good(st->plc, pcm8k, n);
        written += md_resample(st->resampler, pcm8k, n, out + written, out_samples - written);
        payload += n;
        len -= n;
    }
    return (int) written;
}

static int
pcm_decode_plc(void *state, const uint8_t *next_payload, size_t next_len, int16_t *out,
               size_t samples)
{
    (void) next_payload;
    (void) next_len;
    pcm_state_t *st = state;
    int16_t pcm8k[CHUNK_8K];
    size_t n8 = samples / 2; /* samples <= MD_MAX_FRAME_SAMPLES, checked by the dispatcher */
    md_plc_conceal(st->plc, pcm8k, n8);
    size_t written = md_resample(st->resampler, pcm8k, n8, out, samples);
    for (size_t i = written; i < samples; i++) /* an odd sample count leaves one over */
        out[i] = i > 0 ? out[i - 1] : 0;
    return (int) samples;
}

const md_codec_ops_t md_codec_g711_ops = {
    .encoder_init = pcm_encoder_init,
    .encoder_fini = pcm_fini,
    .encode = pcm_encode,
    .decoder_init = pcm_decoder_init,
    .decoder_fini = pcm_fini,
    .decode = pcm_decode,
    .decode_plc = pcm_decode_plc,
    .frame_ok = pcm_frame_ok,
};
