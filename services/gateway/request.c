#include "gw_request.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_time.h"

#define QUERY_NAME_MAX 64
#define QUOTE_MAX 40

bool
gw_request_id_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

void
gw_request_id_pick(const char *hdr, size_t hdr_len, char out[GW_REQUEST_ID_SIZE])
{
    if (gw_request_id_valid(hdr, hdr_len)) {
        memcpy(out, hdr, hdr_len);
        out[hdr_len] = '\0';
        return;
    }
    lc_id_new("req_", out, GW_REQUEST_ID_SIZE);
}

void
gw_printable(const char *s, size_t len, size_t max, char *out, size_t out_size)
{
    if (out_size == 0)
        return;
    size_t n = 0;
    bool cut = len > max;
    size_t take = cut ? max : len;
    /* leave room for "..." and the NUL */
    if (take + 4 > out_size) {
        take = out_size > 4 ? out_size - 4 : 0;
        cut = true;
    }
    for (size_t i = 0; i < take; i++) {
        unsigned char c = (unsigned char) s[i];
        out[n++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }
    if (cut && n + 3 < out_size) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* ---- query string ---- */

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes (and '+' -> ' ') src into out; false on a broken escape or overflow. */
static bool
url_decode(const char *src, size_t len, char *out, size_t out_size, size_t *out_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (len - i < 3)
                return false;
            int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (char) (hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (n + 1 >= out_size)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    *out_len = n;
    return true;
}

static bool
id_like(const char *s, size_t len)
{
    if (len == 0 || len > GW_PARAM_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static lc_status_t
query_error(gw_query_t *out, const char *param, size_t param_len, char *detail, size_t detail_size,
            const char *fmt)
{
    char shown[QUOTE_MAX + 4];
    gw_printable(param, param_len, QUOTE_MAX, shown, sizeof(shown));
    snprintf(out->bad_param, sizeof(out->bad_param), "%s", shown);
    snprintf(detail, detail_size, fmt, shown);
    return LC_ERR_INVALID;
}

/* A filter value: printable ASCII, no control characters; the service checks the rest. */
static bool
filter_value_ok(const char *s, size_t len)
{
    if (len == 0 || len > GW_FILTER_VALUE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c < 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

static bool
filter_seen(const gw_query_t *out, const char *canon)
{
    for (size_t i = 0; i < out->nfilters; i++)
        if (out->filters[i].name == canon)
            return true;
    return false;
}

lc_status_t
gw_query_parse(const char *query, size_t len, const gw_route_t *route, gw_query_t *out,
               char *detail, size_t detail_size)
{
    memset(out, 0, sizeof(*out));
    bool list = route->list;
    out->limit = list ? GW_LIMIT_DEFAULT : 0;
    bool seen_limit = false, seen_after = false;
    size_t pos = 0;
    while (query != NULL && pos < len) {
        size_t end = pos;
        while (end < len && query[end] != '&')
            end++;
        const char *pair = query + pos;
        size_t pair_len = end - pos;
        pos = end + 1;
        if (pair_len == 0)
            continue; /* "a=1&&b=2", a trailing '&' */
        size_t eq = 0;
        while (eq < pair_len && pair[eq] != '=')
            eq++;
        char name[QUERY_NAME_MAX + 1], value[GW_PARAM_MAX * 3 + 1];
        size_t name_len = 0, value_len = 0;
        if (!url_decode(pair, eq, name, sizeof(name), &name_len))
            return query_error(out, pair, eq, detail, detail_size,
                               "Unknown or malformed query parameter '%s'.");
        if (!list)
            return query_error(out, name, name_len, detail, detail_size,
                               "Unknown query parameter '%s': this route takes none.");
        /* a decoded name may hold a NUL: compare lengths too */
        bool is_limit = name_len == 5 && memcmp(name, "limit", 5) == 0;
        bool is_after = name_len == 14 && memcmp(name, "starting_after", 14) == 0;
        const char *filter = NULL;
        bool is_filter = !is_limit && !is_after && gw_route_filter(route, name, name_len, &filter);
        if (!is_limit && !is_after && !is_filter)
            return query_error(out, name, name_len, detail, detail_size,
                               route->filters != NULL
                                   ? "Unknown query parameter '%s': see the route's documented "
                                     "filters."
                                   : "Unknown query parameter '%s': lists take limit and "
                                     "starting_after.");
        if ((is_limit && seen_limit) || (is_after && seen_after) ||
            (is_filter && filter_seen(out, filter)))
            return query_error(out, name, name_len, detail, detail_size,
                               "Query parameter '%s' is given more than once.");
        bool decoded = eq < pair_len && url_decode(pair + eq + 1, pair_len - eq - 1, value,
                                                   sizeof(value), &value_len);
        if (is_filter) {
            /* a decoded value may hold a NUL: filter_value_ok refuses control characters */
            if (!decoded || !filter_value_ok(value, value_len) || out->nfilters >= GW_FILTERS_MAX)
                return query_error(out, name, name_len, detail, detail_size,
                                   "Query parameter '%s' must be 1 to 64 printable characters.");
            gw_filter_t *f = &out->filters[out->nfilters++];
            f->name = filter;
            memcpy(f->value, value, value_len + 1);
        } else if (is_limit) {
            seen_limit = true;
            long v = 0;
            bool ok = decoded && value_len > 0 && value_len <= 3;
            for (size_t i = 0; ok && i < value_len; i++) {
                if (value[i] < '0' || value[i] > '9')
                    ok = false;
                else
                    v = v * 10 + (value[i] - '0');
            }
            if (!ok || v < 1 || v > GW_LIMIT_MAX)
                return query_error(out, name, name_len, detail, detail_size,
                                   "Query parameter '%s' must be an integer from 1 to 100.");
            out->limit = (int) v;
        } else {
            seen_after = true;
            if (!decoded || !id_like(value, value_len))
                return query_error(out, name, name_len, detail, detail_size,
                                   "Query parameter '%s' must be an id: the next_cursor of the "
                                   "previous page.");
            memcpy(out->starting_after, value, value_len + 1);
        }
    }
    return LC_OK;
}

char *
gw_query_filters_json(const gw_query_t *q)
{
    if (q->nfilters == 0)
        return NULL;
    json_t *obj = json_object();
    for (size_t i = 0; i < q->nfilters && i < GW_FILTERS_MAX; i++)
        json_object_set_new(obj, q->filters[i].name, json_string(q->filters[i].value));
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL)
        abort(); /* only on out of memory: values are printable ASCII */
    return text;
}

/* ---- Content-Type ---- */

static bool
is_space(char c)
{
    return c == ' ' || c == '\t';
}

bool
gw_content_type_ok(const char *value, size_t len, bool merge_patch, char *detail,
                   size_t detail_size)
{
    char shown[QUOTE_MAX + 4];
    if (value == NULL || len == 0) {
        snprintf(detail, detail_size,
                 "The request body must be JSON: send Content-Type: application/json.");
        return false;
    }
    size_t i = 0;
    while (i < len && is_space(value[i]))
        i++;
    size_t start = i;
    while (i < len && value[i] != ';' && !is_space(value[i]))
        i++;
    size_t type_len = i - start;
    const char *type = value + start;
    bool json = type_len == 16 && strncasecmp(type, "application/json", 16) == 0;
    bool patch =
        merge_patch && type_len == 28 && strncasecmp(type, "application/merge-patch+json", 28) == 0;
    if (!json && !patch) {
        gw_printable(type, type_len, QUOTE_MAX, shown, sizeof(shown));
        snprintf(detail, detail_size,
                 "Content-Type '%s' is not supported: the request body must be "
                 "application/json%s.",
                 shown, merge_patch ? " or application/merge-patch+json" : "");
        return false;
    }
    /* parameters: ; name=value (value maybe quoted); only charset is looked at */
    while (i < len) {
        while (i < len && (is_space(value[i]) || value[i] == ';'))
            i++;
        size_t name_start = i;
        while (i < len && value[i] != '=' && value[i] != ';')
            i++;
        size_t name_end = i;
        while (name_end > name_start && is_space(value[name_end - 1]))
            name_end--;
        if (i >= len || value[i] != '=')
            continue; /* a parameter without value: tolerated */
        i++;
        size_t value_start = i;
        bool quoted = i < len && value[i] == '"';
        if (quoted) {
            value_start = ++i;
            while (i < len && value[i] != '"')
                i++;
        } else {
            while (i < len && value[i] != ';' && !is_space(value[i]))
                i++;
        }
        size_t value_end = i;
        if (quoted && i < len)
            i++;
        if (name_end - name_start == 7 && strncasecmp(value + name_start, "charset", 7) == 0) {
            size_t vlen = value_end - value_start;
            const char *v = value + value_start;
            if (!((vlen == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
                  (vlen == 4 && strncasecmp(v, "utf8", 4) == 0))) {
                gw_printable(v, vlen, QUOTE_MAX, shown, sizeof(shown));
                snprintf(detail, detail_size,
                         "Charset '%s' is not supported: JSON bodies are UTF-8.", shown);
                return false;
            }
        }
    }
    return true;
}

/* ---- JSON body ---- */

lc_status_t
gw_body_check(const char *body, size_t len, char *detail, size_t detail_size)
{
    if (body == NULL || len == 0) {
        snprintf(detail, detail_size, "The request body is empty: it must be a JSON object.");
        return LC_ERR_INVALID;
    }
    json_error_t err;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (doc == NULL) {
        char text[sizeof(err.text) + 4];
        gw_printable(err.text, strlen(err.text), sizeof(err.text), text, sizeof(text));
        snprintf(detail, detail_size, "Malformed JSON at line %d, column %d (byte %d): %s.",
                 err.line, err.column, err.position, text);
        return LC_ERR_INVALID;
    }
    bool object = json_is_object(doc);
    const char *kind = json_is_array(doc)    ? "an array"
                       : json_is_string(doc) ? "a string"
                       : json_is_number(doc) ? "a number"
                       : json_is_null(doc)   ? "null"
                                             : "a boolean";
    json_decref(doc);
    if (!object) {
        snprintf(detail, detail_size, "The request body must be a JSON object, not %s.", kind);
        return LC_ERR_INVALID;
    }
    return LC_OK;
}
