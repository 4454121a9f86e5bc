/*
 * webrtc_vad_shim: the WebRTC VAD from Debian's libwebrtc-audio-processing (0.3), behind a
 * C interface for the VAD benchmark only (never linked into voxi-media). Two ways in:
 *
 *   BENCH_WEBRTC_APM   the library's public C++ API: an AudioProcessing instance with only
 *                      VoiceDetection enabled, fed two 10 ms frames per 20 ms (APM takes
 *                      10 ms frames only); the 20 ms frame is speech when either half is.
 *                      Likelihood kHigh/kModerate/kLow/kVeryLow = VAD modes 0..3.
 *   BENCH_WEBRTC_CORE  the VAD itself (WebRtcVad_Process, exported by the same library but
 *                      without a header in the package) on whole 20 ms frames: the same
 *                      detector without APM's per-frame copying, for a fair cost figure.
 *
 * Threads: one instance per thread.
 */
#ifndef WEBRTC_VAD_SHIM_H
#define WEBRTC_VAD_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { BENCH_WEBRTC_APM = 0, BENCH_WEBRTC_CORE } bench_webrtc_kind_t;

typedef struct bench_webrtc_vad bench_webrtc_vad_t;

/* mode: 0..3 (3 = most aggressive). Returns NULL when the library refuses. Owned by the
 * caller; free with bench_webrtc_vad_destroy. */
bench_webrtc_vad_t *bench_webrtc_vad_create(bench_webrtc_kind_t kind, int mode);

/* One 20 ms frame, 320 samples at 16 kHz (borrowed). Returns 1 speech, 0 not, -1 error. */
int bench_webrtc_vad_process(bench_webrtc_vad_t *vad, const int16_t *pcm16k);

void bench_webrtc_vad_destroy(bench_webrtc_vad_t *vad);

#ifdef __cplusplus
}
#endif

#endif
