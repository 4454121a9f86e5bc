/* Unit tests: md_sip_acl (CIDR allowlist, digest authentication, flood throttle) and
 * md_sip_digest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/media/md_sip_acl.h"
#include "../../../../services/media/md_sip_digest.h"
#include "../../../../services/media/md_sip_transport.h"

static struct sockaddr_storage
addr(const char *ip)
{
    struct sockaddr_storage a;
    assert_true(md_sip_addr_from_ip(ip, 5060, &a));
    return a;
}

static void
test_cidrs(void **state)
{
    (void) state;
    md_sip_acl_t *acl = NULL;
    char err[128];
    md_sip_acl_opts_t o = {"127.0.0.0/8, 10.1.2.0/23,198.51.100.7,2001:db8::/32", NULL, "voxi", 0};
    assert_int_equal(md_sip_acl_create(&o, &acl, err, sizeof(err)), LC_OK);
    struct sockaddr_storage a;
    const char *yes[] = {"127.0.0.1",    "127.255.0.9", "10.1.2.1",       "10.1.3.255",
                         "198.51.100.7", "2001:db8::1", "::ffff:10.1.3.4"};
    const char *no[] = {"10.1.4.0", "198.51.100.8", "2001:db9::1", "::1", "8.8.8.8"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        a = addr(yes[i]);
        if (!md_sip_acl_allowed(acl, &a))
            fail_msg("%s should be allowed", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        a = addr(no[i]);
        if (md_sip_acl_allowed(acl, &a))
            fail_msg("%s should not be allowed", no[i]);
    }
    md_sip_acl_destroy(acl);

    const char *bad[] = {"10.0.0.0/33", "nonsense", "::/129", "1.2.3.4/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_sip_acl_opts_t b = {bad[i], NULL, "voxi", 0};
        assert_int_equal(md_sip_acl_create(&b, &acl, err, sizeof(err)), LC_ERR_CONFIG);
        assert_non_null(strstr(err, bad[i]));
    }
    md_sip_acl_opts_t u = {"", "nocolon", "voxi", 0};
    assert_int_equal(md_sip_acl_create(&u, &acl, err, sizeof(err)), LC_ERR_CONFIG);
    md_sip_acl_destroy(NULL);
}

/* RFC 2617 section 3.5's example, with qop=auth */
static void
test_digest_rfc2617_example(void **state)
{
    (void) state;
    char out[33];
    md_sip_digest_response("Mufasa", "testrealm@host.com", "Circle Of Life", "GET",
                           "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "auth",
                           "00000001", "0a4f113b", out);
    assert_string_equal(out, "6629fae49393a05397450978507c4ef1");
    char unq[32];
    md_sip_digest_unquote("\"a\\\"b\"", unq, sizeof(unq));
    assert_string_equal(unq, "a\"b");
    assert_true(md_sip_digest_equal("abc", "abc"));
    assert_false(md_sip_digest_equal("abc", "abd"));
    assert_false(md_sip_digest_equal("abc", "abcd"));
}

static md_sip_msg_t *
invite_with(const char *authorization)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "INVITE sip:demo@192.0.2.1 SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 203.0.113.5;branch=z9hG4bK1\r\n"
             "From: <sip:alice@203.0.113.5>;tag=1\r\nTo: <sip:demo@192.0.2.1>\r\n"
             "Call-ID: c1\r\nCSeq: 2 INVITE\r\nMax-Forwards: 70\r\n%s%s%s"
             "Content-Length: 0\r\n\r\n",
             authorization ? "Authorization: " : "", authorization ? authorization : "",
             authorization ? "\r\n" : "");
    md_sip_msg_t *m = NULL;
    md_sip_reject_t rej;
    assert_int_equal(md_sip_msg_parse(buf, strlen(buf), &m, &rej), LC_OK);
    return m;
}

/* The nonce out of a challenge. */
static void
nonce_of(const char *challenge, char *out, size_t size)
{
    const char *p = strstr(challenge, "nonce=\"");
    assert_non_null(p);
    p += 7;
    size_t n = strcspn(p, "\"");
    assert_true(n < size);
    memcpy(out, p, n);
    out[n] = '\0';
}

static md_sip_auth_t
answer(md_sip_acl_t *acl, const char *user, const char *password, const char *nonce, int64_t now,
       char *challenge, size_t size)
{
    char resp[33], hdr[512];
    md_sip_digest_response(user, "voxi", password, "INVITE", "sip:demo@192.0.2.1", nonce, "auth",
                           "00000001", "abcdef", resp);
    snprintf(hdr, sizeof(hdr),
             "Digest username=\"%s\", realm=\"voxi\", nonce=\"%s\", uri=\"sip:demo@192.0.2.1\", "
             "response=\"%s\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abcdef\"",
             user, nonce, resp);
    md_sip_msg_t *m = invite_with(hdr);
    char user_out[64];
    md_sip_auth_t r = md_sip_acl_check(acl, m, now, challenge, size, user_out, sizeof(user_out));
    if (r == MD_SIP_AUTH_OK)
        assert_string_equal(user_out, user);
    md_sip_msg_destroy(m);
    return r;
}

static void
test_digest_flow(void **state)
{
    (void) state;
    md_sip_acl_t *acl = NULL;
    char err[64], challenge[256], nonce[128], again[256];
    md_sip_acl_opts_t o = {"", "alice:s3cret,bob:pw", "voxi", 0};
    assert_int_equal(md_sip_acl_create(&o, &acl, err, sizeof(err)), LC_OK);
    int64_t now = 1000000;
    md_sip_msg_t *m = invite_with(NULL);
    assert_int_equal(md_sip_acl_check(acl, m, now, challenge, sizeof(challenge), NULL, 0),
                     MD_SIP_AUTH_CHALLENGE);
    md_sip_msg_destroy(m);
    assert_non_null(strstr(challenge, "Digest realm=\"voxi\""));
    assert_non_null(strstr(challenge, "qop=\"auth\""));
    assert_null(strstr(challenge, "stale"));
    nonce_of(challenge, nonce, sizeof(nonce));

    assert_int_equal(answer(acl, "alice", "s3cret", nonce, now + 10, again, sizeof(again)),
                     MD_SIP_AUTH_OK);
    /* wrong password and unknown user: the same answer */
    assert_int_equal(answer(acl, "alice", "nope", nonce, now + 10, again, sizeof(again)),
                     MD_SIP_AUTH_FORBIDDEN);
    assert_int_equal(answer(acl, "mallory", "s3cret", nonce, now + 10, again, sizeof(again)),
                     MD_SIP_AUTH_FORBIDDEN);
    /* a forged nonce is challenged afresh, an expired one with stale=true */
    char forged[128];
    snprintf(forged, sizeof(forged), "%s", nonce);
    forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == 'a' ? 'b' : 'a';
    assert_int_equal(answer(acl, "alice", "s3cret", forged, now + 10, again, sizeof(again)),
                     MD_SIP_AUTH_CHALLENGE);
    assert_null(strstr(again, "stale"));
    assert_int_equal(
        answer(acl, "alice", "s3cret", nonce, now + 6 * 60 * 1000, again, sizeof(again)),
        MD_SIP_AUTH_CHALLENGE);
    assert_non_null(strstr(again, "stale=true"));
    /* another scheme is challenged */
    m = invite_with("Basic YWxpY2U6czNjcmV0");
    assert_int_equal(md_sip_acl_check(acl, m, now, challenge, sizeof(challenge), NULL, 0),
                     MD_SIP_AUTH_CHALLENGE);
    md_sip_msg_destroy(m);
    md_sip_acl_destroy(acl);

    /* no users configured: nobody from outside gets in */
    md_sip_acl_opts_t none = {"", NULL, "voxi", 0};
    assert_int_equal(md_sip_acl_create(&none, &acl, err, sizeof(err)), LC_OK);
    m = invite_with(NULL);
    assert_int_equal(md_sip_acl_check(acl, m, now, challenge, sizeof(challenge), NULL, 0),
                     MD_SIP_AUTH_FORBIDDEN);
    md_sip_msg_destroy(m);
    md_sip_acl_destroy(acl);
}

static void
test_flood(void **state)
{
    (void) state;
    md_sip_acl_t *acl = NULL;
    char err[64];
    md_sip_acl_opts_t o = {"", NULL, "voxi", 10};
    assert_int_equal(md_sip_acl_create(&o, &acl, err, sizeof(err)), LC_OK);
    struct sockaddr_storage a = addr("203.0.113.9"), b = addr("203.0.113.10");
    int64_t now = 5000;
    int passed = 0;
    for (int i = 0; i < 100; i++)
        passed += !md_sip_acl_flooding(acl, &a, now);
    assert_int_equal(passed, 20); /* the burst: twice the rate */
    /* another source is not affected */
    assert_false(md_sip_acl_flooding(acl, &b, now));
    /* the bucket refills at the rate */
    now += 500;
    passed = 0;
    for (int i = 0; i < 100; i++)
        passed += !md_sip_acl_flooding(acl, &a, now);
    assert_int_equal(passed, 5);
    md_sip_acl_destroy(acl);
    /* rate 0: no limit */
    md_sip_acl_opts_t off = {"", NULL, "voxi", 0};
    assert_int_equal(md_sip_acl_create(&off, &acl, err, sizeof(err)), LC_OK);
    for (int i = 0; i < 1000; i++)
        assert_false(md_sip_acl_flooding(acl, &a, now));
    md_sip_acl_destroy(acl);
}

int
main(void)
{
    md_sip_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_digest_rfc2617_example),
        cmocka_unit_test(test_digest_flow),
        cmocka_unit_test(test_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
