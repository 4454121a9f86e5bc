/*
 * wh_api: the REST API of the webhooks service on the bus, and one request in progress.
 *
 * Subjects (queue group "webhooks"), each an Envelope{org_id, principal, deadline} with an
 * ApiRequest body, answered with an ApiReply or an Envelope error (RFC 9457 on the gateway):
 *
 *   voxi.webhooks.endpoints.create   POST   /v1/webhook-endpoints              201
 *   voxi.webhooks.endpoints.list     GET    /v1/webhook-endpoints              200 (list)
 *   voxi.webhooks.endpoints.get      GET    /v1/webhook-endpoints/{id}         200
 *   voxi.webhooks.endpoints.update   PATCH  /v1/webhook-endpoints/{id}         200 (merge patch)
 *   voxi.webhooks.endpoints.delete   DELETE /v1/webhook-endpoints/{id}         204
 *   voxi.webhooks.endpoints.rotate   POST   /v1/webhook-endpoints/{id}/rotate-secret  200
 *   voxi.webhooks.endpoints.test     POST   /v1/webhook-endpoints/{id}/test    202
 *   voxi.webhooks.deliveries.list    GET    /v1/webhook-endpoints/{id}/deliveries 200 (list)
 *   voxi.webhooks.deliveries.retry   POST   /v1/webhook-deliveries/{id}/retry  202
 *
 * A handler gets a wh_req_t whose envelope is checked (sizes, org id, deadline) and ends it
 * exactly once with wh_req_reply or wh_req_fail*, which answer and free it.
 *
 * Threads: the loop thread.
 */
#ifndef WH_API_H
#define WH_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "lc_status.h"
#include "wh_service.h"

typedef struct wh_req wh_req_t;
typedef void (*wh_query_cb)(wh_req_t *req, lc_status_t status, PGresult *res);

/* Field errors of one request, reported together (at most WH_FIELD_ERRORS_MAX). */
#define WH_FIELD_ERRORS_MAX 32

struct wh_req {
    wh_service_t *ws;
    const char *verb; /* "endpoints.create", ...: static */
    char *reply_to;
    char request_id[WH_ID_MAX + 1];
    char org_id[WH_ID_MAX + 1];
    char principal_kind[33];
    char principal_id[WH_ID_MAX + 1];
    int64_t deadline_unix_ms;
    int64_t started_mono_ms;

    char id[WH_ID_MAX + 1];
    char starting_after[WH_ID_MAX + 1];
    int limit;
    json_t *body; /* the request's JSON object ({} when it had none) */

    json_t *errors; /* [{field, message}] collected by validation */
    wh_query_cb query_cb;

    /* handler scratch, freed with the request */
    void (*next)(wh_req_t *req); /* the step after an asynchronous check */
    json_t *doc;
    char *text;
    char secret[128];
    struct wh_resolve *resolving;
};

lc_status_t wh_api_create(wh_service_t *ws, wh_api_t **out);
/* Subscribes every subject (queue group "webhooks"). */
lc_status_t wh_api_start(wh_api_t *api);
/* Unsubscribes: no new requests; those in progress finish. */
void wh_api_stop(wh_api_t *api);
/* Requests in progress. */
size_t wh_api_inflight(const wh_api_t *api);
void wh_api_destroy(wh_api_t *api);

/* Runs a query for req; when the pool refuses it, req fails "unavailable" and cb is not
 * called. */
void wh_req_query(wh_req_t *req, const char *sql, int nparams, const char *const *params,
                  wh_query_cb cb);

/* Ends req with ApiReply{http_status, json} (json NULL = ""). */
void wh_req_reply(wh_req_t *req, int http_status, const char *json);
/* Ends req with an error; message is safe for the caller. */
void wh_req_fail(wh_req_t *req, lc_status_t status, const char *message);
/* Adds a field error (validation); see wh_req_fail_fields. */
void wh_req_field_error(wh_req_t *req, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends req with "invalid" and the field errors collected. */
void wh_req_fail_fields(wh_req_t *req);
/* Maps a query failure to an answer: unavailable / timeout / internal (logged). */
void wh_req_fail_db(wh_req_t *req, lc_status_t status);

/* Handlers (wh_endpoints.c). */
void wh_endpoints_create(wh_req_t *req);
void wh_endpoints_list(wh_req_t *req);
void wh_endpoints_get(wh_req_t *req);
void wh_endpoints_update(wh_req_t *req);
void wh_endpoints_delete(wh_req_t *req);
void wh_endpoints_rotate(wh_req_t *req);
void wh_endpoints_test(wh_req_t *req);
void wh_deliveries_list(wh_req_t *req);
void wh_deliveries_retry(wh_req_t *req);

#endif
