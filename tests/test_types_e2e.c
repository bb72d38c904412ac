/*
 * test_types_e2e.c - every quantized type runs end to end.
 *
 * A small random-weight llama is synthesized in F32 (engine/synth.h; n_embd
 * 256 and n_ff 768 so K-quants apply to every matrix; the stories260K
 * vocabulary), then quantized (engine/quantize.h, llama-quantize's rules) to
 * every file type: F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S,
 * Q4_K_S, Q5_K_S, Q6_K and the Q3_K_M / Q4_K_M / Q5_K_M mixtures. Each file's
 * layer matrices must hold its base type (so the type's kernels really run),
 * and a short prompt's logits (every position) are compared with the F32
 * model's: all finite, and NMSE within a bound derived from the file itself.
 *
 * The bound. To first order, a network whose weight matrices W carry small
 * independent errors dW has an output error that is the sum of what each
 * matrix contributes, and a matrix with relative error e_W = |dW|^2/|W|^2
 * (its weight NMSE) perturbs its product by about e_W in NMSE terms; rmsnorm
 * removes scale but not direction, so the relative errors carry through the
 * residual stream. A token's logits depend, in sequence, on the embedding
 * row, in each layer on wv and wo (wq and wk only steer the softmax) and on
 * the FFN (gate and up act in parallel, then down), then on the output
 * matrix. So
 *   predicted = e_embd + sum_layers (e_v + e_o + (e_gate + e_up)/2 + e_down) + e_output,
 * where every e_W is measured here by dequantizing the file's tensor and
 * comparing it with the F32 file's (dequantization is checked bit-exact
 * against ggml in the per-type suites). The test requires
 *   measured logits NMSE < 4 x predicted
 * (4: slack for the terms the first-order sum leaves out - softmax, SiLU,
 * correlated errors - the printed ratios show the real margin). A wrong block
 * layout, scale, activation quantization or type mix-up in a kernel gives an
 * NMSE of order 1, orders of magnitude above the bound for every type.
 */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/synth.h"
#include "engine/tokenizer.h"
#include "kernels/kernels.h"

#define STORIES "tests/data/stories260K.gguf"
#define DIMS "embd=256,layers=2,heads=4,kv_heads=2,ff=768,ctx=64"
#define PROMPT "Once upon a time, there was a little girl named Lily."
#define BOUND_FACTOR 4.0

/* Dequantizes tensor t of f into a new float array. */
static float *tensor_floats(const struct gguf_tensor *t)
{
    float *out = malloc((size_t)t->n_elements * sizeof *out);
    assert_non_null(out);
    if (t->type == QUARRY_TYPE_F32) {
        memcpy(out, t->data, (size_t)t->n_elements * sizeof *out);
    } else {
        const struct quarry_type_traits *tr = quarry_traits(t->type);
        assert_non_null(tr->to_float);
        tr->to_float(t->data, out, (int64_t)t->n_elements);
    }
    return out;
}

/* Weight NMSE of one tensor of q against the same tensor of ref. */
static double weight_nmse(const gguf_file *q, const gguf_file *ref, const char *name)
{
    const struct gguf_tensor *tq = gguf_find_tensor(q, name);
    const struct gguf_tensor *tr = gguf_find_tensor(ref, name);
    assert_non_null(tq);
    assert_non_null(tr);
    assert_int_equal(tq->n_elements, tr->n_elements);
    float *a = tensor_floats(tq), *b = tensor_floats(tr);
    const double e = tu_nmse(a, b, (size_t)tr->n_elements);
    free(a);
    free(b);
    return e;
}

/* The first-order prediction of the logits NMSE (see the top of the file). */
static double predicted_nmse(const gguf_file *q, const gguf_file *ref, int n_layer)
{
    char name[64];
    double e = weight_nmse(q, ref, "token_embd.weight") + weight_nmse(q, ref, "output.weight");
    for (int l = 0; l < n_layer; l++) {
        double gate, up;
#define W(suffix) (snprintf(name, sizeof name, "blk.%d." suffix ".weight", l), \
                   weight_nmse(q, ref, name))
        e += W("attn_v") + W("attn_output") + W("ffn_down");
        gate = W("ffn_gate");
        up = W("ffn_up");
#undef W
        e += (gate + up) / 2;
    }
    return e;
}

/* Logits of every prompt position. */
static float *prompt_logits(const char *path, int32_t *n_tokens, int32_t *n_vocab)
{
    quarry_model *m = NULL;
    quarry_tokenizer *tok = NULL;
    quarry_context *ctx = NULL;
    quarry_error err = {0};
    int rc = quarry_model_open(path, &m, &err);
    if (rc == 0)
        rc = quarry_tokenizer_load(m->own_file, &tok, &err);
    struct quarry_context_params cp;
    quarry_context_params_default(&cp);
    if (rc == 0)
        rc = quarry_context_new(m, &cp, &ctx, &err);
    int32_t ids[64];
    size_t n = 0;
    if (rc == 0)
        rc = quarry_tokenize(tok, PROMPT, strlen(PROMPT), true, false, ids, 64, &n, &err);
    if (rc)
        fail_msg("%s: %s", path, err.msg);
    assert_true(n >= 8);
    int8_t want[64];
    memset(want, 1, sizeof want);
    const quarry_batch b = {.n_tokens = (int32_t)n, .token = ids, .logits = want};
    float *logits = malloc(n * (size_t)m->hp.n_vocab * sizeof *logits);
    assert_non_null(logits);
    rc = quarry_forward(m, ctx, &b, logits, &err);
    if (rc)
        fail_msg("%s: forward: %s", path, err.msg);
    *n_tokens = (int32_t)n;
    *n_vocab = m->hp.n_vocab;
    quarry_context_free(ctx);
    quarry_tokenizer_free(tok);
    quarry_model_free(m);
    return logits;
}

static void test_every_type_end_to_end(void **state)
{
    (void)state;
    char dir[] = "/tmp/quarry-test-types-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char f32_path[96], path[96];
    snprintf(f32_path, sizeof f32_path, "%s/f32.gguf", dir);

    struct quarry_synth_params sp = {0};
    quarry_error err = {0};
    assert_int_equal(quarry_synth_parse_dims(DIMS, &sp.shape, &err), 0);
    sp.ftype = QUARRY_FTYPE_ALL_F32;
    sp.vocab_from = STORIES;
    sp.out_path = f32_path;
    sp.seed = 11;
    sp.n_threads = 1;
    if (quarry_synth(&sp, &err) != 0)
        fail_msg("synth: %s", err.msg);

    int32_t n_tokens, n_vocab;
    float *ref = prompt_logits(f32_path, &n_tokens, &n_vocab);
    const size_t n = (size_t)n_tokens * (size_t)n_vocab;
    gguf_file *ref_file = NULL;
    assert_int_equal(gguf_open(f32_path, &ref_file, &err), 0);

    static const struct {
        const char *ftype;          /* as llama-quantize names it */
        enum quarry_type base;      /* the type of most layer matrices */
    } variants[] = {
        {"F16", QUARRY_TYPE_F16},       {"BF16", QUARRY_TYPE_BF16},
        {"Q8_0", QUARRY_TYPE_Q8_0},     {"Q4_0", QUARRY_TYPE_Q4_0},
        {"Q4_1", QUARRY_TYPE_Q4_1},     {"Q5_0", QUARRY_TYPE_Q5_0},
        {"Q5_1", QUARRY_TYPE_Q5_1},     {"Q2_K", QUARRY_TYPE_Q2_K},
        {"Q3_K_S", QUARRY_TYPE_Q3_K},   {"Q4_K_S", QUARRY_TYPE_Q4_K},
        {"Q5_K_S", QUARRY_TYPE_Q5_K},   {"Q6_K", QUARRY_TYPE_Q6_K},
        {"Q3_K_M", QUARRY_TYPE_Q3_K},   {"Q4_K_M", QUARRY_TYPE_Q4_K},
        {"Q5_K_M", QUARRY_TYPE_Q5_K},
    };
    printf("  %-7s %-5s %11s %11s %6s\n", "file", "base", "logits NMSE", "predicted", "ratio");
    int failures = 0;
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        const char *name = variants[i].ftype;
        snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
        struct quarry_quantize_params qp = {.ftype = quarry_ftype_from_name(name), .n_threads = 1};
        assert_true(qp.ftype >= 0);
        if (quarry_quantize_file(f32_path, path, &qp, &err) != 0)
            fail_msg("quantize %s: %s", name, err.msg);

        gguf_file *qf = NULL;
        assert_int_equal(gguf_open(path, &qf, &err), 0);
        /* the base type really is in the file (ffn_gate is never bumped) */
        const struct gguf_tensor *gate = gguf_find_tensor(qf, "blk.1.ffn_gate.weight");
        assert_non_null(gate);
        assert_int_equal(gate->type, variants[i].base);
        const double predicted = predicted_nmse(qf, ref_file, 2);
        gguf_close(qf);

        int32_t nt, nv;
        float *got = prompt_logits(path, &nt, &nv);
        assert_int_equal(nt, n_tokens);
        assert_int_equal(nv, n_vocab);
        size_t bad = 0;
        for (size_t k = 0; k < n; k++)
            bad += !isfinite(got[k]);
        const double e = tu_nmse(got, ref, n);
        const bool ok = bad == 0 && e < BOUND_FACTOR * predicted && predicted > 0;
        printf("  %-7s %-5s %11.3g %11.3g %6.2f%s\n", name,
               quarry_type_info(variants[i].base)->name, e, predicted, e / predicted,
               ok ? "" : "  <-- FAIL");
        if (bad)
            printf("          %zu logits are not finite\n", bad);
        failures += !ok;
        free(got);
        unlink(path);
    }
    gguf_close(ref_file);
    free(ref);
    unlink(f32_path);
    rmdir(dir);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_end_to_end),
    };
    return TU_RUN_GROUP(tests);
}
