/*
 * gw_routes: the gateway's static route table and the matcher.
 *
 * Each route is a method, a path pattern whose segments are literals or a parameter
 * (`{id}`, `{sub_id}`), and either the NATS subject of the owning service (queue group =
 * the service) or a handler served by the gateway itself. The table is the one source of
 * truth for what the gateway serves: `voxi-gateway --routes` prints it and a system test
 * compares it with the OpenAPI document.
 *
 * Threads: any (the table is constant).
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Longest path parameter value; values are `[A-Za-z0-9_-]{1,GW_PARAM_MAX}`. */
#define GW_PARAM_MAX 64
/* Room for an Allow header value listing every method of one path. */
#define GW_ALLOW_MAX 64

typedef enum {
    GW_LOCAL_NONE = 0, /* forwarded to `subject` */
    GW_LOCAL_OPENAPI,  /* GET /v1/openapi.json */
    GW_LOCAL_DOCS,     /* GET /docs */
} gw_local_t;

/* What the gateway does with a 2xx reply of the owning service. */
typedef enum {
    GW_REPLY_JSON = 0,  /* the reply's JSON is the response */
    GW_REPLY_RECORDING, /* the reply locates a recording, streamed from its media worker */
} gw_reply_t;

/* Most filters one list route takes besides limit and starting_after. */
#define GW_FILTERS_MAX 8

typedef struct {
    const char *method;      /* "GET", "POST", "PATCH", "DELETE" */
    const char *pattern;     /* "/v1/agents/{id}" */
    const char *subject;     /* "voxi.registry.agents.get"; NULL for local routes */
    const char *scope;       /* required scope; "" when any valid key (or none) will do */
    const char *route_class; /* "read" (GET) or "write" */
    bool anonymous;          /* no credentials needed (rate-limited per client address) */
    bool list;               /* takes `limit` and `starting_after` */
    gw_local_t local;
    /* Lists: the names of the filters the route takes from the query string (passed to
     * the service in ApiRequest.filters), NULL-terminated; NULL for none. */
    const char *const *filters;
    bool body_optional; /* an action POST: an empty body (any or no Content-Type) is {} */
    gw_reply_t reply;
} gw_route_t;

extern const gw_route_t gw_routes[];
extern const size_t gw_route_count;

typedef enum {
    GW_MATCH_OK = 0,
    GW_MATCH_NOT_FOUND,  /* no pattern matches the path */
    GW_MATCH_BAD_METHOD, /* the path exists, the method does not: 405 with Allow */
} gw_match_t;

typedef struct {
    const gw_route_t *route; /* GW_MATCH_OK only */
    size_t index;            /* index of route in gw_routes */
    char id[GW_PARAM_MAX + 1];
    char sub_id[GW_PARAM_MAX + 1];
    char allow[GW_ALLOW_MAX]; /* GW_MATCH_BAD_METHOD: "GET, POST" */
} gw_match_result_t;

/*
 * Matches a request. path is the normalised path without the query (h2o's
 * path_normalized); neither needs a NUL. A segment for a parameter must be a valid
 * parameter value, or the path does not match (404). Never reads past the given lengths.
 */
gw_match_t gw_route_match(const char *method, size_t method_len, const char *path, size_t path_len,
                          gw_match_result_t *out);

/* True for the methods whose requests carry a JSON body (POST, PATCH). */
bool gw_route_has_body(const gw_route_t *route);

/* True when a request of this route with a body of body_len bytes must have its
 * Content-Type and body checked: a POST or PATCH, unless it is an action whose body is
 * optional and empty. */
bool gw_route_body_expected(const gw_route_t *route, size_t body_len);

/* True when `name` (name_len bytes, no NUL needed) is one of the route's filters; *canon
 * gets the table's copy of the name. */
bool gw_route_filter(const gw_route_t *route, const char *name, size_t name_len,
                     const char **canon);

/* Prints the table, one route per line: METHOD PATTERN SUBJECT|local SCOPE|- CLASS. */
void gw_routes_print(FILE *out);

#endif
