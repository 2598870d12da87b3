/* Checkpoints: named tensors in a versioned, checksummed binary file.
 *
 * FORMAT (version 1). All integers are little-endian; CRC-32 is zlib's crc32
 * (the ISO-HDLC CRC: polynomial 0xEDB88320 reflected, initial value and
 * final XOR 0xFFFFFFFF), which Python computes with zlib.crc32.
 *
 *   file header, 24 bytes
 *     char[8]  magic "DLASCKPT"
 *     u32      format version = 1
 *     u32      tensor count N
 *     u32      flags = 0 (reserved; a reader refuses other values)
 *     u32      CRC-32 of the 20 bytes above
 *   N tensor records, each
 *     u32      name length L, 1 .. DLAS_CKPT_NAME_MAX
 *     u8[L]    name (UTF-8, no NUL), unique in the file
 *     u8       dtype: 0 f32, 1 f64, 2 i8, 3 u8, 4 i32 (enum dlas_dtype)
 *     u8       rank D, 0 .. DLAS_MAX_DIMS (0: a scalar, one element)
 *     u16      reserved = 0
 *     i64[D]   dimensions, each >= 1, outermost first
 *     u64      data size B in bytes = product of dims * dtype size
 *     u32      CRC-32 of the data
 *     u32      record CRC: CRC-32 of this record from the name length up to
 *              and including the data CRC
 *     u8[B]    data: elements row-major (C order), each little-endian
 *   trailer, 16 bytes
 *     char[8]  "DLASEND" and a NUL
 *     u32      N again
 *     u32      CRC-32 of the N record CRCs, each as 4 little-endian bytes
 *   and nothing after it.
 *
 * A graph's tensors are named "<node>.weight", "<node>.bias" and, for
 * batchnorm, "<node>.running_mean" and "<node>.running_var" (PyTorch's
 * state_dict names when the nodes carry torchvision's module names; leave out
 * num_batches_tracked). A pruning mask is the u8 tensor "<tensor>.mask" of the
 * same shape, 1 = kept, 0 = pruned.
 *
 * Files are written to a temporary file in the same directory, fsynced and
 * renamed over the target, so a reader sees the old file or the new one,
 * never a torn one. Readers refuse a wrong magic, an unknown version, a
 * checksum mismatch, a truncated file or trailing bytes, naming the file and
 * the tensor. */
#ifndef DLAS_CHECKPOINT_H
#define DLAS_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <dlas/graph.h>
#include <dlas/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DLAS_CKPT_VERSION 1
#define DLAS_CKPT_NAME_MAX 1024

/* ---- a graph's weights --------------------------------------------------- */

/* Every parameter tensor of g (running statistics included) and every mask. */
int dlas_checkpoint_save_graph(const struct dlas_graph *g, const char *path);

/* Flags of dlas_checkpoint_load_graph; 0 is strict: the file and the graph
 * must hold exactly the same tensors. */
#define DLAS_CKPT_STRICT 0u
#define DLAS_CKPT_ALLOW_MISSING 0x1u    /* graph tensors absent from the file keep their values */
#define DLAS_CKPT_ALLOW_UNEXPECTED 0x2u /* file tensors the graph lacks are ignored */

/* Load the file's tensors into g by name. Dtypes and shapes must match the
 * graph's; a loaded tensor's mask becomes the file's (none if the file has
 * none). Everything is read and checked before g changes: on failure g is
 * untouched and the message names the file and the tensor. */
int dlas_checkpoint_load_graph(struct dlas_graph *g, const char *path, unsigned flags);

/* ---- reading any checkpoint ---------------------------------------------- */

struct dlas_ckpt;

struct dlas_ckpt_entry {
    const char *name;
    enum dlas_dtype dtype;
    int ndim; /* 0 for a scalar */
    int64_t dims[DLAS_MAX_DIMS];
    uint64_t nbytes;
    uint32_t crc;    /* of the data */
    uint64_t offset; /* of the data in the file */
};

/* Open and check the header, every record header and the trailer; the data
 * are checked as they are read (or all at once by dlas_ckpt_verify). */
int dlas_ckpt_open(const char *path, struct dlas_ckpt **out);
void dlas_ckpt_close(struct dlas_ckpt *c);
const char *dlas_ckpt_path(const struct dlas_ckpt *c);
size_t dlas_ckpt_count(const struct dlas_ckpt *c);
const struct dlas_ckpt_entry *dlas_ckpt_entry_at(const struct dlas_ckpt *c, size_t i);
const struct dlas_ckpt_entry *dlas_ckpt_lookup(const struct dlas_ckpt *c, const char *name);
/* Read an entry's data into buf (len must be its nbytes), checking its CRC. */
int dlas_ckpt_read(struct dlas_ckpt *c, const struct dlas_ckpt_entry *e, void *buf, size_t len);
/* Read the named tensor into t, which is allocated (a scalar becomes a
 * one-element rank-1 tensor). */
int dlas_ckpt_read_tensor(struct dlas_ckpt *c, const char *name, struct dlas_tensor *t);
/* Check every tensor's data CRC. */
int dlas_ckpt_verify(struct dlas_ckpt *c);
/* The non-finite values (NaN, +-Inf) of an entry's data already read into
 * buf: their count, and the index of the first in *first (0 for integer
 * dtypes, which have none). A CRC shows the file is intact, not that a
 * training run did not diverge: weights are checked before use. */
size_t dlas_ckpt_count_nonfinite(const struct dlas_ckpt_entry *e, const void *buf,
                                 size_t *first);

/* ---- writing any checkpoint ---------------------------------------------- */

struct dlas_ckpt_writer;

/* Start writing `path` (through a temporary file beside it). */
int dlas_ckpt_writer_open(const char *path, struct dlas_ckpt_writer **out);
/* Append a tensor: data holds product(dims) elements of dtype. After a
 * failure the writer only accepts commit (which then fails) or abort. */
int dlas_ckpt_writer_add(struct dlas_ckpt_writer *w, const char *name, enum dlas_dtype dtype,
                         int ndim, const int64_t *dims, const void *data);
/* Finish, fsync and rename into place; on any failure the temporary file is
 * removed and `path` is left as it was. Frees w either way. */
int dlas_ckpt_writer_commit(struct dlas_ckpt_writer *w);
/* Give up: remove the temporary file and free w. */
void dlas_ckpt_writer_abort(struct dlas_ckpt_writer *w);

#ifdef __cplusplus
}
#endif
#endif
