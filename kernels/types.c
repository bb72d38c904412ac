/*
 * types.c - the static type table: name, block size and bytes per block for
 * every GGUF tensor type quarry supports, indexed by GGUF type id.
 */
#include "types.h"

#include <strings.h>

static const struct quarry_type_info type_table[QUARRY_TYPE_COUNT] = {
    [QUARRY_TYPE_F32] = {"f32", 1, 4},
    [QUARRY_TYPE_F16] = {"f16", 1, 2},
    [QUARRY_TYPE_BF16] = {"bf16", 1, 2},
    [QUARRY_TYPE_Q4_0] = {"q4_0", QK4_0, sizeof(block_q4_0)},
    [QUARRY_TYPE_Q4_1] = {"q4_1", QK4_1, sizeof(block_q4_1)},
    [QUARRY_TYPE_Q5_0] = {"q5_0", QK5_0, sizeof(block_q5_0)},
    [QUARRY_TYPE_Q5_1] = {"q5_1", QK5_1, sizeof(block_q5_1)},
    [QUARRY_TYPE_Q8_0] = {"q8_0", QK8_0, sizeof(block_q8_0)},
    [QUARRY_TYPE_Q8_1] = {"q8_1", QK8_1, sizeof(block_q8_1)},
    [QUARRY_TYPE_Q2_K] = {"q2_K", QK_K, sizeof(block_q2_K)},
    [QUARRY_TYPE_Q3_K] = {"q3_K", QK_K, sizeof(block_q3_K)},
    [QUARRY_TYPE_Q4_K] = {"q4_K", QK_K, sizeof(block_q4_K)},
    [QUARRY_TYPE_Q5_K] = {"q5_K", QK_K, sizeof(block_q5_K)},
    [QUARRY_TYPE_Q6_K] = {"q6_K", QK_K, sizeof(block_q6_K)},
    [QUARRY_TYPE_Q8_K] = {"q8_K", QK_K, sizeof(block_q8_K)},
};

const struct quarry_type_info *quarry_type_info(uint32_t type)
{
    if (type >= QUARRY_TYPE_COUNT || type_table[type].name == NULL)
        return NULL;
    return &type_table[type];
}

int quarry_type_from_name(const char *name)
{
    for (int t = 0; t < QUARRY_TYPE_COUNT; t++)
        if (type_table[t].name && strcasecmp(type_table[t].name, name) == 0)
            return t;
    return -1;
}

size_t quarry_row_size(enum quarry_type type, int64_t n)
{
    const struct quarry_type_info *info = quarry_type_info((uint32_t)type);
    if (!info || n < 0 || n % info->block_size != 0)
        return 0;
    return (size_t)(n / info->block_size) * info->type_size;
}
