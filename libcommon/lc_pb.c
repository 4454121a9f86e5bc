#include "lc_pb.h"

#include <stdlib.h>
#include <string.h>

#include "lc_alloc.h"
#include "lc_time.h"

static uint8_t *
pack_envelope(const Voxi__V1__Envelope *env, size_t *out_len)
{
    size_t n = voxi__v1__envelope__get_packed_size(env);
    uint8_t *buf = lc_malloc(n);
    voxi__v1__envelope__pack(env, buf);
    *out_len = n;
    return buf;
}

lc_status_t
lc_pb_pack(const lc_pb_meta_t *meta, const ProtobufCMessage *body, uint8_t **out, size_t *out_len)
{
    Voxi__V1__Envelope env = VOXI__V1__ENVELOPE__INIT;
    uint8_t *body_buf = NULL;
    if (meta != NULL) {
        env.request_id = (char *) (meta->request_id ? meta->request_id : "");
        env.org_id = (char *) (meta->org_id ? meta->org_id : "");
        env.principal = (Voxi__V1__Principal *) meta->principal;
        env.deadline_unix_ms = meta->deadline_unix_ms;
    }
    if (body != NULL) {
        size_t n = protobuf_c_message_get_packed_size(body);
        if (n > LC_PB_MAX_MESSAGE_BYTES)
            return LC_ERR_TOO_LARGE;
        body_buf = lc_malloc(n);
        protobuf_c_message_pack(body, body_buf);
        env.body.data = body_buf;
        env.body.len = n;
        env.body_type = (char *) body->descriptor->name;
    }
    *out = pack_envelope(&env, out_len);
    free(body_buf);
    return LC_OK;
}

lc_status_t
lc_pb_pack_error(const char *request_id, lc_status_t status, const char *message, uint8_t **out,
                 size_t *out_len)
{
    Voxi__V1__Envelope env = VOXI__V1__ENVELOPE__INIT;
    Voxi__V1__Error err = VOXI__V1__ERROR__INIT;
    env.request_id = (char *) (request_id ? request_id : "");
    err.status = (char *) lc_status_name(status);
    err.message = (char *) (message ? message : "");
    env.error = &err;
    *out = pack_envelope(&env, out_len);
    return LC_OK;
}

lc_status_t
lc_pb_unpack(const void *data, size_t len, const ProtobufCMessageDescriptor *body_desc,
             Voxi__V1__Envelope **env_out, ProtobufCMessage **body_out)
{
    *env_out = NULL;
    if (body_out)
        *body_out = NULL;
    if (len > LC_PB_MAX_MESSAGE_BYTES)
        return LC_ERR_TOO_LARGE;
    Voxi__V1__Envelope *env = voxi__v1__envelope__unpack(NULL, len, data);
    if (env == NULL)
        return LC_ERR_PROTOCOL;
    *env_out = env;
    if (env->error != NULL) {
        lc_status_t s = lc_status_from_name(env->error->status);
        return s == LC_OK ? LC_ERR_PROTOCOL : s;
    }
    if (body_desc == NULL || body_out == NULL)
        return LC_OK;
    if (strcmp(env->body_type, body_desc->name) != 0)
        return LC_ERR_PROTOCOL;
    ProtobufCMessage *body =
        protobuf_c_message_unpack(body_desc, NULL, env->body.len, env->body.data);
    if (body == NULL)
        return LC_ERR_PROTOCOL;
    *body_out = body;
    return LC_OK;
}

void
lc_pb_free(Voxi__V1__Envelope *env, ProtobufCMessage *body)
{
    if (body)
        protobuf_c_message_free_unpacked(body, NULL);
    if (env)
        voxi__v1__envelope__free_unpacked(env, NULL);
}

bool
lc_pb_deadline_passed(const Voxi__V1__Envelope *env)
{
    return env->deadline_unix_ms > 0 && lc_time_wall_ms() > env->deadline_unix_ms;
}
