#include "gw_routes.h"

#include <string.h>

/* Route class follows the method: GET reads, everything else writes. */
#define READ(pat, subj, scp)                                                                       \
    {                                                                                              \
        .method = "GET", .pattern = pat, .subject = subj, .scope = scp, .route_class = "read"      \
    }
#define WRITE(m, pat, subj, scp)                                                                   \
    {                                                                                              \
        .method = m, .pattern = pat, .subject = subj, .scope = scp, .route_class = "write"         \
    }
#define LIST(pat, subj, scp)                                                                       \
    {                                                                                              \
        .method = "GET", .pattern = pat, .subject = subj, .scope = scp, .route_class = "read",     \
        .list = true                                                                               \
    }
#define LIST_FILTERED(pat, subj, scp, names)                                                       \
    {                                                                                              \
        .method = "GET", .pattern = pat, .subject = subj, .scope = scp, .route_class = "read",     \
        .list = true, .filters = names                                                             \
    }
/* A POST that triggers something (rotate, test, retry, hang up): its body is optional. */
#define ACTION(pat, subj, scp)                                                                     \
    {                                                                                              \
        .method = "POST", .pattern = pat, .subject = subj, .scope = scp, .route_class = "write",   \
        .body_optional = true                                                                      \
    }
#define LOCAL(pat, which)                                                                          \
    {                                                                                              \
        .method = "GET", .pattern = pat, .subject = NULL, .scope = "", .route_class = "read",      \
        .anonymous = true, .local = which                                                          \
    }

/* GET /v1/calls: the service validates the values (RFC 3339 times, known statuses). */
static const char *const call_filters[] = {"agent_id", "status", "created_after", "created_before",
                                           NULL};

const gw_route_t gw_routes[] = {
    LOCAL("/v1/openapi.json", GW_LOCAL_OPENAPI),
    LOCAL("/docs", GW_LOCAL_DOCS),

    WRITE("POST", "/v1/orgs", "voxi.auth.orgs.create", "platform:admin"),

    WRITE("POST", "/v1/api-keys", "voxi.auth.keys.create", "keys:admin"),
    LIST("/v1/api-keys", "voxi.auth.keys.list", "keys:admin"),
    READ("/v1/api-keys/{id}", "voxi.auth.keys.get", "keys:admin"),
    WRITE("DELETE", "/v1/api-keys/{id}", "voxi.auth.keys.revoke", "keys:admin"),

    WRITE("POST", "/v1/agents", "voxi.registry.agents.create", "agents:write"),
    LIST("/v1/agents", "voxi.registry.agents.list", "agents:read"),
    READ("/v1/agents/{id}", "voxi.registry.agents.get", "agents:read"),
    WRITE("PATCH", "/v1/agents/{id}", "voxi.registry.agents.update", "agents:write"),
    WRITE("DELETE", "/v1/agents/{id}", "voxi.registry.agents.delete", "agents:write"),

    WRITE("POST", "/v1/phone-numbers", "voxi.registry.numbers.create", "numbers:write"),
    LIST("/v1/phone-numbers", "voxi.registry.numbers.list", "numbers:read"),
    READ("/v1/phone-numbers/{id}", "voxi.registry.numbers.get", "numbers:read"),
    WRITE("PATCH", "/v1/phone-numbers/{id}", "voxi.registry.numbers.update", "numbers:write"),
    WRITE("DELETE", "/v1/phone-numbers/{id}", "voxi.registry.numbers.delete", "numbers:write"),

    WRITE("POST", "/v1/calls", "voxi.registry.calls.create", "calls:write"),
    LIST_FILTERED("/v1/calls", "voxi.registry.calls.list", "calls:read", call_filters),
    READ("/v1/calls/{id}", "voxi.registry.calls.get", "calls:read"),
    ACTION("/v1/calls/{id}/hangup", "voxi.registry.calls.hangup", "calls:write"),
    {.method = "GET",
     .pattern = "/v1/calls/{id}/recording",
     .subject = "voxi.registry.calls.recording",
     .scope = "calls:read",
     .route_class = "read",
     .reply = GW_REPLY_RECORDING},

    WRITE("POST", "/v1/webhook-endpoints", "voxi.webhooks.endpoints.create", "webhooks:write"),
    LIST("/v1/webhook-endpoints", "voxi.webhooks.endpoints.list", "webhooks:read"),
    READ("/v1/webhook-endpoints/{id}", "voxi.webhooks.endpoints.get", "webhooks:read"),
    WRITE("PATCH", "/v1/webhook-endpoints/{id}", "voxi.webhooks.endpoints.update",
          "webhooks:write"),
    WRITE("DELETE", "/v1/webhook-endpoints/{id}", "voxi.webhooks.endpoints.delete",
          "webhooks:write"),
    ACTION("/v1/webhook-endpoints/{id}/rotate-secret", "voxi.webhooks.endpoints.rotate",
           "webhooks:write"),
    ACTION("/v1/webhook-endpoints/{id}/test", "voxi.webhooks.endpoints.test", "webhooks:write"),
    LIST("/v1/webhook-endpoints/{id}/deliveries", "voxi.webhooks.deliveries.list", "webhooks:read"),
    ACTION("/v1/webhook-deliveries/{id}/retry", "voxi.webhooks.deliveries.retry", "webhooks:write"),
};

const size_t gw_route_count = sizeof(gw_routes) / sizeof(gw_routes[0]);

static bool
param_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/*
 * Matches path against pattern segment by segment; fills the parameters of `out`. Only a
 * whole pattern matches: "/v1/agents/" and "/v1/agents/x/y" do not match "/v1/agents/{id}".
 */
static bool
pattern_match(const char *pattern, const char *path, size_t path_len, gw_match_result_t *out)
{
    const char *p = pattern;
    size_t i = 0;
    while (*p != '\0') {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close == NULL)
                return false;
            bool sub = strncmp(p, "{sub_id}", 8) == 0;
            size_t start = i;
            while (i < path_len && path[i] != '/') {
                if (!param_char(path[i]))
                    return false;
                i++;
            }
            size_t n = i - start;
            if (n == 0 || n > GW_PARAM_MAX)
                return false;
            char *dst = sub ? out->sub_id : out->id;
            memcpy(dst, path + start, n);
            dst[n] = '\0';
            p = close + 1;
            continue;
        }
        if (i >= path_len || path[i] != *p)
            return false;
        i++;
        p++;
    }
    return i == path_len;
}

gw_match_t
gw_route_match(const char *method, size_t method_len, const char *path, size_t path_len,
               gw_match_result_t *out)
{
    memset(out, 0, sizeof(*out));
    bool path_found = false;
    size_t allow_len = 0;
    for (size_t r = 0; r < gw_route_count; r++) {
        const gw_route_t *route = &gw_routes[r];
        gw_match_result_t m;
        memset(&m, 0, sizeof(m));
        if (!pattern_match(route->pattern, path, path_len, &m))
            continue;
        size_t mlen = strlen(route->method);
        if (mlen == method_len && memcmp(route->method, method, mlen) == 0) {
            *out = m;
            out->route = route;
            out->index = r;
            return GW_MATCH_OK;
        }
        path_found = true;
        /* methods of one path are few and short: the buffer cannot overflow, but check */
        if (allow_len + mlen + 3 <= sizeof(out->allow)) {
            if (allow_len > 0) {
                memcpy(out->allow + allow_len, ", ", 2);
                allow_len += 2;
            }
            memcpy(out->allow + allow_len, route->method, mlen);
            allow_len += mlen;
            out->allow[allow_len] = '\0';
        }
    }
    return path_found ? GW_MATCH_BAD_METHOD : GW_MATCH_NOT_FOUND;
}

bool
gw_route_has_body(const gw_route_t *route)
{
    return strcmp(route->method, "POST") == 0 || strcmp(route->method, "PATCH") == 0;
}

bool
gw_route_body_expected(const gw_route_t *route, size_t body_len)
{
    if (!gw_route_has_body(route))
        return false;
    return !(route->body_optional && body_len == 0);
}

bool
gw_route_filter(const gw_route_t *route, const char *name, size_t name_len, const char **canon)
{
    for (size_t i = 0; route->filters != NULL && route->filters[i] != NULL; i++) {
        const char *f = route->filters[i];
        if (strlen(f) == name_len && memcmp(f, name, name_len) == 0) {
            if (canon != NULL)
                *canon = f;
            return true;
        }
    }
    return false;
}

void
gw_routes_print(FILE *out)
{
    for (size_t r = 0; r < gw_route_count; r++) {
        const gw_route_t *route = &gw_routes[r];
        fprintf(out, "%s %s %s %s %s\n", route->method, route->pattern,
                route->subject ? route->subject : "local", route->scope[0] ? route->scope : "-",
                route->route_class);
    }
}
