/*
 * voxi.registry.calls.*: create (outbound), list, get, hangup, recording (rg_calls.h).
 *
 * create: the agent (and number) are read in the caller's org, the call and its audit row
 * are inserted by one statement, then one media worker is asked to dial (voxi.media.dial,
 * queue group). Its answer decides the reply: 201 with the call (worker_id recorded), or the
 * call is marked failed and the caller gets 503 ("no_media_worker": nobody serves the
 * subject, or no worker answered in time) or the worker's refusal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "rg_calls.h"
#include "rg_json.h"
#include "rg_validate.h"
#include "voxi/v1/media.pb-c.h"

#define DIAL_SUBJECT "voxi.media.dial"
#define MEDIA_TIMEOUT_MS 5000
#define MS(col) "floor(extract(epoch from " col ") * 1000)::bigint"
/* clang-format off */
#define CALL_COLS                                                                                  \
    "c.id, c.agent_id, c.number_id, c.direction, c.from_uri, c.to_uri, c.status, "                \
    MS("c.created_at") ", " MS("c.started_at") ", " MS("c.answered_at") ", "                      \
    MS("c.ended_at") ", c.duration_ms, c.end_reason, c.sip_code, c.codec, c.rtp::text, "          \
    "c.recording_path IS NOT NULL AND c.worker_id IS NOT NULL, c.usage::text, "                   \
    "c.variables::text, c.transfer::text, c.dtmf"
/* clang-format on */
#define TURNS_COL                                                                                  \
    "(SELECT coalesce(json_agg(json_build_object('index', t.idx, 'role', t.role, 'text', "         \
    "t.text, 'start_ms', t.start_ms, 'end_ms', t.end_ms, 'interrupted', t.interrupted, "           \
    "'latency_ms', t.latency) ORDER BY t.idx), '[]'::json) FROM call_turns t "                     \
    "WHERE t.call_id = c.id)::text"
#define AUDIT_INSERT                                                                               \
    "INSERT INTO registry_audit (org_id, principal_kind, principal_id, action, resource_type, "    \
    "resource_id, changes, request_id) "

enum {
    C_ID,
    C_AGENT,
    C_NUMBER,
    C_DIRECTION,
    C_FROM,
    C_TO,
    C_STATUS,
    C_CREATED,
    C_STARTED,
    C_ANSWERED,
    C_ENDED,
    C_DURATION,
    C_END_REASON,
    C_SIP_CODE,
    C_CODEC,
    C_RTP,
    C_HAS_RECORDING,
    C_USAGE,
    C_VARIABLES,
    C_TRANSFER,
    C_DTMF,
    C_COUNT
};

/* ---- rendering ---- */

static json_t *
text_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *
int_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null()
                                      : json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *
time_or_null(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null()
                                      : rg_json_time(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* A json/jsonb column (written by us, so it parses; NULL or not parsing -> null). */
static json_t *
json_or_null(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    json_t *v = json_loads(PQgetvalue(res, row, col), JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

/* The call object of the API from a row: CALL_COLS from column c0, then the transcript
 * column when with_turns. */
static json_t *
render_call(const rg_req_t *req, PGresult *res, int row, int c0, bool with_turns)
{
    json_t *obj = json_object();
    const char *id = PQgetvalue(res, row, c0 + C_ID);
    json_object_set_new(obj, "id", json_string(id));
    json_object_set_new(obj, "object", json_string("call"));
    json_object_set_new(obj, "agent_id", text_or_null(res, row, c0 + C_AGENT));
    json_object_set_new(obj, "number_id", text_or_null(res, row, c0 + C_NUMBER));
    json_object_set_new(obj, "direction", text_or_null(res, row, c0 + C_DIRECTION));
    json_object_set_new(obj, "from", text_or_null(res, row, c0 + C_FROM));
    json_object_set_new(obj, "to", text_or_null(res, row, c0 + C_TO));
    json_object_set_new(obj, "status", text_or_null(res, row, c0 + C_STATUS));
    json_object_set_new(obj, "created_at", time_or_null(res, row, c0 + C_CREATED));
    json_object_set_new(obj, "started_at", time_or_null(res, row, c0 + C_STARTED));
    json_object_set_new(obj, "answered_at", time_or_null(res, row, c0 + C_ANSWERED));
    json_object_set_new(obj, "ended_at", time_or_null(res, row, c0 + C_ENDED));
    json_object_set_new(obj, "duration_ms", int_or_null(res, row, c0 + C_DURATION));
    json_object_set_new(obj, "end_reason", text_or_null(res, row, c0 + C_END_REASON));
    json_object_set_new(obj, "sip_code", int_or_null(res, row, c0 + C_SIP_CODE));
    json_object_set_new(obj, "codec", text_or_null(res, row, c0 + C_CODEC));
    json_object_set_new(obj, "rtp", json_or_null(res, row, c0 + C_RTP));
    json_object_set_new(obj, "transfer", json_or_null(res, row, c0 + C_TRANSFER));
    json_object_set_new(obj, "dtmf", text_or_null(res, row, c0 + C_DTMF));
    json_object_set_new(obj, "variables", json_or_null(res, row, c0 + C_VARIABLES));
    if (PQgetvalue(res, row, c0 + C_HAS_RECORDING)[0] == 't') {
        char url[RG_ID_MAX + 32];
        snprintf(url, sizeof(url), "/v1/calls/%s/recording", id);
        json_object_set_new(obj, "recording_url", json_string(url));
    } else {
        json_object_set_new(obj, "recording_url", json_null());
    }
    json_t *usage = json_or_null(res, row, c0 + C_USAGE);
    int64_t duration = PQgetisnull(res, row, c0 + C_DURATION)
                           ? -1
                           : strtoll(PQgetvalue(res, row, c0 + C_DURATION), NULL, 10);
    json_object_set_new(obj, "usage", usage);
    json_object_set_new(obj, "cost", rg_prices_cost(rg_req_prices(req), duration, usage));
    if (with_turns) {
        json_t *turns = json_or_null(res, row, c0 + C_COUNT);
        if (!json_is_array(turns)) {
            json_decref(turns);
            turns = json_array();
        }
        json_object_set_new(obj, "transcript", turns);
    }
    return obj;
}

static void
reply_json(rg_req_t *req, int http_status, json_t *obj)
{
    char *text = rg_json_dumps(obj);
    json_decref(obj);
    rg_req_reply(req, http_status, text);
    free(text);
}

/* Replies with the call of row 0 (CALL_COLS), or 404 / the database error. */
static void
reply_call(rg_req_t *req, lc_status_t st, PGresult *res, int http_status, bool with_turns)
{
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    if (PQntuples(res) == 0) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "call not found");
        return;
    }
    reply_json(req, http_status, render_call(req, res, 0, 0, with_turns));
}

static bool
call_id_valid(const char *id)
{
    return rg_id_valid(id, "call_");
}

/* Sends a protobuf request to a media subject on behalf of req (deadline: the request's, at
 * most MEDIA_TIMEOUT_MS). */
static lc_status_t
media_request(rg_req_t *req, const char *subject, const ProtobufCMessage *body, lc_nats_reply_cb cb)
{
    lc_pb_meta_t meta = {.request_id = req->request_id,
                         .org_id = req->org_id,
                         .deadline_unix_ms = lc_time_wall_ms() + MEDIA_TIMEOUT_MS};
    int64_t timeout_ms = MEDIA_TIMEOUT_MS;
    if (req->deadline_unix_ms > 0) {
        int64_t left = req->deadline_unix_ms - lc_time_wall_ms();
        if (left < timeout_ms)
            timeout_ms = left > 1 ? left : 1;
        meta.deadline_unix_ms = req->deadline_unix_ms;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    lc_status_t st = lc_pb_pack(&meta, body, &buf, &len);
    if (st == LC_OK)
        st = lc_nats_request(rg_req_nats(req), subject, buf, len, (int) timeout_ms, cb, req, NULL);
    free(buf);
    return st;
}

/* ---- get ---- */

static void
on_get(rg_req_t *req, lc_status_t st, PGresult *res)
{
    reply_call(req, st, res, 200, true);
}

void
rg_calls_get(rg_req_t *req)
{
    if (!call_id_valid(req->id)) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "call not found");
        return;
    }
    const char *params[] = {req->org_id, req->id};
    rg_req_query(
        req, "SELECT " CALL_COLS ", " TURNS_COL " FROM calls c WHERE c.org_id = $1 AND c.id = $2",
        2, params, on_get);
}

/* ---- list ---- */

static void
on_list(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    /* column 0: whether the cursor exists; then CALL_COLS, NULL on the row of an empty page */
    if (req->starting_after[0] != '\0' && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        rg_req_fail_field(req, "starting_after", "no call with this id");
        return;
    }
    json_t *data = json_array();
    int rows = PQntuples(res);
    int shown = 0;
    for (int r = 0; r < rows && shown < req->limit; r++) {
        if (PQgetisnull(res, r, 1))
            continue;
        json_array_append_new(data, render_call(req, res, r, 1, false));
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
    reply_json(req, 200, page);
}

void
rg_calls_list(rg_req_t *req)
{
    if (req->starting_after[0] != '\0' && !call_id_valid(req->starting_after)) {
        rg_req_fail_field(req, "starting_after", "no call with this id");
        return;
    }
    /* filters: a JSON object in ApiRequest.json (GET /v1/calls?agent_id=...&status=...) */
    json_t *query = NULL;
    if (req->json_len > 0) {
        query = rg_req_parse_body(req);
        if (query == NULL)
            return;
    }
    rg_errors_t *errs = rg_errors_create();
    rg_call_filters_t f;
    rg_call_filters_read(query, &f, errs);
    json_decref(query);
    if (errs->count > 0) {
        rg_req_fail_fields(req, errs);
        return;
    }
    rg_errors_destroy(errs);
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", req->limit + 1);
    const char *params[] = {req->org_id, req->starting_after, limit,           f.agent_id,
                            f.status,    f.created_after,     f.created_before};
    rg_req_query(req,
                 "WITH cur AS (SELECT created_at, id FROM calls WHERE org_id = $1 AND id = $2) "
                 "SELECT EXISTS (SELECT 1 FROM cur), l.* FROM (SELECT 1) AS one "
                 "LEFT JOIN LATERAL (SELECT " CALL_COLS " FROM calls c "
                 "WHERE c.org_id = $1 AND ($2 = '' OR (c.created_at, c.id) < "
                 "(SELECT created_at, id FROM cur)) "
                 "AND ($4 = '' OR c.agent_id = $4) AND ($5 = '' OR c.status = $5) "
                 "AND ($6 = '' OR c.created_at >= NULLIF($6, '')::timestamptz) "
                 "AND ($7 = '' OR c.created_at < NULLIF($7, '')::timestamptz) "
                 "ORDER BY c.created_at DESC, c.id DESC LIMIT $3::int) AS l ON true",
                 7, params, on_list);
}

/* ---- recording ---- */

static void
on_recording(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    if (PQntuples(res) == 0) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "call not found");
        return;
    }
    if (PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1)) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "this call has no recording");
        return;
    }
    json_t *obj = json_object();
    json_object_set_new(obj, "worker_id", json_string(PQgetvalue(res, 0, 0)));
    json_object_set_new(obj, "recording_path", json_string(PQgetvalue(res, 0, 1)));
    /* 0 when the worker did not report it: the gateway takes the size from the worker */
    json_object_set_new(obj, "size_bytes",
                        PQgetisnull(res, 0, 2)
                            ? json_integer(0)
                            : json_integer(strtoll(PQgetvalue(res, 0, 2), NULL, 10)));
    reply_json(req, 200, obj);
}

void
rg_calls_recording(rg_req_t *req)
{
    if (!call_id_valid(req->id)) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "call not found");
        return;
    }
    const char *params[] = {req->org_id, req->id};
    rg_req_query(req,
                 "SELECT worker_id, recording_path, recording_size_bytes FROM calls "
                 "WHERE org_id = $1 AND id = $2",
                 2, params, on_recording);
}

/* ---- hangup ---- */

static bool
terminal(const char *status)
{
    return strcmp(status, "ended") == 0 || strcmp(status, "failed") == 0;
}

/* After the control request: req->doc holds its outcome {"status", "message"?}. */
static void
on_hangup_reread(rg_req_t *req, lc_status_t st, PGresult *res)
{
    lc_status_t ctl = (lc_status_t) json_integer_value(json_object_get(req->doc, "status"));
    if (st != LC_OK || PQntuples(res) == 0 || ctl == LC_OK) {
        reply_call(req, st, res, 202, false);
        return;
    }
    if (terminal(PQgetvalue(res, 0, C_STATUS))) {
        rg_req_fail(req, LC_ERR_CONFLICT, "the call has already ended");
        return;
    }
    const char *message = json_string_value(json_object_get(req->doc, "message"));
    if (ctl == LC_ERR_NO_RESPONDERS || ctl == LC_ERR_TIMEOUT || ctl == LC_ERR_UNAVAILABLE)
        rg_req_fail(req, LC_ERR_UNAVAILABLE, "the call's media worker is not reachable; retry");
    else
        rg_req_fail(req, ctl, message ? message : "the media worker refused the hangup");
}

static void
on_hangup_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    rg_req_t *req = arg;
    lc_log_context_set(req->request_id, req->id);
    if (status == LC_OK) {
        Voxi__V1__Envelope *env = NULL;
        ProtobufCMessage *body = NULL;
        status = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                              &voxi__v1__call_control_reply__descriptor, &env, &body);
        if (status != LC_OK && env != NULL && env->error != NULL && env->error->message != NULL)
            json_object_set_new(req->doc, "message", json_string(env->error->message));
        lc_pb_free(env, body);
    }
    if (status != LC_OK)
        LC_INFO("calls", "hangup of %s: %s", req->id, lc_status_name(status));
    json_object_set_new(req->doc, "status", json_integer(status));
    const char *params[] = {req->org_id, req->id};
    rg_req_query(req, "SELECT " CALL_COLS " FROM calls c WHERE c.org_id = $1 AND c.id = $2", 2,
                 params, on_hangup_reread);
}

static void
on_hangup_read(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK || PQntuples(res) == 0) {
        reply_call(req, st, res, 202, false);
        return;
    }
    if (terminal(PQgetvalue(res, 0, C_STATUS))) {
        rg_req_fail(req, LC_ERR_CONFLICT, "the call has already ended");
        return;
    }
    json_decref(req->doc);
    req->doc = json_object();
    Voxi__V1__CallControlRequest ctl = VOXI__V1__CALL_CONTROL_REQUEST__INIT;
    ctl.action = "hangup";
    ctl.reason = "api_hangup";
    char subject[RG_ID_MAX + 32];
    snprintf(subject, sizeof(subject), "voxi.call.%s.ctl", req->id);
    lc_status_t s = media_request(req, subject, &ctl.base, on_hangup_reply);
    if (s != LC_OK)
        rg_req_fail(req, LC_ERR_UNAVAILABLE, "the call's media worker is not reachable; retry");
}

void
rg_calls_hangup(rg_req_t *req)
{
    if (!call_id_valid(req->id)) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "call not found");
        return;
    }
    const char *params[] = {req->org_id, req->id};
    rg_req_query(req, "SELECT " CALL_COLS " FROM calls c WHERE c.org_id = $1 AND c.id = $2", 2,
                 params, on_hangup_read);
}

/* ---- create ---- */

/*
 * req->doc while creating: the validated body plus, after the lookup, "agent_json",
 * "agent_version", "from_user" and the number's "trunk_uri", "trunk_user",
 * "trunk_password" (opened), and after a refused dial "fail_status", "fail_message".
 */

static void
on_dial_failed_marked(rg_req_t *req, lc_status_t st, PGresult *res)
{
    (void) res;
    if (st != LC_OK)
        LC_WARN("calls", "call %s could not be marked failed: %s", req->id, lc_status_name(st));
    lc_status_t fail = (lc_status_t) json_integer_value(json_object_get(req->doc, "fail_status"));
    const char *message = json_string_value(json_object_get(req->doc, "fail_message"));
    if (fail == LC_ERR_INVALID)
        rg_req_fail_field(req, "to", message ? message : "the media worker cannot dial this");
    else
        rg_req_fail(req, fail, message ? message : "no media worker is available");
}

/* Marks the queued call failed (end_reason), then answers with fail/message. */
static void
dial_failed(rg_req_t *req, lc_status_t fail, const char *message, const char *end_reason)
{
    LC_INFO("calls", "call %s not placed: %s (%s)", req->id, end_reason, message);
    json_object_set_new(req->doc, "fail_status", json_integer(fail));
    json_object_set_new(req->doc, "fail_message", json_string(message));
    const char *params[] = {req->org_id, req->id, end_reason};
    rg_req_query(req,
                 "UPDATE calls SET status = 'failed', end_reason = $3, ended_at = now(), "
                 "updated_at = now() WHERE org_id = $1 AND id = $2 AND status = 'queued'",
                 3, params, on_dial_failed_marked);
}

static void
on_worker_recorded(rg_req_t *req, lc_status_t st, PGresult *res)
{
    reply_call(req, st, res, 201, false);
}

static void
on_dial_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    rg_req_t *req = arg;
    lc_log_context_set(req->request_id, req->id);
    if (status == LC_ERR_NO_RESPONDERS || status == LC_ERR_TIMEOUT || status == LC_ERR_CANCELLED) {
        dial_failed(req, LC_ERR_UNAVAILABLE, "no media worker is available to place the call",
                    "no_media_worker");
        return;
    }
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    if (status == LC_OK)
        status = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                              &voxi__v1__dial_reply__descriptor, &env, &body);
    if (status != LC_OK) {
        char message[256];
        snprintf(message, sizeof(message), "%s",
                 env && env->error && env->error->message && env->error->message[0]
                     ? env->error->message
                     : "the media worker refused the call");
        lc_pb_free(env, body);
        if (status == LC_ERR_INVALID)
            dial_failed(req, LC_ERR_INVALID, message, "dial_refused");
        else
            dial_failed(req, LC_ERR_UNAVAILABLE, message,
                        status == LC_ERR_FULL ? "media_workers_full" : "dial_refused");
        return;
    }
    const Voxi__V1__DialReply *dr = (const Voxi__V1__DialReply *) body;
    char worker[129];
    snprintf(worker, sizeof(worker), "%s", dr->worker_id ? dr->worker_id : "");
    lc_pb_free(env, body);
    LC_INFO("calls", "call %s placed on worker %s", req->id, worker);
    const char *params[] = {req->org_id, req->id, worker};
    rg_req_query(req,
                 "UPDATE calls c SET worker_id = NULLIF($3, ''), updated_at = now() "
                 "WHERE c.org_id = $1 AND c.id = $2 RETURNING " CALL_COLS,
                 3, params, on_worker_recorded);
}

static const char *
doc_string(const rg_req_t *req, const char *key)
{
    const char *s = json_string_value(json_object_get(req->doc, key));
    return s ? s : "";
}

static void
send_dial(rg_req_t *req)
{
    Voxi__V1__DialRequest dial = VOXI__V1__DIAL_REQUEST__INIT;
    dial.call_id = req->id;
    dial.to = (char *) doc_string(req, "to");
    dial.from_user = (char *) doc_string(req, "from_user");
    dial.org_id = req->org_id;
    dial.agent_id = (char *) doc_string(req, "agent_id");
    dial.agent_json = (char *) doc_string(req, "agent_json");
    dial.agent_version = (int32_t) json_integer_value(json_object_get(req->doc, "agent_version"));
    dial.number_id = (char *) doc_string(req, "number_id");
    dial.trunk_uri = (char *) doc_string(req, "trunk_uri");
    dial.auth_user = (char *) doc_string(req, "trunk_user");
    dial.auth_password = (char *) doc_string(req, "trunk_password");
    json_t *vars = json_object_get(req->doc, "variables");
    size_t n = json_object_size(vars);
    Voxi__V1__DialRequest__VariablesEntry *entries = lc_calloc(n + 1, sizeof(*entries));
    Voxi__V1__DialRequest__VariablesEntry **ptrs = lc_calloc(n + 1, sizeof(*ptrs));
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(vars, key, value)
    {
        voxi__v1__dial_request__variables_entry__init(&entries[i]);
        entries[i].key = (char *) key;
        entries[i].value = (char *) json_string_value(value);
        ptrs[i] = &entries[i];
        i++;
    }
    dial.n_variables = i;
    dial.variables = ptrs;
    lc_status_t st = media_request(req, DIAL_SUBJECT, &dial.base, on_dial_reply);
    free(entries);
    free(ptrs);
    if (st != LC_OK)
        dial_failed(req, LC_ERR_UNAVAILABLE, "no media worker is available to place the call",
                    "no_media_worker");
}

static void
on_created(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st == LC_ERR_DB && strcmp(rg_pg_sqlstate(res), "23503") == 0) {
        rg_req_fail(req, LC_ERR_NOT_FOUND, "the organisation does not exist");
        return;
    }
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    LC_INFO("calls", "call %s queued to %s", req->id, doc_string(req, "to"));
    send_dial(req);
}

/* The agent and the number of a create request, in the caller's org (NULLs when absent). */
/* clang-format off */
#define LOOKUP_SQL                                                                                 \
    "SELECT a.id, a.config::text, a.version, " MS("a.created_at") ", " MS("a.updated_at") ", "    \
    "n.id, n.number, n.trunk_uri, n.trunk_username, n.trunk_password FROM (SELECT 1) AS one "     \
    "LEFT JOIN agents a ON a.org_id = $1 AND a.id = $2 "                                          \
    "LEFT JOIN phone_numbers n ON n.org_id = $1 AND n.id = $3"
/* clang-format on */

/* LOOKUP_SQL columns: the agent (id, config, version, created ms, updated ms), the number. */
enum {
    L_AGENT,
    L_CONFIG,
    L_VERSION,
    L_ACREATED,
    L_AUPDATED,
    L_NUMBER_ID,
    L_NUMBER,
    L_URI,
    L_USER,
    L_PASSWORD
};

static void
on_lookup(rg_req_t *req, lc_status_t st, PGresult *res)
{
    if (st != LC_OK) {
        rg_req_fail_db(req, st, res);
        return;
    }
    rg_errors_t *errs = rg_errors_create();
    if (PQgetisnull(res, 0, L_AGENT))
        rg_errors_add(errs, "agent_id", "no agent with this id");
    if (json_object_get(req->doc, "number_id") != NULL && PQgetisnull(res, 0, L_NUMBER_ID))
        rg_errors_add(errs, "number_id", "no phone number with this id");
    if (errs->count > 0) {
        rg_req_fail_fields(req, errs);
        return;
    }
    rg_errors_destroy(errs);
    json_t *agent = rg_agent_render(PQgetvalue(res, 0, L_AGENT), PQgetvalue(res, 0, L_CONFIG),
                                    strtoll(PQgetvalue(res, 0, L_VERSION), NULL, 10),
                                    strtoll(PQgetvalue(res, 0, L_ACREATED), NULL, 10),
                                    strtoll(PQgetvalue(res, 0, L_AUPDATED), NULL, 10));
    if (agent == NULL) {
        rg_req_fail(req, LC_ERR_INTERNAL, "internal error");
        return;
    }
    char *agent_text = rg_json_dumps(agent);
    json_object_set_new(req->doc, "agent_json", json_string(agent_text));
    free(agent_text);
    json_object_set_new(req->doc, "agent_version",
                        json_integer(strtoll(PQgetvalue(res, 0, L_VERSION), NULL, 10)));
    json_decref(agent);
    const char *from = json_string_value(json_object_get(req->doc, "from"));
    if (from == NULL && !PQgetisnull(res, 0, L_NUMBER))
        from = PQgetvalue(res, 0, L_NUMBER);
    json_object_set_new(req->doc, "from_user", json_string(from ? from : ""));
    if (!PQgetisnull(res, 0, L_URI)) {
        json_object_set_new(req->doc, "trunk_uri", json_string(PQgetvalue(res, 0, L_URI)));
        if (!PQgetisnull(res, 0, L_USER))
            json_object_set_new(req->doc, "trunk_user", json_string(PQgetvalue(res, 0, L_USER)));
        if (!PQgetisnull(res, 0, L_PASSWORD)) {
            char *password = NULL;
            lc_status_t s = rg_secret_open(rg_req_secret(req), PQgetvalue(res, 0, L_PASSWORD),
                                           PQgetvalue(res, 0, L_NUMBER_ID), &password);
            if (s != LC_OK) {
                LC_WARN("calls", "the trunk password of number %s does not open: %s",
                        PQgetvalue(res, 0, L_NUMBER_ID), lc_status_name(s));
                rg_req_fail(req, LC_ERR_INTERNAL,
                            "the number's trunk password cannot be read; set it again");
                return;
            }
            json_object_set_new(req->doc, "trunk_password", json_string(password));
            free(password);
        }
    }
    json_t *input = json_pack("{s:O, s:O, s:O}", "agent_id", json_object_get(req->doc, "agent_id"),
                              "to", json_object_get(req->doc, "to"), "variables",
                              json_object_get(req->doc, "variables"));
    if (json_object_get(req->doc, "number_id"))
        json_object_set(input, "number_id", json_object_get(req->doc, "number_id"));
    if (json_object_get(req->doc, "from"))
        json_object_set(input, "from", json_object_get(req->doc, "from"));
    char *changes = rg_json_dumps(input);
    json_decref(input);
    char *variables = rg_json_dumps(json_object_get(req->doc, "variables"));
    const char *params[] = {req->id,
                            req->org_id,
                            doc_string(req, "agent_id"),
                            doc_string(req, "number_id"),
                            doc_string(req, "from_user"),
                            doc_string(req, "to"),
                            variables,
                            req->principal_kind,
                            req->principal_id,
                            changes,
                            req->request_id};
    rg_req_query(req,
                 "WITH ins AS (INSERT INTO calls (id, org_id, agent_id, number_id, direction, "
                 "from_uri, to_uri, status, variables) VALUES ($1, $2, $3, NULLIF($4, ''), "
                 "'outbound', $5, $6, 'queued', $7::jsonb) RETURNING *), "
                 "aud AS (" AUDIT_INSERT "SELECT org_id, $8, $9, 'call.create', 'call', id, "
                 "$10::jsonb, $11 FROM ins) "
                 "SELECT id FROM ins",
                 11, params, on_created);
    free(changes);
    free(variables);
}

void
rg_calls_create(rg_req_t *req)
{
    json_t *doc = rg_req_parse_body(req);
    if (doc == NULL)
        return;
    rg_errors_t *errs = rg_errors_create();
    json_t *input = rg_call_create_validate(doc, errs);
    json_decref(doc);
    if (input == NULL) {
        rg_req_fail_fields(req, errs);
        return;
    }
    rg_errors_destroy(errs);
    json_decref(req->doc);
    req->doc = input;
    lc_id_new("call_", req->id, sizeof(req->id));
    lc_log_context_set(req->request_id, req->id);
    const char *params[] = {req->org_id, doc_string(req, "agent_id"), doc_string(req, "number_id")};
    rg_req_query(req, LOOKUP_SQL, 3, params, on_lookup);
}
