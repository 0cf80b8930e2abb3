/* lower_data.h - private helpers shared by the data-movement lowerings (lower_layout.c,
 * lower_index.c, lower_generate.c): raw element access by width, a strided N-d copy engine and
 * loop nests over a shape. Defined in lower_layout.c. */
#ifndef KILN_LOWER_DATA_H
#define KILN_LOWER_DATA_H

#include "codegen/cg.h"

#define DM_MAX_RANK 32

/* Bytes per element of a dtype kiln stores whole (bool, ints, floats), 0 for the rest (strings,
 * 4-bit and 8-bit float types are not handled element-wise). */
int dm_elem_bytes(KnDtype t);
/* The integer type of esize bytes: i8, i16, i32 or i64. Data movement treats elements as bits. */
LLVMTypeRef dm_raw_type(CgKernel *k, int esize);
/* Fails with cg_unsupported unless dm_elem_bytes(t) > 0. */
KnStatus dm_require_dtype(CgKernel *k, KnDtype t);
/* Pointer to element idx (i64) of a buffer of esize-byte elements. */
LLVMValueRef dm_ptr(CgKernel *k, LLVMValueRef base, int esize, LLVMValueRef idx);
/* Copies one element (esize bytes) from src[si] to dst[di]. */
void dm_copy_elem(CgKernel *k, LLVMValueRef dst, LLVMValueRef di, LLVMValueRef src, LLVMValueRef si,
                  int esize);
/* Loads element idx of an integer (or any numeric) tensor as i64. */
LLVMValueRef dm_load_i64(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef idx);
/* An index into a dim of size dim: negative ones count from the end; out of range fails at run
 * time naming what. Returns the wrapped index (i64). */
LLVMValueRef dm_wrap_index(CgKernel *k, LLVMValueRef idx, LLVMValueRef dim, const char *what);

/* A strided copy from input src_in to output dst_out: for every coordinate c of dims,
 * out[dst_off + sum c*dst_stride] = in[src_off + sum c*src_stride] (strides in elements; a src
 * stride may be 0 or negative). Everything is known at compile time. */
typedef struct DmCopy {
  int rank;
  int64_t dims[DM_MAX_RANK];
  int64_t dst_stride[DM_MAX_RANK], src_stride[DM_MAX_RANK];
  int64_t dst_off, src_off;
  int src_in, dst_out;
  int esize;
  int64_t blk_sl, blk_dj; /* engine-internal (leave 0): each element is an 8x8 block transposed */
} DmCopy;
/* Emits c: size-1 dims dropped, mergeable dims merged, contiguous rows memcpy'd, outer dim split
 * across threads when the copy is large. */
void dm_emit_copy(CgKernel *k, const DmCopy *c);
/* Copies input src_in to output dst_out whole (nbytes bytes). */
void dm_copy_all(CgKernel *k, int src_in, int dst_out, int64_t nbytes);

/* Calls fn at every coordinate of dims (row-major); coords[d] are i64. With parallel, the outer
 * dim is split across threads, so fn and user may only use compile-time data and k's buffers. */
typedef void (*DmElemFn)(CgKernel *k, LLVMValueRef *coords, void *user);
void dm_for_each(CgKernel *k, const int64_t *dims, int rank, bool parallel, DmElemFn fn, void *user);
/* sum coords[d] * strides[d] (i64). */
LLVMValueRef dm_offset(CgKernel *k, LLVMValueRef *coords, const int64_t *strides, int rank);

/* Stores v count times from element 0 of base: a compute value of t (cg_store), or with raw the
 * element's bits (an integer of its width; zero becomes a memset). Serial. */
void dm_fill(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef v, int64_t count, bool raw);
/* Runs body(k, i, user) for i in [0, n), across threads when n * work (elements touched per
 * iteration) is large, else inline; either way body may only use compile-time data and k. */
void dm_loop(CgKernel *k, int64_t n, int64_t work, CgBodyFn body, void *user);

/* A private constant global holding nbytes of data (a [n x i8] array). */
LLVMValueRef dm_const_global(CgKernel *k, const void *data, size_t nbytes);

/* Row-major strides of a shape given as int64 dims. */
void dm_strides(const int64_t *dims, int rank, int64_t *out);
/* The concrete dims of a shape into out (rank entries). */
void dm_dims(const KnShape *s, int64_t *out);

#endif
