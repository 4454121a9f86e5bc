/*
 * md_rtp: RTP fixed header parsing and building (RFC 3550 section 5.1, validity checks of
 * appendix A.1). See md_rtp.h.
 */
#include "md_rtp.h"

#include <string.h>

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t) ((p[0] << 8) | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) |
           (uint32_t) p[3];
}

static void
wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

static void
wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

lc_status_t
md_rtp_parse(const uint8_t *buf, size_t len, md_rtp_packet_t *out)
{
    if (buf == NULL || out == NULL || len < MD_RTP_HEADER_BYTES)
        return LC_ERR_INVALID;
    /* RFC 3550 section 5.1: version is 2. */
    if ((buf[0] >> 6) != 2)
        return LC_ERR_INVALID;
    /* RFC 5761 section 4: on a muxed port the second octet of RTCP (packet types 192..223,
     * SR 200 / RR 201 / SDES 202 / BYE 203 / APP 204 and the feedback types) reads as the
     * marker bit plus payload type 64..95. Those payload types are never RTP. */
    if (buf[1] >= 192 && buf[1] <= 223)
        return LC_ERR_PROTOCOL;

    bool padding = (buf[0] & 0x20) != 0;
    bool extension = (buf[0] & 0x10) != 0;
    uint8_t csrc_count = buf[0] & 0x0f;

    size_t off = MD_RTP_HEADER_BYTES + 4u * csrc_count;
    if (off > len) /* CSRC list runs past the end */
        return LC_ERR_INVALID;

    md_rtp_packet_t p;
    memset(&p, 0, sizeof(p));
    p.marker = (buf[1] & 0x80) != 0;
    p.payload_type = buf[1] & 0x7f;
    p.seq = rd16(buf + 2);
    p.timestamp = rd32(buf + 4);
    p.ssrc = rd32(buf + 8);
    p.csrc_count = csrc_count;
    for (uint8_t i = 0; i < csrc_count; i++)
        p.csrc[i] = rd32(buf + MD_RTP_HEADER_BYTES + 4u * i);

    if (extension) {
        /* RFC 3550 section 5.3.1: 16-bit profile, 16-bit length in 32-bit words. */
        if (off + 4 > len)
            return LC_ERR_INVALID;
        p.has_extension = true;
        p.extension_profile = rd16(buf + off);
        size_t ext_len = 4u * rd16(buf + off + 2);
        off += 4;
        if (ext_len > len - off)
            return LC_ERR_INVALID;
        p.extension = buf + off;
        p.extension_len = ext_len;
        off += ext_len;
    }

    size_t payload_len = len - off;
    if (padding) {
        /* RFC 3550 section 5.1: the last octet counts the padding octets, itself included,
         * so it is at least 1 and cannot reach into the header (appendix A.1). */
        uint8_t pad = buf[len - 1];
        if (pad == 0 || pad > payload_len)
            return LC_ERR_INVALID;
        payload_len -= pad;
    }
    p.payload = buf + off;
    p.payload_len = payload_len;
    *out = p;
    return LC_OK;
}

size_t
md_rtp_build(uint8_t *out, size_t out_size, bool marker, uint8_t payload_type, uint16_t seq,
             uint32_t timestamp, uint32_t ssrc, const uint8_t *payload, size_t payload_len)
{
    if (out == NULL || out_size < MD_RTP_HEADER_BYTES ||
        payload_len > out_size - MD_RTP_HEADER_BYTES || (payload_len > 0 && payload == NULL))
        return 0;
    out[0] = 0x80; /* V=2, no padding, no extension, no CSRC */
    out[1] = (uint8_t) ((marker ? 0x80 : 0) | (payload_type & 0x7f));
    wr16(out + 2, seq);
    wr32(out + 4, timestamp);
    wr32(out + 8, ssrc);
    if (payload_len > 0)
        memmove(out + MD_RTP_HEADER_BYTES, payload, payload_len);
    return MD_RTP_HEADER_BYTES + payload_len;
}
