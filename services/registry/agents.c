/*
 * voxi.registry.agents.*: create, list, get, update (JSON merge patch), delete.
 *
 * Every change and its audit row are one statement (data-modifying CTEs), so they commit
 * together; the change event is published after the commit. PATCH reads the agent, applies
 * the patch, validates the whole document again, and writes it only if the version it read
 * is still current (optimistic concurrency, retried a few times).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "rg_api.h"
#include "rg_json.h"
#include "rg_req.h"
#include "rg_validate.h"

#define UPDATE_ATTEMPTS 3
#define MS(col) "floor(extract(epoch from " col ") * 1000)::bigint"
#define AGENT_COLS "id, config::text, version, " MS("created_at") ", " MS("updated_at")
#define AUDIT_INSERT                                                                               \
    "INSERT INTO registry_audit (org_id, principal_kind, principal_id, action, resource_type, "    \
    "resource_id, changes, request_id) "

/* Top-level order of the agent object; keys the schema does not know (none today) follow. */
static const char *const agent_order[] = {"name",
                                          "language",
                                          "first_message",
                                          "voice",
                                          "transcriber",
                                          "response_engine",
                                          "interruptions",
                                          "endpointing",
                                          "max_duration_s",
                                          "silence_timeout_s",
                                          "end_call_phrases",
                                          "webhook",
                                          "metadata",
                                          NULL};

static void
put_config(json_t *obj, json_t *config)
{
    for (size_t i = 0; agent_order[i] != NULL; i++) {
        json_t *v = json_object_get(config, agent_order[i]);
        if (v != NULL)
            json_object_set(obj, agent_order[i], v);
    }
    const char *key;
    json_t *v;
    json_object_foreach(config, key, v)
    {
        if (json_object_get(obj, key) == NULL)
            json_object_set(obj, key, v);
    }
}

json_t *
rg_agent_render(const char *id, const char *config_text, int64_t version, int64_t created_ms,
                int64_t updated_ms)
{
    json_error_t jerr;
    json_t *config = json_loads(config_text, 0, &jerr);
    if (!json_is_object(config)) {
        LC_ERROR("agents", "agent %s: stored config does not parse: %s", id, jerr.text);
        json_decref(config);
        return NULL;
    }
    /* jsonb keeps keys in its own order: normalising the stored document gives the schema's
     * order back (and fills defaults of fields added since it was written). A document the
     * schema no longer accepts is shown as stored. */
    rg_errors_t *errs = rg_errors_create();
    json_t *normal = rg_agent_validate(config, errs);
    if (normal == NULL)
        LC_WARN("agents", "agent %s: stored config no longer validates (%s: %s)", id,
                errs->count ? errs->items[0].field : "?",
                errs->count ? errs->items[0].message : "?");
    rg_errors_destroy(errs);
    if (normal != NULL) {
        json_decref(config);
        config = normal;
    }
    json_t *obj = json_object();
    json_object_set_new(obj, "id", json_string(id));
    json_object_set_new(obj, "object", json_string("agent"));
    put_config(obj, config);
    json_object_set_new(obj, "version", json_integer(version));
    json_object_set_new(obj, "created_at", rg_json_time(created_ms));
    json_object_set_new(obj, "updated_at", rg_json_time(updated_ms));
    json_decref(config);
    return obj;
}

/* The agent of row `row` (AGENT_COLS), or NULL (logged). */
static json_t *
render_row(PGresult *res, int row, int col)
{
    return rg_agent_render(PQgetvalue(res, row, col), PQgetvalue(res, row, col + 1),
                           strtoll(PQgetvalue(res, row, col + 2), NULL, 10),
                           strtoll(PQgetvalue(res, row, col + 3), NULL, 10),
                           strtoll(PQgetvalue(res, row, col + 4), NULL, 10));
}

/* Replies with the object and publishes the event (if any), then frees obj. */
static void
reply_object(rg_req_t *req, int http_status, json_t *obj, const char *event_type)
{
    if (event_type != NULL)
        lc_events_publish(rg_req_events(req), req->org_id, event_type, json_incref(obj), NULL);
    if (http_status == 204) {
        json_decref(obj);
        rg_req_reply(req, 204, NULL);
        return;
    }
    char *text = rg_json_dumps(obj);
    json_decref(obj);
    rg_req_reply(req, http_status, text);
    free(text);
}

static void
reply_row(rg_req_t *req, lc_status_t st, PGresult *res, int http_status, const char *event_type)
{
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    if (PQntuples(res) == 0) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "agent not found");
        return;
    }
    json_t *obj = render_row(res, 0, 0);
    if (obj == NULL) {
        rg_req_fail(req, LC_ERR_INTERNAL, "internal error");
        return;
    }
    reply_object(req, http_status, obj, event_type);
}

/* ---- create ---- */

static void
on_created(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st == LC_ERR_DB && strcmp(rg_pg_sqlstate(res), "23503") == 0) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "the organisation does not exist");
        return;
    }
    reply_row(req, st, res, 201, "agent.created");
}

void
rg_agents_create(rg_req_t *req)
{
    json_t *doc = rg_req_parse_body(req);
    if (doc == NULL)
        return;
    rg_errors_t *errs = rg_errors_create();
    json_t *config = rg_agent_validate(doc, errs);
    json_decref(doc);
    if (config == NULL) {
        rg_req_fail_fields(req, errs);
        return;
    }
    rg_errors_destroy(errs);
    char id[32];
    lc_id_new("agt_", id, sizeof(id));
    char *config_text = rg_json_dumps(config);
    const char *params[] = {id,
                            req->org_id,
                            json_string_value(json_object_get(config, "name")),
                            config_text,
                            req->principal_kind,
                            req->principal_id,
                            req->request_id};
    rg_req_query(req,
                 "WITH ins AS (INSERT INTO agents (id, org_id, name, config) "
                 "VALUES ($1, $2, $3, $4::jsonb) RETURNING *), "
                 "aud AS (" AUDIT_INSERT "SELECT org_id, $5, $6, 'agent.create', 'agent', id, "
                 "$4::jsonb, $7 FROM ins) "
                 "SELECT " AGENT_COLS " FROM ins",
                 7, params, on_created);
    json_decref(config); /* after the query: params point into it (lc_pg_query copies them) */
    free(config_text);
}

/* ---- get ---- */

/*
 * GET is the hot read, so two things keep it cheap while every answer still comes from a
 * database read that started after the request arrived (what is served is always the
 * current row, whatever other registry instances changed):
 *
 * Batches. At most GET_QUERIES_MAX lookups run at once; requests arriving meanwhile wait
 * and go together in the next one (up to GET_BATCH_MAX), one row per request from
 * unnest(...) WITH ORDINALITY. An idle registry sends each GET at once; a busy one pays
 * one database round trip per batch instead of per request.
 *
 * Rendered agents by (org, id, version). Rendering (parse the stored jsonb text, validate
 * and normalise it, build and serialise the object) costs more than the lookup, and an
 * agent is read far more often than it changes: the query leaves the config out when the
 * row's version is the one already rendered, and that rendering is served. Every change
 * bumps `version` (and updated_at), and deletion removes the row. Direct-mapped, bounded
 * in entries and in the size of each.
 *
 * Loop thread only, like every handler; the state is the process's (one registry).
 */
#define RENDER_CACHE_SLOTS 256
#define RENDER_CACHE_MAX_BYTES 16384
#define GET_BATCH_MAX 64
#define GET_QUERIES_MAX 2

typedef struct {
    char org_id[RG_ID_MAX + 1];
    char id[RG_ID_MAX + 1];
    int64_t version;
    int64_t updated_ms;
    char *json; /* NULL: empty slot */
} rendered_t;

typedef struct {
    rg_req_t *reqs[GET_BATCH_MAX]; /* reqs[0] carries the query */
    size_t n;
} get_batch_t;

static rendered_t render_cache[RENDER_CACHE_SLOTS];
static get_batch_t get_waiting;
static get_batch_t get_running[GET_QUERIES_MAX]; /* n == 0: free */

static rendered_t *
render_slot(const char *org_id, const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a over "org\0id" */
    for (const char *p = org_id; *p; p++)
        h = (h ^ (uint8_t) *p) * 16777619u;
    h *= 16777619u;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t) *p) * 16777619u;
    return &render_cache[h % RENDER_CACHE_SLOTS];
}

static bool
rendered_is(const rendered_t *slot, const rg_req_t *req)
{
    return slot->json != NULL && strcmp(slot->id, req->id) == 0 &&
           strcmp(slot->org_id, req->org_id) == 0;
}

static void get_full(rg_req_t *req);

/* Answers req from row `row` of a result whose columns from `col` on are AGENT_COLS, the
 * config NULL when it was left out for the rendered version. */
static void
serve_row(rg_req_t *req, PGresult *res, int row, int col)
{
    int64_t version = strtoll(PQgetvalue(res, row, col + 2), NULL, 10);
    int64_t updated_ms = strtoll(PQgetvalue(res, row, col + 4), NULL, 10);
    rendered_t *slot = render_slot(req->org_id, req->id);
    if (rendered_is(slot, req) && slot->version == version && slot->updated_ms == updated_ms) {
        rg_req_reply(req, 200, slot->json);
        return;
    }
    if (PQgetisnull(res, row, col + 1)) {
        /* left out for the version rendered when the query was sent, and another request
         * replaced that entry since: read it whole */
        get_full(req);
        return;
    }
    json_t *obj = render_row(res, row, col);
    if (obj == NULL) {
        rg_req_fail(req, LC_ERR_INTERNAL, "internal error");
        return;
    }
    char *text = rg_json_dumps(obj);
    json_decref(obj);
    if (strlen(text) <= RENDER_CACHE_MAX_BYTES && strlen(req->org_id) <= RG_ID_MAX &&
        strlen(req->id) <= RG_ID_MAX) {
        free(slot->json);
        snprintf(slot->org_id, sizeof(slot->org_id), "%s", req->org_id);
        snprintf(slot->id, sizeof(slot->id), "%s", req->id);
        slot->version = version;
        slot->updated_ms = updated_ms;
        slot->json = lc_strdup(text);
    }
    rg_req_reply(req, 200, text);
    free(text);
}

static void
on_get_full(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK || PQntuples(res) != 1) {
        reply_row(req, st, res, 200, NULL);
        return;
    }
    serve_row(req, res, 0, 0);
}

/* One request alone, config included (the rare re-read of serve_row). */
static void
get_full(rg_req_t *req)
{
    const char *params[] = {req->org_id, req->id};
    rg_req_query(req, "SELECT " AGENT_COLS " FROM agents WHERE org_id = $1 AND id = $2", 2, params,
                 on_get_full);
}

static void get_send(void);

static void
on_get_batch(rg_req_t *leader, lc_status_t st, PGresult *res)
{
    get_batch_t batch = {0};
    for (size_t q = 0; q < GET_QUERIES_MAX; q++) {
        if (get_running[q].n > 0 && get_running[q].reqs[0] == leader) {
            batch = get_running[q];
            get_running[q].n = 0;
            break;
        }
    }
    bool answered[GET_BATCH_MAX] = {false};
    if (st == LC_OK) {
        for (int r = 0; r < PQntuples(res); r++) {
            long i = strtol(PQgetvalue(res, r, 0), NULL, 10); /* ordinality: 1..n */
            if (i < 1 || (size_t) i > batch.n || answered[i - 1])
                continue;
            answered[i - 1] = true;
            serve_row(batch.reqs[i - 1], res, r, 1);
        }
    }
    for (size_t i = 0; i < batch.n; i++) {
        if (answered[i])
            continue;
        if (st != LC_OK)
            rg_req_fail_db(batch.reqs[i], st, res);
        else
            rg_req_fail(batch.reqs[i], LC_ERR_NOT_FOUND, "agent not found");
    }
    if (get_waiting.n > 0)
        get_send();
}

/* Appends one text[] element; ids and org ids are [A-Za-z0-9_-] (checked before). */
static void
array_add(char *out, size_t size, size_t *len, const char *item)
{
    *len += (size_t) snprintf(out + *len, size - *len, "%s\"%s\"", *len > 1 ? "," : "", item);
}

/* Sends the waiting requests as one query, in a free slot. */
static void
get_send(void)
{
    size_t q = 0;
    while (q < GET_QUERIES_MAX && get_running[q].n > 0)
        q++;
    if (q == GET_QUERIES_MAX || get_waiting.n == 0)
        return;
    get_batch_t *batch = &get_running[q];
    *batch = get_waiting;
    get_waiting.n = 0;
    /* {"a","b"}: GET_BATCH_MAX ids of at most RG_ID_MAX characters, quoted, separated */
    enum { ARRAY_MAX = 2 + GET_BATCH_MAX * (RG_ID_MAX + 3) };
    char *orgs = lc_malloc(ARRAY_MAX), *ids = lc_malloc(ARRAY_MAX),
         *versions = lc_malloc(ARRAY_MAX);
    size_t orgs_len = 1, ids_len = 1, versions_len = 1;
    orgs[0] = ids[0] = versions[0] = '{';
    for (size_t i = 0; i < batch->n; i++) {
        rg_req_t *req = batch->reqs[i];
        const rendered_t *slot = render_slot(req->org_id, req->id);
        char version[24];
        snprintf(version, sizeof(version), "%lld",
                 rendered_is(slot, req) ? (long long) slot->version : -1LL);
        array_add(orgs, ARRAY_MAX, &orgs_len, req->org_id);
        array_add(ids, ARRAY_MAX, &ids_len, req->id);
        array_add(versions, ARRAY_MAX, &versions_len, version);
    }
    snprintf(orgs + orgs_len, ARRAY_MAX - orgs_len, "}");
    snprintf(ids + ids_len, ARRAY_MAX - ids_len, "}");
    snprintf(versions + versions_len, ARRAY_MAX - versions_len, "}");
    const char *params[] = {orgs, ids, versions};
    rg_req_t *leader = batch->reqs[0];
    rg_api_t *api = leader->api;
    size_t before = rg_api_inflight(api);
    rg_req_query(leader,
                 "SELECT g.i, a.id, CASE WHEN a.version = g.v THEN NULL ELSE a.config::text END,"
                 " a.version, " MS("a.created_at") ", " MS(
                     "a.updated_at") " FROM"
                                     " unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY "
                                     "AS g(org_id, id, v, i)"
                                     " JOIN agents a ON a.org_id = g.org_id AND a.id = g.id",
                 3, params, on_get_batch);
    free(orgs);
    free(ids);
    free(versions);
    /* the pool refused the query (full, closing): rg_req_query has answered and freed the
     * leader at once, which is how to tell; the others get the same answer */
    if (rg_api_inflight(api) < before) {
        for (size_t i = 1; i < batch->n; i++)
            rg_req_fail_db(batch->reqs[i], LC_ERR_UNAVAILABLE, NULL);
        batch->n = 0;
    }
}

void
rg_agents_get(rg_req_t *req)
{
    if (!rg_id_valid(req->id, "agt_")) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "agent not found");
        return;
    }
    if (get_waiting.n == GET_BATCH_MAX)
        get_send(); /* no slot free: it waits, and this request starts the next batch */
    if (get_waiting.n == GET_BATCH_MAX) {
        get_full(req);
        return;
    }
    get_waiting.reqs[get_waiting.n++] = req;
    get_send();
}

/* ---- list ---- */

static void
on_list(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    /* column 0: whether the cursor exists; then AGENT_COLS, NULL on the row of an empty page */
    if (req->starting_after[0] != '\0' && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        rg_req_fail_field(req, "starting_after", "no agent with this id");
        return;
    }
    json_t *data = json_array();
    int rows = PQntuples(res);
    int shown = 0;
    for (int r = 0; r < rows && shown < req->limit; r++) {
        if (PQgetisnull(res, r, 1))
            continue;
        json_t *obj = render_row(res, r, 1);
        if (obj == NULL) {
            json_decref(data);
            rg_req_fail(req, LC_ERR_INTERNAL, "internal error");
            return;
        }
        json_array_append_new(data, obj);
        shown++;
    }
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
rg_agents_list(rg_req_t *req)
{
    if (req->starting_after[0] != '\0' && !rg_id_valid(req->starting_after, "agt_")) {
        rg_req_fail_field(req, "starting_after", "no agent with this id");
        return;
    }
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", req->limit + 1);
    const char *params[] = {req->org_id, req->starting_after, limit};
    rg_req_query(req,
                 "WITH cur AS (SELECT created_at, id FROM agents WHERE org_id = $1 AND id = $2) "
                 "SELECT EXISTS (SELECT 1 FROM cur), a.* FROM (SELECT 1) AS one "
                 "LEFT JOIN LATERAL (SELECT " AGENT_COLS " FROM agents "
                 "WHERE org_id = $1 AND ($2 = '' OR (created_at, id) > "
                 "(SELECT created_at, id FROM cur)) "
                 "ORDER BY created_at, id LIMIT $3::int) AS a ON true",
                 3, params, on_list);
}

/* ---- update ---- */

static void read_for_update(rg_req_t *req);

static void
on_updated(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st == LC_OK && PQntuples(res) == 0) {
        /* deleted, or changed since we read it: read again */
        if (req->attempts < UPDATE_ATTEMPTS) {
            read_for_update(req);
            return;
        }
        rg_req_fail(req, LC_ERR_CONFLICT,
                    "the agent was changed by another request at the same time; retry");
        return;
    }
    reply_row(req, st, res, 200, "agent.updated");
}

static void
on_read_for_update(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK || PQntuples(res) == 0) {
        reply_row(req, st, res, 200, NULL); /* the error or 404 */
        return;
    }
    const char *version = PQgetvalue(res, 0, 2);
    json_t *stored = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    if (!json_is_object(stored)) {
        json_decref(stored);
        rg_req_fail(req, LC_ERR_INTERNAL, "internal error");
        return;
    }
    json_t *merged = rg_json_merge_patch(stored, req->patch);
    rg_errors_t *errs = req->errs;
    req->errs = NULL;
    json_t *config = rg_agent_validate(merged, errs);
    json_decref(merged);
    if (config == NULL || errs->count > 0) {
        json_decref(config);
        json_decref(stored);
        rg_req_fail_fields(req, errs);
        return;
    }
    rg_errors_destroy(errs);
    if (json_equal(config, stored)) {
        /* nothing changes: no new version, no event, no audit row */
        json_decref(config);
        json_decref(stored);
        reply_row(req, st, res, 200, NULL);
        return;
    }
    json_decref(stored);
    if (rg_req_expired(req)) {
        json_decref(config);
        rg_req_fail(req, LC_ERR_TIMEOUT, "deadline passed");
        return;
    }
    char *config_text = rg_json_dumps(config);
    char *patch_text = rg_json_dumps(req->patch);
    const char *params[] = {
        req->org_id,       req->id,    json_string_value(json_object_get(config, "name")),
        config_text,       version,    req->principal_kind,
        req->principal_id, patch_text, req->request_id};
    rg_req_query(req,
                 "WITH upd AS (UPDATE agents SET name = $3, config = $4::jsonb, "
                 "version = version + 1, updated_at = now() "
                 "WHERE org_id = $1 AND id = $2 AND version = $5::int RETURNING *), "
                 "aud AS (" AUDIT_INSERT "SELECT org_id, $6, $7, 'agent.update', 'agent', id, "
                 "$8::jsonb, $9 FROM upd) "
                 "SELECT " AGENT_COLS " FROM upd",
                 9, params, on_updated);
    json_decref(config);
    free(config_text);
    free(patch_text);
}

static void
read_for_update(rg_req_t *req)
{
    req->attempts++;
    if (req->errs == NULL) {
        /* a retry: the read-only errors were empty (else we would have failed) */
        req->errs = rg_errors_create();
    }
    const char *params[] = {req->org_id, req->id};
    rg_req_query(req, "SELECT " AGENT_COLS " FROM agents WHERE org_id = $1 AND id = $2", 2, params,
                 on_read_for_update);
}

void
rg_agents_update(rg_req_t *req)
{
    if (!rg_id_valid(req->id, "agt_")) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "agent not found");
        return;
    }
    json_t *patch = rg_req_parse_body(req);
    if (patch == NULL)
        return;
    req->errs = rg_errors_create();
    req->patch = rg_patch_strip_readonly(patch, rg_agent_readonly, false, req->errs);
    json_decref(patch);
    /* read-only fields are reported together with the problems of the patched document */
    read_for_update(req);
}

/* ---- delete ---- */

static void
on_deleted(rg_req_t *req, lc_status_t st, PGresult *res)
{
    reply_row(req, st, res, 204, "agent.deleted");
}

void
rg_agents_delete(rg_req_t *req)
{
    if (!rg_id_valid(req->id, "agt_")) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "agent not found");
        return;
    }
    const char *params[] = {req->org_id, req->id, req->principal_kind, req->principal_id,
                            req->request_id};
    rg_req_query(req,
                 "WITH del AS (DELETE FROM agents WHERE org_id = $1 AND id = $2 RETURNING *), "
                 "aud AS (" AUDIT_INSERT "SELECT org_id, $3, $4, 'agent.delete', 'agent', id, "
                 "'{}'::jsonb, $5 FROM del) "
                 "SELECT " AGENT_COLS " FROM del",
                 5, params, on_deleted);
}
