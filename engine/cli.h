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

#endif
