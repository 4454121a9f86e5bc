/*
 * gw: the gateway's public HTTP API. One gw_t per process: it listens (lc_http), asks
 * auth about every request (voxi.auth.authenticate), forwards the request to the owning
 * service over NATS and maps the reply back to HTTP.
 *
 * Lifecycle: gw_create (no I/O) -> gw_start (listen) -> gw_stop (stop accepting; requests
 * in progress are still answered; the server closes when they are) -> after the loop
 * ended, gw_destroy.
 *
 * Threads: every function on the loop thread.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lc_metrics.h"
#include "lc_nats.h"
#include "lc_service.h"
#include "lc_status.h"

typedef struct {
    lc_service_config_t common; /* first: lc_service reads it */
    char *http_addr;
    int64_t http_port;
    int64_t request_timeout_ms; /* backend deadline */
    int64_t auth_timeout_ms;
    int64_t max_body_bytes;
    int64_t max_inflight;
} gw_config_t;

typedef struct gw gw_t;

/* cfg is borrowed and must outlive the gateway. Never NULL. */
gw_t *gw_create(const gw_config_t *cfg);

/* Listens on cfg->http_addr:http_port; nc and metrics are borrowed. Errors: as
 * lc_http_create (LC_ERR_INVALID, LC_ERR_IO), and LC_ERR_PROTOCOL if the embedded OpenAPI
 * document does not parse. */
lc_status_t gw_start(gw_t *gw, uv_loop_t *loop, lc_nats_t *nc, lc_metrics_t *metrics);

/* Stops accepting connections; answers what is in progress, then closes the server. */
void gw_stop(gw_t *gw);

/* Requests in progress (waiting for auth or a service). */
size_t gw_inflight(const gw_t *gw);

/* The port the API listens on (after gw_start). */
int gw_port(const gw_t *gw);

/* Frees the gateway after the loop ended. NULL is a no-op. */
void gw_destroy(gw_t *gw);

#endif
