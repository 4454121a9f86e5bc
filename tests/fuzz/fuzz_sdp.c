/*
 * Fuzz target: SDP offer/answer (md_sdp): libosip2's sdp_message_parse with our bounds, the
 * negotiation of an offer, the answer written for it, an answer read back against our
 * preferences, and an offer pinned to the agreed codec.
 *
 *   libFuzzer: make fuzz        replay: linked with replay_main.c, run by make test
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../services/media/md_sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const md_codec_id_t codecs[] = {MD_CODEC_PCMU, MD_CODEC_PCMA, MD_CODEC_G722,
                                           MD_CODEC_OPUS};
    md_sdp_prefs_t prefs = {codecs, 4, true, true, false};
    md_sdp_t *sdp = malloc(sizeof(md_sdp_t));
    md_sdp_neg_t neg;
    char out[MD_SDP_MAX_BYTES];
    if (md_sdp_parse((const char *) data, size, sdp) == LC_OK) {
        md_sdp_local_t local = {
            .addr = "127.0.0.1", .rtp_port = 20000, .sess_id = 1, .sess_version = 2};
        if (md_sdp_negotiate(sdp, &prefs, &neg) == LC_OK) {
            local.dir = neg.local_dir;
            (void) md_sdp_write_answer(sdp, &neg, &local, out, sizeof(out));
            (void) md_sdp_write_offer(&prefs, &neg, &local, out, sizeof(out));
        }
        if (md_sdp_accept_answer(sdp, &prefs, &neg) == LC_OK)
            (void) md_sdp_write_offer(&prefs, NULL, &local, out, sizeof(out));
    }
    free(sdp);
    return 0;
}
