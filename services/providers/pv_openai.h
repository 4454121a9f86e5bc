/*
 * pv_openai: the OpenAI chat completions wire format (https://platform.openai.com/docs/
 * api-reference/chat/create, "streaming"), without I/O: the request body from an LlmConfig,
 * and the decoding of the streamed chunk objects into deltas, tool-call deltas, assembled
 * tool calls, the finish reason and usage. Many vendors and servers speak it (OpenAI, Groq,
 * Ollama, vLLM, llama.cpp server, ...).
 *
 * A stream is a sequence of `data: {chunk}` server-sent events ending with `data: [DONE]`.
 * Each chunk: {"id","object":"chat.completion.chunk","created","model","choices":[{"index",
 * "delta":{"role"?,"content"?,"tool_calls"?:[{"index","id"?,"type"?,"function":{"name"?,
 * "arguments"?}}]},"finish_reason"}]}; with stream_options.include_usage a last chunk has
 * "choices":[] and "usage":{"prompt_tokens","completion_tokens","total_tokens"}.
 *
 * Threads: any; one stream state per stream.
 */
#ifndef PV_OPENAI_H
#define PV_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "voxi/v1/providers.pb-c.h"

#define PV_OPENAI_MAX_TOOL_CALLS 16
#define PV_OPENAI_MAX_ARGS_BYTES (64 * 1024)

/*
 * Builds the request body (a new string the caller frees) for `model` (overrides
 * cfg->model when cfg->model is empty). LC_ERR_INVALID with a message in err when a tool's
 * parameters_json is not a JSON object, a role is unknown, or there are no messages.
 */
lc_status_t pv_openai_request_body(const Voxi__V1__LlmConfig *cfg, const char *default_model,
                                   char **out, char *err, size_t err_size);

/* What the stream produced, one call per item, in order. */
typedef struct {
    void (*delta)(void *arg, const char *text);
    /* fragments as the vendor streamed them; id/name "" when not in this fragment */
    void (*tool_call_delta)(void *arg, uint32_t index, const char *id, const char *name,
                            const char *arguments_fragment);
    void (*tool_call)(void *arg, uint32_t index, const char *id, const char *name,
                      const char *arguments);
} pv_openai_sink_t;

typedef struct {
    char *id, *name, *args;
    size_t args_len;
    bool used;
} pv_openai_call_t;

typedef struct {
    pv_openai_call_t calls[PV_OPENAI_MAX_TOOL_CALLS];
    bool calls_emitted;
    char finish_reason[32];
    uint32_t prompt_tokens, completion_tokens;
    bool usage_seen;
    bool done_seen; /* [DONE] */
} pv_openai_stream_t;

void pv_openai_stream_init(pv_openai_stream_t *st);
void pv_openai_stream_free(pv_openai_stream_t *st);

/* One SSE data payload (a chunk object or "[DONE]"). LC_ERR_PROTOCOL when it is not JSON
 * of the expected shape, LC_ERR_TOO_LARGE past the tool call bounds. */
lc_status_t pv_openai_stream_data(pv_openai_stream_t *st, const char *data, size_t len,
                                  const pv_openai_sink_t *sink, void *arg);

/* Emits the assembled tool calls not yet emitted (at the end of the stream). */
void pv_openai_stream_finish(pv_openai_stream_t *st, const pv_openai_sink_t *sink, void *arg);

/*
 * Maps an error response (HTTP status and body, an OpenAI error object or anything else)
 * to a status and a message safe to show: the HTTP status and the error's type/code, never
 * its message (vendors echo parts of the key there).
 */
lc_status_t pv_openai_error(int http_status, const char *body, size_t len, char *msg,
                            size_t msg_size);

#endif
