/* cg_gemm.h - the f32 GEMM every dense lowering shares (MatMul, Gemm, Conv as GEMM): register-
 * blocked microkernels generated for the target's vector width, parallel over column strips and
 * row blocks, with the epilogue (scale, bias, residual, activation) applied in registers. */
#ifndef KILN_CG_GEMM_H
#define KILN_CG_GEMM_H

#include "codegen/cg.h"

/* Where an operand lives inside a kernel (or its parallel body): a kernel input, output or
 * extra pointer, plus element strides. */
typedef enum CgGemmSrc { CG_GEMM_NONE, CG_GEMM_IN, CG_GEMM_OUT, CG_GEMM_EXTRA } CgGemmSrc;

typedef struct CgGemmOperand {
  CgGemmSrc src;
  int index;            /* which input / output / extra */
  int64_t offset;       /* first element */
  int64_t rs, cs;       /* element stride between rows and between columns */
  int64_t batch_stride; /* between consecutive batch entries (0: shared by every entry) */
} CgGemmOperand;

typedef enum CgGemmBias { CG_BIAS_NONE, CG_BIAS_ROW, CG_BIAS_COL } CgGemmBias;
typedef enum CgGemmAct { CG_ACT_NONE, CG_ACT_RELU, CG_ACT_CLIP } CgGemmAct;

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
} CgGemm;

/* True when g fits the emitter: f32 everywhere, unit column strides for B, C and R, sizes > 0. */
bool cg_gemm_supported(const CgGemm *g);
/* Emits g into kernel k (at its current position). */
void cg_emit_gemm(CgKernel *k, const CgGemm *g);

#endif
