/*
 * voxi_invoke: sends one voxi.v1.InvokeRequest (a tool call) to voxi.webhooks.invoke as the
 * agent runtime does, and prints the answer as one JSON line:
 *
 *   {"reply":{"status":"ok","http_status":200,"result_json":"...","duration_ms":12,
 *             "error":"","invocation_id":"inv_..."},"request_id":"req_..."}
 *   {"error":{"status":"invalid","message":"...","fields":[...]},"request_id":"req_..."}
 *
 *   voxi_invoke NATS_URL ORG_ID URL [--function NAME] [--args JSON] [--secret WHSEC]
 *               [--timeout-ms N] [--call-id ID] [--agent-id ID] [--wait-ms N]
 *
 * --timeout-ms goes in the request; --wait-ms (default: timeout + 5000) bounds the wait for
 * the answer and sets the envelope's deadline.
 * Exit: 0 an answer was printed, 3 no responders, 4 timeout, 5 bad reply, 2 usage.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/webhooks.pb-c.h"

typedef struct {
    lc_nats_t *nc;
    const char *org_id;
    Voxi__V1__InvokeRequest req;
    int64_t wait_ms;
    int64_t connect_deadline_ms;
    int exit_code;
    uv_timer_t start_timer;
} inv_t;

static void
on_closed(void *arg)
{
    (void) arg;
}

static void
print_error(const Voxi__V1__Envelope *env)
{
    json_t *fields = json_array();
    for (size_t i = 0; i < env->error->n_fields; i++)
        json_array_append_new(fields, json_pack("{s:s, s:s}", "field", env->error->fields[i]->field,
                                                "message", env->error->fields[i]->message));
    json_t *out =
        json_pack("{s:{s:s, s:s, s:o}, s:s}", "error", "status", env->error->status, "message",
                  env->error->message, "fields", fields, "request_id", env->request_id);
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(out);
}

static void
on_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    inv_t *c = arg;
    if (status == LC_ERR_NO_RESPONDERS) {
        fprintf(stderr, "no responders on voxi.webhooks.invoke\n");
        c->exit_code = 3;
    } else if (status == LC_ERR_TIMEOUT) {
        fprintf(stderr, "timeout\n");
        c->exit_code = 4;
    } else if (status != LC_OK) {
        fprintf(stderr, "request failed: %s\n", lc_status_name(status));
        c->exit_code = 5;
    } else {
        Voxi__V1__Envelope *env = NULL;
        ProtobufCMessage *body = NULL;
        lc_status_t st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                                      &voxi__v1__invoke_reply__descriptor, &env, &body);
        if (env != NULL && env->error != NULL) {
            print_error(env);
            c->exit_code = 0;
        } else if (st != LC_OK) {
            fprintf(stderr, "bad reply: %s\n", lc_status_name(st));
            c->exit_code = 5;
        } else {
            Voxi__V1__InvokeReply *r = (Voxi__V1__InvokeReply *) body;
            json_t *out =
                json_pack("{s:{s:s, s:i, s:s, s:I, s:s, s:s}, s:s}", "reply", "status", r->status,
                          "http_status", r->http_status, "result_json", r->result_json,
                          "duration_ms", (json_int_t) r->duration_ms, "error", r->error,
                          "invocation_id", r->invocation_id, "request_id", env->request_id);
            char *text = json_dumps(out, JSON_COMPACT);
            printf("%s\n", text ? text : "{}");
            free(text);
            json_decref(out);
            c->exit_code = 0;
        }
        lc_pb_free(env, body);
    }
    lc_nats_close(c->nc, on_closed, c);
}

static void
on_start(uv_timer_t *t)
{
    inv_t *c = t->data;
    if (!lc_nats_connected(c->nc)) {
        if (lc_time_mono_ms() > c->connect_deadline_ms) {
            fprintf(stderr, "could not connect to NATS\n");
            c->exit_code = 4;
            uv_close((uv_handle_t *) t, NULL);
            lc_nats_close(c->nc, on_closed, c);
            return;
        }
        uv_timer_start(t, on_start, 10, 0);
        return;
    }
    uv_close((uv_handle_t *) t, NULL);
    char request_id[40];
    lc_id_new("req_", request_id, sizeof(request_id));
    Voxi__V1__Principal principal = VOXI__V1__PRINCIPAL__INIT;
    principal.kind = "service";
    principal.id = "voxi_invoke";
    lc_pb_meta_t meta = {.request_id = request_id,
                         .org_id = c->org_id,
                         .principal = &principal,
                         .deadline_unix_ms = lc_time_wall_ms() + c->wait_ms};
    uint8_t *buf;
    size_t len;
    lc_pb_pack(&meta, &c->req.base, &buf, &len);
    lc_status_t st =
        lc_nats_request(c->nc, "voxi.webhooks.invoke", buf, len, c->wait_ms, on_reply, c, NULL);
    free(buf);
    if (st != LC_OK) {
        fprintf(stderr, "request: %s\n", lc_status_name(st));
        c->exit_code = 5;
        lc_nats_close(c->nc, on_closed, c);
    }
}

int
main(int argc, char **argv)
{
    if (argc < 4 || (argc - 4) % 2 != 0) {
        fprintf(stderr, "usage: voxi_invoke NATS_URL ORG_ID URL [--function NAME] [--args JSON] "
                        "[--secret WHSEC] [--timeout-ms N] [--call-id ID] [--agent-id ID] "
                        "[--wait-ms N]\n");
        return 2;
    }
    lc_log_init("voxi_invoke", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    inv_t c = {.org_id = argv[2], .exit_code = 1};
    voxi__v1__invoke_request__init(&c.req);
    c.req.url = argv[3];
    c.req.function_name = "lookup";
    c.req.arguments_json = "{}";
    for (int i = 4; i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (strcmp(opt, "--function") == 0)
            c.req.function_name = (char *) val;
        else if (strcmp(opt, "--args") == 0)
            c.req.arguments_json = (char *) val;
        else if (strcmp(opt, "--secret") == 0)
            c.req.secret = (char *) val;
        else if (strcmp(opt, "--timeout-ms") == 0)
            c.req.timeout_ms = atoi(val);
        else if (strcmp(opt, "--call-id") == 0)
            c.req.call_id = (char *) val;
        else if (strcmp(opt, "--agent-id") == 0)
            c.req.agent_id = (char *) val;
        else if (strcmp(opt, "--wait-ms") == 0)
            c.wait_ms = atoll(val);
        else {
            fprintf(stderr, "unknown option %s\n", opt);
            return 2;
        }
    }
    if (c.wait_ms <= 0)
        c.wait_ms = (c.req.timeout_ms > 0 ? c.req.timeout_ms : 10000) + 5000;
    uv_loop_t loop;
    uv_loop_init(&loop);
    lc_nats_loop_init(&loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_invoke"};
    if (lc_nats_connect(&loop, &opts, &c.nc) != LC_OK)
        return 5;
    c.connect_deadline_ms = lc_time_mono_ms() + 5000;
    uv_timer_init(&loop, &c.start_timer);
    c.start_timer.data = &c;
    uv_timer_start(&c.start_timer, on_start, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_nats_destroy(c.nc);
    uv_loop_close(&loop);
    lc_nats_library_shutdown();
    return c.exit_code;
}
