/* quantize_model.h - model quantization: plan a type per tensor the way the
 * reference quantizer (llama-quantize) does, then stream the output GGUF one
 * tensor (one expert slice) at a time over worker threads.
 *
 * Owns: quantize_opts, the file-type table, the per-tensor plan (type-mix
 * rules of llama_tensor_get_type, --pure, tensor-type overrides, token
 * embedding / output types, shape fallbacks, imatrix requirements), the
 * output metadata (general.file_type, general.quantization_version,
 * quantize.imatrix.*) and the run.  Does not own: the block quantizers
 * (simd/quantize.c), importance matrix files (imatrix_load.c), GGUF I/O.
 * Memory: one expert slice of floats and its quantized bytes per tensor in
 * flight, independent of the model size.
 * Errors: 0 or a negative errno with a message naming the tensor. */
#ifndef MS_QUANTIZE_MODEL_H
#define MS_QUANTIZE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QUANTIZE_MAX_OVERRIDES 4096

typedef struct quantize_model_opts {
    const char *in;            /* input GGUF (part 1 of a split set) */
    const char *out;           /* output path; NULL with dry_run */
    const char *ftype;         /* file type name as llama-quantize takes it: "Q4_K_M", "IQ1_S", ...;
                                  NULL with a recipe (its own type) */
    int recipe;                /* enum recipe_id (recipe.h) or -1: per-tensor types from the model's
                                  layer counts, after the --tensor-type overrides */
    FILE *print_types;         /* if set, the resolved plan is written here as a tensor-type file */
    const char *imatrix;       /* importance matrix file or NULL */
    bool pure;
    bool allow_requantize;
    bool dry_run;
    int token_embd_type;       /* -1: by the rules */
    int output_type;           /* -1: by the rules */
    int n_overrides;           /* --tensor-type REGEX=TYPE, first match wins */
    const char *override_re[QUANTIZE_MAX_OVERRIDES];
    int override_type[QUANTIZE_MAX_OVERRIDES];
    uint64_t split_max_bytes;  /* 0: one file */
    int n_threads;             /* <= 0: one per core */
    FILE *log;                 /* plan and progress (NULL: quiet) */
} quantize_model_opts;

void quantize_model_opts_default(quantize_model_opts *o);

/* Type id of a ggml type name, case-insensitive ("q4_K", "IQ1_S"); -1 if
 * unknown. */
int quantize_model_type_parse(const char *name);

/* Adds one "REGEX=TYPE" override (the name part lower-cased, as the
 * reference does).  0, or -EINVAL with a message. */
int quantize_model_add_override(quantize_model_opts *o, const char *spec, char *err, size_t errlen);
/* Adds every whitespace-separated REGEX=TYPE of a file. */
int quantize_model_add_override_file(quantize_model_opts *o, const char *path, char *err, size_t errlen);

/* Plans and (unless dry_run) writes the output.  0 or -errno. */
int quantize_model_run(const quantize_model_opts *o, char *err, size_t errlen);

#endif
