/* repack.c - the repacked i-quant layouts (see repack.h): conversion from
 * and to the GGUF rows, and products over them.
 *
 * Owns: repack_*.  Does not own the AVX-512 kernel (kern_repack_avx512.c,
 * compiled with the ISA flags) nor the plain kernels it falls back to.
 * Invariants: conversion is exact both ways (repack_unpack_row gives back the
 * bytes repack_rows read), so every product over the repacked layout can be
 * checked against the plain kernels bit for bit. */
#include "repack.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant.h"
#include "quant_blocks.h"
#include "quant_grids.h"

/* ---- geometry ----
 * A group holds nb blocks as arrays, one after the other: array a of block b
 * at nb * (the sizes of the arrays before a) + b * size[a].  IQ1_S/IQ1_M:
 * array 0 is the codes; then IQ1_S: scales (u32 per row: nibble ib = ls3 |
 * sign << 3), d (half per row); IQ1_M: scales of sub-blocks 0-3 and 4-7 (u32
 * per row: nibble i = ls3 of the 16 elements 16i.. of that half block), delta
 * signs (u32 per row: bit i = the sign of the 8 elements 8i..), d (the half
 * the GGUF spreads over the scales' top nibbles).
 * IQ2_XXS: grid indices (8 x 64 bytes: sub-block ib's zmm, dword r = row r's
 * four indices, the GGUF's aux[0]), signs (64 tuples x 8 bytes: bit 4r + q
 * of tuple s's qword = the sign of element 4s + q of row r, the stored 7
 * bits with their parity bit: a kmov mask per tuple), scales (u32 per row:
 * nibble ib = aux[1] >> 28 of sub-block ib), d (half per row): 70 bytes per
 * row and block against the GGUF's 66 (1.06x). */

enum { MAX_ARRAYS = 5 };

typedef struct {
    int narrays;
    int size[MAX_ARRAYS]; /* bytes per block of each array */
} geometry;

static const geometry GEO_IQ1S = {3, {REPACK_CODE_BYTES, 64, 32}};
static const geometry GEO_IQ1M = {5, {REPACK_CODE_BYTES, 64, 64, 64, 32}};
static const geometry GEO_IQ2XXS = {4, {512, 512, 64, 32}};

static const geometry *geo(int type)
{
    return type == MS_TYPE_IQ1_S ? &GEO_IQ1S : type == MS_TYPE_IQ1_M ? &GEO_IQ1M
         : type == MS_TYPE_IQ2_XXS ? &GEO_IQ2XXS : NULL;
}

static int geo_block_bytes(const geometry *G)
{
    int t = 0;
    for (int a = 0; a < G->narrays; a++)
        t += G->size[a];
    return t;
}

/* 8 grid values as base-3 digits g+1 (digit i weighs 3^i) -> grid index,
 * 0xffff where no grid row has those values */
static uint16_t iq1s_rev[6561];
/* a code byte (< 243) as its five base-3 digits, digit 0 first */
static uint8_t code_digits[243][5];
static pthread_once_t rev_once = PTHREAD_ONCE_INIT;

static void rev_init(void)
{
    for (unsigned v = 0; v < 243; v++)
        for (unsigned j = 0, x = v; j < 5; j++, x /= 3)
            code_digits[v][j] = (uint8_t)(x % 3);
    memset(iq1s_rev, 0xff, sizeof iq1s_rev);
    for (int i = 0; i < 2048; i++) {
        int8_t g[8];
        memcpy(g, &iq1s_grid[i], 8);
        int code = 0;
        for (int j = 7; j >= 0; j--)
            code = 3 * code + (g[j] + 1);
        iq1s_rev[code] = (uint16_t)i;
    }
}

bool repack_has_layout(int type)
{
    return geo(type) != NULL;
}

size_t repack_group_bytes(int type, int64_t n)
{
    const geometry *G = geo(type);
    if (!G || n <= 0 || n % QK_K || n / QK_K > REPACK_MAX_BLOCKS)
        return 0;
    return (size_t)(n / QK_K) * (size_t)geo_block_bytes(G);
}

size_t repack_bytes(int type, int64_t rows, int64_t n)
{
    const size_t gb = repack_group_bytes(type, n);
    if (!gb || rows <= 0)
        return 0;
    return (size_t)((rows + REPACK_ROWS - 1) / REPACK_ROWS) * gb;
}

/* array a of group g, block b */
static uint8_t *arr(const geometry *G, const void *rp, int64_t nb, int64_t g, int a, int64_t b)
{
    size_t off = (size_t)g * (size_t)nb * (size_t)geo_block_bytes(G);
    for (int i = 0; i < a; i++)
        off += (size_t)nb * (size_t)G->size[i];
    return (uint8_t *)rp + off + (size_t)b * (size_t)G->size[a];
}

/* the 256 digits g+1 of a row's block (as 64 tuples of 4 bytes) into lane
 * r of the codes: byte q of code word k = sum over j of digit q of tuple
 * 5k+j times 3^j, done for the four bytes at once in a uint32 (at most
 * 2 x 121 = 242 per byte: no carry crosses a byte) */
static void codes_pack(const uint8_t t[QK_K], uint8_t *codes, int r)
{
    uint32_t tu[65];
    memcpy(tu, t, QK_K);
    tu[64] = 0;
    for (int k = 0; k < 13; k++) {
        const uint32_t *x = tu + 5 * k;
        const uint32_t v = x[0] + 3 * x[1] + 9 * x[2] + 27 * x[3] + 81 * x[4]; /* tuple 64 is tu[64] = 0 */
        memcpy(codes + 64 * k + 4 * r, &v, 4);
    }
}

/* (a table of digits, not divisions: unpacking runs as a repacked file's
 * experts land in the pool on CPUs that keep them plain) */
static void codes_unpack(const uint8_t *codes, int r, uint8_t t[QK_K])
{
    for (int k = 0; k < 13; k++)
        for (int q = 0; q < 4; q++) {
            const uint8_t *d = code_digits[codes[64 * k + 4 * r + q] % 243]; /* < 243 when packed by codes_pack */
            for (int j = 0; j < 5 && 5 * k + j < 64; j++)
                t[4 * (5 * k + j) + q] = d[j];
        }
}

/* grid row idx as digits at t[0..7] (the grid plus one in every byte: its
 * values are -1, 0, 1) */
static void grid_digits(unsigned idx, uint8_t *t)
{
    uint64_t g;
    memcpy(&g, &iq1s_grid[idx], 8);
    const uint64_t hi = 0x8080808080808080ull; /* bytewise, no carries: 0xff + 1 = 0 */
    g = ((g & ~hi) + 0x0101010101010101ull) ^ (g & hi);
    memcpy(t, &g, 8);
}

static unsigned grid_index(const uint8_t *t)
{
    int code = 0;
    for (int j = 7; j >= 0; j--)
        code = 3 * code + t[j];
    return iq1s_rev[code] == 0xffff ? 0 : iq1s_rev[code];
}

/* ---- IQ1_S ---- */

static void iq1s_pack_block(const block_iq1_s *x, uint8_t *const a[MAX_ARRAYS], int r)
{
    uint8_t t[QK_K];
    uint32_t sc = 0;
    for (int ib = 0; ib < 8; ib++) {
        const uint16_t h = x->qh[ib];
        sc |= (uint32_t)(((h >> 12) & 7) | ((h >> 15) << 3)) << (4 * ib);
        for (int l = 0; l < 4; l++)
            grid_digits(x->qs[4 * ib + l] | (((h >> 3 * l) & 7) << 8), t + 32 * ib + 8 * l);
    }
    codes_pack(t, a[0], r);
    memcpy(a[1] + 4 * r, &sc, 4);
    memcpy(a[2] + 2 * r, &x->d, 2);
}

static void iq1s_unpack_block(uint8_t *const a[MAX_ARRAYS], int r, block_iq1_s *x)
{
    uint8_t t[QK_K];
    codes_unpack(a[0], r, t);
    uint32_t sc;
    memcpy(&sc, a[1] + 4 * r, 4);
    memcpy(&x->d, a[2] + 2 * r, 2);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t nib = (sc >> (4 * ib)) & 15;
        uint16_t h = (uint16_t)(((nib & 7) << 12) | ((nib >> 3) << 15));
        for (int l = 0; l < 4; l++) {
            const unsigned idx = grid_index(t + 32 * ib + 8 * l);
            x->qs[4 * ib + l] = (uint8_t)idx;
            h |= (uint16_t)((idx >> 8) << (3 * l));
        }
        x->qh[ib] = h;
    }
}

/* ---- IQ1_M ---- */

static void iq1m_pack_block(const block_iq1_m *x, uint8_t *const a[MAX_ARRAYS], int r)
{
    uint8_t t[QK_K];
    uint16_t sc[4];
    memcpy(sc, x->scales, 8);
    uint32_t ls[2] = {0, 0}, delta = 0;
    for (int ib = 0; ib < 8; ib++) {
        for (int half = 0; half < 2; half++)
            ls[ib / 4] |= (uint32_t)((sc[ib / 2] >> (6 * (ib % 2) + 3 * half)) & 7) << (4 * (2 * (ib % 4) + half));
        for (int l = 0; l < 4; l++) {
            const uint8_t h = x->qh[2 * ib + l / 2];
            const unsigned hb = l % 2 ? h >> 4 : h & 15;
            grid_digits(x->qs[4 * ib + l] | ((hb & 7) << 8), t + 32 * ib + 8 * l);
            delta |= (uint32_t)(hb >> 3) << (4 * ib + l);
        }
    }
    const uint16_t d = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    codes_pack(t, a[0], r);
    memcpy(a[1] + 4 * r, &ls[0], 4);
    memcpy(a[2] + 4 * r, &ls[1], 4);
    memcpy(a[3] + 4 * r, &delta, 4);
    memcpy(a[4] + 2 * r, &d, 2);
}

static void iq1m_unpack_block(uint8_t *const a[MAX_ARRAYS], int r, block_iq1_m *x)
{
    uint8_t t[QK_K];
    codes_unpack(a[0], r, t);
    uint32_t ls[2], delta;
    uint16_t d, sc[4];
    memcpy(&ls[0], a[1] + 4 * r, 4);
    memcpy(&ls[1], a[2] + 4 * r, 4);
    memcpy(&delta, a[3] + 4 * r, 4);
    memcpy(&d, a[4] + 2 * r, 2);
    for (int w = 0; w < 4; w++)
        sc[w] = (uint16_t)(((d >> (4 * w)) & 15) << 12);
    for (int ib = 0; ib < 8; ib++) {
        for (int half = 0; half < 2; half++)
            sc[ib / 2] |= (uint16_t)(((ls[ib / 4] >> (4 * (2 * (ib % 4) + half))) & 7) << (6 * (ib % 2) + 3 * half));
        x->qh[2 * ib] = x->qh[2 * ib + 1] = 0;
        for (int l = 0; l < 4; l++) {
            const unsigned idx = grid_index(t + 32 * ib + 8 * l);
            x->qs[4 * ib + l] = (uint8_t)idx;
            const unsigned hb = (idx >> 8) | (((delta >> (4 * ib + l)) & 1) << 3);
            x->qh[2 * ib + l / 2] |= (uint8_t)(l % 2 ? hb << 4 : hb);
        }
    }
    memcpy(x->scales, sc, 8);
}

/* ---- IQ2_XXS ---- */

/* row r's indices, scales and d; its 8 x 32 signs (the stored 7 bits and
 * their parity, byte l of word ib for grid row l) into sw for
 * iq2xxs_pack_signs */
static void iq2xxs_pack_block(const block_iq2_xxs *x, uint8_t *const a[MAX_ARRAYS], int r, uint32_t sw[8])
{
    uint32_t sc = 0;
    for (int ib = 0; ib < 8; ib++) {
        uint32_t aux[2];
        memcpy(aux, x->qs + 4 * ib, 8);
        memcpy(a[0] + 64 * ib + 4 * r, &aux[0], 4);
        sc |= (aux[1] >> 28) << (4 * ib);
        sw[ib] = 0;
        for (int l = 0; l < 4; l++)
            sw[ib] |= (uint32_t)ksigns_iq2xs[(aux[1] >> (7 * l)) & 127] << (8 * l);
    }
    memcpy(a[2] + 4 * r, &sc, 4);
    memcpy(a[3] + 2 * r, &x->d, 2);
}

/* the group's sign masks: tuple s = 8ib + m, bit 4r + q = sign of element
 * 4m + q of sub-block ib of row r = bit 4m + q of sw[r][ib] */
static void iq2xxs_pack_signs(const uint32_t sw[REPACK_ROWS][8], uint8_t *signs)
{
    for (int ib = 0; ib < 8; ib++)
        for (int m = 0; m < 8; m++) {
            uint64_t v = 0;
            for (int r = 0; r < REPACK_ROWS; r++)
                v |= (uint64_t)((sw[r][ib] >> (4 * m)) & 15) << (4 * r);
            memcpy(signs + 8 * (8 * ib + m), &v, 8);
        }
}

static void iq2xxs_unpack_block(uint8_t *const a[MAX_ARRAYS], int r, block_iq2_xxs *x)
{
    uint32_t sc;
    memcpy(&sc, a[2] + 4 * r, 4);
    memcpy(&x->d, a[3] + 2 * r, 2);
    for (int ib = 0; ib < 8; ib++) {
        uint32_t aux[2];
        memcpy(&aux[0], a[0] + 64 * ib + 4 * r, 4);
        aux[1] = ((sc >> (4 * ib)) & 15) << 28;
        for (int l = 0; l < 4; l++) {
            /* the low 7 bits of the sign byte are the stored ones (bit 7 is
             * their parity) */
            unsigned signs = 0;
            for (int h = 0; h < 2; h++)
                signs |= (unsigned)((a[1][8 * (8 * ib + 2 * l + h) + r / 2] >> (4 * (r % 2))) & 15) << (4 * h);
            aux[1] |= (signs & 127) << (7 * l);
        }
        memcpy(x->qs + 4 * ib, aux, 8);
    }
}

/* ---- conversion ---- */

int repack_rows(int type, const void *src, size_t src_stride, int64_t rows, int64_t n, void *dst, char *err,
                size_t errlen)
{
    if (!repack_bytes(type, rows, n)) {
        snprintf(err, errlen, "repack: no layout for type %d with %lld rows of %lld elements", type,
                 (long long)rows, (long long)n);
        return -EINVAL;
    }
    pthread_once(&rev_once, rev_init);
    const geometry *G = geo(type);
    const int64_t nb = n / QK_K, ng = (rows + REPACK_ROWS - 1) / REPACK_ROWS;
    const size_t bs = (size_t)quant_info(type)->type_size;
    const uint8_t zero[sizeof(block_iq2_xxs)] = {0}; /* the largest block */
    _Static_assert(sizeof(block_iq2_xxs) >= sizeof(block_iq1_m) && sizeof(block_iq1_m) >= sizeof(block_iq1_s),
                   "zero block");
    for (int64_t g = 0; g < ng; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *a[MAX_ARRAYS];
            for (int i = 0; i < G->narrays; i++)
                a[i] = arr(G, dst, nb, g, i, b);
            uint32_t sw[REPACK_ROWS][8]; /* IQ2_XXS signs */
            for (int r = 0; r < REPACK_ROWS; r++) {
                const int64_t row = g * REPACK_ROWS + r;
                const uint8_t *x = row < rows ? (const uint8_t *)src + (size_t)row * src_stride + (size_t)b * bs : zero;
                if (type == MS_TYPE_IQ1_S)
                    iq1s_pack_block((const block_iq1_s *)x, a, r);
                else if (type == MS_TYPE_IQ1_M)
                    iq1m_pack_block((const block_iq1_m *)x, a, r);
                else
                    iq2xxs_pack_block((const block_iq2_xxs *)x, a, r, sw[r]);
            }
            if (type == MS_TYPE_IQ2_XXS)
                iq2xxs_pack_signs((const uint32_t(*)[8])sw, a[1]);
        }
    return 0;
}

void repack_unpack_row(int type, const void *rp, int64_t n, int64_t r, void *dst)
{
    pthread_once(&rev_once, rev_init);
    const geometry *G = geo(type);
    const int64_t nb = n / QK_K, g = r / REPACK_ROWS;
    const int lane = (int)(r % REPACK_ROWS);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *a[MAX_ARRAYS];
        for (int i = 0; i < G->narrays; i++)
            a[i] = arr(G, rp, nb, g, i, b);
        if (type == MS_TYPE_IQ1_S)
            iq1s_unpack_block(a, lane, (block_iq1_s *)dst + b);
        else if (type == MS_TYPE_IQ1_M)
            iq1m_unpack_block(a, lane, (block_iq1_m *)dst + b);
        else
            iq2xxs_unpack_block(a, lane, (block_iq2_xxs *)dst + b);
    }
}

void repack_unpack_rows(int type, const void *rp, int64_t n, int64_t rows, void *dst, size_t dst_stride)
{
    for (int64_t r = 0; r < rows; r++)
        repack_unpack_row(type, rp, n, r, (uint8_t *)dst + (size_t)r * dst_stride);
}

/* ---- the policy ---- */

static int mode_cur = -1; /* -1: not yet read from the environment */
static pthread_mutex_t mode_mu = PTHREAD_MUTEX_INITIALIZER;

static int mode_parse(const char *s)
{
    return !strcmp(s, "auto") ? REPACK_AUTO : !strcmp(s, "on") ? REPACK_ON : !strcmp(s, "off") ? REPACK_OFF : -1;
}

int repack_mode_set(const char *mode)
{
    const int m = mode ? mode_parse(mode) : -1;
    if (m < 0)
        return -EINVAL;
    pthread_mutex_lock(&mode_mu);
    mode_cur = m;
    pthread_mutex_unlock(&mode_mu);
    return 0;
}

int repack_mode(void)
{
    pthread_mutex_lock(&mode_mu);
    if (mode_cur < 0) {
        const char *e = getenv("MOESTREAM_REPACK");
        const int m = e && *e ? mode_parse(e) : REPACK_AUTO;
        if (m < 0)
            fprintf(stderr, "moestream: MOESTREAM_REPACK=%s is not auto|on|off; using auto\n", e);
        mode_cur = m < 0 ? REPACK_AUTO : m;
    }
    const int m = mode_cur;
    pthread_mutex_unlock(&mode_mu);
    return m;
}

/* auto measures instead of assuming (the plain kernels' gathers are fast on
 * some CPUs, slow on others): once, the plain table's GEMV against the
 * repacked one on a 64 x 7168 random tensor of each type, best of 5
 * interleaved rounds of thread CPU time (a busy neighbour inflates both
 * alike), the weights in cache (the arithmetic is what differs; both read
 * about the same bytes).  ~1 ms. */
/* the types with a layout, in the order of the calibration arrays */
static const int RP_TYPES[] = {MS_TYPE_IQ1_S, MS_TYPE_IQ1_M, MS_TYPE_IQ2_XXS};
#define RP_NTYPES ((int)(sizeof RP_TYPES / sizeof RP_TYPES[0]))

static int rp_slot(int type)
{
    for (int i = 0; i < RP_NTYPES; i++)
        if (RP_TYPES[i] == type)
            return i;
    return -1;
}

static struct {
    bool use[RP_NTYPES];
    double ns_plain[RP_NTYPES], ns_rp[RP_NTYPES]; /* per row and block */
    bool measured[RP_NTYPES];
} calib;
static pthread_once_t calib_once = PTHREAD_ONCE_INIT;

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void calib_run(void)
{
    const kern_table *kt = kern_get();
    const int64_t n = 7168, rows = 64;
    for (int ti = 0; ti < RP_NTYPES; ti++) {
        const int type = RP_TYPES[ti];
        if (!repack_fast(kt, type))
            continue;
        const size_t wr = quant_row_bytes(type, n), ar = quant_row_bytes(MS_TYPE_Q8_K, n);
        uint8_t *w = malloc(wr * rows), *rp = malloc(repack_bytes(type, rows, n)), *a = malloc(ar);
        float *x = malloc((size_t)n * 4), out[64];
        char err[128];
        uint64_t rng = 0x5eed + (uint64_t)ti;
        if (w && rp && a && x) {
            quant_fill_random(type, w, rows * (n / QK_K), &rng, 1.0f);
            for (int64_t i = 0; i < n; i++)
                x[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
            kt->quantize[MS_TYPE_Q8_K](x, a, n);
            if (!repack_rows(type, w, wr, rows, n, rp, err, sizeof err)) {
                double bp = 1e30, br = 1e30;
                for (int it = 0; it < 6; it++) { /* round 0 warms up */
                    double t0 = cpu_s();
                    kt->mul_mat[type](n, w, wr, 0, rows, a, ar, 1, out, rows);
                    const double tp = cpu_s() - t0;
                    t0 = cpu_s();
                    repack_mul_mat(kt, type, n, rp, 0, rows, a, ar, 1, out, rows);
                    const double trp = cpu_s() - t0;
                    if (it) {
                        bp = tp < bp ? tp : bp;
                        br = trp < br ? trp : br;
                    }
                }
                const double per = 1e9 / (double)(rows * (n / QK_K));
                calib.ns_plain[ti] = bp * per;
                calib.ns_rp[ti] = br * per;
                calib.use[ti] = br < bp;
                calib.measured[ti] = true;
            }
        }
        free(w), free(rp), free(a), free(x);
    }
}

bool repack_use(int type, int64_t n)
{
    if (!repack_group_bytes(type, n))
        return false;
    const int m = repack_mode();
    if (m != REPACK_AUTO)
        return m == REPACK_ON;
    if (!repack_fast(kern_get(), type))
        return false;
    pthread_once(&calib_once, calib_run);
    return calib.use[rp_slot(type)];
}

void repack_describe(char *buf, size_t len)
{
    static const char *names[] = {"auto", "on", "off"};
    const kern_table *kt = kern_get();
    const int m = repack_mode();
    size_t o = (size_t)snprintf(buf, len, "repack %s (16-row groups, shuffle decode, no gathers):", names[m]);
    for (int ti = 0; ti < RP_NTYPES && o < len; ti++) {
        const int type = RP_TYPES[ti];
        const bool fast = repack_fast(kt, type);
        if (m == REPACK_AUTO && fast)
            pthread_once(&calib_once, calib_run);
        const bool use = m == REPACK_ON || (m == REPACK_AUTO && fast && calib.use[ti]);
        o += (size_t)snprintf(buf + o, len - o, " %s %s", quant_info(type)->name, use ? "repacked" : "plain");
        if (o >= len)
            break;
        if (m == REPACK_OFF)
            o += (size_t)snprintf(buf + o, len - o, " (--repack off);");
        else if (!fast)
            o += (size_t)snprintf(buf + o, len - o, " (%s table: no repacked kernel%s);", kt->isa,
                                  m == REPACK_ON ? ", rows unpacked per product" : "");
        else if (m == REPACK_ON || !calib.measured[ti])
            o += (size_t)snprintf(buf + o, len - o, " (forced);");
        else
            o += (size_t)snprintf(buf + o, len - o, " (measured %.1f ns per row-block plain, %.1f repacked);",
                                  calib.ns_plain[ti], calib.ns_rp[ti]);
    }
}

/* ---- products ---- */

bool repack_fast(const kern_table *kt, int type)
{
#if defined(__x86_64__)
    return repack_has_layout(type) && !strcmp(kt->isa, "avx512");
#else
    (void)kt;
    (void)type;
    return false;
#endif
}

void repack_mul_mat(const kern_table *kt, int type, int64_t n, const void *rp, int64_t row0, int64_t row1,
                    const void *a, size_t a_stride, int64_t ncols, float *out, size_t out_stride)
{
    if (row0 >= row1)
        return;
#if defined(__x86_64__)
    if (repack_fast(kt, type)) {
        repack_avx512(type, n, rp, repack_group_bytes(type, n), row0 / REPACK_ROWS,
                      (row1 + REPACK_ROWS - 1) / REPACK_ROWS, row0, row1, a, a_stride, ncols, out, out_stride);
        return;
    }
#endif
    /* one plain row at a time through the table's own kernel */
    block_iq2_xxs row[REPACK_MAX_BLOCKS]; /* the largest block (see repack_rows) */
    for (int64_t r = row0; r < row1; r++) {
        repack_unpack_row(type, rp, n, r, row);
        kt->mul_mat[type](n, row, 0, 0, 1, a, a_stride, ncols, out + r, out_stride);
    }
}
