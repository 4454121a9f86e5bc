/*
 * gw_authcache: the gateway's short-lived memory of auth's "ok" for an API key, so that
 * most authenticated requests need no round trip to auth.
 *
 * When the gateway asks auth about an API key it also asks for a slice of that key's
 * rate-limit tokens (AuthenticateRequest.grant_wanted). Auth takes them from its own lease
 * and answers with AuthenticateReply.grant and grant_ttl_ms (at most 1 s, never past the
 * key's expiry or auth's key-cache TTL). The gateway keeps the decision and the slice here,
 * keyed by the SHA-256 of the key (the index auth's cache and the revocation broadcast
 * use) and the route class, and spends one token per later request of the same key and
 * class whose route needs a scope the key has. Anything else (no slice, slice spent or
 * expired, a scope the key lacks, not an API key) goes to auth as before. Unspent tokens
 * are forfeited at expiry: they were counted as admitted, so a slice can only make the
 * limit stricter, never looser.
 *
 * Revocation: auth broadcasts voxi.auth.cache.evict (KeyRevoked with the key's hash); the
 * gateway drops the key's entries on it (gw_authcache_evict). The TTL bounds the delay if
 * that message is lost, exactly as for auth's own cache.
 *
 * A fixed table of slots (direct-mapped by hash; a collision replaces the older entry):
 * bounded memory, no allocation per request.
 *
 * Threads: the loop thread only.
 */
#ifndef GW_AUTHCACHE_H
#define GW_AUTHCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_internal.h"
#include "lc_metrics.h"
#include "voxi/v1/api.pb-c.h"

#define GW_AUTHCACHE_HASH_LEN 32
/* Tokens asked for with each authenticate request of an API key. */
#define GW_AUTHCACHE_GRANT_WANTED 256
#define GW_AUTHCACHE_ID_MAX 72
#define GW_AUTHCACHE_SCOPES_MAX 16
#define GW_AUTHCACHE_SCOPE_MAX 32

typedef struct gw_authcache gw_authcache_t;

/* One cached decision; borrowed from the cache until its next call. */
typedef struct {
    bool used;
    bool write;
    uint8_t hash[GW_AUTHCACHE_HASH_LEN];
    int64_t expires_ms; /* monotonic */
    int64_t tokens;     /* left of the slice */
    char org_id[GW_AUTHCACHE_ID_MAX];
    char kind[GW_AUTHCACHE_SCOPE_MAX];
    char principal_id[GW_AUTHCACHE_ID_MAX];
    size_t n_scopes;
    char scopes[GW_AUTHCACHE_SCOPES_MAX][GW_AUTHCACHE_SCOPE_MAX];
    char *scope_ptrs[GW_AUTHCACHE_SCOPES_MAX]; /* into scopes, for a Principal message */
    gw_ratelimit_t rl;                         /* remaining: auth's figure without the slice */
} gw_authcache_entry_t;

/* slots: rounded up to a power of two, at least 64. Registers its counters in metrics
 * (borrowed): voxi_gateway_auth_cache_total{result="hit"|"miss"} and
 * voxi_gateway_auth_cache_evictions_total. */
gw_authcache_t *gw_authcache_create(size_t slots, lc_metrics_t *metrics);
void gw_authcache_destroy(gw_authcache_t *cache); /* NULL is a no-op */

/*
 * The SHA-256 of the API key in an Authorization header value (RFC 6750 section 2.1
 * "Bearer" 1*SP token, scheme case-insensitive, surrounding spaces ignored, as auth
 * parses it); false when the value is not a Bearer credential of the API-key shape
 * ("vx_" prefix). authz need not be NUL-terminated.
 */
bool gw_authcache_key_hash(const char *authz, size_t len, uint8_t out[GW_AUTHCACHE_HASH_LEN]);

/*
 * Spends one token of the live slice of (hash, write) when the key has `scope` ("" = any
 * valid key); returns the entry (rl.remaining + tokens is what the headers report), or
 * NULL when the request must go to auth.
 */
const gw_authcache_entry_t *gw_authcache_take(gw_authcache_t *cache,
                                              const uint8_t hash[GW_AUTHCACHE_HASH_LEN], bool write,
                                              const char *scope, int64_t now_ms);

/* Remembers auth's "ok" with a slice (rep->grant > 0; otherwise nothing happens). rep is
 * borrowed; rl is the rate limit as the gateway parsed it from rep. */
void gw_authcache_put(gw_authcache_t *cache, const uint8_t hash[GW_AUTHCACHE_HASH_LEN], bool write,
                      const Voxi__V1__AuthenticateReply *rep, const gw_ratelimit_t *rl,
                      int64_t now_ms);

/* Forgets every entry of a key (revoked). */
void gw_authcache_evict(gw_authcache_t *cache, const uint8_t hash[GW_AUTHCACHE_HASH_LEN]);

#endif
