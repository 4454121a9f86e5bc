#include "wh_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

bool
wh_id_valid(const char *id)
{
    if (id == NULL)
        return false;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok || n >= WH_ID_MAX)
            return false;
    }
    return n > 0;
}

bool
wh_event_type_valid(const char *type)
{
    if (type == NULL)
        return false;
    size_t n = strlen(type), word = 0;
    if (n == 0 || n > WH_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = type[i];
        if (c == '.') {
            if (word == 0)
                return false;
            word = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
        word++;
    }
    return word > 0;
}

int64_t
wh_rfc3339_parse_ms(const char *text)
{
    if (text == NULL || strlen(text) > 40)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return -1;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        offset_s = sign * (hh * 3600 + mm * 60);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    return ((int64_t) timegm(&tm) - offset_s) * 1000 + ms;
}

lc_status_t
wh_event_parse(const void *data, size_t len, wh_event_t *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > WH_EVENT_MAX_BYTES) {
        snprintf(why, why_size, "size %zu outside 1..%d", len, WH_EVENT_MAX_BYTES);
        return LC_ERR_INVALID;
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        snprintf(why, why_size, "not a JSON object");
        json_decref(root);
        return LC_ERR_INVALID;
    }
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *type = json_string_value(json_object_get(root, "type"));
    const char *org_id = json_string_value(json_object_get(root, "org_id"));
    const char *created_at = json_string_value(json_object_get(root, "created_at"));
    const char *bad = NULL;
    if (!wh_id_valid(id))
        bad = "id";
    else if (!wh_event_type_valid(type))
        bad = "type";
    else if (!wh_id_valid(org_id))
        bad = "org_id";
    else if (created_at == NULL || wh_rfc3339_parse_ms(created_at) < 0)
        bad = "created_at";
    else if (!json_is_object(json_object_get(root, "data")))
        bad = "data";
    if (bad) {
        snprintf(why, why_size, "missing or invalid \"%s\"", bad);
        json_decref(root);
        return LC_ERR_INVALID;
    }
    out->root = root;
    out->id = id;
    out->type = type;
    out->org_id = org_id;
    out->created_at = created_at;
    return LC_OK;
}
