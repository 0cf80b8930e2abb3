/* infer_a_internal.h - helpers shared by the elementwise, shape-op and reduction inference files. */
#ifndef KILN_IR_INFER_A_INTERNAL_H
#define KILN_IR_INFER_A_INTERNAL_H

#include "ir/infer_fns.h"

/* Longest axes/pads/shape/repeats list read at compile time (ONNX puts no bound on rank, but a
 * longer list than this is left unknown rather than read onto the stack). */
#define IA_MAX_LIST 256

/* ---- defined in infer_shape_ops.c --------------------------------------------------------- */
KnStatus ia_nomem(KnError *err);
/* Arena array of count dims (at least one slot), every dim unknown; NULL on OOM. */
KnDim *ia_dims(const KnNode *n, int count);
/* The entry that marks an unknown element of sym_data. */
KnDim ia_sym_unknown(void);
/* An integer list that opsets before `since` give as attribute attr and later ones as input i
 * (Squeeze axes, Split's split, ...). Returns the count, IA_ABSENT when neither is given, or
 * IA_UNKNOWN when the input is given but its values are not known at compile time. */
#define IA_ABSENT (-2)
#define IA_UNKNOWN (-1)
int ia_ints_attr_or_input(const KnNode *n, const char *attr, int i, int since, int64_t *out,
                          int max);
/* Normalizes count axes against rank into mask[rank] (true = listed); fails on an axis out of
 * range or listed twice. */
KnStatus ia_axes_mask(const KnNode *n, const int64_t *axes, int count, int rank, bool *mask,
                      KnError *err);
/* Constant data behind input i: an initializer or a Constant node's tensor; else NULL. */
const KnTensor *ia_const_tensor(const KnNode *n, int i);
/* The single number held by input i (scalar or one element) when known at compile time. */
bool ia_input_scalar(const KnNode *n, int i, double *out);
/* Copies input 0's type to output o with dtype replaced (KN_UNDEF: keep). Input 0 must be a
 * tensor. */
KnStatus ia_like_input(KnNode *n, int o, KnDtype dtype, KnError *err);

/* ---- defined in infer_elementwise.c ------------------------------------------------------- */
/* Fails unless the known dtypes of inputs i and j agree (naming both). */
KnStatus ia_same_dtype(const KnNode *n, int i, int j, KnError *err);

#endif
