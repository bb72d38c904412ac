/*
 * prompts.h - what each request asks for: its prompt and its max_tokens.
 *
 * Two sources:
 *   synthetic - words from a fixed list of common English words (each about
 *     one token with the usual BPE/SentencePiece vocabularies, so a prompt of
 *     N words is close to N tokens; the server's usage reports the exact
 *     count). Lengths follow --prompt-tokens / --max-tokens specs: "N"
 *     (fixed), "uniform:A:B" (integers A..B) or "normal:MEAN:SD" (rounded,
 *     at least 1). With a shared-prefix ratio r, the first round(r * N) words
 *     of every prompt are the same sequence (to exercise prefix caching); the
 *     rest are drawn per request.
 *   file - a JSONL file, one object per line with "prompt" (a string) or
 *     "messages" (an OpenAI chat message array), and optionally "max_tokens";
 *     blank lines are skipped. Requests take the entries in order, wrapping
 *     around. Entries without max_tokens use the --max-tokens spec.
 * Request i's prompt and lengths depend only on (seed, i), never on the
 * order requests are sent in.
 */
#ifndef QUARRY_LOADGEN_PROMPTS_H
#define QUARRY_LOADGEN_PROMPTS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

enum qload_len_kind { QLOAD_LEN_FIXED, QLOAD_LEN_UNIFORM, QLOAD_LEN_NORMAL };

struct qload_len_spec {
    enum qload_len_kind kind;
    double a, b;   /* fixed: a; uniform: a..b; normal: mean a, standard deviation b */
};

/* Parses "N", "uniform:A:B" or "normal:MEAN:SD" (values >= 1, A <= B, SD >= 0).
 * Returns 0 or QUARRY_EINVAL. */
int qload_len_spec_parse(const char *text, struct qload_len_spec *out, quarry_error *err);
/* Writes the spec back in the same syntax. */
void qload_len_spec_format(const struct qload_len_spec *s, char *buf, size_t size);

struct qload_prompt_opts {
    struct qload_len_spec prompt_tokens;
    struct qload_len_spec max_tokens;
    double shared_prefix;      /* 0..1 */
    uint64_t seed;
    const char *file;          /* JSONL prompts file, or NULL for synthetic prompts */
};

struct qload_prompt {
    const char *text;          /* the prompt (NULL when messages_json is set); valid until the next get */
    const char *messages_json; /* a chat message array (file entries), or NULL */
    int prompt_words;          /* synthetic: words in the prompt; file: -1 */
    int max_tokens;
};

struct qload_prompts;

/* Returns 0, QUARRY_EINVAL, QUARRY_EIO, QUARRY_EFORMAT (bad JSONL line, named
 * with its line number) or QUARRY_ENOMEM. */
int qload_prompts_open(const struct qload_prompt_opts *opts, struct qload_prompts **out,
                       quarry_error *err);
void qload_prompts_free(struct qload_prompts *p);
/* Entries in the prompts file (0 for synthetic prompts). */
size_t qload_prompts_count(const struct qload_prompts *p);

/* Request `index`'s prompt. Returns 0 or QUARRY_ENOMEM. */
int qload_prompts_get(struct qload_prompts *p, uint64_t index, struct qload_prompt *out,
                      quarry_error *err);

#endif
