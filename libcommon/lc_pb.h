/*
 * lc_pb: the common envelope (voxi.v1.Envelope) and pack/unpack helpers.
 *
 * Every message on the bus is an Envelope whose `body` holds the verb's message and whose
 * `body_type` names it. Replies echo the request id and carry either a body or an error.
 * Input from the bus is untrusted: sizes are bounded and body types checked.
 *
 * Threads: any.
 */
#ifndef LC_PB_H
#define LC_PB_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_status.h"
#include "voxi/v1/envelope.pb-c.h"

#define LC_PB_MAX_MESSAGE_BYTES (4u * 1024u * 1024u)

/* The header fields of an envelope; strings are borrowed. */
typedef struct {
    const char *request_id;
    const char *org_id;
    const Voxi__V1__Principal *principal; /* NULL = none */
    int64_t deadline_unix_ms;             /* 0 = none */
} lc_pb_meta_t;

/* Packs `body` (NULL for none) in an envelope; *out is a new buffer the caller frees. */
lc_status_t lc_pb_pack(const lc_pb_meta_t *meta, const ProtobufCMessage *body, uint8_t **out,
                       size_t *out_len);

/* Packs an error reply: status name, a message safe for API callers, no body. */
lc_status_t lc_pb_pack_error(const char *request_id, lc_status_t status, const char *message,
                             uint8_t **out, size_t *out_len);

/*
 * Unpacks an envelope and, when body_desc is given, its body (which must be of that type).
 * Returns LC_ERR_TOO_LARGE / LC_ERR_PROTOCOL for bad input; when the envelope carries an
 * error, returns that error's status (env_out is set so the caller can read the message).
 * On any return *env_out is either NULL or a message to free with lc_pb_free, and
 * *body_out (if body_out given) NULL or a body to free with it.
 */
lc_status_t lc_pb_unpack(const void *data, size_t len, const ProtobufCMessageDescriptor *body_desc,
                         Voxi__V1__Envelope **env_out, ProtobufCMessage **body_out);

void lc_pb_free(Voxi__V1__Envelope *env, ProtobufCMessage *body);

/* True when the envelope has a deadline and it has passed. */
bool lc_pb_deadline_passed(const Voxi__V1__Envelope *env);

#endif
