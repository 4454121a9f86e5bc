#include "md_sentence.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lc_alloc.h"

struct md_sentence {
    md_sentence_cb cb;
    void *arg;
    char buf[MD_SENTENCE_MAX_BYTES + 1];
    size_t len;
};

static const char *const abbreviations[] = {"mr", "mrs", "ms",  "dr",  "st",  "prof", "sr",
                                            "jr", "vs",  "etc", "e.g", "i.e", "no",   NULL};

md_sentence_t *
md_sentence_create(md_sentence_cb cb, void *arg)
{
    md_sentence_t *s = LC_NEW(md_sentence_t);
    s->cb = cb;
    s->arg = arg;
    return s;
}

void
md_sentence_destroy(md_sentence_t *s)
{
    free(s);
}

void
md_sentence_reset(md_sentence_t *s)
{
    s->len = 0;
}

/* Emits buf[0..n) trimmed, and keeps the rest. */
static void
emit(md_sentence_t *s, size_t n)
{
    char out[MD_SENTENCE_MAX_BYTES + 1];
    size_t a = 0, b = n;
    while (a < b && isspace((unsigned char) s->buf[a]))
        a++;
    while (b > a && isspace((unsigned char) s->buf[b - 1]))
        b--;
    memcpy(out, s->buf + a, b - a);
    out[b - a] = '\0';
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
    if (b > a)
        s->cb(s->arg, out);
}

/* True when the '.' at buf[i] ends an abbreviation or an initial. */
static bool
abbreviation_before(const md_sentence_t *s, size_t i)
{
    size_t start = i;
    while (start > 0 && (isalpha((unsigned char) s->buf[start - 1]) || s->buf[start - 1] == '.'))
        start--;
    size_t n = i - start;
    if (n == 0)
        return false;
    if (n == 1 && isupper((unsigned char) s->buf[start]))
        return true; /* "J. Smith" */
    for (size_t k = 0; abbreviations[k]; k++)
        if (strlen(abbreviations[k]) == n && strncasecmp(abbreviations[k], s->buf + start, n) == 0)
            return true;
    return false;
}

/* The end of the first complete sentence in buf (bytes to emit), or 0. */
static size_t
find_end(const md_sentence_t *s)
{
    for (size_t i = 0; i < s->len; i++) {
        char c = s->buf[i];
        if (c == '\n')
            return i + 1;
        if (c != '.' && c != '!' && c != '?')
            continue;
        size_t j = i + 1;
        while (j < s->len && strchr(".!?\"')]", s->buf[j]))
            j++;
        if (j >= s->len)
            return 0; /* the next delta decides */
        if (!isspace((unsigned char) s->buf[j])) {
            i = j - 1;
            continue;
        }
        if (c == '.' && j == i + 1 && abbreviation_before(s, i))
            continue;
        return j;
    }
    return 0;
}

void
md_sentence_feed(md_sentence_t *s, const char *text, size_t len)
{
    while (len > 0) {
        size_t room = MD_SENTENCE_MAX_BYTES - s->len;
        size_t n = len < room ? len : room;
        memcpy(s->buf + s->len, text, n);
        s->len += n;
        text += n;
        len -= n;
        size_t end;
        while ((end = find_end(s)) > 0)
            emit(s, end);
        if (s->len == MD_SENTENCE_MAX_BYTES) {
            size_t cut = 0;
            for (size_t i = s->len; i > 0 && cut == 0; i--)
                if (s->buf[i - 1] == ',')
                    cut = i;
            for (size_t i = s->len; i > 0 && cut == 0; i--)
                if (isspace((unsigned char) s->buf[i - 1]))
                    cut = i;
            emit(s, cut ? cut : s->len);
        }
    }
}

void
md_sentence_finish(md_sentence_t *s)
{
    if (s->len > 0)
        emit(s, s->len);
}
