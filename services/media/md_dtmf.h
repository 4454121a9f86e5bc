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
    uint8_t volume; /* 0..63 (dBm0, negated) */
    uint16_t duration; /* in RTP timestamp units */
} md_dtmf_payload_t;

lc_status_t md_dtmf_parse(const uint8_t *payload, size_t len, md_dtmf_payload_t *out);
/* Writes 4 bytes; returns 4. */
size_t md_dtmf_build(const md_dtmf_payload_t *p, uint8_t out[4]);
/* '0'..'9','*','#','A'..'D' for events 0..15, 0 otherwise. */
char md_dtmf_event_char(uint8_t event);
/* Inverse; -1 for a character that is not a DTMF digit. */
int md_dtmf_char_event(char digit);

typedef struct {
    uint32_t last_timestamp;
    bool active;
    bool have_last;
    uint8_t event;
} md_dtmf_rx_t;

typedef enum {
    MD_DTMF_NONE = 0,
    MD_DTMF_DIGIT_START, /* a new key press: *digit set */
    MD_DTMF_DIGIT_END,   /* the press ended: *digit and *duration_ms set */
} md_dtmf_rx_result_t;

/* Feeds one telephone-event packet (its RTP timestamp identifies the event). */
md_dtmf_rx_result_t md_dtmf_rx_packet(md_dtmf_rx_t *rx, uint32_t rtp_timestamp,
                                      const uint8_t *payload, size_t len, int clock_hz,
                                      char *digit, int *duration_ms);

#endif
