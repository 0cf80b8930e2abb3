/* tensor_file.h - tensor files that `kiln run` and `kiln check` read and write: ONNX TensorProto,
 * SequenceProto and OptionalProto .pb files, and NumPy .npy files. */
#ifndef KILN_FRONTEND_TENSOR_FILE_H
#define KILN_FRONTEND_TENSOR_FILE_H

#include "frontend/frontend.h"

/* SequenceProto and OptionalProto files hold a KnTensorList (ir/ir.h). */

/* ---- reading (frontend/tensor_file.c) ------------------------------------------------------ */
/* Reads one tensor from path into arena a, by content: the .npy magic "\x93NUMPY", else an ONNX
 * TensorProto. Every dtype for .pb (external data is refused); for .npy, versions 1.0-3.0, bool,
 * (u)int8-64, f16/f32/f64 and c64/c128 in either byte order and C or Fortran order. Bad bytes fail
 * with KN_ERR_FORMAT, sizes beyond lim (NULL: defaults) with KN_ERR_LIMIT; messages name path. */
KnStatus fe_read_tensor_file(KnArena *a, const char *path, const KnLimits *lim, KnTensor **out,
                             KnError *err);
/* The same for bytes in memory; path is used in messages. */
KnStatus fe_read_tensor_memory(KnArena *a, const void *data, size_t size, const char *path,
                               const KnLimits *lim, KnTensor **out, KnError *err);
/* Reads a SequenceProto (kind KN_TYPE_SEQUENCE) or an OptionalProto (KN_TYPE_OPTIONAL) file; the
 * two cannot be told apart by content, so the caller says which (from the model's input type).
 * Sequences of tensors and optionals of a tensor or of a sequence of tensors are supported;
 * sparse tensors, maps and deeper nesting fail with KN_ERR_UNSUPPORTED. */
KnStatus fe_read_sequence_file(KnArena *a, const char *path, KnTypeKind kind, const KnLimits *lim,
                               KnTensorList **out, KnError *err);

/* ---- per format (frontend/tensor_npy.c, frontend/tensor_pb.c) ----------------------------- */
KnStatus fe_read_npy_memory(KnArena *a, const void *data, size_t size, const char *path,
                            const KnLimits *lim, KnTensor **out, KnError *err);
KnStatus fe_read_pb_memory(KnArena *a, const void *data, size_t size, const char *path,
                           const KnLimits *lim, KnTensor **out, KnError *err);
KnStatus fe_read_sequence_memory(KnArena *a, const void *data, size_t size, const char *path,
                                 KnTypeKind kind, const KnLimits *lim, KnTensorList **out,
                                 KnError *err);

/* ---- writing: through fe_write_file_atomic, so a failure never leaves a partial file ------- */
/* A TensorProto with raw_data (string_data for strings); name NULL: t->name. */
KnStatus fe_write_tensor_pb(const char *path, const KnTensor *t, const char *name, KnError *err);
/* A SequenceProto or OptionalProto holding l's tensors (as fe_read_sequence_file returns them). */
KnStatus fe_write_sequence_pb(const char *path, const KnTensorList *l, KnError *err);
/* A version 1.0 .npy file, little-endian, C order, byte for byte what numpy.save writes. Strings,
 * bf16, float8 and 4-bit tensors have no .npy dtype and fail with KN_ERR_UNSUPPORTED. */
KnStatus fe_write_tensor_npy(const char *path, const KnTensor *t, KnError *err);
/* Picks the format by path's extension: ".npy" for NumPy, anything else TensorProto. */
KnStatus fe_write_tensor_file(const char *path, const KnTensor *t, const char *name, KnError *err);

#endif
