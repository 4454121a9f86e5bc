/*
 * Unit tests for lc_events against a real nats-server (JetStream on) at $VOXI_TEST_NATS_URL:
 * the stream is ensured, an event has the documented envelope and subject, the id is
 * reported, bad subject tokens are refused and counted, and in-flight publishes drain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_events.h"
#include "lc_log.h"
#include "lc_time.h"

typedef struct {
    uv_loop_t loop;
    uv_timer_t guard;
    lc_nats_t *nc;
    lc_metrics_t *metrics;
    lc_events_t *ev;
    bool guard_fired, connected, closed;
    int received;
    char last_subject[200];
    char last_data[1024];
    char org[40];
} fx_t;

static void
on_state(void *arg, bool connected)
{
    ((fx_t *) arg)->connected = connected;
}

static void
on_guard(uv_timer_t *t)
{
    ((fx_t *) t->data)->guard_fired = true;
}

static void
on_closed(void *arg)
{
    ((fx_t *) arg)->closed = true;
}

static void
on_event(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    fx_t *fx = arg;
    size_t n = lc_nats_msg_len(msg);
    assert_true(n < sizeof(fx->last_data));
    memcpy(fx->last_data, lc_nats_msg_data(msg), n);
    fx->last_data[n] = '\0';
    snprintf(fx->last_subject, sizeof(fx->last_subject), "%s", lc_nats_msg_subject(msg));
    fx->received++;
}

static bool
ready(fx_t *fx)
{
    return lc_events_ready(fx->ev);
}

static bool
nothing_inflight(fx_t *fx)
{
    return lc_events_inflight(fx->ev) == 0;
}

static void
run_until(fx_t *fx, bool (*cond)(fx_t *))
{
    while (!cond(fx) && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_false(fx->guard_fired);
}

static int
setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    const char *url = getenv("VOXI_TEST_NATS_URL");
    if (url == NULL) {
        fprintf(stderr, "VOXI_TEST_NATS_URL is not set: run through scripts/testenv.sh\n");
        fail();
    }
    uv_loop_init(&fx->loop);
    lc_nats_loop_init(&fx->loop);
    uv_timer_init(&fx->loop, &fx->guard);
    fx->guard.data = fx;
    uv_timer_start(&fx->guard, on_guard, 10000, 0);
    uv_unref((uv_handle_t *) &fx->guard);
    lc_nats_opts_t opts = {.url = url, .name = "test", .state_cb = on_state, .state_arg = fx};
    assert_int_equal(lc_nats_connect(&fx->loop, &opts, &fx->nc), LC_OK);
    while (!fx->connected && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_true(fx->connected);
    lc_id_new("org_", fx->org, sizeof(fx->org)); /* unique subjects per test */
    char subject[80];
    snprintf(subject, sizeof(subject), "voxi.events.%s.>", fx->org);
    assert_int_equal(lc_nats_subscribe(fx->nc, subject, NULL, on_event, fx, NULL), LC_OK);
    fx->metrics = lc_metrics_create(64);
    fx->ev = lc_events_create(&fx->loop, fx->nc, fx->metrics, "voxi_test_events_total", "help");
    run_until(fx, ready);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fx_t *fx = *state;
    lc_events_stop(fx->ev);
    lc_events_stop(fx->ev); /* idempotent */
    lc_nats_close(fx->nc, on_closed, fx);
    uv_close((uv_handle_t *) &fx->guard, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(fx->closed);
    lc_events_destroy(fx->ev);
    lc_nats_destroy(fx->nc);
    lc_metrics_destroy(fx->metrics);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

static double
counter(fx_t *fx, const char *outcome)
{
    lc_metric_t *m = lc_metrics_counter(fx->metrics, "voxi_test_events_total", "help", outcome);
    return lc_metric_value(m);
}

static void
test_publish_envelope(void **state)
{
    fx_t *fx = *state;
    char id[LC_EVENTS_ID_SIZE];
    lc_events_publish(fx->ev, fx->org, "call.ended", json_pack("{s:s}", "call_id", "c1"), id);
    assert_int_equal(strncmp(id, "evt_", 4), 0);
    assert_int_equal(lc_events_inflight(fx->ev), 1);
    run_until(fx, nothing_inflight);
    while (fx->received < 1 && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    char want_subject[100];
    snprintf(want_subject, sizeof(want_subject), "voxi.events.%s.call.ended", fx->org);
    assert_string_equal(fx->last_subject, want_subject);
    json_error_t err;
    json_t *ev = json_loads(fx->last_data, 0, &err);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "id")), id);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "call.ended");
    assert_string_equal(json_string_value(json_object_get(ev, "org_id")), fx->org);
    const char *created = json_string_value(json_object_get(ev, "created_at"));
    assert_non_null(created);
    assert_int_equal(strlen(created), 24); /* 2026-11-22T05:15:59.452Z */
    assert_int_equal(created[10], 'T');
    assert_int_equal(created[23], 'Z');
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"), "call_id")),
                        "c1");
    json_decref(ev);
    assert_true(counter(fx, "outcome=\"ok\"") == 1.0);
    /* NULL data is published as {} */
    lc_events_publish(fx->ev, fx->org, "agent.deleted", NULL, NULL);
    run_until(fx, nothing_inflight);
    while (fx->received < 2 && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    ev = json_loads(fx->last_data, 0, &err);
    assert_non_null(ev);
    assert_true(json_is_object(json_object_get(ev, "data")));
    assert_int_equal(json_object_size(json_object_get(ev, "data")), 0);
    json_decref(ev);
}

static void
test_bad_tokens_refused(void **state)
{
    fx_t *fx = *state;
    const char *bad_orgs[] = {"", "org.x", "org*", "org>", "org x", NULL};
    for (size_t i = 0; i < sizeof(bad_orgs) / sizeof(bad_orgs[0]); i++)
        lc_events_publish(fx->ev, bad_orgs[i], "call.ended", json_object(), NULL);
    const char *bad_types[] = {"", ".call", "call.", "call..ended", "call.*", "call >", NULL};
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++)
        lc_events_publish(fx->ev, fx->org, bad_types[i], json_object(), NULL);
    assert_int_equal(lc_events_inflight(fx->ev), 0);
    assert_true(counter(fx, "outcome=\"failed\"") == 13.0);
    assert_true(counter(fx, "outcome=\"ok\"") == 0.0);
}

int
main(void)
{
    lc_log_init("test_events", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_envelope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_tokens_refused, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    lc_nats_library_shutdown();
    return failed;
}
