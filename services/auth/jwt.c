#include "au_jwt.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "au_text.h"
#include "lc_alloc.h"

/* Decoded header and payload are small JSON objects; anything bigger is not ours. */
#define PART_MAX_BYTES 4096
#define SIG_MAX_BYTES 1024
#define RSA_MIN_BITS 2048

struct au_jwt {
    unsigned char *hs256_secret; /* NULL = off */
    size_t hs256_secret_len;
    EVP_PKEY *rs256_key; /* NULL = off */
    char *issuer;
    char *audience;
    int64_t leeway_s;
};

static bool
is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

bool
au_jwt_shaped(const char *text, size_t len)
{
    if (len < 5 || len > AU_JWT_MAX_LEN)
        return false;
    int dots = 0;
    size_t part_len = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '.') {
            if (part_len == 0 || ++dots > 2)
                return false;
            part_len = 0;
        } else if (is_b64url(text[i])) {
            part_len++;
        } else {
            return false;
        }
    }
    return dots == 2 && part_len > 0;
}

/*
 * base64url without padding (RFC 7515 section 2) into out (out_size bytes). Returns the
 * decoded length, or -1 for bad input or a result that does not fit.
 */
static long
b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_size)
{
    if (len % 4 == 1) /* no base64 string has that length */
        return -1;
    size_t padded = (len + 3) / 4 * 4;
    if (padded / 4 * 3 > out_size)
        return -1;
    char *buf = lc_malloc(padded + 1);
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (!is_b64url(c)) {
            free(buf);
            return -1;
        }
        buf[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    size_t pad = padded - len;
    memset(buf + len, '=', pad);
    buf[padded] = '\0';
    int n = EVP_DecodeBlock(out, (const unsigned char *) buf, (int) padded);
    free(buf);
    if (n < 0 || (size_t) n < pad)
        return -1;
    return (long) ((size_t) n - pad);
}

static json_t *
decode_json_part(const char *in, size_t len)
{
    unsigned char buf[PART_MAX_BYTES];
    long n = b64url_decode(in, len, buf, sizeof(buf));
    if (n <= 0)
        return NULL;
    json_error_t jerr;
    json_t *obj = json_loadb((const char *) buf, (size_t) n, JSON_REJECT_DUPLICATES, &jerr);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

lc_status_t
au_jwt_create(const au_jwt_opts_t *opts, au_jwt_t **out, char *err, size_t err_size)
{
    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    bool hs = opts->hs256_secret != NULL && opts->hs256_secret[0] != '\0';
    bool rs = opts->rs256_public_key_file != NULL && opts->rs256_public_key_file[0] != '\0';
    if (!hs && !rs)
        return LC_OK;
    if (opts->issuer == NULL || opts->issuer[0] == '\0' || opts->audience == NULL ||
        opts->audience[0] == '\0') {
        snprintf(err, err_size,
                 "JWT verification needs VOXI_AUTH_JWT_ISSUER and VOXI_AUTH_JWT_AUDIENCE");
        return LC_ERR_CONFIG;
    }
    au_jwt_t *jwt = LC_NEW(au_jwt_t);
    jwt->issuer = lc_strdup(opts->issuer);
    jwt->audience = lc_strdup(opts->audience);
    jwt->leeway_s = opts->leeway_s < 0 ? 0 : opts->leeway_s;
    if (hs) {
        jwt->hs256_secret_len = strlen(opts->hs256_secret);
        jwt->hs256_secret = (unsigned char *) lc_strdup(opts->hs256_secret);
    }
    if (rs) {
        FILE *f = fopen(opts->rs256_public_key_file, "r");
        if (f == NULL) {
            snprintf(err, err_size, "cannot open %s: %s", opts->rs256_public_key_file,
                     strerror(errno));
            au_jwt_destroy(jwt);
            return LC_ERR_CONFIG;
        }
        jwt->rs256_key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
        fclose(f);
        if (jwt->rs256_key == NULL || !EVP_PKEY_is_a(jwt->rs256_key, "RSA")) {
            snprintf(err, err_size, "%s: not a PEM RSA public key (SubjectPublicKeyInfo)",
                     opts->rs256_public_key_file);
            au_jwt_destroy(jwt);
            return LC_ERR_CONFIG;
        }
        if (EVP_PKEY_get_bits(jwt->rs256_key) < RSA_MIN_BITS) {
            snprintf(err, err_size, "%s: RSA key has %d bits, at least %d are required",
                     opts->rs256_public_key_file, EVP_PKEY_get_bits(jwt->rs256_key), RSA_MIN_BITS);
            au_jwt_destroy(jwt);
            return LC_ERR_CONFIG;
        }
    }
    *out = jwt;
    return LC_OK;
}

void
au_jwt_destroy(au_jwt_t *jwt)
{
    if (jwt == NULL)
        return;
    if (jwt->hs256_secret) {
        OPENSSL_cleanse(jwt->hs256_secret, jwt->hs256_secret_len);
        free(jwt->hs256_secret);
    }
    EVP_PKEY_free(jwt->rs256_key);
    free(jwt->issuer);
    free(jwt->audience);
    free(jwt);
}

static bool
verify_hs256(const au_jwt_t *jwt, const char *signed_part, size_t signed_len,
             const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), jwt->hs256_secret, (int) jwt->hs256_secret_len,
             (const unsigned char *) signed_part, signed_len, mac, &mac_len) == NULL)
        return false;
    return mac_len == sig_len && CRYPTO_memcmp(mac, sig, sig_len) == 0;
}

static bool
verify_rs256(const au_jwt_t *jwt, const char *signed_part, size_t signed_len,
             const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        abort(); /* out of memory */
    bool ok =
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, jwt->rs256_key) == 1 &&
        EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *) signed_part, signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* A NumericDate claim (RFC 7519 section 2): a JSON number of seconds. */
static bool
numeric_date(json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!isfinite(d))
        return false;
    *out = d;
    return true;
}

static bool
audience_matches(const au_jwt_t *jwt, json_t *aud)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), jwt->audience) == 0;
    if (!json_is_array(aud))
        return false;
    size_t i;
    json_t *item;
    json_array_foreach(aud, i, item)
    {
        if (json_is_string(item) && strcmp(json_string_value(item), jwt->audience) == 0)
            return true;
    }
    return false;
}

static bool
printable_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

static lc_status_t
check_claims(const au_jwt_t *jwt, json_t *claims, int64_t now_s, au_jwt_claims_t *out,
             const char **why)
{
    double exp, nbf;
    if (!numeric_date(json_object_get(claims, "exp"), &exp)) {
        *why = "exp missing or not a number";
        return LC_ERR_UNAUTHORIZED;
    }
    if ((double) now_s >= exp + (double) jwt->leeway_s) {
        *why = "expired";
        return LC_ERR_UNAUTHORIZED;
    }
    json_t *v = json_object_get(claims, "nbf");
    if (v != NULL) {
        if (!numeric_date(v, &nbf)) {
            *why = "nbf not a number";
            return LC_ERR_UNAUTHORIZED;
        }
        if ((double) now_s + (double) jwt->leeway_s < nbf) {
            *why = "not valid yet (nbf)";
            return LC_ERR_UNAUTHORIZED;
        }
    }
    v = json_object_get(claims, "iss");
    if (!json_is_string(v) || strcmp(json_string_value(v), jwt->issuer) != 0) {
        *why = "wrong issuer";
        return LC_ERR_UNAUTHORIZED;
    }
    if (!audience_matches(jwt, json_object_get(claims, "aud"))) {
        *why = "wrong audience";
        return LC_ERR_UNAUTHORIZED;
    }
    v = json_object_get(claims, "sub");
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > AU_JWT_SUB_MAX || !printable_ascii(json_string_value(v))) {
        *why = "sub missing or not 1..128 printable characters";
        return LC_ERR_UNAUTHORIZED;
    }
    snprintf(out->sub, sizeof(out->sub), "%s", json_string_value(v));
    v = json_object_get(claims, "org_id");
    if (!json_is_string(v) || json_string_length(v) > AU_JWT_ORG_MAX ||
        !au_id_valid(json_string_value(v), "org_")) {
        *why = "org_id missing or malformed";
        return LC_ERR_UNAUTHORIZED;
    }
    snprintf(out->org_id, sizeof(out->org_id), "%s", json_string_value(v));
    out->scopes = 0;
    v = json_object_get(claims, "scope");
    if (v != NULL) {
        if (!json_is_string(v)) {
            *why = "scope not a string";
            return LC_ERR_UNAUTHORIZED;
        }
        out->scopes = au_scopes_parse_list(json_string_value(v), NULL) & AU_SCOPES_ALL;
    }
    out->exp_s = (int64_t) exp;
    return LC_OK;
}

lc_status_t
au_jwt_verify(const au_jwt_t *jwt, const char *token, size_t len, int64_t now_s,
              au_jwt_claims_t *out, const char **why)
{
    const char *why_local = NULL;
    if (why == NULL)
        why = &why_local;
    *why = "malformed";
    if (jwt == NULL) {
        *why = "JWTs are not configured";
        return LC_ERR_UNAUTHORIZED;
    }
    if (!au_jwt_shaped(token, len))
        return LC_ERR_UNAUTHORIZED;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t) (dot1 + 1 - token));
    const char *sig_text = dot2 + 1;
    size_t sig_text_len = len - (size_t) (sig_text - token);

    lc_status_t st = LC_ERR_UNAUTHORIZED;
    json_t *header = decode_json_part(token, (size_t) (dot1 - token));
    json_t *claims = NULL;
    if (header == NULL) {
        *why = "header is not a JSON object";
        goto done;
    }
    if (json_object_get(header, "crit") != NULL) {
        *why = "crit header present";
        goto done;
    }
    json_t *typ = json_object_get(header, "typ");
    if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)) {
        *why = "typ is not JWT";
        goto done;
    }
    const char *alg = json_string_value(json_object_get(header, "alg"));
    bool use_hs = alg != NULL && strcmp(alg, "HS256") == 0 && jwt->hs256_secret != NULL;
    bool use_rs = alg != NULL && strcmp(alg, "RS256") == 0 && jwt->rs256_key != NULL;
    if (!use_hs && !use_rs) {
        *why = "algorithm not accepted";
        goto done;
    }

    unsigned char sig[SIG_MAX_BYTES];
    long sig_len = b64url_decode(sig_text, sig_text_len, sig, sizeof(sig));
    if (sig_len <= 0) {
        *why = "signature is not base64url";
        goto done;
    }
    size_t signed_len = (size_t) (dot2 - token);
    bool good = use_hs ? verify_hs256(jwt, token, signed_len, sig, (size_t) sig_len)
                       : verify_rs256(jwt, token, signed_len, sig, (size_t) sig_len);
    if (!good) {
        *why = "bad signature";
        goto done;
    }
    claims = decode_json_part(dot1 + 1, (size_t) (dot2 - dot1 - 1));
    if (claims == NULL) {
        *why = "claims are not a JSON object";
        goto done;
    }
    st = check_claims(jwt, claims, now_s, out, why);
    if (st == LC_OK)
        *why = "ok";
done:
    json_decref(header);
    json_decref(claims);
    return st;
}
