#include "md_playout.h"

#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

typedef struct segment {
    struct segment *next;
    const int16_t *pcm;
    size_t samples;
    size_t pos;
    void (*release)(void *);
    void *release_arg;
} segment_t;

struct md_playout_stream {
    md_playout_t *p;
    md_playout_io_t io;
    md_playout_stream_t *prev, *next;
    segment_t *head, *tail;
    size_t queued;
    bool echo;
    bool was_playing;
};

struct md_playout {
    uv_loop_t *loop;
    uv_timer_t timer;
    md_playout_stream_t *streams;
    md_playout_stream_t *cursor; /* the next stream of the running tick (survives removal) */
    size_t nstreams;
    uint64_t next_due_ns;
    bool running;
    lc_metric_t *m_ticks, *m_skipped, *m_late, *m_streams;
    int16_t caller[MD_PLAYOUT_FRAME_SAMPLES];
    int16_t out[MD_PLAYOUT_FRAME_SAMPLES];
};

#define FRAME_NS ((uint64_t) MD_PLAYOUT_FRAME_MS * 1000000u)

static void
segment_free(segment_t *seg)
{
    if (seg->release)
        seg->release(seg->release_arg);
    free(seg);
}

/* Fills out from the queue; returns false (out untouched) when the queue is empty. A partly
 * filled frame is padded with silence. */
static bool
take_queued(md_playout_stream_t *st, int16_t *out, size_t samples)
{
    if (st->head == NULL)
        return false;
    size_t filled = 0;
    while (filled < samples && st->head) {
        segment_t *seg = st->head;
        size_t n = seg->samples - seg->pos;
        if (n > samples - filled)
            n = samples - filled;
        memcpy(out + filled, seg->pcm + seg->pos, n * sizeof(int16_t));
        seg->pos += n;
        filled += n;
        st->queued -= n;
        if (seg->pos == seg->samples) {
            st->head = seg->next;
            if (st->head == NULL)
                st->tail = NULL;
            segment_free(seg);
        }
    }
    if (filled < samples)
        memset(out + filled, 0, (samples - filled) * sizeof(int16_t));
    return true;
}

static void
tick_stream(md_playout_t *p, md_playout_stream_t *st, int64_t now_ms)
{
    bool have_caller = st->io.pull(st->io.arg, now_ms, p->caller, MD_PLAYOUT_FRAME_SAMPLES);
    bool playing = take_queued(st, p->out, MD_PLAYOUT_FRAME_SAMPLES);
    const int16_t *out = p->out;
    if (!playing) {
        if (st->echo && have_caller)
            out = p->caller;
        else
            memset(p->out, 0, sizeof(p->out));
    }
    st->io.push(st->io.arg, now_ms, p->caller, out, MD_PLAYOUT_FRAME_SAMPLES, playing);
    if (st->was_playing && !playing && st->io.drained)
        st->io.drained(st->io.arg);
    st->was_playing = playing;
}

static void
run_frame(md_playout_t *p, int64_t now_ms)
{
    lc_metric_inc(p->m_ticks);
    p->cursor = p->streams;
    while (p->cursor) {
        md_playout_stream_t *st = p->cursor;
        p->cursor = st->next;
        tick_stream(p, st, now_ms);
    }
}

static void on_timer(uv_timer_t *t);

/* Arms the timer for the next frame's due time (ms resolution, rounded up: a frame never
 * runs early, and the hrtime bookkeeping keeps the average spacing exact). */
static void
schedule(md_playout_t *p)
{
    uint64_t now = uv_hrtime();
    uint64_t wait_ms = p->next_due_ns > now ? (p->next_due_ns - now + 999999) / 1000000 : 0;
    uv_update_time(p->loop); /* timers count from the loop's cached time */
    uv_timer_start(&p->timer, on_timer, wait_ms, 0);
}

static void
on_timer(uv_timer_t *t)
{
    md_playout_t *p = t->data;
    uint64_t now = uv_hrtime();
    int frames = 0;
    while (p->next_due_ns <= now && frames < MD_PLAYOUT_MAX_CATCHUP) {
        run_frame(p, lc_time_mono_ms());
        p->next_due_ns += FRAME_NS;
        frames++;
    }
    if (frames > 1)
        lc_metric_add(p->m_late, frames - 1);
    if (p->next_due_ns <= now) {
        /* held up too long: skip ahead instead of bursting */
        uint64_t behind = (now - p->next_due_ns) / FRAME_NS + 1;
        lc_metric_add(p->m_skipped, (double) behind);
        LC_LOG_RL(LC_LOG_WARN, "playout", 1, "loop held up: skipped %llu frames",
                  (unsigned long long) behind);
        p->next_due_ns += behind * FRAME_NS;
    }
    if (p->nstreams == 0) {
        p->running = false;
        return;
    }
    schedule(p);
}

lc_status_t
md_playout_create(uv_loop_t *loop, lc_metrics_t *metrics, md_playout_t **out)
{
    md_playout_t *p = LC_NEW(md_playout_t);
    p->loop = loop;
    uv_timer_init(loop, &p->timer);
    uv_unref((uv_handle_t *) &p->timer);
    p->timer.data = p;
    p->m_ticks = lc_metrics_counter(metrics, "voxi_media_playout_ticks_total",
                                    "20 ms playout frames run", NULL);
    p->m_late = lc_metrics_counter(metrics, "voxi_media_playout_late_frames_total",
                                   "frames run late, in a catch-up", NULL);
    p->m_skipped = lc_metrics_counter(metrics, "voxi_media_playout_skipped_frames_total",
                                      "frames skipped because the loop was held up", NULL);
    p->m_streams =
        lc_metrics_gauge(metrics, "voxi_media_playout_streams", "calls on the media clock", NULL);
    *out = p;
    return LC_OK;
}

static void
playout_closed(uv_handle_t *h)
{
    free(h->data);
}

void
md_playout_destroy(md_playout_t *p)
{
    if (p == NULL)
        return;
    while (p->streams)
        md_playout_stream_destroy(p->streams);
    uv_close((uv_handle_t *) &p->timer, playout_closed);
}

size_t
md_playout_stream_count(const md_playout_t *p)
{
    return p->nstreams;
}

md_playout_stream_t *
md_playout_stream_create(md_playout_t *p, const md_playout_io_t *io)
{
    md_playout_stream_t *st = LC_NEW(md_playout_stream_t);
    st->p = p;
    st->io = *io;
    st->next = p->streams;
    if (p->streams)
        p->streams->prev = st;
    p->streams = st;
    p->nstreams++;
    lc_metric_set(p->m_streams, (double) p->nstreams);
    if (!p->running) {
        p->running = true;
        p->next_due_ns = uv_hrtime() + FRAME_NS;
        schedule(p);
    }
    return st;
}

void
md_playout_stream_destroy(md_playout_stream_t *st)
{
    if (st == NULL)
        return;
    md_playout_t *p = st->p;
    if (p->cursor == st)
        p->cursor = st->next;
    if (st->prev)
        st->prev->next = st->next;
    else
        p->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    p->nstreams--;
    lc_metric_set(p->m_streams, (double) p->nstreams);
    md_playout_flush(st);
    free(st);
}

void
md_playout_enqueue(md_playout_stream_t *st, const int16_t *pcm, size_t samples,
                   void (*release)(void *), void *release_arg)
{
    if (samples == 0) {
        if (release)
            release(release_arg);
        return;
    }
    segment_t *seg = LC_NEW(segment_t);
    seg->pcm = pcm;
    seg->samples = samples;
    seg->release = release;
    seg->release_arg = release_arg;
    if (st->tail)
        st->tail->next = seg;
    else
        st->head = seg;
    st->tail = seg;
    st->queued += samples;
}

void
md_playout_enqueue_copy(md_playout_stream_t *st, const int16_t *pcm, size_t samples)
{
    int16_t *copy = lc_malloc(samples * sizeof(int16_t) + 1);
    memcpy(copy, pcm, samples * sizeof(int16_t));
    md_playout_enqueue(st, copy, samples, free, copy);
}

void
md_playout_flush(md_playout_stream_t *st)
{
    segment_t *seg = st->head;
    while (seg) {
        segment_t *next = seg->next;
        segment_free(seg);
        seg = next;
    }
    st->head = st->tail = NULL;
    st->queued = 0;
}

size_t
md_playout_queued_samples(const md_playout_stream_t *st)
{
    return st->queued;
}

void
md_playout_set_echo(md_playout_stream_t *st, bool echo)
{
    st->echo = echo;
}
