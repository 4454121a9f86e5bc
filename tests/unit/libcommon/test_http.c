/*
 * lc_http: a real server on a uv loop, spoken to over real sockets by a client thread.
 *
 * The main thread runs the loop; the client thread talks blocking HTTP/1.1 and wakes the
 * loop with uv_async_send when done, whereupon the loop closes the server. Assertions
 * run on the main thread after the loop has ended, and every test ends with
 * uv_loop_close() == 0: nothing of the server is left on the loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "lc_http.h"
#include "lc_log.h"

#define CLIENT_RECV_GUARD_S 20 /* a guard against a hung test, not a wait */

typedef struct {
    bool transport_ok;
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
} resp_t;

/* ---- a tiny blocking client ---- */

static int
client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = CLIENT_RECV_GUARD_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends request, reads until EOF (the requests say Connection: close). */
static void
exchange(int port, const char *request, resp_t *r)
{
    static char buf[sizeof(r->head) + sizeof(r->body)];
    memset(r, 0, sizeof(*r));
    int fd = client_connect(port);
    if (fd < 0)
        return;
    size_t len = strlen(request), off = 0;
    while (off < len) {
        ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t) n;
    }
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t) n;
    }
    close(fd);
    buf[have] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL)
        return;
    size_t head_len = (size_t) (sep - buf) + 2;
    if (head_len >= sizeof(r->head))
        return;
    memcpy(r->head, buf, head_len);
    r->head[head_len] = '\0';
    r->body_len = have - head_len - 2;
    memcpy(r->body, sep + 4, r->body_len);
    r->body[r->body_len] = '\0';
    sscanf(r->head, "HTTP/1.%*d %d", &r->status);
    r->transport_ok = true;
}

/* Case-insensitive "\r\nName: value\r\n" lookup in the head. */
static bool
has_header(const resp_t *r, const char *name, const char *value)
{
    char line[512];
    snprintf(line, sizeof(line), "\r\n%s: %s\r\n", name, value);
    return strcasestr(r->head, line) != NULL;
}

static bool
has_header_name(const resp_t *r, const char *name)
{
    char line[128];
    snprintf(line, sizeof(line), "\r\n%s:", name);
    return strcasestr(r->head, line) != NULL;
}

/* ---- the fixture ---- */

typedef struct fixture fixture_t;
struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t later; /* answers deferred requests on a later loop turn */
    lc_http_t *http;
    int port;
    int done_calls;
    void (*script)(fixture_t *f);
    /* per test */
    resp_t resp[8];
    uint64_t deferred_id;
    int aborts_with_req, aborts_gone;
    size_t deferred_seen;
    bool close_while_deferred;
    bool done_before_answer;
};

static void
on_closed(void *arg)
{
    fixture_t *f = arg;
    f->done_calls++;
}

static void
on_wake(uv_async_t *async)
{
    fixture_t *f = async->data;
    uv_close((uv_handle_t *) async, NULL);
    uv_close((uv_handle_t *) &f->later, NULL);
    lc_http_close(f->http, on_closed, f);
}

static void *
client_main(void *arg)
{
    fixture_t *f = arg;
    f->script(f);
    uv_async_send(&f->wake);
    return NULL;
}

static void
run_fixture(fixture_t *f, const lc_http_opts_t *opts)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(lc_http_create(&f->loop, "127.0.0.1", 0, opts, &f->http), LC_OK);
    f->port = lc_http_port(f->http);
    assert_true(f->port > 0);
    uv_timer_init(&f->loop, &f->later);
    f->later.data = f;
    assert_int_equal(uv_async_init(&f->loop, &f->wake, on_wake), 0);
    f->wake.data = f;
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, client_main, f), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(f->done_calls, 1);
    assert_int_equal(lc_http_connections(f->http), 0);
    assert_int_equal(lc_http_deferred(f->http), 0);
    lc_http_destroy(f->http);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- plain responses and helpers ---- */

static int
basic_on_req(lc_http_t *http, h2o_req_t *req, void *arg)
{
    (void) http;
    (void) arg;
    if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/empty"))) {
        lc_http_respond(req, 204, NULL, NULL, 0);
        return 0;
    }
    char peer[64], body[256];
    h2o_iovec_t v = {NULL, 0};
    bool found = lc_http_header(req, "X-Test", &v);
    lc_http_peer_addr(req, peer, sizeof(peer));
    snprintf(body, sizeof(body), "peer=%s test=%.*s entity=%zu", peer, found ? (int) v.len : 4,
             found ? v.base : "none", req->entity.len);
    char value[32];
    snprintf(value, sizeof(value), "v-%d", 7); /* a stack buffer: must be copied */
    lc_http_add_header(req, "X-Echo", value);
    lc_http_respond(req, 201, "text/plain", body, strlen(body));
    return 0;
}

static void
basic_script(fixture_t *f)
{
    exchange(f->port, "GET /a HTTP/1.1\r\nHost: x\r\nX-Test: hello\r\nConnection: close\r\n\r\n",
             &f->resp[0]);
    exchange(f->port, "GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &f->resp[1]);
    exchange(f->port,
             "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
             &f->resp[2]);
    /* over max_body_bytes (64): refused before the body is read; no rewrite callback */
    exchange(f->port,
             "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n",
             &f->resp[3]);
}

static void
test_basic_responses(void **state)
{
    (void) state;
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    f.script = basic_script;
    lc_http_opts_t opts = {.name = "t", .on_req = basic_on_req, .max_body_bytes = 64};
    run_fixture(&f, &opts);

    assert_true(f.resp[0].transport_ok);
    assert_int_equal(f.resp[0].status, 201);
    assert_non_null(strstr(f.resp[0].head, "HTTP/1.1 201 Created\r\n"));
    assert_string_equal(f.resp[0].body, "peer=127.0.0.1 test=hello entity=0");
    assert_true(has_header(&f.resp[0], "Content-Length", "34"));
    assert_true(has_header(&f.resp[0], "Content-Type", "text/plain"));
    assert_true(has_header(&f.resp[0], "X-Echo", "v-7"));
    assert_false(has_header_name(&f.resp[0], "Server"));

    /* 204: no body, no Content-Length, not chunked (RFC 9110 8.6) */
    assert_int_equal(f.resp[1].status, 204);
    assert_int_equal(f.resp[1].body_len, 0);
    assert_false(has_header_name(&f.resp[1], "Content-Length"));
    assert_false(has_header_name(&f.resp[1], "Transfer-Encoding"));

    assert_string_equal(f.resp[2].body, "peer=127.0.0.1 test=none entity=3");

    assert_int_equal(f.resp[3].status, 413);
    assert_true(has_header(&f.resp[3], "Content-Type", "text/plain; charset=utf-8"));
}

/* ---- h2o's own errors, rewritten ---- */

static h2o_iovec_t
rewrite_error(lc_http_t *http, h2o_req_t *req, void *arg)
{
    (void) http;
    (void) arg;
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "{\"status\":%d}", req->res.status);
    lc_http_add_header(req, "Content-Type", "application/problem+json");
    lc_http_add_header(req, "X-Rewritten", "yes");
    return h2o_strdup(&req->pool, tmp, SIZE_MAX);
}

static void
rewrite_script(fixture_t *f)
{
    exchange(f->port,
             "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n",
             &f->resp[0]);
    /* chunked: the limit is found while reading */
    char req[512];
    char chunk[80];
    memset(chunk, 'a', 70);
    chunk[70] = '\0';
    snprintf(req, sizeof(req),
             "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: "
             "close\r\n\r\n46\r\n%s\r\n0\r\n\r\n",
             chunk);
    exchange(f->port, req, &f->resp[1]);
    exchange(f->port,
             "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: "
             "close\r\n\r\nzz\r\n",
             &f->resp[2]);
    /* a request that reaches the handler is not touched */
    exchange(f->port, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &f->resp[3]);
}

static void
test_h2o_errors_rewritten(void **state)
{
    (void) state;
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    f.script = rewrite_script;
    lc_http_opts_t opts = {
        .on_req = basic_on_req, .max_body_bytes = 64, .on_h2o_error = rewrite_error};
    run_fixture(&f, &opts);

    assert_int_equal(f.resp[0].status, 413);
    assert_string_equal(f.resp[0].body, "{\"status\":413}");
    assert_true(has_header(&f.resp[0], "Content-Type", "application/problem+json"));
    assert_true(has_header(&f.resp[0], "Content-Length", "14"));
    assert_true(has_header(&f.resp[0], "X-Rewritten", "yes"));
    assert_true(has_header(&f.resp[0], "Connection", "close"));
    assert_int_equal(f.resp[1].status, 413);
    assert_string_equal(f.resp[1].body, "{\"status\":413}");
    assert_int_equal(f.resp[2].status, 400);
    assert_string_equal(f.resp[2].body, "{\"status\":400}");
    assert_int_equal(f.resp[3].status, 201);
    assert_false(has_header_name(&f.resp[3], "X-Rewritten"));
}

/* ---- deferred requests ---- */

static void
on_abort(lc_http_t *http, uint64_t id, h2o_req_t *req, void *arg)
{
    (void) http;
    fixture_t *f = arg;
    assert_int_equal(id, f->deferred_id);
    if (req == NULL) {
        f->aborts_gone++;
        return;
    }
    f->aborts_with_req++;
    lc_http_respond(req, 504, "text/plain", "late", 4);
}

/* Answers the deferred request from a timer: a later loop turn. */
static void
on_later(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->deferred_seen = lc_http_deferred(f->http);
    if (f->close_while_deferred) {
        /* closing does not drop the deferred request */
        lc_http_close(f->http, on_closed, f);
        f->done_before_answer = f->done_calls > 0;
    }
    h2o_req_t *req = lc_http_resume(f->http, f->deferred_id);
    assert_non_null(req);
    assert_null(lc_http_resume(f->http, f->deferred_id)); /* once only */
    lc_http_respond(req, 200, "text/plain", "later", 5);
}

static int
defer_on_req(lc_http_t *http, h2o_req_t *req, void *arg)
{
    fixture_t *f = arg;
    if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/slow"))) {
        /* never answered: the deadline answers */
        f->deferred_id = lc_http_defer(http, req, 50, on_abort, f);
        return 0;
    }
    f->deferred_id = lc_http_defer(http, req, 10000, on_abort, f);
    assert_true(f->deferred_id != 0);
    uv_timer_start(&f->later, on_later, 20, 0);
    return 0;
}

static void
defer_script(fixture_t *f)
{
    exchange(f->port, "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &f->resp[0]);
    exchange(f->port, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &f->resp[1]);
}

static void
test_defer_resume_and_deadline(void **state)
{
    (void) state;
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    f.script = defer_script;
    lc_http_opts_t opts = {.on_req = defer_on_req, .arg = &f};
    run_fixture(&f, &opts);

    assert_int_equal(f.resp[0].status, 200);
    assert_string_equal(f.resp[0].body, "later");
    assert_int_equal(f.deferred_seen, 1);
    assert_int_equal(f.resp[1].status, 504);
    assert_string_equal(f.resp[1].body, "late");
    assert_int_equal(f.aborts_with_req, 1);
    assert_int_equal(f.aborts_gone, 0);
}

/* ---- closing with a deferred request in flight ---- */

static void
close_script(fixture_t *f)
{
    exchange(f->port, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n", &f->resp[0]);
}

static void
on_wake_noop(uv_async_t *async)
{
    fixture_t *f = async->data;
    uv_close((uv_handle_t *) async, NULL);
    uv_close((uv_handle_t *) &f->later, NULL);
}

static void
test_close_waits_for_deferred(void **state)
{
    (void) state;
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    f.script = close_script;
    f.close_while_deferred = true;
    lc_http_opts_t opts = {.on_req = defer_on_req, .arg = &f};
    /* the close comes from on_later, the client's wake-up only ends the test's handles */
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(lc_http_create(&f.loop, "127.0.0.1", 0, &opts, &f.http), LC_OK);
    f.port = lc_http_port(f.http);
    uv_timer_init(&f.loop, &f.later);
    f.later.data = &f;
    assert_int_equal(uv_async_init(&f.loop, &f.wake, on_wake_noop), 0);
    f.wake.data = &f;
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, client_main, &f), 0);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);

    /* a keep-alive request got its answer with Connection: close, then the server closed */
    assert_false(f.done_before_answer);
    assert_int_equal(f.resp[0].status, 200);
    assert_string_equal(f.resp[0].body, "later");
    assert_true(has_header(&f.resp[0], "Connection", "close"));
    assert_int_equal(f.done_calls, 1);
    lc_http_destroy(f.http);
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

/* ---- argument errors ---- */

static void
test_create_errors(void **state)
{
    (void) state;
    uv_loop_t loop;
    lc_http_t *http = (lc_http_t *) &loop;
    lc_http_opts_t opts = {.on_req = basic_on_req};
    lc_http_opts_t no_cb = {.name = "x"};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lc_http_create(&loop, "127.0.0.1", 0, &no_cb, &http), LC_ERR_INVALID);
    assert_null(http);
    assert_int_equal(lc_http_create(&loop, "127.0.0.1", 0, NULL, &http), LC_ERR_INVALID);
    assert_int_equal(lc_http_create(&loop, "not-an-ip", 0, &opts, &http), LC_ERR_INVALID);
    assert_int_equal(lc_http_create(&loop, "127.0.0.1", 65536, &opts, &http), LC_ERR_INVALID);
    assert_int_equal(lc_http_create(&loop, "127.0.0.1", 0, &opts, &http), LC_OK);
    lc_http_t *second = NULL;
    assert_int_equal(lc_http_create(&loop, "127.0.0.1", lc_http_port(http), &opts, &second),
                     LC_ERR_IO);
    assert_null(second);
    assert_false(lc_http_closing(http));
    lc_http_destroy(http); /* too early: refused */
    int closed = 0;
    lc_http_close(http, NULL, NULL);
    assert_true(lc_http_closing(http));
    lc_http_close(http, NULL, &closed); /* ignored */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    lc_http_destroy(http);
    lc_http_destroy(NULL);
    lc_http_close(NULL, NULL, NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_string_equal(lc_http_reason(404), "Not Found");
    assert_string_equal(lc_http_reason(599), "Unknown");
}

int
main(void)
{
    lc_log_init("test_http", LC_LOG_OFF, LC_LOG_FMT_LOGFMT);
    alarm(120); /* a hang fails the run instead of blocking it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_responses),
        cmocka_unit_test(test_h2o_errors_rewritten),
        cmocka_unit_test(test_defer_resume_and_deadline),
        cmocka_unit_test(test_close_waits_for_deferred),
        cmocka_unit_test(test_create_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
