/*
 * types.h - every tensor type quarry supports, with the exact block layouts
 * of GGUF files written by llama.cpp / ggml.
 *
 * The numeric values of enum quarry_type are the GGUF type ids, so a type read
 * from a file is used as it is. Each block struct has its byte size checked at
 * compile time; the comment gives its bits per weight. Half-precision fields
 * are stored as raw uint16_t bits (IEEE binary16); convert with kernels/fp16.h.
 *
 * Static facts about a type (name, block size, bytes per block) live in
 * quarry_type_info() (types.c) and never change; the kernels for a type live
 * in the traits table (kernels.h, registry.c), filled once at start-up.
 */
#ifndef QUARRY_TYPES_H
#define QUARRY_TYPES_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

enum quarry_type {
    QUARRY_TYPE_F32 = 0,
    QUARRY_TYPE_F16 = 1,
    QUARRY_TYPE_Q4_0 = 2,
    QUARRY_TYPE_Q4_1 = 3,
    /* 4 and 5 were Q4_2 / Q4_3, removed from ggml */
    QUARRY_TYPE_Q5_0 = 6,
    QUARRY_TYPE_Q5_1 = 7,
    QUARRY_TYPE_Q8_0 = 8,
    QUARRY_TYPE_Q8_1 = 9,
    QUARRY_TYPE_Q2_K = 10,
    QUARRY_TYPE_Q3_K = 11,
    QUARRY_TYPE_Q4_K = 12,
    QUARRY_TYPE_Q5_K = 13,
    QUARRY_TYPE_Q6_K = 14,
    QUARRY_TYPE_Q8_K = 15,
    QUARRY_TYPE_BF16 = 30,
    QUARRY_TYPE_COUNT = 31 /* one past the largest id; not every id below is supported */
};

/* Static description of one type. */
struct quarry_type_info {
    const char *name;   /* ggml's name: "f32", "q4_0", "q4_K", ... */
    int block_size;     /* weights per block */
    size_t type_size;   /* bytes per block */
};

/* Info for a supported type, or NULL for an id quarry does not support. */
const struct quarry_type_info *quarry_type_info(uint32_t type);
/* Type id for a name (case-insensitive, "Q4_K" == "q4_k"); -1 when unknown. */
int quarry_type_from_name(const char *name);
/* Bytes for a row of n weights; 0 if n is not a multiple of the block size. */
size_t quarry_row_size(enum quarry_type type, int64_t n);

/* ---- legacy 32-weight blocks ------------------------------------------ */
#define QK4_0 32
typedef struct {
    uint16_t d;             /* scale */
    uint8_t qs[QK4_0 / 2];  /* nibbles: low = weights 0..15, high = 16..31 */
} block_q4_0;               /* 4.5 bits per weight */
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

#define QK4_1 32
typedef struct {
    uint16_t d;             /* scale */
    uint16_t m;             /* minimum */
    uint8_t qs[QK4_1 / 2];
} block_q4_1;               /* 5.0 bits per weight */
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");

#define QK5_0 32
typedef struct {
    uint16_t d;
    uint8_t qh[4];          /* 5th bit of each weight, little-endian u32 */
    uint8_t qs[QK5_0 / 2];
} block_q5_0;               /* 5.5 bits per weight */
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");

#define QK5_1 32
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;               /* 6.0 bits per weight */
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");

#define QK8_0 32
typedef struct {
    uint16_t d;
    int8_t qs[QK8_0];
} block_q8_0;               /* 8.5 bits per weight */
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");

#define QK8_1 32
typedef struct {
    uint16_t d;             /* scale */
    uint16_t s;             /* d * sum(qs) */
    int8_t qs[QK8_1];
} block_q8_1;               /* 9.0 bits per weight */
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

/* ---- K-quants: 256-weight super-blocks ---------------------------------- */
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct {
    uint8_t scales[QK_K / 16]; /* 4-bit scale (low) and min (high) per 16 weights */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    uint16_t d;                /* super-block scale for scales */
    uint16_t dmin;             /* super-block scale for mins */
} block_q2_K;                  /* 2.625 bits per weight */
static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");

typedef struct {
    uint8_t hmask[QK_K / 8];   /* high bit of each quant */
    uint8_t qs[QK_K / 4];      /* low 2 bits */
    uint8_t scales[12];        /* 16 scales, 6 bits each */
    uint16_t d;                /* super-block scale */
} block_q3_K;                  /* 3.4375 bits per weight */
static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");

typedef struct {
    uint16_t d;                /* super-block scale for scales */
    uint16_t dmin;             /* super-block scale for mins */
    uint8_t scales[K_SCALE_SIZE]; /* 8 scales + 8 mins, 6 bits each */
    uint8_t qs[QK_K / 2];      /* 4-bit quants */
} block_q4_K;                  /* 4.5 bits per weight */
static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");

typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];      /* 5th bit */
    uint8_t qs[QK_K / 2];      /* low 4 bits */
} block_q5_K;                  /* 5.5 bits per weight */
static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");

typedef struct {
    uint8_t ql[QK_K / 2];      /* low 4 bits */
    uint8_t qh[QK_K / 4];      /* high 2 bits */
    int8_t scales[QK_K / 16];  /* 8-bit scale per 16 weights */
    uint16_t d;                /* super-block scale */
} block_q6_K;                  /* 6.5625 bits per weight */
static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");

typedef struct {
    float d;                   /* scale (fp32) */
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];  /* sum of each 16 quants */
} block_q8_K;                  /* 9.125 bits per weight; activations only */
static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

#endif
