#include "pv_sse.h"

#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

void
pv_sse_init(pv_sse_t *p, size_t max_line, pv_sse_event_cb cb, void *arg)
{
    memset(p, 0, sizeof(*p));
    p->max_line = max_line;
    p->cb = cb;
    p->arg = arg;
}

void
pv_sse_free(pv_sse_t *p)
{
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
}

static void
append(char **buf, size_t *len, size_t *cap, const char *src, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        *buf = lc_realloc(*buf, c);
        *cap = c;
    }
    memcpy(*buf + *len, src, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* One complete line (without its terminator). */
static lc_status_t
process_line(pv_sse_t *p, const char *line, size_t len)
{
    if (len == 0) {
        if (p->has_data) {
            bool go = p->cb(p->arg, p->data ? p->data : "", p->data_len);
            p->data_len = 0;
            if (p->data)
                p->data[0] = '\0';
            p->has_data = false;
            if (!go)
                return LC_ERR_CANCELLED;
        }
        return LC_OK;
    }
    if (line[0] == ':')
        return LC_OK;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t) (colon - line) : len;
    if (name_len != 4 || memcmp(line, "data", 4) != 0)
        return LC_OK;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = (size_t) (line + len - value);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (p->data_len + value_len + 1 > p->max_line)
        return LC_ERR_TOO_LARGE;
    if (p->has_data)
        append(&p->data, &p->data_len, &p->data_cap, "\n", 1);
    append(&p->data, &p->data_len, &p->data_cap, value, value_len);
    p->has_data = true;
    return LC_OK;
}

lc_status_t
pv_sse_feed(pv_sse_t *p, const char *buf, size_t len)
{
    size_t i = 0;
    if (p->last_cr && len > 0 && buf[0] == '\n')
        i = 1;
    p->last_cr = false;
    while (i < len) {
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        if (j == len) { /* partial line: keep it */
            if (p->line_len + (j - i) > p->max_line)
                return LC_ERR_TOO_LARGE;
            append(&p->line, &p->line_len, &p->line_cap, buf + i, j - i);
            return LC_OK;
        }
        lc_status_t st;
        if (p->line_len > 0) {
            if (p->line_len + (j - i) > p->max_line)
                return LC_ERR_TOO_LARGE;
            append(&p->line, &p->line_len, &p->line_cap, buf + i, j - i);
            size_t n = p->line_len;
            p->line_len = 0; /* the buffer stays valid until the next append */
            st = process_line(p, p->line, n);
        } else {
            if (j - i > p->max_line)
                return LC_ERR_TOO_LARGE;
            st = process_line(p, buf + i, j - i);
        }
        if (st != LC_OK)
            return st;
        if (buf[j] == '\r') {
            if (j + 1 < len) {
                if (buf[j + 1] == '\n')
                    j++;
            } else {
                p->last_cr = true;
            }
        }
        i = j + 1;
    }
    return LC_OK;
}
