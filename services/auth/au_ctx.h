/*
 * au_ctx: what every part of voxi-auth shares while the service runs: the connections,
 * the caches, the rate limiter, the JWT verifier and the work in progress.
 *
 * Created by main.c's start hook; the handlers borrow it. Threads: the loop thread only.
 */
#ifndef AU_CTX_H
#define AU_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include "au_cache.h"
#include "au_config.h"
#include "lc_events.h"
#include "au_jwt.h"
#include "au_ratelimit.h"
#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_pg.h"
#include "lc_service.h"

#define AU_MAX_SUBS 16

/* Subjects auth serves (queue group "auth") and the cache broadcast (every instance). */
#define AU_SUBJECT_AUTHENTICATE "voxi.auth.authenticate"
#define AU_SUBJECT_ORGS_CREATE "voxi.auth.orgs.create"
#define AU_SUBJECT_KEYS_CREATE "voxi.auth.keys.create"
#define AU_SUBJECT_KEYS_LIST "voxi.auth.keys.list"
#define AU_SUBJECT_KEYS_GET "voxi.auth.keys.get"
#define AU_SUBJECT_KEYS_REVOKE "voxi.auth.keys.revoke"
#define AU_SUBJECT_CACHE_EVICT "voxi.auth.cache.evict"
#define AU_QUEUE "auth"

typedef struct au_ctx {
    lc_service_t *svc;
    uv_loop_t *loop;
    lc_nats_t *nc;
    lc_pg_pool_t *pg;
    lc_metrics_t *metrics;
    const au_config_t *cfg;
    au_cache_t *keys; /* au_cred_t by SHA-256 of the key */
    au_cache_t *orgs; /* au_org_limits_t by org id (JWT principals) */
    au_ratelimit_t *rl;
    au_jwt_t *jwt; /* NULL: JWTs not accepted */
    lc_events_t *events;
    struct au_authn *authn;
    size_t inflight;   /* requests being answered */
    size_t background; /* fire-and-forget database writes (last_used_at) */
    bool stopping;
    lc_nats_sub_t *subs[AU_MAX_SUBS];
    void *sub_args[AU_MAX_SUBS]; /* freed at cleanup */
    size_t nsubs;
} au_ctx_t;

#endif
