/* onnx_types.c - ONNX TypeProto (tensor, sparse tensor, sequence, optional, map) to KnType. */
#include "frontend/onnx_internal.h"

/* Element type code of a tensor type: 0 (unknown) or a dtype kiln knows. */
static KnStatus elem_dtype(OnnxImport *im, int32_t code, const char *what, KnDtype *out) {
  if (code != 0 && !ir_dtype_is_known(code))
    return kn_fail(im->err, KN_ERR_UNSUPPORTED, "%s: element type %d is not supported", what,
                   (int)code);
  *out = (KnDtype)code;
  return KN_OK;
}

/* A missing shape means unknown rank; each dim is a value, a symbol, or unknown. */
static KnStatus shape_from_proto(OnnxImport *im, const Onnx__TensorShapeProto *sp, const char *what,
                                 KnShape *out) {
  out->rank = -1;
  out->dims = NULL;
  if (!sp) return KN_OK;
  if (sp->n_dim > 0x7fffffff)
    return kn_fail(im->err, KN_ERR_LIMIT, "%s: rank %zu is too large", what, sp->n_dim);
  KnDim *dims = ir_arena_calloc(im->m->arena, sp->n_dim ? sp->n_dim : 1, sizeof *dims);
  if (!dims) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  int64_t numel = 1;
  for (size_t i = 0; i < sp->n_dim; i++) {
    const Onnx__TensorShapeProto__Dimension *d = sp->dim[i];
    dims[i] = IR_DIM_UNKNOWN;
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
        d->dim_value >= 0) {
      /* Exporters write -1 for "dynamic"; anything negative is read as unknown. */
      dims[i].value = d->dim_value;
      if (ir_mul_overflows(numel, d->dim_value, &numel) || numel > im->lim.max_tensor_elems)
        return kn_fail(im->err, KN_ERR_LIMIT, "%s: shape has more than %lld elements", what,
                       (long long)im->lim.max_tensor_elems);
    } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
               onnx_str(d->dim_param)[0]) {
      dims[i].sym = ir_arena_strdup(im->m->arena, d->dim_param);
      if (!dims[i].sym) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
    }
  }
  out->rank = (int)sp->n_dim;
  out->dims = dims;
  return KN_OK;
}

/* The inner type of a sequence/optional/map, allocated in the arena. */
static KnStatus inner_type(OnnxImport *im, const Onnx__TypeProto *tp, const char *what,
                           KnType **out) {
  *out = ir_arena_alloc(im->m->arena, sizeof **out);
  if (!*out) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  if (!tp) {
    (*out)->shape.rank = -1;
    return KN_OK;
  }
  return onnx_type_from_proto(im, tp, what, *out);
}

KnStatus onnx_type_from_proto(OnnxImport *im, const Onnx__TypeProto *tp, const char *what,
                              KnType *out) {
  *out = (KnType){.kind = KN_TYPE_NONE, .shape = {-1, NULL}};
  if (!tp) return KN_OK;
  KnStatus st = KN_OK;
  switch (tp->value_case) {
  case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
    out->kind = KN_TYPE_TENSOR;
    st = elem_dtype(im, tp->tensor_type->elem_type, what, &out->dtype);
    return st ? st : shape_from_proto(im, tp->tensor_type->shape, what, &out->shape);
  case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
    out->kind = KN_TYPE_SPARSE;
    st = elem_dtype(im, tp->sparse_tensor_type->elem_type, what, &out->dtype);
    return st ? st : shape_from_proto(im, tp->sparse_tensor_type->shape, what, &out->shape);
  case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
    out->kind = KN_TYPE_SEQUENCE;
    return inner_type(im, tp->sequence_type->elem_type, what, &out->elem);
  case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
    out->kind = KN_TYPE_OPTIONAL;
    return inner_type(im, tp->optional_type->elem_type, what, &out->elem);
  case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
    out->kind = KN_TYPE_MAP;
    st = elem_dtype(im, tp->map_type->key_type, what, &out->key_dtype);
    if (!st && out->key_dtype != KN_STRING && !ir_dtype_is_int(out->key_dtype))
      st = kn_fail(im->err, KN_ERR_INVALID, "%s: map key type %s is not an integer or string", what,
                   ir_dtype_name(out->key_dtype));
    return st ? st : inner_type(im, tp->map_type->value_type, what, &out->elem);
  default: return KN_OK; /* no type given: inference fills it in */
  }
}
