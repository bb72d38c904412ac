/*
 * cli_run.c - `quarry run`: generates text from a prompt with a GGUF model
 * and streams it to stdout as it is produced (engine/generate.h does the
 * work), like llama.cpp's llama-cli in single-prompt mode. With --chat the
 * prompt is a user message rendered through the model's chat template
 * (engine/chat.h). Speeds and token counts go to stderr at the end.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"
#include "engine/cli.h"
#include "engine/generate.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "engine/tokenizer.h"
#include "kernels/types.h"

#define MAX_STOPS 16

void quarry_help_run(void)
{
    struct quarry_sampler_params d;
    quarry_sampler_params_default(&d);
    printf("usage: quarry run -m MODEL (-p PROMPT | -f FILE) [options]\n\n"
           "Generates a continuation of PROMPT with MODEL (a llama GGUF file) and streams it to\n"
           "stdout as it is produced; at the end, prompt and generation speed go to stderr.\n\n"
           "options:\n"
           "  -m, --model FILE        the GGUF model\n"
           "  -p, --prompt TEXT       the prompt\n"
           "  -f, --file FILE         read the prompt from FILE\n"
           "  -n, --n-predict N       tokens to generate at most (default -1: until the end-of-\n"
           "                          generation token or a full context)\n"
           "  -t, --threads N         threads (default: one per physical core)\n"
           "  -c, --ctx N             context size in tokens (default: the model's)\n"
           "  -b, --batch N           prompt tokens per forward pass (default 512)\n"
           "      --kv-type T         KV cache type: f16 (default), q8_0, f32\n"
           "sampling (llama.cpp's chain and defaults):\n"
           "      --temp T            temperature (default %.2f; 0 = greedy)\n"
           "      --top-k K           (default %d; 0 = off)\n"
           "      --top-p P           (default %.2f; 1 = off)\n"
           "      --min-p P           (default %.2f; 0 = off)\n"
           "      --repeat-penalty X  (default %.2f = off)\n"
           "      --repeat-last-n N   tokens the penalties look back on (default %d)\n"
           "      --frequency-penalty X, --presence-penalty X   (default 0 = off)\n"
           "  -s, --seed S            random seed (default %llu); same seed, same text\n"
           "output:\n"
           "      --stop TEXT         stop before TEXT (may be given up to %d times)\n"
           "      --ignore-eos        keep generating past end-of-generation tokens\n"
           "      --no-display-prompt do not print the prompt before the generated text\n"
           "      --parse-special     text like <s> or <|im_end|> in the prompt becomes that token\n"
           "      --special           print control tokens the model generates as text\n"
           "chat:\n"
           "      --chat              PROMPT is a user message: render it with the model's\n"
           "                          chat template (tokenizer.chat_template) and generate the\n"
           "                          assistant's answer\n"
           "      --chat-template T   use template family T (chatml, llama2, llama3, zephyr,\n"
           "                          mistral-v7, gemma, phi3, alpaca, plain, ...) or a template\n"
           "                          text to detect the family from\n"
           "      --system TEXT       a system message before the user's (with --chat)\n\n"
           "exit status: 0 ok, 1 failure (reason on stderr), 2 usage\n",
           d.temperature, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.penalty_last_n,
           (unsigned long long)d.seed, MAX_STOPS);
}

/* ---- option parsing ------------------------------------------------------- */

struct run_opts {
    const char *model, *prompt, *prompt_file;
    int32_t n_predict, n_ctx, n_batch;
    int n_threads;
    enum quarry_type kv_type;
    struct quarry_sampler_params sampling;
    const char *stops[MAX_STOPS];
    size_t n_stops;
    bool ignore_eos, display_prompt, parse_special, render_special;
    bool chat;
    const char *chat_template, *system;
};

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "quarry run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see quarry run --help)\n");
    return 2;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (!*s || *end || errno)
        return false;
    *out = v;
    return true;
}

/* Parses argv into o; returns 0 or the exit status for a usage error. */
static int parse_args(int argc, char **argv, struct run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->n_batch = 512;
    o->kv_type = QUARRY_TYPE_F16;
    o->display_prompt = true;
    quarry_sampler_params_default(&o->sampling);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* flags without a value */
        if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true;
            continue;
        } else if (!strcmp(a, "--no-display-prompt")) {
            o->display_prompt = false;
            continue;
        } else if (!strcmp(a, "--parse-special")) {
            o->parse_special = true;
            continue;
        } else if (!strcmp(a, "--special")) {
            o->render_special = true;
            continue;
        } else if (!strcmp(a, "--chat")) {
            o->chat = true;
            continue;
        }
        if (a[0] != '-')
            return usage("unexpected argument '%s'", a);
        if (i + 1 >= argc)
            return usage("option '%s' needs a value", a);
        const char *v = argv[++i];
        long n;
        float x;
#define IS(s) (!strcmp(a, s))
        if (IS("-m") || IS("--model")) {
            o->model = v;
        } else if (IS("-p") || IS("--prompt")) {
            o->prompt = v;
        } else if (IS("-f") || IS("--file")) {
            o->prompt_file = v;
        } else if (IS("-n") || IS("--n-predict")) {
            if (!parse_int(v, -1, INT32_MAX, &n))
                return usage("-n needs a token count (-1 = no limit), not '%s'", v);
            o->n_predict = (int32_t)n;
        } else if (IS("-t") || IS("--threads")) {
            if (!parse_int(v, 1, QUARRY_THREADPOOL_MAX, &n))
                return usage("-t needs a thread count from 1, not '%s'", v);
            o->n_threads = (int)n;
        } else if (IS("-c") || IS("--ctx") || IS("--ctx-size")) {
            if (!parse_int(v, 1, INT32_MAX, &n))
                return usage("--ctx needs a positive token count, not '%s'", v);
            o->n_ctx = (int32_t)n;
        } else if (IS("-b") || IS("--batch")) {
            if (!parse_int(v, 1, INT32_MAX, &n))
                return usage("--batch needs a positive token count, not '%s'", v);
            o->n_batch = (int32_t)n;
        } else if (IS("--kv-type")) {
            int t = quarry_type_from_name(v);
            if (t != QUARRY_TYPE_F16 && t != QUARRY_TYPE_Q8_0 && t != QUARRY_TYPE_F32)
                return usage("--kv-type must be f16, q8_0 or f32, not '%s'", v);
            o->kv_type = (enum quarry_type)t;
        } else if (IS("--temp") || IS("--temperature")) {
            if (!parse_float(v, &x))
                return usage("--temp needs a number, not '%s'", v);
            o->sampling.temperature = x;
        } else if (IS("--top-k")) {
            if (!parse_int(v, 0, INT32_MAX, &n))
                return usage("--top-k needs a count >= 0, not '%s'", v);
            o->sampling.top_k = (int32_t)n;
        } else if (IS("--top-p")) {
            if (!parse_float(v, &x))
                return usage("--top-p needs a number, not '%s'", v);
            o->sampling.top_p = x;
        } else if (IS("--min-p")) {
            if (!parse_float(v, &x))
                return usage("--min-p needs a number, not '%s'", v);
            o->sampling.min_p = x;
        } else if (IS("--repeat-penalty")) {
            if (!parse_float(v, &x))
                return usage("--repeat-penalty needs a number, not '%s'", v);
            o->sampling.repeat_penalty = x;
        } else if (IS("--repeat-last-n")) {
            if (!parse_int(v, 0, INT32_MAX, &n))
                return usage("--repeat-last-n needs a count >= 0, not '%s'", v);
            o->sampling.penalty_last_n = (int32_t)n;
        } else if (IS("--frequency-penalty")) {
            if (!parse_float(v, &x))
                return usage("--frequency-penalty needs a number, not '%s'", v);
            o->sampling.frequency_penalty = x;
        } else if (IS("--presence-penalty")) {
            if (!parse_float(v, &x))
                return usage("--presence-penalty needs a number, not '%s'", v);
            o->sampling.presence_penalty = x;
        } else if (IS("-s") || IS("--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 0);
            if (!*v || *end || errno || v[0] == '-')
                return usage("--seed needs a non-negative number, not '%s'", v);
            o->sampling.seed = s;
        } else if (IS("--stop")) {
            if (!*v)
                return usage("--stop needs a non-empty text%s", "");
            if (o->n_stops == MAX_STOPS)
                return usage("at most %s --stop strings", "16");
            o->stops[o->n_stops++] = v;
        } else if (IS("--chat-template")) {
            o->chat_template = v;
        } else if (IS("--system")) {
            o->system = v;
        } else {
            return usage("unknown option '%s'", a);
        }
#undef IS
    }
    if (!o->model)
        return usage("-m MODEL is required%s", "");
    if (!o->prompt == !o->prompt_file)
        return usage("give the prompt with one of -p or -f%s", "");
    if ((o->chat_template || o->system) && !o->chat)
        return usage("--chat-template and --system go with --chat%s", "");
    quarry_error err = {0};
    if (quarry_sampler_params_check(&o->sampling, &err) != 0)
        return usage("%s", err.msg);
    return 0;
}

/* ---- the prompt ---------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        char *b = realloc(buf, 2 * cap + 1);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    if (buf && ferror(fp)) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

/* Renders the user message (and system message) with the chosen template;
 * returns the malloc'd prompt text or NULL (message printed). */
static char *chat_prompt(const struct run_opts *o, const gguf_file *f, const char *user)
{
    struct gguf_str tmpl = {0, NULL};
    quarry_error err = {0};
    const bool has_tmpl = gguf_get_str(f, "tokenizer.chat_template", &tmpl, NULL) == 0;
    struct quarry_chat_choice choice;
    if (quarry_chat_select(has_tmpl ? tmpl.data : NULL, has_tmpl ? tmpl.len : 0,
                           o->chat_template, &choice, &err) != 0) {
        fprintf(stderr, "quarry run: --chat-template: %s\n", err.msg);
        return NULL;
    }
    if (choice.fallback) {
        if (!has_tmpl)
            fprintf(stderr, "quarry run: the model has no chat template; using the plain "
                            "\"User: / Assistant:\" format\n");
        else if (choice.unsupported)
            fprintf(stderr, "quarry run: the model's chat template is of the %s family, which "
                            "quarry does not render; using the plain format\n",
                    choice.unsupported);
        else
            fprintf(stderr, "quarry run: the model's chat template is not one quarry "
                            "recognises; using the plain format\n");
    }
    struct quarry_chat_message msgs[2];
    size_t n = 0;
    if (o->system)
        msgs[n++] = (struct quarry_chat_message){"system", o->system};
    msgs[n++] = (struct quarry_chat_message){"user", user};
    char *text = NULL;
    size_t len;
    if (quarry_chat_render(choice.tmpl, msgs, n, true, &text, &len, &err) != 0) {
        fprintf(stderr, "quarry run: chat template: %s\n", err.msg);
        return NULL;
    }
    return text;
}

/* Prints the prompt as the model reads it back: without a leading BOS, and
 * without the space SPM vocabularies put before the first word (llama.cpp's
 * detokenizer keeps that space when it removes the BOS itself). */
static void display_prompt(const quarry_tokenizer *tok, const int32_t *ids, int32_t n)
{
    if (n > 0 && ids[0] == quarry_tokenizer_bos(tok)) {
        ids++;
        n--;
    }
    size_t len = 0;
    if (quarry_detokenize(tok, ids, (size_t)n, true, false, NULL, 0, &len, NULL) != QUARRY_ERANGE)
        return; /* nothing to show */
    char *text = malloc(len);
    if (text && quarry_detokenize(tok, ids, (size_t)n, true, false, text, len, &len, NULL) == 0)
        fwrite(text, 1, len, stdout);
    free(text);
}

static int print_piece(void *user, const struct quarry_gen_piece *p)
{
    (void)user;
    if (p->len) {
        fwrite(p->text, 1, p->len, stdout);
        fflush(stdout);
    }
    return ferror(stdout) ? 1 : 0; /* stdout closed (e.g. a pipe to head): stop */
}

/* ---- the command ---------------------------------------------------------- */

int quarry_cmd_run(int argc, char **argv)
{
    struct run_opts o;
    int status = parse_args(argc, argv, &o);
    if (status)
        return status;

    status = 1;
    quarry_error err = {0};
    char *file_text = NULL, *chat_text = NULL;
    quarry_model *model = NULL;
    quarry_tokenizer *tok = NULL;
    quarry_threadpool *pool = NULL;
    quarry_context *ctx = NULL;
    quarry_gen *gen = NULL;

    const char *prompt = o.prompt;
    size_t prompt_len = prompt ? strlen(prompt) : 0;
    if (o.prompt_file) {
        file_text = read_file(o.prompt_file, &prompt_len);
        if (!file_text) {
            fprintf(stderr, "quarry run: cannot read the prompt file '%s': %s\n", o.prompt_file,
                    strerror(errno));
            goto done;
        }
        prompt = file_text;
    }
    if (quarry_model_open(o.model, &model, &err) ||
        quarry_tokenizer_load(model->own_file, &tok, &err)) {
        fprintf(stderr, "quarry run: %s\n", err.msg);
        goto done;
    }
    if (o.chat) {
        if (memchr(prompt, 0, prompt_len)) {
            fprintf(stderr, "quarry run: the prompt contains a NUL byte\n");
            goto done;
        }
        if (!(chat_text = chat_prompt(&o, model->own_file, prompt)))
            goto done;
        prompt = chat_text;
        prompt_len = strlen(chat_text);
    }
    if (quarry_threadpool_new(o.n_threads, &pool, &err)) {
        fprintf(stderr, "quarry run: %s\n", err.msg);
        goto done;
    }
    struct quarry_context_params cp;
    quarry_context_params_default(&cp);
    cp.n_ctx = o.n_ctx;
    cp.kv_type = o.kv_type;
    cp.pool = pool;
    if (quarry_context_new(model, &cp, &ctx, &err)) {
        fprintf(stderr, "quarry run: %s\n", err.msg);
        goto done;
    }

    struct quarry_gen_params gp;
    quarry_gen_params_default(&gp);
    gp.sampling = o.sampling;
    gp.max_tokens = o.n_predict;
    gp.stops = o.stops;
    gp.n_stops = o.n_stops;
    gp.parse_special = o.parse_special || o.chat; /* templates write control tokens as text */
    gp.render_special = o.render_special;
    gp.ignore_eos = o.ignore_eos;
    gp.n_batch = o.n_batch;
    if (quarry_gen_new(model, tok, ctx, 0, &gp, print_piece, NULL, &gen, &err) ||
        quarry_gen_start_text(gen, prompt, prompt_len, &err)) {
        fprintf(stderr, "quarry run: %s\n", err.msg);
        goto done;
    }
    if (o.display_prompt && !o.chat) {
        int32_t n;
        const int32_t *ids = quarry_gen_prompt(gen, &n);
        display_prompt(tok, ids, n);
        fflush(stdout);
    }
    const int rc = quarry_gen_run(gen, &err);
    putchar('\n');
    fflush(stdout);
    const struct quarry_gen_stats *st = quarry_gen_stats(gen);
    if (rc) {
        fprintf(stderr, "quarry run: %s\n", err.msg);
        goto done;
    }
    /* Speeds: the prompt rate counts every prompt token over the time until
     * the first token was sampled; the generation rate counts the n_gen - 1
     * tokens that followed the first one over the time they took. */
    const int n_threads = quarry_threadpool_size(pool);
    fprintf(stderr, "\nquarry run: prompt     %6d tokens in %9.2f ms = %8.2f tok/s\n",
            st->n_prompt, 1e3 * st->t_prompt_s,
            st->t_prompt_s > 0 ? st->n_prompt / st->t_prompt_s : 0.0);
    if (st->n_gen > 1)
        fprintf(stderr, "quarry run: generation %6d tokens in %9.2f ms = %8.2f tok/s "
                        "(after the first)\n",
                st->n_gen - 1, 1e3 * st->t_gen_s,
                st->t_gen_s > 0 ? (st->n_gen - 1) / st->t_gen_s : 0.0);
    fprintf(stderr, "quarry run: %d tokens generated, %d thread%s, finish: %s%s\n", st->n_gen,
            n_threads, n_threads == 1 ? "" : "s", quarry_finish_name(st->finish),
            st->context_full ? " (context full)" : "");
    status = st->finish == QUARRY_FINISH_CANCELLED && ferror(stdout) ? 1 : 0;
done:
    quarry_gen_free(gen);
    quarry_context_free(ctx);
    quarry_threadpool_free(pool);
    quarry_tokenizer_free(tok);
    quarry_model_free(model);
    free(chat_text);
    free(file_text);
    return status;
}
