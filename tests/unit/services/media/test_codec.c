/* Unit tests: codec descriptors; G.711 bit-exactness (tables, real A-law capture, and the
 * 16 kHz pipeline); a 1 kHz tone through every codec keeps its frequency and level; loss
 * concealment (G.711/G.722 pitch repetition fading to silence, Opus PLC and in-band FEC);
 * argument and payload validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/media/md_codec.h"
#include "../../../../services/media/md_g711.h"
#include "../../../../services/media/md_resample.h"
#include "../../../../services/media/md_rtp.h"
#include "pcap_rtp.h"

#define FRAME 320 /* 20 ms at 16 kHz */
#define SECONDS_FRAMES 50

/* Power of frequency f in x[0..n) (Goertzel), normalised so a full sine of amplitude A
 * gives about A^2 / 4 * n^2 / n^2 ... only ratios matter here. */
static double
goertzel(const int16_t *x, size_t n, double f, double rate)
{
    double w = 2.0 * M_PI * f / rate, c = 2.0 * cos(w), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s0 = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return (s1 * s1 + s2 * s2 - c * s1 * s2) / ((double) n * n);
}

static double
rms(const int16_t *x, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e += (double) x[i] * x[i];
    return sqrt(e / (double) n);
}

static void
sine(int16_t *x, size_t n, size_t start, double f, double amp, double rate)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (int16_t) lrint(amp * sin(2.0 * M_PI * f * (double) (start + i) / rate));
}

static void
test_descriptors(void **state)
{
    (void) state;
    const md_codec_desc_t *d = md_codec_find("pcmu", 8000);
    assert_non_null(d);
    assert_int_equal(d->id, MD_CODEC_PCMU);
    assert_int_equal(d->static_payload_type, 0);
    d = md_codec_find("PCMA", 8000);
    assert_non_null(d);
    assert_int_equal(d->static_payload_type, 8);
    d = md_codec_find("g722", 8000);
    assert_non_null(d);
    assert_int_equal(d->id, MD_CODEC_G722);
    assert_int_equal(d->static_payload_type, 9);
    assert_int_equal(d->audio_rate_hz, 16000);
    d = md_codec_find("OPUS", 48000);
    assert_non_null(d);
    assert_int_equal(d->channels_in_rtpmap, 2);
    assert_int_equal(d->static_payload_type, -1);
    assert_null(md_codec_find("opus", 16000));
    assert_null(md_codec_find("G722", 16000));
    assert_null(md_codec_find("GSM", 8000));
    assert_null(md_codec_find(NULL, 8000));
    assert_null(md_codec_desc(MD_CODEC_COUNT_));
    for (int id = 0; id < MD_CODEC_COUNT_; id++)
        assert_int_equal(md_codec_desc((md_codec_id_t) id)->id, id);

    assert_int_equal(md_codec_timestamp_step(MD_CODEC_PCMU, 20), 160);
    assert_int_equal(md_codec_timestamp_step(MD_CODEC_PCMA, 30), 240);
    assert_int_equal(md_codec_timestamp_step(MD_CODEC_G722, 20), 160);
    assert_int_equal(md_codec_timestamp_step(MD_CODEC_OPUS, 20), 960);
    assert_int_equal(md_codec_timestamp_step(MD_CODEC_OPUS, 60), 2880);
}

static void
test_g711_tables_bit_exact(void **state)
{
    (void) state;
    uint8_t in[256], out[256];
    int16_t pcm[256];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t) i;
    md_g711_decode(MD_CODEC_PCMA, in, 256, pcm);
    md_g711_encode(MD_CODEC_PCMA, pcm, 256, out);
    assert_memory_equal(in, out, 256);

    md_g711_decode(MD_CODEC_PCMU, in, 256, pcm);
    md_g711_encode(MD_CODEC_PCMU, pcm, 256, out);
    for (int i = 0; i < 256; i++) {
        if (i == 0x7f) /* mu-law "negative zero" decodes to 0, which encodes as 0xff */
            assert_int_equal(out[i], 0xff);
        else
            assert_int_equal(out[i], in[i]);
    }
    /* Decoded values are distinct (monotonic in magnitude) apart from the two zeros. */
    md_g711_decode(MD_CODEC_PCMU, in, 256, pcm);
    assert_int_equal(pcm[0xff], 0);
    assert_int_equal(pcm[0x7f], 0);
    assert_true(pcm[0x80] > 30000);
    assert_true(pcm[0x00] < -30000);
}

static void
test_g711_real_capture_bit_exact(void **state)
{
    (void) state;
    pcap_rtp_t *cap = pcap_rtp_load("/usr/share/sip-tester/g711a.pcap");
    assert_non_null(cap);
    assert_true(cap->count > 200);
    for (size_t i = 0; i < cap->count; i++) {
        md_rtp_packet_t p;
        assert_int_equal(md_rtp_parse(cap->data[i], cap->len[i], &p), LC_OK);
        int16_t pcm[240];
        uint8_t back[240];
        assert_int_equal(p.payload_len, 240);
        md_g711_decode(MD_CODEC_PCMA, p.payload, p.payload_len, pcm);
        md_g711_encode(MD_CODEC_PCMA, pcm, p.payload_len, back);
        assert_memory_equal(back, p.payload, p.payload_len);
    }
    free(cap);
}

/* The decoder's 16 kHz output carries the exact G.711 values as its even samples, delayed by
 * MD_RESAMPLE_HALFBAND_DELAY: taking them and encoding gives back the bytes that arrived,
 * for the real A-law capture and for random mu-law bytes (full band, the hardest case). */
static void
exact_through_decoder(md_codec_id_t id, const uint8_t *bytes, size_t n, size_t frame)
{
    md_decoder_t *dec = NULL;
    assert_int_equal(md_decoder_create(id, NULL, &dec), LC_OK);
    int16_t *pcm16 = malloc(2 * (n + frame) * sizeof(int16_t));
    size_t got = 0;
    for (size_t off = 0; off < n; off += frame) {
        int r = md_decode(dec, bytes + off, frame, pcm16 + got, 2 * frame);
        assert_int_equal(r, (int) (2 * frame));
        got += (size_t) r;
    }
    const size_t d = MD_RESAMPLE_HALFBAND_DELAY;
    size_t checked = 0;
    for (size_t i = 0; i + d < n; i++) {
        uint8_t back;
        md_g711_encode(id, &pcm16[2 * (i + d)], 1, &back);
        uint8_t want = bytes[i];
        if (id == MD_CODEC_PCMU && want == 0x7f)
            want = 0xff; /* negative zero */
        if (back != want)
            fail_msg("byte %zu: sent 0x%02x, 16 kHz sample %d re-encodes to 0x%02x", i, bytes[i],
                     pcm16[2 * (i + d)], back);
        checked++;
    }
    assert_true(checked + d == n);
    free(pcm16);
    md_decoder_destroy(dec);
}

static void
test_g711_decoder_keeps_exact_samples(void **state)
{
    (void) state;
    pcap_rtp_t *cap = pcap_rtp_load("/usr/share/sip-tester/g711a.pcap");
    assert_non_null(cap);
    uint8_t *bytes = malloc(cap->count * 240);
    for (size_t i = 0; i < cap->count; i++) {
        md_rtp_packet_t p;
        assert_int_equal(md_rtp_parse(cap->data[i], cap->len[i], &p), LC_OK);
        memcpy(bytes + i * 240, p.payload, 240);
    }
    exact_through_decoder(MD_CODEC_PCMA, bytes, cap->count * 240, 240);
    free(bytes);
    free(cap);

    uint8_t random_bytes[160 * 50];
    srand(4733);
    for (size_t i = 0; i < sizeof(random_bytes); i++)
        random_bytes[i] = (uint8_t) (rand() & 0xff);
    exact_through_decoder(MD_CODEC_PCMU, random_bytes, sizeof(random_bytes), 160);
    exact_through_decoder(MD_CODEC_PCMA, random_bytes, sizeof(random_bytes), 160);
}

/* The echo path, decode to 16 kHz then encode to 8 kHz: the encoder's anti-aliasing filter
 * is not transparent, so for telephone-band audio the bytes come back mostly identical and
 * nearly all within one quantisation step of what was sent, not bit-exact (measured here:
 * 96% identical, 99.8% within a step). */
static void
test_g711_echo_path_within_one_step(void **state)
{
    (void) state;
    enum { N = 8000 * 3 };
    static int16_t src[N];
    static uint8_t sent[N], back[N];
    /* Telephone-band multi-tone with a moving envelope, -12 dBFS peak. */
    for (size_t i = 0; i < N; i++) {
        double t = (double) i / 8000.0, v = 0;
        const double f[] = {310, 777, 1234, 1900, 2450, 3100};
        for (size_t k = 0; k < 6; k++)
            v += sin(2 * M_PI * f[k] * t + (double) k);
        src[i] = (int16_t) lrint(1300 * v * (0.6 + 0.4 * sin(2 * M_PI * 1.3 * t)));
    }
    md_g711_encode(MD_CODEC_PCMU, src, N, sent);
    md_decoder_t *dec = NULL;
    md_encoder_t *enc = NULL;
    assert_int_equal(md_decoder_create(MD_CODEC_PCMU, NULL, &dec), LC_OK);
    assert_int_equal(md_encoder_create(MD_CODEC_PCMU, NULL, &enc), LC_OK);
    for (size_t off = 0; off < N; off += 160) {
        int16_t pcm16[FRAME];
        assert_int_equal(md_decode(dec, sent + off, 160, pcm16, FRAME), FRAME);
        assert_int_equal(md_encode(enc, pcm16, FRAME, back + off, 160), 160);
    }
    /* Delay: the half-band's 24 samples plus speexdsp's (reported in 8 kHz samples). */
    int best_delay = 0;
    double best = -1;
    for (int delay = 0; delay < 200; delay++) {
        double c = 0;
        for (size_t i = 800; i + (size_t) delay < N; i++)
            c += (double) src[i] * (double) (int8_t) (back[i + (size_t) delay] ^ 0x80);
        if (c > best) {
            best = c;
            best_delay = delay;
        }
    }
    size_t exact = 0, within = 0, total = 0;
    for (size_t i = 800; i + (size_t) best_delay < N; i++) {
        /* mu-law: complemented bits; bit 7 sign, bits 0..6 magnitude index */
        uint8_t x = (uint8_t) ~sent[i], y = (uint8_t) ~back[i + (size_t) best_delay];
        int qx = (x & 0x80) ? -(x & 0x7f) : (x & 0x7f);
        int qy = (y & 0x80) ? -(y & 0x7f) : (y & 0x7f);
        exact += x == y;
        within += abs(qx - qy) <= 1;
        total++;
    }
    print_message("G.711 echo path: delay %d samples, %zu/%zu exact, %zu within one step\n",
                  best_delay, exact, total, within);
    assert_true(best_delay >= MD_RESAMPLE_HALFBAND_DELAY && best_delay < 100);
    assert_true(within >= total * 995 / 1000);
    assert_true(exact >= total * 90 / 100);
    md_decoder_destroy(dec);
    md_encoder_destroy(enc);
}

/* A 1 kHz tone at -10 dBFS through encode and decode keeps its frequency (the spectral peak
 * is at 1 kHz and holds most of the energy) and its level. */
static void
tone_through(md_codec_id_t id, double level_tolerance_db, double min_purity)
{
    md_codec_params_t params = {.ptime_ms = 20};
    md_encoder_t *enc = NULL;
    md_decoder_t *dec = NULL;
    assert_int_equal(md_encoder_create(id, &params, &enc), LC_OK);
    assert_int_equal(md_decoder_create(id, &params, &dec), LC_OK);
    const double amp = 32767 * 0.316 * sqrt(2) / sqrt(2); /* -10 dBFS peak */
    int16_t in[FRAME * SECONDS_FRAMES], out[FRAME * SECONDS_FRAMES];
    sine(in, FRAME * SECONDS_FRAMES, 0, 1000, amp, 16000);
    size_t total = 0;
    for (int f = 0; f < SECONDS_FRAMES; f++) {
        uint8_t payload[MD_MAX_PAYLOAD_BYTES];
        size_t len = md_encode(enc, in + f * FRAME, FRAME, payload, sizeof(payload));
        assert_true(len > 0);
        if (id == MD_CODEC_PCMU || id == MD_CODEC_PCMA || id == MD_CODEC_G722)
            assert_int_equal(len, 160);
        int n = md_decode(dec, payload, len, out + total, FRAME);
        assert_int_equal(n, FRAME);
        total += (size_t) n;
    }
    /* Skip the first 200 ms (codec and resampler start-up). */
    const int16_t *steady = out + 10 * FRAME;
    size_t len = total - 10 * FRAME;
    double peak_f = 0, peak_p = 0;
    for (double f = 500; f <= 1500; f += 10) {
        double p = goertzel(steady, len, f, 16000);
        if (p > peak_p) {
            peak_p = p;
            peak_f = f;
        }
    }
    double in_rms = rms(in + 10 * FRAME, len), out_rms = rms(steady, len);
    double level_db = 20 * log10(out_rms / in_rms);
    /* Tone power over total power: a pure sine of amplitude A has Goertzel power A^2/4 and
     * mean square A^2/2. */
    double purity = 2 * goertzel(steady, len, 1000, 16000) / (out_rms * out_rms);
    print_message("%s: peak %.0f Hz, level %+.2f dB, purity %.4f\n",
                  md_codec_desc(id)->encoding_name, peak_f, level_db, purity);
    assert_true(fabs(peak_f - 1000) <= 10);
    assert_true(fabs(level_db) <= level_tolerance_db);
    assert_true(purity >= min_purity);
    md_encoder_destroy(enc);
    md_decoder_destroy(dec);
}

static void
test_tone_pcmu(void **state)
{
    (void) state;
    tone_through(MD_CODEC_PCMU, 0.5, 0.99);
}

static void
test_tone_pcma(void **state)
{
    (void) state;
    tone_through(MD_CODEC_PCMA, 0.5, 0.99);
}

static void
test_tone_g722(void **state)
{
    (void) state;
    tone_through(MD_CODEC_G722, 0.5, 0.99);
}

static void
test_tone_opus(void **state)
{
    (void) state;
    tone_through(MD_CODEC_OPUS, 1.5, 0.95);
}

/* Decode 200 ms of tone, lose frames, and look at the concealment. */
static void
plc_for(md_codec_id_t id)
{
    md_codec_params_t params = {.ptime_ms = 20};
    md_encoder_t *enc = NULL;
    md_decoder_t *dec = NULL;
    assert_int_equal(md_encoder_create(id, &params, &enc), LC_OK);
    assert_int_equal(md_decoder_create(id, &params, &dec), LC_OK);
    int16_t in[FRAME], out[FRAME];
    size_t pos = 0;
    double amp = 8000;
    for (int f = 0; f < 10; f++, pos += FRAME) {
        sine(in, FRAME, pos, 500, amp, 16000);
        uint8_t payload[MD_MAX_PAYLOAD_BYTES];
        size_t len = md_encode(enc, in, FRAME, payload, sizeof(payload));
        assert_int_equal(md_decode(dec, payload, len, out, FRAME), FRAME);
    }
    double good_rms = rms(out, FRAME);
    /* First lost frame: the tone goes on at about its level and pitch. */
    assert_int_equal(md_decode_plc(dec, NULL, 0, out, FRAME), FRAME);
    double first_rms = rms(out, FRAME);
    double purity = 2 * goertzel(out, FRAME, 500, 16000) / (first_rms * first_rms);
    print_message("%s PLC: good rms %.0f, first concealed rms %.0f, purity %.3f\n",
                  md_codec_desc(id)->encoding_name, good_rms, first_rms, purity);
    assert_true(first_rms > good_rms * 0.5);
    assert_true(purity > 0.8);
    /* A long loss fades out (G.711 Appendix I: silence after 60 ms; Opus fades too). */
    double last_rms = 0;
    for (int f = 0; f < 10; f++) {
        assert_int_equal(md_decode_plc(dec, NULL, 0, out, FRAME), FRAME);
        last_rms = rms(out, FRAME);
    }
    print_message("%s PLC: after 220 ms rms %.1f\n", md_codec_desc(id)->encoding_name, last_rms);
    assert_true(last_rms < good_rms * 0.05);
    /* Audio resumes: the next good frame decodes normally. */
    sine(in, FRAME, pos, 500, amp, 16000);
    uint8_t payload[MD_MAX_PAYLOAD_BYTES];
    size_t len = md_encode(enc, in, FRAME, payload, sizeof(payload));
    assert_int_equal(md_decode(dec, payload, len, out, FRAME), FRAME);
    md_encoder_destroy(enc);
    md_decoder_destroy(dec);
}

static void
test_plc_g711(void **state)
{
    (void) state;
    plc_for(MD_CODEC_PCMU);
}

static void
test_plc_g722(void **state)
{
    (void) state;
    plc_for(MD_CODEC_G722);
}

static void
test_plc_opus(void **state)
{
    (void) state;
    plc_for(MD_CODEC_OPUS);
}

static double
err_energy(const int16_t *a, const int16_t *b, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
    return e;
}

/* Opus in-band FEC: a lost frame recovered from the next packet's LBRR data is much closer
 * to what the decoder would have produced than plain concealment is. */
static void
test_opus_fec_recovers_lost_frame(void **state)
{
    (void) state;
    md_codec_params_t params = {.ptime_ms = 20, .opus_inband_fec = true};
    md_encoder_t *enc = NULL;
    md_decoder_t *ref = NULL, *fec = NULL, *plc = NULL;
    assert_int_equal(md_encoder_create(MD_CODEC_OPUS, &params, &enc), LC_OK);
    assert_int_equal(md_decoder_create(MD_CODEC_OPUS, &params, &ref), LC_OK);
    assert_int_equal(md_decoder_create(MD_CODEC_OPUS, &params, &fec), LC_OK);
    assert_int_equal(md_decoder_create(MD_CODEC_OPUS, &params, &plc), LC_OK);
    /* A voice-like signal whose pitch and loudness move, so extrapolation cannot guess. */
    enum { N = 40, LOST = 25 };
    static uint8_t payloads[N][MD_MAX_PAYLOAD_BYTES];
    size_t lens[N];
    double phase = 0;
    for (int f = 0; f < N; f++) {
        int16_t in[FRAME];
        for (int i = 0; i < FRAME; i++) {
            double t = (f * FRAME + i) / 16000.0;
            double f0 = 150 + 60 * sin(2 * M_PI * 3 * t);
            phase += 2 * M_PI * f0 / 16000.0;
            double env = 0.5 + 0.5 * sin(2 * M_PI * 5 * t);
            double v = 0;
            for (int h = 1; h <= 8; h++)
                v += sin(h * phase) / h;
            in[i] = (int16_t) lrint(6000 * env * v);
        }
        lens[f] = md_encode(enc, in, FRAME, payloads[f], sizeof(payloads[f]));
        assert_true(lens[f] > 0);
    }
    int16_t want[FRAME], got_fec[FRAME], got_plc[FRAME], scratch[FRAME];
    for (int f = 0; f < N; f++) {
        assert_int_equal(md_decode(ref, payloads[f], lens[f], f == LOST ? want : scratch, FRAME),
                         FRAME);
        if (f == LOST) {
            assert_int_equal(md_decode_plc(fec, payloads[f + 1], lens[f + 1], got_fec, FRAME),
                             FRAME);
            assert_int_equal(md_decode_plc(plc, NULL, 0, got_plc, FRAME), FRAME);
            continue;
        }
        assert_int_equal(md_decode(fec, payloads[f], lens[f], scratch, FRAME), FRAME);
        assert_int_equal(md_decode(plc, payloads[f], lens[f], scratch, FRAME), FRAME);
    }
    double e_fec = err_energy(want, got_fec, FRAME), e_plc = err_energy(want, got_plc, FRAME);
    double e_sig = err_energy(want, (int16_t[FRAME]){0}, FRAME);
    print_message("opus lost frame: error energy FEC %.3g, PLC %.3g, signal %.3g\n", e_fec, e_plc,
                  e_sig);
    assert_true(e_fec < e_plc / 4);
    assert_true(e_fec < e_sig / 4);
    md_encoder_destroy(enc);
    md_decoder_destroy(ref);
    md_decoder_destroy(fec);
    md_decoder_destroy(plc);
}

static void
test_invalid_arguments(void **state)
{
    (void) state;
    md_encoder_t *enc = NULL;
    md_decoder_t *dec = NULL;
    md_codec_params_t bad_ptime = {.ptime_ms = 25};
    assert_int_equal(md_encoder_create(MD_CODEC_PCMU, &bad_ptime, &enc), LC_ERR_INVALID);
    assert_null(enc);
    md_codec_params_t p30 = {.ptime_ms = 30};
    assert_int_equal(md_encoder_create(MD_CODEC_OPUS, &p30, &enc), LC_ERR_INVALID);
    assert_int_equal(md_encoder_create(MD_CODEC_COUNT_, NULL, &enc), LC_ERR_INVALID);
    assert_int_equal(md_decoder_create((md_codec_id_t) -1, NULL, &dec), LC_ERR_INVALID);
    md_encoder_destroy(NULL);
    md_decoder_destroy(NULL);

    /* NULL params: 20 ms defaults. */
    assert_int_equal(md_encoder_create(MD_CODEC_OPUS, NULL, &enc), LC_OK);
    assert_int_equal(md_decoder_create(MD_CODEC_OPUS, NULL, &dec), LC_OK);
    int16_t pcm[MD_MAX_FRAME_SAMPLES] = {0};
    uint8_t out[MD_MAX_PAYLOAD_BYTES];
    assert_int_equal(md_encode(enc, pcm, 300, out, sizeof(out)), 0); /* not an opus frame */
    assert_int_equal(md_encode(enc, pcm, MD_MAX_FRAME_SAMPLES + 2, out, sizeof(out)), 0);
    assert_true(md_encode(enc, pcm, 640, out, sizeof(out)) > 0); /* 40 ms is */
    assert_int_equal(md_decode(dec, out, 0, pcm, FRAME), -1);
    /* Code 3 packet (TOC 0x03) announcing 0 frames: invalid. */
    const uint8_t corrupt[] = {0x03, 0x00};
    assert_int_equal(md_decode(dec, corrupt, sizeof(corrupt), pcm, FRAME), -1);
    /* A 40 ms packet does not fit a 20 ms buffer. */
    size_t len = md_encode(enc, pcm, 640, out, sizeof(out));
    assert_int_equal(md_decode(dec, out, len, pcm, FRAME), -1);
    md_encoder_destroy(enc);
    md_decoder_destroy(dec);

    assert_int_equal(md_decoder_create(MD_CODEC_PCMU, NULL, &dec), LC_OK);
    uint8_t big[200] = {0};
    assert_int_equal(md_decode(dec, big, 200, pcm, FRAME), -1); /* 400 samples > 320 */
    assert_int_equal(md_decode(dec, big, 160, pcm, FRAME), FRAME);
    assert_int_equal(md_decode(dec, NULL, 160, pcm, FRAME), -1);
    md_decoder_destroy(dec);

    /* G.711 out buffer too small for the payload. */
    assert_int_equal(md_encoder_create(MD_CODEC_PCMA, NULL, &enc), LC_OK);
    assert_int_equal(md_encode(enc, pcm, FRAME, out, 100), 0);
    assert_int_equal(md_encode(enc, pcm, FRAME - 1, out, sizeof(out)), 0);
    assert_int_equal(md_encode(enc, pcm, FRAME, out, sizeof(out)), 160);
    md_encoder_destroy(enc);
}

static void
test_resampler(void **state)
{
    (void) state;
    md_resampler_t *up = NULL, *down = NULL;
    assert_int_equal(md_resampler_create(8000, 16000, MD_RESAMPLE_QUALITY_DEFAULT, &up), LC_OK);
    assert_int_equal(md_resampler_create(4000, 16000, 5, &down), LC_ERR_INVALID);
    assert_null(down);
    assert_int_equal(md_resampler_create(48000, 16000, 11, &down), LC_ERR_INVALID);
    assert_int_equal(md_resampler_create(48000, 16000, 5, &down), LC_OK);
    int16_t in[960], out[960];
    for (int f = 0; f < 10; f++) {
        sine(in, 160, (size_t) f * 160, 1000, 10000, 8000);
        assert_int_equal(md_resample(up, in, 160, out, 960), 320);
        sine(in, 960, (size_t) f * 960, 1000, 10000, 48000);
        assert_int_equal(md_resample(down, in, 960, out, 960), 320);
    }
    double p = goertzel(out, 320, 1000, 16000);
    assert_true(2 * p / (rms(out, 320) * rms(out, 320)) > 0.99);
    assert_true(fabs(20 * log10(rms(out, 320) / (10000 / sqrt(2)))) < 0.2);
    assert_true(md_resampler_latency(up) > 0);
    md_resampler_reset(up);

    /* Half-band interpolator: flat in the telephone band, images above 4 kHz suppressed. */
    md_resampler_t *hb = NULL;
    assert_int_equal(md_resampler_create_halfband_up(&hb), LC_OK);
    assert_int_equal(md_resampler_latency(hb), 2 * MD_RESAMPLE_HALFBAND_DELAY);
    const double freqs[] = {300, 1000, 3000, 3400};
    for (size_t k = 0; k < 4; k++) {
        static int16_t x[8000], y[16000];
        sine(x, 8000, 0, freqs[k], 10000, 8000);
        md_resampler_reset(hb);
        assert_int_equal(md_resample(hb, x, 8000, y, 16000), 16000);
        const int16_t *steady = y + 1000;
        double level = 20 * log10(rms(steady, 14000) / (10000 / sqrt(2)));
        double image = goertzel(steady, 14000, 8000 - freqs[k], 16000);
        double tone = goertzel(steady, 14000, freqs[k], 16000);
        double image_db = 10 * log10(image / tone + 1e-20);
        print_message("half-band %.0f Hz: level %+.3f dB, image at %.0f Hz %.1f dB\n", freqs[k],
                      level, 8000 - freqs[k], image_db);
        assert_true(fabs(level) < 0.05);
        assert_true(image_db < -60);
    }
    md_resampler_destroy(hb);
    md_resampler_destroy(up);
    md_resampler_destroy(down);
    md_resampler_destroy(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptors),
        cmocka_unit_test(test_g711_tables_bit_exact),
        cmocka_unit_test(test_g711_real_capture_bit_exact),
        cmocka_unit_test(test_g711_decoder_keeps_exact_samples),
        cmocka_unit_test(test_g711_echo_path_within_one_step),
        cmocka_unit_test(test_tone_pcmu),
        cmocka_unit_test(test_tone_pcma),
        cmocka_unit_test(test_tone_g722),
        cmocka_unit_test(test_tone_opus),
        cmocka_unit_test(test_plc_g711),
        cmocka_unit_test(test_plc_g722),
        cmocka_unit_test(test_plc_opus),
        cmocka_unit_test(test_opus_fec_recovers_lost_frame),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_resampler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
