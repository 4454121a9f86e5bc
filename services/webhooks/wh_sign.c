#include "wh_sign.h"

#include <inttypes.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lc_time.h"

void
wh_secret_generate(char *out, size_t out_size)
{
    uint8_t key[WH_SECRET_KEY_BYTES];
    char b64[4 * ((WH_SECRET_KEY_BYTES + 2) / 3) + 1];
    lc_random_bytes(key, sizeof(key));
    EVP_EncodeBlock((unsigned char *) b64, key, (int) sizeof(key));
    snprintf(out, out_size, "%s%s", WH_SECRET_PREFIX, b64);
}

static bool
is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

lc_status_t
wh_secret_decode(const char *secret, uint8_t *key, size_t key_size, size_t *key_len)
{
    size_t plen = strlen(WH_SECRET_PREFIX);
    if (secret == NULL || strncmp(secret, WH_SECRET_PREFIX, plen) != 0)
        return LC_ERR_INVALID;
    const char *b64 = secret + plen;
    size_t n = strlen(b64);
    if (n == 0 || n % 4 != 0 || n > 4 * ((WH_SECRET_MAX_KEY_BYTES + 2) / 3))
        return LC_ERR_INVALID;
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        if (b64[i] == '=') {
            if (i < n - 2)
                return LC_ERR_INVALID;
            pad++;
        } else if (pad > 0 || !is_b64_char(b64[i])) {
            return LC_ERR_INVALID;
        }
    }
    uint8_t buf[3 * (4 * ((WH_SECRET_MAX_KEY_BYTES + 2) / 3)) / 4 + 3];
    int got = EVP_DecodeBlock(buf, (const unsigned char *) b64, (int) n);
    if (got < 0 || (size_t) got < pad)
        return LC_ERR_INVALID;
    size_t len = (size_t) got - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    if (len < WH_SECRET_MIN_KEY_BYTES || len > key_size)
        return LC_ERR_INVALID;
    memcpy(key, buf, len);
    *key_len = len;
    return LC_OK;
}

/* The HMAC implementation, fetched once (a fetch walks OpenSSL's provider tables). */
static EVP_MAC *hmac_impl;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void
fetch_hmac(void)
{
    hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

lc_status_t
wh_sign(const char *secret, const char *msg_id, int64_t timestamp_s, const void *body,
        size_t body_len, char *out, size_t out_size)
{
    uint8_t key[WH_SECRET_MAX_KEY_BYTES];
    size_t key_len = 0;
    if (out_size < WH_SIGNATURE_MAX)
        return LC_ERR_INVALID;
    LC_TRY(wh_secret_decode(secret, key, sizeof(key), &key_len));

    /* HMAC over "id.timestamp.body", fed in pieces so the body is never copied. */
    char prefix[160];
    int plen = snprintf(prefix, sizeof(prefix), "%s.%" PRId64 ".", msg_id, timestamp_s);
    if (plen < 0 || (size_t) plen >= sizeof(prefix))
        return LC_ERR_INVALID;
    lc_status_t st = LC_ERR_INTERNAL;
    uint8_t mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    pthread_once(&hmac_once, fetch_hmac);
    EVP_MAC_CTX *ctx = hmac_impl ? EVP_MAC_CTX_new(hmac_impl) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *) "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (ctx == NULL || EVP_MAC_init(ctx, key, key_len, params) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *) prefix, (size_t) plen) != 1 ||
        EVP_MAC_update(ctx, body, body_len) != 1 ||
        EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) != 1)
        goto done;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *) out + 3, mac, (int) mac_len);
    st = LC_OK;
done:
    EVP_MAC_CTX_free(ctx);
    memset(key, 0, sizeof(key));
    return st;
}

lc_status_t
wh_sign_header(const char *secret, const char *previous, const char *msg_id, int64_t timestamp_s,
               const void *body, size_t body_len, char *out, size_t out_size)
{
    if (out_size < WH_SIGNATURE_HEADER_MAX)
        return LC_ERR_INVALID;
    LC_TRY(wh_sign(secret, msg_id, timestamp_s, body, body_len, out, out_size));
    if (previous == NULL || previous[0] == '\0')
        return LC_OK;
    size_t used = strlen(out);
    out[used++] = ' ';
    return wh_sign(previous, msg_id, timestamp_s, body, body_len, out + used, out_size - used);
}
