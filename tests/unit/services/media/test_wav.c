/* Unit tests: the stereo WAV recorder: header fields after close, channel placement and
 * alignment when the two directions are written at different times and sizes, padding of a
 * stalled channel, bounded memory, write batching, and errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../../services/media/md_wav.h"

static char dir[] = "/tmp/voxi-test-wav-XXXXXX";

static int
setup(void **state)
{
    (void) state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void) state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) |
           ((uint32_t) p[3] << 24);
}

static uint16_t
le16(const uint8_t *p)
{
    return (uint16_t) (p[0] | (p[1] << 8));
}

/* Reads the file; checks the canonical header; returns the samples (frames * 2). */
static int16_t *
read_wav(const char *path, size_t *frames, int rate)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t data[4 << 20];
    size_t n = fread(data, 1, sizeof(data), f);
    fclose(f);
    assert_true(n >= 44);
    assert_memory_equal(data, "RIFF", 4);
    assert_int_equal(le32(data + 4), n - 8);
    assert_memory_equal(data + 8, "WAVEfmt ", 8);
    assert_int_equal(le32(data + 16), 16);
    assert_int_equal(le16(data + 20), 1);
    assert_int_equal(le16(data + 22), 2);
    assert_int_equal(le32(data + 24), (uint32_t) rate);
    assert_int_equal(le32(data + 28), (uint32_t) rate * 4);
    assert_int_equal(le16(data + 32), 4);
    assert_int_equal(le16(data + 34), 16);
    assert_memory_equal(data + 36, "data", 4);
    assert_int_equal(le32(data + 40), n - 44);
    assert_int_equal((n - 44) % 4, 0);
    *frames = (n - 44) / 4;
    int16_t *s = malloc(n - 44 + 4);
    memcpy(s, data + 44, n - 44);
    return s;
}

static void
test_channels_and_header(void **state)
{
    (void) state;
    char path[256];
    snprintf(path, sizeof(path), "%s/call.wav", dir);
    md_wav_t *w = NULL;
    assert_int_equal(md_wav_create(path, 16000, &w), LC_OK);
    /* One second in 20 ms frames; the agent side is written 3 frames behind, in 40 ms
     * chunks, as a playout clock and a receive path would. */
    int16_t caller[320], agent[640];
    for (int f = 0; f < 50; f++) {
        for (int i = 0; i < 320; i++)
            caller[i] = (int16_t) (f * 320 + i);
        assert_int_equal(md_wav_write(w, MD_WAV_CALLER, caller, 320), LC_OK);
        if (f >= 3 && f % 2 == 1) {
            int first = (f - 3) * 320;
            for (int i = 0; i < 640; i++)
                agent[i] = (int16_t) - (first + i);
            assert_int_equal(md_wav_write(w, MD_WAV_AGENT, agent, 640), LC_OK);
        }
    }
    md_wav_stats_t st;
    md_wav_get_stats(w, &st);
    /* Writes went out in batches of >= 100 ms, before close. */
    assert_true(st.frames_written >= 8000);
    assert_true(st.writes >= 1 && st.writes <= st.frames_written / 1600);
    assert_int_equal(md_wav_close(w), LC_OK);

    size_t frames;
    int16_t *s = read_wav(path, &frames, 16000);
    /* Caller wrote 16000 samples, the agent 15360: the agent's tail is padded. */
    assert_int_equal(frames, 16000);
    for (size_t i = 0; i < frames; i++) {
        if (s[2 * i] != (int16_t) i)
            fail_msg("left[%zu] = %d", i, s[2 * i]);
        int16_t want_right = i < 15360 ? (int16_t) - (int) i : 0;
        if (s[2 * i + 1] != want_right)
            fail_msg("right[%zu] = %d, want %d", i, s[2 * i + 1], want_right);
    }
    free(s);
}

static void
test_stalled_channel_is_padded(void **state)
{
    (void) state;
    char path[256];
    snprintf(path, sizeof(path), "%s/stall.wav", dir);
    md_wav_t *w = NULL;
    assert_int_equal(md_wav_create(path, 8000, &w), LC_OK);
    /* Only the caller talks for 3 s: memory stays bounded, the agent gets silence. */
    int16_t pcm[160];
    for (int i = 0; i < 160; i++)
        pcm[i] = 1000;
    for (int f = 0; f < 150; f++)
        assert_int_equal(md_wav_write(w, MD_WAV_CALLER, pcm, 160), LC_OK);
    md_wav_stats_t st;
    md_wav_get_stats(w, &st);
    assert_true(st.padded_samples >= 24000 - 8000 * (MD_WAV_MAX_SKEW_MS + MD_WAV_FLUSH_MS) / 1000);
    assert_true(st.frames_written >= 24000 - 8000 * (MD_WAV_MAX_SKEW_MS + MD_WAV_FLUSH_MS) / 1000);
    /* The agent starts: its audio lands after the padding, aligned with the caller's. */
    int16_t agent[160];
    for (int i = 0; i < 160; i++)
        agent[i] = 7;
    assert_int_equal(md_wav_write(w, MD_WAV_AGENT, agent, 160), LC_OK);
    assert_int_equal(md_wav_close(w), LC_OK);
    size_t frames;
    int16_t *s = read_wav(path, &frames, 8000);
    assert_true(frames >= 24000);
    size_t left_count = 0, right_sevens = 0;
    for (size_t i = 0; i < frames; i++) {
        left_count += s[2 * i] == 1000;
        right_sevens += s[2 * i + 1] == 7;
    }
    assert_int_equal(left_count, 24000);
    assert_int_equal(right_sevens, 160);
    free(s);
}

static void
test_errors(void **state)
{
    (void) state;
    md_wav_t *w = NULL;
    assert_int_equal(md_wav_create("/nonexistent-dir/x.wav", 16000, &w), LC_ERR_IO);
    assert_null(w);
    char path[256];
    snprintf(path, sizeof(path), "%s/e.wav", dir);
    assert_int_equal(md_wav_create(path, 4000, &w), LC_ERR_INVALID);
    assert_int_equal(md_wav_create(NULL, 16000, &w), LC_ERR_INVALID);
    assert_int_equal(md_wav_create(path, 16000, &w), LC_OK);
    assert_int_equal(md_wav_write(w, (md_wav_channel_t) 2, NULL, 0), LC_ERR_INVALID);
    assert_int_equal(md_wav_write(w, MD_WAV_CALLER, NULL, 10), LC_ERR_INVALID);
    assert_int_equal(md_wav_write(w, MD_WAV_CALLER, NULL, 0), LC_OK);
    /* An empty recording is a valid WAV with no data. */
    assert_int_equal(md_wav_close(w), LC_OK);
    size_t frames;
    free(read_wav(path, &frames, 16000));
    assert_int_equal(frames, 0);
    assert_int_equal(md_wav_close(NULL), LC_OK);
    md_wav_destroy(NULL);

    /* The disk refuses more (a file size limit, like a full disk): writes fail with
     * LC_ERR_IO and are counted, memory stays bounded, close reports it and still frees. */
    struct rlimit old_limit, small = {.rlim_cur = 20000, .rlim_max = RLIM_INFINITY};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    small.rlim_max = old_limit.rlim_max;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    snprintf(path, sizeof(path), "%s/full.wav", dir);
    assert_int_equal(md_wav_create(path, 16000, &w), LC_OK);
    int16_t pcm[320] = {0};
    int failures = 0;
    for (int f = 0; f < 100; f++) {
        failures += md_wav_write(w, MD_WAV_CALLER, pcm, 320) != LC_OK;
        failures += md_wav_write(w, MD_WAV_AGENT, pcm, 320) != LC_OK;
    }
    md_wav_stats_t st;
    md_wav_get_stats(w, &st);
    assert_true(failures > 0);
    assert_true(st.write_errors > 0);
    assert_true(st.dropped_samples > 0);
    assert_true(st.frames_written * 4 <= 20000);
    assert_int_equal(md_wav_close(w), LC_OK); /* the header rewrite fits under the limit */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    signal(SIGXFSZ, old_handler);
    /* What did get written is a consistent file. */
    free(read_wav(path, &frames, 16000));
    assert_int_equal(frames, st.frames_written);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channels_and_header),
        cmocka_unit_test(test_stalled_channel_is_padded),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
