/* test_sched.c - continuous batching (ms_batch_*, include/moestream.h) on
 * every golden model, through the public header only:
 *  - four different prompts generated together, joining at different
 *    steps, give at temperature 0 exactly the tokens each gives alone
 *    (ms_generate on a fresh session), and steps really held several
 *    sequences at once (prompt chunks beside decode tokens); legacy files
 *    in the absorbed form too (their heads run for all sequences of a step
 *    in one job), with an F32 cache and with a Q8_0 one whose dequantized
 *    views of the step's sequences do not all fit the scratch at once;
 *  - short prompts submitted together share the first step (prompt rows
 *    up to -b, oldest first), and still give their lone runs' tokens;
 *  - a prompt sharing a prefix with a finished one goes to that slot and
 *    evaluates only what lies past the last whole -b chunk of the common
 *    prefix, with the cold run's tokens;
 *  - the API's refusals (-EBUSY, -EINVAL, -E2BIG), cancel, and destroy with
 *    generations in flight (on_done -ECANCELED). */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "golden.h"

#include "moestream.h"

#define N_GEN 12
#define N_REQ 4


/* The golden prompt of model name (token ids). */
static int32_t *golden_prompt(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/logits/%s.json", golden_dir(), name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        fail_msg("%s: %s", path, je.text);
    json_t *p = json_object_get(root, "prompt");
    *n = json_array_size(p);
    assert_true(*n > 8);
    int32_t *ids = malloc(*n * sizeof *ids);
    for (size_t i = 0; i < *n; i++)
        ids[i] = (int32_t)json_integer_value(json_array_get(p, i));
    json_decref(root);
    return ids;
}

typedef struct req {
    int32_t prompt[512];
    size_t n;
    int32_t ids[64];
    int n_ids;
    int done, rc;
    ms_gen_result res;
    int cancel_after; /* > 0: cancel once this many tokens came */
} req;

static void on_token(void *ud, int32_t id)
{
    req *r = ud;
    if (r->n_ids < 64)
        r->ids[r->n_ids++] = id;
}

static int on_cancel(void *ud)
{
    req *r = ud;
    return r->cancel_after > 0 && r->n_ids >= r->cancel_after;
}

static void on_done(void *ud, int rc, const ms_gen_result *res, const char *err)
{
    req *r = ud;
    r->done++;
    r->rc = rc;
    if (res)
        r->res = *res;
    else
        assert_true(rc < 0 && err && *err);
}

static ms_gen_opts greedy_opts(void)
{
    ms_gen_opts go;
    ms_gen_opts_default(&go);
    go.sp.temp = 0;
    go.sp.min_p = 0;
    go.sp.ignore_eos = true; /* every request the full length */
    go.n_predict = N_GEN;
    return go;
}

/* r generated alone, on a fresh session (the reference for the batch) */
static void generate_alone(ms_engine *e, const char *name, const ms_gen_opts *go, req *r)
{
    char err[512] = "";
    ms_session *s;
    assert_int_equal(ms_session_create(e, &s, err, sizeof err), 0);
    ms_callbacks cb = {NULL, on_token, NULL, NULL, r};
    if (ms_generate(s, r->prompt, r->n, go, &cb, &r->res, err, sizeof err))
        fail_msg("%s: %s", name, err);
    ms_session_destroy(s);
}

/* r into the batch, its tokens and end collected in r */
static void submit(ms_batch *b, const ms_gen_opts *go, req *r)
{
    char err[512] = "";
    ms_callbacks cb = {NULL, on_token, NULL, NULL, r};
    if (ms_batch_submit(b, r->prompt, r->n, go, &cb, on_done, err, sizeof err))
        fail_msg("submit: %s", err);
}

/* request k's tokens together equal its tokens alone, one by one */
static void same_tokens(const char *name, int k, const req *tog, const req *alone)
{
    assert_int_equal(tog->n_ids, alone->n_ids);
    for (int i = 0; i < alone->n_ids; i++)
        if (tog->ids[i] != alone->ids[i])
            fail_msg("%s request %d token %d: together %d, alone %d", name, k, i, tog->ids[i], alone->ids[i]);
}

/* Four different prompts from the golden one: other lengths (so prompts
 * take other numbers of chunks and start decoding at other steps) and
 * other tails. */
static void make_requests(const int32_t *g, size_t gn, req *r)
{
    for (int k = 0; k < N_REQ; k++) {
        memset(&r[k], 0, sizeof r[k]);
        size_t n = gn + (size_t)k * 9;
        for (size_t i = 0; i < n; i++)
            r[k].prompt[i] = i < gn - 3 ? g[i] : (int32_t)((g[i % gn] + 31 * (k + 1) + i) % 3000);
        if (k == 2) /* one with another start too */
            r[k].prompt[1] = (r[k].prompt[1] + 5) % 3000;
        r[k].n = n;
    }
}

/* n_ctx 256 unless cache_type is Q8_0 (then 128: see test_together_absorbed) */
static ms_engine *open_engine(const char *name, int n_batch, int threads, int attn, int cache_type)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/models/%s.gguf", golden_dir(), name);
    ms_engine_opts o;
    ms_engine_opts_default(&o);
    o.n_ctx = cache_type == MS_CACHE_Q8_0 ? 128 : 256;
    o.n_batch = n_batch;
    o.max_seqs = N_REQ;
    o.threads = threads;
    o.attn = attn;
    o.cache_type = cache_type;
    ms_engine *e;
    if (ms_engine_open(&e, path, &o, err, sizeof err))
        fail_msg("%s: %s", name, err);
    return e;
}

static void together_equals_alone(const char *name, int n_batch, int threads, int attn,
                                  int cache_type)
{
    size_t gn;
    int32_t *g = golden_prompt(name, &gn);
    ms_engine *e = open_engine(name, n_batch, threads, attn, cache_type);
    char err[512] = "";
    const ms_gen_opts go = greedy_opts();
    req alone[N_REQ], tog[N_REQ];
    make_requests(g, gn, alone);
    make_requests(g, gn, tog);
    for (int k = 0; k < N_REQ; k++) {
        generate_alone(e, name, &go, &alone[k]);
        assert_int_equal(alone[k].n_ids, N_GEN);
    }
    ms_batch *b;
    assert_int_equal(ms_batch_create(e, N_REQ, &b, err, sizeof err), 0);
    /* two join now, the others a few steps later: prompts beside decodes */
    int most = 0, mixed = 0;
    for (int k = 0; k < 2; k++)
        submit(b, &go, &tog[k]);
    int steps = 0;
    for (;;) {
        if (steps == 3)
            for (int k = 2; k < N_REQ; k++)
                submit(b, &go, &tog[k]);
        int left = ms_batch_step(b);
        steps++;
        ms_batch_stats st;
        ms_batch_get_stats(b, &st);
        most = st.last_step_seqs > most ? st.last_step_seqs : most;
        mixed += st.last_step_tokens > st.last_step_seqs; /* a chunk beside others */
        if (!left && steps > 3)
            break;
        assert_true(steps < 10000);
    }
    ms_batch_stats st;
    ms_batch_get_stats(b, &st);
    print_message("%s -b %d threads %d attn %d cache %d: %d steps, %llu tokens, at most %d sequences "
                  "in a step, %d steps with a prompt chunk\n",
                  name, n_batch, threads, attn, cache_type, steps, (unsigned long long)st.tokens, most,
                  mixed);
    assert_true(most >= 3);
    assert_true(mixed >= 1);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.generated, N_REQ * N_GEN);
    for (int k = 0; k < N_REQ; k++) {
        assert_int_equal(tog[k].done, 1);
        assert_int_equal(tog[k].rc, 0);
        assert_int_equal(tog[k].n_ids, N_GEN);
        assert_string_equal(tog[k].res.finish, alone[k].res.finish);
        assert_int_equal(tog[k].res.n_gen, alone[k].res.n_gen);
        same_tokens(name, k, &tog[k], &alone[k]);
    }
    ms_batch_destroy(b);
    ms_engine_close(e);
    free(g);
}

static void test_together_mix_mla(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    together_equals_alone("tiny-mix-mla", 16, 2, MS_ATTN_AUTO, MS_CACHE_F32);
}

static void test_together_f32_legacy(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    together_equals_alone("tiny-f32-legacy", 16, 2, MS_ATTN_AUTO, MS_CACHE_F32);
}

/* Legacy files in the absorbed form.  Q8_0 at n_ctx 128: the four
 * sequences end at 62 to 89 positions, more than 128 for any two together,
 * so late steps run their heads in more than one job. */
static void test_together_absorbed(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    together_equals_alone("tiny-f32-legacy", 16, 2, MS_ATTN_ABSORBED, MS_CACHE_F32);
    together_equals_alone("tiny-ud-iq1_s", 7, 2, MS_ATTN_ABSORBED, MS_CACHE_Q8_0);
}

static void test_together_iq1_s(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    together_equals_alone("tiny-ud-iq1_s", 7, 1, MS_ATTN_AUTO, MS_CACHE_F32);
    together_equals_alone("tiny-ud-iq1_s-nogroups", 16, 2, MS_ATTN_AUTO, MS_CACHE_F32);
}

/* Short prompts that arrive together start together: the first step
 * holds a chunk of each (prompt rows within -b, oldest first, the oldest
 * always), and a long one beside them still gets its whole -b chunk first
 * with the short ones waiting for room; each still equals its lone run. */
static void test_prompts_share_a_step(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    const char *name = "tiny-ud-iq1_s";
    const int B = 16;
    size_t gn;
    int32_t *g = golden_prompt(name, &gn);
    ms_engine *e = open_engine(name, B, 2, MS_ATTN_AUTO, MS_CACHE_F32);
    char err[512] = "";
    const ms_gen_opts go = greedy_opts();
    /* lengths 3, 5, 6 (14 rows: one step), then 20 (a whole chunk of 16
     * first) beside 2 more short ones (2 + 4 rows: not with it) */
    static const size_t len[] = {3, 5, 6, 20, 2, 4};
    enum { NR = sizeof len / sizeof len[0] };
    static req alone[NR], tog[NR];
    for (int k = 0; k < NR; k++) {
        memset(&alone[k], 0, sizeof alone[k]);
        for (size_t i = 0; i < len[k]; i++)
            alone[k].prompt[i] = (int32_t)((g[i % gn] + 17 * k + 3 * i) % 3000);
        alone[k].n = len[k];
        tog[k] = alone[k];
        generate_alone(e, name, &go, &alone[k]);
    }
    ms_batch *b;
    assert_int_equal(ms_batch_create(e, 3, &b, err, sizeof err), 0);
    ms_batch_stats st;
    for (int k = 0; k < 3; k++)
        submit(b, &go, &tog[k]);
    ms_batch_step(b);
    ms_batch_get_stats(b, &st);
    print_message("three prompts of 3, 5, 6 tokens: first step %d sequences, %d tokens\n", st.last_step_seqs,
                  st.last_step_tokens);
    assert_int_equal(st.last_step_seqs, 3);
    assert_int_equal(st.last_step_tokens, 14);
    assert_int_equal(st.decoding, 3);
    while (ms_batch_step(b))
        ;
    /* the 20-token prompt first (oldest), then the two short ones: step 1
     * is its first chunk of 16 alone (16 + 2 > 16), step 2 its last 4 with
     * the 2 and 4 (10 rows) */
    for (int k = 3; k < NR; k++)
        submit(b, &go, &tog[k]);
    ms_batch_step(b);
    ms_batch_get_stats(b, &st);
    assert_int_equal(st.last_step_seqs, 1);
    assert_int_equal(st.last_step_tokens, B);
    ms_batch_step(b);
    ms_batch_get_stats(b, &st);
    assert_int_equal(st.last_step_seqs, 3);
    assert_int_equal(st.last_step_tokens, 4 + 2 + 4);
    while (ms_batch_step(b))
        ;
    for (int k = 0; k < NR; k++) {
        assert_int_equal(tog[k].done, 1);
        assert_int_equal(tog[k].rc, 0);
        same_tokens(name, k, &tog[k], &alone[k]);
    }
    ms_batch_destroy(b);
    ms_engine_close(e);
    free(g);
}

/* A second prompt sharing a prefix with a finished one: the slot that
 * holds it, only the tokens past the last whole chunk evaluated, and the
 * tokens of a cold run. */
static void test_prefix_reuse(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    const char *name = "tiny-mix-mla";
    const int B = 16;
    size_t gn;
    int32_t *g = golden_prompt(name, &gn);
    ms_engine *e = open_engine(name, B, 2, MS_ATTN_AUTO, MS_CACHE_F32);
    char err[512] = "";
    const ms_gen_opts go = greedy_opts();
    req first, second, cold;
    memset(&first, 0, sizeof first);
    const size_t common = 200;
    for (size_t i = 0; i < common + 20; i++)
        first.prompt[i] = (int32_t)((g[i % gn] * 7 + i) % 3000);
    first.n = common + 20;
    second = first;
    for (size_t i = common; i < common + 30; i++)
        second.prompt[i] = (int32_t)((i * 13) % 3000);
    second.n = common + 30;
    cold = second;
    generate_alone(e, name, &go, &cold);
    ms_batch *b;
    assert_int_equal(ms_batch_create(e, 0, &b, err, sizeof err), 0); /* all 4 */
    /* another request in another slot: the second must find the first's
     * (the longest common prefix), not the other's */
    req other = first;
    other.prompt[0] = (other.prompt[0] + 1) % 3000;
    submit(b, &go, &first);
    submit(b, &go, &other);
    while (ms_batch_step(b))
        ;
    ms_batch_stats before;
    ms_batch_get_stats(b, &before);
    submit(b, &go, &second);
    while (ms_batch_step(b))
        ;
    ms_batch_stats after;
    ms_batch_get_stats(b, &after);
    const size_t keep = common - common % B;
    print_message("prefix: %zu common, %d cached, %llu prompt tokens evaluated after\n", common,
                  second.res.n_cached,
                  (unsigned long long)(after.prompt_tokens - before.prompt_tokens));
    assert_int_equal(second.rc, 0);
    assert_int_equal(second.res.n_cached, (int)keep);
    assert_int_equal(after.prompt_tokens - before.prompt_tokens, second.n - keep);
    assert_int_equal(second.n_ids, cold.n_ids);
    assert_memory_equal(second.ids, cold.ids, (size_t)cold.n_ids * sizeof(int32_t));
    ms_batch_destroy(b);
    ms_engine_close(e);
    free(g);
}

static void test_refusals_cancel_destroy(void **state)
{
    (void)state;
    GOLDEN_REQUIRE();
    const char *name = "tiny-mix-mla";
    size_t gn;
    int32_t *g = golden_prompt(name, &gn);
    ms_engine *e = open_engine(name, 16, 1, MS_ATTN_AUTO, MS_CACHE_F32);
    char err[512] = "";
    ms_gen_opts go = greedy_opts();
    ms_batch *b, *b2;
    /* one session taken: a batch of all 4 is refused, 3 fit */
    ms_session *s;
    assert_int_equal(ms_session_create(e, &s, err, sizeof err), 0);
    assert_int_equal(ms_batch_create(e, 4, &b, err, sizeof err), -EBUSY);
    print_message("refused: %s\n", err);
    assert_int_equal(ms_batch_create(e, 2, &b, err, sizeof err), 0);
    assert_int_equal(ms_batch_create(e, 2, &b2, err, sizeof err), -EBUSY);
    ms_batch_stats st;
    ms_batch_get_stats(b, &st);
    assert_int_equal(st.slots, 2);
    assert_int_equal(st.active, 0);
    assert_int_equal(ms_batch_step(b), 0); /* nothing to do */
    req r[3];
    memset(r, 0, sizeof r);
    for (int k = 0; k < 3; k++) {
        memcpy(r[k].prompt, g, gn * sizeof *g);
        r[k].n = gn;
    }
    int32_t big[300] = {0};
    assert_int_equal(ms_batch_submit(b, big, 0, &go, NULL, on_done, err, sizeof err), -EINVAL);
    assert_int_equal(ms_batch_submit(b, big, 256, &go, NULL, on_done, err, sizeof err), -E2BIG);
    r[0].cancel_after = 3;
    ms_callbacks c0 = {NULL, on_token, NULL, on_cancel, &r[0]}, c1 = {NULL, on_token, NULL, NULL, &r[1]},
                 c2 = {NULL, on_token, NULL, NULL, &r[2]};
    assert_int_equal(ms_batch_submit(b, r[0].prompt, r[0].n, &go, &c0, on_done, err, sizeof err), 0);
    assert_int_equal(ms_batch_submit(b, r[1].prompt, r[1].n, &go, &c1, on_done, err, sizeof err), 0);
    assert_int_equal(ms_batch_submit(b, r[2].prompt, r[2].n, &go, &c2, on_done, err, sizeof err), -EBUSY);
    while (!r[0].done)
        ms_batch_step(b);
    assert_int_equal(r[0].rc, 0);
    assert_string_equal(r[0].res.finish, "cancelled");
    assert_int_equal(r[0].n_ids, 3);
    ms_batch_get_stats(b, &st);
    assert_int_equal(st.active, 1);
    assert_int_equal(r[1].done, 0);
    ms_batch_destroy(b); /* r[1] still generating */
    assert_int_equal(r[1].done, 1);
    assert_int_equal(r[1].rc, -ECANCELED);
    ms_batch_destroy(NULL);
    ms_session_destroy(s);
    ms_engine_close(e);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_together_mix_mla),
        cmocka_unit_test(test_together_f32_legacy),
        cmocka_unit_test(test_together_iq1_s),
        cmocka_unit_test(test_together_absorbed),
        cmocka_unit_test(test_prompts_share_a_step),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_refusals_cancel_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
