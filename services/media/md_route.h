/*
 * md_route: which org and agent answer a dialled number, asked of the control plane
 * (voxi.registry.numbers.resolve, proto/voxi/v1/registry.proto) asynchronously, with a small
 * cache keyed by number (entries carry the agent_version the registry reported and live
 * VOXI_MEDIA_ROUTE_CACHE_TTL_MS; at most MD_ROUTE_CACHE_MAX entries, expired ones purged
 * when it is full). Only answers are cached, and "no route" for the demo user only (the
 * caller asks for that): an unknown number or an unreachable registry is asked again next
 * time, so a number registered a moment ago routes at once.
 *
 * Outcomes of a lookup: LC_OK with the route; LC_ERR_NOT_FOUND (unknown number, or no agent
 * on it: the caller answers 404); LC_ERR_UNAVAILABLE (no registry, timeout after
 * VOXI_MEDIA_ROUTE_TIMEOUT_MS, not connected, bad reply: the caller answers 503).
 *
 * Threads: the loop thread only (the one lc_nats runs on).
 */
#ifndef MD_ROUTE_H
#define MD_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_status.h"

#define MD_ROUTE_SUBJECT "voxi.registry.numbers.resolve"
#define MD_ROUTE_CACHE_MAX 1024
#define MD_ROUTE_NUMBER_MAX 64
#define MD_ROUTE_ID_MAX 64
#define MD_ROUTE_AGENT_JSON_MAX (256u * 1024u)

/* A resolved number. agent_json is owned by whoever holds the struct (md_route_copy). */
typedef struct {
    char org_id[MD_ROUTE_ID_MAX + 1];
    char number_id[MD_ROUTE_ID_MAX + 1];
    char agent_id[MD_ROUTE_ID_MAX + 1];
    int32_t agent_version;
    char *agent_json;
} md_route_t;

typedef struct md_router md_router_t;
typedef struct md_route_lookup md_route_lookup_t;

/* route is borrowed for the callback only (copy it with md_route_copy); NULL unless LC_OK. */
typedef void (*md_route_cb)(void *arg, lc_status_t status, const md_route_t *route);

/* nats and metrics borrowed; ttl_ms 0 = no cache. Never NULL. */
md_router_t *md_router_create(lc_nats_t *nats, lc_metrics_t *metrics, int64_t timeout_ms,
                              int64_t ttl_ms);
/* Pending lookups must have been cancelled or completed. NULL is a no-op. */
void md_router_destroy(md_router_t *r);

/* True when number is something we would ask about (1..64 of [0-9A-Za-z+*#._-]). */
bool md_route_number_ok(const char *number);

typedef enum {
    MD_ROUTE_MISS = 0, /* nothing cached: ask */
    MD_ROUTE_HIT,      /* *out is the route (md_route_clear it) */
    MD_ROUTE_NONE,     /* remembered as having no route (md_router_remember_none) */
} md_route_cache_t;

/* What the cache knows about number (unexpired entries only). */
md_route_cache_t md_router_cached(md_router_t *r, const char *number, int64_t now_ms,
                                  md_route_t *out);
/* Remembers for the TTL that number has no route (the demo user: so an absent or overloaded
 * registry is not asked on every demo call). */
void md_router_remember_none(md_router_t *r, const char *number);

/*
 * Asks the registry. On LC_OK exactly one cb follows on a later loop turn unless
 * md_route_lookup_cancel is called first; *out is the handle until then. Any other return
 * (LC_ERR_UNAVAILABLE: not connected; LC_ERR_INVALID: bad number) means no callback.
 */
lc_status_t md_router_lookup(md_router_t *r, const char *number, md_route_cb cb, void *arg,
                             md_route_lookup_t **out);
/* No callback for this lookup any more (frees the handle). */
void md_route_lookup_cancel(md_route_lookup_t *lookup);

/* Deep copy (dst's old content is not freed). */
void md_route_copy(md_route_t *dst, const md_route_t *src);
/* Frees agent_json and zeroes. */
void md_route_clear(md_route_t *route);

#endif
