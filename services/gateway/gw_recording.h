/*
 * gw_recording: GET /v1/calls/{id}/recording. The registry's reply to
 * voxi.registry.calls.recording locates the file ({"worker_id","recording_path",
 * "size_bytes"}); the gateway then reads it in chunks from the media worker that wrote it
 * (voxi.media.<worker_id>.recording.read, RecordingReadRequest/Reply in media.proto) and
 * streams them to the client with h2o's generator API: each proceed callback (the previous
 * chunk is on the wire) asks for the next chunk, so at most one chunk per download is in
 * memory.
 *
 * The response starts (200, audio/wav, Content-Length = the worker's total_size) only once
 * the first chunk arrived, so a worker that is gone or silent is still a problem+json 503
 * or 504, a recording the worker does not have a 404. A failure after that can only cut
 * the connection (the client sees fewer bytes than Content-Length).
 *
 * Threads: loop thread only.
 */
#ifndef GW_RECORDING_H
#define GW_RECORDING_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_internal.h"

/* Largest chunk asked of a worker (RecordingReadRequest.length bound). */
#define GW_RECORDING_CHUNK_BYTES 262144
/* Longest worker id accepted from the registry (an lc_service instance id). */
#define GW_RECORDING_WORKER_ID_MAX 79
#define GW_RECORDING_PATH_MAX 4096

typedef struct {
    char worker_id[GW_RECORDING_WORKER_ID_MAX + 1];
    char path[GW_RECORDING_PATH_MAX + 1];
    uint64_t size_bytes;
} gw_recording_locator_t;

/*
 * Parses the registry's locator JSON (len bytes, no NUL needed). The worker id must be a
 * NATS subject token of [A-Za-z0-9_-] (it becomes part of a subject), the path 1..4096
 * bytes without NUL, size_bytes a non-negative integer. LC_ERR_PROTOCOL otherwise.
 */
lc_status_t gw_recording_locator_parse(const char *json, size_t len, gw_recording_locator_t *out);

/*
 * Takes over `req` (resumed, not yet answered) after the registry located the recording
 * of call_id: answers at once when it cannot start, else keeps the request until the
 * stream ends. ctx and the strings are copied. Counts in gw->ncalls while it lasts.
 */
void gw_recording_start(gw_t *gw, h2o_req_t *req, const gw_ctx_t *ctx, const char *call_id,
                        const char *locator_json);

#endif
