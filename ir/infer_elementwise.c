/* infer_elementwise.c - shape inference for elementwise ops: unary, broadcast binary, compare,
 * variadic, Where, Clip, Cast, Dropout; with integer value propagation for shape arithmetic. */
#include <string.h>

#include "ir/infer_fns.h"

/* The output copies input 0's type; sym_data passes through Identity-like ops. */
KnStatus infer_unary(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  st = ir_set_output_type(node, 0, x, err);
  if (!st && node->op == KN_OP_Identity && node->inputs[0]->sym_data)
    st = ir_set_sym_data(node, 0, node->inputs[0]->sym_data, node->inputs[0]->sym_len, err);
  if (!st && node->op == KN_OP_Neg && node->inputs[0]->sym_data) {
    KnDim d[IR_SYM_DATA_MAX];
    int n = node->inputs[0]->sym_len;
    for (int i = 0; i < n; i++) {
      KnDim e = node->inputs[0]->sym_data[i];
      d[i] = e.sym ? (KnDim){-1, IR_SYM_UNKNOWN} : (KnDim){-e.value, NULL};
    }
    st = ir_set_sym_data(node, 0, d, n, err);
  }
  return st;
}

static KnStatus same_dtype(const KnNode *n, int i, KnDtype want, KnError *err) {
  const KnType *t = ir_input_tensor(n, i);
  if (t->dtype != KN_UNDEF && want != KN_UNDEF && t->dtype != want)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d has dtype %s, expected %s like input 0",
                         i, ir_dtype_name(t->dtype), ir_dtype_name(want));
  return KN_OK;
}

/* One element of integer arithmetic on known shape values; unknown if either side is. */
static KnDim sym_arith(KnOp op, KnDim a, KnDim b) {
  if (a.sym || b.sym) {
    if (op == KN_OP_Mul && ((!a.sym && a.value == 1) || (!b.sym && b.value == 1))) return a.sym ? a : b;
    return (KnDim){-1, IR_SYM_UNKNOWN};
  }
  int64_t r = 0;
  bool ovf = false;
  switch (op) {
  case KN_OP_Add: ovf = __builtin_add_overflow(a.value, b.value, &r); break;
  case KN_OP_Sub: ovf = __builtin_sub_overflow(a.value, b.value, &r); break;
  case KN_OP_Mul: ovf = __builtin_mul_overflow(a.value, b.value, &r); break;
  case KN_OP_Div:
    if (b.value == 0 || (a.value == INT64_MIN && b.value == -1)) ovf = true;
    else r = a.value / b.value; /* ONNX integer Div truncates, like C */
    break;
  case KN_OP_Max: r = a.value > b.value ? a.value : b.value; break;
  case KN_OP_Min: r = a.value < b.value ? a.value : b.value; break;
  case KN_OP_Equal: r = a.value == b.value; break;
  default: ovf = true;
  }
  return ovf ? (KnDim){-1, IR_SYM_UNKNOWN} : (KnDim){r, NULL};
}

/* Propagates known small integer contents through a broadcast binary op (1-D or scalar only). */
static KnStatus propagate_binary(KnNode *n, KnError *err) {
  KnValue *a = n->inputs[0], *b = n->inputs[1];
  const KnType *ot = &n->outputs[0]->type;
  if (!a->sym_data && !b->sym_data) return KN_OK;
  KnDim da[IR_SYM_DATA_MAX], db[IR_SYM_DATA_MAX], out[IR_SYM_DATA_MAX];
  int na = ir_input_dims(n, 0, da, IR_SYM_DATA_MAX), nb = ir_input_dims(n, 1, db, IR_SYM_DATA_MAX);
  if (na < 0 || nb < 0 || ot->shape.rank > 1 || (na != nb && na != 1 && nb != 1)) return KN_OK;
  if (!ir_dtype_is_int(ir_input_tensor(n, 0)->dtype)) return KN_OK;
  int len = na > nb ? na : nb;
  for (int i = 0; i < len; i++) out[i] = sym_arith(n->op, da[na == 1 ? 0 : i], db[nb == 1 ? 0 : i]);
  return ir_set_sym_data(n, 0, out, len, err);
}

static KnStatus broadcast_two(KnNode *node, KnDtype out_dtype, bool check_same, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (st) return st;
  const KnType *a = ir_input_tensor(node, 0), *b = ir_input_tensor(node, 1);
  if (check_same && (st = same_dtype(node, 1, a->dtype, err))) return st;
  KnShape s;
  if ((st = ir_broadcast(node, &a->shape, &b->shape, &s, err))) return st;
  return ir_set_output(node, 0, out_dtype == KN_UNDEF ? a->dtype : out_dtype, s.rank, s.dims, err);
}

/* Add Sub Mul Div Pow Mod BitShift PRelu: Pow's exponent may have another dtype. */
KnStatus infer_binary(KnNode *node, KnError *err) {
  bool same = node->op != KN_OP_Pow;
  KnStatus st = broadcast_two(node, KN_UNDEF, same, err);
  if (st) return st;
  if (node->op == KN_OP_PRelu) { /* slope broadcasts onto X: the output has X's shape */
    const KnType *x = ir_input_tensor(node, 0);
    if (x->shape.rank >= 0) st = ir_set_output_type(node, 0, x, err);
    return st;
  }
  return propagate_binary(node, err);
}

/* Comparisons and logic give bool; And/Or/Xor need bool inputs. */
KnStatus infer_compare(KnNode *node, KnError *err) {
  KnStatus st = broadcast_two(node, KN_BOOL, true, err);
  if (st) return st;
  bool logic = node->op == KN_OP_And || node->op == KN_OP_Or || node->op == KN_OP_Xor;
  KnDtype dt = ir_input_tensor(node, 0)->dtype;
  if (logic && dt != KN_BOOL && dt != KN_UNDEF)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 has dtype %s, expected bool", ir_dtype_name(dt));
  return node->op == KN_OP_Equal ? propagate_binary(node, err) : KN_OK;
}

KnStatus infer_is_special(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  return ir_set_output(node, 0, KN_BOOL, x->shape.rank, x->shape.dims, err);
}

/* Max Min Mean Sum: a multi-way broadcast of inputs that share one dtype. */
KnStatus infer_variadic(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  KnShape s = ir_input_tensor(node, 0)->shape;
  KnDtype dt = ir_input_tensor(node, 0)->dtype;
  for (int i = 1; i < node->n_inputs; i++) {
    if ((st = ir_require_tensor(node, i, err)) || (st = same_dtype(node, i, dt, err))) return st;
    if ((st = ir_broadcast(node, &s, &ir_input_tensor(node, i)->shape, &s, err))) return st;
  }
  st = ir_set_output(node, 0, dt, s.rank, s.dims, err);
  if (!st && node->n_inputs == 2 && (node->op == KN_OP_Max || node->op == KN_OP_Min))
    st = propagate_binary(node, err);
  return st;
}

/* Where(cond, x, y): broadcast of all three; picks known values when cond is known. */
KnStatus infer_where(KnNode *node, KnError *err) {
  KnStatus st = KN_OK;
  for (int i = 0; i < 3 && !st; i++) st = ir_require_tensor(node, i, err);
  if (st) return st;
  const KnType *c = ir_input_tensor(node, 0), *x = ir_input_tensor(node, 1), *y = ir_input_tensor(node, 2);
  if (c->dtype != KN_BOOL && c->dtype != KN_UNDEF)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "condition has dtype %s, expected bool", ir_dtype_name(c->dtype));
  if (y->dtype != x->dtype && x->dtype != KN_UNDEF && y->dtype != KN_UNDEF)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 2 has dtype %s, expected %s like input 1",
                         ir_dtype_name(y->dtype), ir_dtype_name(x->dtype));
  KnShape s;
  if ((st = ir_broadcast(node, &c->shape, &x->shape, &s, err)) ||
      (st = ir_broadcast(node, &s, &y->shape, &s, err)))
    return st;
  if ((st = ir_set_output(node, 0, x->dtype, s.rank, s.dims, err))) return st;
  KnDim dc[IR_SYM_DATA_MAX], dx[IR_SYM_DATA_MAX], dy[IR_SYM_DATA_MAX], out[IR_SYM_DATA_MAX];
  int nc = ir_input_dims(node, 0, dc, IR_SYM_DATA_MAX), nx = ir_input_dims(node, 1, dx, IR_SYM_DATA_MAX);
  int ny = ir_input_dims(node, 2, dy, IR_SYM_DATA_MAX);
  if (nc < 0 || nx < 0 || ny < 0 || s.rank > 1) return KN_OK;
  int len = s.rank == 1 && s.dims[0].value >= 0 ? (int)s.dims[0].value : (s.rank == 0 ? 1 : -1);
  if (len < 0 || len > IR_SYM_DATA_MAX) return KN_OK;
  for (int i = 0; i < len; i++) {
    KnDim ci = dc[nc == 1 ? 0 : i];
    if (ci.sym) return KN_OK;
    out[i] = ci.value ? dx[nx == 1 ? 0 : i] : dy[ny == 1 ? 0 : i];
  }
  return ir_set_sym_data(node, 0, out, len, err);
}

KnStatus infer_clip(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  const KnType *x = st ? NULL : ir_input_tensor(node, 0);
  for (int i = 1; i < node->n_inputs && !st; i++)
    if (ir_input(node, i) && !(st = ir_require_tensor(node, i, err))) st = same_dtype(node, i, x->dtype, err);
  return st ? st : ir_set_output_type(node, 0, x, err);
}

/* Cast (attr `to`) and CastLike (dtype of input 1); integer shape values survive int casts. */
KnStatus infer_cast(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  KnDtype to;
  if (node->op == KN_OP_CastLike) {
    if ((st = ir_require_tensor(node, 1, err))) return st;
    to = ir_input_tensor(node, 1)->dtype;
  } else {
    const KnAttr *a = ir_attr(node, "to");
    if (!a || a->kind != KN_ATTR_INT || !ir_dtype_is_known((int)a->i))
      return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute 'to' is missing or not a known dtype");
    to = (KnDtype)a->i;
  }
  const KnType *x = ir_input_tensor(node, 0);
  st = ir_set_output(node, 0, to, x->shape.rank, x->shape.dims, err);
  if (!st && node->inputs[0]->sym_data && ir_dtype_is_int(to) && ir_dtype_bits(to) == 64)
    st = ir_set_sym_data(node, 0, node->inputs[0]->sym_data, node->inputs[0]->sym_len, err);
  return st;
}

/* Dropout: output like the input, optional mask of bool (opset >= 10; before, same dtype). */
KnStatus infer_dropout(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  const KnType *x = ir_input_tensor(node, 0);
  st = ir_set_output_type(node, 0, x, err);
  if (!st && node->n_outputs > 1)
    st = ir_set_output(node, 1, node->opset >= 10 ? KN_BOOL : x->dtype, x->shape.rank, x->shape.dims, err);
  return st;
}
