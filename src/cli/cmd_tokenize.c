/* cmd_tokenize.c - `moestream tokenize`: stdin, read verbatim as bytes (not
 * even a final newline is stripped), to {"ids":[...]} on stdout, with the
 * reference engine's behaviour (BOS unless --no-bos, special tokens
 * parsed).  The model may be a vocabulary-only GGUF.  Through the public
 * API (ms_vocab_open, ms_tokenize). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "moestream.h"

int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    bool bos = true;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--no-bos"))
            bos = false;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: moestream tokenize -m|--model MODEL [--no-bos] < text\n");
            return 0;
        } else {
            fprintf(stderr, "usage: moestream tokenize -m MODEL [--no-bos] < text\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: moestream tokenize -m MODEL [--no-bos] < text\n");
        return 2;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "moestream tokenize: out of memory\n");
            return 1;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0 || n < cap) {
            if (ferror(stdin)) {
                fprintf(stderr, "moestream tokenize: error reading stdin\n");
                free(buf);
                return 1;
            }
            if (feof(stdin))
                break;
            continue;
        }
        if (cap >= ((size_t)1 << 31)) {
            fprintf(stderr, "moestream tokenize: input larger than 2 GB\n");
            free(buf);
            return 1;
        }
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb)
            free(buf);
        buf = nb;
    }
    char err[512] = "";
    ms_vocab *v = NULL;
    int rc = ms_vocab_open(&v, path, err, sizeof err);
    int32_t *ids = NULL;
    size_t nid = 0;
    if (!rc)
        rc = ms_tokenize(v, buf, n, MS_TOK_PARSE_SPECIAL | (bos ? MS_TOK_ADD_BOS : 0), &ids, &nid);
    if (rc) {
        fprintf(stderr, "moestream tokenize: %s\n", err[0] ? err : "out of memory");
    } else {
        fputs("{\"ids\":[", stdout);
        for (size_t i = 0; i < nid; i++)
            printf("%s%d", i ? "," : "", ids[i]);
        fputs("]}\n", stdout);
    }
    ms_free(ids);
    free(buf);
    ms_vocab_close(v);
    return rc ? 1 : (fflush(stdout) ? 1 : 0);
}
