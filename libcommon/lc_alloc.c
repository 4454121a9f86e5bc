#include "lc_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
oom(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
lc_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
lc_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        oom(count * size);
    return p;
}

void *
lc_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *
lc_strdup(const char *s)
{
    return lc_strndup(s, strlen(s));
}

char *
lc_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = lc_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
