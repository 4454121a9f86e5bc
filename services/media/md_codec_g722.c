/*
 * md_codec_g722: G.722 at 64 kbit/s (spandsp, ITU-T G.722 mode 1) on 16 kHz audio: one
 * octet carries two samples. RFC 3551 section 4.5.2: the RTP clock is 8000 Hz although the
 * audio is sampled at 16 kHz (md_codec.c's descriptor has both). Loss concealment is
 * md_plc at 16 kHz; G.722's own Appendix III/IV concealment is not in spandsp.
 */
#include <stdbool.h>
#include <stdlib.h>

#include <spandsp.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "md_codec_impl.h"
#include "md_plc.h"

#define G722_BITRATE 64000

typedef struct {
    g722_encode_state_t *enc;
    g722_decode_state_t *dec;
    md_plc_t *plc;
} wb_state_t;

static void
wb_fini(void *state)
{
    wb_state_t *st = state;
    if (st == NULL)
        return;
    if (st->enc != NULL)
        g722_encode_free(st->enc);
    if (st->dec != NULL)
        g722_decode_free(st->dec);
    md_plc_destroy(st->plc);
    free(st);
}

static lc_status_t
wb_encoder_init(const md_codec_desc_t *desc, const md_codec_params_t *params, void **state)
{
    (void) desc;
    (void) params;
    wb_state_t *st = LC_NEW(wb_state_t);
    st->enc = g722_encode_init(NULL, G722_BITRATE, 0);
    if (st->enc == NULL) {
        wb_fini(st);
        return LC_ERR_INTERNAL;
    }
    *state = st;
    return LC_OK;
}

static lc_status_t
wb_decoder_init(const md_codec_desc_t *desc, const md_codec_params_t *params, void **state)
{
    (void) desc;
    (void) params;
    wb_state_t *st = LC_NEW(wb_state_t);
    lc_status_t s = LC_OK;
    st->dec = g722_decode_init(NULL, G722_BITRATE, 0);
    if (st->dec == NULL) {
        s = LC_ERR_INTERNAL;
        goto done;
    }
    LC_CHECK(s, md_plc_create(MD_PCM_RATE_HZ, &st->plc));
    *state = st;
    st = NULL;
done:
    wb_fini(st);
    return s;
}

static bool
wb_frame_ok(size_t samples)
{
    return samples % 2 == 0; /* an octet holds two samples */
}

static size_t
wb_encode(void *state, const int16_t *pcm16k, size_t samples, uint8_t *out, size_t out_size)
{
    wb_state_t *st = state;
    if (out_size < samples / 2)
        return 0;
    int n = g722_encode(st->enc, out, pcm16k, (int) samples);
    return n > 0 ? (size_t) n : 0;
}

static int
wb_decode(void *state, const uint8_t *payload, size_t len, int16_t *out, size_t out_samples)
{
    wb_state_t *st = state;
    if (len > out_samples / 2) {
        LC_LOG_RL(LC_LOG_WARN, "codec", 1, "G.722 payload of %zu bytes does not fit %zu samples",
                  len, out_samples);
        return -1;
    }
    int n = g722_decode(st->dec, out, payload, (int) len);
    if (n <= 0)
        return -1;
    md_plc_good(st->plc, out, (size_t) n);
    return n;
}

static int
wb_decode_plc(void *state, const uint8_t *next_payload, size_t next_len, int16_t *out,
              size_t samples)
{
    (void) next_payload;
    (void) next_len;
    wb_state_t *st = state;
    md_plc_conceal(st->plc, out, samples);
    return (int) samples;
}

const md_codec_ops_t md_codec_g722_ops = {
    .encoder_init = wb_encoder_init,
    .encoder_fini = wb_fini,
    .encode = wb_encode,
    .decoder_init = wb_decoder_init,
    .decoder_fini = wb_fini,
    .decode = wb_decode,
    .decode_plc = wb_decode_plc,
    .frame_ok = wb_frame_ok,
};
