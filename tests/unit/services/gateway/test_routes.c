/*
 * gw_routes: matching of method and path against the route table: parameters, 404, 405
 * with Allow, and the table's own invariants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/gateway/gw_routes.h"

static gw_match_t
match(const char *method, const char *path, gw_match_result_t *out)
{
    return gw_route_match(method, strlen(method), path, strlen(path), out);
}

static void
test_literal_and_param_routes(void **state)
{
    (void) state;
    gw_match_result_t m;
    assert_int_equal(match("GET", "/v1/agents", &m), GW_MATCH_OK);
    assert_string_equal(m.route->subject, "voxi.registry.agents.list");
    assert_true(m.route->list);
    assert_string_equal(m.route->scope, "agents:read");
    assert_string_equal(m.route->route_class, "read");
    assert_string_equal(m.id, "");

    assert_int_equal(match("PATCH", "/v1/agents/agt_0123456789abcdef0123", &m), GW_MATCH_OK);
    assert_string_equal(m.route->subject, "voxi.registry.agents.update");
    assert_string_equal(m.id, "agt_0123456789abcdef0123");
    assert_string_equal(m.route->route_class, "write");
    assert_true(gw_route_has_body(m.route));
    assert_ptr_equal(m.route, &gw_routes[m.index]);

    assert_int_equal(match("DELETE", "/v1/api-keys/key_1", &m), GW_MATCH_OK);
    assert_string_equal(m.route->subject, "voxi.auth.keys.revoke");
    assert_false(gw_route_has_body(m.route));

    assert_int_equal(match("POST", "/v1/orgs", &m), GW_MATCH_OK);
    assert_string_equal(m.route->scope, "platform:admin");

    assert_int_equal(match("GET", "/v1/openapi.json", &m), GW_MATCH_OK);
    assert_int_equal(m.route->local, GW_LOCAL_OPENAPI);
    assert_true(m.route->anonymous);
    assert_null(m.route->subject);
    assert_int_equal(match("GET", "/docs", &m), GW_MATCH_OK);
    assert_int_equal(m.route->local, GW_LOCAL_DOCS);
}

static void
test_not_found(void **state)
{
    (void) state;
    gw_match_result_t m;
    const char *paths[] = {
        "/",          "/v1",        "/v1/",           "/v1/agents/",     "/v1/agentsx",
        "/v1/agent",  "/v2/agents", "/v1/agents/a/b", "/v1/agents/a.b",  "/v1/agents/a%20b",
        "/V1/agents", "/docs/",     "/v1/orgs/x",     "/v1/agents/\xff", "",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (match("GET", paths[i], &m) != GW_MATCH_NOT_FOUND)
            fail_msg("%s matched", paths[i]);
        assert_null(m.route);
    }
    /* a parameter of 65 characters is not an id */
    char path[128];
    snprintf(path, sizeof(path), "/v1/agents/%065d", 1);
    assert_int_equal(match("GET", path, &m), GW_MATCH_NOT_FOUND);
    snprintf(path, sizeof(path), "/v1/agents/%064d", 1);
    assert_int_equal(match("GET", path, &m), GW_MATCH_OK);
    assert_int_equal(strlen(m.id), 64);
}

static void
test_method_not_allowed(void **state)
{
    (void) state;
    gw_match_result_t m;
    assert_int_equal(match("PUT", "/v1/agents", &m), GW_MATCH_BAD_METHOD);
    assert_null(m.route);
    assert_string_equal(m.allow, "POST, GET");
    assert_int_equal(match("POST", "/v1/agents/agt_1", &m), GW_MATCH_BAD_METHOD);
    assert_string_equal(m.allow, "GET, PATCH, DELETE");
    assert_int_equal(match("PATCH", "/v1/api-keys/key_1", &m), GW_MATCH_BAD_METHOD);
    assert_string_equal(m.allow, "GET, DELETE");
    assert_int_equal(match("GET", "/v1/orgs", &m), GW_MATCH_BAD_METHOD);
    assert_string_equal(m.allow, "POST");
    assert_int_equal(match("HEAD", "/docs", &m), GW_MATCH_BAD_METHOD);
    assert_string_equal(m.allow, "GET");
    /* methods compare exactly, lengths included */
    assert_int_equal(gw_route_match("GETX", 3, "/docs", 5, &m), GW_MATCH_OK);
    assert_int_equal(match("get", "/docs", &m), GW_MATCH_BAD_METHOD);
    /* the path is taken by length, not up to a NUL */
    assert_int_equal(gw_route_match("GET", 3, "/docsXYZ", 5, &m), GW_MATCH_OK);
}

static void
test_table_invariants(void **state)
{
    (void) state;
    for (size_t i = 0; i < gw_route_count; i++) {
        const gw_route_t *r = &gw_routes[i];
        bool get = strcmp(r->method, "GET") == 0;
        assert_string_equal(r->route_class, get ? "read" : "write");
        assert_true((r->subject == NULL) == (r->local != GW_LOCAL_NONE));
        assert_true(!r->anonymous || r->local != GW_LOCAL_NONE);
        assert_true(!r->list || get);
        for (size_t j = i + 1; j < gw_route_count; j++)
            assert_false(strcmp(r->method, gw_routes[j].method) == 0 &&
                         strcmp(r->pattern, gw_routes[j].pattern) == 0);
        if (r->subject)
            assert_int_equal(strncmp(r->subject, "voxi.", 5), 0);
        /* filters only on lists, optional bodies only on POST, streams only on GET */
        assert_true(r->filters == NULL || r->list);
        assert_true(!r->body_optional || strcmp(r->method, "POST") == 0);
        assert_true(r->reply == GW_REPLY_JSON || (get && r->subject != NULL));
        size_t nfilters = 0;
        for (; r->filters != NULL && r->filters[nfilters] != NULL; nfilters++)
            ;
        assert_true(nfilters <= GW_FILTERS_MAX);
    }
    char buf[16384];
    FILE *out = fmemopen(buf, sizeof(buf), "w");
    gw_routes_print(out);
    fclose(out);
    assert_non_null(strstr(buf, "GET /v1/agents/{id} voxi.registry.agents.get agents:read read\n"));
    assert_non_null(strstr(buf, "GET /docs local - read\n"));
}

static void
test_calls_and_webhooks_routes(void **state)
{
    (void) state;
    gw_match_result_t m;
    const struct {
        const char *method, *path, *subject, *scope, *id;
        bool list, body_optional;
    } cases[] = {
        {"POST", "/v1/calls", "voxi.registry.calls.create", "calls:write", "", false, false},
        {"GET", "/v1/calls", "voxi.registry.calls.list", "calls:read", "", true, false},
        {"GET", "/v1/calls/call_1", "voxi.registry.calls.get", "calls:read", "call_1", false,
         false},
        {"POST", "/v1/calls/call_1/hangup", "voxi.registry.calls.hangup", "calls:write", "call_1",
         false, true},
        {"GET", "/v1/calls/call_1/recording", "voxi.registry.calls.recording", "calls:read",
         "call_1", false, false},
        {"POST", "/v1/webhook-endpoints", "voxi.webhooks.endpoints.create", "webhooks:write", "",
         false, false},
        {"GET", "/v1/webhook-endpoints", "voxi.webhooks.endpoints.list", "webhooks:read", "", true,
         false},
        {"GET", "/v1/webhook-endpoints/we_1", "voxi.webhooks.endpoints.get", "webhooks:read",
         "we_1", false, false},
        {"PATCH", "/v1/webhook-endpoints/we_1", "voxi.webhooks.endpoints.update", "webhooks:write",
         "we_1", false, false},
        {"DELETE", "/v1/webhook-endpoints/we_1", "voxi.webhooks.endpoints.delete", "webhooks:write",
         "we_1", false, false},
        {"POST", "/v1/webhook-endpoints/we_1/rotate-secret", "voxi.webhooks.endpoints.rotate",
         "webhooks:write", "we_1", false, true},
        {"POST", "/v1/webhook-endpoints/we_1/test", "voxi.webhooks.endpoints.test",
         "webhooks:write", "we_1", false, true},
        {"GET", "/v1/webhook-endpoints/we_1/deliveries", "voxi.webhooks.deliveries.list",
         "webhooks:read", "we_1", true, false},
        {"POST", "/v1/webhook-deliveries/wd_1/retry", "voxi.webhooks.deliveries.retry",
         "webhooks:write", "wd_1", false, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (match(cases[i].method, cases[i].path, &m) != GW_MATCH_OK)
            fail_msg("%s %s did not match", cases[i].method, cases[i].path);
        assert_string_equal(m.route->subject, cases[i].subject);
        assert_string_equal(m.route->scope, cases[i].scope);
        assert_string_equal(m.id, cases[i].id);
        assert_int_equal(m.route->list, cases[i].list);
        assert_int_equal(m.route->body_optional, cases[i].body_optional);
    }
    assert_int_equal(match("GET", "/v1/calls/call_1/recording", &m), GW_MATCH_OK);
    assert_int_equal(m.route->reply, GW_REPLY_RECORDING);
    assert_int_equal(match("GET", "/v1/calls/call_1", &m), GW_MATCH_OK);
    assert_int_equal(m.route->reply, GW_REPLY_JSON);
    /* actions are POST only; their siblings do not exist */
    assert_int_equal(match("GET", "/v1/calls/call_1/hangup", &m), GW_MATCH_BAD_METHOD);
    assert_string_equal(m.allow, "POST");
    assert_int_equal(match("POST", "/v1/webhook-deliveries/wd_1", &m), GW_MATCH_NOT_FOUND);
    assert_int_equal(match("POST", "/v1/calls/call_1/hangup/x", &m), GW_MATCH_NOT_FOUND);
    assert_int_equal(match("POST", "/v1/calls//hangup", &m), GW_MATCH_NOT_FOUND);
}

static void
test_bodies_and_filters(void **state)
{
    (void) state;
    gw_match_result_t m;
    /* an action: an empty body is not checked, a body is */
    assert_int_equal(match("POST", "/v1/webhook-endpoints/we_1/test", &m), GW_MATCH_OK);
    assert_true(gw_route_has_body(m.route));
    assert_false(gw_route_body_expected(m.route, 0));
    assert_true(gw_route_body_expected(m.route, 2));
    /* a create always needs its body */
    assert_int_equal(match("POST", "/v1/webhook-endpoints", &m), GW_MATCH_OK);
    assert_true(gw_route_body_expected(m.route, 0));
    assert_int_equal(match("PATCH", "/v1/agents/agt_1", &m), GW_MATCH_OK);
    assert_true(gw_route_body_expected(m.route, 0));
    assert_int_equal(match("GET", "/v1/calls/c_1", &m), GW_MATCH_OK);
    assert_false(gw_route_body_expected(m.route, 10));

    const char *canon = NULL;
    assert_int_equal(match("GET", "/v1/calls", &m), GW_MATCH_OK);
    const char *names[] = {"agent_id", "status", "created_after", "created_before"};
    for (size_t i = 0; i < 4; i++) {
        assert_true(gw_route_filter(m.route, names[i], strlen(names[i]), &canon));
        assert_string_equal(canon, names[i]);
    }
    assert_false(gw_route_filter(m.route, "status", 5, &canon)); /* "statu" */
    assert_false(gw_route_filter(m.route, "statusx", 7, &canon));
    assert_false(gw_route_filter(m.route, "limit", 5, &canon));
    assert_int_equal(match("GET", "/v1/agents", &m), GW_MATCH_OK);
    assert_false(gw_route_filter(m.route, "status", 6, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_param_routes),  cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),        cmocka_unit_test(test_table_invariants),
        cmocka_unit_test(test_calls_and_webhooks_routes), cmocka_unit_test(test_bodies_and_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
