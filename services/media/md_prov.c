#include "md_prov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "md_prompt.h"

#define LOCAL_CHUNK_SAMPLES 1600 /* 100 ms at 16 kHz, the protocol's largest chunk */
#define LOCAL_TEXT_MAX 4000

typedef struct {
    int16_t *audio;
    size_t samples;
    char *text;
    bool flush, cancel, close;
} pending_t;

struct md_prov_session {
    md_worker_t *w;
    md_prov_event_cb cb;
    void *arg;
    char kind[8];
    char call_id[72];
    char out_subject[160];
    char in_subject[256];
    char session_id[64];
    char engine[32];
    lc_nats_sub_t *sub;
    uint64_t request_id;
    bool requesting;
    bool opened; /* in_subject known */
    bool ended;
    bool local; /* the flite fallback */
    bool dead;  /* destroyed while busy: freed when the callback returns */
    int busy;
    uint64_t seq_out;
    uint64_t seq_in;
    pending_t pending[MD_PROV_PENDING_MAX];
    size_t npending;
    size_t dropped;
    /* deferred work: the open's failure, or the local engine's audio */
    uv_timer_t timer;
    lc_status_t fail_status;
    bool failing;
    char *local_text; /* texts not yet flushed (local engine) */
    char **local_queue;
    size_t nlocal;
    uint32_t local_chars;
    bool local_close;
    uint32_t local_gen; /* bumped by cancel: stops a text being delivered */
};

static uint64_t next_session_no;

static void
pending_clear(pending_t *p)
{
    free(p->audio);
    free(p->text);
    memset(p, 0, sizeof(*p));
}

static void
session_free_cb(uv_handle_t *h)
{
    md_prov_session_t *s = h->data;
    for (size_t i = 0; i < s->npending; i++)
        pending_clear(&s->pending[i]);
    for (size_t i = 0; i < s->nlocal; i++)
        free(s->local_queue[i]);
    free(s->local_queue);
    free(s->local_text);
    free(s);
}

static void
finalize(md_prov_session_t *s)
{
    uv_close((uv_handle_t *) &s->timer, session_free_cb);
}

/* Runs the callback; returns false when the session was destroyed inside it. */
static bool
deliver(md_prov_session_t *s, const Voxi__V1__ProviderEvent *ev)
{
    if (s->dead || s->ended)
        return !s->dead;
    if (strcmp(ev->type, "done") == 0 || strcmp(ev->type, "error") == 0)
        s->ended = true;
    s->busy++;
    s->cb(s->arg, s, ev);
    s->busy--;
    if (s->dead && s->busy == 0) {
        finalize(s);
        return false;
    }
    return !s->dead;
}

static void
deliver_error(md_prov_session_t *s, lc_status_t st, const char *msg)
{
    Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
    ev.type = "error";
    ev.error_status = (char *) lc_status_name(st);
    ev.error = (char *) msg;
    deliver(s, &ev);
}

/* ---- sending ---- */

static void
send_input(md_prov_session_t *s, const pending_t *p)
{
    Voxi__V1__ProviderInput in = VOXI__V1__PROVIDER_INPUT__INIT;
    in.session_id = s->session_id;
    in.seq = ++s->seq_out;
    if (p->audio) {
        in.audio.data = (uint8_t *) p->audio;
        in.audio.len = p->samples * sizeof(int16_t);
    }
    if (p->text)
        in.text = p->text;
    in.flush = p->flush;
    in.cancel = p->cancel;
    in.close = p->close;
    uint8_t stackbuf[4096];
    size_t len = voxi__v1__provider_input__get_packed_size(&in);
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : lc_malloc(len);
    voxi__v1__provider_input__pack(&in, buf);
    if (lc_nats_publish(s->w->nats, s->in_subject, buf, len) != LC_OK)
        LC_LOG_RL(LC_LOG_WARN, "prov", 1, "cannot publish to the %s session", s->kind);
    if (buf != stackbuf)
        free(buf);
}

static void local_schedule(md_prov_session_t *s);
static void local_input(md_prov_session_t *s, pending_t *p);

/* Takes p's buffers. */
static void
submit(md_prov_session_t *s, pending_t *p)
{
    if (s->ended || s->failing) {
        pending_clear(p);
        return;
    }
    if (s->local) {
        local_input(s, p);
        return;
    }
    if (s->opened) {
        send_input(s, p);
        pending_clear(p);
        return;
    }
    if (s->npending == MD_PROV_PENDING_MAX) {
        s->dropped++;
        LC_LOG_RL(LC_LOG_WARN, "prov", 1, "%s session not open yet: input dropped", s->kind);
        pending_clear(p);
        return;
    }
    s->pending[s->npending++] = *p;
}

void
md_prov_send_audio(md_prov_session_t *s, const int16_t *pcm, size_t samples)
{
    if (s->ended || s->failing)
        return;
    if (s->opened && !s->local) { /* the usual case, every 20 ms: no copy to queue */
        pending_t direct = {.audio = (int16_t *) pcm, .samples = samples};
        send_input(s, &direct);
        return;
    }
    pending_t p = {0};
    p.audio = lc_malloc(samples * sizeof(int16_t) + 1);
    memcpy(p.audio, pcm, samples * sizeof(int16_t));
    p.samples = samples;
    submit(s, &p);
}

void
md_prov_send_text(md_prov_session_t *s, const char *text, bool flush)
{
    pending_t p = {.text = lc_strdup(text), .flush = flush};
    submit(s, &p);
}

void
md_prov_flush(md_prov_session_t *s)
{
    pending_t p = {.flush = true};
    submit(s, &p);
}

void
md_prov_close(md_prov_session_t *s)
{
    pending_t p = {.close = true};
    submit(s, &p);
}

void
md_prov_cancel(md_prov_session_t *s)
{
    pending_t p = {.cancel = true};
    submit(s, &p);
}

bool
md_prov_ended(const md_prov_session_t *s)
{
    return s->ended;
}

const char *
md_prov_engine(const md_prov_session_t *s)
{
    return s->engine;
}

/* ---- the local TTS fallback (flite kal through md_prompt) ---- */

static void
local_input(md_prov_session_t *s, pending_t *p)
{
    if (p->cancel) {
        for (size_t i = 0; i < s->nlocal; i++)
            free(s->local_queue[i]);
        s->nlocal = 0;
        free(s->local_text);
        s->local_text = NULL;
        s->local_close = true;
        s->local_gen++;
    }
    if (p->text) {
        size_t old = s->local_text ? strlen(s->local_text) : 0;
        size_t add = strlen(p->text);
        if (old + add + 2 <= LOCAL_TEXT_MAX) {
            s->local_text = lc_realloc(s->local_text, old + add + 2);
            if (old)
                s->local_text[old++] = ' ';
            memcpy(s->local_text + old, p->text, add + 1);
        }
    }
    if (p->flush && s->local_text) {
        s->local_queue = lc_realloc(s->local_queue, (s->nlocal + 1) * sizeof(char *));
        s->local_queue[s->nlocal++] = s->local_text;
        s->local_text = NULL;
    }
    if (p->close)
        s->local_close = true;
    pending_clear(p);
    local_schedule(s);
}

static void on_timer(uv_timer_t *t);

static void
local_schedule(md_prov_session_t *s)
{
    if (!uv_is_active((uv_handle_t *) &s->timer))
        uv_timer_start(&s->timer, on_timer, 0, 0);
}

/* Speaks one queued text; false when the session went away. */
static bool
local_speak(md_prov_session_t *s, const char *text)
{
    md_prompt_t *prompt = NULL;
    s->local_chars += (uint32_t) strlen(text);
    uint32_t gen = s->local_gen;
    if (md_prompt_create(text, &prompt) == LC_OK) {
        size_t n = 0;
        const int16_t *pcm = md_prompt_pcm(prompt, &n);
        for (size_t off = 0; off < n; off += LOCAL_CHUNK_SAMPLES) {
            size_t chunk = n - off < LOCAL_CHUNK_SAMPLES ? n - off : LOCAL_CHUNK_SAMPLES;
            Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
            ev.type = "audio";
            ev.seq = ++s->seq_in;
            ev.sample_rate = 16000;
            ev.audio.data = (uint8_t *) (pcm + off);
            ev.audio.len = chunk * sizeof(int16_t);
            if (!deliver(s, &ev)) {
                md_prompt_destroy(prompt);
                return false;
            }
            if (s->local_gen != gen) { /* cancelled inside the callback */
                md_prompt_destroy(prompt);
                return true;
            }
        }
        md_prompt_destroy(prompt);
    }
    Voxi__V1__ProviderEvent done = VOXI__V1__PROVIDER_EVENT__INIT;
    done.type = "tts_done";
    done.seq = ++s->seq_in;
    done.text = (char *) text;
    return deliver(s, &done);
}

static void
local_run(md_prov_session_t *s)
{
    while (s->nlocal > 0 && !s->ended) {
        char *text = s->local_queue[0];
        memmove(s->local_queue, s->local_queue + 1, (s->nlocal - 1) * sizeof(char *));
        s->nlocal--;
        bool alive = local_speak(s, text);
        free(text);
        if (!alive)
            return;
    }
    if (s->local_close && !s->ended) {
        Voxi__V1__Usage usage = VOXI__V1__USAGE__INIT;
        usage.tts_characters = s->local_chars;
        Voxi__V1__ProviderEvent done = VOXI__V1__PROVIDER_EVENT__INIT;
        done.type = "done";
        done.seq = ++s->seq_in;
        done.usage = &usage;
        deliver(s, &done);
    }
}

static void
on_timer(uv_timer_t *t)
{
    md_prov_session_t *s = t->data;
    if (s->dead)
        return;
    if (s->failing) {
        s->failing = false;
        deliver_error(s, s->fail_status, "the providers service did not open the session");
        return;
    }
    if (s->local)
        local_run(s);
}

static void
go_local(md_prov_session_t *s)
{
    LC_LOG_RL(LC_LOG_INFO, "prov", 1, "no voxi-providers for tts: speaking with local flite");
    s->local = true;
    snprintf(s->engine, sizeof(s->engine), "local");
    for (size_t i = 0; i < s->npending; i++)
        local_input(s, &s->pending[i]);
    s->npending = 0;
}

/* ---- the open and the events ---- */

static void
fail_later(md_prov_session_t *s, lc_status_t st)
{
    if (strcmp(s->kind, "tts") == 0 &&
        (st == LC_ERR_NO_RESPONDERS || st == LC_ERR_UNAVAILABLE || st == LC_ERR_TIMEOUT)) {
        go_local(s);
        return;
    }
    LC_LOG_RL(LC_LOG_WARN, "prov", 1, "%s session not opened: %s", s->kind, lc_status_name(st));
    s->failing = true;
    s->fail_status = st;
    uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void
on_open_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    md_prov_session_t *s = arg;
    s->requesting = false;
    if (status != LC_OK) {
        fail_later(s, status);
        return;
    }
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                                  &voxi__v1__provider_open_reply__descriptor, &env, &body);
    Voxi__V1__ProviderOpenReply *r = (Voxi__V1__ProviderOpenReply *) body;
    if (st == LC_OK &&
        (r == NULL || r->in_subject[0] == '\0' || strlen(r->in_subject) >= sizeof(s->in_subject) ||
         strlen(r->session_id) >= sizeof(s->session_id)))
        st = LC_ERR_PROTOCOL;
    if (st != LC_OK) {
        if (env && env->error && env->error->message[0])
            LC_WARN("prov", "%s open refused: %s", s->kind, env->error->message);
        lc_pb_free(env, body);
        fail_later(s, st);
        return;
    }
    snprintf(s->in_subject, sizeof(s->in_subject), "%s", r->in_subject);
    snprintf(s->session_id, sizeof(s->session_id), "%s", r->session_id);
    snprintf(s->engine, sizeof(s->engine), "%s", r->engine);
    lc_pb_free(env, body);
    s->opened = true;
    for (size_t i = 0; i < s->npending; i++) {
        send_input(s, &s->pending[i]);
        pending_clear(&s->pending[i]);
    }
    s->npending = 0;
}

static void
on_event_msg(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    md_prov_session_t *s = arg;
    size_t len = lc_nats_msg_len(msg);
    if (len > LC_PB_MAX_MESSAGE_BYTES)
        return;
    Voxi__V1__ProviderEvent *ev =
        voxi__v1__provider_event__unpack(NULL, len, lc_nats_msg_data(msg));
    if (ev == NULL) {
        LC_LOG_RL(LC_LOG_WARN, "prov", 1, "a %s event that is not a ProviderEvent", s->kind);
        return;
    }
    if (ev->seq != s->seq_in + 1)
        LC_LOG_RL(LC_LOG_WARN, "prov", 1, "%s session: event %llu after %llu", s->kind,
                  (unsigned long long) ev->seq, (unsigned long long) s->seq_in);
    if (ev->seq > s->seq_in)
        s->seq_in = ev->seq;
    deliver(s, ev);
    voxi__v1__provider_event__free_unpacked(ev, NULL);
}

lc_status_t
md_prov_open(md_worker_t *w, const char *org_id, Voxi__V1__ProviderOpen *open, md_prov_event_cb cb,
             void *arg, md_prov_session_t **out)
{
    *out = NULL;
    if (strcmp(open->kind, "stt") != 0 && strcmp(open->kind, "llm") != 0 &&
        strcmp(open->kind, "tts") != 0)
        return LC_ERR_INVALID;
    md_prov_session_t *s = LC_NEW(md_prov_session_t);
    s->w = w;
    s->cb = cb;
    s->arg = arg;
    snprintf(s->kind, sizeof(s->kind), "%s", open->kind);
    snprintf(s->call_id, sizeof(s->call_id), "%s", open->call_id);
    uv_timer_init(w->loop, &s->timer);
    uv_unref((uv_handle_t *) &s->timer);
    s->timer.data = s;
    char inst[96];
    snprintf(inst, sizeof(inst), "%s", w->instance_id);
    for (char *c = inst; *c; c++)
        if (*c == '.' || *c == '*' || *c == '>' || *c == ' ')
            *c = '_';
    snprintf(s->out_subject, sizeof(s->out_subject), "voxi.media.prov.%s.%llu", inst,
             (unsigned long long) ++next_session_no);
    open->out_subject = s->out_subject;
    *out = s;

    lc_status_t st = lc_nats_subscribe(w->nats, s->out_subject, NULL, on_event_msg, s, &s->sub);
    if (st != LC_OK) {
        fail_later(s, st);
        return LC_OK;
    }
    char request_id[40];
    lc_id_new("req_", request_id, sizeof(request_id));
    lc_pb_meta_t meta = {.request_id = request_id,
                         .org_id = org_id,
                         .deadline_unix_ms = lc_time_wall_ms() + MD_PROV_OPEN_TIMEOUT_MS};
    uint8_t *buf = NULL;
    size_t len = 0;
    char subject[48];
    snprintf(subject, sizeof(subject), "voxi.providers.%s.open", s->kind);
    st = lc_pb_pack(&meta, (const ProtobufCMessage *) open, &buf, &len);
    if (st == LC_OK)
        st = lc_nats_request(w->nats, subject, buf, len, MD_PROV_OPEN_TIMEOUT_MS, on_open_reply, s,
                             &s->request_id);
    free(buf);
    open->out_subject = (char *) protobuf_c_empty_string;
    if (st != LC_OK)
        fail_later(s, st);
    else
        s->requesting = true;
    return LC_OK;
}

void
md_prov_destroy(md_prov_session_t *s)
{
    if (s == NULL || s->dead)
        return;
    if (s->opened && !s->ended) {
        pending_t p = {.cancel = true};
        send_input(s, &p);
    }
    if (s->requesting)
        lc_nats_request_cancel(s->w->nats, s->request_id);
    if (s->sub)
        lc_nats_unsubscribe(s->w->nats, s->sub);
    s->sub = NULL;
    s->dead = true;
    uv_timer_stop(&s->timer);
    if (s->busy == 0)
        finalize(s);
}
