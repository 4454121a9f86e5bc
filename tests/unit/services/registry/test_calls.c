/*
 * The pure parts of the calls API: the create body, `to` and times, list filters, call
 * events from the stream, ack subjects, the price table and a call's cost.
 */
#include "rg_test.h"

#include <math.h>
#include <stdlib.h>

#include "../../../../services/registry/rg_calls.h"
#include "../../../../services/registry/rg_prices.h"

#define AGENT "agt_0123456789abcdef0123"
#define NUMBER "pn_0123456789abcdef0123"

static json_t *
create(const char *text, rg_errors_t **errs)
{
    json_t *doc = parse(text);
    *errs = rg_errors_create();
    json_t *out = rg_call_create_validate(doc, *errs);
    json_decref(doc);
    return out;
}

static void
test_create_normalises_a_valid_body(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = create("{\"agent_id\":\"" AGENT "\",\"to\":\"+15551234567\"}", &errs);
    assert_non_null(out);
    assert_int_equal(errs->count, 0);
    assert_string_equal(json_string_value(json_object_get(out, "to")), "+15551234567");
    assert_true(json_is_object(json_object_get(out, "variables")));
    assert_null(json_object_get(out, "from"));
    json_decref(out);
    rg_errors_destroy(errs);

    out = create("{\"agent_id\":\"" AGENT "\",\"to\":\"sip:bob@example.com;transport=tcp\","
                 "\"from\":\"+15550001111\",\"number_id\":\"" NUMBER "\","
                 "\"variables\":{\"name\":\"Ada\",\"plan\":\"gold\"}}",
                 &errs);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "from")), "+15550001111");
    assert_string_equal(json_string_value(json_object_get(out, "number_id")), NUMBER);
    assert_int_equal(json_object_size(json_object_get(out, "variables")), 2);
    json_decref(out);
    rg_errors_destroy(errs);
}

static void
test_create_reports_every_problem(void **state)
{
    (void) state;
    rg_errors_t *errs;
    json_t *out = create("{\"to\":\"5551234\",\"from\":\"a b\",\"number_id\":\"agt_1\","
                         "\"variables\":{\"a\":1,\"b\":\"ok\"},\"colour\":\"red\"}",
                         &errs);
    assert_null(out);
    expect_error(errs, "agent_id", "is required");
    expect_error(errs, "to", "E.164");
    expect_error(errs, "from", "E.164");
    expect_error(errs, "number_id", "pn_");
    expect_error(errs, "variables.a", "string");
    expect_error(errs, "colour", "unknown field");
    expect_no_error_at(errs, "variables.b");
    rg_errors_destroy(errs);

    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    char *text = malloc(6000);
    snprintf(text, 6000,
             "{\"agent_id\":\"" AGENT "\",\"to\":\"+15551234567\",\"variables\":{\"v\":\"%s\"}}",
             big);
    out = create(text, &errs);
    assert_null(out);
    expect_error(errs, "variables", "4096 bytes");
    rg_errors_destroy(errs);
    free(big);
    free(text);

    out = create("{\"agent_id\":7,\"to\":null,\"variables\":[]}", &errs);
    assert_null(out);
    expect_error(errs, "agent_id", "agent id");
    expect_error(errs, "to", "E.164");
    expect_error(errs, "variables", "object");
    rg_errors_destroy(errs);
}

static void
test_to_syntax(void **state)
{
    (void) state;
    assert_true(rg_call_to_valid("+15551234567"));
    assert_true(rg_call_to_valid("+44"));
    assert_true(rg_call_to_valid("sip:alice@10.0.0.1:5062"));
    assert_true(rg_call_to_valid("SIPS:alice@example.com"));
    assert_false(rg_call_to_valid(""));
    assert_false(rg_call_to_valid("+0123"));
    assert_false(rg_call_to_valid("+1234567890123456")); /* 16 digits */
    assert_false(rg_call_to_valid("15551234567"));
    assert_false(rg_call_to_valid("sip:"));
    assert_false(rg_call_to_valid("sip:a b@c"));
    assert_false(rg_call_to_valid("sip:a@b\r\nVia: x"));
    assert_false(rg_call_to_valid("sip:<a@b>"));
    assert_false(rg_call_to_valid("tel:+15551234567"));
    char longer[300];
    memcpy(longer, "sip:", 4);
    memset(longer + 4, 'a', 253);
    longer[257] = '\0';
    assert_false(rg_call_to_valid(longer)); /* 257 bytes */
    longer[256] = '\0';
    assert_true(rg_call_to_valid(longer));
}

static void
test_rfc3339(void **state)
{
    (void) state;
    assert_true(rg_rfc3339_valid("2026-11-22T03:30:00Z"));
    assert_true(rg_rfc3339_valid("2026-11-22T03:30:00.123Z"));
    assert_true(rg_rfc3339_valid("2026-11-22t03:30:00.123456789+05:30"));
    assert_true(rg_rfc3339_valid("2026-11-22T03:30:00-00:00"));
    assert_false(rg_rfc3339_valid("2026-11-22"));
    assert_false(rg_rfc3339_valid("2026-13-22T03:30:00Z"));
    assert_false(rg_rfc3339_valid("2026-11-22T24:30:00Z"));
    assert_false(rg_rfc3339_valid("2026-11-22T03:30:00"));
    assert_false(rg_rfc3339_valid("2026-11-22T03:30:00.Z"));
    assert_false(rg_rfc3339_valid("2026-11-22T03:30:00+0530"));
    assert_false(rg_rfc3339_valid("yesterday"));
}

static void
test_filters(void **state)
{
    (void) state;
    rg_call_filters_t f;
    rg_errors_t *errs = rg_errors_create();
    rg_call_filters_read(NULL, &f, errs);
    assert_int_equal(errs->count, 0);
    assert_string_equal(f.status, "");
    json_t *q = parse("{\"agent_id\":\"" AGENT "\",\"status\":\"in_progress\","
                      "\"created_after\":\"2026-01-01T00:00:00Z\","
                      "\"created_before\":\"2026-02-01T00:00:00.5+01:00\"}");
    rg_call_filters_read(q, &f, errs);
    assert_int_equal(errs->count, 0);
    assert_string_equal(f.agent_id, AGENT);
    assert_string_equal(f.status, "in_progress");
    assert_string_equal(f.created_before, "2026-02-01T00:00:00.5+01:00");
    json_decref(q);
    q = parse("{\"agent_id\":\"bob\",\"status\":\"done\",\"created_after\":\"x\","
              "\"created_before\":3,\"order\":\"asc\"}");
    rg_call_filters_read(q, &f, errs);
    expect_error(errs, "agent_id", "agent id");
    expect_error(errs, "status", "one of");
    expect_error(errs, "created_after", "RFC 3339");
    expect_error(errs, "created_before", "string");
    expect_error(errs, "order", "unknown filter");
    assert_string_equal(f.status, "");
    json_decref(q);
    rg_errors_destroy(errs);
}

static json_t *
event(const char *text)
{
    char why[160] = "";
    json_t *ev = rg_call_event_check(text, strlen(text), why, sizeof(why));
    if (ev == NULL)
        fprintf(stderr, "refused: %s\n", why);
    return ev;
}

static void
refused(const char *text, const char *part)
{
    char why[160] = "";
    json_t *ev = rg_call_event_check(text, strlen(text), why, sizeof(why));
    if (ev != NULL || strstr(why, part) == NULL)
        fprintf(stderr, "expected refusal with \"%s\", got \"%s\" for %s\n", part, why, text);
    assert_null(ev);
    assert_non_null(strstr(why, part));
}

#define ENV(type, data)                                                                            \
    "{\"id\":\"evt_1\",\"type\":\"" type "\",\"created_at\":\"2026-11-22T03:30:00.123Z\","         \
    "\"org_id\":\"org_1\",\"data\":" data "}"

static void
test_event_check(void **state)
{
    (void) state;
    json_t *ev = event(ENV("call.ended", "{\"call_id\":\"call_1\",\"reason\":\"x\"}"));
    assert_non_null(ev);
    json_decref(ev);
    ev = event(ENV("call.transcript",
                   "{\"call_id\":\"call_1\",\"turn\":{\"index\":3,\"role\":\"caller\"}}"));
    assert_non_null(ev);
    json_decref(ev);
    ev = event(ENV("call.interrupted", "{\"call_id\":\"call_1\",\"turn_index\":0}"));
    assert_non_null(ev);
    json_decref(ev);

    refused("", "size");
    refused("[1]", "object");
    refused("{\"id\":1}", "id and org_id");
    refused(ENV("agent.created", "{\"call_id\":\"call_1\"}"), "type");
    refused(ENV("call.ended", "{\"call_id\":\"call 1\"}"), "call_id");
    refused(ENV("call.ended", "{}"), "call_id");
    refused(ENV("call.ended", "[]"), "call_id");
    refused(
        ENV("call.transcript", "{\"call_id\":\"c\",\"turn\":{\"index\":-1,\"role\":\"agent\"}}"),
        "turn");
    refused(ENV("call.transcript", "{\"call_id\":\"c\",\"turn\":{\"index\":1,\"role\":\"bot\"}}"),
            "turn");
    refused(ENV("call.interrupted", "{\"call_id\":\"c\",\"turn_index\":\"1\"}"), "turn_index");
    refused("{\"id\":\"evt_1\",\"type\":\"call.ended\",\"created_at\":\"now\","
            "\"org_id\":\"org_1\",\"data\":{\"call_id\":\"c\"}}",
            "created_at");
    refused("{\"id\":\"evt_1\",\"id\":\"evt_2\",\"type\":\"call.ended\"}", "object");
    char *huge = malloc(RG_CALL_EVENT_MAX_BYTES + 2);
    memset(huge, ' ', RG_CALL_EVENT_MAX_BYTES + 1);
    huge[RG_CALL_EVENT_MAX_BYTES + 1] = '\0';
    refused(huge, "size");
    free(huge);
}

static void
test_stream_seq(void **state)
{
    (void) state;
    assert_int_equal(rg_js_stream_seq("$JS.ACK.VOXI_EVENTS.registry_calls.1.42.7.1700000000.0"),
                     42);
    assert_int_equal(
        rg_js_stream_seq("$JS.ACK.hub.ACCHASH.VOXI_EVENTS.registry_calls.2.99.8.170000.3.tok"), 99);
    assert_int_equal(rg_js_stream_seq("_INBOX.x"), 0);
    assert_int_equal(rg_js_stream_seq("$JS.ACK.a.b.c"), 0);
    assert_int_equal(rg_js_stream_seq("$JS.ACK.S.C.1.x.7.1.0"), 0);
    assert_int_equal(rg_js_stream_seq(NULL), 0);
}

static void
test_prices_parse(void **state)
{
    (void) state;
    rg_prices_t p;
    char why[160];
    assert_int_equal(rg_prices_parse(NULL, &p, why, sizeof(why)), LC_OK);
    assert_string_equal(p.currency, "USD");
    assert_true(p.telephony_per_min == 0);
    assert_int_equal(rg_prices_parse(" telephony_per_min=0.01, stt_per_min=0.006,"
                                     "llm_per_1k_prompt_tokens=0.0005,"
                                     "llm_per_1k_completion_tokens=0.0015,"
                                     "tts_per_1k_chars=0.015,currency=EUR,",
                                     &p, why, sizeof(why)),
                     LC_OK);
    assert_true(fabs(p.telephony_per_min - 0.01) < 1e-12);
    assert_true(fabs(p.tts_per_1k_chars - 0.015) < 1e-12);
    assert_string_equal(p.currency, "EUR");

    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"telephony_per_min", "key=value"}, {"phone_per_min=1", "unknown key"},
        {"stt_per_min=abc", "number"},      {"stt_per_min=", "number"},
        {"stt_per_min=-1", "number"},       {"stt_per_min=nan", "number"},
        {"stt_per_min=1e9", "number"},      {"stt_per_min=1,stt_per_min=2", "twice"},
        {"currency=usd", "currency"},       {"currency=USD,currency=EUR", "twice"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(rg_prices_parse(bad[i].text, &p, why, sizeof(why)), LC_ERR_CONFIG);
        if (strstr(why, bad[i].why) == NULL)
            fprintf(stderr, "%s: %s\n", bad[i].text, why);
        assert_non_null(strstr(why, bad[i].why));
    }
}

static double
member(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static void
test_cost(void **state)
{
    (void) state;
    rg_prices_t p;
    char why[160];
    assert_int_equal(rg_prices_parse("telephony_per_min=0.01,stt_per_min=0.006,"
                                     "llm_per_1k_prompt_tokens=0.0005,"
                                     "llm_per_1k_completion_tokens=0.0015,tts_per_1k_chars=0.015",
                                     &p, why, sizeof(why)),
                     LC_OK);
    json_t *usage = parse("{\"stt_seconds\":90,\"llm_prompt_tokens\":2000,"
                          "\"llm_completion_tokens\":500,\"tts_characters\":1200}");
    json_t *cost = rg_prices_cost(&p, 150000, usage); /* 2.5 minutes */
    assert_string_equal(json_string_value(json_object_get(cost, "currency")), "USD");
    assert_true(fabs(member(cost, "telephony") - 0.025) < 1e-9);
    assert_true(fabs(member(cost, "stt") - 0.009) < 1e-9);
    assert_true(fabs(member(cost, "llm") - (0.001 + 0.00075)) < 1e-9);
    assert_true(fabs(member(cost, "tts") - 0.018) < 1e-9);
    assert_true(fabs(member(cost, "total") - 0.05375) < 1e-9);
    json_decref(cost);
    /* not answered, no usage: nothing; garbage usage values count as 0 */
    json_t *odd = parse("{\"stt_seconds\":-5,\"llm_prompt_tokens\":\"many\"}");
    cost = rg_prices_cost(&p, -1, odd);
    assert_true(member(cost, "total") == 0);
    json_decref(cost);
    cost = rg_prices_cost(&p, 0, NULL);
    assert_true(member(cost, "total") == 0);
    json_decref(cost);
    json_decref(odd);
    json_decref(usage);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_normalises_a_valid_body),
        cmocka_unit_test(test_create_reports_every_problem),
        cmocka_unit_test(test_to_syntax),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_event_check),
        cmocka_unit_test(test_stream_seq),
        cmocka_unit_test(test_prices_parse),
        cmocka_unit_test(test_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
