/*
 * LLM engine "openai": OpenAI-compatible chat completions, streamed (pv_openai.h for the
 * format, pv_http.h for the transfer, pv_sse.h for the framing).
 *
 * The configured base URL (VOXI_PROVIDERS_OPENAI_BASE_URL) is the operator's and gets the
 * configured key. A session's own LlmConfig.base_url (custom_llm) is the customer's: it goes
 * through the SSRF guard and never receives the configured key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "pv_http.h"
#include "pv_openai.h"
#include "pv_session.h"
#include "pv_sse.h"

#define URL_MAX 1024
#define SSE_MAX_LINE (256 * 1024)
#define ERR_BODY_MAX 8192
#define RESPONSE_MAX (16 * 1024 * 1024)

typedef struct {
    pv_session_t *s;
    pv_http_xfer_t *xfer;
    pv_sse_t sse;
    pv_openai_stream_t stream;
    char *url;
    char *body;
    char *auth_header;
    bool guard;
    bool stream_failed;
    char *err_body;
    size_t err_len;
} llm_t;

static lc_status_t
base_url_ok(const char *url, char *err, size_t err_size)
{
    size_t n = strlen(url);
    if (n == 0 || n > URL_MAX - 32 ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        snprintf(err, err_size, "base_url must be an http(s) URL of at most %d bytes",
                 URL_MAX - 32);
        return LC_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) url[i] <= ' ' || (unsigned char) url[i] >= 0x7f) {
            snprintf(err, err_size, "base_url contains spaces or non-ASCII characters");
            return LC_ERR_INVALID;
        }
    return LC_OK;
}

static lc_status_t
llm_open(pv_session_t *s, const Voxi__V1__ProviderOpen *open, char *err, size_t err_size)
{
    const pv_config_t *cfg = s->ps->cfg;
    const Voxi__V1__LlmConfig *lc = open->llm;
    if (lc == NULL) {
        snprintf(err, err_size, "llm config missing");
        return LC_ERR_INVALID;
    }
    bool custom = lc->base_url[0] != '\0';
    const char *base = custom ? lc->base_url : cfg->openai_base_url;
    if (base == NULL || base[0] == '\0') {
        snprintf(err, err_size,
                 "no LLM is configured on this instance: set VOXI_PROVIDERS_OPENAI_BASE_URL "
                 "(there is no local LLM engine)");
        return LC_ERR_UNAVAILABLE;
    }
    LC_TRY(base_url_ok(base, err, err_size));
    char *body = NULL;
    LC_TRY(pv_openai_request_body(lc, cfg->openai_model, &body, err, err_size));
    llm_t *l = LC_NEW(llm_t);
    l->s = s;
    l->body = body;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    l->url = lc_malloc(n + 32);
    snprintf(l->url, n + 32, "%.*s/chat/completions", (int) n, base);
    l->guard = custom;
    if (!custom && cfg->openai_api_key && cfg->openai_api_key[0]) {
        size_t kn = strlen(cfg->openai_api_key) + 32;
        l->auth_header = lc_malloc(kn);
        snprintf(l->auth_header, kn, "Authorization: Bearer %s", cfg->openai_api_key);
    }
    pv_openai_stream_init(&l->stream);
    s->engine_state = l;
    return LC_OK;
}

static void
sink_delta(void *arg, const char *text)
{
    pv_session_emit_text(arg, "delta", text);
}

static void
emit_call(pv_session_t *s, const char *type, uint32_t index, const char *id, const char *name,
          const char *args)
{
    Voxi__V1__ProviderEvent ev = VOXI__V1__PROVIDER_EVENT__INIT;
    Voxi__V1__LlmToolCall tc = VOXI__V1__LLM_TOOL_CALL__INIT;
    tc.index = index;
    tc.id = (char *) id;
    tc.name = (char *) name;
    tc.arguments_json = (char *) args;
    ev.type = (char *) type;
    ev.tool_call = &tc;
    pv_session_emit(s, &ev);
}

static void
sink_tool_delta(void *arg, uint32_t index, const char *id, const char *name, const char *frag)
{
    emit_call(arg, "tool_call_delta", index, id, name, frag);
}

static void
sink_tool_call(void *arg, uint32_t index, const char *id, const char *name, const char *args)
{
    emit_call(arg, "tool_call", index, id, name, args);
}

static const pv_openai_sink_t sink = {sink_delta, sink_tool_delta, sink_tool_call};

static bool
on_sse_event(void *arg, const char *data, size_t len)
{
    llm_t *l = arg;
    lc_status_t st = pv_openai_stream_data(&l->stream, data, len, &sink, l->s);
    if (st != LC_OK) {
        l->stream_failed = true;
        return false;
    }
    return !pv_session_ended(l->s);
}

static bool
on_data(void *arg, int http_status, const char *data, size_t len)
{
    llm_t *l = arg;
    if (pv_session_ended(l->s))
        return false;
    if (http_status >= 300) {
        size_t take = len;
        if (l->err_len + take > ERR_BODY_MAX)
            take = ERR_BODY_MAX - l->err_len;
        if (take > 0) {
            l->err_body = lc_realloc(l->err_body, l->err_len + take + 1);
            memcpy(l->err_body + l->err_len, data, take);
            l->err_len += take;
            l->err_body[l->err_len] = '\0';
        }
        return true;
    }
    lc_status_t st = pv_sse_feed(&l->sse, data, len);
    if (st != LC_OK) {
        if (st == LC_ERR_TOO_LARGE)
            l->stream_failed = true;
        return false;
    }
    return !pv_session_ended(l->s);
}

static void
on_done(void *arg, const pv_http_result_t *res)
{
    llm_t *l = arg;
    pv_session_t *s = l->s;
    l->xfer = NULL;
    if (!pv_session_ended(s)) {
        char msg[200];
        if (l->stream_failed) {
            pv_session_fail(s, LC_ERR_PROTOCOL, "the LLM vendor sent a malformed stream");
        } else if (res->status != LC_OK) {
            pv_session_fail(s, res->status, res->error_text);
        } else if (res->http_status >= 300) {
            lc_status_t st =
                pv_openai_error(res->http_status, l->err_body, l->err_len, msg, sizeof(msg));
            pv_session_fail(s, st, msg);
        } else if (!l->stream.done_seen && l->stream.finish_reason[0] == '\0') {
            pv_session_fail(s, LC_ERR_PROTOCOL, "the LLM stream ended early");
        } else {
            pv_openai_stream_finish(&l->stream, &sink, s);
            pv_session_meter_llm(s, l->stream.prompt_tokens, l->stream.completion_tokens);
            pv_session_done(s, l->stream.finish_reason[0] ? l->stream.finish_reason : "stop");
        }
    }
    pv_session_unref(s);
}

static void
llm_start(pv_session_t *s)
{
    llm_t *l = s->engine_state;
    const pv_config_t *cfg = s->ps->cfg;
    pv_sse_init(&l->sse, SSE_MAX_LINE, on_sse_event, l);
    const char *headers[4] = {"Content-Type: application/json", "Accept: text/event-stream", NULL,
                              NULL};
    if (l->auth_header)
        headers[2] = l->auth_header;
    pv_http_req_t req = {
        .url = l->url,
        .headers = headers,
        .body = l->body,
        .body_len = strlen(l->body),
        .timeout_ms = cfg->openai_timeout_ms,
        .connect_timeout_ms = cfg->openai_connect_timeout_ms,
        .max_bytes = RESPONSE_MAX,
        .ssrf_guard = l->guard,
        .allowlist = s->ps->allowlist,
    };
    static const pv_http_cbs_t cbs = {on_data, on_done};
    pv_session_ref(s);
    lc_status_t st = pv_http_post(s->ps->http, &req, &cbs, l, &l->xfer);
    if (st != LC_OK) {
        pv_session_fail(s, LC_ERR_UNAVAILABLE, "could not start the LLM request");
        pv_session_unref(s);
    }
}

static void
llm_input(pv_session_t *s, const Voxi__V1__ProviderInput *in)
{
    (void) s;
    (void) in; /* an LLM session takes no input after the open; cancel is handled above */
}

static void
llm_close(pv_session_t *s)
{
    (void) s; /* the generation ends by itself */
}

static void
llm_cancel(pv_session_t *s)
{
    llm_t *l = s->engine_state;
    if (l && l->xfer) {
        pv_http_cancel(s->ps->http, l->xfer);
        l->xfer = NULL;
        pv_session_unref(s); /* the transfer's reference; the table's is still held */
    }
}

static void
llm_destroy(pv_session_t *s)
{
    llm_t *l = s->engine_state;
    if (l == NULL)
        return;
    pv_sse_free(&l->sse);
    pv_openai_stream_free(&l->stream);
    free(l->url);
    free(l->body);
    if (l->auth_header) {
        memset(l->auth_header, 0, strlen(l->auth_header));
        free(l->auth_header);
    }
    free(l->err_body);
    free(l);
}

const pv_engine_t pv_engine_llm_openai = {
    .name = "openai",
    .kind = PV_KIND_LLM,
    .idle_exempt = true,
    .open = llm_open,
    .start = llm_start,
    .input = llm_input,
    .close = llm_close,
    .cancel = llm_cancel,
    .destroy = llm_destroy,
};
