/*
 * test_quantize.c - `quarry quantize` as a library: the type rules on model
 * shapes where llama.cpp's choice was worked out by hand from its
 * llama_tensor_get_type, and whole-file runs on tests/data/stories260K.gguf
 * (F32) to several types: the file reads back, metadata is preserved (with
 * general.file_type / general.quantization_version appended as llama.cpp
 * does), tensors come in llama.cpp's order, every converted tensor holds
 * exactly what the type's reference quantizer makes of the original rows,
 * the dequantized weights are within a per-type relative RMS bound of the
 * originals, and bad inputs give errors.
 *
 * The RMS bounds come from the quantizers' step sizes on weight-like data
 * (value spread s, block maximum about 2.2 s for 32 values): an error of
 * step / sqrt(12) with step = max / 127 (Q8_0), max / 16 (5-bit), max / 8
 * (4-bit), max / 4 (3-bit), range / 3 (2-bit), plus a 1.5x margin.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/quantize.h"
#include "kernels/kernels.h"

#define STORIES "tests/data/stories260K.gguf"

/* ---- the rules on model shapes ---- */

struct shape {
    uint32_t n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab;
    bool tied;
};

static void add_tensor(struct quarry_plan_tensor *t, char (*names)[48], size_t *n,
                       const char *name, uint64_t d0, uint64_t d1, uint32_t dims)
{
    snprintf(names[*n], 48, "%s", name);
    t[*n] = (struct quarry_plan_tensor){.name = names[*n], .n_dims = dims, .ne = {d0, d1, 1, 1},
                                        .src_type = QUARRY_TYPE_F16, .src_index = *n};
    (*n)++;
}

/* Names and shapes of a llama model's tensors, last layer first (so the
 * planner has to sort them into llama.cpp's order). */
static size_t llama_tensors(const struct shape *s, struct quarry_plan_tensor *t, char (*names)[48])
{
    size_t n = 0;
    const uint64_t kv = (uint64_t)s->n_embd / s->n_head * s->n_head_kv;
    static const char *const kinds[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                        "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"};
    for (int l = (int)s->n_layer - 1; l >= 0; l--) {
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            char name[48];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, kinds[k]);
            uint64_t d0 = s->n_embd, d1 = 1;
            uint32_t dims = 2;
            switch (k) {
            case 0: case 5: dims = 1; break;               /* norms [n_embd] */
            case 1: case 4: d1 = s->n_embd; break;         /* [n_embd, n_embd] */
            case 2: case 3: d1 = kv; break;                /* [n_embd, n_embd_kv] */
            case 6: case 8: d1 = s->n_ff; break;           /* [n_embd, n_ff] */
            case 7: d0 = s->n_ff; d1 = s->n_embd; break;   /* [n_ff, n_embd] */
            }
            add_tensor(t, names, &n, name, d0, d1, dims);
        }
    }
    add_tensor(t, names, &n, "token_embd.weight", s->n_embd, s->n_vocab, 2);
    add_tensor(t, names, &n, "output_norm.weight", s->n_embd, 1, 1);
    if (!s->tied)
        add_tensor(t, names, &n, "output.weight", s->n_embd, s->n_vocab, 2);
    return n;
}

static enum quarry_type type_of(const struct quarry_plan_tensor *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return t[i].dst_type;
    fail_msg("no tensor %s", name);
    return QUARRY_TYPE_COUNT;
}

static enum quarry_type layer_type(const struct quarry_plan_tensor *t, size_t n, int layer,
                                   const char *kind)
{
    char name[64];
    snprintf(name, sizeof name, "blk.%d.%s.weight", layer, kind);
    return type_of(t, n, name);
}

/* llama.cpp's use_more_bits(i, n), written out for n = 22: i < 2, i >= 19,
 * and (i - 2) % 3 == 2, i.e. layers 4, 7, 10, 13, 16. */
static bool more_bits_22(int i)
{
    static const int layers[] = {0, 1, 4, 7, 10, 13, 16, 19, 20, 21};
    for (size_t k = 0; k < sizeof layers / sizeof layers[0]; k++)
        if (layers[k] == i)
            return true;
    return false;
}

static void test_rules_tinyllama_shape(void **state)
{
    (void)state;
    const struct shape tl = {22, 2048, 32, 4, 5632, 32000, false};
    const struct quarry_mix_model m = {"llama", 22, 32, 4, 0};
    struct quarry_plan_tensor t[256];
    static char names[256][48];
    quarry_error err = {0};

    /* Q4_K_M */
    size_t n = llama_tensors(&tl, t, names);
    assert_int_equal(quarry_quant_plan(&m, QUARRY_FTYPE_MOSTLY_Q4_K_M, t, n, &err), 0);
    /* llama.cpp's order: non-block tensors by name, then block by block */
    assert_string_equal(t[0].name, "output.weight");
    assert_string_equal(t[1].name, "output_norm.weight");
    assert_string_equal(t[2].name, "token_embd.weight");
    assert_string_equal(t[3].name, "blk.0.attn_k.weight");
    assert_string_equal(t[3 + 9].name, "blk.1.attn_k.weight");
    assert_string_equal(t[3 + 9 * 10].name, "blk.10.attn_k.weight");
    assert_int_equal(type_of(t, n, "output.weight"), QUARRY_TYPE_Q6_K);
    assert_int_equal(type_of(t, n, "token_embd.weight"), QUARRY_TYPE_Q4_K);
    assert_int_equal(type_of(t, n, "output_norm.weight"), QUARRY_TYPE_F16); /* kept */
    for (int l = 0; l < 22; l++) {
        const enum quarry_type more = more_bits_22(l) ? QUARRY_TYPE_Q6_K : QUARRY_TYPE_Q4_K;
        assert_int_equal(layer_type(t, n, l, "attn_v"), more);
        assert_int_equal(layer_type(t, n, l, "ffn_down"), more);
        assert_int_equal(layer_type(t, n, l, "attn_q"), QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "attn_k"), QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "attn_output"), QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "ffn_gate"), QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "ffn_up"), QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "attn_norm"), QUARRY_TYPE_F16);
    }
    for (size_t i = 0; i < n; i++)
        assert_false(t[i].fallback);

    /* Q3_K_M: attn_v Q5_K for the first two then Q4_K; ffn_down Q5_K for
     * i < 22/16 = 1 then Q4_K; attn_output Q4_K */
    n = llama_tensors(&tl, t, names);
    assert_int_equal(quarry_quant_plan(&m, QUARRY_FTYPE_MOSTLY_Q3_K_M, t, n, &err), 0);
    for (int l = 0; l < 22; l++) {
        assert_int_equal(layer_type(t, n, l, "attn_v"), l < 2 ? QUARRY_TYPE_Q5_K : QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "ffn_down"),
                         l < 1 ? QUARRY_TYPE_Q5_K : QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "attn_output"), QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "attn_q"), QUARRY_TYPE_Q3_K);
    }
    assert_int_equal(type_of(t, n, "output.weight"), QUARRY_TYPE_Q6_K);

    /* Q2_K: GQA 8 >= 4 gives attn_v Q4_K; ffn_down and attn_output Q3_K */
    n = llama_tensors(&tl, t, names);
    assert_int_equal(quarry_quant_plan(&m, QUARRY_FTYPE_MOSTLY_Q2_K, t, n, &err), 0);
    for (int l = 0; l < 22; l++) {
        assert_int_equal(layer_type(t, n, l, "attn_v"), QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "ffn_down"), QUARRY_TYPE_Q3_K);
        assert_int_equal(layer_type(t, n, l, "attn_output"), QUARRY_TYPE_Q3_K);
        assert_int_equal(layer_type(t, n, l, "ffn_up"), QUARRY_TYPE_Q2_K);
    }
    /* without GQA attn_v is Q3_K */
    const struct quarry_mix_model mha = {"llama", 22, 32, 32, 0};
    n = llama_tensors(&tl, t, names);
    assert_int_equal(quarry_quant_plan(&mha, QUARRY_FTYPE_MOSTLY_Q2_K, t, n, &err), 0);
    assert_int_equal(layer_type(t, n, 5, "attn_v"), QUARRY_TYPE_Q3_K);

    /* Q4_K_S: attn_v Q5_K for the first 4; ffn_down Q5_K for i < 22/8 = 2 */
    n = llama_tensors(&tl, t, names);
    assert_int_equal(quarry_quant_plan(&m, QUARRY_FTYPE_MOSTLY_Q4_K_S, t, n, &err), 0);
    for (int l = 0; l < 22; l++) {
        assert_int_equal(layer_type(t, n, l, "attn_v"), l < 4 ? QUARRY_TYPE_Q5_K : QUARRY_TYPE_Q4_K);
        assert_int_equal(layer_type(t, n, l, "ffn_down"),
                         l < 2 ? QUARRY_TYPE_Q5_K : QUARRY_TYPE_Q4_K);
    }

    /* Q8_0: output stays Q8_0; F16: no mixture at all */
    n = llama_tensors(&tl, t, names);
    assert_int_equal(quarry_quant_plan(&m, QUARRY_FTYPE_MOSTLY_Q8_0, t, n, &err), 0);
    assert_int_equal(type_of(t, n, "output.weight"), QUARRY_TYPE_Q8_0);
    assert_int_equal(layer_type(t, n, 0, "attn_v"), QUARRY_TYPE_Q8_0);
    n = llama_tensors(&tl, t, names);
    assert_int_equal(quarry_quant_plan(&m, QUARRY_FTYPE_ALL_F32, t, n, &err), 0);
    assert_int_equal(type_of(t, n, "output.weight"), QUARRY_TYPE_F32);
    assert_int_equal(layer_type(t, n, 3, "ffn_down"), QUARRY_TYPE_F32);

    /* tied embeddings: token_embd takes the output tensor's type */
    const struct shape tied = {22, 2048, 32, 4, 5632, 32000, true};
    n = llama_tensors(&tied, t, names);
    assert_int_equal(quarry_quant_plan(&m, QUARRY_FTYPE_MOSTLY_Q4_0, t, n, &err), 0);
    assert_int_equal(type_of(t, n, "token_embd.weight"), QUARRY_TYPE_Q6_K);

    /* unknown ftype */
    assert_int_equal(quarry_quant_plan(&m, 99, t, n, &err), QUARRY_EINVAL);
}

/* File sizes llama.cpp's own quantizer produced for a model of TinyLlama's
 * shape (measured for the project, shared/PLATFORM.md): the tensor bytes of
 * our plan plus the ~0.7 MiB of metadata (the 32000-token vocabulary) must
 * land within 1 MiB of each. A different choice for one layer's ffn_down
 * moves a file by 2.7 MiB or more. */
static void test_plan_sizes_match_llama_cpp_files(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        double mib;
    } peer[] = {{"F16", 2099}, {"Q8_0", 1116}, {"Q6_K", 862}, {"Q5_K_M", 746},
                {"Q4_K_M", 637}, {"Q4_0", 607}, {"Q3_K_M", 523}, {"Q2_K", 412}};
    const struct shape tl = {22, 2048, 32, 4, 5632, 32000, false};
    const struct quarry_mix_model m = {"llama", 22, 32, 4, 0};
    struct quarry_plan_tensor t[256];
    static char names[256][48];
    for (size_t k = 0; k < sizeof peer / sizeof peer[0]; k++) {
        size_t n = llama_tensors(&tl, t, names);
        for (size_t i = 0; i < n; i++)
            if (t[i].n_dims == 1)
                t[i].src_type = QUARRY_TYPE_F32; /* norms are F32 in the source */
        assert_int_equal(quarry_quant_plan(&m, quarry_ftype_from_name(peer[k].type), t, n, NULL),
                         0);
        double bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += (double)quarry_row_size(t[i].dst_type, (int64_t)t[i].ne[0]) * (double)t[i].ne[1];
        const double mib = bytes / 1048576.0 + 0.7;
        printf("%-7s plan %.1f MiB, llama.cpp %.0f MiB\n", peer[k].type, mib, peer[k].mib);
        assert_true(fabs(mib - peer[k].mib) <= 1.0);
    }
}

static void test_rules_70b_and_fallbacks(void **state)
{
    (void)state;
    struct quarry_plan_tensor t[800];
    static char names[800][48];
    /* a 70B llama: attn_v that would be Q4_K becomes Q5_K */
    const struct shape s70 = {80, 256, 64, 8, 512, 256, false};
    const struct quarry_mix_model m70 = {"llama", 80, 64, 8, 0};
    size_t n = llama_tensors(&s70, t, names);
    assert_int_equal(quarry_quant_plan(&m70, QUARRY_FTYPE_MOSTLY_Q4_K_M, t, n, NULL), 0);
    assert_int_equal(layer_type(t, n, 11, "attn_v"), QUARRY_TYPE_Q5_K); /* not more_bits */
    assert_int_equal(layer_type(t, n, 0, "attn_v"), QUARRY_TYPE_Q6_K);
    assert_int_equal(layer_type(t, n, 11, "attn_q"), QUARRY_TYPE_Q4_K);

    /* rows that do not fit: n_embd 64 (< 256) and FFN 172 (not a multiple of 32) */
    const struct shape small = {5, 64, 8, 4, 172, 512, false};
    const struct quarry_mix_model ms = {"llama", 5, 8, 4, 0};
    n = llama_tensors(&small, t, names);
    assert_int_equal(quarry_quant_plan(&ms, QUARRY_FTYPE_MOSTLY_Q4_K_M, t, n, NULL), 0);
    /* output: 64 % 256 != 0 gives Q8_0 directly (no fallback needed) */
    assert_int_equal(type_of(t, n, "output.weight"), QUARRY_TYPE_Q8_0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].name, "blk.1.attn_q.weight") == 0) {
            assert_int_equal(t[i].wanted, QUARRY_TYPE_Q4_K);
            assert_int_equal(t[i].dst_type, QUARRY_TYPE_Q5_0);
            assert_true(t[i].fallback);
        }
        if (strcmp(t[i].name, "blk.2.attn_v.weight") == 0) { /* more_bits(2, 5) */
            assert_int_equal(t[i].wanted, QUARRY_TYPE_Q6_K);
            assert_int_equal(t[i].dst_type, QUARRY_TYPE_Q8_0);
        }
        if (strstr(t[i].name, "ffn_down")) /* 172: no block type fits */
            assert_int_equal(t[i].dst_type, QUARRY_TYPE_F16);
    }
    n = llama_tensors(&small, t, names);
    assert_int_equal(quarry_quant_plan(&ms, QUARRY_FTYPE_MOSTLY_Q2_K, t, n, NULL), 0);
    assert_int_equal(layer_type(t, n, 0, "attn_q"), QUARRY_TYPE_Q4_0); /* Q2_K -> Q4_0 */
    n = llama_tensors(&small, t, names);
    assert_int_equal(quarry_quant_plan(&ms, QUARRY_FTYPE_MOSTLY_Q5_K_S, t, n, NULL), 0);
    assert_int_equal(layer_type(t, n, 0, "attn_q"), QUARRY_TYPE_Q5_1); /* Q5_K -> Q5_1 */
}

static void test_ftype_names(void **state)
{
    (void)state;
    assert_int_equal(quarry_ftype_from_name("Q4_K_M"), 15);
    assert_int_equal(quarry_ftype_from_name("q4_k_m"), 15);
    assert_int_equal(quarry_ftype_from_name("Q4_K"), 15);
    assert_int_equal(quarry_ftype_from_name("Q5_K"), 17);
    assert_int_equal(quarry_ftype_from_name("Q3_K"), 12);
    assert_int_equal(quarry_ftype_from_name("Q8_0"), 7);
    assert_int_equal(quarry_ftype_from_name("Q5_0"), 8);
    assert_int_equal(quarry_ftype_from_name("F16"), 1);
    assert_int_equal(quarry_ftype_from_name("BF16"), 32);
    assert_int_equal(quarry_ftype_from_name("F32"), 0);
    assert_int_equal(quarry_ftype_from_name("Q6_K"), 18);
    assert_int_equal(quarry_ftype_from_name("Q2_K"), 10);
    assert_int_equal(quarry_ftype_from_name("IQ2_XS"), -1);
    assert_int_equal(quarry_ftype_from_name("Q4_K_X"), -1);
    assert_string_equal(quarry_ftype_name(15), "Q4_K_M");
    assert_int_equal(quarry_ftype_base_type(15), QUARRY_TYPE_Q4_K);
    assert_int_equal(quarry_ftype_base_type(12), QUARRY_TYPE_Q3_K);
    assert_null(quarry_ftype_name(4));
}

/* ---- whole files ---- */

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/quarry-test-quantize-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void out_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

static bool values_equal(const struct gguf_value *a, const struct gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case GGUF_TYPE_STRING:
        return a->v.str.len == b->v.str.len && memcmp(a->v.str.data, b->v.str.data, a->v.str.len) == 0;
    case GGUF_TYPE_ARRAY: {
        const struct gguf_array *x = &a->v.arr, *y = &b->v.arr;
        if (x->elem_type != y->elem_type || x->count != y->count)
            return false;
        if (x->elem_type == GGUF_TYPE_STRING) {
            for (uint64_t i = 0; i < x->count; i++)
                if (x->strs[i].len != y->strs[i].len ||
                    memcmp(x->strs[i].data, y->strs[i].data, x->strs[i].len) != 0)
                    return false;
            return true;
        }
        if (x->elem_type == GGUF_TYPE_ARRAY)
            return true; /* not in our models */
        return memcmp(x->raw, y->raw, x->count * gguf_value_type_size(x->elem_type)) == 0;
    }
    case GGUF_TYPE_BOOL:
        return a->v.b == b->v.b;
    case GGUF_TYPE_FLOAT32:
    case GGUF_TYPE_FLOAT64:
        return a->v.f64 == b->v.f64;
    default:
        return a->v.u64 == b->v.u64;
    }
}

/* Relative RMS error bound per type (see the top of the file). */
static double rms_bound(enum quarry_type t)
{
    switch (t) {
    case QUARRY_TYPE_F32: return 0.0;
    case QUARRY_TYPE_F16: return 5e-4;   /* 11-bit significand */
    case QUARRY_TYPE_BF16: return 4e-3;  /* 8-bit significand */
    case QUARRY_TYPE_Q8_0: return 0.008;
    case QUARRY_TYPE_Q6_K: return 0.03;
    case QUARRY_TYPE_Q5_0:
    case QUARRY_TYPE_Q5_1:
    case QUARRY_TYPE_Q5_K: return 0.06;
    case QUARRY_TYPE_Q4_0:
    case QUARRY_TYPE_Q4_1:
    case QUARRY_TYPE_Q4_K: return 0.12;
    case QUARRY_TYPE_Q3_K: return 0.25;
    case QUARRY_TYPE_Q2_K: return 0.5;
    default: return -1;
    }
}

static float *to_floats(const struct gguf_tensor *t)
{
    float *x = malloc((size_t)t->n_elements * sizeof *x);
    assert_non_null(x);
    quarry_traits(t->type)->to_float(t->data, x, (int64_t)t->n_elements);
    return x;
}

/* Quantizes the F32 model at input to type_name and checks everything about
 * the result; returns the largest relative RMS error seen per output type in
 * worst[QUARRY_TYPE_COUNT] (for the log). */
static void check_quantized_file(const char *input, const char *type_name, int n_threads,
                                 double *worst)
{
    const int ftype = quarry_ftype_from_name(type_name);
    assert_true(ftype >= 0);
    char out[160];
    out_path(out, sizeof out, type_name);
    struct quarry_quantize_params p = {ftype, n_threads, NULL, NULL};
    quarry_error err = {0};
    int rc = quarry_quantize_file(input, out, &p, &err);
    if (rc)
        fail_msg("%s: %s", type_name, err.msg);

    gguf_file *in = NULL, *q = NULL;
    assert_int_equal(gguf_open(input, &in, &err), 0);
    rc = gguf_open(out, &q, &err);
    if (rc)
        fail_msg("%s: reading back: %s", type_name, err.msg);

    /* metadata: every input key with the same value, then the two set last */
    size_t copied = 0;
    for (uint64_t i = 0; i < in->n_kv; i++) {
        const struct gguf_kv *a = &in->kvs[i];
        if (gguf_str_eq(a->key, "general.file_type") ||
            gguf_str_eq(a->key, "general.quantization_version"))
            continue;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)a->key.len, a->key.data);
        const struct gguf_kv *b = gguf_find_kv(q, key);
        assert_non_null(b);
        assert_true(values_equal(&a->value, &b->value));
        copied++;
    }
    assert_int_equal(q->n_kv, copied + 2);
    assert_true(gguf_str_eq(q->kvs[q->n_kv - 2].key, "general.quantization_version"));
    assert_true(gguf_str_eq(q->kvs[q->n_kv - 1].key, "general.file_type"));
    uint32_t ft = 99, qv = 0;
    assert_int_equal(gguf_get_u32(q, "general.file_type", &ft, NULL), 0);
    assert_int_equal(gguf_get_u32(q, "general.quantization_version", &qv, NULL), 0);
    assert_int_equal(ft, (uint32_t)ftype);
    assert_int_equal(qv, 2);

    /* tensors: same set and shapes, llama.cpp's order, per-type accuracy */
    assert_int_equal(q->n_tensors, in->n_tensors);
    int prev_layer = -1;
    for (uint64_t i = 0; i < q->n_tensors; i++) {
        const struct gguf_tensor *b = &q->tensors[i];
        char name[GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%.*s", (int)b->name.len, b->name.data);
        int layer = -1;
        sscanf(name, "blk.%d.", &layer);
        assert_true(layer >= prev_layer);
        prev_layer = layer;
        const struct gguf_tensor *a = gguf_find_tensor(in, name);
        assert_non_null(a);
        assert_memory_equal(a->ne, b->ne, sizeof a->ne);
        assert_int_equal(a->type, QUARRY_TYPE_F32);
        if (a->n_dims == 1 || strstr(name, "_norm"))
            assert_int_equal(b->type, QUARRY_TYPE_F32);
        else if (ftype == QUARRY_FTYPE_MOSTLY_F16 || ftype == QUARRY_FTYPE_MOSTLY_BF16)
            assert_int_equal(b->type, quarry_ftype_base_type(ftype));

        /* the bytes are the reference quantizer's, row by row */
        const struct quarry_type_traits *tr = quarry_traits(b->type);
        void *ref = malloc((size_t)b->n_bytes);
        assert_non_null(ref);
        tr->from_float_ref(a->data, ref, (int64_t)a->n_elements);
        assert_memory_equal(ref, b->data, (size_t)b->n_bytes);
        free(ref);

        float *x = to_floats(a), *y = to_floats(b);
        const double err_rms = tu_rms_diff(x, y, (size_t)a->n_elements);
        double ss = 0;
        for (uint64_t k = 0; k < a->n_elements; k++)
            ss += (double)x[k] * x[k];
        const double rel = err_rms / sqrt(ss / (double)a->n_elements);
        const double bound = rms_bound(b->type);
        if (!(rel <= bound))
            fail_msg("%s: %s as %s: relative RMS error %.5f > %.5f", type_name, name,
                     quarry_type_info(b->type)->name, rel, bound);
        if (worst && rel > worst[b->type])
            worst[b->type] = rel;
        free(x);
        free(y);
    }
    gguf_close(in);
    gguf_close(q);
}

static void check_quantized(const char *type_name, int n_threads)
{
    check_quantized_file(STORIES, type_name, n_threads, NULL);
}

static void test_stories_q8_0(void **state) { (void)state; check_quantized("Q8_0", 2); }
static void test_stories_q4_0(void **state) { (void)state; check_quantized("Q4_0", 1); }
static void test_stories_q5_1(void **state) { (void)state; check_quantized("Q5_1", 2); }
static void test_stories_q4_k_m(void **state) { (void)state; check_quantized("Q4_K_M", 2); }
static void test_stories_q3_k_m(void **state) { (void)state; check_quantized("Q3_K_M", 2); }
static void test_stories_q2_k(void **state) { (void)state; check_quantized("Q2_K", 2); }
static void test_stories_q6_k(void **state) { (void)state; check_quantized("Q6_K", 2); }
static void test_stories_f16(void **state) { (void)state; check_quantized("F16", 2); }
static void test_stories_bf16(void **state) { (void)state; check_quantized("BF16", 1); }

/* A small F32 llama model with rows of 256 and 512 (stories260K's rows of
 * 64 and 172 fit no K-quant), weights N(0, 0.02), written with the GGUF
 * writer; quantized to every mixture, per-type errors within bounds. */
static void test_synthetic_k_quants(void **state)
{
    (void)state;
    enum { EMBD = 256, KV = 128, FF = 512, VOCAB = 256, LAYERS = 2 };
    char in[160];
    out_path(in, sizeof in, "synthetic-f32.gguf");
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(gguf_writer_set_str(w, "general.name", "test"), 0);
    assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", LAYERS), 0);
    assert_int_equal(gguf_writer_set_u32(w, "llama.attention.head_count", 4), 0);
    assert_int_equal(gguf_writer_set_u32(w, "llama.attention.head_count_kv", 2), 0);
    assert_int_equal(gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f), 0);
    const int32_t ids[3] = {1, -2, 3};
    assert_int_equal(gguf_writer_set_array(w, "test.ids", GGUF_TYPE_INT32, ids, 3), 0);
    assert_int_equal(gguf_writer_set_u32(w, "general.file_type", 0), 0);

    struct {
        char name[48];
        uint64_t ne[2];
        uint32_t dims;
    } t[3 + 9 * LAYERS];
    size_t n = 0;
#define T(NAME, D0, D1, DIMS)                                                  \
    do {                                                                       \
        snprintf(t[n].name, sizeof t[n].name, "%s", NAME);                     \
        t[n].ne[0] = D0;                                                       \
        t[n].ne[1] = D1;                                                       \
        t[n].dims = DIMS;                                                      \
        n++;                                                                   \
    } while (0)
    T("token_embd.weight", EMBD, VOCAB, 2);
    T("output_norm.weight", EMBD, 1, 1);
    T("output.weight", EMBD, VOCAB, 2);
    for (int l = 0; l < LAYERS; l++) {
        char nm[48];
#define L(KIND, D0, D1, DIMS) snprintf(nm, sizeof nm, "blk.%d." KIND ".weight", l); T(nm, D0, D1, DIMS)
        L("attn_norm", EMBD, 1, 1);
        L("attn_q", EMBD, EMBD, 2);
        L("attn_k", EMBD, KV, 2);
        L("attn_v", EMBD, KV, 2);
        L("attn_output", EMBD, EMBD, 2);
        L("ffn_norm", EMBD, 1, 1);
        L("ffn_gate", EMBD, FF, 2);
        L("ffn_down", FF, EMBD, 2);
        L("ffn_up", EMBD, FF, 2);
#undef L
    }
#undef T
    float *data[3 + 9 * LAYERS];
    uint64_t rs = 77;
    for (size_t i = 0; i < n; i++) {
        const size_t count = (size_t)(t[i].ne[0] * t[i].ne[1]);
        data[i] = malloc(count * sizeof(float));
        assert_non_null(data[i]);
        for (size_t k = 0; k < count; k++)
            data[i][k] = t[i].dims == 1 ? 1.0f : 0.02f * tu_rand_normal(&rs);
        assert_int_equal(gguf_writer_add_tensor(w, t[i].name, QUARRY_TYPE_F32, t[i].dims, t[i].ne,
                                                data[i]),
                         0);
    }
    assert_int_equal(gguf_writer_write(w, in, NULL), 0);
    gguf_writer_free(w);
    for (size_t i = 0; i < n; i++)
        free(data[i]);

    static const char *const types[] = {"Q2_K",   "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S",
                                        "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K",   "Q4_1",
                                        "Q5_0",   "Q8_0"};
    double worst[QUARRY_TYPE_COUNT] = {0};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        check_quantized_file(in, types[i], 2, worst);
    printf("largest relative RMS error per type (bound):");
    for (int ty = 0; ty < QUARRY_TYPE_COUNT; ty++)
        if (worst[ty] > 0)
            printf(" %s %.4f (%.3f)", quarry_type_info((uint32_t)ty)->name, worst[ty],
                   rms_bound((enum quarry_type)ty));
    printf("\n");
    /* every K type was exercised */
    assert_true(worst[QUARRY_TYPE_Q2_K] > 0 && worst[QUARRY_TYPE_Q3_K] > 0 &&
                worst[QUARRY_TYPE_Q4_K] > 0 && worst[QUARRY_TYPE_Q5_K] > 0 &&
                worst[QUARRY_TYPE_Q6_K] > 0);
}

/* F16 input (llama-2-tiny-random): widened to F32 exactly. */
static void test_f16_input(void **state)
{
    (void)state;
    const char *input = "tests/data/llama-2-tiny-random.gguf";
    char out[160];
    out_path(out, sizeof out, "tiny-f32.gguf");
    struct quarry_quantize_params p = {QUARRY_FTYPE_ALL_F32, 2, NULL, NULL};
    quarry_error err = {0};
    if (quarry_quantize_file(input, out, &p, &err))
        fail_msg("%s", err.msg);
    gguf_file *a = NULL, *b = NULL;
    assert_int_equal(gguf_open(input, &a, NULL), 0);
    assert_int_equal(gguf_open(out, &b, NULL), 0);
    size_t widened = 0;
    for (uint64_t i = 0; i < b->n_tensors; i++) {
        const struct gguf_tensor *y = &b->tensors[i];
        char name[GGUF_MAX_NAME];
        snprintf(name, sizeof name, "%.*s", (int)y->name.len, y->name.data);
        const struct gguf_tensor *x = gguf_find_tensor(a, name);
        assert_non_null(x);
        if (x->type == QUARRY_TYPE_F16) {
            assert_int_equal(y->type, QUARRY_TYPE_F32);
            float *v = to_floats(x);
            assert_memory_equal(v, y->data, (size_t)y->n_bytes);
            free(v);
            widened++;
        } else {
            assert_int_equal(y->type, x->type);
            assert_memory_equal(x->data, y->data, (size_t)x->n_bytes);
        }
    }
    assert_true(widened > 0);
    gguf_close(a);
    gguf_close(b);
}

/* The stories260K types under Q4_K_M, from llama.cpp's rules by hand:
 * n_embd 64 and FFN 172 fit no K-quant block. */
static void test_stories_q4_k_m_types(void **state)
{
    (void)state;
    char out[160];
    out_path(out, sizeof out, "Q4_K_M");
    gguf_file *q = NULL;
    if (gguf_open(out, &q, NULL)) { /* made by test_stories_q4_k_m */
        struct quarry_quantize_params p = {QUARRY_FTYPE_MOSTLY_Q4_K_M, 1, NULL, NULL};
        assert_int_equal(quarry_quantize_file(STORIES, out, &p, NULL), 0);
        assert_int_equal(gguf_open(out, &q, NULL), 0);
    }
    assert_int_equal(gguf_find_tensor(q, "output.weight")->type, QUARRY_TYPE_Q8_0);
    assert_int_equal(gguf_find_tensor(q, "token_embd.weight")->type, QUARRY_TYPE_Q5_0);
    assert_int_equal(gguf_find_tensor(q, "blk.0.attn_v.weight")->type, QUARRY_TYPE_Q5_0);
    assert_int_equal(gguf_find_tensor(q, "blk.2.attn_v.weight")->type, QUARRY_TYPE_Q8_0);
    assert_int_equal(gguf_find_tensor(q, "blk.4.attn_v.weight")->type, QUARRY_TYPE_Q8_0);
    assert_int_equal(gguf_find_tensor(q, "blk.3.ffn_down.weight")->type, QUARRY_TYPE_F16);
    assert_int_equal(gguf_find_tensor(q, "blk.3.ffn_norm.weight")->type, QUARRY_TYPE_F32);
    gguf_close(q);
}

/* One thread or two: the same file, byte for byte. */
static void test_threads_do_not_change_bytes(void **state)
{
    (void)state;
    char a[160], b[160];
    out_path(a, sizeof a, "t1.gguf");
    out_path(b, sizeof b, "t2.gguf");
    struct quarry_quantize_params p = {QUARRY_FTYPE_MOSTLY_Q4_K_M, 1, NULL, NULL};
    assert_int_equal(quarry_quantize_file(STORIES, a, &p, NULL), 0);
    p.n_threads = 2;
    assert_int_equal(quarry_quantize_file(STORIES, b, &p, NULL), 0);
    size_t na, nb;
    void *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    assert_non_null(da);
    assert_non_null(db);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    free(da);
    free(db);
}

static int progress_calls;
static void count_progress(void *user, const struct quarry_quant_progress *p)
{
    (void)user;
    assert_int_equal(p->index, (size_t)progress_calls);
    assert_non_null(p->tensor);
    progress_calls++;
}

static void test_progress_and_bad_inputs(void **state)
{
    (void)state;
    char out[160], out2[160];
    quarry_error err = {0};
    out_path(out, sizeof out, "bad.gguf");
    struct quarry_quantize_params p = {QUARRY_FTYPE_MOSTLY_Q8_0, 1, count_progress, NULL};
    progress_calls = 0;
    assert_int_equal(quarry_quantize_file(STORIES, out, &p, &err), 0);
    assert_int_equal(progress_calls, 48);
    p.progress = NULL;

    /* a missing input */
    assert_int_not_equal(quarry_quantize_file("tests/data/no-such.gguf", out, &p, &err), 0);
    assert_true(strlen(err.msg) > 0);
    /* not a model (no architecture) */
    memset(&err, 0, sizeof err);
    assert_int_equal(quarry_quantize_file("tests/data/quant-golden.gguf", out, &p, &err),
                     QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "architecture"));
    /* an unknown file type */
    p.ftype = 4;
    assert_int_equal(quarry_quantize_file(STORIES, out, &p, &err), QUARRY_EINVAL);
    p.ftype = QUARRY_FTYPE_MOSTLY_Q8_0;
    /* the input as output */
    assert_int_equal(quarry_quantize_file(STORIES, STORIES, &p, &err), QUARRY_EINVAL);
    /* an output directory that does not exist */
    assert_int_equal(quarry_quantize_file(STORIES, "/nonexistent-dir/x.gguf", &p, &err),
                     QUARRY_EIO);
    /* requantizing a quantized file is refused; keeping its types is a copy */
    out_path(out2, sizeof out2, "requant.gguf");
    p.ftype = QUARRY_FTYPE_MOSTLY_Q4_0;
    memset(&err, 0, sizeof err);
    assert_int_equal(quarry_quantize_file(out, out2, &p, &err), QUARRY_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "quantized"));
    assert_int_equal(access(out2, F_OK), -1); /* nothing left behind */
    /* no temporary files left in the directory */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q -e spool -e '\\.tmp$'", tmpdir);
    assert_int_not_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_tinyllama_shape),
        cmocka_unit_test(test_plan_sizes_match_llama_cpp_files),
        cmocka_unit_test(test_rules_70b_and_fallbacks),
        cmocka_unit_test(test_ftype_names),
        cmocka_unit_test(test_stories_q8_0),
        cmocka_unit_test(test_stories_q4_0),
        cmocka_unit_test(test_stories_q5_1),
        cmocka_unit_test(test_stories_q4_k_m),
        cmocka_unit_test(test_stories_q3_k_m),
        cmocka_unit_test(test_stories_q2_k),
        cmocka_unit_test(test_stories_q6_k),
        cmocka_unit_test(test_stories_f16),
        cmocka_unit_test(test_stories_bf16),
        cmocka_unit_test(test_stories_q4_k_m_types),
        cmocka_unit_test(test_synthetic_k_quants),
        cmocka_unit_test(test_f16_input),
        cmocka_unit_test(test_threads_do_not_change_bytes),
        cmocka_unit_test(test_progress_and_bad_inputs),
    };
    setvbuf(stdout, NULL, _IONBF, 0);
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
