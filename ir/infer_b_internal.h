/* infer_b_internal.h - helpers shared by the NN, signal, sequence and control-flow inference files. */
#ifndef KILN_IR_INFER_B_INTERNAL_H
#define KILN_IR_INFER_B_INTERNAL_H

#include "ir/infer_fns.h"

/* Arena array of rank dims (at least one slot), every dim unknown; NULL on OOM. */
KnDim *ib_dims(const KnNode *n, int rank);
KnStatus ib_nomem(KnError *err);

/* Constant data behind input i: an initializer or the value of a Constant node; else NULL. */
const KnTensor *ib_const_tensor(const KnNode *n, int i);
/* Reads up to max numbers of a constant 0-D/1-D input as doubles; count, or -1 if not known. */
int ib_input_doubles(const KnNode *n, int i, double *out, int max);
/* A single known integer of a scalar or one-element input; false if not known. */
bool ib_input_scalar(const KnNode *n, int i, int64_t *out);

/* The rank of a tensor input (-1 if unknown or the input is absent) and its dim d. */
int ib_rank(const KnNode *n, int i);
KnDim ib_dim(const KnNode *n, int i, int d);
/* Of two dims that must agree, the better known: concrete, else symbolic, else unknown. */
KnDim ib_better_dim(KnDim a, KnDim b);
/* Tensor input i that must be present: fails unless it is a tensor. Sets *t. */
KnStatus ib_tensor(const KnNode *n, int i, const KnType **t, KnError *err);
/* Fails if concrete dims a and b differ; what names the dims in the message. */
KnStatus ib_check_dim(const KnNode *n, KnDim a, KnDim b, const char *what, KnError *err);
/* Fails unless input i has the given rank (when its rank is known). */
KnStatus ib_check_rank(const KnNode *n, int i, int rank, KnError *err);
/* Fails if the known dtypes of inputs i and j differ. */
KnStatus ib_check_same_dtype(const KnNode *n, int i, int j, KnError *err);
/* Output o becomes input i's tensor type with dtype replaced (KN_UNDEF: keep the input's). */
KnStatus ib_like_input(KnNode *n, int o, int i, KnDtype dtype, KnError *err);
/* Dtype attribute (ONNX code) with a default; fails on codes kiln does not know. */
KnStatus ib_attr_dtype(const KnNode *n, const char *name, KnDtype dflt, KnDtype *out, KnError *err);

/* Union of two types (If branches, sequence elements): kinds and dtypes must agree; dims that
 * differ become unknown, ranks that differ make the rank unknown. what names the pair. */
KnStatus ib_union_type(const KnNode *n, const KnType *a, const KnType *b, KnType *out,
                       const char *what, KnError *err);
/* Clears the inferred types of every node output in g and its subgraphs (graph outputs keep a
 * declared dtype), so g can be inferred again with different input types. */
void ib_forget_graph(KnGraph *g);
/* The graph held by attribute name; fails naming the node if absent. */
KnStatus ib_graph_attr(const KnNode *n, const char *name, KnGraph **out, KnError *err);

#endif
