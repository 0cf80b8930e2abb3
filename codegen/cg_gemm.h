/* cg_gemm.h - the f32 GEMM every dense lowering shares (MatMul, Gemm, Conv as GEMM): register-
 * blocked microkernels generated for the target's vector width, parallel over column strips and
 * row blocks, with the epilogue (scale, bias, residual, activation) applied in registers. */
#ifndef KILN_CG_GEMM_H
#define KILN_CG_GEMM_H

#include "codegen/cg.h"

/* Where an operand lives inside a kernel (or its parallel body): a kernel input, output or
 * extra pointer, plus element strides. */
typedef enum CgGemmSrc { CG_GEMM_NONE, CG_GEMM_IN, CG_GEMM_OUT, CG_GEMM_EXTRA, CG_GEMM_PTR } CgGemmSrc;

typedef struct CgGemmOperand {
  CgGemmSrc src;
  int index;            /* which input / output / extra */
  int64_t offset;       /* first element */
  int64_t rs, cs;       /* element stride between rows and between columns */
  int64_t batch_stride; /* between consecutive batch entries (0: shared by every entry) */
  int64_t batch_mod;    /* > 0: entry b uses (b % batch_mod) * batch_stride (per-group weights) */
  LLVMValueRef ptr;     /* CG_GEMM_PTR: a pointer made in the current function */
  int64_t panel;        /* > 0 (B only): stored as panels of `panel` columns, column c of row r at
                           (c / panel) * panel_stride + r * rs + c % panel (rs = panel when dense) */
  int64_t panel_stride; /* elements between consecutive panels (K * panel for weights packed by
                           passes/pack_weights.c) */
} CgGemmOperand;

typedef enum CgGemmBias { CG_BIAS_NONE, CG_BIAS_ROW, CG_BIAS_COL } CgGemmBias;
/* GELU: x * Phi(x) with erf, or the tanh approximation (kiln.FusedGemm only) */
typedef enum CgGemmAct { CG_ACT_NONE, CG_ACT_RELU, CG_ACT_CLIP, CG_ACT_GELU, CG_ACT_GELU_TANH } CgGemmAct;

/* Fills a panel of B: panel[kk * nr + j] = B[batch][k0 + kk][n0 + j] for kk < kc and j < cols,
 * 0 for cols <= j < nr (batch, n0, cols, k0, kc: i64 values; kc <= the emitter's block). Runs
 * inside the GEMM's parallel body. */
typedef void (*CgGemmPackFn)(CgKernel *k, void *user, LLVMValueRef panel, int64_t nr, LLVMValueRef batch,
                             LLVMValueRef n0, LLVMValueRef cols, LLVMValueRef k0, LLVMValueRef kc);

/* C[b][m][n] = act(alpha * sum_k A[b][m][k] * B[b][k][n] + bias + beta * R[b][m][n]), all f32.
 * B and C (and R) must be unit-stride along n (cs == 1): n is the vectorized dimension; A is read
 * one element at a time (broadcast), at any strides. */
typedef struct CgGemm {
  int64_t batch, M, N, K;
  CgGemmOperand a, b, c;
  CgGemmBias bias_kind;
  CgGemmOperand bias;   /* rs: stride between its elements (per row: along m; per column: along n) */
  CgGemmOperand resid;  /* src NONE: no residual term */
  float alpha, beta;
  CgGemmAct act;
  float lo, hi;         /* CG_ACT_CLIP bounds */
  /* pack != NULL: B is not read from memory but produced by pack, one panel of kc rows x one
   * column strip at a time into a stack buffer (b is ignored); every row tile of the strip reuses
   * the panel, accumulating in C across the blocks of K (so R must not share C's memory when K
   * needs more than one panel). */
  CgGemmPackFn pack;
  void *pack_user;
  int64_t kc;           /* rows of K per panel (0: the emitter picks) */
  int64_t kc_multiple;  /* > 0: every panel but the last starts and ends on a multiple of this (a
                           conv's taps per channel, so a panel holds whole channels) */
} CgGemm;

/* Columns per microkernel tile (the width of a packed panel) for module m. */
int64_t cg_gemm_nr(const CgModule *m);
/* True when g fits the emitter: f32 everywhere, unit column strides for B (unless packed), C and R,
 * sizes > 0, B's panels (if any) a whole number of the target's vectors wide. */
bool cg_gemm_supported(const CgModule *m, const CgGemm *g);
/* The epilogue activation of kiln's fused ops from node n's attributes: activation "" | "Relu" |
 * "Clip" (bounds min, max; unbounded when absent) | "Gelu" (approximate "none" or "tanh"). False
 * for another name. */
bool cg_gemm_read_activation(const KnNode *n, CgGemmAct *act, float *lo, float *hi);
/* Emits g into kernel k (at its current position). */
void cg_emit_gemm(CgKernel *k, const CgGemm *g);

#endif
