/*
 * voxi.registry.numbers.*: phone numbers (create, list, get, update, delete) and resolve
 * (which agent answers a dialled number; for media workers).
 *
 * The trunk password is sealed (rg_secret) before it is written and never leaves the
 * service through the API: objects carry outbound_trunk.has_password instead, audit rows
 * "<redacted>". The database enforces that a number's agent belongs to the same org
 * (foreign key on (org_id, agent_id)) and that a number has one owner (unique).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_time.h"
#include "rg_json.h"
#include "rg_req.h"
#include "rg_validate.h"
#include "voxi/v1/registry.pb-c.h"

#define UPDATE_ATTEMPTS 3
#define REDACTED "<redacted>"
#define MS(col) "floor(extract(epoch from " col ") * 1000)::bigint"
#define NUMBER_COLS                                                                                \
    "id, number, agent_id, trunk_uri, trunk_username, trunk_password IS NOT NULL, " MS(            \
        "created_at") ", " MS("updated_at") ", updated_at::text"
#define AUDIT_INSERT                                                                               \
    "INSERT INTO registry_audit (org_id, principal_kind, principal_id, action, resource_type, "    \
    "resource_id, changes, request_id) "

enum { C_ID, C_NUMBER, C_AGENT, C_URI, C_USER, C_HAS_PASSWORD, C_CREATED, C_UPDATED, C_STAMP };

static json_t *
text_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

/* The phone_number object of the API from a row (NUMBER_COLS from column `c0`). */
static json_t *
render_row(PGresult *res, int row, int c0)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "id", json_string(PQgetvalue(res, row, c0 + C_ID)));
    json_object_set_new(obj, "object", json_string("phone_number"));
    json_object_set_new(obj, "number", json_string(PQgetvalue(res, row, c0 + C_NUMBER)));
    json_object_set_new(obj, "agent_id", text_or_null(res, row, c0 + C_AGENT));
    if (PQgetisnull(res, row, c0 + C_URI)) {
        json_object_set_new(obj, "outbound_trunk", json_null());
    } else {
        json_t *trunk = json_object();
        json_object_set_new(trunk, "uri", json_string(PQgetvalue(res, row, c0 + C_URI)));
        json_object_set_new(trunk, "username", text_or_null(res, row, c0 + C_USER));
        json_object_set_new(trunk, "has_password",
                            json_boolean(PQgetvalue(res, row, c0 + C_HAS_PASSWORD)[0] == 't'));
        json_object_set_new(obj, "outbound_trunk", trunk);
    }
    json_object_set_new(obj, "created_at",
                        rg_json_time(strtoll(PQgetvalue(res, row, c0 + C_CREATED), NULL, 10)));
    json_object_set_new(obj, "updated_at",
                        rg_json_time(strtoll(PQgetvalue(res, row, c0 + C_UPDATED), NULL, 10)));
    return obj;
}

/* The stored document a merge patch applies to (no password: it is never read back). */
static json_t *
stored_doc(PGresult *res)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "number", json_string(PQgetvalue(res, 0, C_NUMBER)));
    json_object_set_new(doc, "agent_id", text_or_null(res, 0, C_AGENT));
    if (PQgetisnull(res, 0, C_URI)) {
        json_object_set_new(doc, "outbound_trunk", json_null());
    } else {
        json_t *trunk = json_object();
        json_object_set_new(trunk, "uri", json_string(PQgetvalue(res, 0, C_URI)));
        if (!PQgetisnull(res, 0, C_USER))
            json_object_set_new(trunk, "username", json_string(PQgetvalue(res, 0, C_USER)));
        json_object_set_new(doc, "outbound_trunk", trunk);
    }
    return doc;
}

/* A copy of v with outbound_trunk.password (when a string) replaced by "<redacted>". */
static json_t *
redact(const json_t *v)
{
    json_t *copy = json_deep_copy(v);
    json_t *trunk = json_object_get(copy, "outbound_trunk");
    if (json_is_string(json_object_get(trunk, "password")))
        json_object_set_new(trunk, "password", json_string(REDACTED));
    return copy;
}

static void
reply_object(rg_req_t *req, int http_status, json_t *obj, const char *event_type)
{
    if (event_type != NULL)
        lc_events_publish(rg_req_events(req), req->org_id, event_type, json_incref(obj), NULL);
    char *text = http_status == 204 ? NULL : rg_json_dumps(obj);
    json_decref(obj);
    rg_req_reply(req, http_status, text);
    free(text);
}

/* Maps a failed write to the API's answer; true when it was one of ours. */
static bool
write_conflict(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_ERR_DB)
        return false;
    const char *state = rg_pg_sqlstate(res);
    if (strcmp(state, "23505") == 0) {
        rg_req_fail(req, LC_ERR_CONFLICT, "this number is already registered");
        return true;
    }
    if (strcmp(state, "23503") == 0) {
        if (strcmp(rg_pg_constraint(res), "phone_numbers_agent_fk") == 0)
            rg_req_fail_field(req, "agent_id", "no agent with this id");
        else
            rg_req_fail(req, LC_ERR_NOT_FOUND, "the organisation does not exist");
        return true;
    }
    return false;
}

static void
reply_row(rg_req_t *req, lc_status_t st, PGresult *res, int http_status, const char *event_type)
{
    if (write_conflict(req, st, res))
        return;
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    if (PQntuples(res) == 0) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "phone number not found");
        return;
    }
    reply_object(req, http_status, render_row(res, 0, 0), event_type);
}

static const char *
trunk_string(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(json_object_get(doc, "outbound_trunk"), key));
}

/* ---- create ---- */

static void
on_created(rg_req_t *req, lc_status_t st, PGresult *res)
{
    reply_row(req, st, res, 201, "phone_number.created");
}

void
rg_numbers_create(rg_req_t *req)
{
    json_t *doc = rg_req_parse_body(req);
    if (doc == NULL)
        return;
    rg_errors_t *errs = rg_errors_create();
    json_t *num = rg_number_validate(doc, errs);
    json_decref(doc);
    if (num == NULL) {
        rg_req_fail_fields(req, errs);
        return;
    }
    rg_errors_destroy(errs);
    char id[32];
    lc_id_new("pn_", id, sizeof(id));
    const char *password = trunk_string(num, "password");
    if (password != NULL)
        req->sealed = rg_secret_seal(rg_req_secret(req), password, id);
    json_t *audit = redact(num);
    char *audit_text = rg_json_dumps(audit);
    json_decref(audit);
    const char *params[] = {id,
                            req->org_id,
                            json_string_value(json_object_get(num, "number")),
                            json_string_value(json_object_get(num, "agent_id")),
                            trunk_string(num, "uri"),
                            trunk_string(num, "username"),
                            req->sealed,
                            req->principal_kind,
                            req->principal_id,
                            audit_text,
                            req->request_id};
    rg_req_query(req,
                 "WITH ins AS (INSERT INTO phone_numbers (id, org_id, number, agent_id, trunk_uri, "
                 "trunk_username, trunk_password) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                 "RETURNING *), "
                 "aud AS (" AUDIT_INSERT "SELECT org_id, $8, $9, 'phone_number.create', "
                 "'phone_number', id, $10::jsonb, $11 FROM ins) "
                 "SELECT " NUMBER_COLS " FROM ins",
                 11, params, on_created);
    json_decref(num);
    free(audit_text);
}

/* ---- get ---- */

static void
on_get(rg_req_t *req, lc_status_t st, PGresult *res)
{
    reply_row(req, st, res, 200, NULL);
}

void
rg_numbers_get(rg_req_t *req)
{
    if (!rg_id_valid(req->id, "pn_")) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "phone number not found");
        return;
    }
    const char *params[] = {req->org_id, req->id};
    rg_req_query(req, "SELECT " NUMBER_COLS " FROM phone_numbers WHERE org_id = $1 AND id = $2", 2,
                 params, on_get);
}

/* ---- list ---- */

static void
on_list(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    if (req->starting_after[0] != '\0' && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        rg_req_fail_field(req, "starting_after", "no phone number with this id");
        return;
    }
    json_t *data = json_array();
    int rows = PQntuples(res);
    for (int r = 0; r < rows && (int) json_array_size(data) < req->limit; r++)
        if (!PQgetisnull(res, r, 1))
            json_array_append_new(data, render_row(res, r, 1));
    bool has_more = rows > req->limit;
    json_t *page = json_object();
    json_object_set_new(page, "object", json_string("list"));
    json_object_set_new(page, "data", data);
    json_object_set_new(page, "has_more", json_boolean(has_more));
    json_t *last = json_array_get(data, json_array_size(data) - 1);
    json_object_set_new(page, "next_cursor",
                        has_more && last ? json_deep_copy(json_object_get(last, "id"))
                                         : json_null());
    reply_object(req, 200, page, NULL);
}

void
rg_numbers_list(rg_req_t *req)
{
    if (req->starting_after[0] != '\0' && !rg_id_valid(req->starting_after, "pn_")) {
        rg_req_fail_field(req, "starting_after", "no phone number with this id");
        return;
    }
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", req->limit + 1);
    const char *params[] = {req->org_id, req->starting_after, limit};
    rg_req_query(req,
                 "WITH cur AS (SELECT created_at, id FROM phone_numbers "
                 "WHERE org_id = $1 AND id = $2) "
                 "SELECT EXISTS (SELECT 1 FROM cur), p.* FROM (SELECT 1) AS one "
                 "LEFT JOIN LATERAL (SELECT " NUMBER_COLS " FROM phone_numbers "
                 "WHERE org_id = $1 AND ($2 = '' OR (created_at, id) > "
                 "(SELECT created_at, id FROM cur)) "
                 "ORDER BY created_at, id LIMIT $3::int) AS p ON true",
                 3, params, on_list);
}

/* ---- update ---- */

static void read_for_update(rg_req_t *req);

static void
on_updated(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st == LC_OK && PQntuples(res) == 0) {
        if (req->attempts < UPDATE_ATTEMPTS) {
            read_for_update(req);
            return;
        }
        rg_req_fail(req, LC_ERR_CONFLICT,
                    "the phone number was changed by another request at the same time; retry");
        return;
    }
    reply_row(req, st, res, 200, "phone_number.updated");
}

/* What the patch does to the stored password: "keep", "set" (req->sealed) or "clear". */
static const char *
password_op(rg_req_t *req, const json_t *num)
{
    if (json_object_get(num, "outbound_trunk") == NULL ||
        json_is_null(json_object_get(num, "outbound_trunk")))
        return "clear";
    const json_t *trunk_patch = json_object_get(req->patch, "outbound_trunk");
    if (!json_is_object(trunk_patch) || json_object_get(trunk_patch, "password") == NULL)
        return "keep";
    const char *password = trunk_string(num, "password");
    if (password == NULL)
        return "clear";
    free(req->sealed);
    req->sealed = rg_secret_seal(rg_req_secret(req), password, req->id);
    return "set";
}

static void
on_read_for_update(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK || PQntuples(res) == 0) {
        reply_row(req, st, res, 200, NULL);
        return;
    }
    json_t *stored = stored_doc(res);
    json_t *merged = rg_json_merge_patch(stored, req->patch);
    rg_errors_t *errs = req->errs;
    req->errs = NULL;
    json_t *num = rg_number_validate(merged, errs);
    json_decref(merged);
    if (num == NULL || errs->count > 0) {
        json_decref(num);
        json_decref(stored);
        rg_req_fail_fields(req, errs);
        return;
    }
    rg_errors_destroy(errs);
    const char *op = password_op(req, num);
    bool had_password = PQgetvalue(res, 0, C_HAS_PASSWORD)[0] == 't';
    bool password_same = strcmp(op, "keep") == 0 || (strcmp(op, "clear") == 0 && !had_password);
    bool unchanged = password_same && json_equal(num, stored);
    json_decref(stored);
    if (unchanged) {
        json_decref(num);
        reply_row(req, st, res, 200, NULL);
        return;
    }
    if (rg_req_expired(req)) {
        json_decref(num);
        rg_req_fail(req, LC_ERR_TIMEOUT, "deadline passed");
        return;
    }
    snprintf(req->password_op, sizeof(req->password_op), "%s", op);
    json_t *audit = redact(req->patch);
    char *audit_text = rg_json_dumps(audit);
    json_decref(audit);
    const char *params[] = {req->org_id,
                            req->id,
                            json_string_value(json_object_get(num, "number")),
                            json_string_value(json_object_get(num, "agent_id")),
                            trunk_string(num, "uri"),
                            trunk_string(num, "username"),
                            req->password_op,
                            strcmp(op, "set") == 0 ? req->sealed : NULL,
                            PQgetvalue(res, 0, C_STAMP),
                            req->principal_kind,
                            req->principal_id,
                            audit_text,
                            req->request_id};
    rg_req_query(req,
                 "WITH upd AS (UPDATE phone_numbers SET number = $3, agent_id = $4, "
                 "trunk_uri = $5, trunk_username = $6, "
                 "trunk_password = CASE WHEN $7 = 'keep' THEN trunk_password ELSE $8 END, "
                 "updated_at = now() "
                 "WHERE org_id = $1 AND id = $2 AND updated_at = $9::timestamptz RETURNING *), "
                 "aud AS (" AUDIT_INSERT "SELECT org_id, $10, $11, 'phone_number.update', "
                 "'phone_number', id, $12::jsonb, $13 FROM upd) "
                 "SELECT " NUMBER_COLS " FROM upd",
                 13, params, on_updated);
    json_decref(num);
    free(audit_text);
}

static void
read_for_update(rg_req_t *req)
{
    req->attempts++;
    if (req->errs == NULL)
        req->errs = rg_errors_create();
    const char *params[] = {req->org_id, req->id};
    rg_req_query(req, "SELECT " NUMBER_COLS " FROM phone_numbers WHERE org_id = $1 AND id = $2", 2,
                 params, on_read_for_update);
}

void
rg_numbers_update(rg_req_t *req)
{
    if (!rg_id_valid(req->id, "pn_")) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "phone number not found");
        return;
    }
    json_t *patch = rg_req_parse_body(req);
    if (patch == NULL)
        return;
    req->errs = rg_errors_create();
    req->patch = rg_patch_strip_readonly(patch, rg_number_readonly, true, req->errs);
    json_decref(patch);
    read_for_update(req);
}

/* ---- delete ---- */

static void
on_deleted(rg_req_t *req, lc_status_t st, PGresult *res)
{
    reply_row(req, st, res, 204, "phone_number.deleted");
}

void
rg_numbers_delete(rg_req_t *req)
{
    if (!rg_id_valid(req->id, "pn_")) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "phone number not found");
        return;
    }
    const char *params[] = {req->org_id, req->id, req->principal_kind, req->principal_id,
                            req->request_id};
    rg_req_query(req,
                 "WITH del AS (DELETE FROM phone_numbers WHERE org_id = $1 AND id = $2 "
                 "RETURNING *), "
                 "aud AS (" AUDIT_INSERT "SELECT org_id, $3, $4, 'phone_number.delete', "
                 "'phone_number', id, '{}'::jsonb, $5 FROM del) "
                 "SELECT " NUMBER_COLS " FROM del",
                 5, params, on_deleted);
}

/* ---- resolve (media workers) ---- */

static void
on_resolved(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    if (PQntuples(res) == 0) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "no agent answers this number");
        return;
    }
    json_t *agent = rg_agent_render(
        PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4), strtoll(PQgetvalue(res, 0, 5), NULL, 10),
        strtoll(PQgetvalue(res, 0, 6), NULL, 10), strtoll(PQgetvalue(res, 0, 7), NULL, 10));
    if (agent == NULL) {
        rg_req_fail(req, LC_ERR_INTERNAL, "internal error");
        return;
    }
    char *agent_text = rg_json_dumps(agent);
    json_decref(agent);
    Voxi__V1__ResolveNumberReply rep = VOXI__V1__RESOLVE_NUMBER_REPLY__INIT;
    rep.org_id = PQgetvalue(res, 0, 0);
    rep.number_id = PQgetvalue(res, 0, 1);
    rep.number = PQgetvalue(res, 0, 2);
    rep.agent_id = PQgetvalue(res, 0, 3);
    rep.agent_json = agent_text;
    rep.agent_version = (int32_t) strtol(PQgetvalue(res, 0, 5), NULL, 10);
    rg_req_reply_pb(req, &rep.base);
    free(agent_text);
}

void
rg_numbers_resolve(rg_req_t *req)
{
    /* carriers send "15551234567" for "+15551234567": digits also match the + form */
    bool digits = true;
    for (const char *p = req->number; *p; p++)
        digits = digits && isdigit((unsigned char) *p);
    char plus[RG_ID_MAX + 2];
    snprintf(plus, sizeof(plus), "%s%s", digits ? "+" : "", req->number);
    const char *params[] = {req->number, plus};
    rg_req_query(req,
                 "SELECT pn.org_id, pn.id, pn.number, a.id, a.config::text, a.version, " MS(
                     "a.created_at") ", " MS("a.updated_at") " FROM phone_numbers pn "
                                                             "JOIN agents a ON a.org_id = "
                                                             "pn.org_id AND a.id = pn.agent_id "
                                                             "WHERE pn.number IN ($1, $2) "
                                                             "ORDER BY pn.number = $1 DESC "
                                                             "LIMIT 1",
                 2, params, on_resolved);
}
