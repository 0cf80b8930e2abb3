/* infer_sequence.c - shape inference for sequence and optional ops: element types flow through. */
#include "ir/infer_b_internal.h"

static const KnType *seq_input(const KnNode *n, int i, KnError *err, KnStatus *st) {
  KnValue *v = ir_input(n, i);
  *st = KN_OK;
  if (!v || v->type.kind != KN_TYPE_SEQUENCE) {
    *st = ir_infer_fail(err, n, KN_ERR_INVALID, "input %d ('%s') is not a sequence", i,
                        v ? v->name : "");
    return NULL;
  }
  return &v->type;
}

/* seq<elem>; elem NULL means "tensor of unknown dtype and shape". */
static KnStatus set_seq(KnNode *n, int o, const KnType *elem, KnError *err) {
  KnType unknown = {.kind = KN_TYPE_TENSOR, .shape.rank = -1};
  KnType seq = {.kind = KN_TYPE_SEQUENCE, .shape.rank = -1, .elem = (KnType *)(elem ? elem : &unknown)};
  return ir_set_output_type(n, o, &seq, err);
}

/* Elements may differ in shape: the element type is the union of the inputs'. */
KnStatus infer_sequence_construct(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  KnType u = st ? (KnType){0} : *ir_input_tensor(node, 0);
  for (int i = 1; i < node->n_inputs && !st; i++) {
    if ((st = ir_require_tensor(node, i, err))) break;
    st = ib_union_type(node, &u, ir_input_tensor(node, i), &u, "sequence elements", err);
  }
  return st ? st : set_seq(node, 0, &u, err);
}

KnStatus infer_sequence_empty(KnNode *node, KnError *err) {
  KnDtype dt;
  KnStatus st = ib_attr_dtype(node, "dtype", KN_F32, &dt, err);
  KnType elem = {.kind = KN_TYPE_TENSOR, .dtype = dt, .shape.rank = -1};
  return st ? st : set_seq(node, 0, &elem, err);
}

KnStatus infer_sequence_at(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *s = seq_input(node, 0, err, &st);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  if (!s->elem) return ir_set_output(node, 0, KN_UNDEF, -1, NULL, err);
  return ir_set_output_type(node, 0, s->elem, err);
}

KnStatus infer_sequence_insert(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *s = seq_input(node, 0, err, &st);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  /* Into a fresh empty sequence, the tensor is the only element. */
  KnNode *src = ir_input(node, 0)->producer;
  if (!s->elem || (src && src->op == KN_OP_SequenceEmpty)) {
    KnType u; /* only checks that the dtypes agree */
    if (s->elem && (st = ib_union_type(node, s->elem, ir_input_tensor(node, 1), &u,
                                       "sequence element and tensor", err)))
      return st;
    return set_seq(node, 0, ir_input_tensor(node, 1), err);
  }
  KnType u;
  st = ib_union_type(node, s->elem, ir_input_tensor(node, 1), &u, "sequence element and tensor", err);
  return st ? st : set_seq(node, 0, &u, err);
}

KnStatus infer_sequence_erase(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *s = seq_input(node, 0, err, &st);
  return st ? st : set_seq(node, 0, s->elem, err);
}

KnStatus infer_sequence_length(KnNode *node, KnError *err) {
  KnStatus st;
  seq_input(node, 0, err, &st);
  return st ? st : ir_set_output(node, 0, KN_I64, 0, NULL, err);
}

/* The split's chunk length along axis: 1 without split, the scalar split, or the common length
 * of a 1-D split (unknown when they differ or a scalar does not divide the dim). */
static KnDim split_chunk(const KnNode *n, KnDim dim) {
  if (!ir_input(n, 1)) return IR_DIM(1);
  int64_t v[IR_SYM_DATA_MAX];
  int cnt = ir_input_ints(n, 1, v, IR_SYM_DATA_MAX);
  int r = ib_rank(n, 1);
  if (cnt < 1) return IR_DIM_UNKNOWN;
  if (r == 0) return dim.value >= 0 && v[0] > 0 && dim.value % v[0] == 0 ? IR_DIM(v[0]) : IR_DIM_UNKNOWN;
  for (int i = 1; i < cnt; i++)
    if (v[i] != v[0]) return IR_DIM_UNKNOWN;
  return v[0] >= 0 ? IR_DIM(v[0]) : IR_DIM_UNKNOWN;
}

KnStatus infer_split_to_sequence(KnNode *node, KnError *err) {
  const KnType *x;
  KnStatus st = ib_tensor(node, 0, &x, err);
  if (st) return st;
  KnType elem = {.kind = KN_TYPE_TENSOR, .dtype = x->dtype, .shape.rank = -1};
  int r = x->shape.rank, axis;
  if (r < 0) return set_seq(node, 0, &elem, err);
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), r, &axis, err))) return st;
  bool drop = !ir_input(node, 1) && ir_attr_int(node, "keepdims", 1) == 0;
  KnDim *dims = ib_dims(node, r);
  if (!dims) return ib_nomem(err);
  for (int d = 0, o = 0; d < r; d++) {
    if (d == axis && drop) continue;
    dims[o++] = d == axis ? split_chunk(node, x->shape.dims[d]) : x->shape.dims[d];
  }
  elem.shape = (KnShape){drop ? r - 1 : r, dims};
  return set_seq(node, 0, &elem, err);
}

/* When the sequence comes straight from SequenceConstruct, the joined dim is known: the element
 * count (new_axis) or the sum of the elements' dims. */
static KnDim constructed_axis_len(const KnNode *src, int axis, bool new_axis) {
  if (!src || src->op != KN_OP_SequenceConstruct) return IR_DIM_UNKNOWN;
  if (new_axis) return IR_DIM(src->n_inputs);
  KnDim sum = IR_DIM(0);
  for (int i = 0; i < src->n_inputs; i++) {
    KnDim d = ib_dim(src, i, axis);
    if (d.value < 0) return IR_DIM_UNKNOWN;
    sum = ir_dim_add(sum, d);
  }
  return sum;
}

/* Elements joined along axis (or stacked on a new axis): that dim's size is not known. */
KnStatus infer_concat_from_sequence(KnNode *node, KnError *err) {
  KnStatus st;
  const KnType *s = seq_input(node, 0, err, &st);
  if (st) return st;
  const KnType *e = s->elem;
  KnDtype dt = e ? e->dtype : KN_UNDEF;
  if (!e || e->kind != KN_TYPE_TENSOR || e->shape.rank < 0) return ir_set_output(node, 0, dt, -1, NULL, err);
  bool new_axis = ir_attr_int(node, "new_axis", 0) != 0;
  int r = e->shape.rank + (new_axis ? 1 : 0), axis;
  if (!ir_attr(node, "axis"))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute axis is missing");
  if ((st = ir_norm_axis(node, ir_attr_int(node, "axis", 0), r, &axis, err))) return st;
  KnDim *dims = ib_dims(node, r);
  if (!dims) return ib_nomem(err);
  for (int d = 0, i = 0; d < r; d++) {
    if (d == axis) {
      if (!new_axis) i++;
      continue;
    }
    dims[d] = e->shape.dims[i++];
  }
  dims[axis] = constructed_axis_len(ir_input(node, 0)->producer, axis, new_axis);
  return ir_set_output(node, 0, dt, r, dims, err);
}

/* opt<T> from the input's type or the type attribute. */
KnStatus infer_optional(KnNode *node, KnError *err) {
  KnValue *v = ir_input(node, 0);
  const KnAttr *a = ir_attr(node, "type");
  const KnType *inner = v ? &v->type : a && a->kind == KN_ATTR_TYPE ? a->tp : NULL;
  if (!inner)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "needs an input or a type attribute");
  KnType opt = {.kind = KN_TYPE_OPTIONAL, .shape.rank = -1, .elem = (KnType *)inner};
  return ir_set_output_type(node, 0, &opt, err);
}

KnStatus infer_optional_get_element(KnNode *node, KnError *err) {
  KnValue *v = ir_input(node, 0);
  if (!v) return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 is missing");
  if (v->type.kind != KN_TYPE_OPTIONAL) return ir_set_output_type(node, 0, &v->type, err);
  if (!v->type.elem) return ir_set_output(node, 0, KN_UNDEF, -1, NULL, err);
  return ir_set_output_type(node, 0, v->type.elem, err);
}

KnStatus infer_optional_has_element(KnNode *node, KnError *err) {
  return ir_set_output(node, 0, KN_BOOL, 0, NULL, err);
}
