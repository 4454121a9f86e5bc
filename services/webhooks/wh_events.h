/*
 * wh_events: the events voxi-webhooks itself emits (endpoint.disabled, function.executed)
 * and the event envelope shared with the rest of the platform:
 *
 *   {"id":"evt_...","type":"...","created_at":"<RFC 3339 ms>","org_id":"org_...","data":{...}}
 *
 * published with lc_nats_js_publish to voxi.events.<org_id>.<type>, Nats-Msg-Id = id, into
 * the VOXI_EVENTS stream. A failed publish is logged and counted
 * (voxi_webhooks_events_published_total{outcome="error"}), never retried here.
 *
 * Threads: the loop thread.
 */
#ifndef WH_EVENTS_H
#define WH_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lc_status.h"
#include "wh_service.h"

/*
 * Validates an event received from the stream and extracts its parts. Accepts a JSON
 * object with string id (1..WH_ID_MAX of [A-Za-z0-9_-]), type (wh_event_type_valid),
 * org_id (like id), created_at (string), and an object `data`. On success *out is a new
 * reference to the parsed object (caller decrefs) and the strings point into it.
 * why (why_size bytes) says what is wrong otherwise.
 */
typedef struct {
    json_t *root;
    const char *id;
    const char *type;
    const char *org_id;
    const char *created_at;
} wh_event_t;

lc_status_t wh_event_parse(const void *data, size_t len, wh_event_t *out, char *why,
                           size_t why_size);

/* Event type names: dot-separated lower-case words ("call.recording.ready"), at most
 * WH_TYPE_MAX bytes. */
bool wh_event_type_valid(const char *type);
/* An id of 1..WH_ID_MAX characters from [A-Za-z0-9_-]. */
bool wh_id_valid(const char *id);

/* Parses an RFC 3339 timestamp ("2026-11-22T03:30:00.123Z" or with an offset) to epoch
 * milliseconds; -1 when malformed. */
int64_t wh_rfc3339_parse_ms(const char *text);

#endif
