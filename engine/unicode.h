/*
 * unicode.h - the bits of Unicode the tokenizers need: UTF-8 decoding and
 * encoding with llama.cpp's exact rules, per-codepoint properties (general
 * category and White_Space, from the generated table in unicode_data.c) for the
 * pre-tokenizer regexes, and GPT-2's byte <-> printable-codepoint mapping used
 * by byte-level BPE vocabularies.
 */
#ifndef QUARRY_UNICODE_H
#define QUARRY_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Codepoint property bits (values fixed by tools/gen_unicode.py). */
enum {
    QUARRY_UCP_NUMBER = 1 << 0,      /* \p{N} */
    QUARRY_UCP_LETTER = 1 << 1,      /* \p{L} */
    QUARRY_UCP_SEPARATOR = 1 << 2,   /* \p{Z} */
    QUARRY_UCP_MARK = 1 << 3,        /* \p{M} */
    QUARRY_UCP_PUNCTUATION = 1 << 4, /* \p{P} */
    QUARRY_UCP_SYMBOL = 1 << 5,      /* \p{S} */
    QUARRY_UCP_CONTROL = 1 << 6,     /* \p{C} (includes unassigned codepoints) */
    QUARRY_UCP_WHITESPACE = 1 << 7,  /* \s: Unicode White_Space */
};

#define QUARRY_UNICODE_MAX 0x110000u
#define QUARRY_UNICODE_REPLACEMENT 0xFFFDu

/* The generated table (unicode_data.c): runs of codepoints sharing flags. */
extern const size_t quarry_unicode_n_runs;
extern const uint32_t quarry_unicode_run_start[];
extern const uint8_t quarry_unicode_run_flags[];

/* QUARRY_UCP_* bits of cp; 0 for cp >= 0x110000. */
uint8_t quarry_unicode_flags(uint32_t cp);

/* Length of the UTF-8 sequence a byte starts, judged from its top four bits
 * only (continuation bytes count 1), as llama.cpp's unicode_len_utf8. */
size_t quarry_utf8_len(uint8_t lead);

/* Decodes one codepoint at s (n > 0 bytes available) as llama.cpp does: the
 * lead byte's pattern and the continuation bits are checked, overlong forms and
 * surrogates are accepted. An invalid sequence, or a result above U+10FFFF,
 * gives U+FFFD and consumes one byte. *adv = bytes consumed. */
uint32_t quarry_utf8_decode(const char *s, size_t n, size_t *adv);

/* Encodes cp (< 0x110000) into out; returns the byte count (1..4), 0 if cp is
 * out of range. */
size_t quarry_utf8_encode(uint32_t cp, char out[4]);

/* Bytes at the end of s[0..n) that form an incomplete but so far valid UTF-8
 * sequence (a lead byte followed by fewer continuation bytes than it needs):
 * 0..3. Used by the streaming detokenizer to hold them back. */
size_t quarry_utf8_incomplete_tail(const char *s, size_t n);

/* GPT-2 byte-level encoding: every byte maps to a printable codepoint
 * ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF stand for themselves, the other 68
 * bytes to U+0100.. in byte order). */
uint32_t quarry_gpt2_byte_to_cp(uint8_t b);
/* The inverse: the byte cp stands for, or -1 if cp is not one of the 256. */
int quarry_gpt2_cp_to_byte(uint32_t cp);

#endif
