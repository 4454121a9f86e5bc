#include "md_heartbeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "md_sip_ua.h"
#include "voxi/v1/media.pb-c.h"

struct md_heartbeat {
    md_worker_t *w;
    uv_timer_t timer;
    int64_t started_ms;
    lc_metric_t *m_sent;
};

void
md_heartbeat_now(md_heartbeat_t *hb)
{
    md_worker_t *w = hb->w;
    if (!lc_nats_connected(w->nats))
        return;
    char address[96];
    bool v6 = w->public_addr[0] && strchr(w->public_addr, ':') != NULL;
    snprintf(address, sizeof(address), "%s%s%s:%d", v6 ? "[" : "", w->public_addr, v6 ? "]" : "",
             w->sip_port);
    Voxi__V1__MediaHeartbeat m = VOXI__V1__MEDIA_HEARTBEAT__INIT;
    m.worker_id = w->instance_id;
    m.sip_address = address;
    m.sip_tcp = w->cfg->sip_tcp;
    m.active_calls = (uint32_t) md_sip_ua_call_count(w->ua);
    m.max_calls = (uint32_t) w->cfg->max_calls;
    m.draining = w->draining;
    m.version = VOXI_VERSION;
    m.uptime_ms = lc_time_mono_ms() - hb->started_ms;
    char request_id[40];
    lc_id_new("hb_", request_id, sizeof(request_id));
    lc_pb_meta_t meta = {.request_id = request_id};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (lc_pb_pack(&meta, &m.base, &buf, &len) != LC_OK)
        return;
    if (lc_nats_publish(w->nats, MD_HEARTBEAT_SUBJECT, buf, len) == LC_OK)
        lc_metric_inc(hb->m_sent);
    free(buf);
}

static void
on_timer(uv_timer_t *t)
{
    md_heartbeat_now(t->data);
}

md_heartbeat_t *
md_heartbeat_create(md_worker_t *w)
{
    md_heartbeat_t *hb = LC_NEW(md_heartbeat_t);
    hb->w = w;
    hb->started_ms = lc_time_mono_ms();
    hb->m_sent =
        lc_metrics_counter(w->metrics, "voxi_media_heartbeats_total", "heartbeats published", NULL);
    uv_timer_init(w->loop, &hb->timer);
    uv_unref((uv_handle_t *) &hb->timer);
    hb->timer.data = hb;
    uv_timer_start(&hb->timer, on_timer, 0, MD_HEARTBEAT_INTERVAL_MS);
    return hb;
}

static void
closed(uv_handle_t *h)
{
    free(h->data);
}

void
md_heartbeat_destroy(md_heartbeat_t *hb)
{
    if (hb == NULL)
        return;
    uv_timer_stop(&hb->timer);
    uv_close((uv_handle_t *) &hb->timer, closed);
}
