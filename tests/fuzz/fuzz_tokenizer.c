/*
 * fuzz_tokenizer.c - libFuzzer target for the tokenizers: arbitrary bytes are
 * tokenized with the llama SPM vocabulary (llama-2-tiny-random.gguf) and the
 * GPT-2 byte-level BPE vocabulary (the repaired ggml-vocab-gpt-2), then
 * detokenized in one go and through the streaming detokenizer. Besides the
 * sanitizers it checks properties that must hold for any input:
 *   - every id is in the vocabulary; the buffer-too-small path agrees;
 *   - the streamed text equals the concatenated pieces, and no chunk boundary
 *     falls inside a (structurally) complete UTF-8 character of that text;
 *   - for strictly valid UTF-8 input without special-token parsing, the pieces
 *     give the input back (GPT-2: exactly; SPM: after its prefix space, when
 *     the input has no U+2581 of its own).
 * The first input byte picks the flags (add_special, parse_special, ...).
 * Run from the repository root: make fuzz (seeds in tests/fuzz/corpus/fuzz_tokenizer).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"

static quarry_tokenizer *load(const char *path)
{
    gguf_file *f = NULL;
    quarry_tokenizer *tok = NULL;
    quarry_error err = {0};
    if (gguf_open(path, &f, &err) || quarry_tokenizer_load(f, &tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s (run from the repository root)\n", err.msg);
        abort();
    }
    gguf_close(f);
    return tok;
}

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_tokenizer: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* strict UTF-8: no overlong forms, surrogates or values above U+10FFFF */
static bool strict_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (k == 0 || i + k > n)
            return false;
        uint32_t cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k;
    }
    return true;
}

static void run(const quarry_tokenizer *tok, const uint8_t *text, size_t len, uint8_t mode)
{
    bool add_special = mode & 1, parse_special = mode & 2, special = mode & 4, strip = mode & 8;
    quarry_error err;
    size_t n = 0;
    int rc = quarry_tokenize(tok, (const char *)text, len, add_special, parse_special, NULL, 0, &n, &err);
    if (rc != 0 && rc != QUARRY_ERANGE)
        return; /* e.g. a model that adds BOS without having one: not here */
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    CHECK(ids);
    size_t n2 = 0;
    CHECK(quarry_tokenize(tok, (const char *)text, len, add_special, parse_special, ids, n, &n2, &err) == 0);
    CHECK(n2 == n);
    if (n > 0) {
        CHECK(quarry_tokenize(tok, (const char *)text, len, add_special, parse_special, ids, n - 1,
                              &n2, &err) == QUARRY_ERANGE);
        CHECK(n2 == n);
    }

    /* the concatenated pieces */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        CHECK(ids[i] >= 0 && (size_t)ids[i] < quarry_tokenizer_n_vocab(tok));
        CHECK(quarry_token_piece(tok, ids[i], special, &pl));
        total += pl;
    }
    char *cat = malloc(total + 1), *streamed = malloc(total + 8);
    CHECK(cat && streamed);
    size_t cl = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        const char *p = quarry_token_piece(tok, ids[i], special, &pl);
        memcpy(cat + cl, p, pl);
        cl += pl;
    }

    if (!parse_special && strict_utf8(text, len)) {
        if (quarry_tokenizer_type(tok) == QUARRY_VOCAB_BPE) {
            CHECK(!(add_special && quarry_tokenizer_add_bos(tok))); /* GPT-2 adds none */
            CHECK(cl == len && memcmp(cat, text, len) == 0);
        } else if (!memmem(text, len, "\xE2\x96\x81", 3)) {
            /* after BOS's piece ("<s>" or "") and the prefix space */
            size_t off = 0;
            if (add_special && quarry_tokenizer_add_bos(tok))
                quarry_token_piece(tok, ids[0], special, &off);
            off += len > 0;
            CHECK(cl == off + len && memcmp(cat + off, text, len) == 0);
        }
    }

    /* the streaming detokenizer gives the same bytes, never cut inside a character */
    struct quarry_detok_stream st;
    quarry_detok_stream_init(&st, tok, special, strip);
    size_t sl = 0, n_bounds = 0;
    size_t *bounds = malloc((n + 1) * sizeof *bounds);
    CHECK(bounds);
    char chunk[512];
    for (size_t i = 0; i < n; i++) {
        size_t got;
        CHECK(quarry_detok_stream_push(&st, ids[i], chunk, sizeof chunk, &got, &err) == 0);
        CHECK(sl + got <= total + 8);
        memcpy(streamed + sl, chunk, got);
        sl += got;
        bounds[n_bounds++] = sl;
    }
    sl += quarry_detok_stream_flush(&st, streamed + sl);
    size_t p0 = 0;
    const char *first = n ? quarry_token_piece(tok, ids[0], special, &p0) : NULL;
    size_t stripped = (st.strip_space && p0 > 0 && first[0] == ' ') ? 1 : 0;
    CHECK(sl + stripped == cl);
    CHECK(memcmp(streamed, cat + stripped, sl) == 0);
    /* mark the bytes inside complete characters (lead + its continuation bytes) */
    uint8_t *inside = calloc(sl + 1, 1);
    CHECK(inside);
    for (size_t i = 0; i < sl;) {
        uint8_t c = (uint8_t)streamed[i];
        size_t k = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        bool whole = i + k <= sl;
        for (size_t j = 1; whole && j < k; j++)
            whole = ((uint8_t)streamed[i + j] & 0xC0) == 0x80;
        if (!whole)
            k = 1;
        for (size_t j = 1; j < k; j++)
            inside[i + j] = 1;
        i += k;
    }
    for (size_t b = 0; b < n_bounds; b++)
        CHECK(!inside[bounds[b]]);
    free(inside);
    free(bounds);

    /* one-shot detokenizing never grows the text beyond the pieces */
    size_t dl = 0;
    rc = quarry_detokenize(tok, ids, n, mode & 16, special, NULL, 0, &dl, &err);
    CHECK(rc == 0 || rc == QUARRY_ERANGE);
    CHECK(dl <= cl);
    char *back = malloc(dl + 1);
    CHECK(back);
    size_t dl2 = 0;
    CHECK(quarry_detokenize(tok, ids, n, mode & 16, special, back, dl, &dl2, &err) == 0);
    CHECK(dl2 == dl);
    free(back);
    free(cat);
    free(streamed);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static quarry_tokenizer *spm, *bpe;
    if (!spm) {
        spm = load("tests/data/llama-2-tiny-random.gguf");
        bpe = load("tests/data/vocab/ggml-vocab-gpt-2.repaired.gguf");
    }
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    /* an exact-size copy so any read past the end is caught */
    uint8_t *text = malloc(size - 1 ? size - 1 : 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    run(spm, text, size - 1, mode);
    run(bpe, text, size - 1, mode);
    free(text);
    return 0;
}
