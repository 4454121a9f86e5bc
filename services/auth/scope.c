#include "au_scope.h"

#include <string.h>

/* Table order is bit order and the order scopes are listed in (API replies, principals). */
static const char *const scope_names[AU_SCOPE_COUNT] = {
    "agents:read", "agents:write",  "numbers:read",   "numbers:write", "calls:read",
    "calls:write", "webhooks:read", "webhooks:write", "keys:admin",    "platform:admin",
};

const char *
au_scope_name(size_t index)
{
    return index < AU_SCOPE_COUNT ? scope_names[index] : NULL;
}

au_scopes_t
au_scope_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < AU_SCOPE_COUNT; i++)
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], name, len) == 0)
            return (au_scopes_t) 1u << i;
    return 0;
}

au_scopes_t
au_scopes_parse_list(const char *text, size_t *unknown_out)
{
    au_scopes_t set = 0;
    size_t unknown = 0;
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        if (end > p) {
            au_scopes_t bit = au_scope_parse(p, (size_t) (end - p));
            if (bit == 0)
                unknown++;
            set |= bit;
        }
        p = end;
    }
    if (unknown_out)
        *unknown_out = unknown;
    return set;
}

size_t
au_scopes_format(au_scopes_t scopes, char sep, char *out, size_t out_size)
{
    size_t need = 0;
    bool fits = true; /* once one name is cut, no later one is written */
    if (out_size > 0)
        out[0] = '\0';
    for (size_t i = 0; i < AU_SCOPE_COUNT; i++) {
        if (!(scopes & (1u << i)))
            continue;
        size_t name_len = strlen(scope_names[i]);
        size_t sep_len = need > 0 ? 1 : 0;
        if (fits && need + sep_len + name_len < out_size) {
            if (sep_len)
                out[need] = sep;
            memcpy(out + need + sep_len, scope_names[i], name_len);
            out[need + sep_len + name_len] = '\0';
        } else {
            fits = false;
        }
        need += sep_len + name_len;
    }
    return need;
}

int
au_scopes_count(au_scopes_t scopes)
{
    return __builtin_popcount(scopes & ((1u << AU_SCOPE_COUNT) - 1));
}
