/* test_routing_trace.c - recorded routing: both trace formats load (ESFT
 * log directories with weights, --trace-routing files with dense layers
 * dropped), bad ids are rejected with the line; the documented mapping of
 * a smaller trace onto a model (rtrace_pick) gives the hand-computed ids;
 * a forward pass on a tiny synthetic model takes exactly those experts
 * (seen through on_route) instead of its router's; and the command line
 * (--bench-routing-trace with --trace-routing) does the same end to end. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "forward.h"
#include "model.h"
#include "routing_trace.h"
#include "synth.h"

static const char *tmp_dir(void)
{
    const char *d = getenv("MOESTREAM_TMP");
    return d && *d ? d : "/tmp";
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Layers 1 and 2 of a model whose layer 0 is dense; 8 experts, top-2,
 * 3 positions. */
static const char *OURS = "1 0 3 5\n2 0 1 7\n1 1 0 2\n2 1 6 4\n1 2 5 3\n2 2 2 1\n";

static void load_ours(rtrace *t, char *path, size_t n)
{
    char err[512] = "";
    snprintf(path, n, "%s/rt_ours_%d.txt", tmp_dir(), (int)getpid());
    write_text(path, OURS);
    if (rtrace_load(t, path, 6, err, sizeof err))
        fail_msg("%s", err);
}

static void test_load_formats(void **state)
{
    (void)state;
    char path[1024], dir[1024], err[512] = "";
    rtrace t;
    load_ours(&t, path, sizeof path);
    assert_int_equal(t.n_layers, 2); /* layer 0 never appears: dropped */
    assert_int_equal(t.n_tok, 3);
    assert_int_equal(t.topk, 2);
    assert_int_equal(t.n_expert, 8);
    assert_int_equal(t.ids[(2 * 2 + 1) * 2 + 0], 2); /* token 2, layer "2", first id */
    assert_null(t.w);
    rtrace_free(&t);
    unlink(path);

    /* ESFT: one line per sequence, ids token-major in groups of topk */
    snprintf(dir, sizeof dir, "%s/rt_esft_%d", tmp_dir(), (int)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    char p1[1100], p2[1100];
    snprintf(p1, sizeof p1, "%s/expert_weights_1.txt", dir);
    snprintf(p2, sizeof p2, "%s/expert_weights_2.txt", dir);
    write_text(p1, "3\t5\t0\t2\t\t0.5\t0.25\t0.125\t0.0625\n7\t6\t\t0.75\t0.5\n");
    write_text(p2, "1\t7\t6\t4\t\t0.1\t0.2\t0.3\t0.4\n2\t1\t\t0.9\t0.8\n");
    assert_int_equal(rtrace_load(&t, dir, 2, err, sizeof err), 0);
    assert_int_equal(t.n_layers, 2);
    assert_int_equal(t.n_tok, 3); /* 2 tokens in sequence 1, 1 in sequence 2 */
    assert_int_equal(t.n_expert, 8);
    assert_int_equal(t.ids[(1 * 2 + 0) * 2 + 1], 2);
    assert_int_equal(t.ids[(2 * 2 + 1) * 2 + 0], 2);
    assert_non_null(t.w);
    assert_true(t.w[(1 * 2 + 1) * 2 + 1] == 0.4f);
    assert_true(t.w[(2 * 2 + 0) * 2 + 0] == 0.75f);
    rtrace_free(&t);

    /* a bad id: an error naming file and line, not a crash */
    write_text(p2, "1\t7\t6\tx\t\t0.1\t0.2\t0.3\t0.4\n");
    assert_int_equal(rtrace_load(&t, dir, 2, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "line 1"));
    assert_null(t.ids);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
    snprintf(path, sizeof path, "%s/rt_bad_%d.txt", tmp_dir(), (int)getpid());
    write_text(path, "1 0 3 -5\n");
    assert_int_equal(rtrace_load(&t, path, 6, err, sizeof err), -EBADMSG);
    write_text(path, "no routing here\n");
    assert_int_equal(rtrace_load(&t, path, 6, err, sizeof err), -EBADMSG);
    unlink(path);
}

/* The mapping, by hand (routing_trace.h): 8 trace experts on 16, R = 2,
 * source s maps e -> 2e + s % 2; top-4 takes 2 ids from trace layer
 * (j + 0) and 2 from trace layer (j + 1) of token pos % 3. */
static void test_pick_by_hand(void **state)
{
    (void)state;
    char path[1024], err[512];
    rtrace t;
    load_ours(&t, path, sizeof path);
    static const struct {
        int j, pos, k;
        int32_t want[4];
    } c[] = {
        {0, 0, 4, {6, 10, 3, 15}},  /* layer 0 {3 5} -> 6 10; layer 1 {1 7} -> 3 15 */
        {1, 0, 4, {2, 14, 7, 11}},  /* layer 1 {1 7} -> 2 14; layer 0 {3 5} -> 7 11 */
        {2, 4, 4, {0, 4, 13, 9}},   /* layer 0, token 1 {0 2}; layer 1 {6 4} -> 13 9 */
        {0, 0, 1, {6}},             /* fewer than the trace's top-k: the first */
        {1, 2, 4, {4, 2, 11, 7}},   /* layer 1, token 2 {2 1} -> 4 2; layer 0 {5 3} -> 11 7 */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int32_t sel[4] = {-1, -1, -1, -1};
        rtrace_pick(&t, c[i].j, c[i].pos, 16, c[i].k, sel);
        for (int r = 0; r < c[i].k; r++)
            if (sel[r] != c[i].want[r])
                fail_msg("case %zu rank %d: got %d want %d", i, r, sel[r], c[i].want[r]);
    }
    /* same width: identity ids; wider top-k than two layers hold: a third source */
    int32_t sel[6];
    rtrace_pick(&t, 0, 0, 8, 6, sel);
    const int32_t want[6] = {3, 5, 1, 7, 0, 2}; /* s=2: layer 0 again, ids {3 5} taken, then fill 0 2 */
    assert_memory_equal(sel, want, sizeof want);
    assert_int_equal(rtrace_check(&t, 16, 4, err, sizeof err), 0);
    assert_int_equal(rtrace_check(&t, 4, 2, err, sizeof err), -EINVAL);
    rtrace_free(&t);
    unlink(path);
}

typedef struct rec {
    const rtrace *t;
    const model *m;
    int n, bad, differs;
} rec;

static int moe_rank(const model *m, int il)
{
    int j = 0;
    for (int l = 0; l < il; l++)
        j += m->layers[l].is_moe;
    return j;
}

static void pick_cb(void *ud, int il, int pos, int k, int32_t *sel)
{
    rec *r = ud;
    rtrace_pick(r->t, moe_rank(r->m, il), pos, (int)r->m->hp.n_expert, k, sel);
}

static void route_cb(void *ud, int il, int pos, int n, const int32_t *ids, const float *w)
{
    (void)w;
    rec *r = ud;
    int32_t want[64];
    rtrace_pick(r->t, moe_rank(r->m, il), pos, (int)r->m->hp.n_expert, n, want);
    r->n++;
    r->bad += memcmp(want, ids, (size_t)n * sizeof *ids) != 0;
}

static void route_plain(void *ud, int il, int pos, int n, const int32_t *ids, const float *w)
{
    (void)w;
    rec *r = ud;
    int32_t want[64];
    rtrace_pick(r->t, moe_rank(r->m, il), pos, (int)r->m->hp.n_expert, n, want);
    r->differs += memcmp(want, ids, (size_t)n * sizeof *ids) != 0;
}

static void make_tiny(char *path, size_t n)
{
    char err[512];
    snprintf(path, n, "%s/rt_tiny_%d.gguf", tmp_dir(), (int)getpid());
    synth_opts o;
    synth_opts_default(&o);
    o.tiny = 1;
    if (synth_write(path, &o, NULL, err, sizeof err))
        fail_msg("synth_write: %s", err);
}

/* Prompt of 5 then 3 single tokens: every MoE layer of every position takes
 * the trace's mapped experts; the router alone would not have. */
static void test_forward_takes_trace(void **state)
{
    (void)state;
    char mpath[1024], tpath[1024], err[512];
    make_tiny(mpath, sizeof mpath);
    rtrace t;
    load_ours(&t, tpath, sizeof tpath);
    model_opts mo;
    model_opts_default(&mo);
    model *m = NULL;
    if (model_load(&m, mpath, &mo, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(rtrace_check(&t, (int)m->hp.n_expert, (int)m->hp.n_expert_used, err, sizeof err), 0);
    rec r = {&t, m, 0, 0, 0};
    for (int traced = 0; traced < 2; traced++) {
        fwd_opts fo;
        fwd_opts_default(&fo);
        fo.n_ctx = 32;
        fo.route_pick = traced ? pick_cb : NULL;
        fo.pick_ud = &r;
        fo.on_route = traced ? route_cb : route_plain;
        fo.route_ud = &r;
        fwd_state *st = NULL;
        assert_int_equal(fwd_create(&st, m, &fo, err, sizeof err), 0);
        int32_t ids[5] = {1, 40, 77, 120, 200};
        assert_int_equal(fwd_eval(st, ids, 5, NULL, NULL, err, sizeof err), 0);
        for (int i = 0; i < 3; i++)
            assert_int_equal(fwd_eval(st, &ids[i], 1, NULL, NULL, err, sizeof err), 0);
        fwd_destroy(st);
    }
    printf("MEASURE trace routing: %d (layer, position) choices, %d off the mapping; router alone "
           "differs from the trace at %d\n", r.n, r.bad, r.differs);
    assert_int_equal(r.n, 8 * 3); /* 8 positions x 3 MoE layers */
    assert_int_equal(r.bad, 0);
    assert_true(r.differs > r.n / 2);
    model_free(m);
    rtrace_free(&t);
    unlink(tpath);
    unlink(mpath);
}

/* The command line: run with the trace, record the routing, compare. */
static void test_cli(void **state)
{
    (void)state;
    const char *bin = getenv("MOESTREAM_BIN");
    if (!bin) {
        printf("skip: routing trace CLI: no MOESTREAM_BIN\n");
        skip();
    }
    char mpath[1024], tpath[1024], opath[1100], cmd[4200], line[512], err[512];
    make_tiny(mpath, sizeof mpath);
    rtrace t;
    load_ours(&t, tpath, sizeof tpath);
    snprintf(opath, sizeof opath, "%s.out", tpath);
    /* eval takes token ids: no tokenizer in the way */
    snprintf(cmd, sizeof cmd, "'%s' eval -m '%s' --tokens '1 40 77 120 200' --greedy 3 -t 1 "
                              "--bench-routing-trace '%s' --trace-routing '%s' > /dev/null 2>&1",
             bin, mpath, tpath, opath);
    assert_int_equal(system(cmd), 0);
    model_opts mo;
    model_opts_default(&mo);
    mo.load_experts = false;
    model *m = NULL;
    if (model_load(&m, mpath, &mo, err, sizeof err))
        fail_msg("%s", err);
    FILE *f = fopen(opath, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        int il, pos, off, k = 0;
        int32_t got[64], want[64];
        assert_int_equal(sscanf(line, "%d %d%n", &il, &pos, &off), 2);
        for (char *s = strtok(line + off, " \n"); s; s = strtok(NULL, " \n"))
            got[k++] = atoi(s);
        assert_int_equal(k, (int)m->hp.n_expert_used);
        rtrace_pick(&t, moe_rank(m, il), pos, (int)m->hp.n_expert, k, want);
        assert_memory_equal(got, want, (size_t)k * sizeof *got);
        n++;
    }
    fclose(f);
    printf("MEASURE trace routing CLI: %d routing lines, all as mapped\n", n);
    assert_int_equal(n, 3 * (5 + 2)); /* 3 MoE layers x (5 prompt + 2 fed-back greedy tokens) */
    model_free(m);
    rtrace_free(&t);
    unlink(opath);
    unlink(tpath);
    unlink(mpath);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_formats),
        cmocka_unit_test(test_pick_by_hand),
        cmocka_unit_test(test_forward_takes_trace),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
