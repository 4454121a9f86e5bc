/*
 * md_plc: pitch-repetition loss concealment (ITU-T G.711 Appendix I method). See md_plc.h.
 */
#include "md_plc.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

#define PLC_MAX_RATE_HZ 16000
/* Pitch periods 5..15 ms (200..66 Hz); higher voices repeat two periods, which stays
 * periodic. */
#define PITCH_MIN_MS 5
#define PITCH_MAX_MS 15
/* AMDF correlation span. */
#define SPAN_MS 20
/* Full level for the first 10 ms of a loss, then a linear fade reaching 0 at 60 ms. */
#define HOLD_MS 10
#define FADE_MS 50

#define PITCH_MAX_SAMPLES (PLC_MAX_RATE_HZ * PITCH_MAX_MS / 1000)
#define HISTORY_MAX_SAMPLES (PLC_MAX_RATE_HZ * (SPAN_MS + PITCH_MAX_MS) / 1000)

struct md_plc {
    int pitch_min, pitch_max, span, history_len, hold, fade;
    /* Linear history, newest sample last; starts as silence. */
    int16_t history[HISTORY_MAX_SAMPLES];
    /* One pitch period of synthetic signal whose end joins its start smoothly. */
    float pitchbuf[PITCH_MAX_SAMPLES];
    int pitch;
    int pitch_offset;
    size_t missing; /* samples concealed in the current loss */
};

lc_status_t
md_plc_create(int rate_hz, md_plc_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    *out = NULL;
    if (rate_hz != 8000 && rate_hz != 16000)
        return LC_ERR_INVALID;
    md_plc_t *plc = LC_NEW(md_plc_t);
    int per_ms = rate_hz / 1000;
    plc->pitch_min = PITCH_MIN_MS * per_ms;
    plc->pitch_max = PITCH_MAX_MS * per_ms;
    plc->span = SPAN_MS * per_ms;
    plc->history_len = plc->span + plc->pitch_max;
    plc->hold = HOLD_MS * per_ms;
    plc->fade = FADE_MS * per_ms;
    plc->pitch = plc->pitch_min;
    *out = plc;
    return LC_OK;
}

void
md_plc_destroy(md_plc_t *plc)
{
    free(plc);
}

size_t
md_plc_missing(const md_plc_t *plc)
{
    return plc != NULL ? plc->missing : 0;
}

static int16_t
saturate(float v)
{
    if (v > 32767.0f)
        return 32767;
    if (v < -32768.0f)
        return -32768;
    return (int16_t) (v >= 0 ? v + 0.5f : v - 0.5f);
}

static void
save_history(md_plc_t *plc, const int16_t *pcm, size_t n)
{
    size_t len = (size_t) plc->history_len;
    if (n >= len) {
        memcpy(plc->history, pcm + (n - len), len * sizeof(int16_t));
        return;
    }
    memmove(plc->history, plc->history + n, (len - n) * sizeof(int16_t));
    memcpy(plc->history + (len - n), pcm, n * sizeof(int16_t));
}

/* Level of the concealment after `missing` samples. */
static float
conceal_gain(const md_plc_t *plc, size_t missing)
{
    if (missing < (size_t) plc->hold)
        return 1.0f;
    float g = 1.0f - (float) (missing - (size_t) plc->hold) / (float) plc->fade;
    return g > 0.0f ? g : 0.0f;
}

/* Average magnitude difference function: the lag in [pitch_min, pitch_max] at which the last
 * `span` samples best match the samples one lag earlier. */
static int
amdf_pitch(const md_plc_t *plc)
{
    const int16_t *cur = plc->history + plc->history_len - plc->span;
    int best = plc->pitch_min;
    long best_acc = LONG_MAX;
    for (int lag = plc->pitch_min; lag <= plc->pitch_max; lag++) {
        const int16_t *old = cur - lag;
        long acc = 0;
        for (int j = 0; j < plc->span && acc < best_acc; j++)
            acc += labs((long) cur[j] - (long) old[j]);
        if (acc < best_acc) {
            best_acc = acc;
            best = lag;
        }
    }
    return best;
}

static void
start_concealment(md_plc_t *plc)
{
    const int16_t *h = plc->history;
    int len = plc->history_len;
    int pitch = amdf_pitch(plc);
    int overlap = pitch / 4;
    plc->pitch = pitch;
    /* The last period of history, with its final quarter cross-faded into the period
     * before it so that pitchbuf[pitch - 1] flows into pitchbuf[0] when it repeats. */
    int i = 0;
    for (; i < pitch - overlap; i++)
        plc->pitchbuf[i] = (float) h[len - pitch + i];
    float step = 1.0f / (float) overlap;
    float w = step;
    for (; i < pitch; i++, w += step)
        plc->pitchbuf[i] =
            (float) h[len - pitch + i] * (1.0f - w) + (float) h[len - 2 * pitch + i] * w;
    plc->pitch_offset = 0;
}

void
md_plc_conceal(md_plc_t *plc, int16_t *out, size_t samples)
{
    if (plc == NULL || out == NULL || samples == 0)
        return;
    size_t i = 0;
    if (plc->missing == 0) {
        start_concealment(plc);
        /* Join the synthetic signal to the audio already played without delaying it: the
         * first quarter period is overlap-added with the time-reversed tail of the history
         * (the spandsp / G.711 Appendix I trick). */
        int overlap = plc->pitch / 4;
        float step = 1.0f / (float) overlap;
        float w_new = step;
        for (; i < samples && i < (size_t) overlap; i++, w_new += step) {
            float old = (float) plc->history[plc->history_len - 1 - (int) i];
            out[i] = saturate(old * (1.0f - w_new) + plc->pitchbuf[plc->pitch_offset] * w_new);
            if (++plc->pitch_offset >= plc->pitch)
                plc->pitch_offset = 0;
        }
    }
    for (; i < samples; i++) {
        float g = conceal_gain(plc, plc->missing + i);
        if (g <= 0.0f) {
            out[i] = 0;
            continue;
        }
        out[i] = saturate(plc->pitchbuf[plc->pitch_offset] * g);
        if (++plc->pitch_offset >= plc->pitch)
            plc->pitch_offset = 0;
    }
    plc->missing += samples;
    save_history(plc, out, samples);
}

void
md_plc_good(md_plc_t *plc, int16_t *pcm, size_t samples)
{
    if (plc == NULL || pcm == NULL || samples == 0)
        return;
    if (plc->missing > 0) {
        /* Fade the real signal in over the continuing synthetic one. */
        size_t overlap = (size_t) (plc->pitch / 4);
        if (overlap > samples)
            overlap = samples;
        float step = 1.0f / (float) (overlap + 1);
        float w_new = step;
        for (size_t i = 0; i < overlap; i++, w_new += step) {
            float synth = plc->pitchbuf[plc->pitch_offset] * conceal_gain(plc, plc->missing + i);
            pcm[i] = saturate(synth * (1.0f - w_new) + (float) pcm[i] * w_new);
            if (++plc->pitch_offset >= plc->pitch)
                plc->pitch_offset = 0;
        }
        plc->missing = 0;
    }
    save_history(plc, pcm, samples);
}
