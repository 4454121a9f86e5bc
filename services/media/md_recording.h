/*
 * md_recording: serves chunks of this worker's call recordings on
 * `voxi.media.<worker_id>.recording.read` (voxi.v1.RecordingReadRequest -> RecordingReadReply,
 * proto/voxi/v1/media.proto), so the gateway can stream GET /v1/calls/{id}/recording from
 * the worker that wrote it.
 *
 * The request is untrusted: the path must resolve (realpath, so no "..", no symlink out)
 * to a regular file directly inside VOXI_MEDIA_RECORDINGS_DIR, named <call_id>.wav when a
 * call id is given; length must be 1..262144 (0 means 262144). Errors: "invalid" (outside
 * the directory, bad length, another call's file), "not_found" (no such file, or recording
 * is off). A recording still being written reads up to its current size (eof false until
 * the call has ended and the reader reached the end).
 *
 * Reads are plain pread() on the loop thread: at most 256 KiB from a local file per request.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_RECORDING_H
#define MD_RECORDING_H

#include "md_worker.h"

#define MD_RECORDING_READ_MAX (256u * 1024u)

/* Subscribes (w borrowed; w->instance_id and w->cfg set). Never NULL. */
md_recording_srv_t *md_recording_srv_create(md_worker_t *w);
/* Unsubscribes (drain). */
void md_recording_srv_stop(md_recording_srv_t *srv);
/* NULL is a no-op. */
void md_recording_srv_destroy(md_recording_srv_t *srv);

#endif
