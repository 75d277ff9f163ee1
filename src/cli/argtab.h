/* argtab.h - the table of every command's options, read once before a
 * command's own parser runs: the spellings users bring from llama.cpp become
 * ours, flags with no meaning here (GPU offload, NUMA modes, warmup) are
 * taken out with one line on stderr, and a mistyped option, a missing value
 * or an integer out of range gets a one-line message ("did you mean") instead
 * of the whole usage.  The table also drives `--help-all`, the bash
 * completion (`moestream --list-options CMD`) and tests/cli_flags.sh, which
 * checks that every option of the table is in its command's --help and
 * every option of a --help is in the table: a new option goes into both.
 * Owns: argtab_* only; writes messages to stderr, nothing else. */
#ifndef MS_ARGTAB_H
#define MS_ARGTAB_H

#include <stdio.h>

/* Rewrites argv for command cmd (the name after "moestream"; argv[0] is the
 * command name) into *out_argv (malloc'd, the caller frees the array; its
 * strings are argv's or static) and *out_argc.
 * Returns 0, or 2 (bad usage, message printed). Unknown commands pass through. */
int argtab_prepare(const char *cmd, int argc, char **argv, int *out_argc, char ***out_argv);

/* Prints the options command cmd takes, one spelling per line (every alias
 * too), for shell completion and the help test.  Returns 0, or 2 if cmd is
 * not a command. */
int argtab_list(FILE *f, const char *cmd);

#endif
