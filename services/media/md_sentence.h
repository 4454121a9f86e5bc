/*
 * md_sentence: cuts a stream of LLM text deltas into sentences, so text-to-speech can start
 * on the first sentence while the model is still writing the rest.
 *
 * A sentence ends at '.', '!' or '?' (also a run of them, and closing quotes or brackets
 * after them) followed by white space, or at a newline; not after a few abbreviations
 * ("Mr.", "Dr.", "e.g.", ...) nor after a single capital letter ("J. Smith"), and never
 * inside a number ("3.14" has no space after the dot). Text that grows past
 * MD_SENTENCE_MAX_BYTES without an end is cut at its last comma or space there, so the
 * buffer stays bounded.
 *
 * Threads: an instance is used by one thread at a time.
 */
#ifndef MD_SENTENCE_H
#define MD_SENTENCE_H

#include <stdbool.h>
#include <stddef.h>

#define MD_SENTENCE_MAX_BYTES 400

typedef struct md_sentence md_sentence_t;

/* out: one sentence, trimmed, NUL-terminated (borrowed for the call only). */
typedef void (*md_sentence_cb)(void *arg, const char *sentence);

md_sentence_t *md_sentence_create(md_sentence_cb cb, void *arg);
/* NULL is a no-op. */
void md_sentence_destroy(md_sentence_t *s);
/* Appends a delta (len bytes, borrowed); calls cb for every sentence it completes. */
void md_sentence_feed(md_sentence_t *s, const char *text, size_t len);
/* The text is over: what is left (if not blank) is the last sentence. */
void md_sentence_finish(md_sentence_t *s);
/* Drops what is buffered (barge-in). */
void md_sentence_reset(md_sentence_t *s);

#endif
