/*
 * lc_status: the one status type every libcommon and service function returns.
 *
 * Functions that can fail return lc_status_t (LC_OK == 0). Library return codes (libuv,
 * libpq, nats.c, curl, ...) are converted where they are called, and the library's own
 * message goes to the log at that point. Out of memory is not a status: it aborts (see
 * lc_alloc.h).
 *
 * The happy path reads straight with LC_TRY; functions that own resources use a single
 * `goto done` exit with LC_CHECK:
 *
 *     lc_status_t s = LC_OK;
 *     LC_CHECK(s, open_thing(&a));
 *     LC_CHECK(s, use_thing(a));
 *   done:
 *     close_thing(a);
 *     return s;
 */
#ifndef LC_STATUS_H
#define LC_STATUS_H

typedef enum {
    LC_OK = 0,
    LC_ERR_INVALID,       /* bad argument or malformed input */
    LC_ERR_NOT_FOUND,     /* no such thing */
    LC_ERR_CONFLICT,      /* already exists / state does not allow it */
    LC_ERR_UNAUTHORIZED,  /* no or bad credentials */
    LC_ERR_FORBIDDEN,     /* credentials fine, permission missing */
    LC_ERR_RATE_LIMITED,  /* too many requests */
    LC_ERR_TOO_LARGE,     /* input over a configured bound */
    LC_ERR_TIMEOUT,       /* deadline passed */
    LC_ERR_NO_RESPONDERS, /* nobody serves that subject */
    LC_ERR_UNAVAILABLE,   /* dependency down, not connected, draining */
    LC_ERR_FULL,          /* capacity exhausted */
    LC_ERR_CANCELLED,     /* the caller gave up */
    LC_ERR_IO,            /* socket / file error */
    LC_ERR_PROTOCOL,      /* peer broke a protocol (bad protobuf, bad reply) */
    LC_ERR_CONFIG,        /* configuration invalid */
    LC_ERR_DB,            /* database error */
    LC_ERR_INTERNAL,      /* a bug or an unexpected library failure */
    LC_STATUS_COUNT_
} lc_status_t;

/* Short stable name, e.g. "timeout"; used in logs, metrics labels and on the bus. */
const char *lc_status_name(lc_status_t s);

/* The HTTP status the gateway maps a status to (LC_OK -> 200). */
int lc_status_http(lc_status_t s);

/* Inverse of lc_status_name; unknown names map to LC_ERR_INTERNAL. */
lc_status_t lc_status_from_name(const char *name);

#define LC_TRY(expr)                                                                               \
    do {                                                                                           \
        lc_status_t lc_try_s_ = (expr);                                                            \
        if (lc_try_s_ != LC_OK)                                                                    \
            return lc_try_s_;                                                                      \
    } while (0)

#define LC_CHECK(var, expr)                                                                        \
    do {                                                                                           \
        if (((var) = (expr)) != LC_OK)                                                             \
            goto done;                                                                             \
    } while (0)

#endif
