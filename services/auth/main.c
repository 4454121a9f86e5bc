/*
 * voxi-auth: orgs, API keys, JWTs, scopes and rate limits.
 *
 *   voxi-auth              the service (configuration: VOXI_* variables, README.md)
 *   voxi-auth bootstrap    first org and platform-admin key on an empty database
 *
 * This file only wires the modules: authn.c (voxi.auth.authenticate), keys.c, orgs.c (the
 * REST resources), ratelimit.c, cache.c, jwt.c, events.c, bootstrap.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "au_authn.h"
#include "au_bootstrap.h"
#include "au_config.h"
#include "au_ctx.h"
#include "au_keys.h"
#include "au_orgs.h"
#include "lc_log.h"

static au_config_t au_config;
static au_ctx_t au_ctx;

static lc_status_t
au_start(lc_service_t *svc, void *arg)
{
    au_ctx_t *ctx = arg;
    const au_config_t *cfg = &au_config;
    ctx->svc = svc;
    ctx->cfg = cfg;
    ctx->loop = lc_service_loop(svc);
    ctx->nc = lc_service_nats(svc);
    ctx->pg = lc_service_pg(svc);
    ctx->metrics = lc_service_metrics(svc);

    char err[512];
    au_jwt_opts_t jwt_opts = {.hs256_secret = cfg->jwt_hs256_secret,
                              .rs256_public_key_file = cfg->jwt_rs256_public_key_file,
                              .issuer = cfg->jwt_issuer,
                              .audience = cfg->jwt_audience,
                              .leeway_s = cfg->jwt_leeway_s};
    if (au_jwt_create(&jwt_opts, &ctx->jwt, err, sizeof(err)) != LC_OK) {
        LC_ERROR("config", "%s", err);
        return LC_ERR_CONFIG;
    }
    LC_INFO("config", "JWT bearer tokens: %s%s%s", ctx->jwt ? "accepted" : "off",
            ctx->jwt && cfg->jwt_hs256_secret ? " (HS256)" : "",
            ctx->jwt && cfg->jwt_rs256_public_key_file ? " (RS256)" : "");

    LC_TRY(au_ratelimit_create(ctx->loop, ctx->pg, ctx->metrics, NULL, &ctx->rl));
    ctx->events = lc_events_create(ctx->loop, ctx->nc, ctx->metrics, "voxi_auth_events_total",
                                   "change events auth published to JetStream, by outcome");
    lc_status_t st = au_authn_start(ctx, &ctx->authn);
    if (st == LC_OK)
        st = au_keys_start(ctx);
    if (st == LC_OK)
        st = au_orgs_start(ctx);
    if (st != LC_OK) { /* the service closes; the timers must not keep the loop alive */
        au_ratelimit_close(ctx->rl, NULL, NULL);
        lc_events_stop(ctx->events);
    }
    return st;
}

/* SIGTERM: no new requests; what is in flight finishes (au_inflight). */
static void
au_stop(lc_service_t *svc, void *arg)
{
    au_ctx_t *ctx = arg;
    ctx->stopping = true;
    for (size_t i = 0; i < ctx->nsubs; i++)
        if (ctx->subs[i] != NULL)
            lc_nats_unsubscribe(lc_service_nats(svc), ctx->subs[i]);
    ctx->nsubs = 0;
    au_ratelimit_close(ctx->rl, NULL, NULL); /* gives unspent tokens back */
    lc_events_stop(ctx->events);
}

static size_t
au_inflight(void *arg)
{
    au_ctx_t *ctx = arg;
    return ctx->inflight + ctx->background + lc_events_inflight(ctx->events) +
           (ctx->rl ? au_ratelimit_busy(ctx->rl) : 0);
}

static void
au_cleanup(void *arg)
{
    au_ctx_t *ctx = arg;
    au_authn_destroy(ctx->authn);
    lc_events_destroy(ctx->events);
    au_ratelimit_destroy(ctx->rl);
    au_cache_destroy(ctx->keys);
    au_cache_destroy(ctx->orgs);
    au_jwt_destroy(ctx->jwt);
    for (size_t i = 0; i < AU_MAX_SUBS; i++)
        free(ctx->sub_args[i]);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bootstrap") == 0)
        return au_bootstrap_main(argc - 1, argv + 1);
    lc_service_def_t def = {
        .name = "auth",
        .config_table = au_config_table,
        .config_count = au_config_count,
        .config = &au_config,
        .db_pool_size = 8,
        .start = au_start,
        .stop = au_stop,
        .inflight = au_inflight,
        .cleanup = au_cleanup,
        .arg = &au_ctx,
    };
    return lc_service_main(&def, argc, argv);
}
