/*
 * md_sip_msg: SIP messages on top of libosip2 (RFC 3261 section 7): parse and validate what
 * arrives, build responses and requests, serialise.
 *
 * Parsing is libosip2's (never hand-rolled here); on top of it this module checks what the
 * rest of the worker relies on (RFC 3261 section 8.2, RFC 4475 section 3.1.2): the mandatory
 * headers Via, From, To, Call-ID and CSeq are present, the CSeq number fits in 31 bits and
 * its method matches the request line, SIP/2.0 is the version, Max-Forwards is 0..255,
 * Content-Length is a number, the Request-URI carries no headers, a Date is in GMT.
 * libosip2 copies the input buffer and cuts bodies to Content-Length.
 *
 * Call md_sip_init() once (it runs libosip2's parser_init() and routes its traces to our
 * log) before anything else in this module; it is idempotent and thread-safe.
 * Threads: after md_sip_init, every function may be called from any thread on distinct
 * messages.
 */
#ifndef MD_SIP_MSG_H
#define MD_SIP_MSG_H

#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"

/* The largest SIP message accepted on any transport (a UDP datagram's maximum). */
#define MD_SIP_MAX_MESSAGE_BYTES 65535
#define MD_SIP_USER_AGENT "voxi-media/0.1.0"

/* A parsed message plus the fields every layer looks at. All pointers are borrowed from
 * `osip` (owned by this struct) and live as long as the message. */
typedef struct {
    osip_message_t *osip;
    bool is_request;
    const char *method; /* request: the request-line method; response: the CSeq method */
    int status_code;    /* responses only */
    uint32_t cseq;
    const char *cseq_method;
    const char *call_id;  /* the full Call-ID value ("number@host" or "number") */
    const char *from_tag; /* NULL when absent */
    const char *to_tag;   /* NULL when absent */
    const char *branch;   /* top Via branch, NULL when absent */
    int max_forwards;     /* -1 when absent */
    const char *body;     /* first body (NUL-terminated by libosip2) or NULL */
    size_t body_len;
    char content_type[64]; /* "type/subtype" lower-case, "" when absent */
    char *call_id_buf;     /* owned storage behind call_id */
} md_sip_msg_t;

/* Why a parsed message is unacceptable: the response a request gets (400, 505, ...). */
typedef struct {
    int code;           /* 0 = acceptable */
    const char *reason; /* static text for the reason phrase / log */
} md_sip_reject_t;

void md_sip_init(void);

/*
 * Parses buf[0..len) (need not be NUL-terminated) and validates it.
 *   LC_OK           *out is a valid message (caller destroys it)
 *   LC_ERR_INVALID  not a SIP message libosip2 can read: *out is NULL; drop it
 *   LC_ERR_PROTOCOL parsed but invalid: *out is set (caller destroys it) and *reject says
 *                   what a request gets in reply; a response is dropped
 *   LC_ERR_TOO_LARGE over MD_SIP_MAX_MESSAGE_BYTES: *out NULL
 */
lc_status_t md_sip_msg_parse(const char *buf, size_t len, md_sip_msg_t **out,
                             md_sip_reject_t *reject);
/*
 * For a request md_sip_msg_parse could not read (LC_ERR_INVALID): a response built from the
 * raw bytes (md_sip_fallback.c): 400, 501 for an unknown method, 416 for an unknown URI
 * scheme, with the request's Via, From, To (our tag added), Call-ID and CSeq copied. Writes
 * it to out (at most size bytes, not NUL-terminated) and returns its length, with the code
 * in *code; 0 when the bytes are no request, an ACK, or lack any of those fields.
 */
size_t md_sip_fallback_response(const char *buf, size_t len, char *out, size_t size, int *code);
/* Takes ownership of an osip message built locally and fills the derived fields. */
lc_status_t md_sip_msg_wrap(osip_message_t *osip, md_sip_msg_t **out);
void md_sip_msg_destroy(md_sip_msg_t *msg);

/* Value of the n-th (0-based) header `name` that libosip2 keeps as a generic header
 * (case-insensitive; the compact form is looked up too), or NULL. Borrowed. */
const char *md_sip_msg_header(const md_sip_msg_t *msg, const char *name, int n);
/* True when some comma-separated token of any `name` header equals token (case-insens.). */
bool md_sip_msg_header_has_token(const md_sip_msg_t *msg, const char *name, const char *token);
/* Request-URI user part or NULL. */
const char *md_sip_msg_ruri_user(const md_sip_msg_t *msg);

/*
 * A response to `req` (RFC 3261 section 8.2.6.2): every Via, From, To, Call-ID and CSeq
 * copied; `to_tag` added to To when it has none and code > 100; Record-Route copied for
 * 101-299 responses to INVITE (section 12.1.1); Server header. reason NULL = the default
 * phrase. Returns a new message (OOM aborts); the caller owns it.
 */
osip_message_t *md_sip_response_create(const md_sip_msg_t *req, int code, const char *reason,
                                       const char *to_tag);

/* A request skeleton: request line only (method and URI copied); add headers after.
 * Returns NULL when the URI does not parse. */
osip_message_t *md_sip_request_create(const char *method, const char *request_uri);

/* Sets the body and its Content-Type (replacing any). */
void md_sip_set_body(osip_message_t *m, const char *content_type, const char *body, size_t len);

/* Serialises; *out is a new NUL-terminated buffer the caller frees with free(). */
lc_status_t md_sip_serialize(osip_message_t *m, char **out, size_t *out_len);

/* A new random token (tags, branches): `prefix` + 16 hex chars. out_size >= prefix + 17. */
void md_sip_random_token(const char *prefix, char *out, size_t out_size);

/* Case-insensitive token match of a method name. */
bool md_sip_method_is(const md_sip_msg_t *msg, const char *method);

#endif
