/*
 * au_orgs: voxi.auth.orgs.create (POST /v1/orgs, queue group "auth"), for platform
 * admins only: the Envelope's principal must be of kind "platform_admin" and hold
 * platform:admin (the gateway checks the scope too; this does not rely on it).
 *
 * Body {"name": 1..200 characters}; unknown fields are rejected. Creates the org and its
 * first API key (name "default", every scope) in one statement with their audit rows, then
 * publishes org.created and api_key.created and answers 201
 * {"org": {...}, "api_key": {... with "secret", shown this once}}.
 *
 * Threads: the loop thread only.
 */
#ifndef AU_ORGS_H
#define AU_ORGS_H

#include "au_ctx.h"

lc_status_t au_orgs_start(au_ctx_t *ctx);

#endif
