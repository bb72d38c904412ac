/*
 * cli.h - the `quarry` command-line front end: one function per subcommand,
 * each in engine/cli_<name>.c, listed in the table in engine/main.c.
 * A command gets argv with argv[0] = its own name, prints its own --help,
 * and returns the process exit status (0 ok, 1 failure, 2 usage error).
 */
#ifndef QUARRY_CLI_H
#define QUARRY_CLI_H

struct quarry_command {
    const char *name;
    const char *summary;                 /* one line for `quarry --help` */
    int (*run)(int argc, char **argv);
    void (*help)(void);                  /* full usage, for --help and `quarry help NAME` */
};

int quarry_cmd_info(int argc, char **argv);
void quarry_help_info(void);
int quarry_cmd_bench(int argc, char **argv); void quarry_help_bench(void);
int quarry_cmd_quantize(int argc, char **argv); void quarry_help_quantize(void);
int quarry_cmd_synth(int argc, char **argv); void quarry_help_synth(void);
int quarry_cmd_tokenize(int argc, char **argv); void quarry_help_tokenize(void);
int quarry_cmd_run(int argc, char **argv); void quarry_help_run(void);
int quarry_cmd_bench_model(int argc, char **argv); void quarry_help_bench_model(void); /* `quarry bench model` */
int quarry_cmd_bench_gate_workload(int argc, char **argv); void quarry_help_bench_gate_workload(void); /* cli_bench_gate.c */
int quarry_cmd_bench_gate_check(int argc, char **argv); void quarry_help_bench_gate_check(void); /* cli_bench_gate.c */
int quarry_cmd_bench_all(int argc, char **argv); void quarry_help_bench_all(void); /* cli_bench_suite.c */
int quarry_cmd_bench_compare(int argc, char **argv); void quarry_help_bench_compare(void); /* cli_bench_suite.c */
int quarry_cmd_bench_import(int argc, char **argv); void quarry_help_bench_import(void); /* cli_bench_suite.c */

int quarry_cmd_serve(int argc, char **argv); void quarry_help_serve(void);
#endif
