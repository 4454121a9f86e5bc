/*
 * md_sip_txn: the SIP transaction layer (RFC 3261 section 17, with the RFC 6026 "Accepted"
 * states).
 *
 * Input: md_sip_txn_layer_input() takes one message from the transport, parses and
 * validates it (md_sip_msg), answers malformed requests statelessly (400, 505), and
 * matches it to a transaction (section 17.1.3 for responses, 17.2.3 for requests,
 * including RFC 2543 requests without a magic-cookie branch). Retransmitted requests are
 * absorbed (the last response is sent again); new requests reach the transaction user
 * (TU) through tu.on_request with a new server transaction (ACK never creates one).
 *
 * Server transactions: INVITE: 1xx, then 2xx (Accepted: the 2xx is retransmitted T1, 2*T1,
 * ... up to T2 on UDP until the TU reports the ACK, for at most 64*T1, then the owner gets
 * MD_TXN_EV_ACK_TIMEOUT, section 13.3.1.4) or 3xx-6xx (Completed: retransmitted with timer
 * G until the ACK, timer H, timer I). Non-INVITE: final response then timer J.
 *
 * Client transactions: the layer adds the top Via (fresh branch, rport), sends, and
 * retransmits on UDP (timers A/E) until a response; timers B/F end it with a synthetic 408
 * (section 8.1.3.1), a transport failure with 503. For an INVITE, a 3xx-6xx is ACKed by the
 * layer (section 17.1.1.3); 2xx responses (also retransmitted ones, for 64*T1) go to the
 * TU, which ACKs them. md_sip_txn_cancel() sends a CANCEL (section 9.1) once a provisional
 * response has arrived.
 *
 * Ownership: the layer owns every transaction; a TU keeps a transaction pointer only until
 * its owner callback reports MD_TXN_EV_TERMINATED (or it detaches).
 * Threads: the loop thread only.
 */
#ifndef MD_SIP_TXN_H
#define MD_SIP_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_status.h"
#include "md_sip_msg.h"
#include "md_sip_transport.h"

/* RFC 3261 section 17.1.1.1 */
#define MD_SIP_T1_MS 500
#define MD_SIP_T2_MS 4000
#define MD_SIP_T4_MS 5000

typedef struct md_sip_txn md_sip_txn_t;
typedef struct md_sip_txn_layer md_sip_txn_layer_t;

typedef struct {
    /* A new request. txn is its server transaction (NULL for ACK); msg and from are
     * borrowed (txn keeps the request: md_sip_txn_request). The TU must answer every
     * non-ACK request eventually (md_sip_txn_respond). */
    void (*on_request)(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *msg,
                       const md_sip_peer_t *from);
    /* A response no client transaction matched (e.g. a 2xx retransmitted after the
     * INVITE transaction ended: the TU ACKs it again, section 13.2.2.4). Borrowed. */
    void (*on_stray_response)(void *arg, const md_sip_msg_t *msg, const md_sip_peer_t *from);
    void *arg;
} md_sip_tu_t;

typedef struct {
    md_sip_transport_t *transport; /* borrowed */
    const char *via_host;          /* sent-by host of our Via (public address) */
    int via_port;
    lc_metrics_t *metrics; /* may be NULL */
    int64_t t1_ms;         /* 0 = MD_SIP_T1_MS; then T2 = 8*T1, T4 = 10*T1 (tests, long
                              paths: section 17.1.1.1 lets T1 be raised) */
} md_sip_txn_opts_t;

lc_status_t md_sip_txn_layer_create(uv_loop_t *loop, const md_sip_txn_opts_t *opts,
                                    const md_sip_tu_t *tu, md_sip_txn_layer_t **out);
/* One message from the transport (buf borrowed). */
void md_sip_txn_layer_input(md_sip_txn_layer_t *layer, const md_sip_peer_t *from, const char *buf,
                            size_t len);
/* Sends a message outside any transaction (an ACK for a 2xx, section 13.2.2.4). Takes
 * ownership of msg. */
lc_status_t md_sip_txn_send_stateless(md_sip_txn_layer_t *layer, osip_message_t *msg,
                                      md_sip_peer_t *to);
/* Adds our top Via (with a new branch) to a request the TU sends itself (an ACK). */
void md_sip_txn_add_via(md_sip_txn_layer_t *layer, osip_message_t *req, md_sip_proto_t proto);
size_t md_sip_txn_count(const md_sip_txn_layer_t *layer);
/* Ends every transaction (owners get MD_TXN_EV_TERMINATED) and closes timers; done(arg)
 * runs when all handles are closed. Then destroy. */
void md_sip_txn_layer_close(md_sip_txn_layer_t *layer, void (*done)(void *), void *arg);
void md_sip_txn_layer_destroy(md_sip_txn_layer_t *layer);

/* ---- owner notifications ---- */

typedef enum {
    MD_TXN_EV_ACK_TIMEOUT = 0, /* server INVITE: no ACK for the 2xx within 64*T1 */
    MD_TXN_EV_TERMINATED,      /* the transaction is gone: forget the pointer */
} md_sip_txn_event_t;

typedef void (*md_sip_txn_owner_cb)(void *arg, md_sip_txn_t *txn, md_sip_txn_event_t ev);
/* Sets who hears about this transaction (NULL cb = nobody). */
void md_sip_txn_set_owner(md_sip_txn_t *txn, md_sip_txn_owner_cb cb, void *arg);

/* ---- server transactions ---- */

/* The request that created it (borrowed from the transaction). */
const md_sip_msg_t *md_sip_txn_request(const md_sip_txn_t *txn);
const md_sip_peer_t *md_sip_txn_peer(const md_sip_txn_t *txn);
/* The last response code sent (0 = none yet). */
int md_sip_txn_last_code(const md_sip_txn_t *txn);
/* Sends a response (takes ownership of resp) and advances the state machine. Responses
 * after a final one are ignored (LC_ERR_CONFLICT). */
lc_status_t md_sip_txn_respond(md_sip_txn_t *txn, osip_message_t *resp);
/* Convenience: md_sip_response_create + md_sip_txn_respond. */
lc_status_t md_sip_txn_respond_code(md_sip_txn_t *txn, int code, const char *reason,
                                    const char *to_tag);
/* The TU matched an ACK to the 2xx this INVITE transaction sent: stop retransmitting. */
void md_sip_txn_ack_received(md_sip_txn_t *txn);
/* The server INVITE transaction a CANCEL refers to (section 9.2), or NULL. */
md_sip_txn_t *md_sip_txn_find_invite(md_sip_txn_layer_t *layer, const md_sip_msg_t *cancel,
                                     const md_sip_peer_t *from);

/* ---- client transactions ---- */

/* Every response (provisional and final), or resp NULL with code 408 (timeout) / 503
 * (transport error). After a final non-2xx or an error, no further calls follow. */
typedef void (*md_sip_client_cb)(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *resp, int code);

/* Sends req (ownership taken; the layer adds the top Via) to `to` in a new client
 * transaction. *out (may be NULL) is valid until the owner hears TERMINATED or
 * md_sip_txn_detach. On failure cb is never called. */
lc_status_t md_sip_txn_client_start(md_sip_txn_layer_t *layer, osip_message_t *req,
                                    const md_sip_peer_t *to, md_sip_client_cb cb, void *arg,
                                    md_sip_txn_t **out);
/* The client request as sent (borrowed). */
const md_sip_msg_t *md_sip_txn_client_request(const md_sip_txn_t *txn);
/* CANCELs a client INVITE transaction (sent as soon as a provisional response is in). */
void md_sip_txn_cancel(md_sip_txn_t *txn);
/* No more callbacks of any kind for this transaction. */
void md_sip_txn_detach(md_sip_txn_t *txn);
/* Hands a client transaction's responses to another callback (an ended call's INVITE whose
 * 2xx may still cross our CANCEL). The owner callback is left as it is. */
void md_sip_txn_client_rebind(md_sip_txn_t *txn, md_sip_client_cb cb, void *arg);

#endif
