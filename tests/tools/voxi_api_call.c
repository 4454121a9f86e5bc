/*
 * voxi_api_call: sends one voxi.v1.ApiRequest in an Envelope to a subject over NATS, as the
 * gateway does after auth, and prints the reply as one JSON line:
 *
 *   {"http_status":201,"json":{...}}                           an ApiReply
 *   {"error":{"status":"invalid","message":"...","fields":[{"field":"...","message":"..."}]}}
 *
 *   voxi_api_call NATS_URL SUBJECT ORG_ID [--id ID] [--json TEXT | --json-file PATH] [--limit N]
 *                 [--starting-after ID] [--principal KIND:ID] [--timeout-ms N]
 *                 [--deadline-ms N]   (deadline relative to now; negative = already passed)
 *   voxi_api_call NATS_URL voxi.registry.numbers.resolve - --resolve NUMBER
 *                 (sends a ResolveNumberRequest; prints {"reply":{...ResolveNumberReply...}})
 *
 * Exit: 0 a reply (ApiReply or error) was printed, 3 no responders, 4 timeout, 5 bad
 * reply, 2 usage. Used by the registry's system tests (and handy by hand).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/api.pb-c.h"
#include "voxi/v1/registry.pb-c.h"

typedef struct {
    lc_nats_t *nc;
    const char *subject;
    const char *org_id;
    Voxi__V1__ApiRequest req;
    Voxi__V1__ResolveNumberRequest resolve;
    bool is_resolve;
    Voxi__V1__Principal principal;
    int64_t timeout_ms;
    int64_t deadline_ms;
    bool has_deadline;
    int exit_code;
    uv_timer_t start_timer;
} call_t;

static void
on_closed(void *arg)
{
    (void) arg;
}

static void
print_reply(call_t *c, const lc_nats_msg_t *reply)
{
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                                  c->is_resolve ? &voxi__v1__resolve_number_reply__descriptor
                                                : &voxi__v1__api_reply__descriptor,
                                  &env, &body);
    json_t *out = json_object();
    if (env != NULL && env->error != NULL) {
        json_t *fields = json_array();
        for (size_t i = 0; i < env->error->n_fields; i++)
            json_array_append_new(fields,
                                  json_pack("{s:s,s:s}", "field", env->error->fields[i]->field,
                                            "message", env->error->fields[i]->message));
        json_object_set_new(out, "error",
                            json_pack("{s:s,s:s,s:o}", "status", env->error->status, "message",
                                      env->error->message, "fields", fields));
        c->exit_code = 0;
    } else if (st == LC_OK && c->is_resolve) {
        Voxi__V1__ResolveNumberReply *r = (Voxi__V1__ResolveNumberReply *) body;
        json_t *agent = json_loads(r->agent_json, 0, NULL);
        json_object_set_new(out, "reply",
                            json_pack("{s:s,s:s,s:s,s:s,s:o,s:i}", "org_id", r->org_id, "number_id",
                                      r->number_id, "number", r->number, "agent_id", r->agent_id,
                                      "agent", agent ? agent : json_null(), "agent_version",
                                      (int) r->agent_version));
        c->exit_code = 0;
    } else if (st == LC_OK) {
        Voxi__V1__ApiReply *r = (Voxi__V1__ApiReply *) body;
        json_object_set_new(out, "http_status", json_integer(r->http_status));
        json_t *parsed = r->json[0] ? json_loads(r->json, 0, NULL) : json_null();
        json_object_set_new(out, "json", parsed ? parsed : json_string(r->json));
        c->exit_code = 0;
    } else {
        fprintf(stderr, "bad reply: %s\n", lc_status_name(st));
        c->exit_code = 5;
    }
    if (c->exit_code == 0) {
        json_object_set_new(out, "request_id", json_string(env->request_id));
        char *text = json_dumps(out, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
    }
    json_decref(out);
    lc_pb_free(env, body);
}

static void
on_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    call_t *c = arg;
    if (status == LC_ERR_NO_RESPONDERS) {
        fprintf(stderr, "no responders on %s\n", c->subject);
        c->exit_code = 3;
    } else if (status == LC_ERR_TIMEOUT) {
        fprintf(stderr, "timeout on %s\n", c->subject);
        c->exit_code = 4;
    } else if (status != LC_OK) {
        fprintf(stderr, "request failed: %s\n", lc_status_name(status));
        c->exit_code = 5;
    } else {
        print_reply(c, reply);
    }
    lc_nats_close(c->nc, on_closed, c);
}

static void
on_start(uv_timer_t *t)
{
    call_t *c = t->data;
    if (!lc_nats_connected(c->nc)) {
        c->timeout_ms -= 10;
        if (c->timeout_ms <= 0) {
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
    lc_pb_meta_t meta = {.request_id = request_id,
                         .org_id = c->org_id,
                         .principal = &c->principal,
                         .deadline_unix_ms = lc_time_wall_ms() +
                                             (c->has_deadline ? c->deadline_ms : c->timeout_ms)};
    uint8_t *buf;
    size_t len;
    lc_pb_pack(&meta, c->is_resolve ? &c->resolve.base : &c->req.base, &buf, &len);
    lc_status_t st = lc_nats_request(c->nc, c->subject, buf, len, c->timeout_ms, on_reply, c, NULL);
    free(buf);
    if (st != LC_OK) {
        fprintf(stderr, "request: %s\n", lc_status_name(st));
        c->exit_code = 5;
        lc_nats_close(c->nc, on_closed, c);
    }
}

static int
usage(void)
{
    fprintf(
        stderr,
        "usage: voxi_api_call NATS_URL SUBJECT ORG_ID [--id ID] [--json TEXT | --json-file PATH] "
        "[--limit N] [--starting-after ID] [--principal KIND:ID] [--timeout-ms N] "
        "[--deadline-ms N] [--resolve NUMBER]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    lc_log_init("voxi_api_call", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    call_t c = {.subject = argv[2], .org_id = argv[3], .timeout_ms = 5000, .exit_code = 1};
    voxi__v1__api_request__init(&c.req);
    voxi__v1__principal__init(&c.principal);
    voxi__v1__resolve_number_request__init(&c.resolve);
    c.principal.kind = "api_key";
    c.principal.id = "key_tool";
    char principal[256] = "";
    for (int i = 4; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        const char *opt = argv[i], *val = argv[++i];
        if (strcmp(opt, "--id") == 0)
            c.req.id = (char *) val;
        else if (strcmp(opt, "--json") == 0)
            c.req.json = (char *) val;
        else if (strcmp(opt, "--json-file") == 0) {
            /* bodies past the kernel's 128 KiB argument limit */
            FILE *f = fopen(val, "rb");
            if (f == NULL) {
                perror(val);
                return 2;
            }
            size_t cap = 1 << 16, len = 0;
            char *buf = malloc(cap);
            size_t n;
            while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
                len += n;
                if (cap - len - 1 == 0)
                    buf = realloc(buf, cap *= 2);
            }
            fclose(f);
            buf[len] = '\0';
            c.req.json = buf; /* lives until exit */
        } else if (strcmp(opt, "--resolve") == 0) {
            c.resolve.number = (char *) val;
            c.is_resolve = true;
        } else if (strcmp(opt, "--limit") == 0)
            c.req.limit = atoi(val);
        else if (strcmp(opt, "--starting-after") == 0)
            c.req.starting_after = (char *) val;
        else if (strcmp(opt, "--timeout-ms") == 0)
            c.timeout_ms = atoll(val);
        else if (strcmp(opt, "--deadline-ms") == 0) {
            c.deadline_ms = atoll(val);
            c.has_deadline = true;
        } else if (strcmp(opt, "--principal") == 0) {
            snprintf(principal, sizeof(principal), "%s", val);
            char *colon = strchr(principal, ':');
            if (colon == NULL)
                return usage();
            *colon = '\0';
            c.principal.kind = principal;
            c.principal.id = colon + 1;
        } else
            return usage();
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    lc_nats_loop_init(&loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_api_call"};
    if (lc_nats_connect(&loop, &opts, &c.nc) != LC_OK)
        return 1;
    uv_timer_init(&loop, &c.start_timer);
    c.start_timer.data = &c;
    uv_timer_start(&c.start_timer, on_start, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_nats_destroy(c.nc);
    uv_loop_close(&loop);
    lc_nats_library_shutdown();
    return c.exit_code;
}
