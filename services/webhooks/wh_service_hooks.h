/*
 * The lc_service hooks of voxi-webhooks (wh_service.c); `arg` is the wh_service_t.
 * Threads: the loop thread (as lc_service calls them).
 */
#ifndef WH_SERVICE_HOOKS_H
#define WH_SERVICE_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "lc_service.h"
#include "wh_service.h"

lc_status_t wh_service_start(lc_service_t *svc, void *arg);
void wh_service_stop(lc_service_t *svc, void *arg);
size_t wh_service_inflight(void *arg);
bool wh_service_ready(void *arg, char *reason, size_t reason_size);
void wh_service_cleanup(void *arg);

#endif
