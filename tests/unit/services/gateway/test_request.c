/*
 * gw_request: request id, query string, Content-Type and JSON body checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/gateway/gw_request.h"

/* ---- request id ---- */

static void
test_request_id(void **state)
{
    (void) state;
    assert_true(gw_request_id_valid("abc", 3));
    assert_true(gw_request_id_valid("A-z_0.9", 7));
    char sixty_four[65];
    memset(sixty_four, 'a', 64);
    sixty_four[64] = '\0';
    assert_true(gw_request_id_valid(sixty_four, 64));
    char sixty_five[66];
    memset(sixty_five, 'a', 65);
    sixty_five[65] = '\0';
    assert_false(gw_request_id_valid(sixty_five, 65));
    assert_false(gw_request_id_valid("", 0));
    assert_false(gw_request_id_valid(NULL, 3));
    const char *bad[] = {"a b", "a\r\nX-Evil: 1", "a/b", "ü", "a\"", "a;b", "a\tb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(gw_request_id_valid(bad[i], strlen(bad[i])));
    /* the length given counts, not the NUL */
    assert_true(gw_request_id_valid("ok!!", 2));

    char out[GW_REQUEST_ID_SIZE];
    gw_request_id_pick("client-id.1", 11, out);
    assert_string_equal(out, "client-id.1");
    gw_request_id_pick("evil\r\n", 6, out);
    assert_int_equal(strncmp(out, "req_", 4), 0);
    assert_int_equal(strlen(out), 24);
    assert_true(gw_request_id_valid(out, strlen(out)));
    char other[GW_REQUEST_ID_SIZE];
    gw_request_id_pick(NULL, 0, other);
    assert_string_not_equal(out, other);
}

/* ---- query ---- */

static const gw_route_t list_route = {.method = "GET", .pattern = "/v1/x", .list = true};
static const gw_route_t plain_route = {.method = "GET", .pattern = "/v1/x/{id}"};
static const char *const filter_names[] = {"agent_id", "status", "created_after", NULL};
static const gw_route_t filtered_route = {
    .method = "GET", .pattern = "/v1/y", .list = true, .filters = filter_names};

static lc_status_t
parse_route(const char *q, const gw_route_t *route, gw_query_t *out, char *detail)
{
    return gw_query_parse(q, q ? strlen(q) : 0, route, out, detail, GW_DETAIL_MAX);
}

static lc_status_t
parse(const char *q, bool list, gw_query_t *out, char *detail)
{
    return parse_route(q, list ? &list_route : &plain_route, out, detail);
}

static void
test_query_ok(void **state)
{
    (void) state;
    gw_query_t q;
    char detail[GW_DETAIL_MAX];
    assert_int_equal(parse(NULL, true, &q, detail), LC_OK);
    assert_int_equal(q.limit, 20);
    assert_string_equal(q.starting_after, "");
    assert_int_equal(parse("", true, &q, detail), LC_OK);
    assert_int_equal(parse("limit=5&starting_after=agt_0123", true, &q, detail), LC_OK);
    assert_int_equal(q.limit, 5);
    assert_string_equal(q.starting_after, "agt_0123");
    assert_int_equal(parse("limit=100", true, &q, detail), LC_OK);
    assert_int_equal(q.limit, 100);
    assert_int_equal(parse("limit=1&", true, &q, detail), LC_OK);
    assert_int_equal(q.limit, 1);
    assert_int_equal(parse("&&limit=007", true, &q, detail), LC_OK);
    assert_int_equal(q.limit, 7);
    /* percent-encoded names and values */
    assert_int_equal(parse("%6cimit=%32", true, &q, detail), LC_OK);
    assert_int_equal(q.limit, 2);
    /* non-list routes: no parameters, limit stays 0 */
    assert_int_equal(parse(NULL, false, &q, detail), LC_OK);
    assert_int_equal(q.limit, 0);
}

static void
expect_bad(const char *query, bool list, const char *param, const char *in_detail)
{
    gw_query_t q;
    char detail[GW_DETAIL_MAX];
    if (parse(query, list, &q, detail) != LC_ERR_INVALID)
        fail_msg("query %s accepted", query);
    assert_string_equal(q.bad_param, param);
    if (strstr(detail, in_detail) == NULL)
        fail_msg("query %s: detail \"%s\" lacks \"%s\"", query, detail, in_detail);
}

static void
test_query_errors(void **state)
{
    (void) state;
    expect_bad("limit=0", true, "limit", "'limit' must be an integer from 1 to 100");
    expect_bad("limit=101", true, "limit", "'limit'");
    expect_bad("limit=-1", true, "limit", "'limit'");
    expect_bad("limit=1.5", true, "limit", "'limit'");
    expect_bad("limit=", true, "limit", "'limit'");
    expect_bad("limit", true, "limit", "'limit'");
    expect_bad("limit=99999999999999999999", true, "limit", "'limit'");
    expect_bad("limit=%zz", true, "limit", "'limit'");
    expect_bad("limit=5&limit=6", true, "limit", "more than once");
    expect_bad("starting_after=", true, "starting_after", "'starting_after' must be an id");
    expect_bad("starting_after=a%20b", true, "starting_after", "'starting_after'");
    expect_bad("starting_after=a/b", true, "starting_after", "'starting_after'");
    expect_bad("starting_after=a&starting_after=b", true, "starting_after", "more than once");
    expect_bad("foo=1", true, "foo", "Unknown query parameter 'foo'");
    expect_bad("limit=5&expand=all", true, "expand", "'expand'");
    expect_bad("LIMIT=5", true, "LIMIT", "'LIMIT'");
    expect_bad("limit%00=5", true, "limit?", "Unknown"); /* a NUL in a name is not "limit" */
    expect_bad("a%zz=1", true, "a%zz", "malformed");
    expect_bad("limit=5", false, "limit", "this route takes none");
    /* a hostile name is quoted cut and printable */
    char big[300];
    memset(big, 'x', 200);
    strcpy(big + 200, "%0d%0a=1");
    gw_query_t q;
    char detail[GW_DETAIL_MAX];
    assert_int_equal(parse(big, true, &q, detail), LC_ERR_INVALID);
    assert_null(strchr(detail, '\r'));
    assert_true(strlen(q.bad_param) <= 44);
}

/* ---- Content-Type ---- */

static bool
ctype(const char *v, bool merge_patch)
{
    char detail[GW_DETAIL_MAX];
    return gw_content_type_ok(v, v ? strlen(v) : 0, merge_patch, detail, sizeof(detail));
}

static void
test_content_type(void **state)
{
    (void) state;
    assert_true(ctype("application/json", false));
    assert_true(ctype("Application/JSON", false));
    assert_true(ctype("application/json; charset=utf-8", false));
    assert_true(ctype("application/json;charset=UTF-8", false));
    assert_true(ctype("application/json; charset=\"utf-8\"", false));
    assert_true(ctype("  application/json ; foo=bar", false));
    assert_true(ctype("application/merge-patch+json", true));
    assert_false(ctype("application/merge-patch+json", false));
    assert_false(ctype(NULL, false));
    assert_false(ctype("", false));
    assert_false(ctype("text/plain", false));
    assert_false(ctype("application/jsonx", false));
    assert_false(ctype("application/json-patch+json", true));
    assert_false(ctype("application/x-www-form-urlencoded", false));
    assert_false(ctype("application/json; charset=latin1", false));
    char detail[GW_DETAIL_MAX];
    assert_false(gw_content_type_ok("text/html", 9, false, detail, sizeof(detail)));
    assert_non_null(strstr(detail, "'text/html'"));
    /* length-bounded: what follows the given length is not read */
    assert_true(gw_content_type_ok("application/jsonXYZ", 16, false, detail, sizeof(detail)));
}

/* ---- body ---- */

static void
test_body(void **state)
{
    (void) state;
    char detail[GW_DETAIL_MAX];
    assert_int_equal(gw_body_check("{}", 2, detail, sizeof(detail)), LC_OK);
    const char *ok = "{\"name\":\"x\",\"n\":[1,2,{\"a\":null}]}";
    assert_int_equal(gw_body_check(ok, strlen(ok), detail, sizeof(detail)), LC_OK);

    assert_int_equal(gw_body_check("", 0, detail, sizeof(detail)), LC_ERR_INVALID);
    assert_non_null(strstr(detail, "empty"));
    assert_int_equal(gw_body_check(NULL, 0, detail, sizeof(detail)), LC_ERR_INVALID);

    const char *broken = "{\n  \"name\": \"x\",\n  \"n\": tru\n}";
    assert_int_equal(gw_body_check(broken, strlen(broken), detail, sizeof(detail)), LC_ERR_INVALID);
    assert_non_null(strstr(detail, "Malformed JSON at line 3, column"));
    assert_non_null(strstr(detail, "(byte "));

    assert_int_equal(gw_body_check("[1]", 3, detail, sizeof(detail)), LC_ERR_INVALID);
    assert_non_null(strstr(detail, "must be a JSON object, not an array"));
    assert_int_equal(gw_body_check("\"s\"", 3, detail, sizeof(detail)), LC_ERR_INVALID);
    assert_non_null(strstr(detail, "not a string"));
    assert_int_equal(gw_body_check("12", 2, detail, sizeof(detail)), LC_ERR_INVALID);
    assert_int_equal(gw_body_check("null", 4, detail, sizeof(detail)), LC_ERR_INVALID);
    assert_int_equal(gw_body_check("{} {}", 5, detail, sizeof(detail)), LC_ERR_INVALID);
    assert_int_equal(gw_body_check("{\"a\":1,\"a\":2}", 13, detail, sizeof(detail)),
                     LC_ERR_INVALID);
    assert_non_null(strstr(detail, "duplicate"));
    /* invalid UTF-8 and a NUL byte inside the given length */
    assert_int_equal(gw_body_check("{\"a\":\"\xff\"}", 9, detail, sizeof(detail)), LC_ERR_INVALID);
    assert_int_equal(gw_body_check("{\"a\":\"\0\"}", 9, detail, sizeof(detail)), LC_ERR_INVALID);
    assert_int_equal(gw_body_check("{\"a\":\"\\u0000\"}", 14, detail, sizeof(detail)),
                     LC_ERR_INVALID);
    /* only the given length is read */
    assert_int_equal(gw_body_check("{}garbage", 2, detail, sizeof(detail)), LC_OK);
    /* deep nesting is refused, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 3);
    deep[0] = '{';
    memcpy(deep + 1, "\"a\":", 4);
    size_t n = 5;
    for (size_t i = 0; i < depth - 10; i++)
        deep[n++] = '[';
    assert_int_equal(gw_body_check(deep, n, detail, sizeof(detail)), LC_ERR_INVALID);
    free(deep);
}

static void
test_printable(void **state)
{
    (void) state;
    char out[16];
    gw_printable("ab\r\nc\xff", 6, 10, out, sizeof(out));
    assert_string_equal(out, "ab??c?");
    gw_printable("abcdefghijkl", 12, 5, out, sizeof(out));
    assert_string_equal(out, "abcde...");
    gw_printable("abcdefghijklmnopqrstu", 21, 100, out, sizeof(out));
    assert_true(strlen(out) < sizeof(out));
    assert_non_null(strstr(out, "..."));
}

/* ---- list filters ---- */

static void
test_query_filters(void **state)
{
    (void) state;
    gw_query_t q;
    char detail[GW_DETAIL_MAX];
    assert_int_equal(
        parse_route("status=ended&agent_id=agt_1&created_after=2024-01-02T03%3A04%3A05%2B01%3A00"
                    "&limit=3",
                    &filtered_route, &q, detail),
        LC_OK);
    assert_int_equal(q.limit, 3);
    assert_int_equal(q.nfilters, 3);
    assert_string_equal(q.filters[0].name, "status");
    assert_ptr_equal(q.filters[0].name, filter_names[1]); /* the table's copy */
    assert_string_equal(q.filters[0].value, "ended");
    assert_string_equal(q.filters[1].value, "agt_1");
    assert_string_equal(q.filters[2].name, "created_after");
    assert_string_equal(q.filters[2].value, "2024-01-02T03:04:05+01:00");
    /* as the service gets them */
    char *json = gw_query_filters_json(&q);
    assert_string_equal(json, "{\"status\":\"ended\",\"agent_id\":\"agt_1\","
                              "\"created_after\":\"2024-01-02T03:04:05+01:00\"}");
    free(json);
    assert_int_equal(parse_route("agent_id=%22a%5c%22", &filtered_route, &q, detail), LC_OK);
    json = gw_query_filters_json(&q);
    assert_string_equal(json, "{\"agent_id\":\"\\\"a\\\\\\\"\"}"); /* escaped */
    free(json);
    assert_int_equal(parse_route(NULL, &filtered_route, &q, detail), LC_OK);
    assert_int_equal(q.nfilters, 0);
    assert_null(gw_query_filters_json(&q));

    /* errors name the parameter */
    const struct {
        const char *query, *param, *detail;
    } bad[] = {
        {"status=a&status=b", "status", "more than once"},
        {"status=", "status", "1 to 64 printable"},
        {"status", "status", "1 to 64 printable"},
        {"agent_id=%00x", "agent_id", "printable"},
        {"agent_id=%0a", "agent_id", "printable"},
        {"agent_id=%e2%82%ac", "agent_id", "printable"},
        {"created_before=1", "created_before", "Unknown query parameter"},
        {"Status=ended", "Status", "Unknown"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_route(bad[i].query, &filtered_route, &q, detail) != LC_ERR_INVALID)
            fail_msg("query %s accepted", bad[i].query);
        assert_string_equal(q.bad_param, bad[i].param);
        if (strstr(detail, bad[i].detail) == NULL)
            fail_msg("query %s: detail \"%s\" lacks \"%s\"", bad[i].query, detail, bad[i].detail);
    }
    char big[100];
    memset(big, 0, sizeof(big));
    strcpy(big, "status=");
    memset(big + 7, 'x', 65);
    assert_int_equal(parse_route(big, &filtered_route, &q, detail), LC_ERR_INVALID);
    big[7 + 64] = '\0';
    assert_int_equal(parse_route(big, &filtered_route, &q, detail), LC_OK);
    assert_int_equal(strlen(q.filters[0].value), 64);
    /* filters of one route are not parameters of another list */
    if (parse("status=ended", true, &q, detail) != LC_ERR_INVALID)
        fail_msg("a filter accepted by a route without filters");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_id),   cmocka_unit_test(test_query_ok),
        cmocka_unit_test(test_query_errors), cmocka_unit_test(test_query_filters),
        cmocka_unit_test(test_content_type), cmocka_unit_test(test_body),
        cmocka_unit_test(test_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
