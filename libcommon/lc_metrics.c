#include "lc_metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define MAX_LABEL_PAIRS 16

const double lc_metrics_latency_buckets[LC_METRICS_LATENCY_BUCKETS_COUNT] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

typedef enum {
    KIND_NOOP = 0,
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM,
} metric_kind_t;

static const char *const kind_names[] = {"untyped", "counter", "gauge", "histogram"};

/*
 * Doubles live in _Atomic uint64_t as their bit pattern: C11 has no atomic add on double,
 * so adds are compare-and-swap loops. Counter increments, by far the most common update,
 * go to an integer `ticks` with a single fetch_add instead.
 */
struct lc_metric {
    metric_kind_t kind;
    char *labels; /* canonical pairs without braces; "" when none */
    union {
        struct {
            _Atomic uint64_t ticks;
            _Atomic uint64_t extra_bits; /* non-integral adds, as a double */
        } counter;
        struct {
            _Atomic uint64_t bits;
        } gauge;
        struct {
            size_t nbounds;
            double *bounds;
            _Atomic uint64_t *buckets; /* nbounds + 1, not cumulative; the last is +Inf */
            _Atomic uint64_t sum_bits;
        } hist;
    } u;
};

typedef struct {
    char *name;
    char *help;
    metric_kind_t kind;
    lc_metric_t **series; /* sorted by labels */
    size_t nseries, cap;
} family_t;

struct lc_metrics {
    pthread_mutex_t lock;
    family_t **families; /* sorted by name */
    size_t nfamilies, cap;
    size_t nseries, max_series;
    /* set by lc_metrics_enable_process; refreshed on render */
    lc_metric_t *proc_start, *proc_rss, *proc_cpu, *proc_fds;
};

static lc_metric_t noop_series = {.kind = KIND_NOOP, .labels = ""};

/* ---- doubles in atomics ---- */

static uint64_t
double_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static double
bits_double(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

static void
atomic_add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static double
load_double(const _Atomic uint64_t *bits)
{
    return bits_double(atomic_load_explicit((_Atomic uint64_t *) bits, memory_order_relaxed));
}

/* ---- updates ---- */

void
lc_metric_inc(lc_metric_t *m)
{
    if (m == NULL)
        return;
    if (m->kind == KIND_COUNTER)
        atomic_fetch_add_explicit(&m->u.counter.ticks, 1, memory_order_relaxed);
    else if (m->kind == KIND_GAUGE)
        atomic_add_double(&m->u.gauge.bits, 1);
}

void
lc_metric_dec(lc_metric_t *m)
{
    if (m != NULL && m->kind == KIND_GAUGE)
        atomic_add_double(&m->u.gauge.bits, -1);
}

void
lc_metric_add(lc_metric_t *m, double v)
{
    if (m == NULL)
        return;
    if (m->kind == KIND_COUNTER) {
        if (!(v >= 0)) /* also rejects NaN */
            return;
        /* whole numbers below 2^53 are exact as integers: keep them off the CAS path */
        if (v < 9007199254740992.0 && v == (double) (uint64_t) v)
            atomic_fetch_add_explicit(&m->u.counter.ticks, (uint64_t) v, memory_order_relaxed);
        else
            atomic_add_double(&m->u.counter.extra_bits, v);
    } else if (m->kind == KIND_GAUGE) {
        atomic_add_double(&m->u.gauge.bits, v);
    }
}

void
lc_metric_set(lc_metric_t *m, double v)
{
    if (m != NULL && m->kind == KIND_GAUGE)
        atomic_store_explicit(&m->u.gauge.bits, double_bits(v), memory_order_relaxed);
}

void
lc_metric_observe(lc_metric_t *m, double v)
{
    if (m == NULL || m->kind != KIND_HISTOGRAM || isnan(v))
        return;
    /* first bucket whose upper bound is >= v ("le" semantics); nbounds means +Inf */
    size_t lo = 0, hi = m->u.hist.nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= m->u.hist.bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&m->u.hist.buckets[lo], 1, memory_order_relaxed);
    atomic_add_double(&m->u.hist.sum_bits, v);
}

static double
counter_value(const lc_metric_t *m)
{
    uint64_t ticks =
        atomic_load_explicit((_Atomic uint64_t *) &m->u.counter.ticks, memory_order_relaxed);
    return (double) ticks + load_double(&m->u.counter.extra_bits);
}

double
lc_metric_value(const lc_metric_t *m)
{
    if (m == NULL)
        return 0;
    if (m->kind == KIND_COUNTER)
        return counter_value(m);
    if (m->kind == KIND_GAUGE)
        return load_double(&m->u.gauge.bits);
    return 0;
}

bool
lc_metric_is_noop(const lc_metric_t *m)
{
    return m == NULL || m->kind == KIND_NOOP;
}

/* Process metrics set a counter to an absolute value read from the kernel. */
static void
counter_store(lc_metric_t *m, double v)
{
    atomic_store_explicit(&m->u.counter.ticks, 0, memory_order_relaxed);
    atomic_store_explicit(&m->u.counter.extra_bits, double_bits(v), memory_order_relaxed);
}

/* ---- validation ---- */

static bool
is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool
lc_metrics_name_valid(const char *name)
{
    if (name == NULL || !(is_alpha_(name[0]) || name[0] == ':'))
        return false;
    for (const char *p = name + 1; *p; p++)
        if (!(is_alpha_(*p) || is_digit(*p) || *p == ':'))
            return false;
    return true;
}

size_t
lc_metrics_label_escape(const char *value, char *out, size_t out_size)
{
    size_t need = 0, used = 0;
    bool full = out_size == 0;
    for (const char *p = value ? value : ""; *p; p++) {
        char esc[2];
        size_t n = 1;
        esc[0] = *p;
        if (*p == '\\' || *p == '"') {
            esc[0] = '\\';
            esc[1] = *p;
            n = 2;
        } else if (*p == '\n') {
            esc[0] = '\\';
            esc[1] = 'n';
            n = 2;
        }
        need += n;
        if (!full && used + n < out_size) {
            memcpy(out + used, esc, n);
            used += n;
        } else {
            full = true; /* never emit a later, shorter sequence after a dropped one */
        }
    }
    if (out_size > 0)
        out[used] = '\0';
    return need;
}

typedef struct {
    const char *name, *value; /* value still escaped */
    size_t name_len, value_len;
} label_pair_t;

static void
skip_blanks(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

/*
 * Parses `a="x",b="y"` (blanks between tokens and one trailing comma tolerated) into
 * `*out` in canonical form: pairs sorted by name, no blanks, no trailing comma. Returns a
 * static reason on error.
 */
static const char *
canonical_labels(const char *labels, bool histogram, char **out)
{
    label_pair_t pairs[MAX_LABEL_PAIRS];
    size_t npairs = 0;
    const char *p = labels ? labels : "";

    skip_blanks(&p);
    while (*p != '\0') {
        label_pair_t lp;
        if (!is_alpha_(*p))
            return "label name must match [a-zA-Z_][a-zA-Z0-9_]*";
        lp.name = p;
        while (is_alpha_(*p) || is_digit(*p))
            p++;
        lp.name_len = (size_t) (p - lp.name);
        if (lp.name_len >= 2 && lp.name[0] == '_' && lp.name[1] == '_')
            return "label names starting with __ are reserved";
        if (histogram && lp.name_len == 2 && memcmp(lp.name, "le", 2) == 0)
            return "label le is reserved for histogram buckets";
        skip_blanks(&p);
        if (*p++ != '=')
            return "expected = after label name";
        skip_blanks(&p);
        if (*p++ != '"')
            return "label value must be double-quoted";
        lp.value = p;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return "unterminated label value";
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return "label value has an escape other than \\\\, \\\" or \\n";
                p++;
            }
            p++;
        }
        lp.value_len = (size_t) (p - lp.value);
        p++; /* closing quote */
        if (npairs == MAX_LABEL_PAIRS)
            return "too many labels";
        /* insertion sort by name; equal names are an error */
        size_t i = npairs;
        while (i > 0) {
            const label_pair_t *prev = &pairs[i - 1];
            size_t n = prev->name_len < lp.name_len ? prev->name_len : lp.name_len;
            int c = memcmp(prev->name, lp.name, n);
            if (c == 0 && prev->name_len == lp.name_len)
                return "duplicate label name";
            if (c < 0 || (c == 0 && prev->name_len < lp.name_len))
                break;
            pairs[i] = pairs[i - 1];
            i--;
        }
        pairs[i] = lp;
        npairs++;
        skip_blanks(&p);
        if (*p == ',') {
            p++;
            skip_blanks(&p);
        } else if (*p != '\0') {
            return "expected , between labels";
        }
    }

    size_t len = 0;
    for (size_t i = 0; i < npairs; i++)
        len += pairs[i].name_len + pairs[i].value_len + 4; /* ="", */
    char *s = lc_malloc(len + 1), *w = s;
    for (size_t i = 0; i < npairs; i++) {
        if (i > 0)
            *w++ = ',';
        memcpy(w, pairs[i].name, pairs[i].name_len);
        w += pairs[i].name_len;
        *w++ = '=';
        *w++ = '"';
        memcpy(w, pairs[i].value, pairs[i].value_len);
        w += pairs[i].value_len;
        *w++ = '"';
    }
    *w = '\0';
    *out = s;
    return NULL;
}

static const char *
check_bounds(const double *bounds, size_t nbounds)
{
    if (nbounds > LC_METRICS_MAX_BUCKETS)
        return "too many histogram buckets";
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]))
            return "histogram bounds must be finite (+Inf is implied)";
        if (i > 0 && !(bounds[i] > bounds[i - 1]))
            return "histogram bounds must be strictly ascending";
    }
    return NULL;
}

/* ---- registry ---- */

lc_metrics_t *
lc_metrics_create(size_t max_series)
{
    lc_metrics_t *reg = LC_NEW(lc_metrics_t);
    pthread_mutex_init(&reg->lock, NULL);
    reg->max_series = max_series ? max_series : LC_METRICS_DEFAULT_MAX_SERIES;
    return reg;
}

static void
series_free(lc_metric_t *m)
{
    if (m->kind == KIND_HISTOGRAM) {
        free(m->u.hist.bounds);
        free((void *) m->u.hist.buckets);
    }
    free(m->labels);
    free(m);
}

static lc_metrics_t *default_registry;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

void
lc_metrics_destroy(lc_metrics_t *reg)
{
    if (reg == NULL)
        return;
    if (reg == default_registry) {
        LC_WARN("metrics", "lc_metrics_destroy on the default registry ignored");
        return;
    }
    for (size_t i = 0; i < reg->nfamilies; i++) {
        family_t *f = reg->families[i];
        for (size_t j = 0; j < f->nseries; j++)
            series_free(f->series[j]);
        free(f->series);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(reg->families);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static void
default_init(void)
{
    default_registry = lc_metrics_create(0);
    lc_metrics_enable_process(default_registry);
}

lc_metrics_t *
lc_metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_registry;
}

/* Binary search; returns true when found, *pos is the index or the insertion point. */
static bool
find_family(const lc_metrics_t *reg, const char *name, size_t *pos)
{
    size_t lo = 0, hi = reg->nfamilies;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->families[mid]->name, name);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

static bool
find_series(const family_t *f, const char *labels, size_t *pos)
{
    size_t lo = 0, hi = f->nseries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->series[mid]->labels, labels);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

#define INSERT_AT(array, count, cap, pos, item)                                                    \
    do {                                                                                           \
        if ((count) == (cap)) {                                                                    \
            (cap) = (cap) ? (cap) *2 : 8;                                                          \
            (array) = lc_realloc((array), (cap) * sizeof(*(array)));                               \
        }                                                                                          \
        memmove(&(array)[(pos) + 1], &(array)[(pos)], ((count) - (pos)) * sizeof(*(array)));       \
        (array)[(pos)] = (item);                                                                   \
        (count)++;                                                                                 \
    } while (0)

static lc_metric_t *
series_new(metric_kind_t kind, char *labels, const double *bounds, size_t nbounds)
{
    lc_metric_t *m = LC_NEW(lc_metric_t);
    m->kind = kind;
    m->labels = labels;
    if (kind == KIND_COUNTER) {
        atomic_init(&m->u.counter.ticks, 0);
        atomic_init(&m->u.counter.extra_bits, double_bits(0));
    } else if (kind == KIND_GAUGE) {
        atomic_init(&m->u.gauge.bits, double_bits(0));
    } else {
        m->u.hist.nbounds = nbounds;
        m->u.hist.bounds = lc_malloc(nbounds * sizeof(double));
        if (nbounds > 0)
            memcpy(m->u.hist.bounds, bounds, nbounds * sizeof(double));
        m->u.hist.buckets = lc_malloc((nbounds + 1) * sizeof(_Atomic uint64_t));
        for (size_t i = 0; i <= nbounds; i++)
            atomic_init(&m->u.hist.buckets[i], 0);
        atomic_init(&m->u.hist.sum_bits, double_bits(0));
    }
    return m;
}

static lc_metric_t *
register_series(lc_metrics_t *reg, metric_kind_t kind, const char *name, const char *help,
                const char *labels, const double *bounds, size_t nbounds)
{
    const char *why = NULL;
    char *canon = NULL;
    lc_metric_t *m = &noop_series;

    if (reg == NULL)
        return m;
    if (!lc_metrics_name_valid(name)) {
        why = "invalid metric name";
        goto done;
    }
    if ((why = canonical_labels(labels, kind == KIND_HISTOGRAM, &canon)) != NULL)
        goto done;
    if (kind == KIND_HISTOGRAM) {
        if (bounds == NULL) {
            bounds = lc_metrics_latency_buckets;
            nbounds = LC_METRICS_LATENCY_BUCKETS_COUNT;
        }
        if ((why = check_bounds(bounds, nbounds)) != NULL)
            goto done;
    }

    pthread_mutex_lock(&reg->lock);
    size_t fpos, spos;
    family_t *f = NULL;
    if (find_family(reg, name, &fpos)) {
        f = reg->families[fpos];
        if (f->kind != kind) {
            why = "name already registered with another type";
            goto unlock;
        }
        if (find_series(f, canon, &spos)) {
            m = f->series[spos];
            goto unlock;
        }
    } else {
        spos = 0;
    }
    if (reg->nseries >= reg->max_series) {
        why = "registry full";
        goto unlock;
    }
    if (f == NULL) {
        f = LC_NEW(family_t);
        f->name = lc_strdup(name);
        f->help = lc_strdup(help ? help : "");
        f->kind = kind;
        INSERT_AT(reg->families, reg->nfamilies, reg->cap, fpos, f);
    }
    m = series_new(kind, canon, bounds, nbounds);
    canon = NULL; /* owned by the series now */
    INSERT_AT(f->series, f->nseries, f->cap, spos, m);
    reg->nseries++;
unlock:
    pthread_mutex_unlock(&reg->lock);
done:
    if (why != NULL)
        LC_LOG_RL(LC_LOG_WARN, "metrics", 1, "not registering %s %s{%s}: %s", kind_names[kind],
                  name ? name : "(null)", labels ? labels : "", why);
    free(canon);
    return m;
}

lc_metric_t *
lc_metrics_counter(lc_metrics_t *reg, const char *name, const char *help, const char *labels)
{
    return register_series(reg, KIND_COUNTER, name, help, labels, NULL, 0);
}

lc_metric_t *
lc_metrics_gauge(lc_metrics_t *reg, const char *name, const char *help, const char *labels)
{
    return register_series(reg, KIND_GAUGE, name, help, labels, NULL, 0);
}

lc_metric_t *
lc_metrics_histogram(lc_metrics_t *reg, const char *name, const char *help, const char *labels,
                     const double *bounds, size_t nbounds)
{
    return register_series(reg, KIND_HISTOGRAM, name, help, labels, bounds, nbounds);
}

/* ---- process metrics ---- */

/* Seconds since the epoch at which this process started: boot time (btime in /proc/stat)
 * plus the start time in clock ticks after boot (field 22 of /proc/self/stat). */
static double
process_start_time(void)
{
    double fallback = (double) lc_time_wall_ms() / 1000.0;
    char buf[1024];
    unsigned long long start_ticks = 0, btime = 0;

    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return fallback;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name (field 2) may hold spaces and parentheses: start after the last ) */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return fallback;
    p++;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return fallback;
        if (field == 22)
            start_ticks = strtoull(p, NULL, 10);
        while (*p && *p != ' ')
            p++;
    }

    f = fopen("/proc/stat", "r");
    if (f == NULL)
        return fallback;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime == 0 || hz <= 0)
        return fallback;
    return (double) btime + (double) start_ticks / (double) hz;
}

static void
refresh_process(const lc_metrics_t *reg)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        unsigned long long size_pages, resident_pages;
        if (fscanf(f, "%llu %llu", &size_pages, &resident_pages) == 2)
            lc_metric_set(reg->proc_rss, (double) resident_pages * (double) sysconf(_SC_PAGESIZE));
        fclose(f);
    }

    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
                     (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
        counter_store(reg->proc_cpu, cpu);
    }

    DIR *dir = opendir("/proc/self/fd");
    if (dir != NULL) {
        int own_fd = dirfd(dir);
        long count = 0;
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            if (atoi(de->d_name) == own_fd)
                continue; /* the descriptor we are reading the directory through */
            count++;
        }
        closedir(dir);
        lc_metric_set(reg->proc_fds, (double) count);
    }
}

void
lc_metrics_enable_process(lc_metrics_t *reg)
{
    if (reg == NULL)
        return;
    pthread_mutex_lock(&reg->lock);
    bool enabled = reg->proc_start != NULL;
    pthread_mutex_unlock(&reg->lock);
    if (enabled)
        return;
    lc_metric_t *start =
        lc_metrics_gauge(reg, "process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.", NULL);
    lc_metric_set(start, process_start_time());
    lc_metric_t *fds =
        lc_metrics_gauge(reg, "process_open_fds", "Number of open file descriptors.", NULL);
    lc_metric_t *rss = lc_metrics_gauge(reg, "process_resident_memory_bytes",
                                        "Resident memory size in bytes.", NULL);
    lc_metric_t *cpu = lc_metrics_counter(reg, "process_cpu_seconds_total",
                                          "Total user and system CPU time spent in seconds.", NULL);
    pthread_mutex_lock(&reg->lock); /* render reads these under the lock */
    reg->proc_start = start;
    reg->proc_rss = rss;
    reg->proc_cpu = cpu;
    reg->proc_fds = fds;
    pthread_mutex_unlock(&reg->lock);
}

/* ---- rendering ---- */

typedef struct {
    char *data;
    size_t len, cap;
} strbuf_t;

static void
sb_reserve(strbuf_t *sb, size_t more)
{
    if (sb->len + more + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 4096;
    while (cap < sb->len + more + 1)
        cap *= 2;
    sb->data = lc_realloc(sb->data, cap);
    sb->cap = cap;
}

static void
sb_add(strbuf_t *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

static void
sb_str(strbuf_t *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

/*
 * Shortest text that reads back as the same double, like Go's strconv 'g' -1 that the
 * Prometheus clients use; whole numbers print without exponent up to 1e15. Special values
 * are spelled as the format wants: +Inf, -Inf, NaN.
 */
static void
format_double(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        snprintf(buf, size, "0");
    } else if (fabs(v) < 1e15 && v == trunc(v)) {
        snprintf(buf, size, "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

/* HELP text escapes backslash and newline only (the format keeps quotes as they are). */
static void
sb_help(strbuf_t *sb, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            sb_add(sb, "\\\\", 2);
        else if (*p == '\n')
            sb_add(sb, "\\n", 2);
        else
            sb_add(sb, p, 1);
    }
}

/* name+suffix{labels[,extra]} value\n */
static void
sb_sample(strbuf_t *sb, const char *name, const char *suffix, const char *labels, const char *extra,
          double value)
{
    char num[64];
    sb_str(sb, name);
    sb_str(sb, suffix);
    if (labels[0] != '\0' || extra != NULL) {
        sb_add(sb, "{", 1);
        sb_str(sb, labels);
        if (extra != NULL) {
            if (labels[0] != '\0')
                sb_add(sb, ",", 1);
            sb_str(sb, extra);
        }
        sb_add(sb, "}", 1);
    }
    format_double(value, num, sizeof(num));
    sb_add(sb, " ", 1);
    sb_str(sb, num);
    sb_add(sb, "\n", 1);
}

static void
render_histogram(strbuf_t *sb, const char *name, const lc_metric_t *m)
{
    char le[80], num[64];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= m->u.hist.nbounds; i++) {
        cumulative += atomic_load_explicit(&m->u.hist.buckets[i], memory_order_relaxed);
        if (i < m->u.hist.nbounds) {
            format_double(m->u.hist.bounds[i], num, sizeof(num));
            snprintf(le, sizeof(le), "le=\"%s\"", num);
        } else {
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        }
        sb_sample(sb, name, "_bucket", m->labels, le, (double) cumulative);
    }
    sb_sample(sb, name, "_sum", m->labels, NULL, load_double(&m->u.hist.sum_bits));
    /* _count is the +Inf bucket as read above, so the two always agree */
    sb_sample(sb, name, "_count", m->labels, NULL, (double) cumulative);
}

char *
lc_metrics_render(const lc_metrics_t *reg, size_t *len_out)
{
    strbuf_t sb = {0};
    sb_reserve(&sb, 0);
    sb.data[0] = '\0';
    if (reg == NULL)
        goto done;

    pthread_mutex_lock((pthread_mutex_t *) &reg->lock);
    if (reg->proc_start != NULL)
        refresh_process(reg);
    for (size_t i = 0; i < reg->nfamilies; i++) {
        const family_t *f = reg->families[i];
        sb_str(&sb, "# HELP ");
        sb_str(&sb, f->name);
        sb_add(&sb, " ", 1);
        sb_help(&sb, f->help);
        sb_str(&sb, "\n# TYPE ");
        sb_str(&sb, f->name);
        sb_add(&sb, " ", 1);
        sb_str(&sb, kind_names[f->kind]);
        sb_add(&sb, "\n", 1);
        for (size_t j = 0; j < f->nseries; j++) {
            const lc_metric_t *m = f->series[j];
            if (f->kind == KIND_HISTOGRAM)
                render_histogram(&sb, f->name, m);
            else
                sb_sample(&sb, f->name, "", m->labels, NULL, lc_metric_value(m));
        }
    }
    pthread_mutex_unlock((pthread_mutex_t *) &reg->lock);
done:
    if (len_out != NULL)
        *len_out = sb.len;
    return sb.data;
}
