/*
 * gw_problem: RFC 9457 problem details, the body of every error the gateway sends.
 *
 *   {"type":"https://voxihub.dev/problems/<name>","title":"...","status":400,
 *    "detail":"...","request_id":"req_...","errors":[{"field":"voice.speed","message":"..."}]}
 *
 * <name> is an lc_status name ("invalid", "not_found", "timeout", ...) or, for the errors
 * only HTTP has, "method_not_allowed", "unsupported_media_type", "expectation_failed".
 * errors[] appears only when there are field errors. Text from outside (a service's
 * message, a field path) is bounded and, if it is not valid UTF-8, reduced to printable
 * ASCII, so rendering never fails.
 *
 * Threads: any.
 */
#ifndef GW_PROBLEM_H
#define GW_PROBLEM_H

#include <stddef.h>

#include "lc_status.h"

#define GW_PROBLEM_CONTENT_TYPE "application/problem+json"
#define GW_PROBLEM_TYPE_BASE "https://voxihub.dev/problems/"
/* Bounds on what a service can make the gateway render. */
#define GW_PROBLEM_MAX_ERRORS 100
#define GW_PROBLEM_MAX_TEXT 1024

typedef struct {
    const char *field;   /* JSON path, e.g. "voice.speed" */
    const char *message; /* e.g. "must be between 0.5 and 2" */
} gw_field_error_t;

/* The problem name for an HTTP status the gateway produces itself (400 -> "invalid"). */
const char *gw_problem_name_for_http(int http_status);

/* The HTTP status for a status reported on the bus; never 499 or below 400 (a
 * "cancelled" or unknown status is 503 or 500). */
int gw_problem_http_for_status(lc_status_t st);

/* The short, fixed title of a problem name ("Invalid request"). */
const char *gw_problem_title(const char *name);

/*
 * Renders a problem document. name: problem name; detail: may be NULL (no "detail");
 * request_id: borrowed; errors: nerrors field errors (NULL/0 for none; more than
 * GW_PROBLEM_MAX_ERRORS are dropped). Returns a new NUL-terminated string (free()) and its
 * length in *len_out; never NULL.
 */
char *gw_problem_render(int status, const char *name, const char *detail, const char *request_id,
                        const gw_field_error_t *errors, size_t nerrors, size_t *len_out);

#endif
