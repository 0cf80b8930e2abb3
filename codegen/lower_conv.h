/* lower_conv.h - private helpers shared by conv, pooling, matmul and linalg lowerings: short i64
 * arithmetic, constant index tables, fused multiply-add, and sliding-window geometry. */
#ifndef KILN_LOWER_CONV_H
#define KILN_LOWER_CONV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "codegen/cg.h"

#define LW_MAX_SP 3 /* spatial dims handled (1-D..3-D; fewer are padded with size-1 dims) */

/* Input i is present (an omitted optional input, or one past the node's inputs, is not). */
static inline bool lw_has(const CgKernel *k, int i) { return i >= 0 && i < k->node->n_inputs && k->in[i]; }

static inline LLVMValueRef lw_add(CgKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(k->b, a, b, ""); }
static inline LLVMValueRef lw_sub(CgKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSub(k->b, a, b, ""); }
static inline LLVMValueRef lw_mul(CgKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(k->b, a, b, ""); }
static inline LLVMValueRef lw_addc(CgKernel *k, LLVMValueRef a, int64_t c) {
  return c == 0 ? a : LLVMBuildAdd(k->b, a, cg_i64(k, c), "");
}
static inline LLVMValueRef lw_mulc(CgKernel *k, LLVMValueRef a, int64_t c) {
  return c == 1 ? a : LLVMBuildMul(k->b, a, cg_i64(k, c), "");
}
/* a*c + d for an i64 a and constants. */
static inline LLVMValueRef lw_madc(CgKernel *k, LLVMValueRef a, int64_t c, LLVMValueRef d) {
  return lw_add(k, lw_mulc(k, a, c), d);
}
static inline LLVMValueRef lw_divc(CgKernel *k, LLVMValueRef a, int64_t c) {
  return c == 1 ? a : LLVMBuildSDiv(k->b, a, cg_i64(k, c), "");
}
static inline LLVMValueRef lw_remc(CgKernel *k, LLVMValueRef a, int64_t c) {
  return c == 1 ? cg_i64(k, 0) : LLVMBuildSRem(k->b, a, cg_i64(k, c), "");
}
static inline LLVMValueRef lw_loadv(CgKernel *k, LLVMTypeRef t, LLVMValueRef p) { return LLVMBuildLoad2(k->b, t, p, ""); }
static inline LLVMValueRef lw_i64_at(CgKernel *k, LLVMValueRef table, LLVMValueRef idx) {
  LLVMValueRef p = LLVMBuildInBoundsGEP2(k->b, k->m->t_i64, table, &idx, 1, "");
  return LLVMBuildLoad2(k->b, k->m->t_i64, p, "");
}

/* A private constant global holding nbytes raw bytes (aligned to align), named after the kernel
 * with tag: the JIT targets the host, so its byte order is ours. */
static inline LLVMValueRef lw_bytes_table(CgKernel *k, const void *bytes, size_t nbytes, unsigned align, const char *tag) {
  LLVMValueRef arr = LLVMConstStringInContext2(k->m->ctx, (const char *)bytes, nbytes, 1);
  char name[64];
  snprintf(name, sizeof name, "kn_k%d_%s%d", k->node->id, tag, k->m->n_helpers++);
  LLVMValueRef g = LLVMAddGlobal(k->m->mod, LLVMTypeOf(arr), name);
  LLVMSetInitializer(g, arr);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetAlignment(g, align);
  return g;
}

/* A private constant array of n i64 values, read with lw_i64_at. */
static inline LLVMValueRef lw_table(CgKernel *k, const int64_t *vals, int64_t n) {
  static const int64_t zero = 0;
  if (n <= 0) vals = &zero, n = 1;
  return lw_bytes_table(k, vals, (size_t)n * sizeof *vals, 8, "tab");
}

/* acc + a*b in the compute type of t; floats through llvm.fmuladd so LLVM may use FMA. */
static inline LLVMValueRef lw_fma(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
  if (ir_dtype_is_float(t)) {
    LLVMValueRef args[3] = {a, b, acc};
    return cg_intrinsic(k, "llvm.fmuladd", args, 3);
  }
  return LLVMBuildAdd(k->b, acc, LLVMBuildMul(k->b, a, b, ""), "");
}

/* A distinct metadata node whose first operand is itself, followed by ops (loop ids, alias scopes). */
static inline LLVMMetadataRef lw_self_node(LLVMContextRef c, LLVMMetadataRef *ops, int n) {
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(c, NULL, 0);
  LLVMMetadataRef all[4] = {tmp};
  for (int i = 0; i < n && i < 3; i++) all[i + 1] = ops[i];
  LLVMMetadataRef node = LLVMMDNodeInContext2(c, all, (size_t)n + 1);
  LLVMMetadataReplaceAllUsesWith(tmp, node);
  return node;
}

/* Alias scopes for accesses the lowering knows are disjoint (an output row, a stack buffer), so
 * LLVM vectorizes short loops without runtime overlap checks. */
#define LW_MAX_SCOPES 8
typedef struct LwScopes {
  int n;
  LLVMMetadataRef scope[LW_MAX_SCOPES];
} LwScopes;

static inline LwScopes lw_scopes(CgKernel *k, int n) {
  LwScopes s = {.n = n < LW_MAX_SCOPES ? n : LW_MAX_SCOPES};
  LLVMContextRef c = k->m->ctx;
  LLVMMetadataRef dom = lw_self_node(c, NULL, 0);
  for (int i = 0; i < s.n; i++) s.scope[i] = lw_self_node(c, &dom, 1);
  return s;
}

/* Tags memory instruction v as being in scope i and disjoint from every other scope of s. */
static inline LLVMValueRef lw_in_scope(CgKernel *k, const LwScopes *s, int i, LLVMValueRef v) {
  LLVMContextRef c = k->m->ctx;
  LLVMMetadataRef others[LW_MAX_SCOPES], own = s->scope[i];
  int n = 0;
  for (int j = 0; j < s->n; j++)
    if (j != i) others[n++] = s->scope[j];
  LLVMSetMetadata(v, LLVMGetMDKindIDInContext(c, "alias.scope", 11),
                  LLVMMetadataAsValue(c, LLVMMDNodeInContext2(c, &own, 1)));
  LLVMSetMetadata(v, LLVMGetMDKindIDInContext(c, "noalias", 7),
                  LLVMMetadataAsValue(c, LLVMMDNodeInContext2(c, others, (size_t)n)));
  return v;
}

/* out[off[i]] += coef[i] * x for rows i < n, x already loaded and converted to tacc: the body of
 * the rank-1 row updates of Conv and MatMul. With sc (rows and source known disjoint; scopes 0..n-1
 * are the rows) the loads and stores are tagged so LLVM needs no overlap checks. */
static inline void lw_fma_rows(CgKernel *k, KnDtype to, KnDtype tacc, const LLVMValueRef *coef, LLVMValueRef x,
                               const LLVMValueRef *off, int n, const LwScopes *sc) {
  for (int i = 0; i < n; i++) {
    if (!sc) {
      cg_store(k, k->out[0], to, off[i], lw_fma(k, tacc, coef[i], x, cg_load(k, k->out[0], to, off[i])));
      continue;
    }
    LLVMValueRef p = cg_elem_ptr(k, k->out[0], to, off[i]);
    LLVMValueRef cur = lw_in_scope(k, sc, i, LLVMBuildLoad2(k->b, cg_storage_type(k->m, to), p, ""));
    lw_in_scope(k, sc, i, LLVMBuildStore(k->b, lw_fma(k, tacc, coef[i], x, cur), p));
  }
}

/* Ends loop l like cg_loop_end and tells LLVM not to unroll it: a loop with a large constant trip
 * count would otherwise be fully unrolled into one huge block that takes seconds to compile. */
static inline void lw_loop_end_nounroll(CgKernel *k, CgLoop *l) {
  cg_loop_end(k, l);
  LLVMValueRef br = LLVMGetBasicBlockTerminator(l->latch);
  LLVMContextRef c = k->m->ctx;
  const char *prop = "llvm.loop.unroll.disable";
  LLVMMetadataRef str = LLVMMDStringInContext2(c, prop, strlen(prop));
  LLVMMetadataRef opt = LLVMMDNodeInContext2(c, &str, 1);
  LLVMMetadataRef id = lw_self_node(c, &opt, 1); /* the loop id refers to itself */
  unsigned kind = LLVMGetMDKindIDInContext(c, "llvm.loop", 9);
  LLVMSetMetadata(br, kind, LLVMMetadataAsValue(c, id));
}

/* Marks a float instruction reassociable so reductions over it vectorize. */
static inline LLVMValueRef lw_reassoc(LLVMValueRef v) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  return v;
}

/* floor(a / b) for b > 0 (C division truncates). */
static inline int64_t lw_floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static inline int64_t lw_ceil_div(int64_t a, int64_t b) { return -lw_floor_div(-a, b); }

/* The sliding window of a conv or pool over up to 3 spatial dims, padded at the front with
 * size-1 dims so every lowering walks exactly 3 (D, H, W). */
typedef struct LwWindow {
  int nsp;                       /* the node's spatial dims */
  int64_t in[LW_MAX_SP], out[LW_MAX_SP], k[LW_MAX_SP], s[LW_MAX_SP], d[LW_MAX_SP];
  int64_t pb[LW_MAX_SP];         /* leading pad */
  int64_t pe[LW_MAX_SP];         /* trailing pad (explicit pads, or the SAME split) */
} LwWindow;

/* Fills w from the node's attributes for input shape x and output shape y ([N, C, spatial]);
 * kdims: the kernel's spatial dims when there is no kernel_shape attribute (NULL: required). */
static inline KnStatus lw_window(CgKernel *k, const KnShape *x, const KnShape *y, const int64_t *kdims,
                                 LwWindow *w) {
  const KnNode *n = k->node;
  int nsp = x->rank - 2;
  if (nsp < 1 || nsp > LW_MAX_SP) return cg_unsupported(k, "only 1-D, 2-D and 3-D windows");
  int off = LW_MAX_SP - nsp;
  int64_t cnt, cs, cd, cp;
  const int64_t *ks = ir_attr_ints(n, "kernel_shape", &cnt);
  const int64_t *st = ir_attr_ints(n, "strides", &cs);
  const int64_t *dl = ir_attr_ints(n, "dilations", &cd);
  const int64_t *pd = ir_attr_ints(n, "pads", &cp);
  if ((ks && cnt != nsp) || (!ks && !kdims) || (st && cs != nsp) || (dl && cd != nsp) || (pd && cp != 2 * nsp))
    return cg_unsupported(k, "window attributes do not match the spatial rank");
  const char *ap = ir_attr_string(n, "auto_pad", "NOTSET");
  bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
  memset(w, 0, sizeof *w);
  w->nsp = nsp;
  for (int i = 0; i < LW_MAX_SP; i++) {
    int j = i - off;
    bool real = j >= 0;
    w->in[i] = real ? x->dims[j + 2].value : 1;
    w->out[i] = real ? y->dims[j + 2].value : 1;
    w->k[i] = real ? (ks ? ks[j] : kdims[j]) : 1;
    w->s[i] = real && st ? st[j] : 1;
    w->d[i] = real && dl ? dl[j] : 1;
    w->pb[i] = real && pd && !same && !valid ? pd[j] : 0;
    w->pe[i] = real && pd && !same && !valid ? pd[j + nsp] : 0;
    if (real && same) { /* output = ceil(in / stride); the odd pad goes to the end for UPPER */
      int64_t total = (w->out[i] - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] + 1 - w->in[i];
      if (total < 0) total = 0;
      w->pb[i] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
      w->pe[i] = total - w->pb[i];
    }
    if (w->s[i] < 1 || w->d[i] < 1 || w->k[i] < 1) return cg_unsupported(k, "non-positive window attribute");
  }
  return KN_OK;
}

/* For output position o along dim i: the kernel taps [lo, hi) that land inside the input. */
static inline void lw_taps(const LwWindow *w, int i, int64_t o, int64_t *lo, int64_t *hi) {
  int64_t base = o * w->s[i] - w->pb[i]; /* input coordinate of tap 0 */
  int64_t l = base >= 0 ? 0 : lw_ceil_div(-base, w->d[i]);
  int64_t h = lw_floor_div(w->in[i] - 1 - base, w->d[i]) + 1;
  if (h > w->k[i]) h = w->k[i];
  if (l > h) l = h;
  *lo = l, *hi = h;
}

/* For kernel tap t along dim i: the output positions [lo, hi) whose input lies inside. */
static inline void lw_outs(const LwWindow *w, int i, int64_t t, int64_t *lo, int64_t *hi) {
  int64_t shift = t * w->d[i] - w->pb[i]; /* input = o*s + shift */
  int64_t l = lw_ceil_div(-shift, w->s[i]);
  int64_t h = lw_floor_div(w->in[i] - 1 - shift, w->s[i]) + 1;
  if (l < 0) l = 0;
  if (h > w->out[i]) h = w->out[i];
  if (l > h) l = h;
  *lo = l, *hi = h;
}

#endif
