/*
 * voxi-providers: speech-to-text, LLM and text-to-speech sessions, local engines and vendor APIs.
 *
 * This file only reads the configuration and wires the modules: pv_service.h (sessions on
 * the bus), pv_stt_ps.c (pocketsphinx), pv_tts_flite.c (flite), pv_llm_openai.c
 * (OpenAI-compatible chat completions), pv_engine_test.c (the "test" engines).
 */
#include <stddef.h>
#include <string.h>

#include "lc_service.h"
#include "pv_http.h"
#include "pv_service.h"

static pv_config_t pv_config;
static pv_service_t pv_service = {.cfg = &pv_config};

#define PV_INT(name, def, min, max, field, help)                                                   \
    {                                                                                              \
        "VOXI_PROVIDERS_" name, LC_CFG_INT, def, min, max, NULL, 0, offsetof(pv_config_t, field),  \
            help                                                                                   \
    }

static const lc_config_entry_t pv_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(pv_config_t, "PROVIDERS", 9106),
    {"VOXI_PROVIDERS_TEST_ENGINES", LC_CFG_BOOL, "false", 0, 0, NULL, 0,
     offsetof(pv_config_t, test_engines),
     "offer the instant, deterministic \"test\" engines (tests and benchmarks only)"},
    PV_INT("MAX_SESSIONS", "256", 1, 100000, max_sessions,
           "sessions open at once on this instance; past it opens fail with \"unavailable\""),
    PV_INT("STT_DECODERS", "2", 0, 64, stt_decoders,
           "pocketsphinx decoders created at start (one per STT session; 0 = no pocketsphinx)"),
    {"VOXI_PROVIDERS_STT_MODEL_DIR", LC_CFG_STRING, "/usr/share/pocketsphinx/model/en-us", 1, 900,
     NULL, 0, offsetof(pv_config_t, stt_model_dir),
     "pocketsphinx model directory (en-us/, en-us.lm.bin, cmudict-en-us.dict)"},
    PV_INT("STT_MAX_QUEUED_MS", "10000", 100, 600000, stt_max_queued_ms,
           "audio waiting for the decoder per session; past it audio is dropped"),
    {"VOXI_PROVIDERS_OPENAI_BASE_URL", LC_CFG_STRING, NULL, 0, 900, NULL, 0,
     offsetof(pv_config_t, openai_base_url),
     "OpenAI-compatible API base URL, e.g. https://api.openai.com/v1 (unset: no LLM engine)"},
    {"VOXI_PROVIDERS_OPENAI_API_KEY", LC_CFG_STRING, NULL, 0, 4096, NULL, LC_CFG_SECRET,
     offsetof(pv_config_t, openai_api_key), "API key sent as a Bearer token to the base URL"},
    {"VOXI_PROVIDERS_OPENAI_MODEL", LC_CFG_STRING, "gpt-4o-mini", 1, 200, NULL, 0,
     offsetof(pv_config_t, openai_model), "model used when a session names none"},
    PV_INT("OPENAI_TIMEOUT_MS", "60000", 100, 600000, openai_timeout_ms,
           "longest LLM request, streaming included"),
    PV_INT("OPENAI_CONNECT_TIMEOUT_MS", "5000", 100, 60000, openai_connect_timeout_ms,
           "longest connect to the LLM vendor"),
    {"VOXI_PROVIDERS_SSRF_ALLOWLIST", LC_CFG_STRING, NULL, 0, 4096, NULL, 0,
     offsetof(pv_config_t, ssrf_allowlist),
     "comma-separated networks (CIDR) a session's custom LLM base_url may reach despite the SSRF "
     "guard"},
};

int
main(int argc, char **argv)
{
    pv_http_global_init();
    lc_service_def_t def = {
        .name = "providers",
        .config_table = pv_config_table,
        .config_count = sizeof(pv_config_table) / sizeof(pv_config_table[0]),
        .config = &pv_config,
        .start = pv_service_start,
        .stop = pv_service_stop,
        .inflight = pv_service_inflight,
        .cleanup = pv_service_cleanup,
        .ready = pv_service_ready,
        .arg = &pv_service,
    };
    int code = lc_service_main(&def, argc, argv);
    pv_http_global_cleanup();
    return code;
}
