#include "gw_authcache.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"

#define KEY_TAG "vx_"
#define KEY_TAG_LEN 3
/* API keys are 41 characters; anything much longer is not one (auth says 401). */
#define KEY_LEN_MAX 128
#define SLOTS_MIN 64

struct gw_authcache {
    size_t mask; /* slots - 1 */
    gw_authcache_entry_t *slots;
    lc_metric_t *m_hit, *m_miss, *m_evictions;
};

gw_authcache_t *
gw_authcache_create(size_t slots, lc_metrics_t *metrics)
{
    size_t n = SLOTS_MIN;
    while (n < slots)
        n *= 2;
    gw_authcache_t *cache = LC_NEW(gw_authcache_t);
    cache->mask = n - 1;
    cache->slots = lc_calloc(n, sizeof(*cache->slots));
    const char *name = "voxi_gateway_auth_cache_total";
    const char *help = "API-key requests served from a cached auth decision and rate-limit slice "
                       "(hit) or sent to auth (miss)";
    cache->m_hit = lc_metrics_counter(metrics, name, help, "result=\"hit\"");
    cache->m_miss = lc_metrics_counter(metrics, name, help, "result=\"miss\"");
    cache->m_evictions =
        lc_metrics_counter(metrics, "voxi_gateway_auth_cache_evictions_total",
                           "revocation broadcasts received (voxi.auth.cache.evict)", NULL);
    return cache;
}

void
gw_authcache_destroy(gw_authcache_t *cache)
{
    if (cache == NULL)
        return;
    free(cache->slots);
    free(cache);
}

bool
gw_authcache_key_hash(const char *authz, size_t len, uint8_t out[GW_AUTHCACHE_HASH_LEN])
{
    if (authz == NULL || len < 7 || strncasecmp(authz, "Bearer ", 7) != 0)
        return false;
    size_t start = 7, end = len;
    while (start < end && authz[start] == ' ')
        start++;
    while (end > start && authz[end - 1] == ' ')
        end--;
    size_t n = end - start;
    const char *token = authz + start;
    if (n < KEY_TAG_LEN || n > KEY_LEN_MAX || memcmp(token, KEY_TAG, KEY_TAG_LEN) != 0 ||
        memchr(token, ' ', n) != NULL || memchr(token, '\0', n) != NULL)
        return false;
    unsigned int hlen = 0;
    if (EVP_Digest(token, n, out, &hlen, EVP_sha256(), NULL) != 1 ||
        hlen != GW_AUTHCACHE_HASH_LEN) {
        LC_LOG_RL(LC_LOG_ERROR, "authcache", 1, "EVP_Digest(sha256) failed");
        return false;
    }
    return true;
}

static gw_authcache_entry_t *
slot_of(gw_authcache_t *cache, const uint8_t hash[GW_AUTHCACHE_HASH_LEN], bool write)
{
    /* a SHA-256 is uniform already: its first bytes are the best index there is */
    uint32_t h;
    memcpy(&h, hash, sizeof(h));
    return &cache->slots[(((size_t) h << 1) | (write ? 1u : 0u)) & cache->mask];
}

static bool
has_scope(const gw_authcache_entry_t *e, const char *scope)
{
    if (scope == NULL || scope[0] == '\0')
        return true;
    for (size_t i = 0; i < e->n_scopes; i++)
        if (strcmp(e->scopes[i], scope) == 0)
            return true;
    return false;
}

const gw_authcache_entry_t *
gw_authcache_take(gw_authcache_t *cache, const uint8_t hash[GW_AUTHCACHE_HASH_LEN], bool write,
                  const char *scope, int64_t now_ms)
{
    gw_authcache_entry_t *e = slot_of(cache, hash, write);
    if (!e->used || e->write != write || memcmp(e->hash, hash, GW_AUTHCACHE_HASH_LEN) != 0)
        goto miss;
    if (now_ms >= e->expires_ms || e->tokens <= 0) {
        e->used = false;
        goto miss;
    }
    if (!has_scope(e, scope))
        goto miss;
    e->tokens--;
    lc_metric_inc(cache->m_hit);
    return e;
miss:
    lc_metric_inc(cache->m_miss);
    return NULL;
}

/* Copies a string from the bus into a fixed field; false when it does not fit. */
static bool
copy_field(char *dst, size_t dst_size, const char *src)
{
    size_t n = strlen(src);
    if (n >= dst_size)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

void
gw_authcache_put(gw_authcache_t *cache, const uint8_t hash[GW_AUTHCACHE_HASH_LEN], bool write,
                 const Voxi__V1__AuthenticateReply *rep, const gw_ratelimit_t *rl, int64_t now_ms)
{
    if (rep->grant <= 0 || rep->grant_ttl_ms <= 0 || rep->principal == NULL || !rl->present ||
        rep->org_id[0] == '\0')
        return;
    const Voxi__V1__Principal *who = rep->principal;
    gw_authcache_entry_t *e = slot_of(cache, hash, write);
    int64_t carried = 0; /* a live slice of the same key: its tokens stay spendable */
    if (e->used && e->write == write && memcmp(e->hash, hash, GW_AUTHCACHE_HASH_LEN) == 0 &&
        now_ms < e->expires_ms)
        carried = e->tokens;
    gw_authcache_entry_t fresh;
    memset(&fresh, 0, sizeof(fresh));
    if (who->n_scopes > GW_AUTHCACHE_SCOPES_MAX ||
        !copy_field(fresh.org_id, sizeof(fresh.org_id), rep->org_id) ||
        !copy_field(fresh.kind, sizeof(fresh.kind), who->kind) ||
        !copy_field(fresh.principal_id, sizeof(fresh.principal_id), who->id))
        return; /* not cacheable: such requests keep asking auth */
    for (size_t i = 0; i < who->n_scopes; i++)
        if (!copy_field(fresh.scopes[i], sizeof(fresh.scopes[i]), who->scopes[i]))
            return;
    fresh.n_scopes = who->n_scopes;
    fresh.used = true;
    fresh.write = write;
    memcpy(fresh.hash, hash, GW_AUTHCACHE_HASH_LEN);
    int64_t ttl = rep->grant_ttl_ms > 60000 ? 60000 : rep->grant_ttl_ms;
    fresh.expires_ms = now_ms + ttl;
    /* bounded whatever auth says: a slice is a few requests, not a new limit */
    int64_t tokens =
        carried + (rep->grant > GW_AUTHCACHE_GRANT_WANTED ? GW_AUTHCACHE_GRANT_WANTED : rep->grant);
    fresh.tokens = tokens > 4 * GW_AUTHCACHE_GRANT_WANTED ? 4 * GW_AUTHCACHE_GRANT_WANTED : tokens;
    fresh.rl = *rl;
    *e = fresh;
    for (size_t i = 0; i < e->n_scopes; i++)
        e->scope_ptrs[i] = e->scopes[i];
}

void
gw_authcache_evict(gw_authcache_t *cache, const uint8_t hash[GW_AUTHCACHE_HASH_LEN])
{
    lc_metric_inc(cache->m_evictions);
    for (int w = 0; w < 2; w++) {
        gw_authcache_entry_t *e = slot_of(cache, hash, w == 1);
        if (e->used && memcmp(e->hash, hash, GW_AUTHCACHE_HASH_LEN) == 0)
            e->used = false;
    }
}
