#include "md_sip_msg.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

/* ---- initialisation ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* libosip2 prints parse errors itself; they are about untrusted input, so they go to our
 * log at debug level and rate-limited, never straight to stderr. */
static void
osip_trace_to_log(const char *file, int line, osip_trace_level_t level, const char *fmt, va_list ap)
{
    (void) file;
    (void) level;
    if (lc_log_min_level > LC_LOG_DEBUG)
        return;
    char text[256];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    LC_LOG_RL(LC_LOG_DEBUG, "sip", 5, "libosip2 (line %d): %s", line, text);
}

static void
init_once_fn(void)
{
    osip_set_allocators(lc_malloc, lc_realloc, free);
    parser_init();
    osip_trace_initialize_func(OSIP_WARNING, osip_trace_to_log);
}

void
md_sip_init(void)
{
    pthread_once(&init_once, init_once_fn);
}

/* ---- small helpers ---- */

void
md_sip_random_token(const char *prefix, char *out, size_t out_size)
{
    uint8_t raw[8];
    lc_random_bytes(raw, sizeof(raw));
    int n = snprintf(out, out_size, "%s", prefix);
    for (size_t i = 0; i < sizeof(raw) && n >= 0 && (size_t) n + 2 < out_size; i++)
        n += snprintf(out + n, out_size - (size_t) n, "%02x", raw[i]);
}

/* Parses 1*DIGIT into *out; false when not all digits or above max. */
static bool
parse_digits(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char) *s))
            return false;
        v = v * 10 + (uint64_t) (*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

static const struct {
    const char *full, *compact;
} compact_forms[] = {
    {"supported", "k"},       {"event", "o"},          {"refer-to", "r"},
    {"referred-by", "b"},     {"subject", "s"},        {"allow-events", "u"},
    {"session-expires", "x"}, {"accept-contact", "a"}, {"reject-contact", "j"},
};

static const char *
compact_of(const char *name)
{
    for (size_t i = 0; i < sizeof(compact_forms) / sizeof(compact_forms[0]); i++)
        if (strcasecmp(name, compact_forms[i].full) == 0)
            return compact_forms[i].compact;
    return NULL;
}

const char *
md_sip_msg_header(const md_sip_msg_t *msg, const char *name, int n)
{
    const char *compact = compact_of(name);
    int seen = 0;
    int count = osip_list_size(&msg->osip->headers);
    for (int i = 0; i < count; i++) {
        osip_header_t *h = osip_list_get(&msg->osip->headers, i);
        if (h == NULL || h->hname == NULL)
            continue;
        if (strcasecmp(h->hname, name) != 0 && (compact == NULL || strcasecmp(h->hname, compact)))
            continue;
        if (seen++ == n)
            return h->hvalue ? h->hvalue : "";
    }
    return NULL;
}

bool
md_sip_msg_header_has_token(const md_sip_msg_t *msg, const char *name, const char *token)
{
    size_t tlen = strlen(token);
    const char *v;
    for (int i = 0; (v = md_sip_msg_header(msg, name, i)) != NULL; i++) {
        const char *p = v;
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            const char *start = p;
            while (*p && *p != ',' && *p != ';')
                p++;
            const char *end = p;
            while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if ((size_t) (end - start) == tlen && strncasecmp(start, token, tlen) == 0)
                return true;
            while (*p && *p != ',')
                p++;
        }
    }
    return false;
}

const char *
md_sip_msg_ruri_user(const md_sip_msg_t *msg)
{
    osip_uri_t *u = msg->osip->req_uri;
    return u ? u->username : NULL;
}

bool
md_sip_method_is(const md_sip_msg_t *msg, const char *method)
{
    return msg->method != NULL && strcmp(msg->method, method) == 0;
}

/* ---- parse and validate ---- */

static void
fill_fields(md_sip_msg_t *msg)
{
    osip_message_t *m = msg->osip;
    msg->is_request = m->sip_method != NULL;
    msg->status_code = m->status_code;
    msg->max_forwards = -1;
    if (m->cseq) {
        msg->cseq_method = m->cseq->method;
        uint64_t v = 0;
        if (parse_digits(m->cseq->number, 0xffffffffu, &v))
            msg->cseq = (uint32_t) v;
    }
    msg->method = msg->is_request ? m->sip_method : msg->cseq_method;
    if (m->call_id) {
        char *s = NULL;
        if (osip_call_id_to_str(m->call_id, &s) == 0)
            msg->call_id_buf = s;
    }
    msg->call_id = msg->call_id_buf;
    osip_generic_param_t *p = NULL;
    if (m->from && osip_from_get_tag(m->from, &p) == 0 && p && p->gvalue)
        msg->from_tag = p->gvalue;
    p = NULL;
    if (m->to && osip_from_get_tag((osip_from_t *) m->to, &p) == 0 && p && p->gvalue)
        msg->to_tag = p->gvalue;
    osip_via_t *via = osip_list_get(&m->vias, 0);
    p = NULL;
    if (via && osip_via_param_get_byname(via, "branch", &p) == 0 && p && p->gvalue)
        msg->branch = p->gvalue;
    osip_body_t *body = NULL;
    if (osip_message_get_body(m, 0, &body) == 0 && body && body->body) {
        msg->body = body->body;
        msg->body_len = body->length;
    }
    if (m->content_type && m->content_type->type && m->content_type->subtype) {
        snprintf(msg->content_type, sizeof(msg->content_type), "%s/%s", m->content_type->type,
                 m->content_type->subtype);
        for (char *c = msg->content_type; *c; c++)
            *c = (char) tolower((unsigned char) *c);
    }
}

static md_sip_reject_t
reject(int code, const char *reason)
{
    md_sip_reject_t r = {code, reason};
    return r;
}

/* RFC 3261 section 8.2 and the RFC 4475 section 3.1.2 cases libosip2 lets through. */
static md_sip_reject_t
validate(md_sip_msg_t *msg)
{
    osip_message_t *m = msg->osip;
    if (!msg->is_request && (m->status_code < 100 || m->status_code > 699))
        return reject(400, "Bad Status Code");
    if (msg->is_request && (m->sip_version == NULL || strcasecmp(m->sip_version, "SIP/2.0") != 0))
        return reject(505, "Version Not Supported");
    if (osip_list_size(&m->vias) == 0)
        return reject(400, "Missing Via");
    osip_via_t *via = osip_list_get(&m->vias, 0);
    if (via == NULL || via->host == NULL || via->host[0] == '\0')
        return reject(400, "Bad Via");
    if (m->from == NULL)
        return reject(400, "Missing From");
    if (m->to == NULL)
        return reject(400, "Missing To");
    if (msg->call_id == NULL || msg->call_id[0] == '\0')
        return reject(400, "Missing Call-ID");
    if (m->cseq == NULL || m->cseq->method == NULL)
        return reject(400, "Missing CSeq");
    uint64_t v;
    /* RFC 3261 section 8.1.1.5: the sequence number must be less than 2**31. */
    if (!parse_digits(m->cseq->number, 0x7fffffffu, &v))
        return reject(400, "Bad CSeq");
    if (msg->is_request && strcmp(m->sip_method, m->cseq->method) != 0)
        return reject(400, "CSeq Method Mismatch");
    const char *mf = md_sip_msg_header(msg, "max-forwards", 0);
    if (mf) {
        while (*mf == ' ' || *mf == '\t')
            mf++;
        if (!parse_digits(mf, 255, &v))
            return reject(400, "Bad Max-Forwards");
        msg->max_forwards = (int) v;
    }
    if (m->content_length && m->content_length->value &&
        !parse_digits(m->content_length->value, MD_SIP_MAX_MESSAGE_BYTES, &v))
        return reject(400, "Bad Content-Length");
    if (msg->is_request) {
        /* RFC 3261 section 19.1.1: headers are not allowed in a Request-URI. */
        if (m->req_uri && osip_list_size(&m->req_uri->url_headers) > 0)
            return reject(400, "Bad Request-URI");
        /* RFC 3261 section 20.17: the Date is always in GMT. */
        const char *date = md_sip_msg_header(msg, "date", 0);
        if (date) {
            size_t n = strlen(date);
            while (n > 0 && (date[n - 1] == ' ' || date[n - 1] == '\t'))
                n--;
            if (n < 3 || strncmp(date + n - 3, "GMT", 3) != 0)
                return reject(400, "Bad Date");
        }
    }
    return reject(0, NULL);
}

lc_status_t
md_sip_msg_wrap(osip_message_t *osip, md_sip_msg_t **out)
{
    md_sip_msg_t *msg = LC_NEW(md_sip_msg_t);
    msg->osip = osip;
    fill_fields(msg);
    *out = msg;
    return LC_OK;
}

/* Line i of buf[0..len) starts at *pos; returns its length without CR/LF and advances. */
static size_t
next_line(const char *buf, size_t len, size_t *pos, const char **line)
{
    size_t start = *pos, end = start;
    while (end < len && buf[end] != '\n')
        end++;
    *line = buf + start;
    *pos = end < len ? end + 1 : len;
    size_t n = end - start;
    if (n > 0 && buf[start + n - 1] == '\r')
        n--;
    return n;
}

static bool
is_content_type_line(const char *line, size_t n)
{
    return (n >= 13 && strncasecmp(line, "content-type:", 13) == 0) ||
           (n >= 2 && (line[0] == 'c' || line[0] == 'C') && (line[1] == ':' || line[1] == ' '));
}

/*
 * libosip2 5.3 leaks the first Content-Type of a multipart body part that carries two (found
 * by fuzz_sip): a remote peer could grow our memory with such messages. A message whose
 * multipart body has a part with more than one Content-Type is refused before libosip2
 * sees it. This only counts header lines; the parsing stays libosip2's.
 */
static bool
multipart_part_with_two_content_types(const char *buf, size_t len)
{
    size_t pos = 0;
    const char *line;
    bool multipart = false;
    size_t n;
    /* the message's own headers, up to the blank line */
    while (pos < len && (n = next_line(buf, len, &pos, &line)) > 0)
        if (is_content_type_line(line, n) && memmem(line, n, "ultipart", 8))
            multipart = true;
    if (!multipart)
        return false;
    bool in_part_headers = false;
    int content_types = 0;
    while (pos < len) {
        n = next_line(buf, len, &pos, &line);
        if (n >= 2 && line[0] == '-' && line[1] == '-') {
            in_part_headers = true;
            content_types = 0;
        } else if (n == 0) {
            in_part_headers = false;
        } else if (in_part_headers && is_content_type_line(line, n) && ++content_types > 1) {
            return true;
        }
    }
    return false;
}

lc_status_t
md_sip_msg_parse(const char *buf, size_t len, md_sip_msg_t **out, md_sip_reject_t *rej)
{
    *out = NULL;
    *rej = reject(0, NULL);
    if (len > MD_SIP_MAX_MESSAGE_BYTES)
        return LC_ERR_TOO_LARGE;
    if (len < 16 || multipart_part_with_two_content_types(buf, len))
        return LC_ERR_INVALID;
    osip_message_t *m = NULL;
    osip_message_init(&m);
    if (osip_message_parse(m, buf, len) != 0) {
        osip_message_free(m);
        return LC_ERR_INVALID;
    }
    md_sip_msg_t *msg;
    md_sip_msg_wrap(m, &msg);
    *out = msg;
    *rej = validate(msg);
    return rej->code == 0 ? LC_OK : LC_ERR_PROTOCOL;
}

void
md_sip_msg_destroy(md_sip_msg_t *msg)
{
    if (msg == NULL)
        return;
    osip_message_free(msg->osip);
    free(msg->call_id_buf);
    free(msg);
}

/* ---- build ---- */

osip_message_t *
md_sip_response_create(const md_sip_msg_t *req, int code, const char *reason, const char *to_tag)
{
    osip_message_t *r = NULL;
    const osip_message_t *q = req->osip;
    osip_message_init(&r);
    osip_message_set_version(r, osip_strdup("SIP/2.0"));
    osip_message_set_status_code(r, code);
    if (reason == NULL)
        reason = osip_message_get_reason(code);
    osip_message_set_reason_phrase(r, osip_strdup(reason ? reason : "Unknown"));
    osip_list_clone(&q->vias, &r->vias, (int (*)(void *, void **)) & osip_via_clone);
    if (q->from)
        osip_from_clone(q->from, &r->from);
    if (q->to) {
        osip_to_clone(q->to, &r->to);
        osip_generic_param_t *p = NULL;
        if (to_tag && code > 100 && !(osip_from_get_tag((osip_from_t *) r->to, &p) == 0 && p))
            osip_from_set_tag((osip_from_t *) r->to, osip_strdup(to_tag));
    }
    if (q->call_id)
        osip_call_id_clone(q->call_id, &r->call_id);
    if (q->cseq)
        osip_cseq_clone(q->cseq, &r->cseq);
    if (md_sip_method_is(req, "INVITE") && code > 100 && code < 300)
        osip_list_clone(&q->record_routes, &r->record_routes,
                        (int (*)(void *, void **)) & osip_record_route_clone);
    osip_message_set_header(r, "Server", MD_SIP_USER_AGENT);
    return r;
}

osip_message_t *
md_sip_request_create(const char *method, const char *request_uri)
{
    osip_uri_t *u = NULL;
    osip_uri_init(&u);
    if (osip_uri_parse(u, request_uri) != 0) {
        osip_uri_free(u);
        return NULL;
    }
    osip_message_t *m = NULL;
    osip_message_init(&m);
    osip_message_set_method(m, osip_strdup(method));
    osip_message_set_uri(m, u);
    osip_message_set_version(m, osip_strdup("SIP/2.0"));
    return m;
}

void
md_sip_set_body(osip_message_t *m, const char *content_type, const char *body, size_t len)
{
    osip_list_special_free(&m->bodies, (void (*)(void *)) & osip_body_free);
    if (m->content_type) {
        osip_content_type_free(m->content_type);
        m->content_type = NULL;
    }
    if (m->content_length) {
        osip_content_length_free(m->content_length);
        m->content_length = NULL;
    }
    if (content_type && body && len > 0) {
        osip_message_set_content_type(m, content_type);
        osip_message_set_body(m, body, len);
    }
}

lc_status_t
md_sip_serialize(osip_message_t *m, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    osip_message_force_update(m);
    char *s = NULL;
    size_t n = 0;
    if (osip_message_to_str(m, &s, &n) != 0 || s == NULL)
        return LC_ERR_INTERNAL;
    *out = s;
    *out_len = n;
    return LC_OK;
}
