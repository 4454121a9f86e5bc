#include "au_orgs.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "au_api.h"
#include "au_key.h"
#include "au_keys.h"
#include "au_scope.h"
#include "au_text.h"
#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define ORG_NAME_MAX_CHARS 200

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

/* The org, its first key and both audit rows commit together. Columns: org id, name,
 * created_at (ms), then AU_KEY_COLS of the key. */
static const char CREATE_SQL[] =
    "WITH o AS ("
    " INSERT INTO orgs (id, name) VALUES ($1, $2)"
    " RETURNING id, name, floor(extract(epoch FROM created_at) * 1000)::bigint AS created_ms),"
    " k AS ("
    " INSERT INTO api_keys (id, org_id, name, prefix, secret_hash, scopes)"
    " SELECT $3, o.id, 'default', $4, decode($5, 'hex'), string_to_array($6, ' ') FROM o"
    " RETURNING " AU_KEY_COLS "),"
    " a AS (INSERT INTO auth_audit (org_id, principal_kind, principal_id, action,"
    " resource_type, resource_id, changes, request_id)"
    " SELECT o.id, $7, $8, 'org.create', 'org', o.id, jsonb_build_object('name', o.name), $9"
    " FROM o"
    " UNION ALL"
    " SELECT $1, $7, $8, 'api_key.create', 'api_key', k.id,"
    " jsonb_build_object('name', 'default', 'scopes', string_to_array($6, ' ')), $9 FROM k)"
    " SELECT o.id, o.name, o.created_ms, k.* FROM o, k";

static json_t *
org_json(PGresult *res)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "object", "org", "id", PQgetvalue(res, 0, 0), "name",
                     PQgetvalue(res, 0, 1), "created_at", au_json_time(PQgetvalue(res, 0, 2)));
}

static void
on_created(lc_status_t status, PGresult *res, void *arg)
{
    au_req_t *req = arg;
    create_t *c = req->data;
    if (status != LC_OK || PQntuples(res) != 1) {
        au_req_reply_error(req, status == LC_ERR_TIMEOUT ? LC_ERR_TIMEOUT : LC_ERR_UNAVAILABLE,
                           "could not create the org");
        return;
    }
    lc_events_publish(req->ctx->events, c->org_id, "org.created", org_json(res), NULL);
    lc_events_publish(req->ctx->events, c->org_id, "api_key.created", au_key_json(res, 0, 3, NULL),
                      NULL);
    LC_INFO("orgs", "org %s created by %s", c->org_id, req->env->principal->id);
    au_req_reply_json(req, 201,
                      json_pack("{s:o, s:o}", "org", org_json(res), "api_key",
                                au_key_json(res, 0, 3, c->secret)));
}

static void
orgs_create(au_req_t *req)
{
    if (strcmp(au_req_principal_kind(req), "platform_admin") != 0 ||
        !(au_req_principal_scopes(req) & AU_SCOPE_PLATFORM_ADMIN)) {
        au_req_reply_error(req, LC_ERR_FORBIDDEN, "only a platform admin may create orgs");
        return;
    }
    json_t *body = au_req_body_object(req);
    if (body == NULL)
        return;
    au_fields_t f = {0};
    const char *field;
    json_t *value;
    json_object_foreach(body, field, value)
    {
        if (strcmp(field, "name") != 0)
            au_fields_add(&f, field, "unknown field");
    }
    json_t *name = json_object_get(body, "name");
    if (name == NULL || json_is_null(name))
        au_fields_add(&f, "name", "is required");
    else if (!json_is_string(name))
        au_fields_add(&f, "name", "must be a string");
    else if (au_utf8_length(json_string_value(name)) < 1 ||
             au_utf8_length(json_string_value(name)) > ORG_NAME_MAX_CHARS)
        au_fields_add(&f, "name", "must be 1 to %d characters", ORG_NAME_MAX_CHARS);
    else if (au_has_control(json_string_value(name)) ||
             strlen(json_string_value(name)) != json_string_length(name))
        au_fields_add(&f, "name", "must not contain control characters");
    if (f.n > 0) {
        json_decref(body);
        au_req_reply_invalid(req, "the org is not valid", &f);
        return;
    }

    create_t *c = LC_NEW(create_t);
    req->data = c;
    req->free_data = create_free;
    char key_id[AU_ID_MAX], prefix[AU_KEY_PREFIX_LEN + 1], hash_hex[2 * AU_KEY_HASH_LEN + 1];
    char scopes[256];
    uint8_t hash[AU_KEY_HASH_LEN];
    lc_id_new("org_", c->org_id, sizeof(c->org_id));
    lc_id_new("key_", key_id, sizeof(key_id));
    au_key_generate(c->secret);
    au_key_hash(c->secret, AU_KEY_LEN, hash);
    au_hex(hash, sizeof(hash), hash_hex);
    au_key_prefix(c->secret, prefix);
    au_scopes_format(AU_SCOPES_ALL, ' ', scopes, sizeof(scopes));
    const char *params[] = {c->org_id,
                            json_string_value(name),
                            key_id,
                            prefix,
                            hash_hex,
                            scopes,
                            au_req_principal_kind(req),
                            au_req_principal_id(req),
                            req->env->request_id};
    lc_status_t st = lc_pg_query(req->ctx->pg, CREATE_SQL, 9, params, on_created, req);
    json_decref(body);
    if (st != LC_OK)
        au_req_reply_error(req, LC_ERR_UNAVAILABLE, "could not create the org");
}

lc_status_t
au_orgs_start(au_ctx_t *ctx)
{
    return au_api_subscribe(ctx, AU_SUBJECT_ORGS_CREATE, "orgs.create", orgs_create);
}
