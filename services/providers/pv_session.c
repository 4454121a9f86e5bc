#include "pv_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define PV_DRAIN_LINGER_MS 200

const char *
pv_kind_name(pv_kind_t k)
{
    switch (k) {
    case PV_KIND_STT:
        return "stt";
    case PV_KIND_LLM:
        return "llm";
    case PV_KIND_TTS:
        return "tts";
    default:
        return "unknown";
    }
}

pv_session_t *
pv_session_create(pv_service_t *ps, const pv_engine_t *engine, const char *out_subject,
                  const char *call_id, int64_t idle_timeout_ms)
{
    pv_session_t *s = LC_NEW(pv_session_t);
    s->ps = ps;
    s->engine = engine;
    lc_id_new("ps_", s->id, sizeof(s->id));
    snprintf(s->call_id, sizeof(s->call_id), "%s", call_id ? call_id : "");
    s->out_subject = lc_strdup(out_subject);
    s->idle_timeout_ms = idle_timeout_ms;
    s->last_input_ms = lc_time_mono_ms();
    s->refs = 1;
    ps->allocated_sessions++;
    voxi__v1__usage__init(&s->usage);
    s->next = ps->sessions;
    ps->sessions = s;
    ps->nsessions++;
    lc_metric_set(ps->m.sessions_active, (double) ps->nsessions);
    return s;
}

pv_session_t *
pv_session_find(pv_service_t *ps, const char *id)
{
    for (pv_session_t *s = ps->sessions; s; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

void
pv_session_ref(pv_session_t *s)
{
    s->refs++;
}

static void
session_free(pv_session_t *s)
{
    if (s->engine && s->engine->destroy)
        s->engine->destroy(s);
    pv_service_t *ps = s->ps;
    ps->allocated_sessions--;
    free(s->out_subject);
    free(s);
    pv_service_maybe_close(ps);
}

void
pv_session_unref(pv_session_t *s)
{
    if (s == NULL)
        return;
    if (--s->refs == 0)
        session_free(s);
}

bool
pv_session_ended(const pv_session_t *s)
{
    return s->ended;
}

void
pv_session_emit(pv_session_t *s, Voxi__V1__ProviderEvent *ev)
{
    if (s->ended)
        return;
    ev->session_id = s->id;
    ev->seq = ++s->out_seq;
    size_t len = protobuf_c_message_get_packed_size(&ev->base);
    uint8_t stackbuf[4096];
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : lc_malloc(len);
    protobuf_c_message_pack(&ev->base, buf);
    lc_status_t st = lc_nats_publish(s->ps->nats, s->out_subject, buf, len);
    if (st != LC_OK)
        LC_LOG_RL(LC_LOG_WARN, "session", 5, "session %s: publish %s failed: %s", s->id, ev->type,
                  lc_status_name(st));
    if (buf != stackbuf)
        free(buf);
}

void
pv_session_emit_text(pv_session_t *s, const char *type, const char *text)
{
    Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
    ev.type = (char *) type;
    ev.text = (char *) (text ? text : "");
    pv_session_emit(s, &ev);
}

static void
session_unlink(pv_session_t *s)
{
    pv_service_t *ps = s->ps;
    for (pv_session_t **pp = &ps->sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            ps->nsessions--;
            break;
        }
    }
    s->next = NULL;
    lc_metric_set(ps->m.sessions_active, (double) ps->nsessions);
}

static void
session_end(pv_session_t *s, Voxi__V1__ProviderEvent *ev)
{
    ev->usage = &s->usage;
    pv_session_emit(s, ev);
    /* While draining, the connection closes as soon as no work is left: give the last
     * event a moment to be written first. */
    if (s->ps->draining)
        s->ps->linger_until_ms = lc_time_mono_ms() + PV_DRAIN_LINGER_MS;
    s->ended = true;
    session_unlink(s);
    pv_session_unref(s);
}

void
pv_session_done(pv_session_t *s, const char *finish_reason)
{
    if (s->ended)
        return;
    Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
    ev.type = "done";
    ev.finish_reason = (char *) (finish_reason ? finish_reason : "");
    LC_DEBUG("session", "session %s (%s %s, call %s) done %s", s->id, pv_kind_name(s->engine->kind),
             s->engine->name, s->call_id, ev.finish_reason);
    session_end(s, &ev);
}

void
pv_session_fail(pv_session_t *s, lc_status_t status, const char *message)
{
    if (s->ended)
        return;
    Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
    ev.type = "error";
    ev.error = (char *) (message ? message : "");
    ev.error_status = (char *) lc_status_name(status);
    LC_INFO("session", "session %s (%s %s, call %s) failed: %s: %s", s->id,
            pv_kind_name(s->engine->kind), s->engine->name, s->call_id, ev.error_status, ev.error);
    session_end(s, &ev);
}

void
pv_session_meter_stt(pv_session_t *s, double seconds)
{
    s->usage.stt_seconds += seconds;
    lc_metric_add(s->ps->m.stt_seconds, seconds);
}

void
pv_session_meter_llm(pv_session_t *s, uint32_t prompt_tokens, uint32_t completion_tokens)
{
    s->usage.llm_prompt_tokens += prompt_tokens;
    s->usage.llm_completion_tokens += completion_tokens;
    lc_metric_add(s->ps->m.llm_prompt_tokens, prompt_tokens);
    lc_metric_add(s->ps->m.llm_completion_tokens, completion_tokens);
}

void
pv_session_meter_tts(pv_session_t *s, uint32_t characters, double seconds)
{
    s->usage.tts_characters += characters;
    s->usage.tts_seconds += seconds;
    lc_metric_add(s->ps->m.tts_characters, characters);
    lc_metric_add(s->ps->m.tts_seconds, seconds);
}
