/* cg.h - the map of kiln's code generator: how a specialized graph becomes one LLVM module with
 * a kernel function per node and an entry function that calls them over a planned arena, and
 * the kernel-building helpers every lowering (codegen/lower_*.c) uses. */
#ifndef KILN_CG_H
#define KILN_CG_H

#include <llvm-c/Core.h>

#include "ir/ir.h"
#include "runtime/kiln_rt.h"

/* ---- the ABI of generated code ------------------------------------------------------------- *
 * kernel:  i32 kn_k<id>(KnRtCtx *ctx, ptr in_0 .. in_{n-1}, ptr out_0 .. out_{m-1})
 *          one pointer per node input (NULL for an omitted optional one) then per output;
 *          returns 0, or the KnStatus it recorded with kn_rt_fail.
 * entry:   i32 <name>(KnRtCtx *ctx, void *const *inputs, void *const *outputs,
 *                     const void *const *weights, uint8_t *arena)
 *          inputs/outputs in the graph's order, weights in the plan's order, arena of
 *          CgPlan.arena_bytes bytes aligned to 64. */

/* ---- where each value lives at run time (codegen/cg_plan.c) -------------------------------- */
typedef enum CgHome {
  CG_HOME_NONE = 0, /* not a tensor kiln stores (unused, or omitted) */
  CG_HOME_INPUT,    /* the caller's input buffer `index` */
  CG_HOME_OUTPUT,   /* the caller's output buffer `index` */
  CG_HOME_WEIGHT,   /* constant data: weights[index] */
  CG_HOME_ARENA,    /* arena + offset */
} CgHome;

typedef struct CgSlot {
  CgHome home;
  int index;        /* INPUT, OUTPUT, WEIGHT: position in that table */
  size_t offset;    /* ARENA: byte offset, a multiple of 64 */
  size_t nbytes;    /* storage size */
} CgSlot;

typedef struct CgPlan {
  CgSlot *slots;          /* one per value of the top-level graph, by value->id */
  int n_slots;
  const KnTensor **weights; /* constant tensors the entry reads, in weights[] order */
  int n_weights;
  size_t arena_bytes;     /* peak arena size with liveness-based reuse */
  size_t naive_bytes;     /* what it would be without reuse (for reports) */
} CgPlan;

/* The default budget for a run's intermediate values (--max-arena-bytes). */
#define CG_DEFAULT_MAX_ARENA ((size_t)16 << 30)

/* Assigns every value of g (already renumbered) a slot; arena buffers are reused once their last
 * reader has run. Fails on a value whose shape is not concrete, and with KN_ERR_LIMIT when the
 * arena would exceed max_arena_bytes (0: the default, 16 GiB). */
KnStatus cg_plan_graph(KnGraph *g, size_t max_arena_bytes, CgPlan *plan, KnError *err);
/* Sequences, optionals and string tensors never reach generated code: runtime kernels handle
 * them between stages, and a compiled part only passes them from an input to an output. */
static inline bool cg_runtime_only(const KnValue *v) {
  return v && (v->type.kind != KN_TYPE_TENSOR || v->type.dtype == KN_STRING);
}
void cg_plan_free(CgPlan *plan);

/* ---- the module under construction (codegen/cg_module.c) ----------------------------------- */
typedef struct CgModule {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;        /* shared builder; kernels position it */
  LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f16, t_bf16, t_f32, t_f64, t_ptr;
  LLVMTypeRef t_kernel_body; /* void (ptr closure, i64 begin, i64 end) */
  int n_kernels;
  int n_helpers;           /* counter for outlined helper functions */
  int vec_lanes, vec_regs; /* the target's f32 lanes per vector register, vector registers */
  int opt_level;           /* -O level: 0 keeps the plain loops (the reference optimized code is tested against) */
} CgModule;

/* Creates the module in ctx (the JIT's thread-safe context owns it). */
KnStatus cg_module_init(CgModule *m, LLVMContextRef ctx, const char *name, KnError *err);
void cg_module_dispose(CgModule *m); /* the builder, and the module unless m->mod was taken (NULL) */
/* Keeps fn out of its callers: LLVM's optimizer is superlinear in a function's size, so kernels
 * (shared by many nodes) and parts of the entry stay calls. */
void cg_set_noinline(CgModule *m, LLVMValueRef fn);
/* Declares (once) an external function by name, e.g. "expf" or "kn_rt_fail". */
LLVMValueRef cg_extern_fn(CgModule *m, const char *name, LLVMTypeRef fn_type);

/* ---- one kernel under construction (codegen/cg_kernel.c) ----------------------------------- */
typedef struct CgKernel {
  CgModule *m;
  LLVMBuilderRef b;        /* == m->b */
  const KnNode *node;
  LLVMValueRef fn;         /* the function being built (the kernel or a parallel body) */
  LLVMValueRef ctx;        /* KnRtCtx * */
  LLVMValueRef *in;        /* node->n_inputs pointers (NULL entries for omitted inputs) */
  LLVMValueRef *out;       /* node->n_outputs pointers */
  LLVMValueRef *extra;     /* inside a parallel body: the pointers passed by cg_parallel_for_extra */
  int n_extra;
  LLVMBasicBlockRef fail_block; /* returns the status in fail_status; created on demand */
  LLVMValueRef fail_status;     /* alloca i32 */
  KnError *err;
} CgKernel;

/* A lowering emits the body of kernel k for k->node; the kernel's entry block is current and the
 * kernel returns 0 when the lowering returns KN_OK (the caller adds the `ret`). On an op, dtype
 * or attribute it cannot handle it fails with KN_ERR_UNSUPPORTED naming them. */
typedef KnStatus (*CgLowerFn)(CgKernel *k);

/* The lowering of each op, from the `lower` column of ir/ops.def; NULL when kiln has none. */
CgLowerFn cg_lowering(KnOp op);

/* Lowerings may read the values of constant inputs at compile time only when they have at most
 * this many elements (axes, pads, scales, shapes); larger constants (weights) are read at run time,
 * so kernels that differ only in them are shared. */
#define CG_CONST_READ_MAX 4096
/* Writes into buf a string identifying the kernel node would get (codegen/cg_kernel_key.c);
 * false when the node must get a kernel of its own (subgraph attributes, or buf too small). */
bool cg_kernel_key(const KnNode *n, char *buf, size_t size);

/* Builds kernel function kn_k<node id> for node; *out_fn receives it. */
KnStatus cg_emit_kernel(CgModule *m, const KnNode *node, LLVMValueRef *out_fn, KnError *err);

/* ---- types and constants ---- */
LLVMTypeRef cg_storage_type(CgModule *m, KnDtype t);  /* how t is stored: bool -> i8, f16 -> half */
LLVMTypeRef cg_compute_type(CgModule *m, KnDtype t);  /* how t is computed: bool -> i1, f16/bf16 -> float */
LLVMValueRef cg_i64(CgKernel *k, int64_t v);
LLVMValueRef cg_i32(CgKernel *k, int32_t v);
/* A constant of t's compute type from a double (ints truncate toward zero, bool is v != 0). */
LLVMValueRef cg_const(CgKernel *k, KnDtype t, double v);
LLVMValueRef cg_const_int(CgKernel *k, KnDtype t, int64_t v);

/* ---- memory: element idx (i64) of a buffer of dtype t; values are in compute type ---- */
LLVMValueRef cg_elem_ptr(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef idx);
LLVMValueRef cg_load(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef idx);
void cg_store(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef idx, LLVMValueRef v);
/* Converts a compute value of dtype from to dtype to, as ONNX Cast does (float->int truncates,
 * ->bool is != 0). */
LLVMValueRef cg_convert(CgKernel *k, LLVMValueRef v, KnDtype from, KnDtype to);
/* memcpy/memset of n bytes (i64 value). */
void cg_memcpy(CgKernel *k, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef nbytes);
void cg_memset(CgKernel *k, LLVMValueRef dst, int byte, LLVMValueRef nbytes);

/* ---- loops: for (i = begin; i < end; i++) { body } ---- */
typedef struct CgLoop {
  LLVMValueRef i;            /* the induction variable (i64) inside the body */
  LLVMBasicBlockRef header, body, latch, exit;
} CgLoop;
CgLoop cg_loop_begin(CgKernel *k, LLVMValueRef begin, LLVMValueRef end);
void cg_loop_end(CgKernel *k, CgLoop *l);
/* if (cond) { then } [else { ... }]: cg_if_begin, cg_if_else (optional), cg_if_end. */
typedef struct CgIf {
  LLVMBasicBlockRef then_block, else_block, merge;
  bool has_else;
} CgIf;
CgIf cg_if_begin(CgKernel *k, LLVMValueRef cond);
void cg_if_else(CgKernel *k, CgIf *c);
void cg_if_end(CgKernel *k, CgIf *c);
/* A stack variable of type t (in the function's entry block), initialised to init. */
LLVMValueRef cg_var(CgKernel *k, LLVMTypeRef t, LLVMValueRef init);

/* Fails the kernel at run time when cond is true: records msg (with value) in the context and
 * returns status. For data-dependent errors only (indices out of range); shape errors are caught
 * at compile time. */
void cg_fail_if(CgKernel *k, LLVMValueRef cond, KnStatus status, const char *msg,
                LLVMValueRef value);

/* After a call into the runtime that returns an i32 status (0 = ok, else it already recorded a
 * message with kn_rt_fail): returns that status from the kernel when it is not 0. */
void cg_check_status(CgKernel *k, LLVMValueRef status);

/* Runs body(k', i, user) for i in [0, n) through kn_rt_parallel_for, in an outlined function
 * whose k'->in/out/ctx are the same buffers. grain: minimum iterations per chunk. Inside body,
 * only values it creates itself may be used (it is another function). */
typedef void (*CgBodyFn)(CgKernel *k, LLVMValueRef i, void *user);
void cg_parallel_for(CgKernel *k, int64_t n, int64_t grain, CgBodyFn body, void *user);
/* The same, also passing pointer values the kernel made (work buffers, a scalar's stack slot):
 * inside body they are k'->extra[0 .. n_extra). */
void cg_parallel_for_extra(CgKernel *k, int64_t n, int64_t grain, CgBodyFn body, void *user,
                           LLVMValueRef *extra, int n_extra);

/* ---- elementwise kernels (codegen/cg_elementwise.c) ---------------------------------------- */
/* Computes output 0 = fn(inputs...) element by element, every present input broadcast to output
 * 0's shape (numpy rules). vals[j] is the j-th present input, loaded in its compute type; fn
 * returns the result in output 0's compute type. */
typedef LLVMValueRef (*CgElemFn)(CgKernel *k, LLVMValueRef *vals, void *user);
KnStatus cg_emit_elementwise(CgKernel *k, CgElemFn fn, void *user);

/* ---- scalar math on compute values (codegen/cg_math.c) ------------------------------------- */
/* Calls a libm function (float or double variant chosen from the type, e.g. "exp" -> expf). */
LLVMValueRef cg_libm(CgKernel *k, const char *name, LLVMValueRef x);
LLVMValueRef cg_libm2(CgKernel *k, const char *name, LLVMValueRef x, LLVMValueRef y);
/* GELU of a float (or float vector) x: x * Phi(x), erf form or the tanh approximation
 * (codegen/lower_gelu.c). */
LLVMValueRef cg_gelu(CgKernel *k, LLVMValueRef x, bool tanh_form);
/* An LLVM intrinsic overloaded on x's type ("llvm.fabs", "llvm.maxnum", ...). */
LLVMValueRef cg_intrinsic(CgKernel *k, const char *name, LLVMValueRef *args, int n);
/* Arithmetic dispatched on dtype (float, signed or unsigned integer). */
LLVMValueRef cg_add(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_sub(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_mul(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_div(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_min(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b); /* NaN-propagating */
LLVMValueRef cg_max(CgKernel *k, KnDtype t, LLVMValueRef a, LLVMValueRef b); /* NaN-propagating */
/* Comparisons -> i1: "eq", "ne", "lt", "le", "gt", "ge" (ordered for floats). */
LLVMValueRef cg_cmp(CgKernel *k, KnDtype t, const char *pred, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_select(CgKernel *k, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b);

/* ---- shapes of the node's values (all concrete after specialization) ---- */
const KnShape *cg_in_shape(const CgKernel *k, int i);  /* NULL for an omitted input */
const KnShape *cg_out_shape(const CgKernel *k, int i);
KnDtype cg_in_dtype(const CgKernel *k, int i);
KnDtype cg_out_dtype(const CgKernel *k, int i);
int64_t cg_numel(const KnShape *s);
/* Row-major strides of s (elements) into out[rank]. */
void cg_strides(const KnShape *s, int64_t *out);
/* Strides of an input of shape in broadcast to out (0 on broadcast dims), aligned right. */
void cg_broadcast_strides(const KnShape *in, const KnShape *out, int64_t *strides);

/* "node NAME (Op)", or "node Op producing OUT" for unnamed nodes: for messages. */
const char *cg_node_label(const KnNode *n, char *buf, size_t size);
/* "f32,-,i64": the node's input dtypes ("-" omitted, "seq"/"opt" for those), for messages. */
void cg_describe_inputs(const KnNode *n, char *buf, size_t size);
/* KN_ERR_UNSUPPORTED for a node nothing in kiln computes, naming op, domain, opset and dtypes. */
KnStatus cg_no_kernel_error(const KnNode *n, const char *by, KnError *err);
/* KN_ERR_UNSUPPORTED naming op, domain, opset and dtype, e.g. for a dtype a lowering lacks. */
KnStatus cg_unsupported(CgKernel *k, const char *what);

/* ---- compiling a graph (codegen/cg_compile.c, cg_entry.c, cg_jit.c) ------------------------ */
typedef struct CgOptions {
  int opt_level;           /* 0..3: LLVM pipeline default<O0..O3> */
  const char *triple;      /* NULL: the host's (the JIT takes only that) */
  const char *cpu;         /* NULL: the host's ("generic" for another triple) */
  const char *features;    /* NULL: the host's (none for another triple or a named cpu) */
  size_t max_arena_bytes;  /* planned arena limit (0: 16 GiB); beyond it compiling fails */
} CgOptions;

/* Emits the entry function of g over plan into m (kernels first, then the entry). */
KnStatus cg_emit_entry(CgModule *m, KnGraph *g, const CgPlan *plan, const char *name,
                       KnError *err);

#endif
