/*
 * synth.c - writing random-weight llama models (see synth.h).
 *
 * Flow: check the shape, read the vocabulary file, describe every tensor,
 * let quarry_quant_plan() order them and choose their types, then for each
 * tensor generate its rows chunk by chunk into the spool (values from a
 * per-row generator, converted with the type's reference quantizer), map
 * the spool and hand the GGUF writer the metadata and the tensor pointers.
 */
#include "engine/synth.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

#define N_SHAPES 3
#define DEFAULT_STD 0.02f
#define ROPE_FREQ_BASE 10000.0f
#define RMS_EPS 1e-5f

static const struct quarry_synth_shape shapes[N_SHAPES] = {
    /* Karpathy's stories260K as converted to GGUF (context written as 128) */
    {"stories260K", 64, 5, 8, 4, 172, 512, 128},
    /* TinyLlama-1.1B */
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, 2048},
    /* one block of LLaMA-2-7B */
    {"llama-7b-1layer", 4096, 1, 32, 32, 11008, 32000, 4096},
};

static const char *const shape_names[N_SHAPES + 1] = {"stories260K", "tinyllama-1.1b",
                                                      "llama-7b-1layer", NULL};

const char *const *quarry_synth_shape_names(void)
{
    return shape_names;
}

int quarry_synth_shape_named(const char *name, struct quarry_synth_shape *out)
{
    for (int i = 0; i < N_SHAPES; i++)
        if (strcmp(shapes[i].name, name) == 0) {
            *out = shapes[i];
            return 0;
        }
    return QUARRY_ENOTFOUND;
}

int quarry_synth_parse_dims(const char *spec, struct quarry_synth_shape *out, quarry_error *err)
{
    struct quarry_synth_shape s = {"custom", 0, 0, 0, 0, 0, 0, 2048};
    const char *p = spec;
    while (*p) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end)
            return quarry_errorf(err, QUARRY_EINVAL, "--dims: expected key=value at '%.*s'",
                                 (int)(end - p), p);
        const size_t klen = (size_t)(eq - p);
        char *num_end;
        const unsigned long long v = strtoull(eq + 1, &num_end, 10);
        if (num_end != end || eq + 1 == end || v == 0 || v > UINT32_MAX)
            return quarry_errorf(err, QUARRY_EINVAL, "--dims: '%.*s' needs a positive integer",
                                 (int)klen, p);
        uint32_t *field = NULL;
        static const char *const keys[] = {"embd", "layers", "heads", "kv_heads", "ff", "vocab",
                                           "ctx"};
        uint32_t *fields[] = {&s.n_embd, &s.n_layer, &s.n_head, &s.n_head_kv,
                              &s.n_ff,   &s.n_vocab, &s.n_ctx};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strlen(keys[i]) == klen && memcmp(keys[i], p, klen) == 0)
                field = fields[i];
        if (!field)
            return quarry_errorf(err, QUARRY_EINVAL,
                                 "--dims: unknown key '%.*s' (embd, layers, heads, kv_heads, ff, "
                                 "vocab, ctx)",
                                 (int)klen, p);
        *field = (uint32_t)v;
        p = *end ? end + 1 : end;
    }
    if (s.n_head_kv == 0)
        s.n_head_kv = s.n_head;
    if (!s.n_embd || !s.n_layer || !s.n_head || !s.n_ff)
        return quarry_errorf(err, QUARRY_EINVAL, "--dims: embd, layers, heads and ff are required");
    *out = s;
    return 0;
}

int quarry_synth_check_shape(const struct quarry_synth_shape *s, quarry_error *err)
{
    if (!s->n_embd || !s->n_layer || !s->n_head || !s->n_head_kv || !s->n_ff || !s->n_ctx)
        return quarry_errorf(err, QUARRY_EINVAL, "shape %s: every size must be > 0", s->name);
    if (s->n_embd % s->n_head)
        return quarry_errorf(err, QUARRY_EINVAL, "shape %s: %u heads do not divide embd %u",
                             s->name, s->n_head, s->n_embd);
    if (s->n_head % s->n_head_kv)
        return quarry_errorf(err, QUARRY_EINVAL, "shape %s: %u KV heads do not divide %u heads",
                             s->name, s->n_head_kv, s->n_head);
    if ((s->n_embd / s->n_head) % 2)
        return quarry_errorf(err, QUARRY_EINVAL, "shape %s: head size %u must be even (RoPE)",
                             s->name, s->n_embd / s->n_head);
    if (s->n_layer > 100000)
        return quarry_errorf(err, QUARRY_EINVAL, "shape %s: too many layers", s->name);
    return 0;
}

/* ---- weights -------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
    return h;
}

struct synth_source {
    uint64_t seed;
    float std;
};

/* Rows of a tensor: 1 for norms (1-D), else N(0, std^2) by Box-Muller from a
 * splitmix64 stream seeded with (seed, name, row). */
static int synth_rows(void *user, const struct quarry_plan_tensor *t, int64_t row0, int64_t n_rows,
                      float *dst, quarry_error *err)
{
    (void)err;
    const struct synth_source *src = user;
    const int64_t ne0 = (int64_t)t->ne[0];
    if (t->n_dims == 1) {
        for (int64_t i = 0; i < n_rows * ne0; i++)
            dst[i] = 1.0f;
        return 0;
    }
    const uint64_t tensor_key = src->seed ^ fnv1a(t->name);
    for (int64_t r = 0; r < n_rows; r++) {
        uint64_t state = tensor_key + UINT64_C(0xD1B54A32D192ED03) * (uint64_t)(row0 + r);
        state = splitmix64(&state);
        float *row = dst + r * ne0;
        for (int64_t i = 0; i < ne0; i += 2) {
            /* u1 in (0, 1], u2 in [0, 1) */
            const double u1 = ((double)(splitmix64(&state) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
            const double u2 = (double)(splitmix64(&state) >> 11) * (1.0 / 9007199254740992.0);
            const double rad = sqrt(-2.0 * log(u1)) * src->std;
            row[i] = (float)(rad * cos(6.283185307179586 * u2));
            if (i + 1 < ne0)
                row[i + 1] = (float)(rad * sin(6.283185307179586 * u2));
        }
    }
    return 0;
}

/* ---- the file -------------------------------------------------------------- */

struct tensor_desc {
    char name[48];
    uint32_t n_dims;
    uint64_t ne0, ne1;
};

/* The llama tensors, with their shapes [ne0 = row length, ne1 = rows]. */
static size_t describe(const struct quarry_synth_shape *s, uint32_t n_vocab, struct tensor_desc *d)
{
    size_t n = 0;
    const uint64_t embd = s->n_embd, kv = (uint64_t)s->n_embd / s->n_head * s->n_head_kv;
#define ADD(DIMS, NE0, NE1, ...)                                               \
    do {                                                                       \
        snprintf(d[n].name, sizeof d[n].name, __VA_ARGS__);                    \
        d[n].n_dims = DIMS;                                                    \
        d[n].ne0 = NE0;                                                        \
        d[n].ne1 = NE1;                                                        \
        n++;                                                                   \
    } while (0)
    ADD(2, embd, n_vocab, "token_embd.weight");        /* [n_embd, n_vocab] */
    ADD(1, embd, 1, "output_norm.weight");             /* [n_embd] */
    ADD(2, embd, n_vocab, "output.weight");            /* [n_embd, n_vocab] */
    for (uint32_t l = 0; l < s->n_layer; l++) {
        ADD(1, embd, 1, "blk.%u.attn_norm.weight", l);
        ADD(2, embd, embd, "blk.%u.attn_q.weight", l);       /* [n_embd, n_embd] */
        ADD(2, embd, kv, "blk.%u.attn_k.weight", l);         /* [n_embd, n_embd_kv] */
        ADD(2, embd, kv, "blk.%u.attn_v.weight", l);         /* [n_embd, n_embd_kv] */
        ADD(2, embd, embd, "blk.%u.attn_output.weight", l);  /* [n_embd, n_embd] */
        ADD(1, embd, 1, "blk.%u.ffn_norm.weight", l);
        ADD(2, embd, s->n_ff, "blk.%u.ffn_gate.weight", l);  /* [n_embd, n_ff] */
        ADD(2, s->n_ff, embd, "blk.%u.ffn_down.weight", l);  /* [n_ff, n_embd] */
        ADD(2, embd, s->n_ff, "blk.%u.ffn_up.weight", l);    /* [n_embd, n_ff] */
    }
#undef ADD
    return n;
}

static int writer_rc(gguf_writer *w, int rc, quarry_error *err)
{
    if (rc == 0)
        return 0;
    const char *msg = gguf_writer_error(w);
    return quarry_errorf(err, rc, "%s", msg ? msg : "writer failed");
}

static int write_metadata(gguf_writer *w, const struct quarry_synth_params *p, uint32_t n_vocab,
                          const gguf_file *vocab, quarry_error *err)
{
    const struct quarry_synth_shape *s = &p->shape;
    char name[96];
    snprintf(name, sizeof name, "synth-%s", s->name);
    int rc = 0;
#define SET(CALL)                                                              \
    do {                                                                       \
        if ((rc = writer_rc(w, CALL, err)))                                    \
            return rc;                                                         \
    } while (0)
    SET(gguf_writer_set_str(w, "general.architecture", "llama"));
    SET(gguf_writer_set_str(w, "general.name", name));
    SET(gguf_writer_set_u32(w, "llama.context_length", s->n_ctx));
    SET(gguf_writer_set_u32(w, "llama.embedding_length", s->n_embd));
    SET(gguf_writer_set_u32(w, "llama.block_count", s->n_layer));
    SET(gguf_writer_set_u32(w, "llama.feed_forward_length", s->n_ff));
    SET(gguf_writer_set_u32(w, "llama.rope.dimension_count", s->n_embd / s->n_head));
    SET(gguf_writer_set_u32(w, "llama.attention.head_count", s->n_head));
    SET(gguf_writer_set_u32(w, "llama.attention.head_count_kv", s->n_head_kv));
    SET(gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", RMS_EPS));
    SET(gguf_writer_set_f32(w, "llama.rope.freq_base", ROPE_FREQ_BASE));
    SET(gguf_writer_set_u32(w, "llama.vocab_size", n_vocab));
    SET(gguf_writer_set_u64(w, "quarry.synth.seed", p->seed));
    SET(gguf_writer_set_f32(w, "quarry.synth.weight_std",
                            p->weight_std > 0 ? p->weight_std : DEFAULT_STD));
    for (uint64_t i = 0; i < vocab->n_kv; i++) {
        const struct gguf_kv *kv = &vocab->kvs[i];
        if (kv->key.len > 10 && memcmp(kv->key.data, "tokenizer.", 10) == 0)
            SET(gguf_writer_copy_kv(w, kv));
    }
    SET(gguf_writer_set_u32(w, "general.quantization_version", 2));
    SET(gguf_writer_set_u32(w, "general.file_type", (uint32_t)p->ftype));
#undef SET
    return 0;
}

int quarry_synth(const struct quarry_synth_params *p, quarry_error *err)
{
    gguf_file *vocab = NULL;
    struct tensor_desc *desc = NULL;
    struct quarry_plan_tensor *plan = NULL;
    uint64_t *offsets = NULL;
    quarry_threadpool *pool = NULL;
    quarry_spool *spool = NULL;
    gguf_writer *w = NULL;
    int rc;

    if ((rc = quarry_synth_check_shape(&p->shape, err)))
        return rc;
    if (quarry_ftype_base_type(p->ftype) < 0)
        return quarry_errorf(err, QUARRY_EINVAL, "unknown file type %d", p->ftype);
    if (!p->vocab_from || !p->out_path)
        return quarry_errorf(err, QUARRY_EINVAL, "synth: a vocabulary file and an output path "
                                                 "are needed");
    if ((rc = gguf_open(p->vocab_from, &vocab, err)))
        return rc;
    const struct gguf_array *tokens;
    rc = gguf_get_array(vocab, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, err);
    if (rc) {
        rc = quarry_errorf(err, QUARRY_EFORMAT, "%s: no tokenizer.ggml.tokens to copy",
                           p->vocab_from);
        goto done;
    }
    if (tokens->count == 0 || tokens->count > UINT32_MAX) {
        rc = quarry_errorf(err, QUARRY_EFORMAT, "%s: %" PRIu64 " tokens", p->vocab_from,
                           tokens->count);
        goto done;
    }
    const uint32_t n_vocab = (uint32_t)tokens->count;
    if (p->shape.n_vocab && p->shape.n_vocab != n_vocab) {
        rc = quarry_errorf(err, QUARRY_EINVAL,
                           "shape %s has a vocabulary of %u but %s has %u tokens", p->shape.name,
                           p->shape.n_vocab, p->vocab_from, n_vocab);
        goto done;
    }

    const size_t n = 3 + 9 * (size_t)p->shape.n_layer;
    desc = calloc(n, sizeof *desc);
    plan = calloc(n, sizeof *plan);
    offsets = calloc(n, sizeof *offsets);
    if (!desc || !plan || !offsets) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
        goto done;
    }
    describe(&p->shape, n_vocab, desc);
    for (size_t i = 0; i < n; i++) {
        plan[i].name = desc[i].name;
        plan[i].n_dims = desc[i].n_dims;
        plan[i].ne[0] = desc[i].ne0;
        plan[i].ne[1] = desc[i].ne1;
        plan[i].ne[2] = plan[i].ne[3] = 1;
        plan[i].src_type = QUARRY_TYPE_F32;
        plan[i].src_index = i;
    }
    const struct quarry_mix_model model = {"llama", p->shape.n_layer, p->shape.n_head,
                                           p->shape.n_head_kv, 0};
    if ((rc = quarry_quant_plan(&model, p->ftype, plan, n, err)))
        goto done;

    if ((rc = quarry_threadpool_new(p->n_threads, &pool, err)))
        goto done;
    if ((rc = quarry_spool_open(p->out_path, &spool, err)))
        goto done;
    struct synth_source src = {p->seed, p->weight_std > 0 ? p->weight_std : DEFAULT_STD};
    for (size_t i = 0; i < n; i++) {
        if (p->progress) {
            struct quarry_quant_progress pr = {i, n, &plan[i], false};
            p->progress(p->user, &pr);
        }
        if ((rc = quarry_spool_tensor(spool, &plan[i], synth_rows, &src, pool, &offsets[i], err)))
            goto done;
    }
    const uint8_t *base;
    if ((rc = quarry_spool_map(spool, &base, err)))
        goto done;

    w = gguf_writer_new();
    if (!w) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = write_metadata(w, p, n_vocab, vocab, err)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        rc = gguf_writer_add_tensor(w, plan[i].name, plan[i].dst_type, plan[i].n_dims, plan[i].ne,
                                    base + offsets[i]);
        if ((rc = writer_rc(w, rc, err)))
            goto done;
    }
    rc = gguf_writer_write(w, p->out_path, err);

done:
    gguf_writer_free(w);
    quarry_spool_close(spool);
    quarry_threadpool_free(pool);
    free(offsets);
    free(plan);
    free(desc);
    gguf_close(vocab);
    return rc;
}
