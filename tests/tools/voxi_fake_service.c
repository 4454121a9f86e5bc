/*
 * voxi_fake_service: a stand-in for auth or a backend service on a real NATS server, for
 * the gateway's system tests. It answers (or ignores) requests on one subject:
 *
 *   voxi_fake_service NATS_URL SUBJECT MODE
 *
 * MODE
 *   silent  subscribe and never answer (the gateway must time out: 504)
 *   auth    answer voxi.v1.AuthenticateRequest by the Authorization header:
 *             "Bearer good"      ok: org "org_00000000000000000001", principal
 *                                {kind "api_key", id "key_00000000000000000001", all scopes}
 *             "Bearer forbidden" forbidden ("needs <required_scope>")
 *             "Bearer limited"   rate_limited (retry_after_s 7)
 *             "Bearer error"     an Envelope.error "internal"
 *             "Bearer garbage"   bytes that are not an envelope
 *             anything else      unauthorized; anonymous_ok routes get ok
 *           every answer but the error ones carries a rate limit (limit 100, remaining 42,
 *           reset 30, policy "read";q=100;w=60)
 *   echo    answer voxi.v1.ApiRequest with ApiReply 200 whose JSON describes what arrived
 *           ({"subject","request_id","org_id","principal":{kind,id,scopes},"deadline_ms"
 *           (deadline minus now),"id","sub_id","json","limit","starting_after",
 *           "client_ip"}), except for these ids:
 *             "err_invalid"   Envelope.error invalid with two field errors
 *             "err_conflict"  Envelope.error conflict
 *             "err_internal"  Envelope.error internal
 *             "status_204"    ApiReply 204
 *             "status_201"    ApiReply 201 {"created":true}
 *             "bad_status"    ApiReply 700
 *             "garbage"       bytes that are not an envelope
 *             "silent"        no answer
 *
 * Prints "ready" on stdout (flushed) once the server has the subscription, then serves
 * until SIGTERM/SIGINT. Exit: 0 after a signal, 1 on set-up errors, 2 usage.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/api.pb-c.h"

typedef enum {
    MODE_SILENT,
    MODE_AUTH,
    MODE_ECHO,
} fake_mode_t;

typedef struct {
    uv_loop_t loop;
    lc_nats_t *nc;
    const char *subject;
    fake_mode_t mode;
    char ready_subject[96];
    uv_timer_t start_timer;
    uv_signal_t sigterm, sigint;
    bool ready;
} fake_t;

static const char *all_scopes[] = {"agents:read",   "agents:write",   "numbers:read",
                                   "numbers:write", "calls:read",     "calls:write",
                                   "webhooks:read", "webhooks:write", "keys:admin"};

static void
respond_pb(fake_t *f, const char *reply_to, const char *request_id, const ProtobufCMessage *body)
{
    lc_pb_meta_t meta = {.request_id = request_id};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (lc_pb_pack(&meta, body, &buf, &len) == LC_OK)
        lc_nats_respond(f->nc, reply_to, buf, len);
    free(buf);
}

static void
respond_error(fake_t *f, const char *reply_to, const char *request_id, lc_status_t st,
              const char *message, bool with_fields)
{
    Voxi__V1__Envelope env = VOXI__V1__ENVELOPE__INIT;
    Voxi__V1__Error err = VOXI__V1__ERROR__INIT;
    Voxi__V1__FieldError f1 = VOXI__V1__FIELD_ERROR__INIT, f2 = VOXI__V1__FIELD_ERROR__INIT;
    Voxi__V1__FieldError *fields[2] = {&f1, &f2};
    env.request_id = (char *) request_id;
    err.status = (char *) lc_status_name(st);
    err.message = (char *) message;
    if (with_fields) {
        f1.field = "voice.speed";
        f1.message = "must be between 0.5 and 2";
        f2.field = "response_engine.nodes[3].next";
        f2.message = "unknown node \"nope\"";
        err.fields = fields;
        err.n_fields = 2;
    }
    env.error = &err;
    size_t len = voxi__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(len);
    voxi__v1__envelope__pack(&env, buf);
    lc_nats_respond(f->nc, reply_to, buf, len);
    free(buf);
}

static void
answer_auth(fake_t *f, const char *reply_to, const Voxi__V1__Envelope *env,
            const Voxi__V1__AuthenticateRequest *req)
{
    Voxi__V1__AuthenticateReply rep = VOXI__V1__AUTHENTICATE_REPLY__INIT;
    Voxi__V1__Principal principal = VOXI__V1__PRINCIPAL__INIT;
    Voxi__V1__RateLimit rl = VOXI__V1__RATE_LIMIT__INIT;
    char message[160];
    rl.limit = 100;
    rl.remaining = 42;
    rl.reset_s = 30;
    rl.window_s = 60;
    rl.policy = "\"read\";q=100;w=60";
    rep.rate_limit = &rl;
    const char *authz = req->authorization;
    if (strcmp(authz, "Bearer error") == 0) {
        respond_error(f, reply_to, env->request_id, LC_ERR_INTERNAL, "auth database down", false);
        return;
    }
    if (strcmp(authz, "Bearer garbage") == 0) {
        lc_nats_respond(f->nc, reply_to, "\xff\xff\xff", 3);
        return;
    }
    if (strcmp(authz, "Bearer good") == 0 || (req->anonymous_ok && authz[0] == '\0')) {
        rep.outcome = "ok";
        if (!req->anonymous_ok || authz[0] != '\0') {
            rep.org_id = "org_00000000000000000001";
            principal.kind = "api_key";
            principal.id = "key_00000000000000000001";
            principal.scopes = (char **) all_scopes;
            principal.n_scopes = sizeof(all_scopes) / sizeof(all_scopes[0]);
            rep.principal = &principal;
        }
    } else if (strcmp(authz, "Bearer forbidden") == 0) {
        rep.outcome = "forbidden";
        snprintf(message, sizeof(message), "This key lacks the scope %s.", req->required_scope);
        rep.message = message;
    } else if (strcmp(authz, "Bearer limited") == 0) {
        rep.outcome = "rate_limited";
        rl.remaining = 0;
        rl.retry_after_s = 7;
    } else {
        rep.outcome = "unauthorized";
    }
    respond_pb(f, reply_to, env->request_id, &rep.base);
}

static void
answer_echo(fake_t *f, const char *reply_to, const char *subject, const Voxi__V1__Envelope *env,
            const Voxi__V1__ApiRequest *req)
{
    const char *id = req->id;
    if (strcmp(id, "silent") == 0)
        return;
    if (strcmp(id, "garbage") == 0) {
        lc_nats_respond(f->nc, reply_to, "\xff\xff\xff", 3);
        return;
    }
    if (strcmp(id, "err_invalid") == 0) {
        respond_error(f, reply_to, env->request_id, LC_ERR_INVALID, "The agent is not valid.",
                      true);
        return;
    }
    if (strcmp(id, "err_conflict") == 0) {
        respond_error(f, reply_to, env->request_id, LC_ERR_CONFLICT, "Number already taken.",
                      false);
        return;
    }
    if (strcmp(id, "err_internal") == 0) {
        respond_error(f, reply_to, env->request_id, LC_ERR_INTERNAL, "", false);
        return;
    }
    Voxi__V1__ApiReply rep = VOXI__V1__API_REPLY__INIT;
    char *text = NULL;
    if (strcmp(id, "status_204") == 0) {
        rep.http_status = 204;
        rep.json = "";
    } else if (strcmp(id, "status_201") == 0) {
        rep.http_status = 201;
        rep.json = "{\"created\":true}";
    } else if (strcmp(id, "bad_status") == 0) {
        rep.http_status = 700;
        rep.json = "{}";
    } else {
        json_t *scopes = json_array();
        json_t *principal = json_null();
        if (env->principal != NULL) {
            for (size_t i = 0; i < env->principal->n_scopes; i++)
                json_array_append_new(scopes, json_string(env->principal->scopes[i]));
            principal = json_pack("{s:s,s:s,s:o}", "kind", env->principal->kind, "id",
                                  env->principal->id, "scopes", scopes);
        } else {
            json_decref(scopes);
        }
        json_t *doc =
            json_pack("{s:s,s:s,s:s,s:o,s:I,s:s,s:s,s:s,s:i,s:s,s:s}", "subject", subject,
                      "request_id", env->request_id, "org_id", env->org_id, "principal", principal,
                      "deadline_ms", (json_int_t) (env->deadline_unix_ms - lc_time_wall_ms()), "id",
                      req->id, "sub_id", req->sub_id, "json", req->json, "limit", req->limit,
                      "starting_after", req->starting_after, "client_ip", req->client_ip);
        text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        rep.http_status = 200;
        rep.json = text ? text : "{}";
    }
    respond_pb(f, reply_to, env->request_id, &rep.base);
    free(text);
}

static void
on_msg(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    fake_t *f = arg;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (f->mode == MODE_SILENT || reply_to == NULL)
        return;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    const ProtobufCMessageDescriptor *desc = f->mode == MODE_AUTH
                                                 ? &voxi__v1__authenticate_request__descriptor
                                                 : &voxi__v1__api_request__descriptor;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg), desc, &env, &body);
    if (st != LC_OK) {
        fprintf(stderr, "voxi_fake_service: bad request: %s\n", lc_status_name(st));
        respond_error(f, reply_to, env ? env->request_id : "", LC_ERR_INVALID, "bad request",
                      false);
    } else if (f->mode == MODE_AUTH) {
        answer_auth(f, reply_to, env, (Voxi__V1__AuthenticateRequest *) body);
    } else {
        answer_echo(f, reply_to, lc_nats_msg_subject(msg), env, (Voxi__V1__ApiRequest *) body);
    }
    lc_pb_free(env, body);
}

static void
on_ready_ping(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) arg;
    if (lc_nats_msg_reply(msg))
        lc_nats_respond(nc, lc_nats_msg_reply(msg), "", 0);
}

static void on_start(uv_timer_t *t);

static void
on_ready_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    (void) reply;
    fake_t *f = arg;
    if (status != LC_OK) { /* not connected yet after all: try again */
        uv_timer_start(&f->start_timer, on_start, 10, 0);
        return;
    }
    /* the server handles one connection's messages in order: it has our subscription */
    f->ready = true;
    printf("ready\n");
    fflush(stdout);
}

/* Once connected, a request to our own control subject proves the SUBs went through. */
static void
on_start(uv_timer_t *t)
{
    fake_t *f = t->data;
    if (!lc_nats_connected(f->nc)) {
        uv_timer_start(t, on_start, 10, 0);
        return;
    }
    if (lc_nats_request(f->nc, f->ready_subject, "", 0, 2000, on_ready_reply, f, NULL) != LC_OK)
        uv_timer_start(t, on_start, 10, 0);
}

static void
on_closed(void *arg)
{
    (void) arg;
}

static void
on_signal(uv_signal_t *handle, int signum)
{
    (void) signum;
    fake_t *f = handle->data;
    uv_close((uv_handle_t *) &f->sigterm, NULL);
    uv_close((uv_handle_t *) &f->sigint, NULL);
    uv_close((uv_handle_t *) &f->start_timer, NULL);
    lc_nats_close(f->nc, on_closed, f);
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: voxi_fake_service NATS_URL SUBJECT silent|auth|echo\n");
        return 2;
    }
    fake_t f;
    memset(&f, 0, sizeof(f));
    f.subject = argv[2];
    if (strcmp(argv[3], "silent") == 0)
        f.mode = MODE_SILENT;
    else if (strcmp(argv[3], "auth") == 0)
        f.mode = MODE_AUTH;
    else if (strcmp(argv[3], "echo") == 0)
        f.mode = MODE_ECHO;
    else {
        fprintf(stderr, "voxi_fake_service: unknown mode %s\n", argv[3]);
        return 2;
    }
    lc_log_init("voxi_fake_service", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    snprintf(f.ready_subject, sizeof(f.ready_subject), "_voxi_fake.ready.%ld", (long) getpid());
    uv_loop_init(&f.loop);
    lc_nats_loop_init(&f.loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_fake_service"};
    if (lc_nats_connect(&f.loop, &opts, &f.nc) != LC_OK)
        return 1;
    /* a queue group like the real services: another instance shares the load */
    const char *group = f.mode == MODE_AUTH ? "auth" : "fake";
    if (lc_nats_subscribe(f.nc, f.subject, group, on_msg, &f, NULL) != LC_OK ||
        lc_nats_subscribe(f.nc, f.ready_subject, NULL, on_ready_ping, &f, NULL) != LC_OK)
        return 1;
    uv_timer_init(&f.loop, &f.start_timer);
    f.start_timer.data = &f;
    uv_timer_start(&f.start_timer, on_start, 0, 0);
    uv_signal_init(&f.loop, &f.sigterm);
    uv_signal_init(&f.loop, &f.sigint);
    f.sigterm.data = f.sigint.data = &f;
    uv_signal_start(&f.sigterm, on_signal, SIGTERM);
    uv_signal_start(&f.sigint, on_signal, SIGINT);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    lc_nats_destroy(f.nc);
    uv_loop_close(&f.loop);
    lc_nats_library_shutdown();
    return 0;
}
