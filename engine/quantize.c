/*
 * quantize.c - model quantization: llama.cpp's per-tensor type rules, the
 * parallel row converter, the spool file, and the whole-file driver behind
 * `quarry quantize` (see quantize.h).
 *
 * Which tensors are converted (llama.cpp's tensor_allows_quantization): names
 * ending in "weight" with two or more dimensions, except norms ("_norm.weight"),
 * expert routers ("ffn_gate_inp.weight") and a few small special tensors of
 * other architectures. Everything else (1-D norms, biases) keeps its type.
 *
 * The mixture rules (llama.cpp's llama_tensor_get_type, for the file types
 * quarry produces; they apply only when the base type is quantized). "i" is
 * a tensor's position among its kind in llama.cpp's order - for llama, the
 * layer index - and n the layer count; more_bits(i, n) is true for
 * i < n/8, i >= 7n/8 and every third layer in between ((i - n/8) % 3 == 2).
 *   output.weight (and token_embd.weight when there is no output.weight, the
 *   tied case): Q6_K, or Q8_0 when the base type is Q8_0, when the row length
 *   is not a multiple of the base type's block size, or for Falcon.
 *   token_embd.weight otherwise: the base type.
 *   attn_v (also attn_qkv, attn_kv_b):
 *     Q2_K: Q4_K if n_head/n_head_kv >= 4, else Q3_K     Q3_K_L: Q5_K
 *     Q3_K_M: Q5_K for the first two, then Q4_K          Q4_K_S: Q5_K for i < 4
 *     Q4_K_M, Q5_K_M: Q6_K where more_bits(i, n)
 *     70B llama (80 layers, GQA): Q3_K/Q4_K become Q5_K; 8 experts: Q8_0.
 *   attn_k: Q8_0 with 8 experts.
 *   ffn_down:
 *     Q2_K: Q3_K                      Q3_K_L: Q5_K (Falcon: Q4_K)
 *     Q3_K_M: Q5_K for i < n/16, else Q4_K (Falcon: Q4_K only where more_bits)
 *     Q4_K_M: Q6_K where more_bits (Falcon: Q6_K for i < n/16, Q5_K where more_bits)
 *     Q5_K_M: Q6_K where more_bits    Q4_K_S: Q5_K for i < n/8 (not Falcon)
 *   attn_output (not Falcon): Q2_K: Q3_K; Q3_K_M: Q4_K; Q3_K_L: Q5_K; with 8
 *     experts Q5_K for the 2-4 bit K types. Falcon: Q3_K_L: Q4_K.
 * Row-length fallback (a K-quant needs rows of 256): Q2_K, Q3_K -> Q4_0,
 * Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and F16 if the fallback does not
 * fit either (current llama.cpp; mid-2025 llama.cpp chose IQ4_NL for Q2_K and
 * Q3_K, a type quarry does not have). Where llama.cpp has no fallback (rows
 * that are not a multiple of 32 for Q4_0..Q8_0) it stops with an error;
 * quarry uses F16 there and marks the tensor as a fallback.
 * Not produced: Q2_K_S (needs an importance matrix in llama.cpp), IQ types.
 */
#include "engine/quantize.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/kernels.h"

#define GGML_QNT_VERSION 2          /* general.quantization_version ggml writes */
#define SPOOL_ALIGN 64
#define CHUNK_VALUES (4u << 20)     /* floats converted per chunk (16 MiB) */

/* ---- file types ------------------------------------------------------------ */

static const struct {
    const char *name;
    int ftype;
    enum quarry_type base;
} ftypes[] = {
    {"F32", QUARRY_FTYPE_ALL_F32, QUARRY_TYPE_F32},
    {"F16", QUARRY_FTYPE_MOSTLY_F16, QUARRY_TYPE_F16},
    {"BF16", QUARRY_FTYPE_MOSTLY_BF16, QUARRY_TYPE_BF16},
    {"Q4_0", QUARRY_FTYPE_MOSTLY_Q4_0, QUARRY_TYPE_Q4_0},
    {"Q4_1", QUARRY_FTYPE_MOSTLY_Q4_1, QUARRY_TYPE_Q4_1},
    {"Q5_0", QUARRY_FTYPE_MOSTLY_Q5_0, QUARRY_TYPE_Q5_0},
    {"Q5_1", QUARRY_FTYPE_MOSTLY_Q5_1, QUARRY_TYPE_Q5_1},
    {"Q8_0", QUARRY_FTYPE_MOSTLY_Q8_0, QUARRY_TYPE_Q8_0},
    {"Q2_K", QUARRY_FTYPE_MOSTLY_Q2_K, QUARRY_TYPE_Q2_K},
    {"Q3_K_S", QUARRY_FTYPE_MOSTLY_Q3_K_S, QUARRY_TYPE_Q3_K},
    {"Q3_K_M", QUARRY_FTYPE_MOSTLY_Q3_K_M, QUARRY_TYPE_Q3_K},
    {"Q3_K_L", QUARRY_FTYPE_MOSTLY_Q3_K_L, QUARRY_TYPE_Q3_K},
    {"Q4_K_S", QUARRY_FTYPE_MOSTLY_Q4_K_S, QUARRY_TYPE_Q4_K},
    {"Q4_K_M", QUARRY_FTYPE_MOSTLY_Q4_K_M, QUARRY_TYPE_Q4_K},
    {"Q5_K_S", QUARRY_FTYPE_MOSTLY_Q5_K_S, QUARRY_TYPE_Q5_K},
    {"Q5_K_M", QUARRY_FTYPE_MOSTLY_Q5_K_M, QUARRY_TYPE_Q5_K},
    {"Q6_K", QUARRY_FTYPE_MOSTLY_Q6_K, QUARRY_TYPE_Q6_K},
};
#define N_FTYPES (sizeof ftypes / sizeof ftypes[0])

int quarry_ftype_from_name(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < N_FTYPES; i++)
        if (strcasecmp(ftypes[i].name, name) == 0)
            return ftypes[i].ftype;
    /* llama-quantize's short names for the _M mixes */
    if (strcasecmp(name, "Q3_K") == 0)
        return QUARRY_FTYPE_MOSTLY_Q3_K_M;
    if (strcasecmp(name, "Q4_K") == 0)
        return QUARRY_FTYPE_MOSTLY_Q4_K_M;
    if (strcasecmp(name, "Q5_K") == 0)
        return QUARRY_FTYPE_MOSTLY_Q5_K_M;
    return -1;
}

const char *quarry_ftype_name(int ftype)
{
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ftype == ftype)
            return ftypes[i].name;
    return NULL;
}

int quarry_ftype_base_type(int ftype)
{
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ftype == ftype)
            return (int)ftypes[i].base;
    return -1;
}

void quarry_ftype_list(char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return;
    buf[0] = 0;
    for (size_t i = 0; i < N_FTYPES && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", ftypes[i].name);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

/* ---- the model facts ------------------------------------------------------- */

static int get_arch_u32(const gguf_file *f, const char *arch, const char *suffix, uint32_t *out,
                        bool required, quarry_error *err)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = gguf_get_u32(f, key, out, err);
    if (rc == QUARRY_ENOTFOUND && !required)
        return rc;
    if (rc == QUARRY_ENOTFOUND)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: no %s (needed to choose tensor types)",
                             f->path, key);
    return rc;
}

int quarry_mix_model_from_gguf(const gguf_file *f, struct quarry_mix_model *m, quarry_error *err)
{
    memset(m, 0, sizeof *m);
    struct gguf_str arch;
    int rc = gguf_get_str(f, "general.architecture", &arch, err);
    if (rc == QUARRY_ENOTFOUND)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: no general.architecture: not a model",
                             f->path);
    if (rc)
        return rc;
    if (arch.len == 0 || arch.len >= sizeof m->arch)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: bad general.architecture", f->path);
    memcpy(m->arch, arch.data, arch.len);
    m->arch[arch.len] = 0;
    if ((rc = get_arch_u32(f, m->arch, "block_count", &m->n_layer, true, err)))
        return rc;
    rc = get_arch_u32(f, m->arch, "attention.head_count", &m->n_head, false, err);
    if (rc && rc != QUARRY_ENOTFOUND)
        return rc;
    rc = get_arch_u32(f, m->arch, "attention.head_count_kv", &m->n_head_kv, false, err);
    if (rc == QUARRY_ENOTFOUND)
        m->n_head_kv = m->n_head;
    else if (rc)
        return rc;
    rc = get_arch_u32(f, m->arch, "expert_count", &m->n_expert, false, err);
    if (rc == QUARRY_ENOTFOUND)
        m->n_expert = 0;
    else if (rc)
        return rc;
    return 0;
}

/* ---- tensor kinds and order ------------------------------------------------ */

enum category {
    CAT_TOKEN_EMBD,
    CAT_ATTN_Q,
    CAT_ATTN_V,      /* attn_v, attn_qkv, attn_kv_b */
    CAT_ATTN_K,
    CAT_ATTN_OUTPUT,
    CAT_FFN_UP,
    CAT_FFN_GATE,
    CAT_FFN_DOWN,
    CAT_OUTPUT,
    CAT_OTHER
};

static bool contains(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static enum category categorize(const char *name)
{
    if (strcmp(name, "output.weight") == 0)
        return CAT_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "per_layer_token_embd.weight") == 0)
        return CAT_TOKEN_EMBD;
    if (contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight") ||
        contains(name, "attn_v.weight"))
        return CAT_ATTN_V;
    if (contains(name, "attn_k.weight"))
        return CAT_ATTN_K;
    if (contains(name, "attn_q.weight"))
        return CAT_ATTN_Q;
    if (contains(name, "attn_output.weight"))
        return CAT_ATTN_OUTPUT;
    if (contains(name, "ffn_up"))
        return CAT_FFN_UP;
    if (contains(name, "ffn_gate"))
        return CAT_FFN_GATE;
    if (contains(name, "ffn_down"))
        return CAT_FFN_DOWN;
    return CAT_OTHER;
}

/* ggml_n_dims: dimensions up to the last one larger than 1 (at least 1). */
static uint32_t effective_dims(const struct quarry_plan_tensor *t)
{
    for (uint32_t d = GGUF_MAX_DIMS; d > 1; d--)
        if (t->ne[d - 1] > 1)
            return d;
    return 1;
}

static bool allows_quantization(const struct quarry_plan_tensor *t)
{
    const char *name = t->name;
    if (effective_dims(t) < 2 || !ends_with(name, "weight"))
        return false;
    static const char *const never[] = {
        "_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj",
        "position_embd", "token_types.weight", "ssm_conv1d", "shortconv.conv.weight",
        "time_mix_", "attn_rel_b.weight",
    };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (contains(name, never[i]))
            return false;
    return true;
}

static int layer_of(const char *name)
{
    int layer = -1;
    if (sscanf(name, "blk.%d.", &layer) != 1)
        return -1;
    return layer;
}

/* llama.cpp's weight_name_comparer: by block number (non-block tensors
 * first), then by name. */
static int plan_cmp(const void *pa, const void *pb)
{
    const struct quarry_plan_tensor *a = pa, *b = pb;
    const int la = layer_of(a->name), lb = layer_of(b->name);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* ---- the rules ---------------------------------------------------------------- */

struct mix_state {
    const struct quarry_mix_model *m;
    int ftype;
    bool has_output;
    bool falcon, is_70b;
    uint32_t n_gqa;
    int n_attn_v, i_attn_v;
    int n_ffn_down, i_ffn_down;
};

static bool more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int block_size(enum quarry_type t)
{
    const struct quarry_type_info *info = quarry_type_info((uint32_t)t);
    return info ? info->block_size : 1;
}

static bool is_quantized(enum quarry_type t)
{
    return t != QUARRY_TYPE_F32 && t != QUARRY_TYPE_F16 && t != QUARRY_TYPE_BF16;
}

/* The layer index a per-layer rule uses: the running count, or with experts
 * the number in the name (expert tensors are not one per layer). */
static int rule_layer(const struct mix_state *s, int counter, const char *name, quarry_error *err,
                      int *out)
{
    if (s->m->n_expert > 1) {
        int l = layer_of(name);
        if (l < 0 || (uint32_t)l >= s->m->n_layer)
            return quarry_errorf(err, QUARRY_EFORMAT, "tensor %s: cannot tell its layer", name);
        *out = l;
        return 0;
    }
    *out = counter;
    return 0;
}

static int rule_type(struct mix_state *s, const struct quarry_plan_tensor *t, enum quarry_type base,
                     enum quarry_type *out, quarry_error *err)
{
    const int ft = s->ftype;
    const enum category cat = categorize(t->name);
    enum quarry_type nt = base;

    if (cat == CAT_OUTPUT || (!s->has_output && cat == CAT_TOKEN_EMBD)) {
        if (s->falcon || t->ne[0] % (uint64_t)block_size(base) != 0)
            nt = QUARRY_TYPE_Q8_0;
        else if (nt != QUARRY_TYPE_Q8_0)
            nt = QUARRY_TYPE_Q6_K;
    } else if (cat == CAT_TOKEN_EMBD) {
        /* the base type (only IQ/TQ file types change it in llama.cpp) */
    } else if (cat == CAT_ATTN_V) {
        const int i = s->i_attn_v, n = s->n_attn_v;
        if (ft == QUARRY_FTYPE_MOSTLY_Q2_K)
            nt = s->n_gqa >= 4 ? QUARRY_TYPE_Q4_K : QUARRY_TYPE_Q3_K;
        else if (ft == QUARRY_FTYPE_MOSTLY_Q3_K_M)
            nt = i < 2 ? QUARRY_TYPE_Q5_K : QUARRY_TYPE_Q4_K;
        else if (ft == QUARRY_FTYPE_MOSTLY_Q3_K_L)
            nt = QUARRY_TYPE_Q5_K;
        else if ((ft == QUARRY_FTYPE_MOSTLY_Q4_K_M || ft == QUARRY_FTYPE_MOSTLY_Q5_K_M) &&
                 more_bits(i, n))
            nt = QUARRY_TYPE_Q6_K;
        else if (ft == QUARRY_FTYPE_MOSTLY_Q4_K_S && i < 4)
            nt = QUARRY_TYPE_Q5_K;
        if (s->is_70b && (nt == QUARRY_TYPE_Q3_K || nt == QUARRY_TYPE_Q4_K))
            nt = QUARRY_TYPE_Q5_K;
        if (s->m->n_expert == 8)
            nt = QUARRY_TYPE_Q8_0;
        s->i_attn_v++;
    } else if (cat == CAT_ATTN_K) {
        if (s->m->n_expert == 8)
            nt = QUARRY_TYPE_Q8_0;
    } else if (cat == CAT_FFN_DOWN) {
        int i = 0;
        int rc = rule_layer(s, s->i_ffn_down, t->name, err, &i);
        if (rc)
            return rc;
        const int n = s->n_ffn_down;
        if (ft == QUARRY_FTYPE_MOSTLY_Q2_K)
            nt = QUARRY_TYPE_Q3_K;
        else if (ft == QUARRY_FTYPE_MOSTLY_Q3_K_M)
            nt = i < n / 16                        ? QUARRY_TYPE_Q5_K
                 : !s->falcon || more_bits(i, n) ? QUARRY_TYPE_Q4_K
                                                   : QUARRY_TYPE_Q3_K;
        else if (ft == QUARRY_FTYPE_MOSTLY_Q3_K_L)
            nt = s->falcon ? QUARRY_TYPE_Q4_K : QUARRY_TYPE_Q5_K;
        else if (ft == QUARRY_FTYPE_MOSTLY_Q4_K_M) {
            if (s->falcon)
                nt = i < n / 16 ? QUARRY_TYPE_Q6_K
                     : more_bits(i, n) ? QUARRY_TYPE_Q5_K
                                       : QUARRY_TYPE_Q4_K;
            else if (more_bits(i, n))
                nt = QUARRY_TYPE_Q6_K;
        } else if (ft == QUARRY_FTYPE_MOSTLY_Q5_K_M && more_bits(i, n))
            nt = QUARRY_TYPE_Q6_K;
        else if (ft == QUARRY_FTYPE_MOSTLY_Q4_K_S && !s->falcon && i < n / 8)
            nt = QUARRY_TYPE_Q5_K;
        s->i_ffn_down++;
    } else if (cat == CAT_ATTN_OUTPUT) {
        if (!s->falcon) {
            if (s->m->n_expert == 8) {
                if (ft == QUARRY_FTYPE_MOSTLY_Q2_K || ft == QUARRY_FTYPE_MOSTLY_Q3_K_S ||
                    ft == QUARRY_FTYPE_MOSTLY_Q3_K_M || ft == QUARRY_FTYPE_MOSTLY_Q4_K_S ||
                    ft == QUARRY_FTYPE_MOSTLY_Q4_K_M)
                    nt = QUARRY_TYPE_Q5_K;
            } else if (ft == QUARRY_FTYPE_MOSTLY_Q2_K)
                nt = QUARRY_TYPE_Q3_K;
            else if (ft == QUARRY_FTYPE_MOSTLY_Q3_K_M)
                nt = QUARRY_TYPE_Q4_K;
            else if (ft == QUARRY_FTYPE_MOSTLY_Q3_K_L)
                nt = QUARRY_TYPE_Q5_K;
        } else if (ft == QUARRY_FTYPE_MOSTLY_Q3_K_L)
            nt = QUARRY_TYPE_Q4_K;
    }
    /* attn_q, ffn_gate, ffn_up: only IQ file types change them */
    *out = nt;
    return 0;
}

/* A type whose block fits a row of ne0 values (see the top of the file). */
static enum quarry_type row_fallback(enum quarry_type t, uint64_t ne0)
{
    if (ne0 % (uint64_t)block_size(t) == 0)
        return t;
    enum quarry_type fb;
    switch (t) {
    case QUARRY_TYPE_Q2_K:
    case QUARRY_TYPE_Q3_K: fb = QUARRY_TYPE_Q4_0; break;
    case QUARRY_TYPE_Q4_K: fb = QUARRY_TYPE_Q5_0; break;
    case QUARRY_TYPE_Q5_K: fb = QUARRY_TYPE_Q5_1; break;
    case QUARRY_TYPE_Q6_K: fb = QUARRY_TYPE_Q8_0; break;
    default: fb = QUARRY_TYPE_F16; break;
    }
    if (ne0 % (uint64_t)block_size(fb) != 0)
        fb = QUARRY_TYPE_F16;
    return fb;
}

int quarry_quant_plan(const struct quarry_mix_model *m, int ftype, struct quarry_plan_tensor *t,
                      size_t n, quarry_error *err)
{
    const int base_i = quarry_ftype_base_type(ftype);
    if (base_i < 0)
        return quarry_errorf(err, QUARRY_EINVAL, "unknown file type %d", ftype);
    const enum quarry_type base = (enum quarry_type)base_i;
    for (size_t i = 0; i < n; i++) {
        if (!t[i].name || !quarry_type_info((uint32_t)t[i].src_type))
            return quarry_errorf(err, QUARRY_EINVAL, "tensor %zu: no name or unknown type", i);
        if (t[i].n_dims == 0 || t[i].n_dims > GGUF_MAX_DIMS || t[i].ne[0] == 0)
            return quarry_errorf(err, QUARRY_EINVAL, "tensor %s: bad shape", t[i].name);
    }
    qsort(t, n, sizeof *t, plan_cmp);

    struct mix_state s = {.m = m, .ftype = ftype};
    s.falcon = strcmp(m->arch, "falcon") == 0;
    s.n_gqa = m->n_head_kv ? m->n_head / m->n_head_kv : 0;
    s.is_70b = strcmp(m->arch, "llama") == 0 && m->n_layer == 80 && m->n_head != m->n_head_kv;
    s.n_ffn_down = (int)m->n_layer;
    for (size_t i = 0; i < n; i++) {
        const enum category c = categorize(t[i].name);
        if (c == CAT_ATTN_V)
            s.n_attn_v++;
        if (c == CAT_OUTPUT)
            s.has_output = true;
    }

    for (size_t i = 0; i < n; i++) {
        struct quarry_plan_tensor *x = &t[i];
        x->fallback = false;
        if (!allows_quantization(x)) {
            x->dst_type = x->wanted = x->src_type;
            continue;
        }
        enum quarry_type nt = base;
        if (is_quantized(base)) {
            int rc = rule_type(&s, x, base, &nt, err);
            if (rc)
                return rc;
        }
        x->wanted = nt;
        x->dst_type = row_fallback(nt, x->ne[0]);
        x->fallback = x->dst_type != nt;
    }
    return 0;
}

/* ---- converting rows ---------------------------------------------------------- */

struct convert_task {
    const struct quarry_type_traits *src, *dst;
    const uint8_t *in;
    uint8_t *out;
    size_t in_row, out_row;
    int64_t n_rows, n_per_row;
    float *scratch;              /* n_threads x n_per_row, when src is not F32 */
};

static void convert_worker(void *arg, int ti, int nt)
{
    struct convert_task *c = arg;
    const int64_t per = (c->n_rows + nt - 1) / nt;
    const int64_t r0 = per * ti, r1 = r0 + per < c->n_rows ? r0 + per : c->n_rows;
    float *row = c->scratch ? c->scratch + (size_t)ti * (size_t)c->n_per_row : NULL;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *in = c->in + (size_t)r * c->in_row;
        uint8_t *out = c->out + (size_t)r * c->out_row;
        if (row) {
            c->src->to_float(in, row, c->n_per_row);
            c->dst->from_float_ref(row, out, c->n_per_row);
        } else {
            c->dst->from_float_ref((const float *)in, out, c->n_per_row);
        }
    }
}

int quarry_convert_rows(enum quarry_type src_type, const void *src, enum quarry_type dst_type,
                        void *dst, int64_t n_rows, int64_t n_per_row, quarry_threadpool *pool,
                        quarry_error *err)
{
    const struct quarry_type_traits *ts = quarry_traits(src_type), *td = quarry_traits(dst_type);
    if (!ts || !td || !ts->to_float || !td->from_float_ref)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "cannot convert %s to %s",
                             ts && ts->name ? ts->name : "?", td && td->name ? td->name : "?");
    const size_t in_row = quarry_row_size(src_type, n_per_row);
    const size_t out_row = quarry_row_size(dst_type, n_per_row);
    if (n_rows < 0 || n_per_row <= 0 || !in_row || !out_row)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "cannot convert rows of %" PRId64 " values from %s to %s", n_per_row,
                             ts->name, td->name);
    struct convert_task c = {ts, td, src, dst, in_row, out_row, n_rows, n_per_row, NULL};
    const int nt = quarry_threadpool_size(pool);
    if (src_type != QUARRY_TYPE_F32) {
        c.scratch = malloc((size_t)nt * (size_t)n_per_row * sizeof(float));
        if (!c.scratch)
            return quarry_errorf(err, QUARRY_ENOMEM, "out of memory converting rows");
    }
    quarry_threadpool_run(pool, convert_worker, &c);
    free(c.scratch);
    return 0;
}

/* ---- the spool ------------------------------------------------------------- */

struct quarry_spool {
    int fd;
    uint64_t size;
    void *map;
    size_t map_len;
    bool mapped;
};

int quarry_spool_open(const char *near_path, quarry_spool **out, quarry_error *err)
{
    *out = NULL;
    const char *slash = strrchr(near_path, '/');
    const size_t dir_len = slash ? (size_t)(slash - near_path) : 1;
    const char *dir = slash ? near_path : ".";
    const char *stem = "/.quarry-spool-XXXXXX";
    char *tmpl = malloc(dir_len + strlen(stem) + 1);
    if (!tmpl)
        return quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
    memcpy(tmpl, dir, dir_len);
    strcpy(tmpl + dir_len, stem); /* "/file": dir_len 0 gives "/.quarry-spool-..." */
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        int e = errno;
        int rc = quarry_errorf(err, QUARRY_EIO, "cannot create a temporary file %s: %s", tmpl,
                               strerror(e));
        free(tmpl);
        return rc;
    }
    unlink(tmpl); /* the file lives until it is closed */
    free(tmpl);
    quarry_spool *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
    }
    s->fd = fd;
    *out = s;
    return 0;
}

static int spool_write(quarry_spool *s, const void *data, size_t n, quarry_error *err)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t k = write(s->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            return quarry_errorf(err, QUARRY_EIO, "writing the temporary file: %s", strerror(e));
        }
        p += k;
        n -= (size_t)k;
        s->size += (uint64_t)k;
    }
    return 0;
}

static int spool_align(quarry_spool *s, quarry_error *err)
{
    static const uint8_t zeros[SPOOL_ALIGN];
    const size_t pad = (size_t)((SPOOL_ALIGN - s->size % SPOOL_ALIGN) % SPOOL_ALIGN);
    return pad ? spool_write(s, zeros, pad, err) : 0;
}

int quarry_spool_append(quarry_spool *s, const void *data, size_t n, uint64_t *offset,
                        quarry_error *err)
{
    if (s->mapped)
        return quarry_errorf(err, QUARRY_EINVAL, "spool: append after map");
    int rc = spool_align(s, err);
    if (rc)
        return rc;
    *offset = s->size;
    return spool_write(s, data, n, err);
}

int quarry_spool_map(quarry_spool *s, const uint8_t **base, quarry_error *err)
{
    static const uint8_t empty[1];
    if (!s->mapped) {
        s->mapped = true;
        if (s->size > 0) {
            if (s->size > SIZE_MAX)
                return quarry_errorf(err, QUARRY_ERANGE, "spool too large to map");
            void *p = mmap(NULL, (size_t)s->size, PROT_READ, MAP_SHARED, s->fd, 0);
            if (p == MAP_FAILED) {
                int e = errno;
                return quarry_errorf(err, QUARRY_EIO, "mapping the temporary file: %s",
                                     strerror(e));
            }
            s->map = p;
            s->map_len = (size_t)s->size;
            /* the writer reads it once, front to back: read ahead, drop behind */
            madvise(p, s->map_len, MADV_SEQUENTIAL);
        }
    }
    *base = s->map ? s->map : empty;
    return 0;
}

uint64_t quarry_spool_size(const quarry_spool *s)
{
    return s->size;
}

void quarry_spool_close(quarry_spool *s)
{
    if (!s)
        return;
    if (s->map)
        munmap(s->map, s->map_len);
    close(s->fd);
    free(s);
}

struct spool_task {
    const struct quarry_plan_tensor *t;
    const struct quarry_type_traits *dst;
    quarry_row_source_fn source;
    void *user;
    float *values;
    uint8_t *out;
    size_t out_row;
    int64_t row0, n_rows;
    int *rc;                     /* [n_threads] */
    quarry_error *errs;          /* [n_threads] */
};

static void spool_worker(void *arg, int ti, int nt)
{
    struct spool_task *c = arg;
    const int64_t ne0 = (int64_t)c->t->ne[0];
    const int64_t per = (c->n_rows + nt - 1) / nt;
    const int64_t a = per * ti, b = a + per < c->n_rows ? a + per : c->n_rows;
    c->rc[ti] = 0;
    if (a >= b)
        return;
    float *v = c->values + (size_t)a * (size_t)ne0;
    c->rc[ti] = c->source(c->user, c->t, c->row0 + a, b - a, v, &c->errs[ti]);
    if (c->rc[ti] == 0)
        c->dst->from_float_ref(v, c->out + (size_t)a * c->out_row, (b - a) * ne0);
}

int quarry_spool_tensor(quarry_spool *s, const struct quarry_plan_tensor *t,
                        quarry_row_source_fn source, void *user, quarry_threadpool *pool,
                        uint64_t *offset, quarry_error *err)
{
    const struct quarry_type_traits *td = quarry_traits(t->dst_type);
    const int64_t ne0 = (int64_t)t->ne[0];
    const size_t out_row = quarry_row_size(t->dst_type, ne0);
    if (!td || !td->from_float_ref || !out_row)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "tensor %s: cannot write type %s",
                             t->name, td && td->name ? td->name : "?");
    if (s->mapped)
        return quarry_errorf(err, QUARRY_EINVAL, "spool: append after map");
    int64_t n_rows = 1;
    for (int d = 1; d < GGUF_MAX_DIMS; d++)
        n_rows *= (int64_t)t->ne[d];
    int64_t chunk = (int64_t)(CHUNK_VALUES / (uint64_t)ne0);
    if (chunk < 1)
        chunk = 1;
    if (chunk > n_rows)
        chunk = n_rows;

    const int nt = quarry_threadpool_size(pool);
    float *values = malloc((size_t)chunk * (size_t)ne0 * sizeof(float));
    uint8_t *out = malloc((size_t)chunk * out_row);
    int *rcs = calloc((size_t)nt, sizeof *rcs);
    quarry_error *errs = calloc((size_t)nt, sizeof *errs);
    int rc = 0;
    if (!values || !out || !rcs || !errs) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "tensor %s: out of memory", t->name);
        goto done;
    }
    if ((rc = spool_align(s, err)))
        goto done;
    *offset = s->size;
    struct spool_task task = {t, td, source, user, values, out, out_row, 0, 0, rcs, errs};
    for (int64_t r0 = 0; r0 < n_rows; r0 += chunk) {
        task.row0 = r0;
        task.n_rows = n_rows - r0 < chunk ? n_rows - r0 : chunk;
        quarry_threadpool_run(pool, spool_worker, &task);
        for (int i = 0; i < nt; i++)
            if (rcs[i]) {
                rc = rcs[i];
                if (err)
                    *err = errs[i];
                goto done;
            }
        if ((rc = spool_write(s, out, (size_t)task.n_rows * out_row, err)))
            goto done;
    }
done:
    free(values);
    free(out);
    free(rcs);
    free(errs);
    return rc;
}

/* ---- the whole-file driver --------------------------------------------------- */

/* Rows of an input tensor, dequantized / widened to floats. */
static int input_rows(void *user, const struct quarry_plan_tensor *t, int64_t row0,
                      int64_t n_rows, float *dst, quarry_error *err)
{
    const gguf_file *f = user;
    const struct gguf_tensor *in = &f->tensors[t->src_index];
    const struct quarry_type_traits *ts = quarry_traits(in->type);
    if (!ts || !ts->to_float)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "tensor %s: cannot read type %d",
                             t->name, (int)in->type);
    const size_t row = quarry_row_size(in->type, (int64_t)t->ne[0]);
    ts->to_float((const uint8_t *)in->data + (size_t)row0 * row, dst, n_rows * (int64_t)t->ne[0]);
    return 0;
}

static bool skip_key(const struct gguf_str key)
{
    static const char *const replaced[] = {
        "general.quantization_version", "general.file_type", "split.no", "split.count",
        "split.tensors.count",
    };
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++)
        if (gguf_str_eq(key, replaced[i]))
            return true;
    return false;
}

static int writer_rc(gguf_writer *w, int rc, quarry_error *err)
{
    if (rc == 0)
        return 0;
    const char *msg = gguf_writer_error(w);
    return quarry_errorf(err, rc, "%s", msg ? msg : "writer failed");
}

int quarry_quantize_file(const char *in_path, const char *out_path,
                         const struct quarry_quantize_params *params, quarry_error *err)
{
    gguf_file *f = NULL;
    struct quarry_plan_tensor *plan = NULL;
    char **names = NULL;
    quarry_threadpool *pool = NULL;
    quarry_spool *spool = NULL;
    uint64_t *offsets = NULL;
    gguf_writer *w = NULL;
    size_t n = 0;
    int rc;

    if (quarry_ftype_base_type(params->ftype) < 0)
        return quarry_errorf(err, QUARRY_EINVAL, "unknown file type %d", params->ftype);
    if (strcmp(in_path, out_path) == 0)
        return quarry_errorf(err, QUARRY_EINVAL, "input and output are the same file");
    if ((rc = gguf_open(in_path, &f, err)))
        return rc;
    struct quarry_mix_model model;
    if ((rc = quarry_mix_model_from_gguf(f, &model, err)))
        goto done;

    n = (size_t)f->n_tensors;
    plan = calloc(n ? n : 1, sizeof *plan);
    names = calloc(n ? n : 1, sizeof *names);
    offsets = calloc(n ? n : 1, sizeof *offsets);
    if (!plan || !names || !offsets) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        names[i] = strndup(t->name.data, (size_t)t->name.len);
        if (!names[i]) {
            rc = quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
            goto done;
        }
        plan[i].name = names[i];
        plan[i].n_dims = t->n_dims;
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            plan[i].ne[d] = t->ne[d];
        plan[i].src_type = t->type;
        plan[i].src_index = i;
    }
    if ((rc = quarry_quant_plan(&model, params->ftype, plan, n, err)))
        goto done;
    for (size_t i = 0; i < n; i++)
        if (plan[i].dst_type != plan[i].src_type && is_quantized(plan[i].src_type)) {
            rc = quarry_errorf(err, QUARRY_EUNSUPPORTED,
                               "%s: tensor %s is already quantized (%s); quantize from an "
                               "F32, F16 or BF16 file",
                               in_path, plan[i].name, quarry_type_info(plan[i].src_type)->name);
            goto done;
        }

    if ((rc = quarry_threadpool_new(params->n_threads, &pool, err)))
        goto done;
    if ((rc = quarry_spool_open(out_path, &spool, err)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        const bool copy = plan[i].dst_type == plan[i].src_type;
        if (params->progress) {
            struct quarry_quant_progress p = {i, n, &plan[i], copy};
            params->progress(params->user, &p);
        }
        if (copy)
            continue;
        if ((rc = quarry_spool_tensor(spool, &plan[i], input_rows, f, pool, &offsets[i], err)))
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
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (!skip_key(f->kvs[i].key) && (rc = writer_rc(w, gguf_writer_copy_kv(w, &f->kvs[i]), err)))
            goto done;
    if ((rc = writer_rc(w, gguf_writer_set_u32(w, "general.quantization_version", GGML_QNT_VERSION),
                        err)) ||
        (rc = writer_rc(w, gguf_writer_set_u32(w, "general.file_type", (uint32_t)params->ftype),
                        err)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        const struct quarry_plan_tensor *t = &plan[i];
        const void *data = t->dst_type == t->src_type ? f->tensors[t->src_index].data
                                                      : (const void *)(base + offsets[i]);
        rc = gguf_writer_add_tensor(w, t->name, t->dst_type, effective_dims(t), t->ne, data);
        if ((rc = writer_rc(w, rc, err)))
            goto done;
    }
    rc = gguf_writer_write(w, out_path, err);

done:
    gguf_writer_free(w);
    quarry_spool_close(spool);
    quarry_threadpool_free(pool);
    if (names)
        for (size_t i = 0; i < n; i++)
            free(names[i]);
    free(names);
    free(plan);
    free(offsets);
    gguf_close(f);
    return rc;
}
