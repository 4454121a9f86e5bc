/*
 * md_dtmf: RFC 4733 telephone-event payloads (section 2.3), the receiver's one-digit-per-
 * press logic and the sender's packet sequence. See md_dtmf.h.
 */
#include "md_dtmf.h"

#include <string.h>

static const char event_chars[16] = "0123456789*#ABCD";

lc_status_t
md_dtmf_parse(const uint8_t *payload, size_t len, md_dtmf_payload_t *out)
{
    /* RFC 4733 section 2.3: event (8) | E (1) R (1) volume (6) | duration (16). A longer
     * payload may carry more events (section 2.5.1.5); the first is the current one. */
    if (payload == NULL || out == NULL || len < 4)
        return LC_ERR_INVALID;
    out->event = payload[0];
    out->end = (payload[1] & 0x80) != 0;
    out->volume = payload[1] & 0x3f;
    out->duration = (uint16_t) ((payload[2] << 8) | payload[3]);
    return LC_OK;
}

size_t
md_dtmf_build(const md_dtmf_payload_t *p, uint8_t out[4])
{
    out[0] = p->event;
    out[1] = (uint8_t) ((p->end ? 0x80 : 0) | (p->volume & 0x3f)); /* R bit 0 */
    out[2] = (uint8_t) (p->duration >> 8);
    out[3] = (uint8_t) p->duration;
    return 4;
}

char
md_dtmf_event_char(uint8_t event)
{
    return event < 16 ? event_chars[event] : 0;
}

int
md_dtmf_char_event(char digit)
{
    if (digit >= 'a' && digit <= 'd')
        digit = (char) (digit - 'a' + 'A');
    for (int i = 0; i < 16; i++)
        if (event_chars[i] == digit && digit != 0)
            return i;
    return -1;
}

static int
units_to_ms(uint32_t units, int clock_hz)
{
    return (int) ((uint64_t) units * 1000 / (uint64_t) clock_hz);
}

md_dtmf_rx_result_t
md_dtmf_rx_packet(md_dtmf_rx_t *rx, uint32_t rtp_timestamp, const uint8_t *payload, size_t len,
                  int clock_hz, char *digit, int *duration_ms)
{
    md_dtmf_payload_t p;
    if (rx == NULL || clock_hz <= 0 || md_dtmf_parse(payload, len, &p) != LC_OK)
        return MD_DTMF_NONE;
    char c = md_dtmf_event_char(p.event);
    if (c == 0)
        return MD_DTMF_NONE; /* not a DTMF event (tones, flash, ...) */

    if (!rx->have_last || rtp_timestamp != rx->last_timestamp) {
        /* A new event has a new timestamp (section 2.5.2.1). One older than the current
         * event is a straggler of a press already reported. */
        if (rx->have_last && (int32_t) (rtp_timestamp - rx->last_timestamp) < 0)
            return MD_DTMF_NONE;
        rx->have_last = true;
        rx->last_timestamp = rtp_timestamp;
        rx->event = p.event;
        rx->active = !p.end;
        rx->end_pending = p.end;
        rx->pending_duration_ms = units_to_ms(p.duration, clock_hz);
        if (digit != NULL)
            *digit = c;
        return MD_DTMF_DIGIT_START;
    }

    if (p.event != rx->event)
        return MD_DTMF_NONE; /* same timestamp, other event: not a sequence we follow */
    if (rx->active && p.end) {
        rx->active = false;
        if (digit != NULL)
            *digit = c;
        if (duration_ms != NULL)
            *duration_ms = units_to_ms(p.duration, clock_hz);
        return MD_DTMF_DIGIT_END;
    }
    if (rx->end_pending && p.end) {
        rx->end_pending = false;
        if (digit != NULL)
            *digit = c;
        if (duration_ms != NULL)
            *duration_ms = rx->pending_duration_ms;
        return MD_DTMF_DIGIT_END;
    }
    return MD_DTMF_NONE; /* an update, or a retransmitted end */
}

lc_status_t
md_dtmf_tx_start(md_dtmf_tx_t *tx, char digit, int duration_ms, int ptime_ms, int clock_hz,
                 uint32_t timestamp, uint8_t volume)
{
    if (tx == NULL)
        return LC_ERR_INVALID;
    int ev = md_dtmf_char_event(digit);
    if (ev < 0 || duration_ms < 40 || duration_ms > 5000 || ptime_ms < 10 || ptime_ms > 60 ||
        clock_hz < 8000 || clock_hz > 48000 || volume > 63)
        return LC_ERR_INVALID;
    memset(tx, 0, sizeof(*tx));
    tx->event = (uint8_t) ev;
    tx->volume = volume;
    tx->timestamp = timestamp;
    tx->step = (uint32_t) (clock_hz / 1000 * ptime_ms);
    uint64_t total = (uint64_t) clock_hz * (uint64_t) duration_ms / 1000;
    tx->total = total > 0xffff ? 0xffff : (uint32_t) total;
    return LC_OK;
}

bool
md_dtmf_tx_done(const md_dtmf_tx_t *tx)
{
    return tx == NULL || tx->ends_sent >= MD_DTMF_TX_END_PACKETS;
}

bool
md_dtmf_tx_next(md_dtmf_tx_t *tx, uint8_t out[4], bool *marker)
{
    if (md_dtmf_tx_done(tx))
        return false;
    md_dtmf_payload_t p = {.event = tx->event, .volume = tx->volume};
    bool first = tx->packets_sent == 0;
    if (!first && tx->ends_sent == 0) {
        tx->elapsed += tx->step;
        if (tx->elapsed > tx->total)
            tx->elapsed = tx->total;
    }
    if (!first && tx->elapsed >= tx->total) {
        p.end = true;
        tx->ends_sent++;
    }
    p.duration = (uint16_t) tx->elapsed;
    md_dtmf_build(&p, out);
    if (marker != NULL)
        *marker = first; /* RFC 4733 section 2.5.1.2: marker on the first packet only */
    tx->packets_sent++;
    return true;
}
