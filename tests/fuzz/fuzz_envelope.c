/*
 * Fuzz target: lc_pb_unpack, the parser every message from the bus goes through.
 *
 *   libFuzzer: clang -fsanitize=fuzzer,address ... (make fuzz)
 *   replay:    the same file linked with replay_main.c runs the saved corpus in make test
 */
#include <stddef.h>
#include <stdint.h>

#include "lc_pb.h"
#include "voxi/v1/ping.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Voxi__V1__Envelope *env = NULL;
    ProtobufCMessage *body = NULL;
    lc_pb_unpack(data, size, &voxi__v1__ping_request__descriptor, &env, &body);
    if (env != NULL && env->error != NULL) {
        /* touch what a caller would read */
        (void) lc_status_from_name(env->error->status);
    }
    lc_pb_free(env, body);
    return 0;
}
