/* passes.h - graph passes and the pass manager that runs, times and counts them. */
#ifndef KILN_PASSES_H
#define KILN_PASSES_H

#include <stdio.h>

#include "ir/ir.h"

/* What a pass sees besides the graph: where to report failure and how much it rewrote. */
typedef struct KnPassCtx {
  KnError *err;      /* a pass that fails sets it and returns false */
  int64_t rewrites;  /* the pass adds one per rewrite it makes */
} KnPassCtx;

/* A pass rewrites g (and its subgraphs) and returns whether it changed anything. */
typedef bool (*KnPassFn)(KnGraph *g, KnPassCtx *ctx);

#define PASS(name, fn, level, summary) bool fn(KnGraph *g, KnPassCtx *ctx);
#include "passes/passes.def"
#undef PASS

typedef struct KnPassInfo {
  const char *name;
  KnPassFn run;
  int min_level;
  const char *summary;
} KnPassInfo;

extern const KnPassInfo pass_table[];
extern const int pass_count;
const KnPassInfo *pass_lookup(const char *name);

/* What one pass did in one pipeline run. */
typedef struct KnPassRecord {
  const char *name;
  double wall_ms;
  int nodes_before, nodes_after; /* top-level graph */
  int64_t rewrites;
  bool changed;
} KnPassRecord;

typedef struct KnPipeline {
  int level;                  /* -O level: 0..3 */
  const char *only;           /* comma-separated pass list (--passes=), overrides level */
  const char *disabled;       /* comma-separated passes to skip (--disable-pass=) */
  const char *print_after;    /* pass name or "all": dump .kir after it (--print-ir-after=) */
  FILE *dump;                 /* where dumps go (stderr if NULL) */
  KnPassRecord records[64];   /* filled by pass_run_pipeline */
  int n_records;
} KnPipeline;

/* Checks that every name in a comma-separated list is a pass; fails naming the unknown one. */
KnStatus pass_check_names(const char *list, KnError *err);
/* Runs the selected passes in table order on m's graph; in builds with KILN_VERIFY_PASSES the
 * verifier runs after every pass and a failure names the pass that broke the IR. */
KnStatus pass_run_pipeline(KnModel *m, KnPipeline *p, KnError *err);
/* Prints a graph for --print-ir-after; set by the program (tools/) to the .kir printer, since
 * passes/ may not depend on frontend/. NULL: no dumps. */
extern KnStatus (*pass_dump_hook)(FILE *f, const KnGraph *g, KnError *err);

/* Evaluates a model that has no inputs and returns its outputs as tensors in arena a; consumes
 * sub (frees it). Set by the code generator (codegen/cg_runner.c) so that fold_constants runs
 * the same kernels as compiled models; NULL: fold_constants does nothing. */
extern KnStatus (*pass_eval_hook)(KnModel *sub, KnArena *a, KnTensor **outs, KnError *err);
/* Whether the evaluator can run node n (its op has a lowering); NULL: assume it can. */
extern bool (*pass_can_eval_hook)(const KnNode *n);

/* Shared by passes (passes/pass_util.c): marks every value that a node or graph output of g or
 * of any subgraph uses by setting value->scratch = 1 (all values of g first reset to 0). */
void pass_mark_uses(KnGraph *g);
/* Uses of v in g (node inputs, graph outputs, subgraphs at any depth). */
int pass_count_uses(const KnGraph *g, const KnValue *v);
/* The node of g that is v's only use, or NULL (more uses, a graph output, a subgraph). */
const KnNode *pass_only_consumer(const KnGraph *g, const KnValue *v);
/* Replaces the nodes of chain (in graph order; each but the last used only by the next) by one
 * node of op over inputs, named like the chain's first node, placed where its last node was and
 * producing that node's result value (so names, types and uses stay). Its attribute "fused" lists
 * the chain's ops ("MatMul+Add+Relu") for reports. Returns the new node, NULL with err set on
 * failure. */
KnNode *pass_replace_chain(KnGraph *g, KnNode *const *chain, int n_chain, KnOp op, KnValue *const *inputs,
                           int n_inputs, KnError *err);
/* The constant tensor behind v (an initializer that is not also a graph input), or NULL. */
const KnTensor *pass_constant_of(const KnValue *v);
/* Whether v is an f32 tensor of known rank. */
bool pass_is_f32_tensor(const KnValue *v);
/* Whether a and b have the same rank and the same dims, all concrete. */
bool pass_same_concrete_shape(const KnShape *a, const KnShape *b);
/* Whether c is an activation the fused ops apply in their epilogue: Relu, or Clip with constant
 * scalar f32 bounds (inputs from opset 11, attributes before); sets act to "Relu" or "Clip" and,
 * for Clip, lo and hi (+-FLT_MAX for an absent bound). */
bool pass_match_activation(const KnNode *c, const char **act, float *lo, float *hi);

#endif
