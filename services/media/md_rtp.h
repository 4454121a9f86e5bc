/*
 * md_rtp: RTP packet parsing and building (RFC 3550 section 5.1).
 *
 * Parsing never reads past the buffer and rejects what RFC 3550 calls invalid: version
 * other than 2, CSRC list or header extension running past the end, padding count of 0
 * or larger than the payload. Pure functions; any thread.
 */
#ifndef MD_RTP_H
#define MD_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

#define MD_RTP_HEADER_BYTES 12
#define MD_RTP_MAX_PACKET_BYTES 1500

typedef struct {
    bool marker;
    uint8_t payload_type; /* 0..127 */
    uint16_t seq;
    uint32_t timestamp;
    uint32_t ssrc;
    uint8_t csrc_count;
    uint32_t csrc[15];
    bool has_extension;
    uint16_t extension_profile;
    const uint8_t *extension; /* borrowed from the packet; extension_len bytes */
    size_t extension_len;
    const uint8_t *payload; /* borrowed from the packet, padding removed */
    size_t payload_len;
} md_rtp_packet_t;

/* LC_OK, or LC_ERR_INVALID (not RTP / malformed). RTCP packets (second octet 192..223, i.e.
 * PT 64..95 with the marker bit folded in: SR 200, RR 201, ... RFC 5761 section 4) are
 * rejected with LC_ERR_PROTOCOL so a muxed port can hand them to RTCP. */
lc_status_t md_rtp_parse(const uint8_t *buf, size_t len, md_rtp_packet_t *out);

/* Writes a 12-byte header (no CSRC, no extension) and copies the payload after it.
 * Returns the packet length, or 0 if out_size is too small. */
size_t md_rtp_build(uint8_t *out, size_t out_size, bool marker, uint8_t payload_type, uint16_t seq,
                    uint32_t timestamp, uint32_t ssrc, const uint8_t *payload, size_t payload_len);

/* Sequence arithmetic that survives wrap-around: a - b as a signed distance. */
static inline int16_t
md_rtp_seq_diff(uint16_t a, uint16_t b)
{
    return (int16_t) (uint16_t) (a - b);
}

#endif
