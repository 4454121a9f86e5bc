/*
 * lc_config: one configuration table per program, read from VOXI_* environment variables.
 *
 * Each entry names a variable, its type, bounds, default and flags, and the offset of the
 * field it fills in the program's config struct (the Redis config.c idea). Loading checks
 * every entry and reports every problem at once; the caller prints them and exits non-zero.
 * The effective configuration is logged with secrets masked, and the same table prints the
 * README's configuration reference (`--config-reference`), so docs and code stay in step.
 *
 * Field types by entry type: STRING and ENUM fill `char *` (owned by the struct, released
 * by lc_config_free; NULL when unset without default), INT fills `int64_t`, BOOL `bool`.
 *
 * Threads: call from the main thread before starting work.
 */
#ifndef LC_CONFIG_H
#define LC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lc_status.h"

typedef enum {
    LC_CFG_STRING = 0,
    LC_CFG_INT,
    LC_CFG_BOOL,
    LC_CFG_ENUM,
} lc_config_type_t;

enum {
    LC_CFG_REQUIRED = 1u << 0, /* must be set (a default makes no sense) */
    LC_CFG_SECRET = 1u << 1,   /* never logged or printed */
};

typedef struct {
    const char *name; /* full variable name, e.g. "VOXI_NATS_URL" */
    lc_config_type_t type;
    const char *default_value; /* as text; NULL = no default */
    int64_t min, max;          /* INT: value bounds; STRING: length bounds (max 0 = 4096) */
    const char *choices;       /* ENUM: "a|b|c" */
    unsigned flags;
    size_t offset; /* offsetof(config struct, field) */
    const char *help;
} lc_config_entry_t;

/* Returns the value of a variable or NULL; tests pass their own. */
typedef const char *(*lc_config_getenv_fn)(const char *name, void *arg);

/*
 * Fills `target` from the environment according to `table`.
 * On LC_ERR_CONFIG, *errors_out receives a new string (caller frees) with one line per
 * problem, and fields that did parse are still filled (release them with lc_config_free).
 * getenv_fn NULL means the process environment.
 */
lc_status_t lc_config_load(const lc_config_entry_t *table, size_t n, void *target,
                           lc_config_getenv_fn getenv_fn, void *getenv_arg, char **errors_out);

/* Logs every entry's effective value (secrets as "********"). */
void lc_config_log(const lc_config_entry_t *table, size_t n, const void *target);

/* Frees the strings that lc_config_load allocated in `target`. */
void lc_config_free(const lc_config_entry_t *table, size_t n, void *target);

/* Markdown table rows: | name | type | default | description |. */
void lc_config_print_reference(const lc_config_entry_t *table, size_t n, FILE *out);

#endif
