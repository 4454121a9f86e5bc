#include "lc_status.h"

#include <string.h>

static const struct {
    const char *name;
    int http;
} status_table[LC_STATUS_COUNT_] = {
    [LC_OK] = {"ok", 200},
    [LC_ERR_INVALID] = {"invalid", 400},
    [LC_ERR_NOT_FOUND] = {"not_found", 404},
    [LC_ERR_CONFLICT] = {"conflict", 409},
    [LC_ERR_UNAUTHORIZED] = {"unauthorized", 401},
    [LC_ERR_FORBIDDEN] = {"forbidden", 403},
    [LC_ERR_RATE_LIMITED] = {"rate_limited", 429},
    [LC_ERR_TOO_LARGE] = {"too_large", 413},
    [LC_ERR_TIMEOUT] = {"timeout", 504},
    [LC_ERR_NO_RESPONDERS] = {"no_responders", 503},
    [LC_ERR_UNAVAILABLE] = {"unavailable", 503},
    [LC_ERR_FULL] = {"full", 503},
    [LC_ERR_CANCELLED] = {"cancelled", 499},
    [LC_ERR_IO] = {"io", 502},
    [LC_ERR_PROTOCOL] = {"protocol", 502},
    [LC_ERR_CONFIG] = {"config", 500},
    [LC_ERR_DB] = {"db", 500},
    [LC_ERR_INTERNAL] = {"internal", 500},
};

const char *
lc_status_name(lc_status_t s)
{
    if ((unsigned) s >= LC_STATUS_COUNT_)
        return "internal";
    return status_table[s].name;
}

int
lc_status_http(lc_status_t s)
{
    if ((unsigned) s >= LC_STATUS_COUNT_)
        return 500;
    return status_table[s].http;
}

lc_status_t
lc_status_from_name(const char *name)
{
    if (name == NULL)
        return LC_ERR_INTERNAL;
    for (int i = 0; i < LC_STATUS_COUNT_; i++)
        if (strcmp(status_table[i].name, name) == 0)
            return (lc_status_t) i;
    return LC_ERR_INTERNAL;
}
