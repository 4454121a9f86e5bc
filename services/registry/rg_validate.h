/*
 * rg_validate: the agent and phone-number documents of the REST API.
 *
 * Each validator takes the document a client sent (a create body, or the stored document
 * with a JSON merge patch applied) and returns the normalised document to store: fields in
 * schema order, defaults filled in, server fields (id, object, version, timestamps) absent.
 * Every problem found goes into errs (all at once, up to RG_ERRORS_MAX) and NULL is
 * returned when there is any.
 *
 * Ownership: `doc` is borrowed; the result is a new reference. Threads: any.
 */
#ifndef RG_VALIDATE_H
#define RG_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>

#include "rg_errors.h"

#define RG_METADATA_MAX_BYTES 16384
#define RG_FLOW_MAX_NODES 200

/* Server fields of each object: in a request body they are an error ("is read-only"). */
extern const char *const rg_agent_readonly[];
extern const char *const rg_number_readonly[];

json_t *rg_agent_validate(const json_t *doc, rg_errors_t *errs);

/*
 * A phone number document: {number, agent_id, outbound_trunk {uri, username, password}}.
 * Only the shape is checked here (agent_id is an agent of the caller's org: the database
 * checks that). outbound_trunk.has_password is read-only.
 */
json_t *rg_number_validate(const json_t *doc, rg_errors_t *errs);

/*
 * Reports every read-only key at the top of a merge patch (and has_password inside
 * outbound_trunk for numbers) into errs, and returns a copy of the patch without them.
 */
json_t *rg_patch_strip_readonly(const json_t *patch, const char *const *readonly, bool number,
                                rg_errors_t *errs);

/* True when s is prefix + 20 lowercase hex characters (an id made by lc_id_new). */
bool rg_id_valid(const char *s, const char *prefix);

#endif
