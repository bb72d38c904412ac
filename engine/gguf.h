/*
 * gguf.h - reading and writing GGUF files (versions 2 and 3), the model format
 * of llama.cpp / ggml.
 *
 * Reading maps the file read-only and validates everything before use: every
 * count, string length, dimension product and offset is checked for overflow
 * and bounds; tensors must lie inside the data section, aligned and not
 * overlapping; unknown types, duplicate names, bad magic, unsupported versions
 * and big-endian files are rejected. Errors name the file, the byte offset and
 * the problem. Nothing is allocated from a count before that count has been
 * checked against the bytes left in the file.
 *
 * Strings (keys, string values, tensor names) point into the mapping and are
 * NOT NUL-terminated: use gguf_str_eq()/printf("%.*s") with their length.
 * Everything returned stays valid until gguf_close().
 *
 * Layout of a GGUF file (all little-endian):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to general.alignment (default 32) | data section
 * string = u64 length + bytes; array value = u32 elem_type + u64 count + elems.
 */
#ifndef QUARRY_GGUF_H
#define QUARRY_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "kernels/types.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 64        /* tensor names are shorter than this (as in ggml) */
#define GGUF_MAX_ARRAY_DEPTH 8  /* nested arrays deeper than this are rejected */

enum gguf_value_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT = 13
};

struct gguf_str {
    uint64_t len;
    const char *data; /* not NUL-terminated */
};

struct gguf_value;

struct gguf_array {
    enum gguf_value_type elem_type;
    uint64_t count;
    const uint8_t *raw;              /* fixed-size elements: packed little-endian, unaligned */
    const struct gguf_str *strs;     /* elem_type STRING: count strings */
    const struct gguf_value *elems;  /* elem_type ARRAY: count nested arrays */
};

struct gguf_value {
    enum gguf_value_type type;
    union {
        uint64_t u64; /* UINT8/16/32/64 */
        int64_t i64;  /* INT8/16/32/64 */
        double f64;   /* FLOAT32/64 */
        bool b;
        struct gguf_str str;
        struct gguf_array arr;
    } v;
};

struct gguf_kv {
    struct gguf_str key;
    struct gguf_value value;
    uint64_t file_offset; /* where the key starts */
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];  /* ne[0] is the row length (contiguous); unused dims are 1 */
    enum quarry_type type;
    uint64_t offset;             /* relative to the data section */
    uint64_t n_elements;
    uint64_t n_bytes;
    const void *data;            /* into the mapping */
};

typedef struct gguf_file {
    char *path;                  /* as given (for messages) */
    const uint8_t *base;         /* whole file */
    uint64_t size;
    bool mapped;                 /* base is an mmap we own */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;        /* start of the data section */
    uint64_t n_kv;
    struct gguf_kv *kvs;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    /* internal: lookup indexes sorted by name, and storage for parsed arrays */
    uint64_t *kv_sorted;
    uint64_t *tensor_sorted;
    void *arena;
} gguf_file;

/* Opens and validates path (mmap). On failure *out is NULL and err says why. */
int gguf_open(const char *path, gguf_file **out, quarry_error *err);
/* Parses a GGUF image already in memory (not copied: buf must outlive the
 * result). name is used in messages. */
int gguf_open_memory(const void *buf, size_t size, const char *name, gguf_file **out,
                     quarry_error *err);
void gguf_close(gguf_file *f);

/* Lookups (binary search); NULL when absent. */
const struct gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const struct gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters. Integer getters accept any integer type whose value fits;
 * they return QUARRY_ENOTFOUND when the key is absent and QUARRY_EFORMAT when
 * its type or value does not fit (with a message naming the key). */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, quarry_error *err);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, quarry_error *err);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, quarry_error *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, quarry_error *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, quarry_error *err);
int gguf_get_str(const gguf_file *f, const char *key, struct gguf_str *out, quarry_error *err);
/* An array value with the given element type (any type when want < 0). */
int gguf_get_array(const gguf_file *f, const char *key, int want_elem_type,
                   const struct gguf_array **out, quarry_error *err);

/* Array element readers (i < count, fixed-size element types only). */
uint64_t gguf_array_u64(const struct gguf_array *a, uint64_t i); /* any unsigned/signed int */
int64_t gguf_array_i64(const struct gguf_array *a, uint64_t i);
double gguf_array_f64(const struct gguf_array *a, uint64_t i);   /* FLOAT32/64 */

bool gguf_str_eq(struct gguf_str s, const char *cstr);
const char *gguf_type_name(enum gguf_value_type t);
/* Size in bytes of one fixed-size element (0 for STRING/ARRAY/unknown). */
size_t gguf_value_type_size(enum gguf_value_type t);

/* ---- writing (GGUF v3) -------------------------------------------------- */

typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
/* Metadata: keys must be unique; values are copied. */
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* A scalar-typed array: count elements of elem_type, packed little-endian in data. */
int gguf_writer_set_array(gguf_writer *w, const char *key, enum gguf_value_type elem_type,
                          const void *data, uint64_t count);
int gguf_writer_set_str_array(gguf_writer *w, const char *key, const char *const *strs,
                              uint64_t count);
/* Copies one key/value from a file being read (any type, nested arrays too). */
int gguf_writer_copy_kv(gguf_writer *w, const struct gguf_kv *kv);
/* Adds a tensor; data (n_bytes = row size x rows) is referenced, not copied,
 * and must stay valid until gguf_writer_write(). ne has n_dims entries. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, enum quarry_type type,
                           uint32_t n_dims, const uint64_t *ne, const void *data);
/* Writes the file (to path.tmp, then renamed). Returns 0 or an error code. */
int gguf_writer_write(gguf_writer *w, const char *path, quarry_error *err);
/* Failure message of the last set/add call that failed (NULL if none). */
const char *gguf_writer_error(const gguf_writer *w);

#endif
