/*
 * rg_prices: the price table calls are costed with (VOXI_REGISTRY_PRICES), e.g.
 *
 *   telephony_per_min=0.01,stt_per_min=0.006,llm_per_1k_prompt_tokens=0.0005,
 *   llm_per_1k_completion_tokens=0.0015,tts_per_1k_chars=0.015,currency=USD
 *
 * Keys not given cost 0; currency is 3 upper-case letters (default USD). A call's cost is
 * computed when it is read, with the table in force then:
 *   telephony = duration minutes * telephony_per_min
 *   stt = usage.stt_seconds / 60 * stt_per_min
 *   llm = prompt tokens / 1000 * llm_per_1k_prompt_tokens + completion tokens / 1000 * ...
 *   tts = usage.tts_characters / 1000 * tts_per_1k_chars
 * each rounded to 6 decimals, and their total.
 *
 * Threads: any (immutable after parsing).
 */
#ifndef RG_PRICES_H
#define RG_PRICES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

typedef struct {
    double telephony_per_min;
    double stt_per_min;
    double llm_per_1k_prompt_tokens;
    double llm_per_1k_completion_tokens;
    double tts_per_1k_chars;
    char currency[4];
} rg_prices_t;

/* Parses the table; LC_ERR_CONFIG with the reason in why for an unknown key, a repeated key,
 * a price that is not a finite number in [0, 1000000], or a bad currency. NULL/"" = all 0. */
lc_status_t rg_prices_parse(const char *text, rg_prices_t *out, char *why, size_t why_size);

/* The cost object {"currency","telephony","stt","llm","tts","total"} of a call that lasted
 * duration_ms (< 0: not answered) with usage (borrowed; NULL or non-object = none). New
 * reference. */
json_t *rg_prices_cost(const rg_prices_t *prices, int64_t duration_ms, const json_t *usage);

#endif
