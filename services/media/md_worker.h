/*
 * md_worker: what one media worker loop shares between its modules: settings, the loop,
 * NATS, metrics, and the modules themselves. main.c fills it in (wiring only); every
 * module borrows it.
 *
 * Threads: one worker per loop; everything in it is used on that loop's thread.
 */
#ifndef MD_WORKER_H
#define MD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_service.h"
#include "md_codec.h"
#include "md_sdp.h"

/* The media settings (main.c's config table fills them; strings owned by lc_config). */
typedef struct {
    char *sip_addr;
    int64_t sip_port;
    bool sip_tcp;
    char *public_addr;
    int64_t rtp_port_min, rtp_port_max;
    int64_t max_calls;
    char *allow_cidrs;
    char *sip_users;
    char *sip_realm;
    int64_t flood_rate;
    char *recordings_dir;
    char *default_org_id;
    int64_t drain_timeout_ms;
    int64_t answer_delay_ms;
    int64_t rtp_timeout_ms;
    char *codecs;
    bool srtp;
    char *demo_user;
    char *welcome_text;
    char *trunk_uri;
    char *trunk_user;
    char *trunk_password;
    int64_t dial_timeout_ms;
    int64_t route_timeout_ms;   /* voxi.registry.numbers.resolve deadline */
    int64_t route_cache_ttl_ms; /* 0 = no cache */
    bool early_media;           /* 183 with the prompt while ringing (answer delay > 0) */
    int64_t greeting_cache_max; /* md_greeting: cached first messages (agent versions) */
} md_settings_t;

typedef struct md_sip_transport md_sip_transport_t;
typedef struct md_sip_txn_layer md_sip_txn_layer_t;
typedef struct md_sip_acl md_sip_acl_t;
typedef struct md_sip_ua md_sip_ua_t;
typedef struct md_rtp_ports md_rtp_ports_t;
typedef struct md_playout md_playout_t;
typedef struct md_prompt md_prompt_t;
typedef struct lc_events md_events_t; /* md_events.h */
typedef struct md_heartbeat md_heartbeat_t;
typedef struct md_sip_uac md_sip_uac_t;
typedef struct md_router md_router_t;
typedef struct md_recording_srv md_recording_srv_t;

typedef struct {
    lc_metric_t *calls_active;
    lc_metric_t *calls_inbound, *calls_outbound;
    lc_metric_t *calls_rejected_full, *calls_rejected_draining;
    lc_metric_t *calls_ended;
    lc_metric_t *calls_failed;
    lc_metric_t *dtmf_digits;
} md_worker_metrics_t;

typedef struct md_worker {
    uv_loop_t *loop;
    lc_service_t *svc;
    lc_nats_t *nats;
    lc_metrics_t *metrics;
    const md_settings_t *cfg;
    char instance_id[96];
    char public_addr[64]; /* for SDP and Contact */
    int sip_port;         /* the port bound */
    md_codec_id_t codecs[MD_CODEC_COUNT_];
    size_t ncodecs;
    md_sdp_prefs_t sdp_prefs;
    bool draining;

    md_sip_transport_t *transport;
    md_sip_txn_layer_t *txns;
    md_sip_acl_t *acl;
    md_sip_ua_t *ua;
    md_rtp_ports_t *ports;
    md_playout_t *playout;
    md_prompt_t *prompt;
    md_events_t *events;
    md_heartbeat_t *heartbeat;
    md_sip_uac_t *uac;
    md_router_t *router;            /* md_route: dialled number -> org and agent */
    md_recording_srv_t *recordings; /* md_recording: voxi.media.<id>.recording.read */
    md_worker_metrics_t m;
} md_worker_t;

#endif
