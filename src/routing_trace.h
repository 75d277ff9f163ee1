/* routing_trace.h - recorded expert routing (which experts each token chose
 * in each MoE layer), loaded for replaying against the cache policies
 * (`moestream replay`) and for benchmarks that take the experts from a
 * recording instead of the router (--bench-routing-trace).
 *
 * Sources: a directory of ESFT expert logs (expert_weights_N.txt[.gz], one
 * line per sequence: ids token-major in groups of topk, a double tab, the
 * matching gate weights; ../shared/routing/README.md), or a file written by
 * --trace-routing (lines "layer pos id id ...", layers renumbered 0.. in
 * order of appearance, no weights).
 *
 * Owns: rtrace_* only.  Loading reads files (gzip through `gzip -dc`);
 * everything else is pure. */
#ifndef MS_ROUTING_TRACE_H
#define MS_ROUTING_TRACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct rtrace {
    int n_tok, n_layers, topk, n_expert;
    int32_t *ids; /* (n_tok, n_layers, topk): expert ids, -1 = none */
    float *w;     /* (n_tok, n_layers, topk): gate weights, or NULL (none recorded) */
} rtrace;

/* topk: ids per token in ESFT logs (6 for the ESFT models).  0 or -errno
 * with a message; *t is zeroed first and freed again on failure. */
int rtrace_load(rtrace *t, const char *path, int topk, char *err, size_t errlen);
void rtrace_free(rtrace *t); /* accepts a zeroed trace */

/* The experts a model with n_expert experts, top-k, takes at MoE layer
 * `moe_layer` (0 = the first MoE layer) and position pos, from the trace:
 *  - layer: trace layer moe_layer mod n_layers (each trace layer's temporal
 *    pattern replayed per model layer, cyclically);
 *  - token: trace token pos mod n_tok;
 *  - ids: trace id e -> e * R + s mod R, R = n_expert / trace n_expert
 *    (64 ids spread over 256: 0,4,8,...), s the source below;
 *  - count: source s = 0 is that trace layer's choice, in recorded order;
 *    while fewer than k distinct ids are taken, source s = 1, 2, ... is
 *    trace layer (moe_layer + s) mod n_layers of the same token.  k below
 *    the trace's topk takes the first k.
 * Needs n_expert >= the trace's n_expert (-EINVAL otherwise, see
 * rtrace_check).  Writes k ids to sel. */
void rtrace_pick(const rtrace *t, int moe_layer, int pos, int n_expert, int k, int32_t *sel);
/* 0 if rtrace_pick can serve a model with n_expert experts, top-k; else
 * -EINVAL with a message. */
int rtrace_check(const rtrace *t, int n_expert, int k, char *err, size_t errlen);

#endif
