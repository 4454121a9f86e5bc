/* Unit tests: the flow engine (md_flow): say -> menu by digit and by keyword, no-input and
 * no-match prompts with retries and the fallback, listen storing a variable, webhook results
 * in variables and on_error, transfer and hangup messages, {{variable}} interpolation, the
 * step limit against say loops, and keyword matching on word boundaries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/media/md_flow.h"

typedef struct {
    char log[8192]; /* every op, one per line */
    int listens;
    char last_say[1024];
} rec_t;

static void
logf_(rec_t *r, const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(r->log);
    snprintf(r->log + n, sizeof(r->log) - n, fmt, a, b);
}

static void
op_say(void *arg, const char *text)
{
    rec_t *r = arg;
    snprintf(r->last_say, sizeof(r->last_say), "%s", text);
    logf_(r, "say:%s%s\n", text, "");
}

static void
op_listen(void *arg, const char *const *phrases, int timeout_ms)
{
    rec_t *r = arg;
    (void) timeout_ms;
    char p[256] = "";
    for (size_t i = 0; phrases[i]; i++) {
        strcat(p, phrases[i]);
        strcat(p, ",");
    }
    r->listens++;
    logf_(r, "listen:%s%s\n", p, "");
}

static void
op_stop(void *arg)
{
    logf_(arg, "stop%s%s\n", "", "");
}

static void
op_hangup(void *arg, const char *reason)
{
    logf_(arg, "hangup:%s%s\n", reason, "");
}

static void
op_transfer(void *arg, const char *to)
{
    logf_(arg, "transfer:%s%s\n", to, "");
}

static void
op_webhook(void *arg, const char *url, const char *args, int timeout_ms)
{
    (void) timeout_ms;
    logf_(arg, "webhook:%s %s\n", url, args);
}

static md_flow_t *
make(const char *json, rec_t *r, json_t *vars)
{
    json_error_t err;
    json_t *engine = json_loads(json, 0, &err);
    assert_non_null(engine);
    md_flow_ops_t ops = {.say = op_say,
                         .listen = op_listen,
                         .stop_listening = op_stop,
                         .hangup = op_hangup,
                         .transfer = op_transfer,
                         .webhook = op_webhook,
                         .arg = r};
    md_flow_t *f = NULL;
    assert_int_equal(md_flow_create(engine, vars, &ops, &f), LC_OK);
    /* the engine must outlive the flow: keep it on the flow's variables' side */
    json_object_set_new(md_flow_variables(f), "__engine_keepalive", engine);
    return f;
}

static const char *demo =
    "{\"type\":\"flow\",\"start\":\"hello\",\"nodes\":["
    "{\"id\":\"hello\",\"type\":\"say\",\"text\":\"Hi {{caller_number}}.\",\"next\":\"menu\"},"
    "{\"id\":\"menu\",\"type\":\"menu\",\"prompt\":\"Say sales or support, or press 1 or 2.\","
    " \"choices\":[{\"keywords\":[\"sales\"],\"digit\":\"1\",\"next\":\"sales\"},"
    "              {\"keywords\":[\"support\",\"help\"],\"digit\":\"2\",\"next\":\"support\"}],"
    " \"retries\":1,\"no_input_prompt\":\"Are you there?\",\"no_match_prompt\":\"Sorry?\","
    " \"timeout_ms\":3000,\"fallback\":\"bye\"},"
    "{\"id\":\"sales\",\"type\":\"say\",\"text\":\"Sales here.\",\"next\":\"bye\"},"
    "{\"id\":\"support\",\"type\":\"say\",\"text\":\"Support here.\",\"next\":\"bye\"},"
    "{\"id\":\"bye\",\"type\":\"hangup\",\"message\":\"Goodbye.\"}]}";

static void
test_menu_by_digit(void **state)
{
    (void) state;
    rec_t r = {0};
    md_flow_t *f = make(demo, &r, json_pack("{s:s}", "caller_number", "555"));
    md_flow_start(f);
    assert_string_equal(r.log, "say:Hi 555.\n");
    md_flow_on_input(f, NULL, '2'); /* not listening yet: ignored */
    md_flow_on_said(f);
    assert_true(md_flow_listening(f));
    assert_non_null(strstr(r.log, "listen:sales,support,help,\n"));
    md_flow_on_input(f, NULL, '2');
    assert_string_equal(r.last_say, "Support here.");
    md_flow_on_said(f);
    assert_string_equal(r.last_say, "Goodbye.");
    assert_false(md_flow_done(f));
    md_flow_on_said(f);
    assert_true(md_flow_done(f));
    assert_non_null(strstr(r.log, "hangup:flow_hangup\n"));
    md_flow_destroy(f);
}

static void
test_menu_by_keyword_and_retries(void **state)
{
    (void) state;
    rec_t r = {0};
    md_flow_t *f = make(demo, &r, NULL);
    md_flow_start(f);
    md_flow_on_said(f);
    md_flow_on_input(f, "", 0); /* noise: nothing */
    assert_true(md_flow_listening(f));
    md_flow_on_input(f, "banana", 0);
    assert_string_equal(r.last_say, "Sorry?");
    md_flow_on_input(f, "I need some HELP please", 0);
    assert_string_equal(r.last_say, "Support here.");
    md_flow_destroy(f);

    rec_t r2 = {0};
    f = make(demo, &r2, NULL);
    md_flow_start(f);
    md_flow_on_said(f);
    md_flow_on_timeout(f);
    assert_string_equal(r2.last_say, "Are you there?");
    md_flow_on_timeout(f); /* retries 1: the second goes to the fallback */
    assert_string_equal(r2.last_say, "Goodbye.");
    assert_false(md_flow_listening(f));
    md_flow_destroy(f);
}

static void
test_listen_webhook_transfer(void **state)
{
    (void) state;
    const char *flow =
        "{\"type\":\"flow\",\"start\":\"ask\",\"nodes\":["
        "{\"id\":\"ask\",\"type\":\"listen\",\"prompt\":\"Your order number?\","
        " \"variable\":\"order\",\"next\":\"look\"},"
        "{\"id\":\"look\",\"type\":\"webhook\",\"url\":\"https://x.test/o/{{order}}\","
        " \"result_variable\":\"res\",\"next\":\"tell\",\"on_error\":\"oops\"},"
        "{\"id\":\"tell\",\"type\":\"say\",\"text\":\"Status {{res_status}}, {{res.n}}.\","
        " \"next\":\"xfer\"},"
        "{\"id\":\"oops\",\"type\":\"hangup\"},"
        "{\"id\":\"xfer\",\"type\":\"transfer\",\"to\":\"sip:agent@x.test\",\"message\":\"Hold.\"}]"
        "}";
    rec_t r = {0};
    md_flow_t *f = make(flow, &r, NULL);
    md_flow_start(f);
    assert_string_equal(r.last_say, "Your order number?");
    md_flow_on_input(f, "four two", 0);
    assert_non_null(strstr(r.log, "webhook:https://x.test/o/four two {"));
    assert_non_null(strstr(r.log, "\"order\":\"four two\""));
    md_flow_on_webhook(f, true, "{\"status\":\"shipped\",\"n\":3}");
    assert_string_equal(r.last_say, "Status shipped, 3.");
    md_flow_on_said(f);
    assert_string_equal(r.last_say, "Hold.");
    md_flow_on_said(f);
    assert_non_null(strstr(r.log, "transfer:sip:agent@x.test\n"));
    assert_true(md_flow_done(f));
    md_flow_destroy(f);

    rec_t r2 = {0};
    f = make(flow, &r2, NULL);
    md_flow_start(f);
    md_flow_on_timeout(f); /* no input: "" and on */
    md_flow_on_webhook(f, false, NULL);
    assert_non_null(strstr(r2.log, "hangup:flow_hangup\n"));
    md_flow_destroy(f);
}

static void
test_step_limit(void **state)
{
    (void) state;
    const char *flow = "{\"type\":\"flow\",\"start\":\"a\",\"nodes\":["
                       "{\"id\":\"a\",\"type\":\"say\",\"text\":\"a\",\"next\":\"b\"},"
                       "{\"id\":\"b\",\"type\":\"say\",\"text\":\"b\",\"next\":\"a\"}]}";
    rec_t r = {0};
    md_flow_t *f = make(flow, &r, NULL);
    md_flow_start(f);
    for (int i = 0; i < 200 && !md_flow_done(f); i++)
        md_flow_on_said(f);
    assert_true(md_flow_done(f));
    assert_non_null(strstr(r.log, "hangup:flow_loop\n"));
    md_flow_destroy(f);
}

static void
test_interpolate_and_keywords(void **state)
{
    (void) state;
    json_t *vars =
        json_pack("{s:s, s:i, s:b, s:{s:s}}", "name", "Ada", "n", 7, "ok", 1, "o", "k", "v");
    char out[64];
    md_flow_interpolate("Hi {{ name }}, {{n}} {{ok}} {{o.k}} {{missing}}!{{", vars, out,
                        sizeof(out));
    assert_string_equal(out, "Hi Ada, 7 true v !{{");
    md_flow_interpolate("{{o}}", vars, out, sizeof(out));
    assert_string_equal(out, "{\"k\":\"v\"}");
    char small[8];
    md_flow_interpolate("{{name}}{{name}}{{name}}", vars, small, sizeof(small));
    assert_string_equal(small, "AdaAdaA");
    json_decref(vars);
    assert_true(md_flow_keyword_match("I want Sales.", "sales"));
    assert_false(md_flow_keyword_match("wholesales", "sales"));
    assert_true(md_flow_keyword_match("tech support now", "tech support"));
    assert_false(md_flow_keyword_match("", "x"));
}

static void
test_bad_engine(void **state)
{
    (void) state;
    json_t *e = json_loads("{\"type\":\"flow\"}", 0, NULL);
    md_flow_ops_t ops = {0};
    md_flow_t *f = NULL;
    assert_int_equal(md_flow_create(e, NULL, &ops, &f), LC_ERR_INVALID);
    assert_null(f);
    json_decref(e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_menu_by_digit),
        cmocka_unit_test(test_menu_by_keyword_and_retries),
        cmocka_unit_test(test_listen_webhook_transfer),
        cmocka_unit_test(test_step_limit),
        cmocka_unit_test(test_interpolate_and_keywords),
        cmocka_unit_test(test_bad_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
