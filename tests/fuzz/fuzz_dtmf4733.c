/*
 * Fuzz target: RFC 4733 telephone-event payloads. The input is a stream of 8-byte records,
 * each an RTP timestamp (4 bytes, big-endian) and a 4-byte event payload, fed in order to
 * one receiver as a call would; invariants: never more ends than starts, and only DTMF
 * digits reported. The whole input is also parsed as one payload.
 *
 *   libFuzzer: make fuzz        replay: linked with replay_main.c, run by make test
 */
#include <stddef.h>
#include <stdint.h>

#include "../../services/media/md_dtmf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    md_dtmf_payload_t p;
    if (md_dtmf_parse(data, size, &p) == LC_OK && (p.volume > 63 || size < 4))
        __builtin_trap();

    md_dtmf_rx_t rx = {0};
    int starts = 0, ends = 0;
    for (size_t off = 0; off + 8 <= size && off < 8 * 4096; off += 8) {
        uint32_t ts = ((uint32_t) data[off] << 24) | ((uint32_t) data[off + 1] << 16) |
                      ((uint32_t) data[off + 2] << 8) | data[off + 3];
        char digit = 0;
        int duration_ms = -1;
        /* 8 kHz, or 48 kHz when the first byte says so */
        int clock = (data[0] & 1) ? 48000 : 8000;
        md_dtmf_rx_result_t r =
            md_dtmf_rx_packet(&rx, ts, data + off + 4, 4, clock, &digit, &duration_ms);
        if (r != MD_DTMF_NONE && md_dtmf_char_event(digit) < 0)
            __builtin_trap();
        if (r == MD_DTMF_DIGIT_START)
            starts++;
        if (r == MD_DTMF_DIGIT_END) {
            ends++;
            if (duration_ms < 0 || duration_ms > 65535 * 1000 / 8000)
                __builtin_trap();
        }
        if (ends > starts)
            __builtin_trap();
    }

    /* The sender, driven by the input: always terminates with three end packets. */
    if (size >= 3) {
        md_dtmf_tx_t tx;
        if (md_dtmf_tx_start(&tx, (char) data[0], 40 + data[1] * 20, 10 + (data[2] % 6) * 10, 8000,
                             0, 10) == LC_OK) {
            uint8_t out[4];
            int n = 0, end_packets = 0;
            while (md_dtmf_tx_next(&tx, out, NULL)) {
                md_dtmf_parse(out, 4, &p);
                end_packets += p.end;
                if (++n > 1000)
                    __builtin_trap();
            }
            if (end_packets != MD_DTMF_TX_END_PACKETS)
                __builtin_trap();
        }
    }
    return 0;
}
