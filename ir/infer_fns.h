/* infer_fns.h - declarations of every shape-inference function named in ops.def. */
#ifndef KILN_IR_INFER_FNS_H
#define KILN_IR_INFER_FNS_H

#include "ir/ir.h"

#define OP(name, dom, since, mi, ma, mo, mx, infer, lower) KnStatus infer(KnNode *node, KnError *err);
#include "ir/ops.def"
#undef OP

#endif
