/*
 * unicode_regex.h - a small regex engine over Unicode codepoints, enough for
 * the pre-tokenizer patterns of byte-level BPE vocabularies (the HF
 * tokenizer.json "Split" regexes llama.cpp lists per tokenizer.ggml.pre).
 *
 * Why our own: the patterns need \p{L}/\p{N}/\p{P}... classes over codepoints,
 * and llama.cpp's results are those of a backtracking (Perl/ECMAScript style,
 * leftmost-first alternation, greedy quantifiers) matcher; C has nothing like
 * that without a dependency. Supported syntax:
 *   literals (UTF-8), escapes \r \n \t \f \v \xHH \uHHHH and escaped punctuation,
 *   classes [...] / [^...] with ranges, \s \S \d \D \w \W \p{X} \P{X} (X one of
 *   L N P S M Z C), '.', anchors ^ $, groups (...) (?:...), lookahead (?=...)
 *   (?!...), alternation |, quantifiers ? * + {n} {n,} {n,m} and lazy forms.
 * Not supported (compile error): backreferences, lookbehind, (?i), \b, and
 * unbounded quantifiers over something that can match empty.
 *
 * Matching is a backtracking VM with an explicit, growable stack (no recursion
 * per input character), so long inputs cannot overflow the C stack.
 */
#ifndef QUARRY_UNICODE_REGEX_H
#define QUARRY_UNICODE_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

typedef struct quarry_regex quarry_regex;

/* Reusable backtracking stack; zero-initialise, free with quarry_regex_scratch_free. */
struct quarry_regex_scratch {
    size_t *stack; /* pairs (pc, pos) */
    size_t top, cap;
};
void quarry_regex_scratch_free(struct quarry_regex_scratch *s);

/* Compiles pattern (UTF-8, NUL-terminated). */
int quarry_regex_compile(const char *pattern, quarry_regex **out, quarry_error *err);
void quarry_regex_free(quarry_regex *re);

/* Tries to match at exactly position pos of the text cps[0..n) (flags[i] =
 * quarry_unicode_flags(cps[i])). Returns the end of the leftmost-first match
 * (>= pos), -1 when there is none, -2 when out of memory. */
long quarry_regex_match_at(const quarry_regex *re, const uint32_t *cps, const uint8_t *flags,
                           size_t n, size_t pos, struct quarry_regex_scratch *scratch);

/* Refines a split of cps into chunks (lengths in[0..n_in), summing to the text
 * length) the way llama.cpp's unicode_regex_split does for one regex: inside
 * each chunk (seen as a whole text of its own), every match becomes a chunk and
 * so does every run of unmatched codepoints between matches. Empty matches are
 * ignored. *out is malloc'd (free it); *n_out its length. */
int quarry_regex_split(const quarry_regex *re, const uint32_t *cps, const uint8_t *flags,
                       const size_t *in, size_t n_in, size_t **out, size_t *n_out,
                       struct quarry_regex_scratch *scratch, quarry_error *err);

#endif
