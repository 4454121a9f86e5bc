/* Unit tests: md_sdp parsing, RFC 3264 negotiation, answers and offers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/media/md_sdp.h"
#include "../../../../services/media/md_sip_msg.h"

static const md_codec_id_t all_codecs[] = {MD_CODEC_PCMU, MD_CODEC_PCMA, MD_CODEC_G722,
                                           MD_CODEC_OPUS};
static const md_sdp_prefs_t prefs = {all_codecs, 4, true, true, false};

static md_sdp_t *
parse_ok(const char *text)
{
    md_sdp_t *sdp = malloc(sizeof(md_sdp_t));
    assert_int_equal(md_sdp_parse(text, strlen(text), sdp), LC_OK);
    return sdp;
}

static const char basic[] = "v=0\r\n"
                            "o=alice 2890844526 2890844527 IN IP4 192.0.2.10\r\n"
                            "s=-\r\n"
                            "c=IN IP4 192.0.2.10\r\n"
                            "t=0 0\r\n"
                            "m=audio 49170 RTP/AVP 8 0 101\r\n"
                            "a=rtpmap:101 telephone-event/8000\r\n"
                            "a=fmtp:101 0-15\r\n"
                            "a=ptime:30\r\n";

static void
test_parse_basic(void **state)
{
    (void) state;
    md_sdp_t *sdp = parse_ok(basic);
    assert_int_equal(sdp->nmedia, 1);
    md_sdp_media_t *m = &sdp->media[0];
    assert_string_equal(m->media, "audio");
    assert_string_equal(m->proto, "RTP/AVP");
    assert_int_equal(m->port, 49170);
    assert_int_equal(m->rtcp_port, 49171);
    assert_string_equal(m->addr, "192.0.2.10");
    assert_int_equal(m->ptime_ms, 30);
    assert_int_equal(m->nformats, 3);
    /* static payload types get their RFC 3551 names without rtpmap */
    assert_string_equal(m->formats[0].name, "PCMA");
    assert_int_equal(m->formats[0].clock_hz, 8000);
    assert_string_equal(m->formats[2].name, "telephone-event");
    assert_string_equal(m->formats[2].fmtp, "0-15");
    assert_int_equal(sdp->sess_version, 2890844527ull);
    free(sdp);
}

static void
test_negotiate_follows_offer_order(void **state)
{
    (void) state;
    md_sdp_t *sdp = parse_ok(basic);
    md_sdp_neg_t neg;
    assert_int_equal(md_sdp_negotiate(sdp, &prefs, &neg), LC_OK);
    assert_int_equal(neg.codec, MD_CODEC_PCMA); /* the offerer's first choice */
    assert_int_equal(neg.pt, 8);
    assert_int_equal(neg.te_pt, 101);
    assert_int_equal(neg.te_clock_hz, 8000);
    assert_int_equal(neg.params.ptime_ms, 20);
    assert_int_equal(neg.local_dir, MD_SDP_SENDRECV);
    assert_false(neg.remote_hold);
    assert_string_equal(neg.remote_addr, "192.0.2.10");
    assert_int_equal(neg.remote_rtp_port, 49170);

    /* with only PCMU allowed, PCMU is taken */
    md_codec_id_t only_pcmu[] = {MD_CODEC_PCMU};
    md_sdp_prefs_t p2 = {only_pcmu, 1, false, false, false};
    assert_int_equal(md_sdp_negotiate(sdp, &p2, &neg), LC_OK);
    assert_int_equal(neg.codec, MD_CODEC_PCMU);
    assert_int_equal(neg.te_pt, -1);
    /* nothing acceptable: 488 territory */
    md_codec_id_t only_opus[] = {MD_CODEC_OPUS};
    md_sdp_prefs_t p3 = {only_opus, 1, true, false, false};
    assert_int_equal(md_sdp_negotiate(sdp, &p3, &neg), LC_ERR_NOT_FOUND);
    free(sdp);
}

static void
test_opus_and_g722(void **state)
{
    (void) state;
    const char *offer =
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
        "t=0 0\r\nm=audio 4000 RTP/AVP 111 112 9 110\r\n"
        "a=rtpmap:111 opus/48000\r\n" /* without /2: not RFC 7587 */
        "a=rtpmap:112 opus/48000/2\r\n"
        "a=fmtp:112 useinbandfec=1; maxplaybackrate=16000;maxaveragebitrate=24000\r\n"
        "a=rtpmap:9 G722/8000\r\n"
        "a=rtpmap:110 telephone-event/48000\r\n";
    md_sdp_t *sdp = parse_ok(offer);
    md_sdp_neg_t neg;
    assert_int_equal(md_sdp_negotiate(sdp, &prefs, &neg), LC_OK);
    assert_int_equal(neg.codec, MD_CODEC_OPUS);
    assert_int_equal(neg.pt, 112);
    assert_true(neg.params.opus_inband_fec);
    assert_int_equal(neg.params.opus_max_playback_rate_hz, 16000);
    assert_int_equal(neg.params.opus_bitrate_bps, 24000);
    assert_int_equal(neg.te_pt, 110);
    assert_int_equal(neg.te_clock_hz, 48000);
    char out[2048];
    md_sdp_local_t local = {"198.51.100.5", 20000, 7, 8, MD_SDP_SENDRECV, NULL};
    size_t n = md_sdp_write_answer(sdp, &neg, &local, out, sizeof(out));
    assert_true(n > 0);
    assert_non_null(strstr(out, "m=audio 20000 RTP/AVP 112 110\r\n"));
    assert_non_null(strstr(out, "a=rtpmap:112 opus/48000/2\r\n"));
    assert_non_null(strstr(out, "a=fmtp:112 maxplaybackrate=16000"));
    assert_non_null(strstr(out, "a=rtpmap:110 telephone-event/48000\r\n"));
    assert_non_null(strstr(out, "o=voxi 7 8 IN IP4 198.51.100.5\r\n"));
    assert_non_null(strstr(out, "c=IN IP4 198.51.100.5\r\n"));
    free(sdp);

    /* G722 only */
    md_codec_id_t g722[] = {MD_CODEC_G722};
    md_sdp_prefs_t p = {g722, 1, true, false, false};
    sdp = parse_ok(offer);
    assert_int_equal(md_sdp_negotiate(sdp, &p, &neg), LC_OK);
    assert_int_equal(neg.codec, MD_CODEC_G722);
    assert_int_equal(neg.pt, 9);
    free(sdp);
}

static void
test_directions_and_hold(void **state)
{
    (void) state;
    struct {
        const char *attr;
        const char *conn;
        md_sdp_dir_t answer;
        bool hold;
    } cases[] = {
        {"a=sendonly\r\n", "192.0.2.1", MD_SDP_RECVONLY, true},
        {"a=recvonly\r\n", "192.0.2.1", MD_SDP_SENDONLY, false},
        {"a=inactive\r\n", "192.0.2.1", MD_SDP_INACTIVE, true},
        {"", "0.0.0.0", MD_SDP_SENDRECV, true}, /* RFC 2543 hold */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char offer[512];
        snprintf(offer, sizeof(offer),
                 "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
                 "m=audio 4000 RTP/AVP 0\r\n%s",
                 cases[i].conn, cases[i].attr);
        md_sdp_t *sdp = parse_ok(offer);
        md_sdp_neg_t neg;
        assert_int_equal(md_sdp_negotiate(sdp, &prefs, &neg), LC_OK);
        assert_int_equal(neg.local_dir, cases[i].answer);
        assert_int_equal(neg.remote_hold, cases[i].hold);
        char out[1024];
        md_sdp_local_t local = {"192.0.2.9", 20002, 1, 1, neg.local_dir, NULL};
        assert_true(md_sdp_write_answer(sdp, &neg, &local, out, sizeof(out)) > 0);
        char want[32];
        snprintf(want, sizeof(want), "a=%s\r\n", md_sdp_dir_name(cases[i].answer));
        assert_non_null(strstr(out, want));
        free(sdp);
    }
    /* a session-level direction applies to media without its own */
    md_sdp_t *sdp = parse_ok("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                             "t=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n");
    assert_int_equal(sdp->media[0].dir, MD_SDP_SENDONLY);
    free(sdp);
}

static void
test_rejected_lines_keep_their_place(void **state)
{
    (void) state;
    const char *offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                        "t=0 0\r\n"
                        "m=video 5000 RTP/AVP 31\r\n"
                        "m=audio 4000 RTP/AVP 18\r\n" /* G729: not ours */
                        "m=audio 4002 RTP/AVP 0\r\n"
                        "a=rtcp:4009\r\n"
                        "m=image 6000 udptl t38\r\n";
    md_sdp_t *sdp = parse_ok(offer);
    md_sdp_neg_t neg;
    assert_int_equal(md_sdp_negotiate(sdp, &prefs, &neg), LC_OK);
    assert_int_equal(neg.media_index, 2);
    assert_int_equal(neg.remote_rtp_port, 4002);
    assert_int_equal(neg.remote_rtcp_port, 4009);
    char out[1024];
    md_sdp_local_t local = {"192.0.2.9", 20004, 1, 1, MD_SDP_SENDRECV, NULL};
    assert_true(md_sdp_write_answer(sdp, &neg, &local, out, sizeof(out)) > 0);
    /* RFC 3264 section 6: as many m-lines as offered, the refused ones with port 0 */
    const char *v = strstr(out, "m=video 0 RTP/AVP 31\r\n");
    const char *a1 = strstr(out, "m=audio 0 RTP/AVP 18\r\n");
    const char *a2 = strstr(out, "m=audio 20004 RTP/AVP 0\r\n");
    const char *t = strstr(out, "m=image 0 udptl t38\r\n");
    assert_true(v && a1 && a2 && t && v < a1 && a1 < a2 && a2 < t);
    free(sdp);
}

static void
test_srtp(void **state)
{
    (void) state;
    const char *offer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                        "t=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n"
                        "a=crypto:1 AES_256_CM_HMAC_SHA1_80 "
                        "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzcyAoZGVmaW5lZ\r\n"
                        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 "
                        "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n";
    md_sdp_t *sdp = parse_ok(offer);
    md_sdp_neg_t neg;
    assert_int_equal(md_sdp_negotiate(sdp, &prefs, &neg), LC_OK);
    assert_true(neg.srtp);
    assert_int_equal(neg.remote_crypto.tag, 2); /* the first line we can use */
    assert_int_equal(neg.remote_crypto.suite, MD_SRTP_AES_CM_128_HMAC_SHA1_32);
    char out[1024];
    md_sdp_local_t local = {
        "192.0.2.9",
        20006,
        1,
        1,
        MD_SDP_SENDRECV,
        "2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"};
    assert_true(md_sdp_write_answer(sdp, &neg, &local, out, sizeof(out)) > 0);
    assert_non_null(strstr(out, "m=audio 20006 RTP/SAVP 0\r\n"));
    assert_non_null(strstr(out, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"));
    /* SRTP not allowed: an RTP/SAVP-only offer is not acceptable */
    md_sdp_prefs_t plain = prefs;
    plain.srtp_allowed = false;
    assert_int_equal(md_sdp_negotiate(sdp, &plain, &neg), LC_ERR_NOT_FOUND);
    free(sdp);
}

static void
test_offer_and_answer_round_trip(void **state)
{
    (void) state;
    char offer[2048];
    md_sdp_local_t local = {"192.0.2.9", 20008, 5, 1, MD_SDP_SENDRECV, NULL};
    assert_true(md_sdp_write_offer(&prefs, NULL, &local, offer, sizeof(offer)) > 0);
    assert_non_null(strstr(offer, "m=audio 20008 RTP/AVP 0 8 9 96 101 102\r\n"));
    assert_non_null(strstr(offer, "a=rtpmap:96 opus/48000/2\r\n"));
    assert_non_null(strstr(offer, "a=rtpmap:102 telephone-event/48000\r\n"));
    /* our own offer parses and negotiates (PCMU first) */
    md_sdp_t *sdp = parse_ok(offer);
    md_sdp_neg_t neg;
    assert_int_equal(md_sdp_negotiate(sdp, &prefs, &neg), LC_OK);
    assert_int_equal(neg.codec, MD_CODEC_PCMU);
    free(sdp);
    /* an answer choosing opus */
    sdp = parse_ok("v=0\r\no=- 1 1 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.3\r\nt=0 0\r\n"
                   "m=audio 7000 RTP/AVP 96 102\r\na=rtpmap:96 opus/48000/2\r\n"
                   "a=rtpmap:102 telephone-event/48000\r\na=recvonly\r\n");
    assert_int_equal(md_sdp_accept_answer(sdp, &prefs, &neg), LC_OK);
    assert_int_equal(neg.codec, MD_CODEC_OPUS);
    assert_int_equal(neg.te_pt, 102);
    assert_int_equal(neg.local_dir, MD_SDP_SENDONLY);
    /* a pinned re-offer lists only the codec in use */
    local.sess_version = 2;
    assert_true(md_sdp_write_offer(&prefs, &neg, &local, offer, sizeof(offer)) > 0);
    assert_non_null(strstr(offer, "m=audio 20008 RTP/AVP 96 102\r\n"));
    free(sdp);
    /* an answer refusing the stream */
    sdp = parse_ok("v=0\r\no=- 1 1 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.3\r\nt=0 0\r\n"
                   "m=audio 0 RTP/AVP 0\r\n");
    assert_int_equal(md_sdp_accept_answer(sdp, &prefs, &neg), LC_ERR_NOT_FOUND);
    free(sdp);
    /* too small a buffer */
    assert_int_equal(md_sdp_write_offer(&prefs, NULL, &local, offer, 40), 0);
}

static void
test_malformed(void **state)
{
    (void) state;
    const char *bad[] = {
        "",
        "hello",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
        "m=audio 70000 RTP/AVP 0\r\n", /* port out of range */
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 128\r\n", /* payload type out of range */
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP x\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_sdp_t *sdp = malloc(sizeof(md_sdp_t));
        assert_int_equal(md_sdp_parse(bad[i], strlen(bad[i]), sdp), LC_ERR_INVALID);
        free(sdp);
    }
    /* more m-lines than we keep */
    char many[4096] = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n";
    for (int i = 0; i < MD_SDP_MAX_MEDIA + 1; i++)
        strcat(many, "m=audio 4000 RTP/AVP 0\r\n");
    md_sdp_t *sdp = malloc(sizeof(md_sdp_t));
    assert_int_equal(md_sdp_parse(many, strlen(many), sdp), LC_ERR_INVALID);
    /* a hostname in c= is not used: no acceptable stream */
    const char *host = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 media.example.com\r\n"
                       "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert_int_equal(md_sdp_parse(host, strlen(host), sdp), LC_OK);
    md_sdp_neg_t neg;
    assert_int_equal(md_sdp_negotiate(sdp, &prefs, &neg), LC_ERR_NOT_FOUND);
    free(sdp);
}

int
main(void)
{
    md_sip_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_negotiate_follows_offer_order),
        cmocka_unit_test(test_opus_and_g722),
        cmocka_unit_test(test_directions_and_hold),
        cmocka_unit_test(test_rejected_lines_keep_their_place),
        cmocka_unit_test(test_srtp),
        cmocka_unit_test(test_offer_and_answer_round_trip),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
