/*
 * au_text: small checks and conversions of untrusted text (ids, timestamps, names) that
 * several auth modules share; pure functions, fuzzed by tests/fuzz/fuzz_jwt.c.
 *
 * Threads: any.
 */
#ifndef AU_TEXT_H
#define AU_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when text is an id with that prefix (lc_id_new): prefix + 20 lowercase hex. */
bool au_id_valid(const char *text, const char *prefix);

/* Lowercase hex of n bytes and NUL into out (2n + 1 bytes). */
void au_hex(const uint8_t *data, size_t n, char *out);

/*
 * Strict RFC 3339 date-time (section 5.6): YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM),
 * 'T' and 'Z' in either case. Returns false for anything else, including impossible dates.
 */
bool au_parse_rfc3339(const char *text, int64_t *epoch_ms_out);

/* Length in Unicode code points of valid UTF-8 (what jansson hands out). */
size_t au_utf8_length(const char *s);

/* True when s contains a C0 control character or DEL. */
bool au_has_control(const char *s);

#endif
