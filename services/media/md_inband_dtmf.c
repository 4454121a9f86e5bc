/*
 * md_inband_dtmf: spandsp dtmf_rx with its real-time callback, which reports a confirmed
 * tone's start (code = the digit) and its end (code = 0, or the next digit). See
 * md_inband_dtmf.h.
 */
#include "md_inband_dtmf.h"

#include <stdbool.h>
#include <stdlib.h>

#include <spandsp.h>

#include "lc_alloc.h"
#include "md_g711.h"

#define RATE_8K 8000
#define CHUNK 480 /* 60 ms */

struct md_inband_dtmf {
    dtmf_rx_state_t *rx;
    md_inband_dtmf_cb cb;
    void *user;
    char digit; /* tone being heard, 0 if none */
};

/* spandsp's real-time report: code is the digit when two blocks agree on a tone, 0 when two
 * agree it stopped; `delay` is the number of samples since the previous report, so on the
 * report that ends a tone it is the tone's duration as the detector measured it (both
 * edges carry the same detection latency). */
static void
on_tone(void *user_data, int code, int level, int delay)
{
    (void) level;
    md_inband_dtmf_t *d = user_data;
    if (d->digit != 0 && code != d->digit) {
        char ended = d->digit;
        d->digit = 0;
        d->cb(d->user, MD_DTMF_DIGIT_END, ended, delay > 0 ? delay * 1000 / RATE_8K : 0);
    }
    if (code != 0 && code != d->digit && md_dtmf_char_event((char) code) >= 0) {
        d->digit = (char) code;
        d->cb(d->user, MD_DTMF_DIGIT_START, d->digit, 0);
    }
}

lc_status_t
md_inband_dtmf_create(md_inband_dtmf_cb cb, void *user, md_inband_dtmf_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    *out = NULL;
    if (cb == NULL)
        return LC_ERR_INVALID;
    md_inband_dtmf_t *d = LC_NEW(md_inband_dtmf_t);
    d->rx = dtmf_rx_init(NULL, NULL, NULL);
    if (d->rx == NULL) {
        free(d);
        return LC_ERR_INTERNAL;
    }
    dtmf_rx_set_realtime_callback(d->rx, on_tone, d);
    d->cb = cb;
    d->user = user;
    *out = d;
    return LC_OK;
}

void
md_inband_dtmf_destroy(md_inband_dtmf_t *d)
{
    if (d == NULL)
        return;
    dtmf_rx_free(d->rx);
    free(d);
}

void
md_inband_dtmf_process(md_inband_dtmf_t *d, const int16_t *pcm8k, size_t samples)
{
    if (d == NULL || pcm8k == NULL)
        return;
    while (samples > 0) {
        size_t n = samples < CHUNK ? samples : CHUNK;
        dtmf_rx(d->rx, pcm8k, (int) n);
        pcm8k += n;
        samples -= n;
    }
}

void
md_inband_dtmf_process_g711(md_inband_dtmf_t *d, md_codec_id_t codec, const uint8_t *payload,
                            size_t len)
{
    if (d == NULL || payload == NULL || (codec != MD_CODEC_PCMU && codec != MD_CODEC_PCMA))
        return;
    int16_t pcm[CHUNK];
    while (len > 0) {
        size_t n = len < CHUNK ? len : CHUNK;
        md_g711_decode(codec, payload, n, pcm);
        md_inband_dtmf_process(d, pcm, n);
        payload += n;
        len -= n;
    }
}

void
md_inband_dtmf_fill(md_inband_dtmf_t *d, size_t samples)
{
    if (d == NULL)
        return;
    while (samples > 0) {
        size_t n = samples < CHUNK ? samples : CHUNK;
        dtmf_rx_fillin(d->rx, (int) n);
        samples -= n;
    }
}
