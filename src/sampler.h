/* sampler.h - next-token choice: repetition, presence and frequency
 * penalties, top-k, top-p, min-p,
 * temperature, seeded random draw (the reference's default chain order).
 * Temperature <= 0 is greedy argmax (lowest id on ties).  Defaults follow
 * DeepSeek's advice for R1: temperature 0.6, min-p 0.05.
 * Owns: sampler_* only.  A sampler is used by one thread; scratch is sized
 * at creation, nothing is allocated per token. */
#ifndef MS_SAMPLER_H
#define MS_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moestream.h"

/* The public struct itself (include/moestream.h): temp (<= 0 greedy),
 * top_k (0 off), top_p (1 off), min_p (0 off), repeat_penalty (1 off),
 * repeat_last_n, seed (0: pick one, sampler_seed tells which). */
typedef ms_sampler_params sampler_params;

typedef struct sampler sampler;

void sampler_params_default(sampler_params *p);
sampler *sampler_create(const sampler_params *p, uint32_t n_vocab);
void sampler_destroy(sampler *s); /* accepts NULL */
uint64_t sampler_seed(const sampler *s);

/* Chooses a token from logits (n_vocab; modified in place).  hist: the
 * tokens so far (for the repetition penalty). */
int32_t sampler_sample(sampler *s, float *logits, const int32_t *hist, size_t n_hist);

#endif
