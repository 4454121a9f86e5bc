/*
 * lc_health: a real side port on a uv loop, spoken to over real sockets.
 *
 * The main thread runs the loop; a client thread talks plain blocking HTTP/1.1 and wakes
 * the loop with uv_async_send when it is done, whereupon the loop closes the side port.
 * Assertions happen on the main thread after the loop has ended, and every test finishes
 * with uv_loop_close() == 0: nothing of the side port is left on the loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "lc_health.h"
#include "lc_log.h"
#include "lc_metrics.h"

/* A guard against a hung test, not a wait: every read normally ends on data or EOF. */
#define CLIENT_RECV_GUARD_S 20

typedef struct {
    bool transport_ok;
    int status;
    char head[4096]; /* status line and headers */
    char body[65536];
    size_t body_len;
    long content_length; /* -1 when absent */
} http_resp_t;

/* ---- a tiny blocking HTTP/1.1 client ---- */

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

static bool
send_all(int fd, const char *data)
{
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        off += (size_t) n;
    }
    return true;
}

/* Value of a response header (case-insensitive name), or NULL. */
static const char *
header_value(const http_resp_t *r, const char *name, char *out, size_t out_size)
{
    size_t name_len = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line != NULL && line[2] != '\0') {
        line += 2;
        const char *end = strstr(line, "\r\n");
        if (end == NULL)
            end = line + strlen(line);
        if ((size_t) (end - line) > name_len && strncasecmp(line, name, name_len) == 0 &&
            line[name_len] == ':') {
            const char *v = line + name_len + 1;
            while (*v == ' ')
                v++;
            snprintf(out, out_size, "%.*s", (int) (end - v), v);
            return out;
        }
        line = *end ? end : NULL;
    }
    return NULL;
}

/*
 * Reads one response. until_eof: read to end of stream (Connection: close); else read
 * exactly Content-Length body bytes and leave the connection open.
 */
static void
read_response(int fd, http_resp_t *r, bool until_eof, bool head_request)
{
    static char buf[sizeof(r->head) + sizeof(r->body)];
    size_t have = 0, head_len = 0;
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    for (;;) {
        if (head_len == 0) {
            char *sep = memmem(buf, have, "\r\n\r\n", 4);
            if (sep != NULL) {
                head_len = (size_t) (sep - buf) + 4;
                if (head_len - 2 > sizeof(r->head) - 1)
                    return;
                memcpy(r->head, buf, head_len - 2); /* keep the last header's CRLF */
                r->head[head_len - 2] = '\0';
                sscanf(r->head, "HTTP/1.%*d %d", &r->status);
                char v[64];
                if (header_value(r, "content-length", v, sizeof(v)))
                    r->content_length = strtol(v, NULL, 10);
            }
        }
        if (head_len > 0 && !until_eof) {
            size_t want =
                head_request ? 0 : (size_t) (r->content_length < 0 ? 0 : r->content_length);
            if (have - head_len >= want)
                break;
        }
        if (have == sizeof(buf))
            return;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (n < 0)
            return; /* error or the guard timeout: transport_ok stays false */
        if (n == 0)
            break;
        have += (size_t) n;
    }
    if (head_len == 0)
        return;
    r->body_len = have - head_len;
    memcpy(r->body, buf + head_len, r->body_len);
    r->body[r->body_len] = '\0';
    r->transport_ok = true;
}

static void
exchange(int port, const char *request, http_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    int fd = client_connect(port);
    if (fd < 0)
        return;
    if (send_all(fd, request))
        read_response(fd, r, true, false);
    close(fd);
}

/* ---- the fixture: loop on the main thread, client on its own ---- */

typedef struct fixture fixture_t;
struct fixture {
    uv_loop_t loop;
    uv_async_t wake; /* client -> loop: close the side port now */
    lc_health_t *h;
    int port;
    int closed_calls;
    int handles_at_done;
    bool destroy_in_done;
    void (*script)(fixture_t *f);
    /* per-test data */
    lc_metrics_t *metrics;
    _Atomic bool ready;
    http_resp_t resp[16];
    ssize_t final_recv;
    int final_errno;
};

static bool
test_ready_cb(void *arg, char *reason, size_t reason_size)
{
    fixture_t *f = arg;
    if (atomic_load(&f->ready))
        return true;
    snprintf(reason, reason_size, "nats \"main\" down");
    return false;
}

static void
count_handle(uv_handle_t *handle, void *arg)
{
    (void) handle;
    (*(int *) arg)++;
}

/* Handles still known to the loop, closing ones included. */
static int
live_handles(uv_loop_t *loop)
{
    int n = 0;
    uv_walk(loop, count_handle, &n);
    return n;
}

static void
on_health_closed(void *arg)
{
    fixture_t *f = arg;
    f->closed_calls++;
    /* the promise of done_cb: all of the side port's handles are gone (the test's own
     * async was closed before the side port) */
    f->handles_at_done = live_handles(&f->loop);
    if (f->destroy_in_done) {
        lc_health_destroy(f->h);
        f->h = NULL;
    }
}

static void
on_wake(uv_async_t *async)
{
    fixture_t *f = async->data;
    uv_close((uv_handle_t *) async, NULL);
    lc_health_close(f->h, on_health_closed, f);
    lc_health_close(f->h, on_health_closed, f); /* ignored */
}

static void
wake_loop(fixture_t *f)
{
    uv_async_send(&f->wake);
}

static void *
client_main(void *arg)
{
    fixture_t *f = arg;
    f->script(f);
    return NULL;
}

static void
fixture_start(fixture_t *f, const lc_health_opts_t *opts)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(lc_health_create(&f->loop, "127.0.0.1", 0, opts, &f->h), LC_OK);
    assert_non_null(f->h);
    f->port = lc_health_port(f->h);
    assert_true(f->port > 0 && f->port <= 65535);
}

/* Runs the client script against the loop until the side port has closed. */
static void
fixture_run(fixture_t *f)
{
    pthread_t thread;
    assert_int_equal(uv_async_init(&f->loop, &f->wake, on_wake), 0);
    f->wake.data = f;
    assert_int_equal(pthread_create(&thread, NULL, client_main, f), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(f->closed_calls, 1);
    assert_int_equal(f->handles_at_done, 0);
    lc_health_destroy(f->h);
    f->h = NULL;
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void
assert_json_response(const http_resp_t *r, int status, const char *body)
{
    char v[256];
    assert_true(r->transport_ok);
    assert_int_equal(r->status, status);
    assert_non_null(header_value(r, "content-type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    assert_int_equal(r->content_length, (long) strlen(body));
    assert_null(header_value(r, "transfer-encoding", v, sizeof(v)));
    assert_string_equal(r->body, body);
    assert_int_equal(r->body_len, strlen(body));
}

/* ---- routes ---- */

#define REQ(method, path) method " " path " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

static void
routes_script(fixture_t *f)
{
    exchange(f->port, REQ("GET", "/healthz"), &f->resp[0]);
    exchange(f->port, REQ("HEAD", "/healthz"), &f->resp[1]);
    exchange(f->port, REQ("GET", "/healthz?probe=1"), &f->resp[2]);
    exchange(f->port, REQ("GET", "/readyz"), &f->resp[3]);
    atomic_store(&f->ready, false);
    exchange(f->port, REQ("GET", "/readyz"), &f->resp[4]);
    exchange(f->port, REQ("GET", "/nope"), &f->resp[5]);
    exchange(f->port, REQ("GET", "/healthzz"), &f->resp[6]);
    exchange(f->port,
             "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
             &f->resp[7]);
    exchange(f->port, REQ("DELETE", "/healthz"), &f->resp[8]);
    exchange(f->port, REQ("GET", "/metrics"), &f->resp[9]);
    exchange(f->port, "GET /healthz HTTP/1.0\r\n\r\n", &f->resp[10]);
    wake_loop(f);
}

static void
test_routes(void **state)
{
    (void) state;
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    atomic_store(&f.ready, true);
    f.metrics = lc_metrics_create(0);
    f.script = routes_script;
    lc_health_opts_t opts = {
        .service = "testsvc", .ready_cb = test_ready_cb, .ready_arg = &f, .metrics = f.metrics};
    fixture_start(&f, &opts);
    fixture_run(&f);

    const char *healthz = "{\"status\":\"ok\",\"service\":\"testsvc\"}";
    char v[256];
    assert_json_response(&f.resp[0], 200, healthz);
    assert_non_null(strstr(f.resp[0].head, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(header_value(&f.resp[0], "cache-control", v, sizeof(v)));
    assert_string_equal(v, "no-store");
    assert_null(header_value(&f.resp[0], "server", v, sizeof(v)));

    /* HEAD: the GET's Content-Length, no body */
    assert_true(f.resp[1].transport_ok);
    assert_int_equal(f.resp[1].status, 200);
    assert_int_equal(f.resp[1].content_length, (long) strlen(healthz));
    assert_int_equal(f.resp[1].body_len, 0);

    assert_json_response(&f.resp[2], 200, healthz);
    assert_json_response(&f.resp[3], 200, "{\"status\":\"ready\"}");
    assert_json_response(&f.resp[4], 503,
                         "{\"status\":\"not_ready\",\"reason\":\"nats \\\"main\\\" down\"}");
    assert_non_null(strstr(f.resp[4].head, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_json_response(&f.resp[5], 404, "{\"error\":\"not_found\"}");
    assert_json_response(&f.resp[6], 404, "{\"error\":\"not_found\"}");
    for (int i = 7; i <= 8; i++) {
        assert_json_response(&f.resp[i], 405, "{\"error\":\"method_not_allowed\"}");
        assert_non_null(header_value(&f.resp[i], "allow", v, sizeof(v)));
        assert_string_equal(v, "GET, HEAD");
    }

    /* /metrics counts itself: the POST and this GET */
    const http_resp_t *m = &f.resp[9];
    assert_true(m->transport_ok);
    assert_int_equal(m->status, 200);
    assert_non_null(header_value(m, "content-type", v, sizeof(v)));
    assert_string_equal(v, "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(m->content_length, (long) m->body_len);
    assert_string_equal(
        m->body, "# HELP voxi_health_requests_total Requests to the side port (/healthz, /readyz, "
                 "/metrics) by path.\n"
                 "# TYPE voxi_health_requests_total counter\n"
                 "voxi_health_requests_total{path=\"/healthz\"} 4\n"
                 "voxi_health_requests_total{path=\"/metrics\"} 2\n"
                 "voxi_health_requests_total{path=\"/readyz\"} 2\n"
                 "voxi_health_requests_total{path=\"other\"} 2\n");

    /* HTTP/1.0 without Host is answered too (and closed, 1.0 has no keep-alive default) */
    assert_json_response(&f.resp[10], 200, healthz);
    assert_true(lc_metric_value(lc_metrics_counter(f.metrics, "voxi_health_requests_total", "",
                                                   "path=\"/healthz\"")) == 5);
    lc_metrics_destroy(f.metrics);
}

/* ---- keep-alive connections and close ---- */

static void
keepalive_script(fixture_t *f)
{
    int fd = client_connect(f->port);
    if (fd < 0) {
        wake_loop(f);
        return;
    }
    /* two requests on one connection, then leave it idle and ask the loop to close */
    for (int i = 0; i < 2; i++) {
        if (!send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
            break;
        read_response(fd, &f->resp[i], false, false);
    }
    wake_loop(f);
    char c;
    f->final_recv = recv(fd, &c, 1, 0); /* the server must end the idle connection */
    f->final_errno = errno;
    close(fd);
}

static void
test_close_ends_idle_keepalive_connection(void **state)
{
    (void) state;
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    f.metrics = lc_metrics_create(0);
    f.script = keepalive_script;
    lc_health_opts_t opts = {.service = "ka", .metrics = f.metrics};
    fixture_start(&f, &opts);
    fixture_run(&f);

    char v[64];
    for (int i = 0; i < 2; i++) {
        assert_json_response(&f.resp[i], 200, "{\"status\":\"ok\",\"service\":\"ka\"}");
        assert_non_null(header_value(&f.resp[i], "connection", v, sizeof(v)));
        assert_string_equal(v, "keep-alive");
    }
    /* EOF, not the receive guard's EAGAIN */
    assert_int_equal(f.final_recv, 0);
    lc_metrics_destroy(f.metrics);
}

/* ---- default registry, destroy from the done callback ---- */

static void
defaults_script(fixture_t *f)
{
    exchange(f->port, REQ("GET", "/metrics"), &f->resp[0]);
    exchange(f->port, REQ("GET", "/healthz"), &f->resp[1]);
    exchange(f->port, REQ("GET", "/readyz"), &f->resp[2]);
    wake_loop(f);
}

static void
test_defaults_and_destroy_in_done_cb(void **state)
{
    (void) state;
    static fixture_t f;
    memset(&f, 0, sizeof(f));
    f.script = defaults_script;
    f.destroy_in_done = true;
    fixture_start(&f, NULL);
    fixture_run(&f);

    const http_resp_t *m = &f.resp[0];
    assert_true(m->transport_ok);
    assert_int_equal(m->status, 200);
    assert_int_equal(m->content_length, (long) m->body_len);
    assert_non_null(strstr(m->body, "\nvoxi_health_requests_total{path=\"/metrics\"} 1\n"));
    assert_non_null(strstr(m->body, "# TYPE process_open_fds gauge\n"));
    assert_non_null(strstr(m->body, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(m->body, "\nprocess_cpu_seconds_total "));
    assert_non_null(strstr(m->body, "\nprocess_start_time_seconds "));
    assert_json_response(&f.resp[1], 200, "{\"status\":\"ok\",\"service\":\"voxi\"}");
    assert_json_response(&f.resp[2], 200, "{\"status\":\"ready\"}");
}

/* ---- errors and closing without traffic ---- */

static void
on_closed_count(void *arg)
{
    (*(int *) arg)++;
}

typedef struct {
    uv_loop_t *loop;
    int closed;
    int handles_at_done;
} close_probe_t;

static void
on_closed_probe(void *arg)
{
    close_probe_t *probe = arg;
    probe->closed++;
    probe->handles_at_done = live_handles(probe->loop);
}

static void
test_bind_errors(void **state)
{
    (void) state;
    uv_loop_t loop;
    lc_health_t *h = NULL, *h2 = (lc_health_t *) &loop;
    lc_metrics_t *reg = lc_metrics_create(0);
    lc_health_opts_t opts = {.metrics = reg};
    assert_int_equal(uv_loop_init(&loop), 0);

    assert_int_equal(lc_health_create(&loop, "127.0.0.1", 0, &opts, &h), LC_OK);
    int port = lc_health_port(h);
    /* the same port again: in use */
    assert_int_equal(lc_health_create(&loop, "127.0.0.1", port, &opts, &h2), LC_ERR_IO);
    assert_null(h2);
    h2 = h;
    assert_int_equal(lc_health_create(&loop, "localhost", 0, &opts, &h2), LC_ERR_INVALID);
    assert_null(h2);
    assert_int_equal(lc_health_create(&loop, "127.0.0.1", 70000, &opts, &h2), LC_ERR_INVALID);
    assert_int_equal(lc_health_create(&loop, "127.0.0.1", -1, &opts, &h2), LC_ERR_INVALID);
    assert_int_equal(lc_health_create(NULL, "127.0.0.1", 0, &opts, &h2), LC_ERR_INVALID);

    /* IPv6 loopback, when the machine has it */
    lc_health_t *h6 = NULL;
    lc_status_t st6 = lc_health_create(&loop, "::1", 0, &opts, &h6);
    assert_true(st6 == LC_OK || st6 == LC_ERR_IO);

    int closed = 0;
    lc_health_destroy(h); /* too early: refused, h stays usable */
    lc_health_close(h, on_closed_count, &closed);
    lc_health_close(h6, on_closed_count, &closed);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(closed, st6 == LC_OK ? 2 : 1);
    lc_health_destroy(h);
    lc_health_destroy(h6);
    lc_health_destroy(NULL);
    lc_health_close(NULL, on_closed_count, &closed);
    /* the failed create's listener was closed and freed by the loop too */
    assert_int_equal(uv_loop_close(&loop), 0);
    lc_metrics_destroy(reg);
}

static void
test_close_before_loop_runs(void **state)
{
    (void) state;
    uv_loop_t loop;
    lc_health_t *h = NULL;
    lc_metrics_t *reg = lc_metrics_create(0);
    lc_health_opts_t opts = {.service = "x", .metrics = reg};
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(lc_health_create(&loop, "127.0.0.1", 0, &opts, &h), LC_OK);
    close_probe_t probe = {.loop = &loop};
    lc_health_close(h, on_closed_probe, &probe);
    assert_int_equal(probe.closed, 0); /* never synchronously */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(probe.closed, 1);
    assert_int_equal(probe.handles_at_done, 0);
    lc_health_destroy(h);
    assert_int_equal(uv_loop_close(&loop), 0);
    lc_metrics_destroy(reg);
}

int
main(void)
{
    lc_log_init("test_health", LC_LOG_OFF, LC_LOG_FMT_LOGFMT);
    alarm(120); /* a hang fails the run instead of blocking it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_close_ends_idle_keepalive_connection),
        cmocka_unit_test(test_defaults_and_destroy_in_done_cb),
        cmocka_unit_test(test_bind_errors),
        cmocka_unit_test(test_close_before_loop_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
