/*
 * au_scope: the permission scopes of API keys and JWTs, as a bit set.
 *
 * The public scope list is fixed by the API design; `platform:admin` is held only by
 * platform-admin keys (created by `voxi-auth bootstrap`) and can never be granted through
 * the API. Scopes travel as names (on the bus, in JSON, in the database) and are checked
 * as bits.
 *
 * Threads: any (pure functions, constant tables).
 */
#ifndef AU_SCOPE_H
#define AU_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint32_t au_scopes_t;

enum {
    AU_SCOPE_AGENTS_READ = 1u << 0,
    AU_SCOPE_AGENTS_WRITE = 1u << 1,
    AU_SCOPE_NUMBERS_READ = 1u << 2,
    AU_SCOPE_NUMBERS_WRITE = 1u << 3,
    AU_SCOPE_CALLS_READ = 1u << 4,
    AU_SCOPE_CALLS_WRITE = 1u << 5,
    AU_SCOPE_WEBHOOKS_READ = 1u << 6,
    AU_SCOPE_WEBHOOKS_WRITE = 1u << 7,
    AU_SCOPE_KEYS_ADMIN = 1u << 8,
    AU_SCOPE_PLATFORM_ADMIN = 1u << 9,
};

/* Every scope an org key may hold (all but platform:admin). */
#define AU_SCOPES_ALL ((au_scopes_t) 0x1ffu)
#define AU_SCOPE_COUNT 10

/* The name of scope bit `index` (0..AU_SCOPE_COUNT-1), e.g. "agents:read"; NULL past the end. */
const char *au_scope_name(size_t index);

/* The bit of one scope name (len bytes, not NUL-terminated), or 0 when unknown. */
au_scopes_t au_scope_parse(const char *name, size_t len);

/*
 * Parses a space-separated list (the JWT `scope` claim, the database's array_to_string).
 * Unknown names are skipped and counted in *unknown_out (may be NULL).
 */
au_scopes_t au_scopes_parse_list(const char *text, size_t *unknown_out);

/*
 * Writes the names of `scopes` in table order, separated by `sep`, into out (always
 * NUL-terminated when out_size > 0). Returns the length needed, like snprintf.
 */
size_t au_scopes_format(au_scopes_t scopes, char sep, char *out, size_t out_size);

/* Number of scopes set. */
int au_scopes_count(au_scopes_t scopes);

#endif
