/*
 * md_sip_uac: outbound calls started over NATS. Subscribes `voxi.media.dial` in the queue
 * group "media" (any one worker takes a request), decodes voxi.v1.DialRequest from the
 * Envelope, and starts the call (md_call_create_outbound). It replies at once with
 * DialReply (the call id and this worker's id) or an error: unavailable while draining,
 * full at VOXI_MEDIA_MAX_CALLS (the caller may try again: another worker may take it),
 * invalid for a target it cannot route. The call's progress follows as call.* events.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_SIP_UAC_H
#define MD_SIP_UAC_H

#include "md_worker.h"

#define MD_DIAL_SUBJECT "voxi.media.dial"
#define MD_DIAL_QUEUE "media"

md_sip_uac_t *md_sip_uac_create(md_worker_t *w);
/* Stops taking dial requests (drain). */
void md_sip_uac_stop(md_sip_uac_t *uac);
/* NULL is a no-op. */
void md_sip_uac_destroy(md_sip_uac_t *uac);

#endif
