/*
 * md_inband_dtmf: DTMF tones detected in the audio itself (spandsp dtmf_rx, ITU-T Q.24
 * limits), for PCMU/PCMA calls whose peer sends no RFC 4733 events. spandsp's detector works
 * at 8 kHz only, so it is fed the call's G.711 payloads (decoded here at their own rate) or
 * 8 kHz PCM.
 *
 * Each tone is reported twice through the callback: MD_DTMF_DIGIT_START when the detector
 * confirms it, MD_DTMF_DIGIT_END with its duration when it stops (the same results as the
 * RFC 4733 receiver in md_dtmf.h).
 *
 * Threads: one instance per call, used by one thread at a time; the callback runs inside
 * md_inband_dtmf_process* on that thread.
 */
#ifndef MD_INBAND_DTMF_H
#define MD_INBAND_DTMF_H

#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "md_codec.h"
#include "md_dtmf.h"

/* digit: '0'..'9', '*', '#', 'A'..'D'. duration_ms only for MD_DTMF_DIGIT_END. */
typedef void (*md_inband_dtmf_cb)(void *user, md_dtmf_rx_result_t what, char digit,
                                  int duration_ms);

typedef struct md_inband_dtmf md_inband_dtmf_t;

/* cb is required; user is passed back untouched (borrowed). */
lc_status_t md_inband_dtmf_create(md_inband_dtmf_cb cb, void *user, md_inband_dtmf_t **out);
/* NULL is a no-op. */
void md_inband_dtmf_destroy(md_inband_dtmf_t *d);

/* 8 kHz mono PCM (borrowed). */
void md_inband_dtmf_process(md_inband_dtmf_t *d, const int16_t *pcm8k, size_t samples);
/* One G.711 payload (codec MD_CODEC_PCMU or MD_CODEC_PCMA; others are ignored), decoded at
 * 8 kHz and fed to the detector. */
void md_inband_dtmf_process_g711(md_inband_dtmf_t *d, md_codec_id_t codec, const uint8_t *payload,
                                 size_t len);
/* A lost frame of `samples` 8 kHz samples (keeps the detector's timing without guessing). */
void md_inband_dtmf_fill(md_inband_dtmf_t *d, size_t samples);

#endif
