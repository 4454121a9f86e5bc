/*
 * md_sip_dialog: dialog state (RFC 3261 section 12): identifiers, sequence numbers, remote
 * target and route set, and the requests sent inside a dialog.
 *
 * Creation: UAS side from the INVITE and our tag (section 12.1.1: route set from the
 * Record-Route headers in order), UAC side from our request and the response that makes the
 * dialog (section 12.1.2: Record-Route reversed). Requests inside it (section 12.2.1.1)
 * carry the remote target as Request-URI and the route set as Route (loose routing; a
 * strict router at the head of the route set gets the RFC 3261 treatment too).
 *
 * Next hop: the first Route (or the target) when its host is an IP literal; otherwise, and
 * for a UAS dialog without route set, the address the dialog's first request came from
 * (symmetric, as behind NAT; RFC 3581 in spirit).
 *
 * Threads: the loop thread; a dialog belongs to one call.
 */
#ifndef MD_SIP_DIALOG_H
#define MD_SIP_DIALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "lc_status.h"
#include "md_sip_msg.h"
#include "md_sip_transport.h"

typedef struct {
    bool uac;
    char *call_id;
    char *local_tag;
    char *remote_tag;    /* NULL until known (UAC before the response) */
    char *local_uri;     /* From of our requests, without tag (a name-addr) */
    char *remote_uri;    /* To of our requests, without tag */
    char *remote_target; /* the peer's Contact URI */
    char **routes;       /* route set in sending order, each "<uri;lr>" */
    size_t nroutes;
    uint32_t local_cseq;
    uint32_t remote_cseq;
    bool have_remote_cseq;
    md_sip_peer_t peer; /* where the dialog's first request came from / went to */
} md_sip_dialog_t;

/* UAS dialog from an INVITE (borrowed) and our To tag. */
md_sip_dialog_t *md_sip_dialog_create_uas(const md_sip_msg_t *invite, const char *local_tag,
                                          const md_sip_peer_t *from);
/* UAC dialog from the INVITE we sent and the 1xx (with To tag) or 2xx response. */
md_sip_dialog_t *md_sip_dialog_create_uac(const md_sip_msg_t *request, const md_sip_msg_t *resp,
                                          const md_sip_peer_t *to);
void md_sip_dialog_destroy(md_sip_dialog_t *dlg);

/* A request inside the dialog with the next local CSeq (ACK: `ack_cseq`, the INVITE's).
 * contact (may be NULL) becomes the Contact header. Returns NULL if the target does not
 * parse. The caller adds a body and sends it (md_sip_txn_client_start). */
osip_message_t *md_sip_dialog_request(md_sip_dialog_t *dlg, const char *method, const char *contact,
                                      uint32_t ack_cseq);

/* Where requests of this dialog go. */
void md_sip_dialog_next_hop(const md_sip_dialog_t *dlg, md_sip_peer_t *out);

/* Section 12.2.2: false for a request whose CSeq is lower than the last one (answer 500);
 * otherwise records it. ACK and CANCEL are not checked. */
bool md_sip_dialog_check_cseq(md_sip_dialog_t *dlg, const md_sip_msg_t *req);

/* Target refresh (re-INVITE, 2xx to it): takes the new Contact when there is one. */
void md_sip_dialog_refresh_target(md_sip_dialog_t *dlg, const md_sip_msg_t *msg);

/* True when msg (request) belongs to this dialog (Call-ID and both tags). */
bool md_sip_dialog_matches(const md_sip_dialog_t *dlg, const md_sip_msg_t *msg);

#endif
