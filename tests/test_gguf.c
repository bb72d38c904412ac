/*
 * test_gguf.c - the GGUF reader and writer.
 *
 * - The shipped model and golden files parse, with known values checked.
 * - The two damaged shipped vocab files (see tests/data/vocab/README.md) are
 *   rejected with an error naming the byte offset; the repaired one parses.
 * - A malformed corpus made from a small valid file written by the writer:
 *   truncation at every byte offset, every count and length field set to huge
 *   values, bad types, misaligned and overlapping offsets, duplicates, bad
 *   magic/version/endianness, deep nesting: each returns an error, none
 *   crashes (the suite also runs under `make asan`).
 * - Writer round trips: every value type, and a full copy of stories260K,
 *   compared key by key and tensor byte for byte.
 */
#include "testutil.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"

static char *temp_path(const char *tag)
{
    static const char *dir = "build";
    char *p = malloc(256);
    assert_non_null(p);
    snprintf(p, 256, "%s/test-gguf-%ld-%s.gguf", access(dir, W_OK) == 0 ? dir : "/tmp",
             (long)getpid(), tag);
    return p;
}

static uint64_t get_u32_or_fail(const gguf_file *f, const char *key)
{
    uint32_t v = 0;
    quarry_error err = {0};
    int rc = gguf_get_u32(f, key, &v, &err);
    if (rc)
        fail_msg("%s", err.msg);
    return v;
}

/* ---- shipped files ----------------------------------------------------------- */

static void test_stories260k(void **state)
{
    (void)state;
    gguf_file *f;
    quarry_error err = {0};
    assert_int_equal(gguf_open("tests/data/stories260K.gguf", &f, &err), 0);
    assert_int_equal(f->version, 3);
    assert_int_equal(f->n_tensors, 48);
    assert_int_equal(get_u32_or_fail(f, "llama.block_count"), 5);
    assert_int_equal(get_u32_or_fail(f, "llama.embedding_length"), 64);
    assert_int_equal(get_u32_or_fail(f, "llama.attention.head_count"), 8);
    assert_int_equal(get_u32_or_fail(f, "llama.attention.head_count_kv"), 4);
    assert_int_equal(get_u32_or_fail(f, "llama.feed_forward_length"), 172);
    const struct gguf_array *tokens;
    assert_int_equal(gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, &err), 0);
    assert_int_equal(tokens->count, 512);
    assert_true(gguf_str_eq(tokens->strs[1], "<s>"));
    assert_true(gguf_str_eq(tokens->strs[2], "</s>"));
    struct gguf_str arch;
    assert_int_equal(gguf_get_str(f, "general.architecture", &arch, &err), 0);
    assert_true(gguf_str_eq(arch, "llama"));
    float eps;
    assert_int_equal(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps, &err), 0);
    assert_true(fabsf(eps - 1e-5f) < 1e-9f);
    const struct gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, QUARRY_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->n_bytes, 64 * 512 * 4);
    assert_non_null(gguf_find_tensor(f, "blk.4.ffn_down.weight"));
    assert_null(gguf_find_tensor(f, "blk.5.ffn_down.weight"));
    assert_null(gguf_find_kv(f, "llama.no_such_key"));
    /* the getters report absent keys and wrong types */
    uint32_t u;
    assert_int_equal(gguf_get_u32(f, "nope", &u, &err), QUARRY_ENOTFOUND);
    assert_int_equal(gguf_get_u32(f, "general.name", &u, &err), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "general.name"));
    /* every tensor's data lies inside the mapping */
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const uint8_t *d = f->tensors[i].data;
        assert_true(d >= f->base + f->data_offset);
        assert_true(d + f->tensors[i].n_bytes <= f->base + f->size);
    }
    gguf_close(f);
}

static void test_llama2_tiny_random(void **state)
{
    (void)state;
    gguf_file *f;
    quarry_error err = {0};
    assert_int_equal(gguf_open("tests/data/llama-2-tiny-random.gguf", &f, &err), 0);
    assert_int_equal(get_u32_or_fail(f, "llama.embedding_length"), 8);
    assert_int_equal(get_u32_or_fail(f, "llama.block_count"), 1);
    const struct gguf_array *tokens, *scores;
    assert_int_equal(gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, &err), 0);
    assert_int_equal(tokens->count, 32000);
    assert_int_equal(gguf_get_array(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &scores, &err), 0);
    assert_int_equal(scores->count, 32000);
    const struct gguf_tensor *t = gguf_find_tensor(f, "blk.0.attn_q.weight");
    assert_non_null(t);
    assert_int_equal(t->type, QUARRY_TYPE_F16);
    gguf_close(f);
}

static void test_quant_golden(void **state)
{
    (void)state;
    gguf_file *f;
    quarry_error err = {0};
    assert_int_equal(gguf_open("tests/data/quant-golden.gguf", &f, &err), 0);
    static const char *const types[] = {"f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0",
                                        "q8_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "q.%s", types[i]);
        const struct gguf_tensor *t = gguf_find_tensor(f, name);
        assert_non_null(t);
        assert_int_equal(t->type, quarry_type_from_name(types[i]));
        assert_int_equal(t->ne[0], 512);
        assert_int_equal(t->ne[1], 16);
    }
    assert_non_null(gguf_find_tensor(f, "src"));
    assert_non_null(gguf_find_tensor(f, "act"));
    gguf_close(f);
}

static void test_damaged_vocab_rejected(void **state)
{
    (void)state;
    static const char *const damaged[] = {"tests/data/vocab/ggml-vocab-gpt-2.gguf",
                                          "tests/data/vocab/ggml-vocab-llama-spm.gguf"};
    for (int i = 0; i < 2; i++) {
        gguf_file *f = (gguf_file *)1;
        quarry_error err = {0};
        assert_int_equal(gguf_open(damaged[i], &f, &err), QUARRY_EFORMAT);
        assert_null(f);
        assert_non_null(strstr(err.msg, damaged[i]));
        assert_non_null(strstr(err.msg, "byte "));
    }
    gguf_file *f;
    quarry_error err = {0};
    assert_int_equal(gguf_open("tests/data/vocab/ggml-vocab-gpt-2.repaired.gguf", &f, &err), 0);
    const struct gguf_array *merges;
    assert_int_equal(gguf_get_array(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &merges, &err), 0);
    assert_int_equal(merges->count, 50000);
    assert_int_equal(get_u32_or_fail(f, "tokenizer.ggml.eos_token_id"), 50256);
    gguf_close(f);
}

static void test_open_errors(void **state)
{
    (void)state;
    gguf_file *f;
    quarry_error err = {0};
    assert_int_equal(gguf_open("tests/data/no-such-file.gguf", &f, &err), QUARRY_EIO);
    assert_non_null(strstr(err.msg, "no-such-file.gguf"));
    assert_int_equal(gguf_open("tests/data", &f, &err), QUARRY_EIO);
    char *path = temp_path("empty");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(gguf_open(path, &f, &err), QUARRY_EFORMAT);
    unlink(path);
    free(path);
}

/* ---- a small valid file, written by the writer ------------------------------- */

struct image {
    uint8_t *data;
    size_t size;
};

static float tensor_a[64 * 3];
static uint16_t tensor_b[32 * 2];
static uint8_t tensor_c[18 * 4]; /* 4 q4_0 blocks */

static gguf_writer *small_writer(void)
{
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (int i = 0; i < 64 * 3; i++)
        tensor_a[i] = (float)i * 0.25f - 3.0f;
    for (int i = 0; i < 32 * 2; i++)
        tensor_b[i] = (uint16_t)(0x3c00 + i);
    for (int i = 0; i < 18 * 4; i++)
        tensor_c[i] = (uint8_t)(i * 7);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(gguf_writer_set_u32(w, "test.u32", 123456), 0);
    assert_int_equal(gguf_writer_set_i32(w, "test.i32", -42), 0);
    assert_int_equal(gguf_writer_set_u64(w, "test.u64", UINT64_C(1) << 40), 0);
    assert_int_equal(gguf_writer_set_f32(w, "test.f32", 0.125f), 0);
    assert_int_equal(gguf_writer_set_bool(w, "test.bool", true), 0);
    const char *strs[] = {"alpha", "", "g\xc3\xa9nial"};
    assert_int_equal(gguf_writer_set_str_array(w, "test.strs", strs, 3), 0);
    const int32_t ints[] = {1, -2, 3, -4, 5};
    assert_int_equal(gguf_writer_set_array(w, "test.i32s", GGUF_TYPE_INT32, ints, 5), 0);
    const double dbl[] = {1.5, -2.25};
    assert_int_equal(gguf_writer_set_array(w, "test.f64s", GGUF_TYPE_FLOAT64, dbl, 2), 0);
    const uint64_t ne_a[] = {64, 3}, ne_b[] = {32, 2}, ne_c[] = {64, 2};
    assert_int_equal(gguf_writer_add_tensor(w, "a.weight", QUARRY_TYPE_F32, 2, ne_a, tensor_a), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "b.weight", QUARRY_TYPE_F16, 2, ne_b, tensor_b), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "c.weight", QUARRY_TYPE_Q4_0, 2, ne_c, tensor_c), 0);
    return w;
}

static struct image write_to_image(gguf_writer *w, const char *tag)
{
    char *path = temp_path(tag);
    quarry_error err = {0};
    int rc = gguf_writer_write(w, path, &err);
    if (rc)
        fail_msg("%s", err.msg);
    struct image img;
    img.data = tu_read_file(path, &img.size);
    assert_non_null(img.data);
    unlink(path);
    free(path);
    return img;
}

static struct image small_image(void)
{
    gguf_writer *w = small_writer();
    struct image img = write_to_image(w, "small");
    gguf_writer_free(w);
    return img;
}

static int parse_image(const uint8_t *data, size_t size, quarry_error *err)
{
    gguf_file *f = NULL;
    int rc = gguf_open_memory(data, size, "mutant", &f, err);
    if (rc == 0) {
        /* a parse that succeeds must leave every tensor inside the image */
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const uint8_t *d = f->tensors[i].data;
            assert_true(d >= data && d + f->tensors[i].n_bytes <= data + size);
        }
        gguf_close(f);
    } else {
        assert_null(f);
        assert_true(strlen(err->msg) > 0);
    }
    return rc;
}

static void test_writer_roundtrip(void **state)
{
    (void)state;
    struct image img = small_image();
    gguf_file *f;
    quarry_error err = {0};
    assert_int_equal(gguf_open_memory(img.data, img.size, "small", &f, &err), 0);
    assert_int_equal(f->version, 3);
    assert_int_equal(f->n_kv, 9);
    assert_int_equal(f->n_tensors, 3);
    assert_int_equal(f->data_offset % 32, 0);
    assert_int_equal(get_u32_or_fail(f, "test.u32"), 123456);
    int64_t i64;
    assert_int_equal(gguf_get_i64(f, "test.i32", &i64, &err), 0);
    assert_int_equal(i64, -42);
    uint64_t u64;
    assert_int_equal(gguf_get_u64(f, "test.u64", &u64, &err), 0);
    assert_true(u64 == (UINT64_C(1) << 40));
    uint32_t u32;
    assert_int_equal(gguf_get_u32(f, "test.u64", &u32, &err), QUARRY_EFORMAT); /* does not fit */
    assert_int_equal(gguf_get_u64(f, "test.i32", &u64, &err), QUARRY_EFORMAT); /* negative */
    float f32;
    assert_int_equal(gguf_get_f32(f, "test.f32", &f32, &err), 0);
    assert_true(f32 == 0.125f);
    bool b;
    assert_int_equal(gguf_get_bool(f, "test.bool", &b, &err), 0);
    assert_true(b);
    const struct gguf_array *a;
    assert_int_equal(gguf_get_array(f, "test.strs", GGUF_TYPE_STRING, &a, &err), 0);
    assert_int_equal(a->count, 3);
    assert_true(gguf_str_eq(a->strs[0], "alpha"));
    assert_true(gguf_str_eq(a->strs[1], ""));
    assert_true(gguf_str_eq(a->strs[2], "g\xc3\xa9nial"));
    assert_int_equal(gguf_get_array(f, "test.i32s", GGUF_TYPE_INT32, &a, &err), 0);
    assert_int_equal(a->count, 5);
    assert_int_equal(gguf_array_i64(a, 3), -4);
    assert_int_equal(gguf_get_array(f, "test.i32s", GGUF_TYPE_FLOAT32, &a, &err), QUARRY_EFORMAT);
    assert_int_equal(gguf_get_array(f, "test.f64s", -1, &a, &err), 0);
    assert_true(gguf_array_f64(a, 1) == -2.25);
    const struct gguf_tensor *t = gguf_find_tensor(f, "a.weight");
    assert_non_null(t);
    assert_int_equal(t->n_bytes, sizeof tensor_a);
    assert_memory_equal(t->data, tensor_a, sizeof tensor_a);
    t = gguf_find_tensor(f, "b.weight");
    assert_non_null(t);
    assert_int_equal(t->type, QUARRY_TYPE_F16);
    assert_memory_equal(t->data, tensor_b, sizeof tensor_b);
    t = gguf_find_tensor(f, "c.weight");
    assert_non_null(t);
    assert_int_equal(t->type, QUARRY_TYPE_Q4_0);
    assert_int_equal(t->n_bytes, sizeof tensor_c);
    assert_int_equal(t->offset % 32, 0);
    assert_memory_equal(t->data, tensor_c, sizeof tensor_c);
    gguf_close(f);
    free(img.data);
}

/* Copies every key and tensor of a real file and compares both files. */
static void test_writer_copy_stories(void **state)
{
    (void)state;
    gguf_file *src;
    quarry_error err = {0};
    assert_int_equal(gguf_open("tests/data/stories260K.gguf", &src, &err), 0);
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (uint64_t i = 0; i < src->n_kv; i++)
        assert_int_equal(gguf_writer_copy_kv(w, &src->kvs[i]), 0);
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const struct gguf_tensor *t = &src->tensors[i];
        char name[GGUF_MAX_NAME];
        memcpy(name, t->name.data, t->name.len);
        name[t->name.len] = 0;
        assert_int_equal(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data), 0);
    }
    struct image img = write_to_image(w, "copy");
    gguf_writer_free(w);
    /* the source was written by llama.cpp's converter logic: our writer's output
     * for the same content is the same file, byte for byte */
    size_t orig_size;
    uint8_t *orig = tu_read_file("tests/data/stories260K.gguf", &orig_size);
    assert_non_null(orig);
    assert_int_equal(img.size, orig_size);
    assert_memory_equal(img.data, orig, orig_size);
    gguf_file *copy;
    assert_int_equal(gguf_open_memory(img.data, img.size, "copy", &copy, &err), 0);
    assert_int_equal(copy->n_kv, src->n_kv);
    assert_int_equal(copy->n_tensors, src->n_tensors);
    gguf_close(copy);
    free(orig);
    free(img.data);
    gguf_close(src);
}

static void test_writer_rejects_bad_input(void **state)
{
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    float data[64] = {0};
    const uint64_t ne[] = {64}, ne_odd[] = {33};
    assert_int_equal(gguf_writer_add_tensor(w, "t", QUARRY_TYPE_F32, 1, ne, data), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "t", QUARRY_TYPE_F32, 1, ne, data), QUARRY_EINVAL);
    assert_non_null(gguf_writer_error(w));
    assert_int_equal(gguf_writer_add_tensor(w, "u", QUARRY_TYPE_Q4_0, 1, ne_odd, data),
                     QUARRY_EINVAL);
    assert_int_equal(gguf_writer_add_tensor(w, "v", (enum quarry_type)4, 1, ne, data),
                     QUARRY_EINVAL);
    assert_int_equal(gguf_writer_add_tensor(w, "w", QUARRY_TYPE_F32, 5, ne, data), QUARRY_EINVAL);
    char long_name[100];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    assert_int_equal(gguf_writer_add_tensor(w, long_name, QUARRY_TYPE_F32, 1, ne, data),
                     QUARRY_EINVAL);
    /* a writer that saw an error refuses to write */
    quarry_error err = {0};
    char *path = temp_path("refused");
    assert_int_equal(gguf_writer_write(w, path, &err), QUARRY_EINVAL);
    assert_int_equal(access(path, F_OK), -1);
    free(path);
    gguf_writer_free(w);
    /* setting a key twice replaces its value */
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_set_u32(w, "k", 1), 0);
    assert_int_equal(gguf_writer_set_str(w, "k", "two"), 0);
    struct image img = write_to_image(w, "replace");
    gguf_writer_free(w);
    gguf_file *f;
    assert_int_equal(gguf_open_memory(img.data, img.size, "replace", &f, &err), 0);
    assert_int_equal(f->n_kv, 1);
    struct gguf_str s;
    assert_int_equal(gguf_get_str(f, "k", &s, &err), 0);
    assert_true(gguf_str_eq(s, "two"));
    gguf_close(f);
    free(img.data);
    /* writing into a missing directory fails cleanly */
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err), QUARRY_EIO);
    gguf_writer_free(w);
}

/* ---- malformed corpus ------------------------------------------------------------ */

static void test_truncation_everywhere(void **state)
{
    (void)state;
    struct image img = small_image();
    quarry_error err;
    /* the last tensor's data ends before the file does (trailing padding to the
     * alignment): cutting only padding leaves a valid file, cutting more must fail */
    gguf_file *f;
    assert_int_equal(gguf_open_memory(img.data, img.size, "small", &f, &err), 0);
    size_t data_end = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        size_t end = (size_t)(f->data_offset + f->tensors[i].offset + f->tensors[i].n_bytes);
        data_end = end > data_end ? end : data_end;
    }
    gguf_close(f);
    assert_true(data_end < img.size);
    for (size_t len = data_end; len < img.size; len++)
        assert_int_equal(parse_image(img.data, len, &err), 0);
    for (size_t len = 0; len < data_end; len++) {
        /* copy into an exact-size buffer so ASan catches any read past the end */
        uint8_t *cut = malloc(len ? len : 1);
        assert_non_null(cut);
        memcpy(cut, img.data, len);
        err.msg[0] = 0;
        int rc = parse_image(cut, len, &err);
        if (rc == 0)
            fail_msg("truncation to %zu of %zu bytes was accepted", len, img.size);
        free(cut);
    }
    free(img.data);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Parses a mutated copy and expects failure with a message containing want. */
static void expect_reject(const struct image *img, size_t at, uint64_t value, int width,
                          const char *want)
{
    uint8_t *m = malloc(img->size);
    assert_non_null(m);
    memcpy(m, img->data, img->size);
    put_le(m + at, value, width);
    quarry_error err = {0};
    int rc = parse_image(m, img->size, &err);
    if (rc == 0)
        fail_msg("mutation at byte %zu (value %" PRIu64 ") was accepted", at, value);
    if (want && !strstr(err.msg, want))
        fail_msg("mutation at byte %zu: message '%s' lacks '%s'", at, err.msg, want);
    free(m);
}

/* Positions of the small file's fields, found by parsing it. */
struct layout {
    size_t kv_key_len[9];
    size_t kv_type[9];
    size_t strs_count;    /* count field of test.strs */
    size_t i32s_elem_type;
    size_t tensor_name_len[3];
    size_t tensor_n_dims[3];
    size_t tensor_ne0[3];
    size_t tensor_type[3];
    size_t tensor_offset[3];
};

static struct layout find_layout(const struct image *img)
{
    gguf_file *f;
    quarry_error err = {0};
    assert_int_equal(gguf_open_memory(img->data, img->size, "small", &f, &err), 0);
    struct layout l;
    for (int i = 0; i < 9; i++) {
        l.kv_key_len[i] = f->kvs[i].file_offset;
        l.kv_type[i] = f->kvs[i].file_offset + 8 + f->kvs[i].key.len;
        if (gguf_str_eq(f->kvs[i].key, "test.strs"))
            l.strs_count = l.kv_type[i] + 4 + 4;
        if (gguf_str_eq(f->kvs[i].key, "test.i32s"))
            l.i32s_elem_type = l.kv_type[i] + 4;
    }
    for (int i = 0; i < 3; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        l.tensor_name_len[i] = (size_t)((const uint8_t *)t->name.data - img->data) - 8;
        l.tensor_n_dims[i] = l.tensor_name_len[i] + 8 + t->name.len;
        l.tensor_ne0[i] = l.tensor_n_dims[i] + 4;
        l.tensor_type[i] = l.tensor_ne0[i] + 8 * t->n_dims;
        l.tensor_offset[i] = l.tensor_type[i] + 4;
    }
    gguf_close(f);
    return l;
}

static void test_malformed_fields(void **state)
{
    (void)state;
    struct image img = small_image();
    const struct layout l = find_layout(&img);
    const uint64_t huge[] = {UINT64_MAX, UINT64_MAX / 2, UINT64_C(1) << 62, UINT64_C(1) << 32,
                             img.size, img.size - 1};

    /* header */
    expect_reject(&img, 0, 0x46554748, 4, "bad magic");
    expect_reject(&img, 4, 1, 4, "unsupported GGUF version 1");
    expect_reject(&img, 4, 4, 4, "unsupported GGUF version 4");
    expect_reject(&img, 4, 0x03000000, 4, "big-endian");
    for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
        expect_reject(&img, 8, huge[h], 8, NULL);   /* tensor count */
        expect_reject(&img, 16, huge[h], 8, NULL);  /* key/value count */
        for (int i = 0; i < 9; i++)
            expect_reject(&img, l.kv_key_len[i], huge[h], 8, NULL);
        expect_reject(&img, l.strs_count, huge[h], 8, NULL);
        for (int i = 0; i < 3; i++) {
            expect_reject(&img, l.tensor_name_len[i], huge[h], 8, NULL);
            expect_reject(&img, l.tensor_ne0[i], huge[h], 8, NULL);
            expect_reject(&img, l.tensor_offset[i], huge[h] & ~UINT64_C(31), 8, NULL);
        }
    }
    /* counts larger than the truth (but small) also fail */
    expect_reject(&img, 8, 4, 8, NULL);
    expect_reject(&img, 16, 10, 8, NULL);

    /* bad value and element types */
    for (int i = 0; i < 9; i++) {
        expect_reject(&img, l.kv_type[i], 13, 4, "unknown value type");
        expect_reject(&img, l.kv_type[i], 0xffffffff, 4, "unknown value type");
    }
    expect_reject(&img, l.i32s_elem_type, 99, 4, "unknown array element type");

    /* tensor infos */
    for (int i = 0; i < 3; i++) {
        expect_reject(&img, l.tensor_n_dims[i], 0, 4, "dimensions");
        expect_reject(&img, l.tensor_n_dims[i], 5, 4, "dimensions");
        expect_reject(&img, l.tensor_type[i], 4, 4, "unknown or unsupported type 4");
        expect_reject(&img, l.tensor_type[i], 39, 4, "unknown or unsupported type");
        expect_reject(&img, l.tensor_offset[i], 1, 8, "not a multiple of the alignment");
        expect_reject(&img, l.tensor_offset[i], 16, 8, "not a multiple of the alignment");
        expect_reject(&img, l.tensor_name_len[i], 0, 8, NULL);
    }
    /* q4_0 row not a multiple of its block size */
    expect_reject(&img, l.tensor_ne0[2], 48, 8, "block size");
    /* overlapping: b moved onto a */
    expect_reject(&img, l.tensor_offset[1], 32, 8, "overlap");
    expect_reject(&img, l.tensor_offset[2], 0, 8, "overlap");
    /* past the end */
    expect_reject(&img, l.tensor_offset[2], (img.size & ~(uint64_t)31), 8, "past the end");
    /* dimension product overflow: a 2-D tensor with huge ne[1] */
    expect_reject(&img, l.tensor_ne0[0] + 8, UINT64_C(1) << 61, 8, NULL);
    free(img.data);
}

static void test_duplicates_and_alignment(void **state)
{
    (void)state;
    /* duplicate key: rename test.i32 to test.u32 (same length) in the image */
    struct image img = small_image();
    uint8_t *p = memmem(img.data, img.size, "test.i32", 8);
    assert_non_null(p);
    /* make sure this is the key, not test.i32s */
    while (p && p[8] == 's')
        p = memmem(p + 1, img.size - (size_t)(p + 1 - img.data), "test.i32", 8);
    assert_non_null(p);
    memcpy(p, "test.u32", 8);
    quarry_error err = {0};
    assert_int_equal(parse_image(img.data, img.size, &err), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "duplicate key 'test.u32'"));
    free(img.data);

    /* duplicate tensor name */
    img = small_image();
    p = memmem(img.data, img.size, "b.weight", 8);
    assert_non_null(p);
    p[0] = 'a';
    assert_int_equal(parse_image(img.data, img.size, &err), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "duplicate tensor name 'a.weight'"));
    free(img.data);

    /* general.alignment must be a power-of-two u32 */
    gguf_writer *w = small_writer();
    assert_int_equal(gguf_writer_set_u32(w, "general.alignment", 64), 0);
    img = write_to_image(w, "align64");
    gguf_writer_free(w);
    gguf_file *f;
    assert_int_equal(gguf_open_memory(img.data, img.size, "align64", &f, &err), 0);
    assert_int_equal(f->alignment, 64);
    assert_int_equal(f->data_offset % 64, 0);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        assert_int_equal(f->tensors[i].offset % 64, 0);
    gguf_close(f);
    p = memmem(img.data, img.size, "general.alignment", 17);
    assert_non_null(p);
    put_le(p + 17 + 4, 48, 4);
    assert_int_equal(parse_image(img.data, img.size, &err), QUARRY_EFORMAT);
    assert_non_null(strstr(err.msg, "power of two"));
    put_le(p + 17 + 4, 0, 4);
    assert_int_equal(parse_image(img.data, img.size, &err), QUARRY_EFORMAT);
    put_le(p + 17, GGUF_TYPE_UINT16, 4); /* wrong type (and the value no longer parses) */
    assert_int_equal(parse_image(img.data, img.size, &err), QUARRY_EFORMAT);
    free(img.data);
}

/* Nested arrays: accepted to the depth limit, rejected past it. */
static void test_nested_arrays(void **state)
{
    (void)state;
    for (int depth = 1; depth <= GGUF_MAX_ARRAY_DEPTH + 1; depth++) {
        uint8_t buf[512];
        size_t n = 0;
        put_le(buf + n, GGUF_MAGIC, 4), n += 4;
        put_le(buf + n, 3, 4), n += 4;
        put_le(buf + n, 0, 8), n += 8;
        put_le(buf + n, 1, 8), n += 8;
        put_le(buf + n, 1, 8), n += 8;
        buf[n++] = 'k';
        put_le(buf + n, GGUF_TYPE_ARRAY, 4), n += 4;
        /* depth-1 levels of "array of 1 array", then an array of one u8 */
        for (int d = 1; d < depth; d++) {
            put_le(buf + n, GGUF_TYPE_ARRAY, 4), n += 4;
            put_le(buf + n, 1, 8), n += 8;
        }
        put_le(buf + n, GGUF_TYPE_UINT8, 4), n += 4;
        put_le(buf + n, 1, 8), n += 8;
        buf[n++] = 7;
        quarry_error err = {0};
        gguf_file *f = NULL;
        int rc = gguf_open_memory(buf, n, "nested", &f, &err);
        if (depth <= GGUF_MAX_ARRAY_DEPTH) {
            if (rc)
                fail_msg("depth %d rejected: %s", depth, err.msg);
            const struct gguf_value *v = &gguf_find_kv(f, "k")->value;
            for (int d = 1; d < depth; d++) {
                assert_int_equal(v->v.arr.elem_type, GGUF_TYPE_ARRAY);
                v = &v->v.arr.elems[0];
            }
            assert_int_equal(v->v.arr.elem_type, GGUF_TYPE_UINT8);
            assert_int_equal(gguf_array_u64(&v->v.arr, 0), 7);
            /* the writer copies nested arrays exactly */
            gguf_writer *w = gguf_writer_new();
            assert_int_equal(gguf_writer_copy_kv(w, gguf_find_kv(f, "k")), 0);
            struct image img = write_to_image(w, "nested");
            gguf_writer_free(w);
            assert_int_equal(img.size, n);
            assert_memory_equal(img.data, buf, n);
            free(img.data);
            gguf_close(f);
        } else {
            assert_int_equal(rc, QUARRY_EFORMAT);
            assert_non_null(strstr(err.msg, "nested"));
        }
    }
}

/* Random byte flips in the header: must never crash, and accepted mutants must be sane. */
static void test_random_mutations(void **state)
{
    (void)state;
    struct image img = small_image();
    uint64_t rng = 0x9e3779b97f4a7c15u;
    gguf_file *f;
    quarry_error err;
    assert_int_equal(gguf_open_memory(img.data, img.size, "small", &f, &err), 0);
    const size_t header = (size_t)f->data_offset;
    gguf_close(f);
    uint8_t *m = malloc(img.size);
    assert_non_null(m);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, img.data, img.size);
        int flips = 1 + (int)(tu_rand_u64(&rng) % 4);
        for (int k = 0; k < flips; k++)
            m[tu_rand_u64(&rng) % header] ^= (uint8_t)(1u << (tu_rand_u64(&rng) % 8));
        parse_image(m, img.size, &err);
    }
    free(m);
    free(img.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_llama2_tiny_random),
        cmocka_unit_test(test_quant_golden),
        cmocka_unit_test(test_damaged_vocab_rejected),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_writer_copy_stories),
        cmocka_unit_test(test_writer_rejects_bad_input),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_malformed_fields),
        cmocka_unit_test(test_duplicates_and_alignment),
        cmocka_unit_test(test_nested_arrays),
        cmocka_unit_test(test_random_mutations),
    };
    return TU_RUN_GROUP(tests);
}
