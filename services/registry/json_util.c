#include "rg_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

json_t *
rg_json_parse_object(const char *text, size_t len, char *err, size_t err_size)
{
    json_error_t jerr;
    if (len == 0) {
        snprintf(err, err_size, "request body must be a JSON object");
        return NULL;
    }
    if (len > RG_JSON_MAX_BYTES) {
        snprintf(err, err_size, "request body is larger than %u bytes", RG_JSON_MAX_BYTES);
        return NULL;
    }
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL) {
        snprintf(err, err_size, "request body is not valid JSON: %s at line %d column %d",
                 jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        snprintf(err, err_size, "request body must be a JSON object");
        return NULL;
    }
    return v;
}

json_t *
rg_json_merge_patch(const json_t *target, const json_t *patch)
{
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *out = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *key;
    json_t *value;
    json_object_foreach((json_t *) patch, key, value)
    {
        if (json_is_null(value)) {
            json_object_del(out, key);
            continue;
        }
        json_object_set_new(out, key, rg_json_merge_patch(json_object_get(out, key), value));
    }
    return out;
}

/* json_dumps fails only when it cannot allocate: abort like lc_malloc (STYLE: OOM aborts). */
static char *
dumps_or_abort(const json_t *v, size_t flags)
{
    char *text = json_dumps(v, flags | JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        fprintf(stderr, "fatal: out of memory serialising JSON\n");
        abort();
    }
    return text;
}

char *
rg_json_dumps(const json_t *v)
{
    char *text = dumps_or_abort(v, JSON_REAL_PRECISION(15));
    json_t *back = json_loads(text, JSON_DECODE_ANY, NULL);
    bool same = back != NULL && json_equal(back, v);
    json_decref(back);
    if (same)
        return text;
    free(text);
    return dumps_or_abort(v, JSON_REAL_PRECISION(17));
}

size_t
rg_utf8_chars(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char) s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

bool
rg_str_in_list(const char *const *list, const char *key)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strcmp(list[i], key) == 0)
            return true;
    return false;
}
