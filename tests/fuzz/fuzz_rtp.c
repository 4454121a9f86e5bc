/*
 * Fuzz target: what an RTP packet from the network goes through before and after the jitter
 * buffer: md_rtp_parse, SRTP unprotect (libsrtp2 behind md_srtp), the jitter buffer, and the
 * decoder of the payload type (PCMU 0, PCMA 8, G722 9, opus 96) including its concealment.
 *
 *   libFuzzer: make fuzz        replay: linked with replay_main.c, run by make test
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../services/media/md_codec.h"
#include "../../services/media/md_jitter.h"
#include "../../services/media/md_rtp.h"
#include "../../services/media/md_srtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
decode(const md_rtp_packet_t *p)
{
    md_codec_id_t id;
    switch (p->payload_type) {
    case 0:
        id = MD_CODEC_PCMU;
        break;
    case 8:
        id = MD_CODEC_PCMA;
        break;
    case 9:
        id = MD_CODEC_G722;
        break;
    case 96:
        id = MD_CODEC_OPUS;
        break;
    default:
        return;
    }
    md_decoder_t *dec = NULL;
    if (md_decoder_create(id, NULL, &dec) != LC_OK)
        __builtin_trap();
    int16_t pcm[MD_MAX_FRAME_SAMPLES * 2];
    int n = md_decode(dec, p->payload, p->payload_len, pcm, MD_MAX_FRAME_SAMPLES * 2);
    if (n > MD_MAX_FRAME_SAMPLES * 2)
        __builtin_trap();
    /* Concealment after a hostile payload, with it as the FEC source. */
    md_decode_plc(dec, p->payload, p->payload_len, pcm, 320);
    md_decoder_destroy(dec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MD_RTP_MAX_PACKET_BYTES)
        return 0;
    md_rtp_packet_t p;
    if (md_rtp_parse(data, size, &p) == LC_OK) {
        if (p.payload + p.payload_len > data + size || p.payload < data || p.csrc_count > 15 ||
            (p.has_extension && p.extension + p.extension_len > data + size))
            __builtin_trap();
        md_jitter_t *jb = NULL;
        if (md_jitter_create(NULL, &jb) != LC_OK)
            __builtin_trap();
        /* The same packet at three arrival times and sequence numbers around it. */
        for (int i = 0; i < 3; i++) {
            md_jitter_put(jb, (uint16_t) (p.seq + i * 7), p.timestamp + (uint32_t) i * 160, p.ssrc,
                          p.marker, p.payload, p.payload_len, i * 20);
            const uint8_t *out, *next;
            size_t len, next_len;
            md_jitter_get(jb, 40 + i * 20, &out, &len, &next, &next_len);
        }
        md_jitter_destroy(jb);
        decode(&p);
    }

    /* As SRTP: a fixed key; the packet almost never authenticates, which is the point. */
    static const md_srtp_crypto_t key = {
        .tag = 1,
        .suite = MD_SRTP_AES_CM_128_HMAC_SHA1_80,
        .key_salt = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                     16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30},
    };
    /* One session for the whole run: a forged packet never authenticates, so it cannot
     * change the session's state (and creating one per input would dominate the run). */
    static md_srtp_t *in = NULL;
    if (in == NULL && md_srtp_create(&key, MD_SRTP_INBOUND, &in) != LC_OK)
        __builtin_trap();
    _Alignas(4) uint8_t buf[MD_RTP_MAX_PACKET_BYTES + MD_SRTP_TRAILER_ROOM];
    memcpy(buf, data, size);
    size_t len = size;
    if (md_srtp_unprotect_rtp(in, buf, &len) == LC_OK && len > size)
        __builtin_trap();
    return 0;
}
