/*
 * md_heartbeat: `voxi.media.heartbeat` once a second (voxi.v1.MediaHeartbeat in an
 * Envelope): worker id, SIP address, active and maximum calls, draining.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_HEARTBEAT_H
#define MD_HEARTBEAT_H

#include "lc_status.h"
#include "md_worker.h"

#define MD_HEARTBEAT_SUBJECT "voxi.media.heartbeat"
#define MD_HEARTBEAT_INTERVAL_MS 1000

/* Starts publishing (the first one at once). w is borrowed. */
md_heartbeat_t *md_heartbeat_create(md_worker_t *w);
/* Publishes one last heartbeat (so a dispatcher sees the drain at once). */
void md_heartbeat_now(md_heartbeat_t *hb);
/* Stops and closes the timer; the object is freed on the loop. NULL is a no-op. */
void md_heartbeat_destroy(md_heartbeat_t *hb);

#endif
