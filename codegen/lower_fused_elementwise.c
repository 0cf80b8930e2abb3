/* lower_fused_elementwise.c - kiln.FusedElementwise: the whole step program inside one pass of the
 * generic elementwise loop (broadcast strides, vectorized inner loop, threads over the outer dim),
 * each step built by the same emitter as the op's own one-node kernel. */
#include "codegen/lower_fused_elementwise.h"
#include "ir/fused_elementwise.h"

/* The stand-in node a step's emitter reads its op and operand dtypes from: the fused node's own
 * input where the operand is one (so Pow still sees a constant exponent), else an f32 value; an
 * exponent written in the program becomes a one-element constant. */
typedef struct StepNode {
  KnNode node;
  KnValue *inputs[2];
  KnValue temps[2];
  KnTensor lit;
  int64_t lit_dims[1];
  float lit_value;
} StepNode;

static void make_step_node(const KnNode *fused, const IrFeStep *s, StepNode *sn) {
  for (int a = 0; a < s->n_args; a++) {
    const IrFeArg *arg = &s->args[a];
    if (arg->kind == IR_FE_INPUT) {
      sn->inputs[a] = fused->inputs[arg->index];
      continue;
    }
    sn->temps[a] = (KnValue){.name = "", .type = fused->outputs[0]->type, .graph = fused->graph};
    sn->inputs[a] = &sn->temps[a];
    if (arg->kind == IR_FE_CONST) {
      sn->lit_value = arg->value, sn->lit_dims[0] = 1;
      sn->lit = (KnTensor){.dtype = KN_F32, .rank = 1, .dims = sn->lit_dims, .numel = 1,
                           .data = &sn->lit_value, .nbytes = sizeof sn->lit_value};
      sn->temps[a].init = &sn->lit;
    }
  }
  sn->node = *fused;
  sn->node.op = s->op, sn->node.domain = KN_DOMAIN_ONNX, sn->node.opset = 17;
  sn->node.inputs = sn->inputs, sn->node.n_inputs = s->n_args;
  sn->node.attrs = NULL, sn->node.n_attrs = 0;
}

static LLVMValueRef operand(CgKernel *k, const IrFeArg *a, LLVMValueRef *vals, LLVMValueRef *steps) {
  switch (a->kind) {
  case IR_FE_INPUT: return vals[a->index];
  case IR_FE_STEP: return steps[a->index];
  default: return LLVMConstReal(k->m->t_f32, a->value);
  }
}

static LLVMValueRef step_value(CgKernel *k, const IrFeStep *s, LLVMValueRef *vals, LLVMValueRef *steps) {
  LLVMValueRef x = operand(k, &s->args[0], vals, steps);
  LLVMValueRef y = s->n_args > 1 ? operand(k, &s->args[1], vals, steps) : NULL;
  if (s->op == KN_OP_Max) return cg_max(k, KN_F32, x, y); /* as variadic Max/Min of two */
  if (s->op == KN_OP_Min) return cg_min(k, KN_F32, x, y);
  const KnNode *fused = k->node;
  StepNode sn;
  make_step_node(fused, s, &sn);
  k->node = &sn.node;
  LLVMValueRef r = s->n_args == 1 ? cg_unary_value(k, x) : cg_binary_value(k, x, y);
  k->node = fused;
  return r;
}

/* Never NULL: ir_fe_arity admits only ops the unary and binary emitters compute on f32. */
static LLVMValueRef program_expr(CgKernel *k, LLVMValueRef *vals, void *user) {
  const IrFeProgram *p = user;
  LLVMValueRef steps[IR_FE_MAX_STEPS];
  for (int i = 0; i < p->n_steps; i++) steps[i] = step_value(k, &p->steps[i], vals, steps);
  return steps[p->n_steps - 1];
}

KnStatus cg_lower_fused_elementwise(CgKernel *k) {
  const KnNode *n = k->node;
  IrFeProgram prog;
  char msg[160] = "more inputs than a program may read";
  if (n->n_inputs > IR_FE_MAX_INPUTS || !ir_fe_parse(ir_attr_string(n, "program", ""), n->n_inputs, &prog, msg, sizeof msg))
    return cg_unsupported(k, msg);
  for (int i = 0; i < n->n_inputs; i++)
    if (!n->inputs[i] || cg_in_dtype(k, i) != KN_F32) return cg_unsupported(k, "dtype (f32 inputs only)");
  if (cg_out_dtype(k, 0) != KN_F32) return cg_unsupported(k, "dtype (f32 output only)");
  return cg_emit_elementwise(k, program_expr, &prog);
}
