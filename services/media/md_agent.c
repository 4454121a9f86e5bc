#include "md_agent.h"
#include "md_agent_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "md_agent_tool.h"
#include "md_events.h"
#include "md_flow.h"
#include "md_greeting.h"
#include "md_llm_loop.h"
#include "md_prov.h"
#include "md_turn.h"
#include "md_vad.h"

#define FRAME MD_PLAYOUT_FRAME_SAMPLES
#define PREROLL_FRAMES 15                  /* 300 ms of audio before the onset go to STT */
#define SPEECH_MAX_SAMPLES (16000u * 120u) /* an agent turn's audio kept for resuming */
#define TEXT_MAX 4096
#define PHRASES_MAX 64
#define LIST_MAX 64
#define REMINDER_TEXT "Are you still there?"
#define GREETING_CACHE_DEFAULT 256
#define CONFIRM_MS 300 /* speech past min_speech_ms that confirms a barge-in without words */

static md_greeting_cache_t *greetings; /* one worker per process (md_worker_run.c) */
static size_t greetings_max = GREETING_CACHE_DEFAULT;

struct md_agent {
    md_worker_t *w;
    md_call_t *call;
    md_playout_stream_t *stream;
    char call_id[48], org_id[72], agent_id[72];
    int32_t version;
    int64_t answered_ms;
    json_t *doc;
    json_t *vars; /* the call's variables (handed to the flow at start) */

    /* settings (strings borrowed from doc) */
    int silence_ms, max_wait_ms, min_speech_ms, min_words;
    bool interruptions;
    const char *ignore[LIST_MAX + 1];
    const char *end_phrases[LIST_MAX + 1];
    const char *keywords[LIST_MAX + 1];
    int silence_timeout_s, max_duration_s;
    const char *voice, *tts_engine, *stt_engine, *language, *first_message;
    double speed;

    md_flow_t *flow;
    md_llm_loop_t *llm;
    md_vad_t *vad;
    md_turn_t turn;

    /* the caller's audio and words */
    int16_t preroll[PREROLL_FRAMES][FRAME];
    int preroll_n, preroll_head;
    md_prov_session_t *stt;
    bool awaiting_final;
    int64_t final_deadline;
    int64_t caller_start_ms, caller_end_ms; /* of the utterance being transcribed */
    char partial[TEXT_MAX];

    /* listening (flow) */
    bool listening;
    int listen_timeout_ms;
    int64_t listen_deadline; /* 0 = not counting (the prompt still plays) */
    char *phrases[PHRASES_MAX + 1];

    /* speaking */
    md_prov_session_t *tts;
    int tts_pending; /* texts sent, not yet "tts_done" */
    int16_t *buf;    /* this turn's audio; buf[0..enq) handed to the playout */
    size_t len, cap, enq;
    bool speaking, paused;
    bool said_wanted;      /* the flow waits for the end of this speech */
    bool said_after_turn;  /* ... which was interrupted: tell it after the caller's turn */
    bool greeting_capture; /* buf[greeting_start..] becomes the cached greeting */
    size_t greeting_start;
    bool hangup_after_speech;

    /* the current agent turn */
    bool turn_open;
    char turn_text[TEXT_MAX];
    int64_t t_start, t_first_rtp, t_tts_first_audio, t_llm_first_token;
    int64_t t_caller_end, t_stt_final; /* of the caller turn it answers (0 = none) */
    int turn_index;

    int64_t last_activity_ms;
    bool reminded, over_time;

    /* usage */
    uint64_t stt_samples;
    uint32_t tts_chars, llm_prompt_tokens, llm_completion_tokens;

    /* deferred call control */
    uv_timer_t timer;
    const char *pending_hangup;
    char *pending_transfer;
    md_agent_tool_t *tool;
    bool destroyed;
};

/* ---- small helpers ---- */

static int64_t
rel(const md_agent_t *a, int64_t mono_ms)
{
    return mono_ms > 0 ? mono_ms - a->answered_ms : 0;
}

static int
get_int(const json_t *obj, const char *key, int def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int) json_integer_value(v) : def;
}

static const char *
get_str(const json_t *obj, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : def;
}

static void
get_list(const json_t *arr, const char **out)
{
    size_t n = 0, i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (n < LIST_MAX && json_is_string(v))
            out[n++] = json_string_value(v);
    }
    out[n] = NULL;
}

static const char *
org_of(const md_agent_t *a)
{
    if (a->org_id[0])
        return a->org_id;
    return a->w->cfg->default_org_id ? a->w->cfg->default_org_id : "org_default";
}

static void
publish(md_agent_t *a, const char *type, json_t *data)
{
    md_events_publish(a->w->events, org_of(a), type, data);
}

static void
append_text(char *dst, const char *text)
{
    size_t n = strlen(dst);
    if (n > 0 && n + 1 < TEXT_MAX)
        dst[n++] = ' ';
    snprintf(dst + n, TEXT_MAX - n, "%s", text);
}

static void
set_latency(json_t *lat, const char *key, const md_agent_t *a, int64_t mono)
{
    if (mono > 0)
        json_object_set_new(lat, key, json_integer(rel(a, mono)));
}

/* ---- deferred call control ---- */

static void
on_timer(uv_timer_t *t)
{
    md_agent_t *a = t->data;
    if (a->destroyed)
        return;
    if (a->pending_transfer) {
        char *to = a->pending_transfer;
        a->pending_transfer = NULL;
        lc_status_t st = md_call_transfer(a->call, to);
        free(to);
        if (st != LC_OK) {
            LC_WARN("agent", "transfer failed (%s): hanging up", lc_status_name(st));
            a->pending_hangup = "transfer_failed";
        }
    }
    if (a->pending_hangup) {
        /* the call ends and destroys us inside: nothing after this */
        md_call_hangup(a->call, a->pending_hangup);
    }
}

void
md_agent_hangup_later(md_agent_t *a, const char *reason)
{
    if (a->pending_hangup == NULL)
        a->pending_hangup = reason;
    uv_timer_start(&a->timer, on_timer, 0, 0);
}

static void
transfer_later(md_agent_t *a, const char *to)
{
    free(a->pending_transfer);
    a->pending_transfer = lc_strdup(to);
    uv_timer_start(&a->timer, on_timer, 0, 0);
}

/* ---- transcripts ---- */

static void
publish_turn(md_agent_t *a, const char *role, const char *text, int64_t start, int64_t end,
             bool interrupted, json_t *latency)
{
    json_t *turn = json_pack("{s:i, s:s, s:s, s:I, s:I, s:b}", "index", a->turn_index++, "role",
                             role, "text", text, "start_ms", (json_int_t) rel(a, start), "end_ms",
                             (json_int_t) rel(a, end), "interrupted", interrupted);
    if (latency)
        json_object_set_new(turn, "latency_ms", latency);
    publish(
        a, "call.transcript",
        json_pack("{s:s, s:s, s:o}", "call_id", a->call_id, "agent_id", a->agent_id, "turn", turn));
}

static void
close_agent_turn(md_agent_t *a, int64_t now, bool interrupted)
{
    if (!a->turn_open)
        return;
    a->turn_open = false;
    json_t *lat = json_object();
    set_latency(lat, "caller_speech_end", a, a->t_caller_end);
    set_latency(lat, "stt_final", a, a->t_stt_final);
    set_latency(lat, "llm_first_token", a, a->t_llm_first_token);
    set_latency(lat, "tts_first_audio", a, a->t_tts_first_audio);
    set_latency(lat, "first_rtp", a, a->t_first_rtp);
    int64_t start = a->t_first_rtp > 0 ? a->t_first_rtp : a->t_start;
    publish_turn(a, "agent", a->turn_text, start, now, interrupted, lat);
    a->t_caller_end = a->t_stt_final = 0;
    LC_INFO("agent", "agent turn%s: \"%.80s\"", interrupted ? " (interrupted)" : "", a->turn_text);
}

static void
open_agent_turn(md_agent_t *a, int64_t now)
{
    if (a->turn_open)
        return;
    a->turn_open = true;
    a->turn_text[0] = '\0';
    a->t_start = now;
    a->t_first_rtp = a->t_tts_first_audio = a->t_llm_first_token = 0;
}

/* ---- speaking ---- */

static void
append_audio(md_agent_t *a, const int16_t *pcm, size_t n)
{
    if (a->len + n > SPEECH_MAX_SAMPLES && !a->greeting_capture) {
        /* drop what has been played already */
        size_t played = a->enq - md_playout_queued_samples(a->stream);
        memmove(a->buf, a->buf + played, (a->len - played) * sizeof(int16_t));
        a->len -= played;
        a->enq -= played;
    }
    if (a->len + n > SPEECH_MAX_SAMPLES) {
        LC_LOG_RL(LC_LOG_WARN, "agent", 1, "agent speech over %u samples: dropped",
                  SPEECH_MAX_SAMPLES);
        return;
    }
    if (a->len + n > a->cap) {
        a->cap = (a->len + n) * 2;
        a->buf = lc_realloc(a->buf, a->cap * sizeof(int16_t));
    }
    memcpy(a->buf + a->len, pcm, n * sizeof(int16_t));
    a->len += n;
    if (!a->paused) {
        md_playout_enqueue_copy(a->stream, pcm, n);
        a->enq = a->len;
    }
}

static void on_tts_event(void *arg, md_prov_session_t *s, const Voxi__V1__ProviderEvent *ev);

static void
ensure_tts(md_agent_t *a)
{
    if (a->tts)
        return;
    Voxi__V1__ProviderOpen open = VOXI__V1__PROVIDER_OPEN__INIT;
    Voxi__V1__TtsConfig tts = VOXI__V1__TTS_CONFIG__INIT;
    open.kind = "tts";
    open.engine = (char *) a->tts_engine;
    open.call_id = a->call_id;
    tts.voice = (char *) a->voice;
    tts.sample_rate = 16000;
    tts.speed = (float) a->speed;
    open.tts = &tts;
    md_prov_open(a->w, org_of(a), &open, on_tts_event, a, &a->tts);
}

void
md_agent_say(md_agent_t *a, const char *text)
{
    if (text == NULL || text[0] == '\0')
        return;
    int64_t now = lc_time_mono_ms();
    open_agent_turn(a, now);
    append_text(a->turn_text, text);
    ensure_tts(a);
    md_prov_send_text(a->tts, text, true);
    a->tts_chars += (uint32_t) strlen(text);
    a->tts_pending++;
    a->speaking = true;
    a->last_activity_ms = now;
    for (size_t i = 0; a->end_phrases[i]; i++)
        if (md_flow_keyword_match(text, a->end_phrases[i]))
            a->hangup_after_speech = true;
}

static void
stop_tts(md_agent_t *a)
{
    md_prov_destroy(a->tts);
    a->tts = NULL;
    a->tts_pending = 0;
}

static void tts_event(md_agent_t *a, const Voxi__V1__ProviderEvent *ev);

static void
on_tts_event(void *arg, md_prov_session_t *s, const Voxi__V1__ProviderEvent *ev)
{
    md_agent_t *a = arg;
    (void) s;
    lc_log_context_set(NULL, a->call_id);
    tts_event(a, ev);
    lc_log_context_set(NULL, "");
}

static void
tts_event(md_agent_t *a, const Voxi__V1__ProviderEvent *ev)
{
    if (strcmp(ev->type, "audio") == 0) {
        if (ev->sample_rate != 0 && ev->sample_rate != 16000) {
            LC_LOG_RL(LC_LOG_WARN, "agent", 1, "TTS audio at %u Hz: dropped", ev->sample_rate);
            return;
        }
        if (a->turn_open && a->t_tts_first_audio == 0)
            a->t_tts_first_audio = lc_time_mono_ms();
        append_audio(a, (const int16_t *) ev->audio.data, ev->audio.len / sizeof(int16_t));
    } else if (strcmp(ev->type, "tts_done") == 0) {
        if (a->tts_pending > 0)
            a->tts_pending--;
        if (a->greeting_capture) {
            a->greeting_capture = false;
            if (greetings && a->len > a->greeting_start)
                md_greeting_put(greetings, a->agent_id, a->version, a->first_message,
                                a->buf + a->greeting_start, a->len - a->greeting_start);
        }
    } else if (strcmp(ev->type, "error") == 0 || strcmp(ev->type, "done") == 0) {
        if (strcmp(ev->type, "error") == 0)
            LC_WARN("agent", "TTS: %s (%s)", ev->error, ev->error_status);
        a->greeting_capture = false;
        stop_tts(a); /* the next say opens a new session */
    }
}

/* Holds the agent's audio (a barge-in that may turn out to be a backchannel). */
static void
pause_speech(md_agent_t *a, int64_t now)
{
    size_t queued = md_playout_queued_samples(a->stream);
    md_playout_flush(a->stream);
    a->enq -= queued < a->enq ? queued : a->enq;
    a->paused = true;
    LC_INFO("agent", "caller speech at %lld ms: agent audio held", (long long) rel(a, now));
}

static void
resume_speech(md_agent_t *a)
{
    if (!a->paused)
        return;
    a->paused = false;
    if (a->len > a->enq)
        md_playout_enqueue_copy(a->stream, a->buf + a->enq, a->len - a->enq);
    a->enq = a->len;
    LC_INFO("agent", "no words in the interruption: agent audio resumed");
}

static void
interrupt(md_agent_t *a, int64_t now)
{
    if (!a->speaking)
        return;
    if (!a->paused)
        md_playout_flush(a->stream);
    a->paused = false;
    a->len = a->enq = 0;
    a->speaking = false;
    a->greeting_capture = false;
    a->hangup_after_speech = false;
    stop_tts(a);
    int index = a->turn_index;
    char spoken[TEXT_MAX];
    snprintf(spoken, sizeof(spoken), "%s", a->turn_text);
    close_agent_turn(a, now, true);
    publish(a, "call.interrupted",
            json_pack("{s:s, s:i, s:I}", "call_id", a->call_id, "turn_index", index, "at_ms",
                      (json_int_t) rel(a, now)));
    LC_INFO("agent", "interrupted by the caller at %lld ms", (long long) rel(a, now));
    if (a->llm)
        md_llm_loop_interrupt(a->llm, spoken);
    if (a->said_wanted) {
        a->said_wanted = false;
        if (a->listening)
            a->listen_deadline = 0; /* counts again after the caller's turn */
        else
            a->said_after_turn = true;
    }
}

/* The agent's speech has all been played. */
static void
speech_finished(md_agent_t *a, int64_t now)
{
    a->speaking = false;
    a->len = a->enq = 0;
    if (a->tts && !(a->llm && md_llm_loop_busy(a->llm))) {
        /* sessions are a bounded resource of voxi-providers: none held while silent */
        md_prov_close(a->tts);
        stop_tts(a);
    }
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "%s", a->turn_text);
    close_agent_turn(a, now, false);
    if (a->hangup_after_speech) {
        md_agent_hangup_later(a, "end_call_phrase");
        return;
    }
    if (a->llm)
        md_llm_loop_on_spoken(a->llm, text);
    if (a->listening)
        a->listen_deadline = now + a->listen_timeout_ms;
    if (a->said_wanted) {
        a->said_wanted = false;
        if (a->flow)
            md_flow_on_said(a->flow);
    }
}

/* ---- the caller's words ---- */

static void on_stt_event(void *arg, md_prov_session_t *s, const Voxi__V1__ProviderEvent *ev);

static void
open_stt(md_agent_t *a)
{
    Voxi__V1__ProviderOpen open = VOXI__V1__PROVIDER_OPEN__INIT;
    Voxi__V1__SttConfig stt = VOXI__V1__STT_CONFIG__INIT;
    const char *phrases[PHRASES_MAX * 3 + 1];
    size_t n = 0;
    /* the agent's own vocabulary first (an engine may favour the first phrases); the
     * backchannels only while the agent speaks (they decide a barge-in then, and would
     * only compete with the menu's words otherwise) */
    const char *const *lists[3] = {a->keywords,
                                   a->listening ? (const char *const *) a->phrases : NULL,
                                   a->speaking ? a->ignore : NULL};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; lists[l] && lists[l][i] && n < 3 * PHRASES_MAX; i++) {
            bool dup = false;
            for (size_t k = 0; k < n && !dup; k++)
                dup = strcasecmp(phrases[k], lists[l][i]) == 0;
            if (!dup)
                phrases[n++] = lists[l][i];
        }
    open.kind = "stt";
    open.engine = (char *) a->stt_engine;
    open.call_id = a->call_id;
    stt.language = (char *) a->language;
    stt.phrases = (char **) phrases;
    stt.n_phrases = n;
    stt.sample_rate = 16000;
    stt.partials = true;
    open.stt = &stt;
    a->partial[0] = '\0';
    md_prov_open(a->w, org_of(a), &open, on_stt_event, a, &a->stt);
    for (int i = 0; i < a->preroll_n; i++) {
        int at = (a->preroll_head - a->preroll_n + i + PREROLL_FRAMES) % PREROLL_FRAMES;
        md_prov_send_audio(a->stt, a->preroll[at], FRAME);
        a->stt_samples += FRAME;
    }
}

static void
trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char) s[n - 1]))
        s[--n] = '\0';
    size_t k = 0;
    while (s[k] && isspace((unsigned char) s[k]))
        k++;
    memmove(s, s + k, n - k + 1);
}

static bool
words_qualify(const md_agent_t *a, const char *text)
{
    int words = md_turn_count_words(text, a->ignore);
    int need = a->min_words > 0 ? a->min_words : 1;
    return words >= need;
}

/* The caller's utterance is transcribed (text may be empty: noise). */
static void
caller_final(md_agent_t *a, const char *raw, int64_t now)
{
    char text[TEXT_MAX];
    snprintf(text, sizeof(text), "%s", raw ? raw : "");
    trim(text);
    md_prov_destroy(a->stt);
    a->stt = NULL;
    if (!a->awaiting_final) /* the recogniser ended the utterance before our endpointing */
        a->caller_end_ms = a->turn.speech_end_ms;
    a->awaiting_final = false;
    int words = md_turn_count_words(text, a->ignore);
    if (text[0])
        publish_turn(a, "caller", text, a->caller_start_ms, a->caller_end_ms, false, NULL);
    LC_INFO("agent", "caller said \"%.80s\"", text);
    if (a->paused) {
        if (words_qualify(a, text))
            interrupt(a, now);
        else
            resume_speech(a);
    }
    if (words == 0) {
        /* noise or a backchannel: not a turn; a flow whose speech was cut goes on */
        if (a->said_after_turn && a->flow) {
            a->said_after_turn = false;
            md_flow_on_said(a->flow);
        }
        return;
    }
    a->last_activity_ms = now;
    a->reminded = false;
    a->t_caller_end = a->caller_end_ms;
    a->t_stt_final = now;
    if (a->flow) {
        if (a->said_after_turn) {
            a->said_after_turn = false;
            md_flow_on_said(a->flow);
        }
        if (md_flow_listening(a->flow) && a->listening) {
            if (a->speaking)
                interrupt(a, now);
            md_flow_on_input(a->flow, text, 0);
        }
    } else if (a->llm && !a->speaking) {
        md_llm_loop_on_user(a->llm, text);
    }
}

static void stt_event(md_agent_t *a, const Voxi__V1__ProviderEvent *ev);

static void
on_stt_event(void *arg, md_prov_session_t *s, const Voxi__V1__ProviderEvent *ev)
{
    md_agent_t *a = arg;
    (void) s;
    lc_log_context_set(NULL, a->call_id);
    stt_event(a, ev);
    lc_log_context_set(NULL, "");
}

static void
stt_event(md_agent_t *a, const Voxi__V1__ProviderEvent *ev)
{
    int64_t now = lc_time_mono_ms();
    if (strcmp(ev->type, "partial") == 0) {
        snprintf(a->partial, sizeof(a->partial), "%s", ev->text);
        if (a->paused && words_qualify(a, ev->text))
            interrupt(a, now);
        return;
    }
    if (strcmp(ev->type, "final") == 0) {
        caller_final(a, ev->text, now);
        return;
    }
    if (strcmp(ev->type, "error") == 0 || strcmp(ev->type, "done") == 0) {
        if (strcmp(ev->type, "error") == 0)
            LC_WARN("agent", "STT: %s (%s)", ev->error, ev->error_status);
        if (a->awaiting_final)
            caller_final(a, a->partial, now);
        else {
            md_prov_destroy(a->stt);
            a->stt = NULL;
        }
    }
}

/* ---- flow ops ---- */

static void
op_say(void *arg, const char *text)
{
    md_agent_t *a = arg;
    md_agent_say(a, text);
    a->said_wanted = true;
    if (!a->speaking) /* nothing to say: done at once, on the next frame */
        a->speaking = true;
}

static void
op_listen(void *arg, const char *const *phrases, int timeout_ms)
{
    md_agent_t *a = arg;
    for (size_t i = 0; a->phrases[i]; i++) {
        free(a->phrases[i]);
        a->phrases[i] = NULL;
    }
    for (size_t i = 0; i < PHRASES_MAX && phrases[i]; i++)
        a->phrases[i] = lc_strdup(phrases[i]);
    a->listening = true;
    a->listen_timeout_ms = timeout_ms;
    a->listen_deadline = a->speaking ? 0 : lc_time_mono_ms() + timeout_ms;
}

static void
op_stop_listening(void *arg)
{
    md_agent_t *a = arg;
    a->listening = false;
    a->listen_deadline = 0;
}

static void
op_hangup(void *arg, const char *reason)
{
    md_agent_hangup_later(arg, reason);
}

static void
op_transfer(void *arg, const char *to)
{
    transfer_later(arg, to);
}

static void
on_tool_result(void *arg, bool ok, const char *status, const char *result_json)
{
    md_agent_t *a = arg;
    a->tool = NULL;
    (void) status;
    lc_log_context_set(NULL, a->call_id);
    if (a->flow)
        md_flow_on_webhook(a->flow, ok, result_json);
    lc_log_context_set(NULL, "");
}

static void
op_webhook(void *arg, const char *url, const char *args_json, int timeout_ms)
{
    md_agent_t *a = arg;
    md_agent_tool_req_t req = {.org_id = org_of(a),
                               .call_id = a->call_id,
                               .agent_id = a->agent_id,
                               .url = url,
                               .function_name = "flow_webhook",
                               .arguments_json = args_json,
                               .timeout_ms = timeout_ms};
    md_agent_tool_cancel(a->tool);
    a->tool = NULL;
    if (md_agent_tool_invoke(a->w, &req, on_tool_result, a, &a->tool) != LC_OK) {
        LC_WARN("agent", "webhook node: voxi-webhooks unreachable");
        md_flow_on_webhook(a->flow, false, NULL);
    }
}

static void
op_entered(void *arg, const char *node_id, const char *type)
{
    (void) arg;
    LC_INFO("flow", "node %s (%s)", node_id, type);
}

/* ---- the frame path ---- */

static void frame(md_agent_t *a, int64_t now, const int16_t *caller, size_t samples, bool playing);

void
md_agent_on_frame(md_agent_t *a, int64_t now, const int16_t *caller, size_t samples, bool playing)
{
    if (a->destroyed || samples != FRAME)
        return;
    lc_log_context_set(NULL, a->call_id);
    frame(a, now, caller, samples, playing);
    lc_log_context_set(NULL, "");
}

static void
frame(md_agent_t *a, int64_t now, const int16_t *caller, size_t samples, bool playing)
{
    if (playing && a->turn_open && a->t_first_rtp == 0)
        a->t_first_rtp = now;
    if (a->speaking && !a->paused && a->tts_pending == 0 && a->enq == a->len &&
        md_playout_queued_samples(a->stream) == 0 && !(a->llm && md_llm_loop_busy(a->llm)))
        speech_finished(a, now);

    memcpy(a->preroll[a->preroll_head], caller, sizeof(a->preroll[0]));
    a->preroll_head = (a->preroll_head + 1) % PREROLL_FRAMES;
    if (a->preroll_n < PREROLL_FRAMES)
        a->preroll_n++;

    md_vad_result_t v;
    if (md_vad_process(a->vad, caller, samples, &v) != LC_OK)
        return;
    bool agent_audible = a->speaking && !a->paused;
    md_turn_event_t ev = md_turn_frame(&a->turn, &v, agent_audible, now);
    if (ev == MD_TURN_SPEECH_START) {
        a->caller_start_ms = a->turn.speech_start_ms;
        if (a->stt == NULL)
            open_stt(a); /* sends the pre-roll, this frame included */
    } else if (a->turn.in_speech || ev == MD_TURN_SPEECH_END) {
        if (a->stt && !a->awaiting_final) {
            md_prov_send_audio(a->stt, caller, samples);
            a->stt_samples += samples;
        }
    }
    if (ev == MD_TURN_BARGE_IN) {
        /* the audio stops now; whether it was an interruption, the words tell */
        pause_speech(a, now);
    } else if (ev == MD_TURN_SPEECH_END) {
        a->caller_end_ms = a->turn.speech_end_ms;
        if (a->stt) {
            md_prov_flush(a->stt);
            a->awaiting_final = true;
            a->final_deadline = now + a->max_wait_ms;
            ensure_tts(a); /* the answer will need it: open it while the words come */
        } else {
            caller_final(a, "", now); /* no recogniser (it failed or already answered) */
        }
    }
    if (a->turn.in_speech)
        a->last_activity_ms = now;
    /* without word rules, speech that goes on past the confirmation window is an
     * interruption whatever the recogniser will say (and without a recogniser, too) */
    if (a->paused && a->turn.in_speech && !a->ignore[0] && a->min_words == 0 &&
        a->turn.voiced_ms >= a->min_speech_ms + CONFIRM_MS)
        interrupt(a, now);

    if (a->awaiting_final && now >= a->final_deadline) {
        LC_WARN("agent", "no STT final within %d ms", a->max_wait_ms);
        caller_final(a, a->partial, now);
    }
    if (a->paused && !a->turn.in_speech && !a->awaiting_final && a->stt == NULL)
        resume_speech(a);
    if (a->listening && a->listen_deadline > 0 && now >= a->listen_deadline && !a->turn.in_speech &&
        !a->awaiting_final && !a->speaking) {
        a->listen_deadline = 0;
        if (a->flow)
            md_flow_on_timeout(a->flow);
    }
    if (a->speaking || (a->llm && md_llm_loop_busy(a->llm)) || a->tool || a->listening)
        a->last_activity_ms = now;
    if (a->silence_timeout_s > 0 && now - a->last_activity_ms >= a->silence_timeout_s * 1000LL) {
        a->last_activity_ms = now;
        if (!a->reminded) {
            a->reminded = true;
            md_agent_say(a, REMINDER_TEXT);
        } else {
            md_agent_hangup_later(a, "silence_timeout");
        }
    }
    if (!a->over_time && a->max_duration_s > 0 &&
        now - a->answered_ms >= a->max_duration_s * 1000LL) {
        a->over_time = true;
        LC_INFO("agent", "max_duration_s reached");
        md_agent_hangup_later(a, "max_duration");
    }
}

void
md_agent_on_dtmf(md_agent_t *a, char digit)
{
    if (a->destroyed)
        return;
    int64_t now = lc_time_mono_ms();
    a->last_activity_ms = now;
    a->reminded = false;
    if (a->flow == NULL)
        return;
    if (a->said_after_turn) {
        a->said_after_turn = false;
        md_flow_on_said(a->flow);
    }
    if (a->listening && md_flow_listening(a->flow)) {
        if (a->speaking)
            interrupt(a, now);
        a->t_caller_end = now;
        a->t_stt_final = 0;
        md_flow_on_input(a->flow, NULL, digit);
    }
}

/* ---- life ---- */

static json_t *
initial_variables(const md_agent_env_t *env)
{
    json_t *vars = env->agent->variables ? json_deep_copy(env->agent->variables) : json_object();
    char number[128] = "";
    const char *from = env->from ? env->from : "";
    const char *user = strchr(from, ':');
    user = user ? user + 1 : from;
    size_t n = strcspn(user, "@;>");
    if (n >= sizeof(number))
        n = sizeof(number) - 1;
    memcpy(number, user, n);
    number[n] = '\0';
    json_object_set_new(vars, "caller_number", json_string(number));
    json_object_set_new(vars, "call_id", json_string(env->call_id));
    return vars;
}

lc_status_t
md_agent_create(const md_agent_env_t *env, md_agent_t **out)
{
    *out = NULL;
    const md_call_agent_t *ag = env->agent;
    if (ag == NULL || ag->agent_json == NULL)
        return LC_ERR_INVALID;
    json_t *doc = json_loads(ag->agent_json, 0, NULL);
    const json_t *engine = json_object_get(doc, "response_engine");
    const char *type = json_string_value(json_object_get(engine, "type"));
    if (!json_is_object(doc) || type == NULL ||
        (strcmp(type, "flow") != 0 && strcmp(type, "llm") != 0 &&
         strcmp(type, "custom_llm") != 0)) {
        json_decref(doc);
        LC_WARN("agent", "the agent has no usable response_engine: echo demo instead");
        return LC_ERR_INVALID;
    }
    md_agent_t *a = LC_NEW(md_agent_t);
    a->w = env->w;
    a->call = env->call;
    a->stream = env->stream;
    snprintf(a->call_id, sizeof(a->call_id), "%s", env->call_id);
    snprintf(a->org_id, sizeof(a->org_id), "%s", ag->org_id);
    snprintf(a->agent_id, sizeof(a->agent_id), "%s", ag->agent_id);
    a->version = ag->agent_version;
    a->answered_ms = env->answered_mono_ms;
    a->doc = doc;

    const json_t *ep = json_object_get(doc, "endpointing");
    const json_t *in = json_object_get(doc, "interruptions");
    const json_t *voice = json_object_get(doc, "voice");
    const json_t *tr = json_object_get(doc, "transcriber");
    a->silence_ms = get_int(ep, "silence_ms", 500);
    a->max_wait_ms = get_int(ep, "max_wait_ms", 5000);
    a->min_speech_ms = get_int(in, "min_speech_ms", 200);
    a->min_words = get_int(in, "min_words", 0);
    a->interruptions = !json_is_false(json_object_get(in, "enabled"));
    get_list(json_object_get(in, "ignore_phrases"), a->ignore);
    get_list(json_object_get(doc, "end_call_phrases"), a->end_phrases);
    get_list(json_object_get(tr, "keywords"), a->keywords);
    a->silence_timeout_s = get_int(doc, "silence_timeout_s", 30);
    a->max_duration_s = get_int(doc, "max_duration_s", 1800);
    a->voice = get_str(voice, "voice_id", "kal");
    a->tts_engine = get_str(voice, "provider", "");
    const json_t *speed = json_object_get(voice, "speed");
    a->speed = json_is_number(speed) ? json_number_value(speed) : 1.0;
    a->stt_engine = get_str(tr, "provider", "");
    a->language = get_str(tr, "language", get_str(doc, "language", "en-US"));
    a->first_message = get_str(doc, "first_message", "");

    md_vad_opts_t vo;
    md_vad_opts_default(&vo);
    md_vad_create(&vo, &a->vad);
    md_turn_opts_t to = {.silence_ms = a->silence_ms,
                         .min_speech_ms = a->min_speech_ms,
                         .interruptions = a->interruptions};
    md_turn_init(&a->turn, &to);
    uv_timer_init(a->w->loop, &a->timer);
    uv_unref((uv_handle_t *) &a->timer);
    a->timer.data = a;
    a->last_activity_ms = lc_time_mono_ms();
    a->vars = initial_variables(env);

    lc_status_t st = LC_OK;
    if (strcmp(type, "flow") == 0) {
        md_flow_ops_t ops = {.say = op_say,
                             .listen = op_listen,
                             .stop_listening = op_stop_listening,
                             .hangup = op_hangup,
                             .transfer = op_transfer,
                             .webhook = op_webhook,
                             .entered = op_entered,
                             .arg = a};
        st = md_flow_create(engine, a->vars, &ops, &a->flow);
        a->vars = NULL; /* taken */
    } else {
        st = md_llm_loop_create(a, engine, &a->llm);
    }
    if (st != LC_OK) {
        LC_WARN("agent", "cannot run the response engine: %s", lc_status_name(st));
        md_agent_destroy(a);
        return st;
    }
    if (greetings == NULL)
        greetings = md_greeting_cache_create(greetings_max);
    *out = a;
    return LC_OK;
}

void
md_agent_start(md_agent_t *a)
{
    int64_t now = lc_time_mono_ms();
    const char *fm = a->first_message;
    if (fm[0] && strstr(fm, "{{") == NULL) {
        md_greeting_t *g = md_greeting_get(greetings, a->agent_id, a->version);
        if (g) {
            size_t n;
            const int16_t *pcm = md_greeting_pcm(g, &n);
            open_agent_turn(a, now);
            append_text(a->turn_text, fm);
            a->t_tts_first_audio = now;
            append_audio(a, pcm, n);
            md_greeting_unref(g);
            a->speaking = true;
            LC_INFO("agent", "greeting from the cache (%zu ms)", n / 16);
        } else {
            a->greeting_capture = true;
            a->greeting_start = a->len;
            md_agent_say(a, fm);
        }
    } else if (fm[0]) {
        char text[MD_FLOW_TEXT_MAX];
        md_flow_interpolate(fm, a->flow ? md_flow_variables(a->flow) : a->vars, text, sizeof(text));
        md_agent_say(a, text);
    }
    if (a->flow)
        md_flow_start(a->flow);
}

void
md_agent_usage(const md_agent_t *a, json_t *extra)
{
    json_object_set_new(
        extra, "usage",
        json_pack("{s:f, s:i, s:i, s:i}", "stt_seconds", (double) a->stt_samples / 16000.0,
                  "llm_prompt_tokens", (int) a->llm_prompt_tokens, "llm_completion_tokens",
                  (int) a->llm_completion_tokens, "tts_characters", (int) a->tts_chars));
}

static void
agent_free_cb(uv_handle_t *h)
{
    md_agent_t *a = h->data;
    json_decref(a->doc);
    free(a);
}

void
md_agent_destroy(md_agent_t *a)
{
    if (a == NULL || a->destroyed)
        return;
    a->destroyed = true;
    if (a->turn_open && a->speaking)
        close_agent_turn(a, lc_time_mono_ms(), true);
    md_prov_destroy(a->tts);
    md_prov_destroy(a->stt);
    md_agent_tool_cancel(a->tool);
    md_flow_destroy(a->flow);
    md_llm_loop_destroy(a->llm);
    md_vad_destroy(a->vad);
    json_decref(a->vars);
    free(a->buf);
    free(a->pending_transfer);
    for (size_t i = 0; a->phrases[i]; i++)
        free(a->phrases[i]);
    uv_close((uv_handle_t *) &a->timer, agent_free_cb);
}

/* ---- for the LLM loop ---- */

void
md_agent_mark_llm_first_token(md_agent_t *a)
{
    open_agent_turn(a, lc_time_mono_ms());
    if (a->t_llm_first_token == 0)
        a->t_llm_first_token = lc_time_mono_ms();
}

void
md_agent_add_llm_usage(md_agent_t *a, uint32_t prompt_tokens, uint32_t completion_tokens)
{
    a->llm_prompt_tokens += prompt_tokens;
    a->llm_completion_tokens += completion_tokens;
}

md_worker_t *
md_agent_worker(const md_agent_t *a)
{
    return a->w;
}

const char *
md_agent_org_id(const md_agent_t *a)
{
    return org_of(a);
}

const char *
md_agent_call_id(const md_agent_t *a)
{
    return a->call_id;
}

const char *
md_agent_agent_id(const md_agent_t *a)
{
    return a->agent_id;
}

/* ---- the worker's share ---- */

void
md_agent_worker_init(md_worker_t *w, size_t greeting_cache_max)
{
    (void) w;
    greetings_max = greeting_cache_max;
}

void
md_agent_worker_cleanup(md_worker_t *w)
{
    (void) w;
    md_greeting_cache_destroy(greetings);
    greetings = NULL;
}
