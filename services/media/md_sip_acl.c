#include "md_sip_acl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"
#include "md_map.h"
#include "md_sip_digest.h"
#include "md_sip_transport.h"

#define NONCE_LIFETIME_MS (5 * 60 * 1000)
#define MAX_SOURCES 4096
#define SOURCE_IDLE_MS 10000

typedef struct {
    int family;
    uint8_t addr[16];
    int prefix_bits;
} cidr_t;

typedef struct {
    char *user;
    char *password;
} user_t;

typedef struct {
    double tokens;
    int64_t last_ms;
} bucket_t;

struct md_sip_acl {
    cidr_t *cidrs;
    size_t ncidrs;
    user_t *users;
    size_t nusers;
    char realm[64];
    int flood_rate;
    uint8_t secret[32];
    md_map_t *sources;
};

/* ---- CIDR ---- */

static bool
parse_cidr(const char *text, cidr_t *out)
{
    char buf[80];
    if (strlen(text) >= sizeof(buf))
        return false;
    snprintf(buf, sizeof(buf), "%s", text);
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (*end != '\0' || end == slash + 1)
            return false;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        if (bits < 0)
            bits = 32;
        if (bits > 32)
            return false;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        if (bits < 0)
            bits = 128;
        if (bits > 128)
            return false;
    } else {
        return false;
    }
    out->prefix_bits = (int) bits;
    return true;
}

static bool
prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t) full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t) (0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool
md_sip_acl_allowed(const md_sip_acl_t *acl, const struct sockaddr_storage *addr)
{
    uint8_t ip[16];
    int family = addr->ss_family;
    if (family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *) addr)->sin_addr, 4);
    } else if (family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *) addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            memcpy(ip, a6->s6_addr + 12, 4);
        } else {
            memcpy(ip, a6->s6_addr, 16);
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < acl->ncidrs; i++)
        if (acl->cidrs[i].family == family &&
            prefix_match(acl->cidrs[i].addr, ip, acl->cidrs[i].prefix_bits))
            return true;
    return false;
}

/* ---- life cycle ---- */

lc_status_t
md_sip_acl_create(const md_sip_acl_opts_t *opts, md_sip_acl_t **out, char *err, size_t err_size)
{
    *out = NULL;
    md_sip_acl_t *acl = LC_NEW(md_sip_acl_t);
    acl->flood_rate = opts->flood_rate;
    snprintf(acl->realm, sizeof(acl->realm), "%s", opts->realm ? opts->realm : "voxi");
    lc_random_bytes(acl->secret, sizeof(acl->secret));
    acl->sources = md_map_create();
    char *list = lc_strdup(opts->allow_cidrs ? opts->allow_cidrs : "");
    char *save = NULL;
    for (char *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        cidr_t c;
        if (!parse_cidr(tok, &c)) {
            snprintf(err, err_size, "not a CIDR: \"%s\"", tok);
            free(list);
            md_sip_acl_destroy(acl);
            return LC_ERR_CONFIG;
        }
        acl->cidrs = lc_realloc(acl->cidrs, (acl->ncidrs + 1) * sizeof(cidr_t));
        acl->cidrs[acl->ncidrs++] = c;
    }
    free(list);
    list = lc_strdup(opts->users ? opts->users : "");
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (colon == NULL || colon == tok || colon[1] == '\0') {
            snprintf(err, err_size, "a user entry is not user:password");
            free(list);
            md_sip_acl_destroy(acl);
            return LC_ERR_CONFIG;
        }
        *colon = '\0';
        acl->users = lc_realloc(acl->users, (acl->nusers + 1) * sizeof(user_t));
        acl->users[acl->nusers].user = lc_strdup(tok);
        acl->users[acl->nusers].password = lc_strdup(colon + 1);
        acl->nusers++;
    }
    free(list);
    *out = acl;
    return LC_OK;
}

static void
free_bucket(const char *key, void *value, void *arg)
{
    (void) key;
    (void) arg;
    free(value);
}

void
md_sip_acl_destroy(md_sip_acl_t *acl)
{
    if (acl == NULL)
        return;
    for (size_t i = 0; i < acl->nusers; i++) {
        free(acl->users[i].user);
        free(acl->users[i].password);
    }
    free(acl->users);
    free(acl->cidrs);
    md_map_foreach(acl->sources, free_bucket, NULL);
    md_map_destroy(acl->sources);
    free(acl);
}

/* ---- digest ---- */

static void
nonce_mac(const md_sip_acl_t *acl, const char *ts_hex, char out[33])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), acl->secret, sizeof(acl->secret), (const unsigned char *) ts_hex,
         strlen(ts_hex), mac, &len);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    out[32] = '\0';
}

static void
make_challenge(const md_sip_acl_t *acl, int64_t now_ms, bool stale, char *out, size_t size)
{
    char ts[24], mac[33];
    snprintf(ts, sizeof(ts), "%llx", (unsigned long long) now_ms);
    nonce_mac(acl, ts, mac);
    snprintf(out, size, "Digest realm=\"%s\", nonce=\"%s.%s\", algorithm=MD5, qop=\"auth\"%s",
             acl->realm, ts, mac, stale ? ", stale=true" : "");
}

/* 1 valid, 0 invalid, -1 valid but expired */
static int
check_nonce(const md_sip_acl_t *acl, const char *nonce, int64_t now_ms)
{
    const char *dot = strchr(nonce, '.');
    if (dot == NULL || dot == nonce || dot - nonce > 16)
        return 0;
    char ts[24], mac[33];
    memcpy(ts, nonce, (size_t) (dot - nonce));
    ts[dot - nonce] = '\0';
    nonce_mac(acl, ts, mac);
    if (!md_sip_digest_equal(mac, dot + 1))
        return 0;
    char *end;
    long long issued = strtoll(ts, &end, 16);
    if (*end != '\0' || issued > now_ms || now_ms - issued > NONCE_LIFETIME_MS)
        return -1;
    return 1;
}

md_sip_auth_t
md_sip_acl_check(md_sip_acl_t *acl, const md_sip_msg_t *req, int64_t now_ms, char *challenge,
                 size_t challenge_size, char *user_out, size_t user_size)
{
    if (user_out && user_size)
        user_out[0] = '\0';
    if (acl->nusers == 0)
        return MD_SIP_AUTH_FORBIDDEN;
    osip_authorization_t *a = NULL;
    if (osip_message_get_authorization(req->osip, 0, &a) < 0 || a == NULL || a->auth_type == NULL ||
        strcasecmp(a->auth_type, "Digest") != 0) {
        make_challenge(acl, now_ms, false, challenge, challenge_size);
        return MD_SIP_AUTH_CHALLENGE;
    }
    char user[128], realm[128], nonce[128], uri[512], response[64], qop[16], nc[16], cnonce[128],
        algorithm[32];
    md_sip_digest_unquote(a->username, user, sizeof(user));
    md_sip_digest_unquote(a->realm, realm, sizeof(realm));
    md_sip_digest_unquote(a->nonce, nonce, sizeof(nonce));
    md_sip_digest_unquote(a->uri, uri, sizeof(uri));
    md_sip_digest_unquote(a->response, response, sizeof(response));
    md_sip_digest_unquote(a->message_qop, qop, sizeof(qop));
    md_sip_digest_unquote(a->nonce_count, nc, sizeof(nc));
    md_sip_digest_unquote(a->cnonce, cnonce, sizeof(cnonce));
    md_sip_digest_unquote(a->algorithm, algorithm, sizeof(algorithm));
    if (strcmp(realm, acl->realm) != 0 || (algorithm[0] && strcasecmp(algorithm, "MD5") != 0) ||
        (qop[0] && strcasecmp(qop, "auth") != 0)) {
        make_challenge(acl, now_ms, false, challenge, challenge_size);
        return MD_SIP_AUTH_CHALLENGE;
    }
    int nonce_ok = check_nonce(acl, nonce, now_ms);
    if (nonce_ok <= 0) {
        make_challenge(acl, now_ms, nonce_ok < 0, challenge, challenge_size);
        return MD_SIP_AUTH_CHALLENGE;
    }
    /* the same work for a user that does not exist: no timing difference to probe */
    const char *password = "\x01no-such-user\x01";
    bool known = false;
    for (size_t i = 0; i < acl->nusers; i++)
        if (strcmp(acl->users[i].user, user) == 0) {
            password = acl->users[i].password;
            known = true;
        }
    char expect[33];
    md_sip_digest_response(user, realm, password, req->method, uri, nonce, qop[0] ? qop : NULL, nc,
                           cnonce, expect);
    bool match = md_sip_digest_equal(expect, response);
    if (!(match && known))
        return MD_SIP_AUTH_FORBIDDEN;
    if (user_out)
        snprintf(user_out, user_size, "%s", user);
    return MD_SIP_AUTH_OK;
}

/* ---- flood throttling ---- */

typedef struct {
    char **keys;
    size_t n;
    int64_t now_ms;
} sweep_t;

static void
collect_idle(const char *key, void *value, void *arg)
{
    sweep_t *s = arg;
    bucket_t *b = value;
    if (s->now_ms - b->last_ms > SOURCE_IDLE_MS)
        s->keys[s->n++] = lc_strdup(key);
}

bool
md_sip_acl_flooding(md_sip_acl_t *acl, const struct sockaddr_storage *addr, int64_t now_ms)
{
    if (acl->flood_rate <= 0)
        return false;
    md_sip_peer_t p = {.addr = *addr};
    char ip[INET6_ADDRSTRLEN];
    md_sip_peer_ip(&p, ip, sizeof(ip), NULL);
    bucket_t *b = md_map_get(acl->sources, ip);
    double burst = 2.0 * acl->flood_rate;
    if (b == NULL) {
        if (md_map_size(acl->sources) >= MAX_SOURCES) {
            sweep_t s = {lc_calloc(md_map_size(acl->sources), sizeof(char *)), 0, now_ms};
            md_map_foreach(acl->sources, collect_idle, &s);
            for (size_t i = 0; i < s.n; i++) {
                free(md_map_remove(acl->sources, s.keys[i]));
                free(s.keys[i]);
            }
            free(s.keys);
            if (md_map_size(acl->sources) >= MAX_SOURCES)
                return true; /* too many sources at once: that is a flood too */
        }
        b = LC_NEW(bucket_t);
        b->tokens = burst;
        b->last_ms = now_ms;
        md_map_put(acl->sources, ip, b);
    }
    double elapsed_s = (double) (now_ms - b->last_ms) / 1000.0;
    b->last_ms = now_ms;
    b->tokens += elapsed_s * acl->flood_rate;
    if (b->tokens > burst)
        b->tokens = burst;
    if (b->tokens < 1.0)
        return true;
    b->tokens -= 1.0;
    return false;
}
