/*
 * tokenizer.h - text <-> token ids for GGUF models, built from the file's
 * tokenizer.ggml.* metadata the way llama.cpp's llama-vocab does it, so that a
 * model sees exactly the ids llama.cpp would give it.
 *
 * Two vocabulary kinds (tokenizer.ggml.model):
 *   "llama": SentencePiece-style (SPM): spaces become U+2581, the
 *            highest-scoring adjacent pair that is a token is merged until none
 *            is left, leftovers fall back to <0xNN> byte tokens; a space is
 *            prepended to the text (add_space_prefix, default on).
 *   "gpt2":  byte-level BPE: the text is pre-split by the regexes of its
 *            pre-tokenizer (tokenizer.ggml.pre, a table in tokenizer_bpe.c),
 *            bytes are mapped to GPT-2's printable codepoints, and merges are
 *            applied in rank order (tokenizer.ggml.merges).
 * Special tokens (control / user-defined / unknown types) found in the text are
 * cut out first (user-defined always; control and unknown only when
 * parse_special is set), as llama.cpp's tokenizer_st_partition.
 *
 * A tokenizer copies what it needs: it stays valid after gguf_close(). It is
 * read-only after loading, so one tokenizer may be used from several threads.
 */
#ifndef QUARRY_TOKENIZER_H
#define QUARRY_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/gguf.h"

typedef struct quarry_tokenizer quarry_tokenizer;

enum quarry_vocab_type {
    QUARRY_VOCAB_SPM = 1, /* tokenizer.ggml.model "llama" */
    QUARRY_VOCAB_BPE = 2, /* tokenizer.ggml.model "gpt2" */
};

/* Per-token attributes (llama.cpp's llama_token_attr; the GGUF token_type
 * values 1..6 map to NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE). */
enum {
    QUARRY_TOKEN_ATTR_UNKNOWN = 1 << 0,
    QUARRY_TOKEN_ATTR_UNUSED = 1 << 1,
    QUARRY_TOKEN_ATTR_NORMAL = 1 << 2,
    QUARRY_TOKEN_ATTR_CONTROL = 1 << 3,
    QUARRY_TOKEN_ATTR_USER_DEFINED = 1 << 4,
    QUARRY_TOKEN_ATTR_BYTE = 1 << 5,
    QUARRY_TOKEN_ATTR_LSTRIP = 1 << 7, /* strip spaces left of it when parsed from text */
    QUARRY_TOKEN_ATTR_RSTRIP = 1 << 8, /* ... right of it */
};

#define QUARRY_TOKEN_NULL (-1)

/* Builds the tokenizer of a GGUF file. Errors (QUARRY_EFORMAT unless said):
 * missing tokenizer.ggml.model or .tokens, arrays of the wrong type or length
 * (scores, token_type, merges), duplicate tokens, a regex that does not compile;
 * QUARRY_EUNSUPPORTED for other vocabulary kinds (bert, t5, rwkv, none) and
 * unknown pre-tokenizers. A special-token id key that is out of range is
 * ignored (the default is kept), as llama.cpp does; see quarry_tokenizer_warnings. */
int quarry_tokenizer_load(const gguf_file *f, quarry_tokenizer **out, quarry_error *err);
void quarry_tokenizer_free(quarry_tokenizer *tok);

/* Tokenizes text[0..len). add_special: add BOS/EOS as the model asks
 * (tokenizer.ggml.add_bos_token / add_eos_token, else the kind's default).
 * parse_special: control tokens written in the text ("<s>", "<|im_end|>")
 * become those tokens instead of being tokenized as text.
 * Writes up to cap ids; *n_out = the number of ids. If cap is too small,
 * returns QUARRY_ERANGE with *n_out = the number needed (ids may be NULL when
 * cap is 0). Invalid UTF-8 is tokenized as llama.cpp does (SPM: byte tokens;
 * BPE: each bad byte as U+FFFD). */
int quarry_tokenize(const quarry_tokenizer *tok, const char *text, size_t len, bool add_special,
                    bool parse_special, int32_t *ids, size_t cap, size_t *n_out,
                    quarry_error *err);

/* Vocabulary facts. Ids are QUARRY_TOKEN_NULL when the model has none. */
enum quarry_vocab_type quarry_tokenizer_type(const quarry_tokenizer *tok);
size_t quarry_tokenizer_n_vocab(const quarry_tokenizer *tok);
int32_t quarry_tokenizer_bos(const quarry_tokenizer *tok);
int32_t quarry_tokenizer_eos(const quarry_tokenizer *tok);
int32_t quarry_tokenizer_eot(const quarry_tokenizer *tok);
int32_t quarry_tokenizer_unk(const quarry_tokenizer *tok);
int32_t quarry_tokenizer_pad(const quarry_tokenizer *tok);
bool quarry_tokenizer_add_bos(const quarry_tokenizer *tok);
bool quarry_tokenizer_add_eos(const quarry_tokenizer *tok);
/* The pre-tokenizer in use (BPE: tokenizer.ggml.pre or "default"; SPM: "default"). */
const char *quarry_tokenizer_pre(const quarry_tokenizer *tok);
/* Load-time notes (bad special ids ignored, missing pre-tokenizer, ...),
 * newline-separated; "" when none. */
const char *quarry_tokenizer_warnings(const quarry_tokenizer *tok);

/* End of generation: EOS, EOT, EOM and the tokens llama.cpp treats the same
 * way ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", ...). */
bool quarry_tokenizer_is_eog(const quarry_tokenizer *tok, int32_t id);
/* QUARRY_TOKEN_ATTR_* bits of id (0 for an invalid id). */
unsigned quarry_tokenizer_attr(const quarry_tokenizer *tok, int32_t id);
/* The vocabulary string of id (as stored: U+2581 for spaces, GPT-2 byte
 * characters), NULL for an invalid id. Not NUL-terminated. */
const char *quarry_tokenizer_token_text(const quarry_tokenizer *tok, int32_t id, size_t *len);
/* Score of id (0 when the file has none or id is invalid). */
float quarry_tokenizer_score(const quarry_tokenizer *tok, int32_t id);
/* The id of an exact vocabulary string, or QUARRY_TOKEN_NULL. */
int32_t quarry_tokenizer_find(const quarry_tokenizer *tok, const char *text, size_t len);

/* The bytes token id stands for in text (llama_token_to_piece): U+2581 as a
 * space and <0xNN> as the byte (SPM), GPT-2 characters decoded to bytes (BPE).
 * Control and unknown tokens give their text when special is set, else "".
 * A piece may be an incomplete UTF-8 sequence. NULL for an invalid id. */
const char *quarry_token_piece(const quarry_tokenizer *tok, int32_t id, bool special, size_t *len);

/* Detokenizes ids into out (llama_detokenize): pieces concatenated; with SPM's
 * add_space_prefix the first piece loses one leading space; remove_special
 * drops a leading BOS / trailing EOS the model adds itself; unparse_special
 * renders control tokens as their text; BPE vocabularies that ask for it get
 * llama.cpp's clean-up of spaces before punctuation (" ," -> ","). If cap is
 * too small, returns QUARRY_ERANGE with *n_out = bytes needed. No NUL is written. */
int quarry_detokenize(const quarry_tokenizer *tok, const int32_t *ids, size_t n_ids,
                      bool remove_special, bool unparse_special, char *out, size_t cap,
                      size_t *n_out, quarry_error *err);

/* Streaming detokenizer: feed ids one at a time as they are generated and get
 * text that never ends inside a UTF-8 character: an incomplete multi-byte
 * sequence at the end of a piece (byte tokens, BPE pieces that split a
 * character) is held back until the bytes that complete it arrive. Bytes that
 * can never become valid UTF-8 are passed through as they are. The output is
 * the concatenation of the pieces (no BPE space clean-up). */
struct quarry_detok_stream {
    const quarry_tokenizer *tok;
    bool special;     /* render control tokens as text */
    bool strip_space; /* drop one leading space of the first piece (SPM add_space_prefix) */
    bool started;
    uint8_t n_held;
    char held[4];
};
/* special: as quarry_token_piece. strip_leading_space: when the model uses
 * add_space_prefix, remove the space of the first piece, as quarry_detokenize
 * does (for a stream that starts with the prompt's first token). */
void quarry_detok_stream_init(struct quarry_detok_stream *s, const quarry_tokenizer *tok,
                              bool special, bool strip_leading_space);
/* Adds id; writes the text that is now complete to out (up to cap bytes; at
 * most the piece length + 3 are ever needed). On QUARRY_ERANGE nothing is
 * consumed and *n_out is the room needed; QUARRY_EINVAL for an invalid id. */
int quarry_detok_stream_push(struct quarry_detok_stream *s, int32_t id, char *out, size_t cap,
                             size_t *n_out, quarry_error *err);
/* Ends the stream: writes the held bytes, if any (<= 3), as they are. */
size_t quarry_detok_stream_flush(struct quarry_detok_stream *s, char out[4]);

#endif
