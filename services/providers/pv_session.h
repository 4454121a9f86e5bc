/*
 * pv_session: one STT, LLM or TTS session bound to this instance, and the engine interface.
 *
 * Life: pv_service creates a session on an open request and calls the engine's open; from
 * then on input messages reach engine->input. The session ends exactly once, with
 * pv_session_done (a "done" event, usage filled in) or pv_session_fail (an "error" event,
 * usage too): it then leaves the session table and emits nothing more. Work handed to a
 * worker thread or an HTTP transfer holds a reference (pv_session_ref); the engine state is
 * destroyed and the session freed when the last reference goes, so a job that returns after
 * the end finds its session still allocated and only needs to check pv_session_ended.
 *
 * Threads: the loop thread. Engines run their heavy work in uv_queue_work jobs and touch the
 * session only in the after-work callback.
 */
#ifndef PV_SESSION_H
#define PV_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "pv_service.h"
#include "voxi/v1/providers.pb-c.h"

typedef enum { PV_KIND_STT = 0, PV_KIND_LLM, PV_KIND_TTS, PV_KIND_COUNT_ } pv_kind_t;

const char *pv_kind_name(pv_kind_t k);

typedef struct pv_engine {
    const char *name; /* "pocketsphinx", "flite", "openai", "test" */
    pv_kind_t kind;
    bool idle_exempt; /* the session works without input (LLM): no idle timeout */
    /* Sets up s->engine_state from the open request (borrowed). On failure, a safe message
     * in err; the session is then freed without events. May emit events only after
     * returning LC_OK (a later loop turn is not required). */
    lc_status_t (*open)(pv_session_t *s, const Voxi__V1__ProviderOpen *open, char *err,
                        size_t err_size);
    /* Optional: called right after the open reply went out (an LLM starts generating). */
    void (*start)(pv_session_t *s);
    /* One input message (audio, text, flush), borrowed. Not called after the end. */
    void (*input)(pv_session_t *s, const Voxi__V1__ProviderInput *in);
    /* No more input: finish queued work, then pv_session_done. */
    void (*close)(pv_session_t *s);
    /* Drop queued work and stop now; pv_service ends the session with "done" right after. */
    void (*cancel)(pv_session_t *s);
    /* Frees engine_state; called once, when the last reference is released. */
    void (*destroy)(pv_session_t *s);
} pv_engine_t;

struct pv_session {
    pv_service_t *ps;
    const pv_engine_t *engine;
    void *engine_state;
    char id[32];      /* "ps_" + 20 hex */
    char call_id[72]; /* for logs */
    char *out_subject;
    uint64_t out_seq;
    uint64_t in_seq;
    int64_t idle_timeout_ms;
    int64_t last_input_ms;
    int refs;
    bool ended;
    bool closing; /* close received */
    Voxi__V1__Usage usage;
    pv_session_t *next; /* ps->sessions */
};

/* A new session with one reference (the table's), linked into ps->sessions. */
pv_session_t *pv_session_create(pv_service_t *ps, const pv_engine_t *engine,
                                const char *out_subject, const char *call_id,
                                int64_t idle_timeout_ms);
pv_session_t *pv_session_find(pv_service_t *ps, const char *id);

void pv_session_ref(pv_session_t *s);
/* Releases a reference; the last one destroys the engine state and frees s. */
void pv_session_unref(pv_session_t *s);
bool pv_session_ended(const pv_session_t *s);

/* Publishes ev (borrowed; session_id and seq are filled in here). Ignored after the end. */
void pv_session_emit(pv_session_t *s, Voxi__V1__ProviderEvent *ev);
/* Convenience emitters. */
void pv_session_emit_text(pv_session_t *s, const char *type, const char *text);

/* Ends with "done" (finish_reason may be NULL), usage attached; unlinks and drops the table's
 * reference. Ignored when already ended. */
void pv_session_done(pv_session_t *s, const char *finish_reason);
/* Ends with "error" (status name and safe message), usage attached. */
void pv_session_fail(pv_session_t *s, lc_status_t status, const char *message);

/* Meters usage into the session and the service counters. */
void pv_session_meter_stt(pv_session_t *s, double seconds);
void pv_session_meter_llm(pv_session_t *s, uint32_t prompt_tokens, uint32_t completion_tokens);
void pv_session_meter_tts(pv_session_t *s, uint32_t characters, double seconds);

/* Engines, by kind and name; NULL when unknown or not available in this configuration. */
const pv_engine_t *pv_engine_find(const pv_service_t *ps, pv_kind_t kind, const char *name);

/* flite_init and voice registration; once, on the loop thread, before any TTS session. */
void pv_tts_flite_global_init(void);

extern const pv_engine_t pv_engine_stt_test, pv_engine_llm_test, pv_engine_tts_test;
extern const pv_engine_t pv_engine_stt_pocketsphinx, pv_engine_tts_flite, pv_engine_llm_openai;

#endif
