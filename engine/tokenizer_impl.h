/*
 * tokenizer_impl.h - internals shared by the tokenizer's files:
 * tokenizer_load.c (loading, containers), tokenizer.c (special tokens, tokenizing),
 * tokenizer_detok.c (detokenizing, streaming),
 * tokenizer_spm.c (the SentencePiece-style merge loop) and tokenizer_bpe.c
 * (pre-tokenizer table, regex split, byte-level BPE merges).
 * Not a public header.
 */
#ifndef QUARRY_TOKENIZER_IMPL_H
#define QUARRY_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/tokenizer.h"
#include "engine/unicode_regex.h"

/* Our own attribute bit (not in llama.cpp's enum): the token ends generation. */
#define QTOK_ATTR_EOG (1u << 15)

/* A table of byte strings stored back to back in one buffer. */
struct qtok_strtab {
    char *data;
    size_t *off; /* n + 1 offsets: string i is data[off[i] .. off[i+1]) */
    size_t n;
};

static inline const char *qtok_str(const struct qtok_strtab *t, size_t i, size_t *len)
{
    *len = t->off[i + 1] - t->off[i];
    return t->data + t->off[i];
}

/* Open-addressing hash map from the strings of a qtok_strtab to their index. */
struct qtok_map {
    int32_t *slot;  /* string index, -1 = empty */
    uint32_t *hash; /* hash of the slot's string */
    size_t mask;    /* slots - 1 (a power of two) */
    const struct qtok_strtab *keys;
};

uint32_t qtok_hash(const char *s, size_t len);
/* Index of the string equal to s[0..len), or -1. */
int32_t qtok_map_find(const struct qtok_map *m, const char *s, size_t len);

/* A growable id list. */
struct qtok_ids {
    int32_t *v;
    size_t n, cap;
};
int qtok_ids_push(struct qtok_ids *ids, int32_t id);

struct qtok_pre; /* a row of the BPE pre-tokenizer table (tokenizer_bpe.c) */

struct quarry_tokenizer {
    enum quarry_vocab_type type;
    size_t n_vocab;
    struct qtok_strtab tokens;   /* token texts ("[EMPTY_i]" for empty ones, as llama.cpp) */
    struct qtok_map token_map;
    float *scores;               /* n_vocab */
    uint16_t *attr;              /* n_vocab, QUARRY_TOKEN_ATTR_* | QTOK_ATTR_EOG */
    struct qtok_strtab pieces;   /* token_to_piece(special = true) of every token */

    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces;

    int32_t *special;            /* control/user-defined/unknown ids, longest text first */
    size_t n_special;
    int32_t byte_token[256];     /* SPM byte fallback: <0xNN> (or the 1-byte token), -1 */

    /* BPE */
    struct qtok_strtab merges;   /* "left right" as stored; rank = index */
    struct qtok_map merge_map;   /* first occurrence of each string */
    const struct qtok_pre *pre;
    quarry_regex **regex;
    size_t n_regex;

    char pre_name[64];
    char *warnings;              /* newline-separated, "" when none */
};

static inline bool qtok_valid_id(const struct quarry_tokenizer *tok, int32_t id)
{
    return tok && id >= 0 && (size_t)id < tok->n_vocab;
}

/* Tokenizes one fragment of plain text (no special tokens in it) and appends
 * the ids. SPM: text is the raw fragment; the caller has already prefixed the
 * space when needed; spaces are escaped here. */
int qtok_spm_tokenize(const quarry_tokenizer *tok, const char *text, size_t len,
                      struct qtok_ids *out, quarry_error *err);
int qtok_bpe_tokenize(const quarry_tokenizer *tok, const char *text, size_t len,
                      struct qtok_ids *out, quarry_error *err);

/* ---- the merge loop of SPM and BPE (tokenizer_merge.c) --------------------- */

/* A symbol of the text being tokenized: symbols form a linked list. */
struct qtok_symbol {
    int prev, next;   /* live neighbours, -1 at the ends */
    const char *text; /* into the caller's text */
    size_t n;         /* bytes; 0 once merged into its left neighbour */
};

/* A queued pair of adjacent symbols. The pair of highest priority is merged
 * first, the leftmost among equals. */
struct qtok_bigram {
    int left, right;
    double priority; /* SPM: the token's score; BPE: minus the merge rank */
    size_t size;     /* bytes of the pair when it was queued */
};

struct qtok_bigram_heap {
    struct qtok_bigram *v;
    size_t n, cap;
};

/* Queues b; 0, or -1 when out of memory. */
int qtok_bigram_push(struct qtok_bigram_heap *h, struct qtok_bigram b);

/* Cuts text[0..n) into UTF-8 characters (by lead byte; a truncated last one
 * keeps what is left) as a linked list in sym[] (room for n) and returns how
 * many there are. */
int qtok_symbols_utf8(const char *text, size_t n, struct qtok_symbol *sym);

/* Offers the adjacent pair (left, right) - either may be -1, then nothing
 * happens - for merging: the callback queues it with qtok_bigram_push when it
 * merges to something. Returns 0, or -1 when out of memory. */
typedef int (*qtok_offer_pair_fn)(void *ctx, int left, int right);

/* The merge loop over n_sym symbols (heap emptied first; the caller frees its
 * array): every adjacent pair is offered, then the best queued pair is merged
 * and its new neighbour pairs offered, until none is left. Returns 0, or -1
 * when out of memory. */
int qtok_merge_symbols(struct qtok_symbol *sym, int n_sym, struct qtok_bigram_heap *heap,
                       qtok_offer_pair_fn offer, void *ctx);

/* BPE setup from the file: merges, the pre-tokenizer row named by
 * tokenizer.ggml.pre (flags into tok: clean_spaces, ignore_merges, add_bos,
 * bos), compiled regexes. */
int qtok_bpe_load(quarry_tokenizer *tok, const gguf_file *f, quarry_error *err);
void qtok_bpe_free(quarry_tokenizer *tok);

/* Builds a qtok_map over keys; with first_wins, a repeated string maps to its
 * first index, otherwise repeats are an error (returns QUARRY_EFORMAT with the
 * duplicate's index in *dup). */
int qtok_map_build(struct qtok_map *m, const struct qtok_strtab *keys, bool first_wins,
                   size_t *dup);
void qtok_map_free(struct qtok_map *m);

/* Copies a GGUF string array into a strtab (empty strings become "[EMPTY_i]"
 * when empty_names is set). */
int qtok_strtab_from_gguf(struct qtok_strtab *t, const struct gguf_array *a, bool empty_names);
void qtok_strtab_free(struct qtok_strtab *t);

/* Appends a line to tok->warnings. */
void qtok_warn(quarry_tokenizer *tok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
