#include "gw_problem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_request.h"

const char *
gw_problem_name_for_http(int http_status)
{
    switch (http_status) {
    case 400:
        return "invalid";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "too_large";
    case 415:
        return "unsupported_media_type";
    case 417:
        return "expectation_failed";
    case 429:
        return "rate_limited";
    case 502:
        return "protocol";
    case 503:
        return "unavailable";
    case 504:
        return "timeout";
    default:
        return http_status >= 500 ? "internal" : "invalid";
    }
}

int
gw_problem_http_for_status(lc_status_t st)
{
    if (st == LC_ERR_CANCELLED)
        return 503; /* the gateway itself is shutting down */
    int http = lc_status_http(st);
    return http < 400 ? 500 : http;
}

static const struct {
    const char *name;
    const char *title;
} titles[] = {
    {"invalid", "Invalid request"},
    {"not_found", "Not found"},
    {"conflict", "Conflict"},
    {"unauthorized", "Unauthorized"},
    {"forbidden", "Forbidden"},
    {"rate_limited", "Too many requests"},
    {"too_large", "Request too large"},
    {"timeout", "Upstream timeout"},
    {"no_responders", "Service unavailable"},
    {"unavailable", "Service unavailable"},
    {"full", "Service unavailable"},
    {"cancelled", "Service unavailable"},
    {"io", "Bad gateway"},
    {"protocol", "Bad gateway"},
    {"method_not_allowed", "Method not allowed"},
    {"unsupported_media_type", "Unsupported media type"},
    {"expectation_failed", "Expectation failed"},
};

const char *
gw_problem_title(const char *name)
{
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
        if (strcmp(titles[i].name, name) == 0)
            return titles[i].title;
    return "Internal error";
}

/* A JSON string of s, cut at GW_PROBLEM_MAX_TEXT bytes; printable ASCII if s (or the cut)
 * is not valid UTF-8. */
static json_t *
safe_string(const char *s)
{
    size_t len = strnlen(s, GW_PROBLEM_MAX_TEXT + 1);
    if (len <= GW_PROBLEM_MAX_TEXT) {
        json_t *j = json_stringn(s, len);
        if (j != NULL)
            return j;
    }
    char ascii[GW_PROBLEM_MAX_TEXT + 4];
    gw_printable(s, len, GW_PROBLEM_MAX_TEXT, ascii, sizeof(ascii));
    return json_string(ascii);
}

char *
gw_problem_render(int status, const char *name, const char *detail, const char *request_id,
                  const gw_field_error_t *errors, size_t nerrors, size_t *len_out)
{
    char type[128];
    snprintf(type, sizeof(type), "%s%s", GW_PROBLEM_TYPE_BASE, name);
    json_t *doc = json_object();
    json_object_set_new(doc, "type", json_string(type));
    json_object_set_new(doc, "title", json_string(gw_problem_title(name)));
    json_object_set_new(doc, "status", json_integer(status));
    if (detail != NULL && detail[0] != '\0')
        json_object_set_new(doc, "detail", safe_string(detail));
    json_object_set_new(doc, "request_id", safe_string(request_id ? request_id : ""));
    if (errors != NULL && nerrors > 0) {
        json_t *list = json_array();
        for (size_t i = 0; i < nerrors && i < GW_PROBLEM_MAX_ERRORS; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "field", safe_string(errors[i].field ? errors[i].field : ""));
            json_object_set_new(e, "message",
                                safe_string(errors[i].message ? errors[i].message : ""));
            json_array_append_new(list, e);
        }
        json_object_set_new(doc, "errors", list);
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL) /* only out of memory gets here */
        abort();
    *len_out = strlen(text);
    return text;
}
