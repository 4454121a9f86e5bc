/*
 * md_jitter: adaptive jitter buffer. See md_jitter.h.
 *
 * Frames live in a ring of slots indexed by sequence number (seq & (nslots - 1)); the ring
 * holds at least max_delay / ptime + 1 slots and the buffered span (head .. top) never
 * exceeds max_delay / ptime frames, so two live frames never share a slot, also across the
 * 65535 -> 0 wrap.
 *
 * Playout (md_jitter_get, once per ptime):
 *   - buffering: nothing is returned (EMPTY) until the buffered span reaches the target
 *     delay, or the first buffered frame has waited that long;
 *   - playing: the frame at `head` is returned (FRAME) and head advances. If it is missing
 *     while later frames are buffered it is lost: MISSING, and head advances. If nothing at
 *     all is buffered the packet is late, not lost: MISSING without advancing, which
 *     stretches playout by one frame (the delay grows exactly when the network needs it);
 *   - when nothing arrived for max(3 frames, target) the stream is idle (silence
 *     suppression, hold, end of stream): EMPTY, and the next packet starts buffering again
 *     at the current target, which is where the delay adapts at talkspurt boundaries;
 *   - when the buffered span stays two frames above the target for SHRINK_HOLD_MS, one frame
 *     is dropped (at most one per SHRINK_HOLD_MS: the delay shrinks slowly).
 *
 * The target: one frame plus the larger of the peak relative delay (how much later than the
 * fastest packet a packet arrives; rises at once, decays by PEAK_DECAY_MS_PER_S) and three
 * times the RFC 3550 A.8 interarrival jitter, rounded up to whole frames, between
 * min_delay_ms and max_delay_ms; target_max_ms during the first WARMUP_PACKETS packets.
 */
#include "md_jitter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "md_rtp.h"

/* RFC 3550 appendix A.1: a jump larger than these is a restarted sender, not reordering. */
#define MAX_DROPOUT 3000
#define MAX_MISORDER 100
/* A change of transit time (arrival minus RTP time) this large is a timestamp jump. */
#define TS_JUMP_MS 1000.0
/* Recent playout history, for telling late packets from duplicates. */
#define HISTORY_BITS 64
#define PEAK_DECAY_MS_PER_S 20.0
/* How fast the fastest-transit reference may rise (sender clock slower than ours). */
#define MIN_TRANSIT_CREEP_MS_PER_S 1.0
#define SHRINK_HOLD_MS 500
#define IDLE_FRAMES 3
#define WARMUP_PACKETS 50

typedef struct {
    bool used;
    uint16_t seq;
    size_t len;
    uint8_t *data; /* MD_JITTER_MAX_PAYLOAD_BYTES in the pool */
} slot_t;

struct md_jitter {
    md_jitter_opts_t o;
    int max_frames;
    unsigned nslots;
    slot_t *slots;
    uint8_t *pool;
    uint8_t out[MD_JITTER_MAX_PAYLOAD_BYTES];
    uint8_t next_out[MD_JITTER_MAX_PAYLOAD_BYTES];

    bool started; /* a packet of the current SSRC arrived */
    uint32_t ssrc;
    bool playing;
    bool played_any;   /* playout started since the last reset: play_seq is meaningful */
    uint16_t play_seq; /* the seq after the last frame played or skipped */
    uint16_t head;     /* next seq to play (== play_seq while playing) */
    uint16_t top;      /* highest buffered seq (count > 0) */
    unsigned count;
    uint64_t history; /* bit i: seq play_seq - 1 - i was received */
    int64_t last_arrival_ms;
    int64_t buffering_since_ms;
    int shrink_ticks;

    /* estimators */
    bool have_est;
    uint64_t est_packets;
    uint32_t last_ts;
    int64_t ext_ts; /* unwrapped RTP timestamp of the last packet */
    double last_transit_ms;
    double min_transit_ms;
    double peak_delay_ms;
    double jitter_ms;
    int target_ms;

    md_jitter_stats_t stats;
};

static int
default_int(int v, int def)
{
    return v == 0 ? def : v;
}

lc_status_t
md_jitter_create(const md_jitter_opts_t *opts, md_jitter_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    *out = NULL;
    md_jitter_opts_t o = {0};
    if (opts != NULL)
        o = *opts;
    o.ptime_ms = default_int(o.ptime_ms, 20);
    o.rtp_clock_hz = default_int(o.rtp_clock_hz, 8000);
    o.min_delay_ms = default_int(o.min_delay_ms, 20);
    o.target_max_ms = default_int(o.target_max_ms, 40);
    o.max_delay_ms = default_int(o.max_delay_ms, 200);
    if (o.ptime_ms < 10 || o.ptime_ms > 120 || o.rtp_clock_hz < 1000 || o.rtp_clock_hz > 192000 ||
        o.min_delay_ms < 0 || o.min_delay_ms > o.target_max_ms ||
        o.target_max_ms > o.max_delay_ms || o.max_delay_ms < o.ptime_ms || o.max_delay_ms > 2000)
        return LC_ERR_INVALID;

    md_jitter_t *jb = LC_NEW(md_jitter_t);
    jb->o = o;
    jb->max_frames = o.max_delay_ms / o.ptime_ms;
    jb->nslots = 1;
    while (jb->nslots < (unsigned) jb->max_frames + 1)
        jb->nslots <<= 1;
    jb->slots = lc_calloc(jb->nslots, sizeof(slot_t));
    jb->pool = lc_malloc((size_t) jb->nslots * MD_JITTER_MAX_PAYLOAD_BYTES);
    for (unsigned i = 0; i < jb->nslots; i++)
        jb->slots[i].data = jb->pool + (size_t) i * MD_JITTER_MAX_PAYLOAD_BYTES;
    jb->target_ms = o.target_max_ms;
    *out = jb;
    return LC_OK;
}

void
md_jitter_destroy(md_jitter_t *jb)
{
    if (jb == NULL)
        return;
    free(jb->pool);
    free(jb->slots);
    free(jb);
}

static slot_t *
slot_of(md_jitter_t *jb, uint16_t seq)
{
    return &jb->slots[seq & (jb->nslots - 1)];
}

static slot_t *
find(md_jitter_t *jb, uint16_t seq)
{
    slot_t *s = slot_of(jb, seq);
    return s->used && s->seq == seq ? s : NULL;
}

static void
history_shift(md_jitter_t *jb, int n, bool received)
{
    if (n <= 0)
        return;
    if (n >= HISTORY_BITS) {
        jb->history = received ? ~(uint64_t) 0 : 0;
        return;
    }
    jb->history <<= n;
    if (received)
        jb->history |= ((uint64_t) 1 << n) - 1;
}

static void
remove_slot(md_jitter_t *jb, slot_t *s)
{
    s->used = false;
    jb->count--;
}

static void
flush(md_jitter_t *jb)
{
    for (unsigned i = 0; i < jb->nslots; i++)
        jb->slots[i].used = false;
    jb->count = 0;
}

static void
reset_estimators(md_jitter_t *jb)
{
    jb->have_est = false;
    jb->est_packets = 0;
    jb->peak_delay_ms = 0;
    jb->jitter_ms = 0;
    jb->target_ms = jb->o.target_max_ms;
}

/* Forgets the stream (a new SSRC, or a sequence jump RFC 3550 A.1 calls a restart): what is
 * buffered is discarded and playout starts over from the next packet. */
static void
restart(md_jitter_t *jb, uint32_t ssrc)
{
    if (jb->started)
        jb->stats.resets++;
    flush(jb);
    jb->started = true;
    jb->ssrc = ssrc;
    jb->playing = false;
    jb->played_any = false;
    jb->history = 0;
    jb->shrink_ticks = 0;
    reset_estimators(jb);
}

static void
update_target(md_jitter_t *jb)
{
    double ptime = jb->o.ptime_ms;
    double spread = fmax(jb->peak_delay_ms, 3.0 * jb->jitter_ms);
    /* Half a millisecond of slack so float noise on a perfect stream stays at one frame. */
    double frames = ceil((ptime + spread - 0.5) / ptime);
    int t = (int) fmin(frames * ptime, (double) jb->o.max_delay_ms);
    if (t < jb->o.min_delay_ms)
        t = jb->o.min_delay_ms;
    if (jb->est_packets < WARMUP_PACKETS && t < jb->o.target_max_ms)
        t = jb->o.target_max_ms;
    jb->target_ms = t;
}

/* Transit time of this packet in ms (arrival minus RTP time, offset by an arbitrary
 * constant), with the RTP timestamp unwrapped against the previous packet. */
static double
transit_ms(md_jitter_t *jb, uint32_t timestamp, int64_t arrival_ms, int64_t *ext_ts_out)
{
    int64_t ext = jb->have_est ? jb->ext_ts + (int32_t) (timestamp - jb->last_ts) : 0;
    *ext_ts_out = ext;
    return (double) arrival_ms - (double) ext * 1000.0 / jb->o.rtp_clock_hz;
}

static void
update_estimators(md_jitter_t *jb, uint32_t timestamp, double transit, int64_t ext_ts)
{
    double per_packet_s = jb->o.ptime_ms / 1000.0;
    if (!jb->have_est) {
        jb->have_est = true;
        jb->min_transit_ms = transit;
    } else {
        /* RFC 3550 A.8: J += (|D(i-1,i)| - J) / 16 */
        double d = fabs(transit - jb->last_transit_ms);
        jb->jitter_ms += (d - jb->jitter_ms) / 16.0;
        jb->min_transit_ms =
            fmin(transit, jb->min_transit_ms + MIN_TRANSIT_CREEP_MS_PER_S * per_packet_s);
    }
    jb->last_ts = timestamp;
    jb->ext_ts = ext_ts;
    jb->last_transit_ms = transit;
    jb->est_packets++;
    double delay = transit - jb->min_transit_ms;
    if (delay > jb->peak_delay_ms)
        jb->peak_delay_ms = delay;
    else
        jb->peak_delay_ms = fmax(delay, jb->peak_delay_ms - PEAK_DECAY_MS_PER_S * per_packet_s);
    update_target(jb);
}

/* While playing: moves head (and play_seq) forward to new_head, dropping what is buffered
 * before it (overflow) and counting what never came (lost). */
static void
advance_playing(md_jitter_t *jb, uint16_t new_head)
{
    int n = md_rtp_seq_diff(new_head, jb->head);
    int i = 0;
    for (; i < n && jb->count > 0; i++) {
        slot_t *s = find(jb, (uint16_t) (jb->head + i));
        if (s != NULL) {
            remove_slot(jb, s);
            jb->stats.overflow++;
            history_shift(jb, 1, true);
        } else {
            jb->stats.lost++;
            history_shift(jb, 1, false);
        }
    }
    if (n > i) {
        jb->stats.lost += (uint64_t) (n - i);
        history_shift(jb, n - i, false);
    }
    jb->head = new_head;
    jb->play_seq = new_head;
}

/* While buffering: drops buffered frames before new_head (overflow); head becomes the
 * lowest remaining one, or new_head. */
static void
advance_buffering(md_jitter_t *jb, uint16_t new_head)
{
    int n = md_rtp_seq_diff(new_head, jb->head);
    for (int i = 0; i < n && jb->count > 0; i++) {
        slot_t *s = find(jb, (uint16_t) (jb->head + i));
        if (s != NULL) {
            remove_slot(jb, s);
            jb->stats.overflow++;
        }
    }
    jb->head = new_head;
    for (int i = 0; jb->count > 0 && i < jb->max_frames; i++) {
        if (find(jb, (uint16_t) (new_head + i)) != NULL) {
            jb->head = (uint16_t) (new_head + i);
            break;
        }
    }
}

static void
store(md_jitter_t *jb, uint16_t seq, const uint8_t *payload, size_t len)
{
    slot_t *s = slot_of(jb, seq);
    if (s->used) {
        if (s->seq == seq) {
            jb->stats.duplicate++;
            return;
        }
        /* Cannot happen while the span stays within max_frames; keep the newer frame. */
        remove_slot(jb, s);
        jb->stats.overflow++;
    }
    s->used = true;
    s->seq = seq;
    s->len = len;
    if (len > 0)
        memcpy(s->data, payload, len);
    if (jb->count == 0 || md_rtp_seq_diff(seq, jb->top) > 0)
        jb->top = seq;
    jb->count++;
}

void
md_jitter_put(md_jitter_t *jb, uint16_t seq, uint32_t timestamp, uint32_t ssrc, bool marker,
              const uint8_t *payload, size_t len, int64_t arrival_ms)
{
    (void) marker; /* talkspurt starts are found from arrival gaps, which also cover loss */
    if (jb == NULL)
        return;
    jb->stats.received++;
    if (len > MD_JITTER_MAX_PAYLOAD_BYTES || (len > 0 && payload == NULL)) {
        jb->stats.invalid++;
        return;
    }
    if (!jb->started || ssrc != jb->ssrc)
        restart(jb, ssrc);

    /* Jumps that reset: RFC 3550 A.1 sequence bounds, and a transit time that moved by more
     * than any network delay could (the sender's timestamps restarted). */
    int64_t ext_ts = 0;
    double transit = transit_ms(jb, timestamp, arrival_ms, &ext_ts);
    if (jb->played_any) {
        int dp = md_rtp_seq_diff(seq, jb->play_seq);
        if (dp > MAX_DROPOUT || dp < -MAX_MISORDER)
            restart(jb, ssrc);
    }
    if (jb->have_est && fabs(transit - jb->last_transit_ms) > TS_JUMP_MS) {
        /* The timestamps jumped while the sequence went on (a source switched behind the
         * same SSRC): playout is by sequence number and carries on; the timing estimates
         * start over. */
        jb->stats.resets++;
        reset_estimators(jb);
    }
    if (!jb->have_est)
        transit = transit_ms(jb, timestamp, arrival_ms, &ext_ts);
    update_estimators(jb, timestamp, transit, ext_ts);
    jb->last_arrival_ms = arrival_ms;

    if (jb->played_any) {
        int dp = md_rtp_seq_diff(seq, jb->play_seq);
        if (dp < 0) {
            /* Playout already passed it. */
            int back = -dp;
            if (back <= HISTORY_BITS && (jb->history >> (back - 1)) & 1) {
                jb->stats.duplicate++;
            } else {
                jb->stats.late++;
                if (back <= HISTORY_BITS)
                    jb->history |= (uint64_t) 1 << (back - 1);
            }
            return;
        }
    }

    if (jb->playing) {
        int d = md_rtp_seq_diff(seq, jb->head); /* >= 0: head == play_seq */
        if (d >= jb->max_frames)
            advance_playing(jb, (uint16_t) (seq - jb->max_frames + 1));
        store(jb, seq, payload, len);
        return;
    }

    /* Buffering. */
    if (jb->count == 0) {
        jb->head = seq;
        jb->buffering_since_ms = arrival_ms;
        store(jb, seq, payload, len);
        return;
    }
    int d = md_rtp_seq_diff(seq, jb->head);
    if (d < 0) {
        if (md_rtp_seq_diff(jb->top, seq) + 1 > jb->max_frames || -d > MAX_MISORDER) {
            jb->stats.overflow++; /* too early to fit beside what is buffered */
            return;
        }
        jb->head = seq;
    } else if (d >= jb->max_frames) {
        advance_buffering(jb, (uint16_t) (seq - jb->max_frames + 1));
        if (jb->count == 0)
            jb->buffering_since_ms = arrival_ms;
    }
    store(jb, seq, payload, len);
}

static int
span_frames(const md_jitter_t *jb)
{
    if (jb->count == 0)
        return 0;
    return md_rtp_seq_diff(jb->top, jb->head) + 1;
}

static const uint8_t *
copy_out(uint8_t *dst, const slot_t *s, size_t *len)
{
    *len = s->len;
    if (s->len > 0)
        memcpy(dst, s->data, s->len);
    return dst;
}

md_jitter_result_t
md_jitter_get(md_jitter_t *jb, int64_t now_ms, const uint8_t **payload, size_t *len,
              const uint8_t **next_payload, size_t *next_len)
{
    const uint8_t *p = NULL, *np = NULL;
    size_t plen = 0, nlen = 0;
    md_jitter_result_t r = MD_JITTER_EMPTY;
    if (jb == NULL || !jb->started)
        goto done;

    if (!jb->playing) {
        if (jb->count == 0)
            goto done;
        if (span_frames(jb) * jb->o.ptime_ms < jb->target_ms &&
            now_ms - jb->buffering_since_ms < jb->target_ms)
            goto done;
        if (jb->played_any) {
            int gap = md_rtp_seq_diff(jb->head, jb->play_seq);
            if (gap > 0) {
                jb->stats.lost += (uint64_t) gap;
                history_shift(jb, gap, false);
            }
        }
        jb->playing = true;
        jb->played_any = true;
        jb->play_seq = jb->head;
        jb->shrink_ticks = 0;
    }

    if (jb->count == 0) {
        int idle_ms = IDLE_FRAMES * jb->o.ptime_ms;
        if (idle_ms < jb->target_ms)
            idle_ms = jb->target_ms;
        if (now_ms - jb->last_arrival_ms > idle_ms) {
            jb->playing = false;
            goto done;
        }
        /* Underrun: the frame is late rather than lost; stretch playout by one frame. */
        jb->stats.concealed++;
        r = MD_JITTER_MISSING;
        goto done;
    }

    /* Too much delay for a while: drop one frame. */
    if (span_frames(jb) * jb->o.ptime_ms >= jb->target_ms + 2 * jb->o.ptime_ms) {
        if (++jb->shrink_ticks * jb->o.ptime_ms >= SHRINK_HOLD_MS) {
            slot_t *s = find(jb, jb->head);
            if (s != NULL) {
                remove_slot(jb, s);
                jb->stats.shrunk++;
            } else {
                jb->stats.lost++;
            }
            history_shift(jb, 1, s != NULL);
            jb->head++;
            jb->play_seq = jb->head;
            jb->shrink_ticks = 0;
        }
    } else {
        jb->shrink_ticks = 0;
    }

    slot_t *s = find(jb, jb->head);
    slot_t *ns = find(jb, (uint16_t) (jb->head + 1));
    if (ns != NULL)
        np = copy_out(jb->next_out, ns, &nlen);
    if (s != NULL) {
        p = copy_out(jb->out, s, &plen);
        remove_slot(jb, s);
        history_shift(jb, 1, true);
        r = MD_JITTER_FRAME;
    } else {
        jb->stats.lost++;
        jb->stats.concealed++;
        history_shift(jb, 1, false);
        r = MD_JITTER_MISSING;
    }
    jb->head++;
    jb->play_seq = jb->head;

done:
    if (payload != NULL)
        *payload = p;
    if (len != NULL)
        *len = plen;
    if (next_payload != NULL)
        *next_payload = np;
    if (next_len != NULL)
        *next_len = nlen;
    return r;
}

void
md_jitter_get_stats(const md_jitter_t *jb, md_jitter_stats_t *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (jb == NULL)
        return;
    *out = jb->stats;
    out->jitter_ms = jb->jitter_ms;
    out->target_delay_ms = jb->target_ms;
    out->buffered_ms = span_frames(jb) * jb->o.ptime_ms;
}
