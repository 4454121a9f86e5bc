/*
 * voxi-media: the SIP/RTP worker that answers and places calls and runs the agent per call.
 * This file only wires: the configuration table and lc_service's hooks (md_worker_run.c
 * creates the modules in order and tears them down in reverse).
 */
#include <stddef.h>
#include <string.h>

#include "lc_service.h"
#include "md_worker.h"
#include "md_worker_run.h"

typedef struct {
    lc_service_config_t common;
    md_settings_t media;
} md_config_t;

static md_config_t md_config;
static md_worker_t md_worker;

#define M(field) offsetof(md_config_t, media.field)

static const lc_config_entry_t md_config_table[] = {
    LC_SERVICE_CONFIG_COMMON(md_config_t, "MEDIA", 9105),
    {"VOXI_MEDIA_SIP_ADDR", LC_CFG_STRING, "127.0.0.1", 2, 64, NULL, 0, M(sip_addr),
     "IP address SIP (UDP and TCP) and RTP bind"},
    {"VOXI_MEDIA_SIP_PORT", LC_CFG_INT, "5060", 0, 65535, NULL, 0, M(sip_port),
     "SIP port for UDP and TCP (0 = any free port)"},
    {"VOXI_MEDIA_SIP_TCP", LC_CFG_BOOL, "true", 0, 0, NULL, 0, M(sip_tcp),
     "also accept SIP over TCP"},
    {"VOXI_MEDIA_PUBLIC_ADDR", LC_CFG_STRING, NULL, 2, 64, NULL, 0, M(public_addr),
     "IP address put in SDP, Contact and Via, for callers behind NAT (default: "
     "VOXI_MEDIA_SIP_ADDR)"},
    {"VOXI_MEDIA_RTP_PORT_MIN", LC_CFG_INT, "20000", 1024, 65534, NULL, 0, M(rtp_port_min),
     "lowest RTP port (RTP even, RTCP the next odd port)"},
    {"VOXI_MEDIA_RTP_PORT_MAX", LC_CFG_INT, "20999", 1025, 65535, NULL, 0, M(rtp_port_max),
     "highest RTP/RTCP port"},
    {"VOXI_MEDIA_MAX_CALLS", LC_CFG_INT, "500", 0, 100000, NULL, 0, M(max_calls),
     "calls at once; beyond, INVITEs get 503 with Retry-After"},
    {"VOXI_MEDIA_ALLOW_CIDRS", LC_CFG_STRING, "127.0.0.0/8,::1/128", 0, 4096, NULL, 0,
     M(allow_cidrs),
     "carrier networks whose INVITEs are accepted without credentials (comma-separated CIDRs)"},
    {"VOXI_MEDIA_SIP_USERS", LC_CFG_STRING, NULL, 3, 4096, NULL, LC_CFG_SECRET, M(sip_users),
     "digest credentials accepted from outside the allowlist: user:password,..."},
    {"VOXI_MEDIA_SIP_REALM", LC_CFG_STRING, "voxi", 1, 64, NULL, 0, M(sip_realm),
     "digest realm of the challenges"},
    {"VOXI_MEDIA_SIP_FLOOD_RATE", LC_CFG_INT, "50", 0, 1000000, NULL, 0, M(flood_rate),
     "SIP messages per second a source outside the allowlist may send before it is dropped "
     "(0 = no limit)"},
    {"VOXI_MEDIA_RECORDINGS_DIR", LC_CFG_STRING, NULL, 1, 1024, NULL, 0, M(recordings_dir),
     "directory for call recordings (stereo WAV); unset = no recording"},
    {"VOXI_MEDIA_DEFAULT_ORG_ID", LC_CFG_STRING, "org_default", 1, 64, NULL, 0, M(default_org_id),
     "org id of call events until numbers are resolved through the registry"},
    {"VOXI_MEDIA_DRAIN_TIMEOUT_MS", LC_CFG_INT, "30000", 0, 3600000, NULL, 0, M(drain_timeout_ms),
     "on SIGTERM, how long calls may go on before they are hung up (VOXI_SHUTDOWN_TIMEOUT_MS "
     "is raised to cover it)"},
    {"VOXI_MEDIA_ANSWER_DELAY_MS", LC_CFG_INT, "0", 0, 60000, NULL, 0, M(answer_delay_ms),
     "how long an inbound call rings before it is answered"},
    {"VOXI_MEDIA_RTP_TIMEOUT_MS", LC_CFG_INT, "60000", 0, 3600000, NULL, 0, M(rtp_timeout_ms),
     "hang up after this long without RTP from the peer (not while on hold; 0 = never)"},
    {"VOXI_MEDIA_CODECS", LC_CFG_STRING, "PCMU,PCMA,G722,opus", 1, 128, NULL, 0, M(codecs),
     "codecs accepted and offered, in order of preference"},
    {"VOXI_MEDIA_SRTP", LC_CFG_BOOL, "true", 0, 0, NULL, 0, M(srtp),
     "accept RTP/SAVP offers with SDES keys (a=crypto)"},
    {"VOXI_MEDIA_DEMO_USER", LC_CFG_STRING, "demo", 1, 64, NULL, 0, M(demo_user),
     "user part answered by the demo: a spoken welcome, then the caller's audio echoed"},
    {"VOXI_MEDIA_WELCOME_TEXT", LC_CFG_STRING,
     "Welcome to VoxiHub. This is the echo test. Say something and hear it back.", 0, 1024, NULL, 0,
     M(welcome_text), "the demo's welcome prompt (spoken by flite; empty = none)"},
    {"VOXI_MEDIA_TRUNK_URI", LC_CFG_STRING, NULL, 5, 256, NULL, 0, M(trunk_uri),
     "SIP URI outbound calls go through (e.g. sip:trunk.example.com:5060)"},
    {"VOXI_MEDIA_TRUNK_USER", LC_CFG_STRING, NULL, 1, 128, NULL, 0, M(trunk_user),
     "digest user for the trunk"},
    {"VOXI_MEDIA_TRUNK_PASSWORD", LC_CFG_STRING, NULL, 1, 128, NULL, LC_CFG_SECRET,
     M(trunk_password), "digest password for the trunk"},
    {"VOXI_MEDIA_DIAL_TIMEOUT_MS", LC_CFG_INT, "60000", 1000, 600000, NULL, 0, M(dial_timeout_ms),
     "how long an outbound call may ring before it is cancelled"},
    {"VOXI_MEDIA_ROUTE_TIMEOUT_MS", LC_CFG_INT, "2000", 100, 30000, NULL, 0, M(route_timeout_ms),
     "how long an inbound INVITE waits for the registry to resolve the dialled number (then "
     "503 with Retry-After)"},
    {"VOXI_MEDIA_ROUTE_CACHE_TTL_MS", LC_CFG_INT, "5000", 0, 600000, NULL, 0, M(route_cache_ttl_ms),
     "how long a resolved number is cached (0 = ask every time)"},
    {"VOXI_MEDIA_EARLY_MEDIA", LC_CFG_BOOL, "false", 0, 0, NULL, 0, M(early_media),
     "when a call rings (VOXI_MEDIA_ANSWER_DELAY_MS > 0), send 183 Session Progress with the "
     "SDP and play the demo's prompt before the 200 (agent calls ring as usual)"},
    {"VOXI_MEDIA_GREETING_CACHE_MAX", LC_CFG_INT, "256", 0, 100000, NULL, 0, M(greeting_cache_max),
     "agents' first messages kept synthesised (one per agent version, least recently used "
     "dropped first; 0 = synthesise every time)"},
};

static lc_status_t
on_start(lc_service_t *svc, void *arg)
{
    (void) arg;
    return md_worker_start(&md_worker, svc, &md_config.media,
                           &md_config.common.shutdown_timeout_ms);
}

static void
on_stop(lc_service_t *svc, void *arg)
{
    (void) svc;
    (void) arg;
    md_worker_stop(&md_worker);
}

static size_t
on_inflight(void *arg)
{
    (void) arg;
    return md_worker_inflight(&md_worker);
}

static bool
on_ready(void *arg, char *reason, size_t reason_size)
{
    (void) arg;
    return md_worker_ready(&md_worker, reason, reason_size);
}

static void
on_cleanup(void *arg)
{
    (void) arg;
    md_worker_cleanup(&md_worker);
}

int
main(int argc, char **argv)
{
    lc_service_def_t def = {
        .name = "media",
        .config_table = md_config_table,
        .config_count = sizeof(md_config_table) / sizeof(md_config_table[0]),
        .config = &md_config,
        .start = on_start,
        .stop = on_stop,
        .inflight = on_inflight,
        .ready = on_ready,
        .cleanup = on_cleanup,
    };
    return lc_service_main(&def, argc, argv);
}
