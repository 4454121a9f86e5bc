/*
 * STT engine "pocketsphinx" and the decoder pool (pv_stt.h).
 *
 * Modes: with SttConfig.phrases, a JSGF grammar of the phrases (words missing from the
 * dictionary drop their phrase); otherwise the generic en-us language model. The model is
 * 16 kHz: 8 kHz input is upsampled (speexdsp) before decoding.
 *
 * Endpointing: "final" on ProviderInput.flush (the runtime's VAD decides) and also when the
 * decoder's own voice activity detector sees the end of speech; "partial" when asked, each
 * time the hypothesis changes during speech.
 *
 * Input audio queues per session in segments (a flush closes a segment), bounded by
 * VOXI_PROVIDERS_STT_MAX_QUEUED_MS: audio past the bound is dropped and counted. One job at
 * a time per session takes the first segment to a worker thread.
 */
#include <jsgf.h>
#include <sphinxbase/err.h>
#include <pocketsphinx.h>
#include <speex/speex_resampler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "pv_session.h"
#include "pv_stt.h"

#define MODEL_RATE 16000
#define SEGMENTS_MAX 8
#define RESULTS_MAX 16
#define WORDS_MAX 64
#define PHRASES_MAX 100
#define PHRASE_BYTES_MAX 100
#define TEXT_MAX 1024

/* ---- the pool ---- */

struct pv_stt_decoder {
    ps_decoder_t *ps;
    char *default_search;
    bool in_use;
};

struct pv_stt_pool {
    pv_stt_decoder_t *decoders; /* a slot's ps stays NULL until its decoder is loaded */
    size_t n;
    size_t loading;
    size_t failed;
    int64_t start_ms;
    char hmm[1024], lm[1024], dict[1024];
};

typedef struct {
    uv_work_t req;
    pv_stt_pool_t *pool;
    size_t index;
} load_job_t;

/* Worker thread: one decoder into its own slot. */
static void
load_work(uv_work_t *req)
{
    load_job_t *j = req->data;
    pv_stt_pool_t *pool = j->pool;
    cmd_ln_t *config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", pool->hmm, "-lm", pool->lm,
                                   "-dict", pool->dict, NULL);
    ps_decoder_t *ps = config ? ps_init(config) : NULL;
    if (config)
        cmd_ln_free_r(config); /* the decoder keeps its own reference */
    pool->decoders[j->index].ps = ps;
}

static void
load_after(uv_work_t *req, int status)
{
    (void) status;
    load_job_t *j = req->data;
    pv_stt_pool_t *pool = j->pool;
    pool->loading--;
    if (pool->decoders[j->index].ps == NULL) {
        pool->failed++;
        LC_ERROR("stt", "pocketsphinx: decoder %zu could not be created from %s", j->index,
                 pool->hmm);
    }
    if (pool->loading == 0)
        LC_INFO("stt", "pocketsphinx: %zu of %zu decoders ready in %lld ms", pool->n - pool->failed,
                pool->n, (long long) (lc_time_mono_ms() - pool->start_ms));
    free(j);
}

lc_status_t
pv_stt_pool_create(uv_loop_t *loop, const char *model_dir, size_t n, pv_stt_pool_t **out)
{
    *out = NULL;
    pv_stt_pool_t *pool = LC_NEW(pv_stt_pool_t);
    snprintf(pool->hmm, sizeof(pool->hmm), "%s/en-us", model_dir);
    snprintf(pool->lm, sizeof(pool->lm), "%s/en-us.lm.bin", model_dir);
    snprintf(pool->dict, sizeof(pool->dict), "%s/cmudict-en-us.dict", model_dir);
    if (access(pool->hmm, R_OK) != 0 || access(pool->lm, R_OK) != 0 ||
        access(pool->dict, R_OK) != 0) {
        free(pool);
        return LC_ERR_CONFIG;
    }
    /* pocketsphinx logs to stderr by default; off once here, not per decoder (-logfn would
     * set the library's one global log file from several threads) */
    err_set_logfp(NULL);
    pool->decoders = lc_calloc(n, sizeof(pv_stt_decoder_t));
    pool->n = n;
    pool->start_ms = lc_time_mono_ms();
    for (size_t i = 0; i < n; i++) {
        /* the generic LM search; ps_get_search() would name it but leaks an iterator in
         * 5prealpha */
        pool->decoders[i].default_search = lc_strdup("_default");
        load_job_t *j = LC_NEW(load_job_t);
        j->req.data = j;
        j->pool = pool;
        j->index = i;
        pool->loading++;
        if (uv_queue_work(loop, &j->req, load_work, load_after) != 0) {
            pool->loading--;
            pool->failed++;
            free(j);
        }
    }
    *out = pool;
    return LC_OK;
}

bool
pv_stt_pool_loading(const pv_stt_pool_t *pool)
{
    return pool && pool->loading > 0;
}

void
pv_stt_pool_destroy(pv_stt_pool_t *pool)
{
    if (pool == NULL)
        return;
    for (size_t i = 0; i < pool->n; i++) {
        if (pool->decoders[i].ps)
            ps_free(pool->decoders[i].ps);
        free(pool->decoders[i].default_search);
    }
    free(pool->decoders);
    free(pool);
}

size_t
pv_stt_pool_free_count(const pv_stt_pool_t *pool)
{
    size_t n = 0;
    for (size_t i = 0; pool && i < pool->n; i++)
        n += pool->decoders[i].ps && !pool->decoders[i].in_use;
    return n;
}

pv_stt_decoder_t *
pv_stt_acquire(pv_stt_pool_t *pool)
{
    for (size_t i = 0; pool && i < pool->n; i++) {
        if (pool->decoders[i].ps && !pool->decoders[i].in_use) {
            pool->decoders[i].in_use = true;
            return &pool->decoders[i];
        }
    }
    return NULL;
}

void
pv_stt_release(pv_stt_pool_t *pool, pv_stt_decoder_t *d)
{
    (void) pool;
    if (d)
        d->in_use = false;
}

void *
pv_stt_decoder_ps(pv_stt_decoder_t *d)
{
    return d->ps;
}

const char *
pv_stt_decoder_default_search(pv_stt_decoder_t *d)
{
    return d->default_search;
}

/* ---- the engine ---- */

typedef struct {
    int16_t *pcm; /* 16 kHz */
    size_t len, cap;
    bool flush;
} segment_t;

typedef struct {
    bool final; /* else partial */
    char *text;
    uint32_t start_ms, end_ms;
    Voxi__V1__SttWord words[WORDS_MAX];
    char *word_text[WORDS_MAX];
    size_t nwords;
} result_t;

typedef struct stt_job stt_job_t;

typedef struct {
    pv_session_t *s;
    pv_stt_decoder_t *dec;
    uint32_t in_rate;
    bool partials;
    SpeexResamplerState *rs;
    segment_t seg[SEGMENTS_MAX];
    size_t nseg;
    size_t queued_samples, max_queued_samples;
    stt_job_t *job;
    uint64_t generation;
    /* decoder-side state, touched by the job in flight only */
    bool utt_started;
    bool speech;
    uint64_t samples;      /* 16 kHz samples decoded since the first audio */
    uint64_t utt_base;     /* samples at ps_start_utt */
    uint64_t speech_start; /* samples when speech was detected */
    uint64_t since_final;  /* samples decoded since the last final */
    char last_partial[TEXT_MAX];
} ps_stt_t;

struct stt_job {
    uv_work_t req;
    pv_session_t *s;
    ps_stt_t *st;
    uint64_t generation;
    segment_t seg;
    result_t results[RESULTS_MAX];
    size_t nresults;
};

static void
clean_word(const char *in, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s", in);
    char *paren = strchr(out, '(');
    if (paren && paren != out)
        *paren = '\0';
}

static bool
filler(const char *w)
{
    return w[0] == '<' || w[0] == '[' || strcmp(w, "(NULL)") == 0;
}

/* Ends the utterance and records a final (worker thread). */
static void
finish_utt(stt_job_t *j, bool forced)
{
    ps_stt_t *st = j->st;
    ps_decoder_t *ps = pv_stt_decoder_ps(st->dec);
    if (!st->utt_started) {
        ps_start_utt(ps);
        st->utt_base = st->samples;
    }
    ps_end_utt(ps);
    st->utt_started = false;
    if (j->nresults >= RESULTS_MAX)
        return;
    int32 score = 0;
    const char *hyp = ps_get_hyp(ps, &score);
    if (!forced && (hyp == NULL || hyp[0] == '\0')) {
        st->speech = false;
        return; /* the decoder's endpoint with nothing recognised: no final */
    }
    result_t *r = &j->results[j->nresults++];
    memset(r, 0, sizeof(*r));
    r->final = true;
    r->text = lc_strndup(hyp ? hyp : "", TEXT_MAX);
    /* Segment frames of pocketsphinx 5prealpha keep counting across the utterances of a
     * decoder (the first segment, <s>, starts the utterance); ps_get_n_frames is this
     * utterance's count, which ends where the audio fed so far ends. */
    int nframes = ps_get_n_frames(ps);
    int first_frame = -1;
    for (ps_seg_t *seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
        int sf = 0, ef = 0;
        ps_seg_frames(seg, &sf, &ef);
        if (first_frame < 0 || sf < first_frame)
            first_frame = sf;
    }
    if (first_frame < 0)
        first_frame = 0;
    uint64_t end_ms = st->samples * 1000 / MODEL_RATE;
    uint64_t utt_ms = (uint64_t) (nframes > 0 ? nframes : 0) * 10;
    uint32_t base_ms = (uint32_t) (end_ms > utt_ms ? end_ms - utt_ms : 0);
    logmath_t *lmath = ps_get_logmath(ps);
    for (ps_seg_t *seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
        const char *w = ps_seg_word(seg);
        if (w == NULL || filler(w))
            continue;
        if (r->nwords >= WORDS_MAX) {
            ps_seg_free(seg);
            break;
        }
        int sf = 0, ef = 0;
        ps_seg_frames(seg, &sf, &ef);
        int32 ascr, lscr, lback;
        int32 prob = ps_seg_prob(seg, &ascr, &lscr, &lback);
        char clean[128];
        clean_word(w, clean, sizeof(clean));
        Voxi__V1__SttWord *sw = &r->words[r->nwords];
        voxi__v1__stt_word__init(sw);
        r->word_text[r->nwords] = lc_strdup(clean);
        sw->word = r->word_text[r->nwords];
        sf = sf > first_frame ? sf - first_frame : 0;
        ef = ef >= first_frame ? ef - first_frame + 1 : 0;
        sw->start_ms = base_ms + (uint32_t) sf * 10;
        sw->end_ms = base_ms + (uint32_t) ef * 10;
        double conf = logmath_exp(lmath, prob);
        sw->confidence = (float) (conf > 1.0 ? 1.0 : conf < 0 ? 0 : conf);
        r->nwords++;
    }
    if (r->nwords > 0) {
        r->start_ms = r->words[0].start_ms;
        r->end_ms = r->words[r->nwords - 1].end_ms;
    } else {
        r->start_ms =
            (uint32_t) ((st->speech ? st->speech_start : st->utt_base) * 1000 / MODEL_RATE);
        r->end_ms = (uint32_t) (st->samples * 1000 / MODEL_RATE);
    }
    st->speech = false;
    st->last_partial[0] = '\0';
    st->since_final = 0;
}

static void
job_work(uv_work_t *req)
{
    stt_job_t *j = req->data;
    ps_stt_t *st = j->st;
    ps_decoder_t *ps = pv_stt_decoder_ps(st->dec);
    const size_t piece = MODEL_RATE / 10;
    for (size_t off = 0; off < j->seg.len; off += piece) {
        size_t n = j->seg.len - off < piece ? j->seg.len - off : piece;
        if (!st->utt_started) {
            ps_start_utt(ps);
            st->utt_started = true;
            st->utt_base = st->samples;
        }
        ps_process_raw(ps, j->seg.pcm + off, n, FALSE, FALSE);
        st->samples += n;
        st->since_final += n;
        bool in_speech = ps_get_in_speech(ps) != 0;
        if (in_speech && !st->speech) {
            st->speech = true;
            st->speech_start = st->samples - n;
        } else if (!in_speech && st->speech) {
            finish_utt(j, false); /* the decoder's own endpoint */
        }
        if (st->partials && st->speech && st->utt_started && j->nresults < RESULTS_MAX - 1) {
            int32 score;
            const char *hyp = ps_get_hyp(ps, &score);
            if (hyp && hyp[0] && strcmp(hyp, st->last_partial) != 0) {
                snprintf(st->last_partial, sizeof(st->last_partial), "%s", hyp);
                result_t *r = &j->results[j->nresults++];
                memset(r, 0, sizeof(*r));
                r->text = lc_strndup(hyp, TEXT_MAX);
            }
        }
    }
    if (j->seg.flush)
        finish_utt(j, true);
}

static void start_next(ps_stt_t *st);

static void
results_free(stt_job_t *j)
{
    for (size_t i = 0; i < j->nresults; i++) {
        free(j->results[i].text);
        for (size_t w = 0; w < j->results[i].nwords; w++)
            free(j->results[i].word_text[w]);
    }
}

static void
job_after(uv_work_t *req, int status)
{
    (void) status;
    stt_job_t *j = req->data;
    pv_session_t *s = j->s;
    ps_stt_t *st = j->st;
    st->job = NULL;
    if (!pv_session_ended(s) && j->generation == st->generation) {
        for (size_t i = 0; i < j->nresults; i++) {
            result_t *r = &j->results[i];
            Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
            Voxi__V1__SttWord *wp[WORDS_MAX];
            ev.type = r->final ? "final" : "partial";
            ev.text = r->text;
            if (r->final) {
                for (size_t w = 0; w < r->nwords; w++)
                    wp[w] = &r->words[w];
                ev.words = wp;
                ev.n_words = r->nwords;
                ev.utterance_start_ms = r->start_ms;
                ev.utterance_end_ms = r->end_ms;
            }
            pv_session_emit(s, &ev);
        }
        start_next(st);
    }
    results_free(j);
    free(j->seg.pcm);
    free(j);
    pv_session_unref(s);
}

static void
start_next(ps_stt_t *st)
{
    pv_session_t *s = st->s;
    if (st->job || pv_session_ended(s))
        return;
    if (st->nseg == 0) {
        if (s->closing) {
            if (st->since_final > 0 && st->utt_started) {
                /* finish the last utterance before "done" */
                st->seg[0] = (segment_t){.flush = true};
                st->nseg = 1;
            } else {
                pv_session_done(s, NULL);
                return;
            }
        } else {
            return;
        }
    }
    stt_job_t *j = LC_NEW(stt_job_t);
    j->req.data = j;
    j->s = s;
    j->st = st;
    j->generation = st->generation;
    j->seg = st->seg[0];
    memmove(&st->seg[0], &st->seg[1], (st->nseg - 1) * sizeof(segment_t));
    st->nseg--;
    st->queued_samples -= j->seg.len;
    pv_session_ref(s);
    st->job = j;
    if (uv_queue_work(s->ps->loop, &j->req, job_work, job_after) != 0) {
        st->job = NULL;
        free(j->seg.pcm);
        free(j);
        pv_session_unref(s);
        pv_session_fail(s, LC_ERR_INTERNAL, "could not queue the decoding");
    }
}

/* Lower-case words of the dictionary only; false when nothing is left. */
static bool
phrase_clean(ps_decoder_t *ps, const char *in, char *out, size_t out_size)
{
    size_t n = 0;
    char word[PHRASE_BYTES_MAX + 1];
    size_t wn = 0;
    bool ok = true;
    for (const char *p = in;; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char) (c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || c == '\'') {
            if (wn < PHRASE_BYTES_MAX)
                word[wn++] = c;
            continue;
        }
        if (wn > 0) {
            word[wn] = '\0';
            char *pron = ps_lookup_word(ps, word);
            if (pron == NULL)
                ok = false;
            ckd_free(pron);
            if (n + wn + 2 < out_size) {
                if (n > 0)
                    out[n++] = ' ';
                memcpy(out + n, word, wn);
                n += wn;
            }
            wn = 0;
        }
        if (c == '\0')
            break;
    }
    out[n] = '\0';
    return ok && n > 0;
}

/* ps_set_jsgf_string() of 5prealpha leaks the parsed grammar: the same steps, with the free. */
static int
set_grammar(ps_decoder_t *ps, const char *text)
{
    jsgf_t *g = jsgf_parse_string(text, NULL);
    if (g == NULL)
        return -1;
    int rc = -1;
    jsgf_rule_t *rule = jsgf_get_public_rule(g);
    if (rule) {
        float32 lw = cmd_ln_float32_r(ps_get_config(ps), "-lw");
        fsg_model_t *fsg = jsgf_build_fsg(g, rule, ps_get_logmath(ps), lw);
        if (fsg) {
            rc = ps_set_fsg(ps, "voxi_grammar", fsg);
            fsg_model_free(fsg);
        }
    }
    jsgf_grammar_free(g);
    return rc;
}

static lc_status_t
stt_open(pv_session_t *s, const Voxi__V1__ProviderOpen *open, char *err, size_t err_size)
{
    const Voxi__V1__SttConfig *c = open->stt;
    uint32_t rate = c && c->sample_rate ? c->sample_rate : 16000;
    if (rate != 16000 && rate != 8000) {
        snprintf(err, err_size, "stt.sample_rate must be 8000 or 16000 for pocketsphinx");
        return LC_ERR_INVALID;
    }
    if (c && c->n_phrases > PHRASES_MAX) {
        snprintf(err, err_size, "at most %d phrases", PHRASES_MAX);
        return LC_ERR_INVALID;
    }
    pv_stt_decoder_t *dec = pv_stt_acquire(s->ps->stt_pool);
    if (dec == NULL) {
        if (pv_stt_pool_loading(s->ps->stt_pool))
            snprintf(err, err_size, "the pocketsphinx decoders are still loading");
        else
            snprintf(err, err_size, "all %lld pocketsphinx decoders are in use",
                     (long long) s->ps->cfg->stt_decoders);
        return LC_ERR_UNAVAILABLE;
    }
    ps_stt_t *st = LC_NEW(ps_stt_t);
    st->s = s;
    st->dec = dec;
    st->in_rate = rate;
    st->partials = c && c->partials;
    st->max_queued_samples = (size_t) (s->ps->cfg->stt_max_queued_ms * MODEL_RATE / 1000);
    s->engine_state = st;
    if (rate != MODEL_RATE) {
        int e = 0;
        st->rs = speex_resampler_init(1, rate, MODEL_RATE, 5, &e);
        speex_resampler_skip_zeros(st->rs);
    }
    ps_decoder_t *ps = pv_stt_decoder_ps(dec);
    /* a grammar of the phrases when there are any, else the generic language model */
    size_t cap = 64 + (c ? c->n_phrases : 0) * (PHRASE_BYTES_MAX + 4);
    char *jsgf = lc_malloc(cap);
    size_t used = (size_t) snprintf(jsgf, cap, "#JSGF V1.0;\ngrammar voxi;\npublic <s> = ");
    size_t good = 0;
    for (size_t i = 0; c && i < c->n_phrases; i++) {
        char clean[PHRASE_BYTES_MAX * 2];
        if (strlen(c->phrases[i]) > PHRASE_BYTES_MAX ||
            !phrase_clean(ps, c->phrases[i], clean, sizeof(clean))) {
            LC_INFO("stt", "session %s: phrase \"%.40s\" dropped (words outside the dictionary)",
                    s->id, c->phrases[i]);
            continue;
        }
        used += (size_t) snprintf(jsgf + used, cap - used, "%s%s", good ? " | " : "", clean);
        good++;
    }
    snprintf(jsgf + used, cap - used, ";\n");
    lc_status_t result = LC_OK;
    if (good > 0) {
        if (set_grammar(ps, jsgf) != 0 || ps_set_search(ps, "voxi_grammar") != 0) {
            snprintf(err, err_size, "the phrases could not be compiled into a grammar");
            result = LC_ERR_INVALID;
        }
    } else {
        ps_set_search(ps, pv_stt_decoder_default_search(dec));
    }
    free(jsgf);
    return result;
}

static void
stt_input(pv_session_t *s, const Voxi__V1__ProviderInput *in)
{
    ps_stt_t *st = s->engine_state;
    if (in->audio.len >= 2) {
        size_t n_in = in->audio.len / 2;
        pv_session_meter_stt(s, (double) n_in / st->in_rate);
        size_t n_out = st->rs ? n_in * MODEL_RATE / st->in_rate + 16 : n_in;
        if (st->queued_samples + n_out > st->max_queued_samples ||
            (st->nseg == SEGMENTS_MAX && st->seg[st->nseg - 1].flush)) {
            lc_metric_inc(s->ps->m.input_dropped);
            LC_LOG_RL(LC_LOG_WARN, "stt", 2, "session %s: decoding behind, audio dropped", s->id);
        } else {
            if (st->nseg == 0 || st->seg[st->nseg - 1].flush)
                st->seg[st->nseg++] = (segment_t){0};
            segment_t *g = &st->seg[st->nseg - 1];
            if (g->len + n_out > g->cap) {
                g->cap = (g->len + n_out) * 2;
                g->pcm = lc_realloc(g->pcm, g->cap * sizeof(int16_t));
            }
            /* protobuf bytes are not aligned for int16: copy first */
            int16_t *tmp = lc_malloc(n_in * sizeof(int16_t));
            memcpy(tmp, in->audio.data, n_in * sizeof(int16_t));
            if (st->rs) {
                spx_uint32_t il = (spx_uint32_t) n_in, ol = (spx_uint32_t) n_out;
                speex_resampler_process_int(st->rs, 0, tmp, &il, g->pcm + g->len, &ol);
                n_out = ol;
            } else {
                memcpy(g->pcm + g->len, tmp, n_in * sizeof(int16_t));
            }
            free(tmp);
            g->len += n_out;
            st->queued_samples += n_out;
        }
    }
    if (in->flush) {
        if (st->nseg == 0 || st->seg[st->nseg - 1].flush) {
            if (st->nseg == SEGMENTS_MAX) {
                LC_LOG_RL(LC_LOG_WARN, "stt", 2, "session %s: too many flushes queued", s->id);
                return;
            }
            st->seg[st->nseg++] = (segment_t){0};
        }
        st->seg[st->nseg - 1].flush = true;
    }
    start_next(st);
}

static void
stt_close(pv_session_t *s)
{
    start_next(s->engine_state);
}

static void
drop_segments(ps_stt_t *st)
{
    for (size_t i = 0; i < st->nseg; i++)
        free(st->seg[i].pcm);
    st->nseg = 0;
    st->queued_samples = 0;
}

static void
stt_cancel(pv_session_t *s)
{
    ps_stt_t *st = s->engine_state;
    drop_segments(st);
    st->generation++;
}

static void
stt_destroy(pv_session_t *s)
{
    ps_stt_t *st = s->engine_state;
    if (st == NULL)
        return;
    drop_segments(st);
    if (st->utt_started)
        ps_end_utt(pv_stt_decoder_ps(st->dec));
    pv_stt_release(s->ps->stt_pool, st->dec);
    if (st->rs)
        speex_resampler_destroy(st->rs);
    free(st);
    s->engine_state = NULL;
}

const pv_engine_t pv_engine_stt_pocketsphinx = {
    .name = "pocketsphinx",
    .kind = PV_KIND_STT,
    .open = stt_open,
    .input = stt_input,
    .close = stt_close,
    .cancel = stt_cancel,
    .destroy = stt_destroy,
};
