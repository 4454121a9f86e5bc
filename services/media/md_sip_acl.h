/*
 * md_sip_acl: who may place calls to this worker, and how hard anyone may knock.
 *
 * - A CIDR allowlist of carrier networks (IPv4 and IPv6): INVITEs from there are accepted.
 * - Anyone else needs digest credentials (RFC 3261 section 22.4) of a configured user: the
 *   first INVITE gets a 401 challenge with a stateless nonce (time + HMAC-SHA256 of it
 *   under a per-process secret, valid 5 minutes; an expired one is re-challenged with
 *   stale=true). An unknown user and a wrong password get the same 403, after the same
 *   amount of work.
 * - Sources outside the allowlist are throttled per IP address (token bucket, `rate` per
 *   second with a burst of twice that): a flood is dropped without a reply, so it earns no
 *   amplification. The table of sources is bounded.
 *
 * Threads: the loop thread only.
 */
#ifndef MD_SIP_ACL_H
#define MD_SIP_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lc_status.h"
#include "md_sip_msg.h"

typedef struct md_sip_acl md_sip_acl_t;

typedef struct {
    const char *allow_cidrs; /* "127.0.0.0/8,::1/128"; "" = nobody */
    const char *users;       /* "user:password,user2:password2" or NULL/"" = none */
    const char *realm;       /* digest realm */
    int flood_rate;          /* messages per second per source outside the allowlist; 0 = off */
} md_sip_acl_opts_t;

/* LC_ERR_CONFIG with a message in err when a CIDR or user entry does not parse. */
lc_status_t md_sip_acl_create(const md_sip_acl_opts_t *opts, md_sip_acl_t **out, char *err,
                              size_t err_size);
void md_sip_acl_destroy(md_sip_acl_t *acl);

bool md_sip_acl_allowed(const md_sip_acl_t *acl, const struct sockaddr_storage *addr);

typedef enum {
    MD_SIP_AUTH_OK = 0,
    MD_SIP_AUTH_CHALLENGE, /* answer 401 with the WWW-Authenticate value given */
    MD_SIP_AUTH_FORBIDDEN, /* answer 403 */
} md_sip_auth_t;

/* Checks the Authorization of a request from outside the allowlist. On CHALLENGE,
 * challenge gets the WWW-Authenticate header value. *user_out (may be NULL) gets the
 * authenticated user on OK. */
md_sip_auth_t md_sip_acl_check(md_sip_acl_t *acl, const md_sip_msg_t *req, int64_t now_ms,
                               char *challenge, size_t challenge_size, char *user_out,
                               size_t user_size);

/* True when a message from addr (outside the allowlist) exceeds the rate: drop it. */
bool md_sip_acl_flooding(md_sip_acl_t *acl, const struct sockaddr_storage *addr, int64_t now_ms);

#endif
