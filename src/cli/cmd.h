/* cmd.h - the subcommands of the moestream binary, one file each
 * (src/cli/cmd_<name>.c; serve in src/server/; synth, quantize, repack, replay, perplexity, imatrix in src/tools/).  Each takes the arguments after its name and returns
 * the process exit status: 0 success, 1 error, 2 bad usage. */
#ifndef MS_CMD_H
#define MS_CMD_H

int cmd_eval(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_repack(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);

#endif
