/*
 * rg_calls: the calls API of the registry (voxi.registry.calls.*) and the pure pieces it is
 * built from (request validation, list filters, call-event checks, the price table).
 *
 *   calls.create     outbound call: validate, insert (status "queued") with its audit row,
 *                    ask a media worker over voxi.media.dial, reply 201 with the call
 *   calls.list       newest first, cursor pagination, filters agent_id / status /
 *                    created_after / created_before
 *   calls.get        the call with its transcript (turns in order, per-turn latency), usage
 *                    and cost (VOXI_REGISTRY_PRICES)
 *   calls.hangup     CallControlRequest{action:"hangup"} to voxi.call.<id>.ctl; 202
 *   calls.recording  {"worker_id","recording_path","size_bytes"} for the gateway, which then
 *                    reads the WAV from that worker (size_bytes 0 when the worker did not
 *                    report it); not_found without a recording or a known worker
 *
 * The call rows themselves are kept up to date by the call-event consumer
 * (rg_calls_consumer.h). Another org's call is "not found".
 *
 * Ownership: validators borrow their input and return new references. Threads: handlers on
 * the loop thread; the pure functions on any thread.
 */
#ifndef RG_CALLS_H
#define RG_CALLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lc_nats.h"
#include "lc_status.h"
#include "rg_errors.h"
#include "rg_prices.h"
#include "rg_req.h"

#define RG_CALL_TO_MAX 256            /* bytes of `to` */
#define RG_CALL_FROM_MAX 64           /* bytes of `from` */
#define RG_CALL_VARIABLES_MAX 4096    /* bytes of every variable name and value together */
#define RG_CALL_EVENT_MAX_BYTES 65536 /* a call event larger than this is refused */

/* Handlers (api.c dispatches to them). */
void rg_calls_create(rg_req_t *req);
void rg_calls_list(rg_req_t *req);
void rg_calls_get(rg_req_t *req);
void rg_calls_hangup(rg_req_t *req);
void rg_calls_recording(rg_req_t *req);

/* The service's NATS connection and price table (api.c). */
lc_nats_t *rg_req_nats(const rg_req_t *req);
const rg_prices_t *rg_req_prices(const rg_req_t *req);

/*
 * The body of POST /v1/calls: {agent_id, to, from?, number_id?, variables?}. Returns the
 * normalised document (variables always an object) or NULL with every problem in errs.
 * Ids are checked for syntax only (the handler looks them up in the caller's org).
 */
json_t *rg_call_create_validate(const json_t *doc, rg_errors_t *errs);

/* `to` of an outbound call: E.164 ("+" and 2..15 digits) or a sip:/sips: URI without white
 * space or control characters, at most RG_CALL_TO_MAX bytes. */
bool rg_call_to_valid(const char *to);

/* "2026-11-22T03:30:00Z", with optional fraction and Z or +hh:mm/-hh:mm. */
bool rg_rfc3339_valid(const char *s);

/* List filters (each "" when absent). */
typedef struct {
    char agent_id[RG_ID_MAX + 1];
    char status[16];
    char created_after[40];
    char created_before[40];
} rg_call_filters_t;

/* Reads the filters of calls.list from an object (NULL = none); problems go into errs
 * (unknown keys included). */
void rg_call_filters_read(const json_t *query, rg_call_filters_t *out, rg_errors_t *errs);

/*
 * Checks a call event taken from the stream: a JSON object with string id, org_id,
 * created_at (RFC 3339), type (one of the call.* types the registry stores) and an object
 * data whose call_id is 1..64 of [A-Za-z0-9_-]; call.transcript needs data.turn with an
 * index 0..100000 and role "agent"|"caller", call.interrupted an integer turn_index.
 * Returns a new reference or NULL with the reason in why.
 */
json_t *rg_call_event_check(const void *data, size_t len, char *why, size_t why_size);

/* The stream sequence of a JetStream delivery from its ack subject
 * ($JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>, with
 * an optional domain and account hash in front); 0 when it is not one. */
uint64_t rg_js_stream_seq(const char *ack_subject);

#endif
