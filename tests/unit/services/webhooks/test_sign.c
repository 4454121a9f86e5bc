/*
 * Standard Webhooks signatures: the specification's published example, a vector computed
 * here independently with OpenSSL's one-shot HMAC(), both signatures during a rotation, and
 * secret generation and decoding.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "../../../../services/webhooks/wh_sign.h"

/* The example of the Standard Webhooks reference libraries' test suites. */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS 1614265330
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void
test_spec_vector(void **state)
{
    (void) state;
    char sig[WH_SIGNATURE_MAX];
    assert_int_equal(
        wh_sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig, sizeof(sig)),
        LC_OK);
    assert_string_equal(sig, SPEC_SIG);
    /* any change to id, timestamp or body changes it */
    assert_int_equal(
        wh_sign(SPEC_SECRET, SPEC_ID, SPEC_TS + 1, SPEC_BODY, strlen(SPEC_BODY), sig, sizeof(sig)),
        LC_OK);
    assert_string_not_equal(sig, SPEC_SIG);
    assert_int_equal(
        wh_sign(SPEC_SECRET, "msg_other", SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig, sizeof(sig)),
        LC_OK);
    assert_string_not_equal(sig, SPEC_SIG);
    assert_int_equal(
        wh_sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY) - 1, sig, sizeof(sig)),
        LC_OK);
    assert_string_not_equal(sig, SPEC_SIG);
}

/* HMAC-SHA256 of "id.ts.body" with OpenSSL's one-shot API, base64'ed: written apart from
 * wh_sign's EVP_MAC streaming code on purpose. */
static void
independent(const uint8_t *key, size_t key_len, const char *id, long long ts, const char *body,
            char *out)
{
    char content[512];
    int n = snprintf(content, sizeof(content), "%s.%lld.%s", id, ts, body);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key, (int) key_len, (const unsigned char *) content, (size_t) n, mac,
         &mac_len);
    assert_int_equal(mac_len, 32);
    strcpy(out, "v1,");
    EVP_EncodeBlock((unsigned char *) out + 3, mac, 32);
}

static void
test_generated_secret_against_openssl(void **state)
{
    (void) state;
    char secret[WH_SECRET_TEXT_MAX], other[WH_SECRET_TEXT_MAX];
    wh_secret_generate(secret, sizeof(secret));
    wh_secret_generate(other, sizeof(other));
    assert_memory_equal(secret, "whsec_", 6);
    assert_string_not_equal(secret, other);
    assert_int_equal(strlen(secret), 6 + 44); /* base64 of 32 bytes */
    uint8_t key[WH_SECRET_MAX_KEY_BYTES];
    size_t key_len = 0;
    assert_int_equal(wh_secret_decode(secret, key, sizeof(key), &key_len), LC_OK);
    assert_int_equal(key_len, WH_SECRET_KEY_BYTES);

    const char *body = "{\"id\":\"evt_1\",\"type\":\"call.ended\",\"data\":{\"x\":\"\xc3\xa9\"}}";
    char want[64], got[WH_SIGNATURE_MAX];
    independent(key, key_len, "evt_1", 1700000000, body, want);
    assert_int_equal(wh_sign(secret, "evt_1", 1700000000, body, strlen(body), got, sizeof(got)),
                     LC_OK);
    assert_string_equal(got, want);
    /* the other secret does not produce it */
    assert_int_equal(wh_sign(other, "evt_1", 1700000000, body, strlen(body), got, sizeof(got)),
                     LC_OK);
    assert_string_not_equal(got, want);
}

static void
test_rotation_header(void **state)
{
    (void) state;
    char old[WH_SECRET_TEXT_MAX];
    wh_secret_generate(old, sizeof(old));
    char header[WH_SIGNATURE_HEADER_MAX], a[WH_SIGNATURE_MAX], b[WH_SIGNATURE_MAX];
    assert_int_equal(wh_sign_header(SPEC_SECRET, old, SPEC_ID, SPEC_TS, SPEC_BODY,
                                    strlen(SPEC_BODY), header, sizeof(header)),
                     LC_OK);
    assert_int_equal(
        wh_sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), a, sizeof(a)), LC_OK);
    assert_int_equal(wh_sign(old, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), b, sizeof(b)),
                     LC_OK);
    char want[2 * WH_SIGNATURE_MAX + 2];
    snprintf(want, sizeof(want), "%s %s", a, b);
    assert_string_equal(header, want);
    /* outside a rotation: one signature */
    assert_int_equal(wh_sign_header(SPEC_SECRET, NULL, SPEC_ID, SPEC_TS, SPEC_BODY,
                                    strlen(SPEC_BODY), header, sizeof(header)),
                     LC_OK);
    assert_string_equal(header, SPEC_SIG);
    assert_int_equal(wh_sign_header(SPEC_SECRET, "", SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY),
                                    header, sizeof(header)),
                     LC_OK);
    assert_string_equal(header, SPEC_SIG);
}

static void
test_bad_secrets(void **state)
{
    (void) state;
    uint8_t key[WH_SECRET_MAX_KEY_BYTES];
    size_t len;
    const char *bad[] = {
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       /* no prefix */
        "whsec_",                                 /* empty */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  /* not a multiple of 4 */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La*aSw", /* bad character */
        "whsec_MfKQ9r8GKYq=TwjUPD8ILPZIo2LaLaSw", /* padding in the middle */
        "whsec_AAAAAAAAAAAAAAAA",                 /* 12 bytes: too short */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw " /* trailing space */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(wh_secret_decode(bad[i], key, sizeof(key), &len), LC_ERR_INVALID);
    char sig[WH_SIGNATURE_MAX];
    assert_int_equal(wh_sign("nope", "id", 1, "x", 1, sig, sizeof(sig)), LC_ERR_INVALID);
    /* padded secrets decode to the right length */
    assert_int_equal(wh_secret_decode("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAA==", key, sizeof(key), &len),
                     LC_OK);
    assert_int_equal(len, 19);
    assert_int_equal(wh_secret_decode(SPEC_SECRET, key, sizeof(key), &len), LC_OK);
    assert_int_equal(len, 24);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vector),
        cmocka_unit_test(test_generated_secret_against_openssl),
        cmocka_unit_test(test_rotation_header),
        cmocka_unit_test(test_bad_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
