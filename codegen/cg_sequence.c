/* cg_sequence.c - sequence and optional ops, run between stages on KnTensorList values (boxed in
 * KnTensor.list): construct, insert, at, erase, length, split and concat, SequenceMap, Optional and
 * Identity on them. Tensors inside are shared, never copied, except where an op makes new ones. */
#include <string.h>

#include "codegen/cg_stage.h"

static KnTensor *box(KnArena *a, KnTypeKind kind, KnTypeKind elem, KnDtype dtype, KnTensor **items, int n,
                     KnError *err) {
  KnTensorList *l = ir_arena_alloc(a, sizeof *l);
  KnTensor **copy = ir_arena_calloc(a, (size_t)n + 1, sizeof *copy);
  if (!l || !copy) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL;
  if (n) memcpy(copy, items, (size_t)n * sizeof *copy);
  *l = (KnTensorList){.kind = kind, .elem = elem, .dtype = dtype, .tensors = copy, .n_tensors = n};
  return ir_tensor_box(a, l, err);
}

static KnStatus need_seq(const KnNode *n, const KnTensor *t, KnError *err) {
  if (t && t->list && t->list->kind == KN_TYPE_SEQUENCE) return KN_OK;
  return kn_fail(err, KN_ERR_INVALID, "%s: input 0 must be a sequence", ir_ops[n->op].name);
}

/* A position input (scalar, may be negative) normalized against len; limit = len for insert. */
static KnStatus position(const KnNode *n, const KnTensor *p, int len, int limit, int dflt, int *out, KnError *err) {
  int64_t pos = p ? ir_tensor_get_int(p, 0) : dflt;
  if (pos < 0) pos += len;
  if (pos < 0 || pos > limit) return kn_fail(err, KN_ERR_INVALID, "%s: position out of range for a sequence of %d", ir_ops[n->op].name, len);
  *out = (int)pos;
  return KN_OK;
}

static KnDtype seq_dtype(const KnNode *n, int out) {
  const KnType *t = &n->outputs[out]->type;
  return t->elem ? t->elem->dtype : KN_UNDEF;
}

static KnStatus seq_empty(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  return (out[0] = box(a, KN_TYPE_SEQUENCE, KN_TYPE_TENSOR, seq_dtype(n, 0), NULL, 0, err)) ? KN_OK : err->status;
}

static KnStatus seq_construct(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  return (out[0] = box(a, KN_TYPE_SEQUENCE, KN_TYPE_TENSOR, in[0]->dtype, (KnTensor **)in, n->n_inputs, err)) ? KN_OK : err->status;
}

static KnStatus seq_insert(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  KnStatus st = need_seq(n, in[0], err);
  const KnTensorList *l = in[0]->list;
  int at = 0, len = st == KN_OK ? l->n_tensors : 0;
  if (st == KN_OK) st = position(n, n->n_inputs > 2 ? in[2] : NULL, len, len, len, &at, err);
  if (st != KN_OK) return st;
  KnTensor *items[len + 1];
  for (int i = 0, j = 0; i <= len; i++) items[i] = i == at ? in[1] : l->tensors[j++];
  return (out[0] = box(a, KN_TYPE_SEQUENCE, KN_TYPE_TENSOR, in[1]->dtype, items, len + 1, err)) ? KN_OK : err->status;
}

static KnStatus seq_at(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  KnStatus st = need_seq(n, in[0], err);
  int at = 0, len = st == KN_OK ? in[0]->list->n_tensors : 0;
  if (st == KN_OK) st = position(n, in[1], len, len - 1, 0, &at, err);
  if (st == KN_OK) out[0] = in[0]->list->tensors[at];
  return st;
}

static KnStatus seq_erase(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  KnStatus st = need_seq(n, in[0], err);
  const KnTensorList *l = st == KN_OK ? in[0]->list : NULL;
  int at = 0, len = l ? l->n_tensors : 0;
  if (st == KN_OK) st = position(n, n->n_inputs > 1 ? in[1] : NULL, len, len - 1, len - 1, &at, err);
  if (st != KN_OK) return st;
  KnTensor *items[len + 1];
  for (int i = 0, j = 0; i < len; i++)
    if (i != at) items[j++] = l->tensors[i];
  return (out[0] = box(a, KN_TYPE_SEQUENCE, KN_TYPE_TENSOR, l->dtype, items, len - 1, err)) ? KN_OK : err->status;
}

static KnStatus seq_length(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  KnStatus st = need_seq(n, in[0], err);
  if (st == KN_OK && !(out[0] = ir_tensor_new(a, KN_I64, 0, NULL, err))) st = err->status;
  if (st == KN_OK) *(int64_t *)out[0]->data = in[0]->list->n_tensors;
  return st;
}

/* ---- splitting and joining tensors along an axis ---- */
static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; i++) p *= d[i];
  return p;
}

static KnStatus seq_split(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  const KnTensor *x = in[0], *split = n->n_inputs > 1 ? in[1] : NULL;
  int axis;
  if (ir_norm_axis(n, ir_attr_int(n, "axis", 0), x->rank, &axis, err) != KN_OK) return err->status;
  int64_t len = x->dims[axis], outer = prod(x->dims, 0, axis), inner = prod(x->dims, axis + 1, x->rank);
  int64_t n_parts = split ? (split->rank == 0 ? (len + ir_tensor_get_int(split, 0) - 1) / (ir_tensor_get_int(split, 0) > 0 ? ir_tensor_get_int(split, 0) : 1) : split->numel) : len;
  bool squeeze = !split && ir_attr_int(n, "keepdims", 1) == 0;
  KnTensor **parts = ir_arena_calloc(a, (size_t)n_parts + 1, sizeof *parts);
  if (!parts) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  size_t elem = (size_t)ir_dtype_bits(x->dtype) / 8;
  int64_t start = 0;
  for (int64_t p = 0; p < n_parts; p++) {
    int64_t size = !split ? 1 : split->rank == 0 ? ir_tensor_get_int(split, 0) : ir_tensor_get_int(split, p);
    if (size > len - start) size = len - start;
    if (size < 0) return kn_fail(err, KN_ERR_INVALID, "SplitToSequence: split sizes exceed the axis");
    int64_t dims[x->rank + 1];
    int r = 0;
    for (int d = 0; d < x->rank; d++)
      if (!(squeeze && d == axis)) dims[r++] = d == axis ? size : x->dims[d];
    if (!(parts[p] = ir_tensor_new(a, x->dtype, r, dims, err))) return err->status;
    for (int64_t o = 0; o < outer; o++)
      memcpy((char *)parts[p]->data + (size_t)(o * size * inner) * elem,
             (const char *)x->data + (size_t)((o * len + start) * inner) * elem, (size_t)(size * inner) * elem);
    start += size;
  }
  if (split && start != len) return kn_fail(err, KN_ERR_INVALID, "SplitToSequence: split sizes do not add up to the axis");
  return (out[0] = box(a, KN_TYPE_SEQUENCE, KN_TYPE_TENSOR, x->dtype, parts, (int)n_parts, err)) ? KN_OK : err->status;
}

static KnStatus seq_concat(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  KnStatus st = need_seq(n, in[0], err);
  if (st != KN_OK) return st;
  const KnTensorList *l = in[0]->list;
  if (l->n_tensors == 0) return kn_fail(err, KN_ERR_INVALID, "ConcatFromSequence: the sequence is empty");
  const KnTensor *f = l->tensors[0];
  bool stack = ir_attr_int(n, "new_axis", 0) != 0;
  int axis;
  if (ir_norm_axis(n, ir_attr_int(n, "axis", 0), f->rank + stack, &axis, err) != KN_OK) return err->status;
  int64_t dims[f->rank + 2], total = 0;
  for (int i = 0; i < l->n_tensors; i++) {
    const KnTensor *t = l->tensors[i];
    bool ok = t->rank == f->rank && t->dtype == f->dtype;
    for (int d = 0; ok && d < f->rank; d++)
      if (stack || d != axis) ok = t->dims[d] == f->dims[d];
    if (!ok) return kn_fail(err, KN_ERR_INVALID, "ConcatFromSequence: tensor %d does not match the first", i);
    total += stack ? 1 : t->dims[axis];
  }
  if (!stack)
    for (int d = 0; d < f->rank; d++) dims[d] = d == axis ? total : f->dims[d];
  else
    for (int d = 0, s = 0; d <= f->rank; d++) dims[d] = d == axis ? total : f->dims[s++];
  KnTensor *y = ir_tensor_new(a, f->dtype, f->rank + stack, dims, err);
  if (!y) return err->status;
  int64_t outer = prod(dims, 0, axis), inner = prod(dims, axis + 1, f->rank + stack);
  size_t elem = (size_t)ir_dtype_bits(f->dtype) / 8;
  int64_t at = 0;
  for (int i = 0; i < l->n_tensors; i++) {
    const KnTensor *t = l->tensors[i];
    int64_t len = stack ? 1 : t->dims[axis];
    for (int64_t o = 0; o < outer; o++)
      memcpy((char *)y->data + (size_t)((o * total + at) * inner) * elem, (const char *)t->data + (size_t)(o * len * inner) * elem,
             (size_t)(len * inner) * elem);
    at += len;
  }
  out[0] = y;
  return KN_OK;
}

/* ---- optionals and pass-through ---- */
static KnStatus opt_make(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  const KnTensor *x = n->n_inputs > 0 ? in[0] : NULL;
  if (!x) return (out[0] = box(a, KN_TYPE_OPTIONAL, KN_TYPE_NONE, KN_UNDEF, NULL, 0, err)) ? KN_OK : err->status;
  if (x->list)
    return (out[0] = box(a, KN_TYPE_OPTIONAL, KN_TYPE_SEQUENCE, x->list->dtype, x->list->tensors, x->list->n_tensors, err)) ? KN_OK : err->status;
  return (out[0] = box(a, KN_TYPE_OPTIONAL, KN_TYPE_TENSOR, x->dtype, (KnTensor **)&in[0], 1, err)) ? KN_OK : err->status;
}

static KnStatus opt_has(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  const KnTensor *x = n->n_inputs > 0 ? in[0] : NULL;
  bool has = x && (!x->list || x->list->kind != KN_TYPE_OPTIONAL || x->list->elem != KN_TYPE_NONE);
  if (!(out[0] = ir_tensor_new(a, KN_BOOL, 0, NULL, err))) return err->status;
  *(uint8_t *)out[0]->data = has;
  return KN_OK;
}

static KnStatus opt_get(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  const KnTensor *x = in[0];
  if (!x->list || x->list->kind != KN_TYPE_OPTIONAL) {
    out[0] = (KnTensor *)x; /* a tensor or sequence passes through (opset 18 semantics) */
    return KN_OK;
  }
  const KnTensorList *l = x->list;
  if (l->elem == KN_TYPE_NONE) return kn_fail(err, KN_ERR_INVALID, "OptionalGetElement: the optional is empty");
  if (l->elem == KN_TYPE_TENSOR) {
    out[0] = l->tensors[0];
    return KN_OK;
  }
  return (out[0] = box(a, KN_TYPE_SEQUENCE, KN_TYPE_TENSOR, l->dtype, l->tensors, l->n_tensors, err)) ? KN_OK : err->status;
}

static KnStatus pass_through(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env, KnError *err) {
  out[0] = in[0];
  return KN_OK;
}

CgDynFn cg_sequence_fn(const KnNode *n) {
  switch (n->op) {
  case KN_OP_SequenceEmpty: return seq_empty;
  case KN_OP_SequenceConstruct: return seq_construct;
  case KN_OP_SequenceInsert: return seq_insert;
  case KN_OP_SequenceAt: return seq_at;
  case KN_OP_SequenceErase: return seq_erase;
  case KN_OP_SequenceLength: return seq_length;
  case KN_OP_SplitToSequence: return seq_split;
  case KN_OP_ConcatFromSequence: return seq_concat;
  case KN_OP_SequenceMap: return cg_run_sequence_map;
  case KN_OP_Optional: return opt_make;
  case KN_OP_OptionalHasElement: return opt_has;
  case KN_OP_OptionalGetElement: return opt_get;
  case KN_OP_Identity: return cg_node_has_lists(n) ? pass_through : NULL;
  default: return NULL;
  }
}
