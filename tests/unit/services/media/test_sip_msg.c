/* Unit tests: md_sip_msg parsing and validation (RFC 4475 torture messages), responses,
 * requests, header helpers; md_map. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/media/md_map.h"
#include "../../../../services/media/md_sip_msg.h"

#define CORPUS "tests/fuzz/corpus/sip/"

static size_t
read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    return n;
}

/* What md_sip_msg_parse makes of each RFC 4475 message: -1 unparseable (dropped), 0 valid,
 * or the response code a request gets (a response with a code is dropped too). */
static const struct {
    const char *name;
    int expect;
} torture[] = {
    /* 3.1.1 valid */
    {"wsinv", 0},
    {"esc01", 0},
    {"escnull", 0},
    {"esc02", 0},
    {"lwsdisp", 0},
    {"longreq", 0},
    {"dblreq", 0},
    {"semiuri", 0},
    {"transports", 0},
    {"mpart01", 0},
    {"unreason", 0},
    {"noreason", 0},
    /* intmeth is valid but carries a NUL inside a quoted string: libosip2 cannot read it */
    {"intmeth", -1},
    /* 3.1.2 invalid: rejected or discarded */
    {"badinv01", -1},
    {"clerr", -1},
    {"ncl", 400},
    {"scalar02", 400},
    {"scalarlg", 400},
    {"quotbal", -1},
    {"ltgtruri", -1},
    {"lwsruri", -1},
    {"lwsstart", -1},
    {"trws", -1},
    {"escruri", 400},
    {"baddate", 400},
    {"badaspec", -1},
    {"baddn", -1},
    {"badvers", 505},
    {"mismatch01", 400},
    {"mismatch02", 400},
    {"bigcode", 400},
    {"mcl01", -1},
    {"multi01", -1},
    /* 3.2 / 3.3 / 3.4: valid syntax, application-layer answers */
    {"badbranch", 0},
    {"insuf", 400},
    {"unkscm", 0},
    {"novelsc", -1},
    {"unksm2", 0},
    {"bext01", 0},
    {"invut", 0},
    {"regaut01", 0},
    {"bcast", 0},
    {"zeromf", 0},
    {"cparam01", 0},
    {"cparam02", 0},
    {"regescrt", 0},
    {"sdp01", 0},
    {"inv2543", 0},
    {"regbadct", 0},
};

static void
test_torture_messages(void **state)
{
    (void) state;
    static char buf[70000];
    for (size_t i = 0; i < sizeof(torture) / sizeof(torture[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), CORPUS "rfc4475_%s.dat", torture[i].name);
        size_t n = read_file(path, buf, sizeof(buf));
        md_sip_msg_t *msg = NULL;
        md_sip_reject_t rej;
        lc_status_t st = md_sip_msg_parse(buf, n, &msg, &rej);
        int got = st == LC_OK ? 0 : st == LC_ERR_PROTOCOL ? rej.code : -1;
        if (got != torture[i].expect)
            fail_msg("%s: expected %d, got %d (%s)", torture[i].name, torture[i].expect, got,
                     rej.reason ? rej.reason : "");
        if (st == LC_ERR_PROTOCOL)
            assert_non_null(msg);
        md_sip_msg_destroy(msg);
    }
}

/* Requests libosip2 cannot read still get a response from the raw bytes (md_sip_fallback). */
static const struct {
    const char *name;
    int code; /* 0 = no response */
} fallback[] = {
    {"intmeth", 501}, {"badinv01", 400}, {"clerr", 400},   {"quotbal", 400},  {"ltgtruri", 400},
    {"lwsruri", 400}, {"lwsstart", 400}, {"trws", 400},    {"badaspec", 400}, {"baddn", 400},
    {"mcl01", 400},   {"multi01", 400},  {"novelsc", 416},
};

static void
test_fallback_responses(void **state)
{
    (void) state;
    static char buf[70000];
    char out[4096];
    for (size_t i = 0; i < sizeof(fallback) / sizeof(fallback[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), CORPUS "rfc4475_%s.dat", fallback[i].name);
        size_t n = read_file(path, buf, sizeof(buf));
        int code = 0;
        size_t len = md_sip_fallback_response(buf, n, out, sizeof(out), &code);
        if (code != fallback[i].code)
            fail_msg("%s: expected %d, got %d", fallback[i].name, fallback[i].code, code);
        /* a status line, the request's headers (malformed ones too: copied as received),
         * no body */
        char status[32];
        snprintf(status, sizeof(status), "SIP/2.0 %d ", fallback[i].code);
        assert_true(len > 40);
        assert_memory_equal(out, status, strlen(status));
        assert_memory_equal(out + len - 21, "Content-Length: 0\r\n\r\n", 21);
    }
    /* no answer: a response, an ACK, a request without Via / Call-ID */
    const char *none[] = {
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\r\n",
        "ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        "To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 ACK\r\n\r\n",
        "INVITE sip:a@b SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCSeq: 1 "
        "INVITE\r\n\r\n",
        "INVITE sip:a@b SIP/2.0", /* no CRLF at all */
    };
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        int code = -1;
        assert_int_equal(
            md_sip_fallback_response(none[i], strlen(none[i]), out, sizeof(out), &code), 0);
        assert_int_equal(code, 0);
    }
    /* bounded: headers that do not fit the output give no answer rather than a cut one */
    int code = 0;
    const char *big = "BAD sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n"
                      "From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 BAD\r\n\r\n";
    assert_int_equal(md_sip_fallback_response(big, strlen(big), out, 40, &code), 0);
    assert_true(md_sip_fallback_response(big, strlen(big), out, sizeof(out), &code) > 0);
    assert_int_equal(code, 501);
}

static const char invite[] = "INVITE sip:demo@127.0.0.1:5060 SIP/2.0\r\n"
                             "Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK776asdhds;rport\r\n"
                             "Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKproxy\r\n"
                             "Record-Route: <sip:proxy.example.com;lr>\r\n"
                             "Max-Forwards: 70\r\n"
                             "To: <sip:demo@127.0.0.1>\r\n"
                             "From: \"Alice\" <sip:alice@10.0.0.1>;tag=1928301774\r\n"
                             "Call-ID: a84b4c76e66710@pc33\r\n"
                             "CSeq: 314159 INVITE\r\n"
                             "Contact: <sip:alice@10.0.0.1:5070>\r\n"
                             "Supported: timer, replaces\r\n"
                             "k: 100rel\r\n"
                             "Content-Type: Application/SDP\r\n"
                             "Content-Length: 4\r\n"
                             "\r\n"
                             "v=0\n";

static void
test_fields(void **state)
{
    (void) state;
    md_sip_msg_t *m = NULL;
    md_sip_reject_t rej;
    assert_int_equal(md_sip_msg_parse(invite, strlen(invite), &m, &rej), LC_OK);
    assert_true(m->is_request);
    assert_string_equal(m->method, "INVITE");
    assert_int_equal(m->cseq, 314159);
    assert_string_equal(m->call_id, "a84b4c76e66710@pc33");
    assert_string_equal(m->from_tag, "1928301774");
    assert_null(m->to_tag);
    assert_string_equal(m->branch, "z9hG4bK776asdhds");
    assert_int_equal(m->max_forwards, 70);
    assert_string_equal(m->content_type, "application/sdp");
    assert_int_equal(m->body_len, 4);
    assert_memory_equal(m->body, "v=0\n", 4);
    assert_string_equal(md_sip_msg_ruri_user(m), "demo");
    assert_true(md_sip_msg_header_has_token(m, "supported", "replaces"));
    assert_true(md_sip_msg_header_has_token(m, "Supported", "100rel")); /* compact k: */
    assert_false(md_sip_msg_header_has_token(m, "supported", "repl"));
    assert_true(md_sip_method_is(m, "INVITE"));
    md_sip_msg_destroy(m);
}

static void
test_response_copies_and_tags(void **state)
{
    (void) state;
    md_sip_msg_t *m = NULL;
    md_sip_reject_t rej;
    assert_int_equal(md_sip_msg_parse(invite, strlen(invite), &m, &rej), LC_OK);
    osip_message_t *r = md_sip_response_create(m, 180, NULL, "ourtag");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(md_sip_serialize(r, &text, &len), LC_OK);
    assert_non_null(strstr(text, "SIP/2.0 180 Ringing\r\n"));
    assert_non_null(strstr(text, "branch=z9hG4bK776asdhds"));
    assert_non_null(strstr(text, "branch=z9hG4bKproxy"));
    assert_non_null(strstr(text, "tag=ourtag"));
    assert_non_null(strstr(text, "Record-Route: <sip:proxy.example.com;lr>"));
    assert_non_null(strstr(text, "CSeq: 314159 INVITE"));
    /* it parses back as a valid response */
    md_sip_msg_t *back = NULL;
    assert_int_equal(md_sip_msg_parse(text, len, &back, &rej), LC_OK);
    assert_false(back->is_request);
    assert_int_equal(back->status_code, 180);
    assert_string_equal(back->to_tag, "ourtag");
    md_sip_msg_destroy(back);
    free(text);
    osip_message_free(r);

    /* 100 Trying gets no tag; a 4xx to a request without Record-Route has none either */
    r = md_sip_response_create(m, 100, NULL, "ourtag");
    assert_int_equal(md_sip_serialize(r, &text, &len), LC_OK);
    assert_null(strstr(text, "tag=ourtag"));
    free(text);
    osip_message_free(r);
    r = md_sip_response_create(m, 486, NULL, "t2");
    assert_int_equal(md_sip_serialize(r, &text, &len), LC_OK);
    assert_null(strstr(text, "Record-Route"));
    free(text);
    osip_message_free(r);
    md_sip_msg_destroy(m);
}

static void
test_body_and_request(void **state)
{
    (void) state;
    osip_message_t *q = md_sip_request_create("BYE", "sip:alice@10.0.0.1:5070");
    assert_non_null(q);
    osip_message_set_via(q, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx");
    osip_message_set_from(q, "<sip:demo@127.0.0.1>;tag=a");
    osip_message_set_to(q, "<sip:alice@10.0.0.1>;tag=b");
    osip_message_set_call_id(q, "c1");
    osip_message_set_cseq(q, "2 BYE");
    md_sip_set_body(q, "text/plain", "hello", 5);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(md_sip_serialize(q, &text, &len), LC_OK);
    md_sip_msg_t *m = NULL;
    md_sip_reject_t rej;
    assert_int_equal(md_sip_msg_parse(text, len, &m, &rej), LC_OK);
    assert_string_equal(m->method, "BYE");
    assert_int_equal(m->body_len, 5);
    assert_string_equal(m->content_type, "text/plain");
    md_sip_msg_destroy(m);
    free(text);
    osip_message_free(q);
    assert_null(md_sip_request_create("BYE", "not a uri"));
}

static void
test_rejects(void **state)
{
    (void) state;
    const char *cases[][2] = {
        {"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: "
         "<sip:x@y>;tag=1\r\n"
         "To: <sip:a@b>\r\nCall-ID: 1\r\nCSeq: 2147483648 OPTIONS\r\n\r\n",
         "Bad CSeq"},
        {"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: "
         "<sip:x@y>;tag=1\r\n"
         "To: <sip:a@b>\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 256\r\n\r\n",
         "Bad Max-Forwards"},
        {"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: "
         "<sip:x@y>;tag=1\r\n"
         "To: <sip:a@b>\r\nCSeq: 1 OPTIONS\r\n\r\n",
         "Missing Call-ID"},
        {"OPTIONS sip:a@b SIP/2.0\r\nFrom: <sip:x@y>;tag=1\r\n"
         "To: <sip:a@b>\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\n\r\n",
         "Missing Via"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        md_sip_msg_t *m = NULL;
        md_sip_reject_t rej;
        assert_int_equal(md_sip_msg_parse(cases[i][0], strlen(cases[i][0]), &m, &rej),
                         LC_ERR_PROTOCOL);
        assert_int_equal(rej.code, 400);
        assert_string_equal(rej.reason, cases[i][1]);
        md_sip_msg_destroy(m);
    }
    md_sip_msg_t *m = NULL;
    md_sip_reject_t rej;
    assert_int_equal(md_sip_msg_parse("hello", 5, &m, &rej), LC_ERR_INVALID);
    assert_null(m);
    static char big[MD_SIP_MAX_MESSAGE_BYTES + 2];
    memset(big, 'a', sizeof(big));
    assert_int_equal(md_sip_msg_parse(big, sizeof(big), &m, &rej), LC_ERR_TOO_LARGE);
}

static void
test_random_token(void **state)
{
    (void) state;
    char a[40], b[40];
    md_sip_random_token("z9hG4bK", a, sizeof(a));
    md_sip_random_token("z9hG4bK", b, sizeof(b));
    assert_int_equal(strlen(a), 7 + 16);
    assert_string_not_equal(a, b);
}

static void
count_cb(const char *key, void *value, void *arg)
{
    (void) key;
    (void) value;
    (*(int *) arg)++;
}

static void
test_map(void **state)
{
    (void) state;
    md_map_t *m = md_map_create();
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_null(md_map_put(m, key, (void *) (intptr_t) (i + 1)));
    }
    assert_int_equal(md_map_size(m), 1000);
    for (int i = 0; i < 1000; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal((intptr_t) md_map_remove(m, key), i + 1);
    }
    assert_int_equal(md_map_size(m), 500);
    assert_null(md_map_get(m, "k0"));
    assert_int_equal((intptr_t) md_map_get(m, "k999"), 1000);
    assert_int_equal((intptr_t) md_map_put(m, "k999", (void *) 7), 1000);
    int count = 0;
    md_map_foreach(m, count_cb, &count);
    assert_int_equal(count, 500);
    md_map_destroy(m);
    md_map_destroy(NULL);
}

int
main(void)
{
    md_sip_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torture_messages), cmocka_unit_test(test_fallback_responses),
        cmocka_unit_test(test_fields),           cmocka_unit_test(test_response_copies_and_tags),
        cmocka_unit_test(test_body_and_request), cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_random_token),     cmocka_unit_test(test_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
