/*
 * gguf.c - the GGUF reader (see gguf.h for the format and the guarantees).
 *
 * The parser walks the header with a bounds-checked cursor over the whole
 * image: every read first checks that the bytes are there, every count is
 * compared with the bytes left before anything is allocated for it (an
 * element needs at least one byte on disk, so allocations are bounded by the
 * file size), and every size computation is overflow-checked. Only after the
 * whole header parses are tensor extents, alignment and overlaps checked.
 * Any failure is reported as "<file>: byte <offset>: <problem>".
 */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- arena: every allocation the parsed file owns ---------------------- */

struct arena_block {
    struct arena_block *next;
    max_align_t data[];
};

static void *arena_alloc(gguf_file *f, size_t count, size_t size)
{
    if (count != 0 && size > (SIZE_MAX - sizeof(struct arena_block)) / count)
        return NULL;
    struct arena_block *b = calloc(1, sizeof *b + count * size);
    if (!b)
        return NULL;
    b->next = f->arena;
    f->arena = b;
    return b->data;
}

static void arena_free(void *arena)
{
    struct arena_block *b = arena;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---- bounds-checked cursor --------------------------------------------- */

struct cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    const char *name;
    quarry_error *err;
};

static int fail_at(struct cursor *c, uint64_t offset, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct cursor *c, uint64_t offset, int code, const char *fmt, ...)
{
    if (c->err) {
        char what[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        quarry_errorf(c->err, code, "%s: byte %" PRIu64 ": %s", c->name, offset, what);
    }
    return code;
}

static uint64_t left(const struct cursor *c)
{
    return c->size - c->pos;
}

static int need(struct cursor *c, uint64_t n, const char *what)
{
    if (n > left(c))
        return fail_at(c, c->pos, QUARRY_EFORMAT,
                       "file ends inside %s (needs %" PRIu64 " bytes, %" PRIu64 " left)", what, n,
                       left(c));
    return 0;
}

static uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int read_u32(struct cursor *c, uint32_t *out, const char *what)
{
    int rc = need(c, 4, what);
    if (rc)
        return rc;
    *out = (uint32_t)load_le(c->base + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int read_u64(struct cursor *c, uint64_t *out, const char *what)
{
    int rc = need(c, 8, what);
    if (rc)
        return rc;
    *out = load_le(c->base + c->pos, 8);
    c->pos += 8;
    return 0;
}

static int read_str(struct cursor *c, struct gguf_str *out, const char *what)
{
    uint64_t at = c->pos, len;
    int rc = read_u64(c, &len, what);
    if (rc)
        return rc;
    if (len > left(c))
        return fail_at(c, at, QUARRY_EFORMAT,
                       "%s length %" PRIu64 " exceeds the %" PRIu64 " bytes left in the file", what,
                       len, left(c));
    out->len = len;
    out->data = (const char *)c->base + c->pos;
    c->pos += len;
    return 0;
}

/* ---- value types --------------------------------------------------------- */

size_t gguf_value_type_size(enum gguf_value_type t)
{
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_type_name(enum gguf_value_type t)
{
    static const char *const names[GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64"};
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

static int64_t sign_extend(uint64_t v, size_t bytes)
{
    if (bytes >= 8)
        return (int64_t)v;
    const int shift = (int)(64 - 8 * bytes);
    return (int64_t)(v << shift) >> shift;
}

static double load_float(const uint8_t *p, size_t bytes)
{
    if (bytes == 4) {
        uint32_t u = (uint32_t)load_le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = load_le(p, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Fills a scalar value from its little-endian bytes. */
static void decode_scalar(enum gguf_value_type t, const uint8_t *p, struct gguf_value *v)
{
    const size_t n = gguf_value_type_size(t);
    v->type = t;
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64:
        v->v.u64 = load_le(p, (int)n);
        break;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        v->v.i64 = sign_extend(load_le(p, (int)n), n);
        break;
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64:
        v->v.f64 = load_float(p, n);
        break;
    case GGUF_TYPE_BOOL:
        v->v.b = p[0] != 0;
        break;
    default:
        break;
    }
}

static int read_value(gguf_file *f, struct cursor *c, uint32_t type, struct gguf_value *out,
                      int depth);

static int read_array(gguf_file *f, struct cursor *c, struct gguf_array *arr, int depth)
{
    uint64_t at = c->pos;
    uint32_t elem_type;
    uint64_t count;
    int rc = read_u32(c, &elem_type, "array element type");
    if (rc)
        return rc;
    if (elem_type >= GGUF_TYPE_COUNT)
        return fail_at(c, at, QUARRY_EFORMAT, "unknown array element type %" PRIu32, elem_type);
    if (elem_type == GGUF_TYPE_ARRAY && depth + 1 >= GGUF_MAX_ARRAY_DEPTH)
        return fail_at(c, at, QUARRY_EFORMAT, "arrays nested deeper than %d levels",
                       GGUF_MAX_ARRAY_DEPTH);
    at = c->pos;
    if ((rc = read_u64(c, &count, "array length")))
        return rc;
    arr->elem_type = (enum gguf_value_type)elem_type;
    arr->count = count;
    arr->raw = c->base + c->pos;
    arr->strs = NULL;
    arr->elems = NULL;
    const size_t esize = gguf_value_type_size(arr->elem_type);
    /* smallest possible encoding of one element: a string is at least its
     * 8-byte length, a nested array its 4-byte type and 8-byte count */
    const uint64_t min_size = esize ? esize : (elem_type == GGUF_TYPE_STRING ? 8 : 12);
    if (count > left(c) / min_size)
        return fail_at(c, at, QUARRY_EFORMAT,
                       "array of %" PRIu64 " %s elements cannot fit in the %" PRIu64
                       " bytes left in the file",
                       count, gguf_type_name(arr->elem_type), left(c));
    if (esize) {
        if (elem_type == GGUF_TYPE_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (c->base[c->pos + i] > 1)
                    return fail_at(c, c->pos + i, QUARRY_EFORMAT,
                                   "bool array element %" PRIu64 " is %u, not 0 or 1", i,
                                   c->base[c->pos + i]);
        c->pos += count * esize;
        return 0;
    }
    if (elem_type == GGUF_TYPE_STRING) {
        struct gguf_str *strs = arena_alloc(f, count, sizeof *strs);
        if (!strs && count)
            return fail_at(c, at, QUARRY_ENOMEM, "out of memory for %" PRIu64 " strings", count);
        for (uint64_t i = 0; i < count; i++)
            if ((rc = read_str(c, &strs[i], "array string")))
                return rc;
        arr->strs = strs;
        return 0;
    }
    struct gguf_value *elems = arena_alloc(f, count, sizeof *elems);
    if (!elems && count)
        return fail_at(c, at, QUARRY_ENOMEM, "out of memory for %" PRIu64 " arrays", count);
    for (uint64_t i = 0; i < count; i++)
        if ((rc = read_value(f, c, GGUF_TYPE_ARRAY, &elems[i], depth + 1)))
            return rc;
    arr->elems = elems;
    return 0;
}

static int read_value(gguf_file *f, struct cursor *c, uint32_t type, struct gguf_value *out,
                      int depth)
{
    const uint64_t at = c->pos;
    out->type = (enum gguf_value_type)type;
    if (type == GGUF_TYPE_STRING)
        return read_str(c, &out->v.str, "string value");
    if (type == GGUF_TYPE_ARRAY)
        return read_array(f, c, &out->v.arr, depth);
    const size_t n = gguf_value_type_size((enum gguf_value_type)type);
    if (n == 0)
        return fail_at(c, at, QUARRY_EFORMAT, "unknown value type %" PRIu32, type);
    int rc = need(c, n, "a value");
    if (rc)
        return rc;
    if (type == GGUF_TYPE_BOOL && c->base[c->pos] > 1)
        return fail_at(c, at, QUARRY_EFORMAT, "bool value is %u, not 0 or 1", c->base[c->pos]);
    decode_scalar((enum gguf_value_type)type, c->base + c->pos, out);
    c->pos += n;
    return 0;
}

/* ---- sorted name indexes (duplicate detection and lookups) ---------------- */

static int str_cmp(struct gguf_str a, struct gguf_str b)
{
    const uint64_t n = a.len < b.len ? a.len : b.len;
    int r = n ? memcmp(a.data, b.data, n) : 0;
    if (r)
        return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_kv_index(const void *a, const void *b, void *ctx)
{
    const struct gguf_kv *kvs = ctx;
    return str_cmp(kvs[*(const uint64_t *)a].key, kvs[*(const uint64_t *)b].key);
}

static int cmp_tensor_index(const void *a, const void *b, void *ctx)
{
    const struct gguf_tensor *t = ctx;
    return str_cmp(t[*(const uint64_t *)a].name, t[*(const uint64_t *)b].name);
}

static int cmp_tensor_offset(const void *a, const void *b, void *ctx)
{
    const struct gguf_tensor *t = ctx;
    const uint64_t x = t[*(const uint64_t *)a].offset, y = t[*(const uint64_t *)b].offset;
    return x < y ? -1 : x > y;
}

bool gguf_str_eq(struct gguf_str s, const char *cstr)
{
    const size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.data, cstr, n) == 0);
}

/* ---- header parsing --------------------------------------------------------- */

static int parse_header(gguf_file *f, struct cursor *c)
{
    uint32_t magic;
    int rc;
    if (c->size < 4 || (rc = read_u32(c, &magic, "magic")) != 0)
        return fail_at(c, 0, QUARRY_EFORMAT, "file too short for a GGUF header (%" PRIu64 " bytes)",
                       c->size);
    if (magic != GGUF_MAGIC)
        return fail_at(c, 0, QUARRY_EFORMAT, "bad magic %02x %02x %02x %02x (expected \"GGUF\")",
                       c->base[0], c->base[1], c->base[2], c->base[3]);
    if ((rc = read_u32(c, &f->version, "version")))
        return rc;
    if (f->version >= 0x10000 && (f->version & 0xffff) == 0 &&
        __builtin_bswap32(f->version) <= 3)
        return fail_at(c, 4, QUARRY_EUNSUPPORTED,
                       "big-endian GGUF file (version %" PRIu32 " byte-swapped); quarry reads "
                       "little-endian files only",
                       __builtin_bswap32(f->version));
    if (f->version != 2 && f->version != 3)
        return fail_at(c, 4, QUARRY_EUNSUPPORTED,
                       "unsupported GGUF version %" PRIu32 " (quarry reads versions 2 and 3)",
                       f->version);
    const uint64_t counts_at = c->pos;
    if ((rc = read_u64(c, &f->n_tensors, "tensor count")) ||
        (rc = read_u64(c, &f->n_kv, "key/value count")))
        return rc;

    /* a key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes */
    if (f->n_kv > left(c) / 13)
        return fail_at(c, counts_at + 8, QUARRY_EFORMAT,
                       "%" PRIu64 " key/value pairs cannot fit in the %" PRIu64
                       " bytes left in the file",
                       f->n_kv, left(c));
    f->kvs = arena_alloc(f, f->n_kv, sizeof *f->kvs);
    if (!f->kvs && f->n_kv)
        return fail_at(c, counts_at, QUARRY_ENOMEM, "out of memory");
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv *kv = &f->kvs[i];
        kv->file_offset = c->pos;
        uint32_t type;
        if ((rc = read_str(c, &kv->key, "key")))
            return rc;
        if (kv->key.len == 0)
            return fail_at(c, kv->file_offset, QUARRY_EFORMAT, "empty key");
        const uint64_t type_at = c->pos;
        if ((rc = read_u32(c, &type, "value type")))
            return rc;
        if (type >= GGUF_TYPE_COUNT)
            return fail_at(c, type_at, QUARRY_EFORMAT, "key '%.*s' has unknown value type %" PRIu32,
                           (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.data, type);
        if ((rc = read_value(f, c, type, &kv->value, 0)))
            return rc;
        if (gguf_str_eq(kv->key, "general.alignment")) {
            if (kv->value.type != GGUF_TYPE_UINT32 || kv->value.v.u64 == 0 ||
                (kv->value.v.u64 & (kv->value.v.u64 - 1)) != 0)
                return fail_at(c, kv->file_offset, QUARRY_EFORMAT,
                               "general.alignment must be a u32 power of two");
            f->alignment = (uint32_t)kv->value.v.u64;
        }
    }

    /* a tensor info takes at least 8 (name length) + 4 + 8 (one dim) + 4 + 8 bytes */
    const uint64_t infos_at = c->pos;
    if (f->n_tensors > left(c) / 32)
        return fail_at(c, counts_at, QUARRY_EFORMAT,
                       "%" PRIu64 " tensors cannot fit in the %" PRIu64 " bytes left in the file",
                       f->n_tensors, left(c));
    f->tensors = arena_alloc(f, f->n_tensors, sizeof *f->tensors);
    if (!f->tensors && f->n_tensors)
        return fail_at(c, infos_at, QUARRY_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        const uint64_t at = c->pos;
        uint32_t type;
        if ((rc = read_str(c, &t->name, "tensor name")))
            return rc;
        if (t->name.len == 0 || t->name.len >= GGUF_MAX_NAME)
            return fail_at(c, at, QUARRY_EFORMAT,
                           "tensor %" PRIu64 " name length %" PRIu64 " not in 1..%d", i,
                           t->name.len, GGUF_MAX_NAME - 1);
        const int nl = (int)t->name.len;
        if ((rc = read_u32(c, &t->n_dims, "tensor dimension count")))
            return rc;
        if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
            return fail_at(c, c->pos - 4, QUARRY_EFORMAT, "tensor '%.*s' has %" PRIu32
                           " dimensions (1..%d allowed)", nl, t->name.data, t->n_dims,
                           GGUF_MAX_DIMS);
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d >= t->n_dims)
                continue;
            if ((rc = read_u64(c, &t->ne[d], "tensor dimension")))
                return rc;
            if (t->ne[d] > (uint64_t)INT64_MAX ||
                (t->ne[d] != 0 && n_elements > (uint64_t)INT64_MAX / t->ne[d]))
                return fail_at(c, c->pos - 8, QUARRY_EFORMAT,
                               "tensor '%.*s' dimensions overflow (dim %" PRIu32 " = %" PRIu64 ")",
                               nl, t->name.data, d, t->ne[d]);
            n_elements *= t->ne[d];
        }
        t->n_elements = n_elements;
        const uint64_t type_at = c->pos;
        if ((rc = read_u32(c, &type, "tensor type")))
            return rc;
        const struct quarry_type_info *info = quarry_type_info(type);
        if (!info)
            return fail_at(c, type_at, QUARRY_EUNSUPPORTED,
                           "tensor '%.*s' has unknown or unsupported type %" PRIu32, nl,
                           t->name.data, type);
        t->type = (enum quarry_type)type;
        if (t->ne[0] % (uint64_t)info->block_size != 0)
            return fail_at(c, at, QUARRY_EFORMAT,
                           "tensor '%.*s' row length %" PRIu64
                           " is not a multiple of the %s block size %d",
                           nl, t->name.data, t->ne[0], info->name, info->block_size);
        const uint64_t blocks = n_elements / (uint64_t)info->block_size;
        if (blocks > UINT64_MAX / info->type_size)
            return fail_at(c, at, QUARRY_EFORMAT, "tensor '%.*s' byte size overflows", nl,
                           t->name.data);
        t->n_bytes = blocks * info->type_size;
        const uint64_t off_at = c->pos;
        if ((rc = read_u64(c, &t->offset, "tensor offset")))
            return rc;
        if (t->offset % f->alignment != 0)
            return fail_at(c, off_at, QUARRY_EFORMAT,
                           "tensor '%.*s' offset %" PRIu64 " is not a multiple of the alignment %"
                           PRIu32, nl, t->name.data, t->offset, f->alignment);
    }

    /* the data section starts at the next multiple of the alignment */
    const uint64_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
    f->data_offset = c->pos + pad;
    if (f->n_tensors > 0 && f->data_offset > c->size)
        return fail_at(c, c->pos, QUARRY_EFORMAT, "file ends before its data section");
    return 0;
}

static int check_names_and_extents(gguf_file *f, struct cursor *c)
{
    f->kv_sorted = arena_alloc(f, f->n_kv, sizeof(uint64_t));
    f->tensor_sorted = arena_alloc(f, f->n_tensors, sizeof(uint64_t));
    uint64_t *by_offset = arena_alloc(f, f->n_tensors, sizeof(uint64_t));
    if ((!f->kv_sorted && f->n_kv) || ((!f->tensor_sorted || !by_offset) && f->n_tensors))
        return fail_at(c, 0, QUARRY_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < f->n_kv; i++)
        f->kv_sorted[i] = i;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        f->tensor_sorted[i] = by_offset[i] = i;
    qsort_r(f->kv_sorted, f->n_kv, sizeof(uint64_t), cmp_kv_index, f->kvs);
    for (uint64_t i = 1; i < f->n_kv; i++) {
        const struct gguf_kv *a = &f->kvs[f->kv_sorted[i - 1]], *b = &f->kvs[f->kv_sorted[i]];
        if (str_cmp(a->key, b->key) == 0)
            return fail_at(c, b->file_offset > a->file_offset ? b->file_offset : a->file_offset,
                           QUARRY_EFORMAT, "duplicate key '%.*s'",
                           (int)(a->key.len > 200 ? 200 : a->key.len), a->key.data);
    }
    qsort_r(f->tensor_sorted, f->n_tensors, sizeof(uint64_t), cmp_tensor_index, f->tensors);
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const struct gguf_tensor *a = &f->tensors[f->tensor_sorted[i - 1]],
                                 *b = &f->tensors[f->tensor_sorted[i]];
        if (str_cmp(a->name, b->name) == 0)
            return fail_at(c, (uint64_t)((const uint8_t *)b->name.data - c->base) - 8,
                           QUARRY_EFORMAT, "duplicate tensor name '%.*s'", (int)a->name.len,
                           a->name.data);
    }
    const uint64_t data_size = f->n_tensors ? c->size - f->data_offset : 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        if (t->offset > data_size || t->n_bytes > data_size - t->offset)
            return fail_at(c, f->data_offset + (t->offset < data_size ? t->offset : data_size),
                           QUARRY_EFORMAT,
                           "tensor '%.*s' (%" PRIu64 " bytes at data offset %" PRIu64
                           ") extends past the end of the file",
                           (int)t->name.len, t->name.data, t->n_bytes, t->offset);
        t->data = c->base + f->data_offset + t->offset;
    }
    qsort_r(by_offset, f->n_tensors, sizeof(uint64_t), cmp_tensor_offset, f->tensors);
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const struct gguf_tensor *a = &f->tensors[by_offset[i - 1]],
                                 *b = &f->tensors[by_offset[i]];
        if (a->offset + a->n_bytes > b->offset)
            return fail_at(c, f->data_offset + b->offset, QUARRY_EFORMAT,
                           "tensors '%.*s' and '%.*s' overlap", (int)a->name.len, a->name.data,
                           (int)b->name.len, b->name.data);
    }
    return 0;
}

int gguf_open_memory(const void *buf, size_t size, const char *name, gguf_file **out,
                     quarry_error *err)
{
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f)
        return quarry_errorf(err, QUARRY_ENOMEM, "%s: out of memory", name);
    f->path = strdup(name);
    if (!f->path) {
        free(f);
        return quarry_errorf(err, QUARRY_ENOMEM, "%s: out of memory", name);
    }
    f->base = buf;
    f->size = size;
    struct cursor c = {.base = buf, .size = size, .pos = 0, .name = name, .err = err};
    int rc = parse_header(f, &c);
    if (rc == 0)
        rc = check_names_and_extents(f, &c);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int gguf_open(const char *path, gguf_file **out, quarry_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return quarry_errorf(err, QUARRY_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return quarry_errorf(err, QUARRY_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return quarry_errorf(err, QUARRY_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: byte 0: empty file", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return quarry_errorf(err, QUARRY_EIO, "%s: cannot map: %s", path, strerror(e));
    int rc = gguf_open_memory(map, (size_t)st.st_size, path, out, err);
    if (rc) {
        munmap(map, (size_t)st.st_size);
        return rc;
    }
    (*out)->mapped = true;
    return 0;
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        munmap((void *)f->base, f->size);
    arena_free(f->arena);
    free(f->path);
    free(f);
}

/* ---- lookups -------------------------------------------------------------- */

const struct gguf_kv *gguf_find_kv(const gguf_file *f, const char *key)
{
    const struct gguf_str want = {strlen(key), key};
    uint64_t lo = 0, hi = f->n_kv;
    while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        const struct gguf_kv *kv = &f->kvs[f->kv_sorted[mid]];
        int r = str_cmp(kv->key, want);
        if (r == 0)
            return kv;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    const struct gguf_str want = {strlen(name), name};
    uint64_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        const struct gguf_tensor *t = &f->tensors[f->tensor_sorted[mid]];
        int r = str_cmp(t->name, want);
        if (r == 0)
            return t;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const struct gguf_value *find_value(const gguf_file *f, const char *key, quarry_error *err,
                                           int *rc)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) {
        *rc = quarry_errorf(err, QUARRY_ENOTFOUND, "%s: key '%s' not found", f->path, key);
        return NULL;
    }
    *rc = 0;
    return &kv->value;
}

static int wrong_type(const gguf_file *f, const char *key, const struct gguf_value *v,
                      const char *want, quarry_error *err)
{
    return quarry_errorf(err, QUARRY_EFORMAT, "%s: key '%s' is %s, expected %s", f->path, key,
                         gguf_type_name(v->type), want);
}

static bool is_unsigned(enum gguf_value_type t)
{
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 ||
           t == GGUF_TYPE_UINT64;
}

static bool is_signed(enum gguf_value_type t)
{
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 ||
           t == GGUF_TYPE_INT64;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, quarry_error *err)
{
    int rc;
    const struct gguf_value *v = find_value(f, key, err, &rc);
    if (!v)
        return rc;
    if (is_unsigned(v->type)) {
        *out = v->v.u64;
        return 0;
    }
    if (is_signed(v->type)) {
        if (v->v.i64 < 0)
            return quarry_errorf(err, QUARRY_EFORMAT, "%s: key '%s' is negative (%" PRId64 ")",
                                 f->path, key, v->v.i64);
        *out = (uint64_t)v->v.i64;
        return 0;
    }
    return wrong_type(f, key, v, "an integer", err);
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, quarry_error *err)
{
    uint64_t v;
    int rc = gguf_get_u64(f, key, &v, err);
    if (rc)
        return rc;
    if (v > UINT32_MAX)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: key '%s' value %" PRIu64
                             " does not fit in 32 bits", f->path, key, v);
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, quarry_error *err)
{
    int rc;
    const struct gguf_value *v = find_value(f, key, err, &rc);
    if (!v)
        return rc;
    if (is_signed(v->type)) {
        *out = v->v.i64;
        return 0;
    }
    if (is_unsigned(v->type)) {
        if (v->v.u64 > (uint64_t)INT64_MAX)
            return quarry_errorf(err, QUARRY_EFORMAT, "%s: key '%s' value too large", f->path,
                                 key);
        *out = (int64_t)v->v.u64;
        return 0;
    }
    return wrong_type(f, key, v, "an integer", err);
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out, quarry_error *err)
{
    int rc;
    const struct gguf_value *v = find_value(f, key, err, &rc);
    if (!v)
        return rc;
    if (v->type == GGUF_TYPE_FLOAT32 || v->type == GGUF_TYPE_FLOAT64)
        *out = (float)v->v.f64;
    else if (is_unsigned(v->type))
        *out = (float)v->v.u64;
    else if (is_signed(v->type))
        *out = (float)v->v.i64;
    else
        return wrong_type(f, key, v, "a number", err);
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, quarry_error *err)
{
    int rc;
    const struct gguf_value *v = find_value(f, key, err, &rc);
    if (!v)
        return rc;
    if (v->type != GGUF_TYPE_BOOL)
        return wrong_type(f, key, v, "bool", err);
    *out = v->v.b;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, struct gguf_str *out, quarry_error *err)
{
    int rc;
    const struct gguf_value *v = find_value(f, key, err, &rc);
    if (!v)
        return rc;
    if (v->type != GGUF_TYPE_STRING)
        return wrong_type(f, key, v, "str", err);
    *out = v->v.str;
    return 0;
}

int gguf_get_array(const gguf_file *f, const char *key, int want_elem_type,
                   const struct gguf_array **out, quarry_error *err)
{
    int rc;
    const struct gguf_value *v = find_value(f, key, err, &rc);
    if (!v)
        return rc;
    if (v->type != GGUF_TYPE_ARRAY)
        return wrong_type(f, key, v, "arr", err);
    if (want_elem_type >= 0 && v->v.arr.elem_type != (enum gguf_value_type)want_elem_type)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: key '%s' is an array of %s, expected %s",
                             f->path, key, gguf_type_name(v->v.arr.elem_type),
                             gguf_type_name((enum gguf_value_type)want_elem_type));
    *out = &v->v.arr;
    return 0;
}

static struct gguf_value array_elem(const struct gguf_array *a, uint64_t i)
{
    struct gguf_value v = {0};
    const size_t n = gguf_value_type_size(a->elem_type);
    if (n && i < a->count)
        decode_scalar(a->elem_type, a->raw + i * n, &v);
    return v;
}

uint64_t gguf_array_u64(const struct gguf_array *a, uint64_t i)
{
    struct gguf_value v = array_elem(a, i);
    if (is_signed(v.type))
        return (uint64_t)v.v.i64;
    if (v.type == GGUF_TYPE_BOOL)
        return v.v.b;
    return is_unsigned(v.type) ? v.v.u64 : 0;
}

int64_t gguf_array_i64(const struct gguf_array *a, uint64_t i)
{
    struct gguf_value v = array_elem(a, i);
    if (is_unsigned(v.type))
        return (int64_t)v.v.u64;
    if (v.type == GGUF_TYPE_BOOL)
        return v.v.b;
    return is_signed(v.type) ? v.v.i64 : 0;
}

double gguf_array_f64(const struct gguf_array *a, uint64_t i)
{
    struct gguf_value v = array_elem(a, i);
    if (v.type == GGUF_TYPE_FLOAT32 || v.type == GGUF_TYPE_FLOAT64)
        return v.v.f64;
    if (is_unsigned(v.type))
        return (double)v.v.u64;
    if (is_signed(v.type))
        return (double)v.v.i64;
    return 0;
}
