/*
 * lc_service: what every VoxiHub service process does the same way.
 *
 * lc_service_main() reads the config table (every error at once, exit 2), starts logging,
 * creates the loop, connects to NATS (and Postgres when the service has a database URL),
 * opens the side port (/healthz, /readyz, /metrics), answers `voxi.<name>.ping` in the
 * queue group `<name>`, calls the service's start hook, and runs the loop.
 *
 * SIGTERM/SIGINT: stop taking work (ping unsubscribed, the stop hook closes listeners and
 * subscriptions, /readyz turns 503 "draining"), wait until the inflight hook reports no
 * work in progress or VOXI_SHUTDOWN_TIMEOUT_MS has passed, close everything, exit 0.
 *
 * Threads: everything runs on the loop thread.
 */
#ifndef LC_SERVICE_H
#define LC_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_config.h"
#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_pg.h"
#include "lc_status.h"

#define VOXI_VERSION "0.1.0"

/* Settings every service has; embed as the first member `common` of its config struct. */
typedef struct {
    char *log_level;
    char *log_format;
    char *nats_url;
    char *health_addr;
    int64_t health_port;
    int64_t shutdown_timeout_ms;
    char *instance_id;
    char *database_url; /* only filled for services whose table has VOXI_DATABASE_URL */
} lc_service_config_t;

/*
 * Config entries shared by all services. `type` is the service's config struct, whose
 * first member is `lc_service_config_t common`; SVC is the upper-case service name as a
 * string literal; PORT its default side port.
 */
#define LC_SERVICE_CONFIG_COMMON(type, SVC, PORT)                                                  \
    {"VOXI_LOG_LEVEL",                                                                             \
     LC_CFG_ENUM,                                                                                  \
     "info",                                                                                       \
     0,                                                                                            \
     0,                                                                                            \
     "debug|info|warn|error",                                                                      \
     0,                                                                                            \
     offsetof(type, common.log_level),                                                             \
     "minimum level logged"},                                                                      \
        {"VOXI_LOG_FORMAT",                                                                        \
         LC_CFG_ENUM,                                                                              \
         "logfmt",                                                                                 \
         0,                                                                                        \
         0,                                                                                        \
         "logfmt|json",                                                                            \
         0,                                                                                        \
         offsetof(type, common.log_format),                                                        \
         "log line format on stderr"},                                                             \
        {"VOXI_NATS_URL",                                                                          \
         LC_CFG_STRING,                                                                            \
         "nats://127.0.0.1:4222",                                                                  \
         1,                                                                                        \
         1024,                                                                                     \
         NULL,                                                                                     \
         0,                                                                                        \
         offsetof(type, common.nats_url),                                                          \
         "NATS server URL(s), comma-separated"},                                                   \
        {"VOXI_HEALTH_ADDR",                                                                       \
         LC_CFG_STRING,                                                                            \
         "127.0.0.1",                                                                              \
         1,                                                                                        \
         255,                                                                                      \
         NULL,                                                                                     \
         0,                                                                                        \
         offsetof(type, common.health_addr),                                                       \
         "address the side port (/healthz, /readyz, /metrics) binds"},                             \
        {"VOXI_" SVC "_HEALTH_PORT",                                                               \
         LC_CFG_INT,                                                                               \
         #PORT,                                                                                    \
         0,                                                                                        \
         65535,                                                                                    \
         NULL,                                                                                     \
         0,                                                                                        \
         offsetof(type, common.health_port),                                                       \
         "side port of this service (0 = any free port)"},                                         \
        {"VOXI_SHUTDOWN_TIMEOUT_MS",                                                               \
         LC_CFG_INT,                                                                               \
         "4000",                                                                                   \
         0,                                                                                        \
         600000,                                                                                   \
         NULL,                                                                                     \
         0,                                                                                        \
         offsetof(type, common.shutdown_timeout_ms),                                               \
         "on SIGTERM, how long to wait for work in progress before closing"},                      \
    {                                                                                              \
        "VOXI_INSTANCE_ID", LC_CFG_STRING, NULL, 1, 64, NULL, 0,                                   \
            offsetof(type, common.instance_id),                                                    \
            "instance id reported by ping and logs (default: random)"                              \
    }

#define LC_SERVICE_CONFIG_DATABASE(type)                                                           \
    {                                                                                              \
        "VOXI_DATABASE_URL", LC_CFG_STRING, "host=127.0.0.1 port=5432 dbname=voxi user=voxi", 1,   \
            2048, NULL, LC_CFG_SECRET, offsetof(type, common.database_url),                        \
            "libpq connection string or URL of the Postgres database"                              \
    }

typedef struct lc_service lc_service_t;

typedef struct {
    const char *name;                      /* "gateway", "auth", ... */
    const lc_config_entry_t *config_table; /* includes LC_SERVICE_CONFIG_COMMON */
    size_t config_count;
    void *config;     /* the service's config struct; `common` is its first member */
    int db_pool_size; /* with VOXI_DATABASE_URL in the table: connections (0 = 4) */

    /* Hooks, all optional, all on the loop thread; `arg` is passed to each. */
    lc_status_t (*start)(lc_service_t *svc, void *arg);         /* subscribe, listen */
    void (*stop)(lc_service_t *svc, void *arg);                 /* stop taking new work */
    size_t (*inflight)(void *arg);                              /* work still in progress */
    void (*cleanup)(void *arg);                                 /* after the loop ended */
    bool (*ready)(void *arg, char *reason, size_t reason_size); /* extra readiness */
    void *arg;
} lc_service_def_t;

/* Runs the service; returns the process exit code. */
int lc_service_main(const lc_service_def_t *def, int argc, char **argv);

uv_loop_t *lc_service_loop(lc_service_t *svc);
lc_nats_t *lc_service_nats(lc_service_t *svc);
lc_pg_pool_t *lc_service_pg(lc_service_t *svc); /* NULL without a database */
lc_metrics_t *lc_service_metrics(lc_service_t *svc);
const char *lc_service_instance_id(const lc_service_t *svc);
bool lc_service_draining(const lc_service_t *svc);

#endif
