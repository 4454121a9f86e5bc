/*
 * md_g711: ITU-T G.711 companding (spandsp's tables) on buffers, at the codec's own
 * 8 kHz rate. The codec (md_codec.h) uses these before resampling; in-band DTMF detection
 * uses them to see the 8 kHz audio of a PCMU/PCMA call as it was sent.
 *
 * Decoding then encoding a byte gives the same byte back for all 256 A-law values and for
 * 255 of the 256 mu-law values: mu-law 0x7f ("negative zero") comes back as 0xff.
 *
 * Pure functions; any thread.
 */
#ifndef MD_G711_H
#define MD_G711_H

#include <stddef.h>
#include <stdint.h>

#include "md_codec.h"

/* id: MD_CODEC_PCMU or MD_CODEC_PCMA (anything else is treated as PCMU). */
void md_g711_decode(md_codec_id_t id, const uint8_t *in, size_t n, int16_t *out);
void md_g711_encode(md_codec_id_t id, const int16_t *in, size_t n, uint8_t *out);

#endif
