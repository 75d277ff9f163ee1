/* embed.c - the smallest complete program on libmoestream: open a model,
 * render one chat turn with the DeepSeek-R1 template, generate greedily and
 * stream the text to stdout; the generated token ids go to stderr.
 *
 *   cc -std=c11 embed.c $(pkg-config --cflags --libs moestream) -o embed
 *   ./embed MODEL.gguf "Why is the sky blue?" [MAX_TOKENS]
 *
 * Built and run against the installed library by tests/embed_install_slow.sh,
 * which checks its output against `moestream run --temp 0`. */
#include <moestream.h>
#include <stdio.h>
#include <stdlib.h>

static int on_text(void *ud, const char *text, size_t n, bool reasoning)
{
    (void)ud;
    (void)reasoning; /* R1's thinking (up to </think>) arrives marked; shown plain here */
    fwrite(text, 1, n, stdout);
    fflush(stdout);
    return 0; /* non-zero would stop the generation */
}

static void on_token(void *ud, int32_t id)
{
    (void)ud;
    fprintf(stderr, " %d", id);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [MAX_TOKENS]\n", argv[0]);
        return 2;
    }
    char err[512];
    ms_engine_opts o;
    ms_engine_opts_default(&o); /* 20 GiB budget, one sequence of 4096 positions */
    ms_engine *e;
    if (ms_engine_open(&e, argv[1], &o, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    ms_session *s = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = ms_session_create(e, &s, err, sizeof err);
    ms_chat_msg turn = {"user", argv[2]};
    if (!rc)
        rc = ms_chat_render(ms_engine_vocab(e), &turn, 1, true, &ids, &n, err, sizeof err);
    if (!rc) {
        ms_gen_opts go;
        ms_gen_opts_default(&go);
        go.sp.temp = 0; /* greedy */
        go.n_predict = argc > 3 ? atoi(argv[3]) : 64;
        ms_callbacks cb = {.on_text = on_text, .on_token = on_token};
        ms_gen_result res;
        fprintf(stderr, "generated ids:");
        rc = ms_generate(s, ids, n, &go, &cb, &res, err, sizeof err);
        fputc('\n', stdout);
        fprintf(stderr, "\n%d prompt tokens, %d generated (%s)\n", res.n_prompt, res.n_gen,
                rc ? "error" : res.finish);
    }
    if (rc)
        fprintf(stderr, "%s\n", err);
    ms_free(ids);
    ms_session_destroy(s);
    ms_engine_close(e);
    return rc ? 1 : 0;
}
