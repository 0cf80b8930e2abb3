/* lower_fused_elementwise.h - the per-element emitters of the one-op elementwise lowerings that
 * kiln.FusedElementwise's lowering (codegen/lower_fused_elementwise.c) reuses for its steps. */
#ifndef KILN_LOWER_FUSED_ELEMENTWISE_H
#define KILN_LOWER_FUSED_ELEMENTWISE_H

#include "codegen/cg.h"

/* The scalar expression cg_lower_unary / cg_lower_binary build for k->node's op (attributes and
 * input dtypes read from k->node) on compute values x / a, b. Defined in lower_unary.c and
 * lower_binary.c; NULL for an op they do not compute. */
LLVMValueRef cg_unary_value(CgKernel *k, LLVMValueRef x);
LLVMValueRef cg_binary_value(CgKernel *k, LLVMValueRef a, LLVMValueRef b);

#endif
