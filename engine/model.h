/*
 * model.h - a llama-family transformer: its hyper-parameters and weights
 * loaded from a GGUF file, and the batched forward pass that turns tokens into
 * logits.
 *
 * Loading reads every hyper-parameter from the file's metadata (keys prefixed
 * with the architecture name, as llama.cpp writes them) and checks every
 * tensor's presence, shape and type against them; a file that does not fit is
 * refused with a message naming the tensor. Weight matrices are views into the
 * mapped file, in whatever type they are stored. What differs between
 * architectures of the family (tensor names, rope pairing, q/k/v biases) is a
 * row of a small table in model.c; "llama" is the one supported today.
 *
 * Running needs a context (quarry_context): the KV cache for a number of
 * sequences, the run-state buffers and the thread pool. quarry_forward()
 * processes one batch (engine/batch.h): any number of tokens from any of the
 * context's sequences, each attending causally to its own sequence only.
 *
 * The forward pass, per layer (x is the residual stream, one row per token):
 *   xb = rmsnorm(x) * attn_norm
 *   q, k, v = xb Wq^T, xb Wk^T, xb Wv^T       rope(q), rope(k) at each token's position
 *   k, v -> KV cache;  a = attention(q, cached k, cached v)   (causal, GQA)
 *   x += a Wo^T
 *   xb = rmsnorm(x) * ffn_norm
 *   x += (silu(xb Wgate^T) * (xb Wup^T)) Wdown^T
 * then logits = (rmsnorm(x) * output_norm) Woutput^T for the flagged tokens.
 */
#ifndef QUARRY_MODEL_H
#define QUARRY_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/batch.h"
#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/kvcache.h"
#include "engine/threadpool.h"
#include "kernels/rope.h"
#include "kernels/types.h"

/* What varies between the architectures of the llama family. */
struct quarry_arch {
    const char *name;                 /* general.architecture, and the metadata key prefix */
    enum quarry_rope_style rope_style;
    bool qkv_bias;                    /* blk.N.attn_{q,k,v}.bias exist */
    /* Tensor names; per-layer ones are printf formats taking the layer index. */
    const char *token_embd, *output_norm, *output, *rope_freqs;
    const char *attn_norm, *attn_q, *attn_k, *attn_v, *attn_output;
    const char *attn_q_bias, *attn_k_bias, *attn_v_bias;
    const char *ffn_norm, *ffn_gate, *ffn_up, *ffn_down;
};

/* The architecture called name, or NULL when quarry does not know it. */
const struct quarry_arch *quarry_arch_find(const char *name, size_t len);

struct quarry_hparams {
    int32_t n_vocab;         /* token count */
    int32_t n_ctx_train;     /* context_length the model was trained (or converted) with */
    int32_t n_embd;          /* width of the residual stream */
    int32_t n_layer;
    int32_t n_ff;            /* hidden width of the feed-forward network */
    int32_t n_head;          /* query heads */
    int32_t n_head_kv;       /* key/value heads (n_head / n_head_kv queries share one) */
    int32_t head_dim;        /* values per head: n_embd / n_head unless key_length says */
    int32_t n_rot;           /* values per head that rope rotates */
    float rope_freq_base;
    float rope_freq_scale;   /* 1 / rope.scaling.factor for linear scaling, else 1 */
    float norm_eps;          /* rmsnorm epsilon */
};

/* A weight matrix of n_rows rows of n_cols values of type `type`, row-major:
 * a view into the mapped file. As GGUF writes it, ne[0] = n_cols, ne[1] = n_rows. */
struct quarry_weight {
    enum quarry_type type;
    int64_t n_rows, n_cols;
    const void *data;
};

struct quarry_layer {
    const float *attn_norm;       /* [n_embd] */
    struct quarry_weight wq;      /* [n_head * head_dim][n_embd] */
    struct quarry_weight wk;      /* [n_head_kv * head_dim][n_embd] */
    struct quarry_weight wv;      /* [n_head_kv * head_dim][n_embd] */
    const float *bq, *bk, *bv;    /* q/k/v biases when the architecture has them, else NULL */
    struct quarry_weight wo;      /* [n_embd][n_head * head_dim] */
    const float *ffn_norm;        /* [n_embd] */
    struct quarry_weight w_gate;  /* [n_ff][n_embd] */
    struct quarry_weight w_up;    /* [n_ff][n_embd] */
    struct quarry_weight w_down;  /* [n_embd][n_ff] */
};

typedef struct quarry_model {
    const struct quarry_arch *arch;
    struct quarry_hparams hp;
    struct quarry_weight token_embd;  /* [n_vocab][n_embd] */
    struct quarry_layer *layers;      /* [n_layer] */
    const float *output_norm;         /* [n_embd] */
    struct quarry_weight output;      /* [n_vocab][n_embd]; token_embd when the file ties them */
    bool output_tied;
    const float *rope_freqs;          /* [n_rot / 2] frequency divisors (llama 3), or NULL */
    struct quarry_rope_params rope;   /* rope settings for quarry_rope_cache/apply */
    /* owned */
    gguf_file *own_file;              /* set when the model opened the file itself */
    float *vectors;                   /* float copies of 1-D tensors not stored as F32 */
} quarry_model;

/* Builds a model over an open file, which must stay open until the model is
 * freed. Returns 0, or QUARRY_EFORMAT (missing/mis-shaped tensor, bad
 * metadata), QUARRY_EUNSUPPORTED (unknown architecture, tensor type without
 * kernels, unsupported rope scaling), QUARRY_ENOMEM. */
int quarry_model_load(const gguf_file *f, quarry_model **out, quarry_error *err);
/* Opens path and loads it; the model owns the file. */
int quarry_model_open(const char *path, quarry_model **out, quarry_error *err);
void quarry_model_free(quarry_model *m);

/* ---- running ------------------------------------------------------------ */

typedef struct quarry_context quarry_context;

struct quarry_context_params {
    int32_t n_ctx;             /* positions per sequence; 0 = the model's context_length */
    int32_t n_seq;             /* sequences, ids 0 .. n_seq-1 (default 1) */
    enum quarry_type kv_type;  /* KV cache type: F16 (default), Q8_0 or F32 */
    quarry_threadpool *pool;   /* borrowed, may be NULL (single thread); must outlive the context */
};

void quarry_context_params_default(struct quarry_context_params *p);

int quarry_context_new(const quarry_model *m, const struct quarry_context_params *p,
                       quarry_context **out, quarry_error *err);
void quarry_context_free(quarry_context *ctx);

/* The context's KV cache, for quarry_kvcache_clear/copy/truncate/seq_len. */
quarry_kvcache *quarry_context_kv(quarry_context *ctx);

/* Runs one batch through the model: every token's K and V join its sequence's
 * cache, and for each flagged token (see batch.h), in batch order, n_vocab
 * logits are written to logits (quarry_batch_n_outputs(b) rows; logits may be
 * NULL when there are none). ctx must have been made for m.
 * On error (bad batch, context full: QUARRY_ERANGE, out of memory) no
 * sequence's length changes. */
int quarry_forward(const quarry_model *m, quarry_context *ctx, const quarry_batch *b,
                   float *logits, quarry_error *err);

#endif
