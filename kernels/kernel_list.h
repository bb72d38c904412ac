/*
 * kernel_list.h - every kernel file's registration hook, as an X-macro list:
 * QUARRY_KERNEL(type, level) names quarry_kernels_<type>_<level>() defined in
 * kernels/<type>.c (scalar), kernels/<type>_avx2.c or kernels/<type>_avx512.c.
 * registry.c calls the scalar hooks first, then each level up to the chosen one.
 */

/* ---- float types and legacy 32-weight blocks: scalar ---- */

/* ---- float types and legacy 32-weight blocks: AVX2 / AVX-512 ---- */

/* ---- K-quants: scalar ---- */

/* ---- K-quants: AVX2 / AVX-512 ---- */
