/*
 * kernel_list.h - every kernel file's registration hook, as an X-macro list:
 * QUARRY_KERNEL(type, level) names quarry_kernels_<type>_<level>() defined in
 * kernels/<type>.c (scalar), kernels/<type>_avx2.c or kernels/<type>_avx512.c.
 * registry.c calls the scalar hooks first, then each level up to the chosen one.
 */

/* ---- float types and legacy 32-weight blocks: scalar ---- */
QUARRY_KERNEL(f32, scalar)
QUARRY_KERNEL(f16, scalar)
QUARRY_KERNEL(bf16, scalar)
QUARRY_KERNEL(q4_0, scalar)
QUARRY_KERNEL(q4_1, scalar)
QUARRY_KERNEL(q5_0, scalar)
QUARRY_KERNEL(q5_1, scalar)
QUARRY_KERNEL(q8_0, scalar)
QUARRY_KERNEL(q8_1, scalar)

/* ---- float types and legacy 32-weight blocks: AVX2 / AVX-512 ---- */
QUARRY_KERNEL(f32, avx2)
QUARRY_KERNEL(f32, avx512)
QUARRY_KERNEL(f16, avx2)
QUARRY_KERNEL(f16, avx512)
QUARRY_KERNEL(bf16, avx2)
QUARRY_KERNEL(bf16, avx512)
QUARRY_KERNEL(q4_0, avx2)
QUARRY_KERNEL(q4_0, avx512)
QUARRY_KERNEL(q4_1, avx2)
QUARRY_KERNEL(q4_1, avx512)
QUARRY_KERNEL(q5_0, avx2)
QUARRY_KERNEL(q5_0, avx512)
QUARRY_KERNEL(q5_1, avx2)
QUARRY_KERNEL(q5_1, avx512)
QUARRY_KERNEL(q8_0, avx2)
QUARRY_KERNEL(q8_0, avx512)
QUARRY_KERNEL(q8_1, avx2)
QUARRY_KERNEL(q8_1, avx512)

/* ---- K-quants: scalar ---- */
QUARRY_KERNEL(q2_K, scalar)
QUARRY_KERNEL(q3_K, scalar)
QUARRY_KERNEL(q4_K, scalar)
QUARRY_KERNEL(q5_K, scalar)
QUARRY_KERNEL(q6_K, scalar)
QUARRY_KERNEL(q8_K, scalar)

/* ---- K-quants: AVX2 / AVX-512 ---- */
QUARRY_KERNEL(q2_K, avx2)
QUARRY_KERNEL(q2_K, avx512)
QUARRY_KERNEL(q3_K, avx2)
QUARRY_KERNEL(q3_K, avx512)
QUARRY_KERNEL(q4_K, avx2)
QUARRY_KERNEL(q4_K, avx512)
QUARRY_KERNEL(q5_K, avx2)
QUARRY_KERNEL(q5_K, avx512)
QUARRY_KERNEL(q6_K, avx2)
QUARRY_KERNEL(q6_K, avx512)
QUARRY_KERNEL(q8_K, avx2)
QUARRY_KERNEL(q8_K, avx512)
