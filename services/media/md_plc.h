/*
 * md_plc: packet loss concealment for waveform codecs (G.711, G.722), after ITU-T G.711
 * Appendix I: on a loss, find the pitch period of the last good audio (AMDF over 20 ms),
 * repeat that period with a quarter-period overlap-add at the joins, hold the level for
 * 10 ms, fade it linearly to silence by 60 ms; when audio resumes, cross-fade the first
 * quarter period from the synthetic signal into the real one.
 *
 * spandsp's plc_* does the same with its constants fixed for 8 kHz; this one takes the
 * rate (8 kHz for G.711 before upsampling, 16 kHz for G.722) so both codecs share it.
 *
 * Threads: one instance per decoder, used by one thread at a time.
 */
#ifndef MD_PLC_H
#define MD_PLC_H

#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

typedef struct md_plc md_plc_t;

/* rate_hz 8000 or 16000 (LC_ERR_INVALID otherwise). *out is owned by the caller. */
lc_status_t md_plc_create(int rate_hz, md_plc_t **out);
/* NULL is a no-op. */
void md_plc_destroy(md_plc_t *plc);

/* Hands a frame of decoded good audio to the concealer: kept as history, and when it ends
 * a concealed stretch its start is cross-faded in place (pcm is modified). */
void md_plc_good(md_plc_t *plc, int16_t *pcm, size_t samples);
/* Writes `samples` samples of concealment for missing audio into out. */
void md_plc_conceal(md_plc_t *plc, int16_t *out, size_t samples);

/* Samples concealed since the last good frame (0 when not concealing). */
size_t md_plc_missing(const md_plc_t *plc);

#endif
