/*
 * rg_json: JSON helpers of the registry on top of jansson.
 *
 * Threads: any; no shared state.
 */
#ifndef RG_JSON_H
#define RG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Largest request body (ApiRequest.json) the registry parses. */
#define RG_JSON_MAX_BYTES (1024u * 1024u)

/*
 * Parses untrusted JSON text that must be one object: duplicate keys and NUL characters
 * are refused. Returns a new reference, or NULL with a short reason in err (err_size bytes)
 * that is safe to show to the caller.
 */
json_t *rg_json_parse_object(const char *text, size_t len, char *err, size_t err_size);

/*
 * RFC 7396 JSON merge patch: returns a new value, `target` with `patch` applied (neither is
 * modified). target may be NULL (as if absent).
 */
json_t *rg_json_merge_patch(const json_t *target, const json_t *patch);

/*
 * Compact text of v (caller frees with free()). Reals are written with 15 significant
 * digits when that reads back to the same document (0.7, not 0.69999999999999996), else
 * with 17, so the text always reads back exactly.
 */
char *rg_json_dumps(const json_t *v);

/* Number of UTF-8 code points in s (jansson strings are valid UTF-8). */
size_t rg_utf8_chars(const char *s, size_t bytes);

/* key is one of the strings of the NULL-terminated list (a NULL list holds nothing). */
bool rg_str_in_list(const char *const *list, const char *key);

#endif
