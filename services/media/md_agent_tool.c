#include "md_agent_tool.h"

#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/webhooks.pb-c.h"

#define INVOKE_SUBJECT "voxi.webhooks.invoke"
#define BUS_MARGIN_MS 1000 /* over the tool's own timeout, for the bus and the service */

struct md_agent_tool {
    md_worker_t *w;
    md_agent_tool_cb cb;
    void *arg;
    uint64_t request_id;
};

static void
on_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    md_agent_tool_t *t = arg;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    if (status == LC_OK)
        status = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                              &voxi__v1__invoke_reply__descriptor, &env, &body);
    Voxi__V1__InvokeReply *r = (Voxi__V1__InvokeReply *) body;
    if (status != LC_OK || r == NULL) {
        LC_WARN("tool", "voxi.webhooks.invoke failed: %s", lc_status_name(status));
        t->cb(t->arg, false, lc_status_name(status), NULL);
    } else {
        bool ok = strcmp(r->status, "ok") == 0;
        LC_INFO("tool", "tool call %s: %s (HTTP %d, %lld ms)", r->invocation_id, r->status,
                (int) r->http_status, (long long) r->duration_ms);
        t->cb(t->arg, ok, r->status, r->result_json[0] ? r->result_json : NULL);
    }
    lc_pb_free(env, body);
    free(t);
}

lc_status_t
md_agent_tool_invoke(md_worker_t *w, const md_agent_tool_req_t *req, md_agent_tool_cb cb, void *arg,
                     md_agent_tool_t **out)
{
    *out = NULL;
    Voxi__V1__InvokeRequest ir = VOXI__V1__INVOKE_REQUEST__INIT;
    ir.url = (char *) req->url;
    ir.arguments_json = (char *) (req->arguments_json ? req->arguments_json : "{}");
    ir.timeout_ms = req->timeout_ms;
    ir.function_name = (char *) (req->function_name ? req->function_name : "");
    ir.call_id = (char *) (req->call_id ? req->call_id : "");
    ir.agent_id = (char *) (req->agent_id ? req->agent_id : "");
    char request_id[40];
    lc_id_new("req_", request_id, sizeof(request_id));
    int64_t timeout = (req->timeout_ms > 0 ? req->timeout_ms : 5000) + BUS_MARGIN_MS;
    lc_pb_meta_t meta = {.request_id = request_id,
                         .org_id = req->org_id,
                         .deadline_unix_ms = lc_time_wall_ms() + timeout};
    uint8_t *buf = NULL;
    size_t len = 0;
    LC_TRY(lc_pb_pack(&meta, (const ProtobufCMessage *) &ir, &buf, &len));
    md_agent_tool_t *t = LC_NEW(md_agent_tool_t);
    t->w = w;
    t->cb = cb;
    t->arg = arg;
    lc_status_t st =
        lc_nats_request(w->nats, INVOKE_SUBJECT, buf, len, timeout, on_reply, t, &t->request_id);
    free(buf);
    if (st != LC_OK) {
        free(t);
        return st;
    }
    *out = t;
    return LC_OK;
}

void
md_agent_tool_cancel(md_agent_tool_t *t)
{
    if (t == NULL)
        return;
    lc_nats_request_cancel(t->w->nats, t->request_id);
    free(t);
}
