/*
 * md_jitter: adaptive jitter buffer for one incoming RTP stream.
 *
 * Packets go in as they arrive (any order, duplicates and late ones dropped and counted);
 * the playout clock takes one frame every ptime. The target delay adapts to the measured
 * interarrival jitter (RFC 3550 A.8 estimator), between min and max (default target
 * <= 40 ms, max 200 ms): it grows quickly on bursts and shrinks slowly by dropping or
 * stretching silence. When the frame due is missing, the caller conceals it (md_decode_plc).
 * A new SSRC or a large jump in sequence/timestamp resets the buffer.
 *
 * Threads: one thread per buffer.
 */
#ifndef MD_JITTER_H
#define MD_JITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

typedef struct md_jitter md_jitter_t;

typedef struct {
    int ptime_ms;       /* frame duration (20) */
    int rtp_clock_hz;   /* for timestamp -> time */
    int min_delay_ms;   /* 20 */
    int target_max_ms;  /* 40: the adaptive target stays at or below this unless jitter
                           forces more */
    int max_delay_ms;   /* 200: hard bound on buffered audio */
} md_jitter_opts_t;

typedef struct {
    uint64_t received, late, duplicate, overflow, lost, concealed, resets;
    double jitter_ms;   /* RFC 3550 interarrival jitter estimate */
    int target_delay_ms;
    int buffered_ms;
} md_jitter_stats_t;

typedef enum {
    MD_JITTER_FRAME = 0, /* a payload is returned */
    MD_JITTER_MISSING,   /* a frame should be here: conceal it */
    MD_JITTER_EMPTY,     /* nothing to play (not started / buffering / idle): play silence */
} md_jitter_result_t;

lc_status_t md_jitter_create(const md_jitter_opts_t *opts, md_jitter_t **out);
void md_jitter_destroy(md_jitter_t *jb);

/* Copies the payload. arrival_ms: the local monotonic time it arrived. */
void md_jitter_put(md_jitter_t *jb, uint16_t seq, uint32_t timestamp, uint32_t ssrc,
                   bool marker, const uint8_t *payload, size_t len, int64_t arrival_ms);

/* Called once per ptime by the playout clock. On MD_JITTER_FRAME, *payload/*len point into
 * the buffer and stay valid until the next call. *next_payload (may be NULL) is the
 * following frame when present (for opus FEC on MISSING). */
md_jitter_result_t md_jitter_get(md_jitter_t *jb, int64_t now_ms, const uint8_t **payload,
                                 size_t *len, const uint8_t **next_payload, size_t *next_len);

void md_jitter_get_stats(const md_jitter_t *jb, md_jitter_stats_t *out);

#endif
