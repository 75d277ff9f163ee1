/* gguf_write.h - GGUF v3 writer (single file or split set).
 *
 * Owns: serializing metadata of every type (nested arrays included) and
 * tensors, packed in info order and padded to general.alignment (32 unless
 * set), streamed to disk so tens of GB can be written from a fill callback.
 * Split output writes <prefix>-0000i-of-0000N.gguf parts with split.no,
 * split.count and split.tensors.count, the full metadata only in part 1,
 * as the reference's gguf-split does.
 * Errors: 0 or -errno with a message naming the file.
 * Thread safety: a writer is used by one thread. */
#ifndef MS_GGUF_WRITE_H
#define MS_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct gguf_writer gguf_writer;

/* Produces n bytes of a tensor's data starting at byte off into buf. */
typedef int (*gguf_fill_fn)(void *ud, void *buf, uint64_t off, size_t n);

gguf_writer *gguf_writer_create(void);
void gguf_writer_free(gguf_writer *w); /* accepts NULL */

/* Sets key to a deep copy of v (replacing an earlier value of that key). */
int gguf_writer_set(gguf_writer *w, const char *key, const gguf_value *v);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t x);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t x);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float x);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool x);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *s);
/* Array of scalars (elem_type a scalar gguf type, data packed). */
int gguf_writer_set_arr(gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n,
                        const void *data);
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, uint64_t n, const char *const *s);
/* Removes key if present. */
void gguf_writer_remove(gguf_writer *w, const char *key);
/* Copies every key of g except those starting with skip_prefix (may be NULL). */
int gguf_writer_copy_kvs(gguf_writer *w, const gguf_file *g, const char *skip_prefix);

/* Adds a tensor: its bytes come from data (borrowed until write) or, if
 * data is NULL, from fill(ud, ...). */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, gguf_fill_fn fill, void *ud);

/* Adds tensor name with src's type and shape whose data offset is src's
 * (src: an earlier tensor added with data of its own): the two share their
 * bytes, which are written once.  The reader refuses overlapping tensors
 * unless the file declares the sharing (gguf.c: moestream.synthetic.
 * shared_layers), so this is for synthetic benchmark files.  One-file
 * output only (the split writers refuse aliases with -ENOTSUP).
 * -ENOENT if src is absent or itself an alias. */
int gguf_writer_add_alias(gguf_writer *w, const char *name, const char *src);

/* Writes path; with max_part_bytes > 0 splits into parts whose tensor data
 * stays under that size (at least one tensor per part) named
 * <path without .gguf>-0000i-of-0000N.gguf; *first_part (if non-NULL, 4096
 * bytes) receives the name of the file to open. */
int gguf_writer_write(gguf_writer *w, const char *path, uint64_t max_part_bytes, char *first_part,
                      char *err, size_t errlen);

/* Writes a split set with the parts given per tensor (part[i] for the i-th
 * added tensor, nondecreasing; a part number not used is skipped), named
 * and keyed as gguf_writer_write's split output. */
int gguf_writer_write_parts(gguf_writer *w, const char *path, const uint32_t *part, char *first_part, char *err,
                            size_t errlen);

#endif
