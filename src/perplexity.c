/* perplexity.c - the reference's perplexity and KL-divergence arithmetic
 * (tools/perplexity/perplexity.cpp of llama.cpp), expression by expression:
 * which parts are float and which double decides the last digits, and the
 * three runs (plain, writing base log-probs, reading them) each round
 * differently, which is why a KL run's PPL column differs from the plain
 * run's in the 7th digit and its "PPL(base)" is not the base model's PPL at
 * all: the base file floors every log-probability at 16 nats below the
 * maximum, so unlikely targets count as far likelier than they were.
 * The reference sums positions over threads in no fixed order; we sum in
 * position order (the doubles then agree to ~1e-15).
 * Owns: ppl_*; no evaluation, no files but the base file's header. */
#include "perplexity.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

size_t ppl_base_row_len(int n_vocab) { return 2 * (((size_t)n_vocab + 1) / 2) + 4; }

/* ---- per-position scoring ---- */

double ppl_nll(int n_vocab, const float *logits, int tok)
{
    float max_logit = logits[0];
    for (int i = 1; i < n_vocab; ++i)
        max_logit = logits[i] > max_logit ? logits[i] : max_logit;
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; ++i)
        sum_exp += expf(logits[i] - max_logit);
    /* float difference, then double: the reference's log_softmax */
    const float d = logits[tok] - max_logit;
    return -((double)d - log(sum_exp));
}

/* The reference's nearest_int: round to nearest through the float adder. */
static int nearest_int(float fval)
{
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

double ppl_nll_base_row(int n_vocab, const float *logits, int tok, uint16_t *row)
{
    float max_logit = logits[0], min_logit = logits[0];
    for (int i = 1; i < n_vocab; ++i) {
        max_logit = logits[i] > max_logit ? logits[i] : max_logit;
        min_logit = logits[i] < min_logit ? logits[i] : min_logit;
    }
    if (max_logit - 16 > min_logit)
        min_logit = max_logit - 16;
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; ++i)
        sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    const float min_log_prob = min_logit - max_logit - log_sum_exp;
    const float scale = (max_logit - min_logit) / 65535.f;
    memcpy(row, &scale, sizeof scale);
    memcpy(row + 2, &min_log_prob, sizeof min_log_prob);
    uint16_t *lp = row + 4;
    if (scale != 0.0f) {
        const float inv_scale = 1 / scale;
        for (int i = 0; i < n_vocab; ++i)
            lp[i] = logits[i] > min_logit ? (uint16_t)nearest_int(inv_scale * (logits[i] - min_logit))
                                          : 0;
    } else {
        memset(lp, 0, (size_t)n_vocab * sizeof *lp);
    }
    /* the padding element (odd vocabularies) is whatever the reference's
     * buffer held: zero-initialized, never written */
    if (n_vocab & 1)
        lp[n_vocab] = 0;
    const float nll = max_logit + log_sum_exp - logits[tok];
    return nll;
}

void ppl_kld_add(ppl_kld *k, int n_vocab, const float *logits, const uint16_t *base_row, int tok,
                 float *kld_out, float *p_diff_out)
{
    float max_logit = logits[0];
    int imax = 0;
    for (int i = 1; i < n_vocab; ++i)
        if (logits[i] > max_logit) {
            max_logit = logits[i];
            imax = i;
        }
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; ++i)
        sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    float scale, min_log_prob;
    memcpy(&scale, base_row, sizeof scale);
    memcpy(&min_log_prob, base_row + 2, sizeof min_log_prob);
    const uint16_t *lp = base_row + 4;

    const float nll = max_logit + log_sum_exp - logits[tok];
    k->sum_nll += nll;
    k->sum_nll2 += nll * nll; /* a float product, as the reference's */
    const float nll_base = -(scale * lp[tok] + min_log_prob);
    k->sum_nll_base += nll_base;
    k->sum_nll_base2 += nll_base * nll_base;
    k->sum_nll_nll_base += nll * nll_base;

    max_logit += log_sum_exp;
    double sum = 0;
    int imax_base = -1;
    float p_log_base_max = 0;
    for (int i = 0; i < n_vocab; ++i) {
        const float p_log_base = scale * lp[i] + min_log_prob;
        if (i == 0 || p_log_base > p_log_base_max) {
            p_log_base_max = p_log_base;
            imax_base = i;
        }
        if (p_log_base > -16.f) {
            const float p_base = expf(p_log_base);
            sum += p_base * (p_log_base - logits[i] + max_logit);
        }
    }
    k->sum_kld += sum;
    k->sum_kld2 += sum * sum;
    ++k->count;
    if (imax == imax_base)
        ++k->n_same_top;

    const float p_base = expf(-nll_base);
    const float p = expf(-nll);
    const float p_diff = p - p_base;
    k->sum_p_diff += p_diff;
    const double p_diff2 = p_diff * p_diff;
    k->sum_p_diff2 += p_diff2;
    k->sum_p_diff4 += p_diff2 * p_diff2;
    if (fabsf(p_diff) > k->max_p_diff)
        k->max_p_diff = fabsf(p_diff);
    *kld_out = (float)sum;
    *p_diff_out = p_diff;
}

/* ---- printing (the reference's lines, character for character) ---- */

typedef struct mu {
    double f, df;
} mu;

static mu mean_unc(double sum, double sum2, size_t count)
{
    mu r = {0, 0};
    if (count < 1)
        return r;
    r.f = sum / count;
    double df = sum2 / count - r.f * r.f;
    r.df = df > 0 && count > 10 ? sqrt(df / (count - 1)) : 0.;
    return r;
}

static double covariance(double suma, double sumb, double sumab, size_t count)
{
    if (count < 10)
        return 0.0;
    double var = sumab / count - (suma / count) * (sumb / count);
    var /= count - 1;
    return var;
}

void ppl_kld_print_header(FILE *f)
{
    fprintf(f, "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence      "
               "        Δp RMS            Same top p\n");
}

void ppl_kld_print_chunk(const ppl_kld *k, int chunk, FILE *f)
{
    fprintf(f, "%4d", chunk);
    const mu lp = mean_unc(k->sum_nll, k->sum_nll2, k->count);
    const double ppl_val = exp(lp.f);
    fprintf(f, "    %9.4lf ± %9.4lf", ppl_val, ppl_val * lp.df);
    const mu lb = mean_unc(k->sum_nll_base, k->sum_nll_base2, k->count);
    const double cov = covariance(k->sum_nll, k->sum_nll_base, k->sum_nll_nll_base, k->count);
    fprintf(f, "    %10.5lf ± %10.5lf", lp.f - lb.f, sqrt(lp.df * lp.df + lb.df * lb.df - 2.0 * cov));
    const mu kl = mean_unc(k->sum_kld, k->sum_kld2, k->count);
    fprintf(f, "    %10.5lf ± %10.5lf", kl.f, kl.df);
    const mu mse = mean_unc(k->sum_p_diff2, k->sum_p_diff4, k->count);
    const double rms = sqrt(mse.f);
    fprintf(f, "    %6.3lf ± %6.3lf %%", 100.0 * rms, 100.0 * (0.5 / rms * mse.df));
    const double top = 1. * k->n_same_top / k->count;
    fprintf(f, "    %6.3lf ± %6.3lf %%", 100.0 * top, 100.0 * sqrt(top * (1 - top) / (k->count - 1)));
    fprintf(f, "\n");
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The reference's percentile: linear between neighbours, in float. */
static float percentile(const float *v, size_t n, float fraction)
{
    if (fraction <= 0)
        return v[0];
    if (fraction >= 1)
        return v[n - 1];
    float p = fraction * (float)(n - 1);
    size_t ip = (size_t)p;
    p -= (float)ip;
    return (1 - p) * v[ip] + p * v[ip + 1 < n ? ip + 1 : n - 1];
}

static float median(const float *v, size_t n)
{
    return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

void ppl_kld_print_summary(const ppl_kld *k, float *kld, float *p_diff, size_t n, FILE *f)
{
    if (k->count < 100 || n == 0)
        return;
    qsort(kld, n, sizeof *kld, cmp_float);
    qsort(p_diff, n, sizeof *p_diff, cmp_float);

    fprintf(f, "====== Perplexity statistics ======\n");
    const mu lp = mean_unc(k->sum_nll, k->sum_nll2, k->count);
    const double ppl_val = exp(lp.f), ppl_unc = ppl_val * lp.df;
    fprintf(f, "Mean PPL(Q)                   : %10.6lf ± %10.6lf\n", ppl_val, ppl_unc);
    const mu lb = mean_unc(k->sum_nll_base, k->sum_nll_base2, k->count);
    const double base_val = exp(lb.f), base_unc = base_val * lb.df;
    fprintf(f, "Mean PPL(base)                : %10.6lf ± %10.6lf\n", base_val, base_unc);
    const double cov = covariance(k->sum_nll, k->sum_nll_base, k->sum_nll_nll_base, k->count);
    fprintf(f, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2lf%%\n", 100.0 * (cov / (lp.df * lb.df)));
    const double ratio_val = lp.f - lb.f;
    const double ratio_unc = sqrt(lp.df * lp.df + lb.df * lb.df - 2.0 * cov);
    fprintf(f, "Mean ln(PPL(Q)/PPL(base))     : %10.6lf ± %10.6lf\n", ratio_val, ratio_unc);
    const double pr = exp(ratio_val);
    fprintf(f, "Mean PPL(Q)/PPL(base)         : %10.6lf ± %10.6lf\n", pr, pr * ratio_unc);
    const double ppl_cov = ppl_val * base_val * cov;
    fprintf(f, "Mean PPL(Q)-PPL(base)         : %10.6lf ± %10.6lf\n", ppl_val - base_val,
            sqrt(ppl_unc * ppl_unc + base_unc * base_unc - 2.0 * ppl_cov));
    fprintf(f, "\n");

    fprintf(f, "====== KL divergence statistics ======\n");
    const mu kl = mean_unc(k->sum_kld, k->sum_kld2, k->count);
    fprintf(f, "Mean    KLD: %10.6lf ± %10.6lf\n", kl.f, kl.df);
    fprintf(f, "Maximum KLD: %10.6f\n", kld[n - 1]);
    static const float kfr[] = {0.999f, 0.990f, 0.950f, 0.900f};
    static const char *const kname[] = {"99.9%", "99.0%", "95.0%", "90.0%"};
    for (int i = 0; i < 4; i++)
        fprintf(f, "%s   KLD: %10.6f\n", kname[i], percentile(kld, n, kfr[i]));
    fprintf(f, "Median  KLD: %10.6f\n", median(kld, n));
    static const float lfr[] = {0.100f, 0.050f, 0.010f, 0.001f};
    static const char *const lname[] = {"10.0%", " 5.0%", " 1.0%", " 0.1%"};
    for (int i = 0; i < 4; i++)
        fprintf(f, "%s   KLD: %10.6f\n", lname[i], percentile(kld, n, lfr[i]));
    fprintf(f, "Minimum KLD: %10.6f\n", kld[0]);
    fprintf(f, "\n");

    fprintf(f, "====== Token probability statistics ======\n");
    const mu pd = mean_unc(k->sum_p_diff, k->sum_p_diff2, k->count);
    fprintf(f, "Mean    Δp: %6.3lf ± %5.3lf %%\n", 100.0 * pd.f, 100.0 * pd.df);
    fprintf(f, "Maximum Δp: %6.3lf%%\n", 100.0 * p_diff[n - 1]);
    static const float hfr[] = {0.999f, 0.990f, 0.950f, 0.900f, 0.750f};
    static const char *const hname[] = {"99.9%", "99.0%", "95.0%", "90.0%", "75.0%"};
    for (int i = 0; i < 5; i++)
        fprintf(f, "%s   Δp: %6.3lf%%\n", hname[i], 100.0 * percentile(p_diff, n, hfr[i]));
    fprintf(f, "Median  Δp: %6.3lf%%\n", 100.0 * median(p_diff, n));
    static const float pfr[] = {0.250f, 0.100f, 0.050f, 0.010f, 0.001f};
    static const char *const pname[] = {"25.0%", "10.0%", " 5.0%", " 1.0%", " 0.1%"};
    for (int i = 0; i < 5; i++)
        fprintf(f, "%s   Δp: %6.3lf%%\n", pname[i], 100.0 * percentile(p_diff, n, pfr[i]));
    fprintf(f, "Minimum Δp: %6.3lf%%\n", 100.0 * p_diff[0]);
    const mu mse = mean_unc(k->sum_p_diff2, k->sum_p_diff4, k->count);
    const double rms = sqrt(mse.f);
    fprintf(f, "RMS Δp    : %6.3lf ± %5.3lf %%\n", 100.0 * rms, 100.0 * (0.5 / rms * mse.df));
    const double top = 1.0 * k->n_same_top / k->count;
    fprintf(f, "Same top p: %6.3lf ± %5.3lf %%\n", 100.0 * top,
            100.0 * sqrt(top * (1.0 - top) / (k->count - 1)));
}

/* ---- base-logits file ---- */

static const char magic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

int ppl_base_write_header(FILE *f, const ppl_base_hdr *h, const int32_t *tokens, char *err,
                          size_t errlen)
{
    const size_t nt = (size_t)h->n_chunk * (size_t)h->n_ctx;
    if (fwrite(magic, 1, 8, f) != 8 || fwrite(&h->n_ctx, 4, 1, f) != 1 ||
        fwrite(&h->n_vocab, 4, 1, f) != 1 || fwrite(&h->n_chunk, 4, 1, f) != 1 ||
        fwrite(tokens, 4, nt, f) != nt)
        return fail(err, errlen, -EIO, "cannot write the base-logits header: %s", strerror(errno));
    return 0;
}

int ppl_base_read_header(FILE *f, const char *path, ppl_base_hdr *h, int32_t **tokens, char *err,
                         size_t errlen)
{
    char m[8];
    *tokens = NULL;
    if (fread(m, 1, 8, f) != 8 || memcmp(m, magic, 8))
        return fail(err, errlen, -EBADMSG, "%s does not look like a file of base log-probabilities "
                                           "(no _logits_ magic)", path);
    if (fread(&h->n_ctx, 4, 1, f) != 1 || fread(&h->n_vocab, 4, 1, f) != 1 ||
        fread(&h->n_chunk, 4, 1, f) != 1)
        return fail(err, errlen, -EBADMSG, "%s: truncated header", path);
    if (h->n_ctx < 4 || h->n_ctx > (1 << 24) || h->n_vocab < 1 || h->n_vocab > (1 << 24) ||
        h->n_chunk < 1 || (int64_t)h->n_chunk * h->n_ctx > (1 << 28))
        return fail(err, errlen, -EBADMSG, "%s: implausible header n_ctx %d n_vocab %d n_chunk %d",
                    path, h->n_ctx, h->n_vocab, h->n_chunk);
    const size_t nt = (size_t)h->n_chunk * (size_t)h->n_ctx;
    int32_t *t = malloc(nt * sizeof *t);
    if (!t)
        return fail(err, errlen, -ENOMEM, "%s: no memory for %zu tokens", path, nt);
    if (fread(t, 4, nt, f) != nt) {
        free(t);
        return fail(err, errlen, -EBADMSG, "%s: truncated token list (%zu tokens expected)", path, nt);
    }
    *tokens = t;
    return 0;
}
