/*
 * md_codec: the codec descriptor table and the dispatch from md_encoder_t / md_decoder_t to
 * each codec's functions (md_codec_impl.h). See md_codec.h.
 */
#include "md_codec.h"

#include <stdlib.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "md_codec_impl.h"

typedef struct {
    md_codec_desc_t desc;
    const md_codec_ops_t *ops;
} codec_entry_t;

/* RFC 3551 section 6 (static payload types 0, 8, 9; G.722's RTP clock is 8000 although it
 * samples at 16 kHz, section 4.5.2) and RFC 7587 section 7 (opus/48000/2). */
static const codec_entry_t codecs[MD_CODEC_COUNT_] = {
    [MD_CODEC_PCMU] = {{MD_CODEC_PCMU, "PCMU", 0, 8000, 0, 8000}, &md_codec_g711_ops},
    [MD_CODEC_PCMA] = {{MD_CODEC_PCMA, "PCMA", 8, 8000, 0, 8000}, &md_codec_g711_ops},
    [MD_CODEC_G722] = {{MD_CODEC_G722, "G722", 9, 8000, 0, 16000}, &md_codec_g722_ops},
    [MD_CODEC_OPUS] = {{MD_CODEC_OPUS, "opus", -1, 48000, 2, 48000}, &md_codec_opus_ops},
};

struct md_encoder {
    const codec_entry_t *codec;
    void *state;
};

struct md_decoder {
    const codec_entry_t *codec;
    void *state;
};

const md_codec_desc_t *
md_codec_find(const char *encoding_name, int rtp_clock_hz)
{
    if (encoding_name == NULL)
        return NULL;
    for (int i = 0; i < MD_CODEC_COUNT_; i++) {
        const md_codec_desc_t *d = &codecs[i].desc;
        if (strcasecmp(d->encoding_name, encoding_name) == 0 && d->rtp_clock_hz == rtp_clock_hz)
            return d;
    }
    return NULL;
}

const md_codec_desc_t *
md_codec_desc(md_codec_id_t id)
{
    if ((int) id < 0 || id >= MD_CODEC_COUNT_)
        return NULL;
    return &codecs[id].desc;
}

uint32_t
md_codec_timestamp_step(md_codec_id_t id, int ptime_ms)
{
    const md_codec_desc_t *d = md_codec_desc(id);
    if (d == NULL || ptime_ms <= 0)
        return 0;
    return (uint32_t) (d->rtp_clock_hz / 1000) * (uint32_t) ptime_ms;
}

/* Fills in defaults and checks what every codec shares; `out` gets the effective values. */
static lc_status_t
effective_params(md_codec_id_t id, const md_codec_params_t *params, md_codec_params_t *out,
                 const codec_entry_t **entry)
{
    if ((int) id < 0 || id >= MD_CODEC_COUNT_)
        return LC_ERR_INVALID;
    md_codec_params_t p = {.ptime_ms = 20};
    if (params != NULL) {
        p = *params;
        if (p.ptime_ms == 0)
            p.ptime_ms = 20;
    }
    /* ptime 10..60 in steps of 10 ms (RFC 3551 section 4.5: G.711 and G.722 allow any
     * multiple of their frame; opus refuses 30 and 50 itself). */
    if (p.ptime_ms < 10 || p.ptime_ms > 60 || p.ptime_ms % 10 != 0)
        return LC_ERR_INVALID;
    if (p.opus_max_playback_rate_hz < 0 || p.opus_bitrate_bps < 0 || p.opus_complexity < 0 ||
        p.opus_complexity > 10)
        return LC_ERR_INVALID;
    if (p.opus_complexity == 0)
        p.opus_complexity = MD_OPUS_COMPLEXITY_DEFAULT;
    *out = p;
    *entry = &codecs[id];
    return LC_OK;
}

lc_status_t
md_encoder_create(md_codec_id_t id, const md_codec_params_t *params, md_encoder_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    *out = NULL;
    md_codec_params_t p;
    const codec_entry_t *entry = NULL;
    LC_TRY(effective_params(id, params, &p, &entry));
    void *state = NULL;
    lc_status_t s = entry->ops->encoder_init(&entry->desc, &p, &state);
    if (s != LC_OK) {
        LC_WARN("codec", "%s encoder: %s", entry->desc.encoding_name, lc_status_name(s));
        return s;
    }
    md_encoder_t *enc = LC_NEW(md_encoder_t);
    enc->codec = entry;
    enc->state = state;
    *out = enc;
    return LC_OK;
}

void
md_encoder_destroy(md_encoder_t *enc)
{
    if (enc == NULL)
        return;
    enc->codec->ops->encoder_fini(enc->state);
    free(enc);
}

size_t
md_encode(md_encoder_t *enc, const int16_t *pcm16k, size_t samples, uint8_t *out, size_t out_size)
{
    if (enc == NULL || pcm16k == NULL || out == NULL || samples == 0 ||
        samples > MD_MAX_FRAME_SAMPLES || !enc->codec->ops->frame_ok(samples))
        return 0;
    return enc->codec->ops->encode(enc->state, pcm16k, samples, out, out_size);
}

lc_status_t
md_decoder_create(md_codec_id_t id, const md_codec_params_t *params, md_decoder_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    *out = NULL;
    md_codec_params_t p;
    const codec_entry_t *entry = NULL;
    LC_TRY(effective_params(id, params, &p, &entry));
    void *state = NULL;
    lc_status_t s = entry->ops->decoder_init(&entry->desc, &p, &state);
    if (s != LC_OK) {
        LC_WARN("codec", "%s decoder: %s", entry->desc.encoding_name, lc_status_name(s));
        return s;
    }
    md_decoder_t *dec = LC_NEW(md_decoder_t);
    dec->codec = entry;
    dec->state = state;
    *out = dec;
    return LC_OK;
}

void
md_decoder_destroy(md_decoder_t *dec)
{
    if (dec == NULL)
        return;
    dec->codec->ops->decoder_fini(dec->state);
    free(dec);
}

int
md_decode(md_decoder_t *dec, const uint8_t *payload, size_t len, int16_t *out, size_t out_samples)
{
    if (dec == NULL || payload == NULL || len == 0 || out == NULL || out_samples == 0)
        return -1;
    return dec->codec->ops->decode(dec->state, payload, len, out, out_samples);
}

int
md_decode_plc(md_decoder_t *dec, const uint8_t *next_payload, size_t next_len, int16_t *out,
              size_t samples)
{
    if (dec == NULL || out == NULL || samples == 0 || samples > MD_MAX_FRAME_SAMPLES)
        return 0;
    if (next_payload == NULL)
        next_len = 0;
    return dec->codec->ops->decode_plc(dec->state, next_payload, next_len, out, samples);
}
