/* gguf.h - GGUF reader (v2/v3, split sets).
 *
 * Owns: parsing and validating the header, metadata and tensor table of a
 * GGUF file or split set, and bounded reads of tensor bytes.  Everything is
 * validated once here (magic, version, counts against file size, string
 * lengths, dims, byte sizes, offsets inside the file and aligned, duplicate
 * names, unknown types, split numbering); the rest of the program trusts it.
 * Does not own: what tensors mean (model.c) or how they are paged (io/).
 * Errors: functions return 0 or a negative errno (-EBADMSG malformed,
 * -ENOTSUP unsupported, -ENOENT missing, -EIO, -ENOMEM) and write a message
 * naming the file, the field and the byte offset into err.
 * Thread safety: a gguf_file is immutable after gguf_open; lookups and
 * gguf_read may be called from any thread. */
#ifndef MS_GGUF_H
#define MS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
    GGUF_T_UINT8 = 0,
    GGUF_T_INT8 = 1,
    GGUF_T_UINT16 = 2,
    GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4,
    GGUF_T_INT32 = 5,
    GGUF_T_FLOAT32 = 6,
    GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8,
    GGUF_T_ARRAY = 9,
    GGUF_T_UINT64 = 10,
    GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12,
};

typedef struct gguf_str {
    const char *s; /* NUL-terminated copy owned by the gguf_file; may hold NULs */
    uint64_t len;  /* bytes, excluding the terminator */
} gguf_str;

typedef struct gguf_value {
    uint32_t type; /* enum gguf_vtype */
    union {
        uint64_t u; /* UINT8..UINT64, BOOL (0/1) */
        int64_t i;  /* INT8..INT64 */
        double f;   /* FLOAT32, FLOAT64 */
        gguf_str str;
        struct {
            uint32_t type; /* element type */
            uint64_t n;    /* element count */
            /* scalar elements: packed little-endian as in the file (element
             * size of `type`); STRING: n gguf_str; ARRAY: n gguf_value. */
            const void *data;
        } arr;
    };
} gguf_value;

typedef struct gguf_kv {
    const char *key; /* NUL-terminated, owned by the gguf_file */
    gguf_value val;
} gguf_kv;

typedef struct gguf_tensor {
    const char *name; /* owned by the gguf_file */
    uint32_t type;    /* ggml type id (enum ms_type) */
    uint32_t n_dims;  /* 1..4 */
    int64_t ne[4];    /* ggml order: ne[0] = row length; missing dims are 1 */
    uint64_t nbytes;  /* total bytes of data */
    uint32_t part;    /* index of the split part holding it */
    uint64_t offset;  /* absolute byte offset inside that part's file */
} gguf_tensor;

typedef struct gguf_part {
    char *path;
    int fd;            /* opened O_RDONLY|O_CLOEXEC */
    uint64_t size;     /* file size at open */
    int64_t mtime_ns;  /* for detecting a file replaced while running */
    uint64_t data_off; /* absolute offset of this part's tensor data blob */
} gguf_part;

typedef struct gguf_file {
    uint32_t version;
    uint32_t alignment;  /* general.alignment or 32 */
    uint64_t n_kv;       /* metadata of part 0 (other parts' split.* keys are checked, not kept) */
    gguf_kv *kv;
    uint64_t n_tensors;  /* over all parts */
    gguf_tensor *tensors;
    uint32_t n_parts;
    gguf_part *parts;
    /* moestream.synthetic.shared_layers = K of a synthetic benchmark file
     * (synth --expert-layers), checked: routed-expert tensors of MoE layer
     * j >= K share layer (j mod K)'s data range; 0 for every other file,
     * whose tensors never overlap */
    uint32_t shared_layers;
    /* moestream.repack.version of a file of `moestream repack` (checked:
     * the version this build reads, MS_REPACK_VERSION in simd/quant.h);
     * 0 for every other file.  Only such a file has the private types. */
    uint32_t repack_version;
    void *priv;          /* name index, string arena */
} gguf_file;

/* Opens a GGUF file.  If its split.count > 1, `path` must be part 1 (split.no
 * 0) named <prefix>-00001-of-0000N.gguf; the other parts are found by name and
 * checked (split.no, split.count, split.tensors.count, no duplicate names).
 * On success *out owns open fds; free with gguf_close. */
int gguf_open(gguf_file **out, const char *path, char *err, size_t errlen);
void gguf_close(gguf_file *g); /* accepts NULL */

/* Metadata lookup; NULL if absent. */
const gguf_value *gguf_find(const gguf_file *g, const char *key);
/* Typed getters: 0, -ENOENT if absent, -EBADMSG (message in err) if the value
 * has a type that cannot represent the request (any integer type whose value
 * fits is accepted for the integer getters; FLOAT32/64 for gguf_get_f64). */
int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out, char *err, size_t errlen);
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out, char *err, size_t errlen);
int gguf_get_f64(const gguf_file *g, const char *key, double *out, char *err, size_t errlen);
int gguf_get_bool(const gguf_file *g, const char *key, bool *out, char *err, size_t errlen);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out, char *err, size_t errlen);
/* Array of any element type; data as in gguf_value.arr. */
int gguf_get_arr(const gguf_file *g, const char *key, uint32_t elem_type, uint64_t *n,
                 const void **data, char *err, size_t errlen);

/* Tensor lookup by exact name (hash index); NULL if absent. */
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* Reads n bytes at absolute offset off of part `part` into dst (pread loop,
 * EINTR/short reads retried).  -EIO with file/offset in err on failure or
 * on a range past the file end. */
int gguf_read(const gguf_file *g, uint32_t part, uint64_t off, void *dst, size_t n, char *err,
              size_t errlen);

/* Size in bytes of a scalar element of a metadata type (0 for STRING/ARRAY
 * or unknown). */
size_t gguf_vtype_size(uint32_t type);
const char *gguf_vtype_name(uint32_t type);

#endif
