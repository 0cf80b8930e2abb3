/* infer_elementwise.c - shape inference for elementwise ops (unary, broadcasting arithmetic,
 * comparisons, variadic Max/Min/Mean/Sum, Where, Clip, Cast, Dropout), and the data propagation
 * that keeps shape arithmetic such as Shape -> Mul -> Concat -> Reshape known at compile time. */
#include <string.h>

#include "ir/infer_a_internal.h"
#include "ir/infer_params.h"

/* The elementwise operations data propagation evaluates on sym_data entries. */
typedef enum SdOp {
  SD_ADD, SD_SUB, SD_MUL, SD_DIV, SD_MOD, SD_FMOD, SD_MAX, SD_MIN,
  SD_EQ, SD_LT, SD_GT, SD_LE, SD_GE, SD_AND, SD_OR, SD_XOR, SD_NONE
} SdOp;

KnStatus ia_same_dtype(const KnNode *n, int i, int j, KnError *err) {
  const KnType *a = ir_input_tensor(n, i), *b = ir_input_tensor(n, j);
  if (!a || !b || a->dtype == KN_UNDEF || b->dtype == KN_UNDEF || a->dtype == b->dtype)
    return KN_OK;
  return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d has dtype %s, expected %s like input %d",
                       j, ir_dtype_name(b->dtype), ir_dtype_name(a->dtype), i);
}

/* ---- data propagation ------------------------------------------------------------------------ */

static bool sd_is_int(KnDim e) { return !e.sym; }
static bool sd_same_sym(KnDim a, KnDim b) {
  return a.sym && b.sym && a.sym != IR_SYM_UNKNOWN && b.sym != IR_SYM_UNKNOWN &&
         strcmp(a.sym, b.sym) == 0;
}
static KnDim sd_int(int64_t v) { return (KnDim){v, NULL}; }

/* Integer arithmetic on two known entries; unknown on overflow or division by zero. */
static KnDim sd_arith(SdOp op, int64_t a, int64_t b) {
  int64_t r;
  switch (op) {
  case SD_ADD: return __builtin_add_overflow(a, b, &r) ? ia_sym_unknown() : sd_int(r);
  case SD_SUB: return __builtin_sub_overflow(a, b, &r) ? ia_sym_unknown() : sd_int(r);
  case SD_MUL: return __builtin_mul_overflow(a, b, &r) ? ia_sym_unknown() : sd_int(r);
  case SD_DIV:
    if (b == 0 || (a == INT64_MIN && b == -1)) return ia_sym_unknown();
    return sd_int(a / b); /* ONNX integer Div truncates toward zero, as C does */
  case SD_MOD:
  case SD_FMOD:
    if (b == 0 || (a == INT64_MIN && b == -1)) return ia_sym_unknown();
    r = a % b;
    if (op == SD_MOD && r != 0 && ((r < 0) != (b < 0))) r += b; /* sign of the divisor */
    return sd_int(r);
  case SD_MAX: return sd_int(a > b ? a : b);
  case SD_MIN: return sd_int(a < b ? a : b);
  case SD_EQ: return sd_int(a == b);
  case SD_LT: return sd_int(a < b);
  case SD_GT: return sd_int(a > b);
  case SD_LE: return sd_int(a <= b);
  case SD_GE: return sd_int(a >= b);
  case SD_AND: return sd_int(a && b);
  case SD_OR: return sd_int(a || b);
  case SD_XOR: return sd_int(!a != !b);
  default: return ia_sym_unknown();
  }
}

/* Compares a named dim with a constant: decidable when the constant is negative or zero, since
 * dims never are negative (torch's reshape exports test shape entries for -1 this way). */
static KnDim sd_compare_dim(SdOp op, KnDim a, KnDim b) {
  bool a_dim = a.sym && a.sym != IR_SYM_UNKNOWN && sd_is_int(b);
  bool b_dim = b.sym && b.sym != IR_SYM_UNKNOWN && sd_is_int(a);
  if (!a_dim && !b_dim) return ia_sym_unknown();
  if (b_dim) { /* c op dim  ==  dim op' c */
    KnDim t = a;
    a = b, b = t;
    op = op == SD_LT ? SD_GT : op == SD_GT ? SD_LT : op == SD_LE ? SD_GE : op == SD_GE ? SD_LE : op;
  }
  int64_t c = b.value;
  switch (op) {
  case SD_EQ: return c < 0 ? sd_int(0) : ia_sym_unknown();
  case SD_LT: return c <= 0 ? sd_int(0) : ia_sym_unknown();
  case SD_LE: return c < 0 ? sd_int(0) : ia_sym_unknown();
  case SD_GT: return c < 0 ? sd_int(1) : ia_sym_unknown();
  case SD_GE: return c <= 0 ? sd_int(1) : ia_sym_unknown();
  default: return ia_sym_unknown();
  }
}

/* One entry of op(a, b) where at least one side is symbolic or unknown: identities that hold
 * for any value of the symbol (dims are never negative). */
static KnDim sd_symbolic(SdOp op, KnDim a, KnDim b) {
  bool ai = sd_is_int(a), bi = sd_is_int(b);
  switch (op) {
  case SD_ADD:
    if (ai && a.value == 0) return b;
    return bi && b.value == 0 ? a : ia_sym_unknown();
  case SD_SUB:
    if (sd_same_sym(a, b)) return sd_int(0);
    return bi && b.value == 0 ? a : ia_sym_unknown();
  case SD_MUL:
    if ((ai && a.value == 0) || (bi && b.value == 0)) return sd_int(0);
    if (ai && a.value == 1) return b;
    return bi && b.value == 1 ? a : ia_sym_unknown();
  case SD_DIV: return bi && b.value == 1 ? a : ia_sym_unknown();
  case SD_MAX:
  case SD_MIN: {
    if (sd_same_sym(a, b)) return a;
    /* A named dim is never negative: max(dim, c <= 0) = dim and min(dim, c <= 0) = c. */
    KnDim sym = ai ? b : a, num = ai ? a : b;
    if (!sd_is_int(num) || num.value > 0 || sym.sym == IR_SYM_UNKNOWN) return ia_sym_unknown();
    return op == SD_MAX ? sym : num;
  }
  case SD_EQ:
  case SD_LE:
  case SD_GE:
    return sd_same_sym(a, b) ? sd_int(1) : sd_compare_dim(op, a, b);
  case SD_LT:
  case SD_GT:
    return sd_same_sym(a, b) ? sd_int(0) : sd_compare_dim(op, a, b);
  default: return ia_sym_unknown();
  }
}

static KnDim sd_apply(SdOp op, KnDim a, KnDim b) {
  return sd_is_int(a) && sd_is_int(b) ? sd_arith(op, a.value, b.value) : sd_symbolic(op, a, b);
}

/* The output is a small integer or bool tensor whose contents are worth tracking. */
static bool sd_wanted(const KnNode *n) {
  KnValue *o = n->n_outputs > 0 ? n->outputs[0] : NULL;
  if (!o || o->type.kind != KN_TYPE_TENSOR || o->type.shape.rank > 1 || o->type.shape.rank < 0)
    return false;
  return ir_dtype_is_int(o->type.dtype) || o->type.dtype == KN_BOOL;
}

/* Folds op over the known contents of inputs [first, first+count), broadcasting length-1
 * operands, into output 0's sym_data. Leaves it unset when any operand is not known. */
static KnStatus sd_fold(KnNode *n, SdOp op, int first, int count, KnError *err) {
  KnDim acc[IR_SYM_DATA_MAX], cur[IR_SYM_DATA_MAX];
  if (op == SD_NONE || !sd_wanted(n)) return KN_OK;
  int len = ir_input_dims(n, first, acc, IR_SYM_DATA_MAX);
  if (len < 0) return KN_OK;
  for (int k = first + 1; k < first + count; k++) {
    int m = ir_input_dims(n, k, cur, IR_SYM_DATA_MAX);
    if (m < 0 || (m != len && m != 1 && len != 1)) return KN_OK;
    int out_len = m > len ? m : len;
    for (int e = out_len - 1; e >= 0; e--)
      acc[e] = sd_apply(op, acc[len == 1 ? 0 : e], cur[m == 1 ? 0 : e]);
    len = out_len;
  }
  return ir_set_sym_data(n, 0, acc, len, err);
}

static SdOp sd_op_of(const KnNode *n) {
  switch (n->op) {
  case KN_OP_Add: case KN_OP_Sum: return SD_ADD;
  case KN_OP_Sub: return SD_SUB;
  case KN_OP_Mul: return SD_MUL;
  case KN_OP_Div: return SD_DIV;
  case KN_OP_Mod: return ir_attr_int(n, "fmod", 0) ? SD_FMOD : SD_MOD;
  case KN_OP_Max: return SD_MAX;
  case KN_OP_Min: return SD_MIN;
  case KN_OP_Equal: return SD_EQ;
  case KN_OP_Less: return SD_LT;
  case KN_OP_Greater: return SD_GT;
  case KN_OP_LessOrEqual: return SD_LE;
  case KN_OP_GreaterOrEqual: return SD_GE;
  case KN_OP_And: return SD_AND;
  case KN_OP_Or: return SD_OR;
  case KN_OP_Xor: return SD_XOR;
  default: return SD_NONE;
  }
}

/* Identity copies its input's contents; Neg and Not transform known entries. */
static KnStatus sd_unary(KnNode *n, KnError *err) {
  KnDim e[IR_SYM_DATA_MAX];
  if (!(n->op == KN_OP_Identity || n->op == KN_OP_Neg || n->op == KN_OP_Not) || !sd_wanted(n))
    return KN_OK;
  int len = ir_input_dims(n, 0, e, IR_SYM_DATA_MAX);
  if (len < 0) return KN_OK;
  for (int k = 0; k < len && n->op != KN_OP_Identity; k++) {
    if (!sd_is_int(e[k]) || e[k].value == INT64_MIN) e[k] = ia_sym_unknown();
    else e[k] = sd_int(n->op == KN_OP_Neg ? -e[k].value : !e[k].value);
  }
  return ir_set_sym_data(n, 0, e, len, err);
}

/* ---- unary ----------------------------------------------------------------------------------- */

/* Softmax-like ops name an axis of their input; reject one out of range. */
static KnStatus check_softmax_axis(const KnNode *n, const KnType *x, KnError *err) {
  if (x->shape.rank < 0) return KN_OK;
  int64_t dflt = n->opset >= 13 ? -1 : 1;
  if (x->shape.rank == 0 && n->opset < 13) return KN_OK;
  int axis;
  return ir_norm_axis(n, ir_attr_int(n, "axis", dflt), x->shape.rank ? x->shape.rank : 1, &axis,
                      err);
}

/* Activations, math functions, normalizations along an axis, Identity: output = input type. */
KnStatus infer_unary(KnNode *node, KnError *err) {
  KnValue *x = ir_input(node, 0);
  if (node->op == KN_OP_Identity && x && x->type.kind != KN_TYPE_TENSOR &&
      x->type.kind != KN_TYPE_NONE)
    return ir_set_output_type(node, 0, &x->type, err); /* sequences, optionals, sparse */
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  if (node->op == KN_OP_Softmax || node->op == KN_OP_LogSoftmax || node->op == KN_OP_Hardmax)
    if ((st = check_softmax_axis(node, &x->type, err))) return st;
  if ((st = ir_set_output_type(node, 0, &x->type, err))) return st;
  return sd_unary(node, err);
}

/* ---- broadcasting binary ops ---------------------------------------------------------------- */

/* Opsets before 7 broadcast only when asked (attribute broadcast=1), and then B into A: the
 * output always has A's shape. */
static bool legacy_broadcast(const KnNode *n) {
  if (n->opset >= 7) return false;
  switch (n->op) {
  case KN_OP_Add: case KN_OP_Sub: case KN_OP_Mul: case KN_OP_Div: case KN_OP_Pow:
  case KN_OP_And: case KN_OP_Or: case KN_OP_Xor: case KN_OP_Equal: case KN_OP_Greater:
  case KN_OP_Less: case KN_OP_PRelu:
    return true;
  default:
    return false;
  }
}

/* Output 0 gets dtype and the broadcast shape of inputs 0 and 1. */
static KnStatus set_broadcast_output(KnNode *n, KnDtype dtype, KnError *err) {
  const KnType *a = ir_input_tensor(n, 0), *b = ir_input_tensor(n, 1);
  KnShape out;
  if (legacy_broadcast(n)) {
    out = a->shape;
  } else {
    KnStatus st = ir_broadcast(n, &a->shape, &b->shape, &out, err);
    if (st) return st;
    if (n->op == KN_OP_PRelu) out = a->shape; /* slope broadcasts one way, into X */
  }
  return ir_set_output(n, 0, dtype, out.rank, out.dims, err);
}

/* PRelu's slope must broadcast into X without changing X's shape. */
static KnStatus check_prelu_slope(const KnNode *n, KnError *err) {
  const KnShape *x = &ir_input_tensor(n, 0)->shape, *s = &ir_input_tensor(n, 1)->shape;
  if (n->opset < 7 || x->rank < 0 || s->rank < 0) return KN_OK;
  if (s->rank > x->rank)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "slope has rank %d, expected at most %d (X's)",
                         s->rank, x->rank);
  for (int i = 0; i < s->rank; i++) {
    KnDim sd = s->dims[i], xd = x->dims[x->rank - s->rank + i];
    if (sd.value > 1 && xd.value >= 0 && sd.value != xd.value)
      return ir_infer_fail(err, n, KN_ERR_INVALID,
                           "slope dim %d is %lld, expected 1 or %lld to broadcast into X", i,
                           (long long)sd.value, (long long)xd.value);
  }
  return KN_OK;
}

/* Add Sub Mul Div Pow Mod BitShift PRelu: numpy broadcasting; the output has input 0's dtype
 * (Pow from opset 12 allows an exponent of another type). */
KnStatus infer_binary(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (!st && !(node->op == KN_OP_Pow && node->opset >= 12)) st = ia_same_dtype(node, 0, 1, err);
  if (!st && node->op == KN_OP_PRelu) st = check_prelu_slope(node, err);
  if (!st) st = set_broadcast_output(node, ir_input_tensor(node, 0)->dtype, err);
  if (!st) st = sd_fold(node, sd_op_of(node), 0, 2, err);
  return st;
}

/* Comparisons and logic ops: broadcasting, inputs of one dtype, bool output. */
KnStatus infer_compare(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ir_require_tensor(node, 1, err);
  if (!st) st = ia_same_dtype(node, 0, 1, err);
  if (!st) st = set_broadcast_output(node, KN_BOOL, err);
  if (!st) st = sd_fold(node, sd_op_of(node), 0, 2, err);
  return st;
}

/* IsInf, IsNaN: a bool per element. */
KnStatus infer_is_special(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  return st ? st : ia_like_input(node, 0, KN_BOOL, err);
}

/* Max Min Mean Sum over any number of inputs of one dtype, broadcast together. */
KnStatus infer_variadic(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (st) return st;
  KnShape acc = ir_input_tensor(node, 0)->shape;
  for (int i = 1; i < node->n_inputs; i++) {
    if ((st = ir_require_tensor(node, i, err)) || (st = ia_same_dtype(node, 0, i, err)))
      return st;
    KnShape next;
    if ((st = ir_broadcast(node, &acc, &ir_input_tensor(node, i)->shape, &next, err))) return st;
    acc = next;
  }
  st = ir_set_output(node, 0, ir_input_tensor(node, 0)->dtype, acc.rank, acc.dims, err);
  if (!st && node->op != KN_OP_Mean) st = sd_fold(node, sd_op_of(node), 0, node->n_inputs, err);
  return st;
}

/* Where's contents are known when its condition and both branches are. */
static KnStatus where_sym_data(KnNode *n, KnError *err) {
  KnDim c[IR_SYM_DATA_MAX], x[IR_SYM_DATA_MAX], y[IR_SYM_DATA_MAX], out[IR_SYM_DATA_MAX];
  if (!sd_wanted(n)) return KN_OK;
  int lc = ir_input_dims(n, 0, c, IR_SYM_DATA_MAX), lx = ir_input_dims(n, 1, x, IR_SYM_DATA_MAX);
  int ly = ir_input_dims(n, 2, y, IR_SYM_DATA_MAX);
  if (lc < 0 || lx < 0 || ly < 0) return KN_OK;
  int len = lc > lx ? lc : lx;
  len = ly > len ? ly : len;
  if ((lc != len && lc != 1) || (lx != len && lx != 1) || (ly != len && ly != 1)) return KN_OK;
  for (int e = 0; e < len; e++) {
    KnDim ce = c[lc == 1 ? 0 : e];
    out[e] = !sd_is_int(ce) ? ia_sym_unknown() : ce.value ? x[lx == 1 ? 0 : e] : y[ly == 1 ? 0 : e];
  }
  return ir_set_sym_data(n, 0, out, len, err);
}

/* Where(cond, X, Y): bool condition, X and Y of one dtype, all three broadcast together. */
KnStatus infer_where(KnNode *node, KnError *err) {
  KnStatus st = KN_OK;
  for (int i = 0; i < 3 && !st; i++) st = ir_require_tensor(node, i, err);
  if (!st) st = ia_same_dtype(node, 1, 2, err);
  if (st) return st;
  const KnType *c = ir_input_tensor(node, 0), *x = ir_input_tensor(node, 1);
  if (c->dtype != KN_BOOL && c->dtype != KN_UNDEF)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "input 0 (condition) has dtype %s, expected bool",
                         ir_dtype_name(c->dtype));
  KnShape xy, out;
  if ((st = ir_broadcast(node, &x->shape, &ir_input_tensor(node, 2)->shape, &xy, err))) return st;
  if ((st = ir_broadcast(node, &c->shape, &xy, &out, err))) return st;
  if ((st = ir_set_output(node, 0, x->dtype, out.rank, out.dims, err))) return st;
  return where_sym_data(node, err);
}

/* Clip: output like the input; min and max (inputs from opset 11) share its dtype. */
KnStatus infer_clip(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  for (int i = 1; i < node->n_inputs && !st; i++) {
    if (!ir_input(node, i)) continue;
    st = ir_require_tensor(node, i, err);
    if (!st) st = ia_same_dtype(node, 0, i, err);
    if (!st) st = ip_check_numel(node, i, i == 1 ? "min" : "max", 1, err);
  }
  return st ? st : ia_like_input(node, 0, KN_UNDEF, err);
}

/* Cast-1..5 name the target type as a string ("FLOAT"); later opsets use the dtype code. */
static bool dtype_from_onnx_name(const char *s, KnDtype *out) {
  static const struct { const char *name; KnDtype t; } names[] = {
      {"FLOAT", KN_F32}, {"UINT8", KN_U8}, {"INT8", KN_I8}, {"UINT16", KN_U16},
      {"INT16", KN_I16}, {"INT32", KN_I32}, {"INT64", KN_I64}, {"STRING", KN_STRING},
      {"BOOL", KN_BOOL}, {"FLOAT16", KN_F16}, {"DOUBLE", KN_F64}, {"UINT32", KN_U32},
      {"UINT64", KN_U64}, {"COMPLEX64", KN_C64}, {"COMPLEX128", KN_C128}, {"BFLOAT16", KN_BF16},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i].name) == 0) return *out = names[i].t, true;
  return false;
}

static KnStatus cast_target(const KnNode *n, KnDtype *out, KnError *err) {
  if (n->op == KN_OP_CastLike) {
    KnStatus st = ir_require_tensor(n, 1, err);
    if (!st) *out = ir_input_tensor(n, 1)->dtype;
    return st;
  }
  const KnAttr *a = ir_attr(n, "to");
  if (a && a->kind == KN_ATTR_STRING && dtype_from_onnx_name(a->s.data, out)) return KN_OK;
  if (a && a->kind == KN_ATTR_INT && a->i != KN_UNDEF && a->i < INT32_MAX &&
      ir_dtype_is_known((int)a->i))
    return *out = (KnDtype)a->i, KN_OK;
  if (!a) return ir_infer_fail(err, n, KN_ERR_INVALID, "attribute 'to' is missing");
  return ir_infer_fail(err, n, KN_ERR_UNSUPPORTED, "attribute 'to' names a dtype kiln does not know");
}

/* A cast keeps an integer's known contents when the target type can hold them. */
static KnStatus cast_sym_data(KnNode *n, KnDtype to, KnError *err) {
  KnDim e[IR_SYM_DATA_MAX];
  if (!sd_wanted(n)) return KN_OK;
  int len = ir_input_dims(n, 0, e, IR_SYM_DATA_MAX);
  const KnType *x = ir_input_tensor(n, 0);
  if (len < 0 || !(ir_dtype_is_int(x->dtype) || x->dtype == KN_BOOL)) return KN_OK;
  int bits = ir_dtype_bits(to);
  for (int k = 0; k < len; k++) {
    if (!sd_is_int(e[k])) continue;
    if (to == KN_BOOL) e[k] = sd_int(e[k].value != 0);
    else if (bits < 64 && ir_dtype_is_signed(to) &&
             (e[k].value >= ((int64_t)1 << (bits - 1)) || e[k].value < -((int64_t)1 << (bits - 1))))
      e[k] = ia_sym_unknown();
    else if (!ir_dtype_is_signed(to) && (e[k].value < 0 || (bits < 64 && e[k].value >> bits)))
      e[k] = ia_sym_unknown();
  }
  return ir_set_sym_data(n, 0, e, len, err);
}

/* Cast (attribute `to`) and CastLike (input 1's dtype): input shape, target dtype. */
KnStatus infer_cast(KnNode *node, KnError *err) {
  KnDtype to = KN_UNDEF;
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = cast_target(node, &to, err);
  if (!st) st = ia_like_input(node, 0, to, err);
  if (!st) st = cast_sym_data(node, to, err);
  return st;
}

/* Dropout: output like the input; the optional mask is bool from opset 10 (the input's type
 * before). */
KnStatus infer_dropout(KnNode *node, KnError *err) {
  KnStatus st = ir_require_tensor(node, 0, err);
  if (!st) st = ia_like_input(node, 0, KN_UNDEF, err);
  if (!st && node->n_outputs > 1) st = ia_like_input(node, 1, node->opset >= 10 ? KN_BOOL : KN_UNDEF, err);
  return st;
}
