/*
 * md_map: a string-keyed hash table (FNV-1a, chaining, doubling), for the call, dialog and
 * transaction tables. No dependency of the media worker provides one.
 *
 * Keys are copied; values are borrowed (the map never frees them).
 * Threads: one thread per map.
 */
#ifndef MD_MAP_H
#define MD_MAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct md_map md_map_t;

/* A new empty map. Never NULL (OOM aborts). */
md_map_t *md_map_create(void);
/* Frees the map and its key copies; values are left alone. NULL is a no-op. */
void md_map_destroy(md_map_t *map);

/* The value stored under key, or NULL. */
void *md_map_get(const md_map_t *map, const char *key);
/* Stores value under key (key copied), replacing what was there. Returns the old value. */
void *md_map_put(md_map_t *map, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *md_map_remove(md_map_t *map, const char *key);
size_t md_map_size(const md_map_t *map);

/* Calls fn for every entry. fn must not modify the map; collect keys first to remove. */
void md_map_foreach(const md_map_t *map, void (*fn)(const char *key, void *value, void *arg),
                    void *arg);

#endif
