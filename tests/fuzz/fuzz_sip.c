/*
 * Fuzz target: what a SIP message from the network goes through in voxi-media: libosip2's
 * parser and our validation (md_sip_msg_parse), the header helpers the UA core uses, the
 * response built from it and serialised, a UAS dialog made from it with an in-dialog BYE,
 * digest verification of its Authorization, and the SDP offer in its body; for bytes
 * libosip2 cannot read, the fallback scan that still answers them.
 *
 *   libFuzzer: make fuzz        replay: linked with replay_main.c, run by make test
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/media/md_sdp.h"
#include "../../services/media/md_sip_acl.h"
#include "../../services/media/md_sip_dialog.h"
#include "../../services/media/md_sip_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static md_sip_acl_t *acl;

static void
serialize_free(osip_message_t *m)
{
    if (m == NULL)
        return;
    char *text = NULL;
    size_t len = 0;
    md_sip_serialize(m, &text, &len);
    free(text);
    osip_message_free(m);
}

static void
use_request(const md_sip_msg_t *m, const md_sip_reject_t *rej)
{
    serialize_free(md_sip_response_create(m, rej->code ? rej->code : 200, NULL, "fuzztag"));
    (void) md_sip_msg_header_has_token(m, "require", "100rel");
    (void) md_sip_msg_ruri_user(m);
    if (rej->code != 0)
        return;
    md_sip_peer_t peer;
    memset(&peer, 0, sizeof(peer));
    md_sip_addr_from_ip("127.0.0.1", 5060, &peer.addr);
    md_sip_dialog_t *d = md_sip_dialog_create_uas(m, "fuzztag", &peer);
    serialize_free(md_sip_dialog_request(d, "BYE", "<sip:voxi@127.0.0.1:5060>", 0));
    (void) md_sip_dialog_check_cseq(d, m);
    md_sip_dialog_refresh_target(d, m);
    md_sip_peer_t hop;
    md_sip_dialog_next_hop(d, &hop);
    md_sip_dialog_destroy(d);
    char challenge[256], user[64];
    (void) md_sip_acl_check(acl, m, 1000, challenge, sizeof(challenge), user, sizeof(user));
    if (m->body) {
        md_sdp_t *sdp = malloc(sizeof(md_sdp_t));
        static const md_codec_id_t codecs[] = {MD_CODEC_PCMU, MD_CODEC_PCMA, MD_CODEC_G722,
                                               MD_CODEC_OPUS};
        md_sdp_prefs_t prefs = {codecs, 4, true, true, false};
        md_sdp_neg_t neg;
        if (md_sdp_parse(m->body, m->body_len, sdp) == LC_OK)
            (void) md_sdp_negotiate(sdp, &prefs, &neg);
        free(sdp);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    md_sip_init();
    if (acl == NULL) {
        md_sip_acl_opts_t o = {"127.0.0.0/8", "alice:secret", "voxi", 10};
        char err[64];
        md_sip_acl_create(&o, &acl, err, sizeof(err));
    }
    md_sip_msg_t *m = NULL;
    md_sip_reject_t rej;
    if (md_sip_msg_parse((const char *) data, size, &m, &rej) == LC_ERR_INVALID) {
        /* the fallback scan that answers requests libosip2 cannot read (md_sip_fallback.c) */
        char out[4096];
        int code;
        (void) md_sip_fallback_response((const char *) data, size, out, sizeof(out), &code);
    }
    if (m && m->is_request)
        use_request(m, &rej);
    md_sip_msg_destroy(m);
    return 0;
}
