/*
 * rg_api: the registry's request/reply subjects on NATS, queue group "registry":
 *
 *   voxi.registry.agents.{create,list,get,update,delete}    (ApiRequest -> ApiReply)
 *   voxi.registry.numbers.{create,list,get,update,delete}   (ApiRequest -> ApiReply)
 *   voxi.registry.numbers.resolve   (ResolveNumberRequest -> ResolveNumberReply; services)
 *   voxi.registry.calls.{create,list,get,hangup,recording}  (ApiRequest -> ApiReply; rg_calls.h)
 *
 * Each request comes in an Envelope (request_id, org_id, principal, deadline) and is
 * answered with an Envelope holding either the reply body or Envelope.error (status name,
 * message, field errors). Work whose deadline has passed is dropped unanswered. All
 * database work goes through the service's asynchronous pool; nothing blocks the loop.
 *
 * Threads: loop thread only.
 */
#ifndef RG_API_H
#define RG_API_H

#include <stddef.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_pg.h"
#include "lc_status.h"
#include "lc_events.h"
#include "rg_prices.h"
#include "rg_secret.h"

typedef struct rg_api rg_api_t;

/* Everything is borrowed and must outlive the api object. */
typedef struct {
    uv_loop_t *loop;
    lc_nats_t *nats;
    lc_pg_pool_t *pg;
    lc_metrics_t *metrics;
    const rg_secret_t *secret;
    lc_events_t *events;
    const rg_prices_t *prices; /* calls' cost */
} rg_api_deps_t;

/* Subscribes every subject. On failure nothing stays subscribed and *out is NULL. */
lc_status_t rg_api_start(const rg_api_deps_t *deps, rg_api_t **out);

/* Unsubscribes (no new requests); requests in progress finish. */
void rg_api_stop(rg_api_t *api);

/* Requests received and not answered yet. */
size_t rg_api_inflight(const rg_api_t *api);

/* After the loop has ended (no request in progress). NULL is a no-op. */
void rg_api_destroy(rg_api_t *api);

#endif
