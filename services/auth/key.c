#include "au_key.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lc_log.h"
#include "lc_time.h"

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool
is_base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

void
au_key_checksum(const char *random_part, char out[AU_KEY_CHECKSUM_LEN + 1])
{
    uint32_t crc = (uint32_t) crc32(0L, (const Bytef *) random_part, AU_KEY_RANDOM_LEN);
    /* 62^6 > 2^32: six digits always hold the whole CRC. */
    for (int i = AU_KEY_CHECKSUM_LEN - 1; i >= 0; i--) {
        out[i] = base62[crc % 62];
        crc /= 62;
    }
    out[AU_KEY_CHECKSUM_LEN] = '\0';
}

void
au_key_generate(char out[AU_KEY_LEN + 1])
{
    memcpy(out, AU_KEY_TAG, AU_KEY_TAG_LEN);
    char *random_part = out + AU_KEY_TAG_LEN;
    size_t filled = 0;
    unsigned char pool[64];
    while (filled < AU_KEY_RANDOM_LEN) {
        lc_random_bytes(pool, sizeof(pool));
        for (size_t i = 0; i < sizeof(pool) && filled < AU_KEY_RANDOM_LEN; i++) {
            /* 248 = 4 * 62: bytes at or above it would favour the first 8 symbols. */
            if (pool[i] < 248)
                random_part[filled++] = base62[pool[i] % 62];
        }
    }
    au_key_checksum(random_part, out + AU_KEY_TAG_LEN + AU_KEY_RANDOM_LEN);
    out[AU_KEY_LEN] = '\0';
}

bool
au_key_tagged(const char *text, size_t len)
{
    return len >= AU_KEY_TAG_LEN && memcmp(text, AU_KEY_TAG, AU_KEY_TAG_LEN) == 0;
}

bool
au_key_well_formed(const char *text, size_t len)
{
    if (len != AU_KEY_LEN || !au_key_tagged(text, len))
        return false;
    for (size_t i = AU_KEY_TAG_LEN; i < AU_KEY_LEN; i++)
        if (!is_base62(text[i]))
            return false;
    char want[AU_KEY_CHECKSUM_LEN + 1];
    au_key_checksum(text + AU_KEY_TAG_LEN, want);
    return memcmp(want, text + AU_KEY_TAG_LEN + AU_KEY_RANDOM_LEN, AU_KEY_CHECKSUM_LEN) == 0;
}

void
au_key_hash(const char *key, size_t len, uint8_t out[AU_KEY_HASH_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(key, len, out, &n, EVP_sha256(), NULL) != 1 || n != AU_KEY_HASH_LEN) {
        /* Only a broken libcrypto gets here; a wrong hash would lock everyone out. */
        LC_ERROR("key", "EVP_Digest(sha256) failed");
        abort();
    }
}

void
au_key_prefix(const char *key, char out[AU_KEY_PREFIX_LEN + 1])
{
    memcpy(out, key, AU_KEY_PREFIX_LEN);
    out[AU_KEY_PREFIX_LEN] = '\0';
}
