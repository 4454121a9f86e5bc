/*
 * wh_invoke: tool calls for the agent runtime, voxi.webhooks.invoke (queue group
 * "webhooks"), request voxi.v1.InvokeRequest, reply voxi.v1.InvokeReply (see
 * proto/voxi/v1/webhooks.proto).
 *
 * The tool receives a POST signed like a webhook (webhook-id = the invocation id), with
 *
 *   {"id":"inv_...","type":"function.call","created_at":"...","org_id":"...",
 *    "data":{"function":"...","arguments":{...},"call_id":"...","agent_id":"..."}}
 *
 * signed with the request's secret or, when it brings none, the org's tool-signing secret
 * (created on first use, table webhook_org_secrets). The call is bounded: the timeout is the
 * smallest of the request's timeout_ms, VOXI_WEBHOOKS_TOOL_TIMEOUT_MAX_MS and what is left
 * of the envelope's deadline; the response may hold at most
 * VOXI_WEBHOOKS_TOOL_MAX_RESPONSE_BYTES. The same SSRF guard as deliveries applies. Every
 * call that passed validation ends with a `function.executed` event (invocation id,
 * function, call and agent ids, status, http_status, duration_ms, error).
 *
 * Threads: the loop thread.
 */
#ifndef WH_INVOKE_H
#define WH_INVOKE_H

#include <stddef.h>

#include "lc_status.h"
#include "wh_service.h"

#define WH_INVOKE_SUBJECT "voxi.webhooks.invoke"

lc_status_t wh_invoke_start(wh_service_t *ws);
void wh_invoke_stop(wh_service_t *ws);
size_t wh_invoke_inflight(void);

#endif
