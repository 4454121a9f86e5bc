/*
 * The server-sent events parser: framing cut at every byte, CRLF/CR/LF line ends, comments
 * and other fields ignored, multi-line data joined, bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../services/providers/pv_sse.h"

typedef struct {
    char events[16][256];
    size_t n;
    size_t stop_after;
} sink_t;

static bool
on_event(void *arg, const char *data, size_t len)
{
    sink_t *s = arg;
    assert_int_equal(strlen(data), len);
    if (s->n < 16)
        snprintf(s->events[s->n], sizeof(s->events[0]), "%s", data);
    s->n++;
    return s->stop_after == 0 || s->n < s->stop_after;
}

static const char stream[] = ": keep-alive\r\n"
                             "data: {\"a\":1}\r\n\r\n"
                             "event: ignored\n"
                             "id: 7\n"
                             "data:{\"b\":2}\n\n"
                             "data: line1\r"
                             "data: line2\r\r"
                             "retry: 10\n\n" /* no data: no event */
                             "data: [DONE]\n\n";

static void
check(const sink_t *s)
{
    assert_int_equal(s->n, 4);
    assert_string_equal(s->events[0], "{\"a\":1}");
    assert_string_equal(s->events[1], "{\"b\":2}");
    assert_string_equal(s->events[2], "line1\nline2");
    assert_string_equal(s->events[3], "[DONE]");
}

static void
test_whole(void **state)
{
    (void) state;
    sink_t s = {0};
    pv_sse_t p;
    pv_sse_init(&p, 1024, on_event, &s);
    assert_int_equal(pv_sse_feed(&p, stream, strlen(stream)), LC_OK);
    check(&s);
    pv_sse_free(&p);
}

static void
test_every_split(void **state)
{
    (void) state;
    size_t len = strlen(stream);
    for (size_t cut1 = 0; cut1 <= len; cut1++) {
        for (size_t cut2 = cut1; cut2 <= len; cut2 += 7) {
            sink_t s = {0};
            pv_sse_t p;
            pv_sse_init(&p, 1024, on_event, &s);
            assert_int_equal(pv_sse_feed(&p, stream, cut1), LC_OK);
            assert_int_equal(pv_sse_feed(&p, stream + cut1, cut2 - cut1), LC_OK);
            assert_int_equal(pv_sse_feed(&p, stream + cut2, len - cut2), LC_OK);
            check(&s);
            pv_sse_free(&p);
        }
    }
}

static void
test_one_byte_at_a_time(void **state)
{
    (void) state;
    sink_t s = {0};
    pv_sse_t p;
    pv_sse_init(&p, 1024, on_event, &s);
    for (size_t i = 0; i < strlen(stream); i++)
        assert_int_equal(pv_sse_feed(&p, stream + i, 1), LC_OK);
    check(&s);
    pv_sse_free(&p);
}

static void
test_bounds_and_stop(void **state)
{
    (void) state;
    sink_t s = {0};
    pv_sse_t p;
    pv_sse_init(&p, 16, on_event, &s);
    const char longline[] = "data: 0123456789abcdefghij";
    assert_int_equal(pv_sse_feed(&p, longline, strlen(longline)), LC_ERR_TOO_LARGE);
    pv_sse_free(&p);
    /* many short data lines may not add up past the bound either */
    pv_sse_init(&p, 16, on_event, &s);
    const char many[] = "data: 0123456\ndata: 0123456\ndata: 0123456\n";
    assert_int_equal(pv_sse_feed(&p, many, strlen(many)), LC_ERR_TOO_LARGE);
    pv_sse_free(&p);
    /* the callback stops the parser */
    sink_t st = {.stop_after = 1};
    pv_sse_init(&p, 1024, on_event, &st);
    assert_int_equal(pv_sse_feed(&p, stream, strlen(stream)), LC_ERR_CANCELLED);
    assert_int_equal(st.n, 1);
    pv_sse_free(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_bounds_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
