/*
 * md_greeting: the worker's cache of synthesised first messages, keyed by (agent_id,
 * agent_version) so an edited agent never plays a stale greeting. LRU, at most `max_entries`
 * (VOXI_MEDIA_GREETING_CACHE_MAX); a greeting's PCM (16 kHz mono) is reference counted, so an
 * entry evicted while calls still play it stays alive until the last of them lets go.
 * Greetings with {{variables}} differ per call and are not cached (the runtime decides).
 *
 * Threads: the loop thread only.
 */
#ifndef MD_GREETING_H
#define MD_GREETING_H

#include <stddef.h>
#include <stdint.h>

#define MD_GREETING_MAX_SAMPLES (16000u * 60u) /* one minute */

typedef struct md_greeting_cache md_greeting_cache_t;
typedef struct md_greeting md_greeting_t;

md_greeting_cache_t *md_greeting_cache_create(size_t max_entries);
/* Drops the cache's references (greetings in use live on). NULL is a no-op. */
void md_greeting_cache_destroy(md_greeting_cache_t *c);

/* A new reference to the cached greeting, or NULL (a miss). */
md_greeting_t *md_greeting_get(md_greeting_cache_t *c, const char *agent_id, int32_t version);
/* Stores a copy of pcm for (agent_id, version), replacing an older one; evicts the least
 * recently used entry when full. Ignored past MD_GREETING_MAX_SAMPLES or when max is 0. */
void md_greeting_put(md_greeting_cache_t *c, const char *agent_id, int32_t version,
                     const char *text, const int16_t *pcm, size_t samples);
size_t md_greeting_count(const md_greeting_cache_t *c);

const int16_t *md_greeting_pcm(const md_greeting_t *g, size_t *samples);
const char *md_greeting_text(const md_greeting_t *g);
/* Releases a reference (void * for md_playout's release callback). NULL is a no-op. */
void md_greeting_unref(void *g);

#endif
