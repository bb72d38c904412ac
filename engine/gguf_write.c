/*
 * gguf_write.c - the GGUF v3 writer (see gguf.h).
 *
 * Metadata values are serialised into byte buffers as they are set (so a
 * value copied from a file being read need not outlive the call); tensors are
 * kept as references to caller memory until gguf_writer_write(), which lays
 * out the header, the tensor infos, padding to the alignment and each tensor's
 * data at an aligned offset, exactly as ggml's gguf writer does, so llama.cpp
 * loads the result. The file is written to PATH.tmp and renamed into place,
 * so a failed write never leaves a truncated file under the final name.
 */
#include "engine/gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct byte_buf {
    uint8_t *data;
    size_t len, cap;
    bool failed; /* an allocation failed: the buffer is incomplete */
};

static void buf_put(struct byte_buf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (n > SIZE_MAX - b->len) {
        b->failed = true;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_le(struct byte_buf *b, uint64_t v, int n)
{
    uint8_t tmp[8];
    for (int i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    buf_put(b, tmp, (size_t)n);
}

static void buf_str(struct byte_buf *b, const char *s, uint64_t len)
{
    buf_le(b, len, 8);
    buf_put(b, s, (size_t)len);
}

struct writer_kv {
    char *key;
    struct byte_buf value; /* u32 type + encoded value */
};

struct writer_tensor {
    char *name;
    enum quarry_type type;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t n_bytes;
    const void *data;
};

struct gguf_writer {
    struct writer_kv *kvs;
    size_t n_kv, cap_kv;
    struct writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
    char error[256];
};

gguf_writer *gguf_writer_new(void)
{
    return calloc(1, sizeof(gguf_writer));
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].value.data);
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

const char *gguf_writer_error(const gguf_writer *w)
{
    return w->error[0] ? w->error : NULL;
}

static int writer_fail(gguf_writer *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int writer_fail(gguf_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
    return code;
}

/* Returns the slot for key (an existing one is emptied so set replaces). */
static struct writer_kv *kv_slot(gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) {
            w->kvs[i].value.len = 0;
            w->kvs[i].value.failed = false;
            return &w->kvs[i];
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        struct writer_kv *kvs = realloc(w->kvs, cap * sizeof *kvs);
        if (!kvs)
            return NULL;
        w->kvs = kvs;
        w->cap_kv = cap;
    }
    struct writer_kv *kv = &w->kvs[w->n_kv];
    memset(kv, 0, sizeof *kv);
    kv->key = strdup(key);
    if (!kv->key)
        return NULL;
    w->n_kv++;
    return kv;
}

static int kv_done(gguf_writer *w, struct writer_kv *kv)
{
    if (kv->value.failed)
        return writer_fail(w, QUARRY_ENOMEM, "out of memory setting '%s'", kv->key);
    return 0;
}

static struct writer_kv *begin_kv(gguf_writer *w, const char *key, enum gguf_value_type type)
{
    if (!key || !*key) {
        writer_fail(w, QUARRY_EINVAL, "empty key");
        return NULL;
    }
    struct writer_kv *kv = kv_slot(w, key);
    if (!kv) {
        writer_fail(w, QUARRY_ENOMEM, "out of memory setting '%s'", key);
        return NULL;
    }
    buf_le(&kv->value, (uint64_t)type, 4);
    return kv;
}

static int set_scalar(gguf_writer *w, const char *key, enum gguf_value_type type, uint64_t bits)
{
    struct writer_kv *kv = begin_kv(w, key, type);
    if (!kv)
        return w->error[0] ? QUARRY_EINVAL : QUARRY_ENOMEM;
    buf_le(&kv->value, bits, (int)gguf_value_type_size(type));
    return kv_done(w, kv);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v)
{
    return set_scalar(w, key, GGUF_TYPE_UINT32, v);
}

int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v)
{
    return set_scalar(w, key, GGUF_TYPE_INT32, (uint32_t)v);
}

int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v)
{
    return set_scalar(w, key, GGUF_TYPE_UINT64, v);
}

int gguf_writer_set_f32(gguf_writer *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return set_scalar(w, key, GGUF_TYPE_FLOAT32, bits);
}

int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v)
{
    return set_scalar(w, key, GGUF_TYPE_BOOL, v ? 1 : 0);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v)
{
    struct writer_kv *kv = begin_kv(w, key, GGUF_TYPE_STRING);
    if (!kv)
        return QUARRY_EINVAL;
    buf_str(&kv->value, v, strlen(v));
    return kv_done(w, kv);
}

int gguf_writer_set_array(gguf_writer *w, const char *key, enum gguf_value_type elem_type,
                          const void *data, uint64_t count)
{
    const size_t esize = gguf_value_type_size(elem_type);
    if (!esize)
        return writer_fail(w, QUARRY_EINVAL, "'%s': set_array needs a fixed-size element type",
                           key);
    if (count > SIZE_MAX / esize)
        return writer_fail(w, QUARRY_EINVAL, "'%s': array too large", key);
    struct writer_kv *kv = begin_kv(w, key, GGUF_TYPE_ARRAY);
    if (!kv)
        return QUARRY_EINVAL;
    buf_le(&kv->value, (uint64_t)elem_type, 4);
    buf_le(&kv->value, count, 8);
    buf_put(&kv->value, data, (size_t)(count * esize));
    return kv_done(w, kv);
}

int gguf_writer_set_str_array(gguf_writer *w, const char *key, const char *const *strs,
                              uint64_t count)
{
    struct writer_kv *kv = begin_kv(w, key, GGUF_TYPE_ARRAY);
    if (!kv)
        return QUARRY_EINVAL;
    buf_le(&kv->value, GGUF_TYPE_STRING, 4);
    buf_le(&kv->value, count, 8);
    for (uint64_t i = 0; i < count; i++)
        buf_str(&kv->value, strs[i], strlen(strs[i]));
    return kv_done(w, kv);
}

/* Encodes a parsed value (without its type tag for array elements). */
static void encode_value(struct byte_buf *b, const struct gguf_value *v)
{
    const size_t n = gguf_value_type_size(v->type);
    switch (v->type) {
    case GGUF_TYPE_STRING:
        buf_str(b, v->v.str.data, v->v.str.len);
        return;
    case GGUF_TYPE_ARRAY: {
        const struct gguf_array *a = &v->v.arr;
        buf_le(b, a->elem_type, 4);
        buf_le(b, a->count, 8);
        const size_t esize = gguf_value_type_size(a->elem_type);
        if (esize)
            buf_put(b, a->raw, (size_t)(a->count * esize)); /* already little-endian */
        else if (a->elem_type == GGUF_TYPE_STRING)
            for (uint64_t i = 0; i < a->count; i++)
                buf_str(b, a->strs[i].data, a->strs[i].len);
        else
            for (uint64_t i = 0; i < a->count; i++)
                encode_value(b, &a->elems[i]);
        return;
    }
    case GGUF_TYPE_FLOAT32: {
        float f = (float)v->v.f64;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        buf_le(b, bits, 4);
        return;
    }
    case GGUF_TYPE_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, &v->v.f64, 8);
        buf_le(b, bits, 8);
        return;
    }
    case GGUF_TYPE_BOOL:
        buf_le(b, v->v.b ? 1 : 0, 1);
        return;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        buf_le(b, (uint64_t)v->v.i64, (int)n);
        return;
    default:
        buf_le(b, v->v.u64, (int)n);
        return;
    }
}

int gguf_writer_copy_kv(gguf_writer *w, const struct gguf_kv *src)
{
    char key[1024];
    if (src->key.len == 0 || src->key.len >= sizeof key)
        return writer_fail(w, QUARRY_EINVAL, "key length %" PRIu64 " not supported",
                           src->key.len);
    memcpy(key, src->key.data, src->key.len);
    key[src->key.len] = 0;
    struct writer_kv *kv = begin_kv(w, key, src->value.type);
    if (!kv)
        return QUARRY_EINVAL;
    encode_value(&kv->value, &src->value);
    return kv_done(w, kv);
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, enum quarry_type type,
                           uint32_t n_dims, const uint64_t *ne, const void *data)
{
    const size_t name_len = strlen(name);
    if (name_len == 0 || name_len >= GGUF_MAX_NAME)
        return writer_fail(w, QUARRY_EINVAL, "tensor name '%s' must be 1..%d bytes", name,
                           GGUF_MAX_NAME - 1);
    const struct quarry_type_info *info = quarry_type_info((uint32_t)type);
    if (!info)
        return writer_fail(w, QUARRY_EINVAL, "tensor '%s': unsupported type %d", name, (int)type);
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return writer_fail(w, QUARRY_EINVAL, "tensor '%s': %" PRIu32 " dimensions", name, n_dims);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return writer_fail(w, QUARRY_EINVAL, "duplicate tensor name '%s'", name);
    struct writer_tensor t = {.type = type, .n_dims = n_dims, .data = data};
    uint64_t n = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] > (uint64_t)INT64_MAX || (t.ne[d] && n > (uint64_t)INT64_MAX / t.ne[d]))
            return writer_fail(w, QUARRY_EINVAL, "tensor '%s': dimensions overflow", name);
        n *= t.ne[d];
    }
    if (t.ne[0] % (uint64_t)info->block_size)
        return writer_fail(w, QUARRY_EINVAL,
                           "tensor '%s': row length %" PRIu64 " is not a multiple of %d", name,
                           t.ne[0], info->block_size);
    t.n_bytes = n / (uint64_t)info->block_size * info->type_size;
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        struct writer_tensor *ts = realloc(w->tensors, cap * sizeof *ts);
        if (!ts)
            return writer_fail(w, QUARRY_ENOMEM, "out of memory");
        w->tensors = ts;
        w->cap_tensors = cap;
    }
    t.name = strdup(name);
    if (!t.name)
        return writer_fail(w, QUARRY_ENOMEM, "out of memory");
    w->tensors[w->n_tensors++] = t;
    return 0;
}

static uint32_t writer_alignment(const gguf_writer *w)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, "general.alignment") == 0 && w->kvs[i].value.len == 8 &&
            w->kvs[i].value.data[0] == GGUF_TYPE_UINT32) {
            const uint8_t *p = w->kvs[i].value.data + 4;
            uint32_t a = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            if (a && (a & (a - 1)) == 0)
                return a;
        }
    return GGUF_DEFAULT_ALIGNMENT;
}

static int write_zeros(FILE *fp, uint64_t n)
{
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, fp) != k)
            return -1;
        n -= k;
    }
    return 0;
}

int gguf_writer_write(gguf_writer *w, const char *path, quarry_error *err)
{
    if (w->error[0])
        return quarry_errorf(err, QUARRY_EINVAL, "%s: not written: %s", path, w->error);
    const uint32_t align = writer_alignment(w);

    /* header, metadata and tensor infos, with each tensor's aligned offset */
    struct byte_buf head = {0};
    buf_le(&head, GGUF_MAGIC, 4);
    buf_le(&head, 3, 4);
    buf_le(&head, w->n_tensors, 8);
    buf_le(&head, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        buf_str(&head, w->kvs[i].key, strlen(w->kvs[i].key));
        buf_put(&head, w->kvs[i].value.data, w->kvs[i].value.len);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct writer_tensor *t = &w->tensors[i];
        buf_str(&head, t->name, strlen(t->name));
        buf_le(&head, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            buf_le(&head, t->ne[d], 8);
        buf_le(&head, (uint64_t)t->type, 4);
        buf_le(&head, offset, 8);
        offset += t->n_bytes;
        offset += (align - offset % align) % align;
    }
    if (head.failed) {
        free(head.data);
        return quarry_errorf(err, QUARRY_ENOMEM, "%s: out of memory building the header", path);
    }

    size_t tmp_len = strlen(path) + 5;
    char *tmp = malloc(tmp_len);
    if (!tmp) {
        free(head.data);
        return quarry_errorf(err, QUARRY_ENOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, tmp_len, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        int e = errno;
        free(head.data);
        free(tmp);
        return quarry_errorf(err, QUARRY_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    int ok = fwrite(head.data, 1, head.len, fp) == head.len;
    if (ok && w->n_tensors)
        ok = write_zeros(fp, (align - head.len % align) % align) == 0;
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const struct writer_tensor *t = &w->tensors[i];
        ok = t->n_bytes == 0 || fwrite(t->data, 1, (size_t)t->n_bytes, fp) == t->n_bytes;
        if (ok)
            ok = write_zeros(fp, (align - t->n_bytes % align) % align) == 0;
    }
    int e = errno;
    if (fclose(fp) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok)
        unlink(tmp);
    free(head.data);
    free(tmp);
    if (!ok)
        return quarry_errorf(err, QUARRY_EIO, "%s: write failed: %s", path, strerror(e));
    return 0;
}
