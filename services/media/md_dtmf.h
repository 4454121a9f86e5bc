/*
 * md_dtmf: RFC 4733 telephone-events, received and sent.
 *
 * Receive: one md_dtmf_rx_t per call turns the stream of event packets (with their
 * retransmitted end packets, RFC 4733 section 2.5.1.4) into exactly one digit per key press,
 * reported when it starts, with its duration when it ends. Events 0-15 map to
 * "0123456789*#ABCD"; others are ignored. Payloads shorter than 4 bytes are rejected.
 * Send: md_dtmf_tx_* produce the packets for one digit: start (marker), updates every
 * ptime, three end packets, all with the digit's start timestamp.
 *
 * Threads: one thread per instance.
 */
#ifndef MD_DTMF_H
#define MD_DTMF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

typedef struct {
    uint8_t event; /* 0..255 */
    bool end;
    uint8_t volume;    /* 0..63 (dBm0, negated) */
    uint16_t duration; /* in RTP timestamp units */
} md_dtmf_payload_t;

lc_status_t md_dtmf_parse(const uint8_t *payload, size_t len, md_dtmf_payload_t *out);
/* Writes 4 bytes; returns 4. */
size_t md_dtmf_build(const md_dtmf_payload_t *p, uint8_t out[4]);
/* '0'..'9','*','#','A'..'D' for events 0..15, 0 otherwise. */
char md_dtmf_event_char(uint8_t event);
/* Inverse; -1 for a character that is not a DTMF digit. */
int md_dtmf_char_event(char digit);

/* Zero-initialise (md_dtmf_rx_t rx = {0}) to start. */
typedef struct {
    uint32_t last_timestamp;
    bool active;
    bool have_last;
    uint8_t event;
    bool end_pending; /* the press was first seen by its end packet: END on the next copy */
    int pending_duration_ms;
} md_dtmf_rx_t;

typedef enum {
    MD_DTMF_NONE = 0,
    MD_DTMF_DIGIT_START, /* a new key press: *digit set */
    MD_DTMF_DIGIT_END,   /* the press ended: *digit and *duration_ms set */
} md_dtmf_rx_result_t;

/* Feeds one telephone-event packet (its RTP timestamp identifies the event, RFC 4733
 * section 2.5.2.1). Packets of an older event (timestamp before the current one, serial
 * arithmetic) are ignored, so a reordered retransmission never counts a press twice. When
 * the start and updates of a press were lost and its first packet is an end packet, that
 * packet reports DIGIT_START and the next copy of the end (there are three, section 2.5.1.4)
 * reports DIGIT_END. clock_hz: the telephone-event RTP clock (8000, or 48000 beside opus). */
md_dtmf_rx_result_t md_dtmf_rx_packet(md_dtmf_rx_t *rx, uint32_t rtp_timestamp,
                                      const uint8_t *payload, size_t len, int clock_hz, char *digit,
                                      int *duration_ms);

/* Send side: the packets of one digit, RFC 4733 section 2.5.1. The caller sends one packet
 * per ptime from md_dtmf_tx_next, each with the next RTP sequence number of the stream and
 * the timestamp md_dtmf_tx_start was given (the digit's start), and sets the marker bit when
 * told. The first packet has duration 0 (as SIPp's captures and Asterisk send it), each
 * update adds one ptime (2.5.1.3), and when the digit's duration is reached the end packet
 * (E bit, final duration) goes out three times (2.5.1.4). Durations longer than 65535
 * timestamp units are cut to that (no segments, 2.5.1.3). clock_hz 8000..48000. */
typedef struct {
    uint8_t event;
    uint8_t volume;
    uint32_t timestamp;
    uint32_t step;    /* ptime in timestamp units */
    uint32_t total;   /* the digit's duration in timestamp units */
    uint32_t elapsed; /* duration carried by the last packet */
    int packets_sent;
    int ends_sent;
} md_dtmf_tx_t;

#define MD_DTMF_TX_END_PACKETS 3

/* digit: '0'..'9', '*', '#', 'A'..'D' (lowercase accepted). duration_ms 40..5000,
 * ptime_ms 10..60, volume 0..63 (10 is usual: -10 dBm0). LC_ERR_INVALID otherwise. */
lc_status_t md_dtmf_tx_start(md_dtmf_tx_t *tx, char digit, int duration_ms, int ptime_ms,
                             int clock_hz, uint32_t timestamp, uint8_t volume);
/* Writes the next payload (4 bytes) and whether it carries the marker bit; false when the
 * digit is done (nothing written). */
bool md_dtmf_tx_next(md_dtmf_tx_t *tx, uint8_t out[4], bool *marker);
bool md_dtmf_tx_done(const md_dtmf_tx_t *tx);

#endif
