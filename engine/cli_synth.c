/*
 * cli_synth.c - `quarry synth`: writes a random-weight llama model of a named
 * or given shape, in any file type quarry quantize produces, with the
 * tokenizer of a real GGUF (quarry_synth() in engine/synth.c does the work).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/cli.h"
#include "engine/synth.h"

void quarry_help_synth(void)
{
    char types[512];
    quarry_ftype_list(types, sizeof types);
    printf("usage: quarry synth (--shape NAME | --dims SPEC) --type TYPE --vocab-from FILE\n"
           "                    -o OUT [--seed S] [--std X] [--threads N]\n\n"
           "Writes a llama model with random weights (N(0, X^2), X = 0.02 by default; norms 1)\n"
           "and the tokenizer metadata of FILE, so it loads in quarry and in llama.cpp.\n"
           "The same seed gives the same file.\n\n"
           "  --shape NAME     ");
    for (const char *const *n = quarry_synth_shape_names(); *n; n++)
        printf("%s%s", n == quarry_synth_shape_names() ? "" : ", ", *n);
    printf("\n"
           "  --dims SPEC      embd=N,layers=N,heads=N[,kv_heads=N],ff=N[,vocab=N][,ctx=N]\n"
           "  --type TYPE      %s\n"
           "                   (mixtures get llama-quantize's per-tensor types)\n"
           "  --vocab-from F   GGUF whose tokenizer.* keys are copied; its token count is the\n"
           "                   vocabulary size (a shape's own vocabulary must match it)\n"
           "  -o OUT           output file\n"
           "  --seed S         random seed (default 1)\n"
           "  --std X          standard deviation of the weights (default 0.02)\n"
           "  --threads N      worker threads (default: one per physical core)\n\n"
           "exit status: 0 written, 1 failed (reason on stderr), 2 usage\n",
           types);
}

static void progress(void *user, const struct quarry_quant_progress *p)
{
    (void)user;
    const struct quarry_plan_tensor *t = p->tensor;
    fprintf(stderr, "[%4zu/%4zu] %-32s [%" PRIu64, p->index + 1, p->count, t->name, t->ne[0]);
    if (t->n_dims > 1)
        fprintf(stderr, " x %" PRIu64, t->ne[1]);
    fprintf(stderr, "] %s", quarry_type_info(t->dst_type)->name);
    if (t->fallback)
        fprintf(stderr, "  (fallback: %s needs rows of %d)", quarry_type_info(t->wanted)->name,
                quarry_type_info(t->wanted)->block_size);
    fputc('\n', stderr);
}

static int usage(const char *msg, const char *arg)
{
    fprintf(stderr, "quarry synth: %s%s%s (see --help)\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

int quarry_cmd_synth(int argc, char **argv)
{
    const char *shape = NULL, *dims = NULL, *type = NULL, *vocab = NULL, *out = NULL;
    uint64_t seed = 1;
    float std = 0.02f;
    int n_threads = 0;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--shape") == 0 && v)
            shape = v;
        else if (strcmp(a, "--dims") == 0 && v)
            dims = v;
        else if (strcmp(a, "--type") == 0 && v)
            type = v;
        else if (strcmp(a, "--vocab-from") == 0 && v)
            vocab = v;
        else if (strcmp(a, "-o") == 0 && v)
            out = v;
        else if (strcmp(a, "--seed") == 0 && v) {
            seed = strtoull(v, &end, 0);
            if (*end || !*v)
                return usage("--seed needs a number, not", v);
        } else if (strcmp(a, "--std") == 0 && v) {
            std = strtof(v, &end);
            if (*end || !*v || !(std > 0.0f && std < 1e6f))
                return usage("--std needs a positive number, not", v);
        } else if ((strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0) && v) {
            n_threads = (int)strtol(v, &end, 10);
            if (*end || n_threads <= 0)
                return usage("--threads needs a positive number, not", v);
        } else if (a[0] == '-')
            return usage(v ? "unknown option" : "missing value after", a);
        else
            return usage("unexpected argument", a);
    }
    if (!shape == !dims)
        return usage("give one of --shape or --dims", NULL);
    if (!type || !vocab || !out)
        return usage("--type, --vocab-from and -o are required", NULL);

    struct quarry_synth_params p = {0};
    quarry_error err = {0};
    if (shape && quarry_synth_shape_named(shape, &p.shape) != 0)
        return usage("unknown shape", shape);
    if (dims && quarry_synth_parse_dims(dims, &p.shape, &err) != 0)
        return usage(err.msg, NULL);
    p.ftype = quarry_ftype_from_name(type);
    if (p.ftype < 0)
        return usage("unknown type", type);
    p.vocab_from = vocab;
    p.out_path = out;
    p.seed = seed;
    p.weight_std = std;
    p.n_threads = n_threads;
    p.progress = progress;
    if (quarry_synth(&p, &err) != 0) {
        fprintf(stderr, "quarry synth: %s\n", err.msg);
        return 1;
    }
    struct stat st;
    const double mib = stat(out, &st) == 0 ? (double)st.st_size / 1048576.0 : 0.0;
    fprintf(stderr, "quarry synth: wrote %s (%s, %s): %.2f MiB\n", out, p.shape.name,
            quarry_ftype_name(p.ftype), mib);
    return 0;
}
