/*
 * lc_metrics: counters, gauges and histograms exposed in the Prometheus text format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * A registry (lc_metrics_t) holds series. A series (lc_metric_t) is a metric name plus a
 * fixed label set chosen at registration; several series may share one name with
 * different labels and are rendered under one `# HELP` / `# TYPE` header. Registering
 * the same name and labels again returns the series already there, so call sites may look
 * a series up lazily instead of keeping the pointer (keeping it is cheaper: lookup takes
 * the registry mutex).
 *
 * Names: `[a-zA-Z_:][a-zA-Z0-9_:]*`. Names are never rewritten: name counters `*_total`
 * yourself (`voxi_ping_requests_total`), and use base units (`_seconds`, `_bytes`).
 *
 * Labels: a string of already-formatted pairs, `outcome="ok",subject="voxi.auth.ping"`,
 * or NULL / "" for none. Label names follow `[a-zA-Z_][a-zA-Z0-9_]*` and may not start
 * with `__`; histograms may not use `le`. Label values must be escaped as the format
 * requires (backslash, double quote and newline as \\, \" and \n): build values that come
 * from outside (subjects, provider names) with lc_metrics_label_escape(). The pairs are
 * validated and put in name order, so `b="1",a="2"` and `a="2",b="1"` are one series.
 * Keep label values to a small fixed set: every distinct value is a new series.
 *
 * Failure never crashes and never reaches the caller: an invalid name, labels or bucket
 * bounds, a name already registered with another type, or a registry already holding its
 * maximum number of series all return a shared no-op series (updates to it do nothing)
 * and log a rate-limited warning. lc_metric_is_noop() tells them apart.
 *
 * Threads: every function may be called from any thread. Updates (inc/add/set/observe)
 * are lock-free C11 atomics on the series itself; registration and rendering take the
 * registry mutex. Series live as long as their registry.
 */
#ifndef LC_METRICS_H
#define LC_METRICS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct lc_metrics lc_metrics_t;
typedef struct lc_metric lc_metric_t;

/* Default bound on series per registry (a histogram series counts as one). */
#define LC_METRICS_DEFAULT_MAX_SERIES 4096
/* Most bucket bounds a histogram may have (+Inf not counted). */
#define LC_METRICS_MAX_BUCKETS 64

/* Latency buckets in seconds, 0.5 ms .. 10 s; what bounds == NULL selects. */
#define LC_METRICS_LATENCY_BUCKETS_COUNT 14
extern const double lc_metrics_latency_buckets[LC_METRICS_LATENCY_BUCKETS_COUNT];

/* A new empty registry holding at most max_series series (0 = the default). Never NULL. */
lc_metrics_t *lc_metrics_create(size_t max_series);
/* Frees the registry and every series in it; no series pointer may be used afterwards.
 * NULL is a no-op. Must not be called on lc_metrics_default(). */
void lc_metrics_destroy(lc_metrics_t *reg);

/* The process-wide registry, created on first use with the process metrics enabled; lives
 * until exit. */
lc_metrics_t *lc_metrics_default(void);

/*
 * Adds the standard process metrics to reg, refreshed on every lc_metrics_render:
 * process_start_time_seconds, process_resident_memory_bytes (/proc/self/statm),
 * process_cpu_seconds_total (getrusage) and process_open_fds (/proc/self/fd).
 * Idempotent. lc_metrics_default() already has them.
 */
void lc_metrics_enable_process(lc_metrics_t *reg);

/*
 * Registration: returns the series `name{labels}`, creating it on first call. help is
 * copied (the first registration of a name sets it); name and labels are copied. The
 * returned pointer is borrowed from reg and valid until lc_metrics_destroy(reg). reg NULL
 * returns the no-op series.
 */
lc_metric_t *lc_metrics_counter(lc_metrics_t *reg, const char *name, const char *help,
                                const char *labels);
lc_metric_t *lc_metrics_gauge(lc_metrics_t *reg, const char *name, const char *help,
                              const char *labels);
/* bounds: strictly ascending finite upper bounds (+Inf is implied, do not pass it), at most
 * LC_METRICS_MAX_BUCKETS; copied. bounds == NULL selects lc_metrics_latency_buckets. When
 * the series exists already, it is returned as is (its first bounds stay). */
lc_metric_t *lc_metrics_histogram(lc_metrics_t *reg, const char *name, const char *help,
                                  const char *labels, const double *bounds, size_t nbounds);

/*
 * Updates. m may be NULL or the no-op series (nothing happens). A call that does not fit
 * the series type (set on a counter, observe on a gauge, ...) does nothing.
 *   counter:   inc, add (v >= 0; negative or NaN v is ignored: counters only go up)
 *   gauge:     inc, dec, add (any sign), set
 *   histogram: observe (NaN is ignored)
 */
void lc_metric_inc(lc_metric_t *m);
void lc_metric_dec(lc_metric_t *m);
void lc_metric_add(lc_metric_t *m, double v);
void lc_metric_set(lc_metric_t *m, double v);
void lc_metric_observe(lc_metric_t *m, double v);

/* Current value of a counter or gauge (0 for others); for tests and readiness logic. */
double lc_metric_value(const lc_metric_t *m);
/* True for NULL and for the shared no-op series returned on registration errors. */
bool lc_metric_is_noop(const lc_metric_t *m);

/*
 * Renders every series of reg in the text exposition format; families in name order,
 * series in label order. Returns a new NUL-terminated buffer the caller frees with free();
 * *len_out (if not NULL) gets its length without the NUL.
 */
char *lc_metrics_render(const lc_metrics_t *reg, size_t *len_out);

/* Content-Type of lc_metrics_render's output. */
#define LC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* True when name is a valid metric name. */
bool lc_metrics_name_valid(const char *name);

/*
 * Escapes a label value for use between the double quotes of a label set (\ -> \\,
 * " -> \", newline -> \n). Writes at most out_size bytes including the NUL, never cutting
 * an escape sequence in half, and always NUL-terminates when out_size > 0. Returns the
 * length the full escaped value needs (without the NUL), like snprintf: a return value
 * >= out_size means the output was truncated.
 */
size_t lc_metrics_label_escape(const char *value, char *out, size_t out_size);

#endif
