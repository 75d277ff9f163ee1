/* main.c - the moestream binary: dispatches to a subcommand (src/cli/cmd_*.c, src/server/cmd_serve.c,
 * src/tools/cmd_*.c)
 * after the option table (argtab.c) has normalized its arguments; --version, --help-all and
 * --list-options (for the bash completion).
 * Only main-level code turns errors into exit statuses. */
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argtab.h"
#include "cmd.h"

/* Set by the Makefile from `git describe`; a build outside git says so. */
#ifndef MS_VERSION
#define MS_VERSION "0.1.0"
#endif
#ifndef MS_GIT_COMMIT
#define MS_GIT_COMMIT "unknown"
#endif

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
    {"repack", cmd_repack, "store a GGUF's IQ1_S/IQ1_M/IQ2_XXS experts in the repacked layout"},
    {"perplexity", cmd_perplexity, "perplexity and KL divergence over a text (llama-perplexity's numbers)"},
    {"imatrix", cmd_imatrix, "importance matrix for quantize (llama-imatrix's sums and formats)"},
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
    fprintf(f, "\n  -V, --version  version and git commit\n"
               "      --help-all every command's help\n");
}

#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* `run -cnv` is llama-cli's conversation mode: our chat, where -p is the
 * system prompt as it is there. */
static const char *conversation(int argc, char **argv)
{
    bool cnv = false;
    for (int i = 1; i < argc; i++)
        cnv |= !strcmp(argv[i], "-cnv") || !strcmp(argv[i], "--conversation");
    if (!cnv)
        return "run";
    int n = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-cnv") || !strcmp(argv[i], "--conversation"))
            continue;
        argv[n++] = !strcmp(argv[i], "-p") || !strcmp(argv[i], "--prompt") ? "--system" : argv[i];
    }
    argv[n] = NULL;
    return "chat";
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

const char *cli_version(void) { return MS_VERSION "-" MS_GIT_COMMIT; }

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
    if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
        printf("moestream %s (git %s)\n", MS_VERSION, MS_GIT_COMMIT);
        return 0;
    }
    if (!strcmp(argv[1], "--help-all")) {
        usage(stdout);
        for (size_t i = 0; i < N_COMMANDS; i++) {
            char *av[] = {(char *)commands[i].name, "--help", NULL};
            printf("\n==== moestream %s ====\n", commands[i].name);
            fflush(stdout);
            commands[i].fn(2, av);
        }
        return 0;
    }
    if (!strcmp(argv[1], "--list-options")) { /* for the bash completion */
        if (argc < 3) {
            for (size_t i = 0; i < N_COMMANDS; i++)
                printf("%s\n", commands[i].name);
            return 0;
        }
        return argtab_list(stdout, argv[2]);
    }
    const char *name = argv[1];
    int n_argc = argc - 1;
    char **n_argv = argv + 1;
    if (!strcmp(name, "run")) {
        name = conversation(n_argc, n_argv);
        if (!strcmp(name, "chat"))
            for (n_argc = 0; n_argv[n_argc]; n_argc++)
                ;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) {
            int ac;
            char **av;
            if (argtab_prepare(name, n_argc, n_argv, &ac, &av))
                return 2;
            int rc = commands[i].fn(ac, av);
            free(av);
            return rc;
        }
    fprintf(stderr, "moestream: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
