/*
 * md_agent_internal: what the agent runtime's files (md_agent.c, md_llm_loop.c) share. Not
 * for other modules: they use md_agent.h.
 *
 * Threads: the call's loop only.
 */
#ifndef MD_AGENT_INTERNAL_H
#define MD_AGENT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "md_agent.h"

/* Speaks text as part of the current agent turn (synthesised in order after what is
 * queued). */
void md_agent_say(md_agent_t *a, const char *text);
/* Ends the call from a later loop turn. */
void md_agent_hangup_later(md_agent_t *a, const char *reason);
/* Latency mark of the current agent turn: the LLM's first token. */
void md_agent_mark_llm_first_token(md_agent_t *a);
/* Adds LLM usage. */
void md_agent_add_llm_usage(md_agent_t *a, uint32_t prompt_tokens, uint32_t completion_tokens);
/* The runtime's context, for the LLM loop. */
md_worker_t *md_agent_worker(const md_agent_t *a);
const char *md_agent_org_id(const md_agent_t *a);
const char *md_agent_call_id(const md_agent_t *a);
const char *md_agent_agent_id(const md_agent_t *a);

#endif
