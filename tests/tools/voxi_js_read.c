/*
 * voxi_js_read: prints the messages of a JetStream stream whose subject matches a filter,
 * one JSON line each, oldest first, using the JetStream API over plain request/reply
 * ($JS.API.STREAM.MSG.GET.<stream> with next_by_subj), so it needs no consumer:
 *
 *   {"seq":3,"subject":"voxi.events.org_x.agent.created","msg_id":"evt_...","data":{...}}
 *
 *   voxi_js_read NATS_URL STREAM SUBJECT_FILTER [TIMEOUT_MS]
 *
 * data is the payload parsed as JSON (a string when it is not JSON). Exit: 0 done (also
 * when nothing matched), 3 no such stream / JetStream off, 4 timeout, 5 error, 2 usage.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "lc_nats.h"

typedef struct {
    lc_nats_t *nc;
    char subject[256];
    const char *filter;
    uint64_t next_seq;
    int64_t timeout_ms;
    int exit_code;
    uv_timer_t start_timer;
} reader_t;

static void
on_closed(void *arg)
{
    (void) arg;
}

/* Base64 text -> new NUL-terminated buffer (*len_out bytes), or NULL. */
static char *
b64_decode(const char *text, size_t *len_out)
{
    size_t n = strlen(text);
    if (n % 4 != 0)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    int len = EVP_DecodeBlock((unsigned char *) out, (const unsigned char *) text, (int) n);
    if (len < 0) {
        free(out);
        return NULL;
    }
    if (n >= 1 && text[n - 1] == '=')
        len--;
    if (n >= 2 && text[n - 2] == '=')
        len--;
    out[len] = '\0';
    *len_out = (size_t) len;
    return out;
}

static void request_next(reader_t *r);

static void
finish(reader_t *r, int code)
{
    r->exit_code = code;
    lc_nats_close(r->nc, on_closed, r);
}

static void
on_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    reader_t *r = arg;
    if (status != LC_OK) {
        fprintf(stderr, "request failed: %s\n", lc_status_name(status));
        finish(r, status == LC_ERR_NO_RESPONDERS ? 3 : status == LC_ERR_TIMEOUT ? 4 : 5);
        return;
    }
    json_t *root = json_loadb(lc_nats_msg_data(reply), lc_nats_msg_len(reply), 0, NULL);
    json_t *error = json_object_get(root, "error");
    if (error != NULL) {
        json_int_t code = json_integer_value(json_object_get(error, "err_code"));
        json_decref(root);
        if (code == 10037) { /* no message found: the end */
            finish(r, 0);
            return;
        }
        fprintf(stderr, "jetstream error %lld\n", (long long) code);
        finish(r, code == 10059 ? 3 : 5); /* 10059: stream not found */
        return;
    }
    json_t *msg = json_object_get(root, "message");
    if (msg == NULL) {
        json_decref(root);
        fprintf(stderr, "unexpected reply\n");
        finish(r, 5);
        return;
    }
    json_int_t seq = json_integer_value(json_object_get(msg, "seq"));
    size_t data_len = 0, hdr_len = 0;
    const char *data_b64 = json_string_value(json_object_get(msg, "data"));
    const char *hdrs_b64 = json_string_value(json_object_get(msg, "hdrs"));
    char *data = data_b64 ? b64_decode(data_b64, &data_len) : strdup("");
    char *hdrs = hdrs_b64 ? b64_decode(hdrs_b64, &hdr_len) : NULL;
    json_t *out = json_object();
    json_object_set_new(out, "seq", json_integer(seq));
    json_object_set(out, "subject", json_object_get(msg, "subject"));
    const char *id = hdrs ? strstr(hdrs, "Nats-Msg-Id:") : NULL;
    if (id != NULL) {
        id += strlen("Nats-Msg-Id:");
        while (*id == ' ')
            id++;
        json_object_set_new(out, "msg_id", json_stringn(id, strcspn(id, "\r\n")));
    } else {
        json_object_set_new(out, "msg_id", json_null());
    }
    json_t *parsed = data ? json_loadb(data, data_len, 0, NULL) : NULL;
    json_object_set_new(out, "data", parsed ? parsed : json_string(data ? data : ""));
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(out);
    free(data);
    free(hdrs);
    json_decref(root);
    r->next_seq = (uint64_t) seq + 1;
    request_next(r);
}

static void
request_next(reader_t *r)
{
    json_t *q = json_pack("{s:I,s:s}", "seq", (json_int_t) r->next_seq, "next_by_subj", r->filter);
    char *body = json_dumps(q, JSON_COMPACT);
    json_decref(q);
    lc_status_t st =
        lc_nats_request(r->nc, r->subject, body, strlen(body), r->timeout_ms, on_reply, r, NULL);
    free(body);
    if (st != LC_OK) {
        fprintf(stderr, "request: %s\n", lc_status_name(st));
        finish(r, 5);
    }
}

static void
on_start(uv_timer_t *t)
{
    reader_t *r = t->data;
    if (!lc_nats_connected(r->nc)) {
        r->timeout_ms -= 10;
        if (r->timeout_ms <= 0) {
            fprintf(stderr, "could not connect to NATS\n");
            uv_close((uv_handle_t *) t, NULL);
            finish(r, 4);
            return;
        }
        uv_timer_start(t, on_start, 10, 0);
        return;
    }
    uv_close((uv_handle_t *) t, NULL);
    request_next(r);
}

int
main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: voxi_js_read NATS_URL STREAM SUBJECT_FILTER [TIMEOUT_MS]\n");
        return 2;
    }
    lc_log_init("voxi_js_read", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    reader_t r = {.filter = argv[3],
                  .next_seq = 1,
                  .timeout_ms = argc > 4 ? atoll(argv[4]) : 3000,
                  .exit_code = 1};
    snprintf(r.subject, sizeof(r.subject), "$JS.API.STREAM.MSG.GET.%s", argv[2]);
    uv_loop_t loop;
    uv_loop_init(&loop);
    lc_nats_loop_init(&loop);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_js_read"};
    if (lc_nats_connect(&loop, &opts, &r.nc) != LC_OK)
        return 1;
    uv_timer_init(&loop, &r.start_timer);
    r.start_timer.data = &r;
    uv_timer_start(&r.start_timer, on_start, 0, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    lc_nats_destroy(r.nc);
    uv_loop_close(&loop);
    lc_nats_library_shutdown();
    return r.exit_code;
}
