/*
 * md_playout: the 20 ms media clock of one loop, and the queue of audio each call plays.
 *
 * ONE timer per loop paces every call (not one per call): each tick, for every stream, the
 * stream's `tick` callback runs with the caller's 20 ms pulled first (decoded from the
 * jitter buffer) and the outgoing 20 ms chosen here: queued audio when there is some, the
 * caller's own audio when echo is on, silence otherwise. The tick is scheduled against the
 * monotonic clock (uv_hrtime), not by adding 20 ms to a late timer, so packet spacing does
 * not drift; when the loop was held up it catches up by at most MD_PLAYOUT_MAX_CATCHUP
 * frames and then skips ahead (counted).
 *
 * The queue holds segments of 16 kHz PCM by reference (a cached prompt is never copied);
 * md_playout_flush drops everything queued at once (barge-in).
 *
 * Threads: the loop thread only.
 */
#ifndef MD_PLAYOUT_H
#define MD_PLAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_status.h"

#define MD_PLAYOUT_FRAME_MS 20
#define MD_PLAYOUT_FRAME_SAMPLES 320 /* 20 ms at 16 kHz */
#define MD_PLAYOUT_MAX_CATCHUP 5

typedef struct md_playout md_playout_t;
typedef struct md_playout_stream md_playout_stream_t;

typedef struct {
    /* 20 ms of the caller's audio into pcm; false (pcm zeroed) when there was none. */
    bool (*pull)(void *arg, int64_t now_ms, int16_t *pcm, size_t samples);
    /* The frame to send now; `caller` is what pull returned this tick. `playing` is true
     * when out comes from the queue (a prompt), false for echo or silence. */
    void (*push)(void *arg, int64_t now_ms, const int16_t *caller, const int16_t *out,
                 size_t samples, bool playing);
    /* The queue ran empty (optional). */
    void (*drained)(void *arg);
    void *arg;
} md_playout_io_t;

lc_status_t md_playout_create(uv_loop_t *loop, lc_metrics_t *metrics, md_playout_t **out);
/* Closes the timer; free follows on the loop. Streams must be gone first. NULL: no-op. */
void md_playout_destroy(md_playout_t *p);
size_t md_playout_stream_count(const md_playout_t *p);

/* A new stream ticking from the next frame on. io is copied. */
md_playout_stream_t *md_playout_stream_create(md_playout_t *p, const md_playout_io_t *io);
/* Stops ticking at once and frees (queued segments released). NULL is a no-op. */
void md_playout_stream_destroy(md_playout_stream_t *st);

/* Queues pcm (borrowed until release(release_arg) is called, which may be NULL for static
 * audio that outlives the stream). */
void md_playout_enqueue(md_playout_stream_t *st, const int16_t *pcm, size_t samples,
                        void (*release)(void *), void *release_arg);
/* Queues a copy of pcm. */
void md_playout_enqueue_copy(md_playout_stream_t *st, const int16_t *pcm, size_t samples);
/* Drops everything queued. */
void md_playout_flush(md_playout_stream_t *st);
size_t md_playout_queued_samples(const md_playout_stream_t *st);
/* Echo the caller's audio when nothing is queued. */
void md_playout_set_echo(md_playout_stream_t *st, bool echo);

#endif
