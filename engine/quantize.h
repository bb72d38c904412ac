/*
 * quantize.h - converting a model's weights to another tensor type, with
 * llama.cpp's per-tensor type rules ("mixtures" such as Q4_K_M), and the
 * machinery `quarry quantize` and `quarry synth` share: the tensor plan, the
 * parallel row converter and a spool file that holds the converted tensors
 * until the GGUF writer copies them out.
 *
 * A file type (llama.cpp's LLAMA_FTYPE, stored as general.file_type) names
 * a base tensor type; the mixture rules (quantize.c documents each one) give
 * some tensors more bits - output.weight, attn_v and ffn_down in certain
 * layers - and 1-D tensors (norms) and other non-matrix tensors keep their
 * type. Tensors are planned and written in llama.cpp's order (tensors outside
 * the blocks first, then block by block, by name within each), the order the
 * layer-counting rules depend on. Conversion uses each type's reference
 * quantizer (traits from_float_ref), so a tensor quarry quantizes holds the
 * same bytes as llama.cpp's (llama-quantize without an importance matrix).
 *
 * Memory: the input is mapped, rows are converted a chunk at a time, and the
 * results go to an unlinked temporary file next to the output which is
 * mapped read-only for the writer, so neither the input nor the output has to
 * fit in RAM.
 */
#ifndef QUARRY_QUANTIZE_H
#define QUARRY_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/threadpool.h"
#include "kernels/types.h"

/* llama.cpp's LLAMA_FTYPE values quarry can produce (general.file_type). */
enum quarry_ftype {
    QUARRY_FTYPE_ALL_F32 = 0,
    QUARRY_FTYPE_MOSTLY_F16 = 1,
    QUARRY_FTYPE_MOSTLY_Q4_0 = 2,
    QUARRY_FTYPE_MOSTLY_Q4_1 = 3,
    QUARRY_FTYPE_MOSTLY_Q8_0 = 7,
    QUARRY_FTYPE_MOSTLY_Q5_0 = 8,
    QUARRY_FTYPE_MOSTLY_Q5_1 = 9,
    QUARRY_FTYPE_MOSTLY_Q2_K = 10,
    QUARRY_FTYPE_MOSTLY_Q3_K_S = 11,
    QUARRY_FTYPE_MOSTLY_Q3_K_M = 12,
    QUARRY_FTYPE_MOSTLY_Q3_K_L = 13,
    QUARRY_FTYPE_MOSTLY_Q4_K_S = 14,
    QUARRY_FTYPE_MOSTLY_Q4_K_M = 15,
    QUARRY_FTYPE_MOSTLY_Q5_K_S = 16,
    QUARRY_FTYPE_MOSTLY_Q5_K_M = 17,
    QUARRY_FTYPE_MOSTLY_Q6_K = 18,
    QUARRY_FTYPE_MOSTLY_BF16 = 32,
};

/* The ftype for a name as llama-quantize spells it ("Q4_K_M", "q8_0", "F16",
 * "BF16", "F32"; "Q4_K" = Q4_K_M, "Q5_K" = Q5_K_M, "Q3_K" = Q3_K_M as in
 * llama-quantize), or -1. */
int quarry_ftype_from_name(const char *name);
/* "Q4_K_M" etc.; NULL for an ftype quarry does not produce. */
const char *quarry_ftype_name(int ftype);
/* The base tensor type of an ftype (-1 if unknown). */
int quarry_ftype_base_type(int ftype);
/* Writes the accepted names, comma separated, into buf (for usage messages). */
void quarry_ftype_list(char *buf, size_t size);

/* What the mixture rules need to know about the model. */
struct quarry_mix_model {
    char arch[64];          /* general.architecture ("llama") */
    uint32_t n_layer;       /* <arch>.block_count */
    uint32_t n_head;        /* <arch>.attention.head_count */
    uint32_t n_head_kv;     /* <arch>.attention.head_count_kv (default n_head) */
    uint32_t n_expert;      /* <arch>.expert_count (default 0) */
};

/* Reads those keys from a model file; QUARRY_EFORMAT if the architecture or
 * block count is missing. */
int quarry_mix_model_from_gguf(const gguf_file *f, struct quarry_mix_model *m, quarry_error *err);

/* One tensor of the output file. */
struct quarry_plan_tensor {
    const char *name;           /* not copied: must outlive the plan */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    enum quarry_type src_type;  /* type of the data that will be converted */
    size_t src_index;           /* the caller's index for this tensor */
    enum quarry_type dst_type;  /* chosen by quarry_quant_plan */
    enum quarry_type wanted;    /* the rules' choice before a row-length fallback */
    bool fallback;              /* dst_type != wanted because of the row length */
};

/* Sorts t[0..n) into llama.cpp's tensor order and chooses each tensor's type
 * for ftype. QUARRY_EINVAL for an unknown ftype or a tensor whose row length
 * no type can take. */
int quarry_quant_plan(const struct quarry_mix_model *m, int ftype, struct quarry_plan_tensor *t,
                      size_t n, quarry_error *err);

/* Converts n_rows rows of n_per_row values from src (src_type: any type with
 * a to_float) to dst (dst_type, its reference quantizer), split across the
 * pool's threads (pool may be NULL). n_per_row must suit both types. */
int quarry_convert_rows(enum quarry_type src_type, const void *src, enum quarry_type dst_type,
                        void *dst, int64_t n_rows, int64_t n_per_row, quarry_threadpool *pool,
                        quarry_error *err);

/* ---- the spool: converted tensors on disk until the writer copies them ---- */

typedef struct quarry_spool quarry_spool;

/* Creates an unlinked temporary file in the directory of near_path. */
int quarry_spool_open(const char *near_path, quarry_spool **out, quarry_error *err);
/* Appends n bytes; *offset receives where they start (aligned to 64). */
int quarry_spool_append(quarry_spool *s, const void *data, size_t n, uint64_t *offset,
                        quarry_error *err);
/* Maps everything appended so far read-only; *base stays valid until
 * quarry_spool_close(). No appends after this. */
int quarry_spool_map(quarry_spool *s, const uint8_t **base, quarry_error *err);
uint64_t quarry_spool_size(const quarry_spool *s);
void quarry_spool_close(quarry_spool *s);

/* Produces rows [row0, row0 + n_rows) of tensor t as floats into dst
 * (n_rows * ne[0] values). Called from several threads at once for disjoint
 * rows. Returns 0 or an error code (with err filled). */
typedef int (*quarry_row_source_fn)(void *user, const struct quarry_plan_tensor *t, int64_t row0,
                                    int64_t n_rows, float *dst, quarry_error *err);

/* Converts every row of t (from the source, as floats) to t->dst_type and
 * appends them to the spool, a chunk at a time; *offset: where it starts. */
int quarry_spool_tensor(quarry_spool *s, const struct quarry_plan_tensor *t,
                        quarry_row_source_fn source, void *user, quarry_threadpool *pool,
                        uint64_t *offset, quarry_error *err);

/* ---- whole files ---------------------------------------------------------- */

struct quarry_quant_progress {
    size_t index, count;                  /* this is tensor index+1 of count */
    const struct quarry_plan_tensor *tensor;
    bool copied;                          /* written unchanged */
};

typedef void (*quarry_quant_progress_fn)(void *user, const struct quarry_quant_progress *p);

struct quarry_quantize_params {
    int ftype;                            /* enum quarry_ftype */
    int n_threads;                        /* <= 0: one per physical core */
    quarry_quant_progress_fn progress;    /* may be NULL; called before each tensor */
    void *user;
};

/* Reads a GGUF model with F32/F16/BF16 tensors (already-quantized tensors
 * are copied if their type is kept, else refused) and writes it to out_path
 * converted to params->ftype: metadata copied, general.quantization_version
 * = 2 and general.file_type = ftype set (last, as llama.cpp does). */
int quarry_quantize_file(const char *in_path, const char *out_path,
                         const struct quarry_quantize_params *params, quarry_error *err);

#endif
