#include "lc_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t
lc_time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
lc_time_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
lc_time_format_rfc3339(int64_t epoch_ms, char *out, size_t out_size)
{
    time_t secs = (time_t) (epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (epoch_ms % 1000));
}

void
lc_random_bytes(void *out, size_t n)
{
    unsigned char *p = out;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "fatal: getrandom: %s\n", strerror(errno));
            abort();
        }
        p += got;
        n -= (size_t) got;
    }
}

void
lc_id_new(const char *prefix, char *out, size_t out_size)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[10];
    size_t plen = strlen(prefix);
    if (out_size < plen + 2 * sizeof(raw) + 1) {
        if (out_size > 0)
            out[0] = '\0';
        return;
    }
    lc_random_bytes(raw, sizeof(raw));
    memcpy(out, prefix, plen);
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[plen + 2 * i] = hex[raw[i] >> 4];
        out[plen + 2 * i + 1] = hex[raw[i] & 15];
    }
    out[plen + 2 * sizeof(raw)] = '\0';
}
