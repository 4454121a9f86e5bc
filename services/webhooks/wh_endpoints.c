/*
 * The webhook endpoint and delivery handlers (see wh_api.h for the routes).
 *
 * Every change is one SQL statement: the change, its audit row (same transaction) and the
 * rendered object. URLs are checked at creation and on update by the same SSRF guard the
 * deliveries use (a host name is resolved off the loop and every address checked); a name
 * that does not resolve yet is accepted (its deliveries fail until it does).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "wh_api.h"
#include "wh_delivery.h"
#include "wh_events.h"
#include "wh_model.h"
#include "wh_sign.h"
#include "wh_target.h"

#define DESCRIPTION_MAX 500
#define EVENT_TYPES_MAX 100
#define METADATA_KEYS_MAX 50
#define METADATA_KEY_MAX 40
#define METADATA_VALUE_MAX 500

static const char *const endpoint_fields[] = {"url",     "description", "event_types",
                                              "enabled", "metadata",    NULL};

/* ---- validation ---- */

static bool
has_prefix_id(const char *id, const char *prefix)
{
    return strncmp(id, prefix, strlen(prefix)) == 0 && wh_id_valid(id);
}

static void
check_known_fields(wh_req_t *req)
{
    const char *key;
    json_t *value;
    json_object_foreach(req->body, key, value)
    {
        bool known = false;
        for (const char *const *f = endpoint_fields; *f; f++)
            if (strcmp(key, *f) == 0)
                known = true;
        if (!known) {
            char field[80];
            snprintf(field, sizeof(field), "%.60s", key);
            wh_req_field_error(req, field, "is not a known field");
        }
    }
}

/* A filter entry: "*", an event type, or an event type prefix followed by ".*". */
static bool
event_filter_valid(const char *f)
{
    if (strcmp(f, "*") == 0)
        return true;
    size_t n = strlen(f);
    if (n > 2 && strcmp(f + n - 2, ".*") == 0) {
        char prefix[WH_TYPE_MAX + 1];
        if (n - 2 > WH_TYPE_MAX)
            return false;
        memcpy(prefix, f, n - 2);
        prefix[n - 2] = '\0';
        return wh_event_type_valid(prefix);
    }
    return wh_event_type_valid(f);
}

/* Returns the filter list to store (duplicates dropped), or NULL after a field error. */
static json_t *
validate_event_types(wh_req_t *req, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return json_array();
    if (!json_is_array(v)) {
        wh_req_field_error(req, "event_types", "must be an array of event types");
        return NULL;
    }
    if (json_array_size(v) > EVENT_TYPES_MAX) {
        wh_req_field_error(req, "event_types", "must have at most %d entries", EVENT_TYPES_MAX);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *item;
    bool ok = true;
    json_array_foreach(v, i, item)
    {
        char field[48];
        snprintf(field, sizeof(field), "event_types[%zu]", i);
        const char *s = json_string_value(item);
        if (s == NULL || !event_filter_valid(s)) {
            wh_req_field_error(req, field,
                               "must be an event type (\"call.ended\"), a family (\"call.*\") "
                               "or \"*\"");
            ok = false;
            continue;
        }
        bool dup = false;
        size_t k;
        json_t *seen;
        json_array_foreach(out, k, seen) if (strcmp(json_string_value(seen), s) == 0) dup = true;
        if (!dup)
            json_array_append_new(out, json_string(s));
    }
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static void
validate_metadata(wh_req_t *req, json_t *v)
{
    if (!json_is_object(v)) {
        wh_req_field_error(req, "metadata", "must be an object of strings");
        return;
    }
    if (json_object_size(v) > METADATA_KEYS_MAX)
        wh_req_field_error(req, "metadata", "must have at most %d keys", METADATA_KEYS_MAX);
    const char *key;
    json_t *value;
    json_object_foreach(v, key, value)
    {
        char field[80];
        snprintf(field, sizeof(field), "metadata.%.40s", key);
        if (strlen(key) == 0 || strlen(key) > METADATA_KEY_MAX)
            wh_req_field_error(req, field, "keys must be 1..%d characters", METADATA_KEY_MAX);
        else if (!json_is_string(value))
            wh_req_field_error(req, field, "must be a string");
        else if (json_string_length(value) > METADATA_VALUE_MAX)
            wh_req_field_error(req, field, "must be at most %d characters", METADATA_VALUE_MAX);
    }
}

static void
validate_description(wh_req_t *req, json_t *v)
{
    if (!json_is_string(v))
        wh_req_field_error(req, "description", "must be a string");
    else if (json_string_length(v) > DESCRIPTION_MAX)
        wh_req_field_error(req, "description", "must be at most %d characters", DESCRIPTION_MAX);
}

/* Syntax of the url field; fills *t. */
static bool
validate_url(wh_req_t *req, json_t *v, wh_target_t *t)
{
    if (!json_is_string(v)) {
        wh_req_field_error(req, "url", "must be a string");
        return false;
    }
    char err[160];
    if (wh_url_parse(json_string_value(v), req->ws->cfg->allow_http, t, err, sizeof(err)) !=
        LC_OK) {
        wh_req_field_error(req, "url", "%s", err);
        return false;
    }
    return true;
}

/* ---- the SSRF check of a new URL, then req->next ---- */

static void
url_blocked(wh_req_t *req, const wh_target_t *t, lc_ssrf_class_t c, const char *bad)
{
    if (t->literal)
        wh_req_field_error(req, "url", "%s is a %s address, which is not allowed", bad,
                           lc_ssrf_class_name(c));
    else
        wh_req_field_error(req, "url",
                           "host %s resolves to a %s address (%s), which is not allowed", t->host,
                           lc_ssrf_class_name(c), bad);
    wh_req_fail_fields(req);
}

static void
on_url_resolved(lc_status_t status, const wh_target_t *t, void *arg)
{
    wh_req_t *req = arg;
    req->resolving = NULL;
    lc_log_context_set(req->request_id, NULL);
    if (status == LC_OK) {
        char bad[LC_SSRF_IP_TEXT_MAX];
        lc_ssrf_class_t c = wh_target_check(t, req->ws->allowlist, bad);
        if (c != LC_SSRF_PUBLIC) {
            url_blocked(req, t, c, bad);
            return;
        }
    } else {
        LC_DEBUG("api", "%s does not resolve (yet); accepted", t->host);
    }
    req->next(req);
}

static void
check_url_then(wh_req_t *req, const wh_target_t *t, void (*next)(wh_req_t *req))
{
    req->next = next;
    if (t->literal) {
        char bad[LC_SSRF_IP_TEXT_MAX];
        lc_ssrf_class_t c = wh_target_check(t, req->ws->allowlist, bad);
        if (c != LC_SSRF_PUBLIC) {
            url_blocked(req, t, c, bad);
            return;
        }
        next(req);
        return;
    }
    if (wh_target_resolve(req->ws->loop, t, on_url_resolved, req, &req->resolving) != LC_OK)
        wh_req_fail(req, LC_ERR_INTERNAL, "internal error");
}

/* ---- replies ---- */

/* Replies with the endpoint JSON rendered by the query (column col), adding the secret when
 * the request holds one to show. */
static void
reply_endpoint(wh_req_t *req, int http_status, PGresult *res, int col)
{
    const char *text = PQgetvalue(res, 0, col);
    if (req->secret[0] == '\0') {
        wh_req_reply(req, http_status, text);
        return;
    }
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    if (obj == NULL) {
        wh_req_fail(req, LC_ERR_INTERNAL, "internal error");
        return;
    }
    json_object_set_new(obj, "secret", json_string(req->secret));
    char *out = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    wh_req_reply(req, http_status, out);
    free(out);
}

static void
reply_list(wh_req_t *req, PGresult *res, int id_col, int json_col)
{
    json_t *data = json_array();
    int rows = PQntuples(res), shown = 0;
    const char *last_id = NULL;
    for (int r = 0; r < rows && shown < req->limit; r++) {
        if (PQgetisnull(res, r, id_col))
            continue;
        json_error_t jerr;
        json_t *obj = json_loads(PQgetvalue(res, r, json_col), 0, &jerr);
        if (obj == NULL) {
            json_decref(data);
            wh_req_fail(req, LC_ERR_INTERNAL, "internal error");
            return;
        }
        json_array_append_new(data, obj);
        last_id = PQgetvalue(res, r, id_col);
        shown++;
    }
    bool has_more = rows > req->limit;
    json_t *page =
        json_pack("{s:s, s:o, s:b}", "object", "list", "data", data, "has_more", has_more);
    json_object_set_new(page, "next_cursor",
                        has_more && last_id ? json_string(last_id) : json_null());
    char *out = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    wh_req_reply(req, 200, out);
    free(out);
}

static char *
audit_changes(json_t *changes)
{
    return changes ? json_dumps(changes, JSON_COMPACT) : lc_strdup("{}");
}

/* ---- create ---- */

static void
on_created(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    LC_INFO("api", "webhook endpoint %s created for %s", PQgetvalue(res, 0, 0), req->org_id);
    reply_endpoint(req, 201, res, 1);
}

static const char CREATE_SQL[] =
    "WITH e AS ("
    "  INSERT INTO webhook_endpoints (id, org_id, url, description, event_types, enabled,"
    "    disabled_reason, metadata, secret)"
    "  VALUES ($1, $2, $3, $4, ARRAY(SELECT json_array_elements_text($5::json)), $6::boolean,"
    "    CASE WHEN $6::boolean THEN NULL ELSE 'manual' END, $7::jsonb, $8)"
    "  RETURNING *"
    "), a AS ("
    "  INSERT INTO webhook_audit (org_id, principal_kind, principal_id, action, resource_type,"
    "    resource_id, changes, request_id)"
    "  SELECT e.org_id, $9, $10, 'webhook_endpoint.create', 'webhook_endpoint', e.id,"
    "    $11::jsonb, $12 FROM e"
    ")"
    "SELECT e.id, " WH_ENDPOINT_JSON("e") "::text FROM e";

static void
create_insert(wh_req_t *req)
{
    json_t *b = req->body;
    char id[32];
    lc_id_new("we_", id, sizeof(id));
    wh_secret_generate(req->secret, sizeof(req->secret));
    json_t *desc = json_object_get(b, "description");
    json_t *enabled = json_object_get(b, "enabled");
    json_t *meta = json_object_get(b, "metadata");
    char *types = json_dumps(req->doc, JSON_COMPACT); /* the normalised filter list */
    char *meta_text = meta ? json_dumps(meta, JSON_COMPACT) : lc_strdup("{}");
    char *changes = audit_changes(b);
    const char *params[] = {
        id,
        req->org_id,
        json_string_value(json_object_get(b, "url")),
        desc ? json_string_value(desc) : "",
        types,
        enabled == NULL || json_is_true(enabled) ? "true" : "false",
        meta_text,
        req->secret,
        req->principal_kind,
        req->principal_id,
        changes,
        req->request_id,
    };
    wh_req_query(req, CREATE_SQL, 12, params, on_created);
    free(types);
    free(meta_text);
    free(changes);
}

void
wh_endpoints_create(wh_req_t *req)
{
    json_t *b = req->body;
    check_known_fields(req);
    wh_target_t t;
    json_t *url = json_object_get(b, "url");
    bool url_ok = false;
    if (url == NULL)
        wh_req_field_error(req, "url", "is required");
    else
        url_ok = validate_url(req, url, &t);
    json_t *v;
    if ((v = json_object_get(b, "description")) != NULL)
        validate_description(req, v);
    if ((v = json_object_get(b, "enabled")) != NULL && !json_is_boolean(v))
        wh_req_field_error(req, "enabled", "must be true or false");
    if ((v = json_object_get(b, "metadata")) != NULL)
        validate_metadata(req, v);
    req->doc = validate_event_types(req, json_object_get(b, "event_types"));
    if (req->errors != NULL || !url_ok) {
        wh_req_fail_fields(req);
        return;
    }
    check_url_then(req, &t, create_insert);
}

/* ---- list and get ---- */

static void
on_listed(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        wh_req_field_error(req, "starting_after", "no webhook endpoint with this id");
        wh_req_fail_fields(req);
        return;
    }
    reply_list(req, res, 1, 2);
}

void
wh_endpoints_list(wh_req_t *req)
{
    static const char sql[] =
        "WITH cur AS (SELECT created_at, id FROM webhook_endpoints WHERE org_id = $1 AND id = $2)"
        "SELECT ($2 = '' OR EXISTS (SELECT 1 FROM cur)), l.id, l.j"
        "  FROM (SELECT 1) one LEFT JOIN LATERAL ("
        "    SELECT e.id, e.created_at, " WH_ENDPOINT_JSON(
            "e") "::text AS j"
                 "    FROM webhook_endpoints e WHERE e.org_id = $1"
                 "      AND ($2 = '' OR (e.created_at, e.id) > (SELECT created_at, id FROM cur))"
                 "    ORDER BY e.created_at, e.id LIMIT $3) l ON true"
                 "  ORDER BY l.created_at, l.id";
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", req->limit + 1);
    const char *params[] = {req->org_id, req->starting_after, limit};
    wh_req_query(req, sql, 3, params, on_listed);
}

static void
on_got(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    reply_endpoint(req, 200, res, 0);
}

void
wh_endpoints_get(wh_req_t *req)
{
    if (!has_prefix_id(req->id, "we_")) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    const char *params[] = {req->org_id, req->id};
    wh_req_query(req,
                 "SELECT " WH_ENDPOINT_JSON("e") "::text FROM webhook_endpoints e "
                                                 "WHERE e.org_id = $1 AND e.id = $2",
                 2, params, on_got);
}

/* ---- update (JSON merge patch, RFC 7396) ---- */

static const char UPDATE_SQL[] =
    "WITH e AS ("
    "  UPDATE webhook_endpoints SET"
    "    url = coalesce($3, url),"
    "    description = coalesce($4, description),"
    "    event_types = CASE WHEN $5::json IS NULL THEN event_types"
    "      ELSE ARRAY(SELECT json_array_elements_text($5::json)) END,"
    "    enabled = coalesce($6::boolean, enabled),"
    "    disabled_reason = CASE WHEN $6::boolean IS NULL THEN disabled_reason"
    "      WHEN $6::boolean THEN NULL WHEN enabled THEN 'manual' ELSE disabled_reason END,"
    "    failing_since = CASE WHEN $6::boolean THEN NULL ELSE failing_since END,"
    "    metadata = coalesce($7::jsonb, metadata),"
    "    updated_at = clock_timestamp()"
    "  WHERE org_id = $1 AND id = $2 AND updated_at = $8::timestamptz"
    "  RETURNING *"
    "), f AS ("
    "  UPDATE webhook_deliveries d SET status = 'failed', next_attempt_at = NULL,"
    "    last_error = 'endpoint disabled', updated_at = now()"
    "  FROM e WHERE d.endpoint_id = e.id AND NOT e.enabled AND d.status = 'pending'"
    "    AND (d.locked_until IS NULL OR d.locked_until < now())"
    "), a AS ("
    "  INSERT INTO webhook_audit (org_id, principal_kind, principal_id, action, resource_type,"
    "    resource_id, changes, request_id)"
    "  SELECT e.org_id, $9, $10, 'webhook_endpoint.update', 'webhook_endpoint', e.id,"
    "    $11::jsonb, $12 FROM e"
    ")"
    "SELECT " WH_ENDPOINT_JSON("e") "::text FROM e";

static void
on_updated(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0) {
        wh_req_fail(req, LC_ERR_CONFLICT,
                    "the webhook endpoint was changed or deleted meanwhile; read it and retry");
        return;
    }
    reply_endpoint(req, 200, res, 0);
}

static void
update_write(wh_req_t *req)
{
    json_t *b = req->body;
    json_t *v;
    char *types = NULL, *meta = NULL;
    const char *url = json_string_value(json_object_get(b, "url"));
    const char *desc = NULL;
    if ((v = json_object_get(b, "description")) != NULL)
        desc = json_is_null(v) ? "" : json_string_value(v);
    if (json_object_get(b, "event_types") != NULL)
        types = json_dumps(json_object_get(req->doc, "event_types"), JSON_COMPACT);
    const char *enabled = NULL;
    if ((v = json_object_get(b, "enabled")) != NULL)
        enabled = json_is_true(v) ? "true" : "false";
    if (json_object_get(b, "metadata") != NULL)
        meta = json_dumps(json_object_get(req->doc, "metadata"), JSON_COMPACT);
    char *changes = audit_changes(b);
    const char *params[] = {
        req->org_id,
        req->id,
        url,
        desc,
        types,
        enabled,
        meta,
        req->text, /* updated_at as read */
        req->principal_kind,
        req->principal_id,
        changes,
        req->request_id,
    };
    wh_req_query(req, UPDATE_SQL, 12, params, on_updated);
    free(types);
    free(meta);
    free(changes);
}

/* RFC 7396 section 2 on the metadata object: null removes a key, null as the whole value
 * clears it. */
static json_t *
merge_metadata(json_t *current, json_t *patch)
{
    if (!json_is_object(patch))
        return json_object();
    json_t *out = json_is_object(current) ? json_deep_copy(current) : json_object();
    const char *key;
    json_t *value;
    json_object_foreach(patch, key, value)
    {
        if (json_is_null(value))
            json_object_del(out, key);
        else
            json_object_set(out, key, value);
    }
    return out;
}

static void
on_update_read(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    req->text = lc_strdup(PQgetvalue(res, 0, 0));
    json_t *patch_meta = json_object_get(req->body, "metadata");
    if (patch_meta != NULL) {
        json_error_t jerr;
        json_t *current = json_loads(PQgetvalue(res, 0, 1), 0, &jerr);
        json_t *merged = merge_metadata(current, patch_meta);
        json_decref(current);
        validate_metadata(req, merged);
        json_object_set_new(req->doc, "metadata", merged);
        if (req->errors) {
            wh_req_fail_fields(req);
            return;
        }
    }
    json_t *url = json_object_get(req->body, "url");
    if (url != NULL) {
        wh_target_t t;
        validate_url(req, url, &t); /* checked before the read: cannot fail here */
        check_url_then(req, &t, update_write);
        return;
    }
    update_write(req);
}

void
wh_endpoints_update(wh_req_t *req)
{
    if (!has_prefix_id(req->id, "we_")) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    json_t *b = req->body;
    check_known_fields(req);
    req->doc = json_object();
    json_t *v;
    wh_target_t t;
    if ((v = json_object_get(b, "url")) != NULL)
        validate_url(req, v, &t);
    if ((v = json_object_get(b, "description")) != NULL && !json_is_null(v))
        validate_description(req, v);
    if ((v = json_object_get(b, "enabled")) != NULL && !json_is_boolean(v))
        wh_req_field_error(req, "enabled", "must be true or false");
    if ((v = json_object_get(b, "metadata")) != NULL && !json_is_null(v) && !json_is_object(v))
        wh_req_field_error(req, "metadata", "must be an object of strings or null");
    if ((v = json_object_get(b, "event_types")) != NULL) {
        json_t *types = validate_event_types(req, v);
        if (types)
            json_object_set_new(req->doc, "event_types", types);
    }
    if (req->errors != NULL) {
        wh_req_fail_fields(req);
        return;
    }
    if (json_object_size(b) == 0) {
        /* nothing to change: answer with the endpoint as it is */
        wh_endpoints_get(req);
        return;
    }
    const char *params[] = {req->org_id, req->id};
    wh_req_query(req,
                 "SELECT updated_at::text, metadata::text FROM webhook_endpoints "
                 "WHERE org_id = $1 AND id = $2",
                 2, params, on_update_read);
}

/* ---- delete ---- */

static void
on_deleted(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    LC_INFO("api", "webhook endpoint %s of %s deleted", req->id, req->org_id);
    wh_req_reply(req, 204, NULL);
}

void
wh_endpoints_delete(wh_req_t *req)
{
    if (!has_prefix_id(req->id, "we_")) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    static const char sql[] =
        "WITH e AS (DELETE FROM webhook_endpoints WHERE org_id = $1 AND id = $2"
        "  RETURNING id, org_id, url"
        "), a AS ("
        "  INSERT INTO webhook_audit (org_id, principal_kind, principal_id, action,"
        "    resource_type, resource_id, changes, request_id)"
        "  SELECT e.org_id, $3, $4, 'webhook_endpoint.delete', 'webhook_endpoint', e.id,"
        "    jsonb_build_object('url', e.url), $5 FROM e"
        ")"
        "SELECT id FROM e";
    const char *params[] = {req->org_id, req->id, req->principal_kind, req->principal_id,
                            req->request_id};
    wh_req_query(req, sql, 5, params, on_deleted);
}

/* ---- rotate-secret ---- */

static void
on_rotated(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0) {
        memset(req->secret, 0, sizeof(req->secret));
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    LC_INFO("api", "webhook endpoint %s of %s: secret rotated", req->id, req->org_id);
    reply_endpoint(req, 200, res, 0);
}

void
wh_endpoints_rotate(wh_req_t *req)
{
    if (!has_prefix_id(req->id, "we_")) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    static const char sql[] =
        "WITH e AS ("
        "  UPDATE webhook_endpoints SET previous_secret = secret,"
        "    previous_secret_expires_at = now() + make_interval(secs => $4::double precision),"
        "    secret = $3, updated_at = clock_timestamp()"
        "  WHERE org_id = $1 AND id = $2 RETURNING *"
        "), a AS ("
        "  INSERT INTO webhook_audit (org_id, principal_kind, principal_id, action,"
        "    resource_type, resource_id, changes, request_id)"
        "  SELECT e.org_id, $5, $6, 'webhook_endpoint.rotate_secret', 'webhook_endpoint', e.id,"
        "    jsonb_build_object('previous_secret_expires_at',"
        "      webhook_ts(e.previous_secret_expires_at)), $7 FROM e"
        ")"
        "SELECT " WH_ENDPOINT_JSON("e") "::text FROM e";
    wh_secret_generate(req->secret, sizeof(req->secret));
    char overlap[24];
    snprintf(overlap, sizeof(overlap), "%" PRId64, req->ws->cfg->secret_overlap_s);
    const char *params[] = {req->org_id,         req->id,           req->secret,    overlap,
                            req->principal_kind, req->principal_id, req->request_id};
    wh_req_query(req, sql, 7, params, on_rotated);
}

/* ---- test event ---- */

static void
on_test_created(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    char *reply = lc_strdup(PQgetvalue(res, 0, WH_JOB_NCOLUMNS));
    wh_delivery_add_jobs(req->ws->delivery, res, 0);
    wh_req_reply(req, 202, reply);
    free(reply);
}

void
wh_endpoints_test(wh_req_t *req)
{
    if (!has_prefix_id(req->id, "we_")) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    static const char sql[] =
        "WITH ep AS (SELECT * FROM webhook_endpoints WHERE org_id = $1 AND id = $2"
        "), d AS ("
        "  INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_type,"
        "    payload, next_attempt_at, locked_until, locked_by, event_created_at)"
        "  SELECT $3, ep.org_id, ep.id, $4, 'webhook.test', $5, now(),"
        "    now() + make_interval(secs => $6::double precision / 1000), $7, $8::timestamptz"
        "  FROM ep RETURNING *"
        "), a AS ("
        "  INSERT INTO webhook_audit (org_id, principal_kind, principal_id, action,"
        "    resource_type, resource_id, changes, request_id)"
        "  SELECT d.org_id, $9, $10, 'webhook_endpoint.test', 'webhook_endpoint', d.endpoint_id,"
        "    jsonb_build_object('delivery_id', d.id, 'event_id', d.event_id), $11 FROM d"
        ")"
        "SELECT " WH_JOB_COLUMNS
        ", " WH_DELIVERY_JSON("d") "::text"
                                   "  FROM d JOIN ep ON ep.id = d.endpoint_id";
    char delivery_id[32], event_id[32], created[32], lock[24];
    lc_id_new("wd_", delivery_id, sizeof(delivery_id));
    lc_id_new("evt_", event_id, sizeof(event_id));
    lc_time_format_rfc3339(lc_time_wall_ms(), created, sizeof(created));
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "id", event_id, "type", "webhook.test",
                  "created_at", created, "org_id", req->org_id, "data", "endpoint_id", req->id,
                  "message", "a test event sent from the VoxiHub API");
    char *payload = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    snprintf(lock, sizeof(lock), "%" PRId64, (int64_t) WH_LOCK_MS(req->ws->cfg));
    const char *params[] = {
        req->org_id,          req->id, delivery_id,         event_id,          payload,        lock,
        req->ws->instance_id, created, req->principal_kind, req->principal_id, req->request_id};
    wh_req_query(req, sql, 11, params, on_test_created);
    free(payload);
}

/* ---- deliveries ---- */

static void
on_deliveries_listed(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        wh_req_field_error(req, "starting_after", "no delivery with this id");
        wh_req_fail_fields(req);
        return;
    }
    reply_list(req, res, 2, 3);
}

void
wh_deliveries_list(wh_req_t *req)
{
    if (!has_prefix_id(req->id, "we_")) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook endpoint not found");
        return;
    }
    static const char sql[] =
        "WITH cur AS (SELECT created_at, id FROM webhook_deliveries"
        "  WHERE org_id = $1 AND endpoint_id = $2 AND id = $3)"
        "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE org_id = $1 AND id = $2),"
        "  ($3 = '' OR EXISTS (SELECT 1 FROM cur)), l.id, l.j"
        "  FROM (SELECT 1) one LEFT JOIN LATERAL ("
        "    SELECT d.id, d.created_at, " WH_DELIVERY_JSON(
            "d") "::text AS j"
                 "    FROM webhook_deliveries d WHERE d.org_id = $1 AND d.endpoint_id = $2"
                 "      AND ($3 = '' OR (d.created_at, d.id) > (SELECT created_at, id FROM cur))"
                 "    ORDER BY d.created_at, d.id LIMIT $4) l ON true"
                 "  ORDER BY l.created_at, l.id";
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", req->limit + 1);
    const char *params[] = {req->org_id, req->id, req->starting_after, limit};
    wh_req_query(req, sql, 4, params, on_deliveries_listed);
}

static void
on_retried(wh_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        wh_req_fail_db(req, st);
        return;
    }
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook delivery not found");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        wh_req_fail(req, LC_ERR_CONFLICT, "an attempt of this delivery is in progress");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 2), "t") != 0 || PQgetisnull(res, 0, 3)) {
        wh_req_fail(req, LC_ERR_CONFLICT,
                    "the webhook endpoint is disabled; enable it first (PATCH enabled=true)");
        return;
    }
    char *reply = lc_strdup(PQgetvalue(res, 0, 3 + WH_JOB_NCOLUMNS));
    wh_delivery_add_jobs(req->ws->delivery, res, 3);
    wh_req_reply(req, 202, reply);
    free(reply);
}

void
wh_deliveries_retry(wh_req_t *req)
{
    if (!has_prefix_id(req->id, "wd_")) {
        wh_req_fail(req, LC_ERR_NOT_FOUND, "webhook delivery not found");
        return;
    }
    static const char sql[] =
        "WITH cur AS ("
        "  SELECT dd.id, coalesce(dd.locked_until > now(), false) AS busy, e.enabled"
        "  FROM webhook_deliveries dd JOIN webhook_endpoints e ON e.id = dd.endpoint_id"
        "  WHERE dd.org_id = $1 AND dd.id = $2"
        "), d AS ("
        "  UPDATE webhook_deliveries dd SET status = 'pending', next_attempt_at = now(),"
        "    locked_until = now() + make_interval(secs => $3::double precision / 1000),"
        "    locked_by = $4, updated_at = now()"
        "  FROM cur WHERE dd.id = cur.id AND NOT cur.busy AND cur.enabled"
        "  RETURNING dd.*"
        "), a AS ("
        "  INSERT INTO webhook_audit (org_id, principal_kind, principal_id, action,"
        "    resource_type, resource_id, changes, request_id)"
        "  SELECT d.org_id, $5, $6, 'webhook_delivery.retry', 'webhook_delivery', d.id,"
        "    '{}'::jsonb, $7 FROM d"
        ")"
        "SELECT (SELECT count(*) FROM cur), coalesce((SELECT bool_or(busy) FROM cur), false),"
        "  coalesce((SELECT bool_and(enabled) FROM cur), false), " WH_JOB_COLUMNS
        ", " WH_DELIVERY_JSON("d") "::text"
                                   "  FROM (SELECT 1) one LEFT JOIN (d JOIN webhook_endpoints ep "
                                   "ON ep.id = d.endpoint_id)"
                                   "  ON true";
    char lock[24];
    snprintf(lock, sizeof(lock), "%" PRId64, (int64_t) WH_LOCK_MS(req->ws->cfg));
    const char *params[] = {
        req->org_id,         req->id,           lock,           req->ws->instance_id,
        req->principal_kind, req->principal_id, req->request_id};
    wh_req_query(req, sql, 7, params, on_retried);
}
