/*
 * rg_schema: the small table-driven validator the agent and phone-number schemas use.
 *
 * An object spec lists its fields in the order they are written out; validating an object
 * returns a new object with the fields in that order, defaults filled in, and reports
 * every problem in the rg_errors_t of the context: unknown fields, read-only (server)
 * fields, wrong types, out-of-range numbers, lengths (in characters), enums and patterns.
 *
 * Absent and null are the same for a field (so a JSON merge patch setting a field to null
 * resets it to its default), except for RG_NULLABLE fields, whose null is a value.
 *
 * Private to the registry's validators. Threads: any; no shared state.
 */
#ifndef RG_SCHEMA_H
#define RG_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rg_errors.h"

typedef struct rg_flow rg_flow_t;

/* One validation run. */
typedef struct {
    rg_errors_t *errs;
    rg_flow_t *flow; /* the flow graph being validated, NULL outside response_engine */
} rg_vctx_t;

typedef enum {
    RG_F_STRING,  /* min..max characters; choices or check optional */
    RG_F_INT,     /* integer min..max */
    RG_F_REAL,    /* number rmin..rmax (written as a real) */
    RG_F_BOOL,    /* true/false */
    RG_F_OBJECT,  /* sub spec */
    RG_F_STRINGS, /* array of at most max strings, each item_min..item_max characters */
    RG_F_CUSTOM,  /* custom() decides */
} rg_ftype_t;

enum {
    RG_REQUIRED = 1u << 0, /* absent/null -> "is required" */
    RG_DEFAULT = 1u << 1,  /* absent/null -> default (def_*, {} validated for objects, []) */
    RG_NULLABLE = 1u << 2, /* null is a value (objects: "an object or null"); default null */
    RG_TEMPLATE = 1u << 3, /* strings: {{variable}} references must be well-formed */
};

typedef struct rg_object_spec rg_object_spec_t;

/*
 * A custom field: value is the raw input (NULL when absent, json null when null). Returns
 * the value to store (a new reference) or NULL to leave the field out; adds errors to ctx.
 */
typedef json_t *(*rg_custom_fn)(rg_vctx_t *ctx, const char *path, const json_t *value);

typedef struct {
    const char *name;
    rg_ftype_t type;
    unsigned flags;
    int64_t min, max;           /* STRING: characters; INT: value; STRINGS: max items */
    double rmin, rmax;          /* REAL */
    int64_t item_min, item_max; /* STRINGS: characters of each item */
    const char *def_str;
    int64_t def_int;
    double def_real;
    bool def_bool;
    const char *const *choices; /* STRING enum, NULL-terminated */
    bool (*check)(const char *s, size_t len);
    const char *check_msg; /* the error when check fails */
    const rg_object_spec_t *sub;
    rg_custom_fn custom;
} rg_field_t;

struct rg_object_spec {
    const rg_field_t *fields;
    size_t nfields;
    const char *const *readonly; /* server fields, NULL-terminated, may be NULL */
};

/* Validates `in` (must be an object: the caller checks) against spec; returns a new object. */
json_t *rg_schema_object(rg_vctx_t *ctx, const char *path, const json_t *in,
                         const rg_object_spec_t *spec);

/* Validates one field value (NULL = absent) of spec; returns the value to store or NULL. */
json_t *rg_schema_field(rg_vctx_t *ctx, const char *path, const json_t *value, const rg_field_t *f);

/* Adds "must be <what>" for a value of the wrong JSON type. */
void rg_schema_type_error(rg_vctx_t *ctx, const char *path, const char *what);

/* ---- patterns (s is NUL-terminated, len its length in bytes) ---- */
bool rg_is_language_tag(const char *s, size_t len); /* ^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$ */
bool rg_is_node_id(const char *s, size_t len);      /* ^[A-Za-z0-9_-]{1,64}$ */
bool rg_is_variable(const char *s, size_t len);     /* ^[a-z_][a-z0-9_]{0,63}$ */
bool rg_is_e164(const char *s, size_t len);         /* ^\+[1-9][0-9]{1,14}$ */
bool rg_is_http_url(const char *s, size_t len);     /* http(s)://host..., <= 2048 */
bool rg_is_sip_uri(const char *s, size_t len);      /* sip: or sips: URI, <= 2048 */
bool rg_is_tel_uri(const char *s, size_t len);      /* tel: URI, <= 2048 */
bool rg_is_sip_user(const char *s, size_t len);     /* a SIP user part, 1..64 */
/* Checks {{variable}} references; returns the byte offset of the first malformed one or -1. */
long rg_template_error(const char *s, size_t len);

#define RG_URL_MAX 2048

/* The flow response engine ({type "flow", start, nodes[]}) with its graph checks
 * (flow_validate.c). engine is the raw input object. Returns the value to store. */
json_t *rg_flow_validate(rg_vctx_t *ctx, const char *path, const json_t *engine);

/* A JSON object field of at most max_bytes serialised; absent/null -> {}. */
json_t *rg_schema_small_object(rg_vctx_t *ctx, const char *path, const json_t *value,
                               size_t max_bytes);

#endif
