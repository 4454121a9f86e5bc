#include "md_sip_digest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lc_time.h"

void
md_sip_digest_unquote(const char *in, char *out, size_t out_size)
{
    size_t o = 0;
    if (out_size == 0)
        return;
    if (in == NULL) {
        out[0] = '\0';
        return;
    }
    size_t n = strlen(in);
    if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
        in++;
        n -= 2;
    }
    for (size_t i = 0; i < n && o + 1 < out_size; i++) {
        if (in[i] == '\\' && i + 1 < n)
            i++;
        out[o++] = in[i];
    }
    out[o] = '\0';
}

static void
md5_hex(const char *text, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text, strlen(text), md, &len, EVP_md5(), NULL);
    for (unsigned int i = 0; i < 16 && i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[32] = '\0';
}

void
md_sip_digest_response(const char *user, const char *realm, const char *password,
                       const char *method, const char *uri, const char *nonce, const char *qop,
                       const char *nc, const char *cnonce, char out[33])
{
    char buf[1024];
    char ha1[33], ha2[33];
    snprintf(buf, sizeof(buf), "%s:%s:%s", user, realm, password);
    md5_hex(buf, ha1);
    snprintf(buf, sizeof(buf), "%s:%s", method, uri);
    md5_hex(buf, ha2);
    if (qop && qop[0])
        snprintf(buf, sizeof(buf), "%s:%s:%s:%s:%s:%s", ha1, nonce, nc ? nc : "",
                 cnonce ? cnonce : "", qop, ha2);
    else
        snprintf(buf, sizeof(buf), "%s:%s:%s", ha1, nonce, ha2);
    md5_hex(buf, out);
}

bool
md_sip_digest_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char) (la != lb);
    size_t n = la > lb ? la : lb;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < la ? (unsigned char) a[i] : 0;
        unsigned char y = i < lb ? (unsigned char) b[i] : 0;
        diff |= (unsigned char) (x ^ y);
    }
    return diff == 0;
}

/* True when the comma-separated qop options list "auth". */
static bool
offers_auth(const char *options)
{
    const char *p = options;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 4 && strncasecmp(p, "auth", 4) == 0)
            return true;
        p += n;
    }
    return false;
}

lc_status_t
md_sip_digest_answer(const osip_www_authenticate_t *challenge, const char *user,
                     const char *password, const char *method, const char *uri, char *out,
                     size_t out_size)
{
    if (challenge == NULL || challenge->auth_type == NULL ||
        strcasecmp(challenge->auth_type, "Digest") != 0)
        return LC_ERR_INVALID;
    char realm[128], nonce[256], opaque[256], qop[64], algorithm[32];
    md_sip_digest_unquote(challenge->realm, realm, sizeof(realm));
    md_sip_digest_unquote(challenge->nonce, nonce, sizeof(nonce));
    md_sip_digest_unquote(challenge->opaque, opaque, sizeof(opaque));
    md_sip_digest_unquote(challenge->qop_options, qop, sizeof(qop));
    md_sip_digest_unquote(challenge->algorithm, algorithm, sizeof(algorithm));
    if (algorithm[0] && strcasecmp(algorithm, "MD5") != 0)
        return LC_ERR_INVALID;
    bool use_qop = qop[0] && offers_auth(qop);
    char cnonce[24] = "";
    if (use_qop) {
        uint8_t raw[8];
        lc_random_bytes(raw, sizeof(raw));
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(cnonce + 2 * i, 3, "%02x", raw[i]);
    }
    char response[33];
    md_sip_digest_response(user, realm, password, method, uri, nonce, use_qop ? "auth" : NULL,
                           "00000001", cnonce, response);
    int n = snprintf(out, out_size,
                     "Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
                     "response=\"%s\", algorithm=MD5",
                     user, realm, nonce, uri, response);
    if (n > 0 && use_qop)
        n += snprintf(out + n, out_size > (size_t) n ? out_size - (size_t) n : 0,
                      ", qop=auth, nc=00000001, cnonce=\"%s\"", cnonce);
    if (n > 0 && opaque[0])
        n += snprintf(out + n, out_size > (size_t) n ? out_size - (size_t) n : 0, ", opaque=\"%s\"",
                      opaque);
    return n > 0 && (size_t) n < out_size ? LC_OK : LC_ERR_TOO_LARGE;
}
