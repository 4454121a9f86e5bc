/*
 * md_vad: voice activity detector for one call's inbound audio (16 kHz mono int16, 20 ms
 * frames), built for telephone speech in noise.
 *
 * Per frame: band powers over 0-4 kHz (256-point FFT of the signal decimated to 8 kHz) plus
 * one 4-8 kHz band; a per-band noise estimate from minimum statistics and minima-controlled
 * recursive averaging; the statistical-model likelihood ratio of each band (Sohn, Kim &
 * Sung 1999, with decision-directed a priori SNR) plus a broadband SNR term, smoothed across
 * frames by a two-state hidden Markov model. The result is a speech probability per frame,
 * a frame decision at the aggressiveness threshold, and a smoothed speech/silence state
 * (onset, then hangover) for endpointing and barge-in. This design ships instead of the
 * WebRTC VAD by measurement: tests/bench/vad (`make bench-vad`) and its README.
 *
 * Cost: about 2 us per frame, no allocation after create. Behaviour worth knowing: noise
 * that is steady (hum, fans, line hiss) is learnt from the first frames; a sudden rise of
 * the noise by 20 dB, or a steady tone, reads as speech for up to about 3.5 s, until the
 * running minimum catches up; after a sudden drop, speech quieter than the old noise is
 * partly missed until a pause lets the estimate come down. Digital silence and frames under
 * -70 dBFS are never speech. Babble (many talkers) at 5 dB SNR or worse is mostly taken for
 * speech, as it is by every energy-based detector.
 *
 * Threads: an instance is used by one thread at a time (the call's thread); instances are
 * independent.
 */
#ifndef MD_VAD_H
#define MD_VAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

#define MD_VAD_FRAME_SAMPLES 320 /* 20 ms at 16 kHz: the only frame size accepted */
#define MD_VAD_FRAME_MS 20

typedef struct md_vad md_vad_t;

typedef struct {
    /* 0..3 like the WebRTC VAD's modes: 0 reports the most speech (fewest misses), 3 the
     * least (fewest false alarms on noise). Default 1. */
    int aggressiveness;
    /* The smoothed state turns to speech once this much speech (frame decisions) is seen
     * within twice that time. Default 40 (two frames); 20 reacts to one frame. */
    int onset_ms;
    /* The smoothed state stays speech this long after the last speech frame, so pauses
     * between words do not end a turn. Default 200. */
    int hangover_ms;
} md_vad_opts_t;

typedef struct {
    float probability;   /* P(speech) for this frame, 0..1 (already smoothed over frames) */
    bool frame_speech;   /* this frame's decision: probability over the aggressiveness threshold */
    bool speech;         /* smoothed speech/silence state (onset + hangover) */
    bool changed;        /* `speech` differs from the previous frame's */
    uint32_t speech_ms;  /* how long the current speech state has lasted (0 in silence) */
    uint32_t silence_ms; /* time since the last speech frame decision (0 on a speech frame) */
} md_vad_result_t;

/* Fills *opts with the defaults above. */
void md_vad_opts_default(md_vad_opts_t *opts);

/* Creates a detector. opts: borrowed, NULL for defaults; LC_ERR_INVALID when a field is out
 * of range (aggressiveness 0..3, onset_ms 20..1000, hangover_ms 0..5000). *out is owned by
 * the caller and freed with md_vad_destroy. */
lc_status_t md_vad_create(const md_vad_opts_t *opts, md_vad_t **out);

/* Frees the detector; NULL is a no-op. */
void md_vad_destroy(md_vad_t *vad);

/* Analyses one 20 ms frame. pcm16k: borrowed, `samples` must be MD_VAD_FRAME_SAMPLES
 * (LC_ERR_INVALID otherwise, state unchanged). *out receives this frame's result. */
lc_status_t md_vad_process(md_vad_t *vad, const int16_t *pcm16k, size_t samples,
                           md_vad_result_t *out);

/* Forgets everything learnt (noise estimate, smoothing, state), as if just created with the
 * same options; for a new stream on the same call (re-INVITE to another source, transfer). */
void md_vad_reset(md_vad_t *vad);

#endif
