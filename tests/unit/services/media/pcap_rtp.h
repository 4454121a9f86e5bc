/*
 * Test helper: the UDP payloads (RTP packets) of a classic pcap file of Ethernet/IPv4/UDP
 * frames, such as the captures sip-tester ships in /usr/share/sip-tester/. Header-only,
 * for unit tests; bounds-checked so a broken capture fails the test instead of crashing.
 */
#ifndef TEST_PCAP_RTP_H
#define TEST_PCAP_RTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCAP_RTP_MAX_PACKETS 512
#define PCAP_RTP_MAX_BYTES 1500

typedef struct {
    size_t count;
    size_t len[PCAP_RTP_MAX_PACKETS];
    int64_t time_ms[PCAP_RTP_MAX_PACKETS];
    uint8_t data[PCAP_RTP_MAX_PACKETS][PCAP_RTP_MAX_BYTES];
} pcap_rtp_t;

static uint32_t
pcap_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) |
           ((uint32_t) p[3] << 24);
}

/* Returns a new pcap_rtp_t (free() it), or NULL if the file is missing or not a classic
 * little-endian Ethernet pcap. */
static pcap_rtp_t *
pcap_rtp_load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    static uint8_t file[1 << 20];
    size_t n = fread(file, 1, sizeof(file), f);
    fclose(f);
    if (n < 24 || pcap_le32(file) != 0xa1b2c3d4u || pcap_le32(file + 20) != 1)
        return NULL;
    pcap_rtp_t *out = calloc(1, sizeof(*out));
    size_t off = 24;
    while (off + 16 <= n && out->count < PCAP_RTP_MAX_PACKETS) {
        uint32_t sec = pcap_le32(file + off), usec = pcap_le32(file + off + 4);
        uint32_t incl = pcap_le32(file + off + 8);
        off += 16;
        if (incl > n - off)
            break;
        const uint8_t *pkt = file + off;
        off += incl;
        /* Ethernet (14) + IPv4 (IHL) + UDP (8) */
        if (incl < 14 + 20 + 8 || pkt[12] != 0x08 || pkt[13] != 0x00 || (pkt[14] >> 4) != 4 ||
            pkt[23] != 17)
            continue;
        size_t ihl = (size_t) (pkt[14] & 0x0f) * 4;
        if (14 + ihl + 8 > incl)
            continue;
        const uint8_t *udp = pkt + 14 + ihl;
        size_t udp_len = ((size_t) udp[4] << 8) | udp[5];
        if (udp_len < 8 || 14 + ihl + udp_len > incl || udp_len - 8 > PCAP_RTP_MAX_BYTES)
            continue;
        memcpy(out->data[out->count], udp + 8, udp_len - 8);
        out->len[out->count] = udp_len - 8;
        out->time_ms[out->count] = (int64_t) sec * 1000 + usec / 1000;
        out->count++;
    }
    return out;
}

#endif
