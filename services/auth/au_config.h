/*
 * au_config: voxi-auth's configuration (VOXI_* environment variables, see README.md).
 *
 * Threads: filled by lc_service_main on the main thread before anything runs; read-only
 * afterwards.
 */
#ifndef AU_CONFIG_H
#define AU_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lc_config.h"
#include "lc_service.h"

typedef struct {
    lc_service_config_t common; /* first member (lc_service) */
    int64_t rate_read_per_min;
    int64_t rate_write_per_min;
    int64_t rate_anon_per_min;
    int64_t key_cache_ttl_ms;
    int64_t key_cache_size;
    char *jwt_hs256_secret; /* secret */
    char *jwt_rs256_public_key_file;
    char *jwt_issuer;
    char *jwt_audience;
    int64_t jwt_leeway_s;
} au_config_t;

extern const lc_config_entry_t au_config_table[];
extern const size_t au_config_count;

#endif
