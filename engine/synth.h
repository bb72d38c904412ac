/*
 * synth.h - random-weight llama models of realistic shapes, for benchmarks
 * and tests that need a model of a given size but not a trained one.
 *
 * The file is a complete llama GGUF: llama.* hyper-parameters, the
 * tokenizer.* metadata copied from a real GGUF (so its vocabulary, and the
 * file as a whole, load in llama.cpp too), and every tensor a llama loader
 * expects: token_embd, output_norm, output, and per block attn_norm, attn_q,
 * attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_down, ffn_up. Matrix
 * weights are drawn from N(0, std^2) (std 0.02 by default), norm weights are
 * 1. Tensor types follow quantize.h's plan for the requested file type, so a
 * synthesized Q4_K_M file has exactly the types llama-quantize would give a
 * real model of that shape.
 *
 * Each row's values come from a generator seeded by (seed, tensor name, row),
 * so the output depends only on the seed - not on the thread count - and is
 * produced a chunk at a time: rows are generated, converted and appended to
 * the spool file (quantize.h), which the GGUF writer then copies from. A
 * 1.1B-parameter model never has more than a few chunks in memory.
 */
#ifndef QUARRY_SYNTH_H
#define QUARRY_SYNTH_H

#include <stdint.h>

#include "engine/error.h"
#include "engine/quantize.h"

struct quarry_synth_shape {
    char name[48];         /* the named shape, or "custom" */
    uint32_t n_embd;       /* embedding length */
    uint32_t n_layer;      /* blocks */
    uint32_t n_head;       /* query heads */
    uint32_t n_head_kv;    /* key/value heads (GQA when < n_head) */
    uint32_t n_ff;         /* feed-forward length */
    uint32_t n_vocab;      /* 0: take the vocabulary file's size */
    uint32_t n_ctx;        /* llama.context_length */
};

/* Named shapes: "stories260K", "tinyllama-1.1b", "llama-7b-1layer".
 * Returns 0, or QUARRY_ENOTFOUND. */
int quarry_synth_shape_named(const char *name, struct quarry_synth_shape *out);
/* Names of the named shapes, NULL-terminated. */
const char *const *quarry_synth_shape_names(void);

/* Parses "embd=2048,layers=22,heads=32,kv_heads=4,ff=5632[,vocab=32000][,ctx=2048]"
 * (kv_heads defaults to heads, ctx to 2048, vocab to the vocabulary file's). */
int quarry_synth_parse_dims(const char *spec, struct quarry_synth_shape *out, quarry_error *err);

/* Checks that a shape is a valid llama (heads divide the embedding, KV heads
 * divide the heads, head size even, sizes within GGUF limits). */
int quarry_synth_check_shape(const struct quarry_synth_shape *s, quarry_error *err);

struct quarry_synth_params {
    struct quarry_synth_shape shape;
    int ftype;                           /* enum quarry_ftype */
    const char *vocab_from;              /* GGUF whose tokenizer.* keys are copied */
    const char *out_path;
    uint64_t seed;
    float weight_std;                    /* <= 0: 0.02 */
    int n_threads;                       /* <= 0: one per physical core */
    quarry_quant_progress_fn progress;   /* may be NULL; before each tensor */
    void *user;
};

int quarry_synth(const struct quarry_synth_params *p, quarry_error *err);

#endif
