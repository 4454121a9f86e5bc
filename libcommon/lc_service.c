#include "lc_service.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_health.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/ping.pb-c.h"

#define DRAIN_POLL_MS 20

struct lc_service {
    const lc_service_def_t *def;
    lc_service_config_t *cfg;
    uv_loop_t loop;
    lc_nats_t *nats;
    lc_pg_pool_t *pg;
    lc_health_t *health;
    lc_metrics_t *metrics;
    lc_nats_sub_t *ping_sub;
    uv_signal_t sigterm, sigint;
    uv_timer_t drain_timer;
    char instance_id[80];
    char ping_subject[64];
    int64_t started_mono_ms;
    int64_t drain_deadline_ms;
    bool draining;
    bool closing;
    int closing_parts;
    lc_metric_t *ping_ok, *ping_bad;
};

uv_loop_t *
lc_service_loop(lc_service_t *svc)
{
    return &svc->loop;
}

lc_nats_t *
lc_service_nats(lc_service_t *svc)
{
    return svc->nats;
}

lc_pg_pool_t *
lc_service_pg(lc_service_t *svc)
{
    return svc->pg;
}

lc_metrics_t *
lc_service_metrics(lc_service_t *svc)
{
    return svc->metrics;
}

const char *
lc_service_instance_id(const lc_service_t *svc)
{
    return svc->instance_id;
}

bool
lc_service_draining(const lc_service_t *svc)
{
    return svc->draining;
}

/* ---- readiness and ping ---- */

static bool
service_ready(void *arg, char *reason, size_t reason_size)
{
    lc_service_t *svc = arg;
    if (svc->draining) {
        snprintf(reason, reason_size, "draining");
        return false;
    }
    if (!lc_nats_connected(svc->nats)) {
        snprintf(reason, reason_size, "nats not connected");
        return false;
    }
    if (svc->pg != NULL && !lc_pg_pool_ready(svc->pg)) {
        snprintf(reason, reason_size, "postgres not connected");
        return false;
    }
    if (svc->def->ready != NULL)
        return svc->def->ready(svc->def->arg, reason, reason_size);
    return true;
}

static void
on_ping(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    lc_service_t *svc = arg;
    const char *reply_to = lc_nats_msg_reply(msg);
    if (reply_to == NULL || reply_to[0] == '\0')
        return;

    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    uint8_t *out = NULL;
    size_t out_len = 0;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__ping_request__descriptor, &env, &body);
    const char *request_id = env ? env->request_id : "";
    lc_log_context_set(request_id, NULL);
    if (st != LC_OK) {
        LC_LOG_RL(LC_LOG_WARN, "ping", 1, "bad ping request: %s", lc_status_name(st));
        lc_metric_inc(svc->ping_bad);
        lc_pb_pack_error(request_id, LC_ERR_INVALID, "ping: malformed request", &out, &out_len);
    } else {
        char reason[128];
        Voxi__V1__PingRequest *req = (Voxi__V1__PingRequest *) body;
        Voxi__V1__PingReply rep = VOXI__V1__PING_REPLY__INIT;
        rep.service = (char *) svc->def->name;
        rep.instance_id = svc->instance_id;
        rep.version = VOXI_VERSION;
        rep.uptime_ms = lc_time_mono_ms() - svc->started_mono_ms;
        rep.note = req->note;
        rep.ready = service_ready(svc, reason, sizeof(reason));
        lc_pb_meta_t meta = {.request_id = request_id};
        lc_pb_pack(&meta, &rep.base, &out, &out_len);
        lc_metric_inc(svc->ping_ok);
        LC_DEBUG("ping", "pong");
    }
    lc_nats_respond(nc, reply_to, out, out_len);
    free(out);
    lc_pb_free(env, body);
    lc_log_context_clear();
}

/* ---- shutdown ---- */

static void
part_closed(void *arg)
{
    lc_service_t *svc = arg;
    svc->closing_parts--;
    if (svc->closing_parts == 0)
        LC_INFO("service", "closed; loop ends when the last handles are gone");
}

static void
handle_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

static void
close_everything(lc_service_t *svc)
{
    if (svc->closing)
        return;
    svc->closing = true;
    LC_INFO("service", "closing connections");
    /* one part per handle and per module closed below */
    svc->closing_parts = 4;
    uv_close((uv_handle_t *) &svc->sigterm, handle_closed);
    uv_close((uv_handle_t *) &svc->sigint, handle_closed);
    uv_close((uv_handle_t *) &svc->drain_timer, handle_closed);
    lc_nats_close(svc->nats, part_closed, svc);
    if (svc->pg) {
        svc->closing_parts++;
        lc_pg_pool_close(svc->pg, part_closed, svc);
    }
    if (svc->health) {
        svc->closing_parts++;
        lc_health_close(svc->health, part_closed, svc);
    }
}

static void
on_drain_tick(uv_timer_t *t)
{
    lc_service_t *svc = t->data;
    size_t inflight = svc->def->inflight ? svc->def->inflight(svc->def->arg) : 0;
    if (inflight == 0) {
        LC_INFO("service", "drained");
        close_everything(svc);
        return;
    }
    if (lc_time_mono_ms() >= svc->drain_deadline_ms) {
        LC_WARN("service", "shutdown timeout: closing with %zu requests in progress", inflight);
        close_everything(svc);
        return;
    }
    uv_timer_start(&svc->drain_timer, on_drain_tick, DRAIN_POLL_MS, 0);
}

static void
on_signal(uv_signal_t *handle, int signum)
{
    lc_service_t *svc = handle->data;
    if (svc->draining) {
        LC_WARN("service", "second signal %d: closing now", signum);
        close_everything(svc);
        return;
    }
    LC_INFO("service", "signal %d: draining (up to %lld ms)", signum,
            (long long) svc->cfg->shutdown_timeout_ms);
    svc->draining = true;
    lc_nats_unsubscribe(svc->nats, svc->ping_sub);
    svc->ping_sub = NULL;
    if (svc->def->stop)
        svc->def->stop(svc, svc->def->arg);
    svc->drain_deadline_ms = lc_time_mono_ms() + svc->cfg->shutdown_timeout_ms;
    on_drain_tick(&svc->drain_timer);
}

/* ---- start-up ---- */

static void
on_nats_state(void *arg, bool connected)
{
    lc_service_t *svc = arg;
    (void) svc;
    LC_INFO("nats", "%s", connected ? "connection up" : "connection down");
}

static int
usage(const char *name, FILE *out, int code)
{
    fprintf(out,
            "usage: voxi-%s [--config-reference | --version | --help]\n"
            "Configured only by VOXI_* environment variables; see README.md.\n",
            name);
    return code;
}

/* Handles the flags; returns -1 to go on, or an exit code. */
static int
handle_args(const lc_service_def_t *def, int argc, char **argv)
{
    if (argc <= 1)
        return -1;
    if (argc == 2 && strcmp(argv[1], "--config-reference") == 0) {
        lc_config_print_reference(def->config_table, def->config_count, stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("voxi-%s %s\n", def->name, VOXI_VERSION);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--help") == 0)
        return usage(def->name, stdout, 0);
    return usage(def->name, stderr, 2);
}

static lc_status_t
load_config(const lc_service_def_t *def, lc_service_config_t *cfg)
{
    char *errors = NULL;
    lc_status_t st =
        lc_config_load(def->config_table, def->config_count, def->config, NULL, NULL, &errors);
    if (st != LC_OK) {
        fprintf(stderr, "voxi-%s: invalid configuration:\n%s", def->name, errors);
        free(errors);
        return st;
    }
    lc_log_level_t level = LC_LOG_INFO;
    lc_log_format_t format = LC_LOG_FMT_LOGFMT;
    lc_log_level_parse(cfg->log_level, &level);
    lc_log_format_parse(cfg->log_format, &format);
    lc_log_init(def->name, level, format);
    return LC_OK;
}

static lc_status_t
start_modules(lc_service_t *svc)
{
    const lc_service_def_t *def = svc->def;
    lc_service_config_t *cfg = svc->cfg;
    lc_status_t st;

    lc_nats_loop_init(&svc->loop);
    char conn_name[96];
    snprintf(conn_name, sizeof(conn_name), "voxi-%s", def->name);
    lc_nats_opts_t nopts = {
        .url = cfg->nats_url, .name = conn_name, .state_cb = on_nats_state, .state_arg = svc};
    LC_TRY(lc_nats_connect(&svc->loop, &nopts, &svc->nats));

    if (cfg->database_url != NULL) {
        int size = def->db_pool_size > 0 ? def->db_pool_size : 4;
        LC_TRY(lc_pg_pool_create(&svc->loop, cfg->database_url, size, &svc->pg));
    }

    lc_health_opts_t hopts = {
        .service = def->name, .ready_cb = service_ready, .ready_arg = svc, .metrics = svc->metrics};
    LC_TRY(lc_health_create(&svc->loop, cfg->health_addr, (int) cfg->health_port, &hopts,
                            &svc->health));

    snprintf(svc->ping_subject, sizeof(svc->ping_subject), "voxi.%s.ping", def->name);
    LC_TRY(
        lc_nats_subscribe(svc->nats, svc->ping_subject, def->name, on_ping, svc, &svc->ping_sub));
    if (def->start && (st = def->start(svc, def->arg)) != LC_OK)
        return st;

    uv_signal_init(&svc->loop, &svc->sigterm);
    uv_signal_init(&svc->loop, &svc->sigint);
    svc->sigterm.data = svc->sigint.data = svc;
    uv_signal_start(&svc->sigterm, on_signal, SIGTERM);
    uv_signal_start(&svc->sigint, on_signal, SIGINT);
    LC_INFO("service", "voxi-%s %s started: instance %s, side port %s:%d", def->name, VOXI_VERSION,
            svc->instance_id, cfg->health_addr, lc_health_port(svc->health));
    return LC_OK;
}

int
lc_service_main(const lc_service_def_t *def, int argc, char **argv)
{
    int code = handle_args(def, argc, argv);
    if (code >= 0)
        return code;

    lc_service_t *svc = LC_NEW(lc_service_t);
    svc->def = def;
    svc->cfg = (lc_service_config_t *) def->config;
    svc->started_mono_ms = lc_time_mono_ms();
    if (load_config(def, svc->cfg) != LC_OK) {
        lc_config_free(def->config_table, def->config_count, def->config);
        free(svc);
        return 2;
    }
    if (svc->cfg->instance_id)
        snprintf(svc->instance_id, sizeof(svc->instance_id), "%s", svc->cfg->instance_id);
    else {
        char prefix[40];
        snprintf(prefix, sizeof(prefix), "%s-", def->name);
        lc_id_new(prefix, svc->instance_id, sizeof(svc->instance_id));
    }
    lc_config_log(def->config_table, def->config_count, def->config);
    signal(SIGPIPE, SIG_IGN);

    svc->metrics = lc_metrics_default();
    svc->ping_ok = lc_metrics_counter(svc->metrics, "voxi_ping_requests_total",
                                      "ping requests answered", "outcome=\"ok\"");
    svc->ping_bad = lc_metrics_counter(svc->metrics, "voxi_ping_requests_total",
                                       "ping requests answered", "outcome=\"invalid\"");
    uv_loop_init(&svc->loop);
    uv_timer_init(&svc->loop, &svc->drain_timer);
    svc->drain_timer.data = svc;

    code = 0;
    lc_status_t st = start_modules(svc);
    if (st != LC_OK) {
        LC_ERROR("service", "start-up failed: %s", lc_status_name(st));
        code = 1;
        if (svc->sigterm.type == 0) { /* signals not initialised yet: init so close works */
            uv_signal_init(&svc->loop, &svc->sigterm);
            uv_signal_init(&svc->loop, &svc->sigint);
            svc->sigterm.data = svc->sigint.data = svc;
        }
        svc->draining = true;
        if (svc->nats)
            close_everything(svc);
        else
            uv_close((uv_handle_t *) &svc->drain_timer, NULL);
    }
    uv_run(&svc->loop, UV_RUN_DEFAULT);

    if (def->cleanup)
        def->cleanup(def->arg);
    lc_health_destroy(svc->health);
    lc_pg_pool_destroy(svc->pg);
    lc_nats_destroy(svc->nats);
    if (uv_loop_close(&svc->loop) != 0)
        LC_WARN("service", "loop closed with handles still open");
    lc_nats_library_shutdown();
    lc_config_free(def->config_table, def->config_count, def->config);
    LC_INFO("service", "exit %d", code);
    free(svc);
    return code;
}
