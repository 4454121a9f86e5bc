/*
 * md_agent_tool: a tool call of the agent runtime (flow webhook node, LLM function call)
 * through voxi-webhooks (voxi.webhooks.invoke, proto/voxi/v1/webhooks.proto), which is the
 * only component that talks to customer servers (SSRF guard, signing, bounds).
 *
 * Threads: the loop thread only; the callback runs on a later loop turn.
 */
#ifndef MD_AGENT_TOOL_H
#define MD_AGENT_TOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "lc_status.h"
#include "md_worker.h"

typedef struct md_agent_tool md_agent_tool_t;

/* ok: the tool answered 2xx with JSON (result_json, borrowed for the call); otherwise
 * status is the webhooks service's outcome ("timeout", "blocked", ...) or a bus error. */
typedef void (*md_agent_tool_cb)(void *arg, bool ok, const char *status, const char *result_json);

typedef struct {
    const char *org_id, *call_id, *agent_id;
    const char *url;
    const char *function_name;
    const char *arguments_json; /* a JSON object */
    int timeout_ms;
} md_agent_tool_req_t;

/* Strings are copied. On LC_OK exactly one callback follows unless cancelled. */
lc_status_t md_agent_tool_invoke(md_worker_t *w, const md_agent_tool_req_t *req,
                                 md_agent_tool_cb cb, void *arg, md_agent_tool_t **out);
/* No callback after this. NULL is a no-op. */
void md_agent_tool_cancel(md_agent_tool_t *t);

#endif
