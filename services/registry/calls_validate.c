/*
 * The pure parts of the calls API (rg_calls.h): the create body, list filters, call events
 * from the stream, JetStream ack subjects.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rg_calls.h"
#include "rg_json.h"
#include "rg_validate.h"

/* ---- create ---- */

static bool
printable_no_space(const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool
e164(const char *s)
{
    if (s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (*p < '0' || *p > '9')
            return false;
    return n >= 2 && n <= 15;
}

bool
rg_call_to_valid(const char *to)
{
    size_t n = strlen(to);
    if (n == 0 || n > RG_CALL_TO_MAX)
        return false;
    if (e164(to))
        return true;
    size_t scheme = strncasecmp(to, "sip:", 4) == 0 ? 4 : strncasecmp(to, "sips:", 5) == 0 ? 5 : 0;
    return scheme > 0 && n > scheme && printable_no_space(to) && strchr(to, '<') == NULL &&
           strchr(to, '>') == NULL && strchr(to, '"') == NULL;
}

/* A caller id: E.164, or a SIP user part ([A-Za-z0-9] and -_.!~*'()&=+$,;?/ as RFC 3261
 * section 25.1 `user` allows, without escapes). */
static bool
from_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RG_CALL_FROM_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char) *p) && strchr("-_.!~*'()&=+$,;?/", *p) == NULL)
            return false;
    return true;
}

static const char *const create_keys[] = {"agent_id", "to", "from", "number_id", "variables", NULL};

static bool
known(const char *const *keys, const char *key)
{
    for (size_t i = 0; keys[i] != NULL; i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

json_t *
rg_call_create_validate(const json_t *doc, rg_errors_t *errs)
{
    size_t before = errs->count;
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *) doc, key, v)
    {
        if (!known(create_keys, key)) {
            char path[RG_PATH_MAX];
            rg_path_key(path, "", key);
            rg_errors_add(errs, path, "unknown field");
        }
    }
    v = json_object_get(doc, "agent_id");
    if (v == NULL)
        rg_errors_add(errs, "agent_id", "is required");
    else if (!json_is_string(v) || !rg_id_valid(json_string_value(v), "agt_"))
        rg_errors_add(errs, "agent_id", "must be an agent id (agt_...)");
    else
        json_object_set(out, "agent_id", v);

    v = json_object_get(doc, "to");
    if (v == NULL)
        rg_errors_add(errs, "to", "is required");
    else if (!json_is_string(v) || !rg_call_to_valid(json_string_value(v)))
        rg_errors_add(errs, "to",
                      "must be an E.164 number (+15551234567) or a sip: URI of at most %d bytes",
                      RG_CALL_TO_MAX);
    else
        json_object_set(out, "to", v);

    v = json_object_get(doc, "from");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || !from_valid(json_string_value(v)))
            rg_errors_add(errs, "from",
                          "must be an E.164 number or a SIP user part of at most %d characters",
                          RG_CALL_FROM_MAX);
        else
            json_object_set(out, "from", v);
    }

    v = json_object_get(doc, "number_id");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || !rg_id_valid(json_string_value(v), "pn_"))
            rg_errors_add(errs, "number_id", "must be a phone number id (pn_...)");
        else
            json_object_set(out, "number_id", v);
    }

    v = json_object_get(doc, "variables");
    json_t *vars = json_object();
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            rg_errors_add(errs, "variables", "must be an object of string values");
        } else {
            size_t total = 0;
            const char *name;
            json_t *value;
            json_object_foreach(v, name, value)
            {
                char path[RG_PATH_MAX];
                rg_path_key(path, "variables", name);
                if (name[0] == '\0')
                    rg_errors_add(errs, "variables", "names must not be empty");
                else if (!json_is_string(value))
                    rg_errors_add(errs, path, "must be a string");
                else
                    json_object_set(vars, name, value);
                total += strlen(name) + (json_is_string(value) ? json_string_length(value) : 0);
            }
            if (total > RG_CALL_VARIABLES_MAX)
                rg_errors_add(errs, "variables",
                              "names and values together must be at most %d bytes (are %zu)",
                              RG_CALL_VARIABLES_MAX, total);
        }
    }
    json_object_set_new(out, "variables", vars);
    if (errs->count > before || errs->truncated) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- list filters ---- */

static bool
digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool
rg_rfc3339_valid(const char *s)
{
    /* RFC 3339 section 5.6: full-date "T" full-time */
    size_t n = strlen(s);
    if (n < 20 || n > 35)
        return false;
    if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return false;
    int month = atoi(s + 5), day = atoi(s + 8), hour = atoi(s + 11), minute = atoi(s + 14),
        second = atoi(s + 17);
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        size_t f = 0;
        while (p[f] >= '0' && p[f] <= '9')
            f++;
        if (f == 0 || f > 9)
            return false;
        p += f;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return true;
    return (*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2) && p[3] == ':' &&
           digits(p + 4, 2) && atoi(p + 1) <= 23 && atoi(p + 4) <= 59;
}

static const char *const filter_keys[] = {"agent_id", "status", "created_after", "created_before",
                                          NULL};
static const char *const statuses[] = {"queued", "ringing", "in_progress", "ended", "failed", NULL};

static const char *
filter_string(const json_t *query, const char *key, rg_errors_t *errs)
{
    const json_t *v = json_object_get(query, key);
    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        rg_errors_add(errs, key, "must be a string");
        return NULL;
    }
    return json_string_value(v);
}

void
rg_call_filters_read(const json_t *query, rg_call_filters_t *out, rg_errors_t *errs)
{
    memset(out, 0, sizeof(*out));
    if (query == NULL)
        return;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *) query, key, v)
    {
        if (!known(filter_keys, key)) {
            char path[RG_PATH_MAX];
            rg_path_key(path, "", key);
            rg_errors_add(errs, path, "unknown filter");
        }
    }
    const char *s = filter_string(query, "agent_id", errs);
    if (s != NULL) {
        if (!rg_id_valid(s, "agt_"))
            rg_errors_add(errs, "agent_id", "must be an agent id (agt_...)");
        else
            snprintf(out->agent_id, sizeof(out->agent_id), "%s", s);
    }
    s = filter_string(query, "status", errs);
    if (s != NULL) {
        if (!known(statuses, s))
            rg_errors_add(errs, "status",
                          "must be one of queued, ringing, in_progress, ended, failed");
        else
            snprintf(out->status, sizeof(out->status), "%s", s);
    }
    s = filter_string(query, "created_after", errs);
    if (s != NULL) {
        if (!rg_rfc3339_valid(s))
            rg_errors_add(errs, "created_after", "must be an RFC 3339 date-time");
        else
            snprintf(out->created_after, sizeof(out->created_after), "%s", s);
    }
    s = filter_string(query, "created_before", errs);
    if (s != NULL) {
        if (!rg_rfc3339_valid(s))
            rg_errors_add(errs, "created_before", "must be an RFC 3339 date-time");
        else
            snprintf(out->created_before, sizeof(out->created_before), "%s", s);
    }
}

/* ---- events ---- */

static const char *const event_types[] = {
    "call.started",     "call.ringing", "call.answered",    "call.ended",      "call.failed",
    "call.transferred", "call.dtmf",    "call.interrupted", "call.transcript", NULL};

static bool
token_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > RG_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

static const char *
string_member(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

json_t *
rg_call_event_check(const void *data, size_t len, char *why, size_t why_size)
{
    if (len == 0 || len > RG_CALL_EVENT_MAX_BYTES) {
        snprintf(why, why_size, "size %zu is outside 1..%d", len, RG_CALL_EVENT_MAX_BYTES);
        return NULL;
    }
    json_error_t jerr;
    json_t *ev = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(ev)) {
        snprintf(why, why_size, "not a JSON object");
        goto bad;
    }
    const char *id = string_member(ev, "id"), *type = string_member(ev, "type"),
               *org = string_member(ev, "org_id"), *at = string_member(ev, "created_at");
    json_t *d = json_object_get(ev, "data");
    if (id == NULL || !token_ok(id) || org == NULL || !token_ok(org)) {
        snprintf(why, why_size, "id and org_id must be 1..%d of [A-Za-z0-9_-]", RG_ID_MAX);
        goto bad;
    }
    if (type == NULL || !known(event_types, type)) {
        snprintf(why, why_size, "type is not a call event the registry stores");
        goto bad;
    }
    if (at == NULL || !rg_rfc3339_valid(at)) {
        snprintf(why, why_size, "created_at is not an RFC 3339 date-time");
        goto bad;
    }
    const char *call_id = string_member(d, "call_id");
    if (!json_is_object(d) || call_id == NULL || !token_ok(call_id)) {
        snprintf(why, why_size, "data.call_id must be 1..%d of [A-Za-z0-9_-]", RG_ID_MAX);
        goto bad;
    }
    if (strcmp(type, "call.transcript") == 0) {
        json_t *turn = json_object_get(d, "turn");
        json_t *index = json_object_get(turn, "index");
        const char *role = string_member(turn, "role");
        if (!json_is_integer(index) || json_integer_value(index) < 0 ||
            json_integer_value(index) > 100000 || role == NULL ||
            (strcmp(role, "agent") != 0 && strcmp(role, "caller") != 0)) {
            snprintf(why, why_size, "data.turn needs index 0..100000 and role agent|caller");
            goto bad;
        }
    }
    if (strcmp(type, "call.interrupted") == 0) {
        json_t *index = json_object_get(d, "turn_index");
        if (!json_is_integer(index) || json_integer_value(index) < 0 ||
            json_integer_value(index) > 100000) {
            snprintf(why, why_size, "data.turn_index must be an integer 0..100000");
            goto bad;
        }
    }
    return ev;
bad:
    json_decref(ev);
    return NULL;
}

uint64_t
rg_js_stream_seq(const char *ack)
{
    if (ack == NULL || strncmp(ack, "$JS.ACK.", 8) != 0)
        return 0;
    /* tokens after "$JS.ACK.": 7 in the old form; 9 (or more) with domain and account hash:
     * <domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> */
    const char *tokens[16];
    size_t ntok = 0;
    const char *p = ack + 8;
    tokens[ntok++] = p;
    for (; *p && ntok < 16; p++)
        if (*p == '.')
            tokens[ntok++] = p + 1;
    size_t sseq_at;
    if (ntok == 7)
        sseq_at = 3;
    else if (ntok >= 9)
        sseq_at = 5;
    else
        return 0;
    char *end = NULL;
    unsigned long long v = strtoull(tokens[sseq_at], &end, 10);
    if (end == tokens[sseq_at] || *end != '.')
        return 0;
    return (uint64_t) v;
}
