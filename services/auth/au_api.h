/*
 * au_api: the plumbing every auth handler of the REST API on the bus shares (api.proto):
 * receiving an Envelope with an ApiRequest, replying with an ApiReply or an Envelope error
 * (with field errors for validation), reading the caller from the Envelope, JSON helpers.
 *
 * A request (au_req_t) is created when a message arrives and freed by the one reply the
 * handler sends (au_req_reply_*). Requests whose deadline passed before they arrived are
 * dropped unanswered (the gateway has given up on them).
 *
 * Threads: the loop thread only.
 */
#ifndef AU_API_H
#define AU_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "au_ctx.h"
#include "au_scope.h"
#include "lc_pb.h"
#include "voxi/v1/api.pb-c.h"

#define AU_ID_MAX 40
#define AU_BODY_MAX_BYTES (64 * 1024)

typedef struct au_req au_req_t;

/* A handler: owns req until it replies (exactly once, now or later). */
typedef void (*au_handler_fn)(au_req_t *req);

struct au_req {
    au_ctx_t *ctx;
    const char *op; /* "keys.create", for logs and metrics */
    char *reply_to;
    Voxi__V1__Envelope *env;
    Voxi__V1__ApiRequest *api;
    int64_t started_ms;
    void *data;                    /* the handler's own state */
    void (*free_data)(void *data); /* called when the request is freed; may be NULL */
};

/* Subscribes `subject` in the queue group "auth": each message becomes an au_req_t for fn. */
lc_status_t au_api_subscribe(au_ctx_t *ctx, const char *subject, const char *op, au_handler_fn fn);

/* ---- replies: each sends and frees req ---- */

/* ApiReply{http_status, json}; body is dumped compactly and released (NULL = no body). */
void au_req_reply_json(au_req_t *req, int http_status, json_t *body);
/* Envelope error with a message safe for the API caller. */
void au_req_reply_error(au_req_t *req, lc_status_t status, const char *message);

/* Field errors of a validation failure. */
typedef struct {
    Voxi__V1__FieldError **items;
    size_t n, cap;
} au_fields_t;

void au_fields_add(au_fields_t *f, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void au_fields_free(au_fields_t *f);
/* Envelope error "invalid" with the fields (taken: *f is emptied). */
void au_req_reply_invalid(au_req_t *req, const char *message, au_fields_t *f);

/* ---- the caller ---- */

/* The Envelope's org id when it is a well-formed org id, else NULL. */
const char *au_req_org(const au_req_t *req);
/* Principal kind and id ("" when none) and scopes (bits of known names). */
const char *au_req_principal_kind(const au_req_t *req);
const char *au_req_principal_id(const au_req_t *req);
au_scopes_t au_req_principal_scopes(const au_req_t *req);

/*
 * Parses the request body as a JSON object. On failure replies "invalid" and returns
 * NULL (req is gone). An empty body is an empty object.
 */
json_t *au_req_body_object(au_req_t *req);

/* ---- JSON ---- */

/* An RFC 3339 UTC timestamp with milliseconds, or JSON null when epoch_ms is NULL text. */
json_t *au_json_time(const char *epoch_ms_text);

#endif
