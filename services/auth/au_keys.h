/*
 * au_keys: the API-key resource of the REST API (voxi.auth.keys.create|list|get|revoke,
 * queue group "auth"), for the org in the Envelope.
 *
 *   create  POST /v1/api-keys       201, the key with its `secret` (the only time it is shown)
 *   list    GET /v1/api-keys        200, {"object":"list","data":[...],"has_more","next_cursor"}
 *   get     GET /v1/api-keys/{id}   200 (no secret, ever)
 *   revoke  DELETE /v1/api-keys/{id} 200, the key with revoked_at set (again: same answer)
 *
 * Create body: {"name": 1..100 characters, "scopes": [...] (optional, default every scope;
 * each a known scope, no repeats, only scopes the caller holds), "expires_at": RFC 3339 in
 * the future or null}. Unknown fields are rejected. Validation failures answer "invalid"
 * with one field error per problem (`name`, `scopes[2]`, `expires_at`, `<unknown field>`).
 *
 * Changes write an auth_audit row in the same statement and publish api_key.created /
 * api_key.revoked after the commit. Another org's key id answers not_found.
 *
 * Threads: the loop thread only.
 */
#ifndef AU_KEYS_H
#define AU_KEYS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "au_ctx.h"

/* The columns api_key objects are rendered from (unqualified, for SELECT and RETURNING). */
#define AU_KEY_COLS                                                                                \
    "id, name, prefix, array_to_string(scopes, ' '), platform_admin,"                              \
    " floor(extract(epoch FROM created_at) * 1000)::bigint,"                                       \
    " floor(extract(epoch FROM expires_at) * 1000)::bigint,"                                       \
    " floor(extract(epoch FROM last_used_at) * 1000)::bigint,"                                     \
    " floor(extract(epoch FROM revoked_at) * 1000)::bigint"
#define AU_KEY_NCOLS 9

/* The api_key object of row `row` whose AU_KEY_COLS start at column col; `secret` is
 * added when not NULL (create only). Returns a new reference. */
json_t *au_key_json(PGresult *res, int row, int col, const char *secret);

/* Subscribes the four handlers. */
lc_status_t au_keys_start(au_ctx_t *ctx);

#endif
