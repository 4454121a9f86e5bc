/*
 * au_authn: voxi.auth.authenticate, once per API request (api.proto AuthenticateRequest ->
 * AuthenticateReply): who is calling, may they call this route, and does the rate limit
 * let them.
 *
 *   Authorization: Bearer vx_...   an API key: shape and checksum checked first (no
 *                                  database for garbage), then SHA-256 looked up in the
 *                                  key cache, else in api_keys (concurrent lookups of one
 *                                  key share one query)
 *   Authorization: Bearer a.b.c    a JWT when JWTs are configured (au_jwt.h); its org's
 *                                  limits are cached like keys
 *   no header, anonymous_ok        anonymous, rate-limited per client IP
 *
 * Missing, malformed, unknown, revoked and expired credentials all answer "unauthorized"
 * with nothing else about the credential, so callers cannot tell them apart (the reason is
 * logged at debug, never the credential). Such a request is anonymous: it spends its
 * client IP's bucket (the anonymous routes' one), whose numbers the 401 carries, and once
 * that is empty the answer is "rate_limited" instead. A valid credential without the
 * route's scope is "forbidden" (naming the scope). Then the route class's limit of the key
 * (or JWT subject, or client IP) is checked: "rate_limited" or "ok", both with the
 * rate-limit numbers for the headers. Database failures answer an Envelope error
 * ("unavailable" / "timeout").
 *
 * Gateway slices: an "ok" for an API key asked with grant_wanted also hands the gateway
 * up to that many tokens of the key's bucket from this instance's lease (at most 1/200 of
 * the limit, for at most 1 s; see authn.c), which it spends on later requests of the key
 * without asking (the gateway's gw_authcache.h). The revocation broadcast reaches the
 * gateways too.
 *
 * last_used_at is written in the background, at most about once a minute per key.
 *
 * Revocation: keys.c calls au_authn_revoked, which drops the key from this instance's
 * cache and tells every other instance on voxi.auth.cache.evict; the cache TTL bounds the
 * delay if that message is lost.
 *
 * Threads: the loop thread only.
 */
#ifndef AU_AUTHN_H
#define AU_AUTHN_H

#include <stdint.h>

#include "au_ctx.h"
#include "au_key.h"

typedef struct au_authn au_authn_t;

/* Creates the credential caches (ctx->keys, ctx->orgs) and subscribes
 * voxi.auth.authenticate (queue "auth") and voxi.auth.cache.evict (every instance).
 * ctx is borrowed. */
lc_status_t au_authn_start(au_ctx_t *ctx, au_authn_t **out);

/* Frees the module (the caches are ctx's). */
void au_authn_destroy(au_authn_t *authn); /* after the loop ended; NULL is a no-op */

/* A key was revoked: forget it here and tell the other instances. */
void au_authn_revoked(au_ctx_t *ctx, const char *key_id, const char *org_id,
                      const uint8_t hash[AU_KEY_HASH_LEN]);

#endif
