/* Unit tests: turn-taking (md_turn) on scripted VAD results: onset, endpointing after
 * silence_ms, barge-in only after min_speech_ms of speech frames (a short burst held by the
 * VAD's hangover never counts), no barge-in while the agent is silent or when interruptions
 * are off; word counting against ignore phrases; and the greeting cache's LRU. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../../../services/media/md_greeting.h"
#include "../../../../services/media/md_turn.h"

/* A VAD result as md_vad would give it for a frame decision, tracking state like it. */
typedef struct {
    md_vad_result_t r;
    int onset_frames;
} fake_vad_t;

static const md_vad_result_t *
step(fake_vad_t *v, bool speech_frame)
{
    v->r.frame_speech = speech_frame;
    v->r.silence_ms = speech_frame ? 0 : v->r.silence_ms + 20;
    if (!v->r.speech) {
        v->onset_frames = speech_frame ? v->onset_frames + 1 : 0;
        if (v->onset_frames >= 2) {
            v->r.speech = true;
            v->r.speech_ms = 40;
        }
    } else if (v->r.silence_ms > 200) {
        v->r.speech = false;
        v->r.speech_ms = 0;
        v->onset_frames = 0;
    } else {
        v->r.speech_ms += 20;
    }
    return &v->r;
}

static void
test_endpoint_and_barge_in(void **state)
{
    (void) state;
    md_turn_opts_t o = {.silence_ms = 500, .min_speech_ms = 200, .interruptions = true};
    md_turn_t t;
    md_turn_init(&t, &o);
    fake_vad_t v = {0};
    int64_t now = 1000;
    int barge_at = -1, start_at = -1, end_at = -1;
    for (int i = 0; i < 100; i++) {
        now += 20;
        bool speech = i >= 10 && i < 40; /* 600 ms of speech */
        md_turn_event_t e = md_turn_frame(&t, step(&v, speech), true, now);
        if (e == MD_TURN_SPEECH_START)
            start_at = i;
        if (e == MD_TURN_BARGE_IN)
            barge_at = i;
        if (e == MD_TURN_SPEECH_END)
            end_at = i;
    }
    assert_int_equal(start_at, 11);    /* two frames of onset */
    assert_int_equal(barge_at, 19);    /* 10 speech frames = 200 ms */
    assert_int_equal(end_at, 39 + 25); /* 500 ms after the last speech frame */
    assert_int_equal(t.speech_start_ms, 1000 + 20 * 12 - 40);
    assert_false(t.in_speech);
}

static void
test_burst_and_silent_agent(void **state)
{
    (void) state;
    md_turn_opts_t o = {.silence_ms = 300, .min_speech_ms = 200, .interruptions = true};
    md_turn_t t;
    md_turn_init(&t, &o);
    fake_vad_t v = {0};
    int64_t now = 0;
    /* a 120 ms cough: the VAD's hangover keeps "speech" for 200 ms more */
    for (int i = 0; i < 40; i++) {
        md_turn_event_t e = md_turn_frame(&t, step(&v, i < 6), true, now += 20);
        assert_int_not_equal(e, MD_TURN_BARGE_IN);
    }
    /* long speech while the agent is silent: never a barge-in */
    for (int i = 0; i < 40; i++)
        assert_int_not_equal(md_turn_frame(&t, step(&v, true), false, now += 20), MD_TURN_BARGE_IN);
    /* interruptions off */
    o.interruptions = false;
    md_turn_init(&t, &o);
    fake_vad_t v2 = {0};
    for (int i = 0; i < 40; i++)
        assert_int_not_equal(md_turn_frame(&t, step(&v2, true), true, now += 20), MD_TURN_BARGE_IN);
}

static void
test_words(void **state)
{
    (void) state;
    const char *ignore[] = {"uh-huh", "yeah", "okay", "mm hmm", NULL};
    assert_int_equal(md_turn_count_words("Uh-huh.", ignore), 0);
    assert_int_equal(md_turn_count_words("yeah, okay", ignore), 0);
    assert_int_equal(md_turn_count_words("mm hmm", ignore), 0);
    assert_int_equal(md_turn_count_words("hmm", ignore), 0); /* a filler */
    assert_int_equal(md_turn_count_words("Ah, um... no", NULL), 1);
    assert_int_equal(md_turn_count_words("yeah but wait", ignore), 2);
    assert_int_equal(md_turn_count_words("", ignore), 0);
    assert_int_equal(md_turn_count_words("stop talking", NULL), 2);
    assert_int_equal(md_turn_count_words(NULL, ignore), 0);
}

static void
test_greeting_cache(void **state)
{
    (void) state;
    md_greeting_cache_t *c = md_greeting_cache_create(2);
    int16_t pcm[4] = {1, 2, 3, 4};
    assert_null(md_greeting_get(c, "agt_a", 1));
    md_greeting_put(c, "agt_a", 1, "hi", pcm, 4);
    md_greeting_put(c, "agt_b", 1, "yo", pcm, 2);
    md_greeting_t *a = md_greeting_get(c, "agt_a", 1); /* a is now the most recent */
    assert_non_null(a);
    md_greeting_put(c, "agt_c", 1, "hey", pcm, 3); /* evicts b */
    assert_null(md_greeting_get(c, "agt_b", 1));
    assert_int_equal(md_greeting_count(c), 2);
    md_greeting_put(c, "agt_a", 2, "hi v2", pcm, 1); /* a new version replaces the old */
    assert_null(md_greeting_get(c, "agt_a", 1));
    size_t n;
    assert_int_equal(md_greeting_pcm(a, &n)[3], 4); /* the evicted one lives while held */
    assert_int_equal(n, 4);
    assert_string_equal(md_greeting_text(a), "hi");
    md_greeting_unref(a);
    md_greeting_t *a2 = md_greeting_get(c, "agt_a", 2);
    assert_non_null(a2);
    md_greeting_cache_destroy(c);
    assert_int_equal(md_greeting_pcm(a2, &n)[0], 1);
    md_greeting_unref(a2);
    md_greeting_t *none = NULL;
    md_greeting_unref(none);
    md_greeting_cache_t *off = md_greeting_cache_create(0);
    md_greeting_put(off, "agt_a", 1, "x", pcm, 4);
    assert_int_equal(md_greeting_count(off), 0);
    md_greeting_cache_destroy(off);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_and_barge_in),
        cmocka_unit_test(test_burst_and_silent_agent),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_greeting_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
