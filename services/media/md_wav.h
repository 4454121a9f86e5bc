/*
 * md_wav: call recording as a stereo 16-bit PCM WAV file: left channel the caller, right
 * channel the agent, 16 kHz (the worker's internal rate).
 *
 * The two directions are written separately as their frames come (each channel keeps its
 * own position); samples are interleaved in a bounded buffer and written to the file once
 * MD_WAV_FLUSH_MS of both channels is there, so the packet path touches the disk at most
 * about ten times a second. If one channel runs more than MD_WAV_MAX_SKEW_MS ahead of the
 * other, the lagging one is padded with silence (counted) so memory stays bounded. The RIFF
 * and data sizes are written at close (md_wav_close); a file that was never closed still
 * holds all flushed audio behind a header announcing 0 bytes of data.
 *
 * Files above 4 GiB cannot be described by a WAV header: writing stops at that size (about
 * 18 hours) and later audio is counted as dropped.
 *
 * Threads: one instance per recording, used by one thread at a time.
 */
#ifndef MD_WAV_H
#define MD_WAV_H

#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

#define MD_WAV_FLUSH_MS 100
#define MD_WAV_MAX_SKEW_MS 500

typedef enum {
    MD_WAV_CALLER = 0, /* left */
    MD_WAV_AGENT = 1,  /* right */
} md_wav_channel_t;

typedef struct md_wav md_wav_t;

typedef struct {
    uint64_t frames_written;  /* stereo frames in the file */
    uint64_t padded_samples;  /* silence inserted into a lagging channel */
    uint64_t dropped_samples; /* not written: size limit or write error */
    uint64_t write_errors;
    uint64_t writes; /* write(2) calls for audio: at most one per MD_WAV_FLUSH_MS of it */
} md_wav_stats_t;

/* Creates (or truncates) path, mode 0640, and writes a provisional header. rate_hz 8000..48000.
 * LC_ERR_IO when the file cannot be created (logged with errno). */
lc_status_t md_wav_create(const char *path, int rate_hz, md_wav_t **out);

/* Appends samples (borrowed) to one channel. LC_ERR_IO after a write error (the recording
 * keeps going for the caller's sake: later calls retry). */
lc_status_t md_wav_write(md_wav_t *w, md_wav_channel_t channel, const int16_t *pcm, size_t samples);

/* Pads the shorter channel with silence, flushes, fixes up the header, closes the file and
 * frees w (also on error). LC_ERR_IO if any of that failed. NULL is a no-op (LC_OK). */
lc_status_t md_wav_close(md_wav_t *w);

/* md_wav_close without the status (the create/destroy pair); NULL is a no-op. */
void md_wav_destroy(md_wav_t *w);

void md_wav_get_stats(const md_wav_t *w, md_wav_stats_t *out);

#endif
