#include "md_llm_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "md_agent_internal.h"
#include "md_agent_tool.h"
#include "md_prov.h"
#include "md_sentence.h"

#define TEXT_MAX 8192
#define TOOL_CALLS_MAX 8

typedef struct {
    char *id, *name, *arguments;
} tool_call_t;

struct md_llm_loop {
    md_agent_t *a;
    const json_t *engine;
    json_t *messages; /* [{role, content, tool_call_id, tool_calls}] without the system one */
    md_prov_session_t *session;
    md_sentence_t *splitter;
    char text[TEXT_MAX]; /* this generation's text */
    bool first_token;
    tool_call_t calls[TOOL_CALLS_MAX];
    size_t ncalls, next_call;
    md_agent_tool_t *tool;
    int rounds;
};

static void
on_sentence(void *arg, const char *sentence)
{
    md_llm_loop_t *l = arg;
    md_agent_say(l->a, sentence);
}

static void
clear_calls(md_llm_loop_t *l)
{
    for (size_t i = 0; i < l->ncalls; i++) {
        free(l->calls[i].id);
        free(l->calls[i].name);
        free(l->calls[i].arguments);
    }
    l->ncalls = l->next_call = 0;
}

static void
add_message(md_llm_loop_t *l, json_t *msg)
{
    json_array_append_new(l->messages, msg);
    while (json_array_size(l->messages) > MD_LLM_MAX_MESSAGES)
        json_array_remove(l->messages, 0);
}

static const json_t *
find_tool(const md_llm_loop_t *l, const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(l->engine, "tools"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")) ?: "", name) == 0)
            return t;
    }
    return NULL;
}

static void on_event(void *arg, md_prov_session_t *s, const Voxi__V1__ProviderEvent *ev);

static void
generate(md_llm_loop_t *l)
{
    size_t nmsg = json_array_size(l->messages) + 1;
    Voxi__V1__LlmMessage *msgs = lc_calloc(nmsg, sizeof(Voxi__V1__LlmMessage));
    Voxi__V1__LlmMessage **mp = lc_calloc(nmsg, sizeof(Voxi__V1__LlmMessage *));
    size_t ncalls_total = 0, i, j;
    json_t *m, *c;
    json_array_foreach(l->messages, i, m) ncalls_total +=
        json_array_size(json_object_get(m, "tool_calls"));
    Voxi__V1__LlmToolCall *calls = lc_calloc(ncalls_total + 1, sizeof(Voxi__V1__LlmToolCall));
    Voxi__V1__LlmToolCall **cp = lc_calloc(ncalls_total + 1, sizeof(Voxi__V1__LlmToolCall *));
    size_t n = 0, k = 0;
    const char *system = json_string_value(json_object_get(l->engine, "system_prompt"));
    if (system && system[0]) {
        voxi__v1__llm_message__init(&msgs[n]);
        msgs[n].role = "system";
        msgs[n].content = (char *) system;
        mp[n] = &msgs[n];
        n++;
    }
    json_array_foreach(l->messages, i, m)
    {
        voxi__v1__llm_message__init(&msgs[n]);
        msgs[n].role = (char *) json_string_value(json_object_get(m, "role"));
        msgs[n].content = (char *) (json_string_value(json_object_get(m, "content")) ?: "");
        msgs[n].tool_call_id =
            (char *) (json_string_value(json_object_get(m, "tool_call_id")) ?: "");
        size_t first = k;
        json_array_foreach(json_object_get(m, "tool_calls"), j, c)
        {
            voxi__v1__llm_tool_call__init(&calls[k]);
            calls[k].id = (char *) (json_string_value(json_object_get(c, "id")) ?: "");
            calls[k].name = (char *) (json_string_value(json_object_get(c, "name")) ?: "");
            calls[k].arguments_json =
                (char *) (json_string_value(json_object_get(c, "arguments")) ?: "{}");
            calls[k].index = (uint32_t) j;
            cp[k] = &calls[k];
            k++;
        }
        msgs[n].n_tool_calls = k - first;
        msgs[n].tool_calls = k > first ? &cp[first] : NULL;
        mp[n] = &msgs[n];
        n++;
    }
    size_t ntools = json_array_size(json_object_get(l->engine, "tools"));
    Voxi__V1__LlmTool *tools = lc_calloc(ntools + 1, sizeof(Voxi__V1__LlmTool));
    Voxi__V1__LlmTool **tp = lc_calloc(ntools + 1, sizeof(Voxi__V1__LlmTool *));
    char **params = lc_calloc(ntools + 1, sizeof(char *));
    json_array_foreach(json_object_get(l->engine, "tools"), i, c)
    {
        voxi__v1__llm_tool__init(&tools[i]);
        tools[i].name = (char *) (json_string_value(json_object_get(c, "name")) ?: "");
        tools[i].description =
            (char *) (json_string_value(json_object_get(c, "description")) ?: "");
        const json_t *p = json_object_get(c, "parameters");
        params[i] = p ? json_dumps(p, JSON_COMPACT) : NULL;
        tools[i].parameters_json = params[i] ? params[i] : "{\"type\":\"object\"}";
        tp[i] = &tools[i];
    }
    Voxi__V1__ProviderOpen open = VOXI__V1__PROVIDER_OPEN__INIT;
    Voxi__V1__LlmConfig cfg = VOXI__V1__LLM_CONFIG__INIT;
    const char *type = json_string_value(json_object_get(l->engine, "type")) ?: "llm";
    const char *provider = json_string_value(json_object_get(l->engine, "provider")) ?: "";
    if (strcmp(type, "custom_llm") == 0) {
        provider = "openai";
        cfg.base_url = (char *) (json_string_value(json_object_get(l->engine, "url")) ?: "");
    }
    cfg.provider = (char *) provider;
    cfg.model = (char *) (json_string_value(json_object_get(l->engine, "model")) ?: "");
    const json_t *temp = json_object_get(l->engine, "temperature");
    cfg.temperature = json_is_number(temp) ? (float) json_number_value(temp) : 0.7f;
    cfg.messages = mp;
    cfg.n_messages = n;
    cfg.tools = ntools ? tp : NULL;
    cfg.n_tools = ntools;
    open.kind = "llm";
    open.engine = (char *) provider;
    open.call_id = (char *) md_agent_call_id(l->a);
    open.llm = &cfg;
    l->text[0] = '\0';
    l->first_token = false;
    clear_calls(l);
    md_sentence_reset(l->splitter);
    md_prov_open(md_agent_worker(l->a), md_agent_org_id(l->a), &open, on_event, l, &l->session);
    for (i = 0; i < ntools; i++)
        free(params[i]);
    free(params);
    free(tools);
    free(tp);
    free(calls);
    free(cp);
    free(msgs);
    free(mp);
}

static void run_next_tool(md_llm_loop_t *l);

static void
on_tool_result(void *arg, bool ok, const char *status, const char *result_json)
{
    md_llm_loop_t *l = arg;
    l->tool = NULL;
    tool_call_t *call = &l->calls[l->next_call++];
    char content[512];
    if (!ok)
        snprintf(content, sizeof(content), "{\"error\":\"%s\"}", status);
    add_message(l, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", call->id, "content",
                             ok && result_json ? result_json : content));
    run_next_tool(l);
}

static void
run_next_tool(md_llm_loop_t *l)
{
    while (l->next_call < l->ncalls) {
        tool_call_t *call = &l->calls[l->next_call];
        const json_t *tool = find_tool(l, call->name);
        if (tool == NULL) {
            add_message(l, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", call->id,
                                     "content", "{\"error\":\"no such tool\"}"));
            l->next_call++;
            continue;
        }
        const json_t *to = json_object_get(tool, "timeout_ms");
        md_agent_tool_req_t req = {.org_id = md_agent_org_id(l->a),
                                   .call_id = md_agent_call_id(l->a),
                                   .agent_id = md_agent_agent_id(l->a),
                                   .url = json_string_value(json_object_get(tool, "url")),
                                   .function_name = call->name,
                                   .arguments_json = call->arguments,
                                   .timeout_ms =
                                       json_is_integer(to) ? (int) json_integer_value(to) : 5000};
        LC_INFO("llm", "tool call %s", call->name);
        if (md_agent_tool_invoke(md_agent_worker(l->a), &req, on_tool_result, l, &l->tool) == LC_OK)
            return;
        add_message(l, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", call->id,
                                 "content", "{\"error\":\"unavailable\"}"));
        l->next_call++;
    }
    /* every result is in: the model goes on */
    if (++l->rounds > MD_LLM_MAX_TOOL_ROUNDS) {
        LC_WARN("llm", "more than %d tool rounds in one turn: stopping", MD_LLM_MAX_TOOL_ROUNDS);
        return;
    }
    generate(l);
}

static void
on_event(void *arg, md_prov_session_t *s, const Voxi__V1__ProviderEvent *ev)
{
    md_llm_loop_t *l = arg;
    (void) s;
    if (strcmp(ev->type, "delta") == 0) {
        if (!l->first_token) {
            l->first_token = true;
            md_agent_mark_llm_first_token(l->a);
        }
        size_t n = strlen(l->text);
        snprintf(l->text + n, sizeof(l->text) - n, "%s", ev->text);
        md_sentence_feed(l->splitter, ev->text, strlen(ev->text));
    } else if (strcmp(ev->type, "tool_call") == 0 && ev->tool_call) {
        if (l->ncalls < TOOL_CALLS_MAX) {
            tool_call_t *c = &l->calls[l->ncalls++];
            c->id = lc_strdup(ev->tool_call->id);
            c->name = lc_strdup(ev->tool_call->name);
            c->arguments =
                lc_strdup(ev->tool_call->arguments_json[0] ? ev->tool_call->arguments_json : "{}");
        }
    } else if (strcmp(ev->type, "done") == 0 || strcmp(ev->type, "error") == 0) {
        if (ev->usage)
            md_agent_add_llm_usage(l->a, ev->usage->llm_prompt_tokens,
                                   ev->usage->llm_completion_tokens);
        if (strcmp(ev->type, "error") == 0)
            LC_WARN("llm", "LLM: %s (%s)", ev->error, ev->error_status);
        md_prov_destroy(l->session);
        l->session = NULL;
        md_sentence_finish(l->splitter);
        if (l->ncalls > 0) {
            json_t *calls = json_array();
            for (size_t i = 0; i < l->ncalls; i++)
                json_array_append_new(calls, json_pack("{s:s, s:s, s:s}", "id", l->calls[i].id,
                                                       "name", l->calls[i].name, "arguments",
                                                       l->calls[i].arguments));
            add_message(l, json_pack("{s:s, s:s, s:o}", "role", "assistant", "content", l->text,
                                     "tool_calls", calls));
            l->next_call = 0;
            run_next_tool(l);
        } else if (l->text[0]) {
            add_message(l, json_pack("{s:s, s:s}", "role", "assistant", "content", l->text));
        }
    }
}

lc_status_t
md_llm_loop_create(md_agent_t *a, const json_t *engine, md_llm_loop_t **out)
{
    md_llm_loop_t *l = LC_NEW(md_llm_loop_t);
    l->a = a;
    l->engine = engine;
    l->messages = json_array();
    l->splitter = md_sentence_create(on_sentence, l);
    *out = l;
    return LC_OK;
}

void
md_llm_loop_destroy(md_llm_loop_t *l)
{
    if (l == NULL)
        return;
    md_prov_destroy(l->session);
    md_agent_tool_cancel(l->tool);
    md_sentence_destroy(l->splitter);
    clear_calls(l);
    json_decref(l->messages);
    free(l);
}

void
md_llm_loop_on_user(md_llm_loop_t *l, const char *text)
{
    md_llm_loop_interrupt(l, NULL);
    add_message(l, json_pack("{s:s, s:s}", "role", "user", "content", text));
    l->rounds = 0;
    generate(l);
}

void
md_llm_loop_interrupt(md_llm_loop_t *l, const char *spoken_text)
{
    bool generating = l->session != NULL || l->tool != NULL;
    md_prov_destroy(l->session);
    l->session = NULL;
    md_agent_tool_cancel(l->tool);
    l->tool = NULL;
    md_sentence_reset(l->splitter);
    clear_calls(l);
    if (generating && spoken_text && spoken_text[0])
        add_message(l, json_pack("{s:s, s:s}", "role", "assistant", "content", spoken_text));
}

void
md_llm_loop_on_spoken(md_llm_loop_t *l, const char *text)
{
    (void) l;
    (void) text;
}

bool
md_llm_loop_busy(const md_llm_loop_t *l)
{
    return l->session != NULL || l->tool != NULL;
}
