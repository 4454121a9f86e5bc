/*
 * Unit tests: JWT verification. Tokens are made here with OpenSSL (HMAC-SHA256 and an RSA
 * key generated per run), so every case is a real signature, good or bad.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../../services/auth/au_jwt.h"

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define ISS "https://idp.example.test/"
#define AUD "voxihub"
#define ORG "org_0123456789abcdef0123"
#define NOW 1900000000LL

static EVP_PKEY *rsa_key; /* signs RS256 test tokens */
static char pem_path[64]; /* its public half, for the verifier */
static char *pem_text;    /* the same PEM as a string (for the key-confusion case) */
static au_jwt_t *hs_only; /* HS256 configured */
static au_jwt_t *rs_only; /* RS256 configured */

static void
b64url(const unsigned char *in, size_t len, char *out)
{
    unsigned char buf[4096];
    int n = EVP_EncodeBlock(buf, in, (int) len);
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (buf[i] == '=')
            break;
        out[o++] = buf[i] == '+' ? '-' : buf[i] == '/' ? '_' : (char) buf[i];
    }
    out[o] = '\0';
}

/* header.payload.signature with the signature made by `alg`: "HS256" (with `secret`),
 * "RS256" (the test RSA key), "none" (empty signature) or "junk" (a fixed string). */
static char *
make_token(const char *header_json, const char *payload_json, const char *alg, const char *secret)
{
    static char token[8192 + 1024 + 2];
    char h[2048], p[4096], s[1024];
    b64url((const unsigned char *) header_json, strlen(header_json), h);
    b64url((const unsigned char *) payload_json, strlen(payload_json), p);
    char signing[8192];
    snprintf(signing, sizeof(signing), "%s.%s", h, p);
    unsigned char sig[1024];
    size_t sig_len = 0;
    if (strcmp(alg, "HS256") == 0) {
        unsigned int n = 0;
        HMAC(EVP_sha256(), secret, (int) strlen(secret), (const unsigned char *) signing,
             strlen(signing), sig, &n);
        sig_len = n;
    } else if (strcmp(alg, "RS256") == 0) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        sig_len = sizeof(sig);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, rsa_key), 1);
        assert_int_equal(
            EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *) signing, strlen(signing)),
            1);
        EVP_MD_CTX_free(ctx);
    } else if (strcmp(alg, "junk") == 0) {
        memcpy(sig, "not a signature at all", 22);
        sig_len = 22;
    }
    b64url(sig, sig_len, s);
    snprintf(token, sizeof(token), "%s.%s", signing, s);
    return token;
}

static const char *
claims(void)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"user-42\",\"org_id\":\"%s\","
             "\"scope\":\"agents:read numbers:write bogus platform:admin\",\"exp\":%lld,"
             "\"nbf\":%lld,\"iat\":%lld}",
             ISS, AUD, ORG, NOW + 600, NOW - 10, NOW - 10);
    return buf;
}

static lc_status_t
verify(const au_jwt_t *jwt, const char *token, au_jwt_claims_t *out, const char **why)
{
    return au_jwt_verify(jwt, token, strlen(token), NOW, out, why);
}

static int
setup(void **state)
{
    (void) state;
    rsa_key = EVP_RSA_gen(2048);
    assert_non_null(rsa_key);
    snprintf(pem_path, sizeof(pem_path), "/tmp/voxi-test-jwt-%d.pem", (int) getpid());
    FILE *f = fopen(pem_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, rsa_key), 1);
    fclose(f);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, rsa_key);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    pem_text = strndup(data, (size_t) n);
    BIO_free(bio);

    char err[256];
    au_jwt_opts_t o = {.hs256_secret = SECRET, .issuer = ISS, .audience = AUD, .leeway_s = 30};
    assert_int_equal(au_jwt_create(&o, &hs_only, err, sizeof(err)), LC_OK);
    au_jwt_opts_t r = {
        .rs256_public_key_file = pem_path, .issuer = ISS, .audience = AUD, .leeway_s = 30};
    assert_int_equal(au_jwt_create(&r, &rs_only, err, sizeof(err)), LC_OK);
    return 0;
}

static int
teardown(void **state)
{
    (void) state;
    au_jwt_destroy(hs_only);
    au_jwt_destroy(rs_only);
    EVP_PKEY_free(rsa_key);
    free(pem_text);
    unlink(pem_path);
    return 0;
}

static void
test_good_hs256(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    const char *why = NULL;
    char *t = make_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims(), "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_OK);
    assert_string_equal(c.sub, "user-42");
    assert_string_equal(c.org_id, ORG);
    /* unknown scopes are ignored, platform:admin is never taken from a token */
    assert_int_equal(c.scopes, AU_SCOPE_AGENTS_READ | AU_SCOPE_NUMBERS_WRITE);
    assert_int_equal(c.exp_s, NOW + 600);
}

static void
test_good_rs256(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    char *t = make_token("{\"alg\":\"RS256\"}", claims(), "RS256", NULL);
    assert_int_equal(verify(rs_only, t, &c, NULL), LC_OK);
    assert_string_equal(c.sub, "user-42");
}

static void
test_bad_signature(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    const char *why = NULL;
    char *t = make_token("{\"alg\":\"HS256\"}", claims(), "HS256", "another secret of some length");
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "bad signature");

    /* a good token whose payload was swapped for another after signing */
    char good[8192];
    snprintf(good, sizeof(good), "%s",
             make_token("{\"alg\":\"HS256\"}", claims(), "HS256", SECRET));
    char *other = make_token("{\"alg\":\"HS256\"}",
                             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"admin\","
                             "\"org_id\":\"" ORG "\",\"exp\":1900000600}",
                             "HS256", SECRET);
    char *gdot1 = strchr(good, '.'), *gdot2 = strrchr(good, '.');
    char *odot1 = strchr(other, '.'), *odot2 = strrchr(other, '.');
    char forged[8192];
    snprintf(forged, sizeof(forged), "%.*s%.*s%s", (int) (gdot1 - good), good,
             (int) (odot2 - odot1), odot1, gdot2);
    assert_int_equal(verify(hs_only, forged, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "bad signature");

    t = make_token("{\"alg\":\"RS256\"}", claims(), "junk", NULL);
    assert_int_equal(verify(rs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "bad signature");
}

static void
test_alg_none(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    const char *why = NULL;
    /* unsecured JWS: empty signature part */
    char *t = make_token("{\"alg\":\"none\"}", claims(), "none", NULL);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_int_equal(verify(rs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    /* and with some bytes where the signature goes */
    t = make_token("{\"alg\":\"none\"}", claims(), "junk", NULL);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "algorithm not accepted");
    t = make_token("{\"alg\":\"NONE\"}", claims(), "junk", NULL);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    t = make_token("{\"typ\":\"JWT\"}", claims(), "HS256", SECRET); /* no alg at all */
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "algorithm not accepted");
}

static void
test_alg_not_pinned(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    const char *why = NULL;
    /* RS256 token, only HS256 configured */
    char *t = make_token("{\"alg\":\"RS256\"}", claims(), "RS256", NULL);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "algorithm not accepted");
    /* key confusion: HS256 "signed" with the RSA public key, only RS256 configured */
    t = make_token("{\"alg\":\"HS256\"}", claims(), "HS256", pem_text);
    assert_int_equal(verify(rs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "algorithm not accepted");
    /* algorithms we never accept */
    t = make_token("{\"alg\":\"HS512\"}", claims(), "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    t = make_token("{\"alg\":\"hs256\"}", claims(), "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    /* no verifier at all (JWT not configured) */
    t = make_token("{\"alg\":\"HS256\"}", claims(), "HS256", SECRET);
    assert_int_equal(verify(NULL, t, &c, &why), LC_ERR_UNAUTHORIZED);
}

static void
test_expiry_and_not_before(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    const char *why = NULL;
    char payload[512];
    const char *fmt = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"org_id\":\"" ORG
                      "\",\"exp\":%lld%s}";
    /* expired a minute ago: beyond the 30 s leeway */
    snprintf(payload, sizeof(payload), fmt, NOW - 60, "");
    char *t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "expired");
    /* expired 10 s ago: inside the leeway */
    snprintf(payload, sizeof(payload), fmt, NOW - 10, "");
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_OK);
    /* exp is required */
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"org_id\":\"" ORG "\"}");
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    snprintf(payload, sizeof(payload), fmt, NOW + 600, ",\"exp\":1"); /* duplicate claim */
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    /* nbf a minute in the future: not yet */
    snprintf(payload, sizeof(payload), fmt, NOW + 600, ",\"nbf\":1900000060");
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "not valid yet (nbf)");
    /* nbf 10 s in the future: inside the leeway */
    snprintf(payload, sizeof(payload), fmt, NOW + 600, ",\"nbf\":1900000010");
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_OK);
}

static void
test_issuer_and_audience(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    const char *why = NULL;
    char payload[512];
    const char *fmt =
        "{\"iss\":%s,\"aud\":%s,\"sub\":\"u\",\"org_id\":\"" ORG "\",\"exp\":1900000600}";
    snprintf(payload, sizeof(payload), fmt, "\"" ISS "\"", "\"someone-else\"");
    char *t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "wrong audience");
    snprintf(payload, sizeof(payload), fmt, "\"" ISS "\"", "[\"x\",\"" AUD "\"]");
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_OK);
    snprintf(payload, sizeof(payload), fmt, "\"" ISS "\"", "[\"x\",\"y\"]");
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    snprintf(payload, sizeof(payload), fmt, "\"https://evil.test/\"", "\"" AUD "\"");
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    assert_string_equal(why, "wrong issuer");
    snprintf(payload, sizeof(payload), fmt, "null", "\"" AUD "\"");
    t = make_token("{\"alg\":\"HS256\"}", payload, "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
}

static void
test_principal_claims(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    const char *why = NULL;
    const char *bad[] = {
        /* org_id malformed, missing; sub missing, empty, with a space */
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"org_id\":\"org_1\","
        "\"exp\":1900000600}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"exp\":1900000600}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"org_id\":\"" ORG "\",\"exp\":1900000600}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"\",\"org_id\":\"" ORG
        "\",\"exp\":1900000600}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"a b\",\"org_id\":\"" ORG
        "\",\"exp\":1900000600}",
        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"org_id\":\"" ORG
        "\",\"exp\":1900000600,\"scope\":[\"agents:read\"]}",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *t = make_token("{\"alg\":\"HS256\"}", bad[i], "HS256", SECRET);
        assert_int_equal(verify(hs_only, t, &c, &why), LC_ERR_UNAUTHORIZED);
    }
}

static void
test_malformed_tokens(void **state)
{
    (void) state;
    au_jwt_claims_t c;
    const char *bad[] = {"",     "a.b",     "a.b.c.d",     "..",       "a..c",
                         "a.b.", "a b.c.d", "abc.d=f.ghi", "YQ.YQ.YQ", "e30.e30.e30"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(verify(hs_only, bad[i], &c, NULL), LC_ERR_UNAUTHORIZED);
    assert_false(au_jwt_shaped("a.b.", 4));
    assert_true(au_jwt_shaped("a.b.c", 5));
    assert_false(au_jwt_shaped("vx_abc", 6));
    /* crit header: not understood, so rejected even with a good signature */
    char *t = make_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", claims(), "HS256", SECRET);
    assert_int_equal(verify(hs_only, t, &c, NULL), LC_ERR_UNAUTHORIZED);
    /* a huge token is refused by its length alone */
    char *huge = calloc(AU_JWT_MAX_LEN + 10, 1);
    memset(huge, 'a', AU_JWT_MAX_LEN + 5);
    huge[10] = '.';
    huge[20] = '.';
    assert_int_equal(au_jwt_verify(hs_only, huge, strlen(huge), NOW, &c, NULL),
                     LC_ERR_UNAUTHORIZED);
    free(huge);
}

static void
test_configuration_errors(void **state)
{
    (void) state;
    au_jwt_t *jwt = (au_jwt_t *) 1;
    char err[256];
    au_jwt_opts_t none = {0};
    assert_int_equal(au_jwt_create(&none, &jwt, err, sizeof(err)), LC_OK);
    assert_null(jwt);
    au_jwt_opts_t no_aud = {.hs256_secret = SECRET, .issuer = ISS};
    assert_int_equal(au_jwt_create(&no_aud, &jwt, err, sizeof(err)), LC_ERR_CONFIG);
    assert_non_null(strstr(err, "VOXI_AUTH_JWT_AUDIENCE"));
    assert_null(strstr(err, SECRET));
    au_jwt_opts_t missing = {
        .rs256_public_key_file = "/nonexistent/key.pem", .issuer = ISS, .audience = AUD};
    assert_int_equal(au_jwt_create(&missing, &jwt, err, sizeof(err)), LC_ERR_CONFIG);
    /* a 1024-bit key is refused */
    EVP_PKEY *small = EVP_RSA_gen(1024);
    char path[64];
    snprintf(path, sizeof(path), "/tmp/voxi-test-jwt-small-%d.pem", (int) getpid());
    FILE *f = fopen(path, "w");
    PEM_write_PUBKEY(f, small);
    fclose(f);
    au_jwt_opts_t weak = {.rs256_public_key_file = path, .issuer = ISS, .audience = AUD};
    assert_int_equal(au_jwt_create(&weak, &jwt, err, sizeof(err)), LC_ERR_CONFIG);
    assert_non_null(strstr(err, "1024"));
    unlink(path);
    EVP_PKEY_free(small);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_hs256),          cmocka_unit_test(test_good_rs256),
        cmocka_unit_test(test_bad_signature),       cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_alg_not_pinned),      cmocka_unit_test(test_expiry_and_not_before),
        cmocka_unit_test(test_issuer_and_audience), cmocka_unit_test(test_principal_claims),
        cmocka_unit_test(test_malformed_tokens),    cmocka_unit_test(test_configuration_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
