/* Unit tests: the sentence splitter (md_sentence) on streamed deltas: boundaries, deltas cut
 * anywhere, abbreviations, initials, numbers, quotes, newlines, the bound on a sentence
 * without an end, finish and reset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../../../services/media/md_sentence.h"

typedef struct {
    char out[16][512];
    int n;
} got_t;

static void
on_sentence(void *arg, const char *s)
{
    got_t *g = arg;
    if (g->n < 16)
        snprintf(g->out[g->n++], sizeof(g->out[0]), "%s", s);
}

static void
feed_chars(md_sentence_t *s, const char *text)
{
    for (const char *p = text; *p; p++) /* the worst case: one byte per delta */
        md_sentence_feed(s, p, 1);
}

static void
test_boundaries(void **state)
{
    (void) state;
    got_t g = {0};
    md_sentence_t *s = md_sentence_create(on_sentence, &g);
    feed_chars(s, "Hello there! Dr. Smith paid $3.50 today. Is J. Doe in?\"Yes.\" Next");
    assert_int_equal(g.n, 3);
    assert_string_equal(g.out[0], "Hello there!");
    assert_string_equal(g.out[1], "Dr. Smith paid $3.50 today.");
    assert_string_equal(g.out[2], "Is J. Doe in?\"Yes.\"");
    md_sentence_finish(s);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.out[3], "Next");
    md_sentence_finish(s); /* nothing left */
    assert_int_equal(g.n, 4);
    md_sentence_feed(s, "Line one\nline two... ", 21);
    assert_int_equal(g.n, 6);
    assert_string_equal(g.out[4], "Line one");
    assert_string_equal(g.out[5], "line two...");
    md_sentence_feed(s, "dropped", 7);
    md_sentence_reset(s);
    md_sentence_finish(s);
    assert_int_equal(g.n, 6);
    md_sentence_destroy(s);
}

static void
test_bound(void **state)
{
    (void) state;
    got_t g = {0};
    md_sentence_t *s = md_sentence_create(on_sentence, &g);
    char text[1000];
    for (size_t i = 0; i < sizeof(text) - 1; i++)
        text[i] = i % 10 == 9 ? ' ' : 'a';
    text[sizeof(text) - 1] = '\0';
    md_sentence_feed(s, text, strlen(text));
    assert_true(g.n >= 2);
    for (int i = 0; i < g.n; i++)
        assert_true(strlen(g.out[i]) <= MD_SENTENCE_MAX_BYTES);
    md_sentence_destroy(s);
    md_sentence_destroy(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
