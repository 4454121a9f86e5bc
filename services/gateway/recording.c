/*
 * Streaming a call recording from its media worker (see gw_recording.h).
 *
 * Lifetime of a download (rec_t):
 *   FIRST      the request is deferred in lc_http (its deadline and "client gone" reach
 *              on_abort) while the first chunk is asked for;
 *   STREAMING  the response has started and rec->gen is the request's generator: h2o
 *              calls proceed when a chunk is on the wire and stop when the client went
 *              away; a NATS request for the next chunk is pending between the two.
 * A rec_t always ends exactly once: an abort or stop cancels the pending NATS request, and
 * a NATS callback that answers the request ends it (final chunk or error).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_recording.h"
#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/media.pb-c.h"

#define SUBJECT_MAX (GW_RECORDING_WORKER_ID_MAX + 64)

typedef enum {
    REC_FIRST = 0,
    REC_STREAMING,
} rec_stage_t;

typedef struct {
    h2o_generator_t gen; /* REC_STREAMING: the request's generator */
    gw_t *gw;
    gw_ctx_t ctx;
    char call_id[GW_PARAM_MAX + 1];
    char subject[SUBJECT_MAX];
    char *path;
    rec_stage_t stage;
    uint64_t http_id; /* REC_FIRST: the deferred request */
    h2o_req_t *req;   /* REC_STREAMING: valid while the generator is attached */
    uint64_t nats_id;
    bool nats_pending;
    uint32_t asked;  /* length of the chunk asked for */
    uint64_t offset; /* bytes received so far */
    uint64_t total;  /* the worker's total_size (after the first chunk) */
    uint8_t *chunk;  /* the chunk h2o is sending, until proceed or stop */
} rec_t;

/* ---- the locator ---- */

static bool
token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

lc_status_t
gw_recording_locator_parse(const char *json, size_t len, gw_recording_locator_t *out)
{
    memset(out, 0, sizeof(*out));
    lc_status_t st = LC_ERR_PROTOCOL;
    json_t *doc = json != NULL ? json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *worker = json_object_get(doc, "worker_id");
    json_t *path = json_object_get(doc, "recording_path");
    json_t *size = json_object_get(doc, "size_bytes");
    if (!json_is_object(doc) || !json_is_string(worker) || !json_is_string(path) ||
        !json_is_integer(size) || json_integer_value(size) < 0)
        goto done;
    size_t wlen = json_string_length(worker), plen = json_string_length(path);
    const char *w = json_string_value(worker), *p = json_string_value(path);
    if (wlen == 0 || wlen > GW_RECORDING_WORKER_ID_MAX || plen == 0 ||
        plen > GW_RECORDING_PATH_MAX || memchr(p, '\0', plen) != NULL)
        goto done;
    for (size_t i = 0; i < wlen; i++)
        if (!token_char(w[i]))
            goto done;
    memcpy(out->worker_id, w, wlen + 1);
    memcpy(out->path, p, plen + 1);
    out->size_bytes = (uint64_t) json_integer_value(size);
    st = LC_OK;
done:
    json_decref(doc);
    return st;
}

/* ---- lifetime ---- */

static void
rec_free(rec_t *rec)
{
    gw_t *gw = rec->gw;
    gw->ncalls--;
    lc_metric_dec(gw->inflight);
    free(rec->chunk);
    free(rec->path);
    free(rec);
}

static void on_chunk(lc_status_t status, const lc_nats_msg_t *reply, void *arg);

/* Asks the worker for the chunk at rec->offset. */
static lc_status_t
request_chunk(rec_t *rec)
{
    gw_t *gw = rec->gw;
    Voxi__V1__RecordingReadRequest rr = VOXI__V1__RECORDING_READ_REQUEST__INIT;
    uint64_t left = rec->stage == REC_FIRST ? GW_RECORDING_CHUNK_BYTES : rec->total - rec->offset;
    rec->asked = (uint32_t) (left < GW_RECORDING_CHUNK_BYTES ? left : GW_RECORDING_CHUNK_BYTES);
    rr.call_id = rec->call_id;
    rr.path = rec->path;
    rr.offset = rec->offset;
    rr.length = rec->asked;
    lc_pb_meta_t meta = {
        .request_id = rec->ctx.request_id,
        .deadline_unix_ms = lc_time_wall_ms() + gw->cfg->request_timeout_ms,
    };
    uint8_t *buf = NULL;
    size_t len = 0;
    lc_status_t st = lc_pb_pack(&meta, &rr.base, &buf, &len);
    if (st == LC_OK)
        st = lc_nats_request(gw->nats, rec->subject, buf, len, gw->cfg->request_timeout_ms,
                             on_chunk, rec, &rec->nats_id);
    free(buf);
    rec->nats_pending = st == LC_OK;
    return st;
}

/* ---- before the response started: errors are problems ---- */

static void
respond_failure(rec_t *rec, h2o_req_t *req, lc_status_t st, const char *message)
{
    char detail[GW_DETAIL_MAX];
    int status = gw_problem_http_for_status(st);
    switch (st) {
    case LC_ERR_TIMEOUT:
        snprintf(detail, sizeof(detail),
                 "The media worker holding this recording did not answer within %lld ms.",
                 (long long) rec->gw->cfg->request_timeout_ms);
        break;
    case LC_ERR_NO_RESPONDERS:
        snprintf(detail, sizeof(detail),
                 "The media worker holding this recording is not available.");
        break;
    case LC_ERR_NOT_FOUND:
        snprintf(detail, sizeof(detail), "The media worker no longer has this recording.");
        break;
    case LC_ERR_PROTOCOL:
        snprintf(detail, sizeof(detail), "The media worker sent a malformed reply.");
        break;
    default:
        if (message != NULL && message[0] != '\0')
            snprintf(detail, sizeof(detail), "%s", message);
        else
            snprintf(detail, sizeof(detail), "The recording could not be read.");
        break;
    }
    gw_respond_problem(rec->gw, req, &rec->ctx, status, lc_status_name(st), detail, NULL, 0);
}

static void
on_abort(lc_http_t *http, uint64_t id, h2o_req_t *req, void *arg)
{
    (void) http;
    (void) id;
    rec_t *rec = arg;
    lc_log_context_set(rec->ctx.request_id, NULL);
    if (rec->nats_pending)
        lc_nats_request_cancel(rec->gw->nats, rec->nats_id);
    if (req != NULL) {
        LC_WARN("http", "no answer from %s in time", rec->subject);
        gw_respond_problem(rec->gw, req, &rec->ctx, 504, "timeout",
                           "The request did not complete in time.", NULL, 0);
    }
    lc_log_context_clear();
    rec_free(rec);
}

/* ---- streaming ---- */

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req);
static void on_stop(h2o_generator_t *gen, h2o_req_t *req);

/* Checks a chunk against what was asked and what came before; NULL when acceptable. */
static const char *
chunk_problem(const rec_t *rec, const Voxi__V1__RecordingReadReply *rr)
{
    size_t n = rr->data.len;
    if (n > rec->asked)
        return "a chunk longer than asked for";
    if (rec->stage == REC_STREAMING && rr->total_size != rec->total)
        return "the recording changed size while it was read";
    if (rec->offset + n > rr->total_size)
        return "more data than its size";
    bool complete = rec->offset + n == rr->total_size;
    if (rr->eof != complete)
        return "an end of file that does not match its size";
    if (n == 0 && !complete)
        return "an empty chunk";
    return NULL;
}

/* Hands a chunk to h2o; ends the download after the last one. */
static void
send_chunk(rec_t *rec, const uint8_t *data, size_t len)
{
    h2o_req_t *req = rec->req;
    rec->offset += len;
    h2o_iovec_t iov = {NULL, 0};
    if (rec->offset == rec->total) {
        /* after the final send no callback tells when h2o is done with the buffer: the
         * request's pool lives exactly as long as needed */
        if (len > 0) {
            iov.base = h2o_mem_alloc_pool(&req->pool, len);
            memcpy(iov.base, data, len);
            iov.len = len;
        }
        LC_DEBUG("http", "recording of %s sent: %llu bytes", rec->call_id,
                 (unsigned long long) rec->total);
        h2o_send(req, &iov, len > 0 ? 1 : 0, H2O_SEND_STATE_FINAL);
        rec_free(rec);
        return;
    }
    free(rec->chunk);
    rec->chunk = lc_malloc(len);
    memcpy(rec->chunk, data, len);
    iov.base = (char *) rec->chunk;
    iov.len = len;
    h2o_send(req, &iov, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* A failure once the headers are out: the only thing left is to cut the response. */
static void
cut_stream(rec_t *rec, const char *why)
{
    LC_LOG_RL(LC_LOG_WARN, "http", 1, "recording of %s cut after %llu of %llu bytes: %s",
              rec->call_id, (unsigned long long) rec->offset, (unsigned long long) rec->total, why);
    h2o_send(rec->req, NULL, 0, H2O_SEND_STATE_ERROR);
    rec_free(rec);
}

static void
start_response(rec_t *rec, h2o_req_t *req, const Voxi__V1__RecordingReadReply *rr)
{
    rec->total = rr->total_size;
    rec->req = req;
    rec->stage = REC_STREAMING;
    rec->gen.proceed = on_proceed;
    rec->gen.stop = on_stop;
    gw_common_headers(req, &rec->ctx);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("audio/wav"));
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = (size_t) rec->total;
    gw_count_response(rec->gw, &rec->ctx, 200); /* when its headers go out, as gw_respond */
    h2o_start_response(req, &rec->gen);
    send_chunk(rec, rr->data.data, rr->data.len);
}

static void
on_chunk(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    rec_t *rec = arg;
    gw_t *gw = rec->gw;
    rec->nats_pending = false;
    h2o_req_t *req = rec->req;
    if (rec->stage == REC_FIRST) {
        req = lc_http_resume(gw->http, rec->http_id);
        if (req == NULL) { /* cannot happen: an abort cancels the NATS request */
            rec_free(rec);
            return;
        }
    }
    lc_log_context_set(rec->ctx.request_id, NULL);
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = status;
    if (st == LC_OK)
        st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                          &voxi__v1__recording_read_reply__descriptor, &env, &body);
    const Voxi__V1__RecordingReadReply *rr = (const Voxi__V1__RecordingReadReply *) body;
    const char *bad = st == LC_OK ? chunk_problem(rec, rr) : NULL;
    if (bad != NULL) {
        LC_LOG_RL(LC_LOG_WARN, "http", 1, "%s sent %s", rec->subject, bad);
        st = LC_ERR_PROTOCOL;
    }
    if (st == LC_ERR_INVALID) /* the worker refused the registry's path: not the caller's fault */
        st = LC_ERR_PROTOCOL;
    if (st != LC_OK) {
        const char *message = env != NULL && env->error != NULL ? env->error->message : NULL;
        if (st == LC_ERR_TIMEOUT || st == LC_ERR_NO_RESPONDERS)
            LC_WARN("http", "%s: %s", rec->subject, lc_status_name(st));
        if (rec->stage == REC_FIRST) {
            respond_failure(rec, req, st, message);
            rec_free(rec);
        } else {
            cut_stream(rec, lc_status_name(st));
        }
    } else if (rec->stage == REC_FIRST) {
        start_response(rec, req, rr);
    } else {
        send_chunk(rec, rr->data.data, rr->data.len);
    }
    lc_pb_free(env, body);
    lc_log_context_clear();
}

/* h2o wrote the previous chunk: ask for the next. */
static void
on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void) req;
    rec_t *rec = (rec_t *) gen;
    free(rec->chunk);
    rec->chunk = NULL;
    lc_status_t st = request_chunk(rec);
    if (st != LC_OK)
        cut_stream(rec, lc_status_name(st));
}

/* The client went away (or the connection failed) mid-stream. */
static void
on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void) req;
    rec_t *rec = (rec_t *) gen;
    LC_DEBUG("http", "recording of %s: client gone after %llu bytes", rec->call_id,
             (unsigned long long) rec->offset);
    if (rec->nats_pending)
        lc_nats_request_cancel(rec->gw->nats, rec->nats_id);
    rec_free(rec);
}

void
gw_recording_start(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, const char *call_id,
                   const char *locator_json)
{
    gw_recording_locator_t loc;
    if (gw_recording_locator_parse(locator_json, strlen(locator_json), &loc) != LC_OK) {
        LC_LOG_RL(LC_LOG_WARN, "http", 1, "bad recording locator from the registry");
        gw_respond_problem(gw, req, ctx, 502, "protocol",
                           "The registry service sent a malformed reply.", NULL, 0);
        return;
    }
    rec_t *rec = LC_NEW(rec_t);
    rec->gw = gw;
    rec->ctx = *ctx;
    snprintf(rec->call_id, sizeof(rec->call_id), "%s", call_id);
    snprintf(rec->subject, sizeof(rec->subject), "voxi.media.%s.recording.read", loc.worker_id);
    rec->path = lc_strdup(loc.path);
    gw->ncalls++;
    lc_metric_inc(gw->inflight);
    lc_status_t st = request_chunk(rec);
    if (st != LC_OK) {
        LC_WARN("http", "cannot ask %s: %s", rec->subject, lc_status_name(st));
        respond_failure(rec, req, st, NULL);
        rec_free(rec);
        return;
    }
    rec->http_id = lc_http_defer(gw->http, req, gw->cfg->request_timeout_ms + GW_DEADLINE_GRACE_MS,
                                 on_abort, rec);
}
