/*
 * wh_sign: Standard Webhooks signing (https://www.standardwebhooks.com/, "Signature
 * scheme": symmetric v1).
 *
 * A secret is "whsec_" + base64 of the key bytes; the HMAC key is the decoded base64 part.
 * The signed content is "<webhook-id>.<webhook-timestamp>.<body>" and the header value is
 * "v1,<base64 HMAC-SHA256>", several signatures separated by spaces (during a secret
 * rotation both the new and the previous secret sign).
 *
 * Threads: any; no shared state.
 */
#ifndef WH_SIGN_H
#define WH_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

#define WH_SECRET_PREFIX "whsec_"
#define WH_SECRET_KEY_BYTES 32 /* random bytes in a new secret (the issue asks for >= 24) */
#define WH_SECRET_MIN_KEY_BYTES 16
#define WH_SECRET_MAX_KEY_BYTES 64
/* "whsec_" + base64 of at most WH_SECRET_MAX_KEY_BYTES + NUL. */
#define WH_SECRET_TEXT_MAX (6 + 4 * ((WH_SECRET_MAX_KEY_BYTES + 2) / 3) + 1)
/* "v1," + 44 base64 chars + NUL. */
#define WH_SIGNATURE_MAX 48
/* Header value with up to two signatures. */
#define WH_SIGNATURE_HEADER_MAX (2 * WH_SIGNATURE_MAX)

/* Writes a new random secret ("whsec_" + base64 of WH_SECRET_KEY_BYTES) into out
 * (WH_SECRET_TEXT_MAX bytes). */
void wh_secret_generate(char *out, size_t out_size);

/*
 * Decodes the key of a "whsec_" secret into key (key_size bytes). LC_ERR_INVALID when the
 * prefix is missing, the base64 is malformed, or the key is shorter than
 * WH_SECRET_MIN_KEY_BYTES or longer than key_size.
 */
lc_status_t wh_secret_decode(const char *secret, uint8_t *key, size_t key_size, size_t *key_len);

/*
 * Computes "v1,<base64>" over "<msg_id>.<timestamp_s>.<body>" with the secret's key into
 * out (WH_SIGNATURE_MAX bytes). LC_ERR_INVALID for a bad secret.
 */
lc_status_t wh_sign(const char *secret, const char *msg_id, int64_t timestamp_s, const void *body,
                    size_t body_len, char *out, size_t out_size);

/*
 * The webhook-signature header value signed by `secret` and, when previous is not NULL or
 * empty, also by `previous` ("v1,<new> v1,<old>"). out needs WH_SIGNATURE_HEADER_MAX bytes.
 */
lc_status_t wh_sign_header(const char *secret, const char *previous, const char *msg_id,
                           int64_t timestamp_s, const void *body, size_t body_len, char *out,
                           size_t out_size);

#endif
