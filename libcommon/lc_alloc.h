/*
 * Allocation that aborts on out-of-memory (STYLE: OOM aborts; everything else is handled).
 */
#ifndef LC_ALLOC_H
#define LC_ALLOC_H

#include <stddef.h>

void *lc_malloc(size_t n);
void *lc_calloc(size_t count, size_t size);
void *lc_realloc(void *p, size_t n);
char *lc_strdup(const char *s);
char *lc_strndup(const char *s, size_t n);

#define LC_NEW(type) ((type *) lc_calloc(1, sizeof(type)))

#endif
