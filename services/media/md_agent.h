/*
 * md_agent: the agent runtime of one call (the conversation engine), attached by md_call
 * when the call has an agent (md_call_agent_t.agent_json) and its media starts.
 *
 * Per 20 ms frame (md_agent_on_frame, from the call's playout tick, after the frame went
 * out): the caller's 16 kHz audio goes through the VAD (md_vad) and the turn detector
 * (md_turn); caller speech streams to a speech-to-text session (md_prov) from just before
 * its onset; the caller's turn ends after endpointing.silence_ms of silence (the STT final
 * is then awaited at most endpointing.max_wait_ms). The text goes to the response engine:
 * the flow (md_flow) or the LLM loop (md_llm_loop). What the agent says is synthesised by a
 * text-to-speech session and queued on the call's playout as the audio arrives.
 *
 * Barge-in: caller speech of interruptions.min_speech_ms while the agent speaks stops the
 * agent's audio at once (md_playout_flush; what was synthesised is kept). It becomes an
 * interruption (synthesis and generation cancelled, call.interrupted, the agent turn marked
 * interrupted) when the recogniser hears words beyond the ignore phrases (and at least
 * min_words), or, when neither rule is set, once the speech lasts CONFIRM_MS longer. A
 * backchannel, or no words at all, resumes the agent's audio where it stopped.
 *
 * Greeting: first_message plays from the worker's greeting cache (md_greeting) when the
 * call's media starts, so its first frame leaves with the first packet after the 200 OK;
 * a miss synthesises it and fills the cache for the next call of that agent version.
 *
 * Events: call.transcript per turn (caller and agent, with the agent's latency breakdown),
 * call.interrupted; usage for call.ended (md_agent_usage).
 * Also: silence_timeout_s (a reminder, then hang up), max_duration_s, end_call_phrases
 * (the agent saying one ends the call after it is spoken).
 *
 * Threads: the call's loop only. The runtime never ends the call from inside one of its
 * entry points: hang-ups and transfers run from its own timer on a later loop turn.
 */
#ifndef MD_AGENT_H
#define MD_AGENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "md_call.h"
#include "md_playout.h"
#include "md_worker.h"

typedef struct md_agent md_agent_t;

typedef struct {
    md_worker_t *w;
    md_call_t *call;             /* for md_call_hangup / md_call_transfer (borrowed) */
    md_playout_stream_t *stream; /* the call's playout (borrowed; outlives the agent) */
    const char *call_id;
    const md_call_agent_t *agent; /* borrowed for create only (copied what is needed) */
    const char *from, *to;        /* SIP URIs of the caller and the called */
    int64_t answered_mono_ms;
} md_agent_env_t;

/* LC_ERR_INVALID when agent_json is not a usable agent (the call keeps its echo demo). */
lc_status_t md_agent_create(const md_agent_env_t *env, md_agent_t **out);
/* Plays the greeting and starts the response engine. */
void md_agent_start(md_agent_t *a);
/* One 20 ms frame: caller (16 kHz, `samples` = MD_PLAYOUT_FRAME_SAMPLES, zeros when none);
 * playing: the frame just sent came from the playout queue. */
void md_agent_on_frame(md_agent_t *a, int64_t now_ms, const int16_t *caller, size_t samples,
                       bool playing);
/* A DTMF digit from the caller (RFC 4733, SIP INFO or in-band). */
void md_agent_on_dtmf(md_agent_t *a, char digit);
/* Adds "usage":{stt_seconds, llm_prompt_tokens, llm_completion_tokens, tts_characters} to
 * extra (the call.ended data). */
void md_agent_usage(const md_agent_t *a, json_t *extra);
/* Stops everything (sessions cancelled, timers closed); frees on the loop. NULL: no-op. */
void md_agent_destroy(md_agent_t *a);

/* The worker's greeting cache size (VOXI_MEDIA_GREETING_CACHE_MAX); call before the first
 * agent. The cache is freed by md_agent_worker_cleanup. */
void md_agent_worker_init(md_worker_t *w, size_t greeting_cache_max);
void md_agent_worker_cleanup(md_worker_t *w);

#endif
