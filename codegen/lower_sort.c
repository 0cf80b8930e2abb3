/* lower_sort.c - TopK: the kernel calls the runtime's sort (runtime/rt_sort.c), since sorting
 * gains nothing from code specialized to the shape. */
#include "codegen/cg.h"

KnStatus cg_lower_top_k(CgKernel *k) {
  const KnNode *n = k->node;
  const KnShape *x = cg_in_shape(k, 0), *y = cg_out_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  if (t == KN_STRING || ir_dtype_bits(t) < 8 || !cg_storage_type(k->m, t)) return cg_unsupported(k, "dtype");
  /* sorted=0 allows any order; kiln always returns sorted output, which the spec permits. */
  int axis;
  KnError *err = k->err;
  if (ir_norm_axis(n, ir_attr_int(n, "axis", -1), x->rank, &axis, err) != KN_OK) return err->status;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= x->dims[d].value;
  for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d].value;
  int64_t len = x->dims[axis].value, kk = y->dims[axis].value;
  if (!k->out[0] || !k->out[1]) return cg_unsupported(k, "TopK with an omitted output");
  CgModule *m = k->m;
  LLVMTypeRef args[11] = {m->t_ptr, m->t_ptr, m->t_i32, m->t_i64, m->t_i64, m->t_i64,
                          m->t_i64, m->t_i32, m->t_ptr, m->t_ptr, m->t_i32};
  LLVMTypeRef fty = LLVMFunctionType(m->t_i32, args, 11, 0);
  bool largest = n->opset < 11 || ir_attr_int(n, "largest", 1) != 0;
  LLVMValueRef vals[11] = {k->ctx, k->in[0], cg_i32(k, (int32_t)t), cg_i64(k, outer), cg_i64(k, len),
                           cg_i64(k, inner), cg_i64(k, kk), cg_i32(k, largest), k->out[0], k->out[1],
                           cg_i32(k, ir_dtype_bits(t) / 8)};
  cg_check_status(k, LLVMBuildCall2(k->b, fty, cg_extern_fn(m, "kn_rt_top_k", fty), vals, 11, ""));
  return KN_OK;
}
