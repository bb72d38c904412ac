/*
 * import.h - reading llama.cpp's llama-bench results (`llama-bench -o json`:
 * one array of objects; `-o jsonl`: one object per line) into quarry figures,
 * so both engines' pp/tg figures sit in one table and one notebook.
 *
 * Each llama-bench object becomes a "model" figure named as quarry's own
 * model figures are (quarry_model_figure_name): the model description
 * ("llama 1B Q4_K - Medium", the same words quarry's bench model prints),
 * the test ("pp512", "tg128", "pp512+tg128", with " @ dN" for a prefilled
 * depth) and the thread count. The statistics are avg_ts / stddev_ts /
 * samples_ts (tokens per second); n is the number of samples (llama-bench's
 * repetitions). Other llama-bench fields (build_commit, cpu_info, n_ubatch,
 * type_k, flash_attn...) are kept as labels or under "raw".
 */
#ifndef QUARRY_HARNESS_IMPORT_H
#define QUARRY_HARNESS_IMPORT_H

#include <stddef.h>

#include <cJSON.h>

#include "engine/error.h"

/* "MODEL TEST tTHREADS", the name of a model figure in either engine. */
void quarry_model_figure_name(char *buf, size_t size, const char *model_type, const char *test,
                              int threads);

/* llama-bench's test label from its fields: "pp512", "tg128", "pp512+tg128",
 * plus " @ d<depth>" when n_depth > 0. */
void quarry_llama_bench_test_name(char *buf, size_t size, int n_prompt, int n_gen, int n_depth);

/* Parses llama-bench JSON or JSONL text (text[len] must be '\0') and appends
 * one figure per result to `figures` and the original objects to `raw` (may
 * be NULL). *n_imported counts them. Returns 0, QUARRY_EFORMAT (not JSON, or
 * an object without the fields a result needs: model_type, n_prompt, n_gen,
 * n_threads, avg_ts) naming the line/entry, or QUARRY_ENOMEM. */
int quarry_import_llama_bench(const char *text, size_t len, cJSON *figures, cJSON *raw,
                              int *n_imported, quarry_error *err);

#endif
