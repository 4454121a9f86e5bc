/*
 * gw_problem: RFC 9457 documents: shape, field errors, hostile text, status mapping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/gateway/gw_problem.h"

static json_t *
render(int status, const char *name, const char *detail, const gw_field_error_t *errors, size_t n)
{
    size_t len = 0;
    char *text = gw_problem_render(status, name, detail, "req_1", errors, n, &len);
    assert_int_equal(len, strlen(text));
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    assert_non_null(doc);
    free(text);
    return doc;
}

static void
test_shape(void **state)
{
    (void) state;
    json_t *doc = render(404, "not_found", "No such agent.", NULL, 0);
    assert_string_equal(json_string_value(json_object_get(doc, "type")),
                        "https://voxihub.dev/problems/not_found");
    assert_string_equal(json_string_value(json_object_get(doc, "title")), "Not found");
    assert_int_equal(json_integer_value(json_object_get(doc, "status")), 404);
    assert_string_equal(json_string_value(json_object_get(doc, "detail")), "No such agent.");
    assert_string_equal(json_string_value(json_object_get(doc, "request_id")), "req_1");
    assert_null(json_object_get(doc, "errors")); /* only for validation */
    json_decref(doc);

    doc = render(500, "whatever", NULL, NULL, 0);
    assert_null(json_object_get(doc, "detail"));
    assert_string_equal(json_string_value(json_object_get(doc, "title")), "Internal error");
    json_decref(doc);

    /* the fixed order: type first */
    size_t len;
    char *text = gw_problem_render(400, "invalid", "x", "r", NULL, 0, &len);
    assert_int_equal(strncmp(text, "{\"type\":", 8), 0);
    free(text);
}

static void
test_field_errors(void **state)
{
    (void) state;
    gw_field_error_t errs[] = {{"voice.speed", "must be between 0.5 and 2"},
                               {"response_engine.nodes[3].next", "unknown node"}};
    json_t *doc = render(400, "invalid", "The agent is not valid.", errs, 2);
    json_t *list = json_object_get(doc, "errors");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "field")),
                        "voice.speed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "message")),
                        "unknown node");
    json_decref(doc);

    /* bounded */
    gw_field_error_t *many = calloc(500, sizeof(*many));
    for (int i = 0; i < 500; i++) {
        many[i].field = "a";
        many[i].message = "b";
    }
    doc = render(400, "invalid", NULL, many, 500);
    assert_int_equal(json_array_size(json_object_get(doc, "errors")), GW_PROBLEM_MAX_ERRORS);
    json_decref(doc);
    free(many);
}

static void
test_hostile_text(void **state)
{
    (void) state;
    /* invalid UTF-8 and control characters from a service: still a valid document */
    gw_field_error_t errs[] = {{"a\xff\xfe", "\x01quote\" back\\slash\n"}};
    json_t *doc = render(400, "invalid", "bad \xc3 utf8", errs, 1);
    assert_string_equal(json_string_value(json_object_get(doc, "detail")), "bad ? utf8");
    json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "field")), "a??");
    /* valid UTF-8 with control characters is kept: JSON escapes it */
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "\x01quote\" back\\slash\n");
    json_decref(doc);

    /* long text is cut */
    char *big = malloc(10000);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    doc = render(400, "invalid", big, NULL, 0);
    assert_true(strlen(json_string_value(json_object_get(doc, "detail"))) <=
                GW_PROBLEM_MAX_TEXT + 3);
    json_decref(doc);
    free(big);
}

static void
test_status_mapping(void **state)
{
    (void) state;
    assert_int_equal(gw_problem_http_for_status(LC_ERR_INVALID), 400);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_NOT_FOUND), 404);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_CONFLICT), 409);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_TOO_LARGE), 413);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_UNAUTHORIZED), 401);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_FORBIDDEN), 403);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_RATE_LIMITED), 429);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_TIMEOUT), 504);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_NO_RESPONDERS), 503);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_UNAVAILABLE), 503);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_CANCELLED), 503);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_PROTOCOL), 502);
    assert_int_equal(gw_problem_http_for_status(LC_ERR_DB), 500);
    assert_int_equal(gw_problem_http_for_status(LC_OK), 500); /* never a success */
    assert_string_equal(gw_problem_name_for_http(413), "too_large");
    assert_string_equal(gw_problem_name_for_http(415), "unsupported_media_type");
    assert_string_equal(gw_problem_name_for_http(405), "method_not_allowed");
    assert_string_equal(gw_problem_name_for_http(418), "invalid");
    assert_string_equal(gw_problem_name_for_http(599), "internal");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_status_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
