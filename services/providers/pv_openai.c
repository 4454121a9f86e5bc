#include "pv_openai.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

static json_t *
message_json(const Voxi__V1__LlmMessage *m, char *err, size_t err_size)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    bool known = false;
    for (size_t i = 0; i < 4; i++)
        known = known || strcmp(m->role, roles[i]) == 0;
    if (!known) {
        snprintf(err, err_size, "unknown message role \"%.20s\"", m->role);
        return NULL;
    }
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(m->role));
    if (strcmp(m->role, "assistant") == 0 && m->n_tool_calls > 0 && m->content[0] == '\0')
        json_object_set_new(o, "content", json_null());
    else
        json_object_set_new(o, "content", json_string(m->content));
    if (strcmp(m->role, "tool") == 0)
        json_object_set_new(o, "tool_call_id", json_string(m->tool_call_id));
    if (m->n_tool_calls > 0) {
        json_t *calls = json_array();
        for (size_t i = 0; i < m->n_tool_calls; i++) {
            const Voxi__V1__LlmToolCall *c = m->tool_calls[i];
            json_array_append_new(calls,
                                  json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", c->id, "type",
                                            "function", "function", "name", c->name, "arguments",
                                            c->arguments_json[0] ? c->arguments_json : "{}"));
        }
        json_object_set_new(o, "tool_calls", calls);
    }
    return o;
}

lc_status_t
pv_openai_request_body(const Voxi__V1__LlmConfig *cfg, const char *default_model, char **out,
                       char *err, size_t err_size)
{
    *out = NULL;
    if (cfg == NULL || cfg->n_messages == 0) {
        snprintf(err, err_size, "llm.messages is empty");
        return LC_ERR_INVALID;
    }
    const char *model = cfg->model[0] ? cfg->model : default_model;
    if (model == NULL || model[0] == '\0') {
        snprintf(err, err_size, "no model: set llm.model or VOXI_PROVIDERS_OPENAI_MODEL");
        return LC_ERR_INVALID;
    }
    json_t *root = json_object();
    json_object_set_new(root, "model", json_string(model));
    json_object_set_new(root, "stream", json_true());
    json_object_set_new(root, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if (cfg->temperature > 0)
        json_object_set_new(root, "temperature", json_real(cfg->temperature));
    if (cfg->max_tokens > 0)
        json_object_set_new(root, "max_tokens", json_integer(cfg->max_tokens));
    json_t *msgs = json_array();
    json_object_set_new(root, "messages", msgs);
    for (size_t i = 0; i < cfg->n_messages; i++) {
        json_t *m = message_json(cfg->messages[i], err, err_size);
        if (m == NULL) {
            json_decref(root);
            return LC_ERR_INVALID;
        }
        json_array_append_new(msgs, m);
    }
    if (cfg->n_tools > 0) {
        json_t *tools = json_array();
        json_object_set_new(root, "tools", tools);
        for (size_t i = 0; i < cfg->n_tools; i++) {
            const Voxi__V1__LlmTool *t = cfg->tools[i];
            json_t *params = NULL;
            if (t->parameters_json[0]) {
                params = json_loads(t->parameters_json, JSON_REJECT_DUPLICATES, NULL);
                if (params == NULL || !json_is_object(params)) {
                    json_decref(params);
                    json_decref(root);
                    snprintf(err, err_size, "tool \"%.40s\": parameters_json is not a JSON object",
                             t->name);
                    return LC_ERR_INVALID;
                }
            } else {
                params = json_pack("{s:s, s:{}}", "type", "object", "properties");
            }
            if (t->name[0] == '\0') {
                json_decref(params);
                json_decref(root);
                snprintf(err, err_size, "a tool has no name");
                return LC_ERR_INVALID;
            }
            json_t *fn = json_pack("{s:s, s:o}", "name", t->name, "parameters", params);
            if (t->description[0])
                json_object_set_new(fn, "description", json_string(t->description));
            json_array_append_new(tools,
                                  json_pack("{s:s, s:o}", "type", "function", "function", fn));
        }
    }
    *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return *out ? LC_OK : LC_ERR_INTERNAL;
}

void
pv_openai_stream_init(pv_openai_stream_t *st)
{
    memset(st, 0, sizeof(*st));
}

void
pv_openai_stream_free(pv_openai_stream_t *st)
{
    for (size_t i = 0; i < PV_OPENAI_MAX_TOOL_CALLS; i++) {
        free(st->calls[i].id);
        free(st->calls[i].name);
        free(st->calls[i].args);
    }
    memset(st, 0, sizeof(*st));
}

static const char *
str_or_empty(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void
append_str(char **dst, const char *src)
{
    size_t a = *dst ? strlen(*dst) : 0, b = strlen(src);
    *dst = lc_realloc(*dst, a + b + 1);
    memcpy(*dst + a, src, b + 1);
}

static lc_status_t
tool_call_fragment(pv_openai_stream_t *st, json_t *tc, const pv_openai_sink_t *sink, void *arg)
{
    json_t *jidx = json_object_get(tc, "index");
    if (!json_is_integer(jidx))
        return LC_ERR_PROTOCOL;
    json_int_t idx = json_integer_value(jidx);
    if (idx < 0 || idx >= PV_OPENAI_MAX_TOOL_CALLS)
        return LC_ERR_TOO_LARGE;
    json_t *fn = json_object_get(tc, "function");
    const char *id = str_or_empty(tc, "id");
    const char *name = fn ? str_or_empty(fn, "name") : "";
    const char *args = fn ? str_or_empty(fn, "arguments") : "";
    if (strlen(id) > 256 || strlen(name) > 256)
        return LC_ERR_TOO_LARGE;
    pv_openai_call_t *c = &st->calls[idx];
    c->used = true;
    if (id[0] && c->id == NULL)
        c->id = lc_strdup(id);
    if (name[0])
        append_str(&c->name, name);
    size_t n = strlen(args);
    if (c->args_len + n > PV_OPENAI_MAX_ARGS_BYTES)
        return LC_ERR_TOO_LARGE;
    if (n > 0) {
        append_str(&c->args, args);
        c->args_len += n;
    }
    if (sink->tool_call_delta)
        sink->tool_call_delta(arg, (uint32_t) idx, id, name, args);
    return LC_OK;
}

lc_status_t
pv_openai_stream_data(pv_openai_stream_t *st, const char *data, size_t len,
                      const pv_openai_sink_t *sink, void *arg)
{
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        st->done_seen = true;
        return LC_OK;
    }
    json_t *root = json_loadb(data, len, 0, NULL);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return LC_ERR_PROTOCOL;
    }
    lc_status_t s = LC_OK;
    json_t *choices = json_object_get(root, "choices");
    size_t i;
    json_t *choice;
    json_array_foreach(choices, i, choice)
    {
        json_t *idx = json_object_get(choice, "index");
        if (idx && json_integer_value(idx) != 0)
            continue; /* n = 1: only the first choice */
        json_t *delta = json_object_get(choice, "delta");
        const char *content = json_string_value(json_object_get(delta, "content"));
        if (content && content[0] && sink->delta)
            sink->delta(arg, content);
        json_t *tcs = json_object_get(delta, "tool_calls");
        size_t j;
        json_t *tc;
        json_array_foreach(tcs, j, tc)
        {
            if ((s = tool_call_fragment(st, tc, sink, arg)) != LC_OK)
                goto done;
        }
        const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
        if (fr) {
            snprintf(st->finish_reason, sizeof(st->finish_reason), "%s", fr);
            pv_openai_stream_finish(st, sink, arg);
        }
    }
    json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage)) {
        json_int_t p = json_integer_value(json_object_get(usage, "prompt_tokens"));
        json_int_t c = json_integer_value(json_object_get(usage, "completion_tokens"));
        st->prompt_tokens = p > 0 && p < UINT32_MAX ? (uint32_t) p : 0;
        st->completion_tokens = c > 0 && c < UINT32_MAX ? (uint32_t) c : 0;
        st->usage_seen = true;
    }
done:
    json_decref(root);
    return s;
}

void
pv_openai_stream_finish(pv_openai_stream_t *st, const pv_openai_sink_t *sink, void *arg)
{
    if (st->calls_emitted)
        return;
    st->calls_emitted = true;
    for (size_t i = 0; i < PV_OPENAI_MAX_TOOL_CALLS; i++) {
        if (!st->calls[i].used || sink->tool_call == NULL)
            continue;
        sink->tool_call(arg, (uint32_t) i, st->calls[i].id ? st->calls[i].id : "",
                        st->calls[i].name ? st->calls[i].name : "",
                        st->calls[i].args ? st->calls[i].args : "");
    }
}

lc_status_t
pv_openai_error(int http_status, const char *body, size_t len, char *msg, size_t msg_size)
{
    lc_status_t st;
    if (http_status == 401 || http_status == 403)
        st = LC_ERR_UNAUTHORIZED;
    else if (http_status == 429)
        st = LC_ERR_RATE_LIMITED;
    else if (http_status == 408 || http_status == 504)
        st = LC_ERR_TIMEOUT;
    else if (http_status >= 400 && http_status < 500)
        st = LC_ERR_INVALID;
    else
        st = LC_ERR_UNAVAILABLE;
    const char *type = "", *code = "";
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        type = str_or_empty(e, "type");
        json_t *c = json_object_get(e, "code");
        code = json_is_string(c) ? json_string_value(c) : "";
    }
    char detail[100] = "";
    /* type and code are identifiers; keep them printable and short */
    snprintf(detail, sizeof(detail), "%.40s%s%.40s", type, type[0] && code[0] ? "/" : "", code);
    for (char *p = detail; *p; p++)
        if ((unsigned char) *p < ' ' || (unsigned char) *p > '~')
            *p = '?';
    if (detail[0])
        snprintf(msg, msg_size, "the LLM vendor answered HTTP %d (%s)", http_status, detail);
    else
        snprintf(msg, msg_size, "the LLM vendor answered HTTP %d", http_status);
    json_decref(root);
    return st;
}
