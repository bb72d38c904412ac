/*
 * main.c - entry point of the `quarry` binary: dispatches to subcommands.
 * Adding a command: write engine/cli_<name>.c, declare it in cli.h, add a row
 * to the table below.
 */
#include <stdio.h>
#include <string.h>

#include "engine/cli.h"
#include "kernels/kernels.h"

static const struct quarry_command commands[] = {
    {"info", "print a GGUF file's metadata, tensors and totals (--isa: CPU kernels)",
     quarry_cmd_info, quarry_help_info},
    {"bench", "benchmarks: kernels, model (pp/tg), attention, the suite, compare, import, gate", quarry_cmd_bench, quarry_help_bench},
    {"quantize", "convert a GGUF model to another type or mixture (Q4_K_M, ...)", quarry_cmd_quantize, quarry_help_quantize},
    {"synth", "write a random-weight llama model of a given shape and type", quarry_cmd_synth, quarry_help_synth},
    {"tokenize", "show how a model's tokenizer splits a text into token ids", quarry_cmd_tokenize, quarry_help_tokenize},
    {"run", "generate text from a prompt, streamed to stdout (--chat: a chat turn)", quarry_cmd_run, quarry_help_run},
    {"serve", "serve the OpenAI-compatible HTTP API (chat, completions, metrics, chat page)", quarry_cmd_serve, quarry_help_serve},
};
static const size_t n_commands = sizeof commands / sizeof commands[0];

static void print_usage(FILE *out)
{
    fprintf(out, "quarry - a research engine for running and measuring LLM inference\n\n"
                 "usage: quarry COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < n_commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "help", "show help for a command: quarry help COMMAND");
    fprintf(out, "\nRun `quarry COMMAND --help` for a command's options.\n");
}

static const struct quarry_command *find_command(const char *name)
{
    for (size_t i = 0; i < n_commands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            print_usage(stdout);
            return 0;
        }
        const struct quarry_command *cmd = find_command(argv[2]);
        if (!cmd) {
            fprintf(stderr, "quarry: unknown command '%s' (see quarry --help)\n", argv[2]);
            return 2;
        }
        cmd->help();
        return 0;
    }
    const struct quarry_command *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "quarry: unknown command '%s' (see quarry --help)\n", name);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cmd->help();
            return 0;
        }
        if (strcmp(argv[i], "--") == 0)
            break;
    }
    /* Set up the process-wide tables (kernels, OpenBLAS) now, while this is
     * the only thread: the BLAS loader may set environment variables. */
    (void)quarry_isa_detected();
    return cmd->run(argc - 1, argv + 1);
}
