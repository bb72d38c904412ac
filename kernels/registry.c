/*
 * registry.c - the one traits table (see kernels.h): ISA detection with
 * cpuid/xgetbv, the QUARRY_ISA override, and filling the table once.
 */
#include "kernels.h"

#include "kernels/blas.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

typedef void (*register_fn)(struct quarry_type_traits *table);

static const register_fn scalar_hooks[] = {
#define QUARRY_KERNEL(T, LEVEL) QUARRY_HOOK_##LEVEL(T)
#define QUARRY_HOOK_scalar(T) quarry_kernels_##T##_scalar,
#define QUARRY_HOOK_avx2(T)
#define QUARRY_HOOK_avx512(T)
#include "kernel_list.h"
#undef QUARRY_HOOK_scalar
#undef QUARRY_HOOK_avx2
#undef QUARRY_HOOK_avx512
    NULL};

static const register_fn avx2_hooks[] = {
#define QUARRY_HOOK_scalar(T)
#define QUARRY_HOOK_avx2(T) quarry_kernels_##T##_avx2,
#define QUARRY_HOOK_avx512(T)
#include "kernel_list.h"
#undef QUARRY_HOOK_scalar
#undef QUARRY_HOOK_avx2
#undef QUARRY_HOOK_avx512
    NULL};

static const register_fn avx512_hooks[] = {
#define QUARRY_HOOK_scalar(T)
#define QUARRY_HOOK_avx2(T)
#define QUARRY_HOOK_avx512(T) quarry_kernels_##T##_avx512,
#include "kernel_list.h"
#undef QUARRY_HOOK_scalar
#undef QUARRY_HOOK_avx2
#undef QUARRY_HOOK_avx512
#undef QUARRY_KERNEL
    NULL};

static const register_fn *const hooks_by_level[QUARRY_ISA_COUNT] = {
    scalar_hooks, avx2_hooks, avx512_hooks};

/* ---- ISA detection ---------------------------------------------------- */

static uint64_t read_xcr0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static enum quarry_isa detect_isa(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return QUARRY_ISA_SCALAR;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1,
              avx = (c >> 28) & 1;
    if (!osxsave || !avx)
        return QUARRY_ISA_SCALAR;
    const uint64_t xcr0 = read_xcr0();
    const int os_avx = (xcr0 & 0x6) == 0x6;            /* XMM and YMM state */
    const int os_avx512 = (xcr0 & 0xe6) == 0xe6;       /* plus opmask, ZMM */
    if (!os_avx || __get_cpuid_max(0, NULL) < 7)
        return QUARRY_ISA_SCALAR;
    unsigned b7, c7, d7, a7;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    const int avx2 = (b7 >> 5) & 1;
    if (!(avx2 && fma && f16c))
        return QUARRY_ISA_SCALAR;
    const int f = (b7 >> 16) & 1, dq = (b7 >> 17) & 1, bw = (b7 >> 30) & 1,
              vl = (b7 >> 31) & 1, vnni = (c7 >> 11) & 1;
    unsigned a71, b71, c71, d71;
    __cpuid_count(7, 1, a71, b71, c71, d71);
    const int bf16 = (a71 >> 5) & 1;
    (void)b71; (void)c71; (void)d71; (void)d7;
    if (os_avx512 && f && dq && bw && vl && vnni && bf16)
        return QUARRY_ISA_AVX512;
    return QUARRY_ISA_AVX2;
}

/* ---- the process table, set once -------------------------------------- */

static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static struct quarry_type_traits process_table[QUARRY_TYPE_COUNT];
static enum quarry_isa isa_detected_level;
static enum quarry_isa isa_chosen_level;
static const char *isa_warning_text;

static void fill_table(enum quarry_isa level, struct quarry_type_traits *table)
{
    memset(table, 0, sizeof(*table) * QUARRY_TYPE_COUNT);
    for (int t = 0; t < QUARRY_TYPE_COUNT; t++) {
        const struct quarry_type_info *info = quarry_type_info((uint32_t)t);
        if (!info)
            continue;
        table[t].name = info->name;
        table[t].block_size = info->block_size;
        table[t].type_size = info->type_size;
        table[t].vec_dot_type = (enum quarry_type)t;
    }
    for (int l = 0; l <= (int)level; l++) {
        struct quarry_type_traits before[QUARRY_TYPE_COUNT];
        memcpy(before, table, sizeof before);
        for (const register_fn *h = hooks_by_level[l]; *h; h++)
            (*h)(table);
        for (int t = 0; t < QUARRY_TYPE_COUNT; t++)
            if (memcmp(&before[t], &table[t], sizeof before[t]) != 0)
                table[t].isa = (enum quarry_isa)l;
    }
}

static void init_process_table(void)
{
    isa_detected_level = detect_isa();
    isa_chosen_level = isa_detected_level;
    const char *forced = getenv("QUARRY_ISA");
    if (forced && *forced) {
        int want = quarry_isa_from_name(forced);
        if (want < 0)
            isa_warning_text = "QUARRY_ISA is not one of scalar, avx2, avx512; using the detected level";
        else if (want > (int)isa_detected_level)
            isa_warning_text = "QUARRY_ISA asks for a level this CPU cannot run; using the detected level";
        else
            isa_chosen_level = (enum quarry_isa)want;
    }
    fill_table(isa_chosen_level, process_table);
    /* OpenBLAS is loaded here, at start-up, because loading it may set
     * environment variables (kernels/blas.c) */
    (void)quarry_blas();
}

const struct quarry_type_traits *quarry_traits(enum quarry_type type)
{
    pthread_once(&table_once, init_process_table);
    if ((unsigned)type >= QUARRY_TYPE_COUNT || process_table[type].name == NULL)
        return NULL;
    return &process_table[type];
}

int quarry_traits_build(enum quarry_isa isa, struct quarry_type_traits *table)
{
    pthread_once(&table_once, init_process_table);
    if ((unsigned)isa >= QUARRY_ISA_COUNT || isa > isa_detected_level)
        return QUARRY_EUNSUPPORTED;
    fill_table(isa, table);
    return 0;
}

enum quarry_isa quarry_isa_detected(void)
{
    pthread_once(&table_once, init_process_table);
    return isa_detected_level;
}

enum quarry_isa quarry_isa_chosen(void)
{
    pthread_once(&table_once, init_process_table);
    return isa_chosen_level;
}

const char *quarry_isa_warning(void)
{
    pthread_once(&table_once, init_process_table);
    return isa_warning_text;
}

const char *quarry_isa_name(enum quarry_isa isa)
{
    static const char *const names[QUARRY_ISA_COUNT] = {"scalar", "avx2", "avx512"};
    return (unsigned)isa < QUARRY_ISA_COUNT ? names[isa] : "unknown";
}

int quarry_isa_from_name(const char *name)
{
    for (int i = 0; i < QUARRY_ISA_COUNT; i++)
        if (strcmp(name, quarry_isa_name((enum quarry_isa)i)) == 0)
            return i;
    return -1;
}
