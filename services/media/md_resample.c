/*
 * md_resample: speexdsp resampler wrapper, and a sample-preserving 2x half-band
 * interpolator. See md_resample.h.
 */
#include "md_resample.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <speex/speex_resampler.h>

#include "lc_alloc.h"
#include "lc_log.h"

/* Half-band interpolator: taps on each side of the midpoint between two input samples. */
#define HB_TAPS MD_RESAMPLE_HALFBAND_DELAY
#define HB_KAISER_BETA 7.0
/* Input handled per round; the history of 2 * HB_TAPS samples sits in front of it. */
#define HB_CHUNK 480

typedef struct {
    float coef[2 * HB_TAPS];             /* c[j] for x[m - HB_TAPS + 1 + j] */
    int16_t buf[2 * HB_TAPS + HB_CHUNK]; /* history, then the current chunk */
} halfband_t;

struct md_resampler {
    SpeexResamplerState *st; /* NULL for the half-band interpolator */
    halfband_t *hb;
    int in_rate_hz, out_rate_hz;
};

lc_status_t
md_resampler_create(int in_rate_hz, int out_rate_hz, int quality, md_resampler_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    *out = NULL;
    if (in_rate_hz < 8000 || in_rate_hz > 48000 || out_rate_hz < 8000 || out_rate_hz > 48000 ||
        quality < SPEEX_RESAMPLER_QUALITY_MIN || quality > SPEEX_RESAMPLER_QUALITY_MAX)
        return LC_ERR_INVALID;
    int err = 0;
    SpeexResamplerState *st = speex_resampler_init(1, (spx_uint32_t) in_rate_hz,
                                                   (spx_uint32_t) out_rate_hz, quality, &err);
    if (st == NULL) {
        LC_WARN("codec", "speex_resampler_init %d->%d: %s", in_rate_hz, out_rate_hz,
                speex_resampler_strerror(err));
        return LC_ERR_INTERNAL;
    }
    md_resampler_t *r = LC_NEW(md_resampler_t);
    r->st = st;
    r->in_rate_hz = in_rate_hz;
    r->out_rate_hz = out_rate_hz;
    *out = r;
    return LC_OK;
}

/* Zeroth-order modified Bessel function of the first kind (power series; converges fast
 * for the arguments of a Kaiser window). */
static double
bessel_i0(double x)
{
    double sum = 1, term = 1, q = x * x / 4;
    for (int k = 1; k < 50 && term > 1e-12 * sum; k++) {
        term *= q / ((double) k * k);
        sum += term;
    }
    return sum;
}

lc_status_t
md_resampler_create_halfband_up(md_resampler_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    md_resampler_t *r = LC_NEW(md_resampler_t);
    r->hb = LC_NEW(halfband_t);
    r->in_rate_hz = 8000;
    r->out_rate_hz = 16000;
    /* The ideal value half-way between input samples is sum x[m+j] sinc(j - 1/2); windowed
     * (Kaiser) to 2 * HB_TAPS taps and normalised to unit gain at DC. */
    double sum = 0, i0b = bessel_i0(HB_KAISER_BETA);
    for (int j = 0; j < 2 * HB_TAPS; j++) {
        double t = (double) (j - HB_TAPS) + 0.5; /* distance from the midpoint */
        double sinc = sin(M_PI * t) / (M_PI * t);
        double ratio = t / (double) HB_TAPS;
        double w = bessel_i0(HB_KAISER_BETA * sqrt(fmax(0.0, 1.0 - ratio * ratio))) / i0b;
        r->hb->coef[j] = (float) (sinc * w);
        sum += sinc * w;
    }
    for (int j = 0; j < 2 * HB_TAPS; j++)
        r->hb->coef[j] = (float) (r->hb->coef[j] / sum);
    /* Exactly symmetric, so halfband_up may pair the taps. */
    for (int j = 0; j < HB_TAPS; j++)
        r->hb->coef[2 * HB_TAPS - 1 - j] = r->hb->coef[j];
    *out = r;
    return LC_OK;
}

void
md_resampler_destroy(md_resampler_t *r)
{
    if (r == NULL)
        return;
    if (r->st != NULL)
        speex_resampler_destroy(r->st);
    free(r->hb);
    free(r);
}

static int16_t
clamp16(float v)
{
    if (v >= 32767.0f)
        return 32767;
    if (v <= -32768.0f)
        return -32768;
    return (int16_t) lrintf(v);
}

static size_t
halfband_up(halfband_t *hb, const int16_t *in, size_t in_samples, int16_t *out, size_t out_capacity)
{
    size_t written = 0;
    while (in_samples > 0 && out_capacity - written >= 2) {
        size_t n = in_samples < HB_CHUNK ? in_samples : HB_CHUNK;
        if (n > (out_capacity - written) / 2)
            n = (out_capacity - written) / 2;
        memcpy(hb->buf + 2 * HB_TAPS, in, n * sizeof(int16_t));
        /* Input sample i of this chunk is buf[2*HB_TAPS + i]. Output pair for it: the sample
         * HB_TAPS inputs back, and the midpoint after that one, whose taps reach up to
         * input i. */
        for (size_t i = 0; i < n; i++) {
            const int16_t *x = hb->buf + i + 1; /* x[0] .. x[2*HB_TAPS - 1] */
            /* The kernel is symmetric about the midpoint: pair the taps. */
            float acc = 0;
            for (int j = 0; j < HB_TAPS; j++)
                acc += hb->coef[j] * ((float) x[j] + (float) x[2 * HB_TAPS - 1 - j]);
            out[written++] = x[HB_TAPS - 1];
            out[written++] = clamp16(acc);
        }
        memmove(hb->buf, hb->buf + n, 2 * HB_TAPS * sizeof(int16_t));
        in += n;
        in_samples -= n;
    }
    return written;
}

size_t
md_resample(md_resampler_t *r, const int16_t *in, size_t in_samples, int16_t *out,
            size_t out_capacity)
{
    if (r == NULL || in == NULL || out == NULL || in_samples == 0 || out_capacity == 0)
        return 0;
    if (r->hb != NULL)
        return halfband_up(r->hb, in, in_samples, out, out_capacity);
    size_t written = 0;
    /* speexdsp may stop short of the whole input when the output fills first; loop until
     * the input is used up or the output is full (at most a few rounds). */
    while (in_samples > 0 && written < out_capacity) {
        spx_uint32_t in_len = (spx_uint32_t) (in_samples > UINT32_MAX ? UINT32_MAX : in_samples);
        spx_uint32_t out_len = (spx_uint32_t) (out_capacity - written);
        speex_resampler_process_int(r->st, 0, in, &in_len, out + written, &out_len);
        if (in_len == 0 && out_len == 0)
            break;
        in += in_len;
        in_samples -= in_len;
        written += out_len;
    }
    return written;
}

void
md_resampler_reset(md_resampler_t *r)
{
    if (r == NULL)
        return;
    if (r->hb != NULL)
        memset(r->hb->buf, 0, sizeof(r->hb->buf));
    else
        speex_resampler_reset_mem(r->st);
}

int
md_resampler_latency(const md_resampler_t *r)
{
    if (r == NULL)
        return 0;
    if (r->hb != NULL)
        return 2 * HB_TAPS; /* output samples */
    return speex_resampler_get_output_latency(r->st);
}
