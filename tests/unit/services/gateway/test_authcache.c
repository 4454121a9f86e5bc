/*
 * gw_authcache: which Authorization values are API keys (and hash as auth hashes them),
 * slices spent one per request, expiry, scopes, route classes, revocation, and bounds on
 * what auth may hand over.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <string.h>

#include "../../../../services/gateway/gw_authcache.h"
#include "lc_log.h"

#define KEY "vx_0123456789abcdefghijABCDEFGHIJ0123456789"

typedef struct {
    lc_metrics_t *metrics;
    gw_authcache_t *cache;
    uint8_t hash[GW_AUTHCACHE_HASH_LEN];
    char *scopes[3];
    Voxi__V1__Principal who;
    Voxi__V1__AuthenticateReply rep;
    gw_ratelimit_t rl;
} fx_t;

static int
setup(void **state)
{
    static fx_t fx;
    memset(&fx, 0, sizeof(fx));
    fx.metrics = lc_metrics_create(0);
    fx.cache = gw_authcache_create(16, fx.metrics);
    assert_true(gw_authcache_key_hash("Bearer " KEY, strlen("Bearer " KEY), fx.hash));
    fx.scopes[0] = "agents:read";
    fx.scopes[1] = "numbers:read";
    voxi__v1__principal__init(&fx.who);
    fx.who.kind = "api_key";
    fx.who.id = "key_1";
    fx.who.scopes = fx.scopes;
    fx.who.n_scopes = 2;
    voxi__v1__authenticate_reply__init(&fx.rep);
    fx.rep.outcome = "ok";
    fx.rep.org_id = "org_1";
    fx.rep.principal = &fx.who;
    fx.rep.grant = 3;
    fx.rep.grant_ttl_ms = 1000;
    fx.rl = (gw_ratelimit_t){.present = true, .limit = 600, .remaining = 500, .reset_s = 9};
    snprintf(fx.rl.policy, sizeof(fx.rl.policy), "\"read\";q=600;w=60");
    *state = &fx;
    return 0;
}

static int
teardown(void **state)
{
    fx_t *fx = *state;
    gw_authcache_destroy(fx->cache);
    lc_metrics_destroy(fx->metrics);
    return 0;
}

static double
counter(fx_t *fx, const char *name, const char *labels)
{
    return lc_metric_value(lc_metrics_counter(fx->metrics, name, "", labels));
}

static void
test_key_hash(void **state)
{
    (void) state;
    uint8_t want[GW_AUTHCACHE_HASH_LEN], got[GW_AUTHCACHE_HASH_LEN];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(KEY, strlen(KEY), want, &n, EVP_sha256(), NULL), 1);
    /* auth's parsing: scheme any case, spaces around the token ignored */
    const char *same[] = {"Bearer " KEY, "bearer " KEY, "BEARER   " KEY "  "};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        memset(got, 0, sizeof(got));
        assert_true(gw_authcache_key_hash(same[i], strlen(same[i]), got));
        assert_memory_equal(got, want, sizeof(want));
    }
    /* not an API key: auth decides, nothing is cached */
    const char *other[] = {"",
                           "Bearer",
                           "Bearer ",
                           "Basic dXNlcjpwYXNz",
                           "Bearer a.b.c",
                           "Bearer vx",
                           "Bearer " KEY " extra",
                           "Bearer " KEY KEY KEY KEY};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_false(gw_authcache_key_hash(other[i], strlen(other[i]), got));
    /* the length given is what counts: no NUL needed, none read past */
    char buf[64];
    memcpy(buf, "Bearer " KEY, 7 + strlen(KEY));
    assert_true(gw_authcache_key_hash(buf, 7 + strlen(KEY), got));
    assert_memory_equal(got, want, sizeof(want));
    const char embedded[] = "Bearer vx_ab\0cd";
    assert_false(gw_authcache_key_hash(embedded, sizeof(embedded) - 1, got));
}

static void
test_slice_spent_one_per_request(void **state)
{
    fx_t *fx = *state;
    assert_null(gw_authcache_take(fx->cache, fx->hash, false, "agents:read", 0));
    gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 0);
    for (int i = 0; i < 3; i++) {
        const gw_authcache_entry_t *e =
            gw_authcache_take(fx->cache, fx->hash, false, "agents:read", 10);
        assert_non_null(e);
        assert_string_equal(e->org_id, "org_1");
        assert_string_equal(e->kind, "api_key");
        assert_string_equal(e->principal_id, "key_1");
        assert_int_equal(e->n_scopes, 2);
        assert_string_equal(e->scope_ptrs[1], "numbers:read");
        assert_int_equal(e->tokens, 2 - i);
        assert_int_equal(e->rl.limit, 600);
        assert_string_equal(e->rl.policy, "\"read\";q=600;w=60");
    }
    assert_null(gw_authcache_take(fx->cache, fx->hash, false, "agents:read", 10));
    assert_int_equal(counter(fx, "voxi_gateway_auth_cache_total", "result=\"hit\""), 3);
    assert_int_equal(counter(fx, "voxi_gateway_auth_cache_total", "result=\"miss\""), 2);
}

static void
test_expiry_scope_class(void **state)
{
    fx_t *fx = *state;
    gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 1000);
    /* a scope the key lacks goes to auth (which answers 403); "" needs none */
    assert_null(gw_authcache_take(fx->cache, fx->hash, false, "keys:admin", 1000));
    assert_non_null(gw_authcache_take(fx->cache, fx->hash, false, "", 1000));
    /* the write class has its own bucket: nothing granted for it */
    assert_null(gw_authcache_take(fx->cache, fx->hash, true, "agents:read", 1000));
    /* another key with the same slot index is not this key */
    uint8_t other[GW_AUTHCACHE_HASH_LEN];
    memcpy(other, fx->hash, sizeof(other));
    other[31] ^= 1;
    assert_null(gw_authcache_take(fx->cache, other, false, "agents:read", 1000));
    /* past the TTL nothing is served, however many tokens are left */
    assert_non_null(gw_authcache_take(fx->cache, fx->hash, false, "agents:read", 1999));
    gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 1000);
    assert_null(gw_authcache_take(fx->cache, fx->hash, false, "agents:read", 2000));
}

static void
test_revocation_evicts(void **state)
{
    fx_t *fx = *state;
    gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 0);
    gw_authcache_put(fx->cache, fx->hash, true, &fx->rep, &fx->rl, 0);
    gw_authcache_evict(fx->cache, fx->hash);
    assert_null(gw_authcache_take(fx->cache, fx->hash, false, "agents:read", 1));
    assert_null(gw_authcache_take(fx->cache, fx->hash, true, "agents:read", 1));
    assert_int_equal(counter(fx, "voxi_gateway_auth_cache_evictions_total", ""), 1);
}

static void
test_what_is_not_cached_and_bounds(void **state)
{
    fx_t *fx = *state;
    /* no grant, no TTL, no principal, no rate limit: nothing to spend */
    fx->rep.grant = 0;
    gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 0);
    assert_null(gw_authcache_take(fx->cache, fx->hash, false, "", 1));
    fx->rep.grant = 5;
    fx->rep.grant_ttl_ms = 0;
    gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 0);
    assert_null(gw_authcache_take(fx->cache, fx->hash, false, "", 1));
    fx->rep.grant_ttl_ms = 1000;
    {
        gw_ratelimit_t none = {0};
        gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &none, 0);
        assert_null(gw_authcache_take(fx->cache, fx->hash, false, "", 1));
    }
    /* hostile sizes from the bus are refused, not cut */
    char long_id[200];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    fx->who.id = long_id;
    gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 0);
    assert_null(gw_authcache_take(fx->cache, fx->hash, false, "", 1));
    fx->who.id = "key_1";
    /* a huge grant or TTL is capped: a slice stays a few requests for a short while */
    fx->rep.grant = 1000000;
    fx->rep.grant_ttl_ms = 1000000000;
    gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 0);
    const gw_authcache_entry_t *e = gw_authcache_take(fx->cache, fx->hash, false, "", 1);
    assert_non_null(e);
    assert_int_equal(e->tokens, GW_AUTHCACHE_GRANT_WANTED - 1);
    assert_true(e->expires_ms <= 60000);
    /* a second grant while the first is live adds up, within a bound */
    for (int i = 0; i < 10; i++)
        gw_authcache_put(fx->cache, fx->hash, false, &fx->rep, &fx->rl, 2);
    e = gw_authcache_take(fx->cache, fx->hash, false, "", 3);
    assert_non_null(e);
    assert_int_equal(e->tokens, 4 * GW_AUTHCACHE_GRANT_WANTED - 1);
}

int
main(void)
{
    lc_log_init("test", LC_LOG_WARN, LC_LOG_FMT_LOGFMT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slice_spent_one_per_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_scope_class, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_evicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_what_is_not_cached_and_bounds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
