/* imatrix_load.h - reading importance matrices for the quantizer, in both
 * formats the reference writes: GGUF (<name>.in_sum2 / <name>.counts tensors
 * plus imatrix.* metadata) and the legacy .dat.
 *
 * Values come out normalized the way the reference's quantize tool does it:
 * GGUF sums divided by their per-expert count rounded to an integer (1 where
 * the count is 0), legacy sums divided by ncall.
 * Errors: 0 or a negative errno with a message naming the file and entry.
 * Thread safety: immutable after imatrix_load. */
#ifndef MS_IMATRIX_LOAD_H
#define MS_IMATRIX_LOAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct imatrix_entry {
    char *name;     /* tensor name, e.g. "blk.1.ffn_down_exps.weight" */
    float *values;  /* n: ne0 per expert, experts consecutive */
    int64_t n;
} imatrix_entry;

typedef struct imatrix_data {
    imatrix_entry *entries; /* sorted by name */
    size_t n_entries;
    char *dataset;          /* first dataset name, or NULL */
    int64_t chunk_count;    /* the reference's m_last_call: 0 when absent */
} imatrix_data;

int imatrix_load(imatrix_data **out, const char *path, char *err, size_t errlen);
void imatrix_free(imatrix_data *m); /* accepts NULL */
/* Entry by exact name, or NULL. */
const imatrix_entry *imatrix_find(const imatrix_data *m, const char *name);

#endif
