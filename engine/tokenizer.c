/*
 * tokenizer.c - tokenizing: the special tokens are cut out of the text first
 * (llama.cpp's tokenizer_st_partition), each plain-text fragment goes to the
 * SPM or BPE algorithm (tokenizer_spm.c, tokenizer_bpe.c), BOS/EOS are added as
 * the model asks. Also the read-only accessors. Loading is in tokenizer_load.c,
 * detokenizing in tokenizer_detok.c.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_impl.h"

/* ---- accessors -------------------------------------------------------------- */

enum quarry_vocab_type quarry_tokenizer_type(const quarry_tokenizer *tok) { return tok->type; }
size_t quarry_tokenizer_n_vocab(const quarry_tokenizer *tok) { return tok->n_vocab; }
int32_t quarry_tokenizer_bos(const quarry_tokenizer *tok) { return tok->bos; }
int32_t quarry_tokenizer_eos(const quarry_tokenizer *tok) { return tok->eos; }
int32_t quarry_tokenizer_eot(const quarry_tokenizer *tok) { return tok->eot; }
int32_t quarry_tokenizer_unk(const quarry_tokenizer *tok) { return tok->unk; }
int32_t quarry_tokenizer_pad(const quarry_tokenizer *tok) { return tok->pad; }
bool quarry_tokenizer_add_bos(const quarry_tokenizer *tok) { return tok->add_bos; }
bool quarry_tokenizer_add_eos(const quarry_tokenizer *tok) { return tok->add_eos; }
const char *quarry_tokenizer_pre(const quarry_tokenizer *tok) { return tok->pre_name; }
const char *quarry_tokenizer_warnings(const quarry_tokenizer *tok) { return tok->warnings; }

bool quarry_tokenizer_is_eog(const quarry_tokenizer *tok, int32_t id)
{
    return qtok_valid_id(tok, id) && (tok->attr[id] & QTOK_ATTR_EOG);
}

unsigned quarry_tokenizer_attr(const quarry_tokenizer *tok, int32_t id)
{
    return qtok_valid_id(tok, id) ? tok->attr[id] & ~QTOK_ATTR_EOG : 0;
}

const char *quarry_tokenizer_token_text(const quarry_tokenizer *tok, int32_t id, size_t *len)
{
    if (!qtok_valid_id(tok, id)) {
        *len = 0;
        return NULL;
    }
    return qtok_str(&tok->tokens, (size_t)id, len);
}

float quarry_tokenizer_score(const quarry_tokenizer *tok, int32_t id)
{
    return qtok_valid_id(tok, id) ? tok->scores[id] : 0.0f;
}

int32_t quarry_tokenizer_find(const quarry_tokenizer *tok, const char *text, size_t len)
{
    return qtok_map_find(&tok->token_map, text, len);
}

const char *quarry_token_piece(const quarry_tokenizer *tok, int32_t id, bool special, size_t *len)
{
    *len = 0;
    if (!qtok_valid_id(tok, id))
        return NULL;
    if (!special && (tok->attr[id] & (QUARRY_TOKEN_ATTR_UNKNOWN | QUARRY_TOKEN_ATTR_CONTROL)))
        return tok->pieces.data + tok->pieces.off[id]; /* (length 0) */
    return qtok_str(&tok->pieces, (size_t)id, len);
}

/* ---- tokenizing ------------------------------------------------------------- */

/* A piece of the input: plain text [off, off+len) or a special token. */
struct fragment {
    int32_t token; /* -1: text */
    size_t off, len;
};

struct frag_list {
    struct fragment *v;
    size_t n, cap;
};

static int frag_push(struct frag_list *l, int32_t token, size_t off, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct fragment *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return QUARRY_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (struct fragment){token, off, len};
    return 0;
}

static bool ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* llama.cpp's tokenizer_st_partition: for each special token, longest first,
 * every occurrence in a text fragment splits it into text / token / text. */
static int partition(const quarry_tokenizer *tok, const char *text, size_t len, bool parse_special,
                     struct frag_list *out)
{
    struct frag_list cur = {0}, next = {0};
    int rc = 0;
    if (len && (rc = frag_push(&cur, -1, 0, len)) != 0)
        goto done;
    for (size_t s = 0; s < tok->n_special && cur.n; s++) {
        int32_t id = tok->special[s];
        unsigned attr = tok->attr[id];
        if (!parse_special && (attr & (QUARRY_TOKEN_ATTR_CONTROL | QUARRY_TOKEN_ATTR_UNKNOWN)))
            continue;
        size_t slen;
        const char *stext = qtok_str(&tok->tokens, (size_t)id, &slen);
        next.n = 0;
        for (size_t k = 0; k < cur.n; k++) {
            struct fragment fr = cur.v[k];
            if (fr.token >= 0) {
                if ((rc = frag_push(&next, fr.token, 0, 0)) != 0)
                    goto done;
                continue;
            }
            size_t base = fr.off, blen = fr.len;
            for (;;) {
                const char *m = memmem(text + base, blen, stext, slen);
                if (!m) {
                    if (blen && (rc = frag_push(&next, -1, base, blen)) != 0)
                        goto done;
                    break;
                }
                size_t match = (size_t)(m - text);
                size_t left = match - base;
                if (attr & QUARRY_TOKEN_ATTR_LSTRIP)
                    while (left > 0 && ascii_space(text[base + left - 1]))
                        left--;
                if (left && (rc = frag_push(&next, -1, base, left)) != 0)
                    goto done;
                if ((rc = frag_push(&next, id, 0, 0)) != 0)
                    goto done;
                size_t roff = match + slen, rlen = base + blen - roff;
                if (attr & QUARRY_TOKEN_ATTR_RSTRIP)
                    while (rlen > 0 && ascii_space(text[roff])) {
                        roff++;
                        rlen--;
                    }
                base = roff;
                blen = rlen;
                if (blen == 0)
                    break;
            }
        }
        struct frag_list t = cur;
        cur = next;
        next = t;
    }
done:
    free(next.v);
    if (rc) {
        free(cur.v);
        return rc;
    }
    *out = cur;
    return 0;
}

int quarry_tokenize(const quarry_tokenizer *tok, const char *text, size_t len, bool add_special,
                    bool parse_special, int32_t *ids, size_t cap, size_t *n_out, quarry_error *err)
{
    if (n_out)
        *n_out = 0;
    if (!tok || !n_out || (!text && len) || (!ids && cap))
        return quarry_errorf(err, QUARRY_EINVAL, "tokenize: bad arguments");
    struct frag_list frags = {0};
    struct qtok_ids out = {0};
    char *prefixed = NULL;
    int rc = partition(tok, text, len, parse_special, &frags);
    if (rc) {
        rc = quarry_errorf(err, rc, "tokenize: out of memory");
        goto done;
    }
    if (add_special && tok->add_bos) {
        if (tok->bos < 0) {
            rc = quarry_errorf(err, QUARRY_EFORMAT, "tokenize: the model adds BOS but has no BOS token");
            goto done;
        }
        if (qtok_ids_push(&out, tok->bos))
            goto oom;
    }
    bool prev_special = true; /* SPM: prefix a space at the start and after special tokens */
    for (size_t k = 0; k < frags.n; k++) {
        const struct fragment *fr = &frags.v[k];
        if (fr->token >= 0) {
            if (qtok_ids_push(&out, fr->token))
                goto oom;
            prev_special = true;
            continue;
        }
        if (tok->type == QUARRY_VOCAB_SPM) {
            const char *t = text + fr->off;
            size_t tl = fr->len;
            if (tok->add_space_prefix && prev_special) {
                free(prefixed);
                prefixed = malloc(tl + 1);
                if (!prefixed)
                    goto oom;
                prefixed[0] = ' ';
                memcpy(prefixed + 1, t, tl);
                t = prefixed;
                tl++;
            }
            rc = qtok_spm_tokenize(tok, t, tl, &out, err);
        } else {
            rc = qtok_bpe_tokenize(tok, text + fr->off, fr->len, &out, err);
        }
        if (rc)
            goto done;
        prev_special = false;
    }
    if (add_special && tok->add_eos) {
        if (tok->eos < 0) {
            rc = quarry_errorf(err, QUARRY_EFORMAT, "tokenize: the model adds EOS but has no EOS token");
            goto done;
        }
        if (qtok_ids_push(&out, tok->eos))
            goto oom;
    }
    *n_out = out.n;
    if (out.n > cap) {
        rc = quarry_errorf(err, QUARRY_ERANGE, "tokenize: %zu tokens do not fit in %zu", out.n, cap);
        goto done;
    }
    if (out.n)
        memcpy(ids, out.v, out.n * sizeof *ids);
    goto done;
oom:
    rc = quarry_errorf(err, QUARRY_ENOMEM, "tokenize: out of memory");
done:
    free(frags.v);
    free(out.v);
    free(prefixed);
    return rc;
}
