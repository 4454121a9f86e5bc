/* Unit tests: md_sip_dialog (RFC 3261 section 12): UAS and UAC dialogs, in-dialog requests
 * with loose and strict route sets, CSeq ordering, next hop, matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/media/md_sip_dialog.h"

static md_sip_msg_t *
parse(const char *text)
{
    md_sip_msg_t *m = NULL;
    md_sip_reject_t rej;
    assert_int_equal(md_sip_msg_parse(text, strlen(text), &m, &rej), LC_OK);
    return m;
}

/* not inlined: GCC 12's -Wdangling-pointer misreads the out-parameter otherwise */
static __attribute__((noinline)) char *
render(osip_message_t *m)
{
    char *text = NULL;
    size_t len;
    assert_int_equal(md_sip_serialize(m, &text, &len), LC_OK);
    osip_message_free(m);
    return text;
}

static md_sip_peer_t
peer(const char *ip, int port)
{
    md_sip_peer_t p;
    memset(&p, 0, sizeof(p));
    assert_true(md_sip_addr_from_ip(ip, port, &p.addr));
    return p;
}

static const char invite[] = "INVITE sip:demo@192.0.2.1 SIP/2.0\r\n"
                             "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKp1\r\n"
                             "Via: SIP/2.0/UDP 198.51.100.7:5070;branch=z9hG4bKc1\r\n"
                             "Record-Route: <sip:p2.example.com;lr>\r\n"
                             "Record-Route: <sip:192.0.2.50;lr>\r\n"
                             "From: \"Alice\" <sip:alice@example.com>;tag=from1\r\n"
                             "To: <sip:demo@192.0.2.1>\r\n"
                             "Call-ID: dlg-1\r\nCSeq: 100 INVITE\r\nMax-Forwards: 69\r\n"
                             "Contact: <sip:alice@198.51.100.7:5070>\r\n"
                             "Content-Length: 0\r\n\r\n";

static void
test_uas_dialog_bye(void **state)
{
    (void) state;
    md_sip_msg_t *inv = parse(invite);
    md_sip_peer_t from = peer("192.0.2.50", 5060);
    md_sip_dialog_t *d = md_sip_dialog_create_uas(inv, "to1", &from);
    assert_string_equal(d->remote_target, "sip:alice@198.51.100.7:5070");
    assert_int_equal(d->nroutes, 2);
    uint32_t before = d->local_cseq;
    char *bye = render(md_sip_dialog_request(d, "BYE", "<sip:voxi@192.0.2.1:5060>", 0));
    /* section 12.2.1.1: target as Request-URI, the route set in order, tags swapped */
    assert_non_null(strstr(bye, "BYE sip:alice@198.51.100.7:5070 SIP/2.0\r\n"));
    const char *r1 = strstr(bye, "Route: <sip:p2.example.com;lr>");
    const char *r2 = strstr(bye, "Route: <sip:192.0.2.50;lr>");
    assert_true(r1 && r2 && r1 < r2);
    assert_non_null(strstr(bye, "From: <sip:demo@192.0.2.1>;tag=to1\r\n"));
    assert_non_null(strstr(bye, "To: \"Alice\" <sip:alice@example.com>;tag=from1\r\n"));
    assert_non_null(strstr(bye, "Call-ID: dlg-1\r\n"));
    char cseq[64];
    snprintf(cseq, sizeof(cseq), "CSeq: %u BYE\r\n", before + 1);
    assert_non_null(strstr(bye, cseq));
    free(bye);
    /* the first route's host is not an IP: the request goes back where the INVITE came */
    md_sip_peer_t hop;
    md_sip_dialog_next_hop(d, &hop);
    assert_true(md_sip_addr_equal(&hop.addr, &from.addr));
    /* CSeq order (section 12.2.2): lower is refused, equal or higher accepted */
    md_sip_msg_t *low = parse("INFO sip:voxi@192.0.2.1 SIP/2.0\r\n"
                              "Via: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKx\r\n"
                              "From: <sip:alice@example.com>;tag=from1\r\n"
                              "To: <sip:demo@192.0.2.1>;tag=to1\r\n"
                              "Call-ID: dlg-1\r\nCSeq: 99 INFO\r\nContent-Length: 0\r\n\r\n");
    assert_true(md_sip_dialog_matches(d, low));
    assert_false(md_sip_dialog_check_cseq(d, low));
    md_sip_msg_destroy(low);
    md_sip_msg_t *high = parse("BYE sip:voxi@192.0.2.1 SIP/2.0\r\n"
                               "Via: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKy\r\n"
                               "From: <sip:alice@example.com>;tag=from1\r\n"
                               "To: <sip:demo@192.0.2.1>;tag=to1\r\n"
                               "Call-ID: dlg-1\r\nCSeq: 101 BYE\r\nContent-Length: 0\r\n\r\n");
    assert_true(md_sip_dialog_check_cseq(d, high));
    md_sip_msg_destroy(high);
    /* other tags or Call-ID: not this dialog */
    md_sip_msg_t *other = parse("BYE sip:voxi@192.0.2.1 SIP/2.0\r\n"
                                "Via: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKz\r\n"
                                "From: <sip:alice@example.com>;tag=from2\r\n"
                                "To: <sip:demo@192.0.2.1>;tag=to1\r\n"
                                "Call-ID: dlg-1\r\nCSeq: 102 BYE\r\nContent-Length: 0\r\n\r\n");
    assert_false(md_sip_dialog_matches(d, other));
    md_sip_msg_destroy(other);
    md_sip_dialog_destroy(d);
    md_sip_msg_destroy(inv);
}

static void
test_uac_dialog_and_strict_router(void **state)
{
    (void) state;
    osip_message_t *q = md_sip_request_create("INVITE", "sip:bob@203.0.113.9");
    osip_message_set_via(q, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKu1");
    osip_message_set_from(q, "<sip:voxi@192.0.2.1>;tag=ours");
    osip_message_set_to(q, "<sip:bob@203.0.113.9>");
    osip_message_set_call_id(q, "dlg-2");
    osip_message_set_cseq(q, "7 INVITE");
    md_sip_msg_t *req = NULL;
    md_sip_msg_wrap(q, &req);
    md_sip_msg_t *ok = parse("SIP/2.0 200 OK\r\n"
                             "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKu1\r\n"
                             "Record-Route: <sip:203.0.113.1:5080>\r\n" /* strict: no lr */
                             "Record-Route: <sip:203.0.113.2;lr>\r\n"
                             "From: <sip:voxi@192.0.2.1>;tag=ours\r\n"
                             "To: <sip:bob@203.0.113.9>;tag=theirs\r\n"
                             "Call-ID: dlg-2\r\nCSeq: 7 INVITE\r\n"
                             "Contact: <sip:bob@203.0.113.9:5062>\r\n"
                             "Content-Length: 0\r\n\r\n");
    md_sip_peer_t to = peer("203.0.113.9", 5060);
    md_sip_dialog_t *d = md_sip_dialog_create_uac(req, ok, &to);
    assert_string_equal(d->remote_tag, "theirs");
    assert_int_equal(d->local_cseq, 7);
    /* section 12.1.2: the route set is the Record-Route reversed */
    assert_int_equal(d->nroutes, 2);
    assert_non_null(strstr(d->routes[0], "203.0.113.2"));
    char *ack = render(md_sip_dialog_request(d, "ACK", NULL, 7));
    assert_non_null(strstr(ack, "CSeq: 7 ACK\r\n"));
    free(ack);
    md_sip_peer_t hop;
    md_sip_dialog_next_hop(d, &hop);
    md_sip_peer_t want = peer("203.0.113.2", 5060);
    assert_true(md_sip_addr_equal(&hop.addr, &want.addr));
    md_sip_dialog_destroy(d);

    /* a strict router first: it becomes the Request-URI, the target goes last in Route */
    md_sip_msg_t *ok2 = parse("SIP/2.0 200 OK\r\n"
                              "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKu1\r\n"
                              "Record-Route: <sip:203.0.113.1:5080>\r\n"
                              "From: <sip:voxi@192.0.2.1>;tag=ours\r\n"
                              "To: <sip:bob@203.0.113.9>;tag=theirs\r\n"
                              "Call-ID: dlg-2\r\nCSeq: 7 INVITE\r\n"
                              "Contact: <sip:bob@203.0.113.9:5062>\r\n"
                              "Content-Length: 0\r\n\r\n");
    d = md_sip_dialog_create_uac(req, ok2, &to);
    char *bye = render(md_sip_dialog_request(d, "BYE", NULL, 0));
    assert_non_null(strstr(bye, "BYE sip:203.0.113.1:5080 SIP/2.0\r\n"));
    assert_non_null(strstr(bye, "Route: <sip:bob@203.0.113.9:5062>\r\n"));
    assert_non_null(strstr(bye, "CSeq: 8 BYE\r\n"));
    free(bye);
    md_sip_dialog_next_hop(d, &hop);
    want = peer("203.0.113.1", 5080);
    assert_true(md_sip_addr_equal(&hop.addr, &want.addr));
    /* target refresh */
    md_sip_msg_t *reinv = parse("INVITE sip:voxi@192.0.2.1 SIP/2.0\r\n"
                                "Via: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKr\r\n"
                                "From: <sip:bob@203.0.113.9>;tag=theirs\r\n"
                                "To: <sip:voxi@192.0.2.1>;tag=ours\r\n"
                                "Call-ID: dlg-2\r\nCSeq: 1 INVITE\r\n"
                                "Contact: <sip:bob@203.0.113.10:5099;transport=tcp>\r\n"
                                "Content-Length: 0\r\n\r\n");
    md_sip_dialog_refresh_target(d, reinv);
    assert_string_equal(d->remote_target, "sip:bob@203.0.113.10:5099;transport=tcp");
    md_sip_msg_destroy(reinv);
    md_sip_dialog_destroy(d);
    md_sip_msg_destroy(ok2);
    md_sip_msg_destroy(ok);
    md_sip_msg_destroy(req);
    md_sip_dialog_destroy(NULL);
}

int
main(void)
{
    md_sip_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uas_dialog_bye),
        cmocka_unit_test(test_uac_dialog_and_strict_router),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
