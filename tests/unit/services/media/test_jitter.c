/* Unit tests: the adaptive jitter buffer under scripted arrival patterns. Each scenario lists
 * packet arrivals (time, seq, timestamp, SSRC); a playout tick runs every 20 ms; the test
 * asserts the exact sequence of what playout returned (seq number of the frame, M for
 * missing, . for empty) and the statistics. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/media/md_jitter.h"

#define PTIME 20
#define SSRC_A 0x11111111u
#define SSRC_B 0x22222222u

typedef struct {
    int64_t at;
    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
} arrival_t;

static md_jitter_t *
make(void)
{
    md_jitter_opts_t o = {.ptime_ms = PTIME, .rtp_clock_hz = 8000};
    md_jitter_t *jb = NULL;
    assert_int_equal(md_jitter_create(&o, &jb), LC_OK);
    return jb;
}

static void
put(md_jitter_t *jb, const arrival_t *a)
{
    char payload[16];
    int n = snprintf(payload, sizeof(payload), "%u", (unsigned) a->seq);
    md_jitter_put(jb, a->seq, a->ts, a->ssrc, false, (const uint8_t *) payload, (size_t) n, a->at);
}

/* Plays `ticks` ticks at first_tick + k * PTIME, delivering the arrivals due before each
 * tick, and writes the outcome as space-separated tokens. */
static void
run(md_jitter_t *jb, const arrival_t *arr, size_t n, int64_t first_tick, int ticks, char *out,
    size_t out_size)
{
    size_t next = 0, used = 0;
    out[0] = '\0';
    for (int k = 0; k < ticks; k++) {
        int64_t now = first_tick + (int64_t) k * PTIME;
        while (next < n && arr[next].at <= now)
            put(jb, &arr[next++]);
        const uint8_t *p = NULL, *np = NULL;
        size_t len = 0, nlen = 0;
        md_jitter_result_t r = md_jitter_get(jb, now, &p, &len, &np, &nlen);
        char tok[24];
        if (r == MD_JITTER_FRAME)
            snprintf(tok, sizeof(tok), "%.*s", (int) len, (const char *) p);
        else
            snprintf(tok, sizeof(tok), "%s", r == MD_JITTER_MISSING ? "M" : ".");
        used += (size_t) snprintf(out + used, out_size - used, "%s%s", k ? " " : "", tok);
        assert_true(used < out_size);
    }
    while (next < n) /* arrivals after the last tick still count */
        put(jb, &arr[next++]);
}

/* A regular stream: seq first.., one every 20 ms from t0, timestamps 160 apart. */
static size_t
regular(arrival_t *a, size_t n, int64_t t0, uint16_t first_seq, uint32_t first_ts, uint32_t ssrc)
{
    for (size_t i = 0; i < n; i++)
        a[i] = (arrival_t){t0 + (int64_t) i * PTIME, (uint16_t) (first_seq + i),
                           first_ts + 160u * (uint32_t) i, ssrc};
    return n;
}

static void
stats(md_jitter_t *jb, md_jitter_stats_t *st)
{
    md_jitter_get_stats(jb, st);
}

static void
test_in_order(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[10];
    regular(a, 10, 0, 1, 1000, SSRC_A);
    char out[256];
    run(jb, a, 10, 10, 13, out, sizeof(out));
    /* 40 ms buffering (two frames), ten frames, one stretch as the stream ends, idle. */
    assert_string_equal(out, ". 1 2 3 4 5 6 7 8 9 10 M .");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.received, 10);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.late, 0);
    assert_int_equal(st.duplicate, 0);
    assert_int_equal(st.concealed, 1);
    assert_int_equal(st.resets, 0);
    assert_int_equal(st.target_delay_ms, 40);
    assert_true(st.jitter_ms < 0.001);
    md_jitter_destroy(jb);
}

static void
test_reordered_within_buffer(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[8];
    regular(a, 8, 0, 1, 0, SSRC_A);
    /* 3 arrives 5 ms after 4 */
    a[2].at = 65;
    arrival_t sorted[8] = {a[0], a[1], a[3], a[2], a[4], a[5], a[6], a[7]};
    char out[256];
    run(jb, sorted, 8, 10, 10, out, sizeof(out));
    assert_string_equal(out, ". 1 2 3 4 5 6 7 8 M");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.late, 0);
    md_jitter_destroy(jb);
}

static void
test_late_packet(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[12];
    regular(a, 12, 0, 1, 0, SSRC_A);
    /* 5 is 100 ms late: arrives after 6..9 */
    arrival_t b[12];
    size_t k = 0;
    for (size_t i = 0; i < 12; i++)
        if (a[i].seq != 5)
            b[k++] = a[i];
    a[4].at = 180;
    /* insert 5 after the packet arriving at 180 (seq 10) */
    arrival_t c[12];
    size_t m = 0;
    for (size_t i = 0; i < 11; i++) {
        c[m++] = b[i];
        if (b[i].seq == 10)
            c[m++] = a[4];
    }
    char out[256];
    run(jb, c, 12, 10, 10, out, sizeof(out));
    /* At the tick for 5, 6 is buffered: 5 is lost, concealed, and later counted late. */
    assert_string_equal(out, ". 1 2 3 4 M 6 7 8 9");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.lost, 1);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.concealed, 1);
    /* The 100 ms late arrival raised the target at once (one frame + 100 ms -> 120). */
    assert_int_equal(st.target_delay_ms, 120);
    md_jitter_destroy(jb);
}

static void
test_duplicates(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[8];
    regular(a, 8, 0, 1, 0, SSRC_A);
    arrival_t c[10] = {a[0], a[1], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[0]};
    c[2].at = 21;  /* 2 again before it plays */
    c[9].at = 140; /* 1 again long after it played */
    char out[256];
    run(jb, c, 10, 10, 9, out, sizeof(out));
    assert_string_equal(out, ". 1 2 3 4 5 6 7 8");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.received, 10);
    assert_int_equal(st.duplicate, 2);
    assert_int_equal(st.late, 0);
    assert_int_equal(st.lost, 0);
    md_jitter_destroy(jb);
}

static void
test_burst_loss(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[20], b[20];
    regular(a, 20, 0, 1, 0, SSRC_A);
    size_t n = 0;
    for (size_t i = 0; i < 20; i++)
        if (a[i].seq < 5 || a[i].seq > 9)
            b[n++] = a[i];
    char out[256];
    run(jb, b, n, 10, 16, out, sizeof(out));
    /* 5..9 never come: one frame of concealment while the gap might still be jitter, then
     * silence; 10 arrives at 180 and playout resumes after buffering it again. */
    assert_string_equal(out, ". 1 2 3 4 M . . . . 10 11 12 13 14 15");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.lost, 5);
    assert_int_equal(st.late, 0);
    assert_int_equal(st.concealed, 1);
    assert_int_equal(st.resets, 0);
    md_jitter_destroy(jb);
}

static void
test_single_loss_gives_missing_with_next(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[10], b[10];
    regular(a, 10, 0, 1, 0, SSRC_A);
    size_t n = 0;
    for (size_t i = 0; i < 10; i++)
        if (a[i].seq != 4)
            b[n++] = a[i];
    /* Tick by hand around the loss to look at next_payload. */
    size_t next = 0;
    int missing_seen = 0;
    for (int64_t now = 10; now <= 170; now += PTIME) {
        while (next < n && b[next].at <= now)
            put(jb, &b[next++]);
        const uint8_t *p, *np;
        size_t len, nlen;
        md_jitter_result_t r = md_jitter_get(jb, now, &p, &len, &np, &nlen);
        if (r == MD_JITTER_MISSING) {
            missing_seen++;
            /* The frame after the lost one is there: the FEC source for opus. */
            assert_non_null(np);
            assert_int_equal(nlen, 1);
            assert_memory_equal(np, "5", 1);
            assert_null(p);
        }
    }
    assert_int_equal(missing_seen, 1);
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.lost, 1);
    md_jitter_destroy(jb);
}

static void
test_ssrc_change_resets(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[11];
    regular(a, 5, 0, 1, 0, SSRC_A);
    regular(a + 5, 6, 100, 1000, 777777, SSRC_B);
    char out[256];
    run(jb, a, 11, 10, 11, out, sizeof(out));
    /* 5 was still buffered when the new source arrived: discarded with the old stream. */
    assert_string_equal(out, ". 1 2 3 4 . 1000 1001 1002 1003 1004");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.resets, 1);
    assert_int_equal(st.lost, 0); /* no gap is counted across sources */
    md_jitter_destroy(jb);
}

static void
test_sequence_wrap(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[12];
    regular(a, 12, 0, 65530, 0xfffff000u, SSRC_A); /* timestamps wrap too */
    /* and a reorder across the wrap: 0 before 65535 */
    arrival_t t = a[5];
    a[5] = a[6];
    a[6] = t;
    a[5].at = a[6].at - 1;
    char out[256];
    run(jb, a, 12, 10, 13, out, sizeof(out));
    assert_string_equal(out, ". 65530 65531 65532 65533 65534 65535 0 1 2 3 4 5");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.late, 0);
    assert_int_equal(st.resets, 0);
    assert_true(st.jitter_ms < 3.0); /* one 21 ms reorder */
    md_jitter_destroy(jb);
}

static void
test_timestamp_jump(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[10];
    regular(a, 10, 0, 1, 1000, SSRC_A);
    for (size_t i = 5; i < 10; i++)
        a[i].ts += 80000; /* +10 s of timestamps, no gap in time or sequence */
    char out[256];
    run(jb, a, 10, 10, 11, out, sizeof(out));
    /* Playout goes on by sequence; only the delay estimates restart. */
    assert_string_equal(out, ". 1 2 3 4 5 6 7 8 9 10");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.resets, 1);
    assert_int_equal(st.lost, 0);
    assert_true(st.target_delay_ms <= 40);
    md_jitter_destroy(jb);
}

static void
test_large_sequence_jump_resets(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[10];
    regular(a, 5, 0, 100, 0, SSRC_A);
    regular(a + 5, 5, 100, 30000, 800, SSRC_A); /* same SSRC, sequence restarted */
    char out[256];
    run(jb, a, 10, 10, 10, out, sizeof(out));
    assert_string_equal(out, ". 100 101 102 103 . 30000 30001 30002 30003");
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.resets, 1);
    assert_int_equal(st.lost, 0);
    md_jitter_destroy(jb);
}

static void
test_talkspurts_with_silence_suppression(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[10];
    regular(a, 5, 0, 1, 0, SSRC_A);
    /* one second of silence: sequence goes on, timestamps and arrivals jump together */
    regular(a + 5, 5, 1080, 6, 160 * 5 + 8000, SSRC_A);
    char out[512];
    run(jb, a, 10, 10, 62, out, sizeof(out));
    /* The first talkspurt plays out, one frame is stretched as it ends, then 48 empty ticks;
     * the second talkspurt (from 1080 ms) buffers to the target again and plays whole. */
    char want[512];
    size_t n = (size_t) snprintf(want, sizeof(want), ". 1 2 3 4 5 M");
    for (int i = 0; i < 48; i++)
        n += (size_t) snprintf(want + n, sizeof(want) - n, " .");
    snprintf(want + n, sizeof(want) - n, " 6 7 8 9 10 M .");
    assert_string_equal(out, want);
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.resets, 0);
    assert_int_equal(st.late, 0);
    assert_int_equal(st.concealed, 2);
    md_jitter_destroy(jb);
}

/* Deterministic pseudo-random jitter. */
static uint32_t rng_state = 12345;
static uint32_t
rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 16) & 0x7fff;
}

static void
jittered(arrival_t *a, size_t n, int max_jitter_ms)
{
    for (size_t i = 0; i < n; i++) {
        int64_t j = max_jitter_ms > 0 ? (int64_t) (rng() % (uint32_t) (max_jitter_ms + 1)) : 0;
        a[i] =
            (arrival_t){(int64_t) i * PTIME + j, (uint16_t) (i + 1), 160u * (uint32_t) i, SSRC_A};
    }
    /* deliver in arrival order */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && a[k].at < a[k - 1].at; k--) {
            arrival_t t = a[k];
            a[k] = a[k - 1];
            a[k - 1] = t;
        }
}

static int
simulate_target(int max_jitter_ms, int *max_target, md_jitter_stats_t *st)
{
    enum { N = 500 };
    static arrival_t a[N];
    jittered(a, N, max_jitter_ms);
    md_jitter_t *jb = make();
    size_t next = 0;
    *max_target = 0;
    for (int64_t now = 5; now < N * PTIME + 500; now += PTIME) {
        while (next < N && a[next].at <= now) {
            put(jb, &a[next++]);
            md_jitter_get_stats(jb, st);
            if (next > 60 && st->target_delay_ms > *max_target)
                *max_target = st->target_delay_ms;
            assert_true(st->target_delay_ms <= 200);
            assert_true(st->buffered_ms <= 200);
        }
        const uint8_t *p, *np;
        size_t len, nlen;
        md_jitter_get(jb, now, &p, &len, &np, &nlen);
    }
    md_jitter_get_stats(jb, st);
    md_jitter_destroy(jb);
    return st->target_delay_ms;
}

static void
test_target_adapts_to_jitter(void **state)
{
    (void) state;
    md_jitter_stats_t st;
    int max_target;
    /* A clean network (0..3 ms): the target stays within 40 ms and nothing is lost. */
    simulate_target(3, &max_target, &st);
    print_message("jitter 0..3 ms: max target %d ms, jitter %.2f ms, lost %llu\n", max_target,
                  st.jitter_ms, (unsigned long long) st.lost);
    assert_true(max_target <= 40);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.late, 0);

    /* 0..60 ms of jitter: the target grows past 40 ms but not to the maximum. */
    simulate_target(60, &max_target, &st);
    print_message("jitter 0..60 ms: max target %d ms, jitter %.2f ms, lost %llu late %llu "
                  "concealed %llu\n",
                  max_target, st.jitter_ms, (unsigned long long) st.lost,
                  (unsigned long long) st.late, (unsigned long long) st.concealed);
    assert_true(max_target > 40);
    assert_true(max_target < 200);
    /* Stretching on underruns means late packets are rare: at most 2% lost. */
    assert_true(st.lost + st.late <= 10);

    /* 0..500 ms: the target is pinned at the maximum, never past it (asserted per packet). */
    simulate_target(500, &max_target, &st);
    print_message("jitter 0..500 ms: max target %d ms\n", max_target);
    assert_int_equal(max_target, 200);
}

static void
test_overflow_when_playout_stalls(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    arrival_t a[30];
    regular(a, 30, 0, 1, 0, SSRC_A);
    /* Playout starts, then the tick stops while packets keep coming. */
    char out[64];
    run(jb, a, 3, 10, 3, out, sizeof(out));
    assert_string_equal(out, ". 1 2");
    for (size_t i = 3; i < 30; i++)
        put(jb, &a[i]);
    md_jitter_stats_t st;
    stats(jb, &st);
    assert_true(st.buffered_ms <= 200);
    /* 3..30 is 28 frames; ten fit in 200 ms; the 18 oldest were dropped. */
    assert_int_equal(st.overflow, 18);
    assert_int_equal(st.buffered_ms, 200);
    const uint8_t *p, *np;
    size_t len, nlen;
    assert_int_equal(md_jitter_get(jb, 600, &p, &len, &np, &nlen), MD_JITTER_FRAME);
    assert_memory_equal(p, "21", 2);
    md_jitter_destroy(jb);
}

static void
test_delay_shrinks_slowly(void **state)
{
    (void) state;
    md_jitter_t *jb = make();
    enum { N = 200 };
    static arrival_t a[N];
    regular(a, N, 0, 1, 0, SSRC_A);
    /* Playout starts 150 ms after the first packet: 8 frames queued, far above target. */
    size_t next = 0;
    int drops_seen = 0;
    int64_t last_drop = -100000;
    uint64_t shrunk = 0;
    for (int64_t now = 150; now < N * PTIME; now += PTIME) {
        while (next < N && a[next].at <= now)
            put(jb, &a[next++]);
        const uint8_t *p, *np;
        size_t len, nlen;
        md_jitter_get(jb, now, &p, &len, &np, &nlen);
        md_jitter_stats_t st;
        md_jitter_get_stats(jb, &st);
        if (st.shrunk != shrunk) {
            assert_int_equal(st.shrunk, shrunk + 1); /* one frame at a time */
            assert_true(now - last_drop >= 500);     /* at most one per 500 ms */
            last_drop = now;
            shrunk = st.shrunk;
            drops_seen++;
        }
    }
    md_jitter_stats_t st;
    stats(jb, &st);
    print_message("shrunk %llu frames, buffered %d ms, target %d ms\n",
                  (unsigned long long) st.shrunk, st.buffered_ms, st.target_delay_ms);
    assert_true(drops_seen >= 4);
    assert_true(st.buffered_ms < st.target_delay_ms + 2 * PTIME);
    assert_int_equal(st.lost, 0);
    md_jitter_destroy(jb);
}

static void
test_options_and_bad_input(void **state)
{
    (void) state;
    md_jitter_t *jb = NULL;
    md_jitter_opts_t bad = {.ptime_ms = 20, .min_delay_ms = 100, .target_max_ms = 40};
    assert_int_equal(md_jitter_create(&bad, &jb), LC_ERR_INVALID);
    md_jitter_opts_t bad2 = {.max_delay_ms = 5000};
    assert_int_equal(md_jitter_create(&bad2, &jb), LC_ERR_INVALID);
    assert_int_equal(md_jitter_create(NULL, NULL), LC_ERR_INVALID);
    assert_int_equal(md_jitter_create(NULL, &jb), LC_OK); /* all defaults */
    static uint8_t big[MD_JITTER_MAX_PAYLOAD_BYTES + 1];
    md_jitter_put(jb, 1, 0, SSRC_A, false, big, sizeof(big), 0);
    md_jitter_put(jb, 1, 0, SSRC_A, false, NULL, 10, 0);
    md_jitter_stats_t st;
    md_jitter_get_stats(jb, &st);
    assert_int_equal(st.invalid, 2);
    assert_int_equal(st.received, 2);
    const uint8_t *p, *np;
    size_t len, nlen;
    assert_int_equal(md_jitter_get(jb, 100, &p, &len, &np, &nlen), MD_JITTER_EMPTY);
    /* The largest payload is kept whole. */
    md_jitter_put(jb, 2, 0, SSRC_A, false, big, MD_JITTER_MAX_PAYLOAD_BYTES, 0);
    md_jitter_put(jb, 3, 160, SSRC_A, false, big, 1, 20);
    assert_int_equal(md_jitter_get(jb, 40, &p, &len, &np, &nlen), MD_JITTER_FRAME);
    assert_int_equal(len, MD_JITTER_MAX_PAYLOAD_BYTES);
    md_jitter_destroy(jb);
    md_jitter_destroy(NULL);
    assert_int_equal(md_jitter_get(NULL, 0, &p, &len, &np, &nlen), MD_JITTER_EMPTY);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_reordered_within_buffer),
        cmocka_unit_test(test_late_packet),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_burst_loss),
        cmocka_unit_test(test_single_loss_gives_missing_with_next),
        cmocka_unit_test(test_ssrc_change_resets),
        cmocka_unit_test(test_sequence_wrap),
        cmocka_unit_test(test_timestamp_jump),
        cmocka_unit_test(test_large_sequence_jump_resets),
        cmocka_unit_test(test_talkspurts_with_silence_suppression),
        cmocka_unit_test(test_target_adapts_to_jitter),
        cmocka_unit_test(test_overflow_when_playout_stalls),
        cmocka_unit_test(test_delay_shrinks_slowly),
        cmocka_unit_test(test_options_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
