/*
 * Unit tests for lc_nats against a real nats-server (JetStream on) at $VOXI_TEST_NATS_URL,
 * which scripts/testenv.sh provides. Every wait is for an event; a 10 s guard timer only
 * turns a hang into a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "lc_time.h"

typedef struct {
    uv_loop_t loop;
    uv_timer_t guard;
    lc_nats_t *nc;
    bool guard_fired;
    bool connected;
    bool closed;
    /* results */
    int replies;
    lc_status_t last_status;
    char last_data[256];
    int received;
    uint64_t seq[4];
    bool dup[4];
    int acks;
    char prefix[40];
} fx_t;

static const char *
nats_url(void)
{
    const char *url = getenv("VOXI_TEST_NATS_URL");
    if (url == NULL) {
        fprintf(stderr, "VOXI_TEST_NATS_URL is not set: run through scripts/testenv.sh\n");
        fail();
    }
    return url;
}

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

/* Runs the loop until *flag is true (or the guard fires: then the test fails). */
static void
run_until(fx_t *fx, bool *flag)
{
    while (!*flag && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_false(fx->guard_fired);
}

static void
run_until_count(fx_t *fx, int *counter, int want)
{
    while (*counter < want && !fx->guard_fired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_false(fx->guard_fired);
}

static int
setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    uv_loop_init(&fx->loop);
    lc_nats_loop_init(&fx->loop);
    uv_timer_init(&fx->loop, &fx->guard);
    fx->guard.data = fx;
    uv_timer_start(&fx->guard, on_guard, 10000, 0);
    uv_unref((uv_handle_t *) &fx->guard);
    lc_id_new("t", fx->prefix, sizeof(fx->prefix)); /* unique subjects per test */
    lc_nats_opts_t opts = {
        .url = nats_url(), .name = "test", .state_cb = on_state, .state_arg = fx};
    assert_int_equal(lc_nats_connect(&fx->loop, &opts, &fx->nc), LC_OK);
    run_until(fx, &fx->connected);
    *state = fx;
    return 0;
}

static void
on_closed(void *arg)
{
    ((fx_t *) arg)->closed = true;
}

static int
teardown(void **state)
{
    fx_t *fx = *state;
    lc_nats_close(fx->nc, on_closed, fx);
    uv_close((uv_handle_t *) &fx->guard, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_true(fx->closed);
    lc_nats_destroy(fx->nc);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

static void
echo_upper(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    fx_t *fx = arg;
    char out[256];
    size_t n = lc_nats_msg_len(msg) < sizeof(out) ? lc_nats_msg_len(msg) : sizeof(out);
    for (size_t i = 0; i < n; i++)
        out[i] = (char) (((const char *) lc_nats_msg_data(msg))[i] & ~0x20);
    fx->received++;
    lc_nats_respond(nc, lc_nats_msg_reply(msg), out, n);
}

static void
on_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    fx_t *fx = arg;
    fx->replies++;
    fx->last_status = status;
    fx->last_data[0] = '\0';
    if (reply) {
        size_t n = lc_nats_msg_len(reply);
        if (n >= sizeof(fx->last_data))
            n = sizeof(fx->last_data) - 1;
        memcpy(fx->last_data, lc_nats_msg_data(reply), n);
        fx->last_data[n] = '\0';
    }
}

static void
test_request_reply(void **state)
{
    fx_t *fx = *state;
    char subject[64];
    snprintf(subject, sizeof(subject), "%s.echo", fx->prefix);
    assert_int_equal(lc_nats_subscribe(fx->nc, subject, "echoers", echo_upper, fx, NULL), LC_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(lc_nats_request(fx->nc, subject, "abc", 3, 5000, on_reply, fx, NULL),
                         LC_OK);
    run_until_count(fx, &fx->replies, 50);
    assert_int_equal(fx->last_status, LC_OK);
    assert_string_equal(fx->last_data, "ABC");
    assert_int_equal(fx->received, 50);
    assert_int_equal(lc_nats_pending_requests(fx->nc), 0);
}

static void
test_no_responders(void **state)
{
    fx_t *fx = *state;
    char subject[64];
    snprintf(subject, sizeof(subject), "%s.nobody", fx->prefix);
    int64_t start = lc_time_mono_ms();
    assert_int_equal(lc_nats_request(fx->nc, subject, "x", 1, 8000, on_reply, fx, NULL), LC_OK);
    run_until_count(fx, &fx->replies, 1);
    assert_int_equal(fx->last_status, LC_ERR_NO_RESPONDERS);
    /* answered by the server, not by the 8 s deadline */
    assert_true(lc_time_mono_ms() - start < 8000);
}

static void
silent(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    (void) msg;
    ((fx_t *) arg)->received++;
}

static void
test_timeout_and_cancel(void **state)
{
    fx_t *fx = *state;
    char subject[64];
    snprintf(subject, sizeof(subject), "%s.silent", fx->prefix);
    assert_int_equal(lc_nats_subscribe(fx->nc, subject, NULL, silent, fx, NULL), LC_OK);
    uint64_t id = 0;
    assert_int_equal(lc_nats_request(fx->nc, subject, "a", 1, 50, on_reply, fx, &id), LC_OK);
    lc_nats_request_cancel(fx->nc, id); /* never called back */
    assert_int_equal(lc_nats_request(fx->nc, subject, "b", 1, 50, on_reply, fx, NULL), LC_OK);
    run_until_count(fx, &fx->replies, 1);
    run_until_count(fx, &fx->received, 2);
    assert_int_equal(fx->replies, 1);
    assert_int_equal(fx->last_status, LC_ERR_TIMEOUT);
    assert_int_equal(lc_nats_pending_requests(fx->nc), 0);
}

static void
count_msg(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    (void) msg;
    ((fx_t *) arg)->received++;
}

static void
test_unsubscribe_stops_delivery(void **state)
{
    fx_t *fx = *state;
    char a[64], b[64];
    snprintf(a, sizeof(a), "%s.a", fx->prefix);
    snprintf(b, sizeof(b), "%s.b", fx->prefix);
    lc_nats_sub_t *sub_a;
    assert_int_equal(lc_nats_subscribe(fx->nc, a, NULL, count_msg, fx, &sub_a), LC_OK);
    assert_int_equal(lc_nats_subscribe(fx->nc, b, NULL, echo_upper, fx, NULL), LC_OK);
    assert_int_equal(lc_nats_publish(fx->nc, a, "1", 1), LC_OK);
    run_until_count(fx, &fx->received, 1);
    lc_nats_unsubscribe(fx->nc, sub_a);
    assert_int_equal(lc_nats_publish(fx->nc, a, "2", 1), LC_OK);
    /* A round trip on b after the publish on a: the server handles both in order. */
    assert_int_equal(lc_nats_request(fx->nc, b, "x", 1, 5000, on_reply, fx, NULL), LC_OK);
    run_until_count(fx, &fx->replies, 1);
    assert_int_equal(fx->received, 2); /* the first on a, and the echo on b; not "2" on a */
}

static void
on_ack(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    fx_t *fx = arg;
    assert_int_equal(status, LC_OK);
    fx->seq[fx->acks] = seq;
    fx->dup[fx->acks] = duplicate;
    fx->acks++;
}

static void
test_jetstream_dedup(void **state)
{
    fx_t *fx = *state;
    char stream[64], subjects[64], subject[80];
    snprintf(stream, sizeof(stream), "S%s", fx->prefix);
    snprintf(subjects, sizeof(subjects), "%s.ev.>", fx->prefix);
    snprintf(subject, sizeof(subject), "%s.ev.call.ended", fx->prefix);
    assert_int_equal(
        lc_nats_js_ensure_stream(fx->nc, stream, subjects, 3600, 120, 5000, on_ack, fx), LC_OK);
    run_until_count(fx, &fx->acks, 1);
    /* ensuring again with another configuration updates it instead of failing */
    assert_int_equal(
        lc_nats_js_ensure_stream(fx->nc, stream, subjects, 7200, 120, 5000, on_ack, fx), LC_OK);
    run_until_count(fx, &fx->acks, 2);
    fx->acks = 0;
    assert_int_equal(lc_nats_js_publish(fx->nc, subject, "evt_1", "{}", 2, 5000, on_ack, fx),
                     LC_OK);
    run_until_count(fx, &fx->acks, 1);
    assert_int_equal(lc_nats_js_publish(fx->nc, subject, "evt_1", "{}", 2, 5000, on_ack, fx),
                     LC_OK);
    run_until_count(fx, &fx->acks, 2);
    assert_int_equal(lc_nats_js_publish(fx->nc, subject, "evt_2", "{}", 2, 5000, on_ack, fx),
                     LC_OK);
    run_until_count(fx, &fx->acks, 3);
    assert_false(fx->dup[0]);
    assert_true(fx->dup[1]);
    assert_int_equal(fx->seq[1], fx->seq[0]);
    assert_false(fx->dup[2]);
    assert_int_equal(fx->seq[2], fx->seq[0] + 1);
    assert_int_equal(lc_nats_js_publish(fx->nc, subject, "", "{}", 2, 5000, on_ack, fx),
                     LC_ERR_INVALID);
}

static void
test_close_cancels_pending(void **state)
{
    fx_t *fx = *state;
    char subject[64];
    snprintf(subject, sizeof(subject), "%s.slow", fx->prefix);
    assert_int_equal(lc_nats_subscribe(fx->nc, subject, NULL, silent, fx, NULL), LC_OK);
    assert_int_equal(lc_nats_request(fx->nc, subject, "a", 1, 60000, on_reply, fx, NULL), LC_OK);
    run_until_count(fx, &fx->received, 1);
    lc_nats_close(fx->nc, on_closed, fx);
    assert_int_equal(fx->replies, 1);
    assert_int_equal(fx->last_status, LC_ERR_CANCELLED);
    assert_int_equal(lc_nats_request(fx->nc, subject, "a", 1, 100, on_reply, fx, NULL),
                     LC_ERR_UNAVAILABLE);
    /* teardown finishes the close and checks the loop ends with no live handles */
}

static void
test_unreachable_server(void **state)
{
    (void) state;
    fx_t fx = {0};
    uv_loop_init(&fx.loop);
    lc_nats_loop_init(&fx.loop);
    lc_nats_opts_t opts = {.url = "nats://127.0.0.1:1", .name = "test"};
    assert_int_equal(lc_nats_connect(&fx.loop, &opts, &fx.nc), LC_OK);
    uv_run(&fx.loop, UV_RUN_NOWAIT); /* first attempt fails: port 1 refuses */
    assert_false(lc_nats_connected(fx.nc));
    assert_int_equal(lc_nats_request(fx.nc, "x", "a", 1, 100, on_reply, &fx, NULL),
                     LC_ERR_UNAVAILABLE);
    assert_int_equal(lc_nats_publish(fx.nc, "x", "a", 1), LC_ERR_UNAVAILABLE);
    lc_nats_close(fx.nc, on_closed, &fx);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_true(fx.closed);
    lc_nats_destroy(fx.nc);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
}

int
main(void)
{
    lc_log_init("test_nats", LC_LOG_WARN, LC_LOG_FMT_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_responders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsubscribe_stops_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jetstream_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_pending, setup, teardown),
        cmocka_unit_test(test_unreachable_server),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    lc_nats_library_shutdown();
    return failed;
}
