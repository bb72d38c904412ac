/*
 * tokenizer_spm.c - SentencePiece-style tokenization (tokenizer.ggml.model
 * "llama"), as llama.cpp's llm_tokenizer_spm.
 *
 * The fragment's spaces become U+2581; the text is cut into UTF-8 characters
 * (judged by lead byte only, so invalid bytes are characters of their own);
 * every adjacent pair whose concatenation is a token goes into a max-heap by
 * that token's score (ties: leftmost first); the best pair is merged and its
 * new neighbours are queued, until the heap is empty. Each final symbol is its
 * token, or - when it is not in the vocabulary - one byte token per byte
 * (<0xNN>). Stale heap entries (a side already merged elsewhere) are
 * recognised by their length no longer matching and skipped. (The merge
 * loop is tokenizer_merge.c's, shared with BPE; this file says which pairs
 * merge and in what order.)
 *
 * llama.cpp also keeps a "rev_merge" map to re-split a final symbol that is not
 * a token into the pair that formed it; it is never used: every merged symbol
 * is a token by construction, and a single character can never equal a merged
 * pair's text (a pair is longer than the UTF-8 length of its first byte), so
 * such symbols always fall through to bytes, as here.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_impl.h"

/* what the merge loop offers pairs to */
struct spm_merge {
    const quarry_tokenizer *tok;
    const struct qtok_symbol *sym;
    struct qtok_bigram_heap *heap;
};

/* Queues the pair when its concatenation is a token, by that token's score. */
static int offer_pair(void *ctx, int left, int right)
{
    const struct spm_merge *m = ctx;
    if (left < 0 || right < 0)
        return 0;
    size_t size = m->sym[left].n + m->sym[right].n;
    int32_t id = qtok_map_find(&m->tok->token_map, m->sym[left].text, size);
    if (id < 0)
        return 0;
    struct qtok_bigram b = {left, right, m->tok->scores[id], size};
    return qtok_bigram_push(m->heap, b);
}

/* Output of one final symbol: its token, or its bytes as byte tokens. */
static int emit_symbol(const quarry_tokenizer *tok, const struct qtok_symbol *s,
                       struct qtok_ids *out, quarry_error *err)
{
    int32_t id = qtok_map_find(&tok->token_map, s->text, s->n);
    if (id >= 0)
        return qtok_ids_push(out, id) ? quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory")
                                      : 0;
    for (size_t j = 0; j < s->n; j++) {
        int32_t b = tok->byte_token[(uint8_t)s->text[j]];
        if (b < 0)
            b = tok->unk; /* llama.cpp would throw here: no byte token for this byte */
        if (b < 0)
            return quarry_errorf(err, QUARRY_EFORMAT,
                                 "tokenize: no token for byte 0x%02X and no unknown token",
                                 (uint8_t)s->text[j]);
        if (qtok_ids_push(out, b))
            return quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory");
    }
    return 0;
}

int qtok_spm_tokenize(const quarry_tokenizer *tok, const char *text, size_t len,
                      struct qtok_ids *out, quarry_error *err)
{
    static const char escaped_space[3] = {'\xE2', '\x96', '\x81'}; /* U+2581 */
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t n = len + 2 * spaces;
    if (n == 0)
        return 0;
    if (n > (size_t)INT32_MAX / 2)
        return quarry_errorf(err, QUARRY_ERANGE, "tokenize: text too long");
    char *buf = malloc(n);
    struct qtok_symbol *sym = malloc(n * sizeof *sym);
    struct qtok_bigram_heap heap = {0};
    int rc = 0;
    if (!buf || !sym) {
        rc = quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory");
        goto done;
    }
    for (size_t i = 0, o = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + o, escaped_space, 3);
            o += 3;
        } else {
            buf[o++] = text[i];
        }
    }

    const int n_sym = qtok_symbols_utf8(buf, n, sym);
    struct spm_merge merge = {tok, sym, &heap};
    if (qtok_merge_symbols(sym, n_sym, &heap, offer_pair, &merge))
        goto oom;

    for (int i = 0; i != -1; i = sym[i].next)
        if ((rc = emit_symbol(tok, &sym[i], out, err)) != 0)
            goto done;
    goto done;
oom:
    rc = quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory");
done:
    free(buf);
    free(sym);
    free(heap.v);
    return rc;
}
