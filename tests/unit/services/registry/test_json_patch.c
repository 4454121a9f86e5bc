/*
 * RFC 7396 JSON merge patch (the examples of its Appendix A), real number output, body
 * parsing, read-only fields in patches, and ids.
 */
#include "rg_test.h"

#include <stdlib.h>

#include "../../../../services/registry/rg_json.h"

static void
test_rfc7396_appendix_a(void **state)
{
    (void) state;
    static const char *const cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
        {"{\"a\":\"foo\"}", "null", "null"},
        {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *target = json_loads(cases[i][0], JSON_DECODE_ANY, NULL);
        json_t *patch = json_loads(cases[i][1], JSON_DECODE_ANY, NULL);
        json_t *want = json_loads(cases[i][2], JSON_DECODE_ANY, NULL);
        json_t *target_copy = json_deep_copy(target);
        json_t *got = rg_json_merge_patch(target, patch);
        if (!json_equal(got, want)) {
            char *text = rg_json_dumps(got);
            fprintf(stderr, "case %zu: got %s want %s\n", i, text, cases[i][2]);
            free(text);
        }
        assert_true(json_equal(got, want));
        assert_true(json_equal(target, target_copy)); /* the target is not modified */
        json_decref(target);
        json_decref(patch);
        json_decref(want);
        json_decref(target_copy);
        json_decref(got);
    }
}

static void
test_reals_read_back_exactly(void **state)
{
    (void) state;
    json_t *v = json_pack("{s:f,s:f,s:f}", "t", 0.7, "s", 1.0, "x", 0.1234567890123456);
    char *text = rg_json_dumps(v);
    json_t *back = json_loads(text, 0, NULL);
    assert_true(json_equal(v, back));
    json_decref(back);
    free(text);
    json_t *simple = json_pack("{s:f}", "t", 0.7);
    text = rg_json_dumps(simple);
    assert_string_equal(text, "{\"t\":0.7}"); /* not 0.69999999999999996 */
    free(text);
    json_decref(simple);
    json_decref(v);
}

static void
test_parse_object(void **state)
{
    (void) state;
    char err[200];
    json_t *v = rg_json_parse_object("{\"a\":1}", 7, err, sizeof(err));
    assert_non_null(v);
    json_decref(v);
    assert_null(rg_json_parse_object("[1]", 3, err, sizeof(err)));
    assert_non_null(strstr(err, "must be a JSON object"));
    assert_null(rg_json_parse_object("", 0, err, sizeof(err)));
    assert_null(rg_json_parse_object("{\"a\":1,\"a\":2}", 13, err, sizeof(err)));
    assert_non_null(strstr(err, "not valid JSON"));
    const char nul[] = "{\"a\":\"x\\u0000y\"}";
    assert_null(rg_json_parse_object(nul, strlen(nul), err, sizeof(err)));
    assert_null(rg_json_parse_object("{\"a\":", 5, err, sizeof(err)));
}

static void
test_patch_readonly(void **state)
{
    (void) state;
    json_t *patch = parse("{\"id\":\"x\",\"version\":null,\"name\":\"n\"}");
    rg_errors_t *errs = rg_errors_create();
    json_t *clean = rg_patch_strip_readonly(patch, rg_agent_readonly, false, errs);
    expect_error(errs, "id", "read-only");
    expect_error(errs, "version", "read-only");
    assert_int_equal(errs->count, 2);
    assert_int_equal(json_object_size(clean), 1);
    json_decref(clean);
    json_decref(patch);
    rg_errors_destroy(errs);

    patch = parse("{\"outbound_trunk\":{\"has_password\":false,\"uri\":\"sip:x\"}}");
    errs = rg_errors_create();
    clean = rg_patch_strip_readonly(patch, rg_number_readonly, true, errs);
    expect_error(errs, "outbound_trunk.has_password", "read-only");
    assert_null(json_object_get(json_object_get(clean, "outbound_trunk"), "has_password"));
    json_decref(clean);
    json_decref(patch);
    rg_errors_destroy(errs);
}

static void
test_number_document(void **state)
{
    (void) state;
    static const struct {
        const char *doc;
        const char *field; /* NULL: valid */
        const char *part;
    } cases[] = {
        {"{\"number\":\"+15551234567\"}", NULL, NULL},
        {"{\"number\":\"support\",\"agent_id\":null,\"outbound_trunk\":null}", NULL, NULL},
        {"{\"number\":\"+15551234567\",\"agent_id\":\"agt_0123456789abcdef0123\","
         "\"outbound_trunk\":{\"uri\":\"sips:trunk.example.com:5061\",\"username\":\"u\","
         "\"password\":\"p\"}}",
         NULL, NULL},
        {"{}", "number", "is required"},
        {"{\"number\":\"+0123\"}", "number", "E.164"},
        {"{\"number\":\"+1234567890123456\"}", "number", "E.164"},
        {"{\"number\":\"has space\"}", "number", "SIP user part"},
        {"{\"number\":\"1\",\"agent_id\":\"agt_XYZ\"}", "agent_id", "must be an agent id"},
        {"{\"number\":\"1\",\"agent_id\":5}", "agent_id", "must be a string"},
        {"{\"number\":\"1\",\"outbound_trunk\":{\"uri\":\"http://x\"}}", "outbound_trunk.uri",
         "sip: or sips:"},
        {"{\"number\":\"1\",\"outbound_trunk\":{}}", "outbound_trunk.uri", "is required"},
        {"{\"number\":\"1\",\"outbound_trunk\":{\"uri\":\"sip:@\"}}", "outbound_trunk.uri",
         "sip: or sips:"},
        {"{\"number\":\"1\",\"outbound_trunk\":\"sip:x\"}", "outbound_trunk", "object or null"},
        {"{\"number\":\"1\",\"id\":\"pn_x\"}", "id", "read-only"},
        {"{\"number\":\"1\",\"label\":\"x\"}", "label", "unknown field"},
        {"{\"number\":\"1\",\"outbound_trunk\":{\"uri\":\"sip:x\",\"has_password\":true}}",
         "outbound_trunk.has_password", "read-only"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = parse(cases[i].doc);
        rg_errors_t *errs = rg_errors_create();
        json_t *out = rg_number_validate(doc, errs);
        if (cases[i].field == NULL) {
            if (out == NULL)
                dump_errors(errs);
            assert_non_null(out);
            assert_non_null(json_object_get(out, "agent_id")); /* null filled in */
            assert_non_null(json_object_get(out, "outbound_trunk"));
        } else {
            assert_null(out);
            expect_error(errs, cases[i].field, cases[i].part);
        }
        json_decref(out);
        json_decref(doc);
        rg_errors_destroy(errs);
    }

    /* username/password bounds */
    char user[200];
    memset(user, 'u', 129);
    user[129] = '\0';
    json_t *doc = json_pack("{s:s,s:{s:s,s:s,s:s}}", "number", "1", "outbound_trunk", "uri",
                            "sip:x", "username", user, "password", "");
    rg_errors_t *errs = rg_errors_create();
    assert_null(rg_number_validate(doc, errs));
    expect_error(errs, "outbound_trunk.username", "1 to 128 characters");
    expect_error(errs, "outbound_trunk.password", "1 to 128 characters");
    json_decref(doc);
    rg_errors_destroy(errs);
}

static void
test_ids(void **state)
{
    (void) state;
    assert_true(rg_id_valid("agt_0123456789abcdef0123", "agt_"));
    assert_false(rg_id_valid("agt_0123456789abcdef012", "agt_"));
    assert_false(rg_id_valid("agt_0123456789abcdef01234", "agt_"));
    assert_false(rg_id_valid("agt_0123456789ABCDEF0123", "agt_"));
    assert_false(rg_id_valid("pn_0123456789abcdef0123", "agt_"));
    assert_false(rg_id_valid("", "agt_"));
    assert_false(rg_id_valid(NULL, "agt_"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7396_appendix_a), cmocka_unit_test(test_reals_read_back_exactly),
        cmocka_unit_test(test_parse_object),       cmocka_unit_test(test_patch_readonly),
        cmocka_unit_test(test_number_document),    cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
