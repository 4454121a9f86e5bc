/*
 * voxi_wh_bench: the webhooks benchmark's load generator and receiver in one process
 * (tests/bench/bench_webhooks.sh runs it against a real voxi-webhooks).
 *
 *   voxi_wh_bench NATS_URL ORG_ID COUNT RATE [--timeout-s N] [--hold] [--dump FILE]
 *
 * 1. listens on 127.0.0.1 (a free port) with a minimal HTTP/1.1 receiver on libuv that
 *    answers every POST with 204 and records the first arrival of each webhook-id;
 * 2. creates a webhook endpoint for ORG_ID pointing at it (voxi.webhooks.endpoints.create);
 * 3. publishes COUNT events (agent.updated) into VOXI_EVENTS, RATE per second (0 = as fast
 *    as JetStream acks them, 512 in flight), noting when each was published;
 * 4. when every event has arrived (or after --timeout-s, default 120), prints one JSON line:
 *    events, received, duplicates, bad_signatures, seconds (first publish to last first
 *    arrival), deliveries_per_s, and the publish-to-first-attempt delay p50/p90/p99/max in ms.
 *
 * --hold measures draining a backlog instead: after creating the endpoint the tool prints
 * "READY" and waits for a line on stdin before publishing (the caller stops voxi-webhooks
 * meanwhile), prints "PUBLISHED" when JetStream has acked every event (the caller starts
 * voxi-webhooks again), and deliveries_per_s is then measured from the first arrival.
 *
 * --dump FILE writes "publish_offset_ms delay_ms" for every event (for plots).
 *
 * Every delivery's signature is verified (Standard Webhooks, OpenSSL HMAC). Exit 0 when
 * every event arrived with a valid signature, 1 otherwise, 2 usage.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_nats.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/api.pb-c.h"

#define ID_LEN 24 /* "evt_" + 20 hex */
#define CONN_BUF 65536
#define MAX_INFLIGHT 512
#define TICK_MS 2

typedef struct {
    char id[ID_LEN + 1];
    int64_t published_us;
    int64_t first_arrival_us;
    int arrivals;
} event_t;

typedef struct bench bench_t;

typedef struct conn {
    uv_tcp_t tcp;
    bench_t *b;
    struct conn *prev, *next;
    size_t len;
    char buf[CONN_BUF];
} conn_t;

struct bench {
    uv_loop_t loop;
    lc_nats_t *nc;
    const char *org_id;
    long count, rate;
    int64_t timeout_s;
    uv_tcp_t server;
    int port;
    uv_timer_t timer;
    uint8_t key[64];
    int key_len;
    event_t *events;
    long *table; /* open addressing: event id -> index */
    size_t table_size;
    conn_t *conns;
    long published, inflight;
    long received, duplicates, bad_signatures, unknown;
    int64_t first_publish_us, last_arrival_us, publish_start_us, last_ack_us;
    long acked;
    int64_t deadline_mono_ms;
    bool creating, publishing, finished;
    bool hold;
    const char *dump; /* --dump FILE: "publish_offset_ms delay_ms" per event */
    uv_pipe_t stdin_pipe;
    bool stdin_open;
    int64_t first_arrival_us;
    int exit_code;
};

static const char RESPONSE[] = "HTTP/1.1 204 No Content\r\n\r\n";

static int64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t
hash_id(const char *id, size_t n)
{
    size_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char) id[i]) * 1099511628211ULL;
    return h;
}

static event_t *
table_get(bench_t *b, const char *id, size_t n)
{
    if (n != ID_LEN)
        return NULL;
    size_t mask = b->table_size - 1;
    for (size_t h = hash_id(id, n) & mask;; h = (h + 1) & mask) {
        if (b->table[h] < 0)
            return NULL;
        if (memcmp(b->events[b->table[h]].id, id, n) == 0)
            return &b->events[b->table[h]];
    }
}

static void
table_put(bench_t *b, long index)
{
    size_t mask = b->table_size - 1;
    for (size_t h = hash_id(b->events[index].id, ID_LEN) & mask;; h = (h + 1) & mask)
        if (b->table[h] < 0) {
            b->table[h] = index;
            return;
        }
}

static int
cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *) x, c = *(const int64_t *) y;
    return a < c ? -1 : a > c;
}

static void
on_nats_closed(void *arg)
{
    (void) arg;
}

static void
on_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
conn_close(conn_t *c)
{
    bench_t *b = c->b;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *) &c->tcp, on_conn_closed);
}

static void
finish(bench_t *b)
{
    if (b->finished)
        return;
    b->finished = true;
    int64_t *delays = lc_calloc((size_t) b->count + 1, sizeof(int64_t));
    long n = 0;
    for (long i = 0; i < b->count; i++)
        if (b->events[i].arrivals > 0)
            delays[n++] = b->events[i].first_arrival_us - b->events[i].published_us;
    if (b->dump) {
        FILE *f = fopen(b->dump, "w");
        for (long i = 0; f && i < b->count; i++)
            if (b->events[i].arrivals > 0)
                fprintf(f, "%.3f %.3f\n",
                        (double) (b->events[i].published_us - b->first_publish_us) / 1000.0,
                        (double) (b->events[i].first_arrival_us - b->events[i].published_us) /
                            1000.0);
        if (f)
            fclose(f);
    }
    qsort(delays, (size_t) n, sizeof(int64_t), cmp_i64);
    double pct[4] = {0.50, 0.90, 0.99, 1.0}, ms[4];
    for (int i = 0; i < 4; i++)
        ms[i] = n ? (double) delays[(long) ((double) (n - 1) * pct[i])] / 1000.0 : -1.0;
    int64_t from = b->hold ? b->first_arrival_us : b->first_publish_us;
    double seconds = (double) (b->last_arrival_us - from) / 1e6;
    json_t *out = json_pack(
        "{s:f, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "publish_seconds",
        b->last_ack_us ? (double) (b->last_ack_us - b->first_publish_us) / 1e6 : -1.0, "events",
        (json_int_t) b->count, "rate", (json_int_t) b->rate, "received", (json_int_t) b->received,
        "duplicates", (json_int_t) b->duplicates, "bad_signatures", (json_int_t) b->bad_signatures,
        "seconds", seconds, "deliveries_per_s", seconds > 0 ? (double) b->received / seconds : 0.0,
        "first_attempt_p50_ms", ms[0], "first_attempt_p90_ms", ms[1], "first_attempt_p99_ms", ms[2],
        "first_attempt_max_ms", ms[3]);
    char *text = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(out);
    free(delays);
    b->exit_code = (b->received == b->count && b->bad_signatures == 0) ? 0 : 1;
    uv_timer_stop(&b->timer);
    uv_close((uv_handle_t *) &b->timer, NULL);
    uv_close((uv_handle_t *) &b->server, NULL);
    if (b->stdin_open) {
        uv_close((uv_handle_t *) &b->stdin_pipe, NULL);
        b->stdin_open = false;
    }
    while (b->conns)
        conn_close(b->conns);
    lc_nats_close(b->nc, on_nats_closed, b);
}

/* ---- the receiver ---- */

/* Value of header `name` in the header block [h, end), or NULL; *len gets its length. */
static const char *
header(const char *h, const char *end, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = memchr(h, '\n', (size_t) (end - h)); /* skip the request line */
    while (p && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t) (eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *len = (size_t) (ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

static bool
signature_ok(bench_t *b, const char *id, size_t id_len, const char *ts, size_t ts_len,
             const char *sig, size_t sig_len, const char *body, size_t body_len)
{
    unsigned char mac[32];
    unsigned int mac_len = 0;
    char prefix[128];
    int n = snprintf(prefix, sizeof(prefix), "%.*s.%.*s.", (int) id_len, id, (int) ts_len, ts);
    size_t total = (size_t) n + body_len;
    unsigned char *content = lc_malloc(total);
    memcpy(content, prefix, (size_t) n);
    memcpy(content + n, body, body_len);
    HMAC(EVP_sha256(), b->key, b->key_len, content, total, mac, &mac_len);
    free(content);
    char want[64] = "v1,";
    EVP_EncodeBlock((unsigned char *) want + 3, mac, (int) mac_len);
    size_t wl = strlen(want);
    for (const char *p = sig, *end = sig + sig_len; p < end;) {
        const char *sp = memchr(p, ' ', (size_t) (end - p));
        size_t l = sp ? (size_t) (sp - p) : (size_t) (end - p);
        if (l == wl && memcmp(p, want, wl) == 0)
            return true;
        p += l + 1;
    }
    return false;
}

static void
on_write_done(uv_write_t *w, int status)
{
    (void) status;
    free(w);
}

/* Handles every complete request in the buffer; false when the connection must close. */
static bool
handle_requests(conn_t *c)
{
    bench_t *b = c->b;
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL)
            return c->len < CONN_BUF;
        size_t head = (size_t) (end - c->buf) + 4;
        size_t cl_len = 0, id_len = 0, ts_len = 0, sig_len = 0;
        const char *cl = header(c->buf, end + 2, "content-length", &cl_len);
        size_t body_len = cl ? (size_t) strtoul(cl, NULL, 10) : 0;
        if (head + body_len > CONN_BUF)
            return false;
        if (c->len < head + body_len)
            return true;
        const char *id = header(c->buf, end + 2, "webhook-id", &id_len);
        const char *ts = header(c->buf, end + 2, "webhook-timestamp", &ts_len);
        const char *sig = header(c->buf, end + 2, "webhook-signature", &sig_len);
        int64_t t = now_us();
        event_t *ev = id ? table_get(b, id, id_len) : NULL;
        if (ev == NULL) {
            b->unknown++;
        } else {
            if (!sig || !ts ||
                !signature_ok(b, id, id_len, ts, ts_len, sig, sig_len, c->buf + head, body_len))
                b->bad_signatures++;
            if (ev->arrivals++ == 0) {
                ev->first_arrival_us = t;
                if (b->first_arrival_us == 0)
                    b->first_arrival_us = t;
                b->received++;
                b->last_arrival_us = t;
            } else {
                b->duplicates++;
            }
        }
        uv_buf_t out = uv_buf_init((char *) RESPONSE, sizeof(RESPONSE) - 1);
        int w = uv_try_write((uv_stream_t *) &c->tcp, &out, 1);
        if (w < 0 && w != UV_EAGAIN)
            return false;
        if (w < (int) out.len) {
            size_t done = w > 0 ? (size_t) w : 0;
            uv_write_t *req = lc_malloc(sizeof(*req));
            uv_buf_t rest = uv_buf_init((char *) RESPONSE + done, (unsigned) (out.len - done));
            uv_write(req, (uv_stream_t *) &c->tcp, &rest, 1, on_write_done);
        }
        memmove(c->buf, c->buf + head + body_len, c->len - head - body_len);
        c->len -= head + body_len;
        if (b->received == b->count && !b->finished) {
            finish(b);
            return true;
        }
    }
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void) suggested;
    conn_t *c = h->data;
    *buf = uv_buf_init(c->buf + c->len, (unsigned) (CONN_BUF - c->len));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void) buf;
    conn_t *c = s->data;
    if (nread < 0) {
        if (!c->b->finished)
            conn_close(c);
        return;
    }
    c->len += (size_t) nread;
    bool keep = handle_requests(c);
    if (!keep && !c->b->finished)
        conn_close(c);
}

static void
on_connection(uv_stream_t *server, int status)
{
    bench_t *b = server->data;
    if (status < 0 || b->finished)
        return;
    conn_t *c = LC_NEW(conn_t);
    c->b = b;
    uv_tcp_init(&b->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *) &c->tcp) != 0) {
        uv_close((uv_handle_t *) &c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    uv_read_start((uv_stream_t *) &c->tcp, on_alloc, on_read);
}

/* ---- publishing ---- */

static void
on_ack(lc_status_t status, uint64_t seq, bool duplicate, void *arg)
{
    bench_t *b = arg;
    (void) seq;
    (void) duplicate;
    b->inflight--;
    if (++b->acked == b->count) {
        b->last_ack_us = now_us();
        if (b->hold) {
            printf("PUBLISHED\n");
            fflush(stdout);
        }
    }
    if (status != LC_OK && !b->finished)
        fprintf(stderr, "publish failed: %s\n", lc_status_name(status));
}

static void
publish_some(bench_t *b)
{
    int64_t now = now_us();
    long due = b->count;
    if (b->rate > 0)
        due = (long) ((double) (now - b->publish_start_us) * (double) b->rate / 1e6) + 1;
    if (due > b->count)
        due = b->count;
    while (b->published < due && b->inflight < MAX_INFLIGHT) {
        event_t *ev = &b->events[b->published];
        char created[32];
        lc_time_format_rfc3339(lc_time_wall_ms(), created, sizeof(created));
        char payload[512];
        int n = snprintf(payload, sizeof(payload),
                         "{\"id\":\"%s\",\"type\":\"agent.updated\",\"created_at\":\"%s\","
                         "\"org_id\":\"%s\",\"data\":{\"seq\":%ld,\"agent\":{\"id\":"
                         "\"agt_0123456789abcdef0123\",\"name\":\"Front desk\"}}}",
                         ev->id, created, b->org_id, b->published);
        char subject[160];
        snprintf(subject, sizeof(subject), "voxi.events.%s.agent.updated", b->org_id);
        ev->published_us = now_us();
        if (b->published == 0)
            b->first_publish_us = ev->published_us;
        if (lc_nats_js_publish(b->nc, subject, ev->id, payload, (size_t) n, 10000, on_ack, b) !=
            LC_OK)
            break;
        b->inflight++;
        b->published++;
    }
}

/* ---- set-up ---- */

static void
start_publishing(bench_t *b)
{
    b->publishing = true;
    b->publish_start_us = now_us();
    publish_some(b);
}

static void
on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char line[256];
    (void) h;
    (void) suggested;
    *buf = uv_buf_init(line, sizeof(line));
}

static void
on_stdin(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    bench_t *b = s->data;
    (void) buf;
    if (nread == 0)
        return;
    uv_read_stop(s);
    uv_close((uv_handle_t *) s, NULL);
    b->stdin_open = false;
    if (nread > 0 && !b->publishing)
        start_publishing(b);
}

static void
on_created(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    bench_t *b = arg;
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = status;
    if (st == LC_OK)
        st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                          &voxi__v1__api_reply__descriptor, &env, &body);
    json_t *ep = NULL;
    if (st == LC_OK) {
        json_error_t jerr;
        ep = json_loads(((Voxi__V1__ApiReply *) body)->json, 0, &jerr);
    }
    const char *secret = json_string_value(json_object_get(ep, "secret"));
    if (secret == NULL || strncmp(secret, "whsec_", 6) != 0) {
        fprintf(stderr, "creating the endpoint failed: %s %s\n", lc_status_name(st),
                env && env->error ? env->error->message : "");
        b->exit_code = 1;
        json_decref(ep);
        lc_pb_free(env, body);
        finish(b);
        return;
    }
    unsigned char key[96];
    int kl = EVP_DecodeBlock(key, (const unsigned char *) secret + 6, (int) strlen(secret + 6));
    size_t pad = 0;
    for (const char *p = secret + strlen(secret); p > secret && p[-1] == '='; p--)
        pad++;
    b->key_len = kl - (int) pad;
    memcpy(b->key, key, (size_t) b->key_len);
    json_decref(ep);
    lc_pb_free(env, body);
    if (b->hold) {
        printf("READY\n");
        fflush(stdout);
        uv_pipe_init(&b->loop, &b->stdin_pipe, 0);
        b->stdin_pipe.data = b;
        uv_pipe_open(&b->stdin_pipe, 0);
        b->stdin_open = true;
        uv_read_start((uv_stream_t *) &b->stdin_pipe, on_stdin_alloc, on_stdin);
        return;
    }
    start_publishing(b);
}

static void
create_endpoint(bench_t *b)
{
    char url[64], json[128], request_id[32];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/bench", b->port);
    snprintf(json, sizeof(json), "{\"url\":\"%s\",\"event_types\":[\"agent.updated\"]}", url);
    lc_id_new("req_", request_id, sizeof(request_id));
    Voxi__V1__ApiRequest req = VOXI__V1__API_REQUEST__INIT;
    req.json = json;
    Voxi__V1__Principal principal = VOXI__V1__PRINCIPAL__INIT;
    principal.kind = "api_key";
    principal.id = "key_bench";
    lc_pb_meta_t meta = {.request_id = request_id,
                         .org_id = b->org_id,
                         .principal = &principal,
                         .deadline_unix_ms = lc_time_wall_ms() + 10000};
    uint8_t *buf;
    size_t len;
    lc_pb_pack(&meta, &req.base, &buf, &len);
    if (lc_nats_request(b->nc, "voxi.webhooks.endpoints.create", buf, len, 10000, on_created, b,
                        NULL) != LC_OK) {
        fprintf(stderr, "request failed\n");
        finish(b);
    }
    free(buf);
}

static void
on_tick(uv_timer_t *t)
{
    bench_t *b = t->data;
    if (b->finished)
        return;
    if (lc_time_mono_ms() > b->deadline_mono_ms) {
        fprintf(stderr, "timeout: %ld of %ld events arrived\n", b->received, b->count);
        finish(b);
        return;
    }
    if (!b->creating && lc_nats_connected(b->nc)) {
        b->creating = true;
        create_endpoint(b);
    }
    if (b->publishing)
        publish_some(b);
    uv_timer_start(t, on_tick, TICK_MS, 0);
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr,
                "usage: voxi_wh_bench NATS_URL ORG_ID COUNT RATE [--timeout-s N] [--hold]\n");
        return 2;
    }
    lc_log_init("voxi_wh_bench", LC_LOG_ERROR, LC_LOG_FMT_LOGFMT);
    static bench_t b;
    b.org_id = argv[2];
    b.count = atol(argv[3]);
    b.rate = atol(argv[4]);
    b.timeout_s = 120;
    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "--timeout-s") == 0 && i + 1 < argc)
            b.timeout_s = atoll(argv[++i]);
        else if (strcmp(argv[i], "--hold") == 0)
            b.hold = true;
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            b.dump = argv[++i];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (b.count <= 0 || b.rate < 0) {
        fprintf(stderr, "COUNT must be > 0 and RATE >= 0\n");
        return 2;
    }
    b.events = lc_calloc((size_t) b.count, sizeof(event_t));
    for (b.table_size = 16; b.table_size < (size_t) b.count * 2;)
        b.table_size *= 2;
    b.table = lc_malloc(b.table_size * sizeof(long));
    for (size_t i = 0; i < b.table_size; i++)
        b.table[i] = -1;
    for (long i = 0; i < b.count; i++) {
        lc_id_new("evt_", b.events[i].id, sizeof(b.events[i].id));
        table_put(&b, i);
    }
    uv_loop_init(&b.loop);
    lc_nats_loop_init(&b.loop);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&b.loop, &b.server);
    b.server.data = &b;
    if (uv_tcp_bind(&b.server, (const struct sockaddr *) &addr, 0) != 0 ||
        uv_listen((uv_stream_t *) &b.server, 1024, on_connection) != 0) {
        fprintf(stderr, "cannot listen\n");
        return 1;
    }
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    uv_tcp_getsockname(&b.server, (struct sockaddr *) &bound, &bl);
    b.port = ntohs(((struct sockaddr_in *) &bound)->sin_port);
    lc_nats_opts_t opts = {.url = argv[1], .name = "voxi_wh_bench"};
    if (lc_nats_connect(&b.loop, &opts, &b.nc) != LC_OK)
        return 1;
    b.deadline_mono_ms = lc_time_mono_ms() + b.timeout_s * 1000;
    b.exit_code = 1;
    uv_timer_init(&b.loop, &b.timer);
    b.timer.data = &b;
    uv_timer_start(&b.timer, on_tick, 0, 0);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    lc_nats_destroy(b.nc);
    uv_loop_close(&b.loop);
    lc_nats_library_shutdown();
    free(b.events);
    free(b.table);
    return b.exit_code;
}
