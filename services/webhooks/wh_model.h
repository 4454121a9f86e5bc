/*
 * wh_model: how webhook objects look in the API, shared by the handlers, the delivery
 * engine (endpoint.disabled events) and the SQL that renders them.
 *
 * Objects are rendered by Postgres (json_build_object), so a row and its JSON never drift
 * apart and lists need no second pass in C. Timestamps use webhook_ts() from
 * migrations/0004_webhooks.sql (RFC 3339, UTC, milliseconds). Secrets are never part of a
 * rendered object: the handlers add "secret" themselves to the one response that shows it.
 *
 *   webhook_endpoint: id, url, description, event_types[], enabled, disabled_reason
 *                     (null|"manual"|"gone"|"failing"), metadata{}, failing_since,
 *                     previous_secret_expires_at, created_at, updated_at
 *   webhook_delivery: id, endpoint_id, event_id, event_type, status
 *                     ("pending"|"succeeded"|"failed"), attempt_count, next_attempt_at,
 *                     last_status_code, last_error, created_at, updated_at, attempts[]
 *   webhook_attempt:  id, attempt, started_at, duration_ms, status_code, error,
 *                     response_body (the first VOXI_WEBHOOKS_RESPONSE_BYTES_KEPT bytes),
 *                     next_attempt_at
 *
 * Threads: any.
 */
#ifndef WH_MODEL_H
#define WH_MODEL_H

#include <stdarg.h>
#include <stddef.h>

/* SQL expression rendering endpoint row `e` (an alias) as json. */
#define WH_ENDPOINT_JSON(e)                                                                        \
    "json_build_object('object', 'webhook_endpoint', 'id', " e ".id, 'url', " e ".url, "           \
    "'description', " e ".description, 'event_types', to_json(" e ".event_types), "                \
    "'enabled', " e ".enabled, 'disabled_reason', " e ".disabled_reason, "                         \
    "'metadata', " e ".metadata, 'failing_since', webhook_ts(" e ".failing_since), "               \
    "'previous_secret_expires_at', CASE WHEN " e ".previous_secret_expires_at > now() THEN "       \
    "webhook_ts(" e ".previous_secret_expires_at) END, "                                           \
    "'created_at', webhook_ts(" e ".created_at), 'updated_at', webhook_ts(" e ".updated_at))"

/* SQL expression rendering delivery row `d` with its attempts as json. */
#define WH_DELIVERY_JSON(d)                                                                        \
    "json_build_object('object', 'webhook_delivery', 'id', " d ".id, 'endpoint_id', " d            \
    ".endpoint_id, 'event_id', " d ".event_id, 'event_type', " d ".event_type, 'status', " d       \
    ".status, 'attempt_count', " d ".attempt_count, 'next_attempt_at', webhook_ts(" d              \
    ".next_attempt_at), 'last_status_code', " d ".last_status_code, 'last_error', " d              \
    ".last_error, 'created_at', webhook_ts(" d ".created_at), 'updated_at', webhook_ts(" d         \
    ".updated_at), 'attempts', coalesce((SELECT json_agg(json_build_object("                       \
    "'object', 'webhook_attempt', 'id', a.id, 'attempt', a.attempt, 'started_at', "                \
    "webhook_ts(a.started_at), 'duration_ms', a.duration_ms, 'status_code', a.status_code, "       \
    "'error', a.error, 'response_body', a.response_body, 'next_attempt_at', "                      \
    "webhook_ts(a.next_attempt_at)) ORDER BY a.started_at, a.id) FROM webhook_attempts a "         \
    "WHERE a.delivery_id = " d ".id), '[]'::json))"

/*
 * Copies len bytes of untrusted text into out (out_size > 0, always NUL-terminated) so that
 * it is valid UTF-8 without NUL bytes (what Postgres text and JSON strings accept): invalid
 * sequences and control bytes other than tab/CR/LF become '?', a sequence cut by the end
 * is dropped. Returns the bytes written.
 */
size_t wh_model_safe_text(const char *in, size_t len, char *out, size_t out_size);

/* A growing byte buffer for building statement parameters (JSON text) without a DOM. */
typedef struct {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap;
} wh_buf_t;

void wh_buf_append(wh_buf_t *b, const char *s, size_t n);
void wh_buf_str(wh_buf_t *b, const char *s);
void wh_buf_printf(wh_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (valid UTF-8, n bytes) as a quoted JSON string (RFC 8259 section 7). */
void wh_buf_json_string(wh_buf_t *b, const char *s, size_t n);
void wh_buf_free(wh_buf_t *b);

#endif
