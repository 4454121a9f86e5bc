#include "md_sip_dialog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

/* A From/To header as text without its tag parameter. */
static char *
name_addr_without_tag(const osip_from_t *hdr)
{
    osip_from_t *copy = NULL;
    if (hdr == NULL || osip_from_clone(hdr, &copy) != 0)
        return lc_strdup("<sip:anonymous@invalid>");
    int n = osip_list_size(&copy->gen_params);
    for (int i = n - 1; i >= 0; i--) {
        osip_generic_param_t *p = osip_list_get(&copy->gen_params, i);
        if (p && p->gname && strcasecmp(p->gname, "tag") == 0) {
            osip_list_remove(&copy->gen_params, i);
            osip_generic_param_free(p);
        }
    }
    char *s = NULL;
    osip_from_to_str(copy, &s);
    osip_from_free(copy);
    return s ? s : lc_strdup("<sip:anonymous@invalid>");
}

static char *
contact_uri(const md_sip_msg_t *msg)
{
    osip_contact_t *c = osip_list_get(&msg->osip->contacts, 0);
    char *s = NULL;
    if (c && c->url && osip_uri_to_str(c->url, &s) == 0)
        return s;
    return NULL;
}

static void
add_route(md_sip_dialog_t *dlg, const osip_record_route_t *rr, bool front)
{
    char *s = NULL;
    if (osip_record_route_to_str((osip_record_route_t *) rr, &s) != 0 || s == NULL)
        return;
    dlg->routes = lc_realloc(dlg->routes, (dlg->nroutes + 1) * sizeof(char *));
    if (front) {
        memmove(dlg->routes + 1, dlg->routes, dlg->nroutes * sizeof(char *));
        dlg->routes[0] = s;
    } else {
        dlg->routes[dlg->nroutes] = s;
    }
    dlg->nroutes++;
}

static uint32_t
initial_cseq(void)
{
    uint32_t v;
    lc_random_bytes(&v, sizeof(v));
    return 1 + (v & 0xffff); /* small, leaves room below 2**31 */
}

md_sip_dialog_t *
md_sip_dialog_create_uas(const md_sip_msg_t *invite, const char *local_tag,
                         const md_sip_peer_t *from)
{
    md_sip_dialog_t *dlg = LC_NEW(md_sip_dialog_t);
    dlg->uac = false;
    dlg->call_id = lc_strdup(invite->call_id);
    dlg->local_tag = lc_strdup(local_tag);
    dlg->remote_tag = lc_strdup(invite->from_tag ? invite->from_tag : "");
    dlg->local_uri = name_addr_without_tag(invite->osip->to);
    dlg->remote_uri = name_addr_without_tag(invite->osip->from);
    dlg->remote_target = contact_uri(invite);
    int n = osip_list_size(&invite->osip->record_routes);
    for (int i = 0; i < n; i++)
        add_route(dlg, osip_list_get(&invite->osip->record_routes, i), false);
    dlg->remote_cseq = invite->cseq;
    dlg->have_remote_cseq = true;
    dlg->local_cseq = initial_cseq();
    dlg->peer = *from;
    return dlg;
}

md_sip_dialog_t *
md_sip_dialog_create_uac(const md_sip_msg_t *request, const md_sip_msg_t *resp,
                         const md_sip_peer_t *to)
{
    md_sip_dialog_t *dlg = LC_NEW(md_sip_dialog_t);
    dlg->uac = true;
    dlg->call_id = lc_strdup(request->call_id);
    dlg->local_tag = lc_strdup(request->from_tag ? request->from_tag : "");
    dlg->remote_tag = resp->to_tag ? lc_strdup(resp->to_tag) : NULL;
    dlg->local_uri = name_addr_without_tag(request->osip->from);
    dlg->remote_uri = name_addr_without_tag(resp->osip->to);
    dlg->remote_target = contact_uri(resp);
    if (dlg->remote_target == NULL) {
        osip_uri_to_str(request->osip->req_uri, &dlg->remote_target);
    }
    int n = osip_list_size(&resp->osip->record_routes);
    for (int i = 0; i < n; i++)
        add_route(dlg, osip_list_get(&resp->osip->record_routes, i), true);
    dlg->local_cseq = request->cseq;
    dlg->peer = *to;
    return dlg;
}

void
md_sip_dialog_destroy(md_sip_dialog_t *dlg)
{
    if (dlg == NULL)
        return;
    free(dlg->call_id);
    free(dlg->local_tag);
    free(dlg->remote_tag);
    free(dlg->local_uri);
    free(dlg->remote_uri);
    free(dlg->remote_target);
    for (size_t i = 0; i < dlg->nroutes; i++)
        free(dlg->routes[i]);
    free(dlg->routes);
    free(dlg);
}

/* The URI inside a route "<sip:...;lr>" (parsed), or NULL. */
static osip_uri_t *
route_uri(const char *route)
{
    osip_route_t *r = NULL;
    osip_route_init(&r);
    if (osip_route_parse(r, route) != 0 || r->url == NULL) {
        osip_route_free(r);
        return NULL;
    }
    osip_uri_t *u = r->url;
    r->url = NULL;
    osip_route_free(r);
    return u;
}

static bool
uri_has_lr(const osip_uri_t *u)
{
    osip_uri_param_t *p = NULL;
    return osip_uri_param_get_byname((osip_list_t *) &u->url_params, "lr", &p) == 0 && p;
}

osip_message_t *
md_sip_dialog_request(md_sip_dialog_t *dlg, const char *method, const char *contact,
                      uint32_t ack_cseq)
{
    const char *target = dlg->remote_target ? dlg->remote_target : "sip:invalid";
    size_t first_route = 0;
    char *strict_uri = NULL;
    bool strict = false;
    if (dlg->nroutes > 0) {
        osip_uri_t *u = route_uri(dlg->routes[0]);
        if (u && !uri_has_lr(u)) {
            /* section 12.2.1.1: a strict router gets the route as Request-URI */
            strict = true;
            osip_uri_param_freelist(&u->url_params);
            osip_uri_to_str(u, &strict_uri);
            first_route = 1;
        }
        osip_uri_free(u);
    }
    osip_message_t *m = md_sip_request_create(method, strict ? strict_uri : target);
    free(strict_uri);
    if (m == NULL)
        return NULL;
    for (size_t i = first_route; i < dlg->nroutes; i++)
        osip_message_set_route(m, dlg->routes[i]);
    if (strict) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "<%s>", target);
        osip_message_set_route(m, buf);
    }
    char hdr[2048];
    snprintf(hdr, sizeof(hdr), "%s;tag=%s", dlg->local_uri, dlg->local_tag);
    osip_message_set_from(m, hdr);
    if (dlg->remote_tag && dlg->remote_tag[0])
        snprintf(hdr, sizeof(hdr), "%s;tag=%s", dlg->remote_uri, dlg->remote_tag);
    else
        snprintf(hdr, sizeof(hdr), "%s", dlg->remote_uri);
    osip_message_set_to(m, hdr);
    osip_message_set_call_id(m, dlg->call_id);
    uint32_t cseq = strcmp(method, "ACK") == 0 ? ack_cseq : ++dlg->local_cseq;
    snprintf(hdr, sizeof(hdr), "%u %s", cseq, method);
    osip_message_set_cseq(m, hdr);
    osip_message_set_header(m, "Max-Forwards", "70");
    if (contact)
        osip_message_set_contact(m, contact);
    osip_message_set_header(m, "User-Agent", MD_SIP_USER_AGENT);
    return m;
}

static bool
peer_from_uri(const osip_uri_t *u, md_sip_proto_t fallback_proto, md_sip_peer_t *out)
{
    if (u == NULL || u->host == NULL)
        return false;
    int port = u->port ? atoi(u->port) : 0;
    bool sips = u->scheme && strcasecmp(u->scheme, "sips") == 0;
    if (port <= 0 || port > 65535)
        port = sips ? 5061 : 5060;
    struct sockaddr_storage addr;
    if (!md_sip_addr_from_ip(u->host, port, &addr))
        return false;
    md_sip_proto_t proto = fallback_proto;
    osip_uri_param_t *t = NULL;
    if (osip_uri_param_get_byname((osip_list_t *) &u->url_params, "transport", &t) == 0 && t &&
        t->gvalue)
        proto = strcasecmp(t->gvalue, "tcp") == 0 ? MD_SIP_TCP : MD_SIP_UDP;
    memset(out, 0, sizeof(*out));
    out->proto = proto;
    out->addr = addr;
    return true;
}

void
md_sip_dialog_next_hop(const md_sip_dialog_t *dlg, md_sip_peer_t *out)
{
    *out = dlg->peer;
    if (dlg->nroutes == 0 && !dlg->uac)
        return; /* symmetric: back to where the INVITE came from */
    osip_uri_t *u = NULL;
    if (dlg->nroutes > 0) {
        u = route_uri(dlg->routes[0]);
    } else if (dlg->remote_target) {
        osip_uri_init(&u);
        if (osip_uri_parse(u, dlg->remote_target) != 0) {
            osip_uri_free(u);
            u = NULL;
        }
    }
    md_sip_peer_t hop;
    if (peer_from_uri(u, dlg->peer.proto, &hop)) {
        if (hop.proto == dlg->peer.proto && md_sip_addr_equal(&hop.addr, &dlg->peer.addr))
            hop.conn_id = dlg->peer.conn_id;
        *out = hop;
    }
    osip_uri_free(u);
}

bool
md_sip_dialog_check_cseq(md_sip_dialog_t *dlg, const md_sip_msg_t *req)
{
    if (md_sip_method_is(req, "ACK") || md_sip_method_is(req, "CANCEL"))
        return true;
    if (dlg->have_remote_cseq && req->cseq < dlg->remote_cseq)
        return false;
    dlg->remote_cseq = req->cseq;
    dlg->have_remote_cseq = true;
    return true;
}

void
md_sip_dialog_refresh_target(md_sip_dialog_t *dlg, const md_sip_msg_t *msg)
{
    char *target = contact_uri(msg);
    if (target) {
        free(dlg->remote_target);
        dlg->remote_target = target;
    }
}

bool
md_sip_dialog_matches(const md_sip_dialog_t *dlg, const md_sip_msg_t *msg)
{
    if (msg->call_id == NULL || strcmp(msg->call_id, dlg->call_id) != 0)
        return false;
    /* requests from the peer carry our tag in To and theirs in From */
    const char *to_tag = msg->to_tag ? msg->to_tag : "";
    const char *from_tag = msg->from_tag ? msg->from_tag : "";
    return strcmp(to_tag, dlg->local_tag) == 0 &&
           (dlg->remote_tag == NULL || strcmp(from_tag, dlg->remote_tag) == 0);
}
