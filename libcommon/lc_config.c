#include "lc_config.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"

#define STRING_MAX_DEFAULT 4096

typedef struct {
    char *text;
    size_t len, cap;
} errbuf_t;

static void errbuf_add(errbuf_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
errbuf_add(errbuf_t *e, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t add = strnlen(line, sizeof(line)) + 1;
    if (e->len + add + 1 > e->cap) {
        e->cap = (e->len + add + 1) * 2;
        e->text = lc_realloc(e->text, e->cap);
    }
    memcpy(e->text + e->len, line, add - 1);
    e->len += add - 1;
    e->text[e->len++] = '\n';
    e->text[e->len] = '\0';
}

static const char *
process_getenv(const char *name, void *arg)
{
    (void) arg;
    return getenv(name);
}

static bool
enum_has(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t) (bar - p) : strlen(p);
        if (len == vlen && strncmp(p, value, len) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

static lc_status_t
parse_int(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return LC_ERR_INVALID;
    *out = v;
    return LC_OK;
}

static lc_status_t
parse_bool(const char *text, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return LC_OK;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return LC_OK;
        }
    }
    return LC_ERR_INVALID;
}

/* Parses one entry's text into its field; on error appends a line to `errs`. */
static void
apply_entry(const lc_config_entry_t *e, const char *text, bool from_env, void *target,
            errbuf_t *errs)
{
    char *field = (char *) target + e->offset;
    /* Secrets are never echoed, not even in error messages. */
    const char *shown = (e->flags & LC_CFG_SECRET) ? "(secret)" : text;
    const char *origin = from_env ? "" : " (default)";

    switch (e->type) {
    case LC_CFG_STRING: {
        int64_t max = e->max > 0 ? e->max : STRING_MAX_DEFAULT;
        int64_t len = (int64_t) strlen(text);
        if (len < e->min || len > max) {
            errbuf_add(errs, "%s%s: length %" PRId64 " is outside %" PRId64 "..%" PRId64, e->name,
                       origin, len, e->min, max);
            return;
        }
        char **dst = (char **) field;
        free(*dst);
        *dst = lc_strdup(text);
        return;
    }
    case LC_CFG_ENUM: {
        if (!enum_has(e->choices, text)) {
            errbuf_add(errs, "%s%s: \"%s\" is not one of %s", e->name, origin, shown, e->choices);
            return;
        }
        char **dst = (char **) field;
        free(*dst);
        *dst = lc_strdup(text);
        return;
    }
    case LC_CFG_INT: {
        int64_t v;
        if (parse_int(text, &v) != LC_OK) {
            errbuf_add(errs, "%s%s: \"%s\" is not an integer", e->name, origin, shown);
            return;
        }
        if (v < e->min || v > e->max) {
            errbuf_add(errs, "%s%s: %s is outside %" PRId64 "..%" PRId64, e->name, origin, shown,
                       e->min, e->max);
            return;
        }
        memcpy(field, &v, sizeof(v));
        return;
    }
    case LC_CFG_BOOL: {
        bool v;
        if (parse_bool(text, &v) != LC_OK) {
            errbuf_add(errs, "%s%s: \"%s\" is not a boolean (true/false)", e->name, origin, shown);
            return;
        }
        memcpy(field, &v, sizeof(v));
        return;
    }
    }
}

lc_status_t
lc_config_load(const lc_config_entry_t *table, size_t n, void *target,
               lc_config_getenv_fn getenv_fn, void *getenv_arg, char **errors_out)
{
    errbuf_t errs = {0};
    if (getenv_fn == NULL)
        getenv_fn = process_getenv;
    *errors_out = NULL;

    for (size_t i = 0; i < n; i++) {
        const lc_config_entry_t *e = &table[i];
        const char *text = getenv_fn(e->name, getenv_arg);
        bool from_env = text != NULL && text[0] != '\0';
        if (!from_env) {
            if (e->flags & LC_CFG_REQUIRED) {
                errbuf_add(&errs, "%s: required but not set (%s)", e->name, e->help);
                continue;
            }
            text = e->default_value;
            if (text == NULL)
                continue;
        }
        apply_entry(e, text, from_env, target, &errs);
    }

    if (errs.len > 0) {
        *errors_out = errs.text;
        return LC_ERR_CONFIG;
    }
    return LC_OK;
}

static void
format_value(const lc_config_entry_t *e, const void *target, char *out, size_t out_size)
{
    const char *field = (const char *) target + e->offset;
    switch (e->type) {
    case LC_CFG_STRING:
    case LC_CFG_ENUM: {
        const char *s = *(char *const *) field;
        if (s == NULL)
            snprintf(out, out_size, "(unset)");
        else if (e->flags & LC_CFG_SECRET)
            snprintf(out, out_size, "********");
        else
            snprintf(out, out_size, "%s", s);
        return;
    }
    case LC_CFG_INT: {
        int64_t v;
        memcpy(&v, field, sizeof(v));
        snprintf(out, out_size, "%" PRId64, v);
        return;
    }
    case LC_CFG_BOOL: {
        bool v;
        memcpy(&v, field, sizeof(v));
        snprintf(out, out_size, "%s", v ? "true" : "false");
        return;
    }
    }
}

void
lc_config_log(const lc_config_entry_t *table, size_t n, const void *target)
{
    for (size_t i = 0; i < n; i++) {
        char value[256];
        format_value(&table[i], target, value, sizeof(value));
        LC_INFO("config", "%s=%s", table[i].name, value);
    }
}

void
lc_config_free(const lc_config_entry_t *table, size_t n, void *target)
{
    for (size_t i = 0; i < n; i++) {
        if (table[i].type != LC_CFG_STRING && table[i].type != LC_CFG_ENUM)
            continue;
        char **field = (char **) ((char *) target + table[i].offset);
        free(*field);
        *field = NULL;
    }
}

static const char *
type_text(const lc_config_entry_t *e, char *buf, size_t size)
{
    switch (e->type) {
    case LC_CFG_STRING:
        return "string";
    case LC_CFG_BOOL:
        return "bool";
    case LC_CFG_ENUM: {
        /* a '|' would split the markdown cell, even inside a code span: escape it */
        size_t o = 0;
        for (const char *c = e->choices; *c && o + 3 < size; c++) {
            if (*c == '|')
                buf[o++] = '\\';
            buf[o++] = *c;
        }
        buf[o] = '\0';
        return buf;
    }
    case LC_CFG_INT:
        snprintf(buf, size, "int %" PRId64 "..%" PRId64, e->min, e->max);
        return buf;
    }
    return "?";
}

void
lc_config_print_reference(const lc_config_entry_t *table, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        const lc_config_entry_t *e = &table[i];
        char tbuf[160];
        char dbuf[160];
        const char *def;
        if (e->flags & LC_CFG_REQUIRED)
            def = "required";
        else if (e->default_value == NULL)
            def = "unset";
        else {
            snprintf(dbuf, sizeof(dbuf), "`%s`", e->default_value);
            def = dbuf;
        }
        fprintf(out, "| `%s` | %s | %s | %s%s |\n", e->name, type_text(e, tbuf, sizeof(tbuf)), def,
                e->help, (e->flags & LC_CFG_SECRET) ? " (secret: never logged)" : "");
    }
}
