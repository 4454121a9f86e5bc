/*
 * The agent document: every error class (unknown, read-only, type, range, length, enum,
 * pattern, size), defaults, engines, and the bound on reported errors.
 */
#include "rg_test.h"

#include <stdlib.h>

#define FLOW_ENGINE                                                                                \
    "\"response_engine\":{\"type\":\"flow\",\"start\":\"a\",\"nodes\":[{\"id\":\"a\","             \
    "\"type\":\"hangup\"}]}"

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
test_minimal_gets_every_default(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate("{\"name\":\"Front desk\"," FLOW_ENGINE "}", &errs);
    if (out == NULL)
        dump_errors(errs);
    assert_non_null(out);
    assert_int_equal(errs->count, 0);
    assert_string_equal(json_string_value(json_object_get(out, "language")), "en-US");
    assert_string_equal(json_string_value(json_object_get(out, "first_message")), "");
    json_t *voice = json_object_get(out, "voice");
    assert_string_equal(json_string_value(json_object_get(voice, "provider")), "flite");
    assert_string_equal(json_string_value(json_object_get(voice, "voice_id")), "kal");
    assert_true(json_real_value(json_object_get(voice, "speed")) == 1.0);
    json_t *tr = json_object_get(out, "transcriber");
    assert_string_equal(json_string_value(json_object_get(tr, "provider")), "pocketsphinx");
    assert_string_equal(json_string_value(json_object_get(tr, "model")), "en-us");
    assert_int_equal(json_array_size(json_object_get(tr, "keywords")), 0);
    json_t *in = json_object_get(out, "interruptions");
    assert_true(json_is_true(json_object_get(in, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(in, "min_speech_ms")), 200);
    assert_int_equal(json_integer_value(json_object_get(in, "min_words")), 0);
    json_t *ep = json_object_get(out, "endpointing");
    assert_int_equal(json_integer_value(json_object_get(ep, "silence_ms")), 500);
    assert_int_equal(json_integer_value(json_object_get(ep, "max_wait_ms")), 5000);
    assert_int_equal(json_integer_value(json_object_get(out, "max_duration_s")), 1800);
    assert_int_equal(json_integer_value(json_object_get(out, "silence_timeout_s")), 30);
    assert_true(json_is_null(json_object_get(out, "webhook")));
    assert_true(json_is_object(json_object_get(out, "metadata")));
    assert_int_equal(json_array_size(json_object_get(out, "end_call_phrases")), 0);
    /* no server fields */
    assert_null(json_object_get(out, "id"));
    assert_null(json_object_get(out, "version"));
    /* validating the output again changes nothing (stored documents re-validate) */
    rg_errors_t *again = rg_errors_create();
    json_t *out2 = rg_agent_validate(out, again);
    assert_non_null(out2);
    assert_true(json_equal(out, out2));
    json_decref(out2);
    rg_errors_destroy(again);
    json_decref(out);
    rg_errors_destroy(errs);
}

static void
test_unknown_and_readonly_fields(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate("{\"name\":\"x\"," FLOW_ENGINE ",\"colour\":1,\"id\":\"agt_1\","
                           "\"version\":3,\"created_at\":\"x\",\"voice\":{\"pitch\":2}}",
                           &errs);
    assert_null(out);
    expect_error(errs, "colour", "unknown field");
    expect_error(errs, "voice.pitch", "unknown field");
    expect_error(errs, "id", "read-only");
    expect_error(errs, "version", "read-only");
    expect_error(errs, "created_at", "read-only");
    rg_errors_destroy(errs);
}

static void
test_types(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate("{\"name\":5,\"voice\":\"loud\",\"max_duration_s\":60.5,"
                           "\"interruptions\":{\"enabled\":\"yes\"},\"end_call_phrases\":\"bye\","
                           "\"transcriber\":{\"keywords\":[1]},\"metadata\":[],"
                           "\"webhook\":3,\"response_engine\":[]}",
                           &errs);
    assert_null(out);
    expect_error(errs, "name", "must be a string");
    expect_error(errs, "voice", "must be an object");
    expect_error(errs, "max_duration_s", "must be an integer");
    expect_error(errs, "interruptions.enabled", "must be a boolean");
    expect_error(errs, "end_call_phrases", "must be an array");
    expect_error(errs, "transcriber.keywords[0]", "must be a string");
    expect_error(errs, "metadata", "must be an object");
    expect_error(errs, "webhook", "an object or null");
    expect_error(errs, "response_engine", "must be an object");
    rg_errors_destroy(errs);
}

static void
test_ranges(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate("{\"name\":\"x\"," FLOW_ENGINE ",\"voice\":{\"speed\":0.4},"
                           "\"max_duration_s\":9,\"silence_timeout_s\":601,"
                           "\"interruptions\":{\"min_speech_ms\":5001,\"min_words\":-1},"
                           "\"endpointing\":{\"silence_ms\":99,\"max_wait_ms\":30001}}",
                           &errs);
    assert_null(out);
    expect_error(errs, "voice.speed", "must be between 0.5 and 2");
    expect_error(errs, "max_duration_s", "must be between 10 and 14400");
    expect_error(errs, "silence_timeout_s", "must be between 0 and 600");
    expect_error(errs, "interruptions.min_speech_ms", "between 0 and 5000");
    expect_error(errs, "interruptions.min_words", "between 0 and 10");
    expect_error(errs, "endpointing.silence_ms", "between 100 and 5000");
    expect_error(errs, "endpointing.max_wait_ms", "between 500 and 30000");
    rg_errors_destroy(errs);

    /* the bounds themselves are valid; an integer is fine where a number is expected */
    out = validate("{\"name\":\"x\"," FLOW_ENGINE ",\"voice\":{\"speed\":2},"
                   "\"max_duration_s\":10,\"silence_timeout_s\":0}",
                   &errs);
    assert_non_null(out);
    assert_true(json_is_real(json_object_get(json_object_get(out, "voice"), "speed")));
    json_decref(out);
    rg_errors_destroy(errs);
}

static char *
repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void
test_lengths_in_characters(void **state)
{
    (void) state;
    char *long_name = repeat('n', 201);
    char *msg = repeat('m', 2001);
    char text[8192];
    snprintf(text, sizeof(text),
             "{\"name\":\"%s\",\"first_message\":\"%s\"," FLOW_ENGINE
             ",\"transcriber\":{\"keywords\":[\"\"]},\"end_call_phrases\":[\"a\",\"b\",\"c\","
             "\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\","
             "\"q\",\"r\",\"s\",\"t\",\"u\"]}",
             long_name, msg);
    rg_errors_t *errs;
    json_t *out = validate(text, &errs);
    assert_null(out);
    expect_error(errs, "name", "must be 1 to 200 characters");
    expect_error(errs, "first_message", "at most 2000 characters");
    expect_error(errs, "transcriber.keywords[0]", "must be 1 to 100 characters");
    expect_error(errs, "end_call_phrases", "at most 20 items");
    rg_errors_destroy(errs);
    free(long_name);
    free(msg);

    /* 200 characters of 2 bytes each are 200 characters, not 400 */
    char name[1024] = "";
    for (int i = 0; i < 200; i++)
        strcat(name, "\xc3\xa9");
    snprintf(text, sizeof(text), "{\"name\":\"%s\"," FLOW_ENGINE "}", name);
    out = validate(text, &errs);
    assert_non_null(out);
    json_decref(out);
    rg_errors_destroy(errs);
}

static void
test_enums_and_patterns(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate("{\"name\":\"x\",\"language\":\"english\","
                           "\"transcriber\":{\"language\":\"e\"},"
                           "\"response_engine\":{\"type\":\"magic\"},"
                           "\"webhook\":{\"url\":\"ftp://example.com/x\"}}",
                           &errs);
    assert_null(out);
    expect_error(errs, "language", "language tag");
    expect_error(errs, "transcriber.language", "must be 2 to 64 characters");
    expect_error(errs, "response_engine.type", "must be one of \"flow\", \"llm\", \"custom_llm\"");
    expect_error(errs, "webhook.url", "http or https URL");
    rg_errors_destroy(errs);

    out = validate(
        "{\"name\":\"x\",\"language\":\"zh-Hant-TW\"," FLOW_ENGINE
        ",\"webhook\":{\"url\":\"https://hooks.example.com/v\",\"events\":[\"call.ended\"]}}",
        &errs);
    if (out == NULL)
        dump_errors(errs);
    assert_non_null(out);
    json_decref(out);
    rg_errors_destroy(errs);
}

static void
test_required(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate("{\"webhook\":{}}", &errs);
    assert_null(out);
    expect_error(errs, "name", "is required");
    expect_error(errs, "response_engine", "is required");
    expect_error(errs, "webhook.url", "is required");
    rg_errors_destroy(errs);

    out = validate("{\"name\":null,\"response_engine\":{}}", &errs);
    assert_null(out);
    expect_error(errs, "name", "is required");
    expect_error(errs, "response_engine.type", "is required");
    rg_errors_destroy(errs);
}

static void
test_metadata_size(void **state)
{
    (void) state;
    /* {"k":"vvvv..."} serialised: 8 bytes of syntax + the value */
    char *value = repeat('v', 16384 - 8 + 1);
    size_t size = strlen(value) + 256;
    char *text = malloc(size);
    snprintf(text, size, "{\"name\":\"x\"," FLOW_ENGINE ",\"metadata\":{\"k\":\"%s\"}}", value);
    rg_errors_t *errs;
    json_t *out = validate(text, &errs);
    assert_null(out);
    expect_error(errs, "metadata", "at most 16384 bytes");
    rg_errors_destroy(errs);
    /* one byte less fits exactly */
    value[strlen(value) - 1] = '\0';
    snprintf(text, size, "{\"name\":\"x\"," FLOW_ENGINE ",\"metadata\":{\"k\":\"%s\"}}", value);
    out = validate(text, &errs);
    assert_non_null(out);
    json_decref(out);
    rg_errors_destroy(errs);
    free(text);
    free(value);
}

static void
test_llm_engine(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = validate("{\"name\":\"x\",\"response_engine\":{\"type\":\"llm\","
                           "\"provider\":\"openai\",\"model\":\"gpt\",\"tools\":[{\"name\":"
                           "\"lookup\",\"url\":\"https://api.example.com/t\"}]}}",
                           &errs);
    if (out == NULL)
        dump_errors(errs);
    assert_non_null(out);
    json_t *engine = json_object_get(out, "response_engine");
    assert_true(json_real_value(json_object_get(engine, "temperature")) == 0.7);
    assert_string_equal(json_string_value(json_object_get(engine, "system_prompt")), "");
    json_t *tool = json_array_get(json_object_get(engine, "tools"), 0);
    assert_int_equal(json_integer_value(json_object_get(tool, "timeout_ms")), 5000);
    assert_true(json_is_object(json_object_get(tool, "parameters")));
    assert_string_equal(json_string_value(json_object_get(tool, "description")), "");
    json_decref(out);
    rg_errors_destroy(errs);

    out = validate("{\"name\":\"x\",\"response_engine\":{\"type\":\"llm\",\"temperature\":2.5,"
                   "\"start\":\"a\",\"tools\":[{\"name\":\"a b\",\"url\":\"http://x\","
                   "\"parameters\":[],\"timeout_ms\":99},{\"name\":\"dup\",\"url\":\"http://x\"},"
                   "{\"name\":\"dup\",\"url\":\"mailto:x\"}]}}",
                   &errs);
    assert_null(out);
    expect_error(errs, "response_engine.provider", "is required");
    expect_error(errs, "response_engine.model", "is required");
    expect_error(errs, "response_engine.temperature", "between 0 and 2");
    expect_error(errs, "response_engine.start", "unknown field");
    expect_error(errs, "response_engine.tools[0].name", "must match");
    expect_error(errs, "response_engine.tools[0].parameters", "must be an object");
    expect_error(errs, "response_engine.tools[0].timeout_ms", "between 100 and 30000");
    expect_error(errs, "response_engine.tools[2].name", "duplicate tool name");
    expect_error(errs, "response_engine.tools[2].url", "http or https URL");
    rg_errors_destroy(errs);

    out = validate("{\"name\":\"x\",\"response_engine\":{\"type\":\"custom_llm\","
                   "\"url\":\"https://llm.example.com/v1\"}}",
                   &errs);
    assert_non_null(out);
    json_decref(out);
    rg_errors_destroy(errs);
    out = validate("{\"name\":\"x\",\"response_engine\":{\"type\":\"custom_llm\"}}", &errs);
    assert_null(out);
    expect_error(errs, "response_engine.url", "is required");
    rg_errors_destroy(errs);
}

static void
test_errors_are_bounded(void **state)
{
    (void) state;
    char text[8192];
    size_t used = (size_t) snprintf(text, sizeof(text), "{\"name\":\"x\"," FLOW_ENGINE);
    for (int i = 0; i < 80; i++)
        used += (size_t) snprintf(text + used, sizeof(text) - used, ",\"u%d\":1", i);
    snprintf(text + used, sizeof(text) - used, "}");
    rg_errors_t *errs;
    json_t *out = validate(text, &errs);
    assert_null(out);
    assert_int_equal(errs->count, RG_ERRORS_MAX);
    assert_true(errs->truncated);
    rg_errors_destroy(errs);
}

static void
test_hostile_key_paths_are_bounded(void **state)
{
    (void) state;
    char *key = repeat('k', 5000);
    size_t size = 6000;
    char *text = malloc(size);
    snprintf(text, size, "{\"name\":\"x\"," FLOW_ENGINE ",\"%s\":1}", key);
    rg_errors_t *errs;
    json_t *out = validate(text, &errs);
    assert_null(out);
    assert_int_equal(errs->count, 1);
    assert_true(strlen(errs->items[0].field) < RG_PATH_MAX);
    assert_non_null(strstr(errs->items[0].field, "..."));
    rg_errors_destroy(errs);
    free(text);
    free(key);
}

static void
test_not_an_object(void **state)
{
    (void) state;
    rg_errors_t *errs = rg_errors_create();
    json_t *arr = json_array();
    assert_null(rg_agent_validate(arr, errs));
    assert_int_equal(errs->count, 1);
    json_decref(arr);
    rg_errors_destroy(errs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_gets_every_default),
        cmocka_unit_test(test_unknown_and_readonly_fields),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_lengths_in_characters),
        cmocka_unit_test(test_enums_and_patterns),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_metadata_size),
        cmocka_unit_test(test_llm_engine),
        cmocka_unit_test(test_errors_are_bounded),
        cmocka_unit_test(test_hostile_key_paths_are_bounded),
        cmocka_unit_test(test_not_an_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
