#include "rg_schema.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>

#include "rg_json.h"

void
rg_schema_type_error(rg_vctx_t *ctx, const char *path, const char *what)
{
    rg_errors_add(ctx->errs, path, "must be %s", what);
}

/* "must be one of "a", "b", "c"" */
static void
enum_error(rg_vctx_t *ctx, const char *path, const char *const *choices)
{
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; choices[i] != NULL && used < sizeof(list); i++)
        used += (size_t) snprintf(list + used, sizeof(list) - used, "%s\"%s\"", i ? ", " : "",
                                  choices[i]);
    rg_errors_add(ctx->errs, path, "must be one of %s", list);
}

static void
length_error(rg_vctx_t *ctx, const char *path, int64_t min, int64_t max)
{
    if (min <= 0)
        rg_errors_add(ctx->errs, path, "must be at most %lld characters", (long long) max);
    else if (min == max)
        rg_errors_add(ctx->errs, path, "must be %lld characters", (long long) max);
    else
        rg_errors_add(ctx->errs, path, "must be %lld to %lld characters", (long long) min,
                      (long long) max);
}

/* Checks one string against bounds, choices, pattern and template; true when valid. */
static bool
check_string(rg_vctx_t *ctx, const char *path, const json_t *v, const rg_field_t *f, int64_t min,
             int64_t max)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (f->choices != NULL) {
        for (size_t i = 0; f->choices[i] != NULL; i++)
            if (strlen(f->choices[i]) == len && memcmp(f->choices[i], s, len) == 0)
                return true;
        enum_error(ctx, path, f->choices);
        return false;
    }
    size_t chars = rg_utf8_chars(s, len);
    if ((int64_t) chars < min || (int64_t) chars > max) {
        length_error(ctx, path, min, max);
        return false;
    }
    if (f->check != NULL && chars > 0 && !f->check(s, len)) {
        rg_errors_add(ctx->errs, path, "%s", f->check_msg ? f->check_msg : "is not valid");
        return false;
    }
    if (f->flags & RG_TEMPLATE) {
        long at = rg_template_error(s, len);
        if (at >= 0) {
            rg_errors_add(ctx->errs, path,
                          "malformed variable reference at character %zu: write {{name}} with a "
                          "name matching ^[a-z_][a-z0-9_]{0,63}$",
                          rg_utf8_chars(s, (size_t) at) + 1);
            return false;
        }
    }
    return true;
}

static json_t *
default_value(rg_vctx_t *ctx, const char *path, const rg_field_t *f)
{
    if (f->flags & RG_NULLABLE)
        return json_null();
    if (!(f->flags & RG_DEFAULT))
        return NULL;
    switch (f->type) {
    case RG_F_STRING:
        return json_string(f->def_str ? f->def_str : "");
    case RG_F_INT:
        return json_integer(f->def_int);
    case RG_F_REAL:
        return json_real(f->def_real);
    case RG_F_BOOL:
        return json_boolean(f->def_bool);
    case RG_F_STRINGS:
        return json_array();
    case RG_F_OBJECT: {
        json_t *empty = json_object();
        json_t *out = rg_schema_object(ctx, path, empty, f->sub);
        json_decref(empty);
        return out;
    }
    case RG_F_CUSTOM:
        return NULL;
    }
    return NULL;
}

json_t *
rg_schema_field(rg_vctx_t *ctx, const char *path, const json_t *value, const rg_field_t *f)
{
    if (f->type == RG_F_CUSTOM)
        return f->custom(ctx, path, value);
    if (value == NULL || json_is_null(value)) {
        if (value != NULL && (f->flags & RG_NULLABLE))
            return json_null();
        if (f->flags & RG_REQUIRED) {
            rg_errors_add(ctx->errs, path, "is required");
            return NULL;
        }
        return default_value(ctx, path, f);
    }
    switch (f->type) {
    case RG_F_STRING:
        if (!json_is_string(value)) {
            rg_schema_type_error(ctx, path, "a string");
            return NULL;
        }
        if (!check_string(ctx, path, value, f, f->min, f->max))
            return NULL;
        return json_deep_copy(value);
    case RG_F_INT:
        if (!json_is_integer(value)) {
            rg_schema_type_error(ctx, path, "an integer");
            return NULL;
        }
        if (json_integer_value(value) < f->min || json_integer_value(value) > f->max) {
            rg_errors_add(ctx->errs, path, "must be between %lld and %lld", (long long) f->min,
                          (long long) f->max);
            return NULL;
        }
        return json_integer(json_integer_value(value));
    case RG_F_REAL: {
        if (!json_is_number(value)) {
            rg_schema_type_error(ctx, path, "a number");
            return NULL;
        }
        double d = json_number_value(value);
        if (!(d >= f->rmin && d <= f->rmax)) {
            rg_errors_add(ctx->errs, path, "must be between %g and %g", f->rmin, f->rmax);
            return NULL;
        }
        return json_real(d);
    }
    case RG_F_BOOL:
        if (!json_is_boolean(value)) {
            rg_schema_type_error(ctx, path, "a boolean");
            return NULL;
        }
        return json_boolean(json_is_true(value));
    case RG_F_OBJECT:
        if (!json_is_object(value)) {
            rg_schema_type_error(ctx, path,
                                 (f->flags & RG_NULLABLE) ? "an object or null" : "an object");
            return NULL;
        }
        return rg_schema_object(ctx, path, value, f->sub);
    case RG_F_STRINGS: {
        if (!json_is_array(value)) {
            rg_schema_type_error(ctx, path, "an array of strings");
            return NULL;
        }
        size_t n = json_array_size(value);
        if ((int64_t) n > f->max) {
            rg_errors_add(ctx->errs, path, "must have at most %lld items", (long long) f->max);
            return NULL;
        }
        json_t *out = json_array();
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
            char ipath[RG_PATH_MAX];
            rg_path_index(ipath, path, i);
            json_t *item = json_array_get(value, i);
            if (!json_is_string(item)) {
                rg_schema_type_error(ctx, ipath, "a string");
                ok = false;
            } else if (check_string(ctx, ipath, item, f, f->item_min, f->item_max)) {
                json_array_append(out, item);
            } else {
                ok = false;
            }
        }
        if (!ok) {
            json_decref(out);
            return NULL;
        }
        return out;
    }
    case RG_F_CUSTOM:
        break;
    }
    return NULL;
}

json_t *
rg_schema_object(rg_vctx_t *ctx, const char *path, const json_t *in, const rg_object_spec_t *spec)
{
    json_t *out = json_object();
    const char *key;
    json_t *value;
    char fpath[RG_PATH_MAX];
    json_object_foreach((json_t *) in, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < spec->nfields && !known; i++)
            known = strcmp(spec->fields[i].name, key) == 0;
        if (known)
            continue;
        rg_path_key(fpath, path, key);
        if (rg_str_in_list(spec->readonly, key))
            rg_errors_add(ctx->errs, fpath, "is read-only");
        else
            rg_errors_add(ctx->errs, fpath, "unknown field");
    }
    for (size_t i = 0; i < spec->nfields; i++) {
        const rg_field_t *f = &spec->fields[i];
        rg_path_key(fpath, path, f->name);
        json_t *v = rg_schema_field(ctx, fpath, json_object_get(in, f->name), f);
        if (v != NULL)
            json_object_set_new(out, f->name, v);
    }
    return out;
}

/* ---- patterns ---- */

bool
rg_is_language_tag(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && isalpha((unsigned char) s[i]))
        i++;
    if (i < 2 || i > 3)
        return false;
    while (i < len) {
        if (s[i] != '-')
            return false;
        size_t start = ++i;
        while (i < len && isalnum((unsigned char) s[i]))
            i++;
        if (i - start < 2 || i - start > 8)
            return false;
    }
    return true;
}

bool
rg_is_node_id(const char *s, size_t len)
{
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char) s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

static bool
var_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

bool
rg_is_variable(const char *s, size_t len)
{
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!var_char(s[i], i == 0))
            return false;
    return true;
}

bool
rg_is_e164(const char *s, size_t len)
{
    if (len < 3 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    for (size_t i = 2; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* No spaces, controls or DEL anywhere in a URI. */
static bool
uri_chars_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

bool
rg_is_http_url(const char *s, size_t len)
{
    if (len > RG_URL_MAX || !uri_chars_ok(s, len))
        return false;
    size_t skip;
    if (len >= 7 && strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    size_t host = 0;
    while (skip + host < len && strchr("/?#", s[skip + host]) == NULL)
        host++;
    /* a host is there, and it is not only userinfo or a port */
    return host > 0 && s[skip] != ':' && s[skip] != '@' && s[skip + host - 1] != '@';
}

bool
rg_is_sip_uri(const char *s, size_t len)
{
    if (len > RG_URL_MAX || !uri_chars_ok(s, len))
        return false;
    size_t skip;
    if (len >= 4 && strncasecmp(s, "sip:", 4) == 0)
        skip = 4;
    else if (len >= 5 && strncasecmp(s, "sips:", 5) == 0)
        skip = 5;
    else
        return false;
    /* sip:[user@]host[:port][;params]: the host part must not be empty */
    const char *rest = s + skip;
    size_t rest_len = len - skip;
    const char *at = memchr(rest, '@', rest_len);
    const char *host = at ? at + 1 : rest;
    return host < s + len && strchr(":;?@", *host) == NULL;
}

bool
rg_is_tel_uri(const char *s, size_t len)
{
    if (len > RG_URL_MAX || !uri_chars_ok(s, len) || len < 5 || strncasecmp(s, "tel:", 4) != 0)
        return false;
    /* RFC 3966: a global number (+digits with visual separators) or a local one */
    size_t digits = 0;
    for (size_t i = 4; i < len && s[i] != ';'; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            digits++;
        else if (!(c == '+' && i == 4) && strchr("-.()*#ABCDabcd", c) == NULL)
            return false;
    }
    return digits > 0;
}

bool
rg_is_sip_user(const char *s, size_t len)
{
    /* RFC 3261 user = 1*( unreserved / escaped / user-unreserved ), a plain subset of it */
    if (len < 1 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (!isalnum(c) && strchr("-_.!~*'()&=+$,;?/", c) == NULL)
            return false;
    }
    return true;
}

long
rg_template_error(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '{' || s[i + 1] != '{')
            continue;
        size_t start = i + 2, j = start;
        while (j < len && var_char(s[j], j == start))
            j++;
        if (j == start || j - start > 64 || j + 1 >= len || s[j] != '}' || s[j + 1] != '}')
            return (long) i;
        i = j + 1;
    }
    return -1;
}

json_t *
rg_schema_small_object(rg_vctx_t *ctx, const char *path, const json_t *value, size_t max_bytes)
{
    if (value == NULL || json_is_null(value))
        return json_object();
    if (!json_is_object(value)) {
        rg_schema_type_error(ctx, path, "an object");
        return NULL;
    }
    char *text = rg_json_dumps(value);
    size_t len = strlen(text);
    free(text);
    if (len > max_bytes) {
        rg_errors_add(ctx->errs, path, "must be at most %zu bytes when serialised as JSON",
                      max_bytes);
        return NULL;
    }
    return json_deep_copy(value);
}
