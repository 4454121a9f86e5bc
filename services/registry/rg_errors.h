/*
 * rg_errors: the field errors of one request (path + message), reported all at once.
 *
 * Validators add to it as they walk a document; at most RG_ERRORS_MAX are kept (the rest
 * only set `truncated`), so a hostile body cannot make the reply unbounded. Paths are JSON
 * paths as the API shows them (`response_engine.nodes[3].next`), at most RG_PATH_MAX bytes.
 *
 * Ownership: the collector owns its strings. Threads: one collector per request, any thread.
 */
#ifndef RG_ERRORS_H
#define RG_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

#define RG_ERRORS_MAX 50
#define RG_PATH_MAX 256

typedef struct {
    char *field;
    char *message;
} rg_field_error_t;

typedef struct {
    rg_field_error_t items[RG_ERRORS_MAX];
    size_t count;
    bool truncated; /* more errors were found than are kept */
} rg_errors_t;

rg_errors_t *rg_errors_create(void);
void rg_errors_destroy(rg_errors_t *errs); /* NULL is a no-op */

/* Adds one error (copies field and the formatted message; the message is cut at 512 bytes). */
void rg_errors_add(rg_errors_t *errs, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message of the first error at exactly `field`, or NULL (tests, logs). */
const char *rg_errors_find(const rg_errors_t *errs, const char *field);

/*
 * Child paths. Both write into out (RG_PATH_MAX bytes) and never overflow: a key is cut
 * (at a UTF-8 boundary, marked "...") so that paths naming hostile keys stay short.
 * parent "" means the document root.
 */
void rg_path_key(char *out, const char *parent, const char *key);
void rg_path_index(char *out, const char *parent, size_t index);

#endif
