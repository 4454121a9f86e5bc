/* Unit tests: API key generation, format, checksum, hashing; scope sets; id checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "../../../../services/auth/au_key.h"
#include "../../../../services/auth/au_scope.h"
#include "../../../../services/auth/au_text.h"

static bool
base62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void
test_generated_keys_are_well_formed_and_distinct(void **state)
{
    (void) state;
    char a[AU_KEY_LEN + 1], b[AU_KEY_LEN + 1];
    au_key_generate(a);
    au_key_generate(b);
    assert_int_equal(strlen(a), 41);
    assert_memory_equal(a, "vx_", 3);
    for (size_t i = 3; i < AU_KEY_LEN; i++)
        assert_true(base62(a[i]));
    assert_true(au_key_well_formed(a, strlen(a)));
    assert_true(au_key_well_formed(b, strlen(b)));
    assert_string_not_equal(a, b);
}

static void
test_checksum_is_crc32_in_base62(void **state)
{
    (void) state;
    const char *random_part = "0123456789abcdefghijABCDEFGHIJkl";
    uint32_t crc = (uint32_t) crc32(0, (const Bytef *) random_part, 32);
    /* independent base62 encoding of the CRC */
    const char *alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char want[7];
    for (int i = 5; i >= 0; i--) {
        want[i] = alphabet[crc % 62];
        crc /= 62;
    }
    want[6] = '\0';
    char got[7];
    au_key_checksum(random_part, got);
    assert_string_equal(got, want);

    char key[64];
    snprintf(key, sizeof(key), "vx_%s%s", random_part, want);
    assert_true(au_key_well_formed(key, strlen(key)));
}

static void
test_rejects_wrong_checksum(void **state)
{
    (void) state;
    char key[AU_KEY_LEN + 1];
    au_key_generate(key);
    /* change one character of the checksum */
    char bad[AU_KEY_LEN + 1];
    memcpy(bad, key, sizeof(bad));
    bad[AU_KEY_LEN - 1] = bad[AU_KEY_LEN - 1] == 'a' ? 'b' : 'a';
    assert_false(au_key_well_formed(bad, AU_KEY_LEN));
    /* change one character of the random part: the checksum no longer matches */
    memcpy(bad, key, sizeof(bad));
    bad[10] = bad[10] == 'Z' ? 'Y' : 'Z';
    assert_false(au_key_well_formed(bad, AU_KEY_LEN));
    /* swap two different adjacent characters of the random part */
    memcpy(bad, key, sizeof(bad));
    for (int i = 3; i < 3 + 31; i++) {
        if (bad[i] != bad[i + 1]) {
            char t = bad[i];
            bad[i] = bad[i + 1];
            bad[i + 1] = t;
            break;
        }
    }
    assert_false(au_key_well_formed(bad, AU_KEY_LEN));
}

static void
test_rejects_wrong_length_tag_and_alphabet(void **state)
{
    (void) state;
    char key[AU_KEY_LEN + 1];
    au_key_generate(key);
    assert_false(au_key_well_formed(key, AU_KEY_LEN - 1));
    assert_false(au_key_well_formed("", 0));
    assert_false(au_key_well_formed("vx_", 3));
    char longer[AU_KEY_LEN + 2];
    memcpy(longer, key, AU_KEY_LEN);
    longer[AU_KEY_LEN] = 'a';
    longer[AU_KEY_LEN + 1] = '\0';
    assert_false(au_key_well_formed(longer, AU_KEY_LEN + 1));

    char bad[AU_KEY_LEN + 1];
    memcpy(bad, key, sizeof(bad));
    bad[0] = 'V';
    assert_false(au_key_well_formed(bad, AU_KEY_LEN));
    memcpy(bad, key, sizeof(bad));
    bad[2] = '-';
    assert_false(au_key_well_formed(bad, AU_KEY_LEN));

    /* a character outside base62 in the random part, with the checksum recomputed so only
     * the alphabet is wrong */
    const char *odd[] = {"-", "_", "+", "/", "=", " ", "\x80", "\0"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        memcpy(bad, key, sizeof(bad));
        bad[20] = odd[i][0];
        au_key_checksum(bad + 3, bad + 35);
        assert_false(au_key_well_formed(bad, AU_KEY_LEN));
    }
}

static void
test_alphabet_is_unbiased(void **state)
{
    (void) state;
    /* 4000 keys = 128000 symbols, about 2065 per symbol. A plain `byte % 62` would make
     * the first 8 symbols (0-7) 25% more common than the rest; rejection sampling keeps
     * them level. The ratio of their mean counts is 1.00 +- about 0.01 when unbiased. */
    int counts[128] = {0};
    for (int k = 0; k < 4000; k++) {
        char key[AU_KEY_LEN + 1];
        au_key_generate(key);
        for (int i = 3; i < 35; i++)
            counts[(unsigned char) key[i]]++;
    }
    const char *alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    double first8 = 0, rest = 0;
    for (int i = 0; i < 62; i++) {
        int c = counts[(unsigned char) alphabet[i]];
        assert_true(c > 0);
        if (i < 8)
            first8 += c;
        else
            rest += c;
    }
    double ratio = (first8 / 8) / (rest / 54);
    assert_true(ratio > 0.95 && ratio < 1.05);
}

static void
test_hash_and_prefix(void **state)
{
    (void) state;
    uint8_t h[AU_KEY_HASH_LEN];
    au_key_hash("abc", 3, h);
    char hex[2 * AU_KEY_HASH_LEN + 1];
    au_hex(h, sizeof(h), hex);
    /* FIPS 180-2 test vector */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char prefix[AU_KEY_PREFIX_LEN + 1];
    au_key_prefix("vx_abcdefghijklmnop", prefix);
    assert_string_equal(prefix, "vx_abcdefghi");
}

static void
test_ids(void **state)
{
    (void) state;
    assert_true(au_id_valid("key_0123456789abcdef0123", "key_"));
    assert_false(au_id_valid("key_0123456789abcdef012", "key_"));
    assert_false(au_id_valid("key_0123456789abcdef01234", "key_"));
    assert_false(au_id_valid("key_0123456789ABCDEF0123", "key_"));
    assert_false(au_id_valid("org_0123456789abcdef0123", "key_"));
    assert_false(au_id_valid("", "key_"));
}

static void
test_scopes(void **state)
{
    (void) state;
    assert_int_equal(au_scope_parse("agents:read", 11), AU_SCOPE_AGENTS_READ);
    assert_int_equal(au_scope_parse("agents:reader", 13), 0);
    assert_int_equal(au_scope_parse("agents:rea", 10), 0);
    size_t unknown = 0;
    au_scopes_t s = au_scopes_parse_list("  keys:admin nope agents:write  ", &unknown);
    assert_int_equal(s, AU_SCOPE_KEYS_ADMIN | AU_SCOPE_AGENTS_WRITE);
    assert_int_equal(unknown, 1);
    char out[256];
    assert_int_equal(au_scopes_format(s, ' ', out, sizeof(out)), strlen("agents:write keys:admin"));
    assert_string_equal(out, "agents:write keys:admin");
    /* truncation writes whole names only */
    size_t need = au_scopes_format(s, ',', out, 16);
    assert_int_equal(need, strlen("agents:write,keys:admin"));
    assert_string_equal(out, "agents:write");
    assert_int_equal(au_scopes_count(AU_SCOPES_ALL), 9);
    au_scopes_format(AU_SCOPES_ALL | AU_SCOPE_PLATFORM_ADMIN, ' ', out, sizeof(out));
    assert_int_equal(au_scopes_parse_list(out, &unknown), AU_SCOPES_ALL | AU_SCOPE_PLATFORM_ADMIN);
    assert_int_equal(unknown, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_keys_are_well_formed_and_distinct),
        cmocka_unit_test(test_checksum_is_crc32_in_base62),
        cmocka_unit_test(test_rejects_wrong_checksum),
        cmocka_unit_test(test_rejects_wrong_length_tag_and_alphabet),
        cmocka_unit_test(test_alphabet_is_unbiased),
        cmocka_unit_test(test_hash_and_prefix),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_scopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
