/*
 * The phone-number document: number, agent_id, outbound_trunk; plus the helpers shared by
 * both documents (read-only fields of a patch, id syntax).
 */
#include <string.h>

#include "rg_schema.h"
#include "rg_json.h"
#include "rg_validate.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *const rg_number_readonly[] = {"id", "object", "created_at", "updated_at", NULL};
static const char *const trunk_readonly[] = {"has_password", NULL};

static bool
is_number(const char *s, size_t len)
{
    /* "+..." must be E.164; anything else is a SIP user part (an extension, a name) */
    return s[0] == '+' ? rg_is_e164(s, len) : rg_is_sip_user(s, len);
}

static json_t *
agent_id_field(rg_vctx_t *ctx, const char *path, const json_t *value)
{
    if (value == NULL || json_is_null(value))
        return json_null();
    if (!json_is_string(value)) {
        rg_schema_type_error(ctx, path, "a string (an agent id) or null");
        return NULL;
    }
    if (!rg_id_valid(json_string_value(value), "agt_")) {
        rg_errors_add(ctx->errs, path, "must be an agent id (agt_ followed by 20 hex digits)");
        return NULL;
    }
    return json_deep_copy(value);
}

static const rg_field_t trunk_fields[] = {
    {.name = "uri",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED,
     .min = 1,
     .max = 2048,
     .check = rg_is_sip_uri,
     .check_msg = "must be a sip: or sips: URI"},
    {.name = "username", .type = RG_F_STRING, .min = 1, .max = 128},
    {.name = "password", .type = RG_F_STRING, .min = 1, .max = 128},
};
static const rg_object_spec_t trunk_spec = {trunk_fields, COUNT(trunk_fields), trunk_readonly};

static const rg_field_t number_fields[] = {
    {.name = "number",
     .type = RG_F_STRING,
     .flags = RG_REQUIRED,
     .min = 1,
     .max = 64,
     .check = is_number,
     .check_msg = "must be an E.164 number (+15551234567) or a SIP user part of at most 64 "
                  "characters"},
    {.name = "agent_id", .type = RG_F_CUSTOM, .custom = agent_id_field},
    {.name = "outbound_trunk", .type = RG_F_OBJECT, .flags = RG_NULLABLE, .sub = &trunk_spec},
};
static const rg_object_spec_t number_spec = {number_fields, COUNT(number_fields),
                                             rg_number_readonly};

json_t *
rg_number_validate(const json_t *doc, rg_errors_t *errs)
{
    rg_vctx_t ctx = {.errs = errs};
    size_t before = errs->count;
    if (!json_is_object(doc)) {
        rg_errors_add(errs, "", "must be a JSON object");
        return NULL;
    }
    json_t *out = rg_schema_object(&ctx, "", doc, &number_spec);
    if (errs->count > before || errs->truncated) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *
rg_patch_strip_readonly(const json_t *patch, const char *const *readonly, bool number,
                        rg_errors_t *errs)
{
    json_t *out = json_deep_copy(patch);
    const char *key;
    json_t *value;
    void *tmp;
    char path[RG_PATH_MAX];
    json_object_foreach_safe(out, tmp, key, value)
    {
        if (rg_str_in_list(readonly, key)) {
            rg_path_key(path, "", key);
            rg_errors_add(errs, path, "is read-only");
            json_object_del(out, key);
        }
    }
    json_t *trunk = json_object_get(out, "outbound_trunk");
    if (number && json_is_object(trunk) && json_object_get(trunk, "has_password") != NULL) {
        rg_errors_add(errs, "outbound_trunk.has_password", "is read-only");
        json_object_del(trunk, "has_password");
    }
    return out;
}

bool
rg_id_valid(const char *s, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (s == NULL || strncmp(s, prefix, plen) != 0 || strlen(s) != plen + 20)
        return false;
    for (const char *p = s + plen; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}
