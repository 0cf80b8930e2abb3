/* infer_fused_elementwise.c - kiln.FusedElementwise: its step program's parser and its shape
 * inference (the output is every input broadcast together, f32). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/fused_elementwise.h"
#include "ir/infer_b_internal.h"

int ir_fe_arity(KnOp op) {
  switch (op) {
  case KN_OP_Abs: case KN_OP_Neg: case KN_OP_Relu: case KN_OP_Sign: case KN_OP_Sigmoid:
  case KN_OP_Tanh: case KN_OP_Exp: case KN_OP_Log: case KN_OP_Sqrt: case KN_OP_Reciprocal:
  case KN_OP_Erf: case KN_OP_Softplus: case KN_OP_Softsign: case KN_OP_HardSwish:
  case KN_OP_Floor: case KN_OP_Ceil: case KN_OP_Round: case KN_OP_Sin: case KN_OP_Cos:
    return 1;
  case KN_OP_Add: case KN_OP_Sub: case KN_OP_Mul: case KN_OP_Div: case KN_OP_Pow:
  case KN_OP_Max: case KN_OP_Min: case KN_OP_PRelu:
    return 2;
  default:
    return 0;
  }
}

typedef struct Lex {
  const char *s;
  char *msg;
  size_t msg_size;
} Lex;

static bool lex_fail(Lex *l, const char *what) {
  snprintf(l->msg, l->msg_size, "program: %s at '%.20s'", what, l->s);
  return false;
}

static void skip_space(Lex *l) {
  while (isspace((unsigned char)*l->s)) l->s++;
}

/* Consumes c (after blanks) if it is next. */
static bool accept(Lex *l, char c) {
  skip_space(l);
  if (*l->s != c) return false;
  l->s++;
  return true;
}

/* A small decimal index right after a name letter; bounded so it cannot overflow. */
static bool lex_index(Lex *l, int *out) {
  if (!isdigit((unsigned char)*l->s)) return lex_fail(l, "expected an index");
  long v = 0;
  while (isdigit((unsigned char)*l->s)) {
    v = v * 10 + (*l->s++ - '0');
    if (v > 1000000) return lex_fail(l, "index too large");
  }
  *out = (int)v;
  return true;
}

/* One operand of step `step`: x<j>, t<i> (i < step) or an f32 number. */
static bool lex_arg(Lex *l, int step, int n_inputs, IrFeArg *a) {
  skip_space(l);
  char c = *l->s;
  if (c == 'x' || c == 't') {
    l->s++;
    if (!lex_index(l, &a->index)) return false;
    a->kind = c == 'x' ? IR_FE_INPUT : IR_FE_STEP;
    if (c == 'x' && a->index >= n_inputs) return lex_fail(l, "input index past the node's inputs");
    if (c == 't' && a->index >= step) return lex_fail(l, "step used before it is computed");
    return true;
  }
  if (!(isdigit((unsigned char)c) || c == '-' || c == '+' || c == '.')) return lex_fail(l, "expected an operand");
  char *end;
  double v = strtod(l->s, &end);
  if (end == l->s || !isfinite(v) || fabs(v) > 3.4028234663852886e38) return lex_fail(l, "bad number");
  l->s = end;
  *a = (IrFeArg){.kind = IR_FE_CONST, .value = (float)v};
  return true;
}

/* "NAME = Op(arg, ...)" for step i; *last is set when NAME is y. */
static bool lex_step(Lex *l, int i, int n_inputs, IrFeStep *st, bool *last) {
  skip_space(l);
  int idx = -1;
  if (*l->s == 'y') {
    l->s++, *last = true;
  } else if (*l->s == 't') {
    l->s++;
    if (!lex_index(l, &idx)) return false;
    if (idx != i) return lex_fail(l, "steps must be named t0, t1, ... in order");
  } else {
    return lex_fail(l, "expected a step name (t<i> or y)");
  }
  if (!accept(l, '=')) return lex_fail(l, "expected '='");
  skip_space(l);
  char name[32];
  size_t n = 0;
  while (isalpha((unsigned char)*l->s) && n + 1 < sizeof name) name[n++] = *l->s++;
  name[n] = '\0';
  st->op = n ? ir_op_lookup(KN_DOMAIN_ONNX, name) : KN_OP_NONE;
  int arity = ir_fe_arity(st->op);
  if (!arity) return lex_fail(l, "not an op a step may use");
  if (!accept(l, '(')) return lex_fail(l, "expected '('");
  for (st->n_args = 0; st->n_args < arity; st->n_args++) {
    if (st->n_args && !accept(l, ',')) return lex_fail(l, "expected ','");
    if (!lex_arg(l, i, n_inputs, &st->args[st->n_args])) return false;
  }
  return accept(l, ')') ? true : lex_fail(l, "expected ')'");
}

bool ir_fe_parse(const char *text, int n_inputs, IrFeProgram *p, char *msg, size_t msg_size) {
  Lex l = {text ? text : "", msg, msg_size};
  p->n_steps = 0;
  for (bool last = false; !last;) {
    if (p->n_steps == IR_FE_MAX_STEPS) return lex_fail(&l, "more than 64 steps");
    if (!lex_step(&l, p->n_steps, n_inputs, &p->steps[p->n_steps], &last)) return false;
    p->n_steps++;
    if (!last && !accept(&l, ';')) return lex_fail(&l, "expected ';' (the last step is named y)");
  }
  accept(&l, ';');
  skip_space(&l);
  return *l.s ? lex_fail(&l, "text after the y step") : true;
}

/* kiln.FusedElementwise(X0, ..., Xn-1) {program}: f32 inputs broadcast together (numpy rules)
 * give the output's shape; the program computes it step by step. */
KnStatus infer_fused_elementwise(KnNode *node, KnError *err) {
  if (node->n_inputs > IR_FE_MAX_INPUTS)
    return ir_infer_fail(err, node, KN_ERR_INVALID, "%d inputs, at most %d", node->n_inputs, IR_FE_MAX_INPUTS);
  char msg[160];
  IrFeProgram prog;
  if (!ir_fe_parse(ir_attr_string(node, "program", ""), node->n_inputs, &prog, msg, sizeof msg))
    return ir_infer_fail(err, node, KN_ERR_INVALID, "%s", msg);
  KnShape acc = {0, NULL};
  for (int i = 0; i < node->n_inputs; i++) {
    const KnType *t;
    KnStatus st = ib_tensor(node, i, &t, err);
    if (st) return st;
    if (t->dtype != KN_F32)
      return ir_infer_fail(err, node, KN_ERR_INVALID, "input %d is %s, expected f32", i, ir_dtype_name(t->dtype));
    KnShape next;
    if ((st = ir_broadcast(node, &acc, &t->shape, &next, err))) return st;
    acc = next;
  }
  return ir_set_output(node, 0, KN_F32, acc.rank, acc.dims, err);
}
