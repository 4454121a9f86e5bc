#include "md_sip_transport.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "md_sip_msg.h"

#define UDP_BUF_BYTES 65536
#define TCP_MAX_HEADER_BYTES 16384
#define TCP_MAX_BUFFER_BYTES (TCP_MAX_HEADER_BYTES + MD_SIP_MAX_MESSAGE_BYTES)
#define TCP_MAX_WRITE_QUEUE_BYTES (1u << 20)
#define SWEEP_INTERVAL_MS 5000

typedef struct tcp_conn {
    uv_tcp_t handle;
    uv_connect_t connect_req;
    md_sip_transport_t *t;
    uint64_t id;
    struct sockaddr_storage peer;
    char *buf;
    size_t len, cap;
    char *pending; /* bytes written before an outbound connect completed */
    size_t pending_len;
    int64_t last_active_ms;
    bool connecting;
    bool closing;
    struct tcp_conn *prev, *next;
} tcp_conn_t;

typedef struct {
    uv_write_t req;
    char data[];
} write_req_t;

typedef struct {
    uv_udp_send_t req;
    char data[];
} udp_req_t;

struct md_sip_transport {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_tcp_t listener;
    uv_timer_t sweep;
    bool tcp_enabled;
    int port;
    md_sip_recv_cb cb;
    void *cb_arg;
    size_t max_tcp_conns;
    int64_t tcp_idle_ms;
    tcp_conn_t *conns;
    size_t nconns;
    uint64_t next_conn_id;
    int open_handles;
    bool closing;
    void (*done)(void *);
    void *done_arg;
    char udp_buf[UDP_BUF_BYTES];
    lc_metric_t *m_rx_udp, *m_rx_tcp, *m_tx_udp, *m_tx_tcp, *m_drop_bad, *m_send_err, *m_conns,
        *m_refused;
};

/* ---- addresses ---- */

void
md_sip_peer_ip(const md_sip_peer_t *p, char *out, size_t out_size, int *port)
{
    out[0] = '\0';
    if (port)
        *port = 0;
    if (p->addr.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *) &p->addr;
        inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t) out_size);
        if (port)
            *port = ntohs(a->sin_port);
    } else if (p->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) &p->addr;
        inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t) out_size);
        if (port)
            *port = ntohs(a->sin6_port);
    }
}

void
md_sip_peer_format(const md_sip_peer_t *p, char *out, size_t out_size)
{
    char ip[INET6_ADDRSTRLEN];
    int port;
    md_sip_peer_ip(p, ip, sizeof(ip), &port);
    const char *proto = p->proto == MD_SIP_TCP ? "tcp" : "udp";
    if (p->addr.ss_family == AF_INET6)
        snprintf(out, out_size, "%s:[%s]:%d", proto, ip, port);
    else
        snprintf(out, out_size, "%s:%s:%d", proto, ip, port);
}

bool
md_sip_addr_from_ip(const char *ip, int port, struct sockaddr_storage *addr)
{
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *a4 = (struct sockaddr_in *) addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *) addr;
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(ip);
    if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, ip + 1, n - 2);
        buf[n - 2] = '\0';
        ip = buf;
    }
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t) port);
        return true;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t) port);
        return true;
    }
    return false;
}

bool
md_sip_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *) a;
        const struct sockaddr_in *y = (const struct sockaddr_in *) b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *) a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *) b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/* ---- handle bookkeeping ---- */

static void
handle_closed(md_sip_transport_t *t)
{
    t->open_handles--;
    if (t->closing && t->open_handles == 0 && t->done) {
        void (*done)(void *) = t->done;
        t->done = NULL;
        done(t->done_arg);
    }
}

static void
on_plain_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

/* ---- UDP ---- */

static void
udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void) suggested;
    md_sip_transport_t *t = h->data;
    buf->base = t->udp_buf;
    buf->len = sizeof(t->udp_buf);
}

static bool
only_crlf(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

static void
udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
         unsigned flags)
{
    md_sip_transport_t *t = h->data;
    if (nread <= 0 || addr == NULL || t->closing)
        return;
    if (flags & UV_UDP_PARTIAL) {
        lc_metric_inc(t->m_drop_bad);
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "dropped a truncated UDP datagram");
        return;
    }
    if (only_crlf(buf->base, (size_t) nread))
        return; /* keep-alive */
    md_sip_peer_t peer = {.proto = MD_SIP_UDP};
    memcpy(&peer.addr, addr,
           addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    lc_metric_inc(t->m_rx_udp);
    t->cb(t->cb_arg, &peer, buf->base, (size_t) nread);
}

static void
udp_sent(uv_udp_send_t *req, int status)
{
    udp_req_t *r = (udp_req_t *) req;
    if (status < 0)
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "UDP send failed: %s", uv_strerror(status));
    free(r);
}

static lc_status_t
udp_send(md_sip_transport_t *t, const md_sip_peer_t *to, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *) data, (unsigned) len);
    int rc = uv_udp_try_send(&t->udp, &b, 1, (const struct sockaddr *) &to->addr);
    if (rc >= 0) {
        lc_metric_inc(t->m_tx_udp);
        return LC_OK;
    }
    if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
        lc_metric_inc(t->m_send_err);
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "UDP send failed: %s", uv_strerror(rc));
        return LC_ERR_IO;
    }
    udp_req_t *r = lc_malloc(sizeof(udp_req_t) + len);
    memcpy(r->data, data, len);
    b = uv_buf_init(r->data, (unsigned) len);
    rc = uv_udp_send(&r->req, &t->udp, &b, 1, (const struct sockaddr *) &to->addr, udp_sent);
    if (rc < 0) {
        free(r);
        lc_metric_inc(t->m_send_err);
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "UDP send failed: %s", uv_strerror(rc));
        return LC_ERR_IO;
    }
    lc_metric_inc(t->m_tx_udp);
    return LC_OK;
}

/* ---- TCP framing (RFC 3261 section 18.3) ---- */

/* Content-Length (or its compact form "l") of the header block hdr[0..len), which starts
 * with the start line; -1 when it is not a number, 0 when absent. */
static long
header_content_length(const char *hdr, size_t len)
{
    size_t i = 0;
    while (i < len && hdr[i] != '\n')
        i++; /* start line */
    while (i < len) {
        size_t line = ++i;
        while (i < len && hdr[i] != '\n')
            i++;
        size_t end = i;
        if (line >= end || hdr[line] == ' ' || hdr[line] == '\t')
            continue; /* folded continuation or empty */
        size_t colon = line;
        while (colon < end && hdr[colon] != ':')
            colon++;
        if (colon >= end)
            continue;
        size_t name_end = colon;
        while (name_end > line && (hdr[name_end - 1] == ' ' || hdr[name_end - 1] == '\t'))
            name_end--;
        size_t nlen = name_end - line;
        bool is_cl = (nlen == 14 && strncasecmp(hdr + line, "content-length", 14) == 0) ||
                     (nlen == 1 && (hdr[line] == 'l' || hdr[line] == 'L'));
        if (!is_cl)
            continue;
        size_t v = colon + 1;
        while (v < end && (hdr[v] == ' ' || hdr[v] == '\t'))
            v++;
        long n = 0;
        size_t digits = 0;
        while (v < end && isdigit((unsigned char) hdr[v])) {
            n = n * 10 + (hdr[v] - '0');
            if (n > MD_SIP_MAX_MESSAGE_BYTES)
                return -1;
            v++;
            digits++;
        }
        while (v < end && (hdr[v] == ' ' || hdr[v] == '\t' || hdr[v] == '\r'))
            v++;
        return digits > 0 && v == end ? n : -1;
    }
    return 0;
}

/* Cuts the first message out of buf[0..len). Returns its length (> 0), 0 when more bytes
 * are needed, -1 when the stream is broken. *skip gets the keep-alive bytes before it and
 * *pings the number of double-CRLF pings among them. */
static long
frame_message(const char *buf, size_t len, size_t *skip, int *pings)
{
    size_t i = 0;
    *pings = 0;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n')) {
        if (len - i >= 4 && memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            (*pings)++;
            i += 4;
        } else {
            i++;
        }
    }
    *skip = i;
    const char *start = buf + i;
    size_t avail = len - i;
    const char *end = avail >= 4 ? memmem(start, avail, "\r\n\r\n", 4) : NULL;
    if (end == NULL)
        return avail > TCP_MAX_HEADER_BYTES ? -1 : 0;
    size_t hdr_len = (size_t) (end - start) + 4;
    if (hdr_len > TCP_MAX_HEADER_BYTES)
        return -1;
    long cl = header_content_length(start, hdr_len - 2);
    if (cl < 0)
        return -1;
    if (avail < hdr_len + (size_t) cl)
        return 0;
    return (long) (hdr_len + (size_t) cl);
}

/* ---- TCP connections ---- */

static void
conn_closed(uv_handle_t *h)
{
    tcp_conn_t *c = h->data;
    md_sip_transport_t *t = c->t;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->nconns--;
    lc_metric_set(t->m_conns, (double) t->nconns);
    free(c->buf);
    free(c->pending);
    free(c);
    handle_closed(t);
}

static void
conn_close(tcp_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *) &c->handle, conn_closed);
}

static tcp_conn_t *
conn_new(md_sip_transport_t *t)
{
    tcp_conn_t *c = LC_NEW(tcp_conn_t);
    c->t = t;
    c->id = ++t->next_conn_id;
    c->last_active_ms = lc_time_mono_ms();
    uv_tcp_init(t->loop, &c->handle);
    uv_unref((uv_handle_t *) &c->handle);
    c->handle.data = c;
    c->connect_req.data = c;
    t->open_handles++;
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    t->nconns++;
    lc_metric_set(t->m_conns, (double) t->nconns);
    return c;
}

static void
write_done(uv_write_t *req, int status)
{
    if (status < 0 && status != UV_ECANCELED)
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "TCP write failed: %s", uv_strerror(status));
    free(req);
}

static lc_status_t
conn_write(tcp_conn_t *c, const char *data, size_t len)
{
    if (c->closing)
        return LC_ERR_IO;
    if (c->connecting) {
        c->pending = lc_realloc(c->pending, c->pending_len + len);
        memcpy(c->pending + c->pending_len, data, len);
        c->pending_len += len;
        return LC_OK;
    }
    if (c->handle.write_queue_size > TCP_MAX_WRITE_QUEUE_BYTES) {
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "TCP peer not reading: closing the connection");
        conn_close(c);
        return LC_ERR_IO;
    }
    write_req_t *w = lc_malloc(sizeof(write_req_t) + len);
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned) len);
    int rc = uv_write(&w->req, (uv_stream_t *) &c->handle, &b, 1, write_done);
    if (rc < 0) {
        free(w);
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "TCP write failed: %s", uv_strerror(rc));
        conn_close(c);
        return LC_ERR_IO;
    }
    c->last_active_ms = lc_time_mono_ms();
    return LC_OK;
}

static void
tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void) suggested;
    tcp_conn_t *c = h->data;
    if (c->cap - c->len < 4096 && c->cap < TCP_MAX_BUFFER_BYTES) {
        size_t cap = c->cap ? c->cap * 2 : 8192;
        if (cap > TCP_MAX_BUFFER_BYTES)
            cap = TCP_MAX_BUFFER_BYTES;
        c->buf = lc_realloc(c->buf, cap);
        c->cap = cap;
    }
    buf->base = c->buf + c->len;
    buf->len = c->cap - c->len;
}

static void
tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void) buf;
    tcp_conn_t *c = s->data;
    md_sip_transport_t *t = c->t;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->len += (size_t) nread;
    c->last_active_ms = lc_time_mono_ms();
    while (!c->closing && !t->closing && c->len > 0) {
        size_t skip;
        int pings;
        long n = frame_message(c->buf, c->len, &skip, &pings);
        for (int i = 0; i < pings; i++)
            conn_write(c, "\r\n", 2); /* RFC 5626 section 4.4.1 pong */
        if (n < 0) {
            lc_metric_inc(t->m_drop_bad);
            LC_LOG_RL(LC_LOG_WARN, "sip", 1, "bad SIP stream framing: closing the connection");
            conn_close(c);
            return;
        }
        if (n == 0) {
            if (skip > 0) {
                memmove(c->buf, c->buf + skip, c->len - skip);
                c->len -= skip;
            }
            if (c->len >= TCP_MAX_BUFFER_BYTES) {
                conn_close(c);
                return;
            }
            return;
        }
        md_sip_peer_t peer = {.proto = MD_SIP_TCP, .addr = c->peer, .conn_id = c->id};
        lc_metric_inc(t->m_rx_tcp);
        t->cb(t->cb_arg, &peer, c->buf + skip, (size_t) n);
        /* the callback may have closed the connection; its buffer lives until close_cb */
        size_t used = skip + (size_t) n;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
}

static void
on_connection(uv_stream_t *server, int status)
{
    md_sip_transport_t *t = server->data;
    if (status < 0 || t->closing)
        return;
    tcp_conn_t *c = conn_new(t);
    if (uv_accept(server, (uv_stream_t *) &c->handle) != 0) {
        conn_close(c);
        return;
    }
    if (t->nconns > t->max_tcp_conns) {
        lc_metric_inc(t->m_refused);
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "too many TCP connections (%zu): refusing", t->nconns);
        conn_close(c);
        return;
    }
    int len = sizeof(c->peer);
    uv_tcp_getpeername(&c->handle, (struct sockaddr *) &c->peer, &len);
    uv_read_start((uv_stream_t *) &c->handle, tcp_alloc, tcp_read);
}

static void
on_connected(uv_connect_t *req, int status)
{
    tcp_conn_t *c = req->data;
    if (c->closing)
        return;
    c->connecting = false;
    if (status < 0) {
        char p[64];
        md_sip_peer_t peer = {.proto = MD_SIP_TCP, .addr = c->peer};
        md_sip_peer_format(&peer, p, sizeof(p));
        LC_LOG_RL(LC_LOG_WARN, "sip", 1, "TCP connect to %s failed: %s", p, uv_strerror(status));
        lc_metric_inc(c->t->m_send_err);
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *) &c->handle, tcp_alloc, tcp_read);
    if (c->pending_len > 0) {
        char *p = c->pending;
        size_t n = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
        conn_write(c, p, n);
        free(p);
    }
}

static tcp_conn_t *
conn_find(md_sip_transport_t *t, const md_sip_peer_t *to)
{
    if (to->conn_id != 0)
        for (tcp_conn_t *c = t->conns; c; c = c->next)
            if (c->id == to->conn_id && !c->closing)
                return c;
    for (tcp_conn_t *c = t->conns; c; c = c->next)
        if (!c->closing && md_sip_addr_equal(&c->peer, &to->addr))
            return c;
    return NULL;
}

static lc_status_t
tcp_send(md_sip_transport_t *t, md_sip_peer_t *to, const char *data, size_t len)
{
    tcp_conn_t *c = conn_find(t, to);
    if (c == NULL) {
        if (t->nconns >= t->max_tcp_conns)
            return LC_ERR_FULL;
        c = conn_new(t);
        c->peer = to->addr;
        c->connecting = true;
        int rc = uv_tcp_connect(&c->connect_req, &c->handle, (const struct sockaddr *) &to->addr,
                                on_connected);
        if (rc < 0) {
            LC_LOG_RL(LC_LOG_WARN, "sip", 1, "TCP connect failed: %s", uv_strerror(rc));
            conn_close(c);
            return LC_ERR_IO;
        }
    }
    to->conn_id = c->id;
    lc_status_t st = conn_write(c, data, len);
    if (st == LC_OK)
        lc_metric_inc(t->m_tx_tcp);
    return st;
}

static void
on_sweep(uv_timer_t *timer)
{
    md_sip_transport_t *t = timer->data;
    int64_t now = lc_time_mono_ms();
    for (tcp_conn_t *c = t->conns; c; c = c->next)
        if (!c->closing && now - c->last_active_ms > t->tcp_idle_ms)
            conn_close(c);
}

/* ---- life cycle ---- */

static lc_status_t
uv_fail(const char *what, const char *addr, int port, int rc)
{
    LC_ERROR("sip", "%s %s:%d: %s", what, addr, port, uv_strerror(rc));
    return LC_ERR_IO;
}

/* With port 0 and TCP on, UDP and TCP must end up on the same free port. Binding UDP to 0
 * and then TCP to its number fails when that TCP port is taken, so take a TCP port from the
 * kernel first and try UDP on it, a few times; both sockets are kept (no window in which
 * another process can take them). Returns 0 with both descriptors, or a negative errno. */
#define PAIR_ATTEMPTS 32

static int
bind_free_pair(const struct sockaddr_storage *addr, int *udp_fd, int *tcp_fd)
{
    socklen_t alen =
        addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int err = -EADDRINUSE;
    for (int i = 0; i < PAIR_ATTEMPTS; i++) {
        int tcp = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int udp = socket(addr->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (tcp < 0 || udp < 0) {
            err = -errno;
            if (tcp >= 0)
                close(tcp);
            if (udp >= 0)
                close(udp);
            return err;
        }
        int one = 1;
        setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_storage a = *addr, b;
        socklen_t blen = sizeof(b);
        if (bind(tcp, (struct sockaddr *) &a, alen) == 0 &&
            getsockname(tcp, (struct sockaddr *) &b, &blen) == 0 &&
            bind(udp, (struct sockaddr *) &b, alen) == 0) {
            *udp_fd = udp;
            *tcp_fd = tcp;
            return 0;
        }
        err = -errno;
        close(tcp);
        close(udp);
    }
    return err;
}

lc_status_t
md_sip_transport_create(uv_loop_t *loop, const md_sip_transport_opts_t *opts, md_sip_recv_cb cb,
                        void *arg, md_sip_transport_t **out)
{
    *out = NULL;
    struct sockaddr_storage addr;
    if (!md_sip_addr_from_ip(opts->bind_addr, opts->port, &addr)) {
        LC_ERROR("sip", "SIP address %s is not an IP address", opts->bind_addr);
        return LC_ERR_CONFIG;
    }
    md_sip_transport_t *t = LC_NEW(md_sip_transport_t);
    t->loop = loop;
    t->cb = cb;
    t->cb_arg = arg;
    t->max_tcp_conns = opts->max_tcp_conns ? opts->max_tcp_conns : 1024;
    t->tcp_idle_ms = opts->tcp_idle_ms ? opts->tcp_idle_ms : 300000;
    lc_metrics_t *reg = opts->metrics;
    const char *h = "SIP messages by transport and direction";
    t->m_rx_udp = lc_metrics_counter(reg, "voxi_media_sip_messages_total", h,
                                     "transport=\"udp\",direction=\"in\"");
    t->m_rx_tcp = lc_metrics_counter(reg, "voxi_media_sip_messages_total", h,
                                     "transport=\"tcp\",direction=\"in\"");
    t->m_tx_udp = lc_metrics_counter(reg, "voxi_media_sip_messages_total", h,
                                     "transport=\"udp\",direction=\"out\"");
    t->m_tx_tcp = lc_metrics_counter(reg, "voxi_media_sip_messages_total", h,
                                     "transport=\"tcp\",direction=\"out\"");
    t->m_drop_bad = lc_metrics_counter(reg, "voxi_media_sip_dropped_total",
                                       "SIP input dropped, by reason", "reason=\"framing\"");
    t->m_send_err = lc_metrics_counter(reg, "voxi_media_sip_send_errors_total",
                                       "SIP messages that could not be sent", NULL);
    t->m_conns =
        lc_metrics_gauge(reg, "voxi_media_sip_tcp_connections", "open SIP TCP connections", NULL);
    t->m_refused = lc_metrics_counter(reg, "voxi_media_sip_tcp_refused_total",
                                      "TCP connections refused (limit reached)", NULL);

    /* unreferenced: the loop's life is lc_service's (see md_worker_run.h) */
    uv_udp_init(loop, &t->udp);
    uv_unref((uv_handle_t *) &t->udp);
    t->udp.data = t;
    t->open_handles++;
    uv_timer_init(loop, &t->sweep);
    uv_unref((uv_handle_t *) &t->sweep);
    t->sweep.data = t;
    t->open_handles++;
    int udp_fd = -1, tcp_fd = -1, rc;
    if (opts->port == 0 && opts->tcp) {
        rc = bind_free_pair(&addr, &udp_fd, &tcp_fd);
        if (rc == 0 && (rc = uv_udp_open(&t->udp, udp_fd)) < 0)
            close(udp_fd);
    } else {
        rc = uv_udp_bind(&t->udp, (const struct sockaddr *) &addr, 0);
    }
    lc_status_t st = LC_OK;
    if (rc < 0) {
        if (tcp_fd >= 0)
            close(tcp_fd);
        st = uv_fail("cannot bind SIP UDP", opts->bind_addr, opts->port, rc);
        goto fail;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_udp_getsockname(&t->udp, (struct sockaddr *) &bound, &blen);
    t->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &bound)->sin6_port
                                                : ((struct sockaddr_in *) &bound)->sin_port);
    /* a few MB of socket buffer absorbs bursts of call set-ups */
    int size = 4 << 20;
    uv_recv_buffer_size((uv_handle_t *) &t->udp, &size);
    uv_udp_recv_start(&t->udp, udp_alloc, udp_recv);

    if (opts->tcp) {
        t->tcp_enabled = true;
        uv_tcp_init(loop, &t->listener);
        uv_unref((uv_handle_t *) &t->listener);
        t->listener.data = t;
        t->open_handles++;
        md_sip_addr_from_ip(opts->bind_addr, t->port, &addr);
        if (tcp_fd >= 0) {
            rc = uv_tcp_open(&t->listener, tcp_fd);
            if (rc < 0)
                close(tcp_fd);
        } else {
            rc = uv_tcp_bind(&t->listener, (const struct sockaddr *) &addr, 0);
        }
        if (rc == 0)
            rc = uv_listen((uv_stream_t *) &t->listener, 128, on_connection);
        if (rc < 0) {
            st = uv_fail("cannot listen on SIP TCP", opts->bind_addr, t->port, rc);
            goto fail;
        }
        uv_timer_start(&t->sweep, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    }
    LC_INFO("sip", "SIP listening on %s:%d (udp%s)", opts->bind_addr, t->port,
            opts->tcp ? ", tcp" : "");
    *out = t;
    return LC_OK;

fail:
    /* handles must still be closed on the loop: hand back the object for close/destroy */
    *out = t;
    return st;
}

int
md_sip_transport_port(const md_sip_transport_t *t)
{
    return t->port;
}

lc_status_t
md_sip_transport_send(md_sip_transport_t *t, md_sip_peer_t *to, const char *buf, size_t len)
{
    if (t->closing)
        return LC_ERR_UNAVAILABLE;
    if (to->proto == MD_SIP_TCP) {
        if (!t->tcp_enabled)
            return LC_ERR_UNAVAILABLE;
        return tcp_send(t, to, buf, len);
    }
    return udp_send(t, to, buf, len);
}

void
md_sip_transport_close(md_sip_transport_t *t, void (*done)(void *arg), void *arg)
{
    if (t->closing)
        return;
    t->closing = true;
    t->done = done;
    t->done_arg = arg;
    /* hold one count so done runs only after every uv_close below was issued */
    t->open_handles++;
    uv_close((uv_handle_t *) &t->udp, on_plain_closed);
    uv_close((uv_handle_t *) &t->sweep, on_plain_closed);
    if (t->tcp_enabled)
        uv_close((uv_handle_t *) &t->listener, on_plain_closed);
    for (tcp_conn_t *c = t->conns; c; c = c->next)
        conn_close(c);
    handle_closed(t);
}

void
md_sip_transport_destroy(md_sip_transport_t *t)
{
    free(t);
}
