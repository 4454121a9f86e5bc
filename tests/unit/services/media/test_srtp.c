/* Unit tests: SDES a=crypto parsing and formatting (RFC 4568), SRTP/SRTCP round trips for both
 * suites, replay and tamper detection with their statuses and counters, argument checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../../../services/media/md_rtcp.h"
#include "../../../../services/media/md_rtp.h"
#include "../../../../services/media/md_srtp.h"

/* RFC 4568 section 9.1's example key and salt (without its MKI). */
#define EXAMPLE_KEY "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"

static lc_status_t
parse(const char *line, md_srtp_crypto_t *c)
{
    return md_srtp_crypto_parse(line, strlen(line), c);
}

static void
test_crypto_parse(void **state)
{
    (void) state;
    md_srtp_crypto_t c;
    assert_int_equal(parse("1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY, &c), LC_OK);
    assert_int_equal(c.tag, 1);
    assert_int_equal(c.suite, MD_SRTP_AES_CM_128_HMAC_SHA1_80);
    /* "PS1u" = 0x3d 0x2d 0x6e, ... "VBR" ends the 30 bytes */
    assert_int_equal(c.key_salt[0], 0x3d);
    assert_int_equal(c.key_salt[1], 0x2d);
    assert_int_equal(c.key_salt[2], 0x6e);
    assert_int_equal(c.key_salt[29], 0x51);

    assert_int_equal(parse("2 AES_CM_128_HMAC_SHA1_32 inline:" EXAMPLE_KEY "|2^31", &c), LC_OK);
    assert_int_equal(c.tag, 2);
    assert_int_equal(c.suite, MD_SRTP_AES_CM_128_HMAC_SHA1_32);
    assert_int_equal(parse("999999999  AES_CM_128_HMAC_SHA1_80\tinline:" EXAMPLE_KEY
                           "|1048576 WSH=64 KDR=0\r\n",
                           &c),
                     LC_OK);
    assert_int_equal(c.tag, 999999999);

    /* Well-formed but unusable: the answerer moves on (LC_ERR_NOT_FOUND). */
    const char *unusable[] = {
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "|2^20|1:32",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "|1:4",
        "1 AEAD_AES_256_GCM inline:" EXAMPLE_KEY,
        "1 F8_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY,
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY " UNENCRYPTED_SRTP",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY " KDR=24",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY ";inline:" EXAMPLE_KEY,
    };
    for (size_t i = 0; i < sizeof(unusable) / sizeof(unusable[0]); i++) {
        if (parse(unusable[i], &c) != LC_ERR_NOT_FOUND)
            fail_msg("expected not_found for \"%s\"", unusable[i]);
    }

    /* Malformed. */
    const char *bad[] = {
        "",
        "1",
        "1 AES_CM_128_HMAC_SHA1_80",
        "1 AES_CM_128_HMAC_SHA1_80 ",
        "x AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY,
        "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY,
        "1AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY,
        "1 AES_CM_128_HMAC_SHA1_80 uri:" EXAMPLE_KEY,
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "A",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB=",
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaV!R",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "|",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "|2^",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "|2^x",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "|1:4|2^20",
        "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "|a:b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &c) != LC_ERR_INVALID)
            fail_msg("expected invalid for \"%s\"", bad[i]);
    }
    assert_int_equal(md_srtp_crypto_parse(NULL, 4, &c), LC_ERR_INVALID);
    /* Length-bounded: the bytes after len are never read. */
    const char *line = "1 AES_CM_128_HMAC_SHA1_80 inline:" EXAMPLE_KEY "GARBAGE";
    assert_int_equal(md_srtp_crypto_parse(line, strlen(line) - 7, &c), LC_OK);
}

static void
test_crypto_generate_format_round_trip(void **state)
{
    (void) state;
    md_srtp_crypto_t a, b, back;
    md_srtp_crypto_generate(&a, 1, MD_SRTP_AES_CM_128_HMAC_SHA1_80);
    md_srtp_crypto_generate(&b, 2, MD_SRTP_AES_CM_128_HMAC_SHA1_32);
    assert_memory_not_equal(a.key_salt, b.key_salt, MD_SRTP_KEY_SALT_BYTES);
    char line[MD_SRTP_CRYPTO_VALUE_MAX];
    size_t n = md_srtp_crypto_format(&b, line, sizeof(line));
    assert_int_equal(n, strlen("2 AES_CM_128_HMAC_SHA1_32 inline:") + 40);
    assert_memory_equal(line, "2 AES_CM_128_HMAC_SHA1_32 inline:", 33);
    assert_int_equal(md_srtp_crypto_parse(line, n, &back), LC_OK);
    assert_int_equal(back.tag, 2);
    assert_int_equal(back.suite, MD_SRTP_AES_CM_128_HMAC_SHA1_32);
    assert_memory_equal(back.key_salt, b.key_salt, MD_SRTP_KEY_SALT_BYTES);
    assert_int_equal(md_srtp_crypto_format(&b, line, 40), 0);
    b.tag = 1000000000; /* ten digits */
    assert_int_equal(md_srtp_crypto_format(&b, line, sizeof(line)), 0);
    b.tag = 0;
    assert_true(md_srtp_crypto_format(&b, line, sizeof(line)) > 0);
    assert_string_equal(md_srtp_suite_name(MD_SRTP_AES_CM_128_HMAC_SHA1_80),
                        "AES_CM_128_HMAC_SHA1_80");
    assert_null(md_srtp_suite_name(MD_SRTP_SUITE_COUNT_));
}

typedef struct {
    md_srtp_t *out, *in;
} pair_t;

static void
make_pair(pair_t *p, md_srtp_suite_t suite)
{
    md_srtp_crypto_t c;
    md_srtp_crypto_generate(&c, 1, suite);
    assert_int_equal(md_srtp_create(&c, MD_SRTP_OUTBOUND, &p->out), LC_OK);
    assert_int_equal(md_srtp_create(&c, MD_SRTP_INBOUND, &p->in), LC_OK);
}

static void
free_pair(pair_t *p)
{
    md_srtp_destroy(p->out);
    md_srtp_destroy(p->in);
}

/* Builds a 160-byte PCMU packet in buf and returns its length. */
static size_t
rtp_packet(uint8_t *buf, size_t size, uint16_t seq, uint32_t ssrc)
{
    uint8_t payload[160];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t) (seq + i);
    return md_rtp_build(buf, size, false, 0, seq, 160u * seq, ssrc, payload, sizeof(payload));
}

static void
round_trip(md_srtp_suite_t suite, size_t tag_bytes)
{
    pair_t p;
    make_pair(&p, suite);
    _Alignas(4) uint8_t buf[MD_RTP_MAX_PACKET_BYTES + MD_SRTP_TRAILER_ROOM];
    uint8_t clear[MD_RTP_MAX_PACKET_BYTES];
    for (uint16_t seq = 65530; seq != 10; seq++) { /* across the sequence wrap (ROC) */
        size_t len = rtp_packet(buf, sizeof(buf), seq, 0xabcdef01);
        memcpy(clear, buf, len);
        size_t plain_len = len;
        assert_int_equal(md_srtp_protect_rtp(p.out, buf, &len, sizeof(buf)), LC_OK);
        assert_int_equal(len, plain_len + tag_bytes);
        assert_memory_equal(buf, clear, 12);                /* header in clear */
        assert_memory_not_equal(buf + 12, clear + 12, 160); /* payload encrypted */
        assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &len), LC_OK);
        assert_int_equal(len, plain_len);
        assert_memory_equal(buf, clear, len);
    }
    /* SRTCP: an RR; index (4) + 80-bit tag whatever the suite */
    md_rtcp_rx_stats_t st = {0};
    md_rtcp_rx_update(&st, 0x5555, 1, 0, 0, 8000);
    size_t len = md_rtcp_build_report(buf, sizeof(buf) - MD_SRTP_TRAILER_ROOM, 0xabcdef01, false, 0,
                                      0, 0, 0, &st, 0, "me");
    memcpy(clear, buf, len);
    size_t plain_len = len;
    assert_int_equal(md_srtp_protect_rtcp(p.out, buf, &len, sizeof(buf)), LC_OK);
    assert_int_equal(len, plain_len + 4 + 10);
    assert_int_equal(md_srtp_unprotect_rtcp(p.in, buf, &len), LC_OK);
    assert_int_equal(len, plain_len);
    assert_memory_equal(buf, clear, len);
    md_srtp_stats_t s;
    md_srtp_get_stats(p.in, &s);
    assert_int_equal(s.rtp_ok, 16);
    assert_int_equal(s.rtcp_ok, 1);
    assert_int_equal(s.replayed + s.auth_failed + s.failed, 0);
    free_pair(&p);
}

static void
test_round_trip_80(void **state)
{
    (void) state;
    round_trip(MD_SRTP_AES_CM_128_HMAC_SHA1_80, 10);
}

static void
test_round_trip_32(void **state)
{
    (void) state;
    round_trip(MD_SRTP_AES_CM_128_HMAC_SHA1_32, 4);
}

static void
replay_and_tamper(md_srtp_suite_t suite)
{
    pair_t p;
    make_pair(&p, suite);
    _Alignas(4) uint8_t buf[MD_RTP_MAX_PACKET_BYTES + MD_SRTP_TRAILER_ROOM];
    _Alignas(4) uint8_t copy[sizeof(buf)];
    size_t len = rtp_packet(buf, sizeof(buf), 100, 42);
    assert_int_equal(md_srtp_protect_rtp(p.out, buf, &len, sizeof(buf)), LC_OK);
    size_t wire_len = len;
    memcpy(copy, buf, wire_len);

    /* A flipped bit anywhere (header, payload, tag) fails authentication. */
    size_t positions[] = {1, 5, 12, 100, wire_len - 1};
    for (size_t i = 0; i < 5; i++) {
        memcpy(buf, copy, wire_len);
        buf[positions[i]] ^= 0x04;
        len = wire_len;
        assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &len), LC_ERR_UNAUTHORIZED);
    }
    /* The genuine packet still gets through, once. */
    memcpy(buf, copy, wire_len);
    len = wire_len;
    assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &len), LC_OK);
    memcpy(buf, copy, wire_len);
    len = wire_len;
    assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &len), LC_ERR_CONFLICT);

    /* Reordering inside the replay window is fine; far behind it is a replay. */
    _Alignas(4) uint8_t old[sizeof(buf)];
    size_t old_len = rtp_packet(old, sizeof(old), 101, 42);
    assert_int_equal(md_srtp_protect_rtp(p.out, old, &old_len, sizeof(old)), LC_OK);
    for (uint16_t seq = 102; seq < 400; seq++) {
        len = rtp_packet(buf, sizeof(buf), seq, 42);
        assert_int_equal(md_srtp_protect_rtp(p.out, buf, &len, sizeof(buf)), LC_OK);
        if (seq == 105) {
            assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &len), LC_OK);
            size_t l = old_len;
            _Alignas(4) uint8_t tmp[sizeof(buf)];
            memcpy(tmp, old, old_len);
            assert_int_equal(md_srtp_unprotect_rtp(p.in, tmp, &l), LC_OK); /* 101 late */
        } else if (seq == 399) {
            assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &len), LC_OK);
        }
    }
    /* 101 again, now 298 behind: replay */
    assert_int_equal(md_srtp_unprotect_rtp(p.in, old, &old_len), LC_ERR_CONFLICT);

    /* A packet protected with another key: authentication failure. */
    pair_t other;
    make_pair(&other, suite);
    len = rtp_packet(buf, sizeof(buf), 500, 42);
    assert_int_equal(md_srtp_protect_rtp(other.out, buf, &len, sizeof(buf)), LC_OK);
    assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &len), LC_ERR_UNAUTHORIZED);

    /* SRTCP: tamper and replay too. */
    md_rtcp_rx_stats_t st = {0};
    md_rtcp_rx_update(&st, 1, 1, 0, 0, 8000);
    len = md_rtcp_build_report(buf, 200, 42, false, 0, 0, 0, 0, &st, 0, "me");
    assert_int_equal(md_srtp_protect_rtcp(p.out, buf, &len, sizeof(buf)), LC_OK);
    wire_len = len;
    memcpy(copy, buf, wire_len);
    buf[9] ^= 1;
    assert_int_equal(md_srtp_unprotect_rtcp(p.in, buf, &len), LC_ERR_UNAUTHORIZED);
    memcpy(buf, copy, wire_len);
    len = wire_len;
    assert_int_equal(md_srtp_unprotect_rtcp(p.in, buf, &len), LC_OK);
    memcpy(buf, copy, wire_len);
    len = wire_len;
    assert_int_equal(md_srtp_unprotect_rtcp(p.in, buf, &len), LC_ERR_CONFLICT);

    md_srtp_stats_t s;
    md_srtp_get_stats(p.in, &s);
    assert_int_equal(s.auth_failed, 5 + 1 + 1);
    assert_int_equal(s.replayed, 1 + 1 + 1);
    assert_int_equal(s.rtp_ok, 1 + 2 + 1);
    assert_int_equal(s.rtcp_ok, 1);
    free_pair(&p);
    free_pair(&other);
}

static void
test_replay_and_tamper_80(void **state)
{
    (void) state;
    replay_and_tamper(MD_SRTP_AES_CM_128_HMAC_SHA1_80);
}

static void
test_replay_and_tamper_32(void **state)
{
    (void) state;
    replay_and_tamper(MD_SRTP_AES_CM_128_HMAC_SHA1_32);
}

static void
test_argument_checks(void **state)
{
    (void) state;
    pair_t p;
    make_pair(&p, MD_SRTP_AES_CM_128_HMAC_SHA1_80);
    _Alignas(4) uint8_t buf[400];
    size_t len = rtp_packet(buf, sizeof(buf), 1, 7);
    /* Not enough room for the trailer. */
    assert_int_equal(md_srtp_protect_rtp(p.out, buf, &len, len + 10), LC_ERR_TOO_LARGE);
    /* Wrong direction. */
    assert_int_equal(md_srtp_protect_rtp(p.in, buf, &len, sizeof(buf)), LC_ERR_INVALID);
    assert_int_equal(md_srtp_unprotect_rtp(p.out, buf, &len), LC_ERR_INVALID);
    /* Misaligned buffer. */
    size_t l = len;
    assert_int_equal(md_srtp_unprotect_rtp(p.in, buf + 1, &l), LC_ERR_INVALID);
    /* Too short to be SRTP. */
    l = 11;
    assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &l), LC_ERR_INVALID);
    l = 14; /* a header and less than a tag */
    assert_int_equal(md_srtp_unprotect_rtp(p.in, buf, &l), LC_ERR_INVALID);
    md_srtp_stats_t s;
    md_srtp_get_stats(p.in, &s);
    assert_true(s.failed >= 4);
    md_srtp_t *x = NULL;
    md_srtp_crypto_t c = {.tag = 1, .suite = MD_SRTP_SUITE_COUNT_};
    assert_int_equal(md_srtp_create(&c, MD_SRTP_INBOUND, &x), LC_ERR_INVALID);
    assert_null(x);
    md_srtp_destroy(NULL);
    free_pair(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto_parse),
        cmocka_unit_test(test_crypto_generate_format_round_trip),
        cmocka_unit_test(test_round_trip_80),
        cmocka_unit_test(test_round_trip_32),
        cmocka_unit_test(test_replay_and_tamper_80),
        cmocka_unit_test(test_replay_and_tamper_32),
        cmocka_unit_test(test_argument_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
