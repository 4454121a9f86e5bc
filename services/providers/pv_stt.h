/*
 * pv_stt: the pool of pocketsphinx decoders (pocketsphinx 5prealpha, en-us model).
 *
 * Decoders cost 100-450 ms and tens of MB each to create, so VOXI_PROVIDERS_STT_DECODERS of
 * them are created at start (in the background: the service reports not ready until they are
 * loaded) and reused. An STT session holds one decoder from open to end
 * (its search is set up for the session's phrases); when all are taken the open fails with
 * "unavailable". Decoding runs in uv_queue_work jobs, never on the loop thread.
 *
 * Threads: create/destroy/acquire/release on the loop thread; a held decoder is used by one
 * job at a time.
 */
#ifndef PV_STT_H
#define PV_STT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lc_status.h"
#include "pv_service.h"

typedef struct pv_stt_decoder pv_stt_decoder_t;

/*
 * Starts loading n decoders from model_dir (en-us/, en-us.lm.bin, cmudict-en-us.dict), in
 * parallel on the libuv worker threads; decoders become available as they finish.
 * LC_ERR_CONFIG when the model files are not there.
 */
lc_status_t pv_stt_pool_create(uv_loop_t *loop, const char *model_dir, size_t n,
                               pv_stt_pool_t **out);
/* True while decoders are still being created. */
bool pv_stt_pool_loading(const pv_stt_pool_t *pool);
/* After the loop ended (no load job outstanding). NULL is a no-op. */
void pv_stt_pool_destroy(pv_stt_pool_t *pool);
size_t pv_stt_pool_free_count(const pv_stt_pool_t *pool);

/* NULL when every decoder is taken. */
pv_stt_decoder_t *pv_stt_acquire(pv_stt_pool_t *pool);
void pv_stt_release(pv_stt_pool_t *pool, pv_stt_decoder_t *d);

/* The decoder's pocketsphinx handle (ps_decoder_t *) and the name of its generic LM search. */
void *pv_stt_decoder_ps(pv_stt_decoder_t *d);
const char *pv_stt_decoder_default_search(pv_stt_decoder_t *d);

#endif
