/* Unit tests: md_sip_txn over real UDP sockets on loopback (two transaction layers, or a
 * layer and a raw socket), with T1 = 20 ms so the RFC 3261 timers run in test time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../../../services/media/md_sip_transport.h"
#include "../../../../services/media/md_sip_txn.h"
#include "lc_time.h"

#define T1 20

typedef enum {
    SERVE_RING_THEN_OK = 0, /* 180, then 200 */
    SERVE_BUSY,             /* 486 */
    SERVE_RING_ONLY,        /* 180 and wait (CANCEL test) */
    SERVE_NOTHING,          /* count requests only */
} serve_mode_t;

typedef struct {
    uv_loop_t loop;
    uv_timer_t keepalive; /* the media handles are unreferenced: keep the loop alive */
    md_sip_transport_t *ta, *tb;
    md_sip_txn_layer_t *la, *lb;
    serve_mode_t mode;
    /* server side */
    int requests, acks, cancels;
    md_sip_txn_t *server_invite;
    int owner_events[2];
    /* client side */
    int codes[16];
    int ncodes;
    int strays;
    md_sip_txn_t *client_invite;
} fixture_t;

static void
on_owner(void *arg, md_sip_txn_t *txn, md_sip_txn_event_t ev)
{
    fixture_t *fx = arg;
    fx->owner_events[ev]++;
    if (ev == MD_TXN_EV_TERMINATED && txn == fx->server_invite)
        fx->server_invite = NULL;
}

static void
b_on_request(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *msg, const md_sip_peer_t *from)
{
    (void) from;
    fixture_t *fx = arg;
    if (md_sip_method_is(msg, "ACK")) {
        fx->acks++;
        md_sip_txn_ack_received(fx->server_invite);
        return;
    }
    fx->requests++;
    if (md_sip_method_is(msg, "CANCEL")) {
        fx->cancels++;
        md_sip_txn_t *inv = md_sip_txn_find_invite(fx->lb, msg, from);
        assert_ptr_equal(inv, fx->server_invite);
        md_sip_txn_respond_code(txn, 200, NULL, NULL);
        md_sip_txn_respond_code(inv, 487, NULL, "btag");
        return;
    }
    if (fx->mode == SERVE_NOTHING)
        return;
    fx->server_invite = txn;
    md_sip_txn_set_owner(txn, on_owner, fx);
    if (fx->mode == SERVE_BUSY) {
        md_sip_txn_respond_code(txn, 486, NULL, "btag");
        return;
    }
    md_sip_txn_respond_code(txn, 180, NULL, "btag");
    if (fx->mode == SERVE_RING_THEN_OK)
        md_sip_txn_respond_code(txn, 200, NULL, "btag");
}

static void
a_on_request(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *msg, const md_sip_peer_t *from)
{
    (void) arg;
    (void) txn;
    (void) msg;
    (void) from;
}

static void
a_on_stray(void *arg, const md_sip_msg_t *msg, const md_sip_peer_t *from)
{
    (void) msg;
    (void) from;
    ((fixture_t *) arg)->strays++;
}

static void
on_response(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *resp, int code)
{
    (void) txn;
    fixture_t *fx = arg;
    if (resp)
        assert_int_equal(resp->status_code, code);
    if (fx->ncodes < 16)
        fx->codes[fx->ncodes++] = code;
}

/* The transports deliver into the layers (arg: where the layer pointer will be). */
static void
recv_into(void *arg, const md_sip_peer_t *from, const char *buf, size_t len)
{
    md_sip_txn_layer_input(*(md_sip_txn_layer_t **) arg, from, buf, len);
}

static void
keepalive_cb(uv_timer_t *t)
{
    (void) t;
}

static int
setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    uv_loop_init(&fx->loop);
    uv_timer_init(&fx->loop, &fx->keepalive);
    uv_timer_start(&fx->keepalive, keepalive_cb, 3600000, 0);
    md_sip_transport_opts_t o = {.bind_addr = "127.0.0.1", .port = 0};
    assert_int_equal(md_sip_transport_create(&fx->loop, &o, recv_into, &fx->la, &fx->ta), LC_OK);
    assert_int_equal(md_sip_transport_create(&fx->loop, &o, recv_into, &fx->lb, &fx->tb), LC_OK);
    md_sip_tu_t tua = {a_on_request, a_on_stray, fx}, tub = {b_on_request, NULL, fx};
    md_sip_txn_opts_t xa = {fx->ta, "127.0.0.1", md_sip_transport_port(fx->ta), NULL, T1};
    md_sip_txn_opts_t xb = {fx->tb, "127.0.0.1", md_sip_transport_port(fx->tb), NULL, T1};
    assert_int_equal(md_sip_txn_layer_create(&fx->loop, &xa, &tua, &fx->la), LC_OK);
    assert_int_equal(md_sip_txn_layer_create(&fx->loop, &xb, &tub, &fx->lb), LC_OK);
    *state = fx;
    return 0;
}

static void
closed_part(void *arg)
{
    (*(int *) arg)--;
}

static int
teardown(void **state)
{
    fixture_t *fx = *state;
    int parts = 4;
    uv_close((uv_handle_t *) &fx->keepalive, NULL);
    md_sip_txn_layer_close(fx->la, closed_part, &parts);
    md_sip_txn_layer_close(fx->lb, closed_part, &parts);
    md_sip_transport_close(fx->ta, closed_part, &parts);
    md_sip_transport_close(fx->tb, closed_part, &parts);
    while (parts > 0)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    md_sip_txn_layer_destroy(fx->la);
    md_sip_txn_layer_destroy(fx->lb);
    md_sip_transport_destroy(fx->ta);
    md_sip_transport_destroy(fx->tb);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

/* Runs the loop until cond holds or ms pass; returns cond. */
#define RUN_UNTIL(fx, cond, ms)                                                                    \
    ({                                                                                             \
        int64_t until_ = lc_time_mono_ms() + (ms);                                                 \
        while (!(cond) && lc_time_mono_ms() < until_)                                              \
            uv_run(&(fx)->loop, UV_RUN_NOWAIT), usleep(1000);                                      \
        (cond);                                                                                    \
    })

static osip_message_t *
invite_to(const fixture_t *fx, md_sip_peer_t *to)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "sip:b@127.0.0.1:%d", md_sip_transport_port(fx->tb));
    osip_message_t *m = md_sip_request_create("INVITE", uri);
    osip_message_set_from(m, "<sip:a@127.0.0.1>;tag=atag");
    osip_message_set_to(m, "<sip:b@127.0.0.1>");
    osip_message_set_call_id(m, "call-1@test");
    osip_message_set_cseq(m, "1 INVITE");
    osip_message_set_header(m, "Max-Forwards", "70");
    memset(to, 0, sizeof(*to));
    md_sip_addr_from_ip("127.0.0.1", md_sip_transport_port(fx->tb), &to->addr);
    return m;
}

static void
send_ack_for_2xx(fixture_t *fx)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "sip:b@127.0.0.1:%d", md_sip_transport_port(fx->tb));
    osip_message_t *ack = md_sip_request_create("ACK", uri);
    osip_message_set_from(ack, "<sip:a@127.0.0.1>;tag=atag");
    osip_message_set_to(ack, "<sip:b@127.0.0.1>;tag=btag");
    osip_message_set_call_id(ack, "call-1@test");
    osip_message_set_cseq(ack, "1 ACK");
    md_sip_txn_add_via(fx->la, ack, MD_SIP_UDP);
    md_sip_peer_t to;
    memset(&to, 0, sizeof(to));
    md_sip_addr_from_ip("127.0.0.1", md_sip_transport_port(fx->tb), &to.addr);
    assert_int_equal(md_sip_txn_send_stateless(fx->la, ack, &to), LC_OK);
}

static void
test_invite_2xx_retransmitted_until_ack(void **state)
{
    fixture_t *fx = *state;
    fx->mode = SERVE_RING_THEN_OK;
    md_sip_peer_t to;
    osip_message_t *inv = invite_to(fx, &to);
    assert_int_equal(md_sip_txn_client_start(fx->la, inv, &to, on_response, fx, &fx->client_invite),
                     LC_OK);
    assert_true(RUN_UNTIL(fx, fx->ncodes >= 3, 2000));
    assert_int_equal(fx->codes[0], 100);
    assert_int_equal(fx->codes[1], 180);
    assert_int_equal(fx->codes[2], 200);
    assert_int_equal(fx->requests, 1);
    /* no ACK yet: the 200 comes again (T1, 2*T1, ...) and reaches the client TU */
    assert_true(RUN_UNTIL(fx, fx->ncodes >= 5, 2000));
    assert_int_equal(fx->codes[3], 200);
    send_ack_for_2xx(fx);
    assert_true(RUN_UNTIL(fx, fx->acks == 1, 2000));
    int n = fx->ncodes;
    RUN_UNTIL(fx, false, 10 * T1); /* retransmissions would arrive in this time */
    assert_int_equal(fx->ncodes, n);
    assert_int_equal(fx->owner_events[MD_TXN_EV_ACK_TIMEOUT], 0);
}

static void
test_no_ack_times_out(void **state)
{
    fixture_t *fx = *state;
    fx->mode = SERVE_RING_THEN_OK;
    md_sip_peer_t to;
    osip_message_t *inv = invite_to(fx, &to);
    assert_int_equal(md_sip_txn_client_start(fx->la, inv, &to, NULL, NULL, NULL), LC_OK);
    /* timer L: 64*T1 after the 200 */
    assert_true(RUN_UNTIL(fx, fx->owner_events[MD_TXN_EV_ACK_TIMEOUT] == 1, 64 * T1 + 2000));
    assert_true(RUN_UNTIL(fx, fx->owner_events[MD_TXN_EV_TERMINATED] == 1, 1000));
}

static void
test_non_2xx_is_acked_by_the_layer(void **state)
{
    fixture_t *fx = *state;
    fx->mode = SERVE_BUSY;
    md_sip_peer_t to;
    osip_message_t *inv = invite_to(fx, &to);
    assert_int_equal(md_sip_txn_client_start(fx->la, inv, &to, on_response, fx, NULL), LC_OK);
    assert_true(RUN_UNTIL(fx, fx->ncodes >= 2, 2000));
    assert_int_equal(fx->codes[1], 486);
    /* the ACK (same branch) confirms the server transaction: it ends after timer I, and
     * the TU never sees the ACK */
    assert_true(RUN_UNTIL(fx, fx->owner_events[MD_TXN_EV_TERMINATED] == 1, 10 * T1 + 2000));
    assert_int_equal(fx->acks, 0);
    assert_int_equal(fx->ncodes, 2);
}

static void
test_cancel(void **state)
{
    fixture_t *fx = *state;
    fx->mode = SERVE_RING_ONLY;
    md_sip_peer_t to;
    osip_message_t *inv = invite_to(fx, &to);
    assert_int_equal(md_sip_txn_client_start(fx->la, inv, &to, on_response, fx, &fx->client_invite),
                     LC_OK);
    assert_true(RUN_UNTIL(fx, fx->ncodes >= 2, 2000)); /* 100, 180 */
    md_sip_txn_cancel(fx->client_invite);
    assert_true(RUN_UNTIL(fx, fx->ncodes >= 3, 2000));
    assert_int_equal(fx->codes[2], 487);
    assert_int_equal(fx->cancels, 1);
}

static void
test_timer_b_and_retransmissions(void **state)
{
    fixture_t *fx = *state;
    /* a peer that never answers: a bound socket nobody reads */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_storage a;
    md_sip_addr_from_ip("127.0.0.1", 0, &a);
    assert_int_equal(bind(s, (struct sockaddr *) &a, sizeof(struct sockaddr_in)), 0);
    socklen_t alen = sizeof(a);
    getsockname(s, (struct sockaddr *) &a, &alen);
    md_sip_peer_t to = {.proto = MD_SIP_UDP, .addr = a};
    osip_message_t *inv = md_sip_request_create("OPTIONS", "sip:x@127.0.0.1");
    osip_message_set_from(inv, "<sip:a@127.0.0.1>;tag=atag");
    osip_message_set_to(inv, "<sip:x@127.0.0.1>");
    osip_message_set_call_id(inv, "call-2@test");
    osip_message_set_cseq(inv, "1 OPTIONS");
    int64_t t0 = lc_time_mono_ms();
    assert_int_equal(md_sip_txn_client_start(fx->la, inv, &to, on_response, fx, NULL), LC_OK);
    assert_true(RUN_UNTIL(fx, fx->ncodes == 1, 64 * T1 + 3000));
    assert_int_equal(fx->codes[0], 408); /* RFC 3261 section 8.1.3.1 */
    assert_true(lc_time_mono_ms() - t0 >= 64 * T1);
    /* timer E: T1, 2*T1, 4*T1, then T2 (8*T1) steps until timer F */
    char buf[4096];
    int received = 0;
    while (recv(s, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        received++;
    assert_in_range(received, 9, 12);
    close(s);
}

static void
test_retransmitted_request_is_absorbed(void **state)
{
    fixture_t *fx = *state;
    fx->mode = SERVE_RING_ONLY;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_storage b;
    md_sip_addr_from_ip("127.0.0.1", md_sip_transport_port(fx->tb), &b);
    const char *invite = "INVITE sip:b@127.0.0.1 SIP/2.0\r\n"
                         "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKretrans;rport\r\n"
                         "From: <sip:a@127.0.0.1>;tag=x\r\nTo: <sip:b@127.0.0.1>\r\n"
                         "Call-ID: call-3@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
                         "Content-Length: 0\r\n\r\n";
    for (int i = 0; i < 3; i++)
        sendto(s, invite, strlen(invite), 0, (struct sockaddr *) &b, sizeof(struct sockaddr_in));
    char buf[4096];
    int got180 = 0;
    int64_t until = lc_time_mono_ms() + 2000;
    while (got180 < 3 && lc_time_mono_ms() < until) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        ssize_t n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        if (n > 0) {
            buf[n] = '\0';
            got180 += strstr(buf, "SIP/2.0 180") != NULL;
            /* rport filled in with our port (RFC 3581) */
            assert_non_null(strstr(buf, ";rport="));
        } else {
            usleep(1000);
        }
    }
    assert_int_equal(got180, 3); /* the first reply, then the last response resent twice */
    assert_int_equal(fx->requests, 1);
    close(s);
}

int
main(void)
{
    md_sip_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invite_2xx_retransmitted_until_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_ack_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_2xx_is_acked_by_the_layer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_b_and_retransmissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retransmitted_request_is_absorbed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
