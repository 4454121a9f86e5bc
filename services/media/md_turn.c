#include "md_turn.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define WORDS_MAX 64
#define WORD_BYTES 48

/* hesitation sounds a recogniser makes of breath and noise: never words of a barge-in */
static const char *const fillers[] = {"ah", "uh", "um", "er", "eh", "hm", "hmm", "mm", NULL};

void
md_turn_init(md_turn_t *t, const md_turn_opts_t *opts)
{
    memset(t, 0, sizeof(*t));
    t->opts = *opts;
}

md_turn_event_t
md_turn_frame(md_turn_t *t, const md_vad_result_t *v, bool agent_speaking, int64_t now_ms)
{
    if (!t->in_speech) {
        if (!v->speech)
            return MD_TURN_NONE;
        t->in_speech = true;
        t->barged = false;
        t->speech_start_ms = now_ms - (int64_t) v->speech_ms;
        /* the onset frames were speech frames */
        t->voiced_ms = (int) v->speech_ms;
        t->speech_end_ms = now_ms;
        return MD_TURN_SPEECH_START;
    }
    if (v->frame_speech) {
        t->voiced_ms += MD_VAD_FRAME_MS;
        t->speech_end_ms = now_ms;
    }
    if (agent_speaking && t->opts.interruptions && !t->barged &&
        t->voiced_ms >= t->opts.min_speech_ms && v->frame_speech) {
        t->barged = true;
        return MD_TURN_BARGE_IN;
    }
    if ((int) v->silence_ms >= t->opts.silence_ms) {
        t->in_speech = false;
        return MD_TURN_SPEECH_END;
    }
    return MD_TURN_NONE;
}

/* Splits text into lower-case words (letters, digits, apostrophes and hyphens). */
static int
split_words(const char *text, char words[][WORD_BYTES], int max)
{
    int n = 0;
    const char *p = text;
    while (*p && n < max) {
        while (*p && !(isalnum((unsigned char) *p) || *p == '\''))
            p++;
        if (*p == '\0')
            break;
        size_t len = 0;
        while (*p && (isalnum((unsigned char) *p) || *p == '\'' || *p == '-')) {
            if (len + 1 < WORD_BYTES)
                words[n][len++] = (char) tolower((unsigned char) *p);
            p++;
        }
        words[n][len] = '\0';
        n++;
    }
    return n;
}

int
md_turn_count_words(const char *text, const char *const *ignore)
{
    char words[WORDS_MAX][WORD_BYTES];
    char phrase[8][WORD_BYTES];
    if (text == NULL)
        return 0;
    int n = split_words(text, words, WORDS_MAX);
    bool covered[WORDS_MAX] = {false};
    for (size_t k = 0; ignore && ignore[k]; k++) {
        int pn = split_words(ignore[k], phrase, 8);
        if (pn == 0)
            continue;
        for (int i = 0; i + pn <= n; i++) {
            bool hit = true;
            for (int j = 0; j < pn && hit; j++)
                hit = strcmp(words[i + j], phrase[j]) == 0;
            for (int j = 0; hit && j < pn; j++)
                covered[i + j] = true;
        }
    }
    int count = 0;
    for (int i = 0; i < n; i++) {
        bool filler = false;
        for (size_t k = 0; fillers[k] && !filler; k++)
            filler = strcmp(words[i], fillers[k]) == 0;
        count += covered[i] || filler ? 0 : 1;
    }
    return count;
}
