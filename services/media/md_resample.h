/*
 * md_resample: streaming sample-rate conversion of mono int16 PCM (speexdsp resampler),
 * used between a codec's own rate (8 kHz G.711, 48 kHz and others) and the worker's 16 kHz.
 *
 * The converter keeps filter state across calls, so one instance serves one direction of
 * one stream. For the integer ratios used here (8k <-> 16k, 48k <-> 16k) every call turns
 * n input samples into exactly n * out_rate / in_rate output samples (n a multiple of
 * in_rate / gcd). The filter delays the signal: md_resampler_latency() reports by how much.
 *
 * One converter is not speexdsp: md_resampler_create_halfband_up() doubles the rate with a
 * half-band (Nyquist) interpolator that passes every input sample through unchanged and
 * computes only the samples in between: out[2n] == in[n - MD_RESAMPLE_HALFBAND_DELAY]. The
 * G.711 decoder uses it so that the 16 kHz audio of a PCMU/PCMA call still holds the exact
 * G.711 values (a recording or an echo test can take every other sample and re-encode it to
 * the very bytes that arrived). speexdsp's interpolator filters the original samples too.
 *
 * Threads: an instance is used by one thread at a time.
 */
#ifndef MD_RESAMPLE_H
#define MD_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

/* speexdsp quality 0..10; 5 keeps the telephone band flat with 5 ms of delay at 8 kHz and
 * costs about 2 us per 20 ms frame. */
#define MD_RESAMPLE_QUALITY_DEFAULT 5

typedef struct md_resampler md_resampler_t;

/* Rates 8000..48000 Hz. LC_ERR_INVALID for bad rates or quality; *out is the new instance,
 * owned by the caller (md_resampler_destroy). */
lc_status_t md_resampler_create(int in_rate_hz, int out_rate_hz, int quality, md_resampler_t **out);
/* 8 kHz -> 16 kHz, sample-preserving (see above). Kaiser-windowed half-band, flat to about
 * 3.6 kHz, images above 4.4 kHz at least 70 dB down, 3 ms of delay. Never fails. */
#define MD_RESAMPLE_HALFBAND_DELAY 24 /* input samples */
lc_status_t md_resampler_create_halfband_up(md_resampler_t **out);

/* NULL is a no-op. */
void md_resampler_destroy(md_resampler_t *r);

/* Converts in_samples samples (borrowed) into out (capacity out_capacity samples). Returns the
 * number of samples written; input that did not fit is dropped (size out for
 * in_samples * out_rate / in_rate + 1). */
size_t md_resample(md_resampler_t *r, const int16_t *in, size_t in_samples, int16_t *out,
                   size_t out_capacity);

/* Forgets the filter history (after a gap the old history would smear into new audio). */
void md_resampler_reset(md_resampler_t *r);

/* The filter's delay in output samples. */
int md_resampler_latency(const md_resampler_t *r);

#endif
