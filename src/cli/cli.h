/* Shared helpers of the baimo subcommands: argument parsing and error reporting.
 * Only src/cli/ prints and chooses exit codes. */
#ifndef BAIMO_CLI_H
#define BAIMO_CLI_H

#include "baimo/base.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Every subcommand: int cmd_<name>(int argc, char **argv), argv[0] = subcommand name. */
#define CMD(fn, name) int cmd_##fn(int argc, char **argv);
#include "cmds.h"
#undef CMD

/* Prints "baimo <cmd>: <msg>" to stderr and returns exit code 1. */
int cli_fail(const char *cmd, const bm_err *err);
int cli_failf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option parsing: each returns true and advances *i when argv[*i] is the option (long or
 * short form; short may be NULL). Values are validated; on a bad value they print an error
 * and set *bad. */
bool cli_opt_str(int argc, char **argv, int *i, const char *lng, const char *shrt,
                 const char **out, bool *bad);
bool cli_opt_int(int argc, char **argv, int *i, const char *lng, const char *shrt, int64_t lo,
                 int64_t hi, int64_t *out, bool *bad);
bool cli_opt_float(int argc, char **argv, int *i, const char *lng, const char *shrt, double lo,
                   double hi, double *out, bool *bad);
bool cli_opt_flag(char **argv, int i, const char *lng, const char *shrt);

/* Parses "1,2,3" into a malloc'd array (free()). Returns false with a message on bad input. */
bool cli_parse_ids(const char *s, int32_t **ids, size_t *n, char *msg, size_t msg_cap);

#endif
