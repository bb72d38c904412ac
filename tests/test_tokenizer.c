/*
 * test_tokenizer.c - the tokenizers against llama.cpp's own test vectors.
 *
 * - llama.cpp's test-tokenizer-0 vectors (tests/data/vocab/NAME.gguf.inp and .out, split
 *   on "\n__ggml_vocab_test__\n" exactly as test-tokenizer-0.cpp does, no BOS):
 *   SPM with the llama 1/2 vocabulary and byte-level BPE with GPT-2's. The
 *   shipped ggml-vocab-*.gguf files are damaged (tests/data/vocab/README.md):
 *   GPT-2 uses the repaired file, llama-spm the identical vocabulary carried by
 *   llama-2-tiny-random.gguf.
 * - Round trips: detokenize(tokenize(s)) == s for every vector where llama.cpp
 *   gives s back (all SPM ones; GPT-2 ones not touched by its space clean-up),
 *   and the concatenated pieces give s back for all of them.
 * - The prompts of the greedy reference runs (stories260K, llama-2-tiny-random)
 *   tokenize with BOS to the listed prompt_token_ids, and the pieces of prompt
 *   and generated ids reproduce the reference text.
 * - Special tokens in text (parse_special), BOS/EOS flags, buffer-too-small.
 * - The streaming detokenizer: a character split over byte tokens comes out
 *   whole, and every chunk of every vector ends on a character boundary.
 * - Malformed tokenizer metadata (written with the GGUF writer): errors, no crash.
 * - Every pre-tokenizer row loads (its regexes compile), the regex engine on
 *   known splits, and the Unicode property table on known codepoints.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "engine/unicode_regex.h"

#define SPM_MODEL "tests/data/llama-2-tiny-random.gguf"
#define SPM_VECTORS "tests/data/vocab/ggml-vocab-llama-spm.gguf"
#define BPE_MODEL "tests/data/vocab/ggml-vocab-gpt-2.repaired.gguf"
#define BPE_VECTORS "tests/data/vocab/ggml-vocab-gpt-2.gguf"
#define STORIES "tests/data/stories260K.gguf"

static quarry_tokenizer *load_tok(const char *path)
{
    gguf_file *f = NULL;
    quarry_error err = {0};
    if (gguf_open(path, &f, &err))
        fail_msg("%s", err.msg);
    quarry_tokenizer *tok = NULL;
    if (quarry_tokenizer_load(f, &tok, &err))
        fail_msg("%s", err.msg);
    gguf_close(f); /* the tokenizer must not need the file any more */
    return tok;
}

/* tokenize into a malloc'd array */
static int32_t *tokenize(const quarry_tokenizer *tok, const char *s, size_t len, bool add_special,
                         bool parse_special, size_t *n)
{
    quarry_error err = {0};
    size_t need = 0;
    int rc = quarry_tokenize(tok, s, len, add_special, parse_special, NULL, 0, &need, &err);
    if (rc && rc != QUARRY_ERANGE)
        fail_msg("%s", err.msg);
    int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
    assert_non_null(ids);
    if (quarry_tokenize(tok, s, len, add_special, parse_special, ids, need, n, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(*n, need);
    return ids;
}

static char *detokenize(const quarry_tokenizer *tok, const int32_t *ids, size_t n, bool special,
                        size_t *len)
{
    quarry_error err = {0};
    size_t need = 0;
    int rc = quarry_detokenize(tok, ids, n, false, special, NULL, 0, &need, &err);
    if (rc && rc != QUARRY_ERANGE)
        fail_msg("%s", err.msg);
    char *s = malloc(need + 1);
    assert_non_null(s);
    if (quarry_detokenize(tok, ids, n, false, special, s, need, len, &err))
        fail_msg("%s", err.msg);
    s[*len] = 0;
    return s;
}

/* ---- llama.cpp's test vectors -------------------------------------------------- */

struct vectors {
    char *inp_buf, *out_buf;
    size_t n;
    const char *text[128];
    size_t len[128];
    const char *ids_line[128]; /* NUL-terminated lines of .out */
};

static void read_vectors(const char *base, struct vectors *v)
{
    char path[256];
    size_t size;
    memset(v, 0, sizeof *v);
    snprintf(path, sizeof path, "%s.inp", base);
    v->inp_buf = tu_read_file(path, &size);
    assert_non_null(v->inp_buf);
    /* test-tokenizer-0: split on "\n__ggml_vocab_test__\n"; the text after the
     * last separator (empty here) is not a test */
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t pos = 0;
    while (pos < size) {
        char *next = memmem(v->inp_buf + pos, size - pos, sep, sizeof sep - 1);
        size_t end = next ? (size_t)(next - v->inp_buf) : size;
        assert_true(v->n < 128);
        v->text[v->n] = v->inp_buf + pos;
        v->len[v->n] = end - pos;
        v->n++;
        if (!next)
            break;
        pos = end + sizeof sep - 1;
    }
    snprintf(path, sizeof path, "%s.out", base);
    v->out_buf = tu_read_file(path, &size);
    assert_non_null(v->out_buf);
    size_t lines = 0;
    char *p = v->out_buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        assert_true(lines < 128);
        v->ids_line[lines++] = p;
        if (!nl)
            break;
        *nl = 0;
        p = nl + 1;
    }
    assert_int_equal(lines, v->n);
}

static size_t parse_ids(const char *line, int32_t *ids, size_t cap)
{
    size_t n = 0;
    char *end;
    for (;;) {
        long v = strtol(line, &end, 10);
        if (end == line)
            break;
        assert_true(n < cap);
        ids[n++] = (int32_t)v;
        line = end;
    }
    return n;
}

static void check_vectors(const char *model, const char *vectors, size_t min_tests)
{
    quarry_tokenizer *tok = load_tok(model);
    struct vectors v;
    read_vectors(vectors, &v);
    assert_true(v.n >= min_tests);
    int failures = 0;
    for (size_t t = 0; t < v.n; t++) {
        int32_t want[512];
        size_t n_want = parse_ids(v.ids_line[t], want, 512), n_got;
        int32_t *got = tokenize(tok, v.text[t], v.len[t], false, false, &n_got);
        if (n_got != n_want || memcmp(got, want, n_got * sizeof *got) != 0) {
            failures++;
            printf("FAIL %s #%zu '%.*s': got", vectors, t, (int)v.len[t], v.text[t]);
            for (size_t i = 0; i < n_got; i++)
                printf(" %d", got[i]);
            printf("\n   want %s\n", v.ids_line[t]);
        }
        free(got);
    }
    printf("%s: %zu vectors, %d failed\n", vectors, v.n, failures);
    assert_int_equal(failures, 0);
    free(v.inp_buf);
    free(v.out_buf);
    quarry_tokenizer_free(tok);
}

static void test_spm_vectors(void **state)
{
    (void)state;
    check_vectors(SPM_MODEL, SPM_VECTORS, 40);
}

static void test_bpe_vectors(void **state)
{
    (void)state;
    check_vectors(BPE_MODEL, BPE_VECTORS, 40);
}

/* ---- round trips ---------------------------------------------------------------- */

/* llama.cpp's GPT-2 detokenizer removes the space in " ?", " !", " .", " ,",
 * " ' ", " 's", " 'm", " 're", " 've": such inputs do not come back as they were. */
static bool touched_by_cleanup(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != ' ')
            continue;
        char x = s[i + 1];
        if (x == '?' || x == '!' || x == '.' || x == ',')
            return true;
        if (x == '\'' && i + 2 < n) {
            char y = s[i + 2];
            if (y == ' ' || y == 's' || y == 'm')
                return true;
            if (i + 3 < n && ((y == 'r' && s[i + 3] == 'e') || (y == 'v' && s[i + 3] == 'e')))
                return true;
        }
    }
    return false;
}

static void check_round_trips(const char *model, const char *vectors, bool bpe)
{
    quarry_tokenizer *tok = load_tok(model);
    struct vectors v;
    read_vectors(vectors, &v);
    size_t exact = 0;
    for (size_t t = 0; t < v.n; t++) {
        size_t n, len;
        int32_t *ids = tokenize(tok, v.text[t], v.len[t], false, false, &n);
        /* the pieces alone always give the text back (SPM: after the prefix space) */
        char *cat = malloc(v.len[t] + 8);
        size_t cl = 0;
        for (size_t i = 0; i < n; i++) {
            size_t pl;
            const char *p = quarry_token_piece(tok, ids[i], true, &pl);
            assert_non_null(p);
            assert_true(cl + pl <= v.len[t] + 1);
            memcpy(cat + cl, p, pl);
            cl += pl;
        }
        size_t skip = (!bpe && cl > 0 && cat[0] == ' ') ? 1 : 0;
        assert_int_equal(cl - skip, v.len[t]);
        assert_memory_equal(cat + skip, v.text[t], v.len[t]);
        free(cat);

        char *back = detokenize(tok, ids, n, true, &len);
        if (!bpe || !touched_by_cleanup(v.text[t], v.len[t])) {
            if (len != v.len[t] || memcmp(back, v.text[t], len) != 0)
                fail_msg("round trip #%zu: '%.*s' came back as '%s'", t, (int)v.len[t], v.text[t],
                         back);
            exact++;
        }
        free(back);
        free(ids);
    }
    printf("%s: %zu of %zu vectors round-trip exactly\n", vectors, exact, v.n);
    if (!bpe)
        assert_int_equal(exact, v.n);
    free(v.inp_buf);
    free(v.out_buf);
    quarry_tokenizer_free(tok);
}

static void test_spm_round_trip(void **state)
{
    (void)state;
    check_round_trips(SPM_MODEL, SPM_VECTORS, false);
}

static void test_bpe_round_trip(void **state)
{
    (void)state;
    check_round_trips(BPE_MODEL, BPE_VECTORS, true);
}

/* GPT-2's clean-up, with results worked out by hand from llama.cpp's rules. */
static void test_bpe_cleanup(void **state)
{
    (void)state;
    quarry_tokenizer *tok = load_tok(BPE_MODEL);
    static const char *const cases[][2] = {
        {"Hello , world .", "Hello, world."},
        {"Hello, y'all! How are you \xF0\x9F\x98\x81 ?", "Hello, y'all! How are you \xF0\x9F\x98\x81?"},
        {"it 's mine , isn 't it ?", "it's mine, isn 't it?"},
        {"we 're here , they 've gone", "we're here, they've gone"},
        {"a ' b", "a'b"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n, len;
        int32_t *ids = tokenize(tok, cases[c][0], strlen(cases[c][0]), false, false, &n);
        char *back = detokenize(tok, ids, n, true, &len);
        assert_string_equal(back, cases[c][1]);
        free(back);
        free(ids);
    }
    quarry_tokenizer_free(tok);
}

/* ---- reference prompts ------------------------------------------------------------ */

static void check_greedy(const char *model, const char *ref)
{
    size_t size;
    char *txt = tu_read_file(ref, &size);
    assert_non_null(txt);
    txt[size] = 0;
    char *p = strstr(txt, "prompt: \"");
    assert_non_null(p);
    p += 9;
    char *q = strchr(p, '"');
    assert_non_null(q);
    *q = 0;
    const char *prompt = p;
    int32_t want[64], gen[256];
    p = strstr(q + 1, "prompt_token_ids (");
    assert_non_null(p);
    size_t n_want = parse_ids(strchr(p, ':') + 1, want, 64);
    p = strstr(p, "generated_token_ids (");
    assert_non_null(p);
    char *eol = strchr(p, '\n');
    *eol = 0;
    size_t n_gen = parse_ids(strchr(p, ':') + 1, gen, 256);
    char *text = strstr(eol + 1, "---\n");
    assert_non_null(text);
    text += 4;
    char *text_end = strstr(text, "\n--- end ---");
    assert_non_null(text_end);
    *text_end = 0;

    quarry_tokenizer *tok = load_tok(model);
    size_t n;
    int32_t *ids = tokenize(tok, prompt, strlen(prompt), true, false, &n);
    assert_int_equal(n, n_want);
    assert_memory_equal(ids, want, n * sizeof *ids);
    assert_int_equal(ids[0], quarry_tokenizer_bos(tok));

    /* the reference text is the pieces (special ones shown) of prompt + generated ids */
    size_t cap = strlen(text) + 1, len = 0;
    char *cat = malloc(cap + 64);
    for (size_t i = 0; i < n_want + n_gen; i++) {
        size_t pl;
        const char *piece = quarry_token_piece(tok, i < n_want ? want[i] : gen[i - n_want], true, &pl);
        assert_non_null(piece);
        assert_true(len + pl <= cap + 64);
        memcpy(cat + len, piece, pl);
        len += pl;
    }
    assert_int_equal(len, strlen(text));
    assert_memory_equal(cat, text, len);
    free(cat);
    free(ids);
    free(txt);
    quarry_tokenizer_free(tok);
}

static void test_greedy_prompts(void **state)
{
    (void)state;
    check_greedy(STORIES, "tests/data/stories260K.greedy.txt");
    check_greedy(SPM_MODEL, "tests/data/llama-2-tiny-random.greedy.txt");
}

/* ---- special tokens, flags, API edges ---------------------------------------------- */

static void test_special_tokens(void **state)
{
    (void)state;
    quarry_tokenizer *tok = load_tok(SPM_MODEL);
    assert_int_equal(quarry_tokenizer_type(tok), QUARRY_VOCAB_SPM);
    assert_int_equal(quarry_tokenizer_n_vocab(tok), 32000);
    assert_int_equal(quarry_tokenizer_bos(tok), 1);
    assert_int_equal(quarry_tokenizer_eos(tok), 2);
    assert_int_equal(quarry_tokenizer_unk(tok), 0);
    assert_true(quarry_tokenizer_add_bos(tok));
    assert_false(quarry_tokenizer_add_eos(tok));
    assert_true(quarry_tokenizer_is_eog(tok, 2));
    assert_false(quarry_tokenizer_is_eog(tok, 1));
    assert_false(quarry_tokenizer_is_eog(tok, 15043));
    assert_false(quarry_tokenizer_is_eog(tok, -1));
    assert_false(quarry_tokenizer_is_eog(tok, 32000));
    assert_int_equal(quarry_tokenizer_attr(tok, 1), QUARRY_TOKEN_ATTR_CONTROL);
    assert_int_equal(quarry_tokenizer_attr(tok, 3), QUARRY_TOKEN_ATTR_BYTE);
    assert_int_equal(quarry_tokenizer_find(tok, "\xE2\x96\x81Hello", 8), 15043);

    const char *s = "<s>Hello</s>";
    size_t n;
    int32_t *ids = tokenize(tok, s, strlen(s), false, true, &n);
    /* "<s>" "Hello" "</s>": a space is prefixed after a special token (SPM) */
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 15043);
    assert_int_equal(ids[2], 2);
    free(ids);
    ids = tokenize(tok, s, strlen(s), false, false, &n);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] != 1 && ids[i] != 2);
    assert_true(n > 3);
    free(ids);
    ids = tokenize(tok, "", 0, true, false, &n);
    assert_int_equal(n, 1); /* llama: encode("", add_special) == [BOS] */
    assert_int_equal(ids[0], 1);
    free(ids);

    /* pieces: control tokens only when asked; byte tokens are bytes */
    size_t len;
    assert_non_null(quarry_token_piece(tok, 1, false, &len));
    assert_int_equal(len, 0);
    const char *p = quarry_token_piece(tok, 1, true, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "<s>", 3);
    p = quarry_token_piece(tok, 13, true, &len); /* <0x0A> */
    assert_int_equal(len, 1);
    assert_int_equal(p[0], '\n');
    p = quarry_token_piece(tok, 15043, false, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, " Hello", 6);
    assert_null(quarry_token_piece(tok, 32000, true, &len));
    assert_null(quarry_token_piece(tok, -1, true, &len));

    /* detokenize with remove_special drops BOS and keeps the first space then */
    int32_t hello[] = {1, 15043};
    char out[32];
    quarry_error err = {0};
    assert_int_equal(quarry_detokenize(tok, hello, 2, true, false, out, sizeof out, &len, &err), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(out, " Hello", 6);
    assert_int_equal(quarry_detokenize(tok, hello, 2, false, true, out, sizeof out, &len, &err), 0);
    assert_int_equal(len, 9);
    assert_memory_equal(out, "<s> Hello", 9);
    assert_int_equal(quarry_detokenize(tok, hello, 2, false, true, out, 4, &len, &err), QUARRY_ERANGE);
    assert_int_equal(len, 9);
    int32_t bad[] = {15043, 99999};
    assert_int_equal(quarry_detokenize(tok, bad, 2, false, true, out, sizeof out, &len, &err),
                     QUARRY_EINVAL);

    /* too small an id buffer: ERANGE and the count needed */
    int32_t small[2];
    assert_int_equal(quarry_tokenize(tok, "Hello world", 11, true, false, small, 2, &n, &err),
                     QUARRY_ERANGE);
    assert_int_equal(n, 3);
    assert_int_equal(quarry_tokenize(tok, NULL, 5, true, false, small, 2, &n, &err), QUARRY_EINVAL);
    quarry_tokenizer_free(tok);

    /* GPT-2: <|endoftext|> is BOS = EOS = EOG, no BOS added by default */
    tok = load_tok(BPE_MODEL);
    assert_int_equal(quarry_tokenizer_type(tok), QUARRY_VOCAB_BPE);
    assert_int_equal(quarry_tokenizer_n_vocab(tok), 50257);
    assert_string_equal(quarry_tokenizer_pre(tok), "gpt-2");
    assert_int_equal(quarry_tokenizer_bos(tok), 50256);
    assert_int_equal(quarry_tokenizer_eos(tok), 50256);
    assert_true(quarry_tokenizer_is_eog(tok, 50256));
    assert_false(quarry_tokenizer_add_bos(tok));
    s = "Hello<|endoftext|>world";
    ids = tokenize(tok, s, strlen(s), true, true, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], 50256);
    free(ids);
    ids = tokenize(tok, s, strlen(s), true, false, &n);
    assert_true(n > 3);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(ids[i], 50256);
    free(ids);
    quarry_tokenizer_free(tok);
}

/* ---- streaming ---------------------------------------------------------------------- */

static bool valid_utf8(const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        size_t k = u[i] < 0x80 ? 1 : (u[i] & 0xE0) == 0xC0 ? 2 : (u[i] & 0xF0) == 0xE0 ? 3
                                   : (u[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (k == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((u[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

static void test_stream_split_character(void **state)
{
    (void)state;
    quarry_tokenizer *tok = load_tok(SPM_MODEL);
    /* U+1F999 (llama) is not in the vocabulary: four byte tokens */
    const char *s = " this is \xF0\x9F\xA6\x99.cpp";
    size_t n;
    int32_t *ids = tokenize(tok, s, strlen(s), false, false, &n);
    size_t first_byte = n;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == quarry_tokenizer_find(tok, "<0xF0>", 6)) {
            first_byte = i;
            break;
        }
    assert_true(first_byte + 4 < n);
    struct quarry_detok_stream st;
    quarry_detok_stream_init(&st, tok, false, true);
    char out[64], all[128];
    size_t total = 0, len;
    quarry_error err = {0};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(quarry_detok_stream_push(&st, ids[i], out, sizeof out, &len, &err), 0);
        if (i >= first_byte && i < first_byte + 3)
            assert_int_equal(len, 0); /* F0, 9F, A6 are held back */
        if (i == first_byte + 3) {
            assert_int_equal(len, 4);
            assert_memory_equal(out, "\xF0\x9F\xA6\x99", 4);
        }
        assert_true(valid_utf8(out, len));
        memcpy(all + total, out, len);
        total += len;
    }
    total += quarry_detok_stream_flush(&st, all + total);
    assert_int_equal(total, strlen(s));
    assert_memory_equal(all, s, total);

    /* too little room: nothing consumed, the size needed reported */
    quarry_detok_stream_init(&st, tok, false, false);
    int32_t hello = 15043;
    assert_int_equal(quarry_detok_stream_push(&st, hello, out, 3, &len, &err), QUARRY_ERANGE);
    assert_int_equal(len, 6);
    assert_int_equal(quarry_detok_stream_push(&st, hello, out, 6, &len, &err), 0);
    assert_memory_equal(out, " Hello", 6);
    assert_int_equal(quarry_detok_stream_push(&st, 40000, out, 6, &len, &err), QUARRY_EINVAL);

    /* a lead byte that is never completed comes out at the end as it is */
    quarry_detok_stream_init(&st, tok, false, false);
    int32_t e2 = quarry_tokenizer_find(tok, "<0xE2>", 6);
    assert_int_equal(quarry_detok_stream_push(&st, e2, out, sizeof out, &len, &err), 0);
    assert_int_equal(len, 0);
    assert_int_equal(quarry_detok_stream_flush(&st, out), 1);
    assert_int_equal((uint8_t)out[0], 0xE2);
    free(ids);
    quarry_tokenizer_free(tok);
}

/* every vector, streamed: chunks are whole characters, the total is the pieces */
static void check_stream_vectors(const char *model, const char *vectors)
{
    quarry_tokenizer *tok = load_tok(model);
    struct vectors v;
    read_vectors(vectors, &v);
    size_t held_back = 0;
    for (size_t t = 0; t < v.n; t++) {
        size_t n;
        int32_t *ids = tokenize(tok, v.text[t], v.len[t], false, false, &n);
        struct quarry_detok_stream st;
        quarry_detok_stream_init(&st, tok, true, true);
        char *all = malloc(v.len[t] + 64), out[256];
        size_t total = 0, len;
        quarry_error err = {0};
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(quarry_detok_stream_push(&st, ids[i], out, sizeof out, &len, &err), 0);
            assert_true(valid_utf8(out, len));
            size_t pl;
            quarry_token_piece(tok, ids[i], true, &pl);
            held_back += st.n_held > 0;
            memcpy(all + total, out, len);
            total += len;
        }
        assert_int_equal(quarry_detok_stream_flush(&st, out), 0);
        assert_int_equal(total, v.len[t]);
        assert_memory_equal(all, v.text[t], total);
        free(all);
        free(ids);
    }
    printf("%s: %zu pushes held bytes back\n", vectors, held_back);
    assert_true(held_back > 0); /* the vectors do split characters over tokens */
    free(v.inp_buf);
    free(v.out_buf);
    quarry_tokenizer_free(tok);
}

static void test_stream_vectors(void **state)
{
    (void)state;
    check_stream_vectors(SPM_MODEL, SPM_VECTORS);
    check_stream_vectors(BPE_MODEL, BPE_VECTORS);
}

/* ---- malformed metadata --------------------------------------------------------------- */

static char *temp_path(const char *tag)
{
    char *p = malloc(256);
    assert_non_null(p);
    snprintf(p, 256, "/tmp/test-tokenizer-%ld-%s.gguf", (long)getpid(), tag);
    return p;
}

/* Writes w to a temp file and loads its tokenizer; returns the status. */
static int load_written(gguf_writer *w, const char *tag, quarry_tokenizer **tok, quarry_error *err)
{
    char *path = temp_path(tag);
    quarry_error werr = {0};
    if (gguf_writer_write(w, path, &werr))
        fail_msg("%s", werr.msg);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    if (gguf_open(path, &f, &werr))
        fail_msg("%s", werr.msg);
    *tok = NULL;
    int rc = quarry_tokenizer_load(f, tok, err);
    if (rc)
        assert_null(*tok);
    gguf_close(f);
    unlink(path);
    free(path);
    return rc;
}

enum {
    NO_MODEL = 1 << 0, NO_TOKENS = 1 << 1, SHORT_SCORES = 1 << 2, SHORT_TYPES = 1 << 3,
    INT_SCORES = 1 << 4, DUP_TOKEN = 1 << 5, NO_MERGES = 1 << 6, INT_TOKENS = 1 << 7,
};

static const char *const mini_tokens[] = {"<unk>", "<s>", "</s>", "\342\226\201a", "b", "ab"};
static const float mini_scores[] = {0, 0, 0, -1, -2, -3};
static const int32_t mini_types[] = {2, 3, 3, 1, 1, 1};

static gguf_writer *mini_vocab(const char *model, unsigned broken)
{
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    if (!(broken & NO_MODEL))
        assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", model), 0);
    const char *toks[6];
    memcpy(toks, mini_tokens, sizeof toks);
    if (broken & DUP_TOKEN)
        toks[5] = "b";
    if (broken & INT_TOKENS)
        assert_int_equal(gguf_writer_set_array(w, "tokenizer.ggml.tokens", GGUF_TYPE_INT32, mini_types, 6), 0);
    else if (!(broken & NO_TOKENS))
        assert_int_equal(gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, 6), 0);
    if (broken & INT_SCORES)
        assert_int_equal(gguf_writer_set_array(w, "tokenizer.ggml.scores", GGUF_TYPE_INT32, mini_types, 6), 0);
    else
        assert_int_equal(gguf_writer_set_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32,
                                               mini_scores, (broken & SHORT_SCORES) ? 5 : 6), 0);
    assert_int_equal(gguf_writer_set_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32,
                                           mini_types, (broken & SHORT_TYPES) ? 4 : 6), 0);
    if (strcmp(model, "gpt2") == 0 && !(broken & NO_MERGES)) {
        const char *merges[] = {"a b"};
        assert_int_equal(gguf_writer_set_str_array(w, "tokenizer.ggml.merges", merges, 1), 0);
    }
    return w;
}

static void expect_load_error(gguf_writer *w, int code, const char *what)
{
    quarry_tokenizer *tok;
    quarry_error err = {0};
    int rc = load_written(w, "bad", &tok, &err);
    if (rc != code)
        fail_msg("%s: expected %s, got %d (%s)", what, quarry_status_name(code), rc, err.msg);
    assert_true(strlen(err.msg) > 0);
}

static void test_malformed_metadata(void **state)
{
    (void)state;
    expect_load_error(mini_vocab("llama", NO_MODEL), QUARRY_EFORMAT, "no model");
    expect_load_error(mini_vocab("llama", NO_TOKENS), QUARRY_EFORMAT, "no tokens");
    expect_load_error(mini_vocab("llama", INT_TOKENS), QUARRY_EFORMAT, "tokens not strings");
    expect_load_error(mini_vocab("llama", SHORT_SCORES), QUARRY_EFORMAT, "scores too short");
    expect_load_error(mini_vocab("llama", SHORT_TYPES), QUARRY_EFORMAT, "token types too short");
    expect_load_error(mini_vocab("llama", INT_SCORES), QUARRY_EFORMAT, "integer scores");
    expect_load_error(mini_vocab("llama", DUP_TOKEN), QUARRY_EFORMAT, "duplicate token");
    expect_load_error(mini_vocab("gpt2", NO_MERGES), QUARRY_EFORMAT, "no merges");
    expect_load_error(mini_vocab("bert", 0), QUARRY_EUNSUPPORTED, "bert");
    expect_load_error(mini_vocab("something", 0), QUARRY_EUNSUPPORTED, "unknown model");

    gguf_writer *w = mini_vocab("gpt2", 0);
    assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre"), 0);
    expect_load_error(w, QUARRY_EUNSUPPORTED, "unknown pre-tokenizer");
    w = mini_vocab("llama", 0);
    assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.bos_token_id", "1"), 0);
    expect_load_error(w, QUARRY_EFORMAT, "string bos id");
    w = mini_vocab("llama", 0);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.add_bos_token", 1), 0);
    expect_load_error(w, QUARRY_EFORMAT, "integer add_bos_token");

    /* out-of-range special ids are ignored with a warning (llama.cpp keeps the default) */
    w = mini_vocab("llama", 0);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 999), 0);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0xFFFFFFFFu), 0);
    quarry_tokenizer *tok;
    quarry_error err = {0};
    assert_int_equal(load_written(w, "badid", &tok, &err), 0);
    assert_int_equal(quarry_tokenizer_bos(tok), 1);
    assert_int_equal(quarry_tokenizer_pad(tok), QUARRY_TOKEN_NULL);
    assert_non_null(strstr(quarry_tokenizer_warnings(tok), "bos_token_id"));
    size_t n;
    int32_t *ids = tokenize(tok, "ab", 2, true, false, &n);
    /* " ab" -> "\u2581a" "b" (no "\u2581ab" token), after BOS */
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 4);
    free(ids);
    /* a byte with no byte token falls back to <unk> */
    ids = tokenize(tok, "z", 1, false, false, &n);
    assert_int_equal(n, 4); /* " z": the 3 bytes of U+2581 and 'z' */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], 0);
    free(ids);
    quarry_tokenizer_free(tok);

    /* a vocabulary too small for the default BOS: adding BOS is an error, not a crash */
    w = gguf_writer_new();
    const char *one[] = {"x"};
    assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"), 0);
    assert_int_equal(gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", one, 1), 0);
    assert_int_equal(load_written(w, "tiny", &tok, &err), 0);
    assert_int_equal(quarry_tokenizer_bos(tok), QUARRY_TOKEN_NULL);
    int32_t few[8];
    assert_int_equal(quarry_tokenize(tok, "x", 1, true, false, few, 8, &n, &err), QUARRY_EFORMAT);
    /* without BOS it works: " x" is no token, its bytes have no byte tokens, so
     * each becomes <unk>, which defaults to id 0 */
    assert_int_equal(quarry_tokenize(tok, "x", 1, false, false, few, 8, &n, &err), 0);
    assert_int_equal(n, 4);
    quarry_tokenizer_free(tok);

    /* an empty token is renamed as llama.cpp does */
    w = gguf_writer_new();
    const char *with_empty[] = {"<unk>", "", "a"};
    assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"), 0);
    assert_int_equal(gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", with_empty, 3), 0);
    assert_int_equal(load_written(w, "empty", &tok, &err), 0);
    size_t len;
    const char *t = quarry_tokenizer_token_text(tok, 1, &len);
    assert_int_equal(len, 9);
    assert_memory_equal(t, "[EMPTY_1]", 9);
    quarry_tokenizer_free(tok);
}

/* Every row of the pre-tokenizer table loads: its regexes compile. */
static void test_pre_tokenizer_table(void **state)
{
    (void)state;
    static const char *const pres[] = {
        "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "deepseek-llm",
        "deepseek-coder", "deepseek-v3", "falcon", "starcoder", "refact", "command-r", "smollm",
        "codeshell", "exaone", "minerva-7b", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat",
        "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais",
        "qwen2", "stablelm2", "megrez", "poro-chat", "bloom", "gpt3-finnish", "chatglm-bpe", "viking",
        "tekken", "chameleon"};
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        gguf_writer *w = mini_vocab("gpt2", 0);
        assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.pre", pres[i]), 0);
        quarry_tokenizer *tok;
        quarry_error err = {0};
        if (load_written(w, "pre", &tok, &err))
            fail_msg("pre-tokenizer %s: %s", pres[i], err.msg);
        assert_string_equal(quarry_tokenizer_pre(tok), pres[i]);
        /* llama 3 style rows add BOS by default; chatglm has none */
        bool bos = !strcmp(pres[i], "llama3") || !strcmp(pres[i], "llama-v3") ||
                   !strcmp(pres[i], "llama-bpe") || !strcmp(pres[i], "falcon3") ||
                   !strcmp(pres[i], "tekken") || !strcmp(pres[i], "chameleon");
        assert_int_equal(quarry_tokenizer_add_bos(tok), bos);
        if (!strcmp(pres[i], "chatglm-bpe"))
            assert_int_equal(quarry_tokenizer_bos(tok), QUARRY_TOKEN_NULL);
        size_t n;
        int32_t *ids = tokenize(tok, "ab b", 4, false, false, &n);
        free(ids);
        quarry_tokenizer_free(tok);
    }
    /* no pre key: the default row, with a warning */
    gguf_writer *w = mini_vocab("gpt2", 0);
    quarry_tokenizer *tok;
    quarry_error err = {0};
    assert_int_equal(load_written(w, "nopre", &tok, &err), 0);
    assert_string_equal(quarry_tokenizer_pre(tok), "default");
    assert_non_null(strstr(quarry_tokenizer_warnings(tok), "tokenizer.ggml.pre"));
    quarry_tokenizer_free(tok);
}

/* ---- regex engine and Unicode table ------------------------------------------------- */

/* Splits s with one regex; returns the pieces joined by '|'. */
static void split_with(const char *pattern, const char *s, char *out)
{
    quarry_regex *re;
    quarry_error err = {0};
    if (quarry_regex_compile(pattern, &re, &err))
        fail_msg("%s", err.msg);
    size_t len = strlen(s), n = 0;
    uint32_t cps[256];
    uint8_t flags[256];
    for (size_t i = 0; i < len;) {
        size_t adv;
        cps[n] = quarry_utf8_decode(s + i, len - i, &adv);
        flags[n] = quarry_unicode_flags(cps[n]);
        n++;
        i += adv;
    }
    struct quarry_regex_scratch scratch = {0};
    size_t *chunks, n_chunks, one = n;
    assert_int_equal(quarry_regex_split(re, cps, flags, &one, 1, &chunks, &n_chunks, &scratch, &err), 0);
    size_t o = 0, start = 0;
    for (size_t c = 0; c < n_chunks; c++) {
        if (c)
            out[o++] = '|';
        for (size_t i = start; i < start + chunks[c]; i++)
            o += quarry_utf8_encode(cps[i], out + o);
        start += chunks[c];
    }
    out[o] = 0;
    free(chunks);
    quarry_regex_scratch_free(&scratch);
    quarry_regex_free(re);
}

static void test_regex(void **state)
{
    (void)state;
    static const char gpt2[] =
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    static const char llama3[] =
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
        "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    char out[512];
    /* \s+(?!\S) leaves the last space to the word after it; a lone tab is a gap */
    split_with(gpt2, "Hello world's  caf\xC3\xA9 123!!\t x\n", out);
    assert_string_equal(out, "Hello| world|'s| | caf\xC3\xA9| 123|!!|\t| x|\n");
    split_with(llama3, "I'VE 12345 apples\r\n\n  x", out);
    assert_string_equal(out, "I|'VE| |123|45| apples|\r\n\n| | x");
    split_with("\\s+$", "a  ", out);
    assert_string_equal(out, "a|  ");
    split_with("[\\p{P}\\$\\+<=>\\^~\\|]+", "a+b<=>c", out);
    assert_string_equal(out, "a|+|b|<=>|c");
    split_with("(IMGIMG)((A|B|C){1,2})Z", "xIMGIMGABZIMGIMGABCZ", out);
    assert_string_equal(out, "x|IMGIMGABZ|IMGIMGABCZ");
    split_with("a{2,3}?", "aaaa", out); /* lazy: "aa" twice */
    assert_string_equal(out, "aa|aa");

    quarry_regex *re;
    quarry_error err = {0};
    static const char *const bad[] = {"(a", "a)", "[a", "\\p{Lu}", "(?i:a)", "(a*)*", "a{3,1}", "\\1", "*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (quarry_regex_compile(bad[i], &re, &err) == 0)
            fail_msg("regex '%s' compiled", bad[i]);
        assert_null(re);
    }
}

static void test_unicode(void **state)
{
    (void)state;
    assert_true(quarry_unicode_flags('A') & QUARRY_UCP_LETTER);
    assert_true(quarry_unicode_flags('7') & QUARRY_UCP_NUMBER);
    assert_true(quarry_unicode_flags(',') & QUARRY_UCP_PUNCTUATION);
    assert_true(quarry_unicode_flags('$') & QUARRY_UCP_SYMBOL);
    assert_true(quarry_unicode_flags(' ') & QUARRY_UCP_WHITESPACE);
    assert_true(quarry_unicode_flags('\n') & QUARRY_UCP_WHITESPACE);
    assert_true(quarry_unicode_flags(0xA0) & QUARRY_UCP_WHITESPACE);
    assert_true(quarry_unicode_flags(0x3000) & QUARRY_UCP_WHITESPACE);
    assert_false(quarry_unicode_flags(0x1C) & QUARRY_UCP_WHITESPACE); /* not White_Space */
    assert_false(quarry_unicode_flags(0x200B) & QUARRY_UCP_WHITESPACE);
    assert_true(quarry_unicode_flags(0x4E2D) & QUARRY_UCP_LETTER);       /* 中 */
    assert_true(quarry_unicode_flags(0x0663) & QUARRY_UCP_NUMBER);       /* Arabic-Indic 3 */
    assert_true(quarry_unicode_flags(0x0301) & QUARRY_UCP_MARK);
    assert_true(quarry_unicode_flags(0x1F600) & QUARRY_UCP_SYMBOL);      /* emoji */
    assert_true(quarry_unicode_flags(0x10FFFF) & QUARRY_UCP_CONTROL);    /* unassigned */
    assert_int_equal(quarry_unicode_flags(0x110000), 0);

    /* GPT-2's byte map is a bijection onto 256 codepoints below U+0144 */
    bool seen[0x144] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = quarry_gpt2_byte_to_cp((uint8_t)b);
        assert_true(cp < 0x144);
        assert_false(seen[cp]);
        seen[cp] = true;
        assert_int_equal(quarry_gpt2_cp_to_byte(cp), b);
    }
    assert_int_equal(quarry_gpt2_byte_to_cp(' '), 0x120);  /* Ġ */
    assert_int_equal(quarry_gpt2_byte_to_cp('\n'), 0x10A); /* Ċ */
    assert_int_equal(quarry_gpt2_cp_to_byte(0x144), -1);
    assert_int_equal(quarry_gpt2_cp_to_byte(0x20), -1);

    /* decoding: llama.cpp's rules, bad bytes become U+FFFD one at a time */
    size_t adv;
    assert_int_equal(quarry_utf8_decode("\xE2\x82\xAC", 3, &adv), 0x20AC);
    assert_int_equal(adv, 3);
    assert_int_equal(quarry_utf8_decode("\xE2\x82", 2, &adv), 0xFFFD);
    assert_int_equal(adv, 1);
    assert_int_equal(quarry_utf8_decode("\x80", 1, &adv), 0xFFFD);
    assert_int_equal(quarry_utf8_decode("\xF7\xBF\xBF\xBF", 4, &adv), 0xFFFD); /* > U+10FFFF */
    assert_int_equal(quarry_utf8_decode("\xC0\x80", 2, &adv), 0); /* overlong, accepted */
    assert_int_equal(adv, 2);
    assert_int_equal(quarry_utf8_incomplete_tail("a\xF0\x9F", 3), 2);
    assert_int_equal(quarry_utf8_incomplete_tail("a\xF0\x9F\xA6\x99", 5), 0);
    assert_int_equal(quarry_utf8_incomplete_tail("\x9F\xA6", 2), 0);
    assert_int_equal(quarry_utf8_incomplete_tail("\xE2" "a", 2), 0);
}

/* invalid UTF-8 tokenizes without error in both kinds */
static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char junk[] = "\xFF\xFE a\xC3 \xE2\x82\x80\x80\xF0\x9F\xA6";
    quarry_tokenizer *spm = load_tok(SPM_MODEL), *bpe = load_tok(BPE_MODEL);
    size_t n, len;
    int32_t *ids = tokenize(spm, junk, sizeof junk - 1, false, false, &n);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(ids[i], quarry_tokenizer_unk(spm));
    /* SPM keeps every byte, but an escaped space caught in a bad character's
     * bytes comes back as the bytes of U+2581 (llama.cpp does the same) */
    char *back = detokenize(spm, ids, n, true, &len);
    size_t k = 0;
    for (size_t i = 0; i < len; k++) {
        if (len - i >= 3 && memcmp(back + i, "\xE2\x96\x81", 3) == 0) {
            back[k] = ' ';
            i += 3;
        } else {
            back[k] = back[i++];
        }
    }
    assert_int_equal(k, sizeof junk - 1);
    assert_memory_equal(back, junk, k);
    free(back);
    free(ids);
    ids = tokenize(bpe, junk, sizeof junk - 1, false, false, &n);
    assert_true(n > 0);
    back = detokenize(bpe, ids, n, true, &len);
    assert_non_null(strstr(back, "\xEF\xBF\xBD")); /* BPE: bad bytes became U+FFFD */
    free(back);
    free(ids);
    quarry_tokenizer_free(spm);
    quarry_tokenizer_free(bpe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_vectors),
        cmocka_unit_test(test_bpe_vectors),
        cmocka_unit_test(test_spm_round_trip),
        cmocka_unit_test(test_bpe_round_trip),
        cmocka_unit_test(test_bpe_cleanup),
        cmocka_unit_test(test_greedy_prompts),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_stream_split_character),
        cmocka_unit_test(test_stream_vectors),
        cmocka_unit_test(test_malformed_metadata),
        cmocka_unit_test(test_pre_tokenizer_table),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_invalid_utf8),
    };
    return TU_RUN_GROUP(tests);
}
