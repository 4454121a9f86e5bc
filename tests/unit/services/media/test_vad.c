/* Unit tests: md_vad on generated signals (silence, noise, tones, a speech-like source) and
 * on real synthetic speech rendered by flite in the test itself. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <flite/flite.h>

#include "../../../../services/media/md_vad.h"

/* flite has no header for its voices (PITFALLS) */
cst_voice *register_cmu_us_slt(const char *voxdir);
void unregister_cmu_us_slt(cst_voice *v);

#define FRAME MD_VAD_FRAME_SAMPLES
#define RATE 16000.0
#define PI 3.14159265358979323846

/* ---- deterministic signal generators ---- */

static uint64_t rng_state;

static double
uniform01(void)
{
    /* xorshift64*: the same sequence on every run and machine */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double) ((rng_state * UINT64_C(2685821657736338717)) >> 11) *
           (1.0 / 9007199254740992.0);
}

static double
gauss(void)
{
    double u = uniform01(), v = uniform01();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * PI * v);
}

static double
dbfs_to_amp(double dbfs)
{
    return 32768.0 * pow(10.0, dbfs / 20.0);
}

static int16_t
clip(double v)
{
    return (int16_t) (v > 32767 ? 32767 : v < -32768 ? -32768 : lrint(v));
}

/* Adds white noise of the given RMS level to buf. */
static void
add_noise(int16_t *buf, size_t n, double dbfs)
{
    double a = dbfs_to_amp(dbfs);
    for (size_t i = 0; i < n; i++)
        buf[i] = clip(buf[i] + a * gauss());
}

/* A speech-like source: a glottal pulse train (F0 110-150 Hz with vibrato) through two
 * formant resonators whose frequencies glide, shaped into syllables by a 4 Hz envelope
 * (14 dB dips, never silent); scaled to `dbfs` RMS over the segment and added to buf. */
static void
add_speechlike(int16_t *buf, size_t n, double dbfs)
{
    double *x = calloc(n, sizeof(double));
    double phase = 0, y1[2] = {0, 0}, y2[2] = {0, 0}, energy = 0;
    for (size_t i = 0; i < n; i++) {
        double t = (double) i / RATE;
        phase += (130 + 20 * sin(2 * PI * 3 * t)) / RATE;
        double v = 0;
        if (phase >= 1) {
            phase -= 1;
            v = 1;
        }
        double formant[2] = {500 + 300 * sin(2 * PI * 2.5 * t), 1500 + 700 * sin(2 * PI * 1.7 * t)};
        for (int f = 0; f < 2; f++) {
            double r = 0.97, w = 2 * PI * formant[f] / RATE;
            double y = v + 2 * r * cos(w) * y1[f] - r * r * y2[f];
            y2[f] = y1[f];
            y1[f] = y;
            v = y;
        }
        x[i] = v * (0.2 + 0.8 * (0.5 - 0.5 * cos(2 * PI * 4 * t)));
        energy += x[i] * x[i];
    }
    double gain = dbfs_to_amp(dbfs) / sqrt(energy / (double) n);
    for (size_t i = 0; i < n; i++)
        buf[i] = clip(buf[i] + gain * x[i]);
    free(x);
}

static int16_t *
zeros(size_t frames)
{
    return calloc(frames * FRAME, sizeof(int16_t));
}

typedef struct {
    size_t frames;
    md_vad_result_t *r;
} run_t;

static run_t
run(md_vad_t *v, const int16_t *pcm, size_t frames)
{
    run_t out = {frames, calloc(frames, sizeof(md_vad_result_t))};
    for (size_t i = 0; i < frames; i++)
        assert_int_equal(md_vad_process(v, pcm + i * FRAME, FRAME, &out.r[i]), LC_OK);
    return out;
}

static size_t
count_speech(const run_t *r, size_t from, size_t to, bool state)
{
    size_t n = 0;
    for (size_t i = from; i < to && i < r->frames; i++)
        n += state ? r->r[i].speech : r->r[i].frame_speech;
    return n;
}

static md_vad_t *
make_vad(int aggressiveness, int onset_ms, int hangover_ms)
{
    md_vad_opts_t o;
    md_vad_opts_default(&o);
    o.aggressiveness = aggressiveness;
    o.onset_ms = onset_ms;
    o.hangover_ms = hangover_ms;
    md_vad_t *v = NULL;
    assert_int_equal(md_vad_create(&o, &v), LC_OK);
    assert_non_null(v);
    return v;
}

/* ---- tests ---- */

static void
test_create_and_bad_input(void **state)
{
    (void) state;
    md_vad_t *v = NULL;
    assert_int_equal(md_vad_create(NULL, &v), LC_OK);
    md_vad_destroy(v);
    md_vad_destroy(NULL);

    md_vad_opts_t o;
    md_vad_opts_default(&o);
    assert_int_equal(o.aggressiveness, 1);
    o.aggressiveness = 4;
    assert_int_equal(md_vad_create(&o, &v), LC_ERR_INVALID);
    md_vad_opts_default(&o);
    o.onset_ms = 0;
    assert_int_equal(md_vad_create(&o, &v), LC_ERR_INVALID);
    md_vad_opts_default(&o);
    o.hangover_ms = -1;
    assert_int_equal(md_vad_create(&o, &v), LC_ERR_INVALID);
    assert_int_equal(md_vad_create(NULL, NULL), LC_ERR_INVALID);

    v = make_vad(1, 40, 200);
    int16_t pcm[2 * FRAME] = {0};
    md_vad_result_t r;
    assert_int_equal(md_vad_process(v, pcm, FRAME / 2, &r), LC_ERR_INVALID);
    assert_int_equal(md_vad_process(v, pcm, 2 * FRAME, &r), LC_ERR_INVALID);
    assert_int_equal(md_vad_process(v, NULL, FRAME, &r), LC_ERR_INVALID);
    assert_int_equal(md_vad_process(v, pcm, FRAME, NULL), LC_ERR_INVALID);
    assert_int_equal(md_vad_process(v, pcm, FRAME, &r), LC_OK);
    md_vad_destroy(v);
}

/* Digital silence, then faint hiss (-76 dBFS, under the -70 dBFS quiet gate): never speech,
 * at every aggressiveness. */
static void
test_silence_is_not_speech(void **state)
{
    (void) state;
    size_t frames = 250; /* 5 s */
    int16_t *pcm = zeros(frames);
    rng_state = 1;
    add_noise(pcm + 100 * FRAME, 150 * FRAME, -76);
    for (int a = 0; a <= 3; a++) {
        md_vad_t *v = make_vad(a, 20, 200);
        run_t r = run(v, pcm, frames);
        assert_int_equal(count_speech(&r, 0, frames, false), 0);
        assert_int_equal(count_speech(&r, 0, frames, true), 0);
        for (size_t i = 0; i < frames; i++)
            assert_true(r.r[i].probability >= 0.0f && r.r[i].probability <= 0.5f);
        free(r.r);
        md_vad_destroy(v);
    }
    free(pcm);
}

/* Steady white noise at a fixed level from the first frame: never speech. Then 20 dB louder
 * at once: speech (the noise tracker follows a rise through its running minimum, which
 * forgets within 1.5-3 s), then no frame is speech from 4 s after the step on. */
static void
test_noise_only_adapts(void **state)
{
    (void) state;
    size_t frames = 750; /* 15 s: 6 s at -45 dBFS, then 9 s at -25 dBFS */
    int16_t *pcm = zeros(frames);
    rng_state = 7;
    add_noise(pcm, 300 * FRAME, -45);
    add_noise(pcm + 300 * FRAME, 450 * FRAME, -25);
    md_vad_t *v = make_vad(1, 40, 200);
    run_t r = run(v, pcm, frames);
    assert_int_equal(count_speech(&r, 0, 300, false), 0);
    assert_int_equal(count_speech(&r, 0, 300, true), 0);
    assert_int_equal(count_speech(&r, 500, frames, false), 0);
    assert_int_equal(count_speech(&r, 500, frames, true), 0);
    free(r.r);
    md_vad_destroy(v);
    free(pcm);
}

/* A speech-like source starting after 2 s of noise: speech within 100 ms of its onset, and
 * the smoothed state holds through the whole 3 s "utterance" (syllable dips included). */
static void
test_speechlike_onset(void **state)
{
    (void) state;
    size_t frames = 300, onset = 100, end = 250;
    int16_t *pcm = zeros(frames);
    rng_state = 11;
    add_noise(pcm, frames * FRAME, -50);
    add_speechlike(pcm + onset * FRAME, (end - onset) * FRAME, -26);
    md_vad_t *v = make_vad(1, 40, 200);
    run_t r = run(v, pcm, frames);
    assert_int_equal(count_speech(&r, 0, onset, true), 0);
    size_t first = frames;
    for (size_t i = onset; i < frames && first == frames; i++)
        if (r.r[i].speech)
            first = i;
    assert_true(first <= onset + 5);
    assert_true(r.r[first].changed);
    assert_true(r.r[first].speech_ms >= 40);
    assert_int_equal(count_speech(&r, first, end, true), end - first);
    /* back to silence after the hangover (and the HMM's own memory) */
    assert_int_equal(count_speech(&r, end + 30, frames, true), 0);
    free(r.r);
    md_vad_destroy(v);
    free(pcm);
}

/* Loud noise (-20 dBFS) that drops by 30 dB, then speech 15 dB quieter than the old noise
 * 2 s later: found within 0.5 s of its onset, and at least half of it although the noise
 * estimate comes down only as far as its running minimum allows (30 times, 15 dB) until the
 * speech pauses. */
static void
test_noise_drop(void **state)
{
    (void) state;
    size_t frames = 1000, drop = 300, onset = 400;
    int16_t *pcm = zeros(frames);
    rng_state = 17;
    add_noise(pcm, drop * FRAME, -20);
    add_noise(pcm + drop * FRAME, (frames - drop) * FRAME, -50);
    add_speechlike(pcm + onset * FRAME, (frames - onset) * FRAME, -35);
    md_vad_t *v = make_vad(1, 40, 200);
    run_t r = run(v, pcm, frames);
    assert_int_equal(count_speech(&r, drop + 10, onset, false), 0);
    assert_true(count_speech(&r, onset, onset + 25, true) > 0);
    assert_true(count_speech(&r, onset, frames, false) >= (frames - onset) / 2);
    free(r.r);
    md_vad_destroy(v);
    free(pcm);
}

/* A 1 kHz tone is speech at its onset; being stationary, it turns into noise within a few
 * seconds. */
static void
test_tone_onset_then_noise(void **state)
{
    (void) state;
    size_t frames = 400, onset = 50;
    int16_t *pcm = zeros(frames);
    rng_state = 3;
    add_noise(pcm, frames * FRAME, -55);
    for (size_t i = onset * FRAME; i < frames * FRAME; i++)
        pcm[i] = clip(pcm[i] + dbfs_to_amp(-23) * sin(2 * PI * 1000 * (double) i / RATE));
    md_vad_t *v = make_vad(1, 40, 200);
    run_t r = run(v, pcm, frames);
    assert_int_equal(count_speech(&r, 0, onset, true), 0);
    assert_true(count_speech(&r, onset, onset + 5, true) > 0);
    assert_int_equal(count_speech(&r, onset + 200, frames, true), 0);
    free(r.r);
    md_vad_destroy(v);
    free(pcm);
}

/* Hangover: the state stays speech exactly hangover_ms after the last speech frame, and
 * silence_ms counts from that frame. Checked for 0, 200 and 600 ms. */
static void
test_hangover(void **state)
{
    (void) state;
    size_t frames = 250, onset = 100, end = 150;
    int16_t *pcm = zeros(frames);
    rng_state = 5;
    add_noise(pcm, frames * FRAME, -50);
    add_speechlike(pcm + onset * FRAME, (end - onset) * FRAME, -20);
    const int hangovers[] = {0, 200, 600};
    for (size_t h = 0; h < 3; h++) {
        md_vad_t *v = make_vad(1, 20, hangovers[h]);
        run_t r = run(v, pcm, frames);
        size_t last = 0;
        for (size_t i = 0; i < frames; i++)
            if (r.r[i].frame_speech)
                last = i;
        assert_true(last >= end - 1 && last < end + 20);
        size_t hold = (size_t) hangovers[h] / MD_VAD_FRAME_MS;
        for (size_t i = last; i <= last + hold; i++) {
            assert_true(r.r[i].speech);
            assert_int_equal(r.r[i].silence_ms, (i - last) * MD_VAD_FRAME_MS);
        }
        assert_false(r.r[last + hold + 1].speech);
        assert_true(r.r[last + hold + 1].changed);
        assert_int_equal(r.r[last + hold + 1].speech_ms, 0);
        free(r.r);
        md_vad_destroy(v);
    }
    free(pcm);
}

/* Reset forgets everything: after loud noise and speech, reset, then the same input as a
 * fresh detector gives bit-identical results. */
static void
test_reset(void **state)
{
    (void) state;
    size_t frames = 200;
    int16_t *first = zeros(frames), *second = zeros(frames);
    rng_state = 9;
    add_noise(first, frames * FRAME, -20);
    add_speechlike(first + 120 * FRAME, 80 * FRAME, -10);
    add_noise(second, frames * FRAME, -55);
    add_speechlike(second + 60 * FRAME, 100 * FRAME, -30);

    md_vad_t *used = make_vad(2, 40, 300), *fresh = make_vad(2, 40, 300);
    run_t a = run(used, first, frames);
    assert_true(a.r[frames - 1].speech);
    md_vad_reset(used);
    run_t b = run(used, second, frames);
    run_t c = run(fresh, second, frames);
    assert_memory_equal(b.r, c.r, frames * sizeof(md_vad_result_t));
    assert_true(count_speech(&c, 60, 160, true) > 80);
    free(a.r);
    free(b.r);
    free(c.r);
    md_vad_destroy(used);
    md_vad_destroy(fresh);
    free(first);
    free(second);
}

/* Real synthetic speech: flite's slt voice (16 kHz) says two sentences with a 1 s pause, over
 * white noise at 15 dB SNR. Frames are labelled from the clean rendering's energy (within
 * 35 dB of its loudest 20 ms). At the default aggressiveness the detector finds 90% of them
 * with precision 0.75 or better; at every aggressiveness nothing is speech in the silences;
 * higher aggressiveness never reports more speech. */
static void
test_flite_speech(void **state)
{
    (void) state;
    flite_init();
    cst_voice *voice = register_cmu_us_slt(NULL);
    assert_non_null(voice);
    const char *text[2] = {"Hello, I would like to speak to someone about my last bill.",
                           "Yes, the account number is four, seven, two, nine."};
    size_t lead = 75, gap = 50, tail = 75; /* frames: 1.5 s, 1 s, 1.5 s */
    size_t len[2];
    cst_wave *w[2];
    for (int k = 0; k < 2; k++) {
        w[k] = flite_text_to_wave(text[k], voice);
        assert_non_null(w[k]);
        assert_int_equal(w[k]->sample_rate, 16000);
        len[k] = (size_t) w[k]->num_samples / FRAME;
    }
    size_t frames = lead + len[0] + gap + len[1] + tail;
    int16_t *clean = zeros(frames);
    memcpy(clean + lead * FRAME, w[0]->samples, len[0] * FRAME * sizeof(int16_t));
    memcpy(clean + (lead + len[0] + gap) * FRAME, w[1]->samples, len[1] * FRAME * sizeof(int16_t));
    for (int k = 0; k < 2; k++)
        delete_wave(w[k]);
    unregister_cmu_us_slt(voice);

    uint8_t *label = calloc(frames, 1);
    double peak = 0, *energy = calloc(frames, sizeof(double));
    for (size_t i = 0; i < frames; i++) {
        for (size_t j = 0; j < FRAME; j++)
            energy[i] += (double) clean[i * FRAME + j] * clean[i * FRAME + j];
        peak = fmax(peak, energy[i]);
    }
    size_t speech_frames = 0;
    double speech_energy = 0;
    for (size_t i = 0; i < frames; i++) {
        label[i] = energy[i] > peak * pow(10.0, -3.5);
        speech_frames += label[i];
        speech_energy += label[i] ? energy[i] : 0;
    }
    assert_true(speech_frames > 100);
    double speech_dbfs =
        10 * log10(speech_energy / (double) (speech_frames * FRAME) / 32768.0 / 32768.0);
    int16_t *pcm = zeros(frames);
    memcpy(pcm, clean, frames * FRAME * sizeof(int16_t));
    rng_state = 13;
    add_noise(pcm, frames * FRAME, speech_dbfs - 15);

    size_t reported[4];
    for (int a = 0; a <= 3; a++) {
        md_vad_t *v = make_vad(a, 40, 200);
        run_t r = run(v, pcm, frames);
        size_t tp = 0, fp = 0;
        for (size_t i = 0; i < frames; i++) {
            tp += label[i] && r.r[i].frame_speech;
            fp += !label[i] && r.r[i].frame_speech;
        }
        reported[a] = tp + fp;
        /* the silence before the first word (after the 0.5 s warm-up), in the pause between
         * the sentences (from 0.5 s after the last word) and after the last word */
        size_t first_word = lead, end_first = lead + len[0], start_second = end_first + gap,
               last_word = frames - tail;
        while (!label[first_word])
            first_word++;
        while (!label[end_first - 1])
            end_first--;
        while (!label[start_second])
            start_second++;
        while (!label[last_word - 1])
            last_word--;
        size_t early = count_speech(&r, 25, first_word - 2, false);
        size_t pause = count_speech(&r, end_first + 25, start_second - 2, false);
        size_t late = count_speech(&r, last_word + 25, frames, false);
        print_message("flite a%d: %zu speech frames, %zu found, %zu false of %zu; "
                      "in silences %zu %zu %zu\n",
                      a, speech_frames, tp, fp, frames - speech_frames, early, pause, late);
        if (a == 1) {
            /* word gaps inside a sentence are labelled silence; the detector's smoothing
             * bridges most of them, which is what a turn detector wants */
            assert_true(tp >= speech_frames * 9 / 10);
            assert_true(tp * 4 >= (tp + fp) * 3); /* precision >= 0.75 */
        }
        assert_int_equal(early, 0);
        assert_int_equal(pause, 0);
        assert_int_equal(late, 0);
        free(r.r);
        md_vad_destroy(v);
    }
    for (int a = 1; a <= 3; a++)
        assert_true(reported[a] <= reported[a - 1]);
    free(label);
    free(energy);
    free(clean);
    free(pcm);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_bad_input),
        cmocka_unit_test(test_silence_is_not_speech),
        cmocka_unit_test(test_noise_only_adapts),
        cmocka_unit_test(test_speechlike_onset),
        cmocka_unit_test(test_noise_drop),
        cmocka_unit_test(test_tone_onset_then_noise),
        cmocka_unit_test(test_hangover),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_flite_speech),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
