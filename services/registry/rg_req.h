/*
 * rg_req: one request in progress, shared by the dispatcher (api.c) and the handlers
 * (agents.c, numbers.c). Private to the registry.
 *
 * A handler is called with a request whose envelope has been checked (lengths, org id
 * syntax, deadline) and must end it exactly once with rg_req_reply, rg_req_reply_pb or one
 * of the rg_req_fail* functions, which answer, count, and free the request.
 *
 * Threads: loop thread only.
 */
#ifndef RG_REQ_H
#define RG_REQ_H

#include <jansson.h>
#include <libpq-fe.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "lc_status.h"
#include "rg_errors.h"
#include "lc_events.h"
#include "rg_secret.h"

#define RG_ID_MAX 64 /* ids, cursors, org ids, request ids */

typedef struct rg_api rg_api_t;
typedef struct rg_req rg_req_t;

typedef void (*rg_query_cb)(rg_req_t *req, lc_status_t status, PGresult *res);

struct rg_req {
    rg_api_t *api;
    const char *verb; /* "agents.create", ...: static */
    char *reply_to;
    char request_id[RG_ID_MAX + 1];
    char org_id[RG_ID_MAX + 1];
    char principal_kind[33];
    char principal_id[129];
    int64_t deadline_unix_ms; /* 0 = none */
    int64_t started_mono_ms;

    /* ApiRequest (API verbs) */
    char id[RG_ID_MAX + 1];
    char starting_after[RG_ID_MAX + 1];
    int limit;
    char *json; /* body text, NUL-terminated */
    size_t json_len;

    /* ResolveNumberRequest */
    char number[RG_ID_MAX + 1];

    /* handler state */
    rg_query_cb query_cb;
    int64_t query_started_mono_ms;
    int attempts;
    json_t *patch; /* update: the merge patch (read-only fields stripped) */
    json_t *doc;   /* handler scratch, freed with the request */
    rg_errors_t *errs;
    char password_op[8]; /* numbers.update: "keep", "set" or "clear" */
    char *sealed;        /* numbers: the sealed password to write, or NULL */
};

/* Runs a query for req; cb gets the outcome (see lc_pg_result_cb). When the pool refuses
 * the query (full, closing), the request fails with "unavailable" and cb is not called. */
void rg_req_query(rg_req_t *req, const char *sql, int nparams, const char *const *params,
                  rg_query_cb cb);

/* The envelope's deadline has passed. */
bool rg_req_expired(const rg_req_t *req);

/* Ends req with an ApiReply {http_status, json}. json may be NULL for "". */
void rg_req_reply(rg_req_t *req, int http_status, const char *json);
/* Ends req with any reply body. */
void rg_req_reply_pb(rg_req_t *req, const ProtobufCMessage *body);
/* Parses the request body; ends req (invalid, or too_large) and returns NULL when it is not
 * a JSON object. */
json_t *rg_req_parse_body(rg_req_t *req);
/* Ends req with an error (message: safe for the API caller). */
void rg_req_fail(rg_req_t *req, lc_status_t status, const char *message);
/* Ends req with "invalid" and the field errors of errs (taken over: freed here). */
void rg_req_fail_fields(rg_req_t *req, rg_errors_t *errs);
/* Ends req with "invalid" and one field error. */
void rg_req_fail_field(rg_req_t *req, const char *field, const char *message);
/* Ends req after a failed query: timeout -> "timeout", lost connection/closing ->
 * "unavailable", anything else -> "internal" (details only in the log). */
void rg_req_fail_db(rg_req_t *req, lc_status_t status, PGresult *res);

const rg_secret_t *rg_req_secret(const rg_req_t *req);
lc_events_t *rg_req_events(const rg_req_t *req);

/* SQLSTATE of an error result ("" when none) and the constraint it names ("" when none). */
const char *rg_pg_sqlstate(const PGresult *res);
const char *rg_pg_constraint(const PGresult *res);

/* Epoch ms as "2026-01-02T03:04:05.678Z" json string (new reference). */
json_t *rg_json_time(int64_t epoch_ms);

/* Handlers (agents.c, numbers.c). */
void rg_agents_create(rg_req_t *req);
void rg_agents_list(rg_req_t *req);
void rg_agents_get(rg_req_t *req);
void rg_agents_update(rg_req_t *req);
void rg_agents_delete(rg_req_t *req);
void rg_numbers_create(rg_req_t *req);
void rg_numbers_list(rg_req_t *req);
void rg_numbers_get(rg_req_t *req);
void rg_numbers_update(rg_req_t *req);
void rg_numbers_delete(rg_req_t *req);
void rg_numbers_resolve(rg_req_t *req);

/* The agent object of the API from a row's columns (id, config text, version, ms, ms).
 * Returns NULL when the stored config does not parse (logged). */
json_t *rg_agent_render(const char *id, const char *config_text, int64_t version,
                        int64_t created_ms, int64_t updated_ms);

#endif
