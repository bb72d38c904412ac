/*
 * cli_tokenize.c - `quarry tokenize`: shows how a model's tokenizer splits a
 * text, like llama.cpp's llama-tokenize: one line per token with its id and
 * piece, or with --ids just the id list ("[1, 15043]"). Only the tokenizer
 * metadata of the GGUF file is read, so vocab-only files work too.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"

void quarry_help_tokenize(void)
{
    printf("usage: quarry tokenize -m MODEL (-p TEXT | -f FILE | --stdin) [options]\n\n"
           "Tokenizes TEXT with MODEL's tokenizer (from its GGUF metadata) and prints one\n"
           "line per token: the id and the piece of text it stands for.\n\n"
           "options:\n"
           "  -m, --model FILE     the GGUF file (a vocab-only file is enough)\n"
           "  -p, --prompt TEXT    the text to tokenize\n"
           "  -f, --file FILE      read the text from FILE (all of it, newlines included)\n"
           "      --stdin          read the text from standard input\n"
           "      --ids            print only the ids, as [1, 2, 3]\n"
           "      --no-bos         do not add BOS/EOS even if the model asks for them\n"
           "      --parse-special  text like <s> or <|im_end|> becomes that special token\n"
           "      --show-count     print the number of tokens at the end\n\n"
           "exit status: 0 ok, 1 failure (reason on stderr), 2 usage\n");
}

static char *read_all(FILE *fp, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(fp)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Writes a piece; bytes that are not valid UTF-8 are shown as \xNN. Returns
 * false if there were any. */
static bool print_piece(const char *p, size_t len)
{
    bool valid = true;
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0; i < len;) {
        size_t k = u[i] < 0x80 ? 1 : (u[i] & 0xE0) == 0xC0 ? 2 : (u[i] & 0xF0) == 0xE0 ? 3
                                   : (u[i] & 0xF8) == 0xF0 ? 4 : 0;
        bool ok = k > 0 && i + k <= len;
        for (size_t j = 1; ok && j < k; j++)
            ok = (u[i + j] & 0xC0) == 0x80;
        if (!ok) {
            printf("\\x%02x", u[i]);
            valid = false;
            i++;
            continue;
        }
        fwrite(p + i, 1, k, stdout);
        i += k;
    }
    return valid;
}

int quarry_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool use_stdin = false, ids_only = false, no_bos = false, parse_special = false;
    bool show_count = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_next = i + 1 < argc;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_next) {
            model = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has_next) {
            prompt = argv[++i];
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has_next) {
            file = argv[++i];
        } else if (!strcmp(a, "--stdin")) {
            use_stdin = true;
        } else if (!strcmp(a, "--ids")) {
            ids_only = true;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = true;
        } else if (!strcmp(a, "--show-count")) {
            show_count = true;
        } else {
            fprintf(stderr, "quarry tokenize: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!model || (!!prompt + !!file + use_stdin) != 1) {
        fprintf(stderr, "quarry tokenize: need -m MODEL and exactly one of -p, -f, --stdin "
                        "(see --help)\n");
        return 2;
    }

    char *text = NULL;
    size_t len = 0;
    if (prompt) {
        len = strlen(prompt);
    } else {
        FILE *fp = use_stdin ? stdin : fopen(file, "rb");
        if (!fp) {
            fprintf(stderr, "quarry tokenize: cannot open '%s'\n", file);
            return 1;
        }
        text = read_all(fp, &len);
        if (fp != stdin)
            fclose(fp);
        if (!text) {
            fprintf(stderr, "quarry tokenize: cannot read '%s'\n", use_stdin ? "stdin" : file);
            return 1;
        }
    }

    int status = 1;
    gguf_file *f = NULL;
    quarry_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    quarry_error err = {0};
    if (gguf_open(model, &f, &err) || quarry_tokenizer_load(f, &tok, &err)) {
        fprintf(stderr, "quarry tokenize: %s\n", err.msg);
        goto done;
    }
    const char *src = prompt ? prompt : text;
    size_t n = 0;
    int rc = quarry_tokenize(tok, src, len, !no_bos, parse_special, NULL, 0, &n, &err);
    if (rc == QUARRY_ERANGE) {
        ids = malloc(n * sizeof *ids);
        rc = ids ? quarry_tokenize(tok, src, len, !no_bos, parse_special, ids, n, &n, &err)
                 : quarry_errorf(&err, QUARRY_ENOMEM, "out of memory");
    }
    if (rc) {
        fprintf(stderr, "quarry tokenize: %s\n", err.msg);
        goto done;
    }
    if (ids_only)
        putchar('[');
    for (size_t i = 0; i < n; i++) {
        if (ids_only) {
            printf(i ? ", %d" : "%d", ids[i]);
            continue;
        }
        size_t pl;
        const char *piece = quarry_token_piece(tok, ids[i], true, &pl);
        printf("%6d -> '", ids[i]);
        bool valid = print_piece(piece, pl);
        printf(valid ? "'\n" : "' (not valid UTF-8 on its own)\n");
    }
    if (ids_only)
        printf("]\n");
    if (show_count)
        printf("Total number of tokens: %zu\n", n);
    status = 0;
done:
    free(ids);
    free(text);
    quarry_tokenizer_free(tok);
    gguf_close(f);
    return status;
}
