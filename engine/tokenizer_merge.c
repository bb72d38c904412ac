/*
 * tokenizer_merge.c - the merge loop that SentencePiece and byte-level BPE
 * tokenization share (tokenizer_spm.c, tokenizer_bpe.c), as llama.cpp's
 * llm_tokenizer_spm and llm_tokenizer_bpe both run it: the text is cut into
 * UTF-8 characters (judged by the lead byte only), kept as a linked list of
 * symbols; every adjacent pair the caller accepts goes into a priority queue;
 * the best pair is merged into its left symbol and the new neighbour pairs are
 * offered, until the queue is empty. A queued pair whose sides changed since
 * (one of them merged elsewhere) is stale: its length no longer matches, and
 * it is skipped. What a pair's priority is (SPM: the token's score; BPE: minus
 * the merge rank) is the caller's business.
 */
#include <stdlib.h>

#include "engine/tokenizer_impl.h"
#include "engine/unicode.h"

/* a comes out after b: lower priority, or equal priority and further right */
static int bigram_after(const struct qtok_bigram *a, const struct qtok_bigram *b)
{
    return a->priority < b->priority || (a->priority == b->priority && a->left > b->left);
}

int qtok_bigram_push(struct qtok_bigram_heap *h, struct qtok_bigram b)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct qtok_bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_after(&h->v[parent], &b))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = b;
    return 0;
}

static struct qtok_bigram bigram_pop(struct qtok_bigram_heap *h)
{
    struct qtok_bigram top = h->v[0];
    struct qtok_bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && bigram_after(&h->v[c], &h->v[c + 1]))
            c++;
        if (!bigram_after(&last, &h->v[c]))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

int qtok_symbols_utf8(const char *text, size_t n, struct qtok_symbol *sym)
{
    int n_sym = 0;
    for (size_t offs = 0; offs < n;) {
        size_t clen = quarry_utf8_len((uint8_t)text[offs]);
        if (clen > n - offs)
            clen = n - offs;
        sym[n_sym].text = text + offs;
        sym[n_sym].n = clen;
        offs += clen;
        sym[n_sym].prev = n_sym - 1;
        sym[n_sym].next = offs == n ? -1 : n_sym + 1;
        n_sym++;
    }
    return n_sym;
}

int qtok_merge_symbols(struct qtok_symbol *sym, int n_sym, struct qtok_bigram_heap *heap,
                       qtok_offer_pair_fn offer, void *ctx)
{
    heap->n = 0;
    for (int i = 1; i < n_sym; i++)
        if (offer(ctx, i - 1, i))
            return -1;
    while (heap->n) {
        struct qtok_bigram b = bigram_pop(heap);
        struct qtok_symbol *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* stale: one side changed since it was queued */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = b.left;
        if (offer(ctx, l->prev, b.left) || offer(ctx, b.left, l->next))
            return -1;
    }
    return 0;
}
