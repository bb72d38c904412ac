/*
 * tokenizer_detok.c - ids back to text: llama.cpp's detokenize (pieces joined,
 * SPM's prefix space dropped, optional BOS/EOS removal, BPE space clean-up) and
 * the streaming detokenizer, which holds back an incomplete UTF-8 character at
 * the end of a piece until the bytes completing it arrive.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer_impl.h"
#include "engine/unicode.h"

/* ---- detokenizing ----------------------------------------------------------- */

/* llama.cpp's clean_up_tokenization_spaces passes, in place; returns the new length. */
static size_t clean_spaces(char *text, size_t total)
{
    /* " ?", " !", " .", " ," lose the space */
    size_t total1 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total1; ++i) {
        const char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
        text[total++] = x;
    }
    /* " ' " becomes "'" */
    size_t total2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total2; ++i) {
        const char x = text[i];
        if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }
    /* " 's", " 'm", " 're", " 've" lose the space */
    size_t total3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total3; ++i) {
        const char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            const char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm') {
                total--;
            } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                const char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e'))
                    total--;
            }
        }
        text[total++] = x;
    }
    return total;
}

int quarry_detokenize(const quarry_tokenizer *tok, const int32_t *ids, size_t n_ids,
                      bool remove_special, bool unparse_special, char *out, size_t cap,
                      size_t *n_out, quarry_error *err)
{
    if (n_out)
        *n_out = 0;
    if (!tok || !n_out || (!ids && n_ids) || (!out && cap))
        return quarry_errorf(err, QUARRY_EINVAL, "detokenize: bad arguments");
    bool remove_space = tok->add_space_prefix;
    if (remove_special && tok->add_bos && n_ids > 0 && ids[0] == tok->bos) {
        remove_space = false;
        ids++;
        n_ids--;
    }
    if (remove_special && tok->add_eos && n_ids > 0 && ids[n_ids - 1] == tok->eos)
        n_ids--;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (!qtok_valid_id(tok, ids[i]))
            return quarry_errorf(err, QUARRY_EINVAL, "detokenize: invalid token id %d at %zu", ids[i], i);
        size_t len;
        quarry_token_piece(tok, ids[i], unparse_special, &len);
        total += len;
    }
    char *buf = malloc(total ? total : 1);
    if (!buf)
        return quarry_errorf(err, QUARRY_ENOMEM, "detokenize: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t len;
        const char *p = quarry_token_piece(tok, ids[i], unparse_special, &len);
        if (remove_space && len && p[0] == ' ') {
            p++;
            len--;
        }
        remove_space = false;
        memcpy(buf + n, p, len);
        n += len;
    }
    if (tok->clean_spaces)
        n = clean_spaces(buf, n);
    *n_out = n;
    int rc = 0;
    if (n > cap)
        rc = quarry_errorf(err, QUARRY_ERANGE, "detokenize: %zu bytes do not fit in %zu", n, cap);
    else if (n)
        memcpy(out, buf, n);
    free(buf);
    return rc;
}

/* ---- streaming -------------------------------------------------------------- */

void quarry_detok_stream_init(struct quarry_detok_stream *s, const quarry_tokenizer *tok,
                              bool special, bool strip_leading_space)
{
    memset(s, 0, sizeof *s);
    s->tok = tok;
    s->special = special;
    s->strip_space = strip_leading_space && tok && tok->add_space_prefix;
}

int quarry_detok_stream_push(struct quarry_detok_stream *s, int32_t id, char *out, size_t cap,
                             size_t *n_out, quarry_error *err)
{
    *n_out = 0;
    if (!qtok_valid_id(s->tok, id))
        return quarry_errorf(err, QUARRY_EINVAL, "detokenize: invalid token id %d", id);
    size_t plen;
    const char *p = quarry_token_piece(s->tok, id, s->special, &plen);
    if (s->strip_space && !s->started && plen && p[0] == ' ') {
        p++;
        plen--;
    }
    /* the last (up to 4) bytes of held + piece decide what must wait */
    char last[8];
    size_t total = s->n_held + plen, nl = 0;
    for (size_t i = total > 4 ? total - 4 : 0; i < total; i++)
        last[nl++] = i < s->n_held ? s->held[i] : p[i - s->n_held];
    size_t keep = quarry_utf8_incomplete_tail(last, nl);
    size_t emit = total - keep;
    if (emit > cap) {
        *n_out = emit;
        return quarry_errorf(err, QUARRY_ERANGE, "detokenize: %zu bytes do not fit in %zu", emit, cap);
    }
    for (size_t i = 0; i < emit; i++)
        out[i] = i < s->n_held ? s->held[i] : p[i - s->n_held];
    char held[4];
    for (size_t i = 0; i < keep; i++)
        held[i] = last[nl - keep + i];
    memcpy(s->held, held, keep);
    s->n_held = (uint8_t)keep;
    s->started = true;
    *n_out = emit;
    return 0;
}

size_t quarry_detok_stream_flush(struct quarry_detok_stream *s, char out[4])
{
    size_t n = s->n_held;
    memcpy(out, s->held, n);
    s->n_held = 0;
    return n;
}
