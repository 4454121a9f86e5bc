/*
 * The agent document (see README / the API design): every field, bound and default.
 */
#include <string.h>

#include "rg_schema.h"
#include "rg_validate.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *const rg_agent_readonly[] = {"id",         "object",     "version",
                                         "created_at", "updated_at", NULL};

static const char *const engine_types[] = {"flow", "llm", "custom_llm", NULL};

#define LANGUAGE_MSG "must be a language tag such as \"en-US\""
#define URL_MSG "must be an http or https URL of at most 2048 characters"

/* ---- voice, transcriber, interruptions, endpointing, webhook ---- */

static const rg_field_t voice_fields[] = {
    {.name = "provider",
     .type = RG_F_STRING,
     .flags = RG_DEFAULT,
     .min = 1,
     .max = 64,
     .def_str = "flite"},
    {.name = "voice_id",
     .type = RG_F_STRING,
     .flags = RG_DEFAULT,
     .min = 1,
     .max = 128,
     .def_str = "kal"},
    {.name = "speed",
     .type = RG_F_REAL,
     .flags = RG_DEFAULT,
     .rmin = 0.5,
     .rmax = 2,
     .def_real = 1},
};
static const rg_object_spec_t voice_spec = {voice_fields, COUNT(voice_fields), NULL};

static const rg_field_t transcriber_fields[] = {
    {.name = "provider",
     .type = RG_F_STRING,
     .flags = RG_DEFAULT,
     .min = 1,
     .max = 64,
     .def_str = "pocketsphinx"},
    {.name = "model",
     .type = RG_F_STRING,
     .flags = RG_DEFAULT,
     .min = 1,
     .max = 128,
     .def_str = "en-us"},
    {.name = "language",
     .type = RG_F_STRING,
     .flags = RG_DEFAULT,
     .min = 2,
     .max = 64,
     .def_str = "en-US",
     .check = rg_is_language_tag,
     .check_msg = LANGUAGE_MSG},
    {.name = "keywords",
     .type = RG_F_STRINGS,
     .flags = RG_DEFAULT,
     .max = 100,
     .item_min = 1,
     .item_max = 100},
};
static const rg_object_spec_t transcriber_spec = {transcriber_fields, COUNT(transcriber_fields),
                                                  NULL};

static const rg_field_t interruptions_fields[] = {
    {.name = "enabled", .type = RG_F_BOOL, .flags = RG_DEFAULT, .def_bool = true},
    {.name = "min_speech_ms",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 0,
     .max = 5000,
     .def_int = 200},
    {.name = "min_words", .type = RG_F_INT, .flags = RG_DEFAULT, .min = 0, .max = 10, .def_int = 0},
    {.name = "ignore_phrases",
     .type = RG_F_STRINGS,
     .flags = RG_DEFAULT,
     .max = 50,
     .item_min = 1,
     .item_max = 100},
};
static const rg_object_spec_t interruptions_spec = {interruptions_fields,
                                                    COUNT(interruptions_fields), NULL};

static const rg_field_t endpointing_fields[] = {
    {.name = "silence_ms",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 100,
     .max = 5000,
     .def_int = 500},
    {.name = "max_wait_ms",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 500,
     .max = 30000,
     .def_int = 5000},
};
static const rg_object_spec_t endpointing_spec = {endpointing_fields, COUNT(endpointing_fields),
                                                  NULL};

static const rg_field_t webhook_fields[] = {
    {.name = "url",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED,
     .min = 1,
     .max = 2048,
     .check = rg_is_http_url,
     .check_msg = URL_MSG},
    {.name = "events",
     .type = RG_F_STRINGS,
     .flags = RG_DEFAULT,
     .max = 50,
     .item_min = 1,
     .item_max = 100},
};
static const rg_object_spec_t webhook_spec = {webhook_fields, COUNT(webhook_fields), NULL};

/* ---- response engines ---- */

static json_t *
parameters_field(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    return rg_schema_small_object(ctx, path, value, RG_METADATA_MAX_BYTES);
}

static const rg_field_t tool_fields[] = {
    {.name = "name",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED,
     .min = 1,
     .max = 64,
     .check = rg_is_node_id,
     .check_msg = "must match ^[a-zA-Z0-9_-]{1,64}$"},
    {.name = "description", .type = RG_F_STRING, .flags = RG_DEFAULT, .min = 0, .max = 1024},
    {.name = "url",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED,
     .min = 1,
     .max = 2048,
     .check = rg_is_http_url,
     .check_msg = URL_MSG},
    {.name = "parameters", .type = RG_F_CUSTOM, .custom = parameters_field},
    {.name = "timeout_ms",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 100,
     .max = 30000,
     .def_int = 5000},
};
static const rg_object_spec_t tool_spec = {tool_fields, COUNT(tool_fields), NULL};

#define TOOLS_MAX 32

static json_t *
tools_field(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    if (value == NULL || json_is_null(value))
        return json_array();
    if (!json_is_array(value)) {
        rg_schema_type_error(ctx, path, "an array");
        return NULL;
    }
    if (json_array_size(value) > TOOLS_MAX) {
        rg_errors_add(ctx->errs, path, "must have at most %d items", TOOLS_MAX);
        return NULL;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(value); i++) {
        char ipath[RG_PATH_MAX], npath[RG_PATH_MAX];
        rg_path_index(ipath, path, i);
        const json_t *tool = json_array_get(value, i);
        if (!json_is_object(tool)) {
            rg_schema_type_error(ctx, ipath, "an object");
            continue;
        }
        json_array_append_new(out, rg_schema_object(ctx, ipath, tool, &tool_spec));
        const char *name = json_string_value(json_object_get(tool, "name"));
        for (size_t j = 0; name != NULL && j < i; j++) {
            const char *other =
                json_string_value(json_object_get(json_array_get(value, j), "name"));
            if (other != NULL && strcmp(other, name) == 0) {
                rg_path_key(npath, ipath, "name");
                rg_errors_add(ctx->errs, npath, "duplicate tool name \"%s\"", name);
                break;
            }
        }
    }
    return out;
}

static const rg_field_t llm_fields[] = {
    {.name = "type", .type = RG_F_STRING, .flags = RG_REQUIRED, .choices = engine_types},
    {.name = "provider", .type = RG_F_STRING, .flags = RG_REQUIRED, .min = 1, .max = 64},
    {.name = "model", .type = RG_F_STRING, .flags = RG_REQUIRED, .min = 1, .max = 200},
    {.name = "temperature",
     .type = RG_F_REAL,
     .flags = RG_DEFAULT,
     .rmin = 0,
     .rmax = 2,
     .def_real = 0.7},
    {.name = "system_prompt", .type = RG_F_STRING, .flags = RG_DEFAULT, .min = 0, .max = 32768},
    {.name = "tools", .type = RG_F_CUSTOM, .custom = tools_field},
};
static const rg_object_spec_t llm_spec = {llm_fields, COUNT(llm_fields), NULL};

static const rg_field_t custom_llm_fields[] = {
    {.name = "type", .type = RG_F_STRING, .flags = RG_REQUIRED, .choices = engine_types},
    {.name = "url",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED,
     .min = 1,
     .max = 2048,
     .check = rg_is_http_url,
     .check_msg = URL_MSG},
};
static const rg_object_spec_t custom_llm_spec = {custom_llm_fields, COUNT(custom_llm_fields), NULL};

static json_t *
engine_field(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    if (value == NULL || json_is_null(value)) {
        rg_errors_add(ctx->errs, path, "is required");
        return NULL;
    }
    if (!json_is_object(value)) {
        rg_schema_type_error(ctx, path, "an object");
        return NULL;
    }
    const json_t *type = json_object_get(value, "type");
    char tpath[RG_PATH_MAX];
    rg_path_key(tpath, path, "type");
    const char *t = json_string_value(type);
    if (type == NULL || json_is_null(type)) {
        rg_errors_add(ctx->errs, tpath, "is required");
        return NULL;
    }
    if (t != NULL && strcmp(t, "flow") == 0)
        return rg_flow_validate(ctx, path, value);
    if (t != NULL && strcmp(t, "llm") == 0)
        return rg_schema_object(ctx, path, value, &llm_spec);
    if (t != NULL && strcmp(t, "custom_llm") == 0)
        return rg_schema_object(ctx, path, value, &custom_llm_spec);
    /* a bad type: report it alone, the other fields depend on it */
    return rg_schema_field(ctx, tpath, type, &llm_fields[0]);
}

/* ---- the agent ---- */

static json_t *
metadata_field(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    return rg_schema_small_object(ctx, path, value, RG_METADATA_MAX_BYTES);
}

static const rg_field_t agent_fields[] = {
    {.name = "name", .type = RG_F_STRING, .flags = RG_REQUIRED, .min = 1, .max = 200},
    {.name = "language",
     .type = RG_F_STRING,
     .flags = RG_DEFAULT,
     .min = 2,
     .max = 64,
     .def_str = "en-US",
     .check = rg_is_language_tag,
     .check_msg = LANGUAGE_MSG},
    {.name = "first_message",
     .type = RG_F_STRING,
     .flags = RG_DEFAULT | RG_TEMPLATE,
     .min = 0,
     .max = 2000},
    {.name = "voice", .type = RG_F_OBJECT, .flags = RG_DEFAULT, .sub = &voice_spec},
    {.name = "transcriber", .type = RG_F_OBJECT, .flags = RG_DEFAULT, .sub = &transcriber_spec},
    {.name = "response_engine", .type = RG_F_CUSTOM, .custom = engine_field},
    {.name = "interruptions", .type = RG_F_OBJECT, .flags = RG_DEFAULT, .sub = &interruptions_spec},
    {.name = "endpointing", .type = RG_F_OBJECT, .flags = RG_DEFAULT, .sub = &endpointing_spec},
    {.name = "max_duration_s",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 10,
     .max = 14400,
     .def_int = 1800},
    {.name = "silence_timeout_s",
     .type = RG_F_INT,
     .flags = RG_DEFAULT,
     .min = 0,
     .max = 600,
     .def_int = 30},
    {.name = "end_call_phrases",
     .type = RG_F_STRINGS,
     .flags = RG_DEFAULT,
     .max = 20,
     .item_min = 1,
     .item_max = 200},
    {.name = "webhook", .type = RG_F_OBJECT, .flags = RG_NULLABLE, .sub = &webhook_spec},
    {.name = "metadata", .type = RG_F_CUSTOM, .custom = metadata_field},
};
static const rg_object_spec_t agent_spec = {agent_fields, COUNT(agent_fields), rg_agent_readonly};

json_t *
rg_agent_validate(const json_t *doc, rg_errors_t *errs)
{
    rg_vctx_t ctx = {.errs = errs};
    size_t before = errs->count;
    if (!json_is_object(doc)) {
        rg_errors_add(errs, "", "must be a JSON object");
        return NULL;
    }
    json_t *out = rg_schema_object(&ctx, "", doc, &agent_spec);
    if (errs->count > before || errs->truncated) {
        json_decref(out);
        return NULL;
    }
    return out;
}
