/* onnx_tensor.c - ONNX TensorProto and SparseTensorProto to KnTensor: every dtype, from raw_data
 * (little-endian) or from the typed repeated fields, with sizes checked against the dims. */
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx_internal.h"

KnStatus onnx_check_dims(OnnxImport *im, const int64_t *dims, size_t rank, const char *what,
                         int64_t *numel) {
  if (rank > 0x7fffffff)
    return kn_fail(im->err, KN_ERR_LIMIT, "%s: rank %zu is too large", what, rank);
  int64_t n = 1;
  for (size_t i = 0; i < rank; i++) {
    if (dims[i] < 0)
      return kn_fail(im->err, KN_ERR_INVALID, "%s: dim %zu is negative (%lld)", what, i,
                     (long long)dims[i]);
    if (ir_mul_overflows(n, dims[i], &n))
      return kn_fail(im->err, KN_ERR_LIMIT, "%s: element count overflows", what);
  }
  if (n > im->lim.max_tensor_elems)
    return kn_fail(im->err, KN_ERR_LIMIT, "%s: %lld elements exceed the limit of %lld", what,
                   (long long)n, (long long)im->lim.max_tensor_elems);
  *numel = n;
  return KN_OK;
}

KnStatus onnx_count_weight(OnnxImport *im, size_t bytes, const char *what) {
  int64_t total;
  if (bytes > (size_t)INT64_MAX || ir_add_overflows(im->weight_bytes, (int64_t)bytes, &total) ||
      (uint64_t)total > (uint64_t)im->lim.max_weight_bytes)
    return kn_fail(im->err, KN_ERR_LIMIT, "%s: tensors exceed the weight limit of %zu bytes", what,
                   im->lim.max_weight_bytes);
  im->weight_bytes = total;
  return KN_OK;
}

void onnx_le_to_host(void *data, size_t count, int unit) {
  const bool big_endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
  if (!big_endian || unit <= 1) return;
  unsigned char *p = data;
  for (size_t i = 0; i < count; i++, p += unit)
    for (int a = 0, b = unit - 1; a < b; a++, b--) {
      unsigned char c = p[a];
      p[a] = p[b];
      p[b] = c;
    }
}

/* A tensor with checked dims and dtype, data not yet allocated. */
static KnStatus tensor_header(OnnxImport *im, const Onnx__TensorProto *tp, const char *what,
                              KnTensor **out) {
  KnArena *a = im->m->arena;
  if (!ir_dtype_is_known(tp->data_type))
    return kn_fail(im->err, KN_ERR_UNSUPPORTED, "%s: data type %d is not supported", what,
                   (int)tp->data_type);
  if (tp->segment)
    return kn_fail(im->err, KN_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
  int64_t numel;
  KnStatus st = onnx_check_dims(im, tp->dims, tp->n_dims, what, &numel);
  if (st) return st;
  KnTensor *t = ir_arena_alloc(a, sizeof *t);
  int64_t *dims = ir_arena_calloc(a, tp->n_dims ? tp->n_dims : 1, sizeof *dims);
  if (!t || !dims) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  if (tp->n_dims) memcpy(dims, tp->dims, tp->n_dims * sizeof *dims);
  t->dtype = (KnDtype)tp->data_type;
  t->rank = (int)tp->n_dims;
  t->dims = dims;
  t->numel = numel;
  if (t->dtype != KN_STRING && !ir_dtype_nbytes(t->dtype, numel, &t->nbytes))
    return kn_fail(im->err, KN_ERR_LIMIT, "%s: byte size overflows", what);
  t->name = tp->name && tp->name[0] ? ir_arena_strdup(a, tp->name) : NULL;
  t->doc = ir_arena_strdup(a, onnx_str(tp->doc_string));
  if ((tp->name && tp->name[0] && !t->name) || !t->doc)
    return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  *out = t;
  return KN_OK;
}

/* Bytes per byte-swap unit: a complex number swaps each of its two parts. */
static int swap_unit(KnDtype t) {
  if (t == KN_C64) return 4;
  if (t == KN_C128) return 8;
  return ir_dtype_bits(t) / 8;
}

static KnStatus alloc_data(OnnxImport *im, KnTensor *t, const char *what) {
  KnStatus st = onnx_count_weight(im, t->nbytes, what);
  if (st) return st;
  t->data = ir_arena_alloc(im->m->arena, t->nbytes);
  return t->data
             ? KN_OK
             : kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory for %zu bytes", what, t->nbytes);
}

/* Large raw_data buffers are taken over from the unpacked proto instead of copied, which halves
 * peak memory for models with embedded weights; the arena frees them. Only for protos that are
 * converted once (not function bodies, which are expanded per call). */
enum { TAKE_MIN_BYTES = 4096 };

static bool take_raw(OnnxImport *im, const Onnx__TensorProto *tp, KnTensor *t) {
  if (t->nbytes < TAKE_MIN_BYTES || !tp->raw_data.data) return false;
  if ((uintptr_t)tp->raw_data.data % 16 != 0) return false;
  if (!ir_arena_on_free(im->m->arena, free, tp->raw_data.data)) return false;
  t->data = tp->raw_data.data;
  /* The import owns the unpacked message; protobuf-c's free skips a NULL bytes field. */
  Onnx__TensorProto *owned = (Onnx__TensorProto *)tp;
  owned->raw_data.data = NULL;
  owned->raw_data.len = 0;
  owned->has_raw_data = 0;
  return true;
}

static KnStatus from_raw(OnnxImport *im, const Onnx__TensorProto *tp, KnTensor *t, bool may_take,
                         const char *what) {
  if (t->dtype == KN_STRING)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: string tensors cannot use raw_data", what);
  if (tp->raw_data.len != t->nbytes)
    return kn_fail(im->err, KN_ERR_INVALID,
                   "%s: raw_data holds %zu bytes but %lld %s elements need %zu", what,
                   tp->raw_data.len, (long long)t->numel, ir_dtype_name(t->dtype), t->nbytes);
  KnStatus st = onnx_count_weight(im, t->nbytes, what);
  if (st) return st;
  if (!(may_take && take_raw(im, tp, t))) {
    if (!(t->data = ir_arena_alloc(im->m->arena, t->nbytes)))
      return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory for %zu bytes", what, t->nbytes);
    if (t->nbytes) memcpy(t->data, tp->raw_data.data, t->nbytes);
  }
  int unit = swap_unit(t->dtype);
  if (unit > 1) onnx_le_to_host(t->data, t->nbytes / (size_t)unit, unit);
  return KN_OK;
}

static KnStatus from_strings(OnnxImport *im, const Onnx__TensorProto *tp, KnTensor *t,
                             const char *what) {
  if ((int64_t)tp->n_string_data != t->numel)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: string_data holds %zu strings, dims need %lld",
                   what, tp->n_string_data, (long long)t->numel);
  KnBytes *s = ir_arena_calloc(im->m->arena, tp->n_string_data ? tp->n_string_data : 1, sizeof *s);
  if (!s) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  for (size_t i = 0; i < tp->n_string_data; i++) {
    KnStatus st = onnx_count_weight(im, tp->string_data[i].len, what);
    if (st) return st;
    ProtobufCBinaryData b = tp->string_data[i];
    char *d = ir_arena_strndup(im->m->arena, b.len ? (const char *)b.data : "", b.len);
    if (!d) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
    s[i] = (KnBytes){d, b.len};
  }
  t->data = s;
  return KN_OK;
}

/* Narrows int32_data entries to the element's storage (bits in the low bits; bool as 0/1). */
static void narrow_int32(KnTensor *t, const int32_t *src, size_t n) {
  int bytes = ir_dtype_bits(t->dtype) / 8;
  for (size_t i = 0; i < n; i++) {
    if (t->dtype == KN_BOOL)
      ((uint8_t *)t->data)[i] = src[i] != 0;
    else if (bytes == 2)
      ((uint16_t *)t->data)[i] = (uint16_t)src[i];
    else if (bytes == 4)
      ((int32_t *)t->data)[i] = src[i];
    else
      ((uint8_t *)t->data)[i] = (uint8_t)src[i]; /* 8-bit types, packed 4-bit pairs */
  }
}

/* Which typed field holds dtype's values, and how many entries the dims call for. */
typedef enum TypedField { TF_FLOAT, TF_DOUBLE, TF_INT32, TF_INT64, TF_UINT64 } TypedField;

static TypedField typed_field(const KnTensor *t, size_t *expect) {
  *expect = (size_t)t->numel;
  switch (t->dtype) {
  case KN_F32: return TF_FLOAT;
  case KN_C64: *expect *= 2; return TF_FLOAT;
  case KN_F64: return TF_DOUBLE;
  case KN_C128: *expect *= 2; return TF_DOUBLE;
  case KN_I64: return TF_INT64;
  case KN_U32:
  case KN_U64: return TF_UINT64;
  case KN_U4:
  case KN_I4: *expect = t->nbytes; return TF_INT32; /* two values per entry */
  default: return TF_INT32;
  }
}

static KnStatus from_typed(OnnxImport *im, const Onnx__TensorProto *tp, KnTensor *t,
                           const char *what) {
  static const char *field_names[] = {"float_data", "double_data", "int32_data", "int64_data",
                                      "uint64_data"};
  size_t expect;
  TypedField f = typed_field(t, &expect);
  size_t have = f == TF_FLOAT    ? tp->n_float_data
                : f == TF_DOUBLE ? tp->n_double_data
                : f == TF_INT32  ? tp->n_int32_data
                : f == TF_INT64  ? tp->n_int64_data
                                 : tp->n_uint64_data;
  if (have != expect)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: %s holds %zu values but %lld %s elements need %zu",
                   what, field_names[f], have, (long long)t->numel, ir_dtype_name(t->dtype),
                   expect);
  KnStatus st = alloc_data(im, t, what);
  if (st || !have) return st;
  if (f == TF_FLOAT)
    memcpy(t->data, tp->float_data, have * sizeof(float));
  else if (f == TF_DOUBLE)
    memcpy(t->data, tp->double_data, have * sizeof(double));
  else if (f == TF_INT64)
    memcpy(t->data, tp->int64_data, have * sizeof(int64_t));
  else if (f == TF_INT32)
    narrow_int32(t, tp->int32_data, have);
  else if (t->dtype == KN_U64)
    memcpy(t->data, tp->uint64_data, have * sizeof(uint64_t));
  else
    for (size_t i = 0; i < have; i++) ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i];
  return KN_OK;
}

static KnStatus convert(OnnxImport *im, const Onnx__TensorProto *tp, bool may_take, const char *what,
                        KnTensor **out) {
  *out = NULL;
  KnTensor *t = NULL;
  KnStatus st = tensor_header(im, tp, what, &t);
  if (st) return st;
  if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    if (t->dtype == KN_STRING)
      return kn_fail(im->err, KN_ERR_UNSUPPORTED, "%s: external string tensors are not supported",
                     what);
    st = onnx_count_weight(im, t->nbytes, what);
    if (!st) st = onnx_external_load(im, tp, t, what);
  } else if (tp->has_raw_data) {
    st = from_raw(im, tp, t, may_take, what);
  } else if (t->dtype == KN_STRING) {
    st = from_strings(im, tp, t, what);
  } else {
    st = from_typed(im, tp, t, what);
  }
  if (st) return st;
  *out = t;
  return KN_OK;
}

KnStatus onnx_tensor_from_proto(OnnxImport *im, const Onnx__TensorProto *tp, const char *what,
                                KnTensor **out) {
  return convert(im, tp, false, what, out);
}

KnStatus onnx_tensor_take_proto(OnnxImport *im, const Onnx__TensorProto *tp, const char *what,
                                KnTensor **out) {
  return convert(im, tp, true, what, out);
}

/* Indices must be int64, [NNZ] (linear) or [NNZ, rank], and point inside the dense shape. */
static KnStatus check_sparse_indices(OnnxImport *im, const KnSparseTensor *sp, int64_t dense_numel,
                                     const char *what) {
  const KnTensor *ix = sp->indices;
  int64_t nnz = sp->values->numel;
  bool linear = ix->rank == 1 && ix->dims[0] == nnz;
  bool coords = ix->rank == 2 && ix->dims[0] == nnz && ix->dims[1] == sp->rank;
  if (ix->dtype != KN_I64 || (!linear && !coords))
    return kn_fail(im->err, KN_ERR_INVALID, "%s: sparse indices must be i64 [%lld] or [%lld,%d]",
                   what, (long long)nnz, (long long)nnz, sp->rank);
  const int64_t *idx = ix->data;
  for (int64_t k = 0; k < ix->numel; k++) {
    int64_t bound = linear ? dense_numel : sp->dims[k % sp->rank];
    if (idx[k] < 0 || idx[k] >= bound)
      return kn_fail(im->err, KN_ERR_INVALID, "%s: sparse index %lld is out of range (bound %lld)",
                     what, (long long)idx[k], (long long)bound);
  }
  return KN_OK;
}

KnStatus onnx_sparse_from_proto(OnnxImport *im, const Onnx__SparseTensorProto *spp,
                                const char *what, KnSparseTensor **out) {
  *out = NULL;
  if (!spp->values || !spp->indices)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: sparse tensor lacks values or indices", what);
  KnSparseTensor *sp = ir_arena_alloc(im->m->arena, sizeof *sp);
  int64_t *dims = ir_arena_calloc(im->m->arena, spp->n_dims ? spp->n_dims : 1, sizeof *dims);
  if (!sp || !dims) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  int64_t dense_numel;
  KnStatus st = onnx_check_dims(im, spp->dims, spp->n_dims, what, &dense_numel);
  if (!st) st = onnx_tensor_from_proto(im, spp->values, what, &sp->values);
  if (!st) st = onnx_tensor_from_proto(im, spp->indices, what, &sp->indices);
  if (st) return st;
  if (sp->values->rank != 1)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: sparse values must be 1-D, not rank %d", what,
                   sp->values->rank);
  if (spp->n_dims) memcpy(dims, spp->dims, spp->n_dims * sizeof *dims);
  sp->rank = (int)spp->n_dims;
  sp->dims = dims;
  if (sp->rank == 0 && sp->indices->rank == 2)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: sparse tensor of rank 0 with coordinates", what);
  st = check_sparse_indices(im, sp, dense_numel, what);
  if (st) return st;
  *out = sp;
  return KN_OK;
}

/* Linear position of the k-th nonzero in the dense tensor. */
static int64_t sparse_position(const KnSparseTensor *sp, int64_t k) {
  const int64_t *idx = sp->indices->data;
  if (sp->indices->rank == 1) return idx[k];
  int64_t pos = 0;
  for (int j = 0; j < sp->rank; j++) pos = pos * sp->dims[j] + idx[k * sp->rank + j];
  return pos;
}

KnStatus onnx_sparse_densify(OnnxImport *im, const KnSparseTensor *sp, const char *what,
                             KnTensor **out) {
  *out = NULL;
  const KnTensor *v = sp->values;
  if (ir_dtype_bits(v->dtype) == 4)
    return kn_fail(im->err, KN_ERR_UNSUPPORTED, "%s: sparse 4-bit tensors are not supported", what);
  int64_t numel;
  size_t nbytes = 0;
  KnStatus st = onnx_check_dims(im, sp->dims, (size_t)sp->rank, what, &numel);
  if (!st && v->dtype != KN_STRING && !ir_dtype_nbytes(v->dtype, numel, &nbytes))
    st = kn_fail(im->err, KN_ERR_LIMIT, "%s: byte size overflows", what);
  if (!st) st = onnx_count_weight(im, nbytes, what);
  if (st) return st;
  KnError local = {0};
  KnTensor *t = ir_tensor_new(im->m->arena, v->dtype, sp->rank, sp->dims, &local);
  if (!t) return kn_fail(im->err, local.status, "%s: %s", what, local.msg);
  size_t eb = v->dtype == KN_STRING ? sizeof(KnBytes) : (size_t)ir_dtype_bits(v->dtype) / 8;
  for (int64_t k = 0; k < v->numel; k++)
    memcpy((char *)t->data + (size_t)sparse_position(sp, k) * eb,
           (const char *)v->data + (size_t)k * eb, eb);
  t->name = v->name;
  t->doc = v->doc;
  *out = t;
  return KN_OK;
}
