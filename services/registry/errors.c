#include "rg_errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

#define MESSAGE_MAX 512
#define KEY_SHOWN_MAX 64

rg_errors_t *
rg_errors_create(void)
{
    return LC_NEW(rg_errors_t);
}

void
rg_errors_destroy(rg_errors_t *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->count; i++) {
        free(errs->items[i].field);
        free(errs->items[i].message);
    }
    free(errs);
}

void
rg_errors_add(rg_errors_t *errs, const char *field, const char *fmt, ...)
{
    if (errs->count >= RG_ERRORS_MAX) {
        errs->truncated = true;
        return;
    }
    char msg[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    errs->items[errs->count].field = lc_strdup(field ? field : "");
    errs->items[errs->count].message = lc_strdup(msg);
    errs->count++;
}

const char *
rg_errors_find(const rg_errors_t *errs, const char *field)
{
    for (size_t i = 0; i < errs->count; i++)
        if (strcmp(errs->items[i].field, field) == 0)
            return errs->items[i].message;
    return NULL;
}

/* Length of the longest prefix of s (at most max bytes) that ends on a UTF-8 boundary. */
static size_t
utf8_cut(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Drops a multi-byte sequence that snprintf cut in half at the end of s. */
static void
utf8_trim_end(char *s)
{
    size_t len = strlen(s);
    size_t start = len;
    while (start > 0 && ((unsigned char) s[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return;
    unsigned char lead = (unsigned char) s[start - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (start - 1 + need > len)
        s[start - 1] = '\0';
}

void
rg_path_key(char *out, const char *parent, const char *key)
{
    size_t keep = utf8_cut(key, KEY_SHOWN_MAX);
    const char *more = key[keep] != '\0' ? "..." : "";
    /* parent is itself bounded by RG_PATH_MAX; when it is long, cut the parent instead of
     * failing: the end of a path is the useful part, but a path this deep is pathological. */
    int n = snprintf(out, RG_PATH_MAX, "%s%s%.*s%s", parent, parent[0] ? "." : "", (int) keep, key,
                     more);
    if (n >= RG_PATH_MAX)
        utf8_trim_end(out);
}

void
rg_path_index(char *out, const char *parent, size_t index)
{
    int n = snprintf(out, RG_PATH_MAX, "%s[%zu]", parent, index);
    if (n >= RG_PATH_MAX)
        utf8_trim_end(out);
}
