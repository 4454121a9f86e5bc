/*
 * md_flow: the flow response engine (response_engine.type = "flow"): walks the nodes of an
 * agent's flow as the control plane validated them (services/registry/flow_validate.c):
 *
 *   say      speak text, then go to next
 *   listen   speak prompt (optional), wait timeout_ms for the caller's words (or DTMF
 *            digits), store them in `variable`, go to next (also on no input, with "")
 *   menu     speak prompt, wait for a choice: a digit, or a word among a choice's keywords;
 *            no input -> no_input_prompt, no match -> no_match_prompt, each a retry; past
 *            `retries`, go to fallback
 *   transfer speak message (optional), then transfer the call to `to`
 *   webhook  call `url` (a tool call through voxi-webhooks) with the variables as arguments;
 *            the JSON result goes to variables[result_variable], and each scalar field of
 *            a result object also to <result_variable>_<field> (templates name plain
 *            variables: {{order_status}}); on failure to on_error (or next)
 *   hangup   speak message (optional), then hang up
 *
 * Text fields are templates: {{name}} (or {{name.field}}) takes a variable: strings as they
 * are, numbers, booleans, objects and arrays as JSON text, null or missing empty.
 *
 * The engine does no I/O: it calls the ops below and is driven by what happened (the
 * speech ended, the caller said or pressed something, nothing came in time, the webhook
 * answered). A step limit (MD_FLOW_MAX_STEPS without waiting for the caller) stops a loop of
 * say nodes that would never end.
 *
 * Threads: an instance is used by one thread at a time.
 */
#ifndef MD_FLOW_H
#define MD_FLOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lc_status.h"

#define MD_FLOW_MAX_STEPS 64
#define MD_FLOW_TEXT_MAX 4096

typedef struct md_flow md_flow_t;

typedef struct {
    /* Speak text (the flow waits for md_flow_on_said when it needs the end). */
    void (*say)(void *arg, const char *text);
    /* Start accepting input; phrases: the words that matter now (NULL-terminated, may be
     * empty) for a keyword recogniser; timeout_ms counts from the end of the speech. */
    void (*listen)(void *arg, const char *const *phrases, int timeout_ms);
    /* Stop accepting input (the node is done with it). */
    void (*stop_listening)(void *arg);
    void (*hangup)(void *arg, const char *reason);
    void (*transfer)(void *arg, const char *to);
    /* Call a tool; answer with md_flow_on_webhook. args_json: a JSON object (borrowed). */
    void (*webhook)(void *arg, const char *url, const char *args_json, int timeout_ms);
    /* The flow moved to node id (for logs and tests; optional). */
    void (*entered)(void *arg, const char *node_id, const char *type);
    void *arg;
} md_flow_ops_t;

/*
 * engine: the agent's response_engine object (borrowed; it must outlive the flow).
 * variables: the call's variables (taken; NULL = {}). LC_ERR_INVALID when the engine has no
 * start node or nodes.
 */
lc_status_t md_flow_create(const json_t *engine, json_t *variables, const md_flow_ops_t *ops,
                           md_flow_t **out);
void md_flow_destroy(md_flow_t *f);

/* Runs from the start node. */
void md_flow_start(md_flow_t *f);
/* The speech the flow asked for has been played (or interrupted by the caller). */
void md_flow_on_said(md_flow_t *f);
/* The caller said text (a final transcript; may be empty) or pressed digit (text NULL). */
void md_flow_on_input(md_flow_t *f, const char *text, char digit);
/* Nothing came within the listen timeout. */
void md_flow_on_timeout(md_flow_t *f);
/* The webhook answered: ok and its JSON result (NULL when none). */
void md_flow_on_webhook(md_flow_t *f, bool ok, const char *result_json);

/* True while the flow waits for caller input. */
bool md_flow_listening(const md_flow_t *f);
/* True once the flow ended (hung up, transferred or ran out of nodes). */
bool md_flow_done(const md_flow_t *f);
/* The call's variables (borrowed). */
json_t *md_flow_variables(md_flow_t *f);

/* Fills tmpl's {{variables}} from vars into out (always NUL-terminated, cut at size). */
void md_flow_interpolate(const char *tmpl, const json_t *vars, char *out, size_t size);
/* True when the caller's words hit keyword (case-insensitive, on word boundaries). */
bool md_flow_keyword_match(const char *text, const char *keyword);

#endif
