/* infer_types.h - the ONNX schema type-constraint check shared by every op's inference. */
#ifndef KILN_IR_INFER_TYPES_H
#define KILN_IR_INFER_TYPES_H

#include "ir/ir.h"

/* Fails (KN_ERR_INVALID, naming node, op and input) when an input's kind or element dtype is one
 * the ONNX schema of n's op does not allow in any opset, or when inputs the schema ties to one
 * type parameter have different dtypes, or when an attribute the schema names has another kind.
 * Inputs whose type is not known yet pass. */
KnStatus ir_infer_check_types(const KnNode *n, KnError *err);

#endif
