/*
 * Sealing of stored secrets: round trip, binding to the row, tampering, wrong key, the
 * unencrypted mode, and key syntax.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../../../services/registry/rg_secret.h"

#define KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define OTHER_KEY "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void
test_round_trip_and_binding(void **state)
{
    (void) state;
    rg_secret_t *sec = NULL;
    assert_int_equal(rg_secret_create(KEY, &sec), LC_OK);
    assert_true(rg_secret_has_key(sec));
    char *sealed = rg_secret_seal(sec, "hunter2", "pn_1");
    assert_non_null(strstr(sealed, "enc:v1:"));
    assert_null(strstr(sealed, "hunter2"));
    char *again = rg_secret_seal(sec, "hunter2", "pn_1");
    assert_string_not_equal(sealed, again); /* a fresh nonce every time */
    char *plain = NULL;
    assert_int_equal(rg_secret_open(sec, sealed, "pn_1", &plain), LC_OK);
    assert_string_equal(plain, "hunter2");
    free(plain);
    /* another row's value does not open */
    assert_int_equal(rg_secret_open(sec, sealed, "pn_2", &plain), LC_ERR_INVALID);
    assert_null(plain);
    /* a flipped character does not open */
    size_t n = strlen(sealed);
    sealed[n - 3] = sealed[n - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(rg_secret_open(sec, sealed, "pn_1", &plain), LC_ERR_INVALID);
    /* another key does not open */
    rg_secret_t *other = NULL;
    assert_int_equal(rg_secret_create(OTHER_KEY, &other), LC_OK);
    assert_int_equal(rg_secret_open(other, again, "pn_1", &plain), LC_ERR_INVALID);
    /* empty plaintext works */
    char *empty = rg_secret_seal(sec, "", "pn_1");
    assert_int_equal(rg_secret_open(sec, empty, "pn_1", &plain), LC_OK);
    assert_string_equal(plain, "");
    free(plain);
    /* garbage */
    assert_int_equal(rg_secret_open(sec, "enc:v1:!!!!", "pn_1", &plain), LC_ERR_INVALID);
    assert_int_equal(rg_secret_open(sec, "enc:v1:QUJD", "pn_1", &plain), LC_ERR_INVALID);
    assert_int_equal(rg_secret_open(sec, "something", "pn_1", &plain), LC_ERR_INVALID);
    free(empty);
    free(sealed);
    free(again);
    rg_secret_destroy(other);
    rg_secret_destroy(sec);
}

static void
test_without_key(void **state)
{
    (void) state;
    rg_secret_t *sec = NULL;
    assert_int_equal(rg_secret_create(NULL, &sec), LC_OK);
    assert_false(rg_secret_has_key(sec));
    char *sealed = rg_secret_seal(sec, "pw", "pn_1");
    assert_string_equal(sealed, "plain:pw");
    char *plain = NULL;
    assert_int_equal(rg_secret_open(sec, sealed, "pn_1", &plain), LC_OK);
    assert_string_equal(plain, "pw");
    free(plain);
    /* a sealed value needs the key */
    rg_secret_t *keyed = NULL;
    assert_int_equal(rg_secret_create(KEY, &keyed), LC_OK);
    char *enc = rg_secret_seal(keyed, "pw", "pn_1");
    assert_int_equal(rg_secret_open(sec, enc, "pn_1", &plain), LC_ERR_CONFIG);
    /* and a keyed sealer still reads values written before the key was set */
    assert_int_equal(rg_secret_open(keyed, sealed, "pn_1", &plain), LC_OK);
    assert_string_equal(plain, "pw");
    free(plain);
    free(enc);
    free(sealed);
    rg_secret_destroy(keyed);
    rg_secret_destroy(sec);
    rg_secret_destroy(NULL);
}

static void
test_bad_keys(void **state)
{
    (void) state;
    rg_secret_t *sec = NULL;
    assert_int_equal(rg_secret_create("abcd", &sec), LC_ERR_CONFIG);
    assert_null(sec);
    assert_int_equal(
        rg_secret_create("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", &sec),
        LC_ERR_CONFIG);
    assert_null(sec);
    assert_int_equal(rg_secret_create("", &sec), LC_OK);
    assert_false(rg_secret_has_key(sec));
    rg_secret_destroy(sec);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_binding),
        cmocka_unit_test(test_without_key),
        cmocka_unit_test(test_bad_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
