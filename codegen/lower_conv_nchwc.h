/* lower_conv_nchwc.h - f32 2-D kiln.FusedConv on the NCHW16c values of passes/block_layout.c,
 * weights in 16x16 channel blocks, output channels in the vector lanes. */
#ifndef KILN_LOWER_CONV_NCHWC_H
#define KILN_LOWER_CONV_NCHWC_H

#include "codegen/cg_gemm.h"
#include "codegen/lower_conv.h"

/* Channels per block of the packed weights, [M/16, C/16, KH, KW, 16 (in), 16 (out)]. */
#define CG_CONV_BLOCK 16

/* Emits kernel k's FusedConv {packed = 16} (blocked X, weights, residual ir (-1: none), Y) with
 * its epilogue act. Fails naming what it does not take (only 2-D, group 1, no dilation). */
KnStatus cg_lower_conv_packed(CgKernel *k, int ir, CgGemmAct act, float lo, float hi);

/* kiln.ToBlocked / kiln.FromBlocked are in ops.def; their lowerings live with the conv. */

/* f32 MaxPool of a blocked value ([N, C/16, H, W, 16], window 1 along the block: w over (H, W, 16))
 * as whole 16-channel vectors, into kernel k; false, having emitted nothing, for another window. */
bool cg_try_pool_blocked(CgKernel *k, const LwWindow *w, int64_t planes);

#endif
