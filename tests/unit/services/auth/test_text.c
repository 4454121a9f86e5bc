/* Unit tests: RFC 3339 parsing, ids, hex, UTF-8 length and control characters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../../../services/auth/au_text.h"

static void
test_rfc3339_accepts(void **state)
{
    (void) state;
    int64_t ms = 0;
    assert_true(au_parse_rfc3339("1970-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, 0);
    assert_true(au_parse_rfc3339("2030-01-31T12:00:00Z", &ms));
    assert_int_equal(ms, 1896091200000LL);
    assert_true(au_parse_rfc3339("2030-01-31t12:00:00.5z", &ms));
    assert_int_equal(ms, 1896091200500LL);
    assert_true(au_parse_rfc3339("2030-01-31T12:00:00.123456789Z", &ms));
    assert_int_equal(ms, 1896091200123LL);
    /* offsets move the instant: 14:00 at +02:00 is 12:00 UTC */
    assert_true(au_parse_rfc3339("2030-01-31T14:00:00+02:00", &ms));
    assert_int_equal(ms, 1896091200000LL);
    assert_true(au_parse_rfc3339("2030-01-31T07:30:00-04:30", &ms));
    assert_int_equal(ms, 1896091200000LL);
    assert_true(au_parse_rfc3339("2028-02-29T00:00:00Z", &ms)); /* leap year */
    assert_true(au_parse_rfc3339("2000-02-29T00:00:00Z", &ms)); /* divisible by 400 */
}

static void
test_rfc3339_rejects(void **state)
{
    (void) state;
    int64_t ms = 0;
    const char *bad[] = {
        "",
        "2030-01-31",
        "2030-01-31T12:00:00",       /* no offset */
        "2030-01-31 12:00:00Z",      /* space */
        "2030-1-31T12:00:00Z",       /* one-digit month */
        "2030-13-01T00:00:00Z",      /* month 13 */
        "2030-02-30T00:00:00Z",      /* no such day */
        "2029-02-29T00:00:00Z",      /* not a leap year */
        "1900-02-29T00:00:00Z",      /* divisible by 100 */
        "2030-01-31T24:00:00Z",      /* hour 24 */
        "2030-01-31T12:60:00Z",      /* minute 60 */
        "2030-01-31T12:00:61Z",      /* second 61 */
        "2030-01-31T12:00:00.Z",     /* empty fraction */
        "2030-01-31T12:00:00+0200",  /* offset without colon */
        "2030-01-31T12:00:00+24:00", /* offset hour 24 */
        "2030-01-31T12:00:00ZZ",     /* trailing garbage */
        "2030-01-31T12:00:00Z ",
        "tomorrow",
        "+2030-01-31T12:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (au_parse_rfc3339(bad[i], &ms))
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void
test_ids_and_hex(void **state)
{
    (void) state;
    assert_true(au_id_valid("org_0123456789abcdef0123", "org_"));
    assert_false(au_id_valid("org_0123456789abcdef012g", "org_"));
    assert_false(au_id_valid("org_", "org_"));
    char out[9];
    const uint8_t bytes[] = {0x00, 0x9f, 0xa0, 0xff};
    au_hex(bytes, sizeof(bytes), out);
    assert_string_equal(out, "009fa0ff");
}

static void
test_utf8_and_control(void **state)
{
    (void) state;
    assert_int_equal(au_utf8_length(""), 0);
    assert_int_equal(au_utf8_length("abc"), 3);
    assert_int_equal(au_utf8_length("caf\xc3\xa9"), 4);         /* é: 2 bytes */
    assert_int_equal(au_utf8_length("\xf0\x9f\x93\x9e ok"), 4); /* one emoji + " ok" */
    assert_false(au_has_control("plain name - with (punctuation)"));
    assert_true(au_has_control("tab\there"));
    assert_true(au_has_control("new\nline"));
    assert_true(au_has_control("del\x7f"));
    assert_false(au_has_control("caf\xc3\xa9"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_accepts),
        cmocka_unit_test(test_rfc3339_rejects),
        cmocka_unit_test(test_ids_and_hex),
        cmocka_unit_test(test_utf8_and_control),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
