/*
 * au_cache: a bounded cache with a time to live, holding fixed-size values by a byte key
 * (the SHA-256 of an API key, an org id). A thin layer over h2o's LRU cache (h2o/cache.h):
 * least recently used entries go first when it is full, and an entry older than the TTL is
 * never returned, however often it is read, so what the cache says is at most `ttl_ms` old.
 * That bound is what makes a revocation reach every auth instance in time.
 *
 * Values are copied in and out; the cache owns its copies.
 *
 * Threads: the loop thread only (not locked).
 */
#ifndef AU_CACHE_H
#define AU_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct au_cache au_cache_t;

#define AU_CACHE_KEY_MAX 64

/* max_entries >= 1; ttl_ms >= 0 (0 = never return anything); value_size >= 1. */
au_cache_t *au_cache_create(size_t max_entries, int64_t ttl_ms, size_t value_size);
void au_cache_destroy(au_cache_t *cache); /* NULL is a no-op */

/* Copies the value of `key` into out and returns true when present and younger than the TTL. */
bool au_cache_get(au_cache_t *cache, const void *key, size_t key_len, int64_t now_ms, void *out);

/* Stores a copy of value under key (replacing any), aged from now_ms. key_len <= AU_CACHE_KEY_MAX.
 */
void au_cache_put(au_cache_t *cache, const void *key, size_t key_len, const void *value,
                  int64_t now_ms);

/* Lets fn change the stored value in place without making it younger. Returns false when
 * the key is absent or expired (fn not called). */
bool au_cache_update(au_cache_t *cache, const void *key, size_t key_len, int64_t now_ms,
                     void (*fn)(void *value, void *arg), void *arg);

/* Drops key if present. */
void au_cache_evict(au_cache_t *cache, const void *key, size_t key_len, int64_t now_ms);

#endif
