#include "md_greeting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

struct md_greeting {
    int refs;
    char agent_id[72];
    int32_t version;
    char *text;
    int16_t *pcm;
    size_t samples;
    uint64_t used; /* LRU stamp */
};

struct md_greeting_cache {
    md_greeting_t **entries;
    size_t n, max;
    uint64_t clock;
};

md_greeting_cache_t *
md_greeting_cache_create(size_t max_entries)
{
    md_greeting_cache_t *c = LC_NEW(md_greeting_cache_t);
    c->max = max_entries;
    c->entries = lc_calloc(max_entries ? max_entries : 1, sizeof(md_greeting_t *));
    return c;
}

void
md_greeting_unref(void *arg)
{
    md_greeting_t *g = arg;
    if (g == NULL || --g->refs > 0)
        return;
    free(g->pcm);
    free(g->text);
    free(g);
}

void
md_greeting_cache_destroy(md_greeting_cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        md_greeting_unref(c->entries[i]);
    free(c->entries);
    free(c);
}

static long
find(const md_greeting_cache_t *c, const char *agent_id, int32_t version)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i]->version == version && strcmp(c->entries[i]->agent_id, agent_id) == 0)
            return (long) i;
    return -1;
}

md_greeting_t *
md_greeting_get(md_greeting_cache_t *c, const char *agent_id, int32_t version)
{
    long i = find(c, agent_id, version);
    if (i < 0)
        return NULL;
    md_greeting_t *g = c->entries[i];
    g->used = ++c->clock;
    g->refs++;
    return g;
}

static void
remove_at(md_greeting_cache_t *c, size_t i)
{
    md_greeting_unref(c->entries[i]);
    c->entries[i] = c->entries[--c->n];
}

void
md_greeting_put(md_greeting_cache_t *c, const char *agent_id, int32_t version, const char *text,
                const int16_t *pcm, size_t samples)
{
    if (c->max == 0 || samples == 0 || samples > MD_GREETING_MAX_SAMPLES)
        return;
    long old = find(c, agent_id, version);
    if (old >= 0)
        remove_at(c, (size_t) old);
    /* an older version of the same agent is dead weight */
    for (size_t i = 0; i < c->n;)
        if (strcmp(c->entries[i]->agent_id, agent_id) == 0)
            remove_at(c, i);
        else
            i++;
    if (c->n == c->max) {
        size_t lru = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->entries[i]->used < c->entries[lru]->used)
                lru = i;
        remove_at(c, lru);
    }
    md_greeting_t *g = LC_NEW(md_greeting_t);
    g->refs = 1;
    snprintf(g->agent_id, sizeof(g->agent_id), "%s", agent_id);
    g->version = version;
    g->text = lc_strdup(text ? text : "");
    g->pcm = lc_malloc(samples * sizeof(int16_t));
    memcpy(g->pcm, pcm, samples * sizeof(int16_t));
    g->samples = samples;
    g->used = ++c->clock;
    c->entries[c->n++] = g;
}

size_t
md_greeting_count(const md_greeting_cache_t *c)
{
    return c->n;
}

const int16_t *
md_greeting_pcm(const md_greeting_t *g, size_t *samples)
{
    *samples = g->samples;
    return g->pcm;
}

const char *
md_greeting_text(const md_greeting_t *g)
{
    return g->text;
}
