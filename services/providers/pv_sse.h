/*
 * pv_sse: an incremental parser of server-sent events (WHATWG HTML, "Server-sent events",
 * section 9.2.6 "Interpreting an event stream").
 *
 * Bytes are fed as they arrive, cut anywhere. Lines end with CRLF, LF or CR. `data:` lines
 * (one optional space after the colon is dropped) are joined with "\n"; a blank line
 * dispatches the event when it has data. Comment lines (":...") and other fields (event,
 * id, retry) are ignored: chat completion streams only use data. A line longer than
 * max_line bytes is an error (untrusted input is bounded).
 *
 * Threads: one parser per stream, used by one thread at a time.
 */
#ifndef PV_SSE_H
#define PV_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "lc_status.h"

/* data: NUL-terminated, borrowed during the call. Return false to stop parsing. */
typedef bool (*pv_sse_event_cb)(void *arg, const char *data, size_t len);

typedef struct {
    char *line; /* the partial line */
    size_t line_len, line_cap;
    char *data; /* the event's data so far */
    size_t data_len, data_cap;
    bool has_data;
    bool last_cr; /* the previous chunk ended with CR: skip a leading LF */
    size_t max_line;
    pv_sse_event_cb cb;
    void *arg;
} pv_sse_t;

void pv_sse_init(pv_sse_t *p, size_t max_line, pv_sse_event_cb cb, void *arg);
void pv_sse_free(pv_sse_t *p);

/* LC_OK; LC_ERR_TOO_LARGE when a line or an event passes max_line; LC_ERR_CANCELLED when
 * the callback asked to stop. */
lc_status_t pv_sse_feed(pv_sse_t *p, const char *buf, size_t len);

#endif
