#include "au_keys.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "au_api.h"
#include "au_authn.h"
#include "au_key.h"
#include "au_scope.h"
#include "au_text.h"
#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define NAME_MAX_CHARS 100
#define SCOPES_MAX_ITEMS 32
#define LIST_DEFAULT 20
#define LIST_MAX 100

/* ---- rendering ---- */

json_t *
au_key_json(PGresult *res, int row, int col, const char *secret)
{
    json_t *scopes = json_array();
    au_scopes_t set = au_scopes_parse_list(PQgetvalue(res, row, col + 3), NULL);
    bool platform_admin = PQgetvalue(res, row, col + 4)[0] == 't';
    if (platform_admin)
        set |= AU_SCOPES_ALL | AU_SCOPE_PLATFORM_ADMIN;
    for (size_t i = 0; i < AU_SCOPE_COUNT; i++)
        if (set & (1u << i))
            json_array_append_new(scopes, json_string(au_scope_name(i)));
#define TIME_COL(i)                                                                                \
    au_json_time(PQgetisnull(res, row, col + (i)) ? NULL : PQgetvalue(res, row, col + (i)))
    json_t *obj =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:o, s:o, s:o, s:o}", "object", "api_key", "id",
                  PQgetvalue(res, row, col), "name", PQgetvalue(res, row, col + 1), "prefix",
                  PQgetvalue(res, row, col + 2), "scopes", scopes, "platform_admin", platform_admin,
                  "created_at", TIME_COL(5), "expires_at", TIME_COL(6), "last_used_at", TIME_COL(7),
                  "revoked_at", TIME_COL(8));
#undef TIME_COL
    if (secret != NULL)
        json_object_set_new(obj, "secret", json_string(secret));
    return obj;
}

/* ---- common checks ---- */

/* The org, and the caller holds keys:admin; otherwise replies and returns NULL. */
static const char *
org_with_keys_admin(au_req_t *req)
{
    const char *org = au_req_org(req);
    if (org == NULL) {
        au_req_reply_error(req, LC_ERR_INVALID, "the request carries no org");
        return NULL;
    }
    if (!(au_req_principal_scopes(req) & AU_SCOPE_KEYS_ADMIN)) {
        au_req_reply_error(req, LC_ERR_FORBIDDEN, "the credentials lack the scope \"keys:admin\"");
        return NULL;
    }
    return org;
}

static const char *
principal_kind(const au_req_t *req)
{
    const char *k = au_req_principal_kind(req);
    return k[0] ? k : "unknown";
}

static lc_status_t
db_status(lc_status_t st, PGresult *res)
{
    if (st == LC_ERR_DB && res != NULL) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "23503") == 0) /* foreign key: the org is gone */
            return LC_ERR_NOT_FOUND;
    }
    return st == LC_ERR_TIMEOUT ? LC_ERR_TIMEOUT : LC_ERR_UNAVAILABLE;
}

/* ---- create ---- */

typedef struct {
    char secret[AU_KEY_LEN + 1];
    char org_id[AU_ID_MAX];
} create_t;

static void
create_free(void *data)
{
    create_t *c = data;
    OPENSSL_cleanse(c->secret, sizeof(c->secret));
    free(c);
}

static const char CREATE_SQL[] =
    "WITH k AS ("
    " INSERT INTO api_keys (id, org_id, name, prefix, secret_hash, scopes, expires_at)"
    " VALUES ($1, $2, $3, $4, decode($5, 'hex'), string_to_array($6, ' '), $7::timestamptz)"
    " RETURNING " AU_KEY_COLS "),"
    " a AS (INSERT INTO auth_audit (org_id, principal_kind, principal_id, action,"
    " resource_type, resource_id, changes, request_id)"
    " SELECT $2, $8, $9, 'api_key.create', 'api_key', k.id, $10::jsonb, $11 FROM k)"
    " SELECT * FROM k";

static void
on_created(lc_status_t status, PGresult *res, void *arg)
{
    au_req_t *req = arg;
    create_t *c = req->data;
    if (status != LC_OK || PQntuples(res) != 1) {
        status = status == LC_OK ? LC_ERR_INTERNAL : db_status(status, res);
        au_req_reply_error(req, status,
                           status == LC_ERR_NOT_FOUND ? "the org does not exist"
                                                      : "could not create the API key");
        return;
    }
    lc_events_publish(req->ctx->events, c->org_id, "api_key.created", au_key_json(res, 0, 0, NULL),
                      NULL);
    LC_INFO("keys", "API key %s created in %s", PQgetvalue(res, 0, 0), c->org_id);
    au_req_reply_json(req, 201, au_key_json(res, 0, 0, c->secret));
}

/* Validates scopes[]; returns the set, adding field errors to f. */
static au_scopes_t
validate_scopes(json_t *js, au_scopes_t caller, au_fields_t *f)
{
    if (js == NULL || json_is_null(js))
        return caller & AU_SCOPES_ALL; /* default: what the caller may grant */
    if (!json_is_array(js)) {
        au_fields_add(f, "scopes", "must be an array of scope names");
        return 0;
    }
    size_t n = json_array_size(js);
    if (n == 0) {
        au_fields_add(f, "scopes", "must name at least one scope");
        return 0;
    }
    if (n > SCOPES_MAX_ITEMS) {
        au_fields_add(f, "scopes", "must name at most %d scopes", SCOPES_MAX_ITEMS);
        return 0;
    }
    au_scopes_t set = 0;
    for (size_t i = 0; i < n; i++) {
        char field[32];
        snprintf(field, sizeof(field), "scopes[%zu]", i);
        json_t *item = json_array_get(js, i);
        const char *name = json_string_value(item);
        au_scopes_t bit = name ? au_scope_parse(name, json_string_length(item)) : 0;
        if (name == NULL)
            au_fields_add(f, field, "must be a string");
        else if (bit == 0 || bit == AU_SCOPE_PLATFORM_ADMIN)
            au_fields_add(f, field,
                          "unknown scope; one of agents:read agents:write numbers:read "
                          "numbers:write calls:read calls:write webhooks:read webhooks:write "
                          "keys:admin");
        else if (set & bit)
            au_fields_add(f, field, "repeats a scope listed before");
        else if (!(caller & bit))
            au_fields_add(f, field, "the calling credentials do not hold this scope");
        set |= bit;
    }
    return set;
}

static void
keys_create(au_req_t *req)
{
    const char *org = org_with_keys_admin(req);
    if (org == NULL)
        return;
    json_t *body = au_req_body_object(req);
    if (body == NULL)
        return;
    au_fields_t f = {0};
    const char *field;
    json_t *value;
    json_object_foreach(body, field, value)
    {
        if (strcmp(field, "name") != 0 && strcmp(field, "scopes") != 0 &&
            strcmp(field, "expires_at") != 0)
            au_fields_add(&f, field, "unknown field");
    }
    json_t *name = json_object_get(body, "name");
    if (name == NULL || json_is_null(name))
        au_fields_add(&f, "name", "is required");
    else if (!json_is_string(name))
        au_fields_add(&f, "name", "must be a string");
    else if (au_utf8_length(json_string_value(name)) < 1 ||
             au_utf8_length(json_string_value(name)) > NAME_MAX_CHARS)
        au_fields_add(&f, "name", "must be 1 to %d characters", NAME_MAX_CHARS);
    else if (au_has_control(json_string_value(name)) ||
             strlen(json_string_value(name)) != json_string_length(name))
        au_fields_add(&f, "name", "must not contain control characters");
    au_scopes_t scopes =
        validate_scopes(json_object_get(body, "scopes"), au_req_principal_scopes(req), &f);
    json_t *exp = json_object_get(body, "expires_at");
    int64_t expires_ms = 0;
    if (exp != NULL && !json_is_null(exp)) {
        if (!json_is_string(exp) || !au_parse_rfc3339(json_string_value(exp), &expires_ms))
            au_fields_add(&f, "expires_at",
                          "must be an RFC 3339 date-time such as 2030-01-31T12:00:00Z, or null");
        else if (expires_ms <= lc_time_wall_ms())
            au_fields_add(&f, "expires_at", "must be in the future");
    }
    if (f.n > 0) {
        json_decref(body);
        au_req_reply_invalid(req, "the API key is not valid", &f);
        return;
    }

    create_t *c = LC_NEW(create_t);
    req->data = c;
    req->free_data = create_free;
    snprintf(c->org_id, sizeof(c->org_id), "%s", org);
    char id[AU_ID_MAX], prefix[AU_KEY_PREFIX_LEN + 1], hash_hex[2 * AU_KEY_HASH_LEN + 1];
    char scope_text[256], expires_text[32];
    uint8_t hash[AU_KEY_HASH_LEN];
    lc_id_new("key_", id, sizeof(id));
    au_key_generate(c->secret);
    au_key_hash(c->secret, AU_KEY_LEN, hash);
    au_hex(hash, sizeof(hash), hash_hex);
    au_key_prefix(c->secret, prefix);
    au_scopes_format(scopes, ' ', scope_text, sizeof(scope_text));
    if (expires_ms)
        lc_time_format_rfc3339(expires_ms, expires_text, sizeof(expires_text));

    /* the audit row: what was asked for, never the secret or its hash */
    json_t *changes = json_pack("{s:O, s:[], s:o}", "name", name, "scopes", "expires_at",
                                expires_ms ? json_string(expires_text) : json_null());
    char scope_buf[256];
    au_scopes_format(scopes, ',', scope_buf, sizeof(scope_buf));
    char *save = NULL;
    for (char *tok = strtok_r(scope_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        json_array_append_new(json_object_get(changes, "scopes"), json_string(tok));
    char *changes_text = json_dumps(changes, JSON_COMPACT);
    json_decref(changes);

    const char *params[] = {id,
                            org,
                            json_string_value(name),
                            prefix,
                            hash_hex,
                            scope_text,
                            expires_ms ? expires_text : NULL,
                            principal_kind(req),
                            au_req_principal_id(req),
                            changes_text,
                            req->env->request_id};
    lc_status_t st = lc_pg_query(req->ctx->pg, CREATE_SQL, 11, params, on_created, req);
    free(changes_text);
    json_decref(body);
    if (st != LC_OK)
        au_req_reply_error(req, LC_ERR_UNAVAILABLE, "could not create the API key");
}

/* ---- list ---- */

typedef struct {
    char org_id[AU_ID_MAX];
    char cursor[AU_ID_MAX];
    int limit;
} list_t;

static const char LIST_SQL[] =
    "SELECT " AU_KEY_COLS " FROM api_keys WHERE org_id = $1 AND ($2 = '' OR (created_at, id) >"
    " (SELECT created_at, id FROM api_keys WHERE org_id = $1 AND id = $2))"
    " ORDER BY created_at, id LIMIT $3::int + 1";

static const char CURSOR_SQL[] = "SELECT 1 FROM api_keys WHERE org_id = $1 AND id = $2";

static void
on_listed(lc_status_t status, PGresult *res, void *arg)
{
    au_req_t *req = arg;
    list_t *l = req->data;
    if (status != LC_OK) {
        au_req_reply_error(req, db_status(status, res), "could not list API keys");
        return;
    }
    int rows = PQntuples(res);
    bool has_more = rows > l->limit;
    int shown = has_more ? l->limit : rows;
    json_t *data = json_array();
    for (int i = 0; i < shown; i++)
        json_array_append_new(data, au_key_json(res, i, 0, NULL));
    json_t *next = has_more ? json_string(PQgetvalue(res, shown - 1, 0)) : json_null();
    au_req_reply_json(req, 200,
                      json_pack("{s:s, s:o, s:b, s:o}", "object", "list", "data", data, "has_more",
                                has_more, "next_cursor", next));
}

static void
list_page(au_req_t *req)
{
    list_t *l = req->data;
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", l->limit);
    const char *params[] = {l->org_id, l->cursor, limit};
    if (lc_pg_query(req->ctx->pg, LIST_SQL, 3, params, on_listed, req) != LC_OK)
        au_req_reply_error(req, LC_ERR_UNAVAILABLE, "could not list API keys");
}

static void
bad_cursor(au_req_t *req)
{
    au_fields_t f = {0};
    au_fields_add(&f, "starting_after", "is not the id of an API key of this org");
    au_req_reply_invalid(req, "unknown starting_after", &f);
}

static void
on_cursor(lc_status_t status, PGresult *res, void *arg)
{
    au_req_t *req = arg;
    if (status != LC_OK) {
        au_req_reply_error(req, db_status(status, res), "could not list API keys");
        return;
    }
    if (PQntuples(res) != 1) {
        bad_cursor(req);
        return;
    }
    list_page(req);
}

static void
keys_list(au_req_t *req)
{
    const char *org = org_with_keys_admin(req);
    if (org == NULL)
        return;
    int limit = req->api->limit == 0 ? LIST_DEFAULT : req->api->limit;
    if (limit < 1 || limit > LIST_MAX) {
        au_fields_t f = {0};
        au_fields_add(&f, "limit", "must be between 1 and %d", LIST_MAX);
        au_req_reply_invalid(req, "invalid limit", &f);
        return;
    }
    list_t *l = LC_NEW(list_t);
    req->data = l;
    req->free_data = free;
    snprintf(l->org_id, sizeof(l->org_id), "%s", org);
    l->limit = limit;
    const char *cursor = req->api->starting_after;
    if (cursor[0] == '\0') {
        list_page(req);
        return;
    }
    if (!au_id_valid(cursor, "key_")) {
        bad_cursor(req);
        return;
    }
    snprintf(l->cursor, sizeof(l->cursor), "%s", cursor);
    const char *params[] = {l->org_id, l->cursor};
    if (lc_pg_query(req->ctx->pg, CURSOR_SQL, 2, params, on_cursor, req) != LC_OK)
        au_req_reply_error(req, LC_ERR_UNAVAILABLE, "could not list API keys");
}

/* ---- get ---- */

static void
on_got(lc_status_t status, PGresult *res, void *arg)
{
    au_req_t *req = arg;
    if (status != LC_OK) {
        au_req_reply_error(req, db_status(status, res), "could not read the API key");
        return;
    }
    if (PQntuples(res) != 1) {
        au_req_reply_error(req, LC_ERR_NOT_FOUND, "no such API key");
        return;
    }
    au_req_reply_json(req, 200, au_key_json(res, 0, 0, NULL));
}

static void
keys_get(au_req_t *req)
{
    const char *org = org_with_keys_admin(req);
    if (org == NULL)
        return;
    if (!au_id_valid(req->api->id, "key_")) {
        au_req_reply_error(req, LC_ERR_NOT_FOUND, "no such API key");
        return;
    }
    const char *params[] = {org, req->api->id};
    if (lc_pg_query(req->ctx->pg,
                    "SELECT " AU_KEY_COLS " FROM api_keys WHERE org_id = $1 AND id = $2", 2, params,
                    on_got, req) != LC_OK)
        au_req_reply_error(req, LC_ERR_UNAVAILABLE, "could not read the API key");
}

/* ---- revoke ---- */

/* Revokes once; a second revoke answers the key as it is, without a new audit row or
 * event. Column 0 says whether this statement revoked it, the last one is the hash (for
 * the cache, never sent out of auth). */
static const char REVOKE_SQL[] =
    "WITH r AS ("
    " UPDATE api_keys SET revoked_at = now() WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL"
    " RETURNING " AU_KEY_COLS ", encode(secret_hash, 'hex') AS hash),"
    " a AS (INSERT INTO auth_audit (org_id, principal_kind, principal_id, action,"
    " resource_type, resource_id, changes, request_id)"
    " SELECT $1, $3, $4, 'api_key.revoke', 'api_key', r.id, '{\"revoked\":true}', $5 FROM r)"
    " SELECT true, r.* FROM r"
    " UNION ALL"
    " SELECT false, " AU_KEY_COLS ", encode(secret_hash, 'hex') FROM api_keys"
    " WHERE org_id = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM r)";

static void
on_revoked(lc_status_t status, PGresult *res, void *arg)
{
    au_req_t *req = arg;
    if (status != LC_OK) {
        au_req_reply_error(req, db_status(status, res), "could not revoke the API key");
        return;
    }
    if (PQntuples(res) != 1) {
        au_req_reply_error(req, LC_ERR_NOT_FOUND, "no such API key");
        return;
    }
    const char *org = req->env->org_id;
    const char *id = PQgetvalue(res, 0, 1);
    const char *hex = PQgetvalue(res, 0, 1 + AU_KEY_NCOLS);
    uint8_t hash[AU_KEY_HASH_LEN];
    if (strlen(hex) == 2 * AU_KEY_HASH_LEN) {
        for (size_t i = 0; i < AU_KEY_HASH_LEN; i++) {
            unsigned v = 0;
            sscanf(hex + 2 * i, "%2x", &v);
            hash[i] = (uint8_t) v;
        }
        /* also on a repeated revoke: an instance may have missed the first broadcast */
        au_authn_revoked(req->ctx, id, org, hash);
    }
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        LC_INFO("keys", "API key %s revoked in %s", id, org);
        lc_events_publish(req->ctx->events, org, "api_key.revoked", au_key_json(res, 0, 1, NULL),
                          NULL);
    }
    au_req_reply_json(req, 200, au_key_json(res, 0, 1, NULL));
}

static void
keys_revoke(au_req_t *req)
{
    const char *org = org_with_keys_admin(req);
    if (org == NULL)
        return;
    if (!au_id_valid(req->api->id, "key_")) {
        au_req_reply_error(req, LC_ERR_NOT_FOUND, "no such API key");
        return;
    }
    const char *params[] = {org, req->api->id, principal_kind(req), au_req_principal_id(req),
                            req->env->request_id};
    if (lc_pg_query(req->ctx->pg, REVOKE_SQL, 5, params, on_revoked, req) != LC_OK)
        au_req_reply_error(req, LC_ERR_UNAVAILABLE, "could not revoke the API key");
}

lc_status_t
au_keys_start(au_ctx_t *ctx)
{
    LC_TRY(au_api_subscribe(ctx, AU_SUBJECT_KEYS_CREATE, "keys.create", keys_create));
    LC_TRY(au_api_subscribe(ctx, AU_SUBJECT_KEYS_LIST, "keys.list", keys_list));
    LC_TRY(au_api_subscribe(ctx, AU_SUBJECT_KEYS_GET, "keys.get", keys_get));
    return au_api_subscribe(ctx, AU_SUBJECT_KEYS_REVOKE, "keys.revoke", keys_revoke);
}
