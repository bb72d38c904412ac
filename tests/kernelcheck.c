/*
 * kernelcheck.c - the checks shared by every kernel test suite (see
 * kernelcheck.h for what each one asserts). Everything is driven by the type
 * id and the traits tables of each ISA level, so the same code checks the
 * scalar reference against ggml's golden data and every SIMD level against
 * the scalar reference.
 */
#include "tests/kernelcheck.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "kernels/fp16.h"

/* ---- expectations ------------------------------------------------------- */

/* test-quantize-fns thresholds (MAX_QUANTIZATION_TOTAL_ERROR[_2BITS|_3BITS],
 * MAX_DOT_PRODUCT_ERROR[_LOWBIT]); ggml uses the low-bit dot threshold for
 * q2_K only among the types quarry has. */
#define QFNS_TOTAL_ERROR 0.002
#define QFNS_TOTAL_ERROR_2BITS 0.0075
#define QFNS_TOTAL_ERROR_3BITS 0.0040
#define QFNS_DOT_ERROR 0.02
#define QFNS_DOT_ERROR_LOWBIT 0.04

struct kc_expect kc_expect(enum quarry_type type)
{
    struct kc_expect e = {
        .type = type,
        .vec_dot_type = type,
        .has_to_float = true,
        .has_vec_dot = true,
        .integer_dot = true,
        .has_golden = true,
        .max_total_error = QFNS_TOTAL_ERROR,
        .max_dot_error = QFNS_DOT_ERROR,
    };
    switch (type) {
    case QUARRY_TYPE_F32:
        e.has_golden = false;
        e.integer_dot = false;
        break;
    case QUARRY_TYPE_F16:
    case QUARRY_TYPE_BF16:
        e.integer_dot = false;
        break;
    case QUARRY_TYPE_Q4_0:
    case QUARRY_TYPE_Q5_0:
    case QUARRY_TYPE_Q8_0:
        e.vec_dot_type = QUARRY_TYPE_Q8_0;
        break;
    case QUARRY_TYPE_Q4_1:
    case QUARRY_TYPE_Q5_1:
        e.vec_dot_type = QUARRY_TYPE_Q8_1;
        break;
    case QUARRY_TYPE_Q8_1:
    case QUARRY_TYPE_Q8_K:
        /* activation types only: ggml neither dequantizes nor dots them */
        e.has_to_float = false;
        e.has_vec_dot = false;
        break;
    case QUARRY_TYPE_Q2_K:
        e.vec_dot_type = QUARRY_TYPE_Q8_K;
        e.max_total_error = QFNS_TOTAL_ERROR_2BITS;
        e.max_dot_error = QFNS_DOT_ERROR_LOWBIT;
        break;
    case QUARRY_TYPE_Q3_K:
        e.vec_dot_type = QUARRY_TYPE_Q8_K;
        e.max_total_error = QFNS_TOTAL_ERROR_3BITS;
        break;
    case QUARRY_TYPE_Q4_K:
    case QUARRY_TYPE_Q5_K:
    case QUARRY_TYPE_Q6_K:
        e.vec_dot_type = QUARRY_TYPE_Q8_K;
        break;
    default:
        fail_msg("kernelcheck: type id %d is not a supported type", (int)type);
    }
    return e;
}

enum quarry_type kc_state_type(void **state)
{
    assert_non_null(state);
    assert_non_null(*state);
    return (enum quarry_type)((uintptr_t)*state - 1);
}

/* ---- small helpers ------------------------------------------------------ */

static const char *type_name(enum quarry_type t)
{
    const struct quarry_type_info *info = quarry_type_info((uint32_t)t);
    return info ? info->name : "?";
}

size_t kc_row_bytes(enum quarry_type type, int64_t n)
{
    const size_t bytes = quarry_row_size(type, n);
    if (bytes == 0)
        fail_msg("kernelcheck: %" PRId64 " is not a whole number of %s blocks", n,
                 type_name(type));
    return bytes;
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        fail_msg("kernelcheck: out of memory (%zu bytes)", bytes);
    return p;
}

/* A buffer of `bytes` that starts `shift` bytes into its allocation, so the
 * kernels see unaligned (but type-aligned) data and AddressSanitizer catches
 * any read past the end. Free with free(*base). */
static void *shifted_alloc(size_t bytes, size_t shift, void **base)
{
    *base = xmalloc(bytes + shift);
    return (char *)*base + shift;
}

bool kc_same_float(float a, float b)
{
    return quarry_f32_bits(a) == quarry_f32_bits(b) || (isnan(a) && isnan(b));
}

int kc_build_levels(struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT])
{
    const int n = (int)quarry_isa_detected() + 1;
    for (int l = 0; l < n; l++) {
        const int rc = quarry_traits_build((enum quarry_isa)l, tables[l]);
        if (rc != 0)
            fail_msg("quarry_traits_build(%s) failed: %d", quarry_isa_name((enum quarry_isa)l), rc);
    }
    return n;
}

static void build_scalar(struct quarry_type_traits table[QUARRY_TYPE_COUNT])
{
    const int rc = quarry_traits_build(QUARRY_ISA_SCALAR, table);
    if (rc != 0)
        fail_msg("quarry_traits_build(scalar) failed: %d", rc);
}

/* ---- data ----------------------------------------------------------------- */

const char *kc_case_name(enum kc_case c)
{
    static const char *const names[KC_CASE_COUNT] = {
        "normal", "zero", "huge", "large", "tiny", "small", "mixed", "offset", "ties"};
    return (unsigned)c < KC_CASE_COUNT ? names[c] : "?";
}

void kc_fill_case(enum kc_case c, uint64_t seed, float *x, size_t n)
{
    uint64_t rng = seed * UINT64_C(0x9E3779B97F4A7C15) + UINT64_C(0xD1B54A32D192ED03);
    if (rng == 0)
        rng = 1;
    for (size_t i = 0; i < n; i++) {
        const float g = tu_rand_normal(&rng);
        switch (c) {
        case KC_CASE_NORMAL: x[i] = g; break;
        case KC_CASE_ZERO: x[i] = 0.0f; break;
        case KC_CASE_HUGE: x[i] = g * 1e30f; break;
        case KC_CASE_LARGE: x[i] = g * 1e4f; break;
        case KC_CASE_TINY: x[i] = g * 1e-30f; break;
        case KC_CASE_SMALL: x[i] = g * 1e-6f; break;
        case KC_CASE_MIXED: {
            /* each run of 32 gets its own scale and sign pattern */
            static const float scales[6] = {1e-6f, 1e-3f, 1.0f, 1e3f, 1e30f, 0.0f};
            const size_t run = i / 32;
            const float s = scales[run % 6];
            float v = fabsf(g) * s;
            switch ((run / 6 + run) % 4) {
            case 0: v = g * s; break;             /* mixed signs */
            case 1: break;                        /* all positive */
            case 2: v = -v; break;                /* all negative */
            default: v = (i % 3 == 0) ? 0.0f : (i % 2 ? v : -v); /* alternating, zeros */
            }
            x[i] = v;
            break;
        }
        case KC_CASE_OFFSET: x[i] = 3.0f + tu_rand_uniform(&rng); break;
        case KC_CASE_TIES: {
            /* amax 127 per 32 (so q8 scales are exactly 1), values k + 0.5,
             * and halfway points of fp16 (1 + 2^-11) and bf16 (1 + 2^-8) */
            const size_t j = i % 32;
            const float sign = (tu_rand_u64(&rng) & 1) ? -1.0f : 1.0f;
            if (j == 0)
                x[i] = ((i / 32) % 2) ? -127.0f : 127.0f;
            else if (j % 7 == 3)
                x[i] = sign * (1.0f + 0x1p-11f);
            else if (j % 7 == 5)
                x[i] = sign * (1.0f + 0x1p-8f);
            else
                x[i] = (float)((int)(tu_rand_u64(&rng) % 254) - 127) + 0.5f;
            break;
        }
        default: x[i] = 0.0f;
        }
    }
}

void kc_quantize_fns_data(float offset, size_t n, float *dst)
{
    /* test-quantize-fns: 0.1 + 2*cosf(i + offset), the sum in double */
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(0.1 + 2 * cosf((float)i + offset));
}

/* ---- dequantizing and reference dots ------------------------------------- */

void kc_dequantize(enum quarry_type type, const void *x, float *y, int64_t n)
{
    struct quarry_type_traits table[QUARRY_TYPE_COUNT];
    build_scalar(table);
    if ((unsigned)type < QUARRY_TYPE_COUNT && table[type].to_float) {
        table[type].to_float(x, y, n);
        return;
    }
    if (type == QUARRY_TYPE_Q8_1) {
        const block_q8_1 *b = x;
        for (int64_t i = 0; i < n / QK8_1; i++)
            for (int j = 0; j < QK8_1; j++)
                y[i * QK8_1 + j] = (float)b[i].qs[j] * quarry_fp16_to_fp32(b[i].d);
        return;
    }
    if (type == QUARRY_TYPE_Q8_K) {
        const block_q8_K *b = x;
        for (int64_t i = 0; i < n / QK_K; i++)
            for (int j = 0; j < QK_K; j++)
                y[i * QK_K + j] = (float)b[i].qs[j] * b[i].d;
        return;
    }
    fail_msg("kernelcheck: no way to dequantize %s", type_name(type));
}

double kc_dequant_dot(enum quarry_type xt, const void *x, enum quarry_type yt, const void *y,
                      int64_t n, double *abs_sum)
{
    float *fx = xmalloc(sizeof(float) * (size_t)n);
    float *fy = xmalloc(sizeof(float) * (size_t)n);
    kc_dequantize(xt, x, fx, n);
    kc_dequantize(yt, y, fy, n);
    double sum = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        const double p = (double)fx[i] * (double)fy[i];
        sum += p;
        mag += fabs(p);
    }
    free(fx);
    free(fy);
    if (abs_sum)
        *abs_sum = mag;
    return sum;
}

/* ---- the golden file ------------------------------------------------------ */

struct kc_golden {
    gguf_file *file;
};

kc_golden *kc_golden_open(void)
{
    kc_golden *g = xmalloc(sizeof *g);
    quarry_error err = {0};
    const int rc = gguf_open(KC_GOLDEN_PATH, &g->file, &err);
    if (rc != 0) {
        free(g);
        fail_msg("cannot open %s: %s", KC_GOLDEN_PATH, err.msg);
    }
    return g;
}

void kc_golden_close(kc_golden *g)
{
    if (!g)
        return;
    gguf_close(g->file);
    free(g);
}

bool kc_golden_has(const kc_golden *g, const char *name)
{
    return gguf_find_tensor(g->file, name) != NULL;
}

const void *kc_golden_tensor(const kc_golden *g, const char *name, enum quarry_type type,
                             int64_t *ne0, int64_t *ne1)
{
    const struct gguf_tensor *t = gguf_find_tensor(g->file, name);
    if (!t)
        fail_msg("%s has no tensor %s", KC_GOLDEN_PATH, name);
    if (t->type != type || t->n_dims != 2)
        fail_msg("%s: tensor %s is %s with %u dims, expected 2-d %s", KC_GOLDEN_PATH, name,
                 type_name(t->type), t->n_dims, type_name(type));
    *ne0 = (int64_t)t->ne[0];
    *ne1 = (int64_t)t->ne[1];
    return t->data;
}

/* ---- traits --------------------------------------------------------------- */

void kc_check_traits(enum quarry_type type)
{
    const struct kc_expect e = kc_expect(type);
    const struct quarry_type_info *info = quarry_type_info((uint32_t)type);
    assert_non_null(info);
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    for (int l = 0; l < levels; l++) {
        const char *lvl = quarry_isa_name((enum quarry_isa)l);
        const struct quarry_type_traits *t = &tables[l][type];
        if (!t->name || strcmp(t->name, info->name) != 0)
            fail_msg("%s: traits name %s, expected %s", lvl, t->name ? t->name : "(null)",
                     info->name);
        assert_int_equal(t->block_size, info->block_size);
        assert_int_equal(t->type_size, info->type_size);
        if (!t->from_float_ref || !t->from_float)
            fail_msg("%s %s: from_float_ref/from_float missing", lvl, info->name);
        if (e.has_to_float && !t->to_float)
            fail_msg("%s %s: to_float missing", lvl, info->name);
        if (e.has_vec_dot) {
            if (!t->vec_dot)
                fail_msg("%s %s: vec_dot missing", lvl, info->name);
            if (t->vec_dot_type != e.vec_dot_type)
                fail_msg("%s %s: vec_dot_type %s, ggml uses %s", lvl, info->name,
                         type_name(t->vec_dot_type), type_name(e.vec_dot_type));
            const struct quarry_type_traits *a = &tables[l][e.vec_dot_type];
            if (!a->from_float_ref || !a->from_float)
                fail_msg("%s: activation type %s has no quantizer", lvl, type_name(e.vec_dot_type));
        }
        if (!t->vec_dot_prepared != !t->act_prepare || !t->act_prepare != !t->act_prepared_size)
            fail_msg("%s %s: act_prepared_size, act_prepare and vec_dot_prepared not set together",
                     lvl, info->name);
        const bool legacy = type == QUARRY_TYPE_Q4_0 || type == QUARRY_TYPE_Q4_1 ||
                            type == QUARRY_TYPE_Q5_0 || type == QUARRY_TYPE_Q5_1 ||
                            type == QUARRY_TYPE_Q8_0;
        if (legacy && l == QUARRY_ISA_AVX512 && !t->vec_dot_prepared)
            fail_msg("%s %s: the AVX-512 legacy dot products have a prepared form", lvl, info->name);
        if (t->vec_dot_prepared && !t->vec_dot)
            fail_msg("%s %s: vec_dot_prepared without vec_dot", lvl, info->name);
        if ((int)t->isa > l)
            fail_msg("%s %s: isa field says %s", lvl, info->name, quarry_isa_name(t->isa));
    }
}

/* ---- golden checks -------------------------------------------------------- */

void kc_check_golden_quantize(enum quarry_type type)
{
    const struct kc_expect e = kc_expect(type);
    if (!e.has_golden) {
        skip();
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "q.%s", type_name(type));
    kc_golden *g = kc_golden_open();
    int64_t n, rows, qn, qrows;
    const float *src = kc_golden_tensor(g, "src", QUARRY_TYPE_F32, &n, &rows);
    const uint8_t *golden = kc_golden_tensor(g, name, type, &qn, &qrows);
    assert_int_equal(qn, n);
    assert_int_equal(qrows, rows);
    const size_t row_bytes = kc_row_bytes(type, n);
    const size_t block_bytes = quarry_type_info((uint32_t)type)->type_size;
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    uint8_t *q = xmalloc(row_bytes);
    for (int l = 0; l < levels; l++) {
        for (int64_t r = 0; r < rows; r++) {
            memset(q, 0xA5, row_bytes);
            tables[l][type].from_float_ref(src + r * n, q, n);
            const uint8_t *want = golden + (size_t)r * row_bytes;
            for (size_t b = 0; b < row_bytes; b++) {
                if (q[b] != want[b]) {
                    const size_t blk = b / block_bytes, off = b % block_bytes;
                    const unsigned got = q[b], exp = want[b];
                    free(q);
                    kc_golden_close(g);
                    fail_msg("%s %s from_float_ref: row %" PRId64 " block %zu byte %zu: "
                             "0x%02x, ggml 0x%02x", quarry_isa_name((enum quarry_isa)l),
                             type_name(type), r, blk, off, got, exp);
                }
            }
        }
    }
    free(q);
    kc_golden_close(g);
}

void kc_check_golden_dequantize(enum quarry_type type)
{
    const struct kc_expect e = kc_expect(type);
    if (!e.has_golden || !e.has_to_float) {
        skip();
        return;
    }
    char qname[64], dqname[64];
    snprintf(qname, sizeof qname, "q.%s", type_name(type));
    snprintf(dqname, sizeof dqname, "dq.%s", type_name(type));
    kc_golden *g = kc_golden_open();
    int64_t n, rows, dn, drows;
    const uint8_t *q = kc_golden_tensor(g, qname, type, &n, &rows);
    const float *want = kc_golden_tensor(g, dqname, QUARRY_TYPE_F32, &dn, &drows);
    assert_int_equal(dn, n);
    assert_int_equal(drows, rows);
    const size_t row_bytes = kc_row_bytes(type, n);
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    float *y = xmalloc(sizeof(float) * (size_t)n);
    for (int l = 0; l < levels; l++) {
        for (int64_t r = 0; r < rows; r++) {
            tables[l][type].to_float(q + (size_t)r * row_bytes, y, n);
            for (int64_t i = 0; i < n; i++) {
                const float w = want[r * n + i];
                if (quarry_f32_bits(y[i]) != quarry_f32_bits(w)) {
                    const float got = y[i];
                    free(y);
                    kc_golden_close(g);
                    fail_msg("%s %s to_float: row %" PRId64 " [%" PRId64 "] = %.9g (0x%08x), "
                             "ggml %.9g (0x%08x)", quarry_isa_name((enum quarry_isa)l),
                             type_name(type), r, i, (double)got, quarry_f32_bits(got), (double)w,
                             quarry_f32_bits(w));
                }
            }
        }
    }
    free(y);
    kc_golden_close(g);
}

void kc_check_golden_dot(enum quarry_type type, double rel_tol)
{
    const struct kc_expect e = kc_expect(type);
    if (!e.has_golden || !e.has_vec_dot) {
        skip();
        return;
    }
    char qname[64], dotname[64];
    snprintf(qname, sizeof qname, "q.%s", type_name(type));
    snprintf(dotname, sizeof dotname, "dot.%s", type_name(type));
    kc_golden *g = kc_golden_open();
    int64_t n, rows, an, arows, dn, drows;
    const uint8_t *q = kc_golden_tensor(g, qname, type, &n, &rows);
    const float *act = kc_golden_tensor(g, "act", QUARRY_TYPE_F32, &an, &arows);
    const float *want = kc_golden_tensor(g, dotname, QUARRY_TYPE_F32, &dn, &drows);
    assert_int_equal(an, n);
    assert_int_equal(dn, arows); /* dot[i][j]: row i, column j; ne0 = columns */
    assert_int_equal(drows, rows);
    const enum quarry_type vdt = e.vec_dot_type;
    const size_t row_bytes = kc_row_bytes(type, n);
    const size_t act_bytes = kc_row_bytes(vdt, n);
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    /* activations quantized by our reference quantizer (scalar table) */
    uint8_t *act_ref = xmalloc(act_bytes * (size_t)arows);
    uint8_t *act_fast = xmalloc(act_bytes * (size_t)arows);
    for (int64_t j = 0; j < arows; j++)
        tables[0][vdt].from_float_ref(act + j * n, act_ref + (size_t)j * act_bytes, n);
    /* magnitude of each dot: sum |dq(x)_k * dq(y)_k| */
    double *mag = xmalloc(sizeof(double) * (size_t)(rows * arows));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < arows; j++)
            kc_dequant_dot(type, q + (size_t)i * row_bytes, vdt, act_ref + (size_t)j * act_bytes,
                           n, &mag[i * arows + j]);
    double worst = 0;
    for (int l = 0; l < levels; l++) {
        const char *lvl = quarry_isa_name((enum quarry_isa)l);
        for (int64_t j = 0; j < arows; j++)
            tables[l][vdt].from_float(act + j * n, act_fast + (size_t)j * act_bytes, n);
        for (int pass = 0; pass < 2; pass++) {
            const uint8_t *a = pass == 0 ? act_ref : act_fast;
            for (int64_t i = 0; i < rows; i++) {
                for (int64_t j = 0; j < arows; j++) {
                    float s = NAN;
                    tables[l][type].vec_dot((int)n, &s, q + (size_t)i * row_bytes,
                                            a + (size_t)j * act_bytes);
                    const double w = want[i * arows + j];
                    const double scale = fmax(fabs(w), mag[i * arows + j]);
                    const double err = fabs((double)s - w);
                    if (!(err <= rel_tol * scale)) {
                        free(act_ref);
                        free(act_fast);
                        free(mag);
                        kc_golden_close(g);
                        fail_msg("%s %s vec_dot (%s activations): [%" PRId64 "][%" PRId64 "] = "
                                 "%.9g, ggml %.9g, |diff| %.3g > %.1g * %.6g", lvl,
                                 type_name(type), pass == 0 ? "reference" : "fast", i, j,
                                 (double)s, w, err, rel_tol, scale);
                    }
                    if (scale > 0 && err / scale > worst)
                        worst = err / scale;
                }
            }
        }
    }
    print_message("%s dot vs ggml golden: worst |diff| / magnitude = %.3g over %d level(s)\n",
                  type_name(type), worst, levels);
    free(act_ref);
    free(act_fast);
    free(mag);
    kc_golden_close(g);
}

/* ---- every ISA level against scalar --------------------------------------- */

/* Row lengths tried: several blocks, odd block counts, and (for block size 1)
 * every SIMD tail length. */
static const int64_t float_lengths[] = {1,   2,   3,   5,   7,   8,   15,  16,  17,  31,
                                        32,  33,  47,  63,  64,  65,  100, 127, 128, 129,
                                        255, 256, 257, 511, 512, 513, 1000, 1024};
static const int64_t block_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33};

/* Quantization step of element i of a dequantized q8_0/q8_1/q8_K row, used to
 * bound how far an approximate fast quantizer may stray (one step); 0 for a
 * type whose fast quantizer must be exact. */
static float q8_step(enum quarry_type type, const void *q, int64_t i)
{
    switch (type) {
    case QUARRY_TYPE_Q8_0: return quarry_fp16_to_fp32(((const block_q8_0 *)q)[i / QK8_0].d);
    case QUARRY_TYPE_Q8_1: return quarry_fp16_to_fp32(((const block_q8_1 *)q)[i / QK8_1].d);
    case QUARRY_TYPE_Q8_K: return ((const block_q8_K *)q)[i / QK_K].d;
    default: return 0.0f;
    }
}

/* The fast from_float of level l on x: bit-identical to the reference, or
 * (contract: only for activation quantizers) within one step per element. */
static void check_fast_quantizer(const char *lvl, enum quarry_type type,
                                 const struct quarry_type_traits *t, const void *q_ref,
                                 const float *x, int64_t n, enum kc_case c)
{
    const size_t bytes = kc_row_bytes(type, n);
    void *base;
    void *q = shifted_alloc(bytes, quarry_type_info((uint32_t)type)->type_size, &base);
    t->from_float(x, q, n);
    if (memcmp(q, q_ref, bytes) == 0) {
        free(base);
        return;
    }
    float *d_ref = xmalloc(sizeof(float) * (size_t)n);
    float *d_fast = xmalloc(sizeof(float) * (size_t)n);
    kc_dequantize(type, q_ref, d_ref, n);
    kc_dequantize(type, q, d_fast, n);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++) {
        if (kc_same_float(d_ref[i], d_fast[i]))
            continue;
        differ++;
        const float step = q8_step(type, q_ref, i);
        if (!(fabsf(d_ref[i] - d_fast[i]) <= step * 1.000001f)) {
            const double a = d_fast[i], b = d_ref[i];
            free(d_ref);
            free(d_fast);
            free(base);
            fail_msg("%s %s from_float (%s, n=%" PRId64 "): [%" PRId64 "] dequantizes to %.9g, "
                     "reference %.9g (allowed: one quantization step of approximate rounding, "
                     "activation types only)", lvl, type_name(type), kc_case_name(c), n, i, a, b);
        }
    }
    print_message("note: %s %s from_float is not bit-identical to the reference (%s, n=%" PRId64
                  "): %" PRId64 " values one step apart\n", lvl, type_name(type), kc_case_name(c),
                  n, differ);
    free(d_ref);
    free(d_fast);
    free(base);
}

/* vec_dot_prepared against the level's own vec_dot s: bit for bit, with the
 * prepared buffer filled with garbage first (act_prepare must write all of
 * it that the dot product reads). */
static void check_prepared_dot(const char *lvl, enum quarry_type type,
                               const struct quarry_type_traits *t, const void *q, const void *yq,
                               int64_t n, float s, enum kc_case c)
{
    if (!t->act_prepare || !t->act_prepared_size)
        fail_msg("%s %s: vec_dot_prepared without act_prepare/act_prepared_size", lvl,
                 type_name(type));
    const size_t bytes = t->act_prepared_size(n);
    if (bytes == 0 || bytes % 64 != 0)
        fail_msg("%s %s: act_prepared_size(%" PRId64 ") = %zu, not a positive multiple of 64", lvl,
                 type_name(type), n, bytes);
    void *prepared = aligned_alloc(64, bytes);
    if (!prepared)
        fail_msg("out of memory");
    memset(prepared, 0xA5, bytes);
    t->act_prepare(n, yq, prepared);
    float p = NAN;
    t->vec_dot_prepared((int)n, &p, q, prepared);
    free(prepared);
    if (!kc_same_float(p, s))
        fail_msg("%s %s vec_dot_prepared differs from vec_dot (%s, n=%" PRId64 "): %.9g vs %.9g",
                 lvl, type_name(type), kc_case_name(c), n, (double)p, (double)s);
}

static void check_levels_on(enum quarry_type type, const struct kc_expect *e,
                            struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT],
                            int levels, enum kc_case c, int64_t n, uint64_t seed)
{
    const enum quarry_type vdt = e->vec_dot_type;
    const struct quarry_type_traits *scalar = tables[0];
    const size_t qbytes = kc_row_bytes(type, n);
    const size_t shift = quarry_type_info((uint32_t)type)->type_size;
    void *xbase, *qbase, *q2base, *dbase, *d2base;
    /* inputs start one float past an aligned address */
    float *x = (float *)shifted_alloc(sizeof(float) * (size_t)n, sizeof(float), &xbase);
    kc_fill_case(c, seed, x, (size_t)n);
    void *q_ref = shifted_alloc(qbytes, shift, &qbase);
    void *q = shifted_alloc(qbytes, shift, &q2base);
    float *dq_ref = shifted_alloc(sizeof(float) * (size_t)n, sizeof(float), &dbase);
    float *dq = shifted_alloc(sizeof(float) * (size_t)n, sizeof(float), &d2base);
    scalar[type].from_float_ref(x, q_ref, n);
    if (scalar[type].to_float)
        scalar[type].to_float(q_ref, dq_ref, n);

    /* activations: y from a normal row and from the same case */
    const bool dot = e->has_vec_dot && scalar[type].vec_dot;
    const size_t abytes = dot ? kc_row_bytes(vdt, n) : 0;
    const size_t ashift = quarry_type_info((uint32_t)vdt)->type_size;
    void *ybase = NULL, *yqbase[2] = {NULL, NULL};
    void *yq[2] = {NULL, NULL};
    float dot_ref[2] = {0, 0};
    double mag[2] = {0, 0};
    if (dot) {
        float *y = shifted_alloc(sizeof(float) * (size_t)n, sizeof(float), &ybase);
        for (int k = 0; k < 2; k++) {
            kc_fill_case(k == 0 ? KC_CASE_NORMAL : c, seed ^ UINT64_C(0x5555), y, (size_t)n);
            yq[k] = shifted_alloc(abytes, ashift, &yqbase[k]);
            scalar[vdt].from_float_ref(y, yq[k], n);
            scalar[type].vec_dot((int)n, &dot_ref[k], q_ref, yq[k]);
            kc_dequant_dot(type, q_ref, vdt, yq[k], n, &mag[k]);
        }
    }

    for (int l = 0; l < levels; l++) {
        const char *lvl = quarry_isa_name((enum quarry_isa)l);
        const struct quarry_type_traits *t = &tables[l][type];
        if (l > 0) {
            memset(q, 0x5A, qbytes);
            t->from_float_ref(x, q, n);
            if (memcmp(q, q_ref, qbytes) != 0)
                fail_msg("%s %s from_float_ref differs from scalar (%s, n=%" PRId64 ")", lvl,
                         type_name(type), kc_case_name(c), n);
        }
        check_fast_quantizer(lvl, type, t, q_ref, x, n, c);
        if (l > 0 && t->to_float && scalar[type].to_float) {
            t->to_float(q_ref, dq, n);
            if (memcmp(dq, dq_ref, sizeof(float) * (size_t)n) != 0) {
                int64_t i = 0;
                while (i < n && quarry_f32_bits(dq[i]) == quarry_f32_bits(dq_ref[i]))
                    i++;
                fail_msg("%s %s to_float differs from scalar (%s, n=%" PRId64 "): [%" PRId64
                         "] %.9g vs %.9g", lvl, type_name(type), kc_case_name(c), n, i,
                         (double)dq[i], (double)dq_ref[i]);
            }
        }
        if (l > 0 && dot) {
            for (int k = 0; k < 2; k++) {
                float s = NAN;
                t->vec_dot((int)n, &s, q_ref, yq[k]);
                const bool ok = e->integer_dot
                    ? kc_same_float(s, dot_ref[k])
                    : (kc_same_float(s, dot_ref[k]) ||
                       fabs((double)s - (double)dot_ref[k]) <= 1e-6 * mag[k]);
                if (!ok)
                    fail_msg("%s %s vec_dot differs from scalar (x %s, y %s, n=%" PRId64 "): "
                             "%.9g vs %.9g (%s; magnitude %.6g)", lvl, type_name(type),
                             kc_case_name(c), k == 0 ? "normal" : kc_case_name(c), n, (double)s,
                             (double)dot_ref[k], e->integer_dot ? "must be bit-identical"
                                                                : "allowed 1e-6 * magnitude",
                             mag[k]);
                if (t->vec_dot_prepared)
                    check_prepared_dot(lvl, type, t, q_ref, yq[k], n, s, c);
            }
        }
    }
    free(xbase);
    free(qbase);
    free(q2base);
    free(dbase);
    free(d2base);
    free(ybase);
    free(yqbase[0]);
    free(yqbase[1]);
}

void kc_check_isa_levels(enum quarry_type type)
{
    const struct kc_expect e = kc_expect(type);
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    const int bs = quarry_type_info((uint32_t)type)->block_size;
    const int64_t *lens = bs == 1 ? float_lengths : block_counts;
    const size_t nlens = bs == 1 ? sizeof float_lengths / sizeof float_lengths[0]
                                 : sizeof block_counts / sizeof block_counts[0];
    for (int c = 0; c < KC_CASE_COUNT; c++)
        for (size_t k = 0; k < nlens; k++) {
            const int64_t n = bs == 1 ? lens[k] : lens[k] * bs;
            check_levels_on(type, &e, tables, levels, (enum kc_case)c, n,
                            (uint64_t)(c * 1000 + (int)k + 1));
        }
    print_message("%s: %d ISA level(s) checked against scalar (%s)\n", type_name(type), levels,
                  quarry_isa_name((enum quarry_isa)(levels - 1)));
}

/* ---- test-quantize-fns ------------------------------------------------------ */

/* test-quantize-fns' array_rmse: sqrtf(sum of squares) / n. */
static float qfns_rmse(const float *a, const float *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const double diff = a[i] - b[i];
        sum += diff * diff;
    }
    return sqrtf((float)sum) / (float)n;
}

double kc_total_quantization_error(const struct quarry_type_traits *table, enum quarry_type type,
                                   const float *test_data, size_t n)
{
    const struct quarry_type_traits *t = &table[type];
    void *q = xmalloc(kc_row_bytes(type, (int64_t)n));
    float *out = xmalloc(sizeof(float) * n);
    t->from_float(test_data, q, (int64_t)n);
    t->to_float(q, out, (int64_t)n);
    const float err = qfns_rmse(test_data, out, n);
    free(q);
    free(out);
    return err;
}

double kc_reference_quantization_error(const struct quarry_type_traits *table,
                                       enum quarry_type type, const float *test_data, size_t n)
{
    const struct quarry_type_traits *t = &table[type];
    void *q = xmalloc(kc_row_bytes(type, (int64_t)n));
    float *out = xmalloc(sizeof(float) * n);
    float *out_ref = xmalloc(sizeof(float) * n);
    t->from_float(test_data, q, (int64_t)n);
    t->to_float(q, out, (int64_t)n);
    t->from_float_ref(test_data, q, (int64_t)n);
    t->to_float(q, out_ref, (int64_t)n);
    const float err = qfns_rmse(out, out_ref, n);
    free(q);
    free(out);
    free(out_ref);
    return err;
}

double kc_dot_product_error(const struct quarry_type_traits *table, enum quarry_type type,
                            const float *a, const float *b, size_t n)
{
    const struct quarry_type_traits *t = &table[type];
    const enum quarry_type vdt = t->vec_dot_type;
    void *qa = xmalloc(kc_row_bytes(type, (int64_t)n));
    void *qb = xmalloc(kc_row_bytes(vdt, (int64_t)n));
    t->from_float(a, qa, (int64_t)n);
    table[vdt].from_float(b, qb, (int64_t)n);
    float result = INFINITY;
    t->vec_dot((int)n, &result, qa, qb);
    /* test-quantize-fns' dot_product: float products summed in double,
     * returned as float */
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += a[i] * b[i];
    const float dot_ref = (float)sum;
    free(qa);
    free(qb);
    return fabsf(result - dot_ref) / (float)n;
}

void kc_check_round_trip(enum quarry_type type)
{
    const struct kc_expect e = kc_expect(type);
    const size_t n = KC_QFNS_TEST_SIZE;
    float *data = xmalloc(sizeof(float) * n);
    float *data2 = xmalloc(sizeof(float) * n);
    kc_quantize_fns_data(0.0f, n, data);
    kc_quantize_fns_data(1.0f, n, data2);
    struct quarry_type_traits tables[QUARRY_ISA_COUNT][QUARRY_TYPE_COUNT];
    const int levels = kc_build_levels(tables);
    bool measured = false;
    for (int l = 0; l < levels; l++) {
        const char *lvl = quarry_isa_name((enum quarry_isa)l);
        const struct quarry_type_traits *t = &tables[l][type];
        if (!t->from_float || !t->to_float)
            continue; /* test-quantize-fns skips these too */
        measured = true;
        const double total = kc_total_quantization_error(tables[l], type, data, n);
        const double ref = kc_reference_quantization_error(tables[l], type, data, n);
        double dot = 0;
        char dot_text[64] = "no vec_dot";
        if (t->vec_dot) {
            dot = kc_dot_product_error(tables[l], type, data, data2, n);
            snprintf(dot_text, sizeof dot_text, "%.6f (< %g)", dot, e.max_dot_error);
        }
        print_message("%s %s: total quantization error %.6f (< %g), reference error %.6f "
                      "(< %g), dot product error %s\n", lvl, type_name(type), total,
                      e.max_total_error, ref, KC_MAX_REFERENCE_ERROR, dot_text);
        if (!(total < e.max_total_error) || !(ref < KC_MAX_REFERENCE_ERROR) ||
            !(dot < e.max_dot_error)) {
            free(data);
            free(data2);
            fail_msg("%s %s: test-quantize-fns threshold exceeded", lvl, type_name(type));
        }
    }
    free(data);
    free(data2);
    if (!measured)
        skip();
}

/* ---- cmocka entry points -------------------------------------------------- */

void kc_test_traits(void **state) { kc_check_traits(kc_state_type(state)); }
void kc_test_golden_quantize(void **state) { kc_check_golden_quantize(kc_state_type(state)); }
void kc_test_golden_dequantize(void **state) { kc_check_golden_dequantize(kc_state_type(state)); }
void kc_test_golden_dot(void **state) { kc_check_golden_dot(kc_state_type(state), 1e-5); }
void kc_test_isa_levels(void **state) { kc_check_isa_levels(kc_state_type(state)); }
void kc_test_round_trip(void **state) { kc_check_round_trip(kc_state_type(state)); }
