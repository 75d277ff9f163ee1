/* main.c - the moestream binary: dispatches to a subcommand (src/cli/cmd_*.c, src/server/cmd_serve.c, src/tools/cmd_*.c).
 * Only main-level code turns errors into exit statuses. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"eval", cmd_eval, "evaluate token ids, write logits, greedy-decode"},
    {"inspect", cmd_inspect, "show metadata, tensor types, sizes and the memory plan"},
    {"synth", cmd_synth, "write a random-weight DeepSeek-shaped GGUF"},
    {"quantize", cmd_quantize, "quantize a GGUF (llama-quantize's types, mixes and bytes)"},
    {"tokenize", cmd_tokenize, "print the token ids of stdin as JSON"},
    {"run", cmd_run, "generate a reply to one prompt"},
    {"batch", cmd_batch, "JSONL requests in (OpenAI batch format), JSONL results out, resumable"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server (SSE streaming, /health, /metrics)"},
    {"chat", cmd_chat, "interactive conversation (readline, streaming, Ctrl-C stops a reply)"},
    {"replay", cmd_replay, "replay recorded expert routing against cache policies"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: moestream COMMAND [options]   (moestream COMMAND --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

/* A standard descriptor started closed (`<&-`) would be taken by the next
 * open(): the model file would become stdin and be read as prompts.  Put
 * /dev/null there first. */
static void guard_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int nf = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nf >= 0 && nf != fd) { /* lower ones are open, so this is rare */
            dup2(nf, fd);
            close(nf);
        }
    }
}

int main(int argc, char **argv)
{
    guard_std_fds();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "moestream: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
