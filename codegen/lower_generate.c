/* lower_generate.c - lowerings that create tensors rather than read them: Shape, Size, Constant
 * (data embedded in the module), ConstantOfShape, Range and EyeLike. */
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_data.h"

/* ---- Shape, Size -------------------------------------------------------------------------- */
KnStatus cg_lower_shape(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0), *os = cg_out_shape(k, 0);
  if (k->node->inputs[0]->type.kind != KN_TYPE_TENSOR) return cg_unsupported(k, "a non-tensor input");
  int64_t r = s->rank, start = 0, end = r;
  if (k->node->opset >= 15) { /* start and end slice the dims, clamped */
    start = ir_attr_int(k->node, "start", 0);
    end = ir_attr_int(k->node, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
  }
  int64_t cnt = end > start ? end - start : 0;
  if (os->rank != 1 || os->dims[0].value != cnt) return cg_unsupported(k, "output shape differs from start/end");
  for (int64_t i = 0; i < cnt; i++)
    cg_store(k, k->out[0], cg_out_dtype(k, 0), cg_i64(k, i), cg_const_int(k, cg_out_dtype(k, 0), s->dims[start + i].value));
  return KN_OK;
}

KnStatus cg_lower_size(CgKernel *k) {
  if (k->node->inputs[0]->type.kind != KN_TYPE_TENSOR) return cg_unsupported(k, "a non-tensor input");
  KnDtype t = cg_out_dtype(k, 0);
  cg_store(k, k->out[0], t, cg_i64(k, 0), cg_const_int(k, t, cg_numel(cg_in_shape(k, 0))));
  return KN_OK;
}

/* ---- Constant ----------------------------------------------------------------------------- */
/* Copies nbytes of data into output 0 from a private constant global of the module. */
static void emit_bytes(CgKernel *k, const void *data, size_t nbytes) {
  if (nbytes == 0) return;
  cg_memcpy(k, k->out[0], dm_const_global(k, data, nbytes), cg_i64(k, (int64_t)nbytes));
}

/* A sparse tensor made dense: values scattered to their (linear or per-dim) indices. */
static KnStatus emit_sparse(CgKernel *k, const KnSparseTensor *sp) {
  const KnTensor *v = sp->values, *ix = sp->indices;
  int es = dm_elem_bytes(v->dtype);
  int64_t numel = cg_numel(cg_out_shape(k, 0)), str[DM_MAX_RANK];
  if (!es || !ix || sp->rank > DM_MAX_RANK) return cg_unsupported(k, "sparse_value of this dtype or rank");
  bool linear = ix->rank == 1;
  if (!linear && (ix->rank != 2 || ix->dims[1] != sp->rank)) return cg_unsupported(k, "sparse indices shape");
  dm_strides(sp->dims, sp->rank, str);
  char *dense = calloc((size_t)(numel ? numel : 1), (size_t)es);
  if (!dense) return kn_fail(k->err, KN_ERR_NOMEM, "out of memory densifying a sparse constant");
  for (int64_t i = 0; i < v->numel; i++) {
    int64_t at = 0;
    if (linear) at = ir_tensor_get_int(ix, i);
    else
      for (int d = 0; d < sp->rank; d++) at += ir_tensor_get_int(ix, i * sp->rank + d) * str[d];
    if (at < 0 || at >= numel) {
      free(dense);
      return kn_fail(k->err, KN_ERR_INVALID, "sparse_value index %lld out of range", (long long)at);
    }
    memcpy(dense + at * es, (const char *)v->data + i * es, (size_t)es);
  }
  emit_bytes(k, dense, (size_t)(numel * es));
  free(dense);
  return KN_OK;
}

KnStatus cg_lower_constant(CgKernel *k) {
  const KnNode *n = k->node;
  for (int i = 0; i < n->n_attrs; i++) {
    const KnAttr *a = &n->attrs[i];
    if (strcmp(a->name, "value") == 0 && a->kind == KN_ATTR_TENSOR) {
      if (a->t->dtype == KN_STRING) break;
      emit_bytes(k, a->t->data, a->t->nbytes);
      return KN_OK;
    }
    if (strcmp(a->name, "sparse_value") == 0 && a->kind == KN_ATTR_SPARSE_TENSOR) return emit_sparse(k, a->sp);
    if (strcmp(a->name, "value_float") == 0 && a->kind == KN_ATTR_FLOAT) return emit_bytes(k, &a->f, sizeof a->f), KN_OK;
    if (strcmp(a->name, "value_int") == 0 && a->kind == KN_ATTR_INT) return emit_bytes(k, &a->i, sizeof a->i), KN_OK;
    if (strcmp(a->name, "value_floats") == 0 && a->kind == KN_ATTR_FLOATS)
      return emit_bytes(k, a->floats, (size_t)a->n * sizeof *a->floats), KN_OK;
    if (strcmp(a->name, "value_ints") == 0 && a->kind == KN_ATTR_INTS)
      return emit_bytes(k, a->ints, (size_t)a->n * sizeof *a->ints), KN_OK;
  }
  return cg_unsupported(k, "string constants or no value attribute");
}

/* ---- ConstantOfShape ---------------------------------------------------------------------- */
KnStatus cg_lower_constant_of_shape(CgKernel *k) {
  const KnAttr *v = ir_attr(k->node, "value");
  const KnTensor *t = v && v->kind == KN_ATTR_TENSOR ? v->t : NULL;
  KnDtype dt = cg_out_dtype(k, 0);
  int es = dm_elem_bytes(dt);
  if (!es || (t && (t->dtype != dt || t->numel != 1))) return cg_unsupported(k, "value of this dtype or size");
  uint64_t bits = 0; /* the element's bytes, little-endian, as an integer of its width */
  if (t) memcpy(&bits, t->data, (size_t)es);
  dm_fill(k, k->out[0], dt, LLVMConstInt(dm_raw_type(k, es), bits, 0), cg_numel(cg_out_shape(k, 0)), true);
  return KN_OK;
}

/* ---- Range -------------------------------------------------------------------------------- */
/* out[i] = start + i * delta; the length was fixed at compile time, so the kernel checks that
 * start, limit and delta still give it: max(ceil((limit - start) / delta), 0). */
KnStatus cg_lower_range(CgKernel *k) {
  KnDtype t = cg_out_dtype(k, 0);
  if (!dm_elem_bytes(t) || t == KN_BOOL) return cg_unsupported(k, "dtype");
  LLVMBuilderRef b = k->b;
  int64_t n = cg_numel(cg_out_shape(k, 0));
  LLVMValueRef zero = cg_i64(k, 0);
  LLVMValueRef start = cg_load(k, k->in[0], t, zero), limit = cg_load(k, k->in[1], t, zero);
  LLVMValueRef delta = cg_load(k, k->in[2], t, zero);
  LLVMValueRef s = cg_convert(k, start, t, KN_F64), l = cg_convert(k, limit, t, KN_F64), d = cg_convert(k, delta, t, KN_F64);
  LLVMValueRef q = LLVMBuildFDiv(b, LLVMBuildFSub(b, l, s, ""), d, "");
  LLVMValueRef c = cg_intrinsic(k, "llvm.ceil", &q, 1);
  c = cg_select(k, LLVMBuildFCmp(b, LLVMRealOGT, c, LLVMConstReal(k->m->t_f64, 0), ""), c, LLVMConstReal(k->m->t_f64, 0));
  LLVMValueRef bad = LLVMBuildFCmp(b, LLVMRealUNE, c, LLVMConstReal(k->m->t_f64, (double)n), "");
  cg_fail_if(k, bad, KN_ERR_INVALID, "start, limit and delta give another length than compiled for",
             cg_convert(k, c, KN_F64, KN_I64));
  if (n == 0) return KN_OK;
  CgLoop lp = cg_loop_begin(k, zero, cg_i64(k, n));
  LLVMValueRef v = cg_add(k, t, start, cg_mul(k, t, cg_convert(k, lp.i, KN_I64, t), delta));
  cg_store(k, k->out[0], t, lp.i, v);
  cg_loop_end(k, &lp);
  return KN_OK;
}

/* ---- EyeLike ------------------------------------------------------------------------------ */
KnStatus cg_lower_eye_like(CgKernel *k) {
  const KnShape *os = cg_out_shape(k, 0);
  KnDtype t = cg_out_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  if (os->rank != 2) return cg_unsupported(k, "output of rank other than 2");
  int64_t rows = os->dims[0].value, cols = os->dims[1].value, d = ir_attr_int(k->node, "k", 0);
  dm_fill(k, k->out[0], t, LLVMConstInt(dm_raw_type(k, dm_elem_bytes(t)), 0, 0), rows * cols, true);
  int64_t first = d < 0 ? -d : 0, last = cols - d < rows ? cols - d : rows; /* rows i with 0 <= i+d < cols */
  if (last <= first) return KN_OK;
  CgLoop l = cg_loop_begin(k, cg_i64(k, first), cg_i64(k, last));
  LLVMValueRef at = LLVMBuildAdd(k->b, LLVMBuildMul(k->b, l.i, cg_i64(k, cols + 1), ""), cg_i64(k, d), "");
  cg_store(k, k->out[0], t, at, cg_const(k, t, 1));
  cg_loop_end(k, &l);
  return KN_OK;
}
