/*
 * Fuzz target: RTCP compounds from the network: md_rtcp_parse, the SR bookkeeping and RTT
 * computation a caller does with the result, and SRTCP unprotect.
 *
 *   libFuzzer: make fuzz        replay: linked with replay_main.c, run by make test
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../services/media/md_rtcp.h"
#include "../../services/media/md_srtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 1500

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    md_rtcp_info_t info;
    if (md_rtcp_parse(data, size, &info) == LC_OK) {
        if (info.nblocks < 0 || info.nblocks > 4)
            __builtin_trap();
        md_rtcp_rx_stats_t st = {0};
        md_rtcp_rx_update(&st, info.sender_ssrc, (uint16_t) info.rtp_time, info.rtp_time, 0, 8000);
        md_rtcp_rx_note_sr(&st, &info, 1000);
        for (int i = 0; i < info.nblocks; i++) {
            double rtt = md_rtcp_rtt_ms(&info.blocks[i], info.ntp_time);
            if (rtt < 0)
                __builtin_trap();
        }
        uint8_t out[512];
        size_t n =
            md_rtcp_build_report(out, sizeof(out), 1, info.has_sr, info.ntp_time, info.rtp_time,
                                 info.packets_sent, info.octets_sent, &st, 1500, "fuzz");
        md_rtcp_info_t again;
        if (n == 0 || md_rtcp_parse(out, n, &again) != LC_OK)
            __builtin_trap(); /* what we build must parse */
    }

    static const md_srtp_crypto_t key = {
        .tag = 1,
        .suite = MD_SRTP_AES_CM_128_HMAC_SHA1_32,
        .key_salt = {30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                     15, 14, 13, 12, 11, 10, 9,  8,  7,  6,  5,  4,  3,  2,  1},
    };
    /* One session for the whole run: a forged packet never authenticates, so it cannot
     * change the session's state (and creating one per input would dominate the run). */
    static md_srtp_t *in = NULL;
    if (in == NULL && md_srtp_create(&key, MD_SRTP_INBOUND, &in) != LC_OK)
        __builtin_trap();
    _Alignas(4) uint8_t buf[MAX_INPUT + MD_SRTP_TRAILER_ROOM];
    memcpy(buf, data, size);
    size_t len = size;
    if (md_srtp_unprotect_rtcp(in, buf, &len) == LC_OK && len > size)
        __builtin_trap();
    return 0;
}
