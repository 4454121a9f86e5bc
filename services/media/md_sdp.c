#include "md_sdp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <osipparser2/osip_port.h>
#include <osipparser2/sdp_message.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "md_sip_msg.h"

#define OPUS_DYNAMIC_PT 96
#define TE_8K_PT 101
#define TE_48K_PT 102

const char *
md_sdp_dir_name(md_sdp_dir_t dir)
{
    switch (dir) {
    case MD_SDP_SENDONLY:
        return "sendonly";
    case MD_SDP_RECVONLY:
        return "recvonly";
    case MD_SDP_INACTIVE:
        return "inactive";
    default:
        return "sendrecv";
    }
}

/* ---- parsing ---- */

static bool
parse_int(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0')
        return false;
    long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char) *s))
            return false;
        v = v * 10 + (*s - '0');
        if (v > max)
            return false;
    }
    if (v < min)
        return false;
    *out = v;
    return true;
}

/* Leading integer of s (then a space or the end); false otherwise. */
static bool
leading_int(const char *s, long max, long *out, const char **rest)
{
    long v = 0;
    const char *p = s;
    if (!isdigit((unsigned char) *p))
        return false;
    while (isdigit((unsigned char) *p)) {
        v = v * 10 + (*p - '0');
        if (v > max)
            return false;
        p++;
    }
    if (*p != '\0' && *p != ' ')
        return false;
    while (*p == ' ')
        p++;
    *out = v;
    *rest = p;
    return true;
}

static bool
copy_bounded(char *dst, size_t size, const char *src)
{
    if (src == NULL)
        return false;
    size_t n = strlen(src);
    if (n >= size)
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static bool
is_ip_literal(const char *s, bool *ipv6)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, s, buf) == 1) {
        *ipv6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, s, buf) == 1) {
        *ipv6 = true;
        return true;
    }
    return false;
}

static md_sdp_dir_t
dir_from_attr(const char *field, bool *matched)
{
    *matched = true;
    if (strcasecmp(field, "sendrecv") == 0)
        return MD_SDP_SENDRECV;
    if (strcasecmp(field, "sendonly") == 0)
        return MD_SDP_SENDONLY;
    if (strcasecmp(field, "recvonly") == 0)
        return MD_SDP_RECVONLY;
    if (strcasecmp(field, "inactive") == 0)
        return MD_SDP_INACTIVE;
    *matched = false;
    return MD_SDP_SENDRECV;
}

/* RFC 3551 section 6: the static payload types a peer may use without rtpmap. */
static void
static_format(md_sdp_format_t *f)
{
    static const struct {
        int pt;
        const char *name;
        int clock;
    } table[] = {{0, "PCMU", 8000}, {3, "GSM", 8000}, {4, "G723", 8000}, {8, "PCMA", 8000},
                 {9, "G722", 8000}, {13, "CN", 8000}, {18, "G729", 8000}};
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].pt == f->pt) {
            snprintf(f->name, sizeof(f->name), "%s", table[i].name);
            f->clock_hz = table[i].clock;
            f->channels = 1;
        }
}

static md_sdp_format_t *
find_format(md_sdp_media_t *m, long pt)
{
    for (int i = 0; i < m->nformats; i++)
        if (m->formats[i].pt == pt)
            return &m->formats[i];
    return NULL;
}

/* a=rtpmap:<pt> <name>/<clock>[/<channels>] (RFC 4566 section 6) */
static void
parse_rtpmap(md_sdp_media_t *m, const char *value)
{
    long pt;
    const char *rest;
    if (!leading_int(value, 127, &pt, &rest))
        return;
    md_sdp_format_t *f = find_format(m, pt);
    if (f == NULL)
        return;
    char name[32] = "";
    size_t i = 0;
    while (rest[i] && rest[i] != '/' && i + 1 < sizeof(name)) {
        name[i] = rest[i];
        i++;
    }
    name[i] = '\0';
    if (rest[i] != '/')
        return;
    const char *p = rest + i + 1;
    long clock = 0;
    while (isdigit((unsigned char) *p) && clock <= 1000000)
        clock = clock * 10 + (*p++ - '0');
    long channels = 1;
    if (*p == '/') {
        p++;
        channels = 0;
        while (isdigit((unsigned char) *p) && channels <= 64)
            channels = channels * 10 + (*p++ - '0');
    }
    if (clock <= 0 || clock > 1000000 || channels <= 0 || channels > 64)
        return;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->clock_hz = (int) clock;
    f->channels = (int) channels;
}

static void
parse_fmtp(md_sdp_media_t *m, const char *value)
{
    long pt;
    const char *rest;
    if (!leading_int(value, 127, &pt, &rest))
        return;
    md_sdp_format_t *f = find_format(m, pt);
    if (f)
        snprintf(f->fmtp, sizeof(f->fmtp), "%s", rest);
}

/* a=crypto (RFC 4568 section 9.1): kept as written; md_srtp_crypto_parse reads it. */
static void
parse_crypto(md_sdp_media_t *m, const char *value)
{
    if (m->ncrypto >= MD_SDP_MAX_CRYPTO || strlen(value) >= sizeof(m->crypto[0].value))
        return;
    snprintf(m->crypto[m->ncrypto++].value, sizeof(m->crypto[0].value), "%s", value);
}

static lc_status_t
parse_media(sdp_message_t *sdp, int pos, const char *session_addr, md_sdp_dir_t session_dir,
            md_sdp_media_t *m)
{
    sdp_media_t *sm = osip_list_get(&sdp->m_medias, pos);
    if (sm == NULL || !copy_bounded(m->media, sizeof(m->media), sm->m_media) ||
        !copy_bounded(m->proto, sizeof(m->proto), sm->m_proto))
        return LC_ERR_INVALID;
    long port;
    if (!parse_int(sm->m_port, 0, 65535, &port))
        return LC_ERR_INVALID;
    m->port = (int) port;
    m->rtcp_port = port ? (int) port + 1 : 0;
    bool rtp = strncasecmp(m->proto, "RTP/", 4) == 0;
    int npay = osip_list_size(&sm->m_payloads);
    size_t raw_len = 0;
    for (int i = 0; i < npay; i++) {
        const char *fmt = osip_list_get(&sm->m_payloads, i);
        if (fmt == NULL)
            continue;
        size_t fl = strlen(fmt);
        if (raw_len + fl + 2 < sizeof(m->fmt_raw)) {
            if (raw_len)
                m->fmt_raw[raw_len++] = ' ';
            memcpy(m->fmt_raw + raw_len, fmt, fl + 1);
            raw_len += fl;
        }
        long pt;
        if (!rtp)
            continue;
        if (!parse_int(fmt, 0, 127, &pt))
            return LC_ERR_INVALID;
        if (m->nformats < MD_SDP_MAX_FORMATS && find_format(m, pt) == NULL) {
            md_sdp_format_t *f = &m->formats[m->nformats++];
            f->pt = (int) pt;
            static_format(f);
        }
    }
    if (raw_len == 0)
        snprintf(m->fmt_raw, sizeof(m->fmt_raw), "0");
    const char *addr = session_addr;
    sdp_connection_t *c = osip_list_get(&sm->c_connections, 0);
    if (c && c->c_addr)
        addr = c->c_addr;
    if (addr && is_ip_literal(addr, &m->ipv6))
        snprintf(m->addr, sizeof(m->addr), "%s", addr);
    m->dir = session_dir;
    int nattr = osip_list_size(&sm->a_attributes);
    for (int i = 0; i < nattr; i++) {
        sdp_attribute_t *a = osip_list_get(&sm->a_attributes, i);
        if (a == NULL || a->a_att_field == NULL)
            continue;
        const char *v = a->a_att_value ? a->a_att_value : "";
        bool matched;
        md_sdp_dir_t d = dir_from_attr(a->a_att_field, &matched);
        if (matched)
            m->dir = d;
        else if (strcasecmp(a->a_att_field, "rtpmap") == 0)
            parse_rtpmap(m, v);
        else if (strcasecmp(a->a_att_field, "fmtp") == 0)
            parse_fmtp(m, v);
        else if (strcasecmp(a->a_att_field, "crypto") == 0)
            parse_crypto(m, v);
        else if (strcasecmp(a->a_att_field, "ptime") == 0) {
            long ms = 0;
            const char *rest;
            if (leading_int(v, 1000, &ms, &rest) && ms > 0)
                m->ptime_ms = (int) ms;
        } else if (strcasecmp(a->a_att_field, "rtcp") == 0) {
            long rp = 0;
            const char *rest;
            if (leading_int(v, 65535, &rp, &rest) && rp > 0)
                m->rtcp_port = (int) rp;
        }
    }
    return LC_OK;
}

lc_status_t
md_sdp_parse(const char *body, size_t len, md_sdp_t *out)
{
    memset(out, 0, sizeof(*out));
    if (body == NULL || len == 0 || len > MD_SDP_MAX_BYTES)
        return LC_ERR_INVALID;
    md_sip_init(); /* libosip2's parser_init and allocators */
    /* NUL padding: libosip2 5.3's sdp_message_parse can step one byte past the terminating
     * NUL on a truncated last line (found by fuzz_sdp); the padding keeps that in bounds */
    char *copy = lc_calloc(1, len + 16);
    memcpy(copy, body, len);
    sdp_message_t *sdp = NULL;
    sdp_message_init(&sdp);
    lc_status_t st = LC_OK;
    if (sdp_message_parse(sdp, copy) != 0) {
        st = LC_ERR_INVALID;
        goto done;
    }
    long v;
    if (sdp->o_sess_id && strlen(sdp->o_sess_id) < 19 && parse_int(sdp->o_sess_id, 0, LONG_MAX, &v))
        out->sess_id = (uint64_t) v;
    if (sdp->o_sess_version && strlen(sdp->o_sess_version) < 19 &&
        parse_int(sdp->o_sess_version, 0, LONG_MAX, &v))
        out->sess_version = (uint64_t) v;
    const char *session_addr = sdp->c_connection ? sdp->c_connection->c_addr : NULL;
    md_sdp_dir_t session_dir = MD_SDP_SENDRECV;
    int nattr = osip_list_size(&sdp->a_attributes);
    for (int i = 0; i < nattr; i++) {
        sdp_attribute_t *a = osip_list_get(&sdp->a_attributes, i);
        bool matched;
        if (a && a->a_att_field) {
            md_sdp_dir_t d = dir_from_attr(a->a_att_field, &matched);
            if (matched)
                session_dir = d;
        }
    }
    int n = osip_list_size(&sdp->m_medias);
    if (n <= 0 || n > MD_SDP_MAX_MEDIA) {
        st = LC_ERR_INVALID;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        st = parse_media(sdp, i, session_addr, session_dir, &out->media[i]);
        if (st != LC_OK)
            goto done;
    }
    out->nmedia = n;
done:
    sdp_message_free(sdp);
    free(copy);
    return st;
}

/* ---- negotiation ---- */

static bool
prefs_have(const md_sdp_prefs_t *prefs, md_codec_id_t id)
{
    for (size_t i = 0; i < prefs->ncodecs; i++)
        if (prefs->codecs[i] == id)
            return true;
    return false;
}

/* A format we can use: known codec in prefs, with opus's mandatory "/2" (RFC 7587 7). */
static const md_codec_desc_t *
usable(const md_sdp_prefs_t *prefs, const md_sdp_format_t *f)
{
    if (f->name[0] == '\0')
        return NULL;
    const md_codec_desc_t *d = md_codec_find(f->name, f->clock_hz);
    if (d == NULL || !prefs_have(prefs, d->id))
        return NULL;
    if (d->channels_in_rtpmap > 0 && f->channels != d->channels_in_rtpmap)
        return NULL;
    return d;
}

/* The first a=crypto line we can use (RFC 4568 section 7.1.1: the answerer picks one). */
static bool
pick_crypto(const md_sdp_media_t *m, md_srtp_crypto_t *out)
{
    for (int c = 0; c < m->ncrypto; c++)
        if (md_srtp_crypto_parse(m->crypto[c].value, strlen(m->crypto[c].value), out) == LC_OK)
            return true;
    return false;
}

/* Opus fmtp (RFC 7587 section 6.1): what the peer's decoder wants from our encoder. */
static void
opus_params(const char *fmtp, md_codec_params_t *p)
{
    const char *s = fmtp;
    while (*s) {
        while (*s == ' ' || *s == ';')
            s++;
        const char *eq = strchr(s, '=');
        const char *end = s + strcspn(s, ";");
        if (eq == NULL || eq > end)
            break;
        char val[16] = "";
        size_t vlen = (size_t) (end - eq - 1);
        if (vlen < sizeof(val)) {
            memcpy(val, eq + 1, vlen);
            val[vlen] = '\0';
        }
        size_t klen = (size_t) (eq - s);
        long v = 0;
        bool num = parse_int(val, 0, 1000000, &v);
        if (klen == 12 && strncasecmp(s, "useinbandfec", 12) == 0 && num)
            p->opus_inband_fec = v == 1;
        else if (klen == 15 && strncasecmp(s, "maxplaybackrate", 15) == 0 && num && v >= 8000 &&
                 v <= 48000)
            p->opus_max_playback_rate_hz = (int) v;
        else if (klen == 17 && strncasecmp(s, "maxaveragebitrate", 17) == 0 && num && v >= 6000 &&
                 v <= 510000)
            p->opus_bitrate_bps = (int) v;
        s = end;
    }
}

static md_sdp_dir_t
answer_dir(md_sdp_dir_t offered)
{
    switch (offered) {
    case MD_SDP_SENDONLY:
        return MD_SDP_RECVONLY;
    case MD_SDP_RECVONLY:
        return MD_SDP_SENDONLY;
    case MD_SDP_INACTIVE:
        return MD_SDP_INACTIVE;
    default:
        return MD_SDP_SENDRECV;
    }
}

static void
pick_telephone_event(const md_sdp_media_t *m, int clock_hz, md_sdp_neg_t *out)
{
    out->te_pt = -1;
    for (int i = 0; i < m->nformats; i++) {
        const md_sdp_format_t *f = &m->formats[i];
        if (strcasecmp(f->name, "telephone-event") != 0)
            continue;
        if (out->te_pt < 0 || f->clock_hz == clock_hz) {
            out->te_pt = f->pt;
            out->te_clock_hz = f->clock_hz;
        }
    }
}

static void
fill_remote(const md_sdp_media_t *m, md_sdp_neg_t *out)
{
    snprintf(out->remote_addr, sizeof(out->remote_addr), "%s", m->addr);
    out->remote_dir = m->dir;
    bool zero = strcmp(m->addr, "0.0.0.0") == 0 || strcmp(m->addr, "::") == 0;
    out->remote_rtp_port = zero ? 0 : m->port;
    out->remote_rtcp_port = zero ? 0 : m->rtcp_port;
    out->remote_hold = zero || m->dir == MD_SDP_SENDONLY || m->dir == MD_SDP_INACTIVE;
}

/* Chooses the codec of media m (offer order); false when none fits. */
static bool
choose(const md_sdp_media_t *m, const md_sdp_prefs_t *prefs, md_sdp_neg_t *out)
{
    for (int i = 0; i < m->nformats; i++) {
        const md_codec_desc_t *d = usable(prefs, &m->formats[i]);
        if (d == NULL)
            continue;
        out->codec = d->id;
        out->pt = m->formats[i].pt;
        memset(&out->params, 0, sizeof(out->params));
        out->params.ptime_ms = 20; /* the playout clock ticks every 20 ms */
        if (d->id == MD_CODEC_OPUS)
            opus_params(m->formats[i].fmtp, &out->params);
        if (prefs->telephone_event)
            pick_telephone_event(m, d->rtp_clock_hz, out);
        else
            out->te_pt = -1;
        return true;
    }
    return false;
}

lc_status_t
md_sdp_negotiate(const md_sdp_t *offer, const md_sdp_prefs_t *prefs, md_sdp_neg_t *out)
{
    memset(out, 0, sizeof(*out));
    out->media_index = -1;
    for (int i = 0; i < offer->nmedia; i++) {
        const md_sdp_media_t *m = &offer->media[i];
        if (strcasecmp(m->media, "audio") != 0 || m->port == 0 || m->addr[0] == '\0')
            continue;
        bool savp = strcasecmp(m->proto, "RTP/SAVP") == 0;
        if (!savp && strcasecmp(m->proto, "RTP/AVP") != 0)
            continue;
        md_srtp_crypto_t crypto;
        memset(&crypto, 0, sizeof(crypto));
        if (savp && (!prefs->srtp_allowed || !pick_crypto(m, &crypto)))
            continue;
        if (!choose(m, prefs, out))
            continue;
        out->media_index = i;
        out->srtp = savp;
        out->remote_crypto = crypto;
        fill_remote(m, out);
        out->local_dir = answer_dir(m->dir);
        return LC_OK;
    }
    return LC_ERR_NOT_FOUND;
}

lc_status_t
md_sdp_accept_answer(const md_sdp_t *answer, const md_sdp_prefs_t *prefs, md_sdp_neg_t *out)
{
    memset(out, 0, sizeof(*out));
    out->media_index = -1;
    for (int i = 0; i < answer->nmedia; i++) {
        const md_sdp_media_t *m = &answer->media[i];
        if (strcasecmp(m->media, "audio") != 0 || m->port == 0 || m->addr[0] == '\0')
            continue;
        if (!choose(m, prefs, out))
            continue;
        bool savp = strcasecmp(m->proto, "RTP/SAVP") == 0;
        if (savp && !pick_crypto(m, &out->remote_crypto))
            continue;
        out->srtp = savp;
        out->media_index = i;
        fill_remote(m, out);
        out->local_dir = answer_dir(m->dir);
        return LC_OK;
    }
    return LC_ERR_NOT_FOUND;
}

/* ---- writing ---- */

typedef struct {
    char *p;
    size_t size, len;
    bool overflow;
} wbuf_t;

static void wprintf(wbuf_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
wprintf(wbuf_t *w, const char *fmt, ...)
{
    if (w->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->p + w->len, w->size - w->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= w->size - w->len) {
        w->overflow = true;
        return;
    }
    w->len += (size_t) n;
}

static void
write_session(wbuf_t *w, const md_sdp_local_t *local)
{
    bool v6 = strchr(local->addr, ':') != NULL;
    wprintf(w, "v=0\r\no=voxi %llu %llu IN %s %s\r\ns=voxi\r\nc=IN %s %s\r\nt=0 0\r\n",
            (unsigned long long) local->sess_id, (unsigned long long) local->sess_version,
            v6 ? "IP6" : "IP4", local->addr, v6 ? "IP6" : "IP4", local->addr);
}

static void
write_codec(wbuf_t *w, md_codec_id_t id, int pt)
{
    const md_codec_desc_t *d = md_codec_desc(id);
    if (d->channels_in_rtpmap > 0)
        wprintf(w, "a=rtpmap:%d %s/%d/%d\r\n", pt, d->encoding_name, d->rtp_clock_hz,
                d->channels_in_rtpmap);
    else
        wprintf(w, "a=rtpmap:%d %s/%d\r\n", pt, d->encoding_name, d->rtp_clock_hz);
    if (id == MD_CODEC_OPUS) /* we decode at 16 kHz (md_codec): say so, RFC 7587 6.1 */
        wprintf(w, "a=fmtp:%d maxplaybackrate=16000;sprop-maxcapturerate=16000;useinbandfec=1\r\n",
                pt);
}

static void
write_te(wbuf_t *w, int pt, int clock)
{
    wprintf(w, "a=rtpmap:%d telephone-event/%d\r\na=fmtp:%d 0-16\r\n", pt, clock, pt);
}

static void
write_tail(wbuf_t *w, const md_sdp_local_t *local, md_sdp_dir_t dir)
{
    wprintf(w, "a=ptime:20\r\na=%s\r\n", md_sdp_dir_name(dir));
    if (local->crypto)
        wprintf(w, "a=crypto:%s\r\n", local->crypto);
}

size_t
md_sdp_write_answer(const md_sdp_t *offer, const md_sdp_neg_t *neg, const md_sdp_local_t *local,
                    char *out, size_t out_size)
{
    wbuf_t w = {out, out_size, 0, false};
    write_session(&w, local);
    for (int i = 0; i < offer->nmedia; i++) {
        const md_sdp_media_t *m = &offer->media[i];
        if (i != neg->media_index) {
            wprintf(&w, "m=%s 0 %s %s\r\n", m->media, m->proto, m->fmt_raw);
            continue;
        }
        wprintf(&w, "m=audio %d %s %d", local->rtp_port, m->proto, neg->pt);
        if (neg->te_pt >= 0)
            wprintf(&w, " %d", neg->te_pt);
        wprintf(&w, "\r\n");
        write_codec(&w, neg->codec, neg->pt);
        if (neg->te_pt >= 0)
            write_te(&w, neg->te_pt, neg->te_clock_hz);
        write_tail(&w, local, neg->local_dir);
    }
    return w.overflow ? 0 : w.len;
}

static int
offer_pt(md_codec_id_t id)
{
    const md_codec_desc_t *d = md_codec_desc(id);
    return d->static_payload_type >= 0 ? d->static_payload_type : OPUS_DYNAMIC_PT;
}

size_t
md_sdp_write_offer(const md_sdp_prefs_t *prefs, const md_sdp_neg_t *current,
                   const md_sdp_local_t *local, char *out, size_t out_size)
{
    wbuf_t w = {out, out_size, 0, false};
    write_session(&w, local);
    const char *proto = local->crypto ? "RTP/SAVP" : "RTP/AVP";
    wprintf(&w, "m=audio %d %s", local->rtp_port, proto);
    bool opus = false;
    if (current) {
        wprintf(&w, " %d", current->pt);
        if (current->te_pt >= 0)
            wprintf(&w, " %d", current->te_pt);
    } else {
        for (size_t i = 0; i < prefs->ncodecs; i++) {
            wprintf(&w, " %d", offer_pt(prefs->codecs[i]));
            opus = opus || prefs->codecs[i] == MD_CODEC_OPUS;
        }
        if (prefs->telephone_event)
            wprintf(&w, opus ? " %d %d" : " %d", TE_8K_PT, TE_48K_PT);
    }
    wprintf(&w, "\r\n");
    if (current) {
        write_codec(&w, current->codec, current->pt);
        if (current->te_pt >= 0)
            write_te(&w, current->te_pt, current->te_clock_hz);
    } else {
        for (size_t i = 0; i < prefs->ncodecs; i++)
            write_codec(&w, prefs->codecs[i], offer_pt(prefs->codecs[i]));
        if (prefs->telephone_event) {
            write_te(&w, TE_8K_PT, 8000);
            if (opus)
                write_te(&w, TE_48K_PT, 48000);
        }
    }
    write_tail(&w, local, local->dir);
    return w.overflow ? 0 : w.len;
}
