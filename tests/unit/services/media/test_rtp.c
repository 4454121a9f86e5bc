/* Unit tests: RTP header parsing (every malformed class of RFC 3550 A.1), building, muxed
 * RTCP detection, sequence arithmetic, and the real packets of sip-tester's captures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <string.h>

#include "../../../../services/media/md_rtp.h"
#include "pcap_rtp.h"

static size_t
header(uint8_t *b, uint8_t first, uint8_t second)
{
    b[0] = first;
    b[1] = second;
    b[2] = 0x12; /* seq 0x1234 */
    b[3] = 0x34;
    b[4] = 0xde; /* ts 0xdeadbeef */
    b[5] = 0xad;
    b[6] = 0xbe;
    b[7] = 0xef;
    b[8] = 0x01; /* ssrc 0x01020304 */
    b[9] = 0x02;
    b[10] = 0x03;
    b[11] = 0x04;
    return 12;
}

static void
test_minimal_packet(void **state)
{
    (void) state;
    uint8_t b[32];
    size_t n = header(b, 0x80, 0x80 | 8);
    memcpy(b + n, "\xd5\xd5\xd5\xd5", 4);
    md_rtp_packet_t p;
    assert_int_equal(md_rtp_parse(b, n + 4, &p), LC_OK);
    assert_true(p.marker);
    assert_int_equal(p.payload_type, 8);
    assert_int_equal(p.seq, 0x1234);
    assert_int_equal(p.timestamp, 0xdeadbeef);
    assert_int_equal(p.ssrc, 0x01020304);
    assert_int_equal(p.csrc_count, 0);
    assert_false(p.has_extension);
    assert_ptr_equal(p.payload, b + 12);
    assert_int_equal(p.payload_len, 4);

    /* A header with no payload is valid (RFC 3550 does not require one). */
    assert_int_equal(md_rtp_parse(b, 12, &p), LC_OK);
    assert_int_equal(p.payload_len, 0);
}

static void
test_csrc_extension_padding(void **state)
{
    (void) state;
    uint8_t b[64];
    /* V=2 P=1 X=1 CC=2 */
    size_t n = header(b, 0x80 | 0x20 | 0x10 | 2, 0);
    memcpy(b + n, "\xaa\xaa\xaa\xaa\xbb\xbb\xbb\xbb", 8);
    n += 8;
    memcpy(b + n, "\xbe\xde\x00\x01", 4); /* profile 0xbede, one word */
    n += 4;
    memcpy(b + n, "\x10\x20\x30\x40", 4);
    n += 4;
    memcpy(b + n, "PAYLOAD", 7);
    n += 7;
    memcpy(b + n, "\x00\x00\x03", 3); /* three octets of padding */
    n += 3;
    md_rtp_packet_t p;
    assert_int_equal(md_rtp_parse(b, n, &p), LC_OK);
    assert_int_equal(p.csrc_count, 2);
    assert_int_equal(p.csrc[0], 0xaaaaaaaa);
    assert_int_equal(p.csrc[1], 0xbbbbbbbb);
    assert_true(p.has_extension);
    assert_int_equal(p.extension_profile, 0xbede);
    assert_int_equal(p.extension_len, 4);
    assert_memory_equal(p.extension, "\x10\x20\x30\x40", 4);
    assert_int_equal(p.payload_len, 7);
    assert_memory_equal(p.payload, "PAYLOAD", 7);
}

static void
test_short_packets_rejected(void **state)
{
    (void) state;
    uint8_t b[12];
    header(b, 0x80, 0);
    md_rtp_packet_t p;
    for (size_t len = 0; len < 12; len++)
        assert_int_equal(md_rtp_parse(b, len, &p), LC_ERR_INVALID);
    assert_int_equal(md_rtp_parse(NULL, 12, &p), LC_ERR_INVALID);
    assert_int_equal(md_rtp_parse(b, 12, NULL), LC_ERR_INVALID);
}

static void
test_version_other_than_2_rejected(void **state)
{
    (void) state;
    uint8_t b[16] = {0};
    md_rtp_packet_t p;
    for (int v = 0; v < 4; v++) {
        header(b, (uint8_t) (v << 6), 0);
        assert_int_equal(md_rtp_parse(b, sizeof(b), &p), v == 2 ? LC_OK : LC_ERR_INVALID);
    }
}

static void
test_csrc_past_end_rejected(void **state)
{
    (void) state;
    uint8_t b[12 + 60] = {0};
    md_rtp_packet_t p;
    header(b, 0x80 | 15, 0);
    /* 15 CSRCs need 60 bytes after the fixed header. */
    assert_int_equal(md_rtp_parse(b, 12 + 59, &p), LC_ERR_INVALID);
    assert_int_equal(md_rtp_parse(b, 12 + 60, &p), LC_OK);
    assert_int_equal(p.csrc_count, 15);
    header(b, 0x80 | 1, 0);
    assert_int_equal(md_rtp_parse(b, 12 + 3, &p), LC_ERR_INVALID);
}

static void
test_extension_past_end_rejected(void **state)
{
    (void) state;
    uint8_t b[64] = {0};
    md_rtp_packet_t p;
    header(b, 0x90, 0);
    /* No room for the extension header itself. */
    assert_int_equal(md_rtp_parse(b, 12, &p), LC_ERR_INVALID);
    assert_int_equal(md_rtp_parse(b, 15, &p), LC_ERR_INVALID);
    /* Length of 3 words but only 2 present. */
    b[14] = 0x00;
    b[15] = 0x03;
    assert_int_equal(md_rtp_parse(b, 16 + 8, &p), LC_ERR_INVALID);
    assert_int_equal(md_rtp_parse(b, 16 + 12, &p), LC_OK);
    assert_int_equal(p.extension_len, 12);
    assert_int_equal(p.payload_len, 0);
    /* Maximum length 0xffff words: must not wrap anything. */
    b[14] = 0xff;
    b[15] = 0xff;
    assert_int_equal(md_rtp_parse(b, sizeof(b), &p), LC_ERR_INVALID);
    /* CSRC and extension together, extension cut short. */
    header(b, 0x90 | 1, 0);
    b[16 + 2] = 0;
    b[16 + 3] = 1;
    assert_int_equal(md_rtp_parse(b, 16 + 4 + 3, &p), LC_ERR_INVALID);
    assert_int_equal(md_rtp_parse(b, 16 + 4 + 4, &p), LC_OK);
}

static void
test_bad_padding_rejected(void **state)
{
    (void) state;
    uint8_t b[32] = {0};
    md_rtp_packet_t p;
    header(b, 0xa0, 0); /* P=1 */
    /* padding count 0 */
    b[19] = 0;
    assert_int_equal(md_rtp_parse(b, 20, &p), LC_ERR_INVALID);
    /* padding larger than the 8 bytes after the header */
    b[19] = 9;
    assert_int_equal(md_rtp_parse(b, 20, &p), LC_ERR_INVALID);
    b[19] = 200;
    assert_int_equal(md_rtp_parse(b, 20, &p), LC_ERR_INVALID);
    /* padding exactly the whole payload: valid, empty payload */
    b[19] = 8;
    assert_int_equal(md_rtp_parse(b, 20, &p), LC_OK);
    assert_int_equal(p.payload_len, 0);
    /* padding bit on a bare header: the count would be inside the header */
    b[11] = 1;
    assert_int_equal(md_rtp_parse(b, 12, &p), LC_ERR_INVALID);
    /* padding must not eat the extension */
    header(b, 0xb0, 0);
    b[14] = 0;
    b[15] = 1;
    b[19] = 0x01;
    b[20] = 0xaa;
    b[21] = 2;
    assert_int_equal(md_rtp_parse(b, 22, &p), LC_OK);
    assert_int_equal(p.payload_len, 0);
    b[21] = 3;
    assert_int_equal(md_rtp_parse(b, 22, &p), LC_ERR_INVALID);
}

static void
test_muxed_rtcp_detected(void **state)
{
    (void) state;
    uint8_t b[28] = {0};
    md_rtp_packet_t p;
    for (int pt = 192; pt <= 223; pt++) {
        header(b, 0x81, (uint8_t) pt);
        assert_int_equal(md_rtp_parse(b, sizeof(b), &p), LC_ERR_PROTOCOL);
    }
    /* The same payload type numbers without the marker bit are plain RTP. */
    header(b, 0x80, 72);
    assert_int_equal(md_rtp_parse(b, sizeof(b), &p), LC_OK);
    header(b, 0x80, 0x80 | 96); /* opus, marker */
    assert_int_equal(md_rtp_parse(b, sizeof(b), &p), LC_OK);
    assert_int_equal(p.payload_type, 96);
}

static void
test_build_round_trip(void **state)
{
    (void) state;
    uint8_t payload[160];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t) i;
    uint8_t b[MD_RTP_MAX_PACKET_BYTES];
    size_t n = md_rtp_build(b, sizeof(b), true, 0, 65535, 0xfffffff0, 0xcafebabe, payload,
                            sizeof(payload));
    assert_int_equal(n, 12 + 160);
    md_rtp_packet_t p;
    assert_int_equal(md_rtp_parse(b, n, &p), LC_OK);
    assert_true(p.marker);
    assert_int_equal(p.payload_type, 0);
    assert_int_equal(p.seq, 65535);
    assert_int_equal(p.timestamp, 0xfffffff0);
    assert_int_equal(p.ssrc, 0xcafebabe);
    assert_memory_equal(p.payload, payload, 160);

    /* Too small a buffer: nothing written beyond it, 0 returned. */
    assert_int_equal(md_rtp_build(b, 12 + 159, false, 0, 1, 2, 3, payload, 160), 0);
    assert_int_equal(md_rtp_build(b, 11, false, 0, 1, 2, 3, NULL, 0), 0);
    assert_int_equal(md_rtp_build(b, 12, false, 127, 1, 2, 3, NULL, 0), 12);
    assert_int_equal(md_rtp_parse(b, 12, &p), LC_OK);
    assert_int_equal(p.payload_type, 127);
}

static void
test_seq_diff_wraps(void **state)
{
    (void) state;
    assert_int_equal(md_rtp_seq_diff(1, 65535), 2);
    assert_int_equal(md_rtp_seq_diff(65535, 1), -2);
    assert_int_equal(md_rtp_seq_diff(100, 100), 0);
    assert_int_equal(md_rtp_seq_diff(32767, 0), 32767);
    assert_int_equal(md_rtp_seq_diff(0, 32768), -32768);
}

static void
test_real_captures_parse(void **state)
{
    (void) state;
    glob_t g;
    assert_int_equal(glob("/usr/share/sip-tester/*.pcap", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 13);
    size_t total = 0;
    for (size_t f = 0; f < g.gl_pathc; f++) {
        pcap_rtp_t *cap = pcap_rtp_load(g.gl_pathv[f]);
        assert_non_null(cap);
        assert_true(cap->count > 0);
        bool dtmf = strstr(g.gl_pathv[f], "dtmf_2833") != NULL;
        for (size_t i = 0; i < cap->count; i++) {
            md_rtp_packet_t p;
            assert_int_equal(md_rtp_parse(cap->data[i], cap->len[i], &p), LC_OK);
            if (dtmf) {
                assert_int_equal(p.payload_type, 101);
                assert_int_equal(p.payload_len, 4);
            } else {
                assert_int_equal(p.payload_type, 8);
                assert_int_equal(p.payload_len, 240);
            }
            /* Every truncation of a real packet is either rejected or a shorter payload. */
            for (size_t cut = 0; cut < cap->len[i] && cut < 20; cut++) {
                md_rtp_packet_t q;
                if (md_rtp_parse(cap->data[i], cut, &q) == LC_OK)
                    assert_true(q.payload + q.payload_len <= cap->data[i] + cut);
                else
                    assert_true(cut < 12);
            }
            total++;
        }
        free(cap);
    }
    globfree(&g);
    assert_true(total > 300);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_packet),
        cmocka_unit_test(test_csrc_extension_padding),
        cmocka_unit_test(test_short_packets_rejected),
        cmocka_unit_test(test_version_other_than_2_rejected),
        cmocka_unit_test(test_csrc_past_end_rejected),
        cmocka_unit_test(test_extension_past_end_rejected),
        cmocka_unit_test(test_bad_padding_rejected),
        cmocka_unit_test(test_muxed_rtcp_detected),
        cmocka_unit_test(test_build_round_trip),
        cmocka_unit_test(test_seq_diff_wraps),
        cmocka_unit_test(test_real_captures_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
