#include "wh_model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

/* Length of the valid UTF-8 sequence at p (n bytes available), 0 when invalid or cut
 * (RFC 3629 section 4: no overlongs, no surrogates, nothing past U+10FFFF). */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t
wh_model_safe_text(const char *in, size_t len, char *out, size_t out_size)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *) in;
    if (out_size == 0)
        return 0;
    for (size_t i = 0; i < len && o + 1 < out_size;) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0) {
            /* a sequence cut by the end of what we kept is dropped, not replaced */
            if (len - i < 4 && p[i] >= 0xc2 && p[i] <= 0xf4)
                break;
            out[o++] = '?';
            i++;
            continue;
        }
        if (n == 1 && p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') {
            out[o++] = '?';
            i++;
            continue;
        }
        if (o + n + 1 > out_size)
            break;
        for (size_t k = 0; k < n; k++)
            out[o++] = (char) p[i + k];
        i += n;
    }
    out[o] = '\0';
    return o;
}

/* ---- wh_buf ---- */

static void
reserve(wh_buf_t *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->data = lc_realloc(b->data, cap);
    b->cap = cap;
}

void
wh_buf_append(wh_buf_t *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
wh_buf_str(wh_buf_t *b, const char *s)
{
    wh_buf_append(b, s, strlen(s));
}

void
wh_buf_printf(wh_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    reserve(b, (size_t) n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

void
wh_buf_json_string(wh_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    reserve(b, n + 2);
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char) c};
            wh_buf_append(b, esc, 2);
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            wh_buf_append(b, esc, 6);
        } else {
            reserve(b, 1);
            b->data[b->len++] = (char) c;
        }
    }
    reserve(b, 1);
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
}

void
wh_buf_free(wh_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
