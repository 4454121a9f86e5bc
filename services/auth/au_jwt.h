/*
 * au_jwt: verification of the optional JWT bearer tokens (RFC 7519, JWS compact form
 * RFC 7515) that an operator's own identity provider may issue instead of API keys.
 *
 * Pinned algorithms: HS256 when a shared secret is configured, RS256 when an RSA public key
 * (PEM, at least 2048 bits) is configured, nothing else — `none`, and any algorithm that
 * is not configured, are rejected before a signature is looked at (RFC 8725 section 3.1,
 * 2.1). A token's `crit` header is rejected (we implement no extensions, RFC 7515 4.1.11).
 *
 * Claims: `exp` is required and `nbf` honoured, both with a small leeway for clock skew;
 * `iss` must equal the configured issuer and `aud` (a string or an array) must contain the
 * configured audience, both required whenever a key is configured. The principal comes
 * from `sub` (1..128 printable ASCII), `org_id` (an org id) and `scope` (space-separated;
 * unknown scopes are ignored and platform:admin is never taken from a token).
 *
 * Threads: create/destroy on one thread; au_jwt_verify on any thread (read-only state).
 */
#ifndef AU_JWT_H
#define AU_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "au_scope.h"
#include "lc_status.h"

#define AU_JWT_MAX_LEN 8192
#define AU_JWT_SUB_MAX 128
#define AU_JWT_ORG_MAX 64

typedef struct au_jwt au_jwt_t;

typedef struct {
    const char *hs256_secret;          /* NULL or "" = HS256 off; borrowed */
    const char *rs256_public_key_file; /* NULL or "" = RS256 off; read by create */
    const char *issuer;                /* required when either key is set */
    const char *audience;              /* required when either key is set */
    int64_t leeway_s;                  /* allowed clock skew for exp and nbf */
} au_jwt_opts_t;

typedef struct {
    char sub[AU_JWT_SUB_MAX + 1];
    char org_id[AU_JWT_ORG_MAX + 1];
    au_scopes_t scopes;
    int64_t exp_s;
} au_jwt_claims_t;

/*
 * Builds a verifier. When neither key is configured, *out is NULL and LC_OK is returned
 * (JWTs are then simply not accepted). LC_ERR_CONFIG with a reason in err (never the
 * secret) when the configuration is incomplete or the key file unusable.
 */
lc_status_t au_jwt_create(const au_jwt_opts_t *opts, au_jwt_t **out, char *err, size_t err_size);
void au_jwt_destroy(au_jwt_t *jwt); /* NULL is a no-op */

/* True when text has the JWS compact shape: three non-empty base64url parts. */
bool au_jwt_shaped(const char *text, size_t len);

/*
 * Verifies a token (len bytes, need not be NUL-terminated) at time now_s (Unix seconds).
 * LC_OK fills *out. Otherwise LC_ERR_UNAUTHORIZED, with *why (may be NULL) set to a static
 * description for debug logs; the token itself is never logged.
 */
lc_status_t au_jwt_verify(const au_jwt_t *jwt, const char *token, size_t len, int64_t now_s,
                          au_jwt_claims_t *out, const char **why);

#endif
