/*
 * md_prompt: the spoken welcome prompt, synthesised once at start with flite's kal voice
 * (8 kHz, about 5 ms a sentence) and resampled to the worker's 16 kHz (md_resample), then
 * played by reference from the cache for every call.
 *
 * Threads: create on the main thread before the loop runs (flite is not thread-safe);
 * the PCM is read-only afterwards and may be read from any thread.
 */
#ifndef MD_PROMPT_H
#define MD_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

typedef struct md_prompt md_prompt_t;

/* Synthesises text. LC_ERR_INTERNAL when flite produces nothing. */
lc_status_t md_prompt_create(const char *text, md_prompt_t **out);
/* NULL is a no-op. */
void md_prompt_destroy(md_prompt_t *p);
/* 16 kHz mono PCM, borrowed for the prompt's lifetime. */
const int16_t *md_prompt_pcm(const md_prompt_t *p, size_t *samples);

#endif
