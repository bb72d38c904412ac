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
 * recognised by their length no longer matching and skipped.
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
#include "engine/unicode.h"

struct spm_symbol {
    int prev, next;   /* linked list of live symbols, -1 at the ends */
    const char *text; /* into the escaped text */
    size_t n;         /* bytes; 0 once merged into its left neighbour */
};

struct spm_bigram {
    int left, right;
    float score;
    size_t size; /* bytes of the pair when it was queued */
};

struct spm_heap {
    struct spm_bigram *v;
    size_t n, cap;
};

/* a ranks below b: lower score, or equal score and further right */
static int spm_below(const struct spm_bigram *a, const struct spm_bigram *b)
{
    return a->score < b->score || (a->score == b->score && a->left > b->left);
}

static int heap_push(struct spm_heap *h, struct spm_bigram b)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct spm_bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!spm_below(&h->v[parent], &b))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = b;
    return 0;
}

static struct spm_bigram heap_pop(struct spm_heap *h)
{
    struct spm_bigram top = h->v[0];
    struct spm_bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && spm_below(&h->v[c], &h->v[c + 1]))
            c++;
        if (!spm_below(&last, &h->v[c]))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

static int try_add_bigram(const quarry_tokenizer *tok, const struct spm_symbol *sym,
                          struct spm_heap *heap, int left, int right)
{
    if (left < 0 || right < 0)
        return 0;
    size_t size = sym[left].n + sym[right].n;
    int32_t id = qtok_map_find(&tok->token_map, sym[left].text, size);
    if (id < 0)
        return 0;
    struct spm_bigram b = {left, right, tok->scores[id], size};
    return heap_push(heap, b);
}

/* Output of one final symbol: its token, or its bytes as byte tokens. */
static int emit_symbol(const quarry_tokenizer *tok, const struct spm_symbol *s,
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
    struct spm_symbol *sym = malloc(n * sizeof *sym);
    struct spm_heap heap = {0};
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

    int n_sym = 0;
    for (size_t offs = 0; offs < n;) {
        size_t clen = quarry_utf8_len((uint8_t)buf[offs]);
        if (clen > n - offs)
            clen = n - offs;
        sym[n_sym].text = buf + offs;
        sym[n_sym].n = clen;
        offs += clen;
        sym[n_sym].prev = n_sym - 1;
        sym[n_sym].next = offs == n ? -1 : n_sym + 1;
        n_sym++;
    }

    for (int i = 1; i < n_sym; i++)
        if (try_add_bigram(tok, sym, &heap, i - 1, i))
            goto oom;

    while (heap.n) {
        struct spm_bigram b = heap_pop(&heap);
        struct spm_symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = b.left;
        if (try_add_bigram(tok, sym, &heap, l->prev, b.left) ||
            try_add_bigram(tok, sym, &heap, b.left, l->next))
            goto oom;
    }

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
