/*
 * rg_secret: encryption at rest of the secrets the registry stores (outbound trunk
 * passwords), with AES-256-GCM (OpenSSL EVP).
 *
 * Sealed form: "enc:v1:" + base64(12-byte random nonce | ciphertext | 16-byte tag), with the
 * owning row's id as additional authenticated data, so a value copied to another row does
 * not open. Without a key (VOXI_REGISTRY_SECRET_KEY unset) values are stored as
 * "plain:<text>" and a warning is logged at start; values of either form stay readable when
 * a key is added later (they are sealed on their next write).
 *
 * Threads: a sealer may be shared by threads (it is immutable after create).
 */
#ifndef RG_SECRET_H
#define RG_SECRET_H

#include <stdbool.h>

#include "lc_status.h"

typedef struct rg_secret rg_secret_t;

/* key_hex: 64 hex characters (32 bytes), or NULL/"" for none. LC_ERR_CONFIG when malformed.
 * The key is copied and wiped on destroy. */
lc_status_t rg_secret_create(const char *key_hex, rg_secret_t **out);
void rg_secret_destroy(rg_secret_t *sec); /* NULL is a no-op */
bool rg_secret_has_key(const rg_secret_t *sec);

/* Seals plaintext for the row `context`; returns a new string (free()). */
char *rg_secret_seal(const rg_secret_t *sec, const char *plaintext, const char *context);

/* Opens a sealed value into *out (a new string; free()). LC_ERR_INVALID for an unknown form,
 * a tampered value or another row's value; LC_ERR_CONFIG when it is sealed and no key is
 * configured. */
lc_status_t rg_secret_open(const rg_secret_t *sec, const char *sealed, const char *context,
                           char **out);

#endif
