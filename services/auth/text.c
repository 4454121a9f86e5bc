#include "au_text.h"

#include <string.h>
#include <time.h>

void
au_hex(const uint8_t *data, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[data[i] >> 4];
        out[2 * i + 1] = hex[data[i] & 15];
    }
    out[2 * n] = '\0';
}

bool
au_id_valid(const char *text, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (strncmp(text, prefix, plen) != 0 || strlen(text) != plen + 20)
        return false;
    for (const char *p = text + plen; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

size_t
au_utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char) *s & 0xc0) != 0x80)
            n++;
    return n;
}

bool
au_has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char) *s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static bool
digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

bool
au_parse_rfc3339(const char *text, int64_t *epoch_ms_out)
{
    int year, month, day, hour, minute, second;
    const char *p = text;
    if (strlen(text) < 20 || strlen(text) > 40)
        return false;
    if (!digits(p, 4, &year) || p[4] != '-' || !digits(p + 5, 2, &month) || p[7] != '-' ||
        !digits(p + 8, 2, &day) || (p[10] != 'T' && p[10] != 't') || !digits(p + 11, 2, &hour) ||
        p[13] != ':' || !digits(p + 14, 2, &minute) || p[16] != ':' || !digits(p + 17, 2, &second))
        return false;
    p += 19;
    int ms = 0;
    if (*p == '.') {
        p++;
        int nfrac = 0;
        while (*p >= '0' && *p <= '9') {
            if (nfrac < 3)
                ms = ms * 10 + (*p - '0');
            nfrac++;
            p++;
        }
        if (nfrac == 0)
            return false;
        for (int i = nfrac; i < 3; i++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    /* a leap second (60) is accepted as RFC 3339 allows and lands on the next second */
    if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60)
        return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > mdays[month - 1] + (month == 2 && leap ? 1 : 0))
        return false;
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    time_t secs = timegm(&tm);
    *epoch_ms_out = ((int64_t) secs - (int64_t) offset_min * 60) * 1000 + ms;
    return true;
}
