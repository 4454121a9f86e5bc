#include "md_route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "md_map.h"
#include "voxi/v1/registry.pb-c.h"

typedef struct {
    md_route_t route;
    bool none; /* remembered as having no route */
    int64_t expires_ms;
} cache_entry_t;

struct md_router {
    lc_nats_t *nats;
    int64_t timeout_ms, ttl_ms;
    md_map_t *cache; /* number -> cache_entry_t */
    lc_metric_t *m_hit, *m_ok, *m_not_found, *m_unavailable;
};

struct md_route_lookup {
    md_router_t *r;
    uint64_t nats_id;
    md_route_cb cb;
    void *arg;
    char number[MD_ROUTE_NUMBER_MAX + 1];
};

md_router_t *
md_router_create(lc_nats_t *nats, lc_metrics_t *metrics, int64_t timeout_ms, int64_t ttl_ms)
{
    md_router_t *r = LC_NEW(md_router_t);
    r->nats = nats;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    r->ttl_ms = ttl_ms;
    r->cache = md_map_create();
    const char *h = "dialled numbers resolved, by outcome";
    const char *n = "voxi_media_route_lookups_total";
    r->m_hit = lc_metrics_counter(metrics, n, h, "outcome=\"cached\"");
    r->m_ok = lc_metrics_counter(metrics, n, h, "outcome=\"resolved\"");
    r->m_not_found = lc_metrics_counter(metrics, n, h, "outcome=\"not_found\"");
    r->m_unavailable = lc_metrics_counter(metrics, n, h, "outcome=\"unavailable\"");
    return r;
}

static void
free_entry(const char *key, void *value, void *arg)
{
    (void) key;
    (void) arg;
    cache_entry_t *e = value;
    md_route_clear(&e->route);
    free(e);
}

void
md_router_destroy(md_router_t *r)
{
    if (r == NULL)
        return;
    md_map_foreach(r->cache, free_entry, NULL);
    md_map_destroy(r->cache);
    free(r);
}

bool
md_route_number_ok(const char *number)
{
    size_t n = number ? strlen(number) : 0;
    if (n == 0 || n > MD_ROUTE_NUMBER_MAX)
        return false;
    for (const char *c = number; *c; c++) {
        bool ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= 'A' && *c <= 'Z') || strchr("+*#._-", *c) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

void
md_route_copy(md_route_t *dst, const md_route_t *src)
{
    *dst = *src;
    dst->agent_json = src->agent_json ? lc_strdup(src->agent_json) : NULL;
}

void
md_route_clear(md_route_t *route)
{
    free(route->agent_json);
    memset(route, 0, sizeof(*route));
}

/* ---- cache ---- */

typedef struct {
    int64_t now_ms;
    char **keys;
    size_t n;
} purge_t;

static void
collect_expired(const char *key, void *value, void *arg)
{
    purge_t *p = arg;
    cache_entry_t *e = value;
    if (e->expires_ms <= p->now_ms)
        p->keys[p->n++] = lc_strdup(key);
}

static void
purge_expired(md_router_t *r, int64_t now_ms)
{
    purge_t p = {.now_ms = now_ms, .keys = lc_calloc(md_map_size(r->cache) + 1, sizeof(char *))};
    md_map_foreach(r->cache, collect_expired, &p);
    for (size_t i = 0; i < p.n; i++) {
        free_entry(NULL, md_map_remove(r->cache, p.keys[i]), NULL);
        free(p.keys[i]);
    }
    free(p.keys);
}

/* route NULL: remember that number has no route. */
static void
cache_put(md_router_t *r, const char *number, const md_route_t *route)
{
    if (r->ttl_ms <= 0)
        return;
    int64_t now = lc_time_mono_ms();
    cache_entry_t *old = md_map_get(r->cache, number);
    if (old == NULL && md_map_size(r->cache) >= MD_ROUTE_CACHE_MAX) {
        purge_expired(r, now);
        if (md_map_size(r->cache) >= MD_ROUTE_CACHE_MAX)
            return; /* bounded: this one is simply not cached */
    }
    cache_entry_t *e = LC_NEW(cache_entry_t);
    e->none = route == NULL;
    if (route)
        md_route_copy(&e->route, route);
    e->expires_ms = now + r->ttl_ms;
    old = md_map_put(r->cache, number, e);
    if (old)
        free_entry(NULL, old, NULL);
}

md_route_cache_t
md_router_cached(md_router_t *r, const char *number, int64_t now_ms, md_route_t *out)
{
    cache_entry_t *e = number ? md_map_get(r->cache, number) : NULL;
    if (e == NULL)
        return MD_ROUTE_MISS;
    if (e->expires_ms <= now_ms) {
        free_entry(NULL, md_map_remove(r->cache, number), NULL);
        return MD_ROUTE_MISS;
    }
    lc_metric_inc(r->m_hit);
    if (e->none)
        return MD_ROUTE_NONE;
    md_route_copy(out, &e->route);
    return MD_ROUTE_HIT;
}

void
md_router_remember_none(md_router_t *r, const char *number)
{
    if (md_route_number_ok(number))
        cache_put(r, number, NULL);
}

/* ---- lookups ---- */

static bool
copy_id(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n == 0 || n >= size)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static void
on_reply(lc_status_t status, const lc_nats_msg_t *reply, void *arg)
{
    md_route_lookup_t *l = arg;
    md_router_t *r = l->r;
    md_route_t route;
    memset(&route, 0, sizeof(route));
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = status;
    if (st == LC_OK)
        st = lc_pb_unpack(lc_nats_msg_data(reply), lc_nats_msg_len(reply),
                          &voxi__v1__resolve_number_reply__descriptor, &env, &body);
    if (st == LC_OK) {
        Voxi__V1__ResolveNumberReply *rep = (Voxi__V1__ResolveNumberReply *) body;
        /* the bus is untrusted: bounded ids, bounded agent document */
        if (!copy_id(route.org_id, sizeof(route.org_id), rep->org_id) ||
            !copy_id(route.number_id, sizeof(route.number_id), rep->number_id) ||
            !copy_id(route.agent_id, sizeof(route.agent_id), rep->agent_id) ||
            strlen(rep->agent_json) > MD_ROUTE_AGENT_JSON_MAX) {
            LC_LOG_RL(LC_LOG_WARN, "route", 1, "numbers.resolve: malformed reply for %s",
                      l->number);
            st = LC_ERR_PROTOCOL;
        } else {
            route.agent_version = rep->agent_version;
            route.agent_json = rep->agent_json[0] ? lc_strdup(rep->agent_json) : NULL;
        }
    }
    lc_pb_free(env, body);
    if (st == LC_OK) {
        lc_metric_inc(r->m_ok);
        cache_put(r, l->number, &route);
    } else if (st == LC_ERR_NOT_FOUND || st == LC_ERR_INVALID) {
        lc_metric_inc(r->m_not_found);
        st = LC_ERR_NOT_FOUND;
    } else {
        lc_metric_inc(r->m_unavailable);
        LC_LOG_RL(LC_LOG_WARN, "route", 1, "numbers.resolve for %s: %s", l->number,
                  lc_status_name(st));
        st = LC_ERR_UNAVAILABLE;
    }
    l->cb(l->arg, st, st == LC_OK ? &route : NULL);
    md_route_clear(&route);
    free(l);
}

lc_status_t
md_router_lookup(md_router_t *r, const char *number, md_route_cb cb, void *arg,
                 md_route_lookup_t **out)
{
    *out = NULL;
    if (!md_route_number_ok(number))
        return LC_ERR_INVALID;
    Voxi__V1__ResolveNumberRequest req = VOXI__V1__RESOLVE_NUMBER_REQUEST__INIT;
    req.number = (char *) number;
    char rid[48];
    lc_id_new("req_", rid, sizeof(rid));
    lc_pb_meta_t meta = {.request_id = rid, .deadline_unix_ms = lc_time_wall_ms() + r->timeout_ms};
    uint8_t *buf = NULL;
    size_t len = 0;
    LC_TRY(lc_pb_pack(&meta, &req.base, &buf, &len));
    md_route_lookup_t *l = LC_NEW(md_route_lookup_t);
    l->r = r;
    l->cb = cb;
    l->arg = arg;
    snprintf(l->number, sizeof(l->number), "%s", number);
    lc_status_t st = lc_nats_request(r->nats, MD_ROUTE_SUBJECT, buf, len, r->timeout_ms, on_reply,
                                     l, &l->nats_id);
    free(buf);
    if (st != LC_OK) {
        lc_metric_inc(r->m_unavailable);
        free(l);
        return LC_ERR_UNAVAILABLE;
    }
    *out = l;
    return LC_OK;
}

void
md_route_lookup_cancel(md_route_lookup_t *lookup)
{
    if (lookup == NULL)
        return;
    lc_nats_request_cancel(lookup->r->nats, lookup->nats_id);
    free(lookup);
}
