/*
 * md_sip_fallback: a response to a request libosip2 cannot parse (RFC 4475 section 3.1.2
 * torture messages and the like). RFC 3261 section 8.2 wants malformed requests answered
 * (400) when the element can still tell where the response goes and what it answers: the
 * Via, From, To, Call-ID and CSeq header fields, copied as received (section 8.2.6.2). This
 * is a bounded line scan of the raw bytes, not a second parser: it only picks those fields
 * and checks the request line strictly.
 *
 * Codes: 400 when the request line is malformed or anything else is wrong; 501 for a
 * well-formed request line with a method nobody defines (section 8.2.1, RFC 4475 3.1.1.2);
 * 416 for a Request-URI scheme other than sip/sips/tel (section 8.2.2.1, RFC 4475 3.3.3).
 * Never for ACK (section 17.2.1) or a response.
 *
 * Threads: any (pure function).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "md_sip_msg.h"

static bool
token_char(unsigned char c)
{
    return isalnum(c) || strchr("-.!%*_+`'~", c) != NULL;
}

/* The end of the line starting at p (its CR), or NULL without CRLF before end. */
static const char *
line_end(const char *p, const char *end)
{
    for (const char *q = p; q + 1 < end; q++)
        if (q[0] == '\r' && q[1] == '\n')
            return q;
    return NULL;
}

static const char *const methods[] = {"INVITE",  "ACK",     "BYE",    "CANCEL",   "OPTIONS",
                                      "INFO",    "REFER",   "NOTIFY", "REGISTER", "SUBSCRIBE",
                                      "PUBLISH", "MESSAGE", "PRACK",  "UPDATE"};

/* 0: not a request we answer (a response, ACK, garbage); else the code from the request line. */
static int
request_line_code(const char *p, const char *eol)
{
    const char *sp1 = memchr(p, ' ', (size_t) (eol - p));
    if (sp1 == NULL || sp1 == p)
        return strncmp(p, "SIP/", 4) == 0 ? 0 : 400;
    if ((size_t) (sp1 - p) == 3 && memcmp(p, "ACK", 3) == 0)
        return 0;
    if (sp1 - p >= 4 && memcmp(p, "SIP/", 4) == 0)
        return 0; /* a status line */
    bool token = true;
    for (const char *c = p; c < sp1; c++)
        token = token && token_char((unsigned char) *c);
    const char *uri = sp1 + 1;
    const char *sp2 = memchr(uri, ' ', (size_t) (eol - uri));
    /* exactly METHOD SP Request-URI SP SIP-Version CRLF (section 7.1) */
    if (!token || sp2 == NULL || sp2 == uri || (size_t) (eol - sp2 - 1) != 7 ||
        memcmp(sp2 + 1, "SIP/2.0", 7) != 0)
        return 400;
    bool known = false;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        known = known || ((size_t) (sp1 - p) == strlen(methods[i]) &&
                          memcmp(p, methods[i], strlen(methods[i])) == 0);
    if (!known)
        return 501;
    const char *colon = memchr(uri, ':', (size_t) (sp2 - uri));
    if (colon == NULL || colon == uri || !isalpha((unsigned char) uri[0]))
        return 400;
    for (const char *c = uri; c < colon; c++)
        if (!isalnum((unsigned char) *c) && *c != '+' && *c != '-' && *c != '.')
            return 400;
    size_t slen = (size_t) (colon - uri);
    if ((slen == 3 && strncasecmp(uri, "sip", 3) == 0) ||
        (slen == 4 && strncasecmp(uri, "sips", 4) == 0) ||
        (slen == 3 && strncasecmp(uri, "tel", 3) == 0))
        return 400;
    return 416;
}

typedef enum { H_OTHER = 0, H_VIA, H_FROM, H_TO, H_CALL_ID, H_CSEQ } hdr_t;

static hdr_t
header_kind(const char *p, const char *eol)
{
    const char *colon = memchr(p, ':', (size_t) (eol - p));
    if (colon == NULL)
        return H_OTHER;
    size_t n = (size_t) (colon - p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    static const struct {
        const char *name;
        hdr_t kind;
    } names[] = {{"via", H_VIA},         {"v", H_VIA},     {"from", H_FROM},
                 {"f", H_FROM},          {"to", H_TO},     {"t", H_TO},
                 {"call-id", H_CALL_ID}, {"i", H_CALL_ID}, {"cseq", H_CSEQ}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == n && strncasecmp(p, names[i].name, n) == 0)
            return names[i].kind;
    return H_OTHER;
}

static bool
append(char *out, size_t size, size_t *len, const char *data, size_t n)
{
    if (*len + n >= size)
        return false;
    memcpy(out + *len, data, n);
    *len += n;
    return true;
}

static bool
has_tag(const char *p, const char *eol)
{
    for (const char *c = p; c + 4 <= eol; c++)
        if (c[0] == ';' && strncasecmp(c + 1, "tag", 3) == 0)
            return true;
    return false;
}

size_t
md_sip_fallback_response(const char *buf, size_t len, char *out, size_t size, int *code_out)
{
    const char *end = buf + len;
    const char *eol = line_end(buf, end);
    *code_out = 0;
    if (eol == NULL || eol == buf)
        return 0;
    int code = request_line_code(buf, eol);
    if (code == 0)
        return 0;
    const char *reason = code == 501   ? "Not Implemented"
                         : code == 416 ? "Unsupported URI Scheme"
                                       : "Bad Request";
    char status[64];
    int sn = snprintf(status, sizeof(status), "SIP/2.0 %d %s\r\n", code, reason);
    size_t n = 0;
    if (!append(out, size, &n, status, (size_t) sn))
        return 0;
    bool seen[H_CSEQ + 1] = {false};
    bool copying = false; /* the last header line was copied: so are its folded lines */
    for (const char *p = eol + 2; p < end;) {
        const char *e = line_end(p, end);
        if (e == NULL || e == p)
            break; /* the end of the header section (or a cut message) */
        size_t line = (size_t) (e - p);
        if (*p == ' ' || *p == '\t') {
            if (copying && (!append(out, size, &n, p, line) || !append(out, size, &n, "\r\n", 2)))
                return 0;
        } else {
            /* every Via, in order; the first From, To, Call-ID and CSeq */
            hdr_t kind = header_kind(p, e);
            copying = kind != H_OTHER && (kind == H_VIA || !seen[kind]);
            if (copying) {
                seen[kind] = true;
                if (!append(out, size, &n, p, line))
                    return 0;
                if (kind == H_TO && !has_tag(p, e) && !append(out, size, &n, ";tag=voxi400", 12))
                    return 0;
                if (!append(out, size, &n, "\r\n", 2))
                    return 0;
            }
        }
        p = e + 2;
    }
    if (!seen[H_VIA] || !seen[H_FROM] || !seen[H_TO] || !seen[H_CALL_ID] || !seen[H_CSEQ])
        return 0; /* not enough to answer */
    static const char tail[] = "Content-Length: 0\r\n\r\n";
    if (!append(out, size, &n, tail, sizeof(tail) - 1))
        return 0;
    *code_out = code;
    return n;
}
