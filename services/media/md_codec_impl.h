/*
 * md_codec_impl: what each codec file (md_codec_g711.c, md_codec_g722.c, md_codec_opus.c)
 * provides to the dispatcher in md_codec.c. Not for use outside the codec files.
 *
 * The dispatcher validates arguments common to every codec (NULL pointers, frame sizes,
 * buffer sizes) before calling in; a codec's functions may rely on that.
 */
#ifndef MD_CODEC_IMPL_H
#define MD_CODEC_IMPL_H

#include "md_codec.h"

typedef struct {
    /* Allocates the codec's state into *state (owned by the instance). */
    lc_status_t (*encoder_init)(const md_codec_desc_t *desc, const md_codec_params_t *params,
                                void **state);
    void (*encoder_fini)(void *state);
    /* samples: a whole number of frames the codec accepts (checked by frame_ok). */
    size_t (*encode)(void *state, const int16_t *pcm16k, size_t samples, uint8_t *out,
                     size_t out_size);
    lc_status_t (*decoder_init)(const md_codec_desc_t *desc, const md_codec_params_t *params,
                                void **state);
    void (*decoder_fini)(void *state);
    int (*decode)(void *state, const uint8_t *payload, size_t len, int16_t *out,
                  size_t out_samples);
    int (*decode_plc)(void *state, const uint8_t *next_payload, size_t next_len, int16_t *out,
                      size_t samples);
    /* Whether the codec can encode or conceal exactly `samples` 16 kHz samples at once. */
    bool (*frame_ok)(size_t samples);
} md_codec_ops_t;

extern const md_codec_ops_t md_codec_g711_ops; /* PCMU and PCMA (desc->id tells which) */
extern const md_codec_ops_t md_codec_g722_ops;
extern const md_codec_ops_t md_codec_opus_ops;

#endif
