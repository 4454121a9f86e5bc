#include "au_config.h"

#define RATE_MAX 10000000

const lc_config_entry_t au_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(au_config_t, "AUTH", 9102),
    LC_SERVICE_CONFIG_DATABASE(au_config_t),
    {"VOXI_AUTH_RATE_READ_PER_MIN", LC_CFG_INT, "600", 1, RATE_MAX, NULL, 0,
     offsetof(au_config_t, rate_read_per_min),
     "requests per minute per API key on read (GET) routes, burst as large; orgs may have "
     "their own (org_limits)"},
    {"VOXI_AUTH_RATE_WRITE_PER_MIN", LC_CFG_INT, "120", 1, RATE_MAX, NULL, 0,
     offsetof(au_config_t, rate_write_per_min),
     "requests per minute per API key on write routes, burst as large; orgs may have their "
     "own (org_limits)"},
    {"VOXI_AUTH_RATE_ANON_PER_MIN", LC_CFG_INT, "60", 1, RATE_MAX, NULL, 0,
     offsetof(au_config_t, rate_anon_per_min),
     "requests per minute per client IP on routes that need no credentials and for requests "
     "without valid ones (401s carry its headers; past it they get 429)"},
    {"VOXI_AUTH_KEY_CACHE_TTL_MS", LC_CFG_INT, "5000", 0, 60000, NULL, 0,
     offsetof(au_config_t, key_cache_ttl_ms),
     "how long a verified key is trusted without the database (0 = no cache); bounds how "
     "late a revocation can take effect"},
    {"VOXI_AUTH_KEY_CACHE_SIZE", LC_CFG_INT, "10000", 1, 10000000, NULL, 0,
     offsetof(au_config_t, key_cache_size), "keys (and orgs) the cache holds"},
    {"VOXI_AUTH_JWT_HS256_SECRET", LC_CFG_STRING, NULL, 32, 1024, NULL, LC_CFG_SECRET,
     offsetof(au_config_t, jwt_hs256_secret),
     "shared secret (at least 32 bytes) for HS256 JWT bearer tokens; unset = HS256 off"},
    {"VOXI_AUTH_JWT_RS256_PUBLIC_KEY_FILE", LC_CFG_STRING, NULL, 1, 4096, NULL, 0,
     offsetof(au_config_t, jwt_rs256_public_key_file),
     "PEM RSA public key (2048 bits or more) for RS256 JWT bearer tokens; unset = RS256 off"},
    {"VOXI_AUTH_JWT_ISSUER", LC_CFG_STRING, NULL, 1, 1024, NULL, 0,
     offsetof(au_config_t, jwt_issuer), "required `iss` of JWTs (must be set when a JWT key is)"},
    {"VOXI_AUTH_JWT_AUDIENCE", LC_CFG_STRING, NULL, 1, 1024, NULL, 0,
     offsetof(au_config_t, jwt_audience), "required `aud` of JWTs (must be set when a JWT key is)"},
    {"VOXI_AUTH_JWT_LEEWAY_S", LC_CFG_INT, "30", 0, 300, NULL, 0,
     offsetof(au_config_t, jwt_leeway_s), "clock skew allowed on JWT `exp` and `nbf`"},
};

const size_t au_config_count = sizeof(au_config_table) / sizeof(au_config_table[0]);
