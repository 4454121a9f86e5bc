/*
 * TTS engine "flite": voices kal (8 kHz) and slt (16 kHz), built in; "" picks kal for an
 * 8 kHz caller and slt otherwise. Each text is synthesised in a uv_queue_work job (flite's
 * voices are shared, so one synthesis at a time, under a mutex), resampled to the caller's
 * rate with speexdsp when the voice's rate differs, and sent as "audio" events of at most
 * 100 ms, then "tts_done". Texts queue per session (bounded); cancel drops the queue and
 * the result of the synthesis in flight.
 */
#include <flite/flite.h>
#include <pthread.h>
#include <speex/speex_resampler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "pv_session.h"

cst_voice *register_cmu_us_kal(const char *voxdir);
cst_voice *register_cmu_us_slt(const char *voxdir);

#define TEXT_MAX_BYTES 4096
#define QUEUE_MAX 32

static pthread_mutex_t flite_mutex = PTHREAD_MUTEX_INITIALIZER;
static cst_voice *voice_kal, *voice_slt;

void
pv_tts_flite_global_init(void)
{
    if (voice_kal)
        return;
    flite_init();
    voice_kal = register_cmu_us_kal(NULL);
    voice_slt = register_cmu_us_slt(NULL);
}

typedef struct tts_job tts_job_t;

typedef struct {
    pv_session_t *s;
    cst_voice *voice;
    uint32_t rate;
    float speed;
    char *queue[QUEUE_MAX];
    size_t qhead, qlen;
    tts_job_t *job; /* in flight */
    uint64_t generation;
} flite_t;

struct tts_job {
    uv_work_t req;
    pv_session_t *s;
    cst_voice *voice;
    float speed;
    uint32_t rate;
    uint64_t generation;
    char *text;
    int16_t *pcm;
    size_t samples;
};

static lc_status_t
tts_open(pv_session_t *s, const Voxi__V1__ProviderOpen *open, char *err, size_t err_size)
{
    const Voxi__V1__TtsConfig *c = open->tts;
    uint32_t rate = c && c->sample_rate ? c->sample_rate : 16000;
    if (rate < 8000 || rate > 48000) {
        snprintf(err, err_size, "tts.sample_rate must be within 8000..48000");
        return LC_ERR_INVALID;
    }
    float speed = c && c->speed > 0 ? c->speed : 1.0f;
    if (speed < 0.25f || speed > 4.0f) {
        snprintf(err, err_size, "tts.speed must be within 0.25..4");
        return LC_ERR_INVALID;
    }
    const char *voice = c ? c->voice : "";
    cst_voice *v;
    if (voice[0] == '\0')
        v = rate <= 8000 ? voice_kal : voice_slt;
    else if (strcmp(voice, "kal") == 0)
        v = voice_kal;
    else if (strcmp(voice, "slt") == 0)
        v = voice_slt;
    else {
        snprintf(err, err_size, "unknown flite voice \"%.32s\" (kal, slt)", voice);
        return LC_ERR_INVALID;
    }
    if (v == NULL) {
        snprintf(err, err_size, "flite voices not loaded");
        return LC_ERR_UNAVAILABLE;
    }
    flite_t *f = LC_NEW(flite_t);
    f->s = s;
    f->voice = v;
    f->rate = rate;
    f->speed = speed;
    s->engine_state = f;
    return LC_OK;
}

static void
job_work(uv_work_t *req)
{
    tts_job_t *j = req->data;
    pthread_mutex_lock(&flite_mutex);
    feat_set_float(j->voice->features, "duration_stretch", 1.0f / j->speed);
    cst_wave *w = flite_text_to_wave(j->text, j->voice);
    pthread_mutex_unlock(&flite_mutex);
    if (w == NULL || w->num_samples <= 0) {
        if (w)
            delete_wave(w);
        return;
    }
    uint32_t in_rate = (uint32_t) w->sample_rate;
    if (in_rate == j->rate) {
        j->samples = (size_t) w->num_samples;
        j->pcm = lc_malloc(j->samples * sizeof(int16_t));
        memcpy(j->pcm, w->samples, j->samples * sizeof(int16_t));
    } else {
        int err = 0;
        SpeexResamplerState *rs = speex_resampler_init(1, in_rate, j->rate, 5, &err);
        if (rs == NULL) {
            delete_wave(w);
            return;
        }
        spx_uint32_t in_len = (spx_uint32_t) w->num_samples;
        spx_uint32_t out_len = (spx_uint32_t) ((uint64_t) in_len * j->rate / in_rate + 64);
        j->pcm = lc_malloc(out_len * sizeof(int16_t));
        speex_resampler_skip_zeros(rs);
        speex_resampler_process_int(rs, 0, w->samples, &in_len, j->pcm, &out_len);
        j->samples = out_len;
        speex_resampler_destroy(rs);
    }
    delete_wave(w);
}

static void start_next(flite_t *f);

static void
job_after(uv_work_t *req, int status)
{
    (void) status;
    tts_job_t *j = req->data;
    pv_session_t *s = j->s;
    flite_t *f = s->engine_state;
    if (f && f->job == j)
        f->job = NULL;
    if (!pv_session_ended(s) && f && j->generation == f->generation) {
        size_t chunk = j->rate / 10;
        for (size_t off = 0; off < j->samples; off += chunk) {
            size_t n = j->samples - off < chunk ? j->samples - off : chunk;
            Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
            ev.type = "audio";
            ev.audio.data = (uint8_t *) (j->pcm + off);
            ev.audio.len = n * sizeof(int16_t);
            ev.sample_rate = j->rate;
            pv_session_emit(s, &ev);
        }
        pv_session_meter_tts(s, (uint32_t) strlen(j->text), (double) j->samples / j->rate);
        pv_session_emit_text(s, "tts_done", j->text);
        start_next(f);
    }
    free(j->text);
    free(j->pcm);
    free(j);
    pv_session_unref(s);
}

static void
start_next(flite_t *f)
{
    pv_session_t *s = f->s;
    if (f->job || pv_session_ended(s))
        return;
    if (f->qlen == 0) {
        if (s->closing)
            pv_session_done(s, NULL);
        return;
    }
    tts_job_t *j = LC_NEW(tts_job_t);
    j->req.data = j;
    j->s = s;
    j->voice = f->voice;
    j->speed = f->speed;
    j->rate = f->rate;
    j->generation = f->generation;
    j->text = f->queue[f->qhead];
    f->queue[f->qhead] = NULL;
    f->qhead = (f->qhead + 1) % QUEUE_MAX;
    f->qlen--;
    pv_session_ref(s);
    f->job = j;
    if (uv_queue_work(s->ps->loop, &j->req, job_work, job_after) != 0) {
        f->job = NULL;
        free(j->text);
        free(j);
        pv_session_unref(s);
        pv_session_fail(s, LC_ERR_INTERNAL, "could not queue the synthesis");
    }
}

static void
tts_input(pv_session_t *s, const Voxi__V1__ProviderInput *in)
{
    flite_t *f = s->engine_state;
    if (in->text[0] == '\0')
        return;
    if (strlen(in->text) > TEXT_MAX_BYTES) {
        pv_session_fail(s, LC_ERR_TOO_LARGE, "text longer than 4096 bytes");
        return;
    }
    if (f->qlen >= QUEUE_MAX) {
        pv_session_fail(s, LC_ERR_FULL, "more than 32 texts queued");
        return;
    }
    f->queue[(f->qhead + f->qlen) % QUEUE_MAX] = lc_strdup(in->text);
    f->qlen++;
    start_next(f);
}

static void
tts_close(pv_session_t *s)
{
    start_next(s->engine_state);
}

static void
drop_queue(flite_t *f)
{
    while (f->qlen > 0) {
        free(f->queue[f->qhead]);
        f->queue[f->qhead] = NULL;
        f->qhead = (f->qhead + 1) % QUEUE_MAX;
        f->qlen--;
    }
}

static void
tts_cancel(pv_session_t *s)
{
    flite_t *f = s->engine_state;
    drop_queue(f);
    f->generation++;
}

static void
tts_destroy(pv_session_t *s)
{
    flite_t *f = s->engine_state;
    if (f == NULL)
        return;
    drop_queue(f);
    free(f);
    s->engine_state = NULL;
}

const pv_engine_t pv_engine_tts_flite = {
    .name = "flite",
    .kind = PV_KIND_TTS,
    .open = tts_open,
    .input = tts_input,
    .close = tts_close,
    .cancel = tts_cancel,
    .destroy = tts_destroy,
};
