/*
 * The OpenAI chat completions format: the request body, chunk decoding (deltas, tool-call
 * fragments assembled per index, finish reason, usage chunk with empty choices, [DONE]),
 * malformed input, and error mapping that never repeats the vendor's message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/providers/pv_openai.h"

typedef struct {
    char log[4096];
    size_t len;
} rec_t;

static void
rec(rec_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->len += (size_t) vsnprintf(r->log + r->len, sizeof(r->log) - r->len, fmt, ap);
    va_end(ap);
}

static void
on_delta(void *arg, const char *text)
{
    rec(arg, "D[%s]", text);
}

static void
on_tool_delta(void *arg, uint32_t index, const char *id, const char *name, const char *frag)
{
    rec(arg, "TD%u[%s|%s|%s]", index, id, name, frag);
}

static void
on_tool_call(void *arg, uint32_t index, const char *id, const char *name, const char *args)
{
    rec(arg, "TC%u[%s|%s|%s]", index, id, name, args);
}

static const pv_openai_sink_t sink = {on_delta, on_tool_delta, on_tool_call};

#define CHUNK(choices)                                                                             \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","   \
    "\"choices\":" choices ",\"usage\":null}"

static void
feed(pv_openai_stream_t *st, rec_t *r, const char *data)
{
    assert_int_equal(pv_openai_stream_data(st, data, strlen(data), &sink, r), LC_OK);
}

static void
test_text_stream(void **state)
{
    (void) state;
    rec_t r = {0};
    pv_openai_stream_t st;
    pv_openai_stream_init(&st);
    feed(&st, &r,
         CHUNK("[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
               "\"finish_reason\":null}]"));
    feed(&st, &r, CHUNK("[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]"));
    feed(&st, &r, CHUNK("[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]"));
    feed(&st, &r, CHUNK("[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]"));
    feed(&st, &r,
         "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
         "\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,"
         "\"total_tokens\":14}}");
    feed(&st, &r, "[DONE]");
    assert_string_equal(r.log, "D[Hel]D[lo]");
    assert_string_equal(st.finish_reason, "stop");
    assert_true(st.usage_seen && st.done_seen);
    assert_int_equal(st.prompt_tokens, 12);
    assert_int_equal(st.completion_tokens, 2);
    pv_openai_stream_free(&st);
}

static void
test_tool_calls(void **state)
{
    (void) state;
    rec_t r = {0};
    pv_openai_stream_t st;
    pv_openai_stream_init(&st);
    feed(&st, &r,
         CHUNK("[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
               "[{\"index\":0,\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":"
               "\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]"));
    feed(&st, &r,
         CHUNK("[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
               "\"arguments\":\"{\\\"ci\"}}]},\"finish_reason\":null}]"));
    feed(&st, &r,
         CHUNK("[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_B\","
               "\"type\":\"function\",\"function\":{\"name\":\"t2\",\"arguments\":\"{}\"}}]},"
               "\"finish_reason\":null}]"));
    feed(&st, &r,
         CHUNK("[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
               "\"arguments\":\"ty\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]"));
    assert_string_equal(r.log, "TD0[call_A|get_weather|]TD0[||{\"ci]TD1[call_B|t2|{}]"
                               "TD0[||ty\":\"Paris\"}]");
    r.len = 0;
    r.log[0] = '\0';
    feed(&st, &r, CHUNK("[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]"));
    assert_string_equal(r.log, "TC0[call_A|get_weather|{\"city\":\"Paris\"}]TC1[call_B|t2|{}]");
    /* emitted once */
    pv_openai_stream_finish(&st, &sink, &r);
    assert_string_equal(r.log, "TC0[call_A|get_weather|{\"city\":\"Paris\"}]TC1[call_B|t2|{}]");
    pv_openai_stream_free(&st);
}

static void
test_malformed(void **state)
{
    (void) state;
    rec_t r = {0};
    pv_openai_stream_t st;
    pv_openai_stream_init(&st);
    const char *bad[] = {"{not json", "[1,2]", "\"x\""};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(pv_openai_stream_data(&st, bad[i], strlen(bad[i]), &sink, &r),
                         LC_ERR_PROTOCOL);
    const char *far = CHUNK("[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":99,\"function\":{"
                            "\"arguments\":\"x\"}}]}}]");
    assert_int_equal(pv_openai_stream_data(&st, far, strlen(far), &sink, &r), LC_ERR_TOO_LARGE);
    const char *noidx =
        CHUNK("[{\"index\":0,\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"x\"}}]}}]");
    assert_int_equal(pv_openai_stream_data(&st, noidx, strlen(noidx), &sink, &r), LC_ERR_PROTOCOL);
    pv_openai_stream_free(&st);
}

static void
test_request_body(void **state)
{
    (void) state;
    Voxi__V1__LlmConfig cfg = VOXI__V1__LLM_CONFIG__INIT;
    Voxi__V1__LlmMessage m0 = VOXI__V1__LLM_MESSAGE__INIT, m1 = VOXI__V1__LLM_MESSAGE__INIT,
                         m2 = VOXI__V1__LLM_MESSAGE__INIT;
    Voxi__V1__LlmToolCall tc = VOXI__V1__LLM_TOOL_CALL__INIT;
    Voxi__V1__LlmTool tool = VOXI__V1__LLM_TOOL__INIT;
    m0.role = "user";
    m0.content = "weather?";
    tc.id = "call_1";
    tc.name = "get_weather";
    tc.arguments_json = "{\"city\":\"Paris\"}";
    Voxi__V1__LlmToolCall *tcs[] = {&tc};
    m1.role = "assistant";
    m1.tool_calls = tcs;
    m1.n_tool_calls = 1;
    m2.role = "tool";
    m2.tool_call_id = "call_1";
    m2.content = "sunny";
    Voxi__V1__LlmMessage *msgs[] = {&m0, &m1, &m2};
    cfg.messages = msgs;
    cfg.n_messages = 3;
    tool.name = "get_weather";
    tool.parameters_json = "{\"type\":\"object\"}";
    Voxi__V1__LlmTool *tools[] = {&tool};
    cfg.tools = tools;
    cfg.n_tools = 1;
    char *body = NULL;
    char err[160];
    assert_int_equal(pv_openai_request_body(&cfg, "gpt-x", &body, err, sizeof(err)), LC_OK);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "gpt-x");
    assert_true(json_is_true(json_object_get(j, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
    json_t *msgs_j = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs_j), 3);
    json_t *a = json_array_get(msgs_j, 1);
    assert_true(json_is_null(json_object_get(a, "content")));
    json_t *call = json_array_get(json_object_get(a, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(call, "type")), "function");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(call, "function"), "arguments")),
        "{\"city\":\"Paris\"}");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(msgs_j, 2), "tool_call_id")), "call_1");
    json_t *t = json_array_get(json_object_get(j, "tools"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "type")), "function");
    assert_true(json_is_object(json_object_get(json_object_get(t, "function"), "parameters")));
    json_decref(j);
    free(body);

    tool.parameters_json = "[1]";
    assert_int_equal(pv_openai_request_body(&cfg, "gpt-x", &body, err, sizeof(err)),
                     LC_ERR_INVALID);
    assert_null(body);
    tool.parameters_json = "";
    m0.role = "wizard";
    assert_int_equal(pv_openai_request_body(&cfg, "gpt-x", &body, err, sizeof(err)),
                     LC_ERR_INVALID);
    cfg.n_messages = 0;
    assert_int_equal(pv_openai_request_body(&cfg, "gpt-x", &body, err, sizeof(err)),
                     LC_ERR_INVALID);
}

static void
test_errors(void **state)
{
    (void) state;
    char msg[200];
    const char *e401 = "{\"error\":{\"message\":\"Incorrect API key provided: sk-ab***yz.\","
                       "\"type\":\"invalid_request_error\",\"param\":null,"
                       "\"code\":\"invalid_api_key\"}}";
    assert_int_equal(pv_openai_error(401, e401, strlen(e401), msg, sizeof(msg)),
                     LC_ERR_UNAUTHORIZED);
    assert_non_null(strstr(msg, "invalid_api_key"));
    assert_null(strstr(msg, "sk-"));
    assert_int_equal(pv_openai_error(429, "", 0, msg, sizeof(msg)), LC_ERR_RATE_LIMITED);
    assert_int_equal(pv_openai_error(400, "x", 1, msg, sizeof(msg)), LC_ERR_INVALID);
    assert_int_equal(pv_openai_error(503, "<html>", 6, msg, sizeof(msg)), LC_ERR_UNAVAILABLE);
    assert_string_equal(msg, "the LLM vendor answered HTTP 503");
    const char *ctl = "{\"error\":{\"type\":\"a\\nb\",\"code\":null}}";
    pv_openai_error(500, ctl, strlen(ctl), msg, sizeof(msg));
    assert_null(strchr(msg, '\n'));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_stream), cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_malformed),   cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
