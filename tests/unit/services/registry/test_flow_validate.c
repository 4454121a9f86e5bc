/*
 * Flow engine: node schemas and the graph (start, duplicate ids, unknown targets,
 * reachability, required next, menu digits, variable references).
 */
#include "rg_test.h"

#define AGENT(nodes, start)                                                                        \
    "{\"name\":\"x\",\"response_engine\":{\"type\":\"flow\"," start ",\"nodes\":[" nodes "]}}"

static json_t *
validate(const char *text, rg_errors_t **errs_out)
{
    json_t *doc = parse(text);
    rg_errors_t *errs = rg_errors_create();
    json_t *out = rg_agent_validate(doc, errs);
    json_decref(doc);
    *errs_out = errs;
    return out;
}

static void
test_every_node_type_valid(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate(
        AGENT("{\"id\":\"hello\",\"type\":\"say\",\"text\":\"Hi {{caller_number}}\","
              "\"next\":\"ask\"},"
              "{\"id\":\"ask\",\"type\":\"listen\",\"prompt\":\"Name?\",\"variable\":\"name\","
              "\"next\":\"menu\"},"
              "{\"id\":\"menu\",\"type\":\"menu\",\"prompt\":\"Sales or support, {{name}}?\","
              "\"choices\":[{\"keywords\":[\"sales\"],\"digit\":\"1\",\"next\":\"xfer\"},"
              "{\"digit\":\"#\",\"next\":\"hook\"}],\"fallback\":\"bye\"},"
              "{\"id\":\"xfer\",\"type\":\"transfer\",\"to\":\"sip:sales@pbx.example.com\"},"
              "{\"id\":\"hook\",\"type\":\"webhook\",\"url\":\"https://x.example.com/{{name}}\","
              "\"result_variable\":\"ticket\",\"next\":\"bye\",\"on_error\":\"oops\"},"
              "{\"id\":\"oops\",\"type\":\"transfer\",\"to\":\"+15551230000\"},"
              "{\"id\":\"bye\",\"type\":\"hangup\",\"message\":\"Bye {{ name }}\"}",
              "\"start\":\"hello\""),
        &errs);
    /* "{{ name }}" has spaces: not a well-formed reference */
    assert_null(out);
    assert_int_equal(errs->count, 1);
    expect_error(errs, "response_engine.nodes[6].message", "malformed variable reference");
    rg_errors_destroy(errs);

    out = validate(AGENT("{\"id\":\"hello\",\"type\":\"say\",\"text\":\"Hi\",\"next\":\"ask\"},"
                         "{\"id\":\"ask\",\"type\":\"listen\",\"variable\":\"name\","
                         "\"next\":\"menu\"},"
                         "{\"id\":\"menu\",\"type\":\"menu\",\"prompt\":\"Pick\","
                         "\"choices\":[{\"keywords\":[\"sales\"],\"next\":\"xfer\"}],"
                         "\"fallback\":\"bye\"},"
                         "{\"id\":\"xfer\",\"type\":\"transfer\",\"to\":\"tel:+1-555-123\"},"
                         "{\"id\":\"bye\",\"type\":\"hangup\"}",
                         "\"start\":\"hello\""),
                   &errs);
    if (out == NULL)
        dump_errors(errs);
    assert_non_null(out);
    json_t *nodes = json_object_get(json_object_get(out, "response_engine"), "nodes");
    /* defaults: listen timeout 8000; menu retries 2, timeout 5000; choice keywords kept */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(nodes, 1), "timeout_ms")),
                     8000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(nodes, 2), "retries")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(nodes, 2), "timeout_ms")),
                     5000);
    json_decref(out);
    rg_errors_destroy(errs);
}

static void
test_start_missing_or_unknown(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out =
        validate("{\"name\":\"x\",\"response_engine\":{\"type\":\"flow\",\"nodes\":[{\"id\":"
                 "\"a\",\"type\":\"hangup\"}]}}",
                 &errs);
    assert_null(out);
    expect_error(errs, "response_engine.start", "is required");
    rg_errors_destroy(errs);

    out = validate(AGENT("{\"id\":\"a\",\"type\":\"hangup\"}", "\"start\":\"b\""), &errs);
    assert_null(out);
    expect_error(errs, "response_engine.start", "no node with id \"b\"");
    rg_errors_destroy(errs);

    out =
        validate("{\"name\":\"x\",\"response_engine\":{\"type\":\"flow\",\"start\":\"a\"}}", &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes", "is required");
    rg_errors_destroy(errs);

    out = validate(AGENT("", "\"start\":\"a\""), &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes", "must have 1 to 200 items");
    rg_errors_destroy(errs);
}

static void
test_duplicate_ids_and_bad_ids(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate(AGENT("{\"id\":\"a\",\"type\":\"say\",\"text\":\"t\",\"next\":\"a\"},"
                                 "{\"id\":\"a\",\"type\":\"hangup\"},"
                                 "{\"id\":\"b c\",\"type\":\"hangup\"}",
                                 "\"start\":\"a\""),
                           &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes[1].id", "duplicate node id \"a\"");
    expect_error(errs, "response_engine.nodes[2].id", "must match");
    rg_errors_destroy(errs);
}

static void
test_unknown_targets(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate(
        AGENT("{\"id\":\"a\",\"type\":\"say\",\"text\":\"t\",\"next\":\"m\"},"
              "{\"id\":\"m\",\"type\":\"menu\",\"prompt\":\"p\",\"choices\":[{\"digit\":\"1\","
              "\"next\":\"w\"},{\"digit\":\"2\",\"next\":\"nowhere\"}],\"fallback\":\"gone\"},"
              "{\"id\":\"w\",\"type\":\"webhook\",\"url\":\"https://x.example.com\","
              "\"next\":\"z\",\"on_error\":\"lost\"},"
              "{\"id\":\"z\",\"type\":\"hangup\"}",
              "\"start\":\"a\""),
        &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes[1].choices[1].next", "no node with id \"nowhere\"");
    expect_error(errs, "response_engine.nodes[1].fallback", "no node with id \"gone\"");
    expect_error(errs, "response_engine.nodes[2].on_error", "no node with id \"lost\"");
    expect_no_error_at(errs, "response_engine.nodes[0].next");
    expect_no_error_at(errs, "response_engine.nodes[2].next");
    rg_errors_destroy(errs);
}

static void
test_unreachable_nodes(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate(AGENT("{\"id\":\"a\",\"type\":\"say\",\"text\":\"t\",\"next\":\"b\"},"
                                 "{\"id\":\"b\",\"type\":\"hangup\"},"
                                 "{\"id\":\"island\",\"type\":\"say\",\"text\":\"t\","
                                 "\"next\":\"b\"},"
                                 "{\"id\":\"c\",\"type\":\"hangup\"}",
                                 "\"start\":\"a\""),
                           &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes[2]", "not reachable from start");
    expect_error(errs, "response_engine.nodes[3]", "not reachable from start");
    expect_no_error_at(errs, "response_engine.nodes[1]");
    assert_int_equal(errs->count, 2);
    rg_errors_destroy(errs);

    /* reachable only through on_error and fallback: fine */
    out = validate(
        AGENT("{\"id\":\"w\",\"type\":\"webhook\",\"url\":\"http://h\",\"next\":\"m\","
              "\"on_error\":\"e\"},"
              "{\"id\":\"m\",\"type\":\"menu\",\"prompt\":\"p\",\"choices\":[{\"digit\":\"1\","
              "\"next\":\"e\"}],\"fallback\":\"f\"},"
              "{\"id\":\"e\",\"type\":\"hangup\"},{\"id\":\"f\",\"type\":\"hangup\"}",
              "\"start\":\"w\""),
        &errs);
    if (out == NULL)
        dump_errors(errs);
    assert_non_null(out);
    json_decref(out);
    rg_errors_destroy(errs);
}

static void
test_next_required(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate(AGENT("{\"id\":\"a\",\"type\":\"say\",\"text\":\"t\"},"
                                 "{\"id\":\"l\",\"type\":\"listen\",\"variable\":\"v\"},"
                                 "{\"id\":\"w\",\"type\":\"webhook\",\"url\":\"http://h\"},"
                                 "{\"id\":\"m\",\"type\":\"menu\",\"prompt\":\"p\","
                                 "\"choices\":[{\"digit\":\"1\"}]}",
                                 "\"start\":\"a\""),
                           &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes[0].next", "is required");
    expect_error(errs, "response_engine.nodes[1].next", "is required");
    expect_error(errs, "response_engine.nodes[2].next", "is required");
    expect_error(errs, "response_engine.nodes[3].fallback", "is required");
    expect_error(errs, "response_engine.nodes[3].choices[0].next", "is required");
    rg_errors_destroy(errs);
}

static void
test_menu_rules(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate(
        AGENT("{\"id\":\"m\",\"type\":\"menu\",\"prompt\":\"p\",\"fallback\":\"m\",\"retries\":6,"
              "\"choices\":[{\"digit\":\"1\",\"next\":\"m\"},{\"digit\":\"1\",\"next\":\"m\"},"
              "{\"keywords\":[],\"next\":\"m\"},{\"digit\":\"A\",\"next\":\"m\"},"
              "{\"keywords\":[\"yes\"],\"next\":\"m\",\"extra\":true}]}",
              "\"start\":\"m\""),
        &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes[0].choices[1].digit", "duplicate digit \"1\"");
    expect_error(errs, "response_engine.nodes[0].choices[2]", "needs keywords or a digit");
    expect_error(errs, "response_engine.nodes[0].choices[3].digit", "must be one of");
    expect_error(errs, "response_engine.nodes[0].choices[4].extra", "unknown field");
    expect_error(errs, "response_engine.nodes[0].retries", "between 0 and 5");
    rg_errors_destroy(errs);

    char choices[4096] = "";
    for (int i = 0; i < 13; i++)
        snprintf(choices + strlen(choices), sizeof(choices) - strlen(choices),
                 "%s{\"keywords\":[\"k%d\"],\"next\":\"m\"}", i ? "," : "", i);
    char text[8192];
    snprintf(text, sizeof(text),
             AGENT("{\"id\":\"m\",\"type\":\"menu\",\"prompt\":\"p\",\"fallback\":\"m\","
                   "\"choices\":[%s]}",
                   "\"start\":\"m\""),
             choices);
    out = validate(text, &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes[0].choices", "must have 1 to 12 items");
    rg_errors_destroy(errs);
}

static void
test_node_types_and_fields(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out =
        validate(AGENT("{\"id\":\"a\",\"type\":\"dance\"},{\"type\":\"hangup\"},"
                       "{\"id\":\"t\",\"type\":\"transfer\",\"to\":\"555-1234\"},"
                       "{\"id\":\"l\",\"type\":\"listen\",\"variable\":\"Name\",\"next\":\"t\","
                       "\"timeout_ms\":999},"
                       "{\"id\":\"w\",\"type\":\"webhook\",\"url\":\"https://h\",\"next\":\"t\","
                       "\"result_variable\":\"9x\",\"timeout_ms\":30001},"
                       "{\"id\":\"s\",\"type\":\"say\",\"text\":\"\",\"next\":\"t\",\"to\":\"x\"},"
                       "\"node\"",
                       "\"start\":\"a\""),
                 &errs);
    assert_null(out);
    expect_error(errs, "response_engine.nodes[0].type", "must be one of \"say\", \"listen\"");
    expect_error(errs, "response_engine.nodes[1].id", "is required");
    expect_error(errs, "response_engine.nodes[2].to", "sip:, sips: or tel: URI or an E.164");
    expect_error(errs, "response_engine.nodes[3].variable", "must match ^[a-z_]");
    expect_error(errs, "response_engine.nodes[3].timeout_ms", "between 1000 and 60000");
    expect_error(errs, "response_engine.nodes[4].result_variable", "must match");
    expect_error(errs, "response_engine.nodes[4].timeout_ms", "between 100 and 30000");
    expect_error(errs, "response_engine.nodes[5].text", "must be 1 to 2000 characters");
    expect_error(errs, "response_engine.nodes[5].to", "unknown field");
    expect_error(errs, "response_engine.nodes[6]", "must be an object");
    rg_errors_destroy(errs);
}

static void
test_variable_references(void **state)
{
    (void) state;
    static const struct {
        const char *text;
        bool ok;
    } cases[] = {
        {"plain text", true},   {"{{a}} and {{b_2}}", true},
        {"{{_x}}", true},       {"single { brace }", true},
        {"}} alone", true},     {"{{}}", false},
        {"{{Name}}", false},    {"{{a b}}", false},
        {"{{a}", false},        {"{{a", false},
        {"trailing {{", false}, {"{{9}}", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = parse(AGENT("{\"id\":\"a\",\"type\":\"hangup\"}", "\"start\":\"a\""));
        json_object_set_new(doc, "first_message", json_string(cases[i].text));
        rg_errors_t *errs = rg_errors_create();
        json_t *out = rg_agent_validate(doc, errs);
        if ((out != NULL) != cases[i].ok)
            fprintf(stderr, "case \"%s\": expected %s\n", cases[i].text,
                    cases[i].ok ? "valid" : "invalid");
        assert_true((out != NULL) == cases[i].ok);
        if (!cases[i].ok)
            expect_error(errs, "first_message", "malformed variable reference");
        json_decref(out);
        json_decref(doc);
        rg_errors_destroy(errs);
    }
}

static void
test_too_many_nodes(void **state)
{
    (void) state;
    json_t *doc = parse(AGENT("", "\"start\":\"n0\""));
    json_t *nodes = json_object_get(json_object_get(doc, "response_engine"), "nodes");
    for (int i = 0; i < 201; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        json_array_append_new(nodes, json_pack("{s:s,s:s}", "id", id, "type", "hangup"));
    }
    rg_errors_t *errs = rg_errors_create();
    assert_null(rg_agent_validate(doc, errs));
    expect_error(errs, "response_engine.nodes", "must have 1 to 200 items");
    rg_errors_destroy(errs);
    /* 200 chained nodes are fine */
    json_array_clear(nodes);
    for (int i = 0; i < 200; i++) {
        char id[16], next[16];
        snprintf(id, sizeof(id), "n%d", i);
        snprintf(next, sizeof(next), "n%d", i + 1);
        if (i < 199)
            json_array_append_new(nodes, json_pack("{s:s,s:s,s:s,s:s}", "id", id, "type", "say",
                                                   "text", "t", "next", next));
        else
            json_array_append_new(nodes, json_pack("{s:s,s:s}", "id", id, "type", "hangup"));
    }
    errs = rg_errors_create();
    json_t *out = rg_agent_validate(doc, errs);
    if (out == NULL)
        dump_errors(errs);
    assert_non_null(out);
    json_decref(out);
    rg_errors_destroy(errs);
    json_decref(doc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_node_type_valid),
        cmocka_unit_test(test_start_missing_or_unknown),
        cmocka_unit_test(test_duplicate_ids_and_bad_ids),
        cmocka_unit_test(test_unknown_targets),
        cmocka_unit_test(test_unreachable_nodes),
        cmocka_unit_test(test_next_required),
        cmocka_unit_test(test_menu_rules),
        cmocka_unit_test(test_node_types_and_fields),
        cmocka_unit_test(test_variable_references),
        cmocka_unit_test(test_too_many_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
