#include "md_prompt.h"

#include <flite/flite.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "md_codec.h"
#include "md_resample.h"

/* flite ships no header for its voices (PITFALLS) */
cst_voice *register_cmu_us_kal(const char *voxdir);

struct md_prompt {
    int16_t *pcm;
    size_t samples;
};

static cst_voice *
kal_voice(void)
{
    static cst_voice *voice;
    if (voice == NULL) {
        flite_init();
        voice = register_cmu_us_kal(NULL);
    }
    return voice;
}

lc_status_t
md_prompt_create(const char *text, md_prompt_t **out)
{
    *out = NULL;
    cst_voice *voice = kal_voice();
    cst_wave *w = voice ? flite_text_to_wave(text, voice) : NULL;
    if (w == NULL || cst_wave_num_samples(w) <= 0 || w->num_channels != 1) {
        LC_ERROR("prompt", "flite produced no audio for the prompt");
        if (w)
            delete_wave(w);
        return LC_ERR_INTERNAL;
    }
    int rate = cst_wave_sample_rate(w);
    size_t in = (size_t) cst_wave_num_samples(w);
    md_prompt_t *p = LC_NEW(md_prompt_t);
    lc_status_t st = LC_OK;
    if (rate == MD_PCM_RATE_HZ) {
        p->pcm = lc_malloc(in * sizeof(int16_t));
        memcpy(p->pcm, cst_wave_samples(w), in * sizeof(int16_t));
        p->samples = in;
    } else {
        md_resampler_t *r = NULL;
        st = md_resampler_create(rate, MD_PCM_RATE_HZ, MD_RESAMPLE_QUALITY_DEFAULT, &r);
        if (st == LC_OK) {
            size_t cap = in * MD_PCM_RATE_HZ / (size_t) rate + 64;
            p->pcm = lc_malloc(cap * sizeof(int16_t));
            p->samples = md_resample(r, cst_wave_samples(w), in, p->pcm, cap);
            md_resampler_destroy(r);
        }
    }
    delete_wave(w);
    if (st != LC_OK || p->samples == 0) {
        md_prompt_destroy(p);
        return st != LC_OK ? st : LC_ERR_INTERNAL;
    }
    LC_INFO("prompt", "welcome prompt synthesised: %zu ms", p->samples / MD_PCM_SAMPLES_PER_MS);
    *out = p;
    return LC_OK;
}

void
md_prompt_destroy(md_prompt_t *p)
{
    if (p == NULL)
        return;
    free(p->pcm);
    free(p);
}

const int16_t *
md_prompt_pcm(const md_prompt_t *p, size_t *samples)
{
    *samples = p->samples;
    return p->pcm;
}
