/*
 * md_rtcp: RTCP sender/receiver reports (RFC 3550 section 6.4), parsed and built, and the
 * per-stream statistics they carry: packets/octets sent, fraction and cumulative lost,
 * interarrival jitter, round-trip time from LSR/DLSR (section 6.4.1).
 *
 * Parsing walks a compound packet without reading past it (each header's length checked)
 * and ignores report types it does not know (SDES, BYE, APP are skipped).
 * Threads: pure functions and per-stream state; one thread per stream.
 */
#ifndef MD_RTCP_H
#define MD_RTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

typedef struct {
    uint32_t ssrc;         /* source reported on */
    uint8_t fraction_lost; /* /256 */
    int32_t cumulative_lost;
    uint32_t highest_seq; /* extended */
    uint32_t jitter;      /* timestamp units */
    uint32_t lsr;         /* middle 32 bits of the NTP time of the last SR */
    uint32_t dlsr;        /* 1/65536 s */
} md_rtcp_report_block_t;

typedef struct {
    bool has_sr;
    uint32_t sender_ssrc;
    uint64_t ntp_time; /* SR only */
    uint32_t rtp_time;
    uint32_t packets_sent;
    uint32_t octets_sent;
    int nblocks;
    md_rtcp_report_block_t blocks[4]; /* the first four report blocks */
    bool has_bye;
} md_rtcp_info_t;

/* LC_OK when every packet of the compound is well formed (RFC 3550 A.2: version 2, lengths
 * adding up to the datagram, padding only in the last packet, report blocks inside their
 * packet); LC_ERR_INVALID otherwise (*out is then unspecified). At most
 * MD_RTCP_MAX_COMPOUND packets are walked. */
#define MD_RTCP_MAX_COMPOUND 32
lc_status_t md_rtcp_parse(const uint8_t *buf, size_t len, md_rtcp_info_t *out);

/* Receive-side statistics of one incoming stream, updated per RTP packet (RFC 3550 A.1,
 * A.3, A.8). */
typedef struct {
    bool started;
    uint32_t ssrc;
    uint16_t max_seq;
    uint32_t cycles;
    uint32_t base_seq;
    uint32_t received;
    uint32_t expected_prior, received_prior;
    double jitter; /* timestamp units */
    int64_t last_transit;
    uint32_t last_sr_ntp_mid; /* from the peer's last SR */
    int64_t last_sr_arrival_ms;
    uint32_t bad_seq; /* RFC 3550 A.1: a jump is believed on the next packet in line */
} md_rtcp_rx_stats_t;

/* Zero-initialise the struct to start; a new SSRC restarts the statistics (A.1 init_seq).
 * A packet far outside the sequence window (A.1 MAX_DROPOUT / MAX_MISORDER) is not counted
 * unless the next one follows it, which means the sender restarted its sequence. */
void md_rtcp_rx_update(md_rtcp_rx_stats_t *st, uint32_t ssrc, uint16_t seq, uint32_t rtp_ts,
                       int64_t arrival_ms, int clock_hz);

/* Remembers the peer's sender report (when info->has_sr) so that our next report block
 * echoes it as LSR with the DLSR since arrival_ms (RFC 3550 section 6.4.1). */
void md_rtcp_rx_note_sr(md_rtcp_rx_stats_t *st, const md_rtcp_info_t *info, int64_t arrival_ms);

/* Cumulative loss (RFC 3550 A.3, clamped to 24 bits signed) and the extended highest
 * sequence number, without touching the interval counters md_rtcp_build_report advances.
 * For per-call stats and events. */
int32_t md_rtcp_rx_cumulative_lost(const md_rtcp_rx_stats_t *st);
uint32_t md_rtcp_rx_extended_max(const md_rtcp_rx_stats_t *st);

/* Builds an SR (when we sent since the last report) or RR with one report block for `rx`
 * (none when rx is NULL or has seen no packet) plus an SDES CNAME (cname: up to 255 bytes;
 * NULL or "" sends "voxi"); returns its length or 0 if out_size is too small. Advances rx's
 * interval counters (fraction lost covers the time since the previous report). */
size_t md_rtcp_build_report(uint8_t *out, size_t out_size, uint32_t our_ssrc, bool sender,
                            uint64_t ntp_now, uint32_t rtp_now, uint32_t packets_sent,
                            uint32_t octets_sent, md_rtcp_rx_stats_t *rx, int64_t now_ms,
                            const char *cname);

/* Round-trip time in ms from a report block that echoes our SR (0 if it carries none). */
double md_rtcp_rtt_ms(const md_rtcp_report_block_t *block, uint64_t ntp_arrival);

/* NTP 64-bit timestamp of the wall clock. */
uint64_t md_ntp_now(void);

#endif
