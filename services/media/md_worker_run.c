#include "md_worker_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "md_agent.h"
#include "md_events.h"
#include "md_heartbeat.h"
#include "md_playout.h"
#include "md_prompt.h"
#include "md_recording.h"
#include "md_route.h"
#include "md_rtp_session.h"
#include "md_sip_acl.h"
#include "md_sip_transport.h"
#include "md_sip_uac.h"
#include "md_sip_txn.h"
#include "md_sip_ua.h"

#define HANGUP_GRACE_MS 300

typedef struct {
    md_worker_t *w;
    uv_timer_t drain_timer;
    bool timer_open;
    bool shutting_down;
    int closing_parts;
} run_state_t;

/* one worker per process today; kept outside md_worker_t so that header stays plain */
static run_state_t run;

static lc_status_t
parse_codecs(md_worker_t *w)
{
    char *list = lc_strdup(w->cfg->codecs ? w->cfg->codecs : "");
    char *save = NULL;
    lc_status_t st = LC_OK;
    w->ncodecs = 0;
    for (char *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        const md_codec_desc_t *found = NULL;
        for (int i = 0; i < MD_CODEC_COUNT_; i++) {
            const md_codec_desc_t *d = md_codec_desc((md_codec_id_t) i);
            if (d && strcasecmp(d->encoding_name, tok) == 0)
                found = d;
        }
        if (found == NULL) {
            LC_ERROR("media", "VOXI_MEDIA_CODECS: unknown codec \"%s\"", tok);
            st = LC_ERR_CONFIG;
            break;
        }
        bool dup = false;
        for (size_t i = 0; i < w->ncodecs; i++)
            dup = dup || w->codecs[i] == found->id;
        if (!dup && w->ncodecs < MD_CODEC_COUNT_)
            w->codecs[w->ncodecs++] = found->id;
    }
    free(list);
    if (st == LC_OK && w->ncodecs == 0) {
        LC_ERROR("media", "VOXI_MEDIA_CODECS lists no codec");
        st = LC_ERR_CONFIG;
    }
    w->sdp_prefs.codecs = w->codecs;
    w->sdp_prefs.ncodecs = w->ncodecs;
    w->sdp_prefs.telephone_event = true;
    w->sdp_prefs.srtp_allowed = w->cfg->srtp;
    return st;
}

static void
init_metrics(md_worker_t *w)
{
    lc_metrics_t *r = w->metrics;
    md_worker_metrics_t *m = &w->m;
    m->calls_active = lc_metrics_gauge(r, "voxi_media_calls_active", "calls in progress", NULL);
    const char *ch = "calls started, by direction";
    m->calls_inbound = lc_metrics_counter(r, "voxi_media_calls_total", ch, "direction=\"inbound\"");
    m->calls_outbound =
        lc_metrics_counter(r, "voxi_media_calls_total", ch, "direction=\"outbound\"");
    const char *rh = "INVITEs refused for capacity, by reason";
    m->calls_rejected_full =
        lc_metrics_counter(r, "voxi_media_calls_refused_total", rh, "reason=\"full\"");
    m->calls_rejected_draining =
        lc_metrics_counter(r, "voxi_media_calls_refused_total", rh, "reason=\"draining\"");
    const char *eh = "calls finished, by outcome";
    m->calls_ended =
        lc_metrics_counter(r, "voxi_media_calls_finished_total", eh, "outcome=\"ended\"");
    m->calls_failed =
        lc_metrics_counter(r, "voxi_media_calls_finished_total", eh, "outcome=\"failed\"");
    m->dtmf_digits =
        lc_metrics_counter(r, "voxi_media_dtmf_digits_total", "DTMF digits received", NULL);
}

lc_status_t
md_worker_start(md_worker_t *w, lc_service_t *svc, const md_settings_t *cfg,
                int64_t *shutdown_timeout_ms)
{
    lc_status_t st;
    memset(&run, 0, sizeof(run));
    run.w = w;
    w->svc = svc;
    w->cfg = cfg;
    w->loop = lc_service_loop(svc);
    w->nats = lc_service_nats(svc);
    w->metrics = lc_service_metrics(svc);
    snprintf(w->instance_id, sizeof(w->instance_id), "%s", lc_service_instance_id(svc));
    md_sip_init();
    init_metrics(w);
    LC_TRY(parse_codecs(w));
    const char *pub = cfg->public_addr ? cfg->public_addr : cfg->sip_addr;
    struct sockaddr_storage probe;
    if (!md_sip_addr_from_ip(pub, 0, &probe) || strcmp(pub, "0.0.0.0") == 0 ||
        strcmp(pub, "::") == 0) {
        LC_ERROR("media", "VOXI_MEDIA_PUBLIC_ADDR must be an IP address callers can reach "
                          "(set it when VOXI_MEDIA_SIP_ADDR is a wildcard)");
        return LC_ERR_CONFIG;
    }
    snprintf(w->public_addr, sizeof(w->public_addr), "%s", pub);
    if (cfg->rtp_port_max < cfg->rtp_port_min + 1) {
        LC_ERROR("media", "VOXI_MEDIA_RTP_PORT_MAX must be above VOXI_MEDIA_RTP_PORT_MIN");
        return LC_ERR_CONFIG;
    }
    /* the drain is ours: make lc_service wait for it (plus time for the last BYEs) */
    if (*shutdown_timeout_ms < cfg->drain_timeout_ms + 2000)
        *shutdown_timeout_ms = cfg->drain_timeout_ms + 2000;

    if (cfg->welcome_text && cfg->welcome_text[0] &&
        md_prompt_create(cfg->welcome_text, &w->prompt) != LC_OK)
        LC_WARN("media", "no welcome prompt: the demo only echoes");
    char err[160] = "";
    md_sip_acl_opts_t ao = {.allow_cidrs = cfg->allow_cidrs,
                            .users = cfg->sip_users,
                            .realm = cfg->sip_realm,
                            .flood_rate = (int) cfg->flood_rate};
    if (md_sip_acl_create(&ao, &w->acl, err, sizeof(err)) != LC_OK) {
        LC_ERROR("media", "VOXI_MEDIA_ALLOW_CIDRS / VOXI_MEDIA_SIP_USERS: %s", err);
        return LC_ERR_CONFIG;
    }
    w->ports = md_rtp_ports_create((int) cfg->rtp_port_min, (int) cfg->rtp_port_max);
    LC_TRY(md_playout_create(w->loop, w->metrics, &w->playout));
    w->events = md_events_create(w->loop, w->nats, w->metrics);
    w->router =
        md_router_create(w->nats, w->metrics, cfg->route_timeout_ms, cfg->route_cache_ttl_ms);
    LC_TRY(md_sip_ua_create(w, &w->ua));
    md_sip_transport_opts_t to = {.bind_addr = cfg->sip_addr,
                                  .port = (int) cfg->sip_port,
                                  .tcp = cfg->sip_tcp,
                                  .metrics = w->metrics};
    st = md_sip_transport_create(w->loop, &to, md_sip_ua_on_transport, w->ua, &w->transport);
    if (st != LC_OK)
        return st;
    w->sip_port = md_sip_transport_port(w->transport);
    md_sip_txn_opts_t xo = {.transport = w->transport,
                            .via_host = w->public_addr,
                            .via_port = w->sip_port,
                            .metrics = w->metrics};
    md_sip_tu_t tu = {.on_request = md_sip_ua_on_request,
                      .on_stray_response = md_sip_ua_on_stray_response,
                      .arg = w->ua};
    LC_TRY(md_sip_txn_layer_create(w->loop, &xo, &tu, &w->txns));
    w->uac = md_sip_uac_create(w);
    w->recordings = md_recording_srv_create(w);
    w->heartbeat = md_heartbeat_create(w);
    md_agent_worker_init(w, (size_t) cfg->greeting_cache_max);
    uv_timer_init(w->loop, &run.drain_timer);
    uv_unref((uv_handle_t *) &run.drain_timer);
    run.timer_open = true;
    LC_INFO("media", "SIP on %s:%d (public %s), RTP %lld-%lld, up to %lld calls, demo user %s",
            cfg->sip_addr, w->sip_port, w->public_addr, (long long) cfg->rtp_port_min,
            (long long) cfg->rtp_port_max, (long long) cfg->max_calls,
            cfg->demo_user ? cfg->demo_user : "-");
    return LC_OK;
}

/* ---- shutdown ---- */

static void
part_closed(void *arg)
{
    (void) arg;
    run.closing_parts--;
}

static void
timer_closed(uv_handle_t *h)
{
    (void) h;
    run.closing_parts--;
}

/* Closes every module with handles, in reverse order of creation. */
static void
shutdown_modules(md_worker_t *w)
{
    if (run.shutting_down)
        return;
    run.shutting_down = true;
    LC_INFO("media", "closing SIP and media");
    md_heartbeat_destroy(w->heartbeat);
    w->heartbeat = NULL;
    if (run.timer_open) {
        run.timer_open = false;
        run.closing_parts++;
        uv_close((uv_handle_t *) &run.drain_timer, timer_closed);
    }
    if (w->txns) {
        run.closing_parts++;
        md_sip_txn_layer_close(w->txns, part_closed, NULL);
    }
    if (w->transport) {
        run.closing_parts++;
        md_sip_transport_close(w->transport, part_closed, NULL);
    }
    md_playout_destroy(w->playout);
    w->playout = NULL;
    md_events_stop(w->events);
}

static void
on_hangup_grace(uv_timer_t *t)
{
    (void) t;
    shutdown_modules(run.w);
}

static void
on_drain_timeout(uv_timer_t *t)
{
    md_worker_t *w = run.w;
    (void) t;
    LC_WARN("media", "drain timeout: hanging up %zu calls", md_sip_ua_call_count(w->ua));
    md_sip_ua_hangup_all(w->ua, "shutdown");
    uv_timer_start(&run.drain_timer, on_hangup_grace, HANGUP_GRACE_MS, 0);
}

void
md_worker_stop(md_worker_t *w)
{
    w->draining = true;
    md_sip_uac_stop(w->uac);
    if (w->heartbeat)
        md_heartbeat_now(w->heartbeat);
    size_t calls = w->ua ? md_sip_ua_call_count(w->ua) : 0;
    LC_INFO("media", "draining: %zu calls in progress, new INVITEs get 503 (up to %lld ms)", calls,
            (long long) w->cfg->drain_timeout_ms);
    if (calls == 0 || !run.timer_open) {
        shutdown_modules(w);
        return;
    }
    uv_timer_start(&run.drain_timer, on_drain_timeout, (uint64_t) w->cfg->drain_timeout_ms, 0);
}

size_t
md_worker_inflight(md_worker_t *w)
{
    size_t calls = w->ua ? md_sip_ua_call_count(w->ua) + md_sip_ua_pending_count(w->ua) : 0;
    if (w->draining && calls == 0 && !run.shutting_down)
        shutdown_modules(w);
    return calls + md_events_inflight(w->events) + (size_t) run.closing_parts;
}

bool
md_worker_ready(md_worker_t *w, char *reason, size_t reason_size)
{
    if (w->transport == NULL) {
        snprintf(reason, reason_size, "SIP not listening");
        return false;
    }
    return true;
}

void
md_worker_cleanup(md_worker_t *w)
{
    if (w->loop == NULL)
        return; /* never started */
    /* the loop ended: whatever is still open (a second signal, a failed start) closes now */
    if (w->ua && !run.shutting_down)
        md_sip_ua_hangup_all(w->ua, "shutdown");
    shutdown_modules(w);
    uv_run(w->loop, UV_RUN_DEFAULT);
    md_sip_uac_destroy(w->uac);
    md_recording_srv_destroy(w->recordings);
    md_sip_txn_layer_destroy(w->txns);
    md_sip_transport_destroy(w->transport);
    md_sip_ua_destroy(w->ua);
    md_router_destroy(w->router);
    md_sip_acl_destroy(w->acl);
    md_rtp_ports_destroy(w->ports);
    md_prompt_destroy(w->prompt);
    md_agent_worker_cleanup(w);
    md_events_destroy(w->events);
    memset(w, 0, sizeof(*w));
}
