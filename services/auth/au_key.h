/*
 * au_key: the API key format, its checksum, and how keys are stored.
 *
 *   vx_ + 32 random base62 characters + 6 base62 characters of checksum   (41 characters)
 *
 * The random part comes from the kernel CSPRNG with rejection sampling (unbiased, about
 * 190 bits). The checksum is CRC-32 (zlib) of the random part written as 6 base62 digits,
 * most significant first, zero-padded — the scheme GitHub uses for its tokens — so secret
 * scanners and our own fast path can reject a mistyped or made-up key without a database
 * query. The checksum is not a secret and not a MAC: anyone can make a well-formed key; it
 * only has to be cheap and catch typos.
 *
 * A key is shown once, when it is created. The database keeps only SHA-256 of the whole key
 * (looked up by that hash) and its first AU_KEY_PREFIX_LEN characters, so people can tell
 * keys apart in listings.
 *
 * Threads: any (no shared state).
 */
#ifndef AU_KEY_H
#define AU_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AU_KEY_TAG "vx_"
#define AU_KEY_TAG_LEN 3
#define AU_KEY_RANDOM_LEN 32
#define AU_KEY_CHECKSUM_LEN 6
#define AU_KEY_LEN (AU_KEY_TAG_LEN + AU_KEY_RANDOM_LEN + AU_KEY_CHECKSUM_LEN)
#define AU_KEY_PREFIX_LEN 12
#define AU_KEY_HASH_LEN 32

/* Writes a new key and its NUL into out (AU_KEY_LEN + 1 bytes). */
void au_key_generate(char out[AU_KEY_LEN + 1]);

/* The 6-character checksum of a 32-character random part into out (7 bytes with NUL). */
void au_key_checksum(const char *random_part, char out[AU_KEY_CHECKSUM_LEN + 1]);

/* True when text starts with the key tag, i.e. it means to be an API key (not a JWT). */
bool au_key_tagged(const char *text, size_t len);

/* True for a well-formed key: exact length, tag, base62 alphabet, matching checksum.
 * text need not be NUL-terminated; never reads past len. */
bool au_key_well_formed(const char *text, size_t len);

/* SHA-256 of the key bytes. */
void au_key_hash(const char *key, size_t len, uint8_t out[AU_KEY_HASH_LEN]);

/* The visible prefix (first AU_KEY_PREFIX_LEN characters) and NUL into out. */
void au_key_prefix(const char *key, char out[AU_KEY_PREFIX_LEN + 1]);

#endif
