/*
 * md_sip_ua: the user agent core (RFC 3261 section 8.2): what the worker does with a new
 * request before any call exists, and the table of calls.
 *
 * Every message from the transport passes the flood throttle (md_sip_acl, sources outside
 * the allowlist only) and goes to the transaction layer. New requests come back here:
 *   - 405 (with Allow) for methods we know and do not serve, 501 for unknown ones;
 *   - 416 for a Request-URI scheme other than sip/sips/tel;
 *   - 420 (with Unsupported) for a Require we do not support (section 8.2.2.3);
 *   - 483 for Max-Forwards 0, except OPTIONS, which an endpoint answers as usual
 *     (RFC 4475 section 3.3.13, and how carriers probe the next hop);
 *   - OPTIONS: 200 with Allow, Accept, Supported;
 *   - in-dialog requests go to their call, or get 481 (section 12.2.2); CANCEL gets 200 and
 *     the INVITE 487 (section 9.2), or 481;
 *   - a new INVITE: 415 (non-SDP body, with Accept), 406 (Accept without application/sdp),
 *     access control (403 / 401 challenge), 503 with Retry-After when draining or at
 *     VOXI_MEDIA_MAX_CALLS, 400 for unreadable SDP; then the dialled user part is resolved
 *     through the registry (md_route, asynchronously, the caller holding our 100 Trying):
 *     404 for a number nobody serves, 503 with Retry-After when the registry is unreachable
 *     or slower than VOXI_MEDIA_ROUTE_TIMEOUT_MS; the configured demo user stays the echo
 *     demo (default org) when no number "demo" is registered or the registry is away;
 *     482 for a second INVITE with the Call-ID of a live call (loop / merged request),
 *     488 for no acceptable codec; otherwise md_call takes it.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_SIP_UA_H
#define MD_SIP_UA_H

#include <stdbool.h>
#include <stddef.h>

#include "lc_status.h"
#include "md_sip_msg.h"
#include "md_sip_transport.h"
#include "md_sip_txn.h"
#include "md_worker.h"

typedef struct md_call md_call_t;

lc_status_t md_sip_ua_create(md_worker_t *w, md_sip_ua_t **out);
/* Frees the table (calls must have ended). NULL is a no-op. */
void md_sip_ua_destroy(md_sip_ua_t *ua);

/* The transport's receive callback (arg: the ua). */
void md_sip_ua_on_transport(void *arg, const md_sip_peer_t *from, const char *buf, size_t len);
/* The transaction layer's TU callbacks (arg: the ua). */
void md_sip_ua_on_request(void *arg, md_sip_txn_t *txn, const md_sip_msg_t *msg,
                          const md_sip_peer_t *from);
void md_sip_ua_on_stray_response(void *arg, const md_sip_msg_t *msg, const md_sip_peer_t *from);

/* The call table, keyed by SIP Call-ID. */
void md_sip_ua_register(md_sip_ua_t *ua, const char *sip_call_id, md_call_t *call);
void md_sip_ua_forget(md_sip_ua_t *ua, const char *sip_call_id, md_call_t *call);
md_call_t *md_sip_ua_find(md_sip_ua_t *ua, const char *sip_call_id);
size_t md_sip_ua_call_count(const md_sip_ua_t *ua);
/* INVITEs waiting for the registry to resolve their number (they count against
 * VOXI_MEDIA_MAX_CALLS, and a drain waits for them). */
size_t md_sip_ua_pending_count(const md_sip_ua_t *ua);
/* Hangs up every call (shutdown). */
void md_sip_ua_hangup_all(md_sip_ua_t *ua, const char *reason);

/* Our Contact header value for a transport: "<sip:voxi@addr:port>" (";transport=tcp"). */
void md_sip_ua_contact(const md_sip_ua_t *ua, md_sip_proto_t proto, char *out, size_t size);

/* The Allow header value. */
#define MD_SIP_ALLOW "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, REFER, NOTIFY"

#endif
