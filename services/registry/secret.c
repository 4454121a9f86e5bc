#include "rg_secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16
#define SEALED_PREFIX "enc:v1:"
#define PLAIN_PREFIX "plain:"
#define PLAINTEXT_MAX 4096

struct rg_secret {
    bool has_key;
    unsigned char key[KEY_BYTES];
};

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

lc_status_t
rg_secret_create(const char *key_hex, rg_secret_t **out)
{
    rg_secret_t *sec = LC_NEW(rg_secret_t);
    *out = NULL;
    if (key_hex != NULL && key_hex[0] != '\0') {
        if (strlen(key_hex) != 2 * KEY_BYTES) {
            free(sec);
            return LC_ERR_CONFIG;
        }
        for (size_t i = 0; i < KEY_BYTES; i++) {
            int hi = hex_value(key_hex[2 * i]), lo = hex_value(key_hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                OPENSSL_cleanse(sec->key, sizeof(sec->key));
                free(sec);
                return LC_ERR_CONFIG;
            }
            sec->key[i] = (unsigned char) (hi << 4 | lo);
        }
        sec->has_key = true;
    }
    *out = sec;
    return LC_OK;
}

void
rg_secret_destroy(rg_secret_t *sec)
{
    if (sec == NULL)
        return;
    OPENSSL_cleanse(sec->key, sizeof(sec->key));
    free(sec);
}

bool
rg_secret_has_key(const rg_secret_t *sec)
{
    return sec->has_key;
}

/* AES-256-GCM in one direction; returns false on any failure (tag mismatch included). */
static bool
gcm(bool encrypt, const unsigned char *key, const unsigned char *nonce, const char *aad,
    const unsigned char *in, int in_len, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok =
        c != NULL &&
        EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt ? 1 : 0) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
        EVP_CipherInit_ex(c, NULL, NULL, key, nonce, encrypt ? 1 : 0) == 1 &&
        EVP_CipherUpdate(c, NULL, &len, (const unsigned char *) aad, (int) strlen(aad)) == 1 &&
        (in_len == 0 || EVP_CipherUpdate(c, out, &len, in, in_len) == 1);
    if (ok && !encrypt)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(c, out + (in_len ? len : 0), &len) == 1;
    if (ok && encrypt)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

char *
rg_secret_seal(const rg_secret_t *sec, const char *plaintext, const char *context)
{
    size_t len = strlen(plaintext);
    if (!sec->has_key) {
        char *out = lc_malloc(strlen(PLAIN_PREFIX) + len + 1);
        strcpy(out, PLAIN_PREFIX);
        strcat(out, plaintext);
        return out;
    }
    size_t raw_len = NONCE_BYTES + len + TAG_BYTES;
    unsigned char *raw = lc_malloc(raw_len);
    lc_random_bytes(raw, NONCE_BYTES);
    if (!gcm(true, sec->key, raw, context, (const unsigned char *) plaintext, (int) len,
             raw + NONCE_BYTES, raw + NONCE_BYTES + len)) {
        /* EVP fails here only when it cannot allocate */
        LC_ERROR("secret", "AES-GCM encryption failed");
        abort();
    }
    size_t b64_len = 4 * ((raw_len + 2) / 3);
    char *out = lc_malloc(strlen(SEALED_PREFIX) + b64_len + 1);
    strcpy(out, SEALED_PREFIX);
    EVP_EncodeBlock((unsigned char *) out + strlen(SEALED_PREFIX), raw, (int) raw_len);
    OPENSSL_cleanse(raw, raw_len);
    free(raw);
    return out;
}

lc_status_t
rg_secret_open(const rg_secret_t *sec, const char *sealed, const char *context, char **out)
{
    *out = NULL;
    if (strncmp(sealed, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) == 0) {
        *out = lc_strdup(sealed + strlen(PLAIN_PREFIX));
        return LC_OK;
    }
    if (strncmp(sealed, SEALED_PREFIX, strlen(SEALED_PREFIX)) != 0)
        return LC_ERR_INVALID;
    if (!sec->has_key)
        return LC_ERR_CONFIG;
    const char *b64 = sealed + strlen(SEALED_PREFIX);
    size_t b64_len = strlen(b64);
    if (b64_len % 4 != 0 || b64_len > 4 * ((NONCE_BYTES + PLAINTEXT_MAX + TAG_BYTES + 2) / 3))
        return LC_ERR_INVALID;
    unsigned char *raw = lc_malloc(b64_len / 4 * 3 + 1);
    int n = EVP_DecodeBlock(raw, (const unsigned char *) b64, (int) b64_len);
    /* EVP_DecodeBlock counts the '=' padding as zero bytes */
    if (n >= 0 && b64_len >= 1 && b64[b64_len - 1] == '=')
        n--;
    if (n >= 0 && b64_len >= 2 && b64[b64_len - 2] == '=')
        n--;
    lc_status_t st = LC_ERR_INVALID;
    if (n >= NONCE_BYTES + TAG_BYTES) {
        int ct_len = n - NONCE_BYTES - TAG_BYTES;
        char *plain = lc_malloc((size_t) ct_len + 1);
        if (gcm(false, sec->key, raw, context, raw + NONCE_BYTES, ct_len, (unsigned char *) plain,
                raw + NONCE_BYTES + ct_len)) {
            plain[ct_len] = '\0';
            *out = plain;
            st = LC_OK;
        } else {
            OPENSSL_cleanse(plain, (size_t) ct_len + 1);
            free(plain);
        }
    }
    OPENSSL_cleanse(raw, b64_len / 4 * 3 + 1);
    free(raw);
    return st;
}
