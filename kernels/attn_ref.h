/*
 * attn_ref.h - the plain reference for attention, kept for tests: every
 * key and value is converted to float, each query's full score row is built
 * and soft-maxed in double, and the output is summed in double. Slow and
 * memory-hungry by design (it materialises all scores); the fast path is
 * kernels/flash_attn.h, which takes the same struct quarry_attn.
 */
#ifndef QUARRY_ATTN_REF_H
#define QUARRY_ATTN_REF_H

#include "engine/error.h"
#include "kernels/flash_attn.h"

/* Computes a->out. 0, or an error from quarry_attn_check / QUARRY_ENOMEM. */
int quarry_attn_ref(const struct quarry_attn *a, quarry_error *err);

#endif
