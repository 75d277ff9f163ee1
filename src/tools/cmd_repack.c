/* cmd_repack.c - `moestream repack`: write a GGUF whose routed-expert
 * tensors are stored in the repacked 16-row layout (simd/repack.h), so the
 * engine reads them ready to use instead of repacking each matrix as it
 * lands in the pool or is loaded.
 *
 * Owns: choosing the tensors (ffn_{gate,up,down}_exps of a type with a
 * layout, whole 16-row groups), the private type ids and MS_REPACK_KEY in
 * the output (simd/quant.h), streaming the conversion one matrix at a time.
 * Does not own: the layout (simd/repack.c), the file format (src/gguf.c,
 * src/gguf_write.c: temp file, fsync, rename), what the engine does with
 * such a file (src/model.c: kept repacked or unpacked as read, by --repack).
 * Every other tensor and every metadata key is copied as it is; the output
 * is one file (a split input gives one merged output). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "gguf.h"
#include "gguf_write.h"
#include "quant.h"
#include "repack.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: moestream repack -m|--model IN.gguf -o|--output OUT.gguf [--dry-run]\n"
            "Writes OUT: IN with its routed experts (ffn_gate/up/down_exps) of the types the\n"
            "repacked 16-row layout covers (IQ1_S, IQ1_M, IQ2_XXS) stored in that layout, so\n"
            "the engine reads them ready to use (no repacking as they are loaded or paged in).\n"
            "OUT is moestream's own: private tensor types (1000 and up) and the key\n"
            "moestream.repack.version; other programs (llama.cpp) refuse it.  It runs on every\n"
            "CPU with the same results bit for bit: where the model commands' repack policy\n"
            "keeps experts plain (set to off, or a CPU without repacked kernels), they are\n"
            "unpacked as they are read.  Everything else is copied; the output is one file.\n"
            "  --dry-run   print what would be repacked and the sizes, write nothing\n");
}

/* blk.N.ffn_{gate,up,down}_exps.weight */
static bool is_routed_expert(const char *name)
{
    const char *p = strncmp(name, "blk.", 4) ? NULL : name + 4;
    if (!p || *p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    return !strcmp(p, ".ffn_gate_exps.weight") || !strcmp(p, ".ffn_up_exps.weight") ||
           !strcmp(p, ".ffn_down_exps.weight");
}

/* The private type tensor t is stored in, or -1 to copy it as it is. */
static int repacked_type(const gguf_tensor *t)
{
    if (!is_routed_expert(t->name) || t->n_dims != 3 || !repack_has_layout((int)t->type))
        return -1;
    if (t->ne[1] <= 0 || t->ne[1] % REPACK_ROWS || !repack_group_bytes((int)t->type, t->ne[0]))
        return -1;
    return quant_private_of((int)t->type);
}

typedef struct src_tensor {
    const gguf_file *g;
    const gguf_tensor *t;
    int type;                  /* plain type */
    bool repack;
    size_t in_mat, out_mat;    /* bytes per matrix in and out */
    uint8_t *plain, *rp;       /* one matrix each (repack only) */
    int64_t cur;               /* the matrix in rp, -1 none */
    char *err;
    size_t errlen;
} src_tensor;

static int fill_copy(void *ud, void *buf, uint64_t off, size_t n)
{
    src_tensor *s = ud;
    return gguf_read(s->g, s->t->part, s->t->offset + off, buf, n, s->err, s->errlen);
}

/* Bytes [off, off+n) of the repacked tensor: matrix by matrix, each read
 * and converted once (the writer asks in increasing order). */
static int fill_repacked(void *ud, void *buf, uint64_t off, size_t n)
{
    src_tensor *s = ud;
    uint8_t *o = buf;
    while (n) {
        const int64_t e = (int64_t)(off / s->out_mat);
        const size_t in = (size_t)(off % s->out_mat), k = s->out_mat - in < n ? s->out_mat - in : n;
        if (e != s->cur) {
            if (!s->plain && (!(s->plain = malloc(s->in_mat)) || !(s->rp = malloc(s->out_mat)))) {
                snprintf(s->err, s->errlen, "out of memory");
                return -ENOMEM;
            }
            int rc = gguf_read(s->g, s->t->part, s->t->offset + (uint64_t)e * s->in_mat, s->plain, s->in_mat, s->err,
                               s->errlen);
            if (!rc)
                rc = repack_rows(s->type, s->plain, quant_row_bytes(s->type, s->t->ne[0]), s->t->ne[1], s->t->ne[0],
                                 s->rp, s->err, s->errlen);
            if (rc)
                return rc;
            s->cur = e;
        }
        memcpy(o, s->rp + in, k);
        o += k, off += k, n -= k;
    }
    if (off == (uint64_t)s->out_mat * (uint64_t)s->t->ne[2]) { /* the last bytes: one matrix in memory at a time */
        free(s->plain), free(s->rp);
        s->plain = s->rp = NULL;
        s->cur = -1;
    }
    return 0;
}

int cmd_repack(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    bool dry = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--dry-run")) {
            dry = true;
            continue;
        }
        if ((!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-o") || !strcmp(a, "--output")) &&
            i + 1 < argc) {
            *(a[1] == 'm' || a[2] == 'm' ? &in : &out) = argv[++i];
            continue;
        }
        fprintf(stderr, "moestream repack: unknown option or missing value: %s\n", a);
        usage(stderr);
        return 2;
    }
    if (!in || (!out && !dry)) {
        usage(stderr);
        return 2;
    }
    struct stat si, so;
    if (out && stat(in, &si) == 0 && stat(out, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
        fprintf(stderr, "moestream repack: input and output are the same file: '%s' (the plain file is the one "
                        "other programs read)\n", in);
        return 1;
    }
    char err[1024] = "", ferr[1024] = ""; /* ferr: the fill callbacks' own (the writer names the tensor) */
    gguf_file *g = NULL;
    gguf_writer *w = NULL;
    src_tensor *st = NULL;
    size_t n_rp = 0;
    uint64_t bytes_in = 0, bytes_out = 0, rp_in = 0, rp_out = 0;
    int rc = gguf_open(&g, in, err, sizeof err);
    if (rc)
        goto done;
    if (g->repack_version) {
        snprintf(err, sizeof err, "%s: already repacked (moestream.repack.version %u)", in, g->repack_version);
        rc = -EINVAL;
        goto done;
    }
    st = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *st);
    w = gguf_writer_create();
    if (!st || !w) {
        rc = -ENOMEM;
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    rc = gguf_writer_copy_kvs(w, g, "split.");
    rc = rc ? rc : gguf_writer_set_u32(w, MS_REPACK_KEY, MS_REPACK_VERSION);
    for (uint64_t i = 0; i < g->n_tensors && !rc; i++) {
        const gguf_tensor *t = &g->tensors[i];
        const int pt = repacked_type(t);
        src_tensor *s = &st[i];
        *s = (src_tensor){.g = g, .t = t, .type = (int)t->type, .repack = pt >= 0, .cur = -1, .err = ferr,
                          .errlen = sizeof ferr};
        bytes_in += t->nbytes;
        if (s->repack) {
            s->in_mat = quant_row_bytes(s->type, t->ne[0]) * (size_t)t->ne[1];
            s->out_mat = repack_bytes(s->type, t->ne[1], t->ne[0]);
            n_rp++;
            rp_in += t->nbytes;
            rp_out += (uint64_t)s->out_mat * (uint64_t)t->ne[2];
            bytes_out += (uint64_t)s->out_mat * (uint64_t)t->ne[2];
            if (dry)
                printf("%-32s %-8s -> %-11s %10.3f MiB -> %10.3f MiB\n", t->name, quant_info(s->type)->name,
                       quant_info(pt)->name, (double)t->nbytes / 1048576.0,
                       (double)s->out_mat * (double)t->ne[2] / 1048576.0);
        } else {
            bytes_out += t->nbytes;
        }
        rc = gguf_writer_add_tensor(w, t->name, s->repack ? (uint32_t)pt : t->type, t->n_dims, t->ne, NULL,
                                    s->repack ? fill_repacked : fill_copy, s);
    }
    if (rc) {
        snprintf(err, sizeof err, "%s: cannot set up the output (%s)", out ? out : in, strerror(-rc));
        goto done;
    }
    fprintf(stderr, "repack: %zu of %llu tensors repacked: %.2f MiB -> %.2f MiB (%.3fx); file %.2f MiB -> %.2f MiB\n",
            n_rp, (unsigned long long)g->n_tensors, (double)rp_in / 1048576.0, (double)rp_out / 1048576.0,
            rp_in ? (double)rp_out / (double)rp_in : 1.0, (double)bytes_in / 1048576.0, (double)bytes_out / 1048576.0);
    if (!n_rp)
        fprintf(stderr, "repack: warning: %s has no routed experts of IQ1_S, IQ1_M or IQ2_XXS; the output "
                        "differs only by its moestream.repack.version key\n", in);
    if (!dry && (rc = gguf_writer_write(w, out, 0, NULL, err, sizeof err)) == 0)
        fprintf(stderr, "repack: wrote %s\n", out);
done:
    for (uint64_t i = 0; st && g && i < g->n_tensors; i++) {
        free(st[i].plain);
        free(st[i].rp);
    }
    free(st);
    gguf_writer_free(w);
    gguf_close(g);
    if (rc) {
        fprintf(stderr, "moestream repack: %s%s%s\n", err[0] ? err : strerror(-rc), ferr[0] ? ": " : "", ferr);
        return 1;
    }
    return 0;
}
