#include "au_cache.h"

#include <h2o/cache.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

struct au_cache {
    h2o_cache_t *lru;
    int64_t ttl_ms;
    size_t value_size;
};

static void
free_value(h2o_iovec_t value)
{
    free(value.base);
}

/* h2o's hash is weak for arbitrary text but fine for short ids; a hash key is already
 * uniform, so its first bytes are the best hash there is. 0 means "compute it", so avoid it. */
static h2o_cache_hashcode_t
key_hash(const void *key, size_t len)
{
    h2o_cache_hashcode_t h = h2o_cache_calchash(key, len);
    return h != 0 ? h : 1;
}

au_cache_t *
au_cache_create(size_t max_entries, int64_t ttl_ms, size_t value_size)
{
    au_cache_t *cache = LC_NEW(au_cache_t);
    cache->ttl_ms = ttl_ms < 0 ? 0 : ttl_ms;
    cache->value_size = value_size > 0 ? value_size : 1;
    /* h2o bounds the sum of value lengths: capacity in entries times one value */
    size_t entries = max_entries > 0 ? max_entries : 1;
    cache->lru =
        h2o_cache_create(0, entries * cache->value_size, (uint64_t) cache->ttl_ms, free_value);
    return cache;
}

void
au_cache_destroy(au_cache_t *cache)
{
    if (cache == NULL)
        return;
    h2o_cache_destroy(cache->lru);
    free(cache);
}

static h2o_iovec_t
key_vec(const void *key, size_t len)
{
    return h2o_iovec_init(key, len);
}

static h2o_cache_ref_t *
fetch(au_cache_t *cache, const void *key, size_t key_len, int64_t now_ms)
{
    if (cache->ttl_ms == 0 || key_len == 0 || key_len > AU_CACHE_KEY_MAX)
        return NULL;
    return h2o_cache_fetch(cache->lru, (uint64_t) now_ms, key_vec(key, key_len),
                           key_hash(key, key_len));
}

bool
au_cache_get(au_cache_t *cache, const void *key, size_t key_len, int64_t now_ms, void *out)
{
    h2o_cache_ref_t *ref = fetch(cache, key, key_len, now_ms);
    if (ref == NULL)
        return false;
    memcpy(out, ref->value.base, cache->value_size);
    h2o_cache_release(cache->lru, ref);
    return true;
}

void
au_cache_put(au_cache_t *cache, const void *key, size_t key_len, const void *value, int64_t now_ms)
{
    if (cache->ttl_ms == 0 || key_len == 0 || key_len > AU_CACHE_KEY_MAX)
        return;
    void *copy = lc_malloc(cache->value_size);
    memcpy(copy, value, cache->value_size);
    h2o_cache_set(cache->lru, (uint64_t) now_ms, key_vec(key, key_len), key_hash(key, key_len),
                  h2o_iovec_init(copy, cache->value_size));
}

bool
au_cache_update(au_cache_t *cache, const void *key, size_t key_len, int64_t now_ms,
                void (*fn)(void *value, void *arg), void *arg)
{
    h2o_cache_ref_t *ref = fetch(cache, key, key_len, now_ms);
    if (ref == NULL)
        return false;
    fn(ref->value.base, arg);
    h2o_cache_release(cache->lru, ref);
    return true;
}

void
au_cache_evict(au_cache_t *cache, const void *key, size_t key_len, int64_t now_ms)
{
    if (key_len == 0 || key_len > AU_CACHE_KEY_MAX)
        return;
    h2o_cache_delete(cache->lru, (uint64_t) now_ms, key_vec(key, key_len), key_hash(key, key_len));
}
