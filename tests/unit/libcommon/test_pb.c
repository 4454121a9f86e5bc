/* Unit tests: envelope pack/unpack, error replies, bounds and body type checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lc_pb.h"
#include "lc_time.h"
#include "voxi/v1/ping.pb-c.h"

static void
test_round_trip(void **state)
{
    (void) state;
    Voxi__V1__PingRequest req = VOXI__V1__PING_REQUEST__INIT;
    req.note = "hello";
    char *scopes[] = {"agents:read", "calls:write"};
    Voxi__V1__Principal who = VOXI__V1__PRINCIPAL__INIT;
    who.kind = "api_key";
    who.id = "key_1";
    who.n_scopes = 2;
    who.scopes = scopes;
    lc_pb_meta_t meta = {
        .request_id = "req_1", .org_id = "org_7", .principal = &who, .deadline_unix_ms = 123};
    uint8_t *buf;
    size_t len;
    assert_int_equal(lc_pb_pack(&meta, &req.base, &buf, &len), LC_OK);

    Voxi__V1__Envelope *env;
    ProtobufCMessage *body;
    assert_int_equal(lc_pb_unpack(buf, len, &voxi__v1__ping_request__descriptor, &env, &body),
                     LC_OK);
    assert_string_equal(env->request_id, "req_1");
    assert_string_equal(env->org_id, "org_7");
    assert_string_equal(env->principal->id, "key_1");
    assert_int_equal(env->principal->n_scopes, 2);
    assert_string_equal(env->principal->scopes[1], "calls:write");
    assert_int_equal(env->deadline_unix_ms, 123);
    assert_string_equal(env->body_type, "voxi.v1.PingRequest");
    assert_string_equal(((Voxi__V1__PingRequest *) body)->note, "hello");
    lc_pb_free(env, body);
    free(buf);
}

static void
test_error_reply(void **state)
{
    (void) state;
    uint8_t *buf;
    size_t len;
    assert_int_equal(lc_pb_pack_error("req_2", LC_ERR_NOT_FOUND, "no such agent", &buf, &len),
                     LC_OK);
    Voxi__V1__Envelope *env;
    ProtobufCMessage *body;
    assert_int_equal(lc_pb_unpack(buf, len, &voxi__v1__ping_reply__descriptor, &env, &body),
                     LC_ERR_NOT_FOUND);
    assert_non_null(env);
    assert_null(body);
    assert_string_equal(env->error->message, "no such agent");
    assert_string_equal(env->request_id, "req_2");
    lc_pb_free(env, body);
    free(buf);
}

static void
test_wrong_body_type_and_garbage(void **state)
{
    (void) state;
    Voxi__V1__PingRequest req = VOXI__V1__PING_REQUEST__INIT;
    uint8_t *buf;
    size_t len;
    assert_int_equal(lc_pb_pack(NULL, &req.base, &buf, &len), LC_OK);
    Voxi__V1__Envelope *env;
    ProtobufCMessage *body;
    assert_int_equal(lc_pb_unpack(buf, len, &voxi__v1__ping_reply__descriptor, &env, &body),
                     LC_ERR_PROTOCOL);
    lc_pb_free(env, body);
    free(buf);

    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01};
    assert_int_equal(lc_pb_unpack(garbage, sizeof(garbage), NULL, &env, &body), LC_ERR_PROTOCOL);
    assert_null(env);
}

static void
test_truncated_and_oversized(void **state)
{
    (void) state;
    Voxi__V1__PingRequest req = VOXI__V1__PING_REQUEST__INIT;
    req.note = "some note text";
    lc_pb_meta_t meta = {.request_id = "req_3"};
    uint8_t *buf;
    size_t len;
    assert_int_equal(lc_pb_pack(&meta, &req.base, &buf, &len), LC_OK);
    Voxi__V1__Envelope *env;
    ProtobufCMessage *body;
    /* Every prefix is handled without reading past it (ASan checks); a prefix that ends
     * inside a field is rejected. Prefixes ending on a field boundary are valid messages. */
    for (size_t cut = 1; cut < len; cut++) {
        lc_status_t st =
            lc_pb_unpack(buf, len - cut, &voxi__v1__ping_request__descriptor, &env, &body);
        if (cut == 1)
            assert_int_equal(st, LC_ERR_PROTOCOL);
        lc_pb_free(env, body);
    }
    assert_int_equal(lc_pb_unpack(buf, LC_PB_MAX_MESSAGE_BYTES + 1, NULL, &env, &body),
                     LC_ERR_TOO_LARGE);
    free(buf);
}

static void
test_deadline(void **state)
{
    (void) state;
    Voxi__V1__Envelope env = VOXI__V1__ENVELOPE__INIT;
    assert_false(lc_pb_deadline_passed(&env));
    env.deadline_unix_ms = lc_time_wall_ms() - 1;
    assert_true(lc_pb_deadline_passed(&env));
    env.deadline_unix_ms = lc_time_wall_ms() + 60000;
    assert_false(lc_pb_deadline_passed(&env));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_wrong_body_type_and_garbage),
        cmocka_unit_test(test_truncated_and_oversized),
        cmocka_unit_test(test_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
