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
    }
    char buf[8192];
    FILE *out = fmemopen(buf, sizeof(buf), "w");
    gw_routes_print(out);
    fclose(out);
    assert_non_null(strstr(buf, "GET /v1/agents/{id} voxi.registry.agents.get agents:read read\n"));
    assert_non_null(strstr(buf, "GET /docs local - read\n"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_param_routes),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_table_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
