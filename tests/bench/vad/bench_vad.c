/*
 * bench_vad: md_vad against the WebRTC VAD on the labelled set build_dataset.py makes.
 *
 *   bench_vad DATADIR OUTPREFIX     writes OUTPREFIX.txt (the tables it prints) and
 *                                   OUTPREFIX.csv (one row per detector, noise and SNR)
 *
 * Conditions: the clean set, and each noise kind mixed at 20, 10, 5 and 0 dB SNR (active
 * speech power over the labelled speech frames against the noise's mean power). Each
 * detector runs over every condition from a fresh instance; its frame decisions are scored
 * against the 20 ms labels (speech = positive), pooled over the noise kinds per SNR. Cost
 * is thread CPU time per 20 ms frame, over every frame of every condition. Two worker
 * threads run the detectors of one condition side by side. Figures only: nothing here
 * passes or fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../services/media/md_vad.h"
#include "webrtc_vad_shim.h"

#define FRAME MD_VAD_FRAME_SAMPLES
#define N_SNR 4
#define N_NOISE 5
#define N_WORKERS 2

static const int snr_db[N_SNR] = {20, 10, 5, 0};
static const char *const noise_name[N_NOISE] = {"white", "pink", "brown", "babble", "hum"};

typedef enum { DET_MD, DET_WEBRTC_APM, DET_WEBRTC_CORE } det_kind_t;

typedef struct {
    det_kind_t kind;
    int mode;
    char name[32];
} detector_t;

typedef struct {
    uint64_t tp, fp, fn, tn;
    double cpu_s;
    uint64_t frames;
} score_t;

static detector_t detectors[12];
static int n_detectors;

/* data */
static int16_t *clean;
static int16_t *noise[N_NOISE];
static uint8_t *labels;
static size_t n_frames;
/* current condition */
static int16_t *mix;
/* results [detector][condition]: condition 0 = clean, 1 + noise * N_SNR + snr */
#define N_COND (1 + N_NOISE * N_SNR)
static score_t results[12][N_COND];

static void *
read_file(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench_vad: %s: %s (run `make bench-vad`, which builds the set)\n", path,
                strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t) n + 1);
    if (!p || fread(p, 1, (size_t) n, f) != (size_t) n) {
        fprintf(stderr, "bench_vad: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t) n;
    return p;
}

static double
thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static void
run_detector(const detector_t *d, score_t *sc)
{
    md_vad_t *md = NULL;
    bench_webrtc_vad_t *wr = NULL;
    if (d->kind == DET_MD) {
        md_vad_opts_t o;
        md_vad_opts_default(&o);
        o.aggressiveness = d->mode;
        if (md_vad_create(&o, &md) != LC_OK)
            abort();
    } else {
        wr = bench_webrtc_vad_create(
            d->kind == DET_WEBRTC_APM ? BENCH_WEBRTC_APM : BENCH_WEBRTC_CORE, d->mode);
        if (!wr) {
            fprintf(stderr, "bench_vad: WebRTC VAD refused mode %d\n", d->mode);
            exit(2);
        }
    }
    uint8_t *decision = malloc(n_frames);
    double t0 = thread_cpu_s();
    for (size_t i = 0; i < n_frames; i++) {
        const int16_t *pcm = mix + i * FRAME;
        if (md) {
            md_vad_result_t r;
            md_vad_process(md, pcm, FRAME, &r);
            decision[i] = r.frame_speech;
        } else {
            int s = bench_webrtc_vad_process(wr, pcm);
            if (s < 0)
                abort();
            decision[i] = (uint8_t) s;
        }
    }
    sc->cpu_s = thread_cpu_s() - t0;
    sc->frames = n_frames;
    for (size_t i = 0; i < n_frames; i++) {
        if (labels[i])
            decision[i] ? sc->tp++ : sc->fn++;
        else
            decision[i] ? sc->fp++ : sc->tn++;
    }
    free(decision);
    md_vad_destroy(md);
    bench_webrtc_vad_destroy(wr);
}

/* the detectors of one condition, shared out between the workers */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static int next_job;
static int current_cond;

static void *
worker(void *arg)
{
    (void) arg;
    for (;;) {
        pthread_mutex_lock(&job_lock);
        int j = next_job++;
        pthread_mutex_unlock(&job_lock);
        if (j >= n_detectors)
            return NULL;
        run_detector(&detectors[j], &results[j][current_cond]);
    }
}

static void
run_condition(int cond)
{
    current_cond = cond;
    next_job = 0;
    pthread_t t[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < N_WORKERS; i++)
        pthread_join(t[i], NULL);
}

static void
make_mix(int k, int snr)
{
    size_t n = n_frames * FRAME;
    double ps = 0, pn = 0;
    uint64_t speech = 0;
    for (size_t i = 0; i < n_frames; i++) {
        if (!labels[i])
            continue;
        speech++;
        for (size_t j = i * FRAME; j < (i + 1) * FRAME; j++)
            ps += (double) clean[j] * clean[j];
    }
    ps /= (double) (speech * FRAME);
    for (size_t j = 0; j < n; j++)
        pn += (double) noise[k][j] * noise[k][j];
    pn /= (double) n;
    double g = sqrt(ps / (pn * pow(10.0, snr / 10.0)));
    for (size_t j = 0; j < n; j++) {
        double v = clean[j] + g * noise[k][j];
        mix[j] = (int16_t) (v > 32767 ? 32767 : v < -32768 ? -32768 : lrint(v));
    }
}

typedef struct {
    double p, r, f1;
} prf_t;

static prf_t
prf(uint64_t tp, uint64_t fp, uint64_t fn)
{
    prf_t x;
    x.p = tp + fp ? (double) tp / (double) (tp + fp) : 0;
    x.r = tp + fn ? (double) tp / (double) (tp + fn) : 0;
    x.f1 = x.p + x.r > 0 ? 2 * x.p * x.r / (x.p + x.r) : 0;
    return x;
}

/* pooled over the noise kinds at one SNR (snr < 0: the clean condition), all of them or
 * only the stationary ones (all but babble) */
static prf_t
pooled_noises(int d, int snr, bool stationary_only)
{
    uint64_t tp = 0, fp = 0, fn = 0;
    for (int c = 0; c < N_COND; c++) {
        bool take = snr < 0 ? c == 0 : c > 0 && (c - 1) % N_SNR == snr;
        if (take && stationary_only && c > 0 && strcmp(noise_name[(c - 1) / N_SNR], "babble") == 0)
            take = false;
        if (!take)
            continue;
        tp += results[d][c].tp;
        fp += results[d][c].fp;
        fn += results[d][c].fn;
    }
    return prf(tp, fp, fn);
}

static prf_t
pooled(int d, int snr)
{
    return pooled_noises(d, snr, false);
}

static double
us_per_frame(int d)
{
    double s = 0;
    uint64_t f = 0;
    for (int c = 0; c < N_COND; c++) {
        s += results[d][c].cpu_s;
        f += results[d][c].frames;
    }
    return f ? s * 1e6 / (double) f : 0;
}

static void
report(FILE *out, const char *meta, const char *cpu)
{
    fprintf(out, "VAD benchmark (tests/bench/vad): frame decisions against 20 ms energy labels\n");
    fprintf(out, "%s", meta);
    fprintf(out, "cpu %s, cost in thread CPU time (two workers)\n", cpu);
    fprintf(out,
            "conditions: clean, and %d noises (white pink brown babble hum) x SNR 20/10/5/0 dB;"
            " P/R/F1 pooled over the noises\n\n",
            N_NOISE);
    fprintf(out, "%-16s %8s |", "detector", "us/frame");
    fprintf(out, " %-17s |", "clean  P    R    F1");
    for (int s = 0; s < N_SNR; s++)
        fprintf(out, " %2d dB  P    R    F1 |", snr_db[s]);
    fprintf(out, "\n");
    for (int d = 0; d < n_detectors; d++) {
        fprintf(out, "%-16s %8.2f |", detectors[d].name, us_per_frame(d));
        for (int s = -1; s < N_SNR; s++) {
            prf_t x = pooled(d, s);
            fprintf(out, " %s%.2f %.2f %.3f |", s < 0 ? "" : "      ", x.p, x.r, x.f1);
        }
        fprintf(out, "\n");
    }
    for (int s = 0; s < N_SNR; s++) {
        if (snr_db[s] > 5)
            continue;
        fprintf(out, "\nF1 by noise at %d dB SNR\n%-16s", snr_db[s], "detector");
        for (int k = 0; k < N_NOISE; k++)
            fprintf(out, " %7s", noise_name[k]);
        fprintf(out, "\n");
        for (int d = 0; d < n_detectors; d++) {
            fprintf(out, "%-16s", detectors[d].name);
            for (int k = 0; k < N_NOISE; k++) {
                const score_t *sc = &results[d][1 + k * N_SNR + s];
                fprintf(out, " %7.3f", prf(sc->tp, sc->fp, sc->fn).f1);
            }
            fprintf(out, "\n");
        }
    }
}

static void
report_stationary(FILE *out)
{
    fprintf(out, "\nF1 pooled over the stationary noises only (white pink brown hum)\n%-16s",
            "detector");
    for (int s = 0; s < N_SNR; s++)
        fprintf(out, " %5d dB", snr_db[s]);
    fprintf(out, "\n");
    for (int d = 0; d < n_detectors; d++) {
        fprintf(out, "%-16s", detectors[d].name);
        for (int s = 0; s < N_SNR; s++)
            fprintf(out, " %8.3f", pooled_noises(d, s, true).f1);
        fprintf(out, "\n");
    }
}

static void
write_csv(FILE *out)
{
    fprintf(out, "detector,noise,snr_db,frames,tp,fp,fn,tn,precision,recall,f1,false_alarm_rate,"
                 "us_per_frame\n");
    for (int d = 0; d < n_detectors; d++) {
        for (int c = 0; c < N_COND; c++) {
            const score_t *sc = &results[d][c];
            prf_t x = prf(sc->tp, sc->fp, sc->fn);
            char snr[16];
            if (c == 0)
                snprintf(snr, sizeof(snr), "clean");
            else
                snprintf(snr, sizeof(snr), "%d", snr_db[(c - 1) % N_SNR]);
            fprintf(out,
                    "%s,%s,%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
                    ",%.4f,%.4f,%.4f,%.4f,%.3f\n",
                    detectors[d].name, c == 0 ? "none" : noise_name[(c - 1) / N_SNR], snr,
                    sc->frames, sc->tp, sc->fp, sc->fn, sc->tn, x.p, x.r, x.f1,
                    sc->fp + sc->tn ? (double) sc->fp / (double) (sc->fp + sc->tn) : 0,
                    sc->frames ? sc->cpu_s * 1e6 / (double) sc->frames : 0);
        }
    }
}

static void
add_detector(det_kind_t kind, int mode, const char *prefix)
{
    detector_t *d = &detectors[n_detectors++];
    d->kind = kind;
    d->mode = mode;
    snprintf(d->name, sizeof(d->name), "%s%d", prefix, mode);
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_vad DATADIR OUTPREFIX\n");
        return 2;
    }
    const char *dir = argv[1];
    /* BENCH_VAD_ONLY=md: only md_vad (for tuning runs) */
    const char *only = getenv("BENCH_VAD_ONLY");
    for (int m = 0; m < 4; m++)
        add_detector(DET_MD, m, "md_vad/a");
    if (!only || strcmp(only, "md") != 0) {
        for (int m = 0; m < 4; m++)
            add_detector(DET_WEBRTC_APM, m, "webrtc-apm/m");
        for (int m = 0; m < 4; m++)
            add_detector(DET_WEBRTC_CORE, m, "webrtc-core/m");
    }

    size_t len, n;
    clean = read_file(dir, "clean.s16", &len);
    n_frames = len / (2 * FRAME);
    char *lab = read_file(dir, "labels.txt", &n);
    if (n < n_frames) {
        fprintf(stderr, "bench_vad: %zu labels for %zu frames\n", n, n_frames);
        return 2;
    }
    labels = malloc(n_frames);
    for (size_t i = 0; i < n_frames; i++)
        labels[i] = lab[i] == '1';
    free(lab);
    for (int k = 0; k < N_NOISE; k++) {
        char name[64];
        snprintf(name, sizeof(name), "noise_%s.s16", noise_name[k]);
        noise[k] = read_file(dir, name, &n);
        if (n < len) {
            fprintf(stderr, "bench_vad: %s shorter than the speech\n", name);
            return 2;
        }
    }
    char *meta = read_file(dir, "meta.txt", &n);
    meta[n] = 0;
    mix = malloc(len);

    memcpy(mix, clean, len);
    run_condition(0);
    for (int k = 0; k < N_NOISE; k++) {
        for (int s = 0; s < N_SNR; s++) {
            make_mix(k, snr_db[s]);
            run_condition(1 + k * N_SNR + s);
        }
    }

    char cpu[256] = "unknown";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof(line), ci)) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon) {
                snprintf(cpu, sizeof(cpu), "%s", colon + 2);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        }
        fclose(ci);
    }
    char path[1024];
    report(stdout, meta, cpu);
    report_stationary(stdout);
    snprintf(path, sizeof(path), "%s.txt", argv[2]);
    FILE *f = fopen(path, "w");
    if (f) {
        report(f, meta, cpu);
        report_stationary(f);
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s.csv", argv[2]);
    f = fopen(path, "w");
    if (f) {
        write_csv(f);
        fclose(f);
    }
    if (!f) {
        fprintf(stderr, "bench_vad: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("\nsaved %s.txt and %s.csv\n", argv[2], argv[2]);
    return 0;
}
