/*
 * lc_ssrf: the address classifier behind the SSRF guards (webhook deliveries and tool calls,
 * custom LLM base URLs).
 *
 * A customer URL may only reach a public unicast address. Everything else is refused:
 * loopback, private (RFC 1918), link-local (the cloud metadata address 169.254.169.254
 * included), CGNAT (100.64/10, RFC 6598), multicast, broadcast, reserved and benchmarking
 * ranges, documentation ranges, the unspecified address, IPv6 ULA (fc00::/7) and
 * link-local (fe80::/10), anything outside IPv6 global unicast (2000::/3), and every IPv6
 * form that embeds an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96,
 * NAT64 64:ff9b::/96, 6to4 2002::/16), which is classified by the address it embeds.
 * Special-purpose registries: RFC 6890, IANA ipv4/ipv6-special-registry.
 *
 * A configured allowlist of networks (self-hosted setups, tests) overrides the class.
 *
 * Literal hosts are parsed the way the C library (and so curl) would read them: IPv4 in
 * every inet_aton(3) form (2130706433, 017700000001, 0x7f.1, 127.1), IPv6 with or without
 * brackets. Host names are resolved by the caller (wh_target), and every address checked.
 *
 * Threads: every function is pure or reads only its arguments; any thread.
 */
#ifndef LC_SSRF_H
#define LC_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lc_status.h"

typedef enum {
    LC_SSRF_PUBLIC = 0, /* allowed */
    LC_SSRF_UNSPECIFIED,
    LC_SSRF_LOOPBACK,
    LC_SSRF_PRIVATE,
    LC_SSRF_LINK_LOCAL,
    LC_SSRF_CGNAT,
    LC_SSRF_MULTICAST,
    LC_SSRF_BROADCAST,
    LC_SSRF_RESERVED,
    LC_SSRF_DOCUMENTATION,
    LC_SSRF_ULA,
    LC_SSRF_CLASS_COUNT_
} lc_ssrf_class_t;

/* An IPv4 (len 4) or IPv6 (len 16) address in network byte order. */
typedef struct {
    int family; /* AF_INET or AF_INET6 */
    uint8_t bytes[16];
} lc_ssrf_ip_t;

#define LC_SSRF_IP_TEXT_MAX 48

/* Short stable name, e.g. "loopback"; used in error messages and metrics. */
const char *lc_ssrf_class_name(lc_ssrf_class_t c);

/* The class of an address; IPv6 forms embedding IPv4 report the embedded address's class. */
lc_ssrf_class_t lc_ssrf_classify(const lc_ssrf_ip_t *ip);

/* Converts a sockaddr (AF_INET / AF_INET6); false for other families. */
bool lc_ssrf_ip_from_sockaddr(const struct sockaddr *sa, lc_ssrf_ip_t *out);

/*
 * Parses `host` (as it appears in a URL, length-bounded by the caller) when it is an IP
 * literal: IPv4 in any inet_aton form, IPv6 with or without brackets (zone ids are not
 * literals). Returns false for host names.
 */
bool lc_ssrf_ip_parse_literal(const char *host, lc_ssrf_ip_t *out);

/* Canonical text (inet_ntop); out needs LC_SSRF_IP_TEXT_MAX bytes. */
void lc_ssrf_ip_format(const lc_ssrf_ip_t *ip, char *out, size_t out_size);

/* A list of networks that bypass the classifier. */
typedef struct lc_ssrf_allowlist lc_ssrf_allowlist_t;

/*
 * Parses a comma-separated list of CIDRs ("127.0.0.1/32, 10.0.0.0/8, ::1/128"; a bare
 * address means a single host). NULL or "" gives an empty list. On LC_ERR_INVALID, err
 * (err_size bytes) says which entry is wrong and *out is NULL.
 */
lc_status_t lc_ssrf_allowlist_parse(const char *text, lc_ssrf_allowlist_t **out, char *err,
                                    size_t err_size);
void lc_ssrf_allowlist_destroy(lc_ssrf_allowlist_t *al);
size_t lc_ssrf_allowlist_count(const lc_ssrf_allowlist_t *al);

/* True when ip (or the IPv4 address an IPv6 form embeds) is in one of the networks. */
bool lc_ssrf_allowlist_contains(const lc_ssrf_allowlist_t *al, const lc_ssrf_ip_t *ip);

/* The verdict: LC_SSRF_PUBLIC when the address may be reached (public or allowlisted),
 * otherwise the class that forbids it. al may be NULL. */
lc_ssrf_class_t lc_ssrf_check(const lc_ssrf_allowlist_t *al, const lc_ssrf_ip_t *ip);

#endif
