#include "md_sip_uac.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_pb.h"
#include "md_call.h"
#include "md_sip_ua.h"
#include "voxi/v1/media.pb-c.h"

struct md_sip_uac {
    md_worker_t *w;
    lc_nats_sub_t *sub;
    lc_metric_t *m_ok, *m_refused;
};

static void
reply_error(lc_nats_t *nc, const char *reply_to, const char *rid, lc_status_t st,
            const char *message)
{
    uint8_t *out = NULL;
    size_t len = 0;
    lc_pb_pack_error(rid, st, message, &out, &len);
    lc_nats_respond(nc, reply_to, out, len);
    free(out);
}

#define VARIABLES_MAX 64
#define VARIABLE_NAME_MAX 64
#define VARIABLE_VALUE_MAX 4096

/* The request's {{variables}} as a JSON object (new reference), or NULL when there are none.
 * *bad is set when they break the bounds. */
static json_t *
dial_variables(const Voxi__V1__DialRequest *req, bool *bad)
{
    *bad = false;
    if (req->n_variables == 0)
        return NULL;
    if (req->n_variables > VARIABLES_MAX) {
        *bad = true;
        return NULL;
    }
    json_t *vars = json_object();
    for (size_t i = 0; i < req->n_variables; i++) {
        const Voxi__V1__DialRequest__VariablesEntry *e = req->variables[i];
        if (e == NULL || e->key == NULL || e->key[0] == '\0' ||
            strlen(e->key) > VARIABLE_NAME_MAX || e->value == NULL ||
            strlen(e->value) > VARIABLE_VALUE_MAX) {
            *bad = true;
            break;
        }
        json_t *v = json_string(e->value); /* NULL when not UTF-8 */
        if (v == NULL) {
            *bad = true;
            break;
        }
        json_object_set_new(vars, e->key, v);
    }
    if (*bad) {
        json_decref(vars);
        return NULL;
    }
    return vars;
}

static void
on_dial(lc_nats_t *nc, const lc_nats_msg_t *msg, void *arg)
{
    md_sip_uac_t *uac = arg;
    md_worker_t *w = uac->w;
    const char *reply_to = lc_nats_msg_reply(msg);
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_status_t st = lc_pb_unpack(lc_nats_msg_data(msg), lc_nats_msg_len(msg),
                                  &voxi__v1__dial_request__descriptor, &env, &body);
    const char *rid = env && env->request_id ? env->request_id : "";
    lc_log_context_set(rid, NULL);
    const char *why = "malformed dial request";
    md_call_t *call = NULL;
    if (st == LC_OK && lc_pb_deadline_passed(env)) {
        st = LC_ERR_TIMEOUT;
        why = "deadline passed";
    } else if (st == LC_OK && w->draining) {
        st = LC_ERR_UNAVAILABLE;
        why = "worker draining";
    } else if (st == LC_OK && (int64_t) md_sip_ua_call_count(w->ua) >= w->cfg->max_calls) {
        st = LC_ERR_FULL;
        why = "worker full";
    } else if (st == LC_OK) {
        Voxi__V1__DialRequest *req = (Voxi__V1__DialRequest *) body;
        bool bad_vars = false;
        json_t *vars = dial_variables(req, &bad_vars);
        md_call_dial_t dial = {.org_id = req->org_id,
                               .agent_id = req->agent_id,
                               .agent_json = req->agent_json,
                               .agent_version = req->agent_version,
                               .number_id = req->number_id,
                               .variables = vars,
                               .to = req->to,
                               .from_user = req->from_user,
                               .call_id = req->call_id,
                               .timeout_ms = req->timeout_ms,
                               .trunk_uri = req->trunk_uri,
                               .auth_user = req->auth_user,
                               .auth_password = req->auth_password};
        st = bad_vars ? LC_ERR_INVALID : md_call_create_outbound(w, &dial, &call);
        json_decref(vars);
        why = bad_vars                ? "variables: at most 64, names up to 64 and values up to "
                                        "4096 UTF-8 characters"
              : st == LC_ERR_INVALID  ? "no route to that target (a number needs a trunk), or "
                                        "an id or agent too long"
              : st == LC_ERR_CONFLICT ? "that call id is in use"
                                      : "cannot place the call";
    }
    if (st == LC_OK)
        lc_metric_inc(uac->m_ok);
    else {
        lc_metric_inc(uac->m_refused);
        LC_INFO("uac", "dial refused: %s", why);
    }
    if (reply_to && reply_to[0]) {
        if (st == LC_OK) {
            Voxi__V1__DialReply rep = VOXI__V1__DIAL_REPLY__INIT;
            rep.call_id = (char *) md_call_id(call);
            rep.worker_id = w->instance_id;
            uint8_t *out = NULL;
            size_t len = 0;
            lc_pb_meta_t meta = {.request_id = rid};
            lc_pb_pack(&meta, &rep.base, &out, &len);
            lc_nats_respond(nc, reply_to, out, len);
            free(out);
        } else {
            reply_error(nc, reply_to, rid, st, why);
        }
    }
    lc_pb_free(env, body);
    lc_log_context_clear();
}

md_sip_uac_t *
md_sip_uac_create(md_worker_t *w)
{
    md_sip_uac_t *uac = LC_NEW(md_sip_uac_t);
    uac->w = w;
    const char *h = "dial requests, by outcome";
    uac->m_ok =
        lc_metrics_counter(w->metrics, "voxi_media_dial_requests_total", h, "outcome=\"started\"");
    uac->m_refused =
        lc_metrics_counter(w->metrics, "voxi_media_dial_requests_total", h, "outcome=\"refused\"");
    if (lc_nats_subscribe(w->nats, MD_DIAL_SUBJECT, MD_DIAL_QUEUE, on_dial, uac, &uac->sub) !=
        LC_OK)
        LC_WARN("uac", "cannot subscribe %s", MD_DIAL_SUBJECT);
    return uac;
}

void
md_sip_uac_stop(md_sip_uac_t *uac)
{
    if (uac == NULL || uac->sub == NULL)
        return;
    lc_nats_unsubscribe(uac->w->nats, uac->sub);
    uac->sub = NULL;
}

void
md_sip_uac_destroy(md_sip_uac_t *uac)
{
    free(uac);
}
