/*
 * kvcache.c - the per-sequence key/value cache (see kvcache.h).
 */
#include "engine/kvcache.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"

#define KV_MIN_CAPACITY 64 /* first allocation of a sequence, in positions */

struct kv_seq {
    uint8_t *k;        /* [n_layer][capacity][row_size] bytes */
    uint8_t *v;        /* same */
    int32_t capacity;  /* positions per layer allocated */
    int32_t len;       /* positions stored */
};

struct quarry_kvcache {
    struct quarry_kvcache_params p;
    size_t row_size;                  /* bytes of kv_dim values */
    quarry_from_float_fn from_float;  /* NULL for F32 (copied) */
    struct kv_seq *seqs;              /* [n_seq] */
};

int quarry_kvcache_new(const struct quarry_kvcache_params *p, quarry_kvcache **out,
                       quarry_error *err)
{
    *out = NULL;
    if (p->n_layer <= 0 || p->n_ctx <= 0 || p->n_seq <= 0 || p->n_head_kv <= 0 ||
        p->head_dim <= 0)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "KV cache: bad sizes (layers %d, n_ctx %d, sequences %d, "
                             "KV heads %d, head size %d)",
                             p->n_layer, p->n_ctx, p->n_seq, p->n_head_kv, p->head_dim);
    if (p->type != QUARRY_TYPE_F16 && p->type != QUARRY_TYPE_Q8_0 && p->type != QUARRY_TYPE_F32) {
        const struct quarry_type_info *info = quarry_type_info(p->type);
        return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                             "KV cache: type %s not supported (use f16, q8_0 or f32)",
                             info ? info->name : "?");
    }
    const struct quarry_type_info *info = quarry_type_info(p->type);
    if (p->head_dim % info->block_size != 0)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                             "KV cache: %s needs the head size (%d) to be a multiple of %d",
                             info->name, p->head_dim, info->block_size);
    quarry_from_float_fn from_float = NULL;
    if (p->type != QUARRY_TYPE_F32) {
        const struct quarry_type_traits *tr = quarry_traits(p->type);
        if (!tr || !tr->to_float || !(tr->from_float || tr->from_float_ref))
            return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                                 "KV cache: no %s conversion kernels are registered", info->name);
        from_float = tr->from_float ? tr->from_float : tr->from_float_ref;
    }
    const int64_t kv_dim = (int64_t)p->n_head_kv * p->head_dim;
    if (kv_dim > (INT64_C(1) << 24))
        return quarry_errorf(err, QUARRY_EINVAL, "KV cache: rows of %lld values are too long",
                             (long long)kv_dim);
    quarry_kvcache *c = calloc(1, sizeof *c);
    if (!c || !(c->seqs = calloc((size_t)p->n_seq, sizeof *c->seqs))) {
        free(c);
        return quarry_errorf(err, QUARRY_ENOMEM, "KV cache: out of memory");
    }
    c->p = *p;
    c->row_size = quarry_row_size(p->type, kv_dim);
    c->from_float = from_float;
    *out = c;
    return 0;
}

void quarry_kvcache_free(quarry_kvcache *c)
{
    if (!c)
        return;
    for (int32_t s = 0; s < c->p.n_seq; s++) {
        free(c->seqs[s].k);
        free(c->seqs[s].v);
    }
    free(c->seqs);
    free(c);
}

const struct quarry_kvcache_params *quarry_kvcache_params(const quarry_kvcache *c)
{
    return &c->p;
}

size_t quarry_kvcache_row_size(const quarry_kvcache *c)
{
    return c->row_size;
}

static int bad_seq(const quarry_kvcache *c, int32_t seq, quarry_error *err)
{
    return quarry_errorf(err, QUARRY_EINVAL, "KV cache: sequence id %d is outside 0..%d", seq,
                         c->p.n_seq - 1);
}

int32_t quarry_kvcache_seq_len(const quarry_kvcache *c, int32_t seq)
{
    if (seq < 0 || seq >= c->p.n_seq)
        return -1;
    return c->seqs[seq].len;
}

size_t quarry_kvcache_bytes(const quarry_kvcache *c)
{
    size_t total = 0;
    for (int32_t s = 0; s < c->p.n_seq; s++)
        total += 2 * (size_t)c->p.n_layer * (size_t)c->seqs[s].capacity * c->row_size;
    return total;
}

int quarry_kvcache_clear(quarry_kvcache *c, int32_t seq, quarry_error *err)
{
    if (seq >= c->p.n_seq)
        return bad_seq(c, seq, err);
    for (int32_t s = 0; s < c->p.n_seq; s++)
        if (seq < 0 || s == seq)
            c->seqs[s].len = 0;
    return 0;
}

/* Grows seq's buffers to hold at least n_pos positions per layer, keeping the
 * first len rows of every layer. */
static int grow(quarry_kvcache *c, struct kv_seq *s, int32_t n_pos, quarry_error *err)
{
    int64_t cap = s->capacity ? s->capacity : KV_MIN_CAPACITY;
    while (cap < n_pos)
        cap *= 2;
    if (cap > c->p.n_ctx)
        cap = c->p.n_ctx;
    const size_t layer_bytes = (size_t)cap * c->row_size;
    uint8_t *k = malloc((size_t)c->p.n_layer * layer_bytes);
    uint8_t *v = malloc((size_t)c->p.n_layer * layer_bytes);
    if (!k || !v) {
        free(k);
        free(v);
        return quarry_errorf(err, QUARRY_ENOMEM,
                             "KV cache: out of memory growing a sequence to %lld positions",
                             (long long)cap);
    }
    const size_t old_layer_bytes = (size_t)s->capacity * c->row_size;
    for (int32_t l = 0; l < c->p.n_layer && s->len > 0; l++) {
        memcpy(k + l * layer_bytes, s->k + l * old_layer_bytes, (size_t)s->len * c->row_size);
        memcpy(v + l * layer_bytes, s->v + l * old_layer_bytes, (size_t)s->len * c->row_size);
    }
    free(s->k);
    free(s->v);
    s->k = k;
    s->v = v;
    s->capacity = (int32_t)cap;
    return 0;
}

int quarry_kvcache_reserve(quarry_kvcache *c, int32_t seq, int32_t n_pos, quarry_error *err)
{
    if (seq < 0 || seq >= c->p.n_seq)
        return bad_seq(c, seq, err);
    if (n_pos > c->p.n_ctx)
        return quarry_errorf(err, QUARRY_ERANGE,
                             "context full: sequence %d would need %d positions, the context "
                             "size is %d",
                             seq, n_pos, c->p.n_ctx);
    struct kv_seq *s = &c->seqs[seq];
    if (n_pos <= s->capacity)
        return 0;
    return grow(c, s, n_pos, err);
}

int quarry_kvcache_copy(quarry_kvcache *c, int32_t src, int32_t dst, quarry_error *err)
{
    if (src < 0 || src >= c->p.n_seq)
        return bad_seq(c, src, err);
    if (dst < 0 || dst >= c->p.n_seq)
        return bad_seq(c, dst, err);
    if (src == dst)
        return 0;
    struct kv_seq *s = &c->seqs[src], *d = &c->seqs[dst];
    d->len = 0;
    int rc = quarry_kvcache_reserve(c, dst, s->len, err);
    if (rc)
        return rc;
    const size_t s_layer = (size_t)s->capacity * c->row_size;
    const size_t d_layer = (size_t)d->capacity * c->row_size;
    for (int32_t l = 0; l < c->p.n_layer && s->len > 0; l++) {
        memcpy(d->k + l * d_layer, s->k + l * s_layer, (size_t)s->len * c->row_size);
        memcpy(d->v + l * d_layer, s->v + l * s_layer, (size_t)s->len * c->row_size);
    }
    d->len = s->len;
    return 0;
}

int quarry_kvcache_truncate(quarry_kvcache *c, int32_t seq, int32_t n_keep, quarry_error *err)
{
    if (seq < 0 || seq >= c->p.n_seq)
        return bad_seq(c, seq, err);
    if (n_keep < 0 || n_keep > c->seqs[seq].len)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "KV cache: cannot truncate sequence %d of %d positions to %d", seq,
                             c->seqs[seq].len, n_keep);
    c->seqs[seq].len = n_keep;
    return 0;
}

void quarry_kvcache_write(quarry_kvcache *c, int32_t seq, int32_t layer, int32_t pos,
                          const float *k, const float *v)
{
    struct kv_seq *s = &c->seqs[seq];
    const size_t off = ((size_t)layer * (size_t)s->capacity + (size_t)pos) * c->row_size;
    const int64_t kv_dim = (int64_t)c->p.n_head_kv * c->p.head_dim;
    if (c->from_float) {
        c->from_float(k, s->k + off, kv_dim);
        c->from_float(v, s->v + off, kv_dim);
    } else {
        memcpy(s->k + off, k, c->row_size);
        memcpy(s->v + off, v, c->row_size);
    }
}

void quarry_kvcache_set_len(quarry_kvcache *c, int32_t seq, int32_t n_pos)
{
    c->seqs[seq].len = n_pos;
}

const void *quarry_kvcache_k(const quarry_kvcache *c, int32_t seq, int32_t layer)
{
    const struct kv_seq *s = &c->seqs[seq];
    return s->k ? s->k + (size_t)layer * (size_t)s->capacity * c->row_size : NULL;
}

const void *quarry_kvcache_v(const quarry_kvcache *c, int32_t seq, int32_t layer)
{
    const struct kv_seq *s = &c->seqs[seq];
    return s->v ? s->v + (size_t)layer * (size_t)s->capacity * c->row_size : NULL;
}
