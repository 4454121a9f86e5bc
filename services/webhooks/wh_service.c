/*
 * The service's hooks: create the modules in order, stop taking work, report work in
 * progress, close the modules' handles when it is done (or when the shutdown timeout
 * passes), free them after the loop ended.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_log.h"
#include "wh_api.h"
#include "wh_consumer.h"
#include "wh_delivery.h"
#include "wh_events.h"
#include "wh_http.h"
#include "wh_invoke.h"
#include "wh_service_hooks.h"

lc_status_t
wh_service_check_config(wh_service_t *ws, char *errors, size_t errors_size)
{
    const wh_config_t *cfg = ws->cfg;
    size_t used = 0;
    lc_status_t st = LC_OK;
    errors[0] = '\0';
    const char *text = cfg->retry_scale ? cfg->retry_scale : "1.0";
    char *end = NULL;
    double scale = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(scale) || scale <= 0 || scale > 1000) {
        used += (size_t) snprintf(errors + used, errors_size - used,
                                  "VOXI_WEBHOOKS_RETRY_SCALE: \"%.32s\" is not a number in "
                                  "(0, 1000]\n",
                                  text);
        st = LC_ERR_CONFIG;
    }
    ws->retry_scale = scale;
    char why[160];
    lc_ssrf_allowlist_destroy(ws->allowlist);
    ws->allowlist = NULL;
    if (lc_ssrf_allowlist_parse(cfg->ssrf_allowlist, &ws->allowlist, why, sizeof(why)) != LC_OK) {
        if (used < errors_size)
            snprintf(errors + used, errors_size - used, "VOXI_WEBHOOKS_SSRF_ALLOWLIST: %s\n", why);
        st = LC_ERR_CONFIG;
    }
    return st;
}

/* ---- shutdown ---- */

static void
module_closed(void *arg)
{
    wh_service_t *ws = arg;
    (void) ws;
}

/* Closes the modules' own handles (idempotent); the loop ends when they and lc_service's
 * are closed. */
static void
close_modules(wh_service_t *ws)
{
    static bool closed;
    if (closed)
        return;
    closed = true;
    lc_events_stop(ws->events);
    wh_http_close(ws->http, module_closed, ws);
    if (ws->delivery)
        wh_delivery_close(ws->delivery, module_closed, ws);
    if (ws->consumer)
        wh_consumer_close(ws->consumer, module_closed, ws);
}

static uv_timer_t force_timer;
static bool force_timer_open;

static void
on_force(uv_timer_t *t)
{
    wh_service_t *ws = t->data;
    LC_WARN("service", "shutdown timeout: cancelling %zu requests in progress",
            wh_http_active(ws->http));
    close_modules(ws);
    uv_close((uv_handle_t *) t, NULL);
    force_timer_open = false;
}

lc_status_t
wh_service_start(lc_service_t *svc, void *arg)
{
    wh_service_t *ws = arg;
    ws->svc = svc;
    ws->loop = lc_service_loop(svc);
    ws->nats = lc_service_nats(svc);
    ws->pg = lc_service_pg(svc);
    ws->metrics = lc_service_metrics(svc);
    ws->instance_id = lc_service_instance_id(svc);
    char errors[512];
    if (wh_service_check_config(ws, errors, sizeof(errors)) != LC_OK) {
        LC_ERROR("service", "invalid configuration: %s", errors);
        return LC_ERR_CONFIG;
    }
    LC_INFO("service", "retry scale %g, SSRF allowlist of %zu networks, plain http %s",
            ws->retry_scale, lc_ssrf_allowlist_count(ws->allowlist),
            ws->cfg->allow_http ? "allowed" : "refused");
    ws->events =
        lc_events_create(ws->loop, ws->nats, ws->metrics, "voxi_webhooks_events_published_total",
                         "events emitted by the webhooks service, by outcome");
    lc_status_t st;
    if ((st = wh_http_create(ws->loop, ws->allowlist, (size_t) ws->cfg->max_concurrent * 2,
                             ws->metrics, &ws->http)) != LC_OK ||
        (st = wh_delivery_create(ws, &ws->delivery)) != LC_OK ||
        (st = wh_consumer_create(ws, &ws->consumer)) != LC_OK ||
        (st = wh_api_create(ws, &ws->api)) != LC_OK || (st = wh_api_start(ws->api)) != LC_OK ||
        (st = wh_invoke_start(ws)) != LC_OK || (st = wh_consumer_start(ws->consumer)) != LC_OK) {
        if (ws->http)
            close_modules(ws);
        return st;
    }
    wh_delivery_start(ws->delivery);
    return LC_OK;
}

void
wh_service_stop(lc_service_t *svc, void *arg)
{
    (void) svc;
    wh_service_t *ws = arg;
    ws->draining = true;
    wh_api_stop(ws->api);
    wh_invoke_stop(ws);
    wh_consumer_stop(ws->consumer);
    wh_delivery_stop(ws->delivery);
    uv_timer_init(ws->loop, &force_timer);
    force_timer.data = ws;
    force_timer_open = true;
    uv_timer_start(&force_timer, on_force, (uint64_t) ws->cfg->common.shutdown_timeout_ms, 0);
}

size_t
wh_service_inflight(void *arg)
{
    wh_service_t *ws = arg;
    size_t n = wh_api_inflight(ws->api) + wh_invoke_inflight() +
               wh_consumer_inflight(ws->consumer) + wh_delivery_inflight(ws->delivery) +
               lc_events_inflight(ws->events);
    if (n == 0 && ws->draining) {
        close_modules(ws);
        if (force_timer_open) {
            uv_timer_stop(&force_timer);
            uv_close((uv_handle_t *) &force_timer, NULL);
            force_timer_open = false;
        }
    }
    return n;
}

bool
wh_service_ready(void *arg, char *reason, size_t reason_size)
{
    wh_service_t *ws = arg;
    if (!wh_consumer_ready(ws->consumer)) {
        snprintf(reason, reason_size, "event consumer not set up yet");
        return false;
    }
    return true;
}

void
wh_service_cleanup(void *arg)
{
    wh_service_t *ws = arg;
    wh_consumer_destroy(ws->consumer);
    wh_delivery_destroy(ws->delivery);
    lc_events_destroy(ws->events);
    ws->events = NULL;
    wh_api_destroy(ws->api);
    wh_http_destroy(ws->http);
    lc_ssrf_allowlist_destroy(ws->allowlist);
    ws->consumer = NULL;
    ws->delivery = NULL;
    ws->api = NULL;
    ws->http = NULL;
    ws->allowlist = NULL;
}
