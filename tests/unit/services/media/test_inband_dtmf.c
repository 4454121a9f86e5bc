/* Unit tests: in-band DTMF detection on PCMU/PCMA payloads. Tones come from an independent
 * generator (spandsp's dtmf_tx, ITU-T Q.23 frequencies and levels), go through G.711 as a
 * peer would send them, and must come out as exactly the digits sent, once each, with their
 * durations; speech-band tones and weak or short tones must not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spandsp.h>

#include "../../../../services/media/md_g711.h"
#include "../../../../services/media/md_inband_dtmf.h"

typedef struct {
    char starts[64];
    char ends[64];
    int durations[64];
    int nstarts, nends;
} seen_t;

static void
on_digit(void *user, md_dtmf_rx_result_t what, char digit, int duration_ms)
{
    seen_t *s = user;
    if (what == MD_DTMF_DIGIT_START && s->nstarts < 63) {
        s->starts[s->nstarts++] = digit;
    } else if (what == MD_DTMF_DIGIT_END && s->nends < 63) {
        s->durations[s->nends] = duration_ms;
        s->ends[s->nends++] = digit;
    }
}

/* Generates `digits` with spandsp's generator (on_ms tone, off_ms gap) plus 200 ms of
 * silence, encodes it in 20 ms G.711 payloads and feeds them to the detector. */
static void
send_digits(md_inband_dtmf_t *d, md_codec_id_t codec, const char *digits, int on_ms, int off_ms,
            int level_dbm0)
{
    dtmf_tx_state_t *tx = dtmf_tx_init(NULL);
    dtmf_tx_set_timing(tx, on_ms, off_ms);
    dtmf_tx_set_level(tx, level_dbm0, 0);
    dtmf_tx_put(tx, digits, -1);
    int16_t pcm[160];
    uint8_t payload[160];
    int silent_frames = 0;
    while (silent_frames < 10) {
        int n = dtmf_tx(tx, pcm, 160);
        if (n < 160) {
            memset(pcm + n, 0, (size_t) (160 - n) * sizeof(int16_t));
            if (n == 0)
                silent_frames++;
        }
        md_g711_encode(codec, pcm, 160, payload);
        md_inband_dtmf_process_g711(d, codec, payload, 160);
    }
    dtmf_tx_free(tx);
}

static void
test_digits_through_pcmu_and_pcma(void **state)
{
    (void) state;
    const md_codec_id_t codecs[] = {MD_CODEC_PCMU, MD_CODEC_PCMA};
    for (int c = 0; c < 2; c++) {
        seen_t seen = {0};
        md_inband_dtmf_t *d = NULL;
        assert_int_equal(md_inband_dtmf_create(on_digit, &seen, &d), LC_OK);
        const char *digits = "0123456789*#ABCD";
        send_digits(d, codecs[c], digits, 100, 100, -10);
        print_message("%s: starts \"%.*s\" ends \"%.*s\", first duration %d ms\n",
                      codecs[c] == MD_CODEC_PCMU ? "PCMU" : "PCMA", seen.nstarts, seen.starts,
                      seen.nends, seen.ends, seen.durations[0]);
        assert_int_equal(seen.nstarts, 16);
        assert_int_equal(seen.nends, 16);
        assert_memory_equal(seen.starts, digits, 16);
        assert_memory_equal(seen.ends, digits, 16);
        for (int i = 0; i < 16; i++) {
            /* spandsp measures between its confirmations of start and end, in 102-sample
             * blocks: within 15 ms of the 100 ms sent. */
            if (abs(seen.durations[i] - 100) > 15)
                fail_msg("digit %c: duration %d ms", digits[i], seen.durations[i]);
        }
        md_inband_dtmf_destroy(d);
    }
}

static void
test_repeated_digit_and_long_press(void **state)
{
    (void) state;
    seen_t seen = {0};
    md_inband_dtmf_t *d = NULL;
    assert_int_equal(md_inband_dtmf_create(on_digit, &seen, &d), LC_OK);
    send_digits(d, MD_CODEC_PCMU, "55", 80, 80, -10);
    send_digits(d, MD_CODEC_PCMU, "#", 1500, 50, -10);
    assert_int_equal(seen.nstarts, 3);
    assert_memory_equal(seen.starts, "55#", 3);
    assert_int_equal(seen.nends, 3);
    assert_true(abs(seen.durations[2] - 1500) <= 15);
    assert_true(abs(seen.durations[0] - 80) <= 15);
    md_inband_dtmf_destroy(d);
}

static void
test_no_false_digits(void **state)
{
    (void) state;
    seen_t seen = {0};
    md_inband_dtmf_t *d = NULL;
    assert_int_equal(md_inband_dtmf_create(on_digit, &seen, &d), LC_OK);
    /* Three seconds of a voice-like harmonic signal (150 Hz and its harmonics, moving). */
    int16_t pcm[160];
    uint8_t payload[160];
    double phase = 0;
    for (int f = 0; f < 150; f++) {
        for (int i = 0; i < 160; i++) {
            double t = (f * 160 + i) / 8000.0;
            phase += 2 * M_PI * (150 + 40 * sin(2 * M_PI * 2 * t)) / 8000.0;
            double v = 0;
            for (int h = 1; h <= 12; h++)
                v += sin(h * phase) / h;
            pcm[i] = (int16_t) lrint(5000 * v);
        }
        md_g711_encode(MD_CODEC_PCMU, pcm, 160, payload);
        md_inband_dtmf_process_g711(d, MD_CODEC_PCMU, payload, 160);
    }
    /* A single 1 kHz tone; a DTMF pair far below the detection threshold; a pair too short
     * to be a digit (20 ms, Q.24 requires at least 40 ms). */
    for (int f = 0; f < 50; f++) {
        for (int i = 0; i < 160; i++)
            pcm[i] = (int16_t) lrint(10000 * sin(2 * M_PI * 1000 * (f * 160 + i) / 8000.0));
        md_g711_encode(MD_CODEC_PCMU, pcm, 160, payload);
        md_inband_dtmf_process_g711(d, MD_CODEC_PCMU, payload, 160);
    }
    send_digits(d, MD_CODEC_PCMU, "1", 100, 100, -50);
    send_digits(d, MD_CODEC_PCMU, "2", 20, 100, -10);
    assert_int_equal(seen.nstarts, 0);
    assert_int_equal(seen.nends, 0);
    /* Other codecs are ignored; a lost frame is filled in without inventing a digit. */
    md_inband_dtmf_process_g711(d, MD_CODEC_G722, payload, 160);
    md_inband_dtmf_fill(d, 160);
    assert_int_equal(seen.nstarts, 0);
    md_inband_dtmf_destroy(d);
    md_inband_dtmf_destroy(NULL);
    assert_int_equal(md_inband_dtmf_create(NULL, NULL, &d), LC_ERR_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits_through_pcmu_and_pcma),
        cmocka_unit_test(test_repeated_digit_and_long_press),
        cmocka_unit_test(test_no_false_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
