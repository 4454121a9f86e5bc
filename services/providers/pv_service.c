/*
 * The session table and the bus side: open requests, input messages, idle sweep, drain.
 */
#include "pv_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "pv_http.h"
#include "pv_session.h"
#include "lc_ssrf.h"
#include "pv_stt.h"

#define SUBJECT_MAX 256
#define SWEEP_MS 100
#define IDLE_DEFAULT_MS 30000
#define IDLE_MAX_MS 3600000

typedef struct {
    pv_service_t *ps;
    pv_kind_t kind;
} open_ctx_t;

static open_ctx_t open_ctx[PV_KIND_COUNT_];

const pv_engine_t *
pv_engine_find(const pv_service_t *ps, pv_kind_t kind, const char *name)
{
    static const pv_engine_t *const all[] = {
        &pv_engine_stt_pocketsphinx, &pv_engine_tts_flite, &pv_engine_llm_openai,
        &pv_engine_stt_test,         &pv_engine_tts_test,  &pv_engine_llm_test,
    };
    if (name == NULL || name[0] == '\0')
        name = kind == PV_KIND_STT ? "pocketsphinx" : kind == PV_KIND_TTS ? "flite" : "openai";
    if (strcmp(name, "test") == 0 && !ps->cfg->test_engines)
        return NULL;
    if (strcmp(name, "pocketsphinx") == 0 && ps->stt_pool == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i]->kind == kind && strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

/* A publishable subject: tokens of visible ASCII, no wildcards, bounded. */
static bool
subject_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SUBJECT_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c <= ' ' || c >= 0x7f || c == '*' || c == '>')
            return false;
        if (c == '.' && s[i + 1] == '.')
            return false;
    }
    return true;
}

static void
reply_error(pv_service_t *ps, const char *reply_to, const char *request_id, lc_status_t st,
            const char *message)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (lc_pb_pack_error(request_id, st, message, &buf, &len) == LC_OK)
        lc_nats_respond(ps->nats, reply_to, buf, len);
    free(buf);
}

static void
on_open(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    open_ctx_t *oc = arg;
    pv_service_t *ps = oc->ps;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL)
        return;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__provider_open__descriptor, &env, &body);
    const char *request_id = env ? env->request_id : "";
    if (st != LC_OK || body == NULL) {
        reply_error(ps, reply_to, request_id, LC_ERR_INVALID, "malformed ProviderOpen");
        goto done;
    }
    lc_log_context_set(request_id, NULL);
    const Voxi__V1__ProviderOpen *open = (const Voxi__V1__ProviderOpen *) body;
    lc_log_context_set(NULL, open->call_id);
    if (open->kind[0] != '\0' && strcmp(open->kind, pv_kind_name(oc->kind)) != 0) {
        reply_error(ps, reply_to, request_id, LC_ERR_INVALID, "kind does not match the subject");
        goto done;
    }
    if (!subject_valid(open->out_subject)) {
        reply_error(ps, reply_to, request_id, LC_ERR_INVALID,
                    "out_subject must be a NATS subject without wildcards (at most 256 bytes)");
        goto done;
    }
    if (strlen(open->call_id) > 64 || strlen(open->engine) > 32) {
        reply_error(ps, reply_to, request_id, LC_ERR_INVALID, "call_id or engine too long");
        goto done;
    }
    if (ps->draining) {
        reply_error(ps, reply_to, request_id, LC_ERR_UNAVAILABLE, "the instance is shutting down");
        goto done;
    }
    if (ps->nsessions >= (size_t) ps->cfg->max_sessions) {
        reply_error(ps, reply_to, request_id, LC_ERR_UNAVAILABLE, "the instance is full");
        goto done;
    }
    const char *engine_name = open->engine;
    if (engine_name[0] == '\0' && oc->kind == PV_KIND_LLM && open->llm &&
        open->llm->provider[0] != '\0')
        engine_name = open->llm->provider;
    const pv_engine_t *engine = pv_engine_find(ps, oc->kind, engine_name);
    if (engine == NULL) {
        char text[160];
        snprintf(text, sizeof(text), "no %s engine \"%.32s\" on this instance",
                 pv_kind_name(oc->kind), engine_name[0] ? engine_name : "(default)");
        reply_error(ps, reply_to, request_id, LC_ERR_UNAVAILABLE, text);
        goto done;
    }
    int64_t idle = open->idle_timeout_ms ? (int64_t) open->idle_timeout_ms : IDLE_DEFAULT_MS;
    if (idle > IDLE_MAX_MS)
        idle = IDLE_MAX_MS;
    pv_session_t *s = pv_session_create(ps, engine, open->out_subject, open->call_id, idle);
    char err[200] = "";
    st = engine->open(s, open, err, sizeof(err));
    if (st != LC_OK) {
        s->ended = true; /* no events: the client learns it from the reply */
        for (pv_session_t **pp = &ps->sessions; *pp; pp = &(*pp)->next) {
            if (*pp == s) {
                *pp = s->next;
                ps->nsessions--;
                break;
            }
        }
        lc_metric_set(ps->m.sessions_active, (double) ps->nsessions);
        reply_error(ps, reply_to, request_id, st, err[0] ? err : "the engine refused the session");
        pv_session_unref(s);
        goto done;
    }
    char in_subject[SUBJECT_MAX];
    snprintf(in_subject, sizeof(in_subject), "%s%s", ps->in_prefix, s->id);
    Voxi__V1__ProviderOpenReply rep = VOXI__V1__PROVIDER_OPEN_REPLY__INIT;
    rep.session_id = s->id;
    rep.in_subject = in_subject;
    rep.instance_id = (char *) ps->instance_id;
    rep.engine = (char *) engine->name;
    lc_pb_meta_t meta = {.request_id = request_id};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (lc_pb_pack(&meta, &rep.base, &buf, &len) == LC_OK)
        lc_nats_respond(ps->nats, reply_to, buf, len);
    free(buf);
    LC_INFO("session", "session %s opened: %s %s, out %s", s->id, pv_kind_name(oc->kind),
            engine->name, s->out_subject);
    char labels[64];
    snprintf(labels, sizeof(labels), "engine=\"%s\",kind=\"%s\"", engine->name,
             pv_kind_name(oc->kind));
    lc_metric_inc(lc_metrics_counter(ps->metrics, "voxi_providers_sessions_total",
                                     "sessions opened, by kind and engine", labels));
    if (engine->start)
        engine->start(s);
done:
    lc_log_context_clear();
    lc_pb_free(env, body);
}

static void
on_input(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    pv_service_t *ps = arg;
    const char *subject = lc_nats_msg_subject(msg);
    size_t plen = strlen(ps->in_prefix);
    if (strncmp(subject, ps->in_prefix, plen) != 0)
        return;
    pv_session_t *s = pv_session_find(ps, subject + plen);
    if (s == NULL) {
        LC_LOG_RL(LC_LOG_DEBUG, "session", 5, "input for unknown session %.40s", subject + plen);
        return;
    }
    size_t len = lc_nats_msg_len(msg);
    if (len > LC_PB_MAX_MESSAGE_BYTES) {
        lc_metric_inc(ps->m.input_dropped);
        return;
    }
    Voxi__V1__ProviderInput *in =
        voxi__v1__provider_input__unpack(NULL, len, lc_nats_msg_data(msg));
    if (in == NULL) {
        LC_LOG_RL(LC_LOG_WARN, "session", 5, "session %s: malformed ProviderInput dropped", s->id);
        lc_metric_inc(ps->m.input_dropped);
        return;
    }
    lc_log_context_set(NULL, s->call_id);
    if (in->seq != 0 && s->in_seq != 0 && in->seq != s->in_seq + 1)
        LC_LOG_RL(LC_LOG_WARN, "session", 5, "session %s: input seq %llu after %llu", s->id,
                  (unsigned long long) in->seq, (unsigned long long) s->in_seq);
    if (in->seq != 0)
        s->in_seq = in->seq;
    s->last_input_ms = lc_time_mono_ms();
    if (in->cancel) {
        if (s->engine->cancel)
            s->engine->cancel(s);
        pv_session_done(s, "cancelled");
    } else {
        if (!s->closing && (in->audio.len > 0 || in->text[0] != '\0' || in->flush))
            s->engine->input(s, in);
        if (in->close && !s->closing && !pv_session_ended(s)) {
            s->closing = true;
            s->engine->close(s);
        }
    }
    lc_log_context_clear();
    voxi__v1__provider_input__free_unpacked(in, NULL);
}

static void
on_sweep(uv_timer_t *t)
{
    pv_service_t *ps = t->data;
    int64_t now = lc_time_mono_ms();
    pv_session_t *s = ps->sessions;
    while (s) {
        pv_session_t *next = s->next;
        if (!s->engine->idle_exempt && now - s->last_input_ms > s->idle_timeout_ms) {
            char text[96];
            snprintf(text, sizeof(text), "no input for %lld ms", (long long) s->idle_timeout_ms);
            if (s->engine->cancel)
                s->engine->cancel(s);
            pv_session_fail(s, LC_ERR_TIMEOUT, text);
        }
        s = next;
    }
}

static void
end_all(pv_service_t *ps, const char *why)
{
    while (ps->sessions) {
        pv_session_t *s = ps->sessions;
        if (s->engine->cancel)
            s->engine->cancel(s);
        pv_session_fail(s, LC_ERR_UNAVAILABLE, why);
    }
}

static void
on_drain_timeout(uv_timer_t *t)
{
    pv_service_t *ps = t->data;
    if (ps->nsessions > 0)
        LC_WARN("service", "drain: ending %zu sessions still open", ps->nsessions);
    end_all(ps, "the instance is shutting down");
}

static void
on_http_closed(void *arg)
{
    (void) arg;
}

void
pv_service_maybe_close(pv_service_t *ps)
{
    if (!ps->draining || ps->closed || ps->allocated_sessions > 0)
        return;
    ps->closed = true;
    uv_timer_stop(&ps->sweep_timer);
    uv_timer_stop(&ps->drain_timer);
    uv_close((uv_handle_t *) &ps->sweep_timer, NULL);
    uv_close((uv_handle_t *) &ps->drain_timer, NULL);
    pv_http_close(ps->http, on_http_closed, ps);
}

static void
register_metrics(pv_service_t *ps)
{
    lc_metrics_t *r = ps->metrics;
    ps->m.sessions_active = lc_metrics_gauge(r, "voxi_providers_sessions_active",
                                             "sessions open on this instance", NULL);
    ps->m.stt_seconds = lc_metrics_counter(r, "voxi_providers_stt_seconds_total",
                                           "seconds of audio transcribed", NULL);
    ps->m.llm_prompt_tokens = lc_metrics_counter(
        r, "voxi_providers_llm_tokens_total", "LLM tokens, by direction", "direction=\"prompt\"");
    ps->m.llm_completion_tokens =
        lc_metrics_counter(r, "voxi_providers_llm_tokens_total", "LLM tokens, by direction",
                           "direction=\"completion\"");
    ps->m.tts_characters = lc_metrics_counter(r, "voxi_providers_tts_characters_total",
                                              "characters synthesised", NULL);
    ps->m.tts_seconds = lc_metrics_counter(r, "voxi_providers_tts_seconds_total",
                                           "seconds of audio synthesised", NULL);
    ps->m.input_dropped = lc_metrics_counter(r, "voxi_providers_input_dropped_total",
                                             "input messages dropped (malformed, too large)", NULL);
}

lc_status_t
pv_service_start(lc_service_t *svc, void *arg)
{
    pv_service_t *ps = arg;
    ps->svc = svc;
    ps->loop = lc_service_loop(svc);
    ps->nats = lc_service_nats(svc);
    ps->metrics = lc_service_metrics(svc);
    ps->instance_id = lc_service_instance_id(svc);
    register_metrics(ps);
    char err[200];
    if (lc_ssrf_allowlist_parse(ps->cfg->ssrf_allowlist, &ps->allowlist, err, sizeof(err)) !=
        LC_OK) {
        LC_ERROR("service", "VOXI_PROVIDERS_SSRF_ALLOWLIST: %s", err);
        return LC_ERR_CONFIG;
    }
    if (ps->cfg->stt_decoders > 0 &&
        pv_stt_pool_create(ps->loop, ps->cfg->stt_model_dir, (size_t) ps->cfg->stt_decoders,
                           &ps->stt_pool) != LC_OK) {
        LC_ERROR("service", "pocketsphinx: no model under %s (VOXI_PROVIDERS_STT_MODEL_DIR)",
                 ps->cfg->stt_model_dir);
        return LC_ERR_CONFIG;
    }
    pv_tts_flite_global_init();
    pv_http_create(ps->loop, ps->metrics, &ps->http);
    snprintf(ps->in_prefix, sizeof(ps->in_prefix), "voxi.providers.in.%s.", ps->instance_id);
    char sub[160];
    snprintf(sub, sizeof(sub), "%s>", ps->in_prefix);
    LC_TRY(lc_nats_subscribe(ps->nats, sub, NULL, on_input, ps, &ps->in_sub));
    for (int k = 0; k < PV_KIND_COUNT_; k++) {
        open_ctx[k].ps = ps;
        open_ctx[k].kind = (pv_kind_t) k;
        snprintf(sub, sizeof(sub), "voxi.providers.%s.open", pv_kind_name((pv_kind_t) k));
        LC_TRY(lc_nats_subscribe(ps->nats, sub, "providers", on_open, &open_ctx[k],
                                 &ps->open_subs[k]));
    }
    uv_timer_init(ps->loop, &ps->sweep_timer);
    ps->sweep_timer.data = ps;
    uv_timer_start(&ps->sweep_timer, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_timer_init(ps->loop, &ps->drain_timer);
    ps->drain_timer.data = ps;
    LC_INFO("service", "engines: stt %s, tts flite, llm openai %s, test engines %s",
            ps->stt_pool ? "pocketsphinx" : "-",
            ps->cfg->openai_base_url ? "configured" : "not configured (LLM unavailable)",
            ps->cfg->test_engines ? "on" : "off");
    return LC_OK;
}

void
pv_service_stop(lc_service_t *svc, void *arg)
{
    (void) svc;
    pv_service_t *ps = arg;
    ps->draining = true;
    for (int k = 0; k < PV_KIND_COUNT_; k++) {
        lc_nats_unsubscribe(ps->nats, ps->open_subs[k]);
        ps->open_subs[k] = NULL;
    }
    /* Sessions may finish on their own; what is left near the deadline is ended with an
     * error while NATS is still up, so every client hears the end. */
    int64_t t = ps->cfg->common.shutdown_timeout_ms * 3 / 4;
    uv_timer_start(&ps->drain_timer, on_drain_timeout, (uint64_t) t, 0);
    pv_service_maybe_close(ps);
}

bool
pv_service_ready(void *arg, char *reason, size_t reason_size)
{
    pv_service_t *ps = arg;
    if (pv_stt_pool_loading(ps->stt_pool)) {
        snprintf(reason, reason_size, "loading the pocketsphinx decoders");
        return false;
    }
    return true;
}

size_t
pv_service_inflight(void *arg)
{
    pv_service_t *ps = arg;
    pv_service_maybe_close(ps);
    bool lingering = ps->draining && lc_time_mono_ms() < ps->linger_until_ms;
    return ps->allocated_sessions + (lingering ? 1 : 0);
}

void
pv_service_cleanup(void *arg)
{
    pv_service_t *ps = arg;
    pv_http_destroy(ps->http);
    ps->http = NULL;
    pv_stt_pool_destroy(ps->stt_pool);
    ps->stt_pool = NULL;
    lc_ssrf_allowlist_destroy(ps->allowlist);
    ps->allowlist = NULL;
}
