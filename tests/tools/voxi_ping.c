/*
 * voxi_ping: sends one voxi.v1.PingRequest to voxi.<service>.ping over NATS and prints the
 * reply as JSON. Used by the system tests (and handy by hand).
 *
 *   voxi_ping NATS_URL SERVICE [TIMEOUT_MS] [NOTE]
 *
 * Exit: 0 reply, 3 no responders, 4 timeout, 5 error reply or bad reply, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/ping.pb-c.h"

typedef struct {
    lc_nats_t *nc;
    const char *subject;
    const char *note;
    int64_t timeout_ms;
    int exit_code;
    uv_timer_t start_timer;
} ping_t;

static void
on_closed(void *arg)
{
    (void) arg;
}

static void
on_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    ping_t *p = arg;
    if (status == LC_ERR_NO_RESPONDERS) {
        fprintf(stderr, "no responders on %s\n", p->subject);
        p->exit_code = 3;
    } else if (status == LC_ERR_TIMEOUT) {
        fprintf(stderr, "timeout on %s\n", p->subject);
        p->exit_code = 4;
    } else if (status != LC_OK) {
        fprintf(stderr, "request failed: %s\n", lc_status_name(status));
        p->exit_code = 5;
    } else {
        Voxi__V1__Envelope *env = NULL;
        ProtobufCMessage *body = NULL;
        lc_status_t st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                                      &voxi__v1__ping_reply__descriptor, &env, &body);
        if (st != LC_OK) {
            fprintf(stderr, "bad reply: %s\n", lc_status_name(st));
            p->exit_code = 5;
        } else {
            Voxi__V1__PingReply *r = (Voxi__V1__PingReply *) body;
            printf("{\"service\":\"%s\",\"instance_id\":\"%s\",\"version\":\"%s\","
                   "\"uptime_ms\":%lld,\"note\":\"%s\",\"ready\":%s,\"request_id\":\"%s\"}\n",
                   r->service, r->instance_id, r->version, (long long) r->uptime_ms, r->note,
                   r->ready ? "true" : "false", env->request_id);
            p->exit_code = 0;
        }
        lc_pb_free(env, body);
    }
    lc_nats_close(p->nc, on_closed, p);
}

/* Waits for the connection (bounded by the timeout), then sends the request. */
static void
on_start(uv_timer_t *t)
{
    ping_t *p = t->data;
    if (!lc_nats_connected(p->nc)) {
        p->timeout_ms -= 10;
        if (p->timeout_ms <= 0) {
            fprintf(stderr, "could not connect to NATS\n");
            p->exit_code = 4;
            uv_close((uv_handle_t *) t, NULL);
            lc_nats_close(p->nc, on_closed, p);
            return;
        }
        uv_timer_start(t, on_start, 10, 0);
        return;
    }
    uv_close((uv_handle_t *) t, NULL);
    Voxi__V1__PingRequest req = VOXI__V1__PING_REQUEST__INIT;
    req.note = (char *) p->note;
    char request_id[40];
    lc_id_new("req_", request_id, sizeof(request_id));
    lc_pb_meta_t meta = {.request_id = request_id,
                         .deadline_unix_ms = lc_time_wall_ms() + p->timeout_ms};
    uint8_t *buf;
    size_t len;
    lc_pb_pack(&meta, &req.base, &buf, &len);
    lc_status_t st = lc_nats_request(p->nc, p->subject, buf, len, p->timeout_ms, on_reply, p, NULL);
    free(buf);
    if (st != LC_OK) {
        fprintf(stderr, "request: %s\n", lc_status_name(st));
        p->exit_code = 5;
        lc_nats_close(p->nc, on_closed, p);
    }
}

int
main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: voxi_ping NATS_URL SERVICE [TIMEOUT_MS] [NOTE]\n");
        return 2;
    }
    lc_log_init("voxi_ping", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    char subject[128];
    snprintf(subject, sizeof(subject), "voxi.%s.ping", argv[2]);
    ping_t p = {.subject = subject,
                .note = argc > 4 ? argv[4] : "",
                .timeout_ms = argc > 3 ? atoll(argv[3]) : 2000,
                .exit_code = 1};
    uv_loop_t loop;
    uv_loop_init(&loop);
    lc_nats_loop_init(&loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_ping"};
    if (lc_nats_connect(&loop, &opts, &p.nc) != LC_OK)
        return 1;
    uv_timer_init(&loop, &p.start_timer);
    p.start_timer.data = &p;
    uv_timer_start(&p.start_timer, on_start, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_nats_destroy(p.nc);
    uv_loop_close(&loop);
    lc_nats_library_shutdown();
    return p.exit_code;
}
