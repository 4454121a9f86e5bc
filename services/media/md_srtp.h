/*
 * md_srtp: SRTP/SRTCP (RFC 3711) keyed by SDES (RFC 4568), on libsrtp2 2.5.
 *
 * SDES: md_srtp_crypto_parse reads the value of an `a=crypto:` attribute, RFC 4568 section
 * 9.1: `tag SP suite SP inline:<base64 key||salt>[|lifetime][|MKI:len] [session params]`,
 * for the suites AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 (section 6.2; 30 bytes
 * of key and salt, 40 base64 characters). md_srtp_crypto_generate makes our own key and
 * md_srtp_crypto_format writes the attribute value for the answer or offer.
 *
 * Sessions: one md_srtp_t per direction. Outbound protects our RTP/RTCP with our key,
 * inbound unprotects the peer's with theirs. Both work in place: the buffer must be 4-byte
 * aligned and have MD_SRTP_TRAILER_ROOM bytes free after the packet for protect (the
 * authentication tag, plus the SRTCP index for RTCP). Inbound streams are created per SSRC
 * on first use (libsrtp2's ssrc_any_inbound), so a peer's SSRC change needs nothing.
 * Failures are counted: replayed packets (LC_ERR_CONFLICT), authentication failures
 * (LC_ERR_UNAUTHORIZED), anything else (LC_ERR_INVALID).
 *
 * Threads: md_srtp_crypto_* are pure (generate reads the kernel CSPRNG); an md_srtp_t is used
 * by one thread at a time. libsrtp2 is initialised once per process, on first create.
 * Keys are secrets: never log them.
 */
#ifndef MD_SRTP_H
#define MD_SRTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

typedef enum {
    MD_SRTP_AES_CM_128_HMAC_SHA1_80 = 0,
    MD_SRTP_AES_CM_128_HMAC_SHA1_32,
    MD_SRTP_SUITE_COUNT_,
} md_srtp_suite_t;

#define MD_SRTP_KEY_SALT_BYTES 30
/* libsrtp2's SRTP_MAX_TRAILER_LEN (144) plus the 4-byte SRTCP index. */
#define MD_SRTP_TRAILER_ROOM 148
/* Longest attribute value md_srtp_crypto_format writes, with its NUL. */
#define MD_SRTP_CRYPTO_VALUE_MAX 96

typedef struct {
    uint32_t tag; /* 0..999999999 (1 to 9 digits) */
    md_srtp_suite_t suite;
    uint8_t key_salt[MD_SRTP_KEY_SALT_BYTES];
} md_srtp_crypto_t;

/* "AES_CM_128_HMAC_SHA1_80" / "AES_CM_128_HMAC_SHA1_32"; NULL for an unknown suite. */
const char *md_srtp_suite_name(md_srtp_suite_t suite);

/* Parses an a=crypto value (value borrowed, len bytes, no NUL needed). LC_ERR_NOT_FOUND for
 * a well-formed line we cannot use (another suite, an MKI, more than one key, session
 * parameters such as UNENCRYPTED_SRTP or KDR): the answerer moves on to the next line.
 * LC_ERR_INVALID for a malformed one. */
lc_status_t md_srtp_crypto_parse(const char *value, size_t len, md_srtp_crypto_t *out);

/* Fills a new random key and salt. */
void md_srtp_crypto_generate(md_srtp_crypto_t *out, uint32_t tag, md_srtp_suite_t suite);

/* Writes "tag suite inline:key" with a NUL; returns its length (without the NUL), or 0 if
 * out_size is too small (MD_SRTP_CRYPTO_VALUE_MAX always suffices). */
size_t md_srtp_crypto_format(const md_srtp_crypto_t *c, char *out, size_t out_size);

typedef enum {
    MD_SRTP_OUTBOUND = 0, /* protect what we send */
    MD_SRTP_INBOUND,      /* unprotect what we receive */
} md_srtp_direction_t;

typedef struct md_srtp md_srtp_t;

typedef struct {
    uint64_t rtp_ok, rtcp_ok; /* packets protected or unprotected */
    uint64_t replayed;        /* dropped as replays (inbound) */
    uint64_t auth_failed;     /* dropped: tag did not verify (inbound) */
    uint64_t failed;          /* other failures (too short, no room, library error) */
} md_srtp_stats_t;

/* crypto is copied into libsrtp2's session (the caller may wipe its copy afterwards).
 * LC_ERR_INVALID for a bad suite; LC_ERR_INTERNAL if libsrtp2 fails (logged). */
lc_status_t md_srtp_create(const md_srtp_crypto_t *crypto, md_srtp_direction_t dir,
                           md_srtp_t **out);
/* NULL is a no-op. */
void md_srtp_destroy(md_srtp_t *s);

/* In place: *len is the packet length before and after. buf_size is the size of the buffer
 * behind buf; protect needs *len + MD_SRTP_TRAILER_ROOM <= buf_size (else LC_ERR_TOO_LARGE).
 * Unprotect: LC_OK, LC_ERR_CONFLICT (replay), LC_ERR_UNAUTHORIZED (tag), LC_ERR_INVALID. */
lc_status_t md_srtp_protect_rtp(md_srtp_t *s, uint8_t *buf, size_t *len, size_t buf_size);
lc_status_t md_srtp_unprotect_rtp(md_srtp_t *s, uint8_t *buf, size_t *len);
lc_status_t md_srtp_protect_rtcp(md_srtp_t *s, uint8_t *buf, size_t *len, size_t buf_size);
lc_status_t md_srtp_unprotect_rtcp(md_srtp_t *s, uint8_t *buf, size_t *len);

void md_srtp_get_stats(const md_srtp_t *s, md_srtp_stats_t *out);

#endif
