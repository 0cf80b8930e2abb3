/* fused_elementwise.h - the step program of kiln.FusedElementwise: its text form, parsed once by
 * inference and again by codegen (codegen/lower_fused_elementwise.c), and the ops a step may use. */
#ifndef KILN_IR_FUSED_ELEMENTWISE_H
#define KILN_IR_FUSED_ELEMENTWISE_H

#include <stddef.h>

#include "ir/ir.h"

/* Bounds that keep a program's parse on the stack and inside the elementwise loop's operand
 * limit (codegen/cg_elementwise.c takes up to 64 inputs). */
#define IR_FE_MAX_STEPS 64
#define IR_FE_MAX_INPUTS 32

typedef enum IrFeArgKind {
  IR_FE_INPUT, /* x<index>: the node's input, broadcast to the output shape */
  IR_FE_STEP,  /* t<index>: an earlier step's result */
  IR_FE_CONST, /* a number written in the program */
} IrFeArgKind;

typedef struct IrFeArg {
  IrFeArgKind kind;
  int index;
  float value; /* IR_FE_CONST */
} IrFeArg;

typedef struct IrFeStep {
  KnOp op;     /* an ONNX-domain op, ir_fe_arity(op) > 0 */
  int n_args;
  IrFeArg args[2];
} IrFeStep;

typedef struct IrFeProgram {
  int n_steps; /* the last step's result is the node's output */
  IrFeStep steps[IR_FE_MAX_STEPS];
} IrFeProgram;

/* How many operands op takes as a step: 1 or 2; 0 when a step may not use it. Every such op is
 * f32 -> f32 without attributes (Max and Min as their two-input forms). */
int ir_fe_arity(KnOp op);

/* Parses the "program" attribute of a node with n_inputs inputs:
 *   "t0 = Mul(x0, x1); t1 = Sigmoid(t0); y = Mul(t0, t1)"
 * step i is named t<i>, the last one y; operands are x<j> (j < n_inputs), t<i> of an earlier
 * step, or a number (an f32 literal). Returns false with a message in msg on anything else. */
bool ir_fe_parse(const char *text, int n_inputs, IrFeProgram *p, char *msg, size_t msg_size);

#endif
