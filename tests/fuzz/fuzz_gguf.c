/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader: parses arbitrary bytes,
 * and when they parse, walks every key, value and tensor the way `quarry info`
 * and the model loader do, so a reader bug that returns bad pointers shows up
 * as a sanitizer report. Seeded from tests/fuzz/corpus/fuzz_gguf (headers of
 * the shipped files and a small file with every value type). Run: make fuzz.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

static uint64_t touch_value(const struct gguf_value *v)
{
    uint64_t h = v->type;
    if (v->type == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < v->v.str.len; i++)
            h = h * 31 + (uint8_t)v->v.str.data[i];
    } else if (v->type == GGUF_TYPE_ARRAY) {
        const struct gguf_array *a = &v->v.arr;
        for (uint64_t i = 0; i < a->count; i++) {
            if (a->elem_type == GGUF_TYPE_STRING)
                h += a->strs[i].len ? (uint8_t)a->strs[i].data[a->strs[i].len - 1] : 0;
            else if (a->elem_type == GGUF_TYPE_ARRAY)
                h += touch_value(&a->elems[i]);
            else
                h += gguf_array_u64(a, i) + (uint64_t)gguf_array_f64(a, i);
        }
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy so any read past the end is caught */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    gguf_file *f = NULL;
    quarry_error err;
    if (gguf_open_memory(copy, size, "fuzz", &f, &err) == 0) {
        volatile uint64_t sink = 0;
        for (uint64_t i = 0; i < f->n_kv; i++) {
            sink += touch_value(&f->kvs[i].value);
            char key[80];
            uint64_t n = f->kvs[i].key.len < sizeof key - 1 ? f->kvs[i].key.len : sizeof key - 1;
            memcpy(key, f->kvs[i].key.data, n);
            key[n] = 0;
            sink += gguf_find_kv(f, key) != NULL;
        }
        for (uint64_t i = 0; i < f->n_tensors; i++) {
            const struct gguf_tensor *t = &f->tensors[i];
            const uint8_t *p = t->data;
            if (t->n_bytes)
                sink += p[0] + p[t->n_bytes - 1];
            char name[GGUF_MAX_NAME];
            memcpy(name, t->name.data, t->name.len);
            name[t->name.len] = 0;
            sink += gguf_find_tensor(f, name) == t;
        }
        (void)sink;
        gguf_close(f);
    }
    free(copy);
    return 0;
}
