/*
 * lc_metrics: exposition text, label handling, validation, bounds and concurrent updates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lc_log.h"
#include "lc_metrics.h"

static void
assert_render(const lc_metrics_t *reg, const char *expected)
{
    size_t len = 0;
    char *text = lc_metrics_render(reg, &len);
    assert_non_null(text);
    assert_string_equal(text, expected);
    assert_int_equal(len, strlen(expected));
    free(text);
}

static void
test_empty_registry(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    assert_render(reg, "");
    lc_metrics_destroy(reg);
    lc_metrics_destroy(NULL);
    size_t len = 99;
    char *text = lc_metrics_render(NULL, &len);
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    free(text);
}

static void
test_counter_without_labels(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    lc_metric_t *c = lc_metrics_counter(reg, "voxi_jobs_total", "Jobs done.", NULL);
    assert_false(lc_metric_is_noop(c));
    assert_render(reg, "# HELP voxi_jobs_total Jobs done.\n"
                       "# TYPE voxi_jobs_total counter\n"
                       "voxi_jobs_total 0\n");
    lc_metric_inc(c);
    lc_metric_inc(c);
    lc_metric_add(c, 40);
    assert_render(reg, "# HELP voxi_jobs_total Jobs done.\n"
                       "# TYPE voxi_jobs_total counter\n"
                       "voxi_jobs_total 42\n");
    /* fractional adds, and what a counter refuses */
    lc_metric_add(c, 0.5);
    lc_metric_add(c, -3);
    lc_metric_add(c, NAN);
    lc_metric_set(c, 7);
    lc_metric_dec(c);
    lc_metric_observe(c, 1);
    assert_true(lc_metric_value(c) == 42.5);
    assert_render(reg, "# HELP voxi_jobs_total Jobs done.\n"
                       "# TYPE voxi_jobs_total counter\n"
                       "voxi_jobs_total 42.5\n");
    lc_metrics_destroy(reg);
}

static void
test_counter_series_share_one_header(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    lc_metric_t *ok = lc_metrics_counter(reg, "voxi_ping_requests_total", "Pings answered.",
                                         "outcome=\"ok\",subject=\"voxi.auth.ping\"");
    /* labels given in another order, with blanks: the same series */
    lc_metric_t *ok2 = lc_metrics_counter(reg, "voxi_ping_requests_total", "ignored help",
                                          "subject=\"voxi.auth.ping\", outcome=\"ok\"");
    lc_metric_t *bad = lc_metrics_counter(reg, "voxi_ping_requests_total", "Pings answered.",
                                          "outcome=\"invalid\",subject=\"voxi.auth.ping\"");
    lc_metric_t *other = lc_metrics_counter(reg, "a_first_total", "Sorts first.", "");
    assert_ptr_equal(ok, ok2);
    assert_ptr_not_equal(ok, bad);
    lc_metric_inc(ok);
    lc_metric_inc(ok2);
    lc_metric_inc(bad);
    lc_metric_add(other, 3);
    assert_render(reg,
                  "# HELP a_first_total Sorts first.\n"
                  "# TYPE a_first_total counter\n"
                  "a_first_total 3\n"
                  "# HELP voxi_ping_requests_total Pings answered.\n"
                  "# TYPE voxi_ping_requests_total counter\n"
                  "voxi_ping_requests_total{outcome=\"invalid\",subject=\"voxi.auth.ping\"} 1\n"
                  "voxi_ping_requests_total{outcome=\"ok\",subject=\"voxi.auth.ping\"} 2\n");
    lc_metrics_destroy(reg);
}

static void
test_gauge(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    lc_metric_t *g = lc_metrics_gauge(reg, "voxi_active_calls", "Calls in progress.", NULL);
    lc_metric_t *q = lc_metrics_gauge(reg, "voxi_queue_depth", "Queued jobs.", "queue=\"tts\"");
    lc_metric_inc(g);
    lc_metric_inc(g);
    lc_metric_inc(g);
    lc_metric_dec(g);
    lc_metric_set(q, 12);
    lc_metric_add(q, -14.25);
    lc_metric_observe(q, 5); /* not a histogram: ignored */
    assert_true(lc_metric_value(g) == 2);
    assert_render(reg, "# HELP voxi_active_calls Calls in progress.\n"
                       "# TYPE voxi_active_calls gauge\n"
                       "voxi_active_calls 2\n"
                       "# HELP voxi_queue_depth Queued jobs.\n"
                       "# TYPE voxi_queue_depth gauge\n"
                       "voxi_queue_depth{queue=\"tts\"} -2.25\n");
    lc_metric_set(q, 0.1);
    lc_metric_set(g, INFINITY);
    assert_render(reg, "# HELP voxi_active_calls Calls in progress.\n"
                       "# TYPE voxi_active_calls gauge\n"
                       "voxi_active_calls +Inf\n"
                       "# HELP voxi_queue_depth Queued jobs.\n"
                       "# TYPE voxi_queue_depth gauge\n"
                       "voxi_queue_depth{queue=\"tts\"} 0.1\n");
    lc_metric_set(g, 1e20);
    lc_metric_set(q, 1234567.5);
    assert_render(reg, "# HELP voxi_active_calls Calls in progress.\n"
                       "# TYPE voxi_active_calls gauge\n"
                       "voxi_active_calls 1e+20\n"
                       "# HELP voxi_queue_depth Queued jobs.\n"
                       "# TYPE voxi_queue_depth gauge\n"
                       "voxi_queue_depth{queue=\"tts\"} 1234567.5\n");
    lc_metrics_destroy(reg);
}

static void
test_histogram_without_labels(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    const double bounds[] = {0.125, 0.5, 1};
    lc_metric_t *h = lc_metrics_histogram(reg, "voxi_tts_seconds", "TTS latency.", NULL, bounds, 3);
    assert_false(lc_metric_is_noop(h));
    lc_metric_observe(h, 0.0625);
    lc_metric_observe(h, 0.125); /* on the bound: counted in le="0.125" */
    lc_metric_observe(h, 0.75);
    lc_metric_observe(h, 3);
    lc_metric_observe(h, NAN); /* ignored */
    lc_metric_inc(h);          /* not a counter: ignored */
    assert_render(reg, "# HELP voxi_tts_seconds TTS latency.\n"
                       "# TYPE voxi_tts_seconds histogram\n"
                       "voxi_tts_seconds_bucket{le=\"0.125\"} 2\n"
                       "voxi_tts_seconds_bucket{le=\"0.5\"} 2\n"
                       "voxi_tts_seconds_bucket{le=\"1\"} 3\n"
                       "voxi_tts_seconds_bucket{le=\"+Inf\"} 4\n"
                       "voxi_tts_seconds_sum 3.9375\n"
                       "voxi_tts_seconds_count 4\n");
    lc_metrics_destroy(reg);
}

static void
test_histogram_with_labels_and_default_buckets(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    lc_metric_t *h = lc_metrics_histogram(reg, "voxi_request_duration_seconds", "Latency.",
                                          "route=\"/v1/calls\"", NULL, 0);
    lc_metric_observe(h, 0.003);
    lc_metric_observe(h, 20);
    /* the same series again, bounds of the first registration stay */
    const double other[] = {1, 2};
    assert_ptr_equal(h, lc_metrics_histogram(reg, "voxi_request_duration_seconds", "Latency.",
                                             "route=\"/v1/calls\"", other, 2));
    const char *expected =
        "# HELP voxi_request_duration_seconds Latency.\n"
        "# TYPE voxi_request_duration_seconds histogram\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.0005\"} 0\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.001\"} 0\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.0025\"} 0\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.005\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.01\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.025\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.05\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.1\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.25\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"0.5\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"1\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"2.5\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"5\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"10\"} 1\n"
        "voxi_request_duration_seconds_bucket{route=\"/v1/calls\",le=\"+Inf\"} 2\n"
        "voxi_request_duration_seconds_sum{route=\"/v1/calls\"} 20.003\n"
        "voxi_request_duration_seconds_count{route=\"/v1/calls\"} 2\n";
    assert_render(reg, expected);
    lc_metrics_destroy(reg);
}

static void
test_label_escape(void **state)
{
    (void) state;
    char out[64];
    const char *raw = "a\\b\"c\nd";
    size_t need = lc_metrics_label_escape(raw, out, sizeof(out));
    assert_string_equal(out, "a\\\\b\\\"c\\nd");
    assert_int_equal(need, strlen("a\\\\b\\\"c\\nd"));

    /* truncation never splits an escape: "a\\" needs 3 bytes, then the NUL */
    need = lc_metrics_label_escape(raw, out, 3);
    assert_string_equal(out, "a");
    assert_int_equal(need, 10);
    need = lc_metrics_label_escape(raw, out, 4);
    assert_string_equal(out, "a\\\\");
    assert_int_equal(lc_metrics_label_escape("plain", NULL, 0), 5);
    assert_int_equal(lc_metrics_label_escape(NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "");

    /* an escaped value registers and renders as given; HELP escapes \ and newline */
    lc_metrics_t *reg = lc_metrics_create(0);
    char labels[128];
    lc_metrics_label_escape(raw, out, sizeof(out));
    snprintf(labels, sizeof(labels), "provider=\"%s\"", out);
    lc_metric_t *c = lc_metrics_counter(reg, "x_total", "help with \\ and\nnewline \"q\"", labels);
    assert_false(lc_metric_is_noop(c));
    lc_metric_inc(c);
    assert_render(reg, "# HELP x_total help with \\\\ and\\nnewline \"q\"\n"
                       "# TYPE x_total counter\n"
                       "x_total{provider=\"a\\\\b\\\"c\\nd\"} 1\n");
    lc_metrics_destroy(reg);
}

static void
test_name_validation(void **state)
{
    (void) state;
    assert_true(lc_metrics_name_valid("voxi_calls_total"));
    assert_true(lc_metrics_name_valid("_x"));
    assert_true(lc_metrics_name_valid(":recording:rule"));
    assert_true(lc_metrics_name_valid("a1:b2_C3"));
    assert_false(lc_metrics_name_valid(""));
    assert_false(lc_metrics_name_valid(NULL));
    assert_false(lc_metrics_name_valid("1abc"));
    assert_false(lc_metrics_name_valid("voxi-calls"));
    assert_false(lc_metrics_name_valid("voxi calls"));
    assert_false(lc_metrics_name_valid("voxi.calls"));
    assert_false(lc_metrics_name_valid("caf\xc3\xa9"));

    lc_metrics_t *reg = lc_metrics_create(0);
    lc_metric_t *bad = lc_metrics_counter(reg, "bad-name", "h", NULL);
    assert_true(lc_metric_is_noop(bad));
    lc_metric_inc(bad); /* harmless */
    lc_metric_inc(NULL);
    lc_metric_set(NULL, 1);
    lc_metric_observe(NULL, 1);
    assert_true(lc_metric_is_noop(NULL));
    assert_true(lc_metric_is_noop(lc_metrics_gauge(NULL, "ok_name", "h", NULL)));
    assert_render(reg, "");
    lc_metrics_destroy(reg);
}

static void
test_invalid_labels_and_conflicts(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    static const char *const bad_labels[] = {
        "outcome=ok",        /* unquoted */
        "outcome=\"ok",      /* unterminated */
        "outcome=\"a\\tb\"", /* unknown escape */
        "outcome=\"a\nb\"",  /* raw newline */
        "a=\"1\",a=\"2\"",   /* duplicate */
        "__name__=\"x\"",    /* reserved */
        "9x=\"1\"",          /* bad label name */
        "a=\"1\" b=\"2\"",   /* missing comma */
        "a=\"1\",,b=\"2\"",  /* empty pair */
        "a-b=\"1\"",         /* bad label name */
    };
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++)
        assert_true(lc_metric_is_noop(lc_metrics_counter(reg, "c_total", "h", bad_labels[i])));
    /* a trailing comma and blanks are tolerated and normalised away */
    lc_metric_t *c = lc_metrics_counter(reg, "c_total", "h", " a=\"1\" , ");
    assert_false(lc_metric_is_noop(c));
    assert_ptr_equal(c, lc_metrics_counter(reg, "c_total", "h", "a=\"1\""));

    /* le is reserved for histograms only */
    assert_true(
        lc_metric_is_noop(lc_metrics_histogram(reg, "h_seconds", "h", "le=\"1\"", NULL, 0)));
    assert_false(lc_metric_is_noop(lc_metrics_gauge(reg, "g", "h", "le=\"1\"")));

    /* one name, one type */
    assert_true(lc_metric_is_noop(lc_metrics_gauge(reg, "c_total", "h", "a=\"2\"")));
    assert_true(lc_metric_is_noop(lc_metrics_histogram(reg, "c_total", "h", NULL, NULL, 0)));

    /* bucket bounds */
    const double unsorted[] = {1, 0.5};
    const double dup[] = {1, 1};
    const double inf[] = {1, INFINITY};
    double many[LC_METRICS_MAX_BUCKETS + 1];
    for (size_t i = 0; i < LC_METRICS_MAX_BUCKETS + 1; i++)
        many[i] = (double) i;
    assert_true(lc_metric_is_noop(lc_metrics_histogram(reg, "h1", "h", NULL, unsorted, 2)));
    assert_true(lc_metric_is_noop(lc_metrics_histogram(reg, "h1", "h", NULL, dup, 2)));
    assert_true(lc_metric_is_noop(lc_metrics_histogram(reg, "h1", "h", NULL, inf, 2)));
    assert_true(lc_metric_is_noop(
        lc_metrics_histogram(reg, "h1", "h", NULL, many, LC_METRICS_MAX_BUCKETS + 1)));
    assert_false(lc_metric_is_noop(
        lc_metrics_histogram(reg, "h1", "h", NULL, many, LC_METRICS_MAX_BUCKETS)));
    /* zero bounds: just +Inf */
    lc_metric_t *only_inf = lc_metrics_histogram(reg, "h2", "h", NULL, many, 0);
    lc_metric_observe(only_inf, 2);
    size_t len;
    char *text = lc_metrics_render(reg, &len);
    assert_non_null(strstr(text, "h2_bucket{le=\"+Inf\"} 1\nh2_sum 2\nh2_count 1\n"));
    free(text);
    lc_metrics_destroy(reg);
}

static void
test_series_bound(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(3);
    lc_metric_t *a = lc_metrics_counter(reg, "n_total", "h", "i=\"1\"");
    lc_metric_t *b = lc_metrics_counter(reg, "n_total", "h", "i=\"2\"");
    lc_metric_t *c = lc_metrics_gauge(reg, "g", "h", NULL);
    assert_false(lc_metric_is_noop(a));
    assert_false(lc_metric_is_noop(b));
    assert_false(lc_metric_is_noop(c));
    /* full: new series get the no-op one, many times over without trouble */
    for (int i = 0; i < 1000; i++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "i=\"%d\"", i + 3);
        lc_metric_t *m = lc_metrics_counter(reg, "n_total", "h", labels);
        assert_true(lc_metric_is_noop(m));
        lc_metric_inc(m);
    }
    assert_true(lc_metric_is_noop(lc_metrics_histogram(reg, "new_seconds", "h", NULL, NULL, 0)));
    /* existing series are still found */
    assert_ptr_equal(a, lc_metrics_counter(reg, "n_total", "h", "i=\"1\""));
    lc_metric_inc(a);
    assert_render(reg, "# HELP g h\n"
                       "# TYPE g gauge\n"
                       "g 0\n"
                       "# HELP n_total h\n"
                       "# TYPE n_total counter\n"
                       "n_total{i=\"1\"} 1\n"
                       "n_total{i=\"2\"} 0\n");
    lc_metrics_destroy(reg);
}

/* ---- concurrency ---- */

#define THREADS 8
#define ITERATIONS 100000

typedef struct {
    lc_metrics_t *reg;
    lc_metric_t *counter, *gauge, *hist;
    lc_metric_t *looked_up;
} worker_arg_t;

static void *
worker(void *p)
{
    worker_arg_t *arg = p;
    /* lazy lookup from every thread resolves to one series */
    arg->looked_up = lc_metrics_counter(arg->reg, "shared_total", "h", "k=\"v\"");
    for (int i = 0; i < ITERATIONS; i++) {
        lc_metric_inc(arg->counter);
        lc_metric_inc(arg->looked_up);
        lc_metric_add(arg->gauge, 0.5);
        lc_metric_observe(arg->hist, (i % 2) ? 0.25 : 2);
    }
    return NULL;
}

/* Renders while the workers update; cmocka asserts only on the main thread, so this
 * returns how many renders looked wrong. */
static void *
renderer(void *p)
{
    worker_arg_t *arg = p;
    uintptr_t bad = 0;
    for (int i = 0; i < 50; i++) {
        char *text = lc_metrics_render(arg->reg, NULL);
        if (strstr(text, "# TYPE hits_total counter\n") == NULL)
            bad++;
        free(text);
    }
    return (void *) bad;
}

static void
test_concurrent_updates_are_exact(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    const double bounds[] = {1};
    worker_arg_t args[THREADS];
    pthread_t threads[THREADS], render_thread;
    worker_arg_t base = {
        .reg = reg,
        .counter = lc_metrics_counter(reg, "hits_total", "h", NULL),
        .gauge = lc_metrics_gauge(reg, "level", "h", NULL),
        .hist = lc_metrics_histogram(reg, "lat_seconds", "h", NULL, bounds, 1),
    };
    for (int i = 0; i < THREADS; i++) {
        args[i] = base;
        assert_int_equal(pthread_create(&threads[i], NULL, worker, &args[i]), 0);
    }
    assert_int_equal(pthread_create(&render_thread, NULL, renderer, &base), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    void *render_bad = NULL;
    assert_int_equal(pthread_join(render_thread, &render_bad), 0);
    assert_int_equal((uintptr_t) render_bad, 0);

    for (int i = 1; i < THREADS; i++)
        assert_ptr_equal(args[i].looked_up, args[0].looked_up);
    assert_true(lc_metric_value(base.counter) == (double) THREADS * ITERATIONS);
    assert_true(lc_metric_value(args[0].looked_up) == (double) THREADS * ITERATIONS);
    assert_true(lc_metric_value(base.gauge) == (double) THREADS * ITERATIONS * 0.5);

    char expected[1024];
    long n = (long) THREADS * ITERATIONS;
    snprintf(expected, sizeof(expected),
             "# HELP hits_total h\n# TYPE hits_total counter\nhits_total %ld\n"
             "# HELP lat_seconds h\n# TYPE lat_seconds histogram\n"
             "lat_seconds_bucket{le=\"1\"} %ld\nlat_seconds_bucket{le=\"+Inf\"} %ld\n"
             "lat_seconds_sum %ld\nlat_seconds_count %ld\n"
             "# HELP level h\n# TYPE level gauge\nlevel %ld\n"
             "# HELP shared_total h\n# TYPE shared_total counter\nshared_total{k=\"v\"} %ld\n",
             n, n / 2, n, (n / 2) * 2 + (n / 2) / 4, n, n / 2, n);
    assert_render(reg, expected);
    lc_metrics_destroy(reg);
}

/* ---- process metrics ---- */

static void
test_process_metrics(void **state)
{
    (void) state;
    lc_metrics_t *reg = lc_metrics_create(0);
    lc_metrics_enable_process(reg);
    lc_metrics_enable_process(reg); /* idempotent */
    char *text = lc_metrics_render(reg, NULL);
    assert_non_null(strstr(text, "# TYPE process_start_time_seconds gauge\n"
                                 "process_start_time_seconds "));
    assert_non_null(strstr(text, "# TYPE process_resident_memory_bytes gauge\n"));
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "# TYPE process_open_fds gauge\n"));

    /* values are plausible: started in the last day, some memory, stdin..stderr open */
    double start = 0, rss = 0, fds = 0;
    const char *p = strstr(text, "\nprocess_start_time_seconds ");
    assert_non_null(p);
    start = strtod(p + strlen("\nprocess_start_time_seconds "), NULL);
    p = strstr(text, "\nprocess_resident_memory_bytes ");
    assert_non_null(p);
    rss = strtod(p + strlen("\nprocess_resident_memory_bytes "), NULL);
    p = strstr(text, "\nprocess_open_fds ");
    assert_non_null(p);
    fds = strtod(p + strlen("\nprocess_open_fds "), NULL);
    double now = (double) time(NULL);
    assert_true(start > now - 86400 && start <= now + 1);
    assert_true(rss > 1024 * 1024);
    assert_true(fds >= 3);
    free(text);
    lc_metrics_destroy(reg);

    /* the default registry has them from the start */
    lc_metrics_t *def = lc_metrics_default();
    assert_ptr_equal(def, lc_metrics_default());
    text = lc_metrics_render(def, NULL);
    assert_non_null(strstr(text, "process_cpu_seconds_total "));
    assert_non_null(strstr(text, "process_open_fds "));
    free(text);
    lc_metrics_destroy(def); /* refused, default registry stays usable */
    text = lc_metrics_render(def, NULL);
    assert_non_null(strstr(text, "process_open_fds "));
    free(text);
}

int
main(void)
{
    lc_log_init("test_metrics", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_counter_without_labels),
        cmocka_unit_test(test_counter_series_share_one_header),
        cmocka_unit_test(test_gauge),
        cmocka_unit_test(test_histogram_without_labels),
        cmocka_unit_test(test_histogram_with_labels_and_default_buckets),
        cmocka_unit_test(test_label_escape),
        cmocka_unit_test(test_name_validation),
        cmocka_unit_test(test_invalid_labels_and_conflicts),
        cmocka_unit_test(test_series_bound),
        cmocka_unit_test(test_concurrent_updates_are_exact),
        cmocka_unit_test(test_process_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
