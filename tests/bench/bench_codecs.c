/*
 * Benchmark: CPU time per 20 ms frame of the media DSP path: encode and decode of every codec
 * (16 kHz PCM in and out), loss concealment, resampling 8k <-> 16k, jitter buffer put + get,
 * RTP parse, SRTP protect + unprotect. Prints one line per operation; never fails on time.
 *
 *   build/tests/bench/bench_codecs [frames]      (scripts/bench.sh saves the output)
 *
 * Each figure is the median over 7 rounds of the mean time per frame (CLOCK_MONOTONIC), on a
 * voice-like signal (a harmonic series on a moving pitch with a syllable envelope).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../services/media/md_codec.h"
#include "../../services/media/md_jitter.h"
#include "../../services/media/md_resample.h"
#include "../../services/media/md_rtp.h"
#include "../../services/media/md_srtp.h"

#define FRAME 320
#define ROUNDS 7
#define SIGNAL_FRAMES 250 /* 5 s, reused cyclically */

static int16_t signal16k[SIGNAL_FRAMES * FRAME];
static int16_t signal8k[SIGNAL_FRAMES * FRAME / 2];
static volatile uint64_t sink; /* keeps results alive */

static double
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static void
make_signal(void)
{
    double phase = 0;
    for (size_t i = 0; i < SIGNAL_FRAMES * FRAME; i++) {
        double t = (double) i / 16000.0;
        phase += 2 * M_PI * (140 + 50 * sin(2 * M_PI * 2.5 * t)) / 16000.0;
        double v = 0;
        for (int h = 1; h <= 20; h++)
            v += sin(h * phase) / h;
        double env = fmax(0.0, sin(2 * M_PI * 3 * t));
        signal16k[i] = (int16_t) lrint(6000 * env * v);
    }
    for (size_t i = 0; i < SIGNAL_FRAMES * FRAME / 2; i++)
        signal8k[i] = signal16k[2 * i];
}

typedef void (*op_fn)(void *ctx, int frame);

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static void
measure(const char *name, op_fn fn, void *ctx, int frames)
{
    double per_frame[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_us();
        for (int f = 0; f < frames; f++)
            fn(ctx, f);
        per_frame[r] = (now_us() - t0) / frames;
    }
    qsort(per_frame, ROUNDS, sizeof(double), cmp_double);
    printf("%-34s %9.3f us/frame  (min %.3f, max %.3f)\n", name, per_frame[ROUNDS / 2],
           per_frame[0], per_frame[ROUNDS - 1]);
}

/* ---- codecs ---- */

typedef struct {
    md_encoder_t *enc;
    md_decoder_t *dec;
    uint8_t payloads[SIGNAL_FRAMES][MD_MAX_PAYLOAD_BYTES];
    size_t lens[SIGNAL_FRAMES];
    int16_t out[FRAME];
} codec_ctx_t;

static void
op_encode(void *ctx, int f)
{
    codec_ctx_t *c = ctx;
    int k = f % SIGNAL_FRAMES;
    c->lens[k] =
        md_encode(c->enc, signal16k + k * FRAME, FRAME, c->payloads[k], MD_MAX_PAYLOAD_BYTES);
    sink += c->lens[k];
}

static void
op_decode(void *ctx, int f)
{
    codec_ctx_t *c = ctx;
    int k = f % SIGNAL_FRAMES;
    sink += (uint64_t) md_decode(c->dec, c->payloads[k], c->lens[k], c->out, FRAME);
}

static void
op_plc(void *ctx, int f)
{
    codec_ctx_t *c = ctx;
    /* one lost frame in four, so every concealment starts from fresh history */
    int k = f % SIGNAL_FRAMES;
    if (f % 4 == 3)
        sink += (uint64_t) md_decode_plc(c->dec, NULL, 0, c->out, FRAME);
    else
        sink += (uint64_t) md_decode(c->dec, c->payloads[k], c->lens[k], c->out, FRAME);
}

static void
bench_codec(md_codec_id_t id, int frames)
{
    codec_ctx_t *c = calloc(1, sizeof(*c));
    md_codec_params_t p = {.ptime_ms = 20, .opus_inband_fec = id == MD_CODEC_OPUS};
    if (md_encoder_create(id, &p, &c->enc) != LC_OK ||
        md_decoder_create(id, &p, &c->dec) != LC_OK) {
        fprintf(stderr, "cannot create codec %d\n", (int) id);
        exit(1);
    }
    const char *name = md_codec_desc(id)->encoding_name;
    char label[64];
    snprintf(label, sizeof(label), "%s encode (16k PCM -> payload)", name);
    measure(label, op_encode, c, frames);
    size_t bytes = 0;
    for (int k = 0; k < SIGNAL_FRAMES; k++)
        bytes += c->lens[k];
    snprintf(label, sizeof(label), "%s decode (payload -> 16k PCM)", name);
    measure(label, op_decode, c, frames);
    snprintf(label, sizeof(label), "%s decode, 1 in 4 concealed", name);
    measure(label, op_plc, c, frames);
    printf("%-34s %9.1f bytes/frame\n", "", (double) bytes / SIGNAL_FRAMES);
    md_encoder_destroy(c->enc);
    md_decoder_destroy(c->dec);
    free(c);
}

/* ---- resampling ---- */

typedef struct {
    md_resampler_t *r;
    int16_t out[FRAME * 3];
    size_t in_len;
    const int16_t *in;
} rs_ctx_t;

static void
op_resample(void *ctx, int f)
{
    rs_ctx_t *c = ctx;
    int k = f % SIGNAL_FRAMES;
    sink += md_resample(c->r, c->in + (size_t) k * c->in_len, c->in_len, c->out, FRAME * 3);
}

static void
bench_resample(int frames)
{
    rs_ctx_t c = {0};
    md_resampler_create(8000, 16000, MD_RESAMPLE_QUALITY_DEFAULT, &c.r);
    c.in = signal8k;
    c.in_len = FRAME / 2;
    measure("resample 8k -> 16k (speexdsp q5)", op_resample, &c, frames);
    md_resampler_destroy(c.r);
    md_resampler_create_halfband_up(&c.r);
    measure("resample 8k -> 16k (half-band)", op_resample, &c, frames);
    md_resampler_destroy(c.r);
    md_resampler_create(16000, 8000, MD_RESAMPLE_QUALITY_DEFAULT, &c.r);
    c.in = signal16k;
    c.in_len = FRAME;
    measure("resample 16k -> 8k (speexdsp q5)", op_resample, &c, frames);
    md_resampler_destroy(c.r);
}

/* ---- jitter buffer, RTP, SRTP ---- */

typedef struct {
    md_jitter_t *jb;
    uint8_t payload[160];
    uint8_t packet[MD_RTP_MAX_PACKET_BYTES + MD_SRTP_TRAILER_ROOM] __attribute__((aligned(4)));
    size_t packet_len;
    md_srtp_t *out, *in;
    uint32_t n; /* packets so far: sequence numbers keep going across rounds */
} net_ctx_t;

static void
op_jitter(void *ctx, int f)
{
    net_ctx_t *c = ctx;
    (void) f;
    uint32_t n = c->n++;
    /* one packet in, one frame out per 20 ms, the way a call runs */
    md_jitter_put(c->jb, (uint16_t) n, 160u * n, 1, false, c->payload, 160, (int64_t) n * 20);
    const uint8_t *p, *np;
    size_t len, nlen;
    sink += (uint64_t) md_jitter_get(c->jb, (int64_t) n * 20 + 10, &p, &len, &np, &nlen);
}

static void
op_rtp_parse(void *ctx, int f)
{
    net_ctx_t *c = ctx;
    (void) f;
    md_rtp_packet_t p;
    sink += md_rtp_parse(c->packet, c->packet_len, &p) == LC_OK ? p.payload_len : 0;
}

static void
op_srtp(void *ctx, int f)
{
    net_ctx_t *c = ctx;
    (void) f;
    uint32_t n = c->n++;
    size_t len = md_rtp_build(c->packet, sizeof(c->packet), false, 0, (uint16_t) n, 160u * n, 1,
                              c->payload, 160);
    if (md_srtp_protect_rtp(c->out, c->packet, &len, sizeof(c->packet)) != LC_OK ||
        md_srtp_unprotect_rtp(c->in, c->packet, &len) != LC_OK) {
        fprintf(stderr, "SRTP round trip failed at packet %u\n", n);
        exit(1);
    }
    sink += len;
}

static void
bench_net(int frames)
{
    net_ctx_t *c = calloc(1, sizeof(*c));
    memset(c->payload, 0xd5, sizeof(c->payload));
    md_jitter_create(NULL, &c->jb);
    measure("jitter buffer put + get", op_jitter, c, frames);
    md_jitter_destroy(c->jb);
    c->packet_len =
        md_rtp_build(c->packet, sizeof(c->packet), false, 0, 1, 160, 1, c->payload, 160);
    measure("RTP parse (172 bytes)", op_rtp_parse, c, frames);
    md_srtp_crypto_t key;
    md_srtp_crypto_generate(&key, 1, MD_SRTP_AES_CM_128_HMAC_SHA1_80);
    md_srtp_create(&key, MD_SRTP_OUTBOUND, &c->out);
    md_srtp_create(&key, MD_SRTP_INBOUND, &c->in);
    c->n = 0;
    measure("SRTP protect + unprotect (_80)", op_srtp, c, frames);
    md_srtp_destroy(c->out);
    md_srtp_destroy(c->in);
    free(c);
}

int
main(int argc, char **argv)
{
    int frames = argc > 1 ? atoi(argv[1]) : 2000;
    if (frames <= 0)
        frames = 2000;
    make_signal();
    printf("bench_codecs: %d frames of 20 ms per round, median of %d rounds\n", frames, ROUNDS);
    for (int id = 0; id < MD_CODEC_COUNT_; id++)
        bench_codec((md_codec_id_t) id, frames);
    bench_resample(frames);
    bench_net(frames);
    return 0;
}
