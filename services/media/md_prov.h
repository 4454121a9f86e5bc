/*
 * md_prov: the agent runtime's client of voxi-providers (proto/voxi/v1/providers.proto): one
 * streaming session of speech-to-text, LLM or text-to-speech per md_prov_session_t.
 *
 * Open: the session subscribes its own out subject (voxi.media.prov.<instance>.<n>), then
 * requests voxi.providers.<kind>.open; input sent before the reply is queued (bounded) and
 * goes to the instance's in_subject once the reply names it. Every event the instance
 * publishes reaches the callback in order (a gap in seq is logged). A session ends with
 * exactly one "done" or "error" event; an open that fails ends with a synthesised "error"
 * event (error_status: "no_responders", "timeout", ... or the reply's status).
 *
 * Offline text-to-speech: when nobody serves voxi.providers.tts.open (voxi-providers is not
 * running), a TTS session falls back to the worker's own flite (kal voice, md_prompt), so the
 * demo speaks with no other service; the fallback delivers its audio and "tts_done" on a
 * later loop turn, like a remote engine, and counts tts_characters in its "done".
 *
 * Threads: the loop thread only; callbacks run on it and never from inside a md_prov_*
 * call, so a callback may destroy its session.
 */
#ifndef MD_PROV_H
#define MD_PROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "md_worker.h"
#include "voxi/v1/providers.pb-c.h"

#define MD_PROV_PENDING_MAX 256 /* inputs queued before the open reply */
#define MD_PROV_OPEN_TIMEOUT_MS 3000

typedef struct md_prov_session md_prov_session_t;

/* ev is borrowed for the call only. After "done" or "error" no more events follow. */
typedef void (*md_prov_event_cb)(void *arg, md_prov_session_t *s,
                                 const Voxi__V1__ProviderEvent *ev);

/*
 * Opens a session. open: the ProviderOpen to send (borrowed; kind must be "stt", "llm" or
 * "tts"; out_subject is filled in here). org_id: for the envelope (may be NULL). On LC_OK
 * *out is the session and events follow; LC_ERR_INVALID for a bad kind.
 */
lc_status_t md_prov_open(md_worker_t *w, const char *org_id, Voxi__V1__ProviderOpen *open,
                         md_prov_event_cb cb, void *arg, md_prov_session_t **out);

/* stt: 16-bit PCM at the session's rate (copied). Dropped (counted) when the queue is full. */
void md_prov_send_audio(md_prov_session_t *s, const int16_t *pcm, size_t samples);
/* tts: one text to speak (copied); flush true ends that text (the engine answers "tts_done"). */
void md_prov_send_text(md_prov_session_t *s, const char *text, bool flush);
/* stt: end of the utterance, finalise now. */
void md_prov_flush(md_prov_session_t *s);
/* No more input; the engine finishes queued work, then "done". */
void md_prov_close(md_prov_session_t *s);
/* Stops at once (barge-in): the engine drops queued work and ends with "done". */
void md_prov_cancel(md_prov_session_t *s);
/* True once "done" or "error" arrived. */
bool md_prov_ended(const md_prov_session_t *s);
/* The engine that took the session ("" until the reply; "local" for the flite fallback). */
const char *md_prov_engine(const md_prov_session_t *s);

/* Forgets the session: no callback after this returns; a session that has not ended is
 * cancelled at the instance. NULL is a no-op. */
void md_prov_destroy(md_prov_session_t *s);

#endif
