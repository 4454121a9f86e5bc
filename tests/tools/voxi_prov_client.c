/*
 * voxi_prov_client: drives one voxi-providers session over NATS, for the system tests and
 * by hand. Prints one JSON line per event on stdout.
 *
 *   voxi_prov_client NATS_URL KIND OPEN_JSON [COMMANDS_JSON [AUDIO_OUT [TIMEOUT_MS]]]
 *
 * KIND: stt | llm | tts. OPEN_JSON describes the ProviderOpen:
 *   {"engine","call_id","idle_timeout_ms","stt":{"phrases":[],"sample_rate","partials"},
 *    "tts":{"voice","sample_rate","speed"},
 *    "llm":{"provider","model","base_url","temperature","max_tokens",
 *           "messages":[{"role","content","tool_call_id"}],
 *           "tools":[{"name","description","parameters":{JSON Schema}}]}}
 * COMMANDS_JSON is an array run in order after the open reply:
 *   {"audio_file":"x.wav","chunk_ms":100}  16-bit mono PCM (a WAV header is skipped)
 *   {"text":"..."} {"flush":true} {"close":true} {"cancel":true}
 *   {"wait":"TYPE","count":N}  until N events of TYPE arrived in total (count 1 by default)
 *   {"mark":"NAME"}            prints {"event":"mark","name":NAME,"t_ms"} (for latencies)
 *   {"send_to":"SUBJECT"}      send later input to SUBJECT instead of the in_subject
 *   {"send_to_other_instance":["a","b"]}  send later input to this session's subject at the
 *                              first listed instance that is not serving it
 * AUDIO_OUT ("" for none): TTS audio is appended there as raw PCM.
 *
 * Output: {"event":"open",...} or {"event":"open_error","status","message"}, then
 * {"event":TYPE,"seq",...} per ProviderEvent; "t_ms" is milliseconds since the tool started. Exit:
 * 0 after "done" or "error", 5 open refused, 4 timeout, 3 no responders, 2 usage.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/providers.pb-c.h"

#define MAX_TYPES 16

typedef struct {
    uv_loop_t loop;
    lc_nats_t *nc;
    uv_timer_t timer;
    char kind[8];
    char out_subject[96];
    char in_subject[256];
    char session_id[40];
    char instance_id[80];
    uint8_t *open_buf;
    size_t open_len;
    json_t *commands;
    size_t next_cmd;
    bool opened;
    bool ended;
    uint64_t seq;
    FILE *audio_out;
    int64_t deadline_ms;
    int exit_code;
    char types[MAX_TYPES][24];
    int counts[MAX_TYPES];
    size_t ntypes;
    uint64_t start_ns;
} cli_t;

static double
elapsed_ms(const cli_t *c)
{
    return (double) (uv_hrtime() - c->start_ns) / 1e6;
}

static int *
type_count(cli_t *c, const char *type)
{
    for (size_t i = 0; i < c->ntypes; i++)
        if (strcmp(c->types[i], type) == 0)
            return &c->counts[i];
    if (c->ntypes == MAX_TYPES)
        return &c->counts[MAX_TYPES - 1];
    snprintf(c->types[c->ntypes], sizeof(c->types[0]), "%s", type);
    c->counts[c->ntypes] = 0;
    return &c->counts[c->ntypes++];
}

static void
on_closed(void *arg)
{
    (void) arg;
}

static void
finish(cli_t *c, int code)
{
    if (c->ended)
        return;
    c->ended = true;
    c->exit_code = code;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *) &c->timer, NULL);
    lc_nats_close(c->nc, on_closed, c);
}

static void
send_input(cli_t *c, Voxi__V1__ProviderInput *in)
{
    in->session_id = c->session_id;
    in->seq = ++c->seq;
    size_t len = voxi__v1__provider_input__get_packed_size(in);
    uint8_t *buf = malloc(len ? len : 1);
    voxi__v1__provider_input__pack(in, buf);
    lc_nats_publish(c->nc, c->in_subject, buf, len);
    free(buf);
}

static void
send_audio(cli_t *c, const char *path, int chunk_ms, uint32_t rate)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        finish(c, 2);
        return;
    }
    uint8_t hdr[44];
    size_t got = fread(hdr, 1, sizeof(hdr), f);
    if (!(got == 44 && memcmp(hdr, "RIFF", 4) == 0))
        fseek(f, 0, SEEK_SET);
    size_t chunk = (size_t) rate * (size_t) chunk_ms / 1000 * 2;
    uint8_t *buf = malloc(chunk);
    size_t n;
    while ((n = fread(buf, 1, chunk, f)) > 0) {
        Voxi__V1__ProviderInput in = VOXI__V1__PROVIDER_INPUT__INIT;
        in.audio.data = buf;
        in.audio.len = n;
        send_input(c, &in);
    }
    free(buf);
    fclose(f);
}

static uint32_t stt_rate(cli_t *c);

/* Runs commands until a wait that is not satisfied yet. */
static void
run_commands(cli_t *c)
{
    while (!c->ended && c->commands && c->next_cmd < json_array_size(c->commands)) {
        json_t *cmd = json_array_get(c->commands, c->next_cmd);
        const char *wait = json_string_value(json_object_get(cmd, "wait"));
        if (wait) {
            json_t *jc = json_object_get(cmd, "count");
            int want = jc ? (int) json_integer_value(jc) : 1;
            if (*type_count(c, wait) < want)
                return;
            c->next_cmd++;
            continue;
        }
        c->next_cmd++;
        const char *mark = json_string_value(json_object_get(cmd, "mark"));
        if (mark) {
            printf("{\"event\":\"mark\",\"name\":\"%.64s\",\"t_ms\":%.3f}\n", mark, elapsed_ms(c));
            fflush(stdout);
            continue;
        }
        const char *to = json_string_value(json_object_get(cmd, "send_to"));
        if (to) {
            snprintf(c->in_subject, sizeof(c->in_subject), "%s", to);
            continue;
        }
        json_t *others = json_object_get(cmd, "send_to_other_instance");
        if (others) {
            /* the first listed instance that is not the one serving the session */
            for (size_t i = 0; i < json_array_size(others); i++) {
                const char *inst = json_string_value(json_array_get(others, i));
                if (inst && strcmp(inst, c->instance_id) != 0) {
                    snprintf(c->in_subject, sizeof(c->in_subject), "voxi.providers.in.%s.%s", inst,
                             c->session_id);
                    break;
                }
            }
            continue;
        }
        const char *audio = json_string_value(json_object_get(cmd, "audio_file"));
        if (audio) {
            json_t *cm = json_object_get(cmd, "chunk_ms");
            send_audio(c, audio, cm ? (int) json_integer_value(cm) : 100, stt_rate(c));
            continue;
        }
        Voxi__V1__ProviderInput in = VOXI__V1__PROVIDER_INPUT__INIT;
        const char *text = json_string_value(json_object_get(cmd, "text"));
        if (text)
            in.text = (char *) text;
        in.flush = json_is_true(json_object_get(cmd, "flush"));
        in.close = json_is_true(json_object_get(cmd, "close"));
        in.cancel = json_is_true(json_object_get(cmd, "cancel"));
        send_input(c, &in);
    }
}

static json_t *open_spec;

static uint32_t
stt_rate(cli_t *c)
{
    (void) c;
    json_t *r = json_object_get(json_object_get(open_spec, "stt"), "sample_rate");
    return r ? (uint32_t) json_integer_value(r) : 16000;
}

static void
on_event(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    (void) nc;
    cli_t *c = arg;
    if (c->ended)
        return;
    Voxi__V1__ProviderEvent *ev =
        voxi__v1__provider_event__unpack(NULL, lc_nats_msg_len(msg), lc_nats_msg_data(msg));
    if (ev == NULL) {
        fprintf(stderr, "malformed event\n");
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:I}", "event", ev->type, "session_id", ev->session_id, "seq",
                          (json_int_t) ev->seq);
    json_object_set_new(o, "t_ms", json_real(elapsed_ms(c)));
    if (ev->text[0])
        json_object_set_new(o, "text", json_string(ev->text));
    if (ev->audio.len) {
        json_object_set_new(o, "audio_bytes", json_integer((json_int_t) ev->audio.len));
        if (c->audio_out)
            fwrite(ev->audio.data, 1, ev->audio.len, c->audio_out);
    }
    if (ev->sample_rate)
        json_object_set_new(o, "sample_rate", json_integer(ev->sample_rate));
    if (ev->n_words) {
        json_t *words = json_array();
        for (size_t i = 0; i < ev->n_words; i++)
            json_array_append_new(
                words, json_pack("{s:s, s:i, s:i, s:f}", "word", ev->words[i]->word, "start_ms",
                                 (int) ev->words[i]->start_ms, "end_ms", (int) ev->words[i]->end_ms,
                                 "confidence", (double) ev->words[i]->confidence));
        json_object_set_new(o, "words", words);
    }
    if (strcmp(ev->type, "final") == 0) {
        json_object_set_new(o, "utterance_start_ms", json_integer(ev->utterance_start_ms));
        json_object_set_new(o, "utterance_end_ms", json_integer(ev->utterance_end_ms));
    }
    if (ev->tool_call)
        json_object_set_new(o, "tool_call",
                            json_pack("{s:i, s:s, s:s, s:s}", "index", (int) ev->tool_call->index,
                                      "id", ev->tool_call->id, "name", ev->tool_call->name,
                                      "arguments", ev->tool_call->arguments_json));
    if (ev->finish_reason[0])
        json_object_set_new(o, "finish_reason", json_string(ev->finish_reason));
    if (ev->error[0] || ev->error_status[0])
        json_object_set_new(
            o, "error", json_pack("{s:s, s:s}", "status", ev->error_status, "message", ev->error));
    if (ev->usage)
        json_object_set_new(o, "usage",
                            json_pack("{s:f, s:i, s:i, s:i, s:f}", "stt_seconds",
                                      ev->usage->stt_seconds, "llm_prompt_tokens",
                                      (int) ev->usage->llm_prompt_tokens, "llm_completion_tokens",
                                      (int) ev->usage->llm_completion_tokens, "tts_characters",
                                      (int) ev->usage->tts_characters, "tts_seconds",
                                      ev->usage->tts_seconds));
    char *line = json_dumps(o, JSON_COMPACT);
    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
    (*type_count(c, ev->type))++;
    bool end = strcmp(ev->type, "done") == 0 || strcmp(ev->type, "error") == 0;
    voxi__v1__provider_event__free_unpacked(ev, NULL);
    if (end)
        finish(c, 0);
    else if (c->opened)
        run_commands(c);
}

static void
on_open_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    cli_t *c = arg;
    if (c->ended)
        return;
    if (status == LC_ERR_NO_RESPONDERS) {
        fprintf(stderr, "no responders\n");
        finish(c, 3);
        return;
    }
    if (status != LC_OK) {
        fprintf(stderr, "open: %s\n", lc_status_name(status));
        finish(c, 4);
        return;
    }
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                                  &voxi__v1__provider_open_reply__descriptor, &env, &body);
    if (st != LC_OK) {
        json_t *o =
            json_pack("{s:s, s:s, s:s}", "event", "open_error", "status", lc_status_name(st),
                      "message", env && env->error ? env->error->message : "");
        char *line = json_dumps(o, JSON_COMPACT);
        printf("%s\n", line);
        free(line);
        json_decref(o);
        lc_pb_free(env, body);
        finish(c, 5);
        return;
    }
    Voxi__V1__ProviderOpenReply *r = (Voxi__V1__ProviderOpenReply *) body;
    snprintf(c->session_id, sizeof(c->session_id), "%s", r->session_id);
    snprintf(c->in_subject, sizeof(c->in_subject), "%s", r->in_subject);
    snprintf(c->instance_id, sizeof(c->instance_id), "%s", r->instance_id);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "open", "session_id", r->session_id,
                  "in_subject", r->in_subject, "instance_id", r->instance_id, "engine", r->engine);
    json_object_set_new(o, "t_ms", json_real(elapsed_ms(c)));
    char *line = json_dumps(o, JSON_COMPACT);
    printf("%s\n", line);
    fflush(stdout);
    free(line);
    json_decref(o);
    lc_pb_free(env, body);
    c->opened = true;
    run_commands(c);
}

static const char *
jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Builds and packs the ProviderOpen from the JSON spec. */
static void
build_open(cli_t *c, json_t *spec)
{
    Voxi__V1__ProviderOpen open = VOXI__V1__PROVIDER_OPEN__INIT;
    Voxi__V1__SttConfig stt = VOXI__V1__STT_CONFIG__INIT;
    Voxi__V1__TtsConfig tts = VOXI__V1__TTS_CONFIG__INIT;
    Voxi__V1__LlmConfig llm = VOXI__V1__LLM_CONFIG__INIT;
    open.kind = c->kind;
    open.engine = (char *) jstr(spec, "engine");
    open.call_id = (char *) jstr(spec, "call_id");
    open.out_subject = c->out_subject;
    open.idle_timeout_ms = (uint32_t) json_integer_value(json_object_get(spec, "idle_timeout_ms"));
    json_t *js = json_object_get(spec, "stt");
    char *phrases[64];
    if (js) {
        json_t *p = json_object_get(js, "phrases");
        for (size_t i = 0; i < json_array_size(p) && i < 64; i++)
            phrases[stt.n_phrases++] = (char *) json_string_value(json_array_get(p, i));
        stt.phrases = phrases;
        stt.sample_rate = (uint32_t) json_integer_value(json_object_get(js, "sample_rate"));
        stt.partials = json_is_true(json_object_get(js, "partials"));
        open.stt = &stt;
    }
    json_t *jt = json_object_get(spec, "tts");
    if (jt) {
        tts.voice = (char *) jstr(jt, "voice");
        tts.sample_rate = (uint32_t) json_integer_value(json_object_get(jt, "sample_rate"));
        tts.speed = (float) json_number_value(json_object_get(jt, "speed"));
        open.tts = &tts;
    }
    json_t *jl = json_object_get(spec, "llm");
    Voxi__V1__LlmMessage msgs[32], *msgp[32];
    Voxi__V1__LlmTool tools[16], *toolp[16];
    char *params[16] = {0};
    if (jl) {
        llm.provider = (char *) jstr(jl, "provider");
        llm.model = (char *) jstr(jl, "model");
        llm.base_url = (char *) jstr(jl, "base_url");
        llm.temperature = (float) json_number_value(json_object_get(jl, "temperature"));
        llm.max_tokens = (uint32_t) json_integer_value(json_object_get(jl, "max_tokens"));
        json_t *m = json_object_get(jl, "messages");
        for (size_t i = 0; i < json_array_size(m) && i < 32; i++) {
            json_t *mi = json_array_get(m, i);
            voxi__v1__llm_message__init(&msgs[i]);
            msgs[i].role = (char *) jstr(mi, "role");
            msgs[i].content = (char *) jstr(mi, "content");
            msgs[i].tool_call_id = (char *) jstr(mi, "tool_call_id");
            msgp[llm.n_messages++] = &msgs[i];
        }
        llm.messages = msgp;
        json_t *t = json_object_get(jl, "tools");
        for (size_t i = 0; i < json_array_size(t) && i < 16; i++) {
            json_t *ti = json_array_get(t, i);
            voxi__v1__llm_tool__init(&tools[i]);
            tools[i].name = (char *) jstr(ti, "name");
            tools[i].description = (char *) jstr(ti, "description");
            json_t *pj = json_object_get(ti, "parameters");
            if (json_is_string(pj))
                params[i] = strdup(json_string_value(pj));
            else if (pj)
                params[i] = json_dumps(pj, JSON_COMPACT);
            if (params[i])
                tools[i].parameters_json = params[i];
            toolp[llm.n_tools++] = &tools[i];
        }
        llm.tools = toolp;
        open.llm = &llm;
    }
    char request_id[40];
    lc_id_new("req_", request_id, sizeof(request_id));
    lc_pb_meta_t meta = {.request_id = request_id};
    lc_pb_pack(&meta, &open.base, &c->open_buf, &c->open_len);
    for (size_t i = 0; i < 16; i++)
        free(params[i]);
}

static void
on_tick(uv_timer_t *t)
{
    cli_t *c = t->data;
    if (lc_time_mono_ms() > c->deadline_ms) {
        fprintf(stderr, "timed out\n");
        finish(c, 4);
        return;
    }
    if (c->open_buf && lc_nats_connected(c->nc)) {
        char subject[64];
        snprintf(subject, sizeof(subject), "voxi.providers.%s.open", c->kind);
        lc_status_t st =
            lc_nats_request(c->nc, subject, c->open_buf, c->open_len, 5000, on_open_reply, c, NULL);
        free(c->open_buf);
        c->open_buf = NULL;
        if (st != LC_OK) {
            fprintf(stderr, "request: %s\n", lc_status_name(st));
            finish(c, 4);
        }
    }
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: voxi_prov_client NATS_URL stt|llm|tts OPEN_JSON [COMMANDS_JSON "
                        "[AUDIO_OUT [TIMEOUT_MS]]]\n");
        return 2;
    }
    lc_log_init("voxi_prov_client", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    static cli_t c;
    c.exit_code = 1;
    c.start_ns = uv_hrtime();
    snprintf(c.kind, sizeof(c.kind), "%s", argv[2]);
    open_spec = json_loads(argv[3], 0, NULL);
    if (open_spec == NULL) {
        fprintf(stderr, "OPEN_JSON is not JSON\n");
        return 2;
    }
    if (argc > 4 && argv[4][0]) {
        c.commands = json_loads(argv[4], 0, NULL);
        if (!json_is_array(c.commands)) {
            fprintf(stderr, "COMMANDS_JSON is not a JSON array\n");
            return 2;
        }
    }
    if (argc > 5 && argv[5][0]) {
        c.audio_out = fopen(argv[5], "wb");
        if (c.audio_out == NULL) {
            fprintf(stderr, "cannot write %s\n", argv[5]);
            return 2;
        }
    }
    int64_t timeout_ms = argc > 6 ? atoll(argv[6]) : 30000;
    c.deadline_ms = lc_time_mono_ms() + timeout_ms;
    char id[32];
    lc_id_new("", id, sizeof(id));
    snprintf(c.out_subject, sizeof(c.out_subject), "_INBOX.prov.%s", id);
    build_open(&c, open_spec);
    uv_loop_init(&c.loop);
    lc_nats_loop_init(&c.loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_prov_client"};
    if (lc_nats_connect(&c.loop, &opts, &c.nc) != LC_OK) {
        fprintf(stderr, "connect failed\n");
        return 4;
    }
    lc_nats_subscribe(c.nc, c.out_subject, NULL, on_event, &c, NULL);
    uv_timer_init(&c.loop, &c.timer);
    c.timer.data = &c;
    uv_timer_start(&c.timer, on_tick, 5, 5);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    lc_nats_destroy(c.nc);
    uv_loop_close(&c.loop);
    lc_nats_library_shutdown();
    if (c.audio_out)
        fclose(c.audio_out);
    json_decref(c.commands);
    json_decref(open_spec);
    return c.exit_code;
}
