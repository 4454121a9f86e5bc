/*
 * md_sip_transport: SIP over UDP and TCP on one address and port (RFC 3261 section 18).
 *
 * UDP: one socket; a datagram is one message (truncated datagrams and CRLF keep-alives are
 * dropped). TCP: a listener on the same port plus outbound connections made on demand;
 * the byte stream is cut into messages by Content-Length (section 18.3), with bounded
 * buffers: a header block over 16 KiB or a body over MD_SIP_MAX_MESSAGE_BYTES closes the
 * connection. A double CRLF keep-alive ping gets a single CRLF pong (RFC 5626 section
 * 4.4.1). Connections idle for longer than tcp_idle_ms are closed; past max_tcp_conns new
 * connections are refused.
 *
 * Threads: the loop thread only; callbacks run on it.
 */
#ifndef MD_SIP_TRANSPORT_H
#define MD_SIP_TRANSPORT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_status.h"

typedef enum {
    MD_SIP_UDP = 0,
    MD_SIP_TCP,
} md_sip_proto_t;

/* Where a message came from or goes to. For TCP, conn_id names the connection (0 = none
 * yet: send opens or reuses one to addr). */
typedef struct {
    md_sip_proto_t proto;
    struct sockaddr_storage addr;
    uint64_t conn_id;
} md_sip_peer_t;

typedef struct md_sip_transport md_sip_transport_t;

/* One complete message; buf is borrowed for the duration of the call. */
typedef void (*md_sip_recv_cb)(void *arg, const md_sip_peer_t *from, const char *buf, size_t len);

typedef struct {
    const char *bind_addr; /* IPv4 or IPv6 literal */
    int port;              /* 0 = any free port (the same for UDP and TCP) */
    bool tcp;              /* also listen on TCP */
    size_t max_tcp_conns;  /* 0 = 1024 */
    int64_t tcp_idle_ms;   /* 0 = 300000 */
    lc_metrics_t *metrics; /* may be NULL */
} md_sip_transport_opts_t;

/* Binds and starts receiving. LC_ERR_IO (logged) when the address cannot be bound. */
lc_status_t md_sip_transport_create(uv_loop_t *loop, const md_sip_transport_opts_t *opts,
                                    md_sip_recv_cb cb, void *arg, md_sip_transport_t **out);

/* The port bound (useful with port 0). */
int md_sip_transport_port(const md_sip_transport_t *t);

/*
 * Sends one message (buf copied when it cannot go out at once). For TCP, when to->conn_id
 * is 0 or that connection is gone, an open connection to to->addr is reused or a new one
 * made (the data waits for the connect); to->conn_id is updated. LC_ERR_IO when the send
 * fails at once, LC_ERR_UNAVAILABLE while closing.
 */
lc_status_t md_sip_transport_send(md_sip_transport_t *t, md_sip_peer_t *to, const char *buf,
                                  size_t len);

/* Stops receiving and closes every handle; done(arg) runs on the loop when all are closed.
 * Then md_sip_transport_destroy frees it. */
void md_sip_transport_close(md_sip_transport_t *t, void (*done)(void *arg), void *arg);
void md_sip_transport_destroy(md_sip_transport_t *t);

/* "udp:1.2.3.4:5060" / "tcp:[::1]:5060". */
void md_sip_peer_format(const md_sip_peer_t *p, char *out, size_t out_size);
/* The peer's IP as text ("1.2.3.4") and port. */
void md_sip_peer_ip(const md_sip_peer_t *p, char *out, size_t out_size, int *port);
/* Fills addr from an IP literal and port; false when ip is not a literal. */
bool md_sip_addr_from_ip(const char *ip, int port, struct sockaddr_storage *addr);
/* True when a and b are the same IP and port. */
bool md_sip_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
