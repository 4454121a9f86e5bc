/*
 * The "test" engines (VOXI_PROVIDERS_TEST_ENGINES=true): instant and deterministic, for
 * benchmarks and the agent runtime's tests.
 *
 *   stt: meters the audio; on flush emits "final" with the first configured phrase, or
 *        "test" when there is none, spanning the audio since the previous final.
 *   llm: "You said: <last user message>." as two deltas; when the last user message contains
 *        "tool:<name>", a tool call of <name> with arguments {} instead.
 *   tts: a 440 Hz tone of 20 ms per character (at most 10 s per text) at the requested rate,
 *        in 100 ms chunks, then "tts_done".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "pv_session.h"

#define TONE_MS_PER_CHAR 20
#define TONE_MAX_MS 10000

typedef struct {
    char *phrase;
    uint32_t rate;
    uint64_t samples;   /* since the session's first audio */
    uint64_t utt_start; /* samples at the previous final */
} test_stt_t;

static lc_status_t
stt_open(pv_session_t *s, const Voxi__V1__ProviderOpen *open, char *err, size_t err_size)
{
    (void) err;
    (void) err_size;
    test_stt_t *t = LC_NEW(test_stt_t);
    const Voxi__V1__SttConfig *c = open->stt;
    t->phrase = lc_strdup(c && c->n_phrases > 0 ? c->phrases[0] : "test");
    t->rate = c && c->sample_rate ? c->sample_rate : 16000;
    s->engine_state = t;
    return LC_OK;
}

static void
stt_final(pv_session_t *s)
{
    test_stt_t *t = s->engine_state;
    Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
    ev.type = "final";
    ev.text = t->phrase;
    ev.utterance_start_ms = (uint32_t) (t->utt_start * 1000 / t->rate);
    ev.utterance_end_ms = (uint32_t) (t->samples * 1000 / t->rate);
    pv_session_emit(s, &ev);
    t->utt_start = t->samples;
}

static void
stt_input(pv_session_t *s, const Voxi__V1__ProviderInput *in)
{
    test_stt_t *t = s->engine_state;
    if (in->audio.len > 0) {
        t->samples += in->audio.len / 2;
        pv_session_meter_stt(s, (double) (in->audio.len / 2) / t->rate);
    }
    if (in->flush)
        stt_final(s);
}

static void
stt_close(pv_session_t *s)
{
    test_stt_t *t = s->engine_state;
    if (t->samples > t->utt_start)
        stt_final(s);
    pv_session_done(s, NULL);
}

static void
stt_destroy(pv_session_t *s)
{
    test_stt_t *t = s->engine_state;
    if (t) {
        free(t->phrase);
        free(t);
    }
}

const pv_engine_t pv_engine_stt_test = {
    .name = "test",
    .kind = PV_KIND_STT,
    .open = stt_open,
    .input = stt_input,
    .close = stt_close,
    .destroy = stt_destroy,
};

/* ---- llm ---- */

static lc_status_t
llm_open(pv_session_t *s, const Voxi__V1__ProviderOpen *open, char *err, size_t err_size)
{
    if (open->llm == NULL || open->llm->n_messages == 0) {
        snprintf(err, err_size, "llm.messages is empty");
        return LC_ERR_INVALID;
    }
    const char *last = "";
    uint32_t words = 0;
    for (size_t i = 0; i < open->llm->n_messages; i++) {
        const Voxi__V1__LlmMessage *m = open->llm->messages[i];
        if (strcmp(m->role, "user") == 0)
            last = m->content;
        for (const char *p = m->content; *p; p++)
            if (*p != ' ' && (p == m->content || p[-1] == ' '))
                words++;
    }
    s->engine_state = lc_strdup(last);
    s->usage.llm_prompt_tokens = 0;
    pv_session_meter_llm(s, words, 0);
    return LC_OK;
}

static void
llm_start(pv_session_t *s)
{
    const char *last = s->engine_state;
    const char *tool = strstr(last, "tool:");
    if (tool) {
        char name[65];
        size_t n = 0;
        for (const char *p = tool + 5; *p && *p != ' ' && n < sizeof(name) - 1; p++)
            name[n++] = *p;
        name[n] = '\0';
        Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
        Voxi__V1__LlmToolCall tc = VOXI__V1__LLM_TOOL_CALL__INIT;
        tc.id = "call_test_0";
        tc.name = name;
        tc.arguments_json = "{}";
        ev.tool_call = &tc;
        ev.type = "tool_call_delta";
        pv_session_emit(s, &ev);
        ev.type = "tool_call";
        pv_session_emit(s, &ev);
        pv_session_meter_llm(s, 0, 1);
        pv_session_done(s, "tool_calls");
        return;
    }
    pv_session_emit_text(s, "delta", "You said: ");
    size_t n = strlen(last) + 2;
    char *text = lc_malloc(n);
    snprintf(text, n, "%s.", last);
    pv_session_emit_text(s, "delta", text);
    free(text);
    pv_session_meter_llm(s, 0, 2);
    pv_session_done(s, "stop");
}

static void
llm_input(pv_session_t *s, const Voxi__V1__ProviderInput *in)
{
    (void) s;
    (void) in;
}

static void
llm_close(pv_session_t *s)
{
    (void) s;
}

static void
llm_destroy(pv_session_t *s)
{
    free(s->engine_state);
}

const pv_engine_t pv_engine_llm_test = {
    .name = "test",
    .kind = PV_KIND_LLM,
    .idle_exempt = true,
    .open = llm_open,
    .start = llm_start,
    .input = llm_input,
    .close = llm_close,
    .destroy = llm_destroy,
};

/* ---- tts ---- */

typedef struct {
    uint32_t rate;
} test_tts_t;

static lc_status_t
tts_open(pv_session_t *s, const Voxi__V1__ProviderOpen *open, char *err, size_t err_size)
{
    uint32_t rate = open->tts && open->tts->sample_rate ? open->tts->sample_rate : 16000;
    if (rate < 8000 || rate > 48000) {
        snprintf(err, err_size, "tts.sample_rate must be within 8000..48000");
        return LC_ERR_INVALID;
    }
    test_tts_t *t = LC_NEW(test_tts_t);
    t->rate = rate;
    s->engine_state = t;
    return LC_OK;
}

static void
tts_input(pv_session_t *s, const Voxi__V1__ProviderInput *in)
{
    test_tts_t *t = s->engine_state;
    if (in->text[0] == '\0')
        return;
    size_t chars = strlen(in->text);
    uint64_t ms = (uint64_t) chars * TONE_MS_PER_CHAR;
    if (ms > TONE_MAX_MS)
        ms = TONE_MAX_MS;
    size_t total = (size_t) (ms * t->rate / 1000);
    size_t chunk = t->rate / 10;
    int16_t *pcm = lc_malloc(chunk * sizeof(int16_t));
    for (size_t done = 0; done < total;) {
        size_t n = total - done < chunk ? total - done : chunk;
        for (size_t i = 0; i < n; i++)
            pcm[i] = (int16_t) (8000.0 * sin(2.0 * M_PI * 440.0 * (double) (done + i) / t->rate));
        Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
        ev.type = "audio";
        ev.audio.data = (uint8_t *) pcm;
        ev.audio.len = n * sizeof(int16_t);
        ev.sample_rate = t->rate;
        pv_session_emit(s, &ev);
        done += n;
    }
    free(pcm);
    pv_session_meter_tts(s, (uint32_t) chars, (double) total / t->rate);
    pv_session_emit_text(s, "tts_done", in->text);
}

static void
tts_close(pv_session_t *s)
{
    pv_session_done(s, NULL);
}

static void
tts_destroy(pv_session_t *s)
{
    free(s->engine_state);
}

const pv_engine_t pv_engine_tts_test = {
    .name = "test",
    .kind = PV_KIND_TTS,
    .open = tts_open,
    .input = tts_input,
    .close = tts_close,
    .destroy = tts_destroy,
};
