#include "wh_retry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Issue 6: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
static const int64_t schedule_ms[WH_MAX_ATTEMPTS] = {
    0, 5000, 5 * 60000, 30 * 60000, 2 * 3600000LL, 5 * 3600000LL, 10 * 3600000LL, 10 * 3600000LL,
};

const char *
wh_outcome_name(wh_outcome_t o)
{
    switch (o) {
    case WH_OUTCOME_SUCCEEDED:
        return "succeeded";
    case WH_OUTCOME_RETRY:
        return "retry";
    case WH_OUTCOME_FAILED:
        return "failed";
    case WH_OUTCOME_GONE:
        return "gone";
    }
    return "unknown";
}

int64_t
wh_retry_base_delay_ms(int attempt)
{
    if (attempt < 1 || attempt > WH_MAX_ATTEMPTS)
        return -1;
    return schedule_ms[attempt - 1];
}

int64_t
wh_retry_delay_ms(int attempts_done, double scale, double jitter_unit)
{
    int64_t base = wh_retry_base_delay_ms(attempts_done + 1);
    if (attempts_done < 1 || base < 0)
        return attempts_done < 1 ? 0 : -1;
    if (jitter_unit < 0)
        jitter_unit = 0;
    if (jitter_unit >= 1)
        jitter_unit = 0.999999;
    double d = (double) base * scale * (0.8 + 0.4 * jitter_unit);
    if (d < 0)
        d = 0;
    return (int64_t) d;
}

int64_t
wh_retry_after_parse_ms(const char *value, int64_t now_wall_ms)
{
    if (value == NULL)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value == '\0' || strlen(value) > 64)
        return -1;
    int64_t ms;
    if (*value >= '0' && *value <= '9') {
        char *end;
        errno = 0;
        long long s = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (errno != 0 || *end != '\0')
            return -1;
        ms = s > WH_RETRY_AFTER_MAX_MS / 1000 ? WH_RETRY_AFTER_MAX_MS : (int64_t) s * 1000;
    } else {
        /* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 5.6.7). */
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (end == NULL || *end != '\0')
            return -1;
        int64_t at_ms = (int64_t) timegm(&tm) * 1000;
        ms = at_ms > now_wall_ms ? at_ms - now_wall_ms : 0;
    }
    return ms > WH_RETRY_AFTER_MAX_MS ? WH_RETRY_AFTER_MAX_MS : ms;
}

wh_outcome_t
wh_retry_decide(int attempt, int http_status, int64_t retry_after_ms, double scale,
                double jitter_unit, int64_t *delay_ms)
{
    *delay_ms = 0;
    if (http_status >= 200 && http_status <= 299)
        return WH_OUTCOME_SUCCEEDED;
    if (http_status == 410)
        return WH_OUTCOME_GONE;
    int64_t d = wh_retry_delay_ms(attempt, scale, jitter_unit);
    if (d < 0)
        return WH_OUTCOME_FAILED;
    if ((http_status == 429 || http_status == 503) && retry_after_ms > d)
        d = retry_after_ms;
    *delay_ms = d;
    return WH_OUTCOME_RETRY;
}
