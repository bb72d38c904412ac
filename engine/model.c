/*
 * model.c - a llama-family transformer, told as one story (see model.h):
 * the architecture table, reading hyper-parameters and weights out of a GGUF
 * file, the context (KV cache + run state), and the forward pass, layer by
 * layer. Matrix products go through kernels/matmul.h, attention through
 * kernels/flash_attn.h, the small per-row steps through rmsnorm/rope.
 */
#include "engine/model.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/flash_attn.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"

/* ---- architectures ------------------------------------------------------ */

/* Tensor names llama.cpp's converters use for the whole llama family. */
#define LLAMA_FAMILY_TENSOR_NAMES                                                              \
    .token_embd = "token_embd.weight", .output_norm = "output_norm.weight",                    \
    .output = "output.weight", .rope_freqs = "rope_freqs.weight",                              \
    .attn_norm = "blk.%d.attn_norm.weight", .attn_q = "blk.%d.attn_q.weight",                  \
    .attn_k = "blk.%d.attn_k.weight", .attn_v = "blk.%d.attn_v.weight",                        \
    .attn_output = "blk.%d.attn_output.weight", .attn_q_bias = "blk.%d.attn_q.bias",           \
    .attn_k_bias = "blk.%d.attn_k.bias", .attn_v_bias = "blk.%d.attn_v.bias",                  \
    .ffn_norm = "blk.%d.ffn_norm.weight", .ffn_gate = "blk.%d.ffn_gate.weight",                \
    .ffn_up = "blk.%d.ffn_up.weight", .ffn_down = "blk.%d.ffn_down.weight"

static const struct quarry_arch architectures[] = {
    /* llama: the converter permutes Q/K rows so that rope pairs adjacent values. */
    {.name = "llama", .rope_style = QUARRY_ROPE_NORMAL, .qkv_bias = false,
     LLAMA_FAMILY_TENSOR_NAMES},
    /* A later entry, e.g. qwen2: {.name = "qwen2", .rope_style = QUARRY_ROPE_NEOX,
     * .qkv_bias = true, LLAMA_FAMILY_TENSOR_NAMES}, once its metadata is checked. */
};

const struct quarry_arch *quarry_arch_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof architectures / sizeof architectures[0]; i++)
        if (strlen(architectures[i].name) == len && memcmp(architectures[i].name, name, len) == 0)
            return &architectures[i];
    return NULL;
}

/* ---- loading: metadata -------------------------------------------------- */

/* Sanity limits on sizes, so that every product below fits comfortably. */
#define MAX_DIM (1 << 20)
#define MAX_LAYERS 4096
#define MAX_VOCAB (1 << 24)
#define MAX_CTX (1 << 24)

struct loader {
    const gguf_file *f;
    const struct quarry_arch *arch;
    quarry_model *m;
    quarry_error *err;
    char key[160];
    char name[GGUF_MAX_NAME + 16];
    size_t vectors_cap, vectors_used; /* floats in m->vectors */
};

static const char *arch_key(struct loader *ld, const char *suffix)
{
    snprintf(ld->key, sizeof ld->key, "%s.%s", ld->arch->name, suffix);
    return ld->key;
}

/* Reads <arch>.<suffix> as an integer in [1, max]; when absent, uses def, or
 * fails if def < 0 (required key). */
static int read_int(struct loader *ld, const char *suffix, int64_t def, int64_t max,
                    int32_t *out)
{
    const char *key = arch_key(ld, suffix);
    uint64_t v;
    int rc = gguf_get_u64(ld->f, key, &v, ld->err);
    if (rc == QUARRY_ENOTFOUND) {
        if (def < 0)
            return quarry_errorf(ld->err, QUARRY_EFORMAT, "%s: missing metadata key %s",
                                 ld->f->path, key);
        *out = (int32_t)def;
        return 0;
    }
    if (rc)
        return rc;
    if (v < 1 || v > (uint64_t)max)
        return quarry_errorf(ld->err, QUARRY_EFORMAT, "%s: metadata %s = %" PRIu64
                             " is outside 1..%" PRId64, ld->f->path, key, v, max);
    *out = (int32_t)v;
    return 0;
}

/* Reads <arch>.<suffix> as a float; def when absent; must be finite and > 0. */
static int read_float(struct loader *ld, const char *suffix, float def, float *out)
{
    const char *key = arch_key(ld, suffix);
    int rc = gguf_get_f32(ld->f, key, out, ld->err);
    if (rc == QUARRY_ENOTFOUND) {
        *out = def;
        return 0;
    }
    if (rc)
        return rc;
    if (!(*out > 0.0f) || isinf(*out))
        return quarry_errorf(ld->err, QUARRY_EFORMAT, "%s: metadata %s = %g must be positive",
                             ld->f->path, key, (double)*out);
    return 0;
}

/* Rope scaling: none, or linear (positions divided by the factor). llama.cpp
 * treats a missing type as linear, and a missing factor as no scaling. */
static int read_rope_scaling(struct loader *ld, float *freq_scale)
{
    *freq_scale = 1.0f;
    struct gguf_str type = {4, "none"};
    bool have_type = false;
    int rc = gguf_get_str(ld->f, arch_key(ld, "rope.scaling.type"), &type, ld->err);
    if (rc == 0)
        have_type = true;
    else if (rc != QUARRY_ENOTFOUND)
        return rc;
    if (have_type && gguf_str_eq(type, "none"))
        return 0;
    if (have_type && !gguf_str_eq(type, "linear"))
        return quarry_errorf(ld->err, QUARRY_EUNSUPPORTED,
                             "%s: rope scaling type '%.*s' is not supported (none or linear)",
                             ld->f->path, (int)type.len, type.data);
    float factor = 0.0f;
    if ((rc = read_float(ld, "rope.scaling.factor", 0.0f, &factor)))
        return rc;
    if (factor == 0.0f && (rc = read_float(ld, "rope.scale_linear", 0.0f, &factor)))
        return rc;
    if (factor > 0.0f)
        *freq_scale = 1.0f / factor;
    return 0;
}

static int read_hparams(struct loader *ld)
{
    struct quarry_hparams *hp = &ld->m->hp;
    int rc;
    if ((rc = read_int(ld, "context_length", -1, MAX_CTX, &hp->n_ctx_train)) ||
        (rc = read_int(ld, "embedding_length", -1, MAX_DIM, &hp->n_embd)) ||
        (rc = read_int(ld, "block_count", -1, MAX_LAYERS, &hp->n_layer)) ||
        (rc = read_int(ld, "feed_forward_length", -1, MAX_DIM, &hp->n_ff)) ||
        (rc = read_int(ld, "attention.head_count", -1, MAX_DIM, &hp->n_head)) ||
        (rc = read_int(ld, "attention.head_count_kv", hp->n_head, MAX_DIM, &hp->n_head_kv)))
        return rc;
    if (hp->n_embd % hp->n_head != 0 && !gguf_find_kv(ld->f, arch_key(ld, "attention.key_length")))
        return quarry_errorf(ld->err, QUARRY_EFORMAT,
                             "%s: embedding_length %d is not a multiple of head_count %d",
                             ld->f->path, hp->n_embd, hp->n_head);
    if ((rc = read_int(ld, "attention.key_length", hp->n_embd / hp->n_head, MAX_DIM,
                       &hp->head_dim)))
        return rc;
    int32_t value_length;
    if ((rc = read_int(ld, "attention.value_length", hp->head_dim, MAX_DIM, &value_length)))
        return rc;
    if (value_length != hp->head_dim)
        return quarry_errorf(ld->err, QUARRY_EUNSUPPORTED,
                             "%s: key_length %d differs from value_length %d", ld->f->path,
                             hp->head_dim, value_length);
    if (hp->n_head % hp->n_head_kv != 0)
        return quarry_errorf(ld->err, QUARRY_EFORMAT,
                             "%s: head_count %d is not a multiple of head_count_kv %d",
                             ld->f->path, hp->n_head, hp->n_head_kv);
    if ((int64_t)hp->n_head * hp->head_dim > MAX_DIM)
        return quarry_errorf(ld->err, QUARRY_EFORMAT, "%s: %d heads of %d values is too wide",
                             ld->f->path, hp->n_head, hp->head_dim);
    if ((rc = read_int(ld, "rope.dimension_count", hp->head_dim, MAX_DIM, &hp->n_rot)))
        return rc;
    if (hp->n_rot % 2 != 0 || hp->n_rot > hp->head_dim)
        return quarry_errorf(ld->err, QUARRY_EFORMAT,
                             "%s: rope.dimension_count %d must be even and at most the head "
                             "size %d",
                             ld->f->path, hp->n_rot, hp->head_dim);
    if ((rc = read_float(ld, "rope.freq_base", 10000.0f, &hp->rope_freq_base)) ||
        (rc = read_rope_scaling(ld, &hp->rope_freq_scale)))
        return rc;
    const char *eps_key = arch_key(ld, "attention.layer_norm_rms_epsilon");
    if (!gguf_find_kv(ld->f, eps_key))
        return quarry_errorf(ld->err, QUARRY_EFORMAT, "%s: missing metadata key %s",
                             ld->f->path, eps_key);
    if ((rc = read_float(ld, "attention.layer_norm_rms_epsilon", 0.0f, &hp->norm_eps)))
        return rc;

    /* Vocabulary size: the tokenizer's list if there is one, else the
     * embedding's row count (checked against the tensor in load_weights). */
    const struct gguf_array *tokens;
    rc = gguf_get_array(ld->f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, ld->err);
    if (rc == 0) {
        if (tokens->count < 1 || tokens->count > MAX_VOCAB)
            return quarry_errorf(ld->err, QUARRY_EFORMAT, "%s: %" PRIu64 " tokens in the vocabulary",
                                 ld->f->path, tokens->count);
        hp->n_vocab = (int32_t)tokens->count;
    } else if (rc == QUARRY_ENOTFOUND) {
        const struct gguf_tensor *t = gguf_find_tensor(ld->f, ld->arch->token_embd);
        hp->n_vocab = t && t->ne[1] >= 1 && t->ne[1] <= MAX_VOCAB ? (int32_t)t->ne[1] : 0;
        if (!hp->n_vocab)
            return quarry_errorf(ld->err, QUARRY_EFORMAT,
                                 "%s: no vocabulary size (no tokenizer.ggml.tokens and no "
                                 "usable tensor %s)",
                                 ld->f->path, ld->arch->token_embd);
    } else {
        return rc;
    }
    return 0;
}

/* ---- loading: tensors --------------------------------------------------- */

static const char *layer_name(struct loader *ld, const char *fmt, int layer)
{
    /* fmt comes from the architecture table: a constant with one %d */
    snprintf(ld->name, sizeof ld->name, fmt, layer);
    return ld->name;
}

/* Finds a tensor and checks its shape is exactly ne0 (x ne1 when ne1 > 0).
 * *t = NULL and 0 when it is absent and not required. */
static int find_tensor(struct loader *ld, const char *name, bool required, int64_t ne0,
                       int64_t ne1, const struct gguf_tensor **t)
{
    *t = gguf_find_tensor(ld->f, name);
    if (!*t) {
        if (!required)
            return 0;
        return quarry_errorf(ld->err, QUARRY_EFORMAT, "%s: missing tensor %s", ld->f->path,
                             name);
    }
    const uint64_t *ne = (*t)->ne;
    const bool is_matrix = ne1 > 0;
    const bool ok = ne[0] == (uint64_t)ne0 && ne[2] == 1 && ne[3] == 1 &&
                    (is_matrix ? ne[1] == (uint64_t)ne1 : ne[1] == 1);
    if (!ok) {
        char want[64];
        if (is_matrix)
            snprintf(want, sizeof want, "%" PRId64 " x %" PRId64, ne0, ne1);
        else
            snprintf(want, sizeof want, "%" PRId64, ne0);
        return quarry_errorf(ld->err, QUARRY_EFORMAT,
                             "%s: tensor %s has shape %" PRIu64 " x %" PRIu64 " x %" PRIu64
                             " x %" PRIu64 ", expected %s from the metadata",
                             ld->f->path, name, ne[0], ne[1], ne[2], ne[3], want);
    }
    return 0;
}

/* A weight matrix [rows][cols]: a view, in any type the matrix kernels handle. */
static int load_matrix(struct loader *ld, const char *name, bool required, int64_t rows,
                       int64_t cols, struct quarry_weight *w)
{
    const struct gguf_tensor *t;
    int rc = find_tensor(ld, name, required, cols, rows, &t);
    if (rc || !t)
        return rc;
    const struct quarry_type_traits *tr = quarry_traits(t->type);
    if (!tr || !tr->vec_dot)
        return quarry_errorf(ld->err, QUARRY_EUNSUPPORTED,
                             "%s: tensor %s has type %s, for which no matrix kernels are "
                             "registered",
                             ld->f->path, name,
                             quarry_type_info(t->type) ? quarry_type_info(t->type)->name : "?");
    *w = (struct quarry_weight){t->type, rows, cols, t->data};
    return 0;
}

/* A vector of n floats (norm weights, biases, rope factors): a view when the
 * file stores F32, otherwise converted into m->vectors. */
static int load_vector(struct loader *ld, const char *name, bool required, int64_t n,
                       const float **out)
{
    *out = NULL;
    const struct gguf_tensor *t;
    int rc = find_tensor(ld, name, required, n, 0, &t);
    if (rc || !t)
        return rc;
    if (t->type == QUARRY_TYPE_F32) {
        *out = t->data;
        return 0;
    }
    const struct quarry_type_traits *tr = quarry_traits(t->type);
    if (!tr || !tr->to_float)
        return quarry_errorf(ld->err, QUARRY_EUNSUPPORTED,
                             "%s: tensor %s has type %s, which cannot be converted to float",
                             ld->f->path, name,
                             quarry_type_info(t->type) ? quarry_type_info(t->type)->name : "?");
    if (!ld->m->vectors) {
        ld->m->vectors = malloc(ld->vectors_cap * sizeof(float));
        if (!ld->m->vectors)
            return quarry_errorf(ld->err, QUARRY_ENOMEM, "%s: out of memory", ld->f->path);
    }
    if (ld->vectors_used + (size_t)n > ld->vectors_cap) /* cannot happen: cap is an upper bound */
        return quarry_errorf(ld->err, QUARRY_ENOMEM, "%s: vector storage exhausted at %s",
                             ld->f->path, name);
    float *dst = ld->m->vectors + ld->vectors_used;
    tr->to_float(t->data, dst, n);
    ld->vectors_used += (size_t)n;
    *out = dst;
    return 0;
}

static int load_layer(struct loader *ld, int i)
{
    const struct quarry_arch *a = ld->arch;
    const struct quarry_hparams *hp = &ld->m->hp;
    struct quarry_layer *L = &ld->m->layers[i];
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    int rc;
    if ((rc = load_vector(ld, layer_name(ld, a->attn_norm, i), true, hp->n_embd, &L->attn_norm)) ||
        (rc = load_matrix(ld, layer_name(ld, a->attn_q, i), true, q_dim, hp->n_embd, &L->wq)) ||
        (rc = load_matrix(ld, layer_name(ld, a->attn_k, i), true, kv_dim, hp->n_embd, &L->wk)) ||
        (rc = load_matrix(ld, layer_name(ld, a->attn_v, i), true, kv_dim, hp->n_embd, &L->wv)) ||
        (rc = load_matrix(ld, layer_name(ld, a->attn_output, i), true, hp->n_embd, q_dim,
                          &L->wo)) ||
        (rc = load_vector(ld, layer_name(ld, a->ffn_norm, i), true, hp->n_embd, &L->ffn_norm)) ||
        (rc = load_matrix(ld, layer_name(ld, a->ffn_gate, i), true, hp->n_ff, hp->n_embd,
                          &L->w_gate)) ||
        (rc = load_matrix(ld, layer_name(ld, a->ffn_up, i), true, hp->n_ff, hp->n_embd,
                          &L->w_up)) ||
        (rc = load_matrix(ld, layer_name(ld, a->ffn_down, i), true, hp->n_embd, hp->n_ff,
                          &L->w_down)))
        return rc;
    if (a->qkv_bias &&
        ((rc = load_vector(ld, layer_name(ld, a->attn_q_bias, i), true, q_dim, &L->bq)) ||
         (rc = load_vector(ld, layer_name(ld, a->attn_k_bias, i), true, kv_dim, &L->bk)) ||
         (rc = load_vector(ld, layer_name(ld, a->attn_v_bias, i), true, kv_dim, &L->bv))))
        return rc;
    return 0;
}

static int load_weights(struct loader *ld)
{
    quarry_model *m = ld->m;
    const struct quarry_hparams *hp = &m->hp;
    const struct quarry_arch *a = ld->arch;
    /* Upper bound on floats that 1-D tensors may need converted. */
    ld->vectors_cap = (size_t)hp->n_embd * (1 + 2 * (size_t)hp->n_layer) +
                      (size_t)hp->n_layer * (size_t)(hp->n_head + 2 * hp->n_head_kv) *
                          (size_t)hp->head_dim +
                      (size_t)hp->n_rot / 2;
    int rc;
    if ((rc = load_matrix(ld, a->token_embd, true, hp->n_vocab, hp->n_embd, &m->token_embd)))
        return rc;
    if (m->token_embd.type != QUARRY_TYPE_F32) {
        const struct quarry_type_traits *tr = quarry_traits(m->token_embd.type);
        if (!tr || !tr->to_float)
            return quarry_errorf(ld->err, QUARRY_EUNSUPPORTED,
                                 "%s: tensor %s has a type that cannot be converted to float",
                                 ld->f->path, a->token_embd);
    }
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return quarry_errorf(ld->err, QUARRY_ENOMEM, "%s: out of memory", ld->f->path);
    for (int i = 0; i < hp->n_layer; i++)
        if ((rc = load_layer(ld, i)))
            return rc;
    if ((rc = load_vector(ld, a->output_norm, true, hp->n_embd, &m->output_norm)) ||
        (rc = load_matrix(ld, a->output, false, hp->n_vocab, hp->n_embd, &m->output)) ||
        (rc = load_vector(ld, a->rope_freqs, false, hp->n_rot / 2, &m->rope_freqs)))
        return rc;
    if (!m->output.data) { /* tied: the output projection is the embedding matrix */
        m->output = m->token_embd;
        m->output_tied = true;
    }
    return 0;
}

int quarry_model_load(const gguf_file *f, quarry_model **out, quarry_error *err)
{
    *out = NULL;
    struct gguf_str arch_name;
    int rc = gguf_get_str(f, "general.architecture", &arch_name, err);
    if (rc)
        return rc;
    const struct quarry_arch *arch = quarry_arch_find(arch_name.data, arch_name.len);
    if (!arch)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "%s: architecture '%.*s' is not supported",
                             f->path, (int)arch_name.len, arch_name.data);
    quarry_model *m = calloc(1, sizeof *m);
    if (!m)
        return quarry_errorf(err, QUARRY_ENOMEM, "%s: out of memory", f->path);
    m->arch = arch;
    struct loader ld = {.f = f, .arch = arch, .m = m, .err = err};
    if ((rc = read_hparams(&ld)) || (rc = load_weights(&ld))) {
        quarry_model_free(m);
        return rc;
    }
    m->rope = (struct quarry_rope_params){.n_dims = m->hp.n_rot,
                                          .freq_base = m->hp.rope_freq_base,
                                          .freq_scale = m->hp.rope_freq_scale,
                                          .freq_factors = m->rope_freqs,
                                          .style = arch->rope_style};
    *out = m;
    return 0;
}

int quarry_model_open(const char *path, quarry_model **out, quarry_error *err)
{
    *out = NULL;
    gguf_file *f;
    int rc = gguf_open(path, &f, err);
    if (rc)
        return rc;
    if ((rc = quarry_model_load(f, out, err))) {
        gguf_close(f);
        return rc;
    }
    (*out)->own_file = f;
    return 0;
}

void quarry_model_free(quarry_model *m)
{
    if (!m)
        return;
    free(m->layers);
    free(m->vectors);
    gguf_close(m->own_file);
    free(m);
}

/* ---- context: KV cache and run state ------------------------------------ */

struct quarry_context {
    const quarry_model *model;
    quarry_kvcache *kv;
    quarry_threadpool *pool;       /* borrowed */
    int n_threads;
    quarry_matmul_ws *ws;

    /* Run state for up to `capacity` tokens. Row r is one token of the batch;
     * rows are ordered by sequence, so each sequence's tokens are a run. */
    int32_t capacity;
    float *x;        /* [capacity][n_embd] residual stream */
    float *xb;       /* [capacity][n_embd] normalised input / projection output */
    float *q;        /* [capacity][n_head * head_dim] */
    float *k;        /* [capacity][n_head_kv * head_dim] */
    float *v;        /* [capacity][n_head_kv * head_dim] */
    float *att;      /* [capacity][n_head * head_dim] attention output */
    float *hb;       /* [capacity][n_ff] gate, then silu(gate) * up */
    float *hb2;      /* [capacity][n_ff] up */
    float *rope_cs;  /* [capacity][n_rot] cos/sin of each row's position */
    int32_t *row_token, *row_pos, *row_seq; /* [capacity] */
    int32_t *out_rows;                      /* [capacity] rows whose logits are wanted, batch order */
    int32_t n_out;

    /* Per sequence, for the batch being run. */
    int32_t *seq_first;    /* [n_seq] first row */
    int32_t *seq_count;    /* [n_seq] rows (0: not in this batch) */
    int32_t *seq_end;      /* [n_seq] cache length after the batch */
    int32_t *seq_fill;     /* [n_seq] next row to fill while ordering the batch */
    struct quarry_attn *jobs; /* [n_seq] one layer's attention problems */
    int32_t *job_tasks;       /* [n_seq + 1] prefix sums of their task counts */

    float *attn_scratch;          /* [n_threads][attn_scratch_floats] */
    size_t attn_scratch_floats;
};

void quarry_context_params_default(struct quarry_context_params *p)
{
    *p = (struct quarry_context_params){
        .n_ctx = 0, .n_seq = 1, .kv_type = QUARRY_TYPE_F16, .pool = NULL};
}

int quarry_context_new(const quarry_model *m, const struct quarry_context_params *p,
                       quarry_context **out, quarry_error *err)
{
    *out = NULL;
    const struct quarry_hparams *hp = &m->hp;
    if (p->n_ctx < 0 || p->n_seq < 0 || p->n_ctx > MAX_CTX || p->n_seq > 1 << 16)
        return quarry_errorf(err, QUARRY_EINVAL, "context: bad n_ctx %d or n_seq %d", p->n_ctx,
                             p->n_seq);
    quarry_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return quarry_errorf(err, QUARRY_ENOMEM, "context: out of memory");
    ctx->model = m;
    ctx->pool = p->pool;
    ctx->n_threads = quarry_threadpool_size(p->pool);
    const int32_t n_seq = p->n_seq ? p->n_seq : 1;
    const struct quarry_kvcache_params kp = {
        .n_layer = hp->n_layer, .n_ctx = p->n_ctx ? p->n_ctx : hp->n_ctx_train, .n_seq = n_seq,
        .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .type = p->kv_type};
    int rc = quarry_kvcache_new(&kp, &ctx->kv, err);
    if (rc) {
        free(ctx);
        return rc;
    }
    /* The scratch one flash attention task needs depends only on the shapes. */
    const struct quarry_attn shape = {.n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
                                      .head_dim = hp->head_dim};
    ctx->attn_scratch_floats = quarry_flash_attn_scratch_floats(&shape);
    ctx->ws = quarry_matmul_ws_new();
    ctx->seq_first = calloc((size_t)n_seq, sizeof(int32_t));
    ctx->seq_count = calloc((size_t)n_seq, sizeof(int32_t));
    ctx->seq_end = calloc((size_t)n_seq, sizeof(int32_t));
    ctx->seq_fill = calloc((size_t)n_seq, sizeof(int32_t));
    ctx->jobs = calloc((size_t)n_seq, sizeof *ctx->jobs);
    ctx->job_tasks = calloc((size_t)n_seq + 1, sizeof(int32_t));
    ctx->attn_scratch = malloc((size_t)ctx->n_threads * ctx->attn_scratch_floats * sizeof(float));
    if (!ctx->ws || !ctx->seq_first || !ctx->seq_count || !ctx->seq_end || !ctx->seq_fill ||
        !ctx->jobs ||
        !ctx->job_tasks || !ctx->attn_scratch) {
        quarry_context_free(ctx);
        return quarry_errorf(err, QUARRY_ENOMEM, "context: out of memory");
    }
    *out = ctx;
    return 0;
}

static void free_run_state(quarry_context *ctx)
{
    free(ctx->x); /* one block holds every float buffer */
    free(ctx->row_token); /* and one every int buffer */
    ctx->x = NULL;
    ctx->row_token = NULL;
    ctx->capacity = 0;
}

void quarry_context_free(quarry_context *ctx)
{
    if (!ctx)
        return;
    free_run_state(ctx);
    quarry_kvcache_free(ctx->kv);
    quarry_matmul_ws_free(ctx->ws);
    free(ctx->seq_first);
    free(ctx->seq_count);
    free(ctx->seq_end);
    free(ctx->seq_fill);
    free(ctx->jobs);
    free(ctx->job_tasks);
    free(ctx->attn_scratch);
    free(ctx);
}

quarry_kvcache *quarry_context_kv(quarry_context *ctx)
{
    return ctx->kv;
}

/* Makes the run state hold n rows (it only grows). */
static int reserve_rows(quarry_context *ctx, int32_t n, quarry_error *err)
{
    if (n <= ctx->capacity)
        return 0;
    const struct quarry_hparams *hp = &ctx->model->hp;
    const size_t q_dim = (size_t)hp->n_head * hp->head_dim;
    const size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    const size_t per_row = 2 * (size_t)hp->n_embd + 2 * q_dim + 2 * kv_dim + 2 * (size_t)hp->n_ff +
                           (size_t)hp->n_rot;
    free_run_state(ctx);
    float *f = malloc((size_t)n * per_row * sizeof(float));
    int32_t *i = malloc((size_t)n * 4 * sizeof(int32_t));
    if (!f || !i) {
        free(f);
        free(i);
        return quarry_errorf(err, QUARRY_ENOMEM, "out of memory for a batch of %d tokens", n);
    }
    ctx->x = f;
    ctx->xb = ctx->x + (size_t)n * hp->n_embd;
    ctx->q = ctx->xb + (size_t)n * hp->n_embd;
    ctx->att = ctx->q + (size_t)n * q_dim;
    ctx->k = ctx->att + (size_t)n * q_dim;
    ctx->v = ctx->k + (size_t)n * kv_dim;
    ctx->hb = ctx->v + (size_t)n * kv_dim;
    ctx->hb2 = ctx->hb + (size_t)n * hp->n_ff;
    ctx->rope_cs = ctx->hb2 + (size_t)n * hp->n_ff;
    ctx->row_token = i;
    ctx->row_pos = i + n;
    ctx->row_seq = i + 2 * (size_t)n;
    ctx->out_rows = i + 3 * (size_t)n;
    ctx->capacity = n;
    return 0;
}

/* ---- the forward pass --------------------------------------------------- */

/* Checks the batch against the cache, orders its tokens into rows grouped by
 * sequence, lists the rows whose logits are wanted, and reserves cache room.
 * Changes no sequence length. */
static int plan_batch(quarry_context *ctx, const quarry_batch *b, const float *logits,
                      quarry_error *err)
{
    const quarry_model *m = ctx->model;
    const struct quarry_kvcache_params *kp = quarry_kvcache_params(ctx->kv);
    const int32_t n = b->n_tokens;
    if (n <= 0 || !b->token)
        return quarry_errorf(err, QUARRY_EINVAL, "forward: empty batch");
    for (int32_t s = 0; s < kp->n_seq; s++) {
        ctx->seq_count[s] = 0;
        ctx->seq_end[s] = quarry_kvcache_seq_len(ctx->kv, s);
    }
    for (int32_t i = 0; i < n; i++) {
        const int32_t tok = b->token[i], seq = b->seq_id ? b->seq_id[i] : 0;
        if (tok < 0 || tok >= m->hp.n_vocab)
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "forward: token %d of the batch has id %d, outside 0..%d", i, tok,
                                 m->hp.n_vocab - 1);
        if (seq < 0 || seq >= kp->n_seq)
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "forward: token %d of the batch has sequence id %d, outside "
                                 "0..%d",
                                 i, seq, kp->n_seq - 1);
        const int32_t want = ctx->seq_end[seq];
        if (b->pos && b->pos[i] != want)
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "forward: token %d of the batch has position %d, but sequence "
                                 "%d continues at position %d",
                                 i, b->pos[i], seq, want);
        ctx->seq_end[seq] = want + 1;
        ctx->seq_count[seq]++;
    }
    int32_t first = 0;
    for (int32_t s = 0; s < kp->n_seq; s++) {
        ctx->seq_first[s] = first;
        first += ctx->seq_count[s];
        if (ctx->seq_count[s] && ctx->seq_end[s] > kp->n_ctx)
            return quarry_errorf(err, QUARRY_ERANGE,
                                 "context full: sequence %d would reach %d positions, the "
                                 "context size is %d",
                                 s, ctx->seq_end[s], kp->n_ctx);
    }
    const int32_t n_out = quarry_batch_n_outputs(b);
    if (n_out > 0 && !logits)
        return quarry_errorf(err, QUARRY_EINVAL, "forward: logits wanted but no buffer given");
    int rc = reserve_rows(ctx, n, err);
    if (rc)
        return rc;
    for (int32_t s = 0; s < kp->n_seq; s++)
        if (ctx->seq_count[s] && (rc = quarry_kvcache_reserve(ctx->kv, s, ctx->seq_end[s], err)))
            return rc;

    /* Rows: each sequence's tokens in batch order (= position order), sequence
     * after sequence. */
    for (int32_t s = 0; s < kp->n_seq; s++)
        ctx->seq_fill[s] = ctx->seq_first[s];
    ctx->n_out = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t seq = b->seq_id ? b->seq_id[i] : 0;
        const int32_t r = ctx->seq_fill[seq]++;
        ctx->row_token[r] = b->token[i];
        ctx->row_seq[r] = seq;
        ctx->row_pos[r] = ctx->seq_end[seq] - ctx->seq_count[seq] + (r - ctx->seq_first[seq]);
        if (b->logits ? b->logits[i] != 0 : i == n - 1)
            ctx->out_rows[ctx->n_out++] = r;
    }
    return 0;
}

/* y[m][w->n_rows] = x[m][w->n_cols] . W^T: every matrix product of the model
 * goes through here or linear_shared below (the places for another backend
 * or an adapter hook). */
static int linear(quarry_context *ctx, const struct quarry_weight *w, const float *x, int32_t m,
                  float *y, quarry_error *err)
{
    return quarry_matmul(ctx->pool, ctx->ws, w->type, w->data, w->n_rows, w->n_cols, x, m, y,
                         err);
}

/* linear() for two or three weights of the same input (Wq/Wk/Wv, gate/up):
 * one call, so decoding quantizes x once and wakes the pool once. */
static int linear_shared(quarry_context *ctx, const struct quarry_weight *const *w, float *const *y,
                         int n_parts, const float *x, int32_t m, quarry_error *err)
{
    struct quarry_matmul_part parts[QUARRY_MATMUL_MAX_PARTS];
    for (int p = 0; p < n_parts; p++) {
        if (w[p]->n_cols != w[0]->n_cols)
            return quarry_errorf(err, QUARRY_EINVAL, "linear: weights of %lld and %lld columns",
                                 (long long)w[0]->n_cols, (long long)w[p]->n_cols);
        parts[p] = (struct quarry_matmul_part){
            .type = w[p]->type, .w = w[p]->data, .n = w[p]->n_rows, .y = y[p]};
    }
    return quarry_matmul_shared_ex(NULL, ctx->pool, ctx->ws, parts, n_parts, w[0]->n_cols, x, m,
                                   err);
}

/* x[r] = token_embd[row_token[r]] */
static void embed_tokens(quarry_context *ctx, int32_t n)
{
    const struct quarry_weight *e = &ctx->model->token_embd;
    const size_t row_bytes = quarry_row_size(e->type, e->n_cols);
    quarry_to_float_fn to_float =
        e->type == QUARRY_TYPE_F32 ? NULL : quarry_traits(e->type)->to_float;
    for (int32_t r = 0; r < n; r++) {
        const uint8_t *src = (const uint8_t *)e->data + (size_t)ctx->row_token[r] * row_bytes;
        float *dst = ctx->x + (size_t)r * e->n_cols;
        if (to_float)
            to_float(src, dst, e->n_cols);
        else
            memcpy(dst, src, row_bytes);
    }
}

static void add_bias(float *y, const float *bias, int32_t n, int64_t width)
{
    for (int32_t r = 0; r < n; r++)
        for (int64_t i = 0; i < width; i++)
            y[(size_t)r * width + i] += bias[i];
}

/* Attention over every sequence of the batch, spread over the pool: the
 * tasks of all sequences' problems are numbered 0..total-1 and handed out
 * through an atomic counter. */
#define ATTN_MIN_PARALLEL_MACS 65536.0 /* ~10 us of work: below, one thread */

struct attn_run {
    quarry_context *ctx;
    int32_t n_jobs;
    atomic_int next_task;
};

static void attn_worker(void *arg, int thread, int n_threads)
{
    (void)n_threads;
    struct attn_run *run = arg;
    quarry_context *ctx = run->ctx;
    float *scratch = ctx->attn_scratch + (size_t)thread * ctx->attn_scratch_floats;
    const int32_t total = ctx->job_tasks[run->n_jobs];
    int32_t job = 0;
    for (;;) {
        const int task = atomic_fetch_add(&run->next_task, 1);
        if (task >= total)
            break;
        while (task >= ctx->job_tasks[job + 1])
            job++;
        quarry_flash_attn_task(&ctx->jobs[job], task - ctx->job_tasks[job], scratch);
    }
}

static int attention(quarry_context *ctx, int32_t layer, quarry_error *err)
{
    const struct quarry_hparams *hp = &ctx->model->hp;
    const struct quarry_kvcache_params *kp = quarry_kvcache_params(ctx->kv);
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const size_t row_size = quarry_kvcache_row_size(ctx->kv);
    int32_t n_jobs = 0;
    ctx->job_tasks[0] = 0;
    for (int32_t s = 0; s < kp->n_seq; s++) {
        if (!ctx->seq_count[s])
            continue;
        const int32_t r0 = ctx->seq_first[s];
        struct quarry_attn *a = &ctx->jobs[n_jobs];
        *a = (struct quarry_attn){
            .n_q = ctx->seq_count[s], .n_kv = ctx->seq_end[s], .n_head = hp->n_head,
            .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
            .scale = 1.0f / sqrtf((float)hp->head_dim),
            .q = ctx->q + (size_t)r0 * q_dim, .q_stride = q_dim, .kv_type = kp->type,
            .k = quarry_kvcache_k(ctx->kv, s, layer), .k_stride = row_size,
            .v = quarry_kvcache_v(ctx->kv, s, layer), .v_stride = row_size,
            .q_pos = ctx->row_pos + r0, .out = ctx->att + (size_t)r0 * q_dim, .out_stride = q_dim};
        int rc = quarry_attn_check(a, err);
        if (rc)
            return rc;
        ctx->job_tasks[n_jobs + 1] = ctx->job_tasks[n_jobs] + quarry_flash_attn_tasks(a);
        n_jobs++;
    }
    struct attn_run run = {.ctx = ctx, .n_jobs = n_jobs};
    atomic_init(&run.next_task, 0);
    /* Waking the pool costs microseconds: small problems (short contexts of
     * small models) run on the calling thread. */
    double macs = 0;
    for (int32_t j = 0; j < n_jobs; j++)
        macs += (double)ctx->jobs[j].n_q * ctx->jobs[j].n_kv * hp->n_head * hp->head_dim;
    if (macs < ATTN_MIN_PARALLEL_MACS || ctx->job_tasks[n_jobs] < 2)
        attn_worker(&run, 0, 1);
    else
        quarry_threadpool_run_any(ctx->pool, attn_worker, &run);
    return 0;
}

/* x += Wo . attention(rope(Wq xb), rope(Wk xb), Wv xb), xb = rmsnorm(x) * attn_norm */
static int attention_block(quarry_context *ctx, int32_t layer, int32_t n, quarry_error *err)
{
    const quarry_model *m = ctx->model;
    const struct quarry_hparams *hp = &m->hp;
    const struct quarry_layer *L = &m->layers[layer];
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    int rc;

    for (int32_t r = 0; r < n; r++)
        quarry_rmsnorm(ctx->xb + (size_t)r * hp->n_embd, ctx->x + (size_t)r * hp->n_embd,
                       L->attn_norm, hp->n_embd, hp->norm_eps);
    const struct quarry_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *const qkv_out[3] = {ctx->q, ctx->k, ctx->v};
    if ((rc = linear_shared(ctx, qkv, qkv_out, 3, ctx->xb, n, err)))
        return rc;
    if (L->bq) {
        add_bias(ctx->q, L->bq, n, q_dim);
        add_bias(ctx->k, L->bk, n, kv_dim);
        add_bias(ctx->v, L->bv, n, kv_dim);
    }
    for (int32_t r = 0; r < n; r++) {
        const float *cs = ctx->rope_cs + (size_t)r * hp->n_rot;
        float *q = ctx->q + (size_t)r * q_dim, *k = ctx->k + (size_t)r * kv_dim;
        quarry_rope_apply(&m->rope, cs, q, hp->n_head, hp->head_dim);
        quarry_rope_apply(&m->rope, cs, k, hp->n_head_kv, hp->head_dim);
        quarry_kvcache_write(ctx->kv, ctx->row_seq[r], layer, ctx->row_pos[r], k,
                             ctx->v + (size_t)r * kv_dim);
    }
    if ((rc = attention(ctx, layer, err)))
        return rc;
    if ((rc = linear(ctx, &L->wo, ctx->att, n, ctx->xb, err)))
        return rc;
    for (size_t i = 0; i < (size_t)n * hp->n_embd; i++)
        ctx->x[i] += ctx->xb[i];
    return 0;
}

/* g = silu(g) * up over `total` values; a prompt's worth is spread over the
 * pool in chunks (it is a few percent of prompt time on one thread). */
#define SWIGLU_CHUNK 16384 /* values per hand-out */

struct swiglu_run {
    float *g;
    const float *up;
    int64_t total;
    atomic_int_fast64_t next;
};

static void swiglu_worker(void *arg, int thread, int n_threads)
{
    (void)thread, (void)n_threads;
    struct swiglu_run *run = arg;
    for (int64_t c = atomic_fetch_add(&run->next, 1); c * SWIGLU_CHUNK < run->total;
         c = atomic_fetch_add(&run->next, 1)) {
        const int64_t i0 = c * SWIGLU_CHUNK;
        const int64_t len = run->total - i0 < SWIGLU_CHUNK ? run->total - i0 : SWIGLU_CHUNK;
        quarry_swiglu(run->g + i0, run->up + i0, len);
    }
}

static void swiglu(quarry_context *ctx, float *g, const float *up, int64_t total)
{
    if (total <= SWIGLU_CHUNK) {
        quarry_swiglu(g, up, total);
        return;
    }
    struct swiglu_run run = {.g = g, .up = up, .total = total};
    atomic_init(&run.next, 0);
    quarry_threadpool_run_any(ctx->pool, swiglu_worker, &run);
}

/* x += Wdown . (silu(Wgate xb) * (Wup xb)), xb = rmsnorm(x) * ffn_norm */
static int ffn_block(quarry_context *ctx, int32_t layer, int32_t n, quarry_error *err)
{
    const struct quarry_hparams *hp = &ctx->model->hp;
    const struct quarry_layer *L = &ctx->model->layers[layer];
    int rc;
    for (int32_t r = 0; r < n; r++)
        quarry_rmsnorm(ctx->xb + (size_t)r * hp->n_embd, ctx->x + (size_t)r * hp->n_embd,
                       L->ffn_norm, hp->n_embd, hp->norm_eps);
    const struct quarry_weight *gate_up[2] = {&L->w_gate, &L->w_up};
    float *const gate_up_out[2] = {ctx->hb, ctx->hb2};
    if ((rc = linear_shared(ctx, gate_up, gate_up_out, 2, ctx->xb, n, err)))
        return rc;
    swiglu(ctx, ctx->hb, ctx->hb2, (int64_t)n * hp->n_ff); /* hb = silu(hb) * hb2 */
    if ((rc = linear(ctx, &L->w_down, ctx->hb, n, ctx->xb, err)))
        return rc;
    for (size_t i = 0; i < (size_t)n * hp->n_embd; i++)
        ctx->x[i] += ctx->xb[i];
    return 0;
}

/* logits[j] = Woutput . (rmsnorm(x[out_rows[j]]) * output_norm) */
static int output_logits(quarry_context *ctx, float *logits, quarry_error *err)
{
    const quarry_model *m = ctx->model;
    const int32_t n_embd = m->hp.n_embd;
    if (ctx->n_out == 0)
        return 0;
    for (int32_t j = 0; j < ctx->n_out; j++)
        quarry_rmsnorm(ctx->xb + (size_t)j * n_embd, ctx->x + (size_t)ctx->out_rows[j] * n_embd,
                       m->output_norm, n_embd, m->hp.norm_eps);
    return linear(ctx, &m->output, ctx->xb, ctx->n_out, logits, err);
}

int quarry_forward(const quarry_model *m, quarry_context *ctx, const quarry_batch *b,
                   float *logits, quarry_error *err)
{
    if (!m || !ctx || !b || ctx->model != m)
        return quarry_errorf(err, QUARRY_EINVAL, "forward: context was made for another model");
    int rc = plan_batch(ctx, b, logits, err);
    if (rc)
        return rc;
    const int32_t n = b->n_tokens;
    embed_tokens(ctx, n);
    for (int32_t r = 0; r < n; r++)
        quarry_rope_cache(&m->rope, ctx->row_pos[r], ctx->rope_cs + (size_t)r * m->hp.n_rot);
    for (int32_t layer = 0; layer < m->hp.n_layer; layer++) {
        if ((rc = attention_block(ctx, layer, n, err)) || (rc = ffn_block(ctx, layer, n, err)))
            return rc;
    }
    if ((rc = output_logits(ctx, logits, err)))
        return rc;
    const int32_t n_seq = quarry_kvcache_params(ctx->kv)->n_seq;
    for (int32_t s = 0; s < n_seq; s++)
        if (ctx->seq_count[s])
            quarry_kvcache_set_len(ctx->kv, s, ctx->seq_end[s]);
    return 0;
}
