/*
 * URL parsing for the SSRF guard (what curl will connect to is what gets checked); the
 * address classifier itself (lc_ssrf) is tested in tests/unit/libcommon/test_ssrf.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "../../../../services/webhooks/wh_service.h"
#include "lc_ssrf.h"
#include "../../../../services/webhooks/wh_target.h"

static void
test_url_parse(void **state)
{
    (void) state;
    wh_target_t t;
    char err[160];
    assert_int_equal(wh_url_parse("https://Example.COM/hook?x=1", false, &t, err, sizeof(err)),
                     LC_OK);
    assert_true(t.https);
    assert_false(t.literal);
    assert_string_equal(t.host, "example.com");
    assert_int_equal(t.port, 443);

    /* numeric forms are normalised the way curl connects */
    assert_int_equal(wh_url_parse("http://0x7f.1:8080/x", true, &t, err, sizeof(err)), LC_OK);
    assert_true(t.literal);
    assert_int_equal(t.port, 8080);
    assert_int_equal(wh_target_check(&t, NULL, NULL), LC_SSRF_LOOPBACK);
    assert_int_equal(wh_url_parse("http://2130706433/", true, &t, err, sizeof(err)), LC_OK);
    assert_int_equal(wh_target_check(&t, NULL, NULL), LC_SSRF_LOOPBACK);
    assert_int_equal(wh_url_parse("http://017700000001/", true, &t, err, sizeof(err)), LC_OK);
    assert_int_equal(wh_target_check(&t, NULL, NULL), LC_SSRF_LOOPBACK);
    assert_int_equal(
        wh_url_parse("https://[::ffff:169.254.169.254]/latest", false, &t, err, sizeof(err)),
        LC_OK);
    assert_true(t.literal);
    char bad[LC_SSRF_IP_TEXT_MAX];
    assert_int_equal(wh_target_check(&t, NULL, bad), LC_SSRF_LINK_LOCAL);
    assert_string_equal(bad, "::ffff:169.254.169.254");

    /* refused shapes */
    const char *refused[] = {
        "http://example.com/",          /* plain http not allowed */
        "ftp://example.com/",           /* scheme */
        "https://user:pw@example.com/", /* credentials */
        "https://[fe80::1%25eth0]/",    /* zone id */
        "example.com/hook",             /* not absolute */
        "https://exa mple.com/",
        "https://a..b/",
        "https://ex\xc3\xa4mple.com/", /* not ASCII */
        "",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (wh_url_parse(refused[i], false, &t, err, sizeof(err)) != LC_ERR_INVALID) {
            fprintf(stderr, "accepted: %s\n", refused[i]);
            fail();
        }
        assert_true(strlen(err) > 0);
    }
    char longurl[WH_URL_MAX + 40];
    memset(longurl, 'a', sizeof(longurl) - 1);
    memcpy(longurl, "https://", 8);
    longurl[sizeof(longurl) - 1] = '\0';
    assert_int_equal(wh_url_parse(longurl, false, &t, err, sizeof(err)), LC_ERR_INVALID);
    assert_int_equal(wh_url_parse("http://example.com/", true, &t, err, sizeof(err)), LC_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
