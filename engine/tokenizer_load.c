/*
 * tokenizer_load.c - building a tokenizer from GGUF metadata, as llama.cpp's
 * llama_vocab::impl::load: vocabulary kind and defaults, tokens, scores and
 * token types, special-token ids (keys, then detection by text as llama.cpp
 * does), the end-of-generation set, the special-token list used to cut them out
 * of text, the per-token piece cache, and the byte-fallback table. Also the
 * small containers (string table, hash map, id list) the tokenizer files share.
 * Where llama.cpp would assert or throw on bad metadata we return an error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_impl.h"
#include "engine/unicode.h"

/* ---- small containers ------------------------------------------------------- */

uint32_t qtok_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

int32_t qtok_map_find(const struct qtok_map *m, const char *s, size_t len)
{
    if (!m->slot)
        return -1;
    uint32_t h = qtok_hash(s, len);
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        int32_t v = m->slot[i];
        if (v < 0)
            return -1;
        if (m->hash[i] == h) {
            size_t klen;
            const char *k = qtok_str(m->keys, (size_t)v, &klen);
            if (klen == len && memcmp(k, s, len) == 0)
                return v;
        }
    }
}

int qtok_map_build(struct qtok_map *m, const struct qtok_strtab *keys, bool first_wins, size_t *dup)
{
    size_t slots = 16;
    while (slots < 2 * keys->n)
        slots *= 2;
    m->slot = malloc(slots * sizeof *m->slot);
    m->hash = malloc(slots * sizeof *m->hash);
    m->mask = slots - 1;
    m->keys = keys;
    if (!m->slot || !m->hash)
        return QUARRY_ENOMEM;
    for (size_t i = 0; i < slots; i++)
        m->slot[i] = -1;
    for (size_t k = 0; k < keys->n; k++) {
        size_t len;
        const char *s = qtok_str(keys, k, &len);
        uint32_t h = qtok_hash(s, len);
        size_t i = h & m->mask;
        for (;; i = (i + 1) & m->mask) {
            int32_t v = m->slot[i];
            if (v < 0)
                break;
            size_t vlen;
            const char *vs = qtok_str(keys, (size_t)v, &vlen);
            if (m->hash[i] == h && vlen == len && memcmp(vs, s, len) == 0) {
                if (first_wins)
                    goto next;
                if (dup)
                    *dup = k;
                return QUARRY_EFORMAT;
            }
        }
        m->slot[i] = (int32_t)k;
        m->hash[i] = h;
    next:;
    }
    return 0;
}

void qtok_map_free(struct qtok_map *m)
{
    free(m->slot);
    free(m->hash);
    m->slot = NULL;
    m->hash = NULL;
}

int qtok_strtab_from_gguf(struct qtok_strtab *t, const struct gguf_array *a, bool empty_names)
{
    size_t total = 0;
    for (uint64_t i = 0; i < a->count; i++)
        total += a->strs[i].len ? a->strs[i].len : 32; /* room for "[EMPTY_i]" */
    t->data = malloc(total ? total : 1);
    t->off = malloc((a->count + 1) * sizeof *t->off);
    if (!t->data || !t->off)
        return QUARRY_ENOMEM;
    size_t o = 0;
    for (uint64_t i = 0; i < a->count; i++) {
        t->off[i] = o;
        if (a->strs[i].len) {
            memcpy(t->data + o, a->strs[i].data, a->strs[i].len);
            o += a->strs[i].len;
        } else if (empty_names) {
            o += (size_t)snprintf(t->data + o, 32, "[EMPTY_%llu]", (unsigned long long)i);
        }
    }
    t->off[a->count] = o;
    t->n = a->count;
    return 0;
}

void qtok_strtab_free(struct qtok_strtab *t)
{
    free(t->data);
    free(t->off);
    t->data = NULL;
    t->off = NULL;
    t->n = 0;
}

int qtok_ids_push(struct qtok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v)
            return QUARRY_ENOMEM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

void qtok_warn(quarry_tokenizer *tok, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t old = tok->warnings ? strlen(tok->warnings) : 0;
    char *w = realloc(tok->warnings, old + strlen(line) + 2);
    if (!w)
        return; /* a lost warning is not worth failing the load */
    memcpy(w + old, line, strlen(line));
    w[old + strlen(line)] = '\n';
    w[old + strlen(line) + 1] = 0;
    tok->warnings = w;
}

/* ---- loading ---------------------------------------------------------------- */

static bool str_is(struct gguf_str s, const char *c)
{
    return s.len == strlen(c) && memcmp(s.data, c, s.len) == 0;
}

/* GGUF token_type values (llama_token_type) to attribute bits. */
static uint16_t attr_from_type(int64_t type)
{
    switch (type) {
    case 1: return QUARRY_TOKEN_ATTR_NORMAL;
    case 2: return QUARRY_TOKEN_ATTR_UNKNOWN;
    case 3: return QUARRY_TOKEN_ATTR_CONTROL;
    case 4: return QUARRY_TOKEN_ATTR_USER_DEFINED;
    case 5: return QUARRY_TOKEN_ATTR_UNUSED;
    case 6: return QUARRY_TOKEN_ATTR_BYTE;
    default: return 0; /* undefined */
    }
}

static bool tok_text_is(const quarry_tokenizer *tok, size_t id, const char *c)
{
    size_t len;
    const char *s = qtok_str(&tok->tokens, id, &len);
    return len == strlen(c) && memcmp(s, c, len) == 0;
}

static bool text_in(const quarry_tokenizer *tok, size_t id, const char *const *list)
{
    for (; *list; list++)
        if (tok_text_is(tok, id, *list))
            return true;
    return false;
}

/* Auto-detection of special tokens by their text, as llama.cpp (which scans a
 * hash map, so among several candidates it takes an arbitrary one; we take the
 * lowest id). A detected token is made a control token. */
static void detect_special_by_text(quarry_tokenizer *tok)
{
    static const char *const eot[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<EOT>",
                                      "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
                                      NULL};
    static const char *const eom[] = {"<|eom_id|>", NULL};
    static const char *const fim_pre[] = {"<|fim_prefix|>", "<fim-prefix>",
                                          "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
                                          NULL};
    static const char *const fim_suf[] = {"<|fim_suffix|>", "<fim-suffix>",
                                          "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>", "<SUF>",
                                          NULL};
    static const char *const fim_mid[] = {"<|fim_middle|>", "<fim-middle>",
                                          "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
                                          NULL};
    static const char *const fim_pad[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const fim_rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL};
    static const char *const fim_sep[] = {"<|file_sep|>", NULL};
    static const char *const eog[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                      "<|endoftext|>", "<|eom_id|>", "<EOT>", NULL};
    struct {
        int32_t *id;
        const char *const *texts;
    } auto_ids[] = {{&tok->eot, eot},         {&tok->eom, eom},         {&tok->fim_pre, fim_pre},
                    {&tok->fim_suf, fim_suf}, {&tok->fim_mid, fim_mid}, {&tok->fim_pad, fim_pad},
                    {&tok->fim_rep, fim_rep}, {&tok->fim_sep, fim_sep}};
    for (size_t k = 0; k < sizeof auto_ids / sizeof auto_ids[0]; k++) {
        if (*auto_ids[k].id != QUARRY_TOKEN_NULL)
            continue;
        for (size_t id = 0; id < tok->n_vocab; id++) {
            if (text_in(tok, id, auto_ids[k].texts)) {
                *auto_ids[k].id = (int32_t)id;
                tok->attr[id] = (uint16_t)((tok->attr[id] & QTOK_ATTR_EOG) | QUARRY_TOKEN_ATTR_CONTROL);
                break;
            }
        }
    }
    /* the end-of-generation set */
    const int32_t eog_ids[] = {tok->fim_pad, tok->fim_rep, tok->fim_sep, tok->eos, tok->eot, tok->eom};
    for (size_t k = 0; k < sizeof eog_ids / sizeof eog_ids[0]; k++)
        if (eog_ids[k] != QUARRY_TOKEN_NULL)
            tok->attr[eog_ids[k]] |= QTOK_ATTR_EOG;
    for (size_t id = 0; id < tok->n_vocab; id++) {
        if (text_in(tok, id, eog)) {
            tok->attr[id] = (uint16_t)(QUARRY_TOKEN_ATTR_CONTROL | QTOK_ATTR_EOG);
        }
    }
}

/* Per-model attribute fix-ups llama.cpp applies by name (the files lack them). */
static void model_specific_attrs(quarry_tokenizer *tok, const gguf_file *f)
{
    struct gguf_str name = {0, ""};
    gguf_get_str(f, "general.name", &name, NULL);
    char lower[256];
    size_t n = name.len < sizeof lower - 1 ? name.len : sizeof lower - 1;
    for (size_t i = 0; i < n; i++) {
        char c = name.data[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    lower[n] = 0;
    if (strstr(tok->pre_name, "jina-v2-de") || strstr(tok->pre_name, "jina-v2-es") ||
        strstr(tok->pre_name, "jina-v2-code")) {
        int32_t id = quarry_tokenizer_find(tok, "<mask>", 6);
        if (id >= 0)
            tok->attr[id] |= QUARRY_TOKEN_ATTR_LSTRIP;
    } else if (strstr(lower, "phi-3") || strstr(lower, "phi3")) {
        for (size_t id = 0; id < tok->n_vocab; id++)
            if (tok->attr[id] & (QUARRY_TOKEN_ATTR_CONTROL | QUARRY_TOKEN_ATTR_USER_DEFINED |
                                 QUARRY_TOKEN_ATTR_UNKNOWN))
                tok->attr[id] |= QUARRY_TOKEN_ATTR_RSTRIP;
        int32_t id = quarry_tokenizer_find(tok, "</s>", 4);
        if (id >= 0)
            tok->attr[id] |= QUARRY_TOKEN_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t k = 0; k < 3; k++)
            if ((id = quarry_tokenizer_find(tok, keep[k], strlen(keep[k]))) >= 0)
                tok->attr[id] &= (uint16_t)~QUARRY_TOKEN_ATTR_RSTRIP;
    }
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const quarry_tokenizer *tok = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    size_t lx = tok->tokens.off[x + 1] - tok->tokens.off[x];
    size_t ly = tok->tokens.off[y + 1] - tok->tokens.off[y];
    if (lx != ly)
        return lx > ly ? -1 : 1; /* longest first, so "<|im_end|>" wins over "<|im" */
    return x < y ? -1 : x > y;
}

static int build_special_list(quarry_tokenizer *tok)
{
    size_t n = 0;
    const unsigned mask = QUARRY_TOKEN_ATTR_CONTROL | QUARRY_TOKEN_ATTR_USER_DEFINED |
                          QUARRY_TOKEN_ATTR_UNKNOWN;
    for (size_t id = 0; id < tok->n_vocab; id++)
        n += (tok->attr[id] & mask) != 0;
    tok->special = malloc((n ? n : 1) * sizeof *tok->special);
    if (!tok->special)
        return QUARRY_ENOMEM;
    tok->n_special = 0;
    for (size_t id = 0; id < tok->n_vocab; id++)
        if (tok->attr[id] & mask)
            tok->special[tok->n_special++] = (int32_t)id;
    qsort_r(tok->special, tok->n_special, sizeof *tok->special, cmp_special, tok);
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends n bytes at o + *at (when o is not NULL: a sizing pass passes NULL). */
static void put(char *o, size_t *at, const char *src, size_t n)
{
    if (o)
        memcpy(o + *at, src, n);
    *at += n;
}

/* The piece of one token (llama.cpp's token_to_piece with special = true),
 * written at o; returns its length. With o NULL, only the length. */
static size_t piece_of(const quarry_tokenizer *tok, size_t id, char *o)
{
    size_t len, n = 0;
    const char *text = qtok_str(&tok->tokens, id, &len);
    unsigned attr = tok->attr[id];
    if (attr & (QUARRY_TOKEN_ATTR_UNKNOWN | QUARRY_TOKEN_ATTR_CONTROL |
                QUARRY_TOKEN_ATTR_USER_DEFINED)) {
        put(o, &n, text, len);
        return n;
    }
    if (tok->type == QUARRY_VOCAB_SPM) {
        if (attr & QUARRY_TOKEN_ATTR_NORMAL) {
            for (size_t i = 0; i < len;) {
                if (len - i >= 3 && memcmp(text + i, "\xE2\x96\x81", 3) == 0) {
                    put(o, &n, " ", 1);
                    i += 3;
                } else {
                    put(o, &n, text + i++, 1);
                }
            }
        } else if (attr & QUARRY_TOKEN_ATTR_BYTE) {
            /* "<0xNN>": the hex digits at offset 3 (llama.cpp: strtol of substr(3, 2)) */
            int v = 0;
            for (size_t i = 3; i < 5 && i < len && hex_digit(text[i]) >= 0; i++)
                v = v * 16 + hex_digit(text[i]);
            char byte = (char)v;
            put(o, &n, &byte, 1);
        }
        return n;
    }
    if (attr & QUARRY_TOKEN_ATTR_NORMAL) {
        /* GPT-2 characters back to bytes; one that is not a byte character is
         * written as llama.cpp does: "[UNK_BYTE_0x<its utf-8 hex><token text>]" */
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < len;) {
            size_t adv;
            uint32_t cp = quarry_utf8_decode(text + i, len - i, &adv);
            int b = quarry_gpt2_cp_to_byte(cp);
            if (b >= 0) {
                char byte = (char)b;
                put(o, &n, &byte, 1);
            } else {
                char u8[4];
                size_t k = quarry_utf8_encode(cp, u8);
                put(o, &n, "[UNK_BYTE_0x", 12);
                for (size_t j = 0; j < k; j++) {
                    char h[2] = {hex[(uint8_t)u8[j] >> 4], hex[u8[j] & 15]};
                    put(o, &n, h, 2);
                }
                put(o, &n, text, len);
                put(o, &n, "]", 1);
            }
            i += adv;
        }
    }
    return n;
}

/* The piece cache (llama.cpp's cache_token_to_piece). A pathological BPE token
 * full of non-byte characters expands quadratically; the total is capped. */
#define QTOK_MAX_PIECES (256u << 20)
#define QTOK_MAX_TOKEN (1u << 20)

static int build_pieces(quarry_tokenizer *tok, quarry_error *err)
{
    size_t total = 0;
    for (size_t id = 0; id < tok->n_vocab; id++) {
        size_t len = tok->tokens.off[id + 1] - tok->tokens.off[id];
        if (len > QTOK_MAX_TOKEN) /* (also keeps the sizes below from overflowing) */
            return quarry_errorf(err, QUARRY_EFORMAT, "tokenizer: token %zu is %zu bytes long", id, len);
        total += piece_of(tok, id, NULL);
        if (total > QTOK_MAX_PIECES)
            return quarry_errorf(err, QUARRY_EFORMAT,
                                 "tokenizer: token pieces exceed %u MiB (malformed vocabulary)",
                                 QTOK_MAX_PIECES >> 20);
    }
    tok->pieces.off = malloc((tok->n_vocab + 1) * sizeof *tok->pieces.off);
    tok->pieces.data = malloc(total ? total : 1);
    if (!tok->pieces.off || !tok->pieces.data)
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenizer: out of memory");
    size_t at = 0;
    for (size_t id = 0; id < tok->n_vocab; id++) {
        tok->pieces.off[id] = at;
        at += piece_of(tok, id, tok->pieces.data + at);
    }
    tok->pieces.off[tok->n_vocab] = at;
    tok->pieces.n = tok->n_vocab;
    return 0;
}

/* An optional boolean key; a key of another type is an error. */
static int get_flag(const gguf_file *f, const char *key, bool *v, quarry_error *err)
{
    bool b;
    int rc = gguf_get_bool(f, key, &b, err);
    if (rc == QUARRY_ENOTFOUND)
        return 0;
    if (rc == 0)
        *v = b;
    return rc;
}

static int load(quarry_tokenizer *tok, const gguf_file *f, quarry_error *err)
{
    struct gguf_str model;
    int rc = gguf_get_str(f, "tokenizer.ggml.model", &model, err);
    if (rc == QUARRY_ENOTFOUND)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: no tokenizer.ggml.model", f->path);
    if (rc)
        return rc;

    tok->bos = tok->eos = tok->eot = tok->eom = tok->unk = QUARRY_TOKEN_NULL;
    tok->sep = tok->pad = tok->mask = QUARRY_TOKEN_NULL;
    tok->fim_pre = tok->fim_suf = tok->fim_mid = QUARRY_TOKEN_NULL;
    tok->fim_pad = tok->fim_rep = tok->fim_sep = QUARRY_TOKEN_NULL;
    if (str_is(model, "llama")) {
        tok->type = QUARRY_VOCAB_SPM;
        tok->bos = 1, tok->eos = 2, tok->unk = 0;
        tok->add_space_prefix = true;
        tok->add_bos = true;
        snprintf(tok->pre_name, sizeof tok->pre_name, "default");
    } else if (str_is(model, "gpt2")) {
        tok->type = QUARRY_VOCAB_BPE;
        tok->bos = 11, tok->eos = 11;
    } else {
        return quarry_errorf(err, QUARRY_EUNSUPPORTED,
                             "%s: tokenizer.ggml.model '%.*s' is not supported (only llama, gpt2)",
                             f->path, (int)(model.len > 40 ? 40 : model.len), model.data);
    }

    const struct gguf_array *tokens;
    rc = gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, err);
    if (rc == QUARRY_ENOTFOUND)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: no tokenizer.ggml.tokens", f->path);
    if (rc)
        return rc;
    if (tokens->count == 0 || tokens->count > (uint64_t)INT32_MAX - 1)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: tokenizer.ggml.tokens has %llu entries",
                             f->path, (unsigned long long)tokens->count);
    tok->n_vocab = (size_t)tokens->count;

    const struct gguf_array *scores = NULL, *types = NULL;
    rc = gguf_get_array(f, "tokenizer.ggml.scores", -1, &scores, err);
    if (rc && rc != QUARRY_ENOTFOUND)
        return rc;
    if (scores && ((scores->elem_type != GGUF_TYPE_FLOAT32 && scores->elem_type != GGUF_TYPE_FLOAT64) ||
                   scores->count != tokens->count))
        return quarry_errorf(err, QUARRY_EFORMAT,
                             "%s: tokenizer.ggml.scores: %llu values of type %s for %zu tokens",
                             f->path, (unsigned long long)scores->count,
                             gguf_type_name(scores->elem_type), tok->n_vocab);
    rc = gguf_get_array(f, "tokenizer.ggml.token_type", -1, &types, err);
    if (rc && rc != QUARRY_ENOTFOUND)
        return rc;
    if (types) {
        enum gguf_value_type t = types->elem_type;
        bool integer = t == GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT8 ||
                       t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_UINT16 ||
                       t == GGUF_TYPE_INT64 || t == GGUF_TYPE_UINT64;
        if (!integer || types->count != tokens->count)
            return quarry_errorf(err, QUARRY_EFORMAT,
                                 "%s: tokenizer.ggml.token_type: %llu values of type %s for %zu tokens",
                                 f->path, (unsigned long long)types->count, gguf_type_name(t),
                                 tok->n_vocab);
    }
    if ((rc = get_flag(f, "tokenizer.ggml.add_space_prefix", &tok->add_space_prefix, err)) != 0)
        return rc;

    if (qtok_strtab_from_gguf(&tok->tokens, tokens, true))
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenizer: out of memory");
    size_t dup = 0;
    rc = qtok_map_build(&tok->token_map, &tok->tokens, false, &dup);
    if (rc == QUARRY_EFORMAT) {
        size_t len;
        const char *s = qtok_str(&tok->tokens, dup, &len);
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: token %zu '%.*s' appears twice in the vocabulary",
                             f->path, dup, (int)(len > 40 ? 40 : len), s);
    }
    if (rc)
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenizer: out of memory");
    tok->scores = calloc(tok->n_vocab, sizeof *tok->scores);
    tok->attr = malloc(tok->n_vocab * sizeof *tok->attr);
    if (!tok->scores || !tok->attr)
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < tok->n_vocab; i++) {
        tok->scores[i] = scores ? (float)gguf_array_f64(scores, i) : 0.0f;
        tok->attr[i] = types ? attr_from_type(gguf_array_i64(types, i)) : QUARRY_TOKEN_ATTR_NORMAL;
    }
    for (uint64_t i = 0; i < tokens->count; i++)
        if (tokens->strs[i].len == 0)
            qtok_warn(tok, "empty token at index %llu named [EMPTY_%llu]", (unsigned long long)i,
                      (unsigned long long)i);

    if (tok->type == QUARRY_VOCAB_BPE && (rc = qtok_bpe_load(tok, f, err)) != 0)
        return rc;

    /* special token ids: an out-of-range value keeps the default (as llama.cpp) */
    struct {
        const char *key;
        int32_t *id;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", &tok->bos},
        {"tokenizer.ggml.eos_token_id", &tok->eos},
        {"tokenizer.ggml.eot_token_id", &tok->eot},
        {"tokenizer.ggml.eom_token_id", &tok->eom},
        {"tokenizer.ggml.unknown_token_id", &tok->unk},
        {"tokenizer.ggml.seperator_token_id", &tok->sep},
        {"tokenizer.ggml.padding_token_id", &tok->pad},
        {"tokenizer.ggml.mask_token_id", &tok->mask},
        {"tokenizer.ggml.fim_pre_token_id", &tok->fim_pre},
        {"tokenizer.ggml.fim_suf_token_id", &tok->fim_suf},
        {"tokenizer.ggml.fim_mid_token_id", &tok->fim_mid},
        {"tokenizer.ggml.fim_pad_token_id", &tok->fim_pad},
        {"tokenizer.ggml.fim_rep_token_id", &tok->fim_rep},
        {"tokenizer.ggml.fim_sep_token_id", &tok->fim_sep},
        {"tokenizer.ggml.prefix_token_id", &tok->fim_pre}, /* deprecated names */
        {"tokenizer.ggml.suffix_token_id", &tok->fim_suf},
        {"tokenizer.ggml.middle_token_id", &tok->fim_mid},
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const struct gguf_kv *kv = gguf_find_kv(f, keys[k].key);
        if (!kv)
            continue;
        int64_t v;
        if (kv->value.type == GGUF_TYPE_UINT8 || kv->value.type == GGUF_TYPE_UINT16 ||
            kv->value.type == GGUF_TYPE_UINT32 || kv->value.type == GGUF_TYPE_UINT64)
            v = kv->value.v.u64 > (uint64_t)INT64_MAX ? -1 : (int64_t)kv->value.v.u64;
        else if (kv->value.type == GGUF_TYPE_INT8 || kv->value.type == GGUF_TYPE_INT16 ||
                 kv->value.type == GGUF_TYPE_INT32 || kv->value.type == GGUF_TYPE_INT64)
            v = kv->value.v.i64;
        else
            return quarry_errorf(err, QUARRY_EFORMAT, "%s: %s is a %s, not an integer", f->path,
                                 keys[k].key, gguf_type_name(kv->value.type));
        if (v < 0 || (uint64_t)v >= tok->n_vocab) {
            qtok_warn(tok, "bad special token: %s = %lld, using default id %d", keys[k].key,
                      (long long)v, *keys[k].id);
            continue;
        }
        *keys[k].id = (int32_t)v;
    }
    if ((rc = get_flag(f, "tokenizer.ggml.add_bos_token", &tok->add_bos, err)) != 0 ||
        (rc = get_flag(f, "tokenizer.ggml.add_eos_token", &tok->add_eos, err)) != 0)
        return rc;

    /* defaults that do not exist in a small vocabulary (llama.cpp keeps them
     * and would index out of bounds) */
    int32_t *all_ids[] = {&tok->bos, &tok->eos, &tok->unk};
    for (size_t k = 0; k < 3; k++) {
        if (*all_ids[k] != QUARRY_TOKEN_NULL && (size_t)*all_ids[k] >= tok->n_vocab) {
            qtok_warn(tok, "default special id %d is outside the vocabulary: none", *all_ids[k]);
            *all_ids[k] = QUARRY_TOKEN_NULL;
        }
    }

    detect_special_by_text(tok);
    if (build_special_list(tok))
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenizer: out of memory");
    if ((rc = build_pieces(tok, err)) != 0)
        return rc;
    model_specific_attrs(tok, f);

    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        int32_t id = qtok_map_find(&tok->token_map, buf, 6);
        if (id < 0) {
            char c = (char)b;
            id = qtok_map_find(&tok->token_map, &c, 1);
        }
        tok->byte_token[b] = id;
    }
    return 0;
}

int quarry_tokenizer_load(const gguf_file *f, quarry_tokenizer **out, quarry_error *err)
{
    *out = NULL;
    if (!f)
        return quarry_errorf(err, QUARRY_EINVAL, "tokenizer: no file");
    quarry_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok)
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenizer: out of memory");
    tok->warnings = calloc(1, 1);
    int rc = tok->warnings ? load(tok, f, err) : quarry_errorf(err, QUARRY_ENOMEM, "out of memory");
    if (rc) {
        quarry_tokenizer_free(tok);
        return rc;
    }
    *out = tok;
    return 0;
}

void quarry_tokenizer_free(quarry_tokenizer *tok)
{
    if (!tok)
        return;
    qtok_bpe_free(tok);
    qtok_map_free(&tok->token_map);
    qtok_strtab_free(&tok->tokens);
    qtok_strtab_free(&tok->pieces);
    free(tok->scores);
    free(tok->attr);
    free(tok->special);
    free(tok->warnings);
    free(tok);
}
