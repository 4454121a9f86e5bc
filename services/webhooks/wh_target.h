/*
 * wh_target: from a customer URL to the exact addresses we may connect to.
 *
 * wh_url_parse checks the URL's shape (http(s) only, a host, no credentials, no zone id,
 * bounded length) with curl's own URL parser, so what is checked is what curl will use;
 * curl normalises numeric IPv4 forms (0x7f.1 -> 127.0.0.1), and lc_ssrf_ip_parse_literal reads
 * them the same way. For an IP literal the address is known at once. For a host name,
 * wh_target_resolve resolves it once with uv_getaddrinfo (on libuv's thread pool, never on
 * the loop) and checks every address; the caller then pins curl to exactly those
 * addresses (CURLOPT_RESOLVE), so a second DNS answer (rebinding) cannot switch them.
 *
 * Threads: the loop thread.
 */
#ifndef WH_TARGET_H
#define WH_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lc_status.h"
#include "lc_ssrf.h"

#define WH_TARGET_MAX_ADDRS 16
#define WH_HOST_MAX 256

typedef struct {
    bool https;
    char host[WH_HOST_MAX]; /* as curl sees it: lower case, IPv6 in brackets */
    int port;
    bool literal; /* host is an IP address */
    lc_ssrf_ip_t addrs[WH_TARGET_MAX_ADDRS];
    size_t naddrs;
} wh_target_t;

/*
 * Parses url (NUL-terminated, at most WH_URL_MAX bytes). On LC_ERR_INVALID, err (err_size
 * bytes) holds a message safe to show the customer. For a literal host, addrs[0] is set.
 */
lc_status_t wh_url_parse(const char *url, bool allow_http, wh_target_t *out, char *err,
                         size_t err_size);

/*
 * Checks every address of t; returns LC_SSRF_PUBLIC when all may be reached, otherwise the
 * class of the first that may not (its text in bad_text, LC_SSRF_IP_TEXT_MAX bytes, may be NULL).
 */
lc_ssrf_class_t wh_target_check(const wh_target_t *t, const lc_ssrf_allowlist_t *al,
                                char *bad_text);

/*
 * Called once with the resolved target: LC_OK with t->addrs filled (not yet checked),
 * LC_ERR_NOT_FOUND when the name does not resolve, LC_ERR_CANCELLED when cancelled.
 * t is borrowed for the call.
 */
typedef void (*wh_resolve_cb)(lc_status_t status, const wh_target_t *t, void *arg);

typedef struct wh_resolve wh_resolve_t;

/*
 * Resolves t->host (a name) on the thread pool. On LC_OK cb runs exactly once on a later
 * loop turn; *out (may be NULL) allows wh_resolve_cancel until then.
 */
lc_status_t wh_target_resolve(uv_loop_t *loop, const wh_target_t *t, wh_resolve_cb cb, void *arg,
                              wh_resolve_t **out);

/* Asks the thread pool to drop the lookup; cb still runs (LC_ERR_CANCELLED if dropped in
 * time, else the result). */
void wh_resolve_cancel(wh_resolve_t *r);

#endif
