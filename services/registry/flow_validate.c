/*
 * The flow response engine: node schemas, then the graph: start is a node, node ids are
 * unique, every target (next, fallback, on_error, choices[].next) names a node, and every
 * node can be reached from start.
 */
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "rg_schema.h"
#include "rg_validate.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define CHOICES_MAX 12

typedef struct {
    char path[RG_PATH_MAX];
    char *target;
    size_t from; /* index of the node holding the reference */
} flow_ref_t;

struct rg_flow {
    size_t current; /* node being validated */
    flow_ref_t *refs;
    size_t nrefs, cap;
};

static const char *const node_types[] = {"say",     "listen", "menu", "transfer",
                                         "webhook", "hangup", NULL};
static const char *const digits[] = {"0", "1", "2", "3", "4", "5", "6",
                                     "7", "8", "9", "*", "#", NULL};

#define URL_MSG "must be an http or https URL of at most 2048 characters"
#define VARIABLE_MSG "must match ^[a-z_][a-z0-9_]{0,63}$"
#define NODE_ID_MSG "must match ^[A-Za-z0-9_-]{1,64}$"

/* ---- node references ---- */

static json_t *
ref_field(rg_vctx_t *ctx, const char *path, const json_t *value, bool required)
{
    if (value == NULL || json_is_null(value)) {
        if (required)
            rg_errors_add(ctx->errs, path, "is required");
        return NULL;
    }
    if (!json_is_string(value)) {
        rg_schema_type_error(ctx, path, "a string (a node id)");
        return NULL;
    }
    rg_flow_t *flow = ctx->flow;
    if (flow->nrefs == flow->cap) {
        flow->cap = flow->cap ? flow->cap * 2 : 32;
        flow->refs = lc_realloc(flow->refs, flow->cap * sizeof(flow_ref_t));
    }
    flow_ref_t *r = &flow->refs[flow->nrefs++];
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->target = lc_strdup(json_string_value(value));
    r->from = flow->current;
    return json_deep_copy(value);
}

static json_t *
next_required(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    return ref_field(ctx, path, value, true);
}

static json_t *
next_optional(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    return ref_field(ctx, path, value, false);
}

static bool
is_transfer_target(const char *s, size_t len)
{
    return rg_is_sip_uri(s, len) || rg_is_tel_uri(s, len) || rg_is_e164(s, len);
}

/* ---- node specs (id and type first in each) ---- */

#define NODE_HEAD                                                                                  \
    {.name = "id",                                                                                 \
     .type = RG_F_STRING,                                                                          \
     .flags = RG_REQUIRED,                                                                         \
     .min = 1,                                                                                     \
     .max = 64,                                                                                    \
     .check = rg_is_node_id,                                                                       \
     .check_msg = NODE_ID_MSG},                                                                    \
    {                                                                                              \
        .name = "type", .type = RG_F_STRING, .flags = RG_REQUIRED, .choices = node_types           \
    }

static const rg_field_t say_fields[] = {
    NODE_HEAD,
    {.name = "text",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED | RG_TEMPLATE,
     .min = 1,
     .max = 2000},
    {.name = "next", .type = RG_F_CUSTOM, .custom = next_required},
};

static const rg_field_t listen_fields[] = {
    NODE_HEAD,
    {.name = "prompt", .type = RG_F_STRING, .flags = RG_TEMPLATE, .min = 0, .max = 2000},
    {.name = "variable",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED,
     .min = 1,
     .max = 64,
     .check = rg_is_variable,
     .check_msg = VARIABLE_MSG},
    {.name = "timeout_ms",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 1000,
     .max = 60000,
     .def_int = 8000},
    {.name = "next", .type = RG_F_CUSTOM, .custom = next_required},
};

static const rg_field_t choice_fields[] = {
    {.name = "keywords",
     .type = RG_F_STRINGS,
     .flags = RG_DEFAULT,
     .max = 20,
     .item_min = 1,
     .item_max = 100},
    {.name = "digit", .type = RG_F_STRING, .choices = digits},
    {.name = "next", .type = RG_F_CUSTOM, .custom = next_required},
};
static const rg_object_spec_t choice_spec = {choice_fields, COUNT(choice_fields), NULL};

static json_t *
choices_field(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    if (value == NULL || json_is_null(value)) {
        rg_errors_add(ctx->errs, path, "is required");
        return NULL;
    }
    if (!json_is_array(value)) {
        rg_schema_type_error(ctx, path, "an array");
        return NULL;
    }
    size_t n = json_array_size(value);
    if (n < 1 || n > CHOICES_MAX) {
        rg_errors_add(ctx->errs, path, "must have 1 to %d items", CHOICES_MAX);
        return NULL;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        char ipath[RG_PATH_MAX], dpath[RG_PATH_MAX];
        rg_path_index(ipath, path, i);
        const json_t *choice = json_array_get(value, i);
        if (!json_is_object(choice)) {
            rg_schema_type_error(ctx, ipath, "an object");
            continue;
        }
        json_t *c = rg_schema_object(ctx, ipath, choice, &choice_spec);
        const json_t *kw = json_object_get(choice, "keywords");
        const char *digit = json_string_value(json_object_get(choice, "digit"));
        if ((!json_is_array(kw) || json_array_size(kw) == 0) && digit == NULL)
            rg_errors_add(ctx->errs, ipath, "needs keywords or a digit");
        for (size_t j = 0; digit != NULL && j < i; j++) {
            const char *other =
                json_string_value(json_object_get(json_array_get(value, j), "digit"));
            if (other != NULL && strcmp(other, digit) == 0) {
                rg_path_key(dpath, ipath, "digit");
                rg_errors_add(ctx->errs, dpath, "duplicate digit \"%s\" in this menu", digit);
                break;
            }
        }
        json_array_append_new(out, c);
    }
    return out;
}

static const rg_field_t menu_fields[] = {
    NODE_HEAD,
    {.name = "prompt",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED | RG_TEMPLATE,
     .min = 1,
     .max = 2000},
    {.name = "choices", .type = RG_F_CUSTOM, .custom = choices_field},
    {.name = "retries", .type = RG_F_INT, .flags = RG_DEFAULT, .min = 0, .max = 5, .def_int = 2},
    {.name = "no_input_prompt", .type = RG_F_STRING, .flags = RG_TEMPLATE, .min = 0, .max = 2000},
    {.name = "no_match_prompt", .type = RG_F_STRING, .flags = RG_TEMPLATE, .min = 0, .max = 2000},
    {.name = "timeout_ms",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 1000,
     .max = 30000,
     .def_int = 5000},
    {.name = "fallback", .type = RG_F_CUSTOM, .custom = next_required},
};

static const rg_field_t transfer_fields[] = {
    NODE_HEAD,
    {.name = "to",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED,
     .min = 1,
     .max = 2048,
     .check = is_transfer_target,
     .check_msg = "must be a sip:, sips: or tel: URI or an E.164 number (+15551234567)"},
    {.name = "message", .type = RG_F_STRING, .flags = RG_TEMPLATE, .min = 0, .max = 2000},
};

static const rg_field_t webhook_fields[] = {
    NODE_HEAD,
    {.name = "url",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED | RG_TEMPLATE,
     .min = 1,
     .max = 2048,
     .check = rg_is_http_url,
     .check_msg = URL_MSG},
    {.name = "result_variable",
     .type = RG_F_STRING,
     .min = 1,
     .max = 64,
     .check = rg_is_variable,
     .check_msg = VARIABLE_MSG},
    {.name = "timeout_ms",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 100,
     .max = 30000,
     .def_int = 5000},
    {.name = "next", .type = RG_F_CUSTOM, .custom = next_required},
    {.name = "on_error", .type = RG_F_CUSTOM, .custom = next_optional},
};

static const rg_field_t hangup_fields[] = {
    NODE_HEAD,
    {.name = "message", .type = RG_F_STRING, .flags = RG_TEMPLATE, .min = 0, .max = 2000},
};

static const struct {
    const char *type;
    rg_object_spec_t spec;
} node_specs[] = {
    {"say", {say_fields, COUNT(say_fields), NULL}},
    {"listen", {listen_fields, COUNT(listen_fields), NULL}},
    {"menu", {menu_fields, COUNT(menu_fields), NULL}},
    {"transfer", {transfer_fields, COUNT(transfer_fields), NULL}},
    {"webhook", {webhook_fields, COUNT(webhook_fields), NULL}},
    {"hangup", {hangup_fields, COUNT(hangup_fields), NULL}},
};

/* A node whose type is missing or unknown: only id and type are checked. */
static const rg_field_t head_fields[] = {NODE_HEAD};

static json_t *
validate_node(rg_vctx_t *ctx, const char *path, const json_t *node)
{
    const char *type = json_string_value(json_object_get(node, "type"));
    for (size_t i = 0; type != NULL && i < COUNT(node_specs); i++)
        if (strcmp(node_specs[i].type, type) == 0)
            return rg_schema_object(ctx, path, node, &node_specs[i].spec);
    json_t *out = json_object();
    char fpath[RG_PATH_MAX];
    for (size_t i = 0; i < COUNT(head_fields); i++) {
        rg_path_key(fpath, path, head_fields[i].name);
        json_t *v = rg_schema_field(ctx, fpath, json_object_get(node, head_fields[i].name),
                                    &head_fields[i]);
        if (v != NULL)
            json_object_set_new(out, head_fields[i].name, v);
    }
    return out;
}

/* ---- the graph ---- */

/* Index of the first node with this id among the first n, or -1. */
static long
find_node(const json_t *nodes, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        const char *other = json_string_value(json_object_get(json_array_get(nodes, i), "id"));
        if (other != NULL && strcmp(other, id) == 0)
            return (long) i;
    }
    return -1;
}

static void
check_graph(rg_vctx_t *ctx, const char *path, const json_t *nodes, const json_t *start)
{
    rg_flow_t *flow = ctx->flow;
    size_t n = json_array_size(nodes);
    char npath[RG_PATH_MAX], ipath[RG_PATH_MAX], fpath[RG_PATH_MAX];
    rg_path_key(npath, path, "nodes");

    /* duplicate ids: the first node with an id owns it */
    bool *duplicate = lc_calloc(n, sizeof(bool));
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(nodes, i), "id"));
        if (id != NULL && find_node(nodes, i, id) >= 0) {
            duplicate[i] = true;
            rg_path_index(ipath, npath, i);
            rg_path_key(fpath, ipath, "id");
            rg_errors_add(ctx->errs, fpath, "duplicate node id \"%s\"", id);
        }
    }

    /* targets */
    long *target = lc_calloc(flow->nrefs ? flow->nrefs : 1, sizeof(long));
    for (size_t r = 0; r < flow->nrefs; r++) {
        target[r] = find_node(nodes, n, flow->refs[r].target);
        if (target[r] < 0)
            rg_errors_add(ctx->errs, flow->refs[r].path, "no node with id \"%s\"",
                          flow->refs[r].target);
    }

    /* start, then reachability (breadth first over the references) */
    char spath[RG_PATH_MAX];
    rg_path_key(spath, path, "start");
    long start_index = -1;
    if (start == NULL || json_is_null(start))
        rg_errors_add(ctx->errs, spath, "is required");
    else if (!json_is_string(start))
        rg_schema_type_error(ctx, spath, "a string (a node id)");
    else if ((start_index = find_node(nodes, n, json_string_value(start))) < 0)
        rg_errors_add(ctx->errs, spath, "no node with id \"%s\"", json_string_value(start));

    if (start_index >= 0) {
        bool *seen = lc_calloc(n, sizeof(bool));
        size_t *queue = lc_calloc(n, sizeof(size_t));
        size_t head = 0, tail = 0;
        seen[start_index] = true;
        queue[tail++] = (size_t) start_index;
        while (head < tail) {
            size_t at = queue[head++];
            for (size_t r = 0; r < flow->nrefs; r++)
                if (flow->refs[r].from == at && target[r] >= 0 && !seen[target[r]]) {
                    seen[target[r]] = true;
                    queue[tail++] = (size_t) target[r];
                }
        }
        for (size_t i = 0; i < n; i++) {
            if (seen[i] || duplicate[i] || !json_is_object(json_array_get(nodes, i)))
                continue;
            rg_path_index(ipath, npath, i);
            rg_errors_add(ctx->errs, ipath, "is not reachable from start");
        }
        free(seen);
        free(queue);
    }
    free(target);
    free(duplicate);
}

static json_t *
nodes_field(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    if (value == NULL || json_is_null(value)) {
        rg_errors_add(ctx->errs, path, "is required");
        return NULL;
    }
    if (!json_is_array(value)) {
        rg_schema_type_error(ctx, path, "an array");
        return NULL;
    }
    size_t n = json_array_size(value);
    if (n < 1 || n > RG_FLOW_MAX_NODES) {
        rg_errors_add(ctx->errs, path, "must have 1 to %d items", RG_FLOW_MAX_NODES);
        return NULL;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        char ipath[RG_PATH_MAX];
        rg_path_index(ipath, path, i);
        const json_t *node = json_array_get(value, i);
        if (!json_is_object(node)) {
            rg_schema_type_error(ctx, ipath, "an object");
            continue;
        }
        ctx->flow->current = i;
        json_array_append_new(out, validate_node(ctx, ipath, node));
    }
    return out;
}

static const char *const engine_type[] = {"flow", NULL};

/* start is checked by check_graph: here it is only carried over. */
static json_t *
start_field(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    (void) ctx;
    (void) path;
    return json_is_string(value) ? json_deep_copy(value) : NULL;
}

static const rg_field_t flow_fields[] = {
    {.name = "type", .type = RG_F_STRING, .flags = RG_REQUIRED, .choices = engine_type},
    {.name = "start", .type = RG_F_CUSTOM, .custom = start_field},
    {.name = "nodes", .type = RG_F_CUSTOM, .custom = nodes_field},
};
static const rg_object_spec_t flow_spec = {flow_fields, COUNT(flow_fields), NULL};

json_t *
rg_flow_validate(rg_vctx_t *ctx, const char *path, const json_t *engine)
{
    rg_flow_t flow = {0};
    rg_flow_t *outer = ctx->flow;
    ctx->flow = &flow;
    json_t *out = rg_schema_object(ctx, path, engine, &flow_spec);
    const json_t *nodes = json_object_get(engine, "nodes");
    if (json_is_array(nodes) && json_array_size(nodes) >= 1 &&
        json_array_size(nodes) <= RG_FLOW_MAX_NODES)
        check_graph(ctx, path, nodes, json_object_get(engine, "start"));
    else {
        /* no graph to check start against: still say when it is missing or not a string */
        const json_t *start = json_object_get(engine, "start");
        char spath[RG_PATH_MAX];
        rg_path_key(spath, path, "start");
        if (start == NULL || json_is_null(start))
            rg_errors_add(ctx->errs, spath, "is required");
        else if (!json_is_string(start))
            rg_schema_type_error(ctx, spath, "a string (a node id)");
    }
    for (size_t i = 0; i < flow.nrefs; i++)
        free(flow.refs[i].target);
    free(flow.refs);
    ctx->flow = outer;
    return out;
}
