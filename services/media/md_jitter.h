/*
 * md_jitter: adaptive jitter buffer for one incoming RTP stream.
 *
 * Packets go in as they arrive (any order, duplicates and late ones dropped and counted);
 * the playout clock takes one frame every ptime. The target delay adapts to the measured
 * interarrival jitter (RFC 3550 A.8 estimator), between min and max (default target
 * <= 40 ms, max 200 ms): it grows quickly on bursts and shrinks slowly by dropping or
 * stretching silence. When the frame due is missing, the caller conceals it (md_decode_plc).
 * A new SSRC or a large jump in sequence/timestamp resets the buffer (a new SSRC or sequence
 * jump discards what was buffered; a timestamp jump with the sequence going on only restarts
 * the delay estimates).
 *
 * MD_JITTER_MISSING comes in two kinds, both concealed the same way by the caller: a lost
 * frame (later ones are buffered: playout moves past it) and an underrun (nothing buffered
 * yet the stream is active: playout waits, the late frame plays next time, and the delay has
 * grown by one frame). After max(3 frames, target) without packets the stream is idle:
 * MD_JITTER_EMPTY until the next packet has buffered to the target again. Details in
 * md_jitter.c.
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

/* A field left 0 takes the default shown. One packet carries one frame of ptime_ms. */
typedef struct {
    int ptime_ms;      /* frame duration (20); 10..120 */
    int rtp_clock_hz;  /* for timestamp -> time (8000) */
    int min_delay_ms;  /* 20 */
    int target_max_ms; /* 40: the adaptive target stays at or below this unless jitter
                          forces more (it is also the target for the first second) */
    int max_delay_ms;  /* 200: hard bound on buffered audio; at most 2000 */
} md_jitter_opts_t;

/* Counters since create:
 *   received   packets handed to md_jitter_put
 *   late       arrived after playout passed their frame (dropped)
 *   duplicate  a copy of a frame already buffered or played (dropped)
 *   overflow   buffered frames thrown away to keep within max_delay_ms
 *   lost       frames playout reached or skipped that had never arrived
 *   concealed  MD_JITTER_MISSING results (lost frames plus underruns that stretched playout)
 *   resets     restarts: new SSRC or sequence jump (buffer discarded), timestamp jump
 *              (delay estimates only)
 *   shrunk     frames dropped to bring the delay back down to the target
 *   invalid    payloads larger than MD_JITTER_MAX_PAYLOAD_BYTES (dropped) */
typedef struct {
    uint64_t received, late, duplicate, overflow, lost, concealed, resets;
    double jitter_ms; /* RFC 3550 interarrival jitter estimate */
    int target_delay_ms;
    int buffered_ms;
    uint64_t shrunk, invalid;
} md_jitter_stats_t;

/* Largest payload a buffer keeps (an RTP packet of 1500 bytes minus its fixed header). */
#define MD_JITTER_MAX_PAYLOAD_BYTES 1488

typedef enum {
    MD_JITTER_FRAME = 0, /* a payload is returned */
    MD_JITTER_MISSING,   /* a frame should be here: conceal it */
    MD_JITTER_EMPTY,     /* nothing to play (not started / buffering / idle): play silence */
} md_jitter_result_t;

/* opts may be NULL (all defaults). LC_ERR_INVALID for out-of-range options. */
lc_status_t md_jitter_create(const md_jitter_opts_t *opts, md_jitter_t **out);
void md_jitter_destroy(md_jitter_t *jb);

/* Copies the payload. arrival_ms: the local monotonic time it arrived. */
void md_jitter_put(md_jitter_t *jb, uint16_t seq, uint32_t timestamp, uint32_t ssrc, bool marker,
                   const uint8_t *payload, size_t len, int64_t arrival_ms);

/* Called once per ptime by the playout clock. On MD_JITTER_FRAME, *payload and *len point into
 * the buffer and stay valid until the next call. *next_payload (may be NULL) is the
 * following frame when present (for opus FEC on MISSING). */
md_jitter_result_t md_jitter_get(md_jitter_t *jb, int64_t now_ms, const uint8_t **payload,
                                 size_t *len, const uint8_t **next_payload, size_t *next_len);

void md_jitter_get_stats(const md_jitter_t *jb, md_jitter_stats_t *out);

#endif
