/*
 * Fuzz target: what voxi-providers parses from an LLM vendor's streamed response, the
 * server-sent events framing (pv_sse.c) and the chat completion chunks in it (pv_openai.c).
 * The two files are included so that the target needs only libcommon to link.
 *
 *   libFuzzer: make fuzz
 *   replay:    the saved corpus (tests/fuzz/corpus/openai_stream/) runs in make test
 */
#include <stddef.h>
#include <stdint.h>

#include "../../services/providers/pv_openai.c"
#include "../../services/providers/pv_sse.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
sink_delta(void *arg, const char *text)
{
    (void) arg;
    (void) text;
}

static void
sink_tool(void *arg, uint32_t index, const char *id, const char *name, const char *args)
{
    (void) arg;
    (void) index;
    (void) id;
    (void) name;
    (void) args;
}

static const pv_openai_sink_t sink = {sink_delta, sink_tool, sink_tool};

static bool
on_event(void *arg, const char *data, size_t len)
{
    return pv_openai_stream_data(arg, data, len, &sink, NULL) == LC_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pv_openai_stream_t st;
    pv_openai_stream_init(&st);
    pv_sse_t p;
    pv_sse_init(&p, 4096, on_event, &st);
    /* in two pieces, cut where the first byte says, as the network would */
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    if (pv_sse_feed(&p, (const char *) data, cut) == LC_OK)
        pv_sse_feed(&p, (const char *) data + cut, size - cut);
    pv_openai_stream_finish(&st, &sink, NULL);
    pv_sse_free(&p);
    pv_openai_stream_free(&st);
    char msg[200];
    pv_openai_error(400, (const char *) data, size, msg, sizeof(msg));
    return 0;
}
