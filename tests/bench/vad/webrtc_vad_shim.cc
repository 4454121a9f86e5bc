// C shim around the WebRTC VAD of libwebrtc-audio-processing 0.3; see webrtc_vad_shim.h.
#include "webrtc_vad_shim.h"

#include <cstddef>
#include <cstring>
#include <new>

#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

extern "C" {
// common_audio/vad/include/webrtc_vad.h of the WebRTC revision the package is cut from; the
// library exports these symbols but the package ships no header for them.
typedef struct WebRtcVadInst VadInst;
VadInst *WebRtcVad_Create(void);
void WebRtcVad_Free(VadInst *handle);
int WebRtcVad_Init(VadInst *handle);
int WebRtcVad_set_mode(VadInst *handle, int mode);
int WebRtcVad_Process(VadInst *handle, int fs, const int16_t *audio_frame, size_t frame_length);
}

namespace
{
const int kRateHz = 16000;
const size_t kFrame20ms = 320;
const size_t kFrame10ms = 160;
} // namespace

struct bench_webrtc_vad {
    bench_webrtc_kind_t kind;
    webrtc::AudioProcessing *apm;
    webrtc::AudioFrame *frame;
    VadInst *core;
};

extern "C" bench_webrtc_vad_t *
bench_webrtc_vad_create(bench_webrtc_kind_t kind, int mode)
{
    if (mode < 0 || mode > 3)
        return nullptr;
    bench_webrtc_vad_t *v = new (std::nothrow) bench_webrtc_vad_t();
    if (!v)
        return nullptr;
    v->kind = kind;
    if (kind == BENCH_WEBRTC_CORE) {
        v->core = WebRtcVad_Create();
        if (!v->core || WebRtcVad_Init(v->core) != 0 || WebRtcVad_set_mode(v->core, mode) != 0) {
            bench_webrtc_vad_destroy(v);
            return nullptr;
        }
        return v;
    }
    webrtc::Config config;
    config.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
    v->apm = webrtc::AudioProcessing::Create(config);
    v->frame = new webrtc::AudioFrame();
    static const webrtc::VoiceDetection::Likelihood likelihood[4] = {
        webrtc::VoiceDetection::kHighLikelihood, webrtc::VoiceDetection::kModerateLikelihood,
        webrtc::VoiceDetection::kLowLikelihood, webrtc::VoiceDetection::kVeryLowLikelihood};
    if (!v->apm ||
        v->apm->Initialize(kRateHz, kRateHz, kRateHz, webrtc::AudioProcessing::kMono,
                           webrtc::AudioProcessing::kMono, webrtc::AudioProcessing::kMono) != 0 ||
        v->apm->voice_detection()->Enable(true) != 0 ||
        v->apm->voice_detection()->set_likelihood(likelihood[mode]) != 0 ||
        v->apm->voice_detection()->set_frame_size_ms(10) != 0) {
        bench_webrtc_vad_destroy(v);
        return nullptr;
    }
    v->frame->sample_rate_hz_ = kRateHz;
    v->frame->num_channels_ = 1;
    v->frame->samples_per_channel_ = kFrame10ms;
    return v;
}

extern "C" int
bench_webrtc_vad_process(bench_webrtc_vad_t *v, const int16_t *pcm16k)
{
    if (v->kind == BENCH_WEBRTC_CORE)
        return WebRtcVad_Process(v->core, kRateHz, pcm16k, kFrame20ms);
    int speech = 0;
    for (size_t half = 0; half < 2; half++) {
        // ProcessStream rewrites the frame (it is the capture path): refill it every time.
        std::memcpy(v->frame->data_, pcm16k + half * kFrame10ms, kFrame10ms * sizeof(int16_t));
        v->frame->samples_per_channel_ = kFrame10ms;
        if (v->apm->ProcessStream(v->frame) != webrtc::AudioProcessing::kNoError)
            return -1;
        speech |= v->apm->voice_detection()->stream_has_voice() ? 1 : 0;
    }
    return speech;
}

extern "C" void
bench_webrtc_vad_destroy(bench_webrtc_vad_t *v)
{
    if (!v)
        return;
    if (v->core)
        WebRtcVad_Free(v->core);
    delete v->frame;
    delete v->apm;
    delete v;
}
