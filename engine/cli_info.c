/*
 * cli_info.c - `quarry info`: what is inside a GGUF file (metadata, tensor
 * table, totals), as text or JSON, and with --isa which CPU kernels quarry
 * detected and chose. Exit status 0 on a valid file, 1 with a one-line
 * reason on stderr otherwise, 2 on a usage error.
 */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "engine/gguf.h"
#include "kernels/blas.h"
#include "kernels/kernels.h"

#define ARRAY_PREVIEW 8    /* array items shown */
#define STRING_PREVIEW 120 /* characters of a long string shown in text output */

void quarry_help_info(void)
{
    printf("usage: quarry info FILE [--json]\n"
           "       quarry info --isa\n\n"
           "Prints a GGUF file's metadata (long arrays summarised: count and first %d items),\n"
           "its tensor table (name, type, shape, bytes, offset in the data section) and totals\n"
           "(parameters, bytes, bits per weight). The file is fully validated first.\n\n"
           "options:\n"
           "  --json   print the same as one JSON object\n"
           "  --isa    print the CPU features quarry detected, the kernel level it chose\n"
           "           (QUARRY_ISA=scalar|avx2|avx512 forces a lower one) and which level\n"
           "           supplies each type's kernels\n\n"
           "exit status: 0 valid file, 1 invalid or unreadable (reason on stderr), 2 usage\n",
           ARRAY_PREVIEW);
}

/* ---- text output ---------------------------------------------------------- */

static void print_escaped(FILE *out, const char *s, uint64_t len, uint64_t max)
{
    fputc('"', out);
    for (uint64_t i = 0; i < len && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch == '\t')
            fputs("\\t", out);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
    if (len > max)
        fprintf(out, "... (%" PRIu64 " bytes)", len);
}

static void print_scalar(FILE *out, const struct gguf_value *v)
{
    switch (v->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64:
        fprintf(out, "%" PRIu64, v->v.u64);
        break;
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        fprintf(out, "%" PRId64, v->v.i64);
        break;
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64:
        fprintf(out, "%.9g", v->v.f64);
        break;
    case GGUF_TYPE_BOOL:
        fputs(v->v.b ? "true" : "false", out);
        break;
    default:
        break;
    }
}

static void print_value(FILE *out, const struct gguf_value *v)
{
    if (v->type == GGUF_TYPE_STRING) {
        print_escaped(out, v->v.str.data, v->v.str.len, STRING_PREVIEW);
        return;
    }
    if (v->type != GGUF_TYPE_ARRAY) {
        print_scalar(out, v);
        return;
    }
    const struct gguf_array *a = &v->v.arr;
    fputc('[', out);
    for (uint64_t i = 0; i < a->count && i < ARRAY_PREVIEW; i++) {
        if (i)
            fputs(", ", out);
        if (a->elem_type == GGUF_TYPE_STRING) {
            print_escaped(out, a->strs[i].data, a->strs[i].len, 40);
        } else if (a->elem_type == GGUF_TYPE_ARRAY) {
            print_value(out, &a->elems[i]);
        } else {
            struct gguf_value e = {.type = a->elem_type};
            if (a->elem_type == GGUF_TYPE_FLOAT32 || a->elem_type == GGUF_TYPE_FLOAT64)
                e.v.f64 = gguf_array_f64(a, i);
            else if (a->elem_type == GGUF_TYPE_BOOL)
                e.v.b = gguf_array_u64(a, i) != 0;
            else if (a->elem_type == GGUF_TYPE_INT8 || a->elem_type == GGUF_TYPE_INT16 ||
                     a->elem_type == GGUF_TYPE_INT32 || a->elem_type == GGUF_TYPE_INT64)
                e.v.i64 = gguf_array_i64(a, i);
            else
                e.v.u64 = gguf_array_u64(a, i);
            print_scalar(out, &e);
        }
    }
    if (a->count > ARRAY_PREVIEW)
        fprintf(out, ", ... (%" PRIu64 " items)", a->count);
    fputc(']', out);
}

static void format_shape(const struct gguf_tensor *t, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (uint32_t d = 0; d < t->n_dims && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? " x %" PRIu64 : "%" PRIu64,
                                 t->ne[d]);
}

static void type_label(const struct gguf_value *v, char *buf, size_t size)
{
    if (v->type == GGUF_TYPE_ARRAY)
        snprintf(buf, size, "arr[%s,%" PRIu64 "]", gguf_type_name(v->v.arr.elem_type),
                 v->v.arr.count);
    else
        snprintf(buf, size, "%s", gguf_type_name(v->type));
}

static void print_text(const gguf_file *f)
{
    uint64_t params = 0, bytes = 0;
    printf("file: %s\n", f->path);
    printf("GGUF version %" PRIu32 ", %" PRIu64 " bytes, alignment %" PRIu32
           ", data section at byte %" PRIu64 "\n\n",
           f->version, f->size, f->alignment, f->data_offset);
    printf("metadata (%" PRIu64 " keys):\n", f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kvs[i];
        char label[64];
        type_label(&kv->value, label, sizeof label);
        printf("  %-44.*s %-16s = ", (int)kv->key.len, kv->key.data, label);
        print_value(stdout, &kv->value);
        putchar('\n');
    }
    printf("\ntensors (%" PRIu64 "):\n", f->n_tensors);
    printf("  %-4s %-36s %-6s %-24s %14s %14s\n", "#", "name", "type", "shape", "bytes", "offset");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        char shape[96];
        format_shape(t, shape, sizeof shape);
        printf("  %-4" PRIu64 " %-36.*s %-6s %-24s %14" PRIu64 " %14" PRIu64 "\n", i,
               (int)t->name.len, t->name.data, quarry_type_info(t->type)->name, shape, t->n_bytes,
               t->offset);
        params += t->n_elements;
        bytes += t->n_bytes;
    }
    printf("\ntotals: %" PRIu64 " parameters (%.3f M), %" PRIu64 " bytes of tensor data "
           "(%.2f MiB), %.4f bits per weight\n",
           params, (double)params / 1e6, bytes, (double)bytes / (1024.0 * 1024.0),
           params ? 8.0 * (double)bytes / (double)params : 0.0);
}

/* ---- JSON output ------------------------------------------------------------ */

static cJSON *json_u64(uint64_t v)
{
    /* cJSON numbers are doubles: exact up to 2^53, beyond that give a string */
    if (v > (UINT64_C(1) << 53)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return cJSON_CreateString(buf);
    }
    return cJSON_CreateNumber((double)v);
}

static cJSON *json_str(struct gguf_str s)
{
    char *tmp = malloc(s.len + 1);
    if (!tmp)
        return NULL;
    memcpy(tmp, s.data, s.len);
    tmp[s.len] = 0;
    /* an embedded NUL ends the C string: cJSON then holds the prefix */
    cJSON *j = cJSON_CreateString(tmp);
    free(tmp);
    return j;
}

static cJSON *json_value(const struct gguf_value *v)
{
    switch (v->type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64:
        return json_u64(v->v.u64);
    case GGUF_TYPE_INT8: case GGUF_TYPE_INT16: case GGUF_TYPE_INT32: case GGUF_TYPE_INT64:
        return cJSON_CreateNumber((double)v->v.i64);
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64:
        return cJSON_CreateNumber(v->v.f64);
    case GGUF_TYPE_BOOL:
        return cJSON_CreateBool(v->v.b);
    case GGUF_TYPE_STRING:
        return json_str(v->v.str);
    case GGUF_TYPE_ARRAY: {
        const struct gguf_array *a = &v->v.arr;
        cJSON *o = cJSON_CreateObject();
        cJSON *items = cJSON_CreateArray();
        if (!o || !items) {
            cJSON_Delete(o);
            cJSON_Delete(items);
            return NULL;
        }
        cJSON_AddStringToObject(o, "elem_type", gguf_type_name(a->elem_type));
        cJSON_AddItemToObject(o, "count", json_u64(a->count));
        for (uint64_t i = 0; i < a->count && i < ARRAY_PREVIEW; i++) {
            cJSON *e;
            if (a->elem_type == GGUF_TYPE_STRING)
                e = json_str(a->strs[i]);
            else if (a->elem_type == GGUF_TYPE_ARRAY)
                e = json_value(&a->elems[i]);
            else if (a->elem_type == GGUF_TYPE_FLOAT32 || a->elem_type == GGUF_TYPE_FLOAT64)
                e = cJSON_CreateNumber(gguf_array_f64(a, i));
            else if (a->elem_type == GGUF_TYPE_BOOL)
                e = cJSON_CreateBool(gguf_array_u64(a, i) != 0);
            else if (a->elem_type == GGUF_TYPE_UINT64)
                e = json_u64(gguf_array_u64(a, i));
            else
                e = cJSON_CreateNumber((double)gguf_array_i64(a, i));
            if (e)
                cJSON_AddItemToArray(items, e);
        }
        cJSON_AddItemToObject(o, "first", items);
        cJSON_AddBoolToObject(o, "truncated", a->count > ARRAY_PREVIEW);
        return o;
    }
    default:
        return cJSON_CreateNull();
    }
}

static int print_json(const gguf_file *f)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_CreateArray();
    cJSON *tensors = cJSON_CreateArray();
    if (!root || !meta || !tensors) {
        cJSON_Delete(root);
        cJSON_Delete(meta);
        cJSON_Delete(tensors);
        return -1;
    }
    cJSON_AddStringToObject(root, "file", f->path);
    cJSON_AddNumberToObject(root, "version", f->version);
    cJSON_AddItemToObject(root, "file_bytes", json_u64(f->size));
    cJSON_AddNumberToObject(root, "alignment", f->alignment);
    cJSON_AddItemToObject(root, "data_offset", json_u64(f->data_offset));
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kvs[i];
        cJSON *item = cJSON_CreateObject();
        if (!item)
            continue;
        cJSON_AddItemToObject(item, "key", json_str(kv->key));
        cJSON_AddStringToObject(item, "type", gguf_type_name(kv->value.type));
        cJSON_AddItemToObject(item, "value", json_value(&kv->value));
        cJSON_AddItemToArray(meta, item);
    }
    cJSON_AddItemToObject(root, "metadata", meta);
    uint64_t params = 0, bytes = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        cJSON *item = cJSON_CreateObject();
        cJSON *shape = cJSON_CreateArray();
        if (!item || !shape) {
            cJSON_Delete(item);
            cJSON_Delete(shape);
            continue;
        }
        cJSON_AddItemToObject(item, "name", json_str(t->name));
        cJSON_AddStringToObject(item, "type", quarry_type_info(t->type)->name);
        for (uint32_t d = 0; d < t->n_dims; d++)
            cJSON_AddItemToArray(shape, json_u64(t->ne[d]));
        cJSON_AddItemToObject(item, "shape", shape);
        cJSON_AddItemToObject(item, "n_elements", json_u64(t->n_elements));
        cJSON_AddItemToObject(item, "bytes", json_u64(t->n_bytes));
        cJSON_AddItemToObject(item, "offset", json_u64(t->offset));
        cJSON_AddItemToArray(tensors, item);
        params += t->n_elements;
        bytes += t->n_bytes;
    }
    cJSON_AddItemToObject(root, "tensors", tensors);
    cJSON *totals = cJSON_AddObjectToObject(root, "totals");
    if (totals) {
        cJSON_AddItemToObject(totals, "parameters", json_u64(params));
        cJSON_AddItemToObject(totals, "bytes", json_u64(bytes));
        cJSON_AddNumberToObject(totals, "bits_per_weight",
                                params ? 8.0 * (double)bytes / (double)params : 0.0);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    puts(text);
    free(text);
    return 0;
}

/* ---- --isa ----------------------------------------------------------------- */

static int print_isa(void)
{
    const enum quarry_isa detected = quarry_isa_detected(), chosen = quarry_isa_chosen();
    printf("detected: %s\nchosen:   %s\n", quarry_isa_name(detected), quarry_isa_name(chosen));
    printf("blas:     %s\n", quarry_blas_status());
    const char *warning = quarry_isa_warning();
    if (warning)
        printf("note:     %s\n", warning);
    printf("\n  %-6s %-10s %-10s %-10s %s\n", "type", "to_float", "vec_dot", "from_float",
           "vec_dot_type");
    for (int t = 0; t < QUARRY_TYPE_COUNT; t++) {
        const struct quarry_type_traits *tr = quarry_traits((enum quarry_type)t);
        if (!tr)
            continue;
        const struct quarry_type_traits *vt = quarry_traits(tr->vec_dot_type);
        printf("  %-6s %-10s %-10s %-10s %s\n", tr->name, tr->to_float ? "yes" : "-",
               tr->vec_dot ? "yes" : "-", tr->from_float ? "yes" : "-",
               vt && tr->vec_dot ? vt->name : "-");
    }
    printf("\nkernels of each type come from the highest level that provides them, up to '%s'\n",
           quarry_isa_name(chosen));
    return 0;
}

int quarry_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, isa = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--isa") == 0)
            isa = 1;
        else if (argv[i][0] == '-' && argv[i][1] != 0) {
            fprintf(stderr, "quarry info: unknown option '%s' (see quarry info --help)\n",
                    argv[i]);
            return 2;
        } else if (!path)
            path = argv[i];
        else {
            fprintf(stderr, "quarry info: more than one file given\n");
            return 2;
        }
    }
    if (isa && !path)
        return print_isa();
    if (!path) {
        fprintf(stderr, "quarry info: no file given (usage: quarry info FILE [--json])\n");
        return 2;
    }
    gguf_file *f;
    quarry_error err = {0};
    if (gguf_open(path, &f, &err) != 0) {
        fprintf(stderr, "quarry info: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (isa)
        print_isa(), putchar('\n');
    if (json)
        rc = print_json(f);
    else
        print_text(f);
    gguf_close(f);
    if (rc) {
        fprintf(stderr, "quarry info: out of memory\n");
        return 1;
    }
    return 0;
}
