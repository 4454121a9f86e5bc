/*
 * lc_log: leveled, per-subsystem logging with the request or call id on every line.
 *
 * Output is one line per record on stderr (or a stream set with lc_log_set_output), as
 * logfmt (default) or JSON lines. The level is checked before any formatting happens.
 *
 * Context: lc_log_context_set() stores the current request id and call id in thread-local
 * storage; every record written by that thread carries them until lc_log_context_clear().
 * Event-loop code sets the context when it starts handling a request or a call's event
 * and clears it when done.
 *
 * Hot paths (the packet path above all) use LC_LOG_RL, which lets through at most
 * `per_sec` records per second from one call site and reports how many it suppressed.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef LC_LOG_H
#define LC_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lc_status.h"

typedef enum {
    LC_LOG_DEBUG = 0,
    LC_LOG_INFO,
    LC_LOG_WARN,
    LC_LOG_ERROR,
    LC_LOG_OFF,
} lc_log_level_t;

typedef enum {
    LC_LOG_FMT_LOGFMT = 0,
    LC_LOG_FMT_JSON,
} lc_log_format_t;

/* Per-call-site state of LC_LOG_RL. Zero-initialised static storage is valid. */
typedef struct {
    _Atomic int64_t window_start_ms;
    _Atomic uint32_t in_window;
    _Atomic uint32_t suppressed;
} lc_log_ratelimit_t;

extern lc_log_level_t lc_log_min_level;

/* service: borrowed, must outlive logging (a string literal). */
void lc_log_init(const char *service, lc_log_level_t level, lc_log_format_t format);
/* Borrows `out`; NULL restores stderr. For tests. */
void lc_log_set_output(FILE *out);

lc_status_t lc_log_level_parse(const char *text, lc_log_level_t *out);
lc_status_t lc_log_format_parse(const char *text, lc_log_format_t *out);
const char *lc_log_level_name(lc_log_level_t level);

/* Copies up to 64 bytes of each id; NULL leaves that id unchanged, "" clears it. */
void lc_log_context_set(const char *request_id, const char *call_id);
void lc_log_context_clear(void);
const char *lc_log_context_request_id(void);

void lc_log_write(lc_log_level_t level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Returns true when the call site may log now; *suppressed_out gets the count dropped since
 * the last record that was let through. */
bool lc_log_ratelimit_allow(lc_log_ratelimit_t *rl, uint32_t per_sec, uint32_t *suppressed_out);

#define LC_LOG(level, subsys, ...)                                                                 \
    do {                                                                                           \
        if ((level) >= lc_log_min_level)                                                           \
            lc_log_write((level), (subsys), __VA_ARGS__);                                          \
    } while (0)

#define LC_DEBUG(subsys, ...) LC_LOG(LC_LOG_DEBUG, subsys, __VA_ARGS__)
#define LC_INFO(subsys, ...) LC_LOG(LC_LOG_INFO, subsys, __VA_ARGS__)
#define LC_WARN(subsys, ...) LC_LOG(LC_LOG_WARN, subsys, __VA_ARGS__)
#define LC_ERROR(subsys, ...) LC_LOG(LC_LOG_ERROR, subsys, __VA_ARGS__)

/* At most per_sec records per second from this call site; the first one let through after
 * a suppressed stretch says how many were dropped. */
#define LC_LOG_RL(level, subsys, per_sec, fmt, ...)                                                \
    do {                                                                                           \
        static lc_log_ratelimit_t lc_rl_;                                                          \
        uint32_t lc_rl_dropped_;                                                                   \
        if ((level) >= lc_log_min_level &&                                                         \
            lc_log_ratelimit_allow(&lc_rl_, (per_sec), &lc_rl_dropped_)) {                         \
            if (lc_rl_dropped_ > 0)                                                                \
                lc_log_write((level), (subsys), fmt " (suppressed %u similar)", ##__VA_ARGS__,     \
                             lc_rl_dropped_);                                                      \
            else                                                                                   \
                lc_log_write((level), (subsys), fmt, ##__VA_ARGS__);                               \
        }                                                                                          \
    } while (0)

#endif
