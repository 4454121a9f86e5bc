/*
 * voxi_fake_recording: stand-ins for both sides of GET /v1/calls/{id}/recording on a real
 * NATS server, for the gateway's system tests:
 *
 *   voxi_fake_recording NATS_URL WORKER_ID SIZE
 *
 * voxi.registry.calls.recording (ApiRequest), by call id:
 *   rec_ok        {"worker_id":WORKER_ID,"recording_path":"/rec/rec_ok.wav","size_bytes":SIZE}
 *   rec_empty     the same for an empty file (/rec/rec_empty.wav, size 0)
 *   rec_missing   a worker that answers not_found
 *   rec_cut       a worker that fails (internal) at every chunk but the first
 *   rec_long      a worker that sends a chunk longer than asked for
 *   rec_gone      worker "gone_worker": nobody subscribes (no responders)
 *   rec_silent    worker "silent_worker": subscribed, never answers
 *   rec_badloc    a locator whose worker id holds a '.'
 *   anything else Envelope.error not_found ("no such call")
 * voxi.media.WORKER_ID.recording.read (RecordingReadRequest): serves a file of SIZE bytes
 * whose byte i is (i * 7 + i / 251) & 0xff, checking call_id/path agree and length is at
 * most 262144 (else invalid). Prints, per chunk served, nothing; on SIGTERM prints
 * "chunks N" (chunks served) to stdout.
 *
 * Prints "ready" on stdout once the subscriptions are in place. Exit: 0 after a signal,
 * 1 on set-up errors, 2 usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "voxi/v1/api.pb-c.h"
#include "voxi/v1/media.pb-c.h"

#define CHUNK_MAX 262144

typedef struct {
    uv_loop_t loop;
    lc_nats_t *nc;
    const char *worker_id;
    uint64_t size;
    unsigned long chunks;
    char ready_subject[96];
    uv_timer_t start_timer;
    uv_signal_t sigterm, sigint;
} fake_t;

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
              const char *message)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (lc_pb_pack_error(request_id, st, message, &buf, &len) == LC_OK)
        lc_nats_respond(f->nc, reply_to, buf, len);
    free(buf);
}

static void
on_locate(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    fake_t *f = arg;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL)
        return;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    if (lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                     &voxi__v1__api_request__descriptor, &env, &body) != LC_OK) {
        respond_error(f, reply_to, "", LC_ERR_INVALID, "bad request");
        lc_pb_free(env, body);
        return;
    }
    const char *id = ((Voxi__V1__ApiRequest *) body)->id;
    const char *worker = f->worker_id;
    uint64_t size = f->size;
    if (strcmp(id, "rec_gone") == 0)
        worker = "gone_worker";
    else if (strcmp(id, "rec_silent") == 0)
        worker = "silent_worker";
    else if (strcmp(id, "rec_badloc") == 0)
        worker = "a.b";
    else if (strcmp(id, "rec_empty") == 0)
        size = 0;
    bool known = strcmp(id, "rec_ok") == 0 || strcmp(id, "rec_empty") == 0 ||
                 strcmp(id, "rec_missing") == 0 || strcmp(id, "rec_cut") == 0 ||
                 strcmp(id, "rec_long") == 0 || strcmp(id, "rec_gone") == 0 ||
                 strcmp(id, "rec_silent") == 0 || strcmp(id, "rec_badloc") == 0;
    if (!known) {
        respond_error(f, reply_to, env->request_id, LC_ERR_NOT_FOUND, "no such call");
    } else {
        char json[256];
        snprintf(json, sizeof(json),
                 "{\"worker_id\":\"%s\",\"recording_path\":\"/rec/%s.wav\",\"size_bytes\":%llu}",
                 worker, id, (unsigned long long) size);
        Voxi__V1__ApiReply rep = VOXI__V1__API_REPLY__INIT;
        rep.http_status = 200;
        rep.json = json;
        respond_pb(f, reply_to, env->request_id, &rep.base);
    }
    lc_pb_free(env, body);
}

static void
on_read(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    fake_t *f = arg;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL)
        return;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    if (lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                     &voxi__v1__recording_read_request__descriptor, &env, &body) != LC_OK) {
        respond_error(f, reply_to, "", LC_ERR_INVALID, "bad request");
        lc_pb_free(env, body);
        return;
    }
    const Voxi__V1__RecordingReadRequest *rr = (const Voxi__V1__RecordingReadRequest *) body;
    char expected[160];
    snprintf(expected, sizeof(expected), "/rec/%s.wav", rr->call_id);
    uint64_t size = strcmp(rr->call_id, "rec_empty") == 0 ? 0 : f->size;
    if (strcmp(rr->path, expected) != 0 || rr->length > CHUNK_MAX || rr->length == 0) {
        respond_error(f, reply_to, env->request_id, LC_ERR_INVALID, "bad path or length");
    } else if (strcmp(rr->call_id, "rec_missing") == 0) {
        respond_error(f, reply_to, env->request_id, LC_ERR_NOT_FOUND, "no such recording");
    } else if (strcmp(rr->call_id, "rec_cut") == 0 && rr->offset > 0) {
        respond_error(f, reply_to, env->request_id, LC_ERR_INTERNAL, "disk error");
    } else {
        uint64_t start = rr->offset < size ? rr->offset : size;
        uint64_t n = size - start < rr->length ? size - start : rr->length;
        if (strcmp(rr->call_id, "rec_long") == 0)
            n = rr->length + 1;
        uint8_t *data = malloc(n > 0 ? n : 1);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t at = start + i;
            data[i] = (uint8_t) ((at * 7 + at / 251) & 0xff);
        }
        Voxi__V1__RecordingReadReply rep = VOXI__V1__RECORDING_READ_REPLY__INIT;
        rep.data.data = data;
        rep.data.len = n;
        rep.total_size = size;
        rep.eof = start + n >= size;
        respond_pb(f, reply_to, env->request_id, &rep.base);
        free(data);
        f->chunks++;
    }
    lc_pb_free(env, body);
}

static void
on_silent(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    (void) msg;
    (void) arg;
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
    if (status != LC_OK) {
        uv_timer_start(&f->start_timer, on_start, 10, 0);
        return;
    }
    printf("ready\n");
    fflush(stdout);
}

static void
on_start(uv_timer_t *t)
{
    fake_t *f = t->data;
    if (!lc_nats_connected(f->nc) ||
        lc_nats_request(f->nc, f->ready_subject, "", 0, 2000, on_ready_reply, f, NULL) != LC_OK)
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
    printf("chunks %lu\n", f->chunks);
    fflush(stdout);
    uv_close((uv_handle_t *) &f->sigterm, NULL);
    uv_close((uv_handle_t *) &f->sigint, NULL);
    uv_close((uv_handle_t *) &f->start_timer, NULL);
    lc_nats_close(f->nc, on_closed, f);
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: voxi_fake_recording NATS_URL WORKER_ID SIZE\n");
        return 2;
    }
    fake_t f;
    memset(&f, 0, sizeof(f));
    f.worker_id = argv[2];
    f.size = strtoull(argv[3], NULL, 10);
    lc_log_init("voxi_fake_recording", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    snprintf(f.ready_subject, sizeof(f.ready_subject), "_voxi_fake.ready.%ld", (long) getpid());
    char read_subject[160];
    snprintf(read_subject, sizeof(read_subject), "voxi.media.%s.recording.read", f.worker_id);
    uv_loop_init(&f.loop);
    lc_nats_loop_init(&f.loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_fake_recording"};
    if (lc_nats_connect(&f.loop, &opts, &f.nc) != LC_OK)
        return 1;
    if (lc_nats_subscribe(f.nc, "voxi.registry.calls.recording", "registry", on_locate, &f, NULL) !=
            LC_OK ||
        lc_nats_subscribe(f.nc, read_subject, NULL, on_read, &f, NULL) != LC_OK ||
        lc_nats_subscribe(f.nc, "voxi.media.silent_worker.recording.read", NULL, on_silent, &f,
                          NULL) != LC_OK ||
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
