/*
 * md_turn: turn-taking decisions for one call, from the VAD's per-frame results: when the
 * caller starts speaking, when the caller's turn ends (endpointing.silence_ms of silence
 * after speech), and when caller speech during the agent's speech is long enough to be a
 * barge-in (interruptions.min_speech_ms of frames the VAD calls speech: a cough-like burst
 * shorter than that never counts, even while the VAD's hangover holds its speech state).
 * Plus the word rules of a barge-in: ignore_phrases (backchannels such as "uh-huh") and
 * min_words.
 *
 * Pure logic, no I/O: unit tested in tests/unit/services/media/test_turn.c.
 * Threads: an instance is used by one thread at a time.
 */
#ifndef MD_TURN_H
#define MD_TURN_H

#include <stdbool.h>
#include <stdint.h>

#include "md_vad.h"

typedef struct {
    int silence_ms;     /* endpointing.silence_ms */
    int min_speech_ms;  /* interruptions.min_speech_ms */
    bool interruptions; /* interruptions.enabled */
} md_turn_opts_t;

typedef enum {
    MD_TURN_NONE = 0,
    MD_TURN_SPEECH_START, /* the caller started speaking (onset already min onset long) */
    MD_TURN_BARGE_IN,     /* enough caller speech while the agent speaks (once per utterance) */
    MD_TURN_SPEECH_END,   /* silence_ms of silence after speech: the caller's turn ended */
} md_turn_event_t;

typedef struct {
    md_turn_opts_t opts;
    bool in_speech;
    bool barged;
    int voiced_ms;           /* frames called speech since the onset */
    int64_t speech_start_ms; /* of the current / last utterance */
    int64_t speech_end_ms;   /* of the last utterance (its last speech frame) */
} md_turn_t;

void md_turn_init(md_turn_t *t, const md_turn_opts_t *opts);
/* One 20 ms frame ending at now_ms; agent_speaking: agent audio is playing now. */
md_turn_event_t md_turn_frame(md_turn_t *t, const md_vad_result_t *v, bool agent_speaking,
                              int64_t now_ms);

/* Words of text not covered by an ignore phrase (case-insensitive whole words, phrases as
 * word sequences, punctuation ignored) nor hesitation sounds ("ah", "uh", "um", "hmm", ...).
 * ignore: NULL-terminated, may be NULL. */
int md_turn_count_words(const char *text, const char *const *ignore);

#endif
