/* Unit tests: lc_config loading, bounds, every error at once, masking, reference. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc_config.h"
#include "lc_log.h"

typedef struct {
    char *url;
    char *level;
    char *token;
    int64_t port;
    bool tls;
    char *unset;
} cfg_t;

static const lc_config_entry_t table[] = {
    {"T_URL", LC_CFG_STRING, "nats://x", 1, 16, NULL, 0, offsetof(cfg_t, url), "url"},
    {"T_LEVEL", LC_CFG_ENUM, "info", 0, 0, "debug|info", 0, offsetof(cfg_t, level), "level"},
    {"T_TOKEN", LC_CFG_STRING, NULL, 1, 64, NULL, LC_CFG_REQUIRED | LC_CFG_SECRET,
     offsetof(cfg_t, token), "token"},
    {"T_PORT", LC_CFG_INT, "8080", 1, 65535, NULL, 0, offsetof(cfg_t, port), "port"},
    {"T_TLS", LC_CFG_BOOL, "false", 0, 0, NULL, 0, offsetof(cfg_t, tls), "tls"},
    {"T_UNSET", LC_CFG_STRING, NULL, 0, 10, NULL, 0, offsetof(cfg_t, unset), "optional"},
};
#define N (sizeof(table) / sizeof(table[0]))

/* A fake environment: "NAME=value" strings. */
static const char *
fake_getenv(const char *name, void *arg)
{
    const char **env = arg;
    size_t n = strlen(name);
    for (; *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static void
test_defaults_and_values(void **state)
{
    (void) state;
    const char *env[] = {"T_TOKEN=s3cret", "T_PORT=9000", "T_TLS=yes", NULL};
    cfg_t c = {0};
    char *errors = NULL;
    assert_int_equal(lc_config_load(table, N, &c, fake_getenv, env, &errors), LC_OK);
    assert_null(errors);
    assert_string_equal(c.url, "nats://x");
    assert_string_equal(c.level, "info");
    assert_string_equal(c.token, "s3cret");
    assert_int_equal(c.port, 9000);
    assert_true(c.tls);
    assert_null(c.unset);
    lc_config_free(table, N, &c);
    assert_null(c.url);
}

static void
test_every_error_reported_and_secret_hidden(void **state)
{
    (void) state;
    const char *env[] = {"T_URL=this-url-is-far-too-long", "T_LEVEL=loud", "T_PORT=70000",
                         "T_TLS=maybe", NULL};
    cfg_t c = {0};
    char *errors = NULL;
    assert_int_equal(lc_config_load(table, N, &c, fake_getenv, env, &errors), LC_ERR_CONFIG);
    assert_non_null(errors);
    assert_non_null(strstr(errors, "T_URL"));
    assert_non_null(strstr(errors, "T_LEVEL: \"loud\" is not one of debug|info"));
    assert_non_null(strstr(errors, "T_TOKEN: required"));
    assert_non_null(strstr(errors, "T_PORT: 70000 is outside 1..65535"));
    assert_non_null(strstr(errors, "T_TLS"));
    int lines = 0;
    for (char *p = errors; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    assert_int_equal(lines, 5);
    free(errors);
    lc_config_free(table, N, &c);

    const char *env2[] = {"T_TOKEN=this-secret-is-much-too-long-for-its-bound-of-sixty-four-"
                          "characters-really",
                          NULL};
    assert_int_equal(lc_config_load(table, N, &c, fake_getenv, env2, &errors), LC_ERR_CONFIG);
    assert_null(strstr(errors, "this-secret"));
    free(errors);
    lc_config_free(table, N, &c);
}

static void
test_non_integer_rejected(void **state)
{
    (void) state;
    const char *env[] = {"T_TOKEN=t", "T_PORT=80x", NULL};
    cfg_t c = {0};
    char *errors = NULL;
    assert_int_equal(lc_config_load(table, N, &c, fake_getenv, env, &errors), LC_ERR_CONFIG);
    assert_non_null(strstr(errors, "T_PORT: \"80x\" is not an integer"));
    free(errors);
    lc_config_free(table, N, &c);
}

static void
test_log_masks_secrets(void **state)
{
    (void) state;
    const char *env[] = {"T_TOKEN=s3cret", NULL};
    cfg_t c = {0};
    char *errors = NULL;
    assert_int_equal(lc_config_load(table, N, &c, fake_getenv, env, &errors), LC_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    lc_log_init("unit", LC_LOG_INFO, LC_LOG_FMT_LOGFMT);
    lc_log_set_output(out);
    lc_config_log(table, N, &c);
    lc_log_set_output(NULL);
    fclose(out);
    assert_null(strstr(buf, "s3cret"));
    assert_non_null(strstr(buf, "T_TOKEN=********"));
    assert_non_null(strstr(buf, "T_PORT=8080"));
    assert_non_null(strstr(buf, "T_UNSET=(unset)"));
    free(buf);
    lc_config_free(table, N, &c);
}

static void
test_reference_lists_every_entry(void **state)
{
    (void) state;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    lc_config_print_reference(table, N, out);
    fclose(out);
    for (size_t i = 0; i < N; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "| `%s` |", table[i].name);
        assert_non_null(strstr(buf, needle));
    }
    assert_non_null(strstr(buf, "| `T_PORT` | int 1..65535 | `8080` | port |"));
    assert_non_null(strstr(buf, "required"));
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_every_error_reported_and_secret_hidden),
        cmocka_unit_test(test_non_integer_rejected),
        cmocka_unit_test(test_log_masks_secrets),
        cmocka_unit_test(test_reference_lists_every_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
