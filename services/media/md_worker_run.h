/*
 * md_worker_run: the worker's life cycle behind lc_service's hooks: create every module in
 * order (start), drain on SIGTERM (stop: no new calls, 503 with Retry-After; existing calls
 * go on for up to VOXI_MEDIA_DRAIN_TIMEOUT_MS, then are hung up), report work in progress
 * (inflight), and tear down in reverse order (cleanup).
 *
 * Every libuv handle the media modules own is unreferenced, so the loop's life is
 * lc_service's: if it closes early (a second signal, a failed start), cleanup closes what is
 * left and runs the loop once more to finish the closes.
 *
 * Threads: the loop thread (the hooks run there).
 */
#ifndef MD_WORKER_RUN_H
#define MD_WORKER_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "lc_service.h"
#include "md_worker.h"

/* cfg is borrowed for the worker's lifetime. `shutdown_timeout_ms` (lc_service's) is raised
 * to cover the drain timeout. LC_ERR_CONFIG / LC_ERR_IO on bad settings or a port in use. */
lc_status_t md_worker_start(md_worker_t *w, lc_service_t *svc, const md_settings_t *cfg,
                            int64_t *shutdown_timeout_ms);
void md_worker_stop(md_worker_t *w);
size_t md_worker_inflight(md_worker_t *w);
bool md_worker_ready(md_worker_t *w, char *reason, size_t reason_size);
void md_worker_cleanup(md_worker_t *w);

#endif
