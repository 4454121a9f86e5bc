#include "md_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

#define INITIAL_BUCKETS 64

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    void *value;
    char key[]; /* NUL-terminated copy */
} entry_t;

struct md_map {
    entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t size;
};

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (uint8_t) *s;
        h *= 1099511628211ull;
    }
    return h;
}

md_map_t *
md_map_create(void)
{
    md_map_t *map = LC_NEW(md_map_t);
    map->nbuckets = INITIAL_BUCKETS;
    map->buckets = lc_calloc(map->nbuckets, sizeof(entry_t *));
    return map;
}

void
md_map_destroy(md_map_t *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->nbuckets; i++) {
        entry_t *e = map->buckets[i];
        while (e) {
            entry_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(map->buckets);
    free(map);
}

static entry_t **
find_slot(const md_map_t *map, const char *key, uint64_t hash)
{
    entry_t **slot = &map->buckets[hash & (map->nbuckets - 1)];
    while (*slot && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
        slot = &(*slot)->next;
    return slot;
}

void *
md_map_get(const md_map_t *map, const char *key)
{
    entry_t **slot = find_slot(map, key, fnv1a(key));
    return *slot ? (*slot)->value : NULL;
}

static void
grow(md_map_t *map)
{
    size_t n = map->nbuckets * 2;
    entry_t **b = lc_calloc(n, sizeof(entry_t *));
    for (size_t i = 0; i < map->nbuckets; i++) {
        entry_t *e = map->buckets[i];
        while (e) {
            entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(map->buckets);
    map->buckets = b;
    map->nbuckets = n;
}

void *
md_map_put(md_map_t *map, const char *key, void *value)
{
    uint64_t hash = fnv1a(key);
    entry_t **slot = find_slot(map, key, hash);
    if (*slot) {
        void *old = (*slot)->value;
        (*slot)->value = value;
        return old;
    }
    size_t len = strlen(key);
    entry_t *e = lc_malloc(sizeof(entry_t) + len + 1);
    memcpy(e->key, key, len + 1);
    e->hash = hash;
    e->value = value;
    e->next = NULL;
    *slot = e;
    map->size++;
    if (map->size > map->nbuckets)
        grow(map);
    return NULL;
}

void *
md_map_remove(md_map_t *map, const char *key)
{
    entry_t **slot = find_slot(map, key, fnv1a(key));
    entry_t *e = *slot;
    if (e == NULL)
        return NULL;
    void *value = e->value;
    *slot = e->next;
    free(e);
    map->size--;
    return value;
}

size_t
md_map_size(const md_map_t *map)
{
    return map->size;
}

void
md_map_foreach(const md_map_t *map, void (*fn)(const char *key, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < map->nbuckets; i++)
        for (entry_t *e = map->buckets[i]; e; e = e->next)
            fn(e->key, e->value, arg);
}
