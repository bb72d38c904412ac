/*
 * prompts.c - synthetic and file prompts for quarry-load (see prompts.h).
 */
#include "loadgen/prompts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "loadgen/openai.h"
#include "loadgen/rng.h"

/* Common short English words: each is a single token (with its leading
 * space) in the llama and GPT-2 vocabularies. */
static const char *const prompt_words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "new", "people",
    "some", "first", "also", "like", "over", "into", "than", "only", "water", "day", "house",
    "small", "world",
};
#define N_WORDS (sizeof prompt_words / sizeof prompt_words[0])

struct file_entry {
    char *prompt;         /* or NULL */
    char *messages_json;  /* or NULL */
    int max_tokens;       /* 0: use the spec */
};

struct qload_prompts {
    struct qload_prompt_opts opts;
    struct file_entry *entries;
    size_t n_entries;
    char *text;           /* the last synthetic prompt */
    size_t text_cap;
    uint16_t *shared;     /* word indices of the shared prefix */
    size_t shared_len, shared_cap;
};

int qload_len_spec_parse(const char *text, struct qload_len_spec *out, quarry_error *err)
{
    char *end = NULL;
    double a = 0, b = 0;
    memset(out, 0, sizeof *out);
    if (strncmp(text, "uniform:", 8) == 0 || strncmp(text, "normal:", 7) == 0) {
        const int uniform = text[0] == 'u';
        const char *p = text + (uniform ? 8 : 7);
        errno = 0;
        a = strtod(p, &end);
        if (end == p || *end != ':')
            goto bad;
        p = end + 1;
        b = strtod(p, &end);
        if (end == p || *end != '\0' || errno != 0 || !isfinite(a) || !isfinite(b))
            goto bad;
        if (uniform && (a < 1 || b < a))
            goto bad;
        if (!uniform && (a < 1 || b < 0))
            goto bad;
        out->kind = uniform ? QLOAD_LEN_UNIFORM : QLOAD_LEN_NORMAL;
    } else {
        errno = 0;
        a = strtod(text, &end);
        if (end == text || *end != '\0' || errno != 0 || !isfinite(a) || a < 1 || a != floor(a))
            goto bad;
        out->kind = QLOAD_LEN_FIXED;
    }
    if (a > 1e7 || b > 1e7)
        goto bad;
    out->a = a;
    out->b = b;
    return 0;
bad:
    return quarry_errorf(err, QUARRY_EINVAL,
                         "length '%s': expected N, uniform:A:B or normal:MEAN:SD (values 1..1e7)", text);
}

void qload_len_spec_format(const struct qload_len_spec *s, char *buf, size_t size)
{
    switch (s->kind) {
    case QLOAD_LEN_FIXED: snprintf(buf, size, "%.0f", s->a); break;
    case QLOAD_LEN_UNIFORM: snprintf(buf, size, "uniform:%g:%g", s->a, s->b); break;
    case QLOAD_LEN_NORMAL: snprintf(buf, size, "normal:%g:%g", s->a, s->b); break;
    }
}

static int sample_len(const struct qload_len_spec *s, struct qload_rng *rng)
{
    double v = s->a;
    if (s->kind == QLOAD_LEN_UNIFORM)
        v = (double)qload_rng_range(rng, (int64_t)ceil(s->a), (int64_t)floor(s->b));
    else if (s->kind == QLOAD_LEN_NORMAL)
        v = round(s->a + s->b * qload_rng_normal(rng));
    if (v < 1)
        v = 1;
    if (v > 1e7)
        v = 1e7;
    return (int)v;
}

void qload_prompts_free(struct qload_prompts *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_entries; i++) {
        free(p->entries[i].prompt);
        free(p->entries[i].messages_json);
    }
    free(p->entries);
    free(p->text);
    free(p->shared);
    free(p);
}

size_t qload_prompts_count(const struct qload_prompts *p)
{
    return p->n_entries;
}

/* Reads one JSONL line into an entry. */
static int parse_entry(const char *line, size_t len, struct file_entry *e, const char *path,
                       size_t lineno, quarry_error *err)
{
    memset(e, 0, sizeof *e);
    cJSON *root = qload_json_parse(line, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return quarry_errorf(err, QUARRY_EFORMAT, "%s:%zu: not a JSON object", path, lineno);
    }
    int rc = 0;
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(root, "messages");
    const cJSON *max_tokens = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    if (cJSON_IsString(prompt)) {
        e->prompt = strdup(prompt->valuestring);
        if (!e->prompt)
            rc = quarry_errorf(err, QUARRY_ENOMEM, "prompts: out of memory");
    } else if (cJSON_IsArray(messages)) {
        e->messages_json = cJSON_PrintUnformatted(messages);
        if (!e->messages_json)
            rc = quarry_errorf(err, QUARRY_ENOMEM, "prompts: out of memory");
    } else {
        rc = quarry_errorf(err, QUARRY_EFORMAT, "%s:%zu: needs \"prompt\" (string) or \"messages\" (array)",
                           path, lineno);
    }
    if (rc == 0 && max_tokens) {
        if (!cJSON_IsNumber(max_tokens) || max_tokens->valuedouble < 1 || max_tokens->valuedouble > 1e7)
            rc = quarry_errorf(err, QUARRY_EFORMAT, "%s:%zu: max_tokens must be a number 1..1e7", path,
                               lineno);
        else
            e->max_tokens = (int)max_tokens->valuedouble;
    }
    cJSON_Delete(root);
    if (rc != 0) {
        free(e->prompt);
        free(e->messages_json);
        memset(e, 0, sizeof *e);
    }
    return rc;
}

static int load_file(struct qload_prompts *p, const char *path, quarry_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return quarry_errorf(err, QUARRY_EIO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t line_cap = 0, cap = 0, lineno = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                           line[len - 1] == '\t'))
            len--;
        size_t start = 0;
        while (start < len && (line[start] == ' ' || line[start] == '\t'))
            start++;
        if (start == len)
            continue;
        if (p->n_entries == cap) {
            const size_t ncap = cap ? cap * 2 : 64;
            struct file_entry *ne = realloc(p->entries, ncap * sizeof *ne);
            if (!ne) {
                rc = quarry_errorf(err, QUARRY_ENOMEM, "prompts: out of memory");
                break;
            }
            p->entries = ne;
            cap = ncap;
        }
        rc = parse_entry(line + start, len - start, &p->entries[p->n_entries], path, lineno, err);
        if (rc != 0)
            break;
        p->n_entries++;
    }
    if (rc == 0 && ferror(f))
        rc = quarry_errorf(err, QUARRY_EIO, "%s: read error", path);
    if (rc == 0 && p->n_entries == 0)
        rc = quarry_errorf(err, QUARRY_EFORMAT, "%s: no prompts in the file", path);
    free(line);
    fclose(f);
    return rc;
}

int qload_prompts_open(const struct qload_prompt_opts *opts, struct qload_prompts **out,
                       quarry_error *err)
{
    *out = NULL;
    if (!(opts->shared_prefix >= 0.0 && opts->shared_prefix <= 1.0))
        return quarry_errorf(err, QUARRY_EINVAL, "prompts: shared prefix ratio must be in 0..1");
    struct qload_prompts *p = calloc(1, sizeof *p);
    if (!p)
        return quarry_errorf(err, QUARRY_ENOMEM, "prompts: out of memory");
    p->opts = *opts;
    p->opts.file = NULL; /* not kept: the caller owns the string */
    if (opts->file) {
        int rc = load_file(p, opts->file, err);
        if (rc != 0) {
            qload_prompts_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

/* Extends the shared prefix sequence to at least n words (one fixed sequence
 * per seed, grown on demand so the longest prompt decides its length). */
static int grow_shared(struct qload_prompts *p, size_t n, quarry_error *err)
{
    if (n <= p->shared_len)
        return 0;
    if (n > p->shared_cap) {
        size_t ncap = p->shared_cap ? p->shared_cap : 256;
        while (ncap < n)
            ncap *= 2;
        uint16_t *ns = realloc(p->shared, ncap * sizeof *ns);
        if (!ns)
            return quarry_errorf(err, QUARRY_ENOMEM, "prompts: out of memory");
        p->shared = ns;
        p->shared_cap = ncap;
    }
    /* word k of the prefix depends only on (seed, k) */
    for (size_t k = p->shared_len; k < n; k++) {
        struct qload_rng rng;
        qload_rng_seed(&rng, p->opts.seed ^ (0x5eed5eedULL + k * 0x9e3779b97f4a7c15ULL));
        p->shared[k] = (uint16_t)(qload_rng_u64(&rng) % N_WORDS);
    }
    p->shared_len = n;
    return 0;
}

static int append_word(struct qload_prompts *p, size_t *len, const char *w, quarry_error *err)
{
    const size_t wl = strlen(w);
    const size_t need = *len + wl + 2;
    if (need > p->text_cap) {
        size_t ncap = p->text_cap ? p->text_cap : 1024;
        while (ncap < need)
            ncap *= 2;
        char *nt = realloc(p->text, ncap);
        if (!nt)
            return quarry_errorf(err, QUARRY_ENOMEM, "prompts: out of memory");
        p->text = nt;
        p->text_cap = ncap;
    }
    if (*len > 0)
        p->text[(*len)++] = ' ';
    memcpy(p->text + *len, w, wl);
    *len += wl;
    p->text[*len] = '\0';
    return 0;
}

int qload_prompts_get(struct qload_prompts *p, uint64_t index, struct qload_prompt *out,
                      quarry_error *err)
{
    memset(out, 0, sizeof *out);
    struct qload_rng rng;
    qload_rng_seed(&rng, p->opts.seed * 0x2545f4914f6cdd1dULL + index);
    if (p->n_entries > 0) {
        const struct file_entry *e = &p->entries[index % p->n_entries];
        out->text = e->prompt;
        out->messages_json = e->messages_json;
        out->prompt_words = -1;
        out->max_tokens = e->max_tokens > 0 ? e->max_tokens : sample_len(&p->opts.max_tokens, &rng);
        return 0;
    }
    const int n = sample_len(&p->opts.prompt_tokens, &rng);
    out->max_tokens = sample_len(&p->opts.max_tokens, &rng);
    const size_t n_shared = (size_t)llround(p->opts.shared_prefix * n);
    int rc = grow_shared(p, n_shared, err);
    size_t len = 0;
    for (size_t k = 0; rc == 0 && k < (size_t)n; k++) {
        const size_t w = k < n_shared ? p->shared[k] : (size_t)(qload_rng_u64(&rng) % N_WORDS);
        rc = append_word(p, &len, prompt_words[w], err);
    }
    if (rc != 0)
        return rc;
    out->text = p->text;
    out->prompt_words = n;
    return 0;
}
