/* test_imatrix_collect.c - the importance-matrix collector on a hand-built
 * two-layer model (a dense FFN, then routed experts with one expert never
 * chosen, and the output head): sums of squares and counts against a
 * double-precision recomputation, the rule that dense products of
 * ubatches under 16 rows are not collected while routed ones are, and both
 * file formats read back through imatrix_load (names, normalized values,
 * 1 for the expert without data, chunk count, dataset). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "imatrix_collect.h"
#include "imatrix_load.h"

#define NE 8    /* n_embd: gate input width */
#define NF 6    /* expert width: down input */
#define NX 4    /* experts (3 never chosen) */
#define KU 2    /* chosen per token */
#define ROWS 20 /* first ubatch (>= 16: dense collected) */
#define ROWS2 10 /* second ubatch (< 16: dense skipped) */
#define REL 1e-6 /* float sums vs double recomputation */

static const char *tmp_dir(void)
{
    const char *d = getenv("MOESTREAM_TMP");
    return d && *d ? d : "/tmp";
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) % 2001) / 1000.0f - 1.0f;
}

typedef struct fixture {
    model m;
    mlayer L[2];
    double gate[NE], exps[NX][NE], down[NX][NF], out[NE];
    int64_t gate_n, exps_n[NX], down_n[NX], out_n;
} fixture;

static void build(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->m.hp.n_layer = 2;
    f->m.hp.n_expert = NX;
    f->m.hp.n_expert_used = KU;
    f->m.layers = f->L;
    f->L[0].ffn_gate = (mweight){.name = "blk.0.ffn_gate.weight", .n_in = NE, .n_out = 3, .n_mat = 1};
    f->L[1].is_moe = true;
    f->L[1].gate_exps = (mweight){.name = "blk.1.ffn_gate_exps.weight", .n_in = NE, .n_out = NF, .n_mat = NX};
    f->L[1].down_exps = (mweight){.name = "blk.1.ffn_down_exps.weight", .n_in = NF, .n_out = NE, .n_mat = NX};
    f->m.output = (mweight){.name = "output.weight", .n_in = NE, .n_out = 5, .n_mat = 1};
}

/* One ubatch of rows tokens: dense gate and output on all rows, experts
 * t%3 and (t+1)%3 for token t (expert 3 never). */
static void ubatch(fixture *f, imatrix_collect *c, int rows)
{
    float x[ROWS][NE], d[ROWS * KU][NF];
    for (int t = 0; t < rows; t++)
        for (int j = 0; j < NE; j++)
            x[t][j] = frand();
    imatrix_collect_begin_ubatch(c, rows);
    imatrix_collect_rows(c, 0);
    fwd_mm_in in = {.w = &f->L[0].ffn_gate, .expert = -1, .n = rows, .x = &x[0][0], .ld = NE};
    imatrix_collect_hook(c, &in);
    for (int e = 0; e < 3; e++) {
        int32_t tok[ROWS * KU], slot[ROWS * KU];
        int n = 0;
        for (int t = 0; t < rows; t++)
            for (int s = 0; s < KU; s++)
                if ((t + s) % 3 == e) {
                    tok[n] = t;
                    slot[n] = s;
                    for (int j = 0; j < NF; j++)
                        d[n][j] = frand();
                    n++;
                }
        in = (fwd_mm_in){.w = &f->L[1].gate_exps, .expert = e, .n = n, .x = &x[0][0], .ld = NE,
                         .gather = tok, .tok = tok, .slot = slot};
        imatrix_collect_hook(c, &in);
        in = (fwd_mm_in){.w = &f->L[1].down_exps, .expert = e, .n = n, .x = &d[0][0], .ld = NF,
                         .tok = tok, .slot = slot};
        imatrix_collect_hook(c, &in);
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < NE; j++)
                f->exps[e][j] += (double)x[tok[r]][j] * x[tok[r]][j];
            for (int j = 0; j < NF; j++)
                f->down[e][j] += (double)d[r][j] * d[r][j];
        }
        f->exps_n[e] += n;
        f->down_n[e] += n;
    }
    in = (fwd_mm_in){.w = &f->m.output, .expert = -1, .n = rows, .x = &x[0][0], .ld = NE};
    imatrix_collect_hook(c, &in);
    imatrix_collect_end_ubatch(c);
    if (rows >= 16) {
        for (int t = 0; t < rows; t++)
            for (int j = 0; j < NE; j++) {
                f->gate[j] += (double)x[t][j] * x[t][j];
                f->out[j] += (double)x[t][j] * x[t][j];
            }
        f->gate_n += rows;
        f->out_n += rows;
    }
}

static void expect(const imatrix_data *d, const char *name, const double *sum, const int64_t *n,
                   int n_mat, int n_in)
{
    const imatrix_entry *e = imatrix_find(d, name);
    assert_non_null(e);
    assert_int_equal(e->n, (int64_t)n_mat * n_in);
    for (int k = 0; k < n_mat; k++)
        for (int j = 0; j < n_in; j++) {
            const double want = n[k] ? sum[k * n_in + j] / (double)n[k] : 1.0;
            const double got = e->values[k * n_in + j];
            if (fabs(got - want) > REL * fabs(want)) {
                print_error("%s[%d][%d]: got %.9g want %.9g\n", name, k, j, got, want);
                fail();
            }
        }
}

static void roundtrip(void **state)
{
    (void)state;
    static fixture f;
    build(&f);
    imatrix_collect *c = NULL;
    char err[256] = "";
    assert_int_equal(imatrix_collect_create(&c, &f.m, 16, ROWS, true, err, sizeof err), 0);
    ubatch(&f, c, ROWS);
    ubatch(&f, c, ROWS2);
    /* the inputs are not degenerate: sums differ across columns */
    assert_true(f.gate[0] != f.gate[1] && f.exps[0][0] != f.exps[1][0] && f.gate_n == ROWS);

    char pg[512], pd[512];
    snprintf(pg, sizeof pg, "%s/test_imatrix_collect.%d.gguf", tmp_dir(), (int)getpid());
    snprintf(pd, sizeof pd, "%s/test_imatrix_collect.%d.dat", tmp_dir(), (int)getpid());
    assert_int_equal(imatrix_collect_save_gguf(c, pg, "calib.txt", err, sizeof err), 0);
    assert_int_equal(imatrix_collect_save_dat(c, pd, "calib.txt", err, sizeof err), 0);
    imatrix_collect_destroy(c);

    const char *paths[] = {pg, pd};
    for (int p = 0; p < 2; p++) {
        imatrix_data *d = NULL;
        if (imatrix_load(&d, paths[p], err, sizeof err)) {
            print_error("%s: %s\n", paths[p], err);
            fail();
        }
        assert_int_equal(d->n_entries, 4);
        assert_string_equal(d->entries[0].name, "blk.0.ffn_gate.weight");
        assert_string_equal(d->entries[3].name, "output.weight");
        assert_non_null(d->dataset);
        assert_string_equal(d->dataset, "calib.txt");
        assert_int_equal(d->chunk_count, ROWS / 16); /* whole chunks in the largest count */
        expect(d, "blk.0.ffn_gate.weight", f.gate, &f.gate_n, 1, NE);
        expect(d, "output.weight", f.out, &f.out_n, 1, NE);
        expect(d, "blk.1.ffn_gate_exps.weight", &f.exps[0][0], f.exps_n, NX, NE);
        expect(d, "blk.1.ffn_down_exps.weight", &f.down[0][0], f.down_n, NX, NF);
        imatrix_free(d);
    }
    remove(pg);
    remove(pd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(roundtrip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
