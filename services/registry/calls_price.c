/*
 * The price table of VOXI_REGISTRY_PRICES and the cost of a call (rg_prices.h).
 */
#include "rg_prices.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRICE_MAX 1000000.0
#define TEXT_MAX 1024

static const char *const price_keys[] = {"telephony_per_min", "stt_per_min",
                                         "llm_per_1k_prompt_tokens", "llm_per_1k_completion_tokens",
                                         "tts_per_1k_chars"};
#define NKEYS (sizeof(price_keys) / sizeof(price_keys[0]))

static lc_status_t
parse_pair(char *pair, rg_prices_t *out, bool *seen, bool *seen_currency, char *why,
           size_t why_size)
{
    char *eq = strchr(pair, '=');
    if (eq == NULL) {
        snprintf(why, why_size, "\"%.40s\" is not key=value", pair);
        return LC_ERR_CONFIG;
    }
    *eq = '\0';
    const char *key = pair, *value = eq + 1;
    if (strcmp(key, "currency") == 0) {
        if (*seen_currency) {
            snprintf(why, why_size, "currency is given twice");
            return LC_ERR_CONFIG;
        }
        *seen_currency = true;
        if (strlen(value) != 3 || value[0] < 'A' || value[0] > 'Z' || value[1] < 'A' ||
            value[1] > 'Z' || value[2] < 'A' || value[2] > 'Z') {
            snprintf(why, why_size, "currency must be 3 upper-case letters (ISO 4217)");
            return LC_ERR_CONFIG;
        }
        memcpy(out->currency, value, 4);
        return LC_OK;
    }
    double *const slots[NKEYS] = {&out->telephony_per_min, &out->stt_per_min,
                                  &out->llm_per_1k_prompt_tokens,
                                  &out->llm_per_1k_completion_tokens, &out->tts_per_1k_chars};
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(key, price_keys[i]) != 0)
            continue;
        if (seen[i]) {
            snprintf(why, why_size, "%s is given twice", key);
            return LC_ERR_CONFIG;
        }
        seen[i] = true;
        char *end = NULL;
        double v = strtod(value, &end);
        if (value[0] == '\0' || end == NULL || *end != '\0' || !isfinite(v) || v < 0 ||
            v > PRICE_MAX) {
            snprintf(why, why_size, "%s must be a number between 0 and 1000000", key);
            return LC_ERR_CONFIG;
        }
        *slots[i] = v;
        return LC_OK;
    }
    snprintf(why, why_size, "unknown key \"%.40s\"", key);
    return LC_ERR_CONFIG;
}

lc_status_t
rg_prices_parse(const char *text, rg_prices_t *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->currency, "USD", 4);
    if (text == NULL || text[0] == '\0')
        return LC_OK;
    size_t len = strlen(text);
    if (len > TEXT_MAX) {
        snprintf(why, why_size, "longer than %d characters", TEXT_MAX);
        return LC_ERR_CONFIG;
    }
    char copy[TEXT_MAX + 1];
    memcpy(copy, text, len + 1);
    bool seen[NKEYS] = {false};
    bool seen_currency = false;
    char *save = NULL;
    for (char *pair = strtok_r(copy, ",", &save); pair != NULL; pair = strtok_r(NULL, ",", &save)) {
        while (*pair == ' ')
            pair++;
        size_t n = strlen(pair);
        while (n > 0 && pair[n - 1] == ' ')
            pair[--n] = '\0';
        if (n == 0)
            continue;
        lc_status_t st = parse_pair(pair, out, seen, &seen_currency, why, why_size);
        if (st != LC_OK)
            return st;
    }
    return LC_OK;
}

static double
usage_number(const json_t *usage, const char *key)
{
    const json_t *v = json_is_object(usage) ? json_object_get(usage, key) : NULL;
    double d = json_is_number(v) ? json_number_value(v) : 0.0;
    return isfinite(d) && d > 0 ? d : 0.0;
}

static double
round6(double v)
{
    return round(v * 1e6) / 1e6;
}

json_t *
rg_prices_cost(const rg_prices_t *p, int64_t duration_ms, const json_t *usage)
{
    double telephony = duration_ms > 0 ? (double) duration_ms / 60000.0 * p->telephony_per_min : 0;
    double stt = usage_number(usage, "stt_seconds") / 60.0 * p->stt_per_min;
    double llm =
        usage_number(usage, "llm_prompt_tokens") / 1000.0 * p->llm_per_1k_prompt_tokens +
        usage_number(usage, "llm_completion_tokens") / 1000.0 * p->llm_per_1k_completion_tokens;
    double tts = usage_number(usage, "tts_characters") / 1000.0 * p->tts_per_1k_chars;
    telephony = round6(telephony);
    stt = round6(stt);
    llm = round6(llm);
    tts = round6(tts);
    json_t *cost = json_object();
    json_object_set_new(cost, "currency", json_string(p->currency));
    json_object_set_new(cost, "telephony", json_real(telephony));
    json_object_set_new(cost, "stt", json_real(stt));
    json_object_set_new(cost, "llm", json_real(llm));
    json_object_set_new(cost, "tts", json_real(tts));
    json_object_set_new(cost, "total", json_real(round6(telephony + stt + llm + tts)));
    return cost;
}
