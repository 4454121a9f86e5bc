/* Unit tests: RFC 4733 payloads, the receiver (one digit per press, retransmitted ends,
 * repeated digits, lost starts, stragglers, durations) fed with sip-tester's real captures
 * and scripted packets, and the sender's packet sequence. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/media/md_dtmf.h"
#include "../../../../services/media/md_rtp.h"
#include "pcap_rtp.h"

static void
test_parse_and_build(void **state)
{
    (void) state;
    md_dtmf_payload_t p;
    const uint8_t end5[] = {0x05, 0x8a, 0x03, 0x20};
    assert_int_equal(md_dtmf_parse(end5, 4, &p), LC_OK);
    assert_int_equal(p.event, 5);
    assert_true(p.end);
    assert_int_equal(p.volume, 10);
    assert_int_equal(p.duration, 800);
    /* R bit ignored, volume is 6 bits */
    const uint8_t r_bit[] = {0x0b, 0x7f, 0xff, 0xff};
    assert_int_equal(md_dtmf_parse(r_bit, 4, &p), LC_OK);
    assert_false(p.end);
    assert_int_equal(p.volume, 63);
    assert_int_equal(p.duration, 65535);
    for (size_t len = 0; len < 4; len++)
        assert_int_equal(md_dtmf_parse(end5, len, &p), LC_ERR_INVALID);
    assert_int_equal(md_dtmf_parse(NULL, 4, &p), LC_ERR_INVALID);
    uint8_t out[4];
    md_dtmf_payload_t q = {.event = 11, .end = true, .volume = 10, .duration = 2240};
    assert_int_equal(md_dtmf_build(&q, out), 4);
    assert_memory_equal(out, "\x0b\x8a\x08\xc0", 4);
}

static void
test_event_chars(void **state)
{
    (void) state;
    const char *digits = "0123456789*#ABCD";
    for (int e = 0; e < 16; e++) {
        assert_int_equal(md_dtmf_event_char((uint8_t) e), digits[e]);
        assert_int_equal(md_dtmf_char_event(digits[e]), e);
    }
    assert_int_equal(md_dtmf_event_char(16), 0);
    assert_int_equal(md_dtmf_event_char(255), 0);
    assert_int_equal(md_dtmf_char_event('a'), 12);
    assert_int_equal(md_dtmf_char_event('E'), -1);
    assert_int_equal(md_dtmf_char_event('\0'), -1);
    assert_int_equal(md_dtmf_char_event(' '), -1);
}

typedef struct {
    int starts, ends;
    char digits[32];
    int durations[32];
} tally_t;

static void
feed(md_dtmf_rx_t *rx, tally_t *t, uint32_t ts, uint8_t event, bool end, uint16_t duration)
{
    md_dtmf_payload_t p = {.event = event, .end = end, .volume = 10, .duration = duration};
    uint8_t b[4];
    md_dtmf_build(&p, b);
    char digit = 0;
    int dur = -1;
    md_dtmf_rx_result_t r = md_dtmf_rx_packet(rx, ts, b, 4, 8000, &digit, &dur);
    if (r == MD_DTMF_DIGIT_START)
        t->digits[t->starts++] = digit;
    if (r == MD_DTMF_DIGIT_END)
        t->durations[t->ends++] = dur;
}

static void
test_real_captures(void **state)
{
    (void) state;
    const char *names[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "star", "pound"};
    const char *want = "0123456789*#";
    for (size_t i = 0; i < 12; i++) {
        char path[128];
        snprintf(path, sizeof(path), "/usr/share/sip-tester/dtmf_2833_%s.pcap", names[i]);
        pcap_rtp_t *cap = pcap_rtp_load(path);
        assert_non_null(cap);
        md_dtmf_rx_t rx = {0};
        int starts = 0, ends = 0, duration = 0;
        char got = 0;
        for (size_t k = 0; k < cap->count; k++) {
            md_rtp_packet_t p;
            assert_int_equal(md_rtp_parse(cap->data[k], cap->len[k], &p), LC_OK);
            char digit = 0;
            int dur = 0;
            md_dtmf_rx_result_t r =
                md_dtmf_rx_packet(&rx, p.timestamp, p.payload, p.payload_len, 8000, &digit, &dur);
            if (r == MD_DTMF_DIGIT_START) {
                starts++;
                got = digit;
                assert_int_equal(k, 0); /* reported on the first (marker) packet */
                assert_true(p.marker);
            } else if (r == MD_DTMF_DIGIT_END) {
                ends++;
                duration = dur;
                assert_int_equal(digit, want[i]);
            }
        }
        /* Ten packets: start, six updates, the end three times: one press. */
        assert_int_equal(cap->count, 10);
        assert_int_equal(starts, 1);
        assert_int_equal(ends, 1);
        assert_int_equal(got, want[i]);
        assert_int_equal(duration, 280); /* 2240 units at 8 kHz */
        free(cap);
    }
}

static void
test_repeated_digit_counts_twice(void **state)
{
    (void) state;
    md_dtmf_rx_t rx = {0};
    tally_t t = {0};
    /* "55": same event, new timestamp for the second press (RFC 4733 2.5.2.1) */
    for (int press = 0; press < 2; press++) {
        uint32_t ts = 1000 + (uint32_t) press * 2000;
        feed(&rx, &t, ts, 5, false, 0);
        for (uint16_t d = 160; d <= 640; d += 160)
            feed(&rx, &t, ts, 5, false, d);
        for (int k = 0; k < 3; k++)
            feed(&rx, &t, ts, 5, true, 800);
    }
    assert_int_equal(t.starts, 2);
    assert_int_equal(t.ends, 2);
    assert_memory_equal(t.digits, "55", 2);
    assert_int_equal(t.durations[0], 100);
    assert_int_equal(t.durations[1], 100);
}

static void
test_lost_start_and_stragglers(void **state)
{
    (void) state;
    md_dtmf_rx_t rx = {0};
    tally_t t = {0};
    /* Only the end packets of '9' arrive: START on the first end, END on the next copy. */
    feed(&rx, &t, 5000, 9, true, 400);
    assert_int_equal(t.starts, 1);
    assert_int_equal(t.ends, 0);
    feed(&rx, &t, 5000, 9, true, 400);
    assert_int_equal(t.ends, 1);
    assert_int_equal(t.durations[0], 50);
    feed(&rx, &t, 5000, 9, true, 400); /* third copy: nothing */
    assert_int_equal(t.ends, 1);

    /* A new press of '#'; then a late update of the old '9' (older timestamp): ignored. */
    feed(&rx, &t, 7000, 11, false, 0);
    feed(&rx, &t, 5000, 9, false, 160);
    feed(&rx, &t, 5000, 9, true, 400);
    feed(&rx, &t, 7000, 11, true, 320);
    assert_int_equal(t.starts, 2);
    assert_int_equal(t.ends, 2);
    assert_memory_equal(t.digits, "9#", 2);
    assert_int_equal(t.durations[1], 40);

    /* Non-DTMF events (flash = 16) and junk are ignored; timestamps wrap in serial order. */
    feed(&rx, &t, 9000, 16, false, 0);
    /* 0xfffffff0 comes before 7000 in serial arithmetic (the difference is negative as
     * int32): a straggler, ignored. */
    feed(&rx, &t, 0xfffffff0u, 1, false, 0);
    assert_int_equal(t.starts, 2);
    md_dtmf_rx_t wrap = {0};
    tally_t w = {0};
    feed(&wrap, &w, 0xffffff00u, 1, false, 0);
    feed(&wrap, &w, 0xffffff00u, 1, true, 160);
    feed(&wrap, &w, 0x00000100u, 2, false, 0); /* after the wrap: a new press */
    feed(&wrap, &w, 0x00000100u, 2, true, 160);
    assert_int_equal(w.starts, 2);
    assert_int_equal(w.ends, 2);
    assert_memory_equal(w.digits, "12", 2);
    uint8_t short_payload[3] = {1, 0x8a, 0};
    char d = 0;
    int dur = 0;
    assert_int_equal(md_dtmf_rx_packet(&wrap, 1, short_payload, 3, 8000, &d, &dur), MD_DTMF_NONE);
}

static void
test_sender_sequence(void **state)
{
    (void) state;
    md_dtmf_tx_t tx;
    assert_int_equal(md_dtmf_tx_start(&tx, '7', 100, 20, 8000, 123456, 10), LC_OK);
    uint8_t pkts[16][4];
    bool markers[16];
    int n = 0;
    while (md_dtmf_tx_next(&tx, pkts[n], &markers[n]))
        n++;
    assert_true(md_dtmf_tx_done(&tx));
    /* start (marker, duration 0), updates 160..640, three ends at 800 */
    assert_int_equal(n, 8);
    const uint16_t durations[] = {0, 160, 320, 480, 640, 800, 800, 800};
    for (int i = 0; i < n; i++) {
        md_dtmf_payload_t p;
        assert_int_equal(md_dtmf_parse(pkts[i], 4, &p), LC_OK);
        assert_int_equal(p.event, 7);
        assert_int_equal(p.volume, 10);
        assert_int_equal(p.duration, durations[i]);
        assert_int_equal(p.end, i >= 5);
        assert_int_equal(markers[i], i == 0);
    }
    /* Our own packets through our receiver: one digit, its duration. */
    md_dtmf_rx_t rx = {0};
    int starts = 0, ends = 0, duration = 0;
    for (int i = 0; i < n; i++) {
        char digit;
        int dur;
        md_dtmf_rx_result_t r =
            md_dtmf_rx_packet(&rx, tx.timestamp, pkts[i], 4, 8000, &digit, &dur);
        starts += r == MD_DTMF_DIGIT_START;
        if (r == MD_DTMF_DIGIT_END) {
            ends++;
            duration = dur;
            assert_int_equal(digit, '7');
        }
    }
    assert_int_equal(starts, 1);
    assert_int_equal(ends, 1);
    assert_int_equal(duration, 100);

    /* A duration that is not a whole number of ptimes: the last update is cut to it. */
    assert_int_equal(md_dtmf_tx_start(&tx, '#', 90, 20, 8000, 0, 10), LC_OK);
    n = 0;
    while (md_dtmf_tx_next(&tx, pkts[n], NULL))
        n++;
    assert_int_equal(n, 1 + 4 + 3);
    md_dtmf_payload_t last;
    md_dtmf_parse(pkts[n - 1], 4, &last);
    assert_int_equal(last.duration, 720);
    assert_true(last.end);

    /* Opus calls: telephone-event at 48 kHz. */
    assert_int_equal(md_dtmf_tx_start(&tx, 'D', 200, 20, 48000, 0, 10), LC_OK);
    n = 0;
    while (md_dtmf_tx_next(&tx, pkts[n], NULL))
        n++;
    md_dtmf_parse(pkts[n - 1], 4, &last);
    assert_int_equal(last.duration, 9600);
    assert_int_equal(last.event, 15);

    /* Long durations are capped at 16 bits. */
    assert_int_equal(md_dtmf_tx_start(&tx, '1', 5000, 20, 48000, 0, 10), LC_OK);
    assert_int_equal(tx.total, 65535);

    assert_int_equal(md_dtmf_tx_start(&tx, 'x', 100, 20, 8000, 0, 10), LC_ERR_INVALID);
    assert_int_equal(md_dtmf_tx_start(&tx, '1', 10, 20, 8000, 0, 10), LC_ERR_INVALID);
    assert_int_equal(md_dtmf_tx_start(&tx, '1', 100, 0, 8000, 0, 10), LC_ERR_INVALID);
    assert_int_equal(md_dtmf_tx_start(&tx, '1', 100, 20, 8000, 0, 64), LC_ERR_INVALID);
    assert_false(md_dtmf_tx_next(NULL, pkts[0], NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_build),
        cmocka_unit_test(test_event_chars),
        cmocka_unit_test(test_real_captures),
        cmocka_unit_test(test_repeated_digit_counts_twice),
        cmocka_unit_test(test_lost_start_and_stragglers),
        cmocka_unit_test(test_sender_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
