/*
 * gw_request: checks of the untrusted parts of an HTTP request that need no I/O: the
 * request id, the query string, the Content-Type and the JSON body.
 *
 * Every function takes pointer + length (nothing needs a NUL), never reads past it, and
 * on failure writes a message fit for the API caller (problem+json `detail`) into the
 * given buffer. Messages may quote the caller's input, cut and with anything but
 * printable ASCII replaced by '?', so they are always valid UTF-8.
 *
 * Threads: any.
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "gw_routes.h"
#include "lc_status.h"

/* "req_" + 20 hex, or a client's id of up to 64 characters, plus the NUL. */
#define GW_REQUEST_ID_SIZE 65
#define GW_DETAIL_MAX 256
#define GW_LIMIT_DEFAULT 20
#define GW_LIMIT_MAX 100

/* True when s matches ^[A-Za-z0-9._-]{1,64}$. */
bool gw_request_id_valid(const char *s, size_t len);

/* The client's X-Request-Id when valid (hdr may be NULL), else a new `req_...` id. */
void gw_request_id_pick(const char *hdr, size_t hdr_len, char out[GW_REQUEST_ID_SIZE]);

/* Longest filter value (after percent-decoding). */
#define GW_FILTER_VALUE_MAX 64

typedef struct {
    const char *name; /* the route table's copy of the name */
    char value[GW_FILTER_VALUE_MAX + 1];
} gw_filter_t;

typedef struct {
    int limit;                             /* lists: 1..100, default 20; else 0 */
    char starting_after[GW_PARAM_MAX + 1]; /* lists: "" when absent */
    gw_filter_t filters[GW_FILTERS_MAX];   /* the route's filters that were given */
    size_t nfilters;
    char bad_param[GW_PARAM_MAX + 1]; /* on error: the parameter at fault, or "" */
} gw_query_t;

/*
 * Parses a query string (without the '?'; NULL/0 for none) of a route. Lists accept
 * `limit` (integer 1..100), `starting_after` (an id, as in a path parameter) and the
 * route's filters (route->filters: a value of 1..64 printable ASCII characters, checked
 * further by the service, which gets them in ApiRequest.json), each at most once; other routes
 * accept no parameters. Names and values are percent-decoded ('+' is a space). Errors:
 * LC_ERR_INVALID with detail (and out->bad_param set when one parameter is at fault).
 */
lc_status_t gw_query_parse(const char *query, size_t len, const gw_route_t *route, gw_query_t *out,
                           char *detail, size_t detail_size);

/* The filters of q as the JSON object a list route's service reads from ApiRequest.json
 * ({"status":"ended",...}, every value a string); a new string (free()), NULL when q has
 * no filters. */
char *gw_query_filters_json(const gw_query_t *q);

/*
 * True when a Content-Type value names JSON: `application/json` (or, when merge_patch is
 * set, also `application/merge-patch+json`, RFC 7396), any case, optional whitespace and
 * parameters; a charset parameter must be utf-8 (RFC 8259 8.1). false with detail set
 * otherwise.
 */
bool gw_content_type_ok(const char *value, size_t len, bool merge_patch, char *detail,
                        size_t detail_size);

/*
 * Checks that body is one well-formed JSON object (UTF-8, no duplicate keys, nothing
 * after it). Errors: LC_ERR_INVALID with a detail naming line, column and byte position
 * of the first problem.
 */
lc_status_t gw_body_check(const char *body, size_t len, char *detail, size_t detail_size);

/* Copies at most max bytes of s into out (out_size bytes), replacing anything but
 * printable ASCII by '?' and marking a cut with "...". */
void gw_printable(const char *s, size_t len, size_t max, char *out, size_t out_size);

#endif
