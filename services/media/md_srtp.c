/*
 * md_srtp: SDES crypto attributes (RFC 4568) and libsrtp2 sessions. See md_srtp.h.
 */
#include "md_srtp.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <srtp2/srtp.h>

#include "lc_alloc.h"
#include "lc_log.h"
#include "lc_time.h"

_Static_assert(MD_SRTP_TRAILER_ROOM >= SRTP_MAX_TRAILER_LEN + 4,
               "MD_SRTP_TRAILER_ROOM must cover libsrtp2's trailer and the SRTCP index");
_Static_assert(MD_SRTP_KEY_SALT_BYTES == SRTP_MASTER_KEY_LEN, "AES-128 key + 112-bit salt");

/* base64 of 30 bytes: 40 characters, no padding. */
#define KEY_SALT_B64_CHARS 40

static const char *const suite_names[MD_SRTP_SUITE_COUNT_] = {
    [MD_SRTP_AES_CM_128_HMAC_SHA1_80] = "AES_CM_128_HMAC_SHA1_80",
    [MD_SRTP_AES_CM_128_HMAC_SHA1_32] = "AES_CM_128_HMAC_SHA1_32",
};

struct md_srtp {
    srtp_t session;
    md_srtp_direction_t dir;
    md_srtp_stats_t stats;
};

const char *
md_srtp_suite_name(md_srtp_suite_t suite)
{
    if ((int) suite < 0 || suite >= MD_SRTP_SUITE_COUNT_)
        return NULL;
    return suite_names[suite];
}

/* ---- a=crypto (RFC 4568 section 9.1) ---- */

typedef struct {
    const char *p, *end;
} cursor_t;

static bool
is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static size_t
skip_wsp(cursor_t *c)
{
    size_t n = 0;
    while (c->p < c->end && is_wsp(*c->p)) {
        c->p++;
        n++;
    }
    return n;
}

/* The next run of non-white-space characters. */
static size_t
token(cursor_t *c, const char **tok)
{
    *tok = c->p;
    while (c->p < c->end && !is_wsp(*c->p))
        c->p++;
    return (size_t) (c->p - *tok);
}

static bool
all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char) s[i]))
            return false;
    return true;
}

static bool
is_base64(char c)
{
    return isalnum((unsigned char) c) || c == '+' || c == '/';
}

/* lifetime = ["2^"] 1*DIGIT (section 9.1). Its value does not matter: a call never comes
 * near 2^31 packets, and libsrtp2 enforces the 2^48 limit itself. */
static bool
lifetime_ok(const char *s, size_t n)
{
    if (n > 2 && s[0] == '2' && s[1] == '^')
        return all_digits(s + 2, n - 2) && n - 2 <= 2;
    return all_digits(s, n) && n <= 15;
}

/* key-param = "inline:" key-salt ["|" lifetime] ["|" mki-value ":" mki-length] */
static lc_status_t
parse_key_param(const char *s, size_t n, uint8_t key_salt[MD_SRTP_KEY_SALT_BYTES])
{
    static const char method[] = "inline:";
    size_t mlen = sizeof(method) - 1;
    if (n < mlen || strncasecmp(s, method, mlen) != 0)
        return LC_ERR_INVALID;
    s += mlen;
    n -= mlen;
    const char *bar = memchr(s, '|', n);
    size_t key_chars = bar != NULL ? (size_t) (bar - s) : n;
    for (size_t i = 0; i < key_chars; i++)
        if (!is_base64(s[i]) && s[i] != '=')
            return LC_ERR_INVALID;
    if (key_chars != KEY_SALT_B64_CHARS)
        return LC_ERR_INVALID; /* both suites carry exactly 30 bytes */
    for (size_t i = 0; i < key_chars; i++)
        if (s[i] == '=')
            return LC_ERR_INVALID; /* 30 bytes need no padding */

    /* Optional lifetime, then optional MKI (an MKI is recognised by its colon). */
    const char *rest = bar != NULL ? bar + 1 : NULL;
    size_t rest_len = bar != NULL ? n - key_chars - 1 : 0;
    while (rest != NULL) {
        const char *next = memchr(rest, '|', rest_len);
        size_t part = next != NULL ? (size_t) (next - rest) : rest_len;
        const char *colon = memchr(rest, ':', part);
        if (colon != NULL) {
            /* MKI: well formed or not, we do not do MKIs. */
            if (!all_digits(rest, (size_t) (colon - rest)) ||
                !all_digits(colon + 1, part - (size_t) (colon - rest) - 1))
                return LC_ERR_INVALID;
            if (next != NULL)
                return LC_ERR_INVALID; /* nothing may follow the MKI */
            return LC_ERR_NOT_FOUND;
        }
        if (!lifetime_ok(rest, part))
            return LC_ERR_INVALID;
        if (next == NULL)
            break;
        rest_len -= part + 1;
        rest = next + 1;
    }

    uint8_t decoded[KEY_SALT_B64_CHARS]; /* EVP_DecodeBlock writes 3 bytes per 4 chars */
    int got = EVP_DecodeBlock(decoded, (const unsigned char *) s, KEY_SALT_B64_CHARS);
    if (got != MD_SRTP_KEY_SALT_BYTES) {
        OPENSSL_cleanse(decoded, sizeof(decoded));
        return LC_ERR_INVALID;
    }
    memcpy(key_salt, decoded, MD_SRTP_KEY_SALT_BYTES);
    OPENSSL_cleanse(decoded, sizeof(decoded));
    return LC_OK;
}

/* Session parameters that leave the protection as we do it (section 6.3): a window size
 * hint and a key derivation rate of 0 (no re-keying, libsrtp2's behaviour). Anything else
 * (UNENCRYPTED_SRTP, UNAUTHENTICATED_SRTP, FEC_ORDER, KDR != 0, ...) we cannot honour. */
static bool
session_param_ok(const char *s, size_t n)
{
    if (n > 4 && strncasecmp(s, "WSH=", 4) == 0)
        return all_digits(s + 4, n - 4);
    if (n == 5 && strncasecmp(s, "KDR=0", 5) == 0)
        return true;
    return false;
}

lc_status_t
md_srtp_crypto_parse(const char *value, size_t len, md_srtp_crypto_t *out)
{
    if (value == NULL || out == NULL)
        return LC_ERR_INVALID;
    cursor_t c = {value, value + len};
    /* Trailing CR/LF/space from a line the caller did not trim. */
    while (c.end > c.p && (c.end[-1] == '\r' || c.end[-1] == '\n' || is_wsp(c.end[-1])))
        c.end--;
    md_srtp_crypto_t r;
    memset(&r, 0, sizeof(r));
    lc_status_t s = LC_OK;

    const char *tok;
    size_t n = token(&c, &tok);
    if (!all_digits(tok, n) || n > 9) {
        s = LC_ERR_INVALID;
        goto done;
    }
    r.tag = (uint32_t) strtoul(tok, NULL, 10); /* at most 9 digits: no overflow */
    if (skip_wsp(&c) == 0) {
        s = LC_ERR_INVALID;
        goto done;
    }
    n = token(&c, &tok);
    bool known = false;
    for (int i = 0; i < MD_SRTP_SUITE_COUNT_; i++) {
        if (n == strlen(suite_names[i]) && strncmp(tok, suite_names[i], n) == 0) {
            r.suite = (md_srtp_suite_t) i;
            known = true;
        }
    }
    if (n == 0 || skip_wsp(&c) == 0) {
        s = LC_ERR_INVALID;
        goto done;
    }
    n = token(&c, &tok);
    if (n == 0) {
        s = LC_ERR_INVALID;
        goto done;
    }
    if (!known) {
        s = LC_ERR_NOT_FOUND; /* e.g. AEAD_AES_256_GCM, F8_128_HMAC_SHA1_80 */
        goto done;
    }
    /* Several key-params (";"-separated, section 9.1) would mean several master keys,
     * which only works with MKIs. */
    if (memchr(tok, ';', n) != NULL) {
        s = LC_ERR_NOT_FOUND;
        goto done;
    }
    LC_CHECK(s, parse_key_param(tok, n, r.key_salt));
    while (skip_wsp(&c) > 0 && c.p < c.end) {
        n = token(&c, &tok);
        if (!session_param_ok(tok, n)) {
            s = LC_ERR_NOT_FOUND;
            goto done;
        }
    }
    if (c.p != c.end) {
        s = LC_ERR_INVALID;
        goto done;
    }
    *out = r;
done:
    OPENSSL_cleanse(&r, sizeof(r));
    return s;
}

void
md_srtp_crypto_generate(md_srtp_crypto_t *out, uint32_t tag, md_srtp_suite_t suite)
{
    if (out == NULL)
        return;
    out->tag = tag;
    out->suite = suite;
    lc_random_bytes(out->key_salt, sizeof(out->key_salt));
}

size_t
md_srtp_crypto_format(const md_srtp_crypto_t *c, char *out, size_t out_size)
{
    if (c == NULL || out == NULL)
        return 0;
    const char *suite = md_srtp_suite_name(c->suite);
    if (suite == NULL || c->tag > 999999999) /* tag = 1*9DIGIT (RFC 4568 section 9.1) */
        return 0;
    unsigned char b64[KEY_SALT_B64_CHARS + 1];
    EVP_EncodeBlock(b64, c->key_salt, MD_SRTP_KEY_SALT_BYTES);
    int n = snprintf(out, out_size, "%u %s inline:%s", (unsigned) c->tag, suite, (char *) b64);
    OPENSSL_cleanse(b64, sizeof(b64));
    if (n < 0 || (size_t) n >= out_size) {
        if (out_size > 0)
            OPENSSL_cleanse(out, out_size);
        return 0;
    }
    return (size_t) n;
}

/* ---- sessions ---- */

static pthread_once_t srtp_once = PTHREAD_ONCE_INIT;
static srtp_err_status_t srtp_init_status = srtp_err_status_ok;

static void
srtp_init_once(void)
{
    srtp_init_status = srtp_init();
}

lc_status_t
md_srtp_create(const md_srtp_crypto_t *crypto, md_srtp_direction_t dir, md_srtp_t **out)
{
    if (out == NULL)
        return LC_ERR_INVALID;
    *out = NULL;
    if (crypto == NULL || md_srtp_suite_name(crypto->suite) == NULL ||
        (dir != MD_SRTP_OUTBOUND && dir != MD_SRTP_INBOUND))
        return LC_ERR_INVALID;
    pthread_once(&srtp_once, srtp_init_once);
    if (srtp_init_status != srtp_err_status_ok) {
        LC_ERROR("srtp", "srtp_init failed: error %d", (int) srtp_init_status);
        return LC_ERR_INTERNAL;
    }

    srtp_policy_t policy;
    memset(&policy, 0, sizeof(policy));
    if (crypto->suite == MD_SRTP_AES_CM_128_HMAC_SHA1_32)
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
    else
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    /* SRTCP keeps RFC 3711's default 80-bit tag with the _32 suite too (section 5.2; the
     * short tag is an SRTP saving), as libsrtp2's own profile mapping and peers do. */
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    policy.ssrc.type = dir == MD_SRTP_OUTBOUND ? ssrc_any_outbound : ssrc_any_inbound;
    unsigned char key[MD_SRTP_KEY_SALT_BYTES];
    memcpy(key, crypto->key_salt, sizeof(key));
    policy.key = key;
    policy.window_size = 128; /* RFC 3711 section 3.3.2: at least 64 */
    policy.allow_repeat_tx = 0;
    policy.next = NULL;

    srtp_t session = NULL;
    srtp_err_status_t err = srtp_create(&session, &policy);
    OPENSSL_cleanse(key, sizeof(key));
    if (err != srtp_err_status_ok) {
        LC_WARN("srtp", "srtp_create failed: error %d", (int) err);
        return LC_ERR_INTERNAL;
    }
    md_srtp_t *s = LC_NEW(md_srtp_t);
    s->session = session;
    s->dir = dir;
    *out = s;
    return LC_OK;
}

void
md_srtp_destroy(md_srtp_t *s)
{
    if (s == NULL)
        return;
    srtp_dealloc(s->session);
    free(s);
}

void
md_srtp_get_stats(const md_srtp_t *s, md_srtp_stats_t *out)
{
    if (out == NULL)
        return;
    if (s == NULL)
        memset(out, 0, sizeof(*out));
    else
        *out = s->stats;
}

/* Converts a libsrtp2 result (PITFALLS: replay_old / replay_fail, auth_fail) and counts it. */
static lc_status_t
account(md_srtp_t *s, srtp_err_status_t err, bool rtcp)
{
    switch (err) {
    case srtp_err_status_ok:
        if (rtcp)
            s->stats.rtcp_ok++;
        else
            s->stats.rtp_ok++;
        return LC_OK;
    case srtp_err_status_replay_old:
    case srtp_err_status_replay_fail:
        s->stats.replayed++;
        return LC_ERR_CONFLICT;
    case srtp_err_status_auth_fail:
        s->stats.auth_failed++;
        return LC_ERR_UNAUTHORIZED;
    default:
        s->stats.failed++;
        LC_LOG_RL(LC_LOG_WARN, "srtp", 1, "%s %s: libsrtp2 error %d",
                  s->dir == MD_SRTP_OUTBOUND ? "protect" : "unprotect", rtcp ? "RTCP" : "RTP",
                  (int) err);
        return LC_ERR_INVALID;
    }
}

/* Common checks: the direction, 32-bit alignment (libsrtp2 reads the header as words), a
 * length libsrtp2's int can hold, and for protect the room for the trailer. */
static lc_status_t
check(md_srtp_t *s, const uint8_t *buf, const size_t *len, size_t buf_size, bool protect,
      size_t min_len)
{
    if (s == NULL || buf == NULL || len == NULL)
        return LC_ERR_INVALID;
    if ((protect && s->dir != MD_SRTP_OUTBOUND) || (!protect && s->dir != MD_SRTP_INBOUND) ||
        ((uintptr_t) buf & 3) != 0 || *len < min_len || *len > INT_MAX - MD_SRTP_TRAILER_ROOM) {
        s->stats.failed++;
        return LC_ERR_INVALID;
    }
    if (protect && (buf_size < MD_SRTP_TRAILER_ROOM || *len > buf_size - MD_SRTP_TRAILER_ROOM)) {
        s->stats.failed++;
        return LC_ERR_TOO_LARGE;
    }
    return LC_OK;
}

lc_status_t
md_srtp_protect_rtp(md_srtp_t *s, uint8_t *buf, size_t *len, size_t buf_size)
{
    LC_TRY(check(s, buf, len, buf_size, true, 12));
    int n = (int) *len;
    lc_status_t st = account(s, srtp_protect(s->session, buf, &n), false);
    if (st == LC_OK)
        *len = (size_t) n;
    return st;
}

lc_status_t
md_srtp_unprotect_rtp(md_srtp_t *s, uint8_t *buf, size_t *len)
{
    LC_TRY(check(s, buf, len, 0, false, 12));
    int n = (int) *len;
    lc_status_t st = account(s, srtp_unprotect(s->session, buf, &n), false);
    if (st == LC_OK)
        *len = (size_t) n;
    return st;
}

lc_status_t
md_srtp_protect_rtcp(md_srtp_t *s, uint8_t *buf, size_t *len, size_t buf_size)
{
    LC_TRY(check(s, buf, len, buf_size, true, 8));
    int n = (int) *len;
    lc_status_t st = account(s, srtp_protect_rtcp(s->session, buf, &n), true);
    if (st == LC_OK)
        *len = (size_t) n;
    return st;
}

lc_status_t
md_srtp_unprotect_rtcp(md_srtp_t *s, uint8_t *buf, size_t *len)
{
    LC_TRY(check(s, buf, len, 0, false, 8));
    int n = (int) *len;
    lc_status_t st = account(s, srtp_unprotect_rtcp(s->session, buf, &n), true);
    if (st == LC_OK)
        *len = (size_t) n;
    return st;
}
