/*
 * Helpers shared by the registry's validator tests: parse a JSON literal, validate it, and
 * assert on the field errors.
 */
#ifndef RG_TEST_H
#define RG_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../../../../services/registry/rg_errors.h"
#include "../../../../services/registry/rg_validate.h"

static inline json_t *
parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, 0, &err);
    if (v == NULL)
        fprintf(stderr, "test JSON does not parse: %s: %s\n", err.text, text);
    assert_non_null(v);
    return v;
}

static inline void
dump_errors(const rg_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "  %s: %s\n", errs->items[i].field, errs->items[i].message);
}

/* Asserts an error at `field` whose message contains `part`. */
static inline void
expect_error(const rg_errors_t *errs, const char *field, const char *part)
{
    const char *msg = rg_errors_find(errs, field);
    if (msg == NULL || strstr(msg, part) == NULL) {
        fprintf(stderr, "expected error at %s containing \"%s\"; got:\n", field, part);
        dump_errors(errs);
    }
    assert_non_null(msg);
    assert_non_null(strstr(msg, part));
}

static inline void
expect_no_error_at(const rg_errors_t *errs, const char *field)
{
    if (rg_errors_find(errs, field) != NULL)
        dump_errors(errs);
    assert_null(rg_errors_find(errs, field));
}

#endif
