/*
 * md_llm_loop: the LLM response engine (response_engine.type "llm"): each final transcript
 * of the caller becomes a user message; the conversation (system prompt, user, assistant and
 * tool messages) is kept for the call and sent to an LLM session of voxi-providers; text
 * deltas go through the sentence splitter (md_sentence) and each sentence is spoken as soon
 * as it is complete. Tool calls are executed through voxi-webhooks (md_agent_tool) and their
 * results fed back to the model in a new session, at most MD_LLM_MAX_TOOL_ROUNDS times per
 * caller turn. The caller interrupting cancels generation; what had been spoken stays in the
 * context as the assistant's (cut) answer.
 *
 * Threads: the call's loop only.
 */
#ifndef MD_LLM_LOOP_H
#define MD_LLM_LOOP_H

#include <jansson.h>
#include <stdbool.h>

#include "lc_status.h"
#include "md_agent.h"

#define MD_LLM_MAX_TOOL_ROUNDS 4
#define MD_LLM_MAX_MESSAGES 200 /* older turns are dropped (the system prompt stays) */

typedef struct md_llm_loop md_llm_loop_t;

/* engine: the response_engine object (borrowed; outlives the loop). */
lc_status_t md_llm_loop_create(md_agent_t *a, const json_t *engine, md_llm_loop_t **out);
void md_llm_loop_destroy(md_llm_loop_t *l);
/* A caller turn's final transcript. */
void md_llm_loop_on_user(md_llm_loop_t *l, const char *text);
/* Barge-in: stop generating; spoken_text: what the caller heard of the answer. */
void md_llm_loop_interrupt(md_llm_loop_t *l, const char *spoken_text);
/* An agent turn finished playing (its full text). */
void md_llm_loop_on_spoken(md_llm_loop_t *l, const char *text);
/* True while generating or running tools. */
bool md_llm_loop_busy(const md_llm_loop_t *l);

#endif
