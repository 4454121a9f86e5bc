/*
 * lc_ssrf, the SSRF address classifier: every special-purpose class, IPv4 literals in every
 * inet_aton form, IPv6 forms embedding IPv4 (mapped, compatible, NAT64, 6to4), the allowlist.
 * (Moved from the webhooks service, which keeps its URL parsing tests.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "lc_ssrf.h"

/* Classifies a literal host; fails the test when it does not parse. */
static lc_ssrf_class_t
cls(const char *host)
{
    lc_ssrf_ip_t ip;
    if (!lc_ssrf_ip_parse_literal(host, &ip)) {
        fprintf(stderr, "not a literal: %s\n", host);
        fail();
    }
    return lc_ssrf_classify(&ip);
}

static void
test_ipv4_classes(void **state)
{
    (void) state;
    static const struct {
        const char *addr;
        lc_ssrf_class_t want;
    } cases[] = {
        {"0.0.0.0", LC_SSRF_UNSPECIFIED},
        {"0.1.2.3", LC_SSRF_UNSPECIFIED},
        {"127.0.0.1", LC_SSRF_LOOPBACK},
        {"127.255.255.254", LC_SSRF_LOOPBACK},
        {"10.0.0.1", LC_SSRF_PRIVATE},
        {"10.255.255.255", LC_SSRF_PRIVATE},
        {"172.16.0.1", LC_SSRF_PRIVATE},
        {"172.31.255.255", LC_SSRF_PRIVATE},
        {"172.32.0.1", LC_SSRF_PUBLIC},
        {"172.15.255.255", LC_SSRF_PUBLIC},
        {"192.168.1.1", LC_SSRF_PRIVATE},
        {"169.254.169.254", LC_SSRF_LINK_LOCAL}, /* cloud metadata */
        {"169.254.0.1", LC_SSRF_LINK_LOCAL},
        {"100.64.0.1", LC_SSRF_CGNAT},
        {"100.127.255.255", LC_SSRF_CGNAT},
        {"100.128.0.1", LC_SSRF_PUBLIC},
        {"100.63.255.255", LC_SSRF_PUBLIC},
        {"224.0.0.1", LC_SSRF_MULTICAST},
        {"239.255.255.250", LC_SSRF_MULTICAST},
        {"255.255.255.255", LC_SSRF_BROADCAST},
        {"240.0.0.1", LC_SSRF_RESERVED},
        {"192.0.0.8", LC_SSRF_RESERVED},
        {"198.18.0.1", LC_SSRF_RESERVED},
        {"198.19.255.255", LC_SSRF_RESERVED},
        {"192.88.99.1", LC_SSRF_RESERVED},
        {"192.0.2.1", LC_SSRF_DOCUMENTATION},
        {"198.51.100.7", LC_SSRF_DOCUMENTATION},
        {"203.0.113.200", LC_SSRF_DOCUMENTATION},
        {"8.8.8.8", LC_SSRF_PUBLIC},
        {"1.1.1.1", LC_SSRF_PUBLIC},
        {"93.184.216.34", LC_SSRF_PUBLIC},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lc_ssrf_class_t got = cls(cases[i].addr);
        if (got != cases[i].want) {
            fprintf(stderr, "%s: got %s, want %s\n", cases[i].addr, lc_ssrf_class_name(got),
                    lc_ssrf_class_name(cases[i].want));
            fail();
        }
    }
}

static void
test_ipv4_literal_forms(void **state)
{
    (void) state;
    /* 127.0.0.1 written every way inet_aton (and so the C library and curl) accepts */
    const char *loopback[] = {"2130706433", "017700000001", "0x7f000001",
                              "0x7f.1",     "127.1",        "0177.0.0.1",
                              "0x7F.0.0.1", "127.0.1",      "0x7f.0x0.0x0.0x1"};
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
        lc_ssrf_ip_t ip;
        assert_true(lc_ssrf_ip_parse_literal(loopback[i], &ip));
        assert_int_equal(ip.family, AF_INET);
        char text[LC_SSRF_IP_TEXT_MAX];
        lc_ssrf_ip_format(&ip, text, sizeof(text));
        assert_string_equal(text, "127.0.0.1");
        assert_int_equal(lc_ssrf_classify(&ip), LC_SSRF_LOOPBACK);
    }
    /* the metadata address in decimal and hex */
    assert_int_equal(cls("2852039166"), LC_SSRF_LINK_LOCAL);
    assert_int_equal(cls("0xa9fea9fe"), LC_SSRF_LINK_LOCAL);
    assert_int_equal(cls("0251.0376.0251.0376"), LC_SSRF_LINK_LOCAL);
    assert_int_equal(cls("0"), LC_SSRF_UNSPECIFIED);
    assert_int_equal(cls("10.1"), LC_SSRF_PRIVATE); /* 10.0.0.1 */
    /* names and junk are not literals */
    lc_ssrf_ip_t ip;
    assert_false(lc_ssrf_ip_parse_literal("example.com", &ip));
    assert_false(lc_ssrf_ip_parse_literal("bad.cafe", &ip));
    assert_false(lc_ssrf_ip_parse_literal("127.0.0.1 x", &ip));
    assert_false(lc_ssrf_ip_parse_literal("127.0.0.1.", &ip));
    assert_false(lc_ssrf_ip_parse_literal("1.2.3.4.5", &ip));
    assert_false(lc_ssrf_ip_parse_literal("", &ip));
    assert_false(lc_ssrf_ip_parse_literal("[]", &ip));
    assert_false(lc_ssrf_ip_parse_literal("[fe80::1%eth0]", &ip));
}

static void
test_ipv6_classes(void **state)
{
    (void) state;
    static const struct {
        const char *addr;
        lc_ssrf_class_t want;
    } cases[] = {
        {"[::]", LC_SSRF_UNSPECIFIED},
        {"[::1]", LC_SSRF_LOOPBACK},
        {"::1", LC_SSRF_LOOPBACK},
        {"[fc00::1]", LC_SSRF_ULA},
        {"[fd12:3456:789a::1]", LC_SSRF_ULA},
        {"[fe80::1]", LC_SSRF_LINK_LOCAL},
        {"[febf::1]", LC_SSRF_LINK_LOCAL},
        {"[fec0::1]", LC_SSRF_RESERVED},
        {"[ff02::1]", LC_SSRF_MULTICAST},
        {"[2001:db8::1]", LC_SSRF_DOCUMENTATION},
        {"[3fff::1]", LC_SSRF_DOCUMENTATION},
        {"[2001::1]", LC_SSRF_RESERVED},      /* Teredo */
        {"[2001:2::1]", LC_SSRF_RESERVED},    /* benchmarking */
        {"[100::1]", LC_SSRF_RESERVED},       /* discard-only */
        {"[64:ff9b:1::1]", LC_SSRF_RESERVED}, /* local-use NAT64 */
        {"[4000::1]", LC_SSRF_RESERVED},      /* outside 2000::/3 */
        {"[2606:4700:4700::1111]", LC_SSRF_PUBLIC},
        {"[2a00:1450:4001:80b::200e]", LC_SSRF_PUBLIC},
        /* IPv4 embedded: the class of the IPv4 address */
        {"[::ffff:127.0.0.1]", LC_SSRF_LOOPBACK},
        {"[::ffff:169.254.169.254]", LC_SSRF_LINK_LOCAL},
        {"[::ffff:a9fe:a9fe]", LC_SSRF_LINK_LOCAL},
        {"[::ffff:10.0.0.1]", LC_SSRF_PRIVATE},
        {"[::ffff:100.64.0.1]", LC_SSRF_CGNAT},
        {"[::ffff:8.8.8.8]", LC_SSRF_PUBLIC},
        {"[::127.0.0.1]", LC_SSRF_LOOPBACK},                /* IPv4-compatible */
        {"[::8.8.8.8]", LC_SSRF_RESERVED},                  /* deprecated form: never routed */
        {"[64:ff9b::169.254.169.254]", LC_SSRF_LINK_LOCAL}, /* NAT64 */
        {"[64:ff9b::8.8.8.8]", LC_SSRF_PUBLIC},
        {"[2002:7f00:1::1]", LC_SSRF_LOOPBACK}, /* 6to4 of 127.0.0.1 */
        {"[2002:c0a8:101::1]", LC_SSRF_PRIVATE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lc_ssrf_class_t got = cls(cases[i].addr);
        if (got != cases[i].want) {
            fprintf(stderr, "%s: got %s, want %s\n", cases[i].addr, lc_ssrf_class_name(got),
                    lc_ssrf_class_name(cases[i].want));
            fail();
        }
    }
}

static void
test_sockaddr(void **state)
{
    (void) state;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "169.254.169.254", &sin.sin_addr);
    lc_ssrf_ip_t ip;
    assert_true(lc_ssrf_ip_from_sockaddr((struct sockaddr *) &sin, &ip));
    assert_int_equal(lc_ssrf_classify(&ip), LC_SSRF_LINK_LOCAL);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.168.0.1", &sin6.sin6_addr);
    assert_true(lc_ssrf_ip_from_sockaddr((struct sockaddr *) &sin6, &ip));
    assert_int_equal(lc_ssrf_classify(&ip), LC_SSRF_PRIVATE);
    struct sockaddr other = {.sa_family = AF_UNIX};
    assert_false(lc_ssrf_ip_from_sockaddr(&other, &ip));
}

static void
test_allowlist(void **state)
{
    (void) state;
    lc_ssrf_allowlist_t *al = NULL;
    char err[160];
    assert_int_equal(
        lc_ssrf_allowlist_parse(" 127.0.0.1/32 , 10.1.0.0/16,::1, fd00::/8", &al, err, sizeof(err)),
        LC_OK);
    assert_int_equal(lc_ssrf_allowlist_count(al), 4);
    lc_ssrf_ip_t ip;
    assert_true(lc_ssrf_ip_parse_literal("127.0.0.1", &ip));
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_PUBLIC);
    assert_int_equal(lc_ssrf_check(NULL, &ip), LC_SSRF_LOOPBACK);
    assert_true(lc_ssrf_ip_parse_literal("127.0.0.2", &ip));
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_LOOPBACK);
    assert_true(lc_ssrf_ip_parse_literal("0x7f.1", &ip)); /* the same host, another spelling */
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_PUBLIC);
    assert_true(lc_ssrf_ip_parse_literal("[::ffff:127.0.0.1]", &ip)); /* mapped: the same host */
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_PUBLIC);
    assert_true(lc_ssrf_ip_parse_literal("[::127.0.0.1]", &ip)); /* compatible: not the same */
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_LOOPBACK);
    assert_true(lc_ssrf_ip_parse_literal("10.1.200.3", &ip));
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_PUBLIC);
    assert_true(lc_ssrf_ip_parse_literal("10.2.0.1", &ip));
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_PRIVATE);
    assert_true(lc_ssrf_ip_parse_literal("::1", &ip));
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_PUBLIC);
    assert_true(lc_ssrf_ip_parse_literal("[fd00::5]", &ip));
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_PUBLIC);
    assert_true(lc_ssrf_ip_parse_literal("169.254.169.254", &ip));
    assert_int_equal(lc_ssrf_check(al, &ip), LC_SSRF_LINK_LOCAL);
    lc_ssrf_allowlist_destroy(al);

    /* empty is fine; junk is reported */
    assert_int_equal(lc_ssrf_allowlist_parse("", &al, err, sizeof(err)), LC_OK);
    assert_int_equal(lc_ssrf_allowlist_count(al), 0);
    lc_ssrf_allowlist_destroy(al);
    assert_int_equal(lc_ssrf_allowlist_parse(NULL, &al, err, sizeof(err)), LC_OK);
    lc_ssrf_allowlist_destroy(al);
    const char *bad[] = {"127.0.0.1/33", "localhost", "10.0.0.0/", "::1/129",
                         "1.2.3.4/x",    "0x7f.1/32", "1.2.3.4/-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        al = (lc_ssrf_allowlist_t *) 1;
        assert_int_equal(lc_ssrf_allowlist_parse(bad[i], &al, err, sizeof(err)), LC_ERR_INVALID);
        assert_null(al);
        assert_true(strlen(err) > 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_classes), cmocka_unit_test(test_ipv4_literal_forms),
        cmocka_unit_test(test_ipv6_classes), cmocka_unit_test(test_sockaddr),
        cmocka_unit_test(test_allowlist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
