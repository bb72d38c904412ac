/*
 * test_synth.c - `quarry synth` as a library: the named shapes and --dims
 * parsing, shape checks, and small synthesized models: they read back with
 * the GGUF reader and carry everything a llama loader needs (hyper-parameter
 * keys, the vocabulary file's tokenizer keys, every tensor with its shape),
 * quarry's own model loader accepts them, the weights look like N(0, 0.02^2)
 * and the norms are 1, the output depends only on the seed (not on threads),
 * and a synthesized Q4_K_M file is byte for byte what quantizing the F32 one
 * gives (one type logic for both commands). Bad inputs give errors.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quantize.h"
#include "engine/synth.h"
#include "kernels/kernels.h"

#define VOCAB "tests/data/stories260K.gguf" /* 512 tokens */

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/quarry-test-synth-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in_tmp(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

/* A small shape: rows of 256 and 512 so that K-quants apply, GQA 2. */
static struct quarry_synth_params small_params(const char *out, const char *type)
{
    struct quarry_synth_params p = {0};
    quarry_error err = {0};
    assert_int_equal(
        quarry_synth_parse_dims("embd=256,layers=2,heads=4,kv_heads=2,ff=512,ctx=64", &p.shape,
                                &err),
        0);
    p.ftype = quarry_ftype_from_name(type);
    p.vocab_from = VOCAB;
    p.out_path = out;
    p.seed = 1234;
    p.n_threads = 2;
    return p;
}

static void synth_or_fail(const struct quarry_synth_params *p)
{
    quarry_error err = {0};
    if (quarry_synth(p, &err) != 0)
        fail_msg("synth: %s", err.msg);
}

static void test_named_shapes(void **state)
{
    (void)state;
    struct quarry_synth_shape s;
    assert_int_equal(quarry_synth_shape_named("tinyllama-1.1b", &s), 0);
    assert_int_equal(s.n_embd, 2048);
    assert_int_equal(s.n_layer, 22);
    assert_int_equal(s.n_head, 32);
    assert_int_equal(s.n_head_kv, 4);
    assert_int_equal(s.n_ff, 5632);
    assert_int_equal(s.n_vocab, 32000);
    assert_int_equal(s.n_ctx, 2048);
    assert_int_equal(quarry_synth_shape_named("llama-7b-1layer", &s), 0);
    assert_int_equal(s.n_embd, 4096);
    assert_int_equal(s.n_layer, 1);
    assert_int_equal(s.n_head, 32);
    assert_int_equal(s.n_head_kv, 32);
    assert_int_equal(s.n_ff, 11008);
    assert_int_equal(s.n_vocab, 32000);
    assert_int_equal(quarry_synth_shape_named("stories260K", &s), 0);
    assert_int_equal(s.n_embd, 64);
    assert_int_equal(s.n_layer, 5);
    assert_int_equal(s.n_head, 8);
    assert_int_equal(s.n_head_kv, 4);
    assert_int_equal(s.n_ff, 172);
    assert_int_equal(s.n_vocab, 512);
    assert_int_equal(quarry_synth_shape_named("gpt-5", &s), QUARRY_ENOTFOUND);
    size_t n = 0;
    for (const char *const *name = quarry_synth_shape_names(); *name; name++, n++) {
        assert_int_equal(quarry_synth_shape_named(*name, &s), 0);
        assert_int_equal(quarry_synth_check_shape(&s, NULL), 0);
    }
    assert_int_equal(n, 3);
}

static void test_dims_parsing(void **state)
{
    (void)state;
    struct quarry_synth_shape s;
    quarry_error err = {0};
    assert_int_equal(quarry_synth_parse_dims("embd=128,layers=3,heads=8,ff=344", &s, &err), 0);
    assert_int_equal(s.n_embd, 128);
    assert_int_equal(s.n_layer, 3);
    assert_int_equal(s.n_head, 8);
    assert_int_equal(s.n_head_kv, 8); /* defaults to heads */
    assert_int_equal(s.n_ff, 344);
    assert_int_equal(s.n_vocab, 0); /* from the vocabulary file */
    assert_int_equal(s.n_ctx, 2048);
    assert_int_equal(
        quarry_synth_parse_dims("embd=64,layers=1,heads=2,kv_heads=1,ff=8,vocab=512,ctx=16", &s,
                                &err),
        0);
    assert_int_equal(s.n_head_kv, 1);
    assert_int_equal(s.n_vocab, 512);
    assert_int_equal(s.n_ctx, 16);

    const char *bad[] = {
        "embd=128,layers=3,heads=8",            /* ff missing */
        "embd=128,layers=3,heads=8,ff=0",       /* zero */
        "embd=128,layers=3,heads=8,ff=1x",      /* not a number */
        "embd=128,layers=3,heads=8,ff=",        /* empty */
        "embd=128,layers=3,heads=8,ff=64,foo=1", /* unknown key */
        "embd128",                              /* no '=' */
        "embd=99999999999,layers=1,heads=1,ff=1", /* too large */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(quarry_synth_parse_dims(bad[i], &s, &err), QUARRY_EINVAL);
        assert_true(strlen(err.msg) > 0);
    }

    /* shape checks */
    struct quarry_synth_shape c = {"c", 256, 2, 4, 2, 512, 0, 64};
    assert_int_equal(quarry_synth_check_shape(&c, NULL), 0);
    c.n_head = 3; /* does not divide 256 */
    assert_int_equal(quarry_synth_check_shape(&c, &err), QUARRY_EINVAL);
    c.n_head = 4;
    c.n_head_kv = 3; /* does not divide 4 heads */
    assert_int_equal(quarry_synth_check_shape(&c, &err), QUARRY_EINVAL);
    c.n_head_kv = 4;
    c.n_embd = 4 * 7; /* head size 7, odd */
    assert_int_equal(quarry_synth_check_shape(&c, &err), QUARRY_EINVAL);
}

static uint32_t get_u32(const gguf_file *f, const char *key)
{
    uint32_t v = 0;
    if (gguf_get_u32(f, key, &v, NULL) != 0)
        fail_msg("no %s", key);
    return v;
}

/* Everything a llama loader reads, checked against the shape. */
static void check_llama_file(const char *path, const struct quarry_synth_shape *s, int ftype)
{
    gguf_file *f = NULL, *v = NULL;
    quarry_error err = {0};
    if (gguf_open(path, &f, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(gguf_open(VOCAB, &v, NULL), 0);

    struct gguf_str arch;
    assert_int_equal(gguf_get_str(f, "general.architecture", &arch, NULL), 0);
    assert_true(gguf_str_eq(arch, "llama"));
    assert_int_equal(get_u32(f, "llama.embedding_length"), s->n_embd);
    assert_int_equal(get_u32(f, "llama.block_count"), s->n_layer);
    assert_int_equal(get_u32(f, "llama.attention.head_count"), s->n_head);
    assert_int_equal(get_u32(f, "llama.attention.head_count_kv"), s->n_head_kv);
    assert_int_equal(get_u32(f, "llama.feed_forward_length"), s->n_ff);
    assert_int_equal(get_u32(f, "llama.context_length"), s->n_ctx);
    assert_int_equal(get_u32(f, "llama.rope.dimension_count"), s->n_embd / s->n_head);
    assert_int_equal(get_u32(f, "llama.vocab_size"), 512);
    assert_int_equal(get_u32(f, "general.file_type"), (uint32_t)ftype);
    float eps = 0;
    assert_int_equal(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps, NULL), 0);
    assert_true(eps > 0 && eps < 1e-3);

    /* every tokenizer key of the vocabulary file, same type and size */
    size_t n_tok_keys = 0;
    for (uint64_t i = 0; i < v->n_kv; i++) {
        const struct gguf_kv *a = &v->kvs[i];
        if (a->key.len < 10 || memcmp(a->key.data, "tokenizer.", 10) != 0)
            continue;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)a->key.len, a->key.data);
        const struct gguf_kv *b = gguf_find_kv(f, key);
        assert_non_null(b);
        assert_int_equal(a->value.type, b->value.type);
        if (a->value.type == GGUF_TYPE_ARRAY) {
            assert_int_equal(a->value.v.arr.count, b->value.v.arr.count);
            if (a->value.v.arr.elem_type == GGUF_TYPE_STRING)
                for (uint64_t k = 0; k < a->value.v.arr.count; k++)
                    assert_memory_equal(a->value.v.arr.strs[k].data, b->value.v.arr.strs[k].data,
                                        a->value.v.arr.strs[k].len);
        } else if (a->value.type != GGUF_TYPE_STRING) {
            assert_int_equal(a->value.v.u64, b->value.v.u64);
        }
        n_tok_keys++;
    }
    assert_true(n_tok_keys >= 5);

    /* every tensor, with its shape */
    const uint64_t kv = (uint64_t)s->n_embd / s->n_head * s->n_head_kv;
    struct {
        const char *kind;
        uint64_t ne0, ne1;
    } per_layer[] = {
        {"attn_norm", s->n_embd, 1}, {"attn_q", s->n_embd, s->n_embd}, {"attn_k", s->n_embd, kv},
        {"attn_v", s->n_embd, kv},   {"attn_output", s->n_embd, s->n_embd},
        {"ffn_norm", s->n_embd, 1},  {"ffn_gate", s->n_embd, s->n_ff},
        {"ffn_down", s->n_ff, s->n_embd}, {"ffn_up", s->n_embd, s->n_ff},
    };
    assert_int_equal(f->n_tensors, 3 + 9 * (uint64_t)s->n_layer);
    const struct gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], s->n_embd);
    assert_int_equal(t->ne[1], 512);
    t = gguf_find_tensor(f, "output.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[1], 512);
    t = gguf_find_tensor(f, "output_norm.weight");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 1);
    for (uint32_t l = 0; l < s->n_layer; l++)
        for (size_t k = 0; k < sizeof per_layer / sizeof per_layer[0]; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, per_layer[k].kind);
            t = gguf_find_tensor(f, name);
            if (!t)
                fail_msg("no tensor %s", name);
            assert_int_equal(t->ne[0], per_layer[k].ne0);
            assert_int_equal(t->ne[1], per_layer[k].ne1);
            assert_int_equal(t->n_dims, per_layer[k].ne1 == 1 ? 1 : 2);
            if (t->n_dims == 1) { /* norms: F32 ones */
                assert_int_equal(t->type, QUARRY_TYPE_F32);
                for (uint64_t i = 0; i < t->n_elements; i++)
                    assert_true(((const float *)t->data)[i] == 1.0f);
            }
        }
    gguf_close(v);
    gguf_close(f);

    /* quarry's loader takes it */
    quarry_model *m = NULL;
    if (quarry_model_open(path, &m, &err) != 0)
        fail_msg("model loader: %s", err.msg);
    quarry_model_free(m);
}

static void test_small_model_f32(void **state)
{
    (void)state;
    char out[160];
    path_in_tmp(out, sizeof out, "small-f32.gguf");
    struct quarry_synth_params p = small_params(out, "F32");
    synth_or_fail(&p);
    check_llama_file(out, &p.shape, QUARRY_FTYPE_ALL_F32);

    /* the weights: mean 0, spread 0.02, normal (68.3% within 1 sd, 95.4% within 2) */
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(out, &f, NULL), 0);
    const struct gguf_tensor *t = gguf_find_tensor(f, "blk.1.ffn_down.weight");
    const float *x = t->data;
    const size_t n = (size_t)t->n_elements; /* 131072 */
    double sum = 0, sq = 0;
    size_t in1 = 0, in2 = 0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
        sq += (double)x[i] * x[i];
        in1 += fabsf(x[i]) < 0.02f;
        in2 += fabsf(x[i]) < 0.04f;
    }
    const double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    printf("ffn_down: mean %.2e sd %.5f within 1 sd %.4f within 2 sd %.4f\n", mean, sd,
           (double)in1 / n, (double)in2 / n);
    assert_true(fabs(mean) < 4 * 0.02 / sqrt((double)n)); /* 4 standard errors */
    assert_true(fabs(sd - 0.02) < 0.02 * 0.01);
    assert_true(fabs((double)in1 / n - 0.6827) < 0.005);
    assert_true(fabs((double)in2 / n - 0.9545) < 0.003);
    /* tensors differ from each other */
    const struct gguf_tensor *u = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    assert_memory_not_equal(t->data, u->data, 64);
    gguf_close(f);
}

static void test_small_model_q4_k_m_matches_quantize(void **state)
{
    (void)state;
    char f32[160], direct[160], via[160];
    path_in_tmp(f32, sizeof f32, "m-f32.gguf");
    path_in_tmp(direct, sizeof direct, "m-direct.gguf");
    path_in_tmp(via, sizeof via, "m-via.gguf");
    struct quarry_synth_params p = small_params(f32, "F32");
    synth_or_fail(&p);
    p = small_params(direct, "Q4_K_M");
    synth_or_fail(&p);
    check_llama_file(direct, &p.shape, QUARRY_FTYPE_MOSTLY_Q4_K_M);

    struct quarry_quantize_params qp = {QUARRY_FTYPE_MOSTLY_Q4_K_M, 2, NULL, NULL};
    quarry_error err = {0};
    if (quarry_quantize_file(f32, via, &qp, &err))
        fail_msg("%s", err.msg);
    size_t na, nb;
    void *a = tu_read_file(direct, &na), *b = tu_read_file(via, &nb);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);

    /* and the mixture is there: output Q6_K; llama.cpp's use_more_bits(i, 2)
     * is true only for i >= 7 * 2 / 8 = 1, so attn_v and ffn_down of layer 1
     * are Q6_K and those of layer 0 Q4_K */
    gguf_file *f = NULL;
    assert_int_equal(gguf_open(direct, &f, NULL), 0);
    assert_int_equal(gguf_find_tensor(f, "output.weight")->type, QUARRY_TYPE_Q6_K);
    assert_int_equal(gguf_find_tensor(f, "token_embd.weight")->type, QUARRY_TYPE_Q4_K);
    assert_int_equal(gguf_find_tensor(f, "blk.0.attn_v.weight")->type, QUARRY_TYPE_Q4_K);
    assert_int_equal(gguf_find_tensor(f, "blk.1.attn_v.weight")->type, QUARRY_TYPE_Q6_K);
    assert_int_equal(gguf_find_tensor(f, "blk.1.ffn_down.weight")->type, QUARRY_TYPE_Q6_K);
    assert_int_equal(gguf_find_tensor(f, "blk.0.ffn_up.weight")->type, QUARRY_TYPE_Q4_K);
    gguf_close(f);
}

static void test_deterministic(void **state)
{
    (void)state;
    char a[160], b[160], c[160];
    path_in_tmp(a, sizeof a, "d1.gguf");
    path_in_tmp(b, sizeof b, "d2.gguf");
    path_in_tmp(c, sizeof c, "d3.gguf");
    struct quarry_synth_params p = small_params(a, "Q8_0");
    p.n_threads = 1;
    synth_or_fail(&p);
    p = small_params(b, "Q8_0");
    p.n_threads = 2;
    synth_or_fail(&p);
    p = small_params(c, "Q8_0");
    p.seed = 1235;
    synth_or_fail(&p);
    size_t na, nb, nc;
    char *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb), *dc = tu_read_file(c, &nc);
    assert_non_null(da);
    assert_non_null(db);
    assert_non_null(dc);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na); /* thread count does not matter */
    assert_int_equal(na, nc);
    assert_memory_not_equal(da + na - 4096, dc + nc - 4096, 4096); /* the seed does */
    free(da);
    free(db);
    free(dc);
}

static void test_named_stories_shape_loads(void **state)
{
    (void)state;
    char out[160];
    path_in_tmp(out, sizeof out, "stories.gguf");
    struct quarry_synth_params p = {0};
    assert_int_equal(quarry_synth_shape_named("stories260K", &p.shape), 0);
    p.ftype = QUARRY_FTYPE_MOSTLY_F16;
    p.vocab_from = VOCAB;
    p.out_path = out;
    p.seed = 7;
    synth_or_fail(&p);
    check_llama_file(out, &p.shape, QUARRY_FTYPE_MOSTLY_F16);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char out[160];
    path_in_tmp(out, sizeof out, "bad.gguf");
    quarry_error err = {0};
    struct quarry_synth_params p = small_params(out, "Q8_0");

    /* the shape's vocabulary must match the file's */
    p.shape.n_vocab = 32000;
    assert_int_equal(quarry_synth(&p, &err), QUARRY_EINVAL);
    assert_non_null(strstr(err.msg, "512"));
    p = small_params(out, "Q8_0");
    /* a vocabulary file without tokens */
    p.vocab_from = "tests/data/quant-golden.gguf";
    assert_int_equal(quarry_synth(&p, &err), QUARRY_EFORMAT);
    /* no vocabulary file */
    p.vocab_from = "tests/data/none.gguf";
    assert_int_not_equal(quarry_synth(&p, &err), 0);
    p = small_params(out, "Q8_0");
    /* unknown file type, bad shape */
    p.ftype = 5;
    assert_int_equal(quarry_synth(&p, &err), QUARRY_EINVAL);
    p = small_params(out, "Q8_0");
    p.shape.n_head = 3;
    assert_int_equal(quarry_synth(&p, &err), QUARRY_EINVAL);
    p = small_params("/nonexistent-dir/x.gguf", "Q8_0");
    assert_int_equal(quarry_synth(&p, &err), QUARRY_EIO);
    assert_int_equal(access(out, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named_shapes),
        cmocka_unit_test(test_dims_parsing),
        cmocka_unit_test(test_small_model_f32),
        cmocka_unit_test(test_small_model_q4_k_m_matches_quantize),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_named_stories_shape_loads),
        cmocka_unit_test(test_bad_inputs),
    };
    setvbuf(stdout, NULL, _IONBF, 0);
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
