/* Unit tests: RTCP compound parsing (SR, RR, SDES, BYE, malformed lengths, padding, bounded
 * walk), report building, receive statistics (RFC 3550 A.1/A.3/A.8) and RTT from LSR/DLSR. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../services/media/md_rtcp.h"
#include "../../../../services/media/md_rtp.h"

static void
w32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

/* An SR with two report blocks, then an SDES, then a BYE. */
static size_t
sample_compound(uint8_t *b)
{
    memset(b, 0, 200);
    size_t n = 0;
    b[n] = 0x82; /* V=2, RC=2 */
    b[n + 1] = 200;
    b[n + 3] = (28 + 48) / 4 - 1;
    w32(b + n + 4, 0xaaaa0001);
    w32(b + n + 8, 0xe1234567);  /* NTP seconds */
    w32(b + n + 12, 0x80000000); /* .5 */
    w32(b + n + 16, 160000);
    w32(b + n + 20, 1000);
    w32(b + n + 24, 160000);
    uint8_t *rb = b + n + 28;
    w32(rb, 0xbbbb0002);
    rb[4] = 64;   /* 25% */
    rb[5] = 0xff; /* cumulative lost -2 */
    rb[6] = 0xff;
    rb[7] = 0xfe;
    w32(rb + 8, 0x0001ffff);
    w32(rb + 12, 37);
    w32(rb + 16, 0x45670000);
    w32(rb + 20, 0x00018000);
    rb += 24;
    w32(rb, 0xcccc0003);
    rb[7] = 5;
    n += 28 + 48;
    /* SDES with one CNAME chunk */
    b[n] = 0x81;
    b[n + 1] = 202;
    b[n + 3] = 3; /* 16 bytes */
    w32(b + n + 4, 0xaaaa0001);
    b[n + 8] = 1;
    b[n + 9] = 4;
    memcpy(b + n + 10, "peer", 4);
    n += 16;
    /* BYE */
    b[n] = 0x81;
    b[n + 1] = 203;
    b[n + 3] = 1;
    w32(b + n + 4, 0xaaaa0001);
    n += 8;
    return n;
}

static void
test_parse_compound(void **state)
{
    (void) state;
    uint8_t b[200];
    size_t n = sample_compound(b);
    md_rtcp_info_t info;
    assert_int_equal(md_rtcp_parse(b, n, &info), LC_OK);
    assert_true(info.has_sr);
    assert_true(info.has_bye);
    assert_int_equal(info.sender_ssrc, 0xaaaa0001);
    assert_true(info.ntp_time == 0xe123456780000000ull);
    assert_int_equal(info.rtp_time, 160000);
    assert_int_equal(info.packets_sent, 1000);
    assert_int_equal(info.octets_sent, 160000);
    assert_int_equal(info.nblocks, 2);
    assert_int_equal(info.blocks[0].ssrc, 0xbbbb0002);
    assert_int_equal(info.blocks[0].fraction_lost, 64);
    assert_int_equal(info.blocks[0].cumulative_lost, -2);
    assert_int_equal(info.blocks[0].highest_seq, 0x0001ffff);
    assert_int_equal(info.blocks[0].jitter, 37);
    assert_int_equal(info.blocks[0].lsr, 0x45670000);
    assert_int_equal(info.blocks[0].dlsr, 0x00018000);
    assert_int_equal(info.blocks[1].cumulative_lost, 5);
}

static void
test_malformed_rejected(void **state)
{
    (void) state;
    uint8_t b[200], c[200];
    size_t n = sample_compound(b);
    md_rtcp_info_t info;
    /* every truncation, except at the packet boundaries (SR alone, SR + SDES are valid) */
    for (size_t len = 0; len < n; len++)
        assert_int_equal(md_rtcp_parse(b, len, &info),
                         len == 76 || len == 92 ? LC_OK : LC_ERR_INVALID);
    /* version 1 in the second packet */
    memcpy(c, b, n);
    c[76] = 0x41;
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_ERR_INVALID);
    /* a length running past the datagram */
    memcpy(c, b, n);
    c[76 + 3] = 200;
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_ERR_INVALID);
    /* report count claiming more blocks than the packet holds */
    memcpy(c, b, n);
    c[0] = 0x83;
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_ERR_INVALID);
    c[0] = 0x9f; /* 31 blocks */
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_ERR_INVALID);
    /* padding in a packet that is not the last */
    memcpy(c, b, n);
    c[0] |= 0x20;
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_ERR_INVALID);
    /* padding in the last packet: count 0, count larger than the body, and a valid one */
    memcpy(c, b, n);
    c[92] |= 0x20;
    c[n - 1] = 0;
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_ERR_INVALID);
    c[n - 1] = 5;
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_ERR_INVALID);
    c[n - 1] = 4; /* the BYE's SSRC becomes padding: its count of 1 no longer fits */
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_ERR_INVALID);
    c[92] = 0xa0; /* BYE with no SSRC, 4 bytes of padding */
    assert_int_equal(md_rtcp_parse(c, n, &info), LC_OK);
    /* not RTCP at all: an RTP packet */
    uint8_t rtp[172];
    size_t rl = md_rtp_build(rtp, sizeof(rtp), false, 0, 1, 2, 3, b, 160);
    assert_int_equal(md_rtcp_parse(rtp, rl, &info), LC_ERR_INVALID);
    /* not a multiple of four */
    assert_int_equal(md_rtcp_parse(b, n - 2, &info), LC_ERR_INVALID);
    assert_int_equal(md_rtcp_parse(NULL, 8, &info), LC_ERR_INVALID);
}

static void
test_compound_walk_is_bounded(void **state)
{
    (void) state;
    /* 64 empty RR packets (header + SSRC): more than MD_RTCP_MAX_COMPOUND. */
    uint8_t b[64 * 8];
    for (int i = 0; i < 64; i++) {
        b[i * 8] = 0x80;
        b[i * 8 + 1] = 201;
        b[i * 8 + 2] = 0;
        b[i * 8 + 3] = 1;
        w32(b + i * 8 + 4, (uint32_t) i);
    }
    md_rtcp_info_t info;
    assert_int_equal(md_rtcp_parse(b, MD_RTCP_MAX_COMPOUND * 8, &info), LC_OK);
    assert_int_equal(info.sender_ssrc, 0);
    assert_int_equal(md_rtcp_parse(b, sizeof(b), &info), LC_ERR_INVALID);
    /* unknown packet types (APP 204, RTPFB 205, XR 207) are skipped */
    b[1] = 204;
    b[9] = 207;
    assert_int_equal(md_rtcp_parse(b, 3 * 8, &info), LC_OK);
    assert_int_equal(info.sender_ssrc, 2);
    assert_false(info.has_sr);
}

static void
test_rtt_rfc3550_example(void **state)
{
    (void) state;
    /* RFC 3550 section 6.4.1, figure 2: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000
     * (46853.125 s), DLSR = 0x0005:4000 (5.250 s): RTT = 6.125 s. */
    md_rtcp_report_block_t rb = {.lsr = 0xb7052000, .dlsr = 0x00054000};
    uint64_t arrival = (uint64_t) 0xb7108000 << 16;
    assert_true(fabs(md_rtcp_rtt_ms(&rb, arrival) - 6125.0) < 0.001);
    /* 20 ms round trip */
    rb.lsr = 0x00010000;
    rb.dlsr = 0x00008000;                                    /* 0.5 s held */
    arrival = (uint64_t) (0x00010000 + 0x8000 + 1311) << 16; /* + 20.004 ms */
    assert_true(fabs(md_rtcp_rtt_ms(&rb, arrival) - 20.004) < 0.01);
    /* No LSR: no RTT; an impossible one (arrival before LSR + DLSR): 0 */
    rb.lsr = 0;
    assert_true(md_rtcp_rtt_ms(&rb, arrival) == 0);
    rb.lsr = 0x00020000;
    assert_true(md_rtcp_rtt_ms(&rb, arrival) == 0);
    assert_true(md_rtcp_rtt_ms(NULL, arrival) == 0);
}

static void
test_rx_stats_loss_and_jitter(void **state)
{
    (void) state;
    md_rtcp_rx_stats_t st = {0};
    /* 100 packets from 65500 across the wrap, 3 lost, timestamps 160 apart, arrivals exact */
    int received = 0;
    for (int i = 0; i < 100; i++) {
        if (i == 10 || i == 50 || i == 51)
            continue;
        md_rtcp_rx_update(&st, 0x1234, (uint16_t) (65500 + i), 1000 + 160u * (uint32_t) i,
                          100000 + 20 * i, 8000);
        received++;
    }
    assert_int_equal(st.received, received);
    assert_int_equal(md_rtcp_rx_cumulative_lost(&st), 3);
    assert_int_equal(md_rtcp_rx_extended_max(&st), 65536 + (65500 + 99 - 65536));
    assert_true(st.jitter < 0.001);

    /* The report carries it: fraction 3/100 -> 7/256; then an interval with no loss -> 0 */
    uint8_t out[256];
    size_t n = md_rtcp_build_report(out, sizeof(out), 0x9999, false, 0, 0, 0, 0, &st, 0, "me");
    md_rtcp_info_t info;
    assert_int_equal(md_rtcp_parse(out, n, &info), LC_OK);
    assert_int_equal(info.nblocks, 1);
    assert_int_equal(info.blocks[0].ssrc, 0x1234);
    assert_int_equal(info.blocks[0].fraction_lost, 3 * 256 / 100);
    assert_int_equal(info.blocks[0].cumulative_lost, 3);
    assert_int_equal(info.blocks[0].highest_seq, 65536 + 63);
    for (int i = 100; i < 150; i++)
        md_rtcp_rx_update(&st, 0x1234, (uint16_t) (65500 + i), 1000 + 160u * (uint32_t) i,
                          100000 + 20 * i, 8000);
    n = md_rtcp_build_report(out, sizeof(out), 0x9999, false, 0, 0, 0, 0, &st, 0, "me");
    assert_int_equal(md_rtcp_parse(out, n, &info), LC_OK);
    assert_int_equal(info.blocks[0].fraction_lost, 0);
    assert_int_equal(info.blocks[0].cumulative_lost, 3);

    /* Jitter: every other packet 10 ms late -> |D| = 10 ms = 80 units each time; the
     * estimate converges towards 80 (RFC 3550 A.8). */
    md_rtcp_rx_stats_t j = {0};
    for (int i = 0; i < 400; i++)
        md_rtcp_rx_update(&j, 7, (uint16_t) i, 160u * (uint32_t) i, 20 * i + ((i & 1) ? 10 : 0),
                          8000);
    assert_true(fabs(j.jitter - 80) < 1);

    /* A duplicate counts as received (RFC 3550 A.3: loss may go negative). */
    md_rtcp_rx_stats_t d = {0};
    md_rtcp_rx_update(&d, 1, 10, 0, 0, 8000);
    md_rtcp_rx_update(&d, 1, 11, 160, 20, 8000);
    md_rtcp_rx_update(&d, 1, 11, 160, 21, 8000);
    assert_int_equal(md_rtcp_rx_cumulative_lost(&d), -1);

    /* A jump far away is believed only when the next packet follows it. */
    md_rtcp_rx_update(&d, 1, 30000, 0, 40, 8000);
    assert_int_equal(d.max_seq, 11);
    md_rtcp_rx_update(&d, 1, 30001, 160, 60, 8000);
    assert_int_equal(d.max_seq, 30001);
    assert_int_equal(d.base_seq, 30001);

    /* A new SSRC restarts the statistics. */
    md_rtcp_rx_update(&d, 2, 500, 0, 80, 8000);
    assert_int_equal(d.ssrc, 2);
    assert_int_equal(d.received, 1);
    assert_int_equal(md_rtcp_rx_cumulative_lost(&d), 0);
}

static void
test_build_sr_and_rr_round_trip(void **state)
{
    (void) state;
    md_rtcp_rx_stats_t st = {0};
    for (int i = 0; i < 10; i++)
        md_rtcp_rx_update(&st, 0x5555, (uint16_t) i, 160u * (uint32_t) i, 20 * i, 8000);
    /* The peer's SR, then our report 250 ms later echoes it. */
    md_rtcp_info_t peer = {.has_sr = true, .ntp_time = 0x0000123456789abcull};
    md_rtcp_rx_note_sr(&st, &peer, 1000);
    uint8_t out[256];
    uint64_t ntp = md_ntp_now();
    size_t n = md_rtcp_build_report(out, sizeof(out), 0x7777, true, ntp, 48000, 50, 8000, &st, 1250,
                                    "voxi-media@host");
    assert_true(n > 0 && n % 4 == 0);
    md_rtcp_info_t info;
    assert_int_equal(md_rtcp_parse(out, n, &info), LC_OK);
    assert_true(info.has_sr);
    assert_int_equal(info.sender_ssrc, 0x7777);
    assert_true(info.ntp_time == ntp);
    assert_int_equal(info.rtp_time, 48000);
    assert_int_equal(info.packets_sent, 50);
    assert_int_equal(info.octets_sent, 8000);
    assert_int_equal(info.nblocks, 1);
    assert_int_equal(info.blocks[0].lsr, 0x12345678);
    assert_int_equal(info.blocks[0].dlsr, 65536 / 4); /* 250 ms */
    assert_int_equal(info.blocks[0].highest_seq, 9);
    /* SDES CNAME after the SR: 0x81 202, the SSRC, item 1 with the name, null-terminated */
    size_t sr_len = 8 + 20 + 24;
    assert_int_equal(out[sr_len], 0x81);
    assert_int_equal(out[sr_len + 1], 202);
    assert_int_equal(out[sr_len + 8], 1);
    assert_int_equal(out[sr_len + 9], 15);
    assert_memory_equal(out + sr_len + 10, "voxi-media@host", 15);
    assert_int_equal(out[sr_len + 25], 0);

    /* RR without any received packet: no report block. */
    md_rtcp_rx_stats_t none = {0};
    n = md_rtcp_build_report(out, sizeof(out), 0x7777, false, 0, 0, 0, 0, &none, 0, NULL);
    assert_int_equal(md_rtcp_parse(out, n, &info), LC_OK);
    assert_false(info.has_sr);
    assert_int_equal(info.nblocks, 0);
    assert_int_equal(out[0], 0x80);
    assert_int_equal(out[1], 201);
    /* Too small a buffer */
    assert_int_equal(md_rtcp_build_report(out, 20, 1, true, 0, 0, 0, 0, &st, 0, "x"), 0);

    /* The RTT a peer would compute from our RR: LSR/DLSR round trip through the parser. */
    md_rtcp_rx_stats_t rx = {0};
    md_rtcp_rx_update(&rx, 0x5555, 1, 0, 0, 8000);
    uint64_t sr_ntp = (uint64_t) 1000 << 32; /* our SR at NTP 1000 s */
    md_rtcp_info_t our_sr = {.has_sr = true, .ntp_time = sr_ntp};
    md_rtcp_rx_note_sr(&rx, &our_sr, 5000); /* the peer got it at its t = 5000 ms */
    n = md_rtcp_build_report(out, sizeof(out), 0x5555, false, 0, 0, 0, 0, &rx, 5100, "peer");
    assert_int_equal(md_rtcp_parse(out, n, &info), LC_OK);
    /* it comes back to us at NTP 1000.130 s: 30 ms of network in total */
    uint64_t back = sr_ntp + (uint64_t) (0.130 * 4294967296.0);
    assert_true(fabs(md_rtcp_rtt_ms(&info.blocks[0], back) - 30.0) < 0.1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_compound),
        cmocka_unit_test(test_malformed_rejected),
        cmocka_unit_test(test_compound_walk_is_bounded),
        cmocka_unit_test(test_rtt_rfc3550_example),
        cmocka_unit_test(test_rx_stats_loss_and_jitter),
        cmocka_unit_test(test_build_sr_and_rr_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
