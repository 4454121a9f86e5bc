/*
 * md_sip_digest: HTTP digest authentication as SIP uses it (RFC 3261 section 22.4,
 * RFC 2617 section 3.2.2, MD5 and qop=auth), for both sides: checking the credentials of a
 * request we challenged, and answering a challenge we received (UAC).
 *
 * Threads: pure functions; any thread.
 */
#ifndef MD_SIP_DIGEST_H
#define MD_SIP_DIGEST_H

#include <osipparser2/osip_message.h>
#include <stdbool.h>
#include <stddef.h>

#include "lc_status.h"

/* Copies a header parameter without its surrounding double quotes (and with \" escapes
 * resolved) into out; "" for NULL. */
void md_sip_digest_unquote(const char *in, char *out, size_t out_size);

/*
 * The request-digest (32 lower-case hex chars + NUL into out[33]):
 *   HA1 = MD5(user:realm:password), HA2 = MD5(method:uri)
 *   qop "auth": MD5(HA1:nonce:nc:cnonce:auth:HA2), no qop: MD5(HA1:nonce:HA2)
 * qop, nc and cnonce may be NULL when qop is not used.
 */
void md_sip_digest_response(const char *user, const char *realm, const char *password,
                            const char *method, const char *uri, const char *nonce, const char *qop,
                            const char *nc, const char *cnonce, char out[33]);

/*
 * The Authorization / Proxy-Authorization value answering a challenge (a WWW-Authenticate or
 * Proxy-Authenticate header as libosip2 parsed it; the two share one type): MD5 only, qop
 * "auth" when offered (a fresh cnonce, nc 00000001), opaque echoed. LC_ERR_INVALID for a
 * scheme or algorithm we do not speak, LC_ERR_TOO_LARGE when out is too small.
 */
lc_status_t md_sip_digest_answer(const osip_www_authenticate_t *challenge, const char *user,
                                 const char *password, const char *method, const char *uri,
                                 char *out, size_t out_size);

/* Constant-time comparison of two NUL-terminated strings of any length. */
bool md_sip_digest_equal(const char *a, const char *b);

#endif
