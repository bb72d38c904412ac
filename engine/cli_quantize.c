/*
 * cli_quantize.c - `quarry quantize IN OUT TYPE`: converts an F32/F16/BF16
 * GGUF model to another type or one of llama.cpp's mixtures (Q4_K_M, ...),
 * printing one progress line per tensor on stderr. The work is done by
 * quarry_quantize_file() (engine/quantize.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/cli.h"
#include "engine/quantize.h"

void quarry_help_quantize(void)
{
    char types[512];
    quarry_ftype_list(types, sizeof types);
    printf("usage: quarry quantize IN OUT TYPE [--threads N]\n\n"
           "Converts the GGUF model IN (F32, F16 or BF16 weights) to TYPE and writes OUT.\n"
           "TYPE is a llama.cpp file type: %s\n"
           "(Q3_K, Q4_K, Q5_K mean the _M mixtures, as in llama-quantize).\n\n"
           "Mixtures follow llama.cpp's rules: output.weight gets Q6_K, and in the _M mixes\n"
           "attn_v and ffn_down get more bits in some layers; 1-D tensors (norms) keep their\n"
           "type. Tensors use ggml's reference quantizers (no importance matrix), so they hold\n"
           "the same bytes as llama-quantize's. A tensor whose rows do not fit the type's block\n"
           "size falls back to a type that fits (noted in the progress line).\n"
           "Metadata is copied; general.file_type and general.quantization_version are set.\n\n"
           "options:\n"
           "  --threads N   worker threads (default: one per physical core)\n\n"
           "exit status: 0 written, 1 failed (reason on stderr), 2 usage\n",
           types);
}

static void progress(void *user, const struct quarry_quant_progress *p)
{
    (void)user;
    const struct quarry_plan_tensor *t = p->tensor;
    char shape[96];
    int len = snprintf(shape, sizeof shape, "%" PRIu64, t->ne[0]);
    for (uint32_t d = 1; d < t->n_dims && len > 0 && (size_t)len < sizeof shape; d++)
        len += snprintf(shape + len, sizeof shape - (size_t)len, " x %" PRIu64, t->ne[d]);
    const char *src = quarry_type_info(t->src_type)->name;
    const char *dst = quarry_type_info(t->dst_type)->name;
    fprintf(stderr, "[%4zu/%4zu] %-32s [%-16s] %5s -> %s", p->index + 1, p->count, t->name,
            shape, src, p->copied ? "(copied)" : dst);
    if (t->fallback)
        fprintf(stderr, "  (fallback: %s needs rows of %d)", quarry_type_info(t->wanted)->name,
                quarry_type_info(t->wanted)->block_size);
    fputc('\n', stderr);
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int quarry_cmd_quantize(int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0, n_threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 || strcmp(argv[i], "-t") == 0) {
            char *end;
            if (i + 1 >= argc || (n_threads = (int)strtol(argv[i + 1], &end, 10)) <= 0 || *end) {
                fprintf(stderr, "quarry quantize: --threads needs a positive number\n");
                return 2;
            }
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "quarry quantize: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            fprintf(stderr, "quarry quantize: too many arguments (see --help)\n");
            return 2;
        }
    }
    if (n_pos != 3) {
        fprintf(stderr, "usage: quarry quantize IN OUT TYPE [--threads N] (see --help)\n");
        return 2;
    }
    const int ftype = quarry_ftype_from_name(pos[2]);
    if (ftype < 0) {
        char types[512];
        quarry_ftype_list(types, sizeof types);
        fprintf(stderr, "quarry quantize: unknown type '%s' (one of: %s)\n", pos[2], types);
        return 2;
    }
    struct quarry_quantize_params params = {ftype, n_threads, progress, NULL};
    quarry_error err = {0};
    int rc = quarry_quantize_file(pos[0], pos[1], &params, &err);
    if (rc) {
        fprintf(stderr, "quarry quantize: %s\n", err.msg[0] ? err.msg : quarry_status_name(rc));
        return 1;
    }
    const long long in = file_size(pos[0]), out = file_size(pos[1]);
    fprintf(stderr, "quarry quantize: wrote %s (%s): %.2f MiB -> %.2f MiB\n", pos[1],
            quarry_ftype_name(ftype), (double)in / 1048576.0, (double)out / 1048576.0);
    return 0;
}
