/*
 * import.c - llama-bench JSON / JSONL results as quarry figures (see import.h).
 */
#include "harness/import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/figures.h"
#include "harness/json_file.h"

#define MAX_SAMPLES 1024

void quarry_model_figure_name(char *buf, size_t size, const char *model_type, const char *test,
                              int threads)
{
    snprintf(buf, size, "%s %s t%d", model_type, test, threads);
}

void quarry_llama_bench_test_name(char *buf, size_t size, int n_prompt, int n_gen, int n_depth)
{
    int used;
    if (n_prompt > 0 && n_gen > 0)
        used = snprintf(buf, size, "pp%d+tg%d", n_prompt, n_gen);
    else if (n_gen > 0)
        used = snprintf(buf, size, "tg%d", n_gen);
    else
        used = snprintf(buf, size, "pp%d", n_prompt);
    if (n_depth > 0 && used > 0 && (size_t)used < size)
        snprintf(buf + used, size - (size_t)used, " @ d%d", n_depth);
}

static const cJSON *field(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int number_field(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = field(o, key);
    if (!cJSON_IsNumber(v))
        return -1;
    *out = v->valuedouble;
    return 0;
}

/* One llama-bench result object -> one figure appended to figures. */
static int import_one(const cJSON *o, cJSON *figures, cJSON *raw, const char *where,
                      quarry_error *err)
{
    const cJSON *model_type = field(o, "model_type");
    double n_prompt, n_gen, n_threads, avg_ts, stddev_ts = 0, n_depth = 0;
    if (!cJSON_IsObject(o) || !cJSON_IsString(model_type) ||
        number_field(o, "n_prompt", &n_prompt) || number_field(o, "n_gen", &n_gen) ||
        number_field(o, "n_threads", &n_threads) || number_field(o, "avg_ts", &avg_ts))
        return quarry_errorf(err, QUARRY_EFORMAT,
                             "import: %s is not a llama-bench result (needs model_type, "
                             "n_prompt, n_gen, n_threads, avg_ts)",
                             where);
    number_field(o, "stddev_ts", &stddev_ts);
    number_field(o, "n_depth", &n_depth);

    double samples[MAX_SAMPLES];
    int n_samples = 0;
    const cJSON *st = field(o, "samples_ts");
    const cJSON *s;
    cJSON_ArrayForEach(s, st)
    {
        if (cJSON_IsNumber(s) && n_samples < MAX_SAMPLES)
            samples[n_samples++] = s->valuedouble;
    }

    char test[64], name[256];
    quarry_llama_bench_test_name(test, sizeof test, (int)n_prompt, (int)n_gen, (int)n_depth);
    quarry_model_figure_name(name, sizeof name, model_type->valuestring, test, (int)n_threads);
    struct quarry_figure f = {.group = "model", .name = name, .engine = "llama.cpp",
                              .unit = "tokens/s", .higher_is_better = 1,
                              .fraction_of_membw = -1};
    if (n_samples > 0) {
        quarry_stats_compute(samples, n_samples, &f.stats);
        f.samples = samples;
        f.n_samples = n_samples;
    } else {
        f.stats.n = 1; /* older llama-bench: only the aggregate */
        f.stats.min = f.stats.max = avg_ts;
    }
    /* llama-bench's own aggregates are the figures of record */
    f.stats.mean = avg_ts;
    f.stats.stddev = stddev_ts;
    quarry_figure_label_str(&f, "model", model_type->valuestring);
    quarry_figure_label_str(&f, "test", test);
    quarry_figure_label_num(&f, "threads", n_threads);
    quarry_figure_label_num(&f, "n_prompt", n_prompt);
    quarry_figure_label_num(&f, "n_gen", n_gen);
    static const char *const text_labels[] = {"build_commit", "cpu_info", "type_k", "backends",
                                              "model_filename"};
    for (size_t i = 0; i < sizeof text_labels / sizeof text_labels[0]; i++) {
        const cJSON *v = field(o, text_labels[i]);
        if (cJSON_IsString(v))
            quarry_figure_label_str(&f, text_labels[i], v->valuestring);
    }
    double v;
    if (number_field(o, "n_ubatch", &v) == 0)
        quarry_figure_label_num(&f, "n_ubatch", v);
    if (number_field(o, "model_size", &v) == 0)
        quarry_figure_label_num(&f, "model_size", v);
    cJSON *fig = quarry_figure_json(&f);
    if (!fig || !cJSON_AddItemToArray(figures, fig)) {
        cJSON_Delete(fig);
        return quarry_errorf(err, QUARRY_ENOMEM, "import: out of memory");
    }
    if (raw) {
        cJSON *copy = cJSON_Duplicate(o, 1);
        if (!copy || !cJSON_AddItemToArray(raw, copy)) {
            cJSON_Delete(copy);
            return quarry_errorf(err, QUARRY_ENOMEM, "import: out of memory");
        }
    }
    return 0;
}

/* Skips spaces, tabs and newlines. */
static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

int quarry_import_llama_bench(const char *text, size_t len, cJSON *figures, cJSON *raw,
                              int *n_imported, quarry_error *err)
{
    *n_imported = 0;
    const char *end = text + len;
    const char *p = skip_space(text, end);
    char where[64];
    if (p < end && *p == '[') {
        /* -o json: one array */
        cJSON *doc = quarry_json_parse_text(text, len, "llama-bench JSON", err);
        if (!doc)
            return QUARRY_EFORMAT;
        int rc = 0, i = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, doc)
        {
            snprintf(where, sizeof where, "entry %d", i++);
            if ((rc = import_one(o, figures, raw, where, err)) != 0)
                break;
            (*n_imported)++;
        }
        cJSON_Delete(doc);
        if (rc == 0 && *n_imported == 0)
            rc = quarry_errorf(err, QUARRY_EFORMAT, "import: no llama-bench results in the input");
        return rc;
    }
    /* -o jsonl: one object per line */
    int line = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *stop = eol ? eol : end;
        line++;
        const char *q = skip_space(p, stop);
        if (q < stop) {
            const size_t n = (size_t)(stop - p);
            char *copy = malloc(n + 1);
            if (!copy)
                return quarry_errorf(err, QUARRY_ENOMEM, "import: out of memory");
            memcpy(copy, p, n);
            copy[n] = '\0';
            snprintf(where, sizeof where, "line %d", line);
            cJSON *o = quarry_json_parse_text(copy, n, where, err);
            free(copy);
            if (!o)
                return QUARRY_EFORMAT;
            const int rc = import_one(o, figures, raw, where, err);
            cJSON_Delete(o);
            if (rc)
                return rc;
            (*n_imported)++;
        }
        p = eol ? eol + 1 : end;
    }
    if (*n_imported == 0)
        return quarry_errorf(err, QUARRY_EFORMAT, "import: no llama-bench results in the input");
    return 0;
}
