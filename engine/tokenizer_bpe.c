/*
 * tokenizer_bpe.c - byte-level BPE (tokenizer.ggml.model "gpt2"), as
 * llama.cpp's llm_tokenizer_bpe.
 *
 * 1. Pre-tokenization: the fragment is decoded to codepoints and split into
 *    words by the regexes of its pre-tokenizer, applied one after the other
 *    (each refines the previous split; matches and the gaps between them are
 *    both words). The regexes per tokenizer.ggml.pre value are the TABLE below,
 *    taken from the HF tokenizer.json files via llama.cpp's llama-vocab: adding
 *    a model family is adding a row.
 * 2. Each word's UTF-8 bytes are mapped to GPT-2's printable codepoints.
 * 3. Merges: adjacent symbol pairs listed in tokenizer.ggml.merges go into a
 *    min-heap by rank (ties: leftmost); the best is merged and its new
 *    neighbours queued until none is left (stale entries are skipped; the
 *    merge loop is tokenizer_merge.c's, shared with SPM). With
 *    ignore_merges (llama 3), a word that is a token as a whole is taken as is.
 * 4. Each final symbol is its token; one that is not in the vocabulary is
 *    looked up byte by byte (what llama.cpp does; such bytes are usually not
 *    tokens themselves and are then dropped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_impl.h"
#include "engine/unicode.h"

/* ---- the pre-tokenizer table ------------------------------------------------ */

struct qtok_pre {
    const char *const *names; /* tokenizer.ggml.pre values, NULL-terminated */
    const char *const *regex; /* applied in order, NULL-terminated */
    bool keep_spaces;         /* no clean-up of " ," etc. when detokenizing */
    bool ignore_merges;       /* a word that is a whole token is not merged */
    bool add_bos;             /* default of add_bos_token */
    bool no_bos;              /* the model has no BOS unless the file names one */
};

#define NAMES(...) .names = ((const char *const[]){__VA_ARGS__, NULL})
#define REGEXES(...) .regex = ((const char *const[]){__VA_ARGS__, NULL})

/* GPT-2's split: contractions, letters, numbers, other, whitespace. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
/* llama 3 (tokenizer.json has (?i:'s|...); llama.cpp spells the case-insensitivity out) */
#define RE_LLAMA3                                                                             \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* qwen2: llama 3's with single digits */
#define RE_QWEN2                                                                              \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_BLOOM " ?[^(\\s|.,!?…。，、।۔،)]+"
#define RE_CJK_DEEPSEEK "[一-龥ࠀ-一가-퟿]+"

static const struct qtok_pre pre_table[] = {
    {NAMES("default"),
     REGEXES("[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]")},
    {NAMES("llama3", "llama-v3", "llama-bpe", "falcon3"), REGEXES(RE_LLAMA3),
     .ignore_merges = true, .add_bos = true},
    {NAMES("dbrx", "smaug-bpe"), REGEXES(RE_LLAMA3)},
    /* Six characters of deepseek-llm's letter class are spelled as regex escapes
     * (backslash-u + 4 hex digits): U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126,
     * U+212A have an NFC normalisation that is another character, and the copy
     * of the class we read had been normalised (giving ranges out of order).
     * They are restored from the class being a list in codepoint order. */
    {NAMES("deepseek-llm"),
     REGEXES("[\r\n]",
             "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\u1F7Dᾀ-ᾴᾶ-ᾼ\\u1FBEῂ-ῄῆ-ῌῐ-\\u1FD3ῖ-\\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\u2126ℨ\\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
             "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", RE_CJK_DEEPSEEK, "\\p{N}+"),
     .keep_spaces = true},
    {NAMES("deepseek-coder"),
     REGEXES("[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK_DEEPSEEK, "\\p{N}"),
     .keep_spaces = true},
    {NAMES("deepseek-v3"),
     REGEXES("\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
             "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
             " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
     .keep_spaces = true},
    {NAMES("falcon"), REGEXES("[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]")},
    {NAMES("starcoder", "refact", "codeshell", "exaone", "minerva-7b"), REGEXES("\\p{N}", RE_GPT2)},
    {NAMES("command-r", "smollm"), REGEXES("\\p{N}", RE_GPT2), .keep_spaces = true},
    {NAMES("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
           "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"),
     REGEXES(RE_GPT2)},
    {NAMES("qwen2"), REGEXES(RE_QWEN2), .keep_spaces = true},
    {NAMES("stablelm2", "megrez"), REGEXES(RE_QWEN2)},
    {NAMES("poro-chat"), REGEXES(RE_BLOOM), .keep_spaces = true},
    {NAMES("bloom", "gpt3-finnish"), REGEXES(RE_BLOOM)},
    {NAMES("chatglm-bpe"), REGEXES(RE_LLAMA3), .no_bos = true},
    {NAMES("viking"), REGEXES(RE_BLOOM, "\\p{N}"), .keep_spaces = true},
    {NAMES("tekken"),
     REGEXES("[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|"
             "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|"
             "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
     .keep_spaces = true, .ignore_merges = true, .add_bos = true},
    {NAMES("chameleon"),
     REGEXES("<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )",
             "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2),
     .keep_spaces = true, .add_bos = true},
};

static const struct qtok_pre *find_pre(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof pre_table / sizeof pre_table[0]; i++)
        for (const char *const *n = pre_table[i].names; *n; n++)
            if (strlen(*n) == len && memcmp(*n, name, len) == 0)
                return &pre_table[i];
    return NULL;
}

/* ---- loading ---------------------------------------------------------------- */

int qtok_bpe_load(quarry_tokenizer *tok, const gguf_file *f, quarry_error *err)
{
    const struct gguf_array *merges;
    int rc = gguf_get_array(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &merges, err);
    if (rc == QUARRY_ENOTFOUND)
        return quarry_errorf(err, QUARRY_EFORMAT, "%s: BPE vocabulary without tokenizer.ggml.merges",
                             f->path);
    if (rc)
        return rc;
    if (qtok_strtab_from_gguf(&tok->merges, merges, false) ||
        qtok_map_build(&tok->merge_map, &tok->merges, true, NULL))
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenizer: out of memory");

    struct gguf_str pre = {0, ""};
    rc = gguf_get_str(f, "tokenizer.ggml.pre", &pre, err);
    if (rc && rc != QUARRY_ENOTFOUND)
        return rc;
    if (pre.len == 0) {
        qtok_warn(tok, "missing tokenizer.ggml.pre: using the 'default' pre-tokenizer "
                       "(llama.cpp warns that generation quality will be degraded)");
        pre.data = "default";
        pre.len = 7;
    }
    tok->pre = find_pre(pre.data, pre.len);
    if (!tok->pre)
        return quarry_errorf(err, QUARRY_EUNSUPPORTED, "%s: unknown pre-tokenizer type '%.*s'",
                             f->path, (int)(pre.len > 60 ? 60 : pre.len), pre.data);
    snprintf(tok->pre_name, sizeof tok->pre_name, "%.*s", (int)pre.len, pre.data);
    tok->clean_spaces = !tok->pre->keep_spaces;
    tok->ignore_merges = tok->pre->ignore_merges;
    tok->add_bos = tok->pre->add_bos;
    if (tok->pre->no_bos)
        tok->bos = QUARRY_TOKEN_NULL;

    size_t n = 0;
    while (tok->pre->regex[n])
        n++;
    tok->regex = calloc(n, sizeof *tok->regex);
    if (!tok->regex)
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenizer: out of memory");
    tok->n_regex = n;
    for (size_t i = 0; i < n; i++)
        if ((rc = quarry_regex_compile(tok->pre->regex[i], &tok->regex[i], err)) != 0)
            return rc;
    return 0;
}

void qtok_bpe_free(quarry_tokenizer *tok)
{
    for (size_t i = 0; i < tok->n_regex; i++)
        quarry_regex_free(tok->regex[i]);
    free(tok->regex);
    qtok_map_free(&tok->merge_map);
    qtok_strtab_free(&tok->merges);
}

/* ---- merging one word ------------------------------------------------------- */

struct bpe_work {
    const quarry_tokenizer *tok;
    struct qtok_symbol *sym;
    size_t cap_sym;
    struct qtok_bigram_heap heap;
    char *key; /* "left right" */
    size_t cap_key;
};

/* Queues the pair when "left right" is a merge, by minus its rank (the
 * lowest rank merges first). */
static int offer_pair(void *ctx, int left, int right)
{
    struct bpe_work *w = ctx;
    if (left < 0 || right < 0)
        return 0;
    const struct qtok_symbol *l = &w->sym[left], *r = &w->sym[right];
    size_t klen = l->n + 1 + r->n;
    if (klen > w->cap_key) {
        char *k = realloc(w->key, klen);
        if (!k)
            return -1;
        w->key = k;
        w->cap_key = klen;
    }
    memcpy(w->key, l->text, l->n);
    w->key[l->n] = ' ';
    memcpy(w->key + l->n + 1, r->text, r->n);
    int32_t rank = qtok_map_find(&w->tok->merge_map, w->key, klen);
    if (rank < 0)
        return 0;
    struct qtok_bigram b = {left, right, -(double)rank, l->n + r->n};
    return qtok_bigram_push(&w->heap, b);
}

static int push_id(struct qtok_ids *out, int32_t id, quarry_error *err)
{
    return qtok_ids_push(out, id) ? quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory") : 0;
}

/* Merges one byte-encoded word and appends its ids. */
static int bpe_word(const quarry_tokenizer *tok, struct bpe_work *w, const char *word, size_t len,
                    struct qtok_ids *out, quarry_error *err)
{
    if (tok->ignore_merges) {
        int32_t id = qtok_map_find(&tok->token_map, word, len);
        if (id >= 0)
            return push_id(out, id, err);
    }
    if (len > w->cap_sym) {
        struct qtok_symbol *s = realloc(w->sym, len * sizeof *s);
        if (!s)
            return quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory");
        w->sym = s;
        w->cap_sym = len;
    }
    const int n_sym = qtok_symbols_utf8(word, len, w->sym);
    if (qtok_merge_symbols(w->sym, n_sym, &w->heap, offer_pair, w))
        return quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory");
    for (int i = 0; i < n_sym; i++) {
        const struct qtok_symbol *s = &w->sym[i];
        if (s->n == 0)
            continue;
        int32_t id = qtok_map_find(&tok->token_map, s->text, s->n);
        if (id >= 0) {
            if (push_id(out, id, err))
                return QUARRY_ENOMEM;
            continue;
        }
        for (size_t j = 0; j < s->n; j++) {
            int32_t b = qtok_map_find(&tok->token_map, s->text + j, 1);
            if (b >= 0 && push_id(out, b, err))
                return QUARRY_ENOMEM;
        }
    }
    return 0;
}

/* ---- a fragment ------------------------------------------------------------- */

int qtok_bpe_tokenize(const quarry_tokenizer *tok, const char *text, size_t len,
                      struct qtok_ids *out, quarry_error *err)
{
    if (len == 0)
        return 0;
    if (len > (size_t)INT32_MAX / 4)
        return quarry_errorf(err, QUARRY_ERANGE, "tokenize: text too long");
    int rc = 0;
    uint32_t *cps = malloc(len * sizeof *cps);
    uint8_t *flags = malloc(len);
    size_t *chunks = malloc(sizeof *chunks);
    char *word = malloc(len * 8 + 8); /* a codepoint: <= 4 UTF-8 bytes, each <= 2 encoded */
    struct quarry_regex_scratch scratch = {0};
    struct bpe_work w = {.tok = tok};
    if (!cps || !flags || !chunks || !word) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory");
        goto done;
    }
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t adv;
        cps[n] = quarry_utf8_decode(text + i, len - i, &adv);
        flags[n] = quarry_unicode_flags(cps[n]);
        n++;
        i += adv;
    }
    chunks[0] = n;
    size_t n_chunks = 1;
    for (size_t r = 0; r < tok->n_regex; r++) {
        size_t *next, n_next;
        if ((rc = quarry_regex_split(tok->regex[r], cps, flags, chunks, n_chunks, &next, &n_next,
                                     &scratch, err)) != 0)
            goto done;
        free(chunks);
        chunks = next;
        n_chunks = n_next;
    }
    size_t start = 0;
    for (size_t c = 0; c < n_chunks; c++) {
        /* the word's UTF-8, each byte written as its GPT-2 codepoint */
        size_t wl = 0;
        for (size_t i = start; i < start + chunks[c]; i++) {
            char u8[4];
            size_t k = quarry_utf8_encode(cps[i], u8);
            for (size_t j = 0; j < k; j++)
                wl += quarry_utf8_encode(quarry_gpt2_byte_to_cp((uint8_t)u8[j]), word + wl);
        }
        start += chunks[c];
        if (wl && (rc = bpe_word(tok, &w, word, wl, out, err)) != 0)
            goto done;
    }
done:
    free(cps);
    free(flags);
    free(chunks);
    free(word);
    free(w.sym);
    free(w.heap.v);
    free(w.key);
    quarry_regex_scratch_free(&scratch);
    return rc;
}
