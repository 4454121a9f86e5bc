#include "lc_ssrf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"

static const char *const class_names[LC_SSRF_CLASS_COUNT_] = {
    [LC_SSRF_PUBLIC] = "public",         [LC_SSRF_UNSPECIFIED] = "unspecified",
    [LC_SSRF_LOOPBACK] = "loopback",     [LC_SSRF_PRIVATE] = "private",
    [LC_SSRF_LINK_LOCAL] = "link_local", [LC_SSRF_CGNAT] = "cgnat",
    [LC_SSRF_MULTICAST] = "multicast",   [LC_SSRF_BROADCAST] = "broadcast",
    [LC_SSRF_RESERVED] = "reserved",     [LC_SSRF_DOCUMENTATION] = "documentation",
    [LC_SSRF_ULA] = "unique_local",
};

const char *
lc_ssrf_class_name(lc_ssrf_class_t c)
{
    if ((int) c < 0 || c >= LC_SSRF_CLASS_COUNT_)
        return "unknown";
    return class_names[c];
}

/* ---- IPv4 ---- */

typedef struct {
    uint32_t net;
    int prefix;
    lc_ssrf_class_t cls;
} v4_range_t;

#define V4(a, b, c, d)                                                                             \
    (((uint32_t) (a) << 24) | ((uint32_t) (b) << 16) | ((uint32_t) (c) << 8) | (d))

/* IANA IPv4 Special-Purpose Address Registry (RFC 6890 and successors); order matters only
 * where ranges nest (the broadcast address inside 240/4). */
static const v4_range_t v4_ranges[] = {
    {V4(255, 255, 255, 255), 32, LC_SSRF_BROADCAST},
    {V4(0, 0, 0, 0), 8, LC_SSRF_UNSPECIFIED}, /* "this network" (RFC 791, 1122) */
    {V4(10, 0, 0, 0), 8, LC_SSRF_PRIVATE},    /* RFC 1918 */
    {V4(100, 64, 0, 0), 10, LC_SSRF_CGNAT},   /* RFC 6598 */
    {V4(127, 0, 0, 0), 8, LC_SSRF_LOOPBACK},
    {V4(169, 254, 0, 0), 16, LC_SSRF_LINK_LOCAL}, /* RFC 3927; cloud metadata lives here */
    {V4(172, 16, 0, 0), 12, LC_SSRF_PRIVATE},
    {V4(192, 0, 0, 0), 24, LC_SSRF_RESERVED},      /* IETF protocol assignments */
    {V4(192, 0, 2, 0), 24, LC_SSRF_DOCUMENTATION}, /* TEST-NET-1, RFC 5737 */
    {V4(192, 88, 99, 0), 24, LC_SSRF_RESERVED},    /* 6to4 relay anycast, RFC 7526 */
    {V4(192, 168, 0, 0), 16, LC_SSRF_PRIVATE},
    {V4(198, 18, 0, 0), 15, LC_SSRF_RESERVED},        /* benchmarking, RFC 2544 */
    {V4(198, 51, 100, 0), 24, LC_SSRF_DOCUMENTATION}, /* TEST-NET-2 */
    {V4(203, 0, 113, 0), 24, LC_SSRF_DOCUMENTATION},  /* TEST-NET-3 */
    {V4(224, 0, 0, 0), 4, LC_SSRF_MULTICAST},
    {V4(240, 0, 0, 0), 4, LC_SSRF_RESERVED},
};

static uint32_t
v4_mask(int prefix)
{
    return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static lc_ssrf_class_t
classify_v4(uint32_t a)
{
    for (size_t i = 0; i < sizeof(v4_ranges) / sizeof(v4_ranges[0]); i++) {
        uint32_t m = v4_mask(v4_ranges[i].prefix);
        if ((a & m) == v4_ranges[i].net)
            return v4_ranges[i].cls;
    }
    return LC_SSRF_PUBLIC;
}

static uint32_t
load_v4(const uint8_t *b)
{
    return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) | ((uint32_t) b[2] << 8) | b[3];
}

/* ---- IPv6 ---- */

static bool
v6_prefix(const uint8_t *a, const uint8_t *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t) full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t m = (uint8_t) (0xff << (8 - rest));
    return (a[full] & m) == (net[full] & m);
}

/* When `a` embeds an IPv4 address (mapped, compatible, NAT64, 6to4), stores it and returns
 * true. */
static bool
v6_embedded_v4(const uint8_t *a, uint32_t *v4)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero12[12] = {0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) {
        *v4 = load_v4(a + 12);
        return true;
    }
    if (memcmp(a, zero12, 12) == 0) { /* IPv4-compatible (deprecated), also :: and ::1 */
        *v4 = load_v4(a + 12);
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4: 2002:AABB:CCDD::/48 */
        *v4 = load_v4(a + 2);
        return true;
    }
    return false;
}

static lc_ssrf_class_t
classify_v6(const uint8_t *a)
{
    static const uint8_t unspecified[16] = {0};
    static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (memcmp(a, unspecified, 16) == 0)
        return LC_SSRF_UNSPECIFIED;
    if (memcmp(a, loopback, 16) == 0)
        return LC_SSRF_LOOPBACK;
    uint32_t v4;
    if (v6_embedded_v4(a, &v4)) {
        static const uint8_t zero12[12] = {0};
        lc_ssrf_class_t c = classify_v4(v4);
        /* IPv4-compatible addresses are deprecated (RFC 4291 2.5.5.1): never route them. */
        if (c == LC_SSRF_PUBLIC && memcmp(a, zero12, 12) == 0)
            return LC_SSRF_RESERVED;
        return c;
    }
    /* networks as full 16-byte addresses, so a prefix never reads past its array */
    static const uint8_t ula[16] = {0xfc};
    static const uint8_t link_local[16] = {0xfe, 0x80};
    static const uint8_t site_local[16] = {0xfe, 0xc0};
    static const uint8_t multicast[16] = {0xff};
    static const uint8_t doc[16] = {0x20, 0x01, 0x0d, 0xb8};
    static const uint8_t doc2[16] = {0x3f, 0xff}; /* 3fff::/20, RFC 9637 */
    static const uint8_t ietf[16] = {0x20, 0x01}; /* 2001::/23: Teredo, ORCHID, ... */
    static const uint8_t nat64_local[16] = {0, 0x64, 0xff, 0x9b, 0, 1}; /* 64:ff9b:1::/48 */
    static const uint8_t discard[16] = {1};                             /* 100::/64 */
    static const uint8_t global[16] = {0x20};
    if (v6_prefix(a, multicast, 8))
        return LC_SSRF_MULTICAST;
    if (v6_prefix(a, ula, 7))
        return LC_SSRF_ULA;
    if (v6_prefix(a, link_local, 10))
        return LC_SSRF_LINK_LOCAL;
    if (v6_prefix(a, site_local, 10))
        return LC_SSRF_RESERVED;
    if (v6_prefix(a, doc, 32) || v6_prefix(a, doc2, 20))
        return LC_SSRF_DOCUMENTATION;
    if (v6_prefix(a, ietf, 23) || v6_prefix(a, nat64_local, 48) || v6_prefix(a, discard, 64))
        return LC_SSRF_RESERVED;
    if (!v6_prefix(a, global, 3)) /* only 2000::/3 is global unicast */
        return LC_SSRF_RESERVED;
    return LC_SSRF_PUBLIC;
}

lc_ssrf_class_t
lc_ssrf_classify(const lc_ssrf_ip_t *ip)
{
    if (ip->family == AF_INET)
        return classify_v4(load_v4(ip->bytes));
    if (ip->family == AF_INET6)
        return classify_v6(ip->bytes);
    return LC_SSRF_RESERVED;
}

bool
lc_ssrf_ip_from_sockaddr(const struct sockaddr *sa, lc_ssrf_ip_t *out)
{
    memset(out, 0, sizeof(*out));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) (const void *) sa;
        out->family = AF_INET;
        memcpy(out->bytes, &sin->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) (const void *) sa;
        out->family = AF_INET6;
        memcpy(out->bytes, &sin6->sin6_addr, 16);
        return true;
    }
    return false;
}

bool
lc_ssrf_ip_parse_literal(const char *host, lc_ssrf_ip_t *out)
{
    memset(out, 0, sizeof(*out));
    if (host == NULL || host[0] == '\0')
        return false;
    size_t len = strlen(host);
    char buf[64];
    if (host[0] == '[') {
        if (len < 3 || host[len - 1] != ']' || len - 2 >= sizeof(buf))
            return false;
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        if (inet_pton(AF_INET6, buf, out->bytes) != 1)
            return false;
        out->family = AF_INET6;
        return true;
    }
    if (len >= sizeof(buf))
        return false;
    if (strchr(host, ':') != NULL) {
        if (inet_pton(AF_INET6, host, out->bytes) != 1)
            return false;
        out->family = AF_INET6;
        return true;
    }
    /* inet_aton stops at whitespace and accepts what follows: only hand it characters an
     * IPv4 literal in any base can contain, so "1.2.3.4 x" is not taken for 1.2.3.4. */
    for (const char *p = host; *p; p++) {
        char c = *p;
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == 'x' || c == 'X' || c == '.';
        if (!ok)
            return false;
    }
    struct in_addr in;
    if (inet_aton(host, &in) == 0)
        return false;
    out->family = AF_INET;
    memcpy(out->bytes, &in, 4);
    return true;
}

void
lc_ssrf_ip_format(const lc_ssrf_ip_t *ip, char *out, size_t out_size)
{
    if (out_size == 0)
        return;
    out[0] = '\0';
    if (ip->family == AF_INET || ip->family == AF_INET6)
        inet_ntop(ip->family, ip->bytes, out, (socklen_t) out_size);
}

/* ---- the allowlist ---- */

typedef struct {
    lc_ssrf_ip_t net;
    int prefix;
} cidr_t;

struct lc_ssrf_allowlist {
    cidr_t *items;
    size_t count;
};

static bool
parse_cidr(const char *text, cidr_t *out)
{
    char buf[80];
    size_t len = strlen(text);
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, text, len + 1);
    char *slash = strchr(buf, '/');
    int max_prefix;
    memset(out, 0, sizeof(*out));
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, out->net.bytes) == 1) {
        out->net.family = AF_INET;
        max_prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->net.bytes) == 1) {
        out->net.family = AF_INET6;
        max_prefix = 128;
    } else {
        return false;
    }
    out->prefix = max_prefix;
    if (slash) {
        char *end;
        const char *digits = slash + 1;
        if (*digits < '0' || *digits > '9')
            return false;
        long p = strtol(digits, &end, 10);
        if (*end != '\0' || p < 0 || p > max_prefix)
            return false;
        out->prefix = (int) p;
    }
    return true;
}

static char *
trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

lc_status_t
lc_ssrf_allowlist_parse(const char *text, lc_ssrf_allowlist_t **out, char *err, size_t err_size)
{
    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    lc_ssrf_allowlist_t *al = LC_NEW(lc_ssrf_allowlist_t);
    if (text == NULL || text[0] == '\0') {
        *out = al;
        return LC_OK;
    }
    char *copy = lc_strdup(text);
    char *save = NULL;
    lc_status_t st = LC_OK;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *item = trim(tok);
        if (item[0] == '\0')
            continue;
        cidr_t c;
        if (!parse_cidr(item, &c)) {
            snprintf(err, err_size, "\"%.60s\" is not a network (address or address/prefix)", item);
            st = LC_ERR_INVALID;
            break;
        }
        al->items = lc_realloc(al->items, (al->count + 1) * sizeof(cidr_t));
        al->items[al->count++] = c;
    }
    free(copy);
    if (st != LC_OK) {
        lc_ssrf_allowlist_destroy(al);
        return st;
    }
    *out = al;
    return LC_OK;
}

void
lc_ssrf_allowlist_destroy(lc_ssrf_allowlist_t *al)
{
    if (al == NULL)
        return;
    free(al->items);
    free(al);
}

size_t
lc_ssrf_allowlist_count(const lc_ssrf_allowlist_t *al)
{
    return al ? al->count : 0;
}

static bool
cidr_contains(const cidr_t *c, const lc_ssrf_ip_t *ip)
{
    if (c->net.family != ip->family)
        return false;
    return v6_prefix(ip->bytes, c->net.bytes, c->prefix);
}

bool
lc_ssrf_allowlist_contains(const lc_ssrf_allowlist_t *al, const lc_ssrf_ip_t *ip)
{
    if (al == NULL)
        return false;
    /* An IPv4-mapped address is the IPv4 host itself (RFC 4291 2.5.5.2); the other embedding
     * forms reach a translator or relay, not the host, so they do not inherit its entry. */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    lc_ssrf_ip_t embedded = {.family = 0};
    if (ip->family == AF_INET6 && memcmp(ip->bytes, mapped, 12) == 0) {
        embedded.family = AF_INET;
        memcpy(embedded.bytes, ip->bytes + 12, 4);
    }
    for (size_t i = 0; i < al->count; i++) {
        if (cidr_contains(&al->items[i], ip))
            return true;
        if (embedded.family && cidr_contains(&al->items[i], &embedded))
            return true;
    }
    return false;
}

lc_ssrf_class_t
lc_ssrf_check(const lc_ssrf_allowlist_t *al, const lc_ssrf_ip_t *ip)
{
    lc_ssrf_class_t c = lc_ssrf_classify(ip);
    if (c == LC_SSRF_PUBLIC)
        return c;
    if (lc_ssrf_allowlist_contains(al, ip))
        return LC_SSRF_PUBLIC;
    return c;
}
