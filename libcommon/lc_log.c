#include "lc_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lc_time.h"

#define CONTEXT_ID_MAX 64
#define LINE_MAX_BYTES 4096

lc_log_level_t lc_log_min_level = LC_LOG_INFO;

static const char *log_service = "voxi";
static lc_log_format_t log_format = LC_LOG_FMT_LOGFMT;
static FILE *log_out;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static _Thread_local char ctx_request_id[CONTEXT_ID_MAX + 1];
static _Thread_local char ctx_call_id[CONTEXT_ID_MAX + 1];

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void
lc_log_init(const char *service, lc_log_level_t level, lc_log_format_t format)
{
    log_service = service ? service : "voxi";
    lc_log_min_level = level;
    log_format = format;
}

void
lc_log_set_output(FILE *out)
{
    pthread_mutex_lock(&log_lock);
    log_out = out;
    pthread_mutex_unlock(&log_lock);
}

const char *
lc_log_level_name(lc_log_level_t level)
{
    if ((unsigned) level > LC_LOG_OFF)
        return "unknown";
    return level_names[level];
}

lc_status_t
lc_log_level_parse(const char *text, lc_log_level_t *out)
{
    for (int i = 0; i <= LC_LOG_OFF; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (lc_log_level_t) i;
            return LC_OK;
        }
    }
    return LC_ERR_INVALID;
}

lc_status_t
lc_log_format_parse(const char *text, lc_log_format_t *out)
{
    if (strcasecmp(text, "logfmt") == 0)
        *out = LC_LOG_FMT_LOGFMT;
    else if (strcasecmp(text, "json") == 0)
        *out = LC_LOG_FMT_JSON;
    else
        return LC_ERR_INVALID;
    return LC_OK;
}

static void
copy_id(char *dst, const char *src)
{
    if (src == NULL)
        return;
    size_t n = strnlen(src, CONTEXT_ID_MAX);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void
lc_log_context_set(const char *request_id, const char *call_id)
{
    copy_id(ctx_request_id, request_id);
    copy_id(ctx_call_id, call_id);
}

void
lc_log_context_clear(void)
{
    ctx_request_id[0] = '\0';
    ctx_call_id[0] = '\0';
}

const char *
lc_log_context_request_id(void)
{
    return ctx_request_id;
}

/* A bounded line builder: appends never overflow; output is truncated at the bound. */
typedef struct {
    char buf[LINE_MAX_BYTES];
    size_t len;
} line_t;

static void
put_raw(line_t *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 2 - l->len; /* keep room for '\n' and NUL */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void
put_str(line_t *l, const char *s)
{
    put_raw(l, s, strlen(s));
}

/* Escapes for JSON strings and for quoted logfmt values (same rules suffice for both). */
static void
put_escaped(line_t *l, const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"':
            put_raw(l, "\\\"", 2);
            break;
        case '\\':
            put_raw(l, "\\\\", 2);
            break;
        case '\n':
            put_raw(l, "\\n", 2);
            break;
        case '\r':
            put_raw(l, "\\r", 2);
            break;
        case '\t':
            put_raw(l, "\\t", 2);
            break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                put_str(l, esc);
            } else {
                put_raw(l, (const char *) p, 1);
            }
        }
    }
}

static void
put_field(line_t *l, const char *key, const char *value, bool first)
{
    if (log_format == LC_LOG_FMT_JSON) {
        put_str(l, first ? "{\"" : ",\"");
        put_str(l, key);
        put_str(l, "\":\"");
        put_escaped(l, value);
        put_str(l, "\"");
        return;
    }
    if (!first)
        put_str(l, " ");
    put_str(l, key);
    put_str(l, "=");
    bool quote = value[0] == '\0' || strpbrk(value, " =\"\\\t\n\r") != NULL;
    if (quote) {
        put_str(l, "\"");
        put_escaped(l, value);
        put_str(l, "\"");
    } else {
        put_escaped(l, value);
    }
}

void
lc_log_write(lc_log_level_t level, const char *subsys, const char *fmt, ...)
{
    if (level < lc_log_min_level || level >= LC_LOG_OFF)
        return;

    char msg[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    char ts[40];
    lc_time_format_rfc3339(lc_time_wall_ms(), ts, sizeof(ts));

    line_t *l = &(line_t){.len = 0};
    put_field(l, "ts", ts, true);
    put_field(l, "level", level_names[level], false);
    put_field(l, "svc", log_service, false);
    put_field(l, "sub", subsys ? subsys : "-", false);
    if (ctx_request_id[0])
        put_field(l, "request_id", ctx_request_id, false);
    if (ctx_call_id[0])
        put_field(l, "call_id", ctx_call_id, false);
    put_field(l, "msg", msg, false);
    if (log_format == LC_LOG_FMT_JSON)
        put_raw(l, "}", 1);
    l->buf[l->len++] = '\n';

    pthread_mutex_lock(&log_lock);
    FILE *out = log_out ? log_out : stderr;
    fwrite(l->buf, 1, l->len, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

bool
lc_log_ratelimit_allow(lc_log_ratelimit_t *rl, uint32_t per_sec, uint32_t *suppressed_out)
{
    int64_t now = lc_time_mono_ms();
    int64_t start = atomic_load(&rl->window_start_ms);
    *suppressed_out = 0;
    if (now - start >= 1000 && atomic_compare_exchange_strong(&rl->window_start_ms, &start, now)) {
        atomic_store(&rl->in_window, 0);
    }
    if (atomic_fetch_add(&rl->in_window, 1) < per_sec) {
        *suppressed_out = atomic_exchange(&rl->suppressed, 0);
        return true;
    }
    atomic_fetch_add(&rl->suppressed, 1);
    return false;
}
