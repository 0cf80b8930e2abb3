/* lower_conv_dw.h - the specialised f32 depthwise Conv (one filter per channel) that Conv and
 * kiln.FusedConv lower to at -O1 and up, and the MaxPool / AveragePool that shares its row-vectorized
 * window walk. */
#ifndef KILN_LOWER_CONV_DW_H
#define KILN_LOWER_CONV_DW_H

#include "codegen/cg_gemm.h"
#include "codegen/lower_conv.h"

typedef struct CgDepthwise {
  LwWindow w;          /* the window over (D, H, W) */
  int64_t N, C;        /* images; channels (= groups, one input and one output channel each) */
  int ix, iw, ib, ir;  /* kernel inputs: x, weight [C, 1, k...], bias [C] or -1, residual (Y's shape) or -1 */
  CgGemmAct act;       /* applied last, after bias and residual */
  float lo, hi;        /* CG_ACT_CLIP bounds */
} CgDepthwise;

/* Emits the depthwise conv d into kernel k. Returns false, having emitted nothing, when d is
 * outside what the specialised kernel handles; the caller then falls back to its loops. */
bool cg_try_depthwise(CgKernel *k, const CgDepthwise *d);

/* Emits an f32 MaxPool (is_max; no Indices) or AveragePool (include_pad: count_include_pad) of
 * window w over `planes` planes, input 0 to output 0, into kernel k. Returns false, having emitted
 * nothing, when w is outside what the kernel handles (3-D, huge windows). */
bool cg_try_pool_rows(CgKernel *k, const LwWindow *w, int64_t planes, bool is_max, bool include_pad);

#endif
