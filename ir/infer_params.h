/* infer_params.h - checks of parameter inputs whose size an op's lowering relies on (Clip's
 * bounds, OneHot's values, RNN weights, ...), shared by the per-op inference files. */
#ifndef KILN_IR_INFER_PARAMS_H
#define KILN_IR_INFER_PARAMS_H

#include "ir/ir.h"

/* Each fails with KN_ERR_INVALID naming node, op, input i (what: its ONNX name) and the expected
 * vs actual shape; each passes an omitted input and a shape not known at compile time. */

/* Input i holds exactly `count` elements (any rank: a scalar and [1] both hold one). */
KnStatus ip_check_numel(const KnNode *n, int i, const char *what, int64_t count, KnError *err);
/* Input i holds one element or `len` (len < 0: unknown, then anything not empty passes). */
KnStatus ip_check_scalar_or_len(const KnNode *n, int i, const char *what, KnDim len, KnError *err);
/* Input i has shape dims[rank]; unknown entries of dims match anything. */
KnStatus ip_check_shape(const KnNode *n, int i, const char *what, int rank, const KnDim *dims,
                        KnError *err);
/* Input i broadcasts one way into shape to (numpy rules, to's shape unchanged). */
KnStatus ip_check_unibroadcast(const KnNode *n, int i, const char *what, int rank,
                               const KnDim *to, KnError *err);
/* Input i has the same shape as input j. */
KnStatus ip_check_same_shape(const KnNode *n, int i, const char *what, int j, const char *jwhat,
                             KnError *err);

#endif
