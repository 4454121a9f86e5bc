/*
 * voxi_media_ctl: talks to media workers over NATS, for the system tests (and
 * by hand).
 *
 *   voxi_media_ctl NATS_URL dial TO [FROM_USER [TIMEOUT_MS [CALL_ID [ORG_ID AGENT_ID
 *                                NUMBER_ID AGENT_JSON [NAME=VALUE...]]]]]
 *       voxi.media.dial -> prints {"call_id":...,"worker_id":...}
 *   voxi_media_ctl NATS_URL ctl CALL_ID ACTION [ARG]
 *       voxi.call.<CALL_ID>.ctl, ACTION hangup [reason] | transfer URI | dtmf
 * DIGITS
 *       -> prints {"call_id":...,"state":...}
 *   voxi_media_ctl NATS_URL recording-read WORKER_ID CALL_ID PATH OFFSET LENGTH [OUT_FILE]
 *       voxi.media.<WORKER_ID>.recording.read -> prints {"len":...,"total_size":...,"eof":...}
 *       and writes the chunk to OUT_FILE (appending) when given
 *
 * Exit: 0 reply, 3 no responders, 4 timeout, 5 error reply (status name on
 * stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/media.pb-c.h"

#define TIMEOUT_MS 5000

typedef struct {
    lc_nats_t *nc;
    char subject[160];
    uint8_t *request;
    size_t request_len;
    bool dial;
    bool recording;
    const char *out_file;
    int64_t wait_ms;
    int exit_code;
} ctl_t;

static void
on_closed(void *arg)
{
    (void) arg;
}

static void
on_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    ctl_t *c = arg;
    if (status == LC_ERR_NO_RESPONDERS) {
        fprintf(stderr, "no responders on %s\n", c->subject);
        c->exit_code = 3;
    } else if (status != LC_OK) {
        fprintf(stderr, "request failed: %s\n", lc_status_name(status));
        c->exit_code = 4;
    } else {
        Voxi__V1__Envelope *env = NULL;
        ProtobufCMessage *body = NULL;
        const ProtobufCMessageDescriptor *d = &voxi__v1__call_control_reply__descriptor;
        if (c->dial)
            d = &voxi__v1__dial_reply__descriptor;
        else if (c->recording)
            d = &voxi__v1__recording_read_reply__descriptor;
        lc_status_t st =
            lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply), d, &env, &body);
        if (st != LC_OK) {
            fprintf(stderr, "%s\n", lc_status_name(st));
            if (env && env->error)
                fprintf(stderr, "%s\n", env->error->message);
            c->exit_code = 5;
        } else if (c->recording) {
            Voxi__V1__RecordingReadReply *r = (Voxi__V1__RecordingReadReply *) body;
            c->exit_code = 0;
            if (c->out_file) {
                FILE *f = fopen(c->out_file, "ab");
                if (f == NULL || fwrite(r->data.data, 1, r->data.len, f) != r->data.len) {
                    fprintf(stderr, "cannot write %s\n", c->out_file);
                    c->exit_code = 6;
                }
                if (f)
                    fclose(f);
            }
            printf("{\"len\":%zu,\"total_size\":%llu,\"eof\":%s}\n", r->data.len,
                   (unsigned long long) r->total_size, r->eof ? "true" : "false");
        } else if (c->dial) {
            Voxi__V1__DialReply *r = (Voxi__V1__DialReply *) body;
            printf("{\"call_id\":\"%s\",\"worker_id\":\"%s\"}\n", r->call_id, r->worker_id);
            c->exit_code = 0;
        } else {
            Voxi__V1__CallControlReply *r = (Voxi__V1__CallControlReply *) body;
            printf("{\"call_id\":\"%s\",\"state\":\"%s\"}\n", r->call_id, r->state);
            c->exit_code = 0;
        }
        lc_pb_free(env, body);
    }
    lc_nats_close(c->nc, on_closed, c);
}

static void
on_start(uv_timer_t *t)
{
    ctl_t *c = t->data;
    if (!lc_nats_connected(c->nc)) {
        c->wait_ms -= 10;
        if (c->wait_ms <= 0) {
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
    lc_status_t st = lc_nats_request(c->nc, c->subject, c->request, c->request_len, TIMEOUT_MS,
                                     on_reply, c, NULL);
    if (st != LC_OK) {
        fprintf(stderr, "request: %s\n", lc_status_name(st));
        c->exit_code = 5;
        lc_nats_close(c->nc, on_closed, c);
    }
}

static int
usage(void)
{
    fprintf(stderr,
            "usage: voxi_media_ctl NATS_URL dial TO [FROM_USER "
            "[TIMEOUT_MS [CALL_ID [ORG_ID AGENT_ID NUMBER_ID AGENT_JSON [NAME=VALUE...]]]]]\n"
            "       voxi_media_ctl NATS_URL ctl CALL_ID "
            "hangup|transfer|dtmf [ARG]\n"
            "       voxi_media_ctl NATS_URL recording-read WORKER_ID CALL_ID PATH "
            "OFFSET LENGTH [OUT_FILE]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    lc_log_init("voxi_media_ctl", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    ctl_t c = {.exit_code = 1, .wait_ms = TIMEOUT_MS};
    char request_id[40];
    lc_id_new("req_", request_id, sizeof(request_id));
    lc_pb_meta_t meta = {.request_id = request_id,
                         .deadline_unix_ms = lc_time_wall_ms() + TIMEOUT_MS};
    if (strcmp(argv[2], "dial") == 0) {
        Voxi__V1__DialRequest req = VOXI__V1__DIAL_REQUEST__INIT;
        req.to = argv[3];
        if (argc > 4)
            req.from_user = argv[4];
        if (argc > 5)
            req.timeout_ms = atoll(argv[5]);
        if (argc > 6)
            req.call_id = argv[6];
        /* the agent fields: ORG_ID AGENT_ID NUMBER_ID AGENT_JSON [NAME=VALUE...] */
        if (argc > 7)
            req.org_id = argv[7];
        if (argc > 8)
            req.agent_id = argv[8];
        if (argc > 9)
            req.number_id = argv[9];
        if (argc > 10)
            req.agent_json = argv[10];
        Voxi__V1__DialRequest__VariablesEntry vars[16], *var_ptrs[16];
        for (int i = 11; i < argc && req.n_variables < 16; i++) {
            char *eq = strchr(argv[i], '=');
            if (eq == NULL)
                return usage();
            *eq = '\0';
            Voxi__V1__DialRequest__VariablesEntry *v = &vars[req.n_variables];
            voxi__v1__dial_request__variables_entry__init(v);
            v->key = argv[i];
            v->value = eq + 1;
            var_ptrs[req.n_variables++] = v;
        }
        req.variables = var_ptrs;
        c.dial = true;
        snprintf(c.subject, sizeof(c.subject), "voxi.media.dial");
        lc_pb_pack(&meta, &req.base, &c.request, &c.request_len);
    } else if (strcmp(argv[2], "ctl") == 0 && argc >= 5) {
        Voxi__V1__CallControlRequest req = VOXI__V1__CALL_CONTROL_REQUEST__INIT;
        req.action = argv[4];
        if (argc > 5) {
            if (strcmp(argv[4], "transfer") == 0)
                req.target = argv[5];
            else if (strcmp(argv[4], "dtmf") == 0)
                req.digits = argv[5];
            else
                req.reason = argv[5];
        }
        snprintf(c.subject, sizeof(c.subject), "voxi.call.%s.ctl", argv[3]);
        lc_pb_pack(&meta, &req.base, &c.request, &c.request_len);
    } else if (strcmp(argv[2], "recording-read") == 0 && argc >= 8) {
        Voxi__V1__RecordingReadRequest req = VOXI__V1__RECORDING_READ_REQUEST__INIT;
        req.call_id = argv[4];
        req.path = argv[5];
        req.offset = strtoull(argv[6], NULL, 10);
        req.length = (uint32_t) strtoul(argv[7], NULL, 10);
        c.recording = true;
        c.out_file = argc > 8 ? argv[8] : NULL;
        snprintf(c.subject, sizeof(c.subject), "voxi.media.%s.recording.read", argv[3]);
        lc_pb_pack(&meta, &req.base, &c.request, &c.request_len);
    } else {
        return usage();
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    lc_nats_loop_init(&loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_media_ctl"};
    if (lc_nats_connect(&loop, &opts, &c.nc) != LC_OK) {
        fprintf(stderr, "cannot connect\n");
        return 4;
    }
    uv_timer_t start;
    uv_timer_init(&loop, &start);
    start.data = &c;
    uv_timer_start(&start, on_start, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_nats_destroy(c.nc);
    uv_loop_close(&loop);
    lc_nats_library_shutdown();
    free(c.request);
    return c.exit_code;
}
