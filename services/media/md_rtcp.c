/*
 * md_rtcp: RTCP SR/RR parsing and building, receive statistics (RFC 3550 section 6.4 and
 * appendices A.1, A.2, A.3, A.8). See md_rtcp.h.
 */
#include "md_rtcp.h"

#include <string.h>
#include <time.h>

#define RTCP_SR 200
#define RTCP_RR 201
#define RTCP_SDES 202
#define RTCP_BYE 203
#define SDES_CNAME 1
#define REPORT_BLOCK_BYTES 24
#define SR_SENDER_INFO_BYTES 20

/* RFC 3550 appendix A.1 */
#define RTP_SEQ_MOD (1u << 16)
#define MAX_DROPOUT 3000u
#define MAX_MISORDER 100u

/* Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
#define NTP_UNIX_OFFSET 2208988800ull

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

static void
parse_blocks(const uint8_t *p, int count, md_rtcp_info_t *out)
{
    for (int i = 0; i < count && out->nblocks < 4; i++, p += REPORT_BLOCK_BYTES) {
        md_rtcp_report_block_t *b = &out->blocks[out->nblocks++];
        b->ssrc = rd32(p);
        b->fraction_lost = p[4];
        /* 24-bit signed cumulative loss, sign-extended. */
        uint32_t cl = ((uint32_t) p[5] << 16) | ((uint32_t) p[6] << 8) | p[7];
        b->cumulative_lost = (cl & 0x800000u) ? (int32_t) (cl | 0xff000000u) : (int32_t) cl;
        b->highest_seq = rd32(p + 8);
        b->jitter = rd32(p + 12);
        b->lsr = rd32(p + 16);
        b->dlsr = rd32(p + 20);
    }
}

lc_status_t
md_rtcp_parse(const uint8_t *buf, size_t len, md_rtcp_info_t *out)
{
    if (buf == NULL || out == NULL)
        return LC_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (len < 4 || len % 4 != 0) /* every RTCP packet is a multiple of 32 bits */
        return LC_ERR_INVALID;
    bool have_sender = false;
    size_t off = 0;
    for (int n = 0; off < len; n++) {
        if (n >= MD_RTCP_MAX_COMPOUND || len - off < 4)
            return LC_ERR_INVALID;
        const uint8_t *p = buf + off;
        if ((p[0] >> 6) != 2)
            return LC_ERR_INVALID;
        bool padding = (p[0] & 0x20) != 0;
        int count = p[0] & 0x1f;
        uint8_t pt = p[1];
        /* Packet types 192..223 only (the range RFC 5761 section 4 sets apart from RTP). */
        if (pt < 192 || pt > 223)
            return LC_ERR_INVALID;
        size_t plen = ((size_t) rd16(p + 2) + 1) * 4;
        if (plen > len - off)
            return LC_ERR_INVALID;
        size_t body = plen - 4;
        if (padding) {
            /* RFC 3550 A.2: only the last packet of a compound may be padded. */
            if (off + plen != len)
                return LC_ERR_INVALID;
            uint8_t pad = p[plen - 1];
            if (pad == 0 || pad > body)
                return LC_ERR_INVALID;
            body -= pad;
        }
        const uint8_t *b = p + 4;
        switch (pt) {
        case RTCP_SR:
            if (body < 4 + SR_SENDER_INFO_BYTES + (size_t) count * REPORT_BLOCK_BYTES)
                return LC_ERR_INVALID;
            if (!have_sender) {
                have_sender = true;
                out->has_sr = true;
                out->sender_ssrc = rd32(b);
                out->ntp_time = ((uint64_t) rd32(b + 4) << 32) | rd32(b + 8);
                out->rtp_time = rd32(b + 12);
                out->packets_sent = rd32(b + 16);
                out->octets_sent = rd32(b + 20);
            }
            parse_blocks(b + 4 + SR_SENDER_INFO_BYTES, count, out);
            break;
        case RTCP_RR:
            if (body < 4 + (size_t) count * REPORT_BLOCK_BYTES)
                return LC_ERR_INVALID;
            if (!have_sender) {
                have_sender = true;
                out->sender_ssrc = rd32(b);
            }
            parse_blocks(b + 4, count, out);
            break;
        case RTCP_BYE:
            if (body < (size_t) count * 4)
                return LC_ERR_INVALID;
            out->has_bye = true;
            break;
        default:
            break; /* SDES, APP, feedback, XR: skipped */
        }
        off += plen;
    }
    return LC_OK;
}

static void
init_seq(md_rtcp_rx_stats_t *st, uint16_t seq)
{
    st->base_seq = seq;
    st->max_seq = seq;
    st->bad_seq = RTP_SEQ_MOD + 1; /* so seq == bad_seq is false */
    st->cycles = 0;
    st->received = 0;
    st->received_prior = 0;
    st->expected_prior = 0;
}

void
md_rtcp_rx_update(md_rtcp_rx_stats_t *st, uint32_t ssrc, uint16_t seq, uint32_t rtp_ts,
                  int64_t arrival_ms, int clock_hz)
{
    if (st == NULL || clock_hz <= 0)
        return;
    /* RFC 3550 A.8: arrival time in timestamp units; only differences matter, so the
     * wrap of the 32-bit value is harmless. */
    uint32_t arrival = (uint32_t) ((uint64_t) arrival_ms * (uint64_t) clock_hz / 1000);
    uint32_t transit = arrival - rtp_ts;

    if (!st->started || ssrc != st->ssrc) {
        /* The peer's last SR stays: it may have come before its first RTP packet. */
        uint32_t sr_mid = st->last_sr_ntp_mid;
        int64_t sr_arrival = st->last_sr_arrival_ms;
        memset(st, 0, sizeof(*st));
        st->last_sr_ntp_mid = sr_mid;
        st->last_sr_arrival_ms = sr_arrival;
        st->started = true;
        st->ssrc = ssrc;
        init_seq(st, seq);
        st->received = 1;
        st->last_transit = transit;
        return;
    }

    /* RFC 3550 A.1 update_seq, without probation (the SSRC was negotiated). */
    uint16_t udelta = (uint16_t) (seq - st->max_seq);
    if (udelta < MAX_DROPOUT) {
        if (seq < st->max_seq)
            st->cycles += RTP_SEQ_MOD; /* wrapped */
        st->max_seq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
        if (seq == st->bad_seq) {
            /* Two in a row after a jump: the sender restarted its sequence. */
            init_seq(st, seq);
        } else {
            st->bad_seq = (seq + 1) & (RTP_SEQ_MOD - 1);
            return;
        }
    }
    /* else a duplicate or reordered packet: counted, max_seq unchanged */
    st->received++;

    int32_t d = (int32_t) (transit - (uint32_t) st->last_transit);
    st->last_transit = transit;
    if (d < 0)
        d = -d;
    st->jitter += (1.0 / 16.0) * ((double) d - st->jitter);
}

void
md_rtcp_rx_note_sr(md_rtcp_rx_stats_t *st, const md_rtcp_info_t *info, int64_t arrival_ms)
{
    if (st == NULL || info == NULL || !info->has_sr)
        return;
    /* LSR: the middle 32 bits of the SR's NTP timestamp (RFC 3550 section 6.4.1). */
    st->last_sr_ntp_mid = (uint32_t) (info->ntp_time >> 16);
    st->last_sr_arrival_ms = arrival_ms;
}

uint32_t
md_rtcp_rx_extended_max(const md_rtcp_rx_stats_t *st)
{
    return st != NULL ? st->cycles + st->max_seq : 0;
}

int32_t
md_rtcp_rx_cumulative_lost(const md_rtcp_rx_stats_t *st)
{
    if (st == NULL || !st->started)
        return 0;
    /* RFC 3550 A.3; duplicates can make it negative. Clamped to 24 bits signed. */
    int64_t expected = (int64_t) md_rtcp_rx_extended_max(st) - st->base_seq + 1;
    int64_t lost = expected - st->received;
    if (lost > 0x7fffff)
        lost = 0x7fffff;
    if (lost < -0x800000)
        lost = -0x800000;
    return (int32_t) lost;
}

static size_t
write_block(uint8_t *p, md_rtcp_rx_stats_t *rx, int64_t now_ms)
{
    uint32_t extended_max = md_rtcp_rx_extended_max(rx);
    uint32_t expected = extended_max - rx->base_seq + 1;
    int32_t lost = md_rtcp_rx_cumulative_lost(rx);
    /* RFC 3550 A.3: fraction lost over the interval since the last report. */
    uint32_t expected_interval = expected - rx->expected_prior;
    rx->expected_prior = expected;
    uint32_t received_interval = rx->received - rx->received_prior;
    rx->received_prior = rx->received;
    int64_t lost_interval = (int64_t) expected_interval - (int64_t) received_interval;
    uint8_t fraction = 0;
    if (expected_interval != 0 && lost_interval > 0)
        fraction = (uint8_t) (((uint64_t) lost_interval << 8) / expected_interval);

    wr32(p, rx->ssrc);
    p[4] = fraction;
    uint32_t cl = (uint32_t) lost & 0xffffffu;
    p[5] = (uint8_t) (cl >> 16);
    p[6] = (uint8_t) (cl >> 8);
    p[7] = (uint8_t) cl;
    wr32(p + 8, extended_max);
    wr32(p + 12, (uint32_t) rx->jitter);
    uint32_t lsr = rx->last_sr_ntp_mid;
    uint32_t dlsr = 0;
    if (lsr != 0 && now_ms >= rx->last_sr_arrival_ms)
        dlsr = (uint32_t) ((uint64_t) (now_ms - rx->last_sr_arrival_ms) * 65536 / 1000);
    wr32(p + 16, lsr);
    wr32(p + 20, dlsr);
    return REPORT_BLOCK_BYTES;
}

size_t
md_rtcp_build_report(uint8_t *out, size_t out_size, uint32_t our_ssrc, bool sender,
                     uint64_t ntp_now, uint32_t rtp_now, uint32_t packets_sent,
                     uint32_t octets_sent, md_rtcp_rx_stats_t *rx, int64_t now_ms,
                     const char *cname)
{
    if (out == NULL)
        return 0;
    if (cname == NULL || cname[0] == '\0')
        cname = "voxi";
    size_t cname_len = strlen(cname);
    if (cname_len > 255)
        cname_len = 255;
    int blocks = (rx != NULL && rx->started) ? 1 : 0;
    size_t report_len = 8 + (sender ? SR_SENDER_INFO_BYTES : 0) + (size_t) blocks * 24;
    /* SDES: header, SSRC, CNAME item (type, length, text), then 1..4 null octets to the
     * next 32-bit boundary (RFC 3550 section 6.5). */
    size_t chunk = 4 + 2 + cname_len;
    size_t sdes_len = 4 + chunk + (4 - chunk % 4);
    if (out_size < report_len + sdes_len)
        return 0;

    uint8_t *p = out;
    p[0] = (uint8_t) (0x80 | blocks);
    p[1] = sender ? RTCP_SR : RTCP_RR;
    wr16(p + 2, (uint16_t) (report_len / 4 - 1));
    wr32(p + 4, our_ssrc);
    size_t off = 8;
    if (sender) {
        wr32(p + off, (uint32_t) (ntp_now >> 32));
        wr32(p + off + 4, (uint32_t) ntp_now);
        wr32(p + off + 8, rtp_now);
        wr32(p + off + 12, packets_sent);
        wr32(p + off + 16, octets_sent);
        off += SR_SENDER_INFO_BYTES;
    }
    if (blocks)
        off += write_block(p + off, rx, now_ms);

    uint8_t *s = out + off;
    memset(s, 0, sdes_len);
    s[0] = 0x81; /* one chunk */
    s[1] = RTCP_SDES;
    wr16(s + 2, (uint16_t) (sdes_len / 4 - 1));
    wr32(s + 4, our_ssrc);
    s[8] = SDES_CNAME;
    s[9] = (uint8_t) cname_len;
    memcpy(s + 10, cname, cname_len);
    return off + sdes_len;
}

double
md_rtcp_rtt_ms(const md_rtcp_report_block_t *block, uint64_t ntp_arrival)
{
    if (block == NULL || block->lsr == 0)
        return 0;
    /* RFC 3550 section 6.4.1: RTT = A - LSR - DLSR, in units of 1/65536 s, where A is the
     * middle 32 bits of the arrival time. */
    uint32_t a = (uint32_t) (ntp_arrival >> 16);
    uint32_t rtt = a - block->lsr - block->dlsr;
    if ((int32_t) rtt < 0)
        return 0; /* clocks or a forged block: no meaningful value */
    return (double) rtt * 1000.0 / 65536.0;
}

uint64_t
md_ntp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t sec = (uint64_t) ts.tv_sec + NTP_UNIX_OFFSET;
    uint64_t frac = ((uint64_t) ts.tv_nsec << 32) / 1000000000ull;
    return (sec << 32) | (frac & 0xffffffffu);
}
