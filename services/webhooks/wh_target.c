#include "wh_target.h"

#include <curl/curl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "wh_service.h"

static bool
host_name_ok(const char *host)
{
    size_t len = strlen(host);
    if (len == 0 || len > 253 + 1)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = host[i];
        if (c == '.') {
            if (label == 0 && !(i == len - 1 && i > 0))
                return false; /* empty label (a trailing dot is fine) */
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || ++label > 63)
            return false;
    }
    return true;
}

lc_status_t
wh_url_parse(const char *url, bool allow_http, wh_target_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    if (url == NULL || url[0] == '\0') {
        snprintf(err, err_size, "is required");
        return LC_ERR_INVALID;
    }
    if (strlen(url) > WH_URL_MAX) {
        snprintf(err, err_size, "must be at most %d characters", WH_URL_MAX);
        return LC_ERR_INVALID;
    }
    lc_status_t st = LC_ERR_INVALID;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *password = NULL, *zone = NULL;
    if (u == NULL)
        abort(); /* only fails on OOM */
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, err_size, "is not a valid absolute URL");
        goto done;
    }
    if (strcmp(scheme, "https") == 0) {
        out->https = true;
    } else if (strcmp(scheme, "http") != 0) {
        snprintf(err, err_size, "must use https%s", allow_http ? " or http" : "");
        goto done;
    } else if (!allow_http) {
        snprintf(err, err_size, "must use https");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        snprintf(err, err_size, "must not contain credentials");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
        snprintf(err, err_size, "must not contain an IPv6 zone id");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, err_size, "has no port");
        goto done;
    }
    out->port = atoi(port);
    if (out->port <= 0 || out->port > 65535) {
        snprintf(err, err_size, "has an invalid port");
        goto done;
    }
    for (char *p = host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char) (*p - 'A' + 'a');
    if (strlen(host) >= sizeof(out->host)) {
        snprintf(err, err_size, "has a host name that is too long");
        goto done;
    }
    snprintf(out->host, sizeof(out->host), "%s", host);
    if (lc_ssrf_ip_parse_literal(host, &out->addrs[0])) {
        out->literal = true;
        out->naddrs = 1;
    } else if (!host_name_ok(host)) {
        snprintf(err, err_size, "has an invalid host name");
        goto done;
    }
    st = LC_OK;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(password);
    curl_free(zone);
    curl_url_cleanup(u);
    return st;
}

lc_ssrf_class_t
wh_target_check(const wh_target_t *t, const lc_ssrf_allowlist_t *al, char *bad_text)
{
    if (t->naddrs == 0)
        return LC_SSRF_UNSPECIFIED;
    for (size_t i = 0; i < t->naddrs; i++) {
        lc_ssrf_class_t c = lc_ssrf_check(al, &t->addrs[i]);
        if (c != LC_SSRF_PUBLIC) {
            if (bad_text)
                lc_ssrf_ip_format(&t->addrs[i], bad_text, LC_SSRF_IP_TEXT_MAX);
            return c;
        }
    }
    return LC_SSRF_PUBLIC;
}

struct wh_resolve {
    uv_getaddrinfo_t req;
    wh_target_t target;
    wh_resolve_cb cb;
    void *arg;
};

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    wh_resolve_t *r = req->data;
    lc_status_t st = LC_OK;
    if (status == UV_ECANCELED) {
        st = LC_ERR_CANCELLED;
    } else if (status != 0) {
        st = LC_ERR_NOT_FOUND;
    } else {
        for (struct addrinfo *ai = res; ai && r->target.naddrs < WH_TARGET_MAX_ADDRS;
             ai = ai->ai_next) {
            lc_ssrf_ip_t ip;
            if (!lc_ssrf_ip_from_sockaddr(ai->ai_addr, &ip))
                continue;
            bool seen = false;
            for (size_t i = 0; i < r->target.naddrs; i++)
                if (memcmp(&r->target.addrs[i], &ip, sizeof(ip)) == 0)
                    seen = true;
            if (!seen)
                r->target.addrs[r->target.naddrs++] = ip;
        }
        if (r->target.naddrs == 0)
            st = LC_ERR_NOT_FOUND;
    }
    uv_freeaddrinfo(res);
    r->cb(st, &r->target, r->arg);
    free(r);
}

lc_status_t
wh_target_resolve(uv_loop_t *loop, const wh_target_t *t, wh_resolve_cb cb, void *arg,
                  wh_resolve_t **out)
{
    wh_resolve_t *r = LC_NEW(wh_resolve_t);
    r->target = *t;
    r->target.naddrs = 0;
    r->cb = cb;
    r->arg = arg;
    r->req.data = r;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(loop, &r->req, on_resolved, r->target.host, NULL, &hints);
    if (rc != 0) {
        free(r);
        return LC_ERR_INTERNAL;
    }
    if (out)
        *out = r;
    return LC_OK;
}

void
wh_resolve_cancel(wh_resolve_t *r)
{
    if (r)
        uv_cancel((uv_req_t *) &r->req);
}
